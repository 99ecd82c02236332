"""The CUDA paths of a trial: bf16 (fp16 on GPUs without native bf16) LoRA, and QLoRA with a
4-bit NF4 double-quantised base, a paged 8-bit AdamW and gradient checkpointing.

Skipped without CUDA (`pytest -m gpu` on a GPU machine runs it). Each trial is the tiny random
Llama for a few steps: these tests check what runs where and in which dtype, not quality.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from runners.config import DataConfig, EvalConfig, MethodConfig, ModelRef, TrainConfig, TrialConfig
from runners.testing import toy_dataset, write_jsonl

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _native_precision() -> str:
    """What `precision: auto` must pick on this GPU (see runners.train.auto_precision)."""
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def _config(tmp_path: Path, model: Path, *, method: str, **train) -> TrialConfig:
    data = write_jsonl(tmp_path / "train.jsonl", toy_dataset(16, seed=0))
    evals = write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    base = TrainConfig(max_steps=4, learning_rate=1e-3, eval_steps=2, max_seq_length=64)
    return TrialConfig(
        study="gpu",
        trial_number=0,
        seed=11,
        model=ModelRef(str(model)),
        data=DataConfig(str(data), str(evals)),
        method=MethodConfig(method, r=4, lora_alpha=8, target_modules=("q_proj", "v_proj")),
        train=dataclasses.replace(base, **train),
        eval=EvalConfig(metric="json_match", max_new_tokens=4, samples_to_log=1, forgetting=False),
        output_dir=str(tmp_path / "out"),
    )


def _run(config: TrialConfig):
    from runners.trial import run_trial

    torch.cuda.reset_peak_memory_stats()  # the figures are per process: one trial's only
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert (result.device, result.precision) == ("cuda", _native_precision())
    assert result.peak_memory_mb and result.peak_memory_mb > 0
    assert result.peak_reserved_mb and result.peak_reserved_mb >= result.peak_memory_mb
    return result


def _adapter_dtypes(result) -> set[torch.dtype]:
    from safetensors.torch import load_file

    weights = load_file(Path(result.adapter_dir) / "adapter_model.safetensors")
    return {w.dtype for w in weights.values()}


def test_lora_trains_in_bf16_on_cuda(tmp_path: Path, tiny_model: Path) -> None:
    result = _run(_config(tmp_path, tiny_model, method="lora"))
    assert result.steps == 4
    # peft keeps adapter weights in fp32 over a bf16 base; autocast runs the matmuls in bf16.
    assert _adapter_dtypes(result) == {torch.float32}


def test_qlora_paged_8bit_with_checkpointing_trains_on_cuda(
    tmp_path: Path, tiny_model: Path
) -> None:
    config = _config(
        tmp_path,
        tiny_model,
        method="qlora",
        optimizer="paged_adamw_8bit",
        gradient_checkpointing=True,
    )
    result = _run(config)
    assert result.steps == 4
    # trl casts a 4-bit model's adapter to bf16 (the QLoRA paper); not bf16 runs keep fp32.
    expected = torch.bfloat16 if result.precision == "bf16" else torch.float32
    assert _adapter_dtypes(result) == {expected}


def test_qlora_layers_are_nf4_double_quant_and_the_optimizer_is_paged(
    tmp_path: Path, tiny_model: Path
) -> None:
    import bitsandbytes as bnb
    from trl import SFTTrainer

    from runners.data import load_datasets
    from runners.methods import get_method
    from runners.models import load_model_and_tokenizer
    from runners.train import resolve_placement, sft_config, trainable_in_run_precision

    config = _config(tmp_path, tiny_model, method="qlora", optimizer="paged_adamw_8bit")
    placement = resolve_placement(config)
    method = get_method("qlora")
    extra = method.load_kwargs(config.method, device=placement.device, dtype=placement.dtype)
    model, tokenizer = load_model_and_tokenizer(
        config.model, device=placement.device, dtype=placement.dtype, **extra
    )
    model = method.prepare(model, config.method)

    quantised = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantised) == 2 * 7  # every linear of both decoder layers; lm_head stays
    for layer in quantised:
        assert layer.weight.quant_type == "nf4"
        assert layer.weight.compress_statistics and layer.weight.quant_state.nested  # double
        assert layer.compute_dtype == placement.dtype
        assert layer.weight.device.type == "cuda"

    _, data = load_datasets(config.data, tokenizer, max_length=config.train.max_seq_length)
    args = sft_config(config.train, seed=1, placement=placement, output_dir=tmp_path / "t")
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data, processing_class=tokenizer
    )
    trainable_in_run_precision(trainer.model, placement)
    optimizer = trainer.create_optimizer()
    assert isinstance(optimizer, bnb.optim.optimizer.Optimizer8bit)
    assert optimizer.is_paged and optimizer.args.optim_bits == 8

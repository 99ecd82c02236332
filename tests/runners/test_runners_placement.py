"""Where and in which precision a trial runs, and which optimizer a study gives it.

The CUDA branches of `resolve_placement` are logic tests: `torch.cuda.is_available` and
`torch.cuda.is_bf16_supported` are monkeypatched to describe a GPU this machine does not have,
and only the decision is checked (nothing touches a device). The CPU branches, the optimizer
resolution and the fp32 training of a 4-bit model run for real.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from support import write_tiny_study

from advisor.study import load_study, resolve_trial_config
from advisor.study.resolve import resolve_optimizer, trains_on_cuda
from runners.config import DataConfig, EvalConfig, MethodConfig, ModelRef, TrainConfig, TrialConfig
from runners.errors import TrialInputError
from runners.methods import METHODS
from runners.testing import toy_dataset, write_jsonl
from runners.train import Placement, resolve_placement, trainable_in_run_precision
from runners.trial import run_trial


def _config(tmp_path: Path, model: Path | str = "unused", **top) -> TrialConfig:
    train = write_jsonl(tmp_path / "train.jsonl", toy_dataset(16, seed=0))
    evals = write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    base = TrialConfig(
        study="placement",
        trial_number=0,
        seed=3,
        model=ModelRef(str(model)),
        data=DataConfig(str(train), str(evals)),
        method=MethodConfig("lora", r=4, lora_alpha=8, target_modules=("q_proj", "v_proj")),
        train=TrainConfig(max_steps=2, learning_rate=1e-3, eval_steps=2, max_seq_length=64),
        eval=EvalConfig(metric="json_match", max_new_tokens=4, samples_to_log=1, forgetting=False),
        output_dir=str(tmp_path / "out"),
    )
    train_cfg = dataclasses.replace(base.train, **top.pop("train", {}))
    method_cfg = dataclasses.replace(base.method, **top.pop("method", {}))
    return dataclasses.replace(base, train=train_cfg, method=method_cfg, **top)


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, *, native_bf16: bool) -> list[bool]:
    """A visible GPU; bf16 native (Ampere+) or only emulated (T4, V100). Records the calls."""
    calls: list[bool] = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        calls.append(including_emulation)
        return native_bf16 or including_emulation  # emulated bf16 "works" on every CUDA GPU

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return calls


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_cuda_is_bf16_where_native_else_fp16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    calls = _fake_gpu(monkeypatch, native_bf16=native)
    placement = resolve_placement(_config(tmp_path))
    assert (placement.device, placement.precision) == ("cuda", expected)
    assert calls == [False], "emulated bf16 (T4, V100) must not count as support"
    # fp16 is mixed precision: the weights (AMP's master copy) stay fp32; bf16 runs load bf16.
    assert placement.dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)


def test_explicit_precision_on_cuda_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_gpu(monkeypatch, native_bf16=False)
    placement = resolve_placement(_config(tmp_path, precision="fp32"))
    assert (placement.device, placement.precision) == ("cuda", "fp32")


def test_auto_on_cpu_is_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    placement = resolve_placement(_config(tmp_path))
    assert (placement.device, placement.precision) == ("cpu", "fp32")
    assert placement.dtype == torch.float32


@pytest.mark.parametrize(
    ("top", "where", "fix"),
    [
        ({"device": "cpu", "precision": "bf16"}, "precision", "fp32"),
        ({"device": "cpu", "precision": "fp16"}, "precision", "fp32"),
        ({"device": "cpu", "train": {"optimizer": "paged_adamw_8bit"}}, "train.optimizer", "adam"),
        ({"device": "cpu", "train": {"optimizer": "paged_adamw_32bit"}}, "train.optimizer", "adam"),
    ],
)
def test_cpu_refuses_gpu_only_settings_naming_field_and_fix(
    tmp_path: Path, top: dict, where: str, fix: str
) -> None:
    with pytest.raises(TrialInputError) as caught:
        resolve_placement(_config(tmp_path, **top))
    assert caught.value.where == where
    assert fix in (caught.value.fix or "")
    assert str(caught.value).startswith(f"{where}: ")


def test_cuda_requested_without_cuda_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TrialInputError, match="CUDA is not available") as caught:
        resolve_placement(_config(tmp_path, device="cuda"))
    assert caught.value.where == "device"


def test_trainable_weights_follow_the_run_precision(tiny_model: Path) -> None:
    """trl casts a 4-bit model's adapter to bf16; fp32 and fp16 runs get fp32 weights back."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    def adapter_in_bf16():
        model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(tiny_model),
            LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"),
        )
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.to(torch.bfloat16)
        return model

    def trainable_dtypes(model) -> set[torch.dtype]:
        return {p.dtype for p in model.parameters() if p.requires_grad}

    for precision in ("fp32", "fp16"):
        model = adapter_in_bf16()
        trainable_in_run_precision(model, Placement("cuda", precision))
        assert trainable_dtypes(model) == {torch.float32}
        frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
        assert frozen == {torch.float32}  # frozen weights untouched (they were fp32)
    model = adapter_in_bf16()
    trainable_in_run_precision(model, Placement("cuda", "bf16"))
    assert trainable_dtypes(model) == {torch.bfloat16}


def test_qlora_with_gradient_checkpointing_trains_fp32_adapter_on_cpu(
    tmp_path: Path, tiny_model: Path
) -> None:
    """The GPU recipe's pieces that run on CPU: NF4 base, checkpointing, fp32 adapter weights."""
    from safetensors.torch import load_file

    config = _config(
        tmp_path,
        tiny_model,
        method={"name": "qlora"},
        train={"gradient_checkpointing": True, "max_steps": 2},
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert (result.device, result.precision, result.steps) == ("cpu", "fp32", 2)
    assert result.peak_memory_mb and result.peak_memory_mb > 0
    assert result.peak_reserved_mb is None  # a CUDA figure
    weights = load_file(Path(result.adapter_dir) / "adapter_model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}
    assert any(k.endswith("lora_B.weight") and w.abs().sum() > 0 for k, w in weights.items()), (
        "lora_B starts at zero: a trained adapter has moved it (gradients flowed through the "
        "checkpointed layers)"
    )


def test_qlora_base_is_nf4_double_quant_in_the_run_dtype_on_cpu(
    tmp_path: Path, tiny_model: Path
) -> None:
    """The layers the GPU test checks on CUDA (tests/test_gpu_paths.py), here on the CPU."""
    import bitsandbytes as bnb

    from runners.methods import get_method
    from runners.models import load_model_and_tokenizer

    config = _config(tmp_path, tiny_model, method={"name": "qlora"})
    placement = resolve_placement(config)
    method = get_method("qlora")
    extra = method.load_kwargs(config.method, device=placement.device, dtype=placement.dtype)
    model, _ = load_model_and_tokenizer(
        config.model, device=placement.device, dtype=placement.dtype, **extra
    )
    layers = [m for m in method.prepare(model, config.method).modules()]
    quantised = [m for m in layers if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantised) == 2 * 7  # every decoder linear of the two layers; not lm_head
    for layer in quantised:
        assert layer.weight.quant_type == "nf4" and layer.weight.quant_state.nested
        assert layer.compute_dtype == placement.dtype == torch.float32


# -- train.optimizer: auto, decided in advisor.study.resolve ---------------------------------
def _spec(tmp_path: Path, tiny_model: Path, **overrides):
    return load_study(write_tiny_study(tmp_path, tiny_model, "opt", **overrides))


def _optimizer(spec, tmp_path: Path, *, cuda: bool | None) -> str:
    params = {"r": 2, "target_modules": "attention_qv", "learning_rate": 1e-3}
    config = resolve_trial_config(spec, params, trial_number=0, output_dir=str(tmp_path), cuda=cuda)
    return config.train.optimizer


def test_qlora_on_cuda_defaults_to_paged_adamw_8bit(tmp_path: Path, tiny_model: Path) -> None:
    qlora = _spec(tmp_path, tiny_model, method="qlora")
    assert qlora.train.optimizer == "auto"
    assert _optimizer(qlora, tmp_path, cuda=True) == "paged_adamw_8bit"
    assert _optimizer(qlora, tmp_path, cuda=False) == "adamw_torch"
    lora = _spec(tmp_path, tiny_model, method="lora")
    assert _optimizer(lora, tmp_path, cuda=True) == "adamw_torch"


def test_an_optimizer_the_user_set_is_kept(tmp_path: Path, tiny_model: Path) -> None:
    spec = _spec(tmp_path, tiny_model, method="qlora", train={"optimizer": "adamw_torch"})
    assert _optimizer(spec, tmp_path, cuda=True) == "adamw_torch"
    spec = _spec(tmp_path, tiny_model, method="lora", train={"optimizer": "paged_adamw_32bit"})
    assert _optimizer(spec, tmp_path, cuda=True) == "paged_adamw_32bit"


def test_auto_optimizer_asks_the_machine_only_for_auto_device(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert trains_on_cuda("auto") and trains_on_cuda("cuda") and not trains_on_cuda("cpu")
    spec = _spec(tmp_path, tiny_model, method="qlora")
    assert resolve_optimizer(spec) == "paged_adamw_8bit"  # this "machine" has a GPU
    on_cpu = _spec(tmp_path, tiny_model, method="qlora", device="cpu")
    assert resolve_optimizer(on_cpu) == "adamw_torch"  # the study pins the CPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert resolve_optimizer(spec) == "adamw_torch"
    assert METHODS["qlora"].optimizer(cuda=True) == "paged_adamw_8bit"
    assert METHODS["lora"].optimizer(cuda=True) == "adamw_torch"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"device": "cpu", "precision": "bf16"}, "precision: bf16 training is not supported"),
        ({"device": "cpu", "precision": "fp16"}, "precision: fp16 training is not supported"),
        (
            {"device": "cpu", "train": {"optimizer": "paged_adamw_8bit"}},
            "train.optimizer: optimizer 'paged_adamw_8bit' pages its state through CUDA",
        ),
    ],
)
def test_study_refuses_gpu_only_settings_on_cpu(
    tmp_path: Path, tiny_model: Path, overrides: dict, needle: str
) -> None:
    from advisor.errors import AdvisorInputError

    with pytest.raises(AdvisorInputError) as caught:
        _spec(tmp_path, tiny_model, **overrides)
    assert needle in str(caught.value)

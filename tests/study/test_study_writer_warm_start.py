"""`advisor recommend --write-study` starts the study from the recommendation (issue 16, item 6):
the recommended values that lie in the written space become `optuna.start`, marked
`recommended`; the recommender's batch and accumulation are the study's; and a recommendation
without target modules searches all linear layers. Pure Python: no model is loaded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits
from advisor.study import load_study
from advisor.study.writer import study_for_recommendation, write_study_file
from advisor.tuning.plan import RECOMMENDED, warm_start_points
from runners.methods.targets import TARGET_MODULE_PRESETS
from runners.testing import toy_dataset, write_jsonl

ALL_LINEAR = list(TARGET_MODULE_PRESETS["all_linear"])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", toy_dataset(8))
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    return tmp_path


def _lora(**hyperparameters):
    rec = recommend(Traits(model="smollm2-135m"))
    assert rec.method == "lora"
    return replace(rec, hyperparameters={**rec.hyperparameters, **hyperparameters})


def _study(rec) -> dict:
    return study_for_recommendation(
        rec, name="x", model="smollm2-135m", train="train.jsonl", eval_file="eval.jsonl"
    )


def test_the_recommended_point_is_the_studys_start(project: Path) -> None:
    rec = recommend(Traits(model="smollm2-135m"))
    hp = rec.hyperparameters
    assert hp["target_modules"] == ALL_LINEAR and hp["lora_alpha"] == 2 * hp["r"]
    optuna = _study(rec)["optuna"]
    assert optuna["warm_start"] is True and optuna["start_source"] == "recommended"
    # all_linear is the one target choice (not searched), so the point leaves it out
    assert optuna["start"] == {"learning_rate": hp["learning_rate"], "r": hp["r"], "alpha_ratio": 2}


def test_narrowed_targets_start_from_the_named_preset(project: Path) -> None:
    study = _study(_lora(target_modules=list(TARGET_MODULE_PRESETS["attention"])))
    assert study["search"]["target_modules"] == ["attention", "all_linear"]
    assert study["optuna"]["start"]["target_modules"] == "attention"


def test_values_outside_the_written_space_are_left_out(project: Path) -> None:
    """rsLoRA's alpha = 2 sqrt(r) is a ratio below the searched [1, 2]: the sampler picks it."""
    start = _study(_lora(r=64, use_rslora=True, lora_alpha=16))["optuna"]["start"]
    assert start["r"] == 64 and "alpha_ratio" not in start


def test_full_fine_tuning_starts_from_its_learning_rate(project: Path) -> None:
    rec = recommend(Traits(model="smollm2-135m", examples=200_000, vram_gb=8))
    study = _study(rec)
    assert study["method"] == "full" and set(study["search"]) == {"learning_rate"}
    assert study["optuna"]["start"] == {"learning_rate": rec.hyperparameters["learning_rate"]}


def test_batch_and_accumulation_are_the_recommenders(project: Path) -> None:
    rec = _lora(batch_size=2, gradient_accumulation_steps=8, epochs=1)
    train = _study(rec)["train"]
    assert train["batch_size"] == 2 and train["gradient_accumulation_steps"] == 8
    examples = rec.traits["examples"]
    assert train["max_steps"] == max(20, min(2000, round(examples / 16)))  # optimizer steps
    assert "use_rslora" not in str(_study(rec))  # no field for it in the study schema


def test_without_target_modules_the_study_trains_all_linear_layers(project: Path) -> None:
    rec = _lora()
    rec.hyperparameters.pop("target_modules")
    assert _study(rec)["search"]["target_modules"] == ["all_linear"]


def test_the_written_study_loads_and_tune_enqueues_the_recommended_point(project: Path) -> None:
    study = _study(_lora(target_modules=list(TARGET_MODULE_PRESETS["attention"])))
    path = write_study_file(project / "studies" / "x.yaml", study)
    assert yaml.safe_load(path.read_text())["optuna"]["start_source"] == "recommended"
    [(point, source)] = warm_start_points(load_study(path))
    assert source == RECOMMENDED == "recommended"
    assert point == {**study["optuna"]["start"], "target_modules": "attention"}

"""`advisor recommend --write-study` carries rsLoRA into the study (issue 16, item 1): a large-rank
recommendation (use_rslora, alpha = 2 sqrt(r)) is written as `use_rslora: true` with its alphas
named (no alpha_ratio holds alpha/sqrt(r) across ranks), the recommended alpha in the warm start;
the written study validates and its trials train with rsLoRA. Small ranks are written as before."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.cli import app
from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits
from advisor.study import load_study, resolve_trial_config
from advisor.study.writer import study_for_recommendation, write_study_file
from runners.testing import toy_dataset, write_jsonl

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", toy_dataset(8))
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    return tmp_path


def _recommendation(method: str = "lora", **hyperparameters):
    rec = recommend(Traits(model="smollm2-135m"))
    assert rec.method == "lora"
    return replace(rec, method=method, hyperparameters={**rec.hyperparameters, **hyperparameters})


def _study(rec) -> dict:
    return study_for_recommendation(
        rec, name="x", model="smollm2-135m", train="train.jsonl", eval_file="eval.jsonl"
    )


def test_rslora_is_written_with_alphas_of_scale_1_and_2(project: Path) -> None:
    study = _study(_recommendation(r=128, use_rslora=True, lora_alpha=23))
    search = study["search"]
    assert search["use_rslora"] is True and search["r"] == [64, 128, 256]
    assert "alpha_ratio" not in search
    assert search["lora_alpha"] == [round(math.sqrt(128)), 23]  # scales 1 and 2 at r=128
    assert study["optuna"]["start"] == {
        "learning_rate": study["optuna"]["start"]["learning_rate"],
        "r": 128,
        "lora_alpha": 23,
    }


def test_the_written_study_trains_the_recommended_point_with_rslora(project: Path) -> None:
    path = write_study_file(
        "out/x.yaml", _study(_recommendation(r=64, use_rslora=True, lora_alpha=16))
    )
    spec = load_study(path)
    assert spec.search.use_rslora is True and spec.search.lora_alpha == [8.0, 16.0]
    start = spec.optuna.start
    config = resolve_trial_config(
        spec, {**start, "target_modules": "all_linear"}, trial_number=0, output_dir="t", cuda=False
    )
    method = config.method
    assert (method.r, method.lora_alpha, method.use_rslora) == (64, 16.0, True)
    assert method.lora_alpha / math.sqrt(method.r) == 2  # the recommendation's scale


def test_plain_scaling_is_written_as_before(project: Path) -> None:
    rec = _recommendation()
    assert rec.hyperparameters["use_rslora"] is False
    search = _study(rec)["search"]
    assert "use_rslora" not in search and search["alpha_ratio"] == [1, 2]


def test_adalora_gets_no_rslora_its_layers_ignore(project: Path) -> None:
    study = _study(_recommendation("adalora", r=64, use_rslora=True, lora_alpha=16))
    assert study["method"] == "adalora"
    assert "use_rslora" not in study["search"] and study["search"]["alpha_ratio"] == [1, 2]
    load_study(write_study_file("out/x.yaml", study))  # valid


def test_recommend_writes_an_rslora_study_that_validates(project: Path, tiny_model: Path) -> None:
    """The real CLI, on a case whose recommendation has a large rank: ten million examples for
    an 8B model on an 80 GB card (r=128, rsLoRA); `advisor validate` accepts what it wrote."""
    result = runner.invoke(
        app,
        [
            "recommend", "--model", "llama-3-8b", "--examples", "10000000", "--vram", "80",
            "--train", "train.jsonl", "--eval", "eval.jsonl", "--study-model", str(tiny_model),
            "--write-study", "out.yaml", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hp = json.loads(result.stdout)["hyperparameters"]
    assert hp["use_rslora"] is True and hp["r"] >= 64
    written = yaml.safe_load(Path("out.yaml").read_text())
    assert written["search"]["use_rslora"] is True
    assert hp["lora_alpha"] in written["search"]["lora_alpha"]
    assert written["optuna"]["start"]["lora_alpha"] == hp["lora_alpha"]
    validated = runner.invoke(app, ["validate", "out.yaml"])
    assert validated.exit_code == 0, validated.output
    assert "use_rslora" in validated.output

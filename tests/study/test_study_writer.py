"""`advisor recommend --write-study`: a valid study around the recommendation, or a clear no."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.cli import app
from advisor.study import load_study
from runners.testing import toy_dataset, write_jsonl


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    return (
        write_jsonl(tmp_path / "data" / "train.jsonl", toy_dataset(8)),
        write_jsonl(tmp_path / "data" / "eval.jsonl", toy_dataset(4, seed=1)),
    )


def _recommend(*args: str):
    return CliRunner().invoke(app, ["recommend", *args], catch_exceptions=False)


def test_writes_a_valid_study_searching_around_the_recommendation(data, tmp_path: Path) -> None:
    train, eval_ = data
    out = tmp_path / "studies" / "mine.yaml"
    result = _recommend(
        "--model", "smollm2-135m", "--vram", "8", "--examples", "3000",
        "--write-study", str(out), "--train", str(train), "--eval", str(eval_),
        "--metric", "json_match", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert written["data"]["train"] == "../data/train.jsonl"
    spec = load_study(out)
    assert spec.method == "lora" and spec.metric == "json_match"
    import json

    rec = json.loads(result.stdout)
    assert rec["study_file"] == str(out)
    r = rec["hyperparameters"]["r"]
    assert r in written["search"]["r"] and 2 * r in written["search"]["r"]
    lr = rec["hyperparameters"]["learning_rate"]
    assert (
        written["search"]["learning_rate"]["low"] < lr < written["search"]["learning_rate"]["high"]
    )


def test_rag_plans_without_knowledge_write_nothing(data, tmp_path: Path) -> None:
    train, eval_ = data
    out = tmp_path / "rag.yaml"
    result = _recommend(
        "--goal", "knowledge", "--knowledge-changes", "--model", "smollm2-135m",
        "--write-study", str(out), "--train", str(train), "--eval", str(eval_),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "add --knowledge PATH" in result.stderr and not out.exists()


def test_shape_only_presets_need_a_local_model(data, tmp_path: Path) -> None:
    train, eval_ = data
    out = tmp_path / "big.yaml"
    result = _recommend(
        "--model", "llama-3-8b", "--write-study", str(out), "--train", str(train),
        "--eval", str(eval_),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--study-model" in result.stderr and not out.exists()


def test_write_study_needs_data(tmp_path: Path) -> None:
    result = _recommend("--model", "smollm2-135m", "--write-study", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2 and "--train FILE and --eval FILE" in result.stderr

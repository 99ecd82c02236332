"""`advisor recommend` (issue 16, items 1-4) through the CLI: reasons and sources beside the
starting hyperparameters, the fit with its headroom and levers, and closed weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

from layout_rows import write_layout
from typer.testing import CliRunner

from advisor.cli import app

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["recommend", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_hyperparameter_has_its_reason_and_source() -> None:
    out = _json("--model", "llama-3-8b", "--examples", "10000")
    assert set(out["hyperparameter_reasons"]) == set(out["hyperparameters"])
    for key, value in out["hyperparameters"].items():
        why = out["hyperparameter_reasons"][key]
        assert why["value"] == value and why["reason"] and why["source"] and why["rule"]
    # the keys other code reads stay where they were (study writer, service)
    assert {"r", "lora_alpha", "target_modules", "learning_rate", "epochs"} <= set(
        out["hyperparameters"]
    )


def test_the_fit_shows_its_headroom_and_levers() -> None:
    out = _json("--model", "llama-3-8b", "--vram", "24")
    fit = out["fit"]
    assert fit["method"] == out["method"] and fit["near_edge"]
    assert fit["usable_gb"] < 24 and fit["headroom_share"] > 0
    assert {lever["lever"] for lever in fit["levers"]} >= {"gradient_checkpointing", "qlora"}
    text = runner.invoke(app, ["recommend", "--model", "llama-3-8b", "--vram", "24"]).stdout
    assert "usable" in text and "Levers" in text and "QLoRA: LoRA on a 4-bit NF4 base" in text
    assert "attention-only LoRA underperforms" in text


def test_the_rank_reads_the_completion_tokens_of_train(tmp_path: Path) -> None:
    train = str(write_layout(tmp_path, "messages"))
    many = ("--model", "llama-3-8b", "--vram", "24", "--examples", "1000000", "--seq-len", "512")
    counted = _json(*many, "--train", train)
    assumed = _json(*many)
    assert "counted in --train" in counted["hyperparameter_reasons"]["r"]["reason"]
    assert counted["hyperparameters"]["r"] < assumed["hyperparameters"]["r"]


def test_api_weights_cannot_write_a_study(tmp_path: Path) -> None:
    train = str(write_layout(tmp_path, "messages"))
    target = tmp_path / "out" / "study.yaml"
    result = runner.invoke(
        app,
        ["recommend", "--weights", "api", "--train", train, "--eval", train,
         "--write-study", str(target)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--weights" in result.stderr and "fix:" in result.stderr
    assert "no weights" in result.stderr and "Traceback" not in result.output
    assert not os.path.lexists(target.parent)


def test_api_weights_json_plan() -> None:
    out = _json("--weights", "api", "--model", "gpt-4o")
    assert out["plan"] == ["prompting", "few_shot", "rag", "vendor_fine_tuning"]
    assert "prompt_tuning" not in out["plan"]

"""`advisor recommend` / `advisor estimate` through typer's CliRunner: output, JSON, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_recommend_json_top_level() -> None:
    result = _run("recommend", "--goal", "both", "--examples", "3000", "--model", "llama-2-7b",
                  "--vram", "24", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["method"] == "rag_lora" and out["plan"] == ["rag_lora"]
    assert {row["method"] for row in out["ranking"]} == {
        "rag", "rag_lora", "full", "sft", "lora", "qlora", "dora", "adalora", "prompt_tuning"
    }  # fmt: skip
    assert out["hyperparameters"]["lora_alpha"] == 2 * out["hyperparameters"]["r"]


def test_recommend_rich_output_shows_ranking_and_plan() -> None:
    result = _run("recommend", "--model", "llama-2-13b", "--vram", "16", "--examples", "3000")
    assert result.exit_code == 0, result.output
    assert "Recommended: qlora" in result.stdout
    assert "Ranking" in result.stdout and "Plan:" in result.stdout
    assert "--vram 16 GB" in result.stdout


def test_estimate_json_has_total_and_breakdown() -> None:
    result = _run("estimate", "--model", "llama-3-8b", "--method", "qlora", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["total_gb"] == pytest.approx(sum(out["breakdown"].values()), abs=0.01)
    assert {"weights", "quantization_overhead", "activations", "optimizer_states"} <= set(
        out["breakdown"]
    )


def test_estimate_gradient_checkpointing_lowers_activations() -> None:
    base = ["estimate", "--model", "llama-2-7b", "--method", "lora", "--seq-len", "2048", "--json"]
    plain = json.loads(_run(*base).stdout)
    ckpt = json.loads(_run(*base, "--gradient-checkpointing").stdout)
    assert ckpt["breakdown"]["activations"] < plain["breakdown"]["activations"] / 3


def test_estimate_reads_a_config_json(tmp_path: Path) -> None:
    config = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = _run("estimate", "--model", str(tmp_path), "--method", "full", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model_shape"]["hidden_size"] == 64


@pytest.mark.parametrize(
    ("args", "option", "fix"),
    [
        (["recommend", "--vram", "-8"], "--vram", "greater than 0"),
        (["recommend", "--examples", "0"], "--examples", "greater than 0"),
        (["recommend", "--goal", "facts"], "--goal", "knowledge"),
        (["recommend", "--model", "llama-9-1000b"], "--model", "llama-3-8b"),
        (["estimate", "--model", "nope-7b", "--method", "lora"], "--model", "presets"),
        (["estimate", "--model", "llama-3-8b", "--method", "magic"], "--method", "qlora"),
    ],
)
def test_bad_input_exit_2_names_option_and_fix(args: list[str], option: str, fix: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert option in result.stderr and "fix:" in result.stderr and fix in result.stderr


def test_unreadable_config_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{broken")
    result = _run("recommend", "--model", str(path))
    assert result.exit_code == 2
    assert "--model" in result.stderr and "cannot read" in result.stderr


def test_fits_nowhere_is_a_recommendation_not_an_error() -> None:
    result = _run("recommend", "--model", "llama-3-70b", "--vram", "8", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["fits_nowhere"] is True
    assert any("--gpus" in hint for hint in out["what_would_fit"])
    text = _run("recommend", "--model", "llama-3-70b", "--vram", "8").stdout
    assert "Nothing fits" in text

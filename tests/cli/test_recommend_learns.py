"""The learning loop (issue 16, items 5 and 9): `advisor recommend` for the tiny model changes
once a study of it is recorded, and names the study that moved it; without the store, or with
`--evidence none`, it does not. Reuses the session's recorded tiny study (nothing trains)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, snapshot
from typer.testing import CliRunner

from advisor.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _evidence_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the default store (./mlruns), which tests/conftest.py turns off."""
    monkeypatch.delenv("ADVISOR_EVIDENCE", raising=False)


def _recommend(where: Path, *args: str) -> dict:
    """`advisor recommend ... --json` run in the folder `where` (the default store is ./mlruns)."""
    old = Path.cwd()
    os.chdir(where)
    try:
        result = runner.invoke(app, ["recommend", *args, "--json"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_recorded_study_moves_the_recommendation_and_is_named(
    recorded_study, tiny_model, tmp_path, monkeypatch
):
    root: Path = recorded_study["root"]
    model = ("--model", str(tiny_model))
    before = _recommend(tmp_path, *model)  # no mlruns/ here: nothing to learn from
    stored = snapshot(root / "mlruns")
    after = _recommend(root, *model)  # the project's ./mlruns, by default
    assert snapshot(root / "mlruns") == stored  # reading the evidence writes nothing
    assert before["evidence"] == [] and before["method"] == after["method"] == "lora"
    assert after["hyperparameters"]["learning_rate"] != before["hyperparameters"]["learning_rate"]
    (used,) = after["evidence"]
    assert used["name"] == "recorded" and 0 < used["similarity"] <= 1
    assert used["found"]["best_params"]["learning_rate"] == 1e-2
    assert any(c.startswith("learning_rate ") for c in used["contributed"])
    moved = [r for r in after["reasons"] if r.startswith("moved learning_rate ")]
    assert moved and "study recorded's best trial 0" in moved[0] and "used 0.01" in moved[0]
    assert "study recorded" in after["hyperparameter_reasons"]["learning_rate"]["evidence"]
    # `--evidence none` turns it off; `--evidence DIR` reads it from anywhere
    assert (
        _recommend(root, *model, "--evidence", "none")["hyperparameters"]
        == before["hyperparameters"]
    )
    named = _recommend(tmp_path, *model, "--evidence", str(root / "mlruns"))
    assert named["hyperparameters"] == after["hyperparameters"]
    # so does ADVISOR_EVIDENCE, for scripts and CI that run recommend in a project folder
    monkeypatch.setenv("ADVISOR_EVIDENCE", "none")
    assert _recommend(root, *model)["hyperparameters"] == before["hyperparameters"]


def test_the_same_training_data_pulls_harder_than_other_data(recorded_study, tiny_model, tmp_path):
    root: Path = recorded_study["root"]
    (tmp_path / "other.jsonl").write_text((root / "train.jsonl").read_text() + "\n")
    args = ("--model", str(tiny_model), "--evidence", str(root))
    same = _recommend(root, *args, "--train", "train.jsonl")
    other = _recommend(root, *args, "--train", str(tmp_path / "other.jsonl"))
    assert same["evidence"][0]["likeness"]["data"] == 1.0
    assert other["evidence"][0]["likeness"]["data"] == 0.5
    assert same["evidence"][0]["similarity"] > other["evidence"][0]["similarity"]
    start = _recommend(root, *args[:2], "--evidence", "none", "--train", "train.jsonl")
    lr = [abs(_log(x["hyperparameters"]["learning_rate"]) - _log(1e-2)) for x in (same, other)]
    assert lr[0] < lr[1] < abs(_log(start["hyperparameters"]["learning_rate"]) - _log(1e-2))


def _log(value: float) -> float:
    import math

    return math.log(value)


CASES = [
    bad(
        "--evidence",
        "no finished studies there",
        "--evidence none",
        id="recommend-evidence-folder-without-a-store",
        args=("recommend", "--model", "llama-3-8b", "--evidence", "nowhere"),
    ),
    bad(
        "--evidence",
        "optuna.db",
        id="recommend-evidence-store-not-a-database",
        args=("recommend", "--model", "llama-3-8b", "--evidence", "mlruns"),
        prepare=lambda project: (
            (project / "mlruns").mkdir(),
            (project / "mlruns" / "optuna.db").write_text("not a database"),
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_evidence_is_refused(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)


def test_the_table_names_the_study_what_it_found_and_what_it_moved(recorded_study, tiny_model):
    root: Path = recorded_study["root"]
    result = runner.invoke(
        app, ["recommend", "--model", str(tiny_model), "--evidence", str(root)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Evidence (finished studies, most alike first):" in out
    assert "- recorded (lora on " in out and "best trial 0: json_match" in out
    assert "learning_rate=0.01" in out and "moved: learning_rate " in out
    assert "moved learning_rate" in out and "study recorded's best trial 0" in out

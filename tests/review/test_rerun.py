"""`advisor rerun`: a study rebuilt from its logs repeats its parameters and eval losses."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from support import write_tiny_study
from typer.testing import CliRunner

from advisor.cli import app
from advisor.errors import AdvisorInputError
from advisor.review.rerun import rerun
from advisor.stores.records import open_recorded_study
from advisor.tuning.entry import tune


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    root = tmp_path_factory.mktemp("rerun")
    study_file = write_tiny_study(root, tiny_model, "orig", search={"r": [2, 4, 8]})
    summary = tune(study_file, root=root)
    assert [r.state for r in summary.rows] == ["complete", "complete"]
    return root, study_file


def test_full_rerun_repeats_parameters_and_eval_losses(original) -> None:
    root, _ = original
    report = rerun("orig", root=root)
    assert report.rerun == "orig-rerun-1"
    assert [(t.original, t.rerun) for t in report.trials] == [(0, 0), (1, 1)]
    for trial in report.trials:
        assert trial.same_params
        assert trial.state == ("complete", "complete")
        assert trial.eval_loss_diff is not None and trial.eval_loss_diff <= 1e-6
    assert report.reproduced and not report.data_changed and not report.version_drift
    assert report.baseline[0] == report.baseline[1]
    recorded = open_recorded_study("orig-rerun-1", root=root)
    parent = recorded.tracker.client.get_run(recorded.tracker.parent_run_id)
    assert parent.data.tags["advisor.rerun_of"] == report.original_run_id
    assert parent.data.tags["advisor.rerun_of_study"] == "orig"


def test_one_trial_rerun_from_its_mlflow_run_id(original, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = original
    run_id = open_recorded_study("orig", root=root).trial_run_id(1)
    monkeypatch.chdir(root)  # the CLI finds the default stores under ./mlruns
    result = CliRunner().invoke(app, ["rerun", run_id, "--name", "orig-t1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rerun"] == "orig-t1" and report["reproduced"] is True
    (trial,) = report["trials"]
    assert (trial["original"], trial["rerun"]) == (1, 0)
    assert trial["same_params"] and trial["eval_loss_diff"] <= 1e-6


def test_changed_data_is_refused_unless_allowed(original) -> None:
    root, _ = original
    train = root / "train.jsonl"
    saved = train.read_text()
    try:
        train.write_text(saved.replace("red", "blue", 1))
        with pytest.raises(AdvisorInputError, match="data changed") as caught:
            rerun("orig", root=root, name="never")
        assert "--allow-data-change" in str(caught.value)
        storage = f"sqlite:///{root / 'mlruns' / 'optuna.db'}"
        names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
        assert "never" not in names
    finally:
        train.write_text(saved)

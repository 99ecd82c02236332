"""Failure isolation: trials over their time limit fail with the reason, the study goes on."""

from __future__ import annotations

from pathlib import Path

import optuna
from mlflow import MlflowClient
from support import write_tiny_study

from advisor.review.build import build_report
from advisor.stores.keys import ROLE
from advisor.stores.records import open_recorded_study
from advisor.tuning.entry import tune


def test_trials_over_the_time_limit_fail_and_the_study_goes_on(
    tmp_path: Path, tiny_model: Path
) -> None:
    # 3 s is far less than 5000 training steps: every trial hits the limit. (The baseline,
    # an evaluation of the tiny model forked from the pre-imported fork server, may finish.)
    study_file = write_tiny_study(
        tmp_path, tiny_model, "limits", trial={"timeout_s": 3}, train={"max_steps": 5000}
    )
    summary = tune(study_file, root=tmp_path)

    assert [r.state for r in summary.rows] == ["failed", "failed"]
    study = optuna.load_study(
        study_name="limits", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    )
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("limits").experiment_id])
    trials = [r for r in runs if r.data.tags.get(ROLE) == "trial"]
    assert len(trials) == 2
    for run in trials:
        assert run.info.status == "FAILED"
        assert run.data.tags["advisor.error"].startswith("TrialTimeout")
        assert "trial.log" in {a.path for a in client.list_artifacts(run.info.run_id)}

    report = build_report(open_recorded_study("limits", root=tmp_path))
    assert all("TrialTimeout" in (row.error or "") for row in report.rows)

"""`advisor tune` end to end on a tiny random Llama: real runner processes, real Optuna and MLflow
stores in a temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from support import crashing_python, write_tiny_study

from advisor.stores.keys import PARENT, ROLE, STATE
from advisor.tuning.entry import tune

TRIAL_METRICS = {
    "score",
    "eval_loss",
    "train_loss",
    "wall_seconds",
    "tokens_per_second",
    "peak_memory_mb",
    "trainable_params",
    "trainable_percent",
    "adapter_mb",
    "gpu_hours",
    "cost_usd",
}


def _runs(stores_root: Path, experiment: str):
    client = MlflowClient(f"sqlite:///{stores_root / 'mlruns' / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id])


def test_study_runs_every_trial_with_one_child_run_each(tmp_path: Path, tiny_model: Path) -> None:
    study_file = write_tiny_study(tmp_path, tiny_model, "e2e", optuna={"n_trials": 3})
    summary = tune(study_file, root=tmp_path, python=crashing_python(tmp_path, trial=1))

    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    study = optuna.load_study(study_name="e2e", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert "exited with code 9" in study.trials[1].user_attrs["error"]
    assert summary.baseline_score is not None
    assert [r.state for r in summary.rows] == ["complete", "failed", "complete"]

    client, runs = _runs(tmp_path, "e2e")
    parents = [r for r in runs if r.data.tags.get(ROLE) == "study"]
    trials = [r for r in runs if r.data.tags.get(ROLE) == "trial"]
    baselines = [r for r in runs if r.data.tags.get(ROLE) == "baseline"]
    assert len(parents) == 1 and len(baselines) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {"study.yaml", "provenance.json", "data_scan"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }
    assert parent.data.tags["advisor.data_hash.train"]
    assert sorted(int(r.data.tags["advisor.trial"]) for r in trials) == [0, 1, 2]
    for run in trials:
        assert run.data.tags[PARENT] == parent.info.run_id
        number = int(run.data.tags["advisor.trial"])
        trial = study.trials[number]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        for key in ("r", "target_modules", "learning_rate", "method"):
            assert key in run.data.params
        assert run.data.params["r"] == str(trial.params["r"])
        if number == 1:
            assert run.info.status == "FAILED" and run.data.tags[STATE] == "failed"
            continue
        assert run.info.status == "FINISHED" and run.data.tags[STATE] == "complete"
        assert set(run.data.metrics) >= TRIAL_METRICS
        assert run.data.metrics["score"] == pytest.approx(trial.value)
        assert run.data.metrics["trainable_params"] > 0
        assert run.data.metrics["cost_usd"] == pytest.approx(
            run.data.metrics["wall_seconds"] / 3600 * 3.6, rel=1e-6
        )
        curve = client.get_metric_history(run.info.run_id, "eval_loss")
        assert {m.step for m in curve} >= {2, 4}
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"adapter", "trial_config.json", "trial_result.json", "trial.log"} <= artifacts

    # The best trial's adapter is in the model registry, once.
    assert summary.registered_model == "e2e-adapter/1"
    best_run = study.trials[summary.best[0]].user_attrs["mlflow_run_id"]
    (version,) = client.search_model_versions("name = 'e2e-adapter'")
    assert version.run_id == best_run

    # Running the same study again continues it: finished trials (the failed one included)
    # are not repeated, the baseline is reused, and the parent run is the same.
    again = tune(study_file, root=tmp_path, n_trials=4)
    assert again.skipped_finished == 3
    assert [r.number for r in again.rows] == [0, 1, 2, 3]
    assert [r.params for r in again.rows[:3]] == [r.params for r in summary.rows]
    assert again.parent_run_id == parent.info.run_id
    _, runs = _runs(tmp_path, "e2e")
    roles = [r.data.tags.get(ROLE) for r in runs]
    assert (roles.count("trial"), roles.count("baseline"), roles.count("study")) == (4, 1, 1)


def test_the_median_pruner_prunes_trials_that_do_not_learn(recorded_study) -> None:
    # The recorded study's grid: lr 1e-2 and 3e-2 learn; 1e-7 and 2e-7 barely move, so at an
    # early eval their loss is worse than the median of the finished trials and they stop there.
    summary = recorded_study["summary"]
    states = {r.params["learning_rate"]: r.state for r in summary.rows}
    assert states[1e-2] == "complete"
    assert "pruned" in {states[1e-7], states[2e-7]}
    storage = f"sqlite:///{recorded_study['root'] / 'mlruns' / 'optuna.db'}"
    trials = optuna.load_study(study_name="recorded", storage=storage).trials
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(max(t.intermediate_values) < 6 for t in pruned)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_unknown_target_module_is_refused_before_any_trial(
    tmp_path: Path, tiny_model: Path
) -> None:
    from advisor.errors import AdvisorInputError

    study_file = write_tiny_study(
        tmp_path, tiny_model, "badmod", search={"target_modules": [["qproj"]]}
    )
    with pytest.raises(AdvisorInputError, match="q_proj"):
        tune(study_file, root=tmp_path)
    assert not (tmp_path / "mlruns" / "optuna.db").exists()

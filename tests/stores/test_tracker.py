"""MLflow tracking on a temporary SQLite store: parent/child runs, states, reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.stores.keys import PARENT, ROLE, STATE
from advisor.stores.locations import Stores
from advisor.stores.tracker import StudyTracker
from runners.config import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelRef,
    TrainConfig,
    TrialConfig,
    TrialResult,
)


def _config(n: int = 0, baseline: bool = False) -> TrialConfig:
    return TrialConfig(
        study="s1",
        trial_number=n,
        seed=7,
        model=ModelRef("tiny"),
        data=DataConfig("train.jsonl", "eval.jsonl"),
        method=MethodConfig("lora", r=8, lora_alpha=16, target_modules=("q_proj", "v_proj")),
        train=TrainConfig(max_steps=4, learning_rate=1e-3),
        eval=EvalConfig(metric="exact_match"),
        output_dir="/tmp/x",
        baseline=baseline,
    )


def _start(stores: Stores, name: str = "s1") -> StudyTracker:
    tracker = StudyTracker(stores.tracking_uri, stores.artifact_root, name)
    tracker.start_study(
        name,
        spec_yaml="name: s1\n",
        spec_hash="abc",
        data_hashes={"train": "h1", "eval": "h2"},
        seed=7,
        versions={"torch": "2.13.0"},
        git_commit="deadbeef",
        optuna_url="postgresql://u:secret@db/optuna",
        params={"metric": "exact_match"},
    )
    return tracker


def test_default_stores_are_sqlite_files_under_mlruns(tmp_path: Path) -> None:
    stores = Stores.resolve(root=tmp_path)
    assert stores.tracking_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert stores.optuna_url == f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    assert stores.artifact_root == (tmp_path / "mlruns" / "artifacts").as_uri()
    # Nothing exists until a store is opened: a command refused before that leaves no trace.
    assert not (tmp_path / "mlruns").exists()
    StudyTracker(stores.tracking_uri, stores.artifact_root, "e")
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()


def test_parent_run_records_provenance_and_is_reused(stores: Stores) -> None:
    tracker = _start(stores)
    run = tracker.client.get_run(tracker.parent_run_id)
    assert run.data.tags[ROLE] == "study"
    assert run.data.tags["advisor.data_hash.train"] == "h1"
    assert run.data.tags["mlflow.source.git.commit"] == "deadbeef"
    assert "secret" not in run.data.tags["advisor.optuna_storage"]
    assert run.data.params["version.torch"] == "2.13.0"
    artifacts = {a.path for a in tracker.client.list_artifacts(tracker.parent_run_id)}
    assert {"study.yaml", "provenance.json"} <= artifacts
    again = _start(stores)
    assert again.parent_run_id == tracker.parent_run_id


def test_child_runs_link_to_parent_and_record_state(stores: Stores, tmp_path: Path) -> None:
    tracker = _start(stores)
    ok = tracker.start_trial(0, params={"r": 8, "learning_rate": 1e-3}, config=_config(0))
    bad = tracker.start_trial(1, params={"r": 16}, config=_config(1))
    tracker.log_metrics(ok, {"eval_loss": 2.5}, step=2)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    result = TrialResult(
        state="complete",
        metric="exact_match",
        score=0.5,
        eval_loss=1.5,
        steps=4,
        wall_seconds=3.0,
        trainable_params=10,
        total_params=1000,
        eval_curve=[(2, 2.5), (4, 1.5)],
    )
    tracker.finish_trial(ok, result, derived={"cost_usd": 0.01}, files=[adapter])
    tracker.finish_trial(
        bad, TrialResult(state="failed", metric="exact_match", error="boom"), derived={}
    )

    good = tracker.client.get_run(ok)
    assert good.data.tags[PARENT] == tracker.parent_run_id
    assert good.data.tags[STATE] == "complete"
    assert good.info.status == "FINISHED"
    assert good.data.params["r"] == "8"
    assert good.data.metrics["score"] == 0.5
    assert good.data.metrics["trainable_percent"] == pytest.approx(1.0)
    history = tracker.client.get_metric_history(ok, "eval_loss")
    assert [(m.step, m.value) for m in history] == [(2, 2.5), (4, 1.5)]
    names = {a.path for a in tracker.client.list_artifacts(ok)}
    assert {"adapter", "trial_config.json", "trial_result.json"} <= names

    failed = tracker.client.get_run(bad)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["advisor.error"] == "boom"
    assert "score" not in failed.data.metrics
    assert [r.info.run_id for r in tracker.child_runs("trial")] == [ok, bad]


def test_reconcile_closes_runs_left_running(stores: Stores) -> None:
    tracker = _start(stores)
    stale = tracker.start_trial(0, params={}, config=_config(0))
    live = tracker.start_trial(1, params={}, config=_config(1))
    assert tracker.reconcile(live_trial_numbers=[1]) == [stale]
    assert tracker.client.get_run(stale).info.status == "KILLED"
    assert tracker.client.get_run(live).info.status == "RUNNING"


def test_finished_baseline_roundtrips_the_result(stores: Stores) -> None:
    tracker = _start(stores)
    assert tracker.finished_baseline() is None
    run = tracker.start_trial(None, params={}, config=_config(-1, baseline=True), baseline=True)
    result = TrialResult(state="complete", metric="exact_match", score=0.125, eval_loss=3.0)
    tracker.finish_trial(run, result, derived={})
    found = tracker.finished_baseline()
    assert found is not None and found[0] == run
    assert found[1].score == 0.125


def test_experiments_open_on_the_runs_table(stores: Stores) -> None:
    """MLflow 3's UI reads `mlflow.experimentKind`; an experiment without it (made by an older
    advisor) is tagged when advisor opens it again."""
    from advisor.stores import keys

    tracker = _start(stores)
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags[keys.EXPERIMENT_KIND] == "custom_model_development"
    tracker.client.delete_experiment_tag(tracker.experiment_id, keys.EXPERIMENT_KIND)
    again = StudyTracker(stores.tracking_uri, stores.artifact_root, "s1")
    tags = again.client.get_experiment(again.experiment_id).tags
    assert tags[keys.EXPERIMENT_KIND] == "custom_model_development"


def test_a_trial_run_logs_where_its_time_went(stores: Stores) -> None:
    from advisor.stores import keys

    tracker = _start(stores)
    run = tracker.start_trial(0, params={}, config=_config(0))
    result = TrialResult(
        state="complete",
        metric="exact_match",
        score=0.5,
        steps=4,
        wall_seconds=20.0,
        load_seconds=3.0,
        train_seconds=8.0,
        eval_loss_seconds=1.0,
        eval_seconds=5.0,
        forgetting_seconds=2.5,
    )
    tracker.finish_trial(run, result, derived={})
    metrics = tracker.client.get_run(run).data.metrics
    logged = {phase: metrics[name] for phase, name in keys.PHASE_SECONDS.items()}
    tracking = logged.pop("tracking")
    assert logged == {
        "load": 3.0,
        "index": 0.0,  # no retrieval method: nothing indexed
        "train": 8.0,
        "eval_loss": 1.0,
        "generation": 5.0,
        "probes": 2.5,
        "setup_save": 0.5,  # the runner's wall time no phase clocked
    }
    assert 0.0 < tracking < 30.0  # opening the run and recording it, in this process


def test_the_parent_run_carries_the_outcome(stores: Stores) -> None:
    from advisor.stores import keys
    from advisor.stores.outcome import Outcome

    tracker = _start(stores)
    first = Outcome(
        trials_done=1,
        total_cost=0.5,
        best_score=0.4,
        gain=0.1,
        best_trial=0,
        best_params={"r": 8, "target_modules": ("q_proj", "v_proj")},
    )
    tracker.record_outcome(first)
    tracker.record_outcome(
        Outcome(
            trials_done=2,
            total_cost=1.25,
            best_score=0.7,
            gain=0.4,
            best_trial=1,
            best_params={"r": 16},
        )
    )
    parent = tracker.client.get_run(tracker.parent_run_id)
    assert parent.data.metrics[keys.BEST_SCORE] == 0.7
    assert parent.data.metrics[keys.BEST_GAIN] == pytest.approx(0.4)
    assert parent.data.metrics[keys.BEST_TRIAL] == 1
    assert parent.data.metrics[keys.TRIALS_DONE] == 2
    assert parent.data.metrics[keys.TOTAL_COST] == 1.25
    best = {k: v for k, v in parent.data.tags.items() if k.startswith("best.")}
    assert best == {"best.r": "16"}  # the first best's target_modules is gone with it
    history = tracker.client.get_metric_history(tracker.parent_run_id, keys.BEST_SCORE)
    assert [(m.step, m.value) for m in history] == [(1, 0.4), (2, 0.7)]

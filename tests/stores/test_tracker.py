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

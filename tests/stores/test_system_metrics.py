"""System metrics per trial run: MLflow's SystemMetricsMonitor, started by advisor.stores.

Real monitors, real SQLite stores: the monitor's thread writes while the main thread writes
too (the pattern of a trial whose eval losses stream in), and a whole `advisor tune --json`
run proves the trial runs carry `system/*` metrics and stdout stays one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from support import write_tiny_study

from advisor.stores.keys import ROLE
from advisor.stores.locations import Stores
from advisor.stores.system_metrics import only_visible_gpus as _only_visible_gpus
from advisor.stores.tracker import StudyTracker
from runners.config import TrialConfig

SYSTEM = {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"}


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor" and t.is_alive()]


def _tracker(stores: Stores, interval: float) -> tuple[StudyTracker, str]:
    tracker = StudyTracker(
        stores.tracking_uri, stores.artifact_root, "sysmetrics", system_metrics_s=interval
    )
    tracker.start_study(
        "sysmetrics",
        spec_yaml="name: sysmetrics\n",
        spec_hash="0" * 16,
        data_hashes={},
        seed=0,
        versions={},
        git_commit=None,
        optuna_url="sqlite://",
    )
    config = TrialConfig.from_dict(json.loads(json.dumps(_config_dict())))
    return tracker, tracker.start_trial(0, params={"r": 4}, config=config)


def _config_dict() -> dict:
    return {
        "study": "sysmetrics",
        "trial_number": 0,
        "seed": 0,
        "model": {"source": "m"},
        "data": {"train_path": "t.jsonl", "eval_path": "e.jsonl"},
        "method": {"name": "lora"},
        "train": {"max_steps": 1, "learning_rate": 1e-3},
        "eval": {},
        "output_dir": "out",
    }


def test_monitor_logs_while_the_main_thread_writes_to_sqlite(stores: Stores) -> None:
    tracker, run_id = _tracker(stores, interval=0.1)
    with tracker.system_metrics(run_id):
        assert len(_monitor_threads()) == 1
        for step in range(40):  # eval losses streaming in while the monitor logs: no lock error
            tracker.log_metrics(run_id, {"eval_loss": 1.0 / (step + 1)}, step=step)
            time.sleep(0.02)
        time.sleep(0.5)
    assert _monitor_threads() == []
    client = MlflowClient(stores.tracking_uri)
    metrics = client.get_run(run_id).data.metrics
    assert metrics.keys() >= SYSTEM
    assert metrics["system/system_memory_usage_megabytes"] > 0
    assert len(client.get_metric_history(run_id, "eval_loss")) == 40
    samples = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert len(samples) >= 2, "sampled every 0.1 s for over a second"


@pytest.mark.parametrize("stop", [RuntimeError("trial crashed"), KeyboardInterrupt()])
def test_monitor_stops_when_the_trial_ends_badly(stores: Stores, stop: BaseException) -> None:
    tracker, run_id = _tracker(stores, interval=0.1)
    with pytest.raises(type(stop)), tracker.system_metrics(run_id):
        time.sleep(0.3)
        raise stop
    assert _monitor_threads() == []
    tracker.abort_run(run_id, reason="stopped")
    assert MlflowClient(stores.tracking_uri).get_run(run_id).info.status == "KILLED"


def test_interval_zero_starts_no_monitor(stores: Stores) -> None:
    tracker, run_id = _tracker(stores, interval=0)
    with tracker.system_metrics(run_id):
        assert _monitor_threads() == []
        time.sleep(0.2)
    metrics = MlflowClient(stores.tracking_uri).get_run(run_id).data.metrics
    assert not any(k.startswith("system/") for k in metrics)


def test_gpu_monitor_keeps_the_workers_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML lists every GPU; `--gpus 2,0` keeps those two, as gpu_0 and gpu_1 (logic test)."""
    gpu = SimpleNamespace(gpu_handles=["h0", "h1", "h2", "h3"])
    cpu = SimpleNamespace()
    monitor = SimpleNamespace(monitors=[cpu, gpu])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    _only_visible_gpus(monitor)
    assert gpu.gpu_handles == ["h2", "h0"] and not hasattr(cpu, "gpu_handles")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8c4f1a2e,GPU-1b2c3d4e")
    _only_visible_gpus(monitor)
    assert gpu.gpu_handles == ["h2", "h0"], "UUIDs cannot be mapped to NVML indices: keep all"


def test_tune_json_run_records_system_metrics_per_trial(tmp_path: Path, tiny_model: Path) -> None:
    study = write_tiny_study(
        tmp_path,
        tiny_model,
        "sys",
        optuna={"n_trials": 1},
        tracking={"system_metrics_s": 0.2},
        train={"max_steps": 6, "eval_steps": 3},
    )
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "tune", str(study), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # nothing but the summary on stdout
    assert [row["state"] for row in summary["rows"]] == ["complete"]
    assert "Traceback" not in done.stderr and "system metrics" not in done.stderr.lower()

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sys")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get(ROLE) in ("trial", "baseline")]
    assert len(trials) == 2
    for run in trials:
        assert run.data.metrics.keys() >= SYSTEM, run.data.tags.get(ROLE)
        assert "peak_memory_mb" in run.data.metrics
        assert "peak_reserved_mb" not in run.data.metrics  # CPU: a CUDA-only figure

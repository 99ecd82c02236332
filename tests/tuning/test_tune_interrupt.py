"""Ctrl-C or SIGTERM during `advisor tune`: the running trial is failed in Optuna and KILLED in
MLflow, the command exits 130 (143 for SIGTERM), and running it again retries the stopped trial
with the same parameters."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from support import processes_touching, write_tiny_study

from advisor.stores.keys import ROLE, STATE


def _mid_training(db: Path) -> bool:
    """Whether a RUNNING trial has reported its first eval loss (half-way through its steps).

    A read-only look at the Optuna SQLite file: opening it through Optuna would initialise the
    schema and race the `tune` process creating it."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            found = conn.execute(
                "SELECT count(*) FROM trials t JOIN trial_intermediate_values v "
                "ON v.trial_id = t.trial_id WHERE t.state = 'RUNNING'"
            ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return False
    return bool(found and found[0])


@pytest.mark.system
@pytest.mark.skipif(os.name != "posix", reason="signals")
@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stopped_trial_is_killed_cleanly_and_retried(
    tmp_path: Path, tiny_model: Path, signum: int, code: int, word: str
) -> None:
    # 400 tiny steps take ~10 s: the signal lands between the first eval (step 200) and the end
    # on a fast machine as on a busy one.
    study_file = write_tiny_study(
        tmp_path, tiny_model, "intr", train={"max_steps": 400, "eval_steps": 200}
    )
    storage = f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}"
    command = [sys.executable, "-m", "advisor", "tune", str(study_file), "--n-trials", "1"]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not _mid_training(tmp_path / "mlruns" / "optuna.db"):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.5)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert word in err

    study = optuna.load_study(study_name="intr", storage=storage)
    stopped, retry = study.trials
    assert stopped.state.name == "FAIL" and retry.state.name == "WAITING"
    assert retry.params == stopped.params and retry.system_attrs["failed_trial"] == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("intr").experiment_id])
    trial_run = next(r for r in runs if r.data.tags.get(ROLE) == "trial")
    parent = next(r for r in runs if r.data.tags.get(ROLE) == "study")
    assert trial_run.info.status == "KILLED" and trial_run.data.tags[STATE] == "failed"
    assert word in trial_run.data.tags["advisor.error"]
    assert parent.info.status == "KILLED"
    # No runner process is left behind.
    assert processes_touching(str(tmp_path)) == []
    assert processes_touching("advisor-intr-trial") == []

    # The same command continues: the stopped trial stays FAIL, its retry runs its parameters
    # and takes its place in the budget (one trial wanted, one complete).
    again = subprocess.run(
        [*command, "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="intr", storage=storage)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert study.trials[1].params == stopped.params

"""Many workers on one study, and workers that die: real processes, real signals, a real
PostgreSQL (tests/postgres.py) for the multi-worker cases and SQLite for the single machine.

Each case checks what a user relies on: exactly the requested trials complete, no parameter set
twice, one MLflow child run per Optuna trial, a killed worker's trial failed and retried with
the same parameters, finished trials untouched, and no MLflow run left RUNNING.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import optuna
import pytest
from mlflow import MlflowClient
from support import processes_touching, write_tiny_study

from advisor.stores.keys import PARENT, ROLE, STATE, TRIAL

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.name != "posix", reason="signals and process groups"),
]

GRID = {
    "r": [2, 4],
    "alpha_ratio": 2,
    "target_modules": ["attention_qv", "all_linear"],
    "learning_rate": [3e-3],
}
GRID_POINTS = {
    (r, t) for r, t in itertools.product(GRID["r"], GRID["target_modules"])
}  # learning_rate and alpha_ratio are fixed


def _grid_study(tmp_path: Path, model: Path, name: str, **overrides) -> Path:
    return write_tiny_study(
        tmp_path,
        model,
        name,
        search=GRID,
        optuna={"sampler": "grid", "pruner": "none", "n_trials": 4, **overrides.pop("optuna", {})},
        **overrides,
    )


def _advisor(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "advisor", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 400) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}\n{err[-3000:]}"
    return out


def _wait_for(condition: Callable[[], object], what: str, *processes, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        for p in processes:
            assert p.poll() is None, f"{p.args} ended early: {p.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _running_on_postgres(url: str) -> list[tuple[int, str]]:
    """(trial number, worker) of RUNNING trials, read with plain SQL: opening the storage through
    Optuna before `tune` made its tables would race the schema creation."""
    import psycopg

    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('trial_user_attributes')").fetchone()[0]
        if exists is None:
            return []
        rows = conn.execute(
            "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a "
            "ON a.trial_id = t.trial_id AND a.key = 'advisor.worker' WHERE t.state = 'RUNNING'"
        ).fetchall()
    return [(number, json.loads(worker)) for number, worker in rows]


def _running_on_sqlite(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = 'advisor.worker' "
                "WHERE t.state = 'RUNNING'"
            ).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    return [(number, json.loads(worker)) for number, worker in rows]


def _runner_alive(study: str, number: int) -> bool:
    """Whether the trial's runner process (its work dir names study and trial) still exists."""
    return bool(processes_touching(f"advisor-{study}-trial{number}-"))


def _kill_mid_trial(
    process: subprocess.Popen[str], running: Callable[[], list[int]], study: str, *others
) -> int:
    """SIGKILL `process` while its trial's runner is alive; the number of the trial it left
    RUNNING, read from the store after the kill.

    A trial forked from the warm fork server trains the tiny model's 40 steps in a second or
    two, so a trial picked before the kill (then a sleep) may have completed by then (CI saw
    it: the "killed" trial was COMPLETE). The store's state after the kill cannot move."""
    _wait_for(
        lambda: [n for n in running() if _runner_alive(study, n)],
        "a trial's runner to start",
        process,
        *others,
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    (killed,) = running()
    return killed


def _key(params: dict) -> tuple:
    return params["r"], params["target_modules"]


def _mlflow_children(tracking_uri: str, study: str) -> tuple[object, list]:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get(ROLE) == "study"]
    children = [r for r in runs if r.data.tags.get(PARENT) == parent.info.run_id]
    return parent, children


@contextlib.contextmanager
def _mlflow_server(backend_uri: str, artifacts: Path):
    """A real `mlflow server` on 127.0.0.1 with a SQL backend that serves artifacts itself."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        _wait_for(healthy, "the MLflow server", server, timeout=120)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_three_workers_share_one_grid_study_on_postgresql(
    tmp_path: Path, tiny_model: Path, postgres_url: str, postgres_server: str
) -> None:
    import postgres

    study_file = _grid_study(tmp_path, tiny_model, "fleet")
    with (
        postgres.fresh_database(postgres_server) as backend,
        _mlflow_server(backend, tmp_path / "served-artifacts") as tracking_uri,
    ):
        stores = ["--storage", postgres_url, "--tracking-uri", tracking_uri]
        coordinator = _advisor("tune", str(study_file), *stores, "--json", cwd=tmp_path)
        workers = [
            _advisor("worker", str(study_file), *stores, "--json", cwd=tmp_path) for _ in range(2)
        ]
        summaries = [json.loads(_finish(p)) for p in (coordinator, *workers)]
        pids = {p.pid for p in (coordinator, *workers)}

        study = optuna.load_study(study_name="fleet", storage=postgres_url)
        trials = study.get_trials()
        assert [t.state.name for t in trials] == ["COMPLETE"] * 4
        assert {_key(t.params) for t in trials} == GRID_POINTS  # every point once, none twice
        assert {int(t.user_attrs["advisor.worker"].rsplit(":", 1)[1]) for t in trials} <= pids

        parent, children = _mlflow_children(tracking_uri, "fleet")
        trial_runs = [r for r in children if r.data.tags[ROLE] == "trial"]
        assert sorted(int(r.data.tags[TRIAL]) for r in trial_runs) == [0, 1, 2, 3]
        assert {t.user_attrs["mlflow_run_id"] for t in trials} == {
            r.info.run_id for r in trial_runs
        }
        assert all(r.info.status == "FINISHED" for r in children)
        assert len([r for r in children if r.data.tags[ROLE] == "baseline"]) == 1
        assert parent.info.status == "FINISHED"
        # Artifacts went through the server: the best adapter is registered and downloadable.
        assert summaries[0]["registered_model"] == "fleet-adapter/1"
        assert list((tmp_path / "served-artifacts").rglob("adapter_model.safetensors"))
        # No password in what the commands print.
        password = urlsplit(postgres_url).password
        assert not password or all(password not in json.dumps(s) for s in summaries)


def test_a_killed_worker_s_trial_is_retried_by_the_survivor(
    tmp_path: Path, tiny_model: Path, postgres_url: str, postgres_server: str
) -> None:
    import postgres

    study_file = _grid_study(
        tmp_path,
        tiny_model,
        "crash",
        optuna={"heartbeat_interval": 1, "grace_period": 3},
        train={"max_steps": 40, "eval_steps": 20},
    )
    with postgres.fresh_database(postgres_server) as tracking_uri:
        stores = ["--storage", postgres_url, "--tracking-uri", tracking_uri]
        coordinator = _advisor("tune", str(study_file), *stores, "--json", cwd=tmp_path)
        victim = _advisor("worker", str(study_file), *stores, cwd=tmp_path)
        killed = _kill_mid_trial(
            victim,
            lambda: [
                n for n, w in _running_on_postgres(postgres_url) if w.endswith(f":{victim.pid}")
            ],
            "crash",
            coordinator,
        )
        study = optuna.load_study(study_name="crash", storage=postgres_url)
        before = {
            t.number: (t.values, t.datetime_complete)
            for t in study.get_trials()
            if t.state.name == "COMPLETE"
        }
        _wait_for(lambda: not _runner_alive("crash", killed), "the orphaned runner to die")
        _finish(coordinator)

        study = optuna.load_study(study_name="crash", storage=postgres_url)
        trials = study.get_trials()
        states = [t.state.name for t in trials]
        assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1, states
        (failed,) = [t for t in trials if t.state.name == "FAIL"]
        assert failed.number == killed
        (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
        assert retry.state.name == "COMPLETE" and retry.params == failed.params
        assert {_key(t.params) for t in trials if t.state.name == "COMPLETE"} == GRID_POINTS
        after = {t.number: (t.values, t.datetime_complete) for t in trials}
        assert all(after[n] == v for n, v in before.items())  # finished trials untouched

        parent, children = _mlflow_children(tracking_uri, "crash")
        by_trial = {int(r.data.tags[TRIAL]): r for r in children if r.data.tags[ROLE] == "trial"}
        assert sorted(by_trial) == [t.number for t in trials]  # one run per trial
        assert by_trial[killed].info.status == "KILLED"
        assert by_trial[killed].data.tags[STATE] == "failed"
        assert all(r.info.status != "RUNNING" for r in [parent, *children])


def test_a_restarted_worker_fails_and_retries_its_own_killed_trial_at_once(
    tmp_path: Path, tiny_model: Path
) -> None:
    # Default heartbeats (30 s beat, 120 s grace): the restart must not wait for them.
    study_file = _grid_study(
        tmp_path, tiny_model, "solo", train={"max_steps": 40, "eval_steps": 20}
    )
    db = tmp_path / "mlruns" / "optuna.db"
    first = _advisor("tune", str(study_file), cwd=tmp_path)
    killed = _kill_mid_trial(first, lambda: [n for n, _ in _running_on_sqlite(db)], "solo")
    _wait_for(lambda: not _runner_alive("solo", killed), "the orphaned runner to die")

    restarted = datetime.now()
    _finish(_advisor("tune", str(study_file), "--json", cwd=tmp_path))
    storage = f"sqlite:///{db}"
    trials = optuna.load_study(study_name="solo", storage=storage).get_trials()
    failed = trials[killed]
    assert failed.state.name == "FAIL"
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert retry.state.name == "COMPLETE" and retry.params == failed.params
    assert [t.state.name for t in trials].count("COMPLETE") == 4
    # Failed at start-up and retried first, without sitting out the 120 s grace period.
    assert failed.datetime_complete - restarted < timedelta(seconds=60)
    assert retry.number == killed + 1

    parent, children = _mlflow_children(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "solo")
    by_trial = {int(r.data.tags[TRIAL]): r for r in children if r.data.tags[ROLE] == "trial"}
    assert by_trial[killed].info.status == "KILLED"
    assert "process ended" in by_trial[killed].data.tags["advisor.error"]
    assert all(r.info.status != "RUNNING" for r in [parent, *children])


def test_two_tunes_started_at_once_in_a_fresh_folder_coordinate_one_study(
    tmp_path: Path, tiny_model: Path
) -> None:
    """The issue's store corruption: both died with alembic tracebacks (one left `mlflow.db`
    half-migrated), and on existing stores both seeded their samplers alike. Now the stores are
    created once, under a lock, and the second `tune` joins the first as a worker."""
    study_file = write_tiny_study(
        tmp_path, tiny_model, "twice", optuna={"sampler": "random", "n_trials": 4}
    )
    both = [_advisor("tune", str(study_file), "--json", cwd=tmp_path) for _ in range(2)]
    summaries = [json.loads(_finish(p)) for p in both]

    joined = [s for s in summaries if any("joins it as a worker" in n for n in s["notes"])]
    assert len(joined) == 1, [s["notes"] for s in summaries]
    mlruns = tmp_path / "mlruns"
    for db in ("optuna.db", "mlflow.db"):
        with sqlite3.connect(f"file:{mlruns / db}?mode=ro", uri=True) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
        assert tables and not [t for t in tables if t.startswith("_alembic_tmp")], tables
    trials = optuna.load_study(study_name="twice", storage=f"sqlite:///{mlruns / 'optuna.db'}")
    trials = trials.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4  # one budget, not two
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4
    parent, children = _mlflow_children(f"sqlite:///{mlruns / 'mlflow.db'}", "twice")
    assert sorted(int(r.data.tags[TRIAL]) for r in children if r.data.tags[ROLE] == "trial") == [
        0,
        1,
        2,
        3,
    ]
    assert all(r.info.status == "FINISHED" for r in [parent, *children])

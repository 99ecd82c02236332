"""The decision service end to end: the real `advisor serve` in a subprocess, a study submitted
over HTTP, the real `advisor worker` started with the command the service answered, status
polled until the study completes; then a study stopped before any worker ran it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from support import write_tiny_study

from advisor.serve.client import Client
from advisor.stores.keys import ROLE

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.name != "posix", reason="process groups"),
]
TOKEN = "flow-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def service(tmp_path: Path, tiny_model: Path) -> Iterator[tuple[Client, Path]]:
    """`advisor serve` with a token file, the data folder and the model's folder as roots."""
    (tmp_path / "data").mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "advisor", "serve", "--port", str(port),
            "--token-file", str(token_file),
            "--data-root", str(tmp_path / "data"), "--data-root", str(tiny_model.parent),
            "--studies-dir", str(tmp_path / "served"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    client = Client(f"http://127.0.0.1:{port}", token=TOKEN, timeout_s=300)
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            if client.get("/v1/health").status == 200:
                break
        except OSError:
            client.close()
        assert time.monotonic() < deadline, "advisor serve did not answer"
        time.sleep(0.3)
    try:
        yield client, tmp_path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        assert TOKEN not in (tmp_path / "serve.log").read_text()  # never logged


def _worker(command: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """The answered `advisor worker ...` line, run with this interpreter's advisor."""
    args = shlex.split(command)
    assert args[:2] == ["advisor", "worker"]
    cwd.mkdir(exist_ok=True)  # not the service's folder: the study file must be self-contained
    return subprocess.Popen(
        [sys.executable, "-m", "advisor", *args[1:]],
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _submit(client: Client, tmp_path: Path, model: Path, name: str) -> dict:
    path = write_tiny_study(tmp_path / "data", model, name, optuna={"n_trials": 2})
    answer = client.post("/v1/studies", text=path.read_text())
    assert answer.status == 201, answer.body
    return answer.json()


def test_submit_worker_status_best_then_a_stopped_study(
    service: tuple[Client, Path], tiny_model: Path
) -> None:
    client, tmp_path = service
    submitted = _submit(client, tmp_path, tiny_model, "flow")
    assert submitted["state"] == "queued"
    worker = _worker(submitted["worker_command"], tmp_path / "elsewhere", tmp_path / "w1.log")

    deadline = time.monotonic() + 600
    states = set()
    while True:
        detail = client.get("/v1/studies/flow").json()
        states.add(detail["state"])
        if detail["state"] in ("complete", "failed") and worker.poll() is not None:
            break
        assert time.monotonic() < deadline, f"still {detail['state']}"
        time.sleep(1)
    assert worker.returncode == 0, (tmp_path / "w1.log").read_text()[-3000:]
    assert detail["state"] == "complete" and "running" in states
    assert [t["state"] for t in detail["trials"]] == ["complete", "complete"]
    assert detail["n_trials"] == {"done": 2, "target": 2}
    assert detail["baseline_score"] is not None
    best = detail["best"]
    assert best is not None and best["trial"] in (0, 1)
    assert detail["pareto_front"]["trials"]
    (listed,) = client.get("/v1/studies").json()
    assert listed["state"] == "complete" and listed["best_score"] == best["score"]

    mlflow = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert mlflow.get_run(best["run_id"]).info.status == "FINISHED"
    parent = mlflow.get_run(detail["links"]["mlflow_parent_run"])
    assert parent.info.status == "FINISHED"  # closed by the last worker out
    runs = mlflow.search_runs([parent.info.experiment_id])
    assert [r.data.tags[ROLE] for r in runs].count("baseline") == 1  # one worker ran it

    # A study stopped before any worker starts: the worker exits 0 and trains nothing.
    halted = _submit(client, tmp_path, tiny_model, "halt")
    assert client.post("/v1/studies/halt/stop").json()["state"] == "stopped"
    worker = _worker(halted["worker_command"], tmp_path / "elsewhere", tmp_path / "w2.log")
    assert worker.wait(timeout=300) == 0, (tmp_path / "w2.log").read_text()[-3000:]
    detail = client.get("/v1/studies/halt").json()
    assert detail["state"] == "stopped" and detail["trials"] == []
    assert detail["baseline_score"] is None
    written = yaml.safe_load(Path(halted["study_file"]).read_text())
    assert written["name"] == "halt"

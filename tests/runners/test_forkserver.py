"""Trials forked from the worker's fork server (runners.forkserver) through run_trial_process."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from advisor.tuning import forkserver as trial_process
from advisor.tuning.process import TrialLimits, run_trial_process


def _server() -> trial_process.ForkServer:
    (server,) = trial_process._servers.values()
    return server


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture(autouse=True)
def _fresh_servers():
    trial_process.shutdown_fork_servers()
    yield
    trial_process.shutdown_fork_servers()


def test_trials_are_forked_processes_of_one_server_and_repeat_exactly(make_config, tmp_path):
    """Two runs of one config: both forked by the same server, each in its own session, with
    identical results (every trial starts from the same pristine interpreter)."""
    seen: list[tuple[int, int]] = []

    def on_event(message: dict) -> None:
        if message.get("event") == "phase" and message.get("phase") == "train":
            server = _server().process.pid
            (child,) = _children(server)
            seen.append((server, child))
            assert os.getsid(child) == child  # its own session: Ctrl-C reaches the worker only

    config = make_config()
    first = run_trial_process(config, tmp_path / "a", on_event=on_event)
    second = run_trial_process(config, tmp_path / "b", on_event=on_event)

    assert first.state == second.state == "complete", (first.error, second.error)
    assert len(seen) == 2 and seen[0][0] == seen[1][0] and seen[0][1] != seen[1][1]
    assert first.eval_loss == second.eval_loss and first.score == second.score
    assert first.train_loss == second.train_loss
    assert _children(seen[0][0]) == []  # both trial processes are gone


def test_a_killed_trial_and_a_killed_server_fail_the_trial_not_the_worker(make_config, tmp_path):
    """SIGKILL of the trial reads as a killed runner; SIGKILL of the server takes its trial with
    it; the next trial gets a fresh server."""
    config = make_config(train={"max_steps": 40, "eval_steps": 2})

    def kill(target: str):
        def on_event(message: dict) -> None:
            if message.get("event") == "phase" and message.get("phase") == "train":
                server = _server().process.pid
                os.kill(_children(server)[0] if target == "trial" else server, signal.SIGKILL)

        return on_event

    by_trial = run_trial_process(config, tmp_path / "t", on_event=kill("trial"))
    assert by_trial.state == "failed" and "SIGKILL" in by_trial.error
    old = _server().process.pid
    by_server = run_trial_process(config, tmp_path / "s", on_event=kill("server"))
    assert by_server.state == "failed" and "SIGKILL" in by_server.error

    after = run_trial_process(make_config(), tmp_path / "n")
    assert after.state == "complete", after.error
    assert _server().process.pid != old


def test_memory_limit_applies_to_the_forked_trial(make_config, tmp_path):
    """trial.max_memory_gb caps the forked trial (not the server) and names the limit."""
    result = run_trial_process(make_config(), tmp_path / "w", limits=TrialLimits(max_memory_gb=0.5))
    assert result.state == "failed" and "OutOfMemory" in result.error and "0.5" in result.error
    assert _server().alive()


def test_forkserver_off_starts_a_fresh_interpreter(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv(trial_process.FORKSERVER_ENV, "0")
    result = run_trial_process(make_config(), tmp_path / "w")
    assert result.state == "complete", result.error
    assert trial_process._servers == {}


def test_waiting_leaves_the_trial_streams_to_the_reader(make_config, tmp_path):
    """`wait()` keeps stdout open, as `Popen.wait` does: the per-trial watchdog waits on one
    thread while the main thread still reads the protocol, and a close under that read raised
    "I/O operation on closed file" in CI. The reader sees the end of the stream instead."""
    from advisor.tuning.process import _child_env

    config = make_config(train={"max_steps": 40, "eval_steps": 2})
    (tmp_path / "config.json").write_text(config.to_json())
    server = trial_process.fork_server(sys.executable, _child_env(1))
    assert server is not None
    with (tmp_path / "trial.log").open("w") as log:
        trial = server.launch(
            [str(tmp_path / "config.json"), str(tmp_path / "result.json")],
            _child_env(1),
            log,
            memory_limit=None,
        )
        os.killpg(trial.pid, signal.SIGKILL)
        assert trial.wait(timeout=30) == -signal.SIGKILL
        assert not trial.stdout.closed
        trial.stdout.read()  # to the end of the stream, without raising
        for stream in (trial.stdin, trial.stdout):
            stream.close()

"""The parent side of the runner protocol, against fake runners (no torch needed)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from advisor.tuning.process import run_trial_process
from runners.config import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelRef,
    TrainConfig,
    TrialConfig,
)

CONFIG = TrialConfig(
    study="s",
    trial_number=0,
    seed=0,
    model=ModelRef("tiny"),
    data=DataConfig("a", "b"),
    method=MethodConfig("lora", r=4),
    train=TrainConfig(max_steps=3, learning_rate=1e-3),
    eval=EvalConfig(),
    output_dir="/tmp",
)

# A fake runner: reports three evals, stops when told to prune, writes a result.
FAKE = """
import json, sys
from runners.reporting import PipeReporter
from runners.config import TrialConfig, TrialResult
config = TrialConfig.from_json(open(sys.argv[1]).read())
reporter = PipeReporter()
reporter.phase("train")
print("some library noise on stdout")
state, steps = "complete", 0
for step in (1, 2, 3):
    steps = step
    reporter.log(step, {"loss": 3.0 - step})
    if reporter.report_eval(step, 2.0 / step):
        state = "pruned"
        break
result = TrialResult(state=state, metric=config.eval.metric, score=0.5, steps=steps)
open(sys.argv[2], "w").write(result.to_json())
"""


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_runner.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_eval_reports_reach_the_parent_and_prune_stops_the_child(tmp_path: Path) -> None:
    seen, events = [], []

    def on_eval(step: int, loss: float) -> bool:
        seen.append((step, loss))
        return step == 2

    result = run_trial_process(
        CONFIG,
        tmp_path / "w",
        on_eval=on_eval,
        on_event=events.append,
        command=_script(tmp_path, FAKE),
    )
    assert result.state == "pruned" and result.steps == 2
    assert seen == [(1, 2.0), (2, 1.0)]
    assert {"event": "phase", "phase": "train"} in events
    assert "some library noise" in (tmp_path / "w" / "trial.log").read_text()


def test_continue_runs_to_completion(tmp_path: Path) -> None:
    result = run_trial_process(
        CONFIG, tmp_path / "w", on_eval=lambda s, v: False, command=_script(tmp_path, FAKE)
    )
    assert result.state == "complete" and result.steps == 3


def test_a_crashing_runner_gives_a_failed_result_with_its_log(tmp_path: Path) -> None:
    crash = "import sys\nprint('loading...', file=sys.stderr)\nraise SystemExit(3)\n"
    result = run_trial_process(CONFIG, tmp_path / "w", command=_script(tmp_path, crash))
    assert result.state == "failed"
    assert "exited with code 3" in result.error and "loading..." in result.error


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_runner_is_reported_as_such(tmp_path: Path) -> None:
    killed = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    result = run_trial_process(CONFIG, tmp_path / "w", command=_script(tmp_path, killed))
    assert result.state == "failed"
    assert "SIGKILL" in result.error and "out-of-memory" in result.error


def test_a_trial_over_its_timeout_is_stopped_and_says_so(tmp_path: Path) -> None:
    import time

    from advisor.tuning.process import TrialLimits

    sleepy = "import time\nprint('training...', flush=True)\ntime.sleep(60)\n"
    started = time.monotonic()
    result = run_trial_process(
        CONFIG,
        tmp_path / "w",
        command=_script(tmp_path, sleepy),
        limits=TrialLimits(timeout_s=1.5),
    )
    assert time.monotonic() - started < 20
    assert result.state == "failed"
    assert "TrialTimeout" in result.error and "trial.timeout_s" in result.error


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_a_trial_over_its_memory_cap_fails_as_out_of_memory(tmp_path: Path) -> None:
    from advisor.tuning.process import TrialLimits

    hungry = "block = bytearray(2 * 2**30)\nprint(len(block))\n"
    result = run_trial_process(
        CONFIG,
        tmp_path / "w",
        command=_script(tmp_path, hungry),
        limits=TrialLimits(max_memory_gb=0.5),
    )
    assert result.state == "failed"
    assert result.error.startswith("OutOfMemory") and "trial.max_memory_gb = 0.5" in result.error


# -- dying with the parent: a SIGKILLed worker must not leave a trial training for nobody ------

PARENT = """
import sys
from pathlib import Path
from advisor.tuning.process import run_trial_process
from runners.config import TrialConfig
config = TrialConfig.from_json(Path(sys.argv[1]).read_text())
run_trial_process(config, Path(sys.argv[2]), command=sys.argv[3:])
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's reaper may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _kill_parent_and_watch(tmp_path: Path, command: list[str], ready) -> list[int]:
    """Start PARENT (which runs `command` as its trial), wait until `ready(descendants)`, SIGKILL
    the parent; returns the descendants still alive a few seconds later (killed afterwards)."""
    import signal
    import subprocess

    config = tmp_path / "config.json"
    config.write_text(CONFIG.to_json())
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(parent_script), str(config), str(tmp_path / "w"), *command]
    )
    seen: list[int] = []
    try:
        assert _wait_for(lambda: ready(_descendants(parent.pid)), 60), "the trial never started"
        seen = _descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _wait_for(lambda: not any(_alive(pid) for pid in seen), 10)
        return [pid for pid in seen if _alive(pid)]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_trial_dies_with_its_killed_parent(tmp_path: Path) -> None:
    """A runner that never arranges anything itself: the launcher's death signal ends it."""
    marker = tmp_path / "sleeping"
    sleeper = f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(120)\n"
    survivors = _kill_parent_and_watch(
        tmp_path, _script(tmp_path, sleeper), ready=lambda _: marker.exists()
    )
    assert survivors == []


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_torchrun_ranks_die_with_the_killed_worker(tmp_path: Path) -> None:
    """worker -> torchrun agent -> two `runners` ranks, each blocked reading its config from a
    FIFO (silent: no broken pipe would end them). Killing the worker must end all three."""
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    rank = _script(
        tmp_path,
        "import runpy, sys\n"
        f"sys.argv = ['runners', {str(fifo)!r}, {str(tmp_path / 'result.json')!r}]\n"
        "runpy.run_module('runners', run_name='__main__', alter_sys=True)\n",
    )[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]

    def ranks_waiting(pids: list[int]) -> bool:
        """Agent and both ranks up, the ranks blocked opening the FIFO (past their prctl call;
        where /proc/PID/wchan is hidden, a rank killed earlier dies by its start-up check)."""
        wchans = [_wchan(p) for p in pids]
        hidden = all(w in ("", "0") for w in wchans)
        return len(pids) >= 3 and (hidden or wchans.count("wait_for_partner") == 2)

    survivors = _kill_parent_and_watch(
        tmp_path, [*torchrun, "--nproc_per_node=2", rank], ready=ranks_waiting
    )
    assert survivors == []


def _wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_runner_whose_worker_is_already_gone_exits_at_once(tmp_path: Path) -> None:
    """Started for a worker that died before the death signal was armed: nobody would ever
    signal it, so it must not start (here it would block forever reading a FIFO config)."""
    import signal
    import subprocess

    from runners.lifeline import PARENT_PID_ENV

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    runner = subprocess.run(
        [sys.executable, "-m", "runners", str(fifo), str(tmp_path / "result.json")],
        env={**os.environ, PARENT_PID_ENV: str(gone.pid)},
        timeout=30,
    )
    assert runner.returncode == -signal.SIGKILL


def test_the_study_trial_processes_reach_the_launch_command(tmp_path: Path) -> None:
    from support import write_tiny_study

    from advisor.errors import AdvisorInputError
    from advisor.study import load_study, resolve_trial_config
    from advisor.tuning.process import runner_command

    model = tmp_path / "model"  # a model folder by its shape: nothing here loads the weights
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    study = write_tiny_study(tmp_path, model, "wide", trial={"processes": 2})
    config = resolve_trial_config(
        load_study(study), {}, trial_number=0, output_dir=str(tmp_path), baseline=True
    )
    assert config.processes == 2
    assert TrialConfig.from_json(config.to_json()) == config
    assert runner_command(config, "py") == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "runners"
    ]  # fmt: skip
    assert runner_command(CONFIG, "py") == ["py", "-m", "runners"]
    with pytest.raises(AdvisorInputError, match="processes"):
        load_study(write_tiny_study(tmp_path, model, "none", trial={"processes": 0}))

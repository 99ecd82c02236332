"""The parent side of the runner protocol, against fake runners (no torch needed)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from advisor.trial_process import run_trial_process
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

    from advisor.trial_process import TrialLimits

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
    from advisor.trial_process import TrialLimits

    hungry = "block = bytearray(2 * 2**30)\nprint(len(block))\n"
    result = run_trial_process(
        CONFIG,
        tmp_path / "w",
        command=_script(tmp_path, hungry),
        limits=TrialLimits(max_memory_gb=0.5),
    )
    assert result.state == "failed"
    assert result.error.startswith("OutOfMemory") and "trial.max_memory_gb = 0.5" in result.error

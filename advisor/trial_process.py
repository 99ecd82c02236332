"""Run one trial in a child process and speak the runner's line protocol from the parent side.

Why a process per trial: a segfault, an out-of-memory kill or a leaked CUDA context in one trial
cannot take the study down, and every trial starts from the same clean interpreter (which also
makes seeded runs repeatable). The child runs `python -m runners CONFIG RESULT`; its stdout
carries protocol lines (see `runners.reporting`), its stderr goes to `trial.log`.

The child starts in its own session, so Ctrl-C in the terminal reaches only the parent, which
then stops the child deliberately (TERM, then KILL) and records the trial as interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.config import TrialConfig, TrialResult
from runners.reporting import parse_message

EvalHandler = Callable[[int, float], bool]
EventHandler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrialFiles:
    """Where one trial's process writes; all under its work directory."""

    workdir: Path

    @property
    def config(self) -> Path:
        return self.workdir / "trial_config.json"

    @property
    def result(self) -> Path:
        return self.workdir / "trial_result.json"

    @property
    def log(self) -> Path:
        return self.workdir / "trial.log"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
    )
    return env


def _stop(process: subprocess.Popen[str], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else code
        hint = " (SIGKILL: often the out-of-memory killer)" if code == -signal.SIGKILL else ""
        return f"runner killed by signal {name}{hint}"
    return f"runner exited with code {code} without writing a result"


def run_trial_process(
    config: TrialConfig,
    workdir: Path,
    *,
    on_eval: EvalHandler | None = None,
    on_event: EventHandler | None = None,
    python: str = sys.executable,
    command: list[str] | None = None,
) -> TrialResult:
    """Run `config` in a fresh interpreter and return its result (never raises for a bad trial).

    `on_eval(step, eval_loss)` answers whether to prune; `on_event` sees every other message
    (phase changes, training logs). A runner that dies without a result gives a failed result
    naming the exit code and the tail of its log. KeyboardInterrupt stops the child, then
    propagates. `command` replaces `python -m runners` (it gets CONFIG and RESULT appended).
    """
    files = TrialFiles(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files.config.write_text(config.to_json())
    files.result.unlink(missing_ok=True)
    with files.log.open("w") as log:
        process = subprocess.Popen(
            [*(command or [python, "-m", "runners"]), str(files.config), str(files.result)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
            env=_child_env(),
            start_new_session=True,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            for line in process.stdout:
                message = parse_message(line)
                if message is None:
                    log.write(line)
                    continue
                if message.get("event") == "eval":
                    prune = bool(
                        on_eval and on_eval(int(message["step"]), float(message["eval_loss"]))
                    )
                    try:
                        process.stdin.write("prune\n" if prune else "continue\n")
                        process.stdin.flush()
                    except BrokenPipeError:
                        pass
                elif on_event is not None:
                    on_event(message)
            code = process.wait()
        except BaseException:
            _stop(process)
            raise
    if files.result.exists():
        return TrialResult.read(files.result)
    return TrialResult(
        state="failed",
        metric=config.eval.metric,
        error=f"{_describe_exit(code)}; last lines of {files.log}:\n{_tail(files.log)}",
    )

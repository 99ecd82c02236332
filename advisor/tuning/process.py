"""Run one trial in a child process and speak the runner's line protocol from the parent side.

Why a process per trial: a segfault, an out-of-memory kill or a leaked CUDA context in one trial
cannot take the study down, and every trial starts from the same clean interpreter (which also
makes seeded runs repeatable). The child runs `python -m runners CONFIG RESULT`; its stdout
carries protocol lines (see `runners.reporting`), its stderr goes to `trial.log`.

The child starts in its own session, so Ctrl-C in the terminal reaches only the parent, which
then stops the child deliberately (TERM, then KILL) and records the trial as interrupted. Being
in its own session, it would outlive a parent that is SIGKILLed: on Linux it is set to receive
SIGKILL when the parent dies (`runners.lifeline`), and so is every process it starts.

A trial with `processes` > 1 runs under torchrun (`python -m torch.distributed.run --standalone
--nproc_per_node N -m runners CONFIG RESULT`): its ranks inherit the agent's stdin and stdout,
rank 0 alone speaks the protocol, so this side reads one stream whatever N is. TERM to the agent
makes it stop its ranks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.config import TrialConfig, TrialResult
from runners.lifeline import PARENT_PID_ENV, death_signal_setter
from runners.reporting import parse_message

from .forkserver import fork_server
from .stopping import stop_with

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


def _child_env(processes: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    if processes > 1 and "OMP_NUM_THREADS" not in env:
        # torchrun would give each rank one thread; share the cores this process may use.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        env["OMP_NUM_THREADS"] = str(max(1, (cores or 1) // processes))
    env.update(
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
    )
    env[PARENT_PID_ENV] = str(os.getpid())
    return env


def runner_command(config: TrialConfig, python: str = sys.executable) -> list[str]:
    """`python -m runners`, or torchrun over N ranks of it (CONFIG and RESULT come after)."""
    if config.processes <= 1:
        return [python, "-m", "runners"]
    return [
        python,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={config.processes}",
        "-m",
        "runners",
    ]


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


@dataclass(frozen=True)
class TrialLimits:
    """Limits on one trial process (the study's `trial:` section)."""

    timeout_s: float | None = None
    max_memory_gb: float | None = None

    @property
    def memory_bytes(self) -> int | None:
        """The address-space cap in bytes (None: no cap)."""
        return None if self.max_memory_gb is None else int(self.max_memory_gb * 2**30)

    def preexec(self) -> Callable[[], None] | None:
        """Runs in the child before exec: caps its address space (POSIX only).

        The cap is per process: under torchrun each rank (and the agent) gets it.
        """
        limit = self.memory_bytes
        if limit is None:
            return None

        def cap() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        return cap


def _preexec(limits: TrialLimits) -> Callable[[], None] | None:
    """Everything the child does before exec: die with this process, then the limits."""
    steps = [f for f in (death_signal_setter(os.getpid()), limits.preexec()) if f is not None]
    if not steps:
        return None

    def run_all() -> None:
        for step in steps:
            step()

    return run_all


_MEMORY_SIGNS = ("MemoryError", "can't allocate memory", "out of memory", "Cannot allocate memory")


def _explain(result: TrialResult, limits: TrialLimits, timed_out: bool, log: Path) -> TrialResult:
    """Name the limit a failed trial ran into, so the reason reads as the cause, not a symptom."""
    if timed_out:
        result.state = "failed"
        result.error = (
            f"TrialTimeout: stopped after the per-trial limit of {limits.timeout_s:g} s "
            "(trial.timeout_s); raise it, or lower train.max_steps"
        )
    elif limits.max_memory_gb is not None and result.state == "failed":
        text = (result.error or "") + _tail(log, 40)
        if any(sign in text for sign in _MEMORY_SIGNS):
            result.error = (
                f"OutOfMemory: the trial needed more than trial.max_memory_gb = "
                f"{limits.max_memory_gb:g} GB; lower train.batch_size or train.max_seq_length, "
                f"or raise the limit ({(result.error or '').splitlines()[0][:300]})"
            )
    return result


def _signal_group(process: subprocess.Popen[str], sig: int) -> None:
    """Signal the trial's process group without waiting (safe inside a signal handler)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _converse(
    process: subprocess.Popen[str],
    log: Any,
    on_eval: EvalHandler | None,
    on_event: EventHandler | None,
) -> int:
    """Read the child's protocol lines until it ends, answering eval reports; its exit code."""
    assert process.stdout is not None and process.stdin is not None
    for line in process.stdout:
        message = parse_message(line)
        if message is None:
            log.write(line)
            continue
        if message.get("event") == "eval":
            prune = bool(on_eval and on_eval(int(message["step"]), float(message["eval_loss"])))
            try:
                process.stdin.write("prune\n" if prune else "continue\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass
        elif on_event is not None:
            on_event(message)
    return process.wait()


def run_trial_process(
    config: TrialConfig,
    workdir: Path,
    *,
    on_eval: EvalHandler | None = None,
    on_event: EventHandler | None = None,
    python: str = sys.executable,
    command: list[str] | None = None,
    limits: TrialLimits | None = None,
) -> TrialResult:
    """Run `config` in a fresh interpreter and return its result (never raises for a bad trial).

    `on_eval(step, eval_loss)` answers whether to prune; `on_event` sees every other message
    (phase changes, training logs). A runner that dies without a result gives a failed result
    naming the exit code and the tail of its log. KeyboardInterrupt stops the child, then
    propagates. `command` replaces `runner_command(config, python)` (`python -m runners`, or
    torchrun when `config.processes` > 1); it gets CONFIG and RESULT appended.
    `limits` stops the trial after `timeout_s` and caps its memory; either gives a failed
    result that names the limit.
    """
    limits = limits or TrialLimits()
    files = TrialFiles(workdir)
    # One process per trial either way: forked from this worker's fork server (imports paid
    # once, see runners.forkserver), or `python -m runners` (a given `command`, torchrun, or
    # ADVISOR_FORKSERVER=0).
    workdir.mkdir(parents=True, exist_ok=True)
    files.config.write_text(config.to_json())
    files.result.unlink(missing_ok=True)
    with files.log.open("w") as log:
        server = None
        if command is None and config.processes <= 1:
            server = fork_server(python, _child_env(1))
        argv = [str(files.config), str(files.result)]
        if server is not None:
            process: Any = server.launch(argv, _child_env(1), log, memory_limit=limits.memory_bytes)
        else:
            process = subprocess.Popen(
                [*(command or runner_command(config, python)), *argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
                env=_child_env(config.processes),
                start_new_session=True,
                preexec_fn=_preexec(limits),
            )
        expired = threading.Event()
        watchdog = None
        if limits.timeout_s is not None:
            watchdog = threading.Timer(limits.timeout_s, lambda: (expired.set(), _stop(process)))
            watchdog.daemon = True
            watchdog.start()
        try:
            assert process.stdout is not None and process.stdin is not None
            with stop_with(lambda: _signal_group(process, signal.SIGTERM)):
                code = _converse(process, log, on_eval, on_event)
        except BaseException:
            _stop(process)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
            for stream in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
    if files.result.exists() and not expired.is_set():
        result = TrialResult.read(files.result)
    else:
        result = TrialResult(
            state="failed",
            metric=config.eval.metric,
            error=f"{_describe_exit(code)}; last lines of {files.log}:\n{_tail(files.log)}",
        )
    return _explain(result, limits, expired.is_set(), files.log)

"""Tie a trial process's life to its parent's, so a killed worker leaves no trial behind.

A trial runs in its own session (Ctrl-C must reach only the orchestrator), so when the advisor
worker is SIGKILLed nothing would stop its trial, which would keep training, holding memory
and a GPU. Linux can deliver a signal to a process when its parent dies
(`prctl(PR_SET_PDEATHSIG)`); the setting survives `exec`, so the launcher sets it in the child
before exec, and `python -m runners` sets it again for itself (under torchrun the parent of a
rank is the torchrun agent, whose parent is the worker: each link dies with the one above).

Caveat (man 2 prctl): the signal is sent when the parent *thread* that forked the child exits;
the orchestrator launches a trial from the thread that then waits for it, so the two coincide.
Elsewhere than Linux these functions do nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "ADVISOR_PARENT_PID"
"""Set by the launcher to its own pid: a runner started after that process died does not start
(the launcher may be its grandparent: torchrun's agent or a wrapper script sits in between)."""


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up now (in the parent) so that nothing is loaded after a fork."""
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def death_signal_setter(parent_pid: int) -> Callable[[], None] | None:
    """A function that makes the calling process die with `parent_pid` (for `preexec_fn`).

    It runs between fork and exec, so it only calls the already resolved prctl; if the parent
    died before the call the child would never be signalled, so it kills itself at once.
    """
    prctl = _prctl()
    if prctl is None:
        return None

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


def die_with_parent(*, first_parent: int, announced: int | None = None) -> bool:
    """Make this process receive SIGKILL when its parent dies; True when that is in place.

    A parent that died before the call would never signal us, so the process kills itself at
    once when it was re-parented since start-up (`first_parent`, read as early as possible) or
    when the launcher it was started for (`announced`: the worker, possibly a grandparent, as
    under torchrun or behind a wrapper script) is gone.
    """
    prctl = _prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return False
    if os.getppid() != first_parent or (announced is not None and not is_alive(announced)):
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def is_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie, dead but not yet reaped, counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def announced_parent() -> int | None:
    """The worker pid the launcher put in the environment (`ADVISOR_PARENT_PID`), if any."""
    raw = os.environ.get(PARENT_PID_ENV, "")
    return int(raw) if raw.isdigit() else None

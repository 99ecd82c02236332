"""Ctrl-C and SIGTERM, turned into a stop at a safe point.

Raising KeyboardInterrupt straight from a signal handler interrupts whatever the main thread is
doing. In the middle of an MLflow or Optuna write to SQLite that leaves a transaction open, and
the next write fails with "database is locked" (seen in CI: the interrupted run could then not
even be marked KILLED). So while `advisor tune`/`worker` run, the handlers only record the
request and stop the running trial process; the tuning loop calls `check()` where nothing is
half-written (after a trial process ended, before asking for the next trial) and the stop is
raised there. A second Ctrl-C raises at once, for a user who does not want to wait.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C (the running trial ends KILLED), with its own reason."""

    reason = "terminated (SIGTERM)"


def stop_reason(stop: BaseException) -> str:
    """Why a study stopped mid-trial, as recorded on the trial's run."""
    return getattr(stop, "reason", "interrupted (Ctrl-C)")


_lock = threading.Lock()
_requested: KeyboardInterrupt | None = None
_stoppers: list[Callable[[], None]] = []


def _handler(signum: int, frame: object) -> None:
    global _requested
    again = _requested is not None
    _requested = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    if again and signum == signal.SIGINT:
        raise KeyboardInterrupt
    for stop in list(_stoppers):
        with contextlib.suppress(Exception):
            stop()


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a stop instead of raising where they land."""
    global _requested
    _requested = None
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _requested = None


def check() -> None:
    """Raise the requested stop (KeyboardInterrupt, or Terminated for SIGTERM), if any."""
    if _requested is not None:
        raise _requested


@contextlib.contextmanager
def stop_with(stop: Callable[[], None]) -> Iterator[None]:
    """Call `stop` (e.g. signal a trial process) when a stop is requested inside the block."""
    with _lock:
        _stoppers.append(stop)
    try:
        if _requested is not None:  # requested just before the child existed
            stop()
        yield
    finally:
        with _lock:
            _stoppers.remove(stop)

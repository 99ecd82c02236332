"""The worker's side of the fork server: one `python -m runners.forkserver` per worker forks a
process per trial, so a trial does not pay 6-11 s of imports (see `runners.forkserver`).

A forked trial is the server's child, not the worker's, so its exit status comes over the
server's channel; `ForkedTrial` gives it the part of `Popen`'s interface that
`advisor.tuning.process` uses, and that module falls back to `python -m runners` when forking
is off (`ADVISOR_FORKSERVER=0`), unavailable, or another interpreter is asked for.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from runners.lifeline import death_signal_setter

FORKSERVER_ENV = "ADVISOR_FORKSERVER"
"""Set to 0 to start every trial as a fresh `python -m runners` instead of forking it."""
SERVER_START_TIMEOUT_S = 600.0


class ForkedTrial:
    """A trial forked by the fork server, with the part of `Popen`'s interface used here.

    It is the server's child, not ours, so its exit status comes over the server's channel; the
    lock lets the watchdog thread and a signal handler ask `poll()` while the main thread waits.
    """

    def __init__(self, server: ForkServer, pid: int, stdin: Any, stdout: Any) -> None:
        self.server, self.pid, self.stdin, self.stdout = server, pid, stdin, stdout
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(blocking=False):
            try:
                self._receive(timeout=0.0)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        try:
            while self.returncode is None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._receive(timeout=left)
                expired = deadline is not None and time.monotonic() >= deadline
                if self.returncode is None and expired:
                    raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        finally:
            self._lock.release()
        # The streams stay open, as with `Popen.wait`: the watchdog thread waits while the main
        # thread may still be reading stdout, and closing it under that read raised "I/O
        # operation on closed file". The caller closes them once the conversation is over.
        return self.returncode

    def _receive(self, timeout: float | None) -> None:
        """Take the exit status if it arrives within `timeout`; a dead server means SIGKILL
        (the trial dies with its server, `runners.lifeline`)."""
        message = self.server.receive(timeout)
        if message is _TIMEOUT:
            return
        if message is None:
            self.returncode = -signal.SIGKILL
            self.server.close()
            return
        self.returncode = int(message["status"])


_TIMEOUT = object()


class ForkServer:
    """One `python -m runners.forkserver` per worker (per interpreter and environment)."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        with theirs:
            self.process = subprocess.Popen(
                [python, "-m", "runners.forkserver", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=self._errors,
                stderr=self._errors,
                env=env,
                start_new_session=True,
                preexec_fn=death_signal_setter(os.getpid()),
            )
        ready = self.receive(SERVER_START_TIMEOUT_S)
        if not isinstance(ready, dict) or not ready.get("ready"):
            self.close()
            self._errors.seek(0)
            tail = self._errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the fork server did not start: {tail}")

    def alive(self) -> bool:
        return self.process.poll() is None and self.channel.fileno() >= 0

    def receive(self, timeout: float | None) -> Any:
        """The server's next message; None when it is gone, `_TIMEOUT` if none came in time."""
        self.channel.settimeout(timeout)
        try:
            data = self.channel.recv(1 << 20)
        except (TimeoutError, BlockingIOError):
            return _TIMEOUT
        except OSError:
            return None
        return json.loads(data) if data else None

    def launch(
        self, argv: list[str], env: dict[str, str], log: Any, *, memory_limit: int | None
    ) -> Any:
        """Fork a trial with `argv` (CONFIG RESULT) and stderr to `log`, its address space capped
        at `memory_limit` bytes (None: no cap); a Popen-like handle."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        request = {"argv": argv, "env": env, "memory_limit": memory_limit}
        try:
            socket.send_fds(
                self.channel, [json.dumps(request).encode()], [stdin_r, stdout_w, log.fileno()]
            )
            started = self.receive(SERVER_START_TIMEOUT_S)
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        if not isinstance(started, dict) or "pid" not in started:
            os.close(stdin_w)
            os.close(stdout_r)
            self.close()
            raise RuntimeError("the fork server ended before it forked the trial")
        stdin = open(stdin_w, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by the caller
        stdout = open(stdout_r, encoding="utf-8")  # noqa: SIM115 - closed by the caller
        return ForkedTrial(self, int(started["pid"]), stdin, stdout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.channel.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_servers: dict[tuple[str, frozenset[tuple[str, str]]], ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server(python: str, env: dict[str, str]) -> ForkServer | None:
    """This worker's fork server for the environment `env`, started on first use; None where
    forking is off or unavailable, or `python` is not this interpreter (then trials start as
    `python -m runners`). A changed environment (the server inherited the old one) restarts it."""
    if os.environ.get(FORKSERVER_ENV, "1") == "0" or not hasattr(socket, "send_fds"):
        return None
    if python != sys.executable:  # another interpreter, or a wrapper that reads its arguments
        return None
    key = (python, frozenset(env.items()))
    with _servers_lock:
        server = _servers.get(key)
        if server is not None and server.alive():
            return server
        for stale in [k for k in _servers if k[0] == python]:  # one per interpreter
            _servers.pop(stale).close()
        try:
            server = ForkServer(python, env)
        except (OSError, RuntimeError) as exc:
            print(f"advisor: trials start without the fork server ({exc})", file=sys.stderr)
            return None
        _servers[key] = server
        return server


@atexit.register
def shutdown_fork_servers() -> None:
    """Close every fork server (each also dies with this process: `runners.lifeline`)."""
    with _servers_lock:
        while _servers:
            _servers.popitem()[1].close()

"""A pre-imported trial launcher: `python -m runners.forkserver FD` forks one process per trial.

Why: a trial process spends its first 6-11 s (2 CPU cores) importing torch, transformers, peft,
bitsandbytes and trl before it does any work, and that was most of a warm trial's fixed overhead
(see BENCHMARKS.md, "Trial overhead"). The fork server pays the imports once per worker and then
forks each trial from that state, so a trial is still a separate process (a crash, an OOM kill or
a leaked CUDA context stays in it; every trial starts from the same pristine interpreter, which
keeps seeded runs repeatable) but starts in milliseconds. The server never runs a tensor
operation, allocates CUDA or starts a Python thread, so no thread pool, device context or
Python lock is copied half-held. The libraries' own native helper threads (torch starts two at
import, pyarrow's jemalloc one) carry at-fork handlers: the same situation as every PyTorch
DataLoader worker forked from a training process.

Protocol, on a Unix SEQPACKET socket (FD, inherited from the worker):
- worker -> server: one JSON request `{"argv": [CONFIG, RESULT], "env": {...},
  "memory_limit": bytes | null}` carrying three file descriptors (SCM_RIGHTS): the trial's
  stdin, stdout and stderr;
- server -> worker: `{"pid": N}` once the trial is forked, then `{"pid": N, "status": S}` when it
  ends (S as `subprocess.Popen.returncode`: the exit code, or minus the signal that killed it).
One trial at a time: a worker runs one trial at a time. The server ends when the socket closes,
and dies with the worker (`runners.lifeline`); each trial dies with the server, so a killed
worker still leaves nothing training.
"""

from __future__ import annotations

import os

FIRST_PARENT = os.getppid()

import importlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from runners import lifeline  # noqa: E402

PRELOAD = (
    "torch",
    "transformers",
    "transformers.models.llama.modeling_llama",
    "peft",
    "trl",
    "datasets",
    "runners.trial",
    "runners.train",
    "runners.models",
    "runners.methods",
    "runners.evaluate",
    "runners.forgetting",
)
"""What a trial imports anyway; a module that fails to import is left for the trial to report."""

MAX_MESSAGE = 1 << 20


def preload() -> list[str]:
    """Import what every trial needs; the names that failed (the trial will say why)."""
    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # reported by the trial that needs it
            failed.append(name)
    return failed


def _exit_status(status: int) -> int:
    """A waitpid status as `Popen.returncode`: the exit code, or minus the killing signal."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _become_trial(request: dict, fds: list[int], server_pid: int, ready: int) -> None:
    """In the forked child: take the trial's stdio, limits and environment, then run it."""
    os.setsid()  # its own session: Ctrl-C in the terminal reaches only the worker
    os.write(ready, b"1")
    os.close(ready)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if request.get("memory_limit"):
        import resource

        limit = int(request["memory_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.update(request.get("env") or {})
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as we do
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    from runners.__main__ import main  # lazy: imported in the child, after the fork

    code = main(list(request["argv"]), first_parent=server_pid)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(channel: socket.socket) -> None:
    """Fork a trial per request until the worker closes the channel."""
    server_pid = os.getpid()
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(channel, MAX_MESSAGE, 3)
        except (ConnectionResetError, OSError):
            return
        if not data:
            return
        request = json.loads(data)
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                channel.close()
                os.close(ready_r)
                _become_trial(request, list(fds), server_pid, ready_w)
            except BaseException:  # never return into the server's loop
                import traceback

                traceback.print_exc()
                os._exit(70)
        for fd in fds:
            os.close(fd)
        os.close(ready_w)
        os.read(ready_r, 1)  # the child leads its own session: the worker may signal its group
        os.close(ready_r)
        channel.send(json.dumps({"pid": pid}).encode())
        _pid, status = os.waitpid(pid, 0)
        try:
            channel.send(json.dumps({"pid": pid, "status": _exit_status(status)}).encode())
        except OSError:
            return


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    lifeline.die_with_parent(first_parent=FIRST_PARENT, announced=lifeline.announced_parent())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides what Ctrl-C stops
    channel = socket.socket(fileno=int(args[0]))
    from runners.__main__ import calm_threads, quiet_libraries  # lazy: the server's own start

    calm_threads()
    quiet_libraries()
    failed = preload()
    if threading.active_count() > 1:  # a fork would copy another thread's held locks
        print(
            f"forkserver: Python threads after the imports: {threading.enumerate()}",
            file=sys.stderr,
        )
        return 3
    channel.send(json.dumps({"ready": True, "failed": failed}).encode())
    serve(channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The MLflow UI over a study's tracking store, as a managed child process.

Why a child process and not MLflow's app in-process: `mlflow ui` brings its own server (uvicorn)
and workers; running it as `<this python> -m mlflow ui` uses exactly the MLflow installed next to
advisor, and lets us stop it and every worker it forked by signalling its process group.

Why the checks up front: MLflow silently creates an empty SQLite database for a path that does
not exist (the user then sees an empty UI and thinks the study was lost), a database it cannot
reach makes the server retry until the startup timeout runs out (90 s, then a misleading word
about a busy machine), an MLflow server's URL is no backend store at all, and a taken port only
shows up as a traceback in the server's log. All are user errors, reported in seconds before
starting, with the URI's credentials hidden.

Why the store's URI goes to the server in its environment (`MLFLOW_BACKEND_STORE_URI`), not on
its command line: every user of the machine can read a process's command line (`ps`), only its
owner its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from types import TracebackType

from advisor.errors import AdvisorInputError
from advisor.redact import redact_text, redact_url

from .locations import Stores, check_tracking_reachable, sqlite_path

# Measured: `mlflow ui --workers 1` answers /health after ~12 s cold on 2 cores (NOTES.md).
DEFAULT_STARTUP_TIMEOUT_S = 90.0
# Measured: TERM to the process group stops the server and its workers in 4-9 s.
STOP_GRACE_S = 15.0
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "ip6-localhost"}
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


def is_exposed(host: str) -> bool:
    """True when binding `host` makes the server reachable from other machines."""
    return not (host in _LOOPBACK or host.startswith("127."))


def exposure_warning(host: str, port: int) -> str | None:
    """The warning to show before serving on a non-loopback interface; None on loopback.

    MLflow's UI has no authentication: anyone who reaches the port can read every run,
    artifact and prompt, and delete experiments through the REST API.
    """
    if not is_exposed(host):
        return None
    return (
        f"WARNING: the MLflow UI has no authentication, and --host {host} makes it reachable "
        f"from other machines on port {port}: anyone who can connect can read and delete runs. "
        "Use the default --host 127.0.0.1 (and an SSH tunnel) unless this network is trusted."
    )


def check_store(tracking_uri: str) -> None:
    """Refuse a store the UI cannot serve: a SQLite file that does not exist (MLflow would
    create an empty one), an MLflow server's URL, a database that does not answer."""
    path = sqlite_path(tracking_uri)
    if path is not None:
        if not path.is_file():
            raise AdvisorInputError(
                f"no MLflow store at {path}",
                where="--tracking-uri",
                fix="run `advisor tune studies/X.yaml` first (it records into mlruns/ of the "
                "current folder), or pass --tracking-uri sqlite:////abs/path/mlruns/mlflow.db",
            )
    elif tracking_uri.startswith(("http://", "https://")):
        raise AdvisorInputError(
            f"{redact_url(tracking_uri)!r} is an MLflow server, which serves its own UI; "
            "`advisor ui` serves a backend store (a database)",
            where="--tracking-uri",
            fix="open that server's address in a browser, or pass the database it records into "
            "(--tracking-uri sqlite:///... or postgresql://...)",
        )
    else:
        check_tracking_reachable(tracking_uri, where="--tracking-uri")


def study_pages(tracking_uri: str, ui_url: str, limit: int = 5) -> list[tuple[str, str]]:
    """(study, link) for the `limit` most recently updated experiments of the store, each link
    opening the experiment's runs table (`tracker.runs_page`): MLflow 3.17's own links land on
    its GenAI overview, whatever the experiment's kind tag says."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient  # lazy: `advisor ui --help` does not need MLflow

    from .tracker import quiet_mlflow, runs_page  # lazy: imports MLflow, as above

    quiet_mlflow()
    try:
        found = MlflowClient(tracking_uri).search_experiments(
            order_by=["last_update_time DESC"], max_results=limit + 1
        )
    except MlflowException:  # the links are a convenience: the UI itself is up
        return []
    studies = [e for e in found if e.experiment_id != "0"][:limit]  # not MLflow's "Default"
    return [(e.name, runs_page(ui_url, e.experiment_id)) for e in studies]


def check_port_free(host: str, port: int) -> None:
    """Fail early and clearly when `host:port` is already taken (e.g. another UI)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn does: a port left in TIME_WAIT by a stopped UI is free to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise AdvisorInputError(
                f"cannot listen on {host}:{port}: {error.strerror or error}",
                where="--port",
                fix=f"stop what uses that port or pick another one, e.g. --port {free_port(host)}",
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (for tests and for the error message's hint)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _local_host(host: str) -> str:
    # A server bound to every interface is probed (and shown) through loopback.
    if host in _ANY_ADDRESS:
        return "::1" if host == "::" else "127.0.0.1"
    return host


def _url(host: str, port: int) -> str:
    host = _local_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def project_tracking_uri(root: Path | None = None) -> str:
    """The project's default MLflow store (`sqlite:///<root>/mlruns/mlflow.db`, root = cwd),
    resolved through `Stores.resolve`, the one place that defines it (it creates nothing)."""
    return Stores.resolve(root=root).tracking_uri


def default_artifact_root(tracking_uri: str) -> str | None:
    """`<store folder>/artifacts` for a SQLite store: where `advisor tune` puts artifacts."""
    path = sqlite_path(tracking_uri)
    return (path.parent / "artifacts").resolve().as_uri() if path is not None else None


class UiServer:
    """A running `mlflow ui`; a context manager that stops it (and its workers) on exit.

    The server's output goes to a log file; its last lines are quoted when it fails to start.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5000,
        workers: int = 1,
        artifact_root: str | None = None,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
    ) -> None:
        if workers < 1:
            raise AdvisorInputError(f"workers must be >= 1, got {workers}", where="workers")
        self.tracking_uri = tracking_uri
        self.host = host
        self.port = port
        self.workers = workers
        self.artifact_root = artifact_root or default_artifact_root(tracking_uri)
        self.startup_timeout_s = startup_timeout_s
        self.url = _url(host, port)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def command(self) -> list[str]:
        """The `mlflow ui` command line (runs with the interpreter advisor runs in)."""
        cmd = [sys.executable, "-m", "mlflow", "ui", "--host", self.host, "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)]  # the store: MLFLOW_BACKEND_STORE_URI (environ)
        if self.artifact_root:
            # Runs of `advisor tune` keep file:// artifact URIs, which the server reads directly
            # (list/download in the run page); no proxy needed, so none is offered.
            cmd += ["--default-artifact-root", self.artifact_root, "--no-serve-artifacts"]
        return cmd

    def start(self) -> UiServer:
        """Start the server and block until `GET /health` answers; raise with its log if not."""
        check_store(self.tracking_uri)
        check_port_free(self.host, self.port)
        fd, log = tempfile.mkstemp(prefix="advisor-ui-", suffix=".log")
        self.log_path = Path(log)
        store = sqlite_path(self.tracking_uri)
        with os.fdopen(fd, "wb") as out:
            self.process = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "MLFLOW_BACKEND_STORE_URI": self.tracking_uri},
                # Its own process group: stop() signals the server and its workers together.
                start_new_session=True,
                # Anything MLflow writes relative to cwd lands next to the store, not in ours.
                cwd=str(store.parent) if store is not None else None,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AdvisorInputError(
                    f"`mlflow ui` exited with code {self.process.returncode} before serving "
                    f"{self.url}; its last log lines:\n{self.log_tail()}",
                    fix="read the log above; check --tracking-uri and --port",
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise AdvisorInputError(
            f"`mlflow ui` did not answer {self.url}/health within {self.startup_timeout_s:.0f} s; "
            f"its last log lines:\n{self.log_tail()}",
            fix="read the log above; a busy machine may need a longer startup timeout",
        )

    def healthy(self) -> bool:
        """Whether the server answers `GET /health` now."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.process is not None and self.process.poll() is None

    def wait(self, poll_s: float = 1.0) -> int | None:
        """Block until the server exits; its exit code. Ctrl-C propagates as KeyboardInterrupt.

        SIGTERM (`kill`, a service manager) is turned into KeyboardInterrupt too, so the
        caller's `with` block still stops the server: the server runs in its own process
        group and would otherwise outlive us.
        """
        on_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
        try:
            while self.alive():
                time.sleep(poll_s)
        finally:
            if on_main_thread:
                signal.signal(signal.SIGTERM, previous)
        return self.process.returncode if self.process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote (startup errors, tracebacks), credentials hidden:
        MLflow quotes the store's URI in its errors."""
        if self.log_path is None or not self.log_path.is_file():
            return "(no log)"
        with self.log_path.open(encoding="utf-8", errors="replace") as log:
            tail = deque(log, maxlen=lines)
        return redact_text("".join(tail).rstrip(), self.tracking_uri) or "(empty log)"

    def stop(self) -> None:
        """TERM the server's process group, then KILL what is left after a grace period."""
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_GRACE_S)
        if process is not None:
            # Workers may outlive the server's main process: make sure the group is gone.
            _signal_group(process.pid, signal.SIGKILL)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> UiServer:
        return self if self.alive() else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def start_ui(
    tracking_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    artifact_root: str | None = None,
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
) -> UiServer:
    """Start the MLflow UI over `tracking_uri` and return it once healthy; use it as a
    context manager (`with start_ui(uri) as ui: ... ui.url`) so it is always stopped."""
    server = UiServer(
        tracking_uri,
        host=host,
        port=port,
        workers=workers,
        artifact_root=artifact_root,
        startup_timeout_s=startup_timeout_s,
    )
    return server.start()

"""A real PostgreSQL for the tests that claim many workers share one study (not collected).

Where the server comes from, in order:
1. `ADVISOR_TEST_POSTGRES_URL`: a server someone started (`.ci/run` starts Debian's cluster on
   127.0.0.1 and sets it), with a role that may create databases.
2. A private server: `initdb` + `pg_ctl` into a temporary folder, trust auth, 127.0.0.1 only,
   a free port (as the `postgres` user when the tests run as root, which initdb refuses).
3. Neither: the tests skip with the reason, or fail when `ADVISOR_REQUIRE_POSTGRES=1` (CI).

Every test gets its own fresh database on that server, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV_URL = "ADVISOR_TEST_POSTGRES_URL"
ENV_REQUIRE = "ADVISOR_REQUIRE_POSTGRES"


def unavailable(reason: str) -> None:
    """Skip, or fail where PostgreSQL is required (CI)."""
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"PostgreSQL is required here ({ENV_REQUIRE}=1) but {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}; set {ENV_URL} or install postgresql")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def private_server(folder: Path) -> Iterator[str]:
    """Start a throwaway PostgreSQL under `folder`; yield its admin URL; stop it."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("initdb/pg_ctl not found")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            unavailable("running as root without runuser")
        prefix = ["runuser", "-u", "postgres", "--"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "advisor", "--no-sync")
        run(
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off",
            "-w",
            "start",
        )
    except subprocess.CalledProcessError as error:
        unavailable(f"a private server did not start: {error.stderr.strip()[-300:]}")
    try:
        yield f"postgresql://advisor@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server; dropped (connections closed) afterwards."""
    import psycopg

    name = f"advisor_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(server_url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as error:
        unavailable(f"cannot connect to {urlsplit(server_url).hostname}: {error}")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(server_url, name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

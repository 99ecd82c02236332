"""The first opening of the embedded SQLite stores: one process at a time, and a store that an
interrupted creation left half-built named before anything else touches it.

Optuna and MLflow create their tables, and migrate them, with alembic when a store is first
opened. Two `advisor tune` processes started at once in a fresh folder both did so: one died
with an alembic error, and the other left `mlflow.db` with `_alembic_tmp_*` tables, which failed
every later command in that folder. `creating` serialises the opening with an `flock` on a file
beside the stores (`.stores.lock`), so the second process finds tables the first finished;
`check_intact` refuses a store whose creation was cut, naming the file and the fix.

A server store (PostgreSQL, an MLflow server) serialises its own schema changes: there is no
lock here, and Optuna's table creation race is retried in `storage.make_storage`.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from advisor.errors import AdvisorInputError

from .locations import sqlite_path

LOCK_NAME = ".stores.lock"


def database_file(url: str) -> Path | None:
    """The file of a `sqlite:///` store, None for anything else (a server, an in-memory store)."""
    path = sqlite_path(url)
    return None if path is None or str(path) in ("", ":memory:") else path


@contextlib.contextmanager
def creating(url: str) -> Iterator[None]:
    """Hold the stores' folder lock while the block opens (and maybe creates) the store at
    `url`; the folder is created here, at a store's first use. No lock for a server store, nor
    for a store that was there before advisor locked its folder (opening it writes nothing):
    the lock file exists from the first creation on, so a process that finds a store another
    one is still creating waits for it."""
    path = database_file(url)
    lock = None if path is None else path.parent / LOCK_NAME
    if path is None or lock is None or (_built(path) and not lock.exists()):
        if path is not None:
            check_intact(path)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            check_intact(path)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _built(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def exists(url: str) -> bool:
    """Whether the store at `url` is there to open: a server store always counts as there."""
    path = database_file(url)
    return path is None or path.is_file()


def check_stores(*urls: str) -> None:
    """Refuse, before any store is opened, an embedded store that an interrupted creation left
    half-built (opening one store and then failing on the other would leave a write behind)."""
    for url in urls:
        path = database_file(url)
        if path is not None:
            check_intact(path)


def half_built_tables(path: Path) -> list[str]:
    """Tables that alembic leaves only while a migration runs (`_alembic_tmp_*`): their
    presence outside a migration means one was cut short."""
    uri = f"file:{path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        rows = conn.execute("select name from sqlite_master where type = 'table'").fetchall()
    return sorted(name for (name,) in rows if name.startswith("_alembic_tmp_"))


def check_intact(path: Path) -> None:
    """Refuse a SQLite store whose creation or migration was interrupted."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        leftovers = half_built_tables(path)
    except sqlite3.DatabaseError as error:
        raise AdvisorInputError(
            f"{path} is not a readable SQLite database: {error}",
            where="storage",
            fix=f"restore {path.name} from a backup, or move it away to start new stores here",
        ) from None
    if leftovers:
        raise AdvisorInputError(
            f"{path} was left half-built by an interrupted creation or migration of its tables "
            f"(it still holds alembic's working tables {', '.join(leftovers)})",
            where="storage",
            fix=f"if no study was recorded in this folder yet, delete {path} (and the other "
            f"stores beside it) and run the command again; otherwise restore {path.name} from "
            "a backup: a cut migration cannot be finished in place",
        )

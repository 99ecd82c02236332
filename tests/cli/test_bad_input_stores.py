"""Bad input about the stores is refused before anything is written: a worker with no study to
join, stores left half-built by an interrupted creation, a study file that changes a stored
study (the machinery and what each row must hold: `bad_input.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused

from advisor.stores import keys


def _half_built(name: str) -> Callable[[Path], None]:
    """A store whose creation was cut: a table of its own, and alembic's working table."""

    def prepare(project: Path) -> None:
        (project / "mlruns").mkdir()
        with sqlite3.connect(project / "mlruns" / name) as conn:
            conn.execute("create table experiments (experiment_id integer primary key)")
            conn.execute("create table _alembic_tmp_experiments (experiment_id integer)")

    return prepare


def _not_a_database(project: Path) -> None:
    (project / "mlruns").mkdir()
    (project / "mlruns" / "optuna.db").write_bytes(b"this is no SQLite database\n" * 64)


def _stored_study(attrs: dict[str, str]) -> Callable[[Path], None]:
    """Study `s` in the project's Optuna store, as another study file left it (`attrs`)."""

    def prepare(project: Path) -> None:
        import optuna

        (project / "mlruns").mkdir()
        storage = optuna.storages.RDBStorage(f"sqlite:///{project / 'mlruns' / 'optuna.db'}")
        study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        storage.engine.dispose()  # close the SQLite file before the snapshot

    return prepare


OTHER_FILE = {keys.SPEC_HASH: "0123456789abcdef"}

CASES = [
    bad(
        "storage: study 's' does not exist",
        "(waited 0 s)",
        "advisor tune FILE",
        args=("worker", "s.yaml", "--wait", "0"),
        id="worker-without-a-study-creates-no-store",
    ),
    bad(
        "mlflow.db was left half-built",
        "_alembic_tmp_experiments",
        "delete",
        prepare=_half_built("mlflow.db"),
        id="half-built-mlflow-store",
    ),
    bad(
        "optuna.db was left half-built",
        "_alembic_tmp_experiments",
        prepare=_half_built("optuna.db"),
        id="half-built-optuna-store",
    ),
    bad(
        "optuna.db is not a readable SQLite database",
        "restore optuna.db",
        prepare=_not_a_database,
        id="store-not-a-database",
    ),
    bad(
        "name: study 's' already exists with another study file",
        "spec hash 0123456789abcdef",
        "name: s-2",
        "--continue-changed",
        prepare=_stored_study(OTHER_FILE),
        id="changed-study-file-under-its-name",
    ),
    bad(
        "name: study 's' already exists with another study file",
        "give every worker the study file the study was started with",
        args=("worker", "s.yaml", "--wait", "0"),
        prepare=_stored_study({**OTHER_FILE, keys.PARENT_RUN: "a-run"}),
        id="worker-with-a-changed-study-file",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_store_cases_are_refused_with_exit_2_and_nothing_written(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)

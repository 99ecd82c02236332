"""Credentials never reach the output: store URIs with a password, a token or a signature in
their user-info, query or fragment, given to every command that opens a store, and the
service's token where other machines can connect (the machinery: `bad_input.py`).

Each URI points at a port nothing listens on (127.0.0.1:1), so each command must fail there,
exit 2, and say so with the credential hidden; SECRET never appears in the output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_input import SECRET, STUDY, Bad, bad, check_refused
from typer.testing import CliRunner

from advisor.cli import app
from advisor.stores import ui as ui_lib

PG = "postgresql://127.0.0.1:1/optuna"
"""A PostgreSQL URL nothing answers."""
HTTP = "http://127.0.0.1:1"
"""An MLflow server address nothing answers."""


def in_study(line: str) -> dict[str, str]:
    """An edit adding `line` after the base study's last line."""
    return {"n_trials: 2}\n": f"n_trials: 2}}\n{line}\n"}


def token_file(token: str) -> Callable[[Path], None]:
    """Write `tok` holding `token`, readable by its owner only (as `advisor serve` demands)."""

    def prepare(project: Path) -> None:
        path = project / "tok"
        path.write_text(token + "\n", encoding="utf-8")
        os.chmod(path, 0o600)

    return prepare


PUBLIC = ("serve", "--host", "0.0.0.0", "--port", "8399")

CASES = [
    # --- tune: the Optuna storage and the MLflow tracking URI, as options and in the file -----
    bad(
        "storage",
        "cannot open the Optuna storage",
        f"{PG}?password=***",
        args=("tune", "s.yaml", "--storage", f"{PG}?password={SECRET}"),
        id="tune-storage-query-password",
    ),
    bad(
        "storage",
        "cannot open the Optuna storage",
        f"{PG}?user=u&access_token=***",
        edit=in_study(f"storage: '{PG}?user=u&access_token={SECRET}'"),
        id="tune-storage-in-file-query-access-token",
    ),
    bad(
        "storage",
        "cannot open the Optuna storage",
        "u:***@",
        "sslpassword=***",
        args=(
            "tune",
            "s.yaml",
            "--storage",
            f"postgresql://u:{SECRET}@127.0.0.1:1/x?sslpassword={SECRET}x",
        ),
        id="tune-storage-userinfo-and-query",
    ),
    bad(
        "tracking.uri",
        "cannot reach the MLflow tracking store",
        f"{HTTP}/?token=***",
        args=("tune", "s.yaml", "--tracking-uri", f"{HTTP}/?token={SECRET}"),
        id="tune-tracking-query-token",
    ),
    bad(
        "tracking.uri",
        "cannot reach the MLflow tracking store",
        f"{HTTP}/?access_token=***",
        edit=in_study(f"tracking: {{uri: '{HTTP}/?access_token={SECRET}'}}"),
        id="tune-tracking-in-file-query-access-token",
    ),
    bad(
        "tracking.uri",
        f"{HTTP}/#access_token=***",
        args=("tune", "s.yaml", "--tracking-uri", f"{HTTP}/#access_token={SECRET}"),
        id="tune-tracking-fragment-access-token",
    ),
    bad(
        "tracking.uri",
        "https://***@127.0.0.1:1",
        args=("tune", "s.yaml", "--tracking-uri", f"https://{SECRET}@127.0.0.1:1"),
        id="tune-tracking-token-as-userinfo",
    ),
    bad(
        "tracking.uri",
        "X-Amz-Signature=***",
        args=("tune", "s.yaml", "--tracking-uri", f"{HTTP}/?X-Amz-Date=1&X-Amz-Signature={SECRET}"),
        id="tune-tracking-query-signature",
    ),
    bad(
        "tracking.uri",
        "cannot reach the MLflow tracking store",
        f"{PG}?password=***",
        args=("tune", "s.yaml", "--tracking-uri", f"{PG}?password={SECRET}"),
        id="tune-tracking-postgres-query-password",
    ),
    bad(
        "tracking.uri",
        "Invalid IPv6 URL",
        "token=***",
        args=("tune", "s.yaml", "--tracking-uri", f"http://[::1/?token={SECRET}"),
        id="tune-tracking-malformed-ipv6",
    ),
    # --- worker, report, export, rerun: every command that opens the stores ----------------------
    bad(
        "storage",
        "cannot open the Optuna storage",
        f"{PG}?password=***",
        args=("worker", "s.yaml", "--storage", f"{PG}?password={SECRET}"),
        id="worker-storage-query-password",
    ),
    bad(
        "tracking.uri",
        f"{HTTP}/?token=***",
        args=("worker", "s.yaml", "--tracking-uri", f"{HTTP}/?token={SECRET}"),
        id="worker-tracking-query-token",
    ),
    bad(
        "STUDY",
        "no Optuna store at x.db",
        args=("report", "s", "--storage", f"sqlite:///x.db?password={SECRET}"),
        id="report-missing-sqlite-query-password",
    ),
    bad(
        "storage",
        f"{PG}?token=***",
        args=("report", "s", "--storage", f"{PG}?token={SECRET}"),
        id="report-storage-query-token",
    ),
    bad(
        "storage",
        f"{PG}?password=***",
        args=("export", "s", "out", "--storage", f"{PG}?password={SECRET}"),
        id="export-storage-query-password",
    ),
    bad(
        "storage",
        f"{PG}?api_key=***",
        args=("rerun", "s", "--storage", f"{PG}?api_key={SECRET}"),
        id="rerun-storage-query-api-key",
    ),
    # --- ui: the database is checked in seconds, not after MLflow's 90 s startup -----------------
    bad(
        "--tracking-uri",
        "cannot reach the MLflow tracking store",
        "postgresql://u:***@127.0.0.1:1/x",
        args=("ui", "--tracking-uri", f"postgresql://u:{SECRET}@127.0.0.1:1/x"),
        id="ui-unreachable-postgres-password",
    ),
    bad(
        "--tracking-uri",
        "cannot reach the MLflow tracking store",
        f"{PG}?password=***",
        args=("ui", "--tracking-uri", f"{PG}?password={SECRET}"),
        id="ui-unreachable-postgres-query-password",
    ),
    bad(
        "--tracking-uri",
        "is an MLflow server, which serves its own UI",
        f"{HTTP}/?token=***",
        args=("ui", "--tracking-uri", f"{HTTP}/?token={SECRET}"),
        id="ui-mlflow-server-url-query-token",
    ),
    bad(
        "--tracking-uri",
        "no MLflow store at nope.db",
        args=("ui", "--tracking-uri", f"sqlite:///nope.db?access_token={SECRET}"),
        id="ui-missing-sqlite-query-access-token",
    ),
    # --- serve: where other machines connect, the token must be strong ---------------------
    bad("--host", "without a token", args=PUBLIC, id="serve-public-without-token"),
    bad(
        "--token-file",
        "weak token",
        "9 characters, fewer than 32",
        "secrets.token_urlsafe(32)",
        args=(*PUBLIC, "--token-file", "tok"),
        prepare=token_file(SECRET),
        id="serve-public-short-token",
    ),
    bad(
        "weak token",
        "one run of characters repeated",
        "secrets.token_urlsafe(32)",
        args=(*PUBLIC, "--token-file", "tok"),
        prepare=token_file("x" * 48),
        id="serve-public-repeated-character-token",
    ),
    bad(
        "weak token",
        "bits, fewer than 64",
        args=(*PUBLIC, "--token-file", "tok"),
        prepare=token_file("aabbabbbabaababbbaabaabbbaababbbaaab"),
        id="serve-public-two-letter-token",
    ),
]


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that is not refused must fail, not serve: the MLflow UI or the service would
    otherwise run until the test times out. No token comes from the environment."""
    import uvicorn

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command started a server instead of refusing")

    monkeypatch.setattr(ui_lib, "start_ui", started)
    monkeypatch.setattr(uvicorn, "run", started)
    monkeypatch.delenv("ADVISOR_SERVE_TOKEN", raising=False)


@pytest.mark.parametrize("case", CASES)
def test_no_credential_reaches_the_output_of_a_refused_command(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)


def test_ui_refuses_an_unreachable_database_in_seconds(project: Path) -> None:
    """It waited for MLflow's 90 s startup timeout, then blamed a busy machine."""
    started = time.monotonic()
    result = CliRunner().invoke(app, ["ui", "--tracking-uri", "postgresql://u:pw@127.0.0.1:1/x"])
    assert result.exit_code == 2, result.output
    assert time.monotonic() - started < 20
    assert "busy machine" not in result.output


def test_validate_prints_the_stores_with_their_credentials_hidden(
    project: Path, tiny_model: Path
) -> None:
    """A valid study's summary names its stores: with `***` for every credential."""
    study = STUDY.replace("{model}", str(tiny_model)).replace(
        "n_trials: 2}\n",
        f"n_trials: 2}}\nstorage: '{PG}?password={SECRET}'\n"
        f"tracking: {{uri: 'https://{SECRET}@mlflow.example/?token={SECRET}'}}\n",
    )
    (project / "s.yaml").write_text(study, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "s.yaml"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert f"{PG}?password=***" in result.output
    assert "https://***@mlflow.example/?token=***" in result.output


def test_the_table_covers_every_command_that_shows_a_store() -> None:
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES)
    for kind in ("tune-storage", "tune-tracking", "worker-", "report-", "export-", "rerun-",
                 "ui-", "serve-", "query-password", "query-token", "access-token"):  # fmt: skip
        assert any(kind in i for i in ids), kind

"""`advisor ui`'s store checks and how the store reaches the server: through its environment,
never its command line (which every user of the machine can read with `ps`), and never quoted
back with its credentials."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from advisor.errors import AdvisorInputError
from advisor.stores import ui as ui_lib

SECRET = "s3cr3t-pw"


def test_the_command_line_carries_no_store(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    server = ui_lib.UiServer(f"sqlite:///{store}?password={SECRET}", port=ui_lib.free_port())
    command = " ".join(server.command())
    assert str(store) not in command and SECRET not in command
    assert "--backend-store-uri" not in command


def test_the_server_gets_the_store_from_its_environment_and_its_log_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in server prints the store it was given, then dies: the error quotes its log
    with the password hidden, and the store it names is the one passed in the environment."""
    store = tmp_path / "mlflow.db"
    store.touch()
    server = ui_lib.UiServer(f"sqlite:///{store}?password={SECRET}", port=ui_lib.free_port())
    script = (
        "import os, sys; print('cannot open', os.environ['MLFLOW_BACKEND_STORE_URI']); sys.exit(3)"
    )
    monkeypatch.setattr(server, "command", lambda: [sys.executable, "-c", script])
    with pytest.raises(AdvisorInputError) as error:
        server.start()
    assert SECRET not in str(error.value)
    assert f"cannot open sqlite:///{store}?password=***" in str(error.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"http://127.0.0.1:1/?token={SECRET}", "is an MLflow server"),
        (f"https://{SECRET}@mlflow.example", "is an MLflow server"),
        (f"postgresql://u:{SECRET}@127.0.0.1:1/x", "cannot reach the MLflow tracking store"),
        (f"postgresql://127.0.0.1:1/x?password={SECRET}", "cannot reach the MLflow tracking store"),
    ],
)
def test_a_store_the_ui_cannot_serve_is_refused_before_starting(uri: str, expected: str) -> None:
    with pytest.raises(AdvisorInputError, match=expected) as error:
        ui_lib.check_store(uri)
    assert error.value.where == "--tracking-uri"
    assert SECRET not in str(error.value) and "***" in str(error.value)


@pytest.mark.system
def test_the_real_ui_serves_the_store_named_in_its_environment(tmp_path: Path) -> None:
    """`mlflow ui` reads MLFLOW_BACKEND_STORE_URI: a store not named mlflow.db is the one shown,
    and no default store appears beside it."""
    from mlflow import MlflowClient

    store = tmp_path / "records.db"
    MlflowClient(f"sqlite:///{store}").create_experiment("seen-through-environ")
    with ui_lib.start_ui(f"sqlite:///{store}", port=ui_lib.free_port()) as server:
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        url = f"{server.url}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
        with urllib.request.urlopen(url, timeout=60) as answer:
            names = [e["name"] for e in json.load(answer)["experiments"]]
    assert str(store).encode() not in cmdline
    assert "seen-through-environ" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.db"]

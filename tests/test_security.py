"""Security defaults: no credential or environment variable ends up in what a study records,
and a model's own code never runs unless the study asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import optuna
import pytest
import yaml
from support import write_tiny_study

from advisor.study import load_study, resolve_trial_config

ENV_SECRET = "env-secret-7f3a9c"


def _with_password(url: str) -> tuple[str, str]:
    """The URL with a password (the CI role has one; the private test server trusts any)."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    password = "pw-secret-51b2e0"
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), password


def _all_text(folder: Path) -> str:
    chunks = []
    for path in folder.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


@pytest.mark.system
def test_no_password_or_environment_variable_is_recorded(
    tmp_path: Path, tiny_model: Path, postgres_url: str
) -> None:
    storage, password = _with_password(postgres_url)
    study_file = write_tiny_study(
        tmp_path, tiny_model, "sec", optuna={"n_trials": 1, "sampler": "random"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "tune", str(study_file), "--storage", storage, "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ADVISOR_TEST_SECRET": ENV_SECRET},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["rows"][0]["state"] == "complete"

    # Everything MLflow recorded (SQLite store + artifacts), and what the command printed.
    recorded = _all_text(tmp_path / "mlruns") + done.stdout + done.stderr
    assert '"metric": "json_match"' in recorded  # the scan does see the logged records
    assert password not in recorded
    assert ENV_SECRET not in recorded
    # Optuna's records: study and trial attributes.
    study = optuna.load_study(study_name="sec", storage=storage)
    attrs = json.dumps([study.user_attrs, *[t.user_attrs for t in study.trials]], default=str)
    assert password not in attrs and ENV_SECRET not in attrs
    assert "advisor.mlflow_tracking_uri" in attrs


def test_a_model_s_own_code_runs_only_when_the_study_says_so(
    tmp_path: Path, tiny_model: Path
) -> None:
    default = load_study(write_tiny_study(tmp_path, tiny_model, "plain"))
    config = resolve_trial_config(
        default, {}, trial_number=-1, output_dir=str(tmp_path), baseline=True
    )
    assert config.model.trust_remote_code is False

    remote_file = write_tiny_study(tmp_path, tiny_model, "remote")
    raw = yaml.safe_load(remote_file.read_text())
    raw["model"]["trust_remote_code"] = True
    remote_file.write_text(yaml.safe_dump(raw))
    opted_in = load_study(remote_file)
    config = resolve_trial_config(
        opted_in, {}, trial_number=-1, output_dir=str(tmp_path), baseline=True
    )
    assert config.model.trust_remote_code is True

"""Credentials in store URIs never reach output, tags or the logged study file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.redact import redact_url
from advisor.study import dump_resolved, load_study


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:s3cret@db:5432/optuna", "postgresql://bob:***@db:5432/optuna"),
        ("https://ci:tok%40en@mlflow.example/", "https://ci:***@mlflow.example/"),
        ("postgresql://bob@db/optuna", "postgresql://bob@db/optuna"),
        ("sqlite:////tmp/mlruns/optuna.db", "sqlite:////tmp/mlruns/optuna.db"),
        (None, None),
    ],
)
def test_redact_url_hides_only_the_password(url: str | None, shown: str | None) -> None:
    assert redact_url(url) == shown


def test_the_logged_study_file_carries_no_password(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "studies" / "demo.yaml"
    spec = yaml.safe_load(demo.read_text())
    for key in ("train", "eval"):
        spec["data"][key] = str((demo.parent / spec["data"][key]).resolve())
    spec["data"]["root"] = str(demo.parent.resolve())  # the data lies outside tmp_path
    spec["storage"] = "postgresql://bob:s3cret@db/optuna"
    spec["tracking"] = {"uri": "https://ci:t0ken@mlflow.example"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    text = dump_resolved(load_study(path))
    assert "s3cret" not in text and "t0ken" not in text
    assert "bob:***@db" in text

"""The bad-input tables' project folder (see `bad_input.py`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from bad_input import SECRET

from runners.testing import toy_dataset, write_jsonl


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (the cwd) with toy data; a secret file lies next to it."""
    folder = tmp_path / "project"
    write_jsonl(folder / "train.jsonl", toy_dataset(8, seed=1))
    write_jsonl(folder / "eval.jsonl", toy_dataset(4, seed=2))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jsonl").write_text(
        f'{{"prompt": "{SECRET}", "response": "{SECRET}"}}\n'
    )
    for name in ("scratch", "cache"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))  # trial work dirs
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path / "cache"))  # GGUF conversions
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(folder)
    return folder

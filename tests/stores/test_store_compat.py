"""A store written by advisor 0.1.0 is read, reported, rerun and continued by this version.

The fixture (tests/fixtures/store_0.1.0, see its README) was recorded by main before the house
was rebuilt; its paths begin with `/tmp/advisor-main-store` and are moved to a temporary folder
here. Everything below runs the current code on the old store, through the CLI where a user would.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store_0.1.0"
RECORDED_AT = "/tmp/advisor-main-store"
TEXT_SUFFIXES = (".json", ".yaml", ".md", ".html", ".jsonl", ".log")


def relocate(root: Path) -> None:
    """Replace the recording folder with `root` in every text cell of both stores and in the
    text artifacts (MLflow keeps absolute artifact URIs, the logged study file absolute paths)."""
    for db in (root / "mlruns").glob("*.db"):
        with sqlite3.connect(db) as conn:
            listed = conn.execute("select name from sqlite_master where type='table'")
            for table in [row[0] for row in listed.fetchall()]:
                columns = conn.execute(f"pragma table_info('{table}')").fetchall()
                for column in (c[1] for c in columns if c[2].upper() in ("TEXT", "VARCHAR", "")):
                    conn.execute(
                        f'update \'{table}\' set "{column}" = replace("{column}", ?, ?) '
                        f'where "{column}" like ?',
                        (RECORDED_AT, str(root), f"%{RECORDED_AT}%"),
                    )
    for path in (root / "mlruns" / "artifacts").rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace(RECORDED_AT, str(root)), encoding="utf-8")


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    from runners.testing import build_tiny_llama

    root = tmp_path / "store"
    shutil.copytree(FIXTURE, root)
    relocate(root)
    build_tiny_llama(root / "model")  # the same weights as when the study was recorded
    return root


def test_a_store_of_0_1_0_is_reported_continued_and_rerun(
    old_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advisor.cli import app

    monkeypatch.chdir(old_store)
    runner = CliRunner()

    reported = runner.invoke(app, ["report", "compat", "--json", "--no-log-plots"])
    assert reported.exit_code == 0, reported.output
    report = json.loads(reported.stdout)
    assert [r["state"] for r in report["rows"]] == ["complete", "complete"]
    assert report["baseline_score"] == 0.0 and report["metric"] == "json_match"
    assert report["method"] == "lora" and report["best"][0]["trial"] in (0, 1)
    params_before = [r["params"] for r in report["rows"]]

    # Continue the study from its own file: same spec hash, trials 0 and 1 not repeated.
    continued = runner.invoke(app, ["tune", "compat.yaml", "--n-trials", "3", "--json"])
    assert continued.exit_code == 0, continued.output
    summary = json.loads(continued.stdout)
    assert summary["skipped_finished"] == 2
    assert [r["number"] for r in summary["rows"]] == [0, 1, 2]
    assert [r["state"] for r in summary["rows"]] == ["complete"] * 3
    assert summary["parent_run_id"] == report["parent_run_id"]
    assert summary["baseline_score"] == 0.0  # the recorded baseline, not a new one

    again = json.loads(runner.invoke(app, ["report", "compat", "--json", "--no-log-plots"]).stdout)
    assert [r["params"] for r in again["rows"][:2]] == params_before

    # Rerun it from what 0.1.0 logged: the same parameters and eval losses come back.
    rerun = runner.invoke(app, ["rerun", "compat", "--trial", "1", "--json"])
    assert rerun.exit_code == 0, rerun.output
    drift = json.loads(rerun.stdout)
    assert drift["reproduced"] is True and drift["data_changed"] == {}
    assert drift["trials"][0]["params"] == params_before[1]

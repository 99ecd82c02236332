"""`advisor scan` through typer's CliRunner: exit codes, messages, --json, --report, --study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import FULL_VALUES, write_dirty
from typer.testing import CliRunner

from advisor.cli import app
from runners.testing import toy_dataset, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dirty(tmp_path_factory.mktemp("cli-scan"))


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_clean_file_prints_the_report_and_exits_0(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "clean.jsonl", toy_dataset(12, seed=3))
    result = runner.invoke(app, ["scan", str(data), "--fail-on", "pii,empty,truncated"])
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    for needle in ("Data scan", "12 rows", "personal data: 0 rows", "Length histograms", "words"):
        assert needle in out


def test_fail_on_exits_1_and_names_the_rules(dirty: Path) -> None:
    result = runner.invoke(app, ["scan", str(dirty), "--fail-on", "pii,duplicates>5%,empty>5"])
    assert result.exit_code == 1
    err = _flat(result.stderr)
    assert "fail-on: pii: 5 rows (23.8%), rule pii" in err
    assert "fail-on: duplicates: 3 rows (14.3%), rule duplicates>5%" in err
    assert "empty" not in err
    for value in FULL_VALUES:
        assert value not in result.output


def test_bad_input_exits_2_with_the_fix(dirty: Path, tmp_path: Path) -> None:
    bad_rule = runner.invoke(app, ["scan", str(dirty), "--fail-on", "pii,dupes>5%"])
    assert bad_rule.exit_code == 2
    assert "unknown measure 'dupes'" in _flat(bad_rule.stderr) and "fix:" in bad_rule.stderr
    nothing = runner.invoke(app, ["scan"])
    assert nothing.exit_code == 2 and "no data to scan" in nothing.stderr
    field = runner.invoke(app, ["scan", str(dirty), "--response-field", "answer"])
    assert field.exit_code == 2 and "--response-field" in _flat(field.stderr)
    suffix = runner.invoke(app, ["scan", str(dirty), "--report", str(tmp_path / "r.txt")])
    assert suffix.exit_code == 2 and "--report" in suffix.stderr
    threshold = runner.invoke(app, ["scan", str(dirty), "--near-threshold", "1.5"])
    assert threshold.exit_code == 2 and "--near-threshold" in threshold.stderr
    langs = runner.invoke(app, ["scan", str(dirty), "--languages", "en,xx"])
    assert langs.exit_code == 2 and "unknown language code(s) xx" in langs.stderr


def test_json_shape(dirty: Path) -> None:
    result = runner.invoke(app, ["scan", str(dirty), "--json", "--fail-on", "lang!=en|de"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["rows"] == 21
    assert payload["files"] == [
        {"path": str(dirty), "rows": 21, "layout": "prompt_response", "kind": "chat"}
    ]
    assert set(payload["results"]) == {
        "turns",
        "lengths",
        "language",
        "complexity",
        "duplicates",
        "pii",
        "empty",
    }
    assert payload["fail_on"] == {
        "rules": "lang!=en|de",
        "tripped": ["lang!=en|de: 2 rows (9.5%), rule lang!=en|de"],
    }
    assert payload["results"]["pii"]["rows_by_kind"]["cn_id"] == 1
    assert payload["results"]["duplicates"]["exact"][0]["rows"][0] == {"file": str(dirty), "row": 1}
    assert payload["options"]["near_threshold"] == 0.8


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_report_file_written(dirty: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"scan{suffix}"
    result = runner.invoke(app, ["scan", str(dirty), "--report", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in _flat(result.stdout)
    text = target.read_text(encoding="utf-8")
    assert "Personal data" in text and "j***@example.com" in text
    assert "jane.doe@example.com" not in text


def test_study_supplies_files_model_and_length(tmp_path: Path, tiny_model: Path) -> None:
    from support import write_tiny_study

    study = write_tiny_study(tmp_path, tiny_model, "scanned")
    result = runner.invoke(app, ["scan", "--study", str(study), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [f["rows"] for f in payload["files"]] == [24, 4]
    lengths = payload["results"]["lengths"]
    assert lengths["unit"] == "tokens" and lengths["max_seq_length"] == 64
    assert lengths["source"] == str(tiny_model)
    override = runner.invoke(
        app, ["scan", "--study", str(study), "--max-seq-length", "16", "--json"]
    )
    assert json.loads(override.stdout)["results"]["lengths"]["max_seq_length"] == 16

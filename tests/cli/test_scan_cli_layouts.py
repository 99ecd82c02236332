"""`advisor scan` on each data layout through the real CLI: no field hints needed, exit 0 on
clean data, the layout and turn statistics in the text and in --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from layout_rows import LAYOUT_ROWS, write_layout
from typer.testing import CliRunner

from advisor.cli import app

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _hints(layout: str) -> list[str]:
    """Only the prompt_response file uses other field names than prompt/response."""
    if layout != "prompt_response":
        return []
    return ["--prompt-field", "question", "--response-field", "answer"]


@pytest.mark.parametrize("layout", list(LAYOUT_ROWS))
def test_each_layout_scans_without_field_hints(layout: str, tmp_path: Path) -> None:
    path = write_layout(tmp_path, layout)
    result = runner.invoke(app, ["scan", str(path), "--json", *_hints(layout)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (info,) = payload["files"]
    assert info["layout"] == layout and info["rows"] == len(LAYOUT_ROWS[layout])
    turns = payload["results"]["turns"]
    assert set(turns) >= {"conversations", "documents", "turns", "roles", "with_system"}
    if layout == "text":
        assert turns["documents"] == 3 and turns["conversations"] == 0
    else:
        assert turns["conversations"] == len(LAYOUT_ROWS[layout]) and turns["turns"]["max"] >= 2


def test_text_report_names_the_layout_turns_and_the_turn_of_personal_data(tmp_path: Path) -> None:
    path = write_layout(tmp_path, "messages")
    result = runner.invoke(app, ["scan", str(path)])
    assert result.exit_code == 0, result.output
    out = _flat(result.stdout)
    assert "3 rows, messages" in out and "layout detected" in out
    assert "conversations: 3; turns per conversation mean 3.7 (min 2, median 4, max 5)" in out
    assert "turns by role: system 1, user 5, assistant 5; 1 with a system prompt" in out
    assert "1 (system)" in out and "3 (user)" in out  # the turns holding personal data
    assert "ops.lead@example.com" not in out


def test_format_option_forces_the_layout(tmp_path: Path) -> None:
    """A prompt/response file whose fields are also trl's names: --format decides."""
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "Name a colour.", "response": "Red."}) + "\n")
    result = runner.invoke(app, ["scan", str(path), "--json", "--format", "prompt_response"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"][0]["layout"] == "prompt_response"


def test_refused_rows_are_listed_and_fail_on_empty_trips(tmp_path: Path) -> None:
    rows = [*LAYOUT_ROWS["messages"], {"messages": [{"role": "user", "content": "Hello?"}]}]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = runner.invoke(app, ["scan", str(path), "--fail-on", "empty"])
    assert result.exit_code == 1, result.output
    out = _flat(result.stdout)
    assert "Rows training refuses" in out and "no assistant turn" in out
    assert "fail-on: empty: 1 rows" in _flat(result.stderr)

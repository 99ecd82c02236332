"""`advisor scan` refusals (issue 15, item 4): a file in no layout or in two, a layout forced
that the rows lack, a 0-byte file, a folder that is no saved dataset, a file none of whose rows
training could read, an unusable chat template. Each row runs the real CLI: exit 2, the file and
row (or the option) named, a fix, no traceback and nothing written (`bad_input.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, write


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}

CASES = [
    bad(
        "odd.jsonl:1",
        "no data layout matches the row",
        "fields found: question (a string), reply (a string)",
        "messages (messages: [{role, content}, ...])",
        "--prompt-field",
        id="scan-no-layout",
        args=("scan", "odd.jsonl"),
        prepare=write("odd.jsonl", _jsonl({"question": "a?", "reply": "b"})),
    ),
    bad(
        "mixed.jsonl:2",
        "the row is in the text layout",
        "mixed.jsonl:1 is in the messages layout",
        "a file holds one layout",
        id="scan-mixed-layouts",
        args=("scan", "mixed.jsonl"),
        prepare=write("mixed.jsonl", _jsonl(CHAT, {"text": "A document."})),
    ),
    bad(
        "--format",
        "unknown data format 'chat'",
        "messages, sharegpt, alpaca",
        id="scan-unknown-format",
        args=("scan", "chat.jsonl", "--format", "chat"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
    bad(
        "chat.jsonl:1",
        "the row has no text, which the text layout",
        "--format",
        id="scan-format-the-rows-lack",
        args=("scan", "chat.jsonl", "--format", "text"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
    bad(
        "no-answer.jsonl:1",
        "no assistant turn",
        "add the assistant's reply",
        id="scan-no-row-has-an-answer",
        args=("scan", "no-answer.jsonl"),
        prepare=write(
            "no-answer.jsonl", _jsonl({"messages": [{"role": "user", "content": "Hello?"}]})
        ),
    ),
    bad(
        "roles.jsonl:1",
        "messages turn 2 has role 'bot'",
        "roles read: system, user, assistant",
        id="scan-unknown-role",
        args=("scan", "roles.jsonl"),
        prepare=write(
            "roles.jsonl",
            _jsonl(
                {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Yo"}]}
            ),
        ),
    ),
    bad(
        "empty.jsonl",
        id="scan-zero-byte-file",
        args=("scan", "empty.jsonl"),
        prepare=write("empty.jsonl", b""),
    ),
    bad(
        "folder",
        id="scan-folder-not-a-saved-dataset",
        args=("scan", "folder"),
        prepare=write("folder/notes.txt", "not a dataset"),
    ),
    bad(
        "--chat-template",
        "missing.jinja",
        id="scan-chat-template-file-missing",
        args=("scan", "chat.jsonl", "--study", "s.yaml", "--chat-template", "missing.jinja"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
    bad(
        "--chat-template",
        "no model is named",
        "add --model",
        id="scan-chat-template-without-a-model",
        args=("scan", "chat.jsonl", "--chat-template", "chatml"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_scan_refuses_bad_data(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)

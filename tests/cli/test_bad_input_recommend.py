"""`advisor recommend --train` refusals (issue 15, item 5): training data in no layout, a layout
forced that the rows lack, an unknown layout, a 0-byte file, a folder that is no saved dataset,
a file none of whose rows training could read. Each row runs the real CLI: exit 2, the file and
row (and the option) named, a fix, no traceback and nothing written (`bad_input.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, write


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
RECOMMEND = ("recommend", "--model", "llama-3-8b")

CASES = [
    bad(
        "--train",
        "odd.jsonl:1",
        "no data layout matches the row",
        "fields found: question (a string), reply (a string)",
        "--prompt-field",
        id="recommend-train-in-no-layout",
        args=(*RECOMMEND, "--train", "odd.jsonl"),
        prepare=write("odd.jsonl", _jsonl({"question": "a?", "reply": "b"})),
    ),
    bad(
        "--train",
        "chat.jsonl:1",
        "the row has no text, which the text layout",
        "--format",
        id="recommend-format-the-rows-lack",
        args=(*RECOMMEND, "--train", "chat.jsonl", "--format", "text"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
    bad(
        "--format",
        "unknown data format 'sharegpt4'",
        id="recommend-unknown-format",
        args=(*RECOMMEND, "--train", "chat.jsonl", "--format", "sharegpt4"),
        prepare=write("chat.jsonl", _jsonl(CHAT)),
    ),
    bad(
        "--train",
        "empty.jsonl",
        id="recommend-train-zero-bytes",
        args=(*RECOMMEND, "--train", "empty.jsonl"),
        prepare=write("empty.jsonl", b""),
    ),
    bad(
        "--train",
        "folder",
        id="recommend-train-folder-not-a-saved-dataset",
        args=(*RECOMMEND, "--train", "folder"),
        prepare=write("folder/notes.txt", "not a dataset"),
    ),
    bad(
        "--train",
        "no-answer.jsonl:1",
        "no assistant turn",
        id="recommend-train-no-row-has-an-answer",
        args=(
            *RECOMMEND,
            "--train",
            "no-answer.jsonl",
            "--eval",
            "eval.jsonl",
            "--write-study",
            "out/x.yaml",
        ),
        prepare=write(
            "no-answer.jsonl", _jsonl({"messages": [{"role": "user", "content": "Hello?"}]})
        ),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_recommend_refuses_bad_training_data(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)

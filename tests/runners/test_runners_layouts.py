"""Data layouts (`runners.layouts`): each detected from realistic rows and turned into exactly
the canonical record; files that match no layout or mix two, and each kind of bad row, are
errors naming the file and the row; `format` skips detection but not the checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.errors import TrialInputError
from runners.layouts import (
    LAYOUTS,
    Conversation,
    Document,
    LayoutError,
    PairFields,
    Turn,
    detect,
    read_examples,
    to_examples,
)

S, U, A = "system", "user", "assistant"


def numbered(*rows: dict) -> list[tuple[int, dict]]:
    return list(enumerate(rows, start=1))


MESSAGES = {
    "messages": [
        {"role": S, "content": "You answer in French."},
        {"role": U, "content": "Hello"},
        {"role": A, "content": "Bonjour"},
        {"role": U, "content": "Thanks"},
        {"role": A, "content": "Merci"},
    ],
    "id": "conv-1",
}
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "Be terse."},
        {"from": "human", "value": "2+2?"},
        {"from": "gpt", "value": "4"},
    ]
}
ALPACA = {"instruction": "Summarise the text.", "input": "Cats sleep a lot.", "output": "Cats nap."}
TRL_STRINGS = {"prompt": "The sky is", "completion": " blue."}
TRL_MESSAGES = {
    "prompt": [{"role": S, "content": "Be kind."}, {"role": U, "content": "Colour of sky?"}],
    "completion": [{"role": A, "content": "Blue."}],
}
PAIRS = {"prompt": "Translate: cat", "response": "chat", "topic": "fr"}
TEXT = {"text": "The mitochondrion is the powerhouse of the cell.", "source": "bio"}

CASES = [
    (
        "messages",
        MESSAGES,
        (
            *(Turn(S, "You answer in French."), Turn(U, "Hello"), Turn(A, "Bonjour")),
            *(Turn(U, "Thanks"), Turn(A, "Merci")),
        ),
    ),
    ("sharegpt", SHAREGPT, (Turn(S, "Be terse."), Turn(U, "2+2?"), Turn(A, "4"))),
    ("alpaca", ALPACA, (Turn(U, "Summarise the text.\n\nCats sleep a lot."), Turn(A, "Cats nap."))),
    ("prompt_completion", TRL_STRINGS, (Turn(U, "The sky is"), Turn(A, " blue."))),
    (
        "prompt_completion",
        TRL_MESSAGES,
        (Turn(S, "Be kind."), Turn(U, "Colour of sky?"), Turn(A, "Blue.")),
    ),
    ("prompt_response", PAIRS, (Turn(U, "Translate: cat"), Turn(A, "chat"))),
]


CASE_IDS = ["messages", "sharegpt", "alpaca", "trl-strings", "trl-messages", "prompt_response"]


@pytest.mark.parametrize(("name", "row", "turns"), CASES, ids=CASE_IDS)
def test_each_chat_layout_is_detected_and_converted(name: str, row: dict, turns) -> None:
    layout, examples = to_examples(numbered(row, row), "d.jsonl", where="data")
    assert layout is LAYOUTS[name] and layout.kind == "chat"
    assert examples == [Conversation(1, turns), Conversation(2, turns)]


def test_raw_text_is_a_document() -> None:
    layout, examples = to_examples(numbered(TEXT), "corpus.jsonl", where="data")
    assert layout.name == "text" and layout.kind == "text"
    assert examples == [Document(1, TEXT["text"])]


def test_alpaca_without_input_and_with_a_system_prompt() -> None:
    rows = numbered(
        {"instruction": "Name a colour.", "input": "", "output": "Red"},
        {"instruction": "Name a fruit.", "input": None, "output": "Apple", "system": "Be terse."},
    )
    _, examples = to_examples(rows, "a.parquet", where="data")
    assert [e.messages for e in examples] == [
        (Turn(U, "Name a colour."), Turn(A, "Red")),
        (Turn(S, "Be terse."), Turn(U, "Name a fruit."), Turn(A, "Apple")),
    ]


def test_renamed_pair_fields_and_structured_answers() -> None:
    fields = PairFields(prompt="question", response="answer")
    rows = numbered(
        {"question": "Parse 'a=1'", "answer": {"a": 1}}, {"question": "1+1", "answer": 2}
    )
    layout, examples = to_examples(rows, "q.csv", fields=fields, where="data")
    assert layout.name == "prompt_response"
    assert [e.messages[1].content for e in examples] == ['{"a": 1}', "2"]


def test_arrow_nulls_count_as_absent_fields() -> None:
    """Parquet writes every column in every row: a chat row's `text` column is None."""
    row = {"messages": MESSAGES["messages"][1:3], "text": None, "instruction": None}
    assert detect(numbered(row), "d.parquet", where="data").name == "messages"


def test_rows_read_from_a_file_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps(SHAREGPT) + "\n\n" + json.dumps(SHAREGPT) + "\n")
    layout, examples = read_examples(path, where="data")
    assert layout.name == "sharegpt" and [e.row for e in examples] == [1, 3]


def test_a_parquet_chat_file_reads_to_conversations(tmp_path: Path) -> None:
    """Arrow gives every turn every struct field (`name` None where a turn had none)."""
    import pyarrow
    import pyarrow.parquet

    turns = [{"role": U, "content": "hi", "name": "ann"}, {"role": A, "content": "hello"}]
    path = tmp_path / "chat.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist([{"messages": turns}] * 2), path)
    layout, examples = read_examples(path, where="data")
    assert layout.name == "messages"
    assert examples[1] == Conversation(2, (Turn(U, "hi"), Turn(A, "hello")))


# --- files that match no layout, or two ---------------------------------------------------------


def test_a_file_matching_no_layout_names_row_fields_and_layouts() -> None:
    rows = numbered(PAIRS, {"question": "q", "answer": 3})
    with pytest.raises(LayoutError) as caught:
        detect(rows, "data/train.jsonl", where="data.train")
    error = caught.value
    assert error.line == 2 and error.where == "data.train"
    assert error.message.startswith("train.jsonl:2: no data layout matches the row; ")
    assert "fields found: question (a string), answer (a number)" in error.message
    for name in LAYOUTS:
        assert f"{name} (" in error.message
    assert "data.format" in error.fix


def test_a_parquet_file_with_other_columns_is_named_by_row() -> None:
    with pytest.raises(LayoutError, match=r"^data: t\.parquet row 1: no data layout matches"):
        detect(numbered({"question": "q", "label": 1}), "t.parquet", where="data")


def test_a_file_mixing_layouts_names_both_and_the_first_other_row() -> None:
    rows = numbered(MESSAGES, MESSAGES, ALPACA, TEXT)
    with pytest.raises(LayoutError) as caught:
        detect(rows, "mixed.jsonl", where="data")
    assert caught.value.message == (
        "mixed.jsonl:3: the row is in the alpaca layout (instruction, input (optional), output), "
        "but mixed.jsonl:1 is in the messages layout (messages: [{role, content}, ...]); "
        "a file holds one layout"
    )


def test_no_rows_is_an_error() -> None:
    with pytest.raises(TrialInputError, match=r"e\.jsonl holds no records"):
        detect([], "e.jsonl", where="data")


# --- bad rows -------------------------------------------------------------------------------


def _turns(*pairs: tuple[str, object]) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


BAD_ROWS = [
    (
        "no-assistant",
        _turns((S, "sys"), (U, "hi")),
        "the conversation has no assistant turn",
    ),
    (
        "unknown-role",
        _turns((U, "hi"), ("tool", "42"), (A, "ok")),
        "messages turn 2 has role 'tool' (keys: content, role); roles read: system, user, "
        "assistant",
    ),
    (
        "non-string-content",
        _turns((U, [{"type": "text", "text": "hi"}]), (A, "ok")),
        "messages turn 1 (user) content is a list, not a string",
    ),
    ("empty-turn", _turns((U, "hi"), (A, "  ")), "messages turn 2 (assistant) content is empty"),
    ("empty-text", {"text": "\n"}, "text is empty"),
    ("text-not-string", {"text": 3}, "text is a number, not a string"),
    (
        "sharegpt-unknown-from",
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "yo"}]},
        "conversations turn 2 has from 'bot'",
    ),
    ("empty-conversation", {"messages": []}, "messages is an empty list, not a list of turns"),
    ("turn-not-object", {"messages": ["hi"]}, "messages turn 1 is a string, not an object"),
    (
        "trl-mixed",
        {"prompt": "hi", "completion": [{"role": A, "content": "yo"}]},
        "prompt is a string and completion a list",
    ),
    (
        "trl-completion-not-assistant",
        {"prompt": [{"role": U, "content": "hi"}], "completion": [{"role": U, "content": "x"}]},
        "completion turn 1 has role 'user'",
    ),
    ("alpaca-empty-output", {"instruction": "do", "output": ""}, "output is empty"),
]


GOOD = {"messages": MESSAGES, "sharegpt": SHAREGPT, "alpaca": ALPACA, "text": TEXT}
GOOD["prompt_completion"] = TRL_STRINGS


@pytest.mark.parametrize(("row", "says"), [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_each_bad_row_is_named_by_file_and_row(row: dict, says: str) -> None:
    good = GOOD[detect(numbered(row), "x.jsonl", where="data").name]  # a good row first
    rows = numbered(good, row)
    with pytest.raises(LayoutError) as caught:
        to_examples(rows, "bad.jsonl", where="data.train")
    assert caught.value.message.startswith(f"bad.jsonl:2: {says}"), caught.value.message
    assert caught.value.line == 2 and caught.value.fix


# --- the format override --------------------------------------------------------------------


def test_format_skips_detection() -> None:
    """A row with both `prompt`/`completion` and `text` is detected as prompt_completion; the
    override reads it as raw text."""
    row = {"prompt": "a", "completion": "b", "text": "a b"}
    assert to_examples(numbered(row), "x.jsonl", where="data")[0].name == "prompt_completion"
    layout, examples = to_examples(numbered(row), "x.jsonl", format="text", where="data")
    assert layout.name == "text" and examples == [Document(1, "a b")]


def test_format_still_checks_every_row() -> None:
    rows = numbered(ALPACA, {"instruction": "x", "response": "y"})
    with pytest.raises(LayoutError) as caught:
        to_examples(rows, "a.jsonl", format="alpaca", where="data")
    assert caught.value.message.startswith(
        "a.jsonl:2: the row has no output, which the alpaca layout (instruction, input "
        "(optional), output) needs; fields found: instruction (a string), response (a string)"
    )


def test_an_unknown_format_lists_the_layouts() -> None:
    with pytest.raises(TrialInputError) as caught:
        to_examples(numbered(TEXT), "x.jsonl", format="chatml", where="data")
    assert caught.value.where == "data.format" and "unknown data format 'chatml'" in str(
        caught.value
    )
    assert all(name in caught.value.fix for name in LAYOUTS)

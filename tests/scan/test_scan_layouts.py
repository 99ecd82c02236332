"""`advisor.scan` on every data layout: detected without field hints, turns counted, and every
check run on every turn (personal data named by row and turn, duplicates as whole
conversations, lengths through the chat template with the turns cut and where)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from layout_rows import LAYOUT_ROWS, MESSAGES, write_layout

from advisor.errors import AdvisorInputError
from advisor.scan import ScanOptions, scan_file
from advisor.scan.lengths import TokenizerCounter
from runners.errors import InputError
from runners.testing import write_jsonl

FIELDS = ScanOptions(prompt_field="question", response_field="answer")

EXPECTED = {
    # layout: (rows, conversations, turns per conversation (min, max), roles, with a system turn)
    "messages": (3, 3, (2, 5), {"system": 1, "user": 5, "assistant": 5}, 1),
    "sharegpt": (2, 2, (2, 3), {"system": 1, "user": 2, "assistant": 2}, 1),
    "alpaca": (2, 2, (2, 2), {"user": 2, "assistant": 2}, 0),
    "prompt_completion": (2, 2, (2, 3), {"system": 1, "user": 2, "assistant": 2}, 1),
    "prompt_response": (2, 2, (2, 2), {"user": 2, "assistant": 2}, 0),
    "text": (3, 0, (0, 0), {}, 0),
}


@pytest.mark.parametrize("layout", list(LAYOUT_ROWS))
def test_every_layout_is_detected_and_its_turns_counted(layout: str, tmp_path: Path) -> None:
    report = scan_file(write_layout(tmp_path, layout), options=FIELDS)
    rows, conversations, (low, high), roles, with_system = EXPECTED[layout]
    (info,) = report.files
    assert (info.layout, info.rows, report.rows) == (layout, rows, rows)
    assert info.kind == ("text" if layout == "text" else "chat")
    turns = report.results["turns"]
    assert (turns.conversations, turns.turns.min, turns.turns.max) == (conversations, low, high)
    assert (turns.roles, turns.with_system) == (roles, with_system)
    assert turns.documents == (rows if layout == "text" else 0)
    assert report.results["empty"].rows_with_empty == 0
    assert report.results["lengths"].sequence.count == rows


def test_personal_data_in_a_system_prompt_and_a_middle_turn(tmp_path: Path) -> None:
    report = scan_file(write_layout(tmp_path, "messages"))
    found = [(f.row, f.turn, f.role, f.kind, f.masked) for f in report.results["pii"].findings]
    assert found == [
        (1, 1, "system", "email", "o***@example.com"),
        (2, 3, "user", "phone", "+44********58"),
    ]
    assert report.results["turns"].multi_turn == 2


def test_personal_data_in_a_document(tmp_path: Path) -> None:
    report = scan_file(write_layout(tmp_path, "text"))
    found = [(f.row, f.turn, f.role, f.kind) for f in report.results["pii"].findings]
    assert found == [(3, 1, "text", "email")]
    assert report.results["complexity"].analysed == 0  # documents ask nothing
    assert sum(report.results["language"].counts.values()) == 3


def test_alpaca_input_and_follow_up_turns_are_read(tmp_path: Path) -> None:
    """Languages and asks look at every user turn: the Alpaca input joins its instruction, and
    a follow-up question is an ask of its own."""
    alpaca = scan_file(write_layout(tmp_path, "alpaca"))
    assert alpaca.results["complexity"].analysed == 2
    messages = scan_file(write_layout(tmp_path, "messages"))
    assert messages.results["complexity"].analysed == 5  # every user turn, not the first only
    assert sum(messages.results["language"].counts.values()) == 6  # user turns and the system


def test_duplicates_compare_whole_conversations(tmp_path: Path) -> None:
    """The same first question with another follow-up is not a copy; the same conversation is."""
    first = MESSAGES[0]
    other_end = {"messages": [*first["messages"][:3], {"role": "user", "content": "Thanks!"}]}
    other_end["messages"].append({"role": "assistant", "content": "You are welcome."})
    path = write_jsonl(tmp_path / "dupes.jsonl", [first, other_end, first])
    duplicates = scan_file(path, options=ScanOptions(near_threshold=0.95)).results["duplicates"]
    assert [[loc.row for loc in c.rows] for c in duplicates.exact] == [[1, 3]]
    assert duplicates.near == [] and duplicates.redundant_rows == 1


def test_truncation_says_which_turns_are_cut_and_where(tmp_path: Path) -> None:
    long_question = "Describe the whole history of the harbour " + "and its ships " * 30
    rows = [
        {"messages": [{"role": "user", "content": long_question}, *MESSAGES[2]["messages"][1:]]},
        MESSAGES[0],  # ends in a long enough answer to be cut inside it
        MESSAGES[2],  # short: not cut
    ]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    lengths = scan_file(path, options=ScanOptions(max_seq_length=40)).results["lengths"]
    cut = {t.row: (t.turns_cut, t.cut_in) for t in lengths.truncated}
    assert cut == {1: (2, "user"), 2: (1, "assistant")}
    assert lengths.cut_in_context == 1
    assert lengths.sequence.max == lengths.truncated[0].length


def test_lengths_through_the_chat_template_the_study_uses(tmp_path: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from runners.templates import resolve_template

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    path = write_layout(tmp_path, "messages")
    for choice in ("auto", "chatml"):
        counter = TokenizerCounter(tokenizer, source=str(tiny_model), chat_template=choice)
        report = scan_file(path, counter=counter, checks=["lengths"])
        lengths = report.results["lengths"]
        template = resolve_template(tokenizer, choice)
        expected = [
            len(tokenizer(template.render(tokenizer, row["messages"], prompt=False))["input_ids"])
            for row in MESSAGES
        ]
        assert (lengths.template, lengths.unit) == (template.name, "tokens")
        assert sorted(expected) == [
            lengths.sequence.min,
            lengths.sequence.p50,
            lengths.sequence.max,
        ]
    assert lengths.template == "chatml"


def test_raw_text_is_counted_as_it_is_without_a_template(tmp_path: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    counter = TokenizerCounter(tokenizer, source=str(tiny_model))
    report = scan_file(write_layout(tmp_path, "text"), counter=counter, checks=["lengths"])
    lengths = report.results["lengths"]
    texts = [row["text"] for row in LAYOUT_ROWS["text"]]
    assert lengths.template is None and lengths.unit == "tokens"
    assert lengths.sequence.max == max(len(tokenizer(t)["input_ids"]) for t in texts)


def test_format_forces_a_layout_and_names_the_rows_that_lack_it(tmp_path: Path) -> None:
    path = write_layout(tmp_path, "alpaca")
    with pytest.raises(InputError, match=r"alpaca\.jsonl:1: the row has no text"):
        scan_file(path, options=ScanOptions(format="text"))
    with pytest.raises(AdvisorInputError, match="unknown data format 'chat'") as caught:
        ScanOptions(format="chat")
    assert caught.value.where == "--format" and "messages, sharegpt" in str(caught.value.fix)


def test_a_file_in_no_layout_or_mixing_two_is_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "a?", "reply": "b"}])
    with pytest.raises(InputError, match="no data layout matches the row") as caught:
        scan_file(path)
    assert "fields found: question (a string), reply (a string)" in str(caught.value)
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [MESSAGES[2], {"text": "A document."}])
    with pytest.raises(InputError, match=r"mixed\.jsonl:2: the row is in the text layout"):
        scan_file(mixed)


@pytest.mark.parametrize("container", ["json", "parquet", "saved"])
def test_other_containers_scan_the_same(container: str, tmp_path: Path) -> None:
    """A JSON array, a Parquet file and a `datasets` folder of the same conversations."""
    import datasets

    rows = LAYOUT_ROWS["messages"]
    first = 1
    if container == "json":  # an item is named by the line it starts on: here lines 2-4
        path = tmp_path / "chat.json"
        path.write_text("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n")
        first = 2
    elif container == "parquet":
        path = tmp_path / "chat.parquet"
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    else:
        path = tmp_path / "chat"
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    report = scan_file(path)
    assert (report.files[0].layout, report.rows) == ("messages", 3)
    found = [(f.row, f.turn, f.role) for f in report.results["pii"].findings]
    assert found == [(first, 1, "system"), (first + 1, 3, "user")]

"""Knowledge sources, chunking and BM25 retrieval (pure: no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.errors import TrialInputError
from runners.knowledge import Chunk, KnowledgeDocument, chunk, overlap, read_documents
from runners.layouts import Conversation, Turn
from runners.retrieval import INSTRUCTION, build_index, with_context, with_passages

CATALOGUE = {
    "lamps.md": "The Aurora desk lamp costs 49 euros and 12 are in stock. "
    "It has a warm white LED and a brass arm.",
    "chairs.txt": "The Fjord office chair costs 310 euros; the warehouse holds 3 of them. "
    "Its seat is grey wool.",
    "kettles.md": "The Nimbus kettle boils 1.7 litres and costs 35 euros. It is sold out.",
}


def write_catalogue(root: Path) -> Path:
    folder = root / "kb"
    (folder / "sub").mkdir(parents=True)
    for name, text in CATALOGUE.items():
        (folder / ("sub" if name == "chairs.txt" else "") / name).write_text(text)
    (folder / "notes.pdf").write_bytes(b"%PDF")  # not a document type: skipped
    (folder / ".hidden.md").write_text("secret draft")  # hidden: skipped
    return folder


def test_a_folder_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    documents = read_documents(write_catalogue(tmp_path))
    assert [d.source for d in documents] == ["kettles.md", "lamps.md", "chairs.txt"]
    assert documents[1].text == CATALOGUE["lamps.md"]


def test_records_are_documents_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate("ab")))
    assert read_documents(path) == [
        KnowledgeDocument("facts.jsonl:1", "a"),
        KnowledgeDocument("facts.jsonl:2", "b"),
    ]


def test_parquet_records_are_read(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "facts.parquet"
    pq.write_table(pa.table({"text": ["one fact", "another fact"]}), path)
    assert [d.source for d in read_documents(path)] == [
        "facts.parquet row 1",
        "facts.parquet row 2",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", "", "0 bytes"),
        ("blank.md", "  \n\t\n", "only white space"),
        ("rows.jsonl", '{"text": "ok"}\n{"body": "no text"}\n', "rows.jsonl:2"),
        ("rows.jsonl", '{"text": ""}\n', "an empty text"),
        ("latin.txt", b"caf\xe9", "not UTF-8"),
        ("table.csv", "text\nhello\n", "unknown file type"),
    ],
)
def test_unusable_sources_are_refused_naming_the_file(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TrialInputError, match=expected) as raised:
        read_documents(path)
    assert raised.value.where == "data.knowledge" and raised.value.fix


def test_an_empty_folder_and_a_missing_path_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrialInputError, match="holds no documents"):
        read_documents(tmp_path / "empty")
    with pytest.raises(TrialInputError, match="does not exist"):
        read_documents(tmp_path / "nowhere")


def test_chunks_overlap_and_remember_their_document() -> None:
    words = [f"w{i}" for i in range(40)]
    chunks = chunk([KnowledgeDocument("doc.txt", " ".join(words))], 16)
    assert overlap(16) == 4
    assert [c.text.split()[0] for c in chunks] == ["w0", "w12", "w24"]
    assert chunks[-1].text.split()[-1] == "w39"  # nothing lost at the end
    assert chunks[0].text.split()[-4:] == chunks[1].text.split()[:4]
    assert {c.source for c in chunks} == {"doc.txt"} and [c.index for c in chunks] == [0, 1, 2]
    short = chunk([KnowledgeDocument("short.md", "just five words in here")], 16)
    assert [c.text for c in short] == ["just five words in here"]


def test_a_chunk_size_below_the_bound_is_refused() -> None:
    with pytest.raises(TrialInputError, match="chunk_size must be >= 16"):
        chunk([KnowledgeDocument("a", "b")], 8)


def test_bm25_finds_the_passage_that_answers(tmp_path: Path) -> None:
    index = build_index(chunk(read_documents(write_catalogue(tmp_path)), 16))
    found = index.search(
        ["How much does the Fjord office chair cost?", "Is the Nimbus kettle in stock?"], top_k=2
    )
    assert found[0][0].source == "chairs.txt" and "310 euros" in found[0][0].text
    assert found[1][0].source == "kettles.md"


def test_passages_sharing_no_word_are_left_out(tmp_path: Path) -> None:
    index = build_index(chunk(read_documents(write_catalogue(tmp_path)), 16))
    assert index.search(["zebra quantum"], top_k=3) == [[]]
    assert len(index.search(["euros"], top_k=10)[0]) == 3  # k larger than the index


def test_the_question_turn_gets_the_passages_and_nothing_else_changes() -> None:
    passage = Chunk("lamps.md", 0, "The Aurora desk lamp costs 49 euros.")
    index = build_index([passage, Chunk("other.md", 0, "Unrelated words about gardens.")])
    conversation = Conversation(
        3,
        (
            Turn("system", "Answer briefly."),
            Turn("user", "What does the Aurora lamp cost?"),
            Turn("assistant", "49 euros"),
        ),
    )
    [asked] = with_passages([conversation], index, top_k=1)
    assert asked.messages[0] == conversation.messages[0]
    assert asked.messages[2] == conversation.messages[2]
    expected = with_context("What does the Aurora lamp cost?", [passage])
    assert asked.messages[1] == Turn("user", expected)
    assert expected == (
        f"{INSTRUCTION}\n\n[1] (lamps.md) The Aurora desk lamp costs 49 euros.\n\n"
        "Question: What does the Aurora lamp cost?"
    )

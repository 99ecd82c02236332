"""The knowledge source is a study input like the data files: its hash is logged with the
study (`data_hashes["knowledge"]`), and an edited, added or renamed document changes it, so
that `advisor rerun` can say the documents are not those the study indexed."""

from __future__ import annotations

from pathlib import Path

from advisor.provenance import file_sha256
from advisor.tuning.plan import knowledge_sha256


def test_a_folders_hash_follows_its_documents(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    (kb / "sub").mkdir(parents=True)
    (kb / "a.md").write_text("The red fox.")
    (kb / "sub" / "b.txt").write_text("The blue owl.")
    (kb / "notes.bin").write_bytes(b"\0\1")  # not a document: not indexed, not hashed
    first = knowledge_sha256(kb)
    (kb / "notes.bin").write_bytes(b"\2")
    assert knowledge_sha256(kb) == first
    (kb / "sub" / "b.txt").write_text("The blue owl hoots.")
    edited = knowledge_sha256(kb)
    assert edited != first
    (kb / "sub" / "b.txt").rename(kb / "sub" / "c.txt")
    assert knowledge_sha256(kb) != edited  # same content under another name
    (kb / "d.md").write_text("A new document.")
    assert len({first, edited, knowledge_sha256(kb)}) == 3


def test_a_files_hash_is_its_content_hash(tmp_path: Path) -> None:
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"text": "The red fox."}\n')
    assert knowledge_sha256(kb) == file_sha256(kb)

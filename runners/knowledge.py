"""The knowledge a retrieval method answers from (`data.knowledge`): documents, then passages.

A knowledge source is one file or a folder of them:

- `.txt` and `.md`: one document per file, its whole text (UTF-8);
- `.jsonl` and `.parquet`: one document per record, its `text` field, read through
  `runners.datafiles` (the one reader of data files), so errors name the file and the line/row;
- a folder: every file of those suffixes below it, recursively, in sorted path order (hidden
  files and folders skipped), so that the same folder always gives the same index.

Documents are cut into passages of `chunk_size` words; consecutive passages of one document
share `overlap(chunk_size)` words (a quarter), so a fact that straddles a cut is whole in one of
them. Each passage remembers its document, which is what the prompt names as its source.

An empty source (no file of a known suffix, a 0-byte or blank file, a record without `text`) is
refused with the file and the fix: an index of nothing would make every retrieval trial answer
without context and be scored as if it had retrieved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runners.datafiles import file_problem, located, read_numbered
from runners.errors import TrialInputError

TEXT_SUFFIXES = (".txt", ".md")
RECORD_SUFFIXES = (".jsonl", ".parquet")
SUFFIXES = (*TEXT_SUFFIXES, *RECORD_SUFFIXES)
"""The documents a knowledge source holds, by file suffix."""
TEXT_FIELD = "text"
"""The field of a JSONL or Parquet record that holds its document."""
MIN_CHUNK_SIZE = 16
"""Fewest words per passage: below it a passage is a phrase, and BM25 ranks phrases by a word or
two they share with the question, not by what they say."""
WHERE = "data.knowledge"


@dataclass(frozen=True)
class KnowledgeDocument:
    """One document: where it came from (`notes.md`, `facts.jsonl:3`) and its text."""

    source: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """One passage of the index: its document's `source`, its position there, its words."""

    source: str
    index: int
    text: str


def overlap(chunk_size: int) -> int:
    """Words two consecutive passages of a document share: a quarter of a passage."""
    return chunk_size // 4


def knowledge_files(path: str | Path) -> list[Path]:
    """The document files of a knowledge source: the file itself, or a folder's, sorted."""
    path = Path(path).expanduser()
    problem = file_problem(path, noun="knowledge file")
    if problem is not None and problem.kind == "folder":
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise TrialInputError(
                f"the knowledge folder {str(path)!r} holds no documents "
                f"(no {', '.join(SUFFIXES)} file in it or below it)",
                fix="put the documents in the folder, or point data.knowledge at a file",
                where=WHERE,
            )
        return files
    if problem is not None:
        raise TrialInputError(problem.message, fix=problem.fix, where=WHERE)
    if path.suffix.lower() not in SUFFIXES:
        raise TrialInputError(
            f"cannot read knowledge file {path.name!r}: unknown file type {path.suffix!r}",
            fix=f"use one of {', '.join(SUFFIXES)}, or a folder of them",
            where=WHERE,
        )
    return [path]


def read_documents(path: str | Path) -> list[KnowledgeDocument]:
    """Every document of the knowledge source at `path` (see the module docstring)."""
    documents: list[KnowledgeDocument] = []
    for file in knowledge_files(path):
        documents.extend(_documents_of(file))
    return documents


def _documents_of(file: Path) -> list[KnowledgeDocument]:
    problem = file_problem(file, noun="knowledge file")
    if problem is not None:  # a folder's file can be a dangling link or unreadable
        raise TrialInputError(problem.message, fix=problem.fix, where=WHERE)
    if file.suffix.lower() in RECORD_SUFFIXES:
        return [_record_document(file, number, row) for number, row in _records(file)]
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TrialInputError(
            f"knowledge file {file.name} is not UTF-8 text (byte {error.start})",
            fix="save it as UTF-8",
            where=WHERE,
        ) from None
    except OSError as error:
        raise TrialInputError(
            f"knowledge file {file.name} cannot be read: {error.strerror}",
            fix="make it readable",
            where=WHERE,
        ) from None
    if not text.strip():
        raise TrialInputError(
            f"knowledge file {file.name} holds no text"
            + (": it is 0 bytes" if not text else ", only white space"),
            fix="write the documents into it, or remove it from the knowledge source",
            where=WHERE,
        )
    return [KnowledgeDocument(file.name, text)]


def _records(file: Path) -> list[tuple[int, dict]]:
    rows = read_numbered(file, where=WHERE)
    if not rows:
        raise TrialInputError(
            f"knowledge file {file.name} holds no records",
            fix="add one JSON object with a `text` field per document",
            where=WHERE,
        )
    return rows


def _record_document(file: Path, number: int, row: dict) -> KnowledgeDocument:
    text = row.get(TEXT_FIELD)
    if not isinstance(text, str) or not text.strip():
        found = "an empty text" if isinstance(text, str) else f"fields {sorted(row)}"
        raise TrialInputError(
            f"{located(file, number)}: a knowledge record needs a non-empty {TEXT_FIELD!r} "
            f"string, but has {found}",
            fix=f"put each document's text in a {TEXT_FIELD!r} field",
            where=WHERE,
        )
    return KnowledgeDocument(located(file, number), text)


def chunk(documents: list[KnowledgeDocument], chunk_size: int) -> list[Chunk]:
    """Passages of `chunk_size` words, `overlap(chunk_size)` shared between neighbours."""
    if chunk_size < MIN_CHUNK_SIZE:
        raise TrialInputError(
            f"chunk_size must be >= {MIN_CHUNK_SIZE} words, got {chunk_size}",
            fix="set search.chunk_size to e.g. 128",
            where="search.chunk_size",
        )
    stride = chunk_size - overlap(chunk_size)
    chunks: list[Chunk] = []
    for document in documents:
        words = document.text.split()
        for number, start in enumerate(range(0, max(1, len(words) - overlap(chunk_size)), stride)):
            text = " ".join(words[start : start + chunk_size])
            chunks.append(Chunk(document.source, number, text))
    return chunks

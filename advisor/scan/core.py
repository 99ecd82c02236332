"""What every check shares: the rows it reads, the settings it runs with, the report it feeds.

Rows come from the readers the trials use: `runners.datafiles` (JSONL, JSON arrays, CSV, Parquet,
saved datasets; errors naming the file and line) and `runners.layouts` (the layout detected from
the rows, or the one `--format` names), so a file the scan reads is a file training reads, and
each row is the canonical conversation (or document) training sees. A row is named by its file
and its record number, as in the loader's own messages; a turn by its 1-based number.

A row the layouts refuse (an empty turn, a missing field, no assistant turn, content that is not
text) stays in the scan with its reason (`Row.refused`), so that one scan lists every such row
(the `empty` check) rather than training stopping at the first; a file in no layout, or mixing
layouts, is an input error like training's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from advisor.errors import AdvisorInputError
from runners.datafiles import Record, located, read_numbered
from runners.layouts import (
    LAYOUTS,
    Conversation,
    Layout,
    LayoutError,
    PairFields,
    Turn,
    detect,
    layout_of,
    to_examples,
)

TEXT_ROLE = "text"
"""The role of a raw-text document's one turn (the `text` layout)."""


@dataclass(frozen=True)
class Row:
    """One example: where it is, and its turns as training sees them."""

    file: str
    row: int
    turns: tuple[Turn, ...] = ()
    """A conversation's turns (system/user/assistant), or one `text` turn for a document; empty
    when the row is refused."""
    refused: str | None = None
    """Why training would refuse the row (the layouts' message), or None."""
    fields: tuple[tuple[str, str], ...] = ()
    """A refused row's fields as text (key, value), so that personal data in it is still found."""

    def numbered(self, *roles: str) -> Iterator[tuple[int, Turn]]:
        """(1-based turn number, turn) of every turn, or of those with one of `roles`."""
        for number, turn in enumerate(self.turns, start=1):
            if not roles or turn.role in roles:
                yield number, turn

    def texts(self, *roles: str) -> list[str]:
        return [turn.content for _, turn in self.numbered(*roles)]

    def joined(self) -> str:
        """Every turn as one document, roles included (duplicate detection compares whole
        conversations: the same answer to another question is not a duplicate)."""
        return "\n".join(f"{turn.role}: {turn.content}" for turn in self.turns)


@dataclass(frozen=True)
class Location:
    """A row as reports name it: file and 1-based record number."""

    file: str
    row: int


@dataclass(frozen=True)
class ScanOptions:
    """Settings of one scan; recorded in the report so that its numbers can be read back."""

    prompt_field: str = "prompt"
    response_field: str = "response"
    """The prompt_response layout's fields (`data.prompt_field`, `data.response_field`)."""
    format: str | None = None
    """A layout name (`data.format`, `--format`); None: detected from the rows."""
    chat_template: str = "auto"
    """The chat template lengths are measured through (`model.chat_template`, see
    `runners.templates`); used only with a model's tokenizer."""
    max_seq_length: int = 128
    near_threshold: float = 0.8
    system_prompt: str | None = None
    languages: tuple[str, ...] | None = None
    """Candidate languages for language ID (None: the default set, see language.py)."""

    def __post_init__(self) -> None:
        if not 0 < self.near_threshold < 1:
            raise AdvisorInputError(
                f"the near-duplicate threshold must lie strictly between 0 and 1, but got "
                f"{self.near_threshold}",
                fix="pass e.g. --near-threshold 0.8 (Jaccard similarity of 5-character shingles)",
                where="--near-threshold",
            )
        if self.format is not None and self.format not in LAYOUTS:
            raise AdvisorInputError(
                f"unknown data format {self.format!r}",
                fix=f"use one of {', '.join(LAYOUTS)}, or leave it out to detect the layout",
                where="--format",
            )
        if self.max_seq_length < 1:
            raise AdvisorInputError(
                f"max_seq_length must be positive, but got {self.max_seq_length}",
                fix="pass e.g. --max-seq-length 128",
                where="--max-seq-length",
            )


class TextCounter(Protocol):
    """Counts lengths in one unit: `tokens` of a tokenizer, or `words` (see `lengths.py`)."""

    unit: str
    source: str
    """What counted: the model source, or the word regex."""
    template: str | None
    """The chat template conversations are rendered with; None: words, no template."""

    def lengths(self, texts: Sequence[str]) -> list[int]: ...

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]:
        """Each row's whole sequence: the rendered conversation (or document), in the unit."""
        ...

    def turn_ends(self, row: Row, system_prompt: str | None) -> list[int]:
        """Where each turn of `row` (after the study's system prompt, when it adds one) ends in
        its sequence, in the unit: the last is the sequence's length."""
        ...


@dataclass
class ScanContext:
    """What a check receives besides the rows: the options and the length counter."""

    options: ScanOptions
    counter: TextCounter


@dataclass(frozen=True)
class FileInfo:
    path: str
    rows: int
    layout: str
    """The layout the rows are in (`runners.layouts.LAYOUTS`)."""
    kind: str
    """chat (conversations) or text (raw-text documents)."""


@dataclass
class ScanReport:
    """Everything one scan found; `asdict` of it is the `--json` output and the logged artifact."""

    files: list[FileInfo]
    rows: int
    options: ScanOptions
    results: dict[str, Any] = field(default_factory=dict)
    """Check name -> that check's result dataclass (see `registry.CHECKS`)."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def share(self, count: int) -> float:
        """`count` as a fraction of all rows (0 for an empty scan)."""
        return count / self.rows if self.rows else 0.0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def with_system(row: Row, system_prompt: str | None) -> list[dict[str, str]]:
    """The row's messages as training renders them: the study's system prompt first, unless the
    row has its own (a row's system turn wins, as in `runners.data`)."""
    messages = [{"role": turn.role, "content": turn.content} for turn in row.turns]
    if system_prompt and not any(turn.role == "system" for turn in row.turns):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _layout(
    records: Sequence[Record],
    path: str | Path,
    options: ScanOptions,
    fields: PairFields,
    *,
    where: str,
) -> Layout:
    """The layout `options.format` names, else the one every row is in (`layouts.detect`).

    Where some rows are in no layout (a missing response) and the others agree on one, that
    one is the file's layout and those rows are refused rows, each named with what it lacks;
    rows in two layouts, or none in any, are the layouts' error.
    """
    if options.format is not None:
        return LAYOUTS[options.format]  # checked by ScanOptions
    try:
        return detect(records, path, fields=fields, where=where)
    except LayoutError:
        found = {layout_of(record, fields) for _, record in records} - {None}
        if len(found) != 1:
            raise
        return found.pop()  # type: ignore[return-value]  (None removed above)


def read_rows(path: str | Path, options: ScanOptions, *, where: str) -> tuple[Layout, list[Row]]:
    """The layout of one data file and its rows, each converted as training converts it.

    The layout is detected from every row (or named by `options.format`); a file in none, or
    mixing two, raises the layouts' error naming the file, the row and the fields found. Each
    row is then converted on its own, so that every refused row is kept with its reason; a
    file none of whose rows can be read raises the first row's error.
    """
    records = read_numbered(path, where=where)
    fields = PairFields(options.prompt_field, options.response_field)
    layout = _layout(records, path, options, fields, where=where)
    rows: list[Row] = []
    first: LayoutError | None = None
    for record in records:
        number = record[0]
        try:
            _, (example,) = to_examples(
                [record], path, format=layout.name, fields=fields, where=where
            )
        except LayoutError as error:
            first = first or error
            prefix = f"{located(Path(path), number)}: "
            reason = error.message.removeprefix(prefix)
            values = tuple((str(key), _text(value)) for key, value in record[1].items())
            rows.append(Row(str(path), number, refused=reason, fields=values))
            continue
        if isinstance(example, Conversation):
            rows.append(Row(str(path), number, example.messages))
        else:
            rows.append(Row(str(path), number, (Turn(TEXT_ROLE, example.text),)))
    if first is not None and all(row.refused for row in rows):
        raise first
    return layout, rows

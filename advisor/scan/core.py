"""What every check shares: the rows it reads, the settings it runs with, the report it feeds.

Rows come from the same reader the trials use (`runners.datafiles`: JSONL or CSV, errors naming
the file and line), so a file the scan accepts is a file training accepts. A row is named
by its file and its 1-based record number (blank JSONL lines and the CSV header not counted), as
in the loader's own messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from advisor.errors import AdvisorInputError
from runners.datafiles import read_records

FIELDS = ("prompt", "response")


@dataclass(frozen=True)
class Row:
    """One example: where it is and its two texts (None when the field is missing or null)."""

    file: str
    row: int
    prompt: str | None
    response: str | None

    def text(self, name: str) -> str | None:
        return self.prompt if name == "prompt" else self.response

    def joined(self) -> str:
        """Prompt and response as one document (duplicate detection compares whole examples)."""
        return f"{self.prompt or ''}\n{self.response or ''}"


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
    templated: bool
    """Whether sequences are measured through the model's chat template."""

    def lengths(self, texts: Sequence[str]) -> list[int]: ...

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]: ...


@dataclass
class ScanContext:
    """What a check receives besides the rows: the options and the length counter."""

    options: ScanOptions
    counter: TextCounter


@dataclass(frozen=True)
class FileInfo:
    path: str
    rows: int


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


def _text(value: Any) -> str | None:
    """A field as text, as the trainer sees it: structured values (a JSON answer) as JSON."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def read_rows(path: str | Path, options: ScanOptions, *, where: str) -> list[Row]:
    """The rows of one data file, with the prompt and response fields picked out.

    A field missing from every row is a wrong field name (an input error naming the fields the
    file has); missing from some rows only, it is a data problem the `empty` check reports.
    """
    records = read_records(path, where=where)
    if not records:
        raise AdvisorInputError(
            f"data file {str(path)!r} has no rows",
            fix="add examples, or check the path",
            where=where,
        )
    present = sorted({key for record in records for key in record})
    for role, name in (("prompt", options.prompt_field), ("response", options.response_field)):
        if not any(name in record for record in records):
            raise AdvisorInputError(
                f"no row of {str(path)!r} has the {role} field {name!r}; fields present: {present}",
                fix=f"name the {role} field with --{role}-field (data.{role}_field in a study), "
                f"one of {present}",
                where=where,
            )
    return [
        Row(
            file=str(path),
            row=number,
            prompt=_text(record.get(options.prompt_field)),
            response=_text(record.get(options.response_field)),
        )
        for number, record in enumerate(records, start=1)
    ]

"""Reading local data files: the one reader of JSON Lines and CSV in the project.

Trials (`runners.data`), `advisor validate` (`advisor.study.files`) and `advisor scan` all read
data through `read_numbered`, so a file one of them accepts the others accept too, and every
error names the file, the line and the fix. `.jsonl` and `.json` are JSON Lines (one object per
line, blank lines skipped); `.csv` has a header row. A CSV row with fewer cells than the header
reads with None for the missing cells: the validator refuses it, the scan reports it as empty.

Files are parsed here rather than through `datasets.load_dataset` so errors name the line, and
nothing is written to a shared cache by concurrent trials. A JSON row is parsed within bounds
(`runners.jsonsafe`): nesting past 64 levels or a number like 1e400 is an error naming the line.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from runners import jsonsafe
from runners.errors import TrialInputError

SUFFIXES: dict[str, str] = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}
"""File suffix -> layout."""

Record = tuple[int, dict[str, Any]]
"""(1-based line number, record): a CSV row's line is where the row ends."""


class DataFileError(TrialInputError):
    """A data file that cannot be read as records; the message starts with `NAME:LINE:`."""

    def __init__(self, path: Path, line: int, message: str, *, fix: str, where: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path.name}:{line}: {message}", fix=fix, where=where)


def read_numbered(path: str | Path, *, where: str) -> list[Record]:
    """The records of a local JSON Lines or CSV file, each with its line number.

    Raises `TrialInputError` for a missing file or an unknown suffix, `DataFileError` (naming
    the line) for a byte that is not UTF-8, a line that is not a JSON object, or bad CSV quoting.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise TrialInputError(
            f"{path} is a folder, not a data file", fix="name a .jsonl or .csv file", where=where
        )
    if not path.is_file():
        raise TrialInputError(
            f"data file {str(path)!r} does not exist", fix="check the path", where=where
        )
    layout = SUFFIXES.get(path.suffix.lower())
    if layout is None:
        raise TrialInputError(
            f"cannot read {path.name!r}: unknown file type {path.suffix!r}",
            fix=f"use one of {sorted(SUFFIXES)}",
            where=where,
        )
    text = _utf8_text(path, where=where)
    if layout == "csv":
        return _csv_records(path, text, where=where)
    return _jsonl_records(path, text, where=where)


def read_records(path: str | Path, *, where: str) -> list[dict[str, Any]]:
    """The records of `read_numbered`, without their line numbers."""
    return [record for _, record in read_numbered(path, where=where)]


def _utf8_text(path: Path, *, where: str) -> str:
    """The file's text; the first non-UTF-8 byte is named by line and column."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataFileError(
            path,
            line,
            f"not UTF-8 text (byte 0x{data[error.start]:02x} at column {column})",
            fix=f"save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name}`",
            where=where,
        ) from None


def _jsonl_records(path: Path, text: str, *, where: str) -> list[Record]:
    records: list[Record] = []
    # Split on newlines alone: str.splitlines would also break a line at U+2028 inside a string.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = jsonsafe.loads(line)
        except json.JSONDecodeError as error:
            hint = " (a JSON array? write one object per line)" if line.lstrip()[:1] == "[" else ""
            raise DataFileError(
                path,
                number,
                f"not valid JSON: {error.msg}{hint}",
                fix="write one JSON object per line",
                where=where,
            ) from None
        except jsonsafe.UnsafeJson as error:
            raise DataFileError(
                path,
                number,
                f"a JSON row advisor does not read: {error}",
                fix="flatten the row (a prompt and a response are plain strings) and write "
                "numbers within range",
                where=where,
            ) from None
        if not isinstance(record, dict):
            raise DataFileError(
                path,
                number,
                f"a JSON {type(record).__name__}, not an object",
                fix="write one JSON object per line",
                where=where,
            )
        records.append((number, record))
    return records


def _csv_records(path: Path, text: str, *, where: str) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records: list[Record] = []
    try:
        for row in reader:
            records.append((reader.line_num, dict(row)))
    except csv.Error as error:
        raise DataFileError(
            path,
            reader.line_num,
            f"not valid CSV: {error}",
            fix="fix the quoting of that row",
            where=where,
        ) from None
    return records

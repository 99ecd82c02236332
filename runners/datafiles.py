"""Reading local data files: the one reader of JSON Lines and CSV in the project.

Trials (`runners.data`), `advisor validate` (`advisor.study.files`) and `advisor scan` all read
data through `read_numbered`, so a file one of them accepts the others accept too, and every
error names the file, the line and the fix. `.jsonl` and `.json` are JSON Lines (one object per
line, blank lines skipped); `.csv` has a header row. A CSV row with fewer cells than the header
reads with None for the missing cells: the validator refuses it, the scan reports it as empty.

Files are parsed here rather than through `datasets.load_dataset` so errors name the line, and
nothing is written to a shared cache by concurrent trials. A JSON row is parsed within bounds
(`runners.jsonsafe`): nesting past 64 levels or a number like 1e400 is an error naming the line.

Before a file is opened, `file_problem` says why a path is not a regular file it can read (a
folder, a symbolic-link loop or a link to nothing, a fifo that would block the reader, a path
too long for the file system), rather than calling all of them "does not exist".
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import reprlib
import stat
from pathlib import Path
from typing import Any, NamedTuple

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


class FileProblem(NamedTuple):
    """Why a path is not a regular file to read: `kind` (missing, invalid, folder, loop,
    dangling, special, unreadable), a message naming the path, and the fix."""

    kind: str
    message: str
    fix: str


_SPECIAL = {
    stat.S_IFIFO: "fifo (named pipe)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}
_QUOTE = reprlib.Repr()
_QUOTE.maxstring = 200  # a path from a study file may be as long as the file


def file_problem(path: str | Path, noun: str = "data file") -> FileProblem | None:
    """Why `path` cannot be read as a `noun`, or None when it is a readable regular file.

    Never raises: pathlib's `is_file` raises on a symbolic-link loop (RuntimeError) or a name
    too long (OSError) and answers False for a fifo, which `open` would then block on.
    """
    quoted = _QUOTE.repr(str(path))
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return _stat_problem(Path(path), quoted, noun, error)
    except ValueError:  # a NUL byte in the path
        return FileProblem("invalid", f"{noun} {quoted} is not a valid path", "fix the path")
    if stat.S_ISDIR(mode):
        return FileProblem("folder", f"{quoted} is a folder, not a {noun}", "name a file in it")
    if not stat.S_ISREG(mode):
        kind = _SPECIAL.get(stat.S_IFMT(mode), "special file")
        return FileProblem(
            "special",
            f"{noun} {quoted} is a {kind}, not a regular file",
            "name a regular file (a pipe or device may block or never end); save its content "
            "to a file first",
        )
    if not os.access(path, os.R_OK):
        return FileProblem(
            "unreadable", f"{noun} {quoted} cannot be read: permission denied", "make it readable"
        )
    return None


def _stat_problem(path: Path, quoted: str, noun: str, error: OSError) -> FileProblem:
    if error.errno == errno.ELOOP:
        return FileProblem(
            "loop",
            f"{noun} {quoted} is a symbolic link loop (it leads back to itself)",
            "point the link at a file, or name the file itself",
        )
    if error.errno == errno.ENAMETOOLONG:
        return FileProblem(
            "invalid", f"{noun} path {quoted} is too long for the file system", "fix the path"
        )
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        if os.path.islink(path):
            target = _QUOTE.repr(os.readlink(path))
            return FileProblem(
                "dangling",
                f"{noun} {quoted} is a symbolic link to {target}, which does not exist",
                "create the link's target, or point the link at an existing file",
            )
        return FileProblem("missing", f"{noun} {quoted} does not exist", "check the path")
    return FileProblem(
        "unreadable", f"{noun} {quoted} cannot be read: {error.strerror}", "make it readable"
    )


def read_numbered(path: str | Path, *, where: str) -> list[Record]:
    """The records of a local JSON Lines or CSV file, each with its line number.

    Raises `TrialInputError` for a path that is no readable regular file (`file_problem`) or an
    unknown suffix, `DataFileError` (naming the line) for a byte that is not UTF-8, a line that
    is not a JSON object, or bad CSV quoting.
    """
    path = Path(path).expanduser()
    problem = file_problem(path)
    if problem is not None:
        fix = "name a .jsonl or .csv file" if problem.kind == "folder" else problem.fix
        raise TrialInputError(problem.message, fix=fix, where=where)
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
    try:
        data = path.read_bytes()
    except OSError as error:  # it was readable a moment ago: removed, or an I/O error
        raise TrialInputError(
            f"cannot read {path}: {error.strerror}", fix="make the file readable", where=where
        ) from None
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

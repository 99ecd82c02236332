"""Reading local data files: the one reader of data files in the project.

Trials (`runners.data`), `advisor validate` (`advisor.study.files`) and `advisor scan` all read
data through `read_numbered`, so a file one of them accepts the others accept too, and every
error names the file, the line (or row) and the fix. Containers, by suffix:

- `.jsonl`: JSON Lines, one object per line, blank lines skipped;
- `.json`: a JSON array of objects when its first non-space character is `[`, else JSON Lines
  (many `.json` data files in the wild are JSON Lines);
- `.csv`: a header row; a row with fewer cells than the header reads with None for the missing
  cells: the validator refuses it, the scan reports it as empty;
- `.parquet`: read with pyarrow (installed with `datasets`);
- a folder written by `datasets.Dataset.save_to_disk` (it holds `dataset_info.json` and
  `state.json`), read with `datasets.load_from_disk`, which memory-maps its Arrow files and
  writes no cache.

Rows of Parquet files and saved datasets have no line: they are numbered 1, 2, ... and named
`train.parquet row 3` (`located`). Their nested columns (a `messages` list of structs) come back
as plain lists and dicts, as JSON rows do. A 0-byte file is an error naming it: it is most often
a write that never finished, and Parquet cannot read it at all.

Text files are parsed here rather than through `datasets.load_dataset` so errors name the line,
and nothing is written to a shared cache by concurrent trials. JSON text is parsed within bounds
(`runners.jsonsafe`): nesting past 64 levels or a number like 1e400 is an error naming the line.
Which fields a row holds (chat, Alpaca, raw text, ...) is `runners.layouts`' business, not this
module's.

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

SUFFIXES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
"""File suffix -> container (`.json`: a JSON array or JSON Lines, told apart by the text)."""

SAVED_DATASET_FILES = ("dataset_info.json", "state.json")
"""Either file marks a folder written by `datasets.Dataset.save_to_disk`."""

Record = tuple[int, dict[str, Any]]
"""(1-based number, record): the line in a text file (where a CSV row ends, where a JSON array's
item starts), the row in a Parquet file or a saved dataset."""


def located(path: Path, number: int) -> str:
    """How an error names record `number` of `path`: `train.jsonl:12` where records have lines,
    `train.parquet row 12` where they do not (Parquet, a saved dataset's folder)."""
    columnar = path.suffix.lower() == ".parquet" or path.is_dir()
    return f"{path.name} row {number}" if columnar else f"{path.name}:{number}"


class DataFileError(TrialInputError):
    """A data file that cannot be read as records; the message starts with `located`:
    `NAME:LINE: ...`, or `NAME row N: ...` for Parquet and saved datasets."""

    def __init__(self, path: Path, line: int, message: str, *, fix: str, where: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{located(path, line)}: {message}", fix=fix, where=where)


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
    """The records of a local data file (see the module's containers), each with its number.

    Raises `TrialInputError` for a path that is no readable regular file (`file_problem`) nor a
    saved dataset's folder, an unknown suffix, a 0-byte file or a file Parquet cannot read, and
    `DataFileError` (naming the line) for a byte that is not UTF-8, a line or array item that is
    not a JSON object, or bad CSV quoting.
    """
    path = Path(path).expanduser()
    problem = file_problem(path)
    if problem is not None and problem.kind == "folder":
        return _saved_dataset_records(path, where=where)
    if problem is not None:
        raise TrialInputError(problem.message, fix=problem.fix, where=where)
    container = SUFFIXES.get(path.suffix.lower())
    if container is None:
        raise TrialInputError(
            f"cannot read {path.name!r}: unknown file type {path.suffix!r}",
            fix=f"use one of {sorted(SUFFIXES)}, or a folder written by Dataset.save_to_disk",
            where=where,
        )
    if path.stat().st_size == 0:
        raise TrialInputError(
            f"data file {path.name} holds no records: it is 0 bytes",
            fix="add examples, or write the file again (a 0-byte file is often an unfinished copy)",
            where=where,
        )
    if container == "parquet":
        return _parquet_records(path, where=where)
    text = _utf8_text(path, where=where)
    if container == "csv":
        return _csv_records(path, text, where=where)
    if container == "json" and text.lstrip()[:1] == "[":
        return _json_array_records(path, text, where=where)
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


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _json_array_records(path: Path, text: str, *, where: str) -> list[Record]:
    """The objects of a JSON array file, each numbered by the line its item starts on."""
    try:
        items = jsonsafe.array_items(text)
    except json.JSONDecodeError as error:
        raise DataFileError(
            path,
            error.lineno,
            f"not a valid JSON array: {error.msg} (column {error.colno})",
            fix="write one JSON array of objects, [{...}, {...}], or one object per line in "
            "a .jsonl file",
            where=where,
        ) from None
    except jsonsafe.UnsafeJson as error:
        raise DataFileError(
            path,
            _line_of(text, error.pos or 0),
            f"a JSON row advisor does not read: {error}",
            fix="flatten the row and write numbers within range",
            where=where,
        ) from None
    records: list[Record] = []
    for offset, item in items:
        if not isinstance(item, dict):
            raise DataFileError(
                path,
                _line_of(text, offset),
                f"an array item that is a JSON {type(item).__name__}, not an object",
                fix="make every item of the array an object with the row's fields",
                where=where,
            )
        records.append((_line_of(text, offset), item))
    return records


def _parquet_records(path: Path, *, where: str) -> list[Record]:
    """The rows of a Parquet file as plain Python (nested columns as lists and dicts)."""
    import pyarrow
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(path)
    except (pyarrow.ArrowException, OSError) as error:
        raise TrialInputError(
            f"{path.name} is not a Parquet file advisor can read: {error}",
            fix="write it with pyarrow or pandas' to_parquet, or save the rows as .jsonl",
            where=where,
        ) from None
    return list(enumerate(table.to_pylist(), start=1))


def _saved_dataset_records(path: Path, *, where: str) -> list[Record]:
    """The rows of a folder written by `Dataset.save_to_disk`, as plain Python.

    Any other folder is named for what it is: a `DatasetDict` (one folder per split) or a folder
    that is no saved dataset at all, each with its fix.
    """
    quoted = _QUOTE.repr(str(path))
    if (path / "dataset_dict.json").is_file():
        splits = sorted(child.name for child in path.iterdir() if child.is_dir())
        raise TrialInputError(
            f"{quoted} is a saved DatasetDict (splits: {', '.join(splits) or 'none'}), not one "
            "data set",
            fix=f"name one split's folder, e.g. {path / (splits[0] if splits else 'train')}",
            where=where,
        )
    if not any((path / name).is_file() for name in SAVED_DATASET_FILES):
        raise TrialInputError(
            f"{quoted} is a folder, not a saved dataset (it holds no "
            f"{' or '.join(SAVED_DATASET_FILES)})",
            fix="name a data file (.jsonl, .json, .csv, .parquet) inside it, or a folder "
            "written by datasets.Dataset.save_to_disk",
            where=where,
        )
    from datasets import load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (OSError, ValueError, KeyError) as error:
        raise TrialInputError(
            f"{quoted} looks like a saved dataset but cannot be loaded: {error}",
            fix="write it again with datasets.Dataset.save_to_disk",
            where=where,
        ) from None
    return list(enumerate(dataset.to_list(), start=1))

"""What a data path is when it is not a readable regular file (`runners.datafiles.file_problem`):
named for what it is, never a traceback, and a fifo is never opened (the read would block)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runners.datafiles import file_problem, read_numbered
from runners.errors import TrialInputError


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "f.jsonl")
    return folder / "f.jsonl"


def _loop(folder: Path) -> Path:
    (folder / "l.jsonl").symlink_to("l.jsonl")
    return folder / "l.jsonl"


def _two_link_loop(folder: Path) -> Path:
    (folder / "a.jsonl").symlink_to("b.jsonl")
    (folder / "b.jsonl").symlink_to("a.jsonl")
    return folder / "a.jsonl"


def _dangling(folder: Path) -> Path:
    (folder / "d.jsonl").symlink_to("gone.jsonl")
    return folder / "d.jsonl"


def _folder(folder: Path) -> Path:
    (folder / "x.jsonl").mkdir()
    return folder / "x.jsonl"


def _too_long(folder: Path) -> Path:
    return folder / ("y" * 300 + ".jsonl")


def _under_a_file(folder: Path) -> Path:
    (folder / "file").write_text("")
    return folder / "file" / "x.jsonl"


CASES = [
    (_fifo, "special", "is a fifo (named pipe), not a regular file"),
    (_loop, "loop", "is a symbolic link loop"),
    (_two_link_loop, "loop", "is a symbolic link loop"),
    (_dangling, "dangling", "is a symbolic link to 'gone.jsonl', which does not exist"),
    (_folder, "folder", "is a folder, not a data file"),
    (_too_long, "invalid", "is too long for the file system"),
    (_under_a_file, "missing", "does not exist"),
    (lambda folder: folder / "none.jsonl", "missing", "does not exist"),
]


@pytest.mark.parametrize(
    ("make", "kind", "says"), CASES, ids=[c[0].__name__ for c in CASES[:-1]] + ["missing"]
)
def test_each_kind_of_unreadable_path_is_named(tmp_path: Path, make, kind: str, says: str) -> None:
    path = make(tmp_path)
    problem = file_problem(path)
    assert problem is not None and problem.kind == kind and says in problem.message
    assert problem.fix
    with pytest.raises(TrialInputError) as caught:  # the reader refuses it the same way
        read_numbered(path, where="data")
    # The reader opens a folder written by Dataset.save_to_disk; any other folder is named so.
    reads = "is a folder, not a saved dataset" if kind == "folder" else says
    assert reads in caught.value.message and caught.value.where == "data"
    assert len(str(caught.value)) < 700


def test_a_readable_regular_file_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text('{"prompt": "p", "response": "r"}\n')
    assert file_problem(path) is None
    (tmp_path / "link.jsonl").symlink_to(path)
    assert file_problem(tmp_path / "link.jsonl") is None  # a link to a file is that file


def test_the_noun_names_what_was_expected(tmp_path: Path) -> None:
    problem = file_problem(tmp_path / "s.yaml", noun="study file")
    assert problem is not None and problem.message.startswith("study file '")

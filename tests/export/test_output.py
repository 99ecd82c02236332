"""Where an export may go (`advisor.export.output`): `--force` replaces only what advisor wrote.

No store and no model here: the rules are about folders, so each test builds the folders it
needs in tmp_path (the working folder of the test) and asks `check_out_dir` or writes through
`building`, the one way an export or a bundle reaches the disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.errors import AdvisorInputError
from advisor.export.output import MARKER, building, check_out_dir


def _export(folder: Path, *files: str) -> Path:
    """A directory as `advisor export` leaves it: the marker and `files` (plus README.md)."""
    with building(folder, kind="adapter", study="s") as build:
        for name in ("README.md", *files):
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            (build / name).write_text(name)
    return folder


def _files(root: Path, name: str, *files: str) -> Path:
    folder = root / name
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_text("keep me")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _working_folder(root: Path) -> Path:
    return root


def _ancestor(root: Path) -> Path:
    return root.parent


def _symlink(root: Path) -> Path:
    target = _export(root / "real")
    (root / "link").symlink_to(target)
    return root / "link"


def _marked_with_study_deep(root: Path) -> Path:
    return _export(root / "old", "notes/extra.yaml")


REFUSED: list[tuple[str, Callable[[Path], Path], str]] = [
    ("working-folder", _working_folder, "is the working folder"),
    ("ancestor", _ancestor, "holds the working folder"),
    ("stores", lambda r: _files(r, "p", "mlruns/optuna.db"), "holds studies' stores (mlruns/)"),
    ("database", lambda r: _files(r, "p", "optuna.db"), "holds a database (optuna.db)"),
    ("study-file", lambda r: _files(r, "p", "demo.yaml"), "holds a study file (demo.yaml)"),
    ("study-file-yml", lambda r: _files(r, "p", "demo.YML"), "holds a study file (demo.YML)"),
    ("git-repo", lambda r: _files(r, "repo", ".git/HEAD"), "holds a git repository (.git)"),
    ("git-dir", lambda r: _files(r, "repo", ".git/HEAD") / ".git", ".git) or inside it"),
    ("inside-git", lambda r: _files(r, "repo", ".git/HEAD") / ".git" / "x", "inside it"),
    ("unmarked", lambda r: _files(r, "mine", "notes.txt"), f"it has no {MARKER} file"),
    ("marked-but-holds-study", _marked_with_study_deep, "holds a study file (notes/extra.yaml)"),
    ("symlink", _symlink, "is a symbolic link"),
    ("file", lambda r: _files(r, "p", "f.txt") / "f.txt", "exists and is not a directory"),
    ("under-a-file", lambda r: _files(r, "p", "f.txt") / "f.txt" / "out", "is not a directory"),
]


@pytest.mark.parametrize(("make", "why"), [pytest.param(m, w, id=i) for i, m, w in REFUSED])
@pytest.mark.parametrize("force", [True, False], ids=["force", "no-force"])
def test_a_destination_whose_replacement_would_lose_something_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, why: str, force: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    out = make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(AdvisorInputError, match="OUT_DIR") as refused:
        check_out_dir(out, force)
    message = str(refused.value)
    assert str(out) in message and why in message, message
    assert "fix:" in message
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_relative_and_dotted_paths_are_checked_as_the_folder_they_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for spelling in (".", "./", "../sub", "x/..", str(tmp_path / "sub" / "." / "x" / "..")):
        with pytest.raises(AdvisorInputError, match="is the working folder"):
            check_out_dir(Path(spelling), True)
    with pytest.raises(AdvisorInputError, match="holds the working folder"):
        check_out_dir(Path(".."), True)


def test_a_marked_export_is_replaced_by_force_and_kept_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = _export(tmp_path / "out" / "adapter", "adapter_config.json")
    (out / "added-by-hand.txt").write_text("an export may be looked at and annotated")
    with pytest.raises(AdvisorInputError, match="holds an earlier export") as refused:
        check_out_dir(out, False)
    assert "pass --force to replace it" in str(refused.value)
    check_out_dir(out, True)
    _export(out, "adapter_model.safetensors")
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "README.md",
        "adapter_model.safetensors",
    ]
    marker = json.loads((out / MARKER).read_text())
    assert marker["format"] == "advisor-export/1" and marker["study"] == "s"
    assert [p.name for p in out.parent.iterdir()] == ["adapter"]  # no build or old sibling


def test_a_new_or_empty_directory_needs_no_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_out_dir(tmp_path / "new" / "deep", False)
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", False)
    _export(tmp_path / "empty")
    assert (tmp_path / "empty" / MARKER).is_file()


def test_a_failed_export_leaves_no_folder_and_keeps_the_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    deep = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError, match="disk full"), building(deep, kind="a", study="s") as b:
        (b / "half.bin").write_bytes(b"\0" * 10)
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []  # neither the build folder nor a/ and a/b/

    old = _export(tmp_path / "old", "adapter_model.safetensors")
    with pytest.raises(KeyboardInterrupt), building(old, kind="adapter", study="s"):
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert (old / "adapter_model.safetensors").read_text() == "adapter_model.safetensors"


def test_an_export_directory_gets_the_usual_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    umask = os.umask(0o022)
    try:
        out = _export(tmp_path / "out")
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: others may read it

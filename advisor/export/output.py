"""Where an export or a bundle is written: checked before, built beside, renamed into place.

The output directory is built in a temporary sibling and renamed into place only when complete,
so a failure never leaves a half-written export behind (nor the parent folders made for it),
and an old directory is replaced only once the new one is ready.

`--force` replaces a directory, which deletes what it held, so it is kept to directories that
advisor wrote itself: every export and bundle carries a marker file (`MARKER`), and `--force`
onto a directory without one is refused. So is any destination whose replacement would lose
something else, marker or not: the working folder or a folder that holds it (replacing it
renames the folder the command runs in), a folder holding studies' stores (`mlruns/`, `*.db`)
or study files (`*.yaml`), and anything named `.git` or inside one (a git repository's
metadata is never a place for an export, with or without `--force`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError

MARKER = ".advisor-export"
"""The file in every directory `advisor export` writes (a trial's export or a bundle): the
proof that `--force` may replace the directory. Its content says what wrote it."""
MARKER_FORMAT = "advisor-export/1"

_STORE_DIRS = ("mlruns",)
_PROTECTED_SUFFIXES = {".db": "a database", ".yaml": "a study file", ".yml": "a study file"}


def out_path(out_dir: str | Path) -> Path:
    """The destination as an absolute path, `..` and `.` folded (`Path.absolute` keeps them,
    and `x/..` would otherwise name the folder `..`). Symbolic links are kept, not followed:
    the checks see the path the user named."""
    return Path(os.path.abspath(Path(out_dir).expanduser()))


def check_out_dir(
    out: Path, force: bool, *, cwd: Path | None = None, where: str = "OUT_DIR"
) -> None:
    """Refuse a destination that cannot be written, or could only be by losing something.

    Without `force` the destination must not exist or be an empty directory; with `force` it
    may be a directory advisor wrote (it holds `MARKER`), which is then replaced. Either way
    it must not be or hold the working folder, and must not be named `.git` or lie inside one.
    Every refusal names the path and why (an `AdvisorInputError`, exit code 2).
    """

    def refuse(why: str, fix: str = "give a new directory, e.g. out/adapter") -> None:
        raise AdvisorInputError(why, where=where, fix=fix)

    out = out_path(out)
    real = out.resolve()
    here = (cwd or Path.cwd()).resolve()
    if ".git" in out.parts or ".git" in real.parts:
        refuse(
            f"{out} is a git repository's metadata (.git) or inside it",
            "write the export outside .git, e.g. next to the repository",
        )
    if out.is_symlink():
        refuse(
            f"{out} is a symbolic link (to {real}): replacing it would swap the link, not its "
            "target",
            f"give the directory itself ({real}) or a new path",
        )
    if out.exists() and not out.is_dir():
        refuse(f"{out} exists and is not a directory", "choose another path")
    if real == here:
        refuse(f"{out} is the working folder: writing there would replace it")
    if real in here.parents:
        refuse(f"{out} holds the working folder ({here}): writing there would replace it")
    above = next((folder for folder in out.parents if folder.exists()), out)
    if not above.is_dir():
        refuse(f"cannot write {out}: {above} is not a directory", "choose another path")
    if not os.access(above, os.W_OK | os.X_OK):  # the export is built beside `out`
        refuse(f"cannot write {out}: {above} is not writable", "choose a folder you can write")
    if not out.is_dir() or not any(out.iterdir()):
        return
    why = _protected(out, deep=False)
    if why is None and not (out / MARKER).is_file():
        why = f"was not written by `advisor export` (it has no {MARKER} file)"
    why = why or _protected(out, deep=True)
    if why is not None:
        head = f"--force will not replace {out}" if force else f"{out} exists and is not empty"
        refuse(
            f"{head}: it {why}",
            f"choose a new or empty directory; --force replaces only a directory that "
            f"`advisor export` wrote (it holds {MARKER})",
        )
    if not force:
        refuse(
            f"{out} holds an earlier export",
            "choose a new directory, or pass --force to replace it",
        )


def _protected(folder: Path, *, deep: bool) -> str | None:
    """What in `folder` (its entries, or with `deep` everything below) must not be deleted."""
    if deep:
        walk = ((Path(top), dirs + files) for top, dirs, files in os.walk(folder))
    else:
        walk = iter([(folder, [entry.name for entry in folder.iterdir()])])
    for top, names in walk:
        for name in sorted(names):
            shown = (top / name).relative_to(folder)
            if name == ".git":
                return f"holds a git repository ({shown})"
            if name in _STORE_DIRS and (top / name).is_dir():
                return f"holds studies' stores ({shown}/)"
            kind = _PROTECTED_SUFFIXES.get(Path(name).suffix.lower())
            if kind is not None:
                return f"holds {kind} ({shown})"
    return None


@contextmanager
def building(out: Path, *, kind: str, study: str) -> Iterator[Path]:
    """A temporary sibling of `out` to write the export in, holding the marker already; when
    the block ends it is renamed into place. On any failure (an interrupt too) the sibling is
    deleted, with the parent folders that were made for it: nothing is left behind."""
    out = out_path(out)
    made = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    build = out.with_name(f".{out.name}-{secrets.token_hex(4)}")
    build.mkdir()  # not mkdtemp: its mode 0700 would become the export's
    try:
        write_marker(build, kind=kind, study=study)
        yield build
        replace_dir(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break  # no longer empty: something else wrote there meanwhile
        raise


def write_marker(folder: Path, *, kind: str, study: str) -> None:
    """The marker file that lets a later `--force` replace `folder`, saying what wrote it."""
    payload: dict[str, Any] = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "study": study,
        "note": "written by `advisor export`; `advisor export --force` replaces only "
        f"directories holding a {MARKER} file",
    }
    (folder / MARKER).write_text(json.dumps(payload, indent=2) + "\n")


def replace_dir(build: Path, out: Path) -> None:
    """Move the finished export into place; an old `out` is removed only once `build` is ready."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{build.name}")
        out.rename(old)
    try:
        build.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)  # the earlier export stays where it was
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def copy_adapter(adapter: Path, base_dir: Path, dest: Path) -> None:
    """Copy a peft adapter directory to `dest`, its config naming the local `base_dir` (the
    runner's own path to the base may be a temporary or another machine's)."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in adapter.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    config_path = dest / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    adapter_config["base_model_name_or_path"] = str(base_dir)
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")

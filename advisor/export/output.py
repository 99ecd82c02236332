"""Where an export or a bundle is written: checked before, built beside, renamed into place.

The output directory is built in a temporary sibling and renamed into place only when complete,
so a failure never leaves a half-written export behind, and an old directory is replaced only
once the new one is ready.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from advisor.errors import AdvisorInputError


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse a destination that is a file, or a non-empty directory unless `force`."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AdvisorInputError(
            f"{out_dir} exists and is not a directory", where="OUT_DIR", fix="choose another path"
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AdvisorInputError(
            f"{out_dir} exists and is not empty",
            where="OUT_DIR",
            fix="choose a new directory, or pass --force to replace it",
        )


def replace_dir(build: Path, out: Path) -> None:
    """Move the finished export into place; an old `out` is removed only once `build` is ready."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{build.name}")
        out.rename(old)
    build.rename(out)
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

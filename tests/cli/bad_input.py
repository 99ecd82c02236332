"""The bad-input table's machinery: one assertion pattern for every refused command.

Every case goes through the real CLI (`advisor ...` via typer's CliRunner) in a fresh project
folder and must: exit with code 2; print a message naming the field or file (with its YAML line
for study-file cases) and a fix; print no traceback; and leave the project as it was - no
`mlruns/`, no Optuna study or trial, no MLflow run, no stray file, no trial work directory,
nothing in the model cache. Passwords in store URLs never appear in the output. No case trains:
each must fail first. The tables are `tests/cli/test_bad_input*.py`; the `project` fixture is in
`tests/cli/conftest.py`.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from advisor.cli import app

STUDY = """\
name: s
seed: 5
model: {source: '{model}'}
data:
  train: train.jsonl
  eval: eval.jsonl
metric: json_match
method: lora
search:
  r: [2, 4]
  alpha_ratio: 2
  target_modules: [attention_qv, all_linear]
  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
train: {max_steps: 4, batch_size: 2, max_seq_length: 64, eval_steps: 2}
eval: {max_new_tokens: 6, batch_size: 4, samples_to_log: 2}
optuna: {sampler: random, pruner: none, n_trials: 2}
"""
"""The valid base study (its line numbers are the ones the cases expect); cases edit lines."""

SECRET = "s3cr3t-pw"
"""A password in store URLs, and the content of the file outside the data root."""


@dataclass(frozen=True)
class Bad:
    """One malformed input and what the refusal must say."""

    expect: tuple[str, ...]
    """Substrings of the output (whitespace collapsed): the field or file, its line, the fix."""
    edit: dict[str, str] = field(default_factory=dict)
    """Replacements in the base study text (`{model}` and `{outside}` are filled in)."""
    args: tuple[str, ...] = ("tune", "s.yaml")
    prepare: Callable[[Path], None] | None = None
    """Writes extra files into the project folder before the snapshot is taken."""


# --- files the cases prepare ------------------------------------------------------------------


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def prepare(project: Path) -> None:
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")

    return prepare


def symlink_outside(project: Path) -> None:
    (project / "link.jsonl").symlink_to(project.parent / "outside" / "secret.jsonl")


def other_space_study(project: Path) -> None:
    """A study named like the file's, in the default store, over another space (r: 16/32)."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    (project / "mlruns").mkdir()
    storage = optuna.storages.RDBStorage(f"sqlite:///{project / 'mlruns' / 'optuna.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.add_trial(
        optuna.trial.create_trial(
            params={"r": 16},
            distributions={"r": CategoricalDistribution([16, 32])},
            value=0.5,
        )
    )
    storage.engine.dispose()  # close the SQLite file before the snapshot


GOOD_RECORD = '{"prompt": "p", "response": "r"}\n'
CORRUPT_GGUF = b"GGUF" + struct.pack("<IQQ", 3, 1, 2**62) + b"\x00" * 64
"""A GGUF magic and version, then a key count no file could hold."""


def bad(
    *expect: str,
    id: str,
    edit: dict[str, str] | None = None,
    args: tuple[str, ...] = ("tune", "s.yaml"),
    prepare: Callable[[Path], None] | None = None,
    waits_for: str | None = None,
) -> Any:
    """One row of the table; `waits_for` names the fix outside this suite a row still needs
    (a strict xfail: the row fails loudly once that fix lands, so the mark gets removed)."""
    marks = [pytest.mark.xfail(reason=waits_for, strict=True)] if waits_for else []
    return pytest.param(Bad(expect, edit or {}, args, prepare), id=id, marks=marks)


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with a digest of its content (folders and links by kind)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            found[key] = "dir"
        elif not path.is_file():  # a fifo or socket: reading it would block
            found[key] = f"special:{path.stat().st_mode:o}"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def plain(output: str) -> str:
    """Output with rich's box characters dropped and whitespace collapsed (wrapping varies)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def check_refused(case: Bad, project: Path, tiny_model: Path) -> None:
    """Run `case` in `project` and assert the refusal: exit 2, the expected words, a fix, no
    traceback, no secret, and the project folder (and its neighbours) byte for byte unchanged."""
    text = STUDY
    for old, new in case.edit.items():
        assert old in text, f"edit target {old!r} is not in the base study"
        text = text.replace(old, new)
    outside = project.parent / "outside"
    study = text.replace("{model}", str(tiny_model)).replace("{outside}", str(outside))
    (project / "s.yaml").write_text(study, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(project)
    before = snapshot(project.parent)

    result = CliRunner().invoke(app, list(case.args))

    output = plain(result.output)
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output, result.output
    unexpected = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not unexpected, repr(result.exception)  # an exception CliRunner caught is a crash
    for needle in case.expect:
        assert needle in output, f"{needle!r} missing from: {output}"
    assert "fix" in output or "--help" in output, output
    assert SECRET not in result.output
    assert snapshot(project.parent) == before, "the refused command wrote something"

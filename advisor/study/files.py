"""Checks of the files a study names: data read whole, the model source, GGUF headers, roots.

`load_study` runs these on the raw YAML mapping, so they are reported together with schema errors,
each at its YAML line, and before anything is written: a trial (after Optuna and MLflow recorded
the study) must never be the first to find an empty data file, a conversation without an
assistant turn, a non-UTF-8 byte or a GGUF file that is not one. The data files are read by the
reader the trials use, `runners.datafiles` (JSON Lines, JSON arrays, CSV, Parquet, a folder
written by `datasets.Dataset.save_to_disk`), and their rows by the layout they are in
(`runners.layouts`, detected or `data.format`); the rules across the files' layouts and the
metric are `advisor.study.layouts`'. A chat template named by path must exist, as data files must.

Path confinement: data files must resolve (symlinks followed) inside `data.root`, the study file's
folder unless declared, so a shared study file cannot make a trial read `../../etc/passwd` and log
it as "data". `model.gguf_file` names a file inside `model.source`: no absolute path, no `..`; and
`tracking.experiment`, which names the artifacts' folder under the artifact root, has no `..`.
A multi-task study's files are checked per task (`tasks[i].data`), by the same rules.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from advisor.decide.gguf import read_gguf_header
from runners.datafiles import SUFFIXES, Record, file_problem, read_numbered
from runners.errors import TrialInputError
from runners.layouts import LAYOUTS, Layout, PairFields, to_examples
from runners.models import PRESETS as MODEL_PRESETS
from runners.models import read_model_config
from runners.templates import CHOICES as TEMPLATE_CHOICES

from .layouts import DEFAULT_METRIC, layout_rules
from .space import shown

Problem = tuple[tuple[Any, ...], str, str]
"""(location in the YAML, message, fix)."""

_ROLES = {"prompt_field": "prompt", "response_field": "response"}
_EXAMPLE_LIMITS = {"train": "max_train_examples", "eval": "max_eval_examples"}


def resolve_against(value: str, base_dir: Path) -> Path:
    """`value` as a path, relative ones taken from `base_dir` (the study file's folder)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def escapes_root(path: str | Path, root: str | Path) -> bool:
    """Whether `path` resolves (symlinks followed, `..` collapsed) to a place outside `root`.

    A path that cannot be resolved (a symbolic-link loop) cannot be opened either: it does not
    escape, and the file check (`runners.datafiles.file_problem`) says what it is.
    """
    try:
        return not Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # RuntimeError: pathlib's "Symlink loop" before 3.13
        return False


def gguf_name_problem(value: str) -> str | None:
    """Why `model.gguf_file` cannot be a file name inside model.source, or None when it can."""
    pure = PurePath(value)
    if pure.is_absolute() or value.startswith("~"):
        return f"gguf_file {shown(value)} is an absolute path"
    if ".." in pure.parts:
        return f"gguf_file {shown(value)} leaves model.source through '..'"
    return None


def file_problems(raw: dict[str, Any], base_dir: Path) -> list[Problem]:
    """Problems of the data and model files named in the raw study mapping."""
    problems: list[Problem] = []
    metric = raw.get("metric", DEFAULT_METRIC)
    data = raw.get("data")
    if isinstance(data, dict):
        problems += _data_problems(data, base_dir, metric)
    tasks = raw.get("tasks")
    for index, task in enumerate(tasks if isinstance(tasks, list) else []):
        data = task.get("data") if isinstance(task, dict) else None
        if isinstance(data, dict):  # each task's files and metric, at that task's lines
            own = task.get("metric") or metric
            problems += [
                (("tasks", index, *loc), *rest)
                for loc, *rest in _data_problems(data, base_dir, own)
            ]
    model = raw.get("model")
    if isinstance(model, dict):
        problems += _model_problems(model, base_dir)
        problems += _template_problems(model.get("chat_template"), base_dir, _roots(raw, base_dir))
    tracking = raw.get("tracking")
    experiment = tracking.get("experiment") if isinstance(tracking, dict) else None
    if isinstance(experiment, str) and ".." in PurePath(experiment).parts:
        # The experiment's artifacts go to <artifact_root>/<experiment>: '..' would leave the root.
        problems.append(
            (
                ("tracking", "experiment"),
                f"experiment {shown(experiment)} contains '..', which would put its artifacts "
                "outside tracking.artifact_root",
                "name the experiment without '..' (letters, digits, '-', '_', '/')",
            )
        )
    return problems


# --- data ------------------------------------------------------------------------------------


def _data_problems(data: dict[str, Any], base_dir: Path, metric: object) -> list[Problem]:
    """The problems of the train, eval and replay files, then of the rules across their layouts
    and `metric` (`advisor.study.layouts`), the metric's at `("metric",)`."""
    root_value = data.get("root")
    root = resolve_against(root_value, base_dir) if isinstance(root_value, str) else base_dir
    fmt = data.get("format")
    format_ok = fmt is None or fmt in LAYOUTS  # an unknown one is the schema's to report
    files = {
        key: _File(("data", key), data.get(key), _fields(data), fmt, data.get(_EXAMPLE_LIMITS[key]))
        for key in ("train", "eval")
    }
    replay = data.get("replay")
    if isinstance(replay, dict):  # general instructions in their own layout: always detected
        files["replay"] = _File(("data", "replay", "path"), replay.get("path"), _fields(replay))
    problems: list[Problem] = []
    layouts: dict[str, Layout] = {}
    for key, file in files.items():
        if not isinstance(file.value, str) or not format_ok:
            continue
        path = resolve_against(file.value, base_dir)
        if not os.path.isdir(root) or escapes_root(path, root):
            continue  # DataSpec reports it; a file outside the root is never opened
        limit = file.limit if type(file.limit) is int else None
        found = _data_file_problem(path, base_dir, file.fields, file.format, limit)
        if isinstance(found, tuple):
            problems.append((file.loc, *found))
        elif found is not None:
            layouts[key] = found
    for key, message, fix in layout_rules(layouts, metric=metric, packing=data.get("packing")):
        loc = files[key].loc if key in files else ("metric",) if key == "metric" else ("data", key)
        problems.append((loc, message, fix))
    return problems


class _File(NamedTuple):
    """One data file as the raw study names it."""

    loc: tuple[Any, ...]
    value: Any
    fields: PairFields
    format: str | None = None
    limit: Any = None


def _fields(section: dict[str, Any]) -> PairFields:
    """The prompt_response layout's field names as the section sets them (defaults otherwise;
    a non-string is the schema's to report)."""
    names = {
        role: section.get(key, role)
        for key, role in _ROLES.items()
        if isinstance(section.get(key, role), str)
    }
    return PairFields(**names)


def _data_file_problem(
    path: Path, base_dir: Path, fields: PairFields, format: str | None, limit: int | None
) -> tuple[str, str] | Layout | None:
    """The first problem of one data file as (message, fix), or its layout when it is usable
    (None when the suffix is wrong, which DataSpec reports).

    The file is read whole by the reader the trials use (`runners.datafiles`), and its rows
    converted by the layout they are in (`runners.layouts`), so any row a trial would refuse is
    refused here, by file and row."""
    problem = file_problem(path)
    if problem is not None and problem.kind != "folder":  # a folder may be a saved dataset
        fixes = {"missing": f"create it or fix the path (relative paths start at {base_dir})"}
        return problem.message, fixes.get(problem.kind, problem.fix)
    if problem is None and path.suffix.lower() not in SUFFIXES:
        return None  # DataSpec names the accepted suffixes
    try:
        records = read_numbered(path, where="data")
        if path.suffix.lower() == ".csv":
            short = _short_csv_row(records)
            if short is not None:
                return f"{path.name}:{short[0]}: the row has no cell for {short[1]}", (
                    "give every row as many cells as the header has columns"
                )
        if not records:
            return (
                f"data file {path.name} holds no records",
                "add examples: one JSON object per line (.jsonl), or rows under a header (.csv)",
            )
        layout, _ = to_examples(
            records[:limit] if limit else records, path, format=format, fields=fields, where="data"
        )
    except TrialInputError as error:  # DataFileError and LayoutError name the line or row
        return error.message, error.fix or ""
    except OSError as error:
        return f"cannot read {path}: {error.strerror}", "make the file readable"
    return layout


def _short_csv_row(records: list[Record]) -> tuple[int, list[str]] | None:
    """(line, missing columns) of the first CSV row with fewer cells than the header."""
    for line, record in records:
        short = [key for key, value in record.items() if value is None]
        if short:
            return line, short
    return None


# --- model -----------------------------------------------------------------------------------


def _model_problems(model: dict[str, Any], base_dir: Path) -> list[Problem]:
    source, gguf_file = model.get("source"), model.get("gguf_file")
    if isinstance(gguf_file, str):
        reason = gguf_name_problem(gguf_file)
        if reason is not None:
            return [
                (
                    ("model", "gguf_file"),
                    reason,
                    "give the file's name inside model.source, e.g. model.Q4_K_M.gguf",
                )
            ]
    if not isinstance(source, str) or source in tuple(MODEL_PRESETS):
        return []
    path = resolve_against(source, base_dir)
    # os.path, not pathlib: it answers False for a link loop or a name too long, never raises
    if not os.path.exists(path):
        problem = file_problem(path, noun="model")
        if problem is not None and problem.kind != "missing":  # a link loop or to nothing
            return [(("model", "source"), problem.message, problem.fix)]
        return [
            (
                ("model", "source"),
                f"model {shown(source)} is neither a preset nor an existing local path",
                f"use a preset ({', '.join(tuple(MODEL_PRESETS))}), a local model directory "
                "or a .gguf file; nothing is downloaded",
            )
        ]
    if isinstance(gguf_file, str):
        gguf, loc = path / gguf_file, ("model", "gguf_file")
        if not os.path.isfile(gguf):
            present = [p.name for p in _ggufs(path)] if os.path.isdir(path) else []
            return [(loc, f"{gguf} does not exist", f"use one of {present} or fix the name")]
    elif os.path.isfile(path) and path.suffix == ".gguf":
        gguf, loc = path, ("model", "source")
    elif os.path.isdir(path) and os.path.lexists(path / "config.json"):
        try:  # transformers would parse it unbounded (`json.load`): a traceback, not an error
            read_model_config(path / "config.json")
        except TrialInputError as error:
            return [(("model", "source"), error.message, error.fix or "")]
        return []
    elif os.path.isdir(path) and len(ggufs := _ggufs(path)) == 1:
        gguf, loc = ggufs[0], ("model", "source")
    else:
        return [(("model", "source"), _not_a_model(path), _MODEL_FIX)]
    problem = _gguf_problem(gguf)
    return [(loc, problem, _GGUF_FIX)] if problem else []


def _roots(raw: dict[str, Any], base_dir: Path) -> list[Path]:
    """The study file's folder and every data root it declares (its tasks' too)."""
    datas = [raw.get("data")] + [
        t.get("data") for t in raw.get("tasks") or [] if isinstance(t, dict)
    ]
    declared = [d.get("root") for d in datas if isinstance(d, dict)]
    return [base_dir, *(resolve_against(r, base_dir) for r in declared if isinstance(r, str))]


def _template_problems(value: object, base_dir: Path, roots: list[Path]) -> list[Problem]:
    """A chat template named by its path must be a readable file inside the study's folder or a
    data root: it is rendered into every training example and logged generation, so, as for data
    files, a shared study file cannot make trials read a file elsewhere on the machine. Whether
    it can mask the assistant's turns is `preflight`'s to check (it renders it with the model's
    tokenizer)."""
    if not isinstance(value, str) or value in TEMPLATE_CHOICES:
        return []
    path = resolve_against(value, base_dir)
    fix = (
        f"set model.chat_template to {', '.join(TEMPLATE_CHOICES)}, or to the path of a Jinja "
        f"template file (relative paths start at {base_dir})"
    )
    if all(escapes_root(path, root) for root in roots):
        message = (
            f"chat template file {shown(value)} resolves to {Path(path).resolve()}, outside the "
            "study file's folder and the data roots"
        )
        return [(("model", "chat_template"), message, "copy it next to the study file, or " + fix)]
    problem = file_problem(path, noun="chat template file")
    if problem is None:
        return []
    return [(("model", "chat_template"), problem.message, fix)]


_MODEL_FIX = (
    "point model.source at a Hugging Face model directory (with config.json), a .gguf file "
    "(or a folder and model.gguf_file), or a preset"
)


def _not_a_model(path: Path) -> str:
    """Why `path`, which exists, is not a model advisor can load."""
    if not os.path.isdir(path):
        return f"{path} is neither a .gguf file nor a model directory"
    ggufs = _ggufs(path)
    if ggufs:
        names = ", ".join(p.name for p in ggufs[:5]) + (" ..." if len(ggufs) > 5 else "")
        return f"{path} holds several .gguf files ({names}); model.gguf_file names the one to use"
    return f"{path} holds neither config.json nor a .gguf file"


def _ggufs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.gguf"))


_GGUF_FIX = (
    "point model.source at an intact GGUF file (download or convert it again: it may be "
    "truncated or not GGUF at all), a Hugging Face model directory, or a preset"
)


def _gguf_problem(path: Path) -> str | None:
    """Why `path` is not a readable GGUF file (its header, a few kilobytes, is parsed)."""
    try:
        read_gguf_header(path)
    except (OSError, ValueError, EOFError, struct.error) as error:
        return f"{path} is not a readable GGUF file: {error}"
    return None

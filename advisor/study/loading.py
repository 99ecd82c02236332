"""Reading a study file: YAML with line numbers, every error at once, checks of the files it names.

`load_study` validates in three layers and reports all problems of all layers together in one
`AdvisorInputError`, each as `FILE:LINE: a.b.c: message (fix: ...)`: the schema (pydantic), the
rules across sections (collected through the validation context) and the files on disk (data and
model paths). The line comes from `yaml.compose` nodes, walked along pydantic's error location.
"""

from __future__ import annotations

import csv
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from advisor.errors import AdvisorInputError

from .presets import closest, resolve_target_modules
from .space import SEARCH_TAGS
from .spec import StudySpec

Problem = tuple[int | None, str, str, str]
"""(line, dotted path, message, fix)."""


def load_study(path: str | Path) -> StudySpec:
    """The validated, fully defaulted study in `path`; paths inside it become absolute."""
    file = Path(path)
    if not file.is_file():
        raise AdvisorInputError(
            f"study file {str(file)!r} does not exist",
            fix="give the path of a study YAML file, e.g. studies/demo.yaml",
        )
    text = file.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise AdvisorInputError(
            f"{file}{line}: YAML syntax error: {problem}",
            fix="fix the YAML (indentation, a missing colon, an unclosed quote or bracket)",
        ) from None
    if not isinstance(raw, dict):
        raise AdvisorInputError(
            f"{file}:1: the study file must be a mapping of sections, got {type(raw).__name__}",
            fix="start from studies/demo.yaml (`advisor schema` lists every section)",
        )
    base_dir = file.resolve().parent
    problems: list[Problem] = []
    collected: list[tuple[tuple[Any, ...], str, str]] = []
    spec: StudySpec | None = None
    try:
        spec = StudySpec.model_validate(raw, context={"base_dir": base_dir, "problems": collected})
    except ValidationError as error:
        for item in error.errors():
            line, dotted = locate(root, item["loc"])
            problems.append((line, dotted, _message(item), fix_for(item)))
    for loc, message, fix in collected:
        line, dotted = locate(root, loc)
        problems.append((line, dotted, message, fix))
    for loc, message, fix in file_problems(raw, base_dir):
        line, dotted = locate(root, loc)
        problems.append((line, dotted, message, fix))
    if problems:
        raise AdvisorInputError(render_problems(file, problems), where=str(file))
    assert spec is not None
    spec._source_file = str(file.resolve())
    return spec


def render_problems(file: Path, problems: list[Problem]) -> str:
    """One line per problem, in file order, duplicates (from union branches) merged."""
    seen: list[str] = []
    for line, dotted, message, fix in sorted(problems, key=lambda p: (p[0] or 0, p[1])):
        text = f"{file}:{line or 1}: {dotted or '(top)'}: {message} (fix: {fix})"
        if text not in seen:
            seen.append(text)
    count = f"{len(seen)} problem{'s' if len(seen) != 1 else ''}"
    return f"{count} in the study file:\n" + "\n".join(f"  {text}" for text in seen)


def locate(root: yaml.Node | None, loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """The YAML line of pydantic location `loc` (or of its deepest existing parent) and its path.

    Union tags pydantic adds to locations (`range`, `list[int]`, ...) are dropped from the path.
    """
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    parts: list[str] = []
    for index, item in enumerate(loc):
        child = _child(node, item)
        if child is not None:
            node, line = child[0], child[1]
            parts.append(f"[{item}]" if isinstance(item, int) else str(item))
            continue
        is_tag = isinstance(item, str) and (
            item in SEARCH_TAGS or "[" in item or item in ("str", "int", "float", "bool")
        )
        if is_tag and index > 0:
            continue
        node = None
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return line, ".".join(parts).replace(".[", "[")


def _child(node: yaml.Node | None, item: Any) -> tuple[yaml.Node, int] | None:
    """The child node at `item` and the line to report for it (a key's own line)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(item):
                return value, key.start_mark.line + 1
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
        return node.value[item], node.value[item].start_mark.line + 1
    return None


def _message(item: dict[str, Any]) -> str:
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] not in ("missing", "extra_forbidden", "study_rule") and "input" in item:
        value = item["input"]
        if not isinstance(value, (dict, list)) or len(repr(value)) < 60:
            message += f" (got {value!r})"
    return message


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section class at `loc` (for listing the keys allowed there)."""
    model: type[BaseModel] | None = StudySpec
    for item in loc:
        if model is None or item not in model.model_fields:
            return None
        model = _find_model(model.model_fields[item].annotation)
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model inside an annotation (through Optional, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def fix_for(item: dict[str, Any]) -> str:
    """The fix for one pydantic error: ours carry it in ctx, built-in types get one from here."""
    ctx = item.get("ctx") or {}
    loc = tuple(part for part in item["loc"] if part not in SEARCH_TAGS)
    kind = item["type"]
    if "fix" in ctx:
        return str(ctx["fix"])
    if kind == "missing":
        where = ".".join(map(str, loc[:-1])) or "the top level"
        return f"add `{loc[-1]}:` under {where}"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        near = closest(str(loc[-1]), allowed) if allowed else None
        hint = f"did you mean {near!r}? " if near else ""
        return f"{hint}remove it; allowed here: {', '.join(allowed)}"
    if kind in ("literal_error", "enum"):
        return f"use one of: {ctx.get('expected')}"
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return "use lowercase letters, digits, '_' and '-', e.g. my-study"
    return "change the value (`advisor schema` describes every field)"


def file_problems(raw: dict[str, Any], base_dir: Path) -> list[tuple[tuple[Any, ...], str, str]]:
    """Missing data files, missing fields in them and a missing model path, read from raw YAML.

    Read from the raw mapping rather than the validated spec, so that these are reported together
    with schema errors elsewhere in the file.
    """
    problems: list[tuple[tuple[Any, ...], str, str]] = []
    data = raw.get("data")
    if isinstance(data, dict):
        fields = [data.get("prompt_field", "prompt"), data.get("response_field", "response")]
        for key in ("train", "eval"):
            value = data.get(key)
            if not isinstance(value, str):
                continue
            path = _resolve(value, base_dir)
            if not path.is_file():
                problems.append(
                    (
                        ("data", key),
                        f"data file {str(path)!r} does not exist",
                        f"create it or fix the path (relative paths start at {base_dir})",
                    )
                )
                continue
            missing = [f for f in fields if isinstance(f, str) and f not in _first_record(path)]
            if missing and path.stat().st_size:
                problems.append(
                    (
                        ("data", key),
                        f"the first record of {path.name} lacks the field(s) {missing}",
                        "set data.prompt_field / data.response_field to the file's field names",
                    )
                )
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("source"), str):
        from .spec import known_model_presets

        source = model["source"]
        if source not in known_model_presets() and not _resolve(source, base_dir).exists():
            problems.append(
                (
                    ("model", "source"),
                    f"model {source!r} is neither a preset nor an existing local path",
                    f"use a preset ({', '.join(known_model_presets())}), a local model directory "
                    "or a .gguf file; nothing is downloaded",
                )
            )
    return problems


def _resolve(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _first_record(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix == ".csv":
                return next(csv.DictReader(handle), None) or {}
            if path.suffix == ".jsonl":
                first = next((line for line in handle if line.strip()), "{}")
                record = json.loads(first)
            else:
                loaded = json.load(handle)
                record = loaded[0] if isinstance(loaded, list) and loaded else loaded
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {}
    return record if isinstance(record, dict) else {}


def check_model_modules(spec: StudySpec) -> list[str]:
    """Check every target_modules choice against the model's real linear-module names.

    Returns those names. Builds the model skeleton on the meta device (no weights read); raises one
    `AdvisorInputError` naming each bad choice, the real names and the closest match.
    """
    from runners.config import ModelRef
    from runners.errors import TrialInputError
    from runners.models import linear_module_names

    ref = ModelRef(
        source=spec.model.source,
        trust_remote_code=spec.model.trust_remote_code,
        gguf_file=spec.model.gguf_file,
    )
    try:
        available = linear_module_names(ref)
    except TrialInputError as error:
        raise AdvisorInputError(error.message, fix=error.fix, where=error.where) from None
    value = spec.search.target_modules
    problems: list[Problem] = []
    root = _compose(spec.source_file)
    for index, choice in enumerate(spec.search.target_choices()):
        loc = ("search", "target_modules") + (() if isinstance(value, str) else (index,))
        try:
            resolve_target_modules(choice, available)
        except AdvisorInputError as error:
            line, dotted = locate(root, loc)
            problems.append((line, dotted, error.message, error.fix or ""))
    if problems:
        raise AdvisorInputError(
            render_problems(Path(spec.source_file or "study"), problems),
            where=spec.source_file,
        )
    return available


def _compose(source_file: str | None) -> yaml.Node | None:
    """The YAML node tree of the study file, for line numbers (None when unavailable)."""
    if not source_file:
        return None
    try:
        return yaml.compose(Path(source_file).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None


def _portable(spec: StudySpec) -> dict[str, Any]:
    """The spec's content with local paths relative to the study file (location-independent)."""
    dumped = spec.model_dump(mode="json", exclude={"description", "storage", "tracking"})
    if spec.source_file:
        base = Path(spec.source_file).parent
        for section, key in (("data", "train"), ("data", "eval"), ("model", "source")):
            value = Path(dumped[section][key])
            if value.is_absolute() and value.is_relative_to(base):
                dumped[section][key] = value.relative_to(base).as_posix()
    return dumped


def spec_hash(spec: StudySpec) -> str:
    """SHA-256 (16 hex digits) of what decides results: not description, stores or checkout path."""
    canonical = json.dumps(_portable(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dump_resolved(spec: StudySpec) -> str:
    """YAML of the fully defaulted spec with absolute paths: the MLflow artifact, rerunnable."""
    from advisor.redact import redact_url

    header = f"# resolved study {spec.name!r}, spec_hash {spec_hash(spec)}\n"
    data = spec.model_dump(mode="json")
    # It is logged to MLflow: no passwords (a rerun is given its stores, it does not read these).
    data["storage"] = redact_url(data.get("storage"))
    data["tracking"]["uri"] = redact_url(data["tracking"].get("uri"))
    return header + yaml.safe_dump(data, sort_keys=False, width=100)


def study_json_schema() -> dict[str, Any]:
    """JSON Schema of the study file (for editors and `advisor schema`)."""
    schema = StudySpec.model_json_schema()
    schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
    return schema

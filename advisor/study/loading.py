"""Reading a study file: YAML with line numbers, every error at once, checks of the files it names.

`load_study` validates in three layers and reports all problems of all layers together in one
`AdvisorInputError`, each as `FILE:LINE: a.b.c: message (fix: ...)`: the schema (pydantic), the
rules across sections (collected through the validation context) and the files on disk (data read
whole, model and GGUF headers, paths that leave their roots: `files.py`). The line comes from
`yaml` nodes (`yamlsafe.load`, which bounds the document), walked along pydantic's error
location.
"""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from advisor.errors import AdvisorInputError
from advisor.redact import redact_url
from runners.config import ModelRef
from runners.datafiles import file_problem
from runners.errors import TrialInputError
from runners.models import linear_module_names

from . import yamlsafe
from .files import file_problems
from .knowledge import knowledge_problems
from .presets import closest, resolve_target_modules
from .space import SEARCH_TAGS, shown
from .spec import StudySpec

Problem = tuple[int | None, str, str, str]
"""(line, dotted path, message, fix)."""


def load_study(path: str | Path, *, base_dir: str | Path | None = None) -> StudySpec:
    """The validated, fully defaulted study in `path`; paths inside it become absolute.

    Relative paths start at `base_dir` (default: the file's folder, also the default data.root):
    `advisor serve` validates a submitted text against its first data root. The error carries
    the problems as data too (`error.problems`: (line, path, message, fix) tuples)."""
    file = Path(path)
    text = _read_study_text(file)
    try:
        root, raw = yamlsafe.load(text)
    except yamlsafe.YamlRefused as error:
        raise AdvisorInputError(
            f"{file}:{error.line or 1}: {error.message}", fix=error.fix
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and start is not None:  # e.g. an unclosed bracket: where it was opened
            problem += f" ({context} started at line {start.line + 1})"
        raise AdvisorInputError(
            f"{file}{line}: YAML syntax error: {problem}",
            fix="fix the YAML (indentation, a missing colon, an unclosed quote or bracket)",
        ) from None
    if not isinstance(raw, dict):
        raise AdvisorInputError(
            f"{file}:1: the study file must be a mapping of sections, got {type(raw).__name__}",
            fix="start from studies/demo.yaml (`advisor schema` lists every section)",
        )
    base_dir = Path(base_dir).resolve() if base_dir is not None else file.resolve().parent
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
    for loc, message, fix in file_problems(raw, base_dir) + knowledge_problems(raw, base_dir):
        line, dotted = locate(root, loc)
        problems.append((line, dotted, message, fix))
    if problems:
        error = AdvisorInputError(render_problems(file, problems), where=str(file))
        error.problems = sorted(problems, key=lambda p: (p[0] or 0, p[1]))  # type: ignore[attr-defined]
        raise error
    assert spec is not None
    spec.set_source_file(str(file.resolve()))
    return spec


def _read_study_text(file: Path) -> str:
    """The study file's text; a path that is no readable regular file (missing, a folder, a
    link loop, a fifo: `file_problem`), more than `yamlsafe.MAX_BYTES` or non-UTF-8 bytes are
    input errors."""
    problem = file_problem(file, noun="study file")
    if problem is not None:
        fix = "give the path of a study YAML file, e.g. studies/demo.yaml"
        raise AdvisorInputError(
            problem.message, fix=fix if problem.kind in ("missing", "folder") else problem.fix
        )
    try:
        with file.open("rb") as stream:  # no more than the YAML loader would read
            data = stream.read(yamlsafe.MAX_BYTES + 1)
    except OSError as error:
        raise AdvisorInputError(
            f"study file {shown(str(file))} cannot be read: {error.strerror}",
            fix="make it readable",
        ) from None
    if len(data) > yamlsafe.MAX_BYTES:
        raise AdvisorInputError(
            f"{file}:1: the study file has more than {yamlsafe.MAX_BYTES:,} bytes; a study is a "
            "few KiB",
            fix="check that it is the study you meant; keep data in data files (data.train) "
            "and comments short",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AdvisorInputError(
            f"{file}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x})",
            fix=f"save the study file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {file.name}`",
        ) from None


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
    """pydantic's message and the value it refused, cut to a readable length (`shown`)."""
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] not in ("missing", "extra_forbidden", "study_rule") and "input" in item:
        value = item["input"]
        if not isinstance(value, (dict, list)) or len(shown(value)) < 60:
            message += f" (got {shown(value)})"
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
    if kind == "string_pattern_mismatch" and loc[-1:] == ("name",):
        return "use lowercase letters, digits, '_' and '-', e.g. my-study"
    for prefix, fix in _TYPE_FIXES.items():
        if kind.startswith(prefix):
            return fix.format(**ctx)
    return "change the value (`advisor schema` describes every field)"


_TYPE_FIXES = {
    "finite_number": "write a finite number (.nan and .inf are not values a study can use)",
    "int_parsing_size": "write a whole number within the field's range (`advisor schema`)",
    "greater_than_equal": "use a value >= {ge}",
    "greater_than": "use a value > {gt}",
    "less_than_equal": "use a value <= {le}",
    "less_than": "use a value < {lt}",
    "int_": "write a whole number, e.g. 8",
    "float_": "write a number, e.g. 0.001 or 1.0e-3",
    "bool_": "write true or false",
    "string_too_short": "write a non-empty value",
    "string_": "write a text value (quote it if YAML reads it as something else)",
    "too_short": "list at least one value, e.g. [4, 8]",
    "list_": "write a list, e.g. [4, 8]",
    "dict_": "write a mapping of keys (`advisor schema` lists them)",
    "model_": "write a mapping of keys (`advisor schema` lists them)",
}
"""Fixes for pydantic's built-in error kinds (by prefix of the kind; first match wins)."""


def check_model_modules(spec: StudySpec) -> list[str]:
    """Check every target_modules choice against the model's real linear-module names.

    Returns those names. Builds the model skeleton on the meta device (no weights read); raises one
    `AdvisorInputError` naming each bad choice, the real names and the closest match.
    """
    ref = ModelRef(
        source=spec.model.source,
        trust_remote_code=spec.model.trust_remote_code,
        gguf_file=spec.model.gguf_file,
    )
    try:
        available = linear_module_names(ref)
    except TrialInputError as error:
        raise AdvisorInputError(error.message, fix=error.fix, where=error.where) from None
    except (OSError, ValueError, KeyError) as error:  # transformers on a broken model folder
        raise AdvisorInputError(
            f"cannot read the model config of {shown(spec.model.source)}: "
            f"{type(error).__name__}: {shown(str(error).splitlines()[0]) if str(error) else ''}",
            where="model.source",
            fix="point model.source at an intact Hugging Face model directory (config.json), "
            "a .gguf file or a preset",
        ) from None
    value = spec.search.target_modules
    problems: list[Problem] = []
    root = compose_nodes(spec.source_file)
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


def compose_nodes(source_file: str | None) -> yaml.Node | None:
    """The YAML node tree of the study file, for line numbers (None when unavailable)."""
    if not source_file:
        return None
    try:
        return yamlsafe.load(Path(source_file).read_text(encoding="utf-8"))[0]
    except (OSError, yaml.YAMLError, yamlsafe.YamlRefused):
        return None


def _portable(spec: StudySpec) -> dict[str, Any]:
    """The spec's content with local paths relative to the study file (location-independent)."""
    dumped = spec.model_dump(mode="json", exclude={"description", "storage", "tracking"})
    if not dumped["tasks"]:  # single-task studies hash as before `tasks` existed
        del dumped["tasks"]
    datas = [dumped["data"]] if dumped["data"] is not None else []
    datas += [task["data"] for task in dumped.get("tasks", [])]
    for data in datas:
        data.pop("allow_pii", None)  # a permission, not an input: results do not change
    if spec.source_file:
        base = Path(spec.source_file).parent
        places = [(data, key) for data in datas for key in ("root", "train", "eval")]
        places += [(data["replay"], "path") for data in datas if data.get("replay")]
        places += [(data, "knowledge") for data in datas]
        places += [(dumped["model"], "source"), (dumped["model"], "chat_template")]
        for section, key in places:
            if section.get(key) is None:
                continue
            value = Path(section[key])
            if value.is_absolute() and value.is_relative_to(base):
                section[key] = value.relative_to(base).as_posix()
        for data in datas:
            if data.get("root") == ".":  # the default: hashes as before data.root existed
                del data["root"]
            if data.get("replay") is None:  # and as before data.replay existed
                data.pop("replay", None)
    _drop_defaults(dumped, datas)
    return dumped


_NEW_DEFAULTS = {"format": None, "packing": False, "knowledge": None}
"""Data keys added after 0.1 and their defaults: a study that leaves them out hashes as before
they existed, so a study recorded by an older advisor is continued, not refused as changed."""


_NEW_SEARCH_KEYS = ("top_k", "chunk_size")
"""Search keys added after 0.1 (None: the method does not take them), dropped likewise."""


def _drop_defaults(dumped: dict[str, Any], datas: list[dict[str, Any]]) -> None:
    for data in datas:
        for key, default in _NEW_DEFAULTS.items():
            if key in data and data[key] == default:
                del data[key]
    if dumped["model"].get("chat_template") == "auto":  # likewise model.chat_template
        del dumped["model"]["chat_template"]
    for key in _NEW_SEARCH_KEYS:  # and the retrieval methods' parameters, unset
        if dumped["search"].get(key, 0) is None:
            del dumped["search"][key]


def spec_hash(spec: StudySpec) -> str:
    """SHA-256 (16 hex digits) of what decides results: not description, stores or checkout path."""
    canonical = json.dumps(_portable(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def spec_content(spec: StudySpec) -> dict[str, Any]:
    """What `spec_hash` fingerprints, as a mapping: stored with a study so that a changed study
    file can be shown what it changes (paths relative to the study file, as hashed)."""
    return _portable(spec)


def dump_resolved(spec: StudySpec) -> str:
    """YAML of the fully defaulted spec with absolute paths: the MLflow artifact, rerunnable."""
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

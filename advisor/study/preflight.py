"""The checks a study passes before anything trains, shared by `advisor tune` and `validate`.

`tune` must not be the first to find a study it cannot run: it would have recorded the study in
Optuna and MLflow and run the baseline first (on SmolLM2, ~50 s per trial before trl's
"tokenizer.chat_template is not set"). So the checks `tune` and each trial make without
training live in `preflight`, which both commands call, and they cannot drift apart:

1. the study file and the files it names (`load_study`: schema, rules, every data row read by
   the layout it is in, the rules across layouts and the metric, the chat template file);
2. the target modules against the model's real layers (`check_model_modules`, meta device);
3. each data file's layout and rows, as the trial reads them (`advisor.study.layouts`);
4. the chat template, for chat data: the model's tokenizer alone is loaded (no weights) and
   `runners.templates.resolve_template` picks and checks the template a trial will use, so a
   base model's study says at validation that it trains with `plain`, and a template that cannot
   mask the assistant's turns (or `model` on a model without one) is refused here.

Besides these, `tune` scans the data before it records anything (`advisor.scan.gate`, a layer
above this package): `validate` runs that gate too. What `validate` skips, because it would
write or reach out: opening the stores (`check_stores` creates nothing, but the Optuna and
MLflow stores are `tune`'s to open), whether the tracking server answers, and whether a stored
study of the same name has another search space or study file. Without `check_model`
(`validate --no-check-model`) 2 and 4 are skipped: nothing of the model is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from runners.config import ModelRef
from runners.errors import TrialInputError
from runners.layouts import Layout, PairFields
from runners.models import load_tokenizer as runner_tokenizer
from runners.templates import resolve_template

from .layouts import DataFile, read_layout
from .loading import check_model_modules, compose_nodes, locate, render_problems
from .spec import StudySpec
from .tasks import expand_tasks

_TEMPLATE = ("model", "chat_template")


@dataclass(frozen=True)
class Preflight:
    """What the checks found, for `validate` to show."""

    modules: list[str] | None
    """The model's linear-module names; None when the model was not read."""
    files: dict[str, list[DataFile]]
    """Each study's (each task's) data files, by study name."""
    template: str | None
    """The chat template trials use ("model", "plain (the tokenizer has none)", "chatml", a
    file); "none (raw text)" for raw text; None when the model was not read."""


def preflight(spec: StudySpec, *, check_model: bool = True) -> Preflight:
    """Run the checks (see the module docstring); raises `AdvisorInputError` naming the field."""
    modules = check_model_modules(spec) if check_model else None
    views = expand_tasks(spec) or [spec]
    files = {view.name: data_files(view) for view in views}
    chat = any(file.kind == "chat" for found in files.values() for file in found)
    template = None
    if check_model:
        template = chat_template(spec) if chat else "none (raw text)"
    return Preflight(modules=modules, files=files, template=template)


def data_files(spec: StudySpec) -> list[DataFile]:
    """Each data file of a single-task study with the layout and rows a trial reads."""
    data = spec.data
    fields = PairFields(data.prompt_field, data.response_field)
    found = []
    for role, path, limit in (
        ("train", data.train, data.max_train_examples),
        ("eval", data.eval, data.max_eval_examples),
    ):
        layout, rows = _read(path, data.format, fields, limit, where=f"data.{role}")
        found.append(DataFile(role, path, layout.name, layout.kind, rows))
    if data.replay is not None:
        replay = data.replay
        fields = PairFields(replay.prompt_field, replay.response_field)
        layout, rows = _read(replay.path, None, fields, None, where="data.replay.path")
        found.append(DataFile("replay", replay.path, layout.name, layout.kind, rows))
    return found


def _read(
    path: str, format: str | None, fields: PairFields, limit: int | None, *, where: str
) -> tuple[Layout, int]:
    try:
        return read_layout(path, format=format, fields=fields, limit=limit, where=where)
    except TrialInputError as error:  # load_study read it already: changed since
        raise AdvisorInputError(error.message, fix=error.fix, where=where) from None


def chat_template(spec: StudySpec) -> str:
    """The chat template a trial of `spec` will use, checked as training uses it; how
    `validate` names it. Only the model's tokenizer is loaded."""
    choice = spec.model.chat_template
    try:
        template = resolve_template(load_tokenizer(spec), choice)
    except TrialInputError as error:
        raise _at_template(spec, error.message, error.fix or "") from None
    if template.name == "plain" and choice == "auto":
        return "plain (the tokenizer has none)"
    return template.name


def _at_template(spec: StudySpec, message: str, fix: str) -> AdvisorInputError:
    """An error at model.chat_template's line of the study file."""
    line, dotted = locate(compose_nodes(spec.source_file), _TEMPLATE)
    file = Path(spec.source_file or "study")
    return AdvisorInputError(
        render_problems(file, [(line, dotted, message, fix)]), where=".".join(_TEMPLATE)
    )


def load_tokenizer(spec: StudySpec) -> Any:
    """The model's tokenizer from local files, without its weights: a preset's converted copy
    when the cache has it, otherwise straight from the GGUF file (nothing is converted)."""
    model = spec.model
    try:
        return runner_tokenizer(ModelRef(model.source, model.trust_remote_code, model.gguf_file))
    except TrialInputError as error:
        raise AdvisorInputError(error.message, fix=error.fix, where=error.where) from None
    except (OSError, ValueError, KeyError) as error:  # transformers on a broken tokenizer
        raise AdvisorInputError(
            f"cannot load the tokenizer of {model.source!r}: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:300] if str(error) else ''}",
            where="model.source",
            fix="point model.source at a model directory with its tokenizer files, a .gguf "
            "file or a preset",
        ) from None

"""Multi-task studies: one base model, several tasks, one adapter per task.

A study that declares `tasks` is an umbrella: nothing is tuned under its own name. Each task
becomes an ordinary single-task study named `<study>.<task>` (its own Optuna study, MLflow
experiment, parent run, baseline and trials), with that task's data and metric and everything
else (model, method, search space, budget, stores) from the umbrella. Reusing the single-task
machinery whole means every command that works on a study works on a task's study too (`report
demo.extract`, `rerun demo.extract`, `export demo.extract`).

Each task's study carries markers, so the umbrella's tasks can be found in the stores: the
Optuna user attributes and MLflow parent-run tags `advisor.umbrella` and `advisor.task`
(`advisor.stores.records.task_markers`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import yamlsafe
from .spec import StudySpec, task_view


def task_study_name(study: str, task: str) -> str:
    """The name of one task's own study."""
    return f"{study}.{task}"


def expand_tasks(spec: StudySpec) -> list[StudySpec]:
    """One single-task spec per task of `spec`, in declaration order (`[]` without tasks).

    Deep copies: a caller may override one task's stores without touching the others. The
    MLflow experiment is per task unless the study named one (then the tasks share it, each
    with its own parent run).
    """
    specs = []
    for task in spec.tasks:
        one = task_view(spec, task).model_copy(deep=True)
        one.name = task_study_name(spec.name, task.name)
        one.tasks = []
        if task.description:
            one.description = task.description
        if one.tracking.experiment in (None, spec.name):  # the default: the study's name
            one.tracking.experiment = one.name
        one.set_source_file(spec.source_file)
        one._umbrella, one._task = spec.name, task.name
        specs.append(one)
    return specs


def declares_tasks(study_file: str | Path) -> bool:
    """Whether the study file declares `tasks` (a cheap look at the YAML, no validation).

    For choosing between `tune` and `tune_tasks`; an unreadable file says False, and the
    loader then reports what is wrong with it.
    """
    try:
        raw = yamlsafe.load(Path(study_file).read_text(encoding="utf-8"))[1]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, yamlsafe.YamlRefused):
        return False
    return isinstance(raw, dict) and bool(raw.get("tasks"))

"""The MLflow model registry: a trial's adapter as a version of `<study>-adapter`.

A registered version points at the adapter artifact where it lies (the trial's run), nothing is
copied. `advisor tune` registers the best trial's adapter once per best run when a study ends;
`advisor export --register` registers any trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow.exceptions import MlflowException

from advisor.errors import AdvisorInputError

from . import keys
from .records import RecordedStudy
from .tracker import StudyTracker


def model_name(study: str) -> str:
    """The registered model a study's adapters are versions of."""
    return f"{study}-adapter"


def register_adapter(
    tracker: StudyTracker, run_id: str, name: str, tags: Mapping[str, Any] | None = None
) -> str:
    """Register the run's `adapter/` artifact as a new version of model `name`.

    The registered model is created on first use; each call adds a version (returned as a
    string, e.g. "1").
    """
    client = tracker.client
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description=f"LoRA-family adapters tuned by advisor ({name})"
        )
    version = client.create_model_version(
        name,
        source=tracker.artifact_uri(run_id, keys.ADAPTER),
        run_id=run_id,
        tags={k: str(v) for k, v in (tags or {}).items()},
    )
    return str(version.version)


def register_trial(
    recorded: RecordedStudy, trial: int | str, *, name: str | None = None
) -> tuple[str, str]:
    """Register trial `trial`'s adapter in the MLflow model registry: (model name, version)."""
    number, run_id = recorded.adapter_run(trial)
    frozen = recorded.trial(number)
    registered = name or model_name(recorded.name)
    tags = {
        keys.STUDY: recorded.name,
        keys.TRIAL: number,
        keys.METRIC: recorded.metric,
        **{f"{keys.PARAM_TAG}{k}": v for k, v in frozen.params.items()},
    }
    if frozen.user_attrs.get("score") is not None:
        tags[keys.SCORE_TAG] = frozen.user_attrs["score"]
    version = register_adapter(recorded.tracker, run_id, registered, tags)
    return registered, version


def register_best(recorded: RecordedStudy, *, name: str | None = None) -> tuple[str, str]:
    """Register the best complete trial's adapter as a new version of `<study>-adapter`."""
    return register_trial(recorded, "best", name=name)


def register_best_once(recorded: RecordedStudy) -> str | None:
    """`<name>/<version>` of the best trial's adapter, registered unless that run already has a
    version: a continued study whose best trial did not change adds none. None when no complete
    trial has an adapter (nothing completed, or the best trial is a `full` fine-tuning)."""
    try:
        _, run_id = recorded.adapter_run("best")
    except AdvisorInputError:
        return None
    name = model_name(recorded.name)
    for version in recorded.tracker.client.search_model_versions(f"name = '{name}'"):
        if version.run_id == run_id:
            return f"{name}/{version.version}"
    name, number = register_best(recorded, name=name)
    return f"{name}/{number}"

"""Finished studies of a stores folder as plain records, for recommendations that learn.

`advisor recommend --evidence STORE` reads every study `advisor tune` recorded under one
`mlruns/` folder and hands `advisor.decide.evidence` a `PastStudy` per study with a complete
trial: what it tuned (the study file's content that Optuna keeps, `keys.SPEC_CONTENT`), its best
trial's values, score, gain over the untuned baseline and cost (Optuna), and the training data's
hash, examples and forgetting (the MLflow runs, when the tracking store is there). Decide never
opens a store; this module is the one reading of past studies for it.

Reading writes nothing: the stores must already exist (a folder without `optuna.db` is refused
before anything is opened), and a study recorded before advisor kept its study file's content
is skipped rather than guessed at.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from advisor.decide.evidence import PastStudy
from advisor.decide.shapes import resolve_model
from advisor.directions import best, gain
from advisor.errors import AdvisorInputError
from advisor.study.method_search import takes
from runners.methods import METHODS

from . import keys
from .storage import load_study, make_storage
from .tracker import quiet_mlflow

OPTUNA_DB = "optuna.db"
MLFLOW_DB = "mlflow.db"
FORGETTING = ("forgetting_kl", "forgetting_ppl_delta", "general_score", "general_score_delta")
"""The forgetting measures a trial leaves (Optuna attribute, else run metric)."""


def stores_folder(path: Path) -> Path:
    """The `mlruns/` folder of `--evidence PATH`: PATH itself when it holds `optuna.db`, else
    PATH/mlruns; a user error when neither holds an Optuna store."""
    for folder in (path, path / "mlruns"):
        if (folder / OPTUNA_DB).is_file():
            return folder
    raise AdvisorInputError(
        f"--evidence {path}: no finished studies there (neither {path / OPTUNA_DB} nor "
        f"{path / 'mlruns' / OPTUNA_DB} exists)",
        where="--evidence",
        fix="give the folder holding a project's mlruns/ (or the mlruns folder itself), or "
        "--evidence none to recommend without past studies",
    )


def read_studies(folder: Path) -> list[PastStudy]:
    """Every recorded study under `folder` (an `mlruns/`) that has a complete trial."""
    try:
        storage = make_storage(f"sqlite:///{(folder / OPTUNA_DB).resolve()}")
    except AdvisorInputError as error:  # a damaged store: named as the option it came from
        raise AdvisorInputError(
            error.message,
            where="--evidence",
            fix=f"{error.fix}; or --evidence none to recommend without past studies",
        ) from None
    tracking = None
    if (folder / MLFLOW_DB).is_file():  # without it Optuna alone still says much
        tracking = f"sqlite:///{(folder / MLFLOW_DB).resolve()}"
    return studies_in(storage, tracking)


def studies_in(storage: Any, tracking_uri: str | None) -> list[PastStudy]:
    """Every study in an open Optuna `storage` that advisor recorded and that has a complete
    trial, oldest first, with what the MLflow store at `tracking_uri` (None: none) adds.

    `tune` reads its own stores this way (any backend: an embedded folder or PostgreSQL with an
    MLflow server) for the points a warm start takes from similar past studies."""
    tracking = None
    if tracking_uri is not None:
        quiet_mlflow()
        tracking = MlflowClient(tracking_uri)
    found = []
    for frozen in sorted(storage.get_all_studies()):  # FrozenStudy orders by id: oldest first
        content = frozen.user_attrs.get(keys.SPEC_CONTENT)
        if not isinstance(content, dict):
            continue  # recorded before advisor kept the study file's content
        study = load_study(frozen.study_name, storage)
        if study is not None:
            past = _past_study(study, content, tracking)
            if past is not None:
                found.append(past)
    return found


def _run(client: MlflowClient | None, run_id: Any) -> Any:
    if client is None or not run_id:
        return None
    try:
        return client.get_run(str(run_id))
    except MlflowException:
        return None


def _past_study(study: Any, content: dict[str, Any], tracking: MlflowClient | None) -> Any:
    direction = study.directions[0].name.lower()
    top = _best_trial(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), direction)
    if top is None:
        return None
    attrs = study.user_attrs
    baseline = attrs.get(keys.BASELINE_SCORE)
    score = float(top.values[0])
    parent = _run(tracking, attrs.get(keys.PARENT_RUN))
    trial_run = _run(tracking, top.user_attrs.get(keys.RUN_ID))
    metrics = dict(trial_run.data.metrics) if trial_run is not None else {}
    examples = metrics.get("train_examples")
    model = str((content.get("model") or {}).get("source", "?"))
    return PastStudy(
        name=study.study_name,
        model=model,
        num_params=_num_params(model),
        method=_method_of(content, top),
        metric=str(attrs.get(keys.METRIC, "score")),
        best_trial=top.number,
        best_params=_best_values(content, top),
        best_score=score,
        baseline_score=baseline,
        gain=None if baseline is None else round(gain(score, baseline, direction), 6),
        eval_loss=_float(top.user_attrs.get("eval_loss", metrics.get("eval_loss"))),
        examples=int(examples) if examples else None,
        data_hash=parent.data.tags.get(f"{keys.DATA_HASH}train") if parent is not None else None,
        cost_usd=top.user_attrs.get("cost_usd"),
        wall_seconds=top.user_attrs.get("wall_seconds"),
        forgetting={
            name: float(value)
            for name in FORGETTING
            if (value := top.user_attrs.get(name, metrics.get(name))) is not None
        },
    )


def _best_trial(complete: list[FrozenTrial], direction: str) -> FrozenTrial | None:
    """The best trial by the task metric; among trials tied on it (a tiny study where nothing
    matches yet), the lowest eval loss: which values trained best is still evidence."""
    top = best(complete, lambda t: t.values[0] if t.values else None, direction)
    if top is None:
        return None
    tied = [t for t in complete if t.values and t.values[0] == top.values[0]]
    return min(tied, key=lambda t: (_float(t.user_attrs.get("eval_loss")) or math.inf, t.number))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _method_of(content: dict[str, Any], trial: FrozenTrial) -> str:
    """The best trial's method: the one it sampled when the study searched the method
    (`search.method`), else the study's."""
    sampled = trial.params.get("method")
    return str(sampled if sampled is not None else content.get("method", "?"))


def _best_values(content: dict[str, Any], trial: FrozenTrial) -> dict[str, Any]:
    """The trial's searched values over the study's fixed ones (a search key given one value),
    as its method reads them: in a study that searched the method, only the keys the trial's
    method takes, and `<method>.learning_rate` as `learning_rate`."""
    method = trial.params.get("method")
    fixed = {
        key: value
        for key, value in (content.get("search") or {}).items()
        if not isinstance(value, (list, dict))
    }
    values = {k: v for k, v in {**fixed, **trial.params}.items() if v is not None}
    if method is None or method not in METHODS:
        return values
    own = values.pop(f"{method}.learning_rate", None)
    out = {k: v for k, v in values.items() if "." not in k and takes(method, k)}
    return out | ({"learning_rate": own} if own is not None else {})


def _num_params(model: str) -> int | None:
    """The model's size when its preset or files are still there (a study may outlive them)."""
    try:
        return resolve_model(model).num_params
    except (AdvisorInputError, OSError, ValueError, KeyError):
        return None


__all__ = ["read_studies", "stores_folder", "studies_in"]

"""Find a study that `advisor tune` recorded, and read its trials: the one reading of both stores.

`report`, `export`, `try`, `rerun` and the service take a study by name (looked up in the default
stores under `./mlruns/`, or the stores given) or by its study file (whose `storage:`/`tracking:`
say where it lives). This module resolves either into one `RecordedStudy`, and a multi-task
study's name into one `RecordedStudy` per task (`open_task_studies`). `trial_record` is the one
conversion of a stored Optuna trial into advisor's record of it; the tuner's rows and the
report's rows extend that record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from optuna.trial import FrozenTrial, TrialState

from advisor.directions import best
from advisor.errors import AdvisorInputError
from advisor.redact import redact_url
from advisor.study import load_study
from advisor.study.spec import StudySpec
from advisor.study.tasks import expand_tasks

from . import keys
from .locations import Stores, refuse_missing_store, sqlite_path
from .storage import load_study as load_optuna_study
from .storage import make_storage, study_names
from .tracker import StudyTracker, run_tags

# -- one trial ---------------------------------------------------------------------------------
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def state_of(trial: Any) -> str:
    """An Optuna trial's state in advisor's words: complete, pruned, failed, running, waiting."""
    return _STATES.get(trial.state.name, trial.state.name.lower())


@dataclass
class TrialRecord:
    """One trial as the stores hold it: its state, parameters and objective values in Optuna,
    and the figures `tune` left on it as user attributes (`keys.RESULTS`)."""

    number: int
    state: str = "running"
    params: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    eval_loss: float | None = None
    wall_seconds: float | None = None
    cost_usd: float | None = None
    gpu_hours: float | None = None
    peak_memory_mb: float | None = None
    peak_reserved_mb: float | None = None
    """Peak CUDA memory reserved (trials on a GPU only)."""
    trainable_params: int | None = None
    adapter_mb: float | None = None
    device: str | None = None
    run_id: str | None = None
    error: str | None = None
    values: list[float] | None = None
    """Optuna's objective values (complete trials only)."""


R = TypeVar("R", bound=TrialRecord)


def trial_record(trial: FrozenTrial, cls: type[R] = TrialRecord) -> R:  # type: ignore[assignment]
    """The record of a stored trial, as `cls` (TrialRecord or a row type that extends it)."""
    attrs = trial.user_attrs
    state = state_of(trial)
    found: dict[str, Any] = {name: attrs.get(name) for name in keys.RESULTS}
    found.update(
        number=trial.number,
        params=dict(trial.params),
        state=state,
        run_id=attrs.get(keys.RUN_ID),
        error=attrs.get(keys.ERROR),
        values=list(trial.values) if state == "complete" and trial.values else None,
    )
    wanted = {f.name for f in fields(cls)}
    return cls(**{name: value for name, value in found.items() if name in wanted})


# -- one study ---------------------------------------------------------------------------------
@dataclass
class RecordedStudy:
    """A finished (or running) study as recorded in both stores."""

    name: str
    stores: Stores
    study: Any
    """The `optuna.Study` (trials, params, values, user attributes)."""
    tracker: StudyTracker
    """MLflow access; `tracker.parent_run_id` is the study's parent run."""
    spec: Any | None = None
    """The StudySpec when opened from a file, else None (the logged study.yaml has it)."""
    storage: Any = None
    """The Optuna storage the study was opened on."""

    @property
    def metric(self) -> str:
        return str(self.study.user_attrs.get(keys.METRIC, "score"))

    @property
    def baseline_score(self) -> float | None:
        return self.study.user_attrs.get(keys.BASELINE_SCORE)

    def trial(self, number: int) -> FrozenTrial:
        """The stored trial `number`; a user error listing the trials when there is none."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.number == number:
                return trial
        raise self._no_trial(number)

    def trial_run_id(self, number: int) -> str:
        """The MLflow child run of trial `number` (its Optuna attribute, else its run's tags)."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.number == number and keys.RUN_ID in trial.user_attrs:
                return str(trial.user_attrs[keys.RUN_ID])
        found = self.tracker.trial_run(self.name, number)
        if found is None:
            raise self._no_trial(number)
        return found

    def _no_trial(self, number: int) -> AdvisorInputError:
        known = [t.number for t in self.study.get_trials(deepcopy=False)]
        return AdvisorInputError(
            f"study {self.name!r} has no trial {number}",
            where="--trial",
            fix=f"one of {known} or 'best'" if known else "run `advisor tune` first",
        )

    def best_trial_number(self) -> int:
        """The best complete trial by the first objective (the task metric)."""
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        found = best(complete, lambda t: t.values[0] if t.values else None, self.direction)
        if found is None:
            raise AdvisorInputError(
                f"study {self.name!r} has no complete trial",
                where="--trial",
                fix="run `advisor tune` until a trial completes",
            )
        return found.number

    @property
    def direction(self) -> str:
        """The direction of the first objective (the task metric): maximize or minimize."""
        return self.study.directions[0].name.lower()

    def resolve_trial(self, trial: str | int) -> int:
        """`best` or a trial number."""
        if str(trial) == "best":
            return self.best_trial_number()
        try:
            return int(trial)
        except ValueError:
            raise AdvisorInputError(
                f"--trial must be 'best' or a number, got {trial!r}", where="--trial"
            ) from None

    # -- adapters ------------------------------------------------------------------------------
    def trials_with_adapter(self) -> list[int]:
        """Numbers of the complete trials whose run logged an `adapter/` artifact."""
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return [
            t.number
            for t in complete
            if self.tracker.has_artifact(self.trial_run_id(t.number), keys.ADAPTER)
        ]

    def adapter_run(self, trial: int | str) -> tuple[int, str]:
        """(trial number, MLflow run id) of a trial that has an adapter, else a user error
        saying why it has none (pruned, failed, full fine-tuning) and which trials do."""
        number = self.resolve_trial(trial)
        frozen = self.trial(number)
        state = frozen.state.name.lower()
        run_id = self.trial_run_id(number)
        if state != "complete":
            error = frozen.user_attrs.get(keys.ERROR)
            reason = {
                "pruned": "it was pruned (stopped early), so no adapter was saved",
                "fail": "it failed" + (f" ({error})" if error else ""),
            }.get(state, f"its state is {state}")
        elif not self.tracker.has_artifact(run_id, keys.ADAPTER):
            reason = "its run logged no adapter (a `full` fine-tuning trial saves no weights)"
        else:
            return number, run_id
        having = self.trials_with_adapter()
        raise AdvisorInputError(
            f"trial {number} of study {self.name!r} has no adapter: {reason}",
            where="--trial",
            fix=f"pick a trial with an adapter: {having} or 'best'"
            if having
            else "no trial of this study has an adapter yet; run `advisor tune` further",
        )


# -- opening read-only: `report`, `export`, `try` and `rerun` look a study up, and a lookup
# that fails must not leave a store behind (MLflow creates a missing SQLite file, and an
# experiment missing from the store it is given, on first contact).
def refuse_missing_tracking(name: str, tracking_uri: str) -> None:
    """Refuse a `sqlite:///` MLflow store that is not there, before MLflow would create it."""
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise AdvisorInputError(
            f"study {name!r}: there is no MLflow tracking store at {path}",
            where="--tracking-uri",
            fix="give the tracking URI the study was tuned with (its study file's tracking.uri), "
            "or leave --tracking-uri out to use ./mlruns/mlflow.db",
        )


def refuse_foreign_tracking(name: str, parent_run_id: str | None, tracking_uri: str) -> None:
    """Refuse an MLflow store that does not hold the study's parent run: reading the trials'
    runs there would fail, and opening it would add the study's experiment to it."""
    if parent_run_id and run_tags(tracking_uri, str(parent_run_id)) is None:
        raise AdvisorInputError(
            f"the MLflow tracking store {redact_url(tracking_uri)} does not hold study "
            f"{name!r} (its parent run {parent_run_id} is not there)",
            where="--tracking-uri",
            fix="give the tracking URI the study was tuned with (its study file's tracking.uri), "
            "or leave --tracking-uri out to use ./mlruns/mlflow.db",
        )


def _is_study_file(study: str) -> bool:
    return study.endswith((".yaml", ".yml")) or Path(study).is_file()


def open_recorded_study(
    study: str,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    root: Path | None = None,
) -> RecordedStudy:
    """Open a study by name or by study file. Unknown names list the studies that exist."""
    spec = None
    experiment = None
    artifact_root = None
    if _is_study_file(study):
        spec = load_study(study)
        name = spec.name
        storage = storage or spec.storage
        tracking_uri = tracking_uri or spec.tracking.uri
        artifact_root = spec.tracking.artifact_root
        experiment = spec.tracking.experiment
    else:
        name = study
    refuse_missing_store(name, storage, root)
    stores = Stores.resolve(
        optuna_url=storage, tracking_uri=tracking_uri, artifact_root=artifact_root, root=root
    )
    optuna_storage = make_storage(stores.optuna_url)  # the store named first is checked first
    refuse_missing_tracking(name, stores.tracking_uri)
    loaded = load_optuna_study(name, optuna_storage)
    if loaded is None:
        tasks = task_study_names(optuna_storage, name)
        if tasks:
            raise AdvisorInputError(
                f"study {name!r} is a multi-task study with tasks {list(tasks)}: each task is "
                "its own study",
                where="STUDY",
                fix=f"name one task's study (e.g. {next(iter(tasks.values()))}), or give "
                "--task NAME (`advisor try`) or --bundle OUT_DIR (`advisor export`)",
            )
        names = study_names(optuna_storage)
        raise AdvisorInputError(
            f"no study named {name!r} in {redact_url(stores.optuna_url)}",
            where="STUDY",
            fix=f"one of {names}" if names else "run `advisor tune STUDY_FILE` first",
        )
    experiment = experiment or str(loaded.user_attrs.get(keys.EXPERIMENT_NAME, name))
    refuse_foreign_tracking(name, loaded.user_attrs.get(keys.PARENT_RUN), stores.tracking_uri)
    tracker = StudyTracker(stores.tracking_uri, stores.artifact_root, experiment)
    tracker.parent_run_id = loaded.user_attrs.get(keys.PARENT_RUN) or (tracker.find_study_run(name))
    tracker.study_name = name
    return RecordedStudy(
        name=name, stores=stores, study=loaded, tracker=tracker, spec=spec, storage=optuna_storage
    )


# -- multi-task studies ------------------------------------------------------------------------
def task_markers(spec: StudySpec) -> dict[str, str]:
    """`{advisor.umbrella, advisor.task}` for one task's spec, `{}` for any other study: the
    Optuna user attributes and MLflow parent-run tags that find a multi-task study's tasks."""
    if spec.umbrella is None or spec.task is None:
        return {}
    return {keys.UMBRELLA: spec.umbrella, keys.TASK: spec.task}


def task_study_names(optuna_storage: Any, umbrella: str) -> dict[str, str]:
    """{task: its study's name} of the multi-task study `umbrella`, in the order they were
    created (the study file's order); `{}` when no study is marked as one of its tasks."""
    found = {}
    for frozen in sorted(optuna_storage.get_all_studies()):  # FrozenStudy orders by id
        if frozen.user_attrs.get(keys.UMBRELLA) == umbrella and keys.TASK in frozen.user_attrs:
            found[str(frozen.user_attrs[keys.TASK])] = frozen.study_name
    return found


def open_task_studies(
    study: str,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    root: Path | None = None,
) -> dict[str, RecordedStudy]:
    """Each task's recorded study of a multi-task study, by task name (a name or its file).

    A study without tasks, or whose tasks were never tuned, is a user error that says so.
    """
    specs: dict[str, Any] = {}
    if _is_study_file(study):
        spec = load_study(study)
        name = spec.name
        storage, tracking_uri = storage or spec.storage, tracking_uri or spec.tracking.uri
        specs = {task.name: one for task, one in zip(spec.tasks, expand_tasks(spec), strict=True)}
    else:
        name = study
    refuse_missing_store(name, storage, root)
    stores = Stores.resolve(optuna_url=storage, tracking_uri=tracking_uri, root=root)
    refuse_missing_tracking(name, stores.tracking_uri)
    names = task_study_names(make_storage(stores.optuna_url), name)
    if not names:
        raise AdvisorInputError(
            f"study {name!r} has no tuned tasks in {redact_url(stores.optuna_url)}",
            where="STUDY",
            fix="give a study whose file declares `tasks:` and tune it first (`advisor tune "
            "FILE`); for a single-task study leave out --task and --bundle",
        )
    opened = {}
    for task, task_study in names.items():
        opened[task] = open_recorded_study(
            task_study, storage=stores.optuna_url, tracking_uri=stores.tracking_uri, root=root
        )
        opened[task].spec = specs.get(task)
    return opened


__all__ = [
    "RecordedStudy",
    "TrialRecord",
    "open_recorded_study",
    "open_task_studies",
    "state_of",
    "task_markers",
    "task_study_names",
    "trial_record",
]

"""Find a study that `advisor tune` recorded: its Optuna study and its MLflow runs.

`report`, `export`, `try` and `rerun` take a study by name (looked up in the default stores under
`./mlruns/`, or the stores given) or by its study file (whose `storage:`/`tracking:` say where it
lives). This module resolves either into one `RecordedStudy`, and a multi-task study's name
into one `RecordedStudy` per task (`open_task_studies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.tracking import ROLE, STUDY, TRIAL, Stores, StudyTracker


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

    @property
    def metric(self) -> str:
        return str(self.study.user_attrs.get("advisor.metric", "score"))

    @property
    def baseline_score(self) -> float | None:
        return self.study.user_attrs.get("advisor.baseline_score")

    def trial_run_id(self, number: int) -> str:
        """The MLflow child run of trial `number`."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.number == number and "mlflow_run_id" in trial.user_attrs:
                return str(trial.user_attrs["mlflow_run_id"])
        runs = self.tracker.client.search_runs(
            [self.tracker.experiment_id],
            filter_string=f"tags.`{STUDY}` = '{self.name}' and tags.`{TRIAL}` = '{number}'",
        )
        if runs:
            return runs[0].info.run_id
        known = [t.number for t in self.study.get_trials(deepcopy=False)]
        raise AdvisorInputError(
            f"study {self.name!r} has no trial {number}",
            where="--trial",
            fix=f"one of {known}" if known else "run `advisor tune` first",
        )

    def best_trial_number(self) -> int:
        """The best complete trial by the first objective (the task metric)."""
        import optuna

        complete = (optuna.trial.TrialState.COMPLETE,)
        done = [t for t in self.study.get_trials(deepcopy=False, states=complete) if t.values]
        if not done:
            raise AdvisorInputError(
                f"study {self.name!r} has no complete trial",
                where="--trial",
                fix="run `advisor tune` until a trial completes",
            )
        maximise = self.study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
        pick = max if maximise else min
        return pick(done, key=lambda t: t.values[0]).number

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


def _refuse_missing_store(name: str, storage: str | None, root: Path | None) -> None:
    """Refuse before anything is created: opening a SQLite store that is not there would make
    an empty `mlruns/` and database, only to report that the study is not in it."""
    url = storage or f"sqlite:///{(root or Path.cwd()) / 'mlruns' / 'optuna.db'}"
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        raise AdvisorInputError(
            f"no study named {name!r}: there is no Optuna store at {path}",
            where="STUDY",
            fix="run `advisor tune STUDY_FILE` first, or run this command in the folder that "
            "holds the study's mlruns/ (or give the study file, whose storage: says where)",
        )


def open_recorded_study(
    study: str,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    root: Path | None = None,
) -> RecordedStudy:
    """Open a study by name or by study file. Unknown names list the studies that exist."""
    import optuna

    from advisor.optuna_backend import make_storage

    spec = None
    experiment = None
    artifact_root = None
    if study.endswith((".yaml", ".yml")) or Path(study).is_file():
        from advisor.study import load_study

        spec = load_study(study)
        name = spec.name
        storage = storage or spec.storage
        tracking_uri = tracking_uri or spec.tracking.uri
        artifact_root = spec.tracking.artifact_root
        experiment = spec.tracking.experiment
    else:
        name = study
    _refuse_missing_store(name, storage, root)
    stores = Stores.resolve(
        optuna_url=storage, tracking_uri=tracking_uri, artifact_root=artifact_root, root=root
    )
    optuna_storage = make_storage(stores.optuna_url)
    try:
        loaded = optuna.load_study(study_name=name, storage=optuna_storage)
    except KeyError:
        tasks = task_study_names(optuna_storage, name)
        if tasks:
            raise AdvisorInputError(
                f"study {name!r} is a multi-task study with tasks {list(tasks)}: each task is "
                "its own study",
                where="STUDY",
                fix=f"name one task's study (e.g. {next(iter(tasks.values()))}), or give "
                "--task NAME (`advisor try`) or --bundle OUT_DIR (`advisor export`)",
            ) from None
        names = [s.study_name for s in optuna.get_all_study_summaries(optuna_storage)]
        raise AdvisorInputError(
            f"no study named {name!r} in {stores.optuna_url}",
            where="STUDY",
            fix=f"one of {names}" if names else "run `advisor tune STUDY_FILE` first",
        ) from None
    experiment = experiment or _experiment_of(loaded, name)
    tracker = StudyTracker(stores.tracking_uri, stores.artifact_root, experiment)
    tracker.parent_run_id = loaded.user_attrs.get("advisor.mlflow_parent_run_id") or (
        tracker.find_study_run(name)
    )
    tracker.study_name = name
    return RecordedStudy(name=name, stores=stores, study=loaded, tracker=tracker, spec=spec)


def task_study_names(optuna_storage: Any, umbrella: str) -> dict[str, str]:
    """{task: its study's name} of the multi-task study `umbrella`, in the order they were
    created (the study file's order); `{}` when no study is marked as one of its tasks."""
    from advisor.study.tasks import TASK, UMBRELLA

    found = {}
    for frozen in sorted(optuna_storage.get_all_studies()):  # FrozenStudy orders by id
        if frozen.user_attrs.get(UMBRELLA) == umbrella and TASK in frozen.user_attrs:
            found[str(frozen.user_attrs[TASK])] = frozen.study_name
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
    from advisor.optuna_backend import make_storage

    specs: dict[str, Any] = {}
    if study.endswith((".yaml", ".yml")) or Path(study).is_file():
        from advisor.study import load_study
        from advisor.study.tasks import expand_tasks

        spec = load_study(study)
        name = spec.name
        storage, tracking_uri = storage or spec.storage, tracking_uri or spec.tracking.uri
        specs = {task.name: one for task, one in zip(spec.tasks, expand_tasks(spec), strict=True)}
    else:
        name = study
    _refuse_missing_store(name, storage, root)
    stores = Stores.resolve(optuna_url=storage, tracking_uri=tracking_uri, root=root)
    names = task_study_names(make_storage(stores.optuna_url), name)
    if not names:
        raise AdvisorInputError(
            f"study {name!r} has no tuned tasks in {stores.optuna_url}",
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


def _experiment_of(study: Any, name: str) -> str:
    """The MLflow experiment the study logged to (recorded by tune; else the study name)."""
    return str(study.user_attrs.get("advisor.mlflow_experiment_name", name))


def parent_runs(tracker: StudyTracker) -> list[Any]:
    """Every study parent run in the tracker's experiment (newest first)."""
    return list(
        tracker.client.search_runs(
            [tracker.experiment_id],
            filter_string=f"tags.`{ROLE}` = 'study'",
            order_by=["attributes.start_time DESC"],
        )
    )

"""`advisor tune` and `advisor worker`: run a declared study with Optuna, each trial a real
training run in a child process, every trial recorded in MLflow under one parent run.

The flow: load and validate the study file (all errors at once) -> check target_modules against
the model's real module names (`StudyPlan`) -> scan the data -> open the Optuna study (continue
it if it exists) and the MLflow parent run (`prepare`) -> a `Session`: evaluate the untuned
baseline once, then the trial loop (see `advisor.tuning.session`), each trial an `Objective`
call (see `advisor.tuning.objective`).

`tune` is the coordinator (it creates the study); `work` joins one from any process or machine
that reaches the same stores; `advisor serve` only `prepare`s a study, for workers to run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.provenance import git_commit, package_versions
from advisor.redact import redact_url
from advisor.scan import scan_metrics, write_report_files
from advisor.scan.gate import check_study_data, describe_pii
from advisor.stores import keys
from advisor.stores.locations import check_tracking_reachable
from advisor.stores.records import task_markers
from advisor.stores.sampling import grid_size
from advisor.stores.storage import check_same_space, load_study, open_study
from advisor.stores.tracker import StudyTracker
from advisor.study import load_study as load_study_file
from advisor.study.spec import StudySpec
from advisor.study.tasks import expand_tasks

from .plan import StudyPlan
from .session import Session
from .summary import NullObserver, TaskSummaries, TuneObserver, TuneSummary


def tune(
    study_file: str | Path | StudySpec,
    *,
    n_trials: int | None = None,
    observer: TuneObserver | None = None,
    root: Path | None = None,
    python: str = sys.executable,
    keep_workdirs: bool = False,
    enqueue: Sequence[Mapping[str, Any]] = (),
    study_tags: Mapping[str, str] | None = None,
    storage: str | None = None,
    tracking_uri: str | None = None,
) -> TuneSummary:
    """Run (or continue) the study declared in `study_file`; return its summary.

    This is the coordinator: it creates the Optuna study and the MLflow parent run (or reopens
    them), evaluates the untuned baseline once, then works on trials like any `work()` process
    until the study has `n_trials` trials. Re-running continues the study: finished trials are
    not repeated. Ctrl-C (or SIGTERM) stops the running trial, records it FAIL in Optuna (it is
    retried with the same parameters on the next start) and KILLED in MLflow, closes the parent
    run and re-raises KeyboardInterrupt.
    `root` is where the default `mlruns/` stores live (the current directory if None);
    `storage` and `tracking_uri` override the study file's stores (e.g. a shared PostgreSQL).
    `enqueue` fixes the parameters of the first trials of a new study (a rerun of given trials);
    `study_tags` go on the MLflow parent run (e.g. the run a rerun reproduces).
    `study_file` may be a loaded spec (one task of a multi-task study: `tune_tasks`).
    """
    observer = observer or NullObserver()
    started = time.monotonic()
    plan = StudyPlan.load(study_file, root=root, storage=storage, tracking_uri=tracking_uri)
    spec = plan.spec
    check_tracking_reachable(plan.stores.tracking_uri)  # before the study is created
    data_report = check_study_data(spec)  # personal data refused unless data.allow_pii
    study, tracker = prepare(
        plan, data_report, n_trials=n_trials, enqueue=enqueue, study_tags=study_tags
    )
    session = Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=True)
    if spec.data.allow_pii and (note := describe_pii(data_report)):
        session.notes.append(f"{note} (allowed by data.allow_pii)")
    return session.run(started)


def prepare(
    plan: StudyPlan,
    data_report: Any,
    *,
    n_trials: int | None = None,
    enqueue: Sequence[Mapping[str, Any]] = (),
    study_tags: Mapping[str, str] | None = None,
    marks: Mapping[str, Any] | None = None,
) -> tuple[Any, StudyTracker]:
    """Create (or reopen) the study in both stores so that workers can join it.

    The set-up half of `tune`, shared with `advisor serve`, which prepares a submitted study and
    leaves every training run to workers. `data_report` is `check_study_data`'s scan (logged on
    the parent run); `marks` are extra study attributes (a served study's pending baseline),
    set before the parent run id, which workers wait for.
    """
    spec = plan.spec
    study = open_study(
        name=spec.name,
        storage=plan.storage(),
        directions=plan.directions,
        sampler=plan.sampler(),
        pruner=plan.pruner(),
        user_attrs={
            keys.METRIC: plan.metric,
            keys.OBJECTIVES: plan.objectives,
            **task_markers(spec),
        },
        params=plan.params,
    )
    target = n_trials if n_trials is not None else spec.optuna.n_trials
    if spec.optuna.sampler == "grid":
        target = min(target, grid_size(plan.params))
    study.set_user_attr(keys.N_TRIALS, target)
    if enqueue and not study.get_trials(deepcopy=False):
        for params in enqueue:
            study.enqueue_trial(dict(params))

    tracker = StudyTracker(
        plan.stores.tracking_uri,
        plan.stores.artifact_root,
        plan.experiment,
        system_metrics_s=plan.spec.tracking.system_metrics_s,
    )
    tracker.start_study(
        spec.name,
        spec_yaml=plan.spec_yaml,
        spec_hash=plan.spec_hash,
        data_hashes=plan.data_hashes,
        seed=spec.seed,
        versions=package_versions(),
        git_commit=git_commit(plan.spec_path.parent),
        optuna_url=plan.stores.optuna_url,
        params={"study": spec.name, "metric": plan.metric, "method": plan.method},
        extra_tags={**task_markers(spec), **(study_tags or {})},
    )
    _log_data_scan(tracker, data_report)
    study.set_user_attr(keys.EXPERIMENT_ID, tracker.experiment_id)
    study.set_user_attr(keys.EXPERIMENT_NAME, plan.experiment)
    study.set_user_attr(keys.TRACKING_URI, redact_url(plan.stores.tracking_uri))
    study.set_user_attr(keys.SPEC_HASH, plan.spec_hash)
    for key, value in (marks or {}).items():
        study.set_user_attr(key, value)
    study.set_user_attr(keys.PARENT_RUN, tracker.parent_run_id)  # last: workers wait for it
    return study, tracker


def tune_tasks(study_file: str | Path, **options: Any) -> TaskSummaries:
    """Tune each task of a multi-task study in turn, each as its own study `<study>.<task>`.

    Same stores and budget for every task (`options` are `tune`'s, `n_trials` per task). Ctrl-C
    stops in the running task; the same call continues it, then tunes the tasks after it.
    """
    return _each_task(study_file, tune, options)


def work_tasks(study_file: str | Path, **options: Any) -> TaskSummaries:
    """Join each task's study of a multi-task study in turn (`work`'s options)."""
    return _each_task(study_file, work, options)


def _each_task(
    study_file: str | Path, job: Callable[..., TuneSummary], options: dict[str, Any]
) -> TaskSummaries:
    spec = load_study_file(study_file)
    if not spec.tasks:
        raise AdvisorInputError(
            f"study {spec.name!r} declares no tasks", where="tasks", fix="tune it with `tune`"
        )
    summaries = TaskSummaries(study=spec.name, tasks={})
    for task, task_spec in zip(spec.tasks, expand_tasks(spec), strict=True):
        summaries.tasks[task.name] = job(task_spec, **options)
    return summaries


def _log_data_scan(tracker: StudyTracker, report: Any) -> None:
    """The data scan on the parent run: report files under data_scan/, headline metrics."""
    with tempfile.TemporaryDirectory() as folder:
        tracker.log_artifacts_to_parent(
            write_report_files(report, folder), artifact_path=keys.DATA_SCAN
        )
    tracker.log_metrics(tracker.parent_run_id, scan_metrics(report))


def work(
    study_file: str | Path | StudySpec,
    *,
    observer: TuneObserver | None = None,
    root: Path | None = None,
    python: str = sys.executable,
    keep_workdirs: bool = False,
    storage: str | None = None,
    tracking_uri: str | None = None,
    wait_s: float = 120.0,
) -> TuneSummary:
    """Join a study that `tune` started and run its trials until the study's budget is spent.

    A worker never creates the study, its MLflow experiment or its parent run, and never runs
    the baseline: it waits up to `wait_s` seconds for the coordinator to create them, then asks
    for trials under the storage's ask lock (see `advisor.stores.coordination`), so any number
    of workers on any number of machines share one budget without duplicating a trial.
    """
    observer = observer or NullObserver()
    started = time.monotonic()
    plan = StudyPlan.load(study_file, root=root, storage=storage, tracking_uri=tracking_uri)
    check_tracking_reachable(plan.stores.tracking_uri)
    study, parent_run_id = _wait_for_study(plan, wait_s)
    tracker = StudyTracker(
        plan.stores.tracking_uri,
        plan.stores.artifact_root,
        plan.experiment,
        system_metrics_s=plan.spec.tracking.system_metrics_s,
    )
    tracker.join_study(plan.spec.name, parent_run_id)
    session = Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=False)
    return session.run(started)


def _wait_for_study(plan: StudyPlan, wait_s: float) -> tuple[Any, str]:
    """Load the coordinator's study once it has a parent run; refuse a mismatched study file."""
    storage = plan.storage()
    deadline = time.monotonic() + wait_s
    while True:
        study = load_study(plan.spec.name, storage, sampler=plan.sampler(), pruner=plan.pruner())
        parent = study.user_attrs.get(keys.PARENT_RUN) if study is not None else None
        if parent:
            break
        if time.monotonic() >= deadline:
            raise AdvisorInputError(
                f"study {plan.spec.name!r} does not exist in {redact_url(plan.stores.optuna_url)} "
                f"(waited {wait_s:g} s)",
                where="storage",
                fix="start it first with `advisor tune FILE` on the same storage (a worker only "
                "joins a study), or raise --wait",
            )
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    stored = [d.name.lower() for d in study.directions]
    if stored != [d.lower() for d in plan.directions]:
        raise AdvisorInputError(
            f"study {plan.spec.name!r} was created with directions {stored}, the study file "
            f"asks for {plan.directions}",
            where="objectives",
            fix="give workers the same study file as the coordinator",
        )
    check_same_space(study, plan.params)
    return study, str(parent)

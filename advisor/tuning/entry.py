"""`advisor tune` and `advisor worker`: run a declared study with Optuna, each trial a real
training run in a child process, every trial recorded in MLflow under one parent run.

The flow: load and validate the study file (all errors at once) -> the checks before training
that `advisor validate` runs too (`StudyPlan` -> `advisor.study.preflight`: target modules
against the model's real module names, data layouts, the chat template) -> check the stores ->
scan the data -> open the Optuna study (continue it if it exists) and the MLflow parent run
(`prepare`) -> a `Session`: evaluate the untuned baseline once, then the trial loop (see
`advisor.tuning.session`), each trial an `Objective` call (see `advisor.tuning.objective`).

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

from advisor.decide.evidence import Question, past_points
from advisor.decide.shapes import resolve_model
from advisor.errors import AdvisorInputError
from advisor.provenance import git_commit, package_versions
from advisor.redact import redact_url
from advisor.scan import scan_metrics, write_report_files
from advisor.scan.gate import check_study_data, describe_pii
from advisor.stores import keys
from advisor.stores.coordination import ask_lock, worker_id
from advisor.stores.creation import check_stores
from advisor.stores.creation import exists as store_exists
from advisor.stores.evidence import studies_in
from advisor.stores.locations import check_tracking_reachable
from advisor.stores.records import task_markers
from advisor.stores.sampling import grid_size
from advisor.stores.storage import check_same_space, load_study, open_study
from advisor.stores.tracker import StudyTracker
from advisor.study import load_study as load_study_file
from advisor.study.loading import spec_content
from advisor.study.spec import StudySpec
from advisor.study.tasks import expand_tasks

from . import joining
from .plan import StudyPlan, warm_start_points
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
    continue_changed: bool = False,
) -> TuneSummary:
    """Run (or continue) the study declared in `study_file`; return its summary.

    This is the coordinator: it creates the Optuna study and the MLflow parent run (or reopens
    them), evaluates the untuned baseline once, then works on trials like any `work()` process
    until the study has `n_trials` trials. Re-running continues the study: finished trials are
    not repeated; a study file that changes the stored study is refused, showing what differs,
    unless `continue_changed`. While another `tune` of the same study runs, this one joins it
    as a worker (its own sampler seed, the same budget) instead of coordinating it twice.
    Ctrl-C (or SIGTERM) stops the running trial, records it FAIL in Optuna (it is retried with
    the same parameters on the next start) and KILLED in MLflow, closes the parent run and
    re-raises KeyboardInterrupt.
    `root` is where the default `mlruns/` stores live (the current directory if None);
    `storage` and `tracking_uri` override the study file's stores (e.g. a shared PostgreSQL).
    `enqueue` fixes the parameters of the first trials of a new study (a rerun of given trials);
    without it, a new study with `optuna.warm_start` starts from `plan.warm_start_points`;
    `study_tags` go on the MLflow parent run (e.g. the run a rerun reproduces).
    `study_file` may be a loaded spec (one task of a multi-task study: `tune_tasks`).
    """
    observer = observer or NullObserver()
    started = time.monotonic()
    plan = StudyPlan.load(study_file, root=root, storage=storage, tracking_uri=tracking_uri)
    spec = plan.spec
    check_stores(plan.stores.optuna_url, plan.stores.tracking_uri)  # before either is opened
    check_tracking_reachable(plan.stores.tracking_uri)  # before the study is created
    data_report = check_study_data(spec)  # personal data refused unless data.allow_pii
    notes = []
    if spec.data.allow_pii and (note := describe_pii(data_report)):
        notes.append(f"{note} (allowed by data.allow_pii)")
    existing = load_study(spec.name, plan.storage())
    if existing is not None:  # refused before anything is written, the ask lock's file too
        check_same_space(existing, plan.params)
        notes += _same_study(plan, existing, continue_changed=continue_changed)
    slot: int | None = None
    # One process at a time decides what it is to the study (two `tune`s may start at once).
    with ask_lock(plan.storage(), spec.name)():
        existing = load_study(spec.name, plan.storage())
        coordinator = joining.live_coordinator(existing) if existing is not None else None
        if coordinator is not None:
            slot = joining.claim_slot(existing)
            notes.append(
                f"study {spec.name!r} is being tuned by {coordinator}: this process joins it as "
                "a worker (a sampler seed of its own, the study's one budget)"
            )
        else:
            study, tracker = prepare(
                plan, data_report, n_trials=n_trials, enqueue=enqueue, study_tags=study_tags
            )
            study.set_user_attr(keys.COORDINATOR, worker_id())
    if slot is not None:
        session = _worker_session(plan, slot, observer, python, keep_workdirs)
        session.notes += notes
        return session.run(started)
    session = Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=True)
    session.notes += notes
    try:
        return session.run(started)
    finally:
        joining.release(study)


def _changes(plan: StudyPlan, study: Any) -> list[str] | None:
    """What the study file changes against the stored study (`joining.study_changes`), read
    from the study file logged in MLflow when the tracking store is there: nothing is created
    to look."""
    tracker = None
    if store_exists(plan.stores.tracking_uri):
        tracker = StudyTracker(plan.stores.tracking_uri, plan.stores.artifact_root, plan.experiment)
    return joining.study_changes(plan, study, tracker)


def _same_study(plan: StudyPlan, existing: Any, *, continue_changed: bool) -> list[str]:
    """Refuse a study file that changes the stored study, unless the user asked to continue it
    anyway (then a note says what changed). The logged study file shows what differs; without
    a tracking store (nothing is created to look) the fingerprints do."""
    changes = _changes(plan, existing)
    if changes is None:
        return []
    if not continue_changed:
        raise joining.refusal(plan.spec.name, changes, worker=False)
    return [f"continuing study {plan.spec.name!r} with a changed study file: {'; '.join(changes)}"]


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
    if not study.get_trials(deepcopy=False):  # a new study: its first trials may be given
        if enqueue:  # a rerun's trials, exactly: no warm start beside them
            for params in enqueue:
                study.enqueue_trial(dict(params))
        else:
            past = _past_points(plan, data_report) if spec.optuna.warm_start else []
            for params, source in warm_start_points(spec, past=past):
                study.enqueue_trial(params, user_attrs={keys.WARM_START: source})

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
    study.set_user_attr(keys.SPEC_CONTENT, spec_content(plan.spec))
    for key, value in (marks or {}).items():
        study.set_user_attr(key, value)
    study.set_user_attr(keys.PARENT_RUN, tracker.parent_run_id)  # last: workers wait for it
    return study, tracker


def _past_points(plan: StudyPlan, data_report: Any) -> list[tuple[dict[str, Any], str]]:
    """The best points of similar studies already in this study's stores (the evidence reader
    `advisor recommend` uses, weighed the same way: same model, method, data size and data
    weigh most), for the warm start after the study file's own point. A store that cannot be
    read for evidence starts the study without it (said on stderr), never stops it."""
    spec = plan.spec
    try:
        tracking = plan.stores.tracking_uri if store_exists(plan.stores.tracking_uri) else None
        studies = studies_in(plan.storage(), tracking)
    except Exception as error:  # evidence is advice: the study runs without it
        print(f"advisor: warm start without past studies ({error})", file=sys.stderr)
        return []
    if not studies:
        return []
    try:
        num_params = resolve_model(spec.model.source).num_params
    except (AdvisorInputError, OSError, ValueError, KeyError):
        num_params = None
    train_rows = data_report.files[0].rows if data_report is not None and data_report.files else 0
    if len(spec.methods()) == 1:
        question = Question(
            spec.model.source, num_params, spec.method, train_rows, plan.data_hashes.get("train")
        )
        return past_points(studies, question, exclude=spec.name)
    points = []  # a searched method: each method's evidence, its points marked with it
    for method in spec.methods():
        question = Question(
            spec.model.source, num_params, method, train_rows, plan.data_hashes.get("train")
        )
        for point, source in past_points(studies, question, exclude=spec.name):
            points.append(({"method": method, **point}, source))
    return points


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

    A worker never creates the stores, the study, its MLflow experiment or its parent run, and
    never runs the baseline: it waits up to `wait_s` seconds for the coordinator to create
    them, then asks for trials under the storage's ask lock (see `advisor.stores.coordination`),
    so any number of workers on any number of machines share one budget without duplicating a
    trial. Each worker's sampler gets a seed of its own (`joining.claim_slot`).
    """
    observer = observer or NullObserver()
    started = time.monotonic()
    plan = StudyPlan.load(study_file, root=root, storage=storage, tracking_uri=tracking_uri)
    check_stores(plan.stores.optuna_url, plan.stores.tracking_uri)
    check_tracking_reachable(plan.stores.tracking_uri)
    study = _wait_for_study(plan, wait_s)
    with ask_lock(plan.storage(), plan.spec.name)():
        slot = joining.claim_slot(study)
    return _worker_session(plan, slot, observer, python, keep_workdirs).run(started)


def _worker_session(
    plan: StudyPlan, slot: int, observer: TuneObserver, python: str, keep_workdirs: bool
) -> Session:
    """A worker's session on the coordinator's study, its sampler seeded for `slot`."""
    study = load_study(
        plan.spec.name, plan.storage(), sampler=plan.sampler(slot), pruner=plan.pruner()
    )
    tracker = StudyTracker(
        plan.stores.tracking_uri,
        plan.stores.artifact_root,
        plan.experiment,
        system_metrics_s=plan.spec.tracking.system_metrics_s,
    )
    tracker.join_study(plan.spec.name, str(study.user_attrs[keys.PARENT_RUN]))
    return Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=False)


def _wait_for_study(plan: StudyPlan, wait_s: float) -> Any:
    """The coordinator's study once it has a parent run; a study file that is not the one the
    study was started with is refused. Nothing is created while waiting: not even the SQLite
    store's file, which the coordinator makes."""
    deadline = time.monotonic() + wait_s
    while True:
        study = None
        if store_exists(plan.stores.optuna_url):
            study = load_study(plan.spec.name, plan.storage())
        if study is not None and study.user_attrs.get(keys.PARENT_RUN):
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
    changes = _changes(plan, study)
    if changes is not None:
        raise joining.refusal(plan.spec.name, changes, worker=True)
    return study

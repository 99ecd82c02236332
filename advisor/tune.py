"""`advisor tune`: run a declared study with Optuna, each trial a real training run in a child
process, every trial recorded in MLflow under one parent run.

The flow: load and validate the study file (all errors at once) -> check target_modules against
the model's real module names -> open the Optuna study (continue it if it exists) and the MLflow
parent run -> evaluate the untuned baseline once -> the trial loop: under the storage's ask lock,
check the study's budget and ask for a trial; then sample its parameters, resolve a TrialConfig,
open its MLflow child run, run the runner process under a heartbeat (it reports eval losses for
pruning) and tell Optuna the result.

`tune` is the coordinator (it creates the study); `work` joins one from any process or machine
that reaches the same stores. Both run the same loop; `advisor.coordination` explains why the
loop is advisor's own and not `study.optimize()`.

Pruning: the runner reports eval loss, where lower is better. Optuna's pruners compare
intermediate values in the study's direction, so a study that maximises a task metric is fed
`-eval_loss`. Pruning is single-objective in Optuna; multi-objective studies do not prune.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor import stopping
from advisor.errors import AdvisorInputError
from advisor.optuna_backend import Param
from advisor.provenance import file_sha256, git_commit, package_versions
from advisor.redact import redact_url
from advisor.tracking import Stores, StudyTracker, check_tracking_reachable
from advisor.trial_process import TrialLimits
from advisor.trials import (
    NullObserver,
    TrialFailedError,
    TrialRow,
    TuneObserver,
    TuneSummary,
    derived_costs,
    objective_value,
    row_from_frozen,
    stop_reason,
)
from runners.config import TrialConfig, TrialResult

if TYPE_CHECKING:  # pragma: no cover
    from advisor.study.spec import StudySpec

TARGET_ATTR = "advisor.n_trials"
"""Study user attribute: the total trials wanted, set by `tune`, read by every worker."""
PARENT_ATTR = "advisor.mlflow_parent_run_id"
SPEC_HASH_ATTR = "advisor.spec_hash"
"""Study user attribute: the spec hash of the study file that prepared the study."""
SERVED_ATTR = "advisor.served"
"""Study user attribute: True when `advisor serve` prepared the study (no coordinator runs it)."""
BASELINE_ATTR = "advisor.baseline"
"""Study user attribute of a served study: `pending`, then `claimed:<host:pid>` while the worker
that claimed it evaluates the baseline, then `done`."""
STOP_ATTR = "advisor.stop_requested"
"""Study user attribute: set by `POST /v1/studies/{name}/stop`; workers start no new trial."""
_STOP_NOTE = "stop requested (POST /v1/studies/NAME/stop): no new trial starts; running ones finish"


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
    from advisor.scan.gate import check_study_data, describe_pii

    observer = observer or NullObserver()
    started = time.monotonic()
    plan = StudyPlan.load(study_file, root=root, storage=storage, tracking_uri=tracking_uri)
    spec = plan.spec
    check_tracking_reachable(plan.stores.tracking_uri)  # before the study is created
    data_report = check_study_data(spec)  # personal data refused unless data.allow_pii
    study, tracker = prepare(
        plan, data_report, n_trials=n_trials, enqueue=enqueue, study_tags=study_tags
    )
    session = _Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=True)
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
    from advisor import optuna_backend as ob
    from advisor.study.tasks import task_markers

    spec = plan.spec
    study = ob.open_study(
        name=spec.name,
        storage=plan.storage(),
        directions=plan.directions,
        sampler=plan.sampler(),
        pruner=plan.pruner(),
        user_attrs={
            "advisor.metric": plan.metric,
            "advisor.objectives": plan.objectives,
            **task_markers(spec),
        },
        params=plan.params,
    )
    target = n_trials if n_trials is not None else spec.optuna.n_trials
    if spec.optuna.sampler == "grid":
        target = min(target, ob.grid_size(plan.params))
    study.set_user_attr(TARGET_ATTR, target)
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
    study.set_user_attr("advisor.mlflow_experiment_id", tracker.experiment_id)
    study.set_user_attr("advisor.mlflow_experiment_name", plan.experiment)
    study.set_user_attr("advisor.mlflow_tracking_uri", redact_url(plan.stores.tracking_uri))
    study.set_user_attr(SPEC_HASH_ATTR, plan.spec_hash)
    for key, value in (marks or {}).items():
        study.set_user_attr(key, value)
    study.set_user_attr(PARENT_ATTR, tracker.parent_run_id)  # last: workers wait for it
    return study, tracker


@dataclass
class TaskSummaries:
    """What `tune_tasks` and `work_tasks` return: one summary per task, in declaration order."""

    study: str
    tasks: dict[str, TuneSummary]

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "tasks": {k: v.to_dict() for k, v in self.tasks.items()}}


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
    from advisor.study import load_study
    from advisor.study.tasks import expand_tasks

    spec = load_study(study_file)
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
    from advisor.scan import scan_metrics, write_report_files

    with tempfile.TemporaryDirectory() as folder:
        tracker.log_artifacts_to_parent(
            write_report_files(report, folder), artifact_path="data_scan"
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
    for trials under the storage's ask lock (see `advisor.coordination`), so any number of
    workers on any number of machines share one budget without duplicating a trial.
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
    return _Session(plan, study, tracker, observer, python, keep_workdirs, coordinator=False).run(
        started
    )


def _wait_for_study(plan: StudyPlan, wait_s: float) -> tuple[Any, str]:
    """Load the coordinator's study once it has a parent run; refuse a mismatched study file."""
    import optuna

    from advisor import optuna_backend as ob

    storage = plan.storage()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            study = optuna.load_study(
                study_name=plan.spec.name,
                storage=storage,
                sampler=plan.sampler(),
                pruner=plan.pruner(),
            )
        except KeyError:
            study = None
        parent = study.user_attrs.get(PARENT_ATTR) if study is not None else None
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
    ob.check_same_space(study, plan.params)
    return study, str(parent)


class _Session:
    """One process working on a study: reconcile, (baseline), the trial loop, close."""

    def __init__(
        self,
        plan: StudyPlan,
        study: Any,
        tracker: StudyTracker,
        observer: TuneObserver,
        python: str,
        keep_workdirs: bool,
        *,
        coordinator: bool,
    ) -> None:
        self.plan, self.study, self.tracker, self.observer = plan, study, tracker, observer
        self.python, self.keep, self.coordinator = python, keep_workdirs, coordinator
        self.served = bool(study.user_attrs.get(SERVED_ATTR))
        self.notes: list[str] = []

    def run(self, started: float) -> TuneSummary:
        from advisor import coordination as co

        plan, study, tracker = self.plan, self.study, self.tracker
        co.fail_dead_local(study)
        co.reap_stale(study)
        self._reconcile()
        summary = TuneSummary(
            study=plan.spec.name,
            metric=plan.metric,
            directions=plan.directions,
            objectives=plan.objectives,
            stores={k: redact_url(v) for k, v in asdict(plan.stores).items()},
            parent_run_id=tracker.parent_run_id,
            rows=[row_from_frozen(t) for t in study.get_trials(deepcopy=False)],
            baseline_score=study.user_attrs.get("advisor.baseline_score"),
            notes=list(self.notes),
        )
        if study.user_attrs.get(STOP_ATTR):  # shown as the worker starts, not only at its end
            summary.notes.append(_STOP_NOTE)
        target = int(study.user_attrs.get(TARGET_ATTR, plan.spec.optuna.n_trials))
        used = co.budget_used(study)
        summary.skipped_finished = used
        self.observer.study_started(summary, plan.spec.train.max_steps, max(0, target - used))

        status, outcome = "FINISHED", "interrupted"
        try:
            if self.coordinator:
                summary.baseline_score = _ensure_baseline(
                    plan, tracker, study, self.observer, self.python
                )
            elif self._claim_baseline():
                summary.baseline_score = self._served_baseline()
            objective = _Objective(plan, tracker, summary, self.observer, self.python, self.keep)
            outcome = self._loop(objective, target, started)
        except KeyboardInterrupt:
            summary.interrupted = True
            status = "KILLED"
            raise
        finally:
            # A served study has no coordinator: the last worker out closes its parent run.
            last_out = self.served and outcome in ("done", "stopped")
            last_out = last_out and not co.running_elsewhere(study)
            end_parent = self.coordinator or last_out
            _close(summary, study, tracker, status, started, end_parent=end_parent)
        if outcome == "stopped" and _STOP_NOTE not in summary.notes:
            summary.notes.append(_STOP_NOTE)
        if self.coordinator or (last_out and outcome == "done"):
            summary.registered_model = _register_best(plan.spec, plan, study, tracker)
        return summary

    def _claim_baseline(self) -> bool:
        """Whether this worker evaluates a served study's baseline (exactly one worker does).

        `tune` runs the baseline as the coordinator; a served study has none, so the first
        worker to see it pending claims it under the ask lock. A claim by a process on this
        machine that no longer exists (kill -9) is taken over; a stopped study gets none.
        """
        from advisor import coordination as co

        if not self.served:
            return False
        with co.ask_lock(self.study._storage, self.plan.spec.name)():
            attrs = self.study.user_attrs
            state = str(attrs.get(BASELINE_ATTR, ""))
            if attrs.get(STOP_ATTR) or not (state == "pending" or _dead_local_claim(state)):
                return False
            self.study.set_user_attr(BASELINE_ATTR, f"claimed:{co.worker_id()}")
        return True

    def _served_baseline(self) -> float | None:
        """Run the claimed baseline; an interrupted one goes back to `pending` for the next."""
        done = False
        try:
            plan, observer = self.plan, self.observer
            score = _ensure_baseline(plan, self.tracker, self.study, observer, self.python)
            done = True
            return score
        finally:
            self.study.set_user_attr(BASELINE_ATTR, "done" if done else "pending")

    def _reconcile(self) -> None:
        """Close MLflow runs whose trial no longer runs (a killed worker leaves them RUNNING).

        Workers leave baseline runs alone: the coordinator may be evaluating it right now.
        """
        running = [t.number for t in self.study.get_trials(deepcopy=False) if _is_running(t)]
        roles = ("trial", "baseline") if self.coordinator else ("trial",)
        self.tracker.reconcile(running, roles=roles)

    def _loop(self, objective: _Objective, target: int, started: float) -> str:
        """Ask, run, tell until the study's budget is spent (by all workers together).

        With the budget spent, a worker stays until no other worker's trial is running: one of
        them may die, and its retry must still run (the last worker out runs it). Returns why
        it ended: `done` (budget spent), `stopped` (STOP_ATTR set: no new trial is asked for,
        running ones finish) or `timeout` (optuna.timeout_s).
        """
        from advisor import coordination as co

        study = self.study
        lock = co.ask_lock(study._storage, self.plan.spec.name)
        timeout = self.plan.spec.optuna.timeout_s
        me = co.worker_id()
        while timeout is None or time.monotonic() - started < timeout:
            stopping.check()  # Ctrl-C/SIGTERM between trials: stop before asking for another
            with lock():
                if co.reap_stale(study):
                    self._reconcile()
                if study.user_attrs.get(STOP_ATTR):
                    return "stopped"
                if not co.has_waiting(study) and co.budget_used(study) >= target:
                    if not co.running_elsewhere(study):
                        return "done"
                    trial = None  # another worker's trial may still die and need a retry
                else:
                    with warnings.catch_warnings():
                        # "Heartbeat ... supposed to be used with Study.optimize": this loop
                        # beats and reaps itself (advisor.coordination).
                        warnings.filterwarnings("ignore", message="Heartbeat of storage")
                        trial = study.ask()
                    trial.set_user_attr(co.WORKER_ATTR, me)
            if trial is None:
                time.sleep(self.plan.spec.optuna.heartbeat_interval)
                continue
            _run_one(study, trial, objective)
        return "timeout"


def _dead_local_claim(state: str) -> bool:
    """Whether a `claimed:<host:pid>` baseline claim is held by a gone process on this host."""
    import os
    import socket

    host, _, pid = state.removeprefix("claimed:").rpartition(":")
    if not state.startswith("claimed:") or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _is_running(trial: Any) -> bool:
    return trial.state.name == "RUNNING"


def _run_one(study: Any, trial: Any, objective: _Objective) -> None:
    """One trial under a heartbeat, told to Optuna whatever happens to it."""
    import optuna

    from advisor import coordination as co

    state, values = None, None
    with co.heartbeat(study._storage, trial._trial_id):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            state = optuna.trial.TrialState.PRUNED
        except TrialFailedError:
            state = optuna.trial.TrialState.FAIL
        except BaseException:  # Ctrl-C, SIGTERM, a bug: fail it, retry it on the next start
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            co.enqueue_retry(study, study._storage.get_trial(trial._trial_id))
            raise
    study.tell(trial, values, state=state)


def _register_best(spec: Any, plan: StudyPlan, study: Any, tracker: StudyTracker) -> str | None:
    """Register the best trial's adapter in the MLflow model registry (once per best run).

    A continued study whose best trial did not change adds no new version.
    """
    from advisor.export import adapter_run, register_best
    from advisor.records import RecordedStudy

    recorded = RecordedStudy(
        name=spec.name, stores=plan.stores, study=study, tracker=tracker, spec=spec
    )
    try:
        _, run_id = adapter_run(recorded, "best")
    except AdvisorInputError:  # nothing completed, or the best trial has no adapter (full)
        return None
    model_name = f"{spec.name}-adapter"
    for version in tracker.client.search_model_versions(f"name = '{model_name}'"):
        if version.run_id == run_id:
            return f"{model_name}/{version.version}"
    name, version = register_best(recorded, name=model_name)
    return f"{name}/{version}"


def _close(
    summary: TuneSummary,
    study: Any,
    tracker: StudyTracker,
    status: str,
    started: float,
    *,
    end_parent: bool = True,
) -> None:
    """Fill the summary from the storage; the coordinator also closes the parent run."""
    summary.rows = [row_from_frozen(t) for t in study.get_trials(deepcopy=False)]
    if summary.baseline_score is not None:
        for row in summary.rows:
            if row.score is not None:
                row.gain = row.score - summary.baseline_score
    try:
        summary.best = [t.number for t in study.best_trials]
    except (ValueError, RuntimeError):
        summary.best = []
    summary.elapsed_seconds = time.monotonic() - started
    scores = [r.score for r in summary.rows if r.state == "complete" and r.score is not None]
    pick = max if summary.directions[0] == "maximize" else min
    if not end_parent:
        return
    tracker.end_study(
        status,
        summary={
            "baseline_score": summary.baseline_score,
            "best_score": pick(scores) if scores else None,
            "n_complete": float(sum(r.state == "complete" for r in summary.rows)),
            "n_pruned": float(sum(r.state == "pruned" for r in summary.rows)),
            "n_failed": float(sum(r.state == "failed" for r in summary.rows)),
        },
    )


@dataclass
class StudyPlan:
    """Everything derived from the study file once, before any trial runs."""

    spec: Any
    spec_path: Path
    stores: Stores
    params: list[Param]
    available_modules: list[str] | None
    metric: str
    method: str
    objectives: list[str]
    directions: list[str]
    price_per_hour: float
    experiment: str
    spec_yaml: str
    spec_hash: str
    data_hashes: dict[str, str]
    n_startup: int
    limits: TrialLimits

    @classmethod
    def load(
        cls,
        study_file: str | Path | StudySpec,
        *,
        root: Path | None = None,
        storage: str | None = None,
        tracking_uri: str | None = None,
    ) -> StudyPlan:
        """Load and check the study file (or take a loaded spec, which it then changes);
        `storage`/`tracking_uri` override its stores."""
        from advisor.study import load_study
        from advisor.study.spec import StudySpec

        if isinstance(study_file, StudySpec):
            spec, spec_path = study_file, Path(study_file.source_file or ".")
        else:
            spec_path = Path(study_file)
            spec = load_study(spec_path)
        if spec.tasks:
            raise AdvisorInputError(
                f"study {spec.name!r} declares tasks {[t.name for t in spec.tasks]}: each is "
                "tuned as its own study",
                where="tasks",
                fix="tune it with `advisor tune FILE` (advisor.tune.tune_tasks / work_tasks)",
            )
        if storage:
            spec.storage = storage
        if tracking_uri:
            spec.tracking.uri = tracking_uri
        return cls.build(spec, spec_path, root=root)

    @classmethod
    def build(cls, spec: Any, spec_path: Path, root: Path | None = None) -> StudyPlan:
        """Check the model's module names and resolve stores, objectives and hashes."""
        from advisor import study as study_mod

        available = study_mod.check_model_modules(spec)
        stores = Stores.resolve(
            optuna_url=spec.storage,
            tracking_uri=spec.tracking.uri,
            artifact_root=spec.tracking.artifact_root,
            root=root,
        )
        objectives, directions = objectives_of(spec)
        return cls(
            spec=spec,
            spec_path=spec_path,
            stores=stores,
            params=study_mod.search_parameters(spec),
            available_modules=available,
            metric=spec.metric,
            method=spec.method,
            objectives=objectives,
            directions=directions,
            price_per_hour=float(spec.cost.price_per_hour),
            experiment=spec.tracking.experiment or spec.name,
            spec_yaml=study_mod.dump_resolved(spec),
            spec_hash=study_mod.spec_hash(spec),
            data_hashes={
                "train": file_sha256(spec.data.train),
                "eval": file_sha256(spec.data.eval),
                **({"replay": file_sha256(spec.data.replay.path)} if spec.data.replay else {}),
            },
            n_startup=int(spec.optuna.n_startup_trials),
            limits=TrialLimits(
                timeout_s=spec.trial.timeout_s, max_memory_gb=spec.trial.max_memory_gb
            ),
        )

    def storage(self) -> Any:
        """The Optuna storage, with the study's heartbeat and retry settings."""
        from advisor import optuna_backend as ob

        opt = self.spec.optuna
        return ob.make_storage(
            self.stores.optuna_url,
            heartbeat_interval=opt.heartbeat_interval,
            grace_period=opt.grace_period,
            max_retry=opt.max_retry,
        )

    def sampler(self) -> Any:
        from advisor import optuna_backend as ob

        return ob.make_sampler(
            self.spec.optuna.sampler,
            self.params,
            seed=self.spec.seed,
            n_startup_trials=self.n_startup,
        )

    def pruner(self) -> Any:
        from advisor import optuna_backend as ob

        return ob.make_pruner(
            self.spec.optuna.pruner,
            n_startup_trials=self.n_startup,
            max_steps=self.spec.train.max_steps,
            eval_steps=self.spec.train.eval_steps,
        )


def objectives_of(spec: Any) -> tuple[list[str], list[str]]:
    """Objective names as tune records them (`score`, or `eval_loss` when that is the metric,
    then the cost) and the spec's Optuna directions."""
    first = "eval_loss" if spec.metric == "eval_loss" else "score"
    return [first, *spec.objectives[1:]], spec.directions()


def _new_workdir(study: str, label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"advisor-{study}-{label}-"))


def _result_files(result: TrialResult, workdir: Path) -> list[Path]:
    files = [workdir / "trial.log"]
    if result.adapter_dir:
        files.append(Path(result.adapter_dir))
    if result.generations_path:
        files.append(Path(result.generations_path))
    return files


def _ensure_baseline(
    plan: StudyPlan, tracker: StudyTracker, study: Any, observer: TuneObserver, python: str
) -> float | None:
    """Evaluate the untuned base model once per study; reuse the recorded result after that."""
    from advisor.study import resolve_trial_config

    found = tracker.finished_baseline()
    if found is not None:
        study.set_user_attr("advisor.baseline_score", found[1].score)
        return found[1].score
    workdir = _new_workdir(plan.spec.name, "baseline")
    config = resolve_trial_config(
        plan.spec,
        {},
        trial_number=-1,
        output_dir=str(workdir),
        available_modules=plan.available_modules,
        baseline=True,
    )
    run_id = tracker.start_trial(None, params={}, config=config, baseline=True)
    row = TrialRow(number=-1, params={"baseline": True}, run_id=run_id, phase="baseline")
    observer.trial_started(row)
    try:
        result = _run(config, workdir, row, observer, tracker, run_id, None, python, plan.limits)
        stopping.check()  # a stop requested during the run ended it: record it as such
    except KeyboardInterrupt as stop:
        tracker.abort_run(run_id, reason=stop_reason(stop))
        raise
    tracker.finish_trial(
        run_id,
        result,
        derived=derived_costs(result, plan.price_per_hour),
        files=_result_files(result, workdir),
    )
    shutil.rmtree(workdir, ignore_errors=True)
    row.state, row.score, row.eval_loss = result.state, result.score, result.eval_loss
    row.wall_seconds, row.error = result.wall_seconds, result.error
    observer.trial_finished(row, None)
    if result.state != "complete":
        return None
    study.set_user_attr("advisor.baseline_score", result.score)
    return result.score


def _run(
    config: TrialConfig,
    workdir: Path,
    row: TrialRow,
    observer: TuneObserver,
    tracker: StudyTracker,
    run_id: str,
    on_eval: Callable[[int, float], bool] | None,
    python: str,
    limits: TrialLimits,
) -> TrialResult:
    """Run one trial process, streaming its eval losses and training logs into MLflow."""
    from advisor.trial_process import run_trial_process

    def handle_eval(step: int, loss: float) -> bool:
        tracker.log_metrics(run_id, {"eval_loss": loss}, step=step)
        row.step, row.eval_loss = step, loss
        prune = bool(on_eval and on_eval(step, loss))
        observer.trial_progress(row)
        return prune

    def handle_event(message: dict[str, Any]) -> None:
        if message.get("event") == "phase":
            row.phase = str(message.get("phase", ""))
        elif message.get("event") == "log":
            step = int(message.get("step", 0))
            metrics = message.get("metrics") or {}
            renamed = {("train_loss" if k == "loss" else k): v for k, v in metrics.items()}
            numeric = {k: v for k, v in renamed.items() if isinstance(v, int | float)}
            tracker.log_metrics(run_id, numeric, step=step)
            row.step = step
        observer.trial_progress(row)

    with tracker.system_metrics(run_id):  # stopped when the process ends, Ctrl-C included
        return run_trial_process(
            config,
            workdir,
            on_eval=handle_eval,
            on_event=handle_event,
            python=python,
            limits=limits,
        )


class _Objective:
    """Optuna's objective: one call = one trial process = one MLflow child run."""

    def __init__(
        self,
        plan: StudyPlan,
        tracker: StudyTracker,
        summary: TuneSummary,
        observer: TuneObserver,
        python: str,
        keep_workdirs: bool,
    ) -> None:
        self.plan, self.tracker, self.summary = plan, tracker, summary
        self.observer, self.python, self.keep = observer, python, keep_workdirs

    def __call__(self, trial: Any) -> float | tuple[float, ...]:
        import optuna

        from advisor.optuna_backend import suggest
        from advisor.study import resolve_trial_config

        plan = self.plan
        params = suggest(trial, plan.params)
        workdir = _new_workdir(plan.spec.name, f"trial{trial.number}")
        try:
            config = resolve_trial_config(
                plan.spec,
                params,
                trial_number=trial.number,
                output_dir=str(workdir),
                available_modules=plan.available_modules,
            )
        except AdvisorInputError as error:
            raise TrialFailedError(str(error)) from error
        run_id = self.tracker.start_trial(trial.number, params=params, config=config)
        trial.set_user_attr("mlflow_run_id", run_id)
        row = TrialRow(number=trial.number, params=params, run_id=run_id)
        self.summary.rows.append(row)
        self.observer.trial_started(row)

        single = len(plan.directions) == 1
        sign = -1.0 if plan.directions[0] == "maximize" else 1.0

        def on_eval(step: int, loss: float) -> bool:
            if not single:  # Optuna prunes single-objective studies only
                return False
            trial.report(sign * loss, step)
            return trial.should_prune()

        try:
            result = _run(
                config,
                workdir,
                row,
                self.observer,
                self.tracker,
                run_id,
                on_eval,
                self.python,
                plan.limits,
            )
            stopping.check()  # a stop requested during the run ended it: record it as such
        except KeyboardInterrupt as stop:
            row.state, row.error = "failed", stop_reason(stop)
            self.tracker.abort_run(run_id, reason=stop_reason(stop))
            raise
        values = self._record(trial, result, run_id, workdir, row)
        if result.state == "pruned":
            raise optuna.TrialPruned(f"pruned at step {result.steps}")
        if result.state == "failed":
            raise TrialFailedError(result.error or "trial failed")
        return values[0] if single else tuple(values)

    def _record(
        self, trial: Any, result: TrialResult, run_id: str, workdir: Path, row: TrialRow
    ) -> list[float]:
        """Objective values, MLflow child run and Optuna user attributes of a finished trial."""
        derived = derived_costs(result, self.plan.price_per_hour)
        values: list[float] = []
        if result.state == "complete":
            try:
                values = [objective_value(o, result, derived) for o in self.plan.objectives]
            except TrialFailedError as error:
                result.state, result.error = "failed", str(error)
        extra: dict[str, float | None] = {
            **derived,
            **{f"objective_{i}": v for i, v in enumerate(values)},
        }
        if self.summary.baseline_score is None:  # a worker: the coordinator may have finished it
            self.summary.baseline_score = trial.study.user_attrs.get("advisor.baseline_score")
        baseline = self.summary.baseline_score
        if baseline is not None and result.score is not None:
            extra["gain_over_baseline"] = result.score - baseline
            row.gain = result.score - baseline
        self.tracker.finish_trial(
            run_id, result, derived=extra, files=_result_files(result, workdir)
        )
        attrs = {
            "score": result.score,
            "eval_loss": result.eval_loss,
            "wall_seconds": result.wall_seconds,
            "peak_memory_mb": result.peak_memory_mb,
            "peak_reserved_mb": result.peak_reserved_mb,
            "trainable_params": result.trainable_params,
            "adapter_mb": result.adapter_mb,
            "cost_usd": derived["cost_usd"],
            "gpu_hours": derived["gpu_hours"],
            "device": result.device,
        }
        if result.error:
            attrs["error"] = result.error[:2000]
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if not self.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        row.state, row.score, row.eval_loss = result.state, result.score, result.eval_loss
        row.wall_seconds, row.cost_usd = result.wall_seconds, derived["cost_usd"]
        row.peak_memory_mb, row.trainable_params = result.peak_memory_mb, result.trainable_params
        row.error = result.error
        self.observer.trial_finished(row, self.summary)
        return values

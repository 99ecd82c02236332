"""`advisor tune`: run a declared study with Optuna, each trial a real training run in a child
process, every trial recorded in MLflow under one parent run.

The flow: load and validate the study file (all errors at once) -> check target_modules against
the model's real module names -> open the Optuna study (continue it if it exists) and the MLflow
parent run -> evaluate the untuned baseline once -> `study.optimize`, where each trial samples
parameters, resolves a TrialConfig, opens its MLflow child run, runs the runner process (which
reports eval losses for pruning) and records the result.

Pruning: the runner reports eval loss, where lower is better. Optuna's pruners compare
intermediate values in the study's direction, so a study that maximises a task metric is fed
`-eval_loss`. Pruning is single-objective in Optuna; multi-objective studies do not prune.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advisor.errors import AdvisorInputError
from advisor.optuna_backend import Param
from advisor.provenance import file_sha256, git_commit, package_versions
from advisor.redact import redact_url
from advisor.tracking import Stores, StudyTracker
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
)
from runners.config import TrialConfig, TrialResult


def tune(
    study_file: str | Path,
    *,
    n_trials: int | None = None,
    observer: TuneObserver | None = None,
    root: Path | None = None,
    python: str = sys.executable,
    keep_workdirs: bool = False,
    enqueue: Sequence[Mapping[str, Any]] = (),
    study_tags: Mapping[str, str] | None = None,
) -> TuneSummary:
    """Run (or continue) the study declared in `study_file`; return its summary.

    Re-running on the same study continues it: finished trials are not repeated, and only
    `n_trials - finished` new trials run. Ctrl-C stops the running trial, records it as failed in
    Optuna and KILLED in MLflow, closes the parent run and re-raises KeyboardInterrupt.
    `root` is where the default `mlruns/` stores live (the current directory if None).
    `enqueue` fixes the parameters of the first trials of a new study (a rerun of given trials);
    `study_tags` go on the MLflow parent run (e.g. the run a rerun reproduces).
    """
    from advisor import optuna_backend as ob
    from advisor.study import load_study

    observer = observer or NullObserver()
    started = time.monotonic()
    spec_path = Path(study_file)
    spec = load_study(spec_path)
    plan = StudyPlan.build(spec, spec_path, root=root)

    study = ob.open_study(
        name=spec.name,
        storage=ob.make_storage(plan.stores.optuna_url),
        directions=plan.directions,
        sampler=ob.make_sampler(
            spec.optuna.sampler, plan.params, seed=spec.seed, n_startup_trials=plan.n_startup
        ),
        pruner=ob.make_pruner(
            spec.optuna.pruner,
            n_startup_trials=plan.n_startup,
            max_steps=spec.train.max_steps,
            eval_steps=spec.train.eval_steps,
        ),
        user_attrs={"advisor.metric": plan.metric, "advisor.objectives": plan.objectives},
    )
    ob.fail_stale_running(study)
    if enqueue and not study.get_trials(deepcopy=False):
        for params in enqueue:
            study.enqueue_trial(dict(params))

    tracker = StudyTracker(plan.stores.tracking_uri, plan.stores.artifact_root, plan.experiment)
    tracker.start_study(
        spec.name,
        spec_yaml=plan.spec_yaml,
        spec_hash=plan.spec_hash,
        data_hashes=plan.data_hashes,
        seed=spec.seed,
        versions=package_versions(),
        git_commit=git_commit(spec_path.parent),
        optuna_url=plan.stores.optuna_url,
        params={"study": spec.name, "metric": plan.metric, "method": plan.method},
        extra_tags=study_tags,
    )
    tracker.reconcile()
    study.set_user_attr("advisor.mlflow_parent_run_id", tracker.parent_run_id)
    study.set_user_attr("advisor.mlflow_experiment_id", tracker.experiment_id)
    study.set_user_attr("advisor.mlflow_experiment_name", plan.experiment)
    study.set_user_attr("advisor.mlflow_tracking_uri", plan.stores.tracking_uri)

    summary = TuneSummary(
        study=spec.name,
        metric=plan.metric,
        directions=plan.directions,
        objectives=plan.objectives,
        stores={k: redact_url(v) for k, v in asdict(plan.stores).items()},
        parent_run_id=tracker.parent_run_id,
        rows=[row_from_frozen(t) for t in study.get_trials(deepcopy=False)],
    )
    target = n_trials if n_trials is not None else spec.optuna.n_trials
    finished = ob.finished_count(study)
    n_new = max(0, target - finished)
    summary.skipped_finished = finished
    observer.study_started(summary, spec.train.max_steps, n_new)

    status = "FINISHED"
    try:
        summary.baseline_score = _ensure_baseline(plan, tracker, study, observer, python)
        if n_new:
            objective = _Objective(plan, tracker, summary, observer, python, keep_workdirs)
            study.optimize(
                objective, n_trials=n_new, timeout=spec.optuna.timeout_s, catch=(TrialFailedError,)
            )
    except KeyboardInterrupt:
        summary.interrupted = True
        status = "KILLED"
        raise
    finally:
        _close(summary, study, tracker, status, started)
    summary.registered_model = _register_best(spec, plan, study, tracker)
    return summary


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
    summary: TuneSummary, study: Any, tracker: StudyTracker, status: str, started: float
) -> None:
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
            },
            n_startup=int(spec.optuna.n_startup_trials),
            limits=TrialLimits(
                timeout_s=spec.trial.timeout_s, max_memory_gb=spec.trial.max_memory_gb
            ),
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
    except KeyboardInterrupt:
        tracker.abort_run(run_id, reason="interrupted (Ctrl-C)")
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

    return run_trial_process(
        config, workdir, on_eval=handle_eval, on_event=handle_event, python=python, limits=limits
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
        except KeyboardInterrupt:
            row.state, row.error = "failed", "interrupted (Ctrl-C)"
            self.tracker.abort_run(run_id, reason="interrupted (Ctrl-C)")
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

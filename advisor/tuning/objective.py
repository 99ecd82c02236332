"""One trial, from Optuna's sampled parameters to its process, its MLflow run and its values.

`Objective` is called with the trial Optuna asked for: it resolves the trial's `TrialConfig`,
opens the trial's MLflow child run, runs the trial process (`advisor.tuning.process`) while
streaming its eval losses (reported to the pruner) and training logs into MLflow, records the
result on both stores and answers the state and objective values to tell Optuna. The untuned
baseline runs through the same bridge (`ensure_baseline`), once per study.

Pruning: the runner reports eval loss, where lower is better. Optuna's pruners compare
intermediate values in the study's direction, so a study that maximises a task metric is fed
`-eval_loss`. Pruning is single-objective in Optuna; multi-objective studies do not prune.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor.directions import gain
from advisor.errors import AdvisorInputError
from advisor.stores import keys
from advisor.stores.sampling import suggest
from advisor.stores.tracker import StudyTracker
from advisor.study import resolve_trial_config
from runners.config import TrialConfig, TrialResult

from . import stopping
from .plan import StudyPlan
from .process import TrialLimits, run_trial_process
from .summary import TrialFailedError, TrialRow, TuneObserver, TuneSummary

Told = tuple[str, list[float]]
"""How a finished trial is told to Optuna: its state (complete, pruned, failed) and values."""


def derived_costs(result: TrialResult, price_per_hour: float) -> dict[str, float]:
    """Device-hours and dollars from wall time; GPU-hours count only time on a GPU."""
    hours = result.wall_seconds / 3600.0
    return {
        "device_hours": hours,
        "gpu_hours": hours if result.device.startswith("cuda") else 0.0,
        "cost_usd": hours * price_per_hour,
    }


def objective_value(name: str, result: TrialResult, derived: dict[str, float]) -> float:
    """The value Optuna optimises for objective `name`; a missing value fails the trial."""
    if name == "score":
        if result.score is None:
            raise TrialFailedError("the trial returned no score")
        return float(result.score)
    if name == "eval_loss":
        if result.eval_loss is None:
            raise TrialFailedError("the trial returned no eval loss")
        return float(result.eval_loss)
    if name in derived:
        return float(derived[name])
    value = getattr(result, name)
    if value is None:
        raise TrialFailedError(f"the trial returned no {name}")
    return float(value)


def new_workdir(study: str, label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"advisor-{study}-{label}-"))


def result_files(result: TrialResult, workdir: Path) -> list[Path]:
    """The files of a finished trial that go to its MLflow run: log, adapter, generations, the
    forgetting probes' replies (the baseline's are the base's, measured once per study)."""
    files = [workdir / "trial.log"]
    if result.adapter_dir:
        files.append(Path(result.adapter_dir))
    if result.generations_path:
        files.append(Path(result.generations_path))
    if result.probes_path:
        files.append(Path(result.probes_path))
    return files


def run_tracked(
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


def ensure_baseline(
    plan: StudyPlan, tracker: StudyTracker, study: Any, observer: TuneObserver, python: str
) -> float | None:
    """Evaluate the untuned base model once per study; reuse the recorded result after that."""
    found = tracker.finished_baseline()
    if found is not None:
        study.set_user_attr(keys.BASELINE_SCORE, found[1].score)
        return found[1].score
    workdir = new_workdir(plan.spec.name, "baseline")
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
        result = run_tracked(
            config, workdir, row, observer, tracker, run_id, None, python, plan.limits
        )
        stopping.check()  # a stop requested during the run ended it: record it as such
    except KeyboardInterrupt as stop:
        tracker.abort_run(run_id, reason=stopping.stop_reason(stop))
        raise
    tracker.finish_trial(
        run_id,
        result,
        derived=derived_costs(result, plan.price_per_hour),
        files=result_files(result, workdir),
    )
    shutil.rmtree(workdir, ignore_errors=True)
    row.state, row.score, row.eval_loss = result.state, result.score, result.eval_loss
    row.wall_seconds, row.error = result.wall_seconds, result.error
    observer.trial_finished(row, None)
    if result.state != "complete":
        return None
    study.set_user_attr(keys.BASELINE_SCORE, result.score)
    return result.score


class Objective:
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

    def __call__(self, trial: Any) -> Told:
        """Run the trial Optuna asked for; its state and objective values (none unless it
        completed). KeyboardInterrupt (Ctrl-C, SIGTERM) closes its run KILLED and propagates."""
        plan = self.plan
        params = suggest(trial, plan.params)
        workdir = new_workdir(plan.spec.name, f"trial{trial.number}")
        try:
            config = resolve_trial_config(
                plan.spec,
                params,
                trial_number=trial.number,
                output_dir=str(workdir),
                available_modules=plan.available_modules,
            )
        except AdvisorInputError:
            return "failed", []
        run_id = self.tracker.start_trial(trial.number, params=params, config=config)
        trial.set_user_attr(keys.RUN_ID, run_id)
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
            result = run_tracked(
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
            row.state, row.error = "failed", stopping.stop_reason(stop)
            self.tracker.abort_run(run_id, reason=stopping.stop_reason(stop))
            raise
        values = self._record(trial, result, run_id, workdir, row)
        return result.state, values

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
            self.summary.baseline_score = trial.study.user_attrs.get(keys.BASELINE_SCORE)
        baseline = self.summary.baseline_score
        if baseline is not None and result.score is not None:
            row.gain = gain(result.score, baseline, self.plan.directions[0])
            extra["gain_over_baseline"] = row.gain
        self.tracker.finish_trial(
            run_id, result, derived=extra, files=result_files(result, workdir)
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
            attrs[keys.ERROR] = result.error[:2000]
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

"""One process working on a study: reconcile, the baseline, the trial loop, closing the study.

The loop is advisor's own rather than `study.optimize()`: under the storage's ask lock it checks
the study's budget and asks for a trial, so any number of workers share one budget without
duplicating a trial (`advisor.stores.coordination` explains the pieces). `tune` runs a session
as the coordinator (it evaluates the baseline and closes the parent run); `work` runs one as a
worker; a study prepared by `advisor serve` has no coordinator, so its first worker claims the
baseline and its last worker out closes the parent run.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from advisor.directions import best, gain
from advisor.redact import redact_url
from advisor.stores import coordination as co
from advisor.stores import keys
from advisor.stores.outcome import Outcome
from advisor.stores.records import RecordedStudy
from advisor.stores.registry import register_best_once
from advisor.stores.tracker import StudyTracker
from advisor.study import decode_choice

from . import stopping
from .objective import Objective, ensure_baseline
from .plan import StudyPlan
from .summary import TrialRow, TuneObserver, TuneSummary, row_from_frozen

STOP_NOTE = "stop requested (POST /v1/studies/NAME/stop): no new trial starts; running ones finish"


class Session:
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
        self.storage = plan.storage()
        self.python, self.keep, self.coordinator = python, keep_workdirs, coordinator
        self.served = bool(study.user_attrs.get(keys.SERVED))
        self.notes: list[str] = []

    def run(self, started: float) -> TuneSummary:
        plan, study, tracker = self.plan, self.study, self.tracker
        co.fail_dead_local(study, self.storage)
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
            baseline_score=study.user_attrs.get(keys.BASELINE_SCORE),
            notes=list(self.notes),
        )
        if study.user_attrs.get(keys.STOP):  # shown as the worker starts, not only at its end
            summary.notes.append(STOP_NOTE)
        target = int(study.user_attrs.get(keys.N_TRIALS, plan.spec.optuna.n_trials))
        used = co.budget_used(study)
        summary.skipped_finished = used
        self.observer.study_started(summary, plan.spec.train.max_steps, max(0, target - used))

        status, outcome = "FINISHED", "interrupted"
        try:
            if self.coordinator:
                summary.baseline_score = ensure_baseline(
                    plan, tracker, study, self.observer, self.python
                )
            elif self._claim_baseline():
                summary.baseline_score = self._served_baseline()
            objective = Objective(plan, tracker, summary, self.observer, self.python, self.keep)
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
            close(summary, study, tracker, status, started, end_parent=end_parent)
        if outcome == "stopped" and STOP_NOTE not in summary.notes:
            summary.notes.append(STOP_NOTE)
        if self.coordinator or (last_out and outcome == "done"):
            recorded = RecordedStudy(
                name=plan.spec.name,
                stores=plan.stores,
                study=study,
                tracker=tracker,
                spec=plan.spec,
                storage=self.storage,
            )
            summary.registered_model = register_best_once(recorded)
        return summary

    def _claim_baseline(self) -> bool:
        """Whether this worker evaluates a served study's baseline (exactly one worker does).

        `tune` runs the baseline as the coordinator; a served study has none, so the first
        worker to see it pending claims it under the ask lock. A claim by a process on this
        machine that no longer exists (kill -9) is taken over; a stopped study gets none.
        """
        if not self.served:
            return False
        with co.ask_lock(self.storage, self.plan.spec.name)():
            attrs = self.study.user_attrs
            state = str(attrs.get(keys.BASELINE, ""))
            dead_claim = state.startswith("claimed:") and co.dead_local(
                state.removeprefix("claimed:")
            )
            if attrs.get(keys.STOP) or not (state == "pending" or dead_claim):
                return False
            self.study.set_user_attr(keys.BASELINE, f"claimed:{co.worker_id()}")
        return True

    def _served_baseline(self) -> float | None:
        """Run the claimed baseline; an interrupted one goes back to `pending` for the next."""
        done = False
        try:
            plan, observer = self.plan, self.observer
            score = ensure_baseline(plan, self.tracker, self.study, observer, self.python)
            done = True
            return score
        finally:
            self.study.set_user_attr(keys.BASELINE, "done" if done else "pending")

    def _reconcile(self) -> None:
        """Close MLflow runs whose trial no longer runs (a killed worker leaves them RUNNING).

        Workers leave baseline runs alone: the coordinator may be evaluating it right now.
        """
        running = [t.number for t in co.running_trials(self.study)]
        roles = ("trial", "baseline") if self.coordinator else ("trial",)
        self.tracker.reconcile(running, roles=roles)

    def _loop(self, objective: Objective, target: int, started: float) -> str:
        """Ask, run, tell until the study's budget is spent (by all workers together).

        With the budget spent, a worker stays until no other worker's trial is running: one of
        them may die, and its retry must still run (the last worker out runs it). Returns why
        it ended: `done` (budget spent), `stopped` (a stop was requested: no new trial is
        asked for, running ones finish) or `timeout` (optuna.timeout_s).
        """
        study, storage = self.study, self.storage
        lock = co.ask_lock(storage, self.plan.spec.name)
        timeout = self.plan.spec.optuna.timeout_s
        while timeout is None or time.monotonic() - started < timeout:
            stopping.check()  # Ctrl-C/SIGTERM between trials: stop before asking for another
            with lock():
                if co.reap_stale(study):
                    self._reconcile()
                if study.user_attrs.get(keys.STOP):
                    return "stopped"
                if not co.has_waiting(study) and co.budget_used(study) >= target:
                    if not co.running_elsewhere(study):
                        return "done"
                    trial = None  # another worker's trial may still die and need a retry
                else:
                    trial = co.ask(study)
            if trial is None:
                time.sleep(self.plan.spec.optuna.heartbeat_interval)
                continue
            with co.running(study, storage, trial):  # heartbeats; a crash fails and retries
                state, values = objective(trial)
            co.tell(study, trial, state, values)
            rows = [row_from_frozen(t) for t in study.get_trials(deepcopy=False)]
            baseline = objective.summary.baseline_score
            self.tracker.record_outcome(outcome_of(rows, baseline, self.plan.directions[0]))
        return "timeout"


def outcome_of(rows: list[TrialRow], baseline: float | None, direction: str) -> Outcome:
    """The study's outcome so far from its trials (every worker's), for its parent run."""
    done = [r for r in rows if r.state in ("complete", "pruned", "failed")]
    complete = [r for r in done if r.state == "complete"]
    top = best(complete, lambda r: r.score, direction)
    outcome = Outcome(trials_done=len(done), total_cost=sum(r.cost_usd or 0.0 for r in done))
    if top is None or top.score is None:
        return outcome
    outcome.best_score, outcome.best_trial = top.score, top.number
    outcome.best_params = {
        k: decode_choice(v) if k == "target_modules" and isinstance(v, str) else v
        for k, v in top.params.items()
    }
    if baseline is not None:
        outcome.gain = gain(top.score, baseline, direction)
    return outcome


def close(
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
                row.gain = gain(row.score, summary.baseline_score, summary.directions[0])
    try:
        summary.best = [t.number for t in study.best_trials]
    except (ValueError, RuntimeError):
        summary.best = []
    summary.elapsed_seconds = time.monotonic() - started
    complete = [r for r in summary.rows if r.state == "complete"]
    top = best(complete, lambda r: r.score, summary.directions[0])
    if not end_parent:
        return
    tracker.record_outcome(outcome_of(summary.rows, summary.baseline_score, summary.directions[0]))
    tracker.end_study(
        status,
        summary={
            "baseline_score": summary.baseline_score,
            "best_score": top.score if top else None,
            "n_complete": float(sum(r.state == "complete" for r in summary.rows)),
            "n_pruned": float(sum(r.state == "pruned" for r in summary.rows)),
            "n_failed": float(sum(r.state == "failed" for r in summary.rows)),
        },
    )

"""Trial records as the user sees them, and the arithmetic that turns a result into objectives.

Plain data: the CLI renders `TrialRow`/`TuneSummary`, `--json` prints them, reports read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from runners.config import TrialResult

COSTS = ("wall_seconds", "peak_memory_mb", "trainable_params", "cost_usd")


class TrialFailedError(Exception):
    """A trial ended failed; Optuna records it FAIL and the study goes on."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: handled like Ctrl-C (the running trial ends KILLED), with its own reason."""

    reason = "terminated (SIGTERM)"


def stop_reason(stop: BaseException) -> str:
    """Why a study stopped mid-trial, as recorded on the trial's run."""
    return getattr(stop, "reason", "interrupted (Ctrl-C)")


@dataclass
class TrialRow:
    """One trial as the user sees it: parameters, state, score and costs."""

    number: int
    params: dict[str, Any]
    state: str = "running"
    score: float | None = None
    eval_loss: float | None = None
    wall_seconds: float | None = None
    cost_usd: float | None = None
    peak_memory_mb: float | None = None
    trainable_params: int | None = None
    gain: float | None = None
    run_id: str | None = None
    error: str | None = None
    step: int = 0
    phase: str = ""


@dataclass
class TuneSummary:
    """What `tune` returns: enough to render a table or print JSON."""

    study: str
    metric: str
    directions: list[str]
    objectives: list[str]
    stores: dict[str, str]
    parent_run_id: str | None
    baseline_score: float | None = None
    rows: list[TrialRow] = field(default_factory=list)
    best: list[int] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    interrupted: bool = False
    skipped_finished: int = 0
    registered_model: str | None = None
    """`<name>/<version>` of the best trial's adapter in the MLflow model registry."""
    notes: list[str] = field(default_factory=list)
    """Warnings the user should see before the trials (e.g. personal data allowed)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TuneObserver(Protocol):
    """Live view of a study (the CLI renders it with rich; tests record it)."""

    def study_started(self, summary: TuneSummary, max_steps: int, n_new: int) -> None: ...
    def trial_started(self, row: TrialRow) -> None: ...
    def trial_progress(self, row: TrialRow) -> None: ...
    def trial_finished(self, row: TrialRow, summary: TuneSummary | None) -> None: ...


class NullObserver:
    """Observes nothing: for library callers and tests that only want the summary."""

    def study_started(self, summary: TuneSummary, max_steps: int, n_new: int) -> None:
        pass

    def trial_started(self, row: TrialRow) -> None:
        pass

    def trial_progress(self, row: TrialRow) -> None:
        pass

    def trial_finished(self, row: TrialRow, summary: TuneSummary | None) -> None:
        pass


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


_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def state_of(trial: Any) -> str:
    """An Optuna trial's state in advisor's words: complete, pruned, failed, running, waiting."""
    return _STATES.get(trial.state.name, trial.state.name.lower())


def row_from_frozen(trial: Any) -> TrialRow:
    """A row from an Optuna FrozenTrial and the user attributes tune stored on it."""
    attrs = trial.user_attrs
    return TrialRow(
        number=trial.number,
        params=dict(trial.params),
        state=state_of(trial),
        score=attrs.get("score"),
        eval_loss=attrs.get("eval_loss"),
        wall_seconds=attrs.get("wall_seconds"),
        cost_usd=attrs.get("cost_usd"),
        peak_memory_mb=attrs.get("peak_memory_mb"),
        trainable_params=attrs.get("trainable_params"),
        run_id=attrs.get("mlflow_run_id"),
        error=attrs.get("error"),
    )

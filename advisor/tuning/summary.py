"""What a study run shows and returns: its trials as rows, its summary, and who watches it.

Plain data: the CLI renders `TrialRow`/`TuneSummary` live (a `TuneObserver`), `--json` prints
them. A row is the stores' record of a trial (`advisor.stores.records.TrialRecord`) plus what a
live view adds: the gain over the baseline, the step and the phase the trial is in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from advisor.stores.records import TrialRecord, trial_record


class TrialFailedError(Exception):
    """A trial ended failed; Optuna records it FAIL and the study goes on."""


@dataclass
class TrialRow(TrialRecord):
    """One trial as the user sees it: parameters, state, score and costs."""

    gain: float | None = None
    step: int = 0
    phase: str = ""


def row_from_frozen(trial: Any) -> TrialRow:
    """A row from an Optuna FrozenTrial and the user attributes tune stored on it."""
    return trial_record(trial, TrialRow)


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


@dataclass
class TaskSummaries:
    """What `tune_tasks` and `work_tasks` return: one summary per task, in declaration order."""

    study: str
    tasks: dict[str, TuneSummary]

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "tasks": {k: v.to_dict() for k, v in self.tasks.items()}}


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

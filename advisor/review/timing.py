"""Where a study's time went: each trial's phases, read back from its MLflow run.

The runner clocks its phases (load, training steps, the eval-loss passes, scoring by
generation, the forgetting probes); the rest of its wall time is reading the data, the
trainer's set-up and saving the adapter; the parent adds the time spent recording the run.
`advisor.stores.keys.PHASE_SECONDS` names the metric of each. A study whose trials spend most
of their time outside training has its budget in evaluation or overhead: the training share
says how much of the trials' wall time was spent on the steps that changed the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from advisor.stores import keys
from advisor.stores.records import TrialRecord

PHASES = tuple(keys.PHASE_SECONDS)
"""load, train, eval_loss, generation, probes, setup_save, tracking: the table's columns."""


@dataclass
class PhaseRow:
    """One finished run's phases in seconds; None where the run's version did not log one."""

    trial: int
    """The trial's number; -1 for the untuned baseline."""
    state: str
    seconds: dict[str, float | None]
    wall_seconds: float
    """The runner's wall time plus the tracking time (what the trial took the study)."""


@dataclass
class Timing:
    """Every finished run's phases, their totals and the study's training share."""

    rows: list[PhaseRow] = field(default_factory=list)
    totals: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    training_share: float | None = None
    """Seconds of training steps / the runs' wall seconds (None when nothing was timed)."""


def phase_row(trial: int, state: str, metrics: Mapping[str, float]) -> PhaseRow | None:
    """The phases of one run from its metrics; None for a run that never finished."""
    if keys.WALL_SECONDS not in metrics:
        return None
    seconds = {phase: metrics.get(name) for phase, name in keys.PHASE_SECONDS.items()}
    seconds["index"] = seconds["index"] or 0.0  # no retrieval method, or logged before it
    wall = float(metrics[keys.WALL_SECONDS])
    if seconds["setup_save"] is None:  # logged by an older advisor: the runner's remainder
        timed = sum(v or 0.0 for p, v in seconds.items() if p != "tracking")
        seconds["setup_save"] = max(0.0, wall - timed)
    return PhaseRow(trial, state, seconds, wall + (seconds["tracking"] or 0.0))


def timing_of(
    rows: Sequence[TrialRecord],
    metrics: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, float] | None = None,
) -> Timing:
    """The study's timing from its trials' run metrics (by run id) and its baseline's."""
    found = [phase_row(-1, "complete", baseline)] if baseline else []
    found += [phase_row(r.number, r.state, metrics.get(r.run_id or "", {})) for r in rows]
    timed = [row for row in found if row is not None]
    totals = {p: sum(row.seconds[p] or 0.0 for row in timed) for p in PHASES}
    wall = sum(row.wall_seconds for row in timed)
    share = totals["train"] / wall if wall > 0 else None
    return Timing(rows=timed, totals=totals, wall_seconds=wall, training_share=share)

"""`advisor report` as data: a recorded study's trials, baseline, best picks, Pareto front,
parameter importances and one plain-language decision.

The report is a dataclass tree: `build.py` reads it from the stores `advisor tune` wrote, so a
report can be rebuilt at any time on any machine that sees the stores; `decision.py` words the
decision; the CLI renders it with rich, `--json` prints `Report.to_dict()`, and `plots.py` draws
from the same Optuna study.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from advisor.stores.records import TrialRecord
from advisor.study.presets import decode_choice

if TYPE_CHECKING:  # pragma: no cover
    from .timing import Timing


@dataclass
class ReportRow(TrialRecord):
    """One trial as the report shows it: the stored record, `params` with target_modules decoded
    (a preset name, or `q_proj,v_proj`), the gain (score - the untuned baseline's score) and
    what the trial cost in general ability (`runners.forgetting`)."""

    gain: float | None = None
    forgetting_kl: float | None = None
    """Mean per-token KL(base || tuned) on the general-text probe (nats); 0 means untouched."""
    ppl_delta: float | None = None
    """Perplexity change on the general-text probe (> 0: general text became less likely)."""
    general_score: float | None = None
    """Share of the general instruction probe answered correctly."""
    general_score_delta: float | None = None
    """general_score - the base model's (< 0: general ability lost)."""
    warm_start: str | None = None
    """Where a warm-start trial's parameters came from (`optuna.start`, `recommended`,
    `study:<name>#<trial>`); None for a trial the sampler proposed."""


@dataclass
class BestPick:
    """The best complete trial for one objective: the metric, or a cost (the cheapest)."""

    objective: str
    direction: str
    trial: int
    value: float
    optimised: bool
    """True when this objective was one the study optimised (else it is read off the results)."""


@dataclass
class ParetoFront:
    """Complete trials that no other trial beats on both the metric and the cost."""

    metric: str
    cost: str
    trials: list[int]
    source: str
    """`optuna.best_trials` (two-objective study) or `computed` (metric vs wall_seconds)."""


@dataclass
class Importances:
    """Parameter importances (Optuna's evaluator, normalised), or why there are none."""

    values: dict[str, float] = field(default_factory=dict)
    evaluator: str | None = None
    unavailable: str | None = None


@dataclass
class PlotFile:
    """A PNG written by `advisor.review.plots`, or the reason it was skipped."""

    name: str
    path: str | None = None
    skipped: str | None = None
    artifact: str | None = None
    """Where it was logged on the parent run (`plots/<file>`), if it was."""


@dataclass
class Measure:
    """One forgetting measure of the best trial and of the gentler one, side by side."""

    best: float | None
    gentler: float | None


@dataclass
class Tradeoff:
    """A best trial that forgets much more than a trial nearly as good (`decision.tradeoff`).

    `score_share` is the gentler trial's score as a share of the best's, in the metric's
    direction (best / gentler for a minimised one), so 0.97 reads "97% as good" either way.
    `flagged` names the measures on which the best trial forgets at least twice as much."""

    best: int
    gentler: int
    best_score: float
    gentler_score: float
    score_share: float
    kl: Measure
    general_delta: Measure
    ppl_delta: Measure
    flagged: list[str]


@dataclass
class MethodSummary:
    """One searched method: its trials and its best complete trial's measures."""

    method: str
    trials: int
    """Trials of this method in any state (complete, pruned, failed)."""
    complete: int
    best_trial: int | None = None
    score: float | None = None
    gain: float | None = None
    cost_usd: float | None = None
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    forgetting_kl: float | None = None
    general_score_delta: float | None = None


@dataclass
class Report:
    """A recorded study, ready to render or to print as JSON."""

    study: str
    method: str | None
    metric: str
    objectives: list[str]
    directions: list[str]
    baseline_score: float | None
    rows: list[ReportRow]
    fixed: dict[str, Any]
    """Settings the study did not search (r, alpha_ratio, target_modules, ...)."""
    best: list[BestPick]
    pareto: ParetoFront | None
    importances: Importances
    decision: str
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    plots: list[PlotFile] = field(default_factory=list)
    plots_dir: str | None = None
    baseline_general_score: float | None = None
    """The untuned model's score on the general instruction probe (forgetting's reference)."""
    tradeoff: Tradeoff | None = None
    """Set when the best trial forgets much more than one nearly as good (`decision.py`)."""
    timing: Timing | None = None
    """Where the trials' time went (`timing.py`); `advisor report --timing` shows it."""
    methods: list[MethodSummary] = field(default_factory=list)
    """Per searched method, best first (`methods.py`); empty for a study of one method."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row in out["rows"]:  # a CPU study's report reads as before GPU memory was recorded
            if row.get("peak_reserved_mb") is None:
                row.pop("peak_reserved_mb", None)
        return out

    def row(self, number: int) -> ReportRow:
        return next(r for r in self.rows if r.number == number)

    @property
    def complete(self) -> list[ReportRow]:
        return [r for r in self.rows if r.state == "complete" and r.values]

    @property
    def best_trial(self) -> ReportRow | None:
        pick = next((b for b in self.best if b.objective == self.objectives[0]), None)
        return self.row(pick.trial) if pick else None


def display_params(params: dict[str, Any]) -> dict[str, Any]:
    """Trial params for people: target_modules decoded from its `+`-joined Optuna encoding."""
    shown = dict(params)
    if isinstance(shown.get("target_modules"), str):
        decoded = decode_choice(shown["target_modules"])
        shown["target_modules"] = decoded if isinstance(decoded, str) else ",".join(decoded)
    return shown


def describe_params(params: dict[str, Any]) -> str:
    """`r=16, alpha_ratio=2, all_linear, learning_rate=0.001`: what a person would type."""
    parts = []
    for key, value in params.items():
        if key == "target_modules":
            parts.append(str(value))
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "the study's fixed settings"

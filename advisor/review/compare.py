"""Compare recorded studies side by side: e.g. LoRA vs DoRA vs full fine-tuning on the same data.

Each study is judged by its best trial (from its `Report`); the comparison names the study that
scores best and the one that is cheapest, and warns when their metrics differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .report import Report


@dataclass
class ComparisonEntry:
    """One study's best trial, side by side with the others'."""

    study: str
    method: str | None
    metric: str
    best_trial: int | None
    best_score: float | None
    gain: float | None
    wall_seconds: float | None
    cost_usd: float | None
    gpu_hours: float | None
    trainable_params: int | None


@dataclass
class Comparison:
    """Which study wins on score and which on cost (each study judged by its best trial)."""

    entries: list[ComparisonEntry]
    best_on_score: str | None
    cheapest: str | None
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_reports(reports: list[Report]) -> Comparison:
    """Side by side: e.g. LoRA vs DoRA vs full fine-tuning tuned on the same data."""
    entries = []
    for report in reports:
        best = report.best_trial
        entries.append(
            ComparisonEntry(
                study=report.study,
                method=report.method,
                metric=report.metric,
                best_trial=best.number if best else None,
                best_score=best.score if best else None,
                gain=best.gain if best else None,
                wall_seconds=best.wall_seconds if best else None,
                cost_usd=best.cost_usd if best else None,
                gpu_hours=best.gpu_hours if best else None,
                trainable_params=best.trainable_params if best else None,
            )
        )
    scored = [e for e in entries if e.best_score is not None]
    costed = [e for e in scored if (e.cost_usd or e.wall_seconds) is not None]
    top = max(scored, key=lambda e: e.best_score).study if scored else None  # type: ignore[arg-type,return-value]
    cheap = min(costed, key=lambda e: e.cost_usd or e.wall_seconds).study if costed else None  # type: ignore[arg-type,return-value]
    return Comparison(entries, top, cheap, _comparison_summary(entries, top, cheap))


def _comparison_summary(entries: list[ComparisonEntry], top: str | None, cheap: str | None) -> str:
    if top is None:
        return "No study has a complete trial: nothing to compare yet."
    metrics = {e.metric for e in entries}
    caveat = (
        f" (careful: different metrics {sorted(metrics)}, the scores are not comparable)"
        if len(metrics) > 1
        else ""
    )
    lead = next(e for e in entries if e.study == top)
    text = f"{top} ({lead.method or '?'}) scores best ({lead.best_score:.3g} {lead.metric})"
    if cheap == top:
        return text + " and is also the cheapest" + caveat + "."
    other = next(e for e in entries if e.study == cheap)
    return text + f"; {cheap} ({other.method or '?'}) is the cheapest" + caveat + "."

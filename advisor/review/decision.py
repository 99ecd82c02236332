"""The decision of a report: one sentence a person can act on.

It names the best trial, its gain over the untuned baseline and what it cost; a trial nearly as
good at a fraction of the cost (on the Pareto front); and what the best trial cost in general
ability (forgetting), with a trial that forgets much less when one comes close on score.
"""

from __future__ import annotations

from .report import Report, ReportRow, describe_params

GOOD_ENOUGH = 0.9
"""A cheaper trial is worth naming in the decision when it reaches this share of the best score."""


def _cost_phrase(row: ReportRow) -> str:
    """GPU-hours on a GPU; on CPU the wall time, device-hours and dollars."""
    wall = row.wall_seconds or 0.0
    # Cents hide CPU-sized costs ($0.003 shows as $0.00): keep two significant digits below $1.
    cost = row.cost_usd
    dollars = (f", ${cost:.2f}" if cost >= 1 else f", ${cost:.2g}") if cost else ""
    if row.device and row.device.startswith("cuda"):
        return f"{row.gpu_hours or wall / 3600:.2g} GPU-hours{dollars}"
    device = (row.device or "cpu").upper()
    return f"{wall:.0f} s on {device} ({wall / 3600:.2g} device-hours{dollars})"


def _cost_of(row: ReportRow) -> float | None:
    if row.cost_usd:
        return row.cost_usd
    return row.wall_seconds


def decide(report: Report) -> str:
    """One sentence a person can act on: the best trial, its gain and cost, a cheaper option."""
    states = {s: sum(r.state == s for r in report.rows) for s in ("pruned", "failed", "running")}
    best = report.best_trial
    if best is None or best.values is None:
        counts = ", ".join(f"{n} {s}" for s, n in states.items() if n)
        return (
            f"No trial of study {report.study!r} completed ({counts or 'no trials'}): there is "
            "nothing to recommend yet. Check the failed trials' errors, then run `advisor tune` "
            "again to continue the study."
        )
    head = describe_params(best.params)
    metric = report.metric
    if best.gain is not None and best.score is not None and report.baseline_score is not None:
        change, beaten = _change(report, best.gain)
        shown = ".2f" if report.directions[0] == "maximize" else ".3g"  # [0, 1] or unbounded
        result = (
            f"{change} the untuned baseline "
            f"({report.baseline_score:{shown}} -> {best.score:{shown}} {metric})"
        )
    else:
        result, beaten = f"{metric} {best.values[0]:.3g} (no baseline recorded)", True
    sentence = f"Trial {best.number} ({head}): {result} at {_cost_phrase(best)}"
    if not beaten:
        sentence += "; tuning did not beat the base model, so do not ship this adapter"
    cheaper = _cheaper_alternative(report, best)
    if cheaper is not None:
        row, score_share, cost_share = cheaper
        sentence += (
            f"; trial {row.number} ({describe_params(row.params)}) reaches "
            f"{score_share:.0%} of that score at {cost_share:.0%} of the cost"
        )
    sentence += _forgetting_phrase(report, best)
    return sentence + "."


def _change(report: Report, gain: float) -> tuple[str, bool]:
    """How the best trial moved the metric, said in its units, and whether it beat the base.

    A maximised score lies in [0, 1] (`runners.metrics`), so its change is in points; a
    minimised one (perplexity, eval loss) has no fixed scale, so its change is relative to the
    baseline: "94% below" for a perplexity that fell from 49.7 to 3.2."""
    if report.directions[0] == "maximize":
        points = round(gain * 100)
        if points == 0:
            return "no better than", False
        return (f"{points:+d} points over" if points > 0 else f"{-points} points below"), points > 0
    share = abs(gain) / abs(report.baseline_score) if report.baseline_score else None
    if gain == 0 or (share is not None and round(share * 100) == 0):
        return "no better than", False
    size = f"{share:.0%}" if share is not None else f"{abs(gain):.3g}"
    return (f"{size} below" if gain > 0 else f"{size} above"), gain > 0


def _forgetting_phrase(report: Report, best: ReportRow) -> str:
    """What the best trial cost in general ability, and a trial that forgets much less, if any."""
    if best.forgetting_kl is None:
        return ""
    parts = [f"KL {best.forgetting_kl:.3g} nats/token from the base model"]
    if best.ppl_delta is not None:
        parts.append(f"perplexity on general text {best.ppl_delta:+.3g}")
    if best.general_score is not None and best.general_score_delta is not None:
        before = best.general_score - best.general_score_delta
        parts.append(f"general probe {before:.0%} -> {best.general_score:.0%}")
    phrase = f"; forgetting: {', '.join(parts)}"
    gentler = _gentler_alternative(report, best)
    if gentler is not None:
        row, score_share = gentler
        phrase += (
            f"; trial {row.number} ({describe_params(row.params)}) reaches {score_share:.0%} of "
            f"that score with KL {row.forgetting_kl:.3g}"
        )
    return phrase


def _gentler_alternative(report: Report, best: ReportRow) -> tuple[ReportRow, float] | None:
    """The least-forgetting trial reaching GOOD_ENOUGH of the best score with under half its KL."""
    if report.directions[0] != "maximize" or not best.values or best.forgetting_kl is None:
        return None
    top, limit = best.values[0], best.forgetting_kl / 2
    if top <= 0:
        return None
    candidates = [
        r
        for r in report.complete
        if r.number != best.number
        and r.forgetting_kl is not None
        and r.forgetting_kl < limit
        and r.values[0] >= GOOD_ENOUGH * top  # type: ignore[index]
    ]
    if not candidates:
        return None
    row = min(candidates, key=lambda r: r.forgetting_kl)  # type: ignore[arg-type,return-value]
    return row, row.values[0] / top  # type: ignore[index]


def _cheaper_alternative(report: Report, best: ReportRow) -> tuple[ReportRow, float, float] | None:
    """The cheapest Pareto trial reaching GOOD_ENOUGH of the best score, if cheaper than it."""
    if report.pareto is None or report.directions[0] != "maximize":
        return None
    best_cost = _cost_of(best)
    top = best.values[0] if best.values else 0.0
    if not best_cost or top <= 0:
        return None
    candidates = []
    for number in report.pareto.trials:
        row = report.row(number)
        cost = _cost_of(row)
        if row.number == best.number or not row.values or cost is None or cost >= best_cost:
            continue
        if row.values[0] >= GOOD_ENOUGH * top:
            candidates.append((cost, row))
    if not candidates:
        return None
    cost, row = min(candidates, key=lambda c: c[0])
    return row, row.values[0] / top, cost / best_cost  # type: ignore[index]

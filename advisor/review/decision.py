"""The decision of a report: one sentence a person can act on.

It names the best trial, its gain over the untuned baseline and what it cost; a trial nearly as
good at a fraction of the cost (on the Pareto front); and what the best trial cost in general
ability (forgetting), and a trial nearly as good that forgets much less (`tradeoff`), which
the report's JSON carries as `tradeoff` too. In a study that searched the method it opens with
the method that wins on this data against the runner-up, cost for cost (`methods.py`).
"""

from __future__ import annotations

from .methods import method_verdict
from .report import Measure, Report, ReportRow, Tradeoff, describe_params

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
    verdict = method_verdict(report)  # a searched method: the winner against the runner-up
    sentence = f"{verdict}trial {best.number}" if verdict else f"Trial {best.number}"
    sentence += f" ({head}): {result} at {_cost_phrase(best)}"
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
    found = tradeoff(report)
    if found is None:
        return phrase
    gentler = report.row(found.gentler)
    figures = []
    if gentler.general_score is not None and gentler.general_score != best.general_score:
        before = gentler.general_score - (gentler.general_score_delta or 0.0)
        figures.append(
            f"general probe {before:.0%} -> {gentler.general_score:.0%} against "
            f"{best.general_score:.0%}"
        )
    if gentler.forgetting_kl is not None:
        figures.append(f"KL {gentler.forgetting_kl:.3g} against {best.forgetting_kl:.3g}")
    shown = ".2f" if report.directions[0] == "maximize" else ".3g"
    return phrase + (
        f"; but trial {best.number} forgets much more than trial {gentler.number} "
        f"({describe_params(gentler.params)}), which scores {found.gentler_score:{shown}} against "
        f"{found.best_score:{shown}} {report.metric} ({found.score_share:.0%} as good) with "
        f"{', '.join(figures)}: prefer trial {gentler.number} when the base model's general "
        "ability matters"
    )


NEAR_POINTS = 0.05
"""A maximised score (in [0, 1]) within this many points of the best's is "nearly as good": 5
points is one or two examples of a small eval set (one of the demo's 32 is 3 points), and more
than the 1-2% that tuned LoRA variants differ by (Lee et al. 2026, arXiv:2602.04998)."""
NEAR_SHARE = 0.05
"""A minimised metric (perplexity, eval loss) has no fixed scale: within 5% of the best's value
is nearly as good."""
FORGETS_MORE = 2.0
"""The best trial forgets "much more" when a measure is at least this multiple of the other's."""
MIN_KL = 0.02
"""Below this KL (nats/token) the best trial barely moved from the base model: nothing to flag."""
MIN_PROBE_DROP = 0.1
"""A general-probe drop must exceed the other's by 10 points (3 of its 30 prompts) to count."""


def _near(report: Report, best: float, other: float) -> bool:
    if report.directions[0] == "maximize":
        return best - other <= NEAR_POINTS
    return other <= best * (1 + NEAR_SHARE) if best > 0 else other <= best + NEAR_SHARE


def _drop(row: ReportRow) -> float | None:
    """The general-probe points lost (> 0) or gained (< 0), or None when not measured."""
    return None if row.general_score_delta is None else -row.general_score_delta


def _flags(best: ReportRow, other: ReportRow) -> list[str] | None:
    """The measures on which `best` forgets much more than `other`; None when `other` forgets
    more on any measure both have (then it is no gentler choice, only a different one)."""
    flags = []
    kl, other_kl = best.forgetting_kl, other.forgetting_kl
    if kl is not None and other_kl is not None:
        if other_kl > kl:
            return None
        if kl >= MIN_KL and kl >= FORGETS_MORE * other_kl:
            flags.append("kl")
    drop, other_drop = _drop(best), _drop(other)
    if drop is not None and other_drop is not None:
        if other_drop > drop:
            return None
        if drop - other_drop >= MIN_PROBE_DROP and drop >= FORGETS_MORE * max(other_drop, 0.0):
            flags.append("general_delta")
    return flags


def tradeoff(report: Report) -> Tradeoff | None:
    """The best trial against the best-scoring trial nearly as good that forgets much less.

    The rule, from the evidence: LoRA that learns less also forgets less (Biderman et al. 2024,
    arXiv:2405.09673), so the trial at the top of the metric is often the one that moved
    furthest from the base model, and a trial a few points lower may keep far more of it (the
    demo's best dropped the general probe from 67% to 27%, KL 0.141). Flag the best trial when
    a trial within NEAR_POINTS of its score (NEAR_SHARE of a minimised metric) has at most half
    its KL (the best's at least MIN_KL) or at most half its general-probe drop (at least
    MIN_PROBE_DROP less), and forgets no more on the other measure. Perplexity on general text
    is shown, not flagged on: its change is in units of the base model's perplexity, and KL on
    the same text already measures the shift, in nats/token, at any scale. Of several such
    trials the best-scoring one is named: the one whose choice costs the least score.
    """
    best = report.best_trial
    if best is None or not best.values:
        return None
    top = best.values[0]
    found: list[tuple[ReportRow, list[str]]] = []
    for row in report.complete:
        if row.number == best.number or not _near(report, top, row.values[0]):  # type: ignore[index]
            continue
        flags = _flags(best, row)
        if flags:
            found.append((row, flags))
    if not found:
        return None
    sign = 1.0 if report.directions[0] == "maximize" else -1.0
    row, flags = max(found, key=lambda f: (sign * f[0].values[0], -(f[0].forgetting_kl or 0.0)))  # type: ignore[index]
    score = row.values[0]  # type: ignore[index]
    part, whole = (score, top) if sign > 0 else (top, score)  # a share <= 1 either way
    return Tradeoff(
        best=best.number,
        gentler=row.number,
        best_score=top,
        gentler_score=score,
        score_share=part / whole if whole > 0 else 1.0,
        kl=Measure(best.forgetting_kl, row.forgetting_kl),
        general_delta=Measure(best.general_score_delta, row.general_score_delta),
        ppl_delta=Measure(best.ppl_delta, row.ppl_delta),
        flagged=flags,
    )


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

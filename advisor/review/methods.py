"""Per method, in a study that searched the method (`search.method`): its best trial's score,
gain, cost, time, memory and forgetting, and which method wins on this data at what cost.

The question such a study answers is "rag, lora or full on my data?", which the trial table
answers only after the reader groups the rows by hand; `advisor report` shows this table and
its decision sentence opens with the winner against the runner-up method, cost for cost
("rag wins on this data: json_match 0.81 against lora's 0.62, at $0.01 against $0.20").

Each method is represented by its best complete trial on the metric (the trial a user would
ship), not by a mean over its trials: the sampler spends trials unevenly across methods, so a
method's average says more about where TPE explored than about the method.
"""

from __future__ import annotations

from advisor.directions import best

from .report import MethodSummary, Report, ReportRow


def method_of(row: ReportRow, report_method: str | None) -> str | None:
    """The method a trial ran: its sampled `method` parameter, else the study's one method."""
    return row.params.get("method") or report_method


def method_summaries(rows: list[ReportRow], direction: str) -> list[MethodSummary]:
    """One summary per method a trial sampled (in the order of their first trial), best
    method first; empty for a study of one method (no trial samples `method`)."""
    methods: dict[str, list[ReportRow]] = {}
    for row in rows:
        if "method" in row.params:
            methods.setdefault(str(row.params["method"]), []).append(row)
    out = []
    for method, trials in methods.items():
        done = [r for r in trials if r.state == "complete" and r.values]
        summary = MethodSummary(method, len(trials), len(done))
        top = best(done, lambda r: r.values[0], direction)  # type: ignore[index]
        if top is not None:
            summary.best_trial, summary.score, summary.gain = top.number, top.values[0], top.gain  # type: ignore[index]
            summary.cost_usd, summary.wall_seconds = top.cost_usd, top.wall_seconds
            summary.peak_memory_mb, summary.forgetting_kl = top.peak_memory_mb, top.forgetting_kl
            summary.general_score_delta = top.general_score_delta
        out.append(summary)
    sign = -1.0 if direction == "maximize" else 1.0
    scored = sorted((s for s in out if s.score is not None), key=lambda s: sign * s.score)  # type: ignore[operator]
    return scored + [s for s in out if s.score is None]


def method_verdict(report: Report) -> str:
    """ "rag wins on this data: json_match 0.81 against lora's 0.62, at $0.01 against $0.20",
    or "" when fewer than two methods completed a trial."""
    scored = [s for s in report.methods if s.score is not None]
    if len(scored) < 2:
        missing = [s.method for s in report.methods if s.score is None]
        if scored and missing:
            return (
                f"only {scored[0].method} completed a trial ({', '.join(missing)}: none "
                "complete), so the methods are not compared yet; "
            )
        return ""
    win, second = scored[0], scored[1]
    shown = ".2f" if report.directions[0] == "maximize" else ".3g"
    if win.score == second.score:
        head = f"{win.method} and {second.method} tie on this data ({report.metric} "
        head += f"{win.score:{shown}})"
    else:
        head = (
            f"{win.method} wins on this data: {report.metric} {win.score:{shown}} against "
            f"{second.method}'s {second.score:{shown}}"
        )
    return f"{head}, at {_cost(win)} against {_cost(second)}; "


def _cost(summary: MethodSummary) -> str:
    """Dollars when the study has a price, else the wall time (a CPU study's cost)."""
    if summary.cost_usd:
        cost = summary.cost_usd
        return f"${cost:.2f}" if cost >= 1 else f"${cost:.2g}"
    return f"{summary.wall_seconds or 0.0:.0f} s"

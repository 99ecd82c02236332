"""Command: `advisor report` — what a recorded study found, and what to do about it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from advisor.cli._common import console, print_json, user_errors

if TYPE_CHECKING:  # pragma: no cover
    from advisor.review.compare import Comparison
    from advisor.review.report import Report

_STATE_STYLE = {"complete": "green", "pruned": "yellow", "failed": "red", "running": "cyan"}


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, float) else str(value)


def _params(params: dict[str, Any]) -> str:
    from advisor.review.report import describe_params  # lazy: Optuna, MLflow (loaded by now)

    return describe_params(params) if params else "-"


def render_report(report: Report, out: Console) -> None:
    """The report for people: trials, baseline, best picks, front, importances, decision."""
    title = f"study [bold]{escape(report.study)}[/] · method {report.method or '?'} · "
    title += f"metric {report.metric}"
    if report.baseline_score is not None:
        title += f" · untuned baseline {report.baseline_score:.3f}"
    table = Table(title=title, title_justify="left")
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("parameters", overflow="fold", ratio=3)
    table.add_column("state", no_wrap=True)
    # "KL": how far the trial moved from the base model on general text (nats/token);
    # "Δppl": its perplexity change there. Forgetting, next to the gain it paid for.
    for column in ("score", "gain", "KL", "Δppl", "eval loss", "wall s", "$", "trainable"):
        table.add_column(column, justify="right")
    table.add_column("note", overflow="fold", ratio=1)
    best = report.best_trial
    front = set(report.pareto.trials) if report.pareto else set()
    for row in report.rows:
        label = str(row.number) + (" ★" if best and row.number == best.number else "")
        label += " ◆" if row.number in front else ""
        label += " ▲" if row.warm_start else ""
        style = _STATE_STYLE.get(row.state, "")
        table.add_row(
            label,
            escape(_params(row.params)),
            f"[{style}]{row.state}[/]",
            _fmt(row.score),
            _fmt(row.gain, "+.3f"),
            _fmt(row.forgetting_kl, ".3g"),
            _fmt(row.ppl_delta, "+.3g"),
            _fmt(row.eval_loss),
            _fmt(row.wall_seconds, ".0f"),
            _fmt(row.cost_usd, ".3f"),
            _fmt(row.trainable_params, ","),
            _note(row),
        )
    out.print(table)
    _render_methods(report, out)
    if report.fixed:
        out.print(f"fixed settings: {escape(_params(report.fixed))}")
    out.print("★ best on the metric   ◆ on the cost/accuracy Pareto front   ▲ warm start")
    for pick in report.best:
        what = "best" if pick.objective == report.objectives[0] else "cheapest"
        mark = " (optimised)" if pick.optimised else ""
        out.print(f"  {what} on {pick.objective}{mark}: trial {pick.trial} ({pick.value:.4g})")
    if report.pareto is not None:
        out.print(
            f"Pareto front ({report.pareto.metric} vs {report.pareto.cost}, "
            f"{report.pareto.source}): trials {report.pareto.trials}"
        )
    _render_importances(report, out)
    out.print(f"\n[bold]decision:[/] {escape(report.decision)}")
    _render_plots(report, out)


def _render_methods(report: Report, out: Console) -> None:
    """Per searched method, best first: its best trial's score, gain, cost, time, memory and
    forgetting (a study of one method has none)."""
    if not report.methods:
        return
    table = Table(title="per method (its best trial)", title_justify="left")
    for column in ("method", "trials", "best #", "score", "gain", "$", "wall s", "peak MB"):
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_column("KL", justify="right")
    table.add_column("Δgeneral", justify="right")
    for m in report.methods:
        table.add_row(
            escape(m.method),
            f"{m.complete}/{m.trials}",
            _fmt(m.best_trial),
            _fmt(m.score),
            _fmt(m.gain, "+.3f"),
            _fmt(m.cost_usd, ".3f"),
            _fmt(m.wall_seconds, ".0f"),
            _fmt(m.peak_memory_mb, ".0f"),
            _fmt(m.forgetting_kl, ".3g"),
            _fmt(m.general_score_delta, "+.2f"),
        )
    out.print(table)


def _note(row: Any) -> str:
    """A failed trial's last error line; else where a warm-start trial's parameters came from."""
    if row.error:
        return escape(row.error.splitlines()[-1][:60])
    return escape(f"warm start ({row.warm_start})") if row.warm_start else ""


def _render_importances(report: Report, out: Console) -> None:
    imp = report.importances
    if imp.unavailable:
        out.print(f"importances: unavailable ({escape(imp.unavailable)})")
        return
    out.print(f"importances ({imp.evaluator}):")
    for name, value in sorted(imp.values.items(), key=lambda kv: -kv[1]):
        bar = "█" * max(1, round(value * 30)) if value > 0 else ""
        out.print(f"  {name:>16} {value:5.2f} [cyan]{bar}[/]")


def _render_plots(report: Report, out: Console) -> None:
    if not report.plots:
        return
    out.print(f"plots in {report.plots_dir}:")
    for plot in report.plots:
        if plot.path:
            where = (
                f" (logged to the MLflow parent run as {plot.artifact})" if plot.artifact else ""
            )
            out.print(f"  {Path(plot.path).name}{where}")
        else:
            out.print(f"  {plot.name}: skipped, {escape(plot.skipped or '')}")


_PHASE_LABEL = {
    "load": "load",
    "index": "index",
    "train": "train",
    "eval_loss": "eval loss",
    "generation": "generation",
    "probes": "probes",
    "setup_save": "set-up, save",
    "tracking": "tracking",
}


def render_timing(report: Report, out: Console) -> None:
    """Each finished run's phases in seconds, the totals and the study's training share."""
    timing = report.timing
    if timing is None or not timing.rows:
        out.print("timing: no finished trial has recorded its phases")
        return
    table = Table(title=f"where the time went (seconds) · study {escape(report.study)}")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    # the index column only where a retrieval method built one
    shown = {
        phase: label
        for phase, label in _PHASE_LABEL.items()
        if phase != "index" or timing.totals.get("index", 0.0) > 0
    }
    for label in shown.values():
        table.add_column(label, justify="right")
    table.add_column("wall", justify="right")
    for row in timing.rows:
        table.add_row(
            "base" if row.trial < 0 else str(row.trial),
            row.state,
            *(_fmt(row.seconds.get(phase), ".1f") for phase in shown),
            _fmt(row.wall_seconds, ".1f"),
        )
    table.add_section()
    table.add_row(
        "all",
        "",
        *(_fmt(timing.totals.get(phase), ".1f") for phase in shown),
        _fmt(timing.wall_seconds, ".1f"),
    )
    out.print(table)
    if timing.training_share is not None:
        out.print(
            f"training share: {timing.training_share:.0%} of the trials' wall time "
            f"({timing.totals['train']:.0f} s of {timing.wall_seconds:.0f} s)"
        )


def render_comparison(comparison: Comparison, out: Console) -> None:
    """Side by side: each study's best trial, and which wins on score and on cost."""
    table = Table(title="comparison (each study by its best trial)", title_justify="left")
    for column in (
        "study",
        "method",
        "metric",
        "best",
        "score",
        "gain",
        "wall s",
        "$",
        "trainable",
    ):
        table.add_column(column, justify="left" if column in ("study", "method") else "right")
    for e in comparison.entries:
        marks = (" ★" if e.study == comparison.best_on_score else "") + (
            " $" if e.study == comparison.cheapest else ""
        )
        table.add_row(
            escape(e.study) + marks,
            e.method or "?",
            e.metric,
            _fmt(e.best_trial),
            _fmt(e.best_score),
            _fmt(e.gain, "+.3f"),
            _fmt(e.wall_seconds, ".0f"),
            _fmt(e.cost_usd, ".3f"),
            _fmt(e.trainable_params, ","),
        )
    out.print(table)
    out.print(f"[bold]verdict:[/] {escape(comparison.summary)}")


def report_command(
    studies: list[str] = typer.Argument(
        ...,
        metavar="STUDY [STUDY2 ...]",
        help="A study name (looked up in ./mlruns) or a study file. Two or more: a comparison.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report(s) as one JSON object."),
    plots: Path | None = typer.Option(
        None, "--plots", help="Keep the PNG plots in this folder (default: a temporary folder)."
    ),
    no_log_plots: bool = typer.Option(
        False, "--no-log-plots", help="Do not log the plots to the study's MLflow parent run."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: sqlite under ./mlruns)."
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: sqlite under ./mlruns)."
    ),
    timing: bool = typer.Option(
        False,
        "--timing",
        help="Also show where each trial's time went (load, train, eval loss, generation, "
        "probes, set-up and save, tracking) and the study's training share of wall time.",
    ),
) -> None:
    """Report a recorded study: trials, gain over the untuned baseline, best per objective,
    cost/accuracy Pareto front, parameter importances, plots and a one-line decision."""
    from advisor.review.build import report_studies  # lazy: Optuna, MLflow

    reports, comparison = report_studies(
        list(studies),
        storage=storage,
        tracking_uri=tracking_uri,
        plots_dir=plots,
        log_plots=not no_log_plots,
    )
    if as_json:
        payload: dict[str, Any] = {"reports": [r.to_dict() for r in reports]}
        if len(reports) == 1:
            payload = reports[0].to_dict()
        if comparison is not None:
            payload["comparison"] = comparison.to_dict()
        print_json(payload)
        return
    for report in reports:
        render_report(report, console)
        console.print()
        if timing:
            render_timing(report, console)
            console.print()
    if comparison is not None:
        render_comparison(comparison, console)


def register(app: typer.Typer) -> None:
    """Add `report` to the app."""
    app.command("report")(user_errors(report_command))

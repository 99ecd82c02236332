"""Command: `advisor rerun` — reproduce a study from its logs and print the drift."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from advisor.cli._common import console, err_console, print_json, user_errors
from advisor.cli.tuning import LiveTable

if TYPE_CHECKING:  # pragma: no cover
    from advisor.review.rerun import RerunReport


def _num(value: float | None, spec: str = ".6f") -> str:
    return "-" if value is None else format(value, spec)


def render_drift(report: RerunReport) -> None:
    """The drift report: one row per trial, then versions and the verdict."""
    table = Table(
        title=f"rerun of [bold]{report.original}[/] as [bold]{report.rerun}[/]",
        title_justify="left",
    )
    for column in ("trial", "same params", "state", "eval loss (orig → rerun)", "Δ eval loss",
                   "score (orig → rerun)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "trial" else "right")
    for t in report.trials:
        diff = t.eval_loss_diff
        style = "green" if diff is not None and diff <= 1e-6 else "yellow"
        table.add_row(
            f"{t.original} → {t.rerun}",
            "[green]yes[/]" if t.same_params else "[red]no[/]",
            t.state[0] if t.state[0] == t.state[1] else f"{t.state[0]} → {t.state[1]}",
            f"{_num(t.eval_loss[0])} → {_num(t.eval_loss[1])}",
            f"[{style}]{_num(diff, '.2e')}[/]",
            f"{_num(t.score[0], '.3f')} → {_num(t.score[1], '.3f')}",
        )
    console.print(table)
    base = report.baseline
    console.print(f"baseline score: {_num(base[0], '.3f')} → {_num(base[1], '.3f')}")
    if report.data_changed:
        console.print(f"[yellow]data changed:[/] {', '.join(report.data_changed)}")
    if report.version_drift:
        drift = ", ".join(f"{k} {a} → {b}" for k, (a, b) in report.version_drift.items())
        console.print(f"[yellow]package versions differ:[/] {drift}")
    else:
        console.print("package versions: identical")
    worst = report.max_eval_loss_diff
    verdict = "[green]reproduced[/]" if report.reproduced else "[yellow]drifted[/]"
    console.print(
        f"{verdict}: largest eval-loss difference {_num(worst, '.2e')} (tolerance 1e-6); "
        f"rerun parent run {report.rerun_run_id}"
    )


def rerun_command(
    target: str = typer.Argument(
        ..., help="A study name, a study file, or an MLflow run id (a study's or a trial's run)."
    ),
    trial: int | None = typer.Option(None, "--trial", help="Rerun only this trial."),
    allow_data_change: bool = typer.Option(
        False, "--allow-data-change", help="Rerun even if the data files changed since."
    ),
    name: str | None = typer.Option(None, "--name", help="Name of the new study."),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    as_json: bool = typer.Option(False, "--json", help="Print the drift report as JSON."),
) -> None:
    """Rebuild a study from what was logged, run it again, and report the drift per trial.

    Refuses when the data files changed since the study ran (unless --allow-data-change).
    The rerun is a new study in the same stores, linked to the original run.
    """
    from advisor.review.rerun import rerun  # lazy: Optuna, MLflow

    view = LiveTable()
    try:
        with view:
            report = rerun(
                target,
                trial=trial,
                allow_data_change=allow_data_change,
                name=name,
                storage=storage,
                tracking_uri=tracking_uri,
                observer=view,
            )
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] the rerun study is left incomplete.")
        raise typer.Exit(code=130) from None
    if as_json:
        print_json(report.to_dict())
    else:
        render_drift(report)


def register(app: typer.Typer) -> None:
    """Add `rerun` to the app."""
    app.command("rerun")(user_errors(rerun_command))

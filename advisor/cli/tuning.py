"""Command: `advisor tune` — run a declared study with a live table of trials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.live import Live
from rich.table import Table

from advisor.cli._common import console, err_console, print_json, user_errors

if TYPE_CHECKING:  # pragma: no cover
    from advisor.tune import TrialRow, TuneSummary


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, float) else str(value)


_SHORT = {
    "r": lambda v: f"r={v}",
    "alpha_ratio": lambda v: f"α={v:g}r",
    "lora_alpha": lambda v: f"α={v:g}",
    "learning_rate": lambda v: f"lr={v:.1e}",
    "lora_dropout": lambda v: f"drop={v:g}",
    "target_modules": lambda v: str(v),
}


def _params(params: dict[str, Any]) -> str:
    """Compact, so a row fits an 80-column log: `r=16 α=2r lr=3.0e-03 all_linear`."""
    shown = []
    for key, value in params.items():
        short = _SHORT.get(key)
        if short is not None:
            shown.append(short(value))
        else:
            shown.append(f"{key}={value:.2g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(shown)


_STATE_STYLE = {
    "complete": "green",
    "pruned": "yellow",
    "failed": "red",
    "running": "cyan",
}


class LiveTable:
    """Renders the study as a table that updates on every trial event."""

    def __init__(self) -> None:
        self.summary: TuneSummary | None = None
        self.rows: dict[int, TrialRow] = {}
        self.max_steps = 0
        self.live = Live(console=err_console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveTable:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self.render())
        self.live.__exit__(*exc)

    def render(self) -> Table:
        title = "study"
        if self.summary is not None:
            title = f"study [bold]{self.summary.study}[/] · metric {self.summary.metric}"
            if self.summary.baseline_score is not None:
                title += f" · baseline {self.summary.baseline_score:.3f}"
        table = Table(title=title, title_justify="left", expand=False)
        for column in ("#", "parameters", "state", "step", "eval loss", "score", "gain", "wall s"):
            table.add_column(
                column,
                justify="left" if column == "parameters" else "right",
                no_wrap=column == "parameters",
            )
        best = self._best()
        for number in sorted(self.rows):
            row = self.rows[number]
            style = _STATE_STYLE.get(row.state, "")
            label = "base" if number < 0 else str(number)
            if number == best:
                label += " ★"
            state = row.state if row.state != "running" or not row.phase else row.phase
            table.add_row(
                label,
                _params(row.params) if number >= 0 else "untuned base model",
                f"[{style}]{state}[/]",
                f"{row.step}/{self.max_steps}" if number >= 0 else "-",
                _fmt(row.eval_loss),
                _fmt(row.score),
                _fmt(row.gain, "+.3f"),
                _fmt(row.wall_seconds, ".0f"),
            )
        return table

    def _best(self) -> int | None:
        done = [r for r in self.rows.values() if r.number >= 0 and r.state == "complete"]
        done = [r for r in done if r.score is not None]
        if not done or self.summary is None:
            return None
        pick = max if self.summary.directions[:1] == ["maximize"] else min
        return pick(done, key=lambda r: r.score).number  # type: ignore[arg-type,return-value]

    # TuneObserver
    def study_started(self, summary: TuneSummary, max_steps: int, n_new: int) -> None:
        self.summary, self.max_steps = summary, max_steps
        for row in summary.rows:
            self.rows[row.number] = row
        if summary.skipped_finished:
            err_console.print(
                f"continuing study {summary.study!r}: {summary.skipped_finished} trial(s) "
                f"already finished, {n_new} to run"
            )
        self.live.update(self.render())

    def trial_started(self, row: TrialRow) -> None:
        self.rows[row.number] = row
        self.live.update(self.render())

    def trial_progress(self, row: TrialRow) -> None:
        self.live.update(self.render())

    def trial_finished(self, row: TrialRow, summary: TuneSummary | None) -> None:
        if row.number < 0 and self.summary is not None:
            self.summary.baseline_score = row.score
        self.rows[row.number] = row
        self.live.update(self.render())
        if not err_console.is_terminal:  # logs and CI: a Live table only renders at the end
            label = "baseline" if row.number < 0 else f"trial {row.number}"
            err_console.print(
                f"{label}: {row.state} · score {_fmt(row.score)} · eval loss "
                f"{_fmt(row.eval_loss)} · {_fmt(row.wall_seconds, '.0f')} s · "
                f"{_params(row.params) if row.number >= 0 else 'untuned base model'}",
                highlight=False,
            )


def tune_command(
    study_file: Path = typer.Argument(
        ...,
        help="Study file (YAML), e.g. studies/demo.yaml. Check it first with `advisor validate`.",
    ),
    n_trials: int | None = typer.Option(
        None,
        "--n-trials",
        min=0,
        help="Total trials wanted (overrides optuna.n_trials). Finished trials count towards it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    keep_workdirs: bool = typer.Option(
        False, "--keep-workdirs", help="Keep each trial's work directory (logs, adapter) on disk."
    ),
) -> None:
    """Run (or continue) a study: each trial trains in its own process, logged to MLflow.

    With no stores configured, Optuna and MLflow write SQLite files under ./mlruns/. Re-running
    the same command continues the study without repeating finished trials. Ctrl-C stops the
    running trial and records it as failed.
    """
    from advisor.tune import tune

    view = LiveTable()
    try:
        with view:
            summary = tune(
                study_file, n_trials=n_trials, observer=view, keep_workdirs=keep_workdirs
            )
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted:[/] the running trial is recorded as failed; "
            "run the same command again to continue the study."
        )
        raise typer.Exit(code=130) from None
    if as_json:
        print_json(summary.to_dict())
        return
    _print_footer(summary)


def _print_footer(summary: TuneSummary) -> None:
    done = [r for r in summary.rows if r.state == "complete" and r.score is not None]
    states = {s: sum(r.state == s for r in summary.rows) for s in ("complete", "pruned", "failed")}
    console.print(
        f"{len(summary.rows)} trials ({states['complete']} complete, {states['pruned']} pruned, "
        f"{states['failed']} failed) in {summary.elapsed_seconds:.0f} s"
    )
    if done and summary.best:
        best = [r for r in summary.rows if r.number in summary.best]
        for row in best:
            gain = f" ({row.gain:+.3f} over the untuned baseline)" if row.gain is not None else ""
            console.print(
                f"best: trial {row.number} · {summary.metric} {row.score:.3f}{gain} · "
                f"{_params(row.params)}"
            )
    if summary.registered_model:
        console.print(f"registered: model {summary.registered_model} (MLflow model registry)")
    tracking = summary.stores.get("tracking_uri", "")
    console.print(f"MLflow: {tracking}")
    console.print(f"  browse it with `advisor ui` or `mlflow ui --backend-store-uri {tracking}`")


def register(app: typer.Typer) -> None:
    """Add `tune` to the app."""
    app.command("tune")(user_errors(tune_command))

"""Commands: `advisor tune` (start or continue a study) and `advisor worker` (join one), both
with a live table of trials."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from advisor.cli._common import console, err_console, print_json, user_errors
from advisor.directions import best
from advisor.tuning.stopping import Terminated, deferred_signals

if TYPE_CHECKING:  # pragma: no cover
    from advisor.tuning.summary import TaskSummaries, TrialRow, TuneSummary


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

    def __init__(self, out: Console = err_console) -> None:
        self.out = out
        self.summary: TuneSummary | None = None
        self.rows: dict[int, TrialRow] = {}
        self.max_steps = 0
        self.live = Live(console=out, refresh_per_second=4, transient=False)
        self._entered = self._started = False

    def __enter__(self) -> LiveTable:
        # The table starts drawing at `study_started`: a study file refused before that shows
        # its error alone, not under an empty table.
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self.live.update(self.render())
            self.live.__exit__(*exc)
            self._end_line()

    def _end_line(self) -> None:
        """Rich ends a live table's last line only on a terminal: in a log (or `2>&1`) the next
        line printed (the study's summary) would start on the table's bottom border."""
        if not self.out.is_terminal:
            self.out.line()

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
        if self.summary is None:
            return None
        done = [r for r in self.rows.values() if r.number >= 0 and r.state == "complete"]
        top = best(done, lambda r: r.score, self.summary.directions[0])
        return None if top is None else top.number

    # TuneObserver
    def study_started(self, summary: TuneSummary, max_steps: int, n_new: int) -> None:
        if self._started and self.summary is not None and summary.study != self.summary.study:
            self._next_study()
        if self._entered and not self._started:
            self.live.__enter__()
            self._started = True
        self.summary, self.max_steps = summary, max_steps
        for note in summary.notes:
            self.out.print(f"[yellow]warning:[/] {note}", highlight=False)
        for row in summary.rows:
            self.rows[row.number] = row
        if summary.skipped_finished:
            self.out.print(
                f"continuing study {summary.study!r}: {summary.skipped_finished} trial(s) "
                f"already finished, {n_new} to run"
            )
        self.live.update(self.render())

    def _next_study(self) -> None:
        """The next task of a multi-task study: leave the finished table, start a new one."""
        self.live.update(self.render())
        self.live.stop()
        self._end_line()
        self.live = Live(console=self.out, refresh_per_second=4, transient=False)
        self.rows, self._started = {}, False

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
        if not self.out.is_terminal:  # logs and CI: a Live table only renders at the end
            label = "baseline" if row.number < 0 else f"trial {row.number}"
            self.out.print(
                f"{label}: {row.state} · score {_fmt(row.score)} · eval loss "
                f"{_fmt(row.eval_loss)} · {_fmt(row.wall_seconds, '.0f')} s · "
                f"{_params(row.params) if row.number >= 0 else 'untuned base model'}",
                highlight=False,
            )


STUDY_FILE = typer.Argument(
    ..., help="Study file (YAML), e.g. studies/demo.yaml. Check it first with `advisor validate`."
)
STORAGE = typer.Option(
    None,
    "--storage",
    help="Optuna storage URL, overriding the study file's `storage` (default "
    "sqlite:///mlruns/optuna.db). Many workers need a shared server: postgresql://USER:PASS@HOST/DB.",
)
TRACKING_URI = typer.Option(
    None,
    "--tracking-uri",
    help="MLflow tracking URI, overriding the study file's `tracking.uri`: an MLflow server "
    "(http://HOST:5000) or a database (postgresql://...). Default sqlite:///mlruns/mlflow.db.",
)
GPUS = typer.Option(
    None,
    "--gpus",
    help="GPUs this process's trials may use, e.g. 0 or 2,3 (sets CUDA_VISIBLE_DEVICES for its "
    "trials). Run one worker per GPU to train several trials at once.",
)
AS_JSON = typer.Option(False, "--json", help="Print the summary as one JSON object.")
KEEP = typer.Option(
    False, "--keep-workdirs", help="Keep each trial's work directory (logs, adapter) on disk."
)


def tune_command(
    study_file: Path = STUDY_FILE,
    n_trials: int | None = typer.Option(
        None,
        "--n-trials",
        min=0,
        help="Total trials wanted (overrides optuna.n_trials). Finished trials count towards it.",
    ),
    storage: str | None = STORAGE,
    tracking_uri: str | None = TRACKING_URI,
    gpus: str | None = GPUS,
    as_json: bool = AS_JSON,
    keep_workdirs: bool = KEEP,
    continue_changed: bool = typer.Option(
        False,
        "--continue-changed",
        help="Continue a study whose file changed since it started (a changed file is refused "
        "otherwise): its new trials are then not comparable with the earlier ones.",
    ),
) -> None:
    """Run (or continue) a study: each trial trains in its own process, logged to MLflow.

    With no stores configured, Optuna and MLflow write SQLite files under ./mlruns/. Re-running
    the same command continues the study without repeating finished trials; a study file that
    changed in between (other steps, data, search space) is refused, showing what differs,
    unless --continue-changed. A second `tune` of a study that is running joins it as a
    worker. Ctrl-C or SIGTERM stops the running trial (recorded KILLED, retried on the next
    start). To train on several GPUs or machines, start the study here with a shared --storage,
    then `advisor worker`. A study with `tasks` tunes each task in turn, as its own study
    `<study>.<task>`.
    """
    from advisor.study.tasks import declares_tasks  # lazy: keeps pydantic off `advisor --help`
    from advisor.tuning.entry import tune, tune_tasks  # lazy: Optuna, MLflow

    _run_view(
        lambda view: (tune_tasks if declares_tasks(study_file) else tune)(
            study_file,
            n_trials=n_trials,
            observer=view,
            keep_workdirs=keep_workdirs,
            storage=storage,
            tracking_uri=tracking_uri,
            continue_changed=continue_changed,
        ),
        gpus,
        as_json,
        "run the same command again to continue the study.",
    )


def worker_command(
    study_file: Path = STUDY_FILE,
    storage: str | None = STORAGE,
    tracking_uri: str | None = TRACKING_URI,
    gpus: str | None = GPUS,
    wait: float = typer.Option(
        120.0, "--wait", min=0, help="Seconds to wait for `advisor tune` to create the study."
    ),
    as_json: bool = AS_JSON,
    keep_workdirs: bool = KEEP,
) -> None:
    """Join a study started by `advisor tune` and run its trials until its budget is spent.

    Start any number of workers, on this machine or others, with the same study file and the
    same shared stores (PostgreSQL for Optuna, an MLflow server or database for tracking).
    Trials are never duplicated; a worker killed mid-trial has its trial failed and retried
    with the same parameters by the next worker that asks.
    """
    from advisor.study.tasks import declares_tasks  # lazy: keeps pydantic off `advisor --help`
    from advisor.tuning.entry import work, work_tasks  # lazy: Optuna, MLflow

    _run_view(
        lambda view: (work_tasks if declares_tasks(study_file) else work)(
            study_file,
            observer=view,
            keep_workdirs=keep_workdirs,
            storage=storage,
            tracking_uri=tracking_uri,
            wait_s=wait,
        ),
        gpus,
        as_json,
        "start the worker again to go on.",
    )


def _run_view(
    job: Callable[[LiveTable], TuneSummary | TaskSummaries],
    gpus: str | None,
    as_json: bool,
    again: str,
) -> None:
    """Run `job` under the live table; SIGTERM ends it like Ctrl-C (trial KILLED, exit 143).

    Both only request the stop; it is raised where no database write is cut in half
    (`advisor.tuning.stopping`).
    """
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    view = LiveTable()
    try:
        with deferred_signals(), view:
            summary = job(view)
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        word = "terminated" if terminated else "interrupted"
        err_console.print(
            f"[yellow]{word}:[/] the running trial is recorded as killed and will be retried; "
            + again
        )
        raise typer.Exit(code=143 if terminated else 130) from None
    if as_json:
        print_json(summary.to_dict())
        return
    from advisor.tuning.summary import TaskSummaries  # lazy: Optuna, MLflow (loaded by now)

    if not isinstance(summary, TaskSummaries):
        _print_footer(summary)
        return
    for task, one in summary.tasks.items():
        console.print(f"[bold]task {task}[/] (study {one.study})")
        _print_footer(one)


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
    """Add `tune` and `worker` to the app."""
    app.command("tune")(user_errors(tune_command))
    app.command("worker")(user_errors(worker_command))

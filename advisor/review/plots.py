"""PNG plots of a recorded study, written to a folder (and logged to the study's MLflow run).

Optuna draws the optimisation history, the parameter importances and a two-objective Pareto
front (`optuna.visualization.matplotlib`); the rest are small matplotlib plots of our own: score
vs wall time with the front highlighted (so a one-objective study shows its trade-off too), the
score by r and by target_modules, and the score gain against forgetting (KL from the base
model). matplotlib is imported here only, with the Agg backend: no display is needed and
`advisor --help` never pays for it.

A plot that cannot be drawn (too few complete trials, a parameter that was not searched) is
skipped with its reason in the report, never an exception.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optuna.exceptions import ExperimentalWarning

from advisor.stores.records import RecordedStudy

from .report import PlotFile, Report


class SkipPlot(Exception):
    """This plot cannot be drawn for this study; the message says why."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _need_complete(report: Report, n: int) -> None:
    if len(report.complete) < n:
        have = len(report.complete)
        raise SkipPlot(f"needs at least {n} complete trial(s), the study has {have}")


def _target(recorded: RecordedStudy) -> Callable[[Any], float] | None:
    """Optuna's plots need a target for multi-objective studies: the metric (first value)."""
    return (lambda t: t.values[0]) if len(recorded.study.directions) > 1 else None


def _history(recorded: RecordedStudy, report: Report) -> Any:
    from optuna.visualization.matplotlib import plot_optimization_history

    _need_complete(report, 1)
    ax = plot_optimization_history(
        recorded.study, target=_target(recorded), target_name=report.metric
    )
    return ax.figure


def _importances(recorded: RecordedStudy, report: Report) -> Any:
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_param_importances

    if report.importances.unavailable:
        raise SkipPlot(report.importances.unavailable)
    ax = plot_param_importances(
        recorded.study,
        evaluator=PedAnovaImportanceEvaluator(),
        target=_target(recorded),
        target_name=report.metric,
    )
    return ax.figure


def _pareto(recorded: RecordedStudy, report: Report) -> Any:
    if report.pareto is None:
        raise SkipPlot("no complete trial with a wall time")
    if report.pareto.source == "optuna.best_trials":
        from optuna.visualization.matplotlib import plot_pareto_front

        _need_complete(report, 1)
        ax = plot_pareto_front(recorded.study, target_names=[report.metric, report.pareto.cost])
        return ax.figure
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in report.complete if r.wall_seconds is not None]
    front = [r for r in rows if r.number in report.pareto.trials]
    front.sort(key=lambda r: r.wall_seconds)
    ax.scatter(
        [r.wall_seconds for r in rows],
        [r.values[0] for r in rows],  # type: ignore[index]
        color="lightgray",
        edgecolor="gray",
        label="trials",
    )
    ax.plot(
        [r.wall_seconds for r in front],
        [r.values[0] for r in front],  # type: ignore[index]
        "o-",
        color="tab:red",
        label="Pareto front",
    )
    for row in rows:
        ax.annotate(str(row.number), (row.wall_seconds, row.values[0]), fontsize=8)  # type: ignore[index]
    ax.set_xlabel("wall seconds (lower is cheaper)")
    ax.set_ylabel(report.metric)
    ax.set_title(f"{report.study}: {report.metric} vs cost")
    ax.legend()
    return fig


def _score_by(param: str) -> Callable[[RecordedStudy, Report], Any]:
    """A strip plot of the metric per value of `param` (complete trials)."""

    def draw(recorded: RecordedStudy, report: Report) -> Any:
        _need_complete(report, 1)
        rows = [r for r in report.complete if param in r.params]
        if not rows:
            fixed = report.fixed.get(param)
            why = f"fixed at {fixed}" if fixed is not None else "not part of this study"
            raise SkipPlot(f"{param} was not searched ({why})")
        values = sorted({str(r.params[param]) for r in rows}, key=_natural)
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for x, value in enumerate(values):
            ys = [r.values[0] for r in rows if str(r.params[param]) == value]  # type: ignore[index]
            offsets = [x + (i - (len(ys) - 1) / 2) * 0.06 for i in range(len(ys))]
            ax.scatter(offsets, ys, color="tab:blue", alpha=0.8)
            if len(ys) > 1:
                ax.hlines(sum(ys) / len(ys), x - 0.25, x + 0.25, color="tab:orange")
        ax.set_xticks(range(len(values)), values, rotation=20 if param != "r" else 0)
        ax.set_xlabel(param)
        ax.set_ylabel(report.metric)
        ax.set_title(f"{report.study}: {report.metric} by {param}")
        return fig

    return draw


def _gain_vs_forgetting(recorded: RecordedStudy, report: Report) -> Any:
    """Each complete trial's gain over the baseline (or score) against its KL from the base."""
    rows = [r for r in report.complete if r.forgetting_kl is not None]
    if not rows:
        raise SkipPlot("no complete trial measured forgetting (eval.forgetting: false?)")
    gains = all(r.gain is not None for r in rows)
    ys = [r.gain if gains else r.values[0] for r in rows]  # type: ignore[index]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r.forgetting_kl for r in rows], ys, color="tab:purple")
    for row, y in zip(rows, ys, strict=True):
        ax.annotate(str(row.number), (row.forgetting_kl, y), fontsize=8)
    if gains:
        ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_xlabel("KL(base || tuned) on general text, nats/token (lower forgets less)")
    ax.set_ylabel(f"{report.metric} gain over the baseline" if gains else report.metric)
    ax.set_title(f"{report.study}: gain vs forgetting")
    return fig


def _natural(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


PLOTS: dict[str, Callable[[RecordedStudy, Report], Any]] = {
    "history": _history,
    "importances": _importances,
    "pareto": _pareto,
    "score_by_r": _score_by("r"),
    "score_by_target_modules": _score_by("target_modules"),
    "gain_vs_forgetting": _gain_vs_forgetting,
}
"""Plot name -> drawer returning a matplotlib Figure (or raising SkipPlot). Files: `<name>.png`."""


def make_plots(recorded: RecordedStudy, report: Report, out_dir: Path) -> list[PlotFile]:
    """Draw every plot of `PLOTS` into `out_dir` as PNG; skipped ones carry their reason."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[PlotFile] = []
    for name, draw in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                fig = draw(recorded, report)
        except SkipPlot as why:
            made.append(PlotFile(name, skipped=str(why)))
            continue
        except (ValueError, RuntimeError) as error:  # Optuna refuses odd studies: skip, say why
            made.append(PlotFile(name, skipped=f"could not draw: {error}"))
            continue
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        made.append(PlotFile(name, path=str(path)))
    return made

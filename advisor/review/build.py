"""A recorded study read into a `Report`: trials, best picks, the Pareto front, importances.

Everything is read back from the stores `advisor tune` wrote (Optuna trials and their user
attributes, the MLflow runs), so a report can be rebuilt at any time, on any machine that sees
the stores. `report_study` is the whole `advisor report` command as one library call: build,
draw the plots (`plots.py`), log them to the study's parent run; `report_studies` adds the
comparison of several studies (`compare.py`).

Forgetting (`runners.forgetting`): each trial's KL divergence from the base model and perplexity
change on general text, and its general-probe score, are read from the trial's MLflow run (or
Optuna attributes, when the tuner stored them there), so the report sets the score gain against
what the gain cost in general ability.

Why compute a Pareto front for a one-objective study too: a study tuned for the metric alone
still spent different amounts of time per trial, and "almost as good at half the cost" is the
question a user asks next. For two objectives Optuna's own `study.best_trials` is the front.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

from advisor.directions import best, gain
from advisor.errors import AdvisorInputError
from advisor.redact import redact_url
from advisor.stores import keys
from advisor.stores.records import RecordedStudy, open_recorded_study, trial_record
from advisor.study import yamlsafe
from advisor.study.sections import COST_OBJECTIVES

from . import plots
from .compare import Comparison, compare_reports
from .decision import decide, tradeoff
from .methods import method_summaries
from .report import BestPick, Importances, ParetoFront, Report, ReportRow, display_params
from .timing import timing_of


def build_report(recorded: RecordedStudy) -> Report:
    """Read a recorded study into a `Report` (no plots: see `plots.make_plots`)."""
    study = recorded.study
    objectives = list(study.user_attrs.get(keys.OBJECTIVES) or ["score"])
    directions = [d.name.lower() for d in study.directions]
    baseline = recorded.baseline_score
    trials = study.get_trials(deepcopy=False)
    rows = [_row(t, baseline, directions[0]) for t in trials]
    measured = _run_metrics(recorded)
    for trial, row in zip(trials, rows, strict=True):
        _add_forgetting(row, trial.user_attrs, measured.get(row.run_id or "", {}))
    method, fixed = _study_settings(recorded)
    best = _best_picks(rows, objectives, directions)
    report = Report(
        study=recorded.name,
        method=method,
        metric=recorded.metric,
        objectives=objectives,
        directions=directions,
        baseline_score=baseline,
        rows=rows,
        fixed=fixed,
        best=best,
        pareto=_pareto(study, rows, objectives, directions, recorded.metric),
        importances=_importances(study, rows),
        decision="",
        parent_run_id=recorded.tracker.parent_run_id,
        tracking_uri=redact_url(recorded.stores.tracking_uri),  # printed by --json
        baseline_general_score=measured.get(BASELINE, {}).get("general_score"),
        timing=timing_of(rows, measured, measured.get(BASELINE_RUN)),
    )
    report.methods = method_summaries(rows, directions[0])
    report.tradeoff = tradeoff(report)
    report.decision = decide(report)
    return report


def _row(trial: Any, baseline: float | None, direction: str) -> ReportRow:
    row = trial_record(trial, ReportRow)
    row.params = display_params(row.params)
    row.warm_start = trial.user_attrs.get(keys.WARM_START)
    if row.score is not None and baseline is not None:
        row.gain = gain(row.score, baseline, direction)
    if row.state != "failed":
        row.error = None
    return row


FORGETTING = {
    "forgetting_kl": "forgetting_kl",
    "ppl_delta": "forgetting_ppl_delta",
    "general_score": "general_score",
    "general_score_delta": "general_score_delta",
}
"""ReportRow field -> the metric (and Optuna attribute) holding it."""
BASELINE = "baseline"
BASELINE_RUN = "baseline run"
"""The latest baseline run's metrics (BASELINE: the latest that measured forgetting)."""


def _run_metrics(recorded: RecordedStudy) -> dict[str, dict[str, float]]:
    """Latest metrics of the study's child runs by run id, the baseline's also under BASELINE.

    One search over the study's runs, not one request per trial."""
    tracker = recorded.tracker
    if tracker.parent_run_id is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    for run in tracker.child_runs():
        metrics = dict(run.data.metrics)
        out[run.info.run_id] = metrics
        if run.data.tags.get(keys.ROLE) == "baseline":
            out[BASELINE_RUN] = metrics  # runs come oldest first: the latest baseline wins
            if "general_score" in metrics:
                out[BASELINE] = metrics
    return out


def _add_forgetting(row: ReportRow, attrs: dict[str, Any], metrics: dict[str, float]) -> None:
    """Fill the forgetting fields of a complete trial: Optuna attribute, else run metric."""
    if row.state != "complete":
        return
    for name, key in FORGETTING.items():
        value = attrs.get(key, metrics.get(key))
        if value is not None:
            setattr(row, name, float(value))


def _study_settings(recorded: RecordedStudy) -> tuple[str | None, dict[str, Any]]:
    """The method and the fixed (unsearched) settings, from the spec or the logged study.yaml."""
    spec: dict[str, Any] | None = None
    if recorded.spec is not None:
        spec = recorded.spec.model_dump(mode="json")
    elif recorded.tracker.parent_run_id:
        spec = _logged_spec(recorded)
    if not spec:
        return None, {}
    fixed: dict[str, Any] = {}
    for name, value in (spec.get("search") or {}).items():
        if value is None or isinstance(value, dict):
            continue
        if isinstance(value, list):
            if len(value) != 1:
                continue
            value = value[0]
        fixed[name] = ",".join(value) if isinstance(value, list) else value
    per_method = (spec.get("search") or {}).get("per_method") or {}
    for method, own in per_method.items():  # a method's own fixed value (full's learning rate)
        for name, value in (own or {}).items():
            if value is not None and not isinstance(value, dict | list):
                fixed[f"{method}.{name}"] = value
    searched = (spec.get("search") or {}).get("method")  # a searched method: all of them
    return (", ".join(searched) if searched else spec.get("method")), fixed


def _logged_spec(recorded: RecordedStudy) -> dict[str, Any] | None:
    text = recorded.tracker.read_artifact_text(recorded.tracker.parent_run_id, keys.STUDY_FILE)
    loaded = yamlsafe.load(text)[1] if text else None
    return loaded if isinstance(loaded, dict) else None


def _best_picks(
    rows: list[ReportRow], objectives: list[str], directions: list[str]
) -> list[BestPick]:
    """Best complete trial on the metric (Optuna's first objective), then the cheapest per cost."""
    done = [r for r in rows if r.state == "complete" and r.values]
    first = best(done, lambda r: r.values[0], directions[0])  # type: ignore[index]
    if first is None:
        return []
    picks = [BestPick(objectives[0], directions[0], first.number, first.values[0], True)]  # type: ignore[index]
    for cost in COST_OBJECTIVES:
        known = [r for r in done if getattr(r, cost) is not None]
        if known:
            cheapest = min(known, key=lambda r: float(getattr(r, cost)))
            value = float(getattr(cheapest, cost))
            picks.append(BestPick(cost, "minimize", cheapest.number, value, cost in objectives))
    return picks


def _pareto(
    study: Any,
    rows: list[ReportRow],
    objectives: list[str],
    directions: list[str],
    metric: str,
) -> ParetoFront | None:
    """Optuna's front for a two-objective study; else metric vs wall_seconds, computed here."""
    if len(objectives) >= 2:
        try:
            numbers = sorted(t.number for t in study.best_trials)
        except (ValueError, RuntimeError):
            numbers = []
        return ParetoFront(metric, objectives[1], numbers, "optuna.best_trials")
    points = [
        (r.number, r.values[0], r.wall_seconds)  # type: ignore[index]
        for r in rows
        if r.state == "complete" and r.values and r.wall_seconds is not None
    ]
    if not points:
        return None
    sign = 1.0 if directions[0] == "maximize" else -1.0
    front = non_dominated([(n, sign * v, -w) for n, v, w in points])
    return ParetoFront(metric, "wall_seconds", front, "computed")


def non_dominated(points: list[tuple[int, float, float]]) -> list[int]:
    """Ids of points no other point beats on both axes (both axes maximised), sorted."""
    front = []
    for ident, a, b in points:
        dominated = any(
            (a2 >= a and b2 >= b) and (a2 > a or b2 > b)
            for other, a2, b2 in points
            if other != ident
        )
        if not dominated:
            front.append(ident)
    return sorted(front)


def _importances(study: Any, rows: list[ReportRow]) -> Importances:
    """Optuna's importances of the searched params, or the reason they cannot be computed."""
    done = [r for r in rows if r.state == "complete" and r.values]
    if len(done) < 2:
        return Importances(
            unavailable=f"needs at least 2 complete trials, the study has {len(done)}"
        )
    varying = {
        name
        for name in {k for r in done for k in r.params}
        if len({repr(r.params.get(name)) for r in done}) > 1
    }
    if not varying:
        return Importances(unavailable="no searched parameter varies across the complete trials")
    if len({r.values[0] for r in done}) == 1:  # type: ignore[index]
        return Importances(
            unavailable="every complete trial has the same score: nothing to explain"
        )
    evaluator = PedAnovaImportanceEvaluator()
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = get_param_importances(study, evaluator=evaluator, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return Importances(unavailable=f"Optuna could not evaluate importances: {error}")
    return Importances(
        values={k: float(v) for k, v in values.items()}, evaluator=type(evaluator).__name__
    )


# -- the whole command, as one library call -------------------------------------------------
def report_study(
    study: str,
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    plots_dir: Path | None = None,
    make_plots: bool = True,
    log_plots: bool = True,
    root: Path | None = None,
) -> Report:
    """Open a recorded study (name or study file), build its report, draw and log its plots.

    Plots go to `plots_dir` (a new temporary folder when None) and, unless `log_plots` is
    False, onto the study's MLflow parent run under `plots/`, where the MLflow UI shows them.
    """
    if plots_dir is not None:
        check_plots_dir(plots_dir)
    recorded = open_recorded_study(study, storage=storage, tracking_uri=tracking_uri, root=root)
    return _report(recorded, plots_dir=plots_dir, make_plots=make_plots, log_plots=log_plots)


def _report(
    recorded: RecordedStudy, *, plots_dir: Path | None, make_plots: bool, log_plots: bool
) -> Report:
    report = build_report(recorded)
    if not make_plots:
        return report
    out = plots_dir or Path(tempfile.mkdtemp(prefix=f"advisor-report-{recorded.name}-"))
    report.plots = plots.make_plots(recorded, report, out)
    report.plots_dir = str(out.resolve())
    drawn = [p for p in report.plots if p.path]
    if log_plots and drawn and recorded.tracker.parent_run_id:
        logged = recorded.tracker.log_artifacts_to_parent([Path(p.path) for p in drawn])  # type: ignore[arg-type]
        for plot, artifact in zip(drawn, logged, strict=True):
            plot.artifact = artifact
    return report


def report_studies(
    studies: list[str],
    *,
    storage: str | None = None,
    tracking_uri: str | None = None,
    plots_dir: Path | None = None,
    make_plots: bool = True,
    log_plots: bool = True,
    root: Path | None = None,
) -> tuple[list[Report], Comparison | None]:
    """Reports of one or more studies; with two or more, their comparison too.

    Every study is opened before the first plot is drawn or logged, so a misspelt second name
    leaves no plots of the first behind. Each study's plots go to their own subfolder of
    `plots_dir` when one is given.
    """
    subs = [
        plots_dir / Path(name).stem if plots_dir and len(studies) > 1 else plots_dir
        for name in studies
    ]
    for sub in subs:
        if sub is not None:
            check_plots_dir(sub)
    opened = [
        open_recorded_study(name, storage=storage, tracking_uri=tracking_uri, root=root)
        for name in studies
    ]
    reports = [
        _report(recorded, plots_dir=sub, make_plots=make_plots, log_plots=log_plots)
        for recorded, sub in zip(opened, subs, strict=True)
    ]
    return reports, (compare_reports(reports) if len(reports) > 1 else None)


def check_plots_dir(plots_dir: Path) -> None:
    """Refuse a `--plots` folder that cannot hold the plots: a file (or a fifo, a device) of
    that name or on the path to it, or a folder this user cannot write. Checked before any
    study is opened, so nothing is drawn or logged first."""
    found = (plots_dir, *plots_dir.absolute().parents)
    existing = next(p for p in found if p.exists() or p.is_symlink())
    if not existing.is_dir():
        what = "is a file" if existing.is_file() else "exists and is not a folder"
        raise AdvisorInputError(
            f"cannot write the plots to {plots_dir}: {existing} {what}",
            where="--plots",
            fix="give a folder (new or existing) for the PNG plots, e.g. --plots plots/",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AdvisorInputError(
            f"cannot write the plots to {plots_dir}: {existing} is not writable",
            where="--plots",
            fix="give a folder you can write, e.g. --plots plots/",
        )

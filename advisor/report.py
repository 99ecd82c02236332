"""`advisor report`: a recorded study as data — trials, baseline, best picks, Pareto front,
parameter importances and one plain-language decision.

Everything is read back from the stores `advisor tune` wrote (Optuna trials and their user
attributes, the MLflow parent run), so a report can be rebuilt at any time, on any machine that
sees the stores. The report is a dataclass tree: the CLI renders it with rich, `--json` prints
`Report.to_dict()`, and `advisor.plots` draws from the same Optuna study.

Forgetting (`runners.forgetting`): each trial's KL divergence from the base model and perplexity
change on general text, and its general-probe score, are read from the trial's MLflow run (or
Optuna attributes, when the tuner stored them there), so the report sets the score gain against
what the gain cost in general ability.

Why compute a Pareto front for a one-objective study too: a study tuned for the metric alone
still spent different amounts of time per trial, and "almost as good at half the cost" is the
question a user asks next. For two objectives Optuna's own `study.best_trials` is the front.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.trials import COSTS, state_of

if TYPE_CHECKING:  # pragma: no cover
    from advisor.compare import Comparison
    from advisor.records import RecordedStudy

GOOD_ENOUGH = 0.9
"""A cheaper trial is worth naming in the decision when it reaches this share of the best score."""


@dataclass
class ReportRow:
    """One trial as the report shows it. `gain` = score - untuned baseline score."""

    number: int
    state: str
    params: dict[str, Any]
    """Searched parameters; target_modules decoded (a preset name, or `q_proj,v_proj`)."""
    score: float | None = None
    gain: float | None = None
    eval_loss: float | None = None
    wall_seconds: float | None = None
    cost_usd: float | None = None
    gpu_hours: float | None = None
    peak_memory_mb: float | None = None
    peak_reserved_mb: float | None = None
    """Peak CUDA memory reserved (trials on a GPU only; left out of the JSON otherwise)."""
    trainable_params: int | None = None
    adapter_mb: float | None = None
    device: str | None = None
    error: str | None = None
    run_id: str | None = None
    values: list[float] | None = None
    """Optuna's objective values (complete trials only)."""
    forgetting_kl: float | None = None
    """Mean per-token KL(base || tuned) on the general-text probe (nats); 0 means untouched."""
    ppl_delta: float | None = None
    """Perplexity change on the general-text probe (> 0: general text became less likely)."""
    general_score: float | None = None
    """Share of the general instruction probe answered correctly."""
    general_score_delta: float | None = None
    """general_score - the base model's (< 0: general ability lost)."""


@dataclass
class BestPick:
    """The best complete trial for one objective: the metric, or a cost (the cheapest)."""

    objective: str
    direction: str
    trial: int
    value: float
    optimised: bool
    """True when this objective was one the study optimised (else it is read off the results)."""


@dataclass
class ParetoFront:
    """Complete trials that no other trial beats on both the metric and the cost."""

    metric: str
    cost: str
    trials: list[int]
    source: str
    """`optuna.best_trials` (two-objective study) or `computed` (metric vs wall_seconds)."""


@dataclass
class Importances:
    """Parameter importances (Optuna's evaluator, normalised), or why there are none."""

    values: dict[str, float] = field(default_factory=dict)
    evaluator: str | None = None
    unavailable: str | None = None


@dataclass
class PlotFile:
    """A PNG written by `advisor.plots`, or the reason it was skipped."""

    name: str
    path: str | None = None
    skipped: str | None = None
    artifact: str | None = None
    """Where it was logged on the parent run (`plots/<file>`), if it was."""


@dataclass
class Report:
    """A recorded study, ready to render or to print as JSON."""

    study: str
    method: str | None
    metric: str
    objectives: list[str]
    directions: list[str]
    baseline_score: float | None
    rows: list[ReportRow]
    fixed: dict[str, Any]
    """Settings the study did not search (r, alpha_ratio, target_modules, ...)."""
    best: list[BestPick]
    pareto: ParetoFront | None
    importances: Importances
    decision: str
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    plots: list[PlotFile] = field(default_factory=list)
    plots_dir: str | None = None
    baseline_general_score: float | None = None
    """The untuned model's score on the general instruction probe (forgetting's reference)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row in out["rows"]:  # a CPU study's report reads as before GPU memory was recorded
            if row.get("peak_reserved_mb") is None:
                row.pop("peak_reserved_mb", None)
        return out

    def row(self, number: int) -> ReportRow:
        return next(r for r in self.rows if r.number == number)

    @property
    def complete(self) -> list[ReportRow]:
        return [r for r in self.rows if r.state == "complete" and r.values]

    @property
    def best_trial(self) -> ReportRow | None:
        pick = next((b for b in self.best if b.objective == self.objectives[0]), None)
        return self.row(pick.trial) if pick else None


def build_report(recorded: RecordedStudy) -> Report:
    """Read a recorded study into a `Report` (no plots: see `advisor.plots.make_plots`)."""
    study = recorded.study
    objectives = list(study.user_attrs.get("advisor.objectives") or ["score"])
    directions = [d.name.lower() for d in study.directions]
    baseline = recorded.baseline_score
    trials = study.get_trials(deepcopy=False)
    rows = [_row(t, baseline) for t in trials]
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
        tracking_uri=recorded.stores.tracking_uri,
        baseline_general_score=measured.get(BASELINE, {}).get("general_score"),
    )
    report.decision = decide(report)
    return report


def display_params(params: dict[str, Any]) -> dict[str, Any]:
    """Trial params for people: target_modules decoded from its `+`-joined Optuna encoding."""
    from advisor.study import decode_choice

    shown = dict(params)
    if isinstance(shown.get("target_modules"), str):
        decoded = decode_choice(shown["target_modules"])
        shown["target_modules"] = decoded if isinstance(decoded, str) else ",".join(decoded)
    return shown


def _row(trial: Any, baseline: float | None) -> ReportRow:
    attrs = trial.user_attrs
    state = state_of(trial)
    score = attrs.get("score")
    return ReportRow(
        number=trial.number,
        state=state,
        params=display_params(trial.params),
        score=score,
        gain=score - baseline if score is not None and baseline is not None else None,
        eval_loss=attrs.get("eval_loss"),
        wall_seconds=attrs.get("wall_seconds"),
        cost_usd=attrs.get("cost_usd"),
        gpu_hours=attrs.get("gpu_hours"),
        peak_memory_mb=attrs.get("peak_memory_mb"),
        peak_reserved_mb=attrs.get("peak_reserved_mb"),
        trainable_params=attrs.get("trainable_params"),
        adapter_mb=attrs.get("adapter_mb"),
        device=attrs.get("device"),
        error=attrs.get("error") if state == "failed" else None,
        run_id=attrs.get("mlflow_run_id"),
        values=list(trial.values) if state == "complete" and trial.values else None,
    )


FORGETTING = {
    "forgetting_kl": "forgetting_kl",
    "ppl_delta": "forgetting_ppl_delta",
    "general_score": "general_score",
    "general_score_delta": "general_score_delta",
}
"""ReportRow field -> the metric (and Optuna attribute) holding it."""
BASELINE = "baseline"


def _run_metrics(recorded: RecordedStudy) -> dict[str, dict[str, float]]:
    """Latest metrics of the study's child runs by run id, the baseline's also under BASELINE.

    One search over the study's runs, not one request per trial."""
    tracker = recorded.tracker
    if tracker.parent_run_id is None:
        return {}
    from advisor.tracking import ROLE

    out: dict[str, dict[str, float]] = {}
    for run in tracker.child_runs():
        metrics = dict(run.data.metrics)
        out[run.info.run_id] = metrics
        if run.data.tags.get(ROLE) == "baseline" and "general_score" in metrics:
            out[BASELINE] = metrics  # runs come oldest first: the latest baseline wins
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
    return spec.get("method"), fixed


def _logged_spec(recorded: RecordedStudy) -> dict[str, Any] | None:
    import yaml

    text = recorded.tracker.read_artifact_text(recorded.tracker.parent_run_id, "study.yaml")
    loaded = yaml.safe_load(text) if text else None
    return loaded if isinstance(loaded, dict) else None


def _best_picks(
    rows: list[ReportRow], objectives: list[str], directions: list[str]
) -> list[BestPick]:
    """Best complete trial on the metric (Optuna's first objective), then the cheapest per cost."""
    done = [r for r in rows if r.state == "complete" and r.values]
    if not done:
        return []
    pick = max if directions[0] == "maximize" else min
    first = pick(done, key=lambda r: r.values[0])  # type: ignore[index]
    best = [BestPick(objectives[0], directions[0], first.number, first.values[0], True)]  # type: ignore[index]
    for cost in COSTS:
        known = [r for r in done if getattr(r, cost) is not None]
        if known:
            cheapest = min(known, key=lambda r: float(getattr(r, cost)))
            value = float(getattr(cheapest, cost))
            best.append(BestPick(cost, "minimize", cheapest.number, value, cost in objectives))
    return best


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
    import optuna

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
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=target
            )
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        return Importances(unavailable=f"Optuna could not evaluate importances: {error}")
    return Importances(
        values={k: float(v) for k, v in values.items()}, evaluator=type(evaluator).__name__
    )


# -- the decision ---------------------------------------------------------------------------
def describe_params(params: dict[str, Any]) -> str:
    """`r=16, alpha_ratio=2, all_linear, learning_rate=0.001`: what a person would type."""
    parts = []
    for key, value in params.items():
        if key == "target_modules":
            parts.append(str(value))
        elif isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "the study's fixed settings"


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
    if best.gain is not None and best.score is not None:
        points = round(best.gain * 100)
        change = (
            f"{points:+d} points over"
            if points > 0
            else f"{-points} points below"
            if points < 0
            else "no better than"
        )
        result = (
            f"{change} the untuned baseline "
            f"({report.baseline_score:.2f} -> {best.score:.2f} {metric})"
        )
    else:
        result = f"{metric} {best.values[0]:.3g} (no baseline recorded)"
    sentence = f"Trial {best.number} ({head}): {result} at {_cost_phrase(best)}"
    if best.gain is not None and round(best.gain * 100) <= 0:
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
    from advisor.records import open_recorded_study

    recorded = open_recorded_study(study, storage=storage, tracking_uri=tracking_uri, root=root)
    report = build_report(recorded)
    if not make_plots:
        return report
    from advisor import plots

    out = plots_dir or Path(tempfile.mkdtemp(prefix=f"advisor-report-{recorded.name}-"))
    report.plots = plots.make_plots(recorded, report, out)
    report.plots_dir = str(out.resolve())
    drawn = [p for p in report.plots if p.path]
    if log_plots and drawn and recorded.tracker.parent_run_id:
        logged = recorded.tracker.log_artifacts_to_parent([Path(p.path) for p in drawn])  # type: ignore[arg-type]
        for plot, artifact in zip(drawn, logged, strict=True):
            plot.artifact = artifact
    return report


def report_studies(studies: list[str], **options: Any) -> tuple[list[Report], Comparison | None]:
    """Reports of one or more studies; with two or more, their comparison too.

    Each study's plots go to their own subfolder of `plots_dir` when one is given.
    """
    plots_dir: Path | None = options.pop("plots_dir", None)
    reports = []
    for name in studies:
        sub = plots_dir / Path(name).stem if plots_dir and len(studies) > 1 else plots_dir
        reports.append(report_study(name, plots_dir=sub, **options))
    from advisor.compare import compare_reports

    return reports, (compare_reports(reports) if len(reports) > 1 else None)

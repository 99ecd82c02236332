"""Tuner efficiency as a tabular benchmark: replay samplers and pruners against a trained grid.

Every point of the bench grid (studies/bench_grid.yaml) was trained once, with its eval-loss
curve (bench/tuner_grid_export.py -> bench/demo_grid.csv). Here each strategy runs as an Optuna
study per seed whose objective *looks up* the sampled point instead of training it, so thousands
of studies cost seconds and every strategy sees the same ground truth:

- the sampler and pruner come from `advisor.stores.sampling` (the factories `advisor tune` uses),
  the study from its `open_study`, the parameters from its `suggest`; the space is the grid's
  values as categorical choices, so a sampler can only propose points the grid holds;
- the curve is reported as tune reports it (`-eval_loss` for a maximised score) at each eval
  step, and a trial the pruner stops is charged the steps trained until then and gets no score
  (as in the runner: a pruned trial skips its generation eval, even at the last step);
- a budget is in training steps: a trial starts only while a full trial still fits, so no run
  spends more than its budget. One run per (strategy, seed) serves every budget: the samplers do
  not know the budget, so a smaller budget's run is a prefix of the larger one.

Reported per strategy and budget: the fraction of the grid-best score reached (mean, 10th
percentile, share of seeds at >= 98%) and the steps spent; and the goals of the performance issue:
>= 98% of the grid-best score with <= 25% of the grid's steps, and better than random search at
equal compute. Writes (or replaces) the `## Tuner efficiency` section of BENCHMARKS.md.

    .venv/bin/python bench/tuner_replay.py [--csv bench/demo_grid.csv] [--seeds 50] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: advisor is the checkout's
    sys.path.insert(0, str(ROOT))

from advisor.stores.sampling import make_pruner, make_sampler, suggest  # noqa: E402
from advisor.stores.storage import open_study  # noqa: E402
from advisor.study.space import Param  # noqa: E402

DEFAULT_CSV = ROOT / "bench" / "demo_grid.csv"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Tuner efficiency (tabular replay)"
RESULT_COLUMNS = ("score", "eval_loss", "curve", "steps", "wall_s", "trial")
GOAL_FRACTION = 0.98
GOAL_BUDGET = 0.25
DEFAULT_BUDGETS = (0.125, 0.25, 0.5, 1.0)
BENCH_GRID_TASK = "the demo task, LoRA on SmolLM2-135M, json_match on 32 held-out requests"


# --- the grid -------------------------------------------------------------------------------------


def parse_value(text: str) -> int | float | str:
    """A CSV cell as the value Optuna saw: int, else float, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_curve(text: str) -> tuple[tuple[int, float], ...]:
    """`5:1.23;10:0.88` -> ((5, 1.23), (10, 0.88)), steps ascending."""
    pairs = (item.split(":") for item in text.split(";") if item.strip())
    return tuple(sorted((int(step), float(loss)) for step, loss in pairs))


@dataclass(frozen=True)
class Point:
    """One trained grid point: what a trial with these parameters would have told Optuna."""

    params: dict[str, Any]
    score: float
    curve: tuple[tuple[int, float], ...]
    """(step, eval_loss) in step order: the intermediate values the pruner sees."""
    steps: int
    wall_s: float = 0.0


@dataclass(frozen=True)
class Grid:
    """The grid table: its points by parameter values, and the facts of the study it came from."""

    space: dict[str, list[Any]]
    points: dict[tuple[Any, ...], Point]
    direction: str = "maximize"
    max_steps: int = 0
    eval_steps: int = 0
    grid_size: int = 0
    """Points of the declared grid; more than len(points) while the grid is partial."""
    study: str = ""

    @property
    def complete(self) -> bool:
        return len(self.points) == self.grid_size

    @property
    def best_score(self) -> float:
        pick = max if self.direction == "maximize" else min
        return pick(p.score for p in self.points.values())

    @property
    def full_steps(self) -> int:
        """What running every present point to the end costs: the 100% budget."""
        return sum(p.steps for p in self.points.values())

    def lookup(self, params: dict[str, Any]) -> Point | None:
        """The trained point with exactly these values (None if the grid lacks it)."""
        return self.points.get(tuple(params[name] for name in self.space))

    def params(self) -> list[Param]:
        """The search space a replayed sampler gets: the grid's values, as categoricals."""
        return [Param(n, "categorical", choices=tuple(v)) for n, v in self.space.items()]


def read_header(line: str) -> dict[str, str]:
    """The export's `# key=value ...` first line (the space is `name=a,b|name=c,d`)."""
    return dict(item.split("=", 1) for item in line.lstrip("#").split() if "=" in item)


def _space_from_header(text: str) -> dict[str, list[Any]]:
    space = {}
    for part in text.split("|"):
        name, values = part.split("=", 1)
        space[name] = [parse_value(v) for v in values.split(",")]
    return space


def load_grid(path: Path) -> Grid:
    """Read the CSV that `tuner_grid_export.py` wrote (or a hand-made one without the header:
    then the space is the values seen and the grid counts as complete)."""
    lines = path.read_text().splitlines()
    header = read_header(lines[0]) if lines and lines[0].startswith("#") else {}
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    if not rows:
        raise SystemExit(f"{path}: no grid points")
    names = [c for c in rows[0] if c not in RESULT_COLUMNS]
    points = {}
    for row in rows:
        params = {n: parse_value(row[n]) for n in names}
        point = Point(
            params=params,
            score=float(row["score"]),
            curve=parse_curve(row["curve"]),
            steps=int(row["steps"]),
            wall_s=float(row.get("wall_s") or 0.0),
        )
        points[tuple(params.values())] = point
    if "space" in header:
        space = _space_from_header(header["space"])
    else:
        space = {n: sorted({p.params[n] for p in points.values()}, key=str) for n in names}
    curve_steps = sorted({s for p in points.values() for s, _ in p.curve})
    return Grid(
        space=space,
        points=points,
        direction=header.get("direction", "maximize"),
        max_steps=int(header.get("max_steps", max(p.steps for p in points.values()))),
        eval_steps=int(header.get("eval_steps", curve_steps[0] if curve_steps else 1)),
        grid_size=int(header.get("grid_size", math.prod(len(v) for v in space.values()))),
        study=header.get("study", path.stem),
    )


# --- one replayed study ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """A sampler and a pruner, by their names in advisor's registries."""

    label: str
    sampler: str
    pruner: str


STRATEGIES = (
    Strategy("TPE + median pruner", "tpe", "median"),
    Strategy("TPE", "tpe", "none"),
    Strategy("random", "random", "none"),
    Strategy("grid", "grid", "none"),
)


@dataclass(frozen=True)
class TrialRecord:
    """One replayed trial: its outcome and the steps spent after it (cumulative)."""

    params: dict[str, Any]
    state: str  # complete | pruned | missing (a point the partial grid lacks: costs nothing)
    steps: int
    score: float | None
    spent: int


@dataclass
class Run:
    """One (strategy, seed) replay: its trials in order."""

    strategy: Strategy
    seed: int
    max_steps: int
    """A full trial's steps: a trial starts only while this still fits in the budget."""
    trials: list[TrialRecord] = field(default_factory=list)
    capped: bool = False
    """Stopped by the cap on asks before the budget was spent (partial grids only)."""

    def within(self, budget: int) -> list[TrialRecord]:
        """The trials a run with this step budget would have started: the same prefix as
        a replay stopped at `budget`, since the samplers do not know the budget."""
        kept, before = [], 0
        for trial in self.trials:
            if before + self.max_steps > budget:
                break
            kept.append(trial)
            before = trial.spent
        return kept

    def best_within(self, budget: int, direction: str) -> float | None:
        """The best score among the complete trials started within the budget."""
        pick = max if direction == "maximize" else min
        scores = [t.score for t in self.within(budget) if t.score is not None]
        return pick(scores) if scores else None

    def spent_within(self, budget: int) -> int:
        kept = self.within(budget)
        return kept[-1].spent if kept else 0


def play_point(trial: Any, point: Point, *, sign: float) -> tuple[str, int]:
    """Report the point's curve as tune does; (state, steps trained). A pruned trial stops at
    the step the pruner answered, like the runner's `should_training_stop`."""
    for step, loss in point.curve:
        trial.report(sign * loss, step)
        if trial.should_prune():
            return "pruned", step
    return "complete", point.steps


def replay(
    grid: Grid,
    strategy: Strategy,
    *,
    seed: int,
    budget: int,
    n_startup_trials: int,
    max_trials: int | None = None,
) -> Run:
    """Run one strategy against the grid until the next full trial would exceed `budget` steps.

    `max_trials` caps the asks (the grid sampler stops after the grid's points; on a partial
    grid a sampler may keep proposing missing points, which cost nothing)."""
    import optuna

    params = grid.params()
    sampler = make_sampler(strategy.sampler, params, seed=seed, n_startup_trials=n_startup_trials)
    pruner = make_pruner(
        strategy.pruner,
        n_startup_trials=n_startup_trials,
        max_steps=grid.max_steps,
        eval_steps=grid.eval_steps,
    )
    study = open_study(
        name=f"replay-{strategy.sampler}-{strategy.pruner}-{seed}",
        storage=optuna.storages.InMemoryStorage(),
        directions=[grid.direction],
        sampler=sampler,
        pruner=pruner,
    )
    sign = -1.0 if grid.direction == "maximize" else 1.0
    cap = max_trials or (grid.grid_size if strategy.sampler == "grid" else 20 * grid.grid_size)
    run = Run(strategy, seed, grid.max_steps)
    spent = 0
    for _ in range(cap):
        if spent + grid.max_steps > budget:
            break
        trial = study.ask()
        values = suggest(trial, params)
        point = grid.lookup(values)
        if point is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            run.trials.append(TrialRecord(values, "missing", 0, None, spent))
            continue
        state, steps = play_point(trial, point, sign=sign)
        spent += steps
        if state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            run.trials.append(TrialRecord(values, state, steps, None, spent))
        else:
            study.tell(trial, point.score)
            run.trials.append(TrialRecord(values, state, steps, point.score, spent))
    run.capped = len(run.trials) == cap and spent + grid.max_steps <= budget
    return run


# --- many seeds -----------------------------------------------------------------------------------


def fraction_of_best(score: float | None, grid: Grid) -> float:
    """How close a run's best score came to the grid's best (1.0 = found it; no score = 0)."""
    if score is None:
        return 0.0
    best = grid.best_score
    if grid.direction == "maximize":
        return score / best if best > 0 else float(score >= best)
    return best / score if score > 0 else float(score <= best)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: at least (100 - q)% of the values are >= it (q=10: the 10th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Cell:
    """One strategy at one budget, over all seeds."""

    strategy: str
    budget_share: float
    budget_steps: int
    mean_fraction: float
    p10_fraction: float
    share_at_goal: float
    """Share of seeds whose best reached GOAL_FRACTION of the grid-best score."""
    mean_steps: float
    mean_trials: float
    mean_pruned: float


def summarise(runs: Sequence[Run], grid: Grid, share: float) -> Cell:
    budget = int(share * grid.full_steps)
    fractions = [fraction_of_best(r.best_within(budget, grid.direction), grid) for r in runs]
    kept = [[t for t in r.within(budget) if t.state != "missing"] for r in runs]
    return Cell(
        strategy=runs[0].strategy.label,
        budget_share=share,
        budget_steps=budget,
        mean_fraction=statistics.fmean(fractions),
        p10_fraction=percentile(fractions, 10),
        share_at_goal=statistics.fmean(f >= GOAL_FRACTION - 1e-12 for f in fractions),
        mean_steps=statistics.fmean(r.spent_within(budget) for r in runs),
        mean_trials=statistics.fmean(len(k) for k in kept),
        mean_pruned=statistics.fmean(sum(t.state == "pruned" for t in k) for k in kept),
    )


def steps_to_goal(run: Run, grid: Grid) -> int | None:
    """Steps spent when the run first held a score >= GOAL_FRACTION of the grid-best."""
    for trial in run.trials:
        if trial.score is not None and fraction_of_best(trial.score, grid) >= GOAL_FRACTION:
            return trial.spent
    return None


def replay_all(
    grid: Grid,
    strategies: Sequence[Strategy],
    *,
    seeds: Sequence[int],
    max_share: float,
    n_startup_trials: int,
) -> dict[str, list[Run]]:
    """Every strategy, every seed, up to the largest budget."""
    budget = int(max_share * grid.full_steps)
    return {
        s.label: [
            replay(grid, s, seed=seed, budget=budget, n_startup_trials=n_startup_trials)
            for seed in seeds
        ]
        for s in strategies
    }


# --- the report -----------------------------------------------------------------------------------


def _point_text(point: Point) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.params.items())


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def goal_lines(cells: Sequence[Cell], grid: Grid) -> list[str]:
    """The issue's two goals, judged on the mean over seeds."""
    by = {(c.strategy, c.budget_share): c for c in cells}
    lines = []
    main = by.get((STRATEGIES[0].label, GOAL_BUDGET))
    if main is not None:
        within = main.mean_steps <= GOAL_BUDGET * grid.full_steps
        met = main.mean_fraction >= GOAL_FRACTION and within
        lines.append(
            f"- >= {_pct(GOAL_FRACTION)} of the grid-best score with <= {_pct(GOAL_BUDGET)} of "
            f"the grid's steps ({main.strategy}, mean over seeds): "
            f"{'**met**' if met else '**not met**'} - {_pct(main.mean_fraction)} of best "
            f"(10th percentile {_pct(main.p10_fraction)}; {_pct(main.share_at_goal)} of seeds "
            f"at >= {_pct(GOAL_FRACTION)}) with {main.mean_steps:.0f} of {grid.full_steps} steps "
            f"({_pct(main.mean_steps / grid.full_steps)})."
        )
    shares = sorted({c.budget_share for c in cells if c.budget_share < 1.0})
    for label in (STRATEGIES[0].label, STRATEGIES[1].label):
        verdicts = []
        for share in shares:
            mine, rnd = by.get((label, share)), by.get(("random", share))
            if mine is None or rnd is None:
                continue
            sign = ">" if mine.mean_fraction > rnd.mean_fraction else "<="
            verdicts.append(
                f"{_pct(share)} budget: {_pct(mine.mean_fraction)} {sign} {_pct(rnd.mean_fraction)}"
            )
        if verdicts:
            better = all(" > " in v for v in verdicts)
            lines.append(
                f"- {label} better than random search at equal compute: "
                f"{'**yes**' if better else '**not at every budget**'} ({'; '.join(verdicts)})."
            )
    return lines


def render(
    grid: Grid,
    cells: Sequence[Cell],
    runs: dict[str, list[Run]],
    *,
    csv_path: Path,
    seeds: Sequence[int],
    n_startup_trials: int,
    elapsed: float,
    command: str,
    startup_note: str = "",
    notes: Sequence[str] = (),
) -> str:
    from advisor.provenance import package_versions

    versions = package_versions()
    today = dt.date.today().isoformat()
    scores = sorted(p.score for p in grid.points.values())
    best = [p for p in grid.points.values() if p.score == grid.best_score]
    status = (
        f"complete: {len(grid.points)} of {grid.grid_size} points"
        if grid.complete
        else f"**partial: {len(grid.points)} of {grid.grid_size} points**; the figures below "
        "replay the trained points only: a sampler that proposes a missing point is told it "
        "failed, at no cost"
    )
    walls = [p.wall_s for p in grid.points.values() if p.wall_s]
    task = f" (`studies/bench_grid.yaml`: {BENCH_GRID_TASK})" if grid.study == "bench_grid" else ""
    lines = [
        SECTION,
        "",
        f"Measured {today} with `bench/tuner_replay.py` on `{_rel(csv_path)}` ({status}). "
        f"Grid study `{grid.study}`"
        + f"{task}, {grid.max_steps} steps per trial, eval loss every {grid.eval_steps} steps; "
        f"trained on {os.cpu_count()} CPU cores"
        + (f", {statistics.median(walls):.0f} s median wall per trial" if walls else "")
        + f". {_budget_text(grid)}",
        "",
        f"- Grid-best score {grid.best_score:.4f} at "
        + "; ".join(_point_text(p) for p in best)
        + f" ({len(best)} point{'s' if len(best) > 1 else ''}). Scores over the grid: min "
        f"{scores[0]:.3f}, median {statistics.median(scores):.3f}, max {scores[-1]:.3f}; "
        f"{sum(fraction_of_best(s, grid) >= GOAL_FRACTION for s in scores)} of {len(scores)} "
        f"points reach {_pct(GOAL_FRACTION)} of the best.",
        f"- Replay: {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) per strategy; no training. "
        "Samplers and pruner from `advisor.stores.sampling` (TPE multivariate, "
        f"n_startup_trials={n_startup_trials}{startup_note}; median pruner with "
        f"n_warmup_steps={grid.eval_steps}); the space is the grid's values as categoricals. A "
        "trial starts only while a full trial fits in the budget; a pruned trial is charged the "
        "steps it trained. Optuna "
        f"{versions.get('optuna', '?')}, Python {platform.python_version()}, "
        f"{platform.machine()}; replay wall time {elapsed:.0f} s.",
        f"- Command: `{command}`",
        *(f"- {note}" for note in notes),
        "",
        "| strategy | budget (steps) | mean % of best | 10th pct | seeds >= 98% | mean steps "
        "spent | trials (pruned) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c.strategy} | {_pct(c.budget_share)} ({c.budget_steps}) | "
            f"{_pct(c.mean_fraction)} | {_pct(c.p10_fraction)} | {_pct(c.share_at_goal)} | "
            f"{c.mean_steps:.0f} ({_pct(c.mean_steps / grid.full_steps)}) | "
            f"{c.mean_trials:.1f} ({c.mean_pruned:.1f}) |"
        )
    lines += ["", "Steps until a run first holds >= 98% of the grid-best score (100% budget):", ""]
    lines += ["| strategy | median steps | mean steps | seeds that got there |"]
    lines += ["|---|---|---|---|"]
    for label, group in runs.items():
        reached = [s for s in (steps_to_goal(r, grid) for r in group) if s is not None]
        if reached:
            med, mean = statistics.median(reached), statistics.fmean(reached)
            figures = f"{med:.0f} ({_pct(med / grid.full_steps)}) | {mean:.0f}"
        else:
            figures = "- | -"
        lines.append(f"| {label} | {figures} | {len(reached)} of {len(group)} |")
    if not grid.complete:
        lines += ["", _missing_text(runs)]
    lines += ["", "Goals (performance issue, deliverable 3):", "", *goal_lines(cells, grid)]
    return "\n".join(lines) + "\n"


def _missing_text(runs: dict[str, list[Run]]) -> str:
    """On a partial grid: how often each strategy proposed a missing point, and how many runs
    ran out of asks before their budget (a sampler that keeps proposing missing points)."""
    parts = []
    for label, group in runs.items():
        missing = statistics.fmean(sum(t.state == "missing" for t in r.trials) for r in group)
        capped = sum(r.capped for r in group)
        parts.append(f"{label} {missing:.1f} ({capped} of {len(group)} runs capped)")
    return (
        "Partial grid: proposals of missing points per run at the largest budget (mean), and "
        "runs stopped by the cap on asks (20 x the grid's size; the grid sampler: its size) "
        "before spending their budget: " + "; ".join(parts) + "."
    )


def _budget_text(grid: Grid) -> str:
    if grid.complete:
        return f"The full grid costs {grid.full_steps} training steps (the 100% budget)."
    return (
        f"The {len(grid.points)} trained points cost {grid.full_steps} training steps (the 100% "
        f"budget here; the full grid would cost {grid.grid_size * grid.max_steps})."
    )


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_section(section: str) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (up to the next `## `) or append it."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip("\n") + "\n")


def _without_notes(argv: Sequence[str] | None) -> list[str]:
    """The command line as run, each `--note TEXT` shortened to `--note ...` (the notes are
    printed in the section anyway)."""
    args, shown, skip = list(sys.argv[1:] if argv is None else argv), [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--note":
            shown += ["--note", "..."]
            skip = True
        elif arg.startswith("--note="):
            shown.append("--note=...")
        else:
            shown.append(arg)
    return shown


def demo_n_startup_trials() -> int:
    """TPE's and the pruner's startup trials as the demo study sets them."""
    from advisor.study import load_study

    return load_study(ROOT / "studies" / "demo.yaml").optuna.n_startup_trials


def main(argv: Sequence[str] | None = None) -> int:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--seeds", type=int, default=50, help="seeds 0..N-1 per strategy")
    parser.add_argument(
        "--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS),
        help="budgets as shares of the full grid's steps",
    )  # fmt: skip
    parser.add_argument("--n-startup-trials", type=int, default=None, help="default: demo.yaml's")
    parser.add_argument(
        "--note", action="append", default=[], help="a line for the section (how the grid ran)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    grid = load_grid(args.csv)
    n_startup = args.n_startup_trials
    startup_note = ""
    if n_startup is None:
        n_startup, startup_note = demo_n_startup_trials(), " as in studies/demo.yaml"
    seeds = list(range(args.seeds))
    budgets = sorted(set(args.budgets))
    started = time.perf_counter()
    runs = replay_all(
        grid, STRATEGIES, seeds=seeds, max_share=budgets[-1], n_startup_trials=n_startup
    )
    elapsed = time.perf_counter() - started
    cells = [summarise(group, grid, share) for group in runs.values() for share in budgets]
    command = "python bench/tuner_replay.py " + shlex.join(_without_notes(argv))
    section = render(
        grid, cells, runs, csv_path=args.csv, seeds=seeds, n_startup_trials=n_startup,
        elapsed=elapsed, command=command.strip(), startup_note=startup_note, notes=args.note,
    )  # fmt: skip
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The tuner replay's section of BENCHMARKS.md: every grid, the mean over grids, the goals.

Per grid and on the mean over grids and seeds, each strategy's fraction of the grid-best score
by budget, the steps it spent, and the issue's goals judged for every strategy: >= 98% of the
grid-best score with <= 25% of the grid's steps, and better than random search at equal compute
(at every budget below the full grid). Every figure is written, met or not.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from _replay_grid import Grid, Point
from _replay_run import (
    GOAL_BUDGET,
    GOAL_FRACTION,
    RANDOM,
    Cell,
    Run,
    fraction_of_best,
    steps_to_goal,
)
from _replay_warm import Starts

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Tuner efficiency (tabular replay)"
TASKS = {
    "bench_grid": "demo: requests -> one JSON object, json_match",
    "bench_grid_route": "route: messages -> one of six labels, accuracy",
    "bench_grid_style": "style: casual note -> one formal sentence, rouge_l",
}
"""What each shipped grid study trains, for the grid table (others: their study name)."""
MEAN = "mean"


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def point_text(point: Point | dict) -> str:
    params = point.params if isinstance(point, Point) else point
    return ", ".join(f"{k}={v}" for k, v in params.items())


def rel(path: Path | None) -> str:
    if path is None:
        return "?"
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _grid_row(grid: Grid) -> str:
    scores = sorted(p.score for p in grid.points.values())
    walls = [p.wall_s for p in grid.points.values() if p.wall_s]
    best = grid.best_point()
    status = "complete" if grid.complete else "**partial**"
    wall = f"{statistics.median(walls):.0f} s" if walls else "-"
    near = sum(fraction_of_best(s, grid) >= GOAL_FRACTION for s in scores)
    return (
        f"| `{rel(grid.path)}` ({grid.study}) | {TASKS.get(grid.study, grid.study)} | "
        f"{len(grid.points)} of {grid.grid_size} ({status}) | {grid.max_steps} ({grid.eval_steps}) "
        f"| {wall} | {grid.full_steps} | {grid.best_score:.4f} at {point_text(best)} "
        f"(trial {best.trial}) | {scores[0]:.3f} / {statistics.median(scores):.3f} / "
        f"{scores[-1]:.3f} | {near} |"
    )


def grid_table(grids: Sequence[Grid]) -> list[str]:
    return [
        "| grid | task, metric | points | steps per trial (eval every) | median wall per trial "
        "| full grid (steps: the 100% budget) | grid-best | scores min / median / max | points "
        ">= 98% of best |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_grid_row(g) for g in grids),
    ]


def starts_table(grids: Sequence[Grid], starts: Mapping[str, Starts]) -> list[str]:
    lines = [
        "| grid | recommender (`advisor recommend --json`) | on the grid | enqueued by the "
        "warm start (after it: TPE) |",
        "|---|---|---|---|",
    ]
    for grid in grids:
        s = starts[grid.study]
        raw = ", ".join(
            f"{k}={'all linear' if k == 'target_modules' and len(v) == 7 else v}"
            for k, v in s.recommended_raw.items()
        )
        enqueued = "; ".join(
            f"{point_text(p)} ({source})" for p, source in s.points.get("evidence", [])
        )
        lines.append(f"| {grid.study} | {raw} | {point_text(s.recommended)} | {enqueued} |")
    return lines


def strategy_table(cells: Sequence[Cell], steps_to: Mapping[str, str]) -> list[str]:
    """Rows: strategies; columns: budgets (mean % of best, share of seeds at >= 98%)."""
    shares = sorted({c.budget_share for c in cells})
    by = {(c.strategy, c.budget_share): c for c in cells}
    labels = list(dict.fromkeys(c.strategy for c in cells))
    head = " | ".join(f"{pct(s)} budget" for s in shares)
    lines = [
        f"| strategy | {head} | steps spent at 25% (trials, pruned) | steps to first 98% "
        "(median; seeds there) |",
        "|---|" + "---|" * len(shares) + "---|---|",
    ]
    for label in labels:
        row = [
            f"{pct(by[label, s].mean_fraction)} ({pct(by[label, s].share_at_goal)})" for s in shares
        ]
        at = by.get((label, GOAL_BUDGET))
        spent = f"{pct(at.steps_share)} ({at.mean_trials:.1f}, {at.mean_pruned:.1f})" if at else "-"
        lines.append(f"| {label} | {' | '.join(row)} | {spent} | {steps_to.get(label, '-')} |")
    return lines


def steps_to_shares(runs: Sequence[Run], grid: Grid) -> list[float]:
    """Per seed that got there: the share of the grid's steps spent when it first held >= 98%
    of the grid-best score (at the largest budget)."""
    steps = (steps_to_goal(r, grid) for r in runs)
    return [s / grid.full_steps for s in steps if s is not None]


def steps_to_text(shares: Sequence[float], seeds: int) -> str:
    if not shares:
        return f"- (0 of {seeds})"
    return f"{pct(statistics.median(shares))} ({len(shares)} of {seeds})"


def goal_one(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    met = cell.mean_fraction >= GOAL_FRACTION and cell.steps_share <= GOAL_BUDGET + 1e-12
    verdict = "**met**" if met else "not met"
    return f"{verdict}: {pct(cell.mean_fraction)} with {pct(cell.steps_share)} of the steps"


def goal_two(cells: Sequence[Cell], label: str) -> str:
    """Better than random at every budget below the full grid (mean % of best); a tie (both at
    the best, say) is not better, and is said apart from a loss."""
    if label == RANDOM:
        return "-"
    by = {(c.strategy, c.budget_share): c for c in cells}
    shares = sorted({c.budget_share for c in cells if c.budget_share < 1.0})
    below, tied = [], []
    for share in shares:
        mine, other = by[label, share].mean_fraction, by[RANDOM, share].mean_fraction
        if abs(mine - other) < 1e-9:
            tied.append(pct(share))
        elif mine < other:
            below.append(pct(share))
    if not below and not tied:
        return "**yes**"
    parts = ([f"below random at {', '.join(below)}"] if below else []) + (
        [f"tied at {', '.join(tied)}"] if tied else []
    )
    return f"no ({'; '.join(parts)})"


def goals_table(cells: Mapping[str, Sequence[Cell]], labels: Sequence[str]) -> list[str]:
    names = list(cells)
    lines = [
        "| goal | strategy | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for label in labels:
        row = [
            goal_one(
                next(
                    (c for c in cells[n] if c.strategy == label and c.budget_share == GOAL_BUDGET),
                    None,
                )
            )
            for n in names
        ]
        lines.append(f"| >= 98% of best with <= 25% of steps | {label} | " + " | ".join(row) + " |")
    for label in labels:
        if label == RANDOM:
            continue
        row = [goal_two(cells[n], label) for n in names]
        lines.append(f"| better than random at equal compute | {label} | " + " | ".join(row) + " |")
    return lines


def render(
    grids: Sequence[Grid],
    runs: Mapping[str, Mapping[str, Sequence[Run]]],
    cells: Mapping[str, Sequence[Cell]],
    starts: Mapping[str, Starts],
    *,
    seeds: Sequence[int],
    n_startup_trials: int,
    elapsed: float,
    command: str,
    versions: Mapping[str, str],
    notes: Sequence[str] = (),
) -> str:
    """The section: `runs` and `cells` by grid study (cells also under `MEAN`)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    labels = list(dict.fromkeys(c.strategy for c in cells[MEAN]))
    lines = [
        SECTION,
        "",
        f"Measured {dt.date.today().isoformat()} with `bench/tuner_replay.py` on "
        f"{len(grids)} trained grids; {os.cpu_count()} CPU cores, 1-minute load average "
        f"{load:.2f} at the replay's start; Python {platform.python_version()}, Optuna "
        f"{versions.get('optuna', '?')}, torch {versions.get('torch', '?')}, transformers "
        f"{versions.get('transformers', '?')}, peft {versions.get('peft', '?')}, trl "
        f"{versions.get('trl', '?')}, {platform.machine()}. Command: `{command}` "
        f"(replay wall time {elapsed:.0f} s, no training).",
        "",
        "- Each strategy runs as an Optuna study per seed whose objective looks the sampled point "
        "up in the grid: sampler and pruner from `advisor.stores.sampling` (TPE multivariate, "
        f"n_startup_trials={n_startup_trials}; median pruner that never prunes on the first "
        "eval loss (n_warmup_steps = the grid's eval_steps + 1); the space is the grid's "
        "values as categoricals. A trial starts only while "
        "a full trial fits in the budget; a pruned trial is charged the steps it trained; "
        f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}) per strategy and grid.",
        "- Warm start: the first trials are enqueued as `advisor tune` enqueues them "
        "(`advisor.tuning.plan.warm_start_points`): the recommender's starting point for the "
        "grid's task (`advisor recommend --model smollm2-135m --train <the grid's train file> "
        "--evidence none --json`, snapped onto the grid: learning rate nearest in log space), "
        "then the best point of each *other* grid (leave-one-out past studies, picked as the "
        "evidence reader picks a study's best trial); then TPE + median pruner. They cost "
        "their steps like any trial.",
        *(f"- {note}" for note in notes),
        "",
        *grid_table(grids),
        "",
        *starts_table(grids, starts),
        "",
        "Mean % of the grid-best score (share of seeds at >= 98%) by budget, as a share of the "
        "grid's full steps:",
    ]
    pooled: dict[str, list[float]] = {label: [] for label in labels}
    for grid in grids:
        steps_to = {}
        for label, group in runs[grid.study].items():
            shares = steps_to_shares(group, grid)
            pooled[label] += shares
            steps_to[label] = steps_to_text(shares, len(group))
        lines += ["", f"**{grid.study}** ({TASKS.get(grid.study, grid.study)}):", ""]
        lines += strategy_table(cells[grid.study], steps_to)
    lines += ["", "**Mean over grids and seeds** (steps to first 98%: over every grid's seeds):"]
    everyone = len(seeds) * len(grids)
    lines += [
        "",
        *strategy_table(cells[MEAN], {k: steps_to_text(v, everyone) for k, v in pooled.items()}),
    ]
    lines += ["", "Goals (issue 16, deliverable 7), per grid and on the mean:", ""]
    lines += goals_table({**{g.study: cells[g.study] for g in grids}, MEAN: cells[MEAN]}, labels)
    return "\n".join(lines) + "\n"

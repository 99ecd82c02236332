"""Tuner efficiency as a tabular benchmark: replay samplers and pruners against trained grids.

Every point of each bench grid (studies/bench_grid*.yaml: the demo's extraction, the route
classification, the style rewrite) was trained once, with its eval-loss curve
(bench/tuner_grid_export.py -> bench/*_grid.csv). Here each strategy runs as an Optuna study per
seed whose objective *looks up* the sampled point instead of training it, so thousands of
studies cost seconds and every strategy sees the same ground truth (`_replay_run`). Several
grids from different tasks, so that no strategy is tuned to one grid.

The strategies: TPE with and without the median pruner, random search, grid search, and TPE +
median pruner warm-started as `advisor tune` starts a study with `optuna.warm_start`: the
recommender's point for the grid's task and the best points of the other grids (past studies,
leave-one-out), enqueued first (`_replay_warm`); and the recommended point alone, so the two
sources can be told apart.

Reported per grid and on the mean over grids and seeds (`_replay_report`): the fraction of the
grid-best score reached by budget (mean, share of seeds at >= 98%), the steps spent, and the
goals of issue 16: >= 98% of the grid-best score with <= 25% of the grid's steps, and better
than random search at equal compute. Writes (or replaces) the `## Tuner efficiency` section of
BENCHMARKS.md.

    .venv/bin/python bench/tuner_replay.py [--csv bench/demo_grid.csv ...] [--seeds 50] [--no-write]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for folder in (ROOT, HERE):  # run as a script from anywhere, or loaded by a test: advisor is
    if str(folder) not in sys.path:  # the checkout's, and the _replay_* modules are siblings
        sys.path.insert(0, str(folder))

from _replay_grid import Grid, Point, load_grid, parse_curve, parse_value  # noqa: E402
from _replay_report import MEAN, SECTION, render  # noqa: E402
from _replay_run import (  # noqa: E402
    GOAL_BUDGET,
    GOAL_FRACTION,
    STRATEGIES,
    Cell,
    Run,
    Strategy,
    TrialRecord,
    fraction_of_best,
    mean_cell,
    percentile,
    play_point,
    replay,
    replay_all,
    steps_to_goal,
    summarise,
)
from _replay_warm import Starts, all_starts  # noqa: E402

BENCHMARKS = ROOT / "BENCHMARKS.md"
DEFAULT_CSVS = tuple(HERE / f"{name}_grid.csv" for name in ("demo", "route", "style"))
DEFAULT_BUDGETS = (0.125, 0.25, 0.5, 1.0)


def replay_grids(
    grids: Sequence[Grid],
    strategies: Sequence[Strategy],
    *,
    seeds: Sequence[int],
    budgets: Sequence[float],
    n_startup_trials: int,
    starts: dict[str, Starts],
) -> tuple[dict[str, dict[str, list[Run]]], dict[str, list[Cell]]]:
    """Every strategy on every grid; the cells per grid study and their mean (`MEAN`)."""
    runs, cells = {}, {}
    for grid in grids:
        warm = starts[grid.study].enqueued() if grid.study in starts else {}
        runs[grid.study] = replay_all(
            grid, strategies, seeds=seeds, max_share=max(budgets),
            n_startup_trials=n_startup_trials, starts=warm,
        )  # fmt: skip
        cells[grid.study] = [
            summarise(group, grid, share)
            for group in runs[grid.study].values()
            for share in budgets
        ]
    per_grid = [cells[g.study] for g in grids]
    cells[MEAN] = [mean_cell(same) for same in zip(*per_grid, strict=True)]
    return runs, cells


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

    from advisor.provenance import package_versions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, nargs="+", default=list(DEFAULT_CSVS))
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
    for path in args.csv:
        if not path.is_file():
            parser.error(
                f"--csv {path}: no such grid; train its study and export it "
                "(bench/tuner_grid_export.py), or name the grids to replay with --csv"
            )
    grids = [load_grid(path) for path in args.csv]
    n_startup = args.n_startup_trials
    if n_startup is None:
        n_startup = demo_n_startup_trials()
    seeds = list(range(args.seeds))
    budgets = sorted(set(args.budgets))
    started = time.perf_counter()
    starts = all_starts(grids)
    runs, cells = replay_grids(
        grids, STRATEGIES, seeds=seeds, budgets=budgets, n_startup_trials=n_startup,
        starts=starts,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    command = "python bench/tuner_replay.py " + shlex.join(_without_notes(argv))
    section = render(
        grids, runs, cells, starts, seeds=seeds, n_startup_trials=n_startup, elapsed=elapsed,
        command=command.strip(), versions=package_versions(), notes=args.note,
    )  # fmt: skip
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


__all__ = [
    "GOAL_BUDGET", "GOAL_FRACTION", "STRATEGIES", "Cell", "Grid", "Point", "Run", "Strategy",
    "TrialRecord", "fraction_of_best", "load_grid", "mean_cell", "parse_curve", "parse_value",
    "percentile",
    "play_point", "replay", "replay_all", "replay_grids", "steps_to_goal", "summarise",
    "write_section",
]  # fmt: skip

if __name__ == "__main__":
    sys.exit(main())

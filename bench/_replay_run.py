"""One replayed study per (strategy, seed) against a trained grid, and the summary over seeds.

Each strategy runs as an Optuna study whose objective *looks up* the sampled point instead of
training it: the sampler and pruner come from `advisor.stores.sampling` (the factories `advisor
tune` uses), the study from its `open_study`, the parameters from its `suggest`. A warm-started
strategy first enqueues its starting points as `advisor tune` does (`study.enqueue_trial`), so
the sampler and pruner see them as ordinary trials, and they cost their steps like any other.

A budget is in training steps: a trial starts only while a full trial still fits, so no run
spends more than its budget. One run per (strategy, seed) serves every budget: the samplers do
not know the budget, so a smaller budget's run is a prefix of the larger one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from _replay_grid import Grid, Point

from advisor.stores.sampling import make_pruner, make_sampler, suggest
from advisor.stores.storage import open_study

GOAL_FRACTION = 0.98
GOAL_BUDGET = 0.25


@dataclass(frozen=True)
class Strategy:
    """A sampler and a pruner, by their names in advisor's registries, and the starting points
    it enqueues first (`warm`: none, `recommended` or `evidence`: see `_replay_warm`)."""

    label: str
    sampler: str
    pruner: str
    warm: str = ""


WARM_LABEL = "warm start + TPE + median pruner"
STRATEGIES = (
    Strategy("TPE + median pruner", "tpe", "median"),
    Strategy("TPE", "tpe", "none"),
    Strategy("random", "random", "none"),
    Strategy("grid", "grid", "none"),
    Strategy(WARM_LABEL, "tpe", "median", warm="evidence"),
    Strategy(
        "warm start (recommended point only) + TPE + median pruner", "tpe", "median", "recommended"
    ),
)
RANDOM = "random"
"""The baseline every strategy is compared with at equal compute."""


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
    enqueue: Sequence[Mapping[str, Any]] = (),
) -> Run:
    """Run one strategy against the grid until the next full trial would exceed `budget` steps.

    `enqueue`: the starting points tried first (`advisor tune`'s warm start). `max_trials` caps
    the asks (the grid sampler stops after the grid's points; on a partial grid a sampler may
    keep proposing missing points, which cost nothing)."""
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
    for point in enqueue:
        study.enqueue_trial(dict(point))
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


def replay_all(
    grid: Grid,
    strategies: Sequence[Strategy],
    *,
    seeds: Sequence[int],
    max_share: float,
    n_startup_trials: int,
    starts: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, list[Run]]:
    """Every strategy, every seed, up to the largest budget; `starts` maps a strategy's
    `warm` kind to the points it enqueues on this grid."""
    budget = int(max_share * grid.full_steps)
    starts = starts or {}
    return {
        s.label: [
            replay(
                grid,
                s,
                seed=seed,
                budget=budget,
                n_startup_trials=n_startup_trials,
                enqueue=starts.get(s.warm, ()) if s.warm else (),
            )
            for seed in seeds
        ]
        for s in strategies
    }


# --- over seeds -----------------------------------------------------------------------------------


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
    """One strategy at one budget, over all seeds (of one grid, or of every grid: `mean_cell`)."""

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
    steps_share: float
    """mean_steps as a share of the grid's full steps."""


def summarise(runs: Sequence[Run], grid: Grid, share: float) -> Cell:
    budget = int(share * grid.full_steps)
    fractions = [fraction_of_best(r.best_within(budget, grid.direction), grid) for r in runs]
    kept = [[t for t in r.within(budget) if t.state != "missing"] for r in runs]
    mean_steps = statistics.fmean(r.spent_within(budget) for r in runs)
    return Cell(
        strategy=runs[0].strategy.label,
        budget_share=share,
        budget_steps=budget,
        mean_fraction=statistics.fmean(fractions),
        p10_fraction=percentile(fractions, 10),
        share_at_goal=statistics.fmean(f >= GOAL_FRACTION - 1e-12 for f in fractions),
        mean_steps=mean_steps,
        mean_trials=statistics.fmean(len(k) for k in kept),
        mean_pruned=statistics.fmean(sum(t.state == "pruned" for t in k) for k in kept),
        steps_share=mean_steps / grid.full_steps,
    )


def mean_cell(cells: Sequence[Cell]) -> Cell:
    """One strategy at one budget share, over grids: every figure the mean of the grids' (each
    grid has the same seeds, so this is the mean over grids and seeds); budget_steps 0, since
    the grids' step counts differ. The 10th percentile is the mean of the grids' 10th."""
    first = cells[0]
    mean = statistics.fmean
    return Cell(
        strategy=first.strategy,
        budget_share=first.budget_share,
        budget_steps=0,
        mean_fraction=mean(c.mean_fraction for c in cells),
        p10_fraction=mean(c.p10_fraction for c in cells),
        share_at_goal=mean(c.share_at_goal for c in cells),
        mean_steps=mean(c.mean_steps for c in cells),
        mean_trials=mean(c.mean_trials for c in cells),
        mean_pruned=mean(c.mean_pruned for c in cells),
        steps_share=mean(c.steps_share for c in cells),
    )


def steps_to_goal(run: Run, grid: Grid) -> int | None:
    """Steps spent when the run first held a score >= GOAL_FRACTION of the grid-best."""
    for trial in run.trials:
        if trial.score is not None and fraction_of_best(trial.score, grid) >= GOAL_FRACTION:
            return trial.spent
    return None

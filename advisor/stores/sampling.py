"""Optuna's samplers and pruners, built from the names in a study file, and parameter suggestion.

The study file names a sampler (`optuna.sampler`) and a pruner (`optuna.pruner`); the registries
below map those names to constructors, so a new one is one entry, not a new branch. Samplers are
seeded from the study seed, so the same study file replays the same sequence of parameters (CPU
training is deterministic, so TPE sees the same history).

A study that searches the method has a conditional space (`Param.methods`): `suggest` is
define-by-run, drawing `method` first and then only the parameters of the drawn method, so a
`rag` trial records `top_k` and no `r`, a `lora` trial the reverse. TPE models such a space with
`group=True` (Optuna splits the trials into groups that sampled the same parameters and fits a
multivariate model per group, instead of falling back to independent sampling for every
parameter outside the intersection of all trials' spaces).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from advisor.errors import AdvisorInputError
from advisor.study.space import Param


def _conditional(params: Sequence[Param]) -> bool:
    return any(p.methods for p in params)


def _grid_space(params: Sequence[Param]) -> dict[str, list[Any]]:
    if _conditional(params):  # the spec refuses it first; the grid is one product of all
        raise AdvisorInputError(
            "the grid sampler cannot search the method: each method takes its own parameters",
            where="optuna.sampler",
            fix="use sampler: tpe or random, or a grid study per method",
        )
    space = {}
    for p in params:
        if p.kind != "categorical":
            raise AdvisorInputError(
                f"the grid sampler needs a finite list for {p.name!r}, got a {p.kind} range",
                where=f"search.{p.name}",
                fix="give a list of values, or use sampler: tpe or random",
            )
        space[p.name] = list(p.choices)
    return space


SamplerFactory = Callable[[Sequence[Param], int, int], "optuna.samplers.BaseSampler"]


def _tpe(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    # multivariate TPE models the interaction of r and alpha instead of treating them apart;
    # group=True for a searched method's conditional space (module docstring).
    group = {"group": True} if _conditional(params) else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup, multivariate=True, **group
        )


def _random(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _grid(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    class BudgetedGridSampler(optuna.samplers.GridSampler):
        """GridSampler without its `study.stop()` on the last point.

        That call is only legal inside `study.optimize()`; advisor's worker loop asks and tells
        (see `advisor.stores.coordination`) and stops by its own budget, capped at the grid's size.
        """

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return BudgetedGridSampler(_grid_space(params), seed=seed)


def grid_size(params: Sequence[Param]) -> int:
    """Number of points of a grid search (every parameter a finite list)."""
    size = 1
    for choices in _grid_space(params).values():
        size *= len(choices)
    return size


SAMPLERS: Mapping[str, SamplerFactory] = {"tpe": _tpe, "random": _random, "grid": _grid}
SHARED_SEED = frozenset({"grid"})
"""Samplers whose seed every process of a study must share. The grid sampler's seed shuffles
the grid, and a trial names its point by an index into that order: workers seeded apart would
read one index as different points and train a point twice (Optuna's GridSampler docs: "fixing
seed for each process is strongly recommended in distributed optimization")."""


def _median(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    # Never on the first eval loss: with n_warmup_steps = eval_steps the tabular replay
    # (BENCHMARKS.md, tuner section) saw the median pruner stop the grid-best point at its first
    # report in most seeds of the route grid (3-point curves: a high learning rate starts worse
    # and ends best), so TPE + pruner held 84% of the best there even at the full budget; from the
    # second report on it holds 100%.
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup, n_warmup_steps=eval_steps + 1, interval_steps=1
    )


def _hyperband(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=eval_steps, max_resource=max_steps, reduction_factor=3
    )


def _nop(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


PRUNERS: Mapping[str, Callable[[int, int, int], optuna.pruners.BasePruner]] = {
    "median": _median,
    "hyperband": _hyperband,
    "none": _nop,
}


def make_sampler(
    name: str, params: Sequence[Param], *, seed: int, n_startup_trials: int
) -> optuna.samplers.BaseSampler:
    """The sampler named in the study file, seeded from the study seed."""
    if name not in SAMPLERS:
        raise AdvisorInputError(
            f"unknown sampler {name!r}", where="optuna.sampler", fix=f"one of {sorted(SAMPLERS)}"
        )
    return SAMPLERS[name](params, seed, n_startup_trials)


def make_pruner(
    name: str, *, n_startup_trials: int, max_steps: int, eval_steps: int
) -> optuna.pruners.BasePruner:
    """The pruner named in the study file. Intermediate values are eval losses (see tune)."""
    if name not in PRUNERS:
        raise AdvisorInputError(
            f"unknown pruner {name!r}", where="optuna.pruner", fix=f"one of {sorted(PRUNERS)}"
        )
    return PRUNERS[name](n_startup_trials, max_steps, eval_steps)


def _distribution(p: Param) -> optuna.distributions.BaseDistribution:
    if p.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(
            int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
        )
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def space_signature(params: Sequence[Param]) -> dict[str, str]:
    """The search space as {name: distribution JSON}: comparable across processes."""
    return {
        p.name: optuna.distributions.distribution_to_json(_distribution(p))
        for p in sorted(params, key=lambda p: p.name)
    }


def suggest(trial: optuna.Trial, params: Sequence[Param]) -> dict[str, Any]:
    """Ask the trial for every searched parameter; in a conditional space (a searched method)
    `method` first, then the parameters of the method drawn, and no other."""
    values: dict[str, Any] = {}
    for p in params:
        if p.methods and values.get("method") not in p.methods:
            continue
        if p.kind == "categorical":
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            values[p.name] = trial.suggest_int(
                p.name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
            )
        elif p.kind == "float":
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
        else:  # pragma: no cover - ParamSpec is validated upstream
            raise ValueError(f"unknown parameter kind {p.kind!r} for {p.name!r}")
    return values

"""Optuna construction: registries, seeded samplers, direction checks, stale trials."""

from __future__ import annotations

import optuna
import pytest

from advisor.errors import AdvisorInputError
from advisor.stores.sampling import make_pruner, make_sampler, suggest
from advisor.stores.storage import make_storage, open_study
from advisor.study.space import Param

PARAMS = [
    Param("r", "categorical", choices=(4, 8, 16)),
    Param("learning_rate", "float", low=1e-4, high=1e-2, log=True),
    Param("warmup", "int", low=0, high=5),
]


def _study(stores, name="s", directions=("maximize",), sampler="random", seed=3):
    storage = make_storage(stores.optuna_url)
    return open_study(
        name=name,
        storage=storage,
        directions=list(directions),
        sampler=make_sampler(sampler, PARAMS[:1], seed=seed, n_startup_trials=2),
        pruner=make_pruner("median", n_startup_trials=1, max_steps=10, eval_steps=2),
    )


def test_registries_reject_unknown_names_with_the_choices() -> None:
    with pytest.raises(AdvisorInputError, match=r"(?s)unknown sampler 'cma'.*grid"):
        make_sampler("cma", PARAMS, seed=0, n_startup_trials=1)
    with pytest.raises(AdvisorInputError, match=r"(?s)unknown pruner 'asha'.*hyperband"):
        make_pruner("asha", n_startup_trials=1, max_steps=10, eval_steps=2)


def test_grid_sampler_needs_finite_lists() -> None:
    with pytest.raises(
        AdvisorInputError, match=r"(?s)grid sampler needs a finite list.*learning_rate"
    ):
        make_sampler("grid", PARAMS, seed=0, n_startup_trials=1)
    assert isinstance(
        make_sampler("grid", PARAMS[:1], seed=0, n_startup_trials=1), optuna.samplers.GridSampler
    )


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_seeded_sampler_repeats_its_sequence(stores, sampler: str) -> None:
    def sequence(name: str) -> list[dict]:
        storage = make_storage(stores.optuna_url)
        study = open_study(
            name=name,
            storage=storage,
            directions=["maximize"],
            sampler=make_sampler(sampler, PARAMS, seed=11, n_startup_trials=2),
            pruner=make_pruner("none", n_startup_trials=0, max_steps=1, eval_steps=1),
        )
        seen = []

        def objective(trial):
            values = suggest(trial, PARAMS)
            seen.append(values)
            return values["r"] * values["learning_rate"]

        study.optimize(objective, n_trials=5)
        return seen

    first, second = sequence("a"), sequence("b")
    assert first == second
    for values in first:
        assert values["r"] in (4, 8, 16)
        assert 1e-4 <= values["learning_rate"] <= 1e-2
        assert 0 <= values["warmup"] <= 5 and isinstance(values["warmup"], int)


def test_reopening_with_other_directions_is_refused(stores) -> None:
    _study(stores, name="dir")
    with pytest.raises(AdvisorInputError, match="directions"):
        _study(stores, name="dir", directions=("maximize", "minimize"))


def test_bad_storage_url_names_the_field() -> None:
    with pytest.raises(AdvisorInputError, match="storage"):
        make_storage("nosuchdb://x")

"""`check_same_space` without a recorded space (a study another tool made) compares the stored
trials' distributions: a trial of a conditional space (a searched method) samples only its
method's parameters, which is no change of space; in a fixed space a missing or changed
parameter still is."""

from __future__ import annotations

import optuna
import pytest

from advisor.errors import AdvisorInputError
from advisor.stores.storage import check_same_space
from advisor.study.space import Param

METHOD = Param("method", "categorical", choices=("rag", "lora"))
TOP_K = Param("top_k", "categorical", choices=(1, 3), methods=("rag",))
R = Param("r", "categorical", choices=(4, 8), methods=("lora",))
LR = Param("learning_rate", "float", low=1e-4, high=1e-2, log=True)


def _study_with(params: dict) -> optuna.Study:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    distributions = {
        "method": optuna.distributions.CategoricalDistribution(["rag", "lora"]),
        "top_k": optuna.distributions.CategoricalDistribution([1, 3]),
        "r": optuna.distributions.CategoricalDistribution([4, 8]),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    study.enqueue_trial(params)
    trial = study.ask({k: distributions[k] for k in params})
    study.tell(trial, 0.5)
    return study


def test_a_conditional_spaces_trial_samples_a_subset_of_it() -> None:
    check_same_space(_study_with({"method": "rag", "top_k": 3}), [METHOD, TOP_K, R])


def test_a_conditional_trial_outside_the_space_is_refused() -> None:
    with pytest.raises(AdvisorInputError, match=r"differs in: .*learning_rate"):
        check_same_space(_study_with({"method": "lora", "learning_rate": 1e-3}), [METHOD, R])


def test_a_fixed_space_missing_a_parameter_is_refused() -> None:
    fixed = [Param("r", "categorical", choices=(4, 8)), LR]
    with pytest.raises(AdvisorInputError, match="differs in: learning_rate"):
        check_same_space(_study_with({"r": 4}), fixed)

"""Optuna viewers (optuna-dashboard, `trials_dataframe`, the Pareto plot) name a study's
objectives by the metric names stored with it, not "Objective 0"."""

from __future__ import annotations

import warnings

import optuna
import pytest

from advisor.stores import keys
from advisor.stores.sampling import make_pruner, make_sampler
from advisor.stores.storage import make_storage, metric_names, open_study
from advisor.study.space import Param

PARAMS = [Param("r", "categorical", choices=(4, 8))]


def _open(stores, directions, attrs):
    return open_study(
        name="s",
        storage=make_storage(stores.optuna_url),
        directions=list(directions),
        sampler=make_sampler("random", PARAMS, seed=1, n_startup_trials=1),
        pruner=make_pruner("none", n_startup_trials=1, max_steps=4, eval_steps=2),
        user_attrs=attrs,
    )


def _as_a_viewer_sees_it(stores) -> list[str] | None:
    """A fresh process loading the study, as optuna-dashboard does."""
    storage = optuna.storages.RDBStorage(stores.optuna_url)
    return optuna.load_study(study_name="s", storage=storage).metric_names


@pytest.mark.parametrize(
    ("directions", "metric", "objectives", "expected"),
    [
        (["maximize"], "json_match", ["score"], ["json_match"]),
        (["minimize"], "eval_loss", ["eval_loss"], ["eval_loss"]),
        (
            ["maximize", "minimize"],
            "rouge_l",
            ["score", "wall_seconds"],
            ["rouge_l", "wall_seconds"],
        ),
    ],
)
def test_a_new_study_names_its_objectives(stores, directions, metric, objectives, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna's ExperimentalWarning does not reach the user
        _open(stores, directions, {keys.METRIC: metric, keys.OBJECTIVES: objectives})
    assert _as_a_viewer_sees_it(stores) == expected
    loaded = optuna.load_study(study_name="s", storage=stores.optuna_url)
    loaded.add_trial(optuna.trial.create_trial(values=[0.5] * len(directions)))
    columns = [c for c in loaded.trials_dataframe().columns if c.startswith("value")]
    assert [c.split("_", 1)[1] for c in columns] == expected  # value_json_match, not value


def test_a_study_reopened_without_names_gets_them(stores) -> None:
    """A study stored by an older advisor (attributes, no metric names) is named on reopening."""
    storage = make_storage(stores.optuna_url)
    old = optuna.create_study(study_name="s", storage=storage, directions=["maximize"])
    old.set_user_attr(keys.METRIC, "json_match")
    old.set_user_attr(keys.OBJECTIVES, ["score"])
    assert _as_a_viewer_sees_it(stores) is None
    _open(stores, ["maximize"], {keys.METRIC: "json_match", keys.OBJECTIVES: ["score"]})
    assert _as_a_viewer_sees_it(stores) == ["json_match"]


def test_a_study_advisor_did_not_describe_is_left_unnamed() -> None:
    assert metric_names({}) is None
    assert metric_names({keys.OBJECTIVES: ["score", "cost_usd"]}) == ["score", "cost_usd"]

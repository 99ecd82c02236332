"""The study's parent run answers "what won" on its own row of MLflow's runs table: the best
score, its gain over the baseline, the best trial and its parameters, trials done and cost.
Reads the session's recorded tiny study (read-only)."""

from __future__ import annotations

import pytest

from advisor.stores import keys
from advisor.stores.records import open_recorded_study
from advisor.tuning.session import outcome_of
from advisor.tuning.summary import TrialRow


def test_the_parent_run_carries_the_outcome(recorded_study) -> None:
    recorded = open_recorded_study("recorded", root=recorded_study["root"])
    tracker = recorded.tracker
    parent = tracker.client.get_run(tracker.parent_run_id)
    metrics, tags = parent.data.metrics, parent.data.tags
    summary = recorded_study["summary"]
    won = next(r for r in summary.rows if r.number == summary.best[0])
    assert metrics[keys.BEST_SCORE] == pytest.approx(won.score)
    assert metrics[keys.BEST_TRIAL] == won.number == 0
    assert metrics[keys.BEST_GAIN] == pytest.approx(won.score - summary.baseline_score)
    assert metrics[keys.TRIALS_DONE] == 4  # complete, pruned, pruned, failed
    assert metrics[keys.TOTAL_COST] == pytest.approx(sum(r.cost_usd or 0 for r in summary.rows))
    assert {k for k in tags if k.startswith(keys.BEST_PARAM)} == {"best.learning_rate"}
    assert float(tags["best.learning_rate"]) == pytest.approx(won.params["learning_rate"])
    # updated as trials finished, not only at the end: one point per finished trial
    history = tracker.client.get_metric_history(tracker.parent_run_id, keys.TRIALS_DONE)
    assert sorted({int(m.value) for m in history}) == [1, 2, 3, 4]


def test_an_outcome_before_any_trial_completes_has_no_best() -> None:
    rows = [TrialRow(0, "pruned", {"r": 8}, cost_usd=0.5), TrialRow(1, "running", {"r": 4})]
    outcome = outcome_of(rows, baseline=0.2, direction="maximize")
    assert outcome.trials_done == 1 and outcome.total_cost == 0.5
    assert outcome.best_score is None and outcome.best_params == {}


def test_a_minimised_metric_gains_by_going_down() -> None:
    searched = {"r": 8, "target_modules": "q_proj+v_proj"}  # as Optuna stores the choice
    rows = [
        TrialRow(0, "complete", {"r": 4}, score=1.5),
        TrialRow(1, "complete", searched, score=1.2),
    ]
    outcome = outcome_of(rows, baseline=2.0, direction="minimize")
    assert outcome.best_trial == 1 and outcome.gain == pytest.approx(0.8)
    assert outcome.best_params == {"r": 8, "target_modules": ("q_proj", "v_proj")}

"""The decision weighs forgetting (issue 16, item 8): a best trial that forgets much more than a
trial nearly as good is flagged, the gentler trial named with both figures, in the sentence and
in `report --json` (`tradeoff`). Synthetic reports only: no study is trained."""

from __future__ import annotations

import json

from support import synthetic_report

from advisor.review.build import _best_picks
from advisor.review.decision import decide, tradeoff
from advisor.review.report import Report, ReportRow

BASE_PROBE = 0.67  # the demo's base model answered 67% of the general probe


def _row(number: int, score: float, kl: float, probe: float, r: int = 16) -> ReportRow:
    """A complete trial scoring `score`, `kl` from the base model, `probe` on the general probe."""
    return ReportRow(
        number,
        "complete",
        {"r": r},
        score=score,
        gain=score - 0.2,
        wall_seconds=100.0,
        device="cpu",
        values=[score],
        forgetting_kl=kl,
        ppl_delta=20 * kl,
        general_score=probe,
        general_score_delta=probe - BASE_PROBE,
    )


def _report(rows: list[ReportRow]) -> Report:
    report = synthetic_report(rows)
    report.tradeoff = tradeoff(report)
    report.decision = decide(report)
    return report


def test_the_demo_case_names_the_trial_that_kept_the_base_model() -> None:
    """The issue's case: the best dropped the general probe 67% -> 27% (KL 0.141) while trial 3,
    nearly as good, kept far more of the base model; the report did not say so."""
    rows = [
        _row(0, 0.40, 0.010, 0.67, r=4),
        _row(1, 0.62, 0.141, 0.27, r=32),  # the best on the metric
        _row(2, 0.50, 0.020, 0.63, r=4),  # gentle, but 12 points worse: not "nearly as good"
        _row(3, 0.59, 0.045, 0.60, r=8),
    ]
    report = _report(rows)
    assert report.best_trial.number == 1
    found = report.tradeoff
    assert found is not None
    assert (found.best, found.gentler) == (1, 3)
    assert found.flagged == ["kl", "general_delta"]
    assert found.score_share == 0.59 / 0.62
    assert (found.kl.best, found.kl.gentler) == (0.141, 0.045)
    assert round(found.general_delta.best, 2) == -0.40
    assert "general probe 67% -> 27%" in report.decision  # the best's own figure, as before
    assert (
        "but trial 1 forgets much more than trial 3 (r=8), which scores 0.59 against 0.62 "
        "exact_match (95% as good) with general probe 67% -> 60% against 27%, KL 0.045 against "
        "0.141: prefer trial 3 when the base model's general ability matters"
    ) in report.decision
    assert "trial 2" not in report.decision
    shown = json.loads(json.dumps(report.to_dict()))["tradeoff"]
    assert shown["best"] == 1 and shown["gentler"] == 3
    assert shown["kl"] == {"best": 0.141, "gentler": 0.045}
    assert shown["flagged"] == ["kl", "general_delta"]
    assert set(shown) >= {"score_share", "general_delta", "ppl_delta", "best_score"}


def test_no_flag_when_the_gentler_trial_is_much_worse() -> None:
    rows = [_row(0, 0.62, 0.141, 0.27), _row(1, 0.50, 0.010, 0.66)]  # 12 points lower
    report = _report(rows)
    assert report.tradeoff is None
    assert "forgets much more" not in report.decision
    assert report.to_dict()["tradeoff"] is None


def test_no_flag_when_the_best_forgets_about_as_much() -> None:
    # within 5 points, but KL 1.4x and the probe 5 points apart: a different trial, not a gentler
    rows = [_row(0, 0.62, 0.141, 0.30), _row(1, 0.60, 0.100, 0.35)]
    assert _report(rows).tradeoff is None


def test_no_flag_for_a_trial_that_forgets_more_on_the_other_measure() -> None:
    # a third of the KL, but it lost more of the general probe: no gentler choice
    rows = [_row(0, 0.62, 0.141, 0.50), _row(1, 0.61, 0.040, 0.30)]
    assert _report(rows).tradeoff is None


def test_the_general_probe_alone_can_flag() -> None:
    # the same KL, but the best lost 40 points of the general probe and trial 1 lost 4
    rows = [_row(0, 0.62, 0.100, 0.27), _row(1, 0.60, 0.090, 0.63)]
    found = _report(rows).tradeoff
    assert found is not None and found.flagged == ["general_delta"]


def test_of_several_gentler_trials_the_best_scoring_is_named() -> None:
    rows = [_row(0, 0.62, 0.141, 0.27), _row(1, 0.58, 0.01, 0.67), _row(2, 0.60, 0.05, 0.60)]
    assert _report(rows).tradeoff.gentler == 2


def test_a_minimised_metric_is_nearly_as_good_within_a_small_relative_margin() -> None:
    """Perplexity: the best 3.20; 3.30 is 3% higher (nearly as good), 3.60 is 12.5% higher."""
    rows = [
        _row(0, 3.20, 0.141, 0.27),
        _row(1, 3.30, 0.050, 0.60),
        _row(2, 3.60, 0.005, 0.67),
    ]
    report = synthetic_report(rows)
    report.metric, report.directions, report.baseline_score = "perplexity", ["minimize"], 49.7
    for row in rows:
        row.gain = 49.7 - row.score
    report.best = _best_picks(rows, report.objectives, report.directions)
    assert report.best_trial.number == 0
    found = tradeoff(report)
    assert found is not None and found.gentler == 1  # not trial 2, 12.5% worse
    assert found.score_share == 3.20 / 3.30
    assert "which scores 3.3 against 3.2 perplexity (97% as good)" in decide(report)
    rows[1].values = [3.50]  # 9% worse: no longer nearly as good
    assert tradeoff(report) is None


def test_no_tradeoff_without_forgetting_measurements() -> None:
    rows = [_row(0, 0.62, 0.141, 0.27), _row(1, 0.60, 0.05, 0.60)]
    for row in rows:
        row.forgetting_kl = row.general_score_delta = row.general_score = row.ppl_delta = None
    assert _report(rows).tradeoff is None

"""`advisor report` sets each trial's score gain against its forgetting (KL from the base model).

Reads the session's recorded tiny study (read-only): its baseline and complete trial measured
forgetting (eval.forgetting is on by default), its pruned and failed trials did not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import synthetic_report

from advisor.review.build import build_report, report_study
from advisor.review.decision import decide
from advisor.review.report import Report, ReportRow
from advisor.stores.records import open_recorded_study

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(recorded_study) -> Report:
    return build_report(open_recorded_study("recorded", root=recorded_study["root"]))


def test_complete_trials_carry_their_forgetting(report: Report) -> None:
    done = report.row(0)
    assert done.state == "complete"
    assert done.forgetting_kl is not None and done.forgetting_kl > 0
    assert done.ppl_delta is not None and done.ppl_delta != 0
    assert done.general_score is not None and done.general_score_delta is not None
    # the baseline is the reference: its probe score is the base score every trial is held to
    assert report.baseline_general_score is not None
    assert done.general_score - done.general_score_delta == pytest.approx(
        report.baseline_general_score
    )
    for number in (1, 2, 3):  # pruned and failed trials never reached the probes
        assert report.row(number).forgetting_kl is None
    assert report.to_dict()["rows"][0]["forgetting_kl"] == done.forgetting_kl


def test_decision_states_the_forgetting_of_the_best_trial(report: Report) -> None:
    kl = report.row(0).forgetting_kl
    assert f"forgetting: KL {kl:.3g} nats/token from the base model" in report.decision
    assert "perplexity on general text" in report.decision


def test_gain_vs_forgetting_plot(recorded_study, tmp_path: Path) -> None:
    drawn = report_study(
        "recorded", root=recorded_study["root"], plots_dir=tmp_path, log_plots=False
    )
    plot = next(p for p in drawn.plots if p.name == "gain_vs_forgetting")
    assert plot.path == str(tmp_path / "gain_vs_forgetting.png")
    assert Path(plot.path).read_bytes().startswith(PNG)


def _synthetic(rows: list[ReportRow]) -> Report:
    return synthetic_report(rows)


def _row(number: int, score: float, kl: float | None, replay: float) -> ReportRow:
    return ReportRow(
        number,
        "complete",
        {"replay_fraction": replay},
        score=score,
        gain=score - 0.2,
        wall_seconds=100.0,
        device="cpu",
        values=[score],
        forgetting_kl=kl,
        ppl_delta=None if kl is None else 10 * kl,
        general_score=None if kl is None else 0.5,
        general_score_delta=None if kl is None else -0.1,
    )


def test_decision_names_a_trial_that_forgets_much_less() -> None:
    rows = [_row(0, 0.8, 0.2, 0.0), _row(1, 0.76, 0.05, 0.1), _row(2, 0.5, 0.01, 0.2)]
    decision = decide(_synthetic(rows))
    assert "forgetting: KL 0.2 nats/token from the base model, perplexity on general text +2" in (
        decision
    )
    assert "general probe 60% -> 50%" in decision
    assert (
        "but trial 0 forgets much more than trial 1 (replay_fraction=0.1), which scores 0.76 "
        "against 0.80 exact_match (95% as good) with KL 0.05 against 0.2" in decision
    )
    assert "trial 2" not in decision  # 30 points below the best score


def test_no_forgetting_phrase_without_measurements() -> None:
    decision = decide(_synthetic([_row(0, 0.8, None, 0.0), _row(1, 0.79, None, 0.1)]))
    assert "forgetting" not in decision and "KL" not in decision

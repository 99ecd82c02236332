"""Recommendations that learn (issue 16 item 5): how a finished study moves the starting point.

Pure: the studies are `PastStudy` records as the stores would read them."""

from __future__ import annotations

import pytest

from advisor.decide.evidence import PastStudy, Question, apply_evidence, likeness, past_points
from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits

START = {"r": 16, "lora_alpha": 32, "learning_rate": 2.9e-4, "epochs": 2}
SAME = Question("llama-3-8b", 8_000_000_000, "lora", 1000, data_hash="abc")


def past(**changes) -> PastStudy:
    fields = dict(
        name="demo",
        model="llama-3-8b",
        num_params=8_000_000_000,
        method="lora",
        metric="json_match",
        best_trial=3,
        best_params={"learning_rate": 1e-3, "r": 16},
        best_score=0.9,
        baseline_score=0.3,
        gain=0.6,
        examples=1000,
        data_hash="abc",
    )
    return PastStudy(**(fields | changes))


def test_a_study_on_the_same_model_method_and_data_moves_the_start_to_its_best():
    moved, reasons, used = apply_evidence(START, [past()], SAME)
    assert moved["learning_rate"] == 1e-3
    assert reasons == [
        "moved learning_rate 0.00029 -> 0.001: study demo's best trial 3 (gain +0.6) used 0.001 "
        "(similarity 1)"
    ]
    assert used[0].name == "demo" and used[0].similarity == 1.0
    assert used[0].contributed == ["learning_rate 0.00029 -> 0.001"]
    assert used[0].found["best_params"] == {"learning_rate": 1e-3, "r": 16}


def test_a_study_of_another_task_weighs_less_than_one_on_the_same_data():
    same, _, _ = apply_evidence(START, [past()], SAME)
    other, _, used = apply_evidence(START, [past(data_hash="other")], SAME)
    assert used[0].likeness["data"] == 0.5 and used[0].similarity == 0.5
    assert START["learning_rate"] < other["learning_rate"] < same["learning_rate"]


def test_a_larger_model_weighs_less_by_size_class():
    near = likeness(past(model="qwen2.5-7b", num_params=7_600_000_000), SAME)["model"]
    far = likeness(past(model="llama-2-70b", num_params=69_000_000_000), SAME)["model"]
    assert 0.95 < near < 1.0
    assert far == pytest.approx(1 / (1 + 0.936), abs=0.01)


def test_full_fine_tuning_does_not_move_a_lora_start_and_says_so():
    moved, reasons, used = apply_evidence(START, [past(method="full")], SAME)
    assert moved == START and reasons == []
    assert used[0].similarity == 0 and used[0].contributed[0].startswith("nothing: similarity 0")


def test_a_study_that_did_not_beat_its_baseline_moves_nothing():
    moved, _, used = apply_evidence(START, [past(gain=-0.1)], SAME)
    assert moved == START
    assert used[0].contributed == ["nothing: its best trial did worse than the baseline"]


def test_the_rank_lands_on_a_power_of_two_and_alpha_keeps_its_ratio():
    moved, reasons, _ = apply_evidence(START, [past(best_params={"r": 64})], SAME)
    assert moved["r"] == 64 and moved["lora_alpha"] == 128
    assert reasons[-1] == "moved lora_alpha 32 -> 128: keeps the scale alpha/r = 2 at the moved r"
    partial, _, _ = apply_evidence(START, [past(best_params={"r": 64}, data_hash=None)], SAME)
    assert partial["r"] == 32  # half the pull in log2: 16 -> 32, not 23


def test_under_rslora_alpha_keeps_its_scale_over_sqrt_r():
    """rsLoRA scales by alpha/sqrt(r): keeping alpha/r would double the scale at 4x the rank."""
    start = {**START, "r": 64, "lora_alpha": 16, "use_rslora": True}  # scale 16/8 = 2
    moved, reasons, _ = apply_evidence(start, [past(best_params={"r": 256})], SAME)
    assert moved["r"] == 256 and moved["lora_alpha"] == 32  # 32/16 = 2, not 64
    assert reasons[-1] == (
        "moved lora_alpha 16 -> 32: keeps the scale alpha/sqrt(r) = 2 at the moved r"
    )


def test_recommend_lists_the_evidence_and_moves_its_reasons_and_values():
    traits = Traits.from_options(model="llama-3-8b")
    plain = recommend(traits)
    learnt = recommend(traits, evidence=[past()], data_hash="abc")
    assert plain.evidence == [] and plain.hyperparameters["learning_rate"] == 2.86e-4
    assert learnt.hyperparameters["learning_rate"] == 1e-3
    assert any(
        r.startswith("moved learning_rate 0.00029 -> 0.001: study demo") for r in learnt.reasons
    )
    why = learnt.hyperparameter_reasons["learning_rate"]
    assert why["value"] == 1e-3 and "study demo" in why["evidence"]
    assert learnt.to_dict()["evidence"][0]["name"] == "demo"


def test_a_tie_with_the_baseline_still_says_which_values_trained_best():
    tied = past(best_score=0.3, gain=0.0, eval_loss=1.25)
    moved, reasons, _ = apply_evidence(START, [tied], SAME)
    assert moved["learning_rate"] == 1e-3
    assert "(gain +0, eval loss 1.25)" in reasons[0]


def test_past_points_are_the_alike_studies_best_most_alike_first():
    other_task = past(name="other", data_hash="zzz", best_params={"learning_rate": 3e-4})
    same_task = past(name="same", best_trial=7)
    worse = past(name="worse", gain=-0.1)
    full = past(name="full", method="full")
    itself = past(name="next")
    points = past_points([other_task, worse, full, itself, same_task], SAME, exclude="next")
    assert points == [
        ({"learning_rate": 1e-3, "r": 16}, "study:same#7"),
        ({"learning_rate": 3e-4}, "study:other#3"),
    ]
    assert past_points([same_task, other_task], SAME, limit=1) == [points[0]]

"""The task-metric registry: each metric's scoring rules and the registry's contract."""

from __future__ import annotations

import json

import pytest

from runners.metrics import METRICS, first_json_object, flatten_json, get_metric

REF = json.dumps({"intent": "order", "name": "Anna Weber", "items": [["mug", 2]], "city": "Graz"})


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if m.needs_generation])
def test_every_generation_metric_scores_identity_1_and_stays_in_unit_range(name: str) -> None:
    metric = get_metric(name)
    assert metric.higher_is_better
    assert metric.score([REF, "nonsense"], [REF, REF]) == pytest.approx(
        (1.0 + metric.score_one("nonsense", REF)) / 2
    )
    assert metric.score_one(REF, REF) == 1.0
    assert 0.0 <= metric.score_one("nonsense", REF) < 1.0


def test_exact_match_normalises_whitespace_only() -> None:
    em = get_metric("exact_match")
    assert em.score_one("  hello \n  world ", "hello world") == 1.0
    assert em.score_one("Hello world", "hello world") == 0.0


def test_json_match_counts_fields_and_parses_the_first_object_in_prose() -> None:
    jm = get_metric("json_match")
    wrong_city = REF.replace("Graz", "Linz")
    assert jm.score_one(f"Sure! {wrong_city} Hope that helps {{", REF) == pytest.approx(4 / 5)
    # items are element-wise: [["mug", 3]] gets the item name right and the quantity wrong
    assert jm.score_one(REF.replace("2]", "3]"), REF) == pytest.approx(4 / 5)
    # an extra field costs: 5 of 6 counted fields right
    extra = json.dumps({**json.loads(REF), "note": "x"})
    assert jm.score_one(extra, REF) == pytest.approx(5 / 6)
    assert jm.score_one('{"intent": "order"', REF) == 0.0  # unparseable
    assert jm.score_one(REF.replace("Anna Weber", "anna  weber"), REF) == 1.0


def test_json_match_types_matter_numbers_in_words_are_the_task() -> None:
    jm = get_metric("json_match")
    ref = json.dumps({"people": 4, "ok": True})
    assert jm.score_one('{"people": "4", "ok": true}', ref) == 0.5
    assert jm.score_one('{"people": 4.0, "ok": 1}', ref) == 0.5


def test_json_exact_needs_every_field_and_no_extra() -> None:
    je = get_metric("json_exact")
    assert je.score_one(REF, REF) == 1.0
    assert je.score_one(REF.replace("Graz", "Linz"), REF) == 0.0
    assert je.score_one(json.dumps({**json.loads(REF), "x": 1}), REF) == 0.0


def test_rouge_l_is_lcs_f1() -> None:
    rl = get_metric("rouge_l")
    # LCS("a b c d", "a c d e") = 3 -> P = R = 3/4
    assert rl.score_one("a b c d", "a c d e") == pytest.approx(0.75)
    assert rl.score_one("x y", "a b") == 0.0


def test_accuracy_reads_the_first_line_case_insensitively() -> None:
    acc = get_metric("accuracy")
    assert acc.score_one("Positive.\nBecause the review...", "positive") == 1.0
    assert acc.score_one("negative", "positive") == 0.0


def test_eval_loss_is_a_minimised_marker() -> None:
    metric = get_metric("eval_loss")
    assert not metric.higher_is_better and not metric.needs_generation
    with pytest.raises(ValueError, match="not computed from generations"):
        metric.score_one("a", "b")


def test_unknown_metric_and_bad_inputs() -> None:
    with pytest.raises(ValueError, match="known: exact_match"):
        get_metric("bleu")
    with pytest.raises(ValueError, match="equally long"):
        get_metric("exact_match").score(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        get_metric("exact_match").score([], [])


def test_json_helpers() -> None:
    assert first_json_object('x [1] {"a": 1} {"b": 2}') == {"a": 1}
    assert first_json_object("no json") is None
    assert flatten_json({"a": {"b": [1, {"c": 2}]}, "e": []}) == {"a.b.0": 1, "a.b.1.c": 2, "e": []}

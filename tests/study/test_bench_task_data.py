"""The tuner benchmark's two other tasks (route, style): reproducible byte for byte, with
held-out phrasings and values in eval, and hard enough that one keyword or one copy rule does
not solve them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import load_script

DATA = Path(__file__).resolve().parents[2] / "studies" / "data"
TASKS = ("route", "style")


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


@pytest.mark.parametrize("task", TASKS)
def test_generator_reproduces_the_committed_files(task: str, tmp_path: Path):
    for written in load_script(DATA / f"make_{task}_data.py").write(tmp_path):
        assert written.read_bytes() == (DATA / written.name).read_bytes(), written.name


@pytest.mark.parametrize("task, kind", [("route", "label"), ("style", "action")])
def test_eval_holds_out_templates_for_every_kind(task: str, kind: str):
    train, evaluation = _records(f"{task}_train.jsonl"), _records(f"{task}_eval.jsonl")
    assert len(train) == 300 and len(evaluation) == 48
    first_32 = evaluation[:32]  # what the grid studies score (max_eval_examples: 32)
    assert {r[kind] for r in first_32} == {r[kind] for r in train}
    assert any(r["held_out"] for r in first_32) and not all(r["held_out"] for r in first_32)
    train_templates = {r["template"] for r in train}
    held = {r["template"] for r in evaluation if r["held_out"]}
    assert held and not held & train_templates
    assert {t.split("/")[0] for t in held} == {r[kind] for r in train}
    counts = {value: sum(r[kind] == value for r in train) for value in {r[kind] for r in train}}
    assert max(counts.values()) - min(counts.values()) <= 1  # balanced


ROUTE_KEYWORDS = {
    "billing": ("invoice", "charged", "payment", "paid", "bill"),
    "shipping": ("parcel", "delivery", "deliver", "courier", "arrived"),
    "returns": ("refund", "send it back", "return"),
    "technical": ("app", "firmware", "error", "wifi"),
    "account": ("log in", "password", "account", "profile"),
    "cancel": ("cancel", "subscription", "membership"),
}


def test_route_is_not_one_keyword_per_label():
    """Confounders name another label's topic: a keyword router misroutes a share of them."""
    generator = load_script(DATA / "make_route_data.py")
    records = _records("route_train.jsonl") + _records("route_eval.jsonl")
    assert all(r["response"] == r["label"] in generator.LABELS for r in records)
    confounded = [
        r
        for r in records
        if any(
            word in r["prompt"].lower()
            for label, words in ROUTE_KEYWORDS.items()
            if label != r["label"]
            for word in words
        )
    ]
    assert 0.3 <= len(confounded) / len(records) <= 0.8
    eval_text = " ".join(r["prompt"] for r in _records("route_eval.jsonl"))
    train_text = " ".join(r["prompt"] for r in _records("route_train.jsonl"))
    held = generator.EVAL_ONLY_PRODUCTS
    assert not any(p in train_text for p in held) and any(p in eval_text for p in held)


STYLE_ANSWER = re.compile(
    r"^(?P<name>[A-Z][a-z]+) asks to (?P<action>move|cancel|confirm|book) the (?P<thing>[a-z ]+?) "
    r"(?:to|on|for) (?:Monday|Tuesday|Wednesday|Thursday|Friday)(?: at [0-2]\d:[0-5]\d)?\.$"
)


def test_style_answers_follow_one_pattern_with_normalised_slots():
    generator = load_script(DATA / "make_style_data.py")
    train, evaluation = _records("style_train.jsonl"), _records("style_eval.jsonl")
    for record in train + evaluation:
        match = STYLE_ANSWER.match(record["response"])
        assert match, record["response"]
        assert match["action"] == record["action"] and match["thing"] in generator.THINGS
        assert record["response"] not in record["prompt"]  # a rewrite, never a copy
    train_text = " ".join(r["prompt"] + r["response"] for r in train)
    for held in (generator.EVAL_ONLY_NAMES, generator.EVAL_ONLY_THINGS):
        assert not any(value in train_text for value in held), held
    eval_answers = " ".join(r["response"] for r in evaluation)
    assert any(name in eval_answers for name in generator.EVAL_ONLY_NAMES)

"""The demo data: reproducible byte for byte, with held-out phrasings and values in eval."""

from __future__ import annotations

import json
from pathlib import Path

from support import load_script

DATA = Path(__file__).resolve().parents[2] / "studies" / "data"


def _generator():
    return load_script(DATA / "make_demo_data.py")


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def test_generator_reproduces_the_committed_files(tmp_path: Path):
    for written in _generator().write(tmp_path):
        assert written.read_bytes() == (DATA / written.name).read_bytes(), written.name


def test_eval_holds_out_templates_and_values():
    train, evaluation = _records("demo_train.jsonl"), _records("demo_eval.jsonl")
    assert 250 <= len(train) <= 400 and 40 <= len(evaluation) <= 60
    train_templates = {r["template"] for r in train}
    held_templates = {r["template"] for r in evaluation} - train_templates
    assert {t.split("/")[0] for t in held_templates} == {"order", "booking", "contact"}
    names = {json.loads(r["response"])["name"] for r in train}
    cities = {json.loads(r["response"]).get("city") for r in train}
    eval_answers = [json.loads(r["response"]) for r in evaluation]
    assert any(a["name"] not in names for a in eval_answers)
    assert any(a.get("city") and a["city"] not in cities for a in eval_answers)
    eval_only = _generator().EVAL_ONLY
    train_text = " ".join(r["prompt"] + r["response"] for r in train)
    for values in eval_only.values():
        assert not any(value in train_text for value in values), values


def test_answers_are_one_json_format_with_normalised_values():
    for record in _records("demo_train.jsonl") + _records("demo_eval.jsonl"):
        answer = json.loads(record["response"])
        assert answer["intent"] == record["intent"]
        assert len(record["prompt"].split()) <= 30
        if answer["intent"] == "order":
            assert all(isinstance(q, int) and q >= 1 for _, q in answer["items"])
        elif answer["intent"] == "booking":
            assert isinstance(answer["people"], int)
            assert len(answer["date"]) == 5 and answer["date"][2] == "-"
            assert len(answer["time"]) == 5 and answer["time"][2] == ":"
        else:
            assert answer["phone"].isdigit()

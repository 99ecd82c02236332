"""The knowledge demo's data: reproducible byte for byte, and the eval set asks only about
products that no training question or answer names (so only retrieval can know their facts)."""

from __future__ import annotations

import json
from pathlib import Path

from support import load_script

from runners.knowledge import chunk, read_documents

DATA = Path(__file__).resolve().parents[2] / "studies" / "data"


def _generator():
    return load_script(DATA / "make_catalogue_data.py")


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def test_generator_reproduces_the_committed_files(tmp_path: Path):
    written = _generator().write(tmp_path)
    assert len(written) == 6
    for path in written:
        committed = DATA / path.relative_to(tmp_path)
        assert path.read_bytes() == committed.read_bytes(), committed
    assert sorted(p.name for p in (DATA / "catalogue").iterdir()) == sorted(
        p.name for p in (tmp_path / "catalogue").iterdir()
    )


def test_eval_products_are_named_by_no_training_record():
    train, evaluation = _records("catalogue_train.jsonl"), _records("catalogue_eval.jsonl")
    assert 200 <= len(train) <= 300 and 32 <= len(evaluation) <= 48
    assert all(r["held_out"] for r in evaluation) and not any(r["held_out"] for r in train)
    train_text = " ".join(r["prompt"] + " " + r["response"] for r in train)
    for record in evaluation:
        brand = record["product"].split()[0]
        assert brand not in train_text, record
    # the answer formats are learnable from training: every kind of question is trained
    assert {r["kind"] for r in train} == {r["kind"] for r in evaluation} == {
        "price", "sku", "colour", "stock"
    }  # fmt: skip


def test_every_eval_answer_is_in_the_catalogue_beside_its_product():
    documents = read_documents(DATA / "catalogue")
    passages = [c.text for c in chunk(documents, 64)]
    for record in _records("catalogue_eval.jsonl"):
        assert any(record["product"] in text and record["response"] in text for text in passages), (
            record
        )


def test_answers_are_short_values():
    for record in _records("catalogue_train.jsonl") + _records("catalogue_eval.jsonl"):
        answer = record["response"]
        assert len(answer.split()) <= 2, record
        if record["kind"] == "price":
            assert answer.startswith("$") and answer[-3] == "."
        elif record["kind"] == "stock":
            assert answer.isdigit()

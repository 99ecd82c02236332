"""Retrieval studies: `data.knowledge`, the retrieval parameters, `rag+lora` as `rag_lora`, and
a `rag` study resolved into a trial (no learning rate) and dumped into a study that reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.errors import AdvisorInputError
from advisor.study import dump_resolved, load_study, resolve_trial_config, search_parameters
from advisor.study.loading import spec_hash


def _study(tmp_path: Path, **overrides: Any) -> Path:
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text('{"prompt": "p", "response": "r"}\n')
    (tmp_path / "kb").mkdir(exist_ok=True)
    (tmp_path / "kb" / "facts.md").write_text("The lamp costs 49 euros.")
    raw: dict[str, Any] = {
        "name": "r",
        "model": {"source": "smollm2-135m"},
        "data": {"train": "train.jsonl", "eval": "eval.jsonl", "knowledge": "kb"},
        "method": "rag",
        "search": {"top_k": [1, 3], "chunk_size": {"low": 32, "high": 128, "step": 32}},
    }
    raw.update(overrides)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_rag_study_resolves_into_a_retrieval_trial(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path))
    assert spec.data.knowledge == str(tmp_path / "kb")
    assert spec.search.learning_rate is None  # rag trains nothing: no rate is filled in
    assert [p.name for p in search_parameters(spec)] == ["top_k", "chunk_size"]
    config = resolve_trial_config(
        spec, {"top_k": 3, "chunk_size": 64}, trial_number=0, output_dir="out"
    )
    assert (config.method.name, config.method.top_k, config.method.chunk_size) == ("rag", 3, 64)
    assert config.method.r is None and config.train.learning_rate == 0.0
    assert config.data.knowledge_path == str(tmp_path / "kb")


def test_the_dumped_study_reloads_and_hashes_the_same(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path))
    again = tmp_path / "again.yaml"
    again.write_text(dump_resolved(spec))
    reloaded = load_study(again)
    assert reloaded.model_dump() == spec.model_dump()
    assert spec_hash(reloaded) == spec_hash(spec)


def test_rag_plus_lora_is_read_as_rag_lora(tmp_path: Path) -> None:
    path = _study(tmp_path, method="rag+lora", search={"r": 4, "top_k": 2})
    spec = load_study(path)
    assert spec.method == "rag_lora"
    assert spec.search.chunk_size == 64 and spec.search.target_modules == "attention_qv"
    assert spec.search.learning_rate == 2e-4
    config = resolve_trial_config(spec, {}, trial_number=0, output_dir="out")
    assert (config.method.r, config.method.top_k, config.method.chunk_size) == (4, 2, 64)
    assert spec_hash(spec) == spec_hash(
        load_study(_study(tmp_path, method="rag_lora", search={"r": 4, "top_k": 2}))
    )


def test_each_retrieval_rule_is_reported_at_once(tmp_path: Path) -> None:
    path = _study(
        tmp_path,
        data={"train": "train.jsonl", "eval": "eval.jsonl"},
        search={"r": 4, "learning_rate": 1e-3, "top_k": 2},
    )
    with pytest.raises(AdvisorInputError) as raised:
        load_study(path)
    found = {(dotted, message.split(":")[0]) for _, dotted, message, _ in raised.value.problems}
    assert found == {
        ("method", "method 'rag' answers from retrieved passages, but data.knowledge is not set"),
        ("search.r", "method 'rag' has no 'r' parameter"),
        ("search.learning_rate", "method 'rag' trains nothing"),
    }

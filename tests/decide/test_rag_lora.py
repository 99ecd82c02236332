"""`rag_lora` in the recommender: DOMAIN.md rule 1's "Both needed -> RAG + fine-tuning" is
RAG + LoRA, its estimate is LoRA's plus the passages in every prompt, and retrieval is never
traded for a cheaper LoRA by --priority cost."""

from __future__ import annotations

from typing import Any

import pytest

from advisor.decide.estimate import estimate_memory, estimate_time
from advisor.decide.recommend import recommend
from advisor.decide.retrieval import passage_tokens
from advisor.decide.rules import RULES
from advisor.decide.shapes import resolve_model
from advisor.decide.traits import Traits

BOTH = [
    {"goal": "both"},  # the CLI's defaults: llama-3-8b on one 24 GB GPU, 1,000 pairs
    {"goal": "both", "examples": 3000, "model": "llama-2-7b", "vram_gb": 24},
    {"goal": "both", "examples": 500, "model": "smollm2-135m", "vram_gb": 8},
    {"goal": "both", "examples": 5000, "vram_gb": 80, "priority": "cost"},
    {"goal": "both", "knowledge_changes": True, "examples": 3000, "vram_gb": 48},
]


def _order(rec: Any) -> list[str]:
    return [c.method for c in rec.ranking]


@pytest.mark.parametrize("traits", BOTH, ids=lambda t: "-".join(f"{v}" for v in t.values()))
def test_knowledge_and_behaviour_is_rag_plus_lora(traits: dict[str, Any]) -> None:
    rec = recommend(Traits(**traits))
    assert rec.method == "rag_lora" and rec.plan == ["rag_lora"], _order(rec)
    assert any(r.startswith("--goal both") and "RAG + LoRA" in r for r in rec.reasons)
    # one method retrieves and trains: no separate rag step in the plan, top_k among its values
    assert rec.plan_steps[0].what.startswith("index the documents; train a LoRA adapter")
    assert {"r", "learning_rate", "top_k", "chunk_size"} <= set(rec.hyperparameters)
    assert rec.hyperparameter_reasons["top_k"]["source"].startswith("runners.methods.rag")


def test_knowledge_alone_ranks_rag_then_rag_lora_then_lora() -> None:
    for traits in ({"goal": "knowledge"}, {"goal": "knowledge", "vram_gb": 80, "gpus": 8}):
        order = _order(recommend(Traits(**traits)))
        assert order.index("rag") < order.index("rag_lora") < order.index("lora"), order
    rec = recommend(Traits(goal="knowledge"))
    assert rec.hyperparameters == {"top_k": 3, "chunk_size": 64}  # rag trains nothing


def test_behaviour_alone_puts_lora_above_rag_lora() -> None:
    order = _order(recommend(Traits(goal="behaviour")))
    assert order[0] == "lora" and order.index("rag_lora") > order.index("qlora"), order


def test_closed_weights_exclude_rag_lora() -> None:
    rec = recommend(Traits(goal="both", weights="api", model="gpt-4o"))
    [row] = [c for c in rec.ranking if c.method == "rag_lora"]
    assert not row.fits and row.score < -100 and "--weights api" in row.reasons[0]


def test_the_rule_rows_name_their_source() -> None:
    rows = [rule for rule in RULES if "rag_lora" in rule.scores]
    assert {rule.id for rule in rows} >= {"knowledge-and-behaviour", "knowledge-read-by-an-adapter"}
    both = next(rule for rule in rows if rule.id == "knowledge-and-behaviour")
    assert "DOMAIN.md rule 1" in both.source and "RAFT" in both.source
    assert both.scores["rag_lora"] > 0 > both.scores["rag"]


def test_the_estimate_is_lora_with_the_passages_in_every_sequence() -> None:
    shape = resolve_model("llama-3-8b")
    context = passage_tokens("rag_lora", top_k=5, chunk_size=100)
    assert context == 650  # 5 x 100 words x 1.3 tokens per word
    assert passage_tokens("lora") == 0
    rag_lora = estimate_memory(shape, "rag_lora", seq_len=512, top_k=5, chunk_size=100)
    lora = estimate_memory(shape, "lora", seq_len=512 + context)
    assert rag_lora.breakdown_bytes == lora.breakdown_bytes
    assert rag_lora.trainable_params == lora.trainable_params
    assert rag_lora.assumptions["passage_tokens"] == context
    assert rag_lora.total_gb > estimate_memory(shape, "lora", seq_len=512).total_gb
    hours = estimate_time(shape, "rag_lora", examples=1000, seq_len=512, top_k=5, chunk_size=100)
    assert hours.tokens == 1000 * (512 + context)
    assert hours.flops == estimate_time(shape, "lora", examples=1000, seq_len=1162).flops
    # rag trains nothing: its passages lengthen only the KV cache of inference
    rag = estimate_memory(shape, "rag", seq_len=512)
    per_token = 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * 2  # K and V, 16-bit
    assert rag.breakdown_bytes["kv_cache"] == per_token * (512 + passage_tokens("rag"))
    assert estimate_time(shape, "rag", examples=1000, seq_len=512).hours == 0


def test_priority_cost_does_not_trade_retrieval_for_a_cheaper_lora() -> None:
    rec = recommend(Traits(goal="both", examples=5000, vram_gb=80, priority="cost", seq_len=256))
    rag_lora, lora = (next(c for c in rec.ranking if c.method == m) for m in ("rag_lora", "lora"))
    assert rag_lora.cost_usd > 1.5 * lora.cost_usd  # longer prompts: it does cost more
    assert rec.method == "rag_lora"
    assert not any(r.startswith("--priority cost: rag_lora") for r in rag_lora.reasons)

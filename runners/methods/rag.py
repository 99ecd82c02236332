"""The retrieval methods: `rag` (nothing trained) and `rag_lora` (a LoRA adapter that reads).

`rag`: the base model answers each eval question with the `top_k` passages BM25 finds in
`data.knowledge` placed before it (`runners.retrieval`: a fixed prompt shape through the study's
chat template). Nothing is trained, so its cost is the index and inference, and it forgets
nothing; it is scored with the study's metric on the same eval set as every other method, and
the untuned baseline (no retrieval) stays what `gain` is measured against.

`rag_lora` (`rag+lora` is accepted as the same name): a LoRA adapter trained on the task with the
retrieved passages already in its training prompts, then asked with retrieval at eval. Training
with the passages, not without, is the point: an adapter trained on bare questions learns to
answer from its weights and to ignore a context it never saw, while one trained on the prompts
it will be asked learns to find the answer in the passages, and to look past the ones that do
not hold it (the passages are whatever BM25 returns, relevant or not). This is the recipe of
RAFT (Zhang et al., 2024, "RAFT: Adapting Language Model to Domain Specific RAG"), without its
chain-of-thought answers: the study's own answers are the targets.

Why `rag_lora` and not `rag+lora` as the registry's name: a method's name can become part of an
MLflow metric key (a figure per method of a study that searches the method), and MLflow refuses
`+` in keys; `rag+lora` in a study file is read as `rag_lora` (`METHOD_ALIASES`).
"""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.methods._base import (
    LORA_DEFAULTS,
    LORA_SEARCH,
    METHOD_ALIASES,
    RETRIEVAL_SEARCH,
    Method,
    register_method,
)
from runners.methods.lora import lora_config

DEFAULT_TOP_K = 3
"""Passages per prompt when a study sets no search.top_k."""
DEFAULT_CHUNK_SIZE = 64
"""Words per passage when a study sets no search.chunk_size: three passages of 64 words are
about 250 tokens, room for the question and answer in a small model's context (raise
train.max_seq_length for `rag_lora`: its training prompts hold the passages too)."""
RETRIEVAL_DEFAULTS = {"top_k": DEFAULT_TOP_K, "chunk_size": DEFAULT_CHUNK_SIZE}


def _as_loaded(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    """`rag` trains nothing: the base model answers as loaded."""
    return model


def _prepare_rag_lora(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, cfg))


RAG = register_method(
    Method(
        name="rag",
        summary="No training: BM25 passages from data.knowledge in the base model's prompt.",
        peft=False,
        prepare=_as_loaded,
        family="retrieval",
        search=RETRIEVAL_SEARCH,
        defaults=dict(RETRIEVAL_DEFAULTS),
        trains=False,
        retrieval=True,
    )
)
RAG_LORA = register_method(
    Method(
        name="rag_lora",
        summary="LoRA trained with retrieved passages in its prompts, answering with retrieval.",
        peft=True,
        prepare=_prepare_rag_lora,
        search=(*LORA_SEARCH, *RETRIEVAL_SEARCH),
        defaults={**LORA_DEFAULTS, **RETRIEVAL_DEFAULTS},
        retrieval=True,
    )
)
METHOD_ALIASES["rag+lora"] = RAG_LORA.name

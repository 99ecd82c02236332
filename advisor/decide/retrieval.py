"""The retrieval methods' side of a recommendation: the passages every prompt carries, and where
`top_k` and `chunk_size` start.

`rag` and `rag_lora` put the `top_k` passages BM25 finds, `chunk_size` words each, before every
question (`runners.retrieval`), at training (`rag_lora`) and at inference (both). That context is
what retrieval costs beyond its index: it lengthens every sequence, so the activations, the KV
cache and the training tokens grow with `top_k x chunk_size` words. A recommendation that
ignored it would rank `rag_lora` at LoRA's price; it is counted here, in the tokens of a typical
tokenizer (`traits.WORD_TOKENS` per word), for the estimate of every retrieval method.

The BM25 index itself lives in host memory (a sparse matrix of the knowledge's words: megabytes
for thousands of pages) and is built in seconds on a CPU (`index_seconds` on a trial's run), so
neither the GPU memory nor the GPU-hour estimate counts it.

The starting values are the registry's defaults (`runners.methods.rag`: one source for the
study files and the recommendation), with the reason the registry gives for them.
"""

from __future__ import annotations

from typing import Any

from runners.methods import METHODS as RUNNER_METHODS

from .traits import WORD_TOKENS

RETRIEVERS = frozenset(name for name, entry in RUNNER_METHODS.items() if entry.retrieval)
"""The methods that answer with retrieved passages in the prompt: `rag`, `rag_lora`."""
REGISTRY = "runners.methods.rag (the registry's defaults; advisor default, unsourced)"
STARTING_REASONS = {
    "top_k": "{value} passages per question: the retrieval methods' default, enough for a fact "
    "that BM25 ranks second or third; the study searches around it",
    "chunk_size": "{value} words per passage ({tokens} tokens of context in every prompt with "
    "top_k {top_k}): room for the question and answer in a small model's context; raise it "
    "for long documents on a large model",
}


def retrieval_defaults(method: str) -> dict[str, int]:
    """The registry's `top_k` and `chunk_size` for a retrieval method ({} for any other)."""
    if method not in RETRIEVERS:
        return {}
    defaults = RUNNER_METHODS[method].defaults
    return {"top_k": int(defaults["top_k"]), "chunk_size": int(defaults["chunk_size"])}


def retrieval_assumptions(
    method: str, *, top_k: int | None = None, chunk_size: int | None = None
) -> dict[str, int]:
    """What an estimate of `method` assumes of its passages ({} for a method that does not
    retrieve): `top_k`, `chunk_size` (None: the registry's) and the `passage_tokens` they add,
    top_k x chunk_size words x `WORD_TOKENS`."""
    defaults = retrieval_defaults(method)
    if not defaults:
        return {}
    k = defaults["top_k"] if top_k is None else top_k
    words = defaults["chunk_size"] if chunk_size is None else chunk_size
    return {"top_k": k, "chunk_size": words, "passage_tokens": round(k * words * WORD_TOKENS)}


def passage_tokens(method: str, *, top_k: int | None = None, chunk_size: int | None = None) -> int:
    """Tokens the retrieved passages add to every prompt of `method` (0: it does not retrieve)."""
    found = retrieval_assumptions(method, top_k=top_k, chunk_size=chunk_size)
    return found.get("passage_tokens", 0)


def retrieval_starting_point(method: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`top_k` and `chunk_size` to start from, and per key its value, reason, source and rule
    (the shape of `hyperparams.starting_point`'s reasons); ({}, {}) for a non-retrieval method."""
    values = retrieval_defaults(method)
    if not values:
        return {}, {}
    facts = {**values, "tokens": passage_tokens(method, **values)}
    why = {
        key: {
            "value": value,
            "reason": STARTING_REASONS[key].format(value=value, **facts),
            "source": REGISTRY,
            "rule": f"retrieval-{key.replace('_', '-')}",
        }
        for key, value in values.items()
    }
    return values, why


__all__ = [
    "RETRIEVERS",
    "passage_tokens",
    "retrieval_assumptions",
    "retrieval_defaults",
    "retrieval_starting_point",
]

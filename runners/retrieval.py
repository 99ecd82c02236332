"""Lexical retrieval for the retrieval methods (`rag`, `rag_lora`): BM25 over the knowledge's
passages, and the prompt shape that puts the passages before the question.

Why BM25 through `bm25s`: it scores with sparse numpy matrices (fast to index and query on a
CPU, no server, no GPU), depends on numpy only, and needs no embedding model, so nothing is
downloaded and a trial's index is the same on every machine. Words are split, lower-cased and
stripped of English stop words by bm25s' own tokenizer; no stemmer (PyStemmer is not a
dependency), so `price` and `prices` are different words.

The prompt shape is fixed, so that every trial of every study asks the same way:

    Use these passages to answer the question.

    [1] (catalogue.md) ...
    [2] (facts.jsonl:3) ...

    Question: <the user's last turn>

It replaces the last user turn before the answer that is scored (or trained), and goes through
the study's chat template like any other turn (the tokenizer's own, or `plain` for a base model:
`runners.templates`), so the system prompt and earlier turns are untouched. A passage that
shares no word with the question scores 0 and is left out: it is not evidence, and the
question is then asked with the passages that did match (or none).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from runners.config import TrialConfig, TrialResult
from runners.data import Examples, TrainingSet
from runners.errors import TrialInputError
from runners.knowledge import Chunk, chunk, read_documents
from runners.layouts import Conversation, Example, Turn
from runners.methods import Method

INSTRUCTION = "Use these passages to answer the question."


@dataclass(frozen=True)
class Index:
    """A BM25 index over `chunks`; `search` answers the best passages per question."""

    chunks: list[Chunk]
    bm25: Any
    tokenizer: Any

    def search(self, questions: Sequence[str], top_k: int) -> list[list[Chunk]]:
        """For each question, up to `top_k` passages, best first; passages scoring 0 left out."""
        if top_k < 1:
            raise TrialInputError(
                f"top_k must be >= 1, got {top_k}",
                fix="set search.top_k to e.g. 3",
                where="search.top_k",
            )
        if not questions:
            return []
        tokens = self.tokenizer.tokenize(
            list(questions), update_vocab=False, show_progress=False, return_as="tuple"
        )
        k = min(top_k, len(self.chunks))
        found, scores = self.bm25.retrieve(tokens, k=k, show_progress=False)
        return [
            [self.chunks[int(i)] for i, score in zip(row, row_scores, strict=True) if score > 0]
            for row, row_scores in zip(found, scores, strict=True)
        ]


def build_index(chunks: list[Chunk]) -> Index:
    """Tokenise the passages and index them (BM25, Lucene's scoring, bm25s' defaults)."""
    import bm25s

    tokenizer = bm25s.tokenization.Tokenizer(stopwords="en")
    tokens = tokenizer.tokenize(
        [c.text for c in chunks], show_progress=False, return_as="tuple", allow_empty=True
    )
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    return Index(chunks, bm25, tokenizer)


def with_context(question: str, passages: Sequence[Chunk]) -> str:
    """The user turn that asks `question` with `passages` (the module docstring's shape)."""
    listed = "\n".join(f"[{n}] ({p.source}) {p.text}" for n, p in enumerate(passages, start=1))
    return f"{INSTRUCTION}\n\n{listed}\n\nQuestion: {question}"


def _question_turn(conversation: Conversation) -> int | None:
    """Index of the user turn before the conversation's last answer (None: no such turn)."""
    turns = conversation.messages
    last = max(i for i, t in enumerate(turns) if t.role == "assistant")
    users = [i for i in range(last) if turns[i].role == "user"]
    return users[-1] if users else None


def with_passages(examples: Sequence[Example], index: Index, top_k: int) -> list[Example]:
    """`examples` with each conversation's question asked with its retrieved passages."""
    asked = [
        (n, e, turn)
        for n, e in enumerate(examples)
        if isinstance(e, Conversation) and (turn := _question_turn(e)) is not None
    ]
    found = index.search([e.messages[turn].content for _, e, turn in asked], top_k)
    out = list(examples)
    for (n, example, turn), passages in zip(asked, found, strict=True):
        messages = list(example.messages)
        question = messages[turn].content
        messages[turn] = Turn("user", with_context(question, passages))
        out[n] = replace(example, messages=tuple(messages))
    return out


def retrieve_into(
    config: TrialConfig,
    training: TrainingSet,
    evals: Examples,
    result: TrialResult,
    method: Method,
) -> tuple[TrainingSet, Examples]:
    """Index `data.knowledge` and put the passages into the eval prompts (and, for a method that
    trains, the training prompts); the index's time and size go into `result`. `top_k` and
    `chunk_size` left unset in `config` (a config built by hand) take the method's defaults."""
    if config.data.knowledge_path is None:
        raise TrialInputError(
            f"method {config.method.name!r} retrieves from data.knowledge, which is not set",
            fix="set data.knowledge to a file or folder of documents",
            where="data.knowledge",
        )
    if evals.layout.kind != "chat":
        raise TrialInputError(
            f"retrieval answers questions, but the eval data is raw text (the "
            f"{evals.layout.name} layout)",
            fix="use chat data (a question and its answer per row) with a retrieval method",
            where="method.name",
        )
    started = time.perf_counter()
    size = config.method.chunk_size or method.defaults["chunk_size"]
    documents = read_documents(config.data.knowledge_path)
    index = build_index(chunk(documents, size))
    result.index_seconds = time.perf_counter() - started
    result.index_chunks = len(index.chunks)
    print(
        f"index: {len(index.chunks)} passages of <= {size} words from {len(documents)} "
        f"documents in {result.index_seconds:.2f}s",
        file=sys.stderr,
        flush=True,
    )
    top_k = config.method.top_k or method.defaults["top_k"]
    evals = Examples(evals.layout, with_passages(evals.examples, index, top_k))
    if method.trains:
        training = replace(training, examples=with_passages(training.examples, index, top_k))
    return training, evals

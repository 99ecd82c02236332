"""Length distributions of contexts, completions and whole training sequences, and what gets cut.

With a model (`--model`, or the study's), lengths are tokens of that model's tokenizer and the
sequence is what training renders: a conversation through the chat template the study uses
(`runners.templates.resolve_template`: the tokenizer's own, `plain` for a base model, or the one
`model.chat_template` names), a raw-text document as it is. A sequence over `max_seq_length`
tokens is cut at its end: the report says how many turns are lost and where the cut falls (in an
assistant turn, whose end is never learned, or in the context, after which no answer is learned).
Without a model, lengths are *words* (a regex count: runs of letters or digits, each CJK
character, each punctuation mark), labelled as such: most tokenizers cut English into ~1.3
tokens per word, so "over N words" understates what a tokenizer would cut.

`context` counts the system and user turns of a row, `completion` its assistant turns (what the
loss covers); a document is all sequence. Loading a tokenizer imports transformers (and torch);
the word count imports nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from advisor.scan.core import TEXT_ROLE, Row, ScanContext, TextCounter, with_system
from runners.config import ModelRef
from runners.models import load_tokenizer
from runners.templates import resolve_template

HISTOGRAM_BINS = 10
WORD_TOKENS = 1.3
"""Tokens per English word of a typical tokenizer, for estimates from word counts."""

_WORD = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"  # one CJK character
    r"|[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+"  # a word/number
    r"|[^\w\s]"  # a punctuation mark
)


@dataclass
class WordCounter:
    """The fallback without a model: fast, tokenizer-free, explicitly not tokens."""

    unit: str = "words"
    source: str = "regex word count (no model given: pass --model or --study for tokens)"
    template: str | None = None
    """No chat template: a conversation is its turns' words."""

    def lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(text)) for text in texts]

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]:
        return [self.turn_ends(row, system_prompt)[-1] for row in rows]

    def turn_ends(self, row: Row, system_prompt: str | None) -> list[int]:
        messages = with_system(row, system_prompt) if row.turns[0].role != TEXT_ROLE else []
        texts = [m["content"] for m in messages] or [row.turns[0].content]
        return list(accumulate(self.lengths(texts)))


@dataclass
class TokenizerCounter:
    """Tokens of a model's tokenizer; conversations through the chat template training uses."""

    tokenizer: Any
    source: str
    chat_template: str = "auto"
    """`model.chat_template`: auto, model, chatml, plain or a Jinja file (`runners.templates`)."""
    unit: str = "tokens"
    template: str | None = field(init=False)
    """The template's name (model, plain, chatml or the file), as `resolve_template` chose it."""

    def __post_init__(self) -> None:
        self._template = resolve_template(self.tokenizer, self.chat_template)
        self.template = self._template.name

    def lengths(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def _render(self, messages: list[dict[str, str]]) -> str:
        return self._template.render(self.tokenizer, messages, prompt=False)

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]:
        """Every row's whole sequence, tokenised in one batch."""
        return self.lengths(
            [
                row.turns[0].content
                if row.turns[0].role == TEXT_ROLE
                else self._render(with_system(row, system_prompt))
                for row in rows
            ]
        )

    def turn_ends(self, row: Row, system_prompt: str | None) -> list[int]:
        """Each turn's end: the tokens of the conversation rendered up to and with that turn
        (one rendering per turn, so asked only for the rows that are cut)."""
        if row.turns[0].role == TEXT_ROLE:
            return self.lengths([row.turns[0].content])
        messages = with_system(row, system_prompt)
        return self.lengths([self._render(messages[:end]) for end in range(1, len(messages) + 1)])


def load_counter(
    model: str | None,
    *,
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
    chat_template: str = "auto",
) -> TextCounter:
    """A tokenizer counter for `model` (preset, local HF directory or .gguf), else words.

    Only the tokenizer is loaded, from local files: a preset's converted copy when the cache has
    it, otherwise straight from its GGUF file (no model conversion for a scan). The chat template
    is resolved (and checked) as a trial resolves it.
    """
    if model is None:
        return WordCounter()
    ref = ModelRef(source=model, trust_remote_code=trust_remote_code, gguf_file=gguf_file)
    tokenizer = load_tokenizer(ref)
    return TokenizerCounter(tokenizer, source=model, chat_template=chat_template)


# --- statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bin:
    low: int
    high: int
    """Inclusive bounds."""
    count: int


@dataclass
class Distribution:
    count: int = 0
    mean: float = 0.0
    min: int = 0
    p50: int = 0
    p90: int = 0
    p95: int = 0
    p99: int = 0
    max: int = 0
    histogram: list[Bin] = field(default_factory=list)


def percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of sorted values: a length that occurs in the data."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def histogram(values: Sequence[int], bins: int = HISTOGRAM_BINS) -> list[Bin]:
    """Equal-width integer bins from the shortest to the longest value."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = max(1, math.ceil((high - low + 1) / bins))
    counts = [0] * math.ceil((high - low + 1) / width)
    for value in values:
        counts[(value - low) // width] += 1
    return [
        Bin(low + i * width, min(high, low + (i + 1) * width - 1), count)
        for i, count in enumerate(counts)
    ]


def distribution(values: Sequence[int]) -> Distribution:
    if not values:
        return Distribution()
    ordered = sorted(values)
    return Distribution(
        count=len(ordered),
        mean=round(sum(ordered) / len(ordered), 1),
        min=ordered[0],
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        histogram=histogram(ordered),
    )


@dataclass(frozen=True)
class TruncatedRow:
    file: str
    row: int
    length: int
    turns_cut: int
    """Turns that end past `max_seq_length` (cut short or lost)."""
    cut_in: str
    """The role of the turn the cut falls in: assistant (its end is never learned), user or
    system (the context: no later answer is learned), or text (a document)."""


@dataclass
class LengthResult:
    unit: str
    source: str
    template: str | None
    """The chat template conversations were rendered with (None: words, no template)."""
    max_seq_length: int
    context: Distribution
    """Per conversation: its system and user turns."""
    completion: Distribution
    """Per conversation: its assistant turns (what the loss covers)."""
    sequence: Distribution
    """Per row: the whole rendered conversation, or the document."""
    truncated: list[TruncatedRow] = field(default_factory=list)
    """Rows whose sequence is longer than max_seq_length, longest first."""
    cut_in_context: int = 0
    """Truncated rows whose cut falls in a system or user turn: the answers after it are lost
    whole."""

    def measures(self) -> dict[str, int]:
        return {"truncated": len(self.truncated)}


def _truncation(row: Row, ends: list[int], limit: int, system_first: bool) -> TruncatedRow:
    roles = [turn.role for turn in row.turns]
    if system_first:
        roles.insert(0, "system")  # the study's system prompt, rendered before the row's turns
    cut = [role for role, end in zip(roles, ends, strict=True) if end > limit]
    return TruncatedRow(row.file, row.row, ends[-1], len(cut), cut[0])


def check(rows: Sequence[Row], context: ScanContext) -> LengthResult:
    counter = context.counter
    options = context.options
    readable = [row for row in rows if row.turns]
    chats = [row for row in readable if row.turns[0].role != TEXT_ROLE]
    contexts = counter.lengths(["\n".join(row.texts("system", "user")) for row in chats])
    completions = counter.lengths(["\n".join(row.texts("assistant")) for row in chats])
    sequences = counter.sequence_lengths(readable, options.system_prompt)
    truncated = []
    for row, length in zip(readable, sequences, strict=True):
        if length > options.max_seq_length:
            ends = counter.turn_ends(row, options.system_prompt)
            system_first = len(ends) > len(row.turns)
            truncated.append(_truncation(row, ends, options.max_seq_length, system_first))
    truncated.sort(key=lambda t: (-t.length, t.file, t.row))
    return LengthResult(
        unit=counter.unit,
        source=counter.source,
        template=counter.template if chats else None,  # raw text is tokenised as it is
        max_seq_length=options.max_seq_length,
        context=distribution(contexts),
        completion=distribution(completions),
        sequence=distribution(sequences),
        truncated=truncated,
        cut_in_context=sum(t.cut_in in ("system", "user") for t in truncated),
    )

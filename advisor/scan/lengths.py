"""Length distributions of prompts, responses and whole training sequences, and what gets cut.

With a model (`--model`, or the study's), lengths are tokens of that model's tokenizer and the
sequence is what trl's SFTTrainer trains on: the chat template over (system prompt,) user turn and
assistant turn; a sequence over `max_seq_length` tokens is truncated, so the end of its answer is
never learned. Without a model, lengths are *words* (a regex count: runs of letters or digits, each
CJK character, each punctuation mark), labelled as such: most tokenizers cut English into ~1.3
tokens per word, so "over N words" understates what a tokenizer would cut.

Loading a tokenizer imports transformers (and torch); the word count imports nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from advisor.scan.core import Row, ScanContext, TextCounter
from runners.config import ModelRef
from runners.models import cached_dir, gguf_path

HISTOGRAM_BINS = 10

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
    templated: bool = False

    def lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(text)) for text in texts]

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]:
        system = len(_WORD.findall(system_prompt)) if system_prompt else 0
        return [system + n for n in self.lengths([row.joined() for row in rows])]


@dataclass
class TokenizerCounter:
    """Tokens of a model's tokenizer; sequences through its chat template when it has one."""

    tokenizer: Any
    source: str
    unit: str = "tokens"
    templated: bool = field(init=False)

    def __post_init__(self) -> None:
        self.templated = bool(getattr(self.tokenizer, "chat_template", None))

    def lengths(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def sequence_lengths(self, rows: Sequence[Row], system_prompt: str | None) -> list[int]:
        if not self.templated:
            prefix = f"{system_prompt}\n" if system_prompt else ""
            return self.lengths([prefix + row.joined() for row in rows])
        rendered = []
        for row in rows:
            messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
            messages += [
                {"role": "user", "content": row.prompt or ""},
                {"role": "assistant", "content": row.response or ""},
            ]
            rendered.append(self.tokenizer.apply_chat_template(messages, tokenize=False))
        return self.lengths(rendered)


def load_counter(
    model: str | None, *, trust_remote_code: bool = False, gguf_file: str | None = None
) -> TextCounter:
    """A tokenizer counter for `model` (preset, local HF directory or .gguf), else words.

    Only the tokenizer is loaded, from local files: a preset's converted copy when the cache has
    it, otherwise straight from its GGUF file (no model conversion for a scan).
    """
    if model is None:
        return WordCounter()
    from transformers import AutoTokenizer

    ref = ModelRef(source=model, trust_remote_code=trust_remote_code, gguf_file=gguf_file)
    common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    directory = cached_dir(ref)
    if directory is not None:
        tokenizer = AutoTokenizer.from_pretrained(directory, **common)
    else:
        gguf = gguf_path(ref)
        assert gguf is not None  # cached_dir returns the directory itself for HF models
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, **common)
    return TokenizerCounter(tokenizer, source=model)


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


@dataclass
class LengthResult:
    unit: str
    source: str
    templated: bool
    max_seq_length: int
    prompt: Distribution
    response: Distribution
    sequence: Distribution
    truncated: list[TruncatedRow] = field(default_factory=list)
    """Rows whose sequence is longer than max_seq_length, longest first."""

    def measures(self) -> dict[str, int]:
        return {"truncated": len(self.truncated)}


def check(rows: Sequence[Row], context: ScanContext) -> LengthResult:
    counter = context.counter
    options = context.options
    prompts = counter.lengths([row.prompt for row in rows if row.prompt is not None])
    responses = counter.lengths([row.response for row in rows if row.response is not None])
    sequences = counter.sequence_lengths(rows, options.system_prompt)
    truncated = [
        TruncatedRow(row.file, row.row, length)
        for row, length in zip(rows, sequences, strict=True)
        if length > options.max_seq_length
    ]
    truncated.sort(key=lambda t: (-t.length, t.file, t.row))
    return LengthResult(
        unit=counter.unit,
        source=counter.source,
        templated=counter.templated,
        max_seq_length=options.max_seq_length,
        prompt=distribution(prompts),
        response=distribution(responses),
        sequence=distribution(sequences),
        truncated=truncated,
    )

"""Forgetting: how far a trial moved the model away from its base on general ability.

Two probes ship with the package, written for this project (nothing is downloaded):

- `probes/general_text.txt`: plain English prose on everyday topics. On its first
  `EvalConfig.forgetting_text_tokens` tokens the base and the trained model are compared: the
  perplexity of each, their difference, and the mean per-token KL(base || tuned) of the
  next-token distributions (in nats). KL sees every change of the distribution, perplexity only
  the probability of the actual next token, so both are reported.
- `probes/general_instructions.jsonl`: simple asks with short checkable answers (arithmetic,
  capitals, opposites, units), answered by greedy generation and scored by `answer_found`: an
  accepted answer appears in the reply as a whole word, case-insensitively. Not exact match: a
  small instruct model answers "The capital of France is Paris." as often as "Paris", and a probe
  that scores the format would measure obedience to "answer in one word", not whether the
  knowledge survived training.

Where the base comes from: a peft model is its base with the adapter switched off
(`disable_adapter()`), so both sides are read from the same object after training at no extra
memory. A fully fine-tuned model has no base left after training, so `snapshot_base` records the
base's log-probabilities on the text probe (on the CPU, fp32: 2048 tokens x 49k vocabulary is
0.4 GB for SmolLM2) and its probe score before training starts.

An untouched model gives exactly 0: both sides run the same computation on the same inputs
(adding a zero LoRA delta is exact), so KL and the perplexity delta are 0.0, not ~1e-7.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runners.config import EvalConfig
from runners.data import Messages
from runners.evaluate import generate
from runners.metrics import normalise_text

PROBE_DIR = Path(__file__).resolve().parent / "probes"
TEXT_PROBE = PROBE_DIR / "general_text.txt"
INSTRUCTION_PROBE = PROBE_DIR / "general_instructions.jsonl"
CHUNK_TOKENS = 256
"""The text probe is scored in chunks of this many tokens (fewer if the model's context is)."""
FORWARD_BATCH = 2
"""Chunks per forward pass: logits are chunk x vocabulary floats (2 x 256 x 49k = 100 MB)."""


@dataclass(frozen=True)
class Probes:
    """The probes as one model sees them: token chunks of the text, chat prompts, answers."""

    chunks: list[list[int]]
    prompts: list[Messages]
    answers: list[tuple[str, ...]]

    @property
    def text_tokens(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass
class Forgetting:
    """The base against the trained model on both probes."""

    base_ppl: float
    tuned_ppl: float
    kl: float
    """Mean over predicted tokens of KL(base || tuned), in nats."""
    base_general_score: float
    general_score: float
    text_tokens: int
    prompts: int

    @property
    def ppl_delta(self) -> float:
        return self.tuned_ppl - self.base_ppl

    @property
    def general_score_delta(self) -> float:
        return self.general_score - self.base_general_score


@dataclass
class BaseSnapshot:
    """The base model's view of the probes, recorded before training changes its weights."""

    logprobs: list[Any] = field(default_factory=list)
    """Per forward batch: log-softmax of the next-token logits, CPU float32."""
    general_score: float = 0.0


def load_probes(tokenizer: Any, cfg: EvalConfig, *, max_positions: int | None = None) -> Probes:
    """The shipped probes cut to the configured sizes, tokenised for `tokenizer`.

    The text is cut into equal chunks of `CHUNK_TOKENS` (or the model's context, if shorter);
    a remainder shorter than a chunk is dropped, so every forward batch has one shape.
    """
    text = TEXT_PROBE.read_text(encoding="utf-8")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids = ids[: cfg.forgetting_text_tokens]
    length = min(CHUNK_TOKENS, max_positions or CHUNK_TOKENS, len(ids))
    if length < 2:
        raise ValueError(f"the text probe needs at least 2 tokens, but got {len(ids)}")
    chunks = [ids[i : i + length] for i in range(0, len(ids) - length + 1, length)]
    lines = INSTRUCTION_PROBE.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()][: cfg.forgetting_prompts]
    return Probes(
        chunks=chunks,
        prompts=[[{"role": "user", "content": row["prompt"]}] for row in rows],
        answers=[tuple(row["answers"]) for row in rows],
    )


def probes_for(model: Any, tokenizer: Any, cfg: EvalConfig) -> Probes:
    """`load_probes` with the model's context length (chunks must fit in it)."""
    config = getattr(model, "config", None)
    return load_probes(
        tokenizer, cfg, max_positions=getattr(config, "max_position_embeddings", None)
    )


def answer_found(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when one of `answers` occurs in `prediction` as a whole word (case-insensitive).

    Whole word: "12" is found in "It is 12." but not in "120"; "cold" not in "colder".
    """
    text = normalise_text(prediction).casefold()
    for answer in answers:
        wanted = re.escape(normalise_text(answer).casefold())
        if re.search(rf"(?<!\w){wanted}(?!\w)", text):
            return 1.0
    return 0.0


def general_score(model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig) -> float:
    """Share of the instruction probe answered correctly, by batched greedy generation."""
    if not probes.prompts:
        return 0.0
    replies = generate(
        model,
        tokenizer,
        probes.prompts,
        max_new_tokens=cfg.forgetting_max_new_tokens,
        batch_size=cfg.batch_size,
    )
    scores = [answer_found(r, a) for r, a in zip(replies, probes.answers, strict=True)]
    return sum(scores) / len(scores)


def is_peft(model: Any) -> bool:
    """A peft model (its base is reachable with `disable_adapter`); peft is never imported here."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def snapshot_base(model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig) -> BaseSnapshot:
    """Record the base's log-probabilities and probe score; call it before training starts."""
    return BaseSnapshot(
        logprobs=[lp.cpu() for lp in _logprob_batches(model, probes)],
        general_score=general_score(model, tokenizer, probes, cfg),
    )


def measure_forgetting(
    model: Any,
    tokenizer: Any,
    probes: Probes,
    cfg: EvalConfig,
    base: BaseSnapshot | None = None,
) -> Forgetting:
    """Compare the trained `model` with its base: from `base` if given, else (peft) by switching
    the adapter off. A model that is neither peft nor comes with a snapshot has no base to
    compare with (ValueError)."""
    if base is None and not is_peft(model):
        raise ValueError("a model that is not a peft model needs the snapshot_base taken before")
    sums = _Sums()
    tuned_batches = _logprob_batches(model, probes)
    for index, (batch, tuned) in enumerate(zip(_batches(probes), tuned_batches, strict=True)):
        if base is not None:
            base_lp = base.logprobs[index].to(tuned.device)
        else:
            with model.disable_adapter():
                base_lp = _logprobs(model, batch)
        sums.add(base_lp, tuned, _targets(batch, tuned.device))
    score = general_score(model, tokenizer, probes, cfg)
    if base is not None:
        base_score = base.general_score
    else:
        with model.disable_adapter():
            base_score = general_score(model, tokenizer, probes, cfg)
    return sums.result(base_score, score, probes)


def measure_untouched(model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig) -> Forgetting:
    """The base model measured against itself (the study's baseline): each probe is run once;
    KL and both deltas are 0 by definition, and the perplexity and score are the base's."""
    sums = _Sums()
    for batch, lp in zip(_batches(probes), _logprob_batches(model, probes), strict=True):
        sums.add(lp, lp, _targets(batch, lp.device))
    score = general_score(model, tokenizer, probes, cfg)
    return sums.result(score, score, probes)


# --- the text probe ------------------------------------------------------------------------------


def _batches(probes: Probes) -> Iterator[list[list[int]]]:
    for start in range(0, len(probes.chunks), FORWARD_BATCH):
        yield probes.chunks[start : start + FORWARD_BATCH]


def _logprob_batches(model: Any, probes: Probes) -> Iterator[Any]:
    for batch in _batches(probes):
        yield _logprobs(model, batch)


def _logprobs(model: Any, batch: list[list[int]]) -> Any:
    """Log-softmax of the next-token logits at every position but the last (float32)."""
    import torch

    device = next(model.parameters()).device
    ids = torch.tensor(batch, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits
    finally:
        model.train(was_training)
    # Prompt tuning prepends virtual tokens: keep the positions of the real ones.
    logits = logits[:, -ids.shape[1] : -1, :]
    return torch.log_softmax(logits.float(), dim=-1)


def _targets(batch: list[list[int]], device: Any) -> Any:
    import torch

    return torch.tensor([chunk[1:] for chunk in batch], device=device)


@dataclass
class _Sums:
    """Running sums over the predicted tokens of the text probe."""

    base_nll: float = 0.0
    tuned_nll: float = 0.0
    kl: float = 0.0
    tokens: int = 0

    def add(self, base: Any, tuned: Any, targets: Any) -> None:
        index = targets.unsqueeze(-1)
        self.base_nll -= float(base.gather(-1, index).double().sum())
        self.tuned_nll -= float(tuned.gather(-1, index).double().sum())
        self.kl += float((base.exp() * (base - tuned)).sum(-1).double().sum())
        self.tokens += targets.numel()

    def result(self, base_score: float, score: float, probes: Probes) -> Forgetting:
        n = max(1, self.tokens)
        return Forgetting(
            base_ppl=math.exp(self.base_nll / n),
            tuned_ppl=math.exp(self.tuned_nll / n),
            kl=max(0.0, self.kl / n),  # KL >= 0; a float sum can land a hair below
            base_general_score=base_score,
            general_score=score,
            text_tokens=probes.text_tokens,
            prompts=len(probes.prompts),
        )

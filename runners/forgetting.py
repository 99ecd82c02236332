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

The base's side is a `ProbeView`, small enough to store, so that a study computes it once (its
baseline run; `runners.probe_cache` keeps it per base model and probe version) and a trial
computes only its own side: one forward pass over the text probe, one batched generation of
the instruction probe. The view holds, at every predicted position of the text probe, the
base's log-probability of the actual next token (the base's perplexity, exactly) and its
`TOP_K` most likely next tokens with their log-probabilities and the log of the probability
left to the rest of the vocabulary; and the base's replies to the instruction probe with their
scores.

KL(base || tuned) is computed over both distributions coarsened to K + 1 outcomes: the base's
top K tokens and one bucket for every other token. By the data-processing inequality that is a
lower bound of the full KL; what it misses is probability moved around inside the rest.
Measured (2026-11-24, 2-core AMD EPYC CPU, torch 2.13 fp32) on SmolLM2-135M-Instruct with the
default text probe (2040 predicted positions, a 49,152-token vocabulary) against a LoRA (r=8,
alpha=16) whose B matrices were drawn from N(0, std^2) with seed 0, forward passes only:

    top-K KL as a share of the full KL      K=16    32     64     128    256    512    1024
    all linear, std 0.02 (full 0.0075)      64.6%  73.3%  80.5%  86.4%  90.9%  94.3%  96.8%
    q/v only,   std 0.02 (full 0.0040)      62.9%  71.9%  79.6%  85.7%  90.4%  94.0%  96.6%
    all linear, std 0.05 (full 0.0476)      65.1%  73.7%  80.8%  86.6%  91.1%  94.4%  96.8%
    the base's top-K probability, mean      0.758  0.820  0.871  0.910  0.940  0.963  0.979
                                  lowest    0.145  0.204  0.285  0.391  0.506  0.625  0.743

SmolLM2 spreads its probability thinly (at K=128 a tenth of it is still in the rest), so the
bound is a steady share of the full KL rather than equal to it; steady across small and large
moves and across the layers adapted, so trials rank as by the full KL. K = 256 keeps over 90%
in a 4 MB view (int32 ids and float32 log-probabilities); each doubling past it adds ~3 points
for twice the file. The reported KL is this bound, not the full KL of versions before it.

Where the base comes from when the cache does not have it: a peft model is its base with the
adapter switched off (`disable_adapter()`); a fully fine-tuned model has no base left after
training, so `base_view` is taken before training starts (its K tokens per position replace
the 0.4 GB of full log-probabilities, 2048 tokens x 49k vocabulary, that were held before).

An untouched model gives exactly 0: both sides run the same computation on the same inputs
(adding a zero LoRA delta is exact), the tuned side is read at the base's own top K tokens, so
KL and the perplexity delta are 0.0, not ~1e-7.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
TOP_K = 256
"""The base's most likely next tokens kept per position (the measurement above)."""


@dataclass(frozen=True)
class Probes:
    """The probes as one model sees them: token chunks of the text, chat prompts, answers."""

    chunks: list[list[int]]
    prompts: list[Messages]
    answers: list[tuple[str, ...]]

    @property
    def text_tokens(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def positions(self) -> int:
        """Predicted positions of the text probe: every token of a chunk but its first."""
        return sum(len(chunk) - 1 for chunk in self.chunks)


@dataclass(frozen=True)
class ProbeView:
    """The base model's answers to the probes, small enough to cache (`runners.probe_cache`).

    The tensors live on the CPU, one row per predicted position of the text probe (the chunks
    one after the other).
    """

    target_logprobs: Any
    """[positions] float32: log-probability of the actual next token."""
    top_ids: Any
    """[positions, K] int64: the K most likely next tokens, most likely first."""
    top_logprobs: Any
    """[positions, K] float32: their log-probabilities."""
    rest_logprobs: Any
    """[positions] float32: log of the probability of all other tokens (-inf if there are none)."""
    replies: tuple[str, ...]
    """The greedy reply to each prompt of the instruction probe."""
    scores: tuple[float, ...]
    """`answer_found` of each reply."""

    @property
    def positions(self) -> int:
        return int(self.target_logprobs.shape[0])

    @property
    def k(self) -> int:
        return int(self.top_ids.shape[1])

    @property
    def general_score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


@dataclass
class Forgetting:
    """The base against the trained model on both probes."""

    base_ppl: float
    tuned_ppl: float
    kl: float
    """Mean over predicted tokens of KL(base || tuned) over the base's top K + rest, in nats."""
    base_general_score: float
    general_score: float
    text_tokens: int
    prompts: int
    replies: tuple[str, ...] = ()
    """The measured model's replies to the instruction probe (the base's when untouched)."""
    scores: tuple[float, ...] = ()

    @property
    def ppl_delta(self) -> float:
        return self.tuned_ppl - self.base_ppl

    @property
    def general_score_delta(self) -> float:
        return self.general_score - self.base_general_score


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


def answer_probes(
    model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The replies to the instruction probe, in one batched greedy generation like the eval's,
    and their scores."""
    if not probes.prompts:
        return (), ()
    replies = generate(
        model,
        tokenizer,
        probes.prompts,
        max_new_tokens=cfg.forgetting_max_new_tokens,
        batch_size=cfg.batch_size,
    )
    scores = [answer_found(r, a) for r, a in zip(replies, probes.answers, strict=True)]
    return tuple(replies), tuple(scores)


def is_peft(model: Any) -> bool:
    """A peft model (its base is reachable with `disable_adapter`); peft is never imported here."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def probe_view(
    model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig, *, k: int = TOP_K
) -> ProbeView:
    """`model`'s own view of the probes: one forward pass over the text, one generation."""
    import torch

    parts = []
    for batch in _batches(probes):
        logprobs, targets = _flat(_logprobs(model, batch), batch)
        top, ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
        side = _side(logprobs, targets, ids)
        parts.append((side.target.cpu(), ids.cpu(), top.cpu(), side.rest.cpu()))
    target, ids, top, rest = (torch.cat(column) for column in zip(*parts, strict=True))
    replies, scores = answer_probes(model, tokenizer, probes, cfg)
    return ProbeView(target, ids, top, rest, replies, scores)


def base_view(
    model: Any, tokenizer: Any, probes: Probes, cfg: EvalConfig, *, k: int = TOP_K
) -> ProbeView:
    """The base's view: a peft model's with its adapter switched off; any other model's as it
    is now, so take it before training changes the weights."""
    if is_peft(model):
        with model.disable_adapter():
            return probe_view(model, tokenizer, probes, cfg, k=k)
    return probe_view(model, tokenizer, probes, cfg, k=k)


def measure_forgetting(
    model: Any,
    tokenizer: Any,
    probes: Probes,
    cfg: EvalConfig,
    base: ProbeView | None = None,
) -> Forgetting:
    """Compare the trained `model` with its base: the base's view `base` (cached, or taken
    before training), else (peft) the adapter switched off now. A model that is neither peft
    nor comes with the base's view has no base to compare with (ValueError)."""
    import torch

    if base is None:
        if not is_peft(model):
            raise ValueError("a model that is not a peft model needs its base_view taken before")
        base = base_view(model, tokenizer, probes, cfg)
    if base.positions != probes.positions:
        raise ValueError(
            f"the base's view covers {base.positions} positions of the text probe, "
            f"but the probes have {probes.positions}"
        )
    tuned_targets, kl, offset = [], 0.0, 0
    for batch in _batches(probes):
        logprobs, targets = _flat(_logprobs(model, batch), batch)
        rows = slice(offset, offset + targets.shape[0])
        offset = rows.stop
        tuned = _side(logprobs, targets, base.top_ids[rows].to(logprobs.device))
        kl += float(_coarse_kl(_base_side(base, rows), tuned).sum())
        tuned_targets.append(tuned.target.cpu())
    replies, scores = answer_probes(model, tokenizer, probes, cfg)
    n = max(1, probes.positions)
    return Forgetting(
        base_ppl=_ppl(base.target_logprobs, n),
        tuned_ppl=_ppl(torch.cat(tuned_targets), n),
        kl=max(0.0, kl / n),  # KL >= 0; a float sum can land a hair below
        base_general_score=base.general_score,
        general_score=sum(scores) / len(scores) if scores else 0.0,
        text_tokens=probes.text_tokens,
        prompts=len(probes.prompts),
        replies=replies,
        scores=scores,
    )


def measure_untouched(base: ProbeView, probes: Probes) -> Forgetting:
    """The base measured against itself (the study's baseline): its own view, no second pass;
    KL and both deltas are 0 by definition, the perplexity and score are the base's."""
    ppl = _ppl(base.target_logprobs, max(1, probes.positions))
    return Forgetting(
        base_ppl=ppl,
        tuned_ppl=ppl,
        kl=0.0,
        base_general_score=base.general_score,
        general_score=base.general_score,
        text_tokens=probes.text_tokens,
        prompts=len(probes.prompts),
        replies=base.replies,
        scores=base.scores,
    )


# --- the text probe ------------------------------------------------------------------------------


class _Side(NamedTuple):
    """One model's side at some positions, read at the base's top K tokens."""

    target: Any
    """[n] log-probability of the actual next token."""
    top: Any
    """[n, K] log-probabilities of the base's top K tokens."""
    rest: Any
    """[n] log of the probability of every other token."""


def _coarse_kl(base: _Side, tuned: _Side) -> Any:
    """Per position KL(base || tuned) over the base's top K tokens and one bucket for the rest
    (float64). Exactly 0 where both sides hold the same numbers."""
    import torch

    p_top, p_rest = base.top.double().exp(), base.rest.double().exp()
    kl = (p_top * (base.top.double() - tuned.top.double().to(p_top.device))).sum(-1)
    rest = p_rest * (base.rest.double() - tuned.rest.double().to(p_rest.device))
    return kl + torch.where(p_rest > 0, rest, 0.0)  # no rest when K covers the vocabulary


def _base_side(view: ProbeView, rows: slice) -> _Side:
    return _Side(view.target_logprobs[rows], view.top_logprobs[rows], view.rest_logprobs[rows])


def _side(logprobs: Any, targets: Any, ids: Any) -> _Side:
    """A model's log-probabilities [n, vocab] read at the targets and at the tokens `ids`."""
    rest = logprobs.scatter(-1, ids, float("-inf")).logsumexp(-1)
    return _Side(logprobs.gather(-1, targets[:, None])[:, 0], logprobs.gather(-1, ids), rest)


def _ppl(target_logprobs: Any, n: int) -> float:
    return math.exp(-float(target_logprobs.double().sum()) / n)


def _batches(probes: Probes) -> Iterator[list[list[int]]]:
    for start in range(0, len(probes.chunks), FORWARD_BATCH):
        yield probes.chunks[start : start + FORWARD_BATCH]


def _flat(logprobs: Any, batch: list[list[int]]) -> tuple[Any, Any]:
    """[chunks, positions, vocab] -> [chunks x positions, vocab] and the next tokens [n]."""
    import torch

    targets = torch.tensor([chunk[1:] for chunk in batch], device=logprobs.device)
    return logprobs.reshape(-1, logprobs.shape[-1]), targets.reshape(-1)


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

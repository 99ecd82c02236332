"""`--priority cost` and `--priority speed` weigh the estimates, not only the rule table.

The rule table's priority rows are small nudges (-1, -2) that a +4 "everything fits" row can
outweigh, so on 8 x 80 GB with 10k pairs `--priority cost` used to pick full SFT at 1.5x LoRA's
GPU hours. Here a method that costs (or takes) at least `RATIO` times another that fits and is
of comparable expected quality is ranked below it, and the reason names both figures.

Comparable expected quality, from the evidence:
* full fine-tuning / full SFT and the LoRA family: comparable while LoRA's trainable parameters
  cover the completion tokens (LoRA Without Regret) and the data is below `LARGE_DATA`
  examples (Biderman et al. 2024: at ~100k pairs full fine-tuning pulls ahead);
* LoRA variants among themselves (DoRA, AdaLoRA, QLoRA, LoRA): once the learning rate is tuned
  they land within 1-2% of plain LoRA (Lee et al. 2026); QLoRA matches 16-bit LoRA (QLoRA).
* never a method that retrieves (`rag_lora`) and one that does not: retrieval supplies facts
  that no adapter holds (DOMAIN.md rule 1), so the passages' longer prompts buy something a
  cheaper LoRA cannot, and the cost alone does not decide between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .estimate import ADAPTER_METHODS, FULL_METHODS
from .retrieval import RETRIEVERS
from .rules import LARGE_DATA

RATIO = 1.5
"""A method costing at least this multiple of a comparable one is demoted (~: 1% tolerance, the
estimates are rounded to cents)."""
TOLERANCE = 0.99
MARGIN = 0.5
"""How far below the cheaper method's score a demoted method lands."""
SOURCE = (
    "LoRA Without Regret (LoRA matches full FT while params >= tokens); Biderman et al. 2024 "
    "(full FT ahead from ~100k pairs); Lee et al. 2026 (LoRA variants within 1-2%)"
)
MEASURE = {"cost": ("cost_usd", "costs", "~${:,.2f}"), "speed": ("hours", "takes", "~{:.2f} h")}
"""priority -> the Candidate field it weighs, its verb and its format."""


class Ranked(Protocol):
    """What the weighing reads and changes on a ranking row (`recommend.Candidate`)."""

    method: str
    score: float
    fits: bool
    cost_usd: float | None
    hours: float | None
    reasons: list[str]


def comparable(expensive: str, cheap: str, *, examples: int, lora_covers_tokens: bool) -> bool:
    """Whether `cheap` is expected to reach about the quality of `expensive` (module doc)."""
    if (expensive in RETRIEVERS) != (cheap in RETRIEVERS):
        return False
    if expensive in FULL_METHODS and cheap in ADAPTER_METHODS:
        return lora_covers_tokens and examples < LARGE_DATA
    return expensive in ADAPTER_METHODS and cheap in ADAPTER_METHODS


def weigh(
    ranking: Iterable[Ranked],
    *,
    priority: str,
    examples: int,
    lora_covers_tokens: bool,
) -> list[tuple[str, str]]:
    """Demote each fitting method that costs >= RATIO x a comparable fitting one whose score is
    not above it; return (method, reason) per demotion (the reason is also appended to the
    demoted row)."""
    if priority not in MEASURE:
        return []
    key, verb, fmt = MEASURE[priority]
    rows = [c for c in ranking if c.fits and getattr(c, key)]
    said = []
    for row in sorted(rows, key=lambda c: -getattr(c, key)):
        peers = [
            c
            for c in rows
            if c is not row
            and comparable(
                row.method, c.method, examples=examples, lora_covers_tokens=lora_covers_tokens
            )
            and getattr(row, key) >= RATIO * TOLERANCE * getattr(c, key)
        ]
        if not peers:
            continue
        cheap = max(peers, key=lambda c: (c.score, -getattr(c, key)))
        if row.score < cheap.score:
            continue
        ratio = getattr(row, key) / getattr(cheap, key)
        reason = (
            f"--priority {priority}: {row.method} {verb} {fmt.format(getattr(row, key))}, "
            f"{ratio:.1f}x {cheap.method}'s {fmt.format(getattr(cheap, key))} "
            f"for comparable expected quality at {examples:,} examples; ranked below "
            f"{cheap.method}"
        )
        row.score = round(cheap.score - MARGIN, 2)
        row.reasons.append(reason)
        said.append((row.method, reason))
    return said


__all__ = ["MEASURE", "RATIO", "SOURCE", "comparable", "weigh"]

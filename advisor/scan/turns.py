"""The shape of the conversations: turns per conversation, turns per role, system prompts.

A chat data set of one-turn rows teaches a model to answer a first question; one of long
conversations teaches it to follow up, and costs more tokens per row. System prompts decide what
the model is told at inference: rows with and without one train two behaviours. Raw-text
documents have no turns; they are counted, and their lengths are the `lengths` check's sequences.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.scan.core import TEXT_ROLE, Row, ScanContext
from advisor.scan.lengths import Distribution, distribution

ROLES = ("system", "user", "assistant")


@dataclass
class TurnResult:
    conversations: int = 0
    documents: int = 0
    turns: Distribution = field(default_factory=Distribution)
    """Turns per conversation (system turns included)."""
    roles: dict[str, int] = field(default_factory=dict)
    """Role -> turns of that role over every conversation."""
    with_system: int = 0
    """Conversations with a system turn of their own."""
    multi_turn: int = 0
    """Conversations with more than one assistant turn."""

    def measures(self) -> dict[str, int]:
        return {}  # a description of the data, not a problem to fail a pipeline on


def check(rows: Sequence[Row], context: ScanContext) -> TurnResult:
    chats = [row for row in rows if row.turns and row.turns[0].role != TEXT_ROLE]
    roles = Counter(turn.role for row in chats for turn in row.turns)
    return TurnResult(
        conversations=len(chats),
        documents=sum(1 for row in rows if row.turns and row.turns[0].role == TEXT_ROLE),
        turns=distribution([len(row.turns) for row in chats]),
        roles={role: roles[role] for role in ROLES if roles[role]},
        with_system=sum(1 for row in chats if row.texts("system")),
        multi_turn=sum(1 for row in chats if len(row.texts("assistant")) > 1),
    )

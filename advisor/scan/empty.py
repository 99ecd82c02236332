"""Rows training would refuse: an empty or whitespace-only turn, a missing field, a conversation
without an assistant turn, content that is not text.

An empty answer trains the model to stop at once; an empty prompt teaches an answer to nothing.
The layouts (`runners.layouts`) refuse such rows, and training stops at the first; the scan reads
each row on its own (`core.read_rows`) and lists them all here, with the layouts' reason, so one
scan finds every row to fix. (The check keeps its name, `empty`, for `--fail-on empty` and the
`scan.empty` metric.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.scan.core import Row, ScanContext


@dataclass(frozen=True)
class RefusedRow:
    file: str
    row: int
    problem: str
    """The layouts' reason, e.g. `response is empty`, `messages turn 3 (user) content is empty`."""


@dataclass
class EmptyResult:
    findings: list[RefusedRow] = field(default_factory=list)
    rows_with_empty: int = 0
    """Rows training would refuse."""

    def measures(self) -> dict[str, int]:
        return {"empty": self.rows_with_empty}


def check(rows: Sequence[Row], context: ScanContext) -> EmptyResult:
    findings = [RefusedRow(row.file, row.row, row.refused) for row in rows if row.refused]
    return EmptyResult(findings=findings, rows_with_empty=len(findings))

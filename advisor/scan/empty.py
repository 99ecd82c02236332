"""Empty, whitespace-only or missing prompt and response fields.

An empty response trains the model to stop at once; an empty prompt teaches an answer to nothing.
The loader accepts both (and a CSV cell left blank reads as an empty string), so they are caught
here, before they cost a training run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from advisor.scan.core import FIELDS, Row, ScanContext

PROBLEMS = ("missing", "empty", "whitespace")


@dataclass(frozen=True)
class EmptyField:
    file: str
    row: int
    field: str
    problem: str
    """missing (no such key, or null), empty (""), whitespace (only spaces, tabs, newlines)."""


@dataclass
class EmptyResult:
    findings: list[EmptyField] = field(default_factory=list)
    by_problem: dict[str, int] = field(default_factory=dict)
    rows_with_empty: int = 0

    def measures(self) -> dict[str, int]:
        return {"empty": self.rows_with_empty}


def problem_of(text: str | None) -> str | None:
    if text is None:
        return "missing"
    if text == "":
        return "empty"
    if not text.strip():
        return "whitespace"
    return None


def check(rows: Sequence[Row], context: ScanContext) -> EmptyResult:
    result = EmptyResult()
    flagged: set[tuple[str, int]] = set()
    for row in rows:
        for name in FIELDS:
            problem = problem_of(row.text(name))
            if problem is not None:
                result.findings.append(EmptyField(row.file, row.row, name, problem))
                result.by_problem[problem] = result.by_problem.get(problem, 0) + 1
                flagged.add((row.file, row.row))
    result.rows_with_empty = len(flagged)
    return result

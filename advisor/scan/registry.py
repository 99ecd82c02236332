"""The checks a scan runs: one entry per check, name -> function.

A check takes the rows and the scan context and returns its result dataclass; each result has
`measures()`, the row counts that `--fail-on` rules test. Adding a check is one module and one
entry here; the scanner, the reports and `--json` pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from advisor.scan import complexity, duplicates, empty, language, lengths, pii, turns
from advisor.scan.core import Row, ScanContext


class CheckResult(Protocol):
    def measures(self) -> dict[str, int]: ...


Check = Callable[[Sequence[Row], ScanContext], Any]

CHECKS: dict[str, Check] = {
    "turns": turns.check,
    "lengths": lengths.check,
    "language": language.check,
    "complexity": complexity.check,
    "duplicates": duplicates.check,
    "pii": pii.check,
    "empty": empty.check,
}

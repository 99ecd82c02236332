"""How a running trial talks to whoever launched it, without knowing who that is.

The training loop calls `reporter.report_eval(step, eval_loss)` at every evaluation and stops
early (the trial is pruned) when it answers True; `reporter.log(step, metrics)` streams training
metrics. In-process callers pass a `CallbackReporter`; a trial in a child process uses
`PipeReporter`, a line protocol over stdout/stdin that the orchestrator answers with Optuna's
pruner. The runner never imports Optuna: pruning is a yes/no answer over a pipe.

Protocol (one JSON object per line, prefixed so stray prints cannot be mistaken for messages):
    child  -> parent  `@@advisor {"event": "eval", "step": 10, "eval_loss": 1.23}`
    parent -> child   `prune` or `continue`
    child  -> parent  `@@advisor {"event": "log", "step": 5, "metrics": {"loss": 2.1}}` (no reply)
    child  -> parent  `@@advisor {"event": "phase", "phase": "train"}` (no reply)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any, Protocol

PREFIX = "@@advisor "


class Reporter(Protocol):
    """What the training loop reports to; see the module docstring."""

    def report_eval(self, step: int, eval_loss: float) -> bool:
        """Record an intermediate eval loss. Returns True when the trial should stop (pruned)."""
        ...

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Stream training metrics (loss, learning rate, ...)."""
        ...

    def phase(self, phase: str) -> None:
        """Announce a phase: load, train, evaluate, save."""
        ...


class NullReporter:
    """Reports nowhere and never prunes."""

    def report_eval(self, step: int, eval_loss: float) -> bool:
        return False

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def phase(self, phase: str) -> None:
        pass


class CallbackReporter:
    """In-process reporter: `should_prune(step, eval_loss)` decides, `on_log` observes."""

    def __init__(
        self,
        should_prune: Callable[[int, float], bool] | None = None,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self._should_prune = should_prune
        self._on_log = on_log
        self.evals: list[tuple[int, float]] = []
        self.phases: list[str] = []

    def report_eval(self, step: int, eval_loss: float) -> bool:
        self.evals.append((step, eval_loss))
        return bool(self._should_prune and self._should_prune(step, eval_loss))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self._on_log:
            self._on_log(step, metrics)

    def phase(self, phase: str) -> None:
        self.phases.append(phase)


class PipeReporter:
    """Child-process side of the line protocol."""

    def __init__(self, out: IO[str] | None = None, inp: IO[str] | None = None) -> None:
        self._out = out or sys.stdout
        self._in = inp or sys.stdin

    def _send(self, message: dict[str, Any]) -> None:
        self._out.write(PREFIX + json.dumps(message) + "\n")
        self._out.flush()

    def report_eval(self, step: int, eval_loss: float) -> bool:
        self._send({"event": "eval", "step": step, "eval_loss": eval_loss})
        answer = self._in.readline().strip()
        return answer == "prune"

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._send({"event": "log", "step": step, "metrics": metrics})

    def phase(self, phase: str) -> None:
        self._send({"event": "phase", "phase": phase})


def parse_message(line: str) -> dict[str, Any] | None:
    """Parent side: the message carried by `line`, or None for ordinary output."""
    if not line.startswith(PREFIX):
        return None
    try:
        return json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None

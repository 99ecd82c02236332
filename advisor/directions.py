"""Which of several scored things is best, given the direction the study optimises.

One answer for every place that picks a best trial: the tuner's summary and live table, the
report, the service and the recorded study. A direction is Optuna's `maximize`/`minimize`, as a
string or as Optuna's `StudyDirection` (whose name is `MAXIMIZE`/`MINIMIZE`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def maximises(direction: Any) -> bool:
    """Whether `direction` (a string or Optuna's StudyDirection) asks for larger values."""
    return str(getattr(direction, "name", direction)).lower() == "maximize"


def gain(score: float, baseline: float, direction: Any) -> float:
    """How much better `score` is than the untuned `baseline`, in the metric's own units:
    positive when better, whichever way the study optimises (a perplexity that falls from 49.7
    to 3.2 gains 46.5; score - baseline would call it a loss)."""
    return score - baseline if maximises(direction) else baseline - score


def best(items: Iterable[T], key: Callable[[T], float | None], direction: Any) -> T | None:
    """The item whose `key` is best in `direction`; items whose key is None are left out, and
    None comes back when no item has a key. Ties go to the first item."""
    scored = [(value, item) for item in items if (value := key(item)) is not None]
    if not scored:
        return None
    pick = max if maximises(direction) else min
    return pick(scored, key=lambda pair: pair[0])[1]

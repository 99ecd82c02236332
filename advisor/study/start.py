"""`optuna.start`: a warm-start point must lie in the study's search space.

Optuna runs an enqueued value outside the space with only a warning, after the study has been
recorded; so the point is checked with the study file's other cross-section rules, and
`validate` names a bad value at its line before anything is stored.
"""

from __future__ import annotations

from typing import Any

from .presets import encode_choice
from .space import PARAM_NAMES, IntRange, is_searched, shown

Problem = tuple[tuple[Any, ...], str, str]
"""(location, message, fix), as `spec.cross_field_problems` collects them. The spec is typed
`Any` here: `spec` imports this module, and the house has no import circles."""


def start_problems(spec: Any) -> list[Problem]:
    """optuna.start lies in the search space: each name a searched parameter, each value one of
    its choices or inside its range. Optuna would run an enqueued value outside the space with
    a warning, after the study was recorded; refused here, `validate` names it first."""
    start = spec.optuna.start or {}
    if start and spec.optuna.sampler == "grid":
        fix = "remove optuna.start (the grid tries every point), or use sampler: tpe"
        return [(("optuna", "start"), "the grid sampler needs no starting point", fix)]
    searched = {n: v for n in PARAM_NAMES if is_searched(v := _searched_value(spec, n))}
    problems: list[Problem] = []
    for name, value in start.items():
        space = searched.get(name)
        if space is None:
            what = "a fixed parameter" if name in PARAM_NAMES else "not a search parameter"
            message = f"{name!r} is {what}: a starting point gives searched values only"
            fix = f"remove it, or use a searched one: {', '.join(searched) or 'none'}"
        elif _inside(space, value):
            continue
        else:
            message = f"{shown(value)} is outside search.{name} ({_space_text(space)})"
            fix = f"give optuna.start.{name} a value in search.{name}, or widen search.{name}"
        problems.append((("optuna", "start", name), message, fix))
    return problems


def _searched_value(spec: Any, name: str) -> Any:
    if name == "target_modules":
        return spec.search.target_choices()
    value = getattr(spec.search, name)
    if name == "replay_fraction" and value is None and spec.data and spec.data.replay:
        return spec.data.replay.fraction
    return value


def _inside(space: Any, value: Any) -> bool:
    if isinstance(space, list):  # choices: target_modules compare as Optuna stores them
        encode = encode_choice if isinstance(space[0], (str, list)) else (lambda v: v)
        try:
            return encode(value) in [encode(c) for c in space]
        except (TypeError, ValueError):
            return False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not space.low <= value <= space.high:
        return False
    if isinstance(space, IntRange):
        return isinstance(value, int) and (value - space.low) % space.step == 0
    return True


def _space_text(space: Any) -> str:
    if isinstance(space, list):
        return f"choices {shown(space)}"
    step = f", step {space.step}" if getattr(space, "step", 1) != 1 else ""
    return f"{space.low} .. {space.high}{step}"

"""Warm-start points and the study's search space.

`optuna.start`, the study file's own point (or each of its list of points), must lie in the
space: Optuna runs an enqueued value outside it with only a warning, after the study has been
recorded; so the point is checked with the study file's other cross-section rules, and
`validate` names a bad value at its line before anything is stored.

Points from elsewhere are fitted instead of refused, since the user did not write them: the
recommender's point keeps only the values that lie inside the space it was written with
(`inside`), and a past study's best point is moved into this study's space (`fitted`).

In a study that searches the method (`search.method`), a point names its `method` and only that
method's parameters (under their Optuna names: `full.learning_rate` for a method with its own
rate): `r` in a `rag` point would be ignored by the trial, so it is refused like a value outside
the space. Past points are fitted to the space of their own method (`space_of`).

The grid sampler takes no warm start: the grid tries every point of its space anyway, and
Optuna's GridSampler does not count an enqueued trial as one of its grid points, so the point
would be trained twice. `warm_start: true` with `sampler: grid` is refused with that reason.
"""

from __future__ import annotations

from typing import Any

from .method_search import method_view, optuna_name, searched_methods, searches_method
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
    if spec.optuna.warm_start and spec.optuna.sampler == "grid":
        where = ("optuna", "start") if start else ("optuna", "warm_start")
        message = (
            "the grid sampler needs no starting point: it tries every point of the space, and "
            "an enqueued one would be trained twice"
        )
        fix = "remove optuna.start and optuna.warm_start (the grid tries every point), or use "
        return [(where, message, fix + "sampler: tpe")]
    if isinstance(start, list):  # several points: each is checked, located by its index
        problems: list[Problem] = []
        for index, point in enumerate(start):
            for where, message, fix in _one_point_problems(spec, point):
                at = (*where[:2], index, *where[2:])
                problems.append((at, f"point {index + 1}: {message}", fix))
        return problems
    return _one_point_problems(spec, start)


def _one_point_problems(spec: Any, start: dict[str, Any]) -> list[Problem]:
    if searches_method(spec) and start:
        return _method_start_problems(spec, start)
    return _point_problems(spec, searched_space(spec.search, _replay_fraction(spec)), start)


def _method_start_problems(spec: Any, start: dict[str, Any]) -> list[Problem]:
    """A point of a study that searches the method: its method, then that method's values."""
    methods = searched_methods(spec)
    method = start.get("method")
    if method not in methods:
        said = "names no method" if method is None else f"names method {shown(method)}"
        return [
            (
                ("optuna", "start", "method") if method is not None else ("optuna", "start"),
                f"the starting point {said}, but the study searches the method: a point is "
                f"one method's ({', '.join(methods)})",
                f"set optuna.start.method to one of: {', '.join(methods)}",
            )
        ]
    own = space_of(spec, method)
    problems: list[Problem] = []
    for name in start:
        if name not in own and name in space_of(spec):
            takes = ", ".join(n for n in own if n != "method") or "none"
            problems.append(
                (
                    ("optuna", "start", name),
                    f"{name!r} is not a parameter of method {method!r}: its trials would ignore it",
                    f"remove optuna.start.{name}, or use {method}'s parameters: {takes}",
                )
            )
    rest = {n: v for n, v in start.items() if n in own or n not in space_of(spec)}
    return problems + _point_problems(spec, own, rest)


def _point_problems(spec: Any, searched: dict[str, Any], start: dict[str, Any]) -> list[Problem]:
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


def space_of(spec: Any, method: str | None = None) -> dict[str, Any]:
    """The searched parameters of a study -> their space, under Optuna's names. Of a study that
    searches the method: `method` with its choices, then `method`'s own parameters, or with
    `method` None every listed method's."""
    if not searches_method(spec):
        return searched_space(spec.search, _replay_fraction(spec))
    methods = searched_methods(spec)
    space: dict[str, Any] = {"method": list(methods)}
    for each in methods if method is None else (method,):
        view = method_view(spec, each)
        for name, value in searched_space(view.search, _replay_fraction(view)).items():
            space[optuna_name(spec, each, name)] = value
    return space


def searched_space(search: Any, replay_fraction: float | None = None) -> dict[str, Any]:
    """The searched parameters of a `SearchSpec` -> their space (a range or a list of choices);
    `replay_fraction` is data.replay's, which search.replay_fraction replaces when given."""
    space = {}
    for name in PARAM_NAMES:
        value = search.target_choices() if name == "target_modules" else getattr(search, name)
        if name == "replay_fraction" and value is None:
            value = replay_fraction
        if is_searched(value):
            space[name] = value
    return space


def inside(space: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The values of `point` that lie in `space` (searched, and a choice or inside the range);
    what the recommender's point keeps in the study written around it."""
    return {n: v for n, v in point.items() if n in space and _inside(space[n], v)}


def fitted(space: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """`point` moved into `space`, for a past study's best point: a number outside a range is
    clipped to its nearer end (and onto an int range's step), since the evidence points that
    way and the edge is the nearest point it allows; a value that is not one of the choices,
    and a parameter this study does not search, are dropped and left to the sampler (a choice
    list has no "nearest" module set, and a fixed parameter is not Optuna's to set)."""
    out: dict[str, Any] = {}
    for name, value in point.items():
        space_of = space.get(name)
        if space_of is None:
            continue
        if _inside(space_of, value):
            out[name] = value
        elif not isinstance(space_of, list) and _number(value):
            out[name] = _clip(space_of, value)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(space: Any, value: float) -> int | float:
    clipped = min(max(value, space.low), space.high)
    if isinstance(space, IntRange):
        top = space.low + (space.high - space.low) // space.step * space.step  # last on-step
        return min(space.low + round((clipped - space.low) / space.step) * space.step, top)
    return clipped


def _replay_fraction(spec: Any) -> float | None:
    return spec.data.replay.fraction if spec.data and spec.data.replay else None


def _inside(space: Any, value: Any) -> bool:
    if isinstance(space, list):  # choices: target_modules compare as Optuna stores them
        encode = encode_choice if isinstance(space[0], (str, list)) else (lambda v: v)
        # 1 == True in Python: a number is no switch's value, and a switch no number's
        alike = [c for c in space if isinstance(c, bool) == isinstance(value, bool)]
        try:
            return encode(value) in [encode(c) for c in alike]
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

"""The method as a search dimension: `search.method: [rag, lora, full]`.

Each trial samples a method, then that method's own parameters: a conditional space. Which
parameters a method takes is its registry entry (`Method.search`, plus the learning rate of
every method that trains), so the condition of each parameter is derived, never written: `r` is
sampled in the LoRA family's trials, `top_k` in the retrieval methods', `learning_rate` in the
trials of the methods that train.

A study of one method keeps its shape: `search.method` is absent, the top-level `method` names
it, and every function here answers as if the method were one more fixed value (its spec dumps
and hashes exactly as before the key existed). With `search.method`, the top-level `method` is
the first listed method (the untuned baseline's config is built with it; the baseline applies
no method) and a top-level method that is not listed is refused.

The learning rate is the one parameter shared across families whose good values are not: full
fine-tuning learns at ~1e-5, the LoRA family at ~1e-4 to 1e-3 (EVIDENCE.md). A shared
`search.learning_rate` over methods whose registry rates differ would spend half the trials at
rates one family cannot use, so it is refused; `search.per_method.<m>.learning_rate` gives a
method its own, sampled under the Optuna name `<m>.learning_rate`. Optuna would accept one name
with different float ranges per trial (`check_distribution_compatibility` compares only the kind
and `log`), but its TPE would then model two families' rates as one parameter. Methods without
an own value share `learning_rate`, as LoRA and QLoRA do.

The spec is typed `Any` here: `spec` imports this module, and the house has no import circles.
"""

from __future__ import annotations

from typing import Any

from runners.methods import METHODS

from .space import METHOD_KEYS, MethodSearch

Problem = tuple[tuple[Any, ...], str, str]
"""(location, message, fix) of one broken rule."""
SHARED = ("learning_rate", "replay_fraction")
"""Search keys of every method that trains (the others: `Method.search`)."""


def searched_methods(spec: Any) -> tuple[str, ...]:
    """The methods a study's trials run: search.method, else the one top-level method."""
    return tuple(spec.search.method or (spec.method,))


def searches_method(spec: Any) -> bool:
    return bool(spec.search.method)


def takes(method: str, name: str) -> bool:
    """Whether trials of `method` use the search key `name`."""
    entry = METHODS[method]
    return name in entry.search or (name in SHARED and entry.trains)


def own_rate(spec: Any, method: str) -> bool:
    """Whether `method` has its own learning rate (search.per_method), sampled under its own
    Optuna name."""
    per = spec.search.per_method or {}
    return method in per


def optuna_name(spec: Any, method: str, name: str) -> str:
    """The Optuna parameter name of search key `name` in `method`'s trials."""
    return f"{method}.{name}" if name == "learning_rate" and own_rate(spec, method) else name


def method_view(spec: Any, method: str) -> Any:
    """The study as one trial of `method` runs it: `method` at the top level, the search keys
    it does not take unset, its own learning rate in `learning_rate`, data.knowledge only for
    retrieval and data.replay only for training. Not validated (a view, not a study file)."""
    if not searches_method(spec):
        return spec
    entry, search = METHODS[method], spec.search
    update: dict[str, Any] = {key: None for key in METHOD_KEYS}
    for name in type(search).model_fields:
        if name not in METHOD_KEYS and not takes(method, name):
            update[name] = None
    if own_rate(spec, method):
        update["learning_rate"] = search.per_method[method].learning_rate
    data = spec.data
    if data is not None:
        data = data.model_copy(
            update={
                "knowledge": data.knowledge if entry.retrieval else None,
                "replay": data.replay if entry.trains else None,
            }
        )
    return spec.model_copy(
        update={"method": method, "search": search.model_copy(update=update), "data": data}
    )


def trial_values(spec: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's sampled values (Optuna's names) as `method_view(spec, method)` reads them:
    `method` dropped and `<method>.learning_rate` read as `learning_rate`. A value of a
    parameter the method does not take is an error (a stored trial replayed in a changed space
    would otherwise train without it, silently)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "method":
            continue
        key = "learning_rate" if name == f"{method}.learning_rate" else name
        if "." in key or not takes(method, key) or optuna_name(spec, method, key) != name:
            raise ValueError(f"parameter {name!r} does not belong to a {method!r} trial")
        out[key] = value
    return out


def fill_method_defaults(spec: Any) -> None:
    """Fill each searched method's registry defaults (r = 8 for the LoRA family, top_k = 3 for
    retrieval) and, when no learning_rate is given, each training method's own registry rate
    as its per_method value: the dump reruns the same study whatever the registry says later."""
    search = spec.search
    for method in searched_methods(spec):
        entry = METHODS[method]
        for name, value in entry.defaults.items():
            if name == "alpha_ratio" and search.lora_alpha is not None:
                continue
            if getattr(search, name) is None:
                setattr(search, name, value)
    if search.learning_rate is not None:
        return
    per = dict(search.per_method or {})
    for method in searched_methods(spec):
        if METHODS[method].trains and method not in per:
            per[method] = MethodSearch(learning_rate=METHODS[method].learning_rate)
    search.per_method = per or None


def method_search_problems(spec: Any) -> list[Problem]:
    """The rules of a study that searches the method (none for a study of one method)."""
    if not searches_method(spec):
        return _per_method_without_search(spec)
    methods, search = searched_methods(spec), spec.search
    listed = ", ".join(methods)
    problems: list[Problem] = []
    if "method" in spec.model_fields_set and spec.method not in methods:
        problems.append(
            (
                ("method",),
                f"method {spec.method!r} is not one of search.method ({listed})",
                f"remove the top-level method (search.method names the methods), or add "
                f"{spec.method} to search.method",
            )
        )
    if spec.optuna.sampler == "grid":
        problems.append(
            (
                ("optuna", "sampler"),
                "the grid sampler cannot search the method: its grid is one product of every "
                "parameter, but each method takes parameters of its own",
                "use sampler: tpe or random, or a grid study per method",
            )
        )
    for method in search.per_method or {}:
        if method not in methods:
            problems.append(
                (
                    ("search", "per_method", method),
                    f"{method!r} is not one of search.method ({listed})",
                    f"add {method} to search.method, or remove search.per_method.{method}",
                )
            )
        elif not METHODS[method].trains:
            problems.append(
                (
                    ("search", "per_method", method, "learning_rate"),
                    f"method {method!r} trains nothing: a learning rate would have no effect",
                    f"remove search.per_method.{method}",
                )
            )
    if search.learning_rate is not None:
        sharing = [m for m in methods if METHODS[m].trains and not own_rate(spec, m)]
        rates = {m: METHODS[m].learning_rate for m in sharing}
        if len(set(rates.values())) > 1:
            low = min(rates, key=rates.__getitem__)
            problems.append(
                (
                    ("search", "learning_rate"),
                    "one learning_rate for "
                    + ", ".join(f"{m} (default {r:g})" for m, r in rates.items())
                    + ": their good rates differ ~10x, so one range wastes trials on both",
                    f"give {low} its own: search.per_method: {{{low}: {{learning_rate: {{low: "
                    f"{rates[low] / 2:g}, high: {rates[low] * 5:g}, log: true}}}}}}",
                )
            )
    return problems


def _per_method_without_search(spec: Any) -> list[Problem]:
    if not spec.search.per_method:
        return []
    return [
        (
            ("search", "per_method"),
            "search.per_method gives values per searched method, but search.method is not set",
            "move the values into search (e.g. search.learning_rate), or list the methods in "
            "search.method",
        )
    ]


def parameter_problems(spec: Any, names: tuple[str, ...]) -> list[Problem]:
    """Each search key of `names` given for none of the study's methods: refused, since it
    would be recorded with the study and read later as if it had shaped the results."""
    methods, searched = searched_methods(spec), searches_method(spec)
    problems: list[Problem] = []
    for name in names:
        if getattr(spec.search, name) is None or any(takes(m, name) for m in methods):
            continue
        takers = ", ".join(m for m, entry in METHODS.items() if name in entry.search)
        if searched:
            message = f"none of the searched methods ({', '.join(methods)}) takes {name!r}"
            fix = f"remove search.{name}, or add to search.method a method that uses it"
        else:
            message = f"method {spec.method!r} has no {name!r} parameter"
            fix = f"remove search.{name}, or pick a method that uses it"
        problems.append((("search", name), message, f"{fix} ({takers})"))
    return problems

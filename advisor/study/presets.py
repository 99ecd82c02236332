"""Target-module choices of a study, encoded for Optuna and resolved against a model's modules.

The preset names (`attention_qv`, `all_linear`, ...) are the one vocabulary of
`runners.methods.targets`; before any trial starts the names are checked against the modules the
model really has, so a typo fails in a second instead of after the model has loaded in a trial.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from advisor.errors import AdvisorInputError
from runners.methods.targets import TARGET_MODULE_PRESETS

from .space import shown

HINTS_SHOWN = 5
"""Unknown module names an error lists (a choice may list thousands)."""
SEPARATOR = "+"
"""Joins an explicit module list into one Optuna categorical choice: `q_proj+v_proj`."""


def encode_choice(choice: str | Sequence[str]) -> str:
    """A target-modules choice as one string, because Optuna choices must be str/int/float.

    A preset stays its name (`attention_qv`); an explicit list becomes its names joined by `+`
    (`q_proj+k_proj`). `decode_choice` inverts it; a one-element list whose only name is a preset
    name would decode as the preset, so such module names are rejected.
    """
    if isinstance(choice, str):
        return choice
    names = list(choice)
    if not names:
        raise ValueError("an explicit target_modules list must name at least one module")
    for name in names:
        if not name or SEPARATOR in name:
            raise ValueError(
                f"module name must be non-empty and free of {SEPARATOR!r}: {shown(name)}"
            )
    if len(names) == 1 and names[0] in TARGET_MODULE_PRESETS:
        raise ValueError(f"module name {shown(names[0])} collides with the preset of the same name")
    return SEPARATOR.join(names)


def decode_choice(encoded: str) -> str | tuple[str, ...]:
    """Inverse of `encode_choice`: a preset name, or the tuple of explicit module names."""
    if encoded in TARGET_MODULE_PRESETS:
        return encoded
    return tuple(encoded.split(SEPARATOR))


def closest(name: str, candidates: Sequence[str]) -> str | None:
    """The most similar candidate (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


def resolve_target_modules(
    choice: str | Sequence[str],
    available: Sequence[str] | None,
    *,
    where: str | None = None,
) -> tuple[str, ...]:
    """Explicit module names for a preset name, a `+`-encoded string or an explicit list.

    With `available` (the model's linear-module names), every name must be one of them; a bad name
    raises `AdvisorInputError` listing the real names and the closest match. Without it, preset
    names expand and explicit names pass unchecked (they are checked once the model is known).
    """
    if isinstance(choice, str):
        decoded = decode_choice(choice)
        names = TARGET_MODULE_PRESETS[decoded] if isinstance(decoded, str) else decoded
    else:
        names = tuple(choice)
    if available is None:
        return tuple(names)
    real = sorted(set(available))
    missing = [name for name in names if name not in real]
    if missing:
        hints = []
        for name in missing[:HINTS_SHOWN]:
            near = closest(name, real)
            hints.append(f"{shown(name)} (did you mean {near!r}?)" if near else shown(name))
        if len(missing) > HINTS_SHOWN:
            hints.append(f"and {len(missing) - HINTS_SHOWN} more")
        label = (
            f"preset {choice!r}"
            if isinstance(choice, str) and choice in TARGET_MODULE_PRESETS
            else "choice"
        )
        raise AdvisorInputError(
            f"target module {', '.join(hints)} of {label} is not a linear module of the model",
            fix=f"use names the model has: {', '.join(real)}",
            where=where,
        )
    return tuple(names)

"""The method registry: one frozen `Method` entry per fine-tuning method, one shared loop.

Modelled on peft's `register_peft_method`: a closed table keyed by name that rejects duplicates
and answers unknown names with the list of known ones. A method only says how the base model is
loaded (`load_kwargs`, e.g. a 4-bit quantisation config) and how it is turned into the model
that is trained (`prepare`); `runners.train` trains every method the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runners.config import MethodConfig
from runners.errors import TrialInputError


def _no_load_kwargs(cfg: MethodConfig, *, device: str, dtype: Any) -> dict[str, Any]:
    return {}


def _no_callbacks(model: Any) -> list[Any]:
    return []


@dataclass(frozen=True)
class Method:
    """One registry entry. `prepare(model, cfg, max_steps=...)` receives the loaded base model and
    returns what is trained (`max_steps` is for schedules such as AdaLoRA's rank budget)."""

    name: str
    summary: str
    peft: bool
    """True when training produces a peft adapter (saved with `save_pretrained`)."""
    prepare: Callable[[Any, MethodConfig], Any]
    needs_cuda: bool = False
    load_kwargs: Callable[..., dict[str, Any]] = field(default=_no_load_kwargs)
    """`load_kwargs(cfg, device=..., dtype=...)`: extra `from_pretrained` arguments."""
    uses_target_modules: bool = True
    callbacks: Callable[[Any], list[Any]] = field(default=_no_callbacks)
    """`callbacks(prepared_model)`: extra TrainerCallbacks the shared loop runs for this method."""


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add `method` to the registry; a second entry under the same name is a bug."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method called `name`; unknown names list the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise TrialInputError(
            f"unknown method {name!r}",
            fix=f"use one of: {', '.join(sorted(METHODS))}",
            where="method.name",
        ) from None


def check_target_modules(model: Any, cfg: MethodConfig) -> list[str] | None:
    """`cfg.target_modules` as a list, after checking each name exists among the model's linears.

    peft's own error ("Target modules ... not found") does not list the valid names; this one does.
    """
    if cfg.target_modules is None:
        return None
    from runners.models import module_names_of

    known = module_names_of(model)
    unknown = [m for m in cfg.target_modules if m not in known]
    if unknown:
        raise TrialInputError(
            f"target module(s) {unknown} not found in the model",
            fix=f"choose among {known}",
            where="method.target_modules",
        )
    return list(cfg.target_modules)


def rank(cfg: MethodConfig, default: int = 8) -> int:
    """`cfg.r`, validated (a rank must be a positive integer)."""
    r = default if cfg.r is None else cfg.r
    if r < 1:
        raise TrialInputError(
            f"r must be >= 1, got {r}", fix="set r to 8, 16, 32 ...", where="method.r"
        )
    return int(r)

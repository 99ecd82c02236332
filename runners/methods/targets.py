"""Named groups of target modules: the one vocabulary of study files, the estimator and the runners.

A study names `attention_qv` rather than `["q_proj", "v_proj"]`, so one file reads the same for
every Llama-style model, and `advisor estimate --target-modules all_linear` counts the same
matrices a trial would adapt. The names are Llama-family projection names, which SmolLM2,
Llama, Mistral and Qwen2 share; a model with other names is given explicit module lists.
"""

from __future__ import annotations

TARGET_MODULE_PRESETS: dict[str, tuple[str, ...]] = {
    "attention_qv": ("q_proj", "v_proj"),
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
    "all_linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
"""Preset name -> module names, in the order the layers sit in a block."""

LINEAR_MODULES = TARGET_MODULE_PRESETS["all_linear"]
"""Every linear layer of one Llama-style block."""

FEEDFORWARD_MODULES = TARGET_MODULE_PRESETS["mlp"]
"""The MLP's projections (IA3 scales their inputs rather than their outputs)."""

PRESET_ALIASES: dict[str, str] = {"all-linear": "all_linear", "qv": "attention_qv"}
"""Spellings that `advisor estimate --target-modules` took before the vocabulary was shared;
still accepted there, so scripts written against 0.1 keep working."""


def preset_name(modules: list[str] | tuple[str, ...]) -> str | None:
    """The preset whose modules are exactly `modules`, in any order; None when none is (the
    study then names the modules themselves)."""
    wanted = sorted(modules)
    named = (name for name, preset in TARGET_MODULE_PRESETS.items() if sorted(preset) == wanted)
    return next(named, None)


def preset_modules(name: str) -> tuple[str, ...] | None:
    """The module names of preset `name` (or of an alias of one); None when it is no preset."""
    return TARGET_MODULE_PRESETS.get(PRESET_ALIASES.get(name, name))

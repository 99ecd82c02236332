"""Deciding how to adapt a model, from its traits alone: the light path of `advisor recommend`
and `advisor estimate`, which imports neither torch nor transformers nor the stores.

`traits` (what the user knows) -> `rules` (the decision table, with sources) -> `recommend` (a
ranked plan with starting hyperparameters), checked by `estimate` (memory, time and cost) from
`shapes` (a model's dimensions: a preset, a config.json or a GGUF header read by `gguf`).
"""

from __future__ import annotations

from .estimate import MemoryEstimate, TimeEstimate, estimate_memory, estimate_time
from .recommend import Candidate, PlanStep, Recommendation, recommend
from .shapes import PRESETS, ModelShape, resolve_model
from .traits import Traits

__all__ = [
    "PRESETS",
    "Candidate",
    "MemoryEstimate",
    "ModelShape",
    "PlanStep",
    "Recommendation",
    "TimeEstimate",
    "Traits",
    "estimate_memory",
    "estimate_time",
    "recommend",
    "resolve_model",
]

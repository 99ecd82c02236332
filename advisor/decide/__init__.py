"""Deciding how to adapt a model, from its traits alone: the light path of `advisor recommend`
and `advisor estimate`, which imports neither torch nor transformers nor the stores.

`traits` (what the user knows) -> `rules` (the decision table, with sources) -> `recommend` (a
ranked plan), checked by `estimate` (memory, time and cost) from `shapes` (a model's dimensions:
a preset, a config.json or a GGUF header read by `gguf`); `fit` keeps headroom over an estimate
and names the levers near the edge, `priorities` weighs the estimates for --priority cost/speed,
`hyperparams` (the starting-point rules, with sources) sets the starting hyperparameters, and
`retrieval` the retrieval methods' side (the passages in every prompt, top_k and chunk_size).
"""

from __future__ import annotations

from .estimate import MemoryEstimate, TimeEstimate, estimate_memory, estimate_time
from .fit import Fit, check_fit
from .hyperparams import HYPERPARAMETER_RULES, starting_point
from .recommend import Candidate, PlanStep, Recommendation, recommend
from .shapes import PRESETS, ModelShape, resolve_model
from .traits import Traits

__all__ = [
    "HYPERPARAMETER_RULES",
    "PRESETS",
    "Candidate",
    "Fit",
    "MemoryEstimate",
    "ModelShape",
    "PlanStep",
    "Recommendation",
    "TimeEstimate",
    "Traits",
    "check_fit",
    "estimate_memory",
    "estimate_time",
    "recommend",
    "resolve_model",
    "starting_point",
]

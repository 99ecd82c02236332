"""Study files: the declarative description of a tuning study, validated before anything runs."""

from __future__ import annotations

from .loading import check_model_modules, dump_resolved, load_study, spec_hash, study_json_schema
from .presets import (
    TARGET_MODULE_PRESETS,
    decode_choice,
    encode_choice,
    resolve_target_modules,
)
from .resolve import (
    ParamSpec,
    fixed_parameters,
    representative_parameters,
    resolve_trial_config,
    search_parameters,
)
from .space import FloatRange, IntRange, SearchSpec
from .spec import StudySpec, known_methods

__all__ = [
    "TARGET_MODULE_PRESETS",
    "FloatRange",
    "IntRange",
    "ParamSpec",
    "SearchSpec",
    "StudySpec",
    "check_model_modules",
    "decode_choice",
    "dump_resolved",
    "encode_choice",
    "fixed_parameters",
    "known_methods",
    "load_study",
    "representative_parameters",
    "resolve_target_modules",
    "resolve_trial_config",
    "search_parameters",
    "spec_hash",
    "study_json_schema",
]

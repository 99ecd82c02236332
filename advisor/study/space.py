"""The search space of a study: each parameter fixed, a list of choices, or a range.

A search parameter is written in one of three shapes: a single value (fixed), a list (categorical
choices; a one-element list is fixed) or a range mapping `{low, high, log}` (sampled). Pydantic
tells the shapes apart by a callable discriminator, whose tags (`fixed`, `choices`, `range`) appear
in error locations; `SEARCH_TAGS` lets the loader drop them from the YAML paths it prints.

Every number of a study is finite (`Section` refuses .nan and .inf, which YAML reads as floats)
and lies in a range its field states: a range's `low` and `high` obey the bounds of the
parameter's single value (a rank range starting at 0 would sample rank 0), and whole numbers
stop at `INT_MAX`.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    Tag,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runners.knowledge import MIN_CHUNK_SIZE
from runners.methods import METHOD_ALIASES, METHODS, canonical_name
from runners.methods.targets import TARGET_MODULE_PRESETS

SEARCH_TAGS = ("fixed", "choices", "range")
"""Union tags pydantic inserts into error locations of search parameters (not YAML keys)."""


def rule(message: str, fix: str) -> PydanticCustomError:
    """A validation error carrying its fix in `ctx`, so `load_study` can print both."""
    return PydanticCustomError("study_rule", "{message}", {"message": message, "fix": fix})


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 200, 80, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = 6
_SHOWN.maxlevel = 3


def shown(value: object) -> str:
    """`repr(value)` cut to a readable length: an error message quotes what the user wrote,
    and a study file may hold a megabyte-long string or a list of 100,000 values."""
    return _SHOWN.repr(value)


class Section(BaseModel):
    """Base of every study section: unknown keys are errors, defaults are validated, numbers
    are finite (.nan and .inf would pass `gt`/`ge` checks and crash a trial later)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


INT_MAX = 2**31 - 1
"""Largest whole number a study field takes: counts and sizes reach torch, tokenizers and
`resource` as C ints, where a larger value overflows (in a trial, after the study was recorded)."""
SEED_MAX = 2**32 - 1
"""numpy's RandomState (seeded by Optuna's samplers and transformers' `set_seed`) takes seeds
below 2**32."""


# --- search parameters ----------------------------------------------------------------------------


class IntRange(Section):
    """Integers sampled from [low, high]."""

    low: int = Field(description="Smallest value (inclusive).")
    high: int = Field(description="Largest value (inclusive).")
    step: int = Field(
        1, ge=1, le=INT_MAX, description="Spacing of the values, >= 1 (1 with log=true)."
    )
    log: bool = Field(False, description="Sample on a log scale.")

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise rule(
                f"`low <= high` must hold, but got (low={self.low}, high={self.high})",
                "swap low and high",
            )
        if self.log and (self.low < 1 or self.step != 1):
            raise rule(
                "a log range needs low >= 1 and step 1, "
                f"but got (low={self.low}, step={self.step})",
                "drop `log: true` or set low >= 1 and step 1",
            )
        return self


class FloatRange(Section):
    """Floats sampled from [low, high]."""

    low: float = Field(description="Smallest value (inclusive).")
    high: float = Field(description="Largest value (inclusive).")
    log: bool = Field(False, description="Sample on a log scale (use it for learning rates).")

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise rule(
                f"`low <= high` must hold, but got (low={self.low}, high={self.high})",
                "swap low and high",
            )
        if self.log and self.low <= 0:
            raise rule(f"a log range needs low > 0, but got low={self.low}", "set low > 0")
        return self


def _shape(value: Any) -> str:
    if isinstance(value, (dict, IntRange, FloatRange)):
        return "range"
    if isinstance(value, (list, tuple)):
        return "choices"
    return "fixed"


def _param(name: str, scalar: Any, base: type[IntRange | FloatRange]) -> Any:
    """A search parameter whose single value, choices and range bounds all obey `scalar`.

    The range is `base` with `low` and `high` typed as `scalar` (named `name` in the JSON
    Schema), so `{low: 0, high: 8}` for a rank is refused at `search.r.low` like `r: 0` is.
    """
    ranged = create_model(
        name,
        __base__=base,
        __doc__=base.__doc__,
        low=(scalar, Field(description="Smallest value (inclusive).")),
        high=(scalar, Field(description="Largest value (inclusive).")),
    )
    return Annotated[
        Annotated[scalar, Tag("fixed")]
        | Annotated[list[scalar], Field(min_length=1), Tag("choices")]
        | Annotated[ranged, Tag("range")],
        Discriminator(_shape),
    ]


PositiveInt = Annotated[int, Field(ge=1, le=INT_MAX)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_MAX)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
IntParam = _param("PositiveIntRange", PositiveInt, IntRange)
FloatParam = _param("PositiveFloatRange", PositiveFloat, FloatRange)
FractionParam = _param("FractionRange", Fraction, FloatRange)
ChunkSize = Annotated[int, Field(ge=MIN_CHUNK_SIZE, le=INT_MAX)]
ChunkSizeParam = _param("ChunkSizeRange", ChunkSize, IntRange)
TargetChoice = str | Annotated[list[str], Field(min_length=1)]
BoolParam = Annotated[
    Annotated[StrictBool, Tag("fixed")]
    | Annotated[list[StrictBool], Field(min_length=1), Tag("choices")],
    Discriminator(lambda value: "choices" if isinstance(value, (list, tuple)) else "fixed"),
]
"""A switch: true or false, or [false, true] to search it. Strict, so `1` or `"yes"` is refused
rather than read as true; no range shape (a mapping is named as not a boolean)."""


@dataclass(frozen=True)
class Param:
    """One searched parameter as plain data: what the tuner asks its sampler for.

    Built from the search space by `advisor.study.resolve.search_parameters`; the stores turn it
    into an Optuna distribution (`advisor.stores.sampling`). One definition for both sides.
    """

    name: str
    kind: str  # categorical | float | int
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    methods: tuple[str, ...] = ()
    """In a study that searches the method: the methods whose trials sample this parameter
    (the sampled `method` decides; `advisor.study.methods`). Empty: every trial samples it."""


def is_searched(value: Any) -> bool:
    """A range, or a list of more than one choice."""
    return isinstance(value, (IntRange, FloatRange)) or (isinstance(value, list) and len(value) > 1)


def choice_count(value: Any) -> float:
    """How many values a parameter can take (math.inf for a continuous range)."""
    if isinstance(value, IntRange):
        return math.inf if value.log else (value.high - value.low) // value.step + 1
    if isinstance(value, FloatRange):
        return math.inf if value.low < value.high else 1
    if isinstance(value, list):
        return len(value)
    return 1


class MethodSearch(Section):
    """`search.per_method.<method>`: values of one searched method only.

    The learning rate only, for now: it is the one shared key whose good values differ by
    method (EVIDENCE.md: full fine-tuning ~1e-5, the LoRA family ~1e-4 to 1e-3); the other keys
    belong to one family each already (r to the LoRA family, top_k to retrieval)."""

    learning_rate: FloatParam = Field(
        description="This method's learning rate, > 0: a value, choices or a range."
    )


class SearchSpec(Section):
    """The search space: each parameter fixed (one value), a list of choices, or a range."""

    r: IntParam | None = Field(
        None, description="LoRA rank, 1 .. 2^31-1: e.g. [4, 8, 16] or {low: 4, high: 32}."
    )
    lora_alpha: FloatParam | None = Field(
        None, description="LoRA alpha (scale alpha/r), > 0. Give this OR alpha_ratio, not both."
    )
    alpha_ratio: FloatParam | None = Field(
        None, description="alpha / r, > 0, e.g. [1, 2] (alpha = 2r is the usual heuristic)."
    )
    target_modules: TargetChoice | list[TargetChoice] | None = Field(
        None,
        description=(
            "A preset name (attention_qv, attention, mlp, all_linear), or a list of choices, each "
            "a preset name or an explicit list of module names: [attention_qv, [q_proj, k_proj]]."
        ),
    )
    learning_rate: FloatParam | None = Field(
        None,
        description="> 0, e.g. {low: 1e-4, high: 2e-3, log: true}; default depends on the method.",
    )
    lora_dropout: FractionParam | None = Field(
        None, description="Dropout on the LoRA input, [0, 1)."
    )
    replay_fraction: FractionParam | None = Field(
        None,
        description="Replay share of the training mixture, [0, 1), e.g. [0.0, 0.05, 0.1]; needs "
        "data.replay (whose fraction it replaces).",
    )
    use_rslora: BoolParam | None = Field(
        None,
        description="rsLoRA: scale the update by lora_alpha/sqrt(r) instead of lora_alpha/r, so "
        "large ranks still learn (peft's use_rslora); true, false (the default) or [false, true] "
        "to search it. The LoRA adapters only (lora, dora, qlora, rag_lora).",
    )
    top_k: IntParam | None = Field(
        None,
        description="Retrieval methods (rag, rag_lora): passages put into each prompt, "
        "1 .. 2^31-1, e.g. [1, 3, 5].",
    )
    chunk_size: ChunkSizeParam | None = Field(
        None,
        description=f"Retrieval methods: words per passage of data.knowledge, {MIN_CHUNK_SIZE} .. "
        "2^31-1 (neighbours share a quarter), e.g. [32, 64, 128].",
    )
    method: list[str] | None = Field(
        None,
        description="The method as a search dimension: two or more registered methods, e.g. "
        "[rag, lora, full] (rag+lora is read as rag_lora). Each trial samples a method, then "
        "that method's own parameters: each search key applies to the listed methods that take "
        "it (r to the LoRA family, top_k to retrieval, learning_rate to every method that "
        "trains). Leave the top-level `method` out.",
    )
    per_method: dict[str, MethodSearch] | None = Field(
        None,
        description="Values for one searched method only, e.g. {full: {learning_rate: {low: "
        "1e-5, high: 1e-4, log: true}}}: full fine-tuning learns at rates ~10x below the LoRA "
        "family's, so one learning_rate range cannot serve both. A method left out takes "
        "search.learning_rate, else its registry default.",
    )

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        choices = [value] if isinstance(value, str) else value or []
        if (value is not None and not choices) or any(c == [] for c in choices):
            raise rule(
                "target_modules is empty: the adapter would attach to no module",
                "name a preset (e.g. attention_qv) or list module names, or leave the key out "
                "for the method's default",
            )
        for choice in choices:
            if isinstance(choice, str) and choice not in TARGET_MODULE_PRESETS:
                raise rule(
                    f"{shown(choice)} is not a target-module preset "
                    f"({', '.join(TARGET_MODULE_PRESETS)})",
                    "use a preset name, or wrap explicit module names in a list of their own: "
                    f"[[{shown(choice)[1:-1]}, ...]]",
                )
            if isinstance(choice, list) and any(not name or "+" in name for name in choice):
                raise rule(
                    f"module names must be non-empty and free of '+', but got {shown(choice)}",
                    "list the module names one by one",
                )
        return value

    @field_validator("use_rslora", mode="before")
    @classmethod
    def _a_switch(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise rule(
                "use_rslora is an empty list: there is no scaling to train with",
                "write true or false, or [false, true] to search it",
            )
        return value

    @field_validator("method")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        """Registry names (an alias read as its method), each once, two or more: one method is
        the top-level `method`, whose study keeps the shape (and the hash) it always had."""
        if value is None:
            return None
        names = (*METHODS, *METHOD_ALIASES)
        unknown = [m for m in value if canonical_name(m) not in METHODS]
        if unknown:
            raise rule(
                f"unknown method {shown(unknown[0])} in search.method",
                f"use methods of the registry: {', '.join(names)}",
            )
        methods = [canonical_name(m) for m in value]
        if len(methods) < 2:
            raise rule(
                f"search.method lists {len(methods) or 'no'} method{'s' if not methods else ''}"
                f"{f' ({methods[0]})' if methods else ''}: there is no choice to search",
                f"list two or more (e.g. [rag, lora]), or write `method: "
                f"{methods[0] if methods else 'lora'}` at the top level",
            )
        twice = sorted({m for m in methods if methods.count(m) > 1})
        if twice:
            raise rule(
                f"search.method lists {', '.join(twice)} twice",
                "list each method once (rag+lora and rag_lora are the same method)",
            )
        return methods

    @field_validator("per_method")
    @classmethod
    def _per_method_names(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Keys are read as registry names, like search.method's entries."""
        if value is None:
            return None
        unknown = [m for m in value if canonical_name(m) not in METHODS]
        if unknown:
            raise rule(
                f"unknown method {shown(unknown[0])} in search.per_method",
                f"use a method of search.method ({', '.join(METHODS)})",
            )
        return {canonical_name(m): v for m, v in value.items()}

    @model_validator(mode="after")
    def _one_alpha(self) -> SearchSpec:
        if self.lora_alpha is not None and self.alpha_ratio is not None:
            raise rule(
                "lora_alpha and alpha_ratio are both set; they say the same thing two ways",
                "keep one of search.lora_alpha and search.alpha_ratio",
            )
        return self

    @model_serializer(mode="wrap")
    def _without_new_defaults(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """use_rslora is left out when false or absent (peft's default, the scaling every study
        had before the field existed), so a recorded study keeps its spec hash and is continued,
        not refused as changed; a dump without it reruns the same scaling."""
        out = dump(self)
        if self.use_rslora in (None, False, [False]):
            out.pop("use_rslora", None)
        for key in ("method", "per_method"):  # a study of one method hashes as before
            if out.get(key, 0) is None:
                del out[key]
        return out

    def target_choices(self) -> list[str | list[str]]:
        """target_modules as a list of choices (a single preset becomes one choice)."""
        value = self.target_modules
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


METHOD_KEYS = ("method", "per_method")
"""`search:` keys that say which methods are searched, not a value a trial trains with."""
NUMERIC_PARAMS = tuple(
    name for name in SearchSpec.model_fields if name not in ("target_modules", *METHOD_KEYS)
)
"""The search parameters but target_modules (numbers, and the use_rslora switch), in the order
the tuner samples them (that order is part of a seeded study's sequence of trials: keep it; a new
parameter goes last, and is only sampled by the studies that search it)."""
PARAM_NAMES = (*NUMERIC_PARAMS, "target_modules")

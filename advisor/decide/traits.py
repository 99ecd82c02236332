"""The task traits `advisor recommend` decides from, validated up front with every error at once.

Each field maps to one CLI option (`OPTION_OF`), so a validation error can name the option the user
typed and the fix, rather than a pydantic field path. Every number is finite and bounded (the
range is in its description): typer reads `--vram inf` and `--examples 1e400` as numbers, and
the estimates would turn them into `Infinity` in JSON or an OverflowError.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisor.errors import AdvisorInputError

Goal = Literal["knowledge", "behaviour", "both"]
DataFormat = Literal["pairs", "corpus"]
Level = Literal["low", "medium", "high"]
Weights = Literal["open", "api"]
Priority = Literal["quality", "cost", "speed"]


class Traits(BaseModel):
    """What the user knows about the task, the data, the model and the hardware."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    goal: Goal = Field(
        "behaviour", description="knowledge (facts), behaviour (format/style) or both"
    )
    knowledge_changes: bool = Field(False, description="the facts change over time")
    data_format: DataFormat = Field("pairs", description="prompt/response pairs or a raw corpus")
    examples: int = Field(
        1000, gt=0, le=10**12, description="training examples (pairs or documents), 1 .. 1e12"
    )
    domain_shift: Level = Field("low", description="distance from the pre-training data")
    model: str = Field("llama-3-8b", min_length=1, description="preset or local path")
    vram_gb: float = Field(24.0, gt=0, le=1e5, description="memory per GPU, GB in (0, 1e5]")
    gpus: int = Field(1, ge=1, le=10**5, description="number of GPUs, 1 .. 1e5")
    tasks: int = Field(
        1, ge=1, le=10**6, description="tasks or tenants sharing one base model, 1 .. 1e6"
    )
    weights: Weights = Field("open", description="open weights, or a black-box API")
    priority: Priority = Field("quality", description="what matters most")
    seq_len: int = Field(
        512, gt=0, le=2**31 - 1, description="tokens per training example, 1 .. 2^31-1"
    )
    budget_usd: float | None = Field(
        None, gt=0, le=1e12, description="training budget, USD in (0, 1e12]"
    )

    @property
    def total_vram_gb(self) -> float:
        return self.vram_gb * self.gpus

    @classmethod
    def from_options(cls, **values: Any) -> Traits:
        """Validate CLI values; all problems are reported together, each naming its option."""
        try:
            return cls(**values)
        except ValidationError as error:
            raise to_input_error(error) from None


OPTION_OF: dict[str, str] = {
    "goal": "--goal",
    "knowledge_changes": "--knowledge-changes/--static-knowledge",
    "data_format": "--data-format",
    "examples": "--examples",
    "domain_shift": "--domain-shift",
    "model": "--model",
    "vram_gb": "--vram",
    "gpus": "--gpus",
    "tasks": "--tasks",
    "weights": "--weights",
    "priority": "--priority",
    "seq_len": "--seq-len",
    "budget_usd": "--budget-usd",
}

_FIXES: dict[str, str] = {
    "finite_number": "pass a finite number (not inf or nan)",
    "greater_than": "pass a number greater than {gt}",
    "greater_than_equal": "pass a number of at least {ge}",
    "less_than_equal": "pass a number of at most {le}",
    "literal_error": "choose one of {expected}",
}


def to_input_error(error: ValidationError) -> AdvisorInputError:
    """One AdvisorInputError listing every invalid option, its bad value and its fix (each
    prefixed by its option when there are several; `where` names them all)."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        option = OPTION_OF.get(field, field)
        template = _FIXES.get(item["type"], "check the value of {option}")
        fix = template.format(option=option, **(item.get("ctx") or {}))
        # reprlib: the value is the user's (or a request's), of any length
        problems.append((option, f"{item['msg']} (got {reprlib.repr(item.get('input'))})", fix))
    options = list(dict.fromkeys(option for option, _, _ in problems))
    if len(problems) == 1:
        _, message, fix = problems[0]
        return AdvisorInputError(message, fix=fix, where=options[0])
    return AdvisorInputError(
        "; ".join(f"{option}: {message}" for option, message, _ in problems),
        fix="; ".join(f"{option}: {fix}" for option, _, fix in problems),
        where=", ".join(options),
    )


# --- traits read from the data -----------------------------------------------------------------

SEQ_LEN_STEP = 64
"""`--seq-len` from the data is the p95 length rounded up to a multiple of this (a whole number
of the block sizes GPU kernels and packers like), at least one step."""
WORD_TOKENS = 1.3
"""Tokens per word of a typical tokenizer (English), when lengths could only be counted in words."""


@dataclass(frozen=True)
class DataTraits:
    """What a training file says about the task (`advisor recommend --train`): read by the scan
    (`advisor.scan.profile`), each a default that an option given explicitly overrides."""

    path: str
    layout: str
    """The data layout (`runners.layouts`): messages, sharegpt, alpaca, ..., text."""
    examples: int
    """Rows training reads (rows it would refuse are not counted)."""
    unit: str
    """tokens (the study model's tokenizer, through its chat template) or words."""
    counted_by: str
    length_mean: float
    """Mean formatted length per example (the conversation through the chat template, or the
    document), in `unit`."""
    length_p95: int
    completion_mean: float
    """Mean assistant tokens per conversation (what the loss covers); 0 for raw text."""
    languages: dict[str, float] = field(default_factory=dict)
    """Language code -> share of the system/user turns (or documents), most common first."""

    @property
    def data_format(self) -> DataFormat:
        """Conversations and pairs teach behaviour (`pairs`); raw text is a `corpus`."""
        return "corpus" if self.layout == "text" else "pairs"

    @property
    def seq_len(self) -> int:
        """p95 of the formatted length in tokens (estimated from words when counted so), rounded
        up to a multiple of `SEQ_LEN_STEP`: 95 of 100 examples train uncut."""
        tokens = self.length_p95 * (WORD_TOKENS if self.unit == "words" else 1)
        return max(SEQ_LEN_STEP, math.ceil(tokens / SEQ_LEN_STEP) * SEQ_LEN_STEP)

    def options(self) -> dict[str, Any]:
        """The `Traits` fields the data sets, by field name."""
        return {"examples": self.examples, "data_format": self.data_format, "seq_len": self.seq_len}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "data_format": self.data_format, "seq_len": self.seq_len}


def merge_traits(
    given: dict[str, Any], data: DataTraits | None, defaults: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Trait values for `Traits.from_options`: those `given` (not None) win, then the data's,
    then `defaults`; and the names of the traits that came from the data."""
    values = {**(defaults or {}), **{k: v for k, v in given.items() if v is not None}}
    from_data = []
    for name, value in (data.options() if data else {}).items():
        if given.get(name) is None:
            values[name] = value
            from_data.append(name)
    return values, from_data


__all__ = ["OPTION_OF", "DataTraits", "Traits", "merge_traits", "to_input_error"]

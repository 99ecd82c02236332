"""The task traits `advisor recommend` decides from, validated up front with every error at once.

Each field maps to one CLI option (`OPTION_OF`), so a validation error can name the option the user
typed and the fix, rather than a pydantic field path. Every number is finite and bounded (the
range is in its description): typer reads `--vram inf` and `--examples 1e400` as numbers, and
the estimates would turn them into `Infinity` in JSON or an OverflowError.
"""

from __future__ import annotations

import reprlib
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


__all__ = ["OPTION_OF", "Traits", "to_input_error"]

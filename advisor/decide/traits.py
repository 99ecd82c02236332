"""The task traits `advisor recommend` decides from, validated up front with every error at once.

Each field maps to one CLI option (`OPTION_OF`), so a validation error can name the option the user
typed and the fix, rather than a pydantic field path.
"""

from __future__ import annotations

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

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal: Goal = Field(
        "behaviour", description="knowledge (facts), behaviour (format/style) or both"
    )
    knowledge_changes: bool = Field(False, description="the facts change over time")
    data_format: DataFormat = Field("pairs", description="prompt/response pairs or a raw corpus")
    examples: int = Field(1000, gt=0, description="training examples (pairs or documents)")
    domain_shift: Level = Field("low", description="distance from the pre-training data")
    model: str = Field("llama-3-8b", min_length=1, description="preset or local path")
    vram_gb: float = Field(24.0, gt=0, description="memory per GPU, GB")
    gpus: int = Field(1, ge=1, description="number of GPUs")
    tasks: int = Field(1, ge=1, description="tasks or tenants sharing one base model")
    weights: Weights = Field("open", description="open weights, or a black-box API")
    priority: Priority = Field("quality", description="what matters most")
    seq_len: int = Field(512, gt=0, description="tokens per training example")
    budget_usd: float | None = Field(None, gt=0, description="training budget, USD")

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
    "greater_than": "pass a number greater than {gt}",
    "greater_than_equal": "pass a number of at least {ge}",
    "literal_error": "choose one of {expected}",
}


def to_input_error(error: ValidationError) -> AdvisorInputError:
    """One AdvisorInputError listing every invalid option, its bad value and its fix."""
    lines, fixes, options = [], [], []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        option = OPTION_OF.get(field, field)
        template = _FIXES.get(item["type"], "check the value of {option}")
        fix = template.format(option=option, **(item.get("ctx") or {}))
        lines.append(f"{option}: {item['msg']} (got {item.get('input')!r})")
        fixes.append(f"{option}: {fix}")
        options.append(option)
    return AdvisorInputError(
        "; ".join(lines), fix="; ".join(fixes), where=", ".join(dict.fromkeys(options))
    )


__all__ = ["OPTION_OF", "Traits", "to_input_error"]

"""`POST /v1/recommend` and `POST /v1/estimate`: the CLI's `--json` answers, model paths confined.

The request models are the CLI's options by field name (`Traits` itself for recommend), and the
answers are the same dictionaries `advisor recommend --json` and `advisor estimate --json`
print (without `study_file`, which only `--write-study` fills). Neither imports torch.

A model given as a path is read (its config.json or GGUF header) on the service's machine, so
over HTTP it must be a preset or lie inside a data root, like every path of a submitted study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.decide.estimate import estimate_memory
from advisor.decide.recommend import recommend
from advisor.decide.shapes import PRESETS, resolve_model
from advisor.decide.traits import Traits

from .errors import ServiceError

MAX_RANK = 1 << 16
"""No model's hidden size reaches 65,536; a rank past it adapts nothing more."""
MAX_BATCH = 1 << 16
MAX_SEQ_LEN = 1 << 24
"""16M tokens: past every context window; beyond it the estimate is no longer about a model."""


class EstimateRequest(BaseModel):
    """`advisor estimate`'s options (same defaults), each within a stated range.

    Bounded above as well as below: an integer of 300 digits is valid JSON, and its estimate
    overflows to infinity, which no JSON answer can carry.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        min_length=1, max_length=4096, description="A preset, or a model path in a data root."
    )
    method: str = Field(
        max_length=64, description="rag, full, sft, lora, qlora, dora, adalora, prompt_tuning."
    )
    r: int = Field(16, ge=1, le=MAX_RANK, description="LoRA rank (adapter methods).")
    batch_size: int = Field(1, ge=1, le=MAX_BATCH, description="Sequences per step per GPU.")
    seq_len: int = Field(512, ge=1, le=MAX_SEQ_LEN, description="Tokens per sequence.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations.")
    target_modules: str = Field(
        "all_linear",
        max_length=4096,
        description="A preset (all_linear, attention, attention_qv, mlp) or comma-separated "
        "module names.",
    )
    device: Literal["cuda", "cpu"] = Field(
        "cuda", description="cuda: GPU memory (bf16); cpu: a CPU trial's peak resident memory."
    )


def recommend_answer(traits: Traits, roots: list[Path]) -> dict[str, Any]:
    """`advisor recommend --json` for these traits."""
    model = confine_model(traits.model, roots)
    if model != traits.model:
        traits = traits.model_copy(update={"model": model})
    return recommend(traits).to_dict()


def estimate_answer(request: EstimateRequest, roots: list[Path]) -> dict[str, Any]:
    """`advisor estimate --json` for these options."""
    shape = resolve_model(confine_model(request.model, roots))
    est = estimate_memory(
        shape,
        request.method.strip().lower(),
        r=request.r,
        target_modules=request.target_modules,
        batch_size=request.batch_size,
        seq_len=request.seq_len,
        gradient_checkpointing=request.gradient_checkpointing,
        device=request.device,
    )
    return {**est.to_dict(), "model_shape": shape.to_dict()}


def confine_model(value: str, roots: list[Path]) -> str:
    """A preset unchanged; a path inside a data root made absolute; anything else refused.

    An unknown name that is no file stays as it is (recommend treats it as an API model when
    `weights` is `api`; estimate reports it unknown). The same refusal for any path outside the
    roots, existing or not, so the answer tells nothing about the service's file system.
    """
    if value.strip().lower() in PRESETS:
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else roots[0] / path
    if not inside_roots(path, roots):
        raise ServiceError(
            f"model {value!r} is neither a preset nor a path inside the service's data roots",
            where="model",
            fix=f"use a preset ({', '.join(PRESETS)}) or a model folder, config.json or .gguf "
            "file under a data root (`advisor serve --data-root DIR`)",
        )
    if path.exists():
        return str(path)
    if Path(value).expanduser().exists():  # resolve_model would read it relative to the cwd
        raise ServiceError(
            f"model {value!r} does not exist under the data roots",
            where="model",
            fix="give its path relative to the first data root, or an absolute path in a root",
        )
    return value


def inside_roots(path: Path, roots: list[Path]) -> bool:
    """Whether `path` resolves (symlinks followed, `..` collapsed) inside one of `roots`."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)

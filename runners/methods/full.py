"""Full fine-tuning: every weight is trained; the artefact is a whole model copy."""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.methods._base import Method, register_method


def _prepare(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    for param in model.parameters():
        param.requires_grad_(True)
    return model


FULL = register_method(
    Method(
        name="full",
        summary="All weights trainable; highest ceiling and memory, no adapter.",
        peft=False,
        prepare=_prepare,
        family="full",
        search=(),
        defaults={},
        learning_rate=2e-5,  # 7B-8B instruction models are fully tuned at 1e-5 to 2e-5
    )
)

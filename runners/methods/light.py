"""The lightest methods: IA3 (learned activation scales) and prompt tuning (soft prompt tokens).

Both train a tiny number of parameters on a frozen model and save a peft adapter like LoRA, so
they share its training loop and contract test.
"""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.methods._base import Method, check_target_modules, rank, register_method
from runners.methods.targets import FEEDFORWARD_MODULES

_FEEDFORWARD = (*FEEDFORWARD_MODULES, "fc1", "fc2", "mlp")
"""Feed-forward layers by the names of Llama-style and GPT-style models."""
LIGHT_LEARNING_RATE = 3e-3
"""A handful of scales or soft-prompt vectors needs a far larger step than adapter matrices."""


def _prepare_ia3(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import IA3Config, get_peft_model

    targets = check_target_modules(model, cfg)
    feedforward = None if targets is None else [m for m in targets if m in _FEEDFORWARD]
    config = IA3Config(
        target_modules=targets, feedforward_modules=feedforward, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def _prepare_prompt_tuning(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    config = PromptTuningConfig(
        num_virtual_tokens=rank(cfg),
        prompt_tuning_init=PromptTuningInit.RANDOM,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


IA3 = register_method(
    Method(
        name="ia3",
        summary="Learned scales on attention keys/values and feed-forward inputs; tiny adapter.",
        peft=True,
        prepare=_prepare_ia3,
        family="light",
        search=("target_modules",),
        defaults={},
        learning_rate=LIGHT_LEARNING_RATE,
    )
)
PROMPT_TUNING = register_method(
    Method(
        name="prompt_tuning",
        summary="Trainable soft-prompt embeddings (r = number of virtual tokens); model frozen.",
        peft=True,
        prepare=_prepare_prompt_tuning,
        family="light",
        search=(),
        defaults={},
        learning_rate=LIGHT_LEARNING_RATE,
    )
)

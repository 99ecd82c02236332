"""AdaLoRA: LoRA whose rank budget is reallocated by importance while training.

It needs the number of training steps up front (`total_step`) and a call to
`update_and_allocate` after every optimiser step; both come from the shared loop (`max_steps`
and a TrainerCallback), so AdaLoRA trains with the same loop as every other method.

AdaLoRA takes no `use_rslora`: AdaLoraConfig inherits the field from LoraConfig, but its layers
(peft 0.21, `tuners/adalora/layer.py`) scale by lora_alpha / the live rank and never read it, so
a study asking for rsLoRA on AdaLoRA is refused rather than silently trained without it.
"""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.errors import TrialInputError
from runners.methods._base import (
    LORA_DEFAULTS,
    LORA_SEARCH,
    Method,
    check_target_modules,
    rank,
    register_method,
)


def _prepare(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import AdaLoraConfig, get_peft_model

    if max_steps < 2:
        raise TrialInputError(
            f"adalora reallocates ranks over training and needs max_steps >= 2, got {max_steps}",
            fix="raise train.max_steps",
            where="train.max_steps",
        )
    target_r = rank(cfg)
    config = AdaLoraConfig(
        init_r=max(target_r, round(1.5 * target_r)),  # start wider, prune down to r
        target_r=target_r,
        lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else 2 * target_r,
        lora_dropout=cfg.lora_dropout,
        target_modules=check_target_modules(model, cfg),
        total_step=max_steps,
        tinit=max_steps // 10,
        tfinal=max_steps // 5,
        deltaT=max(1, max_steps // 20),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _callbacks(model: Any) -> list[Any]:
    from transformers import TrainerCallback

    class RankAllocation(TrainerCallback):
        """peft's required `update_and_allocate` after each optimiser step, before zero_grad."""

        def on_optimizer_step(self, args, state, control, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

    return [RankAllocation()]


ADALORA = register_method(
    Method(
        name="adalora",
        summary="LoRA with the rank budget reallocated by importance during training.",
        peft=True,
        prepare=_prepare,
        callbacks=_callbacks,
        search=tuple(name for name in LORA_SEARCH if name != "use_rslora"),
        defaults={k: v for k, v in LORA_DEFAULTS.items() if k != "use_rslora"},
    )
)

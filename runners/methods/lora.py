"""LoRA and DoRA: a trainable low-rank update B A beside frozen weights (DoRA adds a magnitude)."""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.methods._base import Method, check_target_modules, rank, register_method


def lora_config(model: Any, cfg: MethodConfig, *, use_dora: bool = False) -> Any:
    """peft LoraConfig from our settings: r defaults to 8, lora_alpha to 2 r (the usual heuristic),
    target_modules to peft's per-architecture default (q_proj, v_proj for Llama); with
    `use_rslora` peft scales the update by lora_alpha/sqrt(r) instead of lora_alpha/r."""
    from peft import LoraConfig

    r = rank(cfg)
    return LoraConfig(
        r=r,
        lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else 2 * r,
        target_modules=check_target_modules(model, cfg),
        lora_dropout=cfg.lora_dropout,
        use_dora=use_dora,
        use_rslora=cfg.use_rslora,
        task_type="CAUSAL_LM",
    )


def _prepare_lora(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, cfg))


def _prepare_dora(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, cfg, use_dora=True))


LORA = register_method(
    Method(
        name="lora",
        summary="Low-rank adapters on frozen weights; adapter of a few MB.",
        peft=True,
        prepare=_prepare_lora,
    )
)
DORA = register_method(
    Method(
        name="dora",
        summary="LoRA on the direction of each weight plus a trained magnitude vector.",
        peft=True,
        prepare=_prepare_dora,
    )
)

"""QLoRA: LoRA on a base quantised to 4-bit NF4 with double quantisation (bitsandbytes).

Measured here: bitsandbytes 0.50 runs 4-bit layers on CPU with a float32 compute dtype, so QLoRA
does not need CUDA (`needs_cuda=False`); on GPU the compute dtype is the run's weights dtype
(`Placement.dtype`): bf16 for bf16 runs, fp32 for fp16 runs (their weights stay fp32 and
autocast runs the dequantised matmul in fp16 anyway). The QLoRA paper's third part, a paged
8-bit optimizer, is the default `train.optimizer` of a qlora study on CUDA (`_optimizer`);
trl casts the adapter to bf16, which `runners.train.trainable_in_run_precision` undoes for runs
that are not bf16.
"""

from __future__ import annotations

from typing import Any

from runners.config import MethodConfig
from runners.errors import TrialInputError
from runners.methods._base import Method, register_method
from runners.methods.lora import lora_config


def _load_kwargs(cfg: MethodConfig, *, device: str, dtype: Any) -> dict[str, Any]:
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise TrialInputError(
            "qlora needs bitsandbytes, which cannot be imported",
            fix="pip install bitsandbytes, or choose method lora",
            where="method.name",
        ) from exc
    from transformers import BitsAndBytesConfig

    compute = dtype if device == "cuda" else torch.float32
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
    }


def _optimizer(*, cuda: bool) -> str:
    """Paged 8-bit AdamW on CUDA: 8-bit states, paged to CPU memory when a long batch spikes GPU
    memory. Paged optimizers need CUDA, so plain AdamW on the CPU."""
    return "paged_adamw_8bit" if cuda else "adamw_torch"


def _prepare(model: Any, cfg: MethodConfig, *, max_steps: int = 0) -> Any:
    from peft import get_peft_model, prepare_model_for_kbit_training

    # Gradient checkpointing is the trainer's decision (TrainConfig), not a side effect of QLoRA.
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, lora_config(model, cfg))


QLORA = register_method(
    Method(
        name="qlora",
        summary="LoRA on a 4-bit NF4 base (double quantisation); smallest memory for LoRA.",
        peft=True,
        prepare=_prepare,
        load_kwargs=_load_kwargs,
        optimizer=_optimizer,
    )
)

"""Training memory, time and cost of a fine-tuning method, from a model's shape alone.

The arithmetic, so that every figure can be checked:

* Parameters and their bytes come from `ModelShape` (exact for Llama-family models).
* Mixed-precision (bf16/fp16) full fine-tuning with Adam costs 16 bytes per parameter: 2 for the
  16-bit weights, 2 for their gradients, 12 for optimizer states (fp32 master copy 4 + Adam m and v
  4 + 4) -- ZeRO (Rajbhandari et al. 2020, section 3.1). `precision="fp32"` is plain fp32
  training as on a CPU: 4 + 4 bytes, and 8 for Adam m and v.
* PEFT methods freeze the base (16-bit: 2 bytes/param; QLoRA: NF4, 0.5 bytes/param for the block
  linears, the embeddings and head unquantised: 16-bit, fp32 in an fp32 run) and train adapters
  that peft keeps in fp32 (`autocast_adapter_dtype=True`): 4 bytes each for weight and gradient,
  8 for Adam m and v.
  LoRA trains r(d_in + d_out) per targeted matrix; DoRA adds a magnitude vector (d_out); AdaLoRA's
  SVD form adds r singular values and keeps two fp32 importance EMAs per adapter parameter.
* QLoRA double quantisation stores one 8-bit absmax per 64 weights and one fp32 constant per 256
  absmax blocks (Dettmers et al. 2023, section 3): 1/64 + 4/(64*256) bytes per quantised weight.
* Activations per layer follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in
  Large Transformer Models"): s*b*h*(34 + 5*a*s/h) bytes in 16-bit without recomputation; the
  5as/h attention-score term is not stored with flash/SDPA attention (their "selective
  recomputation", 34 sbh), which is our default. Full gradient checkpointing keeps only each
  layer's 16-bit input (2 sbh) plus one layer's activations while it is recomputed. The loss adds
  s*b*V*10 bytes (16-bit logits, their fp32 upcast and its gradient).
* A fixed 0.5 GB stands for the CUDA context, cuBLAS workspaces and allocator slack.
* `device="cpu"` estimates a CPU trial's peak resident memory instead (fp32; bench/memory.py
  measures it): the CUDA allowance becomes the 0.45 GB a Python process holds after importing
  torch, transformers, peft and trl, and QLoRA adds the full-precision checkpoint pages that
  bitsandbytes' CPU path quantises from: they stay mapped (clean, reclaimable page cache, but
  resident and inside the address space `trial.max_memory_gb` caps) while the model lives.
  glibc's malloc keeps freed activations in its heap and fragments around them: with a frozen
  base (every method but full fine-tuning, whose weight gradients reuse that space) the peak
  carried 0.8x the activations on top (fitted on SmolLM2 at 1 x 128, 4 x 128 and 4 x 256;
  checked on 2 x 64). QLoRA also churns a dequantised fp32 copy of each weight per matmul: its
  slack is 0.8x the larger of the two (at batch 1 the weights dominate).
  `ADVISOR_MMAP_THRESHOLD=65536` removes most of it at a cost in speed (`runners.allocator`).

* The retrieval methods (`rag`, `rag_lora`) carry `top_k` passages of `chunk_size` words in
  every prompt (`decide.retrieval.passage_tokens`): their sequences are `seq_len` plus that
  context, for the KV cache of `rag` and for the activations and training tokens of `rag_lora`
  (LoRA's arithmetic otherwise). The BM25 index lives in host memory and is not counted.

Time: tokens x FLOPs/token / (peak x MFU). A full step costs 6N FLOPs per token (forward 2N,
backward 4N); with frozen weights the backward skips weight gradients (4N in all); gradient
checkpointing recomputes the forward (+2N). MFU 0.35 is a typical achieved fraction of peak.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from advisor.errors import AdvisorInputError
from runners.methods import METHODS as RUNNER_METHODS
from runners.methods.targets import LINEAR_MODULES, TARGET_MODULE_PRESETS, preset_modules

from .retrieval import passage_tokens, retrieval_assumptions
from .shapes import ModelShape

GB = 1e9
"""Decimal gigabytes, as GPU vendors and LLaMA-Factory's table count them."""

METHODS = ("rag", "rag_lora", "full", "sft", "lora", "qlora", "dora", "adalora", "prompt_tuning")
"""What `advisor recommend` ranks: the trainable methods of the runner's registry that it
estimates, plus retrieval (`rag`, nothing trained; `rag_lora`, a LoRA adapter trained with the
retrieved passages in its prompts) and `sft` (supervised fine-tuning of every weight on
prompt/response pairs, which trains as the runner's `full`)."""
TRAINS_AS: dict[str, str | None] = {"rag": None, "sft": "full"}
"""A candidate that is no runner method: what it trains as (None: nothing is trained)."""


def family(candidate: str) -> str | None:
    """The registry family of what `candidate` trains as: lora, full or light (None: rag)."""
    trained = TRAINS_AS.get(candidate, candidate)
    return None if trained is None else RUNNER_METHODS[trained].family


ADAPTER_METHODS = frozenset(m for m in METHODS if family(m) == "lora")
"""The LoRA family: r x (d_in + d_out) trainable weights per adapted matrix."""
FULL_METHODS = frozenset(m for m in METHODS if family(m) == "full")

Precision = Literal["bf16", "fp32"]
NF4_BYTES = 0.5
DOUBLE_QUANT_BYTES = 1 / 64 + 4 / (64 * 256)
ADAPTER_BYTES = 4  # fp32 adapter weights (peft upcasts adapters of a 16-bit base)
MAX_COUNT = 2**31 - 1
"""Largest rank, batch or sequence length estimated: the bytes stay finite floats (a larger
Python int, which typer accepts, overflows `float`)."""
CUDA_OVERHEAD_GB = 0.5
CPU_RUNTIME_GB = 0.45
"""Resident memory of a trial process before the model: Python with torch, transformers, peft and
trl imported (measured 430 MiB on Linux x86-64, bench/memory.py)."""
CHECKPOINT_BYTES_CPU = 4  # the converted GGUF cache and an fp32 run read fp32 weights
MALLOC_SLACK = 0.8
"""glibc heap kept on top of a frozen-base step's activations on CPU (see the module doc)."""
Device = Literal["cuda", "cpu"]
LOSS_BYTES_PER_LOGIT = 2 + 4 + 4
PROMPT_TOKENS = 20  # peft PromptTuningConfig num_virtual_tokens used for the estimate
MFU = 0.35


@dataclass(frozen=True)
class Gpu:
    """A GPU kind for the time/cost estimate. Prices: rough on-demand cloud rates, 2025."""

    name: str
    vram_gb: float
    bf16_tflops: float
    """Dense bf16 tensor-core peak from the vendor's data sheet."""
    usd_per_hour: float


GPUS: tuple[Gpu, ...] = (
    Gpu("T4-16GB", 16, 65, 0.35),
    Gpu("RTX-4090-24GB", 24, 165, 0.50),
    Gpu("A10G-24GB", 24, 125, 1.00),
    Gpu("A100-40GB", 40, 312, 1.30),
    Gpu("L40S-48GB", 48, 362, 1.20),
    Gpu("A100-80GB", 80, 312, 1.80),
    Gpu("H100-80GB", 80, 989, 3.00),
    Gpu("H200-141GB", 141, 989, 4.00),
)


def gpu_for_vram(vram_gb: float) -> Gpu:
    """The cheapest listed GPU with at least `vram_gb` (the largest one if none has that much)."""
    big_enough = [g for g in GPUS if g.vram_gb >= vram_gb - 0.5]
    if not big_enough:
        return max(GPUS, key=lambda g: g.vram_gb)
    return min(big_enough, key=lambda g: (g.vram_gb, g.usd_per_hour))


@dataclass
class MemoryEstimate:
    """Training memory of one method on one model, in GB per component, plus time and cost."""

    method: str
    model: str
    total_gb: float
    breakdown: dict[str, float]
    trainable_params: int
    total_params: int
    adapter_mb: float
    """Size of the artefact a run produces: the adapter, or a 16-bit model copy for full/SFT."""
    assumptions: dict[str, Any] = field(default_factory=dict)
    breakdown_bytes: dict[str, float] = field(default_factory=dict)
    """The breakdown unrounded, in bytes: what the tests compare with torch tensors."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TimeEstimate:
    """Rough training time and cost; assumptions returned with the numbers."""

    hours: float
    cost_usd: float
    gpu: str
    gpus: int
    tokens: int
    flops: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_targets(target_modules: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A preset name (`all_linear`, `attention`, `attention_qv`, `mlp`; the older spellings
    `all-linear` and `qv` too) or module names, comma-separated or a list -> module names."""
    if isinstance(target_modules, str):
        preset = preset_modules(target_modules)
        if preset is not None:
            return preset
        target_modules = [m.strip() for m in target_modules.split(",") if m.strip()]
    unknown = [m for m in target_modules if m not in LINEAR_MODULES]
    if unknown or not target_modules:
        raise AdvisorInputError(
            f"unknown target modules {unknown or target_modules}",
            fix=f"use a preset ({', '.join(TARGET_MODULE_PRESETS)}) or names from "
            f"{', '.join(LINEAR_MODULES)}",
            where="--target-modules",
        )
    return tuple(target_modules)


def adapter_params(shape: ModelShape, method: str, r: int, targets: tuple[str, ...]) -> int:
    """Trainable parameters of an adapter method (per-layer sum x layers)."""
    modules = shape.linear_modules
    per_layer = 0
    for name in targets:
        fan_in, fan_out = modules[name]
        per_layer += r * (fan_in + fan_out)
        per_layer += fan_out if method == "dora" else 0
        per_layer += r if method == "adalora" else 0
    return per_layer * shape.num_layers


def activation_bytes(
    shape: ModelShape,
    *,
    batch_size: int,
    seq_len: int,
    gradient_checkpointing: bool,
    flash_attention: bool = True,
    precision: Precision = "bf16",
) -> float:
    """Korthikanti et al. 2022 per-layer activations, plus the loss's logits (see module doc)."""
    s, b, h, a = seq_len, batch_size, shape.hidden_size, shape.num_heads
    per_layer_full = s * b * h * (34 + (0 if flash_attention else 5 * a * s / h))
    if gradient_checkpointing:
        layers = 2 * s * b * h * shape.num_layers + per_layer_full
    else:
        layers = per_layer_full * shape.num_layers
    scale = 2 if precision == "fp32" else 1  # the formula counts 16-bit tensors
    return layers * scale + LOSS_BYTES_PER_LOGIT * s * b * shape.vocab_size


def estimate_memory(
    shape: ModelShape,
    method: str,
    *,
    r: int = 16,
    target_modules: str | tuple[str, ...] | list[str] = "all_linear",
    batch_size: int = 1,
    seq_len: int = 512,
    gradient_checkpointing: bool = False,
    precision: Precision = "bf16",
    flash_attention: bool = True,
    cuda_overhead_gb: float = CUDA_OVERHEAD_GB,
    device: Device = "cuda",
    cpu_runtime_gb: float = CPU_RUNTIME_GB,
    top_k: int | None = None,
    chunk_size: int | None = None,
) -> MemoryEstimate:
    """Training memory of `method` (inference only for `rag`) on a model of this shape: GPU
    memory on `cuda`, the trial process's peak resident memory on `cpu` (always fp32 there).
    A retrieval method's sequences are `seq_len` plus its passages (`top_k` x `chunk_size`
    words; None: the registry's defaults)."""
    if method not in METHODS:
        raise AdvisorInputError(
            f"unknown method {method!r}", fix=f"use one of {', '.join(METHODS)}", where="--method"
        )
    for option, value in (("--r", r), ("--batch-size", batch_size), ("--seq-len", seq_len)):
        if not 0 < value <= MAX_COUNT:
            raise AdvisorInputError(
                f"`0 < {option} <= {MAX_COUNT}` must hold, got {reprlib.repr(value)}",
                fix=f"pass a whole number from 1 to {MAX_COUNT}",
                where=option,
            )
    if device not in ("cuda", "cpu"):
        raise AdvisorInputError(
            f"unknown device {device!r}", fix="use cuda or cpu", where="--device"
        )
    if device == "cpu":
        precision = "fp32"
    context = passage_tokens(method, top_k=top_k, chunk_size=chunk_size)
    sequence = seq_len + context  # what the model reads: the example and its passages
    n = shape.num_params
    w16 = 4 if precision == "fp32" else 2
    parts: dict[str, float] = {}
    trainable = 0
    artefact_bytes = 0.0
    if method in FULL_METHODS:
        trainable = n
        parts["weights"] = w16 * n
        parts["gradients"] = w16 * n
        parts["optimizer_states"] = (8 if precision == "fp32" else 12) * n
        artefact_bytes = 2 * n
    elif method == "rag":
        kv_cache = 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * sequence
        parts["weights"] = w16 * n
        parts["kv_cache"] = kv_cache * batch_size * w16
    else:
        if method == "prompt_tuning":
            trainable = PROMPT_TOKENS * shape.hidden_size
        else:
            trainable = adapter_params(shape, method, r, resolve_targets(target_modules))
        if method == "qlora":
            # The embeddings, norms and head stay unquantised: 16-bit, or fp32 in an fp32 run
            # (measured on CPU, bench/memory.py: counting them at 2 bytes put SmolLM2's QLoRA
            # weights 35% low).
            quantised = shape.num_layers * shape.linear_params_per_layer
            parts["weights"] = NF4_BYTES * quantised + w16 * (n - quantised)
            parts["quantization_overhead"] = DOUBLE_QUANT_BYTES * quantised
            if device == "cpu":
                parts["mapped_checkpoint"] = CHECKPOINT_BYTES_CPU * quantised
        else:
            parts["weights"] = w16 * n
        if method == "adalora":  # a frozen `ranknum` scalar per adapted matrix
            parts["weights"] += w16 * len(resolve_targets(target_modules)) * shape.num_layers
        parts["adapter_params"] = ADAPTER_BYTES * trainable
        parts["gradients"] = ADAPTER_BYTES * trainable
        parts["optimizer_states"] = (16 if method == "adalora" else 8) * trainable
        artefact_bytes = ADAPTER_BYTES * trainable
    if method != "rag":
        parts["activations"] = activation_bytes(
            shape,
            batch_size=batch_size,
            seq_len=sequence,
            gradient_checkpointing=gradient_checkpointing,
            flash_attention=flash_attention,
            precision=precision,
        )
    if device == "cpu":
        if method not in FULL_METHODS and method != "rag":
            churn = parts["activations"]
            if method == "qlora":  # every matmul dequantises its weight to a fresh fp32 block
                churn = max(
                    churn, CHECKPOINT_BYTES_CPU * shape.num_layers * shape.linear_params_per_layer
                )
            parts["malloc_slack"] = MALLOC_SLACK * churn
        parts["runtime"] = cpu_runtime_gb * GB
    else:
        parts["cuda_overhead"] = cuda_overhead_gb * GB
    breakdown = {name: round(value / GB, 4) for name, value in parts.items()}
    return MemoryEstimate(
        method=method,
        model=shape.name,
        total_gb=round(sum(parts.values()) / GB, 3),
        breakdown=breakdown,
        trainable_params=trainable,
        total_params=n,
        adapter_mb=round(artefact_bytes / 1e6, 2),
        breakdown_bytes=parts,
        assumptions={
            "r": r if method in ADAPTER_METHODS else None,
            "target_modules": list(resolve_targets(target_modules))
            if method in ADAPTER_METHODS
            else None,
            "batch_size": batch_size,
            "seq_len": seq_len,
            "gradient_checkpointing": gradient_checkpointing,
            "precision": f"nf4+{precision}" if method == "qlora" else precision,
            "flash_attention": flash_attention,
            "device": device,
            **retrieval_assumptions(method, top_k=top_k, chunk_size=chunk_size),
        },
    )


def flops_per_token(num_params: int, method: str, gradient_checkpointing: bool) -> float:
    """6N for full training, 4N with frozen weights, +2N when the forward is recomputed."""
    if method == "rag":
        return 0.0
    per_token = 6.0 if method in FULL_METHODS else 4.0
    return (per_token + (2.0 if gradient_checkpointing else 0.0)) * num_params


def estimate_time(
    shape: ModelShape,
    method: str,
    *,
    examples: int,
    seq_len: int,
    epochs: float = 1.0,
    vram_gb: float = 80.0,
    gpus: int = 1,
    gradient_checkpointing: bool = False,
    mfu: float = MFU,
    top_k: int | None = None,
    chunk_size: int | None = None,
) -> TimeEstimate:
    """Hours and USD to train: tokens x FLOPs/token / (GPU peak x MFU), perfect scaling on gpus.
    `rag_lora` trains on its passages too: `seq_len` plus `top_k` x `chunk_size` words."""
    gpu = gpu_for_vram(vram_gb)
    context = passage_tokens(method, top_k=top_k, chunk_size=chunk_size)
    tokens = int(examples * (seq_len + context) * epochs)
    flops = tokens * flops_per_token(shape.num_params, method, gradient_checkpointing)
    seconds = flops / (gpu.bf16_tflops * 1e12 * mfu * max(gpus, 1))
    hours = seconds / 3600
    return TimeEstimate(
        hours=round(hours, 3),
        cost_usd=round(hours * gpu.usd_per_hour * max(gpus, 1), 2),
        gpu=gpu.name,
        gpus=gpus,
        tokens=tokens,
        flops=flops,
    )


def gpus_needed(total_gb: float, vram_gb: float) -> int:
    """GPUs of `vram_gb` whose summed memory holds `total_gb` (sharded / split across devices)."""
    return max(1, math.ceil(total_gb / vram_gb))


__all__ = [
    "ADAPTER_METHODS",
    "FULL_METHODS",
    "GPUS",
    "METHODS",
    "Gpu",
    "MemoryEstimate",
    "TimeEstimate",
    "activation_bytes",
    "adapter_params",
    "estimate_memory",
    "estimate_time",
    "flops_per_token",
    "gpu_for_vram",
    "gpus_needed",
    "resolve_targets",
]

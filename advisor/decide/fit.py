"""Whether an estimate fits the GPUs with room to spare, and what would make it fit.

`estimate_memory` is a lower bound: it counts tensors, not the allocator's fragmentation, the
evaluation batches, a longer-than-usual example or the CUDA context of every further GPU.
Measured 7B LoRA runs need ~16-21 GB (LLaMA-Factory's table; Raschka's Llama-2-7B runs: LoRA
21.33 GB, QLoRA 14.18 GB) where the estimate says ~14-16 GB, so a plan that "fits" at 97% of
the card fails on a real one. A fit here needs 1.15x the estimate on the cards, as Unsloth
Studio's GPU check does (so 13% of every card stays free), and counts the runtime allowance
(`CUDA_OVERHEAD_GB`, in the estimate once) for each further GPU. QLoRA's own 65B-on-one-48 GB
result still fits (39.1 GB of 41.7 GB usable), a 7B 16-bit LoRA on 16 GB no longer does.

Near the edge, or over it, `levers` re-estimates the method with one change at a time (gradient
checkpointing, half the sequence length, batch 1, QLoRA) so the answer names what each buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .estimate import CUDA_OVERHEAD_GB, MemoryEstimate, estimate_memory
from .shapes import ModelShape
from .traits import Traits

HEADROOM_FACTOR = 1.15
"""The cards must hold this multiple of the estimate (Unsloth Studio's GPU check)."""
HEADROOM_SHARE = round(1 - 1 / HEADROOM_FACTOR, 3)
"""The same headroom as a share of each card kept free (0.13)."""
NEAR_EDGE = 0.90
"""A fit that uses more than this share of the usable memory is 'near the edge': levers shown."""
SOURCE = (
    "EVIDENCE.md 'Memory in practice' (measured 7B LoRA ~16-21 GB; Unsloth Studio x1.15); "
    "Raschka, Practical Tips for Finetuning LLMs Using LoRA (LoRA 21.33 GB, QLoRA 14.18 GB)"
)


def usable_gb(vram_gb: float, gpus: int) -> float:
    """Memory a plan may use: every card less its headroom share, less the runtime allowance of
    each GPU beyond the first (the estimate counts one CUDA context)."""
    return vram_gb * gpus / HEADROOM_FACTOR - CUDA_OVERHEAD_GB * (gpus - 1)


def fits(total_gb: float, traits: Traits) -> bool:
    return total_gb <= usable_gb(traits.vram_gb, traits.gpus)


def gpus_needed(total_gb: float, vram_gb: float) -> int:
    """GPUs of `vram_gb` that hold `total_gb` with the headroom kept (at least 1)."""
    per_gpu = vram_gb / HEADROOM_FACTOR - CUDA_OVERHEAD_GB
    if per_gpu <= 0:
        return 10**6  # a card smaller than its own runtime allowance holds nothing
    return max(1, math.ceil((total_gb - CUDA_OVERHEAD_GB) / per_gpu))


MICRO_BATCHES = (8, 4, 2, 1)


def micro_batch(
    shape: ModelShape, method: str, traits: Traits, *, most: int, **kwargs: Any
) -> tuple[int, float]:
    """The largest micro-batch of `MICRO_BATCHES` whose estimate fits with the headroom kept and
    whose batch over all GPUs stays within `most` (1 when none does), and its estimate."""
    allowed = [b for b in MICRO_BATCHES if b * traits.gpus <= max(most, traits.gpus)]
    for b in allowed:
        total = estimate_memory(shape, method, batch_size=b, **kwargs).total_gb
        if fits(total, traits) or b == 1:
            return b, total
    raise AssertionError("unreachable: batch 1 is always allowed")  # pragma: no cover


@dataclass
class Lever:
    """One change and the estimate with it."""

    lever: str
    change: str
    memory_gb: float
    fits: bool


@dataclass
class Fit:
    """The recommended method's memory against the GPUs, with the headroom kept and shown."""

    method: str
    estimate_gb: float
    usable_gb: float
    vram_gb: float
    gpus: int
    headroom_share: float
    runtime_allowance_gb: float
    fits: bool
    near_edge: bool
    share_of_usable: float
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    levers: list[Lever] = field(default_factory=list)
    source: str = SOURCE

    @property
    def summary(self) -> str:
        """One sentence with both figures, for the reasons list."""
        total = self.vram_gb * self.gpus
        state = "fits" if self.fits else "does not fit"
        edge = " (near the edge: see the levers)" if self.near_edge and self.fits else ""
        return (
            f"--vram {self.vram_gb:g} GB x --gpus {self.gpus}: {self.method} needs "
            f"{self.estimate_gb:.2f} GB of {self.usable_gb:.2f} GB usable ({total:g} GB less "
            f"{self.headroom_share:.0%} headroom and {self.runtime_allowance_gb:g} GB runtime "
            f"allowance), {state}{edge}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "estimate_gb": self.estimate_gb,
            "usable_gb": round(self.usable_gb, 3),
            "headroom_factor": HEADROOM_FACTOR,
            "headroom_share": self.headroom_share,
            "runtime_allowance_gb": self.runtime_allowance_gb,
            "fits": self.fits,
            "near_edge": self.near_edge,
            "share_of_usable": round(self.share_of_usable, 3),
            "assumed": {
                "batch_size": self.batch_size,
                "seq_len": self.seq_len,
                "gradient_checkpointing": self.gradient_checkpointing,
            },
            "levers": [vars(lever) for lever in self.levers],
            "summary": self.summary,
            "source": self.source,
        }


def check_fit(
    shape: ModelShape,
    est: MemoryEstimate,
    traits: Traits,
    *,
    r: int,
    target_modules: str | list[str],
) -> Fit:
    """The fit of one estimate, with levers when it is near the edge or over it."""
    usable = usable_gb(traits.vram_gb, traits.gpus)
    assumed = est.assumptions
    share = est.total_gb / usable if usable > 0 else math.inf
    fit = Fit(
        method=est.method,
        estimate_gb=est.total_gb,
        usable_gb=usable,
        vram_gb=traits.vram_gb,
        gpus=traits.gpus,
        headroom_share=HEADROOM_SHARE,
        runtime_allowance_gb=CUDA_OVERHEAD_GB * traits.gpus,
        fits=share <= 1,
        near_edge=share > NEAR_EDGE,
        share_of_usable=share,
        batch_size=assumed["batch_size"],
        seq_len=assumed["seq_len"],
        gradient_checkpointing=assumed["gradient_checkpointing"],
    )
    if fit.near_edge and est.method != "rag":
        fit.levers = levers(shape, est, traits, r=r, target_modules=target_modules)
    return fit


def levers(
    shape: ModelShape,
    est: MemoryEstimate,
    traits: Traits,
    *,
    r: int,
    target_modules: str | list[str],
) -> list[Lever]:
    """The estimate with each lever pulled alone (those that change something here)."""
    a = est.assumptions
    base = {
        "r": r,
        "target_modules": target_modules,
        "batch_size": a["batch_size"],
        "seq_len": a["seq_len"],
        "gradient_checkpointing": a["gradient_checkpointing"],
    }
    changes: list[tuple[str, str, str, dict[str, Any]]] = []
    if not a["gradient_checkpointing"]:
        changes.append(("gradient_checkpointing", "recompute activations in the backward pass",
                        est.method, {"gradient_checkpointing": True}))  # fmt: skip
    if a["seq_len"] >= 128:
        half = a["seq_len"] // 2
        changes.append(("seq_len", f"--seq-len {half} (cut or drop the longest examples)",
                        est.method, {"seq_len": half}))  # fmt: skip
    if a["batch_size"] > 1:
        changes.append(("batch_size", "batch 1 with more gradient accumulation", est.method,
                        {"batch_size": 1}))  # fmt: skip
    if est.method not in ("qlora", "prompt_tuning"):
        changes.append(("qlora", "QLoRA: LoRA on a 4-bit NF4 base", "qlora", {}))
    out = []
    for lever, change, method, over in changes:
        total = estimate_memory(shape, method, **{**base, **over}).total_gb
        out.append(Lever(lever, change, total, fits(total, traits)))
    return out


__all__ = [
    "HEADROOM_FACTOR",
    "HEADROOM_SHARE",
    "NEAR_EDGE",
    "Fit",
    "Lever",
    "check_fit",
    "fits",
    "gpus_needed",
    "levers",
    "micro_batch",
    "usable_gb",
]

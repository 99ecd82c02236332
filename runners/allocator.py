"""Opt-in: hand freed host memory back to the kernel while a trial trains on the CPU (glibc).

Measured (bench/memory.py, SmolLM2 LoRA r=8 on all linear layers, batch 4 x 128, fp32): with
glibc's default malloc a training step peaked at 2.4 GiB of resident memory, 1 GiB more than the
tensors alive at any moment, because freed activations stayed in malloc's heap. glibc serves
blocks over its mmap threshold with mmap and unmaps them when freed, but the threshold starts at
128 KiB and grows (up to 32 MiB) each time a large block is freed, so after the first step most
activations come from the heap again, where freed space fragments and is kept. Fixing the
threshold at 64 KiB (`mallopt(M_MMAP_THRESHOLD)`, which also stops it from growing) brought the
same step to 1.9 GiB. Trimming the heap after each step (`malloc_trim`) did not: the excess is
inside a step. The price is speed: every large block is then a fresh mapping whose pages fault
in zeroed, and steps ran markedly slower (BENCHMARKS.md, "Memory: estimator vs measured"), so
this is off by default and the estimator counts glibc's slack instead (`advisor.decide.estimate`).

`ADVISOR_MMAP_THRESHOLD=65536` (bytes) turns it on for trials whose host memory is the limit; a
user who sets glibc's own `MALLOC_MMAP_THRESHOLD_` keeps their setting.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3
SUGGESTED_THRESHOLD = 64 * 1024
ENV = "ADVISOR_MMAP_THRESHOLD"


def return_freed_memory(threshold: int | None = None) -> int | None:
    """Fix glibc's mmap threshold for this process at `threshold` (default: the value of
    `ADVISOR_MMAP_THRESHOLD`; unset: leave malloc alone); the threshold set, or None."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or platform.libc_ver()[0] != "glibc":
        return None
    if threshold is None:
        raw = os.environ.get(ENV, "")
        threshold = int(raw) if raw.isdigit() else 0
    if threshold <= 0:
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return threshold if libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1 else None

"""A trial bigger than one process: torchrun starts N ranks, the Trainer runs them as DDP.

The engine is PyTorch's: `python -m torch.distributed.run --standalone --nproc_per_node N -m
runners CONFIG RESULT` starts N copies of the worker with RANK/WORLD_SIZE set, and transformers'
Trainer (through accelerate) wraps the model in DistributedDataParallel and shards the batches.
This module only decides what is *not* the engine's business:

- one voice: the ranks inherit the launcher's stdout and stdin, so rank 0 alone speaks the line
  protocol of `runners.reporting`, writes the result, scores generations and saves the adapter;
  the other ranks report nowhere;
- one decision: rank 0's prune answer is broadcast, so every rank stops at the same step and no
  rank waits forever in a collective its peers left;
- explicit backend: gloo on CPU (accelerate would prefer MPI where torch has it), NCCL on GPUs.

Each rank's batch is `train.batch_size`: the effective batch is N x batch_size. FSDP is not
wired in; DDP replicates the model on each rank (see the study field `trial.processes`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from runners.errors import TrialInputError
from runners.reporting import Reporter


def world_size() -> int:
    """How many ranks this trial runs on (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the rank that reports, writes the result and saves the adapter."""
    return rank() == 0


def ddp_backend(device: str) -> str | None:
    """The process-group backend for a multi-rank trial on `device`; None for one process."""
    if world_size() <= 1:
        return None
    return "nccl" if device == "cuda" else "gloo"


def check_world(device: str) -> None:
    """Refuse a multi-rank GPU trial with fewer GPUs than ranks, before anything is loaded.

    (QLoRA needs no rule here: measured on CPU, 2 ranks of it train with the same loss as one
    process at twice the batch.)
    """
    ranks = world_size()
    if ranks <= 1 or device != "cuda":
        return
    import torch

    visible = torch.cuda.device_count()
    if visible < ranks:
        raise TrialInputError(
            f"trial.processes = {ranks} needs one GPU per process, but {visible} are visible",
            fix=f"set trial.processes to at most {visible} (or widen CUDA_VISIBLE_DEVICES)",
            where="trial.processes",
        )


def bind_device(device: str) -> None:
    """On GPUs, make `cuda` mean this rank's own GPU (LOCAL_RANK) before the model loads."""
    if device == "cuda" and world_size() > 1:
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_decision(decision: bool) -> bool:
    """Rank 0's `decision`, on every rank (unchanged outside a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return decision
    box: list[Any] = [decision if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


class RankReporter:
    """Rank 0 reports to `inner`; every rank acts on rank 0's prune answer.

    The Trainer calls the reporting callback on every rank (eval metrics are already gathered
    across ranks, so all ranks see the same loss); forwarding from rank 0 alone sends each event
    once, and the broadcast keeps the ranks in step.
    """

    def __init__(self, inner: Reporter) -> None:
        self._inner = inner
        self._main = is_main()

    def report_eval(self, step: int, eval_loss: float) -> bool:
        decision = self._inner.report_eval(step, eval_loss) if self._main else False
        return broadcast_decision(decision)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self._main:
            self._inner.log(step, metrics)

    def phase(self, phase: str) -> None:
        if self._main:
            self._inner.phase(phase)


def finish() -> None:
    """Leave the process group, if one was made (avoids torch's warning at exit)."""
    dist = sys.modules.get("torch.distributed")  # never import torch just to find out
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

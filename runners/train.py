"""One training loop for every method: trl's SFTTrainer, with eval losses reported for pruning.

Methods differ only in how the model is loaded and prepared (`runners.methods`); everything here
is shared. The datasets come tokenised, with `labels` already masked (`runners.data.to_dataset`:
every assistant turn of a conversation, every token of raw text): trl 1.x sees `input_ids` and
does not tokenise again, keeps a `labels` column as it is, and its collator pads labels with
-100. The eval loss therefore uses the same masks as training. trl 1.x defaults to bf16 and
gradient checkpointing, 13x slower on this CPU, so both are set explicitly from the resolved
device and precision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runners import distributed
from runners.config import TrainConfig, TrialConfig
from runners.errors import TrialInputError
from runners.reporting import NullReporter, Reporter

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class Placement:
    """Where and in which precision a trial runs, resolved from `auto` before anything loads."""

    device: str
    precision: str

    @property
    def dtype(self) -> Any:
        """Weights dtype: bf16 weights for bf16 runs; fp16 runs keep fp32 weights (AMP)."""
        import torch

        return torch.bfloat16 if self.precision == "bf16" else torch.float32


def auto_precision(device: str) -> str:
    """`precision: auto`: bf16 on a GPU that computes it natively (Ampere and later), fp16 mixed
    precision on an older GPU, fp32 on the CPU.

    `including_emulation=False`: torch's default also answers True on a T4 or V100, where bf16
    runs emulated and slower than fp32; fp16 AMP (fp32 master weights) is what those GPUs are for.
    """
    import torch

    if device != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


def resolve_placement(config: TrialConfig) -> Placement:
    """CUDA when present (bf16 where native, else fp16), else CPU fp32; impossible requests
    fail early, naming the field and the fix."""
    import torch

    has_cuda = torch.cuda.is_available()
    device = config.device if config.device != "auto" else ("cuda" if has_cuda else "cpu")
    if device == "cuda" and not has_cuda:
        raise TrialInputError(
            "device 'cuda' requested but CUDA is not available",
            fix="set device: auto or cpu",
            where="device",
        )
    precision = config.precision
    if precision == "auto":
        precision = auto_precision(device)
    if device == "cpu" and precision != "fp32":
        raise TrialInputError(
            f"precision {precision!r} needs CUDA; this trial runs on the CPU",
            fix="set precision: auto or fp32",
            where="precision",
        )
    if device == "cpu" and "paged" in config.train.optimizer:
        raise TrialInputError(
            f"optimizer {config.train.optimizer!r} pages optimizer state through CUDA memory, "
            "but this trial runs on the CPU",
            fix="set train.optimizer: adamw_torch (or leave it out) on CPU",
            where="train.optimizer",
        )
    return Placement(device=device, precision=precision)


def trainable_in_run_precision(model: Any, placement: Placement) -> None:
    """Keep trainable weights in fp32 unless the run is bf16.

    trl's SFTTrainer casts a 4-bit model's trainable (adapter) weights to bf16, as the QLoRA
    paper does. That suits bf16 runs only: fp16 mixed precision keeps fp32 master weights (a GPU
    without native bf16 would otherwise update emulated bf16 weights), and an fp32 run promises
    fp32. The optimizer does not exist yet when this runs, so it is built on the fp32 weights.
    """
    if placement.precision == "bf16":
        return
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()


@dataclass
class TrainOutcome:
    """What training measured; `pruned` when the reporter asked to stop."""

    steps: int = 0
    train_loss: float | None = None
    eval_curve: list[tuple[int, float]] = field(default_factory=list)
    pruned: bool = False
    train_seconds: float = 0.0
    """The training steps alone: `trainer.train()` minus the evaluations it runs (eval_steps,
    and transformers' own eval after the last step), so tokens/s measures training."""
    eval_loss_seconds: float = 0.0
    """Evaluations inside `trainer.train()` (the eval-loss curve the pruner reads)."""
    tokens: int = 0
    final_eval_loss: float | None = None


def sft_config(cfg: TrainConfig, *, seed: int, placement: Placement, output_dir: Path) -> Any:
    """The SFTConfig of a trial: every default that matters is set here, explicitly."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        optim=cfg.optimizer,
        max_length=cfg.max_seq_length,
        completion_only_loss=False,  # labels come masked; see the module docstring
        packing=False,  # raw text is packed by runners.corpus, not by trl
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        bf16=placement.precision == "bf16",
        fp16=placement.precision == "fp16",
        use_cpu=placement.device == "cpu",
        gradient_checkpointing=cfg.gradient_checkpointing,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        ddp_backend=distributed.ddp_backend(placement.device),
    )


def _reporting_callback(reporter: Reporter, outcome: TrainOutcome) -> Any:
    from transformers import TrainerCallback

    class ReportingCallback(TrainerCallback):
        """Forwards logs and eval losses; stops training when the reporter says prune."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if numbers:
                reporter.log(state.global_step, numbers)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if loss is None:
                return
            outcome.eval_curve.append((state.global_step, float(loss)))
            if reporter.report_eval(state.global_step, float(loss)):
                outcome.pruned = True
                control.should_training_stop = True

    return ReportingCallback()


def _time_evaluations(trainer: Any, outcome: TrainOutcome) -> None:
    """Add the time of every `trainer.evaluate()` call to `outcome.eval_loss_seconds` (the Trainer's
    loop calls it through the instance, so wrapping the bound method sees each one)."""
    evaluate = trainer.evaluate

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            outcome.eval_loss_seconds += time.perf_counter() - start

    trainer.evaluate = timed


def train(
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    cfg: TrainConfig,
    *,
    seed: int,
    placement: Placement,
    output_dir: Path,
    reporter: Reporter | None = None,
    callbacks: list[Any] | None = None,
) -> TrainOutcome:
    """Train `model` (already prepared by its method) and evaluate the eval loss along the way.

    `callbacks` are the method's own TrainerCallbacks (e.g. AdaLoRA's rank allocation)."""
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    reporter = reporter or NullReporter()
    outcome = TrainOutcome()
    trainer = SFTTrainer(
        model=model,
        args=sft_config(cfg, seed=seed, placement=placement, output_dir=output_dir),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=[_reporting_callback(reporter, outcome), *(callbacks or [])],
    )
    # The worker's stdout carries the protocol: no printed logs or progress bars from here.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainable_in_run_precision(trainer.model, placement)  # before train() builds the optimizer
    _time_evaluations(trainer, outcome)
    start = time.perf_counter()
    result = trainer.train()
    outcome.train_seconds = time.perf_counter() - start - outcome.eval_loss_seconds
    outcome.steps = trainer.state.global_step
    outcome.train_loss = float(result.training_loss)
    outcome.tokens = int(trainer.state.num_input_tokens_seen or 0)
    if outcome.pruned or (outcome.eval_curve and outcome.eval_curve[-1][0] == outcome.steps):
        outcome.final_eval_loss = outcome.eval_curve[-1][1]
    else:
        metrics = trainer.evaluate()
        outcome.final_eval_loss = float(metrics["eval_loss"])
    return outcome


def eval_loss(
    model: Any,
    tokenizer: Any,
    eval_dataset: Any,
    cfg: TrainConfig,
    *,
    seed: int,
    placement: Placement,
    output_dir: Path,
) -> float:
    """Eval loss of a model without training it (the untuned baseline), same loss as training."""
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=sft_config(cfg, seed=seed, placement=placement, output_dir=output_dir),
        train_dataset=eval_dataset,  # required by SFTTrainer; only tokenised, never trained on
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return float(trainer.evaluate()["eval_loss"])

"""One trial end to end: seed, load, prepare via the method registry, train, evaluate, save.

Returns a `TrialResult` whatever happens: an exception becomes `state="failed"` with
`error="Type: message"` (the traceback goes to stderr), so a study always has something to record.
Seeding happens immediately before the method wraps the model, because peft initialises adapter
weights from the RNG as it is *then*; same seed, same versions, CPU -> bitwise-equal runs.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from runners import distributed
from runners.allocator import return_freed_memory
from runners.chat import Truncation
from runners.config import TrialConfig, TrialResult
from runners.corpus import perplexity
from runners.data import Examples, TrainingSet, records_of, task_examples, to_dataset, training_set
from runners.errors import TrialInputError
from runners.evaluate import check_metric_fits, evaluate_task, metric_for
from runners.forgetting_trial import ForgettingMeasure
from runners.methods import get_method
from runners.models import load_model_and_tokenizer
from runners.reporting import NullReporter, Reporter
from runners.retrieval import retrieve_into
from runners.train import eval_loss, resolve_placement, train

VERSIONED = ("torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes")
MB = 1024 * 1024


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs (transformers.set_seed covers all three, CUDA included)."""
    import random

    import numpy as np
    import torch
    from transformers import set_seed

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    set_seed(seed)


def package_versions() -> dict[str, str]:
    """Installed versions of the libraries a result depends on (missing ones are skipped)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total); peft's own count when available (it unpacks 4-bit weights)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def peak_memory_mb(device: str) -> float:
    """Peak CUDA memory allocated on GPU; the process's peak resident set size on CPU (MiB)."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / MB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def peak_reserved_mb(device: str) -> float | None:
    """Peak CUDA memory reserved by the caching allocator (MiB); None on CPU.

    Allocated memory is what tensors used; reserved is what the GPU had to hold for them
    (fragmentation and cached blocks included), the figure that decides an out-of-memory error.
    """
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_reserved() / MB


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / MB


def describe_error(exc: BaseException) -> str:
    """`Type: message`, with advice for out-of-memory errors."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return (
            f"{type(exc).__name__}: out of memory ({detail}); "
            "reduce train.batch_size or train.max_seq_length, enable gradient_checkpointing, "
            "or use qlora"
        )
    return f"{type(exc).__name__}: {exc}"


def run_trial(config: TrialConfig, reporter: Reporter | None = None) -> TrialResult:
    """Run one trial and measure it; never raises for a failing trial (see module docstring)."""
    reporter = reporter or NullReporter()
    start = time.perf_counter()
    result = TrialResult(
        state="failed",
        metric=config.eval.metric,
        versions=package_versions(),
        world_size=distributed.world_size(),
    )
    try:
        _run(config, reporter, result)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        result.state = "failed"
        result.error = describe_error(exc)
    result.wall_seconds = time.perf_counter() - start
    # Measuring must not turn a result into a crash: a figure that cannot be read stays None.
    with contextlib.suppress(Exception):
        result.peak_memory_mb = peak_memory_mb(result.device)
    with contextlib.suppress(Exception):
        result.peak_reserved_mb = peak_reserved_mb(result.device)
    return result


def _run(config: TrialConfig, reporter: Reporter, result: TrialResult) -> None:
    try:
        _run_steps(config, reporter, result)
    finally:
        _remove_if_empty(Path(config.output_dir) / "trainer")


def _run_steps(config: TrialConfig, reporter: Reporter, result: TrialResult) -> None:
    placement = resolve_placement(config)
    result.device, result.precision = placement.device, placement.precision
    if placement.device == "cpu":  # before the model's tensors are allocated (opt-in, see there)
        return_freed_memory()
    distributed.check_world(placement.device)
    distributed.bind_device(placement.device)
    method = None if config.baseline else get_method(config.method.name)
    if method is not None and method.needs_cuda and placement.device != "cuda":
        raise TrialInputError(
            f"method {method.name!r} needs CUDA, which this machine lacks",
            fix="choose lora or dora on CPU",
            where="method.name",
        )
    metric = metric_for(config.eval)
    # Data errors are the cheapest to find: before any model is loaded.
    training = training_set(config.data, seed=config.seed)
    evals = task_examples(config.data, eval_set=True)
    _check_data(config, training, evals)
    check_metric_fits(metric, training.layout)
    if method is not None and method.retrieval:  # passages into the prompts: runners.retrieval
        training, evals = retrieve_into(config, training, evals, result, method)
    result.layout = training.layout.name
    result.train_examples = training.task_examples
    result.replay_examples = len(training.replay_rows)
    records = records_of(evals.examples) if metric.needs_generation else []
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer_dir = output_dir / "trainer"

    reporter.phase("load")
    started = time.perf_counter()
    seed_everything(config.seed)
    extra = (
        method.load_kwargs(config.method, device=placement.device, dtype=placement.dtype)
        if method
        else {}
    )
    model, tokenizer = load_model_and_tokenizer(
        config.model, device=placement.device, dtype=placement.dtype, **extra
    )
    max_length, packing = config.train.max_seq_length, config.data.packing
    train_ds, cut, _ = to_dataset(
        training.examples, tokenizer, max_length=max_length, packing=packing
    )
    eval_ds, _, eval_sequences = to_dataset(
        evals.examples, tokenizer, max_length=max_length, packing=packing
    )
    _record_truncation(result, cut, max_length)
    _require_rows(train_ds, eval_ds, max_length)
    if method is not None:
        seed_everything(config.seed)  # peft draws the adapter's initial weights now
        model = method.prepare(model, config.method, max_steps=config.train.max_steps)
    result.load_seconds = time.perf_counter() - started
    result.trainable_params, result.total_params = count_params(model)
    trains = method is not None and method.trains
    if not trains:
        result.trainable_params = 0
    measuring = None
    if _measures(config):
        measuring = ForgettingMeasure(
            model, tokenizer, config, result, placement=placement, load_kwargs=extra
        )

    if not trains:
        reporter.phase("evaluate")
        started = time.perf_counter()
        result.eval_loss = eval_loss(
            model,
            tokenizer,
            eval_ds,
            config.train,
            seed=config.seed,
            placement=placement,
            output_dir=trainer_dir,
        )
    else:
        if measuring is not None:
            measuring.before_training()
        reporter.phase("train")
        outcome = train(
            model,
            tokenizer,
            train_ds,
            eval_ds,
            config.train,
            seed=config.seed,
            placement=placement,
            output_dir=trainer_dir,
            reporter=reporter,
            callbacks=method.callbacks(model),
        )
        result.steps, result.train_loss = outcome.steps, outcome.train_loss
        result.eval_curve, result.eval_loss = outcome.eval_curve, outcome.final_eval_loss
        result.train_seconds = outcome.train_seconds
        result.eval_loss_seconds = outcome.eval_loss_seconds
        if outcome.train_seconds > 0 and outcome.tokens:
            result.tokens_per_second = outcome.tokens / outcome.train_seconds
        if outcome.pruned:
            result.state = "pruned"
            return
        reporter.phase("evaluate")
        started = time.perf_counter()

    if not distributed.is_main():
        # Rank 0 scores the generations and saves the adapter; the ranks' weights are equal.
        result.state = "complete"
        return
    if metric.needs_generation:
        evaluated = evaluate_task(
            model,
            tokenizer,
            records,
            config.eval,
            generations_path=output_dir / "generations.jsonl",
        )
        result.score = evaluated.score
        result.generations_path = str(evaluated.generations_path)
        result.generation_tokens = evaluated.stats.new_tokens
        result.generation_tokens_per_second = evaluated.stats.tokens_per_second
        result.generation_merged = evaluated.merged
    elif metric.name == "perplexity":
        result.score = perplexity(model, eval_sequences, batch_size=config.eval.batch_size)
    else:
        result.score = result.eval_loss
    result.eval_seconds = time.perf_counter() - started

    if measuring is not None:
        reporter.phase("forgetting")
        measuring.after_training(untouched=not trains)
    if method is not None and trains:
        reporter.phase("save")
        _save(model, method.peft, output_dir, result)
    result.state = "complete"


def _check_data(config: TrialConfig, training: TrainingSet, evals: Examples) -> None:
    """The eval file holds the same kind of data as the training file; packing is for text."""
    if training.layout.kind != evals.layout.kind:
        raise TrialInputError(
            f"the training file is in the {training.layout.name} layout ({training.layout.kind}) "
            f"but the eval file in the {evals.layout.name} layout ({evals.layout.kind})",
            fix="give data.train and data.eval the same kind of data (both chat, or both text)",
            where="data.eval_path",
        )
    if config.data.packing and training.layout.kind != "text":
        raise TrialInputError(
            f"data.packing concatenates raw text documents, but the data is in the "
            f"{training.layout.name} layout (conversations)",
            fix="set data.packing to false for chat data",
            where="data.packing",
        )


def _record_truncation(result: TrialResult, cut: Truncation, max_length: int) -> None:
    """Counts in the result; a warning line in the trial's log (stderr) when anything was cut."""
    result.truncated_rows = cut.rows
    result.truncated_assistant_turns = cut.assistant_turns
    result.truncated_context_turns = cut.context_turns
    result.untrained_rows = cut.untrained_rows
    result.truncated_documents = cut.documents
    warning = cut.warning(max_length)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def _require_rows(train_ds: Any, eval_ds: Any, max_length: int) -> None:
    """A set whose every row lost its answers to truncation leaves nothing to train or score."""
    for name, dataset in (("training", train_ds), ("eval", eval_ds)):
        if len(dataset) == 0:
            raise TrialInputError(
                f"no row of the {name} set keeps an assistant token within "
                f"train.max_seq_length={max_length}: every answer was cut",
                fix="raise train.max_seq_length, or shorten the conversations' context",
                where="train.max_seq_length",
            )


def _measures(config: TrialConfig) -> bool:
    """Forgetting is measured on rank 0 only (the ranks' weights are equal), when asked for."""
    return config.eval.forgetting and distributed.is_main()


def _remove_if_empty(path: Path) -> None:
    """The trainer's output_dir stays empty (save_strategy="no"): do not leave it behind."""
    with contextlib.suppress(OSError):
        path.rmdir()


def _save(model: Any, is_peft: bool, output_dir: Path, result: TrialResult) -> None:
    """Adapters are saved; a fully fine-tuned model is not (hundreds of MB per trial): its size
    is reported as the size of its trainable weights."""
    if is_peft:
        adapter = output_dir / "adapter"
        model.save_pretrained(adapter)
        result.adapter_dir = str(adapter)
        result.adapter_mb = dir_mb(adapter)
    else:
        size = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        result.adapter_mb = size / MB

"""Task-metric evaluation by batched greedy generation on the held-out set.

The answers come from `runners.generation` (a merged copy of the adapter, length-sorted batches,
the KV cache, a stop at the end of each answer). A sample of generations with per-example scores
is written as JSONL for the trial's artefacts. Prompts are rendered by
`runners.chat.prompt_text`, with the template the trial trains with.

A chat eval row is scored on its last assistant turn, asked with the turns before it
(`runners.data.eval_records`); raw text is scored by perplexity, never by generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.config import EvalConfig
from runners.data import Messages
from runners.errors import TrialInputError
from runners.generation import GenerationStats, generate, generation_model
from runners.layouts import Layout
from runners.metrics import Metric, get_metric


@dataclass
class EvalOutcome:
    """Score on the eval set, the predictions, and where the sample of generations went."""

    score: float
    predictions: list[str]
    generations_path: Path | None
    stats: GenerationStats
    merged: bool


def metric_for(cfg: EvalConfig) -> Any:
    """The metric object from `runners.metrics`; unknown names are the user's to fix."""
    try:
        return get_metric(cfg.metric)
    except ValueError as exc:
        raise TrialInputError(str(exc), fix="choose a known metric", where="eval.metric") from None


def check_metric_fits(metric: Metric, layout: Layout) -> None:
    """A generation metric needs answers to compare (a chat layout); perplexity needs raw text."""
    if layout.kind == "text" and metric.needs_generation:
        raise TrialInputError(
            f"eval.metric {metric.name!r} scores generated answers, but the data is raw text "
            f"(the {layout.name} layout), which has no answers to compare",
            fix="set eval.metric to perplexity (or eval_loss) for a text corpus",
            where="eval.metric",
        )
    if layout.kind == "chat" and metric.name == "perplexity":
        raise TrialInputError(
            f"eval.metric 'perplexity' is for raw text, but the data is in the {layout.name} "
            "layout (conversations)",
            fix="set eval.metric to eval_loss or a generation metric (exact_match, rouge_l, "
            "json_match, accuracy) for chat data",
            where="eval.metric",
        )


def evaluate_task(
    model: Any,
    tokenizer: Any,
    records: list[tuple[Messages, str]],
    cfg: EvalConfig,
    *,
    generations_path: Path | None = None,
) -> EvalOutcome:
    """Generate for every eval record, score with the configured metric, log a sample."""
    metric = metric_for(cfg)
    prompts = [p for p, _ in records]
    references = [r for _, r in records]
    stats = GenerationStats()
    with generation_model(model, merge=cfg.merge_for_generation) as generator:
        merged = generator is not model
        predictions = generate(
            generator,
            tokenizer,
            prompts,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
            stats=stats,
        )
    per_example = [metric.score_one(p, r) for p, r in zip(predictions, references, strict=True)]
    score = sum(per_example) / len(per_example) if per_example else 0.0
    if generations_path is not None:
        generations_path.parent.mkdir(parents=True, exist_ok=True)
        with generations_path.open("w", encoding="utf-8") as fh:
            rows = zip(prompts, references, predictions, per_example, strict=True)
            for i, (prompt, reference, prediction, value) in enumerate(rows):
                if i >= cfg.samples_to_log:
                    break
                row = {
                    "prompt": prompt[-1]["content"],
                    "reference": reference,
                    "prediction": prediction,
                    "score": value,
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return EvalOutcome(
        score=score,
        predictions=predictions,
        generations_path=generations_path,
        stats=stats,
        merged=merged,
    )

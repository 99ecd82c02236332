"""Task-metric evaluation by batched greedy generation on the held-out set.

Generation is batched (one sequence generates ~10 tokens/s here, eight together ~25 tokens/s) with
left padding so every prompt ends where generation starts; only the new tokens are decoded. A
sample of generations with per-example scores is written as JSONL for the trial's artefacts.
Prompts are rendered by `runners.chat.prompt_text`, with the template the trial trains with.

A chat eval row is scored on its last assistant turn, asked with the turns before it
(`runners.data.eval_records`); raw text is scored by perplexity, never by generation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.chat import prompt_text
from runners.config import EvalConfig
from runners.data import Messages
from runners.errors import TrialInputError
from runners.layouts import Layout
from runners.metrics import Metric, get_metric


@dataclass
class EvalOutcome:
    """Score on the eval set, the predictions, and where the sample of generations went."""

    score: float
    predictions: list[str]
    generations_path: Path | None


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


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[Messages],
    *,
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """Greedy completions of chat `prompts`, decoded without the prompt and special tokens."""
    import torch

    texts = [prompt_text(tokenizer, p) for p in prompts]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = []
    try:
        for start in range(0, len(texts), max(1, batch_size)):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                generated = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new = generated[:, batch["input_ids"].shape[1] :]
            out.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return out


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
    predictions = generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
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
    return EvalOutcome(score=score, predictions=predictions, generations_path=generations_path)

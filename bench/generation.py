"""Generation eval against its hardware bound: SmolLM2-135M, the demo's eval set, 2 CPU cores.

The bound: generating N answers can at best cost what one forward pass over the same sequences
(prompt + the answer it generated) costs, since a teacher-forced pass computes exactly the
logits that greedy decoding computes one token at a time. So the figure is
`bound tokens/s = answer tokens / seconds of that forward pass` (in the same length-sorted
batches), against `answer tokens / seconds of generation`; the issue's goal is >= half.

Three ways to generate are timed on the same prompts with the same adapter:
- `before`: the trial's generation until issue 18: batches of `eval.batch_size` (8) in file
  order through the unmerged peft model;
- `after, unmerged`: length-sorted batches of the whole eval set, the KV cache, stop tokens;
- `after` (what a trial does now): the same from a merged copy (`runners.generation`).
The scores (`json_match`) of the merged and unmerged answers are compared too.

With `--adapter DIR` (a trained demo adapter, e.g. from `advisor export`) the answers stop where
a trained model stops; without it a LoRA with random B (std 0.02) stands in, which answers in
prose up to `max_new_tokens` (the worst case for stopping).

    .venv/bin/python bench/generation.py [--adapter DIR] [--batch-size 32] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from _common import ROOT, calm_threads, fmt, provenance, table, write_section

TITLE = "Generation eval against the hardware bound (CPU, SmolLM2)"
STUDY = ROOT / "studies" / "demo.yaml"


def load(adapter: str | None) -> tuple[Any, Any, list, list[str], Any]:
    import torch
    import yaml
    from peft import LoraConfig, PeftModel, get_peft_model

    from runners.config import ModelRef
    from runners.models import load_model_and_tokenizer

    spec = yaml.safe_load(STUDY.read_text())
    model, tokenizer = load_model_and_tokenizer(
        ModelRef(source="smollm2-135m"), device="cpu", dtype=torch.float32
    )
    data = spec["data"]
    rows = [json.loads(line) for line in (STUDY.parent / data["eval"]).read_text().splitlines()]
    rows = rows[: data["max_eval_examples"]]
    prompts = [
        [
            {"role": "system", "content": data["system_prompt"]},
            {"role": "user", "content": row[data["prompt_field"]]},
        ]
        for row in rows
    ]
    references = [row[data["response_field"]] for row in rows]
    if adapter:
        peft_model = PeftModel.from_pretrained(model, adapter)
    else:
        config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0)
        peft_model = get_peft_model(model, config)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    return peft_model, tokenizer, prompts, references, spec


def forward_bound(model: Any, tokenizer: Any, prompts: list, answers: list[str], size: int):
    """Seconds of teacher-forced forward passes over prompt + answer, in length-sorted batches."""
    import torch

    from runners.chat import prompt_text

    texts = [prompt_text(tokenizer, p) + a for p, a in zip(prompts, answers, strict=True)]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    tokenizer.padding_side = "left"
    seconds = 0.0
    for start in range(0, len(order), size):
        batch = tokenizer.pad(
            {"input_ids": [encoded[i] for i in order[start : start + size]]}, return_tensors="pt"
        )
        with torch.inference_mode():
            began = time.perf_counter()
            model(**batch, use_cache=False)
            seconds += time.perf_counter() - began
    return seconds


def run(args: argparse.Namespace) -> dict[str, Any]:
    from runners.generation import GenerationStats, generate, generation_model
    from runners.metrics import get_metric

    model, tokenizer, prompts, references, spec = load(args.adapter)
    new_tokens = spec["eval"]["max_new_tokens"]
    old_batch = spec["eval"]["batch_size"]
    metric = get_metric(spec["metric"])
    ways: dict[str, dict[str, Any]] = {}

    def timed(name: str, generator: Any, batches: list[list]) -> list[str]:
        stats = GenerationStats()
        answers: list[str] = []
        for batch in batches:
            answers += generate(
                generator,
                tokenizer,
                batch,
                max_new_tokens=new_tokens,
                batch_size=len(batch),
                stats=stats,
            )
        scores = [metric.score_one(a, r) for a, r in zip(answers, references, strict=True)]
        ways[name] = {
            "seconds": stats.seconds,
            "tokens": stats.new_tokens,
            "score": sum(scores) / len(scores),
            "answers": answers,
        }
        print(f"{name}: {stats.seconds:.1f} s, {stats.new_tokens} tokens", flush=True)
        return answers

    whole = [prompts[i : i + args.batch_size] for i in range(0, len(prompts), args.batch_size)]
    in_file_order = [prompts[i : i + old_batch] for i in range(0, len(prompts), old_batch)]
    generate(model, tokenizer, prompts[:2], max_new_tokens=2, batch_size=2)  # warm-up
    timed("before", model, in_file_order)
    timed("after, unmerged", model, whole)
    with generation_model(model) as merged:
        answers = timed("after", merged, whole)
        forward_bound(merged, tokenizer, prompts[:2], answers[:2], 2)  # warm-up
        bound = forward_bound(merged, tokenizer, prompts, answers, args.batch_size)
    same = sum(
        a == b
        for a, b in zip(ways["after"]["answers"], ways["after, unmerged"]["answers"], strict=True)
    )
    return {
        "ways": ways,
        "bound_seconds": bound,
        "same_answers": same,
        "prompts": len(prompts),
        "max_new_tokens": new_tokens,
        "old_batch": old_batch,
    }


def render(out: dict[str, Any], args: argparse.Namespace) -> str:
    ways, bound = out["ways"], out["bound_seconds"]
    tokens = ways["after"]["tokens"]
    bound_rate = tokens / bound
    rows = []
    for name, way in ways.items():
        rate = way["tokens"] / way["seconds"]
        batching = (
            f"{out['old_batch']} in file order"
            if name == "before"
            else f"{args.batch_size}, sorted"
        )
        rows.append(
            [
                name,
                batching,
                fmt(way["seconds"]),
                way["tokens"],
                fmt(rate),
                f"{rate / bound_rate:.2f}",
                f"{way['score']:.3f}",
            ]
        )
    rows.append(
        [
            "bound: one forward pass over prompt + answer",
            "sorted",
            fmt(bound),
            tokens,
            fmt(bound_rate),
            "1.00",
            "-",
        ]
    )
    after = ways["after"]["tokens"] / ways["after"]["seconds"]
    verdict = "met" if after >= 0.5 * bound_rate else "MISSED"
    adapter = (
        f"the trained adapter `{args.adapter}`"
        if args.adapter
        else ("a LoRA r=8 all-linear with random B (std 0.02), no trained adapter")
    )
    return "\n".join(
        [
            *provenance(float(args.load)),
            f"- what: the demo's {out['prompts']} eval prompts, greedy, <= "
            f"{out['max_new_tokens']} new tokens, {adapter}; tokens = generated tokens up to "
            "each answer's stop token; score = json_match on the demo's references",
            "",
            *table(
                [
                    "way",
                    "batches",
                    "seconds",
                    "answer tokens",
                    "tokens/s",
                    "of the bound",
                    "json_match",
                ],
                rows,
            ),
            "",
            f"- goal: generation >= half of the bound's tokens/s: {after:.1f} vs "
            f"{bound_rate:.1f} ({after / bound_rate:.2f}): {verdict}",
            f"- merged vs unmerged answers identical on {out['same_answers']} of "
            f"{out['prompts']} prompts; json_match {ways['after']['score']:.3f} vs "
            f"{ways['after, unmerged']['score']:.3f} (tolerance "
            "runners.generation.MERGE_SCORE_TOLERANCE = 0.05)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="a trained demo adapter directory")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    body = render(run(args), args)
    print(body)
    if not args.no_write:
        write_section(TITLE, body)


if __name__ == "__main__":
    calm_threads()
    main()

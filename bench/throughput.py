"""Training throughput of advisor's runner against a bare trl SFTTrainer script, in one run.

Issue goal: a trial's training throughput at least 95% of a bare trl script on the same
configuration. Both sides train SmolLM2-135M-Instruct (the demo's base, from the converted cache)
with LoRA r=8, alpha 16 on all linear layers, batch 4, max_seq_length 128, lr 1e-3, CPU fp32, on
the demo's training data, for the same number of steps, each in a fresh process:

* A, advisor: `run_trial_process` (forked from the fork server: the real trial path), eval metric
  `eval_loss` and forgetting off, so nothing but training differs from the demo's trial;
* B, bare trl: `bench/throughput.py --bare ...`, below: a plain script that reads the JSONL,
  builds trl's prompt/completion records, wraps the model with peft and calls
  `SFTTrainer.train()`, with only the settings that make it the same computation.

They alternate A B A B (--rounds) so that drift in the machine's load falls on both. Each side's
tokens/s is non-padding input tokens / seconds inside `trainer.train()`; evaluation is kept out of
training on both (eval_steps > max_steps). Equal training losses show that both saw the same
batches from the same initial adapter.

    .venv/bin/python bench/throughput.py [--steps 8] [--rounds 2] [--quick] [--no-write]
                                         [--model DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, calm_threads, fmt, median, provenance, table, write_section

TITLE = "Training throughput: advisor's trial vs bare trl (CPU, SmolLM2)"
GOAL = 0.95
STUDY = ROOT / "studies" / "demo.yaml"
SEED, R, ALPHA, LR, BATCH, SEQ = 42, 8, 16, 1e-3, 4, 128
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --- B: the bare trl script (runs in its own process) ---------------------------------------------
def bare_trl(model_dir: str, train_path: str, system_prompt: str, steps: int, out: str) -> None:
    """What a user would write with trl alone; the settings are the ones the runs must share."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    rows = [json.loads(line) for line in Path(train_path).read_text().splitlines() if line]
    records = [
        {
            "prompt": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": row["prompt"]},
            ],
            "completion": [{"role": "assistant", "content": row["response"]}],
        }
        for row in rows
    ]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    set_seed(SEED)
    model = get_peft_model(
        model,
        LoraConfig(r=R, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0,
                   task_type="CAUSAL_LM"),
    )  # fmt: skip
    args = SFTConfig(
        output_dir=str(Path(out).parent / "bare-trainer"),
        max_steps=steps,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        optim="adamw_torch",  # the study's optimizer (transformers' default is the fused one)
        max_length=SEQ,
        completion_only_loss=True,
        bf16=False,  # trl defaults to bf16 and gradient checkpointing: 13x slower on CPU
        gradient_checkpointing=False,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=SEED,
        include_num_input_tokens_seen="non_padding",  # the same token count as advisor's
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tokenizer
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    tokens = int(trainer.state.num_input_tokens_seen)
    Path(out).write_text(
        json.dumps(
            {
                "train_seconds": seconds,
                "tokens": tokens,
                "steps": trainer.state.global_step,
                "train_loss": float(result.training_loss),
            }
        )
    )


# --- the driver -----------------------------------------------------------------------------------
def advisor_config(workdir: Path, steps: int, model_dir: Path) -> Any:
    """The demo study at the fixed point above, training only (no generation, no forgetting)."""
    from advisor.study import load_study, resolve_trial_config

    spec = load_study(STUDY)
    spec.metric = "eval_loss"
    spec.model.source = str(model_dir)  # the converted copy both sides load
    spec.eval.forgetting = False
    spec.train.max_steps, spec.train.eval_steps = steps, steps + 1
    spec.train.batch_size, spec.train.max_seq_length = BATCH, SEQ
    params = {"r": R, "alpha_ratio": ALPHA // R, "target_modules": "all_linear"}
    params["learning_rate"] = LR
    return resolve_trial_config(spec, params, trial_number=0, output_dir=str(workdir))


def run_advisor(workdir: Path, steps: int, model_dir: Path) -> dict[str, float]:
    from advisor.tuning.process import run_trial_process

    config = advisor_config(workdir, steps, model_dir)
    result = run_trial_process(config, workdir)
    if result.state != "complete":
        raise SystemExit(f"advisor's trial failed: {result.error}")
    tokens = (result.tokens_per_second or 0.0) * result.train_seconds
    return {
        "train_seconds": result.train_seconds,
        "tokens": round(tokens),
        "steps": result.steps,
        "train_loss": result.train_loss or float("nan"),
    }


def run_bare(workdir: Path, steps: int, model_dir: Path) -> dict[str, float]:
    from advisor.study import load_study

    spec = load_study(STUDY)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "bare.json"
    argv = [
        sys.executable, __file__, "--bare", str(model_dir), spec.data.train,
        spec.data.system_prompt or "", str(steps), str(out),
    ]  # fmt: skip
    with (workdir / "bare.log").open("w") as log:
        subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT)
    return json.loads(out.read_text())


def measure(args: argparse.Namespace, scratch: Path) -> list[tuple[str, dict[str, float]]]:
    from runners.config import ModelRef
    from runners.models import resolve_model_dir

    model_dir = resolve_model_dir(ModelRef(args.model))  # converts a GGUF once if not cached yet
    runs = []
    sides = ["advisor", "bare trl"] + ([] if args.quick else [FREED])
    for i in range(args.rounds):
        for n, side in enumerate(sides):
            workdir = scratch / f"side{n}_{i}"
            if side == "bare trl":
                measured = run_bare(workdir, args.steps, model_dir)
            else:
                env = {"ADVISOR_MMAP_THRESHOLD": "65536"} if side == FREED else {}
                with _environ(env):
                    measured = run_advisor(workdir, args.steps, model_dir)
            measured["tokens_per_second"] = measured["tokens"] / measured["train_seconds"]
            print(f"{side} round {i + 1}: {measured}", flush=True)
            runs.append((side, measured))
    return runs


FREED = "advisor, ADVISOR_MMAP_THRESHOLD=65536"
"""The opt-in allocator setting (`runners.allocator`): lower peak memory, at what speed?"""


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """Set environment variables for the trials started inside (the fork server restarts)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ratio(runs: list[tuple[str, dict[str, float]]], side: str) -> tuple[float, list[float]]:
    """Median tokens/s of `side` over bare trl's, and the same ratio within each round."""
    a = median(m["tokens_per_second"] for s, m in runs if s == side) or 0.0
    b = median(m["tokens_per_second"] for s, m in runs if s == "bare trl") or 1.0
    per_round, current = [], {}
    for s, m in runs:
        current[s] = m["tokens_per_second"]
        if side in current and "bare trl" in current and s in (side, "bare trl"):
            per_round.append(current.pop(side) / current.pop("bare trl"))
    return a / b, per_round


def render(runs: list[tuple[str, dict[str, float]]], args: argparse.Namespace) -> str:
    rows = [
        [side, f"{m['steps']:.0f}", f"{m['tokens']:.0f}", fmt(m["train_seconds"]),
         fmt(m["tokens_per_second"]), f"{m['train_loss']:.6f}"]
        for side, m in runs
    ]  # fmt: skip
    ratio, pairs = _ratio(runs, "advisor")
    losses = [m["train_loss"] for _, m in runs]
    same = max(losses) - min(losses) <= 1e-5 * abs(max(losses))  # logging cadence: rounding only
    lines = [
        *provenance(args.load),
        f"- what: SmolLM2-135M-Instruct, LoRA r={R} alpha {ALPHA} all linear layers, batch"
        f" {BATCH}, max_seq_length {SEQ}, lr {LR:g}, CPU fp32, demo training data, {args.steps}"
        f" steps per run, runs alternating advisor / bare trl / advisor with the opt-in"
        f" allocator setting ({args.rounds} rounds), each its own process (advisor's forked from"
        " its fork server, bare trl a fresh interpreter). tokens/s = non-padding tokens /"
        " seconds inside `trainer.train()`.",
        "",
        *table(["run", "steps", "tokens", "train s", "tokens/s", "train loss"], rows),
        "",
        f"- Ratio advisor / bare trl (medians): **{ratio:.3f}** (goal >= {GOAL}:"
        f" {'met' if ratio >= GOAL else 'MISSED'}); per round: "
        + ", ".join(f"{p:.3f}" for p in pairs)
        + ".",
        *(
            [
                f"- The opt-in allocator setting (`{FREED.split(', ')[1]}`, lower peak memory:"
                f" see the memory section), same ratio: {_ratio(runs, FREED)[0]:.3f}; per round: "
                + ", ".join(f"{p:.3f}" for p in _ratio(runs, FREED)[1])
                + "."
            ]
            if any(s == FREED for s, _ in runs)
            else []
        ),
        "- Same computation: "
        + (
            "every run reports the same training loss to 1e-5 (same batches, same initial"
            " adapter; the logging cadence changes only the rounding of the average)."
            if same
            else f"training losses differ ({min(losses)} to {max(losses)}): check the settings."
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    calm_threads()
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        model_dir, train_path, system_prompt, steps, out = sys.argv[2:7]
        bare_trl(model_dir, train_path, system_prompt, int(steps), out)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 steps")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--model", default="smollm2-135m", help="smoke tests: a tiny model dir")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 3, 1
    args.load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="advisor-bench-throughput-"))
    try:
        body = render(measure(args, scratch), args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(body)
    if not args.no_write:
        write_section(TITLE, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `advisor recommend --verify`'s time budget pays for: the steps of its comparison study.

The costs were measured on SmolLM2-135M with 2 CPU cores (BENCHMARKS.md) and are scaled by the
model's parameters (a step's and a generation's compute grow with them): a step at batch 4 x
<=128 tokens costs 2.91 s for LoRA, 3.79 s for QLoRA ("Trial cost on 2 CPU cores") and 8.0 s for
full fine-tuning ("Memory", step 2 at 4 x 128); a trial's fixed overhead is 2.6 s and its eval
loss and generations ~1.56 s per eval example (52.4 s wall minus steps for 32 examples, "Trial
overhead"); the first trial pays ~9.5 s of imports. The untuned baseline is one more trial
without steps, and so is a retrieval trial (indexing a small knowledge source is noise beside
the generations). On a GPU every figure is pessimistic: the study then finishes early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.errors import AdvisorInputError
from runners.methods import METHODS

REFERENCE_PARAMS = 135e6
"""SmolLM2-135M, on which the costs below were measured (2 CPU cores, fp32)."""
STEP_S = {"lora": 2.91, "qlora": 3.79, "full": 8.0}
"""Seconds per step at batch 4 x <=128 tokens on the reference model, by family or method."""
TRIAL_S = 2.6
EVAL_S_PER_EXAMPLE = 1.56
IMPORTS_S = 9.5
EVAL_EXAMPLES = 32
"""Eval examples scored per trial (`data.max_eval_examples`): the demo's count."""
BATCH = 4
PREFILL_SHARE = 0.3
"""How an eval's cost grows with its prompts' length, per extra prompt length: measured on the
catalogue demo (2026-11-24, SmolLM2 on 2 CPU cores), prompts ~7x longer with 2 passages made
rag's eval 2.8x the baseline's (40 s against 14 s): 0.3 per extra length."""
MIN_STEPS, MAX_STEPS = 2, 60


@dataclass
class Budget:
    """What the time budget pays for, and the estimate behind it."""

    minutes: float
    max_steps: int
    batch_size: int
    train_rows: int
    eval_rows: int
    estimated_seconds: float
    derivation: str


def step_seconds(method: str, num_params: float, seq_len: int, batch: int = BATCH) -> float:
    """One training step of `method`, scaled from the reference measurements by parameters and
    tokens per batch; 0 for a method that does not train (retrieval)."""
    entry = METHODS[method]
    if not entry.trains:
        return 0.0
    base = STEP_S.get(method, STEP_S.get(entry.family, STEP_S["lora"]))
    return base * (num_params / REFERENCE_PARAMS) * (batch * min(seq_len, 512)) / (4 * 128)


def plan_budget(
    minutes: float,
    methods: list[str],
    *,
    num_params: float,
    seq_len: int,
    train_rows: int,
    eval_rows: int,
    context: int = 0,
) -> Budget:
    """The steps `minutes` pays for: one trial per method plus the baseline, each with its
    fixed overhead and eval cost, the rest spent on steps; at most one pass over --train.

    `context`: the tokens a retrieval method's passages add to each of its sequences, training
    and eval alike (found on the catalogue demo: ~400 tokens of passages on 48-token rows made
    rag_lora's steps 8x the estimate, and an 8-minute verification ran past 20)."""
    scale = num_params / REFERENCE_PARAMS
    evals = min(eval_rows, EVAL_EXAMPLES)
    batch = min(BATCH, max(1, train_rows))

    def length(method: str) -> int:
        return seq_len + (context if METHODS[method].retrieval else 0)

    eval_cost = evals * EVAL_S_PER_EXAMPLE * scale
    per_trial = TRIAL_S + eval_cost
    # Longer prompts cost the eval's prefill, not its decoding: PREFILL_SHARE of the eval.
    longer = sum(eval_cost * PREFILL_SHARE * (length(m) / seq_len - 1) for m in methods)
    fixed = IMPORTS_S + (len(methods) + 1) * per_trial + longer
    per_step = sum(step_seconds(m, num_params, length(m), batch) for m in methods)
    one_pass = math.ceil(train_rows / batch)
    left = minutes * 60 - fixed - MIN_STEPS * per_step
    steps = MAX_STEPS if per_step == 0 else MIN_STEPS + int(max(0.0, left) // per_step)
    steps = min(steps, MAX_STEPS, max(MIN_STEPS, one_pass))
    needed = fixed + MIN_STEPS * per_step
    if minutes * 60 < needed:
        raise AdvisorInputError(
            f"--budget-minutes {minutes:g} does not pay for one trial of {', '.join(methods)} "
            f"and the baseline: about {needed / 60:.1f} minutes at {MIN_STEPS} steps each",
            where="--budget-minutes",
            fix=f"give --budget-minutes {math.ceil(needed / 60)} or more",
        )
    estimate = fixed + steps * per_step
    derivation = (
        f"{len(methods) + 1} trials (baseline + one per method) x {per_trial:.1f} s overhead and "
        f"eval on {evals} examples, + {steps} steps x {per_step:.2f} s (all methods) + "
        f"{IMPORTS_S} s imports; costs measured on SmolLM2-135M (BENCHMARKS.md) x "
        f"{scale:.3g} for this model's size"
    )
    return Budget(
        minutes, steps, batch, min(train_rows, steps * batch), evals, round(estimate, 1), derivation
    )

"""`recommend(traits)`: score every method with the rule table, check memory, build a plan.

Steps, each a small function: estimate memory for all eight candidates (with gradient
checkpointing when it is what makes a method fit), derive the facts the rules read, add up the
scores of `advisor.decide.rules`, demote what does not fit `--vram` x `--gpus` or exceeds
`--budget-usd`, rank, then assemble the plan and the starting hyperparameters. Memory is
compared with the sum of all GPUs' memory: full fine-tuning is assumed sharded (ZeRO-3/FSDP),
adapters split the frozen base across devices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from advisor.errors import AdvisorInputError
from runners.methods.targets import TARGET_MODULE_PRESETS

from .estimate import (
    ADAPTER_METHODS,
    METHODS,
    MemoryEstimate,
    estimate_memory,
    estimate_time,
    gpus_needed,
)
from .rules import (
    LARGE_DATA,
    PRIORS,
    RULES,
    TIE_ORDER,
    HyperparameterRow,
    hyperparameter_row,
)
from .shapes import PRESETS, ModelShape, resolve_model
from .traits import Traits

DEMOTED = -100.0
OVER_BUDGET = -20.0
PLAN_WHAT = {
    "rag": "index the documents and retrieve them into the prompt",
    "sft": "supervised fine-tuning once for general instruction alignment",
}


@dataclass
class Candidate:
    """One method's line in the ranking."""

    method: str
    score: float
    fits: bool
    memory_gb: float | None
    reasons: list[str]
    trainable_params: int | None
    adapter_mb: float | None
    hours: float | None
    cost_usd: float | None
    gradient_checkpointing: bool = False
    rule_score: float = 0.0
    """The score from the rules alone, before memory and budget demotions."""


@dataclass
class PlanStep:
    method: str
    what: str
    count: int = 1


@dataclass
class Recommendation:
    """What `advisor recommend` answers; `to_dict()` is the `--json` output."""

    method: str
    plan: list[str]
    plan_steps: list[PlanStep]
    ranking: list[Candidate]
    hyperparameters: dict[str, Any]
    reasons: list[str]
    model: dict[str, Any]
    traits: dict[str, Any]
    fits_nowhere: bool = False
    what_would_fit: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _memory(shape: ModelShape, method: str, traits: Traits, r: int, targets: str) -> MemoryEstimate:
    """Without checkpointing if that fits, else with it (what a user would switch on)."""
    kwargs = {"r": r, "target_modules": targets, "seq_len": traits.seq_len}
    plain = estimate_memory(shape, method, **kwargs)
    if plain.total_gb <= traits.total_vram_gb or method == "rag":
        return plain
    return estimate_memory(shape, method, gradient_checkpointing=True, **kwargs)


def _facts(traits: Traits, memory: dict[str, MemoryEstimate] | None) -> dict[str, Any]:
    facts: dict[str, Any] = {**traits.model_dump(), "total_vram_gb": traits.total_vram_gb}
    for method in ("full", "lora", "qlora"):
        gb = memory[method].total_gb if memory else None
        facts[f"{method}_gb"] = gb
        # None (unknown: an API model) matches neither `True` nor `False` in a rule condition.
        facts[f"{method}_fits"] = None if gb is None else gb <= traits.total_vram_gb
    large = traits.examples >= LARGE_DATA
    facts["full_ceiling"] = None if memory is None else facts["full_fits"] and large
    return facts


def _resolve(traits: Traits) -> ModelShape | None:
    """Behind an API the model may be no local preset: then there is nothing to estimate."""
    try:
        return resolve_model(traits.model)
    except AdvisorInputError:
        if traits.weights == "api":
            return None
        raise


def recommend(traits: Traits) -> Recommendation:
    """Rank all eight methods for these traits and explain the choice."""
    shape = _resolve(traits)
    hp_row = hyperparameter_row(traits.examples)
    memory = (
        {m: _memory(shape, m, traits, hp_row.r, hp_row.target_modules) for m in METHODS}
        if shape
        else None
    )
    facts = _facts(traits, memory)
    scores = dict(PRIORS)
    reasons: dict[str, list[str]] = {m: [] for m in METHODS}
    slots: dict[str, str] = {}
    excluded: dict[str, str] = {}
    fired: list[str] = []
    for rule in RULES:
        if not rule.matches(facts):
            continue
        reason = rule.explain(facts)
        fired.append(reason)
        slots.update(rule.plan)
        for method, delta in rule.scores.items():
            scores[method] += delta
            reasons[method].append(f"{delta:+g}: {reason}")
        for method in rule.exclude:
            excluded[method] = reason

    ranking = [
        _candidate(method, scores[method], reasons[method], traits, shape, memory, excluded, hp_row)
        for method in METHODS
    ]
    order = {m: i for i, m in enumerate((*TIE_ORDER, "full"))}
    ranking.sort(key=lambda c: (-c.score, order[c.method]))
    best = ranking[0]
    fits_nowhere = not any(c.fits for c in ranking)
    # Say why a method the rules preferred lost: it did not fit or cost too much.
    for c in ranking:
        if c.rule_score > best.rule_score and c.reasons:
            fired.append(f"not {c.method}: {c.reasons[-1]}")
    steps = _plan(best.method, slots, traits)
    return Recommendation(
        method=best.method,
        plan=[s.method for s in steps],
        plan_steps=steps,
        ranking=ranking,
        hyperparameters=_hyperparameters(best.method, hp_row, traits),
        reasons=fired + ([_nothing_fits(traits)] if fits_nowhere else []),
        model=shape.to_dict() if shape else {"name": traits.model},
        traits=traits.model_dump(),
        fits_nowhere=fits_nowhere,
        what_would_fit=_what_would_fit(shape, traits, memory) if fits_nowhere else [],
    )


def _nothing_fits(traits: Traits) -> str:
    return (
        f"nothing fits --vram {traits.vram_gb:g} GB x --gpus {traits.gpus}: "
        "see what would fit (a smaller --model or more --gpus)"
    )


def _candidate(
    method: str,
    score: float,
    reasons: list[str],
    traits: Traits,
    shape: ModelShape | None,
    memory: dict[str, MemoryEstimate] | None,
    excluded: dict[str, str],
    hp_row: HyperparameterRow,
) -> Candidate:
    reasons = list(reasons)
    if method in excluded:
        return Candidate(
            method, DEMOTED * 10, False, None, [excluded[method]], None, None, None, None
        )
    if shape is None or memory is None:  # API model: nothing runs on the user's GPUs
        return Candidate(method, score, True, None, reasons, None, None, None, None)
    est = memory[method]
    rule_score = round(score, 2)
    epochs = 1 if method in ("full", "sft") and traits.data_format == "corpus" else hp_row.epochs
    time = estimate_time(
        shape,
        method,
        examples=traits.examples,
        seq_len=traits.seq_len,
        epochs=epochs,
        vram_gb=traits.vram_gb,
        gpus=traits.gpus,
        gradient_checkpointing=est.assumptions["gradient_checkpointing"],
    )
    fits = est.total_gb <= traits.total_vram_gb
    if not fits:
        score += DEMOTED
        reasons.append(
            f"does not fit: needs {est.total_gb} GB > --vram {traits.vram_gb:g} GB x --gpus "
            f"{traits.gpus}; needs {gpus_needed(est.total_gb, traits.vram_gb)} such GPUs"
        )
    elif traits.budget_usd is not None and time.cost_usd > traits.budget_usd:
        score += OVER_BUDGET
        reasons.append(
            f"over budget: ~${time.cost_usd:,.0f} > --budget-usd {traits.budget_usd:g} "
            f"({time.hours:.1f} h on {traits.gpus} x {time.gpu})"
        )
    return Candidate(
        method=method,
        rule_score=rule_score,
        score=round(score, 2),
        fits=fits,
        memory_gb=est.total_gb,
        reasons=reasons,
        trainable_params=est.trainable_params,
        adapter_mb=est.adapter_mb,
        hours=time.hours,
        cost_usd=time.cost_usd,
        gradient_checkpointing=est.assumptions["gradient_checkpointing"],
    )


def _plan(method: str, slots: dict[str, str], traits: Traits) -> list[PlanStep]:
    steps: list[PlanStep] = []
    if slots.get("retrieval") == "rag" and method != "rag":
        steps.append(PlanStep("rag", PLAN_WHAT["rag"]))
    if slots.get("alignment") == "sft" and method in ADAPTER_METHODS:
        steps.append(PlanStep("sft", PLAN_WHAT["sft"]))
    per_task = slots.get("per_task") == "adapter" and method in (*ADAPTER_METHODS, "prompt_tuning")
    count = traits.tasks if per_task else 1
    what = f"one {method} adapter per task ({count} tasks)" if per_task else f"train with {method}"
    steps.append(PlanStep(method, PLAN_WHAT["rag"] if method == "rag" else what, count))
    return steps


def _hyperparameters(method: str, row: HyperparameterRow, traits: Traits) -> dict[str, Any]:
    if method == "rag":
        return {}
    if method == "prompt_tuning":
        return {"num_virtual_tokens": 20, "learning_rate": 3e-2, "epochs": row.epochs}
    if method in ADAPTER_METHODS:
        return {
            "r": row.r,
            "lora_alpha": 2 * row.r,
            "target_modules": list(TARGET_MODULE_PRESETS[row.target_modules]),
            "learning_rate": row.learning_rate,
            "epochs": row.epochs,
        }
    return {"learning_rate": row.full_learning_rate, "epochs": row.epochs}


def _what_would_fit(
    shape: ModelShape | None, traits: Traits, memory: dict[str, MemoryEstimate] | None
) -> list[str]:
    """A smaller preset that fits with QLoRA, and how many GPUs this model needs."""
    if shape is None or memory is None:
        return []
    hints = []
    for method in ("qlora", "lora", "full"):
        need = gpus_needed(memory[method].total_gb, traits.vram_gb)
        hints.append(
            f"{method} on {shape.name} needs {memory[method].total_gb} GB: --gpus {need} "
            f"of {traits.vram_gb:g} GB"
        )
    smaller = [
        p
        for p in sorted(PRESETS.values(), key=lambda p: p.num_params, reverse=True)
        if p.num_params < shape.num_params
        and estimate_memory(
            p, "qlora", seq_len=traits.seq_len, gradient_checkpointing=True
        ).total_gb
        <= traits.total_vram_gb
    ]
    if smaller:
        hints.insert(0, f"a smaller model fits with qlora: --model {smaller[0].name}")
    else:
        hints.insert(0, "no preset fits this memory for training; use RAG with a hosted model")
    return hints


__all__ = ["Candidate", "PlanStep", "Recommendation", "recommend"]

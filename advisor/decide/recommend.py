"""`recommend(traits)`: score every method with the rule table, check memory, build a plan.

Steps, each a small function: size the LoRA rank to the data (`hyperparams.lora_capacity`),
estimate memory for every candidate (with gradient checkpointing when it is what makes a
method fit), derive the facts the rules read, add up the scores of `advisor.decide.rules`,
demote what does not fit `--vram` x `--gpus` with the headroom of `advisor.decide.fit` kept or
exceeds `--budget-usd`, let `--priority cost|speed` weigh the estimates (`priorities`), rank,
then assemble the plan, the starting hyperparameters with their reasons and sources
(`hyperparams`), moved toward what alike finished studies found when the stores gave some
(`evidence`), and the chosen method's fit with its levers. Memory is compared with the sum of
all GPUs' memory: full fine-tuning is assumed sharded (ZeRO-3/FSDP), adapters split the frozen
base across devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import priorities
from .estimate import (
    ADAPTER_METHODS,
    METHODS,
    MemoryEstimate,
    estimate_memory,
    estimate_time,
)
from .evidence import PastStudy, Question, apply_evidence
from .fit import Fit, check_fit, fits, gpus_needed, usable_gb
from .hyperparams import epochs_for, lora_capacity, starting_point
from .retrieval import RETRIEVERS, retrieval_starting_point
from .rules import LARGE_DATA, PRIORS, RULES, TIE_ORDER
from .shapes import PRESETS, ModelShape, resolve_model
from .traits import Traits

DEMOTED = -100.0
OVER_BUDGET = -20.0
PLAN_WHAT = {
    "rag": "index the documents and retrieve them into the prompt",
    "rag_lora": "index the documents; train a LoRA adapter with the retrieved passages in its "
    "prompts, and answer with them",
    "sft": "supervised fine-tuning once for general instruction alignment",
    "prompting": "write the instructions and output format into the system prompt",
    "few_shot": "put a handful of solved examples in the prompt",
    "vendor_fine_tuning": "the vendor's own fine-tuning service, if prompting and examples fall "
    "short (it trains the weights on the vendor's side)",
}
EXAMPLES_RETRIEVED = "retrieve the solved examples most like each request into the prompt"
API_PLANS = {
    "behaviour": ("prompting", "few_shot", "rag", "vendor_fine_tuning"),
    "both": ("rag", "prompting", "few_shot", "vendor_fine_tuning"),
    "knowledge": ("rag", "prompting", "few_shot"),
}
"""Closed weights: no gradients, so nothing of METHODS trains; the plan is the API's levers
(EVIDENCE.md 'Closed weights'). Facts go to retrieval, not to the vendor's tuning (rule 1)."""


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
    """The score from the rules alone, before memory, budget and priority demotions."""
    usable_gb: float | None = None
    """vram x gpus less the headroom kept (`advisor.decide.fit`): `fits` compares with it."""


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
    hyperparameter_reasons: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per key of `hyperparameters`: its value, reason, source and the rule's id."""
    fit: dict[str, Any] | None = None
    """The method's memory against the GPUs with the headroom kept, and levers near the edge."""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    """The finished studies weighed (`evidence.Used`): similarity, what they found and moved."""
    starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every other trained method's own starting point (as `hyperparameters`), for a study that
    compares methods (`--verify`): when rag is chosen, `hyperparameters` holds no rank or rate,
    and registry defaults would compare the methods at points nobody recommended."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _memory(shape: ModelShape, method: str, traits: Traits, r: int, targets: str) -> MemoryEstimate:
    """Without checkpointing if that fits, else with it (what a user would switch on)."""
    kwargs = {"r": r, "target_modules": targets, "seq_len": traits.seq_len}
    plain = estimate_memory(shape, method, **kwargs)
    if fits(plain.total_gb, traits) or method == "rag":
        return plain
    return estimate_memory(shape, method, gradient_checkpointing=True, **kwargs)


def _facts(
    traits: Traits, memory: dict[str, MemoryEstimate] | None, shape: ModelShape | None = None
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        **traits.model_dump(),
        "total_vram_gb": traits.total_vram_gb,
        "usable_gb": round(usable_gb(traits.vram_gb, traits.gpus), 2),
        # None behind an API (no shape): matches no numeric condition
        "params_b": None if shape is None else shape.num_params / 1e9,
    }
    for method in ("full", "lora", "qlora"):
        gb = memory[method].total_gb if memory else None
        facts[f"{method}_gb"] = gb
        # None (unknown: an API model) matches neither `True` nor `False` in a rule condition.
        facts[f"{method}_fits"] = None if gb is None else fits(gb, traits)
    large = traits.examples >= LARGE_DATA
    facts["full_ceiling"] = None if memory is None else facts["full_fits"] and large
    return facts


def _resolve(traits: Traits) -> ModelShape | None:
    """Behind an API nothing trains on the user's GPUs (and the model may be no local preset):
    then there is nothing to estimate."""
    if traits.weights == "api":
        return None
    return resolve_model(traits.model)


def recommend(
    traits: Traits,
    *,
    completion_per_example: float | None = None,
    evidence: Sequence[PastStudy] = (),
    data_hash: str | None = None,
) -> Recommendation:
    """Rank every method of `estimate.METHODS` for these traits and explain the choice.

    `completion_per_example`: the mean completion (loss) tokens per example, when the data was
    read (`--train`); the rank is sized to cover them (`hyperparams.capacity_rank`).
    `evidence`: finished studies (the stores read them); the starting point moves toward the
    best trials of the alike ones, those on the training data `data_hash` weighing most."""
    shape = _resolve(traits)
    r, covers = lora_capacity(shape, traits, completion_per_example) if shape else (16, True)
    memory = {m: _memory(shape, m, traits, r, "all_linear") for m in METHODS} if shape else None
    facts = _facts(traits, memory, shape)
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
        _candidate(method, scores[method], reasons[method], traits, shape, memory, excluded)
        for method in METHODS
    ]
    if shape is not None:
        demoted = priorities.weigh(
            ranking, priority=traits.priority, examples=traits.examples, lora_covers_tokens=covers
        )
        fired += [f"not {m}: {reason}" for m, reason in demoted]
    order = {m: i for i, m in enumerate((*TIE_ORDER, "full"))}
    ranking.sort(key=lambda c: (-c.score, order[c.method]))
    best = ranking[0]
    fits_nowhere = not any(c.fits for c in ranking)
    # Say why a method the rules preferred lost: it did not fit or cost too much.
    for c in ranking:
        if (
            c.rule_score > best.rule_score
            and c.reasons
            and f"not {c.method}: {c.reasons[-1]}" not in fired
        ):
            fired.append(f"not {c.method}: {c.reasons[-1]}")
    steps = _plan(best.method, slots, traits)
    method = steps[0].method if slots.get("closed") == "api" else best.method
    hyperparameters, why = (
        starting_point(
            method,
            shape,
            traits,
            completion_per_example=completion_per_example,
            gradient_checkpointing=best.gradient_checkpointing,
        )
        if shape is not None and method in METHODS
        else ({}, {})
    )
    if shape is not None and method in RETRIEVERS:  # where top_k and chunk_size start
        passages, passages_why = retrieval_starting_point(method)
        hyperparameters, why = {**hyperparameters, **passages}, {**why, **passages_why}
    used: list[dict[str, Any]] = []
    if evidence and hyperparameters and shape is not None:
        question = Question(traits.model, shape.num_params, method, traits.examples, data_hash)
        hyperparameters, moves, weighed = apply_evidence(hyperparameters, list(evidence), question)
        fired += moves
        used = [u.to_dict() for u in weighed]
        for key, value in hyperparameters.items():
            if key in why and why[key]["value"] != value:
                why[key] = {**why[key], "value": value, "evidence": _move_of(key, moves)}
    starts = {
        c.method: starting_point(
            c.method,
            shape,
            traits,
            completion_per_example=completion_per_example,
            gradient_checkpointing=c.gradient_checkpointing,
        )[0]
        for c in ranking
        if shape is not None and c.method != method
    }
    fit = _fit(shape, method, hyperparameters, traits, r, best.gradient_checkpointing)
    if fit is not None:
        fired.append(fit.summary)
    return Recommendation(
        method=method,
        plan=[s.method for s in steps],
        plan_steps=steps,
        ranking=ranking,
        hyperparameters=hyperparameters,
        reasons=fired + ([_nothing_fits(traits)] if fits_nowhere else []),
        model=shape.to_dict() if shape else {"name": traits.model},
        traits=traits.model_dump(),
        fits_nowhere=fits_nowhere,
        what_would_fit=_what_would_fit(shape, traits, memory) if fits_nowhere else [],
        hyperparameter_reasons=why,
        fit=fit.to_dict() if fit else None,
        evidence=used,
        starts={m: values for m, values in starts.items() if values},
    )


def _move_of(key: str, moves: list[str]) -> str | None:
    """The reason that moved `key` (it starts `moved KEY `)."""
    return next((m for m in moves if m.startswith(f"moved {key} ")), None)


def _fit(
    shape: ModelShape | None,
    method: str,
    hyperparameters: dict[str, Any],
    traits: Traits,
    r: int,
    checkpointing: bool,
) -> Fit | None:
    """The chosen method at its starting point (rank, targets, micro-batch) against the GPUs."""
    if shape is None or method not in METHODS or method == "rag":
        return None
    r = hyperparameters.get("r", r)
    targets = hyperparameters.get("target_modules", "all_linear")
    est = estimate_memory(
        shape,
        method,
        r=r,
        target_modules=targets,
        batch_size=hyperparameters.get("batch_size", 1),
        seq_len=traits.seq_len,
        gradient_checkpointing=checkpointing,
    )
    return check_fit(shape, est, traits, r=r, target_modules=targets)


def _nothing_fits(traits: Traits) -> str:
    return (
        f"nothing fits --vram {traits.vram_gb:g} GB x --gpus {traits.gpus} with the headroom "
        "kept: see what would fit (a smaller --model or more --gpus)"
    )


def _candidate(
    method: str,
    score: float,
    reasons: list[str],
    traits: Traits,
    shape: ModelShape | None,
    memory: dict[str, MemoryEstimate] | None,
    excluded: dict[str, str],
) -> Candidate:
    reasons = list(reasons)
    if method in excluded:
        return Candidate(
            method, DEMOTED * 10, False, None, [excluded[method]], None, None, None, None,
            rule_score=DEMOTED * 10,
        )  # fmt: skip
    if shape is None or memory is None:  # API model: nothing runs on the user's GPUs
        return Candidate(method, score, True, None, reasons, None, None, None, None)
    est = memory[method]
    rule_score = round(score, 2)
    corpus_full = method in ("full", "sft") and traits.data_format == "corpus"
    time = estimate_time(
        shape,
        method,
        examples=traits.examples,
        seq_len=traits.seq_len,
        epochs=1 if corpus_full else epochs_for(traits.examples),
        vram_gb=traits.vram_gb,
        gpus=traits.gpus,
        gradient_checkpointing=est.assumptions["gradient_checkpointing"],
    )
    usable = usable_gb(traits.vram_gb, traits.gpus)
    fitting = fits(est.total_gb, traits)
    if not fitting:
        score += DEMOTED
        reasons.append(
            f"does not fit: needs {est.total_gb} GB > {usable:.2f} GB usable of --vram "
            f"{traits.vram_gb:g} GB x --gpus {traits.gpus} (headroom kept); needs "
            f"{gpus_needed(est.total_gb, traits.vram_gb)} such GPUs"
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
        fits=fitting,
        memory_gb=est.total_gb,
        reasons=reasons,
        trainable_params=est.trainable_params,
        adapter_mb=est.adapter_mb,
        hours=time.hours,
        cost_usd=time.cost_usd,
        gradient_checkpointing=est.assumptions["gradient_checkpointing"],
        usable_gb=round(usable, 3),
    )


def _plan(method: str, slots: dict[str, str], traits: Traits) -> list[PlanStep]:
    if slots.get("closed") == "api":
        steps = [PlanStep(m, PLAN_WHAT[m]) for m in API_PLANS[traits.goal]]
        if traits.goal == "behaviour":  # retrieval of examples, not of facts
            steps[2] = PlanStep("rag", EXAMPLES_RETRIEVED)
        return steps
    steps: list[PlanStep] = []
    if slots.get("retrieval") == "rag" and method not in RETRIEVERS:
        steps.append(PlanStep("rag", PLAN_WHAT["rag"]))
    if slots.get("alignment") == "sft" and method in ADAPTER_METHODS:
        steps.append(PlanStep("sft", PLAN_WHAT["sft"]))
    per_task = slots.get("per_task") == "adapter" and method in (*ADAPTER_METHODS, "prompt_tuning")
    count = traits.tasks if per_task else 1
    what = f"one {method} adapter per task ({count} tasks)" if per_task else f"train with {method}"
    steps.append(PlanStep(method, what if per_task else PLAN_WHAT.get(method, what), count))
    return steps


def _what_would_fit(
    shape: ModelShape | None, traits: Traits, memory: dict[str, MemoryEstimate] | None
) -> list[str]:
    """A smaller preset that fits with QLoRA, and how many GPUs this model needs (headroom kept)."""
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
        and fits(
            estimate_memory(
                p, "qlora", seq_len=traits.seq_len, gradient_checkpointing=True
            ).total_gb,
            traits,
        )
    ]
    if smaller:
        hints.insert(0, f"a smaller model fits with qlora: --model {smaller[0].name}")
    else:
        hints.insert(0, "no preset fits this memory for training; use RAG with a hosted model")
    return hints


__all__ = ["Candidate", "PlanStep", "Recommendation", "recommend"]

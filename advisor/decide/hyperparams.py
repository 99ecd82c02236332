"""Starting hyperparameters from published evidence, as data: one row per rule, with its source.

`HYPERPARAMETER_RULES` is a decision list per parameter: the first row whose conditions hold
sets the value, and its reason (a template over the facts and `{value}`) and source go into the
answer beside it. Conditions use the decision table's vocabulary (`rules.holds`: a tuple is
"one of", `Between` a range). A value is a constant or one of the small named functions below,
each the published formula it cites. Parameters are decided in `PARAMETERS` order, so a later
row may read an earlier value (alpha reads r).

Where two sources disagree the rows say so: QLoRA's recipe (2e-4 at 7B-13B, 1e-4 at 33B-65B)
sets QLoRA's learning rate, Tinker's fit (~2.9e-4 at 8B, ~1.7e-4 at 70B) the 16-bit LoRA
family's, and each reason names the other figure. Sources: shared/EVIDENCE.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from runners.methods import METHODS as RUNNER_METHODS
from runners.methods.targets import TARGET_MODULE_PRESETS

from .estimate import adapter_params, estimate_memory, family
from .fit import fits, micro_batch, usable_gb
from .rules import Between, holds
from .shapes import ModelShape
from .traits import Traits

QLORA = "QLoRA (Dettmers et al. 2023, arXiv:2305.14314, section 4 and its recipe)"
BIDERMAN = "Biderman et al. 2024, LoRA Learns Less and Forgets Less (arXiv:2405.09673)"
LWR = "LoRA Without Regret (Thinking Machines 2025; trl docs lora_without_regret.md)"
TINKER = "Tinker cookbook hyperparam_utils.get_lr"
RSLORA = "rsLoRA (Kalajdzievski 2023, arXiv:2312.03732; peft use_rslora)"
UNSLOTH = "Unsloth LoRA guide"
RASCHKA = "Raschka, Practical Tips for Finetuning LLMs Using LoRA"
DEMO_GRID = "BENCHMARKS.md tuner section (the 36-point demo grid)"

RANKS = (16, 32, 64, 128, 256)
"""Ranks the capacity rule picks from: 16 is Unsloth's start and the demo grid's best; 256 is the
largest LoRA Without Regret used (post-training-scale SFT)."""
RSLORA_FROM = 64
"""From this rank, alpha/sqrt(r) scaling (rsLoRA): with alpha/r the update shrinks as r grows."""
ADAPTER_SCALE = 2.0
"""alpha/r (or alpha/sqrt(r) with rsLoRA) = 2: alpha = 2r, the demo grid's best ratio."""
EFFECTIVE_BATCH = 16
"""Sequences per optimizer step. No figure in EVIDENCE.md: a common small-batch default."""
COMPLETION_SHARE = 0.5
"""Without --train, half of --seq-len per example is assumed to be the completion (the loss)."""
LR_EXPONENT = {"llama": 0.781, "qwen": 0.0775}
"""Tinker's per-family exponent P in lr = 5e-5 x 10 x (2000 / hidden_size)^P."""
PARAMETERS = (
    "target_modules",
    "r",
    "use_rslora",
    "lora_alpha",
    "num_virtual_tokens",
    "learning_rate",
    "epochs",
    "batch_size",
    "gradient_accumulation_steps",
)
LORA_ONLY = {"target_modules", "r", "use_rslora", "lora_alpha"}


def tinker_lr(facts: Mapping[str, Any]) -> float:
    """LoRA lr = 5e-5 x 10 (LoRA/full) x (2000 / hidden)^P (Tinker's get_lr)."""
    return _sig(5e-4 * (2000 / facts["hidden_size"]) ** facts["lr_exponent"])


def full_lr(facts: Mapping[str, Any]) -> float:
    """A tenth of the LoRA rate (LoRA Without Regret: LoRA's best lr is ~10x full FT's)."""
    return _sig(tinker_lr(facts) / 10)


def _sig(value: float) -> float:
    """Three significant digits: a starting point, not a measurement."""
    return float(f"{value:.3g}")


def capacity_rank(facts: Mapping[str, Any]) -> int:
    """The smallest rank whose trainable parameters on all linear layers cover the completion
    tokens (LoRA matches full FT while params >= tokens), at least `RANKS[0]`."""
    for r in RANKS:
        if r * facts["params_per_rank"] >= facts["completion_tokens"]:
            return r
    return RANKS[-1]


def scaled_alpha(facts: Mapping[str, Any]) -> int:
    r = facts["r"]
    return round(ADAPTER_SCALE * (math.sqrt(r) if facts["use_rslora"] else r))


@dataclass(frozen=True)
class Suggestion:
    """One starting value with the rule that set it."""

    value: Any
    reason: str
    source: str
    rule: str


@dataclass(frozen=True)
class HyperRule:
    """One row: when the facts match `when`, `parameter` takes `value` (or `value(facts)`)."""

    id: str
    parameter: str
    when: Mapping[str, Any]
    value: Any
    reason: str
    source: str

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(holds(expected, facts[name]) for name, expected in self.when.items())

    def suggest(self, facts: Mapping[str, Any]) -> Suggestion:
        value = self.value(facts) if callable(self.value) else self.value
        reason = self.reason.format_map({**facts, "value": value})
        return Suggestion(value, reason, self.source, self.id)


HYPERPARAMETER_RULES: tuple[HyperRule, ...] = (
    HyperRule(
        "targets-narrowed-for-memory", "target_modules",
        {"family": "lora", "all_linear_fits": False, "attention_fits": True},
        "attention",
        "attention only, for memory: all linear layers need {all_linear_gb:.2f} GB > "
        "{usable_gb:.2f} GB usable, attention {attention_gb:.2f} GB; expect less than "
        "all-linear quality (all > MLP > attention)",
        f"{BIDERMAN}; {LWR}",
    ),
    HyperRule(
        "targets-all-linear", "target_modules", {"family": "lora"}, "all_linear",
        "all linear layers (attention and MLP): attention-only LoRA underperforms even at a "
        "matched parameter count, and all-linear won the demo grid",
        f"{QLORA}; {BIDERMAN}; {LWR}; {DEMO_GRID}",
    ),
    HyperRule(
        "rank-from-capacity", "r", {"family": "lora", "over_capacity": False}, capacity_rank,
        "r={value}: {value} x {params_per_rank:,} = {capacity:,} trainable parameters on all "
        "linear layers cover the {completion_tokens:,} completion tokens ({completion_basis}); "
        "LoRA matches full fine-tuning while parameters >= tokens (r=16 is the floor)",
        f"{LWR}; {TINKER}; {UNSLOTH}",
    ),
    HyperRule(
        "rank-at-capacity-limit", "r", {"family": "lora", "over_capacity": True}, RANKS[-1],
        "r={value}: even r={value} ({capacity:,} parameters) is below the {completion_tokens:,} "
        "completion tokens ({completion_basis}); beyond LoRA's capacity full fine-tuning wins",
        f"{LWR}; {TINKER}",
    ),
    HyperRule(
        "rslora-large-rank", "use_rslora",
        {"family": "lora", "takes_rslora": True, "r": Between(RSLORA_FROM)}, True,
        "rsLoRA scaling alpha/sqrt(r) at r={r}: with alpha/r large ranks stall",
        RSLORA,
    ),
    HyperRule(
        "plain-scaling-small-rank", "use_rslora", {"family": "lora"}, False,
        "plain alpha/r scaling at r={r} (rsLoRA matters from r={rslora_from})",
        RSLORA,
    ),
    HyperRule(
        "alpha-keeps-scale", "lora_alpha", {"family": "lora"}, scaled_alpha,
        "lora_alpha={value}: scale {scale_text} = 2, the demo grid's best (alpha = 2r); the "
        "ratio trades against the learning rate (QLoRA used alpha/r = 0.25)",
        f"{DEMO_GRID}; {UNSLOTH}; {QLORA}",
    ),
    HyperRule(
        "prompt-tuning-tokens", "num_virtual_tokens", {"method": "prompt_tuning"}, 20,
        "20 virtual tokens: advisor's default; EVIDENCE.md has no figure for it",
        "advisor default (unsourced)",
    ),
    HyperRule(
        "lr-qlora-recipe-7b-13b", "learning_rate",
        {"method": "qlora", "params_b": Between(6, 20)}, 2e-4,
        "2e-4: QLoRA's recipe for 7B-13B ({params_b:.1f}B here); Tinker's 16-bit LoRA fit "
        "gives {tinker:.3g}",
        QLORA,
    ),
    HyperRule(
        "lr-qlora-recipe-33b-65b", "learning_rate",
        {"method": "qlora", "params_b": Between(20)}, 1e-4,
        "1e-4: QLoRA's recipe for 33B-65B ({params_b:.1f}B here): larger models take smaller "
        "steps; Tinker's 16-bit LoRA fit gives {tinker:.3g}",
        QLORA,
    ),
    HyperRule(
        "lr-lora-by-model-size", "learning_rate", {"family": "lora"}, tinker_lr,
        "{value:.3g}: 5e-4 x (2000 / hidden {hidden_size})^{lr_exponent} for {lr_family}: "
        "larger models take smaller steps (~2.9e-4 at 8B, ~1.7e-4 at 70B); QLoRA's recipe "
        "says {qlora_recipe}",
        f"{TINKER}; {QLORA}",
    ),
    HyperRule(
        "lr-full-tenth-of-lora", "learning_rate", {"family": "full"}, full_lr,
        "{value:.3g}: a tenth of the LoRA rate for this model ({tinker:.3g}); LoRA's best rate "
        "is ~10x full fine-tuning's (typical 7B-8B full recipes: 1e-5 to 2e-5)",
        f"{LWR}; {TINKER}",
    ),
    HyperRule(
        "lr-prompt-tuning", "learning_rate", {"method": "prompt_tuning"}, 3e-2,
        "3e-2: soft prompts train a few thousand parameters at a high rate; advisor's default, "
        "EVIDENCE.md has no figure for it",
        "advisor default (unsourced)",
    ),
    HyperRule(
        "epochs-small-data", "epochs", {"examples": Between(None, 1_000)}, 3,
        "3 epochs for {examples:,} examples (1-3 by data size); watch eval loss: Raschka saw 2 "
        "epochs do worse than 1 on LIMA 1k",
        f"{UNSLOTH}; {RASCHKA}",
    ),
    HyperRule(
        "epochs-medium-data", "epochs", {"examples": Between(1_000, 10_000)}, 2,
        "2 epochs for {examples:,} examples (1-3 by data size); stop early on eval loss",
        f"{UNSLOTH}; {RASCHKA}",
    ),
    HyperRule(
        "epochs-large-data", "epochs", {"examples": Between(10_000)}, 1,
        "1 epoch for {examples:,} examples: 2 epochs did worse than 1 on Alpaca 50k",
        f"{RASCHKA}; {UNSLOTH}",
    ),
    HyperRule(
        "micro-batch-that-fits", "batch_size", {}, lambda f: f["micro_batch"],
        "{value} sequences per GPU per step: the largest of 8/4/2/1 (at most {effective_batch} "
        "over all GPUs) that fits with the headroom kept ({micro_batch_gb:.2f} GB of "
        "{usable_gb:.2f} GB)",
        "advisor.decide.fit (memory estimate with headroom)",
    ),
    HyperRule(
        "accumulate-to-effective-batch", "gradient_accumulation_steps", {},
        lambda f: max(1, math.ceil(EFFECTIVE_BATCH / (f["micro_batch"] * f["gpus"]))),
        "{value}: {micro_batch} per GPU x {gpus} GPU(s) x {value} accumulation step(s) ~ "
        "{effective_batch} sequences per optimizer step (a small batch; EVIDENCE.md has no "
        "figure for it)",
        "advisor default (unsourced)",
    ),
)  # fmt: skip


def _lr_family(shape: ModelShape) -> tuple[float, str]:
    """Tinker's exponent for the model's family; Llama's for families Tinker did not fit."""
    if "qwen" in shape.name.lower():
        return LR_EXPONENT["qwen"], "Qwen"
    if "llama" in shape.name.lower():
        return LR_EXPONENT["llama"], "Llama"
    return LR_EXPONENT["llama"], f"Llama (assumed for {shape.name}: Tinker fits no other family)"


def hyper_facts(
    method: str,
    shape: ModelShape,
    traits: Traits,
    *,
    completion_per_example: float | None = None,
    gradient_checkpointing: bool = False,
) -> dict[str, Any]:
    """What the rows read: the method, the model's size, the data's completion tokens, memory."""
    per_rank = adapter_params(shape, "lora", 1, TARGET_MODULE_PRESETS["all_linear"])
    if completion_per_example:
        per_example, basis = completion_per_example, "counted in --train"
    else:
        per_example = COMPLETION_SHARE * traits.seq_len
        basis = f"assumed {per_example:g} per example, half of --seq-len; --train counts them"
    tokens = round(per_example * traits.examples)
    exponent, lr_fam = _lr_family(shape)
    params_b = shape.num_params / 1e9
    facts: dict[str, Any] = {
        **traits.model_dump(),
        "method": method,
        "family": family(method),
        # AdaLoRA's layers scale by their own rank budget and never read use_rslora (peft 0.21)
        "takes_rslora": "use_rslora" in getattr(RUNNER_METHODS.get(method), "search", ()),
        "params_b": params_b,
        "hidden_size": shape.hidden_size,
        "params_per_rank": per_rank,
        "completion_tokens": tokens,
        "completion_basis": basis,
        "over_capacity": RANKS[-1] * per_rank < tokens,
        "lr_exponent": exponent,
        "lr_family": lr_fam,
        "qlora_recipe": "2e-4 at 7B-13B" if params_b < 20 else "1e-4 at 33B-65B",
        "rslora_from": RSLORA_FROM,
        "effective_batch": EFFECTIVE_BATCH,
        "usable_gb": usable_gb(traits.vram_gb, traits.gpus),
    }
    facts["tinker"] = tinker_lr(facts)
    memory = {"seq_len": traits.seq_len, "gradient_checkpointing": gradient_checkpointing}
    if facts["family"] == "lora":
        r = capacity_rank(facts)
        for preset in ("all_linear", "attention"):
            total = estimate_memory(shape, method, r=r, target_modules=preset, **memory).total_gb
            facts[f"{preset}_gb"], facts[f"{preset}_fits"] = total, fits(total, traits)
    return facts


def suggest(facts: dict[str, Any], shape: ModelShape, traits: Traits) -> dict[str, Suggestion]:
    """The first matching row per parameter; later parameters read earlier values."""
    out: dict[str, Suggestion] = {}
    lora = facts["family"] == "lora"
    for parameter in PARAMETERS:
        if parameter in LORA_ONLY and not lora:
            continue
        if parameter == "batch_size":
            kwargs = {"seq_len": traits.seq_len, "gradient_checkpointing": facts["checkpointing"]}
            if lora:
                kwargs |= {"r": facts["r"], "target_modules": facts["target_modules"]}
            facts["micro_batch"], facts["micro_batch_gb"] = micro_batch(
                shape, facts["method"], traits, most=EFFECTIVE_BATCH, **kwargs
            )
        if parameter == "lora_alpha":
            facts["scale_text"] = "alpha/sqrt(r)" if facts["use_rslora"] else "alpha/r"
        if parameter == "r":
            facts["capacity"] = capacity_rank(facts) * facts["params_per_rank"]
        row = next((r for r in HYPERPARAMETER_RULES if r.parameter == parameter
                    and r.matches(facts)), None)  # fmt: skip
        if row is None:
            continue
        out[parameter] = row.suggest(facts)
        facts[parameter] = out[parameter].value
        if parameter == "r":
            facts["capacity"] = facts["r"] * facts["params_per_rank"]
    return out


def starting_point(
    method: str,
    shape: ModelShape,
    traits: Traits,
    *,
    completion_per_example: float | None = None,
    gradient_checkpointing: bool = False,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The hyperparameters (`recommend`'s JSON keys: target_modules as module names) and, per
    key, the value with its reason, source and rule id."""
    if method == "rag":
        return {}, {}
    facts = hyper_facts(
        method,
        shape,
        traits,
        completion_per_example=completion_per_example,
        gradient_checkpointing=gradient_checkpointing,
    )
    facts["checkpointing"] = gradient_checkpointing
    chosen = suggest(facts, shape, traits)
    values = {name: s.value for name, s in chosen.items()}
    if "target_modules" in values:
        values["target_modules"] = list(TARGET_MODULE_PRESETS[values["target_modules"]])
    return values, {name: {**asdict(s), "value": values[name]} for name, s in chosen.items()}


def epochs_for(examples: int) -> int:
    """The epochs row for a data size (what the time estimate of every candidate uses)."""
    facts = {"examples": examples}
    return next(
        r.value for r in HYPERPARAMETER_RULES if r.parameter == "epochs" and r.matches(facts)
    )


def lora_capacity(
    shape: ModelShape, traits: Traits, completion_per_example: float | None
) -> tuple[int, bool]:
    """The LoRA family's rank for these traits (what `recommend` estimates memory with), and
    whether its parameters cover the completion tokens (else full fine-tuning's ceiling)."""
    facts = hyper_facts("lora", shape, traits, completion_per_example=completion_per_example)
    return capacity_rank(facts), not facts["over_capacity"]


def _check_rows() -> None:
    """Every row names a known parameter and a source, and ids are unique (run at import)."""
    ids = [row.id for row in HYPERPARAMETER_RULES]
    bad = [r.id for r in HYPERPARAMETER_RULES if r.parameter not in PARAMETERS or not r.source]
    if bad or len(set(ids)) != len(ids):
        raise ValueError(f"hyperparameter rows {bad or ids}: unknown parameter, no source or dup")


_check_rows()

__all__ = [
    "HYPERPARAMETER_RULES",
    "PARAMETERS",
    "RANKS",
    "HyperRule",
    "Suggestion",
    "capacity_rank",
    "epochs_for",
    "full_lr",
    "hyper_facts",
    "lora_capacity",
    "starting_point",
    "suggest",
    "tinker_lr",
]

"""The decision rules of `advisor recommend`, as data.

Each `Rule` is one row: a declarative condition on the facts (the task traits plus a few derived
facts such as `full_fits`), score deltas per method, optional plan contributions, a reason that
names the CLI option that drove it, and the source it comes from (DOMAIN.md's numbered decision
rules, which condense the articles in shared/seeds and the papers they cite).
`advisor.decide.recommend` evaluates every row against the facts and adds up the scores; no code
path picks a method by hand.

Condition values: a tuple means "one of", `Between` a numeric range, anything else equality.
Facts available to conditions and reason templates: every `Traits` field, and
`params_b` (the model's parameters in billions; None behind an API),
`full_fits`, `lora_fits`, `qlora_fits` (bool: fits in vram x gpus with the headroom of
`advisor.decide.fit` kept), `full_ceiling` (full fits and the data is large enough for full
fine-tuning to pay off), `full_gb`, `lora_gb`, `qlora_gb`, `total_vram_gb`, `usable_gb`.

Starting hyperparameters are rows of their own table, `advisor.decide.hyperparams`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .estimate import METHODS

TRAINED_WEIGHTS = ("full", "sft", "lora", "qlora", "dora", "adalora", "rag_lora")
"""Methods that need the weights; impossible behind a black-box API."""

LARGE_DATA = 100_000
"""Examples from which full fine-tuning's higher ceiling pays off (DOMAIN rule 2: 'very large')."""
INSTRUCTION_DATA = 10_000
"""Pairs from which full-parameter SFT is worth its memory (LIMA-scale data sets are ~1k-10k)."""
RAG_AND_TUNING = (
    "DOMAIN.md rule 1 ('Both needed -> RAG + fine-tuning'); RAFT (Zhang et al. 2024, "
    "arXiv:2403.10131: a model fine-tuned with retrieved passages, distractors among them, "
    "answers domain questions from them better than RAG on the base model)"
)
"""The source of `rag_lora`'s rows: retrieval for the facts, a LoRA trained to read them."""


@dataclass(frozen=True)
class Between:
    """A numeric condition: low <= value < high (either end open when None)."""

    low: float | None = None
    high: float | None = None

    def __call__(self, value: Any) -> bool:
        if value is None:  # an unknown fact (an API model's size) is in no range
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)


@dataclass(frozen=True)
class Rule:
    """One decision rule: when the facts match `when`, apply `scores` and `plan`, give `reason`."""

    id: str
    when: Mapping[str, Any]
    scores: Mapping[str, float]
    reason: str
    """A template over the facts; it starts with the option(s) of the deciding trait."""
    source: str
    plan: Mapping[str, str] = field(default_factory=dict)
    """Plan slots: retrieval=rag, alignment=sft, per_task=adapter, closed=api."""
    exclude: tuple[str, ...] = ()
    """Methods this rule makes impossible (not merely worse)."""

    def matches(self, facts: Mapping[str, Any]) -> bool:
        """True when every condition holds for the facts."""
        return all(holds(expected, facts[name]) for name, expected in self.when.items())

    def explain(self, facts: Mapping[str, Any]) -> str:
        return self.reason.format_map(dict(facts))


def holds(expected: Any, value: Any) -> bool:
    """One condition of a rule row: a tuple is 'one of', `Between` a range, else equality."""
    if isinstance(expected, Between):
        return expected(value)
    if isinstance(expected, tuple):
        return value in expected
    return value == expected


PRIORS: Mapping[str, float] = {
    "rag": 0.0,
    "rag_lora": 0.0,  # an index and a training run: it needs a reason (RAG_AND_TUNING's rows)
    "full": 0.0,
    "sft": 1.0,
    "lora": 2.0,
    "qlora": 1.0,
    "dora": 1.0,
    "adalora": 0.5,
    "prompt_tuning": 0.0,
}
"""Before any trait: LoRA is the default workhorse (DOMAIN rule 4); other methods need a reason."""

TIE_ORDER: tuple[str, ...] = (
    "rag", "prompt_tuning", "lora", "qlora", "dora", "adalora", "rag_lora", "sft"
)  # fmt: skip
"""Equal scores go to the cheaper, simpler method first; `full` last."""

RULES: tuple[Rule, ...] = (
    Rule(
        id="knowledge-first",
        when={"goal": "knowledge"},
        scores={
            "rag": 6,
            "sft": -2,
            "full": -1,
            "lora": -1,
            "qlora": -1,
            "dora": -1,
            "adalora": -1,
        },
        reason="--goal knowledge: the answers need facts; retrieval (RAG) supplies them, while "
        "fine-tuning shapes behaviour and is a poor, risky way to inject knowledge",
        source="DOMAIN.md rule 1",
    ),
    Rule(
        id="knowledge-read-by-an-adapter",
        when={"goal": "knowledge"},
        scores={"rag_lora": 2},
        reason="--goal knowledge: RAG + LoRA also takes the facts from retrieval, and its "
        "adapter learns to read the passages; second to RAG, which trains nothing",
        source=RAG_AND_TUNING,
    ),
    Rule(
        id="changing-knowledge",
        when={"goal": ("knowledge", "both"), "knowledge_changes": True},
        scores={"rag": 4, "rag_lora": 4, "full": -3, "sft": -3},
        plan={"retrieval": "rag"},
        reason="--knowledge-changes: facts that change belong in a retrievable index (RAG, or "
        "RAG + LoRA, whose adapter learns to read them), not in weights that must be retrained "
        "after every change",
        source="DOMAIN.md rule 1",
    ),
    Rule(
        id="knowledge-and-behaviour",
        when={"goal": "both"},
        scores={"rag": -4, "rag_lora": 4},
        plan={"retrieval": "rag"},
        reason="--goal both: RAG for the facts plus fine-tuning for the format and style; "
        "RAG + LoRA is both in one method, its adapter trained with the passages it will read",
        source=RAG_AND_TUNING,
    ),
    Rule(
        id="behaviour-needs-tuning",
        when={"goal": "behaviour"},
        scores={"rag": -6, "rag_lora": -4},
        reason="--goal behaviour: retrieval adds facts, not a format, style or skill; "
        "tune the model",
        source="DOMAIN.md rule 1",
    ),
    Rule(
        id="domain-corpus-full",
        when={"data_format": "corpus", "domain_shift": "high", "full_ceiling": True},
        scores={"full": 9, "sft": 1},
        reason="--domain-shift high with --examples {examples} documents (--data-format corpus) "
        "and "
        "memory for all weights ({full_gb} GB <= --vram x --gpus = {total_vram_gb} GB): full "
        "fine-tuning has the highest ceiling",
        source="DOMAIN.md rule 2",
    ),
    Rule(
        id="corpus-is-not-pairs",
        when={"data_format": "corpus"},
        scores={"sft": -3},
        reason="--data-format corpus: raw text suits continued pre-training or adapters, not SFT, "
        "which needs prompt/response pairs",
        source="DOMAIN.md rule 3",
    ),
    Rule(
        id="instruction-sft",
        when={
            "data_format": "pairs",
            "goal": ("behaviour", "both"),
            "examples": Between(INSTRUCTION_DATA),
            "full_fits": True,
        },
        scores={"sft": 4},
        reason="--data-format pairs with --examples {examples} and memory for all weights "
        "({full_gb} GB): full-parameter SFT on the responses",
        source="DOMAIN.md rule 3",
    ),
    Rule(
        id="sft-through-lora",
        when={"data_format": "pairs", "goal": ("behaviour", "both"), "full_fits": False},
        scores={"lora": 1, "rag_lora": 1},
        reason="--data-format pairs but all weights do not fit --vram x --gpus "
        "({full_gb} GB > {usable_gb} GB usable of {total_vram_gb:g} GB): SFT through LoRA",
        source="DOMAIN.md rule 3",
    ),
    Rule(
        id="limited-vram-lora",
        when={"full_fits": False, "lora_fits": True},
        scores={"lora": 3, "rag_lora": 3, "qlora": 1},
        reason="--vram {vram_gb:g} GB x --gpus {gpus}: full fine-tuning needs {full_gb} GB, "
        "16-bit LoRA ({lora_gb} GB) fits the {usable_gb} GB usable (headroom kept)",
        source="DOMAIN.md rule 4",
    ),
    Rule(
        id="tight-vram-qlora",
        when={"lora_fits": False, "qlora_fits": True},
        scores={"qlora": 6},
        reason="--vram {vram_gb:g} GB x --gpus {gpus}: 16-bit LoRA needs {lora_gb} GB > "
        "{usable_gb} GB usable (headroom kept); QLoRA's 4-bit NF4 base ({qlora_gb} GB) fits",
        source="DOMAIN.md rule 5; QLoRA paper (65B on one 48 GB GPU)",
    ),
    Rule(
        id="fast-iteration",
        when={"priority": "speed"},
        scores={"lora": 1.5, "qlora": -1, "adalora": -1, "full": -2},
        reason="--priority speed: LoRA iterates fastest (small optimizer state, no 4-bit "
        "dequantisation, no rank reallocation)",
        source="DOMAIN.md rule 4",
    ),
    Rule(
        id="low-cost",
        when={"priority": "cost"},
        scores={"lora": 1, "qlora": 1, "full": -2, "sft": -1},
        reason="--priority cost: adapters on a frozen base need the fewest GPU hours and no "
        "full model copy",
        source="DOMAIN.md rules 4-5",
    ),
    Rule(
        id="per-task-adapters",
        when={"tasks": Between(2)},
        scores={"lora": 2, "dora": 1, "qlora": 1, "full": -3, "sft": -2},
        plan={"per_task": "adapter"},
        reason="--tasks {tasks}: one adapter per task on one shared base, switched at load time",
        source="DOMAIN.md rule 6",
    ),
    Rule(
        id="sft-then-per-task-lora",
        when={"tasks": Between(2), "data_format": "pairs", "examples": Between(INSTRUCTION_DATA)},
        scores={},
        plan={"alignment": "sft"},
        reason="--tasks {tasks} with --examples {examples} pairs: SFT once for general instruction "
        "alignment, then one LoRA per scenario",
        source="DOMAIN.md rule 9",
    ),
    Rule(
        id="quality-far-domain-dora",
        when={"priority": "quality", "domain_shift": "high", "full_ceiling": False},
        scores={"dora": 6},
        reason="--priority quality with --domain-shift high and a limited parameter budget: DoRA "
        "(magnitude + direction) gets closest to full fine-tuning",
        source="DOMAIN.md rule 7; DoRA paper (Liu et al. 2024)",
    ),
    Rule(
        id="quality-auto-rank-adalora",
        when={
            "priority": "quality",
            "domain_shift": "medium",
            "tasks": 1,
            "examples": Between(5_000),
            "full_ceiling": False,
        },
        scores={"adalora": 7},
        reason="--priority quality with --domain-shift medium: AdaLoRA reallocates the rank budget "
        "by importance, so r need not be guessed per layer",
        source="DOMAIN.md rule 7; AdaLoRA paper (Zhang et al. 2023)",
    ),
    Rule(
        id="few-examples",
        when={"examples": Between(None, 1_000)},
        scores={"full": -3, "sft": -2, "prompt_tuning": 1},
        reason="--examples {examples}: too few to update every weight without overfitting; train a "
        "small adapter with a low r",
        source="DOMAIN.md 'Against catastrophic forgetting and overfitting'",
    ),
    Rule(
        id="prompt-tuning-needs-scale",
        when={"params_b": Between(None, 10)},
        scores={"prompt_tuning": -3},
        reason="--model {model} has {params_b:.2g}B parameters: prompt tuning approaches full "
        "fine-tuning only near 10B; on smaller models it trails far behind an adapter",
        source="Lester et al. 2021, 'The Power of Scale for Parameter-Efficient Prompt Tuning' "
        "(SuperGLUE, T5 small to XXL); measured here, SmolLM2-135M: json_match 0.00 against "
        "LoRA 0.70 and QLoRA 0.39 on the format demo (`recommend --verify`, BENCHMARKS.md)",
    ),
    Rule(
        id="api-weights",
        when={"weights": "api"},
        scores={},
        exclude=(*TRAINED_WEIGHTS, "prompt_tuning"),
        plan={"closed": "api"},
        reason="--weights api: no weights and no gradients: prompting, few-shot examples, "
        "retrieval and the vendor's own fine-tuning service; prompt tuning needs gradients "
        "through the model, which an API does not expose",
        source="DOMAIN.md rule 8, corrected by EVIDENCE.md 'Closed weights'",
    ),
)


def validate_rules() -> None:
    """Every rule names known methods and a CLI option: called by tests and at import."""
    seen = set()
    for rule in RULES:
        unknown = (set(rule.scores) | set(rule.exclude)) - set(METHODS)
        if unknown or rule.id in seen or not rule.reason.startswith("--"):
            raise ValueError(f"rule {rule.id!r}: unknown methods {unknown} or duplicate/bad reason")
        seen.add(rule.id)


validate_rules()

__all__ = [
    "PRIORS",
    "RULES",
    "TIE_ORDER",
    "TRAINED_WEIGHTS",
    "Between",
    "Rule",
    "holds",
    "validate_rules",
]

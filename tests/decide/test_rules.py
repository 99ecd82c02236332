"""The rule table is data: every DOMAIN.md rule is covered, conditions and reasons well formed."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from advisor.decide import rules
from advisor.decide.estimate import METHODS
from advisor.decide.rules import PRIORS, RULES, Between, Rule, validate_rules
from advisor.decide.traits import OPTION_OF, Traits

DERIVED_FACTS = {
    "full_fits", "lora_fits", "qlora_fits", "full_ceiling", "total_vram_gb", "usable_gb",
    "params_b",
}  # fmt: skip
OPTIONS = {part for option in OPTION_OF.values() for part in option.split("/")}


def test_every_domain_decision_rule_is_covered() -> None:
    cited = set()
    for rule in RULES:
        cited |= {int(n) for n in re.findall(r"rules? (\d)", rule.source)}
        cited |= {n for a, b in re.findall(r"rules (\d)-(\d)", rule.source) for n in
                  range(int(a), int(b) + 1)}  # fmt: skip
    assert cited >= set(range(1, 10))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_well_formed(rule: Rule) -> None:
    assert set(rule.when) <= set(Traits.model_fields) | DERIVED_FACTS
    assert set(rule.scores) | set(rule.exclude) <= set(METHODS)
    assert rule.source
    options = re.findall(r"--[a-z-]+", rule.reason)
    assert options and options[0] in OPTIONS, "a reason must start by naming the deciding option"
    assert set(rule.plan) <= {"retrieval", "alignment", "per_task", "closed"}


def test_priors_cover_every_method() -> None:
    assert set(PRIORS) == set(METHODS)


def _facts(**over: object) -> dict:
    facts = {**Traits().model_dump(), "total_vram_gb": 24.0, "usable_gb": 20.4}
    facts |= {"full_fits": False, "lora_fits": True, "qlora_fits": True, "full_ceiling": False}
    facts |= {"full_gb": 130.0, "lora_gb": 20.0, "qlora_gb": 9.0, "params_b": 8.0}
    return {**facts, **over}


def _fired(**over: object) -> set[str]:
    facts = _facts(**over)
    return {rule.id for rule in RULES if rule.matches(facts)}


def test_conditions_select_the_right_rows() -> None:
    assert "prompt-tuning-needs-scale" in _fired(params_b=0.135)
    assert "prompt-tuning-needs-scale" not in _fired(params_b=70.0)
    assert "prompt-tuning-needs-scale" not in _fired(params_b=None)  # an API model: unknown
    assert "tight-vram-qlora" in _fired(lora_fits=False)
    assert "tight-vram-qlora" not in _fired()
    assert "per-task-adapters" in _fired(tasks=2)
    assert "per-task-adapters" not in _fired(tasks=1)
    assert "changing-knowledge" in _fired(goal="both", knowledge_changes=True)
    assert "changing-knowledge" not in _fired(goal="behaviour", knowledge_changes=True)
    assert "api-weights" in _fired(weights="api")
    # Unknown memory (API model): neither `full_fits: True` nor `False` rows fire.
    unknown = _fired(full_fits=None, lora_fits=None, qlora_fits=None, full_ceiling=None)
    assert not unknown & {"limited-vram-lora", "sft-through-lora", "instruction-sft"}


def test_reasons_render_with_facts() -> None:
    rule = next(r for r in RULES if r.id == "limited-vram-lora")
    text = rule.explain(_facts(vram_gb=24.0, gpus=2))
    assert text.startswith("--vram 24 GB x --gpus 2") and "130.0 GB" in text


def test_between_is_half_open() -> None:
    assert Between(2)(2) and not Between(2)(1)
    assert Between(None, 1000)(999) and not Between(None, 1000)(1000)


def test_validate_rules_rejects_unknown_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = replace(RULES[0], scores={"lorax": 1})
    monkeypatch.setattr(rules, "RULES", (*RULES, bad))
    with pytest.raises(ValueError, match="lorax"):
        validate_rules()

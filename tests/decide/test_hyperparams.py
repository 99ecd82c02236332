"""Each hyperparameter rule on its published case (shared/EVIDENCE.md), and the table's shape."""

from __future__ import annotations

import math

import pytest

from advisor.decide.hyperparams import (
    HYPERPARAMETER_RULES,
    PARAMETERS,
    RANKS,
    hyper_facts,
    starting_point,
    suggest,
)
from advisor.decide.shapes import PRESETS
from advisor.decide.traits import Traits


def _start(method: str, model: str, **traits: object) -> tuple[dict, dict]:
    t = Traits(model=model, **{"vram_gb": 80.0, "gpus": 8, **traits})
    return starting_point(method, PRESETS[model], t)


@pytest.mark.parametrize(
    ("model", "lr"),
    [("llama-2-7b", 2e-4), ("llama-2-13b", 2e-4), ("llama-30b", 1e-4), ("llama-65b", 1e-4)],
)
def test_qlora_learning_rate_is_the_qlora_recipe(model: str, lr: float) -> None:
    values, why = _start("qlora", model)
    assert values["learning_rate"] == lr
    assert "QLoRA" in why["learning_rate"]["source"]
    assert "Tinker" in why["learning_rate"]["reason"], "the other source's figure is named"


@pytest.mark.parametrize(("model", "lr"), [("llama-3-8b", 2.9e-4), ("llama-3-70b", 1.7e-4)])
def test_lora_learning_rate_is_tinkers_fit(model: str, lr: float) -> None:
    values, why = _start("lora", model)
    assert values["learning_rate"] == pytest.approx(lr, rel=0.03)
    assert "Tinker" in why["learning_rate"]["source"]


def test_larger_models_take_smaller_steps_for_every_lora_family_method() -> None:
    for method in ("lora", "qlora", "dora", "adalora"):
        small = _start(method, "llama-2-7b")[0]["learning_rate"]
        large = _start(method, "llama-2-70b")[0]["learning_rate"]
        assert large < small, method


def test_full_fine_tuning_rate_is_a_tenth_of_lora() -> None:
    for model in ("llama-3-8b", "llama-3-70b", "qwen2.5-7b"):
        lora = _start("lora", model)[0]["learning_rate"]
        for method in ("full", "sft"):
            values, why = _start(method, model)
            assert values["learning_rate"] == pytest.approx(lora / 10, rel=0.01)
            assert "LoRA Without Regret" in why["learning_rate"]["source"]
            assert "target_modules" not in values and "r" not in values


def test_qwen_uses_its_own_exponent() -> None:
    # Tinker: P = 0.0775 for Qwen, so its rate barely moves with size; Llama's does (0.781).
    values, why = _start("lora", "qwen2.5-7b")
    assert values["learning_rate"] == pytest.approx(5e-4 * (2000 / 3584) ** 0.0775, rel=0.01)
    assert "Qwen" in why["learning_rate"]["reason"]


@pytest.mark.parametrize("method", ["lora", "qlora", "dora", "adalora"])
@pytest.mark.parametrize("examples", [300, 1_000, 10_000, 1_000_000])
def test_target_modules_are_all_linear(method: str, examples: int) -> None:
    values, why = _start(method, "llama-3-8b", examples=examples)
    assert values["target_modules"] == [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    ]  # fmt: skip
    assert why["target_modules"]["rule"] == "targets-all-linear"
    assert "Biderman" in why["target_modules"]["source"]


def test_targets_narrow_only_for_memory_and_say_so() -> None:
    shape, traits = PRESETS["llama-3-8b"], Traits(vram_gb=24)
    facts = hyper_facts("lora", shape, traits)
    facts |= {"all_linear_fits": False, "attention_fits": True, "checkpointing": True}
    chosen = suggest(facts, shape, traits)
    assert chosen["target_modules"].value == "attention"
    assert "for memory" in chosen["target_modules"].reason


def test_rank_covers_the_completion_tokens() -> None:
    shape = PRESETS["llama-3-8b"]  # 2,621,440 all-linear parameters per unit of rank
    cases = [(10_000, 16), (1_000_000, 128)]  # x 256 completion tokens each
    for examples, rank in cases:
        values, why = _start("lora", "llama-3-8b", examples=examples, seq_len=512)
        assert values["r"] == rank
        tokens = examples * 256
        facts = hyper_facts("lora", shape, Traits(examples=examples))
        assert rank * facts["params_per_rank"] >= tokens
        if rank > RANKS[0]:
            assert (rank // 2) * facts["params_per_rank"] < tokens
        assert f"{tokens:,} completion tokens" in why["r"]["reason"]


def test_counted_completion_tokens_win_over_the_assumption() -> None:
    shape, traits = PRESETS["llama-3-8b"], Traits(examples=1_000_000, vram_gb=80, gpus=8)
    counted = starting_point("lora", shape, traits, completion_per_example=40)
    assumed = starting_point("lora", shape, traits)
    assert counted[0]["r"] < assumed[0]["r"]
    assert "counted in --train" in counted[1]["r"]["reason"]


def test_beyond_capacity_says_full_fine_tuning_wins() -> None:
    values, why = _start("lora", "llama-3-8b", examples=10_000_000)
    assert values["r"] == RANKS[-1] and why["r"]["rule"] == "rank-at-capacity-limit"
    assert "full fine-tuning wins" in why["r"]["reason"]


def test_rslora_for_large_ranks_keeps_the_scale() -> None:
    large, why = _start("lora", "llama-3-8b", examples=1_000_000)
    assert large["use_rslora"] is True and "rsLoRA" in why["use_rslora"]["source"]
    assert large["lora_alpha"] == round(2 * math.sqrt(large["r"]))
    small, _ = _start("lora", "llama-3-8b", examples=1_000)
    assert small["use_rslora"] is False and small["lora_alpha"] == 2 * small["r"]


@pytest.mark.parametrize(("examples", "epochs"), [(500, 3), (1_000, 2), (9_999, 2), (50_000, 1)])
def test_epochs_by_data_size(examples: int, epochs: int) -> None:
    values, why = _start("lora", "llama-3-8b", examples=examples)
    assert values["epochs"] == epochs
    if examples == 50_000:  # Raschka: on Alpaca 50k, 2 epochs did worse than 1
        assert "Raschka" in why["epochs"]["source"]


@pytest.mark.parametrize(("vram", "gpus"), [(24.0, 1), (80.0, 1), (80.0, 8), (16.0, 2)])
def test_batch_and_accumulation_reach_the_effective_batch(vram: float, gpus: int) -> None:
    traits = Traits(model="llama-2-7b", vram_gb=vram, gpus=gpus)
    values, _ = starting_point("qlora", PRESETS["llama-2-7b"], traits)
    per_step = values["batch_size"] * gpus
    assert per_step <= 16
    assert per_step * values["gradient_accumulation_steps"] >= 16


def test_every_value_carries_its_reason_and_source() -> None:
    for method in ("lora", "qlora", "full", "prompt_tuning"):
        values, why = _start(method, "llama-3-8b")
        assert set(values) == set(why)
        for key, entry in why.items():
            assert entry["value"] == values[key] and entry["reason"] and entry["source"]


def test_rows_name_known_parameters_and_unique_ids() -> None:
    assert {row.parameter for row in HYPERPARAMETER_RULES} == set(PARAMETERS)
    assert len({row.id for row in HYPERPARAMETER_RULES}) == len(HYPERPARAMETER_RULES)

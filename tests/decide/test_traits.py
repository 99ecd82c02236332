"""The traits `advisor recommend` decides from, and the estimator's options: finite numbers in
stated ranges, refused with the option's name and a fix (`advisor.decide.traits`, `estimate`)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from advisor.decide.estimate import MAX_COUNT, estimate_memory
from advisor.decide.recommend import recommend
from advisor.decide.shapes import PRESETS
from advisor.decide.traits import OPTION_OF, Traits
from advisor.errors import AdvisorInputError

NUMBERS = ["examples", "vram_gb", "gpus", "tasks", "seq_len", "budget_usd"]


def _refusal(**values: Any) -> AdvisorInputError:
    with pytest.raises(AdvisorInputError) as caught:
        Traits.from_options(**values)
    return caught.value


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("field", ["vram_gb", "budget_usd"])
def test_float_traits_refuse_non_finite_values(field: str, value: float) -> None:
    error = _refusal(**{field: value})
    assert error.where == OPTION_OF[field]
    assert "finite number" in error.message and "not inf or nan" in (error.fix or "")


@pytest.mark.parametrize("field", NUMBERS)
def test_every_numeric_trait_states_and_enforces_its_upper_bound(field: str) -> None:
    info = Traits.model_fields[field]
    limit = next(m.le for m in info.metadata if getattr(m, "le", None) is not None)
    error = _refusal(**{field: limit * 10 + 1})
    assert error.where == OPTION_OF[field] and "less than or equal to" in error.message
    assert " .. " in info.description or "(0, " in info.description  # the range, stated


def test_the_largest_traits_give_finite_strict_json() -> None:
    traits = Traits(examples=10**12, vram_gb=1e5, gpus=10**5, seq_len=2**20, budget_usd=1e12)
    payload = recommend(traits).to_dict()
    json.dumps(payload, allow_nan=False)  # raises on NaN or Infinity


def test_one_problem_names_its_option_once() -> None:
    error = _refusal(vram_gb=-8)
    assert str(error).startswith("--vram: Input should be greater than 0 (got -8)")
    assert str(error).count("--vram") == 1


def test_several_problems_are_each_named() -> None:
    error = _refusal(vram_gb=math.nan, gpus=0, examples=10**400)
    assert error.where == "--examples, --vram, --gpus"
    for option in ("--examples:", "--vram:", "--gpus:"):
        assert option in error.message and option in (error.fix or "")
    assert len(str(error)) < 1_000  # 10**400 is quoted cut short


@pytest.mark.parametrize("option", ["r", "batch_size", "seq_len"])
@pytest.mark.parametrize("value", [0, -1, MAX_COUNT + 1, 10**400])
def test_estimate_options_are_whole_numbers_in_range(option: str, value: int) -> None:
    with pytest.raises(AdvisorInputError) as caught:
        estimate_memory(PRESETS["llama-3-8b"], "lora", **{option: value})
    assert caught.value.where == "--" + option.replace("_", "-")
    assert f"from 1 to {MAX_COUNT}" in (caught.value.fix or "")
    assert len(str(caught.value)) < 300


def test_estimate_at_the_largest_options_is_finite() -> None:
    est = estimate_memory(
        PRESETS["llama-3-70b"], "full", r=MAX_COUNT, batch_size=MAX_COUNT, seq_len=MAX_COUNT
    )
    assert math.isfinite(est.total_gb)
    json.dumps(est.to_dict(), allow_nan=False)

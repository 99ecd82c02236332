"""Every number of a study is finite and within its field's stated range, and an error quotes a
value only as far as a reader can use it (`advisor.study.space`, `sections`, `spec`)."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from advisor.errors import AdvisorInputError
from advisor.study import StudySpec, load_study, resolve_target_modules
from advisor.study.space import INT_MAX, SEED_MAX, Section, shown

BASE: dict[str, Any] = {
    "name": "t",
    "model": {"source": "smollm2-135m"},
    "data": {"train": "train.jsonl", "eval": "eval.jsonl"},
    "search": {"r": [4, 8], "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}},
}


def _numeric_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every int/float field of the section tree (the search space aside: its
    parameters are unions of a value, choices and a range, tested on their own below)."""
    found = []
    for name, info in model.model_fields.items():
        if prefix == () and name in ("search", "tasks"):  # tasks hold a DataSpec, as `data`
            continue
        args = typing.get_args(info.annotation) or (info.annotation,)
        sections = [a for a in args if isinstance(a, type) and issubclass(a, Section)]
        if sections:
            found += _numeric_fields(sections[0], (*prefix, name))
        elif any(a in (int, float) for a in args) and info.annotation is not bool:
            found.append((*prefix, name))
    return found


NUMERIC = _numeric_fields(StudySpec)


def _load(tmp_path: Path, raw: dict[str, Any] | str) -> StudySpec:
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text('{"prompt": "p", "response": "r"}\n')
    path = tmp_path / "study.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return load_study(path)


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    section = raw
    for key in path[:-1]:
        section = section.setdefault(key, {})
    section[path[-1]] = value
    return raw


def _refusal(tmp_path: Path, raw: dict[str, Any] | str) -> str:
    with pytest.raises(AdvisorInputError) as caught:
        _load(tmp_path, raw)
    return " ".join(str(caught.value).split())


def test_the_walk_finds_the_fields_the_issue_names() -> None:
    for path in [("seed",), ("trial", "max_memory_gb"), ("cost", "price_per_hour")]:
        assert path in NUMERIC
    assert len(NUMERIC) >= 25  # train, eval, optuna, trial, cost, tracking, data, replay


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("path", NUMERIC, ids=[".".join(p) for p in NUMERIC])
def test_every_numeric_field_refuses_non_finite_values(
    tmp_path: Path, path: tuple[str, ...], value: float
) -> None:
    message = _refusal(tmp_path, _with(path, value))
    assert f"{'.'.join(path)}: Input should be a finite number" in message
    assert ".nan and .inf" in message


def test_the_issue_cases_are_refused_at_their_yaml_lines(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False)
    text += "seed: 18446744073709551616\ntrial: {max_memory_gb: .inf}\n"
    text += "cost: {price_per_hour: .inf}\n"
    text = text.replace("high: 0.001", "high: .inf").replace("low: 0.0001", "low: .nan")
    message = _refusal(tmp_path, text)
    lines = {line: n for n, line in enumerate(text.splitlines(), start=1)}
    assert f":{lines['seed: 18446744073709551616']}: seed: " in message
    assert "(fix: use a value <= 4294967295)" in message
    memory = lines["trial: {max_memory_gb: .inf}"]
    assert f":{memory}: trial.max_memory_gb: Input should be a finite number" in message
    assert "search.learning_rate.low: Input should be a finite number (got nan)" in message
    assert "search.learning_rate.high: Input should be a finite number (got inf)" in message
    assert "cost.price_per_hour: Input should be a finite number" in message
    assert "5 problems" in message


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("seed",), SEED_MAX + 1, "seed: Input should be less than or equal to 4294967295"),
        (("seed",), -1, "seed: Input should be greater than or equal to 0"),
        (("train", "max_steps"), INT_MAX + 1, "train.max_steps: Input should be less than"),
        (("train", "max_steps"), 1e30, "train.max_steps: "),
        (("optuna", "timeout_s"), 0, "optuna.timeout_s: Input should be greater than 0"),
        (("optuna", "timeout_s"), 1e12, "optuna.timeout_s: Input should be less than"),
        (("trial", "timeout_s"), 1e12, "trial.timeout_s: Input should be less than"),
        (("trial", "max_memory_gb"), 0, "trial.max_memory_gb: Input should be greater than 0"),
        (("trial", "max_memory_gb"), 1e300, "trial.max_memory_gb: Input should be less than"),
        (("trial", "processes"), 10**6, "trial.processes: Input should be less than"),
        (("cost", "price_per_hour"), -1, "cost.price_per_hour: Input should be greater than"),
        (("cost", "price_per_hour"), 1e300, "cost.price_per_hour: Input should be less than"),
        (("tracking", "system_metrics_s"), 1e9, "tracking.system_metrics_s: Input should be"),
        (("optuna", "heartbeat_interval"), 10**12, "optuna.heartbeat_interval: Input should be"),
    ],
)
def test_numbers_outside_their_range_are_refused(
    tmp_path: Path, path: tuple[str, ...], value: Any, needle: str
) -> None:
    assert needle in _refusal(tmp_path, _with(path, value))


def test_the_edges_of_the_ranges_are_accepted(tmp_path: Path) -> None:
    raw = _with(("seed",), SEED_MAX)
    raw["trial"] = {"timeout_s": 366 * 24 * 3600, "max_memory_gb": 0.5}
    raw["cost"] = {"price_per_hour": 0}
    spec = _load(tmp_path, raw)
    assert spec.seed == SEED_MAX and spec.trial.max_memory_gb == 0.5


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ({"r": {"low": 0, "high": 8}}, "search.r.low: Input should be greater than or equal to 1"),
        ({"r": {"low": 4, "high": INT_MAX + 1}}, "search.r.high: Input should be less than"),
        ({"learning_rate": {"low": -1e-3, "high": 1e-2}}, "search.learning_rate.low: "),
        ({"learning_rate": {"low": 0, "high": 1e-2}}, "search.learning_rate.low: "),
        ({"learning_rate": [1e-3, math.inf]}, "search.learning_rate[1]: Input should be a finite"),
        ({"learning_rate": math.nan}, "search.learning_rate: Input should be a finite number"),
        ({"alpha_ratio": {"low": 0, "high": 2}}, "search.alpha_ratio.low: Input should be greater"),
        ({"lora_dropout": {"low": 0.1, "high": 1.5}}, "search.lora_dropout.high: Input should be"),
        ({"lora_dropout": {"low": -0.1, "high": 0.5}}, "search.lora_dropout.low: Input should be"),
        ({"r": {"low": 2, "high": 8, "step": 0}}, "search.r.step: Input should be greater"),
    ],
)
def test_a_range_obeys_the_bounds_of_its_parameter(
    tmp_path: Path, search: dict[str, Any], needle: str
) -> None:
    raw = _with(("search",), {**BASE["search"], **search})
    assert needle in _refusal(tmp_path, raw)


def test_replay_fraction_range_stays_below_one(tmp_path: Path) -> None:
    raw = _with(("data", "replay"), {"path": "train.jsonl"})
    raw["search"]["replay_fraction"] = {"low": 0.0, "high": 1.0}
    assert "search.replay_fraction.high: Input should be less than 1" in _refusal(tmp_path, raw)


def test_the_schema_states_each_range() -> None:
    schema = StudySpec.model_json_schema()
    seed = schema["properties"]["seed"]
    assert (seed["minimum"], seed["maximum"]) == (0, SEED_MAX) and "2^32-1" in seed["description"]
    ranges = schema["$defs"]
    assert ranges["PositiveFloatRange"]["properties"]["low"]["exclusiveMinimum"] == 0
    assert ranges["FractionRange"]["properties"]["high"]["exclusiveMaximum"] == 1
    limits = ranges["TrialLimitsSpec"]["properties"]["max_memory_gb"]
    assert "(0, 2^20]" in limits["description"]


def test_errors_quote_long_values_cut_short(tmp_path: Path) -> None:
    long = "x" * 100_000
    message = _refusal(tmp_path, _with(("method",), long))
    assert "unknown method 'xxx" in message and "..." in message
    assert len(message) < 1_000
    raw = _with(("data",), {"train": long + ".jsonl", "eval": "eval.jsonl"})
    message = _refusal(tmp_path, raw)
    assert "is too long for the file system" in message and len(message) < 2_000
    with pytest.raises(AdvisorInputError) as caught:
        resolve_target_modules([long] * 1000, ["q_proj", "v_proj"])
    assert len(str(caught.value)) < 2_000 and "and 995 more" in str(caught.value)


def test_shown_keeps_short_values_whole_and_cuts_long_ones() -> None:
    assert shown("q_proj") == "'q_proj'" and shown(18446744073709551616) == "18446744073709551616"
    assert len(shown("y" * 10**6)) < 250
    assert len(shown(list(range(10**5)))) < 100
    assert len(shown(10**400)) < 60

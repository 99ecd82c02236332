"""The study file schema: valid specs, cross-field rules and all-errors-at-once reporting."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from advisor.errors import AdvisorInputError
from advisor.study import StudySpec, dump_resolved, load_study, spec_hash, study_json_schema


def _spec(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    for name in ("train.jsonl", "eval.jsonl"):
        (tmp_path / name).write_text('{"prompt": "p", "response": "r"}\n')
    raw: dict[str, Any] = {
        "name": "t",
        "model": {"source": "smollm2-135m"},
        "data": {"train": "train.jsonl", "eval": "eval.jsonl"},
        "search": {"r": [4, 8], "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True}},
    }
    raw.update(overrides)
    return raw


def _write(tmp_path: Path, raw: dict[str, Any] | str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


def _errors(path: Path) -> str:
    with pytest.raises(AdvisorInputError) as caught:
        load_study(path)
    return str(caught.value)


def test_minimal_study_is_fully_defaulted_and_paths_resolve_against_the_file(tmp_path: Path):
    spec = load_study(_write(tmp_path, _spec(tmp_path)))
    assert spec.data.train == str(tmp_path / "train.jsonl")
    assert spec.search.alpha_ratio == 2.0 and spec.search.target_modules == "attention_qv"
    assert spec.tracking.experiment == "t"
    assert spec.directions() == ["maximize"]
    assert spec.source_file == str((tmp_path / "study.yaml").resolve())


def test_dump_resolved_reloads_to_the_same_spec_and_hash(tmp_path: Path):
    spec = load_study(_write(tmp_path, _spec(tmp_path)))
    other = tmp_path / "copy"
    other.mkdir()
    (other / "resolved.yaml").write_text(dump_resolved(spec))
    again = load_study(other / "resolved.yaml")
    assert again.model_dump() == spec.model_dump()
    changed = load_study(_write(tmp_path, _spec(tmp_path, seed=5)))
    assert spec_hash(changed) != spec_hash(spec)


def test_malformed_study_reports_every_error_with_its_line(tmp_path: Path):
    text = (
        "name: Bad Name\n"  # 1
        "model:\n"  # 2
        "  source: smollm2-135m\n"  # 3
        "data:\n"  # 4
        "  train: nope.jsonl\n"  # 5
        "  eval: eval.jsonl\n"  # 6
        "metric: bleu\n"  # 7
        "method: lorra\n"  # 8
        "search:\n"  # 9
        "  target_modules: [attention_qv, atention]\n"  # 10
        "train:\n"  # 11
        "  batchsize: 4\n"  # 12
    )
    _spec(tmp_path)
    message = _errors(_write(tmp_path, text))
    expected = {
        1: "name",
        5: "data.train",
        7: "metric",
        8: "method",
        10: "search.target_modules",
        12: "train.batchsize",
    }
    for line, path in expected.items():
        assert re.search(rf"study\.yaml:{line}: {re.escape(path)}: ", message), (line, message)
    assert "6 problems" in message
    assert "did you mean 'batch_size'" in message
    assert "does not exist" in message


def test_grid_sampler_rejects_a_continuous_range(tmp_path: Path):
    raw = _spec(tmp_path, optuna={"sampler": "grid"})
    message = _errors(_write(tmp_path, raw))
    assert "search.learning_rate: the grid sampler needs a finite list" in message
    raw["search"]["learning_rate"] = [1e-4, 1e-3]
    assert load_study(_write(tmp_path, raw)).optuna.sampler == "grid"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"metric": "bleu"}, "metric: Input should be"),
        ({"method": "vera"}, "unknown method 'vera'"),
        ({"search": {"target_modules": "attn"}}, "'attn' is not a target-module preset"),
        ({"search": {"lora_alpha": [16], "alpha_ratio": [2]}}, "lora_alpha and alpha_ratio"),
        ({"search": {"r": {"low": 16, "high": 4}}}, "`low <= high` must hold"),
        ({"method": "full"}, "method 'full' has no 'r' parameter"),
        ({"objectives": ["metric", "wall_seconds"]}, "cannot prune a two-objective study"),
        ({"objectives": ["wall_seconds"]}, "objectives must be [metric]"),
        ({"objectives": ["metric", "cost_usd"], "optuna": {"pruner": "none"}}, "needs a price"),
        ({"train": {"max_steps": 5, "eval_steps": 10}}, "eval_steps (10) exceeds max_steps"),
        ({"data": {"train": "a.txt", "eval": "eval.jsonl"}}, "must end in .jsonl"),
        ({"model": {"source": "meta-llama/Llama-3-8B"}}, "neither a preset nor an existing"),
        ({"precision": "fp16", "device": "cpu"}, "fp16 training is not supported on CPU"),
    ],
)
def test_invalid_specs_name_the_rule(tmp_path: Path, override: dict[str, Any], needle: str):
    raw = _spec(tmp_path)
    raw.update(override)
    assert needle in _errors(_write(tmp_path, raw))


def test_two_objectives_without_pruner_give_directions(tmp_path: Path):
    raw = _spec(tmp_path, objectives=["metric", "wall_seconds"], optuna={"pruner": "none"})
    raw["metric"] = "eval_loss"
    spec = load_study(_write(tmp_path, raw))
    assert spec.objective_names() == ["eval_loss", "wall_seconds"]
    assert spec.directions() == ["minimize", "minimize"]


def test_missing_file_and_yaml_syntax_error(tmp_path: Path):
    with pytest.raises(AdvisorInputError, match="does not exist"):
        load_study(tmp_path / "absent.yaml")
    message = _errors(_write(tmp_path, "name: x\nsearch:\n  r: [4, 8\n"))
    assert "YAML syntax error" in message and re.search(r"study\.yaml:\d+:", message)


def test_data_files_lacking_the_fields_are_reported(tmp_path: Path):
    """Rows in no layout (prompt_response with the fields the study names included) are the
    layouts' error: the file, the row, the fields found and the layouts read."""
    raw = _spec(tmp_path)
    raw["data"]["prompt_field"] = "question"
    message = _errors(_write(tmp_path, raw))
    assert "train.jsonl:1: no data layout matches the row" in message
    assert "fields found: prompt (a string)" in message
    assert "prompt_response (question, response)" in message


def test_direct_construction_raises_on_cross_field_rules():
    raw = {
        "name": "t",
        "model": {"source": "smollm2-135m"},
        "data": {"train": "a.jsonl", "eval": "b.jsonl"},
        "method": "full",
        "search": {"r": 8},
    }
    with pytest.raises(ValidationError, match="method 'full' has no 'r'"):
        StudySpec.model_validate(raw)


def test_json_schema_documents_every_section():
    schema = study_json_schema()
    json.dumps(schema)
    assert {"name", "model", "data", "search", "optuna", "objectives"} <= set(schema["properties"])
    assert "description" in schema["$defs"]["SearchSpec"]["properties"]["r"]

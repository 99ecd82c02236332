"""Replay mixing: the exact composition of the training mixture, and `replay_fraction` from the
study file (fixed or searched) to the trial's DataConfig."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from advisor.errors import AdvisorInputError
from advisor.study import fixed_parameters, load_study, resolve_trial_config, search_parameters
from runners.config import DataConfig, TrialConfig
from runners.data import draw_replay, replay_count, training_set
from runners.errors import TrialInputError
from runners.testing import write_jsonl

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SYSTEM = "Answer with JSON."


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """20 task rows (t0..t19) and 7 replay rows (g0..g6) under other field names."""
    task = write_jsonl(
        tmp_path / "train.jsonl", [{"prompt": f"t{i}", "response": f"T{i}"} for i in range(20)]
    )
    replay = write_jsonl(
        tmp_path / "replay.jsonl", [{"ask": f"g{i}", "answer": f"G{i}"} for i in range(7)]
    )
    return task, replay


def _config(files: tuple[Path, Path], fraction: float, **kw: Any) -> DataConfig:
    task, replay = files
    return DataConfig(
        str(task),
        str(task),
        system_prompt=SYSTEM,
        replay_path=str(replay),
        replay_fraction=fraction,
        replay_prompt_field="ask",
        replay_response_field="answer",
        **kw,
    )


def _user(pair: tuple[list[dict[str, str]], str]) -> str:
    return pair[0][-1]["content"]


def test_replay_count_is_the_replay_share_of_the_mixture() -> None:
    assert replay_count(200, 0.1) == 22  # 22 / 222 = 9.9%
    assert replay_count(300, 0.1) == 33
    assert replay_count(300, 0.05) == 16  # 15.79 rounds up
    assert replay_count(20, 0.5) == 20
    assert replay_count(3, 0.25) == 1  # 1.0
    assert replay_count(100, 0.0) == 0
    with pytest.raises(TrialInputError, match=r"\[0, 1\)"):
        replay_count(10, 1.0)


def test_mixture_composition_is_exact(files) -> None:
    mix = training_set(_config(files, 0.5), seed=7)
    assert mix.task_examples == 20 and len(mix.replay_rows) == 20 and len(mix.pairs) == 40
    # which rows: the seeded draw, a full permutation of the 7 rows before any repeats
    assert list(mix.replay_rows) == draw_replay(7, 20, seed=7)
    assert sorted(mix.replay_rows[:7]) == list(range(7))
    assert sorted(mix.replay_rows[7:14]) == list(range(7))
    assert set(Counter(mix.replay_rows).values()) <= {2, 3}  # each row 20/7 times, no favourite
    users = Counter(_user(p) for p in mix.pairs)
    expected = Counter([f"t{i}" for i in range(20)] + [f"g{i}" for i in mix.replay_rows])
    assert users == expected
    # responses stay with their prompts; replay rows carry no task system prompt
    for messages, response in mix.pairs:
        text = messages[-1]["content"]
        assert response == text.upper()
        roles = [m["role"] for m in messages]
        assert roles == (["user"] if text.startswith("g") else ["system", "user"])
    # shuffled together: replay rows are not all at the end
    assert any(_user(p).startswith("g") for p in mix.pairs[:20])


def test_mixture_is_seeded(files) -> None:
    config = _config(files, 0.25)  # round(0.25 * 20 / 0.75) = 7 rows: a permutation
    first, again = training_set(config, seed=3), training_set(config, seed=3)
    other = training_set(config, seed=4)
    assert first == again
    assert len(first.replay_rows) == len(other.replay_rows) == 7
    assert first.replay_rows != other.replay_rows and first.pairs != other.pairs
    smaller = training_set(_config(files, 0.1), seed=3)  # 2 rows
    assert list(smaller.replay_rows) == draw_replay(7, 2, seed=3)
    assert draw_replay(7, 2, seed=3) == draw_replay(7, 7, seed=3)[:2]


def test_no_replay_keeps_the_task_set_as_it_was(files) -> None:
    task_only = training_set(_config(files, 0.0), seed=7)
    assert task_only.replay_rows == () and task_only.task_examples == 20
    assert [_user(p) for p in task_only.pairs] == [f"t{i}" for i in range(20)]
    limited = training_set(_config(files, 0.5, max_train_examples=6), seed=7)
    assert limited.task_examples == 6 and len(limited.replay_rows) == 6


def test_replay_input_errors_name_the_setting(files, tmp_path: Path) -> None:
    config = _config(files, 0.2)
    with pytest.raises(TrialInputError, match="ask") as caught:
        training_set(dataclasses.replace(config, replay_prompt_field="question"), seed=0)
    assert caught.value.where == "data.replay.prompt_field"
    with pytest.raises(TrialInputError, match="no replay file") as caught:
        training_set(dataclasses.replace(config, replay_path=None), seed=0)
    missing = dataclasses.replace(config, replay_path=str(tmp_path / "nope.jsonl"))
    with pytest.raises(TrialInputError, match="does not exist") as caught:
        training_set(missing, seed=0)
    assert caught.value.where == "data.replay.path"


# --- the study file ------------------------------------------------------------------------------


def _study(tmp_path: Path, *, replay: dict | None = None, search: dict | None = None) -> Path:
    for name in ("train.jsonl", "eval.jsonl", "general.jsonl"):
        write_jsonl(tmp_path / name, [{"prompt": "p", "response": "r"}])
    data: dict[str, Any] = {"train": "train.jsonl", "eval": "eval.jsonl"}
    if replay is not None:
        data["replay"] = replay
    raw = {
        "name": "t",
        "model": {"source": "smollm2-135m"},
        "data": data,
        "search": {"r": [4, 8], "learning_rate": 1e-3, **(search or {})},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _errors(path: Path) -> str:
    with pytest.raises(AdvisorInputError) as caught:
        load_study(path)
    return str(caught.value)


def test_searched_replay_fraction_flows_into_the_trial_config(tmp_path: Path) -> None:
    spec = load_study(
        _study(
            tmp_path,
            replay={"path": "general.jsonl", "prompt_field": "prompt"},
            search={"replay_fraction": [0.0, 0.05, 0.1]},
        )
    )
    params = {p.name: p for p in search_parameters(spec)}
    assert params["replay_fraction"].choices == (0.0, 0.05, 0.1)
    config = resolve_trial_config(
        spec, {"r": 8, "replay_fraction": 0.05}, trial_number=1, output_dir=str(tmp_path)
    )
    assert config.data.replay_fraction == 0.05
    assert config.data.replay_path == str(tmp_path / "general.jsonl")
    assert (config.data.replay_prompt_field, config.data.replay_response_field) == (
        "prompt",
        "response",
    )
    assert TrialConfig.from_json(config.to_json()) == config
    baseline = resolve_trial_config(spec, {}, trial_number=-1, output_dir="o", baseline=True)
    assert baseline.data.replay_fraction == 0.0
    assert spec.space_size() == 2 * 3


def test_fixed_replay_fraction_and_no_replay(tmp_path: Path) -> None:
    fixed = load_study(_study(tmp_path, replay={"path": "general.jsonl", "fraction": 0.1}))
    assert fixed_parameters(fixed)["replay_fraction"] == 0.1
    assert "replay_fraction" not in {p.name for p in search_parameters(fixed)}
    config = resolve_trial_config(fixed, {"r": 4}, trial_number=0, output_dir="o")
    assert config.data.replay_fraction == 0.1
    plain = load_study(_study(tmp_path))
    config = resolve_trial_config(plain, {"r": 4}, trial_number=0, output_dir="o")
    assert config.data.replay_path is None and config.data.replay_fraction == 0.0
    assert config.eval.forgetting and config.eval.forgetting_text_tokens == 2048


@pytest.mark.parametrize(
    ("replay", "search", "where", "says"),
    [
        (None, {"replay_fraction": [0.0, 0.1]}, "search.replay_fraction", "data.replay is not"),
        ({"path": "general.jsonl"}, None, "data.replay.fraction", "has no fraction"),
        (
            {"path": "general.jsonl", "fraction": 0.1},
            {"replay_fraction": [0.0, 0.1]},
            "data.replay.fraction",
            "set twice",
        ),
        ({"path": "general.jsonl", "fraction": 1.0}, None, "data.replay.fraction", "less than 1"),
        (
            None,
            {"replay_fraction": {"low": 0.0, "high": 1.5}},
            "search.replay_fraction",
            "less than 1",
        ),
        ({"path": "general.txt", "fraction": 0.1}, None, "data.replay", "must end in"),
        ({"path": "../outside.jsonl", "fraction": 0.1}, None, "data.replay", "outside the data"),
    ],
)
def test_replay_rules(tmp_path: Path, replay, search, where: str, says: str) -> None:
    sub = tmp_path / "study"
    sub.mkdir()
    write_jsonl(tmp_path / "outside.jsonl", [{"prompt": "p", "response": "r"}])
    message = _errors(_study(sub, replay=replay, search=search))
    assert where in message and says in message


def test_demo_replay_study_compares_with_and_without_replay() -> None:
    spec = load_study(STUDIES / "demo_replay.yaml")
    assert [p.name for p in search_parameters(spec)] == ["replay_fraction"]
    assert spec.optuna.sampler == "grid" and spec.optuna.n_trials == 2 and spec.eval.forgetting
    with_replay = resolve_trial_config(
        spec, {"replay_fraction": 0.1}, trial_number=1, output_dir="o"
    )
    composition = training_set(with_replay.data, seed=with_replay.seed)
    assert (composition.task_examples, len(composition.replay_rows)) == (300, 33)
    rows = [
        json.loads(line) for line in Path(with_replay.data.replay_path).read_text().splitlines()
    ]
    assert len(rows) == 60 and len(set(composition.replay_rows)) == 33

"""From sampled values to a resolved TrialConfig; target-module presets and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.errors import AdvisorInputError
from advisor.study import (
    TARGET_MODULE_PRESETS,
    decode_choice,
    encode_choice,
    load_study,
    resolve_target_modules,
    resolve_trial_config,
    search_parameters,
)
from runners.config import TrialConfig

DEMO = Path(__file__).resolve().parents[2] / "studies" / "demo.yaml"
LLAMA = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_search_parameters_describe_the_demo_space():
    spec = load_study(DEMO)
    params = {p.name: p for p in search_parameters(spec)}
    assert params["r"].kind == "categorical" and params["r"].choices == (4, 8, 16)
    assert params["target_modules"].choices == ("attention_qv", "all_linear")
    lr = params["learning_rate"]
    declared = spec.search.learning_rate
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", declared.low, declared.high, True)


def test_resolved_config_round_trips_through_json(tmp_path: Path):
    spec = load_study(DEMO)
    sampled = {"r": 16, "alpha_ratio": 2.0, "target_modules": "all_linear", "learning_rate": 5e-4}
    config = resolve_trial_config(
        spec, sampled, trial_number=3, output_dir=str(tmp_path), available_modules=LLAMA
    )
    assert config.method.lora_alpha == 32.0
    assert config.method.target_modules == tuple(TARGET_MODULE_PRESETS["all_linear"])
    assert config.train.learning_rate == 5e-4 and config.train.max_steps == spec.train.max_steps
    assert config.eval.metric == "json_match" and config.data.max_eval_examples == 32
    assert Path(config.data.train_path).is_file()
    assert TrialConfig.from_json(config.to_json()) == config


def test_explicit_module_list_and_baseline(tmp_path: Path):
    spec = load_study(DEMO)
    encoded = encode_choice(["q_proj", "k_proj"])
    assert encoded == "q_proj+k_proj" and decode_choice(encoded) == ("q_proj", "k_proj")
    config = resolve_trial_config(
        spec,
        {"r": 4, "alpha_ratio": 1.0, "target_modules": encoded, "learning_rate": 1e-3},
        trial_number=0,
        output_dir=str(tmp_path),
    )
    assert config.method.target_modules == ("q_proj", "k_proj") and config.method.lora_alpha == 4
    base = resolve_trial_config(spec, {}, trial_number=-1, output_dir=str(tmp_path), baseline=True)
    # A baseline takes each searched parameter's first choice or the low end of its range.
    low = spec.search.learning_rate.low
    assert base.baseline and base.train.learning_rate == low and base.method.r == 4


def test_missing_or_unknown_parameters_are_refused(tmp_path: Path):
    spec = load_study(DEMO)
    with pytest.raises(ValueError, match="lacks values"):
        resolve_trial_config(spec, {"r": 4}, trial_number=0, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown trial parameters"):
        resolve_trial_config(spec, {"rank": 4}, trial_number=0, output_dir=str(tmp_path))


def test_target_module_check_suggests_the_closest_real_name():
    with pytest.raises(AdvisorInputError) as caught:
        resolve_target_modules(["qproj", "v_proj"], LLAMA, where="search.target_modules[1]")
    message = str(caught.value)
    assert "'qproj' (did you mean 'q_proj'?)" in message
    assert "search.target_modules[1]" in message and "down_proj" in message
    assert resolve_target_modules("attention", LLAMA) == ("q_proj", "k_proj", "v_proj", "o_proj")
    with pytest.raises(AdvisorInputError, match="preset 'mlp'"):
        resolve_target_modules("mlp", ["c_attn", "c_proj"])


def test_encode_choice_rejects_ambiguous_names():
    with pytest.raises(ValueError, match="collides"):
        encode_choice(["mlp"])
    with pytest.raises(ValueError, match="free of"):
        encode_choice(["a+b"])

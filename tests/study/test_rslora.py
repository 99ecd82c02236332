"""search.use_rslora (issue 16): the switch a study sets or searches, carried into the trial's
config; LoRA-family methods whose peft layers read it take it, the rest refuse it; a study
without it fingerprints as before it existed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support import write_tiny_study

from advisor.errors import AdvisorInputError
from advisor.study import (
    dump_resolved,
    load_study,
    resolve_trial_config,
    search_parameters,
    spec_hash,
)
from advisor.study.loading import spec_content
from runners.config import TrialConfig

PRESET = Path("smollm2-135m")
"""A model preset's name: load_study knows it without loading it (these tests train nothing)."""


def _study(tmp_path: Path, **search) -> Path:
    return write_tiny_study(tmp_path, PRESET, "rs", search=search)


def _config(tmp_path: Path, params: dict | None = None, **search) -> TrialConfig:
    spec = load_study(_study(tmp_path, **search))
    sampled = {"r": 4, "target_modules": "all_linear", "learning_rate": 1e-3, **(params or {})}
    return resolve_trial_config(spec, sampled, trial_number=0, output_dir=str(tmp_path), cuda=False)


def test_a_study_without_use_rslora_hashes_as_before_the_field_existed(tmp_path: Path) -> None:
    """Recorded studies keep their spec hash, so continuing one is not refused as changed; an
    explicit `false` is the same study (the same scaling), and hashes the same."""
    plain = load_study(_study(tmp_path))
    assert "use_rslora" not in spec_content(plain)["search"]
    assert "use_rslora" not in dump_resolved(plain)
    explicit_false = load_study(_study(tmp_path, use_rslora=False))
    assert spec_hash(explicit_false) == spec_hash(plain)
    on = load_study(_study(tmp_path, use_rslora=True))
    assert spec_content(on)["search"]["use_rslora"] is True
    assert spec_hash(on) != spec_hash(plain)
    searched = load_study(_study(tmp_path, use_rslora=[False, True]))
    assert spec_content(searched)["search"]["use_rslora"] == [False, True]


def test_absent_means_plain_scaling_in_the_trial_config(tmp_path: Path) -> None:
    assert _config(tmp_path).method.use_rslora is False


def test_a_fixed_true_reaches_the_trial_config_and_round_trips(tmp_path: Path) -> None:
    config = _config(tmp_path, use_rslora=True)
    assert config.method.use_rslora is True
    assert TrialConfig.from_json(config.to_json()) == config


def test_a_searched_switch_is_a_categorical_parameter_and_its_sample_is_trained(
    tmp_path: Path,
) -> None:
    spec = load_study(_study(tmp_path, use_rslora=[False, True]))
    params = {p.name: p for p in search_parameters(spec)}
    assert params["use_rslora"].kind == "categorical"
    assert params["use_rslora"].choices == (False, True)
    for sampled in (False, True):
        config = _config(tmp_path, {"use_rslora": sampled}, use_rslora=[False, True])
        assert config.method.use_rslora is sampled


def test_the_baseline_of_a_searched_switch_resolves(tmp_path: Path) -> None:
    spec = load_study(_study(tmp_path, use_rslora=[False, True]))
    config = resolve_trial_config(
        spec, {}, trial_number=0, output_dir=str(tmp_path), baseline=True, cuda=False
    )
    assert config.method.use_rslora is False  # the first choice


def test_a_config_written_before_the_field_loads_with_plain_scaling(tmp_path: Path) -> None:
    """A trial_config.json recorded by an older advisor (export, try) has no use_rslora key."""
    raw = _config(tmp_path).to_dict()
    del raw["method"]["use_rslora"]
    assert TrialConfig.from_dict(raw).method.use_rslora is False


@pytest.mark.parametrize("method", ["lora", "dora", "qlora"])
def test_the_lora_methods_whose_layers_read_it_take_it(tmp_path: Path, method: str) -> None:
    path = write_tiny_study(tmp_path, PRESET, "rs", method=method, search={"use_rslora": True})
    assert load_study(path).search.use_rslora is True


@pytest.mark.parametrize("method", ["full", "prompt_tuning", "ia3", "adalora"])
def test_methods_without_rslora_scaling_refuse_it_naming_the_field(
    tmp_path: Path, method: str
) -> None:
    """AdaLoRA's config inherits the field from LoraConfig but its layers never read it: refused,
    not silently trained with plain scaling."""
    path = write_tiny_study(tmp_path, PRESET, "rs", method=method)
    raw = yaml.safe_load(path.read_text())
    raw["search"] = {"learning_rate": 1e-3, "use_rslora": [False, True]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(AdvisorInputError) as refused:
        load_study(path)
    message = str(refused.value)
    assert "1 problem" in message
    assert f"search.use_rslora: method {method!r} has no 'use_rslora' parameter" in message
    assert "pick a method that uses it (lora, dora, qlora, rag_lora)" in message

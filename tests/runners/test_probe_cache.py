"""The base's view of the forgetting probes, measured once and cached (`runners.probe_cache`).

A trial that finds the view measures only its own side, with the figures of a trial that
measured the base itself; the key moves with what the view depends on; a file that cannot be
used is measured again and a cache that cannot be written costs time, never the trial. Every
test has its own $ADVISOR_CACHE_DIR (`_private_cache` in conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from runners import forgetting, probe_cache
from runners.config import EvalConfig, MethodConfig, ModelRef, TrialResult
from runners.forgetting import TOP_K, base_view, measure_forgetting, measure_untouched, probes_for
from runners.methods import get_method
from runners.models import load_model_and_tokenizer
from runners.trial import run_trial

SIZES = {"forgetting_text_tokens": 600, "forgetting_prompts": 4, "forgetting_max_new_tokens": 4}
SMALL = EvalConfig(**SIZES)
LORA = MethodConfig("lora", r=4, lora_alpha=8, target_modules=("q_proj", "v_proj"))
TRAINED_LORA = {"target_modules": ("q_proj", "k_proj", "v_proj", "o_proj")}
FULL = {"name": "full", "r": None, "lora_alpha": None, "target_modules": None}


def _load(model_dir: Path):
    return load_model_and_tokenizer(ModelRef(str(model_dir)), device="cpu", dtype=torch.float32)


def _key(
    model_dir: Path, tokenizer, cfg: EvalConfig = SMALL, max_positions: int | None = None, **changes
) -> str:
    """The key of `model_dir` with the tiny model's probes for `cfg`; `changes` override."""
    probes = forgetting.load_probes(tokenizer, cfg, max_positions=max_positions)
    settings = {
        "model_dir": model_dir,
        "tokenizer": tokenizer,
        "probes": probes,
        "cfg": cfg,
        "device": "cpu",
        "dtype": torch.float32,
        "load_kwargs": {},
        **changes,
    }
    return probe_cache.cache_key(**settings)


class _Spy:
    """Counts what a trial measures: base views taken, probe generations, training runs; and
    the order of the first two kinds against training."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import runners.trial

        self.events: list[str] = []
        for module, name, event in (
            (forgetting, "base_view", "base"),
            (forgetting, "generate", "generate"),
            (runners.trial, "train", "train"),
        ):
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name), event))

    def _wrap(self, function, event: str):
        def spy(*args, **kwargs):
            self.events.append(event)
            return function(*args, **kwargs)

        return spy

    def count(self, event: str) -> int:
        return self.events.count(event)


def _figures(result: TrialResult) -> tuple[float | None, ...]:
    return (
        result.forgetting_kl,
        result.base_ppl,
        result.tuned_ppl,
        result.general_score,
        result.base_general_score,
    )


def test_a_trial_with_the_base_cached_measures_only_its_own_side(
    make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spy = _Spy(monkeypatch)
    baseline = run_trial(
        make_config(baseline=True, evaluation=SIZES, output_dir=str(tmp_path / "b"))
    )
    assert baseline.state == "complete", baseline.error
    assert baseline.probes_base_source == "computed"
    assert (spy.count("base"), spy.count("generate")) == (1, 1)
    (cached,) = probe_cache.cache_dir().iterdir()
    record = json.loads(Path(str(baseline.probes_path)).read_text())
    assert record["cache_key"] == cached.stem and record["base_source"] == "computed"
    assert record["tuned"] is None and record["top_k"] == TOP_K
    assert [row["base_score"] for row in record["prompts"]] == [0.0] * 4  # a random model
    assert all(isinstance(row["base_reply"], str) for row in record["prompts"])
    assert record["base"]["ppl"] == baseline.base_ppl

    trial = make_config(method=TRAINED_LORA, train={"learning_rate": 5e-2}, evaluation=SIZES)
    spy.events.clear()
    hit = run_trial(dataclasses.replace(trial, output_dir=str(tmp_path / "hit")))
    assert hit.state == "complete", hit.error
    assert hit.probes_base_source == "cache"
    assert spy.count("base") == 0 and spy.count("generate") == 1  # its own replies only
    assert hit.base_ppl == baseline.base_ppl and hit.base_general_score == baseline.general_score
    assert hit.forgetting_kl is not None and hit.forgetting_kl > 0
    record = json.loads(Path(str(hit.probes_path)).read_text())
    assert record["base_source"] == "cache" and record["tuned"]["kl"] == hit.forgetting_kl
    assert [row["base_reply"] for row in record["prompts"]] == [
        row["base_reply"]
        for row in json.loads(Path(str(baseline.probes_path)).read_text())["prompts"]
    ]
    assert all("reply" in row and "score" in row for row in record["prompts"])
    assert TrialResult.from_dict(json.loads(hit.to_json())) == hit

    # The same trial with an empty cache measures the base itself (adapter off): same figures.
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path / "empty-cache"))
    spy.events.clear()
    fresh = run_trial(dataclasses.replace(trial, output_dir=str(tmp_path / "fresh")))
    assert fresh.probes_base_source == "computed"
    assert spy.count("base") == 1 and spy.count("generate") == 2
    assert _figures(fresh) == pytest.approx(_figures(hit), rel=1e-6, abs=1e-9)


def test_full_fine_tuning_with_the_base_cached_takes_no_view_before_training(
    make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spy = _Spy(monkeypatch)
    full = make_config(method=FULL, train={"learning_rate": 1e-2}, evaluation=SIZES)

    missed = run_trial(dataclasses.replace(full, output_dir=str(tmp_path / "miss")))
    assert missed.state == "complete", missed.error
    assert missed.probes_base_source == "computed"
    assert spy.events[:2] == ["base", "generate"] and spy.events.index("train") == 2

    # Any run on this base fills the cache: here the previous trial's view before training.
    spy.events.clear()
    hit = run_trial(dataclasses.replace(full, output_dir=str(tmp_path / "hit")))
    assert hit.probes_base_source == "cache"
    assert spy.events == ["train", "generate"]
    assert _figures(hit) == pytest.approx(_figures(missed), rel=1e-6, abs=1e-9)
    assert hit.forgetting_kl is not None and hit.forgetting_kl > 0


def test_an_untouched_model_forgets_exactly_nothing_against_the_cached_view(
    tiny_model: Path,
) -> None:
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)
    view = base_view(model, tokenizer, probes, SMALL)
    assert probe_cache.store("k" * 64, view) is not None
    loaded = probe_cache.load("k" * 64, probes)
    assert loaded is not None
    for name in ("target_logprobs", "top_ids", "top_logprobs", "rest_logprobs"):
        assert torch.equal(getattr(loaded, name), getattr(view, name)), name
    assert (loaded.replies, loaded.scores) == (view.replies, view.scores)

    torch.manual_seed(0)
    lora = get_method("lora").prepare(model, LORA)  # B is zero-initialised: the base itself
    measured = measure_forgetting(lora, tokenizer, probes, SMALL, base=loaded)
    assert (measured.kl, measured.ppl_delta, measured.general_score_delta) == (0.0, 0.0, 0.0)
    untouched = measure_untouched(loaded, probes)
    assert (untouched.kl, untouched.ppl_delta) == (0.0, 0.0)
    assert untouched.base_ppl == measured.base_ppl == measured.tuned_ppl


def test_the_key_moves_with_what_the_base_view_depends_on(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import BitsAndBytesConfig

    model_dir = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    _, tokenizer = _load(model_dir)
    key = _key(model_dir, tokenizer)
    assert key == _key(model_dir, _load(model_dir)[1])  # stable: nothing random in it
    assert len(key) == 64 and int(key, 16) >= 0

    others = [
        _key(model_dir, tokenizer, dataclasses.replace(SMALL, **{field: value}))
        for field, value in (
            ("forgetting_text_tokens", 520),
            ("forgetting_prompts", 3),
            ("forgetting_max_new_tokens", 5),
            ("batch_size", 2),
        )
    ]
    others += [_key(model_dir, tokenizer, max_positions=100)]  # a shorter context: other chunks
    others += [_key(model_dir, tokenizer, k=64), _key(model_dir, tokenizer, device="cuda")]
    others += [_key(model_dir, tokenizer, dtype=torch.bfloat16)]

    def quantised(kind: str) -> str:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=kind)
        return _key(model_dir, tokenizer, load_kwargs={"quantization_config": config})

    others += [quantised("nf4"), quantised("fp4")]
    assert quantised("nf4") == others[-2]  # the same quantisation, the same string

    template = tokenizer.chat_template
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    others.append(_key(model_dir, tokenizer))
    tokenizer.chat_template = template

    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # new weights
    others.append(_key(model_dir, tokenizer))
    config = model_dir / "config.json"
    config.write_text(config.read_text().replace("{", '{"advisor_test": 1,', 1))
    others.append(_key(model_dir, tokenizer))

    assert len({key, *others}) == len(others) + 1


def _corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x01 not a safetensors file")


def _corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def _older_format(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"format":"1"', b'"format":"0"'))


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    "corrupt",
    [_corrupt_truncated, _corrupt_garbage, _corrupt_empty, _older_format, _a_folder],
    ids=["truncated", "garbage", "empty", "older-format", "a-folder"],
)
def test_a_cache_file_that_cannot_be_used_is_ignored(
    tiny_model: Path, corrupt, capsys: pytest.CaptureFixture[str]
) -> None:
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)
    view = base_view(model, tokenizer, probes, SMALL)
    path = probe_cache.store("c" * 64, view)
    assert path is not None and probe_cache.load("c" * 64, probes) is not None
    corrupt(path)
    assert probe_cache.load("c" * 64, probes) is None
    assert f"ignoring the probe cache file {path}" in capsys.readouterr().err


def test_a_view_for_other_probes_or_another_key_is_ignored(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)
    path = probe_cache.store("a" * 64, base_view(model, tokenizer, probes, SMALL))
    assert path is not None
    fewer = probes_for(model, tokenizer, dataclasses.replace(SMALL, forgetting_prompts=3))
    assert probe_cache.load("a" * 64, fewer) is None
    shutil.copy(path, probe_cache.cache_path("b" * 64))  # renamed: it names its own key inside
    assert probe_cache.load("b" * 64, probes) is None
    err = capsys.readouterr().err
    assert "not 3 replies" in err and "written for another key" in err


def test_a_trial_measures_a_corrupted_view_again_and_rewrites_it(
    make_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(baseline=True, evaluation=SIZES)
    first = run_trial(config)
    (path,) = probe_cache.cache_dir().iterdir()
    _corrupt_truncated(path)
    again = run_trial(dataclasses.replace(config, output_dir=str(tmp_path / "again")))
    assert again.state == "complete", again.error
    assert again.probes_base_source == "computed" and _figures(again) == _figures(first)
    assert "ignoring the probe cache file" in capsys.readouterr().err
    third = run_trial(dataclasses.replace(config, output_dir=str(tmp_path / "third")))
    assert third.probes_base_source == "cache" and _figures(third) == _figures(first)


def test_a_cache_that_cannot_be_written_is_a_warning(
    make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("the cache's folder cannot be made under a file\n")
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(blocked))
    result = run_trial(make_config(baseline=True, evaluation=SIZES))
    assert result.state == "complete", result.error
    assert result.probes_base_source == "computed" and result.base_ppl is not None
    assert "warning: cannot write the probe cache" in capsys.readouterr().err
    assert blocked.read_text().startswith("the cache's folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_cache_folder_is_a_warning(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)
    probe_cache.cache_dir().mkdir(parents=True)
    probe_cache.cache_dir().chmod(0o500)
    try:
        assert probe_cache.store("r" * 64, base_view(model, tokenizer, probes, SMALL)) is None
    finally:
        probe_cache.cache_dir().chmod(0o700)
    assert "warning: cannot write the probe cache" in capsys.readouterr().err
    assert list(probe_cache.cache_dir().iterdir()) == []

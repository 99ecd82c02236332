"""run_trial end to end on the tiny Llama: results, pruning, determinism, failures, baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.reporting import CallbackReporter
from runners.trial import run_trial


def test_complete_trial_fills_every_result_field(make_config) -> None:
    reporter = CallbackReporter()
    result = run_trial(make_config(), reporter)
    assert result.state == "complete", result.error
    assert result.steps == 4 and [s for s, _ in result.eval_curve] == [2, 4]
    assert reporter.evals == result.eval_curve
    assert reporter.phases == ["load", "train", "evaluate", "forgetting", "save"]
    assert result.eval_loss == result.eval_curve[-1][1] and result.train_loss > 0
    assert result.score is not None and 0.0 <= result.score <= 1.0
    assert 0 < result.trainable_params < result.total_params
    assert 0 < result.trainable_percent < 10
    assert result.adapter_dir and (Path(result.adapter_dir) / "adapter_config.json").is_file()
    assert result.adapter_mb > 0
    for seconds in (result.wall_seconds, result.load_seconds, result.train_seconds):
        assert seconds > 0
    assert result.wall_seconds >= result.train_seconds + result.eval_seconds
    assert result.tokens_per_second and result.tokens_per_second > 0
    assert result.peak_memory_mb and result.peak_memory_mb > 50
    assert (result.device, result.precision) == ("cpu", "fp32")
    assert {"torch", "transformers", "peft", "trl"} <= set(result.versions)
    lines = Path(result.generations_path).read_text().splitlines()
    assert len(lines) == 3  # samples_to_log
    assert set(json.loads(lines[0])) == {"prompt", "reference", "prediction", "score"}
    out = Path(result.adapter_dir).parent
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter",
        "forgetting_probes.json",  # runners.probe_cache.write_record
        "generations.jsonl",
    ]
    assert result.probes_path == str(out / "forgetting_probes.json")
    assert result.probes_base_source == "computed"  # the test's own, empty cache


def test_reporter_prunes_at_first_eval(make_config) -> None:
    reporter = CallbackReporter(should_prune=lambda step, loss: True)
    result = run_trial(make_config(train={"max_steps": 6, "eval_steps": 2}), reporter)
    assert result.state == "pruned", result.error
    assert result.steps == 2 and len(reporter.evals) == 1
    assert result.eval_loss == reporter.evals[0][1]
    assert result.score is None and result.adapter_dir is None


def test_same_seed_gives_identical_adapter_and_losses(make_config, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    runs = [
        run_trial(make_config(output_dir=str(tmp_path / name), train={"learning_rate": 1e-2}))
        for name in ("a", "b")
    ]
    assert all(r.state == "complete" for r in runs), [r.error for r in runs]
    a, b = (load_file(Path(r.adapter_dir) / "adapter_model.safetensors") for r in runs)
    assert a.keys() == b.keys() and a
    assert all((a[k] == b[k]).all() for k in a)
    # Identical weights through the same kernels on one machine: the losses may differ only by
    # a threaded reduction's order, a few fp32 ulps of a loss near 5 (2**-23 * 5 = 6e-7).
    assert runs[0].eval_loss == pytest.approx(runs[1].eval_loss, abs=1e-6)
    assert runs[0].eval_curve == runs[1].eval_curve
    other = run_trial(make_config(seed=8, output_dir=str(tmp_path / "c")))
    c = load_file(Path(other.adapter_dir) / "adapter_model.safetensors")
    assert any(not (a[k] == c[k]).all() for k in a), "a different seed must change the adapter"


def test_missing_data_file_fails_before_loading(make_config, tmp_path: Path) -> None:
    reporter = CallbackReporter()
    result = run_trial(make_config(data={"train_path": str(tmp_path / "nope.jsonl")}), reporter)
    assert result.state == "failed"
    assert result.error.startswith("TrialInputError: data.train_path")
    assert "nope.jsonl" in result.error
    assert reporter.phases == []  # nothing was loaded


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"precision": "bf16"}, "precision 'bf16' needs CUDA"),
        ({"device": "cuda"}, "CUDA is not available"),
        ({"train": {"optimizer": "paged_adamw_8bit"}}, "train.optimizer"),
        ({"method": {"name": "lorra"}}, "unknown method 'lorra'"),
        ({"evaluation": {"metric": "bleu"}}, "unknown metric 'bleu'"),
    ],
)
def test_unusable_settings_fail_with_a_clear_error(make_config, overrides, expected) -> None:
    result = run_trial(make_config(**overrides))
    assert result.state == "failed"
    assert result.error.startswith("TrialInputError") and expected in result.error


def test_baseline_only_evaluates_the_untuned_model(make_config) -> None:
    reporter = CallbackReporter()
    result = run_trial(make_config(baseline=True), reporter)
    assert result.state == "complete", result.error
    assert reporter.phases == ["load", "evaluate", "forgetting"] and reporter.evals == []
    assert result.steps == 0 and result.trainable_params == 0 and result.adapter_dir is None
    assert result.eval_loss > 0 and result.score is not None


def test_eval_loss_metric_skips_generation_and_training_lowers_it(make_config) -> None:
    baseline = run_trial(make_config(baseline=True, evaluation={"metric": "eval_loss"}))
    tuned = run_trial(
        make_config(
            method={"name": "full"},
            evaluation={"metric": "eval_loss"},
            train={"max_steps": 10, "eval_steps": 10, "learning_rate": 3e-3},
        )
    )
    assert tuned.state == "complete", tuned.error
    assert tuned.score == tuned.eval_loss and tuned.generations_path is None
    assert tuned.adapter_dir is None and tuned.adapter_mb > 0  # full: weights size, not saved
    assert tuned.trainable_params == tuned.total_params
    assert tuned.eval_loss < baseline.eval_loss - 0.5

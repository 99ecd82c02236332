"""A `rag` study through `advisor tune` on the tiny Llama: one trial indexes the knowledge,
answers with passages untrained, and is recorded like any trial (score, cost, its log)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from support import write_tiny_study
from typer.testing import CliRunner

from advisor.cli import app


def test_a_rag_trial_runs_end_to_end_through_tune(
    tmp_path: Path, tiny_model: Path, monkeypatch
) -> None:
    from mlflow import MlflowClient

    from advisor.stores.keys import ROLE

    study = write_tiny_study(tmp_path, tiny_model, "ragged", optuna={"n_trials": 1})
    spec = yaml.safe_load(study.read_text())
    spec["method"] = "rag"
    spec["search"] = {"top_k": [1, 2], "chunk_size": 16}
    spec["data"]["knowledge"] = "kb"
    spec["eval"]["forgetting"] = False
    study.write_text(yaml.safe_dump(spec))
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "animals.md").write_text("The red fox and the blue owl are animals.")

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["tune", str(study), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    [row] = summary["rows"]
    assert row["state"] == "complete" and row["score"] is not None, row
    assert summary["baseline_score"] is not None  # the untuned model, without retrieval

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ragged")
    [trial] = [
        r for r in client.search_runs([experiment.experiment_id]) if r.data.tags[ROLE] == "trial"
    ]
    assert trial.data.params["top_k"] in ("1", "2")
    assert trial.data.metrics["trainable_params"] == 0 and trial.data.metrics["steps"] == 0
    assert trial.data.metrics["wall_seconds"] > 0
    log = Path(client.download_artifacts(trial.info.run_id, "trial.log", str(tmp_path)))
    assert "index: 1 passages of <= 16 words from 1 documents" in log.read_text()
    # the index is a phase of its own: in the run's metrics and in `report --timing`
    assert trial.data.metrics["index_chunks"] == 1 and trial.data.metrics["index_seconds"] >= 0
    timing = CliRunner().invoke(app, ["report", "ragged", "--timing", "--json"])
    assert timing.exit_code == 0, timing.output
    [timed] = [row for row in json.loads(timing.stdout)["timing"]["rows"] if row["trial"] == 0]
    assert timed["seconds"]["index"] == trial.data.metrics["index_seconds"]

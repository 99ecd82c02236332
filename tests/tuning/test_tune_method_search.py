"""A study over [rag, lora] through `advisor tune` on the tiny Llama (issue 17, item 2): each
trial runs the method it drew with that method's parameters only, the report compares the
methods (rich text and `--json`), and `advisor rerun` replays a trial's method and parameters."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from support import write_tiny_study
from typer.testing import CliRunner

from advisor.cli import app


def test_a_method_search_tunes_reports_and_reruns_across_methods(
    tmp_path: Path, tiny_model: Path, monkeypatch
) -> None:
    from mlflow import MlflowClient

    from advisor.stores.keys import ROLE

    study = write_tiny_study(
        tmp_path,
        tiny_model,
        "versus",
        seed=8,
        # A list of starting points: one per method, so the comparison runs both whatever the
        # sampler draws for the third trial.
        optuna={
            "n_trials": 3,
            "warm_start": True,
            "start": [{"method": "rag", "top_k": 1}, {"method": "lora", "r": 2}],
        },
        train={"max_steps": 2, "eval_steps": 1},
    )
    spec = yaml.safe_load(study.read_text())
    del spec["method"]
    spec["search"] = {
        "method": ["rag", "lora"],
        "r": [2, 4],
        "top_k": [1, 2],
        "chunk_size": 16,
        "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
    }
    spec["data"]["knowledge"] = "kb"
    spec["eval"]["forgetting"] = False
    study.write_text(yaml.safe_dump(spec))
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "animals.md").write_text("The red fox and the blue owl are animals.")

    monkeypatch.chdir(tmp_path)
    tuned = CliRunner().invoke(app, ["tune", str(study), "--json"])
    assert tuned.exit_code == 0, tuned.output
    rows = json.loads(tuned.stdout)["rows"]
    assert all(row["state"] == "complete" for row in rows), rows
    by_method = {row["params"]["method"]: row["params"] for row in rows}
    assert set(by_method) == {"rag", "lora"}
    assert set(by_method["rag"]) == {"method", "top_k"}  # no r, no learning rate
    assert set(by_method["lora"]) == {"method", "r", "learning_rate"}  # no top_k

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("versus")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags[ROLE] == "study"]
    assert parent.data.params["method"] == "rag,lora"
    trials = {r.data.params["method"]: r for r in runs if r.data.tags[ROLE] == "trial"}
    assert trials["rag"].data.metrics["trainable_params"] == 0
    assert trials["lora"].data.metrics["trainable_params"] > 0

    report = CliRunner().invoke(app, ["report", "versus", "--json", "--no-log-plots"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["method"] == "rag, lora"
    methods = {m["method"]: m for m in data["methods"]}
    assert set(methods) == {"rag", "lora"}
    for summary in methods.values():
        assert summary["complete"] >= 1 and summary["score"] is not None
        assert summary["wall_seconds"] > 0 and summary["cost_usd"] > 0
    first, second = data["methods"]
    assert first["score"] >= second["score"]
    verdict = (
        f"{first['method']} wins on this data: json_match {first['score']:.2f} against "
        f"{second['method']}'s {second['score']:.2f}"
        if first["score"] != second["score"]
        else f"{first['method']} and {second['method']} tie on this data"
    )
    assert data["decision"].startswith(verdict), data["decision"]
    text = CliRunner().invoke(app, ["report", "versus", "--no-log-plots"])
    assert text.exit_code == 0, text.output
    said = "wins on this data" if first["score"] != second["score"] else "tie on this data"
    shown = " ".join(text.output.split())
    assert "per method (its best trial)" in shown and said in shown

    lora_run = trials["lora"].info.run_id
    rerun = CliRunner().invoke(app, ["rerun", lora_run, "--name", "versus-lora", "--json"])
    assert rerun.exit_code == 0, rerun.output
    [replayed] = json.loads(rerun.stdout)["trials"]
    assert replayed["same_params"] and replayed["params"]["method"] == "lora"
    assert replayed["state"] == ["complete", "complete"]

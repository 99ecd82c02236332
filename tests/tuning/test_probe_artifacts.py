"""The base's probe outputs are measured once per study, by its baseline run, and logged there.

A real `tune` on the tiny Llama: the baseline computes the base's view of the forgetting probes
and caches it (`runners.probe_cache`); the trial after it reads it from the cache. Both runs
carry their record of the probes as an artifact and say where the base's view came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from support import write_tiny_study

from advisor.stores.keys import ROLE
from advisor.tuning.entry import tune

RECORD = "forgetting_probes.json"


def test_the_baseline_measures_the_base_once_and_logs_its_replies(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(cache))  # the trial processes inherit it
    study_file = write_tiny_study(
        tmp_path,
        tiny_model,
        "probes",
        eval={"forgetting_text_tokens": 300, "forgetting_prompts": 3},
        optuna={"n_trials": 1},
    )
    tune(study_file, root=tmp_path)

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("probes")
    runs = {r.data.tags.get(ROLE): r for r in client.search_runs([experiment.experiment_id])}
    records = {}
    for role in ("baseline", "trial"):
        run = runs[role]
        assert RECORD in {a.path for a in client.list_artifacts(run.info.run_id)}
        path = client.download_artifacts(run.info.run_id, RECORD, str(tmp_path / role))
        records[role] = json.loads(Path(path).read_text())
    assert runs["baseline"].data.metrics["probes_base_cached"] == 0.0
    assert runs["trial"].data.metrics["probes_base_cached"] == 1.0

    baseline, trial = records["baseline"], records["trial"]
    assert baseline["base_source"] == "computed" and trial["base_source"] == "cache"
    (cached,) = (cache / "probes").iterdir()
    assert baseline["cache_key"] == trial["cache_key"] == cached.stem
    assert baseline["tuned"] is None and trial["tuned"] is not None
    assert len(baseline["prompts"]) == 3
    assert [p["base_reply"] for p in trial["prompts"]] == [
        p["base_reply"] for p in baseline["prompts"]
    ]
    assert baseline["base"]["ppl"] == runs["baseline"].data.metrics["base_ppl"]

"""`advisor recommend --verify` end to end on the tiny Llama (issue 17, items 3 and 6): the top
candidates the rules rank (rag with a knowledge folder first, then the next two) are tuned in
one comparison study on the data, the measured ranking is printed beside the rule ranks, the
study is recorded in MLflow like any study, and the next plain `advisor recommend` in the folder
lists it under `evidence`, as a study on the same training data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from runners.testing import toy_dataset, write_jsonl


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_jsonl(tmp_path / "train.jsonl", toy_dataset(8, seed=1))  # batch 4: one pass, 2 steps
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=2))
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "animals.md").write_text("The red fox and the blue owl are animals.")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_verify_measures_the_candidates_records_the_study_and_feeds_evidence(
    folder: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    data = ["--model", str(tiny_model), "--train", "train.jsonl"]
    verify = [*data, "--eval", "eval.jsonl", "--metric", "json_match", "--goal", "knowledge"]
    verify += ["--verify", "--knowledge", "kb", "--budget-minutes", "5"]
    result = CliRunner().invoke(app, ["recommend", *verify, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    checked = answer["verification"]
    ranking = [line["method"] for line in answer["ranking"]]
    assert checked["rule_ranking"] == ranking
    assert ranking[0] == "rag"  # --goal knowledge: rag first
    candidates = set(ranking[:3])  # the top three; each runs here (nothing skipped, below)

    rows = {row["method"]: row for row in checked["methods"]}
    assert set(rows) == candidates
    for method, row in rows.items():
        assert row["rule_rank"] == ranking.index(method) + 1
        assert row["score"] is not None and row["trial"] is not None and row["wall_seconds"] > 0
    scores = [row["score"] for row in checked["methods"]]
    assert scores == sorted(scores, reverse=True)  # measured order, best first (json_match)
    reordered = [
        (a, b)
        for a in rows
        for b in rows
        if rows[a]["rule_rank"] < rows[b]["rule_rank"] and rows[b]["score"] > rows[a]["score"]
    ]
    assert len(checked["disagreements"]) == len(reordered)
    for above, below in reordered:
        assert f"rules rank {above} over {below}; measured {below} " in " ".join(
            checked["disagreements"]
        )
    budget = checked["budget"]
    assert (budget["max_steps"], budget["batch_size"], budget["train_rows"]) == (2, 4, 8)
    assert checked["skipped"] == {}

    name = checked["study"]
    assert name.startswith("verify-tiny-") and Path(checked["study_file"]).is_file()
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    trained = {
        r.data.params.get("method") for r in runs if r.data.tags.get("advisor.role") == "trial"
    }
    assert trained == candidates

    # the same verification again: the recorded study is continued (nothing trains again) and
    # printed for people, the measured ranking beside the rules'
    again = CliRunner().invoke(app, ["recommend", *verify])
    assert again.exit_code == 0, again.output
    shown = " ".join(again.output.split())
    assert f"Verified on your data: study {name} (2 steps x batch 4" in shown
    assert "measured ┃ method ┃ rules' rank ┃ json_match" in shown
    said = "Where the measurement disagrees" if reordered else "agrees with the rules' order"
    assert said in shown
    assert len(client.search_runs([experiment.experiment_id])) == len(runs)

    monkeypatch.delenv("ADVISOR_EVIDENCE")  # learn from ./mlruns, as outside the tests
    plain = CliRunner().invoke(app, ["recommend", *data, "--json"])
    assert plain.exit_code == 0, plain.output
    evidence = {e["name"]: e for e in json.loads(plain.stdout)["evidence"]}
    assert name in evidence
    assert evidence[name]["likeness"]["data"] == 1.0  # the slice is --train itself: same hash

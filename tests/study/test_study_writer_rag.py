"""`advisor recommend --write-study --knowledge` for the retrieval methods (issue 17, item 4):
a `rag` recommendation writes a grid over top_k and chunk_size with nothing trained, a
`rag_lora` one LoRA's search with top_k and room for the passages in max_seq_length; both
validate with the loader `tune` uses, the knowledge named relative to the study file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.cli import app
from advisor.study import load_study, search_parameters
from advisor.study.knowledge import passage_room

CATALOGUE = Path(__file__).resolve().parents[2] / "studies" / "data"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The knowledge demo's data in a project folder (the cwd)."""
    (tmp_path / "data" / "catalogue").mkdir(parents=True)
    for name in ("catalogue_train.jsonl", "catalogue_eval.jsonl"):
        (tmp_path / "data" / name).write_bytes((CATALOGUE / name).read_bytes())
    for document in (CATALOGUE / "catalogue").iterdir():
        (tmp_path / "data" / "catalogue" / document.name).write_bytes(document.read_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(goal: str, out: str) -> dict:
    result = CliRunner().invoke(
        app,
        [
            "recommend", "--goal", goal, "--model", "smollm2-135m", "--vram", "8",
            "--evidence", "none", "--train", "data/catalogue_train.jsonl",
            "--eval", "data/catalogue_eval.jsonl", "--knowledge", "data/catalogue",
            "--metric", "accuracy", "--write-study", out, "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_rag_recommendation_writes_a_grid_over_its_retrieval(project: Path) -> None:
    rec = _write("knowledge", "studies/rag.yaml")
    assert rec["method"] == "rag" and rec["study_file"] == "studies/rag.yaml"
    written = yaml.safe_load((project / "studies" / "rag.yaml").read_text())
    assert written["data"]["knowledge"] == "../data/catalogue"
    assert written["search"] == {"top_k": [1, 3, 6], "chunk_size": [32, 64, 128]}
    assert "learning_rate" not in written["search"]
    # nothing trains, but the eval prompts are cut at max_seq_length: room for 6 x 128 words
    room = passage_room("smollm2-135m", project / "data" / "catalogue", top_k=6, chunk_size=128)
    assert written["train"] == {"max_seq_length": written["train"]["max_seq_length"]}
    assert written["train"]["max_seq_length"] >= rec["traits"]["seq_len"] + room
    assert written["optuna"] == {"sampler": "grid", "pruner": "none", "n_trials": 9}
    spec = load_study(project / "studies" / "rag.yaml")
    assert spec.method == "rag"
    assert Path(spec.data.knowledge).resolve() == project / "data" / "catalogue"
    assert [p.name for p in search_parameters(spec)] == ["top_k", "chunk_size"]


def test_a_rag_lora_recommendation_writes_lora_with_retrieval(project: Path) -> None:
    rec = _write("both", "studies/both.yaml")
    assert rec["method"] == "rag_lora"
    written = yaml.safe_load((project / "studies" / "both.yaml").read_text())
    search = written["search"]
    assert search["top_k"] == [1, 3, 6] and search["chunk_size"] == 64
    assert rec["hyperparameters"]["r"] in search["r"] and "learning_rate" in search
    # the example's tokens (read from --train) plus 6 passages of 64 words, counted with the
    # model's tokenizer: 880 tokens on the catalogue, where the words-based estimate said 499
    # (1.3 tokens per word against the SKUs' and prices' 1.9) and cut every answer
    seq_len = rec["traits"]["seq_len"]
    room = passage_room("smollm2-135m", project / "data" / "catalogue", top_k=6, chunk_size=64)
    assert room > round(6 * 64 * 1.3)
    assert written["train"]["max_seq_length"] >= seq_len + room
    assert written["train"]["max_seq_length"] % 64 == 0
    assert written["optuna"]["start"]["top_k"] == 3  # the recommended point starts the study
    spec = load_study(project / "studies" / "both.yaml")
    assert spec.method == "rag_lora" and spec.metric == "accuracy"
    assert {"r", "learning_rate", "top_k"} <= {p.name for p in search_parameters(spec)}


def test_knowledge_outside_the_study_folder_is_inside_its_data_root(project: Path) -> None:
    _write("knowledge", "rag.yaml")  # the study beside data/: no root needed
    written = yaml.safe_load((project / "rag.yaml").read_text())
    assert written["data"]["knowledge"] == "data/catalogue" and "root" not in written["data"]
    knowledge = load_study(project / "rag.yaml").data.knowledge
    assert Path(knowledge).resolve() == project / "data" / "catalogue"

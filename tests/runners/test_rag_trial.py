"""The retrieval methods as trials on the tiny Llama: `rag` answers untrained with passages,
`rag_lora` trains with the passages in its prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import runners.trial
from runners.retrieval import INSTRUCTION
from runners.trial import run_trial

RETRIEVAL = {"r": None, "lora_alpha": None, "target_modules": None, "top_k": 2, "chunk_size": 16}
FACT = "the purple owl is the mascot of the night shift"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "mascots.md").write_text(f"Notes on mascots: {FACT}.")
    (folder / "farm.txt").write_text("The red hen and the white cow live on the farm.")
    return folder


def test_rag_indexes_the_knowledge_and_answers_untrained(make_config, knowledge: Path) -> None:
    config = make_config(
        method={"name": "rag", **RETRIEVAL}, data={"knowledge_path": str(knowledge)}
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.index_chunks == 2 and result.index_seconds > 0
    assert result.score is not None and result.eval_loss is not None
    assert (result.steps, result.train_seconds, result.trainable_params) == (0, 0.0, 0)
    assert result.adapter_dir is None and result.adapter_mb == 0
    assert result.forgetting_kl == 0  # the base model, untouched
    assert result.wall_seconds >= result.index_seconds + result.eval_seconds
    prompts = [
        json.loads(line)["prompt"]
        for line in Path(result.generations_path).read_text().splitlines()
    ]
    assert all(p.startswith(INSTRUCTION) and "Question: The " in p for p in prompts)
    # the toy eval asks about colours and animals; whichever passage shares a word is shown
    assert any("(farm.txt)" in p or "(mascots.md)" in p for p in prompts)
    assert sorted(p.name for p in Path(config.output_dir).iterdir()) == [
        "forgetting_probes.json",
        "generations.jsonl",
    ]


def test_rag_without_knowledge_fails_naming_the_field(make_config) -> None:
    result = run_trial(make_config(method={"name": "rag", **RETRIEVAL}))
    assert result.state == "failed"
    assert "data.knowledge" in result.error and "fix:" in result.error


def test_rag_lora_trains_on_prompts_that_hold_the_passages(
    make_config, knowledge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts: list[str] = []
    to_dataset = runners.trial.to_dataset

    def recording(examples, tokenizer, **kwargs):
        dataset, cut, sequences = to_dataset(examples, tokenizer, **kwargs)
        texts.extend(tokenizer.decode(row["input_ids"]) for row in dataset)
        return dataset, cut, sequences

    monkeypatch.setattr(runners.trial, "to_dataset", recording)
    config = make_config(
        method={"name": "rag_lora", "top_k": 2, "chunk_size": 16},
        data={"knowledge_path": str(knowledge), "max_train_examples": 8},
        train={"max_seq_length": 512},
    )
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.steps == 4 and result.adapter_dir and result.index_chunks == 2
    training_texts = texts[:8]  # to_dataset's first call is the training set
    assert all(INSTRUCTION in t for t in training_texts)
    owls = [t for t in training_texts if " owl" in t.split("Question:")[-1]]
    hens = [t for t in training_texts if " hen" in t.split("Question:")[-1]]
    assert owls or hens, training_texts  # the toy data holds owls and hens
    assert all(FACT in t for t in owls) and all("red hen" in t for t in hens)

"""The shipped example data of every layout and its study (studies/layout_*.yaml).

The data is reproducible from studies/data/make_layout_data.py, each file is read as the layout
it is meant to show, and each study validates and trains two steps through the real runner on
the tiny Llama in place of SmolLM2 (about 5 s a study on 2 CPU cores).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from support import load_script

from advisor.study import load_study, representative_parameters, resolve_trial_config
from runners.layouts import Conversation, Document, read_examples
from runners.trial import run_trial

STUDIES = Path(__file__).resolve().parents[2] / "studies"
DATA = STUDIES / "data"

LAYOUT_OF = {
    "messages_train.jsonl": "messages",
    "messages_eval.jsonl": "messages",
    "sharegpt_train.json": "sharegpt",
    "sharegpt_eval.json": "sharegpt",
    "alpaca_train.jsonl": "alpaca",
    "alpaca_eval.jsonl": "alpaca",
    "prompt_completion_train.parquet": "prompt_completion",
    "prompt_completion_eval.jsonl": "prompt_completion",
    "prompt_response_train.csv": "prompt_response",
    "prompt_response_eval.csv": "prompt_response",
    "corpus_train.jsonl": "text",
    "corpus_eval.jsonl": "text",
    "corpus_eval_dataset": "text",
}
"""Every file the generator writes, and the layout it shows."""
COLUMNAR = (".parquet", ".arrow")
"""Files that embed their writer's version: compared by table, not by bytes."""


def _generator():
    return load_script(DATA / "make_layout_data.py")


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _table(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:  # `save_to_disk` writes Arrow streams
        return pa.ipc.open_stream(source).read_all()


# --- (a) the generator -------------------------------------------------------------------------


def test_generator_reproduces_the_committed_files(tmp_path: Path):
    written = _generator().write(tmp_path)
    assert sorted(p.name for p in written) == sorted(LAYOUT_OF)
    for path in written:
        for new in _files(path):
            committed = DATA / new.relative_to(tmp_path)
            assert committed.is_file(), f"{committed} is not committed"
            if new.suffix in COLUMNAR:
                assert _table(new).equals(_table(committed)), new.name
            else:  # including the saved dataset's state.json: its fingerprint is fixed
                assert new.read_bytes() == committed.read_bytes(), new.name
        assert [p.relative_to(tmp_path) for p in _files(path)] == [
            p.relative_to(DATA) for p in _files(DATA / path.name)
        ], f"{path.name} holds other files than the generator writes"


def test_the_example_data_stays_small():
    sizes = [p.stat().st_size for name in LAYOUT_OF for p in _files(DATA / name)]
    assert sum(sizes) < 400_000


# --- (b) each file reads as its layout ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LAYOUT_OF))
def test_each_file_is_read_as_its_layout(name: str):
    layout, examples = read_examples(DATA / name, where="data.train")
    assert layout.name == LAYOUT_OF[name]
    train = "_train" in name
    assert (60 <= len(examples) <= 300) if train else (20 <= len(examples) <= 40)
    kind = Document if layout.kind == "text" else Conversation
    assert all(isinstance(example, kind) for example in examples)


def _conversations(name: str) -> list[Conversation]:
    examples = read_examples(DATA / name, where="data.train")[1]
    assert all(isinstance(example, Conversation) for example in examples)
    return examples  # type: ignore[return-value]


def test_chat_files_show_what_their_layout_allows():
    """Multi-turn rows and system turns where the layout has them, so that training on every
    assistant turn and scoring the last one given the rest are exercised by the examples."""
    for name in ("messages_train.jsonl", "messages_eval.jsonl", "sharegpt_train.json"):
        conversations = _conversations(name)
        assistant_turns = [sum(t.role == "assistant" for t in c.messages) for c in conversations]
        assert min(assistant_turns) == 1 and max(assistant_turns) == 2, name
    systems = [c.messages[0].role == "system" for c in _conversations("messages_train.jsonl")]
    assert 0.2 < sum(systems) / len(systems) < 0.6
    alpaca = [json.loads(line) for line in (DATA / "alpaca_train.jsonl").read_text().splitlines()]
    with_input = sum(bool(row["input"]) for row in alpaca)
    assert 0.3 < with_input / len(alpaca) < 0.7
    joined = _conversations("alpaca_train.jsonl")
    assert any("\n\n" in c.messages[0].content for c in joined)  # input after the instruction


def test_prompt_completion_comes_as_strings_and_as_turn_lists():
    import pyarrow.parquet as pq

    strings = pq.read_table(DATA / "prompt_completion_train.parquet").to_pylist()
    assert all(isinstance(r["prompt"], str) and isinstance(r["completion"], str) for r in strings)
    turns = [json.loads(line) for line in (DATA / "prompt_completion_eval.jsonl").open()]
    assert all(isinstance(r["prompt"], list) and isinstance(r["completion"], list) for r in turns)


def test_eval_rows_are_not_training_rows():
    pairs = [(f"{name}_train.{suffix}", f"{name}_eval.{suffix}") for name, suffix in SAME_SUFFIX]
    pairs.append(("prompt_completion_train.parquet", "prompt_completion_eval.jsonl"))
    for train_name, eval_name in pairs:
        seen = {_content(e) for e in read_examples(DATA / train_name, where="data.train")[1]}
        evaluation = read_examples(DATA / eval_name, where="data.eval")[1]
        assert not any(_content(e) in seen for e in evaluation), eval_name
    corpus = read_examples(DATA / "corpus_eval.jsonl", where="data.eval")[1]
    saved = read_examples(DATA / "corpus_eval_dataset", where="data.eval")[1]
    assert [_content(e) for e in saved] == [_content(e) for e in corpus]


SAME_SUFFIX = [("messages", "jsonl"), ("sharegpt", "json"), ("alpaca", "jsonl")]
SAME_SUFFIX += [("prompt_response", "csv"), ("corpus", "jsonl")]


def _content(example: Conversation | Document) -> object:
    return example.text if isinstance(example, Document) else example.messages


# --- (c) each study validates and trains on the tiny model ------------------------------------

LAYOUT_STUDIES = sorted(STUDIES.glob("layout_*.yaml"))


def test_there_is_a_study_per_layout():
    from runners.layouts import LAYOUTS

    assert {p.stem.removeprefix("layout_") for p in LAYOUT_STUDIES} == set(LAYOUTS)


def _on_tiny_model(study: Path, tiny_model: Path, folder: Path, **data: str) -> Path:
    """`study` with the tiny Llama for SmolLM2 and a two-step budget; its data stays where it
    is (data.root: the shipped studies folder); `data` overrides data.train and data.eval."""
    spec = yaml.safe_load(study.read_text())
    spec["data"].update(data)
    spec["model"]["source"] = str(tiny_model)
    spec["data"]["root"] = str(STUDIES)
    for split in ("train", "eval"):
        spec["data"][split] = str(STUDIES / spec["data"][split])
    spec["data"]["max_eval_examples"] = 4
    # The tiny tokenizer (384 tokens) cuts text into ~2x as many tokens as SmolLM2's.
    spec["train"].update(max_steps=2, eval_steps=2, batch_size=2, max_seq_length=256)
    spec["eval"].update(max_new_tokens=4, forgetting=False)
    path = folder / study.name
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("study", LAYOUT_STUDIES, ids=[p.stem for p in LAYOUT_STUDIES])
def test_layout_study_trains_two_steps_on_the_tiny_model(
    study: Path, tiny_model: Path, tmp_path: Path
):
    spec = load_study(_on_tiny_model(study, tiny_model, tmp_path))
    config = resolve_trial_config(
        spec, representative_parameters(spec), trial_number=0, output_dir=str(tmp_path / "t0")
    )
    shipped = load_study(study)
    assert (config.data.format, config.data.packing) == (shipped.data.format, shipped.data.packing)
    assert config.model.chat_template == shipped.model.chat_template
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert result.steps == 2 and result.eval_loss is not None and math.isfinite(result.eval_loss)
    assert result.metric == shipped.metric and result.score is not None
    if shipped.metric == "perplexity":  # of held-out text: exp(mean loss per token), >= 1
        assert math.isfinite(result.score) and result.score >= 1.0
    else:
        assert 0.0 <= result.score <= 1.0


def test_a_saved_dataset_folder_is_a_data_file_like_any(tiny_model: Path, tmp_path: Path):
    """The corpus study with its eval set read from the `save_to_disk` folder instead of the
    JSON Lines file holding the same rows: it validates and scores alike."""
    study = STUDIES / "layout_text.yaml"
    scores = []
    for name, eval_file in (
        ("jsonl", "data/corpus_eval.jsonl"),
        ("saved", "data/corpus_eval_dataset"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        spec = load_study(_on_tiny_model(study, tiny_model, folder, eval=eval_file))
        assert spec.data.eval == str(STUDIES / eval_file)
        config = resolve_trial_config(
            spec,
            representative_parameters(spec),
            trial_number=0,
            output_dir=str(folder / "t0"),
            baseline=True,
        )
        result = run_trial(config)
        assert result.state == "complete", result.error
        scores.append((result.score, result.eval_loss))
    assert scores[0] == pytest.approx(scores[1])

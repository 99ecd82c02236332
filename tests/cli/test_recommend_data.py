"""`advisor recommend --train FILE` (issue 15, item 5): traits read from the data, explicit
options winning, the answer naming what came from the data, and `--write-study` writing the
detected layout with a metric that fits it (a runnable continued pre-training study for a
corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from layout_rows import MESSAGES, TEXT, write_layout
from typer.testing import CliRunner

from advisor.cli import app
from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits
from advisor.study.writer import study_for_recommendation
from runners.templates import resolve_template
from runners.testing import toy_dataset, write_jsonl

runner = CliRunner()


def _recommend(*args: str) -> dict:
    result = runner.invoke(app, ["recommend", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_traits_are_read_from_the_data(tmp_path: Path) -> None:
    answer = _recommend("--train", str(write_layout(tmp_path, "messages")), "--model", "llama-3-8b")
    data, traits = answer["data"], answer["traits"]
    assert (data["layout"], data["examples"], data["data_format"]) == ("messages", 3, "pairs")
    assert data["unit"] == "words" and "--study-model" in data["counted_by"]  # no local tokenizer
    assert data["completion_mean"] > 0 and data["languages"] == {"en": 1.0}
    assert data["from_data"] == ["examples", "data_format", "seq_len"]
    assert (traits["examples"], traits["seq_len"]) == (3, data["seq_len"])
    assert data["seq_len"] % 64 == 0 and data["seq_len"] >= data["length_p95"] * 1.3


def test_a_corpus_is_read_as_a_corpus(tmp_path: Path) -> None:
    answer = _recommend("--train", str(write_layout(tmp_path, "text")), "--model", "llama-3-8b")
    assert answer["data"]["layout"] == "text" and answer["traits"]["data_format"] == "corpus"
    assert answer["data"]["completion_mean"] == 0


def test_options_given_explicitly_win(tmp_path: Path) -> None:
    answer = _recommend(
        "--train", str(write_layout(tmp_path, "text")), "--model", "llama-3-8b",
        "--examples", "5000", "--seq-len", "1024", "--data-format", "pairs",
    )  # fmt: skip
    assert answer["data"]["from_data"] == []
    traits = answer["traits"]
    assert (traits["examples"], traits["seq_len"], traits["data_format"]) == (5000, 1024, "pairs")


def test_the_text_answer_says_which_traits_came_from_the_data(tmp_path: Path) -> None:
    path = write_layout(tmp_path, "alpaca")
    result = runner.invoke(
        app, ["recommend", "--train", str(path), "--model", "llama-3-8b", "--examples", "800"]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "From the data" in out and "alpaca layout" in out
    assert "traits taken from the data: data_format, seq_len" in out


def test_lengths_are_formatted_tokens_of_the_study_model(tmp_path: Path, tiny_model: Path) -> None:
    """p95 of the conversation through the model's chat template, in its tokenizer's tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    template = resolve_template(tokenizer, "auto")
    lengths = sorted(
        len(tokenizer(template.render(tokenizer, row["messages"], prompt=False))["input_ids"])
        for row in MESSAGES
    )
    answer = _recommend(
        "--train", str(write_layout(tmp_path, "messages")), "--study-model", str(tiny_model)
    )
    data = answer["data"]
    assert data["unit"] == "tokens" and data["length_p95"] == lengths[-1]
    assert data["length_mean"] == round(sum(lengths) / 3, 1)
    assert answer["traits"]["seq_len"] == -(-lengths[-1] // 64) * 64


def test_a_corpus_study_is_continued_pre_training_scored_by_perplexity(tmp_path: Path) -> None:
    rec = recommend(Traits(model="smollm2-135m", data_format="corpus", examples=20000))
    text = str(write_layout(tmp_path, "text"))
    study = study_for_recommendation(
        rec, name="c", model="smollm2-135m", train=text, eval_file=text, layout="text"
    )
    assert study["data"] == {"train": text, "eval": text, "format": "text", "packing": True}
    assert study["metric"] == "perplexity" and study["method"] in ("full", "lora")
    assert "continued pre-training" in study["description"]


def test_a_chat_study_names_its_layout_and_keeps_the_task_metric(tmp_path: Path) -> None:
    rec = recommend(Traits(model="smollm2-135m"))
    chat = str(write_layout(tmp_path, "messages"))
    files = {"train": chat, "eval_file": chat}
    study = study_for_recommendation(
        rec, name="m", model="smollm2-135m", layout="messages", **files
    )
    assert study["data"] == {"train": chat, "eval": chat, "format": "messages"}
    assert study["metric"] == "rouge_l"
    explicit = study_for_recommendation(
        rec, name="m", model="smollm2-135m", layout="messages", metric="exact_match", **files
    )
    assert explicit["metric"] == "exact_match"


def test_a_pairs_study_writes_its_layout_when_the_schema_has_it(
    tmp_path: Path, tiny_model: Path
) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", toy_dataset(8))
    eval_ = write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    out = tmp_path / "pairs.yaml"
    _recommend(
        "--train", str(train), "--eval", str(eval_), "--study-model", str(tiny_model),
        "--write-study", str(out),
    )  # fmt: skip
    data = yaml.safe_load(out.read_text())["data"]
    assert data.get("format") == "prompt_response"
    assert (data["prompt_field"], data["response_field"]) == ("prompt", "response")


@pytest.mark.parametrize("layout", ["text", "messages"])
def test_a_written_study_validates(
    layout: str, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # the rows without personal data: validate runs tune's data gate, which refuses it
    clean = {"text": TEXT[:2], "messages": MESSAGES[2:]}[layout]
    train = write_jsonl(tmp_path / f"{layout}.jsonl", clean)
    answer = _recommend(
        "--train", train.name, "--eval", train.name, "--study-model", str(tiny_model),
        "--write-study", "out.yaml",
    )  # fmt: skip
    written = yaml.safe_load((tmp_path / "out.yaml").read_text())
    assert written["data"]["format"] == layout and answer["study_file"] == "out.yaml"
    if layout == "text":
        assert written["data"]["packing"] is True and written["metric"] == "perplexity"
    else:
        assert written["metric"] == "rouge_l" and "packing" not in written["data"]
    result = runner.invoke(app, ["validate", "out.yaml"])
    assert result.exit_code == 0, result.output

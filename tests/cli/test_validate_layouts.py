"""`advisor validate` runs the checks `tune` runs before training (`advisor.study.preflight`) and
shows what they chose: each data file's layout and rows, and the chat template trials use, so
that a base model's study says at validation that it trains with `plain`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from runners.testing import toy_dataset, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def base_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its chat template removed: a pretrained-only (base) model."""
    copy = tmp_path_factory.mktemp("base") / "tiny-base"
    shutil.copytree(tiny_model, copy)
    (copy / "chat_template.jinja").unlink()
    config = json.loads((copy / "tokenizer_config.json").read_text())
    assert "chat_template" not in config  # the template lived in its own file only
    return copy


def _study(folder: Path, model: Path, *, model_keys: str = "", extra: str = "") -> Path:
    write_jsonl(folder / "train.jsonl", toy_dataset(8, seed=1))
    write_jsonl(folder / "eval.jsonl", toy_dataset(4, seed=2))
    study = folder / "s.yaml"
    study.write_text(
        f"name: s\nmodel: {{source: '{model}'{model_keys}}}\n"
        "data:\n  train: train.jsonl\n  eval: eval.jsonl\n  max_train_examples: 6\n"
        f"metric: json_match\nsearch: {{r: 4, target_modules: attention_qv}}\n{extra}",
        encoding="utf-8",
    )
    return study


def _validate(study: Path, *options: str) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", str(study), *options])
    return result.exit_code, " ".join(result.output.split())


def test_a_base_model_trains_with_plain_and_validate_says_so(
    tmp_path: Path, base_model: Path
) -> None:
    code, output = _validate(_study(tmp_path, base_model))
    assert code == 0, output
    assert "chat template: plain (the tokenizer has none)" in output
    assert "train train.jsonl: prompt_response layout (chat), 6 rows" in output
    assert "eval eval.jsonl: prompt_response layout (chat), 4 rows" in output


def test_a_model_with_a_template_keeps_its_own(tmp_path: Path, tiny_model: Path) -> None:
    code, output = _validate(_study(tmp_path, tiny_model), "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["chat_template"] == "model"
    layouts = summary["data_checks"][0]["layouts"]
    assert [(f["role"], f["layout"], f["kind"], f["rows"]) for f in layouts] == [
        ("train", "prompt_response", "chat", 6),
        ("eval", "prompt_response", "chat", 4),
    ]


def test_requiring_the_model_s_template_on_a_base_model_is_refused(
    tmp_path: Path, base_model: Path
) -> None:
    study = _study(tmp_path, base_model, model_keys=", chat_template: model")
    before = sorted(tmp_path.rglob("*"))
    code, output = _validate(study)
    assert code == 2, output
    assert "s.yaml:2: model.chat_template: the model's tokenizer has no chat template" in output
    assert "fix: set model.chat_template to plain or chatml" in output
    assert "Traceback" not in output
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize(
    ("choice", "shown"), [("chatml", "chatml"), ("plain", "plain"), ("chat.jinja", "chat.jinja")]
)
def test_a_named_template_is_used_on_a_base_model(
    tmp_path: Path, base_model: Path, choice: str, shown: str
) -> None:
    from runners.templates import CHATML

    (tmp_path / "chat.jinja").write_text(CHATML, encoding="utf-8")
    code, output = _validate(_study(tmp_path, base_model, model_keys=f", chat_template: {choice}"))
    assert code == 0, output
    assert f"chat template: {tmp_path / 'chat.jinja' if choice.endswith('.jinja') else shown}" in (
        output
    )


def test_without_the_model_nothing_of_it_is_read(tmp_path: Path, base_model: Path) -> None:
    study = _study(tmp_path, base_model, model_keys=", chat_template: model")
    code, output = _validate(study, "--no-check-model")
    assert code == 0, output
    assert "chat template: not checked (--no-check-model)" in output


def test_a_target_module_the_model_lacks_is_refused_as_tune_refuses_it(
    tmp_path: Path, tiny_model: Path
) -> None:
    """Issue 15 item 6: validate called this study valid, then tune refused it."""
    study = _study(tmp_path, tiny_model)
    study.write_text(
        study.read_text().replace("target_modules: attention_qv", "target_modules: [[c_attn]]")
    )
    code, output = _validate(study)
    assert code == 2, output
    assert "search.target_modules" in output and "c_attn" in output and "q_proj" in output
    tuned = runner.invoke(app, ["tune", str(study)])
    assert tuned.exit_code == 2
    assert "c_attn" in tuned.output
    assert not (tmp_path / "mlruns").exists()


def test_a_multi_turn_chat_study_validates(tmp_path: Path, base_model: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": f"Colour {i}?"},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Again?"},
                {"role": "assistant", "content": "Red."},
            ]
        }
        for i in range(6)
    ]
    study = _study(tmp_path, base_model)
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "eval.jsonl", rows[:2])
    code, output = _validate(study)
    assert code == 0, output
    assert "train train.jsonl: messages layout (chat), 6 rows" in output
    assert "chat template: plain (the tokenizer has none)" in output


@pytest.mark.parametrize("train", ["train.parquet", "saved"])
def test_parquet_and_saved_datasets_validate(tmp_path: Path, tiny_model: Path, train: str) -> None:
    from datasets import Dataset

    rows = Dataset.from_list(toy_dataset(5, seed=3))
    if train.endswith(".parquet"):
        rows.to_parquet(str(tmp_path / train))
    else:
        rows.save_to_disk(str(tmp_path / train))
    study = _study(tmp_path, tiny_model)
    study.write_text(study.read_text().replace("train: train.jsonl", f"train: {train}"))
    code, output = _validate(study)
    assert code == 0, output
    assert f"train {train}: prompt_response layout (chat), 5 rows" in output

"""A study on data as users have it: every layout and container loads, its layout is detected as
a trial detects it, the new keys reach the TrialConfig, and the rules across the data's kind and
the metric hold (`advisor.study.layouts`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.errors import AdvisorInputError
from advisor.study import load_study, resolve_trial_config, spec_hash, study_json_schema
from advisor.study.layouts import metric_problem
from advisor.study.preflight import data_files
from runners.layouts import LAYOUTS
from runners.metrics import METRICS, Metric

TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Bye"},
    {"role": "assistant", "content": "Bye"},
]
ROWS: dict[str, dict[str, Any]] = {
    "messages": {"messages": TURNS},
    "sharegpt": {
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]
    },
    "alpaca": {"instruction": "Add", "input": "1 2", "output": "3"},
    "prompt_completion": {"prompt": "Hi", "completion": "Hello"},
    "prompt_response": {"prompt": "Hi", "response": "Hello"},
    "text": {"text": "Raw text for continued pre-training."},
}


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    """`rows` in the container `path`'s suffix names (a folder: a saved dataset)."""
    if path.suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        from datasets import Dataset

        Dataset.from_list(rows).save_to_disk(str(path))
    return path.name


def _study(folder: Path, train: str, eval: str, **keys: Any) -> Path:
    metric = keys.pop("metric", "exact_match")
    data = {"train": train, "eval": eval, **keys.pop("data", {})}
    study = {"name": "s", "model": {"source": "smollm2-135m", **keys}, "data": data}
    path = folder / "s.yaml"
    path.write_text(json.dumps({**study, "metric": metric}), encoding="utf-8")
    return path


@pytest.mark.parametrize("layout", [name for name in ROWS if name != "text"])
@pytest.mark.parametrize("container", ["train.jsonl", "train.json", "train.parquet", "train"])
def test_every_chat_layout_loads_from_every_container(
    tmp_path: Path, layout: str, container: str
) -> None:
    train = _write(tmp_path / container, [ROWS[layout]] * 3)
    eval = _write(tmp_path / "eval.jsonl", [ROWS["prompt_response"]] * 2)
    spec = load_study(_study(tmp_path, train, eval))
    found = [(f.role, f.layout, f.kind, f.rows) for f in data_files(spec)]
    assert found == [("train", layout, "chat", 3), ("eval", "prompt_response", "chat", 2)]


def test_a_corpus_loads_with_eval_loss_and_packing(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", [ROWS["text"]] * 3)
    eval = _write(tmp_path / "eval.jsonl", [ROWS["text"]])
    spec = load_study(
        _study(tmp_path, train, eval, metric="eval_loss", data={"packing": True, "format": "text"})
    )
    assert [f.kind for f in data_files(spec)] == ["text", "text"]
    config = resolve_trial_config(spec, {}, trial_number=0, output_dir="out", cuda=False)
    assert (config.data.format, config.data.packing) == ("text", True)
    assert config.model.chat_template == "auto"


def test_the_template_path_starts_at_the_study_file_and_reaches_the_trial(tmp_path: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "chat.jinja").write_text("{{ messages }}", encoding="utf-8")
    train = _write(tmp_path / "train.jsonl", [ROWS["messages"]])
    spec = load_study(_study(tmp_path, train, train, chat_template="tpl/chat.jinja"))
    config = resolve_trial_config(spec, {}, trial_number=0, output_dir="out", cuda=False)
    assert config.model.chat_template == str(tmp_path / "tpl" / "chat.jinja")


def test_new_keys_at_their_defaults_keep_the_study_s_hash(tmp_path: Path) -> None:
    """A study recorded before these keys existed is continued, not refused as changed; a key
    that changes what trains changes the hash."""
    train = _write(tmp_path / "train.jsonl", [ROWS["prompt_response"]] * 2)
    plain = spec_hash(load_study(_study(tmp_path, train, train)))
    defaults = _study(tmp_path, train, train, chat_template="auto", data={"packing": False})
    assert spec_hash(load_study(defaults)) == plain
    chosen = _study(tmp_path, train, train, chat_template="chatml")
    assert spec_hash(load_study(chosen)) != plain
    formatted = _study(tmp_path, train, train, data={"format": "prompt_response"})
    assert spec_hash(load_study(formatted)) != plain


def test_the_schema_describes_the_new_keys() -> None:
    defs = study_json_schema()["$defs"]
    for section, key in (("DataSpec", "format"), ("DataSpec", "packing")):
        assert "description" in defs[section]["properties"][key], key
    assert "plain" in defs["ModelSpec"]["properties"]["chat_template"]["description"]
    formats = json.dumps(defs["DataSpec"]["properties"]["format"])
    assert all(name in formats for name in LAYOUTS)


def test_a_replay_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", [ROWS["messages"]] * 2)
    replay = _write(tmp_path / "replay.jsonl", [ROWS["text"]] * 2)
    study = _study(tmp_path, train, train, data={"replay": {"path": replay, "fraction": 0.1}})
    with pytest.raises(AdvisorInputError) as caught:
        load_study(study)
    assert "data.replay.path: the replay data is text (text layout)" in caught.value.message


def test_a_task_s_metric_is_checked_against_its_own_data(tmp_path: Path) -> None:
    text = _write(tmp_path / "text.jsonl", [ROWS["text"]] * 2)
    chat = _write(tmp_path / "chat.jsonl", [ROWS["messages"]] * 2)
    study = tmp_path / "tasks.yaml"
    study.write_text(
        json.dumps(
            {
                "name": "m",
                "model": {"source": "smollm2-135m"},
                "metric": "rouge_l",
                "tasks": [
                    {"name": "chat", "data": {"train": chat, "eval": chat}},
                    {"name": "corpus", "data": {"train": text, "eval": text}},
                ],
            }
        )
    )
    with pytest.raises(AdvisorInputError) as caught:
        load_study(study)
    message = caught.value.message
    assert "1 problem" in message and "tasks[1].metric: metric 'rouge_l'" in message


def test_perplexity_fits_raw_text_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule reads the registry (developer R adds `perplexity` to it): minimised, scored
    without generation, on raw text."""
    entry = Metric("perplexity", False, "exp of the eval loss on text", None, False)
    monkeypatch.setitem(METRICS, "perplexity", entry)
    assert metric_problem("perplexity", LAYOUTS["text"]) is None
    assert metric_problem("eval_loss", LAYOUTS["text"]) is None
    message, fix = metric_problem("perplexity", LAYOUTS["messages"]) or ("", "")
    assert "scores raw text, but the data is chat (messages layout)" in message
    assert "exact_match" in fix and "perplexity" not in fix.split("(")[1].split(")")[0]
    message, fix = metric_problem("exact_match", LAYOUTS["text"]) or ("", "")
    assert "scores generated answers" in message and "perplexity" in fix
    assert metric_problem("exact_match", LAYOUTS["sharegpt"]) is None


def test_preflight_names_the_template_per_kind(tmp_path: Path, tiny_model: Path) -> None:
    """Raw text uses no chat template; a multi-turn chat study on a model whose tokenizer has
    none trains with plain (checked by rendering it with that tokenizer)."""
    import shutil

    from advisor.study.preflight import preflight

    base = tmp_path / "base"
    shutil.copytree(tiny_model, base)
    (base / "chat_template.jinja").unlink()
    corpus = _write(tmp_path / "corpus.jsonl", [ROWS["text"]] * 2)
    chat = _write(tmp_path / "chat.jsonl", [ROWS["messages"]] * 2)
    for train, metric, expected in (
        (corpus, "eval_loss", "none (raw text)"),
        (chat, "exact_match", "plain (the tokenizer has none)"),
    ):
        study = _study(tmp_path, train, train, metric=metric)
        study.write_text(study.read_text().replace("smollm2-135m", str(base)))
        checks = preflight(load_study(study))
        assert checks.template == expected
        assert "q_proj" in (checks.modules or [])
        assert [f.rows for f in checks.files["s"]] == [2, 2]

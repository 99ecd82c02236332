"""Data loading: layouts through `runners.layouts`, field mapping, system prompt, limits, and
errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.config import DataConfig
from runners.data import eval_records, task_examples, training_set
from runners.errors import TrialInputError
from runners.layouts import Conversation, Turn
from runners.testing import write_jsonl


def _cfg(train: Path, evals: Path, **kw) -> DataConfig:
    return DataConfig(str(train), str(evals), **kw)


def test_named_fields_become_a_conversation_with_the_system_prompt(tmp_path: Path) -> None:
    rows = [{"q": f"question {i}", "a": {"n": i}} for i in range(5)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = _cfg(
        path,
        path,
        prompt_field="q",
        response_field="a",
        system_prompt="Be terse.",
        max_train_examples=3,
        max_eval_examples=2,
    )
    train = training_set(cfg, seed=0)
    assert train.layout.name == "prompt_response" and len(train.examples) == 3
    assert len(task_examples(cfg, eval_set=True).examples) == 2
    # structured answers become JSON text
    assert train.examples[0] == Conversation(
        1,
        (
            Turn("system", "Be terse."),
            Turn("user", "question 0"),
            Turn("assistant", json.dumps({"n": 0})),
        ),
    )


def test_system_prompt_only_where_the_conversation_has_none(tmp_path: Path) -> None:
    own = [{"role": "system", "content": "Own."}, {"role": "user", "content": "u"}]
    rows = [
        {"messages": [*own, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "b"}]},
    ]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    examples = task_examples(_cfg(path, path, system_prompt="Given.")).examples
    assert [e.messages[0].content for e in examples] == ["Own.", "Given."]
    assert [len(e.messages) for e in examples] == [3, 3]


def test_eval_records_ask_for_the_last_assistant_turn(tmp_path: Path) -> None:
    turns = ["u1", "a1", "u2", "a2", "u3"]  # a trailing user turn is context, not asked
    messages = [{"role": "user" if t[0] == "u" else "assistant", "content": t} for t in turns]
    path = write_jsonl(tmp_path / "m.jsonl", [{"messages": messages}])
    ((prompt, reference),) = eval_records(_cfg(path, path))
    assert reference == "a2"
    assert [m["content"] for m in prompt] == ["u1", "a1", "u2"]


def test_csv_and_eval_records(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("prompt,response\nhello,world\n2+2,4\n", encoding="utf-8")
    records = eval_records(_cfg(path, path))
    assert records == [
        ([{"role": "user", "content": "hello"}], "world"),
        ([{"role": "user", "content": "2+2"}], "4"),
    ]


def test_missing_file_names_field_and_path(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "ok.jsonl", [{"prompt": "a", "response": "b"}])
    with pytest.raises(TrialInputError) as err:
        eval_records(_cfg(good, tmp_path / "nope.jsonl"))
    assert "data.eval_path" in str(err.value) and "nope.jsonl" in str(err.value)


def test_rows_of_no_layout_name_the_fields_found_and_the_layouts(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "b"}])
    with pytest.raises(TrialInputError) as err:
        training_set(_cfg(path, path), seed=0)
    message = str(err.value)
    assert "d.jsonl" in message and "question (a string), answer (a string)" in message
    assert "alpaca (instruction, input (optional), output)" in message


def test_named_fields_missing_are_told_by_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "b"}])
    with pytest.raises(TrialInputError) as err:
        training_set(_cfg(path, path, prompt_field="q", response_field="answer"), seed=0)
    assert err.value.where == "data.prompt_field"
    assert "'q'" in str(err.value) and "['answer', 'question']" in str(err.value)


def test_bad_json_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n{oops\n', encoding="utf-8")
    with pytest.raises(TrialInputError, match=r"d\.jsonl:2: not valid JSON"):
        eval_records(_cfg(path, path))


def test_unknown_extension_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.xml"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(TrialInputError, match="unknown file type"):
        eval_records(_cfg(path, path))


def test_replay_mixes_into_multi_turn_chat_and_is_refused_for_a_corpus(tmp_path: Path) -> None:
    turns = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "a2"},
    ]
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": turns}] * 4)
    replay = write_jsonl(
        tmp_path / "general.jsonl",
        [{"conversations": [{"from": "human", "value": "g"}, {"from": "gpt", "value": "G"}]}] * 3,
    )
    mixed = training_set(
        _cfg(chat, chat, replay_path=str(replay), replay_fraction=0.5, system_prompt="S"), seed=1
    )
    assert mixed.layout.name == "messages" and mixed.task_examples == 4
    assert len(mixed.replay_rows) == 4 and len(mixed.examples) == 8
    roles = sorted(tuple(t.role for t in e.messages) for e in mixed.examples)
    assert (
        roles
        == [("system", "user", "assistant", "user", "assistant")] * 4 + [("user", "assistant")] * 4
    )  # replay rows carry no system prompt

    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"text": "some text"}] * 4)
    with pytest.raises(TrialInputError, match="raw text corpus") as caught:
        training_set(_cfg(corpus, corpus, replay_path=str(replay), replay_fraction=0.5), seed=1)
    assert caught.value.where == "data.replay"

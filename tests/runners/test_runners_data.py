"""Data loading: JSONL/CSV, field mapping, limits, and errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.config import DataConfig
from runners.data import eval_records, load_datasets
from runners.errors import TrialInputError
from runners.testing import write_jsonl


def _cfg(train: Path, evals: Path, **kw) -> DataConfig:
    return DataConfig(str(train), str(evals), **kw)


def test_jsonl_maps_fields_to_prompt_completion(tmp_path: Path) -> None:
    rows = [{"q": f"question {i}", "a": {"n": i}} for i in range(5)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    train, evals = load_datasets(
        _cfg(
            path,
            path,
            prompt_field="q",
            response_field="a",
            system_prompt="Be terse.",
            max_train_examples=3,
            max_eval_examples=2,
        )
    )
    assert len(train) == 3 and len(evals) == 2
    first = train[0]
    assert first["prompt"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "question 0"},
    ]
    # structured answers become JSON text, the assistant turn is the only completion
    assert first["completion"] == [{"role": "assistant", "content": json.dumps({"n": 0})}]


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
        load_datasets(_cfg(good, tmp_path / "nope.jsonl"))
    assert "data.eval_path" in str(err.value) and "nope.jsonl" in str(err.value)


def test_missing_field_lists_existing_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}])
    with pytest.raises(TrialInputError) as err:
        load_datasets(_cfg(path, path))
    message = str(err.value)
    assert "data.prompt_field" in message and "'prompt'" in message
    assert "['input', 'output']" in message


def test_bad_json_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n{oops\n', encoding="utf-8")
    with pytest.raises(TrialInputError, match=r"d\.jsonl:2: not valid JSON"):
        load_datasets(_cfg(path, path))


def test_unknown_extension_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(TrialInputError, match="unknown file type"):
        eval_records(_cfg(path, path))

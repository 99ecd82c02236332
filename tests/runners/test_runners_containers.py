"""Data containers besides JSON Lines and CSV (`runners.datafiles.read_numbered`): a JSON array,
Parquet and a folder written by `datasets.Dataset.save_to_disk`, each read to plain Python rows,
and each bad file named (with its line or row where it has one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners.datafiles import DataFileError, read_numbered
from runners.errors import TrialInputError

CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
        "source": "math",
    },
    {
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ],
        "source": "geo",
    },
]


def _plain(value: object) -> bool:
    """Only the types JSON yields: no numpy arrays, no Arrow scalars."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


# --- JSON array -------------------------------------------------------------------------------


def test_a_json_array_reads_its_objects_numbered_by_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(CHAT, indent=2))
    records = read_numbered(path, where="data")
    assert [record for _, record in records] == CHAT
    lines = path.read_text().split("\n")
    assert [lines[number - 1] for number, _ in records] == ["  {", "  {"]


def test_a_json_file_of_lines_is_still_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text("\n".join(json.dumps(row) for row in CHAT) + "\n")
    assert read_numbered(path, where="data") == [(1, CHAT[0]), (2, CHAT[1])]


def test_a_json_array_item_that_is_no_object_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[\n  {"text": "one"},\n  "two"\n]\n')
    with pytest.raises(DataFileError, match=r"^data: a\.json:3: an array item that is a JSON str"):
        read_numbered(path, where="data")


def test_a_broken_json_array_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[\n  {"text": "one"}\n  {"text": "two"}\n]\n')
    with pytest.raises(DataFileError) as caught:
        read_numbered(path, where="data")
    assert caught.value.line == 3 and "Expecting ',' delimiter" in caught.value.message


def test_a_json_array_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[\n{"text": "ok"},\n{"text": 1e400}\n]')
    with pytest.raises(DataFileError, match=r"a\.json:3: a JSON row advisor does not read"):
        read_numbered(path, where="data")
    path.write_text('[\n{"text": "ok"},\n{"text": ' + "[" * 100_000 + "\n]")
    with pytest.raises(DataFileError, match=r"a\.json:3: .*nested 100001 levels deep"):
        read_numbered(path, where="data")


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_rows_come_back_as_plain_python(tmp_path: Path) -> None:
    import pyarrow
    import pyarrow.parquet

    path = tmp_path / "chat.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(CHAT), path)
    records = read_numbered(path, where="data.train")
    assert records == [(1, CHAT[0]), (2, CHAT[1])]
    assert all(_plain(record) for _, record in records)
    assert type(records[0][1]["messages"]) is list and type(records[0][1]["messages"][0]) is dict


def test_a_file_that_is_not_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text('{"text": "I am JSON"}\n')
    with pytest.raises(TrialInputError, match=r"fake\.parquet is not a Parquet file") as caught:
        read_numbered(path, where="data")
    assert "jsonl" in caught.value.fix


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.json", "empty.csv", "empty.parquet"])
def test_a_zero_byte_file_is_an_error_naming_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(TrialInputError) as caught:
        read_numbered(path, where="data")
    assert caught.value.message == f"data file {name} holds no records: it is 0 bytes"
    assert "add examples" in caught.value.fix


# --- a folder written by Dataset.save_to_disk ------------------------------------------------


def test_a_saved_dataset_reads_as_plain_rows_without_writing(tmp_path: Path) -> None:
    from datasets import Dataset

    folder = tmp_path / "saved"
    Dataset.from_list(CHAT).save_to_disk(str(folder))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    records = read_numbered(folder, where="data")
    assert records == [(1, CHAT[0]), (2, CHAT[1])]
    assert all(_plain(record) for _, record in records)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no cache


def test_a_folder_that_is_no_saved_dataset_is_named_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(TrialInputError) as caught:
        read_numbered(folder, where="data.train")
    assert "is a folder, not a saved dataset" in caught.value.message
    assert str(folder) in caught.value.message and caught.value.where == "data.train"
    assert "save_to_disk" in caught.value.fix and ".parquet" in caught.value.fix


def test_a_saved_dataset_dict_asks_for_one_split(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "dd"
    DatasetDict({"train": Dataset.from_list(CHAT), "test": Dataset.from_list(CHAT)}).save_to_disk(
        str(folder)
    )
    with pytest.raises(TrialInputError) as caught:
        read_numbered(folder, where="data")
    assert "is a saved DatasetDict (splits: test, train), not one" in caught.value.message
    assert str(folder / "test") in caught.value.fix
    assert read_numbered(folder / "train", where="data") == [(1, CHAT[0]), (2, CHAT[1])]


def test_a_broken_saved_dataset_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "state.json").write_text('{"_data_files": [{"filename": "gone.arrow"}]}')
    with pytest.raises(TrialInputError, match="looks like a saved dataset but cannot be loaded"):
        read_numbered(folder, where="data")


def test_rows_without_lines_are_named_by_row(tmp_path: Path) -> None:
    parquet = tmp_path / "t.parquet"
    error = DataFileError(parquet, 4, "bad", fix="f", where="data")
    assert error.message == "t.parquet row 4: bad"
    assert DataFileError(tmp_path / "t.jsonl", 4, "bad", fix="f", where="data").message == (
        "t.jsonl:4: bad"
    )

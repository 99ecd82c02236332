"""`advisor recommend --write-study` writes nothing until the study is known good, and names the
option behind each problem (`advisor.study.writer`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from advisor.decide.recommend import recommend
from advisor.decide.traits import Traits
from advisor.errors import AdvisorInputError
from advisor.study import writer
from advisor.study.writer import study_for_recommendation, write_study_file
from runners.testing import toy_dataset, write_jsonl


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", toy_dataset(8))
    write_jsonl(tmp_path / "eval.jsonl", toy_dataset(4, seed=1))
    return tmp_path


def _study(**options: str) -> dict:
    rec = recommend(Traits(model="smollm2-135m"))
    values = {"train": "train.jsonl", "eval_file": "eval.jsonl", **options}
    return study_for_recommendation(rec, name="x", model="smollm2-135m", **values)


def _everything(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("train", "missing.jsonl", "data file 'missing.jsonl' does not exist"),
        ("eval_file", "folder", "'folder' is a folder, not a data file"),
    ],
)
def test_a_data_option_that_names_no_file_is_refused_by_its_name(
    project: Path, option: str, value: str, says: str
) -> None:
    (project / "folder").mkdir()
    with pytest.raises(AdvisorInputError) as caught:
        _study(**{option: value})
    assert caught.value.where == {"train": "--train", "eval_file": "--eval"}[option]
    assert says in caught.value.message


def test_a_study_that_would_not_validate_names_the_options_and_writes_nothing(
    project: Path,
) -> None:
    before = _everything(project)
    with pytest.raises(AdvisorInputError) as caught:
        write_study_file(project / "out" / "deeper" / "x.yaml", _study(prompt_field="question"))
    assert caught.value.where == "--train, --eval"
    # The rows are in no layout: the layouts' error, with the fields named as options.
    assert "--train: train.jsonl:1: no data layout matches the row" in caught.value.message
    assert "prompt_response (question, response)" in caught.value.message
    assert "(--prompt-field, --response-field)" in (caught.value.fix or "")
    # No key of a file the user never wrote (data.format has no option of recommend's yet).
    assert "data." not in str(caught.value).replace("data.format", "")
    assert _everything(project) == before


def test_a_failed_write_leaves_no_folder_behind(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _everything(project)

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer.os, "replace", full)
    with pytest.raises(OSError):
        write_study_file(project / "out" / "deeper" / "x.yaml", _study())
    assert _everything(project) == before


def test_a_valid_study_is_written_where_asked_and_loads(project: Path) -> None:
    study = _study()
    path = write_study_file(project / "out" / "x.yaml", study)
    assert path.read_text().startswith("# Written by `advisor recommend --write-study`")
    assert study["data"]["train"] == "train.jsonl"  # the caller's dict is not rewritten
    assert sorted(p.name for p in (project / "out").iterdir()) == ["x.yaml"]  # no temp file

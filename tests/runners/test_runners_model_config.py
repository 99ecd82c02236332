"""A model's config.json is read within bounds before transformers parses it
(`runners.models.read_model_config`): each way it can be broken is an input error naming it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runners.errors import TrialInputError
from runners.models import MAX_CONFIG_BYTES, read_model_config

CONFIG = {"model_type": "llama", "hidden_size": 64, "rope_scaling": {"type": "linear"}}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("[1, 2]", "a JSON list, not an object"),
        ('{"hidden_size": 1e400}', "1e400 is out of range"),
        ('{"hidden_size": NaN}', "NaN is not a number"),
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
        ('{"hidden_size": 64,', "line 1: not valid JSON"),
        (b'{"name": "caf\xe9"}', "not UTF-8"),
        (b" " * (MAX_CONFIG_BYTES + 1), "larger than 4 MiB"),
    ],
    ids=["list", "1e400", "nan", "deep", "truncated", "latin1", "huge"],
)
def test_a_broken_config_is_an_input_error_naming_the_file(
    tmp_path: Path, content: str | bytes, why: str
) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TrialInputError) as caught:
        read_model_config(path)
    assert f"cannot read the model config {path}: " in caught.value.message
    assert why in caught.value.message
    assert caught.value.where == "model.source" and "intact Hugging Face" in caught.value.fix
    assert len(str(caught.value)) < 600


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    os.mkfifo(path)
    with pytest.raises(TrialInputError, match="not a regular file"):
        read_model_config(path, where="--model")


def test_an_intact_config_reads_as_json_does(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    assert read_model_config(path) == CONFIG


def test_the_tiny_model_config_is_read(tiny_model: Path) -> None:
    assert read_model_config(tiny_model / "config.json")["model_type"] == "llama"

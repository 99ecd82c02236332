"""Model shapes from files nobody vetted: a config.json or GGUF header with a dimension that is
not a whole number in 1 .. 2^31-1 is an input error on --model (`advisor.decide.shapes`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from advisor.decide.estimate import estimate_memory
from advisor.decide.shapes import MAX_DIMENSION, ModelShape, resolve_model
from advisor.errors import AdvisorInputError

GOOD = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512}


def _refused(tmp_path: Path, text: str) -> AdvisorInputError:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(AdvisorInputError) as caught:
        resolve_model(str(tmp_path))
    assert caught.value.where == "--model"
    return caught.value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[1, 2]", "a JSON list, not an object"),
        (json.dumps(GOOD).replace("64", "1e400"), "1e400 is out of range"),
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
        (json.dumps({**GOOD, "hidden_size": 1e300}), "`1 <= hidden_size <= 2147483647`"),
        (json.dumps({**GOOD, "vocab_size": 2**40}), "`1 <= vocab_size <= 2147483647`"),
        (json.dumps({**GOOD, "num_hidden_layers": 0}), "`1 <= num_layers"),
        (json.dumps({**GOOD, "hidden_size": True}), "hidden_size must be a whole number"),
        (json.dumps({**GOOD, "hidden_size": 64.5}), "hidden_size must be a whole number"),
        (json.dumps({**GOOD, "hidden_size": "64"}), "hidden_size must be a whole number"),
        (json.dumps({**GOOD, "text_config": [1]}), "text_config is a list"),
    ],
    ids=["list", "1e400", "deep", "1e300", "2^40", "zero", "bool", "fraction", "text", "textcfg"],
)
def test_a_config_json_out_of_bounds_is_refused_on_model(
    tmp_path: Path, text: str, why: str
) -> None:
    error = _refused(tmp_path, text)
    assert why in str(error) and len(str(error)) < 800


def test_whole_floats_are_read_as_ints(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**GOOD, "hidden_size": 64.0}))
    assert resolve_model(str(tmp_path)).hidden_size == 64


def test_the_largest_shape_gives_finite_estimates() -> None:
    values: dict[str, Any] = dict.fromkeys(
        ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"),
        MAX_DIMENSION,
    )
    shape = ModelShape("huge", vocab_size=MAX_DIMENSION, tie_embeddings=False, **values)
    assert math.isfinite(estimate_memory(shape, "full").total_gb)

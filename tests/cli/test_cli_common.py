"""The helpers every command shares: strict JSON on stdout (`advisor.cli._common`)."""

from __future__ import annotations

import json
import math

import pytest

from advisor.cli._common import print_json


def test_print_json_writes_strict_json_with_non_finite_measures_as_null(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_json({"loss": math.nan, "best": [1.5, math.inf, {"low": -math.inf}], "n": 3})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "best": [1.5, None, {"low": None}], "n": 3}

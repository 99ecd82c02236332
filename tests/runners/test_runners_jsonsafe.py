"""JSON within bounds: deep nesting and non-finite numbers are refused, strings are not parsed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runners import jsonsafe
from runners.datafiles import DataFileError, read_numbered


def test_plain_json_loads_as_json_does() -> None:
    text = '{"a": [1, 2.5, {"b": "[[[{{{"}], "c": null, "d": 18446744073709551616}'
    assert jsonsafe.loads(text) == json.loads(text)
    assert jsonsafe.nesting_depth(text) == 3  # the brackets inside the string do not count


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels"),
        ('{"a": 1e400}', "1e400 is out of range"),
        ('{"a": -1e400}', "out of range"),
        ('{"a": NaN}', "NaN is not a number"),
        ('{"a": Infinity}', "Infinity is not a number"),
    ],
)
def test_unsafe_json_is_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(jsonsafe.UnsafeJson, match=why):
        jsonsafe.loads(text)


def test_a_deep_row_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "p", "response": "r"}\n{"prompt": ' + "[" * 100_000 + "\n")
    with pytest.raises(DataFileError, match=r"d\.jsonl:2: a JSON row advisor does not read"):
        read_numbered(path, where="data")

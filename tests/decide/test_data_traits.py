"""Traits read from the data (`advisor recommend --train`): the sequence length they suggest, the
data format of a layout, and options given explicitly winning over them."""

from __future__ import annotations

import pytest

from advisor.decide.traits import DataTraits, Traits, merge_traits

DEFAULTS = {"data_format": "pairs", "examples": 1000, "seq_len": 512}


def _data(layout: str = "messages", *, p95: int = 95, unit: str = "tokens") -> DataTraits:
    return DataTraits(
        path="train.jsonl",
        layout=layout,
        examples=240,
        unit=unit,
        counted_by="test",
        length_mean=60.0,
        length_p95=p95,
        completion_mean=20.0,
    )


@pytest.mark.parametrize(
    ("p95", "unit", "seq_len"),
    [
        (95, "tokens", 128),  # rounded up to a multiple of 64
        (128, "tokens", 128),  # already one
        (1, "tokens", 64),  # at least one step
        (100, "words", 192),  # 130 tokens estimated from words
    ],
)
def test_seq_len_is_the_p95_rounded_up(p95: int, unit: str, seq_len: int) -> None:
    assert _data(p95=p95, unit=unit).seq_len == seq_len


@pytest.mark.parametrize(
    ("layout", "data_format"),
    [("messages", "pairs"), ("alpaca", "pairs"), ("prompt_response", "pairs"), ("text", "corpus")],
)
def test_a_layout_sets_the_data_format(layout: str, data_format: str) -> None:
    assert _data(layout).data_format == data_format


def test_the_data_fills_what_no_option_gave() -> None:
    given = {"data_format": None, "examples": None, "seq_len": None}
    values, from_data = merge_traits(given, _data("text", p95=300), DEFAULTS)
    assert values == {"data_format": "corpus", "examples": 240, "seq_len": 320}
    assert from_data == ["examples", "data_format", "seq_len"]
    assert Traits(**values).data_format == "corpus"


def test_options_given_explicitly_win() -> None:
    given = {"data_format": "pairs", "examples": 5000, "seq_len": None}
    values, from_data = merge_traits(given, _data("text", p95=300), DEFAULTS)
    assert values == {"data_format": "pairs", "examples": 5000, "seq_len": 320}
    assert from_data == ["seq_len"]


def test_without_data_the_defaults_hold() -> None:
    given = {"data_format": None, "examples": 20, "seq_len": None}
    assert merge_traits(given, None, DEFAULTS) == (
        {"data_format": "pairs", "examples": 20, "seq_len": 512},
        [],
    )

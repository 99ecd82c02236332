"""YAML within bounds: aliases that multiply the document, recursive aliases, duplicate keys and
oversized documents are refused before any value is built; ordinary YAML loads as PyYAML does."""

from __future__ import annotations

import time

import pytest
import yaml

from advisor.study import yamlsafe

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
"""9**9 (387 million) values once expanded, in under 300 bytes."""


def test_ordinary_yaml_loads_as_the_safe_loader_does() -> None:
    text = "name: s\nsearch: {r: [2, 4], lr: {low: 1.0e-3, high: 0.01, log: true}}\nseed: 5\n"
    node, data = yamlsafe.load(text)
    assert data == yaml.safe_load(text)
    assert node is not None and node.value[1][0].start_mark.line == 1  # lines for errors
    anchors = "base: &b {r: 4}\nother: *b\nmerged: {<<: *b, r: 8}\n"
    assert yamlsafe.load(anchors)[1] == yaml.safe_load(anchors)  # small aliases are fine
    assert yamlsafe.load("") == (None, None)


def test_a_billion_laughs_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(yamlsafe.YamlRefused, match="expands to more than 100,000 values"):
        yamlsafe.load(LAUGHS)
    assert time.monotonic() - started < 5  # counted on the graph, never expanded


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(yamlsafe.YamlRefused, match="contains it"):
        yamlsafe.load("a: &a [1, *a]\n")


def test_a_duplicate_key_names_both_lines() -> None:
    with pytest.raises(yamlsafe.YamlRefused) as caught:
        yamlsafe.load("name: s\ntrain:\n  max_steps: 4\n  max_steps: 8\n")
    assert caught.value.line == 4 and "first at line 3" in caught.value.message
    assert caught.value.fix.startswith("write each key once")


def test_an_oversized_document_is_refused() -> None:
    with pytest.raises(yamlsafe.YamlRefused, match="at most 1,048,576"):
        yamlsafe.load("a: " + "x" * (yamlsafe.MAX_BYTES + 1))

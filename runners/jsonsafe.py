"""JSON from files and requests that nobody vetted, parsed within bounds.

Python's `json` recurses once per nesting level: a row of 100,000 `[` ends in a RecursionError
(a traceback, or an HTTP 500) instead of an error that names the input. It also turns `1e400`
into `inf` and accepts `NaN`, values every later step then chokes on. `loads` checks the
nesting depth first (one pass over the text, strings skipped) and refuses non-finite numbers,
so every caller can answer with the file, row or field and the fix. Data rows, model
`config.json` files and the service's request bodies all go through it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted: far beyond any data row, config.json or request advisor reads."""


class UnsafeJson(ValueError):
    """JSON that is too deeply nested, or holds a number that is not finite."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJson(f"the number {text[:40]} is out of range (it would be {value})")
    return value


def _no_constant(name: str) -> float:
    raise UnsafeJson(f"{name} is not a number JSON allows")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` for untrusted text: `UnsafeJson` for nesting deeper than `max_depth` or a
    number that is not finite (1e400, NaN, Infinity); `json.JSONDecodeError` as usual."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise UnsafeJson(f"nested {depth} levels deep; at most {max_depth} are read")
    return json.loads(text, parse_float=_finite, parse_constant=_no_constant)

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
    """JSON that is too deeply nested, or holds a number that is not finite; `pos` is the offset
    in the text where the offending value starts, when known."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (brackets inside strings skipped)."""
    return _scan_depth(text)[0]


def _scan_depth(text: str, limit: int | None = None) -> tuple[int, int | None]:
    """(deepest nesting, offset where the nesting first passes `limit`, or None)."""
    depth = deepest = 0
    first_over: int | None = None
    in_string = escaped = False
    for offset, char in enumerate(text):
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
            if limit is not None and first_over is None and depth > limit:
                first_over = offset
        elif char in "]}":
            depth -= 1
    return deepest, first_over


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


_SPACE = " \t\n\r"  # JSON's whitespace


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def array_items(text: str, *, max_depth: int = MAX_DEPTH) -> list[tuple[int, Any]]:
    """The items of a JSON array (the whole text), each with the offset where it starts.

    The offsets let a reader name the line of a bad item. The array is one level itself, so its
    items may nest `max_depth` deep, as a JSON Lines row may. `UnsafeJson` carries the offset of
    the item (or bracket) at fault in `pos`; `json.JSONDecodeError` carries its own.
    """
    depth, over = _scan_depth(text, max_depth + 1)
    if over is not None:
        # Counted as a JSON Lines row would be: without the array around it.
        raise UnsafeJson(f"nested {depth - 1} levels deep; at most {max_depth} are read", pos=over)
    decoder = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)
    pos = _skip_space(text, 0)
    if text[pos : pos + 1] != "[":
        raise json.JSONDecodeError("Expecting '['", text, pos)
    items: list[tuple[int, Any]] = []
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except UnsafeJson as error:
                raise UnsafeJson(str(error), pos=pos) from None
            items.append((pos, value))
            pos = _skip_space(text, end)
            delimiter = text[pos : pos + 1]
            if delimiter == "]":
                pos += 1
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip_space(text, pos + 1)
    if _skip_space(text, pos) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip_space(text, pos))
    return items

"""Data layouts: which fields a row holds, and the one canonical record each row becomes.

Users bring chat data in a few layouts that every peer reads (trl, LLaMA-Factory, Axolotl,
Unsloth); `LAYOUTS` holds one entry per layout, in detection order:

| name                | a row holds                                              | becomes      |
|---------------------|----------------------------------------------------------|--------------|
| `messages`          | `messages`: [{role: system/user/assistant, content}, ...] | Conversation |
| `sharegpt`          | `conversations`: [{from: system/human/gpt, value}, ...]   | Conversation |
| `alpaca`            | `instruction`, optional `input` and `system`, `output`    | Conversation |
| `prompt_completion` | trl's `prompt`, `completion`: both strings or both lists  | Conversation |
| `prompt_response`   | the study's prompt and response fields (`PairFields`)     | Conversation |
| `text`              | `text`, for continued pre-training                        | Document     |

A layout is detected from a row's keys (None counts as absent: Parquet and `datasets` write a
missing field so); the first entry whose keys a row holds wins, and extra fields (`id`) are
allowed. `detect` looks at every row, once per distinct set of keys. A file matching no layout,
or mixing two, is a `LayoutError` naming the file, the first row at fault, the fields found and
the layouts read. `data.format` skips detection (`to_examples(format=)`); every row is still
checked, and a bad row is a `LayoutError` naming the file, the row and, for a turn, which one.
Types are checked at conversion, not detection, so a row with the right keys and a wrong value
is told what is wrong with it. Chat templates are applied at training, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runners.datafiles import DataFileError, Record, located, read_numbered
from runners.errors import TrialInputError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Turn:
    role: str
    """One of `ROLES`."""
    content: str


@dataclass(frozen=True)
class Conversation:
    """A chat example: turns in order, at least one by the assistant."""

    row: int
    """The row's number in its file (`datafiles.Record`)."""
    messages: tuple[Turn, ...]


@dataclass(frozen=True)
class Document:
    """A raw-text example, trained on every token (continued pre-training)."""

    row: int
    text: str


Example = Conversation | Document


@dataclass(frozen=True)
class PairFields:
    """The field names of the `prompt_response` layout (the study's `data.prompt_field` and
    `data.response_field`)."""

    prompt: str = "prompt"
    response: str = "response"


class RowProblem(ValueError):
    """What is wrong with one row, and the fix (`args`); `to_examples` adds the file and row."""


class LayoutError(DataFileError):
    """A file whose rows match no layout, mix layouts, or hold a bad row; names file and row."""


@dataclass(frozen=True)
class Layout:
    name: str
    kind: Literal["chat", "text"]
    shape: str
    """The fields, as an error message lists them for the user."""
    keys: Callable[[PairFields], tuple[str, ...]]
    """The keys a row must hold (not None) to be in this layout."""
    convert: Callable[[Mapping[str, Any], PairFields], tuple[Turn, ...] | str]
    """A row's turns (chat) or text; raises `RowProblem`."""


# --- checks shared by the layouts -------------------------------------------------------------


_KINDS = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
_KINDS |= {bool: "a boolean", type(None): "null"}


def _type(value: Any) -> str:
    """A JSON value's kind, with its article: "a list", "an object"."""
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def _string(value: Any, what: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise RowProblem(f"{what} is {_type(value)}, not a string", f"write {what} as text")
    if not empty_ok and not value.strip():
        raise RowProblem(f"{what} is empty", f"write {what}, or remove the row")
    return value


def _conversation(turns: Sequence[Turn]) -> tuple[Turn, ...]:
    if not any(turn.role == "assistant" for turn in turns):
        raise RowProblem(
            "the conversation has no assistant turn, so there is nothing to learn from it",
            "add the assistant's reply, or remove the row",
        )
    return tuple(turns)


def _turn_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        what = "an empty list" if value == [] else _type(value)
        raise RowProblem(f"{field} is {what}, not a list of turns", f"write {field} as [{{...}}]")
    return value


def _turns(
    value: Any, field: str, role_key: str, text_key: str, roles: Mapping[str, str]
) -> list[Turn]:
    """The turns of a list of {role_key, text_key} objects, each role mapped through `roles`."""
    turns = []
    for number, item in enumerate(_turn_list(value, field), start=1):
        if not isinstance(item, dict):
            raise RowProblem(
                f"{field} turn {number} is {_type(item)}, not an object",
                f"write each turn as {{{role_key!r}: ..., {text_key!r}: ...}}",
            )
        role = item.get(role_key)
        if role not in roles:
            found = f"{role_key} {role!r}" if role_key in item else f"no {role_key!r} key"
            keys = ", ".join(sorted(str(key) for key in item))
            raise RowProblem(
                f"{field} turn {number} has {found} (keys: {keys}); roles read: {', '.join(roles)}",
                f"give every turn a {role_key!r} of {', '.join(roles)}",
            )
        text = _string(item.get(text_key), f"{field} turn {number} ({role}) {text_key}")
        turns.append(Turn(roles[role], text))
    return turns


# --- the layouts ------------------------------------------------------------------------------

_SAME = {role: role for role in ROLES}
_SHAREGPT = {"system": "system", "human": "user", "gpt": "assistant", "user": "user"}
_SHAREGPT |= {"assistant": "assistant"}  # Unsloth's standardize_sharegpt accepts both names


def _messages(row: Mapping[str, Any], _: PairFields) -> tuple[Turn, ...]:
    return _conversation(_turns(row["messages"], "messages", "role", "content", _SAME))


def _sharegpt(row: Mapping[str, Any], _: PairFields) -> tuple[Turn, ...]:
    return _conversation(_turns(row["conversations"], "conversations", "from", "value", _SHAREGPT))


def _alpaca(row: Mapping[str, Any], _: PairFields) -> tuple[Turn, ...]:
    """Alpaca's `input` follows the instruction after a blank line, as in the Alpaca authors'
    prompt (tatsu-lab/stanford_alpaca, train.py, PROMPT_DICT["prompt_input"]:
    "### Instruction:\\n{instruction}\\n\\n### Input:\\n{input}"), without its "###" headers,
    which a chat template replaces. An empty `input` is no input. An optional `system` field is
    the system prompt, as LLaMA-Factory's alpaca format reads it."""
    prompt = _string(row["instruction"], "instruction")
    extra = row.get("input")
    if extra is not None and _string(extra, "input", empty_ok=True).strip():
        prompt = f"{prompt}\n\n{extra}"
    turns = [Turn("user", prompt), Turn("assistant", _string(row["output"], "output"))]
    system = row.get("system")
    if system is not None and _string(system, "system", empty_ok=True).strip():
        turns.insert(0, Turn("system", system))
    return tuple(turns)


def _prompt_completion(row: Mapping[str, Any], _: PairFields) -> tuple[Turn, ...]:
    """trl's prompt/completion (trl/data_utils.py): two strings, a user turn and its answer, or
    two message lists, the prompt's turns then the completion's assistant turns."""
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, str) and isinstance(completion, str):
        return (
            Turn("user", _string(prompt, "prompt")),
            Turn("assistant", _string(completion, "completion")),
        )
    if isinstance(prompt, list) and isinstance(completion, list):
        head = _turns(prompt, "prompt", "role", "content", _SAME)
        tail = _turns(completion, "completion", "role", "content", {"assistant": "assistant"})
        return _conversation(head + tail)
    raise RowProblem(
        f"prompt is {_type(prompt)} and completion {_type(completion)}",
        "write both as strings, or both as lists of {'role': ..., 'content': ...} turns",
    )


def _json_text(value: Any, what: str) -> str:
    """A prompt/response value: a string, or any other JSON value (a structured answer, a
    number) written as JSON, as `runners.data` has always read these fields."""
    if isinstance(value, str):
        return _string(value, what)
    return json.dumps(value, ensure_ascii=False)


def _prompt_response(row: Mapping[str, Any], fields: PairFields) -> tuple[Turn, ...]:
    return (
        Turn("user", _json_text(row[fields.prompt], fields.prompt)),
        Turn("assistant", _json_text(row[fields.response], fields.response)),
    )


def _text(row: Mapping[str, Any], _: PairFields) -> str:
    return _string(row["text"], "text")


def _keys(*names: str) -> Callable[[PairFields], tuple[str, ...]]:
    return lambda _: names


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "messages", "chat", "messages: [{role, content}, ...]", _keys("messages"), _messages
        ),
        Layout(
            "sharegpt",
            "chat",
            "conversations: [{from, value}, ...]",
            _keys("conversations"),
            _sharegpt,
        ),
        Layout(
            "alpaca",
            "chat",
            "instruction, input (optional), output",
            _keys("instruction", "output"),
            _alpaca,
        ),
        Layout(
            "prompt_completion",
            "chat",
            "prompt, completion (strings or turn lists)",
            _keys("prompt", "completion"),
            _prompt_completion,
        ),
        Layout(
            "prompt_response",
            "chat",
            "the prompt and response fields (default: prompt, response)",
            lambda f: (f.prompt, f.response),
            _prompt_response,
        ),
        Layout("text", "text", "text", _keys("text"), _text),
    )
}
"""Every layout read, by name, in detection order (the first whose keys a row holds wins)."""


# --- detection and conversion -----------------------------------------------------------------


def _accepted(fields: PairFields) -> str:
    shapes = {name: layout.shape for name, layout in LAYOUTS.items()}
    if fields != PairFields():
        shapes["prompt_response"] = f"{fields.prompt}, {fields.response}"
    return "; ".join(f"{name} ({shape})" for name, shape in shapes.items())


def _present(row: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(key for key, value in row.items() if value is not None)


def _found(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} ({_type(value)})" for key, value in row.items()) or "none"


def _require_rows(rows: Sequence[Record], path: Path, *, where: str) -> None:
    if not rows:
        raise TrialInputError(
            f"data file {path.name} holds no records", fix="add examples", where=where
        )


def layout_of(row: Mapping[str, Any], fields: PairFields = PairFields()) -> Layout | None:
    """The first layout whose keys `row` holds, or None."""
    present = _present(row)
    return next((lay for lay in LAYOUTS.values() if present.issuperset(lay.keys(fields))), None)


def detect(
    rows: Sequence[Record], path: str | Path, *, fields: PairFields = PairFields(), where: str
) -> Layout:
    """The one layout of every row of `path` (see the module docstring).

    Raises `LayoutError` for a file with no rows, a row that matches no layout (its fields and
    the layouts read are named), or a row in another layout than the first row's.
    """
    path = Path(path)
    _require_rows(rows, path, where=where)
    seen: dict[frozenset[str], Layout | None] = {}
    first: tuple[int, Layout] | None = None
    for number, row in rows:
        present = _present(row)
        if present not in seen:
            seen[present] = layout_of(row, fields)
        layout = seen[present]
        if layout is None:
            raise LayoutError(
                path,
                number,
                f"no data layout matches the row; fields found: {_found(row)}; layouts read: "
                f"{_accepted(fields)}",
                fix="rename the fields to one layout's, name the prompt and response fields "
                "(data.prompt_field, data.response_field), or set data.format",
                where=where,
            )
        if first is None:
            first = (number, layout)
        elif layout is not first[1]:
            raise LayoutError(
                path,
                number,
                f"the row is in the {layout.name} layout ({layout.shape}), but "
                f"{located(path, first[0])} is in the {first[1].name} layout "
                f"({first[1].shape}); a file holds one layout",
                fix="convert the rows to one layout, or split the file by layout",
                where=where,
            )
    assert first is not None
    return first[1]


def layout_named(name: str, *, where: str = "data.format") -> Layout:
    """The layout called `name` (a study's `data.format`)."""
    if name not in LAYOUTS:
        raise TrialInputError(
            f"unknown data format {name!r}",
            fix=f"use one of {', '.join(LAYOUTS)}, or leave data.format out to detect it",
            where=where,
        )
    return LAYOUTS[name]


def to_examples(
    rows: Sequence[Record],
    path: str | Path,
    *,
    format: str | None = None,
    fields: PairFields = PairFields(),
    where: str,
) -> tuple[Layout, list[Example]]:
    """The layout of `rows` (detected, or the one `format` names) and each row's example.

    Raises `LayoutError` naming the file and row for the first bad row, or a row without the
    keys of the layout `format` names.
    """
    path = Path(path)
    _require_rows(rows, path, where=where)
    if format is None:
        layout = detect(rows, path, fields=fields, where=where)
    else:
        layout = layout_named(format)
    needed = layout.keys(fields)
    examples: list[Example] = []
    for number, row in rows:
        missing = [key for key in needed if row.get(key) is None]
        try:
            if missing:
                raise RowProblem(
                    f"the row has no {', '.join(missing)}, which the {layout.name} layout "
                    f"({layout.shape}) needs; fields found: {_found(row)}",
                    "give every row the layout's fields, or change data.format "
                    "(leave it out to detect the layout)",
                )
            converted = layout.convert(row, fields)
        except RowProblem as problem:
            message, fix = problem.args
            raise LayoutError(path, number, message, fix=fix, where=where) from None
        if isinstance(converted, str):
            examples.append(Document(number, converted))
        else:
            examples.append(Conversation(number, converted))
    return layout, examples


def read_examples(
    path: str | Path,
    *,
    format: str | None = None,
    fields: PairFields = PairFields(),
    where: str,
) -> tuple[Layout, list[Example]]:
    """`to_examples` of a data file read by `datafiles.read_numbered`."""
    return to_examples(
        read_numbered(path, where=where), path, format=format, fields=fields, where=where
    )

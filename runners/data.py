"""Train/eval data: local JSONL or CSV files mapped onto trl's conversational prompt/completion.

The prompt is a list of chat messages (optional system prompt, then the user turn) and the
completion is the assistant turn, so trl's `completion_only_loss=True` puts the loss on the
response only (`assistant_only_loss` fails with SmolLM2's template: it has no generation markers).
Files are parsed here rather than through `datasets.load_dataset` so errors name the file, line
and field, and nothing is written to a shared cache by concurrent trials.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from runners.config import DataConfig
from runners.errors import TrialInputError

Messages = list[dict[str, str]]
_READERS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


def read_records(path: str | Path, *, where: str) -> list[dict[str, Any]]:
    """Rows of a local JSONL (one object per line) or CSV (with a header) file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TrialInputError(
            f"data file {str(path)!r} does not exist", fix="check the path", where=where
        )
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise TrialInputError(
            f"cannot read {path.name!r}: unknown file type {path.suffix!r}",
            fix=f"use one of {sorted(_READERS)}",
            where=where,
        )
    _check_utf8(path, where=where)
    if kind == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrialInputError(
                    f"{path}:{number} is not valid JSON ({exc.msg})",
                    fix="write one JSON object per line",
                    where=where,
                ) from None
            if not isinstance(row, dict):
                raise TrialInputError(
                    f"{path}:{number} is not a JSON object", fix="one object per line", where=where
                )
            rows.append(row)
    return rows


def _check_utf8(path: Path, *, where: str) -> None:
    """Name the line of the first non-UTF-8 byte (a bare UnicodeDecodeError names neither)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TrialInputError(
            f"{path}:{line} is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            fix=f"save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name}`",
            where=where,
        ) from None


def _text(value: Any) -> str:
    """A field value as text; structured values (a JSON answer) are serialised as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _pairs(
    path: str, cfg: DataConfig, limit: int | None, *, where: str
) -> list[tuple[Messages, str]]:
    rows = read_records(path, where=where)
    if not rows:
        raise TrialInputError(f"data file {path!r} is empty", fix="add examples", where=where)
    if limit is not None:
        rows = rows[:limit]
    fields = sorted({key for row in rows for key in row})
    for role, name in (("prompt_field", cfg.prompt_field), ("response_field", cfg.response_field)):
        missing = [i for i, row in enumerate(rows, start=1) if name not in row]
        if missing:
            raise TrialInputError(
                f"field {name!r} is missing from {path!r} (record {missing[0]}); "
                f"fields present: {fields}",
                fix=f"set data.{role} to one of {fields}",
                where=f"data.{role}",
            )
    out = []
    for row in rows:
        messages: Messages = []
        if cfg.system_prompt:
            messages.append({"role": "system", "content": cfg.system_prompt})
        messages.append({"role": "user", "content": _text(row[cfg.prompt_field])})
        out.append((messages, _text(row[cfg.response_field])))
    return out


def conversational(pairs: list[tuple[Messages, str]]) -> list[dict[str, Messages]]:
    """trl's prompt/completion records."""
    return [
        {"prompt": prompt, "completion": [{"role": "assistant", "content": response}]}
        for prompt, response in pairs
    ]


def load_datasets(cfg: DataConfig) -> tuple[Any, Any]:
    """(train, eval) as `datasets.Dataset` in trl's conversational prompt/completion format."""
    from datasets import Dataset

    train = _pairs(cfg.train_path, cfg, cfg.max_train_examples, where="data.train_path")
    evals = _pairs(cfg.eval_path, cfg, cfg.max_eval_examples, where="data.eval_path")
    return Dataset.from_list(conversational(train)), Dataset.from_list(conversational(evals))


def eval_records(cfg: DataConfig) -> list[tuple[Messages, str]]:
    """(prompt messages, reference answer) pairs of the eval set, for generation and scoring."""
    return _pairs(cfg.eval_path, cfg, cfg.max_eval_examples, where="data.eval_path")

"""Train/eval data: local JSONL or CSV files mapped onto trl's conversational prompt/completion.

The prompt is a list of chat messages (optional system prompt, then the user turn) and the
completion is the assistant turn, so trl's `completion_only_loss=True` puts the loss on the
response only (`assistant_only_loss` fails with SmolLM2's template: it has no generation markers).
Files are read by `runners.datafiles`, whose errors name the file and line; the fields are
checked here, by name.

Replay (`DataConfig.replay_path`): general instruction examples are mixed into the training set so
that a trial forgets less of what the base model could do. `replay_fraction` is the replay share
of the final mixture; the rows are drawn with the trial's seed, so every trial of a study with the
same fraction trains on the same rows (see `training_set`).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from runners.config import DataConfig
from runners.datafiles import read_records
from runners.errors import TrialInputError

Messages = list[dict[str, str]]


def _text(value: Any) -> str:
    """A field value as text; structured values (a JSON answer) are serialised as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _pairs(
    path: str,
    cfg: DataConfig,
    limit: int | None,
    *,
    where: str,
    fields: tuple[str, str] | None = None,
    system_prompt: str | None = None,
) -> list[tuple[Messages, str]]:
    """(prompt messages, response) per row; `fields` default to the task's prompt/response."""
    rows = read_records(path, where=where)
    if not rows:
        raise TrialInputError(f"data file {path!r} is empty", fix="add examples", where=where)
    if limit is not None:
        rows = rows[:limit]
    prompt_field, response_field = fields or (cfg.prompt_field, cfg.response_field)
    section = "data.replay" if fields else "data"
    present = sorted({key for row in rows for key in row})
    for role, name in (("prompt_field", prompt_field), ("response_field", response_field)):
        missing = [i for i, row in enumerate(rows, start=1) if name not in row]
        if missing:
            raise TrialInputError(
                f"field {name!r} is missing from {path!r} (record {missing[0]}); "
                f"fields present: {present}",
                fix=f"set {section}.{role} to one of {present}",
                where=f"{section}.{role}",
            )
    out = []
    for row in rows:
        messages: Messages = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": _text(row[prompt_field])})
        out.append((messages, _text(row[response_field])))
    return out


def _task_pairs(
    path: str, cfg: DataConfig, limit: int | None, *, where: str
) -> list[tuple[Messages, str]]:
    return _pairs(path, cfg, limit, where=where, system_prompt=cfg.system_prompt)


def conversational(pairs: list[tuple[Messages, str]]) -> list[dict[str, Messages]]:
    """trl's prompt/completion records."""
    return [
        {"prompt": prompt, "completion": [{"role": "assistant", "content": response}]}
        for prompt, response in pairs
    ]


# --- replay -------------------------------------------------------------------------------------


def replay_count(task_examples: int, fraction: float) -> int:
    """Replay examples to add to `task_examples` so that they make up `fraction` of the mixture.

    round(fraction * task / (1 - fraction)), halves rounded up: 200 task examples at 0.1 get 22
    replay examples (9.9% of 222). The share of the mixture rather than "fraction x task" because
    that is what "mix in 10% general data" means to the people who write it.
    """
    if not 0.0 <= fraction < 1.0:
        raise TrialInputError(
            f"the replay fraction must lie in [0, 1), but got {fraction}",
            fix="use e.g. 0.05 or 0.1",
            where="data.replay.fraction",
        )
    return math.floor(fraction * task_examples / (1.0 - fraction) + 0.5)


def draw_replay(rows: int, count: int, seed: int) -> list[int]:
    """Indices of the `count` replay rows used, in draw order, from a file of `rows` rows.

    A seeded permutation of the file; when `count` exceeds the file, further permutations follow,
    so every row is used equally often (floor or ceil of count / rows times).
    """
    rng = random.Random(seed)
    drawn: list[int] = []
    while len(drawn) < count:
        order = list(range(rows))
        rng.shuffle(order)
        drawn.extend(order)
    return drawn[:count]


@dataclass(frozen=True)
class TrainingSet:
    """The training examples of a trial and what they are made of."""

    pairs: list[tuple[Messages, str]]
    """Task and replay examples, shuffled together (task order kept when there is no replay)."""
    task_examples: int
    replay_rows: tuple[int, ...] = ()
    """0-based indices of the replay file's rows mixed in, in draw order (repeats possible)."""


def training_set(cfg: DataConfig, *, seed: int) -> TrainingSet:
    """The task's training pairs with `replay_count` replay rows mixed in (see `draw_replay`).

    Replay rows carry no system prompt: the task's system prompt would teach the model to answer
    general requests in the task's format, the opposite of what replay is for.
    """
    task = _task_pairs(cfg.train_path, cfg, cfg.max_train_examples, where="data.train_path")
    count = replay_count(len(task), cfg.replay_fraction)
    if count == 0:
        return TrainingSet(pairs=task, task_examples=len(task))
    if cfg.replay_path is None:
        raise TrialInputError(
            f"replay_fraction is {cfg.replay_fraction} but no replay file is set",
            fix="set data.replay.path, or the fraction to 0",
            where="data.replay",
        )
    replay = _pairs(
        cfg.replay_path,
        cfg,
        None,
        where="data.replay.path",
        fields=(cfg.replay_prompt_field, cfg.replay_response_field),
    )
    drawn = draw_replay(len(replay), count, seed)
    mixed = task + [replay[i] for i in drawn]
    random.Random(seed).shuffle(mixed)
    return TrainingSet(pairs=mixed, task_examples=len(task), replay_rows=tuple(drawn))


def as_dataset(pairs: list[tuple[Messages, str]]) -> Any:
    """A `datasets.Dataset` in trl's conversational prompt/completion format."""
    from datasets import Dataset

    return Dataset.from_list(conversational(pairs))


def load_datasets(cfg: DataConfig, *, seed: int = 0) -> tuple[Any, Any]:
    """(train, eval) as `datasets.Dataset` in trl's conversational prompt/completion format."""
    return as_dataset(training_set(cfg, seed=seed).pairs), as_dataset(eval_records(cfg))


def eval_records(cfg: DataConfig) -> list[tuple[Messages, str]]:
    """(prompt messages, reference answer) pairs of the eval set, for generation and scoring."""
    return _task_pairs(cfg.eval_path, cfg, cfg.max_eval_examples, where="data.eval_path")

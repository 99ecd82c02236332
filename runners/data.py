"""Train/eval data: the task, eval and replay files read through `runners.layouts`.

Each file is read in whatever layout its rows hold (or `data.format` names): chat layouts become
`Conversation`s, raw text `Document`s. `data.system_prompt` is put before every task (and eval)
conversation that does not start with a system turn of its own; a text corpus has no turns and
ignores it. The examples are tokenised once the tokenizer is loaded (`to_dataset`): a
conversation by `runners.chat` (the loss on every assistant turn), a document by
`runners.corpus` (every token, packed or cut at `train.max_seq_length`).

Replay (`DataConfig.replay_path`): general instruction examples are mixed into the training set so
that a trial forgets less of what the base model could do. `replay_fraction` is the replay share
of the final mixture; the rows are drawn with the trial's seed, so every trial of a study with the
same fraction trains on the same rows (see `training_set`). Replay is for chat tasks: a replay
file in any chat layout is read, and a text corpus with replay is refused (general instruction
turns mixed into continued pre-training would be trained as raw text, not as answers).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from runners.chat import Truncation, as_messages, encode_conversations
from runners.config import DataConfig
from runners.corpus import blocks
from runners.datafiles import read_numbered
from runners.errors import TrialInputError
from runners.layouts import (
    Conversation,
    Document,
    Example,
    Layout,
    LayoutError,
    PairFields,
    Turn,
    to_examples,
)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Examples:
    """The examples of one file and the layout they were read in."""

    layout: Layout
    examples: list[Example]


def _field_problem(rows: Sequence[Any], path: str, fields: PairFields, section: str) -> None:
    """With prompt/response fields named in the study (not the defaults), a row without them is
    told so by field name, which says more than "no layout matches"."""
    present = sorted({key for _, row in rows for key in row})
    for role, name in (("prompt_field", fields.prompt), ("response_field", fields.response)):
        missing = [number for number, row in rows if name not in row]
        if missing:
            raise TrialInputError(
                f"field {name!r} is missing from {path!r} (record {missing[0]}); "
                f"fields present: {present}",
                fix=f"set {section}.{role} to one of {present}",
                where=f"{section}.{role}",
            )


def read_file(
    path: str,
    *,
    limit: int | None,
    where: str,
    fields: PairFields,
    format: str | None = None,
    section: str = "data",
) -> Examples:
    """The examples of `path` (the first `limit` rows), detected or read as `format`."""
    rows = read_numbered(path, where=where)
    if limit is not None:
        rows = rows[:limit]
    try:
        layout, examples = to_examples(rows, path, format=format, fields=fields, where=where)
    except LayoutError:
        if fields != PairFields() and format in (None, "prompt_response"):
            _field_problem(rows, path, fields, section)
        raise
    return Examples(layout, examples)


def with_system_prompt(example: Example, system_prompt: str | None) -> Example:
    """`example` with `system_prompt` first, unless it is raw text or has a system turn."""
    if not system_prompt or not isinstance(example, Conversation):
        return example
    if example.messages and example.messages[0].role == "system":
        return example
    return replace(example, messages=(Turn("system", system_prompt), *example.messages))


def task_examples(cfg: DataConfig, *, eval_set: bool = False) -> Examples:
    """The task's train (or eval) examples, system prompt applied."""
    path, limit, where = (
        (cfg.eval_path, cfg.max_eval_examples, "data.eval_path")
        if eval_set
        else (cfg.train_path, cfg.max_train_examples, "data.train_path")
    )
    read = read_file(
        path,
        limit=limit,
        where=where,
        fields=PairFields(cfg.prompt_field, cfg.response_field),
        format=cfg.format,
    )
    examples = [with_system_prompt(example, cfg.system_prompt) for example in read.examples]
    return Examples(read.layout, examples)


def last_turn(conversation: Conversation) -> tuple[Messages, str]:
    """(the conversation before its last assistant turn, that turn's content): what scoring asks
    the model and compares its answer with."""
    messages = as_messages(conversation)
    last = max(i for i, message in enumerate(messages) if message["role"] == "assistant")
    return messages[:last], messages[last]["content"]


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

    layout: Layout
    """The task file's layout (replay rows may come in another chat layout)."""
    examples: list[Example]
    """Task and replay examples, shuffled together (task order kept when there is no replay)."""
    task_examples: int
    replay_rows: tuple[int, ...] = ()
    """0-based indices of the replay file's rows mixed in, in draw order (repeats possible)."""

    @property
    def pairs(self) -> list[tuple[Messages, str]]:
        """Each conversation as (the turns before its last answer, that answer)."""
        return [last_turn(e) for e in self.examples if isinstance(e, Conversation)]


def training_set(cfg: DataConfig, *, seed: int) -> TrainingSet:
    """The task's training examples with `replay_count` replay rows mixed in (`draw_replay`).

    Replay rows carry no system prompt: the task's system prompt would teach the model to answer
    general requests in the task's format, the opposite of what replay is for.
    """
    task = task_examples(cfg)
    count = replay_count(len(task.examples), cfg.replay_fraction)
    if count == 0:
        return TrainingSet(task.layout, task.examples, len(task.examples))
    if task.layout.kind == "text":
        raise TrialInputError(
            f"replay mixes general instruction examples into a chat task, but "
            f"{cfg.train_path!r} is a raw text corpus (the {task.layout.name} layout)",
            fix="set data.replay.fraction to 0, or remove data.replay, for continued pre-training",
            where="data.replay",
        )
    if cfg.replay_path is None:
        raise TrialInputError(
            f"replay_fraction is {cfg.replay_fraction} but no replay file is set",
            fix="set data.replay.path, or the fraction to 0",
            where="data.replay",
        )
    replay = read_file(
        cfg.replay_path,
        limit=None,
        where="data.replay.path",
        fields=PairFields(cfg.replay_prompt_field, cfg.replay_response_field),
        section="data.replay",
    )
    if replay.layout.kind == "text":
        raise TrialInputError(
            f"the replay file {cfg.replay_path!r} is raw text (the text layout); replay mixes "
            "instruction examples with answers into training",
            fix="use a replay file of prompts and answers (any chat layout)",
            where="data.replay.path",
        )
    drawn = draw_replay(len(replay.examples), count, seed)
    mixed = task.examples + [replay.examples[i] for i in drawn]
    random.Random(seed).shuffle(mixed)
    return TrainingSet(task.layout, mixed, len(task.examples), tuple(drawn))


def records_of(examples: Sequence[Example]) -> list[tuple[Messages, str]]:
    """(prompt messages, reference answer) per conversation, for generation and scoring: the
    last assistant turn, asked with every turn before it."""
    return [last_turn(e) for e in examples if isinstance(e, Conversation)]


def eval_records(cfg: DataConfig) -> list[tuple[Messages, str]]:
    """`records_of` the eval file."""
    return records_of(task_examples(cfg, eval_set=True).examples)


def to_dataset(
    examples: Sequence[Example], tokenizer: Any, *, max_length: int, packing: bool = False
) -> tuple[Any, Truncation, list[list[int]]]:
    """A `datasets.Dataset` of `input_ids` and `labels` that trl trains on as it is, what
    truncation cut, and the token sequences (for perplexity)."""
    from datasets import Dataset

    conversations = [e for e in examples if isinstance(e, Conversation)]
    documents = [e for e in examples if isinstance(e, Document)]
    if conversations and documents:  # a file holds one layout; this is a mixture's fault
        raise ValueError("a training set mixes conversations and raw text documents")
    if documents:
        sequences, cut = blocks(tokenizer, documents, max_length=max_length, packing=packing)
        rows = [{"input_ids": seq, "labels": list(seq)} for seq in sequences]
    else:
        encoded, cut = encode_conversations(tokenizer, conversations, max_length=max_length)
        sequences = [item.input_ids for item in encoded]
        rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded if e.trains]
    return Dataset.from_list(rows), cut, sequences


def load_datasets(cfg: DataConfig, tokenizer: Any, *, max_length: int, seed: int = 0) -> tuple:
    """(train, eval) datasets of `to_dataset`, ready for `runners.train.train`."""
    train = to_dataset(
        training_set(cfg, seed=seed).examples, tokenizer, max_length=max_length, packing=cfg.packing
    )
    evals = to_dataset(
        task_examples(cfg, eval_set=True).examples,
        tokenizer,
        max_length=max_length,
        packing=cfg.packing,
    )
    return train[0], evals[0]

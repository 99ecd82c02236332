"""A study's data layouts: which layout each data file is in, and the rules that span them.

`runners.layouts` reads a file's rows into one canonical record per row (chat or raw text) and
names the file and row of anything it cannot read. A study adds rules across its files and
sections, checked here before anything trains, because a trial would only find them after the
study was recorded:

- train and eval hold the same kind of data (chat or raw text), and so does the replay file:
  a model trained on conversations cannot be scored on a corpus, nor the other way round;
- the metric fits that kind: a metric scored from generated answers needs chat data, raw text
  has no answers to generate and is scored by `perplexity` (or `eval_loss`); `perplexity` on
  chat data would score the prompts too, so chat studies use the task metrics or `eval_loss`;
- `data.packing` concatenates raw documents; on chat data it would glue conversations together
  across their templates, so it is raw text only.

The layout is detected with the study's `data.format` and prompt/response fields, exactly as the
trials detect it (`runners.layouts.to_examples`), on the rows a trial reads (the first
`max_train_examples` / `max_eval_examples`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runners.datafiles import read_numbered
from runners.layouts import Layout, PairFields, to_examples
from runners.metrics import METRICS

DEFAULT_METRIC = "exact_match"
"""A study's metric when it names none (`StudySpec.metric`)."""
PERPLEXITY = "perplexity"
"""The raw-text metric (minimised): scored on held-out text, never on conversations."""

Rule = tuple[str, str, str]
"""(the key at fault: eval, replay, metric or packing; message; fix)."""


@dataclass(frozen=True)
class DataFile:
    """One data file of a study as validated: its role, layout and row count."""

    role: str
    """train, eval or replay."""
    path: str
    layout: str
    kind: str
    """chat or text (`runners.layouts.Layout.kind`)."""
    rows: int
    """Rows a trial reads (after max_train_examples / max_eval_examples)."""


def read_layout(
    path: str | Path,
    *,
    format: str | None,
    fields: PairFields,
    limit: int | None = None,
    where: str,
) -> tuple[Layout, int]:
    """The layout of the rows a trial reads from `path` and their count.

    Raises `runners.errors.TrialInputError` (a `LayoutError` names the file and row) for a file
    that cannot be read, matches no layout, mixes layouts, or holds a bad row."""
    records = read_numbered(path, where=where)
    records = records[:limit] if limit else records
    layout, examples = to_examples(records, path, format=format, fields=fields, where=where)
    return layout, len(examples)


def _shown(layout: Layout) -> str:
    return f"{layout.kind} ({layout.name} layout)"


def metric_problem(metric: str, layout: Layout) -> tuple[str, str] | None:
    """Why `metric` cannot score data in `layout`, with the fix, or None when it fits."""
    entry = METRICS.get(metric)
    if entry is None:
        return None  # the schema names the known metrics
    if layout.kind == "text" and entry.needs_generation:
        return (
            f"metric {metric!r} scores generated answers, but the data is raw text "
            f"({layout.name} layout): it has no answers to generate",
            f"set metric: {PERPLEXITY} (or eval_loss) for raw text, or give chat data",
        )
    if layout.kind == "chat" and metric == PERPLEXITY:
        chat = [name for name, m in METRICS.items() if name != PERPLEXITY]
        return (
            f"metric {PERPLEXITY!r} scores raw text, but the data is {_shown(layout)}",
            f"use a chat metric ({', '.join(chat)}), or give raw text (the text layout)",
        )
    return None


def layout_rules(layouts: dict[str, Layout], *, metric: object, packing: object) -> list[Rule]:
    """The rules across a study's files (see the module docstring) for the layouts detected,
    by role (train, eval, replay; a file that could not be read is absent)."""
    rules: list[Rule] = []
    train = layouts.get("train")
    for role in ("eval", "replay"):
        other = layouts.get(role)
        if train is not None and other is not None and other.kind != train.kind:
            rules.append(
                (
                    role,
                    f"the {role} data is {_shown(other)} but the train data is {_shown(train)}: "
                    "a study trains and scores one kind of data",
                    f"give {role} data of the train data's kind ({train.kind}), or train on "
                    f"{other.kind} data",
                )
            )
    scored = layouts.get("eval") or train
    if scored is not None and isinstance(metric, str):
        problem = metric_problem(metric, scored)
        if problem is not None:
            rules.append(("metric", *problem))
    if packing is True and train is not None and train.kind != "text":
        rules.append(
            (
                "packing",
                f"data.packing concatenates raw documents, but the train data is {_shown(train)}",
                "remove data.packing (chat rows are trained one conversation at a time), or "
                "give raw text (the text layout)",
            )
        )
    return rules

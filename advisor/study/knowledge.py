"""The study's rules for the retrieval methods and its knowledge source (`data.knowledge`).

A retrieval method (`rag`, `rag_lora`: `Method.retrieval` in the runner's registry) needs
`data.knowledge`, which no other method reads; a method that trains nothing (`rag`:
`Method.trains`) takes no learning rate and no replay. Both are refused rather than ignored: a
value that has no effect would still be recorded with the study, and read later as if it had
shaped the results. `top_k` and `chunk_size` given to a method without retrieval are refused by
the per-method parameter rule of `spec`, as `r` given to `full` is.

The knowledge source is read whole at validation, by the reader the trials use
(`runners.knowledge`), so an empty folder, a blank file, a JSONL record without `text` or an
unreadable file is named by `validate`, at `data.knowledge`'s line, before a study is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runners.errors import TrialInputError
from runners.knowledge import read_documents
from runners.methods import METHODS

from .files import escapes_root, resolve_against

Problem = tuple[tuple[Any, ...], str, str]
"""(location, message, fix). The spec is typed `Any` here: `spec` imports this module, and the
house has no import circles."""


def retrieval_problems(spec: Any) -> list[Problem]:
    """The retrieval rules of the module docstring, for a study of one task. A study that
    searches the method (`search.method`) needs data.knowledge when any listed method
    retrieves, and refuses a learning rate or replay only when none of them trains."""
    methods = spec.methods()
    entries = [METHODS[m] for m in methods]
    searched = len(methods) > 1 or bool(spec.search.method)
    who = f"the searched methods ({', '.join(methods)})" if searched else f"method {spec.method!r}"
    retrievers = ", ".join(m for m, entry in METHODS.items() if entry.retrieval)
    problems: list[Problem] = []
    if any(e.retrieval for e in entries) and spec.data.knowledge is None:
        readers = [m for m, e in zip(methods, entries, strict=True) if e.retrieval]
        problems.append(
            (
                ("search", "method") if searched else ("method",),
                f"method {readers[0]!r} answers from retrieved passages, but data.knowledge "
                "is not set",
                "add data.knowledge: a .txt, .md, .jsonl or .parquet file, or a folder of them"
                + (f", or remove {readers[0]} from search.method" if searched else ""),
            )
        )
    if not any(e.retrieval for e in entries) and spec.data.knowledge is not None:
        verb = "retrieves" if searched else "does not retrieve"
        problems.append(
            (
                ("data", "knowledge"),
                (f"none of {who} {verb}" if searched else f"{who} {verb}")
                + ": data.knowledge would be ignored",
                f"remove data.knowledge, or use a method that retrieves ({retrievers})",
            )
        )
    if not any(e.trains for e in entries):
        unused = [("search", "learning_rate")] if spec.search.learning_rate is not None else []
        unused += [("search", "replay_fraction")] if spec.search.replay_fraction is not None else []
        unused += [("data", "replay")] if spec.data.replay is not None else []
        for loc in unused:
            dotted = ".".join(loc)
            problems.append(
                (
                    loc,
                    f"{who} trains nothing: {dotted} would have no effect",
                    f"remove {dotted}, or use a method that trains (e.g. rag_lora)",
                )
            )
    return problems


def knowledge_problems(raw: dict[str, Any], base_dir: Path) -> list[Problem]:
    """The knowledge sources of the raw study mapping that cannot be indexed (its `data`, and
    each task's), at their YAML paths: `load_study` reports them with the files' problems."""
    places: list[tuple[tuple[Any, ...], Any]] = [(("data",), raw.get("data"))]
    tasks = raw.get("tasks")
    for index, task in enumerate(tasks if isinstance(tasks, list) else []):
        places.append(
            (("tasks", index, "data"), task.get("data") if isinstance(task, dict) else None)
        )
    problems: list[Problem] = []
    for loc, data in places:
        found = knowledge_problem(data, base_dir) if isinstance(data, dict) else None
        if found is not None:
            problems.append(((*loc, "knowledge"), *found))
    return problems


def knowledge_problem(data: dict[str, Any], base_dir: Path) -> tuple[str, str] | None:
    """(message, fix) when the raw `data` section's knowledge source cannot be indexed.

    A path outside data.root is never opened (`DataSpec` reports it); a missing one is told
    where relative paths start."""
    value = data.get("knowledge")
    if not isinstance(value, str):
        return None  # absent, or a wrong type the schema reports
    root_value = data.get("root")
    root = resolve_against(root_value, base_dir) if isinstance(root_value, str) else base_dir
    path = resolve_against(value, base_dir)
    if not os.path.isdir(root) or escapes_root(path, root):
        return None
    if not os.path.lexists(path):
        return (
            f"knowledge source {value!r} does not exist",
            f"create it or fix the path (relative paths start at {base_dir})",
        )
    try:
        read_documents(path)
    except TrialInputError as error:
        return error.message, error.fix or ""
    return None


def passage_room(model: str, knowledge: str | Path, *, top_k: int, chunk_size: int) -> int:
    """Tokens that `top_k` passages of `knowledge` can add to a prompt, counted with `model`'s
    tokenizer: the instruction plus the `top_k` longest passages as the trial lists them
    (`runners.retrieval.with_context`). Measured, not estimated from words: the shipped
    catalogue runs at 1.9 tokens per word (SKUs, prices), where the recommender's words-based
    estimate assumes ~1.3, and a study written with the estimate cut every prompt's answer."""
    from runners.config import ModelRef  # lazy: only studies with a knowledge source count
    from runners.knowledge import chunk  # lazy: as above
    from runners.models import load_tokenizer  # lazy: as above (transformers' tokenizers)
    from runners.retrieval import with_context  # lazy: as above

    passages = chunk(read_documents(knowledge), chunk_size)  # a bad source fails before loading
    tokenizer = load_tokenizer(ModelRef(source=model))

    def tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    bare = tokens(with_context("", []))
    each = sorted((tokens(with_context("", [p])) - bare for p in passages), reverse=True)
    return bare + sum(each[:top_k])


def passage_context(
    method: str, model: str, knowledge: str | Path | None, *, top_k: int, chunk_size: int
) -> int:
    """Tokens `method`'s passages add to every prompt (0: it does not retrieve), where a study
    sizes `max_seq_length`: counted (`passage_room`) when the model's tokenizer and the knowledge
    source can be read, else the recommender's words-based estimate
    (`decide.retrieval.passage_tokens`, ~1.3 tokens per word; the catalogue measures 1.9). The
    one sizing `--write-study` and `--verify` share."""
    from advisor.decide.retrieval import passage_tokens  # lazy: the spec's import stays light

    if not METHODS[method].retrieval:
        return 0
    if knowledge is not None:
        try:
            return passage_room(model, knowledge, top_k=top_k, chunk_size=chunk_size)
        except Exception:  # no local tokenizer (a hub id, an API model) or no readable source
            pass
    return passage_tokens(method, top_k=top_k, chunk_size=chunk_size)

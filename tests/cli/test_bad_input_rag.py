"""Bad input of the retrieval methods (issue 17, item 5): `rag` without knowledge, a knowledge
source that is missing, empty or unreadable, a parameter given to a method that does not take
it, retrieval values out of range. Each row runs the real CLI, through `validate` and `tune`:
exit 2, the field and its YAML line, a fix, no traceback, nothing written (`bad_input.py`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, write

LORA_SEARCH = """\
method: lora
search:
  r: [2, 4]
  alpha_ratio: 2
  target_modules: [attention_qv, all_linear]
  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
"""
RAG = {LORA_SEARCH: "method: rag\nsearch:\n  top_k: [1, 2]\n"}
"""The base study as a rag study (method on line 8), without data.knowledge."""
KNOWLEDGE = {"  eval: eval.jsonl\n": "  eval: eval.jsonl\n  knowledge: kb\n"}
"""data.knowledge on line 7: method moves to line 9, search to 10, its first key to 11."""


def rag_with(search: str = "  top_k: [1, 2]\n", knowledge: str = "kb") -> dict[str, str]:
    return {
        "  eval: eval.jsonl\n": f"  eval: eval.jsonl\n  knowledge: {knowledge}\n",
        LORA_SEARCH: f"method: rag\nsearch:\n{search}",
    }


def folder(name: str, files: dict[str, str] | None = None):
    def prepare(project: Path) -> None:
        (project / name).mkdir()
        for file, content in (files or {}).items():
            (project / name / file).write_text(content)

    return prepare


def fifo(name: str):
    def prepare(project: Path) -> None:
        os.mkfifo(project / name)

    return prepare


def dangling(name: str):
    def prepare(project: Path) -> None:
        (project / name).symlink_to(project / "gone.md")

    return prepare


GOOD_KB = folder("kb", {"facts.md": "The red fox lives in the wood."})

CASES = [
    bad(
        "s.yaml:8",
        "method 'rag'",
        "data.knowledge is not set",
        id="rag-without-knowledge",
        edit=RAG,
    ),
    bad(
        "s.yaml:8",
        "method 'rag_lora'",
        "data.knowledge is not set",
        id="rag-plus-lora-without-knowledge",
        edit={LORA_SEARCH: LORA_SEARCH.replace("method: lora", "method: rag+lora")},
    ),
    bad(
        "s.yaml:7", "data.knowledge", "'kb' does not exist", id="knowledge-missing", edit=rag_with()
    ),
    bad(
        "s.yaml:7",
        "data.knowledge",
        "holds no documents",
        id="knowledge-empty-folder",
        edit=rag_with(),
        prepare=folder("kb"),
    ),
    bad(
        "s.yaml:7",
        "holds no documents",
        "no .txt, .md, .jsonl, .parquet file",
        id="knowledge-folder-of-other-files",
        edit=rag_with(),
        prepare=folder("kb", {"manual.pdf": "%PDF"}),
    ),
    bad(
        "s.yaml:7",
        "kb.md holds no text: it is 0 bytes",
        id="knowledge-empty-file",
        edit=rag_with(knowledge="kb.md"),
        prepare=write("kb.md", ""),
    ),
    bad(
        "s.yaml:7",
        "notes.md holds no text",
        "only white space",
        id="knowledge-blank-file-in-folder",
        edit=rag_with(),
        prepare=folder("kb", {"a.md": "A fact.", "notes.md": "\n \n"}),
    ),
    bad(
        "s.yaml:7",
        "kb.jsonl:2",
        "needs a non-empty 'text' string",
        "fields ['body']",
        id="knowledge-jsonl-without-text",
        edit=rag_with(knowledge="kb.jsonl"),
        prepare=write("kb.jsonl", '{"text": "a fact"}\n{"body": "no text field"}\n'),
    ),
    bad(
        "s.yaml:7",
        "kb.jsonl:1",
        id="knowledge-jsonl-not-json",
        edit=rag_with(knowledge="kb.jsonl"),
        prepare=write("kb.jsonl", "not json at all\n"),
    ),
    bad(
        "s.yaml:7",
        "kb.txt is not UTF-8",
        id="knowledge-not-utf8",
        edit=rag_with(knowledge="kb.txt"),
        prepare=write("kb.txt", b"caf\xe9 cr\xe8me"),
    ),
    bad(
        "s.yaml:7",
        "kb.md",
        "link",
        id="knowledge-dangling-link",
        edit=rag_with(knowledge="kb.md"),
        prepare=dangling("kb.md"),
    ),
    bad(
        "s.yaml:7",
        "kb.md",
        "fifo",
        id="knowledge-fifo",
        edit=rag_with(knowledge="kb.md"),
        prepare=fifo("kb.md"),
    ),
    bad(
        "s.yaml:7",
        "unknown file type '.csv'",
        id="knowledge-unknown-type",
        edit=rag_with(knowledge="kb.csv"),
        prepare=write("kb.csv", "text\na fact\n"),
    ),
    bad(
        "s.yaml:7",
        "outside the data root",
        id="knowledge-outside-root",
        edit=rag_with(knowledge="{outside}/secret.jsonl"),
    ),
    bad(
        "s.yaml:12",
        "search.r",
        "method 'rag' has no 'r' parameter",
        id="rag-given-r",
        edit=rag_with(search="  top_k: [1, 2]\n  r: 4\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:12",
        "search.target_modules",
        "method 'rag' has no 'target_modules' parameter",
        id="rag-given-target-modules",
        edit=rag_with(search="  top_k: [1, 2]\n  target_modules: all_linear\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:12",
        "search.learning_rate",
        "trains nothing",
        id="rag-given-learning-rate",
        edit=rag_with(search="  top_k: [1, 2]\n  learning_rate: 1.0e-3\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:12",
        "search.replay_fraction",
        "trains nothing",
        id="rag-given-replay",
        edit=rag_with(search="  top_k: [1, 2]\n  replay_fraction: [0.0, 0.1]\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:13",
        "search.top_k",
        "method 'lora' has no 'top_k' parameter",
        "rag, rag_lora",
        id="lora-given-top-k",
        edit={"  learning_rate: {low": "  top_k: 3\n  learning_rate: {low"},
    ),
    bad(
        "s.yaml:13",
        "search.chunk_size",
        "method 'lora' has no 'chunk_size' parameter",
        id="lora-given-chunk-size",
        edit={"  learning_rate: {low": "  chunk_size: 64\n  learning_rate: {low"},
    ),
    bad(
        "s.yaml:7",
        "method 'lora' does not retrieve",
        "data.knowledge would be ignored",
        id="lora-given-knowledge",
        edit=KNOWLEDGE,
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:11",
        "search.top_k",
        "greater than or equal to 1",
        id="top-k-zero",
        edit=rag_with(search="  top_k: 0\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:11",
        "search.top_k.low",
        id="top-k-range-from-zero",
        edit=rag_with(search="  top_k: {low: 0, high: 4}\n"),
        prepare=GOOD_KB,
    ),
    bad(
        "s.yaml:12",
        "search.chunk_size",
        "greater than or equal to 16",
        id="chunk-size-below-16",
        edit=rag_with(search="  top_k: 2\n  chunk_size: [8, 64]\n"),
        prepare=GOOD_KB,
    ),
]


@pytest.mark.parametrize("command", ["validate", "tune"])
@pytest.mark.parametrize("case", CASES)
def test_bad_retrieval_input_is_refused(
    case: Bad, command: str, project: Path, tiny_model: Path
) -> None:
    check_refused(
        Bad(case.expect, case.edit, (command, "s.yaml"), case.prepare), project, tiny_model
    )

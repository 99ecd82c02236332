"""Bad input of `advisor recommend --write-study` for the retrieval methods (issue 17, item 4):
a rag or rag_lora recommendation without --knowledge, --knowledge for a method that does not
retrieve, and a --knowledge source that is missing, empty, blank or unreadable. Each row runs
the real CLI (`bad_input.py`): exit 2, --knowledge named with a fix, no traceback, nothing
written (no study file, no folder for it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, write

RECOMMEND = ("recommend", "--model", "smollm2-135m", "--vram", "8", "--evidence", "none")
DATA = ("--train", "train.jsonl", "--eval", "eval.jsonl", "--write-study", "out/x.yaml")
RAG = (*RECOMMEND, "--goal", "knowledge", *DATA)
"""Recommends rag (nothing trained) and asks for its study."""
RAG_LORA = (*RECOMMEND, "--goal", "both", *DATA)
"""Recommends rag_lora (a LoRA that reads the passages) and asks for its study."""
LORA = (*RECOMMEND, "--goal", "behaviour", *DATA)
"""Recommends lora, which does not retrieve."""


def folder(name: str):
    def prepare(project: Path) -> None:
        (project / name).mkdir()

    return prepare


def unreadable(name: str):
    def prepare(project: Path) -> None:
        write(name, "The lamp costs $34.50.")(project)
        os.chmod(project / name, 0)

    return prepare


CASES = [
    bad(
        "--knowledge",
        "the recommendation is rag, which answers from retrieved documents",
        "add --knowledge PATH",
        args=RAG,
        id="rag-without-knowledge",
    ),
    bad(
        "--knowledge",
        "the recommendation is rag_lora",
        "add --knowledge PATH",
        args=RAG_LORA,
        id="rag-lora-without-knowledge",
    ),
    bad(
        "--knowledge",
        "the recommendation (lora) does not retrieve",
        "run without --knowledge",
        args=(*LORA, "--knowledge", "kb.md"),
        prepare=write("kb.md", "The lamp costs $34.50."),
        id="knowledge-for-lora",
    ),
    bad(
        "--knowledge",
        "knowledge source 'kb' does not exist",
        "check the path",
        args=(*RAG, "--knowledge", "kb"),
        id="knowledge-missing",
    ),
    bad(
        "--knowledge",
        "holds no documents",
        args=(*RAG_LORA, "--knowledge", "kb"),
        prepare=folder("kb"),
        id="knowledge-empty-folder",
    ),
    bad(
        "--knowledge",
        "kb.md holds no text",
        args=(*RAG, "--knowledge", "kb.md"),
        prepare=write("kb.md", "  \n\n"),
        id="knowledge-blank-file",
    ),
    bad(
        "--knowledge",
        "facts.jsonl:2",
        "'text'",
        args=(*RAG, "--knowledge", "facts.jsonl"),
        prepare=write("facts.jsonl", '{"text": "The lamp costs $34.50."}\n{"body": "x"}\n'),
        id="knowledge-record-without-text",
    ),
    bad(
        "--knowledge",
        "unknown file type '.pdf'",
        args=(*RAG, "--knowledge", "catalogue.pdf"),
        prepare=write("catalogue.pdf", b"%PDF-1.7\n"),
        id="knowledge-unknown-type",
    ),
    pytest.param(
        Bad(
            ("--knowledge", "kb.md"),
            args=(*RAG, "--knowledge", "kb.md"),
            prepare=unreadable("kb.md"),
        ),
        id="knowledge-unreadable",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file"),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_refused(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)

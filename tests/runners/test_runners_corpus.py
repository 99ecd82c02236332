"""Raw text: every token trained, EOS per document, packing into blocks, truncation counted."""

from __future__ import annotations

from typing import Any

import pytest

from runners.corpus import blocks, document_ids
from runners.data import to_dataset
from runners.layouts import Document
from runners.testing import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tokenizer()


DOCS = [
    Document(1, "The red cat is in the city. " * 6),
    Document(2, "A blue dog."),
    Document(3, "0 1 2"),
]


def test_each_document_ends_with_eos(tokenizer) -> None:
    ids = document_ids(tokenizer, "A blue dog.")
    assert ids[-1] == tokenizer.eos_token_id and ids.count(tokenizer.eos_token_id) == 1
    assert tokenizer.decode(ids) == "A blue dog.<|im_end|>"


def test_packing_cuts_the_concatenated_documents_into_blocks_losing_nothing(tokenizer) -> None:
    stream = [t for doc in DOCS for t in document_ids(tokenizer, doc.text)]
    packed, cut = blocks(tokenizer, DOCS, max_length=16, packing=True)
    assert [t for block in packed for t in block] == stream
    assert all(len(block) == 16 for block in packed[:-1]) and 0 < len(packed[-1]) <= 16
    assert cut.documents == 0 and cut.warning(16) is None


def test_without_packing_long_documents_are_cut_and_counted(tokenizer) -> None:
    sequences, cut = blocks(tokenizer, DOCS, max_length=16, packing=False)
    assert len(sequences) == 3 and len(sequences[0]) == 16
    assert sequences[1] == document_ids(tokenizer, "A blue dog.")
    assert cut.documents == 1 and "1 document(s) cut" in cut.warning(16)


def test_raw_text_trains_on_every_token(tokenizer) -> None:
    dataset, _, sequences = to_dataset(DOCS, tokenizer, max_length=16, packing=True)
    assert dataset["labels"] == dataset["input_ids"] == sequences

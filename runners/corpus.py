"""Raw text (the `text` layout): continued pre-training on every token, and its perplexity.

Each document is tokenised as the model's tokenizer does by default (BOS where the model wants
one, see `chat.bos_text`) and ended with EOS, so the model learns where a document stops and
packed documents stay apart. Labels are the input ids: every token is trained (the collator
pads labels with -100, so padding is not).

Packing (`DataConfig.packing`) is done here, not by trl: the documents are concatenated in
order and cut into blocks of `train.max_seq_length` tokens (the last block may be shorter), as
GPT-style pre-training does; no token is lost and attention crosses document boundaries within
a block, the EOS between them marking the break. trl's default packing ("bfd") instead fits
whole documents into bins and relies on padding-free position ids, which separate documents
only under flash attention and truncate any document longer than a block; its "wrapped"
strategy is this one, but packing here keeps the eval set's blocks (and so the perplexity of
baseline and trial) identical whatever trl's version does. Without packing each document is one
sequence, cut to `max_seq_length` (counted in `Truncation.documents`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from runners.chat import Truncation, bos_text
from runners.layouts import Document


def document_ids(tokenizer: Any, text: str) -> list[int]:
    """The tokens of one document: BOS when the model adds one, the text, then EOS."""
    ids = list(tokenizer(bos_text(tokenizer) + text, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids


def blocks(
    tokenizer: Any, documents: Sequence[Document], *, max_length: int, packing: bool
) -> tuple[list[list[int]], Truncation]:
    """The token sequences trained on (see the module docstring) and what was cut."""
    ids = [document_ids(tokenizer, doc.text) for doc in documents]
    cut = Truncation()
    if packing:
        stream = [token for doc in ids for token in doc]
        return [stream[i : i + max_length] for i in range(0, len(stream), max_length)], cut
    cut.documents = sum(len(doc) > max_length for doc in ids)
    return [doc[:max_length] for doc in ids], cut


def perplexity(model: Any, sequences: Sequence[Sequence[int]], *, batch_size: int) -> float:
    """exp of the mean negative log-likelihood per predicted token over all `sequences`.

    Token-weighted over the whole held-out text: the summed NLL of every predicted token over
    their count, not the mean of per-batch (or per-sequence) mean losses, which would weigh a
    short last block as much as a full one. Each sequence's first token has no context and is
    not predicted.
    """
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, len(sequences), max(1, batch_size)):
            batch = sequences[start : start + batch_size]
            width = max(len(seq) for seq in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, seq in enumerate(batch):
                ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = ids[:, 1:]
            picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            keep = mask[:, 1:].bool()
            total -= float(picked[keep].sum())
            count += int(keep.sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("perplexity needs at least one sequence of two or more tokens")
    return math.exp(total / count)

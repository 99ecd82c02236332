"""Tiny, fully local models and data for tests: no hub, no download, built in well under a second.

Every end-to-end test in the project (runners, tuning, tracking) trains this model, so it mirrors
what matters about the real default model (SmolLM2: a LlamaForCausalLM with a ChatML chat template
and `<|im_end|>` as end of turn) while staying small: a vocabulary of a few hundred tokens (a 49k
vocabulary makes each step ~15x slower), hidden size 64, two layers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""SmolLM2's template without its default system prompt (shorter sequences, same structure)."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>")

_COLOURS = ("red", "green", "blue", "black", "white", "yellow", "purple", "orange")
_ANIMALS = ("cat", "dog", "fox", "owl", "bee", "cow", "hen", "elk")
_CORPUS = (
    "You are a helpful assistant. Answer with JSON only. "
    "system user assistant prompt response question answer the a of to and in is it "
    "Extract the order: customer item quantity city colour animal number "
    "0 1 2 3 4 5 6 7 8 9 10 { } [ ] : , \" ' . ? ! - _ ( ) "
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz " + " ".join(_COLOURS + _ANIMALS)
)


def build_tokenizer(vocab_size: int = 384) -> Any:
    """A byte-level BPE tokenizer trained in-process on a built-in text, with ChatML specials.

    Byte-level means any text round-trips (no unknown tokens), so tests can feed arbitrary data.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_llama(
    path: Path | str,
    *,
    vocab_size: int = 384,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised LlamaForCausalLM and its tokenizer to `path`; return `path`.

    Grouped-query attention and tied embeddings as in SmolLM2, so the same module names
    (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) and code paths are exercised.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def toy_dataset(n: int, *, seed: int = 0) -> list[dict[str, str]]:
    """`n` prompt/response pairs of a small learnable task: name the colour and animal as JSON."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        colour, animal = rng.choice(_COLOURS), rng.choice(_ANIMALS)
        out.append(
            {
                "prompt": f"The {colour} {animal}.",
                "response": json.dumps({"colour": colour, "animal": animal}),
            }
        )
    return out


def write_jsonl(path: Path | str, records: Iterable[dict[str, Any]]) -> Path:
    """Write `records` one JSON object per line; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path

"""Greedy generation for the evaluation, as close to the hardware's bound as a trial can get.

What made it slow, measured on SmolLM2-135M on 2 CPU cores (32 demo eval prompts, <= 48 new
tokens, `bench/generation.py`): every decoding step of a peft model runs each LoRA layer's two
extra small matmuls beside the base weight's, which on CPU costs more than the base matmul itself
at batch size 32; and batches of 8 prompts in file order padded every short prompt to the
longest of its batch and ran 4 times as many decoding loops. So:

- **one merged copy** (`generation_model`): a LoRA-family adapter is merged into a copy of the
  model for generation (`merge_and_unload` on a deep copy), so decoding runs plain linear layers;
  the trained model, its adapter and the forgetting measurement after it are untouched. Merged
  and unmerged compute the same function up to float rounding: the test holds the logits within
  1e-4 and the eval score within `MERGE_SCORE_TOLERANCE`. Quantised bases (QLoRA) are not merged
  (merging into 4-bit weights rounds the delta away), nor are adapters that are not LoRA
  (prompt tuning), nor models whose copy would not fit on the GPU.
- **length-sorted batches** over the whole eval set: prompts of similar length share a batch,
  so little padding is computed, and the answers go back to their rows' order.
- **the KV cache** (`use_cache=True`, explicit: a model trained with gradient checkpointing has
  `config.use_cache=False`, and generating without a cache recomputes the whole prefix per token).
- **stop at the end of the answer**: generation stops at the EOS token *and* at the token that
  ends an assistant turn in the chat template (`<end_of_turn>` for Gemma, `<|im_end|>` for
  ChatML), so a sequence whose answer is done stops costing anything but its padding, and the
  batch ends when its last answer does.

`GenerationStats` counts what was generated (up to and including each row's stop token) and the
seconds it took, for the trial's tokens/s figure.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runners.chat import prompt_text
from runners.data import Messages

MERGE_SCORE_TOLERANCE = 0.05
"""How far (absolute) the eval score of the merged copy may lie from the unmerged model's. Greedy
decoding can only differ where two tokens' logits tie within float rounding; the measured
difference on the demo was 0 (`bench/generation.py`)."""
_TURN_PROBE = "\x01"
"""A stand-in answer used to find the chat template's end-of-turn text (a control character no
template adds itself)."""


@dataclass
class GenerationStats:
    """What one or more `generate` calls produced, for tokens/s."""

    sequences: int = 0
    new_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def stop_token_ids(tokenizer: Any) -> list[int]:
    """EOS and the first token of the chat template's end-of-turn text, deduplicated.

    The end of a turn is read off the template itself: the text it renders after an assistant
    answer (`<|im_end|>\\n` for ChatML, `<end_of_turn>\\n` for Gemma, EOS for advisor's `plain`).
    """
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for token in eos if isinstance(eos, list) else [eos]:
        if token is not None and token not in ids:
            ids.append(int(token))
    with contextlib.suppress(Exception):  # a template that cannot render has no turn end to add
        turn = [{"role": "user", "content": "q"}, {"role": "assistant", "content": _TURN_PROBE}]
        text = tokenizer.apply_chat_template(turn, tokenize=False)
        tail = text[text.rindex(_TURN_PROBE) + 1 :].strip()
        if tail:
            first = tokenizer(tail, add_special_tokens=False)["input_ids"][:1]
            if first and first[0] not in ids and first[0] in _special_ids(tokenizer):
                ids.append(int(first[0]))
    return ids


def _special_ids(tokenizer: Any) -> set[int]:
    """Only a special token may stop generation: a plain word that happens to end a turn in some
    template (a newline) must not cut an answer short."""
    return set(getattr(tokenizer, "all_special_ids", []) or []) | set(
        getattr(tokenizer, "added_tokens_decoder", {}) or {}
    )


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[Messages],
    *,
    max_new_tokens: int,
    batch_size: int,
    stats: GenerationStats | None = None,
) -> list[str]:
    """Greedy completions of chat `prompts`, decoded without the prompt and special tokens,
    in the order of `prompts` (batched by length, see the module docstring)."""
    import torch

    if not prompts:
        return []
    encoded = [
        tokenizer(prompt_text(tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts
    ]
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    stops = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = [""] * len(prompts)
    started = time.perf_counter()
    try:
        size = max(1, batch_size)
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            batch = tokenizer.pad(
                {"input_ids": [encoded[i] for i in rows]}, return_tensors="pt"
            ).to(device)
            with torch.inference_mode():
                generated = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=pad_id,
                    eos_token_id=stops,
                )
            new = generated[:, batch["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new, skip_special_tokens=True)
            for row, text, tokens in zip(rows, texts, new.tolist(), strict=True):
                out[row] = text.strip()
                if stats is not None:
                    stats.new_tokens += _answer_length(tokens, stops)
                    stats.prompt_tokens += len(encoded[row])
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    if stats is not None:
        stats.sequences += len(prompts)
        stats.seconds += time.perf_counter() - started
    return out


def _answer_length(tokens: list[int], stops: list[int]) -> int:
    """Generated tokens of one row up to and including its first stop token (padding after it
    is the batch waiting for its longest answer, not this row's work)."""
    for index, token in enumerate(tokens):
        if token in stops:
            return index + 1
    return len(tokens)


def merges_for_generation(model: Any) -> bool:
    """A peft model whose adapters are all LoRA-family on an unquantised base, whose copy fits."""
    peft = sys.modules.get("peft")
    if peft is None or not isinstance(model, peft.PeftModel):
        return False
    configs = getattr(model, "peft_config", {}) or {}
    if not configs or any(str(c.peft_type) not in _MERGEABLE for c in configs.values()):
        return False
    base = model.get_base_model()
    if getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False):
        return False
    if getattr(getattr(base, "config", None), "quantization_config", None):
        return False
    return _copy_fits(model)


_MERGEABLE = {"LORA", "PeftType.LORA"}
"""DoRA and rsLoRA are LoRA configurations (`use_dora`, `use_rslora`) and merge like it."""


def _copy_fits(model: Any) -> bool:
    """On a GPU the copy must fit in the free memory with room to spare; on the CPU a copy of a
    model that trained there fits by construction (training held more: gradients, optimiser)."""
    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return True
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    free, _ = torch.cuda.mem_get_info(device)
    return free > 1.5 * size


@contextlib.contextmanager
def generation_model(model: Any, *, merge: bool = True) -> Iterator[Any]:
    """The model to generate with: a merged copy of a LoRA model (see the module docstring), or
    the model itself. The copy is freed on exit."""
    if not (merge and merges_for_generation(model)):
        yield model
        return
    merged = copy.deepcopy(model).merge_and_unload()
    merged.eval()
    try:
        yield merged
    finally:
        del merged

"""runners.generation on the tiny random Llama: order, stops, the merged copy, the counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from runners.generation import (  # noqa: E402
    MERGE_SCORE_TOLERANCE,
    GenerationStats,
    _answer_length,
    generate,
    generation_model,
    merges_for_generation,
    stop_token_ids,
)
from runners.metrics import get_metric  # noqa: E402
from runners.testing import toy_dataset  # noqa: E402


@pytest.fixture(scope="module")
def loaded(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    return model, tokenizer


def _prompts(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Prompts of different lengths, so the length sort reorders them."""
    rows = toy_dataset(n, seed=seed)
    return [
        [{"role": "user", "content": row["prompt"] + " word" * (i % 5)}]
        for i, row in enumerate(rows)
    ]


def _lora(model, *, seed: int = 0, **config):
    """A LoRA on every linear layer with non-zero B, so the adapter changes the answers."""
    import copy

    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        copy.deepcopy(model),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0, **config),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return peft_model


def test_answers_come_back_in_the_prompts_order_whatever_the_batching(loaded):
    model, tokenizer = loaded[0], loaded[1]
    model = _lora(model).merge_and_unload()  # the random base answers "" to everything
    prompts = _prompts(9)
    one_by_one = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=1)
    batched = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=4)
    assert batched == one_by_one
    assert len(set(one_by_one)) > 1  # the rows really differ, so a reordering would show


def test_the_kv_cache_is_used_even_when_training_switched_it_off(loaded):
    model, tokenizer = _lora(loaded[0]).merge_and_unload(), loaded[1]
    prompts = _prompts(4)
    expected = generate(model, tokenizer, prompts, max_new_tokens=5, batch_size=4)
    model.config.use_cache = False  # what gradient checkpointing leaves behind
    seen: list[bool] = []
    original = model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs.get("use_cache"))
        return original(*args, **kwargs)

    model.generate = spy
    assert generate(model, tokenizer, prompts, max_new_tokens=5, batch_size=4) == expected
    assert seen == [True]
    assert any(expected)


def test_stops_are_eos_and_the_template_turn_end(loaded):
    _, tokenizer = loaded
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert stop_token_ids(tokenizer) == [im_end]  # ChatML: the turn ends with EOS itself

    gemma_like = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    gemma_like.eos_token = "<|endoftext|>"
    gemma_like.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    eos = gemma_like.convert_tokens_to_ids("<|endoftext|>")
    assert stop_token_ids(gemma_like) == [eos, im_end]


def test_a_plain_text_turn_end_never_stops_generation(loaded):
    _, tokenizer = loaded
    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\nEND\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    assert stop_token_ids(plain) == [plain.eos_token_id]  # "END" is a word, not a stop token


def test_counts_stop_at_each_answers_stop_token():
    assert _answer_length([5, 6, 2, 0, 0], [2]) == 3
    assert _answer_length([5, 6, 7], [2]) == 3
    assert _answer_length([9, 5], [2, 9]) == 1


def test_stats_count_the_generated_tokens(loaded):
    model, tokenizer = loaded
    stats = GenerationStats()
    prompts = _prompts(5)
    generate(model, tokenizer, prompts, max_new_tokens=7, batch_size=2, stats=stats)
    assert stats.sequences == 5
    assert 5 <= stats.new_tokens <= 5 * 7
    assert stats.prompt_tokens > 0
    assert stats.seconds > 0 and stats.tokens_per_second > 0


def test_merged_copy_computes_the_same_function_and_leaves_the_model_alone(loaded):
    model, tokenizer = loaded
    peft_model = _lora(model)
    assert merges_for_generation(peft_model)
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}
    ids = tokenizer("the quick brown fox", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        unmerged_logits = peft_model(input_ids=ids).logits
    with generation_model(peft_model) as merged:
        assert merged is not peft_model
        assert not any("lora_" in name for name, _ in merged.named_parameters())
        with torch.no_grad():
            merged_logits = merged(input_ids=ids).logits
    assert torch.allclose(unmerged_logits, merged_logits, atol=1e-4)
    after = peft_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # adapter and base untouched


def test_merged_answers_score_within_the_stated_tolerance(loaded):
    model, tokenizer = loaded
    peft_model = _lora(model, seed=3)
    prompts = _prompts(12, seed=1)
    unmerged = generate(peft_model, tokenizer, prompts, max_new_tokens=8, batch_size=6)
    assert len(set(unmerged)) > 1
    with generation_model(peft_model) as merged:
        answers = generate(merged, tokenizer, prompts, max_new_tokens=8, batch_size=6)
    metric = get_metric("exact_match")
    # Scored against the unmerged answers: the share of rows whose answer changed.
    agreement = sum(metric.score_one(a, u) for a, u in zip(answers, unmerged, strict=True))
    assert 1 - agreement / len(prompts) <= MERGE_SCORE_TOLERANCE


def test_no_merge_when_switched_off_or_not_lora(loaded):
    from peft import PromptTuningConfig, get_peft_model

    model, _ = loaded
    assert not merges_for_generation(model)  # a plain model: nothing to merge
    with generation_model(model) as same:
        assert same is model
    peft_model = _lora(model)
    with generation_model(peft_model, merge=False) as same:
        assert same is peft_model
    import copy

    prompt_tuned = get_peft_model(
        copy.deepcopy(model), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2)
    )
    assert not merges_for_generation(prompt_tuned)


def test_dora_merges_too(loaded):
    model, _ = loaded
    assert merges_for_generation(_lora(model, use_dora=True))

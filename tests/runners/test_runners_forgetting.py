"""Forgetting against the base model: exactly zero when nothing changed, positive after training.

The tiny random Llama reads the shipped probes like any model would; its general-probe score is
0 before and after (it knows nothing), so the instruction probe is checked for consistency and
the text probe (KL, perplexity) for the size of the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runners import forgetting
from runners.config import EvalConfig, MethodConfig, ModelRef, TrialResult
from runners.forgetting import (
    TOP_K,
    answer_found,
    base_view,
    load_probes,
    measure_forgetting,
    measure_untouched,
    probes_for,
)
from runners.methods import get_method
from runners.models import load_model_and_tokenizer
from runners.trial import run_trial

SMALL = EvalConfig(forgetting_text_tokens=600, forgetting_prompts=4, forgetting_max_new_tokens=4)
LORA = MethodConfig("lora", r=4, lora_alpha=8, target_modules=("q_proj", "v_proj"))


def _load(tiny_model: Path):
    return load_model_and_tokenizer(ModelRef(str(tiny_model)), device="cpu", dtype=torch.float32)


def test_shipped_probes_are_whole_and_written_for_the_project() -> None:
    paragraphs = [p for p in forgetting.TEXT_PROBE.read_text().split("\n\n") if p.strip()]
    assert len(paragraphs) == 40 and all(len(p.split()) >= 40 for p in paragraphs)
    rows = [json.loads(line) for line in forgetting.INSTRUCTION_PROBE.read_text().splitlines()]
    assert len(rows) == 30
    assert all(row["prompt"].strip() and row["answers"] for row in rows)
    assert len({row["prompt"] for row in rows}) == 30


def test_probe_sizes_follow_the_config(tiny_model: Path) -> None:
    _, tokenizer = _load(tiny_model)
    probes = load_probes(tokenizer, SMALL)
    # 600 tokens in chunks of 256: two whole chunks, the remainder is dropped
    assert [len(c) for c in probes.chunks] == [256, 256] and probes.text_tokens == 512
    assert len(probes.prompts) == len(probes.answers) == 4
    assert probes.prompts[0] == [{"role": "user", "content": probes.prompts[0][0]["content"]}]
    short = load_probes(tokenizer, SMALL, max_positions=100)
    assert [len(c) for c in short.chunks] == [100] * 6


def test_answer_found_needs_the_answer_as_a_whole_word() -> None:
    assert answer_found("The capital of France is Paris.", ["Paris"]) == 1.0
    assert answer_found("  paris ", ["Paris"]) == 1.0
    assert answer_found("It is 12.", ["12", "twelve"]) == 1.0
    assert answer_found("Twelve", ["12", "twelve"]) == 1.0
    assert answer_found("120", ["12"]) == 0.0
    assert answer_found("colder", ["cold"]) == 0.0
    assert answer_found("1,000 grams", ["1000", "1,000"]) == 1.0
    assert answer_found("", ["Paris"]) == 0.0


def test_untouched_base_forgets_exactly_nothing(tiny_model: Path) -> None:
    """Full fine-tuning path (base view before), LoRA path (adapter off) and the baseline path."""
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)

    base = base_view(model, tokenizer, probes, SMALL)
    full = measure_forgetting(model, tokenizer, probes, SMALL, base=base)
    assert full.kl == 0.0 and full.ppl_delta == 0.0 and full.general_score_delta == 0.0
    assert full.base_ppl > 1.0 and full.text_tokens == 512 and full.prompts == 4
    assert full.replies == base.replies and len(base.replies) == 4

    untouched = measure_untouched(base, probes)
    assert (untouched.kl, untouched.ppl_delta) == (0.0, 0.0)
    assert untouched.base_ppl == full.base_ppl

    torch.manual_seed(0)
    lora = get_method("lora").prepare(model, LORA)
    assert forgetting.is_peft(lora)
    fresh = measure_forgetting(lora, tokenizer, probes, SMALL)  # B is zero-initialised
    assert fresh.kl == 0.0 and fresh.ppl_delta == 0.0 and fresh.general_score_delta == 0.0
    assert fresh.base_ppl == full.base_ppl

    # The same measurement sees a non-zero adapter: the zero above is not vacuous.
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    moved = measure_forgetting(lora, tokenizer, probes, SMALL)
    assert moved.kl > 0 and moved.ppl_delta != 0 and moved.base_ppl == full.base_ppl


def _perturbed(model, *, std: float):
    """A LoRA whose B matrices are drawn (seeded) instead of zero: a model that moved."""
    torch.manual_seed(0)
    lora = get_method("lora").prepare(model, LORA)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return lora


def _full_kl(lora, probes) -> float:
    """Mean per-token KL(base || tuned) over the whole vocabulary, for comparison."""
    total, tokens = 0.0, 0
    for batch in forgetting._batches(probes):
        tuned = forgetting._logprobs(lora, batch).double()
        with lora.disable_adapter():
            base = forgetting._logprobs(lora, batch).double()
        total += float((base.exp() * (base - tuned)).sum())
        tokens += base.shape[0] * base.shape[1]
    return total / tokens


def test_the_top_k_kl_is_a_lower_bound_close_to_the_full_kl(tiny_model: Path) -> None:
    model, tokenizer = _load(tiny_model)
    probes = probes_for(model, tokenizer, SMALL)
    lora = _perturbed(model, std=0.3)
    full = _full_kl(lora, probes)
    vocabulary = lora.get_output_embeddings().weight.shape[0]
    bounds = []
    for k in (16, 64, TOP_K, vocabulary):
        view = base_view(lora, tokenizer, probes, SMALL, k=k)
        assert view.k == k
        bounds.append(measure_forgetting(lora, tokenizer, probes, SMALL, base=view).kl)
    # Coarser buckets see less (data-processing inequality); never more than the full KL.
    assert 0 < bounds[0] <= bounds[1] <= bounds[2] <= full * (1 + 1e-9)
    # The tiny random model leaves 28% of its probability beyond its top 256 of 384 tokens
    # (SmolLM2 6%), yet the bound keeps most of the KL; with no rest left it is the full KL.
    assert bounds[2] >= 0.8 * full, (bounds, full)
    assert bounds[3] == pytest.approx(full, rel=1e-6)


def test_a_model_without_base_cannot_be_measured(tiny_model: Path) -> None:
    model, tokenizer = _load(tiny_model)
    with pytest.raises(ValueError, match="base_view"):
        measure_forgetting(model, tokenizer, probes_for(model, tokenizer, SMALL), SMALL)


def _check_measured(result: TrialResult) -> None:
    assert result.state == "complete", result.error
    assert result.forgetting_kl is not None and result.forgetting_kl > 0
    assert result.base_ppl is not None and result.tuned_ppl is not None
    assert result.forgetting_ppl_delta == pytest.approx(result.tuned_ppl - result.base_ppl)
    assert result.forgetting_ppl_delta != 0
    assert result.general_score is not None and 0 <= result.general_score <= 1
    assert result.base_general_score is not None
    assert result.general_score_delta == result.general_score - result.base_general_score
    assert result.forgetting_seconds > 0
    assert TrialResult.from_dict(json.loads(result.to_json())) == result


@pytest.mark.parametrize(
    ("method", "lr"),
    [
        ({"target_modules": ("q_proj", "k_proj", "v_proj", "o_proj")}, 5e-2),
        ({"name": "full", "r": None, "lora_alpha": None, "target_modules": None}, 1e-2),
    ],
    ids=["lora", "full"],
)
def test_forgetting_is_positive_after_training(make_config, method: dict, lr: float) -> None:
    config = make_config(
        method=method,
        train={"learning_rate": lr, "max_steps": 6, "eval_steps": 6},
        evaluation={"forgetting_text_tokens": 600, "forgetting_prompts": 4},
    )
    result = run_trial(config)
    _check_measured(result)
    assert result.train_examples == 32 and result.replay_examples == 0


def test_baseline_trial_reports_the_base_and_zero_forgetting(make_config) -> None:
    config = make_config(baseline=True, evaluation={"forgetting_prompts": 4})
    result = run_trial(config)
    assert result.state == "complete", result.error
    assert (result.forgetting_kl, result.forgetting_ppl_delta) == (0.0, 0.0)
    assert result.base_ppl == result.tuned_ppl and result.base_ppl > 1
    assert result.general_score == result.base_general_score and result.general_score_delta == 0


def test_forgetting_can_be_switched_off(make_config) -> None:
    result = run_trial(make_config(train={"max_steps": 2}, evaluation={"forgetting": False}))
    assert result.state == "complete", result.error
    assert result.forgetting_kl is None and result.general_score is None
    assert result.forgetting_seconds == 0.0

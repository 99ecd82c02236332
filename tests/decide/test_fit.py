"""A fit keeps headroom (advisor.decide.fit): the figures, the GPU count and the levers."""

from __future__ import annotations

import pytest

from advisor.decide.estimate import CUDA_OVERHEAD_GB, estimate_memory
from advisor.decide.fit import (
    HEADROOM_FACTOR,
    check_fit,
    fits,
    gpus_needed,
    micro_batch,
    usable_gb,
)
from advisor.decide.shapes import PRESETS
from advisor.decide.traits import Traits


def test_usable_memory_is_the_cards_over_the_factor_less_further_runtimes() -> None:
    assert usable_gb(16, 1) == pytest.approx(16 / HEADROOM_FACTOR)
    assert usable_gb(80, 8) == pytest.approx(640 / HEADROOM_FACTOR - 7 * CUDA_OVERHEAD_GB)


def test_fit_at_97_percent_of_the_card_is_refused() -> None:
    traits = Traits(vram_gb=16)
    assert not fits(15.63, traits)  # issue 16: a 7B LoRA "fitting" at 97.7% of 16 GB
    assert fits(16 / HEADROOM_FACTOR - 0.01, traits)


def test_qlora_65b_on_one_48gb_still_fits() -> None:
    # The QLoRA paper's headline result must survive the headroom.
    est = estimate_memory(PRESETS["llama-65b"], "qlora", gradient_checkpointing=True)
    assert fits(est.total_gb, Traits(model="llama-65b", vram_gb=48))


@pytest.mark.parametrize(
    ("total", "vram", "gpus"), [(10.0, 16, 1), (15.0, 16, 2), (130.0, 80, 2), (140.0, 80, 3)]
)
def test_gpus_needed_holds_the_estimate_with_headroom(total: float, vram: float, gpus: int) -> None:
    need = gpus_needed(total, vram)
    assert need == gpus
    assert total <= usable_gb(vram, need)
    assert need == 1 or total > usable_gb(vram, need - 1)


def test_levers_each_change_one_thing_and_lower_the_estimate() -> None:
    shape, traits = PRESETS["llama-3-8b"], Traits(vram_gb=24)
    est = estimate_memory(shape, "lora", batch_size=2, seq_len=512)
    fit = check_fit(shape, est, traits, r=16, target_modules="all_linear")
    assert not fit.fits and fit.near_edge
    names = [lever.lever for lever in fit.levers]
    assert names == ["gradient_checkpointing", "seq_len", "batch_size", "qlora"]
    assert all(lever.memory_gb < est.total_gb for lever in fit.levers)
    assert "does not fit" in fit.summary and "24 GB" in fit.summary


def test_micro_batch_is_the_largest_that_fits_within_the_effective_batch() -> None:
    shape = PRESETS["llama-2-7b"]
    small, _ = micro_batch(shape, "qlora", Traits(vram_gb=16), most=16, seq_len=512)
    large, _ = micro_batch(shape, "qlora", Traits(vram_gb=80), most=16, seq_len=512)
    many, _ = micro_batch(shape, "qlora", Traits(vram_gb=80, gpus=8), most=16, seq_len=512)
    assert 1 <= small < large == 8 and many == 2

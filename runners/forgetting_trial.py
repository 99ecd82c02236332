"""A trial's forgetting measurement around its training (`runners.forgetting`), with the base's
side from the probe cache (`runners.probe_cache`) when the study's baseline measured it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from runners import forgetting, probe_cache
from runners.config import TrialConfig, TrialResult
from runners.generation import generation_model
from runners.models import resolve_model_dir
from runners.train import Placement


class ForgettingMeasure:
    """The forgetting measurement of one trial (`runners.forgetting`), around its training.

    The base's side comes from the probe cache (`runners.probe_cache`) when the study's
    baseline or an earlier trial measured the same base on the same probes; the trial then
    computes only its own side. Otherwise it measures the base itself and caches it: a peft
    model after training, its adapter switched off; any other model (full fine-tuning) before
    training, as nothing is left of its base after it; an untouched model is its own base.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: TrialConfig,
        result: TrialResult,
        *,
        placement: Placement,
        load_kwargs: dict[str, Any],
    ):
        started = time.perf_counter()
        self.model, self.tokenizer, self.cfg, self.result = model, tokenizer, config.eval, result
        self.probes = forgetting.probes_for(model, tokenizer, config.eval)
        self.key = probe_cache.cache_key(
            model_dir=resolve_model_dir(config.model),
            tokenizer=tokenizer,
            probes=self.probes,
            cfg=config.eval,
            device=placement.device,
            dtype=placement.dtype,
            load_kwargs=load_kwargs,
        )
        self.base = probe_cache.load(self.key, self.probes)
        self.source: Literal["cache", "computed"] = "computed" if self.base is None else "cache"
        self.record = Path(config.output_dir) / probe_cache.RECORD_FILE
        result.forgetting_seconds += time.perf_counter() - started

    def before_training(self) -> None:
        if self.base is not None or forgetting.is_peft(self.model):
            return
        started = time.perf_counter()
        self._measure_base()
        self.result.forgetting_seconds += time.perf_counter() - started

    def after_training(self, *, untouched: bool) -> None:
        started = time.perf_counter()
        # Not cached and not taken before training: a peft model's (adapter off), an untouched one
        base = self.base if self.base is not None else self._measure_base()
        if untouched:
            measured = forgetting.measure_untouched(base, self.probes)
        else:  # the trained side from a merged copy, like the eval's answers (runners.generation)
            with generation_model(self.model, merge=self.cfg.merge_for_generation) as tuned:
                args = (tuned, self.tokenizer, self.probes, self.cfg)
                measured = forgetting.measure_forgetting(*args, base=base)
        record = probe_cache.write_record(
            self.record, self.key, self.source, self.probes, base, measured, untouched=untouched
        )
        result = self.result
        result.probes_path, result.probes_base_source = str(record), self.source
        result.forgetting_kl = measured.kl
        result.base_ppl, result.tuned_ppl = measured.base_ppl, measured.tuned_ppl
        result.forgetting_ppl_delta = measured.ppl_delta
        result.general_score = measured.general_score
        result.base_general_score = measured.base_general_score
        result.general_score_delta = measured.general_score_delta
        result.forgetting_seconds += time.perf_counter() - started

    def _measure_base(self) -> forgetting.ProbeView:
        self.base = forgetting.base_view(self.model, self.tokenizer, self.probes, self.cfg)
        probe_cache.store(self.key, self.base)
        return self.base

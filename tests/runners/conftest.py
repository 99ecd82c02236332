"""Shared fixtures for the runner tests: one tiny Llama and toy data per session."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from runners.config import DataConfig, EvalConfig, MethodConfig, ModelRef, TrainConfig, TrialConfig
from runners.testing import build_tiny_llama, toy_dataset, write_jsonl

# OpenMP threads that spin while waiting make torch ~10x slower when other processes share the
# 2 cores (measured: 33 s vs 2.3 s per SmolLM2 LoRA step). Effective only if torch is not yet
# imported; the worker (`python -m runners`) sets the same default itself.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Trials cache the base's view of the forgetting probes (`runners.probe_cache`) under
    $ADVISOR_CACHE_DIR: a test's own, so that no test reads or fills the user's cache. No test
    here loads a converted GGUF model from it (the SmolLM2 tests set their own)."""
    cache = tmp_path / "advisor-cache"
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    train = write_jsonl(root / "train.jsonl", toy_dataset(32, seed=0))
    evals = write_jsonl(root / "eval.jsonl", toy_dataset(8, seed=1))
    return train, evals


@pytest.fixture
def make_config(tiny_model: Path, toy_files: tuple[Path, Path], tmp_path: Path):
    """A factory of small, fast trial configs; keyword overrides per section."""

    def make(
        *,
        method: dict | None = None,
        train: dict | None = None,
        evaluation: dict | None = None,
        data: dict | None = None,
        **top,
    ) -> TrialConfig:
        base = TrialConfig(
            study="test",
            trial_number=0,
            seed=7,
            model=ModelRef(str(tiny_model)),
            data=DataConfig(str(toy_files[0]), str(toy_files[1])),
            method=MethodConfig("lora", r=4, lora_alpha=8, target_modules=("q_proj", "v_proj")),
            train=TrainConfig(max_steps=4, learning_rate=1e-3, eval_steps=2, max_seq_length=64),
            eval=EvalConfig(metric="json_match", max_new_tokens=12, samples_to_log=3),
            output_dir=str(tmp_path / "out"),
        )
        return dataclasses.replace(
            base,
            method=dataclasses.replace(base.method, **(method or {})),
            train=dataclasses.replace(base.train, **(train or {})),
            eval=dataclasses.replace(base.eval, **(evaluation or {})),
            data=dataclasses.replace(base.data, **(data or {})),
            **top,
        )

    return make

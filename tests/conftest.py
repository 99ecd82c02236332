"""Shared fixtures. Every test that tracks writes to a temporary store, never to ./mlruns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Before torch is imported: OpenMP threads that spin while waiting make a step up to 15x slower
# when another process shares the 2 cores (measured: 33 s vs 2.3 s per SmolLM2 step).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def stores(tmp_path: Path):
    """Embedded SQLite stores under a temporary `mlruns/`."""
    from advisor.stores.locations import Stores

    return Stores.resolve(root=tmp_path)


@pytest.fixture(autouse=True)
def _no_repo_mlruns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point MLflow's fluent API at nowhere useful: our code must pass explicit URIs."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////nonexistent-dir/refuse.db")


@pytest.fixture(autouse=True)
def _no_evidence_from_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """`advisor recommend` learns from ./mlruns by default: after `make demo` the checkout's
    own mlruns/ would move every recommendation a test asserts. Tests of the learning loop
    delete this and give their store explicitly (or chdir to it)."""
    monkeypatch.setenv("ADVISOR_EVIDENCE", "none")


@pytest.fixture(autouse=True)
def _private_advisor_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Trials cache the base model's view of the forgetting probes under $ADVISOR_CACHE_DIR
    (`runners.probe_cache`): each test gets its own, so a test never reads a view another run
    left (a baseline that "computed" it would read it instead) nor fills the user's. `models/`
    is the real model cache, linked: the GGUF -> safetensors conversion (~30 s) stays shared."""
    from runners.models import cache_root

    models = cache_root()
    models.mkdir(parents=True, exist_ok=True)
    cache = tmp_path_factory.mktemp("advisor-cache")  # beside tmp_path: tests list tmp_path
    (cache / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(cache))
    return cache


# -- PostgreSQL: a real server for the many-workers tests (see tests/postgres.py) -------------
@pytest.fixture(scope="session")
def postgres_server():
    """Admin URL of a PostgreSQL server: CI's (ADVISOR_TEST_POSTGRES_URL) or a private one."""
    import shutil
    import tempfile

    import postgres

    url = os.environ.get(postgres.ENV_URL)
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="advisor-pg-"))  # not under pytest's 0700 basetemp
    try:
        with postgres.private_server(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str):
    """A fresh database for one test, dropped afterwards."""
    import postgres

    with postgres.fresh_database(postgres_server) as url:
        yield url


# -- tiny recorded studies, shared by the tune/report/export/rerun tests ----------------------
from support import crashing_python, write_tiny_study  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with its own tokenizer, saved once per session."""
    from runners.testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def recorded_study(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    """A finished tiny study: trial 0 complete (learns), 1 and 2 pruned (lr too small to learn),
    trial 3 failed (its runner crashes). Stores under `root/mlruns`. Treat as read-only: copy
    `root` first to change anything."""
    from advisor.tuning.entry import tune

    root = tmp_path_factory.mktemp("recorded")
    study_file = write_tiny_study(
        root,
        tiny_model,
        "recorded",
        search={"r": 4, "target_modules": "all_linear", "learning_rate": [1e-2, 1e-7, 2e-7, 3e-2]},
        train={"max_steps": 6, "eval_steps": 2},
        optuna={"sampler": "grid", "pruner": "median", "n_trials": 4, "n_startup_trials": 1},
    )
    summary = tune(study_file, root=root, python=crashing_python(root, trial=3))
    return {"root": root, "study_file": study_file, "name": "recorded", "summary": summary}


@pytest.fixture(scope="session")
def recorded_pareto_study(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    """A finished two-objective tiny study (json_match vs wall_seconds), three trials."""
    from advisor.tuning.entry import tune

    root = tmp_path_factory.mktemp("pareto")
    study_file = write_tiny_study(
        root, tiny_model, "pareto", objectives=["metric", "wall_seconds"], optuna={"n_trials": 3}
    )
    summary = tune(study_file, root=root)
    return {"root": root, "study_file": study_file, "name": "pareto", "summary": summary}

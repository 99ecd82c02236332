"""Every shipped study file loads, validates and points at data that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.study import load_study, search_parameters

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml"))


def test_there_are_studies():
    assert {p.name for p in STUDIES} >= {"demo.yaml", "lora_cost_pareto.yaml"}


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_study_file_is_valid(path: Path):
    spec = load_study(path)
    assert Path(spec.data.train).is_file() and Path(spec.data.eval).exists()
    assert search_parameters(spec), f"{path.name} searches nothing"
    assert spec.train.eval_steps <= spec.train.max_steps


def test_demo_fits_its_eight_minutes_and_still_searches():
    """The demo's budget (issue 18, studies/demo.yaml's comment): four 14-step trials, one eval
    loss each (so no pruner), the first from a known-good point, the rest sampled."""
    spec = load_study(next(p for p in STUDIES if p.name == "demo.yaml"))
    assert spec.objectives == ["metric"] and spec.metric == "json_match"
    assert spec.optuna.n_trials == 4 and spec.train.max_steps <= 14
    assert spec.optuna.warm_start and spec.optuna.n_trials > len(spec.optuna.start_points())
    assert len(search_parameters(spec)) >= 3

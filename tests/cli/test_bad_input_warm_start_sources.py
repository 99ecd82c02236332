"""Warm-start sources and samplers (issue 16, item 6): a start source without a point, an unknown
source, and a warm start with the grid sampler (which tries every point, so an enqueued one
would be trained twice) are refused by the real CLI with exit 2, the field and its YAML line, a
fix, no traceback and nothing written (`bad_input.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused

OPTUNA = "optuna: {sampler: random, pruner: none, n_trials: 2}"
FIXED_LR = {"learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}": "learning_rate: 1.0e-3"}


def optuna(fields: str) -> dict[str, str]:
    """An edit of the base study's optuna section, `fields` added to its flow mapping."""
    return {OPTUNA: f"optuna: {{sampler: random, pruner: none, n_trials: 2, {fields}}}"}


CASES = [
    bad(
        "s.yaml:16: optuna",
        "optuna.start_source is set but there is no optuna.start",
        "remove optuna.start_source, or give optuna.start",
        edit=optuna("warm_start: true, start_source: recommended"),
        id="source-without-a-point",
    ),
    bad(
        "optuna.start_source",
        "recommended",
        edit=optuna("warm_start: true, start: {r: 2}, start_source: a_blog_post"),
        id="unknown-source",
    ),
    bad(
        "s.yaml:16: optuna.warm_start",
        "the grid sampler needs no starting point",
        "would be trained twice",
        "use sampler: tpe",
        edit={
            OPTUNA: "optuna: {sampler: grid, pruner: none, n_trials: 2, warm_start: true}",
            **FIXED_LR,
        },
        id="warm-start-with-the-grid-sampler",
    ),
    bad(
        "optuna.warm_start",
        "the grid sampler needs no starting point",
        edit={
            OPTUNA: "optuna: {sampler: grid, pruner: none, n_trials: 2, warm_start: true}",
            **FIXED_LR,
        },
        args=("validate", "s.yaml"),
        id="validate-names-the-grid-warm-start",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_warm_start_source_or_sampler_that_cannot_work_is_refused(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)

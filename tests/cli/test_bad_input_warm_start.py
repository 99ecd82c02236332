"""Warm-start points (issue 16, item 6): a study file's own starting point, `optuna.start`, that
lies outside the search space or can never be tried is refused by the real CLI with exit 2, the
field and its YAML line, a fix, no traceback and nothing written (`bad_input.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused

OPTUNA = "optuna: {sampler: random, pruner: none, n_trials: 2}"


def warm(start: str, sampler: str = "random") -> dict[str, str]:
    """An edit of the base study: warm start on, starting at `start` (YAML flow mapping)."""
    return {
        OPTUNA: f"optuna: {{sampler: {sampler}, pruner: none, n_trials: 2, warm_start: true, "
        f"start: {start}}}"
    }


CASES = [
    bad(
        "optuna.start[1].r",
        "point 2: 8 is outside search.r (choices [2, 4])",
        "give optuna.start.r a value in search.r",
        edit=warm("[{r: 2}, {r: 8}]"),
        id="start-list-second-point-not-a-choice",
    ),
    bad(
        "s.yaml:16: optuna.start.r",
        "8 is outside search.r (choices [2, 4])",
        "give optuna.start.r a value in search.r",
        edit=warm("{r: 8}"),
        id="start-not-a-choice",
    ),
    bad(
        "s.yaml:16: optuna.start.learning_rate",
        "0.1 is outside search.learning_rate (0.001 .. 0.01)",
        edit=warm("{learning_rate: 0.1}"),
        id="start-above-the-range",
    ),
    bad(
        "optuna.start.learning_rate",
        "'fast' is outside search.learning_rate",
        edit=warm("{learning_rate: fast}"),
        id="start-not-a-number",
    ),
    bad(
        "optuna.start.target_modules",
        "'mlp' is outside search.target_modules (choices ['attention_qv', 'all_linear'])",
        edit=warm("{target_modules: mlp}"),
        id="start-target-modules-not-a-choice",
    ),
    bad(
        "optuna.start.alpha_ratio",
        "is a fixed parameter",
        "remove it, or use a searched one: r, learning_rate, target_modules",
        edit=warm("{alpha_ratio: 2}"),
        id="start-a-fixed-parameter",
    ),
    bad(
        "optuna.start.rank",
        "is not a search parameter",
        edit=warm("{rank: 4}"),
        id="start-unknown-parameter",
    ),
    bad(
        "s.yaml:16: optuna",
        "optuna.start is set but optuna.warm_start is false",
        "set optuna.warm_start: true, or remove optuna.start",
        edit={OPTUNA: "optuna: {sampler: random, pruner: none, n_trials: 2, start: {r: 2}}"},
        id="start-without-warm-start",
    ),
    bad(
        "optuna.start",
        "the grid sampler needs no starting point",
        "use sampler: tpe",
        edit={
            **warm("{r: 2}", sampler="grid"),
            "learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}": "learning_rate: 1.0e-3",
        },
        id="start-with-the-grid-sampler",
    ),
    bad(
        "optuna.start.r",
        "outside search.r",
        edit=warm("{r: 8}"),
        args=("validate", "s.yaml"),
        id="validate-names-the-start-too",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_warm_start_point_outside_the_space_is_refused(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)

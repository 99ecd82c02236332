"""search.use_rslora (issue 16, item 1) in the bad-input table: a switch that is not a boolean,
an empty search, a method whose layers never read it, and a starting point outside it are each
refused by the real CLI with exit 2, the field and its YAML line, a fix, no traceback and
nothing written (`bad_input.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused

ALPHA = "  alpha_ratio: 2\n"
LORA_KEYS = "  r: [2, 4]\n  alpha_ratio: 2\n  target_modules: [attention_qv, all_linear]\n"


def rslora(value: str) -> dict[str, str]:
    """An edit of the base study: `search.use_rslora: value`, on line 12."""
    return {ALPHA: f"{ALPHA}  use_rslora: {value}\n"}


def method(name: str, value: str = "true") -> dict[str, str]:
    """The base study on method `name` with use_rslora, without the LoRA keys it would also
    refuse (one problem, on line 10)."""
    return {"method: lora": f"method: {name}", LORA_KEYS: f"  use_rslora: {value}\n"}


def start(point: str, value: str = "[false, true]") -> dict[str, str]:
    """use_rslora searched (or fixed), and a warm start at `point`."""
    optuna = "optuna: {sampler: random, pruner: none, n_trials: 2}"
    return {
        **rslora(value),
        optuna: "optuna: {sampler: random, pruner: none, n_trials: 2, warm_start: true, "
        f"start: {point}}}",
    }


CASES = [
    bad(
        "s.yaml:10: search.use_rslora",
        "method 'full' has no 'use_rslora' parameter",
        "remove search.use_rslora, or pick a method that uses it (lora, dora, qlora, rag_lora)",
        edit=method("full"),
        id="full-fine-tuning-has-no-rslora",
    ),
    bad(
        "s.yaml:10: search.use_rslora",
        "method 'prompt_tuning' has no 'use_rslora' parameter",
        edit=method("prompt_tuning", "[false, true]"),
        id="prompt-tuning-has-no-rslora",
    ),
    bad(
        "s.yaml:10: search.use_rslora",
        "method 'ia3' has no 'use_rslora' parameter",
        edit=method("ia3"),
        id="ia3-has-no-rslora",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "method 'adalora' has no 'use_rslora' parameter",
        "pick a method that uses it (lora, dora, qlora, rag_lora)",
        edit={"method: lora": "method: adalora", **rslora("true")},
        id="adalora-layers-never-read-it",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "Input should be a valid boolean (got 1)",
        "write true or false",
        edit=rslora("1"),
        id="a-number-is-not-a-switch",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "Input should be a valid boolean (got 'yes')",
        edit=rslora("'yes'"),
        id="a-string-is-not-a-switch",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "Input should be a valid boolean",
        "write true or false",
        edit=rslora("{low: 0, high: 1}"),
        id="a-switch-has-no-range",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "use_rslora is an empty list: there is no scaling to train with",
        "write true or false, or [false, true] to search it",
        edit=rslora("[]"),
        id="an-empty-search",
    ),
    bad(
        "s.yaml:12: search.use_rslora[1]",
        "Input should be a valid boolean (got 'on')",
        edit=rslora("[false, 'on']"),
        id="a-choice-that-is-not-a-switch",
    ),
    bad(
        "optuna.start.use_rslora",
        "is a fixed parameter",
        "remove it, or use a searched one",
        edit=start("{use_rslora: true}", value="true"),
        id="start-on-a-fixed-switch",
    ),
    bad(
        "optuna.start.use_rslora",
        "'on' is outside search.use_rslora (choices [False, True])",
        edit=start("{use_rslora: 'on'}"),
        id="start-not-a-switch",
    ),
    bad(
        "optuna.start.use_rslora",
        "1 is outside search.use_rslora",
        edit=start("{use_rslora: 1}"),
        id="start-a-number-for-a-switch",
    ),
    bad(
        "optuna.start.r",
        "True is outside search.r (choices [1, 2])",
        edit={"  r: [2, 4]\n": "  r: [1, 2]\n", **start("{r: true}")},
        id="start-a-switch-for-a-number",
    ),
    bad(
        "s.yaml:12: search.use_rslora",
        "method 'full' has no 'use_rslora' parameter",
        edit={"method: lora": "method: full", **rslora("true")},
        args=("validate", "s.yaml"),
        id="validate-names-it-too",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_use_rslora_is_refused(case: Bad, project: Path, tiny_model: Path) -> None:
    check_refused(case, project, tiny_model)

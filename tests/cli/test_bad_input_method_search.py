"""Bad input of a study that searches the method (issue 17, items 2 and 5): a parameter no
listed method takes, one method only, an unknown method, the grid sampler, a warm-start point
with a parameter its method does not take, one learning rate across families, a top-level
method that disagrees. Each row runs the real CLI, through `validate` and `tune`: exit 2, the
field and its YAML line, a fix, no traceback, nothing written (`bad_input.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused, write

LORA_SEARCH = """\
method: lora
search:
  r: [2, 4]
  alpha_ratio: 2
  target_modules: [attention_qv, all_linear]
  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}
"""
"""The base study's method (line 8) and search (lines 9-13), which the rows replace."""


def searching(*lines: str, method: str = "") -> dict[str, str]:
    """The base study with `search:` on line 8 (line 9 with a top-level `method`), its keys
    from the next line on."""
    top = f"method: {method}\n" if method else ""
    return {LORA_SEARCH: top + "search:\n" + "".join(f"  {line}\n" for line in lines)}


LORA_FULL = "method: [lora, full]"
FULL_RATE = "per_method: {full: {learning_rate: {low: 1.0e-5, high: 1.0e-4, log: true}}}"
WARM = "optuna: {sampler: random, pruner: none, n_trials: 2"

CASES = [
    bad(
        "s.yaml:11",
        "search.top_k",
        "none of the searched methods (lora, full) takes 'top_k'",
        "add to search.method a method that uses it (rag, rag_lora)",
        id="parameter-of-no-listed-method",
        edit=searching(LORA_FULL, "r: [2, 4]", "top_k: [1, 2]"),
    ),
    bad(
        "s.yaml:9",
        "search.method",
        "lists 1 method (lora): there is no choice to search",
        "write `method: lora` at the top level",
        id="one-method-only",
        edit=searching("method: [lora]", "r: [2, 4]"),
    ),
    bad(
        "s.yaml:9",
        "search.method",
        "unknown method 'nope' in search.method",
        "rag+lora",
        id="unknown-method",
        edit=searching("method: [lora, nope]", "r: [2, 4]"),
    ),
    bad(
        "s.yaml:9",
        "search.method",
        "lists lora twice",
        id="method-listed-twice",
        edit=searching("method: [lora, lora]", "r: [2, 4]"),
    ),
    bad(
        "s.yaml:13",
        "optuna.sampler",
        "the grid sampler cannot search the method",
        "use sampler: tpe or random",
        id="grid-sampler",
        edit={
            **searching("method: [lora, dora]", "r: [2, 4]"),
            "sampler: random": "sampler: grid",
        },
    ),
    bad(
        "s.yaml:14",
        "optuna.start.r",
        "'r' is not a parameter of method 'full'",
        "remove optuna.start.r, or use full's parameters: full.learning_rate",
        id="warm-start-parameter-of-another-method",
        edit={
            **searching(LORA_FULL, "r: [2, 4]", FULL_RATE),
            WARM: WARM + ", warm_start: true, start: {method: full, r: 2}",
        },
    ),
    bad(
        "s.yaml:14",
        "optuna.start",
        "the starting point names no method",
        "set optuna.start.method to one of: lora, full",
        id="warm-start-without-method",
        edit={
            **searching(LORA_FULL, "r: [2, 4]", FULL_RATE),
            WARM: WARM + ", warm_start: true, start: {r: 2}",
        },
    ),
    bad(
        "s.yaml:11",
        "search.learning_rate",
        "one learning_rate for lora (default 0.0002), full (default 2e-05)",
        "search.per_method: {full: {learning_rate:",
        id="one-learning-rate-across-families",
        edit=searching(LORA_FULL, "r: [2, 4]", "learning_rate: {low: 1.0e-4, high: 1.0e-3}"),
    ),
    bad(
        "s.yaml:8",
        "method 'qlora' is not one of search.method (lora, full)",
        "remove the top-level method",
        id="top-level-method-disagrees",
        edit=searching(LORA_FULL, "r: [2, 4]", method="qlora"),
    ),
    bad(
        "s.yaml:11",
        "search.per_method.dora",
        "'dora' is not one of search.method (lora, full)",
        id="per-method-of-an-unlisted-method",
        edit=searching(LORA_FULL, "r: [2, 4]", "per_method: {dora: {learning_rate: 1.0e-4}}"),
    ),
    bad(
        "s.yaml:10",
        "search.per_method",
        "search.method is not set",
        id="per-method-without-method-search",
        edit=searching("r: [2, 4]", "per_method: {lora: {learning_rate: 1.0e-4}}"),
    ),
    bad(
        "s.yaml:9",
        "search.method",
        "method 'rag' answers from retrieved passages, but data.knowledge is not set",
        "or remove rag from search.method",
        id="retrieval-method-without-knowledge",
        edit=searching("method: [rag, lora]", "top_k: [1, 2]"),
        prepare=write("kb/facts.md", "The red fox lives in the wood."),
    ),
]


@pytest.mark.parametrize("command", ["validate", "tune"])
@pytest.mark.parametrize("case", CASES)
def test_bad_method_search_is_refused(
    case: Bad, command: str, project: Path, tiny_model: Path
) -> None:
    check_refused(
        Bad(case.expect, case.edit, (command, "s.yaml"), case.prepare), project, tiny_model
    )

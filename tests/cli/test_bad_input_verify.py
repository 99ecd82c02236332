"""`advisor recommend --verify` refusals (issue 17, item 3): --verify without its data, a model
the tuner cannot load here, a budget that is no positive number or pays for no comparison, a
knowledge source that is not there. Each row runs the real CLI: exit 2, the option named, a
fix, no traceback and nothing written - no study file, no `verify/`, no `mlruns/`
(`bad_input.py`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from bad_input import Bad, bad, check_refused

VERIFY = ("recommend", "--verify")
DATA = ("--train", "train.jsonl", "--eval", "eval.jsonl")
TINY = ("--model", "{model}")
"""`{model}`: the tiny Llama's folder, filled in by the test."""


def _knowledge(project: Path) -> None:
    (project / "kb").mkdir()
    (project / "kb" / "facts.md").write_text("The red fox and the blue owl are animals.")


CASES = [
    bad(
        "--train, --eval",
        "--verify measures the candidates on your data and needs --train and --eval",
        "add --train FILE --eval FILE",
        id="verify-without-train-or-eval",
        args=(*VERIFY, *TINY),
    ),
    bad(
        "--eval",
        "needs --eval",
        id="verify-without-eval",
        args=(*VERIFY, *TINY, "--train", "train.jsonl"),
    ),
    bad(
        "--eval",
        "missing.jsonl",
        id="verify-eval-file-missing",
        args=(*VERIFY, *TINY, "--train", "train.jsonl", "--eval", "missing.jsonl"),
    ),
    bad(
        "--model",
        "'llama-3-8b' is not a local model",
        "never downloads weights",
        "--model DIR",
        id="verify-model-not-local",
        args=(*VERIFY, *DATA, "--model", "llama-3-8b"),
    ),
    bad(
        "--study-model",
        "nowhere/model' is not a local model",
        "--study-model DIR",
        id="verify-study-model-not-local",
        args=(*VERIFY, *DATA, *TINY, "--study-model", "nowhere/model"),
    ),
    bad(
        "--budget-minutes",
        "must be a positive number of minutes, got 0.0",
        "e.g. --budget-minutes 30",
        id="verify-budget-zero",
        args=(*VERIFY, *DATA, *TINY, "--budget-minutes", "0"),
    ),
    bad(
        "--budget-minutes",
        "got -5.0",
        id="verify-budget-negative",
        args=(*VERIFY, *DATA, *TINY, "--budget-minutes", "-5"),
    ),
    bad(
        "--budget-minutes",
        "got nan",
        id="verify-budget-nan",
        args=(*VERIFY, *DATA, *TINY, "--budget-minutes", "nan"),
    ),
    bad(
        "--budget-minutes 0.05 does not pay for one trial of lora, qlora, dora",
        "and the baseline",
        "give --budget-minutes 1 or more",
        id="verify-budget-pays-for-no-comparison",
        args=(*VERIFY, *DATA, *TINY, "--knowledge", "kb", "--budget-minutes", "0.05"),
        prepare=_knowledge,
    ),
    bad(
        "--knowledge",
        "kb: no such file or folder",
        "a folder of them",
        id="verify-knowledge-missing",
        args=(*VERIFY, *DATA, *TINY, "--knowledge", "kb"),
    ),
    bad(
        "--verify",
        "the comparison study would not validate: --knowledge: the knowledge folder",
        "holds no documents",
        "point --knowledge at a file",
        id="verify-knowledge-folder-empty",
        args=(*VERIFY, *DATA, *TINY, "--knowledge", "kb", "--goal", "knowledge"),
        prepare=lambda project: (project / "kb").mkdir(),
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_verify_refuses_bad_input(case: Bad, project: Path, tiny_model: Path) -> None:
    args = tuple(arg.replace("{model}", str(tiny_model)) for arg in case.args)
    check_refused(dataclasses.replace(case, args=args), project, tiny_model)

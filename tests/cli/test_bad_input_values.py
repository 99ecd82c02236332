"""Bounded parsing and finite numbers (issue 14, items 4 and 5): hostile YAML and JSON, values
that validated but crashed `tune` after it had written `mlruns/`, files that are not what their
name says, and the `recommend`/`validate` refusals of the same inputs. Each row is refused by the
real CLI with exit 2, the field or file (and its YAML line), a fix, no traceback and nothing
written (`bad_input.py` holds what every row asserts)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bad_input import GOOD_RECORD, Bad, bad, check_refused, write
from typer.testing import CliRunner

from advisor.cli import app

LAUGHS = "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
"""Eight levels of nine aliases each: 9**8 (43 million) copies of `a` once expanded."""

DEEP = "[" * 100_000 + "]" * 100_000
"""JSON nested 100k levels: Python's json module recurses once per level."""

LONG = "x" * 200_000
"""A value longer than any message should quote."""


WRITE_STUDY = ("recommend", "--model", "smollm2-135m", "--write-study", "out/x.yaml")
"""`recommend` writing a study into a folder that does not exist yet (it must stay so)."""


def laughs_into(field: str) -> str:
    """The base study's head with a billion laughs whose last alias lands on `field`."""
    return "a: &a [x, x, x, x, x, x, x, x, x]\n" + LAUGHS + f"{field}: *i\n"


def symlink_loop(project: Path) -> None:
    (project / "loop.jsonl").symlink_to("loop.jsonl")


def fifo(project: Path) -> None:
    os.mkfifo(project / "pipe.jsonl")


def model_config(content: str) -> object:
    """A model folder `m/` whose config.json holds `content` (the rest of a model is not read
    before the config is)."""
    return write("m/config.json", content)


STUDY_EDIT_TUNE = [
    # --- item 5: numbers that validated, then crashed `tune` after writing mlruns/ ---------------
    bad(
        "s.yaml:2: seed:",
        "less than or equal to 4294967295",
        "use a value <= 4294967295",
        edit={"seed: 5": "seed: 18446744073709551616"},
        id="seed-past-2-to-the-64",
    ),
    bad(
        "s.yaml:2: seed:",
        "greater than or equal to 0",
        edit={"seed: 5": "seed: -1"},
        id="seed-negative",
    ),
    bad(
        "s.yaml:13: search.learning_rate",
        "finite",
        edit={"{low: 1.0e-3,": "{low: .nan,"},
        id="learning-rate-low-nan",
    ),
    bad(
        "s.yaml:13: search.learning_rate",
        "finite",
        edit={"high: 1.0e-2,": "high: .inf,"},
        id="learning-rate-high-inf",
    ),
    bad(
        "s.yaml:13: search.learning_rate",
        "> 0",
        edit={"{low: 1.0e-3, high: 1.0e-2, log: true}": "{low: 0.0, high: 1.0e-2}"},
        id="learning-rate-low-zero",
    ),
    bad(
        "s.yaml:13: search.learning_rate",
        "> 0",
        edit={"{low: 1.0e-3, high: 1.0e-2, log: true}": "-0.5"},
        id="learning-rate-fixed-negative",
    ),
    bad(
        "s.yaml:16: trial.max_memory_gb:",
        "finite",
        edit={"optuna:": "trial: {max_memory_gb: .inf}\noptuna:"},
        id="trial-max-memory-inf",
    ),
    bad(
        "s.yaml:16: trial.timeout_s:",
        "greater than 0",
        edit={"optuna:": "trial: {timeout_s: 0}\noptuna:"},
        id="trial-timeout-zero",
    ),
    bad(
        "s.yaml:16: cost.price_per_hour:",
        "finite",
        edit={"optuna:": "cost: {price_per_hour: .inf}\noptuna:"},
        id="cost-price-inf",
    ),
    bad(
        "s.yaml:16: cost.price_per_hour:",
        "greater than or equal to 0",
        edit={"optuna:": "cost: {price_per_hour: -2}\noptuna:"},
        id="cost-price-negative",
    ),
    bad(
        "s.yaml:14: train.max_steps:",
        "finite number",
        edit={"{max_steps: 4": "{max_steps: .inf"},
        id="max-steps-inf",
    ),
    bad(
        "s.yaml:16: optuna.timeout_s:",
        "finite",
        edit={"n_trials: 2}": "n_trials: 2, timeout_s: .nan}"},
        id="optuna-timeout-nan",
    ),
    bad(
        "s.yaml:14: train.warmup_ratio:",
        "finite number",
        edit={"eval_steps: 2}": "eval_steps: 2, warmup_ratio: .nan}"},
        id="train-warmup-ratio-nan",
    ),
    # --- item 4: YAML within bounds ----------------------------------------------------------
    bad(
        "s.yaml:2:",
        "the key 'seed' is given twice",
        "first at line 1",
        "write each key once",
        edit={"name: s\n": "seed: 3\n"},
        id="yaml-duplicate-key",
    ),
    bad(
        "s.yaml:",
        "expands to more than 100,000 values",
        "write the values out",
        prepare=write("s.yaml", laughs_into("seed")),
        id="yaml-billion-laughs-on-a-scalar",
    ),
    bad(
        "s.yaml:1:",
        "contains it",
        "anchor (&name) a finished value",
        prepare=write("s.yaml", "name: &a [s, *a]\n"),
        id="yaml-recursive-alias",
    ),
    bad(
        "s.yaml",
        "more than 1,048,576 bytes",
        "keep data in data files",
        prepare=write("s.yaml", "name: s\n# " + "x" * 1_100_000 + "\n"),
        id="yaml-oversized-document",
    ),
    bad(
        "s.yaml:1: name:",
        "lowercase letters",
        edit={"name: s": f"name: {LONG}"},
        id="long-value-quoted-short",
    ),
    # --- item 4: JSON nobody vetted ----------------------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:2:",
        "nested 100001 levels deep",
        prepare=write("train.jsonl", GOOD_RECORD + f'{{"prompt": {DEEP}, "response": "r"}}\n'),
        id="data-row-nested-100k",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:1:",
        "1e400 is out of range",
        prepare=write("train.jsonl", '{"prompt": "p", "response": "r", "w": 1e400}\n'),
        id="data-row-1e400",
    ),
    bad(
        "model.source",
        "config.json",
        "JSON object",
        edit={"'{model}'": "m"},
        prepare=model_config("[1, 2, 3]"),
        id="model-config-is-a-list",
    ),
    bad(
        "model.source",
        "config.json",
        "1e400",
        edit={"'{model}'": "m"},
        prepare=model_config('{"hidden_size": 1e400}'),
        id="model-config-1e400",
    ),
    bad(
        "model.source",
        "config.json",
        "nested",
        edit={"'{model}'": "m"},
        prepare=model_config('{"a": ' + DEEP + "}"),
        id="model-config-nested-100k",
    ),
    # --- item 3: files that are not what their name says ------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "is a symbolic link loop",
        "point the link at a file",
        edit={"train: train.jsonl": "train: loop.jsonl"},
        prepare=symlink_loop,
        id="data-file-symlink-loop",
    ),
    bad(
        "s.yaml:5: data.train:",
        "fifo",
        "regular file",
        edit={"train: train.jsonl": "train: pipe.jsonl"},
        prepare=fifo,
        id="data-file-fifo",
    ),
]
"""Study and data rows, each run through `tune` (what crashed) and `validate` (what must catch
everything `tune` would reject)."""

VALIDATE_ONLY = [
    bad(
        "s.yaml:12: search.target_modules[0]:",
        "did you mean 'q_proj'",
        edit={"[attention_qv, all_linear]": "[[q_proj, qq_proj]]"},
        args=("validate", "s.yaml"),
        id="validate-checks-the-model-by-default",
    ),
    bad(
        "personal data in train.jsonl row 3 (email)",
        "data.allow_pii: true",
        args=("validate", "s.yaml", "--no-check-model"),
        prepare=write(
            "train.jsonl",
            GOOD_RECORD * 2 + '{"prompt": "mail jane.doe@example.com", "response": "r"}\n',
        ),
        id="validate-runs-the-personal-data-gate",
    ),
]

COMMANDS = [
    bad(
        "--vram",
        "finite",
        args=("recommend", "--model", "smollm2-135m", "--vram", "inf", "--json"),
        id="recommend-vram-inf-json",
    ),
    bad(
        "--vram",
        "finite",
        args=("recommend", "--model", "smollm2-135m", "--vram", "nan"),
        id="recommend-vram-nan",
    ),
    bad(
        "--budget-usd",
        args=("recommend", "--model", "smollm2-135m", "--budget-usd", "-1"),
        id="recommend-budget-negative",
    ),
    bad(
        "--seq-len",
        args=("estimate", "--model", "smollm2-135m", "--method", "lora", "--seq-len", "0"),
        id="estimate-seq-len-zero",
    ),
    bad(
        "--model",
        "m/config.json",
        "a JSON list, not an object",
        args=("estimate", "--model", "m", "--method", "lora"),
        prepare=model_config("[1, 2, 3]"),
        id="estimate-model-config-is-a-list",
    ),
    bad(
        "--model",
        "config.json",
        "nested",
        args=("recommend", "--model", "m/config.json"),
        prepare=model_config('{"a": ' + DEEP + "}"),
        id="recommend-model-config-nested-100k",
    ),
    bad(
        "--train",
        "data file 'missing.jsonl' does not exist",
        args=(*WRITE_STUDY, "--train", "missing.jsonl", "--eval", "eval.jsonl"),
        id="recommend-write-study-train-missing",
    ),
    bad(
        "--prompt-field",
        "question",
        args=(
            *WRITE_STUDY,
            "--train",
            "train.jsonl",
            "--eval",
            "eval.jsonl",
            "--prompt-field",
            "question",
        ),
        id="recommend-write-study-wrong-field",
    ),
]


def _as_validate(case: object) -> object:
    """The `tune` row run as `validate s.yaml` (same refusal, same line)."""
    (row,) = case.values  # type: ignore[attr-defined]
    as_validate = Bad(row.expect, row.edit, ("validate", "s.yaml"), row.prepare)
    return pytest.param(as_validate, id=f"validate-{case.id}", marks=case.marks)  # type: ignore[attr-defined]


CASES = [*STUDY_EDIT_TUNE, *map(_as_validate, STUDY_EDIT_TUNE), *VALIDATE_ONLY, *COMMANDS]


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_or_non_finite_input_is_refused_with_exit_2_and_nothing_written(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)


def test_a_refusal_quotes_a_long_value_only_in_part(project: Path) -> None:
    """Messages are bounded: a 200 KB value is cut to a readable prefix, not echoed whole."""
    (project / "s.yaml").write_text(f"name: {LONG}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "s.yaml", "--no-check-model"])
    assert result.exit_code == 2
    assert "xxxx" in result.output and len(result.output) < 5_000


def test_validate_says_the_model_and_data_checks_ran(project: Path, tiny_model: Path) -> None:
    from bad_input import STUDY

    (project / "s.yaml").write_text(STUDY.replace("{model}", str(tiny_model)), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "s.yaml"])
    assert result.exit_code == 0, result.output
    assert "model modules: " in result.output and "not checked" not in result.output
    assert "data scan (s): 12 rows of train.jsonl, eval.jsonl: no personal data" in result.output


def test_the_table_covers_the_issue_cases() -> None:
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES) >= 60
    for kind in ("seed", "learning-rate", "max-memory", "price", "duplicate", "laughs",
                 "nested-100k", "1e400", "is-a-list", "symlink-loop", "fifo", "vram-inf",
                 "write-study", "validate-checks-the-model", "personal-data-gate"):  # fmt: skip
        assert any(kind in i for i in ids), kind

"""Bad input is refused before anything runs or is written: the study file, data, model and
stores (the machinery and what each row must hold: `bad_input.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input import (
    CORRUPT_GGUF,
    GOOD_RECORD,
    SECRET,
    STUDY,
    Bad,
    bad,
    check_refused,
    other_space_study,
    symlink_outside,
    write,
)
from typer.testing import CliRunner

from advisor.cli import app

CASES = [
    # --- the study file: YAML, unknown keys, types ---------------------------------------
    bad(
        "s.yaml:11: YAML syntax error",
        "flow sequence started at line 10",
        edit={"  r: [2, 4]": "  r: [2, 4"},
        id="yaml-syntax",
    ),
    bad(
        "s.yaml:1:",
        "must be a mapping",
        "studies/demo.yaml",
        prepare=write("s.yaml", "- a\n"),
        id="yaml-not-a-mapping",
    ),
    bad(
        "s.yaml:1:",
        "not UTF-8",
        "iconv",
        prepare=write("s.yaml", b"name: caf\xe9\n"),
        id="study-not-utf8",
    ),
    bad(
        "s.yaml:2: sed:",
        "did you mean 'seed'",
        edit={"seed: 5": "sed: 5"},
        id="unknown-top-level-key",
    ),
    bad(
        "s.yaml:14: train.max_step:",
        "did you mean 'max_steps'",
        edit={"{max_steps: 4": "{max_step: 4"},
        id="unknown-nested-key",
    ),
    bad(
        "s.yaml:14: train.max_steps:",
        "write a whole number",
        edit={"{max_steps: 4": "{max_steps: many"},
        id="wrong-type-int",
    ),
    bad(
        "s.yaml:3: model.trust_remote_code:",
        "write true or false",
        edit={"'{model}'}": "'{model}', trust_remote_code: maybe}"},
        id="wrong-type-bool",
    ),
    bad(
        "s.yaml:15: eval:",
        "write a mapping",
        edit={"eval: {max_new_tokens: 6, batch_size: 4, samples_to_log: 2}": "eval: [6, 4]"},
        id="wrong-type-section",
    ),
    bad(
        "s.yaml:1: name:",
        "lowercase letters",
        edit={"name: s": "name: My Study"},
        id="bad-study-name",
    ),
    # --- the search space and the method --------------------------------------------------
    bad(
        "s.yaml:10: search.r:",
        "list at least one value",
        edit={"r: [2, 4]": "r: []"},
        id="empty-search-list",
    ),
    bad("s.yaml:10: search.r:", "use a value >= 1", edit={"r: [2, 4]": "r: 0"}, id="r-zero"),
    bad(
        "s.yaml:10: search.r[1]:",
        "use a value >= 1",
        edit={"r: [2, 4]": "r: [2, -4]"},
        id="r-negative-choice",
    ),
    bad(
        "s.yaml:10: search.r:",
        "low <= high",
        "swap low and high",
        edit={"r: [2, 4]": "r: {low: 8, high: 2}"},
        id="r-range-reversed",
    ),
    bad(
        "s.yaml:11: search.alpha_ratio:",
        "use a value > 0",
        edit={"alpha_ratio: 2": "alpha_ratio: 0"},
        id="alpha-ratio-zero",
    ),
    bad(
        "s.yaml:11: search.lora_alpha:",
        "use a value > 0",
        edit={"alpha_ratio: 2": "lora_alpha: -16"},
        id="lora-alpha-negative",
    ),
    bad(
        "s.yaml:8: method:",
        "unknown method 'lorra'",
        "use one of",
        edit={"method: lora": "method: lorra"},
        id="unknown-method",
    ),
    bad(
        "s.yaml:7: metric:",
        "use one of",
        edit={"metric: json_match": "metric: bleu"},
        id="unknown-metric",
    ),
    bad(
        "s.yaml:12: search.target_modules:",
        "'attn' is not a target-module preset",
        edit={"[attention_qv, all_linear]": "[attention_qv, attn]"},
        id="unknown-target-preset",
    ),
    bad(
        "s.yaml:12: search.target_modules:",
        "target_modules is empty",
        "name a preset",
        edit={"[attention_qv, all_linear]": "[]"},
        id="empty-target-modules",
    ),
    bad(
        "s.yaml:12: search.target_modules[0]:",
        "did you mean 'q_proj'",
        "down_proj",
        edit={"[attention_qv, all_linear]": "[[q_proj, qq_proj]]"},
        id="unknown-target-module-for-model",
    ),
    bad(
        "s.yaml:14: train:",
        "exceeds max_steps",
        "set train.eval_steps <= 4",
        edit={"eval_steps: 2}": "eval_steps: 8}"},
        id="eval-steps-past-max-steps",
    ),
    # --- data files -------------------------------------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "nope.jsonl' does not exist",
        "create it",
        edit={"train: train.jsonl": "train: nope.jsonl"},
        id="missing-data-file",
    ),
    bad(
        "s.yaml:5: data.train:",
        "is a folder, not a saved dataset",
        "name a data file (.jsonl, .json, .csv, .parquet) inside it",
        edit={"train: train.jsonl": "train: folder.jsonl"},
        prepare=lambda project: (project / "folder.jsonl").mkdir(),
        id="data-file-is-a-folder",
    ),
    bad(
        "s.yaml:5: data.train:",
        "must end in .jsonl",
        "JSON Lines",
        edit={"train: train.jsonl": "train: train.txt"},
        id="data-file-suffix",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl holds no records",
        "add examples",
        prepare=write("train.jsonl", ""),
        id="empty-data-file",
    ),
    bad(
        "s.yaml:6: data.eval:",
        "eval.jsonl:2: not UTF-8",
        "byte 0xe9",
        "iconv",
        prepare=write("eval.jsonl", GOOD_RECORD.encode() + b'{"prompt": "caf\xe9"}\n'),
        id="data-not-utf8",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:3: not valid JSON",
        "one JSON object per line",
        prepare=write("train.jsonl", GOOD_RECORD * 2 + "{broken\n"),
        id="data-invalid-json-line",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:3: no data layout matches the row",
        "fields found: prompt (a string); layouts read:",
        "data.prompt_field, data.response_field",
        prepare=write("train.jsonl", GOOD_RECORD * 2 + '{"prompt": "p"}\n' + GOOD_RECORD),
        id="data-row-missing-response",
    ),
    bad(
        "data:",
        "personal data in train.jsonl row 3 (email)",
        "data.allow_pii: true",
        prepare=write(
            "train.jsonl",
            GOOD_RECORD * 2 + '{"prompt": "mail jane.doe@example.com", "response": "r"}\n',
        ),
        id="personal-data-in-training-data",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.jsonl:1: no data layout matches the row",
        "prompt_response (question, response)",
        "name the prompt and response fields (data.prompt_field, data.response_field)",
        edit={"  eval: eval.jsonl": "  eval: eval.jsonl\n  prompt_field: question"},
        id="data-wrong-column-name",
    ),
    bad(
        "s.yaml:5: data.train:",
        "train.csv:3: the row has no cell for ['response']",
        edit={"train: train.jsonl": "train: train.csv"},
        prepare=write("train.csv", "prompt,response\np,r\nonly-a-prompt\n"),
        id="data-csv-short-row",
    ),
    # --- paths that leave their roots -------------------------------------------------------
    bad(
        "s.yaml:5: data.train:",
        "outside the data root",
        "set data.root",
        edit={"train: train.jsonl": "train: ../outside/secret.jsonl"},
        id="data-path-escapes-root",
    ),
    bad(
        "s.yaml:5: data.train:",
        "secret.jsonl, outside the data root",
        edit={"train: train.jsonl": "train: link.jsonl"},
        prepare=symlink_outside,
        id="data-symlink-escapes-root",
    ),
    bad(
        "s.yaml:5: data.train:",
        "outside the data root",
        edit={"train: train.jsonl": "train: '{outside}/secret.jsonl'"},
        id="data-absolute-path-outside-root",
    ),
    bad(
        "s.yaml:5: data.root:",
        "is not a folder",
        "fix data.root",
        edit={"  train: train.jsonl": "  root: nowhere\n  train: train.jsonl"},
        id="data-root-missing",
    ),
    bad(
        "s.yaml:3: model.gguf_file:",
        "is an absolute path",
        "name inside model.source",
        edit={"'{model}'}": "'{model}', gguf_file: /etc/m.gguf}"},
        id="gguf-file-absolute",
    ),
    bad(
        "s.yaml:3: model.gguf_file:",
        "leaves model.source through '..'",
        edit={"'{model}'}": "'{model}', gguf_file: ../../m.gguf}"},
        id="gguf-file-dotdot",
    ),
    bad(
        "s.yaml:17: tracking.experiment:",
        "outside tracking.artifact_root",
        edit={"n_trials: 2}\n": "n_trials: 2}\ntracking: {experiment: ../../elsewhere}\n"},
        id="experiment-escapes-artifact-root",
    ),
    # --- the model --------------------------------------------------------------------------
    bad(
        "s.yaml:3: model.source:",
        "neither a preset nor an existing local path",
        edit={"'{model}'": "nowhere"},
        id="model-missing",
    ),
    bad(
        "s.yaml:3: model.source:",
        "not a readable GGUF file",
        "start with the bytes 'GGUF'",
        edit={"'{model}'": "x.gguf"},
        prepare=write("x.gguf", b"\x00garbage, not a model" * 40),
        id="gguf-garbage",
    ),
    bad(
        "s.yaml:3: model.source:",
        "truncated or corrupt GGUF header",
        "intact GGUF",
        edit={"'{model}'": "x.gguf"},
        prepare=write("x.gguf", CORRUPT_GGUF),
        id="gguf-corrupt-header",
    ),
    bad(
        "model.source",
        "cannot read the model config",
        "intact Hugging Face",
        edit={"'{model}'": "models"},
        prepare=write("models/config.json", "{not json"),
        id="model-config-corrupt",
    ),
    bad(
        "--model",
        "cannot read model shape",
        "truncated or corrupt GGUF header",
        args=("estimate", "--model", "x.gguf", "--method", "lora"),
        prepare=write("x.gguf", CORRUPT_GGUF),
        id="estimate-corrupt-gguf",
    ),
    # --- stores -----------------------------------------------------------------------------
    bad(
        "search",
        "already exists in the storage with another search space",
        "new name",
        prepare=other_space_study,
        id="duplicate-study-name-other-space",
    ),
    bad(
        "storage",
        "cannot open the Optuna storage",
        "postgresql://u:***@127.0.0.1:1/x",
        edit={"n_trials: 2}\n": f"n_trials: 2}}\nstorage: postgresql://u:{SECRET}@127.0.0.1:1/x\n"},
        id="unreachable-postgres-storage",
    ),
    bad(
        "tracking.uri",
        "127.0.0.1:1",
        edit={
            "n_trials: 2}\n": f"n_trials: 2}}\ntracking: {{uri: 'http://u:{SECRET}@127.0.0.1:1'}}\n"
        },
        id="unreachable-tracking-server",
    ),
    # --- command-line arguments -------------------------------------------------------------
    bad(
        "--n-trials",
        "greater than or equal to 0",
        "--help",
        args=("tune", "s.yaml", "--n-trials", "-1"),
        id="cli-negative-n-trials",
    ),
    bad(
        "No such option: --bogus",
        "--help",
        args=("tune", "s.yaml", "--bogus"),
        id="cli-unknown-option",
    ),
    bad("Missing argument", "--help", args=("tune",), id="cli-missing-argument"),
    bad(
        "study file 'nope.yaml' does not exist",
        "studies/demo.yaml",
        args=("tune", "nope.yaml"),
        id="cli-missing-study-file",
    ),
    bad(
        "'data' is a folder, not a study file",
        args=("tune", "data"),
        prepare=lambda project: (project / "data").mkdir(),
        id="cli-folder-as-study-file",
    ),
    bad(
        "STUDY",
        "no study named 'nosuch'",
        "advisor tune",
        args=("report", "nosuch"),
        id="cli-report-unknown-study",
    ),
    bad(
        "STUDY",
        "no study named 'nosuch'",
        "advisor tune",
        args=("export", "nosuch", "out"),
        id="cli-export-unknown-study",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_with_exit_2_a_located_fix_and_nothing_written(
    case: Bad, project: Path, tiny_model: Path
) -> None:
    check_refused(case, project, tiny_model)


def test_the_base_study_is_valid(project: Path, tiny_model: Path) -> None:
    """The cases' failures come from their edits: the unedited study validates."""
    (project / "s.yaml").write_text(STUDY.replace("{model}", str(tiny_model)), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "s.yaml", "--check-model"])
    assert result.exit_code == 0, result.output


def test_the_table_covers_what_the_issue_lists() -> None:
    ids = {case.id for case in CASES}
    assert len(ids) == len(CASES) >= 30
    for kind in ("yaml", "unknown", "wrong-type", "empty", "r-", "alpha", "method", "target",
                 "missing-data", "column", "utf8", "duplicate", "cli-", "unreachable",
                 "gguf", "escapes"):  # fmt: skip
        assert any(kind in i for i in ids), kind

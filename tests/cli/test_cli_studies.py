"""`advisor validate` and `advisor schema` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from advisor.cli import app

DEMO = Path(__file__).resolve().parents[2] / "studies" / "demo.yaml"
runner = CliRunner()


def test_validate_demo_prints_a_summary():
    result = runner.invoke(app, ["validate", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "lora" in result.output and "4 trials" in result.output
    assert "target_modules" in result.output


def test_validate_json_summary():
    result = runner.invoke(app, ["validate", str(DEMO), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["name"] == "demo" and summary["space_size"] is None
    assert set(summary["searched"]) == {"r", "alpha_ratio", "target_modules", "learning_rate"}


def test_validate_broken_file_exits_2_and_lists_every_error(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nmodel: {source: smollm2-135m}\ndata: {train: x.jsonl, eval: y.jsonl}\n"
        "metric: bleu\noptuna: {sampler: annealing}\n"
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    for needle in ("bad.yaml:3: data.train", "data.eval", "bad.yaml:4: metric", "optuna.sampler"):
        assert needle in output, output
    assert "4 problems" in output


def test_schema_prints_json_and_writes_a_file(tmp_path: Path):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert "search" in json.loads(result.output)["properties"]
    out = tmp_path / "schema.json"
    assert runner.invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["title"] == "StudySpec"


def test_check_model_reports_bad_module_names_with_lines(tmp_path: Path, monkeypatch):
    import advisor.study.loading

    names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    monkeypatch.setattr(advisor.study.loading, "linear_module_names", lambda ref: list(names))
    study = tmp_path / "study.yaml"
    data = DEMO.parent / "data"
    study.write_text(
        "name: t\nmodel: {source: smollm2-135m}\n"
        f"data: {{root: {data}, train: {data / 'demo_train.jsonl'}, "
        f"eval: {data / 'demo_eval.jsonl'}}}\n"
        "search:\n"
        "  target_modules:\n"
        "    - attention_qv\n"  # line 6
        "    - [qproj, v_proj]\n"  # line 7
    )
    ok = runner.invoke(app, ["validate", str(DEMO), "--check-model", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["model_modules"] == names
    bad = runner.invoke(app, ["validate", str(study), "--check-model"])
    assert bad.exit_code == 2
    output = " ".join(bad.output.split())
    assert "study.yaml:7: search.target_modules[1]" in output, output
    assert "did you mean 'q_proj'" in output and "down_proj" in output
    assert runner.invoke(app, ["validate", str(study)]).exit_code == 2  # checked by default
    assert runner.invoke(app, ["validate", str(study), "--no-check-model"]).exit_code == 0


def test_validate_runs_the_data_gate_tune_runs_and_says_so(tmp_path: Path) -> None:
    data = DEMO.parent / "data"
    study = tmp_path / "study.yaml"
    study.write_text(
        f"name: t\nmodel: {{source: smollm2-135m}}\ndata: {{root: {data}, "
        f"train: {data / 'demo_train.jsonl'}, eval: {data / 'demo_eval.jsonl'}}}\n"
    )
    result = runner.invoke(app, ["validate", str(study), "--no-check-model", "--json"])
    assert result.exit_code == 0, result.output
    (check,) = json.loads(result.output)["data_checks"]
    assert check["study"] == "t" and check["rows"] > 0 and check["personal_data"] is None
    shown = runner.invoke(app, ["validate", str(study), "--no-check-model"])
    assert "data scan (t):" in shown.output and "no personal data" in shown.output
    assert "model modules: not checked (--no-check-model)" in shown.output

    pii = tmp_path / "pii.jsonl"
    pii.write_text('{"prompt": "mail jane.doe@example.com", "response": "ok"}\n' * 3)
    study.write_text(
        "name: t\nmodel: {source: smollm2-135m}\ndata: {train: pii.jsonl, eval: pii.jsonl}\n"
    )
    refused = runner.invoke(app, ["validate", str(study), "--no-check-model"])
    assert refused.exit_code == 2
    assert "personal data in pii.jsonl rows 1, 2, 3 (email)" in refused.output
    assert "data.allow_pii" in refused.output
    study.write_text(
        study.read_text().replace("eval: pii.jsonl}", "eval: pii.jsonl, allow_pii: true}")
    )
    allowed = runner.invoke(app, ["validate", str(study), "--no-check-model"])
    assert allowed.exit_code == 0, allowed.output
    assert "(allowed by data.allow_pii)" in " ".join(allowed.output.split())

"""`advisor report`: the report as data, plots on disk and in MLflow, the CLI, comparisons.

Uses the session's recorded tiny studies (read-only). Tests that log plots work on a relocated
copy: MLflow stores absolute artifact locations, so a plain copy would still write into the
fixture's artifact folder.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from support import synthetic_report
from typer.testing import CliRunner

from advisor.cli import app
from advisor.review.build import build_report, non_dominated, report_study
from advisor.review.compare import compare_reports
from advisor.review.decision import decide
from advisor.review.report import BestPick, Report, ReportRow, describe_params
from advisor.stores.records import open_recorded_study

PNG = b"\x89PNG\r\n\x1a\n"


def relocated_copy(root: Path, dst: Path) -> Path:
    """Copy a study's stores and point MLflow's artifact locations at the copy.

    MLflow also caches each run's artifact repository per process, keyed by run id alone (not
    by tracking URI): the copy has the same run ids, so the cache is emptied too, or logging
    would still land in the fixture's folder.
    """
    from mlflow.tracking._tracking_service import utils as mlflow_utils

    shutil.copytree(root, dst)
    old, new = root.resolve().as_uri(), dst.resolve().as_uri()
    with sqlite3.connect(dst / "mlruns" / "mlflow.db") as db:
        db.execute(
            "UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
            (old, new),
        )
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))
    mlflow_utils._artifact_repos_cache.clear()
    return dst


@pytest.fixture
def relocated_pareto(recorded_pareto_study, tmp_path: Path):
    """A private copy of the two-objective study; MLflow's cache is emptied again afterwards."""
    from mlflow.tracking._tracking_service import utils as mlflow_utils

    yield relocated_copy(recorded_pareto_study["root"], tmp_path / "copy")
    mlflow_utils._artifact_repos_cache.clear()


@pytest.fixture(scope="module")
def recorded_report(recorded_study) -> tuple[Report, object]:
    recorded = open_recorded_study("recorded", root=recorded_study["root"])
    return build_report(recorded), recorded


def test_report_of_a_study_with_failed_and_pruned_trials(recorded_report) -> None:
    report, recorded = recorded_report
    states = {row.number: row.state for row in report.rows}
    assert states == {0: "complete", 1: "pruned", 2: "pruned", 3: "failed"}
    failed = report.row(3)
    assert failed.error and "exited with code 9" in failed.error
    assert all(row.error is None for row in report.rows if row.state != "failed")
    assert report.method == "lora"
    assert report.fixed["target_modules"] == "all_linear" and report.fixed["r"] == 4
    assert report.baseline_score == recorded.baseline_score is not None
    for row in report.rows:
        if row.score is not None:
            assert row.gain == pytest.approx(row.score - report.baseline_score)
        else:
            assert row.gain is None
    assert report.best_trial.number == recorded.best_trial_number() == 0
    assert {pick.trial for pick in report.best} == {0}  # the only complete trial
    assert report.pareto.source == "computed" and report.pareto.trials == [0]
    assert report.importances.values == {}
    assert "at least 2 complete trials" in report.importances.unavailable
    assert "learning_rate=0.01" in report.decision
    assert report.decision.startswith("Trial 0 (")
    json.dumps(report.to_dict())


def test_two_objective_front_is_optunas_best_trials(recorded_pareto_study) -> None:
    recorded = open_recorded_study("pareto", root=recorded_pareto_study["root"])
    report = build_report(recorded)
    assert report.objectives == ["score", "wall_seconds"]
    assert report.pareto.source == "optuna.best_trials"
    assert report.pareto.trials == sorted(t.number for t in recorded.study.best_trials)
    cheapest = min(report.complete, key=lambda r: r.wall_seconds)
    pick = next(p for p in report.best if p.objective == "wall_seconds")
    assert pick.trial == cheapest.number and pick.optimised
    imp = report.importances
    if imp.unavailable is None:
        assert set(imp.values) <= {"r", "target_modules", "learning_rate"}
        assert sum(imp.values.values()) == pytest.approx(1.0)
    else:
        assert imp.values == {}
    best = report.best_trial
    assert describe_params(best.params) in report.decision


def test_non_dominated_keeps_only_the_trade_off() -> None:
    # (id, score, -cost): 1 is beaten by 0 on both, 3 ties 2 exactly (neither dominates)
    points = [(0, 0.9, -10.0), (1, 0.8, -12.0), (2, 0.7, -5.0), (3, 0.7, -5.0), (4, 0.95, -30.0)]
    assert non_dominated(points) == [0, 2, 3, 4]


def _synthetic(rows: list[ReportRow], front: list[int] | None = None) -> Report:
    return synthetic_report(rows, front)


def _row(number: int, score: float, wall: float, r: int) -> ReportRow:
    return ReportRow(
        number,
        "complete",
        {"r": r, "target_modules": "all_linear"},
        score=score,
        gain=score - 0.2,
        wall_seconds=wall,
        device="cpu",
        values=[score],
    )


def test_decision_names_a_cheaper_pareto_trial_close_to_the_best() -> None:
    rows = [_row(0, 0.8, 100.0, 16), _row(1, 0.76, 50.0, 8), _row(2, 0.5, 10.0, 4)]
    decision = decide(_synthetic(rows, front=[0, 1, 2]))
    assert decision.startswith("Trial 0 (r=16, all_linear): +60 points over the untuned baseline")
    assert "trial 1 (r=8, all_linear) reaches 95% of that score at 50% of the cost" in decision
    assert "trial 2" not in decision  # below 90% of the best score


def test_decision_is_honest_when_nothing_completed() -> None:
    rows = [
        ReportRow(0, "failed", {"r": 8}, error="OOM"),
        ReportRow(1, "pruned", {"r": 4}, eval_loss=3.0),
    ]
    decision = decide(_synthetic(rows))
    assert decision.startswith("No trial of study 's' completed (1 pruned, 1 failed)")


def test_plots_are_pngs_logged_on_the_parent_run(
    recorded_pareto_study, relocated_pareto: Path, tmp_path: Path
) -> None:
    root = relocated_pareto
    report = report_study("pareto", root=root, plots_dir=tmp_path / "plots")
    drawn = [p for p in report.plots if p.path]
    assert {"history", "pareto"} <= {p.name for p in drawn}
    for plot in report.plots:
        assert (plot.path is None) != (plot.skipped is None)
    for plot in drawn:
        data = Path(plot.path).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
        assert Path(plot.path).parent == tmp_path / "plots"
    recorded = open_recorded_study("pareto", root=root)
    listed = recorded.tracker.client.list_artifacts(report.parent_run_id, "plots")
    assert sorted(a.path for a in listed) == sorted(f"plots/{p.name}.png" for p in drawn)
    assert all(p.artifact == f"plots/{p.name}.png" for p in drawn)
    original = recorded_pareto_study["root"] / "mlruns" / "artifacts"
    assert not list(original.rglob("plots"))  # the fixture's store is untouched


def test_cli_report_renders_the_decision_and_json(recorded_study, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(recorded_study["root"])
    expected = build_report(open_recorded_study("recorded")).decision
    runner = CliRunner()
    result = runner.invoke(app, ["report", "recorded", "--no-log-plots", "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert " ".join(expected.split()) in " ".join(result.output.split())
    assert "history.png" in result.output and (tmp_path / "history.png").is_file()
    result = runner.invoke(app, ["report", "recorded", "--json", "--no-log-plots"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["decision"] == expected
    assert [r["state"] for r in payload["rows"]] == ["complete", "pruned", "pruned", "failed"]


def test_cli_unknown_study_exits_2_naming_the_known_ones(recorded_study, monkeypatch) -> None:
    monkeypatch.chdir(recorded_study["root"])
    result = CliRunner().invoke(app, ["report", "no-such-study"])
    assert result.exit_code == 2
    assert "no-such-study" in result.output and "recorded" in result.output


def test_comparing_two_studies(recorded_report, recorded_pareto_study) -> None:
    first, _ = recorded_report
    second = build_report(open_recorded_study("pareto", root=recorded_pareto_study["root"]))
    comparison = compare_reports([first, second])
    assert [e.study for e in comparison.entries] == ["recorded", "pareto"]
    best = {e.study: e for e in comparison.entries}
    for report in (first, second):
        assert best[report.study].best_trial == report.best_trial.number
        assert best[report.study].best_score == report.best_trial.score
    top = max(comparison.entries, key=lambda e: e.best_score)
    cheap = min(comparison.entries, key=lambda e: e.cost_usd)
    assert comparison.best_on_score == top.study
    assert comparison.cheapest == cheap.study
    assert top.study in comparison.summary
    json.dumps(comparison.to_dict())


def test_decision_on_a_minimised_metric_says_how_far_it_fell() -> None:
    """Perplexity 49.7 -> 3.2 is the gain of a corpus study, not '-4650 points' and a warning
    not to ship (the sentence read scores in points whatever the direction)."""
    rows = [_row(0, 3.2, 100.0, 16), _row(1, 60.0, 50.0, 8)]
    for row in rows:
        row.gain = 49.7 - row.score  # as build_report computes it for a minimised metric
    report = _synthetic(rows)
    report.metric, report.directions, report.baseline_score = "perplexity", ["minimize"], 49.7
    report.best = [BestPick("score", "minimize", 0, 3.2, True)]
    decision = decide(report)
    assert "94% below the untuned baseline (49.7 -> 3.2 perplexity)" in decision
    assert "do not ship" not in decision
    report.best = [BestPick("score", "minimize", 1, 60.0, True)]
    worse = decide(report)
    assert "21% above the untuned baseline (49.7 -> 60 perplexity)" in worse
    assert "do not ship" in worse

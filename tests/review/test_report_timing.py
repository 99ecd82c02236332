"""`advisor report --timing`: where each trial's time went, read back from its MLflow run, and
the study's training share of wall time. Reads the session's recorded tiny study (read-only)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from advisor.cli import app
from advisor.review.build import build_report
from advisor.review.timing import PHASES, phase_row
from advisor.stores.records import open_recorded_study


@pytest.fixture(scope="module")
def timing(recorded_study):
    report = build_report(open_recorded_study("recorded", root=recorded_study["root"]))
    assert report.timing is not None
    return report.timing


def test_every_finished_run_has_its_phases(timing) -> None:
    assert [row.trial for row in timing.rows] == [-1, 0, 1, 2, 3]
    base, done = timing.rows[0], timing.rows[1]
    assert base.seconds["train"] == 0.0 and base.seconds["generation"] > 0
    assert done.state == "complete"
    for phase in ("load", "train", "eval_loss", "generation", "probes", "tracking"):
        assert done.seconds[phase] > 0, phase
    for row in timing.rows:  # the phases add up to the run's wall time, tracking included
        assert set(row.seconds) == set(PHASES)
        assert sum(row.seconds.values()) == pytest.approx(row.wall_seconds, rel=1e-6)


def test_training_share_is_training_over_the_runs_wall_time(timing) -> None:
    assert timing.totals["train"] == pytest.approx(sum(r.seconds["train"] for r in timing.rows))
    assert timing.wall_seconds == pytest.approx(sum(r.wall_seconds for r in timing.rows))
    assert timing.training_share == pytest.approx(timing.totals["train"] / timing.wall_seconds)
    assert 0 < timing.training_share < 1


def test_a_run_of_an_older_version_shows_its_remainder_as_setup_and_save() -> None:
    old = {"wall_seconds": 10.0, "load_seconds": 2.0, "train_seconds": 5.0, "eval_seconds": 1.0}
    row = phase_row(0, "complete", old)
    assert row is not None
    assert row.seconds["setup_save"] == pytest.approx(2.0)
    assert row.seconds["eval_loss"] is None and row.seconds["tracking"] is None
    assert row.wall_seconds == 10.0
    assert phase_row(1, "running", {"train_seconds": 3.0}) is None  # never finished


def test_cli_timing_table_and_json(recorded_study, monkeypatch) -> None:
    monkeypatch.chdir(recorded_study["root"])
    runner = CliRunner()
    result = runner.invoke(app, ["report", "recorded", "--timing", "--no-log-plots"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "where the time went" in text
    for column in ("load", "train", "eval loss", "generation", "probes", "tracking"):
        assert column in text
    assert "training share:" in text and "of the trials' wall time" in text
    assert " index " not in text  # no retrieval method: no index column
    plain = runner.invoke(app, ["report", "recorded", "--no-log-plots"])
    assert "where the time went" not in plain.output
    payload = json.loads(
        runner.invoke(app, ["report", "recorded", "--json", "--no-log-plots"]).stdout
    )
    share = payload["timing"]["training_share"]
    assert 0 < share < 1
    assert [r["trial"] for r in payload["timing"]["rows"]] == [-1, 0, 1, 2, 3]

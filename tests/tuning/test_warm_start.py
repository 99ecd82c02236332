"""Studies start from the evidence (issue 16, item 6, groundwork): `optuna: {warm_start: true,
start: {...}}` enqueues the study file's starting point as the first trial of a new study, marked
with its source (`keys.WARM_START`), and the report marks it. Pure Python except the last test,
one tiny `tune` (2 trials, 2 steps)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from support import synthetic_report, write_tiny_study

from advisor.cli.review import render_report
from advisor.errors import AdvisorInputError
from advisor.review.build import build_report
from advisor.review.report import ReportRow
from advisor.stores import keys
from advisor.stores.records import open_recorded_study
from advisor.study import load_study
from advisor.study.loading import spec_content, spec_hash
from advisor.tuning.entry import tune
from advisor.tuning.plan import START, warm_start_points

START_POINT = {"r": 4, "target_modules": ["q_proj", "v_proj"], "learning_rate": 0.005}


def _spec(tmp_path: Path, **optuna):
    search = {"target_modules": ["attention_qv", ["q_proj", "v_proj"]]}
    path = write_tiny_study(tmp_path, Path("smollm2-135m"), "w", search=search, optuna=optuna)
    return load_study(path)


def test_no_points_unless_warm_start_is_on(tmp_path: Path) -> None:
    assert warm_start_points(_spec(tmp_path)) == []
    assert warm_start_points(_spec(tmp_path, warm_start=True)) == []  # on, but no point yet


def test_the_study_files_point_in_optunas_encoding(tmp_path: Path) -> None:
    spec = _spec(tmp_path, warm_start=True, start=START_POINT)
    assert warm_start_points(spec) == [
        ({"r": 4, "target_modules": "q_proj+v_proj", "learning_rate": 0.005}, START)
    ]
    assert START == "optuna.start"


def test_a_partial_point_leaves_the_rest_to_the_sampler(tmp_path: Path) -> None:
    spec = _spec(tmp_path, warm_start=True, start={"learning_rate": 0.002})
    assert warm_start_points(spec) == [({"learning_rate": 0.002}, START)]


def test_a_point_outside_the_space_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(AdvisorInputError) as refused:
        _spec(tmp_path, warm_start=True, start={"r": 3, "learning_rate": 0.5})
    text = str(refused.value)
    assert "optuna.start.r: 3 is outside search.r (choices [2, 4])" in text
    assert "optuna.start.learning_rate: 0.5 is outside search.learning_rate (0.001 .. 0.01)" in (
        text
    )


def test_a_study_without_warm_start_hashes_as_before_the_field_existed(tmp_path: Path) -> None:
    """Stored studies keep their spec hash: continuing one is not refused as a changed file."""
    plain = _spec(tmp_path)
    assert "warm_start" not in spec_content(plain)["optuna"]
    assert "start" not in spec_content(plain)["optuna"]
    warm = _spec(tmp_path, warm_start=True, start={"r": 2})
    assert spec_content(warm)["optuna"]["start"] == {"r": 2}
    assert spec_hash(warm) != spec_hash(plain)


def _row(number: int, warm_start: str | None) -> ReportRow:
    return ReportRow(
        number, "complete", {"r": 4}, score=0.5, gain=0.3, values=[0.5], warm_start=warm_start
    )


def test_the_report_marks_warm_start_trials() -> None:
    report = synthetic_report([_row(0, START), _row(1, None)])
    out = StringIO()
    render_report(report, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    first = next(line for line in lines if line.lstrip("│ ").startswith("0"))
    second = next(line for line in lines if line.lstrip("│ ").startswith("1"))
    assert "▲" in first and "warm start (optuna.start)" in first
    assert "▲" not in second and "warm start" not in second
    assert "▲ warm start" in out.getvalue()  # the legend
    rows = json.loads(json.dumps(report.to_dict()))["rows"]
    assert [r["warm_start"] for r in rows] == [START, None]


def test_tune_runs_the_starting_point_first_and_marks_it(tmp_path: Path, tiny_model: Path) -> None:
    """The one tiny tune: 2 trials of 2 steps; trial 0 has the enqueued parameters and the mark,
    trial 1 is the sampler's, and the report reads the mark back."""
    start = {"r": 4, "target_modules": "all_linear", "learning_rate": 0.005}
    study_file = write_tiny_study(
        tmp_path,
        tiny_model,
        "warm",
        train={"max_steps": 2, "eval_steps": 2},
        eval={"forgetting": False},
        optuna={"n_trials": 2, "warm_start": True, "start": start},
    )
    tune(study_file, root=tmp_path)
    recorded = open_recorded_study("warm", root=tmp_path)
    first, second = recorded.study.get_trials(deepcopy=False)
    assert first.params == start
    assert first.user_attrs[keys.WARM_START] == START
    assert keys.WARM_START not in second.user_attrs
    report = build_report(recorded)
    assert [row.warm_start for row in report.rows] == [START, None]

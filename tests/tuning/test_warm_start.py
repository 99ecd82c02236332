"""Studies start from the evidence (issue 16, item 6): `optuna: {warm_start: true, start: {...}}`
enqueues the study file's starting point as the first trial of a new study, marked with its
source (`keys.WARM_START`: `optuna.start`, or `recommended` when `advisor recommend` wrote it),
then past studies' best points fitted to the space; the grid sampler takes no warm start; the
report marks warm-start trials. Pure Python except the last test, one tiny `tune` (2 trials,
2 steps)."""

from __future__ import annotations

import json
import shutil
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
from advisor.study.start import fitted, inside, searched_space
from advisor.tuning.entry import tune
from advisor.tuning.plan import RECOMMENDED, START, warm_start_points

START_POINT = {"r": 4, "target_modules": ["q_proj", "v_proj"], "learning_rate": 0.005}


def _spec(tmp_path: Path, search: dict | None = None, **optuna):
    search = {"target_modules": ["attention_qv", ["q_proj", "v_proj"]], **(search or {})}
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
    assert "start_source" not in spec_content(plain)["optuna"]
    warm = _spec(tmp_path, warm_start=True, start={"r": 2})
    assert spec_content(warm)["optuna"]["start"] == {"r": 2}
    assert spec_hash(warm) != spec_hash(plain)


def test_a_recommended_point_is_marked_recommended(tmp_path: Path) -> None:
    spec = _spec(tmp_path, warm_start=True, start={"r": 4}, start_source="recommended")
    assert warm_start_points(spec) == [({"r": 4}, RECOMMENDED)]


def test_a_start_source_without_a_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AdvisorInputError, match=r"optuna\.start_source is set but there is no"):
        _spec(tmp_path, warm_start=True, start_source="recommended")


def test_the_grid_sampler_takes_no_warm_start(tmp_path: Path) -> None:
    """The grid tries every point, and an enqueued one would be trained twice: refused, with
    or without a point, naming the field and the way out."""
    grid = {"sampler": "grid", "warm_start": True}
    fixed = {"learning_rate": 0.001}  # the grid needs a finite space
    with_point = {**grid, "start": {"r": 2}}
    for optuna, field in ((grid, "optuna.warm_start"), (with_point, "optuna.start")):
        with pytest.raises(AdvisorInputError) as refused:
            _spec(tmp_path, search=fixed, **optuna)
        text = str(refused.value)
        assert f"{field}: the grid sampler needs no starting point" in text
        assert "would be trained twice" in text and "use sampler: tpe" in text
    assert warm_start_points(_spec(tmp_path, search=fixed, sampler="grid")) == []


PAST = "study:old#7"


def test_past_best_points_are_fitted_to_this_studys_space(tmp_path: Path) -> None:
    """A range clips a number to its nearer end (onto its step); a value that is not one of
    the choices, and a parameter this study does not search, are left to the sampler."""
    search = {"r": {"low": 4, "high": 16, "step": 4}}
    spec = _spec(tmp_path, search=search, warm_start=True, start={"learning_rate": 0.002})
    past = [
        ({"r": 64, "learning_rate": 0.5, "alpha_ratio": 1, "target_modules": "all_linear"}, PAST),
        ({"r": 9, "learning_rate": 1e-5, "target_modules": "q_proj+v_proj"}, "study:old#2"),
    ]
    assert warm_start_points(spec, past) == [
        ({"learning_rate": 0.002}, START),
        ({"r": 16, "learning_rate": 0.01}, PAST),
        ({"r": 8, "learning_rate": 0.001, "target_modules": "q_proj+v_proj"}, "study:old#2"),
    ]


def test_past_points_that_fit_nothing_or_repeat_are_skipped(tmp_path: Path) -> None:
    spec = _spec(tmp_path, warm_start=True, start={"r": 4, "learning_rate": 0.005})
    past = [({"alpha_ratio": 4}, "study:a#0"), ({"r": 4, "learning_rate": 0.005}, "study:b#1")]
    assert warm_start_points(spec, past) == [({"r": 4, "learning_rate": 0.005}, START)]
    assert warm_start_points(_spec(tmp_path), past) == []  # warm_start off: nothing at all


def test_inside_keeps_only_values_in_the_space_and_fitted_moves_numbers_in(tmp_path: Path) -> None:
    space = searched_space(_spec(tmp_path).search)
    assert set(space) == {"r", "target_modules", "learning_rate"}  # alpha_ratio is fixed
    point = {"r": 8, "learning_rate": 0.02, "target_modules": "attention_qv", "alpha_ratio": 2}
    assert inside(space, point) == {"target_modules": "attention_qv"}
    assert fitted(space, point) == {"learning_rate": 0.01, "target_modules": "attention_qv"}


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


def test_tune_starts_from_a_recorded_similar_study(
    recorded_study, tiny_model: Path, tmp_path: Path
) -> None:
    """The learning loop into the tuner: a new study in a project whose stores hold a finished
    study on the same model, method and data enqueues that study's best point (fitted to the new
    space) as its first trial, marked with the study and trial it came from."""
    root = tmp_path / "project"
    shutil.copytree(recorded_study["root"], root)
    study_file = write_tiny_study(
        root,
        tiny_model,
        "next",
        train={"max_steps": 2, "eval_steps": 2},
        eval={"forgetting": False},
        optuna={"n_trials": 1, "warm_start": True},
    )
    tune(study_file, root=root)
    (first,) = open_recorded_study("next", root=root).study.get_trials(deepcopy=False)
    assert first.user_attrs[keys.WARM_START] == "study:recorded#0"
    # recorded's best trial: r 4, all_linear (fixed there) and lr 1e-2 (searched): all inside
    assert first.params == {"r": 4, "target_modules": "all_linear", "learning_rate": 1e-2}

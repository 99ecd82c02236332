"""A study file changed under an existing study's name is refused, showing what differs, unless
the user asks to continue; workers get a sampler seed of their own.

The CLI cases run on a copy of the session's recorded tiny study (its stores and study file)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.cli import app
from advisor.tuning.joining import spec_differences
from advisor.tuning.plan import SEED_SPACE, worker_seed


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def copy(recorded_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(recorded_study["root"], root)
    monkeypatch.chdir(root)
    return root


def _edit(study: Path, section: str, key: str, value: object) -> None:
    spec = yaml.safe_load(study.read_text())
    spec[section][key] = value
    study.write_text(yaml.safe_dump(spec))


def test_a_changed_study_file_is_refused_showing_what_differs(copy: Path) -> None:
    study = copy / "recorded.yaml"
    _edit(study, "train", "max_steps", 8)
    _edit(study, "eval", "max_new_tokens", 9)
    before = _snapshot(copy)
    for command in (["tune", str(study)], ["worker", str(study), "--wait", "0"]):
        refused = CliRunner().invoke(app, command)
        assert refused.exit_code == 2, refused.output
        said = " ".join(refused.output.split())
        assert "study 'recorded' already exists with another study file" in said
        assert "train.max_steps: 6 -> 8" in said and "eval.max_new_tokens: 6 -> 9" in said
        assert ("--continue-changed" in said) == (command[0] == "tune")
    assert _snapshot(copy) == before


def test_continue_changed_adds_trials_of_the_changed_file_and_says_so(copy: Path) -> None:
    study = copy / "recorded.yaml"
    _edit(study, "train", "max_steps", 4)
    _edit(study, "optuna", "sampler", "tpe")  # the grid of 4 is done: room for trial 4
    result = CliRunner().invoke(
        app, ["tune", str(study), "--continue-changed", "--n-trials", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    changed = [note for note in summary["notes"] if "changed study file" in note]
    assert (
        "train.max_steps: 6 -> 4" in changed[0] and "optuna.sampler: 'grid' -> 'tpe'" in changed[0]
    )
    assert "data." not in changed[0]  # the copied folder moved its files: no change to them
    assert [r["number"] for r in summary["rows"]] == [0, 1, 2, 3, 4]
    assert summary["rows"][4]["state"] in ("complete", "pruned")


def test_only_settings_that_change_results_differ() -> None:
    old = {"name": "s", "description": "a", "storage": "x", "train": {"max_steps": 4},
           "data": {"allow_pii": False, "train": "t"}, "search": {"r": [2, 4]}}  # fmt: skip
    new = {"name": "s", "description": "b", "storage": "y", "train": {"max_steps": 4},
           "data": {"allow_pii": True, "train": "u"}, "search": {"r": [2, 8]}}  # fmt: skip
    assert spec_differences(old, new) == ["data.train: 't' -> 'u'", "search.r: [2, 4] -> [2, 8]"]


def test_worker_seeds_differ_and_the_coordinator_keeps_the_study_seed() -> None:
    for seed in (0, 5, SEED_SPACE - 1):
        seeds = [worker_seed(seed, slot) for slot in range(50)]
        assert seeds[0] == seed and len(set(seeds)) == 50
        assert all(0 <= s < SEED_SPACE for s in seeds)


def test_grid_workers_share_the_study_seed_so_a_grid_index_means_one_point() -> None:
    """The grid sampler names a trial's point by its index into a grid the seed shuffles: a
    worker seeded apart would read index 2 as another point and train a point twice."""
    from advisor.stores.sampling import make_sampler
    from advisor.study.space import Param
    from advisor.tuning.plan import sampler_seed

    params = [
        Param("r", "categorical", (2, 4, 8)),
        Param("target_modules", "categorical", ("attention_qv", "all_linear")),
    ]
    grids = [
        make_sampler("grid", params, seed=sampler_seed("grid", 5, slot), n_startup_trials=1)
        for slot in range(3)
    ]
    assert all(g._all_grids == grids[0]._all_grids for g in grids)  # the index -> point map
    assert {sampler_seed("tpe", 5, slot) for slot in range(3)} == {
        worker_seed(5, slot) for slot in range(3)
    }

"""The tuner replay (bench/tuner_replay.py) on a small synthetic grid with a known best.

No training: the grid is a CSV written here. The replay runs real Optuna studies with advisor's
sampler and pruner factories, so these tests check the lookup, the step accounting with a real
median pruner, the budget rule, and that grid search at the full budget finds the best exactly.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import optuna
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


replay_mod = _load("tuner_replay")  # puts bench/ on sys.path: its _replay_* modules import
export_mod = _load("tuner_grid_export")
report_mod = sys.modules["_replay_report"]
warm_mod = sys.modules["_replay_warm"]

MAX_STEPS = 20
A_VALUES = (1, 2, 3)
B_VALUES = ("x", "y", "z")


def _score(a: int, b: str) -> float:
    """Best at a=3, b=z (0.8); every other point at least 0.15 lower."""
    return round(0.1 * a + 0.1 * B_VALUES.index(b) + 0.3 - (0.0 if (a, b) == (3, "z") else 0.05), 4)


def _curve(a: int, b: str) -> str:
    """Eval loss falling with training, lower for better points (what the pruner ranks)."""
    level = 1.0 - _score(a, b)
    return ";".join(f"{s}:{level + 1.0 / s:.6f}" for s in (5, 10, 15, 20))


def _write_grid(path: Path, *, skip: set[tuple[int, str]] = frozenset(), header: bool = True):
    lines = []
    if header:
        lines.append(
            "# study=synthetic points=0 grid_size=9 direction=maximize max_steps=20 "
            "eval_steps=5 exported=2026-11-23 space=a=1,2,3|b=x,y,z"
        )
    lines.append("a,b,score,eval_loss,curve,steps,wall_s,trial")
    for number, (a, b) in enumerate((a, b) for a in A_VALUES for b in B_VALUES):
        if (a, b) in skip:
            continue
        lines.append(f"{a},{b},{_score(a, b)},0.5,{_curve(a, b)},{MAX_STEPS},100.0,{number}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture
def grid(tmp_path):
    return replay_mod.load_grid(_write_grid(tmp_path / "grid.csv"))


def test_lookup_returns_the_trained_point_with_typed_values(grid):
    assert grid.space == {"a": [1, 2, 3], "b": ["x", "y", "z"]}
    assert grid.complete and grid.grid_size == 9 and grid.full_steps == 9 * MAX_STEPS
    point = grid.lookup({"a": 2, "b": "y"})
    assert point.score == _score(2, "y") and point.steps == MAX_STEPS
    assert [s for s, _ in point.curve] == [5, 10, 15, 20]
    assert grid.best_score == 0.8 and grid.lookup({"a": 3, "b": "z"}).score == 0.8
    assert grid.max_steps == 20 and grid.eval_steps == 5


def test_a_partial_grid_lacks_points_and_says_so(tmp_path):
    grid = replay_mod.load_grid(_write_grid(tmp_path / "g.csv", skip={(1, "x"), (2, "z")}))
    assert not grid.complete and len(grid.points) == 7 and grid.grid_size == 9
    assert grid.lookup({"a": 1, "b": "x"}) is None
    assert grid.full_steps == 7 * MAX_STEPS


def test_a_csv_without_header_takes_its_space_from_the_rows(tmp_path):
    grid = replay_mod.load_grid(_write_grid(tmp_path / "g.csv", header=False))
    assert grid.grid_size == 9 and grid.max_steps == 20 and grid.eval_steps == 5


def _study(pruner: str = "median", n_startup: int = 1):
    from advisor.stores.sampling import make_pruner
    from advisor.stores.storage import open_study

    return open_study(
        name="t",
        storage=optuna.storages.InMemoryStorage(),
        directions=["maximize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=make_pruner(pruner, n_startup_trials=n_startup, max_steps=20, eval_steps=5),
    )


def _point(losses: list[float]):
    steps = (5, 10, 15, 20)
    return replay_mod.Point({}, 0.5, tuple(zip(steps, losses, strict=True)), MAX_STEPS)


def test_a_pruned_trial_is_charged_the_steps_until_the_pruner_stopped_it():
    study = _study()
    first = study.ask()
    assert replay_mod.play_point(first, _point([1.0, 0.8, 0.6, 0.4]), sign=-1.0) == (
        "complete",
        20,
    )
    study.tell(first, 0.5)
    # worse than the first trial from its first eval: stopped at its second, step 10 (the
    # median pruner never stops a trial on its first eval loss)
    bad = study.ask()
    assert replay_mod.play_point(bad, _point([2.0, 1.9, 1.8, 1.7]), sign=-1.0) == ("pruned", 10)
    study.tell(bad, state=optuna.trial.TrialState.PRUNED)
    # level until step 10, then lags: stopped at step 15
    late = study.ask()
    assert replay_mod.play_point(late, _point([0.9, 0.7, 0.9, 0.9]), sign=-1.0) == ("pruned", 15)


def test_without_a_pruner_every_trial_trains_to_the_end():
    study = _study(pruner="none")
    for losses in ([1.0, 0.8, 0.6, 0.4], [2.0, 1.9, 1.8, 1.7]):
        trial = study.ask()
        assert replay_mod.play_point(trial, _point(losses), sign=-1.0) == ("complete", 20)
        study.tell(trial, 0.5)


def test_replay_steps_add_up_and_stay_within_the_budget(grid):
    strategy = replay_mod.STRATEGIES[0]  # TPE + median pruner
    budget = grid.full_steps
    run = replay_mod.replay(grid, strategy, seed=3, budget=budget, n_startup_trials=2)
    states = [t.state for t in run.trials]
    assert "pruned" in states and "complete" in states
    spent = 0
    for trial in run.trials:
        point = grid.lookup(trial.params)
        if trial.state == "pruned":
            assert trial.score is None and trial.steps in (5, 10, 15, 20)
        else:
            assert trial.steps == MAX_STEPS and trial.score == point.score
        spent += trial.steps
        assert trial.spent == spent
    assert spent <= budget and spent + MAX_STEPS > budget  # stopped when no full trial fit


def test_a_smaller_budget_is_a_prefix_of_the_larger_run(grid):
    strategy = replay_mod.STRATEGIES[0]
    long = replay_mod.replay(grid, strategy, seed=5, budget=grid.full_steps, n_startup_trials=2)
    for budget in (45, 90, 135):
        short = replay_mod.replay(grid, strategy, seed=5, budget=budget, n_startup_trials=2)
        assert long.within(budget) == short.trials
        assert long.spent_within(budget) == short.trials[-1].spent <= budget


def test_grid_search_at_full_budget_reaches_exactly_the_best(grid):
    grid_strategy = next(s for s in replay_mod.STRATEGIES if s.sampler == "grid")
    for seed in range(5):
        run = replay_mod.replay(
            grid, grid_strategy, seed=seed, budget=grid.full_steps, n_startup_trials=2
        )
        assert {tuple(t.params.values()) for t in run.trials} == set(grid.points)
        assert run.spent_within(grid.full_steps) == grid.full_steps
        best = run.best_within(grid.full_steps, grid.direction)
        assert replay_mod.fraction_of_best(best, grid) == 1.0


def test_grid_search_on_a_partial_grid_skips_missing_points_for_free(tmp_path):
    grid = replay_mod.load_grid(_write_grid(tmp_path / "g.csv", skip={(3, "z")}))
    grid_strategy = next(s for s in replay_mod.STRATEGIES if s.sampler == "grid")
    run = replay_mod.replay(grid, grid_strategy, seed=0, budget=grid.full_steps, n_startup_trials=2)
    missing = [t for t in run.trials if t.state == "missing"]
    assert len(missing) == 1 and missing[0].steps == 0 and not run.capped
    assert run.spent_within(grid.full_steps) == 8 * MAX_STEPS
    assert run.best_within(grid.full_steps, "maximize") == grid.best_score == _score(3, "y")


def test_summary_over_seeds_reports_fraction_and_steps(grid):
    random_strategy = next(s for s in replay_mod.STRATEGIES if s.sampler == "random")
    runs = replay_mod.replay_all(
        grid, [random_strategy], seeds=range(10), max_share=1.0, n_startup_trials=2
    )["random"]
    cell = replay_mod.summarise(runs, grid, 0.25)  # 45 steps: 2 full trials
    assert cell.budget_steps == 45 and cell.mean_steps == 40 and cell.mean_trials == 2
    assert 0 < cell.p10_fraction <= cell.mean_fraction <= 1.0
    full = replay_mod.summarise(runs, grid, 1.0)
    assert full.mean_fraction >= cell.mean_fraction and full.mean_trials == 9


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert replay_mod.percentile(values, 10) == 1.0
    assert replay_mod.percentile(values, 50) == 5.0


def test_export_round_trips_through_the_replay_reader(tmp_path):
    """Optuna holds -eval_loss for a maximised study; the CSV holds the eval loss itself."""
    distributions = {
        "a": optuna.distributions.CategoricalDistribution([1, 2]),
        "b": optuna.distributions.CategoricalDistribution(["x", "y"]),
    }
    rows = []
    for number, (a, b) in enumerate([(1, "x"), (2, "y")]):
        trial = optuna.trial.create_trial(
            params={"a": a, "b": b},
            distributions=distributions,
            value=0.25 * a,
            intermediate_values={5: -1.5 / a, 10: -1.0 / a},
            user_attrs={"eval_loss": 1.0 / a, "wall_seconds": 99.94},
        )
        trial.number = number
        rows.append(export_mod.trial_row(trial, ["a", "b"], sign=-1.0, max_steps=10))
    export = export_mod.GridExport(
        study="s",
        direction="maximize",
        max_steps=10,
        eval_steps=5,
        space={"a": [1, 2], "b": ["x", "y"]},
        rows=rows,
    )
    assert len(export.missing()) == 2  # (1, y) and (2, x)
    out = tmp_path / "grid.csv"
    export_mod.write_csv(export, out)
    grid = replay_mod.load_grid(out)
    assert not grid.complete and grid.grid_size == 4 and len(grid.points) == 2
    point = grid.lookup({"a": 2, "b": "y"})
    assert point.score == 0.5 and point.curve == ((5, 0.75), (10, 0.5)) and point.steps == 10
    assert point.wall_s == 99.9


def _fake_starts(grid):
    point = {"r": 16, "lora_alpha": 32, "learning_rate": 1e-3, "target_modules": ["q_proj"]}
    return warm_mod.Starts(point, {}, {"recommended": [], "evidence": []})


def test_the_section_replaces_only_itself_in_benchmarks_md(tmp_path, monkeypatch, grid):
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\n## Cold start\n\nkept\n\n## Other\n\nalso kept\n")
    monkeypatch.setattr(replay_mod, "BENCHMARKS", target)
    starts = {grid.study: _fake_starts(grid)}
    runs, cells = replay_mod.replay_grids(
        [grid], replay_mod.STRATEGIES, seeds=range(3), budgets=(0.25, 1.0),
        n_startup_trials=2, starts=starts,
    )  # fmt: skip
    for _ in range(2):  # written twice: replaced, not appended
        section = report_mod.render(
            [grid], runs, cells, starts, seeds=[0, 1, 2], n_startup_trials=2, elapsed=1.0,
            command="python bench/tuner_replay.py", versions={"optuna": "x"},
        )  # fmt: skip
        replay_mod.write_section(section)
    text = target.read_text()
    assert text.count(report_mod.SECTION) == 1 and "kept" in text and "also kept" in text
    assert "9 of 9 (complete)" in text
    assert re.search(
        r"^\| grid \| [\d.]+% \([\d.]+%\) \| 100.0% \(100.0%\) \| 22.2% \(2.0, 0.0\) \|", text, re.M
    )


# --- warm start -----------------------------------------------------------------------------------


def test_the_recommenders_values_become_the_studys_parameters():
    all_linear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    hp = {"r": 16, "lora_alpha": 32, "learning_rate": 1.3e-3, "target_modules": all_linear}
    assert warm_mod.as_study_params(hp) == {
        "learning_rate": 1.3e-3, "r": 16, "alpha_ratio": 2.0, "target_modules": "all_linear",
    }  # fmt: skip
    narrow = warm_mod.as_study_params({"r": 8, "target_modules": ["v_proj", "q_proj"]})
    assert narrow == {"r": 8, "target_modules": "attention_qv"}
    odd = warm_mod.as_study_params({"r": 8, "target_modules": ["q_proj", "o_proj"]})
    assert "target_modules" not in odd  # no preset names it: left to the sampler


def test_snapping_takes_the_nearest_grid_value_and_the_learning_rate_in_log_space():
    space = {"learning_rate": [3e-4, 1e-3, 3e-3], "r": [4, 16], "target_modules": ["all_linear"]}
    # 1.8e-3 is nearer 1e-3 on a line, nearer 3e-3 in log space (what a learning rate means)
    point = {"learning_rate": 1.8e-3, "r": 9, "target_modules": "attention_qv", "lora_dropout": 0}
    assert warm_mod.snap(space, point) == {"learning_rate": 3e-3, "r": 4}
    assert warm_mod.snap(space, {"learning_rate": 1.5e-3})["learning_rate"] == 1e-3


def test_the_best_point_is_picked_as_the_evidence_reader_picks_a_best_trial(tmp_path):
    path = _write_grid(tmp_path / "g.csv")
    text = path.read_text().replace("0.8,0.5,", "0.8,0.7,")  # the best (3, z): eval loss 0.7
    # a tie on the score with (3, y), whose eval loss is lower: the evidence reader takes it
    text = text.replace(f"3,y,{_score(3, 'y')},0.5,", "3,y,0.8,0.4,")
    path.write_text(text)
    best = replay_mod.load_grid(path).best_point()
    assert best.params == {"a": 3, "b": "y"} and best.eval_loss == 0.4 and best.trial == 7


def test_enqueued_points_are_the_first_trials_and_cost_their_steps(grid):
    strategy = next(s for s in replay_mod.STRATEGIES if s.warm == "evidence")
    starts = [{"a": 1, "b": "x"}, {"a": 3, "b": "z"}]
    run = replay_mod.replay(
        grid, strategy, seed=0, budget=grid.full_steps, n_startup_trials=2, enqueue=starts
    )
    assert [t.params for t in run.trials[:2]] == starts
    assert run.trials[0].spent == MAX_STEPS and run.trials[1].score == grid.best_score
    assert run.best_within(2 * MAX_STEPS, "maximize") == grid.best_score


def test_warm_starts_are_the_recommended_point_then_the_other_grids_best(tmp_path):
    """On the demo grid: the recommender's point snapped onto it, then (leave-one-out) the best
    point of another grid, as `warm_start_points` hands them to `enqueue_trial`."""
    demo = replay_mod.load_grid(BENCH / "demo_grid.csv")
    other_best = {
        "r": 4,
        "alpha_ratio": 1.0,
        "learning_rate": 0.001,
        "target_modules": "all_linear",
    }
    points = {
        key: replay_mod.Point(p.params, 1.0 if p.params == other_best else 0.1, p.curve, p.steps,
                              trial=number)
        for number, (key, p) in enumerate(demo.points.items())
    }  # fmt: skip
    other = replay_mod.Grid(demo.space, points, study="bench_grid_route", grid_size=36)
    hp = {
        "r": 16,
        "lora_alpha": 16,
        "learning_rate": 2.4e-3,
        "target_modules": ["q_proj", "v_proj"],
    }
    recommendation = {"hyperparameters": hp}
    starts = warm_mod.grid_starts(demo, [other], recommendation=recommendation)
    recommended = {
        "learning_rate": 0.003,
        "r": 16,
        "alpha_ratio": 1.0,
        "target_modules": "attention_qv",
    }
    assert starts.recommended == recommended
    assert starts.points["recommended"] == [(recommended, "recommended")]
    number = next(p.trial for p in points.values() if p.params == other_best)
    assert starts.points["evidence"] == [
        (recommended, "recommended"),
        (other_best, f"study:bench_grid_route#{number}"),
    ]


def test_the_mean_over_grids_averages_each_grids_figures(grid):
    random_strategy = next(s for s in replay_mod.STRATEGIES if s.sampler == "random")
    runs = replay_mod.replay_all(
        grid, [random_strategy], seeds=range(4), max_share=1.0, n_startup_trials=2
    )["random"]
    low, full = replay_mod.summarise(runs, grid, 0.25), replay_mod.summarise(runs, grid, 1.0)
    mean = replay_mod.mean_cell([low, full])
    assert mean.mean_fraction == pytest.approx((low.mean_fraction + full.mean_fraction) / 2)
    assert mean.steps_share == pytest.approx((low.steps_share + full.steps_share) / 2)


def test_each_grid_study_exports_to_its_tasks_csv():
    assert export_mod.default_out("bench_grid") == BENCH / "demo_grid.csv"
    assert export_mod.default_out("bench_grid_route") == BENCH / "route_grid.csv"
    assert export_mod.default_out("bench_grid_style") == BENCH / "style_grid.csv"


def test_a_missing_grid_is_named_with_how_to_make_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        replay_mod.main(["--csv", str(tmp_path / "route_grid.csv"), "--no-write"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "route_grid.csv: no such grid" in err and "tuner_grid_export.py" in err


def _cell(strategy: str, share: float, fraction: float, steps_share: float = 0.2):
    return replay_mod.Cell(strategy, share, 0, fraction, fraction, 0.0, 0.0, 0.0, 0.0, steps_share)


def test_goals_are_judged_per_budget_and_a_tie_is_not_better():
    cells = [
        _cell("random", 0.125, 0.7), _cell("random", 0.25, 0.9), _cell("random", 0.5, 1.0),
        _cell("TPE", 0.125, 0.8), _cell("TPE", 0.25, 0.99), _cell("TPE", 0.5, 1.0),
        _cell("slow", 0.125, 0.6), _cell("slow", 0.25, 0.95), _cell("slow", 0.5, 1.0),
    ]  # fmt: skip
    assert report_mod.goal_two(cells, "TPE") == "no (tied at 50.0%)"
    assert report_mod.goal_two(cells, "slow") == "no (below random at 12.5%; tied at 50.0%)"
    assert report_mod.goal_two(cells, "random") == "-"
    assert report_mod.goal_one(cells[4]).startswith("**met**: 99.0% with 20.0%")
    assert report_mod.goal_one(_cell("TPE", 0.25, 0.99, 0.26)).startswith("not met")
    assert report_mod.goal_one(_cell("TPE", 0.25, 0.97)).startswith("not met")

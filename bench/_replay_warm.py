"""The starting points a warm-started replay enqueues, found as `advisor tune` would find them.

`advisor tune` enqueues `advisor.tuning.plan.warm_start_points(spec, past=...)`: the study
file's `optuna.start` (the recommender's point, when `advisor recommend --write-study` wrote
the study), then the best points of similar past studies, fitted to this study's space. The
replay builds the same two inputs for each grid, never by looking at that grid's scores:

- the recommender's point: `advisor recommend --model smollm2-135m --train <the grid's train
  file> --evidence none --json`, the real command in a child process (its starting values for
  r, lora_alpha, learning_rate and target_modules), turned into the study's parameters as the
  study writer does (`study.writer._warm_start`: alpha_ratio = lora_alpha / r, the module list
  as the preset naming it) and snapped to the nearest value the grid holds (learning rate:
  nearest in log space; others: nearest, ties to the smaller; a module set no grid choice
  names is left to the sampler);
- past studies, leave-one-out: the best point of every *other* grid, picked as the evidence
  reader picks a study's best trial (`Grid.best_point`), with its source `study:<name>#<trial>`.

The grid study file (`studies/<study>.yaml`) supplies the spec whose search space the past
points are fitted to; its sampler is grid, which takes no warm start, so the copy used here
says what the warm-started study would: `warm_start: true` and the recommended `start`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _replay_grid import Grid

from advisor.study import load_study
from advisor.tuning.plan import RECOMMENDED, warm_start_points
from runners.methods.targets import TARGET_MODULE_PRESETS

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"
RECOMMENDED_KEYS = ("r", "lora_alpha", "learning_rate", "target_modules")


@dataclass(frozen=True)
class Starts:
    """One grid's warm starts: what the recommender said, and the points each kind enqueues."""

    recommended_raw: dict[str, Any]
    """The recommender's values, as its JSON gave them."""
    recommended: dict[str, Any]
    """The same, as the grid's parameters, snapped onto the grid."""
    points: dict[str, list[tuple[dict[str, Any], str]]]
    """Per warm kind (`recommended`, `evidence`): (Optuna params, source) in enqueue order."""

    def enqueued(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: [p for p, _ in points] for kind, points in self.points.items()}


def study_file(grid: Grid) -> Path:
    """The grid's study file: `studies/<study>.yaml` (the export names the study); the warm
    start needs its search space and training data."""
    path = ROOT / "studies" / f"{grid.study}.yaml"
    if not path.is_file():
        raise SystemExit(
            f"{grid.path or 'the grid'}: its study {grid.study!r} has no file {path}, so its warm "
            "start cannot be found; export the grid from a shipped grid study"
        )
    return path


def recommend_json(train: Path) -> dict[str, Any]:
    """`advisor recommend --json` for the grid's model and training data, with no past studies
    (the past studies enter as their own points), run as a user runs it."""
    command = [
        sys.executable, "-m", "advisor", "recommend", "--model", MODEL, "--train", str(train),
        "--evidence", "none", "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr or done.stdout}")
    return json.loads(done.stdout)


def as_study_params(hp: Mapping[str, Any]) -> dict[str, Any]:
    """The recommender's values as the study's parameters (`study.writer._warm_start`)."""
    point: dict[str, Any] = {"learning_rate": hp.get("learning_rate"), "r": hp.get("r")}
    if hp.get("r") and hp.get("lora_alpha"):
        point["alpha_ratio"] = hp["lora_alpha"] / hp["r"]
    modules = sorted(hp.get("target_modules") or [])
    named = [n for n, m in TARGET_MODULE_PRESETS.items() if sorted(m) == modules]
    if named:
        point["target_modules"] = named[0]
    return {k: v for k, v in point.items() if v is not None}


def snap(space: Mapping[str, Sequence[Any]], point: Mapping[str, Any]) -> dict[str, Any]:
    """`point` on the grid: each number to the nearest choice (learning rate in log space; ties
    to the smaller), a name only when the grid has it; parameters the grid lacks dropped."""
    out: dict[str, Any] = {}
    for name, value in point.items():
        choices = list(space.get(name, ()))
        if not choices:
            continue
        if isinstance(value, str):
            if value in choices:
                out[name] = value
            continue
        out[name] = min(sorted(choices), key=lambda c, v=value, n=name: _distance(n, c, v))
    return out


def _distance(name: str, choice: float, value: float) -> float:
    if name == "learning_rate":
        return abs(math.log(choice) - math.log(value))
    return abs(choice - value)


def grid_starts(grid: Grid, others: Sequence[Grid], *, recommendation: dict[str, Any]) -> Starts:
    """The grid's warm starts: the recommended point alone, and it followed by the other
    grids' best points, each as `warm_start_points` hands them to `enqueue_trial`."""
    hp = {k: recommendation["hyperparameters"].get(k) for k in RECOMMENDED_KEYS}
    start = snap(grid.space, as_study_params(hp))
    spec = load_study(study_file(grid))
    spec.optuna.warm_start = True
    spec.optuna.start = start or None
    spec.optuna.start_source = RECOMMENDED
    past = []
    for other in others:
        best = other.best_point()
        past.append((dict(best.params), f"study:{other.study}#{best.trial}"))
    return Starts(
        recommended_raw=hp,
        recommended=start,
        points={
            "recommended": warm_start_points(spec),
            "evidence": warm_start_points(spec, past=past),
        },
    )


def all_starts(grids: Sequence[Grid]) -> dict[str, Starts]:
    """Every grid's warm starts, leave-one-out over the others (by study name)."""
    out = {}
    for grid in grids:
        spec = load_study(study_file(grid))
        recommendation = recommend_json(Path(spec.data.train))
        others = [g for g in grids if g.study != grid.study]
        out[grid.study] = grid_starts(grid, others, recommendation=recommendation)
    return out

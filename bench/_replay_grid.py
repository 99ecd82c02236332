"""The tuner replay's ground truth: a trained grid read from its CSV (bench/tuner_grid_export.py).

Every point of a grid study was trained once, to the end, with its eval-loss curve; a `Grid`
answers what a trial with given parameters would have told Optuna. A hand-made CSV without the
export's `#` header line also loads: then the space is the values seen and the grid counts as
complete.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.study.space import Param

RESULT_COLUMNS = ("score", "eval_loss", "curve", "steps", "wall_s", "trial")
"""Every other column of the CSV is a searched parameter."""


def parse_value(text: str) -> int | float | str:
    """A CSV cell as the value Optuna saw: int, else float, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_curve(text: str) -> tuple[tuple[int, float], ...]:
    """`5:1.23;10:0.88` -> ((5, 1.23), (10, 0.88)), steps ascending."""
    pairs = (item.split(":") for item in text.split(";") if item.strip())
    return tuple(sorted((int(step), float(loss)) for step, loss in pairs))


@dataclass(frozen=True)
class Point:
    """One trained grid point: what a trial with these parameters would have told Optuna."""

    params: dict[str, Any]
    score: float
    curve: tuple[tuple[int, float], ...]
    """(step, eval_loss) in step order: the intermediate values the pruner sees."""
    steps: int
    wall_s: float = 0.0
    eval_loss: float | None = None
    trial: int | None = None
    """The grid study's trial number (the evidence reader names a study's best trial by it)."""


@dataclass(frozen=True)
class Grid:
    """The grid table: its points by parameter values, and the facts of the study it came from."""

    space: dict[str, list[Any]]
    points: dict[tuple[Any, ...], Point]
    direction: str = "maximize"
    max_steps: int = 0
    eval_steps: int = 0
    grid_size: int = 0
    """Points of the declared grid; more than len(points) while the grid is partial."""
    study: str = ""
    path: Path | None = None

    @property
    def complete(self) -> bool:
        return len(self.points) == self.grid_size

    @property
    def best_score(self) -> float:
        pick = max if self.direction == "maximize" else min
        return pick(p.score for p in self.points.values())

    @property
    def full_steps(self) -> int:
        """What running every present point to the end costs: the 100% budget."""
        return sum(p.steps for p in self.points.values())

    def lookup(self, params: dict[str, Any]) -> Point | None:
        """The trained point with exactly these values (None if the grid lacks it)."""
        return self.points.get(tuple(params[name] for name in self.space))

    def params(self) -> list[Param]:
        """The search space a replayed sampler gets: the grid's values, as categoricals."""
        return [Param(n, "categorical", choices=tuple(v)) for n, v in self.space.items()]

    def best_point(self) -> Point:
        """The grid's best trial as advisor's evidence reader picks a study's best
        (`stores.evidence._best_trial`): the best score; among ties, the lowest eval loss,
        then the earliest trial."""
        top = [p for p in self.points.values() if p.score == self.best_score]
        return min(top, key=lambda p: (_or_inf(p.eval_loss), _or_inf(p.trial)))


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def read_header(line: str) -> dict[str, str]:
    """The export's `# key=value ...` first line (the space is `name=a,b|name=c,d`)."""
    return dict(item.split("=", 1) for item in line.lstrip("#").split() if "=" in item)


def _space_from_header(text: str) -> dict[str, list[Any]]:
    space = {}
    for part in text.split("|"):
        name, values = part.split("=", 1)
        space[name] = [parse_value(v) for v in values.split(",")]
    return space


def _optional(row: dict[str, str], name: str, kind: type) -> Any:
    text = (row.get(name) or "").strip()
    return kind(float(text)) if text else None


def load_grid(path: Path) -> Grid:
    """Read the CSV that `tuner_grid_export.py` wrote (or a hand-made one without the header)."""
    lines = path.read_text().splitlines()
    header = read_header(lines[0]) if lines and lines[0].startswith("#") else {}
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    if not rows:
        raise SystemExit(f"{path}: no grid points")
    names = [c for c in rows[0] if c not in RESULT_COLUMNS]
    points = {}
    for row in rows:
        params = {n: parse_value(row[n]) for n in names}
        point = Point(
            params=params,
            score=float(row["score"]),
            curve=parse_curve(row["curve"]),
            steps=int(row["steps"]),
            wall_s=float(row.get("wall_s") or 0.0),
            eval_loss=_optional(row, "eval_loss", float),
            trial=_optional(row, "trial", int),
        )
        points[tuple(params.values())] = point
    if "space" in header:
        space = _space_from_header(header["space"])
    else:
        space = {n: sorted({p.params[n] for p in points.values()}, key=str) for n in names}
    curve_steps = sorted({s for p in points.values() for s, _ in p.curve})
    return Grid(
        space=space,
        points=points,
        direction=header.get("direction", "maximize"),
        max_steps=int(header.get("max_steps", max(p.steps for p in points.values()))),
        eval_steps=int(header.get("eval_steps", curve_steps[0] if curve_steps else 1)),
        grid_size=int(header.get("grid_size", math.prod(len(v) for v in space.values()))),
        study=header.get("study", path.stem),
        path=path,
    )

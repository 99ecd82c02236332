"""Export a bench grid study (studies/bench_grid*.yaml) from its Optuna storage to a CSV.

The tuner replay (bench/tuner_replay.py) scores samplers and pruners against this table instead
of training, so the table must carry everything a trial would have told Optuna: the parameters,
the final score, the eval-loss curve the pruner sees, and what the trial cost (steps, wall s).

One row per grid point with a COMPLETE trial (a point trained twice keeps its first complete
trial). A partial grid exports the points that are in and says how many of the grid's points
that is, in the file's first line (a `#` comment the replay reads) and on stdout.

Three grids, one per task, each trained in a project folder of its own (the study file and its
data copied there, so the checkout's mlruns/ stays clean), one at a time on the whole machine:

    D=$(mktemp -d) && cp studies/bench_grid_route.yaml $D && cp -r studies/data $D/data
    cd $D && nohup advisor tune bench_grid_route.yaml > tune.log 2>&1 &
    # when it is done (resumable: `advisor tune` again continues the grid):
    cd $D && python /path/to/checkout/bench/tuner_grid_export.py --study bench_grid_route.yaml

The CSV goes to bench/<task>_grid.csv of this checkout by default (`bench_grid` -> demo,
`bench_grid_route` -> route, `bench_grid_style` -> style).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STUDY = ROOT / "studies" / "bench_grid.yaml"
GRID_STUDY = "bench_grid"
"""The demo's grid study; `bench_grid_<task>` names the others."""
RESULT_COLUMNS = ("score", "eval_loss", "curve", "steps", "wall_s", "trial")
"""Every other column of the CSV is a searched parameter."""


@dataclass(frozen=True)
class GridExport:
    """What goes into the CSV: the header facts and one row per exported point."""

    study: str
    direction: str
    max_steps: int
    eval_steps: int
    space: dict[str, list[Any]]
    rows: list[dict[str, Any]]

    @property
    def grid_size(self) -> int:
        return math.prod(len(choices) for choices in self.space.values())

    def missing(self) -> list[dict[str, Any]]:
        """Grid points with no complete trial yet."""
        names = list(self.space)
        done = {tuple(row[n] for n in names) for row in self.rows}
        return [
            dict(zip(names, point, strict=True))
            for point in itertools.product(*self.space.values())
            if point not in done
        ]


def format_curve(curve: dict[int, float]) -> str:
    """`5:1.2345;10:0.8765`: the eval loss by training step, steps ascending."""
    return ";".join(f"{step}:{loss:.6g}" for step, loss in sorted(curve.items()))


def trial_row(trial: Any, names: Sequence[str], *, sign: float, max_steps: int) -> dict[str, Any]:
    """One CSV row of a COMPLETE trial. Optuna holds `sign * eval_loss` as intermediate values
    (tune feeds -eval_loss to a maximised study, so its pruner compares in the right direction);
    the CSV stores the eval loss itself."""
    curve = {int(step): sign * float(value) for step, value in trial.intermediate_values.items()}
    attrs = trial.user_attrs
    row = {name: trial.params[name] for name in names}
    row.update(
        score=trial.values[0],
        eval_loss=attrs.get("eval_loss"),
        curve=format_curve(curve),
        steps=max_steps,  # a complete trial of a study without pruning trains every step
        wall_s=round(float(attrs.get("wall_seconds") or 0.0), 1),
        trial=trial.number,
    )
    return row


def collect(study_file: Path, *, root: Path, storage: str | None) -> GridExport:
    """Read the grid study's complete trials (its search space from the study file)."""
    import optuna

    from advisor.stores.records import open_recorded_study
    from advisor.study import search_parameters

    recorded = open_recorded_study(str(study_file), storage=storage, root=root)
    spec = recorded.spec
    space = {p.name: list(p.choices) for p in search_parameters(spec)}
    maximise = recorded.study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    sign = -1.0 if maximise else 1.0
    complete = recorded.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for trial in sorted(complete, key=lambda t: t.number):
        key = tuple(trial.params[name] for name in space)
        if key not in rows:
            rows[key] = trial_row(trial, list(space), sign=sign, max_steps=spec.train.max_steps)
    return GridExport(
        study=spec.name,
        direction="maximize" if maximise else "minimize",
        max_steps=spec.train.max_steps,
        eval_steps=spec.train.eval_steps,
        space=space,
        rows=sorted(rows.values(), key=lambda r: tuple(space[n].index(r[n]) for n in space)),
    )


def header_line(export: GridExport) -> str:
    """The comment line the replay parses: `key=value` pairs, then the space."""
    space = "|".join(f"{n}={','.join(map(str, values))}" for n, values in export.space.items())
    return (
        f"# study={export.study} points={len(export.rows)} grid_size={export.grid_size} "
        f"direction={export.direction} max_steps={export.max_steps} "
        f"eval_steps={export.eval_steps} exported={dt.date.today().isoformat()} space={space}"
    )


def write_csv(export: GridExport, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = [*export.space, *RESULT_COLUMNS]
    with out.open("w", newline="") as handle:
        handle.write(header_line(export) + "\n")
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(export.rows)


def describe(export: GridExport, out: Path) -> Iterable[str]:
    complete = len(export.rows) == export.grid_size
    state = "complete" if complete else "PARTIAL"
    yield f"{out}: {len(export.rows)} of {export.grid_size} grid points ({state})"
    if export.rows:
        best = max(export.rows, key=lambda r: r["score"])
        if export.direction == "minimize":
            best = min(export.rows, key=lambda r: r["score"])
        params = ", ".join(f"{n}={best[n]}" for n in export.space)
        yield f"best score {best['score']:.4f} (trial {best['trial']}): {params}"
    for point in export.missing():
        yield "missing: " + ", ".join(f"{k}={v}" for k, v in point.items())


def default_out(study: str) -> Path:
    """bench/<task>_grid.csv: `bench_grid` is the demo's grid, `bench_grid_<task>` a task's."""
    task = study.removeprefix(GRID_STUDY).lstrip("_") or "demo"
    return ROOT / "bench" / f"{task}_grid.csv"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=DEFAULT_STUDY, help="the grid study file")
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="folder holding the study's mlruns/"
    )
    parser.add_argument("--storage", default=None, help="Optuna storage URL (else root's)")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/<task>_grid.csv")
    args = parser.parse_args(argv)
    export = collect(args.study, root=args.root, storage=args.storage)
    out = args.out or default_out(export.study)
    write_csv(export, out)
    for line in describe(export, out):
        print(line)


if __name__ == "__main__":
    main()

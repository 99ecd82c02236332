"""What a study's runs say at a glance: the study's outcome on its parent run, and the part of
a trial's wall time that no phase of the runner clocked.

MLflow's runs table shows one row per run with chosen columns; a parent run that carries only
the study's settings sends the reader into every child run to learn which won. `record` keeps
the answer on the parent's own row, updated as trials finish: metrics (best score, its gain over
the untuned baseline, the best trial's number, trials done, total cost) and the best trial's
parameters as `best.<name>` tags. Tags, not params: MLflow refuses to change a logged param,
and the best trial changes as the study runs. The names are in `advisor.stores.keys`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from runners.config import TrialResult

from . import keys

MAX_PARAM = 6000
"""MLflow refuses param (and long tag) values longer than this; longer values are cut."""


def flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    """A nested mapping as MLflow's flat `a.b` keys and string values (lists comma-joined)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list | tuple):
        out[prefix] = ",".join(str(v) for v in value)
    else:
        out[prefix] = str(value)


@dataclass
class Outcome:
    """A study's outcome so far, as its parent run shows it."""

    trials_done: int
    """Finished trials (complete, pruned or failed): the budget they used."""
    total_cost: float
    """Dollars of every finished trial (`cost_usd`)."""
    best_score: float | None = None
    gain: float | None = None
    """The best score's gain over the untuned baseline, in the metric's direction."""
    best_trial: int | None = None
    best_params: Mapping[str, Any] = field(default_factory=dict)


def record(client: MlflowClient, run_id: str, outcome: Outcome) -> None:
    """Log `outcome` on the parent run `run_id` (see the module docstring).

    The metrics are logged at step `trials_done`, so their history draws the study's progress;
    a `best.` tag the new best trial lacks is removed, so the tags never mix two trials.
    """
    now = int(time.time() * 1000)
    values = {
        keys.BEST_SCORE: outcome.best_score,
        keys.BEST_GAIN: outcome.gain,
        keys.BEST_TRIAL: outcome.best_trial,
        keys.TRIALS_DONE: outcome.trials_done,
        keys.TOTAL_COST: outcome.total_cost,
    }
    metrics = [
        Metric(k, float(v), now, outcome.trials_done) for k, v in values.items() if v is not None
    ]
    flat: dict[str, str] = {}
    flatten("", dict(outcome.best_params), flat)
    wanted = {f"{keys.BEST_PARAM}{k}": v[:MAX_PARAM] for k, v in flat.items()}
    current = client.get_run(run_id).data.tags
    for key in current:
        if key.startswith(keys.BEST_PARAM) and key not in wanted:
            client.delete_tag(run_id, key)
    tags = [RunTag(k, v) for k, v in wanted.items() if current.get(k) != v]
    client.log_batch(run_id, metrics=metrics, tags=tags)


def other_seconds(result: TrialResult) -> float:
    """The runner's wall time outside its clocked phases: reading the data, the trainer's
    set-up, saving the adapter (`keys.PHASE_SECONDS`). Derived rather than clocked a second
    time: the phases and the wall time are the runner's own timings, on one clock."""
    timed = (
        result.load_seconds
        + result.index_seconds
        + result.train_seconds
        + result.eval_loss_seconds
        + result.eval_seconds
        + result.forgetting_seconds
    )
    return max(0.0, result.wall_seconds - timed)

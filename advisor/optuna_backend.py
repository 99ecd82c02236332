"""Optuna, owned here: storage, sampler, pruner and study construction, and parameter suggestion.

Nothing else in advisor builds Optuna objects. The study file names a sampler and a pruner; the
registries below map those names to constructors, so a new one is one entry, not a new branch.

Why some choices:
- Storage is an `RDBStorage` with heartbeats: a worker killed mid-trial leaves a RUNNING trial
  that the next `optimize()` call fails (Optuna only reaps stale trials inside `optimize`).
- `create_study(load_if_exists=True)` does not check that the stored study has the same
  directions (NOTES.md); `open_study` does, and refuses a mismatch instead of mixing objectives.
- Samplers are seeded from the study seed, so the same study file replays the same sequence
  of parameters (CPU training is deterministic, so TPE sees the same history).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from advisor.errors import AdvisorInputError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


@dataclass(frozen=True)
class Param:
    """One searched parameter, as plain data (built from the study's search space)."""

    name: str
    kind: str  # categorical | float | int
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats; SQLite files and PostgreSQL URLs take the same path."""
    import optuna

    _quiet_optuna()
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                failed_trial_callback=None,
                engine_kwargs=_engine_kwargs(url),
            )
    except Exception as error:  # bad URL, unreachable server, missing driver
        raise AdvisorInputError(
            f"cannot open the Optuna storage {url!r}: {type(error).__name__}: {error}",
            where="storage",
            fix="use a sqlite:///path.db file or a reachable postgresql:// URL",
        ) from error


def _engine_kwargs(url: str) -> dict[str, Any]:
    # SQLite: wait for a lock instead of failing at once when the UI or a report reads it.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


def _quiet_optuna() -> None:
    import optuna

    # Optuna logs every failed trial with its traceback at WARNING; tune shows failures in its
    # own table and in MLflow (with the runner's log), so only errors get through.
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _grid_space(params: Sequence[Param]) -> dict[str, list[Any]]:
    space = {}
    for p in params:
        if p.kind != "categorical":
            raise AdvisorInputError(
                f"the grid sampler needs a finite list for {p.name!r}, got a {p.kind} range",
                where=f"search.{p.name}",
                fix="give a list of values, or use sampler: tpe or random",
            )
        space[p.name] = list(p.choices)
    return space


SamplerFactory = Callable[[Sequence[Param], int, int], "optuna.samplers.BaseSampler"]


def _tpe(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    import optuna

    # multivariate TPE models the interaction of r and alpha instead of treating them apart.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True)


def _random(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _grid(params: Sequence[Param], seed: int, n_startup: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.GridSampler(_grid_space(params), seed=seed)


SAMPLERS: Mapping[str, SamplerFactory] = {"tpe": _tpe, "random": _random, "grid": _grid}


def _median(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup, n_warmup_steps=eval_steps, interval_steps=1
    )


def _hyperband(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=eval_steps, max_resource=max_steps, reduction_factor=3
    )


def _nop(n_startup: int, max_steps: int, eval_steps: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


PRUNERS: Mapping[str, Callable[[int, int, int], optuna.pruners.BasePruner]] = {
    "median": _median,
    "hyperband": _hyperband,
    "none": _nop,
}


def make_sampler(
    name: str, params: Sequence[Param], *, seed: int, n_startup_trials: int
) -> optuna.samplers.BaseSampler:
    """The sampler named in the study file, seeded from the study seed."""
    if name not in SAMPLERS:
        raise AdvisorInputError(
            f"unknown sampler {name!r}", where="optuna.sampler", fix=f"one of {sorted(SAMPLERS)}"
        )
    return SAMPLERS[name](params, seed, n_startup_trials)


def make_pruner(
    name: str, *, n_startup_trials: int, max_steps: int, eval_steps: int
) -> optuna.pruners.BasePruner:
    """The pruner named in the study file. Intermediate values are eval losses (see tune)."""
    if name not in PRUNERS:
        raise AdvisorInputError(
            f"unknown pruner {name!r}", where="optuna.pruner", fix=f"one of {sorted(PRUNERS)}"
        )
    return PRUNERS[name](n_startup_trials, max_steps, eval_steps)


def open_study(
    *,
    name: str,
    storage: optuna.storages.BaseStorage,
    directions: Sequence[str],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    user_attrs: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """Create the study, or load it to continue; refuse when its objectives changed."""
    import optuna

    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=list(directions),
        load_if_exists=True,
    )
    stored = [d.name.lower() for d in study.directions]
    wanted = [d.lower() for d in directions]
    if stored != wanted:
        raise AdvisorInputError(
            f"study {name!r} already exists in the storage with directions {stored}, "
            f"but the study file asks for {wanted}",
            where="objectives",
            fix="give the study a new name, or restore the objectives it was created with",
        )
    for key, value in (user_attrs or {}).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study


def suggest(trial: optuna.Trial, params: Sequence[Param]) -> dict[str, Any]:
    """Ask the trial for every searched parameter."""
    values: dict[str, Any] = {}
    for p in params:
        if p.kind == "categorical":
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            values[p.name] = trial.suggest_int(
                p.name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
            )
        elif p.kind == "float":
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
        else:  # pragma: no cover - ParamSpec is validated upstream
            raise ValueError(f"unknown parameter kind {p.kind!r} for {p.name!r}")
    return values


def finished_count(study: optuna.Study) -> int:
    """Trials that need no rerun: complete, pruned or failed (failed ones are not retried)."""
    import optuna

    done = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    return len(study.get_trials(deepcopy=False, states=done))


def fail_stale_running(study: optuna.Study) -> list[int]:
    """Fail trials left RUNNING by a dead single worker (SQLite studies run one worker).

    With heartbeats Optuna does this itself inside `optimize()`, but only after the grace
    period; a user who pressed Ctrl-C and restarts at once should not wait two minutes.
    """
    import optuna

    numbers = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        numbers.append(t.number)
    return numbers

"""Optuna, owned here: storage, sampler, pruner and study construction, and parameter suggestion.

Nothing else in advisor builds Optuna objects. The study file names a sampler and a pruner; the
registries below map those names to constructors, so a new one is one entry, not a new branch.

Why some choices:
- Storage is an `RDBStorage` with heartbeats and a retry callback: a worker killed mid-trial
  stops beating, and the next worker that asks fails its trial and enqueues the same parameters
  again (see `advisor.coordination` for the loop that does this across workers).
- `create_study(load_if_exists=True)` does not check that the stored study has the same
  directions (NOTES.md); `open_study` does, and refuses a mismatch instead of mixing objectives.
- Samplers are seeded from the study seed, so the same study file replays the same sequence
  of parameters (CPU training is deterministic, so TPE sees the same history).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from advisor.errors import AdvisorInputError
from advisor.redact import redact_text, redact_url

if TYPE_CHECKING:  # pragma: no cover
    import optuna

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
MAX_RETRY = 2


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


def make_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_SECONDS,
    grace_period: int = GRACE_SECONDS,
    max_retry: int = MAX_RETRY,
) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats and retries; SQLite files and PostgreSQL URLs alike.

    A trial whose worker stops beating for `grace_period` s is failed by the next worker that
    asks, and retried with the same parameters up to `max_retry` times.
    """
    import optuna

    from advisor.tracking import make_sqlite_parent

    _quiet_optuna()
    make_sqlite_parent(url)
    attempts = 8
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
                    ),
                    engine_kwargs=_engine_kwargs(url),
                )
        except Exception as error:  # bad URL, unreachable server, missing driver
            if _lost_schema_race(error) and attempt < attempts - 1:
                time.sleep(0.5 + attempt * 0.5)  # the other process is creating the tables
                continue
            _refuse_storage(url, error)
    raise AssertionError("unreachable")  # pragma: no cover


def _lost_schema_race(error: Exception) -> bool:
    """Two workers opening a new database at once both create Optuna's tables; one loses with
    a duplicate-key error (PostgreSQL) or an IntegrityError from alembic (SQLite)."""
    text = f"{type(error).__name__} {error}"
    return "IntegrityError" in text or "already exists" in text or "UniqueViolation" in text


def _refuse_storage(url: str, error: Exception) -> NoReturn:
    raise AdvisorInputError(
        f"cannot open the Optuna storage {redact_url(url)!r}: {type(error).__name__}: "
        f"{redact_text(str(error), url)}",
        where="storage",
        fix="use a sqlite:///path.db file or a reachable postgresql:// URL "
        "(check host, port, user and password; `pg_isready -h HOST` tells)",
    ) from error


def _engine_kwargs(url: str) -> dict[str, Any]:
    # SQLite: wait for a lock instead of failing at once when the UI or a report reads it.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    if url.startswith("postgresql"):  # an unroutable host fails in seconds, not minutes
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
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

    class BudgetedGridSampler(optuna.samplers.GridSampler):
        """GridSampler without its `study.stop()` on the last point.

        That call is only legal inside `study.optimize()`; advisor's worker loop asks and tells
        (see `advisor.coordination`) and stops by its own budget, capped at the grid's size.
        """

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return BudgetedGridSampler(_grid_space(params), seed=seed)


def grid_size(params: Sequence[Param]) -> int:
    """Number of points of a grid search (every parameter a finite list)."""
    size = 1
    for choices in _grid_space(params).values():
        size *= len(choices)
    return size


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
    params: Sequence[Param] | None = None,
) -> optuna.Study:
    """Create the study, or load it to continue; refuse when its objectives or space changed."""
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
    if params is not None:
        check_same_space(study, params, record=True)
    for key, value in (user_attrs or {}).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study


SPACE_ATTR = "advisor.search_space"
"""Study user attribute: each searched parameter's distribution as Optuna's JSON."""


def _distribution(p: Param) -> optuna.distributions.BaseDistribution:
    import optuna

    if p.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(
            int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
        )
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def space_signature(params: Sequence[Param]) -> dict[str, str]:
    """The search space as {name: distribution JSON}: comparable across processes."""
    import optuna

    return {
        p.name: optuna.distributions.distribution_to_json(_distribution(p))
        for p in sorted(params, key=lambda p: p.name)
    }


def check_same_space(study: optuna.Study, params: Sequence[Param], *, record: bool = False) -> None:
    """Refuse a study file whose search space differs from the stored study's.

    Mixing two spaces in one study would feed the sampler trials it cannot compare (and a grid
    would never finish). The space recorded by advisor is compared when there is one, else the
    distributions of the stored trials (a study made by other tools). `record` stores the
    space on a study that has none yet.
    """
    import optuna

    wanted = space_signature(params)
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        for trial in study.get_trials(deepcopy=False):
            if not trial.distributions:
                continue
            seen = {
                k: optuna.distributions.distribution_to_json(v)
                for k, v in sorted(trial.distributions.items())
            }
            if seen != wanted:
                stored = seen
                break
    if stored is not None and stored != wanted:
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        raise AdvisorInputError(
            f"study {study.study_name!r} already exists in the storage with another search "
            f"space (differs in: {', '.join(changed)})",
            where="search",
            fix="give the study a new name (a new study), or restore the search space it was "
            "created with to continue it",
        )
    if record and SPACE_ATTR not in study.user_attrs:
        study.set_user_attr(SPACE_ATTR, wanted)


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

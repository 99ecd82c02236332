"""The Optuna storage: its construction, and creating, opening and listing the studies in it.

Why some choices:
- Storage is an `RDBStorage` with heartbeats and a retry callback: a worker killed mid-trial
  stops beating, and the next worker that asks fails its trial and enqueues the same parameters
  again (see `advisor.stores.coordination` for the loop that does this across workers).
- `create_study(load_if_exists=True)` does not check that the stored study has the same
  directions (NOTES.md); `open_study` does, and refuses a mismatch instead of mixing objectives.
- Optuna keeps the storage a study was opened on private (`Study._storage`); callers keep the
  storage they made here (`StudyPlan.storage()`, `RecordedStudy.storage`) and hand it to the
  coordination, which needs it for heartbeats, locks and retries.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import optuna

from advisor.errors import AdvisorInputError
from advisor.redact import redact_text, redact_url
from advisor.study.space import Param

from . import keys
from .creation import creating
from .sampling import space_signature

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
MAX_RETRY = 2


def make_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_SECONDS,
    grace_period: int = GRACE_SECONDS,
    max_retry: int = MAX_RETRY,
) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats and retries; SQLite files and PostgreSQL URLs alike.

    A trial whose worker stops beating for `grace_period` s is failed by the next worker that
    asks, and retried with the same parameters up to `max_retry` times. An embedded SQLite
    store is opened (and created) by one process at a time (`creation.creating`).
    """
    _quiet_optuna()
    attempts = 8
    for attempt in range(attempts):
        try:
            with creating(url), warnings.catch_warnings():
                # heartbeats are "experimental" since Optuna 2.9
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
        except AdvisorInputError:  # a half-built store, named by `creating`
            raise
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
    # Optuna logs every failed trial with its traceback at WARNING; tune shows failures in its
    # own table and in MLflow (with the runner's log), so only errors get through.
    optuna.logging.set_verbosity(optuna.logging.ERROR)


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
    names = metric_names(study.user_attrs)
    if names is not None and len(names) == len(study.directions) and study.metric_names != names:
        # Also names them on a study created before advisor did. Experimental since Optuna
        # 3.2 and unchanged since: the warning says nothing a user of advisor can act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def metric_names(attrs: Mapping[str, Any]) -> list[str] | None:
    """The objectives' names as Optuna viewers should show them, from the study's attributes.

    Without them optuna-dashboard, `trials_dataframe` and the Pareto plot say "Objective 0".
    The first objective is recorded as `score`: its name is the task metric's (`json_match`);
    the others (`wall_seconds`, `cost_usd`, ...) are named already. None for a study that
    advisor did not describe (no objectives recorded).
    """
    objectives = attrs.get(keys.OBJECTIVES)
    if not objectives:
        return None
    metric = str(attrs.get(keys.METRIC) or "score")
    return [metric if name == "score" else str(name) for name in objectives]


def check_same_space(study: optuna.Study, params: Sequence[Param], *, record: bool = False) -> None:
    """Refuse a study file whose search space differs from the stored study's.

    Mixing two spaces in one study would feed the sampler trials it cannot compare (and a grid
    would never finish). The space recorded by advisor is compared when there is one, else the
    distributions of the stored trials (a study made by other tools). `record` stores the
    space on a study that has none yet.
    """
    wanted = space_signature(params)
    stored = study.user_attrs.get(keys.SEARCH_SPACE)
    if stored is None:
        for trial in study.get_trials(deepcopy=False):
            if not trial.distributions:
                continue
            seen = {
                k: optuna.distributions.distribution_to_json(v)
                for k, v in sorted(trial.distributions.items())
            }
            # in a conditional space (a searched method) a trial samples the method and that
            # method's parameters only: a subset of the space, not another space
            subset = "method" in wanted and all(wanted.get(k) == v for k, v in seen.items())
            if seen != wanted and not subset:
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
    if record and keys.SEARCH_SPACE not in study.user_attrs:
        study.set_user_attr(keys.SEARCH_SPACE, wanted)


def load_study(
    name: str,
    storage: optuna.storages.BaseStorage,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study | None:
    """The stored study `name`, or None when the storage has no study of that name."""
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        return None


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of every study in the storage, in the order they were created."""
    return [study.study_name for study in sorted(storage.get_all_studies())]

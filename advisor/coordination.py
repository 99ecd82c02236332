"""How several workers share one Optuna study without losing, duplicating or haunting trials.

One study may be worked on by many processes on many machines (`advisor tune` once, then
`advisor worker` anywhere that reaches the same storage). Three things make that safe:

- **An ask lock.** "Is the study's trial budget spent? If not, ask for a trial" must be one step:
  two workers that both see 5 of 6 trials would both start a sixth, and two grid workers could
  both draw the last free grid point. The lock is a PostgreSQL advisory lock (server-side, so it
  spans machines) or an `flock` on a file beside a SQLite database (one machine, which is all a
  SQLite study supports). It is held for the ask only, never for a training run.
- **Heartbeats.** Each running trial records a heartbeat every `heartbeat_interval` seconds. A
  worker that dies (kill -9, a preempted machine) stops beating; the next worker that asks fails
  the trial once `grace_period` has passed and Optuna's retry callback enqueues the same
  parameters again. A restarted worker on the same machine does not wait for the grace period:
  trials whose recorded worker process is gone are failed at once (`fail_dead_local`).
- **A budget that counts retries once.** A trial that failed and was retried is replaced by its
  retry, so the budget counts trials that are not WAITING, minus failed trials that have a retry.

Optuna reaps stale trials only inside `study.optimize()`, whose `ask()` cannot be guarded by a
lock; `advisor.tune` therefore runs its own loop with these pieces (all public Optuna API:
`fail_stale_trials`, `record_heartbeat`, the retry callback).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import optuna

WORKER_ATTR = "advisor.worker"
"""Trial user attribute: `host:pid` of the worker process that runs the trial."""


def worker_id() -> str:
    """This process as workers name each other: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def rdb(storage: Any) -> Any:
    """The `RDBStorage` under Optuna's cache wrapper (`study._storage` is a `_CachedStorage`,
    which has neither the engine nor the heartbeat settings)."""
    return getattr(storage, "_backend", storage)


# -- the ask lock ---------------------------------------------------------------------------------
AskLock = Callable[[], contextlib.AbstractContextManager[None]]


def _lock_key(study_name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key; crc32 of the name is stable across machines.
    return 0x61647600000000 + zlib.crc32(study_name.encode())


def _postgres_lock(storage: Any, study_name: str) -> AskLock:
    import sqlalchemy

    key = _lock_key(study_name)

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        with storage.engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    return hold


def _sqlite_lock(storage: Any, study_name: str) -> AskLock:
    import fcntl

    database = storage.engine.url.database
    if not database or database == ":memory:":
        return _no_lock(storage, study_name)
    path = Path(f"{database}.{zlib.crc32(study_name.encode()):08x}.lock")

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return hold


def _no_lock(storage: Any, study_name: str) -> AskLock:
    # Other databases (MySQL, ...): Optuna's own row locking only; budgets may overshoot by one
    # trial per extra worker, and grid studies may repeat a point. Documented in the README.
    return contextlib.nullcontext


ASK_LOCKS: Mapping[str, Callable[[Any, str], AskLock]] = {
    "postgresql": _postgres_lock,
    "sqlite": _sqlite_lock,
}


def ask_lock(storage: Any, study_name: str) -> AskLock:
    """The lock that serialises budget checks and asks on this storage's backend."""
    storage = rdb(storage)
    engine = getattr(storage, "engine", None)
    dialect = engine.dialect.name if engine is not None else ""
    return ASK_LOCKS.get(dialect, _no_lock)(storage, study_name)


# -- heartbeats, reaping, retries ----------------------------------------------------------------
@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat now and every `heartbeat_interval` s until the block ends."""
    storage = rdb(storage)
    interval = getattr(storage, "heartbeat_interval", None)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried; never kill a trial
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"advisor-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _running(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))


def reap_stale(study: optuna.Study) -> list[int]:
    """Fail trials whose worker stopped beating (and enqueue their retries); their numbers."""
    import optuna

    before = {t.number for t in _running(study)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return sorted(before - {t.number for t in _running(study)})


def fail_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, retry: bool) -> bool:
    """Mark a RUNNING trial FAIL (and enqueue its retry); False if someone else finished it."""
    import optuna

    try:
        changed = study._storage.set_trial_state_values(
            trial._trial_id, state=optuna.trial.TrialState.FAIL
        )
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if changed and retry:
        enqueue_retry(study, trial)
    return bool(changed)


def enqueue_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Enqueue the same parameters again, through the storage's retry callback (max_retry)."""
    callback = study._storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, study._storage.get_trial(trial._trial_id))


def fail_dead_local(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker was a process on this machine that no longer exists.

    A worker restarted after a kill -9 or a crash need not wait out the heartbeat grace period
    for its own casualties. Trials of live or remote workers are left to heartbeats.
    """
    host = socket.gethostname()
    failed = []
    for trial in _running(study):
        owner = str(trial.user_attrs.get(WORKER_ATTR, ""))
        name, _, pid = owner.rpartition(":")
        dead = name == host and pid.isdigit() and not _pid_alive(int(pid))
        if dead and fail_trial(study, trial, retry=True):
            failed.append(trial.number)
    return failed


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of failed trials that a later trial retries."""
    retried: set[int] = set()
    for trial in trials:
        history = trial.system_attrs.get("retry_history") or []
        if history:
            retried.add(int(history[-1]))
    return retried


def budget_used(study: optuna.Study) -> int:
    """Trials that count against `n_trials`: started or finished, a retried failure once."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return sum(
        1
        for t in trials
        if t.state != optuna.trial.TrialState.WAITING
        and not (t.state == optuna.trial.TrialState.FAIL and t.number in retried)
    )


def running_elsewhere(study: optuna.Study) -> bool:
    """Whether trials of other workers are RUNNING (they may still die and need a retry)."""
    me = worker_id()
    return any(t.user_attrs.get(WORKER_ATTR) != me for t in _running(study))


def has_waiting(study: optuna.Study) -> bool:
    """Whether an enqueued trial (a retry, a rerun's fixed parameters) waits to be run."""
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))

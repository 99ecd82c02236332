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
lock; `advisor.tuning.session` therefore runs its own loop with these pieces, all public Optuna
API (`fail_stale_trials`, `record_heartbeat`, `get_heartbeat_stale_trial_callback`, the storage's
trial-id lookup) on the storage the study was opened with, never on the study's private one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from . import keys

Storage = optuna.storages.RDBStorage

STATES = {
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}
"""advisor's words for the trial states a finished trial is told with."""


def worker_id() -> str:
    """This process as workers name each other: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def dead_local(owner: str) -> bool:
    """Whether `owner` (`host:pid`) names a process of this machine that no longer exists."""
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


# -- the ask lock ---------------------------------------------------------------------------------
AskLock = Callable[[], contextlib.AbstractContextManager[None]]


def _lock_key(study_name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key; crc32 of the name is stable across machines.
    return 0x61647600000000 + zlib.crc32(study_name.encode())


def _postgres_lock(storage: Storage, study_name: str) -> AskLock:
    import sqlalchemy  # the PostgreSQL dialect only; Optuna brings it

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


def _sqlite_lock(storage: Storage, study_name: str) -> AskLock:
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


def _no_lock(storage: Storage, study_name: str) -> AskLock:
    # Other databases (MySQL, ...): Optuna's own row locking only; budgets may overshoot by one
    # trial per extra worker, and grid studies may repeat a point. Documented in the README.
    return contextlib.nullcontext


ASK_LOCKS: Mapping[str, Callable[[Storage, str], AskLock]] = {
    "postgresql": _postgres_lock,
    "sqlite": _sqlite_lock,
}


def ask_lock(storage: Storage, study_name: str) -> AskLock:
    """The lock that serialises budget checks and asks on this storage's backend."""
    engine = getattr(storage, "engine", None)
    dialect = engine.dialect.name if engine is not None else ""
    return ASK_LOCKS.get(dialect, _no_lock)(storage, study_name)


# -- asking and telling ---------------------------------------------------------------------------
def ask(study: optuna.Study) -> optuna.Trial:
    """A new trial (or the next enqueued one), marked as this worker's; call under `ask_lock`."""
    with warnings.catch_warnings():
        # "Heartbeat ... supposed to be used with Study.optimize": this module beats and reaps.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    trial.set_user_attr(keys.WORKER, worker_id())
    return trial


def trial_id(storage: Storage, study_name: str, number: int) -> int:
    """The storage's id of trial `number` (Optuna keeps `Trial._trial_id` private)."""
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


@contextlib.contextmanager
def running(study: optuna.Study, storage: Storage, trial: optuna.Trial) -> Iterator[None]:
    """The block runs the trial under a heartbeat; if it raises (Ctrl-C, SIGTERM, a bug), the
    trial is told FAIL and retried with the same parameters on the next start."""
    ident = trial_id(storage, study.study_name, trial.number)
    with heartbeat(storage, ident):
        try:
            yield
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            enqueue_retry(study, storage, storage.get_trial(ident))
            raise


def tell(study: optuna.Study, trial: optuna.Trial, state: str, values: Sequence[float]) -> None:
    """Record a finished trial: `complete` with its objective values, `pruned` or `failed`."""
    if state == "complete":
        study.tell(trial, list(values) if len(values) > 1 else values[0])
    else:
        study.tell(trial, state=STATES[state])


# -- heartbeats, reaping, retries ----------------------------------------------------------------
@contextlib.contextmanager
def heartbeat(storage: Storage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat now and every `heartbeat_interval` s until the block ends."""
    interval = storage.get_heartbeat_interval()
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


def running_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def reap_stale(study: optuna.Study) -> list[int]:
    """Fail trials whose worker stopped beating (and enqueue their retries); their numbers."""
    before = {t.number for t in running_trials(study)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return sorted(before - {t.number for t in running_trials(study)})


def fail_trial(study: optuna.Study, storage: Storage, trial: FrozenTrial, *, retry: bool) -> bool:
    """Mark a RUNNING trial FAIL (and enqueue its retry); False if someone else finished it."""
    ident = trial_id(storage, study.study_name, trial.number)
    try:
        changed = storage.set_trial_state_values(ident, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if changed and retry:
        enqueue_retry(study, storage, storage.get_trial(ident))
    return bool(changed)


def enqueue_retry(study: optuna.Study, storage: Storage, trial: FrozenTrial) -> None:
    """Enqueue the same parameters again, through the storage's retry callback (max_retry)."""
    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, trial)


def fail_dead_local(study: optuna.Study, storage: Storage) -> list[int]:
    """Fail RUNNING trials whose worker was a process on this machine that no longer exists.

    A worker restarted after a kill -9 or a crash need not wait out the heartbeat grace period
    for its own casualties. Trials of live or remote workers are left to heartbeats.
    """
    failed = []
    for trial in running_trials(study):
        owner = str(trial.user_attrs.get(keys.WORKER, ""))
        if dead_local(owner) and fail_trial(study, storage, trial, retry=True):
            failed.append(trial.number)
    return failed


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that a later trial retries."""
    retried: set[int] = set()
    for trial in trials:
        history = trial.system_attrs.get("retry_history") or []
        if history:
            retried.add(int(history[-1]))
    return retried


@dataclass(frozen=True)
class Budget:
    """How much of a study's trial budget is spent: the one count, for workers and the service.

    A trial that failed and was retried is replaced by its retry, so it counts once.
    """

    used: int
    """Trials started or finished (not WAITING): what `n_trials` limits."""
    finished: int
    """Trials that ended: complete, pruned or failed."""


def budget(trials: Sequence[Any]) -> Budget:
    """The budget spent by these trials (Optuna FrozenTrials)."""
    retried = retried_numbers(trials)
    counted = [t for t in trials if not (t.state == TrialState.FAIL and t.number in retried)]
    return Budget(
        used=sum(t.state != TrialState.WAITING for t in counted),
        finished=sum(t.state.is_finished() for t in counted),
    )


def budget_used(study: optuna.Study) -> int:
    """Trials that count against `n_trials`: started or finished, a retried failure once."""
    return budget(study.get_trials(deepcopy=False)).used


def running_elsewhere(study: optuna.Study) -> bool:
    """Whether trials of other workers are RUNNING (they may still die and need a retry)."""
    me = worker_id()
    return any(t.user_attrs.get(keys.WORKER) != me for t in running_trials(study))


def has_waiting(study: optuna.Study) -> bool:
    """Whether an enqueued trial (a retry, a rerun's fixed parameters) waits to be run."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

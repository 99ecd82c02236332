"""The pieces that let workers share a study: ask lock, heartbeats, reaping, retries, budget.

No training here: trials are asked and told directly, on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest

from advisor.errors import AdvisorInputError
from advisor.stores import coordination as co
from advisor.stores import keys
from advisor.stores.sampling import grid_size, make_pruner, make_sampler, suggest
from advisor.stores.storage import make_storage, open_study
from advisor.study.space import Param

# Optuna warns that heartbeats belong to optimize(); advisor's loop beats itself.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")

PARAMS = [
    Param("r", "categorical", choices=(2, 4, 8)),
    Param("learning_rate", "float", low=1e-4, high=1e-2, log=True),
]


def _study(url: str, name: str = "s", **storage_kwargs) -> tuple[optuna.Study, co.Storage]:
    """The study and the storage it was opened on (what workers hand to the coordination)."""
    storage = make_storage(url, **storage_kwargs)
    study = open_study(
        name=name,
        storage=storage,
        directions=["maximize"],
        sampler=make_sampler("random", PARAMS, seed=0, n_startup_trials=0),
        pruner=make_pruner("none", n_startup_trials=0, max_steps=1, eval_steps=1),
        params=PARAMS,
    )
    return study, storage


def _id(storage: co.Storage, study: optuna.Study, trial: optuna.Trial) -> int:
    return co.trial_id(storage, study.study_name, trial.number)


def _asked(study: optuna.Study, worker: str) -> optuna.Trial:
    trial = study.ask()
    suggest(trial, PARAMS)
    trial.set_user_attr(keys.WORKER, worker)
    return trial


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_local_worker_s_trial_is_failed_and_retried_others_are_not(stores) -> None:
    study, storage = _study(stores.optuna_url)
    host = socket.gethostname()
    dead = _asked(study, f"{host}:{_dead_pid()}")
    alive = _asked(study, co.worker_id())
    remote = _asked(study, "another-machine:1")

    assert co.fail_dead_local(study, storage) == [dead.number]
    trials = study.get_trials()
    assert [t.state.name for t in trials[:3]] == ["FAIL", "RUNNING", "RUNNING"]
    (retry,) = trials[3:]
    assert retry.state.name == "WAITING" and retry.params == trials[dead.number].params
    assert alive.number == 1 and remote.number == 2


def test_the_budget_counts_a_retried_failure_once(stores) -> None:
    study, storage = _study(stores.optuna_url)
    first = _asked(study, "x:1")
    study.tell(first, 1.0)
    second = _asked(study, "x:1")
    assert co.budget_used(study) == 2 and not co.has_waiting(study)

    study.tell(second, state=optuna.trial.TrialState.FAIL)
    co.enqueue_retry(study, storage, storage.get_trial(_id(storage, study, second)))
    # The failed trial is replaced by its waiting retry: 1 complete, nothing else counts yet.
    assert co.budget_used(study) == 1 and co.has_waiting(study)
    retry = study.ask()
    assert retry.params == study.trials[second.number].params
    assert co.budget_used(study) == 2 and not co.has_waiting(study)
    assert co.budget(study.get_trials()) == co.Budget(used=2, finished=1)


def test_max_retry_limits_the_retries(stores) -> None:
    study, storage = _study(stores.optuna_url, max_retry=1)
    trial = _asked(study, "x:1")
    for _ in range(3):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        co.enqueue_retry(study, storage, storage.get_trial(_id(storage, study, trial)))
        if not co.has_waiting(study):
            break
        trial = study.ask()
    states = [t.state.name for t in study.get_trials()]
    assert states == ["FAIL", "FAIL"]  # the original and one retry, then no more


def test_a_silent_trial_is_reaped_after_the_grace_period_a_beating_one_is_not(stores) -> None:
    study, storage = _study(stores.optuna_url, heartbeat_interval=1, grace_period=2)
    silent = _asked(study, "gone:1")
    with co.heartbeat(storage, _id(storage, study, silent)):
        pass  # one beat, then the worker "dies"
    beating = _asked(study, "here:1")
    with co.heartbeat(storage, _id(storage, study, beating)):
        time.sleep(3.5)
        assert co.reap_stale(study) == [silent.number]
    trials = study.get_trials()
    assert trials[silent.number].state.name == "FAIL"
    assert trials[beating.number].state.name == "RUNNING"
    assert trials[-1].state.name == "WAITING"
    assert trials[-1].params == trials[silent.number].params


def _lock_is_exclusive(study: optuna.Study, storage: co.Storage) -> None:
    """Two holders of the ask lock never overlap."""
    lock = co.ask_lock(storage, study.study_name)
    inside, overlaps = [], []

    def hold() -> None:
        with lock():
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            time.sleep(0.3)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps
    assert time.monotonic() - started >= 4 * 0.3 * 0.9  # they took turns


def test_the_sqlite_ask_lock_is_exclusive(stores) -> None:
    _lock_is_exclusive(*_study(stores.optuna_url))


def test_the_postgres_ask_lock_is_exclusive(postgres_url: str) -> None:
    study, storage = _study(postgres_url)
    assert co.ask_lock(storage, "s") is not contextlib.nullcontext  # an advisory lock
    _lock_is_exclusive(study, storage)


def test_workers_opening_a_new_postgres_database_at_once_all_succeed(postgres_url: str) -> None:
    # Each would create Optuna's tables; the losers of that race retry instead of failing.
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            make_storage(postgres_url)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_grid_is_asked_and_told_to_the_end_without_repeats(stores) -> None:
    grid = [Param("r", "categorical", choices=(2, 4)), Param("a", "categorical", (1, 2))]
    study = open_study(
        name="g",
        storage=make_storage(stores.optuna_url),
        directions=["minimize"],
        sampler=make_sampler("grid", grid, seed=0, n_startup_trials=0),
        pruner=make_pruner("none", n_startup_trials=0, max_steps=1, eval_steps=1),
        params=grid,
    )
    assert grid_size(grid) == 4
    seen = []
    for _ in range(4):
        trial = study.ask()
        values = suggest(trial, grid)
        seen.append((values["r"], values["a"]))
        study.tell(trial, 0.0)  # GridSampler's own stop() would raise outside optimize()
    assert sorted(seen) == [(2, 1), (2, 2), (4, 1), (4, 2)]


def test_a_study_with_another_search_space_is_refused(stores) -> None:
    _study(stores.optuna_url, name="space")
    other = [Param("r", "categorical", choices=(2, 4)), *PARAMS[1:]]
    with pytest.raises(AdvisorInputError, match=r"another search space.*\br\b"):
        open_study(
            name="space",
            storage=make_storage(stores.optuna_url),
            directions=["maximize"],
            sampler=make_sampler("random", other, seed=0, n_startup_trials=0),
            pruner=make_pruner("none", n_startup_trials=0, max_steps=1, eval_steps=1),
            params=other,
        )

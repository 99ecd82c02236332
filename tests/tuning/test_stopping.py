"""Ctrl-C and SIGTERM during tuning are requests, raised at a safe point (tuning.stopping)."""

from __future__ import annotations

import os
import signal

import pytest

from advisor.tuning import stopping
from advisor.tuning.stopping import Terminated

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")


def test_a_signal_is_recorded_and_stops_the_child_then_raised_at_check() -> None:
    stopped = []
    with stopping.deferred_signals(), stopping.stop_with(lambda: stopped.append(True)):
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, but nothing is raised here
        assert stopped == [True]
        with pytest.raises(Terminated):
            stopping.check()
    stopping.check()  # the request ends with the block


def test_ctrl_c_raises_at_check_and_a_second_one_at_once() -> None:
    with stopping.deferred_signals():
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt) as raised:
            stopping.check()
        assert not isinstance(raised.value, Terminated)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C


def test_a_stop_requested_before_the_child_existed_still_stops_it() -> None:
    stopped = []
    with stopping.deferred_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        with stopping.stop_with(lambda: stopped.append(True)):
            assert stopped == [True]


def test_handlers_are_restored_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with stopping.deferred_signals():
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before

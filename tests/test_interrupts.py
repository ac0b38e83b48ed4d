"""Interrupts held until a short write ends (``forecaster._interrupts``)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from forecaster._interrupts import raise_or_defer, uninterrupted
from forecaster.jobs.cli import Terminated, _signal_interrupts
from forecaster.tracking.records import log_metrics


class _Client:
    """An MLflow client whose ``log_batch`` gets a signal in the middle of its write."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        self.written: list[Any] = []

    def log_batch(self, run_id: str, metrics: list[Any]) -> None:
        os.kill(os.getpid(), self.signum)  # the handler runs here, in the main thread
        self.written.append((run_id, metrics))  # the rest of the write (its commit)


def test_a_sigterm_in_a_tracking_write_is_raised_after_the_write():
    """A SIGTERM that landed in the middle of MLflow's per-epoch ``log_batch`` (a SQLite
    transaction holding the database's write lock) raised ``Terminated`` there, leaving the
    lock held: the run's cleanups (the fit's error tag, the run ended KILLED) then waited on
    it for good, and ``forecaster run`` never exited. The write now ends first."""
    client = _Client()
    with pytest.raises(Terminated, match="SIGTERM"), _signal_interrupts():
        log_metrics(client, "run", ["m1", "m2"])
    assert client.written == [("run", ["m1", "m2"])]


def test_a_ctrl_c_in_a_tracking_write_is_raised_after_the_write_and_the_handler_put_back():
    """Ctrl-C under the command waits for the end of the write as SIGTERM does (Python's own
    handler raised it mid-transaction, with the same lock left held); Python's handler is
    back after the command."""
    client = _Client(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as raised, _signal_interrupts():
        log_metrics(client, "run", ["m1"])
    assert type(raised.value) is KeyboardInterrupt  # not a Terminated
    assert client.written == [("run", ["m1"])]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_interrupt_outside_a_write_is_raised_at_once_and_blocks_nest():
    with pytest.raises(KeyboardInterrupt, match="now"):
        raise_or_defer(KeyboardInterrupt("now"))
    steps = []
    with pytest.raises(KeyboardInterrupt, match="held"), uninterrupted():
        with uninterrupted():
            raise_or_defer(KeyboardInterrupt("held"))
            steps.append("inner")
        steps.append("outer")  # the inner block's end does not raise it: the outer one's does
    assert steps == ["inner", "outer"]
    with uninterrupted():  # nothing left over
        steps.append("again")

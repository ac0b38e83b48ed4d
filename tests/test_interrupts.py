"""Interrupts held until a short write ends (``forecaster._interrupts``)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from forecaster._interrupts import raise_or_defer, uninterrupted
from forecaster.jobs.cli import Terminated, _sigterm_interrupts
from forecaster.tracking.records import log_metrics


class _Client:
    """An MLflow client whose ``log_batch`` gets a SIGTERM in the middle of its write."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def log_batch(self, run_id: str, metrics: list[Any]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in the main thread
        self.written.append((run_id, metrics))  # the rest of the write (its commit)


def test_a_sigterm_in_a_tracking_write_is_raised_after_the_write():
    """A SIGTERM that landed in the middle of MLflow's per-epoch ``log_batch`` (a SQLite
    transaction holding the database's write lock) raised ``Terminated`` there, leaving the
    lock held: the run's cleanups (the fit's error tag, the run ended KILLED) then waited on
    it for good, and ``forecaster run`` never exited. The write now ends first."""
    client = _Client()
    with pytest.raises(Terminated, match="SIGTERM"), _sigterm_interrupts():
        log_metrics(client, "run", ["m1", "m2"])
    assert client.written == [("run", ["m1", "m2"])]


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

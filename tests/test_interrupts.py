"""Interrupts held until a short write ends (``forecaster._interrupts``)."""

from __future__ import annotations

import os
import signal
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ctrl_c_as_runs_are_created

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


class _CtrlCClient:
    """An MLflow client whose ``log_batch`` gets ``presses`` Ctrl-C (SIGINT) in its write."""

    def __init__(self, presses: int = 1) -> None:
        self.presses = presses
        self.written: list[Any] = []

    def log_batch(self, run_id: str, metrics: list[Any]) -> None:
        for _ in range(self.presses):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
        self.written.append((run_id, metrics))  # the rest of the write (its commit)


def test_a_ctrl_c_in_a_tracking_write_is_raised_after_the_write(python_sigint_handler):
    """Ctrl-C (Python's SIGINT handler) in the middle of MLflow's ``log_batch`` raised
    ``KeyboardInterrupt`` mid-transaction, as SIGTERM did: on a SQLite store the write lock
    stayed held, and the run's cleanups (error tag, run ended KILLED) each waited 20 s and
    failed with "database is locked" (1 in 4 to 7 interrupted writes). The write now ends
    first, and the handler is Python's own again afterwards."""
    client = _CtrlCClient()
    with pytest.raises(KeyboardInterrupt):
        log_metrics(client, "run", ["m1", "m2"])
    assert client.written == [("run", ["m1", "m2"])]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_in_a_tracking_write_raises_at_once(python_sigint_handler):
    """The user can still stop a write that hangs (a tracking server retrying)."""
    client = _CtrlCClient(presses=2)
    with pytest.raises(KeyboardInterrupt):
        log_metrics(client, "run", ["m1"])
    assert client.written == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with uninterrupted():  # nothing left over
        pass


def test_the_users_sigint_handler_runs_at_once_and_what_it_raises_waits():
    calls = []

    def handler(signum: int, frame: Any) -> None:
        calls.append(signum)
        raise RuntimeError("the user's interrupt")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        steps = []
        with pytest.raises(RuntimeError, match="the user's interrupt"), uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append(list(calls))
        assert steps == [[signal.SIGINT]]
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_no_handler_is_installed_outside_the_main_thread(python_sigint_handler):
    """``signal.signal`` from another thread raises ValueError: a tracking write in a worker
    thread changes nothing."""
    seen: list[Any] = []

    def write() -> None:
        with uninterrupted():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]


def _ctrl_c_after(function: Any) -> Any:
    """``function`` followed by a Ctrl-C (SIGINT): its handler runs as ``function`` returns,
    before the next step of its caller."""

    def then_ctrl_c(*args: Any) -> Any:
        result = function(*args)
        os.kill(os.getpid(), signal.SIGINT)
        return result

    return then_ctrl_c


def _ctrl_c_before(function: Any) -> Any:
    """``function`` preceded, on its first call only, by a Ctrl-C (SIGINT): its handler runs
    before ``function`` starts."""
    calls = []

    def ctrl_c_then(*args: Any) -> Any:
        if not calls:
            calls.append(args)
            os.kill(os.getpid(), signal.SIGINT)
        return function(*args)

    return ctrl_c_then


def test_a_ctrl_c_as_a_block_opens_leaves_the_users_handler(python_sigint_handler, monkeypatch):
    """A Ctrl-C right after the wrapper of the SIGINT handler was installed, before the block
    counted itself, raised KeyboardInterrupt out of the block's opening, which skipped the
    handler's restoring: the wrapper stayed the process's SIGINT handler for good
    (``signal.getsignal`` no longer gave the user's handler)."""
    import forecaster._interrupts as interrupts

    monkeypatch.setattr(interrupts, "_hold_sigint", _ctrl_c_after(interrupts._hold_sigint))
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        pass  # not reached: the Ctrl-C is raised as the block opens
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_as_a_block_closes_leaves_the_users_handler(python_sigint_handler, monkeypatch):
    """The same, for a Ctrl-C after the block's count went down, before the handler was put
    back; an interrupt the block held is still the one raised, and nothing is left held."""
    import forecaster._interrupts as interrupts

    let_go = interrupts._let_go  # the handler is put back in it: the Ctrl-C lands as it starts
    monkeypatch.setattr(interrupts, "_let_go", _ctrl_c_before(let_go))
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(interrupts, "_let_go", _ctrl_c_before(let_go))
    with pytest.raises(RuntimeError, match="held"), uninterrupted():
        raise_or_defer(RuntimeError("held"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with uninterrupted():  # nothing left over
        pass


class _AnyWriteClient:
    """An MLflow client each of whose writes gets a Ctrl-C (SIGINT) in its middle."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
            self.written.append(name)  # the rest of the write (its commit)
            return type("Run", (), {"info": type("Info", (), {"run_id": "r1"})})

        return write


def _writes() -> dict[str, Any]:
    from forecaster.tracking import studyrun, target

    return {
        "create_run": lambda c: target.create_run(None, c, "0", "run"),
        "log_param": lambda c: studyrun.claim_model(c, "r1", 3),
        "log_batch": lambda c: studyrun.release_claim(c, "r1", 3, "token"),
    }


@pytest.mark.parametrize("method", ["create_run", "log_param", "log_batch"])
def test_a_ctrl_c_in_a_run_creation_or_a_model_claim_waits_for_its_end(
    python_sigint_handler, method
):
    """A run's creation (a fit's, a study's), a study's model claim (a param) and the mark of
    a failed claim (a tag) were written without the hold the batched writes had: a Ctrl-C
    landed in their SQLite transaction. The write now ends first."""
    pytest.importorskip("mlflow")
    client = _AnyWriteClient()
    with pytest.raises(KeyboardInterrupt):
        _writes()[method](client)
    # a run created as the Ctrl-C came is ended (its caller never got it: see below)
    assert client.written == [method, "set_terminated"] if method == "create_run" else [method]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _create_trial_run(client: Any, experiment_id: str) -> None:
    optuna = pytest.importorskip("optuna")
    from forecaster.tracking.trialruns import log_trial

    trial = optuna.trial.create_trial(params={}, distributions={}, value=1.0)
    log_trial(client, experiment_id, "parent", SimpleNamespace(study_name="s"), trial, ("v", False))


@pytest.mark.parametrize("creator", ["create_run", "trial"])
def test_a_run_created_as_a_ctrl_c_comes_ends_killed(
    python_sigint_handler, monkeypatch, tmp_path, creator
):
    """A Ctrl-C in the write that creates a run (a fit's, a study's, a trial's) was held until
    the write ended, then raised before the caller had the run's ID: nothing ended the run,
    and it stayed RUNNING for good. It ends KILLED, then the interrupt goes on."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.tracking.target import create_run

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("e")
    ctrl_c_as_runs_are_created(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        if creator == "create_run":
            create_run(mlflow, client, experiment_id, "fit")
        else:
            _create_trial_run(client, experiment_id)
    runs = client.search_runs([experiment_id], run_view_type=mlflow.entities.ViewType.ALL)
    assert [run.info.status for run in runs] == ["KILLED"]
    # a trial's run is deleted too: the next log_study logs the trial whole
    assert [run.info.lifecycle_stage for run in runs] == [
        "deleted" if creator == "trial" else "active"
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_sigterm_while_the_first_is_held_raises_it_at_once():
    """A SIGTERM held by a block that waits (a run's outputs published, their MLflow logging
    against a tracking server that hangs) set SIGTERM to be ignored: a second SIGTERM (``kill``
    again, a scheduler's second try) could not stop the wait, though a second Ctrl-C could.
    It now raises the held one at once; one during the cleanups that follow is still
    ignored."""
    steps = []
    with pytest.raises(Terminated, match="SIGTERM"), _sigterm_interrupts():
        try:
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("held")
                os.kill(os.getpid(), signal.SIGTERM)  # stops the wait
                steps.append("not stopped")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # while it unwinds: ignored
            steps.append("cleanups")
    assert steps == ["held", "cleanups"]


def test_a_sigterm_held_to_the_end_of_a_block_is_raised_once():
    """Held to the end of the block, the SIGTERM is raised there; another one during the
    cleanups that follow is ignored."""
    steps = []
    with pytest.raises(Terminated, match="SIGTERM"), _sigterm_interrupts():
        try:
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("held")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # while it unwinds: ignored
            steps.append("cleanups")
    assert steps == ["held", "cleanups"]

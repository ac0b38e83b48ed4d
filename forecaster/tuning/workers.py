"""The worker processes of ``tune(n_workers=N)``, and the trial loop in this process or in them.

Each worker is a ``spawn``-ed process of its own (``multiprocessing.Process``, no pool: a pool
breaks as a whole when one of its processes dies, and ends the healthy ones with it). A worker
killed mid-trial (``kill -9``, the kernel's OOM killer) leaves its trial RUNNING; the other
workers go on, and the one that finds the trial stale after the storage's grace period fails it
and runs it again (Optuna's heartbeat and retry callback: :func:`run_trials`). The caller warns
which worker died, with its exit code or signal; when all of them died it raises.

A worker ends with its caller: a thread waits on the caller's process sentinel and ends the
worker when the caller is gone (killed, or ended without a chance to stop them); its RUNNING
trial is failed by the heartbeat, and retried by the next run. A caller interrupted (Ctrl-C,
``SIGTERM`` under the command line) terminates its workers itself before it re-raises.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
from multiprocessing.connection import wait
from typing import Any

from forecaster.exceptions import ForecasterError, ForecasterWarning, warn_at_caller
from forecaster.training import progress_enabled
from forecaster.training.progress import ProgressBar
from forecaster.tuning.common import import_optuna, reason
from forecaster.tuning.storage import await_running_trials, is_storage_error
from forecaster.tuning.trials import (
    TrialSettings,
    available_cores,
    make_sampler,
    run_trials,
    trial_counts,
)

__all__ = ["ORPHAN_EXIT_CODE", "optimize", "run_workers", "worker_main"]

ORPHAN_EXIT_CODE = 75
"""The exit code of a worker process that ended because its caller was gone."""

_STOP_GRACE = 10.0
"""Seconds a worker has to end after ``SIGTERM`` (its caller was interrupted) before
``SIGKILL``."""


def worker_main(settings: TrialSettings, index: int) -> int:
    """Entry point of a worker process: run trials of the shared study; the number of trials
    added to the study meanwhile."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, available_cores() // settings.n_workers))
    optuna = import_optuna()
    study = optuna.load_study(
        study_name=settings.study_name,
        storage=settings.storage,
        sampler=make_sampler(settings.random_state),
        pruner=settings.pruner,
    )
    before = len(study.get_trials(deepcopy=False))
    run_trials(
        study, settings.objective, settings.n_trials, settings.deadline, settings.callbacks,
        ignore=settings.unjudged, storage=settings.storage,
    )  # fmt: skip
    return len(study.get_trials(deepcopy=False)) - before


def _end_with_parent() -> None:
    """A daemon thread of a worker: end the process (:data:`ORPHAN_EXIT_CODE`) once its
    parent is gone. Nothing more of it runs: its RUNNING trial is failed by the heartbeat."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a child of multiprocessing
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(ORPHAN_EXIT_CODE)

    threading.Thread(target=watch, name="forecaster-parent-watch", daemon=True).start()


def _worker_process(settings: TrialSettings, index: int, conn: Any) -> None:
    """What a worker process runs: :func:`worker_main`, its outcome sent to the caller through
    ``conn`` (``("ok", trials)`` or ``("error", exception)``)."""
    _end_with_parent()
    try:
        message: tuple[str, Any] = ("ok", worker_main(settings, index))
    except BaseException as exc:  # the caller raises it (an interrupt too)
        message = ("error", exc)
    try:
        pickle.loads(pickle.dumps(message))  # what the caller's recv would unpickle
    except Exception:  # an exception that does not pickle, or not back: its text
        message = ("error", ForecasterError(f"{type(message[1]).__name__}: {message[1]}"))
    try:
        conn.send(message)
    finally:
        conn.close()


_EXIT_HINT = (
    " A worker that ended with an exit code (not a signal) failed before it could report: its "
    "traceback is on stderr. The workers are spawned, so each imports the script that calls "
    'tune again: guard that call with if __name__ == "__main__":, and define what tune '
    "receives (estimator class, metric, callbacks) in a module the workers can import."
)
"""What a warning or error about dead workers adds when one of them exited with a code."""


def _exit_text(exitcode: int | None) -> str:
    """How a process ended: ``"killed by signal 9 (SIGKILL)"``, ``"exit code 1"``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-exitcode} ({name})"
    return f"exit code {exitcode}"


def _stop(processes: list[Any]) -> None:
    """Terminate the worker processes still running (``SIGTERM``, then ``SIGKILL`` after
    :data:`_STOP_GRACE` seconds) and join them."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(_STOP_GRACE)
        if process.is_alive():
            process.kill()
            process.join()


def run_workers(settings: TrialSettings) -> None:
    """Run the trials in ``settings.n_workers`` worker processes and wait for them.

    A worker's exception is raised here (the first one); a worker that died without one
    (killed) is a :class:`~forecaster.exceptions.ForecasterWarning` naming it and how it
    ended, while the others go on; when every worker died, a
    :class:`~forecaster.exceptions.ForecasterError`. Interrupted (Ctrl-C, ``SIGTERM`` under
    the command line), the workers are terminated before the interrupt is raised again."""
    n = settings.n_workers
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = []
    conns: list[Any] = []
    try:
        for index in range(n):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker_process,
                args=(settings, index, send),
                name=f"forecaster-tune-worker-{index}",
            )
            process.start()
            send.close()  # the worker holds the other end: closed when it ends
            processes.append(process)
            conns.append(receive)
        outcomes: dict[int, tuple[str, Any]] = {}
        while len(outcomes) < n:
            ready: list[Any] = wait([c for i, c in enumerate(conns) if i not in outcomes])
            for conn in ready:
                index = conns.index(conn)
                try:
                    outcomes[index] = conn.recv()
                except EOFError:  # ended without a word: killed
                    outcomes[index] = ("died", None)
        for process in processes:
            process.join()
    finally:
        _stop(processes)
        for conn in conns:
            conn.close()
    _report(settings, processes, outcomes)


def _report(settings: TrialSettings, processes: list[Any], outcomes: dict[int, Any]) -> None:
    """Raise the first worker's error, or warn of (raise, when all died) the dead workers."""
    errors = [value for kind, value in outcomes.values() if kind == "error"]
    if errors:
        first = errors[0]
        if isinstance(first, ForecasterError | KeyboardInterrupt) or is_storage_error(first):
            raise first  # a storage error is reported by tune (see storage_errors)
        raise ForecasterError(
            f"A tuning worker process failed ({reason(first)}); {len(errors)} of "
            f"{len(processes)} workers failed. The finished trials are kept in the storage: "
            "rerun the same call to resume."
        ) from first
    dead = [
        f"worker {index} (pid {process.pid}, {_exit_text(process.exitcode)})"
        for index, process in enumerate(processes)
        if outcomes[index][0] == "died"
    ]
    exited = any(
        outcomes[index][0] == "died" and (process.exitcode or 0) > 0
        for index, process in enumerate(processes)
    )
    hint = _EXIT_HINT if exited else ""
    if len(dead) == len(processes):
        raise ForecasterError(
            f"Every tuning worker process died without an error of its own (killed, e.g. by the "
            f"kernel's OOM killer): {', '.join(dead)}. The finished trials are kept in the "
            "storage: rerun the same call to resume (a trial a worker was running is failed "
            "after the storage's grace period and run again), with fewer n_workers if memory "
            f"ran out.{hint}"
        )
    if dead:
        warn_at_caller(
            f"{len(dead)} of {len(processes)} tuning worker processes died: {', '.join(dead)}. "
            "The other workers went on: a trial a dead worker was running is failed after the "
            "storage's grace period and run again. If the kernel's OOM killer ended it, use "
            f"fewer n_workers.{hint}",
            ForecasterWarning,
        )


def optimize(study: Any, settings: TrialSettings) -> Any:
    """Run the trials in this process or in worker processes; the study afterwards."""
    if settings.n_workers > 1:
        run_workers(settings)
        optuna = import_optuna()
        study = optuna.load_study(
            study_name=settings.study_name,
            storage=settings.storage,
            sampler=study.sampler,
            pruner=settings.pruner,
        )
        await_running_trials(study, settings.storage, settings.unjudged)  # a dead worker's
        return study
    bar = ProgressBar(
        total=settings.n_trials,
        initial=trial_counts(study)[0],
        description=settings.study_name,
        enabled=progress_enabled(settings.show_progress),
        unit="trial",
    )
    try:
        run_trials(
            study, settings.objective, settings.n_trials, settings.deadline, settings.callbacks,
            bar, settings.unjudged, settings.storage,
        )  # fmt: skip
    finally:
        bar.close()
    return study

"""Blocks that change how the fits inside them are logged: :func:`paused` (not logged, e.g.
tuning trials) and :func:`deferred` (the end of a fit logged when the block ends, e.g. after
``calibrate``); :func:`defer` is how a fit's logging (and a study's best model) takes part.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from forecaster.training.callbacks import call_in_turn, without_default_callbacks

__all__ = ["defer", "deferred", "paused"]

_deferral = threading.local()
"""``pending``: the ``(log, fail, stop, failed)`` calls of the fits of this thread that ended
inside a :func:`deferred` block (and of what else :func:`defer` was given), made when it ends
(None outside one)."""

_Pending = tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any], Callable[[], Any]]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Within this block fits are not logged, neither by
    :func:`~forecaster.tracking.runs.autolog` nor by a :class:`~forecaster.tracking.runs.FitLogger`
    passed to ``fit`` (e.g. the fits of tuning trials), in every thread of the process.

    It is the training layer's block of the library's own fits,
    :func:`~forecaster.training.callbacks.without_default_callbacks` (``every_thread=True``:
    no callbacks of ``autolog()``'s factory), and a ``FitLogger`` does not log while one is
    open (:func:`~forecaster.training.callbacks.default_callbacks_withheld`). So the
    callbacks of every factory registered with
    :func:`~forecaster.training.callbacks.register_fit_callback` are withheld too, from the
    fits of every thread while the block lasts (a fit in another thread at the same time gets
    none either).

    Examples
    --------
    >>> with paused():
    ...     pass
    """
    with without_default_callbacks(every_thread=True):
        yield


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within this block, a logged fit of this thread logs its end - the final metrics, the
    forecast plot and the model - when the block ends, not when the fit ends: what the block
    does to the fitted estimator after its fit is in the logged model (e.g. ``calibrate``,
    without which the logged model refuses ``params={"level": [...]}``).

    Its parameters and per-epoch metrics are logged live as always, and ``fit_seconds`` is
    the fit's own time; :func:`last_fit` says what it logged once the block has ended. When
    the block raises an exception, the fits that ended in it are logged as they are then
    (they did complete; a fit that raised, also from a callback's ``on_fit_end`` after the
    logger's, was rolled back: it is not logged, and its own run ends FAILED), and a study's
    run ends FAILED (see :func:`defer`); after a ``KeyboardInterrupt`` (or another
    ``BaseException``) they are not, a fit's own run ends FAILED and a study's KILLED. A
    ``KeyboardInterrupt`` while the end of one of them is logged stops the logging: that
    fit, and each fit after it not logged yet, is handled as an interrupted fit (its own run
    ends KILLED, its model and what was not logged go to a fallback folder, a warning says
    so), and the interrupt goes on. A block inside another one changes nothing: the outer
    block logs its fits. Fits of other threads are logged as usual.

    Examples
    --------
    >>> with deferred():  # model.fit(frame); model.calibrate(frame): the model logged calibrated
    ...     pass
    """
    if getattr(_deferral, "pending", None) is not None:  # nested: the outer block logs
        yield
        return
    pending: list[_Pending] = []
    _deferral.pending = pending
    log = raised = False
    try:
        yield
        log = True
    except Exception:
        log = raised = True  # the fits completed: log them as they are
        raise
    finally:
        _deferral.pending = None
        if log:  # each log call; after Ctrl-C in one, the stop calls of those after it
            calls = [(failed if raised else finish, stop) for finish, _, stop, failed in pending]
            call_in_turn(calls)
        else:
            for _, fail, _, _ in pending:
                fail()


def defer(
    log: Callable[[], Any],
    fail: Callable[[], Any] = lambda: None,
    stop: Callable[[], Any] | None = None,
    failed: Callable[[], Any] | None = None,
) -> bool:
    """Inside a :func:`deferred` block of this thread, keep ``log`` to be called when the
    block ends and return True; outside one, return False (the caller logs now). ``fail``
    is called instead after a ``KeyboardInterrupt`` in the block, ``stop`` (default
    ``fail``) after one while an earlier ``log`` of the block ran, ``failed`` (default
    ``log``: a fit that completed is logged as it is) after an exception in the block. What
    a fit logs at its end goes through it, and so does the best model of a tuning study
    (``tune(track=True)``), so that a block that calibrates the model logs it calibrated;
    the study's run ends FAILED when the block failed (``forecaster tune`` could not save
    the model), KILLED when it was interrupted."""
    pending = getattr(_deferral, "pending", None)
    if pending is None:
        return False
    pending.append((log, fail, fail if stop is None else stop, log if failed is None else failed))
    return True

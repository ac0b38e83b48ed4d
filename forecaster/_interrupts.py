"""Interrupts that wait for the end of a short write: a ``SIGTERM`` or a Ctrl-C raised as an
exception in the middle of an MLflow database write (SQLite: a transaction holding the file's
write lock) left the lock held, so the cleanups that follow (the fit's error tag, the run ended
KILLED) waited on it (20 s each, then failed with "database is locked"; the next write of the
process too).

:func:`uninterrupted` marks such a write (in the main thread, where signal handlers run); a
handler that calls :func:`raise_or_defer` raises its exception at once outside one, and at the
block's end inside one. Within the block, ``SIGINT``'s handler (Python's own, which raises
``KeyboardInterrupt``, or the user's) is wrapped so that it does: the user's Ctrl-C interrupts
right after the write. A second interrupt during the same write raises the first at once
(a write that hangs, a tracking server retrying, can still be stopped).

An interrupt can land between any two steps of opening or closing a block: after the wrapper
is installed and before the block counts itself, or after the count went down and before the
handler is put back. Raised there, it skips the rest of the block's own code, so
:func:`raise_or_defer` puts the handler back itself whenever it raises with no block open:
the wrapper is never left as the process's ``SIGINT`` handler (``signal.getsignal`` gives the
user's; asyncio checks it).
"""

from __future__ import annotations

__all__ = ["raise_or_defer", "uninterrupted"]

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_Handler = Callable[[int, FrameType | None], Any]


class _Deferred:
    """The main thread's open :func:`uninterrupted` blocks, the interrupt they hold, and the
    ``SIGINT`` wrapper installed for them with the handler it wraps (None: none is)."""

    depth = 0
    pending: BaseException | None = None
    held: tuple[_Handler, _Handler] | None = None


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Within the block (of the main thread: elsewhere nothing changes, and no handler is
    installed), an interrupt raised through :func:`raise_or_defer`, or by the ``SIGINT``
    handler (Ctrl-C), is raised when the outermost block ends, not inside it; a second one
    before then raises the first at once.

    Examples
    --------
    >>> with uninterrupted():
    ...     raise_or_defer(RuntimeError("later"))  # held until the block ends
    ...     done = True
    Traceback (most recent call last):
    RuntimeError: later
    >>> done
    True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _Deferred.depth == 0:
        _hold_sigint()
    _Deferred.depth += 1
    try:
        yield
    finally:
        _Deferred.depth -= 1
        if _Deferred.depth == 0:
            pending, _Deferred.pending = _Deferred.pending, None
            try:
                _let_go()
            finally:  # the held interrupt, even where another one landed in _let_go
                if pending is not None:
                    raise pending


def raise_or_defer(interrupt: BaseException) -> None:
    """Raise ``interrupt`` (from a signal handler: in the main thread), or hold it until the
    open :func:`uninterrupted` block ends; an interrupt already held is raised at once instead
    (the second interrupt of one write stops the wait). Raised with no block open (one
    opening or closing), it puts back the ``SIGINT`` handler the block wrapped first."""
    if _Deferred.depth and _Deferred.pending is None:
        _Deferred.pending = interrupt
        return
    if _Deferred.depth == 0:
        _let_go()
    pending, _Deferred.pending = _Deferred.pending, None
    raise interrupt if pending is None else pending


def _hold_sigint() -> None:
    """Wrap the ``SIGINT`` handler so that what it raises goes through :func:`raise_or_defer`
    (the wrapper and the handler it wraps: ``_Deferred.held``); nothing where there is no
    Python handler to wrap (``SIG_IGN``, ``SIG_DFL``: no exception is raised) or it cannot be
    replaced."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        return

    def held(signum: int, frame: FrameType | None) -> None:
        try:
            handler(signum, frame)
        except BaseException as interrupt:  # raised now, or at the block's end
            raise_or_defer(interrupt)

    _Deferred.held = held, handler  # before it is installed: an interrupt then can undo it
    try:
        signal.signal(signal.SIGINT, held)
    except ValueError:  # not the main interpreter: Python cannot set a handler here
        _Deferred.held = None


def _let_go() -> None:
    """Put back the handler ``_Deferred.held`` wraps as ``SIGINT``'s (unless the block
    replaced the wrapper with another handler); nothing when none is held."""
    if _Deferred.held is None:
        return
    held, handler = _Deferred.held
    if signal.getsignal(signal.SIGINT) is held:
        signal.signal(signal.SIGINT, handler)
    _Deferred.held = None

"""Interrupts that wait for the end of a short write: a ``SIGTERM`` raised as an exception in
the middle of an MLflow database write (SQLite: a transaction holding the file's write lock)
left the lock held, so the cleanups that follow (the fit's error tag, the run ended KILLED)
waited on it for good.

:func:`uninterrupted` marks such a write (in the main thread, where signal handlers run); a
handler that calls :func:`raise_or_defer` raises its exception at once outside one, and at
the block's end inside one.
"""

from __future__ import annotations

__all__ = ["raise_or_defer", "uninterrupted"]

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Deferred:
    """The main thread's open :func:`uninterrupted` blocks and the interrupt they hold."""

    depth = 0
    pending: BaseException | None = None


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Within the block (of the main thread: elsewhere nothing changes), an interrupt raised
    through :func:`raise_or_defer` is raised when the outermost block ends, not inside it.

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
    _Deferred.depth += 1
    try:
        yield
    finally:
        _Deferred.depth -= 1
        if _Deferred.depth == 0 and _Deferred.pending is not None:
            pending, _Deferred.pending = _Deferred.pending, None
            raise pending


def raise_or_defer(interrupt: BaseException) -> None:
    """Raise ``interrupt`` (from a signal handler: in the main thread), or hold it until the
    open :func:`uninterrupted` block ends."""
    if _Deferred.depth:
        _Deferred.pending = interrupt
        return
    raise interrupt

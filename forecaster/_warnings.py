"""Forecaster's one way to change the warning filters for a block: :func:`catching_warnings`.

``warnings.catch_warnings()`` saves the process's one list of warning filters (and
``warnings.showwarning``) when a block starts and puts the saved ones back when it ends (Python
3.11: there is no per-thread list). Two such blocks in two threads that overlap undo each other:
the one that ends last puts back the list the other changed, e.g. a leftover ``"ignore"`` filter
that silences every later warning of the process. Forecaster first avoids needing a filter
(``np.errstate`` for NumPy's floating-point warnings, which is per thread; arguments that keep a
library from warning; :func:`forecaster.exceptions.silenced` for its own warnings); the
blocks left, for other libraries' warnings, use :func:`catching_warnings`, which never lets two
of them overlap.
"""

from __future__ import annotations

__all__ = ["catching_warnings"]

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal, overload

_LOCK = threading.RLock()
"""Held by every open :func:`catching_warnings` block (reentrant: a block may nest another)."""


def _unlock_in_child() -> None:
    """A new lock in a process forked while another thread held the old one (the child has
    only the forking thread, so nothing would ever release it there)."""
    global _LOCK
    _LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_unlock_in_child)


@overload
def catching_warnings(*, record: Literal[False] = False) -> AbstractContextManager[None]: ...
@overload
def catching_warnings(
    *, record: Literal[True]
) -> AbstractContextManager[list[warnings.WarningMessage]]: ...


def catching_warnings(
    *, record: bool = False
) -> AbstractContextManager[list[warnings.WarningMessage] | None]:
    """``warnings.catch_warnings(record=record)``, serialised process-wide: a block of this
    function in another thread waits until this one has ended, so that no two of them save and
    restore the filters out of order. Keep the blocks short (one call of another library).

    What it cannot prevent: the filters the block sets are the process's while it runs, so a
    warning that another thread raises meanwhile may be filtered (or, with ``record=True``,
    recorded) by it; and a ``catch_warnings`` block that is not forecaster's (the user's,
    another library's) overlapping it in another thread can still undo it or be undone.

    Parameters
    ----------
    record : bool, default False
        As ``warnings.catch_warnings``: the block yields the list the warnings go to.

    Examples
    --------
    >>> with catching_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     warnings.warn("not shown", DeprecationWarning)
    >>> with catching_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("recorded")
    >>> [str(w.message) for w in caught]
    ['recorded']
    """
    return _serialised(record)


@contextmanager
def _serialised(record: bool) -> Iterator[list[warnings.WarningMessage] | None]:
    with _LOCK, warnings.catch_warnings(record=record) as caught:
        yield caught

"""The lock that serialises the writers of a pipeline's outputs or model folder: the file
``.<name>.lock`` beside it (:func:`output_lock`), exclusive for a writer, shared for a rerun
that only reads outputs it cannot write."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import forecaster._io as _io
from forecaster.jobs.entries import existing_file

__all__ = ["output_lock"]


def _lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def output_lock(
    destination: Path,
    wait: float | None,
    what: str,
    log: Callable[[str], None] | None = None,
    *,
    shared: bool = False,
    hint: str | None = None,
) -> contextlib.AbstractContextManager[None]:
    """The lock that serialises the writers of ``destination`` (a run's outputs, a model): the
    file ``.<name>.lock`` beside it, held for the block (see
    :func:`forecaster._io.exclusive_lock`). ``wait``: seconds (None: as long as it takes);
    ``log``: where a wait is told (default: the lock's logger); ``shared``: a reader's lock,
    for a folder this user cannot write (see :func:`forecaster._io.shared_lock`).
    ``hint``: what the error of a lock held beyond it says to do (None: pass ``--wait``).

    Raises
    ------
    OwnershipError
        A link, a folder or a special file at the lock's path (not a lock file it made).
    ConcurrentRunError
        When another process holds the lock beyond ``wait``.
    """
    lock_file = _lock_file(destination)
    existing_file(
        lock_file,
        "a lock file forecaster made (forecaster never follows a link there)",
        "Remove it, then run again.",
        action="use the lock file",
    )
    return (_io.shared_lock if shared else _io.exclusive_lock)(
        lock_file,
        timeout=wait,
        what=what,
        hint=hint
        or "Wait for it to finish, or pass --wait [SECONDS] (after the spec path) to queue "
        "behind it.",
        log=log,
    )

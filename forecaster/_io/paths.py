"""Paths, names and locks: what every other module of :mod:`forecaster._io` builds on.

- :func:`as_path`: a path argument is a ``str`` or ``os.PathLike``, never empty, without NUL
  characters; anything else is a :class:`~forecaster.exceptions.DataValidationError` naming the
  argument.
- :func:`new_name`: the random names of temporary files and staging folders (see
  :func:`~forecaster._io.atomic.temporary_files` and
  :func:`~forecaster._io.publishing.remove_staging`, which recognise exactly them).
- :func:`fsync_directory`: flush a folder's renames to disk.
- :func:`exclusive_lock`: one writer at a time for a key (a pipeline run of one spec and as-of
  date), on an operating-system lock that dies with its process (``filelock``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import reprlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forecaster.exceptions import ConcurrentRunError, DataValidationError, ForecasterError

__all__ = [
    "OWNER",
    "STAGING_MARKER",
    "STAGING_PREFIX",
    "TOKEN",
    "as_path",
    "exclusive_lock",
    "fsync_directory",
    "lock_holder",
    "new_name",
    "shared_lock",
    "staging_siblings",
]

logger = logging.getLogger(__name__)
"""Where :func:`exclusive_lock` says that it waits, unless given a ``log`` of its own."""

OWNER = "forecaster"
"""What the manifests and staging markers the package writes name as their owner."""
STAGING_PREFIX = ".staging-"
"""What follows ``.<destination name>`` in the name of a staging folder."""
STAGING_MARKER = ".forecaster-staging"
"""Name of the marker file in a staging folder (see :func:`staging_directory`)."""


TOKEN = r"[0-9a-f]{12}"
"""What :func:`new_name` puts between the prefix and the suffix of a name."""


def as_path(value: Any, argument: str, *, error: type[Exception] = DataValidationError) -> Path:
    """``value`` as a :class:`~pathlib.Path` when it is a path argument: a non-empty ``str``
    or ``os.PathLike`` (whose ``os.fspath`` is a ``str``) without NUL characters; else
    ``error`` naming ``argument``, what is accepted and what was received.

    Examples
    --------
    >>> as_path("models/m1", "path")
    PosixPath('models/m1')
    >>> as_path(None, "path")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: path must be a path: a str or os.PathLike ...
    """
    text: Any = None
    if isinstance(value, str | os.PathLike):
        try:
            text = os.fspath(value)
        except TypeError:
            text = None
    if not isinstance(text, str):
        raise error(
            f"{argument} must be a path: a str or os.PathLike (e.g. pathlib.Path('models/m1')), "
            f"got {reprlib.repr(value)} (a {type(value).__name__}). Pass the path as text, "
            "e.g. b'm'.decode() for bytes."
        )
    if not text:
        raise error(f"{argument} is an empty path; pass the path of a folder or file.")
    if "\x00" in text:
        raise error(
            f"{argument}={reprlib.repr(text)} contains a NUL character, which no file name can "
            "hold. Pass the path without it."
        )
    return Path(text)


def fsync_directory(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (renames in it) to disk; a no-op where folders cannot be
    opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def new_name(folder: Path, prefix: str, suffix: str) -> Path:
    """A fresh random name in ``folder``. Unlike ``tempfile``'s files and folders (mode 0600 /
    0700), what is created under it gets the user's umask: published outputs are readable by
    whoever may read files the user writes."""
    return folder / f"{prefix}{secrets.token_hex(6)}{suffix}"


def staging_siblings(destination: Path) -> list[Path]:
    try:
        return list(destination.parent.glob(f".{destination.name}{STAGING_PREFIX}*"))
    except OSError:
        return []


def lock_holder(lock_file: str | os.PathLike[str]) -> int | None:
    """The id of the process of this machine that holds the ``flock`` of ``lock_file``, as
    Linux's ``/proc/locks`` lists it (None: none found, another machine's, or no
    ``/proc/locks``)."""
    try:
        info = os.stat(lock_file)
        with open("/proc/locks", encoding="ascii") as listing:
            lines = listing.read().splitlines()
    except (OSError, ValueError):
        return None
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 5172 fe:00:2590067 0 EOF"
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def _waiting_note(lock_file: Path, what: str) -> str:
    """What an interrupt while waiting for the lock of ``what`` says (the command's error
    line, as :meth:`~forecaster._io.publishing.Publication.tell`'s note does once published)."""
    return (
        f"it was waiting for another process's lock {lock_file} ({what}) and did nothing: "
        "there is nothing to resume; run the command again to queue again"
    )


@contextlib.contextmanager
def exclusive_lock(
    lock_file: str | os.PathLike[str],
    *,
    timeout: float | None = 0.0,
    what: str = "this job",
    hint: str = "Wait for it to finish.",
    log: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive operating-system lock on ``lock_file`` (created when needed; released
    when the block ends or the process dies).

    ``timeout`` seconds to wait for another holder (0: do not wait; None: wait as long as it
    takes), then :class:`~forecaster.exceptions.ConcurrentRunError`. A wait is told to
    ``log`` (default: this module's logger, ``INFO``) as it starts (the lock, and the holder's
    process id where :func:`lock_holder` finds it) and when it ends (how long it took); an
    interrupt meanwhile carries a note (PEP 678) that the command was waiting and did nothing.
    A lock file that cannot be opened or locked is a
    :class:`~forecaster.exceptions.ForecasterError` naming it and the cause: a folder that is
    read-only or not this user's to write, or a link, a folder or a special file at its path.
    """
    import filelock

    lock_file = Path(lock_file)
    log = logger.info if log is None else log
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(lock_file), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            if timeout == 0:
                raise
            _wait_for(lock, lock_file, timeout, what, log)
    except filelock.Timeout:
        raise _busy(lock_file, timeout, what, hint) from None
    except (OSError, ValueError) as exc:  # a link, a folder or a FIFO at the lock's path, ...
        raise ForecasterError(
            f"Cannot take the lock {lock_file} for {what}: {_cause(exc, lock_file)}"
        ) from exc
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def shared_lock(
    lock_file: str | os.PathLike[str],
    *,
    timeout: float | None = 0.0,
    what: str = "this job",
    hint: str = "Wait for it to finish.",
    log: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold a shared (reader's) ``flock`` on ``lock_file``, opened read-only: for a process
    that only reads what the holders of :func:`exclusive_lock` write, in a folder it cannot
    write (a read-only mount). It waits, logs and refuses as :func:`exclusive_lock` does
    while another process holds the exclusive lock. No lock file: nothing to wait for (no
    writer ever took the lock there); no ``fcntl`` (Windows): no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_file, log = Path(lock_file), logger.info if log is None else log
    try:
        descriptor = os.open(lock_file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        descriptor = None
    except OSError as exc:
        raise ForecasterError(
            f"Cannot take the lock {lock_file} for {what}: {_cause(exc, lock_file)}"
        ) from exc
    if descriptor is None:
        yield
        return
    try:
        started, waiting = time.monotonic(), False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout is not None and time.monotonic() - started >= timeout:
                    raise _busy(lock_file, timeout, what, hint) from None
                if not waiting:
                    log(_waiting_line(lock_file, timeout, what))
                    waiting = True
                try:
                    time.sleep(0.1)
                except KeyboardInterrupt as interrupt:
                    interrupt.add_note(_waiting_note(lock_file, what))
                    raise
        if waiting:
            log(_waited_line(lock_file, started))
        yield
    finally:
        os.close(descriptor)  # (releases the flock)


def _waited_line(lock_file: Path, started: float) -> str:
    """The log line of a wait for ``lock_file`` that ended (``started``: ``time.monotonic()``)."""
    return f"waited   {time.monotonic() - started:.1f} s for the lock {lock_file}; running"


def _busy(lock_file: Path, timeout: float | None, what: str, hint: str) -> ConcurrentRunError:
    waited = "" if not timeout else f" for {timeout:g} s"
    return ConcurrentRunError(
        f"Another process is running {what} (it holds the lock {lock_file}); waited"
        f"{waited or ' not at all'}. {hint}"
    )


def _waiting_line(lock_file: Path, timeout: float | None, what: str) -> str:
    """The log line of a wait for ``lock_file``, held by another process."""
    holder = lock_holder(lock_file)
    by = f" by process {holder} on this machine" if holder is not None else ""
    bound = "as long as it takes" if timeout is None else f"at most {timeout:g} s"
    return f"waiting  for {what}: the lock {lock_file} is held{by}; waiting {bound}"


def _wait_for(
    lock: Any, lock_file: Path, timeout: float | None, what: str, log: Callable[[str], None]
) -> None:
    """Wait for ``lock`` (another process holds it), as long as ``timeout`` allows, saying so."""
    log(_waiting_line(lock_file, timeout, what))
    started = time.monotonic()
    try:
        lock.acquire(timeout=-1 if timeout is None else timeout)
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM while queued
        interrupt.add_note(_waiting_note(lock_file, what))
        raise
    log(_waited_line(lock_file, started))


def _cause(error: OSError | ValueError, lock_file: Path) -> str:
    """Why the lock file could not be opened or locked, and what to do, by ``error``'s errno."""
    import errno

    reason = getattr(error, "strerror", None) or str(error)
    folder = lock_file.parent
    number = getattr(error, "errno", None)
    if number == errno.EROFS:
        return (
            f"{reason}: the folder {folder} is on a read-only file system (mounted "
            "read-only). Run where it is writable, or remount it read-write."
        )
    if number in (errno.EACCES, errno.EPERM) and not os.access(folder, os.W_OK):
        return (
            f"{reason}: the folder {folder} is not writable by this user. Run as its owner, or "
            "give this user write access to it."
        )
    return (
        f"{reason}. It must be a regular file (not a link or a folder) in a writable folder: "
        "remove what is at that path if you put it there, then run again."
    )

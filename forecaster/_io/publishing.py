"""Atomic publication of folders: staging, exchange, removal.

:func:`publish_directory`: a folder written in a staging place (:func:`staging_directory`) is
put at its destination in one step: ``rename`` when the destination is free, else an atomic
exchange (``renameat2(RENAME_EXCHANGE)`` on Linux) after
:func:`~forecaster._io.manifests.check_replaceable` proved the destination ours. Where the
exchange is not available (not Linux), two renames are used and a reader may, for a moment,
find no folder; :func:`~forecaster._io.reading.read_consistent` retries then.

Time of check and time of use: :func:`publish_directory` checks the earlier folder again
*after* the exchange (it now sits at the staging path, which no one else writes) and exchanges
back, with an ``OwnershipError``, when anything appeared in it.

Cleanup by proof, not by name. A staging folder holds a marker file
(:data:`~forecaster._io.paths.STAGING_MARKER`) on which its writer holds an operating-system
lock (``flock``) until it publishes or discards the folder; :func:`remove_staging` deletes only
folders of exactly the generated name whose marker is there and whose lock is free (the writer
died). :func:`publish_directory` removes the marker first, so a writer killed while publishing
leaves an unmarked folder (it may hold the earlier version, with a user's file): hidden,
harmless, never deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import shutil
import socket
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from forecaster._io.manifests import check_pinned, check_replaceable
from forecaster._io.paths import (
    OWNER,
    STAGING_MARKER,
    STAGING_PREFIX,
    TOKEN,
    fsync_directory,
    new_name,
)
from forecaster._io.reading import PinnedDirectory, load_json_bounded
from forecaster._io.renaming import RENAME_NOREPLACE, exchange, rename2
from forecaster.exceptions import ForecasterError, OwnershipError

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: staging folders are never proven abandoned)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Publication",
    "discard_staging",
    "fcntl",
    "publish_directory",
    "remove_staging",
    "staging_directory",
]

_staging_locks: dict[str, int] = {}
"""Staging folders this process writes -> the descriptor holding the lock of their marker."""


_staging_guard = threading.Lock()


def staging_directory(destination: str | os.PathLike[str]) -> Path:
    """A new empty folder beside ``destination`` to write its next version in (same file
    system, so :func:`publish_directory` can rename it into place).

    Its name is ``.<destination name>.staging-<12 hex digits>``. It holds the marker file
    :data:`STAGING_MARKER` (owner, process id, host, time), locked (``flock``) by this process
    until :func:`publish_directory` or :func:`discard_staging` (or the end of the process):
    the proof :func:`remove_staging` needs to delete a folder whose writer died.
    :func:`write_manifest` does not list the marker; :func:`publish_directory` removes it.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    _forget_released()
    for _ in range(100):
        folder = new_name(destination.parent, f".{destination.name}{STAGING_PREFIX}", "")
        try:
            folder.mkdir(mode=0o777)  # the umask applies, as to a folder made by hand
        except FileExistsError:
            continue
        try:
            _mark(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder
    raise FileExistsError(errno.EEXIST, "no free staging name", str(destination))


def _mark(folder: Path) -> None:
    """Write the marker of a new staging folder, locked before it appears under its name."""
    draft = folder / f"{STAGING_MARKER}.draft"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        marker = {
            "owner": OWNER,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.write(descriptor, json.dumps(marker).encode("utf-8"))
        os.rename(draft, folder / STAGING_MARKER)
    except BaseException:
        os.close(descriptor)
        raise
    with _staging_guard:
        _staging_locks[str(folder)] = descriptor


def _unmark(staging: Path) -> None:
    """Remove the marker of a staging folder this process wrote, then release its lock (in
    that order: a cleaner that gets the lock then finds the marker gone and leaves the
    folder)."""
    with _staging_guard:
        descriptor = _staging_locks.pop(str(staging), None)
    with contextlib.suppress(OSError):
        os.unlink(staging / STAGING_MARKER)  # never published, whatever the bookkeeping says
    if descriptor is not None:
        os.close(descriptor)


def _forget_released() -> None:
    """Release the locks of staging folders that were deleted without :func:`discard_staging`
    (their marker is gone)."""
    with _staging_guard:
        items = list(_staging_locks.items())
    for folder, descriptor in items:
        try:
            marker = os.lstat(Path(folder) / STAGING_MARKER)
            alive = os.fstat(descriptor).st_ino == marker.st_ino
        except OSError:
            alive = False
        if not alive:
            with _staging_guard:
                if _staging_locks.get(folder) == descriptor:
                    del _staging_locks[folder]
                    os.close(descriptor)


def discard_staging(staging: str | os.PathLike[str]) -> None:
    """Delete a staging folder this process made with :func:`staging_directory` and has not
    handed to :func:`publish_directory` (after a failure), releasing its lock. A no-op
    otherwise: once given to :func:`publish_directory`, the folder is that function's to
    remove (after a refused exchange its path may hold the earlier version and a user's
    files). Call it in a ``finally`` instead of deleting the folder yourself."""
    staging = Path(staging)
    with _staging_guard:
        ours = str(staging) in _staging_locks
    if ours:
        _unmark(staging)
        shutil.rmtree(staging, ignore_errors=True)


def remove_staging(destination: str | os.PathLike[str]) -> list[Path]:
    """Delete the staging folders of ``destination`` that writers which died before publishing
    left beside it; return them.

    A folder is deleted only with proof that it is such a folder: its name is exactly one
    :func:`staging_directory` generates for ``destination``, it holds the package's marker
    file, and the marker's lock is free (its writer is gone: the operating system released the
    lock with the process). Folders of live writers, and anything else of a similar name (a
    user's ``.<name>.staging-mybackup``), are left alone, so it is safe to call at any time.
    Where ``flock`` does not exist (Windows) nothing is deleted.
    """
    destination = Path(destination)
    pattern = re.compile(re.escape(f".{destination.name}{STAGING_PREFIX}") + TOKEN)
    try:
        entries = list(os.scandir(destination.parent))
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        if _remove_abandoned(Path(entry.path)):
            removed.append(Path(entry.path))
    return removed


def _remove_abandoned(folder: Path) -> bool:
    """Delete the staging folder ``folder`` when its marker proves its writer gone."""
    if fcntl is None:
        return False
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(folder / STAGING_MARKER, flags)
    except OSError:
        return False  # no marker: not provably a staging folder
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its writer is alive
        marker = os.lstat(folder / STAGING_MARKER)
        info = os.fstat(descriptor)
        if info.st_nlink == 0 or (marker.st_dev, marker.st_ino) != (info.st_dev, info.st_ino):
            return False  # published or discarded meanwhile
        content = load_json_bounded(os.read(descriptor, 4096), source="staging marker")
        if not isinstance(content, dict) or content.get("owner") != OWNER:
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True
    except (OSError, ForecasterError):
        return False
    finally:
        os.close(descriptor)


def _folder_identity(path: Path) -> tuple[int, int] | None:
    """Device and inode of the folder at ``path`` (they survive renames and new entries)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Publication:
    """Whether :func:`publish_directory` has put the folder ``staging`` at ``destination``:
    ``publication()`` is true from the moment its rename or exchange lands (the folder keeps
    its device and inode there), whatever interrupt comes after that, inside the call or after
    it; false before, and once an earlier version was exchanged back (``OwnershipError``) or
    another publisher's folder replaced it. Read from the file system, not set by the caller
    after the call returned: a ``KeyboardInterrupt`` between the rename and that line would
    leave a published folder called unpublished. A folder that the writer publishes again in
    its place (the same outputs with a file rewritten) counts too once :meth:`also` named its
    staging folder (it has another device and inode).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> staging = root / "staging"
    >>> staging.mkdir()
    >>> publication = Publication(staging, root / "out")
    >>> publication()
    False
    >>> _ = staging.rename(root / "out")
    >>> publication()
    True
    >>> again = root / "again"
    >>> again.mkdir()
    >>> publication.also(again)
    >>> _ = again.replace(root / "out")
    >>> publication()
    True
    """

    def __init__(
        self, staging: str | os.PathLike[str], destination: str | os.PathLike[str]
    ) -> None:
        first = _folder_identity(Path(staging))
        self.identities = [] if first is None else [first]
        self.destination = Path(destination)

    def also(self, staging: str | os.PathLike[str]) -> None:
        """Count the folder ``staging``, which the writer will publish at the destination in
        place of the first (the same outputs, a file rewritten), as this publication too."""
        identity = _folder_identity(Path(staging))
        if identity is not None:
            self.identities.append(identity)

    def __call__(self) -> bool:
        return _folder_identity(self.destination) in self.identities

    def tell(self, interrupt: BaseException, left: Sequence[str]) -> None:
        """Note on ``interrupt`` (a ``KeyboardInterrupt``: PEP 678's ``add_note``), once the
        folder is published, that the outputs are complete and which of the steps after
        publishing did not run (``left``), for the command's error line to say instead of
        "run the command again to finish it" (a rerun skips published outputs). Nothing
        for another exception, or before the folder is published."""
        if not isinstance(interrupt, KeyboardInterrupt) or not self():
            return
        undone = f"not done: {', '.join(left)}" if left else "every step after it ran"
        interrupt.add_note(
            f"the outputs are complete, published in {self.destination} ({undone}); "
            "running the command again skips them (--force writes them anew)"
        )


def publish_directory(
    staging: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    kind: str,
    same: Callable[[Mapping[str, Any]], str | None] | None = None,
    adopt: Callable[[Path], bool] | None = None,
) -> Path:
    """Put the folder ``staging`` (from :func:`staging_directory`, with its manifest written)
    at ``destination`` in one step, replacing an earlier version there only when
    :func:`check_replaceable` proves it the package's (else ``OwnershipError``, and
    ``staging`` is removed). Concurrent publishers of one destination all succeed; the last
    one's folder stays. ``adopt``: see :func:`check_replaceable`.

    The earlier version is checked before the exchange and once more after it, where it now
    sits at the staging path that no one else writes: a file a user put in it between the
    check and the exchange is found there, the two folders are exchanged back (the destination
    holds the earlier version and the user's file again) and ``OwnershipError`` is raised.
    Only a version that passed that second check is deleted.
    """
    staging, destination = Path(staging), Path(destination)
    _unmark(staging)
    disposable = True  # whether what is at the staging path may be deleted at the end
    try:
        for _ in range(16):
            check_replaceable(destination, kind, same=same, adopt=adopt)
            try:
                if destination.exists():
                    ours = _folder_identity(staging)
                    exchange(staging, destination)
                    disposable = False  # staging holds the old version: checked again first
                    problem, disposable = _confirm_replaced(
                        staging, destination, ours, kind, same, adopt
                    )
                    if problem is not None:
                        raise problem
                    break
                if rename2(staging, destination, RENAME_NOREPLACE):
                    return destination
                os.rename(staging, destination)  # replaces at most an empty folder
                return destination
            except FileExistsError:
                continue  # another publisher got there first: check its folder and swap
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    continue  # the destination changed under us: look again
                raise ForecasterError(
                    f"Cannot put the new {kind} at {destination}: {exc.strerror or exc}. "
                    "Check that the folder is writable and on a local file system."
                ) from exc
        else:
            raise ForecasterError(
                f"Cannot put the new {kind} at {destination}: other processes kept replacing "
                "it. Write to separate destinations."
            )
        fsync_directory(destination.parent)
    finally:
        if disposable:
            shutil.rmtree(staging, ignore_errors=True)
    return destination


def _confirm_replaced(
    staging: Path,
    destination: Path,
    ours: tuple[int, int] | None,
    kind: str,
    same: Callable[[Mapping[str, Any]], str | None] | None,
    adopt: Callable[[Path], bool] | None,
) -> tuple[OwnershipError | None, bool]:
    """After the exchange: check the earlier version (now at ``staging``) again.

    Returns ``(problem, disposable)``: no problem when it may be deleted; else the refusal,
    after the earlier version was exchanged back to ``destination`` (then ``staging`` holds
    the new version again, disposable) or, when another process replaced ``destination``
    meanwhile, moved to a kept folder that the refusal names (nothing at ``staging``)."""
    try:
        with PinnedDirectory(staging, error=OwnershipError) as pinned:
            check_pinned(pinned, kind, same, "replace", adopt, shown=destination)
        return None, True
    except FileNotFoundError:
        return None, True  # nothing there any more
    except OwnershipError as exc:
        refusal = str(exc)
    try:
        if _folder_identity(destination) == ours:
            exchange(staging, destination)
            return OwnershipError(
                f"{refusal} (It appeared while the folder was replaced; the folder was put "
                "back as it was.)"
            ), True
    except OSError:
        pass
    kept = new_name(destination.parent, f".{destination.name}.kept-", "")
    try:
        os.rename(staging, kept)
    except OSError:
        kept = staging  # left where it is: never deleted
    return OwnershipError(
        f"{refusal} (It appeared while the folder was replaced, and another process replaced "
        f"the folder meanwhile: the earlier folder, with those files, is kept at {kept}.)"
    ), False

"""Atomic files: the one way the package writes a file.

:func:`write_bytes_atomic` / :func:`write_atomic`: a file is written under a temporary name in
its folder, flushed to disk and renamed over its destination, so a reader sees the old file or
the new one, never a part. With ``replace_check`` the files are exchanged and the file replaced
must be the one checked (a new file at a free path is never replaced: ``RENAME_NOREPLACE``).
:func:`temporary_files` lists only files of exactly the names :func:`write_atomic` generates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forecaster._hashing import sha256_bytes
from forecaster._io.paths import TOKEN, fsync_directory, new_name
from forecaster._io.renaming import RENAME_EXCHANGE, RENAME_NOREPLACE, rename2
from forecaster.exceptions import OwnershipError

__all__ = ["temporary_files", "write_atomic", "write_bytes_atomic"]


def write_atomic(
    path: str | os.PathLike[str],
    write: Callable[[Path], Any],
    *,
    replace_check: Callable[[Path], None] | None = None,
) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside ``path``, flush it to disk and
    rename it to ``path`` (replacing a file there atomically).

    The temporary file is named ``.<name>.<12 hex digits>.tmp`` (see :func:`temporary_files`).

    ``replace_check(path)`` (optional) is called just before the rename and raises (e.g. an
    :class:`~forecaster.exceptions.OwnershipError`) when what is at ``path`` may not be
    replaced. What it approved is what gets replaced: when ``path`` was free, the rename does
    not replace a file that appeared afterwards (``RENAME_NOREPLACE``; the new file is checked
    in turn); when it held a file, the two are exchanged atomically and the file taken out must
    be the one checked, else it is put back and checked again. Without ``replace_check`` a file
    at ``path`` is replaced unconditionally.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> path = Path(tempfile.mkdtemp()) / "frame.parquet"
    >>> _ = write_atomic(path, pl.DataFrame({"a": [1]}).write_parquet)
    >>> pl.read_parquet(path)["a"].to_list()
    [1]
    >>> def refuse(file: Path) -> None:
    ...     if file.exists():
    ...         raise OwnershipError(f"{file.name} is not ours")
    >>> write_atomic(path, pl.DataFrame({"a": [2]}).write_parquet, replace_check=refuse)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.OwnershipError: frame.parquet is not ours
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_name(path.parent, f".{path.name}.", ".tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
    try:
        write(tmp)
        with open(tmp, "rb+") as out:
            os.fsync(out.fileno())
        if replace_check is None:
            os.replace(tmp, path)
        else:
            _replace_checked(tmp, path, replace_check)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def _identity(path: Path) -> tuple[int, ...] | None:
    """What identifies the entry at ``path`` (links not followed) and changes when it is
    rewritten: device, inode, type, size, modification time; None when there is none."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns)


def _replace_checked(tmp: Path, path: Path, check: Callable[[Path], None]) -> None:
    """Rename ``tmp`` to ``path`` replacing only what ``check(path)`` approved."""
    for _ in range(16):
        before = _identity(path)
        check(path)
        if _identity(path) != before:
            continue  # changed while it was checked: check what is there now
        if before is None:
            if _place_new_file(tmp, path):
                return
            continue  # a file appeared after the check: check it
        try:
            exchanged = rename2(tmp, path, RENAME_EXCHANGE)
        except FileNotFoundError:
            continue  # removed after the check: the path is free now
        if not exchanged:  # no atomic exchange here: the smallest window we can
            if _identity(path) == before:
                os.replace(tmp, path)
                return
            continue
        if _identity(tmp) == before:  # what was taken out is what was checked
            tmp.unlink()
            return
        _put_back(tmp, path)  # something else: put it back, then check it
    raise OwnershipError(
        f"Refusing to write {path}: other processes kept replacing it while it was checked. "
        "Write to separate paths."
    )


def _put_back(tmp: Path, path: Path) -> None:
    """Exchange ``tmp`` (holding a file that was not checked) with ``path`` again; where that
    fails, keep the file under a new name and say where (it is never deleted)."""
    try:
        if rename2(tmp, path, RENAME_EXCHANGE):
            return
    except OSError:
        pass
    kept = new_name(path.parent, f".{path.name}.kept-", "")
    os.rename(tmp, kept)
    raise OwnershipError(
        f"Refusing to write {path}: another process replaced it while it was written; the file "
        f"that was there is kept at {kept}. Move it back if it is yours, then run again."
    )


def _place_new_file(tmp: Path, path: Path) -> bool:
    """Rename ``tmp`` to ``path`` unless a file is there; False when one is."""
    try:
        if rename2(tmp, path, RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    try:  # no renameat2: a hard link never replaces either
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: the smallest window we can
        if os.path.lexists(path):
            return False
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`); return its sha256."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
    return sha256_bytes(data)


def temporary_files(folder: str | os.PathLike[str], name: str = r"[^/\x00]+") -> list[Path]:
    r"""The temporary files :func:`write_atomic` leaves in ``folder`` when its process is
    killed: regular files (not links or folders) named exactly ``.<name>.<12 hex
    digits>.tmp``, where ``<name>`` matches the regular expression ``name`` (e.g.
    ``r"checkpoint-\d+\.safetensors"``). Files of other names are not ours to delete.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".a.bin.0123456789ab.tmp").write_bytes(b"")
    >>> _ = (folder / ".a.bin.notes.tmp").write_bytes(b"mine")
    >>> [p.name for p in temporary_files(folder, r"a\.bin")]
    ['.a.bin.0123456789ab.tmp']
    """
    pattern = re.compile(rf"\.(?:{name})\.{TOKEN}\.tmp")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
    )

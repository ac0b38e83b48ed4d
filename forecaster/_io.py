"""Filesystem primitives shared by every module that writes or reads files.

One mechanism per job, used by models, checkpoints, pipeline outputs, the CLI and tracking:

- :func:`write_bytes_atomic` / :func:`write_atomic`: a file is written under a temporary name
  in its folder, flushed to disk and renamed over its destination, so a reader sees the old
  file or the new one, never a part.
- :func:`write_manifest` / :func:`read_manifest`: a folder the package creates holds a
  ``manifest.json`` naming its kind (``"model"``, ``"run"``, ...) and the sha256 of every file in
  it (and of the manifest's own entries, its ``digest``). It is the package's proof of
  ownership: a folder is replaced or deleted only when its manifest says the package wrote it
  and no file in it was added or changed since.
- :func:`publish_directory`: a folder written in a staging place is put at its destination in
  one step: ``rename`` when the destination is free, else an atomic exchange
  (``renameat2(RENAME_EXCHANGE)`` on Linux) after :func:`check_replaceable` proved the
  destination ours. Readers that pin the folder (:class:`PinnedDirectory`) see the old or the new
  version whole. Where the exchange is not available (not Linux), two renames are used and a
  reader may, for a moment, find no folder; :func:`read_consistent` retries then.
- :func:`read_file_bounded` / :func:`load_json_bounded`: untrusted files are read only when they
  are regular files within a size limit (no FIFOs, devices or endless links), JSON only up to a
  nesting depth.
- :func:`exclusive_lock`: one writer at a time for a key (a pipeline run of one spec and as-of
  date), on an operating-system lock that dies with its process (``filelock``).
- :func:`as_path`: a path argument is a ``str`` or ``os.PathLike``, never empty, without NUL
  characters; anything else is a :class:`~forecaster.exceptions.DataValidationError` naming the
  argument.

Time of check and time of use. Checking a destination and then replacing it leaves a moment in
which a user's file can appear. Both replacements close it: :func:`publish_directory` checks the
earlier folder again *after* the exchange (it now sits at the staging path, which no one else
writes) and exchanges back, with an ``OwnershipError``, when anything appeared in it;
:func:`write_atomic` with ``replace_check`` exchanges the files and verifies that the file it
replaced is the one it checked (a new file at a free path is never replaced:
``RENAME_NOREPLACE``). Ownership checks read every entry: one that cannot be listed or read (a
folder of mode 000) is a reason to refuse, never skipped.

Cleanup by proof, not by name. A staging folder holds a marker file (:data:`STAGING_MARKER`)
on which its writer holds an operating-system lock (``flock``) until it publishes or discards
the folder; :func:`remove_staging` deletes only folders of exactly the generated name whose
marker is there and whose lock is free (the writer died). :func:`publish_directory` removes
the marker first, so a writer killed while publishing leaves an unmarked folder (it may hold
the earlier version, with a user's file): hidden, harmless, never deleted.
:func:`temporary_files` lists only files of exactly the names :func:`write_atomic` generates.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import hashlib
import json
import os
import re
import reprlib
import secrets
import shutil
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from forecaster._version import __version__
from forecaster.exceptions import (
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    OwnershipError,
)

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: staging folders are never proven abandoned)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MANIFEST",
    "STAGING_MARKER",
    "PinnedDirectory",
    "as_path",
    "check_replaceable",
    "discard_staging",
    "exclusive_lock",
    "load_json_bounded",
    "manifest_bytes",
    "manifest_digest",
    "owning_folder",
    "publish_directory",
    "read_consistent",
    "read_file_bounded",
    "read_manifest",
    "read_safetensors_header",
    "remove_owned",
    "remove_staging",
    "sha256_bytes",
    "staging_directory",
    "temporary_files",
    "write_atomic",
    "write_bytes_atomic",
    "write_manifest",
]

MANIFEST = "manifest.json"
"""Name of the ownership and integrity manifest in every folder the package creates."""
OWNER = "forecaster"
MANIFEST_LIMIT = 16 * 2**20
"""Largest manifest read (bytes)."""
JSON_MAX_DEPTH = 64
"""Deepest nesting of lists and objects accepted in a JSON file the package reads."""
SAFETENSORS_HEADER_LIMIT = 16 * 2**20
"""Largest safetensors header read (bytes; the JSON that lists the tensors)."""
_SAFETENSORS_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_STAGING_PREFIX = ".staging-"
STAGING_MARKER = ".forecaster-staging"
"""Name of the marker file in a staging folder (see :func:`staging_directory`)."""
_TOKEN = r"[0-9a-f]{12}"
"""What :func:`_new_name` puts between the prefix and the suffix of a name."""

T = TypeVar("T")


# ------------------------------------------------------------------------------------------
# path arguments
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# atomic files
# ------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    tmp = _new_name(path.parent, f".{path.name}.", ".tmp")
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


def _folder_identity(path: Path) -> tuple[int, int] | None:
    """Device and inode of the folder at ``path`` (they survive renames and new entries)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


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
            exchanged = _rename2(tmp, path, _RENAME_EXCHANGE)
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
        if _rename2(tmp, path, _RENAME_EXCHANGE):
            return
    except OSError:
        pass
    kept = _new_name(path.parent, f".{path.name}.kept-", "")
    os.rename(tmp, kept)
    raise OwnershipError(
        f"Refusing to write {path}: another process replaced it while it was written; the file "
        f"that was there is kept at {kept}. Move it back if it is yours, then run again."
    )


def _place_new_file(tmp: Path, path: Path) -> bool:
    """Rename ``tmp`` to ``path`` unless a file is there; False when one is."""
    try:
        if _rename2(tmp, path, _RENAME_NOREPLACE):
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


# ------------------------------------------------------------------------------------------
# bounded reading of untrusted files
# ------------------------------------------------------------------------------------------


def _entry_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def _describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_file_bounded(
    path: str | os.PathLike[str],
    max_bytes: int,
    *,
    error: type[Exception] = ForecasterError,
    what: str = "file",
    dir_fd: int | None = None,
) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking (a FIFO does not hang the reader) and checked with
    ``fstat`` before anything is read (a link to ``/dev/zero`` or a sparse file of terabytes is
    refused, not read until memory runs out). ``dir_fd`` reads ``path`` relative to an open
    folder (see :class:`PinnedDirectory`).

    Raises
    ------
    FileNotFoundError
        When the file does not exist (callers decide what a missing file means).
    error
        When it is not a regular file, is larger than ``max_bytes``, or cannot be read.

    Examples
    --------
    >>> read_file_bounded("/dev/zero", 1024, what="weights")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.ForecasterError: weights /dev/zero is a device, not a regular file; ...
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"Cannot open the {what} {path}: {exc.strerror or exc}.") from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{what} {path} is {_describe_kind(info.st_mode)}, not a regular file; "
                "forecaster reads only regular files here. Replace it with the file that was "
                "written there."
            )
        if info.st_size > max_bytes:
            raise error(
                f"{what} {path} has {info.st_size:,} bytes, more than the {max_bytes:,} bytes "
                "such a file can have; it is not a file forecaster wrote. Replace it with the "
                "file that was written there."
            )
        os.set_blocking(descriptor, True)
        chunks, remaining = [], info.st_size + 1  # one byte more: a file that grew is seen
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 2**24))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise error(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from exc
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise error(f"{what} {path} grew beyond {max_bytes:,} bytes while it was read.")
    return data


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value`` (lists and dicts), counted iteratively up to ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def load_json_bounded(
    data: bytes,
    *,
    source: str,
    error: type[Exception] = ForecasterError,
    max_depth: int = JSON_MAX_DEPTH,
) -> Any:
    """Parse JSON ``data`` (UTF-8) nested at most ``max_depth`` deep; NaN and infinities, which
    are not JSON, are refused.

    Examples
    --------
    >>> load_json_bounded(b'{"a": [1, 2]}', source="config")
    {'a': [1, 2]}
    >>> load_json_bounded(b"[" * 100 + b"]" * 100, source="config")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.ForecasterError: config is nested deeper than 64 levels; ...
    """

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        value, text = None, None
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"{source} is not valid JSON ({exc}).") from exc
    if text is None or _depth(value, max_depth) > max_depth:
        raise error(
            f"{source} is nested deeper than {max_depth} levels; forecaster never writes such "
            "a file. Restore the file that was written there."
        )
    return value


def read_safetensors_header(
    data: bytes,
    *,
    source: str,
    error: type[Exception] = ForecasterError,
    max_header: int = SAFETENSORS_HEADER_LIMIT,
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The tensors (name -> ``{"dtype", "shape", "data_offsets"}``) and metadata listed by the
    header of the safetensors file ``data``, after checking that the header is sane: its
    length prefix at most ``max_header`` and within the file, JSON of the expected types,
    known dtypes, and tensors whose byte ranges tile the rest of the file exactly. Call it
    before handing untrusted bytes to ``safetensors``.

    Examples
    --------
    >>> import torch, safetensors.torch
    >>> data = safetensors.torch.save({"w": torch.zeros(2, 3)}, metadata={"a": "b"})
    >>> read_safetensors_header(data, source="weights")
    ({'w': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]}}, {'a': 'b'})
    >>> read_safetensors_header(b"\\xff" * 8 + data[8:], source="weights")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.ForecasterError: weights is not a safetensors file: ...
    """

    def refuse(problem: str) -> Exception:
        return error(
            f"{source} is not a safetensors file: {problem}. forecaster never writes such a "
            "file; restore the file that was written there."
        )

    if len(data) < 8:
        raise refuse(f"it has {len(data)} bytes, fewer than the 8 of a header length")
    length = int.from_bytes(data[:8], "little")
    if length > max_header or length > len(data) - 8:
        raise refuse(
            f"its header claims {length:,} bytes, more than the {min(max_header, len(data) - 8):,}"
            " it can have"
        )
    header = load_json_bounded(
        data[8 : 8 + length], source=f"the header of {source}", error=error, max_depth=4
    )
    if not isinstance(header, dict):
        raise refuse(f"its header is a {type(header).__name__}, not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise refuse("its metadata is not a mapping of strings")
    spans = []
    for name, entry in header.items():
        spans.append((*_tensor_span(name, entry, refuse), name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise refuse(f"the bytes of tensor {name!r} do not follow those of the one before")
        position = end
    if position != len(data) - 8 - length:
        raise refuse(
            f"its tensors take {position:,} bytes but the file holds {len(data) - 8 - length:,}"
        )
    return header, metadata


def _tensor_span(name: str, entry: Any, refuse: Callable[[str], Exception]) -> tuple[int, int]:
    """``(begin, end)`` of a tensor's bytes, after checking its header entry."""

    def is_count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise refuse(f"the entry of tensor {name!r} is not {{dtype, shape, data_offsets}}")
    size = _SAFETENSORS_DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    shape, offsets = entry["shape"], entry["data_offsets"]
    if size is None:
        raise refuse(f"tensor {name!r} has an unknown dtype {entry['dtype']!r}")
    if not isinstance(shape, list) or not all(is_count(n) for n in shape):
        raise refuse(f"tensor {name!r} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(is_count(n) for n in offsets)
        or offsets[1] - offsets[0] != size * _product(shape)
    ):
        raise refuse(f"tensor {name!r} has data offsets {offsets!r} that do not fit its shape")
    return offsets[0], offsets[1]


def _product(values: list[int]) -> int:
    total = 1
    for value in values:
        total *= value
    return total


class PinnedDirectory:
    """A folder opened once, so that every file read through it comes from the same version
    of the folder even when it is replaced meanwhile (see :func:`publish_directory`).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hi")
    >>> with PinnedDirectory(folder) as pinned:
    ...     pinned.read("a.txt", 10)
    b'hi'
    """

    def __init__(
        self, path: str | os.PathLike[str], *, error: type[Exception] = ForecasterError
    ) -> None:
        self.path = Path(path)
        self.error = error
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def __enter__(self) -> PinnedDirectory:
        if os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY"):
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            except (NotADirectoryError, FileNotFoundError):
                raise
            except OSError as exc:
                raise self.error(f"Cannot open the folder {self.path}: {exc}.") from exc
            info = os.fstat(self._fd)
            self._identity = (info.st_dev, info.st_ino)
        elif not self.path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such folder", str(self.path))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, name: str, max_bytes: int, *, what: str = "file") -> bytes:
        """The bytes of the file ``name`` in the pinned folder (see :func:`read_file_bounded`)."""
        if self._fd is None:
            return read_file_bounded(self.path / name, max_bytes, error=self.error, what=what)
        return read_file_bounded(name, max_bytes, error=self.error, what=what, dir_fd=self._fd)

    def exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self._fd) if self._fd is not None else (self.path / name).stat()
        except OSError:
            return False
        return True

    def walk(self, *, hash_files: bool = True) -> Iterator[tuple[str, str, str | None]]:
        """Every entry below the pinned folder, links not followed: ``(relative posix path,
        kind, detail)`` with kind ``"file"``, ``"dir"``, ``"link"``, ``"other"`` or
        ``"unreadable"``; the detail is the sha256 of a file (None when ``hash_files`` is
        False) and, for an entry that cannot be examined, listed or read (a folder of mode
        000, a file without read permission), the reason. Nothing is skipped silently: an
        ownership check must refuse what it cannot see."""
        if self._fd is None:
            yield from _walk_paths(self.path, hash_files)
            return
        stack = [(os.dup(self._fd), "")]
        try:
            while stack:
                descriptor, prefix = stack.pop()
                try:
                    yield from _walk_level(descriptor, prefix, hash_files, stack)
                finally:
                    os.close(descriptor)
        finally:
            for descriptor, _ in stack:
                os.close(descriptor)

    def replaced(self) -> bool:
        """Whether the folder's path now names another folder (or none)."""
        if self._identity is None:
            return False
        try:
            info = os.stat(self.path)
        except OSError:
            return True
        return (info.st_dev, info.st_ino) != self._identity


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _walk_level(
    descriptor: int,
    prefix: str,
    hash_files: bool,
    stack: list[tuple[int, str]],
) -> Iterator[tuple[str, str, str | None]]:
    """The entries of one open folder (see :meth:`PinnedDirectory.walk`); its sub-folders are
    opened and pushed on ``stack``."""
    try:
        names = sorted(os.listdir(descriptor))
    except OSError as exc:
        yield prefix.rstrip("/") or ".", "unreadable", _reason(exc)
        return
    for name in names:
        relative = prefix + name
        try:
            kind = _entry_kind(os.stat(name, dir_fd=descriptor, follow_symlinks=False).st_mode)
            if kind == "dir":
                flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
                stack.append((os.open(name, flags, dir_fd=descriptor), relative + "/"))
                yield relative, kind, None
                continue
            digest = None
            if hash_files and kind == "file":
                flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                with os.fdopen(os.open(name, flags, dir_fd=descriptor), "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            continue  # removed while the folder was walked: it holds nothing now
        except OSError as exc:
            yield relative, "unreadable", _reason(exc)
            continue
        yield relative, kind, digest


def _walk_paths(folder: Path, hash_files: bool) -> Iterator[tuple[str, str, str | None]]:
    """:meth:`PinnedDirectory.walk` where folders cannot be opened (by path, not pinned)."""
    stack = [(folder, "")]
    while stack:
        current, prefix = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            yield prefix.rstrip("/") or ".", "unreadable", _reason(exc)
            continue
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            try:
                kind = _entry_kind(entry.stat(follow_symlinks=False).st_mode)
                digest = _sha256_file(Path(entry.path)) if hash_files and kind == "file" else None
            except FileNotFoundError:
                continue
            except OSError as exc:
                yield relative, "unreadable", _reason(exc)
                continue
            if kind == "dir":
                stack.append((Path(entry.path), f"{relative}/"))
            yield relative, kind, digest


def read_consistent(
    path: str | os.PathLike[str],
    read: Callable[[PinnedDirectory], T],
    *,
    error: type[Exception] = ForecasterError,
    attempts: int = 8,
) -> T:
    """``read(pinned)`` on the folder ``path``, again when the folder was replaced while it was
    read and the read failed (a concurrent :func:`publish_directory`), up to ``attempts`` times.
    """
    for attempt in range(attempts):
        try:
            with PinnedDirectory(path, error=error) as pinned:
                try:
                    return read(pinned)
                except (FileNotFoundError, ForecasterError, ValueError):
                    if attempt + 1 < attempts and pinned.replaced():
                        continue
                    raise
        except FileNotFoundError:
            if attempt + 1 < attempts and _staging_siblings(Path(path)):
                continue  # two-rename fallback: the folder is between its two renames
            raise
    raise AssertionError("unreachable")  # pragma: no cover


# ------------------------------------------------------------------------------------------
# manifests: proof of ownership and integrity
# ------------------------------------------------------------------------------------------


def _entries(folder: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry below ``folder`` as (relative posix path, entry), links not followed."""
    stack = [(folder, "")]
    while stack:
        current, prefix = stack.pop()
        with os.scandir(current) as listing:
            for entry in listing:
                relative = f"{prefix}{entry.name}"
                yield relative, entry
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{relative}/"))


def write_manifest(
    folder: str | os.PathLike[str], kind: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``folder/manifest.json``: the kind of folder, ``details`` (JSON values) and the
    sha256 of every file below it; return the manifest.

    Call it last, on a folder the package has just written (a staging folder).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hi")
    >>> sorted(write_manifest(folder, "example")["files"])
    ['a.txt']
    """
    folder = Path(folder)
    files: dict[str, str] = {}
    for relative, entry in sorted(_entries(folder), key=lambda item: item[0]):
        if relative in (MANIFEST, STAGING_MARKER) or entry.is_dir(follow_symlinks=False):
            continue  # (the marker of a staging folder is removed when it is published)
        if not entry.is_file(follow_symlinks=False):
            raise ForecasterError(f"{entry.path} is not a regular file; cannot list it.")
        files[relative] = _sha256_file(Path(entry.path))
    manifest = {
        "owner": OWNER,
        "kind": kind,
        "package_version": __version__,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "details": dict(details or {}),
        "files": files,
    }
    manifest["digest"] = manifest_digest(manifest)
    write_bytes_atomic(folder / MANIFEST, manifest_bytes(manifest))
    return manifest


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes :func:`write_manifest` writes for ``manifest`` (a reader can compare a
    manifest file with them: any other bytes were edited)."""
    return json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False).encode("utf-8")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The sha256 of a manifest's entries other than ``digest`` (canonical JSON), which
    :func:`write_manifest` stores as its ``digest``: an edit of the manifest itself shows."""
    body = {key: value for key, value in manifest.items() if key != "digest"}
    return sha256_bytes(
        json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    )


def read_manifest(
    folder: str | os.PathLike[str], *, pinned: PinnedDirectory | None = None
) -> dict[str, Any] | None:
    """The package's manifest in ``folder``, or None when there is none (or it is not ours).

    A manifest that exists but is unreadable, too large or malformed also gives None: such a
    folder is not provably the package's.
    """
    try:
        if pinned is not None:
            data = pinned.read(MANIFEST, MANIFEST_LIMIT, what="manifest")
        else:
            data = read_file_bounded(Path(folder) / MANIFEST, MANIFEST_LIMIT, what="manifest")
        manifest = load_json_bounded(data, source=f"{folder}/{MANIFEST}")
    except (OSError, ForecasterError):
        return None
    if not (
        isinstance(manifest, dict)
        and manifest.get("owner") == OWNER
        and isinstance(manifest.get("kind"), str)
        and isinstance(manifest.get("files"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["files"].items())
        and isinstance(manifest.get("details", {}), dict)
        and manifest.get("digest", manifest_digest(manifest)) == manifest_digest(manifest)
    ):
        return None
    return manifest


def _ownership_problems(pinned: PinnedDirectory, manifest: Mapping[str, Any]) -> list[str]:
    """What in the pinned folder its manifest does not vouch for: files added, changed, not
    regular or unreadable (empty sub-folders and the manifest itself are fine)."""
    listed: dict[str, str] = manifest["files"]
    problems = []
    for relative, kind, digest in pinned.walk():
        if relative == MANIFEST or kind == "dir":
            continue
        if kind == "unreadable":
            problems.append(f"{relative} (cannot read it: {digest})")
        elif kind == "link":
            problems.append(f"{relative} (a link forecaster did not write)")
        elif relative not in listed:
            problems.append(f"{relative} (not written by forecaster)")
        elif kind != "file":
            problems.append(f"{relative} (not a regular file)")
        elif digest != listed[relative]:
            problems.append(f"{relative} (changed since forecaster wrote it)")
    return problems


def _refusal(destination: Path, kind: str, purpose: str) -> str | None:
    """Why ``destination`` can never be replaced by a ``kind`` folder, or None."""
    if destination.is_symlink():
        return (
            f"Refusing to {purpose} {destination}: it is a link (to {os.readlink(destination)}), "
            "not a folder forecaster wrote. Pass the real folder or a new path."
        )
    if destination.exists() and not destination.is_dir():
        return (
            f"Refusing to {purpose} {destination}: it is a file, not a {kind} folder written by "
            "forecaster. Choose a new path, or move the file away."
        )
    return None


def _check_pinned(
    pinned: PinnedDirectory,
    kind: str,
    same: Callable[[Mapping[str, Any]], str | None] | None,
    purpose: str,
    adopt: Callable[[Path], bool] | None = None,
    shown: Path | None = None,
) -> dict[str, Any] | None:
    """The manifest of the pinned folder when it may be replaced (None: empty or adopted), else
    ``OwnershipError``. Messages name ``shown`` (default: the folder's path)."""
    destination = shown if shown is not None else pinned.path
    if not any(True for _ in pinned.walk(hash_files=False)):
        return None  # an empty folder holds nothing to lose
    manifest = read_manifest(pinned.path, pinned=pinned)
    if manifest is None and adopt is not None and adopt(pinned.path):
        return None
    if manifest is None:
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it is a folder forecaster did not write (it "
            f"has no forecaster {MANIFEST}), and replacing it would delete what it holds. "
            "Choose a new or empty folder."
        )
    if manifest["kind"] != kind:
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it holds a forecaster {manifest['kind']}, "
            f"not a {kind}. Choose another folder."
        )
    reason = same(manifest) if same is not None else None
    if reason:
        raise OwnershipError(f"Refusing to {purpose} {destination}: {reason}")
    problems = _ownership_problems(pinned, manifest)
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it holds what forecaster did not write there "
            f"or cannot check: {', '.join(problems[:5])}{more}. Move those files out (or delete "
            "the folder yourself), then run again."
        )
    return manifest


def check_replaceable(
    destination: str | os.PathLike[str],
    kind: str,
    *,
    same: Callable[[Mapping[str, Any]], str | None] | None = None,
    purpose: str = "replace",
    adopt: Callable[[Path], bool] | None = None,
) -> dict[str, Any] | None:
    """Raise :class:`~forecaster.exceptions.OwnershipError` unless ``destination`` may be
    replaced by a new folder of ``kind``; return its manifest (None when it is free).

    It may when it does not exist, is an empty folder, or holds a folder of the same kind that
    the package wrote (its manifest) in which no file was added or changed since. ``same`` can
    refuse further (e.g. the outputs of another pipeline): it returns a reason, or None.
    ``adopt(folder)`` can vouch for a folder without a manifest (one an older version of the
    package wrote before it wrote manifests). The folder is checked as one version: when
    another process replaces it meanwhile, the check runs again on the new one.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_replaceable(folder, "model")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.OwnershipError: ...
    """
    destination = Path(destination)
    for _ in range(16):
        refusal = _refusal(destination, kind, purpose)
        if refusal:
            raise OwnershipError(refusal)
        try:
            with PinnedDirectory(destination, error=OwnershipError) as pinned:
                try:
                    return _check_pinned(pinned, kind, same, purpose, adopt)
                except (OwnershipError, OSError):
                    if not pinned.replaced():
                        raise
        except FileNotFoundError:
            if not destination.exists():
                return None
        except NotADirectoryError:
            if not destination.exists():
                return None  # a part of its path is a file: there is nothing to replace
            continue  # replaced by a file meanwhile: _refusal says so
    raise OwnershipError(
        f"Refusing to {purpose} {destination}: other processes kept replacing it while it was "
        "checked. Write to separate destinations."
    )


def remove_owned(folder: str | os.PathLike[str], kind: str) -> bool:
    """Delete ``folder`` when :func:`check_replaceable` proves it the package's ``kind``
    folder; return whether it was deleted. A folder that is not provably ours is left alone.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    try:
        check_replaceable(folder, kind, purpose="delete")
    except OwnershipError:
        return False
    shutil.rmtree(folder)
    return True


# ------------------------------------------------------------------------------------------
# atomic publication of folders
# ------------------------------------------------------------------------------------------


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
        folder = _new_name(destination.parent, f".{destination.name}{_STAGING_PREFIX}", "")
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


def _new_name(folder: Path, prefix: str, suffix: str) -> Path:
    """A fresh random name in ``folder``. Unlike ``tempfile``'s files and folders (mode 0600 /
    0700), what is created under it gets the user's umask: published outputs are readable by
    whoever may read files the user writes."""
    return folder / f"{prefix}{secrets.token_hex(6)}{suffix}"


def _staging_siblings(destination: Path) -> list[Path]:
    try:
        return list(destination.parent.glob(f".{destination.name}{_STAGING_PREFIX}*"))
    except OSError:
        return []


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
    pattern = re.compile(re.escape(f".{destination.name}{_STAGING_PREFIX}") + _TOKEN)
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
    pattern = re.compile(rf"\.(?:{name})\.{_TOKEN}\.tmp")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
    )


def owning_folder(
    path: str | os.PathLike[str], *, stop: str | os.PathLike[str] | None = None
) -> tuple[Path, str] | None:
    """The nearest folder above ``path`` (not ``path`` itself; up to ``stop`` included, else
    up to the file system's root) that the package wrote, with its kind; None when there is
    none. Writing into such a folder would add a file its manifest does not list.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_manifest(folder, "run")
    >>> owning_folder(folder / "sub" / "file.txt") == (folder, "run")
    True
    """
    path = Path(os.path.normpath(Path(path).absolute()))
    limit = None if stop is None else Path(os.path.normpath(Path(stop).absolute()))
    for folder in path.parents:
        if limit is not None and not folder.is_relative_to(limit):
            break
        if (folder / MANIFEST).is_file():
            manifest = read_manifest(folder)
            if manifest is not None:
                return folder, manifest["kind"]
    return None


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _renameat2()


def _rename2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2``; False when the system or file system does not support ``flags``."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def _exchange(staging: Path, destination: Path) -> None:
    """Swap two folders atomically; two renames where the system cannot."""
    if _rename2(staging, destination, _RENAME_EXCHANGE):
        return
    aside = destination.with_name(f".{destination.name}{_STAGING_PREFIX}old-{os.getpid()}")
    os.replace(destination, aside)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(aside, destination)
        raise
    os.replace(aside, staging)


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
                    _exchange(staging, destination)
                    disposable = False  # staging holds the old version: checked again first
                    problem, disposable = _confirm_replaced(
                        staging, destination, ours, kind, same, adopt
                    )
                    if problem is not None:
                        raise problem
                    break
                if _rename2(staging, destination, _RENAME_NOREPLACE):
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
            _check_pinned(pinned, kind, same, "replace", adopt, shown=destination)
        return None, True
    except FileNotFoundError:
        return None, True  # nothing there any more
    except OwnershipError as exc:
        refusal = str(exc)
    try:
        if _folder_identity(destination) == ours:
            _exchange(staging, destination)
            return OwnershipError(
                f"{refusal} (It appeared while the folder was replaced; the folder was put "
                "back as it was.)"
            ), True
    except OSError:
        pass
    kept = _new_name(destination.parent, f".{destination.name}.kept-", "")
    try:
        os.rename(staging, kept)
    except OSError:
        kept = staging  # left where it is: never deleted
    return OwnershipError(
        f"{refusal} (It appeared while the folder was replaced, and another process replaced "
        f"the folder meanwhile: the earlier folder, with those files, is kept at {kept}.)"
    ), False


# ------------------------------------------------------------------------------------------
# locks
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(
    lock_file: str | os.PathLike[str],
    *,
    timeout: float | None = 0.0,
    what: str = "this job",
    hint: str = "Wait for it to finish.",
) -> Iterator[None]:
    """Hold an exclusive operating-system lock on ``lock_file`` (created when needed; released
    when the block ends or the process dies).

    ``timeout`` seconds to wait for another holder (0: do not wait; None: wait as long as it
    takes), then :class:`~forecaster.exceptions.ConcurrentRunError`. A lock file that cannot
    be opened or locked (a link, a folder, a read-only folder) is a
    :class:`~forecaster.exceptions.ForecasterError` naming it.
    """
    import filelock

    lock_file = Path(lock_file)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(lock_file), timeout=-1 if timeout is None else timeout)
        lock.acquire()
    except filelock.Timeout:
        waited = "" if not timeout else f" for {timeout:g} s"
        raise ConcurrentRunError(
            f"Another process is running {what} (it holds the lock {lock_file}); waited"
            f"{waited or ' not at all'}. {hint}"
        ) from None
    except (OSError, ValueError) as exc:  # a link, a folder or a FIFO at the lock's path, ...
        raise ForecasterError(
            f"Cannot take the lock {lock_file} for {what}: "
            f"{getattr(exc, 'strerror', None) or exc}. It must be a regular file (not a link "
            "or a folder) in a writable folder: remove what is at that path if you put it "
            "there, then run again."
        ) from exc
    try:
        yield
    finally:
        lock.release()

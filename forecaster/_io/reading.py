"""Bounded, typed reading of untrusted files and folders.

- :func:`read_file_bounded` / :func:`load_json_bounded`: untrusted files are read only when they
  are regular files within a size limit (no FIFOs, devices or endless links), JSON only up to a
  nesting depth; :func:`read_safetensors_header` checks a safetensors header before
  ``safetensors`` sees the bytes.
- :class:`PinnedDirectory` / :func:`read_consistent`: every file of one read comes from the same
  version of a folder, even when :func:`~forecaster._io.publishing.publish_directory` replaces
  it meanwhile; where folders cannot be pinned, a read that failed is retried.
- :func:`sqlite_file_problem` / :func:`is_memory_sqlite`: whether a path can hold a SQLite
  database, and whether a ``sqlite`` URL names an in-memory one: the checks of a study's
  storage that ``tune`` and a pipeline spec's dry run share.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from forecaster._hashing import sha256_file, sha256_stream
from forecaster._io.paths import staging_siblings
from forecaster.exceptions import ForecasterError

__all__ = [
    "JSON_MAX_DEPTH",
    "SAFETENSORS_HEADER_LIMIT",
    "PinnedDirectory",
    "is_memory_sqlite",
    "load_json_bounded",
    "read_consistent",
    "read_file_bounded",
    "read_safetensors_header",
    "sqlite_file_problem",
    "sqlite_url",
]

_SQLITE_HEADER = b"SQLite format 3\x00"

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

T = TypeVar("T")


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
                "forecaster reads only regular files here. Pass the path of the file itself "
                "(or, if one was written there, restore it)."
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
                    digest = sha256_stream(handle)
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
                digest = sha256_file(Path(entry.path)) if hash_files and kind == "file" else None
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
    patience: float = 30.0,
) -> T:
    """``read(pinned)`` on the folder ``path``, again while the folder keeps being replaced
    under the read (a concurrent :func:`publish_directory`), pausing between tries (10 ms,
    doubling up to 0.5 s) so that a reader finds a gap between quick successive saves; for up
    to ``patience`` seconds. A folder that cannot be opened while a staging folder sits beside
    it (between the two renames of the fallback publish) is looked for again at once, up to 8
    times. A read that fails on a folder nobody replaced raises at once.
    """
    deadline, pause, reopen = time.monotonic() + patience, 0.01, 8
    while True:
        opened = False
        try:
            with PinnedDirectory(path, error=error) as pinned:
                opened = True
                try:
                    return read(pinned)
                except (FileNotFoundError, ForecasterError, ValueError):
                    if not (pinned.replaced() and time.monotonic() < deadline):
                        raise
        except FileNotFoundError:
            reopen -= 1
            if opened or reopen <= 0 or not staging_siblings(Path(path)):
                raise
            continue
        time.sleep(pause)
        pause = min(2 * pause, 0.5)


def sqlite_file_problem(path: Path, *, create_parents: bool = False) -> str | None:
    """Why ``path`` cannot hold a SQLite database (None when it can): it is a folder, a device,
    FIFO or socket, an unreadable file or one that is not a SQLite database, or its folder is a
    file or cannot be created (only the last folder is, unless ``create_parents``).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> sqlite_file_problem(folder / "optuna.db") is None
    True
    >>> sqlite_file_problem(folder).endswith("is a folder, not a database file")
    True
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if info is None:
        parent = path.parent
        if parent.exists() and not parent.is_dir():
            return f"{parent} is a file, not a folder"
        if not parent.exists() and not create_parents and not parent.parent.is_dir():
            return f"the folder {parent.parent} does not exist"
        return None
    if stat.S_ISDIR(info.st_mode):
        return f"{path} is a folder, not a database file"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file (a device, FIFO or socket)"
    if info.st_size:
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            return f"{path} cannot be read ({exc.strerror or exc})"
        if header != _SQLITE_HEADER:
            return f"{path} is not a SQLite database (it starts with {header[:8]!r})"
    return None


def sqlite_url(path: Path, what: str) -> str:
    """The ``sqlite:///`` URL of the absolute file ``path`` (a pipeline's default tracking store
    or study storage, ``what``), refused (``ForecasterError``) where the path holds ``?`` or
    ``%``: SQLAlchemy, which MLflow and Optuna open the URL with, reads ``?`` as the start of
    the query (``/tmp/a?b/mlflow.db`` opened ``/tmp/a``) and ``%20`` as an escaped space (the
    store of ``/tmp/a%20b`` was that of ``/tmp/a b``, another project's), and the package's
    own readers of these URLs take the path as written. Spaces, ``#`` and other characters
    are kept as they are (SQLAlchemy reads them so).

    Examples
    --------
    >>> sqlite_url(Path("/srv/my project/mlflow/mlflow.db"), "the tracking store")
    'sqlite:////srv/my project/mlflow/mlflow.db'
    """
    text = str(path)
    reasons = {
        "?": "'?', which starts a URL's query (the file would end before it)",
        "%": "'%', which starts an escaped character ('%20' reads as a space)",
    }
    found = [reason for char, reason in reasons.items() if char in text]
    if found:
        raise ForecasterError(
            f"Cannot name {what} {text} in a SQLite URL: its path holds "
            f"{' and '.join(found)}, so the URL would open another file. Move the project to "
            "a folder whose path has neither, or keep the store elsewhere "
            "(MLFLOW_TRACKING_URI, e.g. sqlite:////srv/mlflow/mlflow.db; [training] storage "
            "for the study)."
        )
    return f"sqlite:///{text}"


def is_memory_sqlite(url: str) -> bool:
    """Whether a database URL names an in-memory SQLite database (``sqlite://``,
    ``sqlite:///:memory:``, ``?mode=memory``), which lives and dies with one connection (False
    for other databases).

    Examples
    --------
    >>> is_memory_sqlite("sqlite://"), is_memory_sqlite("sqlite:///studies/optuna.db")
    (True, False)
    >>> is_memory_sqlite("postgresql://host/db")
    False
    """
    if url.split("://", 1)[0].split("+", 1)[0].lower() != "sqlite":
        return False
    path_text = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    memory = not path_text or ":memory:" in path_text
    return memory or re.search(r"[?&]mode=memory\b", url) is not None

"""The Parquet files of ``forecaster predict`` and ``forecaster backtest``: where they may be
written, and the ``forecaster`` key-value metadata that marks them as this command line's.

A file is replaced only when it is a regular Parquet file the command line wrote for the same
pipeline and kind (:func:`check_parquet_destination`), and, without ``--force``, when it holds
no later as-of than the command's (:func:`check_not_later_file`: a backfill into a file that
every as-of shares, the rule of ``run``'s outputs, :func:`forecaster.jobs.backfill.later_as_of`).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, cast

import polars as pl

import forecaster._io as _io
from forecaster._hashing import sha256_hasher
from forecaster._version import __version__
from forecaster.exceptions import ForecasterError, OwnershipError
from forecaster.jobs.backfill import later_as_of
from forecaster.jobs.data import AsOf
from forecaster.jobs.entries import existing_file

__all__ = [
    "PARQUET_KEY",
    "check_not_later_file",
    "check_parquet_destination",
    "parquet_owner",
    "write_parquet",
]

PARQUET_KEY = "forecaster"
"""The Parquet key-value metadata key that marks a file written by this command line."""


def check_not_later_file(path: Path, kind: str, when: AsOf, force: bool, fix: str) -> None:
    """Refuse (``OwnershipError``) to replace the ``kind`` file at ``path`` (checked by
    :func:`check_parquet_destination`) when it holds a later as-of than ``when`` (or one that
    cannot be compared with it), unless ``force``: a backfill into a file that every as-of
    shares (an ``output.dir`` without ``{as_of}``, the same ``--out``) would replace the
    latest forecasts unasked. ``fix``: how to keep both, for the message. Files written
    before their effective as-of was recorded are compared by their label."""
    if force:
        return
    written = parquet_owner(path)
    if written is None:
        return
    later = later_as_of(
        written.get("as_of"), written.get("effective_as_of"), when, "this command's"
    )
    if later is not None:
        raise OwnershipError(
            f"Refusing to replace {path}: it holds the {kind} {later}. Pass --force to replace "
            f"it with this older as-of, or {fix}."
        )


def check_parquet_destination(path: Path, kind: str, spec: Any) -> None:
    """Refuse (``OwnershipError``) to replace anything at ``path`` but a regular Parquet file
    that this command line wrote (its ``forecaster`` metadata) for the same pipeline and of
    the same ``kind``; a link, folder, pipe or any other file is left alone. Also refuse a
    path inside a folder forecaster wrote."""
    owner = _io.owning_folder(path)
    if owner is not None:
        raise OwnershipError(
            f"Refusing to write {path}: it is inside {owner[0]}, a {owner[1]} folder forecaster "
            "wrote (its manifest would no longer list what it holds). Choose a path outside it."
        )
    if not existing_file(path, "a file forecaster wrote", "Choose a new file name with --out."):
        return
    written = parquet_owner(path)
    if written is None:
        raise OwnershipError(
            f"Refusing to replace {path}: it is not a file forecaster wrote (no '{PARQUET_KEY}' "
            "Parquet metadata), and replacing it would lose what it holds. Choose a new file "
            "name with --out, or move the file away."
        )
    mine = {"kind": kind, "pipeline": spec.pipeline.name}
    if {key: written.get(key) for key in mine} != mine:
        raise OwnershipError(
            f"Refusing to replace {path}: it holds the {written.get('kind')} of the pipeline "
            f"{written.get('pipeline')!r} (as of {written.get('as_of')}), not a {kind} of "
            f"{spec.pipeline.name!r}, and replacing it would lose it. Choose a new file name "
            "with --out, or move the file away."
        )


def parquet_owner(path: Path) -> dict[str, Any] | None:
    """The ``forecaster`` metadata of the Parquet file ``path``, or None (not Parquet, not
    marked, unreadable). Only the footer is read, after checking the Parquet magic bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(-8, os.SEEK_END)
            tail = handle.read(8)
    except OSError:
        return None
    if head != b"PAR1" or tail[4:] != b"PAR1":
        return None
    if int.from_bytes(tail[:4], "little") > min(os.path.getsize(path), 64 * 2**20):
        return None
    try:
        metadata = pl.read_parquet_metadata(path)
    except Exception:  # any reader error: not a file we can vouch for
        return None
    try:
        value = _io.load_json_bounded(metadata.get(PARQUET_KEY, "").encode(), source=str(path))
    except ForecasterError:
        return None
    return value if isinstance(value, dict) else None


class _Hashing(io.RawIOBase):
    """A binary file that passes what is written to ``handle`` and hashes it (sha256) and
    counts its bytes on the way: the digest of a file written in one pass, not read back.
    ``error``: what a write raised (a full disk, an interrupt), which Polars reports as a
    ``ComputeError`` of its own (:func:`_written_through`)."""

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__()
        self.handle, self.hasher, self.size = handle, sha256_hasher(), 0
        self.error: BaseException | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            view = memoryview(data).cast("B")
            self.hasher.update(view)
            self.size += len(view)
            return self.handle.write(view)
        except BaseException as exc:  # raised again by _written_through, not Polars' error
            self.error = exc
            raise

    def flush(self) -> None:
        if not self.handle.closed:
            self.handle.flush()


def _written_through(frame: pl.DataFrame, tmp: Path, metadata: dict[str, str]) -> _Hashing:
    """Write ``frame`` to ``tmp`` through a :class:`_Hashing` file (returned, its digest
    taken). What a write raised is raised as it was (``OSError`` of a full disk,
    ``KeyboardInterrupt``), not as the ``ComputeError`` Polars turns it into ("underlying IO
    error: [Errno 28]"), which the commands would report as a bug (exit 1, not 130)."""
    with open(tmp, "wb") as handle:  # not seekable: written in order, as hashed
        hashing = _Hashing(handle)
        try:
            frame.write_parquet(cast(BinaryIO, hashing), metadata=metadata)  # a binary file
        except pl.exceptions.PolarsError:
            if hashing.error is not None:
                raise hashing.error from None
            raise
    return hashing


def write_parquet(
    frame: pl.DataFrame, path: Path, kind: str, spec: Any, when: Any, model: str | None = None
) -> dict[str, Any]:
    """Write ``frame`` atomically with the ``forecaster`` metadata: its kind, pipeline, as-of
    (its label and effective as-of), package version and, with ``--model``, that folder and
    its manifest's digest (which model made it: a later predict with another model replaces
    the file). Returns the file's ``parquet_bytes`` and ``parquet_sha256``, hashed as it is
    written (the summary beside it records them: what ties the summary to this file)."""
    marker = {
        "kind": kind,
        "pipeline": spec.pipeline.name,
        "as_of": when.label,
        "effective_as_of": when.effective,
        "package_version": __version__,
    }
    if model is not None:
        manifest = _io.read_manifest(model)
        marker["model"] = str(Path(model).absolute())
        marker["model_digest"] = None if manifest is None else manifest.get("digest")
    metadata = {PARQUET_KEY: json.dumps(marker)}
    written: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        hashing = _written_through(frame, tmp, metadata)
        written.update(parquet_bytes=hashing.size, parquet_sha256=hashing.hasher.hexdigest())

    _io.write_atomic(path, write)
    return written

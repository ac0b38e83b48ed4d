"""Content digests: one module for every digest the package computes.

- :func:`digest_arrays`: what data a fit trains on, what a checkpoint was written for, a
  dataset fingerprint (BLAKE2b, 32 hex digits, over arrays, bytes and text in order, with each
  array's dtype and shape).
- :func:`fingerprint_digest`: the ``data.hash`` of a dataset fingerprint logged to MLflow (the
  same BLAKE2b without length prefixes: the values earlier versions logged, so that a study
  resumed after an upgrade still recognises its data).
- :func:`json_digest`: what a spec, a study or a manifest says (sha256 of canonical JSON).
- :func:`sha256_bytes` / :func:`sha256_file` / :func:`sha256_stream`: the integrity checksums
  of the files the package writes (manifests).
- :func:`sha256_hasher`: a sha256 object for a digest built piece by piece (the code of a
  callable, a seed): the one place outside this module's functions where one is made.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "digest_arrays",
    "fingerprint_digest",
    "json_digest",
    "sha256_bytes",
    "sha256_file",
    "sha256_hasher",
    "sha256_stream",
]


def digest_arrays(*parts: np.ndarray | bytes | str) -> str:
    """A content digest (BLAKE2b, 32 hex digits) of arrays, bytes and strings, in order.

    Examples
    --------
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3))
    True
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3).astype("int32"))
    False
    """
    return _blake2b(parts, lengths=True)


def fingerprint_digest(*parts: np.ndarray | bytes | str) -> str:
    """BLAKE2b (32 hex digits) of arrays (each after its dtype and shape), bytes and strings,
    concatenated without length prefixes: the ``data.hash`` of
    :func:`forecaster.tracking.dataset_fingerprint` since the first version (a stored value
    must not change). New digests use :func:`digest_arrays`.

    Examples
    --------
    >>> fingerprint_digest("ab", "c") == fingerprint_digest("a", "bc")
    True
    """
    return _blake2b(parts, lengths=False)


def _blake2b(parts: tuple[np.ndarray | bytes | str, ...], *, lengths: bool) -> str:
    """BLAKE2b (32 hex digits) of ``parts``: each array after its dtype and shape, each part
    after its byte length when ``lengths`` (so that ``"ab", "c"`` differs from ``"a", "bc"``)."""
    digest = hashlib.blake2b(digest_size=16)
    for item in parts:
        if isinstance(item, str):
            item = item.encode()
        if isinstance(item, np.ndarray):
            digest.update(f"{item.dtype.str}{item.shape}".encode())
            item = memoryview(np.ascontiguousarray(item)).cast("B")
        if lengths:
            digest.update(len(item).to_bytes(8, "little"))
        digest.update(item)
    return digest.hexdigest()


def json_digest(value: Any, length: int | None = None) -> str:
    """The sha256 of ``value`` as canonical JSON (sorted keys, no spaces), its first
    ``length`` hex digits when given.

    Examples
    --------
    >>> json_digest({"b": 1, "a": [2]}, 12) == json_digest({"a": [2], "b": 1}, 12)
    True
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest if length is None else digest[:length]


def sha256_bytes(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return sha256_stream(handle)


def sha256_stream(handle: BinaryIO) -> str:
    """The sha256 hex digest of what is left to read from a binary file object (an open
    file, a descriptor opened with ``os.fdopen``), read in blocks."""
    return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_hasher(data: bytes = b"") -> Any:
    """A new sha256 hash object fed ``data`` (``update`` it with more, then ``hexdigest()`` or
    ``digest()``).

    Examples
    --------
    >>> hasher = sha256_hasher(b"a")
    >>> hasher.update(b"b")
    >>> hasher.hexdigest() == sha256_bytes(b"ab")
    True
    """
    return hashlib.sha256(data)

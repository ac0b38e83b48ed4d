"""Content digests: one module for every digest the package computes.

- :func:`digest_arrays`: what data a fit trains on, what a checkpoint was written for, a
  dataset fingerprint (BLAKE2b, 32 hex digits, over arrays, bytes and text in order, with each
  array's dtype and shape).
- :func:`json_digest`: what a spec, a study or a manifest says (sha256 of canonical JSON).
- :func:`sha256_bytes` / :func:`sha256_file`: the integrity checksums of the files the package
  writes (manifests).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

__all__ = ["digest_arrays", "json_digest", "sha256_bytes", "sha256_file"]


def digest_arrays(*parts: np.ndarray | bytes | str) -> str:
    """A content digest (BLAKE2b, 32 hex digits) of arrays, bytes and strings, in order.

    Examples
    --------
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3))
    True
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3).astype("int32"))
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    for item in parts:
        if isinstance(item, str):
            item = item.encode()
        if isinstance(item, np.ndarray):
            digest.update(f"{item.dtype.str}{item.shape}".encode())
            item = memoryview(np.ascontiguousarray(item)).cast("B")
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
        return hashlib.file_digest(handle, "sha256").hexdigest()

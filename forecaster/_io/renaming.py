"""Atomic renames of the platform: ``renameat2`` with ``RENAME_NOREPLACE`` (never replace a
file that appeared) and ``RENAME_EXCHANGE`` (swap two entries in one step) on Linux; callers
fall back to plain renames where :func:`rename2` says the system cannot."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

from forecaster._io.paths import STAGING_PREFIX

__all__ = ["RENAME_EXCHANGE", "RENAME_NOREPLACE", "exchange", "rename2"]

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


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


def rename2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2``; False when the system or file system does not support ``flags``."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def exchange(staging: Path, destination: Path) -> None:
    """Swap two folders atomically; two renames where the system cannot."""
    if rename2(staging, destination, RENAME_EXCHANGE):
        return
    aside = destination.with_name(f".{destination.name}{STAGING_PREFIX}old-{os.getpid()}")
    os.replace(destination, aside)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(aside, destination)
        raise
    os.replace(aside, staging)

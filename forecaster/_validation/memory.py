"""The one memory bound of the package: :func:`memory_limit` / :func:`check_allocation`.

The bound is the smallest of physical memory, the room under ``ulimit -v`` and under the
cgroup's limit; network sizes, training batches, baseline forecasts and audio features are
checked against it before they are allocated.
"""

from __future__ import annotations

import os

from forecaster.exceptions import DataValidationError

__all__ = ["check_allocation", "format_bytes", "memory_limit"]

_CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``'1.5 GB'``.

    Examples
    --------
    >>> format_bytes(3 * 2**29)
    '1.5 GB'
    """
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB"):
        if value < 1024 or unit == "EB":
            break
        value /= 1024
    return f"{value:.3g} {unit}"


def _read_number(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_limits() -> list[tuple[int, str]]:
    """Room left under the cgroup memory limits of this process (v2 ``memory.max`` of its
    cgroup and each ancestor, v1 ``memory.limit_in_bytes``), each less the cgroup's usage."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            lines = handle.read(65536).splitlines()
    except OSError:
        lines = []
    folders = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2].strip("/")
        if parts[0] == "0" and not parts[1]:  # v2 (or hybrid: unified/): cgroup, ancestors
            steps = path.split("/") if path else []
            for root in (_CGROUP_ROOT, f"{_CGROUP_ROOT}/unified"):
                for k in range(len(steps), -1, -1):
                    folders.append(("/".join([root, *steps[:k]]), "memory.max", "current"))
        elif "memory" in parts[1].split(","):  # v1
            for base in (f"{_CGROUP_ROOT}/memory/{path}", f"{_CGROUP_ROOT}/memory"):
                folders.append((base.rstrip("/"), "memory.limit_in_bytes", "usage_in_bytes"))
    if not folders:
        folders = [(_CGROUP_ROOT, "memory.max", "current")]
    limits = []
    for folder, name, usage in dict.fromkeys(folders):
        limit = _read_number(f"{folder}/{name}")
        if limit is None or limit >= _UNLIMITED:
            continue
        used = _read_number(f"{folder}/memory.{usage}") or 0
        limits.append(
            (
                max(limit - used, 0),
                f"the memory limit of this process's cgroup ({folder}/{name}: "
                f"{format_bytes(limit)}, {format_bytes(used)} of it in use)",
            )
        )
    return limits


def _address_space_limit() -> tuple[int, str] | None:
    """Room left under RLIMIT_AS (``ulimit -v``): the limit less the address space in use."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            used = int(handle.read(256).split()[0]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError, AttributeError):
        used = 0
    return (
        max(soft - used, 0),
        f"the address-space limit of this process (RLIMIT_AS, ulimit -v: "
        f"{format_bytes(soft)}, {format_bytes(used)} of it in use)",
    )


def memory_limit() -> tuple[int, str]:
    """``(bytes, description)`` of the memory this process can use: the smallest of this
    machine's physical memory, the room left under its address-space limit (RLIMIT_AS) and
    under its cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``).

    The one memory bound of the package: network sizes, training batches, baseline forecasts
    and audio features are all checked against it before they are allocated.

    Examples
    --------
    >>> memory_limit()[0] > 0
    True
    """
    try:
        total = int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        found = [(total, f"this machine's physical memory ({format_bytes(total)})")]
    except (AttributeError, ValueError, OSError):
        total = 2**40
        found = [(total, f"an assumed {format_bytes(total)} (the machine's memory is unknown)")]
    rlimit = _address_space_limit()
    if rlimit is not None:
        found.append(rlimit)
    found.extend(_cgroup_limits())
    return min(found, key=lambda item: item[0])


def check_allocation(n_bytes: int, *, what: str, grows_with: str, fix: str) -> int:
    """Refuse to allocate about ``n_bytes`` when that exceeds :func:`memory_limit`.

    Parameters
    ----------
    n_bytes : int
        The estimate.
    what : str
        What would take the memory, e.g. ``"The naive forecast"``.
    grows_with : str
        The arguments it grows with, e.g. ``"horizon=1,000,000,000 and 2 series"``.
    fix : str
        How to get under the limit.

    Returns
    -------
    int
        ``n_bytes``, when it fits.

    Examples
    --------
    >>> check_allocation(2**70, what="This", grows_with="n=2**67", fix="Lower n.")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: This would take an estimated 1.02e+03 EB, ...
    """
    limit, where = memory_limit()
    if n_bytes <= limit:
        return n_bytes
    raise DataValidationError(
        f"{what} would take an estimated {format_bytes(n_bytes)}, more than {where}. "
        f"It grows with {grows_with}. {fix}"
    )

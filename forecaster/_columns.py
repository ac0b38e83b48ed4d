"""Names of the temporary columns forecaster adds to a user's frame (base layer)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["temporary_names"]


def temporary_names(taken: Iterable[str], *bases: str) -> tuple[str, ...]:
    """Names for temporary columns: each of ``bases``, with the first suffix ``_1``, ``_2``,
    ... that makes it differ from every name in ``taken`` and from the others.

    The one way forecaster names the columns it adds to a user's frame for a moment (keys of
    a join, row counters), so that no column of the user's can be replaced by one or collide
    with it, whatever the user's columns are called.

    Examples
    --------
    >>> temporary_names(["id", "_last", "_last_1"], "_last", "_k")
    ('_last_2', '_k')
    """
    used = set(taken)
    names = []
    for base in bases:
        name, k = base, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        names.append(name)
    return tuple(names)

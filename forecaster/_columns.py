"""Names of the temporary columns forecaster adds to a user's frame, the numbers in the names
of its interval and quantile columns, and the names of the columns a backtest's forecasts and
folds frames put beside the user's (its actual values, folds, cutoffs, steps, training spans)
(base layer)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "BACKTEST_KEYS",
    "FOLD_COLUMNS",
    "TRAIN_COLUMNS",
    "actual_column",
    "is_bound_column",
    "is_number_label",
    "number_label",
    "temporary_names",
]

_PLAIN_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")

BACKTEST_KEYS = ("fold", "cutoff", "step")
"""The columns a backtest's (and a calibration's) forecasts frame puts beside the id, time and
target columns: each forecast's fold, cutoff and step."""

TRAIN_COLUMNS = ("train_start", "train_end", "train_rows")
"""The columns of a backtest's folds frame that describe the training span of a fold's
model."""

FOLD_COLUMNS = ("model", *TRAIN_COLUMNS)
"""The columns of a backtest's folds frame beside its id column, but the :data:`BACKTEST_KEYS`
(``fold``, ``cutoff``): each fold's model and its training span."""


def number_label(value: float) -> str:
    """The number ``value`` as it is written in a column name (``y_lo_80``, ``y_q2.5``): at
    most 6 significant digits, ``f"{value:g}"``.

    Examples
    --------
    >>> number_label(80.0), number_label(2.5), number_label(5e-05)
    ('80', '2.5', '5e-05')
    """
    return f"{value:g}"


def is_number_label(text: str) -> bool:
    """Whether ``text`` is a number as column names are read back: plain digits with an
    optional decimal part (``80``, ``2.5``; not ``5e-05``, ``-1`` or ``inf``).

    Examples
    --------
    >>> is_number_label("2.5"), is_number_label("5e-05")
    (True, False)
    """
    return bool(_PLAIN_NUMBER.match(text))


def actual_column(target: str) -> str:
    """The name of the column of ``target``'s actual values beside its forecasts in a
    backtest's (and calibration's) forecasts frame: ``<target>_actual``.

    Examples
    --------
    >>> actual_column("y")
    'y_actual'
    """
    return f"{target}_actual"


def is_bound_column(column: str, target: str) -> bool:
    """Whether ``column`` is named like an interval bound or quantile column of ``target``:
    ``<target>_lo_<L>``, ``<target>_hi_<L>`` or ``<target>_q<P>`` with a plain number.

    Examples
    --------
    >>> is_bound_column("y_lo_80", "y"), is_bound_column("y_q10", "y"), is_bound_column("y_h5", "y")
    (True, True, False)
    """
    return any(
        column.startswith(prefix) and is_number_label(column[len(prefix) :])
        for prefix in (f"{target}_lo_", f"{target}_hi_", f"{target}_q")
    )


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

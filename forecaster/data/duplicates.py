"""The message of duplicate (series, time) rows, a refusal of
:func:`~forecaster.data.grid.check_grid`: without an id column, times that repeat are most
often several series in one frame, so the message first asks for ``id_col`` and names the
columns that would split the rows into series (:func:`series_columns`), and only then
suggests aggregating or dropping duplicates, which would keep one series' row per time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.checks import row_examples
from forecaster.data.frames import READ_ERRORS, SERIES_ID, collect_frame, frame_schema
from forecaster.exceptions import DataValidationError

__all__ = ["duplicate_rows_message", "series_columns"]

_UNREADABLE: tuple[type[BaseException], ...] = (*READ_ERRORS, DataValidationError)
"""A source that cannot be read again: the message goes without the columns it names."""

_MAX_CANDIDATES = 20
"""Columns read at most to find the ones that split the rows into series."""


def series_columns(source: Any, time_col: str, used: Sequence[str]) -> list[str]:
    """The columns of ``source`` (a polars DataFrame or LazyFrame) other than ``used`` that
    could name its series: text, categorical, Boolean or integer columns (not floats, not
    times) with more than one value, and not one per row or nearly (a row number), whose
    values split the rows into series with one row per time (``time_col``). Only the first
    20 such columns are read; none when the source cannot be read again.

    Examples
    --------
    >>> frame = pl.DataFrame({"store": ["a", "b", "a", "b"], "day": [1, 1, 2, 2],
    ...                       "batch": [7, 7, 7, 8], "row": [0, 1, 2, 3], "y": [1.0] * 4})
    >>> series_columns(frame, "day", ["day", "y"])
    ['store']
    """
    try:
        schema = frame_schema(source)
    except _UNREADABLE:  # not a frame: nothing to name
        return []
    kinds = [
        name
        for name, dtype in schema.items()
        if name not in used
        and name != SERIES_ID
        and (
            dtype.is_integer()
            or dtype in (pl.String, pl.Boolean, pl.Categorical)
            or isinstance(dtype, pl.Enum)
        )
    ][:_MAX_CANDIDATES]
    if not kinds or time_col not in schema:
        return []
    try:
        rows = collect_frame(source, columns=[time_col, *kinds])
    except Exception:
        return []
    return [
        name
        for name in kinds
        if 1 < rows[name].n_unique() <= rows.height // 2  # series of 2 rows or more on average
        and not rows.select(name, time_col).is_duplicated().any()
    ]


def duplicate_rows_message(
    data: pl.DataFrame,
    rows: np.ndarray,
    *,
    id_col: str | None,
    time_col: str,
    source: Any = None,
    used: Sequence[str] = (),
) -> str:
    """The refusal of the duplicate (series, time) ``rows`` of the sorted ``data``: with an
    ``id_col``, aggregate or drop them; without one, first the columns of ``source`` (the
    user's frame; ``used``: its columns with a role) that would name the series
    (:func:`series_columns`), then the aggregation, which would keep one row per time of
    all the series together."""
    mask = np.zeros(data.height, dtype=bool)
    mask[rows] = True
    examples = row_examples(data, mask, id_col if id_col is not None else SERIES_ID, time_col)
    head = (
        f"{rows.size} duplicate ({'id, ' if id_col else ''}time) rows, e.g. {examples}. "
        "Expected one row per series and time step."
    )
    aggregate = "Aggregate or drop duplicates first, e.g. frame.unique(subset=[...], keep='last')."
    if id_col is not None:
        return f"{head} {aggregate}"
    found = series_columns(source, time_col, used) if source is not None else []
    if found:
        names = " or ".join(f"id_col={name!r}" for name in found[:3])
        which = (
            f"pass {names}: {'its' if len(found) == 1 else 'each of their'} values split the "
            "rows into series with one row per time"
        )
    else:
        which = "pass id_col=<the column that names the series>"
    return (
        f"{head} Several series in one frame? Without id_col the frame is one series: "
        f"{which}. If it is one series, aggregate or drop duplicates first, e.g. "
        "frame.unique(subset=[...], keep='last') (one row per time)."
    )

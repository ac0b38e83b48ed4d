"""The rows that filling gaps makes up: the steps of each series' regular grid that a frame
lacks, found by the grid of :func:`~forecaster.data.validate.validate_frame` itself.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster._validation import check
from forecaster.data.frames import SERIES_ID
from forecaster.data.gaps import warn_made_up
from forecaster.data.validate import validate_frame
from forecaster.exceptions import ArgumentError

__all__ = ["absent_rows"]


def absent_rows(
    frame: pl.DataFrame,
    *,
    time_col: str,
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "ffill",
) -> pl.DataFrame:
    """The ``(id, time)`` rows that ``validate_frame(frame, ..., missing=missing)`` would make
    up: the steps of each series' regular grid (from its first to its last time) absent
    from ``frame``, at the times filling gives them.

    The grid is :func:`~forecaster.data.validate.validate_frame`'s own, checked as it checks
    it (duplicates, times off the grid, a declared ``freq`` finer than the data: the same
    ``DataValidationError``), so a caller that adds these rows to ``frame`` leaves filling
    nothing to make up. Filling no longer counts them then, so this warns as filling does
    when they are more than :data:`~forecaster.data.gaps.FILL_WARN_SHARE` of the grid (not
    for ``missing="zero"``).

    Parameters
    ----------
    frame : polars.DataFrame
        Long format, one row per (series, time step); only ``id_col`` and ``time_col`` are read.
    time_col, id_col, freq
        As in :func:`~forecaster.data.validate.validate_frame`.
    missing : {"ffill", "zero", "interpolate"}, default "ffill"
        The filling policy the rows are made up for (it names it in the warning);
        ``"error"`` makes up no row and is refused.

    Returns
    -------
    polars.DataFrame
        The absent rows sorted by (id, time): ``[id_col, time_col]`` (``[time_col]`` without an
        id column) with ``frame``'s dtypes; no row when the grid has no gap.

    Examples
    --------
    Business days without Thursday 2024-01-04 (a holiday):

    >>> import datetime as dt
    >>> days = [dt.date(2024, 1, d) for d in (2, 3, 5, 8, 9, 10)]
    >>> absent_rows(pl.DataFrame({"date": days}), time_col="date", freq="1bd")["date"].to_list()
    [datetime.date(2024, 1, 4)]
    """
    check("missing", missing)
    if missing == "error":
        raise ArgumentError(
            "absent_rows lists the rows a filling policy makes up, but missing='error' makes "
            "up none (it refuses gaps). Pass missing='ffill', 'zero' or 'interpolate'."
        )
    keys = [c for c in (id_col, time_col) if c is not None]
    (flag,) = temporary_names(keys, "__observed__")
    filled, grid = validate_frame(
        frame.select(keys).with_columns(pl.lit(1.0).alias(flag)),
        target=flag,
        time_col=time_col,
        id_col=id_col,
        freq=freq,
        missing="zero",  # absent rows get 0, and filling warns of nothing
    )
    observed = filled[flag] == 1.0
    if observed.all():
        return frame.select(keys).clear()
    id_name = id_col if id_col is not None else SERIES_ID
    if missing != "zero":
        seen = filled.filter(observed)
        lengths = seen[id_name].rle()
        offsets = np.concatenate([[0], np.cumsum(lengths.struct.field("len").to_numpy())])
        span = filled[id_name].rle().struct.field("len").to_numpy()
        warn_made_up(seen, id_name, time_col, offsets, span, grid, missing)
    return filled.filter(~observed).select(keys)

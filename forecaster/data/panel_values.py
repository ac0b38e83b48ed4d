"""The values a frame holds at every row of its validated panel, as float64: the frame's
own values (not the panel's float32 rounding, nor what a ``missing=`` policy filled), for
scores (:meth:`~forecaster.data.panel.Panel.exact_targets`) and the made-up-origin checks
(:mod:`forecaster.data.made_up`). Read in place when the frame holds exactly the panel's rows
in order; else, on a grid of fixed steps, each frame row's panel row is index arithmetic;
else the join on the keys (:func:`~forecaster.data.frames.observed_values`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.frames import collect_frame, keys_aligned, match_keys, observed_values

__all__ = ["panel_observed_values"]


def panel_observed_values(
    panel: Any, frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str] | None = None
) -> Any:
    """:func:`~forecaster.data.frames.observed_values` at every row of ``panel`` (a
    :class:`~forecaster.data.panel.Panel` read from ``frame``; rows by ``columns``, the targets
    when None; float64, NaN where ``frame`` holds no value). Read in place when ``frame``
    holds exactly the panel's rows in order (the usual sorted frame without gaps); otherwise,
    on a grid of fixed steps, each frame row's panel row is index arithmetic (its series'
    first row plus its steps from the series' first time), not a join on (id, time); the join
    where neither applies (calendar steps, key dtypes that differ from the panel's, a (series,
    time) held twice).

    Examples
    --------
    >>> from forecaster.data.panel import Panel
    >>> frame = pl.DataFrame({"t": [0, 1, 3], "y": [1e8 + 1, 1e8 + 2, None]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="ffill", freq=1)
    >>> panel_observed_values(panel, frame).ravel().tolist()
    [100000001.0, 100000002.0, nan, nan]
    """
    columns = list(panel.targets if columns is None else columns)
    on = [panel.time_col] if panel.id_col is None else [panel.id_col, panel.time_col]
    data = collect_frame(frame, columns=[*on, *columns])
    ids = panel.keys[panel.id_name].gather(panel.series_of_rows())
    rows = pl.DataFrame(
        [panel.time] if panel.id_col is None else [ids.alias(panel.id_col), panel.time]
    )
    aligned = keys_aligned(rows, data)  # read in place when aligned; else the grid, else the join
    if not aligned:
        values = _grid_values(panel, data, columns)
        if values is not None:
            return values
    return observed_values(rows, data, columns, aligned)


def _grid_values(panel: Any, data: pl.DataFrame, columns: list[str]) -> np.ndarray | None:
    """The values of :func:`panel_observed_values` by index arithmetic; None where it does not
    apply (the join decides): calendar steps, other key dtypes, a panel whose times are not
    its series' first time plus whole steps (days of a time zone across a DST change), a
    (series, time) held twice."""
    time_dtype = panel.time.dtype
    if panel.freq.is_calendar or data.schema[panel.time_col] != time_dtype:
        return None
    if panel.id_col is not None and data.schema[panel.id_col] != panel.keys.schema[panel.id_name]:
        return None
    n_rows = len(panel.time)
    series = np.zeros(data.height, dtype=np.int64)
    known = np.ones(data.height, dtype=bool)
    if panel.id_col is not None:
        keys = panel.keys.select(panel.id_name)
        series, known = match_keys(keys, data.select(pl.col(panel.id_col).alias(panel.id_name)),
                                   panel.id_name)  # fmt: skip
    times = data[panel.time_col]
    known &= ~times.is_null().to_numpy()
    physical = times.to_physical().fill_null(0).to_numpy().astype(np.int64)
    grid = panel.time.to_physical().to_numpy().astype(np.int64)
    starts, step = grid[panel.offsets[:-1]], panel.freq.step_in(time_dtype)
    of_rows = panel.series_of_rows()
    position = np.arange(n_rows) - panel.offsets[of_rows]
    if (grid != starts[of_rows] + position * step).any():  # local days across a DST change
        return None
    steps, rest = np.divmod(physical - starts[series], step)
    known &= (rest == 0) & (steps >= 0) & (steps < panel.lengths[series])  # others: no panel row
    rows = (panel.offsets[series] + steps)[known]
    position = np.full(n_rows, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    if (position[rows] != np.arange(len(rows))).any():  # a row held twice: the join refuses
        return None
    out = np.full((n_rows, len(columns)), np.nan)
    for j, target in enumerate(columns):
        column = data[target].cast(pl.Float64).fill_nan(None).fill_null(float("nan"))
        out[rows, j] = column.to_numpy()[known]
    return out

"""Windows ending at forecast origins inside the data, read as known at those origins: a
run of cells that ``missing="interpolate"`` filled up to an origin holds the value before it
there (:class:`~forecaster.data.known_values.KnownValues`). Which origins that changes
(:func:`origins_in_runs`), their target windows packed one after another for the running-sum
forecasts of the baselines (:func:`known_windows`), and the mean absolute one-step change of
each window, the spread a normalised calibration divides by (:func:`window_spread`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.spans import floor_spread, span_mean

__all__ = ["KnownWindows", "known_windows", "origins_in_runs", "window_spread"]


class KnownWindows(NamedTuple):
    """What :func:`known_windows` returns.

    Attributes
    ----------
    rows : numpy.ndarray
        ``(n, length)`` global rows of each window (its series' first row repeated where the
        window would start before it).
    values : numpy.ndarray
        ``(n * length, n_targets)`` float64: the windows' targets as known at their origins,
        one window after another (a panel of ``n`` short series).
    starts, origins : numpy.ndarray
        Each window's first row of its own series and its origin, as rows of ``values``.
    """

    rows: np.ndarray
    values: np.ndarray
    starts: np.ndarray
    origins: np.ndarray


def origins_in_runs(panel: Panel, rows: np.ndarray) -> np.ndarray:
    """Positions in ``rows`` (global rows) of the origins whose own target value
    ``missing="interpolate"`` filled: the only ones whose windows read differently as known
    there (:meth:`~forecaster.data.panel.Panel.known_values`) than from the panel's values."""
    if panel.interpolated is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(panel.interpolated[rows, : panel.n_targets].any(axis=1))


def known_windows(
    panel: Panel, origins: np.ndarray, length: int, starts: np.ndarray
) -> KnownWindows:
    """The ``length`` target rows up to each of the global rows ``origins`` as known there
    (:meth:`~forecaster.data.panel.Panel.known_values`), packed one window after another, so
    that the running-sum forecasts of the baselines (which read a panel of series) take
    them as they take the panel's own values; ``starts``: the first row of each origin's
    series (no row before it is read).

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": [0, 1, 2, 3], "y": [0.0, None, None, 6.0]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
    >>> packed = known_windows(panel, np.array([2]), 4, np.array([0]))  # row 0 read twice
    >>> packed.values[:, 0].tolist(), packed.starts.tolist(), packed.origins.tolist()
    ([0.0, 0.0, 0.0, 0.0], [1], [3])
    """
    first = origins - (length - 1)
    rows = np.maximum(first[:, None] + np.arange(length), starts[:, None])
    known = panel.known_values(rows, origins[:, None])[..., : panel.n_targets]
    packed = np.arange(len(origins), dtype=np.int64) * length
    return KnownWindows(
        rows,
        known.reshape(-1, panel.n_targets).astype(np.float64),
        packed + np.maximum(starts - first, 0),
        packed + length - 1,
    )


def window_spread(
    panel: Panel, rows: np.ndarray, lookback: int, *, floor: float = 0.0, history: float = 0.0
) -> np.ndarray:
    """The mean absolute one-step change of every target ``(len(rows), n_targets)``, float64,
    over the ``lookback`` rows of each window ending at the global ``rows`` of ``panel``.

    Changes with a missing value on either side are skipped; a window without any gives 0.
    With ``floor > 0`` the spread is at least ``floor`` times the window's mean absolute
    value (a flat window keeps a scale of its level: a constant series so far gets ``floor``
    times its level, as the scaler scales it), and 1 where it stays below float32's
    smallest normal number (a window of zeros: :func:`~forecaster.data.spans.floor_spread`);
    with ``history > 0`` at least ``history`` times its series' mean absolute change up to
    the window's end (a window of zeros keeps a scale of its series' past).
    Running sums down each series: one pass whatever the number of windows.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": [1, 2, 3, 4], "y": [1.0, 3.0, 2.0, 2.0]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t")
    >>> window_spread(panel, np.array([2, 3]), 3).tolist()  # |2| and |-1|; |-1| and |0|
    [[1.5], [0.5]]
    >>> window_spread(panel, np.array([3]), 2, floor=0.1).tolist()  # no change: 0.1 * 2
    [[0.2]]
    >>> window_spread(panel, np.array([3]), 2, history=0.5).tolist()  # 0.5 * mean(2, 1, 0)
    [[0.5]]
    """
    nt = panel.n_targets
    targets = panel.values[:, :nt].astype(np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    change = np.abs(np.diff(targets, axis=0, prepend=np.nan))
    change[panel.offsets[:-1][panel.lengths > 0]] = np.nan  # no change across series
    start = rows + 1 - lookback  # each window's first row; its lookback - 1 changes after it
    spread = span_mean(change, panel.offsets, start + 1, rows)
    level = span_mean(np.abs(targets), panel.offsets, start, rows) if floor > 0 else None
    inside = origins_in_runs(panel, rows)  # their windows as known at the origin
    if inside.size:
        first = rows[inside] - (lookback - 1)
        known = known_windows(panel, rows[inside], lookback, first).values
        known = known.reshape(inside.size, lookback, nt)
        spread[inside] = np.abs(np.diff(known, axis=1)).mean(axis=1) if lookback > 1 else 0.0
        if level is not None:
            level[inside] = np.abs(known).mean(axis=1)
    if history > 0:
        series_first = panel.offsets[panel.series_of_rows()[rows]]  # its series' mean change
        spread = np.maximum(spread, history * span_mean(change, panel.offsets, series_first, rows))
    if level is None:
        return spread
    return floor_spread(spread, level, floor)  # constant so far: floor * level, as scaled

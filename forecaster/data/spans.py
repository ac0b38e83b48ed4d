"""Sums over spans of rows of a packed panel (series one after the other), from running sums
that restart at every series: the one computation behind MASE's scales
(:func:`forecaster.evaluation.array_metrics.mase_scales`) and the window statistics of
:func:`forecaster.data.known_windows.window_spread`; and the floor of every scale of a flat
series, relative to its level (:func:`floor_spread`).

A running total over the whole panel would not do: after a series of large values it is
large, and the small values of a later series are lost to its rounding (a series of changes
of 1e-3 after one of changes of 1e12 summed to 0). Each series' sums here come from its own
values only.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["floor_spread", "series_cumsum", "span_mean", "span_sums"]


def series_cumsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Running sums down each series of ``values``, restarting at each series' first row.

    Parameters
    ----------
    values : numpy.ndarray
        Shape (rows, columns): the series packed one after the other.
    offsets : numpy.ndarray
        Shape (n_series + 1,): series ``i`` is ``values[offsets[i]:offsets[i + 1]]``, and
        ``offsets[-1] == rows``.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``values``: row ``r`` holds the sum of its series' values from
        the series' first row to ``r``, from that series' values alone. A NaN propagates down
        its series (replace the values not to count first).

    Examples
    --------
    >>> x = np.array([[1e12], [2e12], [1e-3], [2e-3]])
    >>> series_cumsum(x, np.array([0, 2, 4]))[:, 0].tolist()
    [1000000000000.0, 3000000000000.0, 0.001, 0.003]
    """
    x = np.asarray(values, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if x.ndim != 2 or offsets[-1] != len(x):
        raise ValueError(
            f"values must be 2-D with offsets[-1] rows, got shape {x.shape} and offsets[-1] = "
            f"{offsets[-1]}."
        )
    if x.size == 0:
        return x.copy()
    series = pl.Series("__series__", np.repeat(np.arange(len(offsets) - 1), np.diff(offsets)))
    names = [f"c{j}" for j in range(x.shape[1])]
    frame = pl.DataFrame(
        [series.set_sorted(), *(pl.Series(n, x[:, j]) for j, n in enumerate(names))]
    )
    sums = frame.select(pl.col(names).cum_sum().over("__series__"))
    return sums.to_numpy().reshape(x.shape).astype(np.float64, copy=False)


def span_sums(
    values: np.ndarray, offsets: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count of the ``values`` that are not NaN over the rows ``first`` to ``last``
    (both included) of each span, each span inside one series.

    Parameters
    ----------
    values : numpy.ndarray
        Shape (rows, columns): the series packed one after the other; a NaN value is missing
        (not counted), an infinite one makes the sums of its spans infinite (or NaN).
    offsets : numpy.ndarray
        Shape (n_series + 1,): series ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
    first, last : numpy.ndarray
        Global rows of the same shape: each span's first and last row, in the series of its
        last row (it counts from that series' first row when ``first`` is before it). A span
        with ``last < first`` is empty (sum and count 0).

    Returns
    -------
    tuple of numpy.ndarray
        The sums (float64) and the counts (int64), each of shape ``first.shape +
        (columns,)``; each span's sum from its series' own values (:func:`series_cumsum`).

    Examples
    --------
    >>> x = np.array([[1e12], [3e12], [1.0], [np.nan], [4.0]])
    >>> total, count = span_sums(x, np.array([0, 2, 5]), np.array([1, 2]), np.array([1, 4]))
    >>> total[:, 0].tolist(), count[:, 0].tolist()
    ([3000000000000.0, 5.0], [1, 2])
    """
    x = np.asarray(values, dtype=np.float64)
    first = np.asarray(first, dtype=np.int64)
    last = np.asarray(last, dtype=np.int64)
    seen = ~np.isnan(x)
    running = series_cumsum(np.where(seen, x, 0.0), offsets)
    counted = np.cumsum(np.vstack([np.zeros_like(seen[:1]), seen]), axis=0, dtype=np.int64)
    if running.size == 0:
        shape = (*first.shape, x.shape[1])
        return np.zeros(shape), np.zeros(shape, dtype=np.int64)
    empty = last < first
    last = np.where(empty, 0, last)
    start = np.asarray(offsets, dtype=np.int64)[np.searchsorted(offsets, last, side="right") - 1]
    first = np.where(empty, last, np.maximum(first, start))  # from its series' first row on
    inside = (first > start)[..., None]  # rows of the series before the span
    total = running[last] - np.where(inside, running[np.maximum(first - 1, 0)], 0.0)
    count = counted[last + 1] - counted[first]  # whole numbers: exact over the whole panel
    return np.where(empty[..., None], 0.0, total), np.where(empty[..., None], 0, count)


def span_mean(
    values: np.ndarray, offsets: np.ndarray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """The mean of the finite ``values`` over the rows ``first`` to ``last`` of each span
    (both included, as in :func:`span_sums`; 0 where there is none), from each series' own
    running sums.

    Examples
    --------
    >>> x = np.array([[1.0], [np.inf], [3.0], [np.nan]])
    >>> span_mean(x, np.array([0, 4]), np.array([0, 3]), np.array([2, 3]))[:, 0].tolist()
    [2.0, 0.0]
    """
    total, count = span_sums(np.where(np.isfinite(values), values, np.nan), offsets, first, last)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def floor_spread(spread: np.ndarray, level: np.ndarray, floor: float) -> np.ndarray:
    """``spread`` (float64) at least ``floor`` times the absolute ``level``, and at least
    float32's smallest normal number (1.2e-38, whose inverse float32 still holds) where the
    level is one (a constant 1e-35: ``floor`` times it would be a subnormal); 1 only where
    the level itself is below it (a level of 0: nothing to relate a scale to).

    The one rule of every scale a flat series gets: the scaler's (:data:`MIN_SCALE
    <forecaster.data.scaling.MIN_SCALE>` of its center, by
    :func:`~forecaster.data.scaling.spread_scale`), a window's spread
    (:func:`forecaster.data.known_windows.window_spread`), the series scale of
    ``calibrate(normalize="series")`` and the floor of a conformal half-width. It is
    continuous in the spread, so a constant series (a spread of exactly 0) is scaled as one
    that varies by float noise, relative to its level: its scale, and so its forecasts and
    intervals, do not depend on the units it is recorded in (a constant 0.002 is scaled as
    a constant 2, by 1e-6 of its level; an absolute 1 made the network's error on it 500
    times its level, and a constant 1e-35 was forecast 1e34 times its level). A series of
    zeros has no level and keeps 1.

    Examples
    --------
    >>> spread, level = np.array([0.0, 0.0, 2.0, 0.0]), np.array([3.0, 1e10, 3.0, 0.0])
    >>> floor_spread(spread, level, 1e-6).tolist()
    [3e-06, 10000.0, 2.0, 1.0]
    >>> floor_spread(np.array([0.0]), np.array([-0.002]), 1e-6).tolist()  # by |level|
    [2e-09]
    >>> floor_spread(np.zeros(2), np.array([1e-35, 1e-40]), 1e-6).tolist()  # 1e-40: no level
    [1.1754943508222875e-38, 1.0]
    """
    tiny = float(np.finfo(np.float32).tiny)
    level = np.abs(level)
    floored = np.maximum(spread, floor * level)
    return np.where(floored < tiny, np.where(level >= tiny, tiny, 1.0), floored)  # NaN kept

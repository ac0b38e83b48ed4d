"""Per-series conformal quantiles, all series at once: each forecast row's own calibration
scores (those of its series, or of its series' rolling window at its origin) are a span of
the calibration rows sorted by series, and the spans are reduced in a few NumPy calls,
padded with NaN (a left-out score, which every count and order statistic skips), instead
of one call per series (which made ``predict(level=...)`` after ``calibrate(per_series=True)``
quadratic in the number of series).
"""

from __future__ import annotations

__all__ = ["PADDED_BUDGET", "Reducer", "fill_own", "own_spans", "reduce_spans"]

from collections.abc import Callable

import numpy as np

Reducer = Callable[[np.ndarray], np.ndarray]
"""A reduction along axis 0 of scores ``(n, ...)`` to ``(...)`` (or ``(K, ...)``), of the
scores that are not NaN in each column
(:func:`~forecaster.estimators.intervals.order_statistic`)."""

PADDED_BUDGET = 1 << 22
"""The most scores (padding included) one call of a reducer gets in :func:`reduce_spans`:
about 32 MiB of float64, however many series and residuals a calibration holds."""


def own_spans(
    series: np.ndarray,
    rows: np.ndarray,
    ends: np.ndarray | None = None,
    origins: np.ndarray | None = None,
    window: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The calibration rows each forecast row may use of its own series.

    Parameters
    ----------
    series : numpy.ndarray
        ``(N,)`` each calibration row's series.
    rows : numpy.ndarray
        ``(B,)`` each forecast row's series (-1: unseen in fit, no own rows).
    ends, origins, window : numpy.ndarray, numpy.ndarray, int, optional
        With a rolling ``window``: each calibration row's end ``(N,)``, sorted, and each
        forecast row's origin ``(B,)``; a forecast row then uses the ``window`` latest rows of
        its series that end at or before its origin.

    Returns
    -------
    order : numpy.ndarray
        The calibration rows sorted by series (stably: by their ends within a series).
    targets : numpy.ndarray
        The forecast rows whose series has calibration rows.
    start, stop : numpy.ndarray
        Each target's span ``order[start:stop]`` (empty when no row ended by its origin).
    """
    order = np.argsort(series, kind="stable")
    keys, first = np.unique(series[order], return_index=True)
    last = np.append(first[1:], len(order)).astype(np.int64)
    where = np.searchsorted(keys, rows).clip(max=max(len(keys) - 1, 0))
    has = (rows >= 0) & (keys[where] == rows) if len(keys) else np.zeros(len(rows), bool)
    targets, group = np.flatnonzero(has), where[has]
    start, stop = first[group].astype(np.int64), last[group]
    if window is not None:
        if ends is None or origins is None:
            raise ValueError("a windowed calibration needs its ends and each forecast's origin")
        times = np.unique(np.concatenate([ends, origins[targets]]))
        # (series, end) as one sorted key: the rows of a series ending by an origin precede it
        of_row = np.repeat(np.arange(len(keys), dtype=np.int64), last - first)
        calibration = of_row * len(times) + np.searchsorted(times, ends[order])
        forecast = group * len(times) + np.searchsorted(times, origins[targets])
        stop = np.searchsorted(calibration, forecast, side="right").astype(np.int64)
        start = np.maximum(stop - window, start)
    return order, targets, start, stop


def reduce_spans(
    scores: np.ndarray,
    order: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    reducer: Reducer,
) -> np.ndarray:
    """``reducer`` of the scores ``scores[order[start[i]:stop[i]]]`` of each span ``i``
    (non-empty): ``(S, ...)`` or ``(S, K, ...)`` for a reducer giving ``K`` results.

    Spans of about one length (the same power of two) go through one call, at most
    :data:`PADDED_BUDGET` scores at a time, as columns of a block padded with NaN (a
    left-out score); each span's result is the one it gets on its own.
    """
    length = stop - start
    rest = scores.shape[1:]
    size = max(int(np.prod(rest)), 1)
    buckets = np.ceil(np.log2(np.maximum(length, 1))).astype(np.int64)
    result: np.ndarray | None = None
    for bucket in np.unique(buckets):
        members = np.flatnonzero(buckets == bucket)
        width = max(int(length[members].max()), 1)
        per_call = max(PADDED_BUDGET // (width * size), 1)
        offsets = np.arange(width)[:, None]
        for begin in range(0, len(members), per_call):
            part = members[begin : begin + per_call]
            inside = offsets < length[part]
            index = np.where(inside, start[part] + offsets, start[part])  # (width, spans)
            block = scores[order[index]].astype(
                np.result_type(scores.dtype, np.float16), copy=False
            )
            block[~inside] = np.nan
            value = np.moveaxis(reducer(block), -len(rest) - 1, 0)  # (spans, [K,] ...)
            if result is None:
                result = np.empty((len(start), *value.shape[1:]), value.dtype)
            result[part] = value
    if result is None:
        return np.empty((0, *rest))
    return result


def fill_own(
    out: np.ndarray,
    scores: np.ndarray,
    reducer: Reducer,
    minimum: int,
    spans: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Set ``out[i]`` to ``reducer`` of forecast row ``i``'s own scores (its ``spans``, from
    :func:`own_spans`) where they are at least ``minimum`` (not NaN) at every step of
    ``scores`` ``(N, ...)``; leave the other rows as they are. Returns the rows set (their
    indices).

    Forecast rows with the same span (a series' rows, or those of one origin in a rolling
    calibration) share one reduction.
    """
    order, targets, start, stop = spans
    if not len(targets):
        return targets
    n = len(order)
    shared, inverse = np.unique(start * (n + 1) + stop, return_inverse=True)
    inverse = inverse.reshape(-1)
    first, last = shared // (n + 1), shared % (n + 1)
    observed = np.zeros((n + 1, int(np.prod(scores.shape[1:]))), np.int64)
    np.cumsum(~np.isnan(scores[order].reshape(n, -1)), axis=0, out=observed[1:])
    counts = observed[last] - observed[first]
    fewest = counts.min(axis=1) if counts.shape[1] else last - first
    enough = fewest >= minimum
    if not enough.any():
        return targets[:0]
    values = reduce_spans(scores, order, first[enough], last[enough], reducer)
    position = np.cumsum(enough) - 1  # a span's row of ``values``
    use = enough[inverse]
    out[targets[use]] = values[position[inverse[use]]]
    return targets[use]

"""The split-conformal intervals and quantiles of the naive and seasonal-naive forecasts
(:func:`conformal_bounds`): the one formula of
:func:`~forecaster.evaluation.baselines.seasonal_naive`'s ``level`` and ``quantiles`` and of
the intervals of a backtest's baselines, many origins at once, each calibrated on the values
up to it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecaster.evaluation.intervals import conformal_ranks, signed_ranks

__all__ = ["conformal_bounds"]


def conformal_bounds(
    values: np.ndarray,
    starts: np.ndarray,
    origins: np.ndarray,
    point: np.ndarray,
    m: int,
    *,
    levels: Sequence[float] = (),
    quantiles: Sequence[float] = (),
) -> np.ndarray:
    """The split-conformal interval bounds and quantiles of
    :func:`~forecaster.evaluation.baselines.seasonal_naive` (the rule is there) around the
    point forecasts ``point`` of many origins at once, each calibrated on the values of its
    series up to the origin only (origins are sorted by their history's length and sorted in
    chunks of padded arrays: no loop over origins).

    Parameters
    ----------
    values : numpy.ndarray
        Packed series, shape (rows, k): the rows of each series together, in time order; a
        NaN value is not observed (no difference with it counts).
    starts, origins : numpy.ndarray
        For each origin, the row of the first value of its series and its own row (shape
        (n,)).
    point : numpy.ndarray
        The forecasts from each origin, shape (n, horizon, k)
        (:func:`~forecaster.evaluation.baselines.origin_forecasts`).
    m : int
        Seasonal period (``m = 1``: the naive forecast's intervals).
    levels, quantiles : sequence of float
        Levels in percent and quantiles in (0, 1).

    Returns
    -------
    numpy.ndarray
        Shape (n, horizon, k, 2 L + Q): the lower bound of each of the ``L`` levels, their
        upper bounds, then the ``Q`` quantiles; NaN at a step whose lag ``m ceil(h / m)``
        has no observed difference in the origin's history (e.g. fewer than ``lag + 1``
        values up to the origin).

    Examples
    --------
    >>> from forecaster.evaluation.baselines import origin_forecasts
    >>> values = np.array([[1.0], [2.0], [4.0], [7.0]])  # differences 1, 2, 3
    >>> point = origin_forecasts(values, np.array([0, 0]), np.array([2, 3]), 1)
    >>> conformal_bounds(values, np.array([0, 0]), np.array([2, 3]), point, 1,
    ...                  levels=[50])[:, 0, 0].tolist()  # from row 2: 1, 2; from row 3: 1, 2, 3
    [[2.0, 6.0], [5.0, 9.0]]
    """
    n, horizon, k = point.shape
    lags = m * (np.arange(horizon) // m + 1)  # step h forecasts from k m steps back
    out = np.full((n, horizon, k, 2 * len(levels) + len(quantiles)), np.nan)
    starts, origins = np.asarray(starts, np.int64), np.asarray(origins, np.int64)
    lengths = origins - starts + 1
    order = np.argsort(lengths, kind="stable")  # like lengths together: little padding
    for chunk in _chunks(order, lengths):
        for j in range(k):
            history = _histories(values[:, j], starts[chunk], origins[chunk])
            for lag in np.unique(lags):
                if lag >= history.shape[1]:  # no origin of the chunk has a difference: NaN
                    continue
                steps = np.flatnonzero(lags == lag)
                diffs = history[:, :-lag] - history[:, lag:]  # y_t - y_(t - lag), NaN: none
                radius, shift = _residual_ranks(diffs, levels, quantiles)
                base = point[chunk][:, steps, j, None]
                bounds = [base - radius[:, None], base + radius[:, None], base + shift[:, None]]
                out[chunk[:, None], steps[None, :], j] = np.concatenate(bounds, axis=-1)
    return out


_CHUNK_CELLS = 1 << 22  # values of the histories gathered at once (32 MiB of float64)


def _chunks(order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """``order`` (origins by the ``lengths`` of their histories, ascending) cut into runs
    whose padded (origins x longest history) arrays hold about :data:`_CHUNK_CELLS` cells."""
    out, begin = [], 0
    longest = np.maximum(lengths[order], 1)
    while begin < order.size:
        size = max(1, int(_CHUNK_CELLS // longest[begin]))
        while size > 1 and longest[min(begin + size, order.size) - 1] * size > _CHUNK_CELLS:
            size //= 2
        out.append(order[begin : begin + size])
        begin += size
    return out


def _histories(values: np.ndarray, starts: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """The values of each origin's series up to it, backwards (column ``i``: ``i`` rows before
    the origin), NaN-padded after its first value: shape (origins, longest history)."""
    width = int((origins - starts).max()) + 1
    rows = origins[:, None] - np.arange(width)[None, :]
    inside = rows >= starts[:, None]
    history = np.asarray(values, dtype=np.float64)[np.where(inside, rows, origins[:, None])]
    history[~inside] = np.nan
    return history


def _residual_ranks(
    diffs: np.ndarray, levels: Sequence[float], quantiles: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The conformal radius of each level (n, L) and the signed shift of each quantile (n, Q)
    from each row's observed differences ``diffs`` (NaN: none): the ``ceil((n_h + 1) L /
    100)``-th smallest absolute one (the largest when that exceeds ``n_h``), the signed one
    of rank :func:`~forecaster.evaluation.intervals.signed_ranks`; NaN without any."""
    count = (~np.isnan(diffs)).sum(axis=1)
    some = np.maximum(count, 1)
    radius = np.empty((count.size, len(levels)))
    if levels:
        absolute = np.abs(diffs)
        absolute.sort(axis=1)  # NaN last
        for i, v in enumerate(levels):
            rank = np.minimum(conformal_ranks(some, v), some) - 1
            radius[:, i] = np.take_along_axis(absolute, rank[:, None], axis=1)[:, 0]
    shift = np.empty((count.size, len(quantiles)))
    if quantiles:
        signed = diffs  # (a fresh array of the caller's: sorted in place)
        signed.sort(axis=1)
        for i, q in enumerate(quantiles):
            shift[:, i] = np.take_along_axis(signed, signed_ranks(some, q)[:, None] - 1, axis=1)[
                :, 0
            ]
    radius[count == 0], shift[count == 0] = np.nan, np.nan
    return radius, shift

"""The scores of a fit's validation check against the baselines
(:mod:`~forecaster.estimators.baseline_blend`): each series' in-sample naive error (the MASE
scale) and the scaled mean absolute error of forecasts of the validation windows, over the
actual values the frame holds (those the ``missing`` policy made up are left out, as a
backtest leaves them out: :func:`~forecaster.evaluation.folds.unscored_cells`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forecaster.data.panel import Panel

__all__ = ["naive_scales", "per_series", "scaled_error", "series_means"]


def naive_scales(panel: Panel, rows: np.ndarray, made_up: np.ndarray | None = None) -> np.ndarray:
    """Each series' and target's in-sample naive error ``(n_series, T)`` of ``panel`` (the
    check passes its float64 values: :meth:`~forecaster.data.panel.Panel.exact_targets`): the
    mean absolute step-to-step change over its ``rows`` (a boolean mask of the panel's rows),
    leaving out the target cells ``made_up`` (rows by targets: values the ``missing`` policy
    made up). A series without change there is scaled by its mean absolute value instead, or
    by 1. A series with none of its rows in ``rows`` (all of it held out for validation) is
    scaled over all its rows, so that no series weighs in the check by its units."""
    owner = panel.series_of_rows()
    scales = _naive_errors(panel, owner, rows, made_up)
    unseen = np.bincount(owner[rows], minlength=panel.n_series) == 0
    if unseen.any():
        scales[unseen] = _naive_errors(panel, owner, np.ones_like(rows), made_up)[unseen]
    return scales


def _naive_errors(
    panel: Panel, owner: np.ndarray, rows: np.ndarray, made_up: np.ndarray | None
) -> np.ndarray:
    """:func:`naive_scales` over the ``rows`` (a mask) of each series, ``owner``: each row's
    series."""
    nt = panel.n_targets
    values = panel.known_through(rows).values[:, :nt].astype(np.float64)
    if made_up is not None:  # NaN: no change to or from a made-up value, and no level
        values[made_up] = np.nan
    pairs = (owner[1:] == owner[:-1]) & rows[1:] & rows[:-1]
    change = np.diff(values, axis=0)[pairs]
    np.abs(change, out=change)  # in place: each temporary is as large as the values
    level = values[rows]
    del values
    np.abs(level, out=level)
    movers, holders = owner[1:][pairs], owner[rows]
    scales = np.ones((panel.n_series, nt))
    for j in range(nt):
        moved = _finite_means(movers, change[:, j], panel.n_series)
        still = _finite_means(holders, level[:, j], panel.n_series)
        scales[:, j] = np.where(moved > 0, moved, np.where(still > 0, still, 1.0))
    return scales


def _finite_means(series: np.ndarray, values: np.ndarray, n_series: int) -> np.ndarray:
    """:func:`per_series` of the finite ``values`` only (no copy when every one is)."""
    finite = np.isfinite(values)
    if finite.all():
        return per_series(series, values, n_series)
    return per_series(series[finite], values[finite], n_series)


def series_means(panel: Panel, targets: np.ndarray) -> np.ndarray:
    """Each row's series mean of ``targets`` (the panel's rows), float64."""
    owner = panel.series_of_rows()
    means = np.stack(
        [
            per_series(owner, targets[:, j].astype(np.float64), panel.n_series)
            for j in range(targets.shape[1])
        ],
        axis=1,
    )
    return means[owner]


def per_series(series: np.ndarray, values: np.ndarray, n_series: int) -> np.ndarray:
    """The mean of ``values`` per series (0 for a series without any)."""
    counts = np.bincount(series, minlength=n_series)
    sums = np.bincount(series, weights=values, minlength=n_series)
    return np.divide(sums, counts, out=np.zeros(n_series), where=counts > 0)


def scaled_error(
    series: np.ndarray,
    actual: np.ndarray,
    scales: np.ndarray,
    observed: np.ndarray | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """``error(forecast)``: per target ``(T,)``, each series' mean absolute error over its
    windows (``series``: the series of each window; ``actual``: ``(B, horizon, T)``) divided
    by its ``scales`` row, averaged over the series that have windows. With ``observed``
    (like ``actual``: False where the ``missing`` policy made the actual value up), over the
    observed cells of each series only (a series without any is left out)."""
    present = np.bincount(series, minlength=len(scales)) > 0
    if observed is not None:  # each series' observed cells per target (S, T)
        cells = observed.sum(axis=1)
        counts = np.stack([np.bincount(series, c, len(scales)) for c in cells.T], axis=1)

    def error(forecast: np.ndarray) -> np.ndarray:
        if observed is not None:
            sums = np.where(observed, np.abs(forecast - actual), 0.0).sum(axis=1)  # (B, T)
            by_series = np.stack([np.bincount(series, e, len(scales)) for e in sums.T], axis=1)
            mean = np.divide(
                by_series, counts, out=np.full_like(by_series, np.nan), where=counts > 0
            )
            return np.nanmean(mean / scales, axis=0)
        per_window = np.abs(forecast - actual).mean(axis=1)  # (B, T)
        out = np.empty(actual.shape[2])
        for j in range(len(out)):
            by_series = per_series(series, per_window[:, j], len(scales))
            out[j] = (by_series[present] / scales[present, j]).mean()
        return out

    return error

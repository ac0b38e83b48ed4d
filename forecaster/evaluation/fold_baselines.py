"""The naive and seasonal-naive baselines' forecasts of every (fold, series) origin of a
rolling-origin backtest (see :mod:`forecaster.evaluation.backtest`), from the values up to
each origin as known there: what :mod:`forecaster.evaluation.fold_scores` scores beside the
model."""

from __future__ import annotations

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.windows import known_windows, origins_in_runs
from forecaster.evaluation.baseline_intervals import conformal_bounds
from forecaster.evaluation.baselines import origin_forecasts
from forecaster.evaluation.folds import Folds
from forecaster.evaluation.intervals import IntervalColumns
from forecaster.evaluation.score_names import scored_baselines
from forecaster.exceptions import ForecasterWarning, warn_at_caller

__all__ = ["baseline_forecasts"]


def baseline_forecasts(
    panel: Panel,
    where: Folds,
    horizon: int,
    m: int,
    intervals: IntervalColumns | None = None,
    unscored: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The naive and (``m > 1``) seasonal-naive forecasts of every (fold, series) origin of
    ``where``, each ``(folds * n_kept * horizon, n_targets, 1 + 2 L + Q)`` in the rows of
    :func:`~forecaster.evaluation.folds.forecasts_frame`: the point forecast, then (with
    ``intervals``, ``L`` levels and ``Q`` quantiles) the interval bounds and quantiles in the
    order of :meth:`~forecaster.evaluation.intervals.IntervalColumns.sources`.

    The point forecasts come from the series' values up to the origin
    (:func:`forecaster.evaluation.baselines.origin_forecasts`, one gather for all folds).
    An origin with fewer than ``m`` values has no seasonal-naive forecast (as
    :func:`~forecaster.evaluation.baselines.seasonal_naive` refuses a series shorter than
    ``m``): NaN at every step of it, with a warning; the scores leave such points out of the
    baseline's scores and of the skill ratios against it
    (:func:`~forecaster.evaluation.fold_scores.baseline_scores`). The intervals are
    ``seasonal_naive``'s split-conformal ones (:func:`_with_intervals`)."""
    nt = panel.n_targets
    starts = np.tile(panel.offsets[where.kept], where.n_folds)[where.blocks]
    origins = (panel.offsets[where.kept][None, :] + where.local_cut).ravel()[where.blocks]
    out = {"naive": _known_origin_forecasts(panel, starts, origins, horizon, 1)}
    if "snaive" in scored_baselines(m):
        out["snaive"] = _known_origin_forecasts(panel, starts, origins, horizon, m)
        short = origins - starts < m - 1
        if short.any():
            out["snaive"][short] = np.nan  # not the steps that reach back m values only
            warn_at_caller(
                f"{int(short.sum())} of the {origins.size} (fold, series) origins have fewer "
                f"than m={m} values, so no seasonal-naive forecast: their snaive scores in "
                "result.metrics are NaN (n_snaive 0), and the pooled ones (by_step, aggregate, "
                "score()) and the skill ratios against snaive are over the other forecasts "
                "only, the model's score in each ratio too (n_snaive counts their points). "
                "Use a smaller m or fewer folds to compare every forecast.",
                ForecasterWarning,
            )
    if intervals is not None:
        values = panel.values[:, :nt]
        if unscored is not None:  # made up by the missing policy: not observed
            values = np.where(unscored, np.nan, values)
        rows, period = (starts, origins), {"naive": 1, "snaive": m}
        out = {n: _with_intervals(n, values, rows, v, period[n], intervals) for n, v in out.items()}
    return {
        k: v.reshape(-1, nt, v.shape[-1] if intervals is not None else 1) for k, v in out.items()
    }


def _with_intervals(
    name: str,
    values: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    point: np.ndarray,
    m: int,
    intervals: IntervalColumns,
) -> np.ndarray:
    """The point forecasts ``point`` (origins, horizon, targets) of baseline ``name`` (of
    period ``m``) with their split-conformal interval bounds and quantiles
    (:func:`~forecaster.evaluation.baseline_intervals.conformal_bounds`, the formula of
    :func:`~forecaster.evaluation.baselines.seasonal_naive`), each origin's calibrated on its
    series' observed ``values`` up to it only (the starts and origins ``rows``): a value the
    ``missing`` policy made up is NaN there, in no difference.

    An origin whose history has no observed difference at some step's lag ``m ceil(h / m)``
    (e.g. fewer than ``m ceil(horizon / m) + 1`` values, which ``seasonal_naive(level=...)``
    refuses) has no intervals: its interval bounds and quantiles are NaN at every step of
    that target, with a warning, and its point forecast is kept (asking for intervals does
    not change the baseline's point scores): the baseline's interval scores are over the
    other forecasts, those ``n_interval_<baseline>`` counts."""
    starts, origins = rows
    bounds = conformal_bounds(values, starts, origins, point, m, levels=intervals.levels,
                              quantiles=intervals.quantiles)  # fmt: skip
    none = np.isnan(bounds).any(axis=(1, 3))  # (origins, targets): no intervals
    lost = int((none & ~np.isnan(point).all(axis=1)).sum())
    if lost:
        needed = m * -(-point.shape[1] // m) + 1
        warn_at_caller(
            f"{lost} of the {none.size} (fold, series, target) forecasts of the {name} "
            f"baseline have too little history for its intervals: seasonal_naive(level=...) "
            f"with m={m} calibrates them on the differences at lags up to {needed - 1}, so it "
            f"needs {needed} observed values up to the origin. They have no {name} intervals: "
            f"their {name} interval and quantile scores in result.metrics and result.baselines "
            f"are NaN (n_interval_{name} 0), and the pooled ones and their skill ratios are "
            f"over the other forecasts only; their point scores are kept (n_{name}). Use fewer "
            "folds, a larger step or longer series to compare every forecast's intervals.",
            ForecasterWarning,
        )
    bounds[np.broadcast_to(none[:, None, :, None], bounds.shape)] = np.nan
    return np.concatenate([point[..., None], bounds], axis=-1)


def _known_origin_forecasts(
    panel: Panel, starts: np.ndarray, origins: np.ndarray, horizon: int, m: int
) -> np.ndarray:
    """:func:`~forecaster.evaluation.baselines.origin_forecasts` of the panel's targets from
    the last ``m`` rows up to each origin, as known there: an origin inside a run that
    ``missing="interpolate"`` filled is forecast again from its packed window
    (:func:`~forecaster.data.windows.known_windows`)."""
    out = origin_forecasts(panel.values[:, : panel.n_targets], starts, origins, horizon, m)
    inside = origins_in_runs(panel, origins)
    if inside.size:
        packed = known_windows(panel, origins[inside], m, starts[inside])
        out[inside] = origin_forecasts(packed.values, packed.starts, packed.origins, horizon, m)
    return out

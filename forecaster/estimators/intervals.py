"""Prediction intervals and quantile columns: names, the split-conformal quantiles and the
columns ``predict(frame, level=..., quantiles=...)`` adds (pure NumPy, no estimator state).

Column names (long format, per target ``y``): ``y_lo_80`` / ``y_hi_80`` for ``level=[80]``,
``y_q10`` for ``quantiles=[0.1]`` (``f"{target}_q{100 * q:g}"``). Level ``L`` means the
quantiles ``(1 - L / 100) / 2`` and ``1 - (1 - L / 100) / 2``.

Split-conformal calibration keeps signed out-of-sample residuals ``r = y - forecast`` per
horizon step (and, for quantile models, per model quantile). A symmetric interval of level
``L`` is ``forecast +- s``, ``s`` the ``ceil((n + 1) L / 100)``-th smallest ``|r|`` of the
``n`` residuals at that step (the finite-sample correction of split conformal prediction,
Lei et al. 2018); CQR (Romano et al. 2019) widens the model's quantiles ``[q_lo, q_hi]`` by
the same order statistic of ``max(q_lo - y, y - q_hi)``.
"""

from __future__ import annotations

__all__ = [
    "MIN_PER_SERIES",
    "conformal_rank",
    "interval_columns",
    "level_quantiles",
    "lower_name",
    "order_statistic",
    "quantile_name",
    "upper_name",
]

import math
from collections.abc import Sequence

import numpy as np

from forecaster.exceptions import DataValidationError

MIN_PER_SERIES = 20
"""Residuals a series needs at a step for its own (per-series) calibration; series with fewer
use the pooled residuals."""


def quantile_name(target: str, q: float) -> str:
    """``y_q10`` for ``q=0.1``, ``y_q2.5`` for ``q=0.025``."""
    return f"{target}_q{round(100 * q, 10):g}"


def lower_name(target: str, level: float) -> str:
    return f"{target}_lo_{level:g}"


def upper_name(target: str, level: float) -> str:
    return f"{target}_hi_{level:g}"


def level_quantiles(level: float) -> tuple[float, float]:
    """The lower and upper quantiles of a central interval of ``level`` per cent."""
    alpha = 1.0 - level / 100.0
    return round(alpha / 2, 12), round(1.0 - alpha / 2, 12)


def conformal_rank(n: int, level: float) -> int:
    """The rank ``ceil((n + 1) L / 100)`` (1-based) of the conformal quantile of ``n`` scores;
    more than ``n`` means the scores are too few for the level."""
    return math.ceil((n + 1) * level / 100.0 - 1e-9)


def order_statistic(scores: np.ndarray, level: float, *, what: str) -> np.ndarray:
    """The conformal quantile along axis 0 of ``scores`` ``(n, ...)``: its
    :func:`conformal_rank`-th smallest value; too few scores are refused (naming ``what``)."""
    n = scores.shape[0]
    rank = conformal_rank(n, level)
    if rank > n or n == 0:
        need = math.ceil(level / (100.0 - level))
        raise DataValidationError(
            f"{what}: {n} calibration residuals per horizon step are too few for a "
            f"{level:g}% interval (it needs at least {need}). Calibrate on more origins, e.g. "
            "model.calibrate(frame, folds=20), or on more series."
        )
    return np.sort(scores, axis=0)[rank - 1]


def _per_series(
    scores: np.ndarray, series: np.ndarray, rows: np.ndarray, level: float, what: str
) -> np.ndarray:
    """The conformal quantile ``(len(rows), ...)`` for each prediction row's series ``rows``
    (its own scores when it has :data:`MIN_PER_SERIES` and enough for the level, else the
    pooled ones)."""
    pooled = order_statistic(scores, level, what=what)
    out = np.broadcast_to(pooled, (len(rows), *pooled.shape)).copy()
    for s in np.unique(rows[rows >= 0]):
        own = scores[series == s]
        n = own.shape[0]
        if n >= MIN_PER_SERIES and conformal_rank(n, level) <= n:
            out[rows == s] = order_statistic(own, level, what=what)
    return out


def interval_columns(
    targets: Sequence[str],
    point: np.ndarray,
    model_quantiles: np.ndarray | None,
    fitted: Sequence[float] | None,
    conformal: dict | None,
    rows: np.ndarray,
    *,
    levels: Sequence[float] | None,
    quantiles: Sequence[float] | None,
) -> dict[str, np.ndarray]:
    """The interval and quantile columns, name -> float32 values ``(B * horizon,)``.

    ``point`` ``(B, horizon, T)``: the point forecasts; ``model_quantiles`` ``(B, horizon, T,
    Q)`` the model's ``fitted`` quantiles (None for a point model); ``conformal``: the
    calibration (``residuals`` ``(N, horizon, T, Q')``, ``series`` ``(N,)``, ``per_series``),
    or None; ``rows`` ``(B,)``: each forecast's series (row of ``keys_``, -1 unseen).
    """
    columns: dict[str, np.ndarray] = {}
    fitted_list = None if fitted is None else [round(float(q), 12) for q in fitted]

    def position(q: float) -> int:
        assert fitted_list is not None
        return fitted_list.index(round(q, 12))

    def calibrated(scores: np.ndarray, level: float, what: str) -> np.ndarray:
        """``(B, horizon, T)`` conformal quantiles of ``scores`` ``(N, horizon, T)``."""
        assert conformal is not None
        if conformal["per_series"]:
            return _per_series(scores, conformal["series"], rows, level, what)
        return np.broadcast_to(order_statistic(scores, level, what=what), point.shape)

    for level in levels or ():
        q_lo, q_hi = level_quantiles(level)
        what = f"level={level:g}"
        if model_quantiles is not None:
            if (
                fitted_list is None
                or round(q_lo, 12) not in fitted_list
                or (round(q_hi, 12) not in fitted_list)
            ):
                raise DataValidationError(
                    f"level={level:g} needs the quantiles {q_lo:g} and {q_hi:g}, but the model "
                    f"was fitted with quantiles={fitted_list}. Refit with them among its "
                    f"quantiles, e.g. quantiles=[{q_lo:g}, 0.5, {q_hi:g}]."
                )
            lo = model_quantiles[..., position(q_lo)].astype(np.float64)
            hi = model_quantiles[..., position(q_hi)].astype(np.float64)
            if conformal is not None:  # CQR
                residuals = conformal["residuals"]
                scores = np.maximum(-residuals[..., position(q_lo)], residuals[..., position(q_hi)])
                widen = calibrated(scores, level, what)
                lo, hi = lo - widen, hi + widen
        else:
            if conformal is None:
                raise _uncalibrated("level")
            half = calibrated(np.abs(conformal["residuals"][..., 0]), level, what)
            lo, hi = point - half, point + half
        hi = np.maximum(hi, lo)  # a CQR correction below zero never inverts the band
        for j, target in enumerate(targets):
            columns[lower_name(target, level)] = lo[..., j].reshape(-1).astype(np.float32)
            columns[upper_name(target, level)] = hi[..., j].reshape(-1).astype(np.float32)

    for q in quantiles or ():
        if model_quantiles is not None:
            if fitted_list is None or round(q, 12) not in fitted_list:
                raise DataValidationError(
                    f"quantiles=[..., {q:g}, ...]: the model was fitted with quantiles="
                    f"{fitted_list} and gives only those. Ask for some of them, or refit with "
                    f"quantiles that include {q:g}."
                )
            values = model_quantiles[..., position(q)]
        else:
            if conformal is None:
                raise _uncalibrated("quantiles")
            signed = conformal["residuals"][..., 0]
            values = point + _signed_quantile(signed, q, conformal, rows, point.shape)
        for j, target in enumerate(targets):
            columns[quantile_name(target, q)] = values[..., j].reshape(-1).astype(np.float32)
    return columns


def _signed_quantile(
    signed: np.ndarray, q: float, conformal: dict, rows: np.ndarray, shape: tuple
) -> np.ndarray:
    """The ``q`` quantile of the signed residuals per step (and series when per series)."""
    pooled = np.quantile(signed, q, axis=0)
    out = np.broadcast_to(pooled, shape).copy()
    if conformal["per_series"]:
        for s in np.unique(rows[rows >= 0]):
            own = signed[conformal["series"] == s]
            if own.shape[0] >= MIN_PER_SERIES:
                out[rows == s] = np.quantile(own, q, axis=0)
    return out


def _uncalibrated(argument: str) -> DataValidationError:
    return DataValidationError(
        f"predict({argument}=...) on a point model needs its calibration: call "
        "model.calibrate(frame) first (split conformal on a rolling-origin backtest of data "
        "after the training data; or model.calibrate(frame, refit=True) to refit clones per "
        "fold), or fit with loss='quantile' for quantile forecasts."
    )

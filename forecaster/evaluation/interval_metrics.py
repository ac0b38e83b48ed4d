"""Array metrics of prediction intervals and quantile forecasts, with scikit-learn's argument
order (``y_true`` first): :func:`pinball_loss`, :func:`coverage`, :func:`interval_width`,
:func:`winkler_score`, :func:`msis` (M4's mean scaled interval score) and :func:`scaled_crps`.
Every input goes through :func:`~forecaster.evaluation.array_metrics.float_values`.

Definitions (``a = 1 - level / 100``, ``[lo, hi]`` the interval of nominal coverage ``level`` %):

- pinball loss of quantile ``q``: mean of ``max(q (y - f), (q - 1) (y - f))``;
- coverage: the fraction (0 to 1) of points with ``lo <= y <= hi``;
- interval width: mean of ``hi - lo``;
- Winkler (interval) score: mean of ``(hi - lo) + 2/a (lo - y) 1{y < lo} + 2/a (y - hi) 1{y > hi}``;
- MSIS (M4 guide): the Winkler score divided by the in-sample MAE of the seasonal naive
  forecast with period ``m`` (:func:`~forecaster.evaluation.array_metrics.mase_scale`);
- scaled CRPS: the CRPS approximated by twice the mean pinball loss over the quantiles,
  divided by ``scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from forecaster._validation import ONE_LEVEL, Real
from forecaster.evaluation.array_metrics import float_values, mase_scale
from forecaster.exceptions import DataValidationError

__all__ = [
    "coverage",
    "interval_width",
    "msis",
    "pinball_loss",
    "scaled_crps",
    "winkler_score",
]

_QUANTILE = Real(
    low=0.0, high=1.0, low_open=True, high_open=True, hint="A quantile is a fraction, e.g. 0.9."
)
_SCALE = Real(low=0.0, low_open=True, hint="It divides the score (e.g. a MASE scale).")


def _same_shape(named: dict[str, np.ndarray]) -> None:
    shapes = {name: value.shape for name, value in named.items()}
    if len(set(shapes.values())) > 1:
        shown = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise DataValidationError(f"{', '.join(shapes)} must have the same shape, got {shown}.")
    if next(iter(named.values())).size == 0:
        raise DataValidationError(
            f"{', '.join(shapes)} are empty; a metric needs at least 1 point."
        )


def _bounds(y_true: Any, lo: Any, hi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y_true``, ``lo`` and ``hi`` as float arrays of one shape, with ``lo <= hi``."""
    named = {"lo": float_values(lo, "lo"), "hi": float_values(hi, "hi")}
    if y_true is not None:
        named = {"y_true": float_values(y_true, "y_true"), **named}
    _same_shape(named)
    low, high = named["lo"], named["hi"]
    crossed = low > high
    if crossed.any():
        first = int(np.flatnonzero(crossed.ravel())[0])
        raise DataValidationError(
            f"lo must not exceed hi, but it does at {int(crossed.sum())} points (e.g. index "
            f"{first}: lo={low.ravel()[first]:g}, hi={high.ravel()[first]:g}). Pass the lower "
            "bound first (coverage(y_true, lo, hi)), or sort the bounds: np.minimum / np.maximum."
        )
    return named.get("y_true", low), low, high


def _penalised_width(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: Any) -> np.ndarray:
    alpha = 1.0 - ONE_LEVEL.check("level", level) / 100.0
    below = np.maximum(lo - a, 0.0)
    above = np.maximum(a - hi, 0.0)
    return (hi - lo) + (2.0 / alpha) * (below + above)


def _several(quantiles: Any) -> bool:
    """Whether ``quantiles`` is a list of quantiles (a sequence, or a numpy array of one
    axis), not one number (a 0-d numpy array is one number, as a numpy scalar is)."""
    if isinstance(quantiles, np.ndarray):
        return quantiles.ndim > 0
    return isinstance(quantiles, Sequence) and not isinstance(quantiles, str)


def _quantiles(quantiles: Any) -> np.ndarray:
    if _several(quantiles):
        values = quantiles
    else:  # one number (a 0-d array's, as a numpy scalar's)
        values = [quantiles.item() if isinstance(quantiles, np.ndarray) else quantiles]
    if isinstance(quantiles, str) or len(values) == 0 or np.ndim(quantiles) > 1:
        raise DataValidationError(
            f"quantiles must be a number in (0, 1) or a non-empty list of them, got {quantiles!r}."
        )
    checked = [_QUANTILE.check("quantile", q) for q in values]
    if len(set(checked)) < len(checked):
        raise DataValidationError(f"quantiles lists a value more than once: {checked}.")
    return np.asarray(checked, dtype=np.float64)


def _pinball(a: np.ndarray, f: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = a - f
    return np.maximum(q * diff, (q - 1.0) * diff)


def pinball_loss(y_true: Any, y_pred: Any, quantile: float | Sequence[float]) -> float:
    """Pinball (quantile) loss: mean of ``max(q (y - f), (q - 1) (y - f))``.

    With one ``quantile`` ``y_pred`` has the shape of ``y_true``; with a list of ``k`` of them
    it has one more axis of length ``k`` (one forecast per quantile, last), and the loss is the
    mean over points and quantiles. A 0-d numpy array is one quantile, as a number is. The
    loss of ``q = 0.5`` is half the MAE.

    Parameters
    ----------
    y_true : array-like of float
        Actual values, at least 1.
    y_pred : array-like of float
        Quantile forecasts: ``y_true``'s shape, plus a last axis of one forecast per quantile
        when ``quantile`` is a list.
    quantile : float or list of float
        One quantile or several, each in (0, 1), distinct.

    Returns
    -------
    float

    Examples
    --------
    >>> pinball_loss([10.0, 10.0], [8.0, 12.0], 0.75)
    1.0
    >>> pinball_loss([10.0], [[8.0, 12.0]], [0.25, 0.75])
    0.5
    """
    qs = _quantiles(quantile)
    a = float_values(y_true, "y_true")
    f = float_values(y_pred, "y_pred")
    several = _several(quantile)
    expected = (*a.shape, len(qs)) if several else a.shape
    if f.shape != expected:
        raise DataValidationError(
            f"y_pred must have the shape {expected} (y_true's"
            + (f" and one forecast per quantile, {len(qs)}, last" if several else "")
            + f"), got {f.shape}."
        )
    if a.size == 0:
        raise DataValidationError("y_true and y_pred are empty; a metric needs at least 1 point.")
    return float(np.mean(_pinball(a[..., None] if several else a, f, qs if several else qs[0])))


def coverage(y_true: Any, lo: Any, hi: Any) -> float:
    """Empirical coverage: the fraction (0 to 1) of points with ``lo <= y <= hi``.

    Compare it with the nominal level as a fraction (0.8 for an 80 % interval). A NaN value
    or bound makes it NaN, as it makes the point metrics NaN (it counted as a miss).

    Parameters
    ----------
    y_true, lo, hi : array-like of float
        Actual values and the intervals' lower and upper bounds, of one shape with at least 1
        point, ``lo <= hi``.

    Returns
    -------
    float
        In [0, 1], or NaN.

    Examples
    --------
    >>> coverage([1.0, 5.0, 9.0, 3.0], [0.0, 0.0, 0.0, 3.0], [2.0, 4.0, 10.0, 3.0])
    0.75
    """
    a, low, high = _bounds(y_true, lo, hi)
    inside = np.asarray((a >= low) & (a <= high), dtype=np.float64)  # writable, 0-d too
    inside[np.isnan(a) | np.isnan(low) | np.isnan(high)] = np.nan
    return float(np.mean(inside))


def interval_width(lo: Any, hi: Any) -> float:
    """Mean width ``hi - lo`` of the intervals.

    Parameters
    ----------
    lo, hi : array-like of float
        The intervals' lower and upper bounds, of one shape with at least 1 point, ``lo <= hi``.

    Returns
    -------
    float

    Examples
    --------
    >>> interval_width([0.0, 1.0], [2.0, 5.0])
    3.0
    """
    _, low, high = _bounds(None, lo, hi)
    return float(np.mean(high - low))


def winkler_score(y_true: Any, lo: Any, hi: Any, level: float) -> float:
    """Winkler (interval) score of intervals of nominal coverage ``level`` % (``a = 1 -
    level / 100``): mean of ``(hi - lo) + 2/a (lo - y) 1{y < lo} + 2/a (y - hi) 1{y > hi}``.

    Lower is better: the width, plus a penalty for each point outside its interval.

    Parameters
    ----------
    y_true, lo, hi : array-like of float
        Actual values and the intervals' lower and upper bounds, of one shape with at least 1
        point, ``lo <= hi``.
    level : float
        The intervals' nominal coverage in percent, in (1, 100).

    Returns
    -------
    float

    Examples
    --------
    >>> winkler_score([5.0, 12.0], [4.0, 4.0], [8.0, 8.0], level=50)
    12.0
    """
    a, low, high = _bounds(y_true, lo, hi)
    return float(np.mean(_penalised_width(a, low, high, level)))


def msis(y_true: Any, lo: Any, hi: Any, insample: Any, m: int = 1, level: float = 95) -> float:
    """Mean scaled interval score of M4 (its guide: ``a = 0.05``, i.e. ``level=95``).

    :func:`winkler_score` of one series divided by its in-sample MAE of the seasonal naive
    forecast with period ``m`` (:func:`~forecaster.evaluation.array_metrics.mase_scale`; M4 uses
    ``m = 24`` for hourly data). A scale of 0 (in-sample values that do not change at lag
    ``m``) is refused, as by :func:`~forecaster.evaluation.array_metrics.mase`.

    Parameters
    ----------
    y_true, lo, hi : array-like of float
        Actual values and the intervals' lower and upper bounds, of one shape with at least 1
        point, ``lo <= hi``.
    insample : array-like of float
        The series' in-sample (training) values, in time order; more than ``m`` of them.
    m : int, default 1
        The lag (seasonal period) of the scale, >= 1.
    level : float, default 95
        The intervals' nominal coverage in percent, in (1, 100).

    Returns
    -------
    float

    Examples
    --------
    >>> msis([5.0, 12.0], [4.0, 4.0], [8.0, 8.0], insample=[1.0, 2.0, 4.0, 7.0], level=50)
    6.0
    """
    score = winkler_score(y_true, lo, hi, level)
    scale = mase_scale(insample, m)
    if scale == 0:
        raise DataValidationError(
            f"MSIS is undefined here: the in-sample values do not change at lag m={m}, so its "
            f"scale (the mean of |y_t - y_(t-{m})|) is 0. Use winkler_score for a constant "
            "series."
        )
    return score / scale


def scaled_crps(
    y_true: Any, quantile_preds: Any, quantiles: Sequence[float], scale: float
) -> float:
    """CRPS approximated over quantile forecasts, divided by ``scale``: ``2 x`` the mean
    :func:`pinball_loss` over the points and the ``quantiles``, ``/ scale``.

    ``quantile_preds`` has the shape of ``y_true`` plus a last axis, one forecast per quantile.
    With many evenly spread quantiles it approaches the CRPS; with the median alone it is the
    MAE. ``scale`` is a number > 0, e.g. the series' MASE scale (then the median alone gives
    MASE: what :func:`~forecaster.evaluation.scoring.evaluate` reports as ``scrps``) or the
    mean absolute actual value.

    Parameters
    ----------
    y_true : array-like of float
        Actual values, at least 1.
    quantile_preds : array-like of float
        ``y_true``'s shape plus a last axis: one forecast per quantile.
    quantiles : list of float
        The quantiles of that axis, each in (0, 1), distinct.
    scale : float
        The divisor, > 0.

    Returns
    -------
    float

    Examples
    --------
    >>> scaled_crps([10.0], [[8.0, 12.0]], [0.25, 0.75], scale=2.0)
    0.5
    """
    if not _several(quantiles):
        raise DataValidationError(
            f"quantiles must be a list of numbers in (0, 1), got {quantiles!r}; for one "
            "quantile use pinball_loss."
        )
    divisor = _SCALE.check("scale", scale)
    return 2.0 * pinball_loss(y_true, quantile_preds, quantiles) / divisor

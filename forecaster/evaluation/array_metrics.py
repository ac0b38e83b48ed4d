"""Array metrics on numpy arrays (or anything ``np.asarray`` accepts, e.g. a Polars Series),
with scikit-learn's argument order ``(y_true, y_pred)``: :func:`mae`, :func:`mse`, :func:`rmse`,
:func:`mape`, :func:`smape`, :func:`mase` (and its denominator :func:`mase_scale`),
:func:`owa_score`. Every input goes through one conversion, :func:`float_values`.

The definitions are those of the M4 competition (see :mod:`forecaster.evaluation.metrics`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from forecaster._validation import Real, check, describe_value
from forecaster.data.spans import span_sums
from forecaster.exceptions import DataValidationError

__all__ = [
    "METRICS",
    "float_values",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "mase_scales",
    "mse",
    "owa_score",
    "rmse",
    "smape",
]

METRICS = ("mae", "mse", "rmse", "mape", "smape", "mase")
"""Names accepted by ``metrics=`` (in this column order). ``mase`` needs in-sample data."""

_NOT_ARRAYS = (str, bytes, Mapping, set, frozenset)


def float_values(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array: the one conversion of every array metric's inputs.

    Lists, tuples, numpy arrays (bools and integers too), polars and pandas Series and
    tensors are accepted; ``None``, text, dicts, sets, iterators (a generator is used up by
    reading it), complex numbers, dates and masked arrays (whose mask would be ignored) raise
    :class:`DataValidationError`."""
    expected = "an array of numbers (a list, numpy array, or polars / pandas Series)"
    fix = ""
    if isinstance(value, np.ma.MaskedArray):
        fix = (
            "A masked array's mask would be ignored: select the points first (e.g. keep = "
            "~(np.ma.getmaskarray(y_true) | np.ma.getmaskarray(y_pred)), then "
            "y_true.data[keep], y_pred.data[keep])."
        )
    elif value is None or isinstance(value, _NOT_ARRAYS):
        fix = "Pass the values themselves."
    elif isinstance(value, Iterator):
        fix = "An iterator is used up by reading it: pass a list, e.g. list(values)."
    if fix:
        raise DataValidationError(f"{name} must be {expected}, got {describe_value(value)}. {fix}")
    try:
        array = np.asarray(value)
        kind = array.dtype.kind
        if kind in "biuf":
            return array.astype(np.float64, copy=False)
        if kind == "O":
            return array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{name} must be {expected}, got {describe_value(value)} ({exc}). Convert it to "
            "floats first; for pandas nullable types use .to_numpy(dtype=float, na_value=np.nan)."
        ) from None
    what = {"c": "complex numbers", "U": "text", "S": "bytes", "M": "dates", "m": "durations"}
    raise DataValidationError(
        f"{name} must be {expected}, got {describe_value(value)}, an array of "
        f"{what.get(array.dtype.kind, str(array.dtype))}. Pass real numbers."
    )


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a = float_values(y_true, "y_true")
    f = float_values(y_pred, "y_pred")
    if a.shape != f.shape:
        raise DataValidationError(
            f"y_true and y_pred must have the same shape, got {a.shape} and {f.shape}."
        )
    if a.size == 0:
        raise DataValidationError("y_true and y_pred are empty; a metric needs at least 1 point.")
    return a, f


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values, of one shape with at least 1 point (any array
        :func:`float_values` accepts).

    Returns
    -------
    float

    Examples
    --------
    >>> mae([1.0, 2.0, 4.0], [2.0, 2.0, 1.0])
    1.3333333333333333
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean(np.abs(f - a)))


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values, of one shape with at least 1 point (any array
        :func:`float_values` accepts).

    Returns
    -------
    float

    Examples
    --------
    >>> mse([1.0, 2.0, 4.0], [2.0, 2.0, 1.0])
    3.3333333333333335
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean((f - a) ** 2))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values, of one shape with at least 1 point (any array
        :func:`float_values` accepts).

    Returns
    -------
    float

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0])
    3.0
    """
    return math.sqrt(mse(y_true, y_pred))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent: mean of ``100 |y - ŷ| / |y|``.

    Infinite when some actual value is 0 and its forecast is not; an actual 0 forecast
    exactly counts as 0 (a perfect forecast, as in :func:`smape`), not NaN.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values, of one shape with at least 1 point (any array
        :func:`float_values` accepts).

    Returns
    -------
    float
        In percent.

    Examples
    --------
    >>> mape([100.0, 200.0], [110.0, 150.0])
    17.5
    >>> mape([0.0, 100.0], [0.0, 110.0])
    5.0
    """
    a, f = _pair(y_true, y_pred)
    error = np.abs(f - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.where(error == 0, 0.0, 100.0 * error / np.abs(a))))


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric MAPE as in M4, in percent: mean of ``200 |y - ŷ| / (|y| + |ŷ|)``.

    It lies in [0, 200]; a point where both values are 0 counts as 0 (a perfect forecast).

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values, of one shape with at least 1 point (any array
        :func:`float_values` accepts).

    Returns
    -------
    float
        In percent, in [0, 200].

    Examples
    --------
    >>> smape([100.0, 0.0], [300.0, 0.0])
    50.0
    """
    a, f = _pair(y_true, y_pred)
    den = np.abs(a) + np.abs(f)
    num = 200.0 * np.abs(f - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.where(den == 0, 0.0, num / den)))


def mase_scale(insample: Any, m: int = 1) -> float:
    """MASE denominator: mean of ``|y_t - y_{t-m}|`` over the in-sample values.

    That is the in-sample MAE of the seasonal naive forecast with period ``m`` (naive for
    ``m = 1``). It is undefined, and refused as :func:`mase` refuses it, when ``insample``
    has ``m`` values or fewer (no difference at lag ``m``) or holds NaN or infinite values.
    A scale of 0 (values that do not change at lag ``m``) is returned: :func:`mase` refuses
    to divide by it.

    Parameters
    ----------
    insample : array-like of float
        The series' in-sample (training) values, in time order; more than ``m`` of them.
    m : int, default 1
        The lag (seasonal period), >= 1.

    Returns
    -------
    float
        The scale, >= 0.

    Examples
    --------
    >>> mase_scale([1.0, 2.0, 4.0, 7.0])
    2.0
    >>> mase_scale([1.0, 2.0, 4.0, 7.0], m=2)
    4.0
    >>> mase_scale([1.0, 2.0, 3.0], m=3)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: MASE is undefined here: insample has 3 values, \
but its scale (the mean of |y_t - y_(t-3)|) needs more than m=3. Pass a longer insample or a \
smaller m.
    """
    m = check("m", m)
    x = float_values(insample, "insample").ravel()
    if x.size <= m:
        raise DataValidationError(
            f"MASE is undefined here: insample has {x.size} values, but its scale (the mean "
            f"of |y_t - y_(t-{m})|) needs more than m={m}. Pass a longer insample or a "
            "smaller m."
        )
    with np.errstate(invalid="ignore", over="ignore"):
        scale = float(np.mean(np.abs(x[m:] - x[:-m])))
    if not math.isfinite(scale):
        raise DataValidationError(
            f"MASE is undefined here: its in-sample scale is {scale:g} (insample holds NaN or "
            "infinite values). Clean insample first."
        )
    return scale


def mase_scales(
    values: np.ndarray,
    offsets: np.ndarray,
    m: int,
    *,
    ends: np.ndarray | None = None,
    series: np.ndarray | None = None,
) -> np.ndarray:
    """MASE denominators of many series at once: the mean of ``|y_t - y_{t-m}|`` per series
    and column, over its rows up to an end. The one computation of the scales of
    :func:`~forecaster.evaluation.scoring.evaluate` and of the backtest.

    Parameters
    ----------
    values : numpy.ndarray
        Shape (rows, columns): the series packed one after the other, each in time order.
    offsets : numpy.ndarray
        Shape (n_series + 1,): series ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
    m : int
        The lag (seasonal period), >= 1.
    ends : numpy.ndarray, optional
        Shape (..., len(series)): the last row (counted from the series' start, inclusive) of
        each series to average over, e.g. one row of ends per backtest fold; default its last
        row.
    series : numpy.ndarray, optional
        Which series (indexes into ``offsets``); default all.

    Returns
    -------
    numpy.ndarray
        Shape ``ends.shape + (columns,)``. A difference with a NaN value counts as missing; a
        scale without any difference (``m`` rows or fewer, all missing) is NaN.

    Examples
    --------
    >>> x = np.array([[1.0], [2.0], [4.0], [7.0], [0.0], [0.0], [3.0]])
    >>> mase_scales(x, np.array([0, 4, 7]), 1)[:, 0].tolist()
    [2.0, 1.5]
    >>> mase_scales(x, np.array([0, 4, 7]), 1, ends=np.array([[1], [2]]), series=np.array([0]))
    array([[[1. ]],
    <BLANKLINE>
           [[1.5]]])
    """
    x = np.asarray(values, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    position = np.arange(len(x)) - np.repeat(offsets[:-1], lengths)
    diffs = np.full_like(x, np.nan)  # NaN: not counted (no difference, or a missing value)
    diffs[m:] = np.abs(x[m:] - x[:-m])
    diffs[position < m] = np.nan  # a difference across two series
    chosen = np.arange(len(lengths)) if series is None else np.asarray(series)
    if ends is None:
        ends = lengths[chosen] - 1
    start = offsets[chosen]
    last = start + np.minimum(ends, lengths[chosen] - 1)
    first = np.broadcast_to(start + m, np.shape(last))
    total, n = span_sums(diffs, offsets, first, last)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / n, np.nan)


def mase(y_true: Any, y_pred: Any, insample: Any, m: int = 1) -> float:
    """Mean absolute scaled error of one series: ``MAE / mase_scale(insample, m)``.

    A scale that is not a positive number is refused: ``insample`` with ``m`` values or fewer
    (no difference at lag ``m``), or whose values do not change at lag ``m`` (scale 0: every
    error would be infinitely large).

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actual and forecast values of the series, of one shape with at least 1 point.
    insample : array-like of float
        Its in-sample (training) values, in time order, for the scale (:func:`mase_scale`).
    m : int, default 1
        The lag of the scale (seasonal period), >= 1.

    Returns
    -------
    float

    Examples
    --------
    >>> mase([5.0, 6.0], [6.0, 6.0], insample=[1.0, 2.0, 4.0, 7.0])
    0.25
    >>> mase([1.0], [2.0], insample=[1.0, 1.0, 1.0])
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: MASE is undefined here: the in-sample values \
do not change at lag m=1, so its scale (the mean of |y_t - y_(t-1)|) is 0. Use another \
metric (e.g. mae) for a constant series.
    """
    error = mae(y_true, y_pred)
    scale = mase_scale(insample, m)  # refuses too short or non-finite insample
    if scale == 0:
        raise DataValidationError(
            f"MASE is undefined here: the in-sample values do not change at lag m={m}, so its "
            f"scale (the mean of |y_t - y_(t-{m})|) is 0. Use another metric (e.g. mae) for a "
            "constant series."
        )
    return error / scale


_NAIVE2_SCORE = Real(low=0.0, low_open=True)
_SCORE = Real(low=0.0)


def owa_score(smape: float, mase: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average of M4: ``(smape / smape_naive2 + mase / mase_naive2) / 2``.

    Pass averages over the whole set (see :func:`owa` for frames). Every score must be a
    finite number >= 0, Naive2's > 0 (the ratios divide by them).

    Parameters
    ----------
    smape, mase : float
        The method's sMAPE (in percent) and MASE over the set.
    smape_naive2, mase_naive2 : float
        Naive2's sMAPE and MASE over the same points.

    Returns
    -------
    float
        1 matches Naive2; below 1 is better.

    Examples
    --------
    >>> owa_score(9.0, 1.0, 18.0, 2.0)
    0.5
    >>> owa_score(1.0, 1.0, 0.0, 0.0)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: smape_naive2 must be a finite number > 0, got \
0.0. OWA divides by Naive2's scores: a score of 0 means Naive2 is exact on these \
points, and no ratio to it exists.
    """
    scores = {"smape": smape, "mase": mase}
    checked = {name: _SCORE.check(name, value) for name, value in scores.items()}
    for name, value in (("smape_naive2", smape_naive2), ("mase_naive2", mase_naive2)):
        if isinstance(value, numbers.Real) and value == 0:
            _NAIVE2_SCORE.fail(
                name,
                value,
                "OWA divides by Naive2's scores: a score of 0 means Naive2 is exact on these "
                "points, and no ratio to it exists.",
            )
        checked[name] = _NAIVE2_SCORE.check(name, value)
    return 0.5 * (
        checked["smape"] / checked["smape_naive2"] + checked["mase"] / checked["mase_naive2"]
    )

"""Forecast accuracy metrics and the M4 baseline forecasts.

Three layers, from the smallest:

- **Array metrics** on numpy arrays (or anything ``np.asarray`` accepts, e.g. a Polars Series),
  with scikit-learn's argument order ``(y_true, y_pred)``: :func:`mae`, :func:`mse`,
  :func:`rmse`, :func:`mape`, :func:`smape`, :func:`mase` (and its denominator
  :func:`mase_scale`), :func:`owa_score`.
- **Frame metrics** (Polars in, Polars out): :func:`evaluate` scores a long forecast frame against
  the actual values per series and target; :func:`aggregate` pools such per-series scores over
  the whole set (or over groups); :func:`owa` compares them with Naive2's scores.
- **Baselines** in the output format of :meth:`forecaster.RNNForecaster.predict`:
  :func:`naive`, :func:`seasonal_naive` and :func:`naive2`, with :func:`seasonality_test`.

The definitions are those of the M4 competition (``Benchmarks and Evaluation.R`` in
github.com/Mcompetitions/M4-methods), and the baselines reproduce the official M4 Hourly and
Weekly scores of Naive, sNaive and Naive2 to the published 3 decimals (see ``tests``):

- sMAPE = mean of ``200 |y - ŷ| / (|y| + |ŷ|)`` (a point with ``y = ŷ = 0`` counts as 0);
- MAPE = mean of ``100 |y - ŷ| / |y|`` (infinite when some ``y`` is 0);
- MASE = mean ``|y - ŷ|`` divided by the in-sample mean of ``|y_t - y_{t-m}|`` of each series;
- OWA = ``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, where each sMAPE and MASE is the
  average over the whole set (all points of all series), as in M4.

Pooling: every metric of a group is the metric of all its points together. MAE, MSE, MAPE, sMAPE
and MASE are means over points (a series' MASE uses its own scale), so :func:`aggregate` weights
per-series values by their number of points ``n``, and RMSE is the root of the pooled MSE. With
the same horizon for every series this equals the plain average over series, as M4 computes it.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster._validation import Real, check, check_allocation, describe_value
from forecaster.data.core import (
    SERIES_ID,
    _as_tuple,
    check_unique_keys,
    check_values,
    collect_frame,
    future_times,
    validate_frame,
)
from forecaster.exceptions import DataValidationError, ForecasterWarning

__all__ = [
    "METRICS",
    "aggregate",
    "evaluate",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "mse",
    "naive",
    "naive2",
    "owa",
    "owa_score",
    "rmse",
    "seasonal_naive",
    "seasonality_test",
    "smape",
]

METRICS = ("mae", "mse", "rmse", "mape", "smape", "mase")
"""Names accepted by ``metrics=`` (in this column order). ``mase`` needs in-sample data."""

_MEAN_METRICS = ("mae", "mse", "mape", "smape", "mase")
TARGET_COLUMN = "target"
"""The output column of the frame metrics that names the target of each row."""
_TARGET = TARGET_COLUMN
_TCRIT = 1.645  # one-sided 95% = two-sided 90% normal quantile, as in M4's SeasonalityTest


# ------------------------------------------------------------------------------------------
# array metrics
# ------------------------------------------------------------------------------------------


_NOT_ARRAYS = (str, bytes, Mapping, set, frozenset)


def _values(value: Any, name: str) -> np.ndarray:
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
    a = _values(y_true, "y_true")
    f = _values(y_pred, "y_pred")
    if a.shape != f.shape:
        raise DataValidationError(
            f"y_true and y_pred must have the same shape, got {a.shape} and {f.shape}."
        )
    if a.size == 0:
        raise DataValidationError("y_true and y_pred are empty; a metric needs at least 1 point.")
    return a, f


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error.

    Examples
    --------
    >>> mae([1.0, 2.0, 4.0], [2.0, 2.0, 1.0])
    1.3333333333333333
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean(np.abs(f - a)))


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error.

    Examples
    --------
    >>> mse([1.0, 2.0, 4.0], [2.0, 2.0, 1.0])
    3.3333333333333335
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean((f - a) ** 2))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error.

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0])
    3.0
    """
    return math.sqrt(mse(y_true, y_pred))


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent: mean of ``100 |y - ŷ| / |y|``.

    Infinite when some actual value is 0.

    Examples
    --------
    >>> mape([100.0, 200.0], [110.0, 150.0])
    17.5
    """
    a, f = _pair(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(100.0 * np.abs(f - a) / np.abs(a)))


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric MAPE as in M4, in percent: mean of ``200 |y - ŷ| / (|y| + |ŷ|)``.

    It lies in [0, 200]; a point where both values are 0 counts as 0 (a perfect forecast).

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
    m = _check_m(m)
    x = _values(insample, "insample").ravel()
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


def mase(y_true: Any, y_pred: Any, insample: Any, m: int = 1) -> float:
    """Mean absolute scaled error of one series: ``MAE / mase_scale(insample, m)``.

    A scale that is not a positive number is refused: ``insample`` with ``m`` values or fewer
    (no difference at lag ``m``), or whose values do not change at lag ``m`` (scale 0: every
    error would be infinitely large).

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


def _check_m(m: Any) -> int:
    return check("m", m)


# ------------------------------------------------------------------------------------------
# frame metrics
# ------------------------------------------------------------------------------------------


class PointColumns(NamedTuple):
    """Names of the columns of a points frame (one row per scored point) that
    :func:`summarize_points` reads besides the group keys: chosen by :meth:`avoiding` so that
    they differ from the keys, whatever the user's columns are called."""

    forecast: str
    actual: str
    mase_scale: str
    error_scale: str

    @classmethod
    def avoiding(cls, keys: Iterable[str]) -> PointColumns:
        """Column names that differ from ``keys`` (see :func:`temporary_names`)."""
        bases = ("__forecast__", "__actual__", "__mase_scale__", "__error_scale__")
        return cls(*temporary_names(keys, *bases))


def _collect(frame: Any, name: str) -> pl.DataFrame:
    return collect_frame(frame, what=name if name == "frame" else f"{name} frame")


def check_metric_names(metrics: Sequence[str] | str | None, has_insample: bool) -> list[str]:
    """``metrics=`` as a list of names from :data:`METRICS` (in that order): each at most
    once, ``mase`` only with in-sample data; the default is all of them."""
    if metrics is None:
        return [m for m in METRICS if m != "mase" or has_insample]
    if isinstance(metrics, str):
        names = [metrics]
    elif isinstance(metrics, Sequence):
        names = list(metrics)
    else:
        names = [metrics]
    unknown = [m for m in names if not isinstance(m, str) or m not in METRICS]
    if unknown or not names:
        raise DataValidationError(
            f"Unknown metrics {unknown or names!r}. Expected a non-empty list from {METRICS}."
        )
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise DataValidationError(
            f"metrics lists {repeated} more than once; name each metric once."
        )
    if "mase" in names and not has_insample:
        raise DataValidationError(
            "metric 'mase' needs the in-sample data of every series for its scale: pass "
            "insample=<training frame> (and m=<seasonal period>), or drop 'mase'."
        )
    return [m for m in METRICS if m in names]


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The {name} frame lacks the columns {missing}; it has {frame.columns}."
        )


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _frame(
    frame: Any,
    name: str,
    *,
    keys: Sequence[str] = (),
    numbers: Sequence[str] = (),
    unique: bool = True,
) -> pl.DataFrame:
    """The one frame check of every frame a metrics function takes (forecast, actual,
    insample, scale, scores): a polars DataFrame or LazyFrame (collected), with the columns
    ``keys`` and ``numbers``, the latter numeric, and (``unique``) one row per ``keys``.

    Raises
    ------
    DataValidationError
        Naming the frame (``name``), the columns and what to do.
    """
    data = collect_frame(frame, what=f"{name} frame")
    _require_columns(data, list(dict.fromkeys([*keys, *numbers])), name)
    text = [f"{c!r} ({data.schema[c]})" for c in numbers if not _numeric(data.schema[c])]
    if text:
        raise DataValidationError(
            f"The {name} frame must hold numbers in {', '.join(text)}. Cast them, e.g. "
            "pl.col(name).cast(pl.Float64), or name other columns."
        )
    if unique:
        check_unique_keys(data, keys, what=f"{name} frame")
    return data


def _align_keys(frames: dict[str, pl.DataFrame], keys: Sequence[str]) -> dict[str, pl.DataFrame]:
    """Give each key column one dtype in all ``frames``: integers of any width become Int64,
    text / Categorical / Enum become String; other differences (a text id against a number,
    dates against datetimes, two time zones) are refused, naming both dtypes."""
    out = dict(frames)
    for key in keys:
        dtypes = {name: frame.schema[key] for name, frame in frames.items()}
        if len({str(d) for d in dtypes.values()}) <= 1:
            continue
        if all(d.is_integer() for d in dtypes.values()):
            common: pl.DataType = pl.Int64
        elif all(_text_like(d) for d in dtypes.values()):
            common = pl.String
        else:
            shown = ", ".join(f"{d} in the {n} frame" for n, d in dtypes.items())
            raise DataValidationError(
                f"The key column {key!r} has different dtypes: {shown}. Rows are matched on "
                f"it, so cast the frames to one dtype first, e.g. pl.col({key!r}).cast(...)."
            )
        out = {n: f.with_columns(pl.col(key).cast(common)) for n, f in out.items()}
    return out


def _text_like(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def check_by(by: Any, reserved: dict[str, str]) -> list[str]:
    """``by`` as a list of column names, none of which is a column the caller always uses
    (``reserved``: name -> its role)."""
    if by is None:
        return []
    names = list(_as_tuple(by)) if isinstance(by, str | Sequence) else [by]
    bad = [b for b in names if not isinstance(b, str) or not b]
    if bad:
        raise DataValidationError(
            f"by must be a column name or a list of column names, got {describe_value(by)}."
        )
    clash = [b for b in names if b in reserved]
    if clash:
        roles = ", ".join(f"{b!r} is {reserved[b]}" for b in clash)
        raise DataValidationError(
            f"by={names!r}: {roles}, always part of the result. Leave "
            f"{'it' if len(clash) == 1 else 'them'} out of by (by names extra key columns "
            "such as 'model' or 'fold')."
        )
    repeated = sorted({b for b in names if names.count(b) > 1})
    if repeated:
        raise DataValidationError(f"by lists {repeated} more than once; name each column once.")
    return names


def _series_missing(points: pl.DataFrame, column: str, id_name: str) -> list[Any]:
    """Ids of the series whose rows in ``points`` have no ``column`` (after a left join)."""
    absent = points.filter(pl.col(column).is_null())
    return absent[id_name].unique(maintain_order=True).to_list()


def summarize_points(
    points: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str],
    metrics: Sequence[str],
    columns: PointColumns,
) -> pl.DataFrame:
    """Pool the point-level rows of a long frame into metrics per group ``by``.

    ``points`` has the columns ``by`` and those named by ``columns``: the forecast, the
    actual value and, when used, the MASE denominator of the point's series and the divisor
    of the errors of MAE / MSE / RMSE. A point is scored when both its forecast and its
    actual value are there; ``n`` counts the points scored, the points every metric is the
    mean over.
    """
    schema = points.collect_schema() if isinstance(points, pl.LazyFrame) else points.schema
    forecast, actual = pl.col(columns.forecast), pl.col(columns.actual)
    err = forecast - actual
    scaled = err / pl.col(columns.error_scale) if columns.error_scale in schema else err
    absolute = err.abs()
    den = actual.abs() + forecast.abs()
    exprs: dict[str, pl.Expr] = {
        "mae": scaled.abs().mean(),
        "mse": (scaled * scaled).mean(),
        "rmse": (scaled * scaled).mean().sqrt(),
        "mape": (100.0 * absolute / actual.abs()).mean(),
        "smape": pl.when(den == 0).then(0.0).otherwise(200.0 * absolute / den).mean(),
    }
    if columns.mase_scale in schema:
        exprs["mase"] = (absolute / pl.col(columns.mase_scale)).mean()
    aggs = [pl.len().cast(pl.Int64).alias("n")] + [exprs[m].alias(m) for m in metrics]
    lazy = points.lazy().filter(actual.is_not_null() & forecast.is_not_null())
    if by:
        return lazy.group_by(list(by), maintain_order=True).agg(aggs).collect()
    return lazy.select(aggs).collect()


def _mase_scales(
    insample: pl.DataFrame,
    id_name: str,
    time_col: str,
    targets: Sequence[str],
    m: int,
    column: str,
) -> pl.DataFrame:
    """Per (id, target): the mean of ``|y_t - y_{t-m}|`` over the in-sample rows in time order
    (NaN values count as missing, like nulls), in the column ``column``."""
    data = insample.select(id_name, time_col, *targets).sort(id_name, time_col)
    values = [pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets]
    lagged = [
        (v - v.shift(m).over(id_name)).abs().alias(t) for v, t in zip(values, targets, strict=True)
    ]
    return (
        data.with_columns(lagged)
        .group_by(id_name)
        .agg(pl.col(list(targets)).mean())
        .unpivot(index=id_name, on=list(targets), variable_name=_TARGET, value_name=column)
        .with_columns(pl.col(column).fill_null(float("nan")))
    )


def _check_mase_scales(
    points: pl.DataFrame, id_name: str, m: int, has_id: bool, columns: PointColumns
) -> None:
    """Refuse series without in-sample rows, or too few for a difference at lag ``m``; warn
    about series whose scale is 0 (MASE infinite)."""
    scored = points.filter(pl.col(columns.actual).is_not_null())
    absent = _series_missing(scored, columns.mase_scale, id_name)
    if absent:
        raise DataValidationError(
            f"The insample frame has no rows for {len(absent)} forecast series: "
            f"{absent[:10]}. MASE scales each series by its own history: pass the history of "
            "every forecast series as insample, or drop 'mase' from metrics."
        )
    short = scored.filter(pl.col(columns.mase_scale).is_nan())
    if short.height:
        which = short[id_name].unique(maintain_order=True).head(10).to_list()
        named = f"series {which}" if has_id else "the series"
        raise DataValidationError(
            f"MASE's scale (the mean of |y_t - y_(t-{m})| over insample) is undefined for "
            f"{named}: at most m={m} observed values. Pass a longer insample or a smaller m, "
            "or drop 'mase' from metrics."
        )
    flat = scored.filter(pl.col(columns.mase_scale) == 0)
    if flat.height:
        which = flat[id_name].unique(maintain_order=True).head(10).to_list()
        warnings.warn(
            f"MASE is infinite for {'series ' + str(which) if has_id else 'the series'}: "
            f"their in-sample values do not change at lag m={m} (scale 0).",
            ForecasterWarning,
            stacklevel=3,
        )


_SCALE = Real(low=0.0, low_open=True, hint="It divides the errors of MAE, MSE and RMSE.")


def error_scale_frame(
    scale: Any,
    id_name: str,
    targets: Sequence[str],
    has_id: bool,
    series: pl.Series | None = None,
    *,
    column: str,
) -> tuple[pl.DataFrame, list[str]]:
    """``scale=`` as a long frame ([id,] target, ``column``) and its join keys.

    Every divisor must be a finite number > 0; a frame must have one row per series and a row
    for every id of ``series`` (the scored series), cast to their dtype."""
    if isinstance(scale, Mapping):
        missing = [t for t in targets if t not in scale]
        if missing:
            raise DataValidationError(f"scale has no value for the targets {missing}.")
        values = [_SCALE.check(f"scale[{t!r}]", scale[t]) for t in targets]
        frame = pl.DataFrame({_TARGET: list(targets), column: values})
        return frame, [_TARGET]
    if isinstance(scale, pl.DataFrame | pl.LazyFrame):
        keys = [id_name] if has_id else []
        data = _frame(scale, "scale", keys=keys, numbers=targets)
        values = data.select(*keys, pl.col(list(targets)).cast(pl.Float64))
        _check_scale_values(values, keys, targets)
        if not has_id:
            if values.height != 1:
                raise DataValidationError(
                    "A scale frame for frames without an id column must have exactly one row; "
                    f"it has {values.height}."
                )
            frame = values.unpivot(on=list(targets), variable_name=_TARGET, value_name=column)
            return frame, [_TARGET]
        if series is not None:
            values = _align_keys({"scale": values, "forecast": series.to_frame()}, keys)["scale"]
            needed = series.to_frame().with_columns(pl.col(id_name).cast(values.schema[id_name]))
            absent = needed.join(values, on=id_name, how="anti")[id_name].unique().to_list()
            if absent:
                raise DataValidationError(
                    f"The scale frame has no row for {len(absent)} scored series: "
                    f"{sorted(absent, key=str)[:10]}. Add a divisor for each of them."
                )
        frame = values.unpivot(
            index=id_name, on=list(targets), variable_name=_TARGET, value_name=column
        )
        return frame, [id_name, _TARGET]
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool | np.bool_):
        value = _SCALE.check("scale", scale)
        frame = pl.DataFrame({_TARGET: list(targets), column: [value] * len(targets)})
        return frame, [_TARGET]
    raise DataValidationError(
        "scale must be a number, a dict {target: number} or a polars DataFrame with the id "
        f"column and one column per target; got {describe_value(scale)}."
    )


def _check_scale_values(values: pl.DataFrame, keys: list[str], targets: Sequence[str]) -> None:
    """Refuse divisors that are null, NaN, infinite or not > 0."""
    wrong = [
        pl.col(t).is_null() | pl.col(t).is_nan() | pl.col(t).is_infinite() | (pl.col(t) <= 0)
        for t in targets
    ]
    bad = values.select(pl.any_horizontal(wrong).fill_null(True)).to_series()
    if not bad.any():
        return
    row = values.filter(bad).row(0, named=True)
    where = f" for {row[keys[0]]!r}" if keys else ""
    shown = {t: row[t] for t in targets}
    raise DataValidationError(
        f"The scale frame holds {int(bad.sum())} rows with divisors that are not finite "
        f"numbers > 0, e.g. {shown}{where}. Every divisor of the errors must be positive "
        "(e.g. a training standard deviation); a constant series has none: leave scale out "
        "for it or use a relative metric."
    )


def evaluate(
    forecast: pl.DataFrame | pl.LazyFrame,
    actual: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    insample: pl.DataFrame | pl.LazyFrame | None = None,
    m: int = 1,
    metrics: Sequence[str] | str | None = None,
    scale: float | Mapping[str, float] | pl.DataFrame | None = None,
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Score a long forecast frame against the actual values, per series and target.

    Forecast and actual rows are matched on (id, time). Forecast values without an actual
    value (no actual row, or a null or NaN there: NaN counts as missing, like null) are left
    out, with a warning when some, an error when all. Forecasts are the model's output, so a
    null, NaN or infinite forecast is refused (naming the target, series and time), never
    skipped: ``n`` is the number of points scored, the points every metric is the mean over.

    Every frame goes through one check (:func:`_frame`): a polars DataFrame or LazyFrame with
    the key and target columns, numeric targets, and one row per key (``by``, id, time); key
    columns may differ in integer width or between text, Categorical and Enum, other dtype
    differences are refused. Actual and in-sample values must not be infinite.

    Parameters
    ----------
    forecast : polars.DataFrame or polars.LazyFrame
        Long format as returned by :meth:`~forecaster.RNNForecaster.predict`: id (optional),
        time and one column per target.
    actual : polars.DataFrame or polars.LazyFrame
        Frame with the true values (id, time, targets); extra rows (e.g. the history) are fine.
    target : str or sequence of str
    time_col : str, default "time"
    id_col : str or None, default None
        ``None`` when the frames hold one series.
    insample : polars.DataFrame or polars.LazyFrame, optional
        The history each series was forecast from (id, time, targets), for MASE's scale. Every
        scored series needs more than ``m`` observed values there; a series whose values do
        not change at lag ``m`` has an infinite MASE (with a warning).
    m : int, default 1
        Seasonal period of MASE's scale (M4: 24 for hourly, 1 for weekly and daily data).
    metrics : sequence of str, optional
        Names from :data:`METRICS`; default all, MASE only when ``insample`` is given.
    scale : float, dict or polars.DataFrame, optional
        Divisor of the errors of MAE, MSE and RMSE, to report them on another scale, e.g. the
        training standard deviation of each target for the ETT protocol's z-scale MSE / MAE: a
        number, ``{target: number}``, or a frame with the id column and one column per target
        (one divisor per series, a row for every scored series). Every divisor must be a
        finite number > 0. The relative metrics (MAPE, sMAPE, MASE) do not use it.
    by : sequence of str, default ()
        Extra key columns of ``forecast`` to group by as well (e.g. ``"model"``, ``"fold"``);
        ``actual`` is still matched on (id, time). Not the id, time or target columns.

    Returns
    -------
    polars.DataFrame
        One row per (``*by``, id, target): those columns, ``n`` (points scored) and one column
        per metric, in the order of the forecast frame.

    Examples
    --------
    >>> import polars as pl
    >>> actual = pl.DataFrame({"time": [0, 1, 2, 3, 4], "y": [1.0, 2.0, 4.0, 7.0, 5.0]})
    >>> forecast = pl.DataFrame({"time": [4], "y": [6.0]})
    >>> evaluate(forecast, actual, target="y", insample=actual.head(4), metrics=["mae", "mase"])
    shape: (1, 4)
    ┌────────┬─────┬─────┬──────┐
    │ target ┆ n   ┆ mae ┆ mase │
    │ ---    ┆ --- ┆ --- ┆ ---  │
    │ str    ┆ i64 ┆ f64 ┆ f64  │
    ╞════════╪═════╪═════╪══════╡
    │ y      ┆ 1   ┆ 1.0 ┆ 0.5  │
    └────────┴─────┴─────┴──────┘
    """
    targets = list(check("target", target))
    time_col, id_col = check("time_col", time_col), check("id_col", id_col)
    m = _check_m(m)
    names = check_metric_names(metrics, insample is not None)
    if _TARGET in (id_col, time_col):
        raise DataValidationError(
            f"'{_TARGET}' is the name of an output column; rename that key column."
        )
    reserved = {time_col: "the time column", _TARGET: "the name of an output column"}
    reserved.update({t: "a target" for t in targets})
    if id_col is not None:
        reserved[id_col] = "the id column"
    by = check_by(by, reserved)
    keys = [c for c in (id_col, time_col) if c is not None]
    frames = {
        "forecast": _frame(forecast, "forecast", keys=[*by, *keys], numbers=targets),
        "actual": _frame(actual, "actual", keys=keys, numbers=targets),
    }
    if "mase" in names:
        frames["insample"] = _frame(insample, "insample", keys=keys, numbers=targets)
    frames = _align_keys(frames, keys)
    id_name = id_col
    if id_col is None:  # one series: a constant id, named unlike any column of the frames
        (id_name,) = temporary_names([c for f in frames.values() for c in f.columns], SERIES_ID)
        frames = {n: f.with_columns(pl.lit(0, pl.UInt8).alias(id_name)) for n, f in frames.items()}
    _check_frame_values(frames, targets, id_name, time_col)
    columns = PointColumns.avoiding([*by, id_name, time_col, _TARGET, *targets])
    points = _matched_points(
        frames["forecast"], frames["actual"], by, id_name, time_col, targets, columns
    )
    if "mase" in names:
        scales = _mase_scales(frames["insample"], id_name, time_col, targets, m, columns.mase_scale)
        points = points.join(scales, on=[id_name, _TARGET], how="left", maintain_order="left")
        _check_mase_scales(points, id_name, m, id_col is not None, columns)
    if scale is not None:
        scored = points.filter(pl.col(columns.actual).is_not_null())[id_name].unique()
        divisors, on = error_scale_frame(
            scale, id_name, targets, id_col is not None, scored, column=columns.error_scale
        )
        if id_col is not None and id_name in on:
            divisors = divisors.with_columns(pl.col(id_name).cast(points.schema[id_name]))
        points = points.join(divisors, on=on, how="left", maintain_order="left")
    out = summarize_points(points, [*by, id_name, _TARGET], names, columns)
    return out.drop(id_name) if id_col is None else out


def _check_frame_values(
    frames: dict[str, pl.DataFrame], targets: list[str], id_name: str, time_col: str
) -> None:
    """Forecasts must be finite numbers (the model's output: a null, NaN or infinite forecast
    is refused, not skipped); actual and in-sample values must not be infinite (null or NaN
    ones are not scored)."""
    check_values(
        frames["forecast"],
        targets,
        id_name=id_name,
        time_col=time_col,
        what="forecast frame",
        fix="Every forecast row is scored, so each needs a finite forecast: drop the rows the "
        "model could not forecast first (e.g. forecast.drop_nulls().filter(pl.col(c)"
        ".is_finite())), or fix the model. n counts the points scored.",
    )
    for name in ("actual", "insample"):
        if name in frames:
            floats = [t for t in targets if frames[name].schema[t].is_float()]
            check_values(
                frames[name],
                floats,
                id_name=id_name,
                time_col=time_col,
                what=f"{name} frame",
                missing=False,
                fix="Replace them with null (not scored) or fix the source.",
            )


def _matched_points(
    forecast: pl.DataFrame,
    actual: pl.DataFrame,
    by: list[str],
    id_name: str,
    time_col: str,
    targets: list[str],
    columns: PointColumns,
) -> pl.DataFrame:
    """One row per (forecast row, target) with its forecast and actual value (null when there
    is none, NaN counting as none); warns when some rows have none, refuses when all do."""
    observed = temporary_names(
        [*by, id_name, time_col, *targets], *[f"{t}__actual__" for t in targets]
    )
    joined = forecast.select(*by, id_name, time_col, *targets).join(
        actual.select(
            id_name,
            time_col,
            *[pl.col(t).cast(pl.Float64).alias(o) for t, o in zip(targets, observed, strict=True)],
        ),
        on=[id_name, time_col],
        how="left",
        maintain_order="left",
    )
    nan = joined.select(pl.any_horizontal(pl.col(c).is_nan() for c in observed)).to_series()
    joined = joined.with_columns(pl.col(c).fill_nan(None) for c in observed)
    matched = joined.select(pl.any_horizontal(pl.col(c).is_not_null() for c in observed))
    matched = matched.to_series()
    if not matched.any():
        raise DataValidationError(
            f"No forecast row has an actual value: none of the {forecast.height} forecast "
            "(id, time) pairs is in the actual frame with a value"
            + (f" ({int(nan.sum())} are NaN there)" if nan.any() else "")
            + ". Pass the frame that holds the future values, with the same id and time columns."
        )
    if not matched.all():
        n_nan = int((nan & ~matched).sum())
        warnings.warn(
            f"{int((~matched).sum())} of {forecast.height} forecast rows have no actual value "
            "(no row in the actual frame, or null or NaN there"
            + (f": {n_nan} NaN, which counts as missing" if n_nan else "")
            + ") and are not scored.",
            ForecasterWarning,
            stacklevel=3,
        )
    return pl.concat(
        [
            joined.select(
                *by,
                id_name,
                pl.lit(t).alias(_TARGET),
                pl.col(t).cast(pl.Float64).alias(columns.forecast),
                pl.col(o).alias(columns.actual),
            )
            for t, o in zip(targets, observed, strict=True)
        ]
    )


def aggregate(scores: pl.DataFrame, *, by: Sequence[str] | str | None = None) -> pl.DataFrame:
    """Pool per-series scores (from :func:`evaluate`) over the whole set or per group.

    Each metric becomes the metric of all points together: MAE, MSE, MAPE, sMAPE and MASE are
    averages weighted by ``n``, RMSE the root of the pooled MSE. The rows are grouped by
    ``target`` (when present) and ``by``. Every row needs ``n >= 1`` (a whole number) and a
    value of every metric column: a null score is refused (pooled, it would count as 0 with
    its full weight); a NaN score makes the pooled value NaN.

    Parameters
    ----------
    scores : polars.DataFrame
        With the column ``n`` and metric columns, all numeric (checked like every frame of
        this module).
    by : str or sequence of str, optional
        Columns to keep (e.g. ``"fold"``); default: pool everything (per target).

    Examples
    --------
    >>> import polars as pl
    >>> scores = pl.DataFrame({"id": ["a", "b"], "n": [1, 3], "mae": [4.0, 0.0],
    ...                        "rmse": [4.0, 0.0]})
    >>> aggregate(scores).rows()
    [(4, 1.0, 2.0)]
    """
    keys = check_by(by, {"n": "the count of points", **{m: "a metric" for m in METRICS}})
    frame = collect_frame(scores, what="scores frame")
    if _TARGET in frame.columns and _TARGET not in keys:
        keys.append(_TARGET)
    present = [m for m in METRICS if m in frame.columns]
    scores = _frame(frame, "scores", keys=keys, numbers=["n", *present], unique=False)
    _check_scores(scores, present, "scores")
    weight = pl.col("n").cast(pl.Float64)
    total = weight.sum()
    exprs = [pl.col("n").sum().cast(pl.Int64).alias("n")]
    for name in present:
        value = pl.col(name).cast(pl.Float64)
        if name in _MEAN_METRICS:
            exprs.append(((value * weight).sum() / total).alias(name))
        else:  # rmse
            exprs.append(((value**2 * weight).sum() / total).sqrt().alias(name))
    if keys:
        return scores.group_by(keys, maintain_order=True).agg(exprs)
    return scores.select(exprs)


def _check_scores(scores: pl.DataFrame, metrics: Sequence[str], name: str) -> None:
    """Refuse rows that cannot be pooled: ``n`` that is not a count > 0, and null metrics
    (pooling would add them as 0 while keeping their weight). :func:`evaluate` writes
    neither; NaN metrics (e.g. a MAPE of 0/0) are kept: they make the pooled value NaN."""
    n = pl.col("n").cast(pl.Float64)
    bad_n = n.is_null() | n.is_nan() | (n <= 0) | (n != n.floor())
    null = [pl.col(m).is_null() for m in metrics]
    checks = {"n": bad_n, **dict(zip(metrics, null, strict=True))}
    counts = scores.select(c.sum().alias(k) for k, c in checks.items()).row(0, named=True)
    wrong = {k: v for k, v in counts.items() if v}
    if not wrong:
        return
    column = next(iter(wrong))
    example = scores.filter(checks[column]).row(0, named=True)
    what = (
        "holds counts of points that are not whole numbers > 0"
        if column == "n"
        else "holds null scores"
    )
    raise DataValidationError(
        f"The {name} frame {what} in {column!r} ({wrong[column]} rows, e.g. {example}). "
        "Every row is pooled with weight n (its number of points), so each needs n >= 1 and "
        "a value of every metric: evaluate() writes such rows; drop the others (e.g. "
        f"{name}.drop_nulls()) or recompute them."
    )


def _check_same_points(scores: pl.DataFrame, naive2: pl.DataFrame) -> None:
    """Refuse score frames of different series (or folds, targets, ...): rows are matched
    on the columns both frames have besides ``n`` and the metrics, and each match must
    pool the same number of points."""
    keys = [c for c in scores.columns if c in naive2.columns and c not in ("n", *METRICS)]
    frames = {"scores": scores, "naive2_scores": naive2}
    if keys:
        frames = _align_keys(frames, keys)
    counts = {
        name: (
            frame.group_by(keys, maintain_order=True).agg(pl.col("n").sum())
            if keys
            else frame.select(pl.col("n").sum())
        ).with_columns(pl.col("n").cast(pl.Int64))  # whole numbers (see _check_scores)
        for name, frame in frames.items()
    }
    (other,) = temporary_names([*keys, "n"], "n_naive2")
    right = counts["naive2_scores"].rename({"n": other})
    if keys:
        joined = counts["scores"].join(
            right, on=keys, how="full", coalesce=True, nulls_equal=True, maintain_order="left"
        )
    else:
        joined = pl.concat([counts["scores"], right], how="horizontal")
    n, n2 = pl.col("n"), pl.col(other)
    problems = [
        (n2.is_null(), "rows of scores have no match in naive2_scores"),
        (n.is_null(), "rows of naive2_scores have no match in scores"),
        (n != n2, "rows pool a different number of points n in the two frames"),
    ]
    for mask, what in problems:
        wrong = joined.filter(mask)
        if wrong.height:
            example = wrong.row(0, named=True) if keys else {"n": wrong["n"][0]}
            raise DataValidationError(
                f"owa compares a model with Naive2 on the same points, but {wrong.height} "
                f"{what} (matched on {keys}; e.g. {example}). Score both forecasts on the same "
                "series, folds and steps (evaluate() against the same actual frame), or "
                "filter both frames to the series they share."
            )


def owa(
    scores: pl.DataFrame,
    naive2_scores: pl.DataFrame,
    *,
    by: Sequence[str] | str | None = None,
) -> pl.DataFrame:
    """Overall weighted average against Naive2, as M4 computes it.

    ``OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, with every sMAPE and MASE
    pooled over all series (see :func:`aggregate`) before the ratios are taken.

    Parameters
    ----------
    scores, naive2_scores : polars.DataFrame
        Per-series scores of the model and of :func:`naive2` on the same points, each with the
        columns ``n``, ``smape`` and ``mase`` (from :func:`evaluate`).
    by : str or sequence of str, optional
        Group columns (e.g. ``"fold"``); rows are also split by ``target`` when present.

    Returns
    -------
    polars.DataFrame
        Keys, ``smape``, ``mase``, ``smape_naive2``, ``mase_naive2`` and ``owa`` (null where
        Naive2's pooled score is 0: no ratio to an exact baseline exists).

    Raises
    ------
    DataValidationError
        When the two frames are not scores of the same points: rows are matched on the
        columns both frames have besides ``n`` and the metrics (id, target, fold, ...), and
        every row must have a match with the same ``n``; a series scored for the model but
        not for Naive2 (or the other way round) is refused, naming it. Also for rows that
        :func:`aggregate` refuses.

    Examples
    --------
    >>> import polars as pl
    >>> model = pl.DataFrame({"id": ["a", "b"], "n": [2, 2], "smape": [8.0, 10.0],
    ...                       "mase": [1.0, 1.0]})
    >>> base = model.with_columns(pl.col("smape") * 2, pl.col("mase") * 2)
    >>> owa(model, base)["owa"].to_list()
    [0.5]
    """
    frames = {}
    for frame, name in ((scores, "scores"), (naive2_scores, "naive2_scores")):
        frames[name] = _frame(frame, name, numbers=["n", "smape", "mase"], unique=False)
        _check_scores(frames[name], ["smape", "mase"], name)
    _check_same_points(frames["scores"], frames["naive2_scores"])
    others = [m for m in METRICS if m not in ("smape", "mase")]
    a = aggregate(frames["scores"].select(pl.exclude(others)), by=by)
    b = aggregate(frames["naive2_scores"].select(pl.exclude(others)), by=by)
    keys = [c for c in a.columns if c not in ("n", "smape", "mase")]
    b = b.select(*keys, pl.col("smape").alias("smape_naive2"), pl.col("mase").alias("mase_naive2"))
    if keys:
        aligned = _align_keys({"scores": a, "naive2_scores": b}, keys)
        a, b = aligned["scores"], aligned["naive2_scores"]
    out = (
        a.drop("n").join(b, on=keys, how="left", maintain_order="left")
        if keys
        else pl.concat([a.drop("n"), b], how="horizontal")
    )
    ratio = [
        pl.col(c) / pl.when(pl.col(f"{c}_naive2") != 0).then(pl.col(f"{c}_naive2"))
        for c in ("smape", "mase")
    ]
    return out.with_columns((0.5 * (ratio[0] + ratio[1])).alias("owa"))


# ------------------------------------------------------------------------------------------
# baselines
# ------------------------------------------------------------------------------------------


class _Series:
    """Float64 values of every series of a validated frame, packed with offsets."""

    def __init__(
        self,
        frame: Any,
        *,
        target: str | Sequence[str],
        time_col: str,
        id_col: str | None,
        freq: str | int | None,
        missing: str,
    ) -> None:
        targets = list(_as_tuple(target))
        data, self.freq = validate_frame(
            frame, target=targets, time_col=time_col, id_col=id_col, freq=freq, missing=missing
        )
        id_name = id_col if id_col is not None else SERIES_ID  # validate_frame's id column
        # validate_frame returns Float32 values: take the original values (Float64) back by
        # (id, time), keeping filled ones (missing != "error") where the original has none.
        on = [id_col, time_col] if id_col is not None else [time_col]
        original = _collect(frame, "frame").select(
            *on, *[pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets]
        )
        exact = data.select(on).join(original, on=on, how="left", maintain_order="left")
        values = exact.select(
            pl.coalesce(pl.col(t), data[t].cast(pl.Float64)) for t in targets
        ).to_numpy()
        runs = data[id_name].rle().struct.unnest()
        self.lengths = runs["len"].to_numpy().astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.keys = pl.DataFrame(runs["value"].alias(id_name))
        self.values = np.ascontiguousarray(values.reshape(len(data), len(targets)))
        self.time = data[time_col]
        self.targets = targets
        self.id_col = id_col
        self.id_name = id_name
        self.time_col = time_col

    def forecast_frame(self, forecast: np.ndarray) -> pl.DataFrame:
        """``forecast`` of shape (n_series, horizon, n_targets) as a long frame."""
        n_series, horizon, _ = forecast.shape
        times = future_times(self.time, self.offsets, self.freq, horizon)
        flat = forecast.reshape(n_series * horizon, -1)
        columns: dict[str, pl.Series] = {}
        if self.id_col is not None:
            columns[self.id_col] = _repeat(self.keys[self.id_name], horizon)
        columns[self.time_col] = times
        for j, name in enumerate(self.targets):
            columns[name] = pl.Series(name, flat[:, j], dtype=pl.Float64)
        return pl.DataFrame(columns)


def _repeat(values: pl.Series, times: int) -> pl.Series:
    """Each value of ``values`` ``times`` times in a row."""
    return values.gather(np.repeat(np.arange(len(values)), times))


def _check_horizon(horizon: Any) -> int:
    return check("horizon", horizon)


def _last_values(series: _Series) -> np.ndarray:
    return series.values[series.offsets[1:] - 1]  # (n_series, n_targets)


def naive(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> pl.DataFrame:
    """Naive forecast: the last value of every series, repeated ``horizon`` times.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        Long history (id, time, targets); checked like the estimators' input
        (:func:`~forecaster.data.core.validate_frame`).
    horizon : int
    target, time_col, id_col, freq, missing
        As in :class:`~forecaster.RNNForecaster`.

    Returns
    -------
    polars.DataFrame
        The format of :meth:`~forecaster.RNNForecaster.predict`: id (when given), the next
        ``horizon`` times of each series and the targets (as Float64).

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": [1, 2, 3], "y": [5.0, 6.0, 7.0]})
    >>> naive(history, 2, target="y").rows()
    [(4, 7.0), (5, 7.0)]
    """
    horizon = _check_horizon(horizon)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_output_size(series, horizon, "naive")
    forecast = np.repeat(_last_values(series)[:, None, :], horizon, axis=1)
    return series.forecast_frame(forecast)


def seasonal_naive(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    m: int,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> pl.DataFrame:
    """Seasonal naive forecast: the last ``m`` values of every series, repeated.

    Step ``h`` (1-based) is the value ``m - ((h - 1) mod m)`` steps before the end. Every series
    needs at least ``m`` values.

    Parameters
    ----------
    m : int
        Seasonal period (``m = 1`` is :func:`naive`).
    **others
        As in :func:`naive`.

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": range(5), "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> seasonal_naive(history, 3, m=2, target="y")["y"].to_list()
    [4.0, 5.0, 4.0]
    """
    horizon = _check_horizon(horizon)
    m = _check_m(m)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_long_enough(series, m, f"seasonal naive with m={m}")
    _check_output_size(series, horizon, "seasonal naive")
    rows = series.offsets[1:, None] - m + (np.arange(horizon) % m)[None, :]
    return series.forecast_frame(series.values[rows])


def _check_long_enough(series: _Series, needed: int, what: str) -> None:
    short = series.lengths < needed
    if short.any():
        names = series.keys[series.id_name].filter(pl.Series(short)).head(5).to_list()
        raise DataValidationError(
            f"{what} needs at least {needed} values per series; {int(short.sum())} series are "
            f"shorter (e.g. {names}, shortest has {int(series.lengths.min())}). Drop them or use "
            "naive()."
        )


def _acf(x: np.ndarray, offsets: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..max_lag of every packed series, as R's ``acf``.

    Returns an array (n_series, max_lag); NaN for a constant series.
    """
    lengths = np.diff(offsets)
    n_series = len(lengths)
    series = np.repeat(np.arange(n_series), lengths)
    local = np.arange(len(x)) - np.repeat(offsets[:-1], lengths)
    mean = np.bincount(series, weights=x, minlength=n_series) / np.maximum(lengths, 1)
    d = x - mean[series]
    denom = np.bincount(series, weights=d * d, minlength=n_series)
    out = np.empty((n_series, max_lag))
    for k in range(1, max_lag + 1):
        prod = np.where(local[k:] >= k, d[k:] * d[:-k], 0.0)
        out[:, k - 1] = np.bincount(series[k:], weights=prod, minlength=n_series)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / denom[:, None]


def _seasonal_flags(x: np.ndarray, offsets: np.ndarray, m: int) -> np.ndarray:
    """M4's 90% seasonality test at lag ``m`` for every packed series (see seasonality_test)."""
    lengths = np.diff(offsets)
    flags = np.zeros(len(lengths), dtype=bool)
    if m <= 1:
        return flags
    # R's acf() computes lags up to floor(10 log10(n)) (at most n - 1): a longer lag m is NA,
    # which M4's SeasonalityTest reads as "not seasonal".
    with np.errstate(divide="ignore"):
        lag_max = np.minimum(np.floor(10 * np.log10(np.maximum(lengths, 1))), lengths - 1)
    eligible = (lengths >= 3 * m) & (lag_max >= m)
    if not eligible.any():
        return flags
    acf = _acf(x, offsets, m)
    n = lengths.astype(np.float64)
    limit = _TCRIT / np.sqrt(n) * np.sqrt(1.0 + 2.0 * np.sum(acf[:, : m - 1] ** 2, axis=1))
    with np.errstate(invalid="ignore"):
        flags = eligible & (np.abs(acf[:, m - 1]) > limit)
    return flags & np.isfinite(acf[:, m - 1])


def seasonality_test(values: Any, m: int) -> bool:
    """M4's 90% autocorrelation test for seasonality at lag ``m``.

    Seasonal when ``|r_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)``, with ``r_k`` the
    sample autocorrelations of the ``n`` values. As in M4 (R's ``acf`` defaults), a series with
    fewer than ``3 m`` values, or with ``m > 10 log10(n)`` (lags R does not compute), is not
    seasonal, and neither is a constant one or any series when ``m = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(300)
    >>> seasonality_test(10 + np.sin(2 * np.pi * t / 24), m=24)
    True
    >>> seasonality_test(np.random.default_rng(2).normal(size=300), m=24)
    False
    >>> seasonality_test(10 + np.sin(2 * np.pi * t[:240] / 24), m=24)  # 24 > 10 log10(240)
    False
    """
    m = _check_m(m)
    x = _values(values, "values").ravel()
    return bool(_seasonal_flags(x, np.array([0, len(x)]), m)[0])


def _seasonal_indices(x: np.ndarray, offsets: np.ndarray, m: int) -> np.ndarray:
    """Classical multiplicative decomposition's seasonal indices (n_series, m), as R's
    ``decompose(type="multiplicative")``: ratios to a centred moving average (2 x m for even
    m), averaged per position in the cycle (counted from each series' first value) and
    normalised to mean 1. Every series needs at least ``m + 1`` (even ``m``) or ``m`` values."""
    lengths = np.diff(offsets)
    n_series = len(lengths)
    # R's filter: 2 x m (weights 1/2m at both ends) for even m, m x 1 for odd m
    even = np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m
    weights = even if m % 2 == 0 else np.ones(m) / m
    width = len(weights)
    half = width // 2
    series = np.repeat(np.arange(n_series), lengths)
    local = np.arange(len(x)) - np.repeat(offsets[:-1], lengths)
    # moving average of the window starting at row j (centred on row j + half), kept where
    # the window lies inside one series
    moving = np.convolve(x, weights[::-1], mode="valid")
    ok = local[: len(moving)] <= lengths[series[: len(moving)]] - width
    starts = np.flatnonzero(ok)
    trend = moving[starts]
    centre = starts + half
    cell = series[centre] * m + local[centre] % m
    counts = np.bincount(cell, minlength=n_series * m).reshape(n_series, m)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero trend: see naive2
        ratio = x[centre] / trend
        sums = np.bincount(cell, weights=ratio, minlength=n_series * m).reshape(n_series, m)
        figure = sums / counts
        return figure / figure.mean(axis=1, keepdims=True)


def naive2(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    m: int,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> pl.DataFrame:
    """Naive2, the M4 reference: naive on the seasonally adjusted series, re-seasonalised.

    A series that passes :func:`seasonality_test` at lag ``m`` is divided by the seasonal
    indices of a classical multiplicative decomposition (centred moving average of order ``m``,
    ``2 x m`` for even ``m``; ratios averaged per position in the cycle and normalised to mean
    1); its last adjusted value is repeated and multiplied by the indices of the forecast
    steps. Other series (and every series when ``m = 1``) get the naive forecast. This is
    M4's ``Benchmarks()`` in ``Benchmarks and Evaluation.R``.

    A seasonal series whose centred moving average is 0 somewhere (e.g. zeros between
    spikes) has no multiplicative indices (R's ``decompose`` gives NaN there, and so would
    the forecast): it gets the naive forecast, as a series that fails the test does, and a
    :class:`~forecaster.exceptions.ForecasterWarning` names it. The output (series x
    ``horizon`` rows) is checked against the memory limit before it is allocated.

    Parameters
    ----------
    m : int
        Seasonal period (M4: 24 for hourly, 12 monthly, 4 quarterly, 1 otherwise).
    **others
        As in :func:`naive`.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> t = np.arange(288)
    >>> history = pl.DataFrame({"time": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 24)})
    >>> fc = naive2(history, 24, m=24, target="y")
    >>> bool(np.allclose(fc["y"].to_numpy(), history["y"][-24:].to_numpy(), atol=0.3))
    True
    """
    horizon = _check_horizon(horizon)
    m = _check_m(m)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_output_size(series, horizon, "Naive2")
    last = _last_values(series)
    forecast = np.repeat(last[:, None, :], horizon, axis=1)
    unadjusted: list[Any] = []
    if m > 1:
        for j in range(len(series.targets)):
            x = series.values[:, j]
            seasonal = np.flatnonzero(_seasonal_flags(x, series.offsets, m))
            if seasonal.size == 0:
                continue
            figure = _seasonal_indices(
                x[_rows_of(series, seasonal)], _offsets_of(series, seasonal), m
            )
            # a moving average of 0 (e.g. a series of zeros and spikes) has no ratios to it:
            # no seasonal adjustment for that series, as when the seasonality test fails
            usable = np.isfinite(figure).all(axis=1) & (figure > 0).all(axis=1)
            unadjusted += series.keys[series.id_name].gather(seasonal[~usable]).to_list()
            seasonal, figure = seasonal[usable], figure[usable]
            n = series.lengths[seasonal][:, None]
            pos_last = (n[:, 0] - 1) % m
            adjusted = last[seasonal, j] / figure[np.arange(len(seasonal)), pos_last]
            steps = (n + np.arange(horizon)[None, :]) % m
            forecast[seasonal, :, j] = adjusted[:, None] * np.take_along_axis(figure, steps, 1)
    if unadjusted:
        _warn_unadjusted(unadjusted, m, series.id_col is not None)
    return series.forecast_frame(forecast)


def _rows_of(series: _Series, chosen: np.ndarray) -> np.ndarray:
    """Rows of ``series.values`` of the series ``chosen``, in order."""
    lengths = series.lengths[chosen]
    offsets = _offsets_of(series, chosen)
    return np.repeat(series.offsets[chosen] - offsets[:-1], lengths) + np.arange(offsets[-1])


def _offsets_of(series: _Series, chosen: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(series.lengths[chosen])])


def _warn_unadjusted(ids: list[Any], m: int, has_id: bool) -> None:
    unique = list(dict.fromkeys(ids))
    which = f"{len(unique)} series ({unique[:10]})" if has_id else "The series"
    warnings.warn(
        f"naive2: {which} pass the seasonality test at m={m}, but their centred moving "
        "average is 0 somewhere (zeros between spikes), so the multiplicative seasonal "
        "indices do not exist: they get the naive forecast without seasonal adjustment, as "
        "series that fail the test do.",
        ForecasterWarning,
        stacklevel=3,
    )


def _check_output_size(series: _Series, horizon: int, name: str) -> None:
    """Refuse a baseline forecast of ``len(series) x horizon`` rows that would not fit in
    memory (:func:`forecaster._validation.check_allocation`), before allocating it."""
    n_series = len(series.lengths)
    rows = n_series * horizon
    per_row = 16 * len(series.targets) + 64  # the values and their copies, times, ids, indexes
    check_allocation(
        rows * per_row,
        what=f"The {name} forecast ({rows:,} rows)",
        grows_with=f"horizon={horizon:,} x {n_series:,} series",
        fix="Lower horizon, or forecast fewer series at a time.",
    )

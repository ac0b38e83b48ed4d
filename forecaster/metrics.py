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
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.data import SERIES_ID, _as_tuple, collect_frame, validate_frame
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
_TARGET = "target"
_ACTUAL = "__actual__"
_FORECAST = "__forecast__"
_MASE_SCALE = "__mase_scale__"
_ERROR_SCALE = "__error_scale__"
_TCRIT = 1.645  # one-sided 95% = two-sided 90% normal quantile, as in M4's SeasonalityTest


# ------------------------------------------------------------------------------------------
# array metrics
# ------------------------------------------------------------------------------------------


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    f = np.asarray(y_pred, dtype=np.float64)
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
    ``m = 1``). NaN when the series has ``m`` values or fewer.

    Examples
    --------
    >>> mase_scale([1.0, 2.0, 4.0, 7.0])
    2.0
    >>> mase_scale([1.0, 2.0, 4.0, 7.0], m=2)
    4.0
    """
    _check_m(m)
    x = np.asarray(insample, dtype=np.float64).ravel()
    if x.size <= m:
        return float("nan")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(y_true: Any, y_pred: Any, insample: Any, m: int = 1) -> float:
    """Mean absolute scaled error of one series: ``MAE / mase_scale(insample, m)``.

    Examples
    --------
    >>> mase([5.0, 6.0], [6.0, 6.0], insample=[1.0, 2.0, 4.0, 7.0])
    0.25
    """
    return mae(y_true, y_pred) / mase_scale(insample, m)


def owa_score(smape: float, mase: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average of M4: ``(smape / smape_naive2 + mase / mase_naive2) / 2``.

    Pass averages over the whole set (see :func:`owa` for frames).

    Examples
    --------
    >>> owa_score(9.0, 1.0, 18.0, 2.0)
    0.5
    """
    return 0.5 * (smape / smape_naive2 + mase / mase_naive2)


def _check_m(m: Any) -> int:
    return check("m", m)


# ------------------------------------------------------------------------------------------
# frame metrics
# ------------------------------------------------------------------------------------------


def _collect(frame: Any, name: str) -> pl.DataFrame:
    return collect_frame(frame, what=name if name == "frame" else f"{name} frame")


def _check_metrics(metrics: Sequence[str] | str | None, has_insample: bool) -> list[str]:
    if metrics is None:
        return [m for m in METRICS if m != "mase" or has_insample]
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise DataValidationError(
            f"Unknown metrics {unknown or names!r}. Expected a non-empty list from {METRICS}."
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


def _summarize(
    points: pl.DataFrame | pl.LazyFrame, by: Sequence[str], metrics: Sequence[str]
) -> pl.DataFrame:
    """Pool the point-level rows of a long frame into metrics per group ``by``.

    ``points`` has the columns ``by``, ``__forecast__``, ``__actual__`` and, when used,
    ``__mase_scale__`` (MASE denominator of the point's series) and ``__error_scale__`` (divisor
    of the errors of MAE / MSE / RMSE).
    """
    schema = points.collect_schema() if isinstance(points, pl.LazyFrame) else points.schema
    err = pl.col(_FORECAST) - pl.col(_ACTUAL)
    scaled = err / pl.col(_ERROR_SCALE) if _ERROR_SCALE in schema else err
    absolute = err.abs()
    den = pl.col(_ACTUAL).abs() + pl.col(_FORECAST).abs()
    exprs: dict[str, pl.Expr] = {
        "mae": scaled.abs().mean(),
        "mse": (scaled * scaled).mean(),
        "rmse": (scaled * scaled).mean().sqrt(),
        "mape": (100.0 * absolute / pl.col(_ACTUAL).abs()).mean(),
        "smape": pl.when(den == 0).then(0.0).otherwise(200.0 * absolute / den).mean(),
    }
    if _MASE_SCALE in schema:
        exprs["mase"] = (absolute / pl.col(_MASE_SCALE)).mean()
    aggs = [pl.len().cast(pl.Int64).alias("n")] + [exprs[m].alias(m) for m in metrics]
    lazy = points.lazy().filter(pl.col(_ACTUAL).is_not_null())
    if by:
        return lazy.group_by(list(by), maintain_order=True).agg(aggs).collect()
    return lazy.select(aggs).collect()


def _mase_scales(
    insample: pl.DataFrame, id_name: str, time_col: str, targets: Sequence[str], m: int
) -> pl.DataFrame:
    """Per (id, target): the mean of ``|y_t - y_{t-m}|`` over the in-sample rows in time order."""
    _require_columns(insample, [id_name, time_col, *targets], "insample")
    data = insample.select(id_name, time_col, *targets).sort(id_name, time_col)
    lagged = [
        (pl.col(t).cast(pl.Float64) - pl.col(t).cast(pl.Float64).shift(m).over(id_name))
        .abs()
        .alias(t)
        for t in targets
    ]
    return (
        data.with_columns(lagged)
        .group_by(id_name)
        .agg(pl.col(list(targets)).mean())
        .unpivot(index=id_name, on=list(targets), variable_name=_TARGET, value_name=_MASE_SCALE)
        .with_columns(pl.col(_MASE_SCALE).fill_null(float("nan")))
    )


def _error_scales(
    scale: Any, id_name: str, targets: Sequence[str], has_id: bool
) -> tuple[pl.DataFrame, list[str]]:
    """``scale=`` as a long frame ([id,] target, __error_scale__) and its join keys."""
    if isinstance(scale, Mapping):
        missing = [t for t in targets if t not in scale]
        if missing:
            raise DataValidationError(f"scale has no value for the targets {missing}.")
        frame = pl.DataFrame(
            {_TARGET: list(targets), _ERROR_SCALE: [float(scale[t]) for t in targets]}
        )
        return frame, [_TARGET]
    if isinstance(scale, pl.DataFrame):
        keys = [id_name] if has_id else []
        _require_columns(scale, [*keys, *targets], "scale")
        if not has_id:
            frame = scale.select(pl.col(list(targets)).cast(pl.Float64))
            if frame.height != 1:
                raise DataValidationError(
                    "A scale frame for frames without an id column must have exactly one row."
                )
            frame = frame.unpivot(on=list(targets), variable_name=_TARGET, value_name=_ERROR_SCALE)
            return frame, [_TARGET]
        frame = scale.select(id_name, pl.col(list(targets)).cast(pl.Float64)).unpivot(
            index=id_name, on=list(targets), variable_name=_TARGET, value_name=_ERROR_SCALE
        )
        return frame, [id_name, _TARGET]
    if isinstance(scale, int | float | np.number) and not isinstance(scale, bool):
        frame = pl.DataFrame({_TARGET: list(targets), _ERROR_SCALE: [float(scale)] * len(targets)})
        return frame, [_TARGET]
    raise DataValidationError(
        "scale must be a number, a dict {target: number} or a polars DataFrame with the id "
        f"column and one column per target; got {type(scale).__name__}."
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

    Forecast and actual rows are matched on (id, time). Forecast rows without an actual value
    are left out (with a warning when some, an error when all).

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
        The history each series was forecast from (id, time, targets), for MASE's scale.
    m : int, default 1
        Seasonal period of MASE's scale (M4: 24 for hourly, 1 for weekly and daily data).
    metrics : sequence of str, optional
        Names from :data:`METRICS`; default all, MASE only when ``insample`` is given.
    scale : float, dict or polars.DataFrame, optional
        Divisor of the errors of MAE, MSE and RMSE, to report them on another scale, e.g. the
        training standard deviation of each target for the ETT protocol's z-scale MSE / MAE: a
        number, ``{target: number}``, or a frame with the id column and one column per target
        (one divisor per series). The relative metrics (MAPE, sMAPE, MASE) do not use it.
    by : sequence of str, default ()
        Extra key columns of ``forecast`` to group by as well (e.g. ``"model"``, ``"fold"``);
        ``actual`` is still matched on (id, time).

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
    targets = list(_as_tuple(target))
    if not targets:
        raise DataValidationError("target must name at least one column.")
    m = _check_m(m)
    names = _check_metrics(metrics, insample is not None)
    forecast = _collect(forecast, "forecast")
    actual = _collect(actual, "actual")
    by = list(_as_tuple(by))
    id_name = id_col if id_col is not None else SERIES_ID
    if _TARGET in (id_col, time_col, *by):
        raise DataValidationError(
            f"'{_TARGET}' is the name of an output column; rename that key column."
        )
    keys = [c for c in (id_col, time_col) if c is not None]
    _require_columns(forecast, [*by, *keys, *targets], "forecast")
    _require_columns(actual, [*keys, *targets], "actual")
    if id_col is None:
        forecast = forecast.with_columns(pl.lit(0, pl.UInt8).alias(SERIES_ID))
        actual = actual.with_columns(pl.lit(0, pl.UInt8).alias(SERIES_ID))
    joined = forecast.select(*by, id_name, time_col, *targets).join(
        actual.select(id_name, time_col, *[pl.col(t).alias(f"{t}{_ACTUAL}") for t in targets]),
        on=[id_name, time_col],
        how="left",
        maintain_order="left",
    )
    matched = joined.select(
        pl.any_horizontal([pl.col(f"{t}{_ACTUAL}").is_not_null() for t in targets])
    ).to_series()
    if not matched.any():
        raise DataValidationError(
            f"No forecast row has an actual value: none of the {forecast.height} forecast "
            f"(id, time) pairs is in the actual frame. Pass the frame that holds the future "
            "values, with the same id and time columns."
        )
    if not matched.all():
        warnings.warn(
            f"{int((~matched).sum())} of {forecast.height} forecast rows have no actual value "
            "and are not scored.",
            ForecasterWarning,
            stacklevel=2,
        )
    group = [*by, id_name, _TARGET]
    points = pl.concat(
        [
            joined.select(
                *by,
                id_name,
                pl.lit(t).alias(_TARGET),
                pl.col(t).cast(pl.Float64).alias(_FORECAST),
                pl.col(f"{t}{_ACTUAL}").cast(pl.Float64).alias(_ACTUAL),
            )
            for t in targets
        ]
    )
    if "mase" in names:
        ins = _collect(insample, "insample")
        if id_col is None:
            ins = ins.with_columns(pl.lit(0, pl.UInt8).alias(SERIES_ID))
        scales = _mase_scales(ins, id_name, time_col, targets, m)
        points = points.join(scales, on=[id_name, _TARGET], how="left", maintain_order="left")
        points = points.with_columns(pl.col(_MASE_SCALE).fill_null(float("nan")))
    if scale is not None:
        divisors, on = _error_scales(scale, id_name, targets, id_col is not None)
        if id_col is not None and id_name in on:
            divisors = divisors.with_columns(pl.col(id_name).cast(points.schema[id_name]))
        points = points.join(divisors, on=on, how="left", maintain_order="left")
    out = _summarize(points, group, names)
    return out.drop(SERIES_ID) if id_col is None else out


def aggregate(scores: pl.DataFrame, *, by: Sequence[str] | str | None = None) -> pl.DataFrame:
    """Pool per-series scores (from :func:`evaluate`) over the whole set or per group.

    Each metric becomes the metric of all points together: MAE, MSE, MAPE, sMAPE and MASE are
    averages weighted by ``n``, RMSE the root of the pooled MSE. The rows are grouped by
    ``target`` (when present) and ``by``.

    Parameters
    ----------
    scores : polars.DataFrame
        With the column ``n`` and metric columns.
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
    keys = list(_as_tuple(by))
    if _TARGET in scores.columns and _TARGET not in keys:
        keys.append(_TARGET)
    _require_columns(scores, ["n", *keys], "scores")
    present = [m for m in METRICS if m in scores.columns]
    weight = pl.col("n").cast(pl.Float64)
    total = weight.sum()
    exprs = [pl.col("n").sum().cast(pl.Int64).alias("n")]
    for name in present:
        if name in _MEAN_METRICS:
            exprs.append(((pl.col(name) * weight).sum() / total).alias(name))
        else:  # rmse
            exprs.append(((pl.col(name) ** 2 * weight).sum() / total).sqrt().alias(name))
    if keys:
        return scores.group_by(keys, maintain_order=True).agg(exprs)
    return scores.select(exprs)


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
        Keys, ``smape``, ``mase``, ``smape_naive2``, ``mase_naive2`` and ``owa``.

    Examples
    --------
    >>> import polars as pl
    >>> model = pl.DataFrame({"id": ["a", "b"], "n": [2, 2], "smape": [8.0, 10.0],
    ...                       "mase": [1.0, 1.0]})
    >>> base = model.with_columns(pl.col("smape") * 2, pl.col("mase") * 2)
    >>> owa(model, base)["owa"].to_list()
    [0.5]
    """
    for frame, name in ((scores, "scores"), (naive2_scores, "naive2_scores")):
        _require_columns(frame, ["n", "smape", "mase"], name)
    others = [m for m in METRICS if m not in ("smape", "mase")]
    a = aggregate(scores.select(pl.exclude(others)), by=by)
    b = aggregate(naive2_scores.select(pl.exclude(others)), by=by)
    keys = [c for c in a.columns if c not in ("n", "smape", "mase")]
    b = b.select(*keys, pl.col("smape").alias("smape_naive2"), pl.col("mase").alias("mase_naive2"))
    out = (
        a.drop("n").join(b, on=keys, how="left", maintain_order="left")
        if keys
        else pl.concat([a.drop("n"), b], how="horizontal")
    )
    return out.with_columns(
        (
            0.5
            * (pl.col("smape") / pl.col("smape_naive2") + pl.col("mase") / pl.col("mase_naive2"))
        ).alias("owa")
    )


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
        id_name = id_col if id_col is not None else SERIES_ID
        # validate_frame returns Float32 values: take the original values (Float64) back by
        # (id, time), keeping filled ones (missing != "error") where the original has none.
        original = _collect(frame, "frame")
        if id_col is None:
            original = original.with_columns(pl.lit(0, pl.UInt8).alias(SERIES_ID))
        original = original.select(
            id_name, time_col, *[pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets]
        )
        exact = data.select(id_name, time_col).join(
            original, on=[id_name, time_col], how="left", maintain_order="left"
        )
        values = exact.select(
            pl.coalesce(pl.col(t), data[t].cast(pl.Float64)) for t in targets
        ).to_numpy()
        runs = data[id_name].rle().struct.unnest()
        self.lengths = runs["len"].to_numpy().astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.keys = pl.DataFrame(runs["value"].alias(id_name))
        self.values = np.ascontiguousarray(values.reshape(len(data), len(targets)))
        self.last_time = data[time_col].gather(self.offsets[1:] - 1)
        self.targets = targets
        self.id_col = id_col
        self.id_name = id_name
        self.time_col = time_col

    def forecast_frame(self, forecast: np.ndarray) -> pl.DataFrame:
        """``forecast`` of shape (n_series, horizon, n_targets) as a long frame."""
        n_series, horizon, _ = forecast.shape
        grid = self.keys.with_columns(
            self.last_time.alias("_last"), pl.int_ranges(1, horizon + 1).alias("_k")
        ).explode("_k")
        times = self.freq.offset(pl.col("_last"), pl.col("_k")).cast(self.last_time.dtype)
        out = grid.select(pl.col(self.id_name), times.alias(self.time_col))
        flat = forecast.reshape(n_series * horizon, -1)
        out = out.with_columns(
            pl.Series(name, flat[:, j], dtype=pl.Float64) for j, name in enumerate(self.targets)
        )
        return out if self.id_col is not None else out.drop(SERIES_ID)


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
        (:func:`~forecaster.data.validate_frame`).
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
    x = np.asarray(values, dtype=np.float64).ravel()
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
    ratio = x[centre] / trend
    cell = series[centre] * m + local[centre] % m
    sums = np.bincount(cell, weights=ratio, minlength=n_series * m).reshape(n_series, m)
    counts = np.bincount(cell, minlength=n_series * m).reshape(n_series, m)
    with np.errstate(divide="ignore", invalid="ignore"):
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
    last = _last_values(series)
    forecast = np.repeat(last[:, None, :], horizon, axis=1)
    if m > 1:
        for j in range(len(series.targets)):
            x = series.values[:, j]
            seasonal = np.flatnonzero(_seasonal_flags(x, series.offsets, m))
            if seasonal.size == 0:
                continue
            sub_lengths = series.lengths[seasonal]
            sub_offsets = np.concatenate([[0], np.cumsum(sub_lengths)])
            rows = np.repeat(series.offsets[seasonal] - sub_offsets[:-1], sub_lengths)
            rows += np.arange(sub_offsets[-1])
            figure = _seasonal_indices(x[rows], sub_offsets, m)  # (n_seasonal, m)
            n = sub_lengths[:, None]
            pos_last = (n[:, 0] - 1) % m
            adjusted = last[seasonal, j] / figure[np.arange(len(seasonal)), pos_last]
            steps = (n + np.arange(horizon)[None, :]) % m
            forecast[seasonal, :, j] = adjusted[:, None] * np.take_along_axis(figure, steps, 1)
    return series.forecast_frame(forecast)

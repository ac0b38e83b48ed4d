"""The pyfunc's ``predict`` (:func:`pyfunc_predict`): a request in the long format of the
training frame, read as native ``predict`` reads its frame, and the forecast it answers.

What a trip through pandas or JSON changed is restored first (dates that came back as midnight
datetimes, ISO text; text, Categorical or Enum columns as the training dtype of each); a
pandas frame whose index holds data is refused as native ``predict``
refuses it. A model with future covariates takes their values in the rows after each series'
last observed target, and with a cutoff in every row after it too (the request's history after
the cutoff, as native ``predict(frame, cutoff=[...])`` reads its frame). A forecast that starts
at or before the request's as-of for some series (a series whose data ends early) says so in
its ``origin`` and ``stale_steps`` columns, as a pipeline's ``forecasts.parquet`` does: a
client of ``mlflow models serve`` sees no warning. An :class:`~forecaster.RNNRegressor` takes
its windows ``X`` and answers its point predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster.data import collect_frame, to_time_point
from forecaster.data.dtypes import restore_dtypes
from forecaster.data.frames import column_tuple, from_pandas, id_cast, is_pandas_frame
from forecaster.data.steps import steps_behind
from forecaster.data.times import time_value_text
from forecaster.estimators.origins import is_cutoff_list
from forecaster.exceptions import DataValidationError
from forecaster.tracking.config import describe_kind, short_error
from forecaster.tracking.fingerprint import target_names

__all__ = ["INTERVAL_PARAMS", "pyfunc_predict"]


def _pyfunc_frame(model_input: Any) -> pl.DataFrame:
    """A Polars frame from what the pyfunc was given (pandas or polars frame, dict of
    columns, list of rows), or our error. A pandas frame is read by
    :func:`~forecaster.data.frames.from_pandas`, as native ``predict`` reads it: a frame whose
    index holds data (``df.set_index("time")``) is refused, saying to call ``reset_index()``."""
    if isinstance(model_input, pl.LazyFrame):
        return collect_frame(model_input, what="pyfunc input")
    if isinstance(model_input, pl.DataFrame):
        return model_input
    if is_pandas_frame(model_input):
        return from_pandas(model_input, what="pyfunc input")
    if not isinstance(model_input, Mapping | list):
        raise DataValidationError(
            f"The pyfunc model of a forecaster takes a pandas or polars DataFrame (or a dict of "
            f"columns) in the long format of the training frame, got {describe_kind(model_input)}."
        )
    try:
        return pl.DataFrame(model_input)
    except Exception as exc:  # polars cannot represent a column
        raise DataValidationError(
            f"Cannot read the pyfunc input as a frame: {short_error(exc)}. Pass a frame in the "
            "long format of the training frame, with one type per column."
        ) from None


INTERVAL_PARAMS = ("level", "quantiles")
"""The params of the intervals of native ``predict`` (the pyfunc of an
:class:`~forecaster.RNNRegressor` declares them too, so that they reach it and are refused)."""


def _given(value: Any) -> bool:
    """Whether a param holds a value: MLflow passes a declared list param that a request
    left out as its default ``[]``."""
    return value is not None and not (isinstance(value, list | tuple) and len(value) == 0)


def pyfunc_predict(estimator: Any, model_input: Any, params: Any = None) -> Any:
    """The pyfunc's ``predict``: what native ``predict`` accepts, the pyfunc accepts (the
    model is logged without an enforced input schema); what it refuses is our error. A
    forecast that starts at or before the request's as-of for some series says so in its
    ``origin`` and ``stale_steps`` columns (:func:`_stale_origins`)."""
    params = dict(params or {}) if isinstance(params, Mapping | type(None)) else params
    if not hasattr(estimator, "schema_"):  # RNNRegressor: arrays in, arrays out
        return _predict_windows(estimator, model_input, params)
    allowed = {"cutoff", *INTERVAL_PARAMS}
    if not isinstance(params, dict) or set(params) - allowed:
        raise DataValidationError(
            f"The pyfunc model takes the params {sorted(allowed)}, got {params!r}."
        )
    frame = restore_dtypes(_pyfunc_frame(model_input), estimator.schema_, estimator.id_col)
    future = None
    targets = target_names(estimator)
    intervals = {k: params[k] for k in INTERVAL_PARAMS if _given(params.get(k))}
    cutoff = params.get("cutoff")
    listed = is_cutoff_list(cutoff)  # (Python callers only) read as predict reads its frame
    if estimator.future_covariates and not listed and set(targets) <= set(frame.columns):
        is_future = _future_rows(frame, estimator, targets)
        keys = [c for c in (estimator.id_col, estimator.time_col) if c]
        after = _after_cutoff(frame, estimator.time_col, cutoff)
        read = is_future if after is None else is_future | after
        future = frame.filter(read).select(*keys, *column_tuple(estimator.future_covariates))
        frame = frame.filter(~is_future)
        if cutoff is not None and after is None:  # not a time: predict refuses it
            future = None
    if future is not None and future.height == 0:
        raise DataValidationError(  # (predict's message would speak of a future frame)
            f"The request has no future rows: this model forecasts with the future covariates "
            f"{list(column_tuple(estimator.future_covariates))}, which a request carries after "
            f"each series' last observed {'/'.join(targets)}: {estimator.horizon} rows with "
            "their values and every target and past covariate null"
            + (
                ". Add them, or pass params={'cutoff': ...} to forecast from inside the data "
                "(the values are then read from the rows after the cutoff)."
                if cutoff is None
                else f", or the rows after cutoff={time_value_text(cutoff)}, which it has none "
                "of. Add them, or pass an earlier cutoff."
            )
        )
    forecast = estimator.predict(frame, future=future, cutoff=cutoff, **intervals)
    return _stale_origins(forecast, frame, estimator, cutoff).to_pandas()


def _predict_windows(estimator: Any, model_input: Any, params: Any) -> np.ndarray:
    """The pyfunc's ``predict`` of an :class:`~forecaster.RNNRegressor`: the point
    predictions of the windows ``X``; params are refused (its intervals, ``predict_interval``,
    are one ``(lo, hi)`` pair per call, which the array it returns cannot carry)."""
    asked = (
        params if not isinstance(params, dict) else {k: v for k, v in params.items() if _given(v)}
    )
    if asked:
        calibrated = "conformal_" in estimator.__dict__
        raise DataValidationError(
            f"The pyfunc model of an RNNRegressor returns the point predictions of X only and "
            f"takes no params, got {asked!r}. For a prediction interval call predict_interval "
            "on the estimator itself: mlflow.pyfunc.load_model(uri).get_raw_model()"
            ".predict_interval(X, level=80)"
            + ("" if calibrated else " (after .calibrate(X_cal, y_cal): it is not calibrated)")
            + ", or drop the params."
        )
    if hasattr(model_input, "to_numpy"):
        model_input = model_input.to_numpy()
    try:
        windows = np.asarray(model_input, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"The pyfunc model of an RNNRegressor takes numeric windows X, got "
            f"{describe_kind(model_input)} ({exc})."
        ) from None
    return estimator.predict(windows)


def _stale_origins(
    forecast: pl.DataFrame, history: pl.DataFrame, estimator: Any, cutoff: Any = None
) -> pl.DataFrame:
    """``forecast`` (of the request ``history``) as it is when every series is forecast from
    the as-of, else with an ``origin`` column after the time column (each series' last input
    time) and a ``stale_steps`` column last (the steps of the model's frequency from it to the
    as-of, 0 for a series that reaches it), as a pipeline's ``forecasts.parquet`` has them.

    The as-of is ``cutoff`` when given, else the request's last time; a series is stale when
    the step after its last input is at or before it (``forecaster.data.steps.steps_behind``,
    the rule of native ``predict``'s warning, which a client of ``mlflow models serve`` never
    sees). A
    forecast with an ``origin`` column already (a list of cutoffs) is returned as it is.
    """
    time_col, id_col = estimator.time_col, estimator.id_col
    if forecast.height == 0 or "origin" in forecast.columns:
        return forecast
    dtype = forecast.schema[time_col]
    inputs = history.select(pl.col(time_col).cast(dtype).alias("origin"))
    if id_col is not None:  # as the forecast's ids (a Categorical id comes back as text)
        ids = id_cast(id_col, history.schema[id_col], forecast.schema[id_col])
        inputs = inputs.with_columns(history.select(ids))
    as_of = inputs["origin"].max() if cutoff is None else to_time_point(cutoff, dtype)
    inputs = inputs.filter(pl.col("origin") <= pl.lit(as_of, dtype))
    keys = [id_col] if id_col is not None else []
    freq = estimator.freq_
    if inputs.height == 0:
        return forecast
    if keys:  # each series' inputs in a row, as the forecast's series (in their order)
        inputs = inputs.sort([*keys, "origin"])
        lengths = inputs.group_by(keys, maintain_order=True).len()["len"].to_numpy()
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ends = inputs.gather(offsets[1:] - 1).with_columns(
            pl.Series("stale_steps", steps_behind(inputs["origin"], offsets, freq, as_of))
        )
        # a series dropped as too short has nothing to mark
        ends = (
            forecast.select(keys)
            .unique(maintain_order=True)
            .join(ends, on=keys, how="left", nulls_equal=True)
        )
    else:
        inputs = inputs.sort("origin")
        behind = steps_behind(inputs["origin"], np.array([0, inputs.height]), freq, as_of)
        ends = inputs.tail(1).with_columns(pl.Series("stale_steps", behind))
    if not (ends["stale_steps"].fill_null(0) > 0).any():
        return forecast
    ends = ends.with_columns(pl.col("stale_steps").fill_null(0))
    joined = (
        forecast.join(ends, on=keys, how="left", maintain_order="left")
        if keys
        else forecast.join(ends, how="cross")
    )
    columns = forecast.columns
    at = columns.index(time_col) + 1
    return joined.select(*columns[:at], "origin", *columns[at:], "stale_steps")


def _after_cutoff(frame: pl.DataFrame, time_col: str, cutoff: Any) -> pl.Expr | None:
    """The rows of a pyfunc request after a one-point ``cutoff`` (a list goes to ``predict``
    as it is), whose future-covariate values a forecast from the cutoff reads. None without a
    cutoff, and for one that does not convert to the time column's type (left for
    ``predict``, which refuses it)."""
    if cutoff is None or time_col not in frame.columns:
        return None
    dtype = frame.schema[time_col]
    try:
        point = to_time_point(cutoff, dtype, name="cutoff")
    except DataValidationError:
        return None
    return (pl.col(time_col) > pl.lit(point, dtype=dtype)).fill_null(False)


def _future_rows(frame: pl.DataFrame, estimator: Any, targets: list[str]) -> pl.Expr:
    """The rows of a pyfunc request that carry future-covariate values: after each series'
    last row with an observed target, with every target and past covariate null (a history
    row whose target is null, which ``missing=`` may fill, keeps its place in the history)."""
    past = [c for c in column_tuple(estimator.covariates) if c in frame.columns]
    unknown = pl.all_horizontal(pl.col([*targets, *past]).is_null())
    observed = pl.any_horizontal(pl.col(targets).is_not_null())
    last = pl.when(observed).then(pl.col(estimator.time_col)).max()
    if estimator.id_col is not None:
        last = last.over(estimator.id_col)
    after = (pl.col(estimator.time_col) > last).fill_null(False)
    return unknown & after

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

import ast
import contextlib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster.data import collect_frame, to_time_point
from forecaster.data.frames import column_tuple, from_pandas, id_cast, is_pandas_frame, text_like
from forecaster.data.steps import steps_behind
from forecaster.estimators.origins import is_cutoff_list
from forecaster.exceptions import DataValidationError
from forecaster.tracking.config import describe_kind, short_error
from forecaster.tracking.fingerprint import target_names

__all__ = ["INTERVAL_PARAMS", "parse_dtype", "pyfunc_predict"]


def parse_dtype(name: str) -> Any:
    """The Polars dtype written as ``str(dtype)`` for the common cases (an Enum with its
    categories included), else None.

    Examples
    --------
    >>> parse_dtype(str(pl.Enum(["north", "it's"])))
    Enum(categories=['north', "it's"])
    """
    if re.fullmatch(r"[A-Za-z0-9]+", name):
        dtype = getattr(pl, name, None)
        is_dtype = isinstance(dtype, type) and issubclass(dtype, pl.DataType)
        return dtype if is_dtype else None
    match = re.fullmatch(r"Datetime\(time_unit='(\w+)', time_zone=(None|'([^']*)')\)", name)
    if match:
        time_unit: Any = match.group(1)
        return pl.Datetime(time_unit, match.group(3))
    match = re.fullmatch(r"Enum\(categories=(\[.*\])\)", name, flags=re.DOTALL)
    if match:  # the categories as Python writes a list of str
        with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
            categories = ast.literal_eval(match.group(1))
            if isinstance(categories, list) and all(isinstance(c, str) for c in categories):
                return pl.Enum(categories)
    return None


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


def _restore_dtypes(
    frame: pl.DataFrame, schema: Mapping[str, str], id_col: str | None = None
) -> pl.DataFrame:
    """The training dtypes where a round trip through pandas or JSON changed them without
    changing the values: a Date column that came back as midnight datetimes, a datetime of
    another time unit (same time zone), ISO text for a Date or Datetime column; a text,
    Categorical or Enum column (a static covariate) that came back as another of these (JSON
    brings text; pandas turns an Enum into a Categorical): :func:`_as_text_dtype`; not the id
    column ``id_col``, whose ids ``predict`` matches by their text whatever the dtype (a new
    series may have an id that a trained Enum lacks). Anything else is left for ``predict``,
    which refuses what does not fit, naming the column."""
    casts = []
    for name, expected in schema.items():
        if name not in frame.columns or str(frame.schema[name]) == expected:
            continue
        dtype, found = parse_dtype(expected), frame.schema[name]
        column = frame[name]
        if dtype is not None and text_like(dtype) and text_like(found) and name != id_col:
            casts.append(_as_text_dtype(column, dtype))
            continue
        if dtype is None or not dtype.is_temporal():
            continue
        if found == pl.String:
            with contextlib.suppress(Exception):
                casts.append(_parse_time_text(column, dtype).alias(name))
        elif isinstance(found, pl.Datetime) and dtype == pl.Date:
            if found.time_zone is None and (column.dt.truncate("1d") == column).all():
                casts.append(column.cast(pl.Date))
        elif (
            isinstance(found, pl.Datetime)
            and isinstance(dtype, pl.Datetime)
            and found.time_zone == dtype.time_zone
        ):
            casts.append(column.cast(dtype))
    return frame.with_columns(casts) if casts else frame


def _as_text_dtype(column: pl.Series, dtype: Any) -> pl.Series:
    """A text, Categorical or Enum ``column`` as the training ``dtype`` (one of these). Its
    values are kept: a category unseen in ``fit`` reaches ``predict``, which gives it the
    unknown category (code 0) with a warning, as for a native call. A value that is none of
    the categories of a trained Enum cannot be held by that dtype (nor be passed to native
    ``predict``): refused, naming the values, where a cast would make it null (a static
    covariate without a value) or fail."""
    if isinstance(dtype, pl.Enum):
        text = column.cast(pl.String)
        categories = pl.Series(dtype.categories.to_list(), dtype=pl.String)
        outside = text.drop_nulls().unique(maintain_order=True)
        outside = outside.filter(~outside.is_in(categories.implode()))
        if outside.len():
            raise DataValidationError(
                f"Column {column.name!r} holds values that are not categories of its training "
                f"dtype {dtype} (the model's Enum): {outside.head(5).to_list()}. An Enum "
                "column holds only its categories, so native predict cannot read them either. "
                "Send one of the categories (a category the model did not see in fit gets the "
                "unknown category, with a warning), drop those series, or refit with an Enum "
                "that includes them."
            )
        return text.cast(dtype)
    return column.cast(dtype)


def _parse_time_text(column: pl.Series, dtype: Any) -> pl.Series:
    """ISO 8601 text as ``dtype``: a Date column may come as dates or as midnight datetimes
    (JSON serving payloads write pandas' datetime64 dates as ``2018-12-31T00:00:00``); raises
    when a value is not ISO text (``31/12/2018`` is left for ``predict`` to refuse, not read
    in a guessed day/month order), does not parse, holds a time of day for a Date, or has a
    UTC offset where the trained times have no zone (or none where they have one): shifted
    to UTC, the times would be read an offset off, as native ``predict`` refuses them."""
    if not column.str.contains(r"^\d{4}-\d{2}-\d{2}(?:$|[T ])").all():
        raise ValueError(f"{column.name}: not ISO 8601 text (an ambiguous day/month order?)")
    if dtype != pl.Date:
        moments = column.str.to_datetime(strict=True)
        zone, wanted = getattr(moments.dtype, "time_zone", None), dtype.time_zone
        if (zone is None) != (wanted is None):  # an offset on zone-less times, or none on
            raise ValueError(f"{column.name}: time zone {zone}, trained on {wanted}")  # zoned
        if zone is not None:
            moments = moments.dt.convert_time_zone(wanted)
        return moments.cast(dtype)
    with contextlib.suppress(Exception):
        return column.str.to_date(strict=True)
    moments = column.str.to_datetime(strict=True)
    if getattr(moments.dtype, "time_zone", None) or (moments.dt.truncate("1d") != moments).any():
        raise ValueError(f"{column.name}: not midnight datetimes")
    return moments.cast(pl.Date)


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
    frame = _restore_dtypes(_pyfunc_frame(model_input), estimator.schema_, estimator.id_col)
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
                else f", or the rows after cutoff={cutoff!r}, which it has none of. Add them, "
                "or pass an earlier cutoff."
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

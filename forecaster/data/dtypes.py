"""The training dtypes of a frame that came through pandas (or JSON): what such a trip
changed without changing the values is restored (:func:`restore_dtypes`), anything else is
left for the schema check, which refuses it with advice for the kind of frame given
(:func:`trained_frame`).

pandas has no date type: a polars ``Date`` column comes back from ``to_pandas()`` as midnight
``datetime64`` values, which are dates again here; a datetime with a time of day stays a
datetime and is refused for a ``Date`` column, never truncated.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster._polars import collect
from forecaster.data.frames import (
    check_schema,
    frame_schema,
    from_pandas,
    is_pandas_frame,
    text_like,
)
from forecaster.data.times import check_time_dtype
from forecaster.exceptions import DataValidationError

__all__ = [
    "align_time",
    "as_given_kind",
    "as_given_time",
    "given_time_dtype",
    "pandas_categories",
    "pandas_time_dtype",
    "parse_dtype",
    "restore_dtypes",
    "trained_frame",
    "training_frame",
]


def parse_dtype(name: str) -> Any:
    """The Polars dtype written as ``str(dtype)`` for the common cases (an Enum with its
    categories included), else None.

    Examples
    --------
    >>> parse_dtype("Date"), parse_dtype("Datetime(time_unit='us', time_zone='UTC')")
    (Date, Datetime(time_unit='us', time_zone='UTC'))
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


def restore_dtypes(
    frame: pl.DataFrame, schema: Mapping[str, str], id_col: str | None = None
) -> pl.DataFrame:
    """``frame`` with the training dtypes of ``schema`` (name to ``str(dtype)``, a fitted
    model's ``schema_``) where a round trip through pandas or JSON changed them without
    changing the values: a Date column that came back as midnight datetimes (no time zone),
    a datetime of another time unit in the same time zone (when no value is rounded), ISO
    text for a Date or Datetime column; a text, Categorical or Enum column (a static
    covariate) that came back as another of these (JSON brings text; pandas turns an Enum
    into a Categorical): :func:`_as_text_dtype`; not the id column ``id_col``, whose ids
    ``predict`` matches by their text whatever the dtype (a new series may have an id that a
    trained Enum lacks). Anything else is left as it is, for the schema check to refuse,
    naming the column.

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"t": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)]})
    >>> restore_dtypes(frame, {"t": "Date"})["t"].dtype
    Date
    >>> later = pl.DataFrame({"t": [dt.datetime(2024, 1, 1, 9, 30)]})
    >>> restore_dtypes(later, {"t": "Date"})["t"].dtype  # a time of day: not a date
    Datetime(time_unit='us', time_zone=None)
    """
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
        elif isinstance(found, pl.Datetime) and isinstance(dtype, pl.Datetime):
            same = _same_instants(column, dtype)
            if same is not None and same.dtype == dtype:
                casts.append(same)
    return frame.with_columns(casts) if casts else frame


def _same_instants(column: pl.Series, dtype: pl.Datetime) -> pl.Series | None:
    """The datetimes of ``column`` as ``dtype`` (another time unit, or a time zone with the
    same local times: ``"Etc/UTC"`` for ``"UTC"``) where that holds the same instants
    and local times; ``column`` cast to ``dtype``'s zone only where only the unit's
    precision is lost (a value rounded to the coarser unit); None where the zones differ
    in meaning (none and one, or local times that differ at its times or on any day of the
    years they span: ``"UTC"`` is not ``"Europe/London"``, though January's times agree) or a
    value is out of the unit's range."""
    zone = getattr(column.dtype, "time_zone", None)
    if (zone is None) != (dtype.time_zone is None):
        return None
    if zone != dtype.time_zone:
        try:
            if not all(_same_local(c, dtype.time_zone) for c in (column, _year_days(column))):
                return None
        except pl.exceptions.PolarsError:  # not a zone polars knows
            return None
        column = column.dt.convert_time_zone(dtype.time_zone or "UTC")
    try:
        cast = column.cast(dtype, strict=True)
    except pl.exceptions.PolarsError:  # out of the unit's range
        return None
    return cast if cast.cast(column.dtype).eq_missing(column).all() else column


def _same_local(column: pl.Series, zone: Any) -> bool:
    """Whether the zoned datetimes ``column`` have the same local times in ``zone``."""
    local = column.dt.replace_time_zone(None)
    return column.dt.convert_time_zone(zone).dt.replace_time_zone(None).eq_missing(local).all()


def _year_days(column: pl.Series) -> pl.Series:
    """Noon (UTC) of every day of the years that the zoned datetimes ``column`` span, in its
    zone (milliseconds: any year a unit holds): where two zones' clocks may part."""
    years = column.dt.year().drop_nulls().to_numpy()
    zone = column.dtype.time_zone  # type: ignore[attr-defined]
    if not len(years):
        return pl.Series(dtype=pl.Datetime("ms", zone))
    low, high = max(int(years.min()), dt.MINYEAR), min(int(years.max()), dt.MAXYEAR)
    first, last = dt.datetime(low, 1, 1, 12), dt.datetime(high, 12, 31, 12)
    days = pl.datetime_range(first, last, "1d", time_unit="ms", time_zone="UTC", eager=True)
    return days.dt.convert_time_zone(zone)


def align_time(frame: Any, schema: Mapping[str, str], time_col: str | None) -> Any:
    """``frame`` (a polars DataFrame or LazyFrame) with its datetime column ``time_col`` as
    the training dtype of ``schema`` where it holds the same instants in another time unit
    (``Datetime("ns")`` from pandas for a model fitted on ``Datetime("us")``, and back), or
    in a time zone with the same local times (:func:`_same_instants`); refused, naming a
    value, where the unit would round it. Anything else is returned as it is, for the
    schema check (a Date for a Datetime, another zone). A LazyFrame's time column is read
    to check this only where its dtype differs.

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"t": [dt.datetime(2024, 1, 1)]}).cast({"t": pl.Datetime("ns")})
    >>> align_time(frame, {"t": "Datetime(time_unit='us', time_zone=None)"}, "t")["t"].dtype
    Datetime(time_unit='us', time_zone=None)
    """
    if (
        time_col is None
        or time_col not in schema
        or not isinstance(frame, pl.DataFrame | pl.LazyFrame)
    ):
        return frame
    found, dtype = frame_schema(frame).get(time_col), parse_dtype(schema[time_col])
    if not isinstance(found, pl.Datetime) or not isinstance(dtype, pl.Datetime) or found == dtype:
        return frame
    lazy = isinstance(frame, pl.LazyFrame)
    if isinstance(frame, pl.LazyFrame):  # its time column only, read once more
        column = collect(frame.select(time_col), streaming=True).to_series()
    else:
        column = frame[time_col]
    same = _same_instants(column, dtype)
    if same is None:
        if found.time_zone == dtype.time_zone:  # only the unit differs: out of its range
            _refuse_out_of_range(column, dtype, time_col)
        return frame
    if same.dtype != dtype:
        unit = same.dt.cast_time_unit(dtype.time_unit).dt.cast_time_unit(found.time_unit)
        rounded = same.filter(unit.ne_missing(same))
        example = rounded.head(1).cast(pl.String).item()  # all its digits
        raise DataValidationError(
            f"The time column {time_col!r} is {found} and the model was trained on {dtype}, "
            f"which would round {rounded.len()} of its times (e.g. {example}) to the "
            f"{_UNIT_NAMES[dtype.time_unit]}: they are not the times the model knows. Round "
            f"them if that is what they mean (pl.col({time_col!r}).dt.truncate("
            f"'1{dtype.time_unit}').dt.cast_time_unit({dtype.time_unit!r})), or "
            "refit the model on these times."
        )
    if not lazy:
        return frame.with_columns(same)
    zone = pl.col(time_col).dt.convert_time_zone(dtype.time_zone) if dtype.time_zone else None
    moved = pl.col(time_col) if zone is None else zone
    return frame.with_columns(moved.dt.cast_time_unit(dtype.time_unit))


def given_time_dtype(value: Any, time_col: str | None) -> Any:
    """The dtype of the time column ``time_col`` of ``value`` as given, before
    :func:`align_time` casts it to the training one (a pandas frame's as polars reads it:
    ``datetime64[ns]`` is ``Datetime("ns")``); None where it has none (or is no frame). What
    :func:`as_given_time` casts a result's times back to.

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [1]}).cast({"t": pl.Datetime("ns")})
    >>> given_time_dtype(frame, "t")
    Datetime(time_unit='ns', time_zone=None)
    """
    if time_col is None:
        return None
    if is_pandas_frame(value):
        if time_col not in value.columns:
            return None
        with contextlib.suppress(Exception):  # a column polars cannot read: refused later
            return pl.from_pandas(value[[time_col]].head(0)).schema[time_col]
        return None
    if isinstance(value, pl.DataFrame | pl.LazyFrame):
        with contextlib.suppress(Exception):  # a source that is gone: refused later
            return frame_schema(value).get(time_col)
    return None


def as_given_time(result: pl.DataFrame, given: Any, trained: str | None) -> pl.DataFrame:
    """``result`` (forecasts, scores keyed by time) with its columns of the ``trained`` time
    dtype (``str(dtype)`` of the model's time column) in the ``given`` one of the frame it
    was computed from (:func:`given_time_dtype`), where :func:`align_time` cast that frame's
    times (another unit, or a zone with the same local times): the same instants, so that
    the result joins back on the frame's time column. Anything else is returned as it is.

    Examples
    --------
    >>> import datetime as dt
    >>> out = pl.DataFrame({"t": [dt.datetime(2024, 1, 1)]})  # microseconds
    >>> as_given_time(out, pl.Datetime("ns"), str(out.schema["t"])).schema["t"]
    Datetime(time_unit='ns', time_zone=None)
    """
    dtype = None if trained is None else parse_dtype(trained)
    if not (isinstance(given, pl.Datetime) and isinstance(dtype, pl.Datetime)) or given == dtype:
        return result
    if (given.time_zone is None) != (dtype.time_zone is None):  # not cast by align_time
        return result
    moved = []
    for name, found in result.schema.items():
        if found != dtype:
            continue
        column = pl.col(name)
        if given.time_zone is not None and given.time_zone != dtype.time_zone:
            column = column.dt.convert_time_zone(given.time_zone)
        moved.append(column.dt.cast_time_unit(given.time_unit))
    return result.with_columns(moved) if moved else result


def pandas_time_dtype(value: Any, time_col: str | None) -> Any:
    """The pandas dtype of the datetime column ``time_col`` of the pandas frame ``value`` as
    given (``datetime64[s]``, ``datetime64[ns, UTC]``, ...): what :func:`as_given_kind`
    gives a result's datetimes back in; None for anything else.

    Examples
    --------
    >>> import pandas as pd
    >>> seconds = pd.to_datetime(["2024-01-01"]).as_unit("s")
    >>> pandas_time_dtype(pd.DataFrame({"t": seconds}), "t")
    dtype('<M8[s]')
    """
    if time_col is None or not is_pandas_frame(value) or time_col not in value.columns:
        return None
    dtype = getattr(value[time_col], "dtype", None)  # a repeated name gives a frame: None
    return dtype if getattr(dtype, "kind", None) == "M" else None


def pandas_categories(value: Any, columns: list[str | None]) -> dict[str, Any]:
    """The pandas ``CategoricalDtype`` (categories and their order) of each of ``columns``
    that the pandas frame ``value`` holds as a Categorical: what :func:`as_given_kind` gives
    them back in. Empty for anything else (``None`` names, a polars frame).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": pd.Categorical([2, 1]), "y": [0.5, 1.5]})
    >>> {name: list(dtype.categories) for name, dtype in pandas_categories(
    ...     frame, ["id", "y", None]).items()}
    {'id': [1, 2]}
    """
    if not is_pandas_frame(value):
        return {}
    found = {}
    for name in columns:
        if name is None or name not in value.columns:
            continue
        dtype = getattr(value[name], "dtype", None)  # a repeated name gives a frame: None
        if getattr(dtype, "name", None) == "category":
            found[name] = dtype
    return found


def as_given_kind(
    result: pl.DataFrame,
    pandas: bool,
    time_dtype: Any,
    categories: Mapping[str, Any] | None = None,
) -> Any:
    """``result`` as it is, or as a pandas DataFrame for a call given one (``pandas``), with
    its Categorical columns in the ``categories`` they were given in (the given frame's
    :func:`pandas_categories`: a Categorical id of integers, which polars reads as integers,
    stays a Categorical, with its categories and their order), and
    its datetime columns in ``time_dtype`` (the given frame's :func:`pandas_time_dtype`): the
    unit polars cannot hold (``datetime64[s]``, read as milliseconds) and the ``datetime64``
    of a ``Date`` model's dates (``to_pandas()`` gives milliseconds) come back as given, so
    that the result joins back on the frame's time column. A column whose values that unit
    cannot hold (a time finer than a second for ``datetime64[s]``, one after 2262-04-11 for
    ``datetime64[ns]``) keeps the unit polars gave it, as does one of another time-zone kind
    (naive or aware) than the frame's."""
    if not pandas:
        return result
    out = result.to_pandas()
    for name, dtype in (categories or {}).items():
        if name in out.columns and out[name].dtype != dtype:
            moved = out[name].astype(dtype)
            if not (moved.isna() & out[name].notna()).any():  # each value among the categories
                out[name] = moved
    if time_dtype is None:
        return out
    for name in out.columns:
        column = out[name]
        dtype = column.dtype
        if getattr(dtype, "kind", None) != "M" or dtype == time_dtype:
            continue
        if (getattr(dtype, "tz", None) is None) != (getattr(time_dtype, "tz", None) is None):
            continue
        try:
            moved = column.astype(time_dtype)
        except (ValueError, OverflowError):  # out of the unit's range (past 2262 in [ns])
            continue
        if _finer_or_same_unit(time_dtype, dtype) or bool(
            ((moved == column) | column.isna()).all()
        ):
            out[name] = moved  # a coarser unit truncates: moved only when no value is lost
    return out


_UNIT_ORDER = ("s", "ms", "us", "ns")


def _finer_or_same_unit(target: Any, source: Any) -> bool:
    """Whether the pandas datetime dtype ``target`` holds every instant ``source`` can (within
    its range): no value to compare after the cast."""
    units = [getattr(d, "unit", None) or np.datetime_data(d)[0] for d in (target, source)]
    if not all(unit in _UNIT_ORDER for unit in units):
        return False
    return _UNIT_ORDER.index(units[0]) >= _UNIT_ORDER.index(units[1])


_UNIT_NAMES = {"ms": "millisecond", "us": "microsecond", "ns": "nanosecond"}


def _refuse_out_of_range(column: pl.Series, dtype: pl.Datetime, time_col: str) -> None:
    """Refuse the datetimes of ``column`` that the trained ``dtype`` cannot hold (nanoseconds
    end in 2262), naming one: no cast gives the model these times."""
    beyond = column.filter(column.cast(dtype, strict=False).is_null() & column.is_not_null())
    if beyond.is_empty():
        return
    times = f"{beyond.len()} time{'' if beyond.len() == 1 else 's'}"
    raise DataValidationError(
        f"The time column {time_col!r} holds {times} (e.g. "
        f"{beyond.head(1).cast(pl.String).item()}) that the model's time dtype {dtype} cannot "
        "hold (Datetime('ns') holds 1677-09-21 to 2262-04-11), so it cannot forecast from or "
        "at them. Refit the model on these times in a coarser unit "
        f"(pl.col({time_col!r}).dt.cast_time_unit('us'))."
    )


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


def trained_frame(
    value: Any,
    schema: Mapping[str, str],
    id_col: str | None = None,
    time_col: str | None = None,
    *,
    what: str = "frame",
) -> Any:
    """``value`` as a fitted model reads it: a pandas DataFrame converted once by
    :func:`~forecaster.data.frames.from_pandas`, its dtypes restored to the training ones of
    ``schema`` by :func:`restore_dtypes`, and the dtypes of the columns it has checked
    against ``schema`` with pandas advice in the error (a missing column is left to the
    caller's checks: a ``future=`` frame holds only some); anything else is returned as it
    is, for the checks that follow. ``id_col`` and ``time_col`` name the columns checked by
    the rules of their roles (:func:`~forecaster.data.frames.check_schema`).

    Examples
    --------
    >>> import datetime as dt
    >>> pdf = pl.DataFrame({"t": [dt.date(2024, 1, 1)], "y": [1.0]}).to_pandas()
    >>> str(pdf["t"].dtype)  # pandas has no date type
    'datetime64[ms]'
    >>> trained_frame(pdf, {"t": "Date", "y": "Float64"}, time_col="t").schema["t"]
    Date
    """
    if not is_pandas_frame(value):
        return align_time(value, schema, time_col)
    frame = restore_dtypes(from_pandas(value, what=what), schema, id_col)
    frame = align_time(frame, schema, time_col)  # a unit that would round: refused here
    present = {name: dtype for name, dtype in schema.items() if name in frame.columns}
    check_schema(frame, present, id_col=id_col, time_col=time_col, what=what, pandas=True)
    return frame


def training_frame(value: Any, time_col: Any, *, what: str = "frame") -> Any:
    """``value`` as ``fit`` reads it: a pandas DataFrame converted once by
    :func:`~forecaster.data.frames.from_pandas`, its time column ``time_col`` (where the
    frame has it) checked with pandas advice (``pd.to_datetime``, ``.dt.to_timestamp()``:
    :func:`~forecaster.data.times.check_time_dtype`), as :func:`trained_frame` advises in
    pandas code for a fitted model; anything else is returned as it is, for the checks of
    :func:`~forecaster.data.validate.validate_frame` (polars advice).

    Examples
    --------
    >>> import pandas as pd
    >>> training_frame(pd.DataFrame({"t": ["2024-01-01"], "y": [1.0]}), "t")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Time column 't' must be Datetime, Date or an \
integer step, got String. Parse it in pandas first, e.g. frame['t'] = pd.to_datetime(frame['t']) \
(text times that mix formats, or UTC offsets with times without one: give format=..., or \
utc=True).
    """
    if not is_pandas_frame(value):
        return value
    frame = from_pandas(value, what=what)
    if isinstance(time_col, str) and time_col in frame.columns:
        check_time_dtype(frame.schema[time_col], time_col, pandas=True)
    return frame

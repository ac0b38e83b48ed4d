"""Time columns: their dtypes and ranges, and the one conversion of a user-given time point
(:func:`to_time_point`) into a value of a time column.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import describe_value
from forecaster.data.frames import READ_ERRORS, first_line, is_pandas_sequence
from forecaster.exceptions import DataValidationError

__all__ = [
    "check_series_layout",
    "check_time_dtype",
    "days_from_civil",
    "days_per",
    "integer_range",
    "local_day_grid",
    "on_day_grid",
    "physical_range",
    "plain_time",
    "range_text",
    "time_value_text",
    "to_time_point",
    "zoned_times",
]

_DAY_UNITS = {"ns": 86_400 * 10**9, "us": 86_400 * 10**6, "ms": 86_400 * 10**3}
"""Physical units of a Datetime column per day, by time unit."""

_CALENDAR_DAYS = (-719_162, 2_932_896)
"""Days from 1970-01-01 of 0001-01-01 and 9999-12-31: Python's ``datetime`` range, in which
times are shown, compared with user-given time points and returned (Polars computes further,
to the years -262143 and 262142, but such a time cannot become a Python ``datetime``)."""


def integer_range(dtype: pl.DataType) -> tuple[int, int]:
    """Smallest and largest value of an integer dtype (128-bit ones included)."""
    try:
        info = np.iinfo(str(dtype).lower())
    except TypeError:  # 128-bit integers
        bits = 128
        return (0, 2**bits - 1) if str(dtype).startswith("U") else (-(2**127), 2**127 - 1)
    return int(info.min), int(info.max)


def days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (int64 arrays; H. Hinnant)."""
    year = year - (month <= 2)
    era = np.floor_divide(year, 400)
    yoe = year - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def days_per(dtype: pl.DataType) -> int:
    """Physical units of a Date or Datetime column per day."""
    return 1 if dtype == pl.Date else _DAY_UNITS[getattr(dtype, "time_unit", None) or "us"]


_LONGEST_CLOCK_JUMP_HOURS = 3
"""Longer than any daylight-saving jump of the tz database (at most two hours)."""


def on_day_grid(wall: np.ndarray, offsets: np.ndarray, dtype: pl.DataType) -> np.ndarray:
    """Wall-clock times of rows a day or more apart with the days whose time of day does not
    exist read as that time.

    Where the clocks jump forward at a series' time of day (midnight in America/Sao_Paulo on
    2018-11-04), the day's row is dated an hour away: 23:00 the day before (as
    ``pl.datetime_range`` and ``dt.offset_by`` date it: midnight in the new UTC offset) or
    01:00 (midnight in the old one). Such rows are moved to the skipped time, so that the
    grid of the series' time of day holds them; that time of day is the first row's, or the
    second row's when the first is such a day. Two rows of one day (both datings) stay as
    they are, off the grid. ``wall``: the physical local times, series after series
    (``offsets``); a copy is returned when a row moves.

    Examples
    --------
    >>> import datetime as dt
    >>> times = pl.datetime_range(dt.datetime(2018, 11, 3), dt.datetime(2018, 11, 5), "1d",
    ...                           time_zone="America/Sao_Paulo", eager=True)
    >>> times.dt.hour().to_list()
    [0, 23, 0]
    >>> wall = times.dt.replace_time_zone(None).to_physical().to_numpy()
    >>> int(np.diff(on_day_grid(wall, np.array([0, 3]), times.dtype))[0] // 3_600_000_000)
    24
    """
    lengths = np.diff(offsets)
    anchors = np.zeros(len(lengths), dtype=wall.dtype)  # an empty series has no anchor
    anchors[lengths > 0] = wall[offsets[:-1][lengths > 0]]
    paired = np.flatnonzero(lengths >= 2)
    first = offsets[paired]
    moved, skipped = _skipped_days(wall[first], wall[first + 1], dtype)
    anchors[paired[moved]] = skipped[moved]
    moved, skipped = _skipped_days(wall, np.repeat(anchors, lengths), dtype)
    if not moved.any():
        return wall
    rows = np.flatnonzero(moved)
    out = wall.copy()
    out[rows] = skipped[moved]
    series = np.repeat(np.arange(len(lengths)), lengths)
    before, after = np.maximum(rows - 1, 0), np.minimum(rows + 1, len(out) - 1)
    twice = ((before != rows) & (series[before] == series[rows]) & (out[before] == out[rows])) | (
        (after != rows) & (series[after] == series[rows]) & (out[after] == out[rows])
    )
    out[rows[twice]] = wall[rows[twice]]
    return out


def _skipped_days(
    wall: np.ndarray, reference: np.ndarray, dtype: pl.DataType
) -> tuple[np.ndarray, np.ndarray]:
    """Which of the local times ``wall`` date a day whose time of day of ``reference`` (one
    per row) the clocks skip, by the jump, and those skipped times (any value elsewhere)."""
    day = days_per(dtype)
    hour = day // 24
    shift = (wall - reference) % day
    shift = np.where(shift > day // 2, shift - day, shift)
    reach = _LONGEST_CLOCK_JUMP_HOURS * hour
    near = np.flatnonzero((shift != 0) & (np.abs(shift) < reach))
    skipped = wall - shift
    moved = np.zeros(len(wall), dtype=bool)
    if near.size == 0:
        return moved, skipped
    window = np.concatenate([skipped[near] - reach, skipped[near], skipped[near] + reach])
    unit, zone = _unit_and_zone(dtype)
    naive = pl.Series(window, dtype=pl.Int64).cast(pl.Datetime(unit))
    instants = naive.dt.replace_time_zone(
        zone, non_existent="null", ambiguous="earliest"
    ).to_physical()
    before, at, after = (instants[i * near.size : (i + 1) * near.size] for i in range(3))
    # The clocks jump by the time the window around the skipped time loses.
    jump = (2 * reach - (after - before)).to_numpy()
    moved[near] = at.is_null().to_numpy() & (np.abs(shift[near]) == jump)
    return moved, skipped


def local_day_grid(
    times: pl.Series, offsets: np.ndarray, wall: np.ndarray | None = None
) -> pl.Series:
    """The wall-clock times of time-zone-aware ``times`` (series after series: ``offsets``)
    on their day grid (:func:`on_day_grid`), as naive datetimes: days, weeks, months and
    business days are counted on them, and :func:`zoned_times` dates the results. ``wall``:
    the physical wall-clock times when already at hand."""
    naive = pl.Datetime(_unit_and_zone(times.dtype)[0])
    if wall is None:
        wall = times.dt.replace_time_zone(None).to_physical().cast(pl.Int64).to_numpy()
    return pl.Series(times.name, on_day_grid(wall, offsets, times.dtype)).cast(naive)


def zoned_times(naive: pl.Series, dtype: pl.DataType) -> pl.Series:
    """Local wall-clock times as times of the zoned ``dtype``, as ``dt.offset_by`` dates the
    steps it makes: a time repeated when the clocks go back is its first instant, and a time
    they skip is read in the new UTC offset (midnight skipped at 00:00 -03 is 23:00 -03 the
    day before)."""
    unit, zone = _unit_and_zone(dtype)
    naive = naive.cast(pl.Datetime(unit))
    zoned = naive.dt.replace_time_zone(zone, non_existent="null", ambiguous="earliest")
    if zoned.null_count() == naive.null_count():
        return zoned
    later = pl.duration(hours=_LONGEST_CLOCK_JUMP_HOURS, time_unit=unit)
    t = pl.col("t")
    moved = (t + later).dt.replace_time_zone(zone, non_existent="null", ambiguous="earliest")
    steps = pl.DataFrame({"t": naive, "z": zoned}).with_columns(moved.alias("m"))
    lost = steps.filter(pl.col("z").is_null() & pl.col("m").is_null() & t.is_not_null())
    if lost.height:  # a whole day skipped (Pacific/Apia 2011-12-30)
        raise DataValidationError(
            f"Cannot date the step at the local time {lost['t'][0]} in {zone}: it does not "
            "exist, nor does the time three hours later (the clocks skip more than a "
            "daylight-saving jump). Convert the time column to UTC first, e.g. "
            "pl.col(time_col).dt.convert_time_zone('UTC')."
        )
    dated = pl.coalesce(pl.col("z"), pl.col("m") - later)
    return steps.select(dated.cast(dtype)).to_series().alias(naive.name)


def _unit_and_zone(dtype: pl.DataType) -> tuple[Any, Any]:
    """The time unit (``"us"`` when unset) and time zone of a Datetime dtype."""
    return getattr(dtype, "time_unit", None) or "us", getattr(dtype, "time_zone", None)


def physical_range(dtype: pl.DataType) -> tuple[int, int]:
    """Smallest and largest physical value of a time column of ``dtype`` (integers: their
    range; dates and datetimes: years 1 to 9999, a day less at both ends with a time zone,
    and int64 for nanoseconds)."""
    if dtype.is_integer():
        return integer_range(dtype)
    low_days, high_days = _CALENDAR_DAYS
    if dtype == pl.Date:
        return low_days, high_days
    if getattr(dtype, "time_zone", None):  # local times may be up to a day from UTC's
        low_days, high_days = low_days + 1, high_days - 1
    per_day = _DAY_UNITS[getattr(dtype, "time_unit", None) or "us"]
    return max(-(2**63), low_days * per_day), min(2**63 - 1, (high_days + 1) * per_day - 1)


def range_text(dtype: pl.DataType) -> str:
    """The range of a time dtype, e.g. ``'1677-09-21 00:12:43.145224192 to 2262-04-11 ...'``."""
    low, high = physical_range(dtype)
    if dtype.is_integer():
        return f"{low:,} to {high:,}"
    try:
        ends = pl.Series([low, high], dtype=pl.Int64).cast(
            pl.Int32 if dtype == pl.Date else pl.Int64
        )
        shown = ends.cast(dtype).cast(pl.String).to_list()
        return f"{shown[0]} to {shown[1]}"
    except READ_ERRORS:
        return f"{low:,} to {high:,} in its physical units"


def check_time_dtype(dtype: pl.DataType, time_col: str, *, pandas: bool = False) -> None:
    """Refuse a time column that is not Date, Datetime or an integer of at most 64 bits, with
    advice in polars code, or in pandas code where the frame came from pandas (``pandas``;
    a pandas ``Period`` column, which only pandas makes, gets pandas advice either way).

    Examples
    --------
    >>> check_time_dtype(pl.String, "date", pandas=True)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Time column 'date' must be Datetime, Date or an \
integer step, got String. Parse it in pandas first, e.g. frame['date'] = \
pd.to_datetime(frame['date']) (text times that mix formats, or UTC offsets with times without \
one: give format=..., or utc=True).
    """
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return
    if dtype.is_integer() and dtype not in (pl.Int128, getattr(pl, "UInt128", pl.Int128)):
        return
    name, column = str(dtype), f"frame[{time_col!r}]"
    hints = {
        "pandas.period": f" A pandas Period column is a span, not a time: convert it in pandas "
        f"first, e.g. {column} = {column}.dt.to_timestamp() (each period's start).",
        "String": f" Parse it first, e.g. pl.col({time_col!r}).str.to_datetime() or "
        ".str.to_date() (text times that mix formats, or UTC offsets with times without one, "
        "are not parsed when a file is read: give the format, or the time zone, explicitly).",
        "Float": " Floats are not time steps: cast whole-number steps to an integer, e.g. "
        f"pl.col({time_col!r}).cast(pl.Int64), or convert epoch seconds with pl.from_epoch(...).",
        "Duration": " A duration is a length of time, not a point in time: add it to a start "
        "time, e.g. pl.lit(start) + pl.col(...).",
        "Int128": f" 128-bit integers are beyond the 64-bit time steps supported: cast them, "
        f"e.g. pl.col({time_col!r}).cast(pl.Int64), if they fit.",
    }
    if pandas:
        hints |= {
            "String": f" Parse it in pandas first, e.g. {column} = pd.to_datetime({column}) "
            "(text times that mix formats, or UTC offsets with times without one: give "
            "format=..., or utc=True).",
            "Float": " Floats are not time steps: cast whole-number steps to an integer in "
            f"pandas, e.g. {column} = {column}.astype('int64'), or convert epoch seconds with "
            f"pd.to_datetime({column}, unit='s').",
            "Duration": " A duration is a length of time, not a point in time: add it to a "
            f"start time in pandas, e.g. {column} = pd.Timestamp(start) + {column}.",
        }
    hint = next((h for k, h in hints.items() if name.startswith(k) or k in name), "")
    raise DataValidationError(
        f"Time column {time_col!r} must be Datetime, Date or an integer step, got {dtype}.{hint}"
    )


def check_series_layout(
    times: Any, offsets: Any, function: str, *, empty_series: bool = True
) -> tuple[pl.Series, np.ndarray]:
    """Check the ``(times, offsets)`` arguments of a low-level function: a polars Series of
    a time dtype without nulls, and ``n_series + 1`` row offsets from 0 to ``len(times)``
    (increasing; non-decreasing when ``empty_series``). Returns offsets as int64."""
    if not isinstance(times, pl.Series):
        hint = (
            "pl.from_pandas(series)"
            if type(times).__module__.startswith("pandas")
            else "pl.Series(values) or frame['t']"
        )
        raise DataValidationError(
            f"{function} takes the time column as a polars Series, got {describe_value(times)}. "
            f"Pass {hint}."
        )
    check_time_dtype(times.dtype, times.name or "times")
    if times.null_count():
        raise DataValidationError(
            f"The times given to {function} hold {times.null_count()} null values. Drop or fill "
            "those rows first."
        )
    try:
        array = np.asarray(offsets)
    except (TypeError, ValueError):  # ragged nesting
        array = np.empty(0, dtype=object)
    ok = (
        offsets is not None
        and array.ndim == 1
        and array.dtype.kind in "iu"
        and array.size >= 2
        and array[0] == 0
        and array[-1] == len(times)
    )
    if ok:
        steps = np.diff(array.astype(np.int64))
        ok = bool((steps >= 0).all() if empty_series else (steps > 0).all())
    if not ok:
        order = "non-decreasing" if empty_series else "increasing (no empty series)"
        raise DataValidationError(
            f"offsets must be the row offsets of the series: a 1-D integer array of n_series + 1 "
            f"{order} values from 0 to len(times) = {len(times)}, got "
            f"{describe_value(offsets)}. E.g. np.array([0, len(times)]) for one series, or "
            "panel.offsets."
        )
    return times, array.astype(np.int64)


def _time_example(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "an int step such as 120"
    if dtype == pl.Date:
        return "datetime.date(2024, 1, 31), '2024-01-31' or pl.date(2024, 1, 31)"
    zone = getattr(dtype, "time_zone", None)
    local = f" (read in the column's time zone {zone})" if zone else ""
    return (
        "datetime.datetime(2024, 1, 31, 12, 0), '2024-01-31T12:00' or "
        f"pl.datetime(2024, 1, 31, 12){local}"
    )


def plain_time(value: Any) -> Any:
    """A numpy scalar, polars literal expression or 1-value Series as a Python value (others
    as they are); ``ValueError`` saying why one is not a time value (NaT, 2 values, ...).

    Examples
    --------
    >>> plain_time(np.datetime64("2024-01-31")), plain_time(pl.date(2024, 1, 31))
    (datetime.date(2024, 1, 31), datetime.date(2024, 1, 31))
    """
    if isinstance(value, pl.Expr):
        try:
            value = pl.select(value).to_series()
        except READ_ERRORS as exc:
            raise ValueError(
                f"it is an expression that is not a literal ({first_line(exc)})"
            ) from exc
    if isinstance(value, pl.Series):
        if len(value) != 1:
            raise ValueError(f"it holds {len(value)} values, not one")
        value = value.item()
    if type(value).__name__ == "NaTType":  # pandas' NaT (a datetime whose parts are NaN)
        raise ValueError("it is NaT (not a time)")
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError("it is NaT (not a time)")
        unit = np.datetime_data(value.dtype)[0]
        if unit in ("Y", "M", "W", "D"):
            return value.astype("datetime64[D]").astype(object)
        if unit in ("ns", "ps", "fs", "as") and value != value.astype("datetime64[us]"):
            raise ValueError("it has a sub-microsecond part, finer than Python times")
        return value.astype("datetime64[us]").astype(object)
    if isinstance(value, np.generic):
        return value.item()
    return value


def time_value_text(value: Any) -> str:
    """A time value as given to ``predict(cutoff=...)`` (a date, datetime, ISO text, integer
    step, numpy scalar, polars literal such as ``pl.date(...)`` or one-value Series), shown by
    its value for messages: a date or datetime in ISO form, others as their ``repr``; a value
    :func:`plain_time` cannot read (an expression that is not a literal) as its ``repr``.

    Examples
    --------
    >>> time_value_text(pl.date(2024, 1, 31)), time_value_text("2024-01-31"), time_value_text(7)
    ('2024-01-31', "'2024-01-31'", '7')
    """
    try:
        plain = plain_time(value)
    except ValueError:
        return repr(value)
    if isinstance(plain, dt.date):  # (a datetime too)
        return plain.isoformat(sep=" ") if isinstance(plain, dt.datetime) else plain.isoformat()
    return repr(plain)


def _parse_iso(text: str) -> dt.date | dt.datetime:
    text = text.strip()
    try:
        if len(text) in (8, 10) and "T" not in text and " " not in text:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "the text is not an ISO 8601 date or date and time (e.g. '2024-01-31', "
            "'20240131', '2024-01-31T12:00' or '2024-01-31 12:00:00+01:00')"
        ) from None


def _on_datetime(value: dt.date, dtype: pl.Datetime) -> dt.datetime:
    unit, zone = _unit_and_zone(dtype)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    series = pl.Series([value])
    if value.tzinfo is None and zone is not None:
        try:
            series = series.dt.replace_time_zone(zone, non_existent="raise", ambiguous="raise")
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"it does not name one instant in the time zone {zone} ({first_line(exc)}); "
                "pass a datetime with its UTC offset"
            ) from exc
    elif value.tzinfo is not None:
        if zone is None:
            raise ValueError(
                "it has a time zone but the time column has none: pass a naive datetime on "
                "the column's clock, e.g. value.astimezone(zone).replace(tzinfo=None)"
            )
        series = series.dt.convert_time_zone(zone)
    try:
        point = series.cast(pl.Datetime(unit, zone))
    except READ_ERRORS:
        raise ValueError(f"it is outside the range of {dtype} ({range_text(dtype)})") from None
    if unit == "ns" and series.dt.cast_time_unit("ns").to_physical()[0] % 1000:
        raise ValueError("it has a sub-microsecond part, finer than Python times")
    return point.item()


def to_time_point(value: Any, dtype: pl.DataType, *, name: str = "cutoff") -> Any:
    """Turn a user-given time point into a value of a time column of ``dtype``.

    The one conversion used wherever a time enters the package (``predict(cutoff=...)``,
    ``Windows.split(train_end=..., val_end=...)``, ``PanelScaler.fit(until=...)``, as-of
    dates). Accepted: ``datetime.date``, ``datetime.datetime`` (pandas Timestamps too),
    ISO 8601 text (``"2024-01-31"``, ``"20240131"``, ``"2024-01-31T12:00"``, with an offset or
    ``Z``), ``numpy.datetime64``, a polars literal expression (``pl.date(...)``,
    ``pl.datetime(...)``, ``pl.lit(...)``) or a one-value Series, and ints (numpy too) for
    integer time columns. Rules:

    - a date on a Datetime column is its midnight; a datetime on a Date column must be at
      midnight without a time zone;
    - a naive datetime on a time-zone-aware column is read in the column's zone (a time that
      does not exist there, or exists twice, is refused); an aware one is converted to it; an
      aware datetime on a naive column is refused;
    - numbers are not times of Date / Datetime columns, and floats, bools and text are not
      integer steps.

    Parameters
    ----------
    value : any of the above
    dtype : polars.DataType
        The time column's dtype.
    name : str, default "cutoff"
        The argument's name, for the error message.

    Returns
    -------
    int, datetime.date or datetime.datetime
        Comparable with the column (``pl.col(t) <= pl.lit(point, dtype)``).

    Raises
    ------
    DataValidationError
        Saying what was received (value and type), the column's dtype and an example.

    Examples
    --------
    >>> import datetime as dt
    >>> to_time_point(pl.date(2012, 12, 31), pl.Date)
    datetime.date(2012, 12, 31)
    >>> to_time_point("2012-12-31", pl.Datetime("us"))
    datetime.datetime(2012, 12, 31, 0, 0)
    >>> to_time_point(5, pl.Date, name="train_end")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: train_end=5 (an int) is not a time of the Date \
time column: numbers are steps of integer time columns only. Pass \
datetime.date(2024, 1, 31), '2024-01-31' or pl.date(2024, 1, 31).
    """
    try:
        return _time_point(value, dtype)
    except ValueError as exc:
        raise DataValidationError(
            f"{name}={describe_value(value)} is not a time of the {dtype} time column: {exc}. "
            f"Pass {_time_example(dtype)}."
        ) from None


def _time_point(value: Any, dtype: pl.DataType) -> Any:
    if value is None:
        raise ValueError("None is not a time")
    if isinstance(value, list | tuple | set | dict | np.ndarray) or is_pandas_sequence(value):
        raise ValueError("it takes one time point, not a collection")
    point = plain_time(value)
    if isinstance(point, str):
        if dtype.is_integer():
            raise ValueError("text is not an integer step")
        point = _parse_iso(point)
    if isinstance(point, bool):
        raise ValueError("a bool is not a time")
    if dtype.is_integer():
        if not isinstance(point, int):
            raise ValueError(f"the column holds integer steps; a {type(point).__name__} is not one")
        low, high = integer_range(dtype)
        if not low <= point <= high:
            raise ValueError(f"it is outside the range of {dtype} ({low} to {high})")
        return point
    if isinstance(point, int | float):
        raise ValueError("numbers are steps of integer time columns only")
    if not isinstance(point, dt.date):
        raise ValueError("it is not a date, a datetime or ISO text")
    if dtype == pl.Date:
        if isinstance(point, dt.datetime):
            if point.tzinfo is not None or point.time() != dt.time(0):
                raise ValueError(
                    "the column holds dates; a datetime must be a naive midnight, e.g. "
                    f"{point.date()!r}"
                )
            return point.date()
        return point
    if isinstance(dtype, pl.Datetime):
        return _on_datetime(point, dtype)
    raise ValueError(f"the time column's dtype {dtype} is not a time dtype")

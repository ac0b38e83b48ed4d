"""Validate long-format frames and pack them into a :class:`Panel`.

A *long* frame has one row per (series, time step): an optional id column, a time column
(datetime, date or integer step), one or more target columns and optional covariate columns.
:func:`validate_frame` checks and cleans it (sorting, duplicates, gaps, missing values, dtypes)
and :meth:`Panel.from_frame` packs the result into one contiguous float32 array of all series
plus offsets, with the series keys and timestamps kept in Polars.

Everything is vectorised: no Python loop over series or rows.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster import _validation
from forecaster._validation import describe_value
from forecaster.exceptions import DataValidationError, ForecasterWarning

__all__ = [
    "CALENDAR_FEATURES",
    "MISSING_POLICIES",
    "Frequency",
    "Panel",
    "calendar_features",
    "calendar_values",
    "check_roles",
    "check_schema",
    "check_unique_keys",
    "check_values",
    "collect_frame",
    "frame_schema",
    "future_times",
    "infer_frequency",
    "to_time_point",
    "validate_frame",
]

MISSING_POLICIES = _validation.MISSING_POLICIES
"""How gaps in the time grid and missing values (NaN / null) are handled."""

SERIES_ID = "__series__"
"""Name of the id column used internally when a frame holds a single series (no id column)."""

_FREQ_PATTERN = re.compile(r"^(\d*)([a-z]+)$", re.IGNORECASE)
_UNITS = ("ns", "us", "ms", "s", "m", "h", "d", "w", "mo", "q", "y", "bd", "i")
_UNIT_ALIASES = {"min": "m", "b": "bd"}
"""Other spellings of a unit (pandas' ``min`` and ``B``), case-insensitive like the units."""
_PANDAS_ONLY = {
    "me": "1mo",
    "qe": "1q",
    "qs": "1q",
    "ye": "1y",
    "ys": "1y",
    "a": "1y",
    "t": "1m",
    "l": "1ms",
    "u": "1us",
    "n": "1ns",
}
"""pandas offset aliases that mean something else, or nothing, here: what to pass instead."""
_FIXED_UNITS_US = {
    "ns": 1e-3,
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_CALENDAR_UNITS = ("mo", "q", "y", "bd")
_MAX_FREQ_STEPS = 2**40
"""Largest multiple in a frequency string (keeps every step inside int64 arithmetic)."""
_MAX_EXAMPLES = 5
_MAX_FILL_ROWS = 10_000_000
_MAX_FILL_GROWTH = 100
"""Filling gaps may grow a frame to 100x its rows (at least to 10 million rows), no further."""


def _fmt_list(items: Sequence[Any], limit: int = _MAX_EXAMPLES) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return f"{shown}{more}"


def _as_tuple(columns: str | Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return ()
    if isinstance(columns, str):
        return (columns,)
    if not isinstance(columns, Sequence | set | frozenset | pl.Series):
        raise DataValidationError(
            f"Expected a column name or a list of column names, got {type(columns).__name__} "
            f"{columns!r}."
        )
    return tuple(columns)


# --------------------------------------------------------------------------------------------
# Frequencies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frequency:
    """A regular sampling frequency, written like a Polars duration string.

    The grammar is ``<n><unit>``: ``n`` a positive integer (``1`` when left out) and one unit,
    in any case: ``ns``, ``us``, ``ms``, ``s``, ``m`` (minute; ``min`` too), ``h``, ``d``,
    ``w``, ``mo`` (month), ``q``, ``y``, ``bd`` (business days, Monday to Friday, holidays
    are gaps; ``b`` too) and ``i`` (integer time steps). An integer ``n`` is ``"<n>i"``.
    pandas' month alias ``"M"`` (a minute in Polars) is refused, as are ``"1M"``, ``"MS"``
    and a bare ``"m"``: pass ``"1mo"`` for months or ``"1m"`` for minutes. Compound
    durations such as ``"1h30m"`` are not supported (pass ``"90m"``).

    Month, quarter and year steps keep each series' day of the month: a series whose every
    time is the last day of its month (month-ends, quarter-ends) steps by month-ends, others
    by their largest day of the month, clamped to shorter months (see :func:`future_times`).

    Examples
    --------
    >>> Frequency.parse("15m").is_calendar
    False
    >>> Frequency.parse("1bd").unit
    'bd'
    >>> str(Frequency.parse("H")), str(Frequency.parse("15MIN"))
    ('1h', '15m')
    >>> Frequency.parse("1M")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: freq '1M' is ambiguous: in pandas 'M' is a \
month, in Polars (and here) 'm' is a minute. Pass '1mo' for months or '1m' for minutes.
    """

    n: int
    unit: str

    @classmethod
    def parse(cls, value: str | int) -> Frequency:
        """Parse ``"1h"``, ``"1bd"``, ``"1mo"`` or an integer step such as ``5`` (numpy
        integers too; the parameter table's ``freq`` rule decides what is accepted)."""
        value = _validation.check("freq", value)
        if value is None:
            raise DataValidationError(
                "freq must be a duration string such as '1h' or an integer step here, got None."
            )
        if isinstance(value, int):
            value = f"{value}i"
        match = _FREQ_PATTERN.match(value.strip())
        digits, raw = match.groups() if match else ("", "")
        lower = raw.lower()
        if ("M" in raw and lower in ("m", "ms")) or (raw == "m" and not digits):
            raise DataValidationError(
                f"freq {value!r} is ambiguous: in pandas 'M' is a month, in Polars (and here) "
                "'m' is a minute. Pass '1mo' for months or '1m' for minutes."
            )
        unit = _UNIT_ALIASES.get(lower, lower)
        if match is None or unit not in _UNITS or (digits and int(digits) <= 0):
            instead = _PANDAS_ONLY.get(lower)
            hint = f" ({raw!r} is a pandas alias: pass {instead!r})" if match and instead else ""
            raise DataValidationError(
                f"freq {value!r} is not understood{hint}. Expected a positive duration "
                "'<n><unit>' with one unit: '15m' (minutes), '1h', '1d', '1w', '1mo' (months), "
                "'1q', '1y', '1bd' (business days), 'ns', 'us', 'ms', 's', or an integer step "
                "such as '1i' for integer time columns, or 'auto' to infer it."
            )
        n = int(digits) if digits else 1
        if n > _MAX_FREQ_STEPS:
            raise DataValidationError(
                f"freq {value!r} is implausibly long ({n} {unit}); expected at most "
                f"{_MAX_FREQ_STEPS:,} units per step. Pass the sampling interval of the data."
            )
        return cls(n, unit)

    @property
    def is_calendar(self) -> bool:
        """True for month, quarter, year and business-day steps (not a fixed duration)."""
        return self.unit in _CALENDAR_UNITS

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"

    def step_in(self, dtype: pl.DataType) -> int:
        """Length of one fixed step in the physical units of a time column of ``dtype``."""
        if self.unit == "i":
            return self.n
        micros = self.n * _FIXED_UNITS_US[self.unit]
        if dtype == pl.Date:
            days = micros / _FIXED_UNITS_US["d"]
            if days != int(days):
                raise DataValidationError(
                    f"freq {self} is shorter than a day but the time column is a Date. "
                    "Use a Datetime column or a frequency of whole days."
                )
            if days >= 2**31:
                raise DataValidationError(
                    f"freq {self} is longer than a Date column can span. Pass the sampling "
                    "interval of the data."
                )
            return int(days)
        unit = getattr(dtype, "time_unit", "us") or "us"
        factor = {"ns": 1000, "us": 1, "ms": 1e-3}[unit]
        step = micros * factor
        if step != int(step) or step <= 0:
            raise DataValidationError(
                f"freq {self} cannot be expressed in the time column's unit ({unit})."
            )
        if step >= 2**62:
            raise DataValidationError(
                f"freq {self} is longer than a time column in {unit} can span. Pass the "
                "sampling interval of the data."
            )
        return int(step)

    def check_dtype(self, dtype: pl.DataType, time_col: str) -> None:
        """Raise when the frequency does not fit a time column of ``dtype``."""
        if dtype.is_integer() != (self.unit == "i"):
            kind = "integer" if dtype.is_integer() else "temporal"
            raise DataValidationError(
                f"freq {self} does not fit the {kind} time column {time_col!r} ({dtype}). Use an "
                "integer step such as '1i' for integer time columns and a duration such as '1h' "
                "or '1d' for dates and datetimes."
            )
        if dtype == pl.Date and self.unit in ("ns", "us", "ms", "s", "m", "h"):
            self.step_in(dtype)

    def offset(
        self, times: pl.Expr, steps: pl.Expr | int, *, day: pl.Expr | int | None = None
    ) -> pl.Expr:
        """Expression for ``times`` moved forward by ``steps`` periods of this frequency.

        Month, quarter and year steps land on day ``day`` of their month, clamped to its
        length (31: the month's last day). By default that is the day of ``times`` itself, or
        the month's last day when ``times`` is the last day of its month: a month-end stays a
        month-end (2003-04-30 plus one month is 2003-05-31, not 2003-05-30). For the steps
        after the series of a frame use :func:`future_times`, which takes each series' own day
        of the month and refuses times beyond the range of the time column's dtype (this
        expression does not check that range).

        Examples
        --------
        >>> frame = pl.DataFrame({"t": [dt.date(2003, 4, 30), dt.date(2003, 1, 15)]})
        >>> frame.select(Frequency.parse("1mo").offset(pl.col("t"), 3))["t"].to_list()
        [datetime.date(2003, 7, 31), datetime.date(2003, 4, 15)]
        """
        steps_expr = steps if isinstance(steps, pl.Expr) else pl.lit(steps)
        total = (steps_expr * self.n).cast(pl.Int64)
        if self.unit == "i":
            return times + total
        if self.unit == "bd":
            return times.dt.add_business_days(total)
        if self.unit not in _MONTHS_PER_UNIT:
            return times.dt.offset_by(pl.format("{}" + self.unit, total))
        if day is None:
            own = times.dt.day().cast(pl.Int64)
            day = pl.when(own == times.dt.month_end().dt.day()).then(31).otherwise(own)
        day_expr = (day if isinstance(day, pl.Expr) else pl.lit(day)).cast(pl.Int64)
        months = total * _MONTHS_PER_UNIT[self.unit]
        moved = times.dt.month_start().dt.offset_by(pl.format("{}mo", months))
        length = moved.dt.month_end().dt.day().cast(pl.Int64)
        return moved.dt.offset_by(pl.format("{}d", pl.min_horizontal(day_expr, length) - 1))


_MONTHS_PER_UNIT = {"mo": 1, "q": 3, "y": 12}
_DAY_UNITS = {"ns": 86_400 * 10**9, "us": 86_400 * 10**6, "ms": 86_400 * 10**3}
"""Physical units of a Datetime column per day, by time unit."""
_CHRONO_DAYS = (-96_465_292, 95_026_236)
"""Days from 1970-01-01 of -262143-01-01 and 262142-12-31: the calendar Polars computes in."""


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (int64 arrays; H. Hinnant)."""
    year = year - (month <= 2)
    era = np.floor_divide(year, 400)
    yoe = year - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def _physical_range(dtype: pl.DataType) -> tuple[int, int]:
    """Smallest and largest physical value of a time column of ``dtype`` (integers: their
    range; dates and datetimes: Polars' calendar, and int64 for nanoseconds)."""
    if dtype.is_integer():
        return _integer_range(dtype)
    low_days, high_days = _CHRONO_DAYS
    if dtype == pl.Date:
        return low_days, high_days
    per_day = _DAY_UNITS[getattr(dtype, "time_unit", None) or "us"]
    return max(-(2**63), low_days * per_day), min(2**63 - 1, (high_days + 1) * per_day - 1)


def _range_text(dtype: pl.DataType) -> str:
    """The range of a time dtype, e.g. ``'1677-09-21 00:12:43.145224192 to 2262-04-11 ...'``."""
    low, high = _physical_range(dtype)
    if dtype.is_integer():
        return f"{low:,} to {high:,}"
    try:
        ends = pl.Series([low, high], dtype=pl.Int64).cast(
            pl.Int32 if dtype == pl.Date else pl.Int64
        )
        shown = ends.cast(dtype).cast(pl.String).to_list()
        return f"{shown[0]} to {shown[1]}"
    except _READ_ERRORS:
        return f"{low:,} to {high:,} in its physical units"


def _anchor_days(times: pl.Series, offsets: np.ndarray) -> np.ndarray:
    """The day of the month each series steps on (month, quarter and year steps): 31 (its
    months' last days) when every time of the series is the last day of its month, else its
    largest day of the month."""
    parts = pl.DataFrame({"t": times}).select(
        day=pl.col("t").dt.day().cast(pl.Int64),
        end=pl.col("t").dt.day() == pl.col("t").dt.month_end().dt.day(),
    )
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    largest = np.maximum.reduceat(parts["day"].to_numpy(), starts)
    month_ends = np.logical_and.reduceat(parts["end"].to_numpy(), starts)
    return np.where(month_ends, 31, largest)


def _stepped_times(
    anchors: pl.Series, steps: np.ndarray, freq: Frequency, days: np.ndarray | None
) -> pl.Series:
    """``anchors`` (one per row) moved forward by ``steps`` periods (``days``: the day of the
    month of each row, for month, quarter and year steps). No range check here."""
    frame = pl.DataFrame({"t": anchors, "k": np.asarray(steps, dtype=np.int64)})
    day = None
    if days is not None and freq.unit in _MONTHS_PER_UNIT:
        frame = frame.with_columns(pl.Series("d", np.asarray(days, dtype=np.int64)))
        day = pl.col("d")
    expr = freq.offset(pl.col("t"), pl.col("k"), day=day).cast(anchors.dtype)
    return frame.select(expr).to_series()


def future_times(times: pl.Series, offsets: Any, freq: Frequency, horizon: int) -> pl.Series:
    """The ``horizon`` times after the last time of each series, series after series.

    The one rule for times beyond the data: forecasts, their calendar features and the
    baselines of :mod:`forecaster.evaluation.metrics` take their times from here, and gap filling
    (``missing=``) steps inside a series by the same :meth:`Frequency.offset`. Step ``k``
    after a series is:

    - integer steps and fixed durations (``ns`` to ``w``): its last time plus ``k`` steps
      (days and weeks of time-zone-aware datetimes follow the local calendar);
    - business days: ``k`` business days after its last time, at the same time of day;
    - months, quarters and years: counted from the series' anchor, its first time (month and
      time of day), on the series' day of the month: the month's last day when every time of
      the series is the last day of its month (month-ends stay month-ends, quarter-ends
      quarter-ends), else the series' largest day of the month, clamped to shorter months.

    Parameters
    ----------
    times : polars.Series
        Time column of a frame sorted by (series, time): Date, Datetime or integer steps.
    offsets : numpy.ndarray
        Row offsets of the series (``n_series + 1`` increasing integers from 0 to
        ``len(times)``).
    freq : Frequency
        The frame's frequency.
    horizon : int
        Steps per series.

    Returns
    -------
    polars.Series
        ``n_series * horizon`` times of ``times``' dtype and name.

    Raises
    ------
    DataValidationError
        When an argument is not of that kind, or a time would pass the range of the time
        column's dtype (naming the last time and the range).

    Examples
    --------
    >>> t = pl.Series("t", [dt.date(2003, 2, 28), dt.date(2003, 3, 31), dt.date(2003, 4, 30)])
    >>> future_times(t, np.array([0, 3]), Frequency.parse("1mo"), 3).to_list()
    [datetime.date(2003, 5, 31), datetime.date(2003, 6, 30), datetime.date(2003, 7, 31)]
    >>> future_times(pl.Series([120, 121], dtype=pl.Int8), np.array([0, 2]), Frequency(1, "i"), 7)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The 7 steps of 1i after the last time 121 would \
pass the largest value of the time column's dtype Int8 (-128 to 127). Cast the time column to a \
wider dtype, e.g. pl.col(time_col).cast(pl.Int64), or check for stray sentinel times.
    """
    times, offsets = _series_layout(times, offsets, "future_times", empty_series=False)
    horizon = _validation.check("horizon", horizon)
    if not isinstance(freq, Frequency):
        raise DataValidationError(
            f"freq must be a Frequency, e.g. Frequency.parse('1d'), got {describe_value(freq)}."
        )
    freq.check_dtype(times.dtype, times.name or "time")
    zoned = isinstance(times.dtype, pl.Datetime) and times.dtype.time_zone is not None
    if not freq.is_calendar and not (zoned and freq.unit in ("d", "w")):
        return _fixed_future(times, offsets, freq, horizon)
    return _calendar_future(times, offsets, freq, horizon)


def _fixed_future(
    times: pl.Series, offsets: np.ndarray, freq: Frequency, horizon: int
) -> pl.Series:
    """:func:`future_times` for integer steps and fixed durations: physical arithmetic, with
    the furthest time checked exactly against the dtype's range first."""
    dtype = times.dtype
    step = freq.step_in(dtype)
    last = times.gather(offsets[1:] - 1)
    physical = last.to_physical()
    furthest = int(physical.max()) + horizon * step  # type: ignore[arg-type]
    if furthest > _physical_range(dtype)[1]:
        raise _beyond_range(last.max(), dtype, freq, horizon)
    kind = np.uint64 if physical.dtype == pl.UInt64 else np.int64
    steps = np.arange(1, horizon + 1, dtype=kind) * kind(step)
    values = (physical.to_numpy().astype(kind)[:, None] + steps[None, :]).ravel()
    return pl.Series(times.name, values).cast(physical.dtype).cast(dtype)


def _calendar_future(
    times: pl.Series, offsets: np.ndarray, freq: Frequency, horizon: int
) -> pl.Series:
    """:func:`future_times` for months, quarters, years (from each series' first time, on its
    day of the month), business days and local days and weeks (from its last time). An upper
    bound of the furthest time, in days, is checked against the dtype's range first."""
    dtype = times.dtype
    n_series = len(offsets) - 1
    last = times.gather(offsets[1:] - 1)
    steps = np.tile(np.arange(1, horizon + 1, dtype=np.int64), n_series)
    rows = np.repeat(np.arange(n_series, dtype=np.int64), horizon)
    days = None
    if freq.unit in _MONTHS_PER_UNIT:
        first = times.gather(offsets[:-1])
        days = _anchor_days(times, offsets)
        counted = _periods(last, first, freq)[0] + horizon
        reach = _month_index(first) + counted * freq.n * _MONTHS_PER_UNIT[freq.unit]
        year, month = np.floor_divide(reach, 12), reach % 12 + 1
        _check_reach(_days_from_civil(year, month, days) + 2, last, dtype, freq, horizon)
        anchors, steps = first.gather(rows), (counted - horizon)[rows] + steps
        days = days[rows]
    else:  # business days, local days and weeks
        per_step = {"bd": 1.4, "d": 1.0, "w": 7.0}[freq.unit] * freq.n
        span = np.ceil(per_step * horizon) + 4  # weekends and daylight-saving slack
        reached = np.floor_divide(last.to_physical().to_numpy(), _days_per(dtype)) + span
        _check_reach(reached, last, dtype, freq, horizon)
        anchors = last.gather(rows)
    try:
        return _stepped_times(anchors, steps, freq, days).alias(times.name)
    except _READ_ERRORS as exc:
        raise DataValidationError(
            f"Cannot compute the {horizon} steps of {freq} after the series' last times "
            f"(latest {last.max()}): {_first_line(exc)}. Check the time column."
        ) from exc


def _month_index(times: pl.Series) -> np.ndarray:
    """``year * 12 + month - 1`` of every time (int64)."""
    frame = pl.DataFrame({"t": times})
    index = pl.col("t").dt.year().cast(pl.Int64) * 12 + pl.col("t").dt.month().cast(pl.Int64) - 1
    return frame.select(index).to_series().to_numpy()


def _days_per(dtype: pl.DataType) -> int:
    """Physical units of a Date or Datetime column per day."""
    return 1 if dtype == pl.Date else _DAY_UNITS[getattr(dtype, "time_unit", None) or "us"]


def _check_reach(
    reach: np.ndarray, last: pl.Series, dtype: pl.DataType, freq: Frequency, horizon: int
) -> None:
    """Refuse steps whose furthest time, bounded from above by ``reach`` (days since
    1970-01-01 per series), may pass the range of ``dtype``."""
    over = np.asarray(reach) > _physical_range(dtype)[1] // _days_per(dtype)
    if over.any():
        raise _beyond_range(last.filter(pl.Series(over)).max(), dtype, freq, horizon)


def _beyond_range(
    latest: Any, dtype: pl.DataType, freq: Frequency, horizon: int
) -> DataValidationError:
    if dtype.is_integer() and dtype not in (pl.Int64, pl.UInt64):
        fix = "Cast the time column to a wider dtype, e.g. pl.col(time_col).cast(pl.Int64)"
    elif getattr(dtype, "time_unit", None) == "ns":
        fix = "Cast the time column to microseconds, pl.col(time_col).dt.cast_time_unit('us')"
    else:
        fix = "Shift the steps back (e.g. subtract the first time)"
    return DataValidationError(
        f"The {horizon} steps of {freq} after the last time {latest} would pass the largest "
        f"value of the time column's dtype {dtype} ({_range_text(dtype)}). {fix}, or check for "
        "stray sentinel times."
    )


def _periods(times: pl.Series, first: pl.Series, freq: Frequency) -> tuple[np.ndarray, np.ndarray]:
    """Period number of every time relative to its series' first time, and an off-grid mask."""
    if not freq.is_calendar:
        step = freq.step_in(times.dtype)
        t = times.to_physical().cast(pl.Int64).to_numpy()
        t0 = first.to_physical().cast(pl.Int64).to_numpy()
        delta = t - t0
        return delta // step, (delta % step) != 0
    frame = pl.DataFrame({"t": times, "t0": first})
    if freq.unit == "bd":
        if times.dtype == pl.Date:
            expr = pl.business_day_count(pl.col("t0"), pl.col("t"))
            off = pl.col("t").dt.weekday() > 5
        else:  # datetimes: business days of the (local) dates, at the first row's time of day
            expr = pl.business_day_count(pl.col("t0").dt.date(), pl.col("t").dt.date())
            off = (pl.col("t").dt.weekday() > 5) | (pl.col("t").dt.time() != pl.col("t0").dt.time())
    else:
        per_year = {"mo": 12, "q": 4, "y": 1}[freq.unit]

        def index(c: str) -> pl.Expr:
            col = pl.col(c)
            if per_year == 12:
                return col.dt.year().cast(pl.Int64) * 12 + col.dt.month().cast(pl.Int64) - 1
            if per_year == 4:
                return col.dt.year().cast(pl.Int64) * 4 + col.dt.quarter().cast(pl.Int64) - 1
            return col.dt.year().cast(pl.Int64)

        expr = index("t") - index("t0")
        off = pl.lit(False)
    out = frame.select(expr.cast(pl.Int64).alias("p"), off.alias("off"))
    periods = out["p"].to_numpy()
    off_grid = out["off"].to_numpy() | (periods % freq.n != 0)
    return periods // freq.n, off_grid


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Polars appends long plan dumps)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_time_span(times: pl.Series, time_col: str) -> None:
    """Every time must be in the range the package computes in (int64 steps; Polars'
    calendar for dates and datetimes) and every difference of two times must fit in int64
    (the grid checks subtract them)."""
    physical = times.to_physical()
    low, high = int(physical.min()), int(physical.max())  # type: ignore[arg-type]
    first, last = _physical_range(times.dtype if times.dtype.is_temporal() else pl.Int64)
    if low < first or high > last:
        what = "64-bit signed integer" if times.dtype.is_integer() else str(times.dtype)
        raise DataValidationError(
            f"Time column {time_col!r} holds times out of range: from {times.min()} to "
            f"{times.max()}, where times are computed as {what} values "
            f"({_range_text(times.dtype if times.dtype.is_temporal() else pl.Int64)}). "
            "Check for stray sentinel values (such as 2**64 - 1 or a year 99999 date), or "
            "shift the steps into that range."
        )
    if high - low >= 2**62:
        raise DataValidationError(
            f"Time column {time_col!r} spans from {times.min()} to {times.max()}, too far apart "
            "for regular time steps (expected the first and last times within 4.6e18 of the "
            "column's units). Check for stray sentinel values such as -1 or 2**63 - 1."
        )


def _check_spread(data: pl.DataFrame, id_name: str, value_cols: list[str]) -> None:
    """Each series' spread (max - min) must fit float32 too: scalers divide by it."""
    limit = float(np.finfo(np.float32).max)
    wide = [pl.col(c).cast(pl.Float64) for c in value_cols]
    spread = data.select(
        [(w.max() - w.min()).alias(c) for w, c in zip(wide, value_cols, strict=True)]
    )
    suspects = [
        c for c, v in zip(value_cols, spread.row(0), strict=True) if v is not None and v > limit
    ]
    if not suspects:
        return  # the common case: one pass over the frame, no per-series statistics
    per_series = data.group_by(id_name).agg(
        (pl.col(c).cast(pl.Float64).max() - pl.col(c).cast(pl.Float64).min()).alias(c)
        for c in suspects
    )
    bad = [c for c in suspects if (per_series[c] > limit).any()]
    if bad:
        raise DataValidationError(
            f"Values in {_fmt_list(bad)} spread over more than the float32 range within a "
            "series (max - min > 3.4e38); scaling divides by that spread and training runs in "
            "float32. Rescale those columns (e.g. divide by a constant or take a log)."
        )


def _not_numeric_message(frame: pl.DataFrame | pl.LazyFrame, name: str, dtype: Any) -> str:
    """Why a value column is not numeric, with a few offending values for text columns."""
    fix = (
        f"Convert it, e.g. pl.col({name!r}).cast(pl.Float64, strict=False) (unparseable "
        "values become null), read the file with null_values=[...] for placeholders such as "
        "'n/a', or drop the column from the columns."
    )
    if not (dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)):
        return (
            f"Column {name!r} must be numeric, got {dtype}. Convert it to a number column "
            "(integer, float or boolean) or drop it from the columns."
        )
    if dtype == pl.Null:
        return (
            f"Column {name!r} must be numeric, got Null: every value is missing. Cast it, e.g. "
            f"pl.col({name!r}).cast(pl.Float64), and choose a missing= policy, or drop it."
        )
    text = pl.col(name).cast(pl.String)
    bad = text.filter(text.is_not_null() & text.cast(pl.Float64, strict=False).is_null())
    try:
        lazy = frame.lazy().select(bad.unique(maintain_order=True).head(_MAX_EXAMPLES))
        examples = lazy.collect().to_series().to_list()
    except _READ_ERRORS:
        examples = []
    if examples:
        return (
            f"Column {name!r} must be numeric, got {dtype} with values that are not "
            f"numbers, e.g. {_fmt_list(examples)}. {fix}"
        )
    return f"Column {name!r} must be numeric, got {dtype}. {fix}"


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _series_layout(
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
    _check_time_dtype(times.dtype, times.name or "times")
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


def _check_time_dtype(dtype: pl.DataType, time_col: str) -> None:
    """Refuse a time column that is not Date, Datetime or an integer of at most 64 bits."""
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return
    if dtype.is_integer() and dtype not in (pl.Int128, getattr(pl, "UInt128", pl.Int128)):
        return
    hints = {
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
    name = str(dtype)
    hint = next((h for k, h in hints.items() if name.startswith(k) or k in name), "")
    raise DataValidationError(
        f"Time column {time_col!r} must be Datetime, Date or an integer step, got {dtype}.{hint}"
    )


def infer_frequency(times: pl.Series, offsets: np.ndarray) -> Frequency:
    """Infer the most common step between consecutive times of the same series.

    Parameters
    ----------
    times : pl.Series
        Time column of a frame sorted by (series, time).
    offsets : numpy.ndarray
        Row offsets of the series (length ``n_series + 1``).

    Returns
    -------
    Frequency
        Month, quarter and year steps are recognised from 28-31, 90-92 and 365-366 day steps;
        daily dates with no weekend day and some 3-day steps are business days (``"1bd"``).

    Raises
    ------
    DataValidationError
        When ``times`` is not a polars Series of Date, Datetime or integer (at most 64-bit)
        times without nulls, ``offsets`` are not its series' row offsets, the times decrease
        within a series (unsorted), or no series has two distinct times.

    Examples
    --------
    >>> import datetime as dt, numpy as np, polars as pl
    >>> t = pl.Series([dt.datetime(2024, 1, 1, h) for h in range(5)])
    >>> str(infer_frequency(t, np.array([0, 5])))
    '1h'
    """
    times, offsets = _series_layout(times, offsets, "infer_frequency")
    _check_time_span(times, times.name or "times")
    t = times.to_physical().cast(pl.Int64).to_numpy()
    return _infer_from_diffs(np.diff(t), offsets[1:-1] - 1, times)


_INFER_SAMPLE = 200_000


def _infer_from_diffs(diffs: np.ndarray, cross: np.ndarray, times: pl.Series) -> Frequency:
    """The frequency from consecutive differences (``cross``: positions between two series).

    The mode is taken over an evenly spaced sample of at most 200,000 differences.
    """
    dtype = times.dtype
    if len(diffs) > _INFER_SAMPLE:
        positions = np.linspace(0, len(diffs) - 1, _INFER_SAMPLE).astype(np.int64)
    else:  # (not built before the sampling: 8 bytes per row of a large frame)
        positions = np.arange(len(diffs))
    positions = positions[~np.isin(positions, cross)]
    diffs = diffs[positions]
    if (diffs < 0).any():
        raise DataValidationError(
            "Cannot infer the frequency: the times decrease within a series (they must be "
            "sorted by series, then time). Sort them first, e.g. frame.sort([id_col, time_col]) "
            "(validate_frame sorts), and pass the offsets of the sorted series."
        )
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        raise DataValidationError(
            "Cannot infer the frequency: no series has two distinct time steps. "
            "Pass freq explicitly, e.g. freq='1d'."
        )
    values, counts = np.unique(diffs, return_counts=True)
    mode = int(values[np.argmax(counts)])
    if dtype.is_integer():
        return Frequency(mode, "i")
    if dtype == pl.Date:
        day = 1
    else:
        unit = getattr(dtype, "time_unit", "us") or "us"
        day = int(86_400_000_000 * {"ns": 1000, "us": 1, "ms": 1e-3}[unit])
    if mode % day == 0:
        days = mode // day
        # Every step a whole number of weeks (4 or 13 weeks, not months or quarters): weekly.
        weekly = bool(np.all(diffs % (7 * day) == 0))
        if 28 <= days <= 31 and not weekly:
            return Frequency(1, "mo")
        if 89 <= days <= 92 and not weekly:
            return Frequency(1, "q")
        if days in (365, 366):
            return Frequency(1, "y")
        if days == 1:
            weekend = (times.dt.weekday() > 5).any()
            if not weekend and bool(np.any(diffs == 3 * day)):
                return Frequency(1, "bd")
        if days % 7 == 0:
            return Frequency(days // 7, "w")
        return Frequency(days, "d")
    micros = mode if dtype == pl.Date else mode / ({"ns": 1000, "us": 1, "ms": 1e-3}[unit])
    for name in ("h", "m", "s", "ms", "us"):
        size = _FIXED_UNITS_US[name]
        if micros % size == 0:
            return Frequency(int(micros // size), name)
    return Frequency(int(micros * 1000), "ns")


# --------------------------------------------------------------------------------------------
# Reading frames
# --------------------------------------------------------------------------------------------

_READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
)
"""What collecting a LazyFrame raises when its source is gone, unreadable or malformed."""


def _unreadable(exc: BaseException, what: str, stage: str = "") -> DataValidationError:
    """The error for a frame that cannot be read: ``what`` is e.g. ``"frame"``, ``stage``
    ``"schema"`` when only its schema was asked for."""
    lazy = f"lazy {what}" + ("'s schema" if stage == "schema" else "")
    if isinstance(exc, OSError):
        reason = (
            f"its source cannot be read ({_first_line(exc)}). A LazyFrame reads the file it "
            "scans when it is collected, so the file must still be there: scan it again "
            "(pl.scan_csv / pl.scan_parquet) or .collect() it before the file is moved or deleted"
        )
    else:
        reason = (
            f"{_first_line(exc)}. Check the source it scans (path, format) and the "
            "expressions applied to it"
        )
    return DataValidationError(f"Cannot read the {lazy}: {reason}.")


def _not_a_frame(frame: Any, what: str) -> DataValidationError:
    kind = f"{type(frame).__module__}.{type(frame).__name__}"
    if type(frame).__module__.startswith("pandas"):
        return DataValidationError(
            f"The {what} must be a polars DataFrame or LazyFrame in long format, got a {kind}."
            f" {_pandas_hint(frame)}"
        )
    return DataValidationError(
        f"The {what} must be a polars DataFrame or LazyFrame in long format, got {kind}. "
        "Convert it with pl.DataFrame(...) (pl.from_pandas(...) for pandas)."
    )


def _pandas_hint(frame: Any) -> str:
    """How to convert a pandas object, naming what would be lost or fail on the way."""
    columns = getattr(frame, "columns", None)
    if columns is None:
        return "Convert it to a long frame first, e.g. pl.from_pandas(series.to_frame())."
    notes = []
    if getattr(columns, "nlevels", 1) > 1:
        notes.append("its columns are a MultiIndex: flatten them (frame.columns = [...])")
    duplicated = [str(c) for c in columns[columns.duplicated()]]
    if duplicated:
        notes.append(f"column names {_fmt_list(duplicated)} occur twice: rename them")
    index = frame.index
    if getattr(index, "nlevels", 1) > 1 or any(n is not None for n in index.names):
        names = [n for n in index.names if n is not None]
        notes.append(
            f"its index {_fmt_list(names)} holds data (e.g. the id or time): pl.from_pandas "
            "drops the index, so call frame.reset_index() first"
        )
    mixed = (
        [
            str(c)
            for c in columns[:200]
            if str(frame[c].dtype) == "object" and frame[c].map(type).nunique() > 1
        ]
        if not duplicated and getattr(columns, "nlevels", 1) == 1
        else []
    )
    if mixed:
        notes.append(
            f"the object columns {_fmt_list(mixed)} mix value types (e.g. numbers and text): "
            "convert them, e.g. pd.to_numeric(frame[c], errors='coerce')"
        )
    steps = "; ".join(notes)
    return "Convert it with pl.from_pandas(frame)" + (f", but first: {steps}." if steps else ".")


def frame_schema(frame: Any, *, what: str = "frame") -> pl.Schema:
    """The schema of a polars DataFrame or LazyFrame; a LazyFrame whose source is gone or
    malformed, or any other object, raises :class:`DataValidationError` saying what to do.

    Examples
    --------
    >>> frame_schema(pl.DataFrame({"t": [1]}))["t"]
    Int64
    >>> frame_schema([1, 2])
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The frame must be a polars DataFrame or \
LazyFrame in long format, got builtins.list. Convert it with pl.DataFrame(...) \
(pl.from_pandas(...) for pandas).
    """
    if isinstance(frame, pl.DataFrame):
        return frame.schema
    if not isinstance(frame, pl.LazyFrame):
        raise _not_a_frame(frame, what)
    try:
        return frame.collect_schema()
    except _READ_ERRORS as exc:
        raise _unreadable(exc, what, "schema") from exc


def collect_frame(
    frame: Any, *, what: str = "frame", columns: Sequence[Any] | None = None
) -> pl.DataFrame:
    """``frame`` as a DataFrame (a LazyFrame collected, only ``columns`` when given: names or
    expressions); errors of the source (a scanned file that was deleted, a malformed file, an
    invalid expression) and non-polars objects raise :class:`DataValidationError`.

    Examples
    --------
    >>> collect_frame(pl.LazyFrame({"t": [1], "y": [2.0]}), columns=["y"]).columns
    ['y']
    """
    frame_schema(frame, what=what)
    try:
        if isinstance(frame, pl.LazyFrame):
            return (frame if columns is None else frame.select(columns)).collect()
        return frame if columns is None else frame.select(columns)
    except _READ_ERRORS as exc:
        if isinstance(frame, pl.DataFrame):
            raise DataValidationError(
                f"Cannot select the columns of the {what}: {_first_line(exc)}."
            ) from exc
        raise _unreadable(exc, what) from exc


def _text_like(dtype: Any) -> bool:
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical)


def _compatible(expected: str, found: pl.DataType, role: str) -> bool:
    """Whether a column of dtype ``found`` can stand for one trained as ``expected``: the
    same dtype; any numeric width for numbers; text, Categorical or Enum for a text id."""
    if str(found) == expected:
        return True
    if role == "time":  # integer steps of any width; dates and datetimes exactly
        return expected.startswith(("Int", "UInt")) and found.is_integer()
    numeric = expected.startswith(("Float", "Int", "UInt", "Boolean", "Decimal"))
    if numeric and found.is_numeric():
        return True
    text = expected.startswith(("String", "Categorical", "Enum"))
    return role == "id" and text and _text_like(found)


def check_schema(
    frame: Any,
    expected: dict[str, str],
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    what: str = "frame",
) -> pl.Schema:
    """Check that ``frame`` has the columns of ``expected`` (name to dtype name, e.g. a fitted
    model's ``schema_``) with compatible dtypes, and return its schema.

    Numeric columns may change width (Int64 for Float32 ...); the id column ``id_col`` may be
    text, Categorical or Enum for any of them (ids are matched by value); the time column
    ``time_col`` may change only its integer width (a float is no time step); other dtypes,
    time zones and time units must be the same.

    Examples
    --------
    >>> check_schema(pl.DataFrame({"t": [1], "y": [1]}), {"t": "Int64", "y": "Float32"})["y"]
    Int64
    """
    schema = frame_schema(frame, what=what)
    missing = [c for c in expected if c not in schema]
    if missing:
        raise DataValidationError(
            f"The {what} lacks the columns {missing} that the model was trained with "
            f"(expected {list(expected)}, got {list(schema.names())}). Rename or add them, "
            "or refit the model on the new columns."
        )
    roles = {id_col: "id", time_col: "time"}
    changed = {
        c: (t, str(schema[c]))
        for c, t in expected.items()
        if not _compatible(t, schema[c], roles.get(c, ""))
    }
    if changed:
        detail = ", ".join(f"{c}: trained on {a}, got {b}" for c, (a, b) in changed.items())
        zone = re.compile(r"time_zone=([^)]*)")
        zones = any(
            zone.search(a) and zone.search(b) and zone.findall(a) != zone.findall(b)
            for a, b in changed.values()
        )
        hint = (
            " For time zones: .dt.replace_time_zone(...) sets or drops one, "
            ".dt.convert_time_zone(...) converts between two."
            if zones
            else ""
        )
        raise DataValidationError(
            f"Column dtypes differ from training ({detail}). Cast them to the training dtypes, "
            f"e.g. pl.col(name).cast(...), or refit the model on the new dtypes.{hint}"
        )
    return schema


def check_roles(
    *,
    target: Any,
    time_col: Any,
    id_col: Any = None,
    covariates: Any = None,
    future_covariates: Any = None,
) -> dict[str, tuple[str, ...]]:
    """Check the column arguments (parameter table) and that no column has two roles.

    Returns
    -------
    dict
        Role name to column names: ``target``, ``covariate``, ``future covariate``, ``id``
        (when given) and ``time``.

    Examples
    --------
    >>> check_roles(target="y", time_col="t", covariates="y")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Column 'y' is used both as target and as \
covariate. Each column can have one role only: pass target=..., covariates=... without it.
    """
    check = _validation.check
    if target is None:
        raise DataValidationError(
            "target is required: the name of the column to forecast (or a list of names), "
            "e.g. target='close'."
        )
    roles = {
        "target": check("target", target),
        "covariate": check("covariates", covariates) or (),
        "future covariate": check("future_covariates", future_covariates) or (),
    }
    if check("id_col", id_col) is not None:
        roles["id"] = (id_col,)
    roles["time"] = (check("time_col", time_col),)
    arguments = {
        "target": "target",
        "covariate": "covariates",
        "future covariate": "future_covariates",
        "id": "id_col",
        "time": "time_col",
    }
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen:
                raise DataValidationError(
                    f"Column {name!r} is used both as {seen[name]} and as {role}. Each column "
                    f"can have one role only: pass {arguments[seen[name]]}=..., "
                    f"{arguments[role]}=... without it."
                )
            seen[name] = role
    return roles


# --------------------------------------------------------------------------------------------
# Time points
# --------------------------------------------------------------------------------------------


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


def _plain_time(value: Any) -> Any:
    """A numpy scalar, polars literal expression or 1-value Series as a Python value."""
    if isinstance(value, pl.Expr):
        try:
            value = pl.select(value).to_series()
        except _READ_ERRORS as exc:
            raise ValueError(
                f"it is an expression that is not a literal ({_first_line(exc)})"
            ) from exc
    if isinstance(value, pl.Series):
        if len(value) != 1:
            raise ValueError(f"it holds {len(value)} values, not one")
        value = value.item()
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
    zone, unit = dtype.time_zone, dtype.time_unit or "us"
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    series = pl.Series([value])
    if value.tzinfo is None and zone is not None:
        try:
            series = series.dt.replace_time_zone(zone, non_existent="raise", ambiguous="raise")
        except pl.exceptions.PolarsError as exc:
            raise ValueError(
                f"it does not name one instant in the time zone {zone} ({_first_line(exc)}); "
                "pass a datetime with its UTC offset"
            ) from exc
    elif value.tzinfo is not None:
        if zone is None:
            raise ValueError(
                "it has a time zone but the time column has none: pass a naive datetime on "
                "the column's clock, e.g. value.astimezone(zone).replace(tzinfo=None)"
            )
        series = series.dt.convert_time_zone(zone)
    point = series.cast(pl.Datetime(unit, zone))
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
    if isinstance(value, list | tuple | set | dict | np.ndarray):
        raise ValueError("it takes one time point, not a collection")
    point = _plain_time(value)
    if isinstance(point, str):
        if dtype.is_integer():
            raise ValueError("text is not an integer step")
        point = _parse_iso(point)
    if isinstance(point, bool):
        raise ValueError("a bool is not a time")
    if dtype.is_integer():
        if not isinstance(point, int):
            raise ValueError(f"the column holds integer steps; a {type(point).__name__} is not one")
        low, high = _integer_range(dtype)
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


def _integer_range(dtype: pl.DataType) -> tuple[int, int]:
    try:
        info = np.iinfo(str(dtype).lower())
    except TypeError:  # 128-bit integers
        bits = 128
        return (0, 2**bits - 1) if str(dtype).startswith("U") else (-(2**127), 2**127 - 1)
    return int(info.min), int(info.max)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _missing_columns_error(missing: list[str], available: list[str], role: str) -> str:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, available, n=1)
        if close:
            hints.append(f"{name!r} (did you mean {close[0]!r}?)")
        else:
            hints.append(repr(name))
    delimiter = ""
    for separator, label in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
        if any(separator in column for column in available):
            delimiter = (
                f" A column name contains {label}: the file looks {label}-delimited but was "
                f"read as comma-separated; read it with separator={separator!r} (in a pipeline "
                "spec: source.separator)."
            )
            break
    return (
        f"The frame has no {role} column {', '.join(hints)}. "
        f"Available columns: {_fmt_list(available, 20)}. "
        f"Pass the right column names or rename the frame's columns.{delimiter}"
    )


def _examples(frame: pl.DataFrame, mask: pl.Series | np.ndarray, id_col: str, time_col: str) -> str:
    rows = frame.filter(pl.Series(mask)).select(id_col, time_col).head(_MAX_EXAMPLES)
    parts = []
    for key, ts in rows.iter_rows():
        parts.append(f"({time_col}={ts})" if id_col == SERIES_ID else f"({key!r}, {ts})")
    return ", ".join(parts)


def _in_frame(what: str) -> str:
    return "" if what == "frame" else f" of the {what}"


def check_unique_keys(frame: pl.DataFrame, keys: Sequence[str], *, what: str = "frame") -> None:
    """Refuse a frame with more than one row per key (e.g. (id, time)), naming a few.

    Used for every frame that is matched on its keys without going through
    :func:`validate_frame` (which finds duplicates while it sorts): the ``future`` frame of
    ``predict`` and the frames of :mod:`forecaster.evaluation.metrics`.

    Examples
    --------
    >>> check_unique_keys(pl.DataFrame({"t": [1, 1], "y": [1.0, 2.0]}), ["t"], what="actual frame")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: 2 rows of the actual frame share their (t), \
e.g. (1,). Expected one row per (t): aggregate or drop the duplicates first, e.g. \
frame.unique(subset=['t'], keep='last').
    """
    keys = list(keys)
    if not keys or frame.height < 2:
        return
    repeated = frame.select(pl.struct(keys).is_duplicated()).to_series()
    if not repeated.any():
        return
    examples = frame.filter(repeated).select(keys).unique(maintain_order=True).head(3).rows()
    label = ", ".join(keys)
    raise DataValidationError(
        f"{int(repeated.sum())} rows{_in_frame(what)} share their ({label}), e.g. "
        f"{', '.join(map(repr, examples))}. Expected one row per ({label}): aggregate or drop "
        f"the duplicates first, e.g. frame.unique(subset={keys}, keep='last')."
    )


def check_values(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    id_name: str,
    time_col: str,
    what: str = "frame",
    missing: bool = True,
    fix: str = "",
) -> None:
    """Refuse infinite values and, with ``missing=True``, null or NaN values in ``columns``,
    naming the columns and a few (series, time) where they are.

    The one check of value columns: :func:`validate_frame` (infinities; its ``missing=``
    policy handles the rest), the ``future`` frame of ``predict`` and the actual values of
    :func:`forecaster.evaluation.backtest.evaluate`. ``id_name`` is ``"__series__"`` for a single
    series.

    Examples
    --------
    >>> frame = pl.DataFrame({"__series__": [0, 0], "t": [1, 2], "x": [1.0, float("nan")]})
    >>> check_values(frame, ["x"], id_name="__series__", time_col="t", what="future frame")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Missing values (NaN or null) in {'x': 1} of \
the future frame, e.g. at (t=2). Expected a number at every step.
    """
    columns = list(columns)
    floats = [c for c in columns if frame.schema[c].is_float()]
    if floats:
        inf_counts = frame.select(pl.col(floats).is_infinite().sum()).row(0)
        if any(inf_counts):
            bad = [c for c, n in zip(floats, inf_counts, strict=True) if n]
            mask = frame.select(pl.any_horizontal(pl.col(bad).is_infinite())).to_series()
            raise DataValidationError(
                f"Infinite values in {_fmt_list(bad)}{_in_frame(what)}: e.g. at "
                f"{_examples(frame, mask, id_name, time_col)}. Expected finite numbers. "
                + (
                    fix
                    or "Replace them (e.g. pl.when(pl.col(c).is_infinite()).then(None)) and "
                    "choose a missing= policy, or fix the source."
                )
            )
    if not missing:
        return
    nan = [pl.col(c).is_nan() if c in floats else pl.lit(False) for c in columns]
    holes = [(pl.col(c).is_null() | n).alias(c) for c, n in zip(columns, nan, strict=True)]
    flags = frame.select(holes)
    counts = flags.sum().row(0)
    if any(counts):
        bad = {c: int(n) for c, n in zip(columns, counts, strict=True) if n}
        mask = flags.select(pl.any_horizontal(list(bad))).to_series()
        raise DataValidationError(
            f"Missing values (NaN or null) in {bad}{_in_frame(what)}, e.g. at "
            f"{_examples(frame, mask, id_name, time_col)}. "
            + (fix or "Expected a number at every step.")
        )


def validate_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str],
    time_col: str,
    id_col: str | None = None,
    covariates: str | Sequence[str] | None = None,
    future_covariates: str | Sequence[str] | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> tuple[pl.DataFrame, Frequency]:
    """Check a long frame and return it cleaned, sorted and cast to float32.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        Long format: one row per (series, time step). Only the named columns are read.
    target : str or sequence of str
        Column(s) to forecast.
    time_col : str
        Datetime, date or integer time step column.
    id_col : str, optional
        Series identifier. When ``None`` the frame holds a single series.
    covariates : str or sequence of str, optional
        Past-observed covariates (known up to the forecast origin only).
    future_covariates : str or sequence of str, optional
        Future-known covariates such as calendar features (known over the horizon too).
    freq : str or int, default "auto"
        The sampling frequency (see :class:`Frequency` for the grammar); ``"auto"`` infers the
        most common step. A declared frequency states how the data are sampled, it does not
        resample them: a frame in which no two consecutive rows of any series are one step
        apart (weekly or monthly data with ``freq="1d"``; a daily model's ``predict`` on
        weekly data) is refused, whatever ``missing`` is.
    missing : {"error", "ffill", "zero", "interpolate"}, default "error"
        Policy for gaps in the time grid and NaN / null values. ``"ffill"`` and
        ``"interpolate"`` drop a series' leading rows until every column is observed (there is
        nothing to fill from), then fill forward / linearly (trailing values forward).
        ``"zero"`` fills with 0. Infinite values are always an error. Observed rows keep
        their times; a missing step gets the series' first time moved forward by its number
        of steps (month steps on the series' day of the month: month-ends stay month-ends,
        see :func:`future_times`).

    Returns
    -------
    frame : polars.DataFrame
        Columns ``[id, time, *targets, *covariates, *future_covariates]``, sorted by
        (id, time), values as Float32, on a regular grid of ``freq``. When ``id_col`` is None the
        id column is a constant named ``"__series__"``.
    freq : Frequency
        The declared or inferred frequency.

    Raises
    ------
    DataValidationError
        With a message saying what was expected, what was found (a few offending ids and
        timestamps) and how to fix it.

    Examples
    --------
    >>> import polars as pl
    >>> raw = pl.DataFrame({"t": [3, 1, 2], "y": [3.0, 1.0, None]})
    >>> clean, freq = validate_frame(raw, target="y", time_col="t", missing="interpolate")
    >>> clean["y"].to_list(), str(freq)
    ([1.0, 2.0, 3.0], '1i')
    """
    roles = check_roles(
        target=target,
        time_col=time_col,
        id_col=id_col,
        covariates=covariates,
        future_covariates=future_covariates,
    )
    _validation.check("missing", missing)
    value_cols = [*roles["target"], *roles["covariate"], *roles["future covariate"]]
    if id_col is None and SERIES_ID in (time_col, *value_cols):
        raise DataValidationError(
            f"Column name {SERIES_ID!r} is reserved: it names the series of a frame without an "
            f"id column (id_col=None). Rename the column, e.g. frame.rename({{{SERIES_ID!r}: "
            "'value'}), or pass it as id_col if it identifies the series."
        )
    schema = frame_schema(frame)
    if isinstance(frame, pl.DataFrame) and frame.height == 0:
        raise DataValidationError(
            f"The frame is empty (0 rows; columns {_fmt_list(frame.columns, 20)}). Expected "
            "at least lookback + horizon rows per series: check the file (a header without "
            "data rows?) or the filters applied before."
        )
    available = list(schema.names())
    for role, names in roles.items():
        missing_cols = [c for c in names if c not in schema]
        if missing_cols:
            raise DataValidationError(_missing_columns_error(missing_cols, available, role))

    _check_time_dtype(schema[time_col], time_col)
    for name in value_cols:
        dtype = schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise DataValidationError(_not_numeric_message(frame, name, dtype))

    if id_col is not None and (schema[id_col].is_nested() or schema[id_col] == pl.Object):
        raise DataValidationError(
            f"Id column {id_col!r} must hold one text, number or date per row, got "
            f"{schema[id_col]}. Build a text id first, e.g. pl.col({id_col!r}).cast(pl.String) "
            "or pl.concat_str(...) of the key columns."
        )
    id_name = id_col if id_col is not None else SERIES_ID
    selected = [pl.col(time_col), *(pl.col(c) for c in value_cols)]
    selected.insert(
        0, pl.col(id_col) if id_col is not None else pl.lit(0, pl.UInt8).alias(SERIES_ID)
    )
    data = collect_frame(frame, columns=selected)

    if data.height == 0:
        raise DataValidationError(
            "The frame is empty (0 rows). Expected at least lookback + horizon rows per series."
        )
    null_id = data[id_name].null_count()
    if data[id_name].dtype.is_float():
        null_id += int(data[id_name].is_nan().sum())
    if null_id:
        raise DataValidationError(
            f"Id column {id_col!r} has {null_id} null or NaN values. Every row needs a series "
            "id: fill or drop those rows (e.g. frame.drop_nulls(id_col).drop_nans(id_col))."
        )
    null_time = data[time_col].null_count()
    if null_time:
        raise DataValidationError(
            f"Time column {time_col!r} has {null_time} null values. Every row needs a time: "
            "fill or drop those rows."
        )
    _check_time_span(data[time_col], time_col)

    # Cast values to float (Float32 and Float64 stay as they are until the end), NaN -> null,
    # reject infinities and values beyond the float32 range.
    schema = data.schema
    floats = [c for c in value_cols if schema[c].is_float()]
    others = [c for c in value_cols if not schema[c].is_float()]
    if others:
        data = data.with_columns(pl.col(others).cast(pl.Float64))
    if floats:
        check_values(data, floats, id_name=id_name, time_col=time_col, missing=False)
        nan_cols = [
            c
            for c, n in zip(floats, data.select(pl.col(floats).is_nan().sum()).row(0), strict=True)
            if n
        ]
        if nan_cols:
            data = data.with_columns(pl.col(nan_cols).fill_nan(None))
    wide = [c for c in value_cols if data.schema[c] == pl.Float64]
    if wide:
        limit = float(np.finfo(np.float32).max)
        too_big = data.select((pl.col(wide).abs() > limit).sum()).row(0)
        if any(too_big):
            bad = [c for c, n in zip(wide, too_big, strict=True) if n]
            raise DataValidationError(
                f"Values in {_fmt_list(bad)} exceed the float32 range (±3.4e38) used for "
                "training. Rescale those columns (e.g. divide by a constant or take a log)."
            )
    _check_spread(data, id_name, value_cols)

    # Rows must be grouped by series with increasing times; sort only when they are not.
    runs = data[id_name].rle().struct.unnest()
    t = data[time_col].to_physical().cast(pl.Int64).to_numpy()
    boundary = np.zeros(len(t), dtype=bool)
    boundary[np.cumsum(runs["len"].to_numpy())[:-1]] = True
    backwards = np.zeros(len(t), dtype=bool)
    backwards[1:] = (t[1:] < t[:-1]) & ~boundary[1:]
    unsorted = runs["value"].n_unique() != runs.height or backwards.any()
    del boundary, backwards
    if unsorted:
        data = data.sort([id_name, time_col])
        runs = data[id_name].rle().struct.unnest()
        t = data[time_col].to_physical().cast(pl.Int64).to_numpy()
    times = data[time_col]
    lengths = runs["len"].to_numpy().astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    starts = offsets[:-1]
    # Time-zone aware datetimes: days and weeks follow the local calendar (a day across a
    # daylight-saving change lasts 23 or 25 hours), so those grids use the wall-clock times.
    zoned = isinstance(times.dtype, pl.Datetime) and times.dtype.time_zone is not None
    wall = times.dt.replace_time_zone(None).to_physical().cast(pl.Int64).to_numpy() if zoned else t

    # Differences between consecutive rows; those between two series are not meaningful.
    diffs = np.diff(t)
    cross = offsets[1:-1] - 1
    within = np.ones(len(diffs), dtype=bool)
    within[cross] = False
    duplicate_rows = np.flatnonzero((diffs == 0) & within) + 1
    if duplicate_rows.size:
        raise DataValidationError(
            f"{duplicate_rows.size} duplicate ({'id, ' if id_col else ''}time) rows, e.g. "
            f"{_examples(data, _mask(len(t), duplicate_rows), id_name, time_col)}. Expected one "
            "row per series and time step. Aggregate or drop duplicates first, e.g. "
            "frame.unique(subset=[...], keep='last')."
        )

    inferred = freq is None or (isinstance(freq, str) and freq.strip().lower() == "auto")
    if inferred:
        frequency = _infer_from_diffs(np.diff(wall) if zoned else diffs, cross, times)
    else:
        frequency = Frequency.parse(freq)
    frequency.check_dtype(times.dtype, time_col)

    periods: np.ndarray | None = None
    if frequency.is_calendar:
        first = times.gather(np.repeat(starts, lengths))
        periods, off_grid = _periods(times, first, frequency)
        del first
        steps = np.diff(periods)
        # Two rows of a series in the same period (e.g. two dates in one month) are off-grid.
        off_grid[1:] |= (steps == 0) & within
        off_rows = np.flatnonzero(off_grid)
        gap_rows = np.flatnonzero((steps > 1) & within)
        n_missing = int((steps[gap_rows] - 1).sum())
        counts = steps[within]
    else:  # fixed step: check the differences only, no per-row period array
        step = frequency.step_in(times.dtype)
        if zoned and frequency.unit in ("d", "w"):
            t = wall
            diffs = np.diff(t)
        diffs[cross] = step
        irregular = np.flatnonzero(diffs != step)
        odd = diffs[irregular]
        off_rows = irregular[odd % step != 0] + 1
        gap_rows = irregular[(odd % step == 0) & (odd > step)]
        n_missing = int((diffs[gap_rows] // step - 1).sum())
        counts = diffs[within] // step
    del diffs, within
    if off_rows.size:
        raise DataValidationError(
            f"{off_rows.size} timestamps are off the regular {frequency} grid that starts "
            f"at each series' first time, e.g. "
            f"{_examples(data, _mask(len(t), off_rows), id_name, time_col)}. "
            "Expected evenly spaced times. Pass the right freq= or resample the data first "
            "(e.g. frame.group_by_dynamic(...))."
        )
    if not inferred:
        _check_own_step(counts, frequency, id_col)
    del counts
    gap = gap_rows.size > 0
    null_counts = data.select(pl.col(value_cols).null_count()).row(0)

    if missing == "error":
        if gap:
            raise DataValidationError(
                f"{n_missing} time steps are missing from the regular {frequency} grid "
                f"(gaps after {_examples(data, _mask(len(t), gap_rows), id_name, time_col)}). "
                "Pass missing='ffill', 'zero' or 'interpolate' to fill them, or a different freq=."
            )
        if any(null_counts):
            bad = {c: n for c, n in zip(value_cols, null_counts, strict=True) if n}
            mask = data.select(pl.any_horizontal(pl.col(list(bad)).is_null())).to_series()
            raise DataValidationError(
                f"Missing values (NaN or null) in {bad}, e.g. at "
                f"{_examples(data, mask, id_name, time_col)}. Pass missing='ffill', 'zero' or "
                "'interpolate' to fill them, or clean the data first."
            )
    elif gap or any(null_counts):
        if periods is None:
            step = frequency.step_in(times.dtype)
            periods = (t - np.repeat(t[starts], lengths)) // step
        data = _fill(data, id_name, time_col, value_cols, periods, offsets, frequency, missing)

    data = data.with_columns(pl.col(value_cols).cast(pl.Float32))
    return data, frequency


def _simplest(freq: Frequency) -> Frequency:
    """A fixed duration in its largest whole unit (``1440m`` is ``1d``); others unchanged."""
    if freq.unit not in _FIXED_UNITS_US or freq.unit == "ns":
        return freq
    micros = freq.n * _FIXED_UNITS_US[freq.unit]
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        if micros % _FIXED_UNITS_US[unit] == 0:
            return Frequency(int(micros // _FIXED_UNITS_US[unit]), unit)
    return freq


def _check_own_step(counts: np.ndarray, freq: Frequency, id_col: str | None) -> None:
    """Refuse a declared ``freq`` finer than every step of the frame: when no two consecutive
    rows of any series are one period of ``freq`` apart (``counts``: the steps between
    consecutive rows, in periods), the data were sampled at a coarser frequency and filling
    would resample them (a weekly or monthly frame to days) instead of filling gaps. A frame
    of that frequency with gaps has steps of one period somewhere and passes."""
    own = int(counts.min()) if counts.size else 1
    if own <= 1:
        return
    step = _simplest(Frequency(own * freq.n, freq.unit))
    where = "any series" if id_col is not None else "the series"
    if np.all(counts % own == 0):
        fix = f"Pass freq={str(step)!r} (or 'auto'), or resample the data to {freq} first"
    else:
        fix = (
            f"Pass the data's own frequency (or freq='auto'), or resample the data to {freq} first"
        )
    raise DataValidationError(
        f"The data are not sampled every {freq}: no two consecutive rows of {where} are one "
        f"{freq} step apart (the closest are {step} apart), but freq={str(freq)!r}. freq states "
        "how the data are sampled: filling (missing=...) fills gaps, it does not resample. "
        f"{fix} (e.g. frame.upsample(time_col, every=..., group_by=id_col), then fill). A fitted "
        f"model (predict, score) forecasts {freq} steps: give it data sampled every {freq}, or "
        "refit it on these data."
    )


def _reindex(
    data: pl.DataFrame,
    id_name: str,
    time_col: str,
    periods: np.ndarray,
    offsets: np.ndarray,
    span: np.ndarray,
    freq: Frequency,
    policy: str,
) -> pl.DataFrame:
    """Every series on its full grid of ``span`` periods: observed rows where they are (with
    their own times), null values at the missing periods, whose times are the series' first
    time moved forward by those periods (:meth:`Frequency.offset`, on the series' day of the
    month). Positions are computed with NumPy: no temporary columns, no join."""
    starts = np.concatenate([[0], np.cumsum(span)[:-1]])
    series = np.repeat(np.arange(len(span), dtype=np.int64), np.diff(offsets))
    positions = starts[series] + periods
    source = np.full(int(span.sum()), -1, dtype=np.int64)
    source[positions] = np.arange(len(periods), dtype=np.int64)
    holes = np.flatnonzero(source < 0)
    index = pl.select(
        pl.when(pl.lit(pl.Series(source)) >= 0).then(pl.lit(pl.Series(source)))
    ).to_series()
    filled = data.select(pl.all().gather(index))
    hole_series = np.searchsorted(starts, holes, side="right") - 1
    first = data[time_col].gather(offsets[:-1])
    days = _anchor_days(data[time_col], offsets) if freq.unit in _MONTHS_PER_UNIT else None
    try:
        times = _stepped_times(
            first.gather(hole_series),
            holes - starts[hole_series],
            freq,
            None if days is None else days[hole_series],
        )
    except _READ_ERRORS as exc:
        raise DataValidationError(
            f"Cannot build the regular {freq} grid to fill the gaps (missing={policy!r}): "
            f"{_first_line(exc)}. Fill or resample the data first, or use a time column "
            "without a time zone (e.g. in UTC)."
        ) from exc
    ids = data[id_name].gather(offsets[:-1]).gather(np.repeat(np.arange(len(span)), span))
    return filled.with_columns(ids, filled[time_col].scatter(holes, times))


def _fill(
    data: pl.DataFrame,
    id_name: str,
    time_col: str,
    value_cols: list[str],
    periods: np.ndarray,
    offsets: np.ndarray,
    freq: Frequency,
    policy: str,
) -> pl.DataFrame:
    """Reindex every series to its full regular grid and fill gaps and nulls by ``policy``."""
    lengths = np.diff(offsets)
    span = periods[offsets[1:] - 1] + 1
    total = int(span.sum())
    if total > max(_MAX_FILL_GROWTH * len(periods), _MAX_FILL_ROWS):
        widest = int(np.argmax(span - lengths))
        raise DataValidationError(
            f"Filling the gaps (missing={policy!r}) would create {total:,} rows on the {freq} "
            f"grid from {len(periods):,} observed ones; e.g. series "
            f"{data[id_name][int(offsets[widest])]!r} spans {int(span[widest]):,} steps with "
            f"only {int(lengths[widest]):,} observed. Expected mostly regular data: check the "
            "time column (units, stray far-off timestamps) and freq=, or resample the data first."
        )
    if (span != lengths).any():
        data = _reindex(data, id_name, time_col, periods, offsets, span, freq, policy)
    if policy == "zero":
        return data.with_columns(pl.col(value_cols).fill_null(0.0))
    complete = pl.all_horizontal(pl.col(value_cols).is_not_null())
    started = complete.cast(pl.Int32).cum_max().over(id_name).cast(pl.Boolean)
    dropped = data.filter(~started)
    data = data.filter(started)
    if data.height == 0:
        raise DataValidationError(
            "No series has a row where every target and covariate is observed, so there is "
            f"nothing to fill from (missing={policy!r}). Check the columns or use missing='zero'."
        )
    if dropped.height:
        warnings.warn(
            f"Dropped {dropped.height} leading rows with missing values before each series' "
            f"first complete observation (missing={policy!r} cannot fill before it).",
            ForecasterWarning,
            stacklevel=3,
        )
    if policy == "ffill":
        filled = [pl.col(c).forward_fill().over(id_name) for c in value_cols]
    else:
        filled = [pl.col(c).interpolate().forward_fill().over(id_name) for c in value_cols]
    return data.with_columns(filled)


# --------------------------------------------------------------------------------------------
# Panel
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Panel:
    """All series of a long frame in one contiguous float32 array.

    Row ``r`` of :attr:`values` belongs to series ``i`` when ``offsets[i] <= r < offsets[i+1]``;
    rows of one series are consecutive and in time order, on a regular grid of :attr:`freq`.
    Columns are ``[*targets, *covariates, *future_covariates]``.

    Build it with :meth:`from_frame`. Batches of windows are gathered from it by index
    (see :mod:`forecaster.data.windows`); it is never expanded into all windows.

    Attributes
    ----------
    values : numpy.ndarray
        float32 array of shape ``(total_rows, n_features)``, C-contiguous.
    offsets : numpy.ndarray
        int64 array of shape ``(n_series + 1,)``.
    keys : polars.DataFrame
        One row per series: the id column (``"__series__"`` for a single unnamed series).
    time : polars.Series
        The timestamp of every row of ``values``.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a"] * 3 + ["b"] * 2, "t": [1, 2, 3, 1, 2],
    ...                       "y": [1.0, 2.0, 3.0, 10.0, 20.0]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> panel.n_series, panel.offsets.tolist(), panel.values[:, 0].tolist()
    (2, [0, 3, 5], [1.0, 2.0, 3.0, 10.0, 20.0])
    """

    values: np.ndarray
    offsets: np.ndarray
    keys: pl.DataFrame
    time: pl.Series
    id_col: str | None
    time_col: str
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    future_covariates: tuple[str, ...]
    freq: Frequency
    _device_values: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame | pl.LazyFrame,
        *,
        target: str | Sequence[str],
        time_col: str,
        id_col: str | None = None,
        covariates: str | Sequence[str] | None = None,
        future_covariates: str | Sequence[str] | None = None,
        freq: str | int | None = "auto",
        missing: str = "error",
        min_length: int = 1,
        length_reason: str = "lookback + horizon",
    ) -> Panel:
        """Validate a long frame (see :func:`validate_frame`) and pack it.

        Parameters
        ----------
        min_length : int, default 1
            An integer >= 1 (numpy integers too; anything else is a
            :class:`~forecaster.exceptions.DataValidationError`). Series with fewer rows (e.g.
            ``lookback + horizon``) are dropped with a
            :class:`~forecaster.exceptions.ForecasterWarning` that names them; an error is
            raised when none remain.
        length_reason : str, default "lookback + horizon"
            What ``min_length`` is, for those messages (e.g. ``"lookback"`` when predicting).
        **others
            As in :func:`validate_frame`.
        """
        min_length = _validation.check("min_length", min_length)
        if not isinstance(length_reason, str):
            raise DataValidationError(
                f"length_reason must be text (what min_length is, e.g. 'lookback'), got "
                f"{describe_value(length_reason)}."
            )
        data, frequency = validate_frame(
            frame,
            target=target,
            time_col=time_col,
            id_col=id_col,
            covariates=covariates,
            future_covariates=future_covariates,
            freq=freq,
            missing=missing,
        )
        id_name = id_col if id_col is not None else SERIES_ID
        runs = data[id_name].rle().struct.unnest()
        lengths = runs["len"].to_numpy().astype(np.int64)
        keys = pl.DataFrame(runs["value"].alias(id_name))
        if (lengths < min_length).any():
            short = lengths < min_length
            names = keys.filter(pl.Series(short))[id_name].to_list()
            if short.all():
                raise DataValidationError(
                    f"Every series is shorter than the {min_length} rows needed "
                    f"({length_reason}); the longest has {int(lengths.max())} rows. Use a "
                    f"shorter {length_reason.replace(' + ', ' or ')}, or provide more history."
                )
            label = "series" if id_col is not None else "the series"
            warnings.warn(
                f"Dropped {int(short.sum())} {label} shorter than {min_length} rows "
                f"({length_reason}): {_fmt_list(names, 10)}.",
                ForecasterWarning,
                stacklevel=2,
            )
            keep_rows = np.repeat(~short, lengths)
            data = data.filter(pl.Series(keep_rows))
            keys = keys.filter(pl.Series(~short))
            lengths = lengths[~short]
        value_cols = [*_as_tuple(target), *_as_tuple(covariates), *_as_tuple(future_covariates)]
        values = np.require(data.select(value_cols).to_numpy(), np.float32, ["C", "W"])
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(
            values=values,
            offsets=offsets,
            keys=keys,
            time=data[time_col],
            id_col=id_col,
            time_col=time_col,
            targets=_as_tuple(target),
            covariates=_as_tuple(covariates),
            future_covariates=_as_tuple(future_covariates),
            freq=frequency,
        )

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self.offsets) - 1

    @property
    def n_features(self) -> int:
        """Number of value columns (targets + covariates + future covariates)."""
        return self.values.shape[1]

    @property
    def n_targets(self) -> int:
        """Number of target columns (the first columns of :attr:`values`)."""
        return len(self.targets)

    @property
    def n_future(self) -> int:
        """Number of future-known covariate columns (the last columns of :attr:`values`)."""
        return len(self.future_covariates)

    @property
    def columns(self) -> list[str]:
        """Names of the columns of :attr:`values`."""
        return [*self.targets, *self.covariates, *self.future_covariates]

    @property
    def lengths(self) -> np.ndarray:
        """Number of rows of every series."""
        return np.diff(self.offsets)

    @property
    def id_name(self) -> str:
        """Name of the id column in :attr:`keys` (``"__series__"`` for an unnamed series)."""
        return self.id_col if self.id_col is not None else SERIES_ID

    def series_of_rows(self) -> np.ndarray:
        """Series number of every row (int64, length ``total_rows``)."""
        return np.repeat(np.arange(self.n_series, dtype=np.int64), self.lengths)

    def values_on(self, device: str | torch.device) -> torch.Tensor:
        """The values as a tensor on ``device``, moved there once and cached.

        On CPU the tensor shares memory with :attr:`values` (no copy). ``device`` is checked
        by :func:`forecaster._validation.resolve_device` (``"auto"``, ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, a ``torch.device``).
        """
        device = _validation.resolve_device(device)
        key = str(device)
        if key not in self._device_values:
            tensor = torch.from_numpy(self.values)
            self._device_values[key] = tensor if device.type == "cpu" else tensor.to(device)
        return self._device_values[key]

    def future_times(self, horizon: int) -> pl.Series:
        """The ``horizon`` times after each series' last row, series after series (see
        :func:`future_times`, the one rule for times beyond the data).

        Examples
        --------
        >>> f = pl.DataFrame({"t": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
        >>> Panel.from_frame(f, target="y", time_col="t").future_times(2).to_list()
        [4, 5]
        """
        return future_times(self.time, self.offsets, self.freq, horizon)

    def to_frame(self) -> pl.DataFrame:
        """The panel as a long frame (id, time, value columns) again.

        Examples
        --------
        >>> import polars as pl
        >>> f = pl.DataFrame({"t": [1, 2], "y": [1.0, 2.0]})
        >>> Panel.from_frame(f, target="y", time_col="t").to_frame().columns
        ['t', 'y']
        """
        ids = self.keys[self.id_name].gather(self.series_of_rows())
        frame = pl.DataFrame([ids, self.time.alias(self.time_col)])
        frame = frame.with_columns(
            pl.Series(name, self.values[:, j]) for j, name in enumerate(self.columns)
        )
        return frame if self.id_col is not None else frame.drop(SERIES_ID)

    def __repr__(self) -> str:
        lengths = self.lengths
        return (
            f"Panel(n_series={self.n_series}, rows={int(self.offsets[-1])}, "
            f"features={self.columns}, freq='{self.freq}', "
            f"length min/max={int(lengths.min())}/{int(lengths.max())})"
        )


# --------------------------------------------------------------------------------------------
# calendar features
# --------------------------------------------------------------------------------------------

CALENDAR_FEATURES = _validation.CALENDAR_FEATURES
"""Calendar features, each encoded as a sine/cosine pair of its position in its cycle:
``minute`` of the hour, ``hour`` of the day (time of day, minutes included), ``dayofweek``
(hours included), ``dayofmonth``, ``dayofyear`` and ``month`` of the year."""

_AUTO_CALENDAR = {
    "ns": ("hour", "dayofweek"),
    "us": ("hour", "dayofweek"),
    "ms": ("hour", "dayofweek"),
    "s": ("hour", "dayofweek"),
    "m": ("hour", "dayofweek"),
    "h": ("hour", "dayofweek"),
    "d": ("dayofweek", "dayofyear"),
    "bd": ("dayofweek", "dayofyear"),
    "w": ("dayofyear",),
    "mo": ("month",),
    "q": ("month",),
    "y": (),
}


_CALENDAR_CYCLE_DAYS = {
    "minute": 1 / 24,
    "hour": 1.0,
    "dayofweek": 7.0,
    "dayofmonth": 28.0,
    "dayofyear": 365.0,
    "month": 365.0,
}
"""Shortest length in days of each feature's cycle (an hour, a day, a week, a month, a year):
sampled every cycle or less often, a feature is constant or aliased."""

_STEP_DAYS = {"bd": 1.0, "mo": 28.0, "q": 89.0, "y": 365.0}


def _step_days(freq: Frequency) -> float:
    if freq.unit in _STEP_DAYS:
        return freq.n * _STEP_DAYS[freq.unit]
    return freq.n * _FIXED_UNITS_US[freq.unit] / _FIXED_UNITS_US["d"]


def calendar_features(
    calendar: str | Sequence[str] | None, freq: Frequency, time_dtype: pl.DataType
) -> tuple[str, ...]:
    """Resolve the ``calendar`` option of an estimator to feature names.

    Parameters
    ----------
    calendar : None, "auto", a name or a list of names from :data:`CALENDAR_FEATURES`
        ``"auto"`` picks the cycles that a frequency can show: time of day and day of week
        below a day, day of week and day of year for (business) days, day of year for weeks,
        month for months and quarters, none for years.
    freq : Frequency
        The panel's frequency. A feature whose cycle is not longer than one step (``"hour"``
        on daily data, ``"dayofweek"`` on weekly data, ``"dayofmonth"`` on monthly data) would
        be constant or aliased and is refused.
    time_dtype : polars.DataType
        Dtype of the time column: Date or Datetime (with or without time zone; features follow
        the local clock). Integer time steps have no calendar and are refused.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> calendar_features("auto", Frequency.parse("1h"), pl.Datetime("us"))
    ('hour', 'dayofweek')
    >>> calendar_features("auto", Frequency.parse("1d"), pl.Date)
    ('dayofweek', 'dayofyear')
    >>> calendar_features(["hour"], Frequency.parse("1d"), pl.Date)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: calendar feature 'hour' repeats every day, but \
the data are sampled every 1d: it would be constant or aliased. Drop it, or pass \
calendar='auto' (('dayofweek', 'dayofyear') for 1d).
    """
    calendar = _validation.check("calendar", calendar)
    if calendar is None:
        return ()
    if not time_dtype.is_temporal():
        raise DataValidationError(
            f"calendar={calendar!r} needs a Date or Datetime time column; the time column is "
            f"{time_dtype} (integer steps have no calendar). Convert it (e.g. "
            "pl.from_epoch(...) or .str.to_datetime()) or set calendar=None."
        )
    auto = _AUTO_CALENDAR.get(freq.unit, ())
    if calendar == "auto":
        names: tuple[str, ...] = tuple(
            n for n in auto if _step_days(freq) < _CALENDAR_CYCLE_DAYS[n]
        )
    else:
        names = (calendar,) if isinstance(calendar, str) else tuple(calendar)
    cycles = {"minute": "hour", "hour": "day", "dayofweek": "week", "dayofmonth": "month"}
    for name in names:
        if _step_days(freq) >= _CALENDAR_CYCLE_DAYS[name]:
            raise DataValidationError(
                f"calendar feature {name!r} repeats every {cycles.get(name, 'year')}, but the "
                f"data are sampled every {freq}: it would be constant or aliased. Drop it, or "
                f"pass calendar='auto' ({auto} for {freq})."
            )
    return names


def calendar_values(time: pl.Series, names: Sequence[str]) -> np.ndarray:
    """Sine/cosine encodings of the calendar features ``names`` for every timestamp.

    Returns a float32 array of shape ``(len(time), 2 * len(names))``: for each name its sine
    then its cosine column. Time zones are respected (local clock time).

    Examples
    --------
    >>> from datetime import datetime
    >>> t = pl.Series([datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 6)])
    >>> calendar_values(t, ["hour"]).round(3).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    t = pl.col("t")
    if time.dtype == pl.Date:  # midnight: no time of day
        hours = pl.lit(0.0)
        minutes = pl.lit(0.0)
    else:
        hours = t.dt.hour().cast(pl.Float64) + t.dt.minute() / 60.0
        minutes = t.dt.minute().cast(pl.Float64) + t.dt.second() / 60.0
    positions = {
        "minute": minutes / 60.0,
        "hour": hours / 24.0,
        "dayofweek": ((t.dt.weekday() - 1).cast(pl.Float64) + hours / 24.0) / 7.0,
        "dayofmonth": (t.dt.day() - 1).cast(pl.Float64) / t.dt.month_end().dt.day(),
        "dayofyear": (t.dt.ordinal_day() - 1).cast(pl.Float64)
        / pl.when(t.dt.is_leap_year()).then(366.0).otherwise(365.0),
        "month": (t.dt.month() - 1).cast(pl.Float64) / 12.0,
    }
    angles = pl.DataFrame({"t": time}).select((positions[n] * (2 * np.pi)).alias(n) for n in names)
    out = np.empty((len(time), 2 * len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        angle = angles[name].to_numpy()
        out[:, 2 * j] = np.sin(angle)
        out[:, 2 * j + 1] = np.cos(angle)
    return out

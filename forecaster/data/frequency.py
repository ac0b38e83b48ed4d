"""Sampling frequencies: the :class:`Frequency` grammar and its steps (the period of every
time on a frequency's grid: :func:`~forecaster.data.steps.grid_periods`; the frequency of data:
:func:`~forecaster.data.frequency_inference.infer_frequency`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.exceptions import DataValidationError

__all__ = [
    "FIRST_BUSINESS_DAY",
    "FIXED_UNITS_NS",
    "LAST_BUSINESS_DAY",
    "MONTHS_PER_UNIT",
    "TIME_UNIT_NS",
    "Frequency",
    "canonical_frequency",
    "holiday_dates",
    "simplest_frequency",
]

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

FIXED_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 7 * 86_400_000_000_000,
}
"""Nanoseconds per fixed unit, as exact integers: steps and grids are computed in these."""

TIME_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}
"""Nanoseconds per physical unit of a Datetime column."""

_CALENDAR_UNITS = ("mo", "q", "y", "bd")

_MAX_FREQ_STEPS = 2**40
"""Largest multiple in a frequency string (keeps every step inside int64 arithmetic)."""

MONTHS_PER_UNIT = {"mo": 1, "q": 3, "y": 12}
"""Months per step of the month, quarter and year units."""

FIRST_BUSINESS_DAY = 0
"""The day of the month (:meth:`Frequency.offset`'s ``day``) of month, quarter and year steps
on each month's first business day (Monday to Friday): the 1st, or the Monday after it when
it is a Saturday or a Sunday (no holidays: January 1st when it is a weekday). 31 is the
month's last day."""

LAST_BUSINESS_DAY = 32
"""The day of the month (:meth:`Frequency.offset`'s ``day``) of month, quarter and year steps
on each month's last business day (Monday to Friday): its last day, or the Friday before it
when it is a Saturday or a Sunday."""


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
    time is the last day of its month (month-ends, quarter-ends) steps by month-ends, a
    series of first (last) business days by the first (last) weekday of each month, others
    by their largest day of the month, clamped to shorter months (see
    :func:`~forecaster.data.steps.anchor_days`). These steps have no holidays: a month's
    first weekday may be a holiday (January 1st).

    ``holidays`` (business days only; sorted distinct dates) are skipped like weekends by
    :meth:`offset`, :func:`grid_periods` and so :func:`~forecaster.data.steps.future_times`:
    a pipeline's ``[series] holidays``. Empty by default (every weekday is a step); the
    estimators' ``freq`` parameter has no holidays.

    Attributes
    ----------
    n, unit, holidays : int, str, tuple of datetime.date

    Examples
    --------
    >>> Frequency.parse("15m").is_calendar
    False
    >>> Frequency.parse("1bd").unit
    'bd'
    >>> str(Frequency.parse("H")), str(Frequency.parse("15MIN"))
    ('1h', '15m')
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"t": [dt.date(2018, 12, 31)]})
    >>> nyse = Frequency(1, "bd", holidays=(dt.date(2019, 1, 1),))
    >>> frame.select(nyse.offset(pl.col("t"), 1))["t"].to_list()
    [datetime.date(2019, 1, 2)]
    >>> Frequency.parse("1M")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: freq '1M' is ambiguous: in pandas 'M' is a \
month, in Polars (and here) 'm' is a minute. Pass '1mo' for months or '1m' for minutes.
    """

    n: int
    unit: str
    holidays: tuple[dt.date, ...] = ()

    def __post_init__(self) -> None:
        if self.holidays and self.unit != "bd":
            raise DataValidationError(
                f"holidays apply to business days only ('1bd'), not to freq {self.n}{self.unit}."
            )

    @classmethod
    def parse(cls, value: str | int) -> Frequency:
        """Parse ``"1h"``, ``"1bd"``, ``"1mo"`` or an integer step such as ``5`` (numpy
        integers too; the parameter table's ``freq`` rule decides what is accepted).

        Parameters
        ----------
        value : str or int
        """
        value = check("freq", value)
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
        """Length of one fixed step in the physical units of a time column of ``dtype``.

        Computed in exact integer nanoseconds, so that every whole number of the column's units
        is accepted.

        Examples
        --------
        >>> Frequency.parse("700ns").step_in(pl.Datetime("ns"))
        700
        >>> Frequency.parse("2d").step_in(pl.Date), Frequency.parse("1s").step_in(pl.Datetime("ms"))
        (2, 1000)
        """
        if self.unit == "i":
            return self.n
        nanos = self.n * FIXED_UNITS_NS[self.unit]
        if dtype == pl.Date:
            days, rest = divmod(nanos, FIXED_UNITS_NS["d"])
            if rest:
                raise DataValidationError(
                    f"freq {self} is shorter than a day but the time column is a Date. "
                    "Use a Datetime column or a frequency of whole days."
                )
            if days >= 2**31:
                raise DataValidationError(
                    f"freq {self} is longer than a Date column can span. Pass the sampling "
                    "interval of the data."
                )
            return days
        unit = getattr(dtype, "time_unit", "us") or "us"
        step, rest = divmod(nanos, TIME_UNIT_NS[unit])
        if rest or step <= 0:
            raise DataValidationError(
                f"freq {self} cannot be expressed in the time column's unit ({unit})."
            )
        if step >= 2**62:
            raise DataValidationError(
                f"freq {self} is longer than a time column in {unit} can span. Pass the "
                "sampling interval of the data."
            )
        return step

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

    def ends_before(
        self, last: pl.Series, as_of: Any, *, day: np.ndarray | None = None
    ) -> np.ndarray:
        """Whether the step after each time of ``last`` is at or before ``as_of`` (a boolean
        array): a series that ends there is stale, forecast from an earlier origin than
        ``as_of`` (a time between two steps of the grid is not one).

        Parameters
        ----------
        last : polars.Series
            The last time of each series (or any time of it).
        as_of : time point or polars.Series
            One time point for all, or one per time of ``last``, of ``last``'s dtype.
        day : numpy.ndarray, optional
            Month, quarter and year steps: the day of the month each time's series steps on
            (:func:`~forecaster.data.steps.anchor_days`, as
            :func:`~forecaster.data.steps.future_times` steps). By default the day of the
            time itself (:meth:`offset`), which steps a 30th that is a month-end (April 30)
            to the next month-end: pass the series' day, or use
            :func:`~forecaster.data.steps.steps_behind`.

        Notes
        -----
        The step is :meth:`offset` of each time as it is: a daily time-zone-aware row dated
        away from its day's time of day (a skipped midnight, America/Sao_Paulo 2018-11-04,
        is dated 23:00 the day before) steps from that dating, not from the series' day grid
        as :func:`~forecaster.data.steps.future_times` does; whole series go through
        :func:`~forecaster.data.steps.steps_behind`, which follows that grid.

        Examples
        --------
        >>> import datetime as dt
        >>> last = pl.Series([dt.date(2024, 1, 5), dt.date(2024, 1, 2)])
        >>> Frequency.parse("1bd").ends_before(last, dt.date(2024, 1, 6)).tolist()
        [False, True]
        >>> april = pl.Series([dt.date(2024, 4, 30)])
        >>> Frequency.parse("1mo").ends_before(april, dt.date(2024, 5, 30), day=np.array([30]))
        array([ True])
        """
        frame = pl.DataFrame({"t": last})
        if isinstance(as_of, pl.Series):
            frame = frame.with_columns(as_of.cast(last.dtype).alias("as_of"))
            bound = pl.col("as_of")
        else:
            bound = pl.lit(as_of, dtype=last.dtype)
        steps_on = None
        if day is not None and self.unit in MONTHS_PER_UNIT:
            frame = frame.with_columns(pl.Series("day", np.asarray(day, dtype=np.int64)))
            steps_on = pl.col("day")
        following = self.offset(pl.col("t"), 1, day=steps_on).cast(last.dtype)
        stale = following <= bound
        return frame.select(stale.fill_null(False)).to_series().to_numpy()

    def offset(
        self, times: pl.Expr, steps: pl.Expr | int, *, day: pl.Expr | int | None = None
    ) -> pl.Expr:
        """Expression for ``times`` moved forward by ``steps`` periods of this frequency.

        Month, quarter and year steps land on day ``day`` of their month, clamped to its
        length (31: the month's last day; :data:`FIRST_BUSINESS_DAY`, 0: its first weekday;
        :data:`LAST_BUSINESS_DAY`, 32: its last weekday).
        By default that is the day of ``times`` itself, or the month's last day when ``times``
        is the last day of its month: a month-end stays a month-end (2003-04-30 plus one
        month is 2003-05-31, not 2003-05-30). For the steps
        after the series of a frame use :func:`~forecaster.data.steps.future_times`, which
        takes each series' own day of the month and refuses times beyond the range of the time
        column's dtype (this expression does not check that range).

        Examples
        --------
        >>> import datetime as dt
        >>> frame = pl.DataFrame({"t": [dt.date(2003, 4, 30), dt.date(2003, 1, 15)]})
        >>> frame.select(Frequency.parse("1mo").offset(pl.col("t"), 3))["t"].to_list()
        [datetime.date(2003, 7, 31), datetime.date(2003, 4, 15)]
        >>> frame.select(Frequency.parse("1mo").offset(pl.col("t"), 2, day=FIRST_BUSINESS_DAY))
        shape: (2, 1)
        ┌────────────┐
        │ t          │
        │ ---        │
        │ date       │
        ╞════════════╡
        │ 2003-06-02 │
        │ 2003-03-03 │
        └────────────┘
        >>> month = Frequency.parse("1mo")
        >>> frame.select(month.offset(pl.col("t"), 1, day=LAST_BUSINESS_DAY))["t"].to_list()
        [datetime.date(2003, 5, 30), datetime.date(2003, 2, 28)]
        """
        steps_expr = steps if isinstance(steps, pl.Expr) else pl.lit(steps)
        total = (steps_expr * self.n).cast(pl.Int64)
        if self.unit == "i":
            return times + total
        if self.unit == "bd":
            return times.dt.add_business_days(total, holidays=list(self.holidays))
        if self.unit not in MONTHS_PER_UNIT:
            return times.dt.offset_by(pl.format("{}" + self.unit, total))
        if day is None:
            own = times.dt.day().cast(pl.Int64)
            day = pl.when(own == times.dt.month_end().dt.day()).then(31).otherwise(own)
        day_expr = (day if isinstance(day, pl.Expr) else pl.lit(day)).cast(pl.Int64)
        months = total * MONTHS_PER_UNIT[self.unit]
        moved = times.dt.month_start().dt.offset_by(pl.format("{}mo", months))
        length = moved.dt.month_end().dt.day().cast(pl.Int64)
        later = pl.min_horizontal(day_expr, length) - 1  # days after the month's 1st
        if not (isinstance(day, int) and day not in (FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY)):
            weekday = moved.dt.weekday().cast(pl.Int64)  # of the 1st: a Saturday 6, Sunday 7
            weekend = pl.when(weekday > 5).then(8 - weekday).otherwise(0)
            last = moved.dt.month_end().dt.weekday().cast(pl.Int64)
            back = pl.when(last > 5).then(last - 5).otherwise(0)
            later = (
                pl.when(day_expr == FIRST_BUSINESS_DAY)
                .then(weekend)
                .when(day_expr == LAST_BUSINESS_DAY)
                .then(later - back)
                .otherwise(later)
            )
        return moved.dt.offset_by(pl.format("{}d", later))


def holiday_dates(value: object) -> list[dt.date]:
    """The holidays of business-day steps: a list of dates (``datetime.date`` or ISO text
    ``YYYY-MM-DD``), each once, sorted.

    Examples
    --------
    >>> holiday_dates(["2019-01-21", dt.date(2019, 1, 1)])
    [datetime.date(2019, 1, 1), datetime.date(2019, 1, 21)]
    """
    expected = "expected a list of dates, each once, e.g. holidays = [2019-01-01, 2019-01-21]"
    if not isinstance(value, list | tuple):
        raise DataValidationError(f"{expected}; got {value!r}")
    days = []
    for item in value:
        if isinstance(item, str):
            try:
                item = dt.date.fromisoformat(item)
            except ValueError:
                raise DataValidationError(f"{expected}; got {item!r}, not a date") from None
        if not isinstance(item, dt.date) or isinstance(item, dt.datetime):
            raise DataValidationError(f"{expected}; got {item!r}, not a date")
        days.append(item)
    if len(set(days)) != len(days):
        raise DataValidationError(f"{expected}; got a date twice")
    return sorted(days)


def simplest_frequency(freq: Frequency) -> Frequency:
    """A fixed duration in its largest whole unit (``1440m`` is ``1d``); others unchanged."""
    if freq.unit not in FIXED_UNITS_NS or freq.unit == "ns":
        return freq
    nanos = freq.n * FIXED_UNITS_NS[freq.unit]
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        if nanos % FIXED_UNITS_NS[unit] == 0:
            return Frequency(nanos // FIXED_UNITS_NS[unit], unit)
    return freq


def canonical_frequency(freq: Frequency) -> Frequency:
    """``freq`` in its largest whole unit, so that every spelling of one step has the same
    seasons and lookback: ``24h`` is ``1d``, ``7d`` and ``168h`` are ``1w``, ``3mo`` is
    ``1q``, ``12mo`` and ``4q`` are ``1y``.

    Examples
    --------
    >>> [str(canonical_frequency(Frequency.parse(f))) for f in ("24h", "7d", "3mo", "12mo", "2d")]
    ['1d', '1w', '1q', '1y', '2d']
    """
    if freq.unit not in MONTHS_PER_UNIT:
        return simplest_frequency(freq)
    months = freq.n * MONTHS_PER_UNIT[freq.unit]
    unit = next(u for u in ("y", "q", "mo") if months % MONTHS_PER_UNIT[u] == 0)
    return Frequency(months // MONTHS_PER_UNIT[unit], unit)

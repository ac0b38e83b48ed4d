"""Times moved forward by steps of a frequency: :func:`future_times` (the one rule for times
beyond the data) and the steps that gap filling puts on a series' grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check, describe_value
from forecaster.data.frames import READ_ERRORS, first_line
from forecaster.data.frequency import (
    FIRST_BUSINESS_DAY,
    LAST_BUSINESS_DAY,
    MONTHS_PER_UNIT,
    Frequency,
)
from forecaster.data.times import (
    check_series_layout,
    days_from_civil,
    days_per,
    local_day_grid,
    on_day_grid,
    physical_range,
    range_text,
    zoned_times,
)
from forecaster.exceptions import DataValidationError

__all__ = [
    "anchor_days",
    "ends_on_one_grid",
    "first_and_last_weekdays",
    "future_times",
    "grid_periods",
    "off_usual_day",
    "on_local_calendar",
    "on_usual_day",
    "stepped_times",
    "steps_behind",
    "usual_days",
]


def anchor_days(times: pl.Series, offsets: np.ndarray) -> np.ndarray:
    """The day of the month each series steps on (month, quarter and year steps).

    - 31 (its months' last days) when every time of the series is the last day of its month;
    - :data:`~forecaster.data.frequency.FIRST_BUSINESS_DAY` (each month's first weekday) for
      first business days: every time a weekday within the first 10 days of its month, and
      either on more than one day of the month, all within the first 4 days or at least half
      exactly on their month's first weekday (the others pushed later by holidays: the 4th
      to the 7th of January where January 1 to 3 are closed), or each exactly on it, one not
      the 1st (a Monday 3rd: 1997-02-03, 03-03); the 1st when every time is within the
      first 4 days, on more than one day, one on a weekend;
    - :data:`~forecaster.data.frequency.LAST_BUSINESS_DAY` (each month's last weekday) for
      last business days (pandas' "BME"): every time a weekday within 3 days of its month's
      last day, one of them a Friday before a weekend month-end, and either each exactly its
      month's last weekday (2020-10-30, 11-30) or not each its largest day of the month
      clamped to shorter months (a series on the 30th that is not always the last weekday,
      2001-01-30, 02-28, 03-30, keeps the 30th);
    - else its largest day of the month, clamped to shorter months.

    Weekdays are Monday to Friday: there is no holiday calendar, so the steps after a first
    business day series are each month's first weekday, a holiday or not.

    Examples
    --------
    >>> import datetime as dt
    >>> t = pl.Series([dt.date(2021, 4, 1), dt.date(2021, 5, 3), dt.date(2021, 6, 1)])
    >>> anchor_days(t, np.array([0, 3])), anchor_days(t.head(1), np.array([0, 1]))
    (array([0]), array([1]))
    """
    parts = pl.DataFrame({"t": times}).select(  # days_in_month: 2.6x month_end's speed
        day=pl.col("t").dt.day().cast(pl.Int64),
        length=pl.col("t").dt.days_in_month().cast(pl.Int64),
    )
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    day = parts["day"].to_numpy()
    largest = np.maximum.reduceat(day, starts)
    length = parts["length"].to_numpy()
    to_end = length - day  # days after it in its month
    month_ends = np.logical_and.reduceat(to_end == 0, starts)
    ending = np.maximum.reduceat(to_end, starts) <= 3
    if not ((largest <= 10) | ending).any():  # (month starts and ends only read more)
        return np.where(month_ends, 31, largest)
    several = np.minimum.reduceat(day, starts) < largest
    weekday = times.dt.weekday().to_numpy()  # Monday 1 ... Sunday 7
    weekend = np.logical_or.reduceat(weekday > 5, starts)
    on_first, on_last = first_and_last_weekdays(day, weekday, to_end)
    first = _first_business_days(day, on_first, starts, largest, several)
    days = np.where((largest <= 4) & several & weekend, 1, largest)
    days = np.where(first & ~weekend, FIRST_BUSINESS_DAY, days)
    last = ending & ~weekend & _last_business_days(day, on_last, weekday, to_end, offsets)
    return np.where(month_ends, 31, np.where(last, LAST_BUSINESS_DAY, days))


def _first_business_days(
    day: np.ndarray,
    exact: np.ndarray,
    starts: np.ndarray,
    largest: np.ndarray,
    several: np.ndarray,
) -> np.ndarray:
    """Per series (rows from ``starts``; ``largest`` day, on ``several`` days): every time
    within the first 10 days of its month, on several days and all within the first 4 days or
    at least half exactly on their month's first weekday, or each exactly on it and one not
    the 1st (:func:`anchor_days`). ``exact``: each time its month's first weekday."""
    exact_count = np.add.reduceat(exact.astype(np.int64), starts)
    count = np.diff(np.append(starts, len(day)))
    mostly = several & ((largest <= 4) | (2 * exact_count >= count))
    return (largest <= 10) & (mostly | ((exact_count == count) & (largest > 1)))


def _last_business_days(
    day: np.ndarray, exact: np.ndarray, weekday: np.ndarray, to_end: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Per series (``offsets``): one time a Friday before a weekend month-end, and each time
    exactly its month's last weekday or not each its largest day of the month clamped to
    shorter months (:func:`anchor_days`). ``exact``: each time its month's last weekday;
    ``to_end``: days after each time in its month."""
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    before = (weekday == 5) & np.isin(to_end, (1, 2))  # a Friday before a weekend month-end
    friday = np.logical_or.reduceat(before, starts)
    largest = np.repeat(np.maximum.reduceat(day, starts), np.diff(offsets))
    clamped = day == np.minimum(largest, day + to_end)  # its own day, clamped to its month
    one_day = np.logical_and.reduceat(clamped, starts)  # the 30th, and February's last day
    return friday & (np.logical_and.reduceat(exact, starts) | ~one_day)


def _usual_days(times: pl.Series, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each date's day of the month (a month's last day counted as the 31st) and its series'
    usual one (``offsets``: the series' rows): the day most of its rows have (the earliest on
    a tie)."""
    day = times.dt.day().cast(pl.Int64)
    last = day == times.dt.days_in_month().cast(pl.Int64)
    series = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    rows = pl.DataFrame({"series": series, "key": pl.Series(np.where(last, 31, day))})
    usual = (
        rows.group_by("series", "key")
        .len()
        .sort(["series", "len", "key"], descending=[False, True, False])
        .unique("series", keep="first")
        .rename({"key": "usual"})
    )
    usual_day = rows.join(usual, on="series", how="left", maintain_order="left")["usual"]
    return rows["key"].to_numpy(), usual_day.to_numpy()


def usual_days(times: pl.Series, offsets: np.ndarray) -> np.ndarray:
    """Each date's series' usual day of the month (``offsets``: the series' rows), as
    :func:`on_usual_day` reads it: the day most of its rows have (the earliest on a tie), 31
    for its months' last days.

    Examples
    --------
    >>> import datetime as dt
    >>> t = pl.Series([dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 17)])
    >>> usual_days(t, np.array([0, 3])).tolist()
    [1, 1, 1]
    """
    return _usual_days(times, offsets)[1]


def on_usual_day(times: pl.Series, offsets: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Whether each date is on its series' usual day of the month (``offsets``: the series'
    rows): the day most of its rows have (the earliest on a tie), a month's last day counted
    as the 31st, and a shorter month's last day on the grid of a later day (February 28 for
    the 30th); within ``tolerance`` days of it (a month's first or last days, moved over a
    weekend, read as months by ``freq="auto"``).

    Examples
    --------
    >>> import datetime as dt
    >>> t = pl.Series([dt.date(2024, 1, 31), dt.date(2024, 2, 15), dt.date(2024, 2, 29)])
    >>> on_usual_day(t, np.array([0, 3])).tolist()
    [True, False, True]
    """
    key, usual = _usual_days(times, offsets)
    last = key == 31
    day = times.dt.day().cast(pl.Int64).to_numpy()
    return (np.abs(key - usual) <= tolerance) | (last & (day <= usual))


def off_usual_day(times: pl.Series, offsets: np.ndarray) -> np.ndarray:
    """The rows of months, quarters or years read by ``freq="auto"`` more than 3 days from
    their series' usual day of the month (:func:`on_usual_day`): a stray row alone in its
    month (a partial month's row after the last, 2022-07-17 after month starts), which the
    grid of periods would read as that month's. Series on first or last business days
    (:func:`anchor_days`), or each time within 3 days of its month's end, step on their
    anchor whatever their days, as the inference reads them: none of theirs is named."""
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    to_end = (times.dt.days_in_month() - times.dt.day()).cast(pl.Int64).to_numpy()
    anchored = np.isin(anchor_days(times, offsets), (FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY))
    anchored |= np.maximum.reduceat(to_end, starts) <= 3
    off = ~on_usual_day(times, offsets, tolerance=3)
    return np.flatnonzero(off & ~np.repeat(anchored, np.diff(offsets)))


def first_and_last_weekdays(
    day: np.ndarray, weekday: np.ndarray, to_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each time is its month's first weekday, and whether its last (Monday to
    Friday, no holidays: the days :meth:`~forecaster.data.frequency.Frequency.offset` dates
    first and last business days on), from its ``day`` of the month, ``weekday`` (Monday 1
    ... Sunday 7) and ``to_end``, the days after it in its month.

    Examples
    --------
    >>> day, weekday = np.array([1, 3, 4, 29]), np.array([5, 1, 2, 5])
    >>> to_end = np.array([30, 28, 27, 1])  # 2021-10-01, 2022-01-03, 2022-01-04, 2022-04-29
    >>> [m.tolist() for m in first_and_last_weekdays(day, weekday, to_end)]
    [[True, True, False, False], [False, False, False, True]]
    """
    first = (weekday <= 5) & ((day == 1) | ((weekday == 1) & (day <= 3)))  # (Monday 2nd, 3rd)
    before = (weekday == 5) & np.isin(to_end, (1, 2))  # a Friday before a weekend month-end
    return first, ((weekday <= 5) & (to_end == 0)) | before


def grid_periods(
    times: pl.Series, first: pl.Series, freq: Frequency
) -> tuple[np.ndarray, np.ndarray]:
    """Period number of every time relative to its series' first time (one per time), and an
    off-grid mask. Days and weeks of time-zone-aware datetimes are counted on the local
    calendar (:func:`on_local_calendar`: a day across a daylight-saving change lasts 23 or 25
    hours), a day whose time of day the clocks skip read at that time
    (:func:`~forecaster.data.times.on_day_grid`)."""
    if not freq.is_calendar:
        step = freq.step_in(times.dtype)
        t = times.to_physical().cast(pl.Int64).to_numpy()
        t0 = first.to_physical().cast(pl.Int64).to_numpy()
        if on_local_calendar(times.dtype, freq):  # each time paired with its first, as a series
            walls = [
                s.dt.replace_time_zone(None).to_physical().cast(pl.Int64) for s in (first, times)
            ]
            pairs = np.stack([w.to_numpy() for w in walls], axis=1).ravel()
            pairs = on_day_grid(pairs, np.arange(0, len(pairs) + 1, 2), times.dtype)
            t0, t = pairs[0::2], pairs[1::2]
        delta = t - t0
        return delta // step, (delta % step) != 0
    frame = pl.DataFrame({"t": times, "t0": first})
    if freq.unit == "bd":
        holidays = list(freq.holidays)
        if times.dtype == pl.Date:
            expr = pl.business_day_count(pl.col("t0"), pl.col("t"), holidays=holidays)
            off = (pl.col("t").dt.weekday() > 5) | pl.col("t").is_in(holidays)
        else:  # datetimes: business days of the (local) dates, at the first row's time of day
            day0, day = pl.col("t0").dt.date(), pl.col("t").dt.date()
            expr = pl.business_day_count(day0, day, holidays=holidays)
            off = (pl.col("t").dt.weekday() > 5) | (pl.col("t").dt.time() != pl.col("t0").dt.time())
            off = off | day.is_in(holidays)
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


def steps_behind(
    times: pl.Series,
    offsets: np.ndarray,
    freq: Frequency,
    as_of: Any,
    *,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """How many steps of ``freq`` each series (``offsets``, none empty) ends before ``as_of``:
    the number of its own next steps, as :func:`future_times` steps and dates them (months on
    the series' day of the month, :func:`anchor_days` of its rows, or ``days``, one per
    series, when ``times`` holds only some of them, e.g. its last; days of a time-zone-aware
    column on its local day grid), at or before ``as_of``; 0 when the first is after it. For fixed
    durations that is the whole periods from its last time to ``as_of``
    (:func:`grid_periods`). The one rule of stale series: native ``predict``'s warning, a
    pipeline's ``stale_steps`` and the pyfunc's.

    Examples
    --------
    A series on the 30th that ends on April 30 is a month behind May 30, and so is a series
    of month-ends ending on March 31 (April 30; its next step, May 31, is after May 30):

    >>> import datetime as dt
    >>> t = pl.Series([dt.date(2024, 3, 30), dt.date(2024, 4, 30), dt.date(2024, 3, 31)])
    >>> steps_behind(t, np.array([0, 2, 3]), Frequency.parse("1mo"), dt.date(2024, 5, 30))
    array([1, 1])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    last = times.gather(offsets[1:] - 1)
    as_ofs = pl.Series([as_of] * len(last), dtype=times.dtype)
    local = on_local_calendar(times.dtype, freq)
    if not (freq.is_calendar or local):
        stale = freq.ends_before(last, as_of)
        periods = grid_periods(as_ofs, last, freq)[0]
        return np.where(stale, np.maximum(periods, 1), 0).astype(np.int64)
    grid, walls = times, as_ofs
    if local:  # counted on the wall clock and dated in the zone, as future_times steps
        if freq.unit not in MONTHS_PER_UNIT:
            times, offsets = _first_two_and_last(times, offsets)
        grid, walls = local_day_grid(times, offsets), as_ofs.dt.replace_time_zone(None)
    # the periods from the last time to as_of count a last step that may fall after as_of
    nth = np.maximum(grid_periods(walls, grid.gather(offsets[1:] - 1), freq)[0], 1)

    def at_or_before(k: int) -> np.ndarray:
        steps = _nth_steps(grid, offsets, freq, nth + k, days)
        steps = zoned_times(steps, times.dtype) if local else steps
        return (steps <= as_ofs).fill_null(False).to_numpy()

    return np.where(at_or_before(1), nth + 1, np.where(at_or_before(0), nth, nth - 1))


def _nth_steps(
    times: pl.Series,
    offsets: np.ndarray,
    freq: Frequency,
    nth: np.ndarray,
    days: np.ndarray | None = None,
) -> pl.Series:
    """Step ``nth`` (one per series) after each series of calendar steps (or local days
    and weeks, on naive wall-clock times), as :func:`future_times` steps: months from the
    series' first time on its day of the month (``days``, else :func:`anchor_days`), others
    from its last time. No range check."""
    if freq.unit not in MONTHS_PER_UNIT:  # business days, and days and weeks of a local calendar
        return stepped_times(times.gather(offsets[1:] - 1), nth, freq, None)
    first = times.gather(offsets[:-1])
    counted = grid_periods(times.gather(offsets[1:] - 1), first, freq)[0]
    days = anchor_days(times, offsets) if days is None else days
    return stepped_times(first, counted + nth, freq, days)


def stepped_times(
    anchors: pl.Series, steps: np.ndarray, freq: Frequency, days: np.ndarray | None
) -> pl.Series:
    """``anchors`` (one per row) moved forward by ``steps`` periods (``days``: the day of the
    month of each row, for month, quarter and year steps). No range check here."""
    frame = pl.DataFrame({"t": anchors, "k": np.asarray(steps, dtype=np.int64)})
    day = None
    if days is not None and freq.unit in MONTHS_PER_UNIT:
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
      quarter-ends), each month's first (last) weekday for first (last) business days, else
      the series' largest day of the month, clamped to shorter months (:func:`anchor_days`).

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
    >>> import datetime as dt
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
    times, offsets = check_series_layout(times, offsets, "future_times", empty_series=False)
    horizon = check("horizon", horizon)
    if not isinstance(freq, Frequency):
        raise DataValidationError(
            f"freq must be a Frequency, e.g. Frequency.parse('1d'), got {describe_value(freq)}."
        )
    freq.check_dtype(times.dtype, times.name or "time")
    if on_local_calendar(times.dtype, freq):
        if freq.unit not in MONTHS_PER_UNIT:  # the anchor's time of day and the last row
            times, offsets = _first_two_and_last(times, offsets)
        steps = future_times(local_day_grid(times, offsets), offsets, freq, horizon)
        return zoned_times(steps, times.dtype)
    if not freq.is_calendar:
        return _fixed_future(times, offsets, freq, horizon)
    return _calendar_future(times, offsets, freq, horizon)


def _first_two_and_last(times: pl.Series, offsets: np.ndarray) -> tuple[pl.Series, np.ndarray]:
    """The first two rows and the last row of every series (fewer for shorter series): what
    the day grid of a series needs to place its last row."""
    lengths = np.diff(offsets)
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    rows = np.stack([starts, starts + 1, starts + lengths - 1], axis=1)
    kept = np.arange(3)[None, :] < np.minimum(lengths, 3)[:, None]
    return times.gather(rows[kept]), np.concatenate([[0], np.cumsum(kept.sum(axis=1))])


def on_local_calendar(dtype: pl.DataType, freq: Frequency) -> bool:
    """Whether steps of ``freq`` on a time column of ``dtype`` follow a local calendar: days,
    weeks, months and business days of time-zone-aware datetimes, counted on the wall clock
    (:func:`~forecaster.data.times.local_day_grid`) and dated by
    :func:`~forecaster.data.times.zoned_times`."""
    zoned = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    return zoned and (freq.is_calendar or freq.unit in ("d", "w"))


def ends_on_one_grid(ends: pl.Series, freq: Frequency, days: np.ndarray | None) -> bool:
    """Whether the times ``ends`` lie on one grid of ``freq``, so that the steps between two
    of them are the difference of their steps behind the latest (:func:`steps_behind`): fixed
    durations at whole steps from one another (not a local calendar's days), business days of
    dates (one step), and months, quarters and years a whole number of steps apart, every
    series stepping on the same day of the month (``days``, one per time: :func:`anchor_days`
    of its series; None: not on one grid) and ending on it, as :meth:`Frequency.offset` dates
    it in the month of its end (clamped to shorter months: a series on the 30th may end on
    February 28; a first business day series on its month's first weekday, not on a day
    that a holiday pushed later)."""
    if on_local_calendar(ends.dtype, freq):
        return False
    if not freq.is_calendar:
        physical = ends.to_physical().cast(pl.Int64).to_numpy()
        return bool(((physical - physical.max()) % freq.step_in(ends.dtype) == 0).all())
    if freq.unit == "bd":
        return ends.dtype == pl.Date and freq.n == 1
    if days is None:
        return False
    parts = pl.DataFrame({"t": ends}).select(
        month=pl.col("t").dt.year().cast(pl.Int64) * 12 + pl.col("t").dt.month().cast(pl.Int64),
        clock=pl.col("t").cast(pl.Datetime).dt.time() if ends.dtype != pl.Date else pl.lit(0),
    )
    months = parts["month"].to_numpy()
    step = MONTHS_PER_UNIT[freq.unit] * freq.n
    on_day = stepped_times(ends, np.zeros(len(ends), dtype=np.int64), freq, days) == ends
    one_day = bool((days == days[0]).all() and on_day.all())
    aligned = bool(((months - months.max()) % step == 0).all())
    return one_day and aligned and parts["clock"].n_unique() == 1


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
    if furthest > physical_range(dtype)[1]:
        raise _beyond_range(last.max(), dtype, freq, horizon)
    kind = np.uint64 if physical.dtype == pl.UInt64 else np.int64
    steps = np.arange(1, horizon + 1, dtype=kind) * kind(step)
    values = (physical.to_numpy().astype(kind)[:, None] + steps[None, :]).ravel()
    return pl.Series(times.name, values).cast(physical.dtype).cast(dtype)


def _calendar_future(
    times: pl.Series, offsets: np.ndarray, freq: Frequency, horizon: int
) -> pl.Series:
    """:func:`future_times` for months, quarters, years (from each series' first time, on its
    day of the month) and business days (from its last time). An upper
    bound of the furthest time, in days, is checked against the dtype's range first."""
    dtype = times.dtype
    n_series = len(offsets) - 1
    last = times.gather(offsets[1:] - 1)
    steps = np.tile(np.arange(1, horizon + 1, dtype=np.int64), n_series)
    rows = np.repeat(np.arange(n_series, dtype=np.int64), horizon)
    days = None
    if freq.unit in MONTHS_PER_UNIT:
        first = times.gather(offsets[:-1])
        days = anchor_days(times, offsets)
        counted = grid_periods(last, first, freq)[0] + horizon
        reach = _month_index(first) + counted * freq.n * MONTHS_PER_UNIT[freq.unit]
        year, month = np.floor_divide(reach, 12), reach % 12 + 1
        latest = np.where(days == FIRST_BUSINESS_DAY, 3, np.minimum(days, 31))  # (the 3rd)
        _check_reach(days_from_civil(year, month, latest) + 2, last, dtype, freq, horizon)
        anchors, steps = first.gather(rows), (counted - horizon)[rows] + steps
        days = days[rows]
    else:  # business days
        per_step = {"bd": 1.4, "d": 1.0, "w": 7.0}[freq.unit] * freq.n
        span = np.ceil(per_step * horizon) + 4  # weekends and daylight-saving slack
        reached = np.floor_divide(last.to_physical().to_numpy(), days_per(dtype)) + span
        _check_reach(reached, last, dtype, freq, horizon)
        anchors = last.gather(rows)
    try:
        return stepped_times(anchors, steps, freq, days).alias(times.name)
    except READ_ERRORS as exc:
        raise DataValidationError(
            f"Cannot compute the {horizon} steps of {freq} after the series' last times "
            f"(latest {last.max()}): {first_line(exc)}. Check the time column."
        ) from exc


def _month_index(times: pl.Series) -> np.ndarray:
    """``year * 12 + month - 1`` of every time (int64)."""
    frame = pl.DataFrame({"t": times})
    index = pl.col("t").dt.year().cast(pl.Int64) * 12 + pl.col("t").dt.month().cast(pl.Int64) - 1
    return frame.select(index).to_series().to_numpy()


def _check_reach(
    reach: np.ndarray, last: pl.Series, dtype: pl.DataType, freq: Frequency, horizon: int
) -> None:
    """Refuse steps whose furthest time, bounded from above by ``reach`` (days since
    1970-01-01 per series), may pass the range of ``dtype``."""
    over = np.asarray(reach) > physical_range(dtype)[1] // days_per(dtype)
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
    limit = "value of" if dtype.is_integer() else "time forecaster computes for"
    return DataValidationError(
        f"The {horizon} steps of {freq} after the last time {latest} would pass the largest "
        f"{limit} the time column's dtype {dtype} ({range_text(dtype)}). {fix}, or check for "
        "stray sentinel times."
    )

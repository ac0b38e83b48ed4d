"""The frequency of data: :func:`infer_frequency`, the most common step between consecutive
times of each series read as a :class:`~forecaster.data.frequency.Frequency` (months,
quarters and years kept on their day of the month, business days, the local calendar of
time-zone-aware times), as ``freq="auto"`` infers it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecaster.data.frequency import (
    FIRST_BUSINESS_DAY,
    FIXED_UNITS_NS,
    LAST_BUSINESS_DAY,
    TIME_UNIT_NS,
    Frequency,
)
from forecaster.data.steps import anchor_days, first_and_last_weekdays, on_usual_day
from forecaster.data.time_span import check_time_span
from forecaster.data.times import check_series_layout, local_day_grid
from forecaster.exceptions import DataValidationError

__all__ = [
    "infer_frequency",
    "infer_from_diffs",
    "infer_from_steps",
    "step_layout",
    "wall_clock",
]


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
        Month, quarter and year steps are recognised from 28-31, 90-92 and 365-366 day steps,
        and from steps of whole months between first or last business days or month-ends of
        every series (:func:`~forecaster.data.steps.anchor_days`: 26 to 33 days between last
        business days; 13 weeks between 2017-06-30, 09-29 and 12-29, each exactly on its
        anchor when every step is whole weeks);
        longer steps of a whole number of months on one day of the month (its last day in
        shorter months) as ``"2mo"``, ``"6mo"``, ``"2y"``...; months, quarters or years
        with a few rows off their grid (a partial month's date at the end) when those rows
        leave the most common step in days off its own grid and 4 steps in 5 or more keep
        one day of the month (:func:`_mostly_months`), or 2 rows in 3 are on one day of the
        month a whole number of months apart (:func:`_usual_day_months`), so that the grid
        check names those rows; daily dates with no weekend day
        and some 3-day steps are business days (``"1bd"``). With a time zone, days and longer
        steps are read on the local calendar (a day across a daylight-saving change lasts 23
        or 25 hours), shorter ones in absolute time, as ``freq="auto"`` infers them (steps of
        exactly 24 hours that are off the local days are ``"24h"``); a day
        whose time of day the clocks skip (a midnight skipped by daylight saving time, dated
        23:00 the day before or 01:00) counts as that time of day, as the calendar grid check
        of a declared frequency reads it (:func:`~forecaster.data.times.local_day_grid`).

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
    >>> t = pl.date_range(dt.date(2024, 1, 31), dt.date(2026, 1, 1), "2mo", eager=True)
    >>> str(infer_frequency(t, np.array([0, len(t)])))
    '2mo'
    """
    times, offsets = check_series_layout(times, offsets, "infer_frequency")
    check_time_span(times, times.name or "times")
    diffs = np.diff(times.to_physical().cast(pl.Int64).to_numpy())
    wall = wall_clock(times)
    cross, within = step_layout(offsets, len(diffs))
    local = None if wall is None else local_day_grid(times, offsets, wall)
    return infer_from_steps(diffs, local, within, cross, times)


def wall_clock(times: pl.Series) -> np.ndarray | None:
    """The physical wall-clock times of time-zone-aware datetimes (None for other times):
    days and longer steps follow the local calendar, on which a day across a daylight-saving
    change lasts 23 or 25 hours."""
    if isinstance(times.dtype, pl.Datetime) and times.dtype.time_zone is not None:
        return times.dt.replace_time_zone(None).to_physical().cast(pl.Int64).to_numpy()
    return None


def step_layout(offsets: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(cross, within)`` of the ``n_steps`` steps between consecutive rows of series laid out
    by ``offsets``: the positions of the steps between two series (empty series have none),
    and a mask that is True for the steps inside one."""
    cross = offsets[1:-1] - 1
    cross = cross[(cross >= 0) & (cross < n_steps)]
    within = np.ones(n_steps, dtype=bool)
    within[cross] = False
    return cross, within


def infer_from_steps(
    diffs: np.ndarray,
    local: pl.Series | None,
    within: np.ndarray,
    cross: np.ndarray,
    times: pl.Series,
) -> Frequency:
    """Infer the frequency from the steps between the sorted rows, as a declared one is checked.

    Days, weeks, months and business days follow the local calendar (a day across a
    daylight-saving change lasts 23 or 25 hours) on the grid of each series' time of day,
    where a day whose time of day the clocks skip is read at that time (a monthly series of
    midnights whose first or last row is a skipped midnight dated 23:00 the day before is
    monthly, not ``31d``); shorter steps are absolute (the local clock of quarter-hourly data
    goes back 45 minutes when it is set back an hour). Days or weeks off the local calendar
    whose every step lasts 24 hours (or 168), read at one UTC time of day, are hours
    (``"24h"``, ``"168h"``).

    Parameters
    ----------
    diffs : numpy.ndarray
        The absolute steps between consecutive rows (physical units), ``len(times) - 1``.
    local : polars.Series or None
        The wall-clock times of time-zone-aware ``times`` on their day grid, as the calendar
        grid check reads them (:func:`~forecaster.data.times.local_day_grid`; else None).
    within : numpy.ndarray
        Booleans, one per step: True for a step inside a series.
    cross : numpy.ndarray
        Positions of the steps between two series.
    times : polars.Series
        The sorted times.

    Returns
    -------
    Frequency
        As :func:`infer_frequency` describes.
    """
    if local is None:
        return infer_from_diffs(diffs, cross, times)
    wall = np.diff(local.to_physical().cast(pl.Int64).to_numpy())
    steps = wall[within]
    if (steps > 0).any() and not (steps < 0).any():  # set back within a step: sub-daily
        frequency = infer_from_diffs(wall, cross, local)
        step = frequency.step_in(times.dtype) if frequency.unit in ("d", "w") else 0
        if step and (steps % step).any() and not (diffs[within] % step).any():
            hours = frequency.n * FIXED_UNITS_NS[frequency.unit] // FIXED_UNITS_NS["h"]
            return Frequency(hours, "h")  # off the local days, every step 24 h (a UTC time)
        if frequency.is_calendar or frequency.unit in ("d", "w"):
            return frequency
    return infer_from_diffs(diffs, cross, times)


def _step_ends(times: pl.Series, starts: np.ndarray) -> pl.Series:
    """The times at the rows ``starts`` of ``times``, then at the rows after them: the two
    ends of each step that starts there."""
    return times.gather(pl.Series(np.concatenate([starts, starts + 1]), dtype=pl.Int64))


def _month_steps(ends: pl.Series) -> np.ndarray:
    """The calendar months of each step whose two ends :func:`_step_ends` gave."""
    n = len(ends) // 2
    month = (ends.dt.year().cast(pl.Int64) * 12 + ends.dt.month().cast(pl.Int64)).to_numpy()
    return month[n:] - month[:n]


def _months_per_step(ends: pl.Series, steps: np.ndarray) -> int | None:
    """The whole number of months (>= 2) of every step (``ends``: their two ends, as
    :func:`_step_ends` gives them; ``steps``: their months), when they all step that many
    months on one day of the month (its last day in shorter months: Jan 31, Mar 31, May 31,
    Jul 31, Sep 30); else None. A steady 61-day step is not two months: its day of the
    month drifts."""
    n = len(steps)
    if n == 0 or steps.min() != steps.max() or steps[0] < 2:
        return None
    day = ends.dt.day().to_numpy()
    last = (ends.dt.month_end().dt.day() == ends.dt.day()).to_numpy()
    d1, d2, last1, last2 = day[:n], day[n:], last[:n], last[n:]
    anchored = (d1 == d2) | ((d1 < d2) & last1) | ((d2 < d1) & last2)
    return int(steps[0]) if bool(anchored.all()) else None


def _anchored_months(
    times: pl.Series, cross: np.ndarray, steps: np.ndarray, weekly: bool
) -> int | None:
    """The whole number of months (>= 1) of every step of the mode (``steps``: their months),
    when every series is on its months' first or last days, or on first or last business
    days (:func:`~forecaster.data.steps.anchor_days`, ``cross``: the series bounds in the
    differences); else None. Their steps vary (26 to 33 days from one last business day to
    the next, 19 to 40 from a first business day to the next where holidays push some to the
    10th). When every step is a whole number of weeks (``weekly``: 2023-06-30, 09-29, 12-29,
    13 weeks each) every time must be exactly on its series' anchor, as the steps of months
    date it (:func:`~forecaster.data.steps.first_and_last_weekdays`): weeks fit such a
    series exactly, so a time a few days off its month's last or first weekday (2024-09-27,
    a Friday before Monday 09-30; June 4th, 3rd, 2nd, 52 weeks apart) keeps it weekly."""
    if len(steps) == 0 or steps.min() != steps.max() or steps[0] < 1:
        return None
    offsets = np.concatenate([[0], np.unique(cross) + 1, [len(times)]])
    anchors = anchor_days(times, offsets)
    business = np.isin(anchors, (FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY))
    day, length = times.dt.day(), times.dt.days_in_month()
    if weekly and business.any():  # each time on its anchor day, as a month's step dates it
        days = np.repeat(anchors, np.diff(offsets))
        first, last = first_and_last_weekdays(
            day.to_numpy(), times.dt.weekday().to_numpy(), (length - day).to_numpy()
        )
        on = np.where(days == FIRST_BUSINESS_DAY, first, last)
        business &= np.logical_and.reduceat(on, offsets[:-1])
    for calendar in (day == 1, day == length):  # month starts, month-ends
        business |= np.logical_and.reduceat(calendar.to_numpy(), offsets[:-1])
    return int(steps[0]) if bool(business.all()) else None


def _holds_its_day(times: pl.Series, cross: np.ndarray) -> bool:
    """Whether each series keeps one day of the month +-3 days (a month's last day counts as
    31; first business days) or has every time within 3 days of its month's end (last
    business days): month, quarter or year steps, where steady 31/92/366-day steps drift
    (their distance to the month's end too). ``cross``: series bounds in the differences."""
    own = times.dt.day().cast(pl.Int64).to_numpy()
    end = times.dt.days_in_month().cast(pl.Int64).to_numpy() - own  # to the month's last day
    series = np.searchsorted(np.sort(np.asarray(cross, dtype=np.int64)), np.arange(len(times)))
    frame = pl.DataFrame({"series": series, "day": np.where(end == 0, 31, own), "end": end})
    held = frame.group_by("series").agg(
        (pl.col("day").max() - pl.col("day").min() <= 3) | (pl.col("end").max() <= 3)
    )
    return bool(held["day"].all())


def _calendar_steps(
    days: int, weekly: bool, times: pl.Series, cross: np.ndarray, starts: np.ndarray
) -> Frequency | None:
    """Months, quarters or years of a mode step of ``days`` (``weekly``: every step a whole
    number of weeks; ``starts``: the rows where the mode steps start), else None. A month,
    quarter or year keeps its day of the month (a steady 31-, 92- or 366-day step drifts
    through the month and is read as days); first and last business days and month-ends
    step whole months whatever their days (:func:`_anchored_months`)."""
    calendar = {**dict.fromkeys(range(28, 32), "mo"), **dict.fromkeys(range(89, 93), "q")}
    unit = calendar.get(days, "y" if days in (365, 366) else None)
    if unit is not None and not weekly and _holds_its_day(times, cross):
        return Frequency(1, unit)
    if days < 19:
        return None
    ends = _step_ends(times, starts)
    steps = _month_steps(ends)  # once, for both readings
    months = _months_per_step(ends, steps) if days >= 58 and not weekly else None
    if months is None:
        months = _anchored_months(times, cross, steps, weekly)
        if months in (1, 3):
            return Frequency(1, "mo" if months == 1 else "q")
    if months is None:
        return None
    return Frequency(months // 12, "y") if months % 12 == 0 else Frequency(months, "mo")


def _mostly_months(times: pl.Series, starts: np.ndarray) -> Frequency | None:
    """Months, quarters or years that 4 steps in 5 or more (``starts``: the rows
    where they start) step on one day of the month, or None: the reading of data on such a
    grid with a few rows off it (a partial month's row at the end, a stray mid-month date),
    whose most common step in days (31) leaves those rows and their neighbours off its grid.
    A step counts when it keeps its day of the month (its last day in shorter months) or
    goes from a first (last) weekday of its month to another; the grid check then names the
    rows off the grid. A steady 31-day step keeps its day in about 7 steps of 12 (a few
    in a row: 3 of 4 from July 6th): neither it, nor it with a stray row, is read as months
    (every step a multiple of the mode: :func:`infer_from_diffs` keeps days before this)."""
    ends = _step_ends(times, starts)
    steps = _month_steps(ends)
    n = len(steps)
    day = ends.dt.day().cast(pl.Int64).to_numpy()
    to_end = ends.dt.days_in_month().cast(pl.Int64).to_numpy() - day
    first, last = first_and_last_weekdays(day, ends.dt.weekday().to_numpy(), to_end)
    d1, d2, end1, end2 = day[:n], day[n:], to_end[:n] == 0, to_end[n:] == 0
    kept = (d1 == d2) | ((d1 < d2) & end1) | ((d2 < d1) & end2) | (end1 & end2)
    kept |= (first[:n] & first[n:]) | (last[:n] & last[n:])
    months, counts = np.unique(steps[kept & (steps >= 1)], return_counts=True)
    if months.size == 0 or 5 * int(counts.max()) < 4 * n:
        return None
    k = int(months[np.argmax(counts)])
    return Frequency(k // 12, "y") if k % 12 == 0 else Frequency(k, "mo")


def _usual_day_months(times: pl.Series, cross: np.ndarray) -> Frequency | None:
    """Months, quarters or years between the rows on their series' usual day of the month
    (:func:`~forecaster.data.steps.on_usual_day`), when 2 rows in 3 or more are on it and
    most steps between them are one whole number of months; else None (``cross``: the
    series bounds in the differences). The reading of month starts with rows of other days
    among them (a file that adds a row of nulls every quarter, 1990-02-05 after 02-01), too
    many for :func:`_mostly_months` (each breaks two steps). Steady 31-day steps keep a day
    for 3 rows at most, far from 2 in 3 of a longer series."""
    offsets = np.concatenate([[0], np.unique(cross) + 1, [len(times)]])
    on = on_usual_day(times, offsets)
    if 3 * int(on.sum()) < 2 * len(times):
        return None
    series = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[on]
    kept = times.filter(pl.Series(on))
    month = (kept.dt.year().cast(pl.Int64) * 12 + kept.dt.month().cast(pl.Int64)).to_numpy()
    steps = np.diff(month)[np.diff(series) == 0]
    months, counts = np.unique(steps[steps >= 1], return_counts=True)
    if months.size == 0 or 2 * int(counts.max()) <= len(steps):
        return None
    k = int(months[np.argmax(counts)])
    return Frequency(k // 12, "y") if k % 12 == 0 else Frequency(k, "mo")


_INFER_SAMPLE = 200_000


def infer_from_diffs(diffs: np.ndarray, cross: np.ndarray, times: pl.Series) -> Frequency:
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
    positions = positions[diffs > 0]  # the rows where the remaining steps start
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
        per, day = FIXED_UNITS_NS["d"], 1  # nanoseconds per physical unit, units per day
    else:
        per = TIME_UNIT_NS[getattr(dtype, "time_unit", "us") or "us"]
        day = FIXED_UNITS_NS["d"] // per
    if mode % day == 0:
        days = mode // day
        # Every step a whole number of weeks (4 or 13 weeks, not months or quarters): weekly.
        weekly = bool(np.all(diffs % (7 * day) == 0))
        months = _calendar_steps(days, weekly, times, cross, positions[diffs == mode])
        if months is None and days >= 28 and not weekly and bool((diffs % mode).any()):
            months = _mostly_months(times, positions)  # a few rows off a month grid
            months = _usual_day_months(times, cross) if months is None else months
        if months is not None:
            return months
        if days == 1:
            weekend = (times.dt.weekday() > 5).any()
            if not weekend and bool(np.any(diffs == 3 * day)):
                return Frequency(1, "bd")
        if days % 7 == 0:
            return Frequency(days // 7, "w")
        return Frequency(days, "d")
    nanos = mode * per
    for name in ("h", "m", "s", "ms", "us"):
        if nanos % FIXED_UNITS_NS[name] == 0:
            return Frequency(nanos // FIXED_UNITS_NS[name], name)
    return Frequency(nanos, "ns")

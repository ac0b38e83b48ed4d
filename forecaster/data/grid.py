"""The regular time grid of a long frame, a stage of
:func:`~forecaster.data.validate.validate_frame`: duplicate times refused, the frequency
declared or inferred (:func:`~forecaster.data.frequency_inference.infer_from_steps`), the rows
off its grid named, a declared frequency finer than every step of the data refused, and the
rows before each gap found (:class:`TimeGrid`) for the missing-value policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.checks import row_examples
from forecaster.data.clocks import clock_hint, off_clock_rows
from forecaster.data.duplicates import duplicate_rows_message
from forecaster.data.frames import SERIES_ID, counted
from forecaster.data.frequency import Frequency, simplest_frequency
from forecaster.data.frequency_inference import infer_from_steps, step_layout, wall_clock
from forecaster.data.steps import grid_periods, off_usual_day, on_usual_day, usual_days
from forecaster.data.times import local_day_grid, on_day_grid
from forecaster.exceptions import DataValidationError

__all__ = [
    "TimeGrid",
    "calendar_grid_steps",
    "check_grid",
    "check_own_step",
    "fixed_grid_steps",
    "row_mask",
]


@dataclass
class TimeGrid:
    """The sorted rows on the regular grid of ``freq``.

    ``t`` holds the times the grid is counted in (wall-clock times for local days and weeks
    of time-zone-aware datetimes), ``periods`` the period of every row from its series' first
    time (computed for calendar frequencies only), ``gap_rows`` the rows after which steps are
    missing, ``n_missing`` how many.
    """

    freq: Frequency
    offsets: np.ndarray
    t: np.ndarray
    periods: np.ndarray | None
    gap_rows: np.ndarray
    n_missing: int


def check_grid(
    data: pl.DataFrame,
    t: np.ndarray,
    lengths: np.ndarray,
    freq: str | int | None,
    *,
    id_col: str | None,
    time_col: str,
    continues: bool = False,
    source: Any = None,
    used: Sequence[str] = (),
) -> TimeGrid:
    """Refuse duplicate times, resolve the frequency (declared or inferred) and refuse times
    off its grid and a declared frequency finer than every step of the data (not for rows
    that continue checked series: ``continues``). ``source``, the user's frame, and
    ``used``, its columns with a role, name the columns that could be the id of a frame
    without one whose times repeat (:func:`~forecaster.data.duplicates.duplicate_rows_message`)."""
    id_name = id_col if id_col is not None else SERIES_ID
    times = data[time_col]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    # Time-zone aware datetimes: days and weeks follow the local calendar, so those grids use
    # the wall-clock times.
    wall = wall_clock(times)  # None without a time zone

    # Differences between consecutive rows; those between two series are not meaningful.
    diffs = np.diff(t)
    cross, within = step_layout(offsets, len(diffs))
    duplicate_rows = np.flatnonzero((diffs == 0) & within) + 1
    if duplicate_rows.size:
        raise DataValidationError(
            duplicate_rows_message(
                data, duplicate_rows, id_col=id_col, time_col=time_col, source=source, used=used
            )
        )

    inferred = freq is None or (isinstance(freq, str) and freq.strip().lower() == "auto")
    declared = None if inferred or freq is None else Frequency.parse(freq)
    local = None  # the wall-clock times on each series' day grid (a skipped midnight at 00:00)
    if wall is not None and (declared is None or declared.is_calendar):
        local = local_day_grid(times, offsets, wall)
    frequency = (
        declared if declared is not None else infer_from_steps(diffs, local, within, cross, times)
    )
    frequency.check_dtype(times.dtype, time_col)

    periods: np.ndarray | None = None
    clock_rows = stray_rows = np.empty(0, np.int64)
    if frequency.is_calendar:
        on_grid = times if local is None else local
        periods, off_rows, gap_rows, n_missing, counts = calendar_grid_steps(
            on_grid, offsets, within, frequency
        )
        clock_rows = off_clock_rows(times, offsets)
        off_rows = np.union1d(off_rows, clock_rows)
        if frequency.unit != "bd":  # the strays a month reading is read over, declared too
            stray_rows = off_usual_day(on_grid, offsets)
            off_rows = np.union1d(off_rows, stray_rows)
    else:
        if wall is not None and frequency.unit in ("d", "w"):
            t = on_day_grid(wall, offsets, times.dtype)
            diffs = np.diff(t)
        step = frequency.step_in(times.dtype)
        off_rows, gap_rows, n_missing, counts = fixed_grid_steps(diffs, cross, within, step)
        if off_rows.size:  # the rows off the grid from each series' first time (a step's
            # end is off whenever its start is: only the first of the two is named)
            first = np.repeat(t[offsets[:-1]], np.diff(offsets))
            off_rows = np.flatnonzero((t - first) % step != 0)
    del diffs, within
    if off_rows.size:
        hint = clock_hint(str(frequency), times) if clock_rows.size else ""
        if stray_rows.size:  # a day of the month unlike its series' others
            hint += stray_hint(data[time_col], usual_days(on_grid, offsets), stray_rows, frequency)
        raise DataValidationError(
            f"{counted(off_rows.size, 'timestamp is', 'timestamps are')} off the regular "
            f"{frequency} grid that starts "
            f"at each series' first time, e.g. "
            f"{row_examples(data, row_mask(len(t), off_rows), id_name, time_col)}. "
            "Expected evenly spaced times. Pass the right freq= or resample the data first "
            f"(e.g. frame.group_by_dynamic(...)).{hint}"
        )
    if not inferred and not continues:
        check_own_step(counts, frequency, id_col)
    return TimeGrid(frequency, offsets, t, periods, gap_rows, n_missing)


def calendar_grid_steps(
    times: pl.Series, offsets: np.ndarray, within: np.ndarray, freq: Frequency
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """Periods of every row on a calendar grid (months, quarters, years, business days), the
    rows off the grid, the rows before a gap, the number of missing steps and the steps
    between consecutive rows of a series (in periods)."""
    lengths = np.diff(offsets)
    first = times.gather(np.repeat(offsets[:-1], lengths))
    periods, off_grid = grid_periods(times, first, freq)
    del first
    steps = np.diff(periods)
    # Two rows of a series in the same period (e.g. two dates in one month): one is off the
    # grid, the second unless the first is off it already (a Saturday before its Monday) or
    # only the second is on the series' usual day of the month (06-15 before 06-30).
    paired = (steps == 0) & within & ~off_grid[:-1]
    if paired.any() and freq.unit != "bd":
        usual = on_usual_day(times, offsets)
        first_off = paired & usual[1:] & ~usual[:-1]
        off_grid[:-1] |= first_off
        paired &= ~first_off
    off_grid[1:] |= paired
    off_rows = np.flatnonzero(off_grid)
    gap_rows = np.flatnonzero((steps > 1) & within)
    n_missing = int((steps[gap_rows] - 1).sum())
    return periods, off_rows, gap_rows, n_missing, steps[within]


def fixed_grid_steps(
    diffs: np.ndarray, cross: np.ndarray, within: np.ndarray, step: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The rows off a fixed-step grid, the rows before a gap, the number of missing steps and
    the steps between consecutive rows of a series (in periods): the differences only, no
    per-row period array. ``diffs`` is overwritten."""
    diffs[cross] = step
    irregular = np.flatnonzero(diffs != step)
    odd = diffs[irregular]
    off_rows = irregular[odd % step != 0] + 1
    gap_rows = irregular[(odd % step == 0) & (odd > step)]
    n_missing = int((diffs[gap_rows] // step - 1).sum())
    return off_rows, gap_rows, n_missing, diffs[within] // step


def row_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def check_own_step(counts: np.ndarray, freq: Frequency, id_col: str | None) -> None:
    """Refuse a declared ``freq`` finer than every step of the frame: when no two consecutive
    rows of any series are one period of ``freq`` apart (``counts``: the steps between
    consecutive rows, in periods), the data were sampled at a coarser frequency and filling
    would resample them (a weekly or monthly frame to days) instead of filling gaps. A frame
    of that frequency with gaps has steps of one period somewhere and passes."""
    own = int(counts.min()) if counts.size else 1
    if own <= 1:
        return
    step = simplest_frequency(Frequency(own * freq.n, freq.unit))
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


def stray_hint(times: pl.Series, usual: np.ndarray, rows: np.ndarray, freq: Frequency) -> str:
    """What the error of rows off a month, quarter or year grid adds for ``rows`` more than 3
    days from their series' usual day of the month (``usual``, per row:
    :func:`~forecaster.data.steps.off_usual_day`), ``freq`` declared or inferred: each would
    stand for its whole period. Names the first, its day expected, and what to do."""
    row = int(rows[0])
    day = "their months' last day" if usual[row] == 31 else f"day {int(usual[row])}"
    lie = counted(rows.size, "of them lies", "of them lie")
    return (
        f" {lie} more than 3 days from their series' usual day of the month "
        f"(e.g. {times[row]}, whose series' rows are on {day}): a {freq} row stands for its "
        "whole period, so a row on another day is not a step of that grid. Drop or move "
        f"{'that row' if rows.size == 1 else 'those rows'} (a partial period's row after the "
        "last, a stray reading), or aggregate the data to one row per period first."
    )

"""The range check of a time column: every time in the range the package computes in, and
the message that names the rows out of it and how to fix them.
"""

from __future__ import annotations

import polars as pl

from forecaster.data.frames import READ_ERRORS, counted
from forecaster.data.times import days_per, physical_range, range_text
from forecaster.exceptions import DataValidationError

__all__ = ["check_time_span"]

_POLARS_DAYS = (-96_465_292, 95_026_236)
"""Days from 1970-01-01 of -262143-01-01 and 262142-12-31: the calendar Polars can show."""


def check_time_span(times: pl.Series, time_col: str, *, fix: str | None = None) -> None:
    """Every time must be in the range the package computes in (int64 steps; for dates and
    datetimes the years 1 to 9999 of Python's ``datetime``, in which times are shown,
    compared and returned) and every difference of two times must fit in int64 (the grid
    checks subtract them).

    Parameters
    ----------
    times : polars.Series
        A time column (Date, Datetime or integer; nulls are skipped).
    time_col : str
        Its name, for the message.
    fix : str, optional
        How to fix times out of range where they come from (a pipeline's source), in place
        of the advice for a frame.

    Raises
    ------
    DataValidationError
        Naming the column, its first and last time, how many rows are out of range with a
        few of their times, and the fix.
    """
    physical = times.to_physical()
    low, high = int(physical.min()), int(physical.max())  # type: ignore[arg-type]
    first, last = physical_range(times.dtype if times.dtype.is_temporal() else pl.Int64())
    if low < first or high > last:
        raise DataValidationError(_out_of_range_message(times, time_col, (first, last), fix))
    if high - low >= 2**62:
        raise DataValidationError(
            f"Time column {time_col!r} spans from {_shown(low, times)} to {_shown(high, times)}, "
            "too far apart "
            "for regular time steps (expected the first and last times within 4.6e18 of the "
            "column's units). Check for stray sentinel values such as -1 or 2**63 - 1."
        )


def _out_of_range_message(
    times: pl.Series, time_col: str, bounds: tuple[int, int], fix: str | None
) -> str:
    """The error of :func:`check_time_span` for ``times`` with values outside the physical
    ``bounds``: the column's first and last time, the rows out of range (a count and the
    first three distinct times, in row order) and the fix (``fix``, else advice for a frame)."""
    physical = times.to_physical()
    if physical.dtype == pl.UInt64:  # compared with the negative lower bound of int64
        physical = physical.cast(pl.Int128)
    outside = physical.filter((physical < bounds[0]) | (physical > bounds[1]))
    distinct = outside.unique(maintain_order=True)
    shown = [_shown(int(value), times) for value in distinct.head(3)]
    temporal = times.dtype.is_temporal()
    what = str(times.dtype) if temporal else "64-bit signed integer"
    years = ": the years of Python's datetime" if temporal else ""
    low, high = int(physical.min()), int(physical.max())  # type: ignore[arg-type]
    if fix is None and temporal:
        cause = (
            "a negative year is often a minus sign parsed with the date, e.g. the text "
            "'-20240101' read with '%Y%m%d'"
            if low < bounds[0]
            else "a year after 9999 is often a sentinel such as 99999-12-31, or a number of "
            "seconds read as milliseconds"
        )
        fix = f"Fix those times ({cause}), or drop their rows"
        if getattr(times.dtype, "time_zone", None) is None:
            fix += f", e.g. frame.filter(pl.col({time_col!r}).dt.year().is_between(1, 9999))"
        fix += "."
    elif fix is None:
        fix = "Check for stray sentinel values (such as 2**64 - 1), or shift the steps into it."
    examples = ", e.g. " if distinct.len() > len(shown) else ": "
    return (
        f"Time column {time_col!r} holds times out of range: from {_shown(low, times)} to "
        f"{_shown(high, times)}, where times are computed as {what} values "
        f"({range_text(times.dtype if temporal else pl.Int64())}{years}). "
        f"{counted(outside.len(), 'row is', 'rows are')} out of it{examples}"
        f"{', '.join(shown)}. {fix}"
    )


def _shown(physical: int, times: pl.Series) -> str:
    """A physical value of ``times`` as text, without a Python ``datetime`` (which ends at the
    year 9999): Polars' own rendering, or the number with its unit where Polars has none."""
    if not times.dtype.is_temporal():
        return str(physical)
    days = physical // days_per(times.dtype)
    if _POLARS_DAYS[0] <= days <= _POLARS_DAYS[1]:
        try:
            value = pl.Series([physical], dtype=pl.Int64).cast(times.to_physical().dtype)
            return str(value.cast(times.dtype).cast(pl.String)[0])
        except READ_ERRORS:
            pass
    unit = "days" if times.dtype == pl.Date else getattr(times.dtype, "time_unit", "us")
    return f"{physical:,} {unit} from 1970-01-01"

"""The time of day of datetimes on a calendar grid (months, business days, ...): the rows
whose wall-clock time is not their series' usual one (:func:`off_clock_rows`) and the advice
for them (:func:`clock_hint`), daylight-saving days read as the grid check reads them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

__all__ = ["clock_hint", "off_clock_rows"]


def off_clock_rows(times: pl.Series, offsets: np.ndarray) -> np.ndarray:
    """The rows of datetimes on a calendar grid (months, business days, ...) whose time of day
    (the wall clock, in the column's zone) is not their series' usual one (``offsets``: the
    series' first rows and the end): such a grid keeps one time of day, and its forecasts
    would all take one row's. The usual time is the one most rows of the series have (the
    earliest on a tie). A day on which that time does not exist (a midnight skipped by
    daylight saving time) is on the grid whichever way it is dated: the last instant before
    (23:00 the day before) or the first after (01:00).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> times = pl.Series([dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1, 13, 37),
    ...                    dt.datetime(2024, 3, 1)])
    >>> off_clock_rows(times, np.array([0, 3])).tolist()
    [1]
    """
    if not isinstance(times.dtype, pl.Datetime):
        return np.empty(0, np.int64)
    series = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    rows = pl.DataFrame({"series": series, "clock": times.dt.time()})
    usual = (
        rows.drop_nulls()
        .group_by("series", "clock")
        .len()
        .sort(["series", "len", "clock"], descending=[False, True, False])
        .unique("series", keep="first")
    )
    expected = rows.join(
        usual.drop("len"), on="series", how="left", suffix="_usual", maintain_order="left"
    )
    off = np.flatnonzero((expected["clock"] != expected["clock_usual"]).fill_null(False))
    zone = times.dtype.time_zone
    if zone is None or off.size == 0:
        return off
    moment = times.gather(off)
    local = moment.dt.replace_time_zone(None)
    # the hour (or so) the clock jumped by around the row: wall time gained over 12 hours
    half = dt.timedelta(hours=6)
    jump = (
        (moment + half).dt.replace_time_zone(None) - (moment - half).dt.replace_time_zone(None)
    ) - 2 * half
    usual_clock = expected["clock_usual"].gather(off)
    skipped = np.zeros(off.size, dtype=bool)
    for shift in (0, 1):  # the usual time on the row's own day, or on the next one
        day = (local.dt.date() + dt.timedelta(days=shift)).cast(pl.Datetime(times.dtype.time_unit))
        intended = pl.DataFrame({"day": day, "clock": usual_clock}).select(
            pl.col("day").dt.combine(pl.col("clock"))
        )["day"]
        missing = intended.dt.replace_time_zone(zone, non_existent="null", ambiguous="earliest")
        dated = (local == intended - jump) | (local == intended + jump)
        skipped |= (missing.is_null() & dated & (jump > dt.timedelta(0))).to_numpy()
    return off[~skipped]


def clock_hint(grid: str, times: pl.Series) -> str:
    """Advice for datetimes off a calendar ``grid`` by their time of day."""
    advice = (
        f" A {grid} grid keeps one time of day in each series, and some rows have another: "
        "cut the times to dates (.dt.date()) or to the start of their day (.dt.truncate('1d'))"
    )
    zone = getattr(times.dtype, "time_zone", None)
    if zone is None:
        return advice + "."
    return (
        f"{advice}. Times made in another zone (e.g. UTC midnights) and stored as {zone} move "
        "by an hour with daylight saving time: convert the column back to the zone they were "
        "made in (e.g. .dt.convert_time_zone('UTC'))."
    )

"""What the figures of :mod:`forecaster.evaluation.plots` check and read in the frames they
are given, before anything is drawn: one row per series and time (and one forecast origin per
series), and the column drawn when ``target`` is not given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from forecaster.data.checks import check_unique_keys
from forecaster.data.frames import text_like
from forecaster.exceptions import DataValidationError

__all__ = ["check_one_row_per_time", "default_target", "time_text"]


def time_text(value: Any) -> str:
    """A time as a title shows it: a midnight datetime as its date.

    Examples
    --------
    >>> import datetime as dt
    >>> time_text(dt.datetime(2024, 3, 1)), time_text(dt.datetime(2024, 3, 1, 6)), time_text(7)
    ('2024-03-01', '2024-03-01 06:00:00', '7')
    """
    if hasattr(value, "hour") and not (value.hour or value.minute or value.second):
        return str(value.date())
    return str(value)


def check_one_row_per_time(
    frame: pl.DataFrame, name: str, keys: list[str], drawn: Sequence[str] = ()
) -> None:
    """Refuse a frame whose series are not one line each: forecasts of several origins of a
    series (its ``origin`` column: a list of cutoffs), which would be drawn as one line,
    zigzagging where their times overlap and joined across the gap where they do not, under
    the title of one origin; or several rows per (id, time), which, with ``id_col=None``,
    are the series of a panel (``keys``: the id column, if any, and the time column;
    ``drawn``: the target columns drawn, never taken for a column naming series)."""
    id_col = keys[0] if len(keys) == 2 else None
    if "origin" in frame.columns and frame.height > 1:
        counts = frame.group_by(id_col or pl.lit(0)).agg(pl.col("origin").n_unique())
        if counts["origin"].max() > 1:  # type: ignore[operator]
            origins = frame["origin"].unique().sort()
            raise DataValidationError(
                f"The {name} frame holds forecasts from {origins.len()} origins (its 'origin' "
                f"column, e.g. {time_text(origins[0])} and {time_text(origins[-1])}), and a "
                "series is drawn with one forecast. Pick one origin, e.g. "
                f"forecast.filter(pl.col('origin') == {origins[-1]!r}), or draw "
                "rolling origins with plot_backtest(backtest(...))."
            )
    if frame.height < 2 or not frame.select(pl.struct(keys).is_duplicated().any()).item():
        return
    if id_col is None:
        raise DataValidationError(_rows_at_one_time(frame, name, keys[0], drawn))
    check_unique_keys(frame, keys, what=f"{name} frame")


def _series_labels(frame: pl.DataFrame, time_col: str, skipped: Sequence[str]) -> list[str]:
    """The text or integer columns of ``frame`` (but ``skipped``) that could name the series
    of a panel whose times repeat: one row per time for each of their values, and no more
    values than the most rows at one time. An integer target or covariate, whose values
    differ at a repeated time, tells rows apart without naming series: one value per row, or
    nearly."""
    most = int(frame.group_by(time_col).len()["len"].max())  # type: ignore[arg-type]
    return [
        c
        for c in frame.columns
        if c not in (time_col, "origin", *skipped)
        and (text_like(frame.schema[c]) or frame.schema[c].is_integer())
        and frame[c].n_unique() <= most
        and not frame.select(pl.struct(c, time_col).is_duplicated().any()).item()
    ]


def _rows_at_one_time(
    frame: pl.DataFrame, name: str, time_col: str, drawn: Sequence[str] = ()
) -> str:
    """Why a frame drawn with ``id_col=None`` is refused: several series (a column names each,
    see :func:`_series_labels`; not a ``drawn`` target), or rows at one time that no column
    tells apart (one series with a repeated time, such as a daylight saving time hour, or
    series without a column naming them)."""
    times = frame.filter(pl.col(time_col).is_duplicated())[time_col].unique().sort()
    labels = _series_labels(frame, time_col, drawn)
    if labels:
        return (
            f"The {name} frame has several rows at one {time_col!r} (e.g. "
            f"{time_text(times[0])}): it holds several series, which id_col=None would draw "
            "as one line zigzagging between them. Pass id_col, the column naming each series "
            f"(e.g. id_col={labels[0]!r})."
        )
    more = f" and {times.len() - 1} other times" if times.len() > 1 else ""
    return (
        f"The {name} frame has several rows at one {time_col!r}: {time_text(times[0])}{more}, "
        "and none of its text or integer columns tells them apart as series. One series has "
        "one row per time (a clock time repeated as daylight saving time ends gives two): "
        "keep one, e.g. "
        f"{name}.unique(subset=[{time_col!r}], keep='last'), or give the times in UTC. The "
        "rows of several series need a column naming each series, passed as id_col."
    )


def default_target(forecast: pl.DataFrame, keys: Sequence[str]) -> str:
    """The column drawn when ``target`` is not given: the forecast's own column.

    The numeric columns other than the keys, the ``origin`` and the bounds and quantiles of
    another are the candidates. Those with bounds or quantiles are forecasts: the first of
    them. Otherwise an integer column that names series is no forecast (its value is the same
    in every row of several, as a series id in one series' rows, or it tells the series of a panel
    apart at each time, see :func:`_series_labels`), and the first of the others is drawn
    where they are all floats or all integers; a mix of both, or nothing left, is refused,
    naming ``target=``.
    """
    numeric = [
        c
        for c in forecast.columns
        if c not in (*keys, "origin") and forecast.schema[c].is_numeric()
    ]

    def partners(c: str) -> list[str]:
        return [d for d in numeric if d != c and d.startswith((f"{c}_lo_", f"{c}_hi_", f"{c}_q"))]

    derived = {d for c in numeric for d in partners(c)}
    candidates = [c for c in numeric if c not in derived]
    with_bounds = [c for c in candidates if partners(c)]
    if with_bounds:
        return with_bounds[0]
    time_col = keys[-1] if keys else None
    labels = (
        _series_labels(forecast, time_col, ())
        if time_col is not None and forecast.height
        and forecast.select(pl.col(time_col).is_duplicated().any()).item()
        else []
    )  # fmt: skip
    ids = [
        c
        for c in candidates
        if forecast.schema[c].is_integer()
        and ((forecast.height > 1 and forecast[c].n_unique() == 1) or c in labels)
    ]
    left = [c for c in candidates if c not in ids]
    kinds = {forecast.schema[c].is_integer() for c in left}
    if len(kinds) == 1:
        return left[0]
    if not candidates:
        raise DataValidationError(
            f"The forecast frame has no numeric column to draw besides {list(keys)}; pass "
            "target=<column>."
        )
    why = (
        f"its integer columns {ids} look like series ids (one value, or one per series), "
        "and it has no other numeric column"
        if not left
        else f"its numeric columns {left} mix integers and floats, so that which one is the "
        "forecast is not clear"
    )
    raise DataValidationError(
        f"plot_forecast cannot tell which column of the forecast frame to draw: {why}. Pass "
        f"target=<column>, e.g. target={(left or candidates)[-1]!r}."
    )

"""Gap filling: every series reindexed on its regular grid, and gaps and missing values filled
by the ``missing=`` policy of :func:`~forecaster.data.validate.validate_frame`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecaster.data.frames import READ_ERRORS, first_line, format_list
from forecaster.data.frequency import MONTHS_PER_UNIT, Frequency
from forecaster.data.steps import anchor_days, on_local_calendar, stepped_times
from forecaster.data.times import local_day_grid, zoned_times
from forecaster.data.wording import in_spec_words, setting
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = [
    "FILL_WARN_SHARE",
    "FILL_WARN_STEPS",
    "fill_gaps",
    "integer_dates_advice",
    "warn_made_up",
]

_MAX_FILL_ROWS = 10_000_000

_MAX_FILL_GROWTH = 100
"""Filling gaps may grow a frame to 100x its rows (at least to 10 million rows), no further."""


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
    dtype = data[time_col].dtype
    local = on_local_calendar(dtype, freq)
    grid = local_day_grid(data[time_col], offsets) if local else data[time_col]
    first = grid.gather(offsets[:-1])
    days = anchor_days(grid, offsets) if freq.unit in MONTHS_PER_UNIT else None
    try:
        times = stepped_times(
            first.gather(hole_series),
            holes - starts[hole_series],
            freq,
            None if days is None else days[hole_series],
        )
        times = zoned_times(times, dtype) if local else times
    except READ_ERRORS as exc:
        raise DataValidationError(
            f"Cannot build the regular {freq} grid to fill the gaps (missing={policy!r}): "
            f"{first_line(exc)}. Fill or resample the data first, or use a time column "
            "without a time zone (e.g. in UTC)."
        ) from exc
    ids = data[id_name].gather(offsets[:-1]).gather(np.repeat(np.arange(len(span)), span))
    return filled.with_columns(ids, filled[time_col].scatter(holes, times))


def fill_gaps(
    data: pl.DataFrame,
    id_name: str,
    time_col: str,
    value_cols: list[str],
    periods: np.ndarray,
    offsets: np.ndarray,
    freq: Frequency,
    policy: str,
) -> tuple[pl.DataFrame, np.ndarray | None]:
    """Reindex every series to its full regular grid and fill gaps and nulls by ``policy``.

    Returns the filled frame and, for ``policy="interpolate"``, which of its cells were
    filled: a boolean array of shape ``(rows, len(value_cols))``. An interpolated value
    between two observations depends on the later one, so a forecast from an origin inside
    such a run must not see it (see :meth:`forecaster.data.panel.Panel.known_values`). None
    for the other policies: their filled values depend only on earlier rows."""
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
        if policy != "zero":  # absent rows are zeros, by the user's word (sparse demand)
            rows, kept_offsets, kept_span = _kept_rows(
                data, id_name, value_cols, periods, offsets, span
            )
            warn_made_up(rows, id_name, time_col, kept_offsets, kept_span, freq, policy)
        data = _reindex(data, id_name, time_col, periods, offsets, span, freq, policy)
    if policy == "zero":
        return data.with_columns(pl.col(value_cols).fill_null(0.0)), None
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
        _warn_dropped(dropped, data, id_name, policy, value_cols)
    if policy == "ffill":
        filled = [pl.col(c).forward_fill().over(id_name) for c in value_cols]
        return data.with_columns(filled), None
    interpolated = data.select(pl.col(value_cols).is_null()).to_numpy()
    filled = [pl.col(c).interpolate().forward_fill().over(id_name) for c in value_cols]
    return data.with_columns(filled), interpolated.reshape(data.height, len(value_cols))


def _kept_rows(
    data: pl.DataFrame,
    id_name: str,
    value_cols: list[str],
    periods: np.ndarray,
    offsets: np.ndarray,
    span: np.ndarray,
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The arguments of :func:`warn_made_up` (``data``, its id column ``id_name`` only,
    ``offsets``, ``span``) for the rows ``ffill`` and ``interpolate`` keep: each series from
    its first complete row (every value observed), the steps made up before it being
    dropped with the rows before it, not filled; a series without one is dropped whole."""
    complete = data.select(pl.all_horizontal(pl.col(value_cols).is_not_null())).to_series()
    if complete.all():
        return data, offsets, span
    rows = np.flatnonzero(complete.to_numpy())
    first = np.asarray(offsets[1:]).copy()  # no complete row: nothing kept
    series, at = np.unique(np.searchsorted(offsets, rows, side="right") - 1, return_index=True)
    first[series] = rows[at]
    kept = first < offsets[1:]
    first, ends = first[kept], offsets[1:][kept]
    new_offsets = np.concatenate([[0], np.cumsum(ends - first)])
    index = np.arange(new_offsets[-1]) + np.repeat(first - new_offsets[:-1], ends - first)
    return data.select(id_name)[index], new_offsets, span[kept] - periods[first]


FILL_WARN_SHARE = 0.2
"""Share of the filled grid's rows (of the panel, or of one series) that filling may make up
before :func:`fill_gaps` warns: a grid mostly made up is usually the wrong grid (a Saturday row
turning business days into days, ``YYYYMMDD`` integers read as steps of 1), and a series mostly
made up is usually sampled at another frequency than the others (a daily series in an hourly
panel). ``missing="zero"`` is not warned: it says the absent rows are zeros (intermittent
demand, rows only on days with sales)."""

FILL_WARN_STEPS = 3
"""The fewest steps filling must make up (of the panel's grid, or of one series') before
:func:`fill_gaps` warns of more than :data:`FILL_WARN_SHARE`: one or two missing steps are
ordinary gaps, not another grid or frequency, however short the series (one gap in a series
of four rows is 25 % of it)."""


def _mostly_made_up(made: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Whether ``made`` made-up steps of grids of ``span`` steps are more than
    :data:`FILL_WARN_SHARE` of them, and at least :data:`FILL_WARN_STEPS`."""
    return (made > FILL_WARN_SHARE * span) & (made >= FILL_WARN_STEPS)


def integer_dates_advice(times: pl.Series) -> str | None:
    """What to do about an integer time column that holds dates written as integers
    (``20240131``: each a valid ``%Y%m%d`` date), whose steps of 1 leave a gap of 70 "steps"
    between two months: read it as dates (inside :func:`~forecaster.data.wording.spec_words`,
    the spec's ``[source] time_format``; from Python, a conversion of the column), not fill
    the gaps. None for any other column.

    Examples
    --------
    >>> integer_dates_advice(pl.Series("day", [20240131, 20240201])) is not None
    True
    >>> integer_dates_advice(pl.Series("step", [1, 2, 4])) is None
    True
    """
    if not times.dtype.is_integer() or times.null_count() == times.len():
        return None
    text = times.drop_nulls().unique().sort().cast(pl.String)
    dates = text.str.to_date("%Y%m%d", strict=False)
    if dates.null_count() or not text.str.len_chars().eq(8).all():
        return None
    name = times.name
    if in_spec_words():
        fix = f"set {setting('time_format', '%Y%m%d')} to read them as dates"
    else:
        fix = (
            f"convert the column to dates first: frame.with_columns(pl.col({name!r})"
            ".cast(pl.String).str.to_date('%Y%m%d'))"
        )
    return (
        f"The time column {name!r} holds dates written as integers (e.g. {text[0]}), whose "
        f"steps of 1 are not days (69 steps are missing from 20240131 to 20240201): {fix}. "
        f"Filling those gaps ({setting('missing')}) would make up most of the rows."
    )


def warn_made_up(
    data: pl.DataFrame,
    id_name: str,
    time_col: str,
    offsets: np.ndarray,
    span: np.ndarray,
    freq: Frequency,
    policy: str,
) -> None:
    """Warn when the missing steps filled are more than :data:`FILL_WARN_SHARE` of the grid,
    or, in a panel, of some series' own grid (named, with their share), and at least
    :data:`FILL_WARN_STEPS` of it.

    ``data`` holds the observed rows, sorted by series (``offsets``: where each starts), and
    ``span`` the number of steps of each series' grid. Dates written as integers in the time
    column ``time_col`` are named with their fix (:func:`integer_dates_advice`)."""
    lengths = np.diff(offsets)
    made, total = int((span - lengths).sum()), int(span.sum())
    if not _mostly_made_up(np.array(made), np.array(total)):  # the grid: right for most series
        if len(span) > 1 and _mostly_made_up(span - lengths, span).any():
            _warn_series_made_up(data[id_name].gather(offsets[:-1]), lengths, span, freq, policy)
        return
    widest = int(np.argmax(span - lengths))
    example = (
        f"; e.g. series {data[id_name][int(offsets[widest])]!r}: "
        f"{int(span[widest] - lengths[widest]):,} of {int(span[widest]):,}"
        if len(span) > 1
        else ""
    )
    advice = integer_dates_advice(data[time_col]) or (
        "So much filling usually means another grid: check freq= (business days: '1bd') "
        "and the time column (dates written as integers such as 20240131 are steps of 1)."
    )
    warn_at_caller(
        f"missing={policy!r} made up {made:,} of the {total:,} rows of the regular {freq} grid "
        f"({made / total:.0%}{example}). {advice}",
        ForecasterWarning,
    )


def _warn_series_made_up(
    ids: pl.Series, lengths: np.ndarray, span: np.ndarray, freq: Frequency, policy: str
) -> None:
    """The warning of :func:`warn_made_up` for the series of a panel (``ids``, each with its
    observed rows ``lengths`` and the steps of its grid ``span``) that filling made up mostly,
    the most made up first."""
    share, mostly = (span - lengths) / span, _mostly_made_up(span - lengths, span)
    order = [int(i) for i in np.argsort(-share, kind="stable") if mostly[i]]
    shown = ", ".join(
        f"{ids[i]!r} ({int(span[i] - lengths[i]):,} of {int(span[i]):,}, {share[i]:.0%})"
        for i in order[:5]
    )
    more = f" and {len(order) - 5} more" if len(order) > 5 else ""
    warn_at_caller(
        f"missing={policy!r} made up more than {FILL_WARN_SHARE:.0%} of the rows (at least "
        f"{FILL_WARN_STEPS} of them) of {len(order)} of the {len(span)} series on the panel's "
        f"regular {freq} grid: {shown}{more}. So much filling of a series usually means it is "
        "sampled at another frequency than the others (a daily series in an hourly panel) or "
        "was not observed for long: what is fitted and forecast of it is mostly made-up "
        f"values. Resample it to {freq}, model it apart, or leave its gaps out.",
        ForecasterWarning,
    )


def _warn_dropped(
    dropped: pl.DataFrame, kept: pl.DataFrame, id_name: str, policy: str, value_cols: list[str]
) -> None:
    """Warn of the leading rows ``policy`` could not fill, naming the columns missing there
    (a covariate that starts later than the targets drops their rows too) and the series it
    left out whole (no row where every column is observed), which fit and predict then lack."""
    empty = [c for c in value_cols if dropped[c].null_count()]
    gone = dropped[id_name].unique(maintain_order=True)
    gone = gone.filter(~gone.is_in(kept[id_name].unique().implode()))
    whole = ""
    if gone.len():
        shown = gone.head(10).to_list()
        more = f" and {gone.len() - 10} more" if gone.len() > 10 else ""
        whole = (
            f" {gone.len()} series have no such row at all and are left out whole: "
            f"{shown}{more} (no forecasts for them); give them an observed row or use "
            "missing='zero'."
        )
    warn_at_caller(
        f"Dropped {dropped.height} leading rows with missing values (in {format_list(empty)}) "
        f"before each series' first complete observation (missing={policy!r} cannot fill "
        f"before it).{whole}",
        ForecasterWarning,
    )

"""The message of duplicate (series, time) rows, a refusal of
:func:`~forecaster.data.grid.check_grid` (and of a pipeline's rows,
in the words of its spec inside :func:`spec_words`).

- Repeated naive datetimes, each twice, that are all ambiguous in one IANA time zone are the
  hour that clocks repeat when daylight saving time ends (a meter
  exported in local wall-clock time): the message says so and how to localise the times
  (``dt.replace_time_zone(tz, ambiguous=...)``), not to split or drop them.
- Else, without an id column, times that repeat are often several series in one frame: the
  message names the columns that look like a panel's key (:func:`series_columns`'s rule),
  and asks for the id only then.
- Last, for one series: aggregate the repeated rows (a value from each reading) or keep one
  (naming the readings that drops).

Inside :func:`spec_words` (the ``forecaster`` command's block) the fixes are a pipeline
spec's: its key ``series.id``, the source's times and rows, not Python's ``id_col=`` and
``frame.unique``.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster.data.checks import row_examples
from forecaster.data.frames import READ_ERRORS, SERIES_ID, collect_frame, format_list, frame_schema
from forecaster.data.wording import in_spec_words, spec_words
from forecaster.exceptions import DataValidationError

__all__ = ["duplicate_rows_message", "series_columns", "spec_words"]

_UNREADABLE: tuple[type[BaseException], ...] = (*READ_ERRORS, DataValidationError)
"""A source that cannot be read again: the message goes without the columns it names."""

_MAX_CANDIDATES = 20
"""Columns read at most to find the ones that split the rows into series."""


def series_columns(source: Any, time_col: str, used: Sequence[str]) -> list[str]:
    """The columns of ``source`` (a polars DataFrame or LazyFrame) other than ``used`` that
    look like the key of a panel of series: text, categorical, Boolean or integer columns
    (not floats, not times) whose values split the rows into series with one row per time
    (``time_col``), where

    - every value has at least 2 rows (not a row number), and
    - most rows (at least half) are at a time that another value's series has too: the
      series run side by side, whatever their lengths (a store opened late; 2,000 series of
      30 to 1,000 rows), not a flag that changes once (its series follow each other), nor a
      re-sent batch of a few rows. Two series of which one covers less than half of the
      other's times are not named (a re-sent batch looks the same), and
    - no value's rows repeat one other value's: where at least 90% of a value's telling rows
      have the same time and the same values of the ``used`` columns (the target, the
      covariates) as the rows of one other value, the column numbers a file sent again (a
      batch or upload id; one value corrected since or not), not series: a panel's series
      differ in their values at the same times. Rows holding the most common values (a
      sparse panel's zeros) or values that more than 5 others hold at that time (a panel of
      small counts) tell nothing, so such panels are still named.

    Only the first 20 such columns are read; none when the source cannot be read again.

    Examples
    --------
    >>> frame = pl.DataFrame({"store": ["a", "b", "a", "b"], "day": [1, 1, 2, 2],
    ...                       "batch": [7, 7, 7, 8], "row": [0, 1, 2, 3], "y": [1.0, 2, 3, 4]})
    >>> series_columns(frame, "day", ["day", "y"])
    ['store']
    >>> resent = pl.DataFrame({"upload": [1, 1, 2, 2], "day": [1, 2, 1, 2], "y": [3.0, 4.0] * 2})
    >>> series_columns(resent, "day", ["day", "y"])
    []
    """
    kinds, rows = _candidate_columns(source, time_col, used, values=True)
    if not kinds:
        return []
    values = [c for c in rows.columns if c not in kinds and c != time_col]
    shared = int(rows[time_col].is_duplicated().sum())  # rows at a time other rows have
    if 2 * shared < rows.height:  # series that follow each other, or a few rows set apart
        return []
    found = []
    for name in kinds:
        sizes = rows[name].value_counts()["count"].to_numpy()
        if (
            len(sizes) > 1
            and sizes.min() >= 2  # not a row number
            and not rows.select(name, time_col).is_duplicated().any()
            and not _repeats_another(rows, name, [time_col, *values])
        ):
            found.append(name)
    return found


def _repeats_another(rows: pl.DataFrame, name: str, keys: list[str]) -> bool:
    """Whether some value of the column ``name`` repeats one other value's rows: at least
    90% of its telling rows equal, in ``keys`` (the time and the values), a row of
    that one value, and such repeated rows are at least half of the telling rows: the same
    rows sent again under another batch number, one of them maybe corrected since
    (:func:`series_columns`), not a short series whose few values happen to match another's.
    A row is telling unless its values are the most common ones (a sparse panel's zeros; held
    by more than 5 rows) or more than 5 values share its time and values (a panel of counts,
    where every reading is some other store's too): a panel's series may share those with
    many others, never most of their rows with one."""
    values = keys[1:]
    if not values:  # no readings to compare: a re-send cannot be told
        return False
    other, count, total, holders = temporary_names(
        rows.columns, "other", "count", "total", "holders"
    )
    frame = rows.select(name, *keys)
    # the most common readings, when more rows hold them than copies of one row
    common = (
        frame.group_by(values)
        .agg(pl.len().alias(count))
        .top_k(1, by=count)
        .filter(pl.col(count) > _MAX_COPIES)
        .drop(count)
    )
    # only rows whose time and values another row holds can match (few, in most panels)
    shared = frame.filter(frame.select(keys).is_duplicated()).with_columns(
        pl.col(name).n_unique().over(keys).alias(holders)
    )
    untelling = [shared.filter(pl.col(holders) > _MAX_COPIES).drop(holders)]
    shared = shared.filter(pl.col(holders) <= _MAX_COPIES).drop(holders)
    if not common.is_empty():
        untelling.append(frame.join(common, on=values, how="semi", nulls_equal=True))
        shared = shared.join(common, on=values, how="anti", nulls_equal=True)
    left_out = pl.concat(untelling).unique()  # rows are unique per (value, time)
    matches = shared.join(shared.rename({name: other}), on=keys, nulls_equal=True).filter(
        pl.col(name) != pl.col(other)
    )
    totals = (
        frame.group_by(name)
        .agg(pl.len().alias(total))
        .join(
            left_out.group_by(name).agg(pl.len().alias(count)),
            on=name,
            how="left",
            nulls_equal=True,
        )
        .select(name, pl.col(total) - pl.col(count).fill_null(0))
    )
    resent = (
        matches.group_by(name, other)
        .agg(pl.len().alias(count))
        .join(totals, on=name, nulls_equal=True)
        .filter(pl.col(count) >= _RESENT_SHARE * pl.col(total))
    )
    if resent.is_empty():
        return False
    pairs = matches.join(resent.select(name, other), on=[name, other], nulls_equal=True)
    repeated = pl.concat(  # the rows sent twice, either copy: most of the telling rows
        [pairs.select(name, *keys), pairs.select(pl.col(other).alias(name), *keys)]
    ).unique()
    return 2 * repeated.height >= frame.height - left_out.height


_RESENT_SHARE = 0.9
"""The share of a value's telling rows that another value holds too, at least, for a re-send."""

_MAX_COPIES = 5
"""The most values that hold the same time and readings for the rows to tell a re-send: more
hold common readings (a panel of small counts)."""


def _candidate_columns(
    source: Any, time_col: str, used: Sequence[str], *, distinct: bool = False, values: bool = False
) -> tuple[list[str], pl.DataFrame]:
    """The first 20 columns of ``source`` but ``used`` of a kind that could name series,
    and the rows of those and ``time_col`` (none when the source cannot be read again);
    with ``distinct``, only those with one row per (value, time); with ``values``, the rows
    hold the ``used`` columns of the source too (but ``time_col``)."""
    try:
        schema = frame_schema(source)
    except _UNREADABLE:  # not a frame: nothing to name
        return [], pl.DataFrame()
    kinds = [
        name
        for name, dtype in schema.items()
        if name not in used
        and name != SERIES_ID
        and (
            dtype.is_integer()
            or dtype in (pl.String, pl.Boolean, pl.Categorical)
            or isinstance(dtype, pl.Enum)
        )
    ][:_MAX_CANDIDATES]
    if not kinds or time_col not in schema:
        return [], pl.DataFrame()
    read = [c for c in used if values and c in schema and c != time_col and c not in kinds]
    try:
        rows = collect_frame(source, columns=[time_col, *kinds, *read])
    except Exception:
        return [], pl.DataFrame()
    if distinct:
        kinds = [n for n in kinds if not rows.select(n, time_col).is_duplicated().any()]
    return kinds, rows


def _fall_back_hour(
    data: pl.DataFrame, rows: np.ndarray, id_name: str, time_col: str
) -> tuple[str, list[str]]:
    """The dates and hours of the repeated ``rows`` of ``data``, and the time zones whose
    clocks repeat all of them, when they are the hours a clock repeats as daylight saving
    time ends: naive datetimes, each (series, time) twice, every repeated time ambiguous in
    one IANA time zone at least (("", []) otherwise)."""
    times = data[time_col]
    if not isinstance(times.dtype, pl.Datetime) or times.dtype.time_zone is not None:
        return "", []
    repeated = data[rows]
    if repeated.select(id_name, time_col).is_duplicated().any():  # a time thrice
        return "", []
    distinct = repeated[time_col].unique().sort()
    zones = _zones_repeating(distinct[:1])  # the others are tried in the zones of the first
    zones = _zones_repeating(distinct, zones) if zones and len(distinct) > 1 else zones
    if not zones:
        return "", []
    hours = distinct.dt.truncate("1h").unique().sort()
    text = ", ".join(f"{t:%Y-%m-%d} between {t:%H}:00 and {t.hour + 1:02d}:00" for t in hours)
    return text, zones


_ZONE_AREAS = (
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
"""The areas of the IANA time zones searched for a repeated hour (not the aliases
``US/...``, ``Etc/...``; none where the system has no time zone database)."""

_KNOWN_ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Australia/Sydney",
    "America/Santiago",
    "Africa/Cairo",
)
"""The zones named first in the advice when they repeat the hours (else the first by name)."""


def _zones_repeating(times: pl.Series, zones: Sequence[str] | None = None) -> list[str]:
    """The time zones of ``zones`` (default: every IANA zone of :data:`_ZONE_AREAS`) in
    which each of the naive ``times`` is ambiguous (a wall-clock time that the clock shows
    twice), the best known first."""
    if zones is None:
        zones = sorted(
            name for name in zoneinfo.available_timezones() if name.split("/")[0] in _ZONE_AREAS
        )
    found = []
    for zone in zones:
        try:
            earliest = times.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            latest = times.dt.replace_time_zone(zone, ambiguous="latest", non_existent="null")
        except pl.exceptions.PolarsError:  # a zone that Polars' database does not know
            continue
        if earliest.null_count() == 0 and (earliest != latest).all():
            found.append(zone)
    known = [zone for zone in _KNOWN_ZONES if zone in found]
    return known + [zone for zone in found if zone not in known]


def duplicate_rows_message(
    data: pl.DataFrame,
    rows: np.ndarray,
    *,
    id_col: str | None,
    time_col: str,
    source: Any = None,
    used: Sequence[str] = (),
) -> str:
    """The refusal of the duplicate (series, time) ``rows`` of the sorted ``data`` (see the
    module docstring for the order of its advice): the hour a daylight-saving clock repeats,
    else without an ``id_col`` the columns of ``source`` (the user's frame; ``used``: its
    columns with a role) that look like the series' key (:func:`series_columns`), then how
    to keep one row per time, in a pipeline spec's words inside :func:`spec_words`."""
    for_spec = in_spec_words()
    id_name = id_col if id_col is not None else SERIES_ID
    mask = np.zeros(data.height, dtype=bool)
    mask[rows] = True
    examples = row_examples(data, mask, id_name, time_col)
    head = (
        f"{rows.size} duplicate ({'id, ' if id_col else ''}time) rows, e.g. {examples}. "
        "Expected one row per series and time step."
    )
    hour, zones = _fall_back_hour(data, rows, id_name, time_col)
    if hour:
        return f"{head} {_localise(hour, zones, id_col, time_col, source, used, for_spec)}"
    one_row = _one_row_per_time(rows.size, id_col, time_col, for_spec)
    if id_col is not None:
        return f"{head} {one_row[0].upper()}{one_row[1:]}"
    found = series_columns(source, time_col, used) if source is not None else []
    verb, option = ("set", "series.id = {} in the spec") if for_spec else ("pass", "id_col={}")
    if found:
        names = " or ".join(option.format(repr(name)) for name in found[:3])
        which = (
            f"{verb} {names}: {'its' if len(found) == 1 else 'each of their'} values split the "
            "rows into series side by side, with one row per time"
        )
    else:
        which = f"{verb} {option.format('<the column that names the series>')}"
    without = "series.id" if for_spec else "id_col"
    return (
        f"{head} Several series in one frame? Without {without} the frame is one series: "
        f"{which}. If it is one series: {one_row}"
    )


def _one_row_per_time(n: int, id_col: str | None, time_col: str, for_spec: bool) -> str:
    """How to keep one row per (series, time) of ``n`` repeated rows, saying what each way
    keeps of the readings."""
    if for_spec:
        return (
            f"merge or remove the {n} repeated rows in the source (a spec does not aggregate): "
            "average them to keep a value from every reading, or keep one of each, which drops "
            f"the other {n} readings."
        )
    keys = [c for c in (id_col, time_col) if c]
    return (
        f"aggregate the repeated rows, e.g. frame.group_by({keys}, maintain_order=True)"
        ".agg(pl.all().mean()) (a value from every reading), or keep one of each, e.g. "
        f"frame.unique(subset={keys}, keep='last'), which drops the other {n} readings."
    )


def _localise(
    hour: str,
    zones: Sequence[str],
    id_col: str | None,
    time_col: str,
    source: Any,
    used: Sequence[str],
    for_spec: bool,
) -> str:
    """The advice for times repeated on the hour a daylight-saving clock repeats (``hour``:
    its dates and hours; ``zones``: the time zones that repeat it, the best known first):
    localise the naive times, telling the two of each time apart by
    their order in each series (or by a column of ``source`` but ``used`` with one row per
    (value, time))."""
    said = (
        f"They fall on {hour}: the hour that clocks repeat when daylight saving time ends "
        f"(in {zones[0]}{f' and {len(zones) - 1} other time zones' if len(zones) > 1 else ''})"
        ". Naive local times? Each of those names two instants, neither a series "
        "nor a duplicate: "
    )
    if for_spec:
        return said + (
            "write the times in the source in UTC or with their UTC offset (in Central Europe "
            "02:00:00+02:00, then 02:00:00+01:00), so that each names one instant."
        )
    flags = (
        _candidate_columns(source, time_col, used, distinct=True)[0] if source is not None else []
    )
    first = f"pl.col({time_col!r}).is_first_distinct()"
    first += f".over({id_col!r})" if id_col is not None else ""
    flag = (
        f" (or from a column that tells them apart, e.g. {format_list(flags[:3])})" if flags else ""
    )
    return said + (
        f"localise them before fit with the data's time zone, e.g. frame.with_columns("
        f"pl.col({time_col!r}).dt.replace_time_zone({zones[0]!r}, ambiguous=pl.when("
        f"{first}).then(pl.lit('earliest')).otherwise(pl.lit('latest')))): in time order the "
        f"first of each repeated time{' of a series' if id_col else ''} is the summer-time "
        f"instant{flag}; or export the times "
        "in UTC."
    )

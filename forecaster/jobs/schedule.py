"""Scheduled data in a pipeline: stale series, future covariates beyond the as-of, holidays.

Series that end before the as-of
    A series whose data ends before the effective as-of (a delisted ticker, a late feed) is
    *stale* by the number of steps of the series' frequency between its last time and the
    as-of (``stale_steps``; business days skip ``[series] holidays``). ``[series]
    max_staleness`` (steps, default: the model's ``horizon``) and ``[series] stale`` decide
    what happens to it:

    - ``stale = "exclude"`` (the default): a series more than ``max_staleness`` steps behind is
      left out of the forecast (it is still used to fit and to backtest: its history is real
      data, within ``features.history_days``); one at most ``max_staleness`` steps behind is
      forecast from its own last time;
    - ``stale = "forecast"``: every series is forecast from its own last time.

    Either way every series that ends before the as-of is named in a ``ForecasterWarning`` and
    in ``summary.json`` (``stale_series``: id -> last time, ``stale_steps``: id -> steps,
    ``excluded_series``; but one too short for the model, neither fitted nor forecast, is in
    ``dropped_series`` instead), and ``forecasts.parquet`` has a ``stale_steps`` column (0 for
    a series that reaches the as-of) and an ``origin`` column (the time of the series' last
    input row), so a forecast dated before the as-of is never silent.
History window
    ``features.history_days = N`` keeps the rows of the ``N`` calendar days before the as-of
    (:func:`history_window`): one window for every series, counted back from the as-of, not
    from a stale series' own end, so a series whose data end before it is left out (named in
    a warning and in a run's ``dropped_series`` or ``excluded_series``).
Series a run uses no row of
    Named with their reason (:data:`DropReason`) by :mod:`forecaster.jobs.dropped`.
Future covariates
    With ``[series] future_covariates`` the source holds their values beyond the as-of: rows
    after each series' last observation, with the future covariate columns filled and the
    targets empty (or, for a backfill, the later data itself: only the future covariate
    columns of those rows are read). Each series' history ends at its last row with a target
    (its trailing rows without any are scheduled values, not missing data to fill), and the
    forecast reads the ``horizon`` steps after it from the source. A step the source lacks (no
    row, or an empty / non-finite value) is a ``DataValidationError`` (exit 3) before the fit,
    naming the series, the times and how many steps miss: a forecast never runs on invented
    covariates. Series excluded as stale need none.
Holidays
    ``[series] holidays = [2019-01-01, ...]`` (dates; business-day series, an explicit
    ``freq = "1bd"``) are skipped like weekends by the forecast dates and by the count of
    ``stale_steps``; a row of the data on a listed holiday is a ``DataValidationError`` (the
    list or the data is wrong). The model itself still trains on the weekday grid, where a
    holiday is a gap that ``[series] missing`` fills (``ffill``: the last close; its log return
    is 0, the row added after this check: :mod:`forecaster.jobs.returns`): step ``k`` of its
    forecast is dated on the ``k``-th business day after the origin that is not a holiday.
    Forecast dates after the last listed holiday's year skip none (a warning says so). Not
    with ``future_covariates`` nor with calendar features (``[model] calendar``, ``"auto"``
    included: ``dayofweek`` and ``dayofyear`` on business days): both are read on the
    weekday grid the model steps on, so a step's inputs would be of another date than its
    forecast's. The saved and logged model (its pyfunc) steps on that grid too: its forecasts
    are dated on every weekday, holidays included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from forecaster.data.calendar import calendar_for_freq
from forecaster.data.checks import check_unique_keys
from forecaster.data.frames import format_list, id_order
from forecaster.data.frequency import Frequency
from forecaster.data.frequency_inference import infer_frequency
from forecaster.data.steps import future_times, steps_behind
from forecaster.exceptions import DataValidationError, ForecasterWarning, SpecError, warn_at_caller
from forecaster.jobs.spec import Spec, build_estimator
from forecaster.jobs.unused import check_history_days

__all__ = [
    "DROP_REASONS",
    "DropReason",
    "absent_series",
    "check_holiday_rows",
    "check_schedule",
    "drop_excluded",
    "excluded_ids",
    "finish_forecast",
    "future_frame",
    "has_target",
    "history_window",
    "id_text",
    "iso_text",
    "max_staleness",
    "observed_rows",
    "observed_up_to",
    "series_frequency",
    "sorted_by_series",
    "spec_frequency",
    "stale_steps",
    "without_empty_targets",
]


DropReason = Literal["too_short", "no_target", "no_log_return", "after_as_of", "before_window"]
"""Why a run left a series out, neither fitted nor forecast (``summary.json``'s
``dropped_reasons``: series id -> code; :data:`DROP_REASONS` says what each means)."""

DROP_REASONS: dict[DropReason, str] = {
    "too_short": "fewer rows than the model's lookback",
    "no_target": "no value of a target (every row of it null or NaN: of every target, or of one)",
    "no_log_return": "no log return of features.log_returns (fewer than two observed prices)",
    "after_as_of": "its first target value is after the as-of",
    "before_window": "its data end before the features.history_days window before the as-of",
}
"""Each :data:`DropReason` code in words (the codes are stable: a scheduler may match them)."""


def check_schedule(file: Path, spec: Spec) -> None:
    """The ``[series]`` keys of this module against the rest of the spec (``SpecError``)."""
    series = spec.series
    if not series.holidays:
        return
    try:
        freq = Frequency.parse(series.freq) if series.freq != "auto" else None
    except DataValidationError:
        freq = None  # the estimator's own check names series.freq
    if freq is None or freq.unit != "bd":
        raise SpecError(
            f"{file}: key 'series.holidays' applies to business-day series: expected "
            f"series.freq = '1bd' (or 'Nbd'), received freq {series.freq!r}. Set freq = '1bd' "
            "or remove holidays."
        )
    read_on_weekdays = []  # what the model reads on its own weekday grid, holidays included
    if series.future_covariates:
        read_on_weekdays.append(("series.future_covariates", "their values"))
    calendar = spec.model.get("calendar")
    features = calendar_for_freq(calendar, freq)  # checked by the estimator
    if features:
        auto = " (what calendar = 'auto' adds)" if calendar == "auto" else ""
        read_on_weekdays.append(("model.calendar", f"its calendar features {list(features)}{auto}"))
    if read_on_weekdays:
        keys = " and ".join(key for key, _ in read_on_weekdays)
        what = " and ".join(what for _, what in read_on_weekdays)
        raise SpecError(
            f"{file}: key 'series.holidays' cannot be used with {keys} (the model steps on "
            f"weekdays, holidays included, so {what} would be read on other dates than the "
            "forecast's: step k is dated on the k-th business day that is no holiday). Remove "
            f"series.holidays, or {keys}."
        )


def spec_frequency(spec: Spec) -> Frequency | None:
    """The spec's explicit frequency with its holidays (None: ``freq = "auto"``)."""
    if spec.series.freq == "auto":
        return None
    freq = Frequency.parse(spec.series.freq)
    holidays = tuple(sorted(spec.series.holidays))
    return Frequency(freq.n, freq.unit, holidays) if holidays else freq


def _layout(frame: pl.DataFrame, spec: Spec) -> tuple[pl.DataFrame, np.ndarray]:
    """``frame`` sorted by (id, time) and the row offsets of its series."""
    id_col, time_col = spec.series.id, spec.series.time
    frame = sorted_by_series(frame, id_col, time_col)
    if id_col is None:
        return frame, np.array([0, frame.height])
    lengths = frame.group_by(id_col, maintain_order=True).len()["len"].to_numpy()
    return frame, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def series_frequency(spec: Spec, frame: pl.DataFrame) -> Frequency:
    """The series' frequency: the spec's (with its holidays), else inferred as fit infers it."""
    freq = spec_frequency(spec)
    if freq is not None:
        return freq
    ordered, offsets = _layout(frame, spec)
    return infer_frequency(ordered[spec.series.time], offsets)


def max_staleness(spec: Spec) -> int:
    """``[series] max_staleness``, by default the model's ``horizon`` (steps)."""
    limit = spec.series.max_staleness
    return int(build_estimator(spec, False).horizon) if limit is None else limit


def stale_steps(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """``(id, __last__, __steps__)`` of the series of ``frame`` that are stale, sorted by their
    last time: the step after their last time is at or before the frame's last time, and they
    are ``__steps__`` steps of the series' frequency behind it
    (:func:`~forecaster.data.steps.steps_behind`, the rule native ``predict`` and the pyfunc
    use)."""
    id_col, time_col = spec.series.id, spec.series.time
    if id_col is None or frame.height == 0:
        return pl.DataFrame()
    last = frame[time_col].max()
    dtype = frame.schema[time_col]
    ends = frame.group_by(id_col).agg(pl.col(time_col).max().alias("__last__"))
    ends = ends.filter(pl.col("__last__") < pl.lit(last, dtype))
    if ends.height == 0:
        return ends.with_columns(pl.lit(0, pl.Int64).alias("__steps__"))
    freq = series_frequency(spec, frame)
    behind = frame.join(ends.select(id_col), on=id_col, how="semi", nulls_equal=True)
    ordered, offsets = _layout(behind, spec)
    ends = pl.DataFrame(
        {
            id_col: ordered[id_col].gather(offsets[:-1]),
            "__last__": ordered[time_col].gather(offsets[1:] - 1),
            "__steps__": steps_behind(ordered[time_col], offsets, freq, last),
        }
    )
    ends = ends.filter(pl.col("__steps__") > 0)
    return ends.sort([pl.col("__last__"), id_order(ends[id_col])])


def observed_rows(source: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Each series' rows up to its last row with a target value (not null, not NaN): the rows
    after it hold scheduled future covariates, or targets not known yet, so a series whose
    last values are missing ends at its last observed one, and is stale by the steps after
    it (not forecast from values ``missing="ffill"`` would make up). A series with no target
    value at all is dropped, named in a ``ForecasterWarning`` (a
    :class:`~forecaster.exceptions.DataValidationError` when no series has one)."""
    series = spec.series
    observed = has_target(source, spec)
    last = pl.col(series.time).filter(observed).max()
    if series.id is None:
        if not source.select(observed.any()).item():
            raise DataValidationError(
                f"The target {format_list(series.targets)} has no value in the source (every "
                "row null or NaN), so there is nothing to fit or forecast. Check the "
                "[series] target names and the source's values."
            )
        return source.filter(pl.col(series.time) <= last)
    ends = source.group_by(series.id, maintain_order=True).agg(last.alias("last"))
    empty = ends.filter(pl.col("last").is_null())[series.id]
    if empty.len() == ends.height:
        raise DataValidationError(
            f"No series has a value of the target {format_list(series.targets)} in the source "
            "(every row null or NaN), so there is nothing to fit or forecast. Check the "
            "[series] target names and the source's values."
        )
    if empty.len():
        warn_at_caller(
            f"Dropped {empty.len()} series with no target value (every row of "
            f"{format_list(series.targets)} null or NaN): {format_list(empty.to_list(), 10)}. "
            + (
                "It has no history to fit or forecast from. Fill its values in the source or "
                "remove it."
                if empty.len() == 1
                else "They have no history to fit or forecast from. Fill their values in the "
                "source or remove them."
            ),
            ForecasterWarning,
        )
    return source.filter(pl.col(series.time) <= last.over(series.id))


def has_target(frame: pl.DataFrame, spec: Spec) -> pl.Expr:
    """Rows with a value of a target (not null, not NaN)."""
    return pl.any_horizontal([_has_value(frame, t) for t in spec.series.targets])


def _has_value(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Rows with a value of ``column`` (not null, not NaN)."""
    if frame.schema[column].is_float():
        return pl.col(column).is_not_null() & ~pl.col(column).is_nan()
    return pl.col(column).is_not_null()


def without_empty_targets(
    frame: pl.DataFrame, spec: Spec, as_of: str
) -> tuple[pl.DataFrame, tuple[tuple[str, DropReason], ...]]:
    """``frame`` (the rows a run uses, up to the as-of ``as_of``) without the series that
    have no value there of one of their ``[series] targets`` (every row of it null or NaN;
    the others have values), and those series, each ``(id as text, "no_target")``, named in
    a ``ForecasterWarning`` with their empty targets: a model forecasts every target of a
    series from its history, and no ``missing`` policy makes one up from nothing
    (``"error"`` refused the whole run over that one series). A ``DataValidationError``
    names the targets when no series is left. A series with no value of any target is
    :func:`observed_rows`'s."""
    id_col, targets = spec.series.id, spec.series.targets
    if len(targets) < 2:
        return frame, ()
    has = [_has_value(frame, t).any().alias(f"__has_{i}__") for i, t in enumerate(targets)]
    table = frame.group_by(id_text(id_col), maintain_order=True).agg(has) if id_col else None
    table = frame.select(has) if table is None else table
    found = [(row[0] if id_col else None, row[-len(targets) :]) for row in table.iter_rows()]
    empty = [  # rows without an id: the model's check refuses them, naming the column
        (key, [t for t, value in zip(targets, values, strict=True) if not value])
        for key, values in found
        if not all(values) and not (id_col and key is None)
    ]
    if not empty:
        return frame, ()
    where = f"in the rows up to the as-of {as_of}" + (
        f" (the features.history_days = {spec.features.history_days} window)"
        if spec.features.history_days
        else ""
    )
    if len(empty) == table.height:
        none = format_list(sorted({t for _, ts in empty for t in ts}))
        what = (
            f"No series has values of every target {where}: each lacks one of {none}"
            if id_col
            else f"The series has no value of {none} {where}"
        )
        raise DataValidationError(
            f"{what} (every row null or NaN), so there is nothing to fit or forecast. Fill the "
            "values in the source, or leave that target out of series.targets."
        )
    one = len(empty) == 1
    shown = ", ".join(f"{key!r} (no {format_list(ts)})" for key, ts in empty[:10])
    more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
    warn_at_caller(
        f"Dropped {len(empty)} series with no value of a target {where} (every row of it null "
        f"or NaN; {'its' if one else 'their'} other targets have values): {shown}{more}. A "
        "model forecasts every target of a series from its history, so "
        f"{'it is' if one else 'they are'} neither fitted nor forecast. Fill "
        f"{'its' if one else 'their'} values in the source, or leave "
        f"{'that series' if one else 'those series'} out of it.",
        ForecasterWarning,
    )
    ids = [str(key) for key, _ in empty]
    return drop_excluded(frame, spec, ids), tuple((key, "no_target") for key in ids)


def observed_up_to(cut: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """The rows of ``cut`` (those of :func:`observed_rows` up to the as-of) up to each series'
    last target value in them, as :func:`observed_rows` reads the data of the as-of itself:
    a series whose values up to the as-of end in nulls, filled only after it, ends at its last one
    (stale), not at the as-of with missing values, and a series with no target value up to the as-of
    has no row (:func:`forecaster.jobs.dropped.left_out_series` names it ``after_as_of``). The rows
    after the as-of never decide."""
    time_col, id_col = spec.series.time, spec.series.id
    last = pl.col(time_col).filter(has_target(cut, spec)).max()
    return cut.filter(pl.col(time_col) <= (last if id_col is None else last.over(id_col)))


def future_frame(
    source: pl.DataFrame, history: pl.DataFrame, spec: Spec, excluded: tuple[str, ...]
) -> pl.DataFrame:
    """The future covariates over the ``horizon`` steps after each series of ``history`` (but
    the ``excluded``), read from the ``source`` rows after the series' last time; a step
    without a finite value of each is a ``DataValidationError`` naming it."""
    series = spec.series
    id_col, time_col, names = series.id, series.time, list(series.future_covariates)
    horizon = int(build_estimator(spec, False).horizon)
    history = drop_excluded(history, spec, excluded)
    ordered, offsets = _layout(history, spec)
    freq = series_frequency(spec, history)
    times = future_times(ordered[time_col], offsets, freq, horizon)
    keys = [c for c in (id_col, time_col) if c]
    expected = pl.DataFrame({time_col: times})
    rows = source.select([*keys, *names])
    if id_col is not None:
        starts = ordered[id_col].gather(offsets[:-1])
        expected = expected.with_columns(starts.gather(np.repeat(np.arange(len(starts)), horizon)))
        ends = ordered.group_by(id_col).agg(pl.col(time_col).max().alias("__last__"))
        rows = rows.join(ends, on=id_col).filter(pl.col(time_col) > pl.col("__last__"))
        rows = rows.drop("__last__")
    else:
        rows = rows.filter(pl.col(time_col) > ordered[time_col].max())
    joined = expected.select(keys).join(rows, on=keys, how="left")
    check_unique_keys(joined, keys, what="source after the as-of")
    bad = pl.any_horizontal(
        [
            pl.col(c).is_null() | (~pl.col(c).is_finite() if rows.schema[c].is_float() else False)
            for c in names
        ]
    )
    missing = joined.filter(bad)
    if missing.height:
        as_of = pl.lit(ordered[time_col].max(), dtype=ordered.schema[time_col])
        early = missing.filter(pl.col(time_col) <= as_of)
        raise DataValidationError(
            f"The source has no values of the future covariates {names} for {missing.height} "
            f"of the {expected.height} forecast steps: {_key_rows(missing, keys)}. A pipeline "
            "reads them from the source's rows after each series' last observation (the "
            f"columns {names} filled, the targets empty). "
            + (_stale_steps_fix(early, spec, ordered[time_col].max()) if early.height else "")
            + "Add those rows to the source, or leave the series out of it."
        )
    return joined


def _key_rows(rows: pl.DataFrame, keys: list[str]) -> str:
    """The first 5 (id, time) ``keys`` of ``rows`` as text, and how many more."""
    shown = ", ".join(" ".join(map(str, row)) for row in rows.select(keys).head(5).iter_rows())
    return shown + (f" and {rows.height - 5} more" if rows.height > 5 else "")


def _stale_steps_fix(early: pl.DataFrame, spec: Spec, as_of: Any) -> str:
    """What is missing when forecast steps without future covariates (``early``) fall at
    or before the ``as_of``: steps of series that end before it (stale), forecast from their
    own last row, and the ``[series]`` keys that leave such series out of the forecast."""
    series = spec.series
    ids = early[series.id].unique(maintain_order=True).to_list() if series.id else []
    which = f"series {format_list(ids, 5)}" if ids else "the series"
    keys = (
        'stale = "exclude" (the default) with max_staleness'
        if series.stale == "forecast"
        else "max_staleness"
    )
    return (
        f"{early.height} of those steps are at or before the as-of {as_of}: {which} "
        f"{'ends' if len(ids) == 1 else 'end'} before it, and "
        + (
            'stale = "forecast" forecasts a stale series'
            if series.stale == "forecast"
            else f"max_staleness = {series.max_staleness} (steps; default: the horizon) "
            "forecasts a series at most that many steps behind"
        )
        + " from its own last row, so its forecast steps start there, before the as-of: the "
        "source needs its rows of those steps too. To leave such series out of the forecast "
        f"instead, set {keys} below the steps they are behind in [series]. "
    )


def check_holiday_rows(frame: pl.DataFrame, spec: Spec) -> None:
    """No row of the data on a listed holiday (the list or the data would be wrong)."""
    holidays = spec.series.holidays
    if not holidays:
        return
    time_col = spec.series.time
    day = pl.col(time_col).dt.date() if frame.schema[time_col] != pl.Date else pl.col(time_col)
    rows = frame.filter(day.is_in(holidays))
    if rows.height:
        dates = sorted({str(v) for v in rows.select(day)[time_col].to_list()})
        raise DataValidationError(
            f"The data has {rows.height} rows on dates listed in series.holidays ("
            f"{', '.join(dates[:5])}{' ...' if len(dates) > 5 else ''}): a holiday has no "
            "data. Remove those dates from series.holidays, or the rows from the data."
        )


def finish_forecast(forecast: pl.DataFrame, history: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """``forecast`` (of ``history``'s series) with its ``origin`` column (each series' last
    input time) after the time column, a ``stale_steps`` column, and its dates moved past the
    spec's holidays."""
    id_col, time_col = spec.series.id, spec.series.time
    if id_col is None:
        ends = pl.DataFrame(
            {"origin": [history[time_col].max()]}, schema={"origin": history.schema[time_col]}
        )
        forecast = forecast.join(
            ends.with_columns(pl.lit(0, pl.Int64).alias("stale_steps")), how="cross"
        )
    else:
        ends = history.group_by(id_col).agg(pl.col(time_col).max().alias("origin"))
        stale = stale_steps(history, spec)
        steps = stale.select(id_col, "__steps__") if stale.height else None
        if steps is not None:
            ends = ends.join(steps, on=id_col, how="left")
        else:
            ends = ends.with_columns(pl.lit(None, pl.Int64).alias("__steps__"))
        ends = ends.with_columns(pl.col("__steps__").fill_null(0).alias("stale_steps"))
        forecast = forecast.join(
            ends.drop("__steps__"), on=id_col, how="left", maintain_order="left"
        )
    freq = spec_frequency(spec)
    if freq is not None and freq.holidays:
        forecast = _past_holidays(forecast, spec, freq)
    columns = [c for c in forecast.columns if c not in ("origin", "stale_steps")]
    at = columns.index(time_col) + 1
    order = [*columns[:at], "origin", *columns[at:], "stale_steps"]
    return forecast.select(order)


def _past_holidays(forecast: pl.DataFrame, spec: Spec, freq: Frequency) -> pl.DataFrame:
    """Step ``k`` of every series dated ``k`` business days after its origin, holidays
    skipped; a warning when the dates pass the last listed holiday's year."""
    id_col, time_col = spec.series.id, spec.series.time
    step = pl.col(time_col).rank("ordinal")
    step = step.over(id_col) if id_col else step
    moved = forecast.with_columns(
        freq.offset(pl.col("origin"), step.cast(pl.Int64))
        .cast(forecast.schema[time_col])
        .alias(time_col)
    )
    last_year = max(freq.holidays).year
    latest = moved[time_col].max()
    if latest is not None and getattr(latest, "year", 0) > last_year:
        warn_at_caller(
            f"series.holidays lists dates up to {last_year}, but the forecast reaches "
            f"{latest!s}: its dates after {last_year} skip no holiday. Extend series.holidays.",
            ForecasterWarning,
        )
    return moved


def excluded_ids(stale: pl.DataFrame, spec: Spec) -> tuple[str, ...]:
    """The stale series that ``[series] stale = "exclude"`` leaves out of the forecast."""
    id_col = spec.series.id
    if spec.series.stale != "exclude" or stale.height == 0 or id_col is None:
        return ()
    limit = max_staleness(spec)
    over = stale.filter(pl.col("__steps__") > limit)
    return tuple(over.select(id_text(id_col)).to_series().to_list())


def id_text(id_col: str) -> pl.Expr:
    """The series id of column ``id_col`` as text: the one conversion that names a series in
    ``summary.json`` and the warnings and that :func:`drop_excluded` matches, whatever the
    id's dtype (a Python ``str`` of a datetime or a bool differs from Polars' text)."""
    return pl.col(id_col).cast(pl.String)


def sorted_by_series(
    frame: pl.DataFrame, id_col: str | None, time_col: str, *, maintain_order: bool = False
) -> pl.DataFrame:
    """``frame`` sorted by (id, time), its series in the library's order whatever the id's
    dtype: text ids by their text (:func:`~forecaster.data.frames.id_order`; an Enum or a
    Categorical id, as a Parquet source may give, would sort by its categories), so the
    outputs, warnings and ``summary.json`` of a CSV source and of a Parquet one list the
    series alike. ``maintain_order`` keeps the order of rows with equal keys."""
    if id_col is None:
        return frame.sort(time_col, maintain_order=maintain_order)
    return frame.sort([id_order(frame[id_col]), pl.col(time_col)], maintain_order=maintain_order)


def absent_series(frame: pl.DataFrame, made: pl.DataFrame, id_col: str) -> list[str]:
    """The series of ``frame`` (:func:`id_text`, in its order) with no row in ``made``."""
    given = frame.select(id_text(id_col)).unique(maintain_order=True)
    kept = made.select(id_text(id_col)).unique()
    return given.join(kept, on=id_col, how="anti", maintain_order="left")[id_col].to_list()


def drop_excluded(
    frame: pl.DataFrame, spec: Spec, excluded: tuple[str, ...] | list[str]
) -> pl.DataFrame:
    """``frame`` without the rows of the series whose :func:`id_text` is in ``excluded``.
    Rows without an id are kept, for the model's check to refuse them (``is_in`` of a null is
    null, which a filter would drop without a word)."""
    id_col = spec.series.id
    if id_col is None or not excluded:
        return frame
    return frame.filter(~id_text(id_col).is_in(list(excluded)).fill_null(False))


def history_window(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Keep the rows of the last ``features.history_days`` days before the as-of (the last
    time of ``frame``, cut at it): one window for every series, a stale one too (calendar
    days of the time column's zone; dates / datetimes; an integer time column is refused:
    :func:`forecaster.jobs.unused.check_history_days`)."""
    days = spec.features.history_days
    time_col = spec.series.time
    check_history_days(spec, frame.schema[time_col])
    if days is None:
        return frame
    first, last = pl.col(time_col).min(), pl.col(time_col).max()
    if spec.series.id:
        first = first.over(spec.series.id)
    # a series whose first day is within the window is kept whole; the cutoff is computed only
    # for the others, where it lies after their first row (it cannot pass the dtype's range)
    within = (last.dt.date() - first.dt.date()).dt.total_days() < days
    back = pl.when(within).then(0).otherwise(days)
    # calendar days: a local day across a daylight-saving change lasts 23 or 25 hours
    cutoff = last.dt.offset_by(pl.format("-{}d", back))
    return frame.filter(within | (pl.col(time_col) > cutoff))


def iso_text(value: Any) -> str:
    """``value`` as the CLI reads it back: ISO 8601 text with a ``T`` and the UTC offset of
    a zoned time (never ``str(datetime)``, whose space the shell splits); an integer as it is.

    Examples
    --------
    >>> import datetime as dt
    >>> iso_text(dt.datetime(2024, 3, 31, 3, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    '2024-03-31T03:00:00+02:00'
    >>> iso_text(dt.date(2024, 3, 31)), iso_text(7)
    ('2024-03-31', '7')
    """
    return value.isoformat() if hasattr(value, "isoformat") else str(value)

"""The data of a run: the spec's source read, its features, the as-of and stale series.

As-of labels
    The label is the *effective* as-of, the last time in the data the as-of selects, formatted
    for the time column (:func:`as_of_label`): a ``Date`` ``YYYY-MM-DD``; a ``Datetime``
    ``YYYY-MM-DD`` when that time is midnight, else ``YYYY-MM-DDTHH-MM-SS`` (``.ffffff`` when
    needed; local time of the column's zone, with the UTC offset when the wall time occurs
    twice; ``-`` for ``:``, which some file systems refuse); an integer step the integer. So
    the same rows always make the same run: ``20170620``, ``2017-06-20`` and
    ``2017-06-20T00:00`` on a date column, ``2024-06-01`` and ``2024-06-01T00:00`` on daily
    datetimes, a Friday and the weekend after it on business days. A date on a ``Datetime``
    column selects the whole day (in the column's zone), a date and time up to that moment; a
    time of day on a ``Date`` column is refused. No as-of: the last time in the data. A cron
    job passing ``--as-of $(date +%F)`` on a holiday selects the previous trading day's rows:
    it reports that day's outputs as already written (exit 0) once that day has run.
As-of outside the data
    Before the first time in the data: ``DataValidationError`` (exit 3). After the last time,
    including a date in the future: accepted with a ``ForecasterWarning``, and labelled as the
    data's last time. It selects exactly the rows of that as-of, so its outputs are that
    as-of's, and a rerun finds them. Refusing would fail every scheduled run on a day the data
    has not reached (a holiday, a late feed); labelling it with the requested date would name a
    forecast after data it never saw. The clock plays no part: the data defines time, and data
    dated in the future is used as it is.
Series that end before the as-of
    A series whose data ends before the effective as-of (a delisted ticker, a late feed) is
    *stale* by the steps of its frequency between its last time and the as-of.
    :func:`prepare_data`, which every command goes through, names the stale series in a
    ``StaleSeriesWarning`` (their count, the first five with their last times and steps), and
    the run records them in ``summary.json`` (``stale_series``: id -> last time, at most
    :data:`~forecaster.jobs.stale.STALE_LISTED`; ``stale_series_count``; ``stale_steps``;
    ``excluded_series``), but
    those too short for the model, which it neither fits nor forecasts (``dropped_series``;
    :meth:`AsOf.without`). The warning comes before the model is fitted, so it says that a
    series too short for the model's lookback is dropped rather than forecast. The
    spec's ``[series] max_staleness`` and ``stale`` policy decide whether each is left out of
    the forecast or forecast from its own last time (:mod:`forecaster.jobs.schedule`); every
    forecast row carries its ``origin`` and ``stale_steps``. All are still used to fit, but
    the rows before the ``features.history_days`` window before the as-of: a series with none
    after its start is named in a warning and left out (:attr:`AsOf.left_out`).
Series with no row up to the as-of
    A series whose first row is after the as-of (listed later; an earlier as-of rerun) has
    nothing to fit or forecast from: it is named in a ``ForecasterWarning`` with its first
    time and in a run's ``dropped_series`` (:attr:`AsOf.left_out`), as are the series with
    no value of a target or no log return: every series of the source is forecast or named.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import numbers
import re
import zoneinfo
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.audio import MfccSettings, import_audio_backend, mfcc_frames, mfcc_settings
from forecaster.data.checks import missing_columns_message, not_numeric_message
from forecaster.data.time_span import check_time_span
from forecaster.data.times import plain_time, to_time_point
from forecaster.datasets import load_audio_mfcc, load_stocks
from forecaster.exceptions import (
    ArgumentError,
    DataValidationError,
    ForecasterWarning,
    SpecError,
    warn_at_caller,
)
from forecaster.jobs.dropped import left_out_series
from forecaster.jobs.returns import with_absent_rows, with_log_returns
from forecaster.jobs.schedule import (
    DropReason,
    check_holiday_rows,
    excluded_ids,
    future_frame,
    history_window,
    id_text,
    iso_text,
    observed_rows,
    observed_up_to,
    stale_steps,
    without_empty_targets,
)
from forecaster.jobs.sources import read_files, rows_with_ids, source_files
from forecaster.jobs.spec import MfccSpec, Spec, logret_column
from forecaster.jobs.stale import stale_fields, warn_stale

__all__ = [
    "AsOf",
    "AsOfLike",
    "as_of_label",
    "as_of_text",
    "is_later",
    "iso_text",
    "load_data",
    "prepare_data",
]

AsOfLike = str | dt.date | int | np.integer | np.datetime64 | pl.Expr | pl.Series
"""What an ``as_of`` may be (:func:`as_of_text`): an ISO date, date and time or integer step
as text, a ``datetime.date`` or ``datetime.datetime``, an int or numpy integer, a
``numpy.datetime64``, a polars literal (``pl.date(...)``) or a one-value Series."""


def load_data(spec: Spec, root: Path) -> pl.DataFrame:
    """Read the spec's source (lazily where possible) and add its features (log returns on
    the source's rows: :func:`prepare_data` adds the rows the grid lacks)."""
    return _with_features(_read_source(spec, root), spec)


def _with_features(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """The source's ``frame`` with its ``[features]`` (log returns)."""
    return with_log_returns(frame, spec) if spec.features.log_returns else frame


def _read_source(spec: Spec, root: Path) -> pl.DataFrame:
    """The spec's source as read, its columns checked."""
    source = spec.source
    mfcc = spec.features.mfcc
    settings = None
    if source.dataset == "audio" or source.format == "wav":
        settings = _checked_mfcc(mfcc or MfccSpec())
    if source.dataset == "stocks":
        frame = load_stocks(source.tickers)
    elif source.dataset == "audio":
        frame = load_audio_mfcc(**(mfcc or MfccSpec()).model_dump())
    elif settings is not None:  # format = "wav"
        import_audio_backend()  # the missing extra before the files
        frame = mfcc_frames(
            source_files(spec, root),
            settings,
            chosen_by="source.path",
            rate_key="[features.mfcc] sample_rate = ",
        )
    else:
        frame = read_files(spec, root)
    _check_columns(frame, spec)
    return rows_with_ids(frame, spec)


def _check_columns(frame: pl.DataFrame, spec: Spec) -> None:
    """The columns the spec names exist (with a hint for a wrong separator), the targets and
    covariates are numbers (a column of text is refused naming a few of its texts and the
    spec's fix, before any as-of is taken from the rows), the log-return columns are positive
    finite numbers (NaN: missing), and the source has no column that log_returns adds."""
    series = spec.series
    roles = {  # role: its columns, the spec keys that name them
        "id": ([series.id] if series.id else [], "[series] id"),
        "time": ([series.time], "[series] time"),
        "target": (series.targets, "[series] targets"),
        "covariate": (series.covariates, "[series] covariates"),
        "log-return": (spec.features.log_returns, "[features] log_returns"),
        "future covariate": (series.future_covariates, "[series] future_covariates"),
    }
    for role, (names, key) in roles.items():
        missing = [c for c in names if c not in frame.columns]
        if missing:
            fix = f"Fix {key} in the spec, or the column names of source.path {spec.source.path!r}."
            raise DataValidationError(missing_columns_message(missing, frame.columns, role, fix))
    _check_time_values(frame, spec)
    for role in ("target", "covariate", "future covariate"):
        for column in roles[role][0]:
            dtype = frame.schema[column]
            if not (dtype.is_numeric() or dtype == pl.Boolean or _all_null(frame, column)):
                message = not_numeric_message(
                    frame,
                    column,
                    dtype,
                    role=role,
                    fix=_numbers_fix(spec, roles[role][1]),
                    decimal_comma=spec.source.decimal_comma,
                )
                raise DataValidationError(message)
    for column in spec.features.log_returns:
        dtype = frame.schema[column]
        if not dtype.is_numeric():
            raise DataValidationError(
                f"features.log_returns needs numbers, but column {column!r} is {dtype}."
            )
        added = logret_column(column)
        if added in frame.columns:
            raise DataValidationError(
                f"features.log_returns adds a column {added!r} (the log returns of {column!r}), "
                f"but the source has a column {added!r} of its own, which it would replace. "
                f"Rename the source's column {added!r}, or remove {column!r} from log_returns."
            )
        price = pl.col(column).cast(pl.Float64)
        bad = frame.filter((price <= 0) | price.is_infinite())
        if bad.height:
            raise DataValidationError(
                f"features.log_returns takes logarithms, but column {column!r} has {bad.height} "
                f"values <= 0 or infinite (e.g. {bad[column][0]!r} at {series.time}="
                f"{bad[series.time][0]}). Expected positive finite prices (NaN and empty: "
                "missing); remove log_returns or clean those rows."
            )


def _check_time_values(frame: pl.DataFrame, spec: Spec) -> None:
    """Refuse a time column without any value (every row null: a column left empty, a
    Parquet column of type ``Null``): no row has a time to order or forecast from, and the
    checks after this one would blame the targets ("no value of the target") or the column's
    type. Refuse times out of the range the package computes in (a date before the year 1
    or after 9999: :func:`~forecaster.data.time_span.check_time_span`) before any as-of is taken
    from them, naming the spec's fix."""
    time_col = spec.series.time
    source = spec.source
    where = f"source.path {source.path!r}" if source.path else "the source"
    dtype = frame.schema[time_col]
    if frame.height == 0 or frame[time_col].null_count() < frame.height:
        if dtype in (pl.Date, pl.Datetime) or dtype.is_integer():  # others: refused by type
            read = f" (or source.time_format {source.time_format!r}, if it reads them wrongly)"
            fix = f"Fix those times in {where}{read if source.time_format else ''}, or drop "
            check_time_span(frame[time_col], time_col, fix=fix + "their rows.")
        return
    typed = " (a Parquet column of type Null)" if dtype == pl.Null else ""
    raise DataValidationError(
        f"Time column {time_col!r} of {where} has no values: all {frame.height} rows are "
        f"null{typed}. Expected a time in every row: write the times into the column, or set "
        "[series] time to the column that holds them."
    )


def _all_null(frame: pl.DataFrame, column: str) -> bool:
    """Whether ``column`` holds no value (a CSV column left empty is read as text): a series
    without a target value is dropped and named, not refused as text."""
    return frame[column].null_count() == frame.height


_DECIMAL_COMMA = "1234,5 (or \"1234,5\" in quotes when source.separator is ',')"
"""How a number with a decimal comma is written, for messages."""


def _numbers_fix(spec: Spec, key: str) -> str:
    """How to make the spec read a column of ``key`` (``"[series] targets"``) that its source
    holds as text as numbers: the spec's fix first (``source.decimal_comma`` for CSV numbers
    written with a decimal comma, ``source.null_values`` for placeholders), or the files'."""
    source = spec.source
    fix = f"or fix those values in source.path {source.path!r}, or the column in {key}."
    placeholders = (
        "list placeholders such as 'n/a' in source.null_values ('' for values written as \"\"), "
    )
    if source.format == "csv" and not source.decimal_comma:
        return (
            f"Numbers written with a decimal comma, as {_DECIMAL_COMMA}, are read with "
            f"decimal_comma = true in the spec's [source]; {placeholders}{fix}"
        )
    if source.format == "csv":
        return (
            "With source.decimal_comma = true a number is written with a comma and without a "
            f"thousands separator, as {_DECIMAL_COMMA}: not 1.234,5, nor 1234.5; "
            f"{placeholders}{fix}"
        )
    if source.format == "parquet":
        return f"Write the column as numbers (integers or floats) in the Parquet files, {fix}"
    return f"Fix the column in {key}."


@dataclasses.dataclass(frozen=True)
class AsOf:
    """The as-of of a run (see this module's docstring).

    Attributes
    ----------
    label : str
        The canonical label that names the outputs and keys idempotency: the effective as-of,
        formatted for its dtype.
    requested : str or None
        The as-of as it was asked for (None: the last time in the data).
    effective : str
        The last time in the data the run uses (ISO).
    stale : tuple of (str, str)
        ``(series id, its last time)`` of the series that end before the effective as-of (at
        most :data:`~forecaster.jobs.stale.STALE_LISTED`): their forecasts start after their
        own last time.
    stale_count : int
        How many series end before the effective as-of.
    stale_steps : tuple of (str, int)
        ``(series id, steps of its frequency behind the as-of)`` of the listed stale series.
    excluded : tuple of str
        The stale series the spec's ``[series] stale`` policy leaves out of the forecast.
    future : polars.DataFrame or None
        With future covariates: their values over the horizon after each forecast series,
        read from the source beyond the as-of (:func:`forecaster.jobs.schedule.future_frame`).
    ends : polars.DataFrame or None
        Every stale series (not only the listed ones): its id as text, its last time and its
        steps behind the as-of, in the order of ``stale`` (:meth:`without` counts from it).
    left_out : tuple of (str, str)
        ``(series id, why)`` of the series of the source none of whose rows the run uses,
        each named in a warning (:func:`forecaster.jobs.dropped.left_out_series`: no target
        value or log return, a first row after the as-of, data that end before the
        ``features.history_days`` window; a run's ``dropped_series`` and ``dropped_reasons``).
    """

    label: str
    requested: str | None
    effective: str
    stale: tuple[tuple[str, str], ...] = ()
    stale_count: int = 0
    stale_steps: tuple[tuple[str, int], ...] = ()
    excluded: tuple[str, ...] = ()
    future: pl.DataFrame | None = dataclasses.field(default=None, compare=False, repr=False)
    ends: pl.DataFrame | None = dataclasses.field(default=None, compare=False, repr=False)
    left_out: tuple[tuple[str, DropReason], ...] = ()

    def __str__(self) -> str:
        return self.label

    def without(self, ids: Collection[str]) -> AsOf:
        """This as-of with the series ``ids`` (by their id as text) no longer among its stale
        series: listed (up to :data:`~forecaster.jobs.stale.STALE_LISTED`, the next ones
        taking their places) and
        counted, however many series are stale. A run leaves out the series it neither fits
        nor forecasts (too short for the model), so a stale series is never reported as if
        forecast when it was dropped."""
        if self.ends is None or not ids:
            return self
        return dataclasses.replace(self, **stale_fields(self.ends, ids))


_INTEGER = re.compile(r"[+-]?[0-9]+")
_LABEL_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2})-([0-9]{2})-([0-9]{2})")


def as_of_label(value: Any) -> str:
    """The canonical label of an effective as-of (the last time a run uses).

    A date ``YYYY-MM-DD``; a datetime ``YYYY-MM-DD`` at midnight, else
    ``YYYY-MM-DDTHH-MM-SS`` (``.ffffff`` when needed; local time of its zone, with its UTC
    offset when that wall time occurs twice); an integer step the integer. Labels hold no
    ``:`` (some file systems refuse it) and no ``/``.

    Examples
    --------
    >>> import datetime as dt
    >>> as_of_label(dt.datetime(2024, 6, 1)), as_of_label(dt.datetime(2024, 6, 1, 16, 30))
    ('2024-06-01', '2024-06-01T16-30-00')
    >>> as_of_label(dt.date(2017, 6, 30)), as_of_label(82)
    ('2017-06-30', '82')
    """
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        local = value.replace(tzinfo=None)
        text = local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
        text = text.replace(":", "-")
        if value.tzinfo is not None and _ambiguous(value):
            text += value.strftime("%z")
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise DataValidationError(f"Cannot label the as-of {value!r} ({type(value).__name__}).")


def _ambiguous(moment: dt.datetime) -> bool:
    """Whether the wall time of an aware ``moment`` occurs twice (a clock set back)."""
    other = moment.replace(fold=1 - moment.fold)
    return other.utcoffset() != moment.utcoffset()


def _parse_as_of(text: str, dtype: pl.DataType, time_col: str) -> tuple[Any, bool]:
    """``(bound, whole_day)`` for ``--as-of text`` on a time column of ``dtype``; the bound is
    comparable with the column's values (aware in its time zone, when it has one)."""

    def refuse(why: str) -> ArgumentError:
        return ArgumentError(
            f"--as-of {text!r} does not fit the time column {time_col!r} ({dtype}): {why}."
        )

    if dtype.is_integer():
        if not _INTEGER.fullmatch(text):
            raise refuse("expected an integer step such as 120")
        return int(text), False
    try:
        day: dt.date | None = dt.date.fromisoformat(text)
    except ValueError:
        day = None
    zone = getattr(dtype, "time_zone", None)
    tzinfo = zoneinfo.ZoneInfo(zone) if zone else None
    if day is not None:
        if dtype == pl.Date:
            return day, True
        return dt.datetime.combine(day, dt.time.max, tzinfo), True
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise refuse(
            "expected an ISO date such as 2017-06-30 (or 20170630), or a date and time such as "
            "2017-06-30T16:00"
        ) from None
    if dtype == pl.Date:
        if moment.tzinfo is not None:  # Airflow's {{ ts }}: 2024-06-01T00:00:00+00:00
            raise refuse(
                "it carries a UTC offset, and a Date column has neither a time zone nor a time "
                f"of day; pass the date alone, e.g. --as-of "
                f"{moment.date().isoformat()} (under Airflow: {{{{ ds }}}}, not {{{{ ts }}}})"
            )
        if moment.time() != dt.time(0):
            raise refuse("a Date column has no time of day; pass the date alone, e.g. 2017-06-30")
        return moment.date(), True
    if moment.tzinfo is not None and tzinfo is None:
        raise refuse(
            "it has a UTC offset but the column has no time zone; pass a date or a datetime "
            "without an offset"
        )
    try:  # the rule of predict(cutoff=...): a local time the clocks skip or repeat is refused
        return to_time_point(text, dtype, name="--as-of"), False
    except DataValidationError as exc:
        example = moment.replace(tzinfo=tzinfo).isoformat(timespec="minutes")
        try:  # with its UTC offset the time fits: the local time names no one instant
            to_time_point(example, dtype, name="--as-of")
        except DataValidationError:
            raise ArgumentError(str(exc)) from None
        raise ArgumentError(
            f"--as-of {text!r} does not name one instant in the time zone {tzinfo} of the time "
            f"column {time_col!r}: give the UTC offset in the text, e.g. --as-of {example}. "
            f"(In detail: {exc})"
        ) from None


def _up_to(time_col: str, bound: Any) -> pl.Expr:
    """Rows at or before ``bound`` (compared in UTC when it carries a time zone)."""
    if isinstance(bound, dt.datetime) and bound.tzinfo is not None:
        utc = bound.astimezone(dt.UTC).replace(tzinfo=None)
        column = pl.col(time_col).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return column <= pl.lit(utc)
    return pl.col(time_col) <= pl.lit(bound)


def _as_of(frame: pl.DataFrame, time_col: str, as_of: AsOfLike | None) -> tuple[pl.DataFrame, AsOf]:
    dtype = frame.schema[time_col]
    if not (dtype.is_temporal() or dtype.is_integer()) or dtype in (pl.Time, pl.Duration):
        raise DataValidationError(
            f"Time column {time_col!r} must be Datetime, Date or an integer step, got {dtype}. "
            "Give its format as source.time_format in the spec (e.g. '%Y-%m-%d %H:%M'); text "
            "times that mix formats or time zones are not parsed automatically."
        )
    as_of = as_of_text(as_of)
    first, last = frame[time_col].min(), frame[time_col].max()
    if first is None:
        raise DataValidationError(f"Time column {time_col!r} has no values (only nulls).")
    if as_of is None:
        return frame, AsOf(as_of_label(last), None, iso_text(last))
    bound, whole_day = _parse_as_of(as_of, dtype, time_col)
    if bound < first:
        raise DataValidationError(
            f"No data up to --as-of {as_of}: the data starts at {iso_text(first)}. Pass an as-of "
            "on or after it."
        )
    if _day(bound) > _day(last) if whole_day else bound > last:
        warn_at_caller(
            f"--as-of {as_of} is after the last time in the data ({iso_text(last)}): the run uses "
            f"all the data and is labelled {as_of_label(last)}, the as-of of that data (its "
            "outputs are that as-of's). Update the data to forecast from a later date.",
            ForecasterWarning,
        )
        return frame, AsOf(as_of_label(last), as_of, iso_text(last))
    subset = frame.filter(_up_to(time_col, bound))
    effective = subset[time_col].max()
    return subset, AsOf(as_of_label(effective), as_of, iso_text(effective))


def as_of_text(as_of: Any) -> str | None:
    """``as_of`` as text: a string as it is, a date, datetime or integer in ISO form (also
    given as ``numpy.datetime64``, a polars literal such as ``pl.date(...)``, a one-value
    Series or a numpy integer, as ``predict(cutoff=...)`` takes them)."""
    if as_of is None or isinstance(as_of, str):
        return as_of
    try:
        point = plain_time(as_of)
    except ValueError as exc:
        point, why = None, f" ({exc})"
    else:
        why = ""
    if isinstance(point, dt.date):
        return point.isoformat()
    if isinstance(point, numbers.Integral) and not isinstance(point, bool):
        return str(int(point))
    raise SpecError(
        f"as_of must be an ISO date or datetime (a string, datetime.date, datetime.datetime, "
        f"numpy.datetime64 or pl.date(...)) or an integer step, got {type(as_of).__name__} "
        f"{as_of!r}{why}."
    )


def _checked_mfcc(mfcc: MfccSpec) -> MfccSettings:
    """The ``[features.mfcc]`` keys checked as ``load_audio_mfcc`` checks its arguments, a
    refusal being the spec's (``SpecError``, exit 2), not the data's."""
    try:
        return mfcc_settings(**mfcc.model_dump())
    except DataValidationError as exc:
        raise SpecError(f"key 'features.mfcc': {exc}") from None


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _stale_series(frame: pl.DataFrame, spec: Spec, when: AsOf, forecasts: bool) -> AsOf:
    """``when`` with the series that end before its effective as-of, their steps behind it and
    those the ``[series] stale`` policy leaves out of the forecast
    (:mod:`forecaster.jobs.schedule`), after warning about them
    (:func:`~forecaster.jobs.stale.warn_stale`)."""
    ends, id_col = stale_steps(frame, spec), spec.series.id
    if ends.height == 0 or id_col is None:  # (a single series is never behind itself)
        return when
    table = ends.select(
        id_text(id_col).alias("id"),
        pl.col("__last__").alias("last"),
        pl.col("__steps__").cast(pl.Int64).alias("steps"),
    )
    excluded = excluded_ids(ends, spec)
    warn_stale(table, excluded, spec, (when.label, str(when.effective)), forecasts)
    return dataclasses.replace(when, **stale_fields(table), excluded=excluded, ends=table)


def _known_as_of(
    known: pl.DataFrame, spec: Spec, as_of: AsOfLike | None
) -> tuple[pl.DataFrame, AsOf]:
    """The rows ``known`` (:func:`~forecaster.jobs.schedule.observed_up_to`) and their as-of,
    as the run on the as-of itself finds them (its effective as-of their last time)."""
    if known.height == 0:
        raise DataValidationError(
            f"No series has a value of the target {spec.series.targets} at or "
            f"before --as-of {as_of}: their values start after it. Pass a later as-of."
        )
    return _as_of(known, spec.series.time, as_of)


def prepare_data(
    spec: Spec, root: Path, as_of: AsOfLike | None, *, forecasts: bool = True
) -> tuple[pl.DataFrame, AsOf]:
    """The spec's data up to ``as_of`` (default: its last time), its recent history only, and
    the as-of (its ``label`` names the outputs; see this module's docstring for the rules).

    Every command that forecasts or fits goes through here, so each warns (a
    ``StaleSeriesWarning``) about the series that end before the as-of, and the run records
    them in ``summary.json`` (``stale_series``, ``stale_steps``, ``excluded_series``). For a
    command that ``forecasts`` from the as-of (``run``, ``predict``) the warning says what the
    ``[series] stale`` policy does with them, and with future covariates the returned
    ``AsOf`` holds their values over the forecast's horizon, read from the source beyond the
    as-of (:mod:`forecaster.jobs.schedule`): a step the source lacks is a
    ``DataValidationError``. Other commands (``fit``, ``backtest``, ``tune``) need neither.
    With ``[features] log_returns`` the rows of the grid the data lack (holidays) are added,
    with a return of 0 (:func:`forecaster.jobs.returns.with_absent_rows`).
    """
    read = _read_source(spec, root)
    source = _with_features(read, spec)
    observed = observed_rows(source, spec)
    cut, when = _as_of(observed, spec.series.time, as_of)
    known = observed_up_to(cut, spec)  # the targets as the data of the as-of held them
    if known.height < cut.height:
        cut, when = _known_as_of(known, spec, as_of)
    frame = history_window(cut, spec)
    check_holiday_rows(frame, spec)
    when = _stale_series(cut, spec, when, forecasts)  # also those the window leaves out
    gone = left_out_series(read, source, observed, cut, frame, spec, when.label)
    frame, empty = without_empty_targets(frame, spec, when.label)
    when = dataclasses.replace(when, left_out=gone + empty)
    if forecasts and spec.series.future_covariates:
        values = future_frame(source, frame, spec, when.excluded)
        when = dataclasses.replace(when, future=values)
    return with_absent_rows(frame, spec), when


def _time_order(text: Any) -> Any:
    """An ISO time, an as-of label (:func:`as_of_label`) or an integer step as a value that
    orders like time (None: unknown)."""
    if not isinstance(text, str):
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    label = _LABEL_TIME.match(text)  # a label's time of day is written with '-', not ':'
    if label is not None:
        text = f"{label[1]}:{label[2]}:{label[3]}{text[label.end() :]}"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def is_later(first: Any, second: Any) -> bool | None:
    """Whether the effective as-of ``first`` is after ``second``; None when they cannot be
    compared (unknown, or of different kinds)."""
    a, b = _time_order(first), _time_order(second)
    if a is None or b is None:
        return None
    try:
        return bool(a > b)
    except TypeError:
        return None

"""Spec keys that the spec's other choices would leave unused: refused, never ignored.

A key written in a spec is either used or refused (``SpecError``, exit 2) naming the key,
what it needs and what the spec has instead. :func:`check_unused_keys` holds the one table of
these rules, checked before any data is read; :func:`check_history_days` and
:func:`check_time_format` the rules that need the data (the dtype of the time column):

==========================  ===================================================================
key                         used only with
==========================  ===================================================================
source.format               ``source.path`` (a bundled ``dataset`` has its own format)
source.tickers              ``dataset = "stocks"``
source.separator            ``format = "csv"``
source.null_values          ``format = "csv"``
source.decimal_comma        ``format = "csv"`` (Parquet columns have their types)
source.time_format          ``format = "csv"`` or ``"parquet"`` (files with a time column), and
                            a time column of text (``String``, ``Categorical``, ``Enum``) or of
                            integers (``Int8`` to ``UInt64``, parsed by their decimal text:
                            ``20240131`` with ``"%Y%m%d"``, as a CSV file's): a Parquet column
                            already of dates or datetimes has nothing to parse, and a float's
                            text (``20240131.0``) is no time's (a CSV time column is read as
                            text when the key is given)
source.id_from_filename     ``format = "csv"`` or ``"parquet"``, and the column it names as
                            ``series.id`` or among ``series.static_covariates``
features.mfcc               audio: ``dataset = "audio"`` or ``format = "wav"``
features.history_days       a ``Date`` or ``Datetime`` time column (not audio frames, nor any
                            integer step: it counts days)
series.stale                a ``series.id`` (one series is never behind itself)
series.max_staleness        a ``series.id`` and ``series.stale = "exclude"`` (``"forecast"``
                            forecasts every series, however far behind)
tracking.experiment         ``tracking.enabled = true``
tracking.register_as        ``tracking.enabled = true``
==========================  ===================================================================

A key counts as written when the spec file has it, even at its default value
(``separator = ","`` with Parquet files is refused too: it reads as if it did something).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from forecaster.exceptions import SpecError
from forecaster.jobs.spec import Spec

__all__ = ["check_history_days", "check_time_format", "check_unused_keys"]


def check_unused_keys(file: Path, spec: Spec) -> None:
    """Refuse the first key of ``spec`` (read from ``file``) that its other choices leave
    unused (see this module's table).

    Raises
    ------
    SpecError
        Naming the key, what it is used with, what the spec has and how to fix it.
    """
    source, series, tracking = spec.source, spec.series, spec.tracking
    audio = source.dataset == "audio" or source.format == "wav"
    files = source.format in ("csv", "parquet")
    read = f"dataset = {source.dataset!r}" if source.dataset else f"format = {source.format!r}"
    no_id = "no series.id (a single series)"
    stale = f"stale = {series.stale!r}" if series.id else no_id
    tracking_off = "enabled = false"
    named = source.id_from_filename  # the column of each row's file name
    rules = [  # (key, used, where it is used, what the spec has instead)
        ("source.format", source.path is not None, "source.path (files)", read),
        ("source.tickers", source.dataset == "stocks", "dataset = 'stocks'", read),
        ("source.separator", source.format == "csv", "format = 'csv'", read),
        ("source.null_values", source.format == "csv", "format = 'csv'", read),
        ("source.decimal_comma", source.format == "csv", "format = 'csv'", read),
        ("source.time_format", files, "format = 'csv' or 'parquet'", read),
        ("source.id_from_filename", files, "format = 'csv' or 'parquet'", read),
        ("source.id_from_filename", named in (series.id, *series.static_covariates),
         f"series.id = {named!r} (or {named!r} among series.static_covariates)",
         f"series.id = {series.id!r}" if series.id else no_id),
        ("features.mfcc", audio, "dataset = 'audio' or format = 'wav'", read),
        ("features.history_days", not audio, _DATED, f"{read} (integer frames)"),
        ("series.stale", series.id is not None, "a series.id (several series)", no_id),
        ("series.max_staleness", series.id is not None and series.stale == "exclude",
         "series.stale = 'exclude' and a series.id", stale),
        ("tracking.experiment", tracking.enabled, "tracking.enabled = true", tracking_off),
        ("tracking.register_as", tracking.enabled, "tracking.enabled = true", tracking_off),
    ]  # fmt: skip
    for key, used, where, actual in rules:
        section, name = key.split(".")
        if name in getattr(spec, section).model_fields_set and not used:
            raise SpecError(f"{file}: {_message(key, where, actual)}")


_DATED = "a Date or Datetime time column"


def check_history_days(spec: Spec, dtype: pl.DataType) -> None:
    """Refuse ``features.history_days`` when the time column the data has (``dtype``) is not
    a date or datetime: it counts days, which integer steps do not have.

    Raises
    ------
    SpecError
        Naming the key, the time column and its dtype, and the fix.
    """
    if spec.features.history_days is None or dtype.is_temporal():
        return
    actual = f"the time column {spec.series.time!r} of type {dtype} in its data (steps, not days)"
    raise SpecError(
        _message("features.history_days", _DATED, actual)
        + " To read text times as dates, give their format as source.time_format."
    )


def check_time_format(spec: Spec, dtype: pl.DataType | None) -> None:
    """Refuse ``source.time_format`` when the time column the files have (``dtype``; None
    where they lack it, left for the column check) is neither text (``String``,
    ``Categorical`` or ``Enum``, parsed as ``String``) nor integers (``Int8`` to ``UInt64``,
    parsed by their decimal text, as a CSV file's ``20240131`` is): a Parquet column of
    dates or datetimes has none to parse, and a float's text (``20240131.0``) fits no
    format, nor does a column of other values (decimals, Booleans, times of day): the fix
    named is integers or text. A column without any value (``Null``) is left for the data's
    check, which names it.

    Raises
    ------
    SpecError
        Naming the key, the time column and its dtype, and the fix.
    """
    time_format = spec.source.time_format
    text = dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    if time_format is None or dtype is None or text or dtype == pl.Null or dtype.is_integer():
        return
    where = (
        f"the time column {spec.series.time!r} of the files of source.path "
        f"{spec.source.path!r} is of type {dtype}"
    )
    if not isinstance(dtype, pl.Date | pl.Datetime):  # floats, decimals, Booleans, ...
        why = (
            "a float's text (20240131.0) fits no format, and a float may not hold the integer "
            "exactly"
            if dtype.is_float()
            else "it holds neither text nor integers, the values a format reads"
        )
        raise SpecError(
            f"key 'source.time_format' = {time_format!r} parses times written as text or as "
            f"integers (20240131 with '%Y%m%d'), and {where}: {why}. Write the column "
            "as integers (e.g. pl.col(...).cast(pl.Int64)) or as text in the files."
        )
    raise SpecError(
        f"key 'source.time_format' = {time_format!r} parses a time column of text or "
        f"integers, and {where}: there is nothing to parse, so it would be ignored. Remove "
        "source.time_format (the files store the times typed)."
    )


def _message(key: str, where: str, actual: str) -> str:
    """The refusal of a ``key`` used only with ``where`` when the spec has ``actual``."""
    return (
        f"key {key!r} is used only with {where}, and this spec has {actual}: it would be "
        f"ignored. Remove {key}, or set {where}."
    )

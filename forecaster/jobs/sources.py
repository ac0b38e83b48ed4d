"""Reading a spec's files: the paths ``source.path`` matches (:func:`source_files`) and the
CSV or Parquet rows in them (:func:`read_files`), with the time column parsed
(``source.time_format``; a CSV date whose day and month order the text does not say is
refused), the ids kept as written (a CSV id read as text unless every id is a plain
integer) and ``source.id_from_filename``."""

from __future__ import annotations

import glob
import itertools
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecaster._polars import collect
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller
from forecaster.jobs.csv_lines import bad_line, short_line
from forecaster.jobs.source_schemas import (
    column_list,
    csv_data_files,
    csv_options,
    csv_type_conflicts,
    csv_unreadable_file,
    overlap_message,
    parquet_schema,
    shown_path,
)
from forecaster.jobs.spec import Spec, first_line, normal_path, spec_path
from forecaster.jobs.unused import check_time_format

__all__ = [
    "as_fitted_ids",
    "read_files",
    "rows_with_ids",
    "source_files",
    "source_glob",
    "text_ids",
]


def source_glob(spec: Spec, root: Path) -> tuple[str, Path]:
    """The glob of ``source.path`` (a path under the project ``root``, as the spec's check
    requires) and the folder of its literal part: the root and the pattern's parts before its
    first wildcard. The root's part is escaped (``glob.escape``): a ``?``, ``*`` or ``[`` in
    the project's path is a character of a folder name, not a wildcard that would match a
    sibling project's folder (``a?b`` also matches ``a b``)."""
    base = normal_path(root)
    pattern = spec_path(root, str(spec.source.path)).relative_to(base).parts
    fixed = itertools.takewhile(lambda part: not glob.has_magic(part), pattern)
    return os.path.join(glob.escape(str(base)), *pattern), base.joinpath(*fixed)


def source_files(spec: Spec, root: Path) -> list[Path]:
    """The regular files that ``source.path`` matches (a FIFO or a device would block or never
    end the read; a folder is not data). For ``format = "wav"`` a folder stands for its
    ``.wav`` files, in any case."""
    source = spec.source
    pattern, fixed = source_glob(spec, root)
    if source.format == "wav" and fixed == spec_path(root, source.path) and fixed.is_dir():
        pattern = os.path.join(glob.escape(str(fixed)), "*.[wW][aA][vV]")
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    if not paths:
        raise DataValidationError(f"No file matches source.path {source.path!r} ({pattern}).")
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise DataValidationError(
                f"Cannot read {path}, matched by source.path {source.path!r}: "
                f"{exc.strerror or exc}. Fix or remove it."
            ) from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or device)"
            raise DataValidationError(
                f"source.path {source.path!r} matches {path}, which is {kind}; forecaster reads "
                f"only regular {source.format} files. Move it away or narrow the pattern."
            )
    return paths


def read_files(spec: Spec, root: Path) -> pl.DataFrame:
    """The rows of the files ``source.path`` matches, as one frame. Several files must agree
    (:mod:`forecaster.jobs.source_schemas`): a CSV file with a header but no rows is left out
    with a warning, and a difference of columns or types, or an (id, time) in two files, is
    refused naming the files (``DataValidationError``)."""
    source = spec.source
    paths = source_files(spec, root)
    types = None  # of the columns the files do not agree on
    try:
        if len(paths) > 1 and source.format == "csv":
            paths, types = csv_data_files(paths, spec, root, _text_columns(spec))
        elif len(paths) > 1:
            types = parquet_schema(paths, spec, root)
        if source.format == "csv" and not source.time_format:
            _check_day_month_order(paths, spec)
        try:
            frame = collect(_scan(spec, paths, types))
        except pl.exceptions.PolarsError:
            if source.format != "csv" or not types:
                raise
            # a value below the first rows does not fit the type given to a column some
            # files leave empty there: only that column is typed otherwise
            types = _types_that_fit(spec, paths, types)
            frame = collect(_scan(spec, paths, types))
        if source.format == "csv":
            _check_short_lines(frame, spec, paths, types, root)
        if spec.series.id and _text_columns(spec).get(spec.series.id) == pl.String:
            frame = _typed_ids(frame, spec.series.id)
        if len(paths) > 1 and frame.height:
            _check_overlaps(frame, spec, paths, types, root)
    except pl.exceptions.NoDataError as exc:
        raise DataValidationError(
            f"Cannot read source.path {source.path!r}: a file is empty (no header, no rows): "
            f"{first_line(exc)}. Expected {source.format} data; remove or replace the file."
        ) from exc
    except pl.exceptions.PolarsError as exc:
        several = len(paths) > 1 and source.format == "csv"
        conflicts = csv_type_conflicts(paths, spec, root, _text_columns(spec)) if several else ""
        where = _csv_error_line(paths, spec, root, exc) if source.format == "csv" else ""
        if several and not where:
            overrides = {**(types or {}), **_text_columns(spec)}
            where = csv_unreadable_file(paths, spec, root, overrides)
        raise DataValidationError(
            f"Cannot read source.path {source.path!r} as {source.format}: {first_line(exc)}."
            f"{where} {_read_hint(exc, source.format)}{conflicts}"
        ) from exc
    except OSError as exc:
        raise DataValidationError(
            f"Cannot read source.path {source.path!r}: {first_line(exc)}. A file it matched "
            "disappeared or became unreadable while it was read (replaced by another process?); "
            "run again once the data is in place."
        ) from exc
    if frame.height == 0:
        raise DataValidationError(
            f"source.path {source.path!r} ({len(paths)} file(s)) has no data rows, only a "
            f"header ({column_list(frame.columns)}). Expected at least lookback + horizon rows "
            "per series."
        )
    return frame


def _csv_error_line(
    paths: list[Path], spec: Spec, root: Path, exc: pl.exceptions.PolarsError
) -> str:
    """The file of ``paths`` and its line where the CSV reader's error ``exc`` is
    (:func:`~forecaster.jobs.csv_lines.bad_line`), as a sentence for a message; "" when no
    line is found."""
    for path in paths:
        line = bad_line(path, spec, first_line(exc))
        if line is not None:
            return f" In {shown_path(path, root)}, {line}."
    return ""


def _check_short_lines(
    frame: pl.DataFrame,
    spec: Spec,
    paths: list[Path],
    types: dict[str, pl.DataType] | None,
    root: Path,
) -> None:
    """Refuse a CSV line with fewer fields than the header, naming its file and line
    (:func:`~forecaster.jobs.csv_lines.short_line`): the reader reads its missing fields as
    empty values, which the missing-value policy would then fill. Such a line leaves its
    last column empty, so only the files of ``paths`` with a row of ``frame`` (their rows,
    read with ``types``) whose last column is empty are read again, line by line."""
    columns = [c for c in frame.columns if c != spec.source.id_from_filename]
    if not columns or frame.height == 0 or frame[columns[-1]].null_count() == 0:
        return
    empty = frame[columns[-1]].is_null().to_numpy()
    counts = _row_counts(frame, spec, paths, types) if len(paths) > 1 else [frame.height]
    offsets = np.cumsum([0, *counts])
    for path, start, end in zip(paths, offsets[:-1], offsets[1:], strict=True):
        line = short_line(path, spec) if empty[start:end].any() else None
        if line is not None:
            raise DataValidationError(
                f"Cannot read source.path {spec.source.path!r} as csv: in "
                f"{shown_path(path, root)}, {line}. The reader would read its missing fields "
                "as empty values (then filled by the missing-value policy). Write every field "
                "of the line (an empty value as nothing between two separators), or remove "
                "the line."
            )


def _read_hint(exc: pl.exceptions.PolarsError, fmt: str | None) -> str:
    """What to check when the reader of files in format ``fmt`` fails with ``exc``: a value
    that does not fit its column's type (the CSV reader infers it from the first rows), times
    that the finest time unit of several Parquet files cannot hold, or the files' layout."""
    message = first_line(exc)
    if message.startswith("could not parse"):
        return (
            "A value further down does not fit the type the reader inferred from the first "
            "rows: fix the value, list such markers (e.g. 'n/a') in source.null_values, or, "
            "for the time column, give source.time_format."
        )
    if message.startswith("conversion from `datetime"):
        return (
            "The files hold this column in different time units, read in the finest, which "
            "does not hold these times (ns holds the years 1677 to 2262): write the column in "
            "one time unit (e.g. us) in every file."
        )
    if fmt == "parquet":
        return "Check that each file is a complete Parquet file."
    return (
        "Check the files (format, separator, a consistent number of fields per line) and "
        "source.time_format."
    )


def _text_columns(spec: Spec) -> dict[str, Any]:
    """The CSV columns read as text: the id (read as written, see :func:`_typed_ids`; not
    with ``id_from_filename``) and, with ``source.time_format``, the time (parsed with it)."""
    source, series = spec.source, spec.series
    text: dict[str, Any] = {}
    if series.id and source.format == "csv" and not source.id_from_filename:
        text[series.id] = pl.String
    if source.time_format:
        text[series.time] = pl.String
    return text


def _types_that_fit(
    spec: Spec, paths: list[Path], types: dict[str, pl.DataType]
) -> dict[str, pl.DataType]:
    """``types`` (of CSV columns some files leave empty in their first rows) without those a
    value further down does not fit, each tried alone: an integer column that holds a decimal
    is read as Float64; any other is left to the reader, which types it as it types the
    files on its own. (Read only when the read with ``types`` failed.)"""
    kept: dict[str, pl.DataType] = {}
    for name, dtype in types.items():
        for candidate in (dtype, pl.Float64()) if dtype.is_integer() else (dtype,):
            try:
                collect(_scan(spec, paths, {name: candidate}).select(name))
            except pl.exceptions.PolarsError:
                continue
            kept[name] = candidate
            break
    return kept


def _scan(
    spec: Spec,
    paths: list[Path],
    types: dict[str, pl.DataType] | None,
    *,
    with_paths: bool = False,
) -> pl.LazyFrame:
    """The rows of ``paths`` (lazily), with the ``source.id_from_filename`` column and the
    time column parsed with ``source.time_format``. ``types``: CSV, the types of columns some
    files leave empty; Parquet, every column's type (None: as written). ``with_paths``: with
    the ``__path__`` of each row's file."""
    source, time_col = spec.source, spec.series.time
    kwargs: dict[str, Any] = {}
    if source.id_from_filename or with_paths:
        kwargs["include_file_paths"] = "__path__"
    if source.format == "csv":
        lazy = pl.scan_csv(
            [str(p) for p in paths],
            try_parse_dates=True,
            schema_overrides={**(types or {}), **_text_columns(spec)},
            **csv_options(spec),
            **kwargs,
        )
    elif types is None:
        lazy = pl.scan_parquet([str(p) for p in paths], **kwargs)
    else:  # each file's columns cast to the one type of each (and in one order)
        typed = [pl.col(name).cast(dtype) for name, dtype in types.items()]
        typed += [pl.col("__path__")] if kwargs else []
        lazy = pl.concat([pl.scan_parquet(str(p), **kwargs).select(typed) for p in paths])
    if source.id_from_filename:
        lazy = _with_file_ids(lazy, spec, source.id_from_filename)
        lazy = lazy if with_paths else lazy.drop("__path__")
    if source.time_format:  # a Parquet time column already typed has nothing to parse
        check_time_format(spec, lazy.collect_schema().get(time_col))
        text = pl.col(time_col).cast(pl.String)  # Categorical, Enum; integers' decimal text
        lazy = lazy.with_columns(_parse_times(text, source.time_format))
    return lazy


def _check_overlaps(
    frame: pl.DataFrame,
    spec: Spec,
    paths: list[Path],
    types: dict[str, pl.DataType] | None,
    root: Path,
) -> None:
    """Refuse the rows of several files, ``frame`` (read with ``types``), when an (id, time)
    has rows in two files, naming them. Files whose times do not overlap, or whose times
    overlap but not their ids, share no key (each file's time range and distinct ids are
    compared); only when some do are the keys of all rows compared."""
    keys = [c for c in (spec.series.id, spec.series.time) if c]
    if not set(keys) <= set(frame.columns):
        return  # the column check names the missing column
    counts = _row_counts(frame, spec, paths, types)
    if not _may_share_keys(frame, counts, keys):
        return
    files = np.repeat(np.arange(len(paths), dtype=np.uint32), counts)
    rows = frame.select(keys).with_columns(pl.Series("__file__", files))
    message = overlap_message(rows, keys, paths, spec, root)
    if message is not None:
        raise DataValidationError(message)


def _row_counts(
    frame: pl.DataFrame, spec: Spec, paths: list[Path], types: dict[str, pl.DataType] | None
) -> list[int]:
    """The rows of each of ``paths`` in ``frame`` (read in their order): counted in each file
    (Parquet: its metadata; CSV: its lines), or, should the counts not add up to the frame's
    (a file replaced since), the files read again with each row's path."""
    source = spec.source
    if source.format == "csv":
        counted = [pl.scan_csv(str(p), infer_schema=False, **csv_options(spec)) for p in paths]
    else:
        counted = [pl.scan_parquet(str(p)) for p in paths]
    counts = [collect(lazy.select(pl.len())).item() for lazy in counted]
    if sum(counts) == frame.height:
        return counts
    found = collect(_scan(spec, paths, types, with_paths=True).select("__path__"))
    per_path = dict(found["__path__"].value_counts().iter_rows())
    return [per_path.get(str(p), 0) for p in paths]


def _may_share_keys(frame: pl.DataFrame, counts: list[int], keys: list[str]) -> bool:
    """Whether two files (of ``counts`` rows of ``frame`` each, in order) may hold the same
    ``keys``: their ranges of times overlap and, with an id, so do their ids."""
    offsets = np.cumsum([0, *counts]).tolist()
    time = pl.col(keys[-1])
    spans = (
        pl.concat(
            frame.slice(offsets[i], count).select(
                first=time.min(), last=time.max(), __file__=pl.lit(i, pl.UInt32)
            )
            for i, count in enumerate(counts)
        )
        .drop_nulls()  # a file without a time shares no key
        .sort("first", "__file__")
    )
    # a file starting before the latest end of the files before it overlaps them: files
    # that overlap one after another form a group
    starts = ~(pl.col("first") <= pl.col("last").cum_max().shift(1)).fill_null(False)
    groups = (
        spans.with_columns(group=starts.cum_sum())
        .group_by("group")
        .agg(pl.col("__file__"))
        .filter(pl.col("__file__").list.len() > 1)["__file__"]
        .to_list()
    )
    if len(keys) == 1 or not groups:
        return bool(groups)
    for group in groups:
        ids = pl.concat(
            [frame[keys[0]].slice(offsets[i], counts[i]).drop_nulls().unique() for i in group]
        )
        if ids.is_duplicated().any():
            return True
    return False


_FORMAT_ROWS = 10_000
"""Rows of each file :func:`_check_day_month_order` reads for the time column's format."""

_DAY_MONTH = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})(?:$|[\sT])"
"""A date that begins with day and month in either order (``01/02/2024``, ``1.2.24``): the
two numbers and the year as groups."""


def _check_day_month_order(paths: list[Path], spec: Spec) -> None:
    """Refuse a CSV time column whose dates put day and month first in an order the text does
    not settle: the reader guesses day first, so US month-starts (``01/01/2024 ...
    12/01/2024``) would become January 1 to 12, silently. Each file settles its own order (a
    day above 12 in either place); one whose dates fit both orders, put the month first, mix
    the two orders or have years of two digits (read as the year 24) is refused, with the
    ``source.time_format`` to give."""
    for path in paths:
        dates = _day_month_dates(path, spec)
        problem = None if dates is None else _order_problem(dates)
        if problem is not None:
            raise DataValidationError(
                f"Time column {spec.series.time!r} of {path.name} holds {problem}. Give the "
                "order as source.time_format in the spec: '%m/%d/%Y' for month first, "
                "'%d/%m/%Y' for day first ('%y' for a year of two digits, '%H:%M' after it "
                "for times of day)."
            )


def _order_problem(dates: pl.DataFrame) -> str | None:
    """Why dates ``text`` beginning with day and month (``a``, ``b``, ``year``) are not read
    right without a format, or None (day first, settled by a day above 12)."""
    short = dates.filter(pl.col("year").str.len_chars() < 4)
    if short.height:
        return (
            f"dates such as {short['text'][0]!r}, whose year has fewer than four digits (the "
            f"reader would take it as the year {int(short['year'][0])}, not a year of this era)"
        )
    widest = dates.sort("a", descending=True).row(0, named=True)
    later = dates.filter(pl.col("b") > 12)
    month_first = later["text"][0] if later.height else None
    if widest["a"] > 12 and month_first is None:
        return None  # 13/01/2024: the reader's guess, settled by the file
    if widest["a"] > 12:
        return f"both {widest['text']!r} (day first) and {month_first!r} (month first)"
    if month_first is not None:
        return f"dates such as {month_first!r}, month first, which the reader misreads"
    return (
        f"dates such as {widest['text']!r} and none with a day above 12, so their day and "
        "month can be read either way (the reader would guess day first)"
    )


def _day_month_dates(path: Path, spec: Spec) -> pl.DataFrame | None:
    """The values of the time column among the first rows of one CSV file that begin with
    day and month (``text``, the two numbers ``a`` and ``b``, the ``year`` as written), or
    None when there is none (ISO dates, numbers, or the column is missing)."""
    time_col = spec.series.time
    text = pl.scan_csv(
        str(path),
        infer_schema=False,
        **csv_options(spec),
        n_rows=_FORMAT_ROWS,
    )
    if time_col not in text.collect_schema().names():
        return None  # the column check names it
    parts = pl.col("parts").struct
    dates = collect(
        text.select(pl.col(time_col).alias("text"))
        .with_columns(pl.col("text").str.extract_groups(_DAY_MONTH).alias("parts"))
        .filter(parts.field("1").is_not_null())
        .select(
            "text",
            a=parts.field("1").cast(pl.Int32),
            b=parts.field("2").cast(pl.Int32),
            year=parts.field("3"),
        )
    )
    return dates if dates.height else None


def _typed_ids(frame: pl.DataFrame, id_col: str) -> pl.DataFrame:
    """The id column read as text, as integers when every id is one written plainly (``7``,
    ``-3``: what the CSV reader infers), else as text: ``007`` and ``7`` stay two ids."""
    if id_col not in frame.columns:
        return frame
    ids = frame[id_col]
    if _plain_integers(ids).all():
        return frame.with_columns(ids.str.to_integer(strict=False))
    return frame


def _plain_integers(ids: pl.Series) -> pl.Series:
    """Whether each text id is an integer written plainly (``7``, ``-3``; not ``007``,
    ``+7`` or ``x9``); True for a missing id (left to the checks of the data)."""
    return ids.str.to_integer(strict=False).cast(pl.String).eq_missing(ids)


def as_fitted_ids(frame: pl.DataFrame | None, spec: Spec, fitted: str) -> pl.DataFrame | None:
    """``frame`` (the spec's data, or its future covariates) with its ids as text again when
    a model fitted on text ids (``fitted``: their dtype in its ``schema_``) reads it and
    :func:`_typed_ids` read them as integers because every id is one now (the series with a
    text id left the source): their text is what the files hold, so the model knows them.
    Anything else is returned as it is, for the model's checks."""
    id_col = spec.series.id
    if (
        frame is None
        or not id_col
        or fitted != "String"
        or _text_columns(spec).get(id_col) != pl.String
        or not frame.schema.get(id_col, pl.Null()).is_integer()
    ):
        return frame
    return frame.with_columns(pl.col(id_col).cast(pl.String))


def text_ids(frame: pl.DataFrame, spec: Spec, fitted: str) -> list[str]:
    """The ids (at most 5) that made :func:`_typed_ids` read the CSV ids of ``frame`` as text
    when a model fitted on integer ids (``fitted``: their dtype in its ``schema_``) reads it:
    ids that are not plain integers (a series ``x9`` or ``007`` joined the source), which no
    integer id stands for. Empty for any other model or source."""
    id_col = spec.series.id
    if (
        not id_col
        or not fitted.startswith(("Int", "UInt"))
        or _text_columns(spec).get(id_col) != pl.String
        or frame.schema.get(id_col) != pl.String
    ):
        return []
    ids = frame[id_col].unique(maintain_order=True)
    return ids.filter(~_plain_integers(ids)).head(5).to_list()


_CLOCK_DIRECTIVES = re.compile(r"%[-_0^#]?[HIklMSfpPzZTRrcXsL+]")
"""strftime directives of a time of day (or a whole timestamp): a format without any reads
dates."""


def _parse_times(column: pl.Expr, time_format: str) -> pl.Expr:
    """``column`` (text) parsed with ``source.time_format``: dates when the format has no
    time of day (``"%d/%m/%Y"``), as an ISO date column is read, else datetimes."""
    if _CLOCK_DIRECTIVES.search(time_format):
        return column.str.to_datetime(time_format)
    return column.str.to_date(time_format)


_EXTENSIONS = {
    "csv": r"(?:csv|tsv|txt)(?:\.(?:gz|zst|zstd))?",  # what scan_csv reads, compressed too
    "parquet": r"(?:parquet|parq|pq)",
}


def _with_file_ids(lazy: pl.LazyFrame, spec: Spec, name: str) -> pl.LazyFrame:
    """``lazy`` (with the ``__path__`` of each row's file) with the ``source.id_from_filename``
    column ``name``: the file's name without the source format's extension (``BRK.A.csv`` is
    ``BRK.A``, ``shop.north.csv.gz`` is ``shop.north``; a name without it is kept whole), the
    ``__path__`` kept. A column of that name in the data is refused (``DataValidationError``),
    never replaced."""
    source = spec.source
    columns = [c for c in lazy.collect_schema().names() if c != "__path__"]
    if name in columns:
        raise DataValidationError(
            f"source.id_from_filename = {name!r} names the column that takes each file's name, "
            f"but the files of source.path {source.path!r} already have a column {name!r} "
            f"(columns: {column_list(columns)}). Use that column as series.id and drop "
            "source.id_from_filename, or give it a name the files do not use."
        )
    extension = _EXTENSIONS[str(source.format)]
    pattern = rf"(?i)([^/\\]+?)(?:\.{extension})?$"
    stem = pl.col("__path__").str.extract(pattern, 1)
    return lazy.with_columns(stem.alias(name))


def rows_with_ids(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """``frame`` (the source as read) without its blank rows, each column null (a CSV's
    empty lines or lines of separators only: ``,,,``), named in a ``ForecasterWarning``;
    a ``DataValidationError`` when some other row has no series id. Such a row had no
    series: with no target value it was dropped as a series named None, and the run then
    failed as a bug in forecaster (exit 1); with future covariates the error blamed those of
    a series None."""
    blank = pl.all_horizontal(pl.all().is_null())
    skipped = frame.select(blank.sum()).item() if frame.width else 0
    if skipped:
        warn_at_caller(
            f"Skipped {skipped} row(s) of source.path {spec.source.path!r} with no value in any "
            "column (empty lines, or lines of separators only).",
            ForecasterWarning,
        )
        frame = frame.filter(~blank)
    id_col, time_col = spec.series.id, spec.series.time
    if id_col is None or id_col not in frame.columns:
        return frame
    no_id = frame.filter(pl.col(id_col).is_null())
    if no_id.height:
        first = no_id[time_col][0] if time_col in no_id.columns else None
        raise DataValidationError(
            f"Id column {id_col!r} has {no_id.height} null values in source.path "
            f"{spec.source.path!r} (rows without a series id; the first at {time_col} "
            f"{first}). Every row needs a series id: fill those ids in the source, or remove "
            "those rows."
        )
    return frame

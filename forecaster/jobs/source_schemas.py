"""Whether the files a spec's ``source.path`` matches agree, checked before they are read as
one table, so that a difference is named with its files rather than reported by the reader
in terms a spec cannot act on.

CSV
    Every file has the same header (the same columns in the same order: the reader takes
    each file's fields by position under one header). A file with a header but no data rows
    is left out with a ``ForecasterWarning`` naming it: read with the others, its columns,
    which hold no values, would be text and make every column of the other files text. For
    the same reason a column without a value in a file's first rows (scheduled rows whose
    target is not known yet) is read with the type the other files' first rows give it,
    when that type is not text; should a value further down not fit it, the files are read
    again with the reader's own types, as one file would be. Every other column keeps the
    reader's types. A file that cannot be read (0 bytes, not CSV) is named. When the files'
    values still do not fit one type (times with and without a time zone),
    :func:`csv_type_conflicts` names the column and the files.
Parquet
    Every file has the same columns, in any order. A value column (any but the id and time)
    whose type differs between files is read as one type when all its types are numbers of
    different widths or kinds (``Int64`` and ``Float64``, ``Float32`` and ``Float64``):
    ``Float64`` when any is a float (or an integer type Int64 does not hold), ``Int64`` when
    all are integers, as the CSV reader infers them. The id and time columns, which tell
    series and rows apart, are read as one type only when Int64 holds every value of each
    (``Int32`` and ``Int64``, ``UInt32`` and ``Int64``): an id ``2**53 + 1`` read as a float
    would be the id ``2**53``, and a ``UInt64`` id need not fit ``Int64``. Text of
    different kinds (``String``, ``Categorical``, ``Enum``) is read as ``String``, and
    datetimes of one time zone in different time units as the finest unit (a value the
    finer unit cannot hold, e.g. after 2262 in ``ns``, fails the read). A column without
    any value (type ``Null``) takes the type of the others. Any other difference is
    refused, naming the column, its types and the files.
Rows of several files
    The same (id, time) in two files (a file copied twice, exports whose periods overlap) is
    refused, naming the files (:func:`overlap_message`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from forecaster._polars import collect
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller
from forecaster.jobs.csv_lines import bad_line
from forecaster.jobs.spec import Spec, first_line, normal_path

__all__ = [
    "column_list",
    "csv_data_files",
    "csv_options",
    "csv_type_conflicts",
    "csv_unreadable_file",
    "overlap_message",
    "parquet_schema",
    "shown_path",
]

_LISTED = 3
"""Files (or groups of files) named in one message."""

_INFERRED_ROWS = 100
"""Rows of each CSV file the reader infers the columns' types from (its default)."""

_NUMBER_KINDS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)
"""Integer types that Int64 holds exactly: a column of only these is read as Int64."""

_TIME_UNITS = ("ns", "us", "ms")
"""Datetime time units, finest first."""


def csv_options(spec: Spec) -> dict[str, Any]:
    """The reader options of the spec's CSV files (separator, null markers and decimal
    comma), for every read of them: the files are read alike wherever they are read."""
    source = spec.source
    return {
        "separator": source.separator,
        "null_values": source.null_values or None,
        "decimal_comma": source.decimal_comma,
    }


def column_list(columns: Sequence[str], limit: int = 8) -> str:
    """Column names as read: plain when printable, escaped when the file was not text."""
    shown = [c if c.isprintable() else repr(c) for c in columns[:limit]]
    more = f", ... ({len(columns)} columns)" if len(columns) > limit else ""
    return ", ".join(shown) + more


def _type_text(dtype: pl.DataType) -> str:
    """``dtype`` as a message names it: a datetime with its time unit and time zone."""
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ", no time zone"
        return f"Datetime[{dtype.time_unit}{zone}]"
    return str(dtype)


def shown_path(path: Path, root: Path) -> str:
    """``path`` as a message names it: relative to the project ``root`` when inside it."""
    try:
        return str(path.relative_to(normal_path(root)))
    except ValueError:
        return str(path)


def _files_text(paths: Sequence[Path], root: Path) -> str:
    """A few of ``paths`` and how many more there are."""
    names = ", ".join(shown_path(p, root) for p in paths[:_LISTED])
    more = len(paths) - _LISTED
    return names + (f" (and {more} more file{'s' if more > 1 else ''})" if more > 0 else "")


def csv_data_files(
    paths: list[Path], spec: Spec, root: Path, text: dict[str, Any]
) -> tuple[list[Path], dict[str, pl.DataType]]:
    """The CSV files of ``paths`` that hold data rows, and the types to read the columns
    with that some files leave empty in their first rows (as many as the reader infers
    types from; ``text``: the columns read as text). A file that cannot be read, or whose
    header differs from the first file's, is refused (``DataValidationError``); files with a
    header but no rows are left out with a ``ForecasterWarning`` (all of ``paths`` are kept
    when no file has rows: the caller refuses that). A column without a value in a file's
    first rows takes the one type the other files' first rows give it (the reader would
    infer text and make the column text in every file); no other column is typed here."""
    source = spec.source
    headers: dict[tuple[str, ...], list[Path]] = {}
    empty: list[Path] = []
    filled: dict[str, list[Path]] = {}  # each column's files with a value in the first rows
    for path in paths:
        try:  # as text: the types are the reader's, and a value cannot fail here
            first = pl.read_csv(
                path,
                n_rows=_INFERRED_ROWS,
                infer_schema=False,
                **csv_options(spec),
            )
        except pl.exceptions.NoDataError:
            raise DataValidationError(
                f"Cannot read source.path {source.path!r}: {shown_path(path, root)} is empty "
                f"(no header, no rows). Expected {source.format} data; remove or replace the "
                "file."
            ) from None
        except pl.exceptions.PolarsError as exc:
            line = bad_line(path, spec, first_line(exc))
            raise DataValidationError(
                f"Cannot read {shown_path(path, root)}, matched by source.path "
                f"{source.path!r}, as csv: {first_line(exc)}."
                + (f" In {shown_path(path, root)}, {line}." if line else "")
                + " Check the file (format, separator, a consistent number of fields per line)."
            ) from exc
        headers.setdefault(tuple(first.columns), []).append(path)
        if first.height == 0:
            empty.append(path)
            continue
        for column in first.columns:
            if column not in text and first[column].null_count() < first.height:
                filled.setdefault(column, []).append(path)
    if len(headers) > 1:
        raise DataValidationError(_layout_message(headers, spec, root, ordered=True))
    if empty and len(empty) < len(paths):
        _warn_header_only(empty, len(paths), spec, root)
        skipped = set(empty)
        paths = [p for p in paths if p not in skipped]
    partial = {c: f for c, f in filled.items() if 0 < len(f) < len(paths)}
    return paths, _filled_types(partial, spec, text)


def _warn_header_only(empty: list[Path], files: int, spec: Spec, root: Path) -> None:
    """Warn that the CSV files ``empty`` (of ``files``) have a header but no rows."""
    one = len(empty) == 1
    warn_at_caller(
        f"source.path {spec.source.path!r}: {_files_text(empty, root)} "
        f"{'has' if one else 'have'} a header but no data rows and {'is' if one else 'are'} "
        f"left out; the run reads the other {files - len(empty)} file(s). Remove such a "
        "file, or fill it if its rows are missing.",
        ForecasterWarning,
    )


def _filled_types(
    partial: dict[str, list[Path]], spec: Spec, text: dict[str, Any]
) -> dict[str, pl.DataType]:
    """The type of each column of ``partial`` (with the files that have a value in it in
    their first rows, not all files) that the reader infers from those files' first rows,
    when one type holds them and it is not text (text is what the reader makes of it
    anyway)."""
    inferred: dict[Path, pl.Schema] = {}
    filled = {}
    for column, files in partial.items():
        found = set()
        for path in files:
            if path not in inferred:
                inferred[path] = pl.scan_csv(
                    path,
                    infer_schema_length=_INFERRED_ROWS,
                    try_parse_dates=True,
                    schema_overrides=text,
                    **csv_options(spec),
                ).collect_schema()
            found.add(inferred[path][column])
        frames = [pl.LazyFrame(schema={column: dtype}) for dtype in found]
        try:
            dtype = pl.concat(frames, how="vertical_relaxed").collect_schema()[column]
        except pl.exceptions.PolarsError:
            continue  # the read fails, and csv_type_conflicts names the files
        if dtype != pl.String:
            filled[column] = dtype
    return filled


def _layout_message(
    headers: dict[tuple[str, ...], list[Path]], spec: Spec, root: Path, *, ordered: bool
) -> str:
    """Why files with these ``headers`` (each with its files, the first file's first) are
    not read as one table: CSV files (``ordered``) need the same columns in the same order,
    Parquet files the same columns."""
    (reference, first), *others = headers.items()
    parts = [f"{_files_text(first, root)}: {column_list(reference)}"]
    for header, files in others[:_LISTED]:
        parts.append(
            f"{_files_text(files, root)}: {column_list(header)} ({_difference(reference, header)})"
        )
    more = len(others) - _LISTED
    if more > 0:
        parts.append(f"and {more} other header{'s' if more > 1 else ''}")
    what = (
        "the same header, and CSV files are read under one (each field by its position)"
        if ordered
        else "the same columns"
    )
    columns = "the same columns in the same order" if ordered else "the same columns"
    return (
        f"The files of source.path {spec.source.path!r} do not all have {what}: "
        f"{'; '.join(parts)}. Give every file {columns} (rewrite "
        f"{shown_path(others[0][1][0], root)} with the columns of {shown_path(first[0], root)}), "
        "or point source.path at the files of one layout."
    )


def _difference(reference: Sequence[str], columns: Sequence[str]) -> str:
    """How ``columns`` differ from ``reference``, in words."""
    extra = [c for c in columns if c not in reference]
    lacking = [c for c in reference if c not in columns]
    if not extra and not lacking:
        return "the same columns in another order"
    words = []
    if extra:
        words.append(f"also {column_list(extra)}")
    if lacking:
        words.append(f"without {column_list(lacking)}")
    return ", ".join(words)


def parquet_schema(paths: list[Path], spec: Spec, root: Path) -> dict[str, pl.DataType] | None:
    """The types to read the Parquet files ``paths`` with: None when every file has the same
    columns of the same types (in any order), else each column's one type (see the module's
    docstring). Refused (``DataValidationError``): a file whose schema cannot be read, files
    with other columns, a column of types other than numbers of different widths."""
    source = spec.source
    schemas: dict[Path, dict[str, pl.DataType]] = {}
    for path in paths:
        try:
            schemas[path] = dict(pl.read_parquet_schema(path))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataValidationError(
                f"Cannot read {shown_path(path, root)}, matched by source.path "
                f"{source.path!r}, as parquet: {first_line(exc)}. Remove or replace the file."
            ) from exc
    columns: dict[frozenset[str], list[Path]] = {}
    for path, schema in schemas.items():
        columns.setdefault(frozenset(schema), []).append(path)
    if len(columns) > 1:
        named = {tuple(schemas[files[0]]): files for files in columns.values()}
        raise DataValidationError(_layout_message(named, spec, root, ordered=False))
    first = next(iter(schemas.values()))
    if all(schema == first for schema in schemas.values()):
        return None
    keys = {spec.series.id, spec.series.time}
    target = {}
    for column in first:
        types: dict[pl.DataType, list[Path]] = {}
        for path, schema in schemas.items():
            types.setdefault(schema[column], []).append(path)
        target[column] = _one_type(column, types, spec, root, key=column in keys)
    return target


def _one_type(
    column: str, types: dict[pl.DataType, list[Path]], spec: Spec, root: Path, *, key: bool
) -> pl.DataType:
    """The type a Parquet ``column`` is read as, from its ``types`` in the files (each with
    its files); refused when they are not numbers of different widths (for the id or time
    column, ``key``: integers that Int64 holds exactly), text of different kinds or
    datetimes of one time zone in different units."""
    known = [t for t in types if t != pl.Null]
    if len(known) <= 1:
        return known[0] if known else pl.Null()
    if all(t in _NUMBER_KINDS for t in known):
        return pl.Int64()
    if all(t == pl.String or isinstance(t, pl.Categorical | pl.Enum) for t in known):
        return pl.String()
    times = [t for t in known if isinstance(t, pl.Datetime)]
    if len(times) == len(known) and len({t.time_zone for t in times}) == 1:
        return min(times, key=lambda t: _TIME_UNITS.index(t.time_unit))  # the finest
    if not key and all(t.is_integer() or t.is_float() for t in known):
        return pl.Float64()
    listed = "; ".join(f"{_type_text(t)} in {_files_text(f, root)}" for t, f in types.items())
    if key:
        rule = (
            "The id and time columns are read as one type only when they are integers that "
            "Int64 holds exactly (Int8 to Int64, UInt8 to UInt32): other numbers would merge "
            "ids or times that differ (as floats, or UInt64 values above Int64's range); "
            "write the column with one type in every file (for a time column: the same date "
            "or datetime type and time zone; time units may differ)."
        )
    else:
        rule = (
            "Only numbers of different widths or kinds (read as Float64, or Int64 for "
            "integers), text of different kinds (String) and datetimes of one time zone in "
            "different units are read as one type; write the column with one type in every "
            "file."
        )
    raise DataValidationError(
        f"Column {column!r} has other types in other files of source.path "
        f"{spec.source.path!r}: {listed}. {rule}"
    )


def csv_unreadable_file(
    paths: list[Path], spec: Spec, root: Path, overrides: dict[str, Any]
) -> str:
    """The first of several CSV files that the types a read of them all inferred (with the
    schema ``overrides``) do not fit, as a sentence for a message; "" when none is found.
    Polars' parse error names the column and the value, not the file. (Read only after a read
    of all the files failed: each file is read again, until one fails.)"""
    options = {"try_parse_dates": True, **csv_options(spec)}
    try:
        names = [str(p) for p in paths]
        schema = pl.scan_csv(names, schema_overrides=overrides, **options).collect_schema()
    except (pl.exceptions.PolarsError, OSError):
        return ""
    for path in paths:
        try:
            collect(pl.scan_csv(path, schema_overrides=dict(schema), **options))
        except pl.exceptions.PolarsError:
            return f" The value is in {shown_path(path, root)}."
        except OSError:
            continue
    return ""


def csv_type_conflicts(paths: list[Path], spec: Spec, root: Path, overrides: dict[str, Any]) -> str:
    """The columns whose types, inferred from each CSV file's first rows as the reader infers
    them (with the schema ``overrides``), no one type holds, with their files, as a sentence
    for a message; "" when there are none."""
    types: dict[str, dict[pl.DataType, list[Path]]] = {}
    for path in paths:
        try:
            schema = pl.scan_csv(
                path,
                try_parse_dates=True,
                schema_overrides=overrides,
                **csv_options(spec),
            ).collect_schema()
        except (pl.exceptions.PolarsError, OSError):
            continue  # this file is not the one to name
        for column, dtype in schema.items():
            types.setdefault(column, {}).setdefault(dtype, []).append(path)
    conflicts = []
    for column, found in types.items():
        frames = [pl.LazyFrame(schema={column: dtype}) for dtype in found]
        try:
            pl.concat(frames, how="vertical_relaxed").collect_schema()
        except pl.exceptions.PolarsError:
            listed = "; ".join(
                f"{_type_text(t)} in {_files_text(f, root)}" for t, f in found.items()
            )
            conflicts.append(f"column {column!r} is {listed}")
    if not conflicts:
        return ""
    return (
        f" The files disagree on the type of a column: {'. '.join(conflicts)}. Write its "
        "values the same way in every file (times all with a time zone or offset, or all "
        "without)."
    )


def overlap_message(
    rows: pl.DataFrame, keys: list[str], paths: list[Path], spec: Spec, root: Path
) -> str | None:
    """Why the source's ``rows`` (the ``keys`` and the ``__file__``, an index in ``paths``,
    of each row) are refused when some keys have rows in more than one file, naming the
    files; None when no key does (duplicates within one file are refused later, with the
    other checks)."""
    shared = (
        rows.drop_nulls(keys)
        .group_by(keys)
        .agg(pl.col("__file__").unique().sort())
        .filter(pl.col("__file__").list.len() > 1)
        .sort(keys)
    )
    if shared.height == 0:
        return None
    groups = (
        shared.group_by("__file__", maintain_order=True)
        .agg(pl.len().alias("keys"), pl.struct(keys).first().alias("example"))
        .sort("keys", descending=True, maintain_order=True)
    )
    label = ", ".join(keys)
    listed = []
    for files, count, example in groups.head(_LISTED).iter_rows():
        shown = [shown_path(paths[i], root) for i in files]
        names = f"{', '.join(shown[:-1])} and {shown[-1]}"
        key = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in example.values())
        every = "both" if len(files) == 2 else "each of"
        listed.append(f"{count} in {every} {names} (e.g. ({key}))")
    more = groups.height - _LISTED
    if more > 0:
        listed.append(f"and {more} other group{'s' if more > 1 else ''} of files")
    return (
        f"Rows of {shared.height} ({label}) are in more than one file of source.path "
        f"{spec.source.path!r}: {'; '.join(listed)}. The files overlap (a file copied twice, "
        f"or exports whose periods overlap), and each ({label}) must be in one file only: "
        "remove the copy, or cut the overlap out of all files but one."
    )

"""Where a CSV file the reader refused goes wrong: :func:`bad_line` names the line.

Polars' CSV reader says *what* failed (a line with more fields than the header, a value that
does not fit its column's type, a quoted field never closed), but not the line: "found more
fields than defined in 'Schema'", "could not parse `abc` as dtype `i64` at column 'y'", "CSV
malformed: ... in chunk starting at row_offset 219". Once a read has failed, the file is read
again record by record with Python's :mod:`csv` module (the same separator and quote
character), which counts the physical lines (a quoted field may span several), up to the
first record that fails the same way. Only an error path reads it: a read that succeeds never
comes here. The :mod:`csv` module's own limit on a field (131,072 characters) is raised to
16,777,216 while a file is read here, so a long legal field is read past, and a quote never
closed is named as such where the file ends before that, else as a field that runs past it.

:func:`short_line` names a line with fewer fields than the header, which the reader reads
without a word (its missing fields empty). A file without a quote character is read by Polars
as whole lines (about as long as the read itself), each line's separators counted: a line is
a record there. Only a file with a quote (a quoted field may hold the separator or span
lines) is read with the :mod:`csv` module, 2 to 4 times as long.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl

from forecaster._polars import collect
from forecaster.data.frames import counted
from forecaster.jobs.spec import Spec

__all__ = ["bad_line", "short_line"]

_PARSE = re.compile(
    r"could not parse `(?P<value>.*)` as dtype `(?P<dtype>[^`]*)` at column '(?P<column>.*)' "
    r"\(column number (?P<number>\d+)\)"
)
"""Polars' message for a value that does not fit its column's type."""


def bad_line(path: Path, spec: Spec, message: str) -> str | None:
    """Where the CSV file ``path`` (read with the spec's separator) fails as the reader's
    error ``message`` says, as ``"line 182: ..."``: the first line (1 is the header) that
    starts a record with more fields than the header, a quoted field never closed, or, for a
    value that does not fit its column's type, that value in that column. None when the
    file cannot be opened here (a ``.zst`` file), or no line fails that way."""
    parse = _PARSE.search(message)
    try:
        with _open_text(path) as text, _long_fields():
            if text is None:
                return None
            return _first_bad_record(text, spec.source.separator, parse)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


_FIELD_LIMIT = 2**24
"""The longest field read here (characters; the :mod:`csv` module's default is 131,072): room
for a legal long text field (a note, an embedded document), and a bound on the memory of a
quote never closed in a large file, which the module would otherwise hold to the end of the
file in its buffer of 4 bytes a character (a 100 MB file: 390 MB more, 2.7 s), where it
stops at 64 MB."""

_LIMIT_LOCK = threading.Lock()
"""Held while a file is read with :data:`_FIELD_LIMIT` (the module's limit is process-wide)."""


@contextlib.contextmanager
def _long_fields() -> Iterator[None]:
    """The :mod:`csv` module's limit on a field raised to :data:`_FIELD_LIMIT` in the block,
    then put back: a long field is legal (the reader reads it), not a sign of a quote never
    closed. One block at a time (the limit is the process's)."""
    with _LIMIT_LOCK:
        before = csv.field_size_limit(_FIELD_LIMIT)
        try:
            yield
        finally:
            csv.field_size_limit(before)


def _first_bad_record(text: IO[str], separator: str, parse: re.Match[str] | None) -> str | None:
    """The first record of ``text`` that fails (see :func:`bad_line`), in words."""
    reader = csv.reader(text, delimiter=separator, quotechar='"', strict=True)
    records = _records(reader)
    try:
        _, header = next(records)
    except (StopIteration, _Unreadable):
        return None
    index = int(parse["number"]) - 1 if parse else -1
    values = _as_read(parse["value"]) if parse else ()
    try:
        for line, fields in records:
            if len(fields) > len(header):
                extra = fields[len(header) :]
                trailing = (
                    ""
                    if any(extra)
                    else (
                        f"; the extra field{'s are' if len(extra) > 1 else ' is'} empty: a "
                        "separator at the end of the line?"
                    )
                )
                return (
                    f"line {line} has {len(fields)} fields, where the header has {len(header)} "
                    f"({separator!r}-separated; a value holding {separator!r} is quoted"
                    f"{trailing})"
                )
            if parse and 0 <= index < len(fields) and fields[index] in values:
                return (
                    f"line {line} has {fields[index]!r} in column {parse['column']!r}, read "
                    f"as {parse['dtype']}"
                )
    except _Unreadable as exc:
        return f"line {exc.line}: {exc.reason}"
    return None


def short_line(path: Path, spec: Spec) -> str | None:
    """The first line of the CSV file ``path`` (1 is the header) that starts a record with
    fewer fields than the header, as ``"line 182 has 2 fields, where the header has 3"``:
    the reader reads such a record without a word, its missing fields as empty values. An
    empty line (no field) is not one: it is skipped as a blank row. None when every record
    has the header's fields, or the file cannot be read here (a ``.zst`` file with a quote
    character; a record the :mod:`csv` module cannot read is left to the reader). Reads the
    whole file, by lines when it holds no quote (:func:`_unquoted_short_line`), else record
    by record: call it only where a short record may be (a row with its last column empty)."""
    separator = spec.source.separator
    settled, found = _unquoted_short_line(path, separator)
    if settled:
        return found
    try:
        with _open_text(path) as text, _long_fields():
            if text is None:
                return None
            records = _records(csv.reader(text, delimiter=separator, quotechar='"', strict=True))
            _, header = next(records)
            for line, fields in records:
                if 0 < len(fields) < len(header):
                    return _short_text(line, len(fields), len(header), separator, header[-1])
    except (OSError, EOFError, gzip.BadGzipFile, StopIteration, _Unreadable):
        return None
    return None


_WHOLE_LINE = "\x00"
"""The separator of the read of a file as whole lines (:func:`_unquoted_short_line`): a text
file holds none; a line that does fails that read, and the file is read record by record."""


def _unquoted_short_line(path: Path, separator: str) -> tuple[bool, str | None]:
    """:func:`short_line` of a file without a quote character, read by Polars as whole lines
    (a blank line a null; a ``.gz`` or ``.zst`` file decompressed, as the reader does), each
    line's ``separator`` counted: without a quote a record is one line, and its fields are
    one more than its separators. ``(True, line or None)`` when settled so; ``(False, None)``
    when the file holds a quote (or the read fails): read it record by record."""
    if separator in (_WHOLE_LINE, '"'):
        return False, None
    lines = pl.scan_csv(
        str(path),
        has_header=False,
        separator=_WHOLE_LINE,
        quote_char=None,
        schema={"line": pl.String},
    )
    line = pl.col("line")
    fields = line.str.count_matches(separator, literal=True) + 1
    short = (pl.int_range(pl.len()) > 0) & (line.str.len_bytes() > 0) & (fields < fields.first())
    try:
        found = collect(
            lines.select(
                quoted=line.str.contains('"', literal=True).any(),
                header=line.first(),
                header_fields=fields.first(),
                row=pl.int_range(pl.len()).filter(short).first(),
                fields=fields.filter(short).first(),
            )
        ).row(0, named=True)
    except (pl.exceptions.PolarsError, OSError):
        return False, None
    if found["quoted"]:
        return False, None
    if found["row"] is None:
        return True, None
    last = "" if found["header"].endswith(separator) else found["header"]
    return True, _short_text(
        found["row"] + 1, found["fields"], found["header_fields"], separator, last
    )


def _short_text(line: int, fields: int, header: int, separator: str, last_name: str) -> str:
    """:func:`short_line`'s words for ``line`` of ``fields`` fields, where the header has
    ``header`` (its last named ``last_name``: empty when the header ends with a separator)."""
    unnamed = "; the header's last field is empty: a separator at the end of it?"
    return (
        f"line {line} has {counted(fields, 'field', 'fields')}, where the header has "
        f"{header} ({separator!r}-separated{unnamed if last_name == '' else ''})"
    )


def _as_read(value: str) -> tuple[str, ...]:
    """The field that the reader's error names as ``value``, as the :mod:`csv` module reads
    it: the reader names a quoted field with its quotes (``"n/a"``), the csv module
    without them (and ``""`` inside as one ``"``)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value, value[1:-1].replace('""', '"')
    return (value,)


class _Unreadable(Exception):
    """A record the :mod:`csv` module cannot read: its first ``line`` and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(line, reason)
        self.line, self.reason = line, reason


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record of ``reader`` with the line it starts on (a quoted field may span lines);
    a record it cannot read raises :class:`_Unreadable`."""
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if "unexpected end of data" in reason:
                reason = "a quoted field starts on it and is never closed (a '\"' missing)"
            elif "field larger than field limit" in reason:
                reason = (
                    f"a field starts on it and runs past {_FIELD_LIMIT:,} characters (a quote "
                    "never closed, or not a text file)"
                )
            raise _Unreadable(start, reason) from None
        yield start, fields


def _open_text(path: Path) -> Any:
    """``path`` opened as text (UTF-8, undecodable bytes replaced; a ``.gz`` file
    decompressed), or a context of None for a compression read here does not read."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    if suffix in (".zst", ".zstd"):
        return contextlib.nullcontext(None)
    return open(path, encoding="utf-8", errors="replace", newline="")

"""Reading frames: schemas, collection of lazy frames, the checks of a model's schema, and the
small helpers of every data message (lists of names, the first line of an error).

Every frame enters the package through :func:`frame_schema` and :func:`collect_frame`, so that a
lazy source that disappeared, a malformed file or a non-polars object raises
:class:`~forecaster.exceptions.DataValidationError` saying what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster._polars import collect
from forecaster.exceptions import DataValidationError

__all__ = [
    "MAX_EXAMPLES",
    "READ_ERRORS",
    "SERIES_ID",
    "check_schema",
    "collect_frame",
    "column_tuple",
    "counted",
    "exact_values",
    "first_line",
    "format_list",
    "frame_schema",
    "from_pandas",
    "id_cast",
    "id_order",
    "is_pandas_frame",
    "is_pandas_sequence",
    "keys_aligned",
    "match_keys",
    "observed_values",
    "polars_frame",
    "read_once",
    "text_like",
]

SERIES_ID = "__series__"
"""Name of the id column used internally when a frame holds a single series (no id column)."""

MAX_EXAMPLES = 5

READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
    OSError,
)
"""What collecting a LazyFrame raises when its source is gone, unreadable or malformed."""


def id_cast(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Column ``name`` (of dtype ``source``) as ``target``, to match ids of one dtype against
    ids of another: null where a number is not exactly a ``target`` value (an id 1.5 is no
    integer id; a plain cast would truncate it onto series 1), or where a value does not
    convert at all.

    Examples
    --------
    >>> ids = pl.DataFrame({"id": [1.0, 1.5, 2.0]})
    >>> ids.select(id_cast("id", pl.Float64, pl.Int64))["id"].to_list()
    [1, None, 2]
    """
    if source == target:
        return pl.col(name)
    cast = pl.col(name).cast(target, strict=False)
    if source.is_numeric() and target.is_numeric():
        return pl.when(cast.cast(source, strict=False) == pl.col(name)).then(cast).alias(name)
    return cast


def match_keys(
    fitted: pl.DataFrame, keys: pl.DataFrame, id_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``keys`` (column ``id_name``): the row of its series in ``fitted`` (the
    keys a model or scaler was fitted on, same column) and whether it is there at all.

    Text, Categorical and Enum ids match by their text; numbers match numbers of another dtype
    only when equal (:func:`id_cast`). The rows of unknown series are 0 (check ``known``).

    Examples
    --------
    >>> fitted = pl.DataFrame({"id": ["a", "b"]})
    >>> rows, known = match_keys(fitted, pl.DataFrame({"id": ["b", "z", "a"]}), "id")
    >>> rows.tolist(), known.tolist()
    ([1, 0, 0], [True, False, True])
    """
    (row,) = temporary_names([id_name], "_fitted")
    lookup = fitted.select(id_name).with_row_index(row)
    fitted_dtype, dtype = lookup.schema[id_name], keys.schema[id_name]
    if fitted_dtype != dtype and not (fitted_dtype.is_numeric() and dtype.is_numeric()):
        fitted_dtype = pl.String()  # text, Categorical and Enum ids match by their text
        lookup = lookup.with_columns(pl.col(id_name).cast(pl.String))
    keys = keys.select(id_cast(id_name, keys.schema[id_name], fitted_dtype))
    matched = keys.join(lookup, on=id_name, how="left", maintain_order="left")[row]
    known = ~matched.is_null().to_numpy()
    return matched.fill_null(0).to_numpy().astype(np.int64), known


def format_list(items: Sequence[Any], limit: int = MAX_EXAMPLES) -> str:
    """The first ``limit`` items as reprs, with how many more there are, for messages."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return f"{shown}{more}"


def counted(count: int, one: str, several: str) -> str:
    """``count`` with the words that agree with it, for messages: ``counted(1, "origin
    lies", "origins lie")`` is ``"1 origin lies"``, with 2 ``"2 origins lie"``."""
    return f"{count} {one if count == 1 else several}"


def column_tuple(columns: str | Sequence[str] | None) -> tuple[str, ...]:
    """A column argument (``None``, a name or a list of names) as a tuple of names."""
    if columns is None:
        return ()
    if isinstance(columns, str):
        return (columns,)
    if not isinstance(columns, Sequence | set | frozenset | pl.Series):
        raise DataValidationError(
            f"Expected a column name or a list of column names, got {type(columns).__name__} "
            f"{columns!r}."
        )
    return tuple(columns)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Polars appends long plan dumps)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreadable(exc: BaseException, what: str, stage: str = "") -> DataValidationError:
    """The error for a frame that cannot be read: ``what`` is e.g. ``"frame"``, ``stage``
    ``"schema"`` when only its schema was asked for."""
    lazy = f"lazy {what}" + ("'s schema" if stage == "schema" else "")
    if isinstance(exc, OSError):
        reason = (
            f"its source cannot be read ({first_line(exc)}). A LazyFrame reads the file it "
            "scans when it is collected, so the file must still be there: scan it again "
            "(pl.scan_csv / pl.scan_parquet) or .collect() it before the file is moved or deleted"
        )
    else:
        reason = (
            f"{first_line(exc)}. Check the source it scans (path, format) and the "
            "expressions applied to it"
        )
    return DataValidationError(f"Cannot read the {lazy}: {reason}.")


def _not_a_frame(frame: Any, what: str) -> DataValidationError:
    kind = f"{type(frame).__module__}.{type(frame).__name__}"
    if type(frame).__module__.startswith("pandas"):
        return DataValidationError(
            f"The {what} must be a polars DataFrame or LazyFrame in long format, got a {kind}."
            f" {_pandas_hint(frame)}"
        )
    return DataValidationError(
        f"The {what} must be a polars DataFrame or LazyFrame in long format, got {kind}. "
        "Convert it with pl.DataFrame(...) (pl.from_pandas(...) for pandas)."
    )


def _pandas_hint(frame: Any) -> str:
    """How to convert a pandas object, naming what would be lost or fail on the way."""
    if getattr(frame, "columns", None) is None:
        return "Convert it to a long frame first, e.g. pl.from_pandas(series.to_frame())."
    notes = _pandas_problems(frame)
    steps = "; ".join(notes)
    return "Convert it with pl.from_pandas(frame)" + (f", but first: {steps}." if steps else ".")


def _pandas_problems(frame: Any, *, values: bool = True) -> list[str]:
    """What keeps a pandas DataFrame from being read as a long frame as it is (``values``:
    also look for object columns mixing value types, a pass over their values)."""
    columns = frame.columns
    notes = []
    if getattr(columns, "nlevels", 1) > 1:
        notes.append("its columns are a MultiIndex: flatten them (frame.columns = [...])")
    duplicated = [str(c) for c in columns[columns.duplicated()]]
    if duplicated:
        notes.append(f"column names {format_list(duplicated)} occur twice: rename them")
    index = frame.index
    if getattr(index, "nlevels", 1) > 1 or any(n is not None for n in index.names):
        names = [n for n in index.names if n is not None]
        notes.append(
            f"its index {format_list(names)} holds data (e.g. the id or time): pl.from_pandas "
            "drops the index, so call frame.reset_index() first"
        )
    mixed = (
        [
            str(c)
            for c in columns[:200]
            if str(frame[c].dtype) == "object" and frame[c].map(type).nunique() > 1
        ]
        if values and not duplicated and getattr(columns, "nlevels", 1) == 1
        else []
    )
    if mixed:
        notes.append(
            f"the object columns {format_list(mixed)} mix value types (e.g. numbers and text): "
            "convert them, e.g. pd.to_numeric(frame[c], errors='coerce')"
        )
    return notes


def is_pandas_frame(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame (told by its type's module: pandas is never
    imported here)."""
    kind = type(value)
    return kind.__module__.split(".")[0] == "pandas" and kind.__name__ == "DataFrame"


def is_pandas_sequence(value: Any) -> bool:
    """Whether ``value`` is a pandas Series or Index (``pd.date_range(...)`` included), told
    by its type's module as :func:`is_pandas_frame` tells a frame."""
    kind = type(value)
    named = kind.__name__ == "Series" or kind.__name__.endswith("Index")
    return kind.__module__.split(".")[0] == "pandas" and named


def from_pandas(frame: Any, *, what: str = "frame") -> pl.DataFrame:
    """A pandas DataFrame as a polars DataFrame, converted once (``pl.from_pandas``: through
    Arrow, zero-copy where the column types allow); a frame whose index holds data, whose
    column names are a MultiIndex or repeat, or whose object columns mix value types raises
    :class:`DataValidationError` saying how to fix it.

    Examples
    --------
    >>> import pandas as pd
    >>> from_pandas(pd.DataFrame({"t": [1, 2], "y": [0.5, 1.5]})).schema["y"]
    Float64
    >>> from_pandas(pd.DataFrame({"y": [0.5]}, index=pd.Index([7], name="t")))
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The frame is a pandas DataFrame that cannot be \
read as it is: its index 't' holds data (e.g. the id or time): pl.from_pandas drops the index, \
so call frame.reset_index() first.
    """
    if not is_pandas_frame(frame):
        raise _not_a_frame(frame, what)
    notes = _pandas_problems(frame, values=False)  # the cheap checks; values only on failure
    if not notes:
        try:
            return pl.from_pandas(frame)
        except (ImportError, TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            notes = _pandas_problems(frame) or [
                f"polars cannot convert it ({first_line(exc)}): convert its columns to numbers, "
                "text or datetimes"
            ]
    raise DataValidationError(
        f"The {what} is a pandas DataFrame that cannot be read as it is: {'; '.join(notes)}."
    )


def polars_frame(value: Any, what: str = "frame") -> Any:
    """``value`` with a pandas DataFrame converted once by :func:`from_pandas` (``what`` names
    it in errors); anything else is returned as it is, for the checks that follow.

    Examples
    --------
    >>> import pandas as pd
    >>> type(polars_frame(pd.DataFrame({"y": [1.0]}))).__name__, polars_frame(None)
    ('DataFrame', None)
    """
    return from_pandas(value, what=what) if is_pandas_frame(value) else value


def frame_schema(frame: Any, *, what: str = "frame") -> pl.Schema:
    """The schema of a polars DataFrame or LazyFrame; a LazyFrame whose source is gone or
    malformed, or any other object, raises :class:`DataValidationError` saying what to do.

    Examples
    --------
    >>> frame_schema(pl.DataFrame({"t": [1]}))["t"]
    Int64
    >>> frame_schema([1, 2])
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The frame must be a polars DataFrame or \
LazyFrame in long format, got builtins.list. Convert it with pl.DataFrame(...) \
(pl.from_pandas(...) for pandas).
    """
    if isinstance(frame, pl.DataFrame):
        return frame.schema
    if not isinstance(frame, pl.LazyFrame):
        raise _not_a_frame(frame, what)
    try:
        return frame.collect_schema()
    except READ_ERRORS as exc:
        raise _unreadable(exc, what, "schema") from exc


def collect_frame(
    frame: Any, *, what: str = "frame", columns: Sequence[Any] | None = None
) -> pl.DataFrame:
    """``frame`` as a DataFrame (a LazyFrame collected, only ``columns`` when given: names or
    expressions); errors of the source (a scanned file that was deleted, a malformed file, an
    invalid expression) and non-polars objects raise :class:`DataValidationError`.

    Examples
    --------
    >>> collect_frame(pl.LazyFrame({"t": [1], "y": [2.0]}), columns=["y"]).columns
    ['y']
    """
    frame_schema(frame, what=what)
    try:
        if isinstance(frame, pl.LazyFrame):
            return collect(frame if columns is None else frame.select(columns))
        return frame if columns is None else frame.select(columns)
    except READ_ERRORS as exc:
        if isinstance(frame, pl.DataFrame):
            raise DataValidationError(
                f"Cannot select the columns of the {what}: {first_line(exc)}."
            ) from exc
        raise _unreadable(exc, what) from exc


def read_once(frame: Any, columns: Sequence[str]) -> Any:
    """``frame`` for a call that reads it more than once (``fit`` trains on it, then checks
    the baselines on its exact targets; ``predict`` forecasts, then looks for the values
    ``missing=`` made up): a LazyFrame collected once, only ``columns``, so that every read
    sees the same rows (collected again after training, a scan of a file that an upstream
    job replaced meanwhile gave other data, or failed). The columns keep the frame's order
    (the order of ``columns`` does not matter), so that a DataFrame and a LazyFrame of the
    same data give the same columns in the same order. A LazyFrame that lacks some of
    ``columns``, and anything else, is returned as it is: the caller's checks refuse it,
    naming the frame's own columns.

    Examples
    --------
    >>> lazy = pl.LazyFrame({"t": [1], "y": [2.0], "unused": ["a"]})
    >>> read_once(lazy, ["y", "t"]).columns
    ['t', 'y']
    >>> type(read_once(lazy, ["t", "z"])).__name__
    'LazyFrame'
    """
    if not isinstance(frame, pl.LazyFrame):
        return frame
    schema = frame_schema(frame)
    if any(name not in schema for name in columns):
        return frame
    wanted = set(columns)
    return collect_frame(frame, columns=[name for name in schema.names() if name in wanted])


def id_order(ids: pl.Series) -> pl.Series:
    """The key that orders series by their ids (the panel's order, and the order of every
    output's rows): text ids by their text, whatever their dtype (an Enum sorts by its
    categories' order, and a Categorical by its categories' order of appearance before
    polars 1.32, so String, Categorical and Enum ids of the same series would come in other
    orders and train another model); other ids as they are.

    Examples
    --------
    >>> ids = pl.Series(["b", "c", "a"], dtype=pl.Enum(["c", "b", "a"]))
    >>> ids.sort().to_list(), ids.gather(id_order(ids).arg_sort()).to_list()
    (['c', 'b', 'a'], ['a', 'b', 'c'])
    """
    return ids.cast(pl.String) if text_like(ids.dtype) and ids.dtype != pl.String else ids


def text_like(dtype: Any) -> bool:
    """Whether ``dtype`` holds text: String, Categorical or Enum.

    Examples
    --------
    >>> text_like(pl.Enum(["a"])), text_like(pl.Categorical), text_like(pl.Int64)
    (True, True, False)
    """
    return dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical)


def _compatible(expected: str, found: pl.DataType, role: str) -> bool:
    """Whether a column of dtype ``found`` can stand for one trained as ``expected``: the
    same dtype; any numeric width for numbers; text, Categorical or Enum for a text id."""
    if str(found) == expected:
        return True
    if role == "time":  # integer steps of any width; dates and datetimes exactly
        return expected.startswith(("Int", "UInt")) and found.is_integer()
    if role == "id" and expected.startswith(("Int", "UInt")):  # a key: never a float
        return found.is_integer()  # (2**53 + 1 as a float is 2**53: another series)
    if role == "id" and expected == "Boolean":  # matched by text: true is not 1
        return False
    numeric = expected.startswith(("Float", "Int", "UInt", "Boolean", "Decimal"))
    if numeric and found.is_numeric():
        return True
    text = expected.startswith(("String", "Categorical", "Enum"))
    return role == "id" and text and text_like(found)


def check_schema(
    frame: Any,
    expected: dict[str, str],
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    what: str = "frame",
    pandas: bool = False,
) -> pl.Schema:
    """Check that ``frame`` has the columns of ``expected`` (name to dtype name, e.g. a fitted
    model's ``schema_``) with compatible dtypes, and return its schema (``pandas``: the frame
    was converted from a pandas one, so the advice on a dtype is pandas code).

    Numeric columns may change width (Int64 for Float32 ...), but integer ids stay integers
    (a float id would round large ids into others) and Boolean ids Booleans (ids of other
    dtypes are matched by their text, and ``true`` is not ``1``); a text id column ``id_col`` may be
    text, Categorical or Enum for any of them (ids are matched by value); the time column
    ``time_col`` may change only its integer width (a float is no time step); other dtypes,
    time zones and time units must be the same (a fitted model's entries cast a time column
    of the same instants in another unit first: :func:`~forecaster.data.dtypes.align_time`).

    Examples
    --------
    >>> check_schema(pl.DataFrame({"t": [1], "y": [1]}), {"t": "Int64", "y": "Float32"})["y"]
    Int64
    """
    schema = frame_schema(frame, what=what)
    missing = [c for c in expected if c not in schema]
    if missing:
        raise DataValidationError(
            f"The {what} lacks the columns {missing} that the model was trained with "
            f"(expected {list(expected)}, got {list(schema.names())}). Rename or add them, "
            "or refit the model on the new columns."
        )
    roles = {id_col: "id", time_col: "time"}
    changed = {
        c: (t, str(schema[c]))
        for c, t in expected.items()
        if not _compatible(t, schema[c], roles.get(c, ""))
    }
    if changed:
        detail = ", ".join(f"{c}: trained on {a}, got {b}" for c, (a, b) in changed.items())
        raise DataValidationError(
            f"Column dtypes differ from training ({detail}). {_cast_hint(changed, pandas)}"
        )
    return schema


def _cast_hint(changed: dict[str, tuple[str, str]], pandas: bool) -> str:
    """How to cast the ``changed`` columns (name to trained and given dtype names) back to
    the training dtypes, in polars or (``pandas``) in pandas code."""
    zone = re.compile(r"time_zone=([^)]*)")
    zones = any(
        zone.search(a) and zone.search(b) and zone.findall(a) != zone.findall(b)
        for a, b in changed.values()
    )
    if not pandas:
        hint = (
            " For time zones: .dt.replace_time_zone(...) sets or drops one, "
            ".dt.convert_time_zone(...) converts between two."
            if zones
            else ""
        )
        hint += "".join(_date_hint(c, *dtypes) for c, dtypes in changed.items())
        return (
            "Cast them to the training dtypes, e.g. pl.col(name).cast(...), or refit the model "
            f"on the new dtypes.{hint}"
        )
    dates = [c for c, (a, b) in changed.items() if a == "Date" and b.startswith("Datetime")]
    hint = (
        f" pandas has no date type: a Date column is read from datetimes at midnight without "
        f"a time zone, and {format_list(dates)} {'holds' if len(dates) == 1 else 'hold'} times "
        "of day or a time zone; "
        "frame[name].dt.tz_localize(None).dt.normalize() drops them, if they carry no "
        "meaning."
        if dates
        else ""
    )
    if zones:
        hint += (
            " For time zones: frame[name].dt.tz_localize(...) sets or drops one, "
            "frame[name].dt.tz_convert(...) converts between two."
        )
    periods = [c for c, (_, b) in changed.items() if "pandas.period" in b]
    if periods:
        what = "is a pandas Period column" if len(periods) == 1 else "are pandas Period columns"
        hint += (
            f" {format_list(periods)} {what} (spans, not times): frame[name] = "
            "frame[name].dt.to_timestamp() gives each period's start."
        )
    return (
        "Convert them in pandas to the training dtypes, e.g. frame[name] = "
        f"frame[name].astype(...), or refit the model on the new dtypes.{hint}"
    )


def _date_hint(name: str, trained: str, given: str) -> str:
    """How to turn a polars column ``name`` of dates into the trained datetimes, or back:
    a Date holds days, not instants, so neither is read as the other without a word."""
    if trained == "Date" and given.startswith("Datetime"):
        return (
            f" {name!r} holds datetimes, and the model was trained on dates: "
            f"pl.col({name!r}).dt.date() takes their days (if every time is a midnight, "
            "nothing is lost)."
        )
    if trained.startswith("Datetime") and given == "Date":
        zoned = re.search(r"time_unit='(\w+)', time_zone='([^']+)'", trained)
        cast = f"cast(pl.{trained})"  # a zone's local midnights, not UTC's: replace_time_zone
        if zoned is not None:
            cast = f"cast(pl.Datetime({zoned[1]!r})).dt.replace_time_zone({zoned[2]!r})"
        return (
            f" {name!r} holds dates, and the model was trained on datetimes: "
            f"pl.col({name!r}).{cast} gives their midnights (the model's times, if it was "
            "trained on midnights)."
        )
    return ""


def exact_values(
    rows: pl.DataFrame, frame: pl.DataFrame, targets: Sequence[str], filled: Any
) -> Any:
    """The values of ``targets`` in ``frame`` as float64, at each row of ``rows`` (its
    columns: the keys, e.g. id and time, of a validated frame made from ``frame``), where
    validation keeps Float32: scores compare forecasts with what was observed, not with its
    float32 rounding (``1e8 + 1`` reads ``1e8``). Where ``frame`` holds no value (a row or a
    value a ``missing`` policy made up) the value is ``filled``'s (an array, rows by
    targets). One join on the keys (:func:`observed_values`): linear in the rows.

    Examples
    --------
    >>> import numpy as np
    >>> frame = pl.DataFrame({"t": [0, 1], "y": [1e8 + 1, None]})
    >>> exact_values(frame.select("t"), frame, ["y"], np.array([[1e8], [7.0]])).tolist()
    [[100000001.0], [7.0]]
    """
    values = observed_values(rows, frame, targets)
    return np.where(np.isnan(values), np.asarray(filled, dtype=np.float64), values)


def observed_values(
    rows: pl.DataFrame, frame: pl.DataFrame, targets: Sequence[str], aligned: bool | None = None
) -> Any:
    """The values of ``targets`` in ``frame`` as float64 (rows by targets), at each row of
    ``rows`` (its columns: the keys of a validated frame made from ``frame``); NaN where
    ``frame`` holds no value (a null or NaN, or no row: a step a ``missing`` policy fills).
    One join on the keys: linear in the rows; none when ``frame``'s keys are those of ``rows``
    in the same order (a sorted frame without gaps, the usual case), whose values are then read
    in place (a join of 1M rows took about 260 MB). ``aligned``: whether they are, where the
    caller has compared them (compared here when None).

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [0, 2], "y": [1e8 + 1, None]})
    >>> observed_values(pl.DataFrame({"t": [0, 1, 2]}), frame, ["y"]).ravel().tolist()
    [100000001.0, nan, nan]
    """
    on = rows.columns
    original = frame.select(
        *(pl.col(c).cast(rows.schema[c], strict=False) for c in on),
        *(pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets),
    )
    if keys_aligned(rows, original) if aligned is None else aligned:
        exact = original
    else:
        exact = rows.join(original, on=on, how="left", maintain_order="left", validate="m:1")
    values = exact.select(pl.col(t).fill_null(float("nan")) for t in targets).to_numpy()
    return np.array(values, dtype=np.float64).reshape(len(exact), len(targets))  # writable


def keys_aligned(rows: pl.DataFrame, frame: pl.DataFrame) -> bool:
    """Whether ``frame``'s keys (the columns of ``rows``), cast to ``rows``' dtypes, are
    ``rows`` in the same order: its values can then be read in place, without a join."""
    if frame.height != rows.height:
        return False
    keys = frame.select(pl.col(c).cast(rows.schema[c], strict=False) for c in rows.columns)
    return keys.equals(rows)

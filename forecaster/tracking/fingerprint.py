"""Dataset fingerprints, and the check that a frame is the data an estimator was fitted on.

A fingerprint (:func:`dataset_fingerprint`) describes a training set cheaply and identifies
its content: columns, dtypes, rows, series count, time span and a content hash (logged as the
params ``data.*`` and the artifact ``dataset.json``; a forecaster's is of the columns its fit
reads: :func:`fingerprint_for`). :func:`training_data` refuses, before anything is logged or
written, a frame that is not the data a fitted estimator was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster._hashing import fingerprint_digest
from forecaster._polars import collect
from forecaster.data import check_schema, frame_schema
from forecaster.data.dtypes import align_time
from forecaster.data.frames import id_cast, text_like
from forecaster.exceptions import DataValidationError
from forecaster.tracking.config import describe_kind, short_error

__all__ = [
    "dataset_fingerprint",
    "fingerprint_for",
    "fingerprint_params",
    "model_frame",
    "same_data_hash",
    "target_names",
    "training_data",
]


def dataset_fingerprint(
    data: Any, *, id_col: str | None = None, time_col: str | None = None
) -> dict[str, Any]:
    """A cheap description of a training set that identifies its content.

    Parameters
    ----------
    data : polars.DataFrame, polars.LazyFrame or tuple of arrays
        A long frame, or ``(X, y)`` arrays for :class:`~forecaster.RNNRegressor`.
    id_col, time_col : str, optional
        Series id and time columns of a frame (for the series count and time span).

    Returns
    -------
    dict
        ``columns``, ``dtypes``, ``rows``, ``series``, ``start``, ``end`` and ``hash``. For a
        frame the hash combines the schema with the wrapping sum of Polars' per-row hashes (one
        streaming pass; independent of row order, which does not change a fit; stable for a
        given Polars version). A Categorical or Enum ``id_col`` is hashed as its text: the
        hash of a frame is the same whether its id is String, Categorical or Enum (``dtypes``
        still names the frame's own), and such a frame's fingerprint also has ``legacy_hash``,
        the hash earlier versions gave it (of the id's own dtype), by which the records they
        wrote are recognised. For arrays it is a BLAKE2 hash of their bytes.

    Raises
    ------
    DataValidationError
        For anything else (None, a pandas frame, a list, arrays of Python objects), an
        ``id_col`` or ``time_col`` the frame lacks, or a lazy frame whose source cannot be
        read.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a", "a", "b"], "time": [1, 2, 1], "y": [1.0, 2.0, 3.0]})
    >>> fp = dataset_fingerprint(frame, id_col="id", time_col="time")
    >>> fp["rows"], fp["series"], fp["start"], fp["end"]
    (3, 2, '1', '2')
    >>> fp["hash"] == dataset_fingerprint(frame.reverse(), id_col="id", time_col="time")["hash"]
    True
    """
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return _frame_fingerprint(data, id_col, time_col)
    arrays = _fingerprint_arrays(data)
    return {
        "kind": "arrays",
        "columns": [f"array_{i}" for i in range(len(arrays))],
        "dtypes": {f"array_{i}": f"{a.dtype}{list(a.shape)}" for i, a in enumerate(arrays)},
        "rows": len(arrays[0]) if arrays[0].ndim else 0,
        "series": None,
        "start": None,
        "end": None,
        "hash": fingerprint_digest(*arrays),
        "hash_method": "blake2b of the array bytes",
    }


def _fingerprint_arrays(data: Any) -> list[np.ndarray]:
    """The numeric arrays of ``data`` (an array or a tuple of arrays), or our error."""
    items = data if isinstance(data, tuple) else (data,)
    wrong = [a for a in items if not isinstance(a, np.ndarray)]
    if not items or wrong:
        bad = wrong[0] if wrong else None
        got = "an empty tuple" if not items else describe_kind(bad)
        hint = (
            " Convert it with pl.from_pandas(frame)."
            if type(bad).__module__.startswith("pandas")
            else ""
        )
        raise DataValidationError(
            f"data must be a polars DataFrame or LazyFrame, or numpy arrays (X, y) for an "
            f"RNNRegressor; got {got}.{hint}"
        )
    odd = next((a for a in items if a.dtype.hasobject or a.dtype.kind not in "biuf"), None)
    if odd is not None:
        raise DataValidationError(
            f"data arrays must hold numbers, got an array of dtype {odd.dtype}. Convert it, "
            "e.g. np.asarray(X, dtype=np.float32)."
        )
    return list(items)


def _frame_fingerprint(data: Any, id_col: str | None, time_col: str | None) -> dict[str, Any]:
    schema = frame_schema(data, what="data")
    for argument, column in (("id_col", id_col), ("time_col", time_col)):
        if column is not None and column not in schema:
            raise DataValidationError(
                f"{argument}={column!r} is not a column of the frame (its columns: "
                f"{list(schema.names())})."
            )
    lazy = data.lazy()
    try:
        return _frame_digest(lazy, schema, id_col, time_col)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        raise DataValidationError(
            f"Cannot read the frame to fingerprint it: {short_error(exc)}"
        ) from exc


def _frame_digest(
    lazy: pl.LazyFrame, schema: Any, id_col: str | None, time_col: str | None
) -> dict[str, Any]:
    """The fingerprint of a readable frame (one streaming pass). A Categorical or Enum id is
    hashed as its text, and named ``String`` in the hashed schema (:func:`_hashed_columns`):
    the same series give the same hash whatever the id's text dtype; ``legacy_hash`` keeps
    the hash of such a frame as earlier versions computed it (of the id's own dtype)."""
    hashed, hashed_dtypes = _hashed_columns(schema, id_col)
    exprs = [
        pl.len().alias("rows"),
        pl.struct(hashed).hash(seed=0).sum().alias("row_hash_sum"),
    ]
    if hashed_dtypes is not None:  # a Categorical or Enum id: also the hash it had before
        exprs.append(pl.struct(pl.all()).hash(seed=0).sum().alias("legacy_row_hash_sum"))
    if id_col is not None and id_col in schema:
        exprs.append(pl.col(id_col).n_unique().alias("series"))
    if time_col is not None and time_col in schema:
        exprs += [pl.col(time_col).min().alias("start"), pl.col(time_col).max().alias("end")]
    row = collect(lazy.select(exprs), streaming=True).row(0, named=True)
    dtypes = {name: str(dtype) for name, dtype in schema.items()}
    fingerprint = {
        "kind": "frame",
        "columns": list(dtypes),
        "dtypes": dtypes,
        "rows": int(row["rows"]),
        "series": int(row.get("series", 1)),
        "start": None if row.get("start") is None else str(row["start"]),
        "end": None if row.get("end") is None else str(row["end"]),
        "hash": fingerprint_digest(
            json.dumps(hashed_dtypes or dtypes), f"{row['rows']}:{row['row_hash_sum']}"
        ),
        "hash_method": f"blake2b(schema, rows, sum of polars row hashes), polars {pl.__version__}",
    }
    if hashed_dtypes is not None:
        legacy = f"{row['rows']}:{row['legacy_row_hash_sum']}"
        fingerprint["legacy_hash"] = fingerprint_digest(json.dumps(dtypes), legacy)
    return fingerprint


def _hashed_columns(schema: Any, id_col: str | None) -> tuple[list[pl.Expr], dict[str, str] | None]:
    """The columns a frame's hash is of, and the schema it hashes when it is not the frame's:
    a Categorical or Enum ``id_col`` cast to String, and named ``String`` (its text is what
    identifies a series: String, Categorical and Enum ids of the same series train the same
    model); None for the schema when the frame's is hashed as it is."""
    columns = [pl.col(name) for name in schema.names()]
    dtype = schema.get(id_col) if id_col is not None else None
    if dtype is None or dtype == pl.String or not text_like(dtype):
        return columns, None
    cast = [pl.col(n).cast(pl.String) if n == id_col else pl.col(n) for n in schema.names()]
    dtypes = {name: "String" if name == id_col else str(dt) for name, dt in schema.items()}
    return cast, dtypes


def same_data_hash(recorded: Any, fingerprint: Mapping[str, Any]) -> bool:
    """Whether the hash ``recorded`` (a ``data.hash`` param, ``summary.json``'s ``data.hash``)
    is the ``fingerprint``'s: its ``hash``, or, for a frame with a Categorical or Enum id, the
    ``legacy_hash`` an earlier version recorded for the same data."""
    known = (fingerprint.get("hash"), fingerprint.get("legacy_hash"))
    return recorded is not None and str(recorded) in {str(h) for h in known if h is not None}


def fingerprint_for(estimator: Any, data: Any) -> dict[str, Any]:
    """The fingerprint of ``estimator``'s training data (its id and time columns).

    For a forecaster, only the columns its fit reads count (``estimator.model_columns()``:
    targets, covariates, id, time, statics; in the frame's order): a DataFrame with other
    columns and a LazyFrame of the same data, of which fit reads those columns only, get the
    same fingerprint, and a change in a column the model does not use leaves it as it is
    (the model trained on the same data). It equals ``dataset_fingerprint`` of the frame
    restricted to those columns.
    """
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return dataset_fingerprint(
            model_frame(estimator, data, "the dataset fingerprint"),
            id_col=getattr(estimator, "id_col", None),
            time_col=getattr(estimator, "time_col", None),
        )
    return dataset_fingerprint(data)


def model_frame(estimator: Any, data: Any, caller: str) -> Any:
    """The polars frame ``data`` restricted to the columns a forecaster ``estimator`` reads
    (``estimator.model_columns()``, in the frame's order); ``data`` as it is for an estimator
    without them (:class:`~forecaster.RNNRegressor`).

    Raises
    ------
    DataValidationError
        ``data`` lacks some of those columns: it is not the data the model was (or is to be)
        fitted on; ``caller`` names what needed it (a fit refuses such a frame first).
    """
    model_columns = getattr(estimator, "model_columns", None)
    if model_columns is None:
        return data
    needed = model_columns()
    schema = frame_schema(data)
    missing = [name for name in needed if name not in schema]
    if missing:
        raise DataValidationError(
            f"{caller} needs the columns the model reads ({', '.join(map(repr, needed))}); "
            f"the frame lacks {', '.join(map(repr, missing))} (its columns: "
            f"{list(schema.names())}). Pass the data the model was fitted on."
        )
    used = set(needed)
    return data.select([name for name in schema.names() if name in used])


def training_data(estimator: Any, data: Any, caller: str) -> Any:
    """``data`` checked against what ``estimator`` (fitted) was trained on, before anything
    is logged or written: a forecaster's frame must have the training columns with compatible
    dtypes; a regressor's data must be ``(X, y)`` with its window shape (returned as numpy
    arrays)."""
    if hasattr(estimator, "schema_"):
        try:  # the same instants in another time unit read as predict reads them
            data = align_time(data, estimator.schema_, estimator.time_col)
            check_schema(data, estimator.schema_, id_col=estimator.id_col, what="frame")
        except DataValidationError as exc:
            raise DataValidationError(
                f"{caller} needs the frame the model was trained on (or one with its columns): "
                f"{exc}"
            ) from None
        differences = _training_differences(estimator, data)
        if differences:
            raise DataValidationError(
                f"{caller} needs the frame the model was trained on (its fingerprint, plot and "
                f"input example describe the model), and this frame is other data: "
                f"{'; '.join(differences)}. Pass the frame given to fit."
            )
        return data
    if not (isinstance(data, tuple) and len(data) == 2):
        raise DataValidationError(
            f"{caller} takes an RNNRegressor's training data as a tuple (X, y) of arrays, got "
            f"{describe_kind(data)}."
        )
    try:
        X, y = np.asarray(data[0], dtype=np.float32), np.asarray(data[1])
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{caller}: (X, y) must be numeric arrays ({exc}).") from None
    channels = X.shape[2] if X.ndim == 3 else 1
    expected = (int(estimator.lookback_), int(estimator.n_channels_))
    if X.ndim not in (2, 3) or (X.shape[1], channels) != expected or len(X) != len(y):
        raise DataValidationError(
            f"{caller}: X must have shape (n, {expected[0]}, {expected[1]}) (or (n, "
            f"{expected[0]}) for one feature), as in fit, and y as many rows; got X of shape "
            f"{X.shape} and y of shape {y.shape}."
        )
    return X, y


def _training_differences(estimator: Any, data: Any) -> list[str]:
    """How a frame with the training columns differs from the data ``estimator`` was
    fitted on, as far as the estimator records it: its series (``keys_``; a series of the
    frame long enough to be fitted, ``lookback + horizon`` rows, that the model does not
    know) and the last time of each (``train_end_``, absent in folders saved by old
    versions). Empty when nothing recorded differs."""
    keys = getattr(estimator, "keys_", None)
    if not isinstance(keys, pl.DataFrame) or keys.width != 1:
        return []
    id_name, time_col = keys.columns[0], estimator.time_col
    try:
        seen = _series_ends(data.lazy(), estimator.id_col, id_name, time_col)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        raise DataValidationError(f"Cannot read the frame: {short_error(exc)}") from exc
    fitted = keys.with_columns(pl.lit(True).alias("_fitted"))
    ends = estimator.__dict__.get("train_end_")
    if isinstance(ends, pl.Series) and len(ends) == keys.height:
        fitted = fitted.with_columns(ends.alias("_fitted_end"))
        seen = seen.with_columns(pl.col("_end").cast(ends.dtype, strict=False))
    fitted_dtype: Any = keys.schema[id_name]
    dtype = seen.schema[id_name]
    if fitted_dtype != dtype and not (fitted_dtype.is_numeric() and dtype.is_numeric()):
        fitted_dtype = pl.String  # text, Categorical and Enum ids match by their text
        fitted = fitted.with_columns(pl.col(id_name).cast(pl.String))
    seen = seen.with_columns(id_cast(id_name, seen.schema[id_name], fitted_dtype))
    both = fitted.join(seen, on=id_name, how="full", coalesce=True)
    return _describe_differences(estimator, both, id_name)


def _series_ends(lazy: pl.LazyFrame, id_col: str | None, id_name: str, time_col: str) -> Any:
    """One row per series of a frame: its id (column ``id_name``), last time and rows."""
    aggregates = [pl.col(time_col).max().alias("_end"), pl.len().alias("_rows")]
    if id_col is None:  # one series, as fit packs it
        one = lazy.select(aggregates).with_columns(pl.lit(0, pl.UInt8).alias(id_name))
        return collect(one, streaming=True)
    return collect(lazy.group_by(pl.col(id_col).alias(id_name)).agg(aggregates), streaming=True)


def _describe_differences(estimator: Any, both: pl.DataFrame, id_name: str) -> list[str]:
    """The items of :func:`_training_differences` from the joined table of fitted and seen
    series (columns ``_fitted``, ``_fitted_end`` when known, ``_end``, ``_rows``)."""

    def ids(table: pl.DataFrame) -> str:
        shown = ", ".join(repr(v) for v in table[id_name].sort().head(3).to_list())
        return shown + (f" and {table.height - 3} more" if table.height > 3 else "")

    out = []
    known = both.filter(pl.col("_fitted").is_not_null())
    missing = known.filter(pl.col("_rows").is_null())
    if missing.height:
        out.append(
            f"{missing.height} of the {known.height} series the model was trained on are not in "
            f"it ({ids(missing)})"
        )
    if "_fitted_end" in both.columns:
        moved = known.filter(
            pl.col("_rows").is_not_null() & (pl.col("_end") != pl.col("_fitted_end"))
        )
        if moved.height:
            first = moved.sort(id_name).row(0, named=True)
            which = "the series" if estimator.id_col is None else f"series {first[id_name]!r}"
            verb = "ends" if moved.height == 1 else "end"
            out.append(
                f"{moved.height} series {verb} at another time than in the training data "
                f"({which} ends at {first['_end']} in this frame, at {first['_fitted_end']} in "
                f"the training data)"
            )
    needed = estimator.lookback_ + int(estimator.horizon)
    unknown = both.filter(pl.col("_fitted").is_null() & (pl.col("_rows") >= needed))
    if unknown.height and estimator.missing != "interpolate":  # interpolate drops rows
        out.append(
            f"{unknown.height} series with the {needed} rows fit needs were not in the training "
            f"data ({ids(unknown)})"
        )
    return out


def fingerprint_params(fp: Mapping[str, Any]) -> dict[str, str]:
    """The params ``data.*`` of a fingerprint."""
    keys = ("rows", "series", "start", "end", "hash")
    out = {f"data.{k}": str(fp[k]) for k in keys if fp.get(k) is not None}
    out["data.columns"] = ",".join(fp["columns"])
    return out


def target_names(estimator: Any) -> list[str]:
    """The target column names of a forecaster (``target`` is one name or a list)."""
    target = estimator.target
    return [target] if isinstance(target, str) else list(target)

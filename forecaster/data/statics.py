"""Static covariates: columns with one value per series (a sector, a region, a sensor type).

:func:`read_statics` reads them from a long frame, one row per series, checked constant within
each series; :class:`StaticEncoding` turns them into the numbers the network reads
(:mod:`forecaster.nn.statics`):

* **categorical** statics (String, Categorical, Enum, Boolean and integer columns) become codes
  ``1..n`` of a vocabulary fitted on the training series (the values' text, sorted); a value
  not in it (a category unseen in ``fit``) gets code 0, the *unknown* category, with a
  :class:`~forecaster.exceptions.ForecasterWarning` naming the column and the series;
* **numeric** statics (Float32 / Float64 columns) are standardised with the mean and standard
  deviation *over the training series* (one value per series), never per series: a per-series
  scaler would map every constant column to zero.
"""

from __future__ import annotations

__all__ = ["StaticEncoding", "read_statics", "static_kind", "with_static_columns"]

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster.data.frames import (
    SERIES_ID,
    collect_frame,
    column_tuple,
    format_list,
    frame_schema,
)
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller


def static_kind(name: str, dtype: Any) -> str:
    """``"categorical"`` or ``"numeric"`` for a static covariate of ``dtype``; other dtypes
    (dates, lists, decimals, ...) are refused."""
    if dtype in (pl.String, pl.Boolean) or isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    if dtype.is_integer():
        return "categorical"
    if dtype.is_float():
        return "numeric"
    raise DataValidationError(
        f"Static covariate {name!r} has dtype {dtype}: a static covariate is categorical "
        "(String, Categorical, Enum, Boolean or integer codes) or numeric (Float32 / Float64). "
        f"Cast it, e.g. pl.col({name!r}).cast(pl.String) for categories or .cast(pl.Float64) "
        "for a number."
    )


def read_statics(frame: Any, *, id_col: str | None, names: Sequence[str]) -> pl.DataFrame:
    """One row per series (in the order of first appearance): the id column
    (``"__series__"`` for a frame without one) and the static covariates ``names``.

    Every static covariate must have one value per series: a second value in any series, a
    null or a NaN is refused, naming the column and the first series concerned.

    Examples
    --------
    >>> frame = pl.DataFrame({"id": ["a", "a", "b"], "region": ["n", "n", "s"]})
    >>> read_statics(frame, id_col="id", names=["region"]).rows()
    [('a', 'n'), ('b', 's')]
    """
    schema = frame_schema(frame)
    absent = [n for n in names if n not in schema]
    if absent:
        raise DataValidationError(
            f"The frame lacks the static covariates {absent} (it has {list(schema.names())}). "
            "Add them, one value per series, or leave them out of static_covariates."
        )
    kinds = {n: static_kind(n, schema[n]) for n in names}
    id_name = id_col if id_col is not None else SERIES_ID
    key = pl.col(id_col) if id_col is not None else pl.lit(0, pl.UInt8).alias(SERIES_ID)
    data = collect_frame(frame, columns=[key, *(pl.col(n) for n in names)])
    for name in names:
        bad = data[name].is_null()
        if kinds[name] == "numeric":
            bad = bad | ~data[name].is_finite().fill_null(False)
        if bad.any():
            series = data.filter(bad)[id_name][0]
            where = "" if id_col is None else f" (first in series {series!r})"
            raise DataValidationError(
                f"Static covariate {name!r} has {int(bad.sum())} null, NaN or infinite "
                f"values{where}. A static covariate needs one value per series: fill them "
                f"(e.g. pl.col({name!r}).fill_null(...)) or drop the column."
            )
    counts = data.group_by(id_name, maintain_order=True).agg(
        *(pl.col(n).n_unique().alias(n) for n in names)
    )
    for name in names:
        varying = counts.filter(pl.col(name) > 1)
        if varying.height:
            series = varying[id_name][0]
            values = data.filter(pl.col(id_name) == series)[name].unique(maintain_order=True)
            which = "The series" if id_col is None else f"Series {series!r}"
            raise DataValidationError(
                f"Static covariate {name!r} must have one value per series, but {which} has "
                f"{int(varying[name][0])} ({format_list(values.head(3).to_list(), 3)}; "
                f"{varying.height} series vary). Pass a column that is constant within each "
                "series, or use it as a time-varying covariate (covariates=[...])."
            )
    return data.unique(subset=[id_name], keep="first", maintain_order=True)


def with_static_columns(
    data: pl.DataFrame, frame: Any, *, id_col: str | None, names: Any
) -> pl.DataFrame:
    """``data`` (a validated frame: id, time, value columns) with the static covariates
    ``names`` of ``frame`` joined on the series (``data`` as it is without any).

    Examples
    --------
    >>> data = pl.DataFrame({"id": ["a", "b"], "y": [1.0, 2.0]})
    >>> frame = data.with_columns(region=pl.Series(["n", "s"]))
    >>> with_static_columns(data, frame, id_col="id", names=["region"]).columns
    ['id', 'y', 'region']
    """
    names = column_tuple(names)
    if not names:
        return data
    id_name = id_col if id_col is not None else SERIES_ID
    statics = read_statics(frame, id_col=id_col, names=names)
    statics = statics.with_columns(pl.col(id_name).cast(data.schema[id_name]))
    return data.join(statics, on=id_name, how="left", maintain_order="left")


@dataclass(frozen=True)
class StaticEncoding:
    """The fitted encoding of static covariates: vocabularies of the categorical ones and the
    mean and standard deviation (over series) of the numeric ones.

    Examples
    --------
    >>> statics = pl.DataFrame({"region": ["n", "s", "n"], "size": [1.0, 2.0, 3.0]})
    >>> encoding = StaticEncoding.fit(statics)
    >>> encoding.vocabularies, encoding.cardinalities
    ({'region': ['n', 's']}, [2])
    >>> encoding.transform(pl.DataFrame({"region": ["s", "w"], "size": [2.0, 2.0]}),
    ...                    warn=False).tolist()
    [[2.0, 0.0], [0.0, 0.0]]
    """

    vocabularies: dict[str, list[str]]
    numeric: dict[str, tuple[float, float]]

    @classmethod
    def fit(cls, statics: pl.DataFrame) -> StaticEncoding:
        """Fit on the statics of the training series (one row per series; other columns than
        the statics, such as the id, are left out by the caller)."""
        vocabularies: dict[str, list[str]] = {}
        numeric: dict[str, tuple[float, float]] = {}
        for name in statics.columns:
            column = statics[name]
            if static_kind(name, column.dtype) == "categorical":
                text = column.cast(pl.String).unique().sort()
                vocabularies[name] = [str(v) for v in text.to_list()]
            else:
                values = column.cast(pl.Float64).to_numpy()
                std = float(values.std())
                numeric[name] = (float(values.mean()), std if std > 0 else 1.0)
        same = [name for name in statics.columns if statics[name].n_unique() == 1]
        if same:
            warn_at_caller(
                f"Static covariates {same} have one value in every training series "
                f"({statics.height}), so they tell the series apart in no way and the network "
                "learns nothing from them. Drop them, or train on series whose values differ.",
                ForecasterWarning,
            )
        return cls(vocabularies, numeric)

    @property
    def names(self) -> list[str]:
        """The static covariates as the network reads them: categorical, then numeric."""
        return [*self.vocabularies, *self.numeric]

    @property
    def cardinalities(self) -> list[int]:
        """Categories of each categorical static (the unknown category not counted)."""
        return [len(v) for v in self.vocabularies.values()]

    def network_config(self) -> dict[str, Any]:
        """The network arguments of these statics (none without any)."""
        config: dict[str, Any] = {}
        if self.vocabularies:
            config["static_cardinalities"] = self.cardinalities
        if self.numeric:
            config["n_static_numeric"] = len(self.numeric)
        return config

    def transform(
        self, statics: pl.DataFrame, *, ids: pl.Series | None = None, warn: bool = True
    ) -> np.ndarray:
        """``(n_series, n_statics)`` float32: codes (0 for an unknown category, with a
        warning naming the column and a few of its series ``ids``), then standardised
        numbers."""
        columns = []
        for name, vocabulary in self.vocabularies.items():
            (code,) = temporary_names([name], "__code__")  # a static may be called __code__
            lookup = pl.DataFrame({name: vocabulary, code: np.arange(1, len(vocabulary) + 1)})
            column = pl.col(name).cast(pl.String)
            if statics.schema[name].is_float():  # integer codes given as floats: 3.0 is "3"
                whole = pl.col(name) == pl.col(name).round()
                column = pl.when(whole).then(pl.col(name).cast(pl.Int64).cast(pl.String))
                column = column.otherwise(pl.col(name).cast(pl.String)).alias(name)
            text = statics.select(column)
            codes = text.join(lookup, on=name, how="left", maintain_order="left")[code]
            unknown = codes.is_null()
            if warn and unknown.any():
                values = text.filter(unknown)[name].unique(maintain_order=True).to_list()
                which = (
                    ""
                    if ids is None
                    else f" of series {format_list(ids.filter(unknown).to_list(), 5)}"
                )
                warn_at_caller(
                    f"Static covariate {name!r} has categories unseen in fit "
                    f"({format_list(values, 5)}){which}: they get the unknown category (code "
                    "0, whose embedding is zero: the forecast uses no information from this "
                    "column for them). Refit with these series to learn their categories.",
                    ForecasterWarning,
                )
            columns.append(codes.fill_null(0).to_numpy().astype(np.float64))
        for name, (mean, std) in self.numeric.items():
            columns.append((statics[name].cast(pl.Float64).to_numpy() - mean) / std)
        return np.stack(columns, axis=1).astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        """JSON entry (``static_covariates`` in a saved model's ``config.json``)."""
        return {
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "numeric": {k: [m, s] for k, (m, s) in self.numeric.items()},
        }

    @classmethod
    def from_config(cls, entry: Any, names: Sequence[str]) -> StaticEncoding:
        """The encoding of :meth:`to_config`, checked against the static covariates
        ``names``; a malformed entry raises :class:`ValueError`."""
        if not isinstance(entry, dict) or set(entry) != {"vocabularies", "numeric"}:
            raise ValueError("expected {vocabularies, numeric}")
        vocabularies, numeric = entry["vocabularies"], entry["numeric"]
        if not isinstance(vocabularies, dict) or not isinstance(numeric, dict):
            raise ValueError("vocabularies and numeric must be mappings")
        if sorted([*vocabularies, *numeric]) != sorted(names):
            raise ValueError(f"the encoded columns differ from static_covariates {list(names)}")
        for name, vocabulary in vocabularies.items():
            if (
                not isinstance(vocabulary, list)
                or not vocabulary
                or not all(isinstance(v, str) for v in vocabulary)
                or len(set(vocabulary)) != len(vocabulary)
            ):
                raise ValueError(f"the vocabulary of {name!r} is not a list of distinct texts")
        for name, pair in numeric.items():
            ok = isinstance(pair, list) and len(pair) == 2
            ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
            if not ok or not all(math.isfinite(v) for v in pair) or pair[1] <= 0:
                raise ValueError(f"the statistics of {name!r} are not [mean, std > 0]")
        return cls(
            {k: list(v) for k, v in vocabularies.items()},
            {k: (float(v[0]), float(v[1])) for k, v in numeric.items()},
        )

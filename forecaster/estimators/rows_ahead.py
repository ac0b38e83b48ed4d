"""Rows ahead: the rows at the end of a frame after each series' last observed targets, whose
targets are missing (and whose future covariates, where a model reads them, are given), a
common layout for the future-known values of a forecast. :func:`rows_ahead_span` finds them
and :func:`observed_split` writes the code that splits a frame there, for the errors of
``predict`` without ``cutoff=`` nor ``future=``
(:meth:`~forecaster.estimators.future.FutureInputs._no_future_error`) and of ``fit`` under
``missing="error"`` (:func:`rows_ahead_fit_error`), and of ``predict`` under
``missing="error"`` of a model that reads no future covariates
(:func:`rows_ahead_predict_error`), which would otherwise advise a filling policy that makes
up the targets of those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from forecaster._columns import temporary_names
from forecaster._polars import collect
from forecaster.exceptions import DataValidationError

__all__ = [
    "missing_before_rows_ahead",
    "observed_split",
    "rows_ahead_fit_error",
    "rows_ahead_predict_error",
    "rows_ahead_span",
]


def rows_ahead_span(
    frame: pl.DataFrame | pl.LazyFrame,
    targets: Sequence[str],
    given: Sequence[str],
    *,
    id_col: str | None,
    time_col: str,
) -> tuple[Any, Any] | None:
    """The earliest and latest times at which a series of ``frame`` has every target
    observed last, where after them (in some series) only rows with every target missing
    (NaN or null) and every column of ``given`` observed follow: the rows ahead; None where
    there are none (or ``frame`` lacks a column it reads: left for the callers' checks).

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [1, 2, 3, 4], "y": [1.0, 2.0, None, None]})
    >>> rows_ahead_span(frame, ["y"], [], id_col=None, time_col="t")
    (2, 2)
    """
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    keys = [time_col] if id_col is None else [id_col, time_col]
    if any(c not in schema for c in [*keys, *targets, *given]):
        return None

    time = pl.col(time_col)
    observed = _observed
    every = pl.all_horizontal(observed(c) for c in targets)
    ahead = pl.all_horizontal([~observed(c) for c in targets] + [observed(c) for c in given])
    last = time.filter(every).max()
    if id_col is not None:
        last = last.over(id_col)
    end, is_ahead = temporary_names([time_col], "_last", "_ahead")
    rows = frame.lazy().select(time, last.alias(end), ahead.alias(is_ahead))
    after = rows.filter(time > pl.col(end))
    found = collect(after.select(pl.len(), pl.col(is_ahead).all())).row(0)
    if not found[0] or not found[1]:
        return None
    span = rows.select(pl.col(end).min().alias(is_ahead), pl.col(end).max())
    first, latest = collect(span).row(0)
    return first, latest


def _observed(column: str) -> pl.Expr:
    """Whether a target ``column``'s value is observed (neither NaN nor null)."""
    return pl.col(column).cast(pl.Float64, strict=False).fill_nan(None).is_not_null()


def missing_before_rows_ahead(
    frame: pl.DataFrame | pl.LazyFrame,
    targets: Sequence[str],
    covariates: Sequence[str],
    *,
    id_col: str | None,
    time_col: str,
) -> bool:
    """Whether a target or one of ``covariates`` of ``frame`` is missing (NaN or null) at a
    row up to its series' last time with every target observed: a gap that
    ``missing="error"`` refuses in the frame up to the rows ahead too, which the rows-ahead
    advice of ``fit`` and ``predict`` would otherwise hide behind a cutoff that still fails.

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [1, 2, 3, 4], "y": [1.0, None, 3.0, None]})
    >>> missing_before_rows_ahead(frame, ["y"], [], id_col=None, time_col="t")
    True
    """
    time = pl.col(time_col)
    last = time.filter(pl.all_horizontal(_observed(c) for c in targets)).max()
    if id_col is not None:
        last = last.over(id_col)
    complete = pl.all_horizontal(_observed(c) for c in [*targets, *covariates])
    before = (time <= last) & ~complete
    return bool(collect(frame.lazy().select(before.any())).item())


def observed_split(targets: Sequence[str], *, id_col: str | None, time_col: str) -> str:
    """The code of each series' last time with every target observed (an expression over
    the frame's rows), where :func:`rows_ahead_span` finds rows ahead after times that differ
    between series: the frame split there takes each series up to its own."""
    names = list(targets)
    observed = (
        f"pl.col({names[0]!r}).is_not_null()"
        if len(names) == 1
        else f"pl.all_horizontal(pl.col({names!r}).is_not_null())"
    )
    own = f"pl.col({time_col!r}).filter({observed}).max()"
    return own if id_col is None else f"{own}.over({id_col!r})"


def rows_ahead_fit_error(
    span: tuple[Any, Any],
    targets: Sequence[str],
    future_covariates: Sequence[str],
    *,
    id_col: str | None,
    time_col: str,
) -> DataValidationError:
    """The error of ``fit(frame)`` under ``missing="error"`` where ``frame`` ends with rows
    ahead after the times ``span`` (:func:`rows_ahead_span`): their targets are no training
    data, and ``missing="ffill"`` would train on made-up ones. It names the frame to fit on
    (the rows up to the last observed targets: each series' own where they differ) and the
    ``predict`` call that then forecasts from them (reading the ``future_covariates`` from
    the rows ahead)."""
    first, last = span
    time = f"pl.col({time_col!r})"
    if first == last:
        split, upto, when = "", repr(last), f"after {last}"
        forecast = f"predict(frame, cutoff={last!r})"
    else:
        own = observed_split(targets, id_col=id_col, time_col=time_col)
        split, upto, when = f"own = {own}; ", "own", f"after {first} to {last} by series"
        ahead = f", future=frame.filter({time} > own)" if future_covariates else ""
        forecast = f"predict(frame.filter({time} <= own){ahead})"
    reads = " (reading the future covariates from the rows ahead)" if future_covariates else ""
    return DataValidationError(
        f"The frame ends with rows whose targets are missing (rows ahead, {when}), which "
        "fit cannot train on: missing='error' refuses them, and missing='ffill' would train "
        "on made-up targets there. Fit on the rows up to each series' last observed targets: "
        f"{split}fit(frame.filter({time} <= {upto})); then {forecast} forecasts from "
        f"them{reads}."
    )


def rows_ahead_predict_error(
    span: tuple[Any, Any],
    targets: Sequence[str],
    *,
    id_col: str | None,
    time_col: str,
    call: str = "predict",
) -> DataValidationError:
    """The error of ``predict(frame)`` (no ``cutoff=``), or of ``stream(frame)`` (``call``),
    under ``missing="error"`` where ``frame`` ends with rows ahead after the times ``span``
    (:func:`rows_ahead_span`): the forecast would start from their missing targets, and
    ``missing="ffill"`` would make them up. It names the call that starts from the last
    observed targets instead: ``predict``'s ``cutoff=`` there (one time for every series) or
    the frame up to it, else the frame up to each series' own."""
    first, last = span
    time = f"pl.col({time_col!r})"
    if first == last:
        when = f"after {last}"
        forecast = f"{call}(frame.filter({time} <= {last!r}))"
        if call == "predict":
            forecast = f"predict(frame, cutoff={last!r}), or drop those rows: {forecast}"
    else:
        own = observed_split(targets, id_col=id_col, time_col=time_col)
        when = f"after {first} to {last} by series"
        forecast = f"own = {own}; {call}(frame.filter({time} <= own))"
    return DataValidationError(
        f"The frame ends with rows whose targets are missing (rows ahead, {when}), which "
        f"{call}(frame) would forecast from: missing='error' refuses them, and "
        "missing='ffill' would forecast from made-up targets there. To forecast from each "
        f"series' last observed targets, pass {forecast}."
    )

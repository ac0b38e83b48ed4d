"""Forecast origins at rows whose targets (or past covariates) the ``missing=`` policy made
up: the values a frame holds at rows of its validated panel (:func:`observed_rows`), and the
one warning of such origins (:func:`warn_made_up_origins`), of ``predict``'s cutoffs and of a
backtest's folds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.frames import collect_frame, observed_values
from forecaster.data.panel import Panel
from forecaster.data.panel_values import panel_observed_values
from forecaster.data.suspicious import EVERY_TARGET, EVERY_VALUE, warn_missing_ends

__all__ = ["observed_rows", "warn_made_up_origins"]


def observed_rows(
    panel: Panel, frame: Any, rows: np.ndarray, columns: Sequence[str] | None = None
) -> np.ndarray:
    """The values of ``columns`` (the targets when None) at the global ``rows`` of ``panel``
    (the validated panel of ``frame``) as ``frame`` holds them: ``(len(rows), len(columns))``
    float64, NaN where ``frame`` holds no value (a null or NaN, or no row: a value the
    ``missing`` policy made up). One join of the rows' keys on ``frame``'s rows within their
    span of time (:func:`~forecaster.data.frames.observed_values`); when ``rows`` are as many
    as the panel's rows or more, the values at every row of the panel instead
    (:func:`~forecaster.data.panel_values.panel_observed_values`, index arithmetic on a grid of
    fixed steps), gathered at ``rows`` (the same values).

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [0, 1, 3], "y": [1.0, 2.0, 4.0], "f": [0.5, None, 0.7]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="ffill", freq=1,
    ...                          future_covariates="f")
    >>> observed_rows(panel, frame, np.array([1, 2]), ["f"]).ravel().tolist()
    [nan, nan]
    """
    columns = list(panel.targets if columns is None else columns)
    if len(rows) >= len(panel.time):  # many rows: every panel row once
        return np.asarray(panel_observed_values(panel, frame, columns)[rows])
    times = panel.time.gather(rows)
    keys = pl.DataFrame([times])
    if panel.id_col is not None:
        ids = panel.keys[panel.id_name].gather(panel.series_of_rows()[rows])
        keys = keys.insert_column(0, ids.alias(panel.id_col))
    data = collect_frame(frame, columns=[*keys.columns, *columns])
    if len(times):  # the rows within their span only: a cheaper join
        span = pl.lit(times.min(), times.dtype), pl.lit(times.max(), times.dtype)
        data = data.filter(pl.col(panel.time_col).cast(times.dtype).is_between(*span))
    return np.asarray(observed_values(keys, data, columns))


def warn_made_up_origins(
    panel: Panel,
    frame: Any,
    series: np.ndarray,
    rows: np.ndarray,
    missing: str,
    at: str = "origins",
) -> None:
    """Warn about the forecast origins at the global ``rows`` of ``panel`` (the validated
    panel of ``frame``; ``series``: each origin's series) whose row lacks target (or past
    covariate) values ``frame`` holds: ``missing`` made them up, and the forecasts start
    after them. Each origin is the end of its series' history as of its cutoff, named by the
    warning of a frame that ends so (:func:`~forecaster.data.suspicious.warn_missing_ends`),
    as origins: the values missing there and the last time each was observed; ``at``:
    ``"origins"``, the cutoffs of ``predict``, or ``"backtest"``, the folds' origins a
    backtest chose."""
    if missing == "error" or not len(rows):
        return
    targets = list(panel.targets)
    covariates = [*panel.covariates, *panel.future_covariates]  # both read up to the origin
    names = [*targets, *covariates]
    lacking = np.isnan(observed_rows(panel, frame, rows, names)).any(axis=1)
    if not lacking.any():
        return
    series, rows = series[lacking], rows[lacking]
    observed = ~np.isnan(panel_observed_values(panel, frame, names))
    index = np.arange(len(observed))[:, None]
    last = np.maximum.accumulate(np.where(observed, index, -1), axis=0)[rows]
    every = [observed[:, : len(targets)].all(axis=1), observed.all(axis=1)]
    every = [np.maximum.accumulate(np.where(e, index[:, 0], -1))[rows] for e in every]
    last = np.column_stack([last, *every])  # and the last time every target (value) is observed
    seen = last >= panel.offsets[series][:, None]  # observed in the origin's own series
    columns = [panel.keys[panel.id_name].gather(series), panel.time.gather(rows)]
    for j, name in enumerate([*names, EVERY_TARGET, EVERY_VALUE]):  # last time observed, or null
        times = panel.time.gather(np.where(seen[:, j], last[:, j], 0)).alias(name)
        columns.append(times.scatter(np.flatnonzero(~seen[:, j]), None))
    ends = pl.DataFrame(columns)
    names_of = (targets, panel.id_name, panel.time_col)
    warn_missing_ends(ends, *names_of, missing, at=at, covariates=covariates)

"""The forecast plot of a fit (``forecast.png``): a few series' history tail, held-out actual
values and the model's forecast of them, for every target."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecaster._polars import collect
from forecaster.evaluation.plots import plot_forecast
from forecaster.exceptions import DataValidationError, ForecasterWarning, NotFittedError, silenced
from forecaster.tracking.fingerprint import target_names, training_data

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["forecast_plot"]


_PLOT_SERIES = 4


def forecast_plot(
    estimator: Any,
    frame: Any,
    *,
    n_series: int = _PLOT_SERIES,
    level: Sequence[float] | None = None,
) -> Figure:
    """A figure of a few series: history tail, the last ``horizon`` actual values held out,
    and the model's forecast of them (from the rows before), drawn by
    :func:`forecaster.evaluation.plots.plot_forecast` for every target (one row per series,
    one column per target, as a pipeline's ``forecast.png``); with ``level``, the forecast's
    intervals (``predict(..., level=level)``) as shaded bands.

    Parameters
    ----------
    estimator : RNNForecaster
        Fitted.
    frame : polars.DataFrame or polars.LazyFrame
        Frame with the training columns (typically the training frame).
    n_series : int, default 4
        Series shown (the first ones of the fitted keys).
    level : list of float, optional
        Interval levels to forecast and shade, e.g. ``[80, 95]`` (the model must be able to
        give them: calibrated, or a quantile model).

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (no global backend change); save it with ``fig.savefig``.

    Raises
    ------
    NotFittedError
        When ``estimator`` is not fitted.
    DataValidationError
        For an RNNRegressor (it has no series to draw), a ``frame`` without the training
        columns and dtypes (or not a polars frame), or ``n_series`` that is not an integer
        >= 1.
    """
    _check_plot_args(estimator, frame, n_series)
    horizon, lookback = int(estimator.horizon), estimator.lookback_
    id_col, time_col = estimator.id_col, estimator.time_col
    data = frame.lazy()
    if id_col is not None:
        ids = estimator.keys_[id_col].head(n_series).implode()
        data = data.filter(pl.col(id_col).is_in(ids))
    data = collect(data).sort([c for c in (id_col, time_col) if c])
    from_end = pl.col(time_col).rank("ordinal", descending=True)
    if id_col is not None:
        from_end = from_end.over(id_col)
    data = data.with_columns(from_end.alias("_from_end"))
    history = data.filter(pl.col("_from_end") > horizon).drop("_from_end")
    actual = data.filter(pl.col("_from_end") <= horizon).drop("_from_end")
    with silenced(ForecasterWarning):
        future = actual if estimator.future_covariates else None
        if level is None:
            forecast = estimator.predict(history, future=future)
        else:
            forecast = estimator.predict(history, future=future, level=level)
    series = forecast[id_col].unique(maintain_order=True).to_list() if id_col else None
    return plot_forecast(
        history,
        forecast,
        target=target_names(estimator),
        id_col=id_col,
        time_col=time_col,
        series=series,
        actual=actual,
        tail=max(lookback, 3 * horizon),
    )


def _check_plot_args(estimator: Any, frame: Any, n_series: Any) -> None:
    if not hasattr(estimator, "network_"):
        raise NotFittedError(
            f"forecast_plot needs a fitted forecaster; this {type(estimator).__name__} is not "
            "fitted (fit it first)."
        )
    if not hasattr(estimator, "schema_"):
        raise DataValidationError(
            f"forecast_plot draws the series of a forecaster; a {type(estimator).__name__} "
            "predicts windows and has no series to draw."
        )
    if isinstance(n_series, bool | np.bool_) or not isinstance(n_series, numbers.Integral):
        raise DataValidationError(
            f"n_series must be an integer >= 1 (the number of series drawn), got "
            f"{n_series!r}. To draw every series pass n_series=len(estimator.keys_)."
        )
    if n_series < 1:
        raise DataValidationError(f"n_series must be an integer >= 1, got {n_series!r}.")
    training_data(estimator, frame, "forecast_plot")

"""Metrics, baselines and rolling-origin backtests."""

from __future__ import annotations

from forecaster.evaluation.backtest import (
    WINDOWS,
    BacktestResult,
    backtest,
)
from forecaster.evaluation.metrics import (
    METRICS,
    aggregate,
    coverage,
    evaluate,
    interval_width,
    mae,
    mape,
    mase,
    mase_scale,
    mse,
    msis,
    naive,
    naive2,
    owa,
    owa_score,
    pinball_loss,
    rmse,
    scaled_crps,
    seasonal_naive,
    seasonality_test,
    smape,
    winkler_score,
)
from forecaster.evaluation.plots import plot_backtest, plot_forecast

__all__ = [
    "METRICS",
    "WINDOWS",
    "BacktestResult",
    "aggregate",
    "backtest",
    "coverage",
    "evaluate",
    "interval_width",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "mse",
    "msis",
    "naive",
    "naive2",
    "owa",
    "owa_score",
    "pinball_loss",
    "plot_backtest",
    "plot_forecast",
    "rmse",
    "scaled_crps",
    "seasonal_naive",
    "seasonality_test",
    "smape",
    "winkler_score",
]

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
    evaluate,
    mae,
    mape,
    mase,
    mase_scale,
    mse,
    naive,
    naive2,
    owa,
    owa_score,
    rmse,
    seasonal_naive,
    seasonality_test,
    smape,
)

__all__ = [
    "METRICS",
    "WINDOWS",
    "BacktestResult",
    "aggregate",
    "backtest",
    "evaluate",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "mse",
    "naive",
    "naive2",
    "owa",
    "owa_score",
    "rmse",
    "seasonal_naive",
    "seasonality_test",
    "smape",
]

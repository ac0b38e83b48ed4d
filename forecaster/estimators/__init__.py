"""The scikit-learn estimators: RNNForecaster (and its cell aliases), RNNRegressor and
TemporalSplit."""

from __future__ import annotations

from forecaster.estimators.core import (
    GRUForecaster,
    LSTMForecaster,
    RNNForecaster,
    RNNRegressor,
    SimpleRNNForecaster,
    TemporalSplit,
)

__all__ = [
    "GRUForecaster",
    "LSTMForecaster",
    "RNNForecaster",
    "RNNRegressor",
    "SimpleRNNForecaster",
    "TemporalSplit",
]

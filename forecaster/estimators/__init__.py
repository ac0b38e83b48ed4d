"""The scikit-learn estimators: RNNForecaster (and its cell aliases), RNNRegressor and
TemporalSplit.

Modules, in import order: ``sampling`` (how a fit samples its data), ``base`` (what both
estimators share: parameter checks, fitted-state checks, the fit lock, the fit's callbacks,
training), ``origins`` and ``inference`` (the one predict path), ``streaming`` (``stream`` /
``update``, :class:`ForecastStream`), ``scoring``, ``forecaster``, ``regressor``, ``split``.
"""

from __future__ import annotations

from forecaster.estimators.forecaster import (
    GRUForecaster,
    LSTMForecaster,
    RNNForecaster,
    SimpleRNNForecaster,
)
from forecaster.estimators.regressor import RNNRegressor
from forecaster.estimators.split import TemporalSplit
from forecaster.estimators.streaming import ForecastStream

__all__ = [
    "ForecastStream",
    "GRUForecaster",
    "LSTMForecaster",
    "RNNForecaster",
    "RNNRegressor",
    "SimpleRNNForecaster",
    "TemporalSplit",
]

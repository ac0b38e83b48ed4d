"""forecaster: recurrent neural network forecasting on Polars panels.

Frames are validated and packed into a :class:`Panel` (one float32 array of all series), windows
are indexed in Polars and gathered by index on the device, and recurrent networks (RNN / LSTM /
GRU with direct, encoder-decoder, recursive and segment heads) are trained by one plain loop
behind scikit-learn estimators.

Examples
--------
>>> import forecaster
>>> prices = forecaster.datasets.load_stocks(["MSFT"]).tail(400)
>>> model = forecaster.LSTMForecaster(target="close", id_col="ticker", time_col="date",
...     freq="1bd", missing="ffill", lookback=48, horizon=5, hidden_size=16, max_epochs=1,
...     random_state=0, progress=False)
>>> model.fit(prices).predict(prices).columns
['ticker', 'date', 'close']
"""

from __future__ import annotations

from forecaster import datasets
from forecaster._version import __version__
from forecaster.data import MISSING_POLICIES, Frequency, Panel, infer_frequency, validate_frame
from forecaster.data.scaling import SCALING_METHODS, PanelScaler
from forecaster.data.windows import Batch, Windows, make_windows
from forecaster.estimators import (
    GRUForecaster,
    LSTMForecaster,
    RNNForecaster,
    RNNRegressor,
    SimpleRNNForecaster,
    TemporalSplit,
)
from forecaster.evaluation.backtest import BacktestResult, backtest
from forecaster.evaluation.plots import plot_backtest, plot_forecast
from forecaster.exceptions import (
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    NotFittedError,
    OwnershipError,
)
from forecaster.nn import RecurrentNet
from forecaster.persistence import ModelFormatError, load, save
from forecaster.training.loop import TrainingDivergedError
from forecaster.tuning import TuneResult, tune

__all__ = [
    "MISSING_POLICIES",
    "SCALING_METHODS",
    "BacktestResult",
    "Batch",
    "ConcurrentRunError",
    "DataValidationError",
    "ForecasterError",
    "ForecasterWarning",
    "Frequency",
    "GRUForecaster",
    "LSTMForecaster",
    "ModelFormatError",
    "NotFittedError",
    "OwnershipError",
    "Panel",
    "PanelScaler",
    "RNNForecaster",
    "RNNRegressor",
    "RecurrentNet",
    "SimpleRNNForecaster",
    "TemporalSplit",
    "TrainingDivergedError",
    "TuneResult",
    "Windows",
    "__version__",
    "backtest",
    "datasets",
    "infer_frequency",
    "load",
    "make_windows",
    "plot_backtest",
    "plot_forecast",
    "save",
    "tune",
    "validate_frame",
]

"""forecaster: recurrent neural network forecasting on Polars panels.

Frames are validated and packed into a :class:`Panel` (one float32 array of all series), windows
are indexed in Polars and gathered by index on the device, and recurrent networks (RNN / LSTM /
GRU with direct, encoder-decoder, recursive and segment heads) are trained by one plain loop
behind scikit-learn estimators.

The public names below are imported when first used (``forecaster.LSTMForecaster``, ``from
forecaster import LSTMForecaster``), so ``import forecaster`` itself loads neither PyTorch, Polars
nor scikit-learn; subpackages (``forecaster.tracking``) are imported when first read, too.

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

import logging

from forecaster._lazy import lazy_attributes
from forecaster._version import __version__

# Where each public name lives: imported when first used (PEP 562), so that ``import
# forecaster`` loads neither PyTorch nor scikit-learn (``forecaster --help`` imports this package
# first); see :mod:`forecaster._lazy`.
_ORIGINS = {
    "MISSING_POLICIES": "forecaster.data",
    "SCALING_METHODS": "forecaster.data.scaling",
    "BacktestResult": "forecaster.evaluation.backtest",
    "Batch": "forecaster.data.windows",
    "ConcurrentRunError": "forecaster.exceptions",
    "DataValidationError": "forecaster.exceptions",
    "ForecasterError": "forecaster.exceptions",
    "ForecasterWarning": "forecaster.exceptions",
    "BaselineWarning": "forecaster.exceptions",
    "Frequency": "forecaster.data",
    "GRUForecaster": "forecaster.estimators",
    "LSTMForecaster": "forecaster.estimators",
    "ModelFormatError": "forecaster.persistence",
    "NotFittedError": "forecaster.exceptions",
    "OwnershipError": "forecaster.exceptions",
    "Panel": "forecaster.data",
    "PanelScaler": "forecaster.data.scaling",
    "RNNForecaster": "forecaster.estimators",
    "RNNRegressor": "forecaster.estimators",
    "RecurrentNet": "forecaster.nn",
    "SimpleRNNForecaster": "forecaster.estimators",
    "TemporalSplit": "forecaster.estimators",
    "TrainingDivergedError": "forecaster.training.loop",
    "TuneResult": "forecaster.tuning",
    "Windows": "forecaster.data.windows",
    "backtest": "forecaster.evaluation.backtest",
    "datasets": "forecaster.datasets",
    "infer_frequency": "forecaster.data",
    "load": "forecaster.persistence",
    "make_windows": "forecaster.data.windows",
    "plot_backtest": "forecaster.evaluation.plots",
    "plot_forecast": "forecaster.evaluation.plots",
    "save": "forecaster.persistence",
    "tune": "forecaster.tuning",
    "validate_frame": "forecaster.data",
}

__all__ = [
    "MISSING_POLICIES",
    "SCALING_METHODS",
    "BacktestResult",
    "BaselineWarning",
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

__getattr__, __dir__ = lazy_attributes(__name__, _ORIGINS, __all__)

# Diagnostics go to the logger "forecaster" and its children (one per module); the library
# configures no output of its own (the ``forecaster`` command does: forecaster.jobs.cli).
logging.getLogger(__name__).addHandler(logging.NullHandler())

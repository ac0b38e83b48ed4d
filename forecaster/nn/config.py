"""The vocabulary of a :class:`~forecaster.nn.recurrent.RecurrentNet` configuration: the
accepted cells, heads, normalizations and nonlinearities, and the default of every argument.

This module imports nothing else from :mod:`forecaster.nn`, so the configuration checks
(:mod:`forecaster.nn.checks`) and the network itself can both use it.
"""

from __future__ import annotations

__all__ = ["CELLS", "DEFAULTS", "HEADS", "NONLINEARITIES", "NORMALIZATIONS", "REQUIRED"]

from typing import Any

from forecaster._validation import CELLS as _CELLS
from forecaster._validation import HEADS as _HEADS
from forecaster._validation import NONLINEARITIES as _NONLINEARITIES
from forecaster._validation import NORMALIZATIONS as _NORMALIZATIONS

CELLS: tuple[str, ...] = _CELLS
"""Recurrent cell types accepted by :class:`RecurrentNet`."""

HEADS: tuple[str, ...] = _HEADS
"""Forecast heads (design patterns) accepted by :class:`RecurrentNet`."""

NORMALIZATIONS: tuple[str, ...] = _NORMALIZATIONS
"""Per-window input normalizations accepted by :class:`RecurrentNet`."""

NONLINEARITIES: tuple[str, ...] = _NONLINEARITIES
"""Nonlinearities of the vanilla ``rnn`` cell."""

REQUIRED: tuple[str, ...] = ("n_features", "n_targets", "lookback", "horizon")
"""The :class:`RecurrentNet` arguments without a default."""

DEFAULTS: dict[str, Any] = {
    "n_future": 0,
    "cell": "gru",
    "hidden_size": 128,
    "num_layers": 1,
    "dropout": 0.0,
    "head": "segment",
    "nonlinearity": "tanh",
    "segment_length": 24,
    "normalization": "last",
    "channel_independent": False,
    "quantiles": None,
    "past_covariates": True,
    "static_cardinalities": None,
    "n_static_numeric": 0,
    "linear_skip": False,
}
"""The default of every other :class:`RecurrentNet` argument (its signature shows the same
values; a test keeps them equal)."""

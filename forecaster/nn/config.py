"""The vocabulary of a :class:`~forecaster.nn.recurrent.RecurrentNet` configuration: the
accepted cells, heads, normalizations and nonlinearities, and the default of every argument.

This module imports nothing else from :mod:`forecaster.nn`, so the configuration checks
(:mod:`forecaster.nn.checks`) and the network itself can both use it.
"""

from __future__ import annotations

__all__ = [
    "CELLS",
    "DEFAULTS",
    "HEADS",
    "MAX_AUTO_SEGMENTS",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "REQUIRED",
    "auto_segment_length",
]

import math
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


MAX_AUTO_SEGMENTS = 16
"""``segment_length="auto"`` keeps the segment head's encoder at most this many steps long."""


def auto_segment_length(lookback: int) -> int:
    """The segment length ``segment_length="auto"`` chooses for a ``lookback``-step window:
    24 steps, doubled until the window has at most :data:`MAX_AUTO_SEGMENTS` segments, so
    that the encoder runs at most 16 recurrent steps (an hourly 336-step window: 14 segments of
    24; a 720-step window: 15 of 48, SegRNN's ETTm1 setting). On ETTm1-M (lookback 720) 48-step
    segments were both more accurate on validation and test and about 1.7x faster to train
    than 24 (``benchmarks/results/accuracy_variants.md``).

    Examples
    --------
    >>> [auto_segment_length(n) for n in (56, 336, 384, 385, 720, 1000)]
    [24, 24, 24, 48, 48, 96]
    """
    segments = math.ceil(max(int(lookback), 1) / (24 * MAX_AUTO_SEGMENTS))
    return 24 * 2 ** max(segments - 1, 0).bit_length()

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
    "static_at_horizon": False,
    "future_at_step": True,
}
"""The default of every other :class:`RecurrentNet` argument (its signature shows the same
values; a test keeps them equal)."""


MAX_AUTO_SEGMENTS = 16
"""``segment_length="auto"``'s rule outside whole days: 24 steps, doubled until the window has
at most this many segments (one-day segments may be more: hourly data at 720 steps has 30)."""


def auto_segment_length(lookback: int, day: int = 1) -> int:
    """The segment length ``segment_length="auto"`` chooses for a ``lookback``-step window of
    data with ``day`` steps a day (1 for daily and coarser steps, and where no day is known):
    one day of steps when a day has at least 24 steps and the window holds 4 to 32 days
    (hourly 96-768 steps: 24; 15-minute steps at lookback 720: 96); otherwise 24 steps,
    doubled until the window has at most :data:`MAX_AUTO_SEGMENTS` segments (a 336-step
    window: 14 segments of 24; 720 steps: 15 of 48, SegRNN's ETTm1 setting).

    A segment of one day gives each encoder step a whole daily cycle (when the window is not a
    whole number of days, the first segment is left-padded with the window's first value: 48
    steps at 720 / 96). On ETTm1-M (15-minute
    steps, lookback 720) 96-step segments were more accurate on validation and test at every
    horizon than 48 (and 48 than 24), and 144 less; on hourly ETTh1-M at lookback 720, 24 and
    48 tied and 96 was worse (``benchmarks/results/accuracy_variants.md``). Fewer, longer
    segments also train faster: the encoder runs one step per segment.

    Examples
    --------
    >>> [auto_segment_length(n) for n in (56, 336, 384, 385, 720, 1000)]
    [24, 24, 24, 48, 48, 96]
    >>> [auto_segment_length(720, day) for day in (24, 48, 96, 144, 288)]
    [24, 48, 96, 144, 48]
    """
    lookback = max(int(lookback), 1)
    if day >= 24 and 4 * day <= lookback <= 32 * day:
        return int(day)
    segments = math.ceil(lookback / (24 * MAX_AUTO_SEGMENTS))
    return 24 * 2 ** max(segments - 1, 0).bit_length()

"""Quantile outputs of a :class:`~forecaster.nn.recurrent.RecurrentNet` and the pinball loss.

A network built with ``quantiles=(q_1, ..., q_Q)`` (sorted, 0.5 among them) emits one value
per quantile: its head's forecast is the median, and every other quantile is the median plus
(above it) or minus (below it) a cumulative sum of positive gaps,

    gap_{h, c, k} = softplus(g a_{h, c, k}) + softplus(g b_{h, c, k}) * spread_c,

learned per horizon step ``h``, target channel ``c`` and pair of neighbouring quantiles
``k``, where ``spread_c`` is the mean absolute first difference of the target channel over the
input window (on the scaled data the network sees), so the bands widen with the window's
volatility. The quantiles are increasing by construction (they never cross), whatever the
weights; :func:`quantile_output` sorts them as well, which also keeps averaged ensembles
ordered. The gain ``g`` (:data:`GAIN`) lets the widths move ``g`` times faster under Adam,
whose steps do not depend on the scale of the gradient: with the learning rate of the other
weights, the bands would take thousands of steps to reach the spread of the residuals.
"""

from __future__ import annotations

__all__ = [
    "GAIN",
    "initial_gaps",
    "median_index",
    "pinball_loss",
    "quantile_output",
    "window_spread",
]

import itertools
from collections.abc import Sequence
from statistics import NormalDist

import torch
import torch.nn.functional as F
from torch import Tensor

from forecaster.exceptions import DataValidationError

GAIN = 10.0
"""The gain of the raw gap parameters (see the module docstring)."""


def median_index(quantiles: Sequence[float]) -> int:
    """The position of 0.5 among the sorted ``quantiles`` (refused when it is absent: the
    point forecast of a quantile model is its median)."""
    qs = [float(q) for q in quantiles]
    if 0.5 not in qs:
        raise DataValidationError(
            f"quantiles must include 0.5 (the median is the point forecast), got {qs}. Add "
            "it, e.g. quantiles=[0.1, 0.5, 0.9]."
        )
    return qs.index(0.5)


def _normal_quantile(q: float) -> float:
    return NormalDist().inv_cdf(q)


def initial_gaps(quantiles: Sequence[float], horizon: int, n_targets: int) -> Tensor:
    """The initial raw gap parameters ``(2, horizon, n_targets, Q - 1)``: softplus of them is
    half the gaps between the standard normal's quantiles (constant and spread terms)."""
    z = [_normal_quantile(float(q)) for q in quantiles]
    gaps = torch.tensor([b - a for a, b in itertools.pairwise(z)]) / 2.0
    raw = (torch.log(torch.expm1(gaps.clamp_min(1e-4))) / GAIN).float()
    return raw.expand(2, horizon, n_targets, len(gaps)).clone()


def window_spread(x: Tensor, n_targets: int) -> Tensor:
    """``(batch, n_targets)``: the mean absolute first difference of each target channel over
    the window (zeros for a window of one step)."""
    targets = x[..., :n_targets]
    if targets.shape[1] < 2:
        return torch.zeros(targets.shape[0], n_targets, dtype=x.dtype, device=x.device)
    return targets.diff(dim=1).abs().mean(dim=1)


def quantile_output(median: Tensor, spread: Tensor, raw_gaps: Tensor, middle: int) -> Tensor:
    """The quantiles ``(batch, horizon, n_targets, Q)`` from the median ``(batch, horizon,
    n_targets)``, the windows' spread ``(batch, n_targets)`` and the raw gaps
    ``(2, horizon, n_targets, Q - 1)`` (``middle``: the median's position)."""
    gaps = (
        F.softplus(GAIN * raw_gaps[0]) + F.softplus(GAIN * raw_gaps[1]) * spread[:, None, :, None]
    )
    upper = gaps[..., middle:].cumsum(dim=-1)
    lower = -gaps[..., :middle].flip(-1).cumsum(dim=-1).flip(-1)
    zero = gaps.new_zeros((*gaps.shape[:-1], 1))  # the median's own column (Q - 1 may be 0)
    out = torch.cat([lower, zero, upper], dim=-1)
    return (median[..., None] + out.to(median.dtype)).sort(dim=-1).values


def pinball_loss(prediction: Tensor, target: Tensor, quantiles: Sequence[float]) -> Tensor:
    """The pinball (quantile) loss averaged over the quantiles and every value:
    ``prediction`` ``(..., Q)``, ``target`` of the leading shape.

    Examples
    --------
    >>> import torch
    >>> loss = pinball_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([2.0]), [0.1, 0.9])
    >>> round(loss.item(), 6)  # (0.1 * 2 + 0.9 * 1) / 2
    0.55
    """
    q = torch.as_tensor(list(quantiles), dtype=prediction.dtype, device=prediction.device)
    error = target[..., None] - prediction
    return torch.maximum(q * error, (q - 1) * error).mean()

"""Per-window input normalization (``"none"``, ``"last"``, ``"revin"``) of a
:class:`~forecaster.nn.recurrent.RecurrentNet`."""

from __future__ import annotations

__all__ = ["WindowNorm"]

import torch
from torch import Tensor, nn

_REVIN_EPS = 1e-5


class WindowNorm(nn.Module):
    """Per-window normalization of the first ``n_channels`` channels.

    ``stats`` computes the per-window location/scale from the lookback; ``transform`` and
    ``inverse`` apply them to any tensor whose channels are the first ``k <= n_channels``
    channels (targets come first, so a forecast of the targets uses the first statistics).
    """

    def __init__(self, mode: str, n_channels: int) -> None:
        super().__init__()
        self.mode = mode
        self.n_channels = n_channels
        if mode == "revin":
            self.affine_weight = nn.Parameter(torch.ones(n_channels))
            self.affine_bias = nn.Parameter(torch.zeros(n_channels))

    def stats(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """Location and scale of each window, shapes ``(batch, 1, n_channels)``."""
        if self.mode == "none":
            return None
        x = x[..., : self.n_channels].detach()
        if self.mode == "last":
            return x[:, -1:, :], torch.ones_like(x[:, -1:, :])
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _REVIN_EPS)
        return mean, std

    def transform(self, x: Tensor, stats: tuple[Tensor, Tensor] | None) -> Tensor:
        if stats is None:
            return x
        k = x.shape[-1]
        loc, scale = stats[0][..., :k], stats[1][..., :k]
        if self.mode == "last":
            return x - loc
        x = (x - loc) / scale
        return x * self.affine_weight[:k] + self.affine_bias[:k]

    def inverse(self, y: Tensor, stats: tuple[Tensor, Tensor] | None) -> Tensor:
        if stats is None:
            return y
        k = y.shape[-1]
        loc, scale = stats[0][..., :k], stats[1][..., :k]
        if self.mode == "last":
            return y + loc
        y = (y - self.affine_bias[:k]) / (self.affine_weight[:k] + _REVIN_EPS * _REVIN_EPS)
        return y * scale + loc

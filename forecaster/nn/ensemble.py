"""Ensembles of :class:`~forecaster.nn.recurrent.RecurrentNet` and building a network (or an
ensemble) from its configuration."""

from __future__ import annotations

__all__ = ["EnsembleNet", "network_from_config"]

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from forecaster._validation import check, describe_value
from forecaster.exceptions import DataValidationError
from forecaster.nn.checks import check_network_config
from forecaster.nn.recurrent import RecurrentNet


class EnsembleNet(nn.Module):
    """The mean forecast of several :class:`RecurrentNet` of the same configuration.

    Members are trained independently (different seeds for initialisation, batch order and
    dropout; see ``RNNForecaster(n_ensemble=...)``); averaging them lowers the variance of the
    forecast, which helps most on small data. Attributes that are not modules (``lookback``,
    ``horizon``, ``head``, ...) are read from the first member.

    Examples
    --------
    >>> import torch
    >>> members = [RecurrentNet(n_features=1, n_targets=1, lookback=24, horizon=6,
    ...                         hidden_size=8) for _ in range(3)]
    >>> net = EnsembleNet(members)
    >>> x = torch.randn(2, 24, 1)
    >>> torch.allclose(net(x), torch.stack([m(x) for m in members]).mean(0))
    True
    >>> net.get_config()["n_members"], net.horizon
    (3, 6)
    """

    def __init__(self, members: Sequence[RecurrentNet]) -> None:
        super().__init__()
        if len(members) < 2:
            raise DataValidationError(
                f"An ensemble needs at least 2 members; received {len(members)}."
            )
        configs = [m.get_config() for m in members]
        if any(c != configs[0] for c in configs[1:]):
            raise DataValidationError("Every member of an ensemble must have the same config.")
        self.members = nn.ModuleList(members)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "members" or name.startswith("__"):
                raise
            return getattr(self._modules["members"][0], name)

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        """Mean of the members' forecasts, shape ``(batch, horizon, n_targets)``; for members
        with quantiles, the mean of each quantile across members (Vincentisation), sorted,
        shape ``(batch, horizon, n_targets, Q)``."""
        mean = torch.stack([member(x, future) for member in self.members]).mean(dim=0)
        return mean.sort(dim=-1).values if mean.ndim == 4 else mean

    def get_config(self) -> dict[str, Any]:
        """The members' configuration plus ``n_members`` (see :func:`network_from_config`)."""
        return {**self.members[0].get_config(), "n_members": len(self.members)}


def network_from_config(config: dict[str, Any]) -> RecurrentNet | EnsembleNet:
    """Build a :class:`RecurrentNet` or, with ``n_members > 1``, an :class:`EnsembleNet` from a
    ``get_config()`` dictionary (weights freshly initialised).

    The configuration is checked first (:func:`check_network_config`), so a configuration whose
    parameters would not fit in this machine's memory (e.g. an edited ``hidden_size``) is
    refused before anything is allocated.

    Examples
    --------
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=24, horizon=6, hidden_size=8)
    >>> type(network_from_config(net.get_config())).__name__
    'RecurrentNet'
    """
    if not isinstance(config, Mapping):
        raise DataValidationError(
            f"A network configuration must be a dict of RecurrentNet arguments, got "
            f"{describe_value(config)}."
        )
    config = dict(config)
    n_members = check("n_members", config.pop("n_members", 1))
    check_network_config(config, n_members=n_members)
    if n_members == 1:
        return RecurrentNet.from_config(config)
    return EnsembleNet([RecurrentNet.from_config(config) for _ in range(n_members)])

"""The ``"direct"`` head (sequence-to-vector): the last layer's final hidden state, with the
flattened future covariates when there are any, goes through one linear layer to all
``horizon * n_targets`` outputs."""

from __future__ import annotations

__all__ = ["DirectHead"]

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from forecaster.nn.cells import cell_parameters, last_layer_hidden
from forecaster.nn.heads.base import ChannelwiseHead, MakeCell, normalize_input


class DirectHead(ChannelwiseHead):
    """Sequence-to-vector: one linear layer from the final state to every horizon step."""

    name = "direct"

    def build(self, net: Any, make_cell: MakeCell) -> None:
        net.rnn = make_cell(net.core_past + net.n_future)
        net.out = nn.Linear(
            net.hidden_size + net.horizon * net.n_future, net.horizon * net.core_targets
        )

    def parameter_count(self, c: Mapping[str, Any], core_targets: int, core_past: int) -> int:
        hidden, horizon = c["hidden_size"], c["horizon"]
        total = cell_parameters(c["cell"], core_past + c["n_future"], hidden, c["num_layers"])
        outputs = horizon * core_targets
        return total + (hidden + horizon * c["n_future"]) * outputs + outputs

    def forward_core(self, net: Any, x: Tensor, future: Tensor | None, state: Any = None) -> Tensor:
        xn, stats = normalize_input(net, x)
        batch = x.shape[0]
        _, state = net.rnn(xn, state)
        features = net.output_dropout(last_layer_hidden(state))
        if future is not None:
            features = torch.cat([features, future.reshape(batch, -1)], dim=-1)
        y = net.out(features).reshape(batch, net.horizon, net.core_targets)
        return net.norm.inverse(y, stats)

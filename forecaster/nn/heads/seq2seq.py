"""The ``"seq2seq"`` head (encoder-decoder): the encoder's final state initialises a decoder
of the same cell type, size and depth, run over the horizon in one fused call on the future
covariates (when any) beside a learned per-step positional embedding."""

from __future__ import annotations

__all__ = ["Seq2SeqHead"]

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from forecaster.nn.cells import cell_parameters
from forecaster.nn.heads.base import ChannelwiseHead, MakeCell, normalize_input
from forecaster.nn.statics import plus_static


class Seq2SeqHead(ChannelwiseHead):
    """Encoder-decoder: a decoder cell over the horizon, then a linear layer per step."""

    name = "seq2seq"
    decodes_horizon = True

    def build(self, net: Any, make_cell: MakeCell) -> None:
        net.rnn = make_cell(net.core_past + net.n_future)
        net.decoder = make_cell(net.n_future + net.hidden_size)
        net.position_embedding = nn.Parameter(torch.randn(net.horizon, net.hidden_size))
        net.out = nn.Linear(net.hidden_size, net.core_targets)

    def parameter_count(self, c: Mapping[str, Any], core_targets: int, core_past: int) -> int:
        cell, hidden, layers, n_future = c["cell"], c["hidden_size"], c["num_layers"], c["n_future"]
        total = cell_parameters(cell, core_past + n_future, hidden, layers)
        total += cell_parameters(cell, n_future + hidden, hidden, layers) + c["horizon"] * hidden
        return total + hidden * core_targets + core_targets

    def forward_core(self, net: Any, x: Tensor, future: Tensor | None, state: Any = None) -> Tensor:
        xn, stats = normalize_input(net, x)
        batch = x.shape[0]
        _, encoded = net.rnn(xn, state)
        if net.static_at_horizon and state is not None:
            encoded = plus_static(encoded, state)
        positions = net.position_embedding.expand(batch, -1, -1)
        dec_in = positions if future is None else torch.cat([future, positions], dim=-1)
        dec_out, _ = net.decoder(dec_in, encoded)
        y = net.out(net.output_dropout(dec_out))
        return net.norm.inverse(y, stats)

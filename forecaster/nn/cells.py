"""The recurrent cells (fused PyTorch ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``) and helpers on
their states, shared by the heads."""

from __future__ import annotations

__all__ = [
    "GATES",
    "RecurrentState",
    "cell_parameters",
    "last_layer_hidden",
    "make_cell",
    "repeat_state",
]

from typing import Any

from torch import Tensor, nn

RecurrentState = Tensor | tuple[Tensor, Tensor]
"""A cell's state: ``h`` (RNN, GRU) or ``(h, c)`` (LSTM), each ``(layers, batch, hidden)``."""


GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gates per cell type (the blocks of its weight matrices)."""


def cell_parameters(cell: str, input_size: int, hidden: int, layers: int) -> int:
    """Number of parameters of :func:`make_cell`'s cell, computed without building it."""
    gates = GATES[cell]
    first = gates * hidden * (input_size + hidden + 2)
    return first + (layers - 1) * gates * hidden * (2 * hidden + 2)


def make_cell(
    cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float, nonlinearity: str
) -> nn.RNNBase:
    """Build a fused, batch-first ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``."""
    inter_layer_dropout = dropout if num_layers > 1 else 0.0
    kwargs: dict[str, Any] = {
        "input_size": input_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "dropout": inter_layer_dropout,
        "batch_first": True,
    }
    if cell == "rnn":
        return nn.RNN(nonlinearity=nonlinearity, **kwargs)
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    return nn.GRU(**kwargs)


def last_layer_hidden(state: RecurrentState) -> Tensor:
    """Hidden state ``h`` of the last layer, shape ``(batch, hidden)``."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def repeat_state(state: RecurrentState, repeats: int) -> RecurrentState:
    """Repeat every batch row of a recurrent state ``repeats`` times (``repeat_interleave``)."""
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(repeats, dim=1) for s in state)  # type: ignore[return-value]
    return state.repeat_interleave(repeats, dim=1)

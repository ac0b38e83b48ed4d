"""The interface of a forecast head and the channel handling the heads share.

A head is a design pattern for producing the ``horizon`` steps of a
:class:`~forecaster.nn.recurrent.RecurrentNet`. It is a stateless object, not a module: it
builds its layers *on the network* (so the parameter names in the network's ``state_dict``,
the keys of a saved model's ``weights.safetensors``, stay ``rnn.*``, ``out.*``, ...), then
runs them in :meth:`Head.forward` and, when it trains differently from how it forecasts,
:meth:`Head.training_loss`. The network looks its head up by name in
:data:`forecaster.nn.heads.HEAD_TYPES` once, at construction.
"""

from __future__ import annotations

__all__ = [
    "ChannelwiseHead",
    "Head",
    "LossFn",
    "core_sizes",
    "merge_channels",
    "normalize_input",
    "split_channels",
]

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from forecaster.nn.statics import initial_state

LossFn = Callable[[Tensor, Tensor], Tensor]
MakeCell = Callable[[int], nn.RNNBase]
"""``make_cell(input_size)``: a cell of the network's type, size, depth and dropout."""


class Head:
    """How a :class:`~forecaster.nn.recurrent.RecurrentNet` produces the horizon.

    Every method takes the network as its first argument ``net``: its sizes (``n_targets``,
    ``core_targets``, ``core_past``, ``n_future``, ``lookback``, ``horizon``, ``hidden_size``,
    ...), its normalization ``net.norm`` and ``net.output_dropout`` are set before
    :meth:`build` is called.
    """

    name: ClassVar[str] = ""
    always_channel_independent: ClassVar[bool] = False
    """Whether the head models every target channel on its own whatever
    ``channel_independent`` says, and encodes the target channels only."""

    def parameter_count(self, c: Mapping[str, Any], core_targets: int, core_past: int) -> int:
        """Parameters of the layers :meth:`build` creates, from a checked configuration ``c``
        (with defaults) and the core sizes, without building them."""
        raise NotImplementedError

    def recurrent_floats(self, c: Mapping[str, Any], batch: int, per_step: int) -> int:
        """float32 values the recurrent runs of one training batch of ``batch`` windows keep
        for the backward pass (``per_step``: the values one cell step keeps per row)."""
        raise NotImplementedError

    def build(self, net: Any, make_cell: MakeCell) -> None:
        """Create the head's layers as attributes of ``net`` (in a fixed order: it fixes the
        random initialisation)."""
        raise NotImplementedError

    def copies_few_windows(self, net: Any, x: Tensor) -> bool:
        """Whether ``net`` runs a batch ``x`` of fewer than
        :data:`~forecaster.nn.unrolled.MIN_BATCH_ROWS` windows as copies of them (in
        :meth:`RecurrentNet.forward <forecaster.nn.recurrent.RecurrentNet.forward>`, before
        the statics are encoded), so that a window's forecast is the same bits in a batch of
        any size. False: the copies would multiply the forward's time (a fused cell over
        every step of the window: for one window of 96 steps at hidden size 128, 2 to 3 times
        with a GRU, 8 to 11 times with an LSTM)."""
        return False

    def forward(
        self, net: Any, x: Tensor, future: Tensor | None, static: Tensor | None = None
    ) -> Tensor:
        """The forecast ``(batch, horizon, n_targets)`` of checked inputs (``x`` without its
        static columns; ``static``: the encoder's initial state of each window's static
        covariates, ``(num_layers, batch, hidden_size)``, or None, see
        :func:`forecaster.nn.statics.initial_state`)."""
        raise NotImplementedError

    def training_loss(
        self,
        net: Any,
        x: Tensor,
        future: Tensor | None,
        y: Tensor,
        loss_fn: LossFn,
        static: Tensor | None = None,
    ) -> Tensor:
        """The scalar training loss of one batch of checked inputs: by default the loss of the
        forecast."""
        return loss_fn(net.forecast(x, future, static), y)


class ChannelwiseHead(Head):
    """A head run on the network's core sizes: under ``channel_independent`` each target
    channel becomes one row of the batch (:func:`split_channels`), and the forecasts are
    put back side by side (:func:`merge_channels`)."""

    decodes_horizon: ClassVar[bool] = False
    """Whether the cell also runs over the horizon (decoder or roll-out)."""

    def recurrent_floats(self, c: Mapping[str, Any], batch: int, per_step: int) -> int:
        rows = batch * (c["n_targets"] if c["channel_independent"] else 1)
        steps = c["lookback"] + (c["horizon"] if self.decodes_horizon else 0)
        core_features = core_sizes(c)[1] + c["n_future"]
        return rows * steps * (per_step + core_features)

    def forward(
        self, net: Any, x: Tensor, future: Tensor | None, static: Tensor | None = None
    ) -> Tensor:
        if net.core_targets != net.n_targets:  # channel independent
            x, future = split_channels(net, x, future)
            state = initial_state(net, static, net.n_targets)
            return merge_channels(net, self.forward_core(net, x, future, state))
        return self.forward_core(net, x, future, initial_state(net, static))

    def forward_core(self, net: Any, x: Tensor, future: Tensor | None, state: Any = None) -> Tensor:
        """The forecast ``(rows, horizon, core_targets)`` on the core sizes (``state``: the
        encoder's initial state of each row, None for zeros)."""
        raise NotImplementedError


def core_sizes(c: Mapping[str, Any]) -> tuple[int, int]:
    """``(core_targets, core_past)`` of a :class:`ChannelwiseHead` network's configuration:
    one target channel per batch row under channel independence."""
    n_past = c["n_features"] - c["n_future"]
    if c["channel_independent"]:
        return 1, n_past - c["n_targets"] + 1
    return c["n_targets"], n_past


def split_channels(net: Any, x: Tensor, future: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``(B, L, F)`` -> ``(B * C, L, 1 + F - C)``: row ``b * C + c`` holds target channel
    ``c`` of window ``b`` followed by all covariates of that window."""
    batch, length, _ = x.shape
    n_ch = net.n_targets
    targets = x[..., :n_ch].transpose(1, 2).reshape(batch * n_ch, length, 1)
    rest = x[..., n_ch:].repeat_interleave(n_ch, dim=0)
    future = None if future is None else future.repeat_interleave(n_ch, dim=0)
    return torch.cat([targets, rest], dim=-1), future


def merge_channels(net: Any, y: Tensor) -> Tensor:
    """``(B * C, H, 1)`` -> ``(B, H, C)``, the inverse of :func:`split_channels`."""
    return y.reshape(-1, net.n_targets, y.shape[1]).transpose(1, 2)


def normalize_input(net: Any, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """Normalize the past-observed channels of ``x``; future covariates stay as they are."""
    stats = net.norm.stats(x)
    n_past = net.core_past
    past = net.norm.transform(x[..., :n_past], stats)
    if net.n_future:
        past = torch.cat([past, x[..., n_past:]], dim=-1)
    return past, stats

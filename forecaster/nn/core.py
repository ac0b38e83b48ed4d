"""Recurrent networks for multi-step forecasting (pure PyTorch).

:class:`RecurrentNet` is the one network module behind every estimator. It combines

* a **cell**: PyTorch's fused ``nn.RNN`` (``tanh`` or ``relu``), ``nn.LSTM`` or ``nn.GRU``,
  ``batch_first``, stacked ``num_layers`` deep with dropout between layers;
* a per-window input **normalization**: ``"none"``, ``"last"`` (subtract the window's last
  value) or ``"revin"`` (reversible instance normalization with a learnable affine);
* a **head**, i.e. a design pattern for producing ``horizon`` steps:

  ``"direct"``
      sequence-to-vector: the last hidden state is mapped to all horizon steps at once.
  ``"seq2seq"``
      encoder-decoder: the encoder's final state initialises a decoder run over the horizon.
  ``"recursive"``
      sequence-to-sequence (many-to-many) one-step model, trained with teacher forcing and
      loss over every time step, rolled out autoregressively for the forecast.
  ``"segment"``
      SegRNN (Lin et al., 2023, arXiv:2308.11200): segment-wise, channel-independent encoding
      and parallel multi-step decoding.

Input layout
------------
``x`` has shape ``(batch, lookback, n_features)`` with the columns ordered as
``[targets (n_targets) | past covariates | future covariates (n_future)]``. The first
``n_targets`` columns are the series to forecast; the last ``n_future`` columns are covariates
whose values are also known over the horizon (their past values here). ``future`` has shape
``(batch, horizon, n_future)`` and holds those covariates over the horizon. The forecast has
shape ``(batch, horizon, n_targets)``.

The module has no dependency on the data layer: it only sees tensors.
"""

from __future__ import annotations

__all__ = [
    "CELLS",
    "HEADS",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "EnsembleNet",
    "MemoryEstimate",
    "OutOfMemoryError",
    "RecurrentNet",
    "check_memory",
    "check_network_config",
    "count_parameters",
    "estimate_memory",
    "memory_limit",
    "network_from_config",
    "out_of_memory",
    "parameter_count",
]

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecaster import _validation
from forecaster._validation import check, format_bytes
from forecaster.exceptions import DataValidationError, ForecasterError

CELLS: tuple[str, ...] = _validation.CELLS
"""Recurrent cell types accepted by :class:`RecurrentNet`."""

HEADS: tuple[str, ...] = _validation.HEADS
"""Forecast heads (design patterns) accepted by :class:`RecurrentNet`."""

NORMALIZATIONS: tuple[str, ...] = _validation.NORMALIZATIONS
"""Per-window input normalizations accepted by :class:`RecurrentNet`."""

NONLINEARITIES: tuple[str, ...] = _validation.NONLINEARITIES
"""Nonlinearities of the vanilla ``rnn`` cell."""

LossFn = Callable[[Tensor, Tensor], Tensor]
State = Tensor | tuple[Tensor, Tensor]

_REVIN_EPS = 1e-5


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Count the scalar parameters of a module.

    Parameters
    ----------
    module : torch.nn.Module
        Any module.
    trainable_only : bool, default=False
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        The total number of parameter elements.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _make_cell(
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


def _last_layer_hidden(state: State) -> Tensor:
    """Hidden state ``h`` of the last layer, shape ``(batch, hidden)``."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def _repeat_state(state: State, repeats: int) -> State:
    """Repeat every batch row of a recurrent state ``repeats`` times (``repeat_interleave``)."""
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(repeats, dim=1) for s in state)  # type: ignore[return-value]
    return state.repeat_interleave(repeats, dim=1)


# --------------------------------------------------------------------------------------------
# per-window normalization
# --------------------------------------------------------------------------------------------


class _WindowNorm(nn.Module):
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


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------


class RecurrentNet(nn.Module):
    """Recurrent forecasting network: RNN / LSTM / GRU cell with a multi-step head.

    Parameters
    ----------
    n_features : int
        Number of input columns of ``x``: targets, then past covariates, then the past values
        of the future-known covariates.
    n_targets : int
        Number of target series; they are the first ``n_targets`` columns of ``x``.
    n_future : int, default=0
        Number of future-known covariates; they are the last ``n_future`` columns of ``x`` and
        their horizon values are passed as ``future``.
    lookback : int
        Length of the input window.
    horizon : int
        Number of steps to forecast.
    cell : {"gru", "lstm", "rnn"}, default="gru"
        Recurrent cell (fused PyTorch ``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``).
    hidden_size : int, default=128
        Hidden state size of every layer.
    num_layers : int, default=1
        Number of stacked recurrent layers (a deep RNN when > 1).
    dropout : float, default=0.0
        Dropout probability in ``[0, 1)``, applied between stacked layers (when
        ``num_layers > 1``) and before the output layer.
    head : {"segment", "direct", "seq2seq", "recursive"}, default="segment"
        How the horizon is produced:

        * ``"direct"`` (sequence-to-vector): the last layer's final hidden state, concatenated
          with the flattened future covariates when there are any, goes through one linear layer
          to all ``horizon * n_targets`` outputs.
        * ``"seq2seq"`` (encoder-decoder): an encoder runs over the lookback; its final state
          initialises a decoder of the same cell type, size and depth that runs over the horizon
          in one fused call. The decoder's input at each step is the future covariates (when
          any) concatenated with a learned per-step positional embedding of size
          ``hidden_size``, so it also works without future covariates. A linear layer maps each
          decoder output to ``n_targets`` values.
        * ``"recursive"`` (sequence-to-sequence, many-to-many): a one-step model that predicts at
          every step the next value of every past-observed channel (targets and past
          covariates). See :meth:`training_loss` for the teacher-forced loss and :meth:`forward`
          for the autoregressive roll-out.
        * ``"segment"`` (SegRNN, arXiv:2308.11200): channel-independent; each target series is
          cut into segments of ``segment_length`` steps, each segment embedded by
          ``Linear(segment_length, hidden_size) + ReLU``, and the cell runs over the segments.
          Parallel multi-step decoding then feeds, for each of the
          ``ceil(horizon / segment_length)`` output segments, a positional embedding (a learned
          position embedding of size ``hidden_size // 2`` concatenated with a learned channel
          embedding of size ``hidden_size - hidden_size // 2``) as a length-1 input to the same
          cell, started from the encoder's final state, in one batched call; ``Dropout`` and
          ``Linear(hidden_size, segment_length)`` give each output segment. If ``lookback`` is
          not a multiple of ``segment_length``, the window is left-padded by repeating its first
          value. Past covariates are ignored by this head (under channel independence only the
          target channels are encoded). Future-known covariates (e.g. calendar features) are
          used by the decoder: each output segment's covariates, flattened, go through
          ``Linear(segment_length * n_future, hidden_size)`` and are added to that segment's
          positional embedding.
    nonlinearity : {"tanh", "relu"}, default="tanh"
        Nonlinearity of the vanilla ``rnn`` cell; other cells only accept ``"tanh"``.
    segment_length : int, default=24
        Segment length of the ``"segment"`` head (unused by other heads).
    channel_independent : bool, default=False
        For the ``"direct"``, ``"seq2seq"`` and ``"recursive"`` heads: model every target
        channel as its own univariate series with shared weights (the PatchTST / SegRNN
        recipe for multivariate data). Each channel's input is its own values plus all past
        and future covariates; the channels are stacked along the batch axis, so one network
        call forecasts all of them. The ``"segment"`` head is always channel independent.
    normalization : {"last", "none", "revin"}, default="last"
        Per-window normalization of the past-observed channels (future covariates are never
        normalized):

        * ``"last"`` subtracts each window's last observed value per channel and adds the
          targets' last values back to the forecast;
        * ``"revin"`` subtracts the window mean, divides by the window standard deviation
          ``sqrt(var + 1e-5)``, applies a learnable per-channel affine, and inverts all of it on
          the forecast (RevIN, Kim et al., 2022);
        * ``"none"`` leaves the input as it is.

    Attributes
    ----------
    rnn : torch.nn.RNNBase
        The recurrent encoder (for ``"recursive"`` the one-step model's cell; for ``"segment"``
        the cell shared by encoder and decoder).
    decoder : torch.nn.RNNBase or None
        The decoder of the ``"seq2seq"`` head.
    n_past : int
        Number of past-observed channels, ``n_features - n_future``.

    Examples
    --------
    >>> import torch
    >>> net = RecurrentNet(n_features=3, n_targets=1, n_future=1, lookback=48, horizon=12,
    ...                    cell="lstm", hidden_size=16, head="direct")
    >>> x, future = torch.randn(8, 48, 3), torch.randn(8, 12, 1)
    >>> net(x, future).shape
    torch.Size([8, 12, 1])
    >>> y = torch.randn(8, 12, 1)
    >>> loss = net.training_loss(x, future, y, torch.nn.functional.mse_loss)
    >>> loss.backward()

    The default SegRNN head needs no future covariates:

    >>> seg = RecurrentNet(n_features=1, n_targets=1, lookback=48, horizon=24, hidden_size=16)
    >>> seg(torch.randn(4, 48, 1)).shape
    torch.Size([4, 24, 1])
    """

    def __init__(
        self,
        *,
        n_features: int,
        n_targets: int,
        n_future: int = 0,
        lookback: int,
        horizon: int,
        cell: str = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        head: str = "segment",
        nonlinearity: str = "tanh",
        segment_length: int = 24,
        normalization: str = "last",
        channel_independent: bool = False,
    ) -> None:
        super().__init__()
        config = check_network_config(
            {
                "n_features": n_features,
                "n_targets": n_targets,
                "n_future": n_future,
                "lookback": lookback,
                "horizon": horizon,
                "cell": cell,
                "hidden_size": hidden_size,
                "num_layers": num_layers,
                "dropout": dropout,
                "head": head,
                "nonlinearity": nonlinearity,
                "segment_length": segment_length,
                "normalization": normalization,
                "channel_independent": channel_independent,
            }
        )
        n_features, n_targets, n_future = (
            config[k] for k in ("n_features", "n_targets", "n_future")
        )
        lookback, horizon, hidden_size = (config[k] for k in ("lookback", "horizon", "hidden_size"))
        num_layers, segment_length = config["num_layers"], config["segment_length"]
        dropout, channel_independent = config["dropout"], config["channel_independent"]

        self.n_features = n_features
        self.n_targets = n_targets
        self.n_future = n_future
        self.n_past = n_features - n_future
        self.lookback = lookback
        self.horizon = horizon
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.head = head
        self.nonlinearity = nonlinearity
        self.segment_length = segment_length
        self.normalization = normalization
        self.channel_independent = channel_independent or head == "segment"
        # Sizes seen by the cell and output layers: under channel independence (other heads)
        # each target channel is one row of the batch, with the covariates beside it.
        split = self.channel_independent and head != "segment"
        self._core_targets = 1 if split else n_targets
        self._core_past = self.n_past - n_targets + 1 if split else self.n_past
        core_features = self._core_past + n_future

        # The segment head encodes the target channels only.
        self.norm = _WindowNorm(normalization, n_targets if head == "segment" else self._core_past)
        self.output_dropout = nn.Dropout(self.dropout)
        self.decoder: nn.RNNBase | None = None

        def make(input_size: int) -> nn.RNNBase:
            return _make_cell(cell, input_size, hidden_size, num_layers, self.dropout, nonlinearity)

        if head == "direct":
            self.rnn = make(core_features)
            self.out = nn.Linear(hidden_size + horizon * n_future, horizon * self._core_targets)
        elif head == "seq2seq":
            self.rnn = make(core_features)
            self.decoder = make(n_future + hidden_size)
            self.position_embedding = nn.Parameter(torch.randn(horizon, hidden_size))
            self.out = nn.Linear(hidden_size, self._core_targets)
        elif head == "recursive":
            self.rnn = make(core_features)
            self.out = nn.Linear(hidden_size, self._core_past)
        else:  # segment
            self.n_segments = math.ceil(lookback / segment_length)
            self.n_out_segments = math.ceil(horizon / segment_length)
            position_size = hidden_size // 2
            channel_size = hidden_size - position_size
            self.segment_embedding = nn.Sequential(
                nn.Linear(segment_length, hidden_size), nn.ReLU()
            )
            self.rnn = make(hidden_size)
            self.position_embedding = nn.Parameter(torch.randn(self.n_out_segments, position_size))
            self.channel_embedding = nn.Parameter(torch.randn(n_targets, channel_size))
            self.out = nn.Linear(hidden_size, segment_length)
            if n_future:
                self.future_embedding = nn.Linear(segment_length * n_future, hidden_size)

    # ----------------------------------------------------------------------------------------
    # configuration
    # ----------------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as plain values (JSON-serialisable).

        Examples
        --------
        >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=24, horizon=6, hidden_size=8)
        >>> RecurrentNet.from_config(net.get_config()).get_config() == net.get_config()
        True
        """
        return {
            "n_features": self.n_features,
            "n_targets": self.n_targets,
            "n_future": self.n_future,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "head": self.head,
            "nonlinearity": self.nonlinearity,
            "segment_length": self.segment_length,
            "normalization": self.normalization,
            "channel_independent": self.channel_independent,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RecurrentNet:
        """Build a network from :meth:`get_config`'s output (weights are freshly initialised).

        The configuration is checked first (:func:`check_network_config`): anything but a dict
        of :class:`RecurrentNet` arguments raises
        :class:`~forecaster.exceptions.DataValidationError` (an ensemble's configuration, with
        ``n_members``, is built by :func:`network_from_config`).
        """
        if not isinstance(config, Mapping):
            raise DataValidationError(
                "RecurrentNet.from_config takes a dict of RecurrentNet arguments (e.g. "
                f"net.get_config()), got {_validation.describe_value(config)}."
            )
        if "n_members" in config:
            raise DataValidationError(
                f"The configuration has n_members={config['n_members']!r}: it describes an "
                "ensemble. Build it with forecaster.nn.core.network_from_config(config)."
            )
        return cls(**check_network_config(config))

    def extra_repr(self) -> str:
        return (
            f"head={self.head!r}, cell={self.cell!r}, normalization={self.normalization!r}, "
            f"lookback={self.lookback}, horizon={self.horizon}, n_features={self.n_features}, "
            f"n_targets={self.n_targets}, n_future={self.n_future}"
        )

    # ----------------------------------------------------------------------------------------
    # input checks
    # ----------------------------------------------------------------------------------------

    def _as_input(self, name: str, value: Any) -> Tensor:
        """A float tensor on the network's device and dtype (other float dtypes are cast),
        or DataValidationError for anything else."""
        weight = next(self.parameters())
        if not isinstance(value, Tensor):
            raise DataValidationError(
                f"{name} must be a torch.Tensor, got {_validation.describe_value(value)}. "
                f"Convert it, e.g. torch.as_tensor({name}, dtype=torch.float32)."
            )
        if not value.is_floating_point():
            raise DataValidationError(
                f"{name} must hold floating-point values, got a {value.dtype} tensor. Cast it, "
                f"e.g. {name}.float()."
            )
        if value.device != weight.device:
            raise DataValidationError(
                f"{name} is on {value.device}, the network on {weight.device}. Move one of them, "
                f"e.g. {name}.to({str(weight.device)!r})."
            )
        if value.dtype != weight.dtype:
            value = value.to(weight.dtype)
        return value

    def _check_inputs(self, x: Tensor, future: Tensor | None) -> Tensor | None:
        if x.ndim != 3 or x.shape[1] != self.lookback or x.shape[2] != self.n_features:
            raise DataValidationError(
                f"x must have shape (batch, lookback={self.lookback}, "
                f"n_features={self.n_features}); received {tuple(x.shape)}. Window the data "
                "with the network's lookback and put every feature column in the last axis."
            )
        if self.n_future == 0:
            if future is not None and future.numel() > 0:
                raise DataValidationError(
                    f"the network was built with n_future=0 but received future covariates of "
                    f"shape {tuple(future.shape)}. Pass future=None, or build the network with "
                    "n_future set to their number."
                )
            return None
        if future is None:
            raise DataValidationError(
                f"head={self.head!r} with n_future={self.n_future} needs the future covariates "
                f"over the horizon, shape (batch, {self.horizon}, {self.n_future}); received "
                "future=None. Pass them as `future`."
            )
        expected = (x.shape[0], self.horizon, self.n_future)
        if tuple(future.shape) != expected:
            raise DataValidationError(
                f"future must have shape (batch, horizon, n_future) = {expected}; received "
                f"{tuple(future.shape)}. Slice the future-known covariates over the horizon."
            )
        return future

    # ----------------------------------------------------------------------------------------
    # forward
    # ----------------------------------------------------------------------------------------

    def _normalize_input(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Normalize the past-observed channels of ``x``; future covariates stay as they are."""
        stats = self.norm.stats(x)
        n_past = self._core_past
        past = self.norm.transform(x[..., :n_past], stats)
        if self.n_future:
            past = torch.cat([past, x[..., n_past:]], dim=-1)
        return past, stats

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        """Forecast the targets over the horizon.

        Parameters
        ----------
        x : torch.Tensor
            Input window, shape ``(batch, lookback, n_features)``, columns ordered
            ``[targets | past covariates | future covariates]``, on the network's device. A
            float tensor of another dtype (e.g. float64) is cast to the network's; anything
            else (integers, NumPy arrays) raises
            :class:`~forecaster.exceptions.DataValidationError`.
        future : torch.Tensor or None, default=None
            Future-known covariates over the horizon, shape ``(batch, horizon, n_future)``.
            Required when ``n_future > 0``. Checked like ``x``.

        Returns
        -------
        torch.Tensor
            The forecast, shape ``(batch, horizon, n_targets)``.

        Examples
        --------
        >>> import torch
        >>> net = RecurrentNet(n_features=2, n_targets=2, lookback=10, horizon=3,
        ...                    head="recursive", cell="rnn", hidden_size=8)
        >>> net(torch.randn(5, 10, 2)).shape
        torch.Size([5, 3, 2])
        """
        x = self._as_input("x", x)
        future = None if future is None else self._as_input("future", future)
        future = self._check_inputs(x, future)
        if self.head == "segment":
            return self._forward_segment(x, future)
        if self._core_targets != self.n_targets:  # channel independent
            x, future = self._split_channels(x, future)
            return self._merge_channels(self._forward_core(x, future))
        return self._forward_core(x, future)

    def _split_channels(self, x: Tensor, future: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(B, L, F)`` -> ``(B * C, L, 1 + F - C)``: row ``b * C + c`` holds target channel
        ``c`` of window ``b`` followed by all covariates of that window."""
        batch, length, _ = x.shape
        n_ch = self.n_targets
        targets = x[..., :n_ch].transpose(1, 2).reshape(batch * n_ch, length, 1)
        rest = x[..., n_ch:].repeat_interleave(n_ch, dim=0)
        future = None if future is None else future.repeat_interleave(n_ch, dim=0)
        return torch.cat([targets, rest], dim=-1), future

    def _merge_channels(self, y: Tensor) -> Tensor:
        """``(B * C, H, 1)`` -> ``(B, H, C)``, the inverse of :meth:`_split_channels`."""
        return y.reshape(-1, self.n_targets, y.shape[1]).transpose(1, 2)

    def _forward_core(self, x: Tensor, future: Tensor | None) -> Tensor:
        """The direct / seq2seq / recursive heads on the core sizes (see ``_core_targets``)."""
        if self.head == "recursive":
            return self._forward_recursive(x, future)
        xn, stats = self._normalize_input(x)
        batch = x.shape[0]
        _, state = self.rnn(xn)
        if self.head == "direct":
            features = self.output_dropout(_last_layer_hidden(state))
            if future is not None:
                features = torch.cat([features, future.reshape(batch, -1)], dim=-1)
            y = self.out(features).reshape(batch, self.horizon, self._core_targets)
        else:  # seq2seq
            assert self.decoder is not None
            positions = self.position_embedding.expand(batch, -1, -1)
            dec_in = positions if future is None else torch.cat([future, positions], dim=-1)
            dec_out, _ = self.decoder(dec_in, state)
            y = self.out(self.output_dropout(dec_out))
        return self.norm.inverse(y, stats)

    def _forward_segment(self, x: Tensor, future: Tensor | None) -> Tensor:
        batch, seg = x.shape[0], self.segment_length
        n_ch, n_out = self.n_targets, self.n_out_segments
        stats = self.norm.stats(x)
        xn = self.norm.transform(x[..., :n_ch], stats)  # (B, L, C)
        series = xn.transpose(1, 2)  # (B, C, L): channel independence
        pad = self.n_segments * seg - self.lookback
        if pad:  # left-pad by repeating the first value
            series = torch.cat([series[..., :1].expand(-1, -1, pad), series], dim=-1)
        segments = series.reshape(batch * n_ch, self.n_segments, seg)
        _, state = self.rnn(self.segment_embedding(segments))  # state: (layers, B*C, H)

        # Parallel multi-step decoding: one length-1 step per (sample, channel, output segment).
        pos = self.position_embedding.unsqueeze(0).expand(n_ch, -1, -1)  # (C, m, H/2)
        chan = self.channel_embedding.unsqueeze(1).expand(-1, n_out, -1)  # (C, m, H/2)
        dec_in = torch.cat([pos, chan], dim=-1)  # (C, m, H)
        dec_in = dec_in.unsqueeze(0).expand(batch, -1, -1, -1)
        if future is not None:  # each output segment's future covariates, embedded
            pad = n_out * seg - self.horizon
            if pad:
                future = F.pad(future, (0, 0, 0, pad))
            embedded = self.future_embedding(future.reshape(batch, n_out, seg * self.n_future))
            dec_in = dec_in + embedded.unsqueeze(1)  # (B, C, m, H)
        dec_in = dec_in.reshape(batch * n_ch * n_out, 1, self.hidden_size)
        dec_out, _ = self.rnn(dec_in, _repeat_state(state, n_out))  # (B*C*m, 1, H)
        y = self.out(self.output_dropout(dec_out.squeeze(1)))  # (B*C*m, seg)
        y = y.reshape(batch, n_ch, n_out * seg)[..., : self.horizon].transpose(1, 2)
        return self.norm.inverse(y, stats)

    def _forward_recursive(self, x: Tensor, future: Tensor | None) -> Tensor:
        xn, stats = self._normalize_input(x)
        out, state = self.rnn(xn)
        step = self.out(self.output_dropout(out[:, -1]))  # (B, n_past): horizon step 0
        steps = [step]
        for k in range(1, self.horizon):  # the only per-step loop: batched, state carried
            inp = step if future is None else torch.cat([step, future[:, k - 1]], dim=-1)
            out, state = self.rnn(inp.unsqueeze(1), state)
            step = self.out(self.output_dropout(out[:, 0]))
            steps.append(step)
        y = self.norm.inverse(torch.stack(steps, dim=1), stats)
        return y[..., : self._core_targets]

    # ----------------------------------------------------------------------------------------
    # training loss
    # ----------------------------------------------------------------------------------------

    def training_loss(
        self, x: Tensor, future: Tensor | None, y: Tensor, loss_fn: LossFn = F.mse_loss
    ) -> Tensor:
        """Scalar training loss for one batch.

        For the ``"direct"``, ``"seq2seq"`` and ``"segment"`` heads this is
        ``loss_fn(self(x, future), y)``.

        For the ``"recursive"`` head it is the teacher-forced many-to-many loss. The cell runs
        once (fused) over the lookback followed by the horizon, where the horizon rows hold the
        true targets ``y``, the future covariates and, for the past covariates (whose horizon
        values are unknown), the last observed value of each past covariate repeated. At every
        step the model predicts the next row's past-observed channels; the loss is the mean
        over time steps of ``loss_fn`` on the channels known at that step: all past-observed
        channels for the ``lookback - 1`` next values inside the lookback, the targets only for
        the ``horizon`` steps. Losses are computed on the original (de-normalized) scale, as
        for the other heads. At forecast time the roll-out feeds back its own predictions for
        all past-observed channels, covariates included.

        Parameters
        ----------
        x : torch.Tensor
            Input window, shape ``(batch, lookback, n_features)``.
        future : torch.Tensor or None
            Future covariates over the horizon, shape ``(batch, horizon, n_future)``.
        y : torch.Tensor
            True targets over the horizon, shape ``(batch, horizon, n_targets)``.
        loss_fn : callable, default=torch.nn.functional.mse_loss
            ``loss_fn(prediction, target) -> scalar`` with mean reduction.

        Returns
        -------
        torch.Tensor
            A scalar loss.

        Examples
        --------
        >>> import torch
        >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=16, horizon=4,
        ...                    head="recursive", hidden_size=8)
        >>> x, y = torch.randn(2, 16, 1), torch.randn(2, 4, 1)
        >>> net.training_loss(x, None, y, torch.nn.functional.mse_loss).ndim
        0
        """
        x, y = self._as_input("x", x), self._as_input("y", y)
        future = None if future is None else self._as_input("future", future)
        expected = (x.shape[0], self.horizon, self.n_targets)
        if tuple(y.shape) != expected:
            raise DataValidationError(
                f"y must have shape (batch, horizon, n_targets) = {expected}; received "
                f"{tuple(y.shape)}. Add a trailing axis for a single target."
            )
        if self.head != "recursive":
            return loss_fn(self(x, future), y)

        future = self._check_inputs(x, future)
        if self._core_targets != self.n_targets:  # channel independent: channels -> batch
            x, future = self._split_channels(x, future)
            y = y.transpose(1, 2).reshape(-1, self.horizon, 1)
        n_past, n_t, lookback = self._core_past, self._core_targets, self.lookback
        stats = self.norm.stats(x)
        last_covariates = x[:, -1:, n_t:n_past].expand(-1, self.horizon, -1)
        teacher_raw = torch.cat([y, last_covariates], dim=-1)  # (B, H, n_past)
        sequence = torch.cat([x[..., :n_past], teacher_raw], dim=1)  # (B, L + H, n_past)
        sequence_n = self.norm.transform(sequence, stats)
        if future is not None:
            all_future = torch.cat([x[..., n_past:], future], dim=1)
            sequence_n = torch.cat([sequence_n, all_future], dim=-1)
        out, _ = self.rnn(sequence_n[:, :-1])  # (B, L + H - 1, H)
        pred = self.norm.inverse(self.out(self.output_dropout(out)), stats)

        horizon_loss = loss_fn(pred[:, lookback - 1 :, :n_t], y)
        n_inside = lookback - 1
        if n_inside == 0:
            return horizon_loss
        inside_loss = loss_fn(pred[:, :n_inside], x[:, 1:, :n_past])
        return (n_inside * inside_loss + self.horizon * horizon_loss) / (n_inside + self.horizon)


# --------------------------------------------------------------------------------------------
# ensembles
# --------------------------------------------------------------------------------------------


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
        """Mean of the members' forecasts, shape ``(batch, horizon, n_targets)``."""
        return torch.stack([member(x, future) for member in self.members]).mean(dim=0)

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
            f"{_validation.describe_value(config)}."
        )
    config = dict(config)
    n_members = check("n_members", config.pop("n_members", 1))
    check_network_config(config, n_members=n_members)
    if n_members == 1:
        return RecurrentNet.from_config(config)
    return EnsembleNet([RecurrentNet.from_config(config) for _ in range(n_members)])


# --------------------------------------------------------------------------------------------
# configuration checks and memory estimates
# --------------------------------------------------------------------------------------------

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_FLOAT_BYTES = 4
_TRAINING_BYTES_PER_PARAMETER = 20
"""float32 weights, gradients, AdamW's two moments and the best weights kept for early
stopping."""
_BYTES_PER_NETWORK = 32 * 1024
"""What a network costs besides its weights (Python module and tensor objects; measured about
28 KB for a tiny one), which counts when an ensemble has very many members."""


def _defaults() -> dict[str, Any]:
    parameters = inspect.signature(RecurrentNet.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def check_network_config(
    config: Mapping[str, Any], *, n_members: int = 1, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check a :class:`RecurrentNet` configuration without building the network.

    Every argument goes through the parameter table (:mod:`forecaster._validation`), then their
    relations are checked, then the memory that ``n_members`` networks' parameters take
    (:func:`check_memory`, against :func:`memory_limit`). Unknown keys are refused.

    Parameters
    ----------
    config : mapping
        :class:`RecurrentNet` keyword arguments (e.g. :meth:`RecurrentNet.get_config`);
        missing ones take their defaults.
    n_members : int, default 1
        Number of networks of this configuration held at once (an ensemble).
    names : mapping, optional
        How the caller calls ``n_members`` (see :func:`check_memory`).

    Returns
    -------
    dict
        The configuration with defaults filled in and numbers as Python ints and floats.

    Examples
    --------
    >>> check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24,
    ...                       "horizon": 6})["hidden_size"]
    128
    >>> check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24, "horizon": 6,
    ...                       "hidden_size": 10**9})
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The network's parameters would take ...
    """
    defaults = _defaults()
    unknown = sorted(
        set(config) - set(defaults) - {"n_features", "n_targets", "lookback", "horizon"}
    )
    if unknown:
        raise DataValidationError(
            f"Unknown network arguments {unknown}; RecurrentNet takes "
            f"{sorted({'n_features', 'n_targets', 'lookback', 'horizon', *defaults})}."
        )
    missing = [k for k in ("n_features", "n_targets", "lookback", "horizon") if k not in config]
    if missing:
        raise DataValidationError(f"The network configuration lacks {missing}.")
    merged = {**defaults, **config}
    checked = {name: check(name, value) for name, value in merged.items()}
    checked["channel_independent"] = bool(checked["channel_independent"])
    cell, head, nonlinearity = checked["cell"], checked["head"], checked["nonlinearity"]
    if cell != "rnn" and nonlinearity != "tanh":
        raise DataValidationError(
            f"nonlinearity={nonlinearity!r} only applies to cell='rnn'; received "
            f"cell={cell!r}. Use cell='rnn' for a ReLU RNN, or leave nonlinearity='tanh' "
            f"with cell={cell!r} (its gates fix their own nonlinearities)."
        )
    n_features, n_targets, n_future = (checked[k] for k in ("n_features", "n_targets", "n_future"))
    if n_targets > n_features - n_future:
        raise DataValidationError(
            f"n_targets must be <= n_features - n_future = {n_features} - {n_future} = "
            f"{n_features - n_future} (the targets are the first columns of x and the "
            f"future covariates its last ones); received n_targets={n_targets}. Check that "
            "n_features counts every column of x, targets and covariates included."
        )
    if head == "segment" and checked["hidden_size"] < 2:
        raise DataValidationError(
            f"head='segment' needs hidden_size >= 2 (it is split between a position and a "
            f"channel embedding); received hidden_size={checked['hidden_size']}. Pass a larger "
            "hidden_size, e.g. 64."
        )
    check_memory(checked, n_members=n_members, names=names)
    return checked


def _cell_parameters(cell: str, input_size: int, hidden: int, layers: int) -> int:
    gates = _GATES[cell]
    first = gates * hidden * (input_size + hidden + 2)
    return first + (layers - 1) * gates * hidden * (2 * hidden + 2)


def _core_sizes(c: Mapping[str, Any]) -> tuple[int, int, int]:
    """(core targets, core past channels, core input features) as :class:`RecurrentNet` sets
    them (one target channel per batch row under channel independence)."""
    split = c["channel_independent"] and c["head"] != "segment"
    n_past = c["n_features"] - c["n_future"]
    core_targets = 1 if split else c["n_targets"]
    core_past = n_past - c["n_targets"] + 1 if split else n_past
    return core_targets, core_past, core_past + c["n_future"]


def parameter_count(config: Mapping[str, Any]) -> int:
    """Number of scalar parameters of ``RecurrentNet(**config)``, computed without building it.

    ``config`` holds checked values (see :func:`check_network_config`).

    Examples
    --------
    >>> config = check_network_config({"n_features": 2, "n_targets": 1, "lookback": 24,
    ...                                "horizon": 6, "hidden_size": 8, "head": "direct"})
    >>> parameter_count(config) == count_parameters(RecurrentNet(**config))
    True
    """
    c = {**_defaults(), **config}
    hidden, layers, cell, head = c["hidden_size"], c["num_layers"], c["cell"], c["head"]
    horizon, n_future, seg = c["horizon"], c["n_future"], c["segment_length"]
    core_targets, core_past, core_features = _core_sizes(c)
    revin = c["normalization"] == "revin"
    if head == "segment":
        n_out = math.ceil(horizon / seg)
        total = seg * hidden + hidden + _cell_parameters(cell, hidden, hidden, layers)
        total += n_out * (hidden // 2) + c["n_targets"] * (hidden - hidden // 2)
        total += hidden * seg + seg + (seg * n_future * hidden + hidden if n_future else 0)
        return total + (2 * c["n_targets"] if revin else 0)
    total = _cell_parameters(cell, core_features, hidden, layers) + (2 * core_past if revin else 0)
    if head == "direct":
        outputs = horizon * core_targets
        return total + (hidden + horizon * n_future) * outputs + outputs
    if head == "seq2seq":
        total += _cell_parameters(cell, n_future + hidden, hidden, layers) + horizon * hidden
        return total + hidden * core_targets + core_targets
    return total + hidden * core_past + core_past  # recursive


def _activation_floats(c: Mapping[str, Any], batch: int) -> int:
    """float32 values kept for the backward pass of one training batch (an estimate that
    counts the recurrent layers' gates and outputs, the inputs and the batch tensors)."""
    hidden, layers, head = c["hidden_size"], c["num_layers"], c["head"]
    lookback, horizon = c["lookback"], c["horizon"]
    _, _, core_features = _core_sizes(c)
    per_step = layers * (_GATES[c["cell"]] + 1) * hidden
    if head == "segment":
        seg = c["segment_length"]
        rows = batch * c["n_targets"]
        n_in, n_out = math.ceil(lookback / seg), math.ceil(horizon / seg)
        recurrent = rows * (n_in + n_out) * per_step + rows * n_in * (seg + hidden)
    else:
        rows = batch * (c["n_targets"] if c["channel_independent"] else 1)
        steps = lookback + (horizon if head in ("seq2seq", "recursive") else 0)
        recurrent = rows * steps * (per_step + core_features)
    batch_tensors = 3 * batch * (lookback + horizon) * c["n_features"]
    return 2 * recurrent + batch_tensors  # activations and their gradients


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a configuration needs: ``parameters`` (count), ``weights`` (the float32
    parameters of every member) and ``training`` (optimiser state of the member being trained
    and one training batch's working set; 0 when no batch size was given)."""

    parameters: int
    weights: int
    training: int

    @property
    def total(self) -> int:
        """``weights + training``."""
        return self.weights + self.training


def estimate_memory(
    config: Mapping[str, Any], *, n_members: int = 1, batch_size: int = 0
) -> MemoryEstimate:
    """Estimate the memory of ``n_members`` networks of ``config`` and, with ``batch_size``,
    of training one of them on batches of that many windows.

    Examples
    --------
    >>> config = check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24,
    ...                                "horizon": 6, "hidden_size": 8})
    >>> estimate_memory(config).weights > 4 * parameter_count(config)
    True
    """
    count = parameter_count(config)
    training = 0
    if batch_size:
        c = {**_defaults(), **config}
        training = _TRAINING_BYTES_PER_PARAMETER * count
        training += _FLOAT_BYTES * _activation_floats(c, batch_size)
    weights = (_FLOAT_BYTES * count + _BYTES_PER_NETWORK) * n_members
    return MemoryEstimate(count, weights, training)


def memory_limit(device: Any = "cpu") -> tuple[int, str]:
    """``(bytes, description)`` of the memory a network on ``device`` can use: the CUDA
    device's total memory, else :func:`forecaster._validation.memory_limit` (the smallest of
    physical memory, the room under ``ulimit -v`` and under the cgroup's memory limit).

    Examples
    --------
    >>> memory_limit("cpu")[0] > 0
    True
    """
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        total = int(torch.cuda.get_device_properties(index).total_memory)
        return total, f"the memory of CUDA device {index} ({format_bytes(total)})"
    return _validation.memory_limit()


class OutOfMemoryError(ForecasterError, MemoryError):
    """Memory ran out while building or training a network, although the estimate passed
    (another process took the memory meanwhile, or the estimate was too low). The message
    names the parameters that the memory grows with."""


_ALLOCATION_FAILURES = ("can't allocate memory", "defaultcpuallocator", "out of memory")


def out_of_memory(
    exc: BaseException, config: Mapping[str, Any], *, device: Any = "cpu", **sizes: Any
) -> OutOfMemoryError | None:
    """The :class:`OutOfMemoryError` for ``exc`` when it is an allocation failure (a
    ``MemoryError`` or torch's ``RuntimeError`` "can't allocate memory" / DefaultCPUAllocator);
    ``None`` for any other exception. ``sizes`` are further named sizes for the message (e.g.
    ``batch_size=64``).

    Examples
    --------
    >>> error = out_of_memory(MemoryError(), {"hidden_size": 8}, batch_size=4)
    >>> str(error).startswith("Ran out of memory")
    True
    >>> out_of_memory(ValueError("x"), {}) is None
    True
    """
    gpu = type(exc).__name__ == "GPUOutOfMemoryError"
    failed = isinstance(exc, MemoryError | torch.OutOfMemoryError) and not gpu
    if not failed and isinstance(exc, RuntimeError):
        failed = any(text in str(exc).lower() for text in _ALLOCATION_FAILURES)
    if not failed:
        return None
    c = {**_defaults(), **config}
    shown = [f"{k}={c[k]:,}" for k in _NAMED if isinstance(c.get(k), int)]
    shown += [f"{k}={v:,}" for k, v in sizes.items() if isinstance(v, int)]
    _, where = memory_limit(device)
    first = " ".join(str(exc).split())[:200]
    return OutOfMemoryError(
        f"Ran out of memory while building or training the network ({type(exc).__name__}: "
        f"{first}). Memory grows with {', '.join(shown)}; the limit is {where}. Lower the "
        "largest of them, or free memory (other processes, a smaller batch_size)."
    )


_NAMED = ("hidden_size", "num_layers", "lookback", "horizon", "segment_length", "n_features")


def check_memory(
    config: Mapping[str, Any],
    *,
    n_members: int = 1,
    batch_size: int = 0,
    device: Any = "cpu",
    names: Mapping[str, str] | None = None,
) -> MemoryEstimate:
    """Refuse a configuration whose estimated memory (:func:`estimate_memory`) exceeds
    :func:`memory_limit` of ``device``, before anything is allocated.

    Parameters
    ----------
    config : mapping
        Checked :class:`RecurrentNet` arguments.
    n_members : int, default 1
        Networks held at once.
    batch_size : int, default 0
        Windows per training batch; 0 checks the weights only (loading, predicting).
    device : str or torch.device, default "cpu"
    names : mapping, optional
        How the caller calls ``n_members`` and ``batch_size`` (e.g. ``{"n_members":
        "n_ensemble"}``), for the message.

    Raises
    ------
    DataValidationError
        Naming the parameters, the estimate and the limit.
    """
    estimate = estimate_memory(config, n_members=n_members, batch_size=batch_size)
    limit, where = memory_limit(device)
    if estimate.total <= limit:
        return estimate
    names = {"n_members": "n_members", "batch_size": "batch_size", **(names or {})}
    c = {**_defaults(), **config}
    shown = [f"{k}={c[k]:,}" for k in _NAMED if k != "segment_length" or c["head"] == "segment"]
    if n_members > 1:
        shown.append(f"{names['n_members']}={n_members:,}")
    if batch_size:
        shown.append(f"{names['batch_size']}={batch_size:,}")
    parts = f"{format_bytes(estimate.weights)} of weights ({estimate.parameters:,} parameters"
    parts += f" x {n_members:,} networks)" if n_members > 1 else ")"
    if estimate.training:
        parts += f" + {format_bytes(estimate.training)} to train on one batch"
    what = "Training this network" if batch_size else "The network's parameters"
    raise DataValidationError(
        f"{what} would take an estimated {format_bytes(estimate.total)} ({parts}), "
        f"more than {where}. It grows with {', '.join(shown)} ({c['head']!r} head, "
        f"{c['cell']!r} cell). Lower the largest of them."
    )

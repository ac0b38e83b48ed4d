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

The inputs, their layout (targets, past covariates, statics, future covariates) and their
checks: :mod:`forecaster.nn.inputs`.

The module has no dependency on the data layer: it only sees tensors.
"""

from __future__ import annotations

__all__ = ["RecurrentNet"]

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import forecaster.nn.unrolled as unrolled
from forecaster._validation import describe_value
from forecaster.exceptions import DataValidationError
from forecaster.nn.cells import make_cell
from forecaster.nn.checks import check_network_config
from forecaster.nn.heads import HEAD_TYPES
from forecaster.nn.heads.base import LossFn
from forecaster.nn.heads.segment import covariate_channels
from forecaster.nn.inputs import as_input, check_targets, check_window
from forecaster.nn.normalization import WindowNorm
from forecaster.nn.quantiles import (
    initial_gaps,
    median_index,
    pinball_loss,
    quantile_output,
    window_spread,
)
from forecaster.nn.statics import StaticEncoder


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
          covariates) from their values at ``s - 1`` and the future covariates at ``s``;
          trained teacher-forced (:meth:`training_loss`), rolled out autoregressively.
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
          value. Past covariates are used by the encoder: each covariate channel's segment
          (normalized like the targets) goes through one ``Linear(segment_length,
          hidden_size)`` shared by the covariate channels (no bias, initialised at zero) times
          a learned gain vector per covariate channel (``covariate_gates``, initialised at
          one); their mean is added to every target channel's linear segment embedding before
          the ReLU (the targets stay channel independent; an untrained network forecasts as
          without covariates). Future-known covariates (e.g. calendar features)
          are used by the decoder: each output segment's covariates, flattened, go through
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
    quantiles : sequence of float or None, default=None
        Emit one value per quantile (sorted, 0.5 among them): the head's forecast is the
        median and the other quantiles are the median plus or minus learned positive gaps
        (:mod:`forecaster.nn.quantiles`), so they never cross. The forecast then has shape
        ``(batch, horizon, n_targets, Q)``; train it with
        :func:`~forecaster.nn.quantiles.pinball_loss` (``loss="quantile"``).
    past_covariates : bool, default=True
        Whether the ``"segment"`` head reads the past covariates. ``False`` only rebuilds
        segment-head models saved before that head used them (their weights have no covariate
        embedding and their forecasts ignore the covariates); every other head always uses
        them and refuses ``False``.
    static_cardinalities : list of int or None, default=None
        Static covariates (one value per series): the number of categories of each categorical
        one (``x`` holds its codes, 1 to n; 0 is the unknown category).
    n_static_numeric : int, default=0
        Numeric static covariates (standardised numbers in ``x``). With any static covariate,
        ``x`` has ``n_features + n_static`` columns and a
        :class:`~forecaster.nn.statics.StaticEncoder` gives every head the initial state of
        its encoder (``static_encoder``); without, the network is built and initialised as if
        the option did not exist.
    static_at_horizon : bool, default=False
        The ``"seq2seq"`` head also adds the statics' state to the one its decoder starts from
        (:func:`~forecaster.nn.statics.plus_static`; only with statics).
    linear_skip : bool, default=False
        Add a linear map of the input window straight to the horizon to the head's forecast
        (the autoregressive highway of LSTNet, Lai et al., 2018; NLinear, Zeng et al., 2023):
        each target channel's window minus its last value goes through one
        ``Linear(lookback, horizon)`` shared by the channels (``skip_weight``, ``skip_bias``),
        added to the head's output. It starts at zero (and draws no random number): an
        untrained network forecasts as without it, and training grows the linear part as far
        as the loss asks, which frees the recurrent head to model what is not linear. Not
        with the ``"recursive"`` head (it is trained one step at a time).
    future_at_step : bool, default=True
        ``"recursive"`` head: the step forecasting time ``s`` reads the future covariates at
        ``s``; ``False`` (at ``s - 1``) only rebuilds such models saved before (others refuse it).

    Attributes
    ----------
    rnn : torch.nn.RNNBase
        The recurrent encoder (for ``"recursive"`` the one-step model's cell; for ``"segment"``
        the cell shared by encoder and decoder).
    decoder : torch.nn.RNNBase or None
        The decoder of the ``"seq2seq"`` head.
    n_past : int
        Number of past-observed channels, ``n_features - n_future``.
    core_targets, core_past : int
        Target and past-observed channels of one batch row as the cell and output layers see
        them: ``n_targets`` and ``n_past``, or ``1`` and ``n_past - n_targets + 1`` when each
        target channel is a row of its own (channel independence, heads other than
        ``"segment"``).

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
        quantiles: Any = None,
        past_covariates: bool = True,
        static_cardinalities: Any = None,
        n_static_numeric: int = 0,
        linear_skip: bool = False,
        static_at_horizon: bool = False,
        future_at_step: bool = True,
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
                "quantiles": quantiles,
                "past_covariates": past_covariates,
                "static_cardinalities": static_cardinalities,
                "n_static_numeric": n_static_numeric,
                "linear_skip": linear_skip,
                "static_at_horizon": static_at_horizon,
                "future_at_step": future_at_step,
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
        self._head = HEAD_TYPES[head]
        self.channel_independent = channel_independent or self._head.always_channel_independent
        # Sizes seen by the cell and output layers: under channel independence (other heads)
        # each target channel is one row of the batch, with the covariates beside it.
        split = self.channel_independent and not self._head.always_channel_independent
        self.core_targets = 1 if split else n_targets
        self.core_past = self.n_past - n_targets + 1 if split else self.n_past

        self.past_covariates: bool = config["past_covariates"]
        self.future_at_step: bool = config["future_at_step"]
        # A head that is channel independent by design normalizes the channels it encodes.
        encoded = n_targets + covariate_channels(self.n_past, n_targets, self.past_covariates)
        self.norm = WindowNorm(
            normalization, encoded if self._head.always_channel_independent else self.core_past
        )
        self.output_dropout = nn.Dropout(self.dropout)
        self.decoder: nn.RNNBase | None = None

        def make(input_size: int) -> nn.RNNBase:
            return make_cell(cell, input_size, hidden_size, num_layers, self.dropout, nonlinearity)

        self._head.build(self, make)
        self.quantiles: tuple[float, ...] | None = config["quantiles"]
        if self.quantiles is not None:  # after the head: its initialisation stays the same
            self.median_index = median_index(self.quantiles)
            self.quantile_gaps = nn.Parameter(initial_gaps(self.quantiles, horizon, n_targets))
        self.static_cardinalities: list[int] = config["static_cardinalities"] or []
        self.n_static_numeric: int = config["n_static_numeric"]
        self.n_static = len(self.static_cardinalities) + self.n_static_numeric
        self.static_encoder: StaticEncoder | None = None
        self.static_at_horizon: bool = config["static_at_horizon"]
        if self.n_static:  # last: a network without statics draws the same initial weights
            self.static_encoder = StaticEncoder(
                self.static_cardinalities,
                self.n_static_numeric,
                hidden_size=hidden_size,
                num_layers=num_layers,
            )
        self.linear_skip: bool = config["linear_skip"]
        if self.linear_skip:  # zeros: no random draw, so every other initial weight is the same
            self.skip_weight = nn.Parameter(torch.zeros(horizon, lookback))
            self.skip_bias = nn.Parameter(torch.zeros(horizon))

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
        config = {
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
        if self.quantiles is not None:  # absent for point networks (their configs unchanged)
            config["quantiles"] = list(self.quantiles)
        if self._head.always_channel_independent and self.n_past > self.n_targets:
            # present where it matters: a saved segment configuration with past covariates
            # lacking it was saved before the head used them (see forecaster.nn.checks)
            config["past_covariates"] = self.past_covariates
        if self.head == "recursive" and self.n_future:  # a saved one lacking it: read lagged
            config["future_at_step"] = self.future_at_step  # (forecaster.nn.checks)
        if self.static_cardinalities:  # absent without static covariates, as before
            config["static_cardinalities"] = list(self.static_cardinalities)
        if self.n_static_numeric:
            config["n_static_numeric"] = self.n_static_numeric
        for flag in ("linear_skip", "static_at_horizon"):  # absent when off: older configs
            if getattr(self, flag):  # load unchanged
                config[flag] = True
        return config

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
                f"net.get_config()), got {describe_value(config)}."
            )
        if "n_members" in config:
            raise DataValidationError(
                f"The configuration has n_members={config['n_members']!r}: it describes an "
                "ensemble. Build it with forecaster.nn.network_from_config(config)."
            )
        return cls(**check_network_config(config))

    def extra_repr(self) -> str:
        return (
            f"head={self.head!r}, cell={self.cell!r}, normalization={self.normalization!r}, "
            f"lookback={self.lookback}, horizon={self.horizon}, n_features={self.n_features}, "
            f"n_targets={self.n_targets}, n_future={self.n_future}"
        )

    # ----------------------------------------------------------------------------------------
    # forward
    # ----------------------------------------------------------------------------------------

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

        Notes
        -----
        At inference on the CPU, the ``"segment"`` head runs a batch of fewer than
        :data:`~forecaster.nn.unrolled.MIN_BATCH_ROWS` (16) windows as copies of them
        (:func:`~forecaster.nn.unrolled.row_copies`), so that a window's forecast is the same
        bits in a batch of any size. The other heads do not (the copies would multiply their
        forward's time): a few windows' forecasts may differ from a large batch's in the last
        bits (about 1e-7 relative).

        Examples
        --------
        >>> import torch
        >>> net = RecurrentNet(n_features=2, n_targets=2, lookback=10, horizon=3,
        ...                    head="recursive", cell="rnn", hidden_size=8)
        >>> net(torch.randn(5, 10, 2)).shape
        torch.Size([5, 3, 2])
        """
        x = as_input(self, "x", x)
        future = None if future is None else as_input(self, "future", future)
        future = check_window(self, x, future)
        batch, copies = x.shape[0], unrolled.row_copies(x.shape[0])
        if copies > 1 and self._head.copies_few_windows(self, x):  # a large batch's bits
            x = x.repeat(copies, 1, 1)  # before the statics' encoder: its products too
            future = None if future is None else future.repeat(copies, 1, 1)
            core, static = self.split_static(x)
            return self.forecast(core, future, static)[:batch]
        x, static = self.split_static(x)
        return self.forecast(x, future, static)

    def split_static(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``x`` without its static columns, and the encoder's initial state of its statics
        ``(num_layers, batch, hidden_size)`` (None for a network without static covariates,
        whose ``x`` is returned as it is)."""
        if not self.n_static:
            return x, None
        a, b = self.n_past, self.n_past + self.n_static
        core = x[..., :a] if not self.n_future else torch.cat([x[..., :a], x[..., b:]], dim=-1)
        assert self.static_encoder is not None
        return core, self.static_encoder(x[:, -1, a:b])

    def forecast(self, x: Tensor, future: Tensor | None, static: Tensor | None) -> Tensor:
        """The forecast of checked inputs without static columns and the static state
        (see :meth:`split_static`): the head's forecast, and the quantiles around it."""
        forecast = self._head.forward(self, x, future, static)
        if self.linear_skip:
            forecast = forecast + self._skip(x)
        if self.quantiles is None:
            return forecast
        return self._quantiles(forecast, x)

    def _skip(self, x: Tensor) -> Tensor:
        """The linear skip's share of the forecast, ``(batch, horizon, n_targets)``: each
        target channel's window minus its last value through ``Linear(lookback, horizon)``."""
        targets = x[..., : self.n_targets]
        deviations = (targets - targets[:, -1:, :]).transpose(1, 2)  # (B, C, L)
        return F.linear(deviations, self.skip_weight, self.skip_bias).transpose(1, 2)

    def _quantiles(self, median: Tensor, x: Tensor) -> Tensor:
        """``(batch, horizon, n_targets, Q)`` around the head's forecast ``median``."""
        spread = window_spread(x, self.n_targets)
        return quantile_output(median, spread, self.quantile_gaps, self.median_index)

    # ----------------------------------------------------------------------------------------
    # training loss
    # ----------------------------------------------------------------------------------------

    def training_loss(
        self, x: Tensor, future: Tensor | None, y: Tensor, loss_fn: LossFn = F.mse_loss
    ) -> Tensor:
        """Scalar training loss for one batch.

        For the ``"direct"``, ``"seq2seq"`` and ``"segment"`` heads this is
        ``loss_fn(self(x, future), y)``.

        For the ``"recursive"`` head it is the teacher-forced many-to-many loss over every step
        (:meth:`~forecaster.nn.heads.recursive.RecursiveHead.training_loss`).

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
        x, y = as_input(self, "x", x), as_input(self, "y", y)
        future = None if future is None else as_input(self, "future", future)
        check_targets(self, x, y)
        future = check_window(self, x, future)
        x, static = self.split_static(x)
        if self.quantiles is not None and self.head == "recursive":
            # the median keeps the teacher-forced one-step loss (the pinball loss at 0.5 is
            # half the absolute error); the other quantiles are fitted around the roll-out
            def half_l1(prediction: Tensor, target: Tensor) -> Tensor:
                return 0.5 * F.l1_loss(prediction, target)

            median_loss = self._head.training_loss(self, x, future, y, half_l1, static)
            with torch.no_grad():
                median = self._head.forward(self, x, future, static)
            side = self._quantiles(median, x)
            keep = [k for k in range(len(self.quantiles)) if k != self.median_index]
            qs = [self.quantiles[k] for k in keep]
            side_loss = pinball_loss(side[..., keep], y, qs) * len(keep)
            return (median_loss + side_loss) / len(self.quantiles)
        return self._head.training_loss(self, x, future, y, loss_fn, static)

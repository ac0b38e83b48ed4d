"""The ``"segment"`` head (SegRNN, Lin et al., 2023, arXiv:2308.11200): segment-wise,
channel-independent encoding of the target channels and parallel multi-step decoding.

Past covariates: each covariate channel's segment (normalized like the targets) goes through one
``Linear(segment_length, hidden_size)`` shared by the covariate channels (no bias), times a
learned gain vector per covariate channel (``covariate_gates``, ``(n_covariates,
hidden_size)``); their mean over the covariate channels is added to the linear segment
embedding of every target channel of that segment, before its ReLU. The targets stay channel
independent (one row per target channel, shared weights); the covariates are shared context
beside each of them. The embedding starts at zero and the gains at one: an untrained network
forecasts as without covariates (and draws the same random numbers), and training grows the
covariate path as far as the loss asks. On ETTh1 (OT, the six loads as covariates, H = 96) this
was the most accurate of the designs tried (``docs/benchmarks.md``). A network built with
``past_covariates=False`` (models saved before this head used them) ignores them."""

from __future__ import annotations

__all__ = ["SegmentHead", "covariate_channels", "decode"]

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import forecaster.nn.unrolled as unrolled
from forecaster.nn.cells import RecurrentState, cell_parameters, repeat_state
from forecaster.nn.gru import gru_step
from forecaster.nn.heads.base import Head, MakeCell
from forecaster.nn.statics import initial_state


class SegmentHead(Head):
    """SegRNN: segments of the targets embedded and encoded, one decoder step per output
    segment (see :class:`~forecaster.nn.recurrent.RecurrentNet`, ``head="segment"``)."""

    name = "segment"
    always_channel_independent = True

    def build(self, net: Any, make_cell: MakeCell) -> None:
        hidden_size, segment_length = net.hidden_size, net.segment_length
        net.n_segments = math.ceil(net.lookback / segment_length)
        net.n_out_segments = math.ceil(net.horizon / segment_length)
        position_size = hidden_size // 2
        channel_size = hidden_size - position_size
        net.segment_embedding = nn.Sequential(nn.Linear(segment_length, hidden_size), nn.ReLU())
        net.rnn = make_cell(hidden_size)
        net.position_embedding = nn.Parameter(torch.randn(net.n_out_segments, position_size))
        net.channel_embedding = nn.Parameter(torch.randn(net.n_targets, channel_size))
        net.out = nn.Linear(hidden_size, segment_length)
        if net.n_future:
            net.future_embedding = nn.Linear(segment_length * net.n_future, hidden_size)
        n_covariates = covariate_channels(net.n_past, net.n_targets, net.past_covariates)
        if n_covariates:  # last, and no random draw: the other layers' init stays the same
            # Linear(segment_length, hidden_size) without bias, at zero: the univariate model
            net.covariate_embedding = nn.Parameter(torch.zeros(hidden_size, segment_length))
            net.covariate_gates = nn.Parameter(torch.ones(n_covariates, hidden_size))

    def parameter_count(self, c: Mapping[str, Any], core_targets: int, core_past: int) -> int:
        hidden, seg, n_future = c["hidden_size"], c["segment_length"], c["n_future"]
        n_out = math.ceil(c["horizon"] / seg)
        total = seg * hidden + hidden + cell_parameters(c["cell"], hidden, hidden, c["num_layers"])
        total += n_out * (hidden // 2) + c["n_targets"] * (hidden - hidden // 2)
        n_covariates = _covariates(c)  # the shared covariate embedding (no bias) and the gains
        total += (seg + n_covariates) * hidden if n_covariates else 0
        return total + hidden * seg + seg + (seg * n_future * hidden + hidden if n_future else 0)

    def recurrent_floats(self, c: Mapping[str, Any], batch: int, per_step: int) -> int:
        seg, hidden = c["segment_length"], c["hidden_size"]
        rows = batch * c["n_targets"]
        n_in, n_out = math.ceil(c["lookback"] / seg), math.ceil(c["horizon"] / seg)
        floats = rows * (n_in + n_out) * per_step + rows * n_in * (seg + hidden)
        n_covariates = _covariates(c)
        if n_covariates:  # per window: covariate segments, their embeddings, gained, the mean;
            # per row: the sum with the target embedding
            per_window = n_covariates * (seg + 2 * hidden) + hidden
            floats += batch * n_in * per_window + rows * n_in * hidden
        return floats

    def copies_few_windows(self, net: Any, x: Tensor) -> bool:
        """At inference on the CPU (:func:`forecaster.nn.unrolled.cpu_inference`), any cell:
        16 copies of one window cost about 1.5 to 2 times its forward (about 0.3 ms more on
        the default network)."""
        return unrolled.cpu_inference(net, x)

    def forward(self, net: Any, x: Tensor, future: Tensor | None, static: Any = None) -> Tensor:
        if x.shape[0] > unrolled.BLOCK_ROWS and unrolled.unrolls(net.rnn, x):  # cache-sized
            return torch.cat(
                [
                    self.forward(
                        net,
                        x[rows],
                        None if future is None else future[rows],
                        None if static is None else static[:, rows],  # (layers, B, H)
                    )
                    for rows in unrolled.row_blocks(x.shape[0])
                ]
            )
        batch, seg = x.shape[0], net.segment_length
        n_ch = net.n_targets
        n_cov = covariate_channels(net.n_past, n_ch, net.past_covariates)
        stats = net.norm.stats(x)
        xn = net.norm.transform(x[..., : n_ch + n_cov], stats)  # (B, L, C + K)
        series = xn.transpose(1, 2)  # (B, C + K, L): channel independence
        pad = net.n_segments * seg - net.lookback
        if pad:  # left-pad by repeating the first value
            series = torch.cat([series[..., :1].expand(-1, -1, pad), series], dim=-1)
        if n_cov:
            embedded = _embed_with_covariates(net, series, n_ch)
        else:
            segments = series.reshape(batch * n_ch, net.n_segments, seg)
            embedded = net.segment_embedding(segments)
        h0 = initial_state(net, static, n_ch)  # the statics' state (None without)
        state = unrolled.encode(net.rnn, embedded, h0)  # (layers, B*C, H); unrolled at inference
        y = decode(net, state, batch, future)
        return net.norm.inverse(y, stats)


def decode(net: Any, state: RecurrentState, batch: int, future: Tensor | None) -> Tensor:
    """Parallel multi-step decoding: one length-1 cell step per (window, channel, output
    segment) from the encoder's ``state``, its input the output segment's position and
    channel embeddings (plus its embedded future covariates); the normalized forecast
    ``(B, horizon, C)``.

    At inference on the CPU the step is unrolled with the fused call's operations
    (:func:`forecaster.nn.unrolled.decode`: the same values, repeated rows computed once).
    In training, a one-layer GRU on the CPU computes the step's input projection once per
    (channel, output segment) and its recurrent projection once per (window, channel),
    broadcast over the rest (:func:`~forecaster.nn.gru.gru_step`); otherwise the cell runs the
    step on every row."""
    n_ch, n_out, seg = net.n_targets, net.n_out_segments, net.segment_length
    pos = net.position_embedding.unsqueeze(0).expand(n_ch, -1, -1)  # (C, m, H/2)
    chan = net.channel_embedding.unsqueeze(1).expand(-1, n_out, -1)  # (C, m, H/2)
    queries = torch.cat([pos, chan], dim=-1)  # (C, m, H)
    added = None
    if future is not None:  # each output segment's future covariates, embedded
        pad = n_out * seg - net.horizon
        if pad:
            future = F.pad(future, (0, 0, 0, pad))
        added = net.future_embedding(future.reshape(batch, n_out, seg * net.n_future))
    if unrolled.unrolls(net.rnn, queries):  # inference on the CPU: the fused call's values
        dec_out = unrolled.decode(net.rnn, queries, added, state)
    elif _broadcast_gru_step(net, queries):  # training: the step broadcast over repeated rows
        dec_in = queries if added is None else queries + added.unsqueeze(1)  # (B, C, m, H)
        rnn = net.rnn
        gi = F.linear(dec_in, rnn.weight_ih_l0, rnn.bias_ih_l0)  # (C, m, 3H) or (B, C, m, 3H)
        h = state[0].reshape(batch, n_ch, 1, net.hidden_size)  # type: ignore[union-attr]
        dec_out = gru_step(gi, h, rnn.weight_hh_l0, rnn.bias_hh_l0)  # (B, C, m, H)
        dec_out = dec_out.reshape(batch * n_ch * n_out, net.hidden_size)
    else:
        dec_in = queries if added is None else queries + added.unsqueeze(1)
        dec_in = dec_in.expand(batch, -1, -1, -1).reshape(batch * n_ch * n_out, 1, -1)
        dec_out = net.rnn(dec_in, repeat_state(state, n_out))[0].squeeze(1)  # (B*C*m, H)
    y = net.out(net.output_dropout(dec_out))  # (B*C*m, seg)
    return y.reshape(batch, n_ch, n_out * seg)[..., : net.horizon].transpose(1, 2)


def _broadcast_gru_step(net: Any, x: Tensor) -> bool:
    """Whether the decoder runs its step as :func:`~forecaster.nn.gru.gru_step`: a one-layer
    GRU on the CPU (on CUDA, cuDNN's fused GRU runs as before)."""
    return net.cell == "gru" and net.num_layers == 1 and x.device.type == "cpu"


def covariate_channels(n_past: int, n_targets: int, past_covariates: bool) -> int:
    """Past covariate channels the segment head reads: ``n_past - n_targets``, or 0 for a
    network built with ``past_covariates=False``."""
    return n_past - n_targets if past_covariates else 0


def _covariates(c: Mapping[str, Any]) -> int:
    n_past = c["n_features"] - c["n_future"]
    return covariate_channels(n_past, c["n_targets"], c.get("past_covariates", True))


def _embed_with_covariates(net: Any, series: Tensor, n_ch: int) -> Tensor:
    """``(B, C + K, n * seg)`` normalized (and padded) channels -> ``(B * C, n, H)``: each
    target segment's linear embedding plus the mean of its segment's embedded covariates (each
    times its channel's gains), then ReLU."""
    batch, channels, _ = series.shape
    n_seg, seg = net.n_segments, net.segment_length
    parts = series.reshape(batch, channels, n_seg, seg)
    targets = parts[:, :n_ch].reshape(batch * n_ch, n_seg, seg)
    covariates = F.linear(parts[:, n_ch:], net.covariate_embedding)  # (B, K, n, H)
    covariates = (covariates * net.covariate_gates[:, None, :]).mean(dim=1)  # (B, n, H)
    linear, activation = net.segment_embedding[0], net.segment_embedding[1]
    embedded = linear(targets).reshape(batch, n_ch, n_seg, -1) + covariates.unsqueeze(1)
    return activation(embedded.reshape(batch * n_ch, n_seg, -1))

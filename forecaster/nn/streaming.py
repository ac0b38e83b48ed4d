"""Incremental state of the ``"segment"`` head over a sliding window (for streaming).

:class:`SegmentStream` keeps, for every row (series) of a batch, what the segment head needs to
forecast from the latest ``lookback`` values, advanced by the new values only:

* a ring buffer of the latest ``lookback`` (scaled) target values per series and channel;
* running sums of the window (shifted by a per-series reference value) for the ``"revin"``
  mean and variance, and its last value for ``"last"``;
* the segment embedding's linear projection ``W @ segment`` of the segment ending at every
  step of the window, computed once when that step arrives.

The per-window normalisation is affine per channel (``xn = alpha * x + beta``), so the
embedding's pre-activation of a segment is ``alpha * (W @ x) + beta * W.sum(1) + b``: the
projections cached with the raw values stay valid as the window slides and its statistics
change. An update of ``k`` steps costs ``O(k * segment_length * hidden_size)`` whatever the
lookback. A forecast gathers the ``ceil(lookback / segment_length)`` cached projections of the
window's segments (they end at its last step, and every ``segment_length`` steps before it),
then runs the cell over those segment embeddings and the parallel decoder exactly as the head
does: a recurrent state cannot drop the window's oldest step, so the encoder's
``ceil(lookback / segment_length)`` cell steps are run again for each forecast.

The other heads read every step of the window with the window's normalisation from its first
step, so their cost per forecast is ``lookback`` cell steps, as ``predict``'s: they have no
incremental form (see :func:`check_streamable`).
"""

from __future__ import annotations

__all__ = ["SegmentStream", "check_streamable"]

from typing import Any

import numpy as np
import torch

from forecaster.exceptions import DataValidationError
from forecaster.nn.heads.segment import decode

_REVIN_EPS = 1e-5  # as forecaster.nn.normalization (the variance's epsilon)


def _members(net: Any) -> list[Any]:
    """The networks whose forecasts are averaged: an ensemble's members, or ``[net]``."""
    members = getattr(net, "_modules", {}).get("members")
    return list(members) if members is not None else [net]


def check_streamable(net: Any) -> None:
    """Raise :class:`~forecaster.exceptions.DataValidationError` unless ``net`` (a
    :class:`~forecaster.nn.recurrent.RecurrentNet` or an ensemble of them) has an exact
    incremental form: the ``"segment"`` head reading only its target channels.

    Examples
    --------
    >>> from forecaster.nn import RecurrentNet
    >>> check_streamable(RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2,
    ...                               hidden_size=4, segment_length=4))
    """
    if net.head != "segment":
        raise DataValidationError(
            f"Streaming needs head='segment'; this model has head={net.head!r}. Its encoder "
            f"runs the cell over every one of the lookback={net.lookback} steps of the window, "
            "from the window's first step and normalised by the window's statistics, and a "
            "recurrent state cannot drop the step that leaves the window: each forecast would "
            "cost the same lookback cell steps as predict, so there is no O(new steps) update "
            "that gives predict's forecast. Use predict(frame) for this model, or fit one with "
            "head='segment' (the default) to stream."
        )
    if net.n_features != net.n_targets:
        raise DataValidationError(
            f"Streaming supports models whose only inputs are the targets; this network reads "
            f"{net.n_features - net.n_targets} more columns (covariates, future covariates or "
            "calendar features), whose windows this stream does not keep. Use predict(frame), "
            "or fit a model without covariates and calendar features to stream."
        )
    if getattr(net, "static_cardinalities", None) or getattr(net, "n_static_numeric", 0):
        raise DataValidationError(
            "Streaming does not support static covariates yet: they set the encoder's initial "
            "state, which this stream does not carry. Use predict(frame), or fit a model "
            "without static_covariates to stream."
        )


class SegmentStream:
    """The streaming state of a ``"segment"``-head network over ``S`` series.

    Parameters
    ----------
    net : RecurrentNet or EnsembleNet
        A fitted network accepted by :func:`check_streamable` (on the CPU; it is put in
        evaluation mode).
    windows : numpy.ndarray
        The latest ``lookback`` network-scale values of every series, shape
        ``(S, lookback, n_targets)``.

    Attributes
    ----------
    steps_embedded : int
        How many steps' segment projections were computed so far (``(S) * (lookback -
        segment_length + 1)`` at the start, then one per new step): the work of the updates.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from forecaster.nn import RecurrentNet
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=3, hidden_size=4,
    ...                    segment_length=4).eval()
    >>> series = np.random.default_rng(0).normal(size=(2, 12, 1))
    >>> state = SegmentStream(net, series[:, :8])
    >>> state.update(np.repeat([0, 1], 4), series[:, 8:].reshape(-1, 1))
    >>> expected = net(torch.from_numpy(series[:, 4:]).float()).detach().double().numpy()
    >>> bool(np.allclose(state.forecast(), expected, atol=1e-5))
    True
    """

    def __init__(self, net: Any, windows: np.ndarray) -> None:
        check_streamable(net)
        self.members = _members(net.eval())
        first = self.members[0]
        self.lookback, self.seg = int(first.lookback), int(first.segment_length)
        self.mode = str(first.normalization)
        windows = np.asarray(windows, dtype=np.float64)
        n_series, _, n_ch = windows.shape
        self.values = windows.copy()
        self.pos = np.zeros(n_series, dtype=np.int64)  # slot of the oldest value
        self.ref = windows[:, -1, :].copy()
        shifted = windows - self.ref[:, None, :]
        self.s1, self.s2 = shifted.sum(axis=1), (shifted**2).sum(axis=1)
        self.weights = []
        for member in self.members:
            linear = member.segment_embedding[0]
            w = linear.weight.detach().double().cpu().numpy()  # (H, seg)
            b = linear.bias.detach().double().cpu().numpy()
            self.weights.append((w, b, w.sum(axis=1)))
        hidden = self.weights[0][0].shape[0]
        self.proj = [np.zeros((n_series, self.lookback, n_ch, hidden)) for _ in self.members]
        self.steps_embedded = 0
        if self.lookback >= self.seg:  # projections of the full segments inside the window
            ends = np.arange(self.seg - 1, self.lookback)
            series = np.repeat(np.arange(n_series), len(ends))
            self._project(series, np.tile(ends, n_series))

    def _project(self, series: np.ndarray, slots: np.ndarray) -> None:
        """Cache ``W @ segment`` of the segments ending at ``slots`` of ``series``."""
        taps = (slots[:, None] - self.seg + 1 + np.arange(self.seg)) % self.lookback
        segments = self.values[series[:, None], taps]  # (R, seg, C)
        for cache, (w, _, _) in zip(self.proj, self.weights, strict=True):
            cache[series, slots] = np.einsum("rsc,hs->rch", segments, w)
        self.steps_embedded += len(series)

    def update(self, series: np.ndarray, values: np.ndarray) -> None:
        """Advance the series ``series`` (one entry per new row, each series' rows together
        and in time order) by ``values`` (network-scale, shape ``(R, n_targets)``)."""
        series = np.asarray(series, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if not len(series):
            return
        counts = np.bincount(series, minlength=len(self.pos))
        starts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
        rank = np.arange(len(series)) - np.repeat(starts, np.diff(np.r_[starts, len(series)]))
        drop = np.maximum(counts - self.lookback, 0)  # older rows never reach the window
        keep = rank >= drop[series]
        series, values, rank = series[keep], values[keep], rank[keep] - drop[series[keep]]
        slots = (self.pos[series] + rank) % self.lookback
        ref = self.ref[series]
        old = self.values[series, slots] - ref
        new = values - ref
        np.add.at(self.s1, series, new - old)
        np.add.at(self.s2, series, new**2 - old**2)
        self.values[series, slots] = values
        if self.lookback >= self.seg:
            self._project(series, slots)
        self.pos = (self.pos + np.bincount(series, minlength=len(self.pos))) % self.lookback

    def _affine(self, member: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """``alpha``, ``beta`` (S, C) of the window normalisation ``alpha * x + beta``, and the
        statistics that invert it (None for ``"none"``)."""
        n_series, n_ch = self.s1.shape
        if self.mode == "none":
            return np.ones((n_series, n_ch)), np.zeros((n_series, n_ch)), None
        if self.mode == "last":
            last = self.values[np.arange(n_series), (self.pos - 1) % self.lookback]
            return np.ones_like(last), -last, (last, np.ones_like(last))
        mean = self.ref + self.s1 / self.lookback
        var = np.maximum(self.s2 / self.lookback - (self.s1 / self.lookback) ** 2, 0.0)
        std = np.sqrt(var + _REVIN_EPS)
        weight = member.norm.affine_weight.detach().double().cpu().numpy()
        bias = member.norm.affine_bias.detach().double().cpu().numpy()
        return weight / std, bias - weight * mean / std, (mean, std)

    def _embeddings(self, k: int, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """The segment embeddings of the window, ``(S, C, n_segments, H)``, for member ``k``."""
        w, b, w_sum = self.weights[k]
        n_series = len(self.pos)
        rows = np.arange(n_series)[:, None]
        n_full = self.lookback // self.seg
        ends = self.lookback - 1 - self.seg * np.arange(n_full)[::-1]  # window positions
        z = self.proj[k][rows, (self.pos[:, None] + ends) % self.lookback]  # (S, n, C, H)
        pad = -self.lookback % self.seg
        if pad:  # the first segment: the window's first value repeated, then its start
            taps = np.r_[np.zeros(pad, dtype=np.int64), np.arange(self.seg - pad)]
            first = self.values[rows, (self.pos[:, None] + taps) % self.lookback]  # (S, seg, C)
            z = np.concatenate([np.einsum("rsc,hs->rch", first, w)[:, None], z], axis=1)
        pre = alpha[:, None, :, None] * z + beta[:, None, :, None] * w_sum + b
        return np.maximum(pre, 0.0).transpose(0, 2, 1, 3)

    @torch.no_grad()
    def forecast(self) -> np.ndarray:
        """The network-scale forecast ``(S, horizon, n_targets)`` from the latest window of
        every series (the mean over an ensemble's members)."""
        outputs = [self._forecast_member(k, m) for k, m in enumerate(self.members)]
        return np.mean(outputs, axis=0)

    def _forecast_member(self, k: int, net: Any) -> np.ndarray:
        alpha, beta, stats = self._affine(net)
        emb = self._embeddings(k, alpha, beta)
        n_series, n_ch, n_seg, hidden = emb.shape
        dtype = next(net.parameters()).dtype
        inputs = torch.from_numpy(emb.reshape(n_series * n_ch, n_seg, hidden)).to(dtype)
        _, state = net.rnn(inputs)
        y = decode(net, state, n_series, None)
        if stats is not None:
            loc, scale = (torch.from_numpy(s[:, None, :]).to(dtype) for s in stats)
            y = net.norm.inverse(y, (loc, scale))
        out = y.double().numpy()
        if getattr(net, "linear_skip", False):
            out = out + self._skip(net)
        return out

    def _skip(self, net: Any) -> np.ndarray:
        """The network's linear skip ``(S, horizon, n_targets)`` of every latest window (see
        :meth:`RecurrentNet._skip <forecaster.nn.recurrent.RecurrentNet>`)."""
        rows = np.arange(len(self.pos))[:, None]
        window = self.values[rows, (self.pos[:, None] + np.arange(self.lookback)) % self.lookback]
        deviations = window - window[:, -1:, :]  # (S, L, C)
        weight = net.skip_weight.detach().double().cpu().numpy()  # (horizon, L)
        bias = net.skip_bias.detach().double().cpu().numpy()
        return np.einsum("slc,hl->shc", deviations, weight) + bias[None, :, None]

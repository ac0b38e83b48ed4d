"""A one-layer GRU written out for the CPU, for the ``"segment"`` head.

On the CPU, PyTorch's ``nn.GRU`` builds its recurrence from small operations that autograd
records one by one; in a training step of the default segment network (ETTh1, 7 channels,
batch 256: 1,792 rows, 14 segments) about three quarters of the time went to those element-wise
operations and the copies between them (the ``cat`` that joins the three gates' gradients
alone was 16 %), a quarter to the matrix products. :func:`gru_last_state` computes the same
recurrence with a backward pass written by hand (:class:`GRURecurrence`): the gates' gradients
are written in place into one buffer, and the recurrent weight's gradient is one matrix product
over all steps instead of one per step.

:func:`gru_step` is one GRU step whose input and previous state broadcast against each other:
the segment head's decoder feeds every (window, channel) state the same ``n_out`` positional
inputs, so the input projection is computed once per (channel, position) and the recurrent
projection once per state, instead of once per (window, channel, position).

Both compute PyTorch's GRU equations (gates in its ``r, z, n`` order, reading its
``weight_ih_l0`` / ``weight_hh_l0`` / ``bias_ih_l0`` / ``bias_hh_l0``) and agree with ``nn.GRU``
to float rounding; the parameters stay those of the network's ``nn.GRU``, so saved models are
unchanged.
"""

from __future__ import annotations

__all__ = ["GRURecurrence", "gru_last_state", "gru_step"]

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step from the input projection ``gi = x @ W_ih.T + b_ih`` (``(..., 3H)``) and the
    previous state ``h`` (``(..., H)``); their leading axes broadcast (the result has the
    broadcast shape).

    Examples
    --------
    >>> import torch
    >>> gru = torch.nn.GRU(3, 4, batch_first=True)
    >>> x, h = torch.randn(5, 1, 3), torch.randn(1, 5, 4)
    >>> gi = torch.nn.functional.linear(x[:, 0], gru.weight_ih_l0, gru.bias_ih_l0)
    >>> step = gru_step(gi, h[0], gru.weight_hh_l0, gru.bias_hh_l0)
    >>> torch.allclose(step, gru(x, h)[1][0], atol=1e-6)
    True
    """
    hidden = h.shape[-1]
    gh = F.linear(h, w_hh, b_hh)
    rz = torch.sigmoid(gi[..., : 2 * hidden] + gh[..., : 2 * hidden])
    r, z = rz[..., :hidden], rz[..., hidden:]
    n = torch.tanh(torch.addcmul(gi[..., 2 * hidden :], r, gh[..., 2 * hidden :]))
    return torch.addcmul(n, z, h - n)  # (1 - z) * n + z * h


def gru_last_state(gi: Tensor, h0: Tensor | None, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """The last state ``(rows, H)`` of a GRU run over ``gi = x @ W_ih.T + b_ih``, shape
    ``(steps, rows, 3H)`` (time first), from ``h0`` (``(rows, H)``; None: zeros).

    Examples
    --------
    >>> import torch
    >>> gru = torch.nn.GRU(3, 4, batch_first=True)
    >>> x = torch.randn(5, 6, 3)
    >>> gi = torch.nn.functional.linear(x.transpose(0, 1), gru.weight_ih_l0, gru.bias_ih_l0)
    >>> last = gru_last_state(gi, None, gru.weight_hh_l0, gru.bias_hh_l0)
    >>> torch.allclose(last, gru(x)[1][0], atol=1e-6)
    True
    """
    if h0 is None:
        h0 = gi.new_zeros(gi.shape[1], w_hh.shape[1])
    if not torch.is_grad_enabled() or not (
        gi.requires_grad or h0.requires_grad or w_hh.requires_grad or b_hh.requires_grad
    ):
        h = h0
        for t in range(gi.shape[0]):
            h = gru_step(gi[t], h, w_hh, b_hh)
        return h
    return GRURecurrence.apply(gi.contiguous(), h0, w_hh, b_hh)


class GRURecurrence(torch.autograd.Function):
    """The GRU recurrence over a time-first ``gi`` with a hand-written backward pass (see the
    module): ``apply(gi, h0, w_hh, b_hh)`` is the last state."""

    @staticmethod
    def forward(ctx: Any, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:  # type: ignore[override]
        steps, rows, three_h = gi.shape
        hidden = three_h // 3
        hs = gi.new_empty(steps + 1, rows, hidden)  # the state before each step, and the last
        ghn = gi.new_empty(steps, rows, hidden)  # W_hn h + b_hn
        rz = gi.new_empty(steps, rows, 2 * hidden)  # the reset and update gates
        n = gi.new_empty(steps, rows, hidden)  # the candidate state
        hs[0] = h0
        w_t = w_hh.t()
        for t in range(steps):
            gh = torch.addmm(b_hh, hs[t], w_t)
            torch.add(gi[t, :, : 2 * hidden], gh[:, : 2 * hidden], out=rz[t]).sigmoid_()
            ghn[t] = gh[:, 2 * hidden :]
            r, z = rz[t, :, :hidden], rz[t, :, hidden:]
            torch.addcmul(gi[t, :, 2 * hidden :], r, ghn[t], out=n[t]).tanh_()
            torch.addcmul(n[t], z, hs[t] - n[t], out=hs[t + 1])
        ctx.save_for_backward(w_hh, hs, ghn, rz, n)
        return hs[steps].clone()

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # type: ignore[override]
        w_hh, hs, ghn, rz, n = ctx.saved_tensors
        steps, rows, hidden = n.shape
        h_prev = hs[:steps]
        r, z = rz[..., :hidden], rz[..., hidden:]
        rz_slope = rz * (1.0 - rz)  # sigmoid'
        # the local derivatives of all steps at once: h = n + z * (h_prev - n),
        # n = tanh(gi_n + r * gh_n), r and z sigmoids of gi + gh
        to_n = (1.0 - z) * (1.0 - n * n)  # d h / d (gi_n)
        to_r = ghn * rz_slope[..., :hidden]  # d (gi_n) / d (gi_r)
        to_z = (h_prev - n) * rz_slope[..., hidden:]  # d h / d (gi_z)
        d_gi = n.new_empty(steps, rows, 3 * hidden)  # also d (gh_r, gh_z)
        d_ghn = n.new_empty(steps, rows, hidden)
        w_rz, w_n = w_hh[: 2 * hidden], w_hh[2 * hidden :]
        dh = grad_h
        for t in reversed(range(steps)):
            d_n = torch.mul(dh, to_n[t], out=d_gi[t, :, 2 * hidden :])
            torch.mul(d_n, to_r[t], out=d_gi[t, :, :hidden])
            torch.mul(dh, to_z[t], out=d_gi[t, :, hidden : 2 * hidden])
            torch.mul(d_n, r[t], out=d_ghn[t])
            dh = torch.addmm(torch.addmm(dh * z[t], d_gi[t, :, : 2 * hidden], w_rz), d_ghn[t], w_n)
        flat_prev = h_prev.reshape(steps * rows, hidden)
        flat_rz = d_gi[..., : 2 * hidden].reshape(steps * rows, 2 * hidden)
        flat_n = d_ghn.reshape(steps * rows, hidden)
        d_w_hh = torch.cat([flat_rz.t() @ flat_prev, flat_n.t() @ flat_prev])
        d_b_hh = torch.cat([flat_rz.sum(0), flat_n.sum(0)])
        return d_gi, dh, d_w_hh, d_b_hh

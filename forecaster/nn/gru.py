"""One GRU step whose inputs and previous states broadcast against each other, for the
``"segment"`` head's parallel decoder.

The decoder runs one cell step for every (window, channel, output segment) row. Its input is
the same for every window (the output segment's position and the channel's embeddings, when
there are no future covariates) and its previous state the same for every output segment of a
(window, channel) (the encoder's final state). ``nn.GRU`` computes both projections on every
row; :func:`gru_step` computes the input projection once per (channel, output segment) and the
recurrent projection once per (window, channel) and broadcasts them in the gates: on ETTh1-M
(7 channels, horizon 96 in 4 output segments, batch 256) the decoder's matrix products shrink
from 7,168 rows each to 28 and 1,792, and its forward and backward pass took about a quarter of
the time on the CPU. The equations are PyTorch's (gates in its ``r, z, n`` order, reading
``weight_ih_l0`` / ``weight_hh_l0`` / ``bias_ih_l0`` / ``bias_hh_l0``) and agree with ``nn.GRU``
to float rounding; the parameters stay those of the network's ``nn.GRU``, so saved models are
unchanged.

A written-out encoder recurrence (the same equations with a hand-written backward pass) was
tried and dropped: on the 2-core CPU it was no faster than ``nn.GRU`` (one thread: 20 % more
CPU time; two threads: within the noise).
"""

from __future__ import annotations

__all__ = ["gru_step"]

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

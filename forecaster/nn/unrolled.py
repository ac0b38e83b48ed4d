"""The segment head's recurrent calls at inference, unrolled step by step on the CPU.

The segment head runs its cell twice: over a window's few segments (the encoder) and one step
per output segment (the decoder). Without gradients, on the CPU, :func:`encode` and
:func:`decode` compute what the fused ``nn.GRU`` / ``nn.RNN`` call computes, with the same ATen
operations in the same order (the input projections of a layer for all steps in one matrix
product, then one cell step at a time; bit-identical), and skip two kinds of work that the
fused call cannot see:

* the encoder's first hidden projection when it starts from the zero state: ``W_hh @ 0 +
  b_hh`` is ``b_hh``, exactly;
* the decoder's repeated rows: every (window, channel) row is decoded for each of the ``m``
  output segments from the same state, and without future covariates every window gets the
  same ``(channel, segment)`` inputs; the hidden projection is computed once per (window,
  channel) row and the first layer's input projection once per (channel, segment) instead
  of once per (window, channel, segment).

On the default network (GRU, hidden 128, 4 input segments, 1 output segment) that is about a
fifth of the forward's arithmetic. At inference on the CPU, a segment network (any cell) runs
a batch of fewer than :data:`MIN_BATCH_ROWS` windows as copies of them (:func:`row_copies`, in
:meth:`RecurrentNet.forward <forecaster.nn.recurrent.RecurrentNet.forward>`, before the
statics are encoded), so that a window's forecast is the same bits in a batch of any size
(BLAS and oneDNN add up products of a few rows in another order). Validation passes
during training (eval mode, no gradients) take this path too, with the same values. Anything
else takes the fused call: gradients (training is unchanged), training mode, another device or
dtype, CPU autocast, and the LSTM, whose CPU kernel is oneDNN's (another summation order:
unrolling it would change its forecasts in the last bits).
"""

from __future__ import annotations

__all__ = [
    "BLOCK_ROWS",
    "MIN_BATCH_ROWS",
    "MIN_PROJECTION_ROWS",
    "cpu_inference",
    "decode",
    "encode",
    "row_blocks",
    "row_copies",
    "unrolls",
]

import itertools
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecaster.nn.cells import RecurrentState, repeat_state

MIN_PROJECTION_ROWS = 16
"""Fewest rows a deduplicated input projection is computed on (unless the fused call has fewer):
BLAS may take another kernel (another summation order, last-bit differences) for a product of
1 to 3 rows than for more, so a few copies of the rows are multiplied, keeping the forecasts
those of the fused call."""

BLOCK_ROWS = 1024
"""Most windows a head runs through its unrolled cell at once: a larger batch is run in even
blocks of at most this many rows (each window's values are the same: every operation is row by
row, and no block has fewer than :data:`MIN_PROJECTION_ROWS` rows), so that the gates of a
block stay in the CPU's cache between the cell's element-wise operations (about a fifth less
time per window than one block of 5,000 windows for the default network)."""

MIN_BATCH_ROWS = 16
"""Fewest windows a segment network runs at once at inference on the CPU (:func:`cpu_inference`;
:meth:`SegmentHead.copies_few_windows
<forecaster.nn.heads.segment.SegmentHead.copies_few_windows>`): a smaller batch runs as copies
of its windows up to at least this many rows (:func:`row_copies`, before the statics are
encoded), the forecasts read from the first copy. BLAS and oneDNN take other kernels for
products of a few rows (another summation order), so without the copies the last bits of a
window's forecast depended on how many windows it was forecast with: ``predict(frame,
cutoff=t)`` of a panel of 5 series differed from the same origins in a backtest or a list of
cutoffs (one batch of all their windows). With them every batch gives the bits of a large
batch: checked for 1 to 64 windows and blocks of 1,000 to 5,000 at one, two, four and eight
threads (GRU and RNN, with future covariates), and for 1 to 40 windows with numeric statics and
with the LSTM at one and two threads. Fewer copies do not suffice: at two threads batches of 9
to 11 windows differ from a large batch. The copies cost the forward of 16 windows (on the
default network about 0.3 ms more for one window); the streaming forecasts
(:mod:`~forecaster.nn.streaming`) make their own cell calls, without them. The other heads make
no copies (they would multiply the forward's time; see :meth:`Head.copies_few_windows
<forecaster.nn.heads.base.Head.copies_few_windows>`)."""

Step = Callable[[Tensor, Tensor, Tensor], Tensor]


def row_copies(rows: int) -> int:
    """How many copies of a batch of ``rows`` windows a network runs (:data:`MIN_BATCH_ROWS`):
    1 for a batch that has as many rows, or none.

    Examples
    --------
    >>> [row_copies(n) for n in (0, 1, 5, 15, 16, 100)]
    [1, 16, 4, 2, 1, 1]
    """
    return -(-MIN_BATCH_ROWS // rows) if 0 < rows < MIN_BATCH_ROWS else 1


def row_blocks(rows: int) -> list[slice]:
    """``rows`` windows in even blocks of at most :data:`BLOCK_ROWS` (one block when fewer).

    Examples
    --------
    >>> [(b.start, b.stop) for b in row_blocks(2500)]
    [(0, 833), (833, 1666), (1666, 2500)]
    """
    parts = -(-rows // BLOCK_ROWS)
    if parts <= 1:
        return [slice(0, rows)]
    bounds = [rows * k // parts for k in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def cpu_inference(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module`` runs ``x`` at inference on the CPU: no gradients, eval mode, float32
    on the CPU without autocast."""
    return (
        not torch.is_grad_enabled()
        and not module.training
        and x.device.type == "cpu"
        and not torch.is_autocast_enabled("cpu")  # its casts would differ from the fused call's
        and x.dtype == torch.float32
    )


def unrolls(rnn: nn.Module, x: Tensor) -> bool:
    """Whether :func:`encode` and :func:`decode` unroll ``rnn`` for the input ``x`` (else they
    make the fused call): at inference on the CPU (:func:`cpu_inference`), a one-way GRU or
    RNN with biases."""
    return (
        cpu_inference(rnn, x)
        and isinstance(rnn, nn.RNNBase)
        and rnn.mode in _STEPS
        and rnn.batch_first
        and rnn.bias
        and not rnn.bidirectional
    )


def encode(rnn: nn.RNNBase, inputs: Tensor, state: RecurrentState | None) -> RecurrentState:
    """The final state ``(layers, B, H)`` (``(h, c)`` for an LSTM) of ``rnn`` run over
    ``inputs`` ``(B, T, I)`` from ``state`` (None: zeros), as ``rnn(inputs, state)[1]``."""
    if not unrolls(rnn, inputs):
        return rnn(inputs, state)[1]
    step, state = _STEPS[rnn.mode], cast(Tensor | None, state)  # unrolled: not an LSTM
    layer_input = inputs.transpose(0, 1)  # (T, B, I), as the fused call reads it
    finals = []
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = _weights(rnn, layer)
        gates_in = F.linear(layer_input, w_ih, b_ih)  # every step's input projection at once
        h = None if state is None else state[layer]
        outputs = []  # the layer's output sequence: the next layer's input
        for t in range(gates_in.shape[0]):
            if h is None:  # the zero state: its hidden projection is the bias
                h = gates_in.new_zeros(gates_in.shape[1], rnn.hidden_size)
                gates_h = b_hh.expand(gates_in.shape[1], -1).clone()
            else:
                gates_h = torch.addmm(b_hh, h, w_hh.t())
            h = step(gates_in[t], gates_h, h)
            if layer + 1 < rnn.num_layers:
                outputs.append(h)
        finals.append(h)
        layer_input = torch.stack(outputs) if outputs else layer_input
    return torch.stack(cast(list[Tensor], finals))


def decode(
    rnn: nn.RNNBase,
    queries: Tensor,
    added: Tensor | None,
    state: RecurrentState,
) -> Tensor:
    """The decoder's outputs ``(B * C * m, H)`` (last layer): one step of ``rnn`` per row
    ``(b * C + c) * m + j`` from the state of row ``b * C + c`` of ``state`` (``(layers,
    B * C, H)``), with input ``queries[c, j]`` (``(C, m, I)``) plus ``added[b, j]``
    (``(B, m, I)``, or None), as the fused call on those rows computes it."""
    n_rows = _hidden(state).shape[1]
    n_ch, m, size = queries.shape
    batch = n_rows // n_ch
    if not unrolls(rnn, queries):
        inputs = queries.unsqueeze(0).expand(batch, -1, -1, -1)
        if added is not None:
            inputs = inputs + added.unsqueeze(1)
        out, _ = rnn(inputs.reshape(batch * n_ch * m, 1, size), repeat_state(state, m))
        return out.squeeze(1)
    step, state = _STEPS[rnn.mode], cast(Tensor, state)  # unrolled: not an LSTM
    output = queries  # unused: layer 0 projects the queries (and added) itself
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = _weights(rnn, layer)
        if layer == 0:
            gates_in = _first_projection(queries, added, w_ih, b_ih, batch)
        else:
            gates_in = F.linear(output.unsqueeze(0), w_ih, b_ih)[0]
        h = state[layer]
        gates_h = torch.addmm(b_hh, h, w_hh.t())
        if m > 1:  # one output segment (the default): each row's own state, no copy
            gates_h, h = gates_h.repeat_interleave(m, dim=0), h.repeat_interleave(m, dim=0)
        output = step(gates_in, gates_h, h)
    return output


def _first_projection(
    queries: Tensor, added: Tensor | None, w_ih: Tensor, b_ih: Tensor, batch: int
) -> Tensor:
    """The first layer's input projection of every decoder row ``(B * C * m, G * H)``:
    without ``added``, computed once per (channel, segment) and repeated over the windows."""
    n_ch, m, size = queries.shape
    if added is not None:
        inputs = (queries.unsqueeze(0) + added.unsqueeze(1)).reshape(1, batch * n_ch * m, size)
        return F.linear(inputs, w_ih, b_ih)[0]
    rows = queries.reshape(n_ch * m, size)
    copies = min(batch, -(-MIN_PROJECTION_ROWS // rows.shape[0]))  # the fused call's rows if fewer
    projected = F.linear(rows.repeat(copies, 1).unsqueeze(0), w_ih, b_ih)[0, : rows.shape[0]]
    return projected.unsqueeze(0).expand(batch, -1, -1).reshape(batch * n_ch * m, -1)


def _weights(rnn: nn.RNNBase, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return tuple(getattr(rnn, f"{name}_l{layer}") for name in _WEIGHTS)  # type: ignore[return-value]


_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _hidden(state: RecurrentState) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


def _gru_step(gates_in: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
    """ATen's CPU GRU cell on precomputed gates (``gates_h`` is overwritten)."""
    i_r, i_z, i_n = gates_in.unsafe_chunk(3, 1)
    h_r, h_z, h_n = gates_h.unsafe_chunk(3, 1)
    reset = h_r.add_(i_r).sigmoid_()
    update = h_z.add_(i_z).sigmoid_()
    new = i_n.add(h_n.mul_(reset)).tanh_()
    return (h - new).mul_(update).add_(new)


def _rnn_step(activation: Callable[[Tensor], Tensor]) -> Step:
    def step(gates_in: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
        return activation(gates_h.add_(gates_in))

    return step


_STEPS: dict[str, Step] = {
    "GRU": _gru_step,
    "RNN_TANH": _rnn_step(torch.tanh),
    "RNN_RELU": _rnn_step(torch.relu),
}

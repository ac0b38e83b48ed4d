"""The segment head's unrolled inference path (forecaster/nn/unrolled.py): the same forecasts
as the fused cell call, bit for bit, and the fused call wherever it does not apply."""

from __future__ import annotations

import pytest
import torch

import forecaster.nn.heads.segment as segment
import forecaster.nn.unrolled as unrolled
from forecaster.nn import RecurrentNet


def _net(cell: str, **config: object) -> RecurrentNet:
    torch.manual_seed(0)
    base = {"n_features": 2, "n_targets": 1, "lookback": 48, "horizon": 24, "hidden_size": 16}
    return RecurrentNet(cell=cell, **{**base, **config}).eval()  # type: ignore[arg-type]


def _fused(monkeypatch: pytest.MonkeyPatch, net: RecurrentNet, *inputs: object) -> torch.Tensor:
    """The forecast with the fused cell call only (neither unrolled nor the training path's
    broadcast decoder step)."""
    with monkeypatch.context() as patch:
        patch.setattr(unrolled, "unrolls", lambda rnn, x: False)
        patch.setattr(segment, "_broadcast_gru_step", lambda net, x: False)
        return net(*inputs)


@pytest.mark.parametrize(
    ("cell", "config"),
    [
        ("gru", {}),
        ("gru", {"num_layers": 2}),
        ("gru", {"n_features": 4, "n_targets": 3}),  # three channels and a covariate
        ("gru", {"horizon": 50, "segment_length": 12}),  # five output segments, padded
        ("gru", {"n_features": 3, "n_future": 1}),  # the decoder's inputs differ per window
        ("gru", {"n_static_numeric": 2}),  # the encoder starts from the statics' state
        ("rnn", {"num_layers": 2, "n_targets": 2}),
        ("rnn", {"nonlinearity": "relu"}),
    ],
)
def test_unrolled_forecasts_are_the_fused_calls_bit_for_bit(monkeypatch, cell, config):
    net = _net(cell, **config)
    n_static = int(config.get("n_static_numeric", 0))
    x = torch.randn(37, 48, net.n_features + n_static) * 5 + 20
    future = torch.randn(37, net.horizon, net.n_future) if net.n_future else None
    with torch.no_grad():
        assert unrolled.unrolls(net.rnn, x)
        got = net(x, future)
        expected = _fused(monkeypatch, net, x, future)
    assert got.shape == (37, net.horizon, net.n_targets)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("batch", [1, 2, 3, 5, 16, 17])
def test_inference_mode_and_small_batches_unroll_too(monkeypatch, batch):
    """A batch under MIN_BATCH_ROWS runs as copies of its windows: the fused call's forecasts
    of those copies (its first)."""
    net = _net("gru")
    x = torch.randn(batch, 48, 2)
    copies = unrolled.row_copies(batch)
    assert copies * batch >= unrolled.MIN_BATCH_ROWS
    with torch.inference_mode():
        expected = _fused(monkeypatch, net, x.repeat(copies, 1, 1))[:batch]
        assert torch.equal(net(x), expected)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_a_windows_forecast_is_the_same_bits_in_a_batch_of_any_size(cell):
    """The first windows of a large batch forecast alone, or a few together, give the large
    batch's bits: BLAS's kernels for products of a few rows add up in another order, and a
    panel of a few series forecast from one cutoff differed in the last bits from the same
    origins in a backtest (one batch of all its folds' windows)."""
    net = _net(cell, n_features=1, lookback=96, hidden_size=128)
    x = torch.randn(64, 96, 1) * 5 + 20
    with torch.inference_mode():
        whole = net(x)
        differ = [n for n in range(1, 16) if not torch.equal(net(x[:n]), whole[:n])]
    assert differ == []


def test_the_fused_call_runs_where_unrolling_does_not_apply(monkeypatch):
    """Training (gradients or train mode), other dtypes, autocast and the LSTM (oneDNN's
    kernel) keep the fused call: unrolls says no, and the outputs are the fused call's."""
    net = _net("gru")
    x = torch.randn(8, 48, 2)
    assert not unrolled.unrolls(net.rnn, x)  # gradients enabled
    with torch.no_grad():
        assert not unrolled.unrolls(net.rnn, x.double())
        assert not unrolled.unrolls(net.train().rnn, x)
        net.eval()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not unrolled.unrolls(net.rnn, x)
        lstm = _net("lstm")
        assert not unrolled.unrolls(lstm.rnn, x)
        assert torch.equal(lstm(x), _fused(monkeypatch, lstm, x))
    loss = net.training_loss(x, None, torch.randn(8, 24, 1))
    loss.backward()  # the training path still builds the graph
    assert net.rnn.weight_hh_l0.grad is not None


def test_unrolled_inference_skips_work(monkeypatch):
    """The two savings are real: the encoder skips the zero state's hidden product and the
    decoder projects its shared inputs once (counted as matrix-product rows)."""
    net = _net("gru", horizon=48)  # two output segments
    rows: list[int] = []
    real_linear, real_addmm = unrolled.F.linear, torch.addmm

    def linear(x, w, b=None):
        rows.append(x.reshape(-1, x.shape[-1]).shape[0])
        return real_linear(x, w, b)

    def addmm(bias, x, w):
        rows.append(x.shape[0])
        return real_addmm(bias, x, w)

    monkeypatch.setattr(unrolled.F, "linear", linear)
    monkeypatch.setattr(unrolled.torch, "addmm", addmm)
    with torch.no_grad():
        net(torch.randn(100, 48, 2))
    # the covariate's and the target's segment embeddings (2 segments per window: 200 rows
    # each); the encoder's input products
    # (200 rows) and 1 hidden product (the first is the bias's); the decoder's 2 shared inputs
    # (MIN_PROJECTION_ROWS rows) and 1 hidden product per window, where the fused call takes 2
    # per window for each; the output layer (200 rows)
    assert rows == [200, 200, 200, 100, unrolled.MIN_PROJECTION_ROWS, 100, 200]


@pytest.mark.parametrize(
    ("cell", "config"),
    [
        ("gru", {}),
        ("gru", {"n_features": 3, "n_future": 1}),  # the decoder's inputs differ per window
        ("gru", {"n_static_numeric": 2}),  # each block starts from its windows' static state
        ("rnn", {"num_layers": 2, "n_targets": 2}),
    ],
)
def test_large_batches_run_in_cache_sized_blocks(monkeypatch, cell, config):
    """A batch larger than BLOCK_ROWS runs through the head in even blocks (none smaller than
    MIN_PROJECTION_ROWS), with the forecasts of one call on the whole batch, bit for bit."""
    net = _net(cell, **config)
    n_static = int(config.get("n_static_numeric", 0))
    x = torch.randn(100, 48, net.n_features + n_static) * 5 + 20
    future = torch.randn(100, net.horizon, net.n_future) if net.n_future else None
    with torch.inference_mode():
        whole = net(x, future)  # 100 <= BLOCK_ROWS: one block
        expected = _fused(monkeypatch, net, x, future)
        batches: list[int] = []
        real_encode = unrolled.encode

        def encode(rnn, inputs, state):
            batches.append(inputs.shape[0] // net.n_targets)
            return real_encode(rnn, inputs, state)

        monkeypatch.setattr(unrolled, "encode", encode)
        monkeypatch.setattr(unrolled, "BLOCK_ROWS", 32)
        got = net(x, future)
    assert batches == [25, 25, 25, 25]
    assert torch.equal(got, whole)
    assert torch.equal(got, expected)
    assert [(b.start, b.stop) for b in unrolled.row_blocks(65)] == [(0, 21), (21, 43), (43, 65)]
    assert unrolled.row_blocks(32) == [slice(0, 32)]

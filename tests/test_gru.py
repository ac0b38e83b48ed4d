"""Tests for forecaster.nn.gru: the written-out GRU agrees with ``nn.GRU`` (values and
gradients), and the segment head gives the same forecasts and gradients through it as through
``nn.GRU`` (the path it took before, and still takes on CUDA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import forecaster.nn.heads.segment as segment
from forecaster.nn import RecurrentNet
from forecaster.nn.gru import gru_last_state, gru_step


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _gru_weights(gru: torch.nn.GRU) -> tuple[torch.Tensor, ...]:
    return gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0


def _written_out(x: torch.Tensor, h0: torch.Tensor, gru: torch.nn.GRU) -> torch.Tensor:
    w_ih, b_ih, w_hh, b_hh = _gru_weights(gru)
    gi = F.linear(x.transpose(0, 1), w_ih, b_ih)
    return gru_last_state(gi, h0, w_hh, b_hh)


def test_gru_last_state_passes_gradcheck_in_float64() -> None:
    gru = torch.nn.GRU(3, 4, batch_first=True).double()
    x = torch.randn(5, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)

    def last(x: torch.Tensor, h0: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        w_ih, b_ih, w_hh, b_hh = weights
        return gru_last_state(F.linear(x.transpose(0, 1), w_ih, b_ih), h0, w_hh, b_hh)

    assert torch.autograd.gradcheck(last, (x, h0, *_gru_weights(gru)))


@pytest.mark.parametrize("with_h0", [False, True])
def test_gru_last_state_matches_nn_gru_values_and_gradients(with_h0: bool) -> None:
    gru = torch.nn.GRU(8, 16, batch_first=True)
    x = torch.randn(32, 7, 8, requires_grad=True)
    h0 = torch.randn(32, 16, requires_grad=True) if with_h0 else None
    ours = _written_out(x, h0, gru)  # type: ignore[arg-type]
    theirs = gru(x, None if h0 is None else h0[None])[1][0]
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    inputs = [x, *_gru_weights(gru)] + ([h0] if h0 is not None else [])
    weights = torch.randn(32, 16)  # a loss that weighs every output differently
    ours_grad = torch.autograd.grad((ours * weights).sum(), inputs)
    theirs_grad = torch.autograd.grad((theirs * weights).sum(), inputs)
    for a, b in zip(ours_grad, theirs_grad, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_gru_last_state_without_gradients_matches_nn_gru() -> None:
    gru = torch.nn.GRU(8, 16, batch_first=True)
    x = torch.randn(4, 5, 8)
    with torch.no_grad():
        ours = _written_out(x, None, gru)  # type: ignore[arg-type]
        theirs = gru(x)[1][0]
    assert not ours.requires_grad
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_gru_step_broadcasts_inputs_against_states() -> None:
    gru = torch.nn.GRU(6, 10, batch_first=True)
    w_ih, b_ih, w_hh, b_hh = _gru_weights(gru)
    inputs = torch.randn(3, 4, 6)  # (C, m, in): the same for every state
    states = torch.randn(5, 3, 1, 10)  # (B, C, 1, H): the same for every position
    step = gru_step(F.linear(inputs, w_ih, b_ih), states, w_hh, b_hh)
    assert step.shape == (5, 3, 4, 10)
    rows_in = inputs.expand(5, -1, -1, -1).reshape(60, 1, 6)
    rows_h = states.expand(-1, -1, 4, -1).reshape(1, 60, 10)
    expected = gru(rows_in, rows_h)[1][0].reshape(5, 3, 4, 10)
    torch.testing.assert_close(step, expected, atol=1e-6, rtol=1e-5)


def _segment_net(**overrides: object) -> RecurrentNet:
    config: dict[str, object] = {
        "n_features": 4, "n_targets": 3, "lookback": 30, "horizon": 13, "head": "segment",
        "hidden_size": 16, "segment_length": 8, "normalization": "revin",
    }  # fmt: skip
    config.update(overrides)
    net = RecurrentNet(**config)  # type: ignore[arg-type]
    if getattr(net, "covariate_embedding", None) is not None:  # exercise the covariate path
        with torch.no_grad():
            net.covariate_embedding.normal_()
    return net


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_future": 1, "n_features": 5},
        {"static_cardinalities": [3], "n_features": 4},
        {"past_covariates": False},
    ],
    ids=["covariates", "future", "statics", "legacy"],
)
def test_segment_head_forecasts_and_gradients_as_through_nn_gru(
    overrides: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _segment_net(**overrides)
    n_static = net.n_static
    x = torch.randn(9, 30, 4 + n_static + int(net.n_future))
    if n_static:
        x[..., 4] = torch.randint(0, 3, (9, 30)).float()
    future = torch.randn(9, 13, net.n_future) if net.n_future else None
    y = torch.randn(9, 13, 3)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        net.zero_grad()
        torch.manual_seed(1)  # the same dropout draws
        loss = net.training_loss(x, future, y, F.l1_loss)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters() if p.grad is not None]

    loss, grads = run()
    with monkeypatch.context() as patch:
        patch.setattr(segment, "_written_out_gru", lambda net, x: False)
        loss_before, grads_before = run()
        net.eval()
        before = net(x, future)
    net.eval()
    torch.testing.assert_close(net(x, future), before, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, loss_before, atol=1e-6, rtol=1e-5)
    assert len(grads) == len(grads_before)
    for a, b in zip(grads, grads_before, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("overrides", [{"cell": "lstm"}, {"num_layers": 2}, {"cell": "rnn"}])
def test_segment_head_keeps_nn_rnn_for_other_cells_and_stacks(
    overrides: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _segment_net(**overrides)
    calls: list[int] = []
    monkeypatch.setattr(segment, "gru_step", lambda *a: calls.append(1))
    monkeypatch.setattr(segment, "gru_last_state", lambda *a: calls.append(1))
    assert net(torch.randn(2, 30, 4)).shape == (2, 13, 3)
    assert calls == []

"""Tests for forecaster.nn.gru: the broadcast GRU step agrees with ``nn.GRU`` (values and
gradients), and the segment head gives the same forecasts and gradients through it as through
``nn.GRU`` on every row (the path it took before, and still takes on CUDA)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import forecaster.nn.heads.segment as segment
from forecaster.nn import RecurrentNet
from forecaster.nn.gru import gru_step


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _gru_weights(gru: torch.nn.GRU) -> tuple[torch.Tensor, ...]:
    return gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0


def test_gru_step_passes_gradcheck_in_float64() -> None:
    gru = torch.nn.GRU(3, 4, batch_first=True).double()
    x = torch.randn(2, 1, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(5, 1, 1, 4, dtype=torch.float64, requires_grad=True)

    def step(x: torch.Tensor, h: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        w_ih, b_ih, w_hh, b_hh = weights
        return gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)

    assert torch.autograd.gradcheck(step, (x, h, *_gru_weights(gru)))


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
        patch.setattr(segment, "_broadcast_gru_step", lambda net, x: False)
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
    assert net(torch.randn(2, 30, 4)).shape == (2, 13, 3)
    assert calls == []

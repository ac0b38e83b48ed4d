"""Tests for forecaster.nn: shapes, gradients, recurrences, heads, learning, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from forecaster.exceptions import DataValidationError
from forecaster.nn import (
    CELLS,
    HEADS,
    NORMALIZATIONS,
    EnsembleNet,
    RecurrentNet,
    count_parameters,
    network_from_config,
)

N_TARGETS = 2
N_PAST_COVARIATES = 1
LOOKBACK = 10
HORIZON = 5


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_net(**overrides: object) -> RecurrentNet:
    """A small network; the segment head's covariate embedding (zero at construction, so that
    an untrained network forecasts as without covariates) is drawn at random unless
    ``as_built=True``, so that the covariate path is exercised."""
    as_built = bool(overrides.pop("as_built", False))
    n_future = int(overrides.pop("n_future", 0))  # type: ignore[call-overload]
    kwargs: dict[str, object] = {
        "n_features": N_TARGETS + N_PAST_COVARIATES + n_future,
        "n_targets": N_TARGETS,
        "n_future": n_future,
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "hidden_size": 8,
        "segment_length": 4,  # 10 = 3 * 4 - 2: exercises the left padding; 5 -> 2 segments
    }
    kwargs.update(overrides)
    net = RecurrentNet(**kwargs)  # type: ignore[arg-type]
    if hasattr(net, "covariate_embedding") and not as_built:
        with torch.no_grad():
            net.covariate_embedding.normal_(0.0, 0.5)
    return net


def make_batch(net: RecurrentNet, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = torch.randn(batch, net.lookback, net.n_features)
    future = torch.randn(batch, net.horizon, net.n_future) if net.n_future else None
    return x, future


def assert_all_parameters_get_gradients_for(
    net: RecurrentNet, x: torch.Tensor, future: torch.Tensor | None
) -> None:
    net.train()
    net(x, future).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"parameters without gradient: {missing}"


def assert_all_parameters_get_gradients(net: nn.Module) -> None:
    missing = [
        name
        for name, p in net.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    assert not missing, f"parameters without a (finite, non-zero) gradient: {missing}"


# --------------------------------------------------------------------------------------------
# every head x cell, with and without future covariates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_future", [0, 2])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("head", HEADS)
def test_shape_finite_and_gradients(head: str, cell: str, n_future: int) -> None:
    net = make_net(head=head, cell=cell, n_future=n_future, num_layers=2, dropout=0.1)
    x, future = make_batch(net)
    out = net(x, future)
    assert out.shape == (4, HORIZON, N_TARGETS)
    assert torch.isfinite(out).all()

    y = torch.randn(4, HORIZON, N_TARGETS)
    loss = net.training_loss(x, future, y, F.mse_loss)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert_all_parameters_get_gradients(net)

    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x, future), net(x, future))  # no dropout in eval mode


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("head", HEADS)
def test_normalizations(head: str, normalization: str) -> None:
    net = make_net(head=head, normalization=normalization, n_future=1)
    x, future = make_batch(net)
    if normalization != "none":  # past-observed channels far from zero mean / unit scale
        n_past = N_TARGETS + N_PAST_COVARIATES
        x = torch.cat([x[..., :n_past] * 50 + 1000, x[..., n_past:]], dim=-1)
    out = net(x, future)
    assert out.shape == (4, HORIZON, N_TARGETS)
    assert torch.isfinite(out).all()
    net.training_loss(x, future, torch.randn(4, HORIZON, N_TARGETS), F.mse_loss).backward()
    assert_all_parameters_get_gradients(net)


def test_revin_has_learnable_affine_per_channel() -> None:
    names = dict(make_net(head="direct", normalization="revin").named_parameters())
    assert names["norm.affine_weight"].shape == (N_TARGETS + N_PAST_COVARIATES,)
    assert names["norm.affine_bias"].shape == (N_TARGETS + N_PAST_COVARIATES,)
    assert not any(
        n.startswith("norm.") for n, _ in make_net(normalization="last").named_parameters()
    )


def test_univariate_edge_sizes() -> None:
    # lookback 1, horizon 1, segment longer than the lookback (padding only)
    for head in HEADS:
        net = RecurrentNet(
            n_features=1, n_targets=1, lookback=1, horizon=1, hidden_size=4, head=head
        )
        x = torch.randn(3, 1, 1)
        assert net(x).shape == (3, 1, 1)
        net.training_loss(x, None, torch.randn(3, 1, 1), F.mse_loss).backward()


# --------------------------------------------------------------------------------------------
# recurrences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_vanilla_rnn_matches_textbook_recurrence(nonlinearity: str) -> None:
    net = RecurrentNet(
        n_features=3,
        n_targets=1,
        lookback=7,
        horizon=2,
        cell="rnn",
        nonlinearity=nonlinearity,
        hidden_size=5,
        head="direct",
        normalization="none",
    )
    rnn = net.rnn
    assert isinstance(rnn, nn.RNN) and rnn.num_layers == 1
    x = torch.randn(4, 7, 3)
    with torch.no_grad():
        outputs, h_n = rnn(x)
        act = torch.tanh if nonlinearity == "tanh" else torch.relu
        h = torch.zeros(4, 5)
        hand = []
        for t in range(7):
            h = act(
                x[:, t] @ rnn.weight_ih_l0.T
                + rnn.bias_ih_l0
                + h @ rnn.weight_hh_l0.T
                + rnn.bias_hh_l0
            )
            hand.append(h)
        hand_states = torch.stack(hand, dim=1)
        torch.testing.assert_close(outputs, hand_states, atol=1e-6, rtol=0)
        torch.testing.assert_close(h_n[0], h, atol=1e-6, rtol=0)
        # the direct head is a linear map of the last hidden state
        expected = net.out(h).reshape(4, 2, 1)
        torch.testing.assert_close(net(x), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("normalization", ["none", "last"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradient_flows_back_to_first_step(cell: str, normalization: str) -> None:
    net = RecurrentNet(
        n_features=2,
        n_targets=1,
        lookback=48,
        horizon=4,
        cell=cell,
        hidden_size=16,
        num_layers=2,
        head="direct",
        normalization=normalization,
    )
    x = torch.randn(3, 48, 2, requires_grad=True)
    net(x).sum().backward()
    assert x.grad is not None
    assert x.grad[:, 0, :].abs().sum() > 0


# --------------------------------------------------------------------------------------------
# normalization invariances
# --------------------------------------------------------------------------------------------


def test_segment_last_is_shift_invariant() -> None:
    net = RecurrentNet(n_features=1, n_targets=1, lookback=30, horizon=12, hidden_size=16).eval()
    x = torch.randn(5, 30, 1)
    with torch.no_grad():
        torch.testing.assert_close(net(x + 7.5), net(x) + 7.5, atol=1e-4, rtol=0)


@pytest.mark.parametrize("head", HEADS)
def test_revin_is_affine_equivariant(head: str) -> None:
    net = make_net(head=head, normalization="revin").eval()
    x, _ = make_batch(net)
    with torch.no_grad():
        torch.testing.assert_close(net(3.0 * x - 2.0), 3.0 * net(x) - 2.0, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------------
# heads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_every_head_uses_every_covariate(head: str) -> None:
    # with the targets fixed, changing one past covariate channel (its lookback values) or the
    # future covariates over the horizon changes the forecast, for every head (random weights)
    net = make_net(head=head, n_future=1, channel_independent=head != "segment").eval()
    with torch.no_grad():  # every weight random, zero-initialised ones included
        for parameter in net.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x, future = make_batch(net)
    assert future is not None
    past = x.clone()
    past[..., N_TARGETS] = torch.randn_like(past[..., N_TARGETS])  # one past covariate only
    with torch.no_grad():
        out = net(x, future)
        assert not torch.allclose(out, net(past, future), atol=1e-6)
        assert not torch.allclose(out, net(x, future + 1.0), atol=1e-6)
    with pytest.raises(DataValidationError, match="future covariates"):
        net(x, None)


def test_segment_head_covariate_path_starts_at_zero_and_legacy_networks_ignore_it() -> None:
    torch.manual_seed(3)
    plain_net = make_net(n_features=N_TARGETS).eval()
    plain = plain_net.state_dict()
    torch.manual_seed(3)
    with_covariates = make_net(as_built=True).eval()
    weights = with_covariates.state_dict()
    assert set(weights) - set(plain) == {"covariate_embedding", "covariate_gates"}
    assert all(torch.equal(plain[k], weights[k]) for k in plain)  # the same random draws
    after_plain = torch.randn(3)  # the covariate layers draw nothing: the generator is where
    torch.manual_seed(3)  # building the plain network left it
    make_net(n_features=N_TARGETS)
    torch.testing.assert_close(after_plain, torch.randn(3))
    assert weights["covariate_embedding"].shape == (8, 4)  # shared by the covariates
    assert weights["covariate_gates"].shape == (N_PAST_COVARIATES, 8)
    x, _ = make_batch(with_covariates)
    with torch.no_grad():  # untrained: the univariate forecast, whatever the covariates
        torch.testing.assert_close(with_covariates(x), plain_net(x[..., :N_TARGETS]))
    assert with_covariates.get_config()["past_covariates"] is True
    assert "past_covariates" not in make_net(n_features=N_TARGETS).get_config()
    # a model saved before the segment head used past covariates: rebuilt without them
    legacy = make_net(past_covariates=False).eval()
    assert not hasattr(legacy, "covariate_embedding")
    assert count_parameters(legacy) == count_parameters(make_net(n_features=N_TARGETS))
    x, _ = make_batch(legacy)
    x2 = x.clone()
    x2[..., N_TARGETS:] = torch.randn_like(x2[..., N_TARGETS:])
    with torch.no_grad():
        torch.testing.assert_close(legacy(x), legacy(x2))
    assert RecurrentNet.from_config(legacy.get_config()).get_config() == legacy.get_config()
    with pytest.raises(DataValidationError, match="past_covariates=False only rebuilds"):
        make_net(head="direct", past_covariates=False)


def test_saved_segment_configs_without_the_entry_are_read_as_legacy() -> None:
    from forecaster.nn.checks import parameter_count, saved_network_config

    config = make_net().get_config()
    assert saved_network_config(config) == config  # written by this version: as it is
    old = {k: v for k, v in config.items() if k != "past_covariates"}
    assert saved_network_config(old)["past_covariates"] is False
    assert parameter_count(saved_network_config(old)) == count_parameters(
        make_net(past_covariates=False)
    )
    for other in (make_net(head="direct").get_config(), make_net(n_features=2).get_config()):
        assert saved_network_config(other) == other


def test_segment_head_future_covariates_with_partial_last_segment() -> None:
    net = make_net(head="segment", n_future=2, segment_length=4).eval()  # horizon 5: pad 3
    x, future = make_batch(net, batch=3)
    assert net(x, future).shape == (3, HORIZON, N_TARGETS)
    assert_all_parameters_get_gradients_for(net, x, future)


@pytest.mark.parametrize("head", ["direct", "seq2seq", "recursive"])
def test_channel_independent_heads_share_weights_across_channels(head: str) -> None:
    net = make_net(head=head, n_future=1, channel_independent=True).eval()
    x, future = make_batch(net)
    # channel c's forecast depends only on channel c and the covariates ...
    x2 = x.clone()
    x2[..., 1] = torch.randn_like(x2[..., 1])
    with torch.no_grad():
        out, out2 = net(x, future), net(x2, future)
    torch.testing.assert_close(out[..., 0], out2[..., 0])
    assert not torch.allclose(out[..., 1], out2[..., 1])
    # ... through the same weights: swapping the channels swaps the forecasts
    swapped = x.clone()
    swapped[..., [0, 1]] = x[..., [1, 0]]
    with torch.no_grad():
        torch.testing.assert_close(net(swapped, future)[..., [1, 0]], out)
    # the covariates still matter
    x3 = x.clone()
    x3[..., N_TARGETS] = torch.randn_like(x3[..., N_TARGETS])
    with torch.no_grad():
        assert not torch.allclose(net(x3, future), out)
    y = torch.randn(x.shape[0], HORIZON, N_TARGETS)
    loss = net.train().training_loss(x, future, y, torch.nn.functional.mse_loss)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_channel_independent_network_is_smaller_and_roundtrips() -> None:
    mixed = make_net(head="direct")
    independent = make_net(head="direct", channel_independent=True)
    assert independent.rnn.input_size == 1 + N_PAST_COVARIATES
    assert independent.out.out_features == HORIZON
    assert mixed.out.out_features == HORIZON * N_TARGETS
    config = independent.get_config()
    assert config["channel_independent"] is True
    assert RecurrentNet.from_config(config).get_config() == config
    with pytest.raises(DataValidationError, match="channel_independent"):
        make_net(channel_independent="yes")


def test_ensemble_averages_members_and_rebuilds_from_config() -> None:
    members = [make_net(head="direct") for _ in range(3)]
    net = EnsembleNet(members).eval()
    x, future = make_batch(net)
    with torch.no_grad():
        expected = torch.stack([m(x, future) for m in members]).mean(0)
        torch.testing.assert_close(net(x, future), expected)
    rebuilt = network_from_config(net.get_config())
    assert isinstance(rebuilt, EnsembleNet) and len(rebuilt.members) == 3
    rebuilt.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x, future), expected)
    assert net.lookback == LOOKBACK and net.head == "direct"
    with pytest.raises(DataValidationError, match="at least 2"):
        EnsembleNet(members[:1])
    with pytest.raises(DataValidationError, match="same config"):
        EnsembleNet([members[0], make_net(head="seq2seq")])


def test_segment_head_is_channel_independent() -> None:
    net = make_net(head="segment").eval()
    x, _ = make_batch(net)
    x2 = x.clone()
    x2[..., 1] = torch.randn_like(x2[..., 1])
    with torch.no_grad():
        torch.testing.assert_close(net(x)[..., 0], net(x2)[..., 0])


def test_seq2seq_and_direct_use_future_covariates() -> None:
    for head in ("direct", "seq2seq", "recursive"):
        net = make_net(head=head, n_future=1).eval()
        x, future = make_batch(net)
        assert future is not None
        with torch.no_grad():
            assert not torch.allclose(net(x, future), net(x, future + 1.0))


@pytest.mark.parametrize("future_at_step", [True, False])
@pytest.mark.parametrize("normalization", ["none", "revin"])
@pytest.mark.parametrize("cell", CELLS)
def test_recursive_forecast_equals_manual_rollout(
    cell: str, normalization: str, future_at_step: bool
) -> None:
    """Each row the cell reads holds the past-observed channels of one step beside the future
    covariates of the next step, the one it forecasts (of the same step for a network saved
    before, ``future_at_step=False``)."""
    net = make_net(
        head="recursive", cell=cell, n_future=1, normalization=normalization,
        future_at_step=future_at_step,
    ).eval()  # fmt: skip
    x, future = make_batch(net)
    assert future is not None
    n_past = N_TARGETS + N_PAST_COVARIATES
    shift = int(future_at_step)
    with torch.no_grad():
        forecast = net(x, future)
        i = 2  # one sample, rolled out one step at a time without carried state
        xi = x[i : i + 1]
        covariates = torch.cat([xi[..., n_past:], future[i : i + 1]], dim=1)  # (1, L + H, 1)
        stats = net.norm.stats(xi)
        past = net.norm.transform(xi[..., :n_past], stats)
        seq = torch.cat([past, covariates[:, shift : LOOKBACK + shift]], dim=-1)
        preds = []
        for k in range(HORIZON):
            out, _ = net.rnn(seq)  # re-run from scratch over the whole sequence
            pred = net.out(out[:, -1])
            preds.append(pred)
            if k + 1 < HORIZON:
                row = torch.cat([pred, covariates[:, LOOKBACK + k + shift]], dim=-1)
                seq = torch.cat([seq, row.unsqueeze(1)], dim=1)
        manual = net.norm.inverse(torch.stack(preds, dim=1), stats)[..., :N_TARGETS]
    torch.testing.assert_close(forecast[i : i + 1], manual, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("channel_independent", [False, True])
def test_recursive_step_reads_the_future_covariates_of_the_step_it_forecasts(
    channel_independent: bool,
) -> None:
    """Horizon step k's forecast moves with the future covariates at steps 0..k, step k's
    own included, and with no later one; the last horizon value is read (it was required,
    then never read: each step read the covariates of the step before)."""
    net = make_net(head="recursive", n_future=2, channel_independent=channel_independent)
    x, future = make_batch(net.eval())
    assert future is not None
    with torch.no_grad():
        base = net(x, future)
        for k in range(HORIZON):
            moved = future.clone()
            moved[:, k] += 1.0
            change = (net(x, moved) - base).abs().amax(dim=(0, 2))
            assert torch.all(change[:k] == 0), (k, change)
            assert torch.all(change[k:] > 0), (k, change)
        # the lookback's covariates: its first value is never read (step 1 reads step 2's)
        moved_x = x.clone()
        moved_x[:, 0, -2:] += 1.0
        torch.testing.assert_close(net(moved_x, future), base)
        # a network saved before reads step k - 1's: the last horizon value is not read
        legacy = make_net(head="recursive", n_future=2, future_at_step=False).eval()
        moved = future.clone()
        moved[:, -1] += 1.0
        torch.testing.assert_close(legacy(x, moved), legacy(x, future))


def test_recursive_teacher_forcing_matches_the_rollout() -> None:
    """Trained as it forecasts: fed its own roll-out as the true horizon, the teacher-forced
    horizon predictions are the roll-out (the same covariates beside the same rows)."""
    calls: list[torch.Tensor] = []

    def recording_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(pred.detach())  # the horizon steps first, then the lookback
        return F.mse_loss(pred, target)

    for future_at_step in (True, False):
        net = make_net(
            head="recursive", n_features=N_TARGETS + 2, n_future=2, normalization="none",
            future_at_step=future_at_step,
        ).eval()  # fmt: skip
        x, future = make_batch(net)
        calls.clear()
        with torch.no_grad():
            forecast = net(x, future)
            net.training_loss(x, future, forecast, recording_loss)
        torch.testing.assert_close(calls[0], forecast, atol=1e-5, rtol=1e-5)


def test_recursive_future_at_step_is_saved_and_legacy_configs_read_lagged() -> None:
    from forecaster.nn.checks import saved_network_config

    net = make_net(head="recursive", n_future=1)
    config = net.get_config()
    assert net.future_at_step is True and config["future_at_step"] is True
    assert saved_network_config(config) == config  # written by this version: as it is
    old = {k: v for k, v in config.items() if k != "future_at_step"}
    legacy = RecurrentNet.from_config(saved_network_config(old))
    assert legacy.future_at_step is False and legacy.get_config()["future_at_step"] is False
    assert RecurrentNet.from_config(legacy.get_config()).future_at_step is False
    for other in (
        make_net(head="recursive").get_config(),  # no future covariates: nothing to align
        make_net(head="seq2seq", n_future=1).get_config(),
    ):
        assert "future_at_step" not in other and saved_network_config(other) == other
    for wrong in ({"head": "seq2seq", "n_future": 1}, {"head": "recursive"}):
        with pytest.raises(DataValidationError, match="future_at_step=False only rebuilds"):
            make_net(future_at_step=False, **wrong)


def test_recursive_training_loss_is_teacher_forced_many_to_many() -> None:
    net = make_net(head="recursive", n_future=1, normalization="none").eval()
    x, future = make_batch(net)
    y = torch.randn(4, HORIZON, N_TARGETS)
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append((pred.detach(), target))
        return F.mse_loss(pred, target)

    with torch.no_grad():
        loss = net.training_loss(x, future, y, recording_loss)
        forecast = net(x, future)
    (horizon_pred, horizon_target), (inside_pred, inside_target) = calls
    # horizon steps: targets only; inside the lookback: every past-observed channel
    assert horizon_pred.shape == (4, HORIZON, N_TARGETS) and torch.equal(horizon_target, y)
    assert inside_pred.shape == (4, LOOKBACK - 1, N_TARGETS + N_PAST_COVARIATES)
    torch.testing.assert_close(inside_target, x[:, 1:, : N_TARGETS + N_PAST_COVARIATES])
    # the first horizon step is predicted from the lookback alone: same as the forecast
    torch.testing.assert_close(horizon_pred[:, 0], forecast[:, 0])
    # the loss is the mean over time steps of the per-step losses
    n_in = LOOKBACK - 1
    expected = (
        n_in * F.mse_loss(inside_pred, inside_target) + HORIZON * F.mse_loss(horizon_pred, y)
    ) / (n_in + HORIZON)
    torch.testing.assert_close(loss, expected)
    # the horizon targets enter the loss
    assert not torch.allclose(loss, net.training_loss(x, future, y + 1.0, F.mse_loss))


# --------------------------------------------------------------------------------------------
# learning check
# --------------------------------------------------------------------------------------------


def sine_windows(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    phase = torch.rand(n, 1, generator=generator) * 2 * math.pi
    series = torch.sin(2 * math.pi * torch.arange(72.0) / 16 + phase)
    return series[:, :48, None], series[:, 48:, None]


@pytest.mark.parametrize(
    ("head", "cell", "steps"), [("segment", "gru", 80), ("direct", "lstm", 150)]
)
def test_fits_a_sine_wave(head: str, cell: str, steps: int) -> None:
    generator = torch.Generator().manual_seed(0)
    x_train, y_train = sine_windows(64, generator)
    x_test, y_test = sine_windows(64, generator)
    net = RecurrentNet(
        n_features=1, n_targets=1, lookback=48, horizon=24, cell=cell, hidden_size=32, head=head
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        net.training_loss(x_train, None, y_train, F.mse_loss).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        mse = F.mse_loss(net(x_test), y_test).item()
    assert mse < 1e-2  # the sine's variance is 0.5; typically reaches ~1e-3


def test_recursive_head_learns_a_future_covariate_of_the_step_it_forecasts() -> None:
    """y = 3 f + 10 with f white noise: only f at the forecast step tells y. The recursive
    head read f one step late, so it could not learn it (MAE 2.4, the spread of 3 f, and no
    reaction to f at the last step); reading f at the step it forecasts, it does."""
    generator = torch.Generator().manual_seed(0)

    def windows(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = torch.randn(n, 12, 1, generator=generator)
        y = 3 * f + 10
        return torch.cat([y[:, :8], f[:, :8]], dim=-1), f[:, 8:], y[:, 8:]

    (x_train, f_train, y_train), (x_test, f_test, y_test) = windows(64), windows(64)
    net = RecurrentNet(
        n_features=2, n_targets=1, n_future=1, lookback=8, horizon=4, head="recursive",
        hidden_size=16, normalization="none",
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-2)
    for _ in range(150):
        optimizer.zero_grad()
        net.training_loss(x_train, f_train, y_train, F.l1_loss).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        forecast = net(x_test, f_test)
        raised = f_test.clone()
        raised[:, -1] += 1.0
        reaction = (net(x_test, raised) - forecast)[:, -1].mean().item()
    assert F.l1_loss(forecast, y_test).item() < 1.0  # typically 0.3
    assert reaction > 1.5  # the truth: 3


# --------------------------------------------------------------------------------------------
# misc API
# --------------------------------------------------------------------------------------------


def test_deterministic_initialisation_and_config_round_trip() -> None:
    torch.manual_seed(123)
    a = make_net(head="seq2seq", cell="lstm", n_future=1)
    torch.manual_seed(123)
    b = RecurrentNet.from_config(a.get_config())
    assert a.get_config() == b.get_config()
    for (name_a, pa), (name_b, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert name_a == name_b and torch.equal(pa, pb)


def test_count_parameters() -> None:
    layer = nn.Linear(3, 2)
    assert count_parameters(layer) == 8
    layer.bias.requires_grad_(False)
    assert count_parameters(layer, trainable_only=True) == 6
    net = make_net(head="direct", cell="gru", normalization="none")
    hidden, n_in = 8, N_TARGETS + N_PAST_COVARIATES
    gru = 3 * (hidden * n_in + hidden * hidden + 2 * hidden)
    assert count_parameters(net) == gru + hidden * HORIZON * N_TARGETS + HORIZON * N_TARGETS


def test_num_layers_and_dropout_reach_the_cell() -> None:
    net = make_net(head="seq2seq", cell="lstm", num_layers=3, dropout=0.2)
    assert net.rnn.num_layers == 3 and net.rnn.dropout == pytest.approx(0.2)
    assert net.decoder is not None and net.decoder.num_layers == 3
    assert make_net(num_layers=1, dropout=0.2).rnn.dropout == 0.0  # no inter-layer dropout
    assert isinstance(make_net(cell="rnn", nonlinearity="relu").rnn, nn.RNN)
    assert make_net(cell="rnn", nonlinearity="relu").rnn.nonlinearity == "relu"


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"cell": "transformer"},
            r"cell must be one of 'rnn', 'lstm', 'gru', got 'transformer'",
        ),
        ({"head": "attention"}, r"head must be one of .*got 'attention'"),
        ({"normalization": "zscore"}, r"normalization must be one of .*got 'zscore'"),
        ({"nonlinearity": "sigmoid", "cell": "rnn"}, r"nonlinearity must be one of"),
        ({"nonlinearity": "relu", "cell": "gru"}, r"only applies to cell='rnn'"),
        ({"hidden_size": 0}, r"hidden_size must be an integer >= 1, got 0"),
        ({"num_layers": -1}, r"num_layers must be an integer >= 1"),
        ({"lookback": 0}, r"lookback must be an integer >= 1"),
        ({"horizon": 2.5}, r"horizon must be an integer >= 1, got 2.5 \(a float\)"),
        ({"segment_length": 0}, r"segment_length must be an integer >= 1"),
        ({"n_future": -1}, r"n_future must be an integer >= 0"),
        ({"n_targets": True}, r"n_targets must be an integer"),
        ({"dropout": 1.0}, r"dropout must be a finite number in \[0, 1\), got 1.0"),
        ({"dropout": -0.1}, r"dropout must be a finite number in \[0, 1\)"),
        ({"n_targets": 4}, r"n_targets must be <= n_features - n_future .* received n_targets=4"),
        ({"head": "segment", "hidden_size": 1}, r"needs hidden_size >= 2"),
    ],
)
def test_bad_arguments(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        make_net(**overrides)


def test_n_targets_plus_future_cannot_exceed_features() -> None:
    with pytest.raises(DataValidationError, match=r"n_features - n_future = 3 - 2 = 1"):
        RecurrentNet(n_features=3, n_targets=2, n_future=2, lookback=4, horizon=2)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="cell"):
        make_net(cell="LSTM ")


def test_bad_inputs() -> None:
    net = make_net(head="direct", n_future=1)
    x, future = make_batch(net)
    with pytest.raises(DataValidationError, match=r"x must have shape .* received \(4, 9, 4\)"):
        net(x[:, 1:], future)
    with pytest.raises(DataValidationError, match="received future=None"):
        net(x)
    assert future is not None
    with pytest.raises(DataValidationError, match=r"future must have shape"):
        net(x, future[:, 1:])
    with pytest.raises(DataValidationError, match=r"y must have shape"):
        net.training_loss(x, future, torch.randn(4, HORIZON), F.mse_loss)
    plain = make_net(head="direct")
    x0, _ = make_batch(plain)
    with pytest.raises(DataValidationError, match="n_future=0"):
        plain(x0, torch.randn(4, HORIZON, 1))
    # the segment head needs the future covariates too
    with pytest.raises(DataValidationError, match="received future=None"):
        make_net(head="segment", n_future=1)(x)


def test_the_defaults_table_matches_the_network_signature() -> None:
    import inspect

    from forecaster.nn.config import DEFAULTS

    parameters = inspect.signature(RecurrentNet.__init__).parameters.values()
    signature = {p.name: p.default for p in parameters if p.default is not p.empty}
    assert signature == DEFAULTS
    assert list(signature) == list(DEFAULTS)  # the order the parameter checks run in


def test_every_head_has_one_implementation_behind_the_head_interface() -> None:
    from forecaster.nn.heads import HEAD_TYPES, Head

    assert set(HEAD_TYPES) == set(HEADS)
    assert all(isinstance(head, Head) and head.name == name for name, head in HEAD_TYPES.items())


# ------------------------------------------------------------------------------------------
# quantile outputs (issue 13)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["direct", "seq2seq", "recursive", "segment"])
def test_quantile_heads_shape_median_and_loss(head):
    from forecaster.nn.quantiles import pinball_loss

    torch.manual_seed(0)
    net = RecurrentNet(
        n_features=3,
        n_targets=2,
        lookback=12,
        horizon=4,
        hidden_size=8,
        head=head,
        segment_length=4,
        quantiles=[0.1, 0.5, 0.9],
    )
    x, y = torch.randn(5, 12, 3), torch.randn(5, 4, 2)
    out = net(x)
    assert out.shape == (5, 4, 2, 3)
    assert (out.diff(dim=-1) >= 0).all()
    loss = net.training_loss(x, None, y, lambda p, t: pinball_loss(p, t, net.quantiles))
    loss.backward()
    assert net.quantile_gaps.grad is not None and torch.isfinite(loss)
    assert RecurrentNet.from_config(net.get_config()).get_config() == net.get_config()


def test_point_network_config_has_no_quantiles():
    net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    assert "quantiles" not in net.get_config()
    with pytest.raises(DataValidationError, match=r"0\.5"):
        RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, quantiles=[0.1, 0.9])


def test_quantile_ensemble_averages_each_quantile_then_sorts():
    from forecaster.nn import network_from_config

    torch.manual_seed(1)
    config = {
        "n_features": 1,
        "n_targets": 1,
        "lookback": 8,
        "horizon": 3,
        "hidden_size": 4,
        "head": "direct",
        "quantiles": [0.05, 0.5, 0.95],
        "n_members": 3,
    }
    net = network_from_config(config)
    x = torch.randn(4, 8, 1)
    mean = torch.stack([m(x) for m in net.members]).mean(0)
    assert torch.allclose(net(x), mean.sort(-1).values)


def test_a_median_only_quantile_network_forecasts_its_median() -> None:
    # quantiles=[0.5]: one output column (it had none: the zero gap column was cut from an
    # empty gap tensor; found by the hypothesis test below)
    net = RecurrentNet(
        n_features=1,
        n_targets=1,
        lookback=6,
        horizon=3,
        hidden_size=4,
        head="direct",
        quantiles=[0.5],
    )
    assert net(torch.randn(2, 6, 1)).shape == (2, 3, 1, 1)


def test_quantiles_never_cross_hypothesis():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        seed=st.integers(0, 2**16),
        head=st.sampled_from(["direct", "seq2seq", "recursive", "segment"]),
        qs=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=6, unique=True),
        magnitude=st.floats(1e-3, 1e4),
        weight_scale=st.floats(0.0, 20.0),
    )
    def check(seed, head, qs, magnitude, weight_scale):
        qs = sorted({round(q, 3) for q in qs} - {0.5} | {0.5})
        torch.manual_seed(seed)
        net = RecurrentNet(
            n_features=2,
            n_targets=2,
            lookback=6,
            horizon=3,
            hidden_size=4,
            head=head,
            segment_length=3,
            quantiles=qs,
        )
        with torch.no_grad():
            net.quantile_gaps.normal_(0.0, weight_scale)  # any weights, negative ones too
        out = net(torch.randn(3, 6, 2) * magnitude)
        assert out.shape[-1] == len(qs)
        assert (out.diff(dim=-1) >= 0).all()

    check()


# ------------------------------------------------------------------------------------------
# linear skip
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["segment", "direct", "seq2seq"])
def test_linear_skip_starts_at_zero_and_adds_a_linear_map_of_the_window(head: str) -> None:
    torch.manual_seed(5)
    plain = make_net(head=head).eval()
    after_plain = torch.randn(3)
    torch.manual_seed(5)
    skipped = make_net(head=head, linear_skip=True).eval()
    assert torch.equal(torch.randn(3), after_plain)  # the skip draws no random number
    weights, plain_weights = skipped.state_dict(), plain.state_dict()
    assert set(weights) - set(plain_weights) == {"skip_weight", "skip_bias"}
    x, future = make_batch(skipped)
    with torch.no_grad():
        assert torch.equal(skipped(x, future), plain(x, future))  # untrained: as without
        skipped.skip_weight.normal_()
        skipped.skip_bias.normal_()
        deviations = x[..., :N_TARGETS] - x[:, -1:, :N_TARGETS]  # (B, L, C)
        expected = torch.einsum("blc,hl->bhc", deviations, skipped.skip_weight)
        expected = plain(x, future) + expected + skipped.skip_bias[None, :, None]
        assert torch.allclose(skipped(x, future), expected, atol=1e-5)
    assert_all_parameters_get_gradients_for(skipped, x, future)


def test_linear_skip_config_round_trip_and_old_configs_load_without_it() -> None:
    net = make_net(linear_skip=True)
    config = net.get_config()
    assert config["linear_skip"] is True
    assert network_from_config(config).linear_skip
    assert "linear_skip" not in make_net().get_config()  # saved configs unchanged without it
    assert not network_from_config(make_net().get_config()).linear_skip
    assert count_parameters(net) == count_parameters(make_net()) + (LOOKBACK + 1) * HORIZON


def test_linear_skip_learns_a_linear_autoregression_the_head_alone_misses() -> None:
    # a pure AR(2) series: with its recurrent head frozen at initialisation, the skip alone
    # fits it to almost zero error (the skip is trained by the same loss as the head)
    torch.manual_seed(0)
    n, lookback = 600, 12
    series = torch.zeros(n)
    noise = 0.05 * torch.randn(n)
    for t in range(2, n):
        series[t] = 1.5 * series[t - 1] - 0.8 * series[t - 2] + noise[t]
    windows = series.unfold(0, lookback + 3, 1)
    x, y = windows[:, :lookback, None], windows[:, lookback:, None]
    net = RecurrentNet(
        n_features=1,
        n_targets=1,
        lookback=lookback,
        horizon=3,
        hidden_size=4,
        segment_length=4,
        linear_skip=True,
    )
    head_parameters = [p for n, p in net.named_parameters() if not n.startswith("skip_")]
    for parameter in head_parameters:
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam([net.skip_weight, net.skip_bias], lr=0.05)
    with torch.no_grad():
        before = F.mse_loss(net(x), y).item()
    for _ in range(300):
        optimiser.zero_grad()
        loss = net.training_loss(x, None, y, F.mse_loss)
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.05 * before


@pytest.mark.parametrize("name", ["lookback", "segment_length"])
def test_a_network_needs_auto_sizes_resolved(name: str) -> None:
    with pytest.raises(DataValidationError, match=f"estimators resolve {name}='auto'"):
        make_net(**{name: "auto"})


def _batch_and_its_first_windows(config: dict) -> tuple[RecurrentNet, torch.Tensor]:
    torch.manual_seed(0)
    base = {"n_features": 1, "n_targets": 1, "lookback": 96, "horizon": 24, "hidden_size": 64}
    net = RecurrentNet(**{**base, "segment_length": 24, **config}).eval()
    torch.manual_seed(1)
    x = torch.randn(300, 96, 1 + net.n_static) * 5 + 20
    x[..., 1:] = torch.randn(300, 1, net.n_static)  # a window's statics: one value per column
    return net, x


@pytest.mark.parametrize(
    "config",
    [
        {"cell": "rnn", "n_static_numeric": 2},  # the statics' encoder: before the copies
        {"cell": "gru", "n_static_numeric": 2},
        {"cell": "lstm"},  # not unrolled, copied too
        {"cell": "lstm", "n_static_numeric": 1},
    ],
    ids=lambda config: "-".join(str(v) for v in config.values()),
)
def test_a_few_windows_of_a_segment_network_give_a_large_batchs_bits(config) -> None:
    """A window forecast alone or with a few others (predict from one cutoff of a small
    panel) gives the bits it has in a large batch (a backtest), with statics and the LSTM too,
    though BLAS and oneDNN add up products of a few rows in another order: fewer than 16
    windows run as copies of them, before the statics are encoded."""
    net, x = _batch_and_its_first_windows({"head": "segment", **config})
    with torch.inference_mode():
        whole = net(x)
        differ = [n for n in range(1, 16) if not torch.equal(net(x[:n]), whole[:n])]
    assert differ == []


@pytest.mark.parametrize("head", ["direct", "seq2seq", "recursive"])
def test_the_other_heads_forecast_a_few_windows_without_copies(head: str) -> None:
    """Their cell runs over every step of the window: 16 copies of one window would take 2 to
    11 times its forward (Head.copies_few_windows); one window runs as one row."""
    net, x = _batch_and_its_first_windows({"head": head, "cell": "lstm"})
    rows: list[int] = []
    net.rnn.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    with torch.inference_mode():
        net(x[:1])
    assert rows and set(rows) == {1}

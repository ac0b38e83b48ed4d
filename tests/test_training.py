"""Tests for forecaster.training: the loop, losses, schedules, early stopping, clipping,
divergence, callbacks, time budget, determinism, progress bar and device resolution."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

import forecaster.training as training
from forecaster.exceptions import DataValidationError, ForecasterError
from forecaster.networks import RecurrentNet
from forecaster.training import (
    LOSSES,
    LR_SCHEDULES,
    EpochRecord,
    StopTraining,
    TrainingDivergedError,
    evaluate,
    loss_function,
    resolve_device,
    train,
)

LOOKBACK = 8
HORIZON = 2

Batches = list[tuple[Tensor, Tensor | None, Tensor]]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks: thread start-up costs more than it saves (and CI cores may be busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make_net(**overrides: object) -> RecurrentNet:
    kwargs: dict[str, object] = {
        "n_features": 1,
        "n_targets": 1,
        "lookback": LOOKBACK,
        "horizon": HORIZON,
        "hidden_size": 8,
        "head": "direct",
        "normalization": "none",
    }
    kwargs.update(overrides)
    return RecurrentNet(**kwargs)  # type: ignore[arg-type]


def learnable_data(n: int = 64) -> tuple[Tensor, Tensor]:
    """Targets are the window's last value repeated: easy for a recurrent net."""
    x = torch.randn(n, LOOKBACK, 1)
    y = x[:, -1:, :].expand(-1, HORIZON, -1).clone()
    return x, y


def source(x: Tensor, y: Tensor, batch_size: int = 16) -> Callable[[int], Batches]:
    def batches(epoch: int) -> Batches:
        return [
            (x[lo : lo + batch_size], None, y[lo : lo + batch_size])
            for lo in range(0, len(x), batch_size)
        ]

    return batches


def shuffled_source(x: Tensor, y: Tensor, batch_size: int = 16):
    """A source that draws its batch order from torch's global generator (like a user's)."""

    def batches(epoch: int) -> Iterator[tuple[Tensor, None, Tensor]]:
        order = torch.randperm(len(x))
        for lo in range(0, len(x), batch_size):
            rows = order[lo : lo + batch_size]
            yield x[rows], None, y[rows]

    return batches


def quick_train(net: nn.Module | None = None, **kwargs: object) -> list[EpochRecord]:
    x, y = learnable_data(32)
    options: dict[str, object] = {"max_epochs": 2, "progress": False}
    options.update(kwargs)
    return train(net or make_net(), source(x, y), **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# history and learning
# ------------------------------------------------------------------------------------------


def test_train_returns_one_finite_record_per_epoch() -> None:
    x, y = learnable_data(48)
    vx, vy = learnable_data(16)
    history = train(
        make_net(), source(x, y), val_source=source(vx, vy), max_epochs=3, progress=False
    )
    assert [r.epoch for r in history] == [1, 2, 3]
    for record in history:
        assert isinstance(record, EpochRecord)
        assert math.isfinite(record.train_loss) and record.train_loss >= 0
        assert record.val_loss is not None and math.isfinite(record.val_loss)
        assert record.lr == pytest.approx(1e-3)
        assert record.seconds >= 0
        assert record.windows_per_second > 0
    assert set(history[0].as_dict()) == {
        "epoch",
        "train_loss",
        "val_loss",
        "lr",
        "seconds",
        "windows_per_second",
    }


def test_without_validation_val_loss_is_none_and_all_epochs_run() -> None:
    history = quick_train(max_epochs=3, patience=1)
    assert len(history) == 3
    assert all(r.val_loss is None for r in history)


def test_loss_falls_on_a_learnable_problem() -> None:
    x, y = learnable_data(128)
    net = make_net()
    before = evaluate(net, source(x, y), loss="mse")
    history = train(net, source(x, y, 32), loss="mse", lr=1e-2, max_epochs=25, progress=False)
    after = evaluate(net, source(x, y), loss="mse")
    assert history[-1].train_loss < 0.25 * history[0].train_loss
    assert after < 0.1 * before
    assert not net.training  # left in eval mode


def test_network_is_trained_in_place() -> None:
    net = make_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    quick_train(net, max_epochs=1)
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_empty_training_source_raises() -> None:
    with pytest.raises(DataValidationError, match="No training windows"):
        train(make_net(), lambda epoch: [], max_epochs=1, progress=False)


# ------------------------------------------------------------------------------------------
# losses and schedules
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(loss: str) -> None:
    history = quick_train(loss=loss)
    assert all(math.isfinite(r.train_loss) for r in history)


def test_loss_function_values() -> None:
    pred, target = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])
    assert float(loss_function("mse")(pred, target)) == pytest.approx(5.0)
    assert float(loss_function("mae")(pred, target)) == pytest.approx(2.0)
    assert float(loss_function("huber")(pred, target)) == pytest.approx((0.5 + 2.5) / 2)


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_every_lr_schedule_trains(schedule: str) -> None:
    x, y = learnable_data(32)
    vx, vy = learnable_data(16)
    history = train(
        make_net(),
        source(x, y, batch_size=8),
        val_source=source(vx, vy),
        lr_schedule=schedule,
        steps_per_epoch=4,
        max_epochs=3,
        patience=None,
        progress=False,
    )
    assert len(history) == 3
    assert all(math.isfinite(r.train_loss) and r.lr > 0 for r in history)


def test_cosine_schedule_lowers_the_lr_over_epochs() -> None:
    lrs = [r.lr for r in quick_train(lr=1e-2, lr_schedule="cosine", max_epochs=5)]
    assert lrs[0] == pytest.approx(1e-2)  # the lr used in the first epoch
    assert all(b < a for a, b in itertools.pairwise(lrs))
    assert lrs[-1] < 0.2 * lrs[0]


def test_cosine_with_one_epoch_records_the_lr_it_trained_with() -> None:
    # Regression: the record held the lr *after* the scheduler step (0.0 here).
    (record,) = quick_train(lr=1e-2, lr_schedule="cosine", max_epochs=1)
    assert record.lr == pytest.approx(1e-2)


def test_plateau_schedule_halves_the_lr_when_validation_stalls(monkeypatch) -> None:
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: 1.0)
    x, y = learnable_data(32)
    history = train(
        make_net(),
        source(x, y),
        val_source=source(x, y),
        lr=1e-2,
        lr_schedule="plateau",
        patience=None,
        max_epochs=6,
        progress=False,
    )
    lrs = [r.lr for r in history]
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs[-1] == pytest.approx(5e-3)


def test_onecycle_warms_up_and_anneals() -> None:
    x, y = learnable_data(32)
    history = train(
        make_net(),
        source(x, y, batch_size=8),
        lr=1e-2,
        lr_schedule="onecycle",
        steps_per_epoch=4,
        max_epochs=6,
        progress=False,
    )
    lrs = [r.lr for r in history]
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert 0 < peak < len(lrs) - 1
    assert lrs[-1] < lrs[peak]


def test_onecycle_survives_more_batches_than_steps_per_epoch() -> None:
    # Regression: OneCycleLR raised "Tried to step N times" mid-training.
    x, y = learnable_data(32)
    history = train(
        make_net(),
        source(x, y, batch_size=4),  # 8 batches per epoch
        lr_schedule="onecycle",
        steps_per_epoch=2,
        max_epochs=3,
        progress=False,
    )
    assert len(history) == 3


def test_onecycle_without_steps_per_epoch_is_refused() -> None:
    with pytest.raises(DataValidationError, match="steps_per_epoch"):
        quick_train(lr_schedule="onecycle")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"loss": "bogus"}, "'bogus'"),
        ({"lr_schedule": "linear-warmup"}, "'linear-warmup'"),
        ({"max_epochs": 0}, "max_epochs must be >= 1, got 0"),
    ],
)
def test_bad_settings_raise_with_the_value(options: dict, named: str) -> None:
    with pytest.raises(DataValidationError) as info:
        quick_train(**options)
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------
# early stopping
# ------------------------------------------------------------------------------------------


def snapshotter() -> tuple[dict[int, dict[str, Tensor]], Callable[[EpochRecord, nn.Module], None]]:
    snapshots: dict[int, dict[str, Tensor]] = {}

    def callback(record: EpochRecord, network: nn.Module) -> None:
        snapshots[record.epoch] = {k: v.detach().clone() for k, v in network.state_dict().items()}

    return snapshots, callback


def test_early_stopping_on_scripted_val_losses_restores_the_best_epoch(monkeypatch) -> None:
    scripted = iter([1.0, 0.5, 0.7, 0.6, 0.9, 0.1, 0.1])
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: next(scripted))
    snapshots, callback = snapshotter()
    x, y = learnable_data(32)
    net = make_net()
    history = train(
        net,
        source(x, y),
        val_source=source(x, y),
        lr=1e-2,
        patience=3,
        max_epochs=10,
        callbacks=[callback],
        progress=False,
    )
    assert [r.val_loss for r in history] == [1.0, 0.5, 0.7, 0.6, 0.9]  # best, then 3 stale
    for name, value in net.state_dict().items():
        assert torch.equal(value, snapshots[2][name]), name
    assert not all(torch.equal(v, snapshots[5][k]) for k, v in net.state_dict().items())


def test_early_stopping_on_noisy_targets_restores_the_best_weights() -> None:
    # 16 windows with noisy targets: validation on the clean relation improves, then overfits.
    x, y = learnable_data(16)
    y = y + torch.randn_like(y)
    vx, vy = learnable_data(64)
    patience, max_epochs = 3, 200
    net = make_net(hidden_size=16)
    history = train(
        net,
        source(x, y),
        val_source=source(vx, vy),
        lr=3e-2,
        patience=patience,
        max_epochs=max_epochs,
        progress=False,
    )
    val = [r.val_loss for r in history]
    best = min(range(len(val)), key=val.__getitem__)
    assert len(history) < max_epochs
    assert len(history) == best + 1 + patience
    assert all(v >= val[best] for v in val[best + 1 :])
    # The network holds the best epoch's weights: its validation loss is the recorded best.
    assert evaluate(net, source(vx, vy), loss="mae") == val[best]


def test_patience_none_never_stops_early_but_keeps_the_best(monkeypatch) -> None:
    scripted = iter([1.0, 0.2, 0.5, 0.6, 0.7, 0.8])
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: next(scripted))
    snapshots, callback = snapshotter()
    x, y = learnable_data(32)
    net = make_net()
    history = train(
        net,
        source(x, y),
        val_source=source(x, y),
        patience=None,
        max_epochs=6,
        callbacks=[callback],
        progress=False,
    )
    assert len(history) == 6
    assert all(torch.equal(v, snapshots[2][k]) for k, v in net.state_dict().items())


# ------------------------------------------------------------------------------------------
# gradient clipping
# ------------------------------------------------------------------------------------------


def _grad_norm(net: nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in net.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm())


def test_gradients_are_clipped_to_grad_clip() -> None:
    # After training, .grad holds the last (clipped) gradients.
    x, y = learnable_data(32)
    y = y * 100  # large errors, large gradients
    clipped, free = make_net(), make_net()
    free.load_state_dict(clipped.state_dict())
    train(clipped, source(x, y, 32), loss="mse", grad_clip=1e-3, max_epochs=1, progress=False)
    train(free, source(x, y, 32), loss="mse", grad_clip=None, max_epochs=1, progress=False)
    assert _grad_norm(clipped) <= 1e-3 * (1 + 1e-4)
    assert _grad_norm(free) > 1.0


def test_clip_grad_norm_is_called_with_grad_clip(monkeypatch) -> None:
    calls: list[float] = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        calls.append(max_norm)
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    quick_train(grad_clip=0.25, max_epochs=1)
    assert calls == [0.25, 0.25]  # two batches of 16
    calls.clear()
    quick_train(grad_clip=None, max_epochs=1)
    assert calls == []


# ------------------------------------------------------------------------------------------
# divergence
# ------------------------------------------------------------------------------------------


def _assert_helpful(error: TrainingDivergedError) -> None:
    message = str(error)
    assert "NaN or infinite" in message
    assert "lower lr" in message and "grad_clip" in message and "scaling" in message
    assert isinstance(error, ForecasterError) and isinstance(error, ArithmeticError)


def test_nan_in_the_first_batch_raises_diverged() -> None:
    x, y = learnable_data(32)
    x[3, 2, 0] = math.nan
    with pytest.raises(TrainingDivergedError) as info:
        train(make_net(), source(x, y), max_epochs=2, progress=False)
    _assert_helpful(info.value)
    assert "epoch 1" in str(info.value)


def test_nan_in_a_later_batch_raises_diverged() -> None:
    x, y = learnable_data(32)
    y[20, 0, 0] = math.inf  # second batch: caught by the end-of-epoch check
    with pytest.raises(TrainingDivergedError) as info:
        train(make_net(), source(x, y), loss="mse", max_epochs=2, progress=False)
    _assert_helpful(info.value)


def test_huge_lr_without_clipping_diverges() -> None:
    x, y = learnable_data(32)
    net = make_net(cell="rnn", nonlinearity="relu")
    with pytest.raises(TrainingDivergedError) as info:
        train(net, source(x, y), loss="mse", lr=1e30, grad_clip=None, max_epochs=20, progress=False)
    _assert_helpful(info.value)
    assert "no gradient clipping" in str(info.value)


# ------------------------------------------------------------------------------------------
# callbacks and time budget
# ------------------------------------------------------------------------------------------


def test_callbacks_get_record_and_network_every_epoch() -> None:
    seen: list[tuple[int, nn.Module]] = []
    net = make_net()
    history = quick_train(net, max_epochs=3, callbacks=[lambda r, n: seen.append((r, n))])
    assert [r for r, _ in seen] == history
    assert all(n is net for _, n in seen)


def test_stop_training_stops_early_and_other_callbacks_still_run() -> None:
    late: list[int] = []

    def stop_at_two(record: EpochRecord, network: nn.Module) -> None:
        if record.epoch == 2:
            raise StopTraining

    history = quick_train(max_epochs=10, callbacks=[stop_at_two, lambda r, n: late.append(r.epoch)])
    assert [r.epoch for r in history] == [1, 2]
    assert late == [1, 2]  # the callback after the stopper also saw the last epoch


def test_stop_training_keeps_the_best_weights(monkeypatch) -> None:
    scripted = iter([0.5, 0.1, 0.9])
    monkeypatch.setattr(training, "evaluate", lambda *args, **kwargs: next(scripted))
    snapshots, snapshot = snapshotter()

    def stop_at_three(record: EpochRecord, network: nn.Module) -> None:
        if record.epoch == 3:
            raise StopTraining

    x, y = learnable_data(32)
    net = make_net()
    train(
        net,
        source(x, y),
        val_source=source(x, y),
        lr=1e-2,
        max_epochs=10,
        callbacks=[snapshot, stop_at_three],
        progress=False,
    )
    assert all(torch.equal(v, snapshots[2][k]) for k, v in net.state_dict().items())


class Pruned(Exception):
    """Stands in for optuna.TrialPruned."""


def test_other_callback_exceptions_propagate() -> None:
    def prune(record: EpochRecord, network: nn.Module) -> None:
        if record.epoch == 2:
            raise Pruned("pruned at epoch 2")

    with pytest.raises(Pruned, match="epoch 2"):
        quick_train(max_epochs=5, callbacks=[prune])


def test_max_time_stops_after_the_first_epoch() -> None:
    history = quick_train(max_epochs=50, max_time=1e-9)
    assert len(history) == 1


# ------------------------------------------------------------------------------------------
# determinism and progress
# ------------------------------------------------------------------------------------------


def _run_seeded() -> tuple[list[EpochRecord], dict[str, Tensor]]:
    torch.manual_seed(123)
    x, y = learnable_data(48)
    vx, vy = learnable_data(16)
    net = make_net(cell="lstm", num_layers=2, dropout=0.2)
    history = train(
        net,
        shuffled_source(x, y),
        val_source=source(vx, vy),
        max_epochs=3,
        lr=1e-2,
        progress=False,
    )
    return history, net.state_dict()


def test_same_seed_same_history_and_weights_on_cpu() -> None:
    first, first_state = _run_seeded()
    second, second_state = _run_seeded()

    def losses(history: list[EpochRecord]) -> list[tuple]:
        return [(r.epoch, r.train_loss, r.val_loss, r.lr) for r in history]

    assert losses(first) == losses(second)
    assert first_state.keys() == second_state.keys()
    assert all(torch.equal(first_state[k], second_state[k]) for k in first_state)


def test_progress_false_prints_nothing(capsys) -> None:
    quick_train(max_epochs=2, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_true_shows_a_bar(capsys) -> None:
    x, y = learnable_data(32)
    vx, vy = learnable_data(16)
    train(
        make_net(),
        source(x, y),
        val_source=source(vx, vy),
        max_epochs=2,
        progress=True,
        description="unit-test",
    )
    err = capsys.readouterr().err
    assert "unit-test" in err
    assert "train" in err and "val" in err


# ------------------------------------------------------------------------------------------
# devices
# ------------------------------------------------------------------------------------------


def test_resolve_device_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_resolve_device_auto_without_cuda_is_cpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_resolve_device_cuda_without_cuda_raises(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataValidationError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(DataValidationError, match="'cuda:1'"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("garbage", ["banana", "", "gpu0", 3, None])
def test_resolve_device_garbage_raises(garbage: object) -> None:
    with pytest.raises(DataValidationError) as info:
        resolve_device(garbage)  # type: ignore[arg-type]
    assert repr(garbage) in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_on_cuda_with_autocast_and_loss_scaling(
    cell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scalers: list[torch.amp.GradScaler] = []
    real_scaler = torch.amp.GradScaler

    def recording_scaler(*args: object, **kwargs: object) -> torch.amp.GradScaler:
        scalers.append(real_scaler(*args, **kwargs))
        return scalers[-1]

    monkeypatch.setattr(torch.amp, "GradScaler", recording_scaler)
    device = torch.device("cuda")
    net = make_net(cell=cell).to(device)
    rnn_dtypes: list[torch.dtype] = []
    head_dtypes: list[torch.dtype] = []
    net.rnn.register_forward_hook(lambda module, args, output: rnn_dtypes.append(output[0].dtype))
    net.out.register_forward_hook(lambda module, args, output: head_dtypes.append(output.dtype))
    x, y = learnable_data(64)
    vx, vy = learnable_data(32)
    history = train(
        net,
        source(x.to(device), y.to(device)),
        val_source=source(vx.to(device), vy.to(device)),
        device=device,
        amp=True,
        loss="mse",
        lr=1e-2,
        max_epochs=5,
        patience=None,
        progress=False,
    )
    assert len(history) == 5
    assert all(math.isfinite(r.train_loss) and math.isfinite(r.val_loss) for r in history)
    assert history[-1].train_loss < history[0].train_loss
    # bf16 autocast is on for training steps; PyTorch runs cuDNN recurrent kernels in float16
    # under any autocast dtype, so the loop scales the loss. Validation runs in float32, like
    # predict, so that early stopping judges the numbers users get.
    assert torch.bfloat16 in set(head_dtypes)
    assert set(head_dtypes) <= {torch.bfloat16, torch.float32}
    assert set(rnn_dtypes) <= {torch.float16, torch.bfloat16, torch.float32}
    assert len(scalers) == 1 and scalers[0].is_enabled()
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.isfinite(p).all() for p in net.parameters())
    # evaluation of the restored network on the device works without autocast too
    assert math.isfinite(evaluate(net, source(vx.to(device), vy.to(device)), "mse", device, False))


def test_no_loss_scaling_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    scalers: list[torch.amp.GradScaler] = []
    real_scaler = torch.amp.GradScaler

    def recording_scaler(*args: object, **kwargs: object) -> torch.amp.GradScaler:
        scalers.append(real_scaler(*args, **kwargs))
        return scalers[-1]

    monkeypatch.setattr(torch.amp, "GradScaler", recording_scaler)
    quick_train(max_epochs=1, amp=True)
    assert all(not scaler.is_enabled() for scaler in scalers)

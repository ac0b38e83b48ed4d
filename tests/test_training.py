"""Tests for forecaster.training.loop: the loop, losses, schedules, early stopping, clipping,
divergence, callbacks, time budget, determinism, progress bar and device resolution; checkpoints
and resume (a real SIGKILL of a subprocess), GPU out-of-memory handling (simulated on the CPU)
and data-parallel training under torchrun (two CPU processes)."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch import Tensor, nn

import forecaster
import forecaster.training.forward as forward
import forecaster.training.loop as training
import forecaster.training.stopping
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.nn import RecurrentNet
from forecaster.training.loop import (
    LOSSES,
    LR_SCHEDULES,
    Checkpointer,
    CheckpointError,
    EpochRecord,
    GPUOutOfMemoryError,
    StopTraining,
    TrainingDivergedError,
    TrainSettings,
    evaluate,
    loss_function,
    predict_batched,
    read_checkpoint,
    resolve_device,
    train,
)
from forecaster.training.seeding import seeded_generators

WORKER = Path(__file__).resolve().with_name("training_worker.py")

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
    # the quantile loss trains a network that emits quantiles (and only such a network)
    net = make_net(quantiles=[0.1, 0.5, 0.9]) if loss == "quantile" else None
    history = quick_train(net, loss=loss)
    assert all(math.isfinite(r.train_loss) for r in history)
    if loss == "quantile":
        with pytest.raises(DataValidationError, match="quantile"):
            quick_train(make_net(), loss=loss)


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
    monkeypatch.setattr(forward, "validation_loss", lambda *args, **kwargs: 1.0)
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
        ({"max_epochs": 0}, "max_epochs must be an integer >= 1, got 0"),
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
    monkeypatch.setattr(forward, "validation_loss", lambda *args, **kwargs: next(scripted))
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
    monkeypatch.setattr(forward, "validation_loss", lambda *args, **kwargs: next(scripted))
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
    monkeypatch.setattr(forward, "validation_loss", lambda *args, **kwargs: next(scripted))
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
    assert len(history) == 1 and history.stopped_by == "max_time"


def test_the_history_says_what_ended_training(monkeypatch, tmp_path) -> None:
    """max_time cutting a run was told apart from nothing (len(history) only)."""
    x, y = learnable_data(32)

    def stop(record: EpochRecord, network: nn.Module) -> None:
        raise StopTraining

    assert quick_train(max_epochs=2).stopped_by == "max_epochs"
    assert quick_train(max_epochs=5, callbacks=[stop]).stopped_by == "callback"
    # the budget spent at the last epoch cut nothing
    assert quick_train(max_epochs=1, max_time=1e-9).stopped_by == "max_epochs"
    scripted = iter([1.0, 0.2, 0.5, 0.6])
    with monkeypatch.context() as patched:
        patched.setattr(forward, "validation_loss", lambda *args, **kwargs: next(scripted))
        early = quick_train(max_epochs=50, patience=2, val_source=source(x, y))
    assert early.stopped_by == "early_stopping" and len(early) == 4
    # a checkpoint keeps it for a resume of the finished run
    checkpointer = Checkpointer(tmp_path / "run.safetensors")
    quick_train(max_epochs=5, callbacks=[stop], checkpoint=checkpointer)
    state = checkpointer.load()
    assert state.stopped_by == "callback"
    assert quick_train(max_epochs=5, resume_from=state).stopped_by == "callback"
    # a checkpoint written before the reason was stored reads as None (unknown)
    old = Checkpointer(tmp_path / "old.safetensors")
    with monkeypatch.context() as patched:
        patched.setattr(training.TrainingState, "_OPTIONAL_FIELDS", ("averaged",))
        quick_train(max_epochs=1, checkpoint=old)
    assert old.load().stopped_by is None


# ------------------------------------------------------------------------------------------
# weight averaging (ema_decay)
# ------------------------------------------------------------------------------------------


def stepwise_source(x: Tensor, y: Tensor, net: nn.Module, seen: list[dict[str, Tensor]]):
    """``source(x, y)`` that records ``net``'s parameters before each batch is handed out:
    the weights after every step but the last."""

    def batches(epoch: int) -> Iterator[tuple[Tensor, None, Tensor]]:
        for batch in source(x, y)(epoch):
            seen.append({k: v.detach().clone() for k, v in net.named_parameters()})
            yield batch

    return batches


def test_ema_decay_keeps_the_moving_average_of_every_step() -> None:
    x, y = learnable_data(48)
    plain, steps = make_net(), []
    start = {k: v.clone() for k, v in plain.state_dict().items()}
    train(plain, stepwise_source(x, y, plain, steps), max_epochs=3, lr=1e-2, progress=False)
    trajectory = [*steps[1:], dict(plain.named_parameters())]  # after steps 1 .. n
    assert len(trajectory) == 9  # 3 epochs of 3 batches
    expected = {k: v.detach().clone() for k, v in trajectory[0].items()}  # the first copies
    for n, weights in enumerate(trajectory[1:], start=1):
        decay = min(0.3, (1 + n) / (10 + n))  # the warm-up, then ema_decay from step 4 on
        for k in expected:
            expected[k] = decay * expected[k] + (1 - decay) * weights[k].detach()

    averaged = make_net()
    averaged.load_state_dict(start)
    train(averaged, source(x, y), max_epochs=3, lr=1e-2, progress=False, ema_decay=0.3)
    for k, value in averaged.named_parameters():
        torch.testing.assert_close(value.detach(), expected[k])
    assert not same_weights(averaged, plain)  # the raw steps were averaged away


def test_ema_validation_and_callbacks_see_the_averaged_weights() -> None:
    x, y = learnable_data(48)
    vx, vy = learnable_data(16)
    net, seen = make_net(), []

    def check(record: EpochRecord, network: nn.Module) -> None:
        with torch.no_grad():
            loss = nn.functional.l1_loss(network(vx), vy).item()
        seen.append((network is net, record.val_loss, loss))

    train(
        net, source(x, y), val_source=source(vx, vy), max_epochs=3, ema_decay=0.9,
        lr=1e-2, callbacks=[check], progress=False,
    )  # fmt: skip
    assert [s[0] for s in seen] == [False] * 3  # the average, not the network being stepped
    for _, val_loss, loss in seen:
        assert val_loss == pytest.approx(loss, rel=1e-5)


def test_ema_with_early_stopping_restores_the_best_average(monkeypatch) -> None:
    scripted = iter([0.5, 0.2, 0.4, 0.3])
    monkeypatch.setattr(forward, "validation_loss", lambda *args: next(scripted))
    best, keep = snapshotter()
    net = make_net()
    quick_train(net, max_epochs=4, ema_decay=0.9, val_source=source(*learnable_data(8)),
                callbacks=[keep])  # fmt: skip
    assert net.state_dict().keys() == best[2].keys()
    assert all(torch.equal(v, best[2][k]) for k, v in net.state_dict().items())
    assert not all(torch.equal(v, best[4][k]) for k, v in net.state_dict().items())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ema_average_on_cuda_keeps_its_recurrent_weights_in_one_cudnn_buffer() -> None:
    """The average is a deep copy of the network; unflattened, every validation forward on
    CUDA copies its weights into one buffer again and warns."""
    device = torch.device("cuda")
    x, y = (t.to(device) for t in learnable_data(48))
    net = make_net(cell="gru").to(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(
            net, source(x, y), val_source=source(x, y), device=device, max_epochs=2,
            ema_decay=0.9, lr=1e-2, progress=False,
        )  # fmt: skip
    assert not [w for w in caught if "single contiguous chunk" in str(w.message)]


def test_ema_decay_auto_chooses_from_the_steps_per_epoch() -> None:
    assert TrainSettings(ema_decay="auto", steps_per_epoch=25).ema_decay == 0.99
    assert TrainSettings(ema_decay="auto", steps_per_epoch=24).ema_decay is None
    with pytest.raises(DataValidationError, match="ema_decay='auto' chooses from the optim"):
        TrainSettings(ema_decay="auto")  # steps_per_epoch unknown (0)
    x, y = learnable_data(64)
    runs = []
    for decay in ("auto", 0.99, None):
        _ = torch.manual_seed(0)
        net = make_net()
        train(net, source(x, y), max_epochs=2, steps_per_epoch=25, ema_decay=decay,
              progress=False)  # fmt: skip
        runs.append(net.state_dict())
    auto, averaged, plain = runs
    assert all(torch.equal(v, averaged[k]) for k, v in auto.items())
    assert not all(torch.equal(v, plain[k]) for k, v in auto.items())


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, "0.9", "Auto", float("nan")])
def test_ema_decay_outside_0_1_is_refused_before_training(decay: object) -> None:
    net = make_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(DataValidationError, match="ema_decay"):
        quick_train(net, ema_decay=decay)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


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


def test_progress_true_shows_progress(caplog, capsys) -> None:
    """progress=True where standard error is no terminal (captured here, as in a log file):
    one log line per epoch with the losses, no carriage-return bar (a terminal or notebook
    gets the bar: tests/test_progress.py)."""
    caplog.set_level(logging.INFO, logger="forecaster.training.progress")
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
    lines = [r.getMessage() for r in caplog.records if r.name == "forecaster.training.progress"]
    assert [line.split(",")[0] for line in lines] == [
        "unit-test: epoch 1/2",
        "unit-test: epoch 2/2",
    ]
    assert all("train " in line and "val " in line for line in lines)
    assert "\r" not in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# devices
# ------------------------------------------------------------------------------------------


def test_resolve_device_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_the_device_rule_reads_a_torch_device_as_its_text() -> None:
    """A torch.device passed the rule as the object (a saved estimator's config could not
    hold it) and any type did (meta: refused later with other words)."""
    from forecaster._validation import check

    assert check("device", torch.device("cpu", 0)) == "cpu"
    assert check("device", torch.device("cuda", 1)) == "cuda:1"
    assert resolve_device(torch.device("cpu", 0)) == torch.device("cpu")
    with pytest.raises(DataValidationError, match=r"or 'mps', got device\(type='meta'\)"):
        resolve_device(torch.device("meta"))


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_step_is_fused_and_waits_for_no_host_copy() -> None:
    """A CUDA step (autocast, loss scaling, clipping, AdamW) queues its kernels without one
    device-to-host synchronisation: the fused AdamW reads the scaler's inf flag on the device.
    A step that synchronises leaves the GPU idle while Python prepares the next batch."""
    from forecaster.training.step import Stepper, training_compute

    device = torch.device("cuda")
    net = make_net(cell="lstm").to(device)
    settings = TrainSettings(device="cuda", amp=True, lr=1e-2, grad_clip=1.0)
    optimizer = training._make_optimizer(net, settings)
    assert optimizer.defaults["fused"] is True
    scaler = torch.amp.GradScaler("cuda")
    loss_fn = loss_function("mse")
    compute = training_compute(net, loss_fn, device, data_parallel=False)
    stepper = Stepper(
        compute, net, optimizer, scaler, device=device, use_amp=True, grad_clip=1.0,
        on_oom="raise",
    )  # fmt: skip
    x, y = (t.to(device) for t in learnable_data(64))
    stepper.step(x, None, y, None)  # warm-up: cuDNN plans, the scaler's state
    torch.cuda.synchronize()
    before = [p.detach().clone() for p in net.parameters()]
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [stepper.step(x, None, y, None) for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(math.isfinite(float(loss)) for loss in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_a_resumed_optimizer_keeps_the_implementation_of_its_device() -> None:
    """load_state_dict copies the saved group's ``fused`` flag: a CUDA checkpoint resumed on
    the CPU ran the fused AdamW there (other numerics than the CPU's for-each step)."""
    from forecaster.training.checkpoint import _keep_implementation

    net = make_net()
    x, y = learnable_data(16)
    first = training._make_optimizer(net, TrainSettings(lr=1e-2))
    nn.functional.mse_loss(net(x, None), y).backward()
    first.step()
    saved = first.state_dict()
    saved["param_groups"][0]["fused"] = True  # as written by a CUDA run
    resumed = training._make_optimizer(net, TrainSettings(lr=1e-2))
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["fused"] is True
    _keep_implementation(resumed)
    assert resumed.param_groups[0]["fused"] is None
    steps = [state["step"] for state in resumed.state.values()]
    assert steps and all(step.device.type == "cpu" and float(step) == 1.0 for step in steps)
    nn.functional.mse_loss(net(x, None), y).backward()
    resumed.step()
    assert all(float(state["step"]) == 2.0 for state in resumed.state.values())


def test_no_loss_scaling_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    scalers: list[torch.amp.GradScaler] = []
    real_scaler = torch.amp.GradScaler

    def recording_scaler(*args: object, **kwargs: object) -> torch.amp.GradScaler:
        scalers.append(real_scaler(*args, **kwargs))
        return scalers[-1]

    monkeypatch.setattr(torch.amp, "GradScaler", recording_scaler)
    quick_train(max_epochs=1, amp=True)
    assert all(not scaler.is_enabled() for scaler in scalers)


# ------------------------------------------------------------------------------------------
# checkpoints and resume
# ------------------------------------------------------------------------------------------


class Interrupted(Exception):
    """Stands in for a crash at the end of an epoch (before its checkpoint is written)."""


def interrupt_at(epoch: int) -> Callable[[EpochRecord, nn.Module], None]:
    def callback(record: EpochRecord, network: nn.Module) -> None:
        if record.epoch == epoch:
            raise Interrupted

    return callback


def epoch_source(x: Tensor, y: Tensor, batch_size: int = 16):
    """Batches in an order drawn from a generator seeded by the epoch (like the estimators')."""

    def batches(epoch: int) -> Iterator[tuple[Tensor, None, Tensor]]:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for lo in range(0, len(x), batch_size):
            rows = order[lo : lo + batch_size]
            yield x[rows], None, y[rows]

    return batches


def dropout_net() -> RecurrentNet:
    torch.manual_seed(1)
    return make_net(cell="gru", num_layers=2, dropout=0.3)


def resume_case(**options: object) -> dict[str, object]:
    torch.manual_seed(5)
    x, y = learnable_data(96)
    vx, vy = learnable_data(32)
    settings: dict[str, object] = {
        "val_source": source(vx, vy),
        "max_epochs": 7,
        "patience": 3,
        "lr": 1e-2,
        "steps_per_epoch": 6,
        "progress": False,
    }
    settings.update(options)
    return {"train_source": epoch_source(x, y), **settings}


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def losses_of(history: list[EpochRecord]) -> list[tuple]:
    return [(r.epoch, r.train_loss, r.val_loss, r.lr) for r in history]


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_resume_after_an_interruption_gives_the_uninterrupted_weights(tmp_path, schedule) -> None:
    case = resume_case(lr_schedule=schedule)
    reference = dropout_net()
    expected = train(reference, **case)

    checkpointer = Checkpointer(tmp_path / "run.safetensors", every=2, fingerprint={"k": 1})
    with pytest.raises(Interrupted):
        train(dropout_net(), checkpoint=checkpointer, **{**case, "callbacks": [interrupt_at(5)]})
    state = checkpointer.load()
    assert (state.epoch, state.finished) == (4, False)  # every=2: epoch 4 was the last written
    torch.manual_seed(999)  # whatever happened in between, the checkpoint restores the RNGs
    resumed = dropout_net()
    history = train(resumed, checkpoint=checkpointer, resume_from=state, **case)
    assert losses_of(history) == losses_of(expected)
    assert same_weights(resumed, reference)


def test_resume_from_a_finished_checkpoint_restores_the_best_weights_only(tmp_path) -> None:
    case = resume_case()
    checkpointer = Checkpointer(tmp_path / "run.safetensors")
    reference = dropout_net()
    expected = train(reference, checkpoint=checkpointer, **case)
    state = checkpointer.load()
    assert state.finished and state.epoch == len(expected)
    calls: list[int] = []
    restored = make_net(cell="gru", num_layers=2, dropout=0.3)  # other initial weights
    history = train(
        restored,
        resume_from=state,
        callbacks=[lambda record, network: calls.append(record.epoch)],
        **case,
    )
    assert calls == []  # no epoch ran again
    assert losses_of(history) == losses_of(expected)
    assert same_weights(restored, reference)


def test_checkpoints_are_written_every_n_epochs_and_at_the_end(monkeypatch, tmp_path) -> None:
    written: list[tuple[int, bool]] = []
    real_save = Checkpointer.save

    def spy(self: Checkpointer, state: training.TrainingState) -> None:
        written.append((state.epoch, state.finished))
        real_save(self, state)

    monkeypatch.setattr(Checkpointer, "save", spy)
    quick_train(max_epochs=7, checkpoint=Checkpointer(tmp_path / "c.safetensors", every=3))
    assert written == [(3, False), (6, False), (7, True)]


def test_a_checkpoint_is_one_safetensors_file_with_json_metadata(tmp_path) -> None:
    from safetensors import safe_open

    path = tmp_path / "run.safetensors"
    case = resume_case(lr_schedule="plateau")  # a schedule whose state holds inf and tuples
    train(dropout_net(), checkpoint=Checkpointer(path, extra={"seed": 3}), **case)
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]  # no temporary left
    with safe_open(str(path), framework="pt") as handle:
        document = json.loads(handle.metadata()["forecaster_checkpoint"])
        names = list(handle.keys())
    assert document["format"] == "forecaster-checkpoint" and document["extra"] == {"seed": 3}
    assert any(name.startswith("state/network/") for name in names)
    assert any(name.startswith("state/optimizer/") for name in names)
    assert any(name.startswith("state/rng/0/torch") for name in names)
    state = read_checkpoint(path)
    assert state.scheduler is not None and state.scheduler["mode_worse"] == math.inf
    assert isinstance(state.optimizer["param_groups"][0]["betas"], tuple)
    assert set(state.optimizer["state"]) == set(range(len(list(dropout_net().parameters()))))
    assert state.rng[0]["numpy"][1].dtype == np.uint32  # NumPy's MT19937 key round-trips


def test_a_failed_write_keeps_the_previous_checkpoint(monkeypatch, tmp_path) -> None:
    path = tmp_path / "run.safetensors"
    checkpointer = Checkpointer(path)
    quick_train(max_epochs=2, checkpoint=checkpointer)
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CheckpointError, match=r"Cannot write the checkpoint .*disk full"):
        quick_train(max_epochs=1, checkpoint=checkpointer)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.safetensors"]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "truncated"])
def test_unreadable_checkpoints_raise_a_clear_error(tmp_path, content) -> None:
    path = tmp_path / "run.safetensors"
    if content == "truncated":
        quick_train(max_epochs=1, checkpoint=Checkpointer(path))
        content = path.read_bytes()[:-100]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable forecaster checkpoint"):
        Checkpointer(path).load()


def test_a_missing_checkpoint_and_a_foreign_fingerprint_are_refused(tmp_path) -> None:
    path = tmp_path / "run.safetensors"
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        Checkpointer(path).load()
    quick_train(max_epochs=1, checkpoint=Checkpointer(path, fingerprint={"params": {"lr": 0.1}}))
    with pytest.raises(CheckpointError, match=r"params\.lr: checkpoint 0\.1, now 0\.2"):
        Checkpointer(path, fingerprint={"params": {"lr": 0.2}}).load()


def test_a_checkpoint_of_another_network_is_refused(tmp_path) -> None:
    path = tmp_path / "run.safetensors"
    quick_train(make_net(hidden_size=8), max_epochs=1, checkpoint=Checkpointer(path))
    state = Checkpointer(path).load()
    with pytest.raises(CheckpointError, match="does not fit this network"):
        quick_train(make_net(hidden_size=4), max_epochs=2, resume_from=state)
    with pytest.raises(CheckpointError, match="lr_schedule"):
        quick_train(make_net(hidden_size=8), max_epochs=2, resume_from=state, lr_schedule="cosine")


def test_resume_with_ema_decay_gives_the_uninterrupted_average(tmp_path) -> None:
    case = resume_case(ema_decay=0.7)
    reference = dropout_net()
    expected = train(reference, **case)
    checkpointer = Checkpointer(tmp_path / "run.safetensors", every=2)
    with pytest.raises(Interrupted):
        train(dropout_net(), checkpoint=checkpointer, **{**case, "callbacks": [interrupt_at(5)]})
    state = checkpointer.load()
    assert state.averaged is not None and int(state.averaged["n_averaged"]) == 4 * 6
    resumed = dropout_net()
    history = train(resumed, checkpoint=checkpointer, resume_from=state, **case)
    assert losses_of(history) == losses_of(expected)
    assert same_weights(resumed, reference)
    # the average is part of the state: resuming with another ema setting is refused
    with pytest.raises(CheckpointError, match="ema_decay=None"):
        train(dropout_net(), resume_from=state, **{**case, "ema_decay": None})
    plain = Checkpointer(tmp_path / "plain.safetensors")
    quick_train(make_net(), max_epochs=1, checkpoint=plain)
    assert plain.load().averaged is None
    with pytest.raises(CheckpointError, match="written with ema_decay=None"):
        quick_train(make_net(), max_epochs=2, resume_from=plain.load(), ema_decay=0.9)


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_result(tmp_path) -> None:
    """A fit in a subprocess is killed with SIGKILL after its first checkpoint; a new process
    resumes it. The forecasts are bit-identical to those of an uninterrupted fit (CPU, fixed
    seed, dropout on): the batches are a function of the epoch and the checkpoint restores the
    optimizer, schedule, early-stopping state and the random number generators."""
    sys.path.insert(0, str(WORKER.parent))
    import training_worker

    folder = tmp_path / "checkpoints"
    command = [sys.executable, str(WORKER), "--checkpoint-dir", str(folder)]
    killed = subprocess.Popen(  # sleeps after every epoch, so that it is killed mid-training
        [*command, str(tmp_path / "killed"), "--sleep", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = folder / "checkpoint-0.safetensors"
    deadline = time.monotonic() + 180
    while not first.is_file() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    output = killed.communicate()[0]
    assert killed.returncode == -signal.SIGKILL, output
    state = read_checkpoint(first)
    assert 1 <= state.epoch < 8 and not state.finished  # killed mid-training
    assert not (tmp_path / "killed" / "forecast.parquet").exists()

    resumed = subprocess.run(
        [*command, str(tmp_path / "resumed"), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr

    frame = training_worker.frame()
    reference = training_worker.model().fit(frame)
    forecast = pl.read_parquet(tmp_path / "resumed" / "forecast.parquet")
    assert forecast.equals(reference.predict(frame))
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [(r["train_loss"], r["val_loss"]) for r in history] == [
        (r["train_loss"], r["val_loss"]) for r in reference.history_
    ]


# ------------------------------------------------------------------------------------------
# checkpoints through the estimators
# ------------------------------------------------------------------------------------------


def worker_module():
    sys.path.insert(0, str(WORKER.parent))
    import training_worker

    return training_worker


def interrupted_fit(model: object, frame: object, epoch: int) -> None:
    with pytest.raises(Interrupted):
        model.fit(frame, callbacks=[interrupt_at(epoch)])


def test_forecaster_resume_checks_its_arguments(tmp_path) -> None:
    worker = worker_module()
    frame = worker.frame()
    with pytest.raises(DataValidationError, match="resume=True needs checkpoint_dir"):
        worker.model(max_epochs=1).fit(frame, resume=True)
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        worker.model(max_epochs=1, checkpoint_dir=str(tmp_path)).fit(frame, resume=True)
    with pytest.raises(DataValidationError, match="checkpoint_every"):
        worker.model(checkpoint_dir=str(tmp_path), checkpoint_every=0).fit(frame)
    with pytest.raises(DataValidationError, match="on_oom"):
        worker.model(on_oom="shrink").fit(frame)
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match="is a file"):
        worker.model(max_epochs=1, checkpoint_dir=str(tmp_path / "file")).fit(frame)


def test_forecaster_refuses_to_resume_on_other_data_or_parameters(tmp_path) -> None:
    worker = worker_module()
    frame = worker.frame()
    folder = str(tmp_path)
    interrupted_fit(worker.model(max_epochs=4, checkpoint_dir=folder), frame, 2)
    with pytest.raises(CheckpointError, match=r"params\.hidden_size: checkpoint 16, now 8"):
        worker.model(max_epochs=4, hidden_size=8, checkpoint_dir=folder).fit(frame, resume=True)
    changed = frame.with_columns(pl.col("y") * 2)
    with pytest.raises(CheckpointError, match="training data differ"):
        worker.model(max_epochs=4, checkpoint_dir=folder).fit(changed, resume=True)
    # parameters that do not change the training may differ
    resumed = worker.model(max_epochs=4, checkpoint_dir=folder, checkpoint_every=3, max_time=1e6)
    assert len(resumed.fit(frame, resume=True).history_) == 4


def test_forecaster_fresh_fit_replaces_old_checkpoints(tmp_path) -> None:
    worker = worker_module()
    frame = worker.frame()
    folder = str(tmp_path)
    worker.model(max_epochs=2, n_ensemble=2, checkpoint_dir=folder).fit(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-0.safetensors",
        "checkpoint-1.safetensors",
    ]
    worker.model(max_epochs=1, checkpoint_dir=folder).fit(frame)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-0.safetensors"]
    assert read_checkpoint(tmp_path / "checkpoint-0.safetensors").epoch == 1


def test_forecaster_ensemble_and_unseeded_fits_resume(tmp_path) -> None:
    worker = worker_module()
    frame = worker.frame()
    reference = worker.model(max_epochs=3, n_ensemble=2).fit(frame)
    folder = str(tmp_path / "ensemble")
    interrupted_fit(worker.model(max_epochs=3, n_ensemble=2, checkpoint_dir=folder), frame, 5)
    resumed = worker.model(max_epochs=3, n_ensemble=2, checkpoint_dir=folder)
    assert resumed.fit(frame, resume=True).predict(frame).equals(reference.predict(frame))

    # random_state=None: the seed drawn by the interrupted fit is the one the resume uses
    folder = str(tmp_path / "unseeded")
    interrupted_fit(worker.model(random_state=None, checkpoint_dir=folder), frame, 3)
    seed = read_checkpoint(Path(folder) / "checkpoint-0.safetensors").extra["fit_seed"]
    resumed = worker.model(random_state=None, checkpoint_dir=folder).fit(frame, resume=True)
    assert resumed.predict(frame).equals(worker.model(random_state=seed).fit(frame).predict(frame))


def test_resume_leaves_the_global_numpy_and_random_streams_alone(tmp_path) -> None:
    """A resume set the global NumPy and Python generators to the interrupted process's
    states (from the checkpoint), though training draws nothing from them."""
    worker = worker_module()
    frame = worker.frame()
    folder = str(tmp_path)
    np.random.seed(999)  # noqa: NPY002 (the interrupted process's own global state)
    random.seed(999)
    interrupted_fit(worker.model(max_epochs=4, checkpoint_dir=folder), frame, 2)
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    expected = (np.random.rand(), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    resumed = worker.model(max_epochs=4, checkpoint_dir=folder).fit(frame, resume=True)
    assert (np.random.rand(), random.random()) == expected  # noqa: NPY002
    assert resumed.predict(frame).equals(worker.model(max_epochs=4).fit(frame).predict(frame))


def test_a_resumed_ensemble_counts_max_time_spent_before_the_interruption(
    tmp_path, monkeypatch
) -> None:
    """The budget of later members was measured from the resumed process's start, so the
    resumed fit trained a member the uninterrupted one never had. The budget reads a clock
    that only the epochs move (0.3 s each), so a loaded machine cannot change the outcome."""
    worker = worker_module()
    frame = worker.frame()
    clock = [0.0]
    monkeypatch.setattr(
        forecaster.training.stopping, "time", types.SimpleNamespace(perf_counter=lambda: clock[0])
    )

    def slow(record: EpochRecord, network: nn.Module) -> None:
        clock[0] += 0.3

    def model(**params: object) -> object:
        return worker.model(max_epochs=20, n_ensemble=2, max_time=1.0, patience=None, **params)

    with pytest.warns(ForecasterWarning, match="max_time"):
        reference = model().fit(frame, callbacks=[slow])
    assert reference.n_members_ == 1  # max_time ran out during the first member
    folder = str(tmp_path)
    with pytest.raises(Interrupted):  # after the checkpoint of epoch 2 (about 0.7 s)
        model(checkpoint_dir=folder).fit(frame, callbacks=[slow, interrupt_at(3)])
    with pytest.warns(ForecasterWarning, match="max_time"):
        resumed = model(checkpoint_dir=folder).fit(frame, callbacks=[slow], resume=True)
    assert resumed.n_members_ == 1 and resumed.stopped_by_ == "max_time"
    assert {r.get("member", 0) for r in resumed.history_} == {0}


def test_regressor_resume_gives_the_uninterrupted_predictions(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12, 2)).astype(np.float32)
    y = X[:, -1, 0] + 0.5 * X[:, -3, 1]
    params = {"hidden_size": 8, "dropout": 0.2, "num_layers": 2, "max_epochs": 6}
    params |= {"random_state": 0, "device": "cpu", "lr_schedule": "onecycle"}
    reference = forecaster.RNNRegressor(**params).fit(X, y)
    model = forecaster.RNNRegressor(**params, checkpoint_dir=str(tmp_path))
    with pytest.raises(Interrupted):
        model.fit(X, y, callbacks=[interrupt_at(4)])
    resumed = forecaster.RNNRegressor(**params, checkpoint_dir=str(tmp_path)).fit(X, y, resume=True)
    assert np.array_equal(resumed.predict(X), reference.predict(X))


def test_cli_fit_resume_continues_an_interrupted_fit(monkeypatch, tmp_path, capsys) -> None:
    from forecaster.estimators import RNNForecaster
    from forecaster.jobs import cli as cli

    spec = tmp_path / "pipelines" / "tiny.toml"
    spec.parent.mkdir()
    spec.write_text(
        """
[pipeline]
name = "tiny"
[source]
dataset = "stocks"
tickers = ["MSFT", "SPX"]
[series]
id = "ticker"
time = "date"
targets = ["close"]
freq = "1bd"
missing = "ffill"
[features]
history_days = 500
[model]
lookback = 20
horizon = 5
hidden_size = 8
dropout = 0.2
max_epochs = 4
windows_per_epoch = 256
random_state = 0
device = "cpu"
[tracking]
enabled = false
"""
    )
    as_of = ["--as-of", "2016-12-30", "--no-progress"]
    assert cli.main(["fit", str(spec), "--out", str(tmp_path / "reference"), *as_of]) == 0

    real_fit = RNNForecaster.fit

    def crashing_fit(self, frame, y=None, *, callbacks=(), resume=False):
        return real_fit(self, frame, y, callbacks=[*callbacks, interrupt_at(3)], resume=resume)

    monkeypatch.setattr(RNNForecaster, "fit", crashing_fit)
    out = tmp_path / "models" / "m"
    assert cli.main(["fit", str(spec), "--out", str(out), *as_of]) == 1  # "crashed"
    folder = tmp_path / "models" / ".m.checkpoints"
    assert read_checkpoint(folder / "checkpoint-0.safetensors").epoch == 2
    monkeypatch.setattr(RNNForecaster, "fit", real_fit)
    capsys.readouterr()
    assert cli.main(["fit", str(spec), "--out", str(out), "--resume", *as_of]) == 0
    assert "resume   from the checkpoint in" in capsys.readouterr().err  # a step: stderr
    assert not folder.exists()  # removed once the model is saved
    reference = forecaster.load(tmp_path / "reference")
    resumed = forecaster.load(out)
    assert resumed.checkpoint_dir is None
    assert same_weights(resumed.network_, reference.network_)

    # --resume without a checkpoint trains from the start (schedulers can always pass it)
    assert cli.main(["fit", str(spec), "--out", str(out), "--resume", *as_of]) == 0
    assert "no checkpoint" in capsys.readouterr().err
    assert same_weights(forecaster.load(out).network_, reference.network_)


# ------------------------------------------------------------------------------------------
# GPU out of memory (simulated: the network raises torch's OutOfMemoryError above a size)
# ------------------------------------------------------------------------------------------


@pytest.fixture
def memory_limit(monkeypatch) -> Callable[[int, str], None]:
    def limit(windows: int, method: str = "training_loss") -> None:
        real = getattr(RecurrentNet, method)

        def limited(self, x, *args, **kwargs):
            if x.shape[0] > windows:
                raise torch.OutOfMemoryError(f"CUDA out of memory (simulated, {x.shape[0]})")
            return real(self, x, *args, **kwargs)

        monkeypatch.setattr(RecurrentNet, method, limited)

    return limit


def test_out_of_memory_says_the_batch_size_used_and_one_that_fits(memory_limit) -> None:
    memory_limit(20)
    x, y = learnable_data(128)
    with pytest.raises(GPUOutOfMemoryError) as caught:
        train(make_net(), source(x, y, batch_size=64), max_epochs=1, progress=False)
    error = caught.value
    assert isinstance(error, ForecasterError) and isinstance(error, MemoryError)
    assert (error.batch_size, error.suggested_batch_size) == (64, 16)  # 32 did not fit
    assert "batch of 64 windows ran out of GPU memory" in str(error)
    assert "batch_size=16" in str(error) and "on_oom='split'" in str(error)


def test_out_of_memory_with_not_even_one_window(memory_limit) -> None:
    memory_limit(0)
    x, y = learnable_data(16)
    with pytest.raises(GPUOutOfMemoryError, match="Not even one window fits") as caught:
        train(make_net(), source(x, y), max_epochs=1, progress=False)
    assert caught.value.suggested_batch_size is None


def test_on_oom_split_accumulates_gradients_over_parts(memory_limit) -> None:
    x, y = learnable_data(128)
    torch.manual_seed(3)
    whole = make_net()
    expected = train(whole, source(x, y, batch_size=64), max_epochs=3, progress=False)
    torch.manual_seed(3)
    smaller = make_net()
    train(smaller, source(x, y, batch_size=16), max_epochs=3, progress=False)

    memory_limit(20)
    torch.manual_seed(3)
    split = make_net()
    with pytest.warns(ForecasterWarning, match="split into 4 parts"):
        history = train(
            split, source(x, y, batch_size=64), max_epochs=3, progress=False, on_oom="split"
        )
    # the same effective batch of 64: equal to the unsplit run up to float rounding, unlike
    # training with batches of 16
    for name, value in whole.state_dict().items():
        assert torch.allclose(split.state_dict()[name], value, atol=1e-5), name
    assert not same_weights(smaller, whole)
    difference = smaller.state_dict()["out.weight"] - whole.state_dict()["out.weight"]
    assert difference.abs().max() > 1e-3
    assert [r.train_loss for r in history] == pytest.approx([r.train_loss for r in expected])


def test_validation_and_prediction_batches_back_off_automatically(memory_limit) -> None:
    x, y = learnable_data(64)
    vx, vy = learnable_data(48)
    torch.manual_seed(3)
    net = make_net()
    expected = train(
        net, source(x, y, 8), val_source=source(vx, vy, 48), max_epochs=2, progress=False
    )
    outputs = predict_batched(net, vx, batch_size=48)

    memory_limit(10, "forward")
    torch.manual_seed(3)
    limited = make_net()
    with pytest.warns(ForecasterWarning, match="validation batch of 48 windows ran out"):
        history = train(
            limited, source(x, y, 8), val_source=source(vx, vy, 48), max_epochs=2, progress=False
        )
    assert [r.val_loss for r in history] == pytest.approx([r.val_loss for r in expected])
    with pytest.warns(ForecasterWarning, match="prediction batch of 48 windows"):
        assert torch.allclose(predict_batched(net, vx, batch_size=48), outputs, atol=1e-6)
    memory_limit(0, "forward")
    with pytest.raises(GPUOutOfMemoryError, match="Not even one window of a prediction batch"):
        predict_batched(net, vx)


def test_forecaster_predict_backs_off_and_fit_names_the_batch_size(memory_limit) -> None:
    worker = worker_module()
    frame = worker.frame()
    model = worker.model(max_epochs=1).fit(frame)
    expected = model.predict(frame)
    memory_limit(40)
    with pytest.raises(GPUOutOfMemoryError, match=r"batch of 64 windows .* set batch_size=32"):
        worker.model(max_epochs=1).fit(frame)
    memory_limit(1, "forward")
    with pytest.warns(ForecasterWarning, match="running it in parts"):
        got = model.predict(frame)
    assert got.drop("y").equals(expected.drop("y"))
    assert np.allclose(got["y"].to_numpy(), expected["y"].to_numpy(), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------
# data-parallel training under torchrun
# ------------------------------------------------------------------------------------------


def run_worker_on_two_ranks(out: Path, *args: str) -> None:
    """Run the training worker under ``torchrun --nproc_per_node=2`` (gloo, CPU, one thread
    each) writing into ``out``; fail the test with its stderr if it fails."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    launched = subprocess.run(
        [*launch, str(WORKER), str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert launched.returncode == 0, launched.stderr[-3000:]


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process_training(tmp_path) -> None:
    """``torchrun --nproc_per_node=2`` (gloo, CPU) trains the worker's forecaster; rank 0 saves
    it. Each rank takes every other window of the epoch's seeded permutation in batches of
    ``batch_size // 2`` and DDP averages the two ranks' gradients, so every step uses the
    gradient of the same global batch of 64 windows as one process: the math is the same and
    only float rounding differs (the ranks sum their halves of the batch separately).

    Measured on this CPU (dropout 0, 8 epochs): forecasts differ from single-process ones by
    5e-4 of their standard deviation (5e-3 in a 6-epoch run), the loss histories by 7e-6
    relative (1.4e-4). The gap is larger than the rounding itself because Adam divides by
    ``sqrt(v) + 1e-8``: a gradient component that is exactly 0 in one process (an output bias
    under the MAE loss) is a rounding residue of ~4e-9 under DDP, which Adam turns into a
    visible step. A wrong global batch (32 instead of 64) differs by 0.77 std. The tolerances
    (2e-2 std, 1e-3 relative) leave a margin of 4x over the worst measurement.
    """
    worker = worker_module()
    out = tmp_path / "ddp"
    run_worker_on_two_ranks(out, "--dropout", "0")
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # all-reduced: every rank agrees
    assert sorted(p.name for p in out.iterdir()) == [
        "forecast.parquet",
        "history.json",
        "model",
        "rank-0.json",
        "rank-1.json",
    ]  # only rank 0 wrote the model and forecasts

    frame = worker.frame()
    single = worker.model(dropout=0.0).fit(frame)
    expected = single.predict(frame)["y"].to_numpy()
    distributed_model = forecaster.load(out / "model")
    got = distributed_model.predict(frame)["y"].to_numpy()
    assert np.abs(got - expected).max() <= 2e-2 * expected.std()
    single_losses = np.array([[r["train_loss"], r["val_loss"]] for r in single.history_])
    ddp_losses = np.array(ranks[0]["losses"])
    assert single_losses.shape == ddp_losses.shape
    assert np.allclose(ddp_losses, single_losses, rtol=1e-3, atol=0)


@pytest.mark.slow
def test_torchrun_ensemble_val_loss_is_over_every_ranks_validation_windows(tmp_path) -> None:
    """An ensemble's ``val_loss_`` (the averaged members scored once more) was each rank's
    mean over its own half of the validation windows: rank 0 saved and logged one value,
    rank 1 held another, and neither was the single-process one (tune minimises it)."""
    worker = worker_module()
    out = tmp_path / "ddp"
    run_worker_on_two_ranks(out, "--dropout", "0", "--epochs", "2", "--ensemble", "2")
    ranks = [json.loads((out / f"rank-{r}.json").read_text())["val_loss_"] for r in (0, 1)]
    assert ranks[0] == ranks[1]
    single = worker.model(dropout=0.0, max_epochs=2, n_ensemble=2).fit(worker.frame())
    assert ranks[0] == pytest.approx(single.val_loss_, rel=1e-3)
    assert forecaster.load(out / "model").val_loss_ == ranks[0]


# ------------------------------------------------------------------------------------------
# the loop's parts: settings, run_training, stopping, sources, exceptions' home
# ------------------------------------------------------------------------------------------


def test_run_training_with_settings_equals_train_with_keywords() -> None:
    from forecaster.training import TrainSettings, run_training

    x, y = learnable_data(32)
    results = []
    for call in ("train", "run_training"):
        torch.manual_seed(3)
        net = make_net(dropout=0.2, num_layers=2)
        options = {"max_epochs": 3, "lr": 5e-3, "lr_schedule": "cosine", "progress": False}
        if call == "train":
            history = train(net, source(x, y), val_source=source(x, y), **options)
        else:
            settings = TrainSettings(**options)  # type: ignore[arg-type]
            history = run_training(net, source(x, y), settings, val_source=source(x, y))
        results.append(([r.train_loss for r in history], net.state_dict()))
    (losses_a, state_a), (losses_b, state_b) = results
    assert losses_a == losses_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_epochs": 1.5}, "max_epochs"),
        ({"loss": "l2"}, "loss"),
        ({"lr": 0.0}, "lr"),
        ({"description": 3}, "description must be text"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_train_settings_refuse_what_train_refuses(options: dict, match: str) -> None:
    from forecaster.training import TrainSettings

    with pytest.raises(DataValidationError, match=match) as from_settings:
        TrainSettings(**options)
    with pytest.raises(DataValidationError, match=match) as from_train:
        quick_train(**options)
    assert str(from_settings.value) == str(from_train.value)


def test_early_stopping_keeps_the_best_weights_and_counts_stale_epochs() -> None:
    from forecaster.training.stopping import EarlyStopping

    net = nn.Linear(1, 1)
    stopping = EarlyStopping(patience=2)
    assert stopping.update(None, net) is False  # no validation: never stops
    assert stopping.update(1.0, net) is False
    best = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight.add_(1.0)
    assert [stopping.update(loss, net) for loss in (2.0, 3.0)] == [False, True]
    stopping.restore_best(net)
    assert all(torch.equal(net.state_dict()[k], best[k]) for k in best)
    assert EarlyStopping(patience=None, stale=99).update(5.0, net) is False


def test_time_budget_counts_earlier_seconds() -> None:
    from forecaster.training.stopping import TimeBudget

    assert not TimeBudget(None, elapsed=1e9).spent()
    assert TimeBudget(10.0, elapsed=10.0).spent()
    assert not TimeBudget(10.0, elapsed=0.0).spent()


def test_checked_sources_are_not_wrapped_twice() -> None:
    from forecaster.training.sources import as_source

    x, y = learnable_data(16)
    checked = as_source(source(x, y), "train_source")
    assert as_source(checked, "train_source") is checked
    assert len(list(checked(1))) == 1


def test_training_errors_live_in_the_exceptions_module() -> None:
    import forecaster.exceptions as exceptions
    import forecaster.training as package
    from forecaster.training.distributed import DistributedError

    for error in (TrainingDivergedError, CheckpointError, GPUOutOfMemoryError, DistributedError):
        assert error.__module__ == "forecaster.exceptions"
        assert getattr(exceptions, error.__name__) is error
        assert getattr(package, error.__name__) is error
        assert issubclass(error, ForecasterError)


@pytest.mark.parametrize(("patience", "halved_after"), [(None, 3), (8, 3), (3, 2), (2, 1)])
def test_plateau_halves_the_rate_before_early_stopping_would_end_the_run(patience, halved_after):
    """With patience <= 3 the plateau schedule (halve after 3 flat epochs) never acted: early
    stopping ended the run at or before that epoch. Its patience now follows early stopping's."""
    from forecaster.training.schedules import Schedule

    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    schedule = Schedule("plateau", optimizer, max_epochs=20, steps_per_epoch=1, patience=patience)
    rates = []
    for _ in range(6):  # a validation loss that never improves after the first epoch
        schedule.after_epoch(val_loss=1.0, train_loss=1.0)
        rates.append(optimizer.param_groups[0]["lr"])
    flat_epochs = rates.index(0.5)  # epochs after the first before the rate is halved
    assert flat_epochs == halved_after
    if patience is not None:
        assert flat_epochs < patience  # the halved rate trains before early stopping


# ------------------------------------------------------------------------------------------
# the random generators a fit seeds (forecaster.training.seeding)
# ------------------------------------------------------------------------------------------


def test_seeding_a_cpu_fit_seeds_the_cpu_generator_as_manual_seed_does(
    device_seeding_calls,
) -> None:
    """A CPU fit draws as torch.manual_seed(seed) makes the CPU draw, and touches no device's
    generator (torch.manual_seed seeds CUDA's too, even queued for a later initialisation)."""
    cpu = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(11)
        expected = torch.rand(5)
        before = torch.get_rng_state()
        with seeded_generators(11, cpu):
            drawn = torch.rand(5)
        assert torch.equal(drawn, expected)
        assert torch.equal(torch.get_rng_state(), before)  # restored
        with pytest.raises(KeyError), seeded_generators(11, cpu):
            torch.rand(3)
            raise KeyError("restored when the block raises too")
        assert torch.equal(torch.get_rng_state(), before)
    assert device_seeding_calls == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_seeding_a_cuda_fit_seeds_and_restores_its_device_generator() -> None:
    """Dropout on the GPU draws from the training device's generator: seeded with the fit's
    seed, as torch.manual_seed seeded it (the same results as before), whatever the caller's
    state, which is given back."""
    device = torch.device("cuda", torch.cuda.current_device())
    with torch.random.fork_rng(devices=[device.index]):
        torch.manual_seed(5)
        expected = torch.rand(4, device=device)
        torch.cuda.manual_seed(99)
        before = torch.cuda.get_rng_state(device.index)
        with seeded_generators(5, device):
            assert torch.equal(torch.rand(4, device=device), expected)
        assert torch.equal(torch.cuda.get_rng_state(device.index), before)
        with seeded_generators(5, torch.device("cuda")):  # no index: the current device
            assert torch.equal(torch.rand(4, device=device), expected)

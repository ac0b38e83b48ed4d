"""One plain training loop shared by every estimator, with checkpoints, resume and DDP.

:func:`train` runs AdamW over batches from a *batch source* (a callable that yields
``(x, future, y)`` tensors for an epoch), with a choice of loss, gradient-norm clipping (against
exploding gradients), an optional learning-rate schedule, early stopping on a validation source
with the best weights restored, bf16 autocast with loss scaling on CUDA, a progress bar, a per-epoch
history and epoch-end callbacks (used by Optuna pruning and MLflow logging). A NaN or infinite loss
stops training with an error that says what to try.

The loop reads top to bottom in :func:`run_training`; each concern lives in a module of its own:

- settings and losses: :mod:`~forecaster.training.settings` (:class:`TrainSettings`);
  learning-rate schedules: :mod:`~forecaster.training.schedules`;
- batch sources: :mod:`~forecaster.training.sources`; one optimiser step:
  :mod:`~forecaster.training.step`; validation and prediction passes:
  :mod:`~forecaster.training.forward`;
- early stopping and the time budget: :mod:`~forecaster.training.stopping`; the weights they
  judge (the network's, or their moving average with ``ema_decay``):
  :mod:`~forecaster.training.averaging`; the progress bar:
  :mod:`~forecaster.training.progress`; epoch and fit callbacks:
  :mod:`~forecaster.training.callbacks`;
- **checkpoints** (:mod:`~forecaster.training.checkpoint`, the file format, and
  :mod:`~forecaster.training.checkpoint_directory`, an estimator's files): with a
  :class:`Checkpointer` the loop writes its whole state every ``every`` epochs (and when training
  ends), atomically. ``train(..., resume_from=state)`` continues from such a state and, on the
  CPU with the same seed and data, ends with exactly the weights of an uninterrupted run.
- **GPU memory** (:mod:`~forecaster.training.memory`): a batch that runs out of GPU memory raises
  :class:`GPUOutOfMemoryError`, which says the batch size used and one that fits (measured by
  trying halves); with ``on_oom="split"`` the loop instead splits every batch into parts and
  accumulates their gradients (the same effective batch). Validation and prediction batches are
  split automatically (their results do not depend on the split beyond float rounding).
- **Several processes.** Under ``torchrun`` (see :mod:`forecaster.training.distributed`) the
  network is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` and the losses are
  all-reduced, so every rank takes the same early-stopping decisions; only rank 0 writes
  checkpoints and shows progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

import forecaster.training.distributed as distributed
import forecaster.training.forward as forward
from forecaster._hashing import digest_arrays
from forecaster._validation import check_callbacks, describe_value, resolve_device
from forecaster.data.wording import setting, settings_named
from forecaster.exceptions import (
    CheckpointError,
    DataValidationError,
    GPUOutOfMemoryError,
    TooFewRowsError,
    TrainingDivergedError,
)
from forecaster.training.averaging import WeightAverage
from forecaster.training.callbacks import StopTraining, call_epoch_callbacks
from forecaster.training.checkpoint import (
    Checkpointer,
    TrainingState,
    read_checkpoint,
    restore_training_state,
    rng_state,
)
from forecaster.training.checkpoint_directory import (
    CheckpointDirectory,
    latest_checkpoint,
    remove_checkpoints,
)
from forecaster.training.forward import evaluate, predict_batched
from forecaster.training.memory import Backoff
from forecaster.training.progress import ProgressBar, progress_enabled
from forecaster.training.records import EpochRecord, TrainingHistory
from forecaster.training.schedules import Schedule
from forecaster.training.settings import (
    LOSSES,
    LR_SCHEDULES,
    ON_OOM,
    TrainSettings,
    loss_function,
)
from forecaster.training.sources import BatchSource, as_source, check_network
from forecaster.training.step import Stepper, diverged, training_compute
from forecaster.training.stopping import EarlyStopping, TimeBudget

__all__ = [
    "LOSSES",
    "LR_SCHEDULES",
    "ON_OOM",
    "CheckpointDirectory",
    "CheckpointError",
    "Checkpointer",
    "EpochRecord",
    "GPUOutOfMemoryError",
    "StopTraining",
    "TrainSettings",
    "TrainingDivergedError",
    "TrainingHistory",
    "TrainingState",
    "digest_arrays",
    "evaluate",
    "latest_checkpoint",
    "loss_function",
    "predict_batched",
    "read_checkpoint",
    "remove_checkpoints",
    "resolve_device",
    "run_training",
    "train",
]


def train(
    network: nn.Module,
    train_source: BatchSource,
    *,
    val_source: BatchSource | None = None,
    loss: str = "mae",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    max_epochs: int = 30,
    patience: int | None = 5,
    grad_clip: float | None = 1.0,
    lr_schedule: str = "none",
    ema_decay: float | str | None = None,
    steps_per_epoch: int = 0,
    device: torch.device | str = "cpu",
    amp: bool = True,
    max_time: float | None = None,
    callbacks: Sequence[Callable[[EpochRecord, nn.Module], Any]] = (),
    progress: bool | None = None,
    description: str = "training",
    checkpoint: Checkpointer | None = None,
    resume_from: TrainingState | None = None,
    on_oom: str = "raise",
) -> TrainingHistory:
    """Train ``network`` in place and return the per-epoch history.

    Parameters
    ----------
    network : torch.nn.Module
        Must provide ``training_loss(x, future, y, loss_fn)`` and ``forward(x, future)``, like
        :class:`~forecaster.nn.RecurrentNet`; already on ``device``.
    train_source, val_source : callable or list
        ``source(epoch)`` yields ``(x, future, y)`` batches on ``device`` (``future`` None
        without future covariates); a list (or tuple) of such batches is used every epoch. A
        generator is refused (the first epoch would use it up), as is a batch that is no
        triple of tensors (when it is drawn). With ``val_source`` the validation loss (mean
        ``loss`` of the forecasts) drives early stopping and the best epoch's weights are
        restored at the end; a validation loss that is NaN or infinite raises
        :class:`TrainingDivergedError`, and a ``val_source`` that gives no batches a
        :class:`~forecaster.exceptions.DataValidationError`.
    loss, lr, weight_decay, max_epochs, patience, grad_clip, lr_schedule, ema_decay, \
steps_per_epoch, device, amp, max_time, progress, description, on_oom
        The settings of the run, documented (and checked) by :class:`TrainSettings`:
        ``loss`` in ``{"mse", "mae", "huber"}``, AdamW's ``lr`` and ``weight_decay``,
        ``patience`` epochs without validation improvement (None: never stop early), the
        maximum gradient norm ``grad_clip`` (None: no clipping), ``lr_schedule`` in
        ``{"none", "cosine", "plateau", "onecycle"}`` (``"onecycle"`` needs
        ``steps_per_epoch``), an exponential moving average of the weights with decay
        ``ema_decay`` that validation, early stopping and the result use (None: the weights
        of the last step; ``"auto"``: 0.99 with at least 25 ``steps_per_epoch``, else None),
        bf16 autocast on CUDA with ``amp``, a time budget ``max_time`` in seconds (a resumed
        run counts the seconds before the interruption too), a progress bar (None: in a
        terminal or notebook, rank 0 only), and ``on_oom`` in ``{"raise", "split"}``: raise
        :class:`GPUOutOfMemoryError` (which says a batch size that fits) or split every batch
        into parts and accumulate their gradients (single process only).
    callbacks : sequence of callable
        ``callback(record, network)`` after every epoch (``network``: the validated weights,
        the moving average with ``ema_decay``). Raise :class:`StopTraining` to stop
        (best weights kept); any other exception (e.g. ``optuna.TrialPruned``) propagates.
        Under torchrun they run on every rank (a stop on any rank stops all).
    checkpoint : Checkpointer, optional
        Write the training state every ``checkpoint.every`` epochs and when training ends.
    resume_from : TrainingState, optional
        Continue from this state (e.g. ``checkpoint.load()``) instead of from the start; the
        network, optimizer and schedule must be configured as when it was written. A state
        of a finished run only restores its best weights. On the CPU, a run resumed from the
        checkpoint of epoch ``k`` ends with exactly the weights of an uninterrupted run (same
        seed and data: the sources draw their order from the epoch); on CUDA, to within float
        rounding.

    Returns
    -------
    TrainingHistory
        The :class:`EpochRecord` list (after a resume, with the epochs before it); its
        ``stopped_by`` says what ended training (:class:`TrainingHistory`).

    Raises
    ------
    DataValidationError
        Before the first epoch, for a setting outside its rule (``max_epochs=1.5``,
        ``loss="l2"``, ``lr <= 0``, an unknown device, callbacks that cannot be called as
        ``callback(record, network)``, a ``checkpoint`` that is no :class:`Checkpointer`, a
        ``resume_from`` that is no :class:`TrainingState`).
    TrainingDivergedError
        When the training or validation loss becomes NaN or infinite.
    GPUOutOfMemoryError
        When a batch does not fit in GPU memory (see ``on_oom``).
    CheckpointError
        When ``resume_from`` does not fit the network or the training settings.

    Examples
    --------
    >>> import torch
    >>> from forecaster.nn import RecurrentNet
    >>> _ = torch.manual_seed(0)
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=8)
    >>> x, y = torch.randn(32, 8, 1), torch.randn(32, 2, 1)
    >>> history = train(net, lambda epoch: [(x, None, y)], max_epochs=3, progress=False)
    >>> [r.epoch for r in history]
    [1, 2, 3]
    """
    check_network(network)
    train_source = as_source(train_source, "train_source")
    val_source = None if val_source is None else as_source(val_source, "val_source")
    settings = TrainSettings(
        loss=loss, lr=lr, weight_decay=weight_decay, max_epochs=max_epochs, patience=patience,
        grad_clip=grad_clip, lr_schedule=lr_schedule, ema_decay=ema_decay,
        steps_per_epoch=steps_per_epoch,
        device=device, amp=amp, max_time=max_time, progress=progress,
        description=description, on_oom=on_oom,
    )  # fmt: skip
    return run_training(
        network,
        train_source,
        settings,
        val_source=val_source,
        callbacks=callbacks,
        checkpoint=checkpoint,
        resume_from=resume_from,
    )


def run_training(
    network: nn.Module,
    train_source: BatchSource,
    settings: TrainSettings,
    *,
    val_source: BatchSource | None = None,
    callbacks: Sequence[Callable[[EpochRecord, nn.Module], Any]] = (),
    checkpoint: Checkpointer | None = None,
    resume_from: TrainingState | None = None,
) -> TrainingHistory:
    """:func:`train` with its settings in a :class:`TrainSettings`: the loop itself.

    Examples
    --------
    >>> import torch
    >>> from forecaster.nn import RecurrentNet
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    >>> x, y = torch.randn(16, 8, 1), torch.randn(16, 2, 1)
    >>> settings = TrainSettings(max_epochs=2, progress=False)
    >>> len(run_training(net, lambda epoch: [(x, None, y)], settings))
    2
    """
    check_network(network)
    train_source = as_source(train_source, "train_source")
    val_source = None if val_source is None else as_source(val_source, "val_source")
    callbacks = check_callbacks(callbacks)
    _check_state_arguments(checkpoint, resume_from)
    device = settings.device
    loss_fn = loss_function(settings.loss, getattr(network, "quantiles", None))
    optimizer = _make_optimizer(network, settings)
    schedule = Schedule(
        settings.lr_schedule,
        optimizer,
        settings.max_epochs,
        settings.steps_per_epoch,
        settings.patience if val_source is not None else None,
    )
    # Under CUDA autocast PyTorch runs cuDNN RNN / LSTM / GRU kernels in float16 whatever the
    # autocast dtype (aten/src/ATen/cudnn/AutocastRNN.cpp), so the recurrent gradients need loss
    # scaling against underflow even with bf16 autocast.
    scaler = torch.amp.GradScaler("cuda", enabled=settings.use_amp)
    distributed.seed_this_rank(device)
    weights = WeightAverage(network, cast(float | None, settings.ema_decay))  # resolved

    history: list[EpochRecord] = []
    stopping, elapsed = EarlyStopping(settings.patience), 0.0
    first_epoch, finished, stopped_by = 1, False, None
    if resume_from is not None:
        restore_training_state(resume_from, network, optimizer, schedule.scheduler, scaler, device)
        weights.load_state_dict(resume_from.averaged)
        history = list(resume_from.history)
        stopping = EarlyStopping.resumed(
            settings.patience,
            best_loss=resume_from.best_loss,
            stale=resume_from.stale,
            best_state=resume_from.best,
            device=device,
        )
        elapsed, first_epoch, finished, stopped_by = (
            resume_from.elapsed,
            resume_from.epoch + 1,
            resume_from.finished,
            resume_from.stopped_by,
        )

    data_parallel = distributed.world_size() > 1 and not finished
    compute = training_compute(network, loss_fn, device, data_parallel=data_parallel)
    stepper = Stepper(
        compute, network, optimizer, scaler,
        device=device, use_amp=settings.use_amp, grad_clip=settings.grad_clip,
        on_oom=settings.on_oom,
    )  # fmt: skip
    epochs = _Epochs(
        network, weights, train_source, val_source, loss_fn, stepper, schedule, settings
    )
    budget = TimeBudget(settings.max_time, elapsed)
    bar = ProgressBar(
        total=settings.max_epochs,
        initial=len(history),
        description=settings.description,
        enabled=not finished
        and distributed.is_main_process()
        and progress_enabled(settings.progress),
    )
    try:
        for epoch in range(first_epoch, settings.max_epochs + 1):
            if finished:
                break
            record = epochs.run(epoch)
            history.append(record)
            bar.update(record)
            early = stopping.update(record.val_loss, weights.model)
            # every callback sees the epoch, even after a stop request
            requested = call_epoch_callbacks(callbacks, record, weights.model)
            stopped_by = _stop_reason(
                *distributed.any_rank_each((requested, early, budget.spent()), device),
                last=epoch == settings.max_epochs,
            )
            finished = stopped_by is not None
            if checkpoint is not None and checkpoint.due(epoch, finished):
                rng = distributed.all_gather_objects(rng_state(device))
                checkpoint.save(
                    TrainingState(
                        epoch=epoch, finished=finished, history=history,
                        best_loss=stopping.best_loss, stale=stopping.stale,
                        elapsed=budget.elapsed(), network=network.state_dict(),
                        best=stopping.best_state, optimizer=optimizer.state_dict(),
                        scheduler=schedule.state_dict(), scaler=scaler.state_dict(), rng=rng,
                        averaged=weights.state_dict(), stopped_by=stopped_by,
                    )
                )  # fmt: skip
    finally:
        bar.close()
    weights.copy_to_network()  # the average is the result; the best epoch's, with validation
    stopping.restore_best(network)
    network.eval()
    return TrainingHistory(history, stopped_by)


def _stop_reason(requested: bool, early: bool, timed: bool, *, last: bool) -> str | None:
    """What ends training after an epoch (None: nothing, training goes on): a callback's
    stop request, early stopping, the last epoch, then the time budget, in that order (so
    ``"max_time"`` means the budget cut a run that would have gone on).

    Examples
    --------
    >>> _stop_reason(False, False, True, last=False), _stop_reason(False, False, True, last=True)
    ('max_time', 'max_epochs')
    """
    flags = {"callback": requested, "early_stopping": early, "max_epochs": last, "max_time": timed}
    return next((reason for reason, flag in flags.items() if flag), None)


def _make_optimizer(network: nn.Module, settings: TrainSettings) -> torch.optim.AdamW:
    """The AdamW optimiser of ``network``: fused into one kernel when every parameter is a
    floating-point tensor on a CUDA device. The fused step takes the loss scaler's inf check
    on the device, so a CUDA training step waits for no device-to-host copy; on the CPU the
    default (for-each) implementation is kept, so CPU results stay as they were.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> _make_optimizer(net, TrainSettings(lr=0.01)).defaults["fused"] is None  # on the CPU
    True
    """
    parameters = list(network.parameters())
    fused = all(p.is_cuda and p.is_floating_point() for p in parameters) or None
    return torch.optim.AdamW(
        parameters, lr=settings.lr, weight_decay=settings.weight_decay, fused=fused
    )


def _check_state_arguments(checkpoint: Any, resume_from: Any) -> None:
    """Refuse a ``checkpoint`` that is no :class:`Checkpointer` and a ``resume_from`` that is
    no :class:`TrainingState`."""
    for name, value, kind in (
        ("checkpoint", checkpoint, Checkpointer),
        ("resume_from", resume_from, TrainingState),
    ):
        if value is not None and not isinstance(value, kind):
            raise DataValidationError(
                f"{name} must be a {kind.__name__} or None, got {describe_value(value)}."
                + (
                    " Pass Checkpointer(path) to write checkpoints."
                    if kind is Checkpointer
                    else " Pass checkpointer.load() or read_checkpoint(path)."
                )
            )


@dataclass
class _Epochs:
    """One epoch of training and validation, as :func:`run_training` runs it."""

    network: nn.Module
    weights: WeightAverage
    train_source: BatchSource
    val_source: BatchSource | None
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    stepper: Stepper
    schedule: Schedule
    settings: TrainSettings

    def __post_init__(self) -> None:
        self.validation = Backoff("validation", self.settings.device)

    def run(self, epoch: int) -> EpochRecord:
        """Train one epoch, validate, step the schedule; the epoch's record."""
        device, settings, optimizer = self.settings.device, self.settings, self.stepper.optimizer
        t0 = time.perf_counter()
        self.network.train()
        total = torch.zeros((), device=device)
        n_windows = 0
        epoch_lr = float(optimizer.param_groups[0]["lr"])

        def check_finite(batch_loss: Tensor) -> None:
            if distributed.any_rank(not bool(torch.isfinite(batch_loss)), device):
                raise diverged(epoch, settings.lr, settings.grad_clip)

        for step, (x, future, y) in enumerate(self.train_source(epoch)):
            epoch_lr = float(optimizer.param_groups[0]["lr"])
            batch_loss = self.stepper.step(x, future, y, check_finite if step % 50 == 0 else None)
            self.weights.update()
            self.schedule.after_batch()
            total += batch_loss.float() * x.shape[0]
            n_windows += x.shape[0]
        train_loss, n_windows = _mean_over_ranks(total, n_windows, device)
        if n_windows == 0:
            raise TooFewRowsError(
                "No training windows: every series is too short or the validation split "
                f"took all of them. Use a shorter {settings_named('lookback or horizon')}, or a "
                f"smaller {setting('validation_size')}."
            )
        if not math.isfinite(train_loss):
            raise diverged(epoch, settings.lr, settings.grad_clip)
        val_loss = None
        if self.val_source is not None:
            val_loss = forward.validation_loss(
                self.weights.model, self.val_source, self.loss_fn, device, self.validation, epoch,
                train_loss,
            )  # fmt: skip
        self.schedule.after_epoch(val_loss=val_loss, train_loss=train_loss)
        seconds = time.perf_counter() - t0
        return EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            lr=epoch_lr,
            seconds=seconds,
            windows_per_second=n_windows / max(seconds, 1e-9),
        )


def _mean_over_ranks(total: Tensor, n_windows: int, device: torch.device) -> tuple[float, int]:
    """The mean loss per window and the window count, summed over ranks under torchrun."""
    if distributed.world_size() > 1:
        sums = distributed.all_reduce_sum(
            torch.stack([total.double(), torch.tensor(n_windows, device=device).double()])
        )
        n_windows = int(sums[1].item())
        return float(sums[0]) / max(n_windows, 1), n_windows
    return float(total) / max(n_windows, 1), n_windows

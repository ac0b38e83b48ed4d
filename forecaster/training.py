"""One plain training loop shared by every estimator.

:func:`train` runs AdamW over batches from a *batch source* (a callable that yields
``(x, future, y)`` tensors for an epoch), with a choice of loss, gradient-norm clipping (against
exploding gradients), an optional learning-rate schedule, early stopping on a validation source
with the best weights restored, bf16 autocast with loss scaling on CUDA, a progress bar, a per-epoch
history and epoch-end callbacks (used by Optuna pruning and MLflow logging). A NaN or infinite loss
stops training with an error that says what to try.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecaster.exceptions import DataValidationError, ForecasterError

__all__ = [
    "LOSSES",
    "LR_SCHEDULES",
    "EpochRecord",
    "StopTraining",
    "TrainingDivergedError",
    "loss_function",
    "resolve_device",
    "train",
]

LOSSES = ("mse", "mae", "huber")
LR_SCHEDULES = ("none", "cosine", "plateau", "onecycle")

BatchSource = Callable[[int], Iterable[tuple[Tensor, Tensor | None, Tensor]]]
"""``source(epoch)`` yields ``(x, future, y)`` batches already on the training device."""


class TrainingDivergedError(ForecasterError, ArithmeticError):
    """The training loss became NaN or infinite."""


class StopTraining(Exception):
    """Raise from an epoch callback to stop training early (the best weights are kept)."""


@dataclass
class EpochRecord:
    """What happened in one epoch (one row of the estimator's ``history_``)."""

    epoch: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    windows_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def loss_function(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss callable for ``"mse"``, ``"mae"`` or ``"huber"`` (delta 1 on the scaled data)."""
    if name == "mse":
        return F.mse_loss
    if name == "mae":
        return F.l1_loss
    if name == "huber":
        return F.huber_loss
    raise DataValidationError(f"loss={name!r} is not supported. Expected one of {LOSSES}.")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; other values are checked.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise DataValidationError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise DataValidationError(
            f"device={device!r} is not a device. Use 'auto', 'cpu' or 'cuda'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DataValidationError(
            f"device={device!r} was requested but CUDA is not available here. "
            "Use device='auto' or 'cpu', or install a CUDA build of torch."
        )
    return resolved


def _scheduler(
    name: str, optimizer: torch.optim.Optimizer, max_epochs: int, steps_per_epoch: int
) -> Any:
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(max_epochs, 1))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    if name == "onecycle":
        if steps_per_epoch < 1:
            raise DataValidationError(
                f"lr_schedule='onecycle' needs steps_per_epoch (batches per epoch) >= 1, got "
                f"{steps_per_epoch!r}. Pass the number of batches each epoch yields."
            )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=max(max_epochs * steps_per_epoch, 2),
        )
    raise DataValidationError(
        f"lr_schedule={name!r} is not supported. Expected one of {LR_SCHEDULES}."
    )


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:  # a notebook kernel
        from IPython import get_ipython

        if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
            return True
    except Exception:
        pass
    return sys.stderr.isatty()


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
    steps_per_epoch: int = 0,
    device: torch.device | str = "cpu",
    amp: bool = True,
    max_time: float | None = None,
    callbacks: Sequence[Callable[[EpochRecord, nn.Module], Any]] = (),
    progress: bool | None = None,
    description: str = "training",
) -> list[EpochRecord]:
    """Train ``network`` in place and return the per-epoch history.

    Parameters
    ----------
    network : torch.nn.Module
        Must provide ``training_loss(x, future, y, loss_fn)`` and ``forward(x, future)``, like
        :class:`~forecaster.networks.RecurrentNet`; already on ``device``.
    train_source, val_source : callable
        ``source(epoch)`` yields ``(x, future, y)`` batches on ``device``. With ``val_source``
        the validation loss (mean ``loss`` of the forecasts) drives early stopping and the best
        epoch's weights are restored at the end.
    loss : {"mse", "mae", "huber"}
    lr, weight_decay : float
        AdamW settings.
    max_epochs : int
    patience : int or None
        Epochs without validation improvement before stopping; ``None`` never stops early.
    grad_clip : float or None
        Maximum gradient norm (``clip_grad_norm_``); ``None`` disables clipping.
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}
    steps_per_epoch : int
        Batches per epoch (needed by ``"onecycle"`` only, which holds its final learning rate
        if an epoch yields more batches than this).
    amp : bool
        bf16 autocast on CUDA (ignored on CPU), with loss scaling: under autocast PyTorch runs
        the cuDNN recurrent kernels in float16.
    max_time : float, optional
        Stop after the epoch during which this many seconds have passed.
    callbacks : sequence of callable
        ``callback(record, network)`` after every epoch. Raise :class:`StopTraining` to stop
        (best weights kept); any other exception (e.g. ``optuna.TrialPruned``) propagates.
    progress : bool or None
        Show a progress bar; ``None`` shows it in a terminal or a notebook.

    Returns
    -------
    list of EpochRecord
        ``lr`` is the learning rate used in the epoch (its last step for ``"onecycle"``).

    Raises
    ------
    TrainingDivergedError
        When the loss becomes NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> from forecaster.networks import RecurrentNet
    >>> _ = torch.manual_seed(0)
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=8)
    >>> x, y = torch.randn(32, 8, 1), torch.randn(32, 2, 1)
    >>> history = train(net, lambda epoch: [(x, None, y)], max_epochs=3, progress=False)
    >>> [r.epoch for r in history]
    [1, 2, 3]
    """
    device = torch.device(device)
    loss_fn = loss_function(loss)
    if max_epochs < 1:
        raise DataValidationError(f"max_epochs must be >= 1, got {max_epochs!r}.")
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = _scheduler(lr_schedule, optimizer, max_epochs, steps_per_epoch)
    use_amp = amp and device.type == "cuda"
    # Under CUDA autocast PyTorch runs cuDNN RNN / LSTM / GRU kernels in float16 whatever the
    # autocast dtype (aten/src/ATen/cudnn/AutocastRNN.cpp), so the recurrent gradients need loss
    # scaling against underflow even with bf16 autocast.
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[EpochRecord] = []
    best_loss, best_state, stale = math.inf, None, 0
    started = time.perf_counter()

    bar = None
    if _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc=description, unit="epoch", leave=False)
    try:
        for epoch in range(1, max_epochs + 1):
            t0 = time.perf_counter()
            network.train()
            total = torch.zeros((), device=device)
            n_windows = 0
            epoch_lr = float(optimizer.param_groups[0]["lr"])
            for step, (x, future, y) in enumerate(train_source(epoch)):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    batch_loss = network.training_loss(x, future, y, loss_fn)
                if step % 50 == 0 and not torch.isfinite(batch_loss):
                    _diverged(epoch, lr, grad_clip)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(batch_loss).backward()
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
                epoch_lr = float(optimizer.param_groups[0]["lr"])
                scaler.step(optimizer)  # skips a step whose scaled gradients overflowed
                scaler.update()
                # OneCycleLR raises when stepped past total_steps (an epoch with more batches
                # than steps_per_epoch): hold the final learning rate instead.
                if lr_schedule == "onecycle" and scheduler.last_epoch < scheduler.total_steps:
                    scheduler.step()
                total += batch_loss.detach().float() * x.shape[0]
                n_windows += x.shape[0]
            if n_windows == 0:
                raise DataValidationError(
                    "No training windows: every series is too short or the validation split "
                    "took all of them. Use a shorter lookback / horizon or validation_size."
                )
            train_loss = float(total) / n_windows
            if not math.isfinite(train_loss):
                _diverged(epoch, lr, grad_clip)
            val_loss = (
                evaluate(network, val_source, loss, device, amp=False) if val_source else None
            )
            if scheduler is not None and lr_schedule == "plateau":
                scheduler.step(val_loss if val_loss is not None else train_loss)
            elif scheduler is not None and lr_schedule == "cosine":
                scheduler.step()
            seconds = time.perf_counter() - t0
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                lr=epoch_lr,
                seconds=seconds,
                windows_per_second=n_windows / max(seconds, 1e-9),
            )
            history.append(record)
            if bar is not None:
                shown = {"train": f"{train_loss:.4f}", "win/s": f"{record.windows_per_second:,.0f}"}
                if val_loss is not None:
                    shown["val"] = f"{val_loss:.4f}"
                bar.set_postfix(shown)
                bar.update(1)

            stop = False
            monitored = val_loss if val_loss is not None else None
            if monitored is not None:
                if monitored < best_loss - 1e-12:
                    best_loss, stale = monitored, 0
                    best_state = copy.deepcopy(network.state_dict())
                else:
                    stale += 1
                    stop = patience is not None and stale >= patience
            for callback in callbacks:  # every callback sees the epoch, even after a stop request
                try:
                    callback(record, network)
                except StopTraining:
                    stop = True
            if max_time is not None and time.perf_counter() - started >= max_time:
                stop = True
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history


@torch.no_grad()
def evaluate(
    network: nn.Module,
    source: BatchSource,
    loss: str = "mae",
    device: torch.device | str = "cpu",
    amp: bool = True,
) -> float:
    """Mean ``loss`` of the network's forecasts over every batch of ``source`` (epoch 0)."""
    device = torch.device(device)
    loss_fn = loss_function(loss)
    network.eval()
    total = torch.zeros((), device=device)
    count = 0
    for x, future, y in source(0):
        with torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
        ):
            prediction = network(x, future)
        total += loss_fn(prediction.float(), y).float() * x.shape[0]
        count += x.shape[0]
    return float(total) / count if count else math.nan


def _diverged(epoch: int, lr: float, grad_clip: float | None) -> None:
    clip = f"grad_clip={grad_clip}" if grad_clip is not None else "no gradient clipping"
    raise TrainingDivergedError(
        f"The training loss became NaN or infinite in epoch {epoch} (lr={lr}, {clip}). "
        "Try a lower lr (e.g. lr/10), gradient clipping (grad_clip=1.0), a scaling of the data "
        "(scaling='standard' or 'robust'), loss='huber', or check the input for extreme values."
    )

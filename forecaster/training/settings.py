"""The settings of one training run, checked before any work, and the losses they name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from forecaster._validation import (
    LOSSES,
    LR_SCHEDULES,
    ON_OOM,
    Flag,
    Integer,
    Real,
    check,
    describe_value,
    resolve_device,
)
from forecaster.exceptions import DataValidationError
from forecaster.nn.quantiles import pinball_loss
from forecaster.training.averaging import resolve_ema_decay

__all__ = ["LOSSES", "LR_SCHEDULES", "ON_OOM", "TrainSettings", "loss_function"]


def loss_function(name: str, quantiles: Any = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss callable for ``"mse"``, ``"mae"`` or ``"huber"`` (delta 1 on the scaled data),
    or ``"quantile"``: the pinball loss averaged over ``quantiles``, the quantiles the network
    emits (a network with quantiles trains with ``"quantile"`` only)."""
    if (name == "quantile") != (quantiles is not None):
        raise DataValidationError(
            f"loss={name!r} with a network whose quantiles are {quantiles!r}: loss='quantile' "
            "trains a network built with quantiles=[...], the other losses a point network."
        )
    if name == "quantile":
        levels = tuple(float(q) for q in quantiles)
        return lambda prediction, target: pinball_loss(prediction, target, levels)
    if name == "mse":
        return F.mse_loss
    if name == "mae":
        return F.l1_loss
    if name == "huber":
        return F.huber_loss
    raise DataValidationError(f"loss={name!r} is not supported. Expected one of {LOSSES}.")


@dataclass
class TrainSettings:
    """The settings of :func:`~forecaster.training.loop.train`, checked when created.

    Each value is checked against the package's parameter table
    (:mod:`forecaster._validation`) and stored normalised (``device`` as a
    :class:`torch.device`); a value outside its rule raises
    :class:`~forecaster.exceptions.DataValidationError` before any work.

    Attributes
    ----------
    loss : {"mse", "mae", "huber"}
    lr, weight_decay : float
        AdamW settings (``lr > 0``).
    max_epochs : int
    patience : int or None
        Epochs without validation improvement before stopping; ``None`` never stops early.
    grad_clip : float or None
        Maximum gradient norm (``clip_grad_norm_``); ``None`` disables clipping.
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}
    ema_decay : float, "auto" or None
        Keep an exponential moving average of the weights (Polyak averaging, torch's
        :class:`~torch.optim.swa_utils.AveragedModel`), updated after every optimiser step
        with this decay: validation, early stopping and the trained network use the averaged
        weights. ``None`` (default) uses the weights of the last step. 0.99 averages over
        about the last 100 batches (over about the last tenth of the steps while there are
        fewer than 900: see :mod:`~forecaster.training.averaging`). ``"auto"`` becomes 0.99
        with at least 25 ``steps_per_epoch``, None with fewer
        (:func:`~forecaster.training.averaging.resolve_ema_decay`); the attribute holds the
        resolved value.
    steps_per_epoch : int
        Batches per epoch (needed by ``"onecycle"`` only, which holds its final learning rate
        if an epoch yields more batches than this).
    device : torch.device or str
        ``"auto"``, ``"cpu"``, ``"cuda[:N]"`` or ``"mps"``.
    amp : bool
        bf16 autocast on CUDA (ignored on CPU), with loss scaling: under autocast PyTorch runs
        the cuDNN recurrent kernels in float16.
    max_time : float, optional
        Stop after the epoch during which this many seconds of training have passed (a resumed
        run counts the seconds before the interruption too).
    progress : bool or None
        Show a progress bar; ``None`` shows it in a terminal or a notebook (rank 0 only).
    description : str
        The progress bar's label.
    on_oom : {"raise", "split"}
        What a training batch that runs out of GPU memory does: raise
        :class:`~forecaster.exceptions.GPUOutOfMemoryError` (which says a batch size that
        fits), or split every batch into parts and accumulate their gradients (single process
        only; the effective batch is unchanged, dropout masks are drawn per part).

    Examples
    --------
    >>> TrainSettings(max_epochs=3).device
    device(type='cpu')
    >>> TrainSettings(loss="l2")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: loss must be one of ...
    """

    loss: str = "mae"
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 30
    patience: int | None = 5
    grad_clip: float | None = 1.0
    lr_schedule: str = "none"
    ema_decay: float | str | None = None
    steps_per_epoch: int = 0
    device: torch.device | str = "cpu"
    amp: bool = True
    max_time: float | None = None
    progress: bool | None = None
    description: str = "training"
    on_oom: str = "raise"

    def __post_init__(self) -> None:
        self.loss, self.lr = (
            check("loss", self.loss),
            Real(low=0.0, low_open=True).check("lr", self.lr),
        )
        self.weight_decay = check("weight_decay", self.weight_decay)
        self.max_epochs = check("max_epochs", self.max_epochs)
        self.patience, self.grad_clip = (
            check("patience", self.patience),
            check("grad_clip", self.grad_clip),
        )
        self.lr_schedule, self.on_oom = (
            check("lr_schedule", self.lr_schedule),
            check("on_oom", self.on_oom),
        )
        self.steps_per_epoch = Integer(low=0).check("steps_per_epoch", self.steps_per_epoch)
        self.ema_decay = resolve_ema_decay(check("ema_decay", self.ema_decay), self.steps_per_epoch)
        self.max_time, self.progress = (
            check("max_time", self.max_time),
            check("progress", self.progress),
        )
        self.amp = Flag().check("amp", self.amp)
        self.device = resolve_device(self.device)
        if not isinstance(self.description, str):
            raise DataValidationError(
                f"description must be text, got {describe_value(self.description)}."
            )

    @property
    def use_amp(self) -> bool:
        """Autocast and loss scaling are on (``amp`` on a CUDA device)."""
        return self.amp and self.device.type == "cuda"

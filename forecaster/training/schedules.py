"""Learning-rate schedules: which one, and when the loop steps it."""

from __future__ import annotations

from typing import Any

import torch

from forecaster._validation import LR_SCHEDULES
from forecaster.exceptions import DataValidationError

__all__ = ["PLATEAU_PATIENCE", "Schedule", "make_scheduler", "plateau_patience"]


PLATEAU_PATIENCE = 2
"""``"plateau"`` halves the learning rate after this many epochs without improvement and one
more (torch's ``ReduceLROnPlateau(patience=2)``), or sooner when early stopping's
``patience`` would end the run first (:func:`plateau_patience`)."""


def plateau_patience(patience: int | None) -> int:
    """The plateau schedule's patience under early stopping's ``patience``: low enough that the
    halved rate trains for an epoch before a run of flat epochs stops it (``patience - 2``,
    at most :data:`PLATEAU_PATIENCE`; ``patience=1`` leaves it no epoch: ``fit`` refuses it).

    Examples
    --------
    >>> [plateau_patience(p) for p in (None, 8, 3, 2)]
    [2, 2, 1, 0]
    """
    return PLATEAU_PATIENCE if patience is None else max(0, min(PLATEAU_PATIENCE, patience - 2))


def make_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    steps_per_epoch: int,
    patience: int | None = None,
) -> Any:
    """The torch scheduler of ``name`` for ``optimizer``, or None for ``"none"``
    (``patience``: early stopping's, which the plateau schedule's follows).

    Examples
    --------
    >>> opt = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())
    >>> type(make_scheduler("cosine", opt, max_epochs=5, steps_per_epoch=0)).__name__
    'CosineAnnealingLR'
    """
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(max_epochs, 1))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=plateau_patience(patience)
        )
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


class Schedule:
    """A learning-rate schedule as the loop uses it: ``"onecycle"`` steps after every batch,
    ``"cosine"`` after every epoch, ``"plateau"`` after every epoch on the validation loss (the
    training loss without validation).

    Examples
    --------
    >>> opt = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    >>> schedule = Schedule("cosine", opt, max_epochs=2, steps_per_epoch=0)
    >>> opt.step()
    >>> schedule.after_epoch(val_loss=None, train_loss=1.0)
    >>> round(opt.param_groups[0]["lr"], 6)
    0.5
    """

    def __init__(
        self,
        name: str,
        optimizer: torch.optim.Optimizer,
        max_epochs: int,
        steps_per_epoch: int,
        patience: int | None = None,
    ) -> None:
        self.name = name
        self.scheduler = make_scheduler(name, optimizer, max_epochs, steps_per_epoch, patience)

    def after_batch(self) -> None:
        # OneCycleLR raises when stepped past total_steps (an epoch with more batches than
        # steps_per_epoch): hold the final learning rate instead.
        if self.name == "onecycle" and self.scheduler.last_epoch < self.scheduler.total_steps:
            self.scheduler.step()

    def after_epoch(self, *, val_loss: float | None, train_loss: float) -> None:
        if self.name == "plateau":
            self.scheduler.step(val_loss if val_loss is not None else train_loss)
        elif self.name == "cosine":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any] | None:
        return None if self.scheduler is None else self.scheduler.state_dict()

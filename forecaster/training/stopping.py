"""When training stops before ``max_epochs``: early stopping on the validation loss (with the
best weights kept) and the time budget (``max_time``)."""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import Tensor, nn

__all__ = ["EarlyStopping", "TimeBudget"]


class EarlyStopping:
    """Tracks the best validation loss, its weights, and epochs without improvement.

    Parameters
    ----------
    patience : int or None
        Epochs without improvement before stopping; None never stops (the best weights are
        still kept).
    best_loss, stale, best_state
        Where a resumed run left off (defaults: a fresh run).

    Examples
    --------
    >>> net = torch.nn.Linear(1, 1)
    >>> stopping = EarlyStopping(patience=1)
    >>> stopping.update(0.5, net), stopping.update(0.7, net)
    (False, True)
    >>> stopping.best_loss, stopping.stale
    (0.5, 1)
    """

    def __init__(
        self,
        patience: int | None,
        *,
        best_loss: float = math.inf,
        stale: int = 0,
        best_state: dict[str, Tensor] | None = None,
    ) -> None:
        self.patience, self.best_loss, self.stale = patience, best_loss, stale
        self.best_state = best_state

    @classmethod
    def resumed(
        cls,
        patience: int | None,
        *,
        best_loss: float,
        stale: int,
        best_state: dict[str, Tensor] | None,
        device: torch.device,
    ) -> EarlyStopping:
        """The counters of a checkpoint, its best weights moved to ``device``."""
        if best_state is not None:
            best_state = {k: v.to(device) for k, v in best_state.items()}
        return cls(patience, best_loss=best_loss, stale=stale, best_state=best_state)

    def update(self, val_loss: float | None, network: nn.Module) -> bool:
        """Take an epoch's validation loss (None: no validation); True asks to stop."""
        if val_loss is None:
            return False
        if val_loss < self.best_loss - 1e-12:
            self.best_loss, self.stale = val_loss, 0
            self.best_state = copy.deepcopy(network.state_dict())
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def restore_best(self, network: nn.Module) -> None:
        """Load the best weights seen (if any epoch had a validation loss)."""
        if self.best_state is not None:
            network.load_state_dict(self.best_state)


class TimeBudget:
    """Seconds of training so far against ``max_time`` (a resumed run counts its earlier
    seconds, ``elapsed``).

    Examples
    --------
    >>> TimeBudget(None).spent(), TimeBudget(0.0).spent()
    (False, True)
    """

    def __init__(self, max_time: float | None, elapsed: float = 0.0) -> None:
        self.max_time = max_time
        self.started = time.perf_counter() - elapsed

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def spent(self) -> bool:
        """Whether training has run for ``max_time`` seconds (never without one)."""
        return self.max_time is not None and self.elapsed() >= self.max_time

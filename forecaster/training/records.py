"""What one epoch of training produced (a row of an estimator's ``history_``), and the history
of a training run with what ended it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["STOP_REASONS", "EpochRecord", "TrainingHistory"]


@dataclass
class EpochRecord:
    """What happened in one epoch (one row of the estimator's ``history_``).

    Examples
    --------
    >>> EpochRecord(1, 0.5, None, 1e-3, 2.0, 100.0).as_dict()["train_loss"]
    0.5
    """

    epoch: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    windows_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


STOP_REASONS = ("max_epochs", "early_stopping", "callback", "max_time")
"""What can end a training run: its last epoch, early stopping (``patience``), a callback
raising :class:`~forecaster.training.callbacks.StopTraining`, or the time budget
(``max_time``, only when nothing else ended the run at that epoch)."""


class TrainingHistory(list[EpochRecord]):
    """The records of a training run (a list, as :func:`~forecaster.training.loop.train`
    always returned; ``lr`` is the learning rate of the epoch, its last step for
    ``"onecycle"``) and ``stopped_by``: one of :data:`STOP_REASONS` (``"max_time"`` only when
    the budget cut a run that would have gone on), or None when unknown (a run resumed from a
    checkpoint written before the reason was recorded).

    Examples
    --------
    >>> history = TrainingHistory([EpochRecord(1, 0.5, None, 1e-3, 2.0, 100.0)], "max_time")
    >>> len(history), history.stopped_by
    (1, 'max_time')
    """

    def __init__(self, records: Iterable[EpochRecord] = (), stopped_by: str | None = None):
        super().__init__(records)
        self.stopped_by = stopped_by

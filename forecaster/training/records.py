"""What one epoch of training produced: a row of an estimator's ``history_``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EpochRecord"]


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

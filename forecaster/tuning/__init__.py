"""Optuna tuning of the estimators (optional extra ``tune``)."""

from __future__ import annotations

from forecaster.tuning.core import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    StorageError,
    TuneResult,
    default_search_space,
    default_storage_url,
    make_storage,
    tune,
)

__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "StorageError",
    "TuneResult",
    "default_search_space",
    "default_storage_url",
    "make_storage",
    "tune",
]

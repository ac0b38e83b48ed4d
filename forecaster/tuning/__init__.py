"""Optuna tuning of the estimators (optional extra ``tune``).

Modules: ``space`` (search spaces, sampling, checks before any trial), ``storage`` (the
study storage, heartbeats), ``retries`` (lost trials queued again), ``identity`` (what a
study is for), ``trials`` (objective, pruning, workers), ``study_log`` (MLflow logging,
``track=True``), ``arguments`` (tune's settings) and ``study`` (:func:`tune`).
"""

from __future__ import annotations

from forecaster.exceptions import StorageError
from forecaster.tuning.space import default_search_space
from forecaster.tuning.storage import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_RETRY,
    default_storage_url,
    make_storage,
)
from forecaster.tuning.study import TuneResult, tune

__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_RETRY",
    "StorageError",
    "TuneResult",
    "default_search_space",
    "default_storage_url",
    "make_storage",
    "tune",
]

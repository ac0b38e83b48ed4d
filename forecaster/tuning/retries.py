"""The retries of lost trials: :data:`MAX_RETRY`, the storage's retry callback and the
retry of interrupted trials (:func:`retry_interrupted_trials`).

A trial lost with its process (killed: its heartbeat stops) or interrupted (Ctrl-C, or
``SIGTERM`` under the ``forecaster`` command) is queued again with the same parameters by
Optuna's retry callback, as a ``WAITING`` trial whose system attributes ``failed_trial`` and
``retry_history`` name the trial it retries.
"""

from __future__ import annotations

import warnings
from typing import Any

from forecaster._warnings import catching_warnings
from forecaster.tuning.common import import_optuna

__all__ = [
    "INTERRUPTED_ATTR",
    "MAX_RETRY",
    "retry_callback",
    "retry_interrupted_trials",
]

MAX_RETRY = 1
"""Times a trial failed for its lost heartbeat is queued again with the same parameters (its
process was killed; when the parameters are what kills it, e.g. the kernel's OOM killer, one
retry is enough to tell)."""


def retry_callback(optuna: Any, max_retry: int) -> dict[str, Any]:
    """The keyword argument of ``RDBStorage`` that queues a stale trial again: Optuna's retry
    callback under its current name (4.9 on) or its earlier one."""
    if max_retry == 0:
        return {}
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    with catching_warnings():  # experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if retry is not None:
            return {"heartbeat_stale_trial_callback": retry(max_retry=max_retry)}
        callback = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)
    return {"failed_trial_callback": callback}


INTERRUPTED_ATTR = "forecaster.interrupted"
"""The user attribute (True) of a trial that Ctrl-C (or ``SIGTERM`` under the ``forecaster``
command) interrupted: Optuna marks it FAIL, and :func:`retry_interrupted_trials` queues its
parameters again as a killed trial's are."""


def retry_interrupted_trials(study: Any, limit: int | None = None) -> list[int]:
    """Queue again, with the same parameters, the trials of ``study`` that an interrupt failed
    (:data:`INTERRUPTED_ATTR`), as the heartbeat queues a killed process's trial: through the
    storage's retry callback (Optuna's ``RetryHeartbeatStaleTrialCallback``, at most
    :data:`MAX_RETRY` times), a ``WAITING`` trial whose system attributes ``failed_trial``
    and ``retry_history`` name the interrupted trial, which the next trial of any process
    runs. A trial already queued again (named in a trial's ``retry_history``) is not queued
    twice. ``limit``: the trials the study still misses (``n_trials`` less those finished or
    running), of which the trials already ``WAITING`` (a killed process's, queued again by
    :func:`~forecaster.tuning.storage.fail_stale_trials`, or the user's) take their share
    first, so that no more than ``n_trials`` are queued to run. Call it once per call of
    ``tune``, before any worker process starts: two processes reading the study at the same
    moment would both queue a trial. The numbers of the trials queued again."""
    optuna = import_optuna()
    retry = next(iter(retry_callback(optuna, MAX_RETRY).values()), None)
    trials = study.get_trials(deepcopy=False)
    if limit is not None:
        limit -= sum(t.state.name == "WAITING" for t in trials)
    if retry is None or (limit is not None and limit <= 0):
        return []
    queued = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    interrupted = [
        t
        for t in trials
        if t.state.name == "FAIL" and t.user_attrs.get(INTERRUPTED_ATTR) and t.number not in queued
    ]
    retried = []
    for trial in interrupted[:limit]:
        before = len(study.get_trials(deepcopy=False))
        retry(study, trial)  # nothing past MAX_RETRY retries
        if len(study.get_trials(deepcopy=False)) > before:
            retried.append(trial.number)
    return retried

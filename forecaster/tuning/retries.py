"""The retries of lost trials: :data:`MAX_RETRY`, the storage's retry callback and the
retry of interrupted trials (:func:`retry_interrupted_trials`).

A trial lost with its process (killed: its heartbeat stops) or interrupted (Ctrl-C, or
``SIGTERM`` under the ``forecaster`` command) is queued again with the same parameters by
Optuna's retry callback, as a ``WAITING`` trial whose system attributes ``failed_trial`` and
``retry_history`` name the trial it retries.
"""

from __future__ import annotations

import warnings
from copy import copy as shallow_copy
from copy import deepcopy
from typing import Any

from forecaster._warnings import catching_warnings
from forecaster.exceptions import TrialFailedError
from forecaster.tuning.common import import_optuna

__all__ = [
    "INTERRUPTED_ATTR",
    "MAX_RETRY",
    "check_retry",
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
    runs. The retry does not have the interrupted trial's :data:`INTERRUPTED_ATTR` (Optuna's
    callback copies the user attributes): it was not interrupted, and a retry that then
    fails of its own error is not queued again as interrupted.

    A trial already queued again (the last trial a trial's ``retry_history`` names) is not
    queued twice: the study is read again just before each trial is queued, so that another
    process that queued it since is seen. Two processes that read it at the same moment may
    both queue it (Optuna's storages have no conditional insert, and a finished trial takes
    no mark); the later-numbered of the two retries is then not run
    (:func:`check_retry`). ``limit``: the trials the study still misses (``n_trials`` less
    those finished or running), of which the trials already ``WAITING`` (a killed process's,
    queued again by :func:`~forecaster.tuning.storage.fail_stale_trials`, or the user's)
    take their share first, so that no more than ``n_trials`` are queued to run. Call it
    once per call of ``tune``, before any worker process starts. The numbers of the trials
    queued again."""
    optuna = import_optuna()
    retry = next(iter(retry_callback(optuna, MAX_RETRY).values()), None)
    trials = study.get_trials(deepcopy=False)
    if limit is not None:
        limit -= sum(t.state.name == "WAITING" for t in trials)
    if retry is None or (limit is not None and limit <= 0):
        return []
    retried = _retried(trials)
    interrupted = [
        t
        for t in trials
        if t.state.name == "FAIL" and t.user_attrs.get(INTERRUPTED_ATTR)
        and t.number not in retried
    ]  # fmt: skip
    queued: list[int] = []
    for trial in interrupted:
        if limit is not None and len(queued) >= limit:
            break
        now = study.get_trials(deepcopy=False)  # another process may have queued it since
        if trial.number in _retried(now):
            continue
        retry(study, _not_interrupted(trial))  # nothing past MAX_RETRY retries
        if len(study.get_trials(deepcopy=False)) > len(now):
            queued.append(trial.number)
    return queued


def _retried(trials: Any) -> set[int]:
    """The numbers of the trials that a trial of ``trials`` retries (the last number of its
    ``retry_history``: Optuna's record of the trial it was queued for)."""
    return {number for t in trials if (number := _retry_of(t)) is not None}


def _retry_of(trial: Any) -> int | None:
    """The number of the trial that the frozen ``trial`` retries, None when it is no retry."""
    history = trial.system_attrs.get("retry_history")
    return int(history[-1]) if isinstance(history, list) and history else None


def _not_interrupted(trial: Any) -> Any:
    """A copy of the frozen ``trial`` without its :data:`INTERRUPTED_ATTR`, for the retry
    callback (which copies the user attributes to the retry). Its system attributes are
    copied too: the callback appends to the ``retry_history`` list it finds there, which
    with ``get_trials(deepcopy=False)`` is the storage's own (an in-memory study's record, an
    RDB storage's cache), so a retry that was itself interrupted would come to name itself."""
    copy = shallow_copy(trial)
    copy.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != INTERRUPTED_ATTR}
    copy.system_attrs = deepcopy(trial.system_attrs)
    return copy


def check_retry(trial: Any) -> None:
    """At the start of ``trial`` (an ``optuna.Trial``): a trial queued again by an earlier
    version, which copied the retried trial's :data:`INTERRUPTED_ATTR`, gets it set False
    (it was not interrupted); a retry of a trial that an earlier-numbered trial retries too
    (two processes queued it at the same moment: :func:`retry_interrupted_trials`) is not
    run: ``TrialFailedError``, its ``error`` attribute naming both. Only one of the two can
    be that later one, and a ``WAITING`` trial is given to one process only (Optuna moves it
    to ``RUNNING`` atomically), so the parameters are fitted once."""
    trials = trial.study.get_trials(deepcopy=False)
    own = next((t for t in trials if t.number == trial.number), None)
    if own is None:
        return
    if own.user_attrs.get(INTERRUPTED_ATTR):
        trial.set_user_attr(INTERRUPTED_ATTR, False)
    retried = _retry_of(own)
    if retried is None:
        return
    first = min(t.number for t in trials if _retry_of(t) == retried)  # own among them
    if first == trial.number:
        return
    why = (
        f"trial {trial.number} retries trial {retried}, which trial {first} retries already "
        "(two processes queued it at the same moment): not run, so that its parameters are "
        "fitted once"
    )
    trial.set_user_attr("error", why)
    raise TrialFailedError(why)

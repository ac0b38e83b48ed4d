"""The trial quota: a trial created past the first ``n_trials`` wanted ends before it runs.

Every process on a study checks, before it starts a trial, that the study's finished and
running trials are fewer than ``n_trials`` (:func:`~forecaster.tuning.trials.run_trials`), but
two processes that check at the same moment both start one, and the study ends past
``n_trials``. The storage numbers a study's trials once each, in the order they are created,
so once a trial exists :class:`QuotaObjective` decides from those numbers whether it is among
the first ``n_trials`` that count (finished, running or queued, by number): a surplus trial
ends without running (FAIL, with the user attribute ``surplus``: not queued again, and not a
failure that :func:`~forecaster.tuning.trials.run_trials` counts), and the process stops
starting trials. Processes that check at the same moment end every trial past the quota but
the earliest, whatever their timing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from forecaster.exceptions import TrialFailedError
from forecaster.tracking.trialruns import NOT_RUN_ATTR
from forecaster.tuning.common import import_optuna

__all__ = ["SURPLUS_ATTR", "QuotaObjective", "is_surplus", "trials_ahead"]

SURPLUS_ATTR = NOT_RUN_ATTR
"""The user attribute of a trial ended before it ran: the trials that counted before it (no
trial run of its own in MLflow, no failure in the study run's counts: ``forecaster.tracking``
reads it)."""

_COUNTED = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")


def trials_ahead(study: Any, number: int, ignore: Collection[int] = ()) -> int:
    """How many trials of ``study`` numbered below ``number`` count toward ``n_trials``:
    finished, running (but not those numbered in ``ignore``, which a storage without
    heartbeat cannot tell dead or alive) or queued to run."""
    return sum(
        t.number < number
        and t.state.name in _COUNTED
        and not (t.state.name == "RUNNING" and t.number in ignore)
        for t in study.get_trials(deepcopy=False)
    )


class QuotaObjective:
    """``objective`` for the trials of one process, but a trial that has ``n_trials``
    counted trials ahead of it (:func:`trials_ahead`) is surplus: it fails before it runs
    (:data:`SURPLUS_ATTR` set, a :class:`~forecaster.exceptions.TrialFailedError` that
    ``study.optimize`` catches) and this process's ``optimize`` stops. ``n_trials=None``:
    no quota (a study bounded by its timeout)."""

    def __init__(
        self, objective: Callable[[Any], float], n_trials: int | None, ignore: Collection[int]
    ) -> None:
        self.objective = objective
        self.n_trials = n_trials
        self.ignore = ignore

    def __call__(self, trial: Any) -> float:
        if self.n_trials is not None:
            ahead = trials_ahead(trial.study, trial.number, self.ignore)
            if ahead >= self.n_trials:
                why = (
                    f"not run: the study had {ahead} finished, running or queued trials before "
                    f"this one, of the n_trials={self.n_trials} wanted (another process started "
                    "one at the same moment)"
                )
                trial.set_user_attr(SURPLUS_ATTR, ahead)
                trial.set_user_attr("error", why)  # the reason of a failed trial, as the others'
                trial.study.stop()
                raise TrialFailedError(why)
        return self.objective(trial)


def is_surplus(trial: Any) -> bool:
    """Whether ``trial`` (a frozen trial) was ended before it ran by :class:`QuotaObjective`."""
    return trial.state == import_optuna().trial.TrialState.FAIL and SURPLUS_ATTR in trial.user_attrs

"""The callbacks of one fit, as the estimators call them (see
:mod:`forecaster.training.callbacks`): the user's ``callbacks=`` (plain epoch callables or fit
callbacks) and those of the registered factories. Nothing is discovered: tracking takes part
only through a factory it registered (``forecaster.tracking.autolog()``) or a callback the user
passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forecaster._validation import check_callbacks
from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.training import distributed
from forecaster.training.callbacks import (
    FIT_HOOKS,
    call_fit_end,
    call_hook,
    default_fit_callbacks,
    epoch_callables,
)

__all__ = ["FitRun", "check_fit_callbacks", "member_ended", "warn_short_ensemble"]


class FitRun:
    """The callbacks of one fit (see :mod:`forecaster.training.callbacks`).

    :meth:`start` asks the registered factories for their callbacks
    (:func:`~forecaster.training.callbacks.default_fit_callbacks`; on the main process only,
    under torchrun), puts them before the user's ``callbacks=`` and calls their
    ``on_fit_start``; the training loop calls ``on_epoch_end``; :meth:`end` calls
    ``on_fit_end`` and :meth:`fail` calls ``on_fit_error`` (only after :meth:`start`).

    Attributes
    ----------
    params : dict
        A copy of the parameters the fit started with.
    callbacks : list
        The fit's callbacks, once started.
    trained : bool
        Whether training completed and the fitted state was set (:meth:`end` was called):
        an interrupt from an ``on_fit_end`` hook then keeps the fitted estimator.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.callbacks: list[Any] = []
        self.started = False
        self.trained = False

    def start(self, estimator: Any, data: Any, callbacks: Sequence[Any]) -> list[Any]:
        """Call ``on_fit_start(estimator, data)``; returns the epoch callables for
        :func:`~forecaster.training.loop.train`."""
        defaults = default_fit_callbacks(estimator, data) if distributed.is_main_process() else []
        self.callbacks = [*defaults, *callbacks]
        self.started = True
        call_hook(self.callbacks, "on_fit_start", estimator, data)
        return epoch_callables(self.callbacks)

    def end(self, estimator: Any) -> None:
        """Call ``on_fit_end(estimator)`` (the estimator is fitted), then what the hooks kept
        for a kept fit (:func:`~forecaster.training.callbacks.call_fit_end`: the fit's
        logging). An exception from a hook fails the fit (rolled back by the estimator). A
        ``KeyboardInterrupt`` from a hook (Ctrl-C while the fit is being logged) propagates,
        and the estimator stays fitted: training had completed (the later callbacks get
        ``on_fit_interrupted`` instead of ``on_fit_end``)."""
        self.trained = True
        call_fit_end(self.callbacks, estimator)

    def fail(self, estimator: Any, exc: BaseException) -> None:
        """Call ``on_fit_error(estimator, exc)``; a hook that raises is reported as a
        :class:`~forecaster.exceptions.ForecasterWarning`, so that the fit's own error is
        what propagates."""
        if not self.started:
            return
        try:
            call_hook(self.callbacks, "on_fit_error", estimator, exc)
        except Exception as hook_error:
            warn_at_caller(
                f"An on_fit_error callback failed ({type(hook_error).__name__}: {hook_error}) "
                f"while the fit failed with {type(exc).__name__}.",
                ForecasterWarning,
            )


def _no_epoch_hook(record: Any, network: Any) -> None:
    """Stands in for a fit callback without ``on_epoch_end`` when the callbacks are checked."""


def check_fit_callbacks(callbacks: Any) -> list[Any]:
    """Check ``fit(callbacks=...)`` before any work: a list of plain epoch callables
    ``callback(record, network)`` and fit callbacks (objects with some of
    :data:`~forecaster.training.callbacks.FIT_HOOKS`, whose ``on_epoch_end`` is checked like
    a plain callable). Returns them as a list.

    Examples
    --------
    >>> class Done:
    ...     def on_fit_end(self, estimator): ...
    >>> len(check_fit_callbacks([Done(), print]))
    2
    """
    if not isinstance(callbacks, list | tuple):
        return check_callbacks(callbacks)  # refused with its message, or None: []
    stand_ins = [
        getattr(c, "on_epoch_end", None) or _no_epoch_hook
        if any(hasattr(c, hook) for hook in FIT_HOOKS)
        else c
        for c in callbacks
    ]
    check_callbacks(stand_ins)
    return list(callbacks)


def member_ended(
    stopped_by: str | None,
    *,
    member: int,
    n_epochs: int,
    n_ensemble: int,
    max_epochs: int,
    max_time: float | None,
) -> bool:
    """After ensemble member ``member`` (0-based; the only network with ``n_ensemble=1``)
    trained ``n_epochs`` epochs and ``stopped_by`` ended it: warn when ``max_time`` cut its
    training, or when a callback's :class:`~forecaster.training.callbacks.StopTraining` ends
    an ensemble before its last member. True when the fit trains no further member (the time
    budget is spent, or a callback asked to stop).

    Examples
    --------
    >>> member_ended("max_epochs", member=0, n_epochs=3, n_ensemble=2, max_epochs=3,
    ...              max_time=None)
    False
    """
    which = "the network" if n_ensemble == 1 else f"ensemble member {member + 1}"
    later = member + 1 < n_ensemble
    if stopped_by == "max_time":
        warn_at_caller(
            f"max_time={max_time:g} s ran out while training {which}: it stopped after "
            f"{n_epochs} of max_epochs={max_epochs} epochs (stopped_by_ = 'max_time'), before "
            "early stopping or max_epochs ended it, and keeps the best weights so far. Raise "
            "max_time, or lower max_epochs to what fits in it.",
            ForecasterWarning,
        )
        if later:
            warn_short_ensemble(member + 1, n_ensemble, float(max_time or 0.0))
        return True
    if stopped_by == "callback" and later:
        trained = member + 1
        warn_at_caller(
            f"A callback raised StopTraining while training {which} of n_ensemble="
            f"{n_ensemble}: the fit stops there (stopped_by_ = 'callback'), that member keeps "
            f"its best weights and the ensemble averages the {trained} member"
            f"{'s' if trained > 1 else ''} trained (n_members_ = {trained}). Raise StopTraining "
            "only to end the fit, or lower n_ensemble to the members wanted.",
            ForecasterWarning,
        )
    return stopped_by == "callback"


def warn_short_ensemble(trained: int, wanted: int, max_time: float) -> None:
    """Say that ``max_time`` ran out after ``trained`` of ``wanted`` ensemble members."""
    warn_at_caller(
        f"max_time={max_time:g} s ran out after {trained} of the n_ensemble={wanted} networks: "
        f"the ensemble averages {trained} member{'s' if trained > 1 else ''} "
        f"(n_members_ = {trained}). Raise max_time, or lower n_ensemble to what fits in it.",
        ForecasterWarning,
    )

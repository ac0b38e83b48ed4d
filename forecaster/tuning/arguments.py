"""The settings of :func:`~forecaster.tuning.tune`, refused before anything runs when it cannot
honour them."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from forecaster._validation import check
from forecaster.exceptions import DataValidationError
from forecaster.tuning.common import is_int, qualname
from forecaster.tuning.scores import check_probabilistic, score_column

__all__ = ["check_tune_args", "validation_split_problem"]


def check_tune_args(
    estimator: Any,
    n_trials: Any,
    timeout: Any,
    n_workers: Any,
    direction: Any,
    metric: Any,
    study_name: Any,
    random_state: Any,
    refit: Any,
    track: Any,
    callbacks: Any,
    show_progress: Any,
) -> None:
    """Refuse settings of :func:`tune` that it cannot honour, before anything runs."""
    if not all(hasattr(estimator, a) for a in ("get_params", "set_params", "fit")):
        raise DataValidationError(
            f"tune needs a forecaster estimator (get_params, set_params, fit), got "
            f"{type(estimator).__name__}."
        )
    if n_trials is not None and (not is_int(n_trials) or n_trials < 1):
        raise DataValidationError(
            f"n_trials must be an integer >= 1 (the number of finished trials wanted) or None "
            f"(until timeout), got {n_trials!r}."
        )
    if timeout is not None and (
        isinstance(timeout, bool | np.bool_)
        or not isinstance(timeout, numbers.Real)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise DataValidationError(
            f"timeout must be a positive, finite number of seconds or None (no limit), got "
            f"{timeout!r}."
        )
    if n_trials is None and timeout is None:
        raise DataValidationError("Give n_trials, timeout or both; with neither tune never ends.")
    if not is_int(n_workers) or n_workers < 1:
        raise DataValidationError(f"n_workers must be an integer >= 1, got {n_workers!r}.")
    _check_objective(estimator, direction, metric)
    if study_name is not None and (
        not isinstance(study_name, str) or not study_name.strip() or len(study_name) > 512
    ):
        raise DataValidationError(
            f"study_name must be a non-empty string of at most 512 characters or None, got "
            f"{study_name!r}."
        )
    check("random_state", random_state)  # the estimators' rule: one message for a seed
    for arg, value, allowed in (
        ("refit", refit, (True, False)),
        ("track", track, (True, False, None)),
        ("show_progress", show_progress, (True, False, None)),
    ):
        if not (value is None or isinstance(value, bool | np.bool_)) or value not in allowed:
            raise DataValidationError(
                f"{arg} must be one of {', '.join(map(str, allowed))}, got {value!r}."
            )
    _check_callbacks(callbacks)


def _check_objective(estimator: Any, direction: Any, metric: Any) -> None:
    if direction not in ("minimize", "maximize"):
        raise DataValidationError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
    if score_column(metric) is not None:  # a probabilistic score (forecaster.tuning.scores)
        check_probabilistic(estimator, metric, direction)
    elif not callable(metric) and metric != "val_loss":
        raise DataValidationError(
            f"metric={metric!r} is not supported. Use 'val_loss', a probabilistic score of a "
            "quantile model ('pinball', 'scrps', 'msis', 'winkler', 'msis_80', ...) or a "
            "callable metric(fitted_estimator, frame) -> float."
        )
    elif callable(metric):
        _check_metric_signature(metric)
    elif direction != "minimize":  # val_loss
        raise DataValidationError("metric='val_loss' is minimized; use direction='minimize'.")
    problem = validation_split_problem(
        estimator, metric, "pass a metric callable that scores the fitted model"
    )
    if problem is not None:
        raise DataValidationError(problem)


def validation_split_problem(estimator: Any, metric: Any, otherwise: str) -> str | None:
    """Why :func:`tune` cannot rank trials of ``estimator`` by ``metric``, or None when it
    can: ``"val_loss"`` and the probabilistic scores are measured on the validation split,
    which a validation-split parameter (``validation_size``, ``validation_fraction``) of 0
    disables (a callable metric scores the fitted model itself). The one rule of tune's own
    check and of a pipeline spec's (:func:`forecaster.jobs.fitting.search_plan`); the
    message ends with the fix, a split > 0 or ``otherwise``, in the caller's terms.

    Examples
    --------
    >>> from forecaster import RNNForecaster
    >>> model = RNNForecaster(target="y", validation_size=0)
    >>> validation_split_problem(model, "val_loss", "do not tune").split("and ")[-1]
    'validation_size=0 disables it. Set validation_size > 0 (e.g. 0.1), or do not tune.'
    """
    if callable(metric):
        return None
    params = estimator.get_params(deep=False)
    name = "validation_size" if "validation_size" in params else "validation_fraction"
    if params.get(name) != 0:
        return None
    return (
        f"tune ranks the trials by {metric!r}, measured on the validation split, and "
        f"{name}=0 disables it. Set {name} > 0 (e.g. 0.1), or {otherwise}."
    )


def _check_metric_signature(metric: Callable[..., Any]) -> None:
    """A metric callable must take ``(fitted_estimator, frame)``: otherwise every trial
    would train and then fail the same way."""
    problem = _two_arguments_error(metric)
    if problem is not None:
        raise DataValidationError(
            f"The metric {qualname(metric)} cannot be called as metric(fitted_estimator, "
            f"frame): {problem}. tune calls it after each trial's fit with the fitted estimator "
            "and the frame, e.g. metric=lambda model, frame: model.score(frame)."
        ) from None


def _check_callbacks(callbacks: Any) -> None:
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Iterable):
        raise DataValidationError(
            f"callbacks must be a list of callables callback(study, frozen_trial), got "
            f"{callbacks!r}."
        )
    for callback in callbacks:
        if not callable(callback):
            raise DataValidationError(
                f"callbacks must be callables callback(study, frozen_trial), got {callback!r}."
            )
        problem = _two_arguments_error(callback)
        if problem is not None:
            raise DataValidationError(
                f"The callback {callback!r} cannot be called as callback(study, frozen_trial): "
                f"{problem}."
            ) from problem


def _two_arguments_error(function: Callable[..., Any]) -> TypeError | None:
    """Why ``function`` cannot be called with two positional arguments; None when it can,
    or when it has no signature (a builtin: trusted)."""
    try:
        inspect.signature(function).bind(None, None)
    except TypeError as exc:
        return exc
    except ValueError:
        pass
    return None

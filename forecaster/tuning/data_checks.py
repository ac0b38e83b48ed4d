"""The data checks of :func:`~forecaster.tuning.tune` before any trial: what every trial's
fit would refuse the same way (:func:`check_data`), and the validation windows the trials are
scored on.

Every trial on the same validation windows
    With ``metric="val_loss"`` or a probabilistic score (``"pinball"``, ...) a trial is scored
    on its fit's validation windows: one per origin whose ``horizon`` targets lie in the
    validation split of a series (:func:`~forecaster.estimators.sampling.validation_origins`).
    Trials scored on different windows are not comparable (``best_params`` would rank window
    sets, not models). Of the parameters a space may sample, they depend on

    - ``lookback``: an origin needs ``lookback`` steps before it, so a lookback longer than
      the steps before a series' validation split leaves out its first origins (a series
      shorter than ``lookback + horizon``, all of them);
    - ``windows_per_epoch``, with ``"val_loss"``: a fit scores a fixed random sample of that
      many when there are more (a probabilistic score forecasts every origin);
    - not ``stride``, which thins the training windows only.

    A dict space is checked before any trial: lookbacks that score different windows are
    refused (the default space, whose lookbacks follow the data, warns instead) and so are
    ``windows_per_epoch`` values below the number of validation windows. A callable space is
    checked at each trial (:meth:`ValidationSpan.trial_problem`): a trial whose lookback leaves
    out a validation window, or whose ``windows_per_epoch`` samples them, fails with the
    reason. A metric callable scores what it chooses: nothing is checked.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone

from forecaster.estimators.sampling import validation_counts, validation_steps
from forecaster.exceptions import DataValidationError, ForecasterWarning
from forecaster.tuning.common import is_int
from forecaster.tuning.scores import score_column

__all__ = ["ValidationSpan", "check_data"]


@dataclass(frozen=True)
class ValidationSpan:
    """The validation split of the tuning data, as every trial's fit holds it out.

    Attributes
    ----------
    lengths, holdout : numpy.ndarray
        Each series' length (on its grid, as fit reads it) and validation steps.
    horizon : int
    lookback : int or Any
        The template's lookback (``"auto"`` resolved on the data).
    capped : bool
        Whether ``windows_per_epoch`` caps what the objective scores (``"val_loss"``).
    """

    lengths: np.ndarray
    holdout: np.ndarray
    horizon: int
    lookback: Any
    capped: bool

    def counts(self, lookback: int) -> np.ndarray:
        """The validation windows of each series at ``lookback``."""
        return validation_counts(self.lengths, self.holdout, int(lookback), self.horizon)

    def keeping(self, lookback: int) -> int:
        """The longest lookback that keeps every validation window of ``lookback``."""
        scored = self.counts(lookback) > 0
        if not scored.any():
            return int(lookback)
        return int(np.maximum(self.lengths - self.holdout, int(lookback))[scored].min())

    def trial_problem(self, params: Mapping[str, Any]) -> str | None:
        """Why a trial of a callable space (its sampled ``params``) would be scored on other
        validation windows than another trial, or None: its lookback leaves out a window of
        the whole validation split (that of lookback 1), or its ``windows_per_epoch`` samples
        them."""
        lookback = params.get("lookback", self.lookback)
        if not is_int(lookback):
            return None
        most, keep = int(self.counts(1).sum()), self.keeping(1)
        kept = int(self.counts(lookback).sum())  # none: too long, as the fit will say
        if "lookback" in params and lookback > keep and kept:
            return (
                f"lookback={lookback} leaves out {most - kept} of the {most} validation windows "
                f"(an origin needs lookback steps before it, and some series have fewer before "
                f"their validation split), so this trial would be scored on other windows than "
                f"trials of shorter lookbacks. Sample lookbacks up to {keep} (they keep every "
                "validation window), or leave out or lengthen the short series."
            )
        per_epoch: Any = params.get("windows_per_epoch")
        if self.capped and is_int(per_epoch) and per_epoch < kept:
            return (
                f"windows_per_epoch={per_epoch} also caps the fit's validation windows, and "
                f"the data has {kept}: this trial's val_loss would be measured on a random sample "
                f"of them, other windows than trials of another windows_per_epoch. {_CAP_FIX}"
            )
        return None


_CAP_FIX = (
    "Sample only values >= the number of validation windows (or None: all of them), keep "
    "windows_per_epoch fixed, or score every trial the same way with a metric callable "
    "(e.g. a backtest score) or, for loss='quantile', a probabilistic score (metric='pinball', "
    "...), which forecasts every validation origin."
)


def _sampled(distribution: Any, resolve: Callable[[Any], Any]) -> list[Any]:
    """The values of a dict space's distribution that decide what it can sample: its
    choices, or the bounds of a range."""
    choices = getattr(distribution, "choices", None)
    values = list(choices) if choices is not None else [distribution.low, distribution.high]
    return [resolve(v) for v in values]


def _check_same_windows(
    span: ValidationSpan, space: Mapping[str, Any], resolve: Callable[[Any], Any], default: bool
) -> None:
    """Refuse (warn of, for the default space) a dict space whose trials would be scored on
    different validation windows: lookbacks that leave out different windows, and
    ``windows_per_epoch`` values that sample them (see the module docs)."""
    lookbacks = [span.lookback]
    if "lookback" in space:
        lookbacks = _sampled(space["lookback"], resolve)
        _check_lookback_windows(span, space["lookback"], lookbacks, default)
    if not span.capped or "windows_per_epoch" not in space:
        return
    n = max((int(span.counts(lb).sum()) for lb in lookbacks if is_int(lb)), default=0)
    distribution = space["windows_per_epoch"]
    if any(is_int(v) and v < n for v in _sampled(distribution, resolve)):
        choices = getattr(distribution, "choices", None)
        shown = list(choices) if choices is not None else (distribution.low, distribution.high)
        raise DataValidationError(
            f"search_space['windows_per_epoch'] = {shown!r} while the objective is the "
            f"validation loss, and windows_per_epoch also caps a fit's validation windows (a "
            f"random sample of that many): the data has {n}, so trials of windows_per_epoch "
            f"below {n} would be measured on fewer, other windows than the rest, and the study "
            f"would rank window samples, not models. {_CAP_FIX} No trial was run."
        )


def _check_lookback_windows(
    span: ValidationSpan, distribution: Any, lookbacks: list[Any], default: bool
) -> None:
    values = sorted({int(v) for v in lookbacks if is_int(v)})
    if len(values) < 2:
        return
    reference = span.counts(values[0])
    total = int(reference.sum())
    keep = span.keeping(values[0])
    lost = []
    for lookback in values[1:]:
        counts = span.counts(lookback)
        if not np.array_equal(counts, reference):
            gone = int(((counts == 0) & (reference > 0)).sum())
            whole = f" (all those of {gone} series)" if gone else ""
            lost.append(f"lookback={lookback} leaves out {total - int(counts.sum())}{whole}")
    if not lost:
        return
    choices = getattr(distribution, "choices", None)
    shown = list(choices) if choices is not None else (distribution.low, distribution.high)
    where = "The default search space" if default else "search_space['lookback']"
    problem = (
        f"{where} (lookback {shown}) scores trials of different lookbacks on different "
        f"validation windows, so the study would rank window sets, not models: an origin "
        f"needs lookback steps before it, and some series have fewer before their validation "
        f"split. Of the {total} validation windows of lookback={values[0]}, "
        f"{'; '.join(lost[:3])}{'; ...' if len(lost) > 3 else ''}."
    )
    if default:
        warnings.warn(
            f"{problem} Pass a search_space with lookbacks up to {keep} (they keep every "
            "validation window), or leave out or lengthen the short series.",
            ForecasterWarning,
            stacklevel=6,  # tune's caller
        )
        return
    raise DataValidationError(
        f"{problem} Sample lookbacks up to {keep} (they keep every validation window), or "
        "leave out or lengthen the short series. No trial was run."
    )


def check_data(
    estimator: Any, frame: Any, space: Any, metric: Any, *, default_space: bool
) -> tuple[int | None, ValidationSpan | None]:
    """Before any trial, what every trial's fit would refuse the same way: the frame as fit
    reads it (missing values under ``missing="error"``, an irregular grid, ...), and
    lookbacks (those a dict space can sample, or the template's when it samples none) that
    leave no training window in the longest series; and a dict space whose trials would be
    scored on different validation windows (see the module docs). A forecaster only: a
    regressor's windows are its ``X``. Returns the longest lookback the data has room for and
    the validation split the trials are scored on, for the checks of a callable space's
    trials (both None for a regressor; the span None for a metric callable)."""
    params = estimator.get_params(deep=False)
    if "lookback" not in params or "horizon" not in params:
        return None, None
    from forecaster.data.panel import Panel

    roles = ("target", "time_col", "id_col", "covariates", "future_covariates")
    columns = {role: params.get(role) for role in roles}
    for role in ("covariates", "future_covariates"):
        if not isinstance(space, Mapping) or role in space:
            columns[role] = None  # the trials choose them
    with warnings.catch_warnings():  # e.g. dropped single-row series: each fit warns itself
        warnings.simplefilter("ignore", ForecasterWarning)
        try:
            panel = Panel.from_frame(
                frame, **columns, freq=params.get("freq", "auto"),
                missing=params.get("missing", "error"),
            )  # fmt: skip
        except DataValidationError as exc:
            raise DataValidationError(
                f"tune reads the frame as each trial's fit would, and every trial would fail: {exc}"
            ) from None
    lengths = np.asarray(panel.lengths, dtype=np.int64)
    longest = _check_lookbacks(params, space, lengths, default_space)
    if metric != "val_loss" and score_column(metric) is None:
        return longest, None  # a metric callable: what it scores is its own
    horizon = int(params["horizon"])
    holdout = _holdout_steps(params.get("validation_size", 0), lengths, horizon)

    def resolve(lookback: Any) -> Any:  # "auto": the lookback a trial's fit chooses
        if lookback != "auto":
            return lookback
        return clone(estimator).set_params(lookback="auto").lookback_for(panel)

    span = ValidationSpan(
        lengths, holdout, horizon, resolve(params["lookback"]), capped=metric == "val_loss"
    )
    if isinstance(space, Mapping):
        _check_same_windows(span, space, resolve, default_space)
    return longest, span


def _holdout_steps(validation_size: Any, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """The validation steps a forecaster's fit holds out of series of ``lengths`` (as
    ``RNNForecaster.fit`` does: an int is that many steps, a fraction at least ``horizon``)."""
    if isinstance(validation_size, bool) or not isinstance(validation_size, numbers.Real):
        return np.zeros_like(lengths)
    return validation_steps(validation_size, lengths, horizon)


def _check_lookbacks(
    params: Mapping[str, Any], space: Any, lengths: np.ndarray, default_space: bool
) -> int:
    """Refuse lookbacks no series of ``lengths`` has a training window for (a fit needs
    ``lookback + horizon`` steps before the validation steps it holds out); the longest
    lookback the data has room for."""
    if isinstance(space, Mapping) and "lookback" in space:
        distribution = space["lookback"]
        choices = getattr(distribution, "choices", None)
        values = list(choices) if choices is not None else [distribution.low, distribution.high]
        shown = list(choices) if choices is not None else (distribution.low, distribution.high)
        where = (
            f"The default search space (lookback {shown})"
            if default_space
            else f"search_space['lookback'] = {shown!r}"
        )
    elif isinstance(space, Mapping):
        values = [params["lookback"]]
        where = f"lookback={params['lookback']!r} (the estimator's; the space does not sample it)"
    else:
        values, where = [], ""  # a callable space: checked at its first trial (Objective)
    horizon = int(params["horizon"])
    vs = params.get("validation_size", 0)
    if isinstance(space, Mapping) and "validation_size" in space:
        vs = 0  # sampled: no holdout is the bound that refuses nothing a trial could fit
    holdout = _holdout_steps(vs, lengths, horizon)
    room = lengths - holdout - horizon
    best = int(np.argmax(room)) if len(room) else 0
    longest = int(room[best]) if len(room) else 0
    too_long = [v for v in values if is_int(v) and v > longest]
    if not too_long:
        return longest
    held = f" and the {int(holdout[best])} validation steps fit holds out" if holdout[best] else ""
    problem = f"{where} can sample lookbacks too long for the data ({too_long})"
    if where.startswith("lookback="):
        problem = f"{where} is too long for the data"
    fix = (
        f"Use lookbacks up to {longest}, a shorter horizon or validation_size, or longer series"
        if longest >= 1
        else "No lookback fits: use a shorter horizon or validation_size, or longer series"
    )
    raise DataValidationError(
        f"{problem}: a trial's fit needs a series with lookback + horizon ({horizon}) "
        f"steps{held}, and the longest series has {int(lengths[best]) if len(lengths) else 0} "
        f"steps, so lookback can be at most {max(longest, 0)}. {fix}. No trial was run."
    )

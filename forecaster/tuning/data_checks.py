"""The data checks of :func:`~forecaster.tuning.tune` before any trial: what every trial's
fit would refuse the same way (:func:`check_data`), and the validation windows the trials are
scored on.

Every trial on the same validation windows
    With ``metric="val_loss"`` or a probabilistic score (``"pinball"``, ...) a trial is scored
    on its fit's validation windows: one per origin whose ``horizon`` targets lie in the
    validation split of a series (:func:`~forecaster.estimators.sampling.validation_origins`).
    Trials scored on different windows are not comparable (``best_params`` would rank window
    sets, not models). Of the parameters a space may sample, they depend on

    - ``lookback``: a fit keeps a series with ``lookback + horizon`` steps before its
      validation split only (one training window), so a longer lookback leaves out all the
      validation windows of the series with fewer (and on a date panel, leaving out the
      series that end last moves the hold-out time of the others:
      :func:`~forecaster.estimators.sampling.kept_series`);
    - ``windows_per_epoch``, with ``"val_loss"``: a fit scores a fixed random sample of that
      many when there are more (drawn from ``random_state``; without one, the sample of
      ``random_state=0``: the same for every trial of one value; a probabilistic score
      forecasts every origin);
    - not ``stride``, which thins the training windows only.

    Lookbacks that score different windows are warned of, once per call of
    :func:`~forecaster.tuning.tune` and at its caller's line (the study may rank window sets,
    not models): those a dict space can sample, before any trial (:func:`check_data`); those
    a callable space's trials used, after them, compared with the first trial of the call
    (:func:`warn_trial_windows`). A dict space whose ``windows_per_epoch`` values sample the
    validation windows is refused, and a callable space's trial whose ``windows_per_epoch``
    samples them fails with the reason (:meth:`ValidationSpan.trial_problem`). A metric
    callable scores what it chooses: nothing is checked.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from forecaster.estimators.sampling import kept_series, validation_counts, validation_origins
from forecaster.evaluation.intervals import is_scaled_metric
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    StudyStopError,
    silenced,
    warn_at_caller,
)
from forecaster.tuning.common import is_int
from forecaster.tuning.scores import score_column, unscaled_error, unscaled_series

if TYPE_CHECKING:
    from forecaster.data.panel import Panel

__all__ = ["ValidationSpan", "check_data", "check_trial_scale", "warn_trial_windows"]


@dataclass(frozen=True)
class ValidationSpan:
    """The validation split of the tuning data, as every trial's fit holds it out.

    Attributes
    ----------
    panel : Panel
        The tuning data as fit reads it (each series on its grid).
    validation_size : int or float
        The template's (0 when it is not a number: the fit refuses it).
    horizon : int
    lookback : int or Any
        The template's lookback (``"auto"`` resolved on the data).
    capped : bool
        Whether ``windows_per_epoch`` caps what the objective scores (``"val_loss"``).
    auto : int or None
        The lookback ``"auto"`` resolves to (checked for a callable space's trials).
    kept : dict
        Per lookback asked, the series a fit keeps and their validation steps (filled as
        the checks ask; not compared).
    unscaled_by_holdout : dict
        The series :meth:`unscaled` finds, per hold-out of the series scored (filled as
        the checks ask; not compared).
    """

    panel: Panel
    validation_size: Any
    horizon: int
    lookback: Any
    capped: bool
    auto: int | None = None
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )  # kept_series of each lookback, once: the checks ask for the same ones again and again
    unscaled_by_holdout: dict[bytes, np.ndarray] = field(
        default_factory=dict, compare=False, repr=False
    )

    def resolved(self, lookback: Any) -> Any:
        """``lookback`` as a fit uses it (``"auto"`` resolved, when it is known)."""
        return self.auto if lookback == "auto" and self.auto is not None else lookback

    def holdout(self, lookback: int) -> np.ndarray:
        """The validation steps of each series a fit of ``lookback`` keeps (0 for the
        others: :func:`~forecaster.estimators.sampling.kept_series`)."""
        lookback = int(lookback)
        if lookback not in self.kept:
            self.kept[lookback] = kept_series(
                self.validation_size, self.panel, lookback, self.horizon
            )
        return self.kept[lookback][1]

    def counts(self, lookback: int) -> np.ndarray:
        """The validation windows of each series at ``lookback``."""
        holdout = self.holdout(lookback)
        return validation_counts(self.panel.lengths, holdout, int(lookback), self.horizon)

    def unscaled(self, lookback: int, frame: Any, missing: Any) -> np.ndarray:
        """The series that a trial of ``lookback`` scores and that lack the scale of sCRPS
        and MSIS (:func:`~forecaster.tuning.scores.unscaled_series` at its validation
        origins, on the targets of ``frame`` that ``missing`` did not fill); none when no
        series has a validation origin (the fit refuses it, with its own error). A scored
        series' first origin is the last step before its hold-out, so lookbacks whose fits
        hold out the same steps of the same series share one answer."""
        lookback = int(lookback)
        holdout = np.where(self.counts(lookback) > 0, self.holdout(lookback), 0)
        key = holdout.tobytes()
        if key not in self.unscaled_by_holdout:
            rows = validation_origins(self.panel, holdout, lookback, self.horizon)
            found = unscaled_series(self.panel, rows, frame, missing) if rows.size else rows
            self.unscaled_by_holdout[key] = found
        return self.unscaled_by_holdout[key]

    def keeping(self, lookback: int) -> int:
        """The longest lookback that keeps every validation window of ``lookback``: the
        fewest steps before the validation split of a series it scores, less the horizon."""
        scored = self.counts(lookback) > 0
        if not scored.any():
            return int(lookback)
        room = self.panel.lengths - self.holdout(lookback) - self.horizon
        return int(np.maximum(room, int(lookback))[scored].min())

    def lookback_warning(self, lookbacks: Sequence[Any], where: str) -> str | None:
        """The warning that trials of ``lookbacks`` are scored on different validation
        windows (some score other windows than the first one's), or None: each lookback
        longer than the shortest, and the windows of the shortest it leaves out."""
        values = [int(v) for v in map(self.resolved, lookbacks) if is_int(v)]
        if not values:
            return None
        first, distinct = self.counts(values[0]), sorted(set(values))
        if all(np.array_equal(self.counts(v), first) for v in distinct):
            return None
        reference = self.counts(distinct[0])
        total = int(reference.sum())
        lost = []
        for lookback in distinct[1:]:
            counts = self.counts(lookback)
            if not np.array_equal(counts, reference):
                gone = int(((counts == 0) & (reference > 0)).sum())
                whole = f" (all those of {gone} series)" if gone else ""
                lost.append(f"lookback={lookback} leaves out {total - int(counts.sum())}{whole}")
        return (
            f"{where} scores trials of different lookbacks on different validation windows "
            f"(a fit leaves out a series with fewer than lookback + horizon steps before its "
            f"validation split, and its validation windows with it), so the study may rank "
            f"window sets, not models. Of the "
            f"{total} validation windows of lookback={distinct[0]}, "
            f"{'; '.join(lost[:3])}{'; ...' if len(lost) > 3 else ''}. Sample lookbacks up "
            f"to {self.keeping(distinct[0])} (they keep every validation window), or leave out "
            "(or lengthen) the short series."
        )

    def trial_problem(self, params: Mapping[str, Any]) -> str | None:
        """Why a trial of a callable space (its sampled ``params``) would be scored on other
        validation windows than trials of another ``windows_per_epoch`` (its value samples
        them), or None. Its lookback is compared with the other trials' after them
        (:func:`warn_trial_windows`)."""
        lookback = self.resolved(params.get("lookback", self.lookback))
        per_epoch: Any = params.get("windows_per_epoch")
        if not self.capped or not is_int(lookback) or not is_int(per_epoch):
            return None
        kept = int(self.counts(lookback).sum())  # none: too long, as the fit will say
        if per_epoch < kept:
            return (
                f"windows_per_epoch={per_epoch} also caps the fit's validation windows, and "
                f"the data has {kept}: this trial's val_loss would be measured on a random sample "
                f"of them, other windows than trials of another windows_per_epoch. {_CAP_FIX}"
            )
        return None


_CAP_FIX = (
    "Sample only values >= the number of validation windows (or None: all of them), or keep "
    "windows_per_epoch fixed (every fit of the same data then validates on the same sample: "
    "that of random_state, or without one that of random_state=0), or score every trial the "
    "same way with a metric callable (e.g. a backtest score) or, for loss='quantile', a "
    "probabilistic score (metric='pinball', ...), which forecasts every validation origin."
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
    """Warn of a dict space's lookbacks that score different validation windows, and refuse
    ``windows_per_epoch`` values that sample them (see the module docs)."""
    lookbacks = [span.lookback]
    if "lookback" in space:
        lookbacks = _sampled(space["lookback"], resolve)
        shown = _shown(space["lookback"])
        where = (
            f"The default search space (lookback {list(shown)})"
            if default
            else f"search_space['lookback'] = {shown!r}"
        )
        warning = span.lookback_warning(lookbacks, where)
        if warning is not None:
            warn_at_caller(warning, ForecasterWarning)
    if not span.capped or "windows_per_epoch" not in space:
        return
    n = max((int(span.counts(lb).sum()) for lb in lookbacks if is_int(lb)), default=0)
    distribution = space["windows_per_epoch"]
    if any(is_int(v) and v < n for v in _sampled(distribution, resolve)):
        raise DataValidationError(
            f"search_space['windows_per_epoch'] = {_shown(distribution)!r} while the objective "
            f"is the validation loss, and windows_per_epoch also caps a fit's validation "
            f"windows (a random sample of that many): the data has {n}, so trials of "
            f"windows_per_epoch below {n} would be measured on fewer, other windows than the "
            f"rest, and the study would rank window samples, not models. {_CAP_FIX} No trial "
            "was run."
        )


def _shown(distribution: Any) -> Any:
    """A dict space's distribution as the error messages show it: its choices (a list), or
    the bounds of a range (a tuple)."""
    choices = getattr(distribution, "choices", None)
    return list(choices) if choices is not None else (distribution.low, distribution.high)


def warn_trial_windows(span: ValidationSpan | None, trials: Sequence[Any]) -> None:
    """After the trials of a callable search space: warn (once, at the line that called
    :func:`tune`) when those of ``trials`` that were scored (complete or pruned; Optuna's
    frozen trials of this call, in order) used lookbacks that score other validation windows
    than the first one's. A trial's lookback is the one its parameters set, else the
    template's."""
    if span is None:
        return
    lookbacks = [
        t.user_attrs.get("params", t.params).get("lookback", span.lookback)
        for t in trials
        if t.state.name in ("COMPLETE", "PRUNED")
    ]
    used = sorted({v for v in map(span.resolved, lookbacks) if is_int(v)})
    warning = span.lookback_warning(
        lookbacks, f"The search_space callable (its trials' lookbacks {used})"
    )
    if warning is not None:
        warn_at_caller(warning, ForecasterWarning)


def check_data(
    estimator: Any, frame: Any, space: Any, metric: Any, *, default_space: bool
) -> tuple[int | None, ValidationSpan | None]:
    """Before any trial, what every trial's fit would refuse the same way: the frame as fit
    reads it (missing values under ``missing="error"``, an irregular grid, ...), and
    lookbacks (those a dict space can sample, or the template's when it samples none) that
    leave no training window in the longest series; and a dict space whose trials would be
    scored on different validation windows (a warning for lookbacks, an error for
    ``windows_per_epoch``: see the module docs). A forecaster only: a
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
    with silenced(ForecasterWarning):  # e.g. dropped single-row series: each fit warns itself
        try:
            panel = Panel.from_frame(
                frame, **columns, freq=params.get("freq", "auto"),
                missing=params.get("missing", "error"),
            )  # fmt: skip
        except DataValidationError as exc:
            raise DataValidationError(
                f"tune reads the frame as each trial's fit would, and every trial would fail: {exc}"
            ) from None
    longest = _check_lookbacks(params, space, panel, default_space)
    if metric != "val_loss" and score_column(metric) is None:
        return longest, None  # a metric callable: what it scores is its own
    horizon = int(params["horizon"])

    def resolve(lookback: Any) -> Any:  # "auto": the lookback a trial's fit chooses
        if lookback != "auto":
            return lookback
        return clone(estimator).set_params(lookback="auto").lookback_for(panel)

    callable_space = not isinstance(space, Mapping)  # its trials may return "auto"
    span = ValidationSpan(
        panel, _size(params.get("validation_size", 0)), horizon, resolve(params["lookback"]),
        capped=metric == "val_loss",
        auto=resolve("auto") if callable_space else None,
    )  # fmt: skip
    if not callable_space:
        _check_same_windows(span, space, resolve, default_space)
    missing = params.get("missing", "error")
    _check_scaled_score(span, metric, frame, missing, space, resolve, default_space)
    return longest, span


def _check_scaled_score(
    span: ValidationSpan, metric: Any, frame: Any, missing: Any, space: Any,
    resolve: Callable[[Any], Any], default: bool,
) -> None:  # fmt: skip
    """Refuse a scaled probabilistic ``metric`` (sCRPS, MSIS) when a series a trial scores
    does not change before its first validation origin: its scale, the in-sample naive MAE
    (lag 1, as :func:`~forecaster.tuning.scores.probabilistic_score` takes it), is 0, so the
    trial's score would be infinite, or is undefined (no two observed steps in a row there,
    e.g. every other step filled by ``missing``), so the trial fails. Which series a fit
    scores, and from which origin, depends on its lookback: checked at every lookback a dict
    space can sample (the template's when it samples none); a callable space's trials are
    checked before their fits (:func:`check_trial_scale`). The error names the lookbacks
    that score none of those series, as the space a user passed samples them, or (``default``)
    as lookbacks of a search space to pass in place of the default one."""
    column = score_column(metric) if metric != "val_loss" else None
    if column is None or not is_scaled_metric(column) or not isinstance(space, Mapping):
        return
    sampled = "lookback" in space
    lookbacks = _every_value(space["lookback"], resolve) if sampled else [span.lookback]
    flat = {lb: span.unscaled(lb, frame, missing) for lb in lookbacks if is_int(lb)}
    failing = sorted(lb for lb, series in flat.items() if series.size)
    if not failing:
        return
    series = np.unique(np.concatenate([flat[lb] for lb in failing]))
    scoring = sorted(set(flat) - set(failing))
    if not scoring:
        error = unscaled_error(metric, span.panel, series, "every trial's score")
        raise DataValidationError(f"{error} No trial was run.")
    shown = _shown(space["lookback"])
    where = (
        f"the default search space's lookbacks {list(shown)}"
        if default
        else f"search_space['lookback'] = {shown!r}"
    )
    fix = "pass a search_space whose lookbacks are among" if default else "sample only lookbacks"
    scored = f"the score of trials of lookback {_spans(failing)} ({where})"
    raise DataValidationError(
        f"{unscaled_error(metric, span.panel, series, scored)} Or {fix} {_spans(scoring)} "
        "(their fits score none of those series' flat steps). No trial was run."
    )


def check_trial_scale(
    span: ValidationSpan | None, metric: Any, frame: Any, missing: Any, params: Mapping[str, Any]
) -> None:
    """Before the fit of a callable space's trial (its sampled ``params``): refuse a scaled
    probabilistic ``metric`` that a series of the trial's lookback lacks the scale of (see
    :func:`_check_scaled_score`). The trial fails (:class:`DataValidationError`); when the
    space sets no lookback, every trial fits with the template's: the study stops
    (:class:`StudyStopError`)."""
    column = score_column(metric) if metric != "val_loss" else None
    if span is None or column is None or not is_scaled_metric(column):
        return
    lookback = span.resolved(params.get("lookback", span.lookback))
    if not is_int(lookback):
        return  # "auto" unknown, or a value the fit refuses with its own error
    flat = span.unscaled(lookback, frame, missing)
    if not flat.size:
        return
    if "lookback" in params:
        scored = f"this trial's score (lookback={int(lookback)})"
        raise DataValidationError(unscaled_error(metric, span.panel, flat, scored))
    scored = (
        f"every trial's score (the search_space callable sets no lookback, so every trial "
        f"fits with the estimator's lookback={int(lookback)})"
    )
    raise StudyStopError(unscaled_error(metric, span.panel, flat, scored))


def _every_value(distribution: Any, resolve: Callable[[Any], Any]) -> list[Any]:
    """Every value a dict space's distribution can sample: its choices, or each integer of
    an integer range (by its step)."""
    if getattr(distribution, "choices", None) is not None or not hasattr(distribution, "step"):
        return _sampled(distribution, resolve)
    low, high = _sampled(distribution, resolve)
    if not (is_int(low) and is_int(high)):
        return [low, high]
    return list(range(int(low), int(high) + 1, int(distribution.step or 1)))


def _spans(values: Sequence[int]) -> str:
    """Sorted distinct integers as runs of consecutive ones: ``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def _size(validation_size: Any) -> Any:
    """``validation_size`` as the checks read it: 0 when it is not a number (the fit refuses
    it with its own error)."""
    if isinstance(validation_size, bool) or not isinstance(validation_size, numbers.Real):
        return 0
    return validation_size


def _longest_lookback(size: Any, panel: Panel, horizon: int) -> tuple[int, int, int]:
    """The longest lookback a fit of ``panel`` keeps a series for (``lookback + horizon``
    steps before the validation steps of the series kept,
    :func:`~forecaster.estimators.sampling.kept_series`; at most 0 when none), and the
    series with the most room then and its validation steps (for the messages)."""
    lengths = np.asarray(panel.lengths, dtype=np.int64)
    lookback = int(lengths.max(initial=0)) - horizon  # no series has room for more
    best, held = (int(np.argmax(lengths)) if len(lengths) else 0), 0
    rounds: list[tuple[np.ndarray, np.ndarray]] = []  # the rounds that leave series out
    while lookback >= 1:
        keep, holdout = kept_series(
            size, panel, lookback, horizon, on_short=lambda k, h, _: rounds.append((k, h))
        )
        fits = bool(keep.any())
        if not fits:  # the last round, in which every series left was short
            keep, holdout = rounds[-1]
        best = int(np.argmax(np.where(keep, lengths - holdout, -1)))
        held = int(holdout[best])
        if fits:
            return lookback, best, held
        lookback = min(int(lengths[best]) - held - horizon, lookback - 1)  # the most room then
    return lookback, best, held


def _check_lookbacks(
    params: Mapping[str, Any], space: Any, panel: Panel, default_space: bool
) -> int:
    """Refuse lookbacks that leave a fit no series (a fit keeps a series with ``lookback +
    horizon`` steps before the validation steps it holds out, on the hold-out of the series
    it keeps: :func:`~forecaster.estimators.sampling.kept_series`); the longest lookback the
    data has room for."""
    if isinstance(space, Mapping) and "lookback" in space:
        distribution = space["lookback"]
        shown = _shown(distribution)
        values = list(shown)
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
    lengths = np.asarray(panel.lengths, dtype=np.int64)
    size = _size(vs)
    longest, best, steps = _longest_lookback(size, panel, horizon)
    fits = {v: kept_series(size, panel, v, horizon)[0].any() for v in set(filter(is_int, values))}
    too_long = [v for v in values if is_int(v) and not fits[v]]
    if not too_long:
        return longest
    held = f" and the {steps} validation steps fit holds out" if steps else ""
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

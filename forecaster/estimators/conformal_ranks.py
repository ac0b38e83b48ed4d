"""The order statistics of split conformal prediction: the rank of a conformal quantile
among ``n`` scores (``ceil((n + 1) L / 100)``, :func:`conformal_rank`, whose rule lives in
:mod:`forecaster.evaluation.intervals`, where the conformal seasonal naive takes it too), the
fewest scores a level needs, and the
conformal quantile of scores (a central interval's, :func:`order_statistic`; a signed one,
:func:`signed_quantile`), of the scores that are not NaN (a NaN residual was left out of the
calibration). How they become intervals: :mod:`forecaster.estimators.intervals`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster.evaluation.intervals import conformal_rank, conformal_ranks, signed_ranks
from forecaster.exceptions import DataValidationError

__all__ = [
    "MORE_ORIGINS",
    "Advice",
    "check_enough",
    "conformal_rank",
    "more_residuals",
    "order_statistic",
    "quantile_level",
    "residuals_needed",
    "signed_quantile",
    "signed_quantiles",
    "strictest_needed",
]


def _observed(scores: np.ndarray) -> np.ndarray:
    """The scores along axis 0 of ``scores`` ``(n, ...)`` that are not NaN, per column: a NaN
    residual is one left out of the calibration (an actual value the ``missing`` policy made
    up, see :meth:`~forecaster.estimators.forecaster.RNNForecaster.calibrate`)."""
    return scores.shape[0] - np.count_nonzero(np.isnan(scores), axis=0)


def _fewest_observed(scores: np.ndarray, counts: np.ndarray | None = None) -> int:
    """The fewest scores (not NaN) of any column (horizon step, target, ...) of ``scores``
    ``(n, ...)`` (``counts``: their :func:`_observed` when known): what the checks of too few
    scores count."""
    counts = _observed(scores) if counts is None else counts
    return int(counts.min()) if counts.size else int(scores.shape[0])


def _ranked(scores: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The ``rank``-th smallest (1-based, per column) of the scores (not NaN) along axis 0
    of ``scores``; a rank outside ``[1, n]`` gives any value (its caller replaces it)."""
    if scores.shape[0] == 0:
        return np.full(scores.shape[1:], np.nan)
    index = np.clip(rank - 1, 0, scores.shape[0] - 1)
    if index.size and (index == index.flat[0]).all():  # one rank (as without NaN)
        k = int(index.flat[0])
        return np.partition(scores, k, axis=0)[k]
    ordered = np.partition(scores, np.unique(index), axis=0)  # those ranks in place, NaN last
    return np.take_along_axis(ordered, index[None], axis=0)[0]


def residuals_needed(level: float) -> int:
    """The fewest scores whose :func:`conformal_rank` at ``level`` is at most their number:
    ``ceil(L / (100 - L))`` (4 for 80 %, 19 for 95 %)."""
    return max(math.ceil(level / (100.0 - level) - 1e-9), 1)


def strictest_needed(levels: Sequence[float] | None, quantiles: Sequence[float] | None) -> int:
    """The calibration scores the strictest conformal quantile of a call needs
    (:func:`residuals_needed`): of each level, and of each quantile (those of the central
    interval it is an end of, :func:`quantile_level`)."""
    used = [*(levels or ()), *(quantile_level(q) for q in quantiles or ())]
    return max((residuals_needed(level) for level in used), default=1)


def quantile_level(q: float) -> float:
    """The level of the central interval that the quantile ``q`` is an end of:
    ``100 |1 - 2 q|`` (95 for both 0.025 and 0.975, 0 for the median)."""
    return round(100.0 * abs(1.0 - 2.0 * q), 10)


MORE_ORIGINS = (
    "Calibrate on more origins, e.g. model.calibrate(frame, folds=20), or on more series (or "
    "a larger window)."
)
"""How a forecaster gets more calibration residuals (the advice of :func:`check_enough`)."""


Advice = Callable[[int, int], str]
"""How a calibration gets more residuals, given those found and the fewest a level needs
(:func:`more_residuals`): the ``fix`` of :func:`check_enough` that fits its case."""


def check_enough(
    n: int,
    level: float,
    *,
    what: str,
    aim: str | None = None,
    fix: str | Advice = MORE_ORIGINS,
) -> None:
    """Refuse ``n`` scores when they are none or too few for a conformal quantile at ``level``
    (its :func:`conformal_rank` exceeds ``n``), naming ``what`` and ``aim`` (by default
    ``"a <level>% interval"``) and saying how to get more (``fix``: the text, or the
    :data:`Advice` giving it from ``n`` and the scores needed)."""
    if n == 0 or conformal_rank(n, level) > n:
        needed = residuals_needed(level)
        raise DataValidationError(
            f"{what}: {n} calibration residuals per horizon step are too few for "
            f"{aim or f'a {level:g}% interval'} (it needs at least {needed}). "
            f"{fix if isinstance(fix, str) else fix(n, needed)}"
        )


def more_residuals(
    conformal: dict,
    pool: np.ndarray,
    origin: int | None = None,
    time_dtype: pl.DataType | None = None,
) -> Advice:
    """The :data:`Advice` of a calibration (``conformal``: its ``residuals``, the ``series``
    and ``ends`` of their rows, sorted by end, and its rolling ``window``) whose rows
    ``pool`` a forecast from ``origin`` (the physical value of its time, a ``time_dtype``
    value; needed with a window) uses.

    Without a window: the folds that give the residuals needed (folds times series); with
    one: ``rolling=W`` keeps ``W`` rows per series, so a ``W`` too small for the level is
    named with the ``W`` it needs; else no (or too few) calibration windows have ended by
    the origin: the first window's end, and the time by which enough have ended.
    """
    rows, window = len(conformal["residuals"]), conformal.get("window")
    n_series = max(len(np.unique(conformal.get("series", ()))), 1)
    ends = conformal.get("ends", ())  # (with a window)

    def show(physical: Any) -> str:
        if time_dtype is None or time_dtype.is_integer():
            return str(physical)
        return str(pl.Series([int(physical)], dtype=pl.Int64).cast(time_dtype)[0])

    def advice(found: int, needed: int) -> str:
        least = -(-needed // n_series)  # folds (or windows) per series
        of = f" of {n_series} series" if n_series > 1 else ""
        folds = (
            f"calibrate with at least {least} folds{' per series' * (n_series > 1)}, e.g. "
            f"model.calibrate(frame, folds={least})"
        )
        if window is not None and window * n_series < needed:
            return (
                f"rolling={window} keeps the residuals of the latest {window} calibration "
                f"origins{of} ({window * n_series} per step): calibrate with rolling >= "
                f"{least} for this level."
            )
        stop = int(pool[-1]) + 1 if len(pool) else 0  # the calibration windows ended
        if window is not None and stop < needed <= rows:
            ended = (
                "No calibration window has"
                if stop == 0
                else f"Only {stop} of the {rows} calibration windows have"
            )
            return (
                f"{ended} ended by the origin {show(origin)} (rolling={window} uses those "
                f"ended by a forecast's origin; the first ends at {show(ends[0])}, and "
                f"{needed} have ended by {show(ends[needed - 1])}): forecast from a cutoff on "
                f"or after {show(ends[needed - 1])}, or calibrate with more folds (or a "
                "larger step), whose windows end earlier."
            )
        if rows >= needed:  # enough rows, but residuals left out (NaN) at some step
            return (
                f"The calibration has {rows} residuals per step{of}, {rows - found} of them left "
                "out at some step (actual values that the missing policy made up): calibrate on "
                "a frame with more observed values, or with more folds."
            )
        return (
            f"The calibration has {rows} residuals per step{of}: {folds}, or calibrate on "
            "more series."
        )

    return advice


def order_statistic(
    scores: np.ndarray,
    level: float,
    *,
    what: str,
    fix: str | Advice = MORE_ORIGINS,
    strict: bool = True,
) -> np.ndarray:
    """The conformal quantile along axis 0 of ``scores`` ``(n, ...)``: its
    :func:`conformal_rank`-th smallest value, of the scores that are not NaN in each column;
    too few scores are refused (:func:`check_enough`, naming ``what`` and the ``fix``), or
    with ``strict=False`` give ``inf`` (the conformal quantile of too few scores is
    unbounded)."""
    n = _observed(scores)
    if strict:
        check_enough(_fewest_observed(scores, n), level, what=what, fix=fix)
    rank = conformal_ranks(n, level)
    return np.where((n == 0) | (rank > n), np.inf, _ranked(scores, rank))


def signed_quantile(
    scores: np.ndarray,
    q: float,
    *,
    what: str,
    strict: bool = True,
    fix: str | Advice = MORE_ORIGINS,
) -> np.ndarray:
    """The split-conformal quantile ``q`` along axis 0 of signed ``scores`` ``(n, ...)`` (of
    the scores that are not NaN in each column).

    For ``q >= 0.5`` the ``ceil((n + 1) q)``-th smallest score, at most the largest; below,
    its mirror, the ``floor((n + 1) q)``-th smallest, at least the smallest. A new
    exchangeable score then falls at or below (at or above) it with probability at least
    ``q`` (``1 - q``) once ``n >= 1 / min(q, 1 - q) - 1`` (39 for 0.025 and 0.975), and
    ``n / (n + 1)`` with fewer. Too few scores are refused as for the central interval that
    ``q`` is an end of (:func:`quantile_level`, :func:`check_enough`): 19 for 0.025 and 0.975
    as for a 95 % interval, so that a band of quantiles needs the residuals of its level;
    with ``strict=False`` they give ``inf`` (``-inf`` below the median). ``fix``: how to get
    more scores, as :func:`check_enough` says it.
    """
    level = quantile_level(q)
    n = _observed(scores)
    if strict:
        aim = f"the quantile {q:g}, an end of the {level:g}% interval"
        check_enough(_fewest_observed(scores, n), level, what=what, aim=aim, fix=fix)
    value = _ranked(scores, signed_ranks(n, q))
    too_few = (n == 0) | (conformal_ranks(n, level) > n)
    return np.where(too_few, np.inf if q >= 0.5 else -np.inf, value)


def signed_quantiles(
    qs: list[float], *, median: bool = False, fix: str | Advice = MORE_ORIGINS
) -> Callable[[np.ndarray], np.ndarray]:
    """The reducer giving the split-conformal quantiles ``qs`` of signed scores along axis 0
    (:func:`signed_quantile`), stacked first; with ``median``, the median last (not checked:
    a quantile asked for needs more scores, and refuses fewer); ``fix``: how to get more
    scores (:func:`check_enough`)."""
    what = f"quantiles={[float(q) for q in qs]}"

    def reducer(scores: np.ndarray) -> np.ndarray:
        stacked = [signed_quantile(scores, q, what=what, fix=fix) for q in qs]
        if median:
            stacked.append(signed_quantile(scores, 0.5, what=what, strict=False))
        return np.stack(stacked)

    return reducer

"""Prediction intervals and quantile columns: the split-conformal quantiles and the columns
``predict(frame, level=..., quantiles=...)`` adds (pure NumPy, no estimator state).

Column names (long format, per target ``y``, see :mod:`forecaster.evaluation.intervals`):
``y_lo_80`` / ``y_hi_80`` for ``level=[80]``, ``y_q10`` for ``quantiles=[0.1]``. Level ``L``
means the quantiles ``(1 - L / 100) / 2`` and ``1 - (1 - L / 100) / 2``.

Split-conformal calibration keeps signed out-of-sample residuals ``r = y - forecast`` per
horizon step (and, for quantile models, per model quantile), each divided by its window's
*spread* when it is normalised (the mean absolute one-step change of the target over the
input window, floored: :func:`conformal_spread`; the normalised nonconformity
score of locally weighted conformal prediction, Lei et al. 2018, sec. 5.2, which makes
residuals of series of different scales comparable and widens the intervals of volatile
windows). A symmetric interval of level ``L`` is ``forecast +- s * spread``, ``s`` the
``ceil((n + 1) L / 100)``-th smallest ``|r|`` of the ``n`` residuals at that step (the
finite-sample correction of split conformal prediction); CQR (Romano et al. 2019) widens
the model's quantiles ``[q_lo, q_hi]`` by the same order statistic of
``max(q_lo - y, y - q_hi)``. A point model's quantile ``q`` is ``forecast + r``, ``r`` the
``ceil((n + 1) q)``-th smallest signed residual (:func:`signed_quantile`). Every conformal
quantile needs the residuals of its level (19 for 95 %; a quantile those of the central
interval it is an end of) and refuses fewer.

With a calibration ``window`` ``W``, each forecast uses only the calibration windows that end
at or before its origin (their actuals are known there), the ``W`` latest of them (per series;
``W`` times the number of series when pooled): a rolling recalibration that follows changes
in the spread of the errors (darts' ``cal_length``; exchangeability then holds only over
the recent windows).
"""

from __future__ import annotations

__all__ = [
    "HISTORY_SPREAD_FLOOR",
    "MIN_PER_SERIES",
    "MORE_ORIGINS",
    "SPREAD_FLOOR",
    "check_enough",
    "conformal_rank",
    "conformal_spread",
    "interval_columns",
    "order_statistic",
    "quantile_level",
    "residuals_needed",
    "signed_quantile",
]

import math
from collections.abc import Callable, Sequence

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.windows import window_spread
from forecaster.evaluation.intervals import level_bounds, level_name, quantile_name
from forecaster.exceptions import DataValidationError

MIN_PER_SERIES = 20
"""Residuals a series needs at a step for its own (per-series) calibration; series with fewer
use the pooled residuals."""

SPREAD_FLOOR = 1e-3
"""A window's spread is at least this fraction of its mean absolute value (so a flat window
keeps a scale of its own level; see :func:`forecaster.data.windows.window_spread`)."""

HISTORY_SPREAD_FLOOR = 0.1
"""A window's spread is at least this fraction of its series' mean absolute one-step change
up to the window's end, so that a window flatter than its history (a run of zeros, a
shutdown) does not divide its residual by almost nothing: one such calibration window made
the pooled quantile, and every interval, about 1e11 times too wide."""


def conformal_spread(panel: Panel, rows: np.ndarray, lookback: int) -> np.ndarray:
    """The spread that ``normalize="window"`` divides residuals by: each window's mean
    absolute one-step change (:func:`~forecaster.data.windows.window_spread`, ending at the
    global ``rows``), floored by :data:`SPREAD_FLOOR` of its level and
    :data:`HISTORY_SPREAD_FLOOR` of its series' history."""
    return window_spread(panel, rows, lookback, floor=SPREAD_FLOOR, history=HISTORY_SPREAD_FLOOR)


def conformal_rank(n: int, level: float) -> int:
    """The rank ``ceil((n + 1) L / 100)`` (1-based) of the conformal quantile of ``n`` scores;
    more than ``n`` means the scores are too few for the level."""
    return math.ceil((n + 1) * level / 100.0 - 1e-9)


def residuals_needed(level: float) -> int:
    """The fewest scores whose :func:`conformal_rank` at ``level`` is at most their number:
    ``ceil(L / (100 - L))`` (4 for 80 %, 19 for 95 %)."""
    return max(math.ceil(level / (100.0 - level) - 1e-9), 1)


def quantile_level(q: float) -> float:
    """The level of the central interval that the quantile ``q`` is an end of:
    ``100 |1 - 2 q|`` (95 for both 0.025 and 0.975, 0 for the median)."""
    return round(100.0 * abs(1.0 - 2.0 * q), 10)


MORE_ORIGINS = (
    "Calibrate on more origins, e.g. model.calibrate(frame, folds=20), or on more series (or "
    "a larger window)."
)
"""How a forecaster gets more calibration residuals (the advice of :func:`check_enough`)."""


def check_enough(
    n: int, level: float, *, what: str, aim: str | None = None, fix: str = MORE_ORIGINS
) -> None:
    """Refuse ``n`` scores when they are none or too few for a conformal quantile at ``level``
    (its :func:`conformal_rank` exceeds ``n``), naming ``what`` and ``aim`` (by default
    ``"a <level>% interval"``) and saying how to get more (``fix``)."""
    if n == 0 or conformal_rank(n, level) > n:
        raise DataValidationError(
            f"{what}: {n} calibration residuals per horizon step are too few for "
            f"{aim or f'a {level:g}% interval'} (it needs at least {residuals_needed(level)}). "
            f"{fix}"
        )


def order_statistic(
    scores: np.ndarray, level: float, *, what: str, fix: str = MORE_ORIGINS
) -> np.ndarray:
    """The conformal quantile along axis 0 of ``scores`` ``(n, ...)``: its
    :func:`conformal_rank`-th smallest value; too few scores are refused
    (:func:`check_enough`, naming ``what`` and the ``fix``)."""
    n = scores.shape[0]
    check_enough(n, level, what=what, fix=fix)
    rank = conformal_rank(n, level)
    return np.partition(scores, rank - 1, axis=0)[rank - 1]


def signed_quantile(scores: np.ndarray, q: float, *, what: str) -> np.ndarray:
    """The split-conformal quantile ``q`` along axis 0 of signed ``scores`` ``(n, ...)``.

    For ``q >= 0.5`` the ``ceil((n + 1) q)``-th smallest score, at most the largest; below,
    its mirror, the ``floor((n + 1) q)``-th smallest, at least the smallest. A new
    exchangeable score then falls at or below (at or above) it with probability at least
    ``q`` (``1 - q``) once ``n >= 1 / min(q, 1 - q) - 1`` (39 for 0.025 and 0.975), and
    ``n / (n + 1)`` with fewer. Too few scores are refused as for the central interval that
    ``q`` is an end of (:func:`quantile_level`, :func:`check_enough`): 19 for 0.025 and 0.975
    as for a 95 % interval, so that a band of quantiles needs the residuals of its level.
    """
    n = scores.shape[0]
    level = quantile_level(q)
    check_enough(n, level, what=what, aim=f"the quantile {q:g}, an end of the {level:g}% interval")
    rank = min(conformal_rank(n, 100.0 * max(q, 1.0 - q)), n)
    if q >= 0.5:
        return np.partition(scores, rank - 1, axis=0)[rank - 1]
    return -np.partition(-scores, rank - 1, axis=0)[rank - 1]


Reducer = Callable[[np.ndarray], np.ndarray]


class _Calibration:
    """The scores of a calibration, reduced for each forecast row (its series, origin).

    With ``normalize="series"`` the pooled scores of a set of calibration rows are divided by
    each series' scale over those rows (the mean absolute residual of its rows), and the
    conformal quantile is multiplied back by the scale of each forecast row's series.

    ``enough``: the scores the strictest level of the call needs (:func:`residuals_needed`).
    With ``per_series``, a series uses its own scores when it has at least ``enough`` (and
    :data:`MIN_PER_SERIES`) of them, else the pooled ones: one choice for every level of the
    call, so that its intervals nest (a series must not get its own residuals at 80 % and
    the pooled ones at 99 %).
    """

    def __init__(
        self, conformal: dict, rows: np.ndarray, origins: np.ndarray | None, enough: int
    ) -> None:
        self.conformal, self.rows = conformal, rows
        self.minimum = max(enough, MIN_PER_SERIES)
        self.window = conformal.get("window")
        if self.window is not None and origins is None:
            raise ValueError("a windowed calibration needs each forecast's origin")
        self.origins = origins
        self.by_series = conformal.get("normalize") == "series"
        residuals = conformal["residuals"]
        self.magnitude = np.abs(residuals).mean(axis=(1, 3)) if self.by_series else None

    def reduce(
        self, scores: np.ndarray, reducer: Reducer, stacked: int | None = None
    ) -> np.ndarray:
        """``reducer`` of ``scores`` ``(N, H, T)`` over the calibration rows each forecast row
        may use: ``(B, H, T)``, or ``(B, K, H, T)`` for a reducer giving ``stacked=K`` results.
        Per series, a series with fewer rows than the call's ``minimum`` uses the pooled
        ones."""
        b = len(self.rows)
        out = np.empty((b, *(() if stacked is None else (stacked,)), *scores.shape[1:]))
        if self.window is None:
            self._fill(out, np.arange(len(scores)), np.arange(b), scores, reducer)
        else:
            n_series = max(len(np.unique(self.conformal["series"])), 1)
            size = self.window * n_series
            self._windowed(out, np.arange(len(scores)), size, np.ones(b, bool), scores, reducer)
        if self.conformal["per_series"]:
            series, minimum = self.conformal["series"], self.minimum
            for s in np.unique(self.rows[self.rows >= 0]):
                own, mine = np.flatnonzero(series == s), self.rows == s
                if self.window is None:
                    if len(own) >= minimum:
                        out[mine] = reducer(scores[own])
                else:
                    self._windowed(out, own, self.window, mine, scores, reducer, minimum, False)
        return out

    def _windowed(
        self,
        out: np.ndarray,
        index: np.ndarray,
        size: int,
        mine: np.ndarray,
        scores: np.ndarray,
        reducer: Reducer,
        minimum: int | None = None,
        pooled: bool = True,
    ) -> None:
        """Fill ``out[mine]`` from the ``size`` latest calibration rows ``index`` (sorted by
        their ``ends``) that end at or before each row's origin (``minimum``: leave rows
        with fewer as they are; None: reduce them all, which refuses too few)."""
        assert self.origins is not None
        targets = np.flatnonzero(mine)
        ends = self.conformal["ends"][index]
        stop = np.searchsorted(ends, self.origins[targets], side="right")
        start = np.maximum(stop - size, 0)
        spans, inverse = np.unique(np.stack([start, stop], 1), axis=0, return_inverse=True)
        order = np.argsort(inverse.reshape(-1), kind="stable")  # the rows of each span together
        groups = np.split(targets[order], np.cumsum(np.bincount(inverse.reshape(-1)))[:-1])
        for (a, b), chosen in zip(spans, groups, strict=True):
            if minimum is not None and b - a < minimum:
                continue
            if pooled:
                self._fill(out, index[a:b], chosen, scores, reducer)
            else:
                out[chosen] = reducer(scores[index[a:b]])

    def _fill(
        self,
        out: np.ndarray,
        index: np.ndarray,
        chosen: np.ndarray,
        scores: np.ndarray,
        reducer: Reducer,
    ) -> None:
        """``out[chosen]`` (forecast rows): ``reducer`` of the pooled scores of the calibration
        rows ``index`` (normalised by each series' scale over them with ``normalize="series"``)."""
        if not self.by_series or len(index) == 0:  # no rows: the reducer refuses too few
            out[chosen] = reducer(scores[index])
            return
        assert self.magnitude is not None
        series, inverse = np.unique(self.conformal["series"][index], return_inverse=True)
        inverse = inverse.reshape(-1)
        total = np.zeros((len(series), self.magnitude.shape[1]))
        np.add.at(total, inverse, self.magnitude[index])
        scale = total / np.bincount(inverse, minlength=len(series))[:, None]
        scale = np.maximum(scale, max(1e-12 * float(scale.mean()), 1e-300))
        quantile = reducer(scores[index] / scale[inverse][:, None, :])
        rows = self.rows[chosen]
        where = np.searchsorted(series, rows).clip(max=len(series) - 1)
        known = (series[where] == rows) & (rows >= 0)
        if not known.all():
            unseen = int((rows[~known] < 0).sum())
            raise DataValidationError(
                f"normalize='series': {int((~known).sum())} forecast rows belong to series with "
                f"no calibration residuals ({unseen} of them to series unseen in fit, whose "
                "scale no calibration can give; the others missing from the calibration frame "
                "or with no window observed by their origin), so their intervals have no "
                "scale. Calibrate with normalize='window' (the input window's spread) or "
                "normalize=None for unseen series; calibrate on a frame that holds the others."
            )
        per_row = scale[where].reshape(len(where), *([1] * (quantile.ndim - 1)), -1)
        out[chosen] = quantile[None] * per_row


def interval_columns(
    targets: Sequence[str],
    point: np.ndarray,
    model_quantiles: np.ndarray | None,
    fitted: Sequence[float] | None,
    conformal: dict | None,
    rows: np.ndarray,
    *,
    levels: Sequence[float] | None,
    quantiles: Sequence[float] | None,
    spread: np.ndarray | None = None,
    origins: np.ndarray | None = None,
    floor: float | None = None,
) -> dict[str, np.ndarray]:
    """The interval and quantile columns, name -> float32 values ``(B * horizon,)``, target
    after target (each target's interval bounds, then its quantiles, as in a backtest's
    forecasts).

    ``point`` ``(B, horizon, T)``: the point forecasts; ``model_quantiles`` ``(B, horizon, T,
    Q)`` the model's ``fitted`` quantiles (None for a point model); ``conformal``: the
    calibration (``residuals`` ``(N, horizon, T, Q')``, ``series`` ``(N,)``, ``per_series``,
    optionally ``normalize`` and ``window`` with ``ends`` ``(N,)``), or
    None; ``rows`` ``(B,)``: each forecast's series (row of ``keys_``, -1 unseen);
    ``spread`` ``(B, T)``: each forecast window's spread (needed when normalised);
    ``origins`` ``(B,)``: each forecast's origin as the physical value of its time (needed
    with a window); ``floor``: the value the targets stay above (the target transform's
    domain, e.g. 0 for a log target), below which no bound or quantile is put: a conformal
    band computed on the targets' own scale would reach below it.
    """
    by_target: list[dict[str, np.ndarray]] = [{} for _ in targets]  # backtest's order
    fitted_list = None if fitted is None else [round(float(q), 12) for q in fitted]
    enough = _strictest(levels, quantiles, fitted_list)
    calibration = None if conformal is None else _Calibration(conformal, rows, origins, enough)
    norm = _normaliser(conformal, spread, point.shape)

    def position(q: float) -> int:
        assert fitted_list is not None
        return fitted_list.index(round(q, 12))

    def conformal_quantile(scores: np.ndarray, level: float) -> np.ndarray:
        """``(B, horizon, T)`` conformal quantiles of ``scores`` ``(N, horizon, T)``, back on
        the scale of the forecasts."""
        assert calibration is not None
        what = f"level={level:g}"
        return norm * calibration.reduce(scores, lambda s: order_statistic(s, level, what=what))

    widened: dict[tuple[float, float], np.ndarray] = {}

    def cqr_widen(q_lo: float, q_hi: float, level: float) -> np.ndarray:
        """The CQR correction of the band ``[q_lo, q_hi]`` (computed once per call: a level
        and its two quantile columns share it)."""
        assert conformal is not None
        if (q_lo, q_hi) not in widened:
            residuals = conformal["residuals"]
            scores = np.maximum(-residuals[..., position(q_lo)], residuals[..., position(q_hi)])
            widened[q_lo, q_hi] = conformal_quantile(scores, level)
        return widened[q_lo, q_hi]

    def model_quantile(q: float) -> np.ndarray:
        """The model's quantile ``q`` ``(B, horizon, T)``, widened by CQR when calibrated (a
        negative correction narrows it, never past the median, the point forecast)."""
        assert model_quantiles is not None
        value = model_quantiles[..., position(q)].astype(np.float64)
        band = _cqr_band(q, fitted_list)
        if conformal is not None and band is not None:
            widen = cqr_widen(*band, quantile_level(q))
            median = model_quantiles[..., position(0.5)].astype(np.float64)
            value = (
                np.minimum(value - widen, median) if q < 0.5 else np.maximum(value + widen, median)
            )
        return value

    asked = sorted(quantiles or ())
    ends = {level: level_bounds(level) for level in levels or ()}
    ordered: dict[float, np.ndarray] = {}  # a quantile model's quantiles, in order
    if model_quantiles is not None:
        for level, pair in ends.items():
            _need_fitted(fitted_list, pair, f"level={level:g}")
        for q in asked:
            _need_fitted(fitted_list, (q,), f"quantiles=[..., {q:g}, ...]")
        # one sort of every quantile used, so that a level's bounds are its quantile columns
        # and a wider level's interval holds a narrower one's after CQR (as the model's do)
        used = sorted(
            {round(q, 12) for q in (*(q for pair in ends.values() for q in pair), *asked)}
        )
        stacked = np.sort(np.stack([model_quantile(q) for q in used], axis=-1), axis=-1)
        ordered = {q: stacked[..., k] for k, q in enumerate(used)}
    for level, (q_lo, q_hi) in ends.items():
        if model_quantiles is not None:
            lo, hi = ordered[q_lo], ordered[q_hi]
        else:
            if conformal is None:
                raise _uncalibrated("level")
            half = conformal_quantile(np.abs(conformal["residuals"][..., 0]), level)
            lo, hi = point - half, point + half
        for j, target in enumerate(targets):
            by_target[j][level_name(target, level, "lo")] = _flat(lo[..., j])
            by_target[j][level_name(target, level, "hi")] = _flat(hi[..., j])

    if asked and model_quantiles is None:  # a point model: every quantile in one pass
        if conformal is None or calibration is None:
            raise _uncalibrated("quantiles")
        signed = conformal["residuals"][..., 0]
        shifts = calibration.reduce(signed, _quantiles_of(asked), stacked=len(asked))
        values = np.sort(point[..., None] + norm[..., None] * shifts.transpose(0, 2, 3, 1), -1)
        ordered = {round(q, 12): values[..., k] for k, q in enumerate(asked)}
    for q in asked:
        for j, target in enumerate(targets):
            by_target[j][quantile_name(target, q)] = _flat(ordered[round(q, 12)][..., j])
    columns = {name: values for target in by_target for name, values in target.items()}
    if floor is not None:
        columns = {name: np.maximum(values, np.float32(floor)) for name, values in columns.items()}
    return columns


def _quantiles_of(qs: list[float]) -> Reducer:
    """The reducer giving the split-conformal quantiles ``qs`` of signed scores along axis 0
    (:func:`signed_quantile`), stacked first."""
    what = f"quantiles={[float(q) for q in qs]}"
    return lambda scores: np.stack([signed_quantile(scores, q, what=what) for q in qs])


def _cqr_band(q: float, fitted: list[float] | None) -> tuple[float, float] | None:
    """The band of a quantile model's fitted quantiles that ``q`` is an end of (CQR widens
    ``q`` by that band's correction); None for the median or without the other end."""
    pair = round(1.0 - q, 12)
    if q == 0.5 or not fitted or pair not in fitted:
        return None
    return min(q, pair), max(q, pair)


def _strictest(
    levels: Sequence[float] | None, quantiles: Sequence[float] | None, fitted: list[float] | None
) -> int:
    """The calibration scores the strictest conformal quantile of a call needs
    (:func:`residuals_needed`): of each level, and of each quantile of a point model or of a
    CQR band (those of the central interval it is an end of, :func:`quantile_level`)."""
    used = list(levels or ())
    for q in quantiles or ():  # a point model's quantile; a CQR band's end
        if fitted is None or _cqr_band(q, fitted) is not None:
            used.append(quantile_level(q))
    return max((residuals_needed(level) for level in used), default=1)


def _normaliser(conformal: dict | None, spread: np.ndarray | None, shape: tuple) -> np.ndarray:
    """``(B, 1, T)``: each forecast window's spread (floored by :data:`SPREAD_FLOOR`) when
    the calibration is normalised by it (``normalize="window"``), else ones."""
    if conformal is None or conformal.get("normalize") != "window":
        return np.ones((shape[0], 1, shape[2]))
    if spread is None:
        raise ValueError("a normalised calibration needs each forecast window's spread")
    return spread[:, None, :]


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1).astype(np.float32)


def _need_fitted(fitted: list[float] | None, wanted: Sequence[float], what: str) -> None:
    missing = [q for q in wanted if fitted is None or round(q, 12) not in fitted]
    if missing:
        raise DataValidationError(
            f"{what} needs the quantiles {[float(q) for q in wanted]}, but the model was "
            f"fitted with quantiles={fitted} and gives only those. Ask for some of them, or "
            f"refit with quantiles that include {[float(q) for q in missing]}, e.g. "
            f"quantiles=[{', '.join(f'{q:g}' for q in sorted({*wanted, 0.5}))}]."
        )


def _uncalibrated(argument: str) -> DataValidationError:
    return DataValidationError(
        f"predict({argument}=...) on a point model needs its calibration: call "
        "model.calibrate(frame) first (split conformal on a rolling-origin backtest of data "
        "after the training data; or model.calibrate(frame, refit=True) to refit clones per "
        "fold), or fit with loss='quantile' for quantile forecasts."
    )

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
``ceil((n + 1) q)``-th smallest signed residual (:func:`signed_quantile`); so is a quantile
model's quantile whose partner ``1 - q`` it was not fitted with (one-sided CQR, on its own
residuals ``y - q``), and a quantile model's quantiles are sorted together, all of them, so
that no column depends on which others a call asks for. Every conformal quantile needs the
residuals of its level (19 for 95 %; a quantile those of the central interval it is an end
of) and refuses fewer. A NaN residual is one left out of the calibration (its actual value
was made up by the ``missing`` policy): every count and order statistic is of the others,
step by step.

The order statistics (ranks, the fewest residuals a level needs) live in
:mod:`forecaster.estimators.conformal_ranks`.

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
    "SPREAD_FLOOR",
    "conformal_rank",
    "conformal_spread",
    "interval_columns",
    "order_statistic",
    "quantile_level",
    "residuals_needed",
    "signed_quantile",
]

from collections.abc import Sequence

import numpy as np
import polars as pl

from forecaster.data.known_windows import window_spread
from forecaster.data.panel import Panel
from forecaster.data.scaling import MIN_SCALE
from forecaster.data.spans import floor_spread
from forecaster.estimators.conformal_groups import Reducer, fill_own, own_spans
from forecaster.estimators.conformal_ranks import (
    conformal_rank,
    more_residuals,
    order_statistic,
    quantile_level,
    residuals_needed,
    signed_quantile,
    signed_quantiles,
    strictest_needed,
)
from forecaster.evaluation.intervals import interval_names, level_bounds, level_name, quantile_name
from forecaster.exceptions import DataValidationError

MIN_PER_SERIES = 20
"""Residuals a series needs at every step for its own (per-series) calibration; series with
fewer use the pooled residuals."""

SPREAD_FLOOR = MIN_SCALE
"""A window's spread is at least this fraction (1e-6, the scaler's
:data:`~forecaster.data.scaling.MIN_SCALE`) of its mean absolute value, so that a window flat
at the float32 precision the network computes in (about 1e-7 of the level) keeps a scale of
its own level (see :func:`forecaster.data.known_windows.window_spread`). It floors only such
windows: 1e-3 raised the spread of a series that moves little for its level (3e5 + 100 sin +
noise: 41 to 300), and its 80 % intervals covered 100 %."""

HISTORY_SPREAD_FLOOR = 0.1
"""A window's spread is at least this fraction of its series' mean absolute one-step change
up to the window's end, so that a window flatter than its history (a run of zeros, a
shutdown) does not divide its residual by almost nothing: one such calibration window made
the pooled quantile, and every interval, about 1e11 times too wide."""


def conformal_spread(panel: Panel, rows: np.ndarray, lookback: int) -> np.ndarray:
    """The spread that ``normalize="window"`` divides residuals by: each window's mean
    absolute one-step change (:func:`~forecaster.data.known_windows.window_spread`, ending at the
    global ``rows``), floored by :data:`SPREAD_FLOOR` of its level and
    :data:`HISTORY_SPREAD_FLOOR` of its series' history: where neither the window nor its
    series' history changes (a series constant so far), :data:`SPREAD_FLOOR` of its level, as
    the scaler scales a constant series (1 for a series of zeros)."""
    return window_spread(panel, rows, lookback, floor=SPREAD_FLOOR, history=HISTORY_SPREAD_FLOOR)


class _Calibration:
    """The scores of a calibration, reduced for each forecast row (its series, origin).

    With ``normalize="series"`` the pooled scores of a set of calibration rows are divided by
    each series' scale over those rows (per target, the mean absolute residual of its rows
    over every step and, of a quantile model, every fitted quantile: ``|y - q_k|``), and the
    conformal quantile is multiplied back by the scale of each forecast row's series.

    ``enough``: the scores the strictest level of the call needs (:func:`residuals_needed`).
    With ``per_series``, a series uses its own scores when it has at least ``enough`` (and
    :data:`MIN_PER_SERIES`) of them at every step, else the pooled ones: one choice for every
    level of the call, so that its intervals nest (a series must not get its own residuals
    at 80 % and the pooled ones at 99 %). Only the scores that are not NaN count (a NaN
    residual was left out: its actual value was made up by the ``missing`` policy).
    """

    def __init__(
        self,
        conformal: dict,
        rows: np.ndarray,
        origins: np.ndarray | None,
        enough: int,
        series: np.ndarray | None = None,
        names: Sequence | None = None,
        calendar: bool = True,
        level: np.ndarray | None = None,
        point: int = 0,
    ) -> None:
        self.conformal, self.rows, self.calendar = conformal, rows, calendar
        self.time_dtype: pl.DataType | None = None  # the origins' dtype, for the advice
        self.pool = (np.arange(0), np.arange(0))  # (rows, forecasts) of the last reduction
        self.point = point  # the residuals' column of the point forecast (a model's median)
        self.level = level  # (B, T): each forecast's level, the floor of its series' scale
        self.series = rows if series is None else series  # each forecast's series, to count
        self.names = names  # the id of each ``series`` position, to name them in errors
        self.unscaled = np.zeros(len(rows), dtype=bool)  # forecasts no series scale reached
        self.minimum = max(enough, MIN_PER_SERIES)
        self.window = conformal.get("window")
        if self.window is not None and origins is None:
            raise ValueError("a windowed calibration needs each forecast's origin")
        self.origins = origins
        self.by_series = conformal.get("normalize") == "series"
        self.magnitude: tuple[np.ndarray, np.ndarray] | None = None
        self.spans: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        if self.by_series:  # per calibration row and target: sum and number of observed |r|
            absolute = np.abs(conformal["residuals"])
            observed = (~np.isnan(absolute)).sum(axis=(1, 3))
            self.magnitude = (np.nansum(absolute, axis=(1, 3)), observed)

    def reduce(
        self, scores: np.ndarray, reducer: Reducer, stacked: int | None = None
    ) -> np.ndarray:
        """``reducer`` of ``scores`` ``(N, H, T)`` over the calibration rows each forecast row
        may use: ``(B, H, T)``, or ``(B, K, H, T)`` for a reducer giving ``stacked=K`` results.
        Per series, a series with fewer scores than the call's ``minimum`` (at some step)
        uses the pooled ones."""
        b = len(self.rows)
        self.unscaled[:] = False
        out = np.empty((b, *(() if stacked is None else (stacked,)), *scores.shape[1:]))
        for index, chosen in self._pools(len(scores)):
            self._fill(out, index, chosen, scores, reducer)
        self._check_scaled(scores.shape[1])
        if self.conformal["per_series"]:
            if self.spans is None:  # one grouping by series for every reduction of the call
                ends = self.conformal.get("ends")
                self.spans = own_spans(
                    self.conformal["series"], self.rows, ends, self.origins, self.window
                )
            fill_own(out, scores, reducer, self.minimum, self.spans)
        return out

    def floor(self, half: np.ndarray) -> np.ndarray:
        """``half`` ``(B, horizon, T)`` or ``(B, K, horizon, T)``, half-widths of intervals or
        distances of quantiles from the median, floored as a series scale is
        (:func:`~forecaster.data.spans.floor_spread`, by each forecast's level): at least 1e-6
        of its level, whatever its residuals (all 0 where it was forecast exactly: not a
        zero-width interval claiming certainty), and 1 where its level is 0 (a series of
        zeros). Relative to the level, so that it does not depend on the series' units (an
        absolute 1 gave a constant 0.002 an 80 % interval of +-1)."""
        if self.level is None:
            return half
        level = self.level.reshape(-1, *([1] * (half.ndim - 2)), self.level.shape[1])
        return floor_spread(half, level, SPREAD_FLOOR)

    def _check_scaled(self, horizon: int) -> None:
        """Refuse the forecasts :meth:`_fill` found no scale for (``normalize="series"``),
        counting the forecasts, their rows and their series (and the unseen ones)."""
        missing = self.unscaled
        if not missing.any():
            return
        forecasts, unseen = int(missing.sum()), missing & (self.rows < 0)
        which = np.unique(self.series[missing])
        n_series, n_unseen = len(which), len(np.unique(self.series[unseen]))
        rows = forecasts * horizon
        counted = (
            f"{forecasts} forecasts ({rows} rows) of {n_series} series"
            if forecasts != n_series  # a list of cutoffs: several origins of a series
            else f"{n_series} series ({rows} forecast rows)"
        )
        named = ""
        if self.names is not None:
            shown = [self.names[int(i)] for i in which[:5]]
            named = f" ({', '.join(map(repr, shown))}{', ...' if n_series > 5 else ''})"
        raise DataValidationError(
            f"normalize='series': {counted}{named} {'has' if forecasts == 1 else 'have'} no "
            f"calibration residuals: {n_unseen} of those series unseen in fit, whose scale no "
            "calibration can give; the others missing from the calibration frame, too short "
            "for the calibration's folds"
            + (" or ending at or before the calibration's calendar folds" if self.calendar else "")
            + " (calibrate left them out with a warning), with no window observed by their "
            "origin, or no observed actual value in them. Their intervals have no scale. Drop "
            "those series from the predict frame, or calibrate with normalize='window' (the "
            "input window's spread) or normalize=None (for unseen series too); calibrate on a "
            "frame that includes those it lacked, or with fewer folds (for those too short)"
            + (
                ", or with origins='series' for series that end early (their residuals then "
                "come from models that saw other series' later data: optimistic)."
                if self.calendar
                else "."
            )
        )

    def central(self, level: float, what: str, strict: bool = True) -> Reducer:
        """The reducer of the conformal quantile of a central interval at ``level``
        (:func:`order_statistic`), whose refusal of too few scores gives :meth:`advice`."""
        return lambda s: order_statistic(s, level, what=what, strict=strict, fix=self.advice)

    def advice(self, found: int, needed: int) -> str:
        """How to get the ``needed`` residuals that the calibration rows of the reduction in
        progress (``pool``: rows, forecasts; set by :meth:`_fill`) lack, its origins of the
        forecasts' ``time_dtype`` (:func:`more_residuals`)."""
        index, chosen = self.pool
        origin = int(self.origins[chosen].min()) if self.origins is not None else None
        return more_residuals(self.conformal, index, origin, self.time_dtype)(found, needed)

    def _pools(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(calibration rows of ``n``, forecast rows) pairs: the pooled rows each forecast row
        uses, all of them, or with a ``window`` the window times the number of series latest
        rows (by their ``ends``) that end by its origin (too few: refused by the reducers)."""
        targets, index = np.arange(len(self.rows)), np.arange(n)
        if self.window is None:
            return [(index, targets)]
        assert self.origins is not None
        size = self.window * max(len(np.unique(self.conformal["series"])), 1)
        stop = np.searchsorted(self.conformal["ends"], self.origins, side="right")
        start = np.maximum(stop - size, 0)
        spans, inverse = np.unique(np.stack([start, stop], 1), axis=0, return_inverse=True)
        order = np.argsort(inverse.reshape(-1), kind="stable")  # the rows of each span together
        groups = np.split(targets[order], np.cumsum(np.bincount(inverse.reshape(-1)))[:-1])
        return [(index[a:b], chosen) for (a, b), chosen in zip(spans, groups, strict=True)]

    def _fill(
        self,
        out: np.ndarray,
        index: np.ndarray,
        chosen: np.ndarray,
        scores: np.ndarray,
        reducer: Reducer,
    ) -> None:
        """``out[chosen]`` (forecast rows): ``reducer`` of the pooled scores of the calibration
        rows ``index`` (normalised by each series' scale over them with ``normalize="series"``:
        the mean of its observed absolute residuals, over steps and fitted quantiles; multiplied
        back by it floored as a window's spread, :func:`~forecaster.data.spans.floor_spread`,
        by each forecast's ``level``)."""
        self.pool = (index, chosen)  # named by the reducer's advice if they are too few
        if not self.by_series or len(index) == 0:  # no rows: the reducer refuses too few
            out[chosen] = reducer(scores[index])
            return
        assert self.magnitude is not None
        sums, counts = self.magnitude
        series, inverse = np.unique(self.conformal["series"][index], return_inverse=True)
        inverse = inverse.reshape(-1)
        total, number = (_sum_by(inverse, v[index], len(series)) for v in (sums, counts))
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = total / number  # NaN: a series without observed residuals
        # Each series' scores are its residuals over its own mean: no floor from the other
        # series (1e-12 of the panel's mean scale widened a 1e-6 sensor's intervals 35 times
        # beside a 1e10 revenue), only one against 0 / 0 for a series forecast exactly.
        scale = np.where(np.isnan(scale), np.nan, np.maximum(scale, np.finfo(np.float64).tiny))
        quantile = reducer(scores[index] / scale[inverse][:, None, :])
        rows = self.rows[chosen]
        where = np.searchsorted(series, rows).clip(max=len(series) - 1)
        known = (series[where] == rows) & (rows >= 0) & np.isfinite(scale[where]).all(axis=1)
        self.unscaled[chosen[~known]] = True  # refused once all are known (_check_scaled)
        per_row = scale[where]
        if self.level is not None:  # as a window's spread: a series forecast exactly keeps
            level = self.level[chosen]  # 1e-6 of its level (1 at level 0), not 1e-308
            per_row = floor_spread(per_row, level, SPREAD_FLOOR)
        per_row = per_row.reshape(len(where), *([1] * (quantile.ndim - 1)), -1)
        out[chosen] = quantile[None] * per_row


def _sum_by(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The sums ``(n, T)`` of the rows of ``values`` ``(N, T)`` in each of the ``n`` groups
    (``groups``: each row's)."""
    columns = [
        np.bincount(groups, weights=values[:, j], minlength=n) for j in range(values.shape[1])
    ]
    return np.stack(columns, axis=1).reshape(n, values.shape[1])


class _ModelQuantiles:
    """A quantile model's quantiles ``(B, horizon, T)`` as ``predict`` gives them: every fitted
    quantile calibrated (when the model is), then all of them sorted together, so that a
    level's bounds are its quantile columns, a wider level's interval holds a narrower one's
    and no column's value depends on the other columns asked for (but with ``per_series``: a
    series uses the pooled residuals when it has too few for the strictest level asked).

    Calibrated, a quantile ``q`` of a band of fitted quantiles ``[q, 1 - q]`` is widened (or
    narrowed) by the CQR correction of the band; a quantile without its partner ``1 - q`` by
    the split-conformal quantile ``q`` of its own signed residuals ``y - q`` (one-sided
    CQR, as a point model's quantile is its forecast plus that of the point residuals); the
    median stays, and no correction takes a quantile past it. A quantile not asked for that
    has too few residuals for its level is unbounded (``-inf`` below the median, ``inf``
    above): those are the outermost ones, which the sort leaves where they are.
    """

    def __init__(
        self,
        values: np.ndarray,
        fitted: list[float],
        conformal: dict | None,
        calibration: _Calibration | None,
        norm: np.ndarray,
    ) -> None:
        self.values, self.fitted, self.conformal = values, fitted, conformal
        self.calibration, self.norm = calibration, norm
        self.widened: dict[tuple[float, float], np.ndarray] = {}

    def sorted(self, wanted: set[float]) -> dict[float, np.ndarray]:
        """Every fitted quantile, calibrated and sorted; those ``wanted`` (rounded to 12
        digits) refuse too few residuals."""
        qs = sorted(self.fitted)
        columns = []
        for q in qs:
            band = _cqr_band(q, self.fitted)
            strict = q in wanted or (band is not None and not wanted.isdisjoint(band))
            columns.append(self._calibrated(q, band, strict))
        stacked = np.sort(np.stack(columns, axis=-1), axis=-1)
        return {q: stacked[..., k] for k, q in enumerate(qs)}

    def _raw(self, q: float) -> np.ndarray:
        return self.values[..., self.fitted.index(q)].astype(np.float64)

    def _calibrated(self, q: float, band: tuple[float, float] | None, strict: bool) -> np.ndarray:
        value = self._raw(q)
        if self.conformal is None or self.calibration is None or q == 0.5:
            return value
        residuals = self.conformal["residuals"]
        level = quantile_level(q)
        if band is not None:
            shift = self._widen(band, level, strict) * (-1.0 if q < 0.5 else 1.0)
        else:  # one-sided: the conformal quantile q of its own residuals y - q
            what, fix = f"quantiles=[..., {q:g}, ...]", self.calibration.advice
            shift = self.norm * self.calibration.reduce(
                residuals[..., self.fitted.index(q)],
                lambda s: signed_quantile(s, q, what=what, strict=strict, fix=fix),
            )
        median = self._raw(0.5)
        return np.minimum(value + shift, median) if q < 0.5 else np.maximum(value + shift, median)

    def _widen(self, band: tuple[float, float], level: float, strict: bool) -> np.ndarray:
        """The CQR correction of the band (computed once per call: a level and its two
        quantile columns share it)."""
        assert self.conformal is not None and self.calibration is not None
        if band not in self.widened:
            residuals = self.conformal["residuals"]
            lo, hi = (residuals[..., self.fitted.index(q)] for q in band)
            scores = np.maximum(-lo, hi)
            central = self.calibration.central(level, f"level={level:g}", strict)
            self.widened[band] = self.norm * self.calibration.reduce(scores, central)
        return self.widened[band]


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
    series: np.ndarray | None = None,
    names: Sequence | None = None,
    calendar: bool = True,
    time_dtype: pl.DataType | None = None,
) -> dict[str, np.ndarray]:
    """The interval and quantile columns, name -> float64 values ``(B * horizon,)``, target
    after target (each target's interval bounds, then its quantiles, as in a backtest's
    forecasts).

    ``point`` ``(B, horizon, T)``: the point forecasts; ``model_quantiles`` ``(B, horizon, T,
    Q)`` the model's ``fitted`` quantiles (None for a point model; see
    :class:`_ModelQuantiles`); ``conformal``: the calibration (``residuals`` ``(N, horizon,
    T, Q')``, NaN where left out, ``series`` ``(N,)``, ``per_series``, optionally
    ``normalize`` and ``window`` with ``ends`` ``(N,)``), or None; ``rows`` ``(B,)``: each
    forecast's series (row of ``keys_``, -1 unseen); ``spread`` ``(B, T)``: each forecast
    window's spread (needed when normalised); ``origins`` ``(B,)``: each forecast's origin
    as the physical value of its time (needed with a window); ``floor``: the value the
    targets stay above (the target transform's domain, e.g. 0 for a log target), below which
    no bound or quantile is put: a conformal band computed on the targets' own scale would
    reach below it; ``series`` ``(B,)``: each forecast's series in the forecasts' own panel
    (unseen ones too), for counting them in errors (``rows`` when None), and ``names`` the id
    of each of those series, to name them there; ``calendar``: whether the series share
    calendar folds (dates; not independent integer-step sequences), for those errors, and
    ``time_dtype`` the dtype of the origins, to name them in the errors of too few residuals.
    """
    made: dict[str, np.ndarray] = {}  # put in predict's order at the end (interval_names)
    enough = strictest_needed(levels, quantiles)
    fitted_list = [round(float(q), 12) for q in fitted or ()]
    median = fitted_list.index(0.5) if model_quantiles is not None else 0  # residuals' column
    calibration = (
        None
        if conformal is None
        else _Calibration(
            conformal, rows, origins, enough, series, names, calendar, _levels(point), median
        )
    )
    if calibration is not None:
        calibration.time_dtype = time_dtype
    norm = _normaliser(conformal, spread, point.shape)

    def conformal_quantile(scores: np.ndarray, level: float) -> np.ndarray:
        """``(B, horizon, T)`` conformal quantiles of ``scores`` ``(N, horizon, T)``, back on
        the scale of the forecasts."""
        assert calibration is not None
        what = f"level={level:g}"
        half = norm * calibration.reduce(scores, calibration.central(level, what))
        return calibration.floor(half)

    asked = sorted(quantiles or ())
    ends = {level: level_bounds(level) for level in levels or ()}
    ordered: dict[float, np.ndarray] = {}  # a quantile model's quantiles, in order
    if model_quantiles is not None:
        for level, pair in ends.items():
            _need_fitted(fitted_list, pair, f"level={level:g}")
        for q in asked:
            _need_fitted(fitted_list, (q,), f"quantiles=[..., {q:g}, ...]")
        wanted = {round(q, 12) for q in (*(q for pair in ends.values() for q in pair), *asked)}
        quantile_model = _ModelQuantiles(model_quantiles, fitted_list, conformal, calibration, norm)
        ordered = quantile_model.sorted(wanted)
        if calibration is not None and len(fitted_list) > 1:  # floored as a point model's
            stacked = np.stack([ordered[q] for q in fitted_list], axis=1)
            floored = _floored_around(ordered[0.5][:, None], stacked, fitted_list, calibration)
            ordered = {q: floored[:, k] for k, q in enumerate(fitted_list)}
    narrower = np.zeros_like(point)  # the half-width of the level below: nested when floored
    for level, (q_lo, q_hi) in sorted(ends.items()):
        if model_quantiles is not None:
            lo, hi = ordered[round(q_lo, 12)], ordered[round(q_hi, 12)]
        else:
            if conformal is None:
                raise _uncalibrated("level")
            half = conformal_quantile(np.abs(conformal["residuals"][..., 0]), level)
            narrower = half = np.maximum(half, narrower)
            lo, hi = point - half, point + half
        for j, target in enumerate(targets):
            made[level_name(target, level, "lo")] = _flat(lo[..., j])
            made[level_name(target, level, "hi")] = _flat(hi[..., j])

    if asked and model_quantiles is None:  # a point model: every quantile in one pass
        if conformal is None or calibration is None:
            raise _uncalibrated("quantiles")
        shifts = _point_shifts(conformal["residuals"][..., 0], asked, calibration, norm)
        values = np.sort(point[..., None] + shifts.transpose(0, 2, 3, 1), -1)
        ordered = {round(q, 12): values[..., k] for k, q in enumerate(asked)}
    for q in asked:
        for j, target in enumerate(targets):
            made[quantile_name(target, q)] = _flat(ordered[round(q, 12)][..., j])
    columns = {name: made[name] for t in targets for name in interval_names(t, ends, asked)}
    if floor is not None:
        columns = {name: np.maximum(values, float(floor)) for name, values in columns.items()}
    return columns


def _point_shifts(
    signed: np.ndarray, asked: list[float], calibration: _Calibration, norm: np.ndarray
) -> np.ndarray:
    """``(B, K, horizon, T)``: what a point model's forecasts move by for the quantiles
    ``asked`` (``K``), the split-conformal quantiles of the ``signed`` residuals ``(N,
    horizon, T)`` back on the forecasts' scale (``norm`` ``(B, 1, T)``), floored around the
    median's shift (:func:`_floored_around`)."""
    reducer = signed_quantiles(asked, median=True, fix=calibration.advice)
    shifts = norm[:, None] * calibration.reduce(signed, reducer, stacked=len(asked) + 1)
    return _floored_around(shifts[:, -1:], shifts[:, :-1], asked, calibration)


def _floored_around(
    median: np.ndarray, values: np.ndarray, qs: Sequence[float], calibration: _Calibration
) -> np.ndarray:
    """``values`` ``(B, K, horizon, T)`` of the quantiles ``qs`` (ascending; a median among
    them stays), each one's distance from ``median`` ``(B, 1, horizon, T)`` floored as an
    interval's half-width is (:meth:`_Calibration.floor`) and at least that of every quantile
    nearer the median (:func:`_outward_max`, so levels nest): the one floor of a point
    model's conformal quantiles and of a quantile model's CQR ones (exact residuals: 1 either
    side of the median, whichever model). Values it does not move keep their bits."""
    side = np.sign(np.array(qs) - 0.5).reshape(1, -1, 1, 1)  # the median: 0, never moved
    distance = np.abs(values - median)
    floored = _outward_max(calibration.floor(distance), np.array(qs))
    return np.where(floored > distance, median + side * floored, values)


def _outward_max(distance: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """``distance`` ``(B, K, horizon, T)`` from the median of the quantiles ``asked``
    (ascending), each at least that of every quantile between it and the median: a floored
    quantile near the median is never farther from it than one beyond."""
    out = distance.copy()
    below, above = np.flatnonzero(asked < 0.5)[::-1], np.flatnonzero(asked > 0.5)
    for side in (below, above):  # from the median outward
        if len(side):
            out[:, side] = np.maximum.accumulate(distance[:, side], axis=1)
    return out


def _cqr_band(q: float, fitted: list[float] | None) -> tuple[float, float] | None:
    """The band of a quantile model's fitted quantiles that ``q`` is an end of (CQR widens
    ``q`` by that band's correction); None for the median or without the other end."""
    pair = round(1.0 - q, 12)
    if q == 0.5 or not fitted or pair not in fitted:
        return None
    return min(q, pair), max(q, pair)


def _levels(point: np.ndarray) -> np.ndarray:
    """``(B, T)``: each forecast's level, the mean absolute value of its point forecasts
    ``(B, horizon, T)`` over the steps it has (0 without any): the floor of its series'
    scale under ``normalize="series"``, as a window's level floors its spread."""
    absolute = np.abs(point)
    finite = np.isfinite(absolute)
    total = np.where(finite, absolute, 0.0).sum(axis=1)
    return total / np.maximum(finite.sum(axis=1), 1)


def _normaliser(conformal: dict | None, spread: np.ndarray | None, shape: tuple) -> np.ndarray:
    """``(B, 1, T)``: each forecast window's spread (floored by :data:`SPREAD_FLOOR`) when
    the calibration is normalised by it (``normalize="window"``), else ones."""
    if conformal is None or conformal.get("normalize") != "window":
        return np.ones((shape[0], 1, shape[2]))
    if spread is None:
        raise ValueError("a normalised calibration needs each forecast window's spread")
    return spread[:, None, :]


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1).astype(np.float64)


def _need_fitted(fitted: list[float] | None, wanted: Sequence[float], what: str) -> None:
    missing = [q for q in wanted if fitted is None or round(q, 12) not in fitted]
    if missing:
        raise DataValidationError(
            f"{what} needs the quantiles {[float(q) for q in wanted]}, but the model was "
            f"fitted with quantiles={fitted} and gives only those. Ask for some of them, or "
            f"refit with quantiles that include {[float(q) for q in missing]}, e.g. "
            f"quantiles=[{', '.join(f'{q:g}' for q in sorted({*(fitted or ()), *wanted, 0.5}))}]."
        )


def _uncalibrated(argument: str) -> DataValidationError:
    return DataValidationError(
        f"predict({argument}=...) on a point model needs its calibration: call "
        "model.calibrate(frame) first (split conformal on a rolling-origin backtest of data "
        "after the training data; or model.calibrate(frame, refit=True) to refit clones per "
        "fold), or fit with loss='quantile' for quantile forecasts."
    )

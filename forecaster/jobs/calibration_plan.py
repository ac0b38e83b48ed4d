"""How a run calibrates the intervals of a point model (see :mod:`forecaster.jobs.intervals`):
the folds, refits, per-series or pooled residuals and their normalisation of a
:class:`Plan`, from the series' number and lengths (:func:`calibration_plan`) and the series
the run forecasts (:func:`scaled_plan`), the folds that the steps the ``missing=`` policy
filled call for (:func:`counted_plan`), and what a calibration's residuals are made of
(:func:`describe_windows`, :func:`fewest_kept`)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from forecaster.estimators.intervals import MIN_PER_SERIES, residuals_needed
from forecaster.estimators.own_residuals import own_residuals
from forecaster.evaluation.folds import fold_rows, unscored_cells
from forecaster.evaluation.origins import calendar_cuts, series_cuts, uses_calendar
from forecaster.jobs.schedule import id_text
from forecaster.jobs.spec import Spec

__all__ = [
    "FOLDS_FACTOR",
    "Plan",
    "calibration_plan",
    "counted_plan",
    "describe_windows",
    "fewest_kept",
    "folds_plan",
    "scaled_plan",
    "unscaled_series",
    "with_own_counts",
]


@dataclass(frozen=True)
class Plan:
    """How a point model is calibrated: ``folds`` origins, a refit every ``refit`` folds
    (True: every fold), conformal quantiles per series or pooled across series, residuals
    normalised by each series' scale (``normalize="series"``) or, when ``short`` (why, for
    the log line) says that some series the run forecasts get none, by each input window's
    spread (``"window"``). Once calibrated: ``own_series`` and ``pooled_series``, how many
    fitted series use their own residuals and the pooled ones, and ``pooled_reason``, why no
    more folds were asked for where per-series intervals fell short (for the log line).
    ``calibrations``: how many calibrations ran (each refits its clones: a second one, of
    more folds or by the window's spread, costs about as much as the first),
    ``first_folds`` the folds of the first (None: ``folds``) and ``recalibration_reason``
    why each later one ran (empty when one did). ``folds_reason``: why the first calibration
    has more folds than :func:`calibration_plan` gives (the steps ``missing=`` filled,
    counted before the calibration by :func:`counted_plan`; empty when it has not)."""

    folds: int
    refit: bool | int
    per_series: bool
    normalize: str = "series"
    short: str = ""
    origins: str = "auto"
    own_series: int | None = None
    pooled_series: int | None = None
    pooled_reason: str = ""
    calibrations: int = 1
    first_folds: int | None = None
    recalibration_reason: str = ""
    folds_reason: str = ""

    def record(self) -> dict[str, Any]:
        """The plan as a run records it (``summary.json``'s ``calibration``, and the MLflow
        params ``calibration.<key>``): ``normalize``, ``folds``, ``refit``, ``origins``, why
        the residuals are scaled by the window (``window_reason``, empty under
        ``normalize="series"``) and what the intervals use, read from the calibrated model
        (``own_series``, ``pooled_series``: how many fitted series have enough residuals of
        their own, and how many use the pooled ones; ``per_series``: whether any series uses
        its own, False when per-series intervals were asked for but no series got enough),
        and how many calibrations ran (``calibrations``: 2 or more when the first was run
        again, with ``first_folds``, the folds of the first, and ``recalibration_reason``, why
        each later one ran and why ``normalize`` changed where it did; empty when once), and
        why there are more folds than the plan of the series' number and lengths gives
        (``folds_reason``: the steps ``missing=`` filled; empty when there are not)."""
        per_series = self.per_series if self.own_series is None else self.own_series > 0
        return {
            "normalize": self.normalize,
            "folds": self.folds,
            "refit": self.refit,
            "per_series": per_series,
            "own_series": self.own_series,
            "pooled_series": self.pooled_series,
            "origins": self.origins,
            "window_reason": self.short,
            "calibrations": self.calibrations,
            "first_folds": self.folds if self.first_folds is None else self.first_folds,
            "recalibration_reason": self.recalibration_reason,
            "folds_reason": self.folds_reason,
        }

    def again(self, plan: Plan, reason: str) -> Plan:
        """``plan``, that of a calibration run after this one's (it replaced it) for
        ``reason``, with this one's count of calibrations, first folds and reasons (and why the
        first's folds were more than the plan's, ``folds_reason``)."""
        told = f"{self.recalibration_reason}; then " if self.recalibration_reason else ""
        return replace(
            plan,
            calibrations=self.calibrations + 1,
            first_folds=self.folds if self.first_folds is None else self.first_folds,
            recalibration_reason=told + reason,
            folds_reason=self.folds_reason,  # of the first's folds
        )

    def recalibrated(self) -> str:
        """What the calibration's log line says of the calibrations run after the first
        (empty when none ran)."""
        if self.calibrations == 1:
            return ""
        first = self.folds if self.first_folds is None else self.first_folds
        return (
            f"; {self.calibrations} calibrations ran, each refitting its clones (the first "
            f"of {first} folds): {self.recalibration_reason}"
        )

    def where(self) -> str:
        """Where the intervals' residuals come from, as the calibration's log line says."""
        if not self.per_series:
            return "pooled across series"
        if self.own_series is None or self.pooled_series == 0:
            return "per series"
        why = f": {self.pooled_reason}" if self.pooled_reason else ""
        if self.own_series == 0:
            return (
                f"pooled across series (per series asked for, but no series has the "
                f"{MIN_PER_SERIES} residuals per step of its own it needs{why})"
            )
        return (
            f"per series for {self.own_series} series, pooled for the {self.pooled_series} "
            f"with too few residuals of their own{why}"
        )


def calibration_plan(
    spec: Spec, n_series: int, shortest: int = 0, window: int = 0, horizon: int = 1
) -> Plan:
    """The calibration of a point model of ``spec`` on ``n_series`` series, the shortest with
    ``shortest`` rows, for a model of ``window = lookback + horizon`` (see the module
    docstring): per series when there are several and each has room for
    ``max(MIN_PER_SERIES, needed)`` folds after ``2 * window`` rows of training data; else
    pooled, with at least ``max(backtest_folds, 3)`` folds, more when the highest level needs
    more errors per step. At most ``max(backtest_folds, 3)`` models are fitted (``refit=k``:
    a model every ``k`` folds, each forecasting from its own later origins)."""
    top = max(spec.output.levels or [80.0])
    needed = residuals_needed(top)  # errors per step for a finite bound
    base = max(spec.evaluation.backtest_folds, 3)
    own = max(base, needed, MIN_PER_SERIES)
    per_series = n_series > 1 and shortest - own * horizon >= 2 * window
    folds = own if per_series else max(base, math.ceil(needed / max(int(n_series), 1)))
    return folds_plan(spec, folds, per_series)


def folds_plan(spec: Spec, folds: int, per_series: bool) -> Plan:
    """The plan of ``folds`` origins that fits at most ``max(backtest_folds, 3)`` models."""
    every = math.ceil(folds / max(spec.evaluation.backtest_folds, 3))
    return Plan(folds, True if every == 1 else every, per_series)


def scaled_plan(
    plan: Plan, spec: Spec, model: Any, frame: pl.DataFrame, excluded: Collection[str] = ()
) -> Plan:
    """``plan``, normalised by each input window's spread (``normalize="window"``) when some
    series that the fitted ``model`` forecasts from ``frame`` (at least ``lookback_`` rows,
    not ``excluded``: ids as text) gets no residual under its folds: shorter than the rows
    the backtest's folds need (:func:`~forecaster.evaluation.folds.fold_rows`, the rule by
    which it leaves a series out), or unseen in fit. ``predict`` refuses the intervals of
    such a series under ``normalize="series"`` (it has no scale of its own), so the run would
    fail; the window's spread scales any series."""
    id_col = spec.series.id
    lookback, horizon = int(model.lookback_), int(model.horizon)
    needed = fold_rows(lookback, horizon, plan.folds, horizon)
    if id_col is None:
        short = int(lookback <= frame.height < needed)
        of = 1
    else:
        table = frame.group_by(id_col).len().filter(pl.col("len") >= lookback)
        table = table.filter(~id_text(id_col).is_in(list(excluded)))
        short_rows = table["len"] < needed
        if model.__dict__.get("train_end_") is not None:  # (an old saved model: not known)
            short_rows = short_rows | model.train_end_of(table[id_col]).is_null()
        short = int(short_rows.sum())
        of = table.height
    if not short:
        return plan
    return replace(
        plan,
        normalize="window",
        short=f"{short} of the {of} series the run forecasts "
        f"{'is' if short == 1 else 'are'} shorter than the {needed} rows that "
        f"{plan.folds} folds need (or unseen in fit), so {'it gets' if short == 1 else 'they get'} "
        "no residual and no series scale",
    )


def with_own_counts(plan: Plan, spec: Spec, model: Any) -> Plan:
    """``plan`` with what the calibrated ``model``'s intervals use: how many fitted series
    have the residuals of their own that the spec's highest level needs at every step
    (``own_series``, 0 when pooled), and how many use the pooled ones (``pooled_series``)."""
    n_keys = len(model.keys_)
    if not plan.per_series:
        return replace(plan, own_series=0, pooled_series=n_keys)
    minimum = max(residuals_needed(max(spec.output.levels or [80.0])), MIN_PER_SERIES)
    own = int((own_residuals(model.conformal_, n_keys) >= minimum).sum())
    return replace(plan, own_series=own, pooled_series=n_keys - own)


def describe_windows(conformal: Mapping[str, Any]) -> str:
    """What a calibration's residuals came from, as its log line says: the forecast windows
    of the folds and their series, with the fewest and most of a series where they differ
    (calendar folds forecast a series that ends early at fewer of them)."""
    series = conformal["series"]
    counts = np.unique(series, return_counts=True)[1]
    text = f"{len(series)} forecast windows of {len(counts)} series"
    if len(counts) and counts.min() != counts.max():
        text += f", {counts.min()} to {counts.max()} per series"
    return text


def fewest_kept(conformal: Mapping[str, Any]) -> int:
    """The fewest residuals a calibration kept at a horizon step (of a target and a model
    quantile), pooled across series: those at steps the ``missing=`` policy filled are NaN
    and left out."""
    kept = np.isfinite(conformal["residuals"])
    return int(kept.sum(axis=0).min()) if len(kept) else 0


FOLDS_FACTOR = 3
"""The most folds :func:`counted_plan` asks for, as a multiple of the plan's: residuals from
further back are of another time, and a series that needs more is mostly made up."""


def counted_plan(
    spec: Spec, model: Any, frame: pl.DataFrame, plan: Plan, excluded: Collection[str] = ()
) -> Plan:
    """``plan``, or one of more folds where the steps the ``missing=`` policy filled (whose
    residuals a calibration leaves out) would leave the residuals short, counted from the data
    before any fit: the fewest folds that give every series the run forecasts (``frame``'s
    series read by the fitted ``model``, not ``excluded``: ids as text) the residuals of its
    own that per-series intervals need at every horizon step, or as many of them as any
    number of folds within the room does, and the pooled residuals the highest level needs.
    The folds are those the calibration places (by ``plan.origins``: common calendar cutoffs,
    or counted from each series' own end), counted back from the last, ``horizon`` rows
    apart; at most :data:`FOLDS_FACTOR` times the plan's, and only as many as leave every
    series the run forecasts in (per series: ``2 * (lookback + horizon)`` rows before the
    first origin, as :func:`calibration_plan` asks). The plan records why it has more folds
    (``folds_reason``). The count can miss where the calibration's clones read the data
    otherwise (``lookback="auto"`` choosing another window, a fit that leaves a series out):
    the calibration then runs again (see :mod:`forecaster.jobs.intervals`). Nor does it know
    the rows a fold's fit needs (its ``validation_size`` hold-out): where the counted folds
    leave the first fold's model too few, the run calibrates with ``plan``'s."""
    if model.missing in ("error", "zero"):  # nothing filled, or zeros that are data
        return plan
    _, panel = model.read_frame(frame, as_fitted=True)  # as the calibration's backtest
    cells = unscored_cells(panel.exact_targets(frame), model.missing)
    lookback, horizon = int(model.lookback_), int(model.horizon)
    lengths = panel.lengths.astype(np.int64)
    forecast = lengths >= lookback
    if spec.series.id is not None:
        ids = panel.keys.select(id_text(panel.id_name)).to_series()
        forecast &= ~ids.is_in(list(excluded)).to_numpy()
    if cells is None or not forecast.any():  # no filled step: the plan's counts hold
        return plan
    room = (lengths - lookback) // horizon  # the folds a series is kept for (fold_rows)
    if plan.per_series:
        room = np.minimum(room, (lengths - 2 * (lookback + horizon)) // horizon)
    most = max(min(int(room[forecast].min()), FOLDS_FACTOR * plan.folds), plan.folds)
    sizes = np.arange(1, most + 1)  # folds: the latest 1, 2, ... of the cuts below
    kept = lengths[None, :] >= lookback + horizon * sizes[:, None]  # (folds, series)
    if not kept[plan.folds - 1].any():  # too short for the plan: its calibration says so
        return plan
    counts = _kept_residuals(model, panel, cells, plan, most, kept[plan.folds - 1])
    pooled = (counts * kept[..., None, None]).sum(axis=1).min(axis=(1, 2))  # (folds,)
    needed = residuals_needed(max(spec.output.levels or [80.0]))
    usable = sizes >= plan.folds
    enough = usable & (pooled >= needed)
    folds = int(sizes[enough][0]) if enough.any() else plan.folds
    own = ((counts.min(axis=(2, 3)) >= max(needed, MIN_PER_SERIES)) & kept)[:, forecast]
    owned = own.sum(axis=1)  # (folds,): the series the run forecasts that get their own
    if plan.per_series:  # the fewest folds that give the most series their own
        folds = max(folds, int(sizes[usable & (owned == owned[usable].max())][0]))
    if folds == plan.folds:
        return plan
    why = []
    if pooled[plan.folds - 1] < needed:
        why.append(
            f"{plan.folds} folds would keep {pooled[plan.folds - 1]} pooled residuals at a "
            f"step, fewer than the {needed} the {max(spec.output.levels or [80.0]):g} % "
            f"level needs, {folds} keep {pooled[folds - 1]}"
        )
    if plan.per_series and owned[folds - 1] > owned[plan.folds - 1]:
        why.append(
            f"{plan.folds} folds would give {owned[plan.folds - 1]} of the "
            f"{int(forecast.sum())} series it forecasts the {max(needed, MIN_PER_SERIES)} "
            f"residuals per step of their own that per-series intervals need, {folds} give "
            f"{owned[folds - 1]}"
        )
    more = folds_plan(spec, folds, plan.per_series)
    more = replace(
        plan,
        folds=more.folds,
        refit=more.refit,
        folds_reason=(
            f"missing={spec.series.missing!r} filled steps whose residuals are left out, so "
            f"{' and '.join(why)} (counted from the filled steps before calibrating)"
        ),
    )
    return scaled_plan(more, spec, model, frame, excluded)


def _kept_residuals(
    model: Any, panel: Any, cells: np.ndarray, plan: Plan, folds: int, kept: np.ndarray
) -> np.ndarray:
    """``(folds, series, horizon, targets)``: the residuals a calibration of the latest
    ``j + 1`` of ``folds`` folds (``horizon`` rows apart, placed by ``plan.origins`` on the
    ``panel`` the fitted ``model`` reads, calendar cutoffs anchored on the series ``kept``)
    keeps of each series at each step of each target: the forecast (fold, series) pairs'
    targets that are in the series and not ``cells`` the ``missing=`` policy filled."""
    lookback, horizon = int(model.lookback_), int(model.horizon)
    lengths = panel.lengths.astype(np.int64)
    if uses_calendar(plan.origins, panel.time):
        chosen = np.flatnonzero(kept)
        future = model.get_params(deep=False).get("future_covariates")
        after = horizon if future else 1  # a forecast reads its future covariates' rows
        cut = np.zeros((folds, panel.n_series), np.int64)
        present = np.zeros((folds, panel.n_series), bool)
        cut[:, chosen], present[:, chosen] = calendar_cuts(
            panel, chosen, lookback=lookback, horizon=horizon, folds=folds, step=horizon,
            after=after,
        )[:2]  # fmt: skip
    else:
        cut = series_cuts(lengths, horizon=horizon, folds=folds, step=horizon)
        present = cut >= lookback - 1
    starts, last = panel.offsets[:-1].astype(np.int64), panel.offsets[1:].astype(np.int64) - 1
    rows = (starts[None, :] + cut)[..., None] + np.arange(1, horizon + 1)  # (folds, series, H)
    inside = (rows <= last[None, :, None]) & present[..., None]
    np.clip(rows, starts[None, :, None], last[None, :, None], out=rows)  # (masked: not inside)
    observed = inside[..., None] & ~cells[rows]
    return np.cumsum(observed[::-1], axis=0, dtype=np.int32)  # [j]: the latest j + 1 folds


def unscaled_series(
    model: Any, frame: pl.DataFrame, id_col: str | None, excluded: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """The series of ``frame`` that the calibrated ``model`` forecasts (at least
    ``lookback_`` rows, not ``excluded``; ids as text) whose intervals have no scale under
    ``normalize="series"`` (``predict`` refuses them): those whose calibration residuals of
    some target are all left out (their actual values were filled by the ``missing=``
    policy), and those with no residual at all (too short for the folds, left out by a
    clone, or unseen in fit)."""
    residuals, rows = model.conformal_["residuals"], model.conformal_["series"]
    observed = np.isfinite(residuals).any(axis=(1, 3))  # (calibration row, target)
    n_keys = 1 if id_col is None else model.keys_.height
    seen, scaled = np.zeros(n_keys, bool), np.ones(n_keys, bool)
    known = rows >= 0
    seen[rows[known]] = True
    for target in range(observed.shape[1]):
        some = np.zeros(n_keys, bool)
        some[rows[known][observed[known, target]]] = True
        scaled &= some
    if id_col is None:  # one series: keys_ row 0
        lacking = [] if scaled[0] else ["the series"]
        return (lacking, []) if seen[0] else ([], lacking)
    keys = model.keys_.select(pl.first().cast(pl.String)).to_series()
    table = frame.group_by(id_col).len().filter(pl.col("len") >= int(model.lookback_))
    ids = table.select(id_text(id_col)).to_series()
    ids = ids.filter(~ids.is_in(list(excluded))).sort()
    have = {k: (bool(a), bool(b)) for k, a, b in zip(keys, seen, scaled, strict=True)}
    filled = [i for i in ids if have.get(i, (False, False)) == (True, False)]
    absent = [i for i in ids if not have.get(i, (False, False))[0]]
    return filled, absent

"""How a run calibrates the intervals of a point model (see :mod:`forecaster.jobs.intervals`):
the folds, refits, per-series or pooled residuals and their normalisation of a
:class:`Plan`, from the series' number and lengths (:func:`calibration_plan`) and the series
the run forecasts (:func:`scaled_plan`), and what a calibration's residuals are made of
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
from forecaster.evaluation.folds import fold_rows
from forecaster.jobs.schedule import id_text
from forecaster.jobs.spec import Spec

__all__ = [
    "Plan",
    "calibration_plan",
    "describe_windows",
    "fewest_kept",
    "folds_plan",
    "scaled_plan",
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
    why each later one ran (empty when one did)."""

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
        each later one ran and why ``normalize`` changed where it did; empty when once)."""
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
        }

    def again(self, plan: Plan, reason: str) -> Plan:
        """``plan``, that of a calibration run after this one's (it replaced it) for
        ``reason``, with this one's count of calibrations, first folds and reasons."""
        told = f"{self.recalibration_reason}; then " if self.recalibration_reason else ""
        return replace(
            plan,
            calibrations=self.calibrations + 1,
            first_folds=self.folds if self.first_folds is None else self.first_folds,
            recalibration_reason=told + reason,
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

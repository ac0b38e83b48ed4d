"""How a run calibrates the intervals of a point model (see :mod:`forecaster.jobs.intervals`):
the folds, refits, per-series or pooled residuals and their normalisation of a
:class:`Plan`, from the series' number and lengths (:func:`calibration_plan`) and the series
the run forecasts (:func:`scaled_plan`)."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from forecaster.estimators.intervals import MIN_PER_SERIES, residuals_needed
from forecaster.evaluation.folds import fold_rows
from forecaster.jobs.schedule import id_text
from forecaster.jobs.spec import Spec

__all__ = ["Plan", "calibration_plan", "folds_plan", "scaled_plan"]


@dataclass(frozen=True)
class Plan:
    """How a point model is calibrated: ``folds`` origins, a refit every ``refit`` folds
    (True: every fold), conformal quantiles per series or pooled across series, residuals
    normalised by each series' scale (``normalize="series"``) or, when ``short`` (why, for
    the log line) says that some series the run forecasts get none, by each input window's
    spread (``"window"``)."""

    folds: int
    refit: bool | int
    per_series: bool
    normalize: str = "series"
    short: str = ""
    origins: str = "auto"

    def record(self) -> dict[str, Any]:
        """The plan as a run records it (``summary.json``'s ``calibration``, and the MLflow
        params ``calibration.<key>``): ``normalize``, ``folds``, ``refit``, ``per_series``,
        ``origins`` and why the residuals are scaled by the window (``window_reason``, empty
        under ``normalize="series"``)."""
        return {
            "normalize": self.normalize,
            "folds": self.folds,
            "refit": self.refit,
            "per_series": self.per_series,
            "origins": self.origins,
            "window_reason": self.short,
        }


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

"""What ``predict(frame, cutoff=...)`` checks of the origins its user chose: whether the model
knew the data after them. Forecasting from a past origin is how a forecast is checked by hand,
so neither case is refused, but each is warned about once per call with an
:class:`~forecaster.exceptions.InSampleWarning`, as a backtest of the fitted model
(``refit=False``) warns of its folds (:mod:`forecaster.evaluation.fitted`):

* :func:`warn_in_sample_origins`: origins before the end of the data the model was fitted on
  for their series (``train_end_of``): the network was trained on the rows after them;
* :func:`warn_calibrated_after_origins`: intervals or quantiles from a conformal calibration
  that uses every calibration window (``calibrate(rolling=None)``), some of which end after
  the earliest cutoff: those forecasts' intervals are set from errors observed after them.

The package's own callers that choose origins themselves (a backtest, through
``predict_origins``; a tuning trial's validation score) check them their own way and do not
run these checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from forecaster.data.panel import Panel
from forecaster.estimators.origins import earliest_cutoff
from forecaster.evaluation.fitted import own_last_ends, shares_calendar, static_calibration
from forecaster.exceptions import InSampleWarning, warn_at_caller

__all__ = ["warn_calibrated_after_origins", "warn_in_sample_origins", "warn_known_after"]

_SHOWN = 5
"""Series and cutoffs a warning names before it counts the rest."""


def warn_known_after(
    model: Any,
    panel: Panel,
    series: np.ndarray,
    rows: np.ndarray,
    cutoff: Any,
    intervals: bool,
) -> None:
    """``predict``'s checks of the origins of its ``cutoff`` (a time point, a list of them
    or a frame of (id, time) pairs; at the global ``rows`` of ``panel``, of the series
    ``series``): :func:`warn_in_sample_origins`, and where intervals or quantiles are asked
    (``intervals``) :func:`warn_calibrated_after_origins`, each warning at most once."""
    warn_in_sample_origins(model, panel, series, rows)
    if intervals:
        earliest = earliest_cutoff(cutoff, panel.time.dtype, model.time_col)
        warn_calibrated_after_origins(model, panel, series, rows, earliest)


def warn_in_sample_origins(model: Any, panel: Panel, series: np.ndarray, rows: np.ndarray) -> None:
    """Warn when some origins (the global ``rows`` of ``panel``, of the series ``series``) of
    ``predict(frame, cutoff=...)`` lie before the last time of the data ``model`` was fitted
    on for their series (``train_end_of``; a series not seen in fit, or a model that does
    not record it, is not compared): the model was trained on the values after them, so the
    forecasts are in-sample."""
    ends = model.train_end_of(panel.keys[panel.id_name])
    if ends.dtype == pl.Null or not len(rows):
        return
    own = ends.cast(panel.time.dtype, strict=False).gather(series)
    times = panel.time.gather(rows)
    early = (times < own).fill_null(False)
    if not early.any():
        return
    inside = np.flatnonzero(early.to_numpy())
    ids = panel.keys[panel.id_name].gather(series[inside]).unique(maintain_order=True)
    cutoffs = times.gather(inside).unique().sort()
    which = (
        f" of {ids.len()} of the {np.unique(series).size} series (e.g. "
        f"{ids.head(_SHOWN).to_list()})"
        if model.id_col is not None
        else ""
    )
    warn_at_caller(
        f"In-sample forecasts: {inside.size} of the {len(rows)} forecast origins{which}, at "
        f"{_named(cutoffs)}, {'lies' if inside.size == 1 else 'lie'} before the end of the "
        "data the model was fitted on for their series (train_end_of: up to "
        f"{own.gather(inside).max()}). "
        "The model saw the values after these origins in training, so these forecasts are "
        "in-sample: their errors overstate the accuracy of forecasts of new data. For "
        "out-of-sample forecasts from past origins use backtest(frame, refit=True) (a clone "
        "fitted on the data before each origin), or predict with a model fitted on the data "
        "up to the cutoff.",
        InSampleWarning,
    )


def warn_calibrated_after_origins(
    model: Any, panel: Panel, series: np.ndarray, rows: np.ndarray, earliest: Any
) -> None:
    """Warn when the intervals or quantiles that ``predict(frame, cutoff=..., level=...)``
    forecasts from the origins (the global ``rows`` of ``panel``, of the series ``series``;
    ``earliest``: the earliest time point asked for) come from a conformal calibration that
    uses every window (``calibrate(rolling=None)``) and some of those windows end after the
    cutoff: their width is set from errors observed after it. The series share a calendar
    for date and datetime times (a window of any series ending after the earliest cutoff
    counts); integer steps of several series are independent sequences, whose origins are
    compared with their own series' windows (as a backtest compares them). A calibration
    that does not record its windows' ends (an older version's) is not checked."""
    conformal = static_calibration(model)
    if conformal is None or not len(rows):
        return
    ends = conformal.get("ends")
    if ends is None or not len(ends):
        return
    ends = np.asarray(ends, np.int64)
    times = panel.time
    if shares_calendar(model, times):
        point = pl.Series([earliest], dtype=times.dtype).to_physical()[0]
        later = int((ends > point).sum())
        if not later:
            return
        shared = "" if model.id_col is None else " (of every series: they share one calendar)"
        verb = "ends" if later == 1 else "end"
        what = (
            f"{later} of its {ends.size} calibration windows{shared} {verb} after the earliest "
            f"cutoff, {earliest}"
        )
        advice = (
            "Calibrate with calibrate(..., rolling=W) (each forecast then uses only the "
            "calibration windows its origin has observed), or fit and calibrate the model on "
            "data up to the cutoff."
        )
    else:
        physical = times.gather(rows).to_physical().to_numpy().astype(np.int64)
        ids = panel.keys[panel.id_name].gather(series)
        early = physical < own_last_ends(model, ids, conformal)
        if not early.any():
            return
        what = (
            f"calibration windows of their own series end after {int(early.sum())} of the "
            f"{len(rows)} forecast origins (integer steps: independent sequences)"
        )
        advice = "Fit and calibrate the model on data up to the cutoff."  # no rolling here
    warn_at_caller(
        f"Intervals calibrated on later data: the model's conformal calibration uses every "
        f"calibration window for every forecast (calibrate(rolling=None)), and {what}. The "
        "intervals and quantiles of forecasts from those origins are set from errors "
        "observed after them, so they are not those a forecaster at the cutoff could have "
        "made (their coverage overstates it). " + advice,
        InSampleWarning,
    )


def _named(times: pl.Series) -> str:
    """The first distinct ``times`` (sorted), and how many there are in all."""
    shown = ", ".join(str(t) for t in times.head(_SHOWN).to_list())
    return f"{shown}, ... ({times.len()} cutoffs)" if times.len() > _SHOWN else shown

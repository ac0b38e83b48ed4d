"""What ``predict(frame, cutoff=...)`` checks of the origins its user chose: whether the model
knew the data after them. Forecasting from a past origin is how a forecast is checked by hand,
so neither case is refused, but each is warned about once per call with an
:class:`~forecaster.exceptions.InSampleWarning`, as a backtest of the fitted model
(``refit=False``) warns of its folds (:mod:`forecaster.evaluation.fitted`):

* :func:`warn_in_sample_origins`: origins inside the data the model was fitted on, by the
  backtest's rule (:func:`~forecaster.evaluation.fitted.in_sample_ends`): before their
  series' ``train_end_of``, or for date and datetime times asked for before the model's last
  training time (the series share one calendar): the network was trained on the rows after
  them, or on the other series' rows of that period;
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

from forecaster.data.frames import counted
from forecaster.data.panel import Panel
from forecaster.data.times import time_value_text, to_time_point
from forecaster.estimators.origins import cutoff_points, earliest_cutoff, is_cutoff_list
from forecaster.evaluation.fitted import (
    in_sample_ends,
    own_last_ends,
    shares_calendar,
    static_calibration,
)
from forecaster.evaluation.origins import uses_calendar
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
    warn_in_sample_origins(model, panel, series, rows, cutoff)
    if intervals:
        earliest = earliest_cutoff(cutoff, panel.time.dtype, model.time_col)
        warn_calibrated_after_origins(model, panel, series, rows, earliest)


def warn_in_sample_origins(
    model: Any, panel: Panel, series: np.ndarray, rows: np.ndarray, cutoff: Any
) -> None:
    """Warn when some origins (the global ``rows`` of ``panel``, of the series ``series``) of
    ``predict(frame, cutoff=...)`` lie inside the data the model was fitted on, as a
    backtest of the fitted model counts its folds'
    (:func:`~forecaster.evaluation.fitted.in_sample_ends`): before the last time the model
    was fitted on for their series (``train_end_of``), or, for date and datetime times (one
    shared calendar), asked for at a cutoff before the model's last training time, whose
    period a global model fitted on the other series up to then has learnt (a series that
    ended earlier, or was not seen in fit, too). A series forecast from its end before the
    cutoff asked (it ends before it) is compared by that cutoff, as ``predict(frame)`` from
    the end is not checked. The model knew the data after those origins: the forecasts are
    in-sample. A model that does not record its training ends is not checked."""
    ids = panel.keys[panel.id_name]
    own_ends = model.train_end_of(ids)
    if own_ends.dtype == pl.Null or not len(rows):
        return
    dtype = panel.time.dtype
    own = own_ends.cast(dtype, strict=False).gather(series)
    times = panel.time.gather(rows)
    early = by_own = (times < own).fill_null(False)
    last = None  # integer steps: each series' own train_end alone
    if uses_calendar("auto", own_ends):  # one calendar: the model's last training time for all
        seen = in_sample_ends(model, ids.head(1), own=own_ends.head(1))
        last = None if seen is None else seen.cast(dtype, strict=False).max()
    if last is not None:
        early = by_own | _asked_before(model, panel, series, times, cutoff, last)
    if not early.any():
        return
    inside = np.flatnonzero(early.to_numpy())
    shown = panel.keys[panel.id_name].gather(series[inside]).unique(maintain_order=True)
    cutoffs = times.gather(inside).unique().sort()
    which = (
        f" of {shown.len()} of the {np.unique(series).size} series (e.g. "
        f"{shown.head(_SHOWN).to_list()})"
        if model.id_col is not None
        else ""
    )
    cross = ""
    others = early & ~by_own
    if others.any():
        other_ids = ids.gather(series[np.flatnonzero(others.to_numpy())]).unique(
            maintain_order=True
        )
        cross = (
            f" {counted(int(others.sum()), 'of them is', 'of them are')} in sample only "
            f"through the other series (of {other_ids.len()} series, e.g. "
            f"{other_ids.head(_SHOWN).to_list()}): after their series' own train_end (or "
            "the series was not seen in fit) but asked for before "
            f"{time_value_text(last)}, the model's last training time, and a global "
            "model fitted on the other series' rows up to then has learnt that period of "
            "the shared calendar."
        )
    verb = "lies" if inside.size == 1 else "lie"
    last_own = own.gather(inside).max()  # (null where every one is in sample through others)
    up_to = "" if last_own is None else f" (train_end_of: up to {time_value_text(last_own)})"
    warn_at_caller(
        f"In-sample forecasts: {inside.size} of the {len(rows)} forecast origins{which}, at "
        f"{_named(cutoffs)}, {verb} inside the data the model was fitted on{up_to}.{cross} "
        "The model saw the values after these origins in training, so these forecasts are "
        "in-sample: their errors overstate the accuracy of forecasts of new data. For "
        "out-of-sample forecasts from past origins use model.backtest(frame, refit=True) (a "
        "clone fitted on the data before each origin), or predict with a model fitted on "
        "the data up to the cutoff.",
        InSampleWarning,
    )


def _asked_before(
    model: Any, panel: Panel, series: np.ndarray, times: pl.Series, cutoff: Any, last: Any
) -> pl.Series:
    """Whether each origin (at ``times``, of the series ``series``) was asked for at a time
    point of ``cutoff`` before ``last``. An origin is asked for at its own time, or, for a
    series that ends before the point, at the earliest point at or after its end (of its own
    pairs, for a frame of (id, time) pairs), under which ``predict`` forecasts it."""
    dtype = times.dtype
    if not (times < last).any():  # (each is asked at or after its own time)
        return pl.repeat(False, len(times), eager=True)
    if isinstance(cutoff, pl.DataFrame) and model.id_col is not None:
        points = cutoff_points(cutoff, dtype, model.time_col)
        if points is None:  # (names none: refused before the origins are checked)
            return times < last
        pairs = pl.DataFrame(
            [cutoff[model.id_col].cast(pl.String).alias("id"), points.alias("asked")]
        ).sort("asked")
        ids = panel.keys[panel.id_name].gather(series).cast(pl.String).alias("id")
        origins = pl.DataFrame(
            [ids, times.alias("time"), pl.int_range(len(times), eager=True).alias("row")]
        )
        matched = origins.sort("time").join_asof(
            pairs,
            left_on="time",
            right_on="asked",
            by="id",
            strategy="forward",
            check_sortedness=False,  # sorted above (polars cannot check it within groups)
        )
        return (matched.sort("row")["asked"].fill_null(times) < last).fill_null(False)
    if is_cutoff_list(cutoff):
        points = cutoff_points(cutoff, dtype, model.time_col)
        if points is None:  # (names none: refused before the origins are checked)
            return times < last
    else:
        points = pl.Series([to_time_point(cutoff, dtype, name="cutoff")], dtype=dtype)
    # asked at the earliest point at or after it: before ``last`` iff at or before the
    # latest point before ``last``
    before = points.filter(points < last)
    if before.is_empty():
        return pl.repeat(False, len(times), eager=True)
    return times <= before.max()


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

"""What a backtest of a given fitted model (``refit=False``) checks of it: the folds whose
origins lie inside the data it was fitted on, and the folds whose intervals come from a
conformal calibration on errors observed after their origin; and the intervals a backtest
can score at all (:func:`asked_intervals`: not those of point models it trains itself).

:func:`~forecaster.evaluation.backtest.backtest` uses a fitted estimator as it is, so its
scores are out of sample only if the model was fitted (and calibrated) on data up to the
first fold's origin. Neither case is refused (an in-sample backtest is a legitimate
diagnostic), but each is warned about, naming how many folds it concerns, and the folds frame
shows each series' last fitted time as ``train_end``.

The models a backtest fits itself are checked too (:func:`fitted_spans`): ``fit`` leaves out
a series with too few rows in a fold's training span, and the folds frame shows no training
span for it, with a warning: that fold forecasts it as a series new to its model.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import TRAIN_COLUMNS
from forecaster._validation import check
from forecaster.data.frames import match_keys
from forecaster.data.made_up import warn_made_up_origins
from forecaster.data.panel import Panel
from forecaster.data.suspicious import MADE_UP_ORIGINS
from forecaster.evaluation.fold_checks import check_forecast_rows
from forecaster.evaluation.folds import Folds, fold_model, folds_frame, training_rows
from forecaster.evaluation.origins import uses_calendar
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    InSampleWarning,
    TooFewRowsError,
    silenced,
    warn_at_caller,
    warnings_unit,
)
from forecaster.training.callbacks import without_default_callbacks

__all__ = [
    "asked_intervals",
    "backtest_folds_frame",
    "fit_fold",
    "fitted_ends",
    "fitted_lookback",
    "fitted_spans",
    "forecast_folds",
    "in_sample_ends",
    "own_last_ends",
    "shares_calendar",
    "static_calibration",
    "warn_calibrated_after",
    "warn_in_sample",
]


def fitted_lookback(estimator: Any) -> int:
    """The input window of a fitted forecaster (its ``lookback_``, which the protocol cannot
    list: ``isinstance`` would then refuse unfitted ones)."""
    return int(estimator.lookback_)


def backtest_folds_frame(
    panel: Panel, where: Folds, estimator: Any, origins: str = "auto"
) -> pl.DataFrame:
    """The folds frame of a backtest (:func:`~forecaster.evaluation.folds.folds_frame`); for a
    given fitted ``estimator`` (``where.trains`` false), with each series' last fitted time
    as ``train_end`` (:func:`fitted_ends`) and a warning when some origins lie before the
    time up to which the model has seen their series' period (:func:`in_sample_ends` for the
    backtest's ``origins``: the model's last training time for calendar origins, whatever
    the series' own ``train_end``; :func:`warn_in_sample`)."""
    if where.trains:
        return folds_frame(panel, where)
    ends = fitted_ends(estimator, panel, where.kept)
    frame = folds_frame(panel, where, ends)
    if ends is None:  # the model does not record its training ends: nothing to compare
        return frame
    own = frame["train_end"]  # train_end_of of each row's series, read once
    seen = in_sample_ends(estimator, frame[panel.id_name], origins, own=own)
    if seen is not None:
        seen = seen.cast(frame.schema["cutoff"], strict=False)
    warn_in_sample(frame, seen, panel.id_name, estimator.id_col is not None)
    if origins == "series" and uses_calendar("auto", panel.time):  # dates, folds asked apart
        calendar = in_sample_ends(estimator, frame[panel.id_name], "calendar", own=own)
        _warn_seen_through_others(frame, seen, calendar, panel.id_name)
    return frame


def _warn_seen_through_others(
    folds_frame: pl.DataFrame, seen: pl.Series | None, calendar: pl.Series | None, id_name: str
) -> None:
    """Warn (``origins="series"`` on a date panel, a given fitted model) of the (fold, series)
    origins after their series' own last fitted time (``seen``) but before the model's last
    training time (``calendar``): as :func:`~forecaster.evaluation.origins.warn_cross_series`
    warns of the models a backtest fits, the model has seen the other series' rows there."""
    if seen is None or calendar is None:
        return
    cutoff = folds_frame["cutoff"]
    own = (cutoff < seen.cast(cutoff.dtype, strict=False)).fill_null(False)
    through = (cutoff < calendar.cast(cutoff.dtype, strict=False)).fill_null(False) & ~own
    if not through.any():
        return
    ids = folds_frame.filter(through)[id_name].unique(maintain_order=True)
    last: Any = calendar.max()
    warn_at_caller(
        f"origins='series' counts each series' folds back from its own end, and the series "
        f"end at different times: in {int(through.sum())} (series, fold) pairs (series "
        f"{ids.head(10).to_list()}) the origin is after the series' own last fitted time but "
        f"before {last}, the given model's last training time, so the model was trained on "
        "rows (of other series) after it and the scores may be optimistic. Pass "
        "origins='calendar' (the default for date and datetime time columns), which counts "
        "those folds as in-sample, or fit the model on the data before the first fold.",
        CrossSeriesWarning,
    )


def fit_fold(
    estimator: Any, frame: pl.DataFrame, panel: Panel, folds_frame: pl.DataFrame, first: int
) -> Any:
    """The model of the backtest folds from ``first`` on: a clone of ``estimator``
    (:func:`~forecaster.evaluation.folds.fold_model`) fitted on the training rows of fold
    ``first``, without the default callbacks (autolog logs the user's fits only); a fit that
    refuses its rows names the fold."""
    time_col, id_col = estimator.time_col, estimator.id_col
    bounds = folds_frame.filter(pl.col("fold") == first)
    rows = training_rows(frame, bounds, time_col=time_col, id_col=id_col)
    try:
        with without_default_callbacks():
            return fold_model(estimator, panel).fit(rows)
    except DataValidationError as exc:
        kind = TooFewRowsError if isinstance(exc, TooFewRowsError) else DataValidationError
        raise kind(
            f"The fit of fold {first}'s model (its training rows, read at the frame's "
            f"step {panel.freq}) failed: {exc}"
        ) from exc


def fitted_ends(estimator: Any, panel: Panel, kept: np.ndarray) -> pl.Series | None:
    """The last time of the data the fitted ``estimator`` was fitted on, for each series of
    ``panel`` at the positions ``kept``, in the panel's time dtype: null for a series not
    seen in fit; None when the model does not record it (no ``train_end_of``, or a model
    saved by an older version)."""
    if not callable(getattr(estimator, "train_end_of", None)):
        return None
    ends = estimator.train_end_of(panel.keys[panel.id_name].gather(kept))
    if ends.dtype == pl.Null:
        return None
    return ends.cast(panel.time.dtype, strict=False).alias("train_end")


def in_sample_ends(
    estimator: Any, ids: pl.Series, origins: str = "auto", *, own: pl.Series | None = None
) -> pl.Series | None:
    """The time up to which the fitted ``estimator`` has seen the period of each series of
    ``ids`` (a forecast target at or before it is in sample), in the model's time dtype.

    With calendar origins (:func:`~forecaster.evaluation.origins.uses_calendar`: ``"auto"``
    for date and datetime time columns, or ``"calendar"``) the series share one calendar,
    and a global model trained on series ``a`` up to ``T`` has seen the period up to ``T``
    of every series, one that ends earlier or was not seen in fit too: the boundary of each
    is the model's last training time, the latest ``train_end_`` of the series it was fitted
    on. Otherwise (integer steps, or ``origins="series"``) each series' own last fitted time
    (``train_end_of``; null for a series not seen in fit, which is out of sample). None when
    the model does not record its training ends (no ``train_end_of``, or a model saved by an
    older version). ``own``: ``train_end_of(ids)`` where the caller has read it (not read
    again here), in the model's time dtype."""
    if not callable(getattr(estimator, "train_end_of", None)):
        return None
    # its dtype, where not given: the series' own ends are not read for calendar origins
    none = estimator.train_end_of(ids.head(0)) if own is None else own
    if none.dtype == pl.Null:
        return None
    if not uses_calendar(origins, none):
        return estimator.train_end_of(ids) if own is None else own
    last = estimator.train_end_.max()
    return pl.Series(none.name, [last], dtype=none.dtype).gather(np.zeros(len(ids), np.int64))


def fitted_spans(
    folds_frame: pl.DataFrame, estimators: Sequence[Any], where: Folds, id_name: str
) -> pl.DataFrame:
    """``folds_frame`` of a backtest whose models it fitted (``where.trains``) with
    ``train_start``, ``train_end`` and ``train_rows`` null for each (fold, series) whose model
    (``estimators[model]``) was not fitted on that series: ``fit`` leaves out a series with
    too few rows in the fold's training span (read from the model's ``keys_``, not derived
    again from fit's rule). Such a fold forecasts the series as one new to its model (scaled
    by its own history, as ``predict`` forecasts a series unseen in fit) and it is scored so,
    with a warning that says how many. Unchanged for a given fitted model (its ``train_end``
    is already null for a series it was not fitted on) or models without ``keys_``."""
    if not where.trains:
        return folds_frame
    model_of = folds_frame["model"].to_numpy()
    fitted = np.ones(folds_frame.height, dtype=bool)
    for k, model in enumerate(estimators):
        keys = getattr(model, "keys_", None)
        rows = np.flatnonzero(model_of == k)
        if keys is None or not rows.size:
            continue
        (name,) = keys.columns
        ids = folds_frame.select(pl.col(id_name).alias(name))[rows]
        fitted[rows] = match_keys(keys, ids, name)[1]
    if fitted.all():
        return folds_frame
    _warn_unfitted(folds_frame.filter(pl.Series(~fitted)), folds_frame, id_name, where.every)
    return folds_frame.with_columns(
        pl.when(pl.Series(fitted)).then(pl.col(c)).alias(c) for c in TRAIN_COLUMNS
    )


def _warn_unfitted(
    unfitted: pl.DataFrame, folds_frame: pl.DataFrame, id_name: str, every: int
) -> None:
    """Warn that the (fold, series) rows ``unfitted`` of ``folds_frame`` are forecast by
    models that were not fitted on their series (``every``: folds per model; one model
    serves them all when it is at least their number, as with ``refit=False``)."""
    series = unfitted[id_name].unique(maintain_order=True)
    n_folds = folds_frame["fold"].n_unique()
    which = f"{series.len()} of the {folds_frame[id_name].n_unique()} series"
    which += f" (e.g. {series.head(5).to_list()})"
    if every >= n_folds:  # one model for every fold
        model = "the model"
        opening = (
            f"The backtest's model, fitted once on the training span before the first fold's "
            f"origin and used for all {n_folds} folds, was not fitted on {which}: their rows "
            "in that span were too few for the fit (see its warning)."
        )
    else:
        model = "their model"
        opening = (
            f"The models of {unfitted['fold'].n_unique()} of the {n_folds} folds were not "
            f"fitted on {which}: their rows in the fold's training span were too few for the "
            "fit (see its warning)."
        )
    advice = "use fewer folds or a smaller step (longer training spans)"
    if every > 1:  # a model serves several folds: refitting for each may keep the series
        advice += ", or pass refit=True (each fold's model is fitted before its own origin)"
    warn_at_caller(
        f"{opening} So {unfitted.height} of the {folds_frame.height} (fold, series) forecasts "
        f"forecast a series new to {model} (scaled by its own history, as predict forecasts "
        "a series unseen in fit, and as a model fitted at that origin would forecast it) and "
        "are scored so; result.folds shows them with train_start, train_end and train_rows "
        f"null (result.score({id_name!r}) scores each series apart). For forecasts by models "
        f"trained on them, {advice}.",
        ForecasterWarning,
    )


def warn_in_sample(
    folds_frame: pl.DataFrame, seen: pl.Series | None, id_name: str, has_id: bool
) -> None:
    """Warn when some (fold, series) origins of ``folds_frame`` lie before ``seen`` (one per
    row, :func:`in_sample_ends`; None: unknown), the time up to which the given fitted model
    has seen their series' period: the targets of those folds are in its training data, so
    their scores are in-sample. The warning names the origins that are in sample only
    because of other series (after their series' own ``train_end``)."""
    if seen is None:
        return
    early = (folds_frame["cutoff"] < seen).fill_null(False)
    if not early.any():
        return
    inside = folds_frame.filter(early)
    n_folds, total = inside["fold"].n_unique(), folds_frame["fold"].n_unique()
    series = inside[id_name].unique(maintain_order=True)
    which = (
        f" of {series.len()} of {folds_frame[id_name].n_unique()} series (e.g. "
        f"{series.head(5).to_list()})"
        if has_id
        else ""
    )
    own = (folds_frame["cutoff"] < folds_frame["train_end"]).fill_null(False)
    others = early & ~own
    cross = ""
    if others.any():
        ids = folds_frame.filter(others)[id_name].unique(maintain_order=True)
        last: Any = seen.max()
        cross = (
            f" {int(others.sum())} of them (of {ids.len()} series, e.g. {ids.head(5).to_list()}) "
            f"are in sample only through the other series: their origin is after their "
            f"series' own train_end (or it was not seen in fit), but before {last}, "
            "the model's last training time, and a global model fitted on the other series' "
            "rows up to then has learnt that period of the shared calendar."
        )
    warn_at_caller(
        "In-sample backtest: the given fitted model (refit=False) was trained on data after the "
        f"origin of {n_folds} of the {total} folds{which}, {inside.height} of the "
        f"{folds_frame.height} (fold, series) forecasts (compare cutoff and train_end in "
        f"result.folds).{cross} Their targets are in the model's training data, so their "
        "scores, and the skill ratios against the naive baselines, are in-sample: they "
        "overstate the accuracy of forecasts of new data. For out-of-sample scores pass "
        "refit=True (a clone is fitted on the data before each fold's origin), or fit the "
        "model on the data up to the first fold's origin (all but the last horizon + (folds "
        "- 1) * step rows of each series, or for a date panel the data before the first "
        "calendar cutoff).",
        InSampleWarning,
    )


def static_calibration(estimator: Any) -> dict[str, Any] | None:
    """The conformal calibration (``conformal_``) of ``estimator`` when it uses every
    calibration window for every forecast (``calibrate(rolling=None)``), whatever its
    origin; None for an uncalibrated model (a quantile model's own quantiles) or a rolling
    calibration, whose forecasts use only the windows their origin has observed."""
    conformal = estimator.__dict__.get("conformal_")
    if conformal is None or conformal.get("window") is not None:
        return None
    return conformal  # type: ignore[no-any-return]


def shares_calendar(estimator: Any, times: pl.Series) -> bool:
    """Whether the series of ``estimator`` share one calendar, so that a calibration window
    of any series ending after an origin was observed after it: a date or datetime time
    column (``times``), or one series. Integer steps of several series are independent
    sequences, whose positions are not shared times: only a series' own windows count."""
    return uses_calendar("auto", times) or estimator.id_col is None


def warn_calibrated_after(estimator: Any, folds_frame: pl.DataFrame, time_col: str) -> None:
    """Warn when the intervals or quantiles a given fitted ``estimator`` forecasts for the
    folds of ``folds_frame`` come from a conformal calibration (``conformal_``) that uses
    every calibration window (``calibrate(rolling=None)``: :func:`static_calibration`) and
    some of those windows end after a fold's origin: that fold's interval is set from errors
    observed after it (with the same frame, the very errors being scored). For a date or
    datetime time column the series share a calendar: any window ending after the origin
    counts. For integer steps (independent sequences, whose positions are not shared times)
    only the windows of the fold's own series do (:func:`shares_calendar`). An
    :class:`~forecaster.exceptions.InSampleWarning`, as ``predict(cutoff=..., level=...)``
    warns of its own origins."""
    conformal = static_calibration(estimator)
    if conformal is None:
        return  # uncalibrated (the model's own quantiles), or rolling: windows seen by then
    cutoff = folds_frame["cutoff"]
    shared = shares_calendar(estimator, cutoff)
    advice = (
        "Calibrate the model on data up to the first fold's origin (e.g. fit and calibrate "
        "it on all but the last horizon + (folds - 1) * step rows of each series)"
        + (  # calibrate refuses rolling across independent integer-step series
            ", or with calibrate(..., rolling=W), whose forecasts use only the calibration "
            "windows their origin has observed"
            if shared
            else ""
        )
        + ". (refit=True does not help: the refitted clones are not calibrated.)"
    )
    ends = conformal.get("ends")
    if ends is None or not len(ends):
        warn_at_caller(
            "The model's calibration does not record when its windows end (calibrated by an "
            "older version of forecaster), so the backtest cannot check whether the intervals "
            "it scores use errors observed after the folds' origins. " + advice,
            ForecasterWarning,
        )
        return
    physical = cutoff.to_physical().to_numpy().astype(np.int64)
    last = int(np.max(ends))
    if shared:
        early = physical < last
        ending = f"of windows ending up to {time_col}={_as_time(last, cutoff.dtype)}"
    else:
        early = physical < own_last_ends(estimator, folds_frame[estimator.id_col], conformal)
        ending = "of windows of the fold's own series (independent sequences) ending"
    if not early.any():
        return
    n_folds = folds_frame.filter(pl.Series(early))["fold"].n_unique()
    warn_at_caller(
        f"Interval scores calibrated on later data: the model's conformal calibration "
        f"(rolling=None) uses errors {ending}, after "
        f"the origin of {n_folds} of the {folds_frame['fold'].n_unique()} folds "
        f"({int(early.sum())} of the {early.size} (fold, series) forecasts). Their intervals "
        "are set from errors observed after their origin (possibly the very errors "
        "being scored), so their coverage, width, Winkler, MSIS, pinball and sCRPS scores are "
        "not those of forecasts of new data. " + advice,
        InSampleWarning,
    )


def _as_time(physical: int, dtype: pl.DataType) -> Any:
    """The time of the int64 ``physical`` value in ``dtype``."""
    return pl.Series([physical], dtype=pl.Int64).cast(dtype)[0]


def own_last_ends(estimator: Any, ids: pl.Series, conformal: dict) -> np.ndarray:
    """The last end (int64 physical time) of the calibration windows of the own series of
    each of ``ids`` (the int64 minimum for a series without any, or unseen in fit)."""
    (id_name,) = estimator.keys_.columns
    rows, known = match_keys(estimator.keys_, ids.alias(id_name).to_frame(), id_name)
    own = np.full(estimator.keys_.height, np.iinfo(np.int64).min, dtype=np.int64)
    series, ends = np.asarray(conformal["series"], np.int64), np.asarray(conformal["ends"])
    seen = series >= 0  # (-1: a series unseen in fit, kept under normalize="window" or None)
    np.maximum.at(own, series[seen], ends[seen])
    return np.where(known, own[np.where(known, rows, 0)], np.iinfo(np.int64).min)


def asked_intervals(level: Any, quantiles: Any, estimator: Any, trains: bool) -> dict[str, Any]:
    """``level`` and ``quantiles`` checked (before any model is trained), those given. A
    point model's intervals need its conformal calibration, which the models a backtest
    trains (``trains``: refit, or an unfitted estimator) do not have: refused here, before
    any fit (predict's own message would ask for a calibrate that cannot help)."""
    given = (("level", level), ("quantiles", quantiles))
    asked = {name: check(name, value) for name, value in given if value is not None}
    if asked and trains and getattr(estimator, "loss", None) != "quantile":
        raise DataValidationError(
            f"backtest({', '.join(f'{name}=...' for name in asked)}) of a point model "
            f"(loss={getattr(estimator, 'loss', None)!r}) needs the model's conformal "
            "calibration, and the models a backtest fits (refit, or an unfitted estimator) "
            "have none. Pass the model fitted and calibrated (model.fit(...).calibrate(...)) "
            "with refit=False, or fit with loss='quantile' so that every fold's model gives "
            "its own quantiles."
        )
    return asked


def _origins_of(panel: Panel, where: Folds) -> tuple[Panel, np.ndarray, np.ndarray]:
    """The panel of the series ``where`` keeps and, in it, the series and global row of the
    origin of every (fold, series) block of ``where`` (:attr:`Folds.blocks`, in order)."""
    keep = np.zeros(panel.n_series, dtype=bool)
    keep[where.kept] = True
    kept = panel.select_series(keep)
    series = np.searchsorted(np.flatnonzero(keep), where.kept)[where.blocks % len(where.kept)]
    return kept, series, kept.offsets[series] + where.local_cut.ravel()[where.blocks]


def forecast_folds(
    estimator: Any,
    frame: pl.DataFrame,
    panel: Panel,
    where: Folds,
    fold_rows: pl.DataFrame,
    intervals_asked: dict[str, Any],
    *,
    tell_origins: bool = False,
) -> tuple[list[Any], pl.DataFrame]:
    """The models of a backtest (fitted on clones, or the given one) and their forecasts of
    every (fold, series) origin of ``where`` (the rows of ``fold_rows``), in that order:
    each model forecasts all (series, origin) pairs of its folds in one ``predict_origins``
    call (``predict(frame, cutoff=<pairs>)`` from the panel read already; with ``level`` /
    ``quantiles`` when asked), whose frames are stacked. Origins the folds place on steps
    whose targets (or past covariates) ``missing=`` made up are not warned about fold by fold
    (:data:`~forecaster.data.suspicious.MADE_UP_ORIGINS`): the backtest scores the model with
    its ``missing`` policy, as it forecasts after a gap. With ``tell_origins`` (a backtest's
    scores) one warning names them all at the end, as origins the backtest chose."""
    id_col, time_col = estimator.id_col, estimator.time_col
    if id_col is not None and len(where.kept) < panel.n_series:  # predict would warn again
        kept_ids = panel.keys[panel.id_name].gather(where.kept)
        frame = frame.filter(pl.col(id_col).cast(kept_ids.dtype).is_in(kept_ids.implode()))
    origin_panel, series, rows = _origins_of(panel, where)  # (kept series only)
    estimators: list[Any] = []
    forecasts = []
    # calendar folds forecast some series in some folds only; every model trains on all
    spans = fold_rows if where.present is None else folds_frame(panel, replace(where, present=None))
    fold_of = where.blocks // max(len(where.kept), 1)
    for first in range(0, where.n_folds, where.every):
        group = fold_rows.filter(pl.col("fold").is_between(first, first + where.every - 1))
        mine = (fold_of >= first) & (fold_of < first + where.every)  # its blocks, in order
        with warnings_unit(first) if where.trains else nullcontext():  # one summary per kind
            if where.trains:
                model = fit_fold(estimator, frame, panel, spans, first)
            else:  # the given model: were its intervals calibrated on later data?
                model = estimator
                if intervals_asked:
                    warn_calibrated_after(model, fold_rows, time_col)
            estimators.append(model)
            # origins the folds place on steps missing= filled: the policy's forecasts, scored
            with silenced(ForecasterWarning, MADE_UP_ORIGINS):  # as the model is used
                predicted = model.predict_origins(
                    frame, origin_panel, series[mine], rows[mine], **intervals_asked
                )
            check_forecast_rows(predicted, group.height, first, model, estimator)
        forecasts.append(predicted)
    if tell_origins:  # once, over every fold, after the folds' own warnings
        warn_made_up_origins(origin_panel, frame, series, rows, estimator.missing, "backtest")
    return estimators, pl.concat(forecasts, how="vertical_relaxed")

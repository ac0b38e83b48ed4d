"""Prediction intervals of a run: the spec's ``[output] levels``.

A spec with ``levels = [80, 95]`` asks every run for the 80 % and 95 % prediction intervals
(``<target>_lo_80``, ``<target>_hi_80``, ... in ``forecasts.parquet``) and their scores in the
backtest (coverage, width, Winkler score and MSIS per level, in ``summary.json`` and the run's
MLflow metrics). Without ``levels`` nothing here runs: the run is what it always was.

Where the intervals come from
    A quantile model (``[model] loss = "quantile"``) reads them from its own quantiles (the
    spec is refused at load when a level's bounds are not among them). A point model is
    calibrated (split-conformal, per horizon step) before it predicts:
    :func:`calibrate_for_levels` calls ``model.calibrate(frame, folds=F, refit=...,
    per_series=...)`` on the run's data, which backtests clones of the model refitted on the
    data before each origin (``refit=True``, or every ``k`` folds when many folds are needed)
    and keeps their out-of-sample errors. The run's model itself is the one fitted on all the
    data (its point forecast is the same as without ``levels``); the conformal quantiles come
    from clones fitted on a little less data, which errs on the side of wider intervals. We
    chose this over holding out the last span (fit on the data before it, calibrate on it)
    because that model would not see the most recent data, and its point forecast would change
    with ``levels``. The errors are normalised by each series' scale (the library's default
    ``normalize="series"``, so a stock at 70 and an index at 6000 get bands of their own
    scale even when pooled), or by each input window's spread (``normalize="window"``, see
    :func:`scaled_plan`) when some series the run forecasts is too short for the folds (or
    unseen in fit), which would get no residual and no scale of its own, or, found after the
    calibration (which then runs again), got no observed one of some target (its values over
    the folds filled by ``missing=``:
    :func:`~forecaster.jobs.calibration_plan.unscaled_series`); kept per series when
    every series has room for ``F = max(20, n, backtest_folds)`` origins after
    ``2 * (lookback + horizon)`` rows,
    ``n`` the errors per step that the finite-sample correction needs for the highest level
    (``n >= L / (100 - L)``: 19 for 95 %, 4 for 80 %); otherwise pooled across the series, with
    ``F`` the spec's ``evaluation.backtest_folds`` (at least 3) raised until the series
    together give ``n``. At most ``max(backtest_folds, 3)`` models are refitted. The folds
    are the backtest's (``origins="auto"``: common calendar cutoffs for dates), but when a
    stale series the run forecasts (``[series] stale``, ``max_staleness``) ends at or before
    the first cutoff, which gives it no residual, they are counted from each series' own end:
    it is forecast from its own last time by a model that has seen the other series' later
    data, as those folds' models have (the log line says so). Folds counted from the steps
    ``missing=`` filled (:func:`~forecaster.jobs.calibration_plan.counted_plan`, ``folds_reason``)
    give way to the plan's where they leave a fold's model too few rows to train on.
    A calibration run again (more folds where that count missed, or ``normalize="window"``
    where a series got no scale) costs about as much as the first: its log line and the
    record (``calibrations``, ``first_folds``, ``recalibration_reason``) say so, and why.
Scores
    The backtest with levels fits a clone on the data before the first target, calibrates it
    there by the same rules (a point model; on less data, so it may come out pooled where the
    run's is per series: ``summary.json``'s ``backtest_calibration`` records which), and
    forecasts every fold with it as it is, intervals included (a fitted model is used as it is by
    :func:`forecaster.evaluation.backtest.backtest`), so the interval scores are out of
    sample too; the point scores are those of the backtest without levels. ``pinball`` and
    ``scrps`` are scored when ``[evaluation] metrics`` lists them
    (:func:`forecaster.jobs.scores.score_quantiles`). :func:`spec_backtest` is the one
    backtest of a spec: ``run``'s and ``forecaster backtest``'s (whose ``--level`` and
    ``--folds`` replace the spec's), and, for a saved ``--model``, the model as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import clone

from forecaster.estimators.intervals import MIN_PER_SERIES, residuals_needed
from forecaster.estimators.own_residuals import own_residuals, warn_without_own
from forecaster.evaluation.backtest import backtest
from forecaster.evaluation.fold_checks import check_reserved
from forecaster.evaluation.folds import first_fit_lookback, fold_rows
from forecaster.evaluation.origins import calendar_cutoffs, uses_calendar
from forecaster.evaluation.score_names import score_columns
from forecaster.exceptions import (
    CalendarFoldsWarning,
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    NoResidualsWarning,
    TooFewRowsError,
    silenced,
)
from forecaster.jobs.calibration_plan import (
    Plan,
    calibration_plan,
    counted_plan,
    describe_windows,
    fewest_kept,
    folds_plan,
    scaled_plan,
    unscaled_series,
    with_own_counts,
)
from forecaster.jobs.schedule import excluded_ids, id_text, sorted_by_series, stale_steps
from forecaster.jobs.scores import (
    backtest_metrics,
    is_quantile_model,
    level_quantiles,
    model_quantiles,
    score_quantiles,
)
from forecaster.jobs.spec import (
    COLUMN_PARAMS,
    NO_CHECKPOINTS,
    Spec,
    without_checkpoints,
)
from forecaster.jobs.tracked import tracking_paused
from forecaster.training import distributed

__all__ = [
    "before_folds",
    "calibrate_for_levels",
    "first_cutoff",
    "interval_backtest",
    "spec_backtest",
    "spec_panel",
    "unfit_levels",
]


def _plan(spec: Spec, model: Any, frame: pl.DataFrame, excluded: Collection[str] = ()) -> Plan:
    """The plan of :func:`calibration_plan` for the fitted ``model`` on ``frame``, scaled by
    :func:`scaled_plan` (``excluded``: the series the run does not forecast)."""
    if spec.series.id:
        lengths = frame.group_by(spec.series.id).len()["len"]
        n_series, shortest = lengths.len(), int(lengths.min() or 0)  # type: ignore[arg-type]
    else:
        n_series, shortest = 1, frame.height
    window = model.lookback_ + int(model.horizon)
    plan = calibration_plan(spec, n_series, shortest, window, int(model.horizon))
    return scaled_plan(plan, spec, model, frame, excluded)


def calibrate_for_levels(
    spec: Spec, model: Any, frame: pl.DataFrame, log: Callable[[str], None]
) -> Plan | None:
    """Calibrate the run's point model for the spec's ``levels`` (nothing when the spec sets
    none, or the model emits quantiles) and log how; the plan it calibrated by (None when it
    did not). The clones the calibration fits write no checkpoints and log nothing to MLflow
    (they are not the run's model). Under torchrun the ranks other than 0 show no
    ``ForecasterWarning`` of it (``distributed.quiet_other_ranks``, as their fit): rank 0
    reports it for them all."""
    if spec.output.levels is None or is_quantile_model(spec):
        return None
    excluded = excluded_ids(stale_steps(frame, spec), spec)
    with distributed.quiet_other_ranks():
        return _calibrate_forecast(spec, model, frame, excluded, log, "calibrate")


def _calibrate_forecast(
    spec: Spec,
    model: Any,
    frame: pl.DataFrame,
    excluded: Collection[str],
    log: Callable[[str], None] | None,
    what: str,
) -> Plan:
    """Calibrate the point ``model`` on ``frame`` for the series it forecasts (all but
    ``excluded``, ids as text) and ``log`` how (the line starts with ``what``): the one
    calibration of a run (:func:`calibrate_for_levels`) and of the backtest's clone
    (:func:`interval_backtest`). Its folds are counted from each series' own end when a
    stale series it forecasts ends at or before the first common cutoff
    (:func:`_forecast_before`); the plan it calibrated by."""
    plan = _plan(spec, model, frame, excluded)
    stale = _forecast_before(spec, model, frame, plan.folds, excluded)
    plan = replace(plan, origins="series" if stale else "auto")
    counted = counted_plan(spec, model, frame, plan, excluded)
    try:
        plan = _calibrate(spec, model, frame, counted, excluded)
    except TooFewRowsError:  # the counted folds leave a fold's model too few rows to train on
        if counted.folds == plan.folds:
            raise
        plan = _calibrate(spec, model, frame, plan, excluded)  # as before the count
    plan = with_own_counts(plan, spec, model)  # what the intervals use: the model's state
    if log is None:
        return plan
    how = "a refit every fold" if plan.refit is True else f"a refit every {plan.refit} folds"
    folds = (
        f" counted from each series' own end (the stale series {stale[:5]}, which the run "
        "forecasts, end at or before the first common cutoff)"
        if stale
        else ""
    )
    scale = (
        f", scaled by each input window's spread (normalize='window', not each series' "
        f"scale: {plan.short})"
        if plan.normalize == "window"
        else ""
    )
    log(
        f"{what} conformal intervals {plan.where()} from {plan.folds} calibration folds{folds} "
        f"({describe_windows(model.conformal_)}; {how}){scale}"
        f"{plan.folds_reason and ', as '}{plan.folds_reason}{plan.recalibrated()}"
    )
    return plan


def _forecast_before(
    spec: Spec, model: Any, frame: pl.DataFrame, folds: int, excluded: Collection[str]
) -> list[str]:
    """The stale series (ids as text) that the run forecasts (not ``excluded``: by
    ``[series] stale`` and ``max_staleness``, :func:`~forecaster.jobs.schedule.excluded_ids`,
    for a run) and that end at or
    before the first calendar cutoff of a calibration of ``folds`` folds
    (:func:`first_cutoff`): those calendar folds give them no residual, and ``predict``
    refuses a series without any under ``normalize="series"``. Such a series is forecast
    from its own last time by a model that has seen the other series' later data, as the
    models of folds counted from each series' own end have: their residuals are what it
    needs."""
    stale = stale_steps(frame, spec)
    if stale.height == 0:
        return []
    forecast = stale.filter(~id_text(spec.series.id or "").is_in(list(excluded)))
    if forecast.height == 0:
        return []
    first = first_cutoff(frame, model, folds)
    if first is None:
        return []
    dtype = frame.schema[model.time_col]
    early = forecast.filter(pl.col("__last__") <= pl.lit(first, dtype))
    return early.select(id_text(spec.series.id or "")).to_series().to_list()


def _calibrate(
    spec: Spec, model: Any, frame: pl.DataFrame, plan: Plan, excluded: Collection[str]
) -> Plan:
    """Calibrate ``model`` on ``frame`` by ``plan`` (:func:`_plan`, folds placed by its
    ``origins``); a ``TooFewRowsError`` that names the levels and what to change when the
    data are too short for it, any other ``DataValidationError``'s message after the
    levels. Calibrate's warning that ``predict`` will refuse the series without residuals
    is not given: those the run forecasts get residuals (see :func:`_forecast_before`), the
    others are excluded as stale (or, in the backtest's calibration, end before its folds),
    and a forecast that still has none is refused by ``predict`` naming it. Nor is the
    backtest's warning that ``origins="series"`` lets a fold's model see other series'
    later data (advising ``origins="calendar"``): the run chooses those folds for its stale
    series on purpose, and its log line says so. Nor is the warning that calendar folds
    leave out series ending early (``CalendarFoldsWarning``): the plan handles those
    series, and its log line names its folds; the run's backtest tells its own folds'
    cutoffs (a log tells a fact once, so the calibration's would hide them)."""
    original = {k: getattr(model, k) for k in NO_CHECKPOINTS}
    without_checkpoints(model)  # the clones must not replace the fit's checkpoints
    try:
        with (
            tracking_paused(),
            silenced(NoResidualsWarning),
            silenced(CrossSeriesWarning),
            silenced(CalendarFoldsWarning),
        ):
            with silenced(ForecasterWarning, _OWN_WARNING):  # told of the calibration kept
                _calibrate_by(model, frame, plan)
            asked = plan
            plan = _made_up_for(spec, model, frame, plan, excluded)
            if plan.per_series and plan.folds == asked.folds:  # the first calibration stays
                warn_without_own(model.conformal_, plan.folds, model.keys_.to_series())
            plan = _scaled_every(spec, model, frame, plan, excluded)
    except TooFewRowsError as exc:
        fact = exc.fact[:1].lower() + exc.fact[1:]  # in the sentence: "..., and too few rows"
        raise TooFewRowsError(
            f"{_cannot(spec)}: the calibration backtests {plan.folds} origins of "
            f"{model.horizon} steps per series (enough errors per step for the highest "
            f"level), and {fact} Use longer series, lower [output] levels "
            "or a shorter [model] horizon."
        ) from exc
    except DataValidationError as exc:  # another cause: another fix than longer series
        raise DataValidationError(f"{_cannot(spec)}: {exc}") from exc
    finally:
        model.set_params(**original)
    return plan


_OWN_WARNING = r"^calibrate\(per_series=True\): "
"""The start of ``calibrate``'s warning about the series short of residuals of their own
(:func:`~forecaster.estimators.own_residuals.warn_without_own`): a run tells it of the
calibration it keeps, not of a first one that :func:`_made_up_for` replaces with more folds."""


def _cannot(spec: Spec) -> str:
    """The start of the errors of a calibration that fails: it names the levels."""
    levels = [f"{v:g}" for v in spec.output.levels or ()]
    return f"Cannot calibrate the intervals of [output] levels = {levels} (or backtest --level)"


def _made_up_for(
    spec: Spec,
    model: Any,
    frame: pl.DataFrame,
    plan: Plan,
    excluded: Collection[str] = (),
) -> Plan:
    """The plan of ``model``'s calibration: ``plan``, or one of more folds when residuals at
    steps the ``missing=`` policy filled were left out and the pooled ones fell short of the
    highest level's (a series short of its own falls back to them), or, per series, when
    every series fell short of the residuals of its own it needs, if the data have room for
    it (else the calibration of ``plan`` stays, ``calibrate`` restores it, and its
    ``pooled_reason`` says why). The safety net of :func:`counted_plan` (see there when it
    runs). The plan of more folds counts the calibration and says why it ran, and why
    ``normalize`` changed where it did (:meth:`Plan.again`)."""
    needed = residuals_needed(max(spec.output.levels or [80.0]))
    kept = fewest_kept(model.conformal_)
    factor = needed / kept if 0 < kept < needed else 1.0
    minimum = max(needed, MIN_PER_SERIES)
    best = int(own_residuals(model.conformal_, len(model.keys_)).max(initial=0))
    own_short = plan.per_series and 0 < best < minimum and plan.folds >= minimum
    if own_short:  # every series short of its own because filled steps' residuals are left out
        factor = max(factor, minimum / best)
    if factor == 1.0:
        return plan
    more = folds_plan(spec, math.ceil(plan.folds * factor), plan.per_series)
    more = replace(more, normalize=plan.normalize, short=plan.short, origins=plan.origins)
    more = scaled_plan(more, spec, model, frame, excluded)  # more folds: longer series
    filled = f"missing={spec.series.missing!r} filled steps whose residuals are left out"
    why = []
    if 0 < kept < needed:
        why.append(
            f"{filled}, so {plan.folds} folds kept {kept} pooled residuals at a step, fewer "
            f"than the {needed} the {max(spec.output.levels or [80.0]):g} % level needs"
        )
    if own_short:
        why.append(
            f"{filled}, so {plan.folds} folds gave every series fewer than the {minimum} "
            f"residuals per step of its own that per-series intervals need (the most: {best})"
        )
    if more.normalize != plan.normalize:
        why.append(f"{more.folds} folds need longer series, so normalize='window' ({more.short})")
    try:
        _calibrate_by(model, frame, more)
    except TooFewRowsError:  # no room for more origins (any other error is raised)
        if not own_short:
            return plan
        return replace(
            plan,
            pooled_reason=(
                f"missing={spec.series.missing!r} filled steps whose residuals are left out, "
                f"so {plan.folds} folds gave a series {best} at most, and the series are too "
                f"short for the {more.folds} folds {minimum} would need"
            ),
        )
    reason = f"{more.folds} folds, as {' and '.join(why)}"
    after = int(own_residuals(model.conformal_, len(model.keys_)).max(initial=0))
    if own_short and after < minimum:  # more folds are asked for once: say it fell short
        reason += f"; {more.folds} folds still gave a series {after} at most"
    return plan.again(more, reason)


def _calibrate_by(model: Any, frame: pl.DataFrame, plan: Plan) -> None:
    """``model.calibrate`` on ``frame`` with the folds, refits, grouping, normalisation and
    origins of ``plan``."""
    model.calibrate(
        frame,
        folds=plan.folds,
        refit=plan.refit,
        per_series=plan.per_series,
        normalize=plan.normalize,
        origins=plan.origins,
    )


def _scaled_every(
    spec: Spec, model: Any, frame: pl.DataFrame, plan: Plan, excluded: Collection[str]
) -> Plan:
    """``plan``, or the calibration again by each input window's spread
    (``normalize="window"``) when, under ``normalize="series"``, some series the run
    forecasts got no observed residual of some target
    (:func:`~forecaster.jobs.calibration_plan.unscaled_series`): the
    guarantee that ``predict`` finds a scale for every forecast. :func:`scaled_plan` foresees
    the series too short for the folds or unseen in fit, which saves this second calibration
    in the common case; this one also finds the series whose errors in the folds all fall on
    values the ``missing=`` policy filled (left out), or that a ``lookback="auto"`` clone
    left out (a longer lookback than the model's). The plan it returns counts this
    calibration and says why it ran (:meth:`Plan.again`)."""
    if plan.normalize != "series":
        return plan
    filled, absent = unscaled_series(model, frame, spec.series.id, excluded)
    if not filled and not absent:
        return plan
    why = [
        f"{_named(ids)} {'gets' if len(ids) == 1 else 'get'} {reason}"
        for ids, reason in (
            (
                filled,
                "no observed error in the calibration folds (its values there were filled by "
                f"missing={spec.series.missing!r})",
            ),
            (absent, "no residual in the calibration folds (too short for them, or unseen)"),
        )
        if ids
    ]
    short = f"of the series it forecasts, {' and '.join(why)}, so no series scale"
    scaled = replace(plan, normalize="window", short=short)
    _calibrate_by(model, frame, scaled)
    scaled = plan.again(scaled, f"normalize='window', as under normalize='series' {short}")
    return _made_up_for(spec, model, frame, scaled, excluded)


def _named(ids: list[str]) -> str:
    """``ids`` as a log line names them: their number and the first five (a panel without
    an id column: "the series")."""
    if ids == ["the series"]:
        return "the series"
    shown = ", ".join(repr(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    return f"{len(ids)} series ({shown})"


def unfit_levels(model: Any, levels: list[float] | None) -> str | None:
    """Why the fitted ``model`` cannot forecast the intervals of ``levels`` as it is (None
    when it can, or no level is asked), a phrase that follows "the model": a point model
    without its calibration, a quantile model without a level's bounds among its
    quantiles."""
    if not levels:
        return None
    if getattr(model, "loss", None) == "quantile":
        have = {round(q, 10) for q in model_quantiles({"quantiles": model.quantiles})}
        missing = [q for q in level_quantiles(levels) if q not in have]
        if missing:
            return (
                f"emits the quantiles {sorted(have)}, and the levels "
                f"{[f'{v:g}' for v in levels]} need {missing} too. Ask for levels whose bounds "
                "it emits, or fit a model with those quantiles"
            )
        return None
    if getattr(model, "conformal_", None) is None:
        return (
            "was saved without calibration, so it has no intervals. Set [output] "
            "levels in the spec and fit it again (forecaster fit and run calibrate it), or "
            "leave out --level"
        )
    return None


def spec_panel(spec: Spec, estimator: Any, frame: pl.DataFrame) -> Any:
    """The panel of ``frame`` as the spec's unfitted ``estimator`` reads it: data it cannot
    read is refused (``DataValidationError``) before anything is fitted or written. When the
    spec backtests (``evaluation.backtest_folds > 0``), so are columns named like the output
    columns of a backtest or of the score frames it writes
    (:func:`~forecaster.evaluation.fold_checks.check_reserved`), which the backtest itself
    would refuse only after the run's fit (or its tuning); when it only calibrates (``levels``
    of a point model), those of a backtest's forecasts (the calibration scores nothing)."""
    options = {k: v for k, v in estimator.get_params().items() if k in COLUMN_PARAMS}
    panel = estimator.windowed_panel(frame, **options, ends="training")[0]  # as the fit reads it
    levels = spec.output.levels
    scores = None
    if spec.evaluation.backtest_folds > 0:
        scores = score_columns(
            backtest_metrics(spec),
            m=spec.evaluation.seasonality,
            levels=levels or (),
            quantiles=score_quantiles(spec, estimator) or (),
        )
    if scores is not None or (levels and not is_quantile_model(spec)):
        check_reserved(panel, estimator.id_col, estimator.time_col, scores)
    return panel


def spec_backtest(
    spec: Spec,
    model: Any,
    frame: pl.DataFrame,
    *,
    fitted: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, Plan | None]:
    """The backtest of ``spec`` (``evaluation.backtest_folds`` folds, its metrics, the
    intervals of its ``levels``): of a clone of the unfitted ``model`` fitted on the data
    before the first fold (:func:`interval_backtest` with levels), or of the ``fitted`` model
    as it is (a saved model: its intervals must be there, see :func:`unfit_levels`); ``log``
    takes the line of the clone's calibration. The caller pauses tracking.

    Returns
    -------
    tuple
        The backtest's result, and the plan the clone's intervals were calibrated by (a
        point model with levels; else None): the summary's ``backtest_calibration``.
    """
    levels = spec.output.levels
    if levels is not None and not fitted:
        return interval_backtest(spec, model, frame, log)
    result = backtest(
        model if fitted else without_checkpoints(clone(model)),
        frame,
        folds=spec.evaluation.backtest_folds,
        refit=False,
        metrics=backtest_metrics(spec),
        m=spec.evaluation.seasonality,
        level=list(levels) if levels else None,
        quantiles=score_quantiles(spec, model),
    )
    return result, None


def interval_backtest(
    spec: Spec, model: Any, frame: pl.DataFrame, log: Callable[[str], None] | None = None
) -> tuple[Any, Plan | None]:
    """The run's backtest with the spec's ``levels`` scored (see the module docstring): a clone
    fitted on the data before the first target (and calibrated there, for a point model, by
    the run's rules for the series the backtest forecasts: ``log`` takes its line) forecasts
    every fold as it is, with its intervals. The caller pauses tracking. Returns the
    backtest's result and the plan of the clone's calibration (None: a quantile model)."""
    folds = spec.evaluation.backtest_folds
    template = without_checkpoints(clone(model))
    history = before_folds(frame, template, folds)
    template.fit(history)
    plan = None
    if not is_quantile_model(spec):
        excluded = _not_forecast(spec, frame, history)
        plan = _calibrate_forecast(
            spec, template, history, excluded, log, "backtest: calibrate the clone's"
        )
    result = backtest(
        template,
        frame,
        folds=folds,
        refit=False,
        metrics=backtest_metrics(spec),
        m=spec.evaluation.seasonality,
        level=list(spec.output.levels or []),
        quantiles=score_quantiles(spec, template),
    )
    return result, plan


def _not_forecast(spec: Spec, frame: pl.DataFrame, history: pl.DataFrame) -> list[str]:
    """The series (ids as text) that the backtest of ``frame`` does not forecast, of those
    in ``history`` (its rows before the first fold): those with no rows after it."""
    id_col = spec.series.id
    if id_col is None:
        return []
    rows = [f.group_by(id_col).len() for f in (frame, history)]
    same = (
        rows[0]
        .join(rows[1], on=id_col, nulls_equal=True)
        .filter(pl.col("len") == pl.col("len_right"))
    )
    return same.select(id_text(id_col)).to_series().to_list()


def before_folds(frame: pl.DataFrame, model: Any, folds: int) -> pl.DataFrame:
    """The rows of each series before the backtest's first target (the first fold's training
    span with ``step = horizon`` and no gap), as ``backtest(origins="auto")`` places its folds
    on ``frame`` read by ``model`` (fitted or not): for a date or datetime time column, the
    rows at or before the first calendar cutoff ``T_0`` (:func:`first_cutoff`), for every
    series, so a series that ended earlier keeps all its rows; for integer steps, each series
    but its own last ``folds * horizon`` rows."""
    first = first_cutoff(frame, model, folds)
    keys, time_col = [model.id_col] if model.id_col else [], model.time_col
    ordered = sorted_by_series(frame, model.id_col, time_col)
    if first is not None:
        return ordered.filter(pl.col(time_col) <= pl.lit(first, frame.schema[time_col]))
    position = pl.int_range(pl.len())
    count = pl.len()
    if keys:
        position, count = position.over(keys), count.over(keys)
    return ordered.filter(position < count - folds * int(model.horizon))


def first_cutoff(frame: pl.DataFrame, model: Any, folds: int) -> Any:
    """The first calendar cutoff ``T_0`` of ``backtest(model, frame, folds=folds,
    origins="auto")`` with ``step = horizon`` (``folds * horizon`` grid steps before the data's
    last time, :func:`~forecaster.evaluation.origins.calendar_cutoffs`, on the series long
    enough for the folds), ``frame`` read by ``model`` (fitted or not; an unfitted
    ``lookback="auto"`` is the one the backtest's first fit chooses,
    :func:`~forecaster.evaluation.folds.first_fit_lookback`); None for integer steps (each
    series' folds count from its own end)."""
    horizon, fitted = int(model.horizon), model.__sklearn_is_fitted__()
    _, panel = model.read_frame(frame, as_fitted=fitted)
    if not uses_calendar("auto", panel.time):
        return None
    lookback = model.lookback_ if fitted else model.lookback
    if lookback == "auto":  # the series a longer window leaves out may move the cutoff earlier
        lookback = first_fit_lookback(
            panel, model, folds=folds, step=horizon, gap=0, train_size=None, calendar=True
        )
    least = fold_rows(int(lookback), horizon, folds, horizon)
    kept = np.flatnonzero(panel.lengths >= least)  # the series the backtest keeps
    kept = kept if len(kept) else np.arange(panel.n_series)  # (it refuses the frame)
    return calendar_cutoffs(panel, kept, horizon=horizon, folds=folds, step=horizon)[0]

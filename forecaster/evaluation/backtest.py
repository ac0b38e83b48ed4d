"""Rolling-origin backtests of a forecaster (:class:`~forecaster.RNNForecaster` and its kin).

:func:`backtest` forecasts every series from ``folds`` origins and scores the forecasts with
:mod:`forecaster.evaluation.metrics`. It works through :class:`BacktestForecaster`, what it
needs of a forecaster, and never imports the estimators (a layer above). Each model forecasts
all its (series, origin) pairs in one call (``predict_origins``: ``predict(frame,
cutoff=<pairs>)`` from the panel the backtest read), which gathers the input windows from the
panel by index arithmetic and runs them through the network in a few large batches.

Fold geometry, per series of ``n`` rows (positions ``0 .. n-1``), with horizon ``H``, lookback
``L``, ``step`` ``s`` and ``gap`` ``g``::

    fold k = 0 .. folds-1:
        cutoff c_k  = n - 1 - H - (folds - 1 - k) * s        (forecast origin: last input row)
        inputs      = rows c_k - L + 1 .. c_k
        targets     = rows c_k + 1 .. c_k + H                 (the last fold ends at row n - 1)
        train span  = rows .. c_k - g                         (expanding: from row 0;
                                                                sliding: the last train_size rows)

With ``origins="series"`` (the default for integer steps) the positions count from each
series' own end: series of different lengths all get ``folds`` complete folds, at different
times where they end at different times, so a fold's model may have trained on other series'
rows at and after a series' targets (a warning says so, when ``"series"`` is passed). With
``origins="calendar"`` (the default for dates and datetimes) fold ``k`` has one cutoff ``T_k =
last - (H + (folds - 1 - k) * s)`` grid steps for all series: a series' origin is its last row
at or before ``T_k``, one whose data end by then is left out of the fold, one ending within
the horizon is scored on the rows it has (a model with future covariates, which it reads from
the ``H`` rows after the origin, leaves it out), and no fold's model sees a row after ``T_k - g``
(:mod:`forecaster.evaluation.origins`). Both agree for a panel whose series end together. The
``g`` rows between the end of the training span and the first target are never trained on, but
they are observed at the origin and are part of the input window (a model retrained with a
delay); the first target is ``g + 1`` rows after the training span. No fold trains on its
targets or on anything after them (with ``"series"``: on those of its own series).

Baselines: every fold is also forecast from its origin by the naive forecast (the value at the
origin, a random walk) and, with ``m > 1``, the seasonal-naive one (the last ``m`` values up to
the origin), as :func:`~forecaster.evaluation.metrics.naive` and
:func:`~forecaster.evaluation.metrics.seasonal_naive` forecast
(:func:`~forecaster.evaluation.baselines.origin_forecasts`, one gather for all folds). They are
scored on the same points, with the same MASE scales and ``scale`` divisors, into
:attr:`BacktestResult.baselines`; ``metrics``, ``by_step``, ``aggregate`` and
:meth:`BacktestResult.score` set ``n_naive`` (``n_snaive``) after ``n`` and, beside each point
metric ``<m>``, ``<m>_naive`` and the skill ratio ``<m>_skill_naive`` (``<m>`` / ``<m>_naive``:
below 1 the model beats the baseline; null where the baseline's score is 0 or infinite), then
``<m>_snaive`` and ``<m>_skill_snaive``: over the ``n_<baseline>`` points the baseline
forecast, the model's score in the ratio too (an origin with fewer than ``m`` values has no
seasonal-naive forecast). With ``level`` or ``quantiles``, the baselines have the same interval
and quantile scores (``coverage_80_naive``, ``winkler_80_snaive``, ``pinball_naive``, ...; skill
ratios beside Winkler, MSIS, pinball and sCRPS, not coverage and width:
:func:`~forecaster.evaluation.intervals.has_skill_ratio`): the split-conformal intervals and
quantiles of :func:`~forecaster.evaluation.baselines.seasonal_naive` (``m = 1`` for the naive),
each origin's calibrated on its series' values up to it only, made-up values left out
(:func:`~forecaster.evaluation.fold_baselines.baseline_forecasts`). An origin whose history
has no observed difference at some step's lag ``m ceil(h / m)`` (fewer than ``m ceil(H / m) +
1`` values, which ``seasonal_naive`` refuses) has no baseline intervals there (NaN interval
and quantile scores, with a warning) but its point forecast (asking for intervals does not
change the point scores): ``n_interval_<baseline>`` after the ``n_<baseline>`` (``n_interval``
in ``baselines``) counts the points of the baseline's interval scores, their weight when
pooled again. With MASE (or MSIS,
sCRPS) they also set ``n_scaled`` after the counts: the points whose MASE scale is defined,
those the scaled scores are the mean over (a (fold, series) origin with at most ``m`` values
has none), their weight when :func:`~forecaster.evaluation.pooling.aggregate` pools the rows
again. Values that
``missing="ffill"`` or ``"interpolate"`` made up are not scored, nor in the MASE scales.

Scores compare the forecasts (float64, as ``predict`` returns them) with the frame's own
values read as float64, the baselines and MASE scales too: a series near 1e8 changing by
units (float32 steps of 8 there) is scored on its true changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from forecaster._busy import using
from forecaster._validation import WINDOWS
from forecaster.data.dtypes import as_given_time, given_time_dtype
from forecaster.data.panel import Panel
from forecaster.evaluation.fitted import asked_intervals
from forecaster.evaluation.fold_forecasts import (
    BacktestArguments,
    BacktestForecaster,
    check_arguments,
    forecast_backtest,
)
from forecaster.evaluation.fold_scores import baseline_points, pooled_with_skill, score_folds
from forecaster.evaluation.folds import Folds, fold_points, unscored_cells
from forecaster.evaluation.intervals import IntervalColumns
from forecaster.evaluation.metrics import (
    TARGET_COLUMN,
    PointColumns,
    check_by,
    check_metric_names,
    check_scale_used,
)
from forecaster.evaluation.score_names import reads_as_score, score_columns
from forecaster.exceptions import DataValidationError

__all__ = ["WINDOWS", "BacktestForecaster", "BacktestResult", "backtest"]


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Forecasts and scores of a rolling-origin backtest (see :func:`backtest`).

    Attributes
    ----------
    forecasts : polars.DataFrame
        One row per (fold, series, horizon step): ``fold`` (0 = earliest), ``cutoff`` (the
        forecast origin, the time of the last input row), the id column (when the estimator
        has one), the time column, ``step`` (1 .. horizon), one column per target with the
        forecast (Float64), the interval and quantile columns of the forecasts when it has
        them (``<target>_lo_80``, ``<target>_q10``, ..., scored into ``coverage_80``, ...,
        ``pinball``, ``scrps``: see :mod:`forecaster.evaluation.intervals`) and
        ``<target>_actual`` with the true value (Float64: the frame's own value, not its
        float32 rounding; the filled value where the ``missing`` policy fills: not scored,
        but for ``missing="zero"``, whose zeros are the data; null, not scored, at steps after
        the end of a series that calendar folds forecast from its last rows).
    metrics : polars.DataFrame
        Scores by fold and series: ``fold``, ``cutoff``, id, ``target``, ``n`` (the points
        scored), ``n_scaled`` (with a scaled score: those of them whose MASE scale is
        defined) and one column per metric, with the baselines as in ``by_step``.
    by_step : polars.DataFrame
        Scores by horizon step over all folds and series: ``step``, ``target``, ``n``,
        ``n_naive`` (``n_snaive``), ``n_scaled`` (with a scaled score such as ``mase``: the
        points whose MASE scale is defined), metrics, each point metric ``<m>`` followed by
        ``<m>_naive``, ``<m>_skill_naive`` (and ``<m>_snaive``, ``<m>_skill_snaive``).
    aggregate : polars.DataFrame
        One row per target: every metric over all folds, series and steps, with the baselines'
        scores and skill ratios as in ``by_step``.
    baselines : polars.DataFrame
        The naive and (``m > 1``) seasonal-naive forecasts scored on the same points as the
        model (same origins, steps and MASE scales): ``baseline`` (``"naive"``,
        ``"snaive"``), ``fold``, ``cutoff``, id, ``target``, ``n``, the point metrics and,
        with ``level`` or ``quantiles``, the interval and quantile scores of their
        split-conformal intervals calibrated on the values up to each origin (NaN where the
        baseline has no forecast: see the module docstring).
    folds : polars.DataFrame
        One row per (fold, series) forecast (calendar folds leave some out, see
        ``origins``): ``fold``, id, ``cutoff``, ``train_start`` and
        ``train_end`` (first and last time of the training span of the model that made the
        fold's forecast), ``train_rows`` (its number of rows; these three are null where
        nothing was trained: also where that model was not fitted on the series, whose rows
        in its training span were too few for ``fit``; the fold forecasts it as a series new
        to the model, scaled by its own history, and scores it so, with a warning) and
        ``model`` (position in ``estimators`` of that model). For a given fitted model
        ``train_end`` is the last time of its series in the data it was fitted on (null for
        a series it was not fitted on, or a model that does not record it) and
        ``train_start`` and ``train_rows`` are null (unknown): a ``cutoff`` before
        ``train_end`` is an in-sample fold.
    estimators : list of RNNForecaster
        The fitted models, in fold order (one when ``refit=False``).
    metric_names : tuple of str
        The metrics computed.
    unscored : numpy.ndarray or None
        Rows of ``forecasts`` by targets: the points ``missing=`` made up (not scored), or None.

    Notes
    -----
    Any other breakdown is :meth:`score` with other keys, e.g. ``score(["fold", "step"])``.
    Every score pools all points of its group (see :func:`forecaster.evaluation.metrics.aggregate`);
    a skill ratio is the model's score over the baseline's on the same points: see the module.
    """

    forecasts: pl.DataFrame
    metrics: pl.DataFrame
    by_step: pl.DataFrame
    aggregate: pl.DataFrame
    folds: pl.DataFrame
    estimators: list[Any]
    metric_names: tuple[str, ...]
    baselines: pl.DataFrame
    _targets: tuple[str, ...] = field(repr=False)
    _id_col: str | None = field(repr=False)
    _id_name: str = field(repr=False)
    _columns: PointColumns = field(repr=False)
    _scales: np.ndarray = field(repr=False)  # MASE denominators per (fold, series) block
    _error_scales: tuple[pl.DataFrame, list[str]] | None = field(repr=False, default=None)
    _intervals: IntervalColumns | None = field(repr=False, default=None)
    _baseline_values: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    unscored: np.ndarray | None = field(repr=False, default=None)

    def __repr__(self) -> str:
        n_folds = self.folds["fold"].n_unique() if self.folds.height else 0
        series = self.folds[self._id_col].n_unique() if self._id_col else min(n_folds, 1)
        return (
            f"BacktestResult(folds={n_folds}, series={series}, targets={list(self._targets)}, "
            f"forecasts={self.forecasts.height}, models={len(self.estimators)}, "
            f"metrics={list(self.metric_names)})"
        )

    def score(
        self, by: Sequence[str] | str = ("fold",), metrics: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Scores grouped by any columns of :attr:`forecasts` (and by target).

        Parameters
        ----------
        by : str or sequence of str, default ("fold",)
            E.g. ``[]`` (everything), ``"step"``, ``["fold", "step"]``, or the id column;
            each column once (``target`` is always a key).
        metrics : sequence of str, optional
            A subset of :attr:`metric_names`, each once.

        Returns
        -------
        polars.DataFrame
            The ``by`` columns, ``target``, ``n`` and one column per metric, each score
            ``<m>`` (point, interval and quantile) followed by the baselines' ``<m>_naive``,
            ``<m>_skill_naive`` (and ``<m>_snaive``, ``<m>_skill_snaive`` when ``m > 1``; no
            skill ratio beside coverage and width) on the same points.
        """
        if metrics is None:
            names = list(self.metric_names)
        else:
            names = check_metric_names(metrics, has_insample="mase" in self.metric_names)
            unknown = [m for m in names if m not in self.metric_names]
            if unknown:
                raise DataValidationError(
                    f"Metrics {unknown} were not computed; this backtest has {self.metric_names}."
                )
        keys = check_by(by, {TARGET_COLUMN: "the target of each row"})
        return _score(self, by=keys, names=names)


def _score(result: BacktestResult, *, by: list[str], names: list[str]) -> pl.DataFrame:
    """Pool the forecast points of ``result`` into metrics per group ``by`` (and target)."""
    forecasts, targets = result.forecasts, result._targets
    keys = forecasts.columns[: forecasts.columns.index(targets[0])]  # fold ... step
    missing = [k for k in by if k not in keys]
    if missing:
        raise DataValidationError(
            f"Cannot group by {missing}: expected key columns of the forecasts frame among "
            f"{keys} (the columns after them hold forecast and actual values, not groups)."
        )
    _check_unlike_scores(by, result.aggregate.columns)
    scored = (by, targets, result._id_col, result._id_name, result._columns, result._scales)
    errors, made_up = result._error_scales, result.unscored  # made-up values: not scored
    points = fold_points(forecasts, *scored, errors, result._intervals, unscored=made_up)
    theirs = baseline_points(points, result._baseline_values, result._columns, result._intervals)
    keys = [*by, TARGET_COLUMN]
    return pooled_with_skill(points, theirs, keys, names, result._columns, result._intervals)


def _check_unlike_scores(by: Sequence[str], columns: Sequence[str]) -> None:
    """Refuse keys ``by`` named like a score column (``columns``, the :attr:`aggregate`'s:
    ``n``, the metrics, ...), beside which the scores would hold them, or like a column that
    :func:`~forecaster.evaluation.pooling.aggregate` reads as a score (``mse`` beside
    ``metrics=["mae"]``: :func:`~forecaster.evaluation.score_names.reads_as_score`): a time
    column named ``n`` or ``mae`` (the id's name was refused by the backtest)."""
    named = [k for k in by if (k in columns or reads_as_score(k)) and k != TARGET_COLUMN]
    if named:
        scores = [c for c in columns if c != TARGET_COLUMN]
        raise DataValidationError(
            f"Cannot group by {named}: the scores have a column of that name (their columns: "
            f"{scores}), or aggregate reads one so named as a count or score (n_scaled, a "
            "metric, a baseline's score or skill ratio, an interval score), beside which they "
            "would hold the key. Rename the column in the frame and the "
            f"estimator (e.g. frame.rename({{{named[0]!r}: 'time'}}) and time_col='time') and "
            "backtest again."
        )


def backtest(
    estimator: BacktestForecaster,
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    folds: int = 5,
    step: int | None = None,
    gap: int = 0,
    window: str = "expanding",
    train_size: int | None = None,
    refit: bool | int = False,
    metrics: Sequence[str] | str | None = None,
    m: int = 1,
    scale: float | Mapping[str, float] | pl.DataFrame | None = None,
    level: Sequence[float] | float | None = None,
    quantiles: Sequence[float] | float | None = None,
    origins: str = "auto",
) -> BacktestResult:
    """Rolling-origin backtest: forecast every series from ``folds`` origins and score them.

    The ``folds`` origins are ``step`` rows apart, the last fold forecasting the last
    ``horizon`` rows (at common times or counted from each series' end: see ``origins`` and
    the module docstring). Each fold is scored on the ``horizon`` rows after its origin.

    Parameters
    ----------
    estimator : BacktestForecaster
        An ``RNNForecaster`` (or ``LSTMForecaster``, ...): anything with what
        :class:`BacktestForecaster` lists. Its ``lookback`` and ``horizon`` define the
        windows. It is never modified: models are fitted on clones.
    frame : polars.DataFrame or polars.LazyFrame
        The whole history (id, time, targets, covariates), as for ``fit``. It is read as
        ``fit`` reads it (the estimator's frequency and ``missing=`` policy): rows are
        positions on the regular grid; a value ``"ffill"`` or ``"interpolate"`` filled is
        not scored (``"zero"``'s are). Each origin sees the data as known there: with
        ``missing="interpolate"``, a gap reaching past it is filled forward, never
        interpolated towards the values after it.
    folds : int, default 5
        Number of forecast origins per series.
    step : int, optional
        Rows between consecutive origins; default the estimator's ``horizon`` (back-to-back,
        non-overlapping test windows). ``step=1`` scores every possible origin.
    gap : int, default 0
        Rows between the end of each fold's training span and its first forecast step. They
        are not trained on but are observed at the origin (inputs of the forecast).
    window : {"expanding", "sliding"}, default "expanding"
        Training span of a fold: all rows up to its training end, or only the last
        ``train_size`` of them (with ``gap``, refused when nothing is trained: see ``refit``).
    train_size : int, optional
        Rows per series in a sliding training span (required with ``window="sliding"``).
    refit : bool or int, default False
        ``False``: one model for every fold. If ``estimator`` is fitted it is used as it is:
        its scores are out of sample only if it was fitted (and calibrated) on data up to the
        first fold's origin, and a warning names the folds whose origin precedes its last
        fitted time (in-sample scores) or, with ``level``, the end of its calibration windows
        (a parameter changed by ``set_params`` since its fit is refused, as by ``predict``).
        Otherwise a clone is fitted on the first fold's training span.
        ``True``: a clone is fitted on every fold's training span; an integer ``k``: on folds
        0, k, 2k, ..., each model forecasting its fold and the next ``k - 1`` (from their own
        origins). Clones take the estimator's parameters as they are now, never its fitted
        state. The scaler of every model is fitted on its training span only.
    metrics : sequence of str, optional
        Names from :data:`forecaster.evaluation.metrics.METRICS`; default all.
    m : int, default 1
        Seasonal period (e.g. 5 for business days, 24 for hours) of MASE's scale, which is
        computed per series and fold from the history up to the fold's origin (NaN, left out
        of the pooled scores with a warning, where it has at most ``m`` values), and of the
        seasonal-naive baseline (``m = 1``: the naive baseline only).
    scale : float, dict or polars.DataFrame, optional
        Divisor of the errors of MAE, MSE and RMSE (refused without them; see ``evaluate``).
    level, quantiles : float or sequence of float, optional
        Passed to each model's ``predict``; the interval and quantile columns are scored
        (coverage, width, Winkler, MSIS, pinball, scaled CRPS), the baselines' too. A point
        model needs its conformal calibration: pass it fitted and calibrated, refit=False.
    origins : {"auto", "calendar", "series"}, default "auto"
        ``"calendar"``: fold ``k``'s cutoff is one time ``T_k`` for all series, counted back
        from the data's last time; no fold model trains on a row after ``T_k - gap``, and a
        series that ended by ``T_k`` is left out of the fold (with a warning). ``"series"``:
        counted from each series' own end (warning when a model trains on rows at or after
        another series' targets). ``"auto"``: ``"calendar"`` for a date or datetime time
        column, ``"series"`` for integer steps (independent sequences: no warning).

    Returns
    -------
    BacktestResult
        ``forecasts``, ``metrics`` (by fold and series), ``by_step``, ``aggregate``, ``folds``,
        the fitted ``estimators``, ``baselines`` (module docstring), times in ``frame``'s dtype.

    Raises
    ------
    DataValidationError
        For invalid arguments, when no series has the ``lookback + horizon + (folds - 1) *
        step`` rows needed (shorter ones are left out with a warning) or a calendar fold's
        target, when the forecasts (``folds x series x horizon`` rows) would not fit in
        memory (checked before anything is trained), or a forecast is not a finite number.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from forecaster import RNNForecaster
    >>> t = np.arange(200)
    >>> frame = pl.DataFrame({"time": t, "y": np.sin(2 * np.pi * t / 12)})
    >>> model = RNNForecaster(target="y", lookback=24, horizon=6, hidden_size=8,
    ...                       segment_length=6, max_epochs=1, random_state=0, progress=False)
    >>> result = backtest(model, frame, folds=3)
    >>> result.forecasts.columns
    ['fold', 'cutoff', 'time', 'step', 'y', 'y_actual']
    >>> result.metrics["cutoff"].to_list()
    [181, 187, 193]
    >>> result.aggregate.columns[4:7]  # mae, the naive forecast's mae and the ratio of both
    ['mae', 'mae_naive', 'mae_skill_naive']
    """
    given = (gap, window, train_size, refit, m, metrics, origins)
    with using(estimator, "backtest") if refit is False else contextlib.nullcontext():
        args = check_arguments(estimator, folds, step, *given)  # a fit in a thread: waits
        check_scale_used(scale, args.names)
        asked = asked_intervals(level, quantiles, estimator, trains=not args.fitted)
        levels, qs = asked.get("level", ()), asked.get("quantiles", ())
        scores = score_columns(args.names, m=args.m, levels=levels, quantiles=qs)
        made = forecast_backtest(estimator, frame, args, scale, asked, scores)
    return _in_given_time(_scored(*made, args, scale, estimator.id_col), frame, estimator.time_col)


def _in_given_time(result: BacktestResult, frame: Any, time_col: str) -> BacktestResult:
    """``result`` with the times of its tables in the time dtype of ``frame`` as given (its
    ``time_col``), where a fitted model read it cast to its own (another unit, or an
    equivalent zone; :func:`~forecaster.data.dtypes.as_given_time`), so that they join back
    on the frame's time column."""
    given = given_time_dtype(frame, time_col)  # (the caller's frame: not cast)
    read_as = str(result.forecasts.schema[time_col])  # the fitted model's, where it cast it
    return dataclasses.replace(
        result,
        forecasts=as_given_time(result.forecasts, given, read_as),
        metrics=as_given_time(result.metrics, given, read_as),
        folds=as_given_time(result.folds, given, read_as),
        baselines=as_given_time(result.baselines, given, read_as),
    )


def _scored(
    forecasts: pl.DataFrame,
    panel: Panel,
    where: Folds,
    folds_frame: pl.DataFrame,
    estimators: list[Any],
    args: BacktestArguments,
    scale: Any,
    id_col: str | None,
) -> BacktestResult:
    """The :class:`BacktestResult`: the forecasts scored by fold and series, by step and over
    everything (:func:`~forecaster.evaluation.fold_scores.score_folds`) against the values of
    ``panel`` (:meth:`~forecaster.data.panel.Panel.exact_targets`) but those the ``missing``
    policy made up (:func:`~forecaster.evaluation.folds.unscored_cells`)."""
    names, made_up = args.names, unscored_cells(panel, args.missing)
    scores = score_folds(forecasts, panel, where, folds_frame, names=names, m=args.m, scale=scale,
                         id_col=id_col, unscored=made_up)  # fmt: skip
    return BacktestResult(
        forecasts=forecasts,
        metrics=scores.metrics,
        by_step=scores.by_step,
        aggregate=scores.aggregate,
        folds=folds_frame,
        estimators=estimators,
        metric_names=tuple(names),
        baselines=scores.baselines,
        _targets=panel.targets,
        _id_col=id_col,
        _id_name=panel.id_name,
        _columns=scores.columns,
        _scales=scores.scales,
        _error_scales=scores.error_scales,
        _intervals=scores.intervals,
        _baseline_values=scores.baseline_values,
        unscored=scores.unscored,
    )

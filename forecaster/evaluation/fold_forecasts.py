"""The forecasts of a rolling-origin backtest (see :mod:`forecaster.evaluation.backtest` for the
geometry), before any score: what it needs of a forecaster (:class:`BacktestForecaster`), its
arguments checked (:func:`check_arguments`), the folds placed, the models fitted and their
forecasts of every fold (:func:`forecast_backtest`), which
:func:`~forecaster.evaluation.backtest.backtest` scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.data.frames import column_tuple
from forecaster.data.panel import Panel
from forecaster.evaluation.fitted import (
    asked_intervals,
    backtest_folds_frame,
    fitted_lookback,
    fitted_spans,
    forecast_folds,
)
from forecaster.evaluation.fold_checks import (
    check_reserved,
    check_untrained_span,
    check_window,
    refit_every,
)
from forecaster.evaluation.fold_scores import check_error_scale
from forecaster.evaluation.folds import (
    Folds,
    first_fit_lookback,
    forecasts_frame,
    place_folds,
    unscored_cells,
    unscored_points,
)
from forecaster.evaluation.metrics import check_metric_names
from forecaster.evaluation.origins import uses_calendar, warn_cross_series
from forecaster.exceptions import DataValidationError, collect_warnings

__all__ = [
    "BacktestArguments",
    "BacktestForecaster",
    "FoldForecasts",
    "backtest_forecasts",
    "check_arguments",
    "forecast_backtest",
]


@runtime_checkable
class BacktestForecaster(Protocol):
    """What :func:`~forecaster.evaluation.backtest.backtest` needs of a forecaster
    (``RNNForecaster`` and its kin have it).

    Attributes
    ----------
    lookback : int or "auto"
        Input window length (``"auto"``: chosen by the fit on the data).
    horizon : int
        Steps forecast at once.
    time_col : str
    id_col : str or None

    Methods
    -------
    validate_params()
        Check the parameters (raising ``DataValidationError``).
    get_params(deep=True)
        For :func:`sklearn.base.clone` (every fold's model is a clone), and ``missing``.
    fit(frame)
        Fit on a training span of the frame.
    predict(frame, cutoff=pairs)
        Forecasts from many origins at once: ``cutoff`` a frame of (``id_col``,
        ``time_col``) pairs (a Series of times without ``id_col``); ``horizon`` rows per pair
        in the pairs' order, one column per target.
    predict_origins(frame, panel, series, rows, level=None, quantiles=None)
        The same forecasts (what a backtest calls) of the origins at the global ``rows`` of
        ``panel`` (the frame as ``read_frame`` reads it; ``series``: each origin's series),
        from that panel where reading the frame again would give the same.
    check_fitted(action)
        Refuse to ``action`` an unfitted model or one whose prediction parameters changed.
    lookback_for(panel, span=None)
        The lookback a fit on ``panel`` (only rows ``span``) uses (a fitted model's is its
        ``lookback_``).
    series_kept(panel, lookback, span=None)
        The series a fit on ``panel`` (only rows ``span``) with ``lookback`` keeps (those
        with a training window before its validation hold-out), and the rows each holds out.
    read_frame(frame, as_fitted=...)
        The frame collected and its :class:`~forecaster.data.panel.Panel`, as the forecaster
        reads it (``as_fitted``: checked against the training schema, at the fitted
        frequency).
    __sklearn_is_fitted__()
        Whether it is fitted.
    """

    lookback: int | str
    horizon: int
    time_col: str
    id_col: str | None

    def validate_params(self) -> None: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def fit(self, frame: pl.DataFrame, y: None = None) -> Any: ...

    def predict(
        self, frame: pl.DataFrame, *, cutoff: Any = None, level: Any = None, quantiles: Any = None
    ) -> pl.DataFrame: ...

    def predict_origins(
        self,
        frame: pl.DataFrame,
        panel: Panel,
        series: np.ndarray,
        rows: np.ndarray,
        *,
        level: Any = None,
        quantiles: Any = None,
    ) -> pl.DataFrame: ...

    def check_fitted(self, action: str) -> None: ...

    def lookback_for(
        self, panel: Panel, span: tuple[np.ndarray, np.ndarray] | None = None
    ) -> int: ...

    def series_kept(
        self, panel: Panel, lookback: int, span: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def read_frame(self, frame: Any, *, as_fitted: bool) -> tuple[pl.DataFrame, Panel]: ...

    def __sklearn_is_fitted__(self) -> bool: ...


def _members() -> list[str]:
    """What :class:`BacktestForecaster` lists: its attributes, then its methods."""
    methods = [n for n, v in vars(BacktestForecaster).items() if callable(v)]
    public = [n for n in methods if not n.startswith("_") or n == "__sklearn_is_fitted__"]
    return [*BacktestForecaster.__annotations__, *public]


def forecast_backtest(
    estimator: BacktestForecaster,
    frame: pl.DataFrame | pl.LazyFrame,
    args: BacktestArguments,
    scale: Any,
    asked: dict[str, Any],
    scores: Sequence[str] | None,
    label: str = "backtest",
) -> tuple[pl.DataFrame, Panel, Folds, pl.DataFrame, list[Any]]:
    """The forecasts frame of :func:`~forecaster.evaluation.backtest.backtest` (the fits'
    warnings summed up by fold, as the ``label``'s: "In 2 of 5 backtest folds"), the panel
    of the frame's exact values they are scored against, the folds placed, the folds frame
    and the models. ``scores``: the columns of the score frames that will hold the id
    (:func:`~forecaster.evaluation.score_names.score_columns`; None when nothing is scored),
    refused as its name before any fit. Scored forecasts from origins at steps whose targets
    (or past covariates) ``missing=`` made up are named in one warning (see
    :func:`~forecaster.evaluation.fitted.forecast_folds`)."""
    with collect_warnings(label, *_fit_units(args.every)):
        frame, panel = estimator.read_frame(frame, as_fitted=args.fitted)
        check_reserved(panel, estimator.id_col, estimator.time_col, scores)
        where = _place(panel, estimator, args, calendar=uses_calendar(args.origins, panel.time))
        check_error_scale(scale, panel, where, has_id=estimator.id_col is not None)  # first
        folds_frame = backtest_folds_frame(panel, where, estimator, args.origins)
        estimators, predicted = forecast_folds(
            estimator, frame, panel, where, folds_frame, asked, tell_origins=scores is not None
        )
    folds_frame = fitted_spans(folds_frame, estimators, where, panel.id_name)  # what each fit kept
    id_col, time_col = estimator.id_col, estimator.time_col
    exact = panel.exact_targets(frame)  # scored against the frame's values, not float32's
    forecasts = forecasts_frame(exact, where, predicted, horizon=int(estimator.horizon),
                                time_col=time_col, id_col=id_col)  # fmt: skip
    folds_frame = folds_frame.drop(panel.id_name) if id_col is None else folds_frame
    return forecasts, exact, where, folds_frame, estimators


@dataclass(frozen=True, eq=False)
class FoldForecasts:
    """The forecasts of a backtest's folds, unscored (:func:`backtest_forecasts`): its
    ``forecasts``, ``folds`` and ``estimators`` as
    :class:`~forecaster.evaluation.backtest.BacktestResult` has them, and ``unscored``, the
    forecast points (rows of ``forecasts`` by targets) whose actual value the ``missing``
    policy made up (None: none)."""

    forecasts: pl.DataFrame
    folds: pl.DataFrame
    estimators: list[Any]
    unscored: np.ndarray | None


def backtest_forecasts(
    estimator: BacktestForecaster,
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    folds: int = 5,
    step: int | None = None,
    refit: bool | int = False,
    quantiles: Sequence[float] | float | None = None,
    origins: str = "auto",
    label: str = "backtest",
) -> FoldForecasts:
    """The forecasts of :func:`~forecaster.evaluation.backtest.backtest` with these arguments
    (the others at their defaults), without any score: what ``calibrate`` reads. The id
    column may be named like a score column (``n``, ``mae_naive``): no score frame holds
    it. ``label``: what the summaries of the fits' warnings name them part of (``calibrate``:
    "In 2 of 5 calibration folds")."""
    args = check_arguments(estimator, folds, step, 0, "expanding", None, refit, 1, None, origins)
    asked = asked_intervals(None, quantiles, estimator, trains=not args.fitted)
    forecasts, exact, where, folds_frame, estimators = forecast_backtest(
        estimator, frame, args, None, asked, None, label
    )
    cells = unscored_cells(exact, args.missing)
    made_up = unscored_points(exact, where, int(estimator.horizon), cells)
    return FoldForecasts(forecasts, folds_frame, estimators, made_up)


def _fit_units(every: int) -> tuple[str, str]:
    """What the summary of a backtest's warnings counts: its folds, or with a model per
    ``every > 1`` folds its fits, by the folds they were fitted at ("In 2 of 2 backtest fits
    (at folds 0, 3)"); see :func:`~forecaster.exceptions.collect_warnings`."""
    return ("fit", "at fold") if every > 1 else ("fold", "fold")


@dataclass(frozen=True)
class BacktestArguments:
    """The checked arguments of :func:`~forecaster.evaluation.backtest.backtest`."""

    folds: int
    step: int
    gap: int
    train_size: int | None  # None: an expanding window
    every: int  # folds per model
    m: int
    names: list[str]
    fitted: bool  # the given fitted model forecasts every fold
    missing: Any  # the estimator's policy: the values it made up are not scored
    origins: str  # "auto", "calendar" or "series" (see forecaster.evaluation.origins)


def _place(
    panel: Panel, estimator: BacktestForecaster, args: BacktestArguments, *, calendar: bool
) -> Folds:
    """The folds of :func:`~forecaster.evaluation.backtest.backtest`
    (:func:`~forecaster.evaluation.folds.place_folds`): at ``calendar`` cutoffs, or from each
    series' end (``origins="series"`` asked for: warning when a model trains past another
    series' targets, :func:`~forecaster.evaluation.origins.warn_cross_series`). A model
    with future covariates reads them from the ``horizon`` rows after each origin, so a
    calendar fold leaves out a series that ends within them (it cannot be forecast there)."""
    future = column_tuple(estimator.get_params(deep=False).get("future_covariates"))
    if args.fitted:
        lookback = fitted_lookback(estimator)
    else:
        lookback = first_fit_lookback(
            panel,
            estimator,
            folds=args.folds,
            step=args.step,
            gap=args.gap,
            train_size=args.train_size,
            calendar=calendar,
        )
    where = place_folds(
        panel, lookback=lookback, horizon=int(estimator.horizon), folds=args.folds,
        step=args.step, gap=args.gap, train_size=args.train_size, every=args.every,
        trains=not args.fitted, auto=not args.fitted and estimator.lookback == "auto",
        calendar=calendar, fit_keeps=estimator.series_kept,
        after=int(estimator.horizon) if future else 1,
    )  # fmt: skip
    if where.trains and args.origins == "series":
        warn_cross_series(panel, where.kept, where.local_cut, where.train_start, where.train_end)
    return where


def check_arguments(
    estimator: Any,
    folds: Any,
    step: Any,
    gap: Any,
    window: Any,
    train_size: Any,
    refit: Any,
    m: Any,
    metrics: Any,
    origins: Any,
) -> BacktestArguments:
    """Check the estimator and the arguments of
    :func:`~forecaster.evaluation.backtest.backtest`, before any work."""
    if not isinstance(estimator, BacktestForecaster):
        lacks = [name for name in _members() if not hasattr(estimator, name)]
        raise DataValidationError(
            f"backtest needs an RNNForecaster (or LSTMForecaster, GRUForecaster, ...), got "
            f"{type(estimator).__name__}, which lacks {lacks}: a backtest calls what "
            "forecaster.evaluation.backtest.BacktestForecaster lists. Add them, or subclass "
            "RNNForecaster."
        )
    estimator.validate_params()
    horizon = int(estimator.horizon)
    folds, step, gap = check("folds", folds), check("step", step), check("gap", gap)
    step = horizon if step is None else step
    window, train_size = check_window(window, train_size)
    every = refit_every(refit, folds)
    m = check("m", m)
    names = check_metric_names(metrics, has_insample=True)
    fitted = refit is False and estimator.__sklearn_is_fitted__()  # used as it is
    if fitted:
        estimator.check_fitted("backtest")  # refuses parameters set after its fit
        check_untrained_span(gap, window)
    lookback = None if estimator.lookback == "auto" else int(estimator.lookback)  # auto: at fit
    if fitted:
        lookback = fitted_lookback(estimator)
    least = horizon + (lookback or 0)
    if window == "sliding" and not fitted and lookback is not None and train_size < least:
        raise DataValidationError(
            f"train_size={train_size} is shorter than one training window (lookback + horizon "
            f"= {least}). Use a larger train_size."
        )
    return BacktestArguments(
        folds=folds,
        step=step,
        gap=gap,
        train_size=train_size if window == "sliding" else None,
        every=every,
        m=m,
        names=names,
        fitted=fitted,
        missing=estimator.get_params(deep=False).get("missing"),
        origins=check("origins", origins),
    )

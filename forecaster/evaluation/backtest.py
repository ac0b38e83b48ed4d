"""Rolling-origin backtests of :class:`~forecaster.RNNForecaster`.

:func:`backtest` forecasts every series from ``folds`` origins and scores the forecasts with
:mod:`forecaster.evaluation.metrics`. Without refits, all (series, origin) input windows are
gathered from
the :class:`~forecaster.data.core.Panel` by index arithmetic and run through the network in a few
large batches, instead of one :meth:`~forecaster.RNNForecaster.predict` call per origin.

Fold geometry, per series of ``n`` rows (positions ``0 .. n-1``), with horizon ``H``, lookback
``L``, ``step`` ``s`` and ``gap`` ``g``::

    fold k = 0 .. folds-1:
        cutoff c_k  = n - 1 - H - (folds - 1 - k) * s        (forecast origin: last input row)
        inputs      = rows c_k - L + 1 .. c_k
        targets     = rows c_k + 1 .. c_k + H                 (the last fold ends at row n - 1)
        train span  = rows .. c_k - g                         (expanding: from row 0;
                                                                sliding: the last train_size rows)

Origins are positions counted from each series' own end, so series of different lengths or end
times all get ``folds`` complete folds; for a panel whose series end at the same time they are
the same calendar times for every series. The ``g`` rows between the end of the training span
and the first target are never trained on, but they are observed at the origin and are part of
the input window (a model retrained with a delay); the first target is ``g + 1`` rows after
the training span. No fold trains on its targets or on anything after them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
from sklearn.base import clone

from forecaster import _validation
from forecaster._validation import check, check_allocation
from forecaster.data.core import Panel, check_schema, collect_frame
from forecaster.data.scaling import PanelScaler
from forecaster.estimators.core import PREDICT_BATCH, RNNForecaster
from forecaster.evaluation.metrics import (
    TARGET_COLUMN,
    PointColumns,
    check_by,
    check_metric_names,
    error_scale_frame,
    summarize_points,
    temporary_names,
)
from forecaster.exceptions import DataValidationError, ForecasterWarning
from forecaster.training.loop import resolve_device

__all__ = ["WINDOWS", "BacktestResult", "backtest"]

WINDOWS = _validation.WINDOWS
"""Training window kinds: all history up to the fold's training end, or its last rows."""

_RESERVED = ("fold", "cutoff", "step", TARGET_COLUMN)
_MAX_CHUNK = 16384
_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Forecasts and scores of a rolling-origin backtest (see :func:`backtest`).

    Attributes
    ----------
    forecasts : polars.DataFrame
        One row per (fold, series, horizon step): ``fold`` (0 = earliest), ``cutoff`` (the
        forecast origin, the time of the last input row), the id column (when the estimator
        has one), the time column, ``step`` (1 .. horizon), one column per target with the
        forecast (Float32) and ``<target>_actual`` with the true value (the validated
        panel's value: float32, and filled where the estimator's ``missing`` policy fills).
    metrics : polars.DataFrame
        Scores by fold and series: ``fold``, ``cutoff``, id, ``target``, ``n`` and one column
        per metric.
    by_step : polars.DataFrame
        Scores by horizon step over all folds and series: ``step``, ``target``, ``n``, metrics.
    aggregate : polars.DataFrame
        One row per target: every metric over all folds, series and steps.
    folds : polars.DataFrame
        One row per (fold, series): ``fold``, id, ``cutoff``, ``train_start`` and
        ``train_end`` (first and last time of the training span of the model that made the
        fold's forecast), ``train_rows`` (its number of rows; these three are null where
        nothing was trained, e.g. for a given fitted model) and ``model`` (position in
        ``estimators`` of that model).
    estimators : list of RNNForecaster
        The fitted models, in fold order (one when ``refit=False``).
    metric_names : tuple of str
        The metrics computed.

    Notes
    -----
    Any other breakdown is :meth:`score` with other keys, e.g. ``score(["fold", "step"])``.
    Every score pools all points of its group (see :func:`forecaster.evaluation.metrics.aggregate`).
    """

    forecasts: pl.DataFrame
    metrics: pl.DataFrame
    by_step: pl.DataFrame
    aggregate: pl.DataFrame
    folds: pl.DataFrame
    estimators: list[Any]
    metric_names: tuple[str, ...]
    _targets: tuple[str, ...] = field(repr=False)
    _id_col: str | None = field(repr=False)
    _id_name: str = field(repr=False)
    _columns: PointColumns = field(repr=False)
    _scales: pl.DataFrame = field(repr=False)
    _error_scales: tuple[pl.DataFrame, list[str]] | None = field(repr=False, default=None)

    def __repr__(self) -> str:
        n_folds = self.folds["fold"].n_unique() if self.folds.height else 0
        series = self.folds.height // max(n_folds, 1)
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
            The ``by`` columns, ``target``, ``n`` and one column per metric.
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
    missing = [k for k in by if k not in forecasts.columns or k in targets]
    if missing:
        raise DataValidationError(
            f"Cannot group by {missing}: expected columns of the forecasts frame among "
            f"{[c for c in forecasts.columns if c not in targets]}."
        )
    points = _points(
        forecasts,
        by,
        targets,
        result._id_col,
        result._id_name,
        result._columns,
        result._scales,
        result._error_scales,
    )
    return summarize_points(points, [*by, TARGET_COLUMN], names, result._columns)


def _points(
    forecasts: pl.DataFrame,
    keys: Sequence[str],
    targets: Sequence[str],
    id_col: str | None,
    id_name: str,
    columns: PointColumns,
    scales: pl.DataFrame,
    error_scales: tuple[pl.DataFrame, list[str]] | None,
) -> pl.DataFrame:
    """One row per (forecast row, target) with the columns ``keys`` and those that
    :func:`forecaster.evaluation.metrics.summarize_points` reads (named by ``columns``: forecast,
    actual,
    MASE scale, error scale). Without an id column, the series column ``id_name`` (that of
    ``scales``) is added."""
    if id_col is None:
        forecasts = forecasts.with_columns(pl.lit(0, pl.UInt8).alias(id_name))
    carried = list(dict.fromkeys([*keys, "fold", id_name]))
    points = pl.concat(
        [
            forecasts.select(
                *carried,
                pl.lit(t).alias(TARGET_COLUMN),
                pl.col(t).cast(pl.Float64).alias(columns.forecast),
                pl.col(f"{t}_actual").cast(pl.Float64).alias(columns.actual),
            )
            for t in targets
        ]
    )
    on = ["fold", id_name, TARGET_COLUMN]
    points = points.join(scales, on=on, how="left", maintain_order="left")
    if error_scales is not None:
        divisors, on = error_scales
        points = points.join(divisors, on=on, how="left", maintain_order="left")
    return points


def _refit_every(refit: Any, folds: int) -> int:
    """Folds per model: ``folds`` for refit=False, 1 for True, k for an integer k."""
    refit = check("refit", refit)
    if isinstance(refit, bool):
        return 1 if refit else folds
    return refit


def backtest(
    estimator: RNNForecaster,
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
) -> BacktestResult:
    """Rolling-origin backtest: forecast every series from ``folds`` origins and score them.

    The origins are the last ``folds`` positions of each series spaced ``step`` rows apart
    such that the last fold forecasts the series' last ``horizon`` rows (see the module
    docstring for the exact geometry). Each fold is scored on the ``horizon`` rows after its
    origin.

    Parameters
    ----------
    estimator : RNNForecaster
        Its ``lookback`` and ``horizon`` define the windows. It is never modified: models are
        fitted on clones.
    frame : polars.DataFrame or polars.LazyFrame
        The whole history (id, time, targets, covariates), as for ``fit``.
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
        ``train_size`` of them.
    train_size : int, optional
        Rows per series in a sliding training span (required with ``window="sliding"``).
    refit : bool or int, default False
        ``False``: one model for every fold. If ``estimator`` is fitted it is used as it is
        (the backtest is then only leak-free if it was fitted on data up to the first fold's
        training end; a parameter that shapes predictions changed with ``set_params`` since
        its fit is refused, as by ``predict``); otherwise a clone is fitted on the first
        fold's training span. The forecasts of all folds are then computed in large batches.
        ``True``: a clone is fitted on every fold's training span; an integer ``k``: on folds
        0, k, 2k, ..., each model forecasting its fold and the next ``k - 1`` (from their own
        origins). Clones take the estimator's parameters as they are now, never its fitted
        state. The scaler of every model is fitted on its training span only.
    metrics : sequence of str, optional
        Names from :data:`forecaster.evaluation.metrics.METRICS`; default all.
    m : int, default 1
        Seasonal period of MASE's scale, which is computed per series and fold from the
        history up to the fold's origin.
    scale : float, dict or polars.DataFrame, optional
        Divisor of the errors of MAE, MSE and RMSE (see
        :func:`forecaster.evaluation.metrics.evaluate`).

    Returns
    -------
    BacktestResult
        ``forecasts``, ``metrics`` (by fold and series), ``by_step``, ``aggregate``, ``folds``
        and the fitted ``estimators``.

    Raises
    ------
    DataValidationError
        For invalid arguments, or when no series has the ``lookback + horizon + (folds - 1) *
        step`` rows needed (shorter series are dropped with a warning), or when the forecasts
        (``folds x series x horizon`` rows) would not fit in memory (checked before anything
        is trained or allocated), or a forecast is not a finite float32 number.

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
    """
    if not isinstance(estimator, RNNForecaster):
        raise DataValidationError(
            f"backtest needs an RNNForecaster (or LSTMForecaster, GRUForecaster, ...), got "
            f"{type(estimator).__name__}."
        )
    estimator.validate_params()
    lookback, horizon = int(estimator.lookback), int(estimator.horizon)
    folds, step, gap = check("folds", folds), check("step", step), check("gap", gap)
    step = horizon if step is None else step
    window, train_size = check("window", window), check("train_size", train_size)
    if window == "sliding":
        if train_size is None:
            raise DataValidationError(
                "window='sliding' needs train_size, the number of rows per series in each "
                "fold's training span (e.g. train_size=1000)."
            )
    elif train_size is not None:
        raise DataValidationError(
            "train_size applies to window='sliding' only; the expanding window trains on all "
            "rows up to each fold's training end. Pass window='sliding' or drop train_size."
        )
    every = _refit_every(refit, folds)
    m = check("m", m)
    names = check_metric_names(metrics, has_insample=True)
    fitted = refit is False and hasattr(estimator, "network_")  # used as it is
    if fitted:
        estimator._check_fitted("backtest")  # refuses parameters set after its fit
    trains = not fitted
    if trains and window == "sliding" and train_size < lookback + horizon:
        raise DataValidationError(
            f"train_size={train_size} is shorter than one training window (lookback + horizon "
            f"= {lookback + horizon}). Use a larger train_size."
        )
    if fitted:
        check_schema(frame, estimator.schema_, id_col=estimator.id_col, time_col=estimator.time_col)
    frame = collect_frame(frame)
    columns = estimator._columns()
    panel = Panel.from_frame(
        frame,
        **columns,
        freq=str(estimator.freq_) if fitted else estimator.freq,
        missing=estimator.missing,
    )
    id_col = estimator.id_col
    id_name = panel.id_name
    clash = [c for c in (*panel.columns, id_col, estimator.time_col) if c in _RESERVED]
    clash += [f"{t}_actual" for t in panel.targets if f"{t}_actual" in panel.columns]
    if clash:
        raise DataValidationError(
            f"Columns {clash} clash with the output columns of a backtest {_RESERVED} or "
            "'<target>_actual'. Rename them."
        )

    # -- folds ------------------------------------------------------------------------------
    needed = lookback + horizon + (folds - 1) * step
    keep = panel.lengths >= needed
    if not keep.any():
        raise DataValidationError(
            f"Too few rows for {folds} folds: every series needs at least lookback + horizon + "
            f"(folds - 1) * step = {lookback} + {horizon} + {folds - 1} * {step} = {needed} "
            f"rows; the longest has {int(panel.lengths.max())}. Use fewer folds, a smaller "
            "step, or a shorter lookback or horizon."
        )
    if not keep.all():
        dropped = panel.keys[id_name].filter(pl.Series(~keep)).head(10).to_list()
        warnings.warn(
            f"Left out {int((~keep).sum())} series shorter than the {needed} rows that {folds} "
            f"folds need: {dropped}.",
            ForecasterWarning,
            stacklevel=2,
        )
    kept = np.flatnonzero(keep)
    n_kept = len(kept)
    _check_backtest_size(folds, n_kept, horizon, panel.n_targets)
    fold_ids = np.arange(folds)
    # local position of each (fold, series) origin, fold-major
    local_cut = panel.lengths[kept][None, :] - 1 - horizon - (folds - 1 - fold_ids[:, None]) * step
    train_end = local_cut - gap
    if window == "sliding":
        train_start = np.maximum(train_end - int(train_size) + 1, 0)
    else:
        train_start = np.zeros_like(train_end)
    if trains:
        span = train_end[::every] - train_start[::every] + 1
        if (span < lookback + horizon).all():
            longest = int(panel.lengths[kept].max())
            rows = max(int(span.max()), 0)
            raise DataValidationError(
                f"The training span of some fold is too short: with folds={folds}, step={step} "
                f"and gap={gap:,}, the first fold trains on at most {rows:,} rows per series "
                + (
                    "(the gap is longer than the data before the fold's origin) "
                    if not rows
                    else ""
                )
                + f"but one training window takes lookback + horizon = {lookback + horizon}; "
                f"the longest series has {longest:,} rows. Use fewer folds, a smaller step or "
                "gap, or longer series."
            )
    offsets = panel.offsets[kept][None, :]
    model_of_fold = fold_ids // every
    # the training span shown for a fold is that of the model that forecasts it
    train_start = train_start[model_of_fold * every]
    train_end = train_end[model_of_fold * every]
    train_rows = (train_end - train_start + 1).ravel()
    has_span = pl.Series(train_rows > 0) if trains else pl.Series([False] * train_rows.size)
    folds_frame = pl.DataFrame(
        {
            "fold": np.repeat(fold_ids, n_kept).astype(np.int32),
            id_name: panel.keys[id_name].gather(np.tile(kept, folds)),
            "cutoff": panel.time.gather((offsets + local_cut).ravel()),
            "train_start": panel.time.gather((offsets + train_start).ravel()),
            "train_end": panel.time.gather((offsets + np.maximum(train_end, 0)).ravel()),
            "train_rows": np.maximum(train_rows, 0).astype(np.int64),
            "model": np.repeat(model_of_fold, n_kept).astype(np.int32),
        }
    ).with_columns(  # no training span: a given fitted model, or too short a history
        pl.when(has_span).then(pl.col(c)).alias(c)
        for c in ("train_start", "train_end", "train_rows")
    )

    # -- models and forecasts -----------------------------------------------------------------
    estimators: list[RNNForecaster] = []
    predictions = []
    for first in range(0, folds, every):
        group = fold_ids[first : first + every]
        if trains:
            bounds = folds_frame.filter(pl.col("fold") == first)
            model = clone(estimator).fit(_training_rows(frame, bounds, estimator))
        else:
            model = estimator
        estimators.append(model)
        rows = (offsets + local_cut[group]).ravel()  # global row of each origin
        series = np.tile(kept, len(group))
        predictions.append(_predict_origins(model, panel, series, rows, local_cut[group]))
    pred = np.concatenate(predictions)  # (folds * n_kept, horizon, n_targets)

    # -- frames -------------------------------------------------------------------------------
    nt = panel.n_targets
    origin_rows = (offsets + local_cut).ravel()
    target_rows = (origin_rows[:, None] + 1 + np.arange(horizon)).ravel()
    columns: dict[str, Any] = {
        "fold": np.repeat(fold_ids, n_kept * horizon).astype(np.int32),
        "cutoff": panel.time.gather(np.repeat(origin_rows, horizon)),
    }
    if id_col is not None:
        columns[id_col] = panel.keys[id_name].gather(np.repeat(np.tile(kept, folds), horizon))
    columns[estimator.time_col] = panel.time.gather(target_rows)
    columns["step"] = np.tile(np.arange(1, horizon + 1, dtype=np.int32), folds * n_kept)
    flat = pred.reshape(-1, nt)
    actual = panel.values[target_rows, :nt]
    for j, t in enumerate(panel.targets):
        columns[t] = flat[:, j]
    for j, t in enumerate(panel.targets):
        columns[f"{t}_actual"] = actual[:, j]
    forecasts = pl.DataFrame(columns)
    point_columns = PointColumns.avoiding([*forecasts.columns, id_name, TARGET_COLUMN])
    scales = _mase_scales(panel, kept, local_cut, m, point_columns.mase_scale)
    error_scales = (
        error_scale_frame(
            scale,
            id_name,
            panel.targets,
            id_col is not None,
            panel.keys[id_name].gather(kept),
            column=point_columns.error_scale,
        )
        if scale is not None
        else None
    )
    if error_scales is not None and id_name in error_scales[1]:
        divisors = error_scales[0].with_columns(pl.col(id_name).cast(panel.keys[id_name].dtype))
        error_scales = (divisors, error_scales[1])
    if id_col is None:
        folds_frame = folds_frame.drop(id_name)
    by_series = ["fold", "cutoff"] + ([id_col] if id_col is not None else [])
    points = _points(
        forecasts,
        [*by_series, "step"],
        panel.targets,
        id_col,
        id_name,
        point_columns,
        scales,
        error_scales,
    )

    def summary(keys: list[str]) -> pl.DataFrame:
        return summarize_points(points, [*keys, TARGET_COLUMN], names, point_columns)

    return BacktestResult(
        forecasts=forecasts,
        metrics=summary(by_series),
        by_step=summary(["step"]),
        aggregate=summary([]),
        folds=folds_frame,
        estimators=estimators,
        metric_names=tuple(names),
        _targets=panel.targets,
        _id_col=id_col,
        _id_name=id_name,
        _columns=point_columns,
        _scales=scales,
        _error_scales=error_scales,
    )


def _check_backtest_size(folds: int, n_series: int, horizon: int, n_targets: int) -> None:
    """Refuse a backtest whose forecasts and scored points (``folds x series x horizon``
    rows) would not fit in memory (:func:`forecaster._validation.check_allocation`), before
    anything is allocated or trained."""
    rows = folds * n_series * horizon
    # per row: fold, cutoff, id, time, step, forecasts and actual values (float32), and per
    # target a scored point (keys, target, forecast, actual, scales as float64) and copies
    per_row = 128 + 320 * n_targets
    check_allocation(
        rows * per_row,
        what=f"The backtest's forecasts ({rows:,} rows: folds x series x horizon)",
        grows_with=f"folds={folds:,} x {n_series:,} series x horizon={horizon:,}",
        fix="Use fewer folds (or a larger step), a shorter horizon, or fewer series at a time.",
    )


def _training_rows(frame: pl.DataFrame, bounds: pl.DataFrame, estimator: RNNForecaster):
    """Rows of ``frame`` inside each series' training span [train_start, train_end] (series
    without a span in ``bounds`` have none)."""
    time = pl.col(estimator.time_col)
    bounds = bounds.filter(pl.col("train_rows") > 0)
    if estimator.id_col is None:
        return frame.filter(time.is_between(bounds["train_start"][0], bounds["train_end"][0]))
    start, end = temporary_names(frame.columns, "__start__", "__end__")
    spans = bounds.select(
        estimator.id_col,
        pl.col("train_start").alias(start),
        pl.col("train_end").alias(end),
    )
    return (
        frame.join(spans, on=estimator.id_col, how="inner", maintain_order="left")
        .filter(time.is_between(pl.col(start), pl.col(end)))
        .drop(start, end)
    )


def _predict_origins(
    model: RNNForecaster,
    panel: Panel,
    series: np.ndarray,
    rows: np.ndarray,
    local_cut: np.ndarray,
) -> np.ndarray:
    """Forecasts (B, horizon, n_targets) float32 from the origins at panel ``rows`` (series
    ``series``), computed exactly as :meth:`RNNForecaster.predict` does, in batches.

    ``local_cut`` (n_folds, n_kept) locates the origins within their series, for series the
    model has not seen in ``fit``: those are scaled with statistics of their history up to
    each origin, as ``predict(frame, cutoff=origin)`` would.
    """
    lookback, horizon = int(model.lookback), int(model.horizon)
    # what the network sees: transformed targets (Box-Cox lambdas of unseen series fitted on
    # their history up to the first origin), calendar features
    history = None
    if model.target_transform == "boxcox":
        position = np.arange(panel.offsets[-1]) - np.repeat(panel.offsets[:-1], panel.lengths)
        limit = np.full(panel.n_series, -1)
        limit[series[: local_cut.shape[1]]] = local_cut[0]
        history = position <= limit[panel.series_of_rows()]
    panel, lambdas = model._predict_panel(panel, history=history)
    center, scale = _window_scaling(model, panel, series, local_cut)
    nt, nf = panel.n_targets, panel.n_future
    device = resolve_device(model.device)
    network = model._network_on(device)
    lags = np.arange(lookback)
    ahead = np.arange(1, horizon + 1)
    chunk = _chunk_size(network, lookback, panel.n_features, nt)
    out = []
    with torch.inference_mode():
        for lo in range(0, len(rows), chunk):
            hi = min(lo + chunk, len(rows))
            starts = rows[lo:hi] - (lookback - 1)
            x = torch.from_numpy(panel.values[starts[:, None] + lags])
            c, s = center[lo:hi], scale[lo:hi]
            xs = (x.double() - c[:, None, :]) / s[:, None, :]
            future = None
            if nf:
                fv = torch.from_numpy(panel.values[rows[lo:hi, None] + ahead][..., -nf:])
                future = ((fv.double() - c[:, None, -nf:]) / s[:, None, -nf:]).float().to(device)
            y = network(xs.float().to(device), future).float().cpu()
            pred = (y.double() * s[:, None, :nt] + c[:, None, :nt]).numpy()
            rows_lambdas = None if lambdas is None else lambdas[series[lo:hi]]
            ids = panel.keys[panel.id_name].gather(series[lo:hi])
            out.append(model._forecast_values(pred, rows_lambdas, ids))
    return np.concatenate(out) if out else np.zeros((0, horizon, nt), np.float32)


def _chunk_size(network: Any, lookback: int, n_features: int, n_targets: int) -> int:
    """Windows per network call. Large batches run the recurrent kernels far more efficiently
    per window than small ones; the chunk is bounded so that its float64 inputs and the
    recurrent activations stay near ``_CHUNK_BYTES``, and never below ``predict``'s batch."""
    hidden = int(getattr(network, "hidden_size", 128)) * int(getattr(network, "num_layers", 1))
    if getattr(network, "head", None) == "segment":  # sequences of segments, per channel
        activations = int(getattr(network, "n_segments", lookback)) * n_targets
    else:
        activations = lookback
    per_window = 8 * lookback * n_features + 4 * 3 * hidden * activations
    return int(min(_MAX_CHUNK, max(PREDICT_BATCH, _CHUNK_BYTES // per_window)))


def _window_scaling(
    model: RNNForecaster, panel: Panel, series: np.ndarray, local_cut: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window (center, scale) float64 tensors (B, n_features), as ``predict`` uses them."""
    fitted_row, known = model._fitted_rows(panel)
    center = model.scaler_.center_[fitted_row[series]].copy()
    scale = model.scaler_.scale_[fitted_row[series]].copy()
    unknown = ~known[series]
    if unknown.any():
        # per origin: statistics of the history up to it (fit per fold, vectorised over series)
        position = np.arange(panel.offsets[-1]) - np.repeat(panel.offsets[:-1], panel.lengths)
        row_series = panel.series_of_rows()
        n_kept = local_cut.shape[1]
        for k in range(local_cut.shape[0]):
            block = slice(k * n_kept, (k + 1) * n_kept)
            need = unknown[block]
            if not need.any():
                continue
            limit = np.full(panel.n_series, -1)
            limit[series[block]] = local_cut[k]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ForecasterWarning)
                own = PanelScaler(model.scaling).fit(panel, mask=position <= limit[row_series])
            idx = np.flatnonzero(need) + k * n_kept
            center[idx] = own.center_[series[idx]]
            scale[idx] = own.scale_[series[idx]]
    return torch.from_numpy(center), torch.from_numpy(scale)


def _mase_scales(
    panel: Panel, kept: np.ndarray, local_cut: np.ndarray, m: int, column: str
) -> pl.DataFrame:
    """MASE denominators per (fold, series, target): mean |y_t - y_{t-m}| over rows <= origin,
    in the column ``column``."""
    nt = panel.n_targets
    values = panel.values[:, :nt].astype(np.float64)
    position = np.arange(len(values)) - np.repeat(panel.offsets[:-1], panel.lengths)
    diffs = np.zeros_like(values)
    diffs[m:] = np.abs(values[m:] - values[:-m])
    diffs[position < m] = 0.0
    cum = np.vstack([np.zeros((1, nt)), np.cumsum(diffs, axis=0)])
    folds, n_kept = local_cut.shape
    start = panel.offsets[kept][None, :]
    count = (local_cut - m + 1).ravel()
    end = (start + local_cut + 1).ravel()
    first = np.broadcast_to(start + m, local_cut.shape).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        total = cum[np.minimum(end, len(cum) - 1)] - cum[np.minimum(first, len(cum) - 1)]
        scale = np.where(count[:, None] > 0, total / count[:, None], math.nan)
    id_name = panel.id_name
    base = {
        "fold": np.repeat(np.arange(folds), n_kept).astype(np.int32),
        id_name: panel.keys[id_name].gather(np.tile(kept, folds)),
    }
    return pl.concat(
        [
            pl.DataFrame({**base, TARGET_COLUMN: t, column: scale[:, j]})
            for j, t in enumerate(panel.targets)
        ]
    )

"""The one inference path of :class:`~forecaster.estimators.forecaster.RNNForecaster`.

``predict(frame)`` forecasts every series from its end, ``predict(frame, cutoff=t)`` from its
last time at or before ``t``, and ``predict(frame, cutoff=[t1, t2, ...])`` (or a frame of
(id, time) pairs) from many origins at once: the windows of every (series, origin) are
gathered from the :class:`~forecaster.data.panel.Panel` by index arithmetic
(:mod:`forecaster.estimators.origins`) and run through the network in a few large batches.
Every forecast goes through :meth:`ForecastInference._forecast_windows` (scaling, network,
inverse scaling and transform, finiteness check, ``baseline`` blend); the MLflow pyfunc calls
``predict``, the rolling-origin backtest (:func:`forecaster.evaluation.backtest.backtest`)
:meth:`ForecastInference.predict_origins`: the code of a list of cutoffs, from the panel the
backtest read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._busy import uses_fitted_state
from forecaster._validation import check
from forecaster.data import is_pandas_frame, trained_frame
from forecaster.data.dtypes import (
    as_given_kind,
    as_given_time,
    given_time_dtype,
    pandas_categories,
    pandas_time_dtype,
)
from forecaster.data.frames import column_tuple, read_once
from forecaster.data.frequency import Frequency
from forecaster.data.made_up import warn_made_up_origins
from forecaster.data.panel import Panel
from forecaster.data.scaling import PanelScaler
from forecaster.data.steps import future_times
from forecaster.estimators.base import PREDICT_BATCH
from forecaster.estimators.cutoffs import CutoffPanels, cutoff_argument
from forecaster.estimators.future import FutureInputs
from forecaster.estimators.origin_checks import warn_known_after
from forecaster.estimators.origins import (
    chunk_size,
    is_cutoff_list,
    observed_windows,
    step_times,
    window_inputs,
    window_scaling,
)
from forecaster.estimators.targets import TargetPanels
from forecaster.exceptions import DataValidationError, InSampleWarning, silenced
from forecaster.training import predict_batched

__all__ = ["ForecastInference"]


class ForecastInference(CutoffPanels, FutureInputs, TargetPanels):
    """``predict`` and the panels it builds (a mixin of ``RNNForecaster``, which holds the
    parameters and the fitted attributes it reads)."""

    # what RNNForecaster holds (parameters, fitted attributes) and RecurrentEstimator gives
    target: Any
    time_col: str
    id_col: str | None
    future_covariates: Any
    lookback: int | str
    lookback_: int
    horizon: int
    missing: str
    scaling: str
    schema_: dict[str, str]
    freq_: Frequency
    keys_: pl.DataFrame
    scaler_: PanelScaler
    target_lambdas_: np.ndarray | None
    network_: Any
    check_fitted: Callable[[str], None]
    column_roles: Callable[[], dict[str, Any]]
    _device: Callable[[], torch.device]
    _network_on: Callable[[torch.device], Any]
    _interval_columns: Callable[..., dict[str, np.ndarray]]
    _with_statics: Callable[[Panel], Panel]
    _blend_baseline: Callable[..., np.ndarray]
    _blends: Callable[[], bool]
    _reads_network: Callable[[], bool]
    _partner_alone: Callable[..., np.ndarray]

    @uses_fitted_state("predict with")
    def predict(
        self,
        frame: pl.DataFrame | pl.LazyFrame,
        *,
        cutoff: Any = None,
        future: pl.DataFrame | pl.LazyFrame | None = None,
        level: Any = None,
        quantiles: Any = None,
    ) -> pl.DataFrame:
        """Forecast the next ``horizon`` steps of every series.

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            History with the training columns (a pandas frame is converted once); each series
            needs ``lookback`` rows up to the cutoff (up to each origin of a list: shorter ones,
            none included, are dropped with a warning); series unseen in ``fit`` are scaled with
            their own history.
        cutoff : time point, list of time points or frame of (id, time) pairs, optional
            Forecast from this time instead of each series' end, as a list of one would
            (``cutoff=t`` equals ``cutoff=[t]`` without its ``origin`` column, and a backtest's
            forecasts from ``t``). A time point is a date, datetime (a pandas Timestamp too),
            ISO text, numpy.datetime64, pl.date(...) or int, converted to the time column's
            dtype by :func:`forecaster.data.times.to_time_point`; another kind (a set, a dict,
            an iterator), or a value that does not convert, is refused with a
            :class:`~forecaster.exceptions.DataValidationError` naming the kinds
            (:func:`~forecaster.estimators.cutoffs.cutoff_argument`). Only rows with
            ``time <= cutoff`` are used: each series is forecast from its last time at or before
            the cutoff (a cutoff between two steps of the grid, e.g. a Saturday for business
            days, forecasts from the step before it; a series that goes on after a cutoff inside
            a gap of its rows, from the cutoff, the gap filled by ``missing=``). A cutoff before
            the first time of the data is an error; series that end before the cutoff (without
            one: before the frame's last time) are forecast from their last time, with a
            :class:`~forecaster.exceptions.StaleSeriesWarning` that names them.

            A list (tuple, range, array, polars or pandas Series or Index) of time points
            forecasts every series from each of them, in one batched computation: the result has
            an ``origin`` column (the time of the last input row) and a block of ``horizon``
            rows per (cutoff, series), cutoff after cutoff, each by id. A frame of (id, time)
            pairs (the model's id and time columns, in a polars DataFrame or LazyFrame or a
            pandas DataFrame) forecasts each series from its own time point, in the frame's row
            order. A point (pair) given twice is refused. Each origin is the series' last row at
            or before its time point on the grid of the whole frame (the ``origin`` column shows
            a series that ended before it, and a warning names them); each (series, origin) is
            forecast once, under its earliest time point (a warning names the points left out
            for it). A point inside a gap that ``missing=`` fills is itself an origin, its gap
            filled up to it as known there (the made-up values named by a warning;
            ``missing="error"`` refuses the gap). Each is forecast as ``predict(frame,
            cutoff=point)`` would (a series unseen in ``fit`` scaled with its history up to each
            origin), but for its Box-Cox lambdas: fitted on its history up to its earliest
            origin of the call (``docs/concepts.md``, "Frames"). The future covariates over each
            horizon are read from the frame's rows after the origin, which must be there
            (``future`` is refused); the calendar features come from the steps' times (an
            origin at the end of the data is fine). Origins inside the data the model was
            fitted on (as a backtest counts them: before the series' ``train_end_of``, or
            for dates asked before the model's last training time), and with ``level`` or
            ``quantiles`` a static calibration (``rolling=None``) with windows ending after
            the earliest cutoff, warn: :class:`~forecaster.exceptions.InSampleWarning` (once
            per call; ``docs/concepts.md``, "In-sample checks of a fitted model").
        future : polars.DataFrame, polars.LazyFrame or pandas.DataFrame, optional
            The future covariates over the horizon (id, time and those columns): required when
            the model has any and no cutoff is given, refused for a model without any and with a
            list of cutoffs. With a cutoff and without ``future``, they are read from the
            frame's rows after each origin, filled by ``missing=`` (a
            :class:`~forecaster.exceptions.ForecasterWarning` counts the values made up; the
            other columns of those rows are not read: ``docs/concepts.md``, "Future covariates
            at predict"); with one cutoff, ``future`` is read instead. Checked like the history:
            training id and time dtypes, one row per (id, time), a finite value at every
            forecast step (it is not filled by ``missing=``). Only the forecast steps are read:
            rows at other times (the history, a longer calendar) are left unread, rows of series
            not in ``frame`` too, with a ForecasterWarning.
        level : number or list of numbers in (1, 100), optional
            Add the prediction intervals of these levels: ``<target>_lo_80`` and
            ``<target>_hi_80`` for ``level=[80]``. A point model needs :meth:`calibrate`
            first (split conformal); a quantile model (``loss="quantile"``) gives its own
            quantiles ``(1 - L/100)/2`` and ``1 - (1 - L/100)/2``, which must be among its
            ``quantiles`` (widened by CQR when it is calibrated).
        quantiles : number or list of numbers in (0, 1), optional
            Add quantile columns ``<target>_q10`` ... : a quantile model's own (only those it
            was fitted with), or for a calibrated point model the forecast plus the quantile
            of the calibration residuals at each step.

        Returns
        -------
        polars.DataFrame (pandas.DataFrame for a pandas ``frame``)
            Columns id (when the model has one), time (the next ``horizon`` steps of each series,
            in the frame's time dtype: another unit or zone than fit's, to join back on it) and
            one per target, sorted by (id, time) whatever the frame's order (text ids by their
            text, an Enum's too: the same rows for any text dtype); with a list of cutoffs
            ``origin`` first, the rows in the order described under ``cutoff``. The forecasts,
            interval and quantile columns are Float64 whatever the target's dtype (Float32 and
            integer targets too): the network computes in float32 relative to each series'
            scale, the inverse scaling runs in float64.
        """
        self.check_fitted("predict with")
        pandas, pandas_time = is_pandas_frame(frame), pandas_time_dtype(frame, self.time_col)
        categories = pandas_categories(frame, [self.id_col])  # a Categorical id: one back
        given = given_time_dtype(frame, self.time_col)  # the forecasts' times: as given
        frame, future, cutoff = self._predict_inputs(frame, future, cutoff)
        level, quantiles = check("level", level), check("quantiles", quantiles)
        self._refuse_unread_future(future)
        forecast = self._predict_origins if is_cutoff_list(cutoff) else self._predict_cutoff
        out = forecast(frame, cutoff, future, level, quantiles)
        out = as_given_time(out, given, self.schema_.get(self.time_col))
        return as_given_kind(out, pandas, pandas_time, categories)

    def _predict_inputs(
        self, frame: Any, future: Any, cutoff: Any
    ) -> tuple[pl.DataFrame, Any, Any]:
        """``predict``'s first step: ``frame`` with the training dtypes (a pandas frame's dates
        restored, ...: :func:`~forecaster.data.trained_frame`), read once so that it is
        forecast and checked on the same rows; ``future`` with the training id and time dtypes
        (its other columns are checked where it is read); ``cutoff`` as
        :func:`~forecaster.estimators.cutoffs.cutoff_argument` reads it (a point or a list is
        checked where the panels are built)."""
        roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
        frame = trained_frame(frame, self.schema_, **roles)
        frame = read_once(frame, list(self.schema_))
        keys = {c: t for c, t in self.schema_.items() if c in (self.id_col, self.time_col)}
        future = trained_frame(future, keys, what="future frame", **roles)
        return frame, future, cutoff_argument(cutoff, keys, **roles)

    def _refuse_unread_future(self, future: Any) -> None:
        """Refuse ``predict(future=...)`` for a model without future covariates, which would
        read nothing of it."""
        if future is not None and not column_tuple(self.future_covariates):
            raise DataValidationError(
                "predict(future=...) was given, but this model has no future covariates "
                "(future_covariates=None), so the frame would be ignored. Drop future=..., or "
                "refit with future_covariates=[...] naming the columns known ahead."
            )

    def _predict_cutoff(
        self, frame: Any, cutoff: Any, future: Any, level: Any, quantiles: Any
    ) -> pl.DataFrame:
        """``predict`` from each series' end, or from one ``cutoff`` (the arguments checked).
        One cutoff is forecast as a list of cutoffs forecasts it (one path: each series from
        its last row at or before the cutoff in the whole frame, a gap that ``missing=``
        fills up to it included; a model's future covariates after the cutoff are read from
        ``future`` where given, else by ``missing=`` with the rest of the frame)."""
        if cutoff is None and future is None and column_tuple(self.future_covariates):
            raise self._no_future_error(frame)  # before reading it: the rows ahead, named
        raw = self._panel_for_predict(frame, cutoff)
        if cutoff is not None:
            whole, series, rows = self._cutoff_origins(raw, frame, cutoff, future is not None)
            user = None
            if future is not None:
                user = self._origins_future(whole, series, rows, future, frame)
            out = self._origins_frame(whole, series, rows, frame, level, quantiles, user)
            asked = level is not None or quantiles is not None  # of the forecasts made: a
            warn_known_after(self, whole, series, rows, cutoff, asked)  # refusal warns of none
            return out.drop("origin")
        panel, lambdas = self._predict_panel(raw)
        center, scale = self._scaling_for(panel)
        horizon_times = self._future_times(panel)
        future_t = self._future_covariates(raw, horizon_times, future, center, scale, frame)
        ends = panel.offsets[1:] - 1
        x = window_inputs(panel, ends, self.lookback_)
        observed = self._observed_windows(raw, frame, ends)
        ids = panel.keys[panel.id_name]
        on = self._inference_network()
        pred = self._forecast_windows(
            on, x, future_t, center, scale, lambdas, ids, PREDICT_BATCH, observed
        )
        pred, model_quantiles = self._point_of(pred)
        flat = pred.reshape(-1, panel.n_targets)
        out = horizon_times.with_columns(
            pl.Series(name, flat[:, j]) for j, name in enumerate(panel.targets)
        )
        if level is not None or quantiles is not None:
            rows, known = self._fitted_rows(panel)
            origins = (raw, raw.offsets[1:] - 1)
            series_rows = np.where(known, rows, -1)
            extra = self._interval_columns(
                pred, model_quantiles, series_rows, level, quantiles, origins
            )
            out = out.with_columns(pl.Series(name, values) for name, values in extra.items())
        # the panel's series come in ascending id order (data.validate), so ``out`` is sorted
        return out.drop(panel.id_name) if self.id_col is None else out

    def _point_of(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The point forecasts ``(B, horizon, T)`` (a quantile model's median) and the model's
        quantiles ``(B, horizon, T, Q)`` (None for a point model)."""
        if pred.ndim == 3:
            return pred, None
        return pred[..., self.network_.median_index], pred

    def _forecast_windows(
        self,
        on: tuple[Any, torch.device],
        x: torch.Tensor,
        future: torch.Tensor | None,
        center: torch.Tensor,
        scale: torch.Tensor,
        lambdas: np.ndarray | None,
        ids: pl.Series,
        batch_size: int,
        observed: np.ndarray | None = None,
    ) -> np.ndarray:
        """The one network path of every forecast: raw input windows ``x`` (B, lookback,
        n_features) scaled by each window's ``center`` and ``scale`` (B, n_features), the
        scaled future-known inputs ``future`` (or None), the network (``on``: the network and
        its device, see :meth:`_inference_network`) in batches of ``batch_size``, and the
        outputs back on the targets' scale (float64, ``lambdas``: the Box-Cox lambdas of each
        window's series; ``ids``: its series, named in errors), blended with ``baseline_``'s
        partner, formed from ``x`` and ``observed`` (:meth:`_observed_windows`). A blend that
        weighs the network by 0 (:meth:`_reads_network`) is the partner's alone
        (:meth:`_partner_alone`): the network is not run."""
        if not self._reads_network():
            return self._partner_alone(x, lambdas, observed)
        nt = len(column_tuple(self.target))
        xs = x.to(torch.float64, copy=True)  # scaled in place: ``x`` is read again by the blend
        xs.sub_(center[:, None, :]).div_(scale[:, None, :])
        network, device = on
        outputs = predict_batched(network, xs.float(), future, device=device, batch_size=batch_size)
        if outputs.ndim == 4:  # one forecast per quantile: each unscaled like a point forecast
            parts = (outputs[..., k] for k in range(outputs.shape[-1]))
            unscaled = (p.double() * scale[:, None, :nt] + center[:, None, :nt] for p in parts)
            out = np.stack([self._forecast_values(p.numpy(), lambdas, ids) for p in unscaled], -1)
            return self._blend_baseline(out, x, lambdas, observed)  # baseline="auto"
        pred = outputs.double().mul_(scale[:, None, :nt]).add_(center[:, None, :nt])
        values = self._forecast_values(pred.numpy(), lambdas, ids)
        return self._blend_baseline(values, x, lambdas, observed)

    def _observed_windows(self, raw: Panel, frame: Any, rows: np.ndarray) -> np.ndarray | None:
        """The targets' input windows ending at the global ``rows`` of ``raw`` (the validated
        panel of ``frame``) as ``frame`` holds them (float64, NaN where it holds none:
        :func:`~forecaster.estimators.origins.observed_windows`), from which the ``baseline``
        blend forms its partner, as the validation check that chose it did; None when no
        blend changes the forecasts (no join is made)."""
        return observed_windows(raw, frame, rows, self.lookback_) if self._blends() else None

    def _predict_origins(
        self, frame: Any, cutoff: Any, future: Any, level: Any = None, quantiles: Any = None
    ) -> pl.DataFrame:
        """``predict`` with a list of cutoffs (or a frame of (id, time) pairs)."""
        if future is not None:
            raise DataValidationError(
                "predict(future=...) takes the future covariates of one cutoff; with a list of "
                "cutoffs their values over every horizon are read from the frame itself (its "
                "rows after each origin). Drop future=..., and keep those rows in the frame."
            )
        raw, series, rows = self._origin_panel(frame, cutoff)
        out = self._origins_frame(raw, series, rows, frame, level, quantiles)
        asked = level is not None or quantiles is not None  # of the forecasts made (origins
        warn_known_after(self, raw, series, rows, cutoff, asked)  # the user chose), as below
        warn_made_up_origins(raw, frame, series, rows, self.missing)  # as one cutoff's check
        return out

    @uses_fitted_state("predict with")
    def predict_origins(
        self,
        frame: pl.DataFrame,
        panel: Panel,
        series: np.ndarray,
        rows: np.ndarray,
        *,
        level: Any = None,
        quantiles: Any = None,
    ) -> pl.DataFrame:
        """``predict(frame, cutoff=<pairs>)`` of the origins at the global ``rows`` of
        ``panel``, the frame read as :meth:`read_frame` reads it (what a backtest forecasts
        from the panel it has read). The frame is not read again where that gives the same
        forecasts (:meth:`_reads_as_held`); otherwise, and for a subclass that overrides
        ``predict``, this is that call. The caller chose the origins: those whose targets (or
        past covariates) ``missing=`` made up are not named (``predict``'s warning of them is
        not computed; the backtest silences it where it calls ``predict``), nor those after
        the model's training or calibration data (``predict``'s InSampleWarnings: a backtest
        warns of its folds itself).

        Parameters
        ----------
        frame : polars.DataFrame
            The frame ``panel`` was read from (collected).
        panel : Panel
            Its panel, read at the fitted frequency.
        series, rows : numpy.ndarray
            Each origin's series and global row in ``panel``; one origin per (series, time).
        level, quantiles : optional
            As for :meth:`predict`.

        Returns
        -------
        polars.DataFrame
            What ``predict(frame, cutoff=<the (id, time) pairs of the origins>)`` returns.
        """
        overridden = type(self).predict is not ForecastInference.predict
        if overridden or not self._reads_as_held(panel, rows):
            times = panel.time.gather(rows).alias(self.time_col)
            pairs: pl.Series | pl.DataFrame = times
            if self.id_col is not None:
                ids = panel.keys[panel.id_name].gather(series).alias(self.id_col)
                pairs = pl.DataFrame([ids, times])
            with silenced(InSampleWarning):  # the caller checks the origins it chose
                return self.predict(frame, cutoff=pairs, level=level, quantiles=quantiles)
        self.check_fitted("predict with")
        level, quantiles = check("level", level), check("quantiles", quantiles)
        return self._origins_frame(panel, series, rows, frame, level, quantiles)

    def _origins_frame(
        self,
        raw: Panel,
        series: np.ndarray,
        rows: np.ndarray,
        frame: Any,
        level: Any = None,
        quantiles: Any = None,
        user_future: np.ndarray | None = None,
    ) -> pl.DataFrame:
        """The forecasts of ``predict`` from the origins at the global ``rows`` of ``raw`` (the
        validated panel of ``frame``; ``series``: each origin's series), ``origin`` first,
        with a warning when ``missing=`` made up future covariates over their horizons
        (``user_future``: their values from ``future=`` instead, ``(B, horizon, n)``)."""
        forecasts = self._forecast_origins(raw, series, rows, frame, user_future)
        pred, model_quantiles = self._point_of(forecasts)
        if user_future is None:
            self._warn_made_up_future(raw, frame, series, rows)  # (the rows after them checked)
        horizon, nt = int(self.horizon), raw.n_targets
        columns: dict[str, Any] = {"origin": raw.time.gather(np.repeat(rows, horizon))}
        if self.id_col is not None:
            columns[self.id_col] = raw.keys[raw.id_name].gather(np.repeat(series, horizon))
        columns[self.time_col] = step_times(raw, series, rows, self.freq_, horizon)
        flat = pred.reshape(-1, nt)
        columns.update((name, flat[:, j]) for j, name in enumerate(raw.targets))
        if level is not None or quantiles is not None:
            fitted, known = self._fitted_rows(raw)
            series_rows = np.where(known, fitted, -1)[series]
            extra = self._interval_columns(
                pred, model_quantiles, series_rows, level, quantiles, (raw, rows)
            )
            columns.update(extra)
        return pl.DataFrame(columns)

    def _inference_network(self) -> tuple[Any, torch.device]:
        """The fitted network on the device to predict on (moved there once per call)."""
        device = self._device()
        return self._network_on(device), device

    def _forecast_origins(
        self,
        panel: Panel,
        series: np.ndarray,
        rows: np.ndarray,
        frame: Any = None,
        user_future: np.ndarray | None = None,
    ) -> np.ndarray:
        """Forecasts ``(B, horizon, n_targets)`` float64 from the origins at the global
        ``rows`` of ``panel`` (the validated frame; ``series``: each origin's series), in
        large batched network calls: what ``predict(frame, cutoff=[...])`` computes; the
        ``baseline`` blend's partner reads the values of ``frame`` (the frame of ``panel``:
        :meth:`_observed_windows`) when given.

        Series unseen in ``fit`` are scaled with statistics of their history up to each
        origin (as ``predict(frame, cutoff=origin)`` would), their Box-Cox lambdas once per
        series on its history up to its earliest origin (leak-free; not each origin's own, as
        one cutoff's: a maximum-likelihood fit costs tens of ms). The user's future
        covariates are the panel's rows after each origin, which must be there (or
        ``user_future``, read from ``future=``); the calendar features come from the steps'
        times (:meth:`_origin_future`).
        """
        horizon, lookback = int(self.horizon), self.lookback_
        local = rows - panel.offsets[series]
        history = None
        if self._fitted_transform() == "boxcox":  # each series' earliest origin
            history = np.full(panel.n_series, np.iinfo(np.int64).max)
            np.minimum.at(history, series, rows)
            history[history == np.iinfo(np.int64).max] = -1
        raw, (panel, lambdas) = panel, self._predict_panel(panel, history=history)
        after = self._steps_after_ends(panel, series, rows, user_future is None)  # checked
        fitted, known = self._fitted_rows(panel)
        center, scale = window_scaling(
            panel,
            series,
            local,
            fitted=(self.scaler_.center_[fitted], self.scaler_.scale_[fitted]),
            known=known,
            scaling=self.scaling,
        )
        nt, nf = panel.n_targets, panel.n_future
        chunk = chunk_size(self.network_, lookback, panel.n_features, nt, PREDICT_BATCH)
        on = self._inference_network()
        out = []
        for lo in range(0, len(rows), chunk):
            hi = min(lo + chunk, len(rows))
            c, s = center[lo:hi], scale[lo:hi]
            future = None
            if nf:
                user = None if user_future is None else user_future[lo:hi]
                raw_future = self._origin_future(panel, series[lo:hi], rows[lo:hi], after, user)
                fv = torch.from_numpy(raw_future)
                future = ((fv - c[:, None, -nf:]) / s[:, None, -nf:]).float()
            out.append(
                self._forecast_windows(
                    on,
                    window_inputs(panel, rows[lo:hi], lookback),
                    future,
                    c,
                    s,
                    None if lambdas is None else lambdas[series[lo:hi]],
                    panel.keys[panel.id_name].gather(series[lo:hi]),
                    chunk,
                    None if frame is None else self._observed_windows(raw, frame, rows[lo:hi]),
                )
            )
        if out:
            return np.concatenate(out)
        n_quantiles = len(getattr(self.network_, "quantiles", None) or ())
        return np.zeros((0, horizon, nt, *([n_quantiles] if n_quantiles else [])), np.float64)

    def _forecast_values(
        self, pred: np.ndarray, lambdas: np.ndarray | None, ids: pl.Series
    ) -> np.ndarray:
        """Forecasts ``(B, horizon, n_targets)`` of the network's scale (unscaled) as float64
        values on the targets' own scale (inverse ``target_transform``; ``lambdas`` are the
        Box-Cox lambdas of each row's series), refusing any that is not a finite number
        (``ids``: the series of each row, named in the error). float64, not the network's
        float32: its output is relative to each series' scale, and the inverse scaling runs
        in float64, so a series near 1.2e10 is not rounded to float32's steps of 1024 there."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(self._inverse_targets(pred, lambdas, ids), dtype=np.float64)
        finite = np.isfinite(out)
        if finite.all():
            return out
        rows, steps, targets = np.nonzero(~finite)
        series = ids.gather(np.unique(rows)).unique(maintain_order=True).to_list()
        first = (rows == rows[0]) & (targets == targets[0])
        where = sorted({int(k) + 1 for k in steps[first]})
        example = float(out[rows[0], steps[0], targets[0]])
        names = column_tuple(self.target)
        which = (
            "the series"
            if self.id_col is None
            else f"{len(series)} series ({series[:10]}), e.g. {series[0]!r}"
        )
        raise DataValidationError(
            f"The forecast is not a finite number for {which} at steps {where} of the horizon, "
            f"target {names[targets[0]]!r} ({example:g}). The network's output, back on the "
            f"targets' scale (scaling={self.scaling!r}, "
            f"target_transform={self._fitted_transform()!r}), overflows (beyond about 1.8e308) "
            "or is not a number. A model whose history_ shows NaN losses needs refitting (e.g. "
            "a lower lr); for values spanning many orders of magnitude use "
            "target_transform='log', or divide the target by a constant before fitting (e.g. "
            "pl.col(target) / 1e30) and multiply the forecasts back."
        )

    def _scaling_for(self, panel: Panel) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-series (center, scale) float64 tensors: fitted ones, or fitted on the history."""
        fitted, known = self._fitted_rows(panel)
        center = np.empty((panel.n_series, panel.n_features))
        scale = np.empty_like(center)
        if known.any():
            center[known] = self.scaler_.center_[fitted[known]]
            scale[known] = self.scaler_.scale_[fitted[known]]
        if (~known).any():
            own = PanelScaler(self.scaling).fit(panel)
            center[~known] = own.center_[~known]
            scale[~known] = own.scale_[~known]
        return torch.from_numpy(center), torch.from_numpy(scale)

    def _future_times(self, panel: Panel) -> pl.DataFrame:
        """Frame (id, time) of the ``horizon`` steps after each series' last time."""
        horizon = int(self.horizon)
        ids = panel.keys[panel.id_name]
        times = future_times(panel.time, panel.offsets, self.freq_, horizon)
        return pl.DataFrame(
            [ids.gather(np.repeat(np.arange(len(ids)), horizon)), times.alias(self.time_col)]
        )

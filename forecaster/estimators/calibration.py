"""``RNNForecaster.calibrate``: split-conformal calibration on the out-of-sample residuals of
the batched rolling-origin backtest, and the interval columns of ``predict`` (a mixin).

The residuals ``y - forecast`` of every (fold, series, step) of
:func:`forecaster.evaluation.backtest.backtest` are kept per horizon step in ``conformal_``
(for quantile models, ``y - q`` for each model quantile: CQR), divided by the spread of
their input window when normalised, with the time of each window's last step; see
:mod:`forecaster.estimators.intervals` for how they become intervals. Split conformal
assumes the calibration residuals and the future ones are exchangeable: residuals of
time-ordered windows the model did not train on come closest, but a drift in the series after
the calibration origins breaks the guarantee (recalibrate on recent data, or calibrate with
``rolling=W`` so each forecast uses the latest windows observed by its origin).
"""

from __future__ import annotations

__all__ = ["ForecastIntervals"]

import copy
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import clone

from forecaster._busy import uses_fitted_state
from forecaster._columns import actual_column
from forecaster._polars import collect
from forecaster._validation import check
from forecaster.data import trained_frame
from forecaster.data.frames import column_tuple, counted, read_once
from forecaster.data.transforms import domain_floor
from forecaster.estimators.intervals import MIN_PER_SERIES, conformal_spread, interval_columns
from forecaster.estimators.origins import origin_rows
from forecaster.estimators.own_residuals import warn_without_own
from forecaster.evaluation.fitted import in_sample_ends
from forecaster.evaluation.fold_forecasts import backtest_forecasts
from forecaster.evaluation.folds import SHORT_FOR_FOLDS
from forecaster.evaluation.intervals import quantile_name
from forecaster.evaluation.origins import UNFORECAST_SERIES, uses_calendar
from forecaster.exceptions import (
    CalendarFoldsWarning,
    DataValidationError,
    ForecasterWarning,
    InfiniteScoreWarning,
    InSampleWarning,
    NoResidualsWarning,
    UnscoredPointsWarning,
    silenced,
    warn_at_caller,
)


def _checked_rolling(per_series: Any, rolling: int | None) -> int | None:
    """``rolling`` (checked) for ``per_series`` (checked here: True or False): refused below
    :data:`~forecaster.estimators.intervals.MIN_PER_SERIES` per series."""
    if not isinstance(per_series, bool):
        raise DataValidationError(f"per_series must be True or False, got {per_series!r}.")
    if per_series and rolling is not None and rolling < MIN_PER_SERIES:
        raise DataValidationError(
            f"calibrate(per_series=True, rolling={rolling}): a series' own intervals need "
            f"at least {MIN_PER_SERIES} residuals per horizon step, and a window of "
            f"{rolling} calibration windows per series never holds that many, so every "
            "series would silently use the pooled residuals. Pass "
            f"rolling={MIN_PER_SERIES} or more, or per_series=False for pooled intervals."
        )
    return rolling


class ForecastIntervals:
    """``calibrate`` and the interval columns (a mixin of ``RNNForecaster``)."""

    target: Any
    id_col: str | None
    time_col: str
    horizon: int
    lookback: int | str
    lookback_: int
    loss: str
    missing: str
    freq_: Any
    network_: Any
    keys_: pl.DataFrame
    schema_: dict[str, str]
    read_frame: Callable[..., tuple[pl.DataFrame, Any]]
    _fitted_transform: Callable[[], str]

    @uses_fitted_state("calibrate")
    def calibrate(
        self,
        frame: pl.DataFrame | pl.LazyFrame,
        *,
        folds: int = 5,
        step: int | None = None,
        refit: bool | int = False,
        per_series: bool = False,
        normalize: str | None = "series",
        rolling: int | None = None,
        origins: str = "auto",
    ) -> Any:
        """Calibrate prediction intervals by split conformal prediction.

        A rolling-origin backtest (:func:`forecaster.evaluation.backtest.backtest`, ``folds``
        origins ``step`` rows apart, ending at the end of ``frame``) gives out-of-sample
        residuals per horizon step; ``predict(frame, level=[...])`` then adds intervals of
        those levels: ``forecast +- s`` for a point model (``s``: the conformal quantile of
        the absolute residuals at that step), the model's quantiles widened (or narrowed) by
        the conformal quantile of the CQR scores for a quantile model (a quantile fitted
        without its partner ``1 - q`` moved by the conformal quantile ``q`` of its own
        residuals; see :mod:`forecaster.estimators.intervals`).

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            Data with the training columns. With ``refit=False`` every origin must lie after
            the model's training data (``train_end_``): pass the training data followed by
            new data (at least ``folds * step`` rows per series).
        folds, step : int
            The backtest's origins (``step`` defaults to ``horizon``).
        refit : bool or int, default False
            False: the fitted model forecasts every origin. True (or k): clones are refitted
            on the data before each origin (every k origins), with the parameters the model
            was fitted with (not those set since, which take effect at its next fit), so
            ``frame`` may be the training data itself.
        per_series : bool, default False
            Intervals from each series' own residuals instead of the pooled ones; a series
            with fewer than 20 at some step, or fewer than a ``predict`` call's highest level
            needs, uses the pooled ones for all of that call (a fold gives a series one
            residual per step: fewer than 20 folds pool all); a warning names those with
            fewer than 20. Own residuals all one value at a step (all 0) give a half-width
            (and quantiles a distance from the median) of 1, or 1e-6 of the level; others
            at least 1e-6 of it. With ``rolling``: ``rolling >= 20``.
        normalize : {"series", "window"} or None, default "series"
            How residuals are made comparable before they are pooled. ``"series"``: each residual
            divided by its series' scale (its mean ``|y - forecast|`` over its calibration windows
            and steps, ``|y - q|`` over all the quantiles ``q`` of a quantile model), the conformal
            quantile multiplied back by the scale of each forecast's series: pooled intervals of
            series of any scale, each of its own width (a series without calibration residuals is
            refused; one forecast exactly has scale 1, or 1e-6 of its forecasts' level where more).
            ``"window"``: divided by the input window's spread (the mean
            absolute one-step change of the target over the ``lookback_`` rows up to the origin, or
            all rows up to it for an origin with fewer, e.g. of a clone refitted with
            ``lookback="auto"`` that chose a shorter window), multiplied back by the spread of each
            forecast's window: bands that widen in volatile stretches and narrow in calm ones, for
            any series (locally weighted conformal prediction); a window with no change, floored by
            its level and its series' past changes
            (:func:`~forecaster.estimators.intervals.conformal_spread`), has a spread of 1 where
            its series has not changed so far (zeros, or 3s), as the scaler scales a constant
            series. None: plain residuals, one width per step (per series with ``per_series``). With
            ``per_series=True`` ``"series"`` changes nothing for series with their own residuals.
        rolling : int, optional
            Rolling recalibration: each forecast uses only the calibration windows that end
            at or before its origin, the ``rolling`` latest of them per series. Calibrate on
            data that reaches past the origins you will forecast from (e.g. the whole test
            span of a backtest: only windows observed by each origin are used, so nothing
            leaks), and ``predict(frame, cutoff=[...])`` recalibrates at every origin in one
            batched call. None: every calibration window, whatever the origin. Refused for
            integer steps of several series (independent sequences) but with
            ``origins="calendar"`` (positions shared times).
        origins : {"auto", "calendar", "series"}, default "auto"
            The backtest's (:func:`~forecaster.evaluation.backtest.backtest`). ``"calendar"``
            (``"auto"``'s for dates and datetimes): every fold cut at one time for all series,
            no fold model having seen another series' data after its residuals; a series
            ending at or before the first cutoff gets none (a warning says so), and with
            ``normalize="series"`` ``predict(level=...)`` refuses it. ``"series"``: folds
            counted from each series' own end (``"auto"``'s for integer steps): residuals of
            every series long enough, from models that may have seen other series' later data.

        Notes
        -----
        A residual whose actual value the frame does not hold (a step or value that
        ``missing="ffill"`` or ``"interpolate"`` made up) is left out of the calibration, as a
        backtest leaves it out of its scores (a warning says how many): a residual against a
        filled value is not a forecast error, and made-up values close to the forecasts (a
        forward fill repeats the input window's last value) would narrow every interval.
        ``missing="zero"``'s zeros are data, and kept.

        Returns
        -------
        self : with ``conformal_`` set (saved by :func:`forecaster.save`).

        Examples
        --------
        >>> import numpy as np, polars as pl
        >>> from forecaster import RNNForecaster
        >>> t = np.arange(300)
        >>> y = np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.1, 300)
        >>> frame = pl.DataFrame({"time": t, "y": y})
        >>> model = RNNForecaster(target="y", lookback=24, horizon=6, hidden_size=8,
        ...                       max_epochs=1, random_state=0, progress=False)
        >>> _ = model.fit(frame.head(200)).calibrate(frame, folds=40, step=2)
        >>> model.predict(frame, level=80).columns
        ['time', 'y', 'y_lo_80', 'y_hi_80']
        """
        self.check_fitted("calibrate")  # type: ignore[attr-defined]
        frame = trained_frame(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        frame = read_once(frame, list(self.schema_))  # every check and fold on the same rows
        folds, step, refit = check("folds", folds), check("step", step), check("refit", refit)
        normalize, origins = check("normalize", normalize), check("origins", origins)
        rolling = _checked_rolling(per_series, check("rolling", rolling))
        self._check_rolling_positions(frame, rolling, origins)
        conformal = self._calibration(frame, folds, step, refit, per_series, normalize, origins)
        conformal["window"] = rolling
        if per_series:
            warn_without_own(conformal, folds, self.keys_.to_series())
        # one assignment, once complete: a failure, or a predict meanwhile, keeps the former one
        self.conformal_ = conformal
        return self

    def _backtested(self, refit: Any) -> Any:
        """The model the calibration's backtest forecasts with. ``refit=False``: this one as
        it forecasts uncalibrated (a quantile model's own quantiles, not CQR's), a shallow
        copy without ``conformal_``, so that the model itself keeps its calibration, which
        a ``predict`` in another thread uses meanwhile. Else: an unfitted copy with the
        parameters this model was fitted with (:meth:`fitted_params`), whose clones the
        backtest refits, so that the residuals are those of models trained as this one was,
        not with parameters set since its fit (``set_params(max_epochs=1)`` take effect at
        its next fit)."""
        if refit is False:
            model = copy.copy(self)
            model.__dict__.pop("conformal_", None)
            return model
        template = clone(self)
        template.set_params(**self.fitted_params())  # type: ignore[attr-defined]
        return template

    def _check_rolling_positions(self, frame: Any, rolling: int | None, origins: str) -> None:
        """Refuse ``rolling`` on independent sequences: an integer-step time column of more
        than one series (fitted or calibrated on), unless ``origins="calendar"`` says their
        positions are shared times. A forecast's windows "ending by its origin" would compare
        the positions of one clip with another's, so the same clip numbered from 0 or 700
        would get other intervals (or none)."""
        if rolling is None:
            return
        lazy = frame.lazy()
        dtype = lazy.collect_schema()[self.time_col]
        if self.id_col is None or not dtype.is_integer() or origins == "calendar":
            return  # dates share a calendar (their own end with origins="series" too)
        n_series = max(
            self.keys_.height,
            int(collect(lazy.select(pl.col(self.id_col).n_unique()), streaming=True).item()),
        )
        if n_series > 1:
            raise DataValidationError(
                f"calibrate(rolling={rolling}): the time column {self.time_col!r} holds integer "
                f"steps, and its {n_series} series are independent sequences (origins="
                f"{origins!r}) whose positions are not shared times, so the windows that end by "
                "a forecast's origin would be chosen by comparing the positions of different "
                "series (a series numbered from 0 or from 700 would get other intervals). "
                "Calibrate without rolling (every window counts), or pass origins='calendar' "
                "if the positions of the series are shared times (e.g. synchronised sensors)."
            )

    def _calibration(
        self,
        frame: Any,
        folds: int,
        step: int | None,
        refit: Any,
        per_series: bool,
        normalize: str | None,
        origins: str,
    ) -> dict[str, Any]:
        """The ``conformal_`` entries of :meth:`calibrate` (but ``window``)."""
        quantiles = getattr(self.network_, "quantiles", None)
        qs = None if quantiles is None else [float(q) for q in quantiles]
        # a quantile model's own quantiles come with each fold's forecasts (out of sample);
        # made-up actual values: left out below; in-sample origins (refit=False): refused below
        in_sample = silenced(InSampleWarning) if refit is False else nullcontext()
        scaled = normalize == "series"  # the series without residuals: named below, once
        unforecast = silenced(CalendarFoldsWarning, UNFORECAST_SERIES) if scaled else nullcontext()
        short = silenced(ForecasterWarning, SHORT_FOR_FOLDS) if scaled else nullcontext()
        with (
            silenced(UnscoredPointsWarning),
            silenced(InfiniteScoreWarning),
            in_sample,
            unforecast,
            short,
        ):
            result = backtest_forecasts(  # no score: the id may be named like one (n, mae)
                self._backtested(refit),
                frame,
                folds=folds,
                step=step,
                refit=refit,
                quantiles=qs,
                origins=origins,
                label="calibration",  # its fits' warnings: "In 2 of 5 calibration folds"
            )
        folds_frame = result.folds
        if refit is False:
            self._check_after_training(folds_frame, origins)
        targets = list(column_tuple(self.target))
        horizon = int(self.horizon)
        actual_columns = result.forecasts.select([actual_column(t) for t in targets])
        actual = actual_columns.to_numpy().astype(np.float64).reshape(-1, horizon, len(targets))
        if qs is None:
            point = result.forecasts.select(targets).to_numpy().astype(np.float64)
            residuals = (actual - point.reshape(actual.shape))[..., None]
        else:
            names = [quantile_name(t, q) for t in targets for q in qs]
            predicted = result.forecasts.select(names).to_numpy().astype(np.float64)
            residuals = actual[..., None] - predicted.reshape(*actual.shape, len(qs))
        residuals[self._made_up(result.unscored, actual.shape)] = np.nan
        ids = folds_frame[self.id_col] if self.id_col is not None else None
        series = self._series_rows(ids, len(residuals))
        forecasts = result.forecasts
        if normalize == "series":
            cutoffs = result.folds["cutoff"]
            calendar = uses_calendar(origins, cutoffs)
            span = (cutoffs.min(), cutoffs.max()) if calendar and len(cutoffs) else None
            self._warn_without_residuals(frame, series, span)
        if normalize == "series" and (series < 0).any():
            keep = self._without_unseen(ids, series)
            residuals, series = residuals[keep], series[keep]
            folds_frame = folds_frame.filter(pl.Series(keep))
            forecasts = forecasts.filter(pl.Series(np.repeat(keep, horizon)))
        ends = forecasts[self.time_col].to_physical().to_numpy()
        ends = ends.astype(np.int64).reshape(-1, horizon)[:, -1]
        order = np.argsort(ends, kind="stable")  # windowing takes spans of this order
        conformal: dict[str, Any] = {"per_series": per_series, "normalize": normalize}
        if normalize == "window":
            spread = self._origin_spread(frame, folds_frame)
            residuals = residuals / spread[:, None, :, None]
        conformal.update(
            residuals=np.ascontiguousarray(residuals[order], dtype=np.float64),
            series=series[order],
            ends=ends[order],
        )
        return conformal

    def _made_up(self, unscored: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        """The backtest's forecast points (``shape``: origins, steps, targets) whose actual
        value the frame does not hold, which the ``missing`` policy made up (the backtest's
        :attr:`~forecaster.evaluation.backtest.BacktestResult.unscored`; none for
        ``missing="zero"``, whose zeros are data), with a warning that their residuals are
        left out; refused when that leaves none."""
        if unscored is None:
            return np.zeros(shape, bool)
        made_up = unscored.reshape(shape)
        if made_up.all():
            raise DataValidationError(
                f"calibrate: the frame holds none of the {made_up.size} actual values the "
                f"backtest's forecasts are compared with (missing={self.missing!r} made every "
                "one up), so there is no residual to calibrate on. Calibrate on a frame whose "
                "steps after the origins were observed."
            )
        if made_up.any():
            warn_at_caller(
                f"calibrate: {int(made_up.sum())} of the {made_up.size} residuals (fold, "
                "series, step, target) are at steps the frame holds no value for, which "
                f"missing={self.missing!r} filled: they are left out of the calibration (a "
                "residual against a made-up value is no forecast error, and would narrow the "
                "intervals).",
                ForecasterWarning,
            )
        return made_up

    def _origin_spread(self, frame: Any, folds_frame: pl.DataFrame) -> np.ndarray:
        """The spread ``(N, T)`` of the input window of every backtest origin (row of
        ``folds_frame``), on the targets' own scale: over the ``lookback_`` rows up to the
        origin, as ``predict`` measures it, or all rows up to it where there are fewer (a
        clone refitted with ``lookback="auto"`` may choose a shorter window than the model's,
        and forecast from earlier origins)."""
        if self.id_col is None:
            pairs: Any = folds_frame["cutoff"]
        else:
            pairs = folds_frame.select(self.id_col, pl.col("cutoff").alias(self.time_col))
        _, panel = self.read_frame(frame, as_fitted=True)  # as the backtest read it
        roles = {"id_col": self.id_col, "time_col": self.time_col, "freq": self.freq_}
        series, rows = origin_rows(panel, pairs, **roles, lookback=1)
        if len(rows) != folds_frame.height:  # every origin of the backtest has a row
            raise DataValidationError("calibrate: an origin of the backtest has no input window")
        lengths = np.minimum(rows - panel.offsets[series] + 1, self.lookback_)
        spread = np.empty((len(rows), panel.n_targets))
        for length in np.unique(lengths):  # one length but for origins with fewer rows
            chosen = lengths == length
            spread[chosen] = conformal_spread(panel, rows[chosen], int(length))
        return spread

    def _check_after_training(self, folds_frame: pl.DataFrame, origins: str) -> None:
        """Refuse (``refit=False``) backtest origins before the time up to which the model
        has seen their series' period (:func:`~forecaster.evaluation.fitted.in_sample_ends`
        for ``origins``): the series' own last fitted time, or for calendar origins (date
        and datetime time columns) the model's last training time for every series, which a
        global model trained on the other series up to then has learnt the period of."""
        if self.id_col is None:  # the one fitted series
            ids = self.keys_.to_series().gather(np.zeros(folds_frame.height, np.int64))
        else:
            ids = folds_frame[self.id_col]
        seen = in_sample_ends(self, ids, origins)
        if seen is None:
            raise DataValidationError(
                "calibrate(refit=False) needs the last training time of each series "
                "(train_end_), which this model does not have (a model saved before it was "
                "kept). Call calibrate(frame, refit=True) to refit clones per fold instead."
            )
        own = self.train_end_of(ids)  # type: ignore[attr-defined]
        cutoffs = folds_frame["cutoff"]
        early = (cutoffs.cast(seen.dtype) < seen).fill_null(False).to_numpy()
        if not early.any():
            return
        others = early & ~(cutoffs.cast(own.dtype) < own).fill_null(False).to_numpy()
        cause = (
            "inside the model's training data (before train_end_), where its residuals are "
            "not out of sample"
        )
        if others.any():
            last: Any = seen.max()
            cause += (
                f"; {counted(int(others.sum()), 'of them lies', 'of them lie')} after their "
                "series' own train_end_ (or "
                f"the series was not seen in fit) but before {last}, the model's last "
                "training time: the series share one calendar, and a global model fitted on "
                "the other series' rows up to then has learnt that period, so those residuals "
                "would be optimistic too"
            )
        origins = "of the backtest's origins"
        lie = counted(int(early.sum()), f"{origins} lies", f"{origins} lie")
        raise DataValidationError(
            f"calibrate(refit=False): {lie} {cause}. "
            "Pass the training data followed by new data (at least folds * step rows more per "
            "series"
            + (", after the model's last training time" if others.any() else "")
            + "), or call calibrate(frame, refit=True) to refit clones on the data before each "
            "origin."
        )

    def _warn_without_residuals(
        self, frame: Any, series: np.ndarray, calendar: tuple[Any, Any] | None
    ) -> None:
        """Warn (``normalize="series"``) about the series of the calibration ``frame`` seen in
        fit that got no residual (``series``: the residuals' rows of ``keys_``): the backtest
        left them out (too short, or, with calendar folds, whose first and last cutoffs are
        ``calendar``, ending at or before them; its own warning of those is silenced: this
        one names them once), and ``predict(level=...)`` refuses their forecasts, which have
        no series scale."""
        if self.id_col is None:
            return
        ids = frame.lazy().select(pl.col(self.id_col).unique())
        ids = collect(ids, streaming=True).to_series()
        rows = self._series_rows(ids, ids.len())
        self._warn_absent_series(rows)
        left = ids.filter(pl.Series((rows >= 0) & ~np.isin(rows, series))).sort()
        if left.len() == 0:
            return
        why, remedy = (
            (f"they end at or before its calendar folds' cutoffs, {calendar[0]} to "
             f"{calendar[1]}, or are too short",
             ", or with origins='series' (each series' folds counted from its own end: their "
             "residuals then come from models that saw other series' later data, so they are "
             "optimistic)")
            if calendar is not None
            else ("they are too short for its folds: lookback + horizon + (folds - 1) * step "
                  "rows", "")
        )  # fmt: skip
        warn_at_caller(
            f"calibrate(normalize='series'): {left.len()} series of the calibration frame "
            f"{'has' if left.len() == 1 else 'have'} no residuals: {left.head(10).to_list()}. "
            f"The backtest forecast none of their folds ({why}), so "
            "predict(level=...) refuses their forecasts (no series scale). Drop them from "
            f"predict's frame, calibrate with normalize='window' or normalize=None{remedy}.",
            NoResidualsWarning,
        )

    def _warn_absent_series(self, rows: np.ndarray) -> None:
        """Warn (``normalize="series"``) about the series seen in fit that the calibration
        frame does not hold (``rows``: the rows of ``keys_`` of its series): they get no
        residual and no series scale, so ``predict(level=...)`` refuses their forecasts,
        ``per_series=False`` too (the pooled residuals are divided by each series' scale)."""
        absent = np.setdiff1d(np.arange(self.keys_.height), rows[rows >= 0])
        if not len(absent):
            return
        names = self.keys_.to_series(0).gather(absent).sort().head(10).to_list()
        warn_at_caller(
            f"calibrate(normalize='series'): {len(absent)} series seen in fit "
            f"{'is' if len(absent) == 1 else 'are'} not in the calibration frame: {names}. "
            "They get no series scale, so predict(level=...) refuses their forecasts "
            "(per_series=False too). Calibrate on a frame that includes them, or with "
            "normalize='window' or normalize=None.",
            NoResidualsWarning,
        )

    @staticmethod
    def _without_unseen(ids: Any, series: np.ndarray) -> np.ndarray:
        """The residual rows of series seen in fit (a mask), with a warning naming the others:
        under ``normalize="series"`` a residual is divided by its series' scale, which an
        unseen series (row -1 for all of them alike) does not have, and which predict could
        not give it either (it refuses such series)."""
        keep = series >= 0
        if not keep.any():
            raise DataValidationError(
                "calibrate(normalize='series'): no series of the calibration frame was seen in "
                "fit, so no residual has a series scale. Calibrate on the fitted series, or "
                "pass normalize='window' (the input window's spread) or normalize=None."
            )
        unseen = ids.filter(pl.Series(~keep)).unique(maintain_order=True)
        warn_at_caller(
            f"calibrate(normalize='series'): {unseen.len()} series of the calibration frame "
            f"{'was' if unseen.len() == 1 else 'were'} not seen in fit "
            f"(e.g. {unseen.head(3).to_list()}); their residuals are left "
            "out, since a series' scale is its own and predict refuses unseen series under "
            "this normalisation. Pass normalize='window' to calibrate on them too.",
            ForecasterWarning,
        )
        return keep

    def _series_rows(self, ids: pl.Series | None, n: int) -> np.ndarray:
        """Each residual row's series as its row of ``keys_`` (-1 for a series unseen in fit)."""
        if ids is None:
            return np.zeros(n, np.int64)
        (id_name,) = self.keys_.columns
        rows, known = self._match_keys(ids.alias(id_name).to_frame(), id_name)  # type: ignore[attr-defined]
        return np.where(known, rows, -1).astype(np.int64)

    def _interval_columns(
        self,
        point: np.ndarray,
        model_quantiles: np.ndarray | None,
        series_rows: np.ndarray,
        level: Any,
        quantiles: Any,
        origins: tuple[Any, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """The columns ``predict(level=..., quantiles=...)`` adds (see
        :func:`~forecaster.estimators.intervals.interval_columns`); ``origins``: the panel
        of the forecasts' inputs and each forecast's origin row in it."""
        panel, rows = origins
        conformal = self.__dict__.get("conformal_")
        spread = None
        if conformal is not None and conformal.get("normalize") == "window":
            spread = conformal_spread(panel, rows, self.lookback_)
        times = panel.time.gather(rows).to_physical().to_numpy().astype(np.int64)
        return interval_columns(
            list(column_tuple(self.target)),
            point.astype(np.float64),
            model_quantiles,
            getattr(self.network_, "quantiles", None),
            conformal,
            series_rows,
            levels=level,
            quantiles=quantiles,
            spread=spread,
            origins=times,
            floor=domain_floor(self._fitted_transform()),
            series=panel.series_of_rows()[rows],
            names=None if self.id_col is None else panel.keys[panel.id_name].to_list(),
            calendar=uses_calendar("auto", panel.time),
            time_dtype=panel.time.dtype,
        )

"""Stateful streaming: ``model.stream(frame)`` keeps each series' state and
:meth:`ForecastStream.update` advances it by the new rows only.

A stream gives the forecast that ``predict`` gives on the whole history so far (to float32
rounding), at a cost per update proportional to the new rows, not to the lookback: the
network-level state is :class:`~forecaster.nn.streaming.SegmentStream` (a ring buffer of the
window, running window statistics and the segment projections of every step, computed once).
Only models whose forecast has such an exact incremental form are streamed, the others are
refused saying why (:func:`~forecaster.nn.streaming.check_streamable` and
:meth:`ForecastStreaming.stream`).
"""

from __future__ import annotations

__all__ = ["ForecastStream", "ForecastStreaming"]

import copy
from typing import Any

import numpy as np
import polars as pl

from forecaster._busy import uses_fitted_state
from forecaster._columns import temporary_names
from forecaster.data.dtypes import (
    as_given_kind,
    as_given_time,
    given_time_dtype,
    pandas_categories,
    pandas_time_dtype,
    trained_frame,
)
from forecaster.data.frames import (
    check_schema,
    collect_frame,
    id_cast,
    id_order,
    is_pandas_frame,
)
from forecaster.data.panel import Panel
from forecaster.data.steps import future_times
from forecaster.data.transforms import smallest_positive
from forecaster.estimators.inference import ForecastInference
from forecaster.estimators.origins import observed_windows, window_inputs
from forecaster.exceptions import DataValidationError
from forecaster.nn.streaming import SegmentStream, check_streamable


class ForecastStreaming(ForecastInference):
    """``predict`` and ``stream`` (a mixin of ``RNNForecaster``): a stream reuses the
    inference path's panels, scaling and output checks."""

    @uses_fitted_state("stream with")
    def stream(self, frame: pl.DataFrame | pl.LazyFrame) -> ForecastStream:
        """Start a stream: each series' state built from its history in ``frame``.

        ``state.update(rows)`` then advances the series by new rows only, and
        ``state.forecast()`` returns what ``predict`` would return on the whole history so
        far (the same frame, to float32 rounding), for live sensor or audio frames. An update
        of ``k`` rows costs ``O(k)``: the ``"segment"`` head's window statistics and segment
        projections are updated incrementally (:mod:`forecaster.nn.streaming`); a forecast
        reruns only the cell over the window's ``ceil(lookback / segment_length)`` segments
        and the decoder, on the CPU.

        Supported: ``head="segment"`` (the default) with any cell, ``normalization``,
        ``scaling``, ``target_transform``, ``loss`` (a quantile model streams its median, the
        point forecast of ``predict``) and ensemble. Refused with
        :class:`~forecaster.exceptions.DataValidationError`: the other heads (they read every
        step of the window from its first, so no update is cheaper than ``predict``),
        covariates, static covariates and calendar features (their windows, or the encoder's
        initial state, are not kept), series unseen in
        ``fit`` (``predict`` scales them with their whole history, which changes with every
        row) and month, quarter or year frequencies (their forecast times depend on the whole
        history of times).

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            History with the training columns, as for ``predict``; each series needs at least
            ``lookback`` rows. Started from a pandas frame, the stream's forecasts are pandas.

        Returns
        -------
        ForecastStream

        Examples
        --------
        >>> import polars as pl
        >>> from forecaster import RNNForecaster
        >>> data = pl.DataFrame({"t": range(60), "y": [float(i % 7) for i in range(60)]})
        >>> model = RNNForecaster(target="y", time_col="t", lookback=14, horizon=3,
        ...                       segment_length=7, hidden_size=8, max_epochs=1,
        ...                       random_state=0).fit(data)
        >>> state = model.stream(data.head(50))
        >>> state = state.update(data.slice(50, 10))
        >>> import numpy as np
        >>> bool(np.allclose(state.forecast()["y"], model.predict(data)["y"], atol=1e-5))
        True
        """
        self.check_fitted("stream with")
        check_streamable(self.network_)
        return ForecastStream(self, frame)


class ForecastStream:
    """The streaming state of a fitted model over the series of a frame (see
    :meth:`ForecastStreaming.stream`, which builds it).

    Attributes
    ----------
    steps_embedded : int
        Steps whose segment projection was computed so far: ``S * (lookback -
        segment_length + 1)`` for the windows of the ``S`` series when the stream starts,
        then one per new row of :meth:`update` (the work of the updates), for checking that
        an update does not redo the window.
    """

    def __init__(self, model: ForecastStreaming, frame: Any) -> None:
        self._model = model
        self._network = model.network_  # a refit replaces it: the stream then refuses
        self._pandas = is_pandas_frame(frame)  # pandas in, pandas out
        self._pandas_time = pandas_time_dtype(frame, model.time_col)  # in its own unit
        self._categories = pandas_categories(frame, [model.id_col])  # a Categorical id too
        self._given = given_time_dtype(frame, model.time_col)  # its times out, as predict's
        frame = trained_frame(frame, model.schema_, id_col=model.id_col, time_col=model.time_col)
        if model.freq_.is_calendar and model.freq_.unit != "bd":  # months, quarters, years
            raise DataValidationError(
                f"Streaming supports integer steps, fixed durations and business days; this "
                f"model's freq is {model.freq_}, whose forecast times follow each series' whole "
                "history of times (its anchor and month ends). Use predict(frame) for it."
            )
        raw = model._panel_for_predict(frame, None, call="stream")
        fitted, known = model._fitted_rows(raw)
        if not known.all():
            unseen = raw.keys[raw.id_name].filter(pl.Series(~known)).to_list()
            raise DataValidationError(
                f"Streaming needs series seen in fit; {unseen[:10]} were not. predict scales an "
                "unseen series with statistics of its whole history, which change with every "
                "new row, so no state can be updated by the new rows alone. Refit on them, or "
                "use predict(frame) for them."
            )
        panel, self._lambdas = model._predict_panel(raw)
        self._positive = smallest_positive(raw)  # floors of values <= 0 in later updates
        nt = panel.n_targets
        self._center = model.scaler_.center_[fitted][:, :nt]
        self._scale = model.scaler_.scale_[fitted][:, :nt]
        x = window_inputs(panel, panel.offsets[1:] - 1, model.lookback_).numpy()
        windows = (x[..., :nt].astype(np.float64) - self._center[:, None]) / self._scale[:, None]
        self._keys, self._targets = raw.keys, raw.targets
        # the blend's partner reads the frame's float64 values, as predict's does
        self._observed = model._observed_windows(raw, frame, panel.offsets[1:] - 1)
        _refuse_interpolated_ends(raw, model.id_col)
        self._id_name = raw.id_name
        self._previous, self._last = _last_two(raw.time, raw.offsets)
        self._state = SegmentStream(copy.deepcopy(model.network_), windows)

    @property
    def steps_embedded(self) -> int:
        return self._state.steps_embedded

    @uses_fitted_state("update a stream of", of="_model")
    def update(self, rows: pl.DataFrame | pl.LazyFrame) -> ForecastStream:
        """Advance the series by ``rows``: the next steps of some or all series (the training
        columns; each series' rows continue its last time with no gap).

        Parameters
        ----------
        rows : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            New rows, checked like ``predict``'s frame. A series of the stream may have no
            row; a series not in the stream, or rows that do not start at a series' next step,
            are refused with :class:`~forecaster.exceptions.DataValidationError`.

        Returns
        -------
        ForecastStream
            ``self``, advanced.
        """
        model = self._fitted_model("update a stream of")
        rows = trained_frame(
            rows, model.schema_, what="update", id_col=model.id_col, time_col=model.time_col
        )
        check_schema(rows, model.schema_, id_col=model.id_col, time_col=model.time_col)
        rows = collect_frame(rows, columns=list(model.schema_))
        if rows.height == 0:
            return self
        self._check_missing_ends(rows)
        raw = Panel.from_frame(
            rows, **model.column_roles(), freq=str(model.freq_), missing=model.missing,
            continues=True,
        )  # fmt: skip
        series = self._series_of(raw)
        self._check_continues(raw, series)
        panel, _ = model._predict_panel(raw, before=self._positive[series])
        self._positive[series] = np.minimum(self._positive[series], smallest_positive(raw))
        nt = panel.n_targets
        per_row = np.repeat(series, raw.lengths)
        values = panel.values[:, :nt].astype(np.float64)
        scaled = (values - self._center[per_row]) / self._scale[per_row]
        self._state.update(per_row, scaled)
        if self._observed is not None:  # each new row's values as the update holds them
            own = observed_windows(raw, rows, np.arange(len(raw.time)), 1)[:, 0]
            self._observed[series] = _slide(self._observed[series], own, raw.offsets)
        previous, last = _last_two(raw.time, raw.offsets)
        previous = pl.select(pl.coalesce(previous, self._last.gather(series))).to_series()
        self._previous = self._previous.scatter(series, previous)
        self._last = self._last.scatter(series, last)
        return self

    def _latest_times(self, series: np.ndarray) -> tuple[pl.Series, np.ndarray]:
        """The last two times of each of ``series`` (one for a series of one row), laid out
        as series of a panel: ``(times, offsets)``."""
        pairs = pl.DataFrame({"a": self._previous.gather(series), "b": self._last.gather(series)})
        times = pairs.select(pl.concat_list("a", "b").list.drop_nulls().explode())
        counts = 1 + pairs["a"].is_not_null().to_numpy().astype(np.int64)
        return times.to_series(), np.concatenate([[0], np.cumsum(counts)])

    def _steps_after(self, series: np.ndarray, horizon: int) -> pl.Series:
        """The ``horizon`` times after the last time of each of ``series``, stepped from its
        last two times (a local day grid needs the series' time of day: a last row dated
        23:00 for a skipped midnight)."""
        times, offsets = self._latest_times(series)
        return future_times(times, offsets, self._model.freq_, horizon)

    def _fitted_model(self, action: str) -> ForecastStreaming:
        """The model, refused (``check_fitted``) when its prediction parameters changed since
        its fit, or when it was fitted again since the stream started (the stream holds the
        earlier network; the model's scaling and transforms are the new fit's)."""
        model = self._model
        model.check_fitted(action)
        if model.network_ is not self._network:
            raise DataValidationError(
                f"The model was fitted again after this stream started, so the stream's state "
                f"(the earlier network's) no longer matches it. Start a new stream with "
                f"model.stream(frame) to {action.split()[0]} with the new fit."
            )
        return model

    def _check_missing_ends(self, rows: pl.DataFrame) -> None:
        """Refuse a missing target that ``predict`` would fill from rows outside the update: at
        a series' first new row with ``missing="ffill"`` or ``"interpolate"`` (filled from the
        rows before), at its last with ``"interpolate"`` (filled again once the next row
        comes)."""
        policy, model = self._model.missing, self._model
        if policy not in ("ffill", "interpolate"):
            return
        (key,) = temporary_names([*rows.columns], "_series")
        by = pl.col(model.id_col) if model.id_col is not None else pl.lit(0)
        gone = pl.any_horizontal(
            pl.col(c).cast(pl.Float64).is_null() | pl.col(c).cast(pl.Float64).is_nan()
            for c in self._targets
        )
        ends = (
            rows.with_columns(by.alias(key))
            .sort(key, model.time_col)
            .group_by(key, maintain_order=True)
            .agg(gone.first().alias("first"), gone.last().alias("last"))
        )
        bad = ends.filter(pl.col("first") | (pl.col("last") & (policy == "interpolate")))
        if bad.height:
            where = "first" if bad["first"][0] else "last"
            which = "" if model.id_col is None else f" of series {bad[key][0]!r}"
            raise DataValidationError(
                f"The {where} new row{which} has a missing target. With missing={policy!r}, "
                f"predict fills it from the rows {'before' if where == 'first' else 'after'} "
                "it, which the update does not hold, so the stream cannot give predict's "
                "forecast. "
                + (
                    "Hold rows back while targets are missing: send the last row with a "
                    "known target before them, the missing ones and the next known one in one "
                    "update."
                    if where == "first"
                    else "Send that row once its value is known, or with the rows after it up "
                    "to one with a known target."
                )
            )

    def _series_of(self, raw: Panel) -> np.ndarray:
        """The stream's index of each series of ``raw``; series not in the stream refused."""
        (row,) = temporary_names([self._id_name], "_stream")
        lookup = self._keys.select(self._id_name).with_row_index(row)
        dtype = lookup.schema[self._id_name]
        keys = raw.keys.select(id_cast(self._id_name, raw.keys.schema[self._id_name], dtype))
        matched = keys.join(lookup, on=self._id_name, how="left", maintain_order="left")[row]
        if matched.null_count():
            absent = raw.keys[raw.id_name].filter(matched.is_null()).to_list()
            raise DataValidationError(
                f"The update has rows of series {absent[:10]} that are not in the stream (it "
                "holds the series of the frame it started from that had at least lookback_ = "
                f"{self._model.lookback_} rows). Start a stream with their history "
                "(model.stream(frame)) to forecast them."
            )
        return matched.to_numpy().astype(np.int64)

    def _check_continues(self, raw: Panel, series: np.ndarray) -> None:
        """Refuse rows that do not start at the next step after each series' last time."""
        last = self._last.gather(series)
        expected = self._steps_after(series, 1)
        first = raw.time.gather(raw.offsets[:-1]).cast(expected.dtype)
        wrong = (first != expected).fill_null(True).to_numpy()
        if wrong.any():
            k = int(np.flatnonzero(wrong)[0])
            which = raw.keys[raw.id_name][k]
            raise DataValidationError(
                f"The update of series {which!r} starts at {first[k]}, but its next step is "
                f"{expected[k]} (its last time is {last[k]}). Updates must continue each series "
                "without a gap or overlap: send the rows after its last time, in order."
            )

    def _window(self) -> np.ndarray:
        """The latest ``lookback`` targets of every series ``(S, lookback, T)``, oldest first,
        on the network's side of ``target_transform`` (what ``predict`` blends with)."""
        state = self._state
        slots = (state.pos[:, None] + np.arange(state.lookback)) % state.lookback
        window = state.values[np.arange(len(state.pos))[:, None], slots]
        return window * self._scale[:, None] + self._center[:, None]

    @uses_fitted_state("forecast with", of="_model")
    def forecast(self, *, level: Any = None, quantiles: Any = None) -> pl.DataFrame:
        """The next ``horizon`` steps of every series of the stream, as ``predict`` returns
        them on the whole history so far (columns id, time and one per target). Series that
        end before the stream's last time (no rows in the latest updates) are forecast from
        their own last time and named in a
        :class:`~forecaster.exceptions.StaleSeriesWarning`, as ``predict`` names them.

        Parameters
        ----------
        level, quantiles : None
            Not supported: a stream gives point forecasts (a quantile model's median).
            Intervals and quantiles are ``predict``'s (``model.predict(history, level=80)``
            on the history so far); passing either raises a ``TypeError`` that says so.

        Returns
        -------
        polars.DataFrame
            A pandas.DataFrame when the stream was started from one; the times in the time
            dtype of the frame it was started from, as ``predict`` returns them.

        Raises
        ------
        TypeError
            For ``level`` or ``quantiles`` other than None.
        """
        _refuse_intervals(level=level, quantiles=quantiles)
        model = self._fitted_model("forecast with")
        horizon = int(model.horizon)
        ids = self._keys[self._id_name]
        if model._reads_network():
            y = self._state.forecast() * self._scale[:, None] + self._center[:, None]
            values = model._forecast_values(y, self._lambdas, ids)
            pred = model._blend_baseline(values, self._window(), self._lambdas, self._observed)
        else:  # a blend weighing the network by 0: the partner's alone, as predict forms it
            pred = model._partner_alone(self._window(), self._lambdas, self._observed)
        every = np.arange(len(ids))
        latest, offsets = self._latest_times(every)  # as predict warns on the history so far
        model._warn_stale_series(latest, offsets, ids, self._last.max(), None, "the stream's")
        times = future_times(latest, offsets, model.freq_, horizon)  # (_steps_after's, once)
        flat = pred.reshape(-1, pred.shape[-1])
        out = pl.DataFrame(
            [ids.gather(np.repeat(np.arange(len(ids)), horizon)), times.alias(model.time_col)]
        ).with_columns(pl.Series(name, flat[:, j]) for j, name in enumerate(self._targets))
        if model.id_col is None:
            out = out.drop(self._id_name)
        else:  # sorted by (id, time), as predict returns them
            out = out.sort(id_order(out[model.id_col]), model.time_col)
        out = as_given_time(out, self._given, model.schema_.get(model.time_col))
        return as_given_kind(out, self._pandas, self._pandas_time, self._categories)


def _refuse_intervals(**asked: Any) -> None:
    """Refuse the interval arguments of ``predict`` (``level``, ``quantiles``) passed to
    :meth:`ForecastStream.forecast`, which gives point forecasts only."""
    given = {name: value for name, value in asked.items() if value is not None}
    if given:
        shown = ", ".join(f"{name}={value!r}" for name, value in given.items())
        raise TypeError(
            f"ForecastStream.forecast() gives point forecasts only (a quantile model's median), "
            f"got {shown}. Intervals and quantiles are predict's: call "
            f"model.predict(history, {shown}) on the history so far (the stream's start "
            "frame and its updates), on a model calibrated with model.calibrate(...) for "
            "level; or call forecast() without them."
        )


def _refuse_interpolated_ends(raw: Panel, id_col: str | None) -> None:
    """Refuse a stream's start frame whose last target of a series was interpolated
    (``missing="interpolate"``): ``predict`` fills it again from the next row, which the
    stream's state would not see."""
    if raw.interpolated is None:
        return
    ends = raw.interpolated[raw.offsets[1:] - 1, : len(raw.targets)].any(axis=1)
    if ends.any():
        which = (
            "" if id_col is None else f" of series {raw.keys[raw.id_name][int(ends.argmax())]!r}"
        )
        raise DataValidationError(
            f"The last row of the stream's start frame{which} has a missing target. With "
            "missing='interpolate', predict fills it from the rows after it, which the start "
            "frame does not hold, so the stream cannot give predict's forecast. Start the "
            "stream from the rows before the last known target, then send that row, the "
            "missing ones and the next known one in one update."
        )


def _slide(windows: np.ndarray, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``windows`` ``(S, lookback, T)`` (oldest first) moved on by the new ``rows`` of each
    series (series ``i``: ``rows[offsets[i]:offsets[i + 1]]``, in time order): the latest
    ``lookback`` values of each window followed by its rows."""
    lookback = windows.shape[1]
    counts = np.diff(offsets)
    source = counts[:, None] + np.arange(lookback)  # position in the window, then its rows
    old = windows[np.arange(len(windows))[:, None], np.minimum(source, lookback - 1)]
    new = rows[np.maximum(offsets[:-1, None] + source - lookback, 0)]
    return np.where((source < lookback)[..., None], old, new)


def _last_two(times: pl.Series, offsets: np.ndarray) -> tuple[pl.Series, pl.Series]:
    """The time before the last of each series (null for a series of one row) and its last."""
    ends = offsets[1:] - 1
    previous = times.gather(np.maximum(ends - 1, 0))
    single = pl.Series(ends == offsets[:-1])
    previous = pl.select(pl.when(single).then(None).otherwise(previous)).to_series()
    return previous.alias(times.name), times.gather(ends)

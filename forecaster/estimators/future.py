"""The future-known inputs of a forecast of
:class:`~forecaster.estimators.forecaster.RNNForecaster`: the user's future covariates over each
horizon and the calendar features of its steps.

``predict(frame, future=...)`` reads the future covariates from the ``future`` frame, at the
forecast steps only: its rows at other times of a forecast series (the history, or steps after
the horizon: a longer calendar of known values) are not read, silently, and its rows of series
that the frame does not hold are not read, with a
:class:`~forecaster.exceptions.ForecasterWarning` that names a few. Without ``future=``,
``predict(frame, cutoff=t)`` and ``predict(frame, cutoff=[...])`` read them from the frame's
rows after each origin, which must be there, filled by the model's ``missing=`` policy like the
rest of the frame (:meth:`FutureInputs._origin_user_future`, one code for both: one cutoff is
forecast as a list of one, :meth:`FutureInputs._cutoff_origins`, with ``future=`` too, whose
values it reads instead: :meth:`FutureInputs._origins_future`), with a
:class:`~forecaster.exceptions.ForecasterWarning` where the policy made up values over a
horizon (:meth:`FutureInputs._warn_made_up_future`), which ``future=`` refuses; the targets and
past covariates of the rows after the (latest) cutoff are not read and may be missing
(:func:`hold_after`). The calendar features come from the steps' times
(:func:`~forecaster.estimators.origins.step_times` for a list of cutoffs), so a model with a
calendar and no future covariates forecasts from any origin, the end of the data included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._columns import temporary_names
from forecaster._polars import collect
from forecaster.data.calendar import calendar_values
from forecaster.data.checks import check_float32_range, check_unique_keys, check_values
from forecaster.data.frames import check_schema, collect_frame, column_tuple, counted, id_cast
from forecaster.data.frequency import Frequency
from forecaster.data.made_up import observed_rows, warn_made_up_origins
from forecaster.data.panel import Panel
from forecaster.data.steps import future_times
from forecaster.data.times import time_value_text, to_time_point
from forecaster.estimators.origins import origin_rows, step_sources, step_times
from forecaster.estimators.rows_ahead import observed_split, rows_ahead_span
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = ["FutureInputs", "hold_after", "series_sorted", "warn_made_up_future"]


def hold_after(
    frame: pl.DataFrame, point: Any, columns: list[str], *, id_col: str | None, time_col: str
) -> pl.DataFrame:
    """``frame`` (sorted by series and time) with the ``columns`` (the targets and past
    covariates) of its rows after ``point`` holding each series' last value at or before it:
    no forecast from ``point`` or earlier reads them, so they may be missing (a request's
    future rows carry the future covariates only), and the ``missing=`` policy fills the
    history as if the frame ended at ``point``. A series without a value up to ``point`` keeps
    its own; ``point`` None returns ``frame`` as it is."""
    if point is None or not columns:
        return frame
    frame = series_sorted(frame, id_col=id_col, time_col=time_col)
    after = (pl.col(time_col) > pl.lit(point, dtype=frame.schema[time_col])).fill_null(False)
    held = []
    for name in columns:
        known = pl.when(after).then(None).otherwise(pl.col(name))  # the values up to point
        last = known.forward_fill()  # over the sorted rows: from the series' own, or earlier
        own = last.is_not_null()
        if id_col is not None:  # each series' number (its rows are contiguous), null ids too
            series = pl.col(id_col).rle_id()
            own = pl.when(known.is_not_null()).then(series).forward_fill() == series
        held.append(pl.when(after & own).then(last).otherwise(name).alias(name))
    return frame.with_columns(held)


def series_sorted(frame: pl.DataFrame, *, id_col: str | None, time_col: str) -> pl.DataFrame:
    """``frame`` sorted by series and time (nulls last, a stable sort), or as it is where it
    is sorted (checked: a tenth of a sort)."""
    if _sorted_by(frame, id_col, time_col):
        return frame
    keys = [c for c in (id_col, time_col) if c]
    return frame.sort(keys, nulls_last=True, maintain_order=True)


def _sorted_by(frame: pl.DataFrame, id_col: str | None, time_col: str) -> bool:
    """Whether ``frame`` is sorted by series (a text or integer id) and time, with no null
    key: a stable sort would leave it as it is (a frame read as data is usually sorted,
    and a check costs a tenth of a sort)."""
    keys = [c for c in (id_col, time_col) if c]
    if any(frame[c].null_count() for c in keys):
        return False
    if id_col is None:
        return frame[time_col].is_sorted()
    ids = frame[id_col]
    if not (ids.dtype == pl.String or ids.dtype.is_integer()) or not ids.is_sorted():
        return False
    time, same = pl.col(time_col), pl.col(id_col) == pl.col(id_col).shift(1)
    return not frame.select((same & (time < time.shift(1))).any()).item()


class FutureInputs:
    """The future-known inputs of ``predict`` (a mixin of ``RNNForecaster``, which holds the
    parameters and the fitted attributes it reads)."""

    target: Any
    covariates: Any
    time_col: str
    id_col: str | None
    future_covariates: Any
    horizon: int
    missing: str
    schema_: dict[str, str]
    freq_: Frequency
    _frame_panel: Callable[..., Panel]
    _read_rows: Callable[..., tuple[pl.DataFrame, pl.Series]]
    _warn_stale_series: Callable[..., None]

    def _future_covariates(
        self,
        panel: Panel,
        horizon_times: pl.DataFrame,
        future: Any,
        center: torch.Tensor,
        scale: torch.Tensor,
        history: Any = None,
    ) -> torch.Tensor | None:
        """The scaled future-known inputs ``(n_series, horizon, n_future)`` of a forecast from
        each series' end (``horizon_times``: its steps; ``center``, ``scale``: each series'
        scaling; ``history``: the frame predict was given), None for a model without any."""
        names = list(panel.future_covariates)
        calendar = getattr(self, "calendar_", ())
        if not names and not calendar:
            return None
        parts = []
        if calendar:
            times = horizon_times[self.time_col].cast(panel.time.dtype)
            parts.append(torch.from_numpy(calendar_values(times, calendar)).double())
        if names:
            user = self._user_future(panel, horizon_times, future, names, history)
            parts.insert(0, user)
        values = torch.cat(parts, dim=-1).reshape(panel.n_series, int(self.horizon), -1)
        nf = values.shape[-1]
        return ((values - center[:, None, -nf:]) / scale[:, None, -nf:]).float()

    def _user_future(
        self,
        panel: Panel,
        horizon_times: pl.DataFrame,
        future: Any,
        names: list[str],
        history: Any = None,
    ) -> torch.Tensor:
        """The user's future covariates over the horizon, ``(n_series * horizon, n)``, from
        ``future`` (``history``: the frame predict was given). A cutoff without ``future``
        reads them from the frame as a list of cutoffs does (:meth:`_cutoff_origins`)."""
        if future is None:
            raise self._no_future_error(history)
        keys = [c for c in (self.id_col, self.time_col) if c]
        expected = {c: t for c, t in self.schema_.items() if c in keys}
        schema = check_schema(
            future, expected, id_col=self.id_col, time_col=self.time_col, what="future frame"
        )
        absent = [c for c in names if c not in schema]
        text = [
            f"{c} ({schema[c]})"
            for c in names
            if c in schema and not (schema[c].is_numeric() or schema[c] == pl.Boolean)
        ]  # as fit reads them: numbers or booleans
        if absent or text:
            raise DataValidationError(
                f"The future frame must hold the future covariates {names} as numbers; "
                + (f"it lacks {absent}" if absent else f"it has {text}")
                + ". Add or cast them, e.g. pl.col(name).cast(pl.Float64)."
            )
        roles = (*column_tuple(self.target), *column_tuple(getattr(self, "covariates", None)))
        unread = [c for c in roles if c in schema]
        if unread:  # values a user may expect to be used: the history frame's roles
            warn_at_caller(
                f"The future frame holds {unread}, which predict does not read from it: it "
                f"takes only the future covariates {names} from it (targets and past "
                "covariates come from the history frame, up to each forecast's origin). "
                "Drop them from future= to silence this.",
                ForecasterWarning,
            )
        future = collect_frame(future, columns=[*keys, *names], what="future frame")
        check_unique_keys(future, keys, what="future frame")
        values = self._future_values(future, horizon_times, panel.id_name, names)
        self._warn_unknown_series(future, horizon_times, panel.id_name, history)
        return values

    def _no_future_error(self, frame: Any) -> DataValidationError:
        """The error of ``predict(frame)`` without ``future=`` nor ``cutoff=`` for a model with
        future covariates: it forecasts from each series' last row and needs their values
        after it. Where ``frame`` ends with rows ahead (the targets missing, the future
        covariates given: a common layout), it names the cutoff that forecasts from the last
        observed targets and reads them, or the ``future=`` frame they make."""
        names = list(column_tuple(self.future_covariates))
        keys = [c for c in (self.id_col, self.time_col) if c]
        message = (
            f"This model uses future covariates {names}: pass their values over the next "
            f"{self.horizon} steps of every series as predict(frame, future=...), a frame "
            f"with columns {keys} + {names}; or forecast from inside the frame with "
            "predict(frame, cutoff=...), which reads them from its rows after the cutoff."
        )
        roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
        targets = column_tuple(self.target)
        span = None if frame is None else rows_ahead_span(frame, targets, names, **roles)
        if span is None:
            return DataValidationError(message)
        first, last = span
        if first != last:  # one cutoff: a series observed up to an earlier time lacks the rows
            return DataValidationError(self._rows_ahead_per_series(names, first, last))
        time = f"pl.col({self.time_col!r})"
        return DataValidationError(
            f"The frame ends with rows whose targets are missing and whose future covariates "
            f"{names} are given (the rows ahead, after {last}); predict(frame) forecasts from "
            f"each series' last row, after them, and would need the values after those as "
            f"future=. To forecast from the last observed targets, pass "
            f"predict(frame, cutoff={last!r}), which reads the future covariates from the "
            f"rows after it; or predict(frame.filter({time} <= {last!r}), "
            f"future=frame.filter({time} > {last!r}))."
        )

    def _rows_ahead_per_series(self, names: list[str], first: Any, last: Any) -> str:
        """The advice of :meth:`_no_future_error` for rows ahead after series' last observed
        targets that differ (``first`` to ``last``): each series split at its own (the
        history up to it, ``future=`` after it), since one cutoff leaves the series observed
        up to an earlier time without the future covariates after it."""
        own = observed_split(column_tuple(self.target), id_col=self.id_col, time_col=self.time_col)
        return (
            f"The frame ends with rows whose targets are missing and whose future covariates "
            f"{names} are given (the rows ahead), after last observed targets that differ "
            f"between its series ({first} to {last}); predict(frame) forecasts from each "
            "series' last row, after them, and one cutoff would leave the series observed "
            "up to an earlier time without the future covariates after it. To forecast each "
            f"series from its last observed targets, split the frame there: own = {own}; "
            f"predict(frame.filter(pl.col({self.time_col!r}) <= own), "
            f"future=frame.filter(pl.col({self.time_col!r}) > own))."
        )

    def _future_values(
        self, future: pl.DataFrame, horizon_times: pl.DataFrame, id_name: str, names: list[str]
    ) -> torch.Tensor:
        """The rows of ``future`` at the forecast steps ``horizon_times``: every step present,
        every value finite (checked like the history); rows at other times are not read."""
        given = future[id_name] if self.id_col is not None else None
        if self.id_col is None:
            future = future.with_columns(pl.lit(0, pl.UInt8).alias(id_name))
        else:
            dtype = horizon_times.schema[id_name]
            future = future.with_columns(id_cast(id_name, future.schema[id_name], dtype))
        time_dtype = horizon_times.schema[self.time_col]
        (present,) = temporary_names([id_name, self.time_col, *names], "_present")
        joined = horizon_times.join(
            future.select(
                id_name,
                pl.col(self.time_col).cast(time_dtype, strict=False),
                *[pl.col(c).cast(pl.Float64) for c in names],
                pl.lit(True).alias(present),
            ),
            on=[id_name, self.time_col],
            how="left",
            maintain_order="left",
        )
        absent_rows = joined[present].is_null()
        if absent_rows.any():
            example = joined.filter(absent_rows).head(3).select(id_name, self.time_col).rows()
            known = future[id_name].is_in(horizon_times[id_name].implode()).fill_null(False)
            strays: list[Any] = []
            if given is not None:
                strays = given.filter(~known).unique(maintain_order=True).head(5).to_list()
            raise DataValidationError(
                f"The future frame has no rows for "
                f"{counted(int(absent_rows.sum()), 'forecast step', 'forecast steps')}, "
                f"e.g. {example}. It must cover the next {self.horizon} steps of every series "
                f"with the values of {names}."
                + (f" Its ids {strays} match no series of the frame." if strays else "")
            )
        check_values(
            joined,
            names,
            id_name=id_name,
            time_col=self.time_col,
            what="future frame",
            fix="Future covariates need a finite value at every forecast step: fill them "
            "(e.g. pl.col(c).fill_nan(None).forward_fill()) or fix the source.",
        )
        check_float32_range(joined, names, what=" of the future frame")
        return torch.from_numpy(joined.select(names).to_numpy().astype(np.float64))

    def _warn_unknown_series(
        self, future: pl.DataFrame, horizon_times: pl.DataFrame, id_name: str, history: Any
    ) -> None:
        """Warn when ``future`` (ids cast as the forecast's) holds series that the history
        frame ``history`` does not (their rows are not read). Series of the history that are
        not forecast (too short, dropped with their own warning) are not named again."""
        if self.id_col is None:
            return
        dtype = horizon_times.schema[id_name]
        ids = future.select(id_cast(id_name, future.schema[id_name], dtype)).to_series().unique()
        strays = ids.filter(~ids.is_in(horizon_times[id_name].unique().implode()))
        if strays.len() == 0 or history is None:  # the common case costs one unique
            return
        seen = history.lazy().select(pl.col(self.id_col).unique())
        seen = collect(seen, streaming=True).to_series()
        seen = seen.to_frame().select(id_cast(self.id_col, seen.dtype, strays.dtype)).to_series()
        strays = strays.filter(~strays.is_in(seen.implode())).sort()
        if strays.len():
            warn_at_caller(
                f"The future frame holds rows of {strays.len()} series that are not in the "
                f"frame, e.g. {strays.head(5).to_list()}: they are not read. Drop them from "
                "future= to silence this (or add their history to forecast them).",
                ForecasterWarning,
            )

    def _origins_future(
        self, panel: Panel, series: np.ndarray, rows: np.ndarray, future: Any, history: Any
    ) -> np.ndarray:
        """The user's future covariates ``(B, horizon, n)`` over the horizons of the origins
        at the global ``rows`` of ``panel`` (``series``: each origin's series), read from the
        ``future=`` frame as a forecast from each series' end reads them (:meth:`_user_future`:
        every step there, finite; ``history``: the frame predict was given)."""
        horizon, names = int(self.horizon), list(panel.future_covariates)
        ids = panel.keys[panel.id_name].gather(np.repeat(series, horizon))
        times = step_times(panel, series, rows, self.freq_, horizon).alias(self.time_col)
        values = self._user_future(panel, pl.DataFrame([ids, times]), future, names, history)
        return values.numpy().reshape(len(rows), horizon, len(names))

    def _cutoff_origins(
        self, panel: Panel, frame: Any, cutoff: Any, future: bool = False
    ) -> tuple[Panel, np.ndarray, np.ndarray]:
        """The origins of ``predict(frame, cutoff=cutoff)`` as a list of one cutoff forecasts
        them: the validated panel of ``frame``'s rows of the series of ``panel`` (its rows up
        to ``cutoff``) read up to the cutoff (:meth:`_frame_panel`: the future covariates of
        the rows after it are read, with the rest of the frame's, by the ``missing=``
        policy), and the series and global row of each series' last row at or before the
        cutoff there: the cutoff itself for a series that goes on after it, a gap that
        ``missing=`` fills included (``missing="error"`` refuses the gap), each checked to
        have its next ``horizon`` rows where the model reads future covariates from them (not
        with ``future``: ``future=`` gives them, and the frame's after the cutoff are held
        as its targets are, not read). Named here: the series that end before the cutoff
        (forecast from their end) and made-up values at the origins. Where those rows are
        ``panel``'s own (:meth:`_reads_history_only`), ``panel`` is reused: validated once."""
        point = to_time_point(cutoff, panel.time.dtype, name="cutoff")
        whole = panel  # the rows up to the cutoff are all it reads: validated once
        if not self._reads_history_only(panel, frame, point, future):
            history = None  # the series of the history up to the cutoff: a later one unread
            if self.id_col is not None:
                history = panel.keys.select(pl.col(panel.id_name).alias(self.id_col))
            read, _ = self._read_rows(frame, point, future, series=history)
            whole = self._frame_panel(read, point, future)
        ids = panel.keys[panel.id_name]
        pairs = pl.DataFrame([pl.Series(self.time_col, [point] * len(ids), panel.time.dtype)])
        if self.id_col is not None:
            pairs = pairs.with_columns(ids.alias(self.id_col))
        roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
        series, rows = origin_rows(whole, pairs, **roles, lookback=1)  # (checked in panel)
        if not future:
            self._check_rows_after(whole, series, rows, cutoff)
        ends = panel.time.gather(panel.offsets[1:] - 1)
        ended = (whole.time.gather(rows) == ends).to_numpy()  # no row after its end read
        held = panel.select_series(ended)
        self._warn_stale_series(held.time, held.offsets, held.keys[held.id_name], point, cutoff)
        warn_made_up_origins(whole, frame, series, rows, self.missing, at="cutoff")
        return whole, series, rows

    def _reads_history_only(self, panel: Panel, frame: Any, point: Any, future: bool) -> bool:
        """Whether the origins of ``predict(frame, cutoff=point)`` read nothing of ``frame``
        after ``point`` but what ``panel`` (its rows up to ``point``) holds, so that
        :meth:`_cutoff_origins` reuses it (the same bits as the panel of the rows
        :meth:`_read_rows` gives, which adds no row then): the model reads no future
        covariates from the rows after ``point`` (none, or ``future`` gives them), and no
        series is inside a gap at ``point`` (each has a row at it, or none after it: it ended
        before it)."""
        if column_tuple(self.future_covariates) and not future:
            return False
        at = pl.lit(point, dtype=panel.time.dtype)
        ends = panel.time.gather(panel.offsets[1:] - 1).to_frame("t")
        stale = ends.select(pl.col("t") < at).to_series().to_numpy()  # each series' last row
        if not stale.any():
            return True
        keys = [c for c in (self.id_col, self.time_col) if c]
        after = collect_frame(frame, columns=keys).filter(pl.col(self.time_col) > at)
        if self.id_col is None or after.is_empty():  # one series: it ended before point
            return after.is_empty()
        ended = panel.keys.filter(pl.Series(stale)).select(pl.col(panel.id_name).alias(self.id_col))
        return after.join(ended, on=self.id_col, how="semi").is_empty()  # (as _read_rows)

    def _check_rows_after(
        self, panel: Panel, series: np.ndarray, rows: np.ndarray, cutoff: Any = None
    ) -> None:
        """Refuse origins at the global ``rows`` of the model panel ``panel`` (``series``: each
        origin's series) without their next ``horizon`` rows, where
        :meth:`_origin_user_future` reads the user's future covariates (``cutoff``: the one
        cutoff asked for, named in the error; None for a list of cutoffs)."""
        horizon = int(self.horizon)
        names = list(column_tuple(self.future_covariates))
        local = rows - panel.offsets[series]
        beyond = local + horizon >= panel.lengths[series]
        if not names or not beyond.any():
            return
        first = int(np.flatnonzero(beyond)[0])
        which = f"the origin at {panel.time[int(rows[first])]}"
        if self.id_col is not None:
            which += f" of series {panel.keys[panel.id_name][int(series[first])]!r}"
        asked = "each cutoff" if cutoff is None else f"cutoff={time_value_text(cutoff)}"
        noun = "origin" if cutoff is None else "series"
        raise DataValidationError(
            f"Without future=, the future covariates {names} over each horizon are read from "
            f"the frame's rows after {asked}: every {noun} needs its next {horizon} rows in "
            f"it, which {int(beyond.sum())} {noun}{'s' * (cutoff is None)} lack (e.g. {which}). "
            "Add those rows (only their future covariates are read: their targets may be "
            "missing), pass an earlier cutoff, or pass the values of one cutoff as "
            "predict(frame, cutoff=c, future=...)."
        )

    def _origin_user_future(self, panel: Panel, rows: np.ndarray) -> np.ndarray:
        """The user's future covariates ``(B, horizon, n)`` float64 of the origins at the
        global ``rows`` of the model panel ``panel``: its rows after each origin (checked by
        :meth:`_check_rows_after`)."""
        n_user = len(column_tuple(self.future_covariates))
        first = panel.values.shape[1] - panel.n_future  # the future-known columns come last
        steps = rows[:, None] + np.arange(1, int(self.horizon) + 1)
        return panel.values[steps, first : first + n_user].astype(np.float64)

    def _warn_made_up_future(
        self, panel: Panel, frame: Any, series: np.ndarray, rows: np.ndarray
    ) -> None:
        """Warn, once for all the origins at the global ``rows`` of the model panel ``panel``
        (``series``: each origin's series; ``frame``: the frame it was read from), when
        ``missing=`` made up values of the user's future covariates over their horizons
        (:func:`warn_made_up_future`)."""
        names = list(column_tuple(self.future_covariates))
        if not names or not len(rows) or self.missing == "error":
            return
        horizon = int(self.horizon)
        steps = (rows[:, None] + np.arange(1, horizon + 1)).ravel()
        made = np.isnan(observed_rows(panel, frame, steps, names))
        ids = None if self.id_col is None else panel.keys[panel.id_name].gather(series)
        warn_made_up_future(
            made.reshape(len(rows), horizon, len(names)),
            ids,
            panel.time.gather(steps),
            names=names,
            missing=self.missing,
            fix="Fill them with the values known ahead (the frame's rows after the cutoff, or "
            "future=... with one cutoff), or pass earlier cutoffs.",
        )

    def _steps_after_ends(
        self, panel: Panel, series: np.ndarray, rows: np.ndarray, read_after: bool = True
    ) -> Any:
        """What :meth:`_origin_future` reads beyond the data for the origins at the global
        ``rows`` of the model panel ``panel`` (``series``: each origin's series): the calendar
        features of the ``horizon`` steps after each series' end (None without a calendar).
        The user's future covariates are read from the panel's rows after each origin, so
        every origin needs its next ``horizon`` rows there when the model has any (checked
        here, before any forecast; not with ``read_after`` False: ``future=`` gives them)."""
        if read_after:
            self._check_rows_after(panel, series, rows)
        calendar = getattr(self, "calendar_", ())
        if not calendar:
            return None
        after = future_times(panel.time, panel.offsets, self.freq_, int(self.horizon))
        return calendar_values(after.cast(panel.time.dtype), calendar)

    def _origin_future(
        self,
        panel: Panel,
        series: np.ndarray,
        rows: np.ndarray,
        after: Any,
        user: np.ndarray | None = None,
    ) -> np.ndarray:
        """The raw future-known inputs ``(B, horizon, n_future)`` float64 of the origins at the
        global ``rows`` of the model panel ``panel``: the user's future covariates of the rows
        after each origin, then the calendar features of the steps' times (inside the series
        the panel's own, after its end ``after``, from :meth:`_steps_after_ends`); ``user``:
        the user's future covariates from ``future=`` instead, ``(B, horizon, n)``."""
        horizon, nf = int(self.horizon), panel.n_future
        out = np.empty((len(rows), horizon, nf))
        first = panel.values.shape[1] - nf  # the future-known columns come last
        n_user = len(column_tuple(self.future_covariates))
        if n_user:
            out[..., :n_user] = self._origin_user_future(panel, rows) if user is None else user
        if after is not None:
            source = step_sources(panel, series, rows, horizon)
            inside = source < len(panel.time)
            out[..., n_user:][inside] = panel.values[source[inside], first + n_user :]
            out[..., n_user:][~inside] = after[source[~inside] - len(panel.time)]
        return out


def warn_made_up_future(
    made: np.ndarray,
    ids: pl.Series | None,
    times: pl.Series,
    *,
    names: list[str],
    missing: str,
    fix: str,
) -> None:
    """Warn, once for all the forecasts of a call, when ``missing=`` made up values of the
    user's future covariates ``names`` that the forecasts read over their horizons (the frame
    holds no value there: a null or NaN, or no row), where ``future=`` and ``forecaster run``
    refuse them. Names the counts of series, origins, steps and values per column, and an
    example; ``fix``: what to do, for the caller (``predict``'s cutoffs, ``score``).

    Parameters
    ----------
    made : numpy.ndarray
        ``(origins, horizon, len(names))`` booleans: the values made up.
    ids : polars.Series or None
        The series of each origin (None for a model without an id column).
    times : polars.Series
        The time of each forecast step, origin after origin (``origins * horizon``).
    names, missing, fix : list of str, str, str
        The future covariates, the ``missing=`` policy and the advice.
    """
    if not made.any():
        return
    origins = made.any(axis=(1, 2))
    first = int(np.flatnonzero(origins)[0])
    step = int(np.flatnonzero(made[first].any(axis=1))[0])
    example = f"at {times[first * made.shape[1] + step]}"
    if ids is not None:
        example = f"series {ids[first]!r} " + example
    counts = {name: int(made[..., j].sum()) for j, name in enumerate(names) if made[..., j].any()}
    steps_hit = sorted(int(k) + 1 for k in np.flatnonzero(made.any(axis=(0, 2))))
    which = "" if ids is None else f"{ids.filter(pl.Series(origins)).n_unique()} series, "
    n_origins = int(origins.sum())
    warn_at_caller(
        f"The frame holds no value (null, NaN or no row) of the future covariates at "
        f"forecast steps ({which}{n_origins} origin{'s' if n_origins > 1 else ''}, steps "
        f"{steps_hit} of the horizon; values per column {counts}, e.g. {example}): "
        f"missing={missing!r} made them up, and the forecasts read them as known. "
        f"predict(frame, future=...) and `forecaster run` refuse such values. {fix}",
        ForecasterWarning,
    )

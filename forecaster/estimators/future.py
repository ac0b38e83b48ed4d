"""The future-known inputs of a forecast of
:class:`~forecaster.estimators.forecaster.RNNForecaster`: the user's future covariates over each
horizon and the calendar features of its steps.

``predict(frame)`` and ``predict(frame, cutoff=t)`` read the future covariates from the
``future`` frame, at the forecast steps only: its rows at other times of a forecast series (the
history, or steps after the horizon: a longer calendar of known values) are not read, silently,
and its rows of series that the frame does not hold are not read, with a
:class:`~forecaster.exceptions.ForecasterWarning` that names a few. ``predict(frame,
cutoff=[...])`` reads them from the frame's rows after each origin, which must be there. The
calendar features come from the steps' times (:func:`~forecaster.estimators.origins.step_times`
for a list of cutoffs), so a model with a calendar and no future covariates forecasts from any
origin, the end of the data included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._columns import temporary_names
from forecaster.data.calendar import calendar_values
from forecaster.data.checks import check_float32_range, check_unique_keys, check_values
from forecaster.data.frames import check_schema, collect_frame, column_tuple, id_cast
from forecaster.data.frequency import Frequency
from forecaster.data.panel import Panel
from forecaster.data.steps import future_times
from forecaster.estimators.origins import step_sources
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = ["FutureInputs"]


class FutureInputs:
    """The future-known inputs of ``predict`` (a mixin of ``RNNForecaster``, which holds the
    parameters and the fitted attributes it reads)."""

    target: Any
    covariates: Any
    time_col: str
    id_col: str | None
    future_covariates: Any
    horizon: int
    schema_: dict[str, str]
    freq_: Frequency

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
            parts.insert(0, self._user_future(panel, horizon_times, future, names, history))
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
        """The user's future covariates over the horizon, ``(n_series * horizon, n)``."""
        if future is None:
            raise DataValidationError(
                f"This model uses future covariates {names}: pass their values over the next "
                f"{self.horizon} steps of every series as predict(frame, future=...), a frame "
                f"with columns {[c for c in (self.id_col, self.time_col) if c]} + {names}."
            )
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
                f"The future frame has no rows for {int(absent_rows.sum())} forecast steps, "
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
        seen = history.lazy().select(pl.col(self.id_col).unique()).collect().to_series()
        seen = seen.to_frame().select(id_cast(self.id_col, seen.dtype, strays.dtype)).to_series()
        strays = strays.filter(~strays.is_in(seen.implode())).sort()
        if strays.len():
            warn_at_caller(
                f"The future frame holds rows of {strays.len()} series that are not in the "
                f"frame, e.g. {strays.head(5).to_list()}: they are not read. Drop them from "
                "future= to silence this (or add their history to forecast them).",
                ForecasterWarning,
            )

    def _steps_after_ends(self, panel: Panel, series: np.ndarray, rows: np.ndarray) -> Any:
        """What :meth:`_origin_future` reads beyond the data for the origins at the global
        ``rows`` of the model panel ``panel`` (``series``: each origin's series): the calendar
        features of the ``horizon`` steps after each series' end (None without a calendar).
        The user's future covariates are read from the panel's rows after each origin, so
        every origin needs its next ``horizon`` rows there when the model has any."""
        horizon = int(self.horizon)
        names = list(column_tuple(self.future_covariates))
        local = rows - panel.offsets[series]
        beyond = local + horizon >= panel.lengths[series]
        if names and beyond.any():
            first = int(np.flatnonzero(beyond)[0])
            which = f"the origin at {panel.time[int(rows[first])]}"
            if self.id_col is not None:
                which += f" of series {panel.keys[panel.id_name][int(series[first])]!r}"
            raise DataValidationError(
                f"With a list of cutoffs, the future covariates {names} over each horizon are "
                f"read from the frame: every origin needs its next {horizon} rows in it, which "
                f"{int(beyond.sum())} origins lack (e.g. {which}). "
                "Pass earlier cutoffs, or predict(frame, cutoff=c, future=...) for the last one."
            )
        calendar = getattr(self, "calendar_", ())
        if not calendar:
            return None
        after = future_times(panel.time, panel.offsets, self.freq_, horizon)
        return calendar_values(after.cast(panel.time.dtype), calendar)

    def _origin_future(
        self, panel: Panel, series: np.ndarray, rows: np.ndarray, after: Any
    ) -> np.ndarray:
        """The raw future-known inputs ``(B, horizon, n_future)`` float64 of the origins at the
        global ``rows`` of the model panel ``panel``: the user's future covariates of the rows
        after each origin, then the calendar features of the steps' times (inside the series
        the panel's own, after its end ``after``, from :meth:`_steps_after_ends`)."""
        horizon, nf = int(self.horizon), panel.n_future
        out = np.empty((len(rows), horizon, nf))
        first = panel.values.shape[1] - nf  # the future-known columns come last
        n_user = len(column_tuple(self.future_covariates))
        if n_user:
            steps = rows[:, None] + np.arange(1, horizon + 1)
            out[..., :n_user] = panel.values[steps, first : first + n_user]
        if after is not None:
            source = step_sources(panel, series, rows, horizon)
            inside = source < len(panel.time)
            out[..., n_user:][inside] = panel.values[source[inside], first + n_user :]
            out[..., n_user:][~inside] = after[source[~inside] - len(panel.time)]
        return out

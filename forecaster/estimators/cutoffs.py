"""``predict``'s cutoffs: the argument as ``predict`` reads it (:func:`cutoff_argument`), and
their panels: the rows of a frame up to one cutoff
(:meth:`CutoffPanels._panel_for_predict`), every row of it read up to the latest of a list of
cutoffs and the origins of each (:meth:`CutoffPanels._origin_panel`), and the warning that
names the series that end before the cutoff (:meth:`CutoffPanels._warn_stale_series`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import describe_value
from forecaster.data import trained_frame
from forecaster.data.frames import (
    check_schema,
    collect_frame,
    column_tuple,
    counted,
    id_cast,
    match_keys,
)
from forecaster.data.frequency import Frequency
from forecaster.data.panel import Panel
from forecaster.data.steps import steps_behind
from forecaster.data.times import time_value_text, to_time_point
from forecaster.data.transforms import domain_bound
from forecaster.data.validate import MISSING_VALUES_ERROR
from forecaster.estimators.future import hold_after, series_sorted
from forecaster.estimators.origins import (
    is_cutoff_list,
    latest_cutoff,
    no_origins_error,
    origin_rows,
    warn_short_origins,
)
from forecaster.estimators.rows_ahead import (
    missing_before_rows_ahead,
    rows_ahead_predict_error,
    rows_ahead_span,
)
from forecaster.exceptions import DataValidationError, StaleSeriesWarning, warn_at_caller

__all__ = ["CUTOFF_KINDS", "SHORT_SERIES", "CutoffPanels", "cutoff_argument"]

_LOOKBACK_REASON = "the fitted lookback"  # why predict drops a series, as its warning says

SHORT_SERIES = rf"^Dropped \d+ series shorter than \d+ rows \({_LOOKBACK_REASON}\)"
"""What ``predict``'s warning about the series shorter than the fitted lookback (dropped, not
forecast) begins with (a regular expression): what ``score`` silences in its forecast of the
steps before the held-out ones, naming those series itself with the others it scores no
point of."""

CUTOFF_KINDS = (
    "a time point (datetime.date, datetime.datetime, pandas.Timestamp, numpy.datetime64, ISO "
    "text such as '2024-01-31', pl.date(...) / pl.datetime(...), or an int step for an integer "
    "time column), a list, tuple, range, numpy array, polars or pandas Series or pandas Index "
    "of time points, or a polars DataFrame or LazyFrame or pandas DataFrame of (id, time) "
    "pairs"
)
"""What ``predict``'s ``cutoff`` takes, as its errors name it."""

_POINT_KINDS = (str, dt.date, np.datetime64, np.generic, int, float, pl.Expr)
"""The kinds of one time point, each converted (or refused with its reason) by
:func:`~forecaster.data.times.to_time_point`."""


def cutoff_argument(
    cutoff: Any, keys: Mapping[str, str], *, id_col: str | None, time_col: str
) -> Any:
    """``predict``'s ``cutoff`` as it is read: a frame of (id, time) pairs as a polars
    DataFrame (a LazyFrame collected; a pandas frame converted with the training dtypes of
    ``keys``, the id and time columns' :func:`~forecaster.data.dtypes.trained_frame`), a
    ``range`` of integer steps as a list; a time point, a sequence of them and None as they
    are (converted one by one by :func:`~forecaster.data.times.to_time_point`). The one
    reading of the argument (``predict`` and the MLflow pyfunc, through ``predict``).

    Raises
    ------
    DataValidationError
        For any other kind (a set, which has no order; a dict; an iterator; a frame of
        another library), naming the kinds it takes (:data:`CUTOFF_KINDS`).

    Examples
    --------
    >>> lazy = pl.LazyFrame({"id": ["a"], "t": ["2024-01-31"]})
    >>> cutoff_argument(lazy, {"id": "String", "t": "Date"}, id_col="id", time_col="t").shape
    (1, 2)
    >>> cutoff_argument(range(3), {"t": "Int64"}, id_col=None, time_col="t")
    [0, 1, 2]
    """
    if cutoff is None:
        return None
    if isinstance(cutoff, pl.LazyFrame):
        return collect_frame(cutoff, what="cutoff frame")
    if isinstance(cutoff, range):
        return list(cutoff)
    cutoff = trained_frame(cutoff, keys, id_col=id_col, time_col=time_col, what="cutoff frame")
    if is_cutoff_list(cutoff) or isinstance(cutoff, _POINT_KINDS):
        return cutoff
    why = " (a set has no order: pass a sorted list)" if isinstance(cutoff, set | frozenset) else ""
    column = f" of the {keys[time_col]} time column" if time_col in keys else ""
    raise DataValidationError(
        f"cutoff={describe_value(cutoff)} is not a cutoff{column}{why}. predict takes "
        f"{CUTOFF_KINDS}."
    )


class CutoffPanels:
    """The panels ``predict`` reads from a frame up to its cutoffs (a mixin of
    ``RNNForecaster``, which holds the parameters and the fitted attributes it reads)."""

    target: Any
    time_col: str
    id_col: str | None
    lookback_: int
    missing: str
    horizon: int
    future_covariates: Any
    schema_: dict[str, str]
    freq_: Frequency
    column_roles: Callable[[], dict[str, Any]]
    keys_: pl.DataFrame
    check_fitted: Callable[[str], None]
    _fitted_transform: Callable[[], str]

    def _origin_panel(self, frame: Any, cutoff: Any) -> tuple[Panel, np.ndarray, np.ndarray]:
        """The validated panel of ``frame`` (the rows its origins read:
        :meth:`_read_rows` the latest) and the series and global row of each origin of
        ``cutoff`` (a list of time points or a frame of (id, time) pairs)."""
        schema = check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        point = latest_cutoff(cutoff, schema[self.time_col], self.time_col)
        later: tuple[list[Any], int] = ([], 0)
        if point is not None:  # (None, or no row up to it: origin_rows refuses the cutoff)
            frame = collect_frame(frame, columns=list(self.schema_))
            read, starting_later = self._read_rows(frame, point)
            if read.height:
                cutoff, later = self._without_later_series(frame, starting_later, cutoff)
                frame = read
        raw = self._frame_panel(frame, point, min_length=1)  # short: named by origin_rows
        roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
        series, rows = origin_rows(
            raw, cutoff, **roles, lookback=self.lookback_, freq=self.freq_, later=later
        )
        return raw, series, rows

    def _without_later_series(
        self, frame: pl.DataFrame, starting_later: pl.Series, cutoff: Any
    ) -> tuple[Any, tuple[list[Any], int]]:
        """``cutoff`` without the pairs of the series ``starting_later`` (their ids: the
        series of ``frame`` that start after every cutoff, whose rows the origins do not
        read, :meth:`_read_rows`), and those series in the order of ``frame`` with the count
        of their origins (a list of time points: each such series at each point), for the
        warning of origins without ``lookback`` rows up to them
        (:func:`~forecaster.estimators.origins.origin_rows`), as one cutoff names them."""
        if self.id_col is None or not len(starting_later):
            return cutoff, ([], 0)
        in_frame = pl.col(self.id_col).is_in(starting_later.implode(), nulls_equal=True)
        later = frame[self.id_col].filter(frame.select(in_frame).to_series())
        later = later.unique(maintain_order=True)  # as one cutoff names them: the frame's order
        count = len(later) * len(cutoff)
        if isinstance(cutoff, pl.DataFrame) and self.id_col in cutoff.columns:
            source = cutoff.schema[self.id_col]
            named = cutoff.select(id_cast(self.id_col, source, later.dtype).is_in(later.implode()))
            count = int(named.to_series().sum())
            cutoff = cutoff.filter(~named.to_series())
        return cutoff, (later.to_list() if count else [], count)

    def _read_rows(
        self,
        frame: Any,
        point: Any,
        future: bool = False,
        *,
        series: pl.DataFrame | None = None,
    ) -> tuple[pl.DataFrame, pl.Series]:
        """The rows of ``frame`` that the forecasts from the time ``point`` (the cutoff, the
        latest of a list) or earlier read, the only ones validated: a gap after them plays no
        part in those forecasts, and ``missing="error"`` forecasts it, from one cutoff or a
        list. The rows of ``series`` (a frame of ids in its ``id_col`` column; None: every
        series with a row at or before ``point``, as a series that starts after it has no
        origin). A model with future covariates (not given by ``future=``: ``future``) reads
        them from the rows after the origins: with ``missing="error"`` the first ``horizon``
        rows of each series after ``point`` (a gap among them is refused); with a filling
        policy every row (``"interpolate"`` fills the horizon's last steps from the rows
        after it). Without, the rows up to ``point`` and each series' first row after it
        where it has none at ``point``: that the series goes on tells that its origin is
        inside a gap (filled up to ``point``, or refused by ``missing="error"``). Returned
        with the ids of the series left out as they start after ``point`` (``series`` None;
        found in the same pass over the sorted rows: no join of the frame's rows)."""
        rows = collect_frame(frame, columns=list(self.schema_))
        id_dtype = pl.Null if self.id_col is None else rows.schema[self.id_col]
        none = pl.Series(self.id_col or "id", [], dtype=id_dtype)  # no series left out
        if self.id_col is not None and series is not None:
            rows = rows.join(
                series, on=self.id_col, how="semi", nulls_equal=True, maintain_order="left"
            )
        reads_future = bool(column_tuple(self.future_covariates)) and not future
        keys = [c for c in (self.id_col, self.time_col) if c]
        if any(rows[c].null_count() for c in keys):  # refused by the validation that follows
            return rows, none
        rows = series_sorted(rows, id_col=self.id_col, time_col=self.time_col)  # (as held)
        t = rows[self.time_col].to_physical().to_numpy()
        at = pl.Series([point], dtype=rows.schema[self.time_col]).to_physical().item()
        n, after = len(t), t > at
        series_of = np.zeros(n, np.int64)
        if self.id_col is not None:
            series_of = rows[self.id_col].rle_id().cast(pl.Int64).to_numpy()
        new_series = np.r_[True, series_of[1:] != series_of[:-1]] if n else np.zeros(0, bool)
        starts = np.flatnonzero(new_series)
        keep = ~after
        if reads_future and self.missing != "error":
            keep[:] = True
        elif n:  # a series' rows after the point come last: the first is where they begin
            first_after = after & (new_series | np.r_[True, ~after[:-1]])
            if reads_future:  # its first horizon rows after the point
                begins = np.maximum.accumulate(np.where(first_after, np.arange(n), 0))
                keep |= after & (np.arange(n) - begins < int(self.horizon))
            else:  # the first, where the series has no row at the point
                held = np.logical_or.reduceat(t == at, starts)[series_of]
                keep |= first_after & ~held
        later = none
        if series is None and n:  # a series without a row up to the point: no origin
            starts_after = after[starts]
            keep &= ~starts_after[series_of]
            if self.id_col is not None:
                later = rows[self.id_col].gather(starts[starts_after])
        return rows.filter(pl.Series(keep)), later

    def _reads_as_held(self, panel: Panel, rows: np.ndarray) -> bool:
        """Whether ``panel``, a frame read whole (``read_frame``), forecasts the origins at
        its global ``rows`` as the panel :meth:`_origin_panel` reads from that frame (every
        value after the latest origin held, :func:`~forecaster.estimators.future.hold_after`)
        does, the same bits: it was read at the fitted frequency, no transform checks or
        raises the targets of the rows after that origin (whose values the two panels do not
        share), and no filled run (``missing="interpolate"``) reaches across it (its filled
        values would lean on the rows after it). Every other value up to the latest origin is
        the same in both, and the forecasts read nothing else of the rows after it."""
        if str(panel.freq) != str(self.freq_) or panel.freq.holidays:
            return False
        if domain_bound(self._fitted_transform()) is not None or not len(rows):
            return False
        if panel.interpolated is None:
            return True
        latest = pl.lit(panel.time.gather(rows).max(), panel.time.dtype)
        up_to = panel.time.to_frame("t").select(pl.col("t") <= latest).to_series().to_numpy()
        marked = np.where(up_to, np.arange(len(up_to), dtype=np.int64), -1)
        last = np.maximum.reduceat(marked, panel.offsets[:-1])  # each series' last row by then
        return not panel.interpolated[last[last >= 0]].any()

    def _frame_panel(
        self, frame: Any, point: Any, future: bool = False, min_length: int | None = None
    ) -> Panel:
        """The validated panel of every row of ``frame`` read up to the time ``point`` (the
        latest cutoff, a value of the time column's dtype): the targets and past covariates of
        its rows after it are not read (:func:`~forecaster.estimators.future.hold_after`), its
        future covariates are (not with ``future``: ``future=`` gives them). Series shorter
        than ``min_length`` rows (default ``lookback``) are dropped with Panel's warning."""
        check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        past = [*column_tuple(self.target), *column_tuple(getattr(self, "covariates", None))]
        if future:
            past += column_tuple(getattr(self, "future_covariates", None))
        roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
        return Panel.from_frame(
            hold_after(collect_frame(frame, columns=list(self.schema_)), point, past, **roles),
            **self.column_roles(),
            freq=str(self.freq_),
            missing=self.missing,
            min_length=min_length or self.lookback_,
            length_reason=_LOOKBACK_REASON,
            ends="origins",  # the forecasts start at the cutoffs: warn_made_up_origins
        )

    def _panel_for_predict(self, frame: Any, cutoff: Any, *, call: str = "predict") -> Panel:
        """The prediction panel: ``frame``'s rows up to ``cutoff`` (all when None), series
        with at least ``lookback`` rows. Shorter ones are dropped with a warning: without a
        cutoff Panel's, with one that of a list of cutoffs (:func:`warn_short_origins`),
        which names the series with fewer than ``lookback`` rows up to the cutoff, none (a
        series that starts after it) included. With a cutoff, neither the series that end
        before it nor made-up values at their last rows are named here: the origins that
        :meth:`~forecaster.estimators.future.FutureInputs._cutoff_origins` finds in the
        whole frame are, where they lie (a gap up to the cutoff filled). ``call``: the method
        whose error names the rows ahead (``"predict"``, ``"stream"``)."""
        schema = check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        frame = collect_frame(frame, columns=list(self.schema_))
        options: dict[str, Any] = {
            **self.column_roles(),
            "freq": str(self.freq_),
            "missing": self.missing,
            "min_length": self.lookback_,
            "length_reason": _LOOKBACK_REASON,
        }
        if cutoff is None:
            panel = self._panel_up_to_last_row(frame, options, call)
            ids, last = panel.keys[panel.id_name], frame[self.time_col].max()
            self._warn_stale_series(panel.time, panel.offsets, ids, last, cutoff)
            return panel
        dtype = schema[self.time_col]
        point = to_time_point(cutoff, dtype, name="cutoff")
        before = frame.filter(pl.col(self.time_col) <= pl.lit(point, dtype=dtype))
        options["ends"] = "origins"  # named at the origins: _cutoff_origins
        if before.height == 0 and frame.height:
            raise DataValidationError(
                f"cutoff={time_value_text(cutoff)} is before the first time of the data "
                f"({frame[self.time_col].min()}): no row is at or before it. Pass a cutoff "
                "between the first and the last time of the frame."
            )
        later: list[Any] = []  # the series that start after the cutoff
        if self.id_col is not None:
            ids = frame.select(self.id_col).unique(maintain_order=True)
            seen = before.select(self.id_col).unique()
            absent = ids.join(seen, on=self.id_col, how="anti", nulls_equal=True)
            later = absent[self.id_col].to_list()
        panel = Panel.from_frame(before, **{**options, "min_length": 1})
        short = panel.lengths < self.lookback_
        if short.all():  # (Panel's error would advise a shorter lookback, fixed by the fit)
            raise no_origins_error(self.lookback_, cutoff)
        if short.any():
            names = panel.keys[panel.id_name].filter(pl.Series(short)).to_list()
            later += names
            before = before.filter(~pl.col(panel.id_name).is_in(names))
            panel = Panel.from_frame(before, **options)
        if later:
            warn_short_origins(later, len(later), self.lookback_)
        return panel

    def _panel_up_to_last_row(
        self, frame: pl.DataFrame, options: dict[str, Any], call: str
    ) -> Panel:
        """The panel ``predict(frame)`` (or ``stream(frame)``: ``call``) forecasts from (its
        series up to their last rows).
        Where ``missing="error"`` refuses the missing targets of rows ahead at the end of
        ``frame`` (:mod:`~forecaster.estimators.rows_ahead`), the error names the cutoff (or
        the rows) that forecasts from the last observed targets, not a filling policy."""
        try:
            return Panel.from_frame(frame, **options)
        except DataValidationError as refused:
            if not str(refused).startswith(MISSING_VALUES_ERROR):
                raise
            targets = column_tuple(self.target)
            roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
            span = rows_ahead_span(frame, targets, (), **roles)
            kinds = ("covariates", "future_covariates")  # refused up to there too
            checked = [c for kind in kinds for c in column_tuple(options[kind])]
            if span is None or missing_before_rows_ahead(frame, targets, checked, **roles):
                raise  # a gap before the rows ahead: the error names it
            raise rows_ahead_predict_error(span, targets, **roles, call=call) from None

    def _warn_stale_series(
        self,
        times: pl.Series,
        offsets: np.ndarray,
        ids: pl.Series,
        point: Any,
        cutoff: Any,
        whose: str = "the frame's",
    ) -> None:
        """Warn about the series (``times``, ``offsets``: their rows or latest rows, as
        :func:`~forecaster.data.steps.steps_behind` reads them; ``ids``) that end before the
        origin ``point``: ``cutoff`` (converted), else ``whose`` last time (the frame's: the
        latest end of any series, those too short included; the stream's). They are forecast
        from their last row, an earlier origin than the others' (predict, a stream). Integer
        steps without a cutoff are not compared: positions of independent sequences (clips
        of different lengths) are not shared times; a cutoff names a shared step."""
        positions = times.dtype.is_integer()
        if point is None or len(offsets) < 2 or (positions and cutoff is None):
            return
        last = times.gather(offsets[1:] - 1)
        reference = (
            f"{whose} last time ({point})"
            if cutoff is None
            else f"cutoff={time_value_text(cutoff)}"
        )
        stale = steps_behind(times, offsets, self.freq_, point) > 0
        if not stale.any():
            return
        names = ids.filter(pl.Series(stale)).to_list()
        which = (
            "The series ends"
            if self.id_col is None
            else counted(int(stale.sum()), "series ends", "series end")
        )
        latest = last.filter(pl.Series(stale)).max()
        warn_at_caller(  # the user's line, however deep (predict, a backtest, a pipeline)
            f"{which} before {reference}"
            + ("" if self.id_col is None else f": {names[:10]}")
            + f" (last time {latest!s} at the latest). They are forecast from their last time, "
            "not from "
            + ("the cutoff." if cutoff is not None else f"{whose} last time.")
            + (
                " Drop them, or pass (series, step) pairs as cutoff= to forecast each series "
                "from a step of its own."
                if positions
                else " Drop them or bring their data up to date to forecast every series from "
                "the same time."
            ),
            StaleSeriesWarning,
        )

    def _fitted_rows(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        """For each series of ``panel``: its row in ``keys_`` and whether it was seen in fit."""
        return self._match_keys(panel.keys, panel.id_name)

    def train_end_of(self, ids: pl.Series) -> pl.Series:
        """The last time of the data the model was fitted on for each series of ``ids``
        (matched as ``predict`` matches series: text, Categorical and Enum ids by their text),
        null for a series not seen in ``fit`` or a model that does not record it
        (``train_end_``, saved by an older version).

        Parameters
        ----------
        ids : polars.Series
            Series ids, one per row asked for (any name; repeats and unseen ids allowed).

        Returns
        -------
        polars.Series
            The last fitted time of each id, in the order of ``ids``, named as the time column.

        Examples
        --------
        >>> import polars as pl
        >>> from forecaster import RNNForecaster
        >>> frame = pl.DataFrame({"id": ["a"] * 30 + ["b"] * 25, "t": [*range(30), *range(25)],
        ...                       "y": [float(i % 7) for i in range(55)]})
        >>> model = RNNForecaster(target="y", time_col="t", id_col="id", lookback=7,
        ...                       horizon=2, max_epochs=1, progress=False).fit(frame)
        >>> model.train_end_of(pl.Series("id", ["b", "a", "new"])).to_list()
        [24, 29, None]
        """
        self.check_fitted("read the training ends of")
        ends = self.__dict__.get("train_end_")
        name = self.keys_.columns[0]
        if ends is None:
            return pl.Series(self.time_col, [None] * len(ids), dtype=pl.Null)
        fitted, known = self._match_keys(ids.alias(name).to_frame(), name)
        return ends.gather(fitted).set(pl.Series(~known), None).alias(self.time_col)

    def _match_keys(self, keys: pl.DataFrame, id_name: str) -> tuple[np.ndarray, np.ndarray]:
        """For each row of ``keys`` (column ``id_name``): the row of its series in ``keys_``
        and whether that series was seen in fit."""
        return match_keys(self.keys_, keys, id_name)

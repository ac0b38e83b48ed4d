"""Forecast origins of ``predict(frame, cutoff=[...])``: which row of which series each
forecast starts from, the scaling of each window, the times of its horizon steps and the chunk
size of the batched network calls. Pure functions of a :class:`~forecaster.data.panel.Panel`,
vectorised over the (series, origin) pairs (no Python loop per window)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._columns import temporary_names
from forecaster.data.frames import (
    counted,
    id_cast,
    id_order,
    is_pandas_sequence,
)
from forecaster.data.frequency import MONTHS_PER_UNIT, Frequency
from forecaster.data.made_up import observed_rows
from forecaster.data.panel import Panel
from forecaster.data.scaling import PanelScaler
from forecaster.data.steps import anchor_days, future_times
from forecaster.data.times import time_value_text, to_time_point
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    StaleSeriesWarning,
    silenced,
    warn_at_caller,
)

__all__ = [
    "CHUNK_BYTES",
    "MAX_CHUNK",
    "chunk_size",
    "cutoff_points",
    "earliest_cutoff",
    "is_cutoff_list",
    "latest_cutoff",
    "no_origins_error",
    "observed_windows",
    "origin_rows",
    "pair_rounds",
    "step_sources",
    "step_times",
    "warn_short_origins",
    "window_inputs",
    "window_scaling",
]

MAX_CHUNK = 16384
"""Most windows per network call of a multi-origin forecast."""

CHUNK_BYTES = 256 * 2**20
"""Memory a chunk's float64 inputs and recurrent activations aim at."""


def is_cutoff_list(cutoff: Any) -> bool:
    """Whether ``predict``'s ``cutoff`` asks for several origins: a list, tuple, numpy array,
    polars Series, pandas Series or Index (``pd.date_range(...)``) of time points, or a frame
    (a LazyFrame too) of (series, time) pairs."""
    many = isinstance(cutoff, list | tuple | np.ndarray | pl.Series | pl.DataFrame | pl.LazyFrame)
    return many or is_pandas_sequence(cutoff)


def latest_cutoff(cutoff: Any, dtype: pl.DataType, time_col: str) -> Any:
    """The latest time point (of the time column's ``dtype``) of ``cutoff``, a list of time
    points or a frame of (id, time) pairs: no origin lies after it. None where it names none
    (an empty list, a frame without its ``time_col`` or with nulls there), left for
    :func:`origin_rows` to refuse; a point that does not convert is refused as it refuses it."""
    points = cutoff_points(cutoff, dtype, time_col)
    return None if points is None else points.max()


def earliest_cutoff(cutoff: Any, dtype: pl.DataType, time_col: str) -> Any:
    """The earliest time point (of the time column's ``dtype``) of ``cutoff``: one time point,
    a list of them or a frame of (id, time) pairs (as :func:`latest_cutoff` reads them): the
    time from which ``predict`` forecasts asked for, at the earliest, know the data. None
    where it names none.

    Examples
    --------
    >>> earliest_cutoff([5, 2, 9], pl.Int64, "t"), earliest_cutoff(4, pl.Int64, "t")
    (2, 4)
    >>> earliest_cutoff(pl.Series([5, 2, 9]), pl.Int64, "t")  # no conversion point by point
    2
    """
    if not is_cutoff_list(cutoff):
        return to_time_point(cutoff, dtype, name="cutoff")
    points = cutoff_points(cutoff, dtype, time_col)
    return None if points is None else points.min()


def cutoff_points(cutoff: Any, dtype: pl.DataType, time_col: str) -> pl.Series | None:
    """The time points of ``cutoff`` (a list of them, or a frame of (id, time) pairs, in
    its row order) in ``dtype``; None where it names none (see :func:`latest_cutoff`)."""
    if isinstance(cutoff, pl.DataFrame):
        if time_col not in cutoff.columns or cutoff[time_col].null_count() or not cutoff.height:
            return None
        return _pair_times(cutoff[time_col], dtype)
    if isinstance(cutoff, pl.Series) and cutoff.dtype == dtype and not cutoff.null_count():
        return cutoff if len(cutoff) else None  # already time points of the column's dtype
    points = [to_time_point(c, dtype, name="cutoff") for c in cutoff]
    return pl.Series(points, dtype=dtype) if points else None


def origin_rows(
    panel: Panel,
    cutoff: Any,
    *,
    id_col: str | None,
    time_col: str,
    lookback: int,
    freq: Frequency | None = None,
    later: tuple[list[Any], int] = ([], 0),
) -> tuple[np.ndarray, np.ndarray]:
    """The series and global panel row of every forecast origin of ``cutoff``: the last row of
    the series at or before the time point. ``cutoff`` is a sequence of time points (every
    series from each, cutoff after cutoff, the series of each in the order of their ids) or a
    frame of (``id_col``, ``time_col``) pairs (in its row order). A time point named twice
    (a pair, in a frame) is refused: its forecasts would be repeated row for row. Origins
    with fewer than ``lookback`` rows up to them are left out with a
    :class:`~forecaster.exceptions.ForecasterWarning` (:func:`warn_short_origins`); with
    ``freq``, so are named the origins a step or more before their time point (a series that
    ended before it), forecast from there (as ``predict(frame, cutoff=point)`` warns). An
    origin that repeats an earlier one (the same row of the same series, for several time
    points) is left out with a warning: each (series, origin) is forecast once, under its
    earliest time point. ``later``: the series of the frame left out of ``panel`` as they
    start after every time point, and their origins' count, named in the same warning."""
    dtype = panel.time.dtype
    if isinstance(cutoff, pl.DataFrame):
        series, times = _pair_series(panel, cutoff, id_col=id_col, time_col=time_col)
        _refuse_repeated_pairs(panel, series, times, id_col=id_col, time_col=time_col)
    else:
        points = [to_time_point(c, dtype, name="cutoff") for c in cutoff]
        if not points:
            raise DataValidationError("cutoff=[] names no time point. Pass at least one.")
        first = panel.time.min()
        early = [c for c, p in zip(cutoff, points, strict=True) if p < first]
        if early:
            raise DataValidationError(
                f"cutoff={time_value_text(early[0])} is before the first time of the data "
                f"({first}): no row is at or before it. Pass cutoffs between the first and the "
                "last time of the frame."
            )
        _refuse_repeated_points(pl.Series(points, dtype=dtype))
        order = id_order(panel.keys[panel.id_name]).arg_sort().to_numpy().astype(np.int64)
        series = np.tile(order, len(points))
        times = pl.Series(points, dtype=dtype).gather(
            np.repeat(np.arange(len(points)), panel.n_series)
        )
    rows = _last_rows_at_or_before(panel, series, times.to_physical().to_numpy())
    local = rows - panel.offsets[series]
    short = (rows < 0) | (local < lookback - 1)
    named, count = list(later[0]), later[1]
    if short.any():
        ids = panel.keys[panel.id_name].gather(series[short]).unique(maintain_order=True)
        named, count = [*named, *ids.to_list()], count + int(short.sum())
        series, rows, times = series[~short], rows[~short], times.filter(pl.Series(~short))
    if count:
        warn_short_origins(named, count, lookback)
    series, rows, times = _first_of_repeated_origins(panel, series, rows, times)
    if freq is not None and len(rows):
        _warn_early_origins(panel, series, rows, times, freq)
    if not len(rows):
        raise no_origins_error(lookback)
    return series, rows


def no_origins_error(lookback: int, cutoff: Any = None) -> DataValidationError:
    """The error of ``predict`` when no series has ``lookback`` rows up to its ``cutoff``, or
    (None) up to any of its list of cutoffs: the fitted window is fixed, the cutoff is not."""
    if cutoff is None:
        where, instead = "any of the cutoffs", "later cutoffs"
    else:
        where, instead = f"cutoff={time_value_text(cutoff)}", "a later cutoff"
    return DataValidationError(
        f"No series has lookback={lookback} rows up to {where}. Pass {instead} or more history."
    )


def warn_short_origins(ids: list[Any], count: int, lookback: int) -> None:
    """Warn that ``count`` forecast origins of the series ``ids`` are left out: they have
    fewer than ``lookback`` rows up to their cutoff (none, for a series that starts after
    it). The one warning of ``predict`` with a cutoff, one or a list."""
    warn_at_caller(
        f"Left out {counted(count, 'forecast origin', 'forecast origins')} with fewer than "
        f"lookback={lookback} rows up to {'its' if count == 1 else 'their'} cutoff "
        f"(series {ids[:10]}{' ...' if len(ids) > 10 else ''}).",
        ForecasterWarning,
    )


def _first_of_repeated_origins(
    panel: Panel, series: np.ndarray, rows: np.ndarray, points: pl.Series
) -> tuple[np.ndarray, np.ndarray, pl.Series]:
    """The origins (``series``, global ``rows``, time ``points``) but the repeated ones: a
    series whose last row at or before several time points is the same (it ended before
    them, or they lie between two steps of its grid) is forecast once, under the earliest of
    them (the nearest its origin), with a :class:`~forecaster.exceptions.ForecasterWarning`
    naming the others; its forecasts would be the same rows, with nothing to tell them
    apart."""
    if len(np.unique(rows)) == len(rows):  # a global row: one series
        return series, rows, points
    pairs = pl.DataFrame({"row": rows, "point": points}).with_row_index("i")
    kept = pairs.group_by("row").agg(pl.col("i").sort_by("point").first())["i"]
    first = np.zeros(len(rows), dtype=bool)
    first[kept.to_numpy()] = True
    if first.all():
        return series, rows, points
    again = ~first
    n_again, several = int(again.sum()), "forecast origins that repeat"
    warn_at_caller(
        f"Left out {counted(n_again, 'forecast origin that repeats', several)}"
        f" another: {'its' if n_again == 1 else 'their'} series' last row at or before the "
        f"cutoff is the one at or before an earlier cutoff (a "
        f"series that ended before both, or cutoffs between two steps of its grid): "
        f"{_named_cutoffs(panel, series, points, again)}. Each origin is forecast once, "
        "under its earliest cutoff (the origin column); its forecasts would repeat row for row.",
        ForecasterWarning,
    )
    return series[first], rows[first], points.filter(pl.Series(first))


def _refuse_repeated_points(points: pl.Series) -> None:
    """Refuse a list of cutoffs that names a time point twice (``points``: each converted to
    the time column's dtype, so that ``"2024-02-05"`` and ``date(2024, 2, 5)`` are one)."""
    repeated = points.is_duplicated()
    if not repeated.any():
        return
    again = points.filter(repeated).unique(maintain_order=True)
    raise DataValidationError(
        f"cutoff names {again.len()} time point{'s' if again.len() > 1 else ''} more than "
        f"once: {again.head(5).to_list()}. Every cutoff forecasts every series, so a repeated "
        "one would repeat its forecasts row for row. Pass each cutoff once, e.g. "
        "cutoff=sorted(set(cutoffs))."
    )


def _refuse_repeated_pairs(
    panel: Panel, series: np.ndarray, times: pl.Series, *, id_col: str | None, time_col: str
) -> None:
    """Refuse a cutoff frame that names a (series, time) pair twice."""
    pairs = pl.DataFrame({"series": series, "time": times})
    repeated = pairs.is_duplicated().to_numpy()
    if not repeated.any():
        return
    first = pairs.filter(pl.Series(repeated)).unique(maintain_order=True)
    examples: list[Any] = first["time"].head(5).to_list()
    columns = time_col
    if id_col is not None:
        ids = panel.keys[panel.id_name].gather(first["series"].to_numpy()).to_list()
        examples = list(zip(ids, examples, strict=True))
        columns = f"({id_col}, {time_col})"
    raise DataValidationError(
        f"The cutoff frame repeats {first.height} {columns} value"
        f"{'s' if first.height > 1 else ''}: {examples} ({int(repeated.sum())} rows). Each "
        "row is one forecast, so a repeated one would repeat it row for row. Pass each once, "
        "e.g. cutoff.unique(maintain_order=True)."
    )


def _warn_early_origins(
    panel: Panel, series: np.ndarray, rows: np.ndarray, points: pl.Series, freq: Frequency
) -> None:
    """Warn about origins whose next step (on their series' day of the month, as
    :func:`~forecaster.data.steps.future_times` steps) is still at or before their time point:
    their series ended before it, and its forecast starts earlier than asked."""
    days = anchor_days(panel.time, panel.offsets)[series] if freq.unit in MONTHS_PER_UNIT else None
    early = freq.ends_before(panel.time.gather(rows), points, day=days)
    if not early.any():
        return
    one = int(early.sum()) == 1
    warn_at_caller(
        f"{counted(int(early.sum()), 'forecast origin lies', 'forecast origins lie')} a step "
        f"or more before {'its' if one else 'their'} cutoff, as "
        f"{'its series ends' if one else 'their series end'} before it: "
        f"{_named_cutoffs(panel, series, points, early)}. {'It is' if one else 'They are'} "
        "forecast from the series' last time (the origin column); drop "
        f"{'it' if one else 'them'} or bring the series' data up to date.",
        StaleSeriesWarning,
    )


def _pair_series(
    panel: Panel, pairs: pl.DataFrame, *, id_col: str | None, time_col: str
) -> tuple[np.ndarray, pl.Series]:
    """The series (position in ``panel``) and time point of every row of ``pairs``."""
    keys = [c for c in (id_col, time_col) if c]
    if [c for c in keys if c not in pairs.columns]:
        raise DataValidationError(
            f"cutoff as a frame needs the columns {keys} (the series and its cutoff); it has "
            f"{pairs.columns}."
        )
    other = [c for c in pairs.columns if c not in keys]
    if other:  # e.g. a level column: predict reads level= and the rest as arguments
        raise DataValidationError(
            f"The cutoff frame holds {other} beside its (series, cutoff) columns {keys}; "
            "predict reads only those from it. Drop the other columns (pass level= or "
            "quantiles= as arguments of predict)."
        )
    if pairs[time_col].null_count():
        raise DataValidationError(f"The cutoff frame's {time_col!r} has nulls.")
    times = _pair_times(pairs[time_col], panel.time.dtype)
    if id_col is None:
        return np.zeros(len(pairs), dtype=np.int64), times
    id_name = panel.id_name
    (row,) = temporary_names([id_name], "__series__")  # the id may be called __series__
    lookup = panel.keys.select(id_name).with_row_index(row)
    wanted = pairs.select(id_cast(id_col, pairs.schema[id_col], panel.keys.schema[id_name]))
    matched = wanted.join(lookup, on=id_name, how="left", maintain_order="left")[row]
    if matched.null_count():
        absent = pairs.filter(matched.is_null())[id_col].head(10).to_list()
        raise DataValidationError(
            f"The cutoff frame names series that the frame does not hold with at least "
            f"lookback rows: {absent}."
        )
    return matched.to_numpy().astype(np.int64), times


def _pair_times(times: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A cutoff frame's times as values of the time column's ``dtype``, each distinct one by
    :func:`~forecaster.data.times.to_time_point` (as a list of cutoffs reads them: a naive
    time in the column's zone, no float steps, no numbers for dates)."""
    if times.dtype == dtype:
        return times
    distinct = times.unique(maintain_order=True)
    points = [to_time_point(value, dtype, name="cutoff") for value in distinct.to_list()]
    (key, point) = ("__cutoff__", "__point__")
    table = pl.DataFrame([distinct.alias(key), pl.Series(point, points, dtype=dtype)])
    matched = times.alias(key).to_frame().join(table, on=key, how="left", maintain_order="left")
    return matched[point].alias(times.name)


def _last_rows_at_or_before(panel: Panel, series: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Global row of the last row of ``series[i]`` with time <= ``times[i]`` (-1: none): a
    binary search inside each pair's series, vectorised over the pairs."""
    row_times = panel.time.to_physical().to_numpy()
    times = times.astype(row_times.dtype)
    lo, hi = panel.offsets[series].astype(np.int64), panel.offsets[series + 1].astype(np.int64)
    first = lo.copy()
    while (lo < hi).any():
        active = lo < hi
        mid = (lo + hi) // 2
        at_or_before = active & (row_times[np.minimum(mid, len(row_times) - 1)] <= times)
        lo = np.where(at_or_before, mid + 1, lo)
        hi = np.where(active & ~at_or_before, mid, hi)
    return np.where(lo > first, lo - 1, -1)


def pair_rounds(series: np.ndarray) -> np.ndarray:
    """For each pair, how many earlier pairs have its series: pairs of one round name each
    series at most once."""
    order = np.argsort(series, kind="stable")
    sorted_series = series[order]
    starts = np.flatnonzero(np.r_[True, sorted_series[1:] != sorted_series[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, len(series)]))
    rounds = np.empty(len(series), dtype=np.int64)
    rounds[order] = np.arange(len(series)) - first
    return rounds


def window_scaling(
    panel: Panel,
    series: np.ndarray,
    local: np.ndarray,
    *,
    fitted: tuple[np.ndarray, np.ndarray],
    known: np.ndarray,
    scaling: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window (center, scale) float64 tensors (B, n_features), as ``predict`` uses them:
    the fitted statistics (``fitted``: center and scale rows per series of ``panel``) for
    series seen in fit (``known``), for the others statistics of their history up to each
    origin (``local``: its position in the series), one scaler fit per round of pairs."""
    center, scale = fitted[0][series].copy(), fitted[1][series].copy()
    unknown = ~known[series]
    if unknown.any():
        rounds = pair_rounds(series)
        for k in range(int(rounds.max()) + 1):
            block = rounds == k
            if not (unknown & block).any():
                continue
            ends = panel.offsets[:-1] - 1  # no row of the series outside the block
            ends[series[block]] += local[block] + 1
            with silenced(ForecasterWarning):
                own = PanelScaler(scaling).fit(panel, mask=panel.rows_until(ends))
            idx = np.flatnonzero(unknown & block)
            center[idx] = own.center_[series[idx]]
            scale[idx] = own.scale_[series[idx]]
    return torch.from_numpy(center), torch.from_numpy(scale)


def step_sources(panel: Panel, series: np.ndarray, rows: np.ndarray, horizon: int) -> np.ndarray:
    """Where the ``horizon`` steps after each origin lie, ``(B, horizon)``: the global row of
    the step inside its series, and after the series' end ``len(panel.time)`` plus its position
    among the steps :func:`~forecaster.data.steps.future_times` gives (``horizon`` per series,
    series after series)."""
    target = rows[:, None] + np.arange(1, horizon + 1)  # global rows, past the end for some
    end = panel.offsets[series + 1][:, None]
    beyond = len(panel.time) + series[:, None] * horizon + (target - end)
    return np.where(target < end, target, beyond)


def step_times(
    panel: Panel, series: np.ndarray, rows: np.ndarray, freq: Frequency, horizon: int
) -> pl.Series:
    """The times of the ``horizon`` steps after each origin: the panel's own times inside the
    series, and after its end the times :func:`~forecaster.data.steps.future_times` gives."""
    source = step_sources(panel, series, rows, horizon).ravel()
    if not (source >= len(panel.time)).any():  # every step inside its series (a backtest's)
        return panel.time.gather(source)
    after = future_times(panel.time, panel.offsets, freq, horizon).cast(panel.time.dtype)
    return pl.concat([panel.time, after]).gather(source)


def chunk_size(network: Any, lookback: int, n_features: int, n_targets: int, least: int) -> int:
    """Windows per network call. Large batches run the recurrent kernels far more efficiently
    per window than small ones; the chunk is bounded so that its float64 inputs and the
    recurrent activations stay near :data:`CHUNK_BYTES`, and never below ``least``."""
    hidden = int(getattr(network, "hidden_size", 128)) * int(getattr(network, "num_layers", 1))
    if getattr(network, "head", None) == "segment":  # sequences of segments, per channel
        activations = int(getattr(network, "n_segments", lookback)) * n_targets
    else:
        activations = lookback
    per_window = 8 * lookback * n_features + 4 * 3 * hidden * activations
    return int(min(MAX_CHUNK, max(least, CHUNK_BYTES // per_window)))


def window_inputs(panel: Panel, rows: np.ndarray, lookback: int) -> torch.Tensor:
    """The raw input windows ``(B, lookback, n_features)`` ending at ``rows``, as known at
    each (:meth:`~forecaster.data.panel.Panel.known_values`)."""
    window = (rows - (lookback - 1))[:, None] + np.arange(lookback)
    return torch.from_numpy(panel.known_values(window, rows[:, None]))


def observed_windows(panel: Panel, frame: Any, rows: np.ndarray, lookback: int) -> np.ndarray:
    """The targets' windows ``(B, lookback, n_targets)`` ending at the global ``rows`` of
    ``panel`` (the validated panel of ``frame``) as ``frame`` holds them: float64, not the
    panel's float32 (1.2e10 + 0.37 reads 1.2e10 there, in steps of 1024); NaN where ``frame``
    holds no value (a row or value the ``missing`` policy made up). One join of the windows'
    keys on ``frame``'s rows within their span of time
    (:func:`~forecaster.data.frames.observed_values`); when the windows hold more cells than
    the panel has rows (many overlapping windows, e.g. a backtest's), the values at every row
    of the panel instead (:func:`~forecaster.data.panel_values.panel_observed_values`, index
    arithmetic on a grid of fixed steps), the windows gathered from them (the same values).

    Examples
    --------
    >>> frame = pl.DataFrame({"t": [0, 1, 3], "y": [1e8 + 1, 1e8 + 2, 1e8 + 4]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="ffill", freq=1)
    >>> panel.values[1:, 0].tolist()
    [100000000.0, 100000000.0, 100000000.0]
    >>> observed_windows(panel, frame, np.array([3]), 3)[0, :, 0].tolist()
    [100000002.0, nan, 100000004.0]
    """
    window = ((rows - (lookback - 1))[:, None] + np.arange(lookback)).ravel()
    values = observed_rows(panel, frame, window)
    return values.reshape(len(rows), lookback, panel.n_targets)


def _named_cutoffs(panel: Panel, series: np.ndarray, points: pl.Series, mask: np.ndarray) -> str:
    """The first five (series, cutoff) pairs marked by ``mask`` for a warning (the cutoffs
    alone for a panel of one series), with " ..." when there are more."""
    named: list[Any] = points.filter(pl.Series(mask)).to_list()
    if panel.id_col is not None:
        ids = panel.keys[panel.id_name].gather(series[mask]).to_list()
        named = list(zip(ids, named, strict=True))
    more = " ..." if len(named) > 5 else ""
    return f"{'(series, cutoff) ' * bool(panel.id_col)}{named[:5]}{more}"

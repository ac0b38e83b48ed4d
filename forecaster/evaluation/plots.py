"""Figures of forecasts and backtests (matplotlib, imported when a plot is drawn):
:func:`plot_forecast` draws a few series' history, the point (median) forecast and shaded
interval bands; :func:`plot_backtest` the actual values against every fold's forecasts and
intervals. They are the one renderer of forecaster's figures: the ``forecast.png`` of a
pipeline run and of an MLflow run are drawn by :func:`plot_forecast` too.

Both return a :class:`matplotlib.figure.Figure` built without pyplot (no global backend
change): show it in a notebook, or save it with ``fig.savefig``. One axes per series, one
below the other; the history is drawn in blue, the forecast in orange, joined to the last
observation before it, with its interval bands in lighter shades of orange (the widest the
lightest); actual values of the forecast times in black, dashed. Each axes' title names the
target, the series and the as-of (the forecast's origin); the y axis is labelled with the
target, the bottom x axis with the time column, dates are written concisely
(:class:`matplotlib.dates.ConciseDateFormatter`), and one legend sits above the axes, where
it hides no data.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecaster._columns import BACKTEST_KEYS, actual_column
from forecaster.data.frames import collect_frame
from forecaster.evaluation.frames import align_keys
from forecaster.evaluation.intervals import (
    IntervalColumns,
    level_bounds,
    level_name,
    quantile_name,
)
from forecaster.evaluation.plot_frames import check_one_row_per_time, default_target, time_text
from forecaster.exceptions import DataValidationError, MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_backtest", "plot_forecast"]

HISTORY_COLOR = "C0"
"""The colour of the history (matplotlib's first cycle colour, blue)."""
FORECAST_COLOR = "C1"
"""The colour of the forecast and, lighter, its interval bands (orange)."""
ACTUAL_COLOR = "black"
"""The colour of the actual values of the forecast times (dashed)."""
_DEFAULT_SERIES = 4
"""The series drawn without ``series`` or ``max_series``: the first four."""

_FOLD, _CUTOFF, _STEP = BACKTEST_KEYS  # the columns of a backtest's forecasts


def _figure(n_rows: int, what: str, n_cols: int = 1) -> tuple[Figure, np.ndarray]:
    """A figure of ``n_rows`` by ``n_cols`` axes (a 2-d array; matplotlib imported here), laid
    out by matplotlib's constrained layout so that titles, labels and the legend never
    overlap."""
    if n_rows < 1:
        raise DataValidationError(
            f"{what} has nothing to draw: the forecast frame (or the series= selection) holds "
            "no series. Pass a frame with forecast rows, or series= names it holds."
        )
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the track extra
        raise MissingExtraError(
            f"{what} needs matplotlib: pip install 'forecaster-rnn[track]' (or pip install "
            "matplotlib)."
        ) from exc
    width = 9 if n_cols == 1 else 4.5 * n_cols
    fig = Figure(figsize=(width, 0.4 + 2.2 * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _finish(fig: Figure, grid: np.ndarray, time_col: str, temporal: bool) -> Figure:
    """Labels, concise dates, and one legend above the axes (the labels of every axes, each
    once); ``grid`` the 2-d array of axes."""
    axes = list(grid.flat)
    if temporal:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        for ax in axes:
            locator = AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:  # an integer time column: integer ticks (no 22.5 between steps 22 and 23)
        from matplotlib.ticker import MaxNLocator

        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in grid[-1]:
        ax.set_xlabel(time_col, fontsize=8)
    handles: dict[str, Any] = {}
    for ax in axes:
        ax.tick_params(labelsize=8)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside upper center",
            ncols=min(len(handles), 6),
            fontsize=8,
            frameon=False,
        )
    return fig


def _bands(intervals: IntervalColumns | None, levels: Any) -> list[tuple[float, str]]:
    """(level, kind) of the bands to shade, widest first: the interval levels (kind
    ``"level"``), or else symmetric quantile pairs ``q`` and ``1 - q`` (kind ``"quantile"``)."""
    pairs: list[tuple[float, str]] = []
    if intervals is not None and intervals.levels:
        pairs = [(v, "level") for v in intervals.levels]
    elif intervals is not None:
        qs = {round(q, 10) for q in intervals.quantiles}
        pairs = [
            (round(100 * (1 - 2 * q), 10), "quantile")
            for q in intervals.quantiles
            if q < 0.5 and round(1 - q, 10) in qs
        ]
    if levels is not None:
        wanted = [levels] if isinstance(levels, numbers.Real) else list(levels)
        have = {p[0] for p in pairs}
        absent = [v for v in wanted if float(v) not in have]
        if absent:
            raise DataValidationError(
                f"levels {absent} are not in the forecast frame, which has the levels "
                f"{sorted(have)}. Forecast with them (predict(..., level=...)) or leave levels "
                "out."
            )
        pairs = [p for p in pairs if p[0] in {float(v) for v in wanted}]
    return sorted(pairs, reverse=True)


def _bounds_of(target: str, level: float, kind: str) -> tuple[str, str]:
    if kind == "level":
        return level_name(target, level, "lo"), level_name(target, level, "hi")
    low, high = level_bounds(level)
    return quantile_name(target, low), quantile_name(target, high)


def _draw_forecast(
    ax: Axes,
    rows: pl.DataFrame,
    target: str,
    time_col: str,
    bands: list[tuple[float, str]],
    *,
    anchor: pl.DataFrame | None = None,
    color: str = FORECAST_COLOR,
    label: str | None = "forecast",
) -> None:
    """The shaded bands (widest lightest) and the point line of ``rows``, both starting at
    ``anchor`` (one row of ``time_col`` and ``target``: the last observation before the
    forecast) when it is given, so that the forecast is joined to the history."""
    times = rows[time_col].to_numpy()
    point = rows[target].to_numpy()
    start_time = start_value = None
    if anchor is not None and anchor.height:
        start_time = anchor[time_col].to_numpy()
        start_value = anchor[target].to_numpy().astype(float)
        times = np.concatenate([start_time, times])
        point = np.concatenate([start_value, point])
    for i, (level, kind) in enumerate(bands):
        lo, hi = (rows[c].to_numpy() for c in _bounds_of(target, level, kind))
        if start_value is not None:
            lo, hi = np.concatenate([start_value, lo]), np.concatenate([start_value, hi])
        ax.fill_between(
            times,
            lo,
            hi,
            color=color,
            alpha=0.15 + 0.15 * i,
            linewidth=0,
            label=f"{level:g} % interval" if label else None,
        )
    ax.plot(times, point, color=color, linewidth=1.6, label=label)


def _check_tail(tail: Any, drawn: bool, source: str) -> None:
    """``tail``: None or an integer >= 0 (polars' tail(-1) would draw all but one row), and
    only where a history is drawn (``drawn``: the argument ``source`` was given)."""
    if tail is not None and (
        isinstance(tail, bool) or not isinstance(tail, numbers.Integral) or tail < 0
    ):
        raise DataValidationError(f"tail must be None or an integer >= 0, got {tail!r}.")
    if tail is not None and not drawn:
        raise DataValidationError(
            f"tail={tail!r} counts history points to draw, but {source} is None: pass "
            f"{source} (the history), or leave tail out."
        )


def _series_ids(frame: pl.DataFrame, id_col: str | None, series: Any, max_series: Any) -> list:
    """The ids drawn: ``series`` as given, else the first ``max_series`` (None: 4) of
    ``frame``; both given is refused, as ``max_series`` would not cap ``series``."""
    if series is not None and max_series is not None:
        raise DataValidationError(
            f"max_series={max_series!r} caps the series drawn by default, and series= names "
            "them, so it would be ignored. Pass series=[...] (every id listed is drawn) or "
            "max_series, not both."
        )
    max_series = _DEFAULT_SERIES if max_series is None else max_series
    if isinstance(max_series, bool) or not isinstance(max_series, numbers.Integral):
        raise DataValidationError(f"max_series must be an integer >= 1, got {max_series!r}.")
    if max_series < 1:
        raise DataValidationError(f"max_series must be an integer >= 1, got {max_series!r}.")
    if id_col is None:
        return [None]
    if id_col not in frame.columns:
        raise DataValidationError(f"The forecast frame has no id column {id_col!r}.")
    present = frame[id_col].unique(maintain_order=True).to_list()
    if series is None:
        return present[: int(max_series)]
    chosen = [series] if isinstance(series, str | numbers.Number) else list(series)
    absent = [s for s in chosen if s not in present]
    if absent:
        raise DataValidationError(
            f"series {absent} are not in the forecast frame; it has {present[:10]}."
        )
    return chosen


def _mask(id_col: str | None, key: Any) -> pl.Expr:
    return pl.lit(True) if id_col is None else pl.col(id_col) == key


def _title(target: str, key: Any, as_of: str | None) -> str:
    parts = [target] if key is None else [target, str(key)]
    if as_of is not None:
        parts.append(f"as of {as_of}")
    return " · ".join(parts)


def _is_temporal(frame: pl.DataFrame, time_col: str) -> bool:
    return frame.schema[time_col].is_temporal()


def plot_forecast(
    history: pl.DataFrame | pl.LazyFrame | None,
    forecast: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str] | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    levels: Sequence[float] | None = None,
    series: Sequence[Any] | None = None,
    max_series: int | None = None,
    actual: pl.DataFrame | pl.LazyFrame | None = None,
    tail: int | None = None,
) -> Figure:
    """A figure of a few series: the history's tail, the point (median) forecast joined to the
    last observation, and shaded interval bands, one axes per series.

    Parameters
    ----------
    history : polars.DataFrame or polars.LazyFrame or None
        The series' past values (id, time, target); None to draw the forecast alone.
    forecast : polars.DataFrame or polars.LazyFrame
        From ``predict``, possibly with ``<target>_lo_<L>`` / ``<target>_hi_<L>`` bounds or
        ``<target>_q<100 q>`` quantiles (symmetric quantile pairs are shaded as intervals when
        there are no bounds), and an ``origin`` column (a pipeline's forecasts). One origin
        per series: forecasts of several (``predict(..., cutoff=[...])``) are refused, as
        a series is drawn with one forecast; filter one, or use :func:`plot_backtest`.
    target : str or list of str, optional
        The column drawn; default the forecast frame's first target: the first numeric
        column with interval bounds or quantiles, else the first numeric column that is not
        a key, the ``origin`` or an integer column naming series (the same value in every
        row, as the id of one series filtered from a panel, or one per series at each
        time); a frame where that is unclear (integer and float columns left) is refused,
        naming ``target=``. A list draws each of them in a column of its own (one row per
        series).
    id_col : str, optional
        None for one series.
    time_col : str, optional
        Default ``"time"``.
    levels : list of float, optional
        The bands shaded; default every level in the forecast frame.
    series : list, optional
        The ids drawn (all of them); default the first ``max_series`` of the forecast frame.
    max_series : int, optional
        How many series are drawn without ``series`` (default 4); refused with ``series``,
        which it would not cap.
    actual : polars.DataFrame or polars.LazyFrame, optional
        The true values of the forecast times, drawn dashed.
    tail : int, optional
        History points drawn per series, >= 0 (only with ``history``); default three times
        the number of forecast steps.

    Returns
    -------
    matplotlib.figure.Figure
        One row of axes per series (one column per target). Each axes titled
        ``"<target> · <series> · as of <origin>"``: the origin is the
        forecast frame's ``origin`` when it has one, else the last history time before the
        forecast.

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": range(10), "y": [float(i % 3) for i in range(10)]})
    >>> forecast = pl.DataFrame({"time": [10, 11], "y": [1.0, 2.0], "y_lo_80": [0.0, 1.0],
    ...                          "y_hi_80": [2.0, 3.0]})
    >>> fig = plot_forecast(history, forecast)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['history', 'forecast']
    >>> fig.axes[0].get_title()
    'y · as of 9'
    >>> fig.axes[0].get_lines()[1].get_xdata().tolist()  # joined to the last observation
    [9, 10, 11]
    """
    time_col = "time" if time_col is None else time_col
    fc = collect_frame(forecast, what="forecast frame")
    keys = [c for c in (id_col, time_col) if c is not None]
    missing = [c for c in keys if c not in fc.columns]
    if missing:
        raise DataValidationError(f"The forecast frame lacks the columns {missing}.")
    if target is None:
        targets = [default_target(fc, keys)]
    else:
        targets = [target] if isinstance(target, str) else list(target)
    absent = [t for t in targets if t not in fc.columns]
    if absent or not targets:
        raise DataValidationError(
            f"target {absent[0] if absent else target!r} is not a column of the forecast "
            f"frame {fc.columns}."
        )
    bands = {t: _bands(IntervalColumns.find(fc.columns, [t]), levels) for t in targets}
    _check_tail(tail, history is not None, "history")
    ids = _series_ids(fc, id_col, series, max_series)
    check_one_row_per_time(fc, "forecast", keys, targets)
    frames = {
        name: _drawn_frame(f, name, keys, targets)
        for name, f in (("history", history), ("actual", actual))
        if f is not None
    }
    aligned = align_keys({"forecast": fc, **frames}, keys)  # one dtype per key, or refused
    fc, frames = aligned.pop("forecast"), aligned
    fig, grid = _figure(len(ids), "plot_forecast", len(targets))
    for row, key in enumerate(ids):
        rows = fc.filter(_mask(id_col, key)).sort(time_col)
        mine = {name: f.filter(_mask(id_col, key)) for name, f in frames.items()}
        if "history" in mine:
            before = mine["history"].filter(pl.col(time_col) < rows[time_col].min())
            mine["history"] = before.tail(3 * rows.height if tail is None else int(tail))
        for col, name in enumerate(targets):
            _draw_one(grid[row, col], rows, mine, name, key, time_col, bands[name])
    return _finish(fig, grid, time_col, _is_temporal(fc, time_col))


def _line(
    ax: Axes, frame: pl.DataFrame, time_col: str, column: str, label: str, **style: Any
) -> None:
    """``column`` of ``frame`` against its time as one labelled line (width 1.2 unless
    ``style`` says otherwise)."""
    style.setdefault("linewidth", 1.2)
    ax.plot(frame[time_col].to_numpy(), frame[column].to_numpy(), label=label, **style)


def _draw_one(
    ax: Axes,
    rows: pl.DataFrame,
    frames: dict[str, pl.DataFrame],
    target: str,
    key: Any,
    time_col: str,
    bands: list[tuple[float, str]],
) -> None:
    """One axes of :func:`plot_forecast`: a series' history (already cut to its tail),
    actual values and forecast of ``target``."""
    anchor = None
    if "history" in frames:
        _line(ax, frames["history"], time_col, target, "history", color=HISTORY_COLOR)
        anchor = frames["history"].tail(1)
    if "actual" in frames:
        style = {"color": ACTUAL_COLOR, "linestyle": "--", "linewidth": 1.0}
        _line(ax, frames["actual"], time_col, target, "actual", **style)
    _draw_forecast(ax, rows, target, time_col, bands, anchor=anchor)
    ax.set_title(_title(target, key, _as_of(rows, anchor, time_col)), fontsize=9)
    ax.set_ylabel(target, fontsize=8)


def _drawn_frame(frame: Any, name: str, keys: list[str], targets: list[str]) -> pl.DataFrame:
    data = collect_frame(frame, what=f"{name} frame")
    missing = [c for c in [*keys, *targets] if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"The {name} frame lacks the columns {missing} (it has {data.columns[:10]}); pass "
            "the frame the forecast was made from, with the same id, time and target columns."
        )
    check_one_row_per_time(data, name, keys, targets)
    return data.sort(keys)


def _as_of(rows: pl.DataFrame, anchor: pl.DataFrame | None, time_col: str) -> str | None:
    """The as-of of one series' forecast: its ``origin`` column, else the time of the last
    observation before it, else None."""
    if "origin" in rows.columns and rows.height and rows["origin"][0] is not None:
        return time_text(rows["origin"][0])
    if anchor is not None and anchor.height:
        return time_text(anchor[time_col][0])
    return None


def plot_backtest(
    result: Any,
    frame: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    target: str | None = None,
    levels: Sequence[float] | None = None,
    series: Sequence[Any] | None = None,
    max_series: int | None = None,
    tail: int | None = None,
) -> Figure:
    """A figure of a backtest: per series, the actual values and each fold's forecast (its own
    colour) with its interval bands, over the origins; each fold's forecast starts at the
    actual value at its cutoff (the series' last value before it). With ``frame`` that holds
    for every fold of every series: the actual line runs from the series' first cutoff to
    its last forecast time. Without ``frame`` the actual values are the folds' own, so the
    first fold, whose cutoff is before every forecast time, starts at its first forecast
    (and so does a fold whose cutoff no other fold forecast).

    Parameters
    ----------
    result : BacktestResult
        From :func:`~forecaster.evaluation.backtest.backtest`.
    frame : polars.DataFrame or polars.LazyFrame, optional
        The history the backtest ran on: the actual values from each series' first cutoff
        on, and ``tail`` values before it.
    target, levels, series, max_series
        As in :func:`plot_forecast`.
    tail : int, optional
        History points of ``frame`` drawn per series before its first cutoff, >= 0 (only
        with ``frame``); default none: the actual line starts at the first cutoff.

    Returns
    -------
    matplotlib.figure.Figure
        Each axes titled ``"<target> · <series> · cutoffs <first> to <last>"``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import polars as pl
    >>> forecasts = pl.DataFrame({"fold": [0, 0, 1, 1], "cutoff": [3, 3, 5, 5],
    ...     "time": [4, 5, 6, 7], "step": [1, 2, 1, 2], "y": [1.0, 2.0, 3.0, 4.0],
    ...     "y_actual": [1.5, 2.5, 3.5, 4.5]})
    >>> fig = plot_backtest(SimpleNamespace(forecasts=forecasts))  # as a BacktestResult has them
    >>> fig.axes[0].get_title()
    'y · cutoffs 3 to 5'
    >>> fig.axes[0].get_lines()[2].get_xdata().tolist()  # fold 1 starts at its cutoff
    [5, 6, 7]
    >>> frame = pl.DataFrame({"time": range(8), "y": [0.0, 1.0, 2.0, 3.5, 1.5, 2.5, 3.5, 4.5]})
    >>> fig = plot_backtest(SimpleNamespace(forecasts=forecasts), frame)
    >>> fig.axes[0].get_lines()[1].get_xdata().tolist()  # with frame, fold 0 too
    [3, 4, 5]
    >>> fig.axes[0].get_lines()[0].get_xdata().tolist()  # the actual line: from cutoff 3
    [3, 4, 5, 6, 7]
    """
    forecasts = getattr(result, "forecasts", None)
    if not isinstance(forecasts, pl.DataFrame) or not set(BACKTEST_KEYS) <= set(forecasts.columns):
        raise DataValidationError(
            f"plot_backtest needs a BacktestResult (from backtest()), got {type(result).__name__}."
        )
    columns = forecasts.columns
    time_col = columns[columns.index(_STEP) - 1]
    id_col = None if columns.index(time_col) == 2 else columns[2]
    targets = [c for c in columns if actual_column(c) in columns]
    target = targets[0] if target is None else target
    if target not in targets:
        raise DataValidationError(f"target {target!r} is not among the backtest's {targets}.")
    bands = _bands(IntervalColumns.find(columns, targets), levels)
    _check_tail(tail, frame is not None, "frame")
    ids = _series_ids(forecasts, id_col, series, max_series)
    keys = [c for c in (id_col, time_col) if c is not None]
    history = None if frame is None else _drawn_frame(frame, "history", keys, [target])
    if history is not None:  # one dtype per key, or refused
        aligned = align_keys({"forecast": forecasts, "history": history}, keys)
        forecasts, history = aligned["forecast"], aligned["history"]
    if history is not None and id_col is not None:
        absent = [k for k in ids if not history.filter(_mask(id_col, k)).height]
        if absent:  # they were drawn without any actual line
            raise DataValidationError(
                f"The frame has no rows of series {absent[:10]} that the backtest forecast: "
                "pass the frame the backtest ran on, or no frame (the actual values of the "
                "folds are drawn then)."
            )
    fig, grid = _figure(len(ids), "plot_backtest")
    actual = actual_column(target)
    for ax, key in zip(grid[:, 0], ids, strict=True):
        rows = forecasts.filter(_mask(id_col, key)).sort(_FOLD, time_col)
        mine = None if history is None else history.filter(_mask(id_col, key))
        truth = _actual_values(rows, mine, target, time_col, tail)
        _line(ax, truth, time_col, actual, "actual", color=ACTUAL_COLOR)
        known = truth.rename({actual: target})
        folds = rows[_FOLD].unique(maintain_order=True).to_list()
        for fold in folds:
            part = rows.filter(pl.col(_FOLD) == fold)
            anchor = known.filter(pl.col(time_col) == part[_CUTOFF][0])
            label = "forecast" if fold == folds[0] else None
            _draw_forecast(
                ax, part, target, time_col, bands, anchor=anchor, color=f"C{fold % 10}",
                label=label,
            )  # fmt: skip
        cutoffs = rows[_CUTOFF]
        origins = f"cutoffs {time_text(cutoffs.min())} to {time_text(cutoffs.max())}"
        ax.set_title(_title(target, key, None) + f" · {origins}", fontsize=9)
        ax.set_ylabel(target, fontsize=8)
    return _finish(fig, grid, time_col, _is_temporal(forecasts, time_col))


def _actual_values(
    rows: pl.DataFrame, history: pl.DataFrame | None, target: str, time_col: str, tail: Any
) -> pl.DataFrame:
    """The actual line of one series of a backtest (``rows``: its forecasts of every fold),
    ``time_col`` and ``<target>_actual``: the folds' actual values; or, from the series'
    ``history``, its values from the first fold's cutoff (so that every fold starts at the
    value at its cutoff) to the last forecast time, after ``tail`` values before it."""
    actual = actual_column(target)
    truth = rows.unique(time_col, keep="first").sort(time_col).select(time_col, actual)
    if history is None:
        return truth
    first, last = rows[_CUTOFF].min(), truth[time_col].max()
    past = history.filter(pl.col(time_col) <= last).select(
        time_col, pl.col(target).cast(pl.Float64).alias(actual)
    )
    before = past.filter(pl.col(time_col) < first).tail(0 if tail is None else int(tail))
    return pl.concat([before, past.filter(pl.col(time_col) >= first)])

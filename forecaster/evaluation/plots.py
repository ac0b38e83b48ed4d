"""Figures of forecasts and backtests (matplotlib, imported when a plot is drawn):
:func:`plot_forecast` draws a few series' history, the point (median) forecast and shaded
interval bands; :func:`plot_backtest` the actual values against every fold's forecasts and
intervals. Both return a :class:`matplotlib.figure.Figure` built without pyplot (no global
backend change): show it in a notebook, or save it with ``fig.savefig``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from forecaster.data.frames import collect_frame
from forecaster.evaluation.intervals import (
    IntervalColumns,
    level_bounds,
    level_name,
    quantile_name,
)
from forecaster.exceptions import DataValidationError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_backtest", "plot_forecast"]

_BACKTEST_KEYS = ("fold", "cutoff", "step")


def _figure(n_rows: int, what: str) -> tuple[Figure, np.ndarray]:
    """A figure of ``n_rows`` axes one below the other (matplotlib imported here)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the track extra
        raise ImportError(
            f"{what} needs matplotlib: pip install 'forecaster[track]' (or pip install matplotlib)."
        ) from exc
    fig = Figure(figsize=(9, 0.4 + 2.2 * n_rows))
    return fig, fig.subplots(n_rows, 1, squeeze=False)[:, 0]


def _finish(fig: Figure, axes: np.ndarray) -> Figure:
    axes[0].legend(fontsize=8, loc="upper left")
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3 / height, top=1 - 0.3 / height)
    fig.subplots_adjust(hspace=0.45)
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
    color: str = "C1",
    label: str | None = "forecast",
) -> None:
    """The shaded bands (widest lightest) and the point line of ``rows``."""
    from matplotlib.colors import to_rgba

    times = rows[time_col].to_numpy()
    for i, (level, kind) in enumerate(bands):
        lo, hi = _bounds_of(target, level, kind)
        ax.fill_between(
            times,
            rows[lo].to_numpy(),
            rows[hi].to_numpy(),
            color=color,
            alpha=0.15 + 0.15 * i,
            linewidth=0,
            label=f"{level:g} %" if label else None,
        )
    ax.plot(times, rows[target].to_numpy(), color=to_rgba(color), label=label)


def _series_ids(frame: pl.DataFrame, id_col: str | None, series: Any, max_series: Any) -> list:
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


def _default_target(forecast: pl.DataFrame, keys: Sequence[str]) -> str:
    """The first numeric column that is not a key, a bound or a quantile of another."""
    numeric = [c for c in forecast.columns if c not in keys and forecast.schema[c].is_numeric()]

    def derived(c: str) -> bool:
        return any(c.startswith((f"{t}_lo_", f"{t}_hi_", f"{t}_q")) for t in numeric if t != c)

    targets = [c for c in numeric if not derived(c)]
    if not targets:
        raise DataValidationError(
            f"The forecast frame has no numeric column to draw besides {list(keys)}; pass "
            "target=<column>."
        )
    return targets[0]


def _mask(id_col: str | None, key: Any) -> pl.Expr:
    return pl.lit(True) if id_col is None else pl.col(id_col) == key


def plot_forecast(
    history: pl.DataFrame | pl.LazyFrame | None,
    forecast: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    levels: Sequence[float] | None = None,
    series: Sequence[Any] | None = None,
    max_series: int = 4,
    actual: pl.DataFrame | pl.LazyFrame | None = None,
    tail: int | None = None,
) -> Figure:
    """A figure of a few series: the history's tail, the point (median) forecast and shaded
    interval bands, one axes per series.

    Parameters
    ----------
    history : polars.DataFrame or polars.LazyFrame or None
        The series' past values (id, time, target); None to draw the forecast alone.
    forecast : polars.DataFrame or polars.LazyFrame
        From ``predict``, possibly with ``<target>_lo_<L>`` / ``<target>_hi_<L>`` bounds or
        ``<target>_q<100 q>`` quantiles (symmetric quantile pairs are shaded as intervals when
        there are no bounds).
    target : str, optional
        The column drawn; default the forecast frame's first target.
    id_col : str, optional
        None for one series.
    time_col : str, optional
        Default ``"time"``.
    levels : list of float, optional
        The bands shaded; default every level in the forecast frame.
    series : list, optional
        The ids drawn; default the first ``max_series`` of the forecast frame.
    max_series : int, default 4
    actual : polars.DataFrame or polars.LazyFrame, optional
        The true values of the forecast times, drawn dashed.
    tail : int, optional
        History points drawn per series; default three times the number of forecast steps.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": range(10), "y": [float(i % 3) for i in range(10)]})
    >>> forecast = pl.DataFrame({"time": [10, 11], "y": [1.0, 2.0], "y_lo_80": [0.0, 1.0],
    ...                          "y_hi_80": [2.0, 3.0]})
    >>> fig = plot_forecast(history, forecast)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['history', 'forecast']
    """
    time_col = "time" if time_col is None else time_col
    fc = collect_frame(forecast, what="forecast frame")
    keys = [c for c in (id_col, time_col) if c is not None]
    missing = [c for c in keys if c not in fc.columns]
    if missing:
        raise DataValidationError(f"The forecast frame lacks the columns {missing}.")
    target = _default_target(fc, keys) if target is None else target
    if target not in fc.columns:
        raise DataValidationError(
            f"target {target!r} is not a column of the forecast frame {fc.columns}."
        )
    bands = _bands(IntervalColumns.find(fc.columns, [target]), levels)
    ids = _series_ids(fc, id_col, series, max_series)
    frames = {
        name: collect_frame(f, what=f"{name} frame").sort(keys)
        for name, f in (("history", history), ("actual", actual))
        if f is not None
    }
    fig, axes = _figure(len(ids), "plot_forecast")
    for ax, key in zip(axes, ids, strict=True):
        rows = fc.filter(_mask(id_col, key)).sort(time_col)
        if "history" in frames:
            past = frames["history"].filter(_mask(id_col, key))
            past = past.tail(3 * rows.height if tail is None else int(tail))
            ax.plot(
                past[time_col].to_numpy(), past[target].to_numpy(), color="0.3", label="history"
            )
        if "actual" in frames:
            truth = frames["actual"].filter(_mask(id_col, key))
            ax.plot(truth[time_col].to_numpy(), truth[target].to_numpy(), "k--", label="actual")
        _draw_forecast(ax, rows, target, time_col, bands)
        ax.set_title(f"{target}" if key is None else f"{target} · {key}", fontsize=9)
        ax.tick_params(labelsize=8)
    return _finish(fig, axes)


def plot_backtest(
    result: Any,
    frame: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    target: str | None = None,
    levels: Sequence[float] | None = None,
    series: Sequence[Any] | None = None,
    max_series: int = 4,
    tail: int | None = None,
) -> Figure:
    """A figure of a backtest: per series, the actual values and each fold's forecast (its own
    colour) with its interval bands, over the origins.

    Parameters
    ----------
    result : BacktestResult
        From :func:`~forecaster.evaluation.backtest.backtest`.
    frame : polars.DataFrame or polars.LazyFrame, optional
        The history the backtest ran on, to draw the values before the first fold too
        (``tail`` points before it; default the span of the folds).
    target, levels, series, max_series
        As in :func:`plot_forecast`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    forecasts = getattr(result, "forecasts", None)
    if not isinstance(forecasts, pl.DataFrame) or not set(_BACKTEST_KEYS) <= set(forecasts.columns):
        raise DataValidationError(
            f"plot_backtest needs a BacktestResult (from backtest()), got {type(result).__name__}."
        )
    columns = forecasts.columns
    time_col = columns[columns.index("step") - 1]
    id_col = None if columns.index(time_col) == 2 else columns[2]
    targets = [c for c in columns if f"{c}_actual" in columns]
    target = targets[0] if target is None else target
    if target not in targets:
        raise DataValidationError(f"target {target!r} is not among the backtest's {targets}.")
    bands = _bands(IntervalColumns.find(columns, targets), levels)
    ids = _series_ids(forecasts, id_col, series, max_series)
    keys = [c for c in (id_col, time_col) if c is not None]
    history = None if frame is None else collect_frame(frame, what="frame").sort(keys)
    fig, axes = _figure(len(ids), "plot_backtest")
    for ax, key in zip(axes, ids, strict=True):
        rows = forecasts.filter(_mask(id_col, key)).sort("fold", time_col)
        truth = rows.unique(time_col, keep="first").sort(time_col)
        if history is not None:
            past = history.filter(_mask(id_col, key) & (pl.col(time_col) <= truth[time_col].max()))
            span = truth.height if tail is None else truth.height + int(tail)
            truth = past.tail(span).select(time_col, pl.col(target).alias(f"{target}_actual"))
        ax.plot(
            truth[time_col].to_numpy(), truth[f"{target}_actual"].to_numpy(), "k", label="actual"
        )
        for fold in rows["fold"].unique(maintain_order=True).to_list():
            part = rows.filter(pl.col("fold") == fold)
            label = "forecast" if fold == rows["fold"][0] else None
            _draw_forecast(ax, part, target, time_col, bands, color=f"C{fold % 10}", label=label)
        ax.set_title(f"{target}" if key is None else f"{target} · {key}", fontsize=9)
        ax.tick_params(labelsize=8)
    return _finish(fig, axes)

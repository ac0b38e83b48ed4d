"""Where a backtest's forecast origins are (``backtest(..., origins=...)``; see
:mod:`forecaster.evaluation.backtest` for the whole geometry).

- ``"series"``: fold ``k``'s origin of a series of ``n`` rows is its row
  ``n - 1 - H - (folds - 1 - k) * step``, counted from its own end. Series that end at
  different times get origins at different times, and a global model trained on one series up
  to its origin may have seen the rows after another series' origin (:func:`warn_cross_series`,
  when ``"series"`` is asked for: ``"auto"`` chooses it for integer steps, whose positions of
  independent sequences are not times, and does not warn).
- ``"calendar"``: fold ``k``'s cutoff is one time of the panel's grid for every series,
  ``T_k = last - (H + (folds - 1 - k) * step)`` steps, ``last`` the last time of the series
  the backtest keeps (counted on the rows of the longest series that ends there, so on the
  grid whatever the frequency). A series' origin is its last row at or before ``T_k`` (as
  ``predict(cutoff=T_k)`` places it) and its targets the ``H`` rows after that origin, as
  ``predict`` dates them; a series whose data end within them is scored on the rows it has
  (for a model with future covariates, which its forecast reads from the ``H`` rows after
  the origin, it is left out of the fold); one with no row after its origin (it ended at or
  before ``T_k``), or fewer than ``lookback`` rows up to it, is left out of that fold
  (:func:`calendar_cuts`). Every training
  span ends ``gap`` steps before ``T_k`` (for every series, those a fold leaves out too: its
  model trains on all series' rows up to ``T_k - gap``), so no fold's model sees a row after
  ``T_k - gap``, and every target of the fold is after ``T_k``.
- ``"auto"``: ``"calendar"`` for date and datetime time columns (series share a calendar),
  ``"series"`` for integer steps (independent sequences, whose positions are not times).

For a panel whose series all end at the same time both place the same origins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.data.panel import Panel
from forecaster.data.steps import steps_behind
from forecaster.exceptions import CalendarFoldsWarning, CrossSeriesWarning, warn_at_caller

__all__ = [
    "UNFORECAST_SERIES",
    "calendar_cutoffs",
    "calendar_cuts",
    "series_cuts",
    "training_spans",
    "uses_calendar",
    "warn_absent",
    "warn_cross_series",
]

UNFORECAST_SERIES = r"^Left out \d+ series that no calendar fold forecasts"
"""What the backtest's :class:`~forecaster.exceptions.CalendarFoldsWarning` about the series
that no calendar fold forecasts begins with (a regular expression): what ``calibrate``
silences where it names those series itself (``normalize="series"``: they get no residuals,
and no intervals)."""


def uses_calendar(origins: Any, times: pl.Series) -> bool:
    """Whether ``origins`` (checked: ``"auto"``, ``"calendar"`` or ``"series"``) places
    calendar folds on a panel of the time column ``times`` (a panel's ``time``, or a frame's
    column): ``"auto"`` does for a date or datetime column (the backtest's folds and
    :class:`~forecaster.estimators.split.TemporalSplit`'s)."""
    origins = check("origins", origins)
    if origins == "auto":
        return not times.dtype.is_integer()
    return bool(origins == "calendar")


def _back(horizon: int, folds: int, step: int) -> np.ndarray:
    """Rows (grid steps) from the end back to each fold's origin, ``(folds,)``."""
    return horizon + (folds - 1 - np.arange(folds)) * step


def series_cuts(lengths: np.ndarray, *, horizon: int, folds: int, step: int) -> np.ndarray:
    """The ``"series"`` origins: each (fold, series) origin's position within its series,
    counted from its own end, ``(folds, n_series)`` fold-major (may be negative for series
    too short)."""
    return lengths[None, :] - 1 - _back(horizon, folds, step)[:, None]


def training_spans(
    local_cut: np.ndarray,
    *,
    gap: int,
    train_size: int | None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The first and last positions of the training span of each (fold, series) origin at
    position ``local_cut`` on its series' grid: ``gap`` rows before it (at most the series'
    last row, given its ``lengths``), from row 0 or the last ``train_size`` rows (spans may
    be empty or negative for series too short)."""
    train_end = local_cut - gap
    if lengths is not None:  # a calendar cutoff after the series' end
        train_end = np.minimum(train_end, lengths[None, :] - 1)
    if train_size is not None:
        train_start = np.maximum(train_end - int(train_size) + 1, 0)
    else:
        train_start = np.zeros_like(train_end)
    return train_start, train_end


def _physical(times: pl.Series) -> np.ndarray:
    """The times as int64 (a time zone's instants: their order)."""
    return times.to_physical().to_numpy().astype(np.int64, copy=False)


def _cutoff_rows(
    panel: Panel, kept: np.ndarray, *, horizon: int, folds: int, step: int
) -> np.ndarray:
    """The global rows of ``panel`` at the ``"calendar"`` cutoffs ``T_k`` of the series
    ``kept``, ``(folds,)``: counted back from the last time on the rows of the longest series
    that ends there."""
    starts, lengths = panel.offsets[kept], panel.lengths[kept]
    ends = _physical(panel.time)[starts + lengths - 1]
    at_last = np.flatnonzero(ends == ends.max())
    anchor = at_last[np.argmax(lengths[at_last])]  # the longest series ending at the last time
    back = _back(horizon, folds, step)
    return starts[anchor] + np.maximum(lengths[anchor] - 1 - back, 0)


def calendar_cutoffs(
    panel: Panel, kept: np.ndarray, *, horizon: int, folds: int, step: int
) -> pl.Series:
    """The ``"calendar"`` cutoffs ``T_k`` (``folds`` times of the panel's dtype) of the
    series ``kept`` (positions in ``panel``), as :func:`calendar_cuts` places them: every
    target of fold ``k`` is after ``T_k``, so the data up to ``T_0`` are those before the
    backtest's first target, for every series."""
    return panel.time.gather(_cutoff_rows(panel, kept, horizon=horizon, folds=folds, step=step))


def calendar_cuts(
    panel: Panel,
    kept: np.ndarray,
    *,
    lookback: int,
    horizon: int,
    folds: int,
    step: int,
    after: int = 1,
) -> tuple[np.ndarray, np.ndarray, pl.Series, np.ndarray]:
    """The ``"calendar"`` origins of the series ``kept`` (positions in ``panel``): their
    positions within their series ``(folds, n_kept)`` (clipped into the series where it has
    none, see the mask), which (fold, series) pairs are forecast (boolean, same shape:
    ``after`` rows after the origin, one to score or the ``horizon`` whose future covariates
    a forecast reads, and ``lookback`` rows up to it), the cutoffs ``T_k`` (``folds``
    times of the panel's dtype) and the position of each ``T_k`` on each series' grid, where
    the training spans end (:func:`training_spans`: past the end of a series that ended
    before it, as :func:`~forecaster.data.steps.steps_behind` counts; negative before its
    start). Every series is trained on up to ``T_k - gap``, forecast or not."""
    lengths = panel.lengths[kept]
    times = _physical(panel.time)
    cut_rows = _cutoff_rows(panel, kept, horizon=horizon, folds=folds, step=step)
    cutoffs = panel.time.gather(cut_rows)
    local_cut = np.empty((folds, len(kept)), dtype=np.int64)
    grid_cut = np.empty_like(local_cut)
    counts = _rows_up_to(panel, times, times[cut_rows])
    for k in range(folds):
        local_cut[k] = counts[k, kept] - 1  # the last row at or before T_k (-1: none)
        ended = local_cut[k] == lengths - 1
        behind = 0
        if ended.any():  # T_k is that many steps after the series' end
            behind = steps_behind(panel.time, panel.offsets, panel.freq, cutoffs[k])[kept]
        grid_cut[k] = np.where(ended, local_cut[k] + behind, local_cut[k])
    present = (local_cut >= lookback - 1) & (local_cut <= lengths[None, :] - 1 - after)
    return np.clip(local_cut, 0, lengths - 1), present, cutoffs, grid_cut


def _rows_up_to(panel: Panel, times: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """How many rows of each series of ``panel`` (``times``: its physical times) are at or
    before each of ``cutoffs``, ``(len(cutoffs), n_series)``: one pass over the rows (each
    counted from the first cutoff at or after it on), not one per cutoff."""
    order = np.argsort(cutoffs, kind="stable")
    first = np.searchsorted(cutoffs[order], times, side="left")  # cutoffs before each row
    width = len(cutoffs) + 1
    series = np.repeat(np.arange(panel.n_series), np.diff(panel.offsets))
    counts = np.bincount(series * width + first, minlength=panel.n_series * width)
    up_to = np.cumsum(counts.reshape(panel.n_series, width), axis=1)[:, :-1]
    out = np.empty_like(up_to.T)
    out[order] = up_to.T
    return out


def warn_absent(
    panel: Panel,
    kept: np.ndarray,
    present: np.ndarray,
    cutoffs: pl.Series,
    lookback: int,
    after: int = 1,
) -> None:
    """Warn about the series ``kept`` left out of some calendar folds (``present`` false):
    those in none (ended at or before the cutoffs, or fewer than ``after`` rows after them,
    or start too late for a ``lookback`` window before them) and the (fold, series) pairs of
    the others."""
    ids = panel.keys[panel.id_name].gather(kept)
    nowhere = ~present.any(axis=0)
    partly = present.any(axis=0) & ~present.all(axis=0)
    first, final = cutoffs[0], cutoffs[-1]
    rows, too_few = (
        ("a row", "no row") if after == 1 else (f"{after} rows", f"fewer than {after} rows")
    )
    within = ""  # a model with future covariates reads them from the rows after the origin
    if after > 1:
        within = f" or within the {after} steps after {{0}}, whose future covariates it reads"
    if nowhere.any():
        warn_at_caller(
            f"Left out {int(nowhere.sum())} series that no calendar fold forecasts "
            f"(origins='calendar': every fold's cutoff is one time for all series, from "
            f"{first} to {final}): none has {rows} after a cutoff with lookback={lookback} "
            f"rows up to it (it ended at or before them{within.format('them')}, or starts too "
            f"late): "
            f"{ids.filter(pl.Series(nowhere)).head(10).to_list()} (their rows up to each "
            "cutoff are still trained on). Pass origins='series' to count each series' folds "
            "back from its own end (its models may then train on other series' rows after "
            "its targets).",
            CalendarFoldsWarning,
        )
    if partly.any():
        pairs = int((~present[:, partly]).sum())
        warn_at_caller(
            f"Left out {pairs} (fold, series) forecasts of {int(partly.sum())} series from "
            f"the calendar folds (cutoffs {first} to {final}) whose series has {too_few} after "
            f"the fold's cutoff (it ended at or before it{within.format('it')}) or fewer than "
            f"lookback={lookback} rows up to it (it starts later): "
            f"{ids.filter(pl.Series(partly)).head(10).to_list()}. "
            "result.folds lists the (fold, series) pairs forecast.",
            CalendarFoldsWarning,
        )


def warn_cross_series(
    panel: Panel,
    kept: np.ndarray,
    local_cut: np.ndarray,
    train_start: np.ndarray,
    train_end: np.ndarray,
) -> None:
    """Warn when a fold's model (``origins="series"``) was trained on rows at or after the
    first target of some series of the fold: series that end at different times have
    origins at different times, and a global model sees the other series' data there.
    ``train_start`` and ``train_end`` are those of the model of each (fold, series)."""
    times = _physical(panel.time)
    starts = panel.offsets[kept][None, :]
    spans = train_end >= np.maximum(train_start, 0)
    trained = np.where(spans, times[starts + np.clip(train_end, 0, None)], np.iinfo(np.int64).min)
    model_end = trained.max(axis=1, keepdims=True)  # the latest row each fold's model saw
    first_target = times[np.minimum(starts + local_cut + 1, len(times) - 1)]
    leaked = first_target <= model_end
    if not leaked.any():
        return
    folds = np.flatnonzero(leaked.any(axis=1)).tolist()
    warn_at_caller(
        f"origins='series' counts each series' folds back from its own end, and the series "
        f"end at different times: in {int(leaked.sum())} (series, fold) pairs (folds "
        f"{folds[:10]}) the fold's model was trained on rows (of other series) at or after "
        "the series' first target time, so its scores may be optimistic. Pass "
        "origins='calendar' (the default for date and datetime time columns) for folds at "
        "common times that no model trains past.",
        CrossSeriesWarning,
    )

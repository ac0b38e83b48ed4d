"""Where the folds of a rolling-origin backtest are (see :mod:`forecaster.evaluation.backtest`
for the geometry): the origins and training spans per (fold, series), the folds frame, the
training rows of a fold and MASE's scales (the checks before any of it:
:mod:`forecaster.evaluation.fold_checks`; the baselines' forecasts per fold:
:mod:`forecaster.evaluation.fold_baselines`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import BACKTEST_KEYS, TRAIN_COLUMNS, actual_column, temporary_names
from forecaster.data.panel import Panel
from forecaster.data.wording import in_spec_words, settings_named
from forecaster.evaluation.array_metrics import mase_scales as array_mase_scales
from forecaster.evaluation.fold_checks import check_backtest_size
from forecaster.evaluation.intervals import IntervalColumns
from forecaster.evaluation.metrics import TARGET_COLUMN, PointColumns
from forecaster.evaluation.origins import calendar_cuts, series_cuts, training_spans, warn_absent
from forecaster.exceptions import ForecasterWarning, TooFewRowsError, warn_at_caller
from forecaster.training.checkpoint_directory import clone_without_checkpoints

__all__ = [
    "LOOKBACK_ROUNDS",
    "SHORT_FOR_FOLDS",
    "Folds",
    "beyond_ends",
    "first_fit_lookback",
    "fold_model",
    "fold_points",
    "fold_rows",
    "folds_frame",
    "forecast_rows",
    "forecasts_frame",
    "mase_scales",
    "place_folds",
    "training_rows",
    "unscored_cells",
    "unscored_points",
]

SHORT_FOR_FOLDS = r"^Left out \d+ series shorter than the \d+ rows that \d+ folds? needs?:"
"""What the backtest's warning about the series too short for its folds begins with (a
regular expression): what ``calibrate`` silences where it names those series itself
(``normalize="series"``: they get no residuals, and no intervals)."""

_FOLD, _CUTOFF, _STEP = BACKTEST_KEYS  # the columns of the forecasts beside the id and time


@dataclass(frozen=True)
class Folds:
    """Where the folds of a backtest are: per (fold, kept series), fold-major."""

    kept: np.ndarray  # the series long enough for every fold (positions in the panel)
    local_cut: np.ndarray  # (folds, n_kept): the origin's position within its series
    train_start: np.ndarray  # (folds, n_kept): first row of the span of the fold's model
    train_end: np.ndarray  # (folds, n_kept): last row of that span
    every: int  # folds per model
    trains: bool  # whether the models are fitted here (else the given one is used)
    # (folds, n_kept): the (fold, series) pairs forecast (calendar folds leave some out);
    # None: every one
    present: np.ndarray | None = None

    @property
    def n_folds(self) -> int:
        return self.local_cut.shape[0]

    @property
    def blocks(self) -> np.ndarray:
        """The (fold, series) pairs forecast, as positions in the fold-major ``(folds,
        n_kept)`` grid: the forecasts' blocks of ``horizon`` rows, in order."""
        if self.present is None:
            return np.arange(self.local_cut.size)
        return np.flatnonzero(self.present.ravel())


LOOKBACK_ROUNDS = 4
"""Rounds in which :func:`first_fit_lookback` settles the lookback and the kept series."""


def first_fit_lookback(
    panel: Panel,
    estimator: Any,
    *,
    folds: int,
    step: int,
    gap: int,
    train_size: int | None,
    calendar: bool = False,
) -> int:
    """The lookback of a backtest's first fold's fit: what ``estimator.lookback_for`` (e.g.
    ``lookback="auto"``) chooses from that fold's training span (a sliding window's
    ``train_size`` rows, not the whole frame) of the series the folds keep, so that the folds
    are placed for the window the fitted models use.

    Which series are kept (long enough for the folds) depends on the lookback, and the fit
    sees only those: the two are settled in turn until they agree (at most
    :data:`LOOKBACK_ROUNDS` rounds; when they do not, the longest lookback seen, which
    leaves every origin a window). With ``calendar`` folds every series' span ends ``gap``
    steps before the first cutoff (:func:`~forecaster.evaluation.origins.calendar_cuts`,
    placed on the series long enough for a one-row window; the others have no span)."""
    horizon = int(estimator.horizon)
    least = horizon + (folds - 1) * step
    local_cut = series_cuts(panel.lengths, horizon=horizon, folds=folds, step=step)
    if calendar and (panel.lengths > least).any():
        long = np.flatnonzero(panel.lengths > least)
        local_cut = np.full((folds, panel.n_series), -1, dtype=np.int64)  # others: no span
        local_cut[:, long] = calendar_cuts(
            panel, long, lookback=1, horizon=horizon, folds=folds, step=step
        )[3]
    train_start, train_end = training_spans(
        local_cut, gap=gap, train_size=train_size, lengths=panel.lengths
    )
    start, stop = train_start[0], train_end[0] + 1
    keep = np.ones(panel.n_series, dtype=bool)
    seen: list[int] = []
    for _ in range(LOOKBACK_ROUNDS):
        lookback = int(estimator.lookback_for(panel, span=(start, np.where(keep, stop, start))))
        kept_now = panel.lengths >= lookback + least
        if not kept_now.any() or (kept_now == keep).all():
            return lookback  # no series kept (place_folds says so), or the two agree
        if lookback in seen:  # a cycle
            break
        seen.append(lookback)
        keep = kept_now
    return max(seen)


def fold_rows(lookback: int, horizon: int, folds: int, step: int) -> int:
    """The rows a series needs for ``folds`` origins ``step`` rows apart (a ``lookback``
    window before the first, ``horizon`` targets after the last): ``lookback + horizon +
    (folds - 1) * step``. A backtest leaves shorter series out (:func:`place_folds`), so a
    calibration gives them no residuals."""
    return int(lookback) + int(horizon) + (int(folds) - 1) * int(step)


def place_folds(
    panel: Panel,
    *,
    lookback: int,
    horizon: int,
    folds: int,
    step: int,
    gap: int,
    train_size: int | None,
    every: int,
    trains: bool,
    auto: bool = False,
    calendar: bool = False,
    fit_keeps: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
    after: int = 1,
) -> Folds:
    """The fold geometry of the module docstring, for the series long enough for it (the
    others are left out with a warning); refuses too few rows, a training span too short for
    one window, or forecasts that would not fit in memory. ``auto``: ``lookback`` is what
    ``lookback="auto"`` chose for the first fold's training span (the errors say so).
    ``calendar``: the origins are the calendar folds'
    (:func:`~forecaster.evaluation.origins.calendar_cuts`), which leave out (with a warning)
    the (fold, series) pairs with fewer than ``after`` rows after the cutoff (one to score, or
    the ``horizon`` whose future covariates a model with them reads from the frame) or too
    few rows up to it.
    ``fit_keeps`` (``trains``): the estimator's ``series_kept``, the series a fit on a span
    keeps (those with a training window before its validation hold-out), so that a fold
    whose fit would keep none is refused here, before any fit (None: those with a window's
    rows)."""
    needed = fold_rows(lookback, horizon, folds, step)
    keep = panel.lengths >= needed
    chosen = f" (lookback='auto' chose {lookback} for the first fold's rows)" if auto else ""
    if not keep.any():
        raise TooFewRowsError(
            f"Too few rows for {folds} folds: every series needs at least lookback + horizon + "
            f"(folds - 1) * step = {lookback} + {horizon} + {folds - 1} * {step} = {needed} "
            f"rows{chosen}; the longest has {int(panel.lengths.max())}.",
            f"Use fewer {settings_named('folds')}, "
            + ("" if in_spec_words() else "a smaller step, ")
            + f"or a shorter {settings_named('lookback or horizon')}.",
        )
    if not keep.all():
        dropped = panel.keys[panel.id_name].filter(pl.Series(~keep)).head(10).to_list()
        warn_at_caller(
            f"Left out {int((~keep).sum())} series shorter than the {needed} rows that {folds} "
            f"{'fold needs' if folds == 1 else 'folds need'}: {dropped}.",
            ForecasterWarning,
        )
    kept = np.flatnonzero(keep)
    check_backtest_size(folds, len(kept), horizon, panel.n_targets)
    fold_ids = np.arange(folds)
    present, grid_cut = None, None
    if calendar:
        local_cut, present, cutoffs, grid_cut = calendar_cuts(
            panel, kept, lookback=lookback, horizon=horizon, folds=folds, step=step, after=after
        )
        warn_absent(panel, kept, present, cutoffs, lookback, after)
        if not present.any():
            targets = "a target" if after == 1 else f"the {after} rows (future covariates)"
            raise TooFewRowsError(
                f"No series has {targets} after the calendar folds' cutoffs ({cutoffs[0]} to "
                f"{cutoffs[-1]}) and lookback={lookback} rows up to one.",
                "Use fewer folds, or origins='series' to count each series' folds back from "
                "its own end.",
            )
        present = None if present.all() else present
    else:
        local_cut = series_cuts(panel.lengths[kept], horizon=horizon, folds=folds, step=step)
    train_start, train_end = training_spans(
        local_cut if grid_cut is None else grid_cut,
        gap=gap,
        train_size=train_size,
        lengths=panel.lengths[kept],
    )
    if trains:
        spans = (train_start[::every], train_end[::every])
        first, rows, held = _untrainable(panel, kept, spans, lookback, horizon, fit_keeps)
        if first is not None:
            where = f"with folds={folds}, step={step} and gap={gap:,}, fold {first * every}'s"
            longest = f"the longest series has {int(panel.lengths[kept].max()):,} rows"
            window = (lookback + horizon, chosen)
            larger = "a larger train_size, " if train_size is not None else ""
            raise _short_span(where, rows, held, window, f"{longest}. Use {larger}fewer folds")
    # the training span shown for a fold is that of the model that forecasts it
    first_of_model = (fold_ids // every) * every
    return Folds(
        kept=kept,
        local_cut=local_cut,
        train_start=train_start[first_of_model],
        train_end=train_end[first_of_model],
        every=every,
        trains=trains,
        present=present,
    )


def _short_span(
    where: str, rows: int, held: bool, window: tuple[int, str], fixes: str
) -> TooFewRowsError:
    """The error of :func:`place_folds` for a model (``where``: which, of which folds) whose
    training span of at most ``rows`` rows per series leaves its fit no training window
    (``window``: its rows, and what ``lookback="auto"`` chose) before the fit's validation
    hold-out when ``held``; ``fixes``: the longest series' rows and the first fixes."""
    gap = "(the gap is longer than the data before the fold's origin) " if not rows else ""
    rows_of = f"{window[0]}{window[1]}"
    if held:
        rows_of = f"{window[0]} rows{window[1]} before the validation_size hold-out of its fit"
    return TooFewRowsError(
        f"The training span of some fold is too short: {where} model trains on at most "
        f"{rows:,} rows per series {gap}but one training window takes lookback + horizon = "
        f"{rows_of}; {fixes}, a smaller step or gap, "
        + ("a smaller validation_size, " if held else "")
        + "or longer series."
    )


def _untrainable(
    panel: Panel,
    kept: np.ndarray,
    spans: tuple[np.ndarray, np.ndarray],
    lookback: int,
    horizon: int,
    fit_keeps: Callable[..., tuple[np.ndarray, np.ndarray]] | None,
) -> tuple[int | None, int, bool]:
    """The first model whose training span (``spans``: first and last rows, ``(models,
    n_kept)``, of the series ``kept``) leaves its fit no series: none with ``lookback +
    horizon`` rows, or with ``fit_keeps`` (the estimator's ``series_kept``) none with them
    before the fit's validation hold-out; its most rows per series and, when the hold-out is
    what leaves it none, True. ``(None, 0, False)`` when every model has a series to fit."""
    for model, (start, end) in enumerate(zip(*spans, strict=True)):
        rows = np.maximum(end - start + 1, 0)
        keep = None
        if fit_keeps is not None:  # first: it refuses the parameters a fit refuses
            begin = np.zeros(panel.n_series, dtype=np.int64)
            stop = np.zeros(panel.n_series, dtype=np.int64)
            begin[kept] = np.maximum(start, 0)
            stop[kept] = begin[kept] + rows
            keep, _ = fit_keeps(panel, lookback, (begin, stop))
        if not (rows >= lookback + horizon).any():
            return model, int(rows.max(initial=0)), False
        if keep is not None and not keep.any():
            return model, int(rows.max()), True
    return None, 0, False


def folds_frame(panel: Panel, where: Folds, fitted_ends: pl.Series | None = None) -> pl.DataFrame:
    """One row per (fold, series): its origin, training span and model (see
    :attr:`BacktestResult.folds`), with the series column ``panel.id_name``. For a given
    fitted model (``where.trains`` false), ``fitted_ends`` (one per kept series, in the
    panel's time dtype; null where unknown) is the ``train_end`` of every fold: the last time
    of the data it was fitted on (``train_start`` and ``train_rows`` stay null: unknown)."""
    n_kept, folds = len(where.kept), where.n_folds
    offsets = panel.offsets[where.kept][None, :]
    train_rows = (where.train_end - where.train_start + 1).ravel()
    has_span = pl.Series(train_rows > 0) if where.trains else pl.Series([False] * train_rows.size)
    id_name = panel.id_name
    frame = pl.DataFrame(
        {
            _FOLD: np.repeat(np.arange(folds), n_kept).astype(np.int32),
            id_name: panel.keys[id_name].gather(np.tile(where.kept, folds)),
            _CUTOFF: panel.time.gather((offsets + where.local_cut).ravel()),
            "train_start": panel.time.gather((offsets + where.train_start).ravel()),
            "train_end": panel.time.gather((offsets + np.maximum(where.train_end, 0)).ravel()),
            "train_rows": np.maximum(train_rows, 0).astype(np.int64),
            "model": np.repeat(np.arange(folds) // where.every, n_kept).astype(np.int32),
        }
    ).with_columns(  # no training span: a given fitted model, or too short a history
        pl.when(has_span).then(pl.col(c)).alias(c) for c in TRAIN_COLUMNS
    )
    if not where.trains and fitted_ends is not None:
        ends = fitted_ends.gather(np.tile(np.arange(n_kept), folds))
        frame = frame.with_columns(ends.cast(frame.schema["train_end"]).alias("train_end"))
    return frame if where.present is None else frame.filter(pl.Series(where.present.ravel()))


def forecasts_frame(
    panel: Panel,
    where: Folds,
    predicted: pl.DataFrame,
    *,
    horizon: int,
    time_col: str,
    id_col: str | None,
) -> pl.DataFrame:
    """One row per (fold, series, step): fold, cutoff, id, time, step, the forecasts, the
    interval bounds and quantile forecasts, and the actual values (see
    :attr:`BacktestResult.forecasts`). ``predicted`` holds the models' forecasts of every
    (fold, series) origin in this order, ``horizon`` rows each: the frames of ``predict(frame,
    cutoff=<pairs>)`` one below the other (``origin``, id, time, the targets and the interval
    and quantile columns), whose columns are taken as they are."""
    n_kept, nt, blocks = len(where.kept), panel.n_targets, where.blocks
    actual = panel.values[forecast_rows(panel, where, horizon), :nt]
    beyond = beyond_ends(panel, where, horizon)  # after the series' data: null, not scored
    found = IntervalColumns.find(predicted.columns, panel.targets)
    sources = {c for t in panel.targets for c in found.sources(t)} if found is not None else set()
    bounds = [c for c in predicted.columns if c in sources]  # predict's order: target by target

    def actual_of(j: int, t: str) -> pl.Series:
        values = pl.Series(actual_column(t), actual[:, j])
        return values if beyond is None else values.scatter(np.flatnonzero(beyond), None)

    return predicted.select(
        pl.Series(_FOLD, np.repeat(blocks // max(n_kept, 1), horizon).astype(np.int32)),
        pl.col("origin").alias(_CUTOFF),
        *([pl.col(id_col)] if id_col is not None else []),
        pl.col(time_col),
        pl.Series(_STEP, np.tile(np.arange(1, horizon + 1, dtype=np.int32), len(blocks))),
        *panel.targets,
        *bounds,  # each target's interval bounds (lo, hi per level), then its quantiles
        *(actual_of(j, t) for j, t in enumerate(panel.targets)),
    )


def _target_rows(panel: Panel, where: Folds, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``horizon`` panel rows after each forecast (fold, series) origin (``(blocks,
    horizon)``, unclipped) and the last row of each one's series (``(blocks, 1)``)."""
    starts = np.tile(panel.offsets[where.kept], where.n_folds)[where.blocks]
    origin_rows = starts + where.local_cut.ravel()[where.blocks]
    last = np.tile(panel.offsets[where.kept + 1] - 1, where.n_folds)[where.blocks]
    return origin_rows[:, None] + 1 + np.arange(horizon), last[:, None]


def forecast_rows(panel: Panel, where: Folds, horizon: int) -> np.ndarray:
    """The panel row of every forecast (fold, series, step), in the rows of
    :func:`forecasts_frame`: the ``horizon`` rows after each (fold, series) origin (a step
    after the end of its series, :func:`beyond_ends`: the series' last row)."""
    rows, last = _target_rows(panel, where, horizon)
    return np.minimum(rows, last).ravel()


def beyond_ends(panel: Panel, where: Folds, horizon: int) -> np.ndarray | None:
    """Which forecasts (fold, series, step) of :func:`forecasts_frame` are after the end of
    their series (calendar folds score a series that ends within them on the rows it has);
    None when none is."""
    rows, last = _target_rows(panel, where, horizon)
    beyond = (rows > last).ravel()
    return beyond if beyond.any() else None


def unscored_points(
    panel: Panel, where: Folds, horizon: int, cells: np.ndarray | None
) -> np.ndarray | None:
    """The forecast points (rows of :func:`forecasts_frame` by targets) whose actual value is
    one of the panel's ``cells`` that the ``missing`` policy made up (:func:`unscored_cells`;
    None: none): a step after the end of its series (:func:`beyond_ends`) has no value (null),
    not a made-up one."""
    if cells is None:
        return None
    points = cells[forecast_rows(panel, where, horizon)]
    beyond = beyond_ends(panel, where, horizon)
    if beyond is not None:
        points[beyond] = False
    return points


def unscored_cells(panel: Panel, missing: Any) -> np.ndarray | None:
    """The target cells of ``panel`` (read by :meth:`~forecaster.data.panel.Panel.exact_targets`)
    that a backtest does not score: those its frame holds no value for, which
    ``missing="ffill"`` or ``"interpolate"`` made up (boolean, rows by targets; None when
    there are none). ``missing="zero"`` says that an absent value is 0 (e.g. intermittent
    demand with rows only on days with sales): its zeros are the data, and are scored."""
    if panel.unobserved is None or missing == "zero":
        return None
    return panel.unobserved


def fold_model(estimator: Any, panel: Panel) -> Any:
    """An unfitted copy of ``estimator`` for a fold's fit, reading the frame's frequency as the
    backtest did: with ``freq="auto"`` the step found on the whole frame, not one inferred
    again from the fold's rows (which may look coarser, e.g. an early stretch logged every
    other day). It fits without checkpoints: a fresh fit replaces the checkpoints of the
    folder it is given, and ``checkpoint_dir`` holds those of the user's own fit."""
    model = clone_without_checkpoints(estimator)
    freq = model.get_params(deep=False).get("freq", "")
    if freq is None or (isinstance(freq, str) and freq.strip().lower() == "auto"):
        model.set_params(freq=str(panel.freq))
    return model


def training_rows(
    frame: pl.DataFrame, bounds: pl.DataFrame, *, time_col: str, id_col: str | None
) -> pl.DataFrame:
    """Rows of ``frame`` inside each series' training span [train_start, train_end] (series
    without a span in ``bounds`` have none)."""
    time = pl.col(time_col)
    bounds = bounds.filter(pl.col("train_rows") > 0)
    if id_col is None:
        return frame.filter(time.is_between(bounds["train_start"][0], bounds["train_end"][0]))
    start, end = temporary_names(frame.columns, "__start__", "__end__")
    spans = bounds.select(
        id_col,
        pl.col("train_start").alias(start),
        pl.col("train_end").alias(end),
    )
    return (
        frame.join(spans, on=id_col, how="inner", maintain_order="left")
        .filter(time.is_between(pl.col(start), pl.col(end)))
        .drop(start, end)
    )


def mase_scales(
    panel: Panel,
    kept: np.ndarray,
    local_cut: np.ndarray,
    m: int,
    unscored: np.ndarray | None = None,
) -> np.ndarray:
    """MASE denominators ``(folds * n_kept, n_targets)`` per (fold, series), fold-major as the
    forecasts' blocks: mean |y_t - y_{t-m}| over rows <= origin (computed by
    :func:`forecaster.evaluation.array_metrics.mase_scales`, as
    :func:`~forecaster.evaluation.scoring.evaluate` computes its scales); NaN for a block
    with at most ``m`` observed values up to its origin, which the pooled scores leave out
    (:func:`~forecaster.evaluation.intervals.scaled_mean`; the backtest warns). The cells
    ``unscored`` (:func:`unscored_cells`: made up by the ``missing`` policy) are not
    observed values: no difference with one of them counts, as ``evaluate`` leaves out the
    null values of its ``insample`` frame."""
    folds, n_kept = local_cut.shape
    nt = panel.n_targets
    if panel.interpolated is None or unscored is not None:  # (interpolated: unscored too)
        values = panel.values[:, :nt]
        if unscored is not None:
            values = np.where(unscored, np.nan, values)
        scales = array_mase_scales(values, panel.offsets, m, ends=local_cut, series=kept)
        return scales.reshape(folds * n_kept, nt)
    out = np.empty((folds, n_kept, nt))
    for fold, cut in enumerate(local_cut):  # each fold's history as known at its origins
        ends = panel.offsets[:-1] - 1  # series not kept: none of their rows
        ends[kept] += cut + 1
        known = panel.known_at(ends).values[:, :nt]
        out[fold] = array_mase_scales(known, panel.offsets, m, ends=cut[None], series=kept)[0]
    return out.reshape(folds * n_kept, nt)


def fold_points(
    forecasts: pl.DataFrame,
    keys: Sequence[str],
    targets: Sequence[str],
    id_col: str | None,
    id_name: str,
    columns: PointColumns,
    scales: np.ndarray,
    error_scales: tuple[pl.DataFrame, list[str]] | None,
    intervals: IntervalColumns | None = None,
    block: str | None = None,
    unscored: np.ndarray | None = None,
) -> pl.DataFrame:
    """One row per (forecast row, target) of a backtest's ``forecasts`` (target after target)
    with the columns ``keys`` and those that
    :func:`forecaster.evaluation.metrics.summarize_points` reads (named by ``columns``:
    forecast, actual, MASE scale, error scale; and the interval columns). ``scales`` are the
    MASE denominators of the forecasts' (fold, series) blocks of ``horizon`` rows
    (:func:`mase_scales`), repeated over each block's rows. ``block`` (optional) names an
    added column numbering the (target, fold, series) blocks 0, 1, ... (sorted). Without an
    id column, the series column ``id_name`` is added. ``unscored`` (rows of ``forecasts``
    by targets, optional) marks the points whose actual value the ``missing`` policy made up
    (:func:`unscored_cells`): their actual value is null, so they are not scored."""
    if id_col is None:
        forecasts = forecasts.with_columns(pl.lit(0, pl.UInt8).alias(id_name))
    horizon = forecasts.height // max(scales.shape[0], 1)
    carried = list(dict.fromkeys([*keys, _FOLD, id_name]))

    def actual(j: int, t: str) -> pl.Expr:
        value = pl.col(actual_column(t)).cast(pl.Float64)
        if unscored is None or not unscored[:, j].any():
            return value
        return pl.when(pl.lit(pl.Series(~unscored[:, j]))).then(value)

    points = pl.concat(
        [
            forecasts.select(
                *carried,
                pl.lit(t).alias(TARGET_COLUMN),
                pl.col(t).cast(pl.Float64).alias(columns.forecast),
                actual(j, t).alias(columns.actual),
                *(intervals.renamed(t) if intervals is not None else []),
            ).with_columns(pl.Series(columns.mase_scale, np.repeat(scales[:, j], horizon)))
            for j, t in enumerate(targets)
        ]
    )
    if block is not None:
        numbers = np.arange(points.height, dtype=np.int64) // max(horizon, 1)
        points = points.with_columns(pl.Series(block, numbers))
    if error_scales is not None:
        divisors, on = error_scales
        points = points.join(divisors, on=on, how="left", maintain_order="left")
    return points

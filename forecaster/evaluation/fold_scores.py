"""The scores of a rolling-origin backtest's forecasts (see
:func:`forecaster.evaluation.backtest.backtest`): by fold and series, by horizon step and over
everything, the model's and the naive baselines' on the same points.

Every score pools the points of its group with
:func:`~forecaster.evaluation.metrics.summarize_points`; a backtest's three score frames pool
the points scored once (:func:`~forecaster.evaluation.frames.summarize_key_sets`). The
forecasts come in blocks of ``horizon`` rows, one per (fold, series), fold-major; the points
frames keep that order (target after target), so the scores by fold and series are grouped
on one sorted integer column (the block's number) and their key columns (``fold``,
``cutoff``, id, ``target``) are gathered from the folds frame afterwards: no join, and no
hashing of the id and time keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster.data.panel import Panel
from forecaster.evaluation.fold_baselines import baseline_forecasts
from forecaster.evaluation.folds import Folds, fold_points, mase_scales, unscored_points
from forecaster.evaluation.frames import summarize_key_sets, warn_infinite_scores
from forecaster.evaluation.intervals import INTERVAL_COUNT, IntervalColumns, is_interval_metric
from forecaster.evaluation.metrics import (
    TARGET_COLUMN,
    PointColumns,
    error_scale_frame,
)
from forecaster.evaluation.pooling import skill_split, with_skill
from forecaster.evaluation.score_names import BASELINES
from forecaster.exceptions import ForecasterWarning, UnscoredPointsWarning, warn_at_caller

__all__ = [
    "FoldScores",
    "baseline_points",
    "baseline_scores",
    "check_error_scale",
    "pooled_scores",
    "pooled_with_skill",
    "score_folds",
    "skill_names",
]


@dataclass(frozen=True)
class FoldScores:
    """The score frames of a backtest (see :class:`~forecaster.evaluation.backtest.BacktestResult`)
    and what scoring its forecasts again takes (``columns``, ``scales``, ``error_scales``,
    ``intervals``: the arguments of :func:`~forecaster.evaluation.folds.fold_points`)."""

    metrics: pl.DataFrame
    by_step: pl.DataFrame
    aggregate: pl.DataFrame
    baselines: pl.DataFrame
    columns: PointColumns
    scales: np.ndarray
    error_scales: tuple[pl.DataFrame, list[str]] | None
    intervals: IntervalColumns | None
    baseline_values: dict[str, np.ndarray]  # the baselines' forecasts, in the forecasts' rows
    unscored: np.ndarray | None  # (forecast rows, targets): actual values made up, not scored


def score_folds(
    forecasts: pl.DataFrame,
    panel: Panel,
    where: Folds,
    folds_frame: pl.DataFrame,
    *,
    names: list[str],
    m: int,
    scale: Any,
    id_col: str | None,
    unscored: np.ndarray | None = None,
) -> FoldScores:
    """Score ``forecasts`` (:func:`~forecaster.evaluation.folds.forecasts_frame`) with the
    metrics ``names``, MASE scales from each fold's history (seasonal period ``m``) and the
    ``scale`` divisors, beside the naive (and, with ``m > 1``, seasonal-naive) baselines.
    The cells ``unscored`` of the panel (:func:`~forecaster.evaluation.folds.unscored_cells`:
    values the ``missing`` policy made up) are neither scored nor in the MASE scales."""
    id_name = panel.id_name
    columns = PointColumns.avoiding([*forecasts.columns, id_name, TARGET_COLUMN])
    avoid = [*forecasts.columns, id_name, TARGET_COLUMN, *columns]
    intervals = IntervalColumns.find(forecasts.columns, panel.targets, avoid=avoid)
    made_up = unscored
    temporary = [*intervals.lo, *intervals.hi, *intervals.q] if intervals is not None else []
    (block,) = temporary_names([*avoid, *temporary], "__block__")
    scales = mase_scales(panel, where.kept, where.local_cut, m, unscored)[where.blocks]
    if "mase" in names or intervals is not None:  # the scores scaled by it
        _warn_undefined(panel, where, scales, m)
    error_scales = _error_scales(scale, panel, where, id_col is not None, columns.error_scale)
    horizon = forecasts.height // max(len(scales), 1)
    unscored = unscored_points(panel, where, horizon, unscored)  # the forecasts' points
    if unscored is not None:
        _warn_unscored(unscored, horizon)
    by_series = ["fold", "cutoff"] + ([id_col] if id_col is not None else [])
    targets = panel.targets
    scored = ([*by_series, "step"], targets, id_col, id_name, columns, scales, error_scales)
    points = fold_points(forecasts, *scored, intervals, block=block, unscored=unscored)
    baselines = baseline_forecasts(panel, where, horizon, m, intervals, made_up)
    base_points = baseline_points(points, baselines, columns, intervals)
    compared = skill_split(skill_names(names, intervals))
    keys = series_keys(folds_frame, id_col, id_name, targets)

    def named(scores: pl.DataFrame) -> pl.DataFrame:  # the block's keys for its number
        return pl.concat([keys[scores[block]], scores.drop(block)], how="horizontal")

    key_sets = [[block], ["step", TARGET_COLUMN], [TARGET_COLUMN]]  # the points scored once
    pooled = pooled_scores(points, base_points, key_sets, names, columns, intervals)
    (by_block, theirs, ours), *summaries = pooled
    by_step, aggregate = (
        with_skill(frame, their, keys=by, **compared, ours=mine)
        for (frame, their, mine), by in zip(summaries, key_sets[1:], strict=True)
    )
    shown = {  # every block the model scored, NaN where the baseline has no forecast
        name: _every_block(frame, by_block, block) if name in ours else frame
        for name, frame in theirs.items()
    }
    metrics = named(with_skill(by_block, theirs, keys=[block], **compared, ours=ours))
    history = "values up to the origin"
    warn_infinite_scores(
        metrics, id_name, id_col is not None, m, baselines=BASELINES, history=history
    )
    return FoldScores(
        metrics=metrics,
        by_step=by_step,
        aggregate=aggregate,
        baselines=pl.concat(
            named(frame).select(pl.lit(name).alias("baseline"), pl.all())
            for name, frame in shown.items()
        ),
        columns=columns,
        scales=scales,
        error_scales=error_scales,
        intervals=intervals,
        baseline_values=baselines,
        unscored=unscored,
    )


def baseline_points(
    points: pl.DataFrame,
    baselines: Mapping[str, np.ndarray],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
) -> dict[str, pl.DataFrame]:
    """The points of every baseline's forecasts: ``points`` (the model's,
    :func:`~forecaster.evaluation.folds.fold_points` of the forecasts, with ``intervals``)
    with the baseline's forecast in ``columns.forecast`` and its interval bounds and quantiles
    in those of ``intervals``, as ``fold_points`` gives them for forecasts holding the
    baseline's values. ``baselines`` maps a name to an array ``(rows of forecasts, n_targets,
    channels)`` (:func:`~forecaster.evaluation.fold_baselines.baseline_forecasts`: the point
    forecast, then the bounds and quantiles), whose columns, target after target, are the
    points' rows."""
    names = [columns.forecast, *(intervals.temporary() if intervals is not None else [])]
    return {
        name: points.with_columns(
            pl.Series(column, values[:, :, c].T.ravel()) for c, column in enumerate(names)
        )
        for name, values in baselines.items()
    }


def skill_names(names: Sequence[str], intervals: IntervalColumns | None) -> list[str]:
    """The scores that a backtest of the point metrics ``names`` and ``intervals`` shows
    beside its baselines' (:func:`~forecaster.evaluation.pooling.with_skill`): the point
    metrics, then the interval and quantile scores."""
    point = [n for n in names if not is_interval_metric(n)]
    return point + (intervals.score_names(scaled=True) if intervals is not None else [])


def _every_block(theirs: pl.DataFrame, by_block: pl.DataFrame, block: str) -> pl.DataFrame:
    """A baseline's scores by block ``theirs`` (over the blocks it forecast) with a row for
    every block of the model's ``by_block``: its ``n`` and NaN scores where the baseline has
    no forecast."""
    counts = [c for c in theirs.columns if c == INTERVAL_COUNT]  # 0 where no forecast
    scores = [c for c in theirs.columns if c not in (block, "n", *counts)]
    joined = by_block.select(block, "n").join(
        theirs.drop("n"), on=block, how="left", maintain_order="left"
    )
    return joined.with_columns(pl.col(counts).fill_null(0), pl.col(scores).fill_null(float("nan")))


def baseline_scores(
    points: pl.DataFrame,
    base_points: Mapping[str, pl.DataFrame],
    keys: list[str],
    names: list[str],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """The ``baselines`` and ``ours`` of :func:`~forecaster.evaluation.pooling.with_skill`:
    each baseline's metrics ``names`` per ``keys`` over the points where it has a forecast
    (its forecast is not NaN: the seasonal naive has none from an origin with fewer than
    ``m`` values) and, for a baseline that lacks some, the model's over the same points (the
    numerators of its skill ratios); with ``intervals``, the interval and quantile scores
    too. ``base_points`` (:func:`baseline_points`) hold the points of ``points`` in the same
    rows."""
    ((theirs, ours),) = _apart_scores(points, base_points, [keys], names, columns, intervals)
    return theirs, ours


def _apart_scores(
    points: pl.DataFrame,
    base_points: Mapping[str, pl.DataFrame],
    key_sets: list[list[str]],
    names: list[str],
    columns: PointColumns,
    intervals: IntervalColumns | None,
) -> list[tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]]:
    """:func:`baseline_scores` by each key set of ``key_sets``, each baseline's points (and
    the model's on them) scored once for all of them
    (:func:`~forecaster.evaluation.frames.summarize_key_sets`). With ``intervals``, its
    interval and quantile scores are over the points where it has intervals (an origin too
    short for them has none, its point forecast all the same), counted in
    :data:`~forecaster.evaluation.intervals.INTERVAL_COUNT` (after ``n``)."""
    out: list[tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]]
    out = [({}, {}) for _ in key_sets]
    for name, frame in base_points.items():
        forecast = ~frame[columns.forecast].is_nan()
        bounded = None if intervals is None else ~frame[intervals.temporary()[0]].is_nan()
        parts = (points, frame, key_sets, columns)
        if bounded is None or bounded.equals(forecast):
            theirs, ours = _scored_where(parts, forecast, names, intervals)
            if intervals is not None:
                theirs = [_with_interval_count(f, f["n"], None) for f in theirs]
        else:  # intervals at fewer points than point forecasts; the model's on the same
            theirs, ours = _scored_where(parts, forecast, names, None, model=True)
            bands, mine = _scored_where(parts, bounded, [], intervals, model=True)
            theirs = [
                _with_interval_count(f, None, (b, k))
                for f, b, k in zip(theirs, bands, key_sets, strict=True)
            ]
            ours = [
                f.join(m.drop("n"), on=k, how="left", maintain_order="left", nulls_equal=True)
                for f, m, k in zip(ours or [], mine or [], key_sets, strict=True)
            ]
        for side, frames in ((0, theirs), (1, ours)):
            for scores, target in zip(frames, out, strict=True) if frames is not None else ():
                target[side][name] = scores
    return out


def _scored_where(
    parts: tuple[pl.DataFrame, pl.DataFrame, list[list[str]], PointColumns],
    rows: pl.Series,
    names: list[str],
    intervals: IntervalColumns | None,
    *,
    model: bool = False,
) -> tuple[list[pl.DataFrame], list[pl.DataFrame] | None]:
    """A baseline's scores (``names`` and ``intervals``') over its points ``rows`` by each
    key set, and the model's over the same points (None where ``rows`` are all of them,
    unless ``model``)."""
    points, frame, key_sets, columns = parts
    if rows.all() and not model:
        pooled = summarize_key_sets(frame, key_sets, names, columns, intervals)
        return [f for f, _ in pooled], None
    theirs, ours = (
        [f for f, _ in summarize_key_sets(p.filter(rows), key_sets, names, columns, intervals)]
        for p in (frame, points)
    )
    return theirs, ours


def _with_interval_count(
    scores: pl.DataFrame, count: pl.Series | None, bands: tuple[pl.DataFrame, list[str]] | None
) -> pl.DataFrame:
    """A baseline's ``scores`` with :data:`~forecaster.evaluation.intervals.INTERVAL_COUNT`
    after ``n``: ``count``, or from ``bands`` (its interval scores by the keys, over fewer
    points, joined: a group without any has 0 and NaN scores)."""
    if bands is not None:
        frame, keys = bands
        joined = frame.rename({"n": INTERVAL_COUNT})
        scores = scores.join(joined, on=keys, how="left", maintain_order="left", nulls_equal=True)
        added = [c for c in joined.columns if c not in keys and c != INTERVAL_COUNT]
        scores = scores.with_columns(
            pl.col(INTERVAL_COUNT).fill_null(0), pl.col(added).fill_null(float("nan"))
        )
    else:
        scores = scores.with_columns(pl.Series(INTERVAL_COUNT, count))
    order = [c for c in scores.columns if c != INTERVAL_COUNT]
    at = order.index("n") + 1
    return scores.select(*order[:at], INTERVAL_COUNT, *order[at:])


def pooled_scores(
    points: pl.DataFrame,
    base_points: Mapping[str, pl.DataFrame],
    key_sets: list[list[str]],
    names: list[str],
    columns: PointColumns,
    intervals: IntervalColumns | None,
) -> list[tuple[pl.DataFrame, dict[str, pl.DataFrame], dict[str, pl.DataFrame]]]:
    """For each key set of ``key_sets``: the metrics ``names`` of ``points`` pooled per its
    keys (:func:`~forecaster.evaluation.metrics.summarize_points`, with the count of scaled
    points), and the ``baselines`` and ``ours`` of
    :func:`~forecaster.evaluation.pooling.with_skill` from ``base_points``
    (:func:`baseline_scores`). A baseline scored on the model's very points (no null
    forecast in either, no NaN one of the baseline) is pooled in the model's own group-bys
    (:func:`~forecaster.evaluation.frames.summarize_key_sets`, each point scored once for
    all the key sets): the same scores, in one pass. With ``intervals`` every baseline is
    pooled apart, with its interval and quantile scores."""
    point_names = [n for n in names if not is_interval_metric(n)]
    together = []  # with interval scores (pooled for the model's alone), every baseline apart
    if point_names == names and intervals is None:
        together = [n for n, f in base_points.items() if _same_points(points, f, columns.forecast)]
    hidden = temporary_names(points.columns, *(f"__{name}__" for name in together))
    others = dict(zip(together, hidden, strict=True))
    added = (base_points[n][columns.forecast].alias(others[n]) for n in together)
    pooled_sets = summarize_key_sets(
        points.with_columns(added), key_sets, names, columns, intervals,
        count_scaled=True, others=others,
    )  # fmt: skip
    apart = {name: frame for name, frame in base_points.items() if name not in others}
    out = []
    scored_apart = _apart_scores(points, apart, key_sets, point_names, columns, intervals)
    for (ours, pooled), (theirs, mine) in zip(pooled_sets, scored_apart, strict=True):
        out.append((ours, {n: pooled[n] if n in pooled else theirs[n] for n in base_points}, mine))
    return out


def pooled_with_skill(
    points: pl.DataFrame,
    base_points: Mapping[str, pl.DataFrame],
    keys: list[str],
    names: list[str],
    columns: PointColumns,
    intervals: IntervalColumns | None,
) -> pl.DataFrame:
    """The metrics ``names`` of ``points`` pooled per ``keys``
    (:func:`~forecaster.evaluation.metrics.summarize_points`), with every baseline's count of
    points ``n_<baseline>`` and, after each point metric ``<m>``, its ``<m>_<baseline>`` and
    skill ratio ``<m>_skill_<baseline>`` (:func:`~forecaster.evaluation.pooling.with_skill`)
    from ``base_points`` (:func:`baseline_points`), both over the points where the baseline
    has a forecast (:func:`pooled_scores`), the interval and quantile scores too
    (:func:`skill_names`)."""
    ((ours, theirs, mine),) = pooled_scores(points, base_points, [keys], names, columns, intervals)
    compared = skill_split(skill_names(names, intervals))
    return with_skill(ours, theirs, keys=keys, **compared, ours=mine)


def _same_points(points: pl.DataFrame, frame: pl.DataFrame, forecast: str) -> bool:
    """Whether the baseline's points ``frame`` (:func:`baseline_points`, the rows of
    ``points``) are scored where the model's ``points`` are: no null forecast in either, and
    no NaN one (no forecast) of the baseline's."""
    values = frame[forecast]
    return not (points[forecast].null_count() or values.null_count() or values.is_nan().any())


def series_keys(
    folds_frame: pl.DataFrame, id_col: str | None, id_name: str, targets: Sequence[str]
) -> pl.DataFrame:
    """The keys ``fold``, ``cutoff``, id (when the estimator has one) and ``target`` of every
    (target, fold, series) block of the points frames, in block order (the folds frame's
    rows are the (fold, series) blocks, fold-major)."""
    keys = ["fold", "cutoff"] + ([id_name] if id_col is not None else [])
    pairs = folds_frame.select(keys)
    if id_col is not None:
        pairs = pairs.rename({id_name: id_col})
    return pl.concat([pairs.with_columns(pl.lit(t).alias(TARGET_COLUMN)) for t in targets])


def check_error_scale(scale: Any, panel: Panel, where: Folds, *, has_id: bool) -> None:
    """Refuse a ``scale`` that :func:`score_folds` would refuse, before any model is trained
    (:func:`~forecaster.evaluation.metrics.error_scale_frame`'s checks)."""
    _error_scales(scale, panel, where, has_id, "scale")  # the column's name: unused here


def _error_scales(
    scale: Any, panel: Panel, where: Folds, has_id: bool, column: str
) -> tuple[pl.DataFrame, list[str]] | None:
    """The ``scale`` divisors of the errors (see
    :func:`~forecaster.evaluation.metrics.error_scale_frame`) with the panel's id dtype, and
    the columns they are matched on; None without."""
    if scale is None:
        return None
    id_name = panel.id_name
    ids = panel.keys[id_name].gather(where.kept)
    divisors, on = error_scale_frame(scale, id_name, panel.targets, has_id, ids, column=column)
    if id_name in on:
        divisors = divisors.with_columns(pl.col(id_name).cast(panel.keys[id_name].dtype))
    return divisors, on


def _warn_unscored(unscored: np.ndarray, horizon: int) -> None:
    """Warn that the forecast points ``unscored`` (rows of the forecasts by targets) are not
    scored: the ``missing`` policy made up their actual values."""
    count = int(unscored.sum())
    if not count:
        return
    empty = int(unscored.reshape(-1, horizon, unscored.shape[1]).all(axis=1).sum())
    lost = (
        f" {empty} (fold, series, target) forecasts have none left: no row in metrics."
        if empty
        else ""
    )
    warn_at_caller(
        f"{count} of the {unscored.size} forecast points (fold, series, step, target) are at "
        "steps the frame holds no value for, which the missing= policy filled: they are not "
        f"scored (n counts the observed points; their <target>_actual holds the filled "
        f"value), nor are filled values in the MASE scales.{lost} Scores on made-up values "
        "would reward forecasting the fill.",
        UnscoredPointsWarning,
    )


def _warn_undefined(panel: Panel, where: Folds, scales: np.ndarray, m: int) -> None:
    """Warn about (fold, series) blocks whose MASE scale is undefined (NaN: at most ``m``
    observed values up to the origin, so no lag-``m`` difference): their MASE, MSIS and sCRPS
    are NaN, and the pooled ones are over the other blocks only
    (:func:`~forecaster.evaluation.intervals.scaled_mean`)."""
    undefined = np.isnan(scales).any(axis=1)
    if not undefined.any():
        return
    fold, series = np.divmod(where.blocks[undefined], len(where.kept))
    ids = panel.keys[panel.id_name].gather(where.kept[series[:10]]).to_list()  # those shown
    blocks = [
        f"(fold {f}, {ids[i]!r})" if panel.id_col else f"fold {f}"
        for i, f in enumerate(fold[:10].tolist())
    ]
    warn_at_caller(
        f"MASE's scale is undefined for {int(undefined.sum())} of the {undefined.size} "
        f"(fold, series) forecasts: {', '.join(blocks)}"
        + (", ..." if fold.size > 10 else "")
        + f". Their history up to the origin has at most m={m} observed values, so no lag-{m} "
        "difference. Their mase (and msis, scrps) in result.metrics are NaN, and the pooled "
        "scores (by_step, aggregate, the baselines' mase and the skill ratios) are over the "
        "other forecasts only. Use a smaller m or fewer folds (or a larger step) to score "
        "every forecast.",
        ForecasterWarning,
    )

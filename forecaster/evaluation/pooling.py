"""Pooling of per-series scores: :func:`aggregate` pools them over the whole set (or over
groups), :func:`owa` compares them with Naive2's scores as M4 does, :func:`with_skill` sets
baselines' scores and skill ratios beside a model's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from forecaster._columns import temporary_names
from forecaster.data.frames import collect_frame
from forecaster.evaluation.array_metrics import METRICS
from forecaster.evaluation.frames import TARGET_COLUMN, align_keys, check_by, checked_frame
from forecaster.evaluation.intervals import (
    INTERVAL_COUNT,
    SCALED_COUNT,
    has_skill_ratio,
    is_interval_metric,
    is_scaled_metric,
)
from forecaster.evaluation.score_names import (
    BASELINE_COUNTS,
    BASELINES,
    COUNTS,
    INTERVAL_COUNTS,
)
from forecaster.exceptions import DataValidationError

__all__ = [
    "MODEL_COLUMNS",
    "aggregate",
    "owa",
    "skill_split",
    "with_skill",
]

_MEAN_METRICS = ("mae", "mse", "mape", "smape", "mase")

MODEL_COLUMNS = ("model", "baseline")
"""Columns that name the model a score row belongs to (``evaluate(..., by="model")``, a
backtest's ``baselines``): :func:`aggregate` pools several models only per model."""


def aggregate(scores: pl.DataFrame, *, by: Sequence[str] | str | None = None) -> pl.DataFrame:
    """Pool per-series scores (from :func:`evaluate`) over the whole set or per group.

    Each metric becomes the metric of all points together: MAE, MSE, MAPE, sMAPE and MASE are
    averages weighted by ``n``, RMSE the root of the pooled MSE; so are the interval and
    quantile scores (``coverage_80``, ``width_80``, ``winkler_80``, ``msis_80``, ``pinball``,
    ``scrps``: means over points, see :mod:`forecaster.evaluation.intervals`). The rows are
    grouped by ``target`` (when present) and ``by``. Every row needs ``n >= 1`` (a whole
    number) and a value of every metric column: a null score is refused (pooled, it would count
    as 0 with its full weight); a NaN score makes the pooled value NaN, except for the scores
    divided by the MASE scale (``mase``, ``msis_80``, ``scrps``): a row whose scale is
    undefined (NaN, e.g. a backtest block with at most ``m`` values before its origin) is left
    out of their mean, as a backtest's own ``aggregate`` does (NaN only when every row's is).
    Those are weighted by the row's points whose scale is defined: the column ``n_scaled``
    (:data:`~forecaster.evaluation.intervals.SCALED_COUNT`) that a backtest's score frames
    carry (a row of ``BacktestResult.score("fold")`` pools series of which some may have no
    scale, so its ``mase`` is a mean over fewer than ``n`` points), else ``n``, right for rows
    whose scale covers all their points or none (:func:`evaluate`'s, which has no such
    column). Pooling pooled rows thus equals pooling their points; the result keeps
    ``n_scaled`` (summed) when the input has it.

    A backtest's baseline scores beside a metric (``mae_naive``, ``mae_snaive``, or beside
    an interval score ``winkler_80_naive``: its ``metrics``) are pooled over the rows where
    the baseline has a forecast (the seasonal naive has none from an origin with fewer than
    ``m`` values): those whose ``n_<baseline>``
    (:data:`~forecaster.evaluation.score_names.BASELINE_COUNTS`) is not 0, or without that
    column those where some score of the baseline is not NaN. Their skill
    ratios (``mae_skill_naive``) are recomputed from the pooled scores, the model's pooled
    over the same rows, so that both compare the same points; ``n_<baseline>`` counts them
    (``n`` minus the points left out), and a group without any has NaN baseline scores and
    skill ratios. A row of a frame pooled by other
    keys (``BacktestResult.score("fold")``) whose baseline forecast only part of its points
    (``0 < n_<baseline> < n``) is refused: the model's score on that part is not in it.

    Scores of several models are never pooled into one number: a frame whose ``model`` or
    ``baseline`` column (:data:`MODEL_COLUMNS`) holds more than one name (text; the refit
    numbers of a backtest's ``folds`` are one estimator's) is refused unless that column is
    in ``by`` (e.g. ``aggregate(scores, by="model")``, one row per model).

    Parameters
    ----------
    scores : polars.DataFrame
        With the column ``n`` and metric columns, all numeric (checked like every frame of
        this module).
    by : str or sequence of str, optional
        Columns to keep (e.g. ``"fold"``, ``"model"``); default: pool everything (per
        target).

    Raises
    ------
    DataValidationError
        For an empty frame, rows that cannot be pooled (``n`` not a count >= 1, a null
        score, an ``n_<baseline>`` other than 0 or ``n``, an ``n_scaled`` that is not a count
        from 0 to ``n``, or 0 beside a scaled score that is not NaN), or several models
        pooled together (see above).

    Examples
    --------
    >>> import polars as pl
    >>> scores = pl.DataFrame({"id": ["a", "b"], "n": [1, 3], "mae": [4.0, 0.0],
    ...                        "rmse": [4.0, 0.0]})
    >>> aggregate(scores).rows()
    [(4, 1.0, 2.0)]
    """
    frame = collect_frame(scores, what="scores frame")
    scored = [*METRICS, *(c for c in frame.columns if is_interval_metric(c))]
    counts = {c: "the count of points a baseline forecast" for c in BASELINE_COUNTS}
    counts[SCALED_COUNT] = "the count of points whose MASE scale is defined"
    counts.update((c, "the count of points a baseline's interval scores are over")
                  for c in INTERVAL_COUNTS)  # fmt: skip
    reserved = {"n": "the count of points", **counts, **{m: "a metric" for m in scored}}
    keys = check_by(by, reserved)
    if TARGET_COLUMN in frame.columns and TARGET_COLUMN not in keys:
        keys.append(TARGET_COLUMN)
    present = [m for m in scored if m in frame.columns]
    numbers = ["n", *(c for c in counts if c in frame.columns), *present]
    scores = checked_frame(frame, "scores", keys=keys, numbers=numbers, unique=False)
    if scores.height == 0:  # pooled nothing: n=0 and NaN scores, as if scores existed
        raise DataValidationError(
            "aggregate got an empty scores frame: there is nothing to pool. Pass the scores of "
            "evaluate (or a backtest's metrics) with at least one row."
        )
    _check_scores(scores, present, "scores")
    _check_scaled_count(scores)
    _check_interval_counts(scores)
    _check_one_model(scores, keys)
    pooled = _pooled(scores, keys, present)
    theirs, ours = _baseline_scores(scores, keys, present)
    if not theirs:
        return pooled
    return with_skill(pooled, theirs, keys=keys, **skill_split(present), ours=ours)


def _pooled(
    scores: pl.DataFrame,
    keys: Sequence[str],
    present: Sequence[str],
    rows: pl.Expr | None = None,
) -> pl.DataFrame:
    """The metrics ``present`` pooled per ``keys`` (rules: :func:`aggregate`), over the rows
    ``rows`` only when given (a group without any: ``n`` 0 and NaN metrics)."""

    def kept(expr: pl.Expr) -> pl.Expr:
        return expr if rows is None else expr.filter(rows)

    weight = pl.col("n").cast(pl.Float64)
    total = kept(weight).sum()
    exprs = [kept(pl.col("n")).sum().cast(pl.Int64).alias("n")]
    counted = SCALED_COUNT in scores.columns
    if counted:
        exprs.append(kept(pl.col(SCALED_COUNT)).sum().cast(pl.Int64).alias(SCALED_COUNT))
    scaled = pl.col(SCALED_COUNT).cast(pl.Float64) if counted else weight
    banded = INTERVAL_COUNT in scores.columns  # the weight of the interval scores (0: none)
    band = pl.col(INTERVAL_COUNT).cast(pl.Float64)
    if banded:
        exprs.append(kept(pl.col(INTERVAL_COUNT)).sum().cast(pl.Int64).alias(INTERVAL_COUNT))
    for name in present:
        value = pl.col(name).cast(pl.Float64)
        if is_scaled_metric(name):  # over the points whose scale is defined (none: 0/0, NaN)
            defined = value.is_not_nan() if rows is None else value.is_not_nan() & rows
            pooled = (value * scaled).filter(defined).sum() / scaled.filter(defined).sum()
            exprs.append(pooled.alias(name))
        elif banded and is_interval_metric(name):  # over the points with intervals
            inside = band > 0 if rows is None else (band > 0) & rows
            exprs.append(
                ((value * band).filter(inside).sum() / band.filter(inside).sum()).alias(name)
            )
        elif name in _MEAN_METRICS or is_interval_metric(name):
            exprs.append((kept(value * weight).sum() / total).alias(name))
        else:  # rmse
            exprs.append((kept(value**2 * weight).sum() / total).sqrt().alias(name))
    if keys:
        return scores.group_by(keys, maintain_order=True).agg(exprs)
    return scores.select(exprs)


def _baseline_scores(
    scores: pl.DataFrame, keys: Sequence[str], present: Sequence[str]
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Each baseline's scores ``<m>_<baseline>`` in ``scores`` (a backtest's ``metrics``),
    pooled per ``keys`` as the model's over the rows where it has a forecast and named
    ``<m>`` (``n``: their points), and where it lacks some, the model's scores pooled over
    the same rows: the ``baselines`` and ``ours`` of :func:`with_skill`, whose skill ratios
    are recomputed from the pooled values, never averaged."""
    theirs, ours = {}, {}
    for base in BASELINES:
        metrics = [m for m in present if f"{m}_{base}" in scores.columns]
        if not metrics:
            continue
        scaled = [SCALED_COUNT] if SCALED_COUNT in scores.columns else []
        count = f"{INTERVAL_COUNT}_{base}"  # its interval scores' points (a backtest's)
        banded = [pl.col(count).alias(INTERVAL_COUNT)] if count in scores.columns else []
        renamed = scores.select(
            *keys, "n", *scaled, *banded, *(pl.col(f"{m}_{base}").alias(m) for m in metrics)
        )
        _check_scores(renamed, metrics, f"{base} baseline's scores")
        forecast = _forecast_rows(scores, base, metrics)
        every = not banded or bool(scores.select((pl.col(count) == pl.col("n")).all()).item())
        if bool(forecast.all()) and every:
            theirs[base] = _pooled(renamed, keys, metrics)
            continue
        (flag,) = temporary_names(scores.columns, "__forecast__")
        rows = pl.col(flag)
        theirs[base] = _pooled(renamed.with_columns(forecast.alias(flag)), keys, metrics, rows)
        mine = scores.with_columns(forecast.alias(flag), *banded)  # on the same points
        ours[base] = _pooled(mine, keys, metrics, rows)
    return theirs, ours


def _forecast_rows(scores: pl.DataFrame, base: str, metrics: Sequence[str]) -> pl.Series:
    """The rows of ``scores`` where baseline ``base`` has a forecast: ``n_<base>`` not 0
    (refused unless 0 or ``n``), or without that column some of its scores not NaN."""
    count = f"n_{base}"
    if count not in scores.columns:
        scored = [pl.col(f"{m}_{base}").cast(pl.Float64).is_not_nan() for m in metrics]
        return scores.select(pl.any_horizontal(scored)).to_series()
    forecast = pl.col(count)
    wrong = scores.filter(forecast.is_null() | ((forecast != 0) & (forecast != pl.col("n"))))
    if wrong.height:
        raise DataValidationError(
            f"The scores frame's {count!r} must be 0 or n in every row (the {base} baseline "
            f"forecast all of the row's points or none, as in a backtest's metrics), but "
            f"{wrong.height} rows hold another count, e.g. {wrong.row(0, named=True)}. The "
            f"model's score on part of a row's points is not in the frame, so the skill "
            f"ratios against {base} cannot be pooled from it: pool the forecast points "
            "instead (BacktestResult.score(by=...)), or pass the backtest's metrics (one row "
            "per fold and series)."
        )
    return scores.select(forecast > 0).to_series()


def _check_scaled_count(scores: pl.DataFrame) -> None:
    """Refuse a :data:`~forecaster.evaluation.intervals.SCALED_COUNT` column (the points of a
    row whose MASE scale is defined, the weight of its scaled scores) that is not a whole
    number from 0 to ``n``, or that is 0 where a scaled score is not NaN."""
    if SCALED_COUNT not in scores.columns:
        return
    count = pl.col(SCALED_COUNT).cast(pl.Float64)
    bad = count.is_null() | count.is_nan() | (count < 0) | (count > pl.col("n"))
    bad = bad | (count != count.floor())
    for name in (c for c in scores.columns if is_scaled_metric(c)):
        bad = bad | ((count == 0) & pl.col(name).cast(pl.Float64).is_not_nan())
    wrong = scores.filter(bad)
    if wrong.height:
        raise DataValidationError(
            f"The scores frame's {SCALED_COUNT!r} must count the points of each row whose MASE "
            f"scale is defined (a whole number from 0 to n; 0 only where mase, msis and scrps "
            f"are NaN), but {wrong.height} rows do not, e.g. {wrong.row(0, named=True)}. It is "
            "the weight of the scaled scores when pooled: pass the frame as the backtest wrote "
            f"it, or drop {SCALED_COUNT!r} for rows whose scale covers all n points or none "
            "(as evaluate's)."
        )


def _check_interval_counts(scores: pl.DataFrame) -> None:
    """Refuse an :data:`~forecaster.evaluation.intervals.INTERVAL_COUNT` that is not a whole
    number from 0 to ``n``, or an ``n_interval_<baseline>`` other than 0 or ``n`` (0 where
    ``n_<baseline>`` is): the model's interval scores on part of a row are not in it."""
    checks = []
    if INTERVAL_COUNT in scores.columns:
        count = pl.col(INTERVAL_COUNT).cast(pl.Float64)
        bad = count.is_null() | count.is_nan() | (count < 0) | (count > pl.col("n"))
        checks.append((INTERVAL_COUNT, bad | (count != count.floor()), "a whole number 0 to n"))
    for base in BASELINES:
        column, count = f"{INTERVAL_COUNT}_{base}", pl.col(f"{INTERVAL_COUNT}_{base}")
        if column in scores.columns:
            bad = count.is_null() | ((count != 0) & (count != pl.col("n")))
            if f"n_{base}" in scores.columns:
                bad = bad | ((count != 0) & (pl.col(f"n_{base}") == 0))
            checks.append((column, bad, f"0 or n (0 where n_{base} is 0)"))
    for column, bad, what in checks:
        wrong = scores.filter(bad)
        if wrong.height:
            raise DataValidationError(
                f"The scores frame's {column!r} counts the points of each row that a "
                f"baseline's interval scores are over, so must be {what}, but {wrong.height} "
                f"rows hold another value, e.g. {wrong.row(0, named=True)}. Pass a "
                "backtest's metrics (one row per fold and series; the rows of its by_step "
                "and score() pool several origins, some without intervals), or pool the "
                "forecast points instead (BacktestResult.score(by=...))."
            )


def _check_one_model(scores: pl.DataFrame, keys: Sequence[str]) -> None:
    """Refuse pooling the scores of several models (a :data:`MODEL_COLUMNS` column of names
    with more than one value, not among the group ``keys``) into one number. A column of
    numbers is not names: a backtest's ``folds`` number its refits of one estimator
    ``model``, and its own ``aggregate`` pools them."""
    for column in MODEL_COLUMNS:
        if column not in scores.columns or column in keys or scores[column].dtype.is_numeric():
            continue
        models = scores[column].unique(maintain_order=True)
        if len(models) > 1:
            shown = models.head(5).to_list()
            raise DataValidationError(
                f"aggregate would pool the scores of {len(models)} models into one number: "
                f"the scores frame holds {column}={shown}{', ...' if len(models) > 5 else ''} "
                f"and by={[k for k in keys if k != TARGET_COLUMN]} leaves {column!r} out. "
                f"Pass by={column!r} (or add it to your by list) for one row per {column}, or "
                f"filter the frame to one {column} first (e.g. "
                f"scores.filter(pl.col({column!r}) == {shown[0]!r}))."
            )


def _interval_scores(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if is_interval_metric(c)]


def _check_scores(scores: pl.DataFrame, metrics: Sequence[str], name: str) -> None:
    """Refuse rows that cannot be pooled: ``n`` that is not a count > 0, and null metrics
    (pooling would add them as 0 while keeping their weight). :func:`evaluate` writes
    neither; NaN metrics (e.g. a MAPE of 0/0) are kept: they make the pooled value NaN."""
    n = pl.col("n").cast(pl.Float64)
    bad_n = n.is_null() | n.is_nan() | n.is_infinite() | (n <= 0) | (n != n.floor())
    null = [pl.col(m).is_null() for m in metrics]
    checks = {"n": bad_n, **dict(zip(metrics, null, strict=True))}
    counts = scores.select(c.sum().alias(k) for k, c in checks.items()).row(0, named=True)
    wrong = {k: v for k, v in counts.items() if v}
    if not wrong:
        return
    column = next(iter(wrong))
    example = scores.filter(checks[column]).row(0, named=True)
    what = (
        "holds counts of points that are not whole numbers > 0"
        if column == "n"
        else "holds null scores"
    )
    raise DataValidationError(
        f"The {name} frame {what} in {column!r} ({wrong[column]} rows, e.g. {example}). "
        "Every row is pooled with weight n (its number of points), so each needs n >= 1 and "
        "a value of every metric: evaluate() writes such rows; drop the others (e.g. "
        f"{name}.drop_nulls()) or recompute them."
    )


def _check_same_points(scores: pl.DataFrame, naive2: pl.DataFrame) -> None:
    """Refuse score frames of different series (or folds, targets, ...): rows are matched
    on the columns both frames have besides ``n`` and the metrics, and each match must
    pool the same number of points."""
    keys = [
        c
        for c in scores.columns
        if c in naive2.columns
        and c not in ("n", SCALED_COUNT, *METRICS)
        and not is_interval_metric(c)
    ]
    frames = {"scores": scores, "naive2_scores": naive2}
    if keys:
        frames = align_keys(frames, keys)
    counts = {
        name: (
            frame.group_by(keys, maintain_order=True).agg(pl.col("n").sum())
            if keys
            else frame.select(pl.col("n").sum())
        ).with_columns(pl.col("n").cast(pl.Int64))  # whole numbers (see _check_scores)
        for name, frame in frames.items()
    }
    (other,) = temporary_names([*keys, "n"], "n_naive2")
    right = counts["naive2_scores"].rename({"n": other})
    if keys:
        joined = counts["scores"].join(
            right, on=keys, how="full", coalesce=True, nulls_equal=True, maintain_order="left"
        )
    else:
        joined = pl.concat([counts["scores"], right], how="horizontal")
    n, n2 = pl.col("n"), pl.col(other)
    problems = [
        (n2.is_null(), "rows of scores have no match in naive2_scores"),
        (n.is_null(), "rows of naive2_scores have no match in scores"),
        (n != n2, "rows pool a different number of points n in the two frames"),
    ]
    for mask, what in problems:
        wrong = joined.filter(mask)
        if wrong.height:
            example = wrong.row(0, named=True) if keys else {"n": wrong["n"][0]}
            raise DataValidationError(
                f"owa compares a model with Naive2 on the same points, but {wrong.height} "
                f"{what} (matched on {keys}; e.g. {example}). Score both forecasts on the same "
                "series, folds and steps (evaluate() against the same actual frame), or "
                "filter both frames to the series they share."
            )


def owa(
    scores: pl.DataFrame,
    naive2_scores: pl.DataFrame,
    *,
    by: Sequence[str] | str | None = None,
) -> pl.DataFrame:
    """Overall weighted average against Naive2, as M4 computes it.

    ``OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, with every sMAPE and MASE
    pooled over all series (see :func:`aggregate`) before the ratios are taken.

    Parameters
    ----------
    scores, naive2_scores : polars.DataFrame
        Per-series scores of the model and of :func:`naive2` on the same points, each with the
        columns ``n``, ``smape`` and ``mase`` (from :func:`evaluate`).
    by : str or sequence of str, optional
        Group columns (e.g. ``"fold"``); rows are also split by ``target`` when present.

    Returns
    -------
    polars.DataFrame
        Keys, ``smape``, ``mase``, ``smape_naive2``, ``mase_naive2`` and ``owa`` (null where
        Naive2's pooled score is 0 or infinite: no ratio to an exact baseline exists, nor to
        an infinite score).

    Raises
    ------
    DataValidationError
        When the two frames are not scores of the same points: rows are matched on the
        columns both frames have besides ``n`` and the metrics (id, target, fold, ...), and
        every row must have a match with the same ``n``; a series scored for the model but
        not for Naive2 (or the other way round) is refused, naming it. Also for rows that
        :func:`aggregate` refuses.

    Examples
    --------
    >>> import polars as pl
    >>> model = pl.DataFrame({"id": ["a", "b"], "n": [2, 2], "smape": [8.0, 10.0],
    ...                       "mase": [1.0, 1.0]})
    >>> base = model.with_columns(pl.col("smape") * 2, pl.col("mase") * 2)
    >>> owa(model, base)["owa"].to_list()
    [0.5]
    """
    frames = {}
    keys = check_by(by, {"n": "the count of points", "smape": "a metric", "mase": "a metric"})
    for frame, name in ((scores, "scores"), (naive2_scores, "naive2_scores")):
        numbers = ["n", "smape", "mase"]  # and the by columns, named with their frame
        frames[name] = checked_frame(frame, name, keys=keys, numbers=numbers, unique=False)
        _check_scores(frames[name], ["smape", "mase"], name)
    _check_same_points(frames["scores"], frames["naive2_scores"])
    others = [m for m in METRICS if m not in ("smape", "mase")]
    a, b = (
        aggregate(frames[name].select(pl.exclude(others, *_interval_scores(frames[name]))), by=by)
        for name in ("scores", "naive2_scores")
    )
    counts = COUNTS  # pooled per frame, not keys ("n" first)
    keys = [c for c in a.columns if c not in (*counts, "smape", "mase")]
    a, b = (
        a.drop(c for c in counts[1:] if c in a.columns),
        b.drop(c for c in counts[1:] if c in b.columns),
    )
    b = b.select(*keys, pl.col("smape").alias("smape_naive2"), pl.col("mase").alias("mase_naive2"))
    if keys:
        aligned = align_keys({"scores": a, "naive2_scores": b}, keys)
        a, b = aligned["scores"], aligned["naive2_scores"]
    out = (
        a.drop("n").join(b, on=keys, how="left", maintain_order="left")
        if keys
        else pl.concat([a.drop("n"), b], how="horizontal")
    )
    ratio = [_ratio(pl.col(c), pl.col(f"{c}_naive2")) for c in ("smape", "mase")]
    return out.with_columns((0.5 * (ratio[0] + ratio[1])).alias("owa"))


def _ratio(ours: pl.Expr, theirs: pl.Expr) -> pl.Expr:
    """``ours / theirs``, null where the baseline's score ``theirs`` is 0 (no ratio to an
    exact baseline) or infinite (none to an infinite score either: inf / inf was NaN, 5 / inf
    0): the skill ratios of :func:`with_skill` and the ratios of :func:`owa`."""
    return ours / pl.when((theirs != 0) & ~theirs.is_infinite()).then(theirs)


def with_skill(
    scores: pl.DataFrame,
    baselines: Mapping[str, pl.DataFrame],
    *,
    keys: Sequence[str],
    metrics: Sequence[str],
    shown: Sequence[str] = (),
    ours: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """``scores`` with every baseline's count of points ``n_<baseline>`` after ``n`` and,
    after each metric ``<m>`` of ``metrics``, every baseline's score ``<m>_<baseline>`` and
    the skill ratio ``<m>_skill_<baseline>`` (ours / baseline on the same points: below 1 the
    model is better; null where the baseline's score is 0, as there is no ratio to an exact
    baseline, or infinite: a MAPE or MASE of inf has none either, inf / inf was NaN and
    5 / inf 0); after each score of ``shown`` the baselines' scores only. Coverage and width
    have no skill ratio (:func:`~forecaster.evaluation.intervals.has_skill_ratio`: their
    ratio to a baseline's is no skill): in ``metrics`` they are refused, pass them in
    ``shown`` (:func:`skill_split` splits a list of scores so).

    ``baselines`` maps a baseline's name to its scores over the points where it has a
    forecast: ``n`` (their count) and the ``metrics`` (or some of them), one row per
    ``keys`` as in ``scores`` (rows are matched on ``keys``; a group it has no row for has
    ``n_<baseline>`` 0 and NaN scores and skill ratios); its interval scores may be over
    fewer points, counted in :data:`~forecaster.evaluation.intervals.INTERVAL_COUNT`, set
    as ``n_interval_<baseline>`` after the ``n_<baseline>``. ``ours`` maps a baseline that
    lacks a forecast (or intervals) at some points of ``scores`` to the model's scores over
    the same points (one row per ``keys``), the numerators of its skill ratios; for the
    others they are the metrics of ``scores``. Other columns of ``scores`` keep their place.

    Examples
    --------
    >>> import polars as pl
    >>> ours = pl.DataFrame({"target": ["y"], "n": [4], "mae": [1.0]})
    >>> naive = pl.DataFrame({"target": ["y"], "n": [4], "mae": [2.0]})
    >>> with_skill(ours, {"naive": naive}, keys=["target"], metrics=["mae"]).row(0)
    ('y', 4, 4, 1.0, 2.0, 0.5)

    Raises
    ------
    DataValidationError
        For a score without a skill ratio (``coverage_80``, ``width_80``) in ``metrics``.
    """
    _check_ratios(metrics, shown)
    out = scores
    for name, frame in baselines.items():
        scored = [m for m in (*metrics, *shown) if m in frame.columns]  # it may score fewer
        counts = ["n", *(c for c in [INTERVAL_COUNT] if c in frame.columns)]
        added = {**{c: f"{c}_{name}" for c in counts}, **{m: f"{m}_{name}" for m in scored}}
        numerators = {m: m for m in scored}
        parts = [frame.select(*keys, *(pl.col(k).alias(v) for k, v in added.items()))]
        mine = (ours or {}).get(name)
        if mine is not None:  # the model's scores on the baseline's points
            hidden = temporary_names([*out.columns, *added.values()], *(f"__{m}__" for m in scored))
            numerators = dict(zip(scored, hidden, strict=True))
            parts.append(mine.select(*keys, *(pl.col(m).alias(numerators[m]) for m in scored)))
        for part in parts:
            out = _joined(out, part, list(keys))
        nan = pl.lit(float("nan"))  # a group the baseline has no forecast for
        out = out.with_columns(
            *(pl.col(added[c]).fill_null(0) for c in counts),
            *(pl.col(added[m]).fill_null(nan) for m in scored),
            *(pl.col(c).fill_null(nan) for c in numerators.values() if c not in scored),
        )
        out = out.with_columns(
            _ratio(pl.col(numerators[m]), pl.col(f"{m}_{name}")).alias(f"{m}_skill_{name}")
            for m in scored
            if has_skill_ratio(m)
        )
    counts = [f"n_{name}" for name in baselines]
    counts += [c for c in (f"{INTERVAL_COUNT}_{name}" for name in baselines) if c in out.columns]
    order: list[str] = [] if "n" in scores.columns else counts
    for column in scores.columns:
        order.append(column)
        if column == "n":
            order += counts
        if column in metrics or column in shown:
            for name in baselines:
                order += [c for c in (f"{column}_{name}", f"{column}_skill_{name}") if c in out]
    return out.select(order)


def skill_split(names: Sequence[str]) -> dict[str, list[str]]:
    """The ``metrics`` and ``shown`` arguments of :func:`with_skill` for the scores
    ``names``: those with a skill ratio, and coverage and width, which have none
    (:func:`~forecaster.evaluation.intervals.has_skill_ratio`).

    Examples
    --------
    >>> skill_split(["mae", "coverage_80", "winkler_80"])
    {'metrics': ['mae', 'winkler_80'], 'shown': ['coverage_80']}
    """
    return {
        "metrics": [n for n in names if has_skill_ratio(n)],
        "shown": [n for n in names if not has_skill_ratio(n)],
    }


def _check_ratios(metrics: Sequence[str], shown: Sequence[str]) -> None:
    """Refuse a score without a skill ratio (coverage, width) among ``metrics``: with_skill
    set none beside it, with no word."""
    none = [m for m in metrics if not has_skill_ratio(m)]
    if none:
        ratios = [m for m in metrics if has_skill_ratio(m)]
        raise DataValidationError(
            f"with_skill sets a skill ratio beside every score of metrics, but {none} have "
            "none: a coverage's or width's ratio to a baseline's is no skill (neither is "
            f"better the lower). Of metrics={list(metrics)}, {ratios} have skill ratios. Pass "
            f"shown={[*shown, *none]} to set the baselines' values beside them without a "
            "ratio (skill_split(names) splits a list so)."
        )


def _joined(out: pl.DataFrame, part: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``out`` left-joined with ``part`` on ``keys`` (one row per keys in each; nulls match),
    side by side where both hold the same keys in the same rows (the frames of one group-by:
    no join needed)."""
    if not keys:
        return pl.concat([out, part], how="horizontal")
    if part.select(keys).equals(out.select(keys)):
        return pl.concat([out, part.drop(keys)], how="horizontal")
    return out.join(part, on=keys, how="left", maintain_order="left", nulls_equal=True)

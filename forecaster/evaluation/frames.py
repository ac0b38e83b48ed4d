"""Score frames: what :func:`~forecaster.evaluation.scoring.evaluate`,
:func:`~forecaster.evaluation.pooling.aggregate`, :func:`~forecaster.evaluation.pooling.owa` and
the backtest share: the one check of every frame they take (:func:`checked_frame`), the
alignment of key dtypes (:func:`align_keys`), the checks of ``metrics=`` and ``by=``, the
columns of a points frame (:class:`PointColumns`) and their pooling into metrics
(:func:`summarize_points`) and the warning about infinite scores (:func:`warn_infinite_scores`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import polars as pl

from forecaster._columns import temporary_names
from forecaster._polars import collect
from forecaster._validation import describe_value
from forecaster.data.checks import check_unique_keys
from forecaster.data.frames import collect_frame, column_tuple, text_like
from forecaster.evaluation.array_metrics import METRICS
from forecaster.evaluation.intervals import (
    SCALED_COUNT,
    IntervalColumns,
    exact_ratio,
    is_scaled_metric,
    scaled_mean,
)
from forecaster.exceptions import DataValidationError, InfiniteScoreWarning, warn_at_caller

__all__ = [
    "ERROR_SCALED",
    "TARGET_COLUMN",
    "PointColumns",
    "align_keys",
    "check_by",
    "check_metric_names",
    "check_scale_used",
    "checked_frame",
    "summarize_forecasts",
    "summarize_key_sets",
    "summarize_points",
    "warn_infinite_scores",
]

TARGET_COLUMN = "target"
"""The output column of the frame metrics that names the target of each row."""


class PointColumns(NamedTuple):
    """Names of the columns of a points frame (one row per scored point) that
    :func:`summarize_points` reads besides the group keys: chosen by :meth:`avoiding` so that
    they differ from the keys, whatever the user's columns are called."""

    forecast: str
    actual: str
    mase_scale: str
    error_scale: str

    @classmethod
    def avoiding(cls, keys: Iterable[str]) -> PointColumns:
        """Column names that differ from ``keys`` (see :func:`temporary_names`)."""
        bases = ("__forecast__", "__actual__", "__mase_scale__", "__error_scale__")
        return cls(*temporary_names(keys, *bases))


def check_metric_names(metrics: Sequence[str] | str | None, has_insample: bool) -> list[str]:
    """``metrics=`` as a list of names from :data:`METRICS` (in that order): each at most
    once, ``mase`` only with in-sample data; the default is all of them."""
    if metrics is None:
        return [m for m in METRICS if m != "mase" or has_insample]
    if isinstance(metrics, str):
        names = [metrics]
    elif isinstance(metrics, Sequence):
        names = list(metrics)
    else:
        names = [metrics]
    unknown = [m for m in names if not isinstance(m, str) or m not in METRICS]
    if unknown or not names:
        raise DataValidationError(
            f"Unknown metrics {unknown or names!r}. Expected a non-empty list from {METRICS}."
        )
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise DataValidationError(
            f"metrics lists {repeated} more than once; name each metric once."
        )
    if "mase" in names and not has_insample:
        raise DataValidationError(
            "metric 'mase' needs the in-sample data of every series for its scale: pass "
            "insample=<training frame> (and m=<seasonal period>), or drop 'mase'."
        )
    return [m for m in METRICS if m in names]


ERROR_SCALED = ("mae", "mse", "rmse")
"""The metrics that ``scale=`` divides (the relative ones need no divisor)."""


def check_scale_used(scale: object, names: Sequence[str]) -> None:
    """Refuse ``scale=`` when none of the metrics ``names`` is one it divides."""
    if scale is not None and not any(m in ERROR_SCALED for m in names):
        raise DataValidationError(
            f"scale divides the errors of {list(ERROR_SCALED)}, and metrics={list(names)} "
            "holds none of them, so it would change nothing. Add one of them to metrics, or "
            "leave scale out."
        )


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The {name} frame lacks the columns {missing}; it has {frame.columns}."
        )


def _numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def checked_frame(
    frame: Any,
    name: str,
    *,
    keys: Sequence[str] = (),
    numbers: Sequence[str] = (),
    unique: bool = True,
) -> pl.DataFrame:
    """The one frame check of every frame a metrics function takes (forecast, actual,
    insample, scale, scores): a polars DataFrame or LazyFrame (collected), with the columns
    ``keys`` and ``numbers``, the latter numeric, and (``unique``) one row per ``keys``.

    Raises
    ------
    DataValidationError
        Naming the frame (``name``), the columns and what to do.
    """
    data = collect_frame(frame, what=f"{name} frame")
    _require_columns(data, list(dict.fromkeys([*keys, *numbers])), name)
    text = [f"{c!r} ({data.schema[c]})" for c in numbers if not _numeric(data.schema[c])]
    if text:
        raise DataValidationError(
            f"The {name} frame must hold numbers in {', '.join(text)}. Cast them, e.g. "
            "pl.col(name).cast(pl.Float64), or name other columns."
        )
    nulls = [c for c in keys if data[c].null_count()]
    if nulls:  # a null id or time matches nothing: its rows were dropped without a word
        raise DataValidationError(
            f"The {name} frame has nulls in its key columns {nulls} ({data[nulls[0]].null_count()} "
            f"in {nulls[0]!r}): every row needs its series and time. Fill them (e.g. "
            f"pl.col({nulls[0]!r}).fill_null('unknown')) or drop those rows."
        )
    if unique:
        check_unique_keys(data, keys, what=f"{name} frame")
    return data


def align_keys(frames: dict[str, pl.DataFrame], keys: Sequence[str]) -> dict[str, pl.DataFrame]:
    """Give each key column one dtype in all ``frames``: integers of any width become Int64
    (Int128 beside a UInt64, whose values may pass Int64's), text / Categorical / Enum become
    String; other differences (a text id against a number,
    dates against datetimes, two time zones) are refused, naming both dtypes."""
    out = dict(frames)
    for key in keys:
        dtypes = {name: frame.schema[key] for name, frame in frames.items()}
        if len({str(d) for d in dtypes.values()}) <= 1:
            continue
        if all(d.is_integer() for d in dtypes.values()):
            common: Any = pl.Int128 if pl.UInt64 in dtypes.values() else pl.Int64
        elif all(text_like(d) for d in dtypes.values()):
            common = pl.String
        else:
            shown = ", ".join(f"{d} in the {n} frame" for n, d in dtypes.items())
            raise DataValidationError(
                f"The key column {key!r} has different dtypes: {shown}. Rows are matched on "
                f"it, so cast the frames to one dtype first, e.g. pl.col({key!r}).cast(...)."
            )
        out = {n: f.with_columns(pl.col(key).cast(common)) for n, f in out.items()}
    return out


def check_by(by: Any, reserved: dict[str, str]) -> list[str]:
    """``by`` as a list of column names, none of which is a column the caller always uses
    (``reserved``: name -> its role)."""
    if by is None:
        return []
    names = list(column_tuple(by)) if isinstance(by, str | Sequence) else [by]
    bad = [b for b in names if not isinstance(b, str) or not b]
    if bad:
        raise DataValidationError(
            f"by must be a column name or a list of column names, got {describe_value(by)}."
        )
    clash = [b for b in names if b in reserved]
    if clash:
        roles = ", ".join(f"{b!r} is {reserved[b]}" for b in clash)
        raise DataValidationError(
            f"by={names!r}: {roles}, always part of the result. Leave "
            f"{'it' if len(clash) == 1 else 'them'} out of by (by names extra key columns "
            "such as 'model' or 'fold')."
        )
    repeated = sorted({b for b in names if names.count(b) > 1})
    if repeated:
        raise DataValidationError(f"by lists {repeated} more than once; name each column once.")
    return names


def summarize_points(
    points: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str],
    metrics: Sequence[str],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
    *,
    count_scaled: bool = False,
) -> pl.DataFrame:
    """Pool the point-level rows of a long frame into metrics per group ``by``.

    ``points`` has the columns ``by`` and those named by ``columns``: the forecast, the
    actual value and, when used, the MASE denominator of the point's series and the divisor
    of the errors of MAE / MSE / RMSE. A point is scored when both its forecast and its
    actual value are there; ``n`` counts the points scored, the points every metric is the
    mean over (MASE, MSIS and sCRPS: those whose MASE denominator is not NaN, see
    :func:`~forecaster.evaluation.intervals.scaled_mean`). With ``intervals``, the points
    also carry interval bounds and quantile forecasts, scored after the metrics
    (:meth:`IntervalColumns.scores`; MSIS and sCRPS when the MASE denominator is there).
    With ``count_scaled`` and a scaled score among them, the column
    :data:`~forecaster.evaluation.intervals.SCALED_COUNT` after ``n`` counts the points whose
    MASE denominator is defined (for a backtest, whose rows may pool blocks without one).
    """
    scores, _ = summarize_forecasts(
        points, by, metrics, columns, intervals, count_scaled=count_scaled
    )
    return scores


def summarize_forecasts(
    points: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str],
    metrics: Sequence[str],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
    *,
    count_scaled: bool = False,
    others: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """:func:`summarize_points` of the forecast in ``columns.forecast`` and of other forecasts
    of the same points, in one pass (one group-by: what a backtest pools for its model and its
    baselines on the same points).

    Parameters
    ----------
    points, by, metrics, columns, intervals, count_scaled
        As for :func:`summarize_points`.
    others : mapping of str to str, optional
        A name (e.g. a baseline's) to the column of ``points`` holding its forecast of each
        point. Its frame pools the ``metrics`` as :func:`summarize_points` would pool a frame
        holding that forecast in ``columns.forecast`` (no interval scores, no
        ``count_scaled``).

    Returns
    -------
    polars.DataFrame
        The frame of :func:`summarize_points` (``by``, ``n``, the metrics, ...).
    dict of str to polars.DataFrame
        Each name of ``others`` to its frame: ``by``, ``n`` and the ``metrics``, one row per
        group in the same order. A point is scored when its actual value and every forecast
        are there, so ``n`` is the same in every frame: pool forecasts with nulls at other
        points apart.
    """
    (pooled,) = summarize_key_sets(
        points, [by], metrics, columns, intervals, count_scaled=count_scaled, others=others
    )
    return pooled


def summarize_key_sets(
    points: pl.DataFrame | pl.LazyFrame,
    key_sets: Sequence[Sequence[str]],
    metrics: Sequence[str],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
    *,
    count_scaled: bool = False,
    others: Mapping[str, str] | None = None,
) -> list[tuple[pl.DataFrame, dict[str, pl.DataFrame]]]:
    """:func:`summarize_forecasts` by each key set of ``key_sets`` (a list of columns each;
    a backtest's scores by fold and series, by step and overall), in their order: each
    point's score of every metric and forecast (its absolute error, its squared error, ...)
    is computed once, in one pass over the points scored, and each key set's group-by pools
    them (their means; MASE over the points whose scale is defined): the scores of a
    group-by per key set computing them. Each query is collected by Polars' in-memory engine
    (:func:`forecaster._polars.collect`): the same bits from run to run (and, on every
    backtest checked, at one Polars thread as at two)."""
    schema = points.collect_schema() if isinstance(points, pl.LazyFrame) else points.schema
    sources: dict[str | None, str] = {None: columns.forecast}
    sources.update(others or {})
    keys = list(dict.fromkeys(k for by in key_sets for k in by))
    pairs = [(source, m) for source in sources for m in metrics]
    bases = [
        f"__{i}_{m}_{kind}__" for kind in ("point", "pooled") for i, (_, m) in enumerate(pairs)
    ]
    names = iter(temporary_names([*schema, *keys], *bases))  # unlike the keys
    hidden = {pair: next(names) for pair in pairs}  # the points' scores, then pooled
    pooled = {pair: next(names) for pair in pairs}
    actual = pl.col(columns.actual)
    values = []  # each point's scores (the squared error once for MSE and RMSE)
    for source, column in sources.items():
        each = _point_scores(pl.col(column), actual, columns, schema)
        for m in metrics:
            if m == "rmse" and "mse" in metrics:
                hidden[source, m] = hidden[source, "mse"]
            else:
                values.append(each[m].alias(hidden[source, m]))
    read = [columns.actual, columns.mase_scale]
    if intervals is not None:
        read += [*intervals.lo, *intervals.hi, *intervals.q]
    kept = list(dict.fromkeys([*keys, *(c for c in read if c in schema)]))
    lazy = points.lazy()
    if not _all_there(points, [columns.actual, *sources.values()]):  # else: no copy
        there = [pl.col(c).is_not_null() for c in (columns.actual, *sources.values())]
        lazy = lazy.filter(pl.all_horizontal(there))
    scored = collect(lazy.select(*kept, *values))
    defined = _scales_defined(points, columns.mase_scale)  # no MASE scale undefined
    shape = (metrics, columns, intervals, count_scaled)
    return [_pooled(scored, list(by), (hidden, pooled), shape, defined=defined) for by in key_sets]


def _pooled(
    scored: pl.DataFrame,
    by: list[str],
    names: tuple[dict[tuple[str | None, str], str], dict[tuple[str | None, str], str]],
    shape: tuple[Sequence[str], PointColumns, IntervalColumns | None, bool],
    *,
    defined: bool,
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The frames of :func:`summarize_forecasts` by ``by`` from the points ``scored`` by
    :func:`summarize_key_sets` (``names``: the column of each (forecast, metric)'s point
    scores and of its pooled score; ``shape``: its metrics, columns, intervals and
    ``count_scaled``; ``defined``: no MASE scale is undefined)."""
    (hidden, pooled), (metrics, columns, intervals, count_scaled) = names, shape
    schema = scored.schema
    scale = pl.col(columns.mase_scale) if columns.mase_scale in schema else None
    plain = bool(by) and defined  # MASE: the plain mean, no group empty (the same bits)
    # the count cast, not a bare pl.len(): with only plain means, Polars (2.1) would group
    # many rows into few groups on its partitioned path, whose sums change order run to run
    aggs = [pl.len().cast(pl.Int64).alias("n")]
    for (source, m), column in hidden.items():
        aggs.append(_pooled_score(m, pl.col(column), scale, plain).alias(pooled[source, m]))
    scores = []  # the interval scores and the count of scaled points: the first forecast's
    if intervals is not None:
        scores = [e.alias(k) for k, e in intervals.scores(pl.col(columns.actual), scale).items()]
    scored_names = [*metrics, *(e.meta.output_name() for e in scores)]
    counted = count_scaled and any(is_scaled_metric(m) for m in scored_names)
    if counted:
        known = pl.col(columns.mase_scale).is_not_nan().fill_null(False)  # null: not scored
        aggs.insert(1, known.sum().cast(pl.Int64).alias(SCALED_COUNT))
    aggs += scores
    lazy = scored.lazy()
    out = collect(lazy.group_by(by, maintain_order=True).agg(aggs) if by else lazy.select(aggs))
    counts = ["n", *([SCALED_COUNT] if counted else [])]  # (a key may be named n_scaled)

    def frame(source: str | None, before: list[str], after: list[str]) -> pl.DataFrame:
        named = (pl.col(pooled[source, m]).alias(m) for m in metrics)
        return out.select(*by, *before, *named, *after)

    sources = list(dict.fromkeys(source for source, _ in hidden))
    ours = frame(None, counts, [e.meta.output_name() for e in scores])
    return ours, {name: frame(name, ["n"], []) for name in sources if name is not None}


def _all_there(points: pl.DataFrame | pl.LazyFrame, names: Sequence[str]) -> bool:
    """Whether ``points`` (a DataFrame) hold a value in every row of the columns ``names``:
    no row to filter out (a null count is read, not computed)."""
    return isinstance(points, pl.DataFrame) and not any(points[c].null_count() for c in names)


def _scales_defined(points: pl.DataFrame | pl.LazyFrame, column: str) -> bool:
    """Whether ``points`` (a DataFrame) hold the MASE denominators in ``column``, none of
    them NaN (undefined)."""
    if not isinstance(points, pl.DataFrame) or column not in points.columns:
        return False
    return not points[column].is_nan().any()


def _point_scores(
    forecast: pl.Expr, actual: pl.Expr, columns: PointColumns, schema: pl.Schema
) -> dict[str, pl.Expr]:
    """Each point's score of every point metric of :data:`METRICS` (MASE only where
    ``schema`` holds the MASE denominator; RMSE: the squared error, as MSE) of ``forecast``
    against ``actual``, which :func:`_pooled_score` pools."""
    err = forecast - actual
    scaled = err / pl.col(columns.error_scale) if columns.error_scale in schema else err
    absolute = err.abs()
    den = actual.abs() + forecast.abs()
    exprs: dict[str, pl.Expr] = {
        "mae": scaled.abs(),
        "mse": scaled * scaled,
        "rmse": scaled * scaled,
        "mape": 100.0 * exact_ratio(absolute, actual.abs()),  # exact at 0: 0
        "smape": pl.when(den == 0).then(0.0).otherwise(200.0 * absolute / den),
    }
    if columns.mase_scale in schema:  # an exact point on a flat history: 0, not 0/0
        exprs["mase"] = exact_ratio(absolute, pl.col(columns.mase_scale))
    return exprs


def _pooled_score(metric: str, scores: pl.Expr, scale: pl.Expr | None, plain: bool) -> pl.Expr:
    """The aggregate of the point ``scores`` of ``metric`` (:func:`_point_scores`): their
    mean (RMSE: its root); MASE's over the points whose ``scale`` is not NaN
    (:func:`~forecaster.evaluation.intervals.scaled_mean`), which with ``plain`` (no scale
    NaN, no group empty) is the plain mean, the same bits without its filter."""
    if metric == "rmse":
        return scores.mean().sqrt()
    if metric == "mase" and not plain and scale is not None:
        return scaled_mean(scores, scale)
    return scores.mean()


_LABELS = {"mape": "MAPE", "mase": "MASE", "msis": "MSIS", "scrps": "sCRPS"}


def warn_infinite_scores(
    scores: pl.DataFrame,
    id_name: str,
    has_id: bool,
    m: int,
    *,
    baselines: Sequence[str] = (),
    history: str = "in-sample values",
) -> None:
    """Warn, naming the series (``id_name``, read when ``has_id``) and the columns, about the
    infinite scores of ``scores`` (one row per series, or per (fold, series)): MAPE where an
    actual value is 0 and its forecast is not, MASE, MSIS and sCRPS where the series'
    ``history`` does not change at lag ``m`` (scale 0) and the forecast misses; the
    baselines' ``<metric>_<baseline>`` columns too. An
    exact forecast scores 0 there (:func:`~forecaster.evaluation.intervals.exact_ratio`), so
    a flat history or an actual 0 alone makes no score infinite."""
    causes = {
        "MAPE": "some of their actual values are 0 and the forecast there is not (MAPE "
        "divides each error by |y|; an exact forecast scores 0). sMAPE or MASE score data "
        "with zeros",
        "scaled": f"their {history} do not change at lag m={m} (scale 0) and the forecast "
        "is not exact there (only an exact one scores 0: for MSIS and sCRPS, intervals and "
        "quantiles of no width on the actual values)",
    }
    label = {c: _LABELS.get(_score_of(c, baselines), "") for c in scores.columns}
    infinite = [
        c
        for c in scores.columns
        if label[c] and scores.schema[c].is_float() and scores[c].is_infinite().any()
    ]
    for cause, text in causes.items():
        bad = [c for c in infinite if (label[c] == "MAPE") == (cause == "MAPE")]
        if not bad:
            continue
        labels = list(dict.fromkeys(label[c] for c in bad))
        words = " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)
        who, more = "the series", ""
        if has_id:  # a frame of one series may have no id column
            which = scores.filter(pl.any_horizontal(pl.col(bad).is_infinite()))[id_name]
            which = which.unique(maintain_order=True)
            who = f"series {which.head(10).to_list()}"
            more = f" and {which.len() - 10} more" if which.len() > 10 else ""
        folds = " in some folds" if "fold" in scores.columns else ""
        warn_at_caller(
            f"{words} {'are' if len(labels) > 1 else 'is'} infinite for {who}{more}{folds} "
            f"(columns {bad}), and so is any pooled score over them: {text}.",
            InfiniteScoreWarning,
        )


def _score_of(column: str, baselines: Sequence[str]) -> str:
    """The score a column of infinite-prone values holds (``"mape"``, ``"mase"``, ``"msis"``,
    ``"scrps"``; ``mase_naive`` is a baseline's MASE), or ``""`` for any other column (skill
    ratios, counts, keys)."""
    for name in baselines:
        if column.endswith(f"_{name}"):
            column = column[: -len(name) - 1]
            break
    if column in ("mape", "mase", "scrps"):
        return column
    return "msis" if column.startswith("msis_") and is_scaled_metric(column) else ""

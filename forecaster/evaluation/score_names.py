"""The names of a backtest's score columns: the baselines scored beside the model
(:data:`BASELINES`, :func:`scored_baselines`), their counts, the columns of its score frames
(:func:`score_columns`), which names :func:`~forecaster.evaluation.pooling.aggregate` reads
as a count or score (:func:`reads_as_score`), and the refusal of an id column so named
(:func:`check_score_keys`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from forecaster.evaluation.array_metrics import METRICS
from forecaster.evaluation.intervals import (
    INTERVAL_COUNT,
    SCALED_COUNT,
    has_skill_ratio,
    interval_score_names,
    is_interval_metric,
    is_scaled_metric,
)
from forecaster.exceptions import DataValidationError

__all__ = [
    "BASELINES",
    "BASELINE_COUNTS",
    "COUNTS",
    "INTERVAL_COUNTS",
    "check_score_keys",
    "reads_as_score",
    "score_columns",
    "scored_baselines",
]

BASELINES = ("naive", "snaive")
"""The baselines whose scores ``<m>_<baseline>`` (and skill ``<m>_skill_<baseline>``) a
backtest's ``metrics`` and ``score`` set beside each point metric ``<m>``."""

BASELINE_COUNTS = tuple(f"n_{name}" for name in BASELINES)
"""The columns ``n_<baseline>``: the points of a row that the baseline forecast, those its
scores and the skill ratios against it are over (see :func:`with_skill`)."""

INTERVAL_COUNTS = (INTERVAL_COUNT, *(f"{INTERVAL_COUNT}_{name}" for name in BASELINES))
"""The counts of the points that a baseline's interval and quantile scores are over:
:data:`~forecaster.evaluation.intervals.INTERVAL_COUNT` in a backtest's ``baselines`` frame,
``n_interval_<baseline>`` beside ``n_<baseline>`` in its other score frames (fewer where an
origin's history is too short for the baseline's intervals)."""

COUNTS = ("n", SCALED_COUNT, *BASELINE_COUNTS, *INTERVAL_COUNTS)
"""Every column of a score frame that counts points rather than scores them (what a tracked
backtest leaves out of its metrics)."""


def scored_baselines(m: int) -> tuple[str, ...]:
    """The baselines a backtest of seasonal period ``m`` scores beside the model: the naive
    forecast, and with ``m > 1`` the seasonal naive (of :data:`BASELINES`)."""
    return BASELINES if m > 1 else BASELINES[:1]


def score_columns(
    metrics: Sequence[str],
    *,
    m: int = 1,
    levels: Iterable[float] = (),
    quantiles: Iterable[float] = (),
) -> list[str]:
    """The columns that a backtest of the point ``metrics``, seasonal period ``m`` and the
    intervals of ``levels`` and ``quantiles`` (as asked of ``predict``) puts beside the id in
    its score frames (``metrics``, ``baselines``, ``score(by=<id>)``): ``baseline``, ``n``,
    the counts ``n_<baseline>`` of :func:`scored_baselines` (and of their interval scores'
    points, :data:`INTERVAL_COUNTS`, with intervals),
    :data:`~forecaster.evaluation.intervals.SCALED_COUNT` when a scaled score is among them,
    each metric with its ``<m>_<baseline>`` and ``<m>_skill_<baseline>``, and the interval
    scores (:func:`~forecaster.evaluation.intervals.interval_score_names`).

    Examples
    --------
    >>> score_columns(["mae"])
    ['baseline', 'n', 'n_naive', 'mae', 'mae_naive', 'mae_skill_naive']
    """
    point = [name for name in metrics if not is_interval_metric(name)]
    bases = scored_baselines(m)
    intervals = interval_score_names(levels, quantiles, scaled=True)
    scaled = [SCALED_COUNT] if any(map(is_scaled_metric, [*point, *intervals])) else []
    parts = ("", "skill_")
    skill = [f"{s}_{p}{b}" for s in [*point, *intervals] for b in bases for p in parts]
    skill = [c for c in skill if "_skill_" not in c or has_skill_ratio(c)]
    counts = [f"n_{b}" for b in bases]
    if intervals:  # the points of the baselines' interval scores: theirs, and in baselines
        counts += [INTERVAL_COUNT, *(f"{INTERVAL_COUNT}_{b}" for b in bases)]
    return ["baseline", "n", *counts, *scaled, *point, *intervals, *skill]


def reads_as_score(name: str) -> bool:
    """Whether :func:`aggregate` reads a column ``name`` as a count or a score, whatever a
    frame's other columns: ``n``, :data:`~forecaster.evaluation.intervals.SCALED_COUNT`,
    :data:`BASELINE_COUNTS`, a metric of :data:`METRICS`, a baseline's score or skill ratio
    of one (``mae_naive``, ``mae_skill_snaive``) and an interval score (``coverage_80``,
    ``pinball``). A key column of a score frame so named (an id ``mse`` beside the scores of
    ``metrics=["mae"]``) would be pooled as one, the keys summed or averaged into the result.

    Examples
    --------
    >>> [reads_as_score(c) for c in ("n_scaled", "mse", "mae_skill_naive", "fold", "model")]
    [True, True, True, False, False]
    >>> reads_as_score("winkler_80_snaive"), reads_as_score("coverage_80_naive")
    (True, True)
    """
    if name in (*COUNTS, *METRICS) or is_interval_metric(name):
        return True
    for suffix in (f"_{part}{b}" for b in BASELINES for part in ("", "skill_")):
        score = name[: -len(suffix)] if name.endswith(suffix) else ""
        if score in METRICS or is_interval_metric(score):
            return True
    return False


def check_score_keys(id_col: str | None, columns: Collection[str]) -> None:
    """Refuse an id column named like one of ``columns``, those of a backtest's score frames
    (:func:`score_columns`): those frames put the id beside them, and polars refused the
    duplicate name; or like a column that :func:`aggregate` reads as a count or score
    (:func:`reads_as_score`), which no score frame of the call holds (``mse`` beside
    ``metrics=["mae"]``, ``mae_snaive`` with ``m = 1``, ``coverage_80`` without intervals):
    ``aggregate(result.metrics)`` pooled the ids as that score."""
    if id_col is None or (id_col not in columns and not reads_as_score(id_col)):
        return
    clash = (
        "a column of the backtest's scores, beside which they hold the id"
        if id_col in columns
        else "a count or score column that aggregate reads (n, n_scaled, n_<baseline>, "
        "n_interval_<baseline>, a "
        "metric, a baseline's score or skill ratio, an interval score): pooling the "
        "backtest's score frames (aggregate(result.metrics)) would pool the ids as its values"
    )
    raise DataValidationError(
        f"The id column {id_col!r} has the name of {clash} (this backtest's score columns: "
        f"{list(columns)}). Rename it: e.g. frame.rename({{{id_col!r}: 'series'}}) and "
        "id_col='series' (in a pipeline, the data's column and [series] id)."
    )

"""Interval and quantile columns of forecast frames, and their scores in frames.

A forecast frame may carry, per target ``y``, prediction intervals ``y_lo_80`` / ``y_hi_80``
(level 80 %: the quantiles 0.1 and 0.9) and quantile forecasts ``y_q10``, ``y_q50``, ``y_q90``
(``f"{target}_q{100 * q:g}"``). :class:`IntervalColumns` finds them;
:func:`~forecaster.evaluation.scoring.evaluate` and the backtest score them per point with the
expressions of :meth:`IntervalColumns.scores`, into the columns (``L`` a level as in the names):

- ``coverage_L``: the fraction (0 to 1) of points inside ``[lo, hi]``;
- ``width_L``: the mean of ``hi - lo``;
- ``winkler_L``: the mean Winkler score (``a = 1 - L / 100``);
- ``msis_L``: the mean of the Winkler score divided by the series' MASE scale (M4's MSIS),
  when in-sample data gives that scale;
- ``pinball``: the pinball loss averaged over the quantile columns and the points;
- ``scrps``: twice that over the series' MASE scale (scaled CRPS; with the median alone it is
  MASE), when in-sample data gives the scale.

Every one is a mean over points, so :func:`~forecaster.evaluation.pooling.aggregate` pools
them weighted by ``n``. The scaled ones (MSIS, sCRPS, and MASE) are means over the points
whose MASE scale is defined (:func:`scaled_mean`): NaN only where no point's is; a
backtest's score frames count those points in :data:`SCALED_COUNT`, their weight when pooled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from forecaster._columns import is_bound_column, is_number_label, number_label, temporary_names
from forecaster._validation import MIN_LEVEL
from forecaster.data.checks import check_values
from forecaster.exceptions import DataValidationError

__all__ = [
    "INTERVAL_COUNT",
    "INTERVAL_METRICS",
    "SCALED_COUNT",
    "IntervalColumns",
    "conformal_rank",
    "conformal_ranks",
    "exact_ratio",
    "has_skill_ratio",
    "interval_names",
    "interval_part",
    "interval_score_names",
    "is_interval_metric",
    "is_scaled_metric",
    "level_bounds",
    "level_name",
    "quantile_name",
    "scaled_mean",
    "signed_ranks",
]

INTERVAL_METRICS = ("coverage", "width", "winkler", "msis")
"""Scores per level, named ``<score>_<level>`` (e.g. ``coverage_80``)."""

SCALED_COUNT = "n_scaled"
"""The column of a backtest's score frames counting the points of a row whose MASE scale is
defined: those its scaled scores (:func:`is_scaled_metric`) are the mean over, fewer than
``n`` where a row pools (fold, series) forecasts of which some have no scale. It is their
weight in :func:`~forecaster.evaluation.pooling.aggregate`."""

INTERVAL_COUNT = "n_interval"
"""The column counting the points of a row that a baseline's interval and quantile scores are
over: a backtest's ``baselines`` frame holds it, and its ``metrics``, ``by_step``,
``aggregate`` and ``score()`` frames hold ``n_interval_<baseline>`` beside ``n_<baseline>``.
Fewer than the baseline's points where an origin's history is too short for its intervals
(its point forecast is scored all the same). It is the interval scores' weight in
:func:`~forecaster.evaluation.pooling.aggregate` (0: NaN scores, left out)."""

_PER_LEVEL = re.compile(rf"^(?:{'|'.join(INTERVAL_METRICS)})_\d+(?:\.\d+)?$")


def is_interval_metric(name: str) -> bool:
    """Whether ``name`` is a score column of intervals or quantiles (``coverage_80``,
    ``pinball``, ...)."""
    return name in ("pinball", "scrps") or bool(_PER_LEVEL.match(name))


def has_skill_ratio(name: str) -> bool:
    """Whether a backtest shows a skill ratio ``<name>_skill_<baseline>`` beside score
    ``name``: for the point metrics and the proper interval and quantile scores (Winkler,
    MSIS, pinball, sCRPS: lower is better), not for coverage and width, whose ratio to a
    baseline's is no skill (the baseline's value is shown beside them)."""
    return not name.startswith(("coverage_", "width_"))


def is_scaled_metric(name: str) -> bool:
    """Whether score ``name`` is divided by the MASE scale (``mase``, ``msis_80``, ``scrps``):
    a series (or backtest block) whose scale is undefined has it NaN, and pooling leaves such
    rows out (:func:`scaled_mean`)."""
    return name in ("mase", "scrps") or (name.startswith("msis_") and is_interval_metric(name))


def exact_ratio(value: pl.Expr, scale: pl.Expr) -> pl.Expr:
    """``value / scale``, 0 where both are 0: an exact score on a flat history (a MASE scale of
    0) is 0, not the NaN of 0/0, for MASE, MSIS and sCRPS alike.

    Examples
    --------
    >>> frame = pl.DataFrame({"v": [0.0, 1.0, 0.0], "s": [0.0, 0.0, 2.0]})
    >>> frame.select(exact_ratio(pl.col("v"), pl.col("s"))).to_series().to_list()
    [0.0, inf, 0.0]
    """
    return pl.when((value == 0) & (scale == 0)).then(0.0).otherwise(value / scale)


def scaled_mean(values: pl.Expr, scale: pl.Expr) -> pl.Expr:
    """The mean of ``values`` (a score already divided by ``scale``) over the points whose
    MASE ``scale`` is not NaN (a series too short for it, e.g. a backtest fold whose origin
    has at most ``m`` values), NaN when no point's scale is: one undefined scale does not
    turn the pooled score NaN. Points with a null scale count as before (their value is
    null, left out of the mean).

    Examples
    --------
    >>> frame = pl.DataFrame({"e": [1.0, 2.0, 3.0], "s": [1.0, 2.0, float("nan")]})
    >>> frame.select(scaled_mean(pl.col("e") / pl.col("s"), pl.col("s"))).item()
    1.0
    >>> frame.tail(1).select(scaled_mean(pl.col("e") / pl.col("s"), pl.col("s"))).item()
    nan
    """
    undefined = scale.is_nan().fill_null(False)
    return (
        pl.when(undefined.all())
        .then(pl.lit(float("nan")))
        .otherwise(values.filter(~undefined).mean())
    )


def level_name(target: str, level: float, side: str) -> str:
    """The column of a bound: ``level_name("y", 80, "lo") == "y_lo_80"``."""
    return f"{target}_{side}_{number_label(level)}"


def interval_names(target: str, levels: Iterable[float], quantiles: Iterable[float]) -> list[str]:
    """The interval and quantile columns of ``target`` in the order ``predict`` writes them:
    each level's lower then upper bound, then the quantiles, each in the order given
    (``predict`` sorts both).

    Examples
    --------
    >>> interval_names("y", [50, 80], [0.1, 0.9])
    ['y_lo_50', 'y_hi_50', 'y_lo_80', 'y_hi_80', 'y_q10', 'y_q90']
    """
    names = [level_name(target, level, side) for level in levels for side in ("lo", "hi")]
    return names + [quantile_name(target, q) for q in quantiles]


def level_bounds(level: float) -> tuple[float, float]:
    """The lower and upper quantiles of a central interval of ``level`` per cent:
    ``level_bounds(80) == (0.1, 0.9)`` (rounded to 12 decimals, so that ``1 - 0.95`` is 0.05)."""
    alpha = 1.0 - level / 100.0
    return round(alpha / 2, 12), round(1.0 - alpha / 2, 12)


def conformal_ranks(n: np.ndarray, level: float) -> np.ndarray:
    """The rank ``ceil((n + 1) L / 100)`` (1-based) of the split-conformal quantile of level
    ``L`` per cent among ``n`` scores, for every count of ``n`` (more than ``n``: the scores
    are too few for the level). Computed as ``(n + 1) L / 100`` with a tolerance of 1e-9, so
    that a product that lands on an integer stays it: ``25 * 0.56`` is
    14.000000000000002 in floating point, and its ceiling 15 would take one score more.

    Examples
    --------
    >>> conformal_ranks(np.array([24, 99]), 56.0).tolist()
    [14, 56]
    """
    return np.ceil((np.asarray(n) + 1) * level / 100.0 - 1e-9).astype(np.int64)


def conformal_rank(n: int, level: float) -> int:
    """:func:`conformal_ranks` of one count ``n``: the one rank rule of the estimators'
    calibrations (:mod:`forecaster.estimators.conformal_ranks`) and, for many counts at once,
    of the conformal intervals of the naive baselines
    (:func:`~forecaster.evaluation.baseline_intervals.conformal_bounds`)."""
    return int(conformal_ranks(np.asarray(n), level))


def signed_ranks(n: np.ndarray | int, q: float) -> np.ndarray:
    """The rank (1-based, per count of ``n``) of the split-conformal quantile ``q`` among
    ``n`` signed scores, within ``1 .. n`` (``n >= 1``): for ``q >= 0.5`` the
    :func:`conformal_ranks` of level ``100 q``, at most ``n``; below, its mirror, the
    ``n + 1 - conformal_ranks(n, 100 (1 - q))``-th, at least 1 (``floor((n + 1) q)``). The
    one rank rule of the estimators' signed conformal quantiles
    (:func:`~forecaster.estimators.conformal_ranks.signed_quantile`) and of the quantiles of
    :func:`~forecaster.evaluation.baselines.seasonal_naive`.

    Examples
    --------
    >>> signed_ranks(np.array([9, 3]), 0.1).tolist(), signed_ranks(np.array([9, 3]), 0.9).tolist()
    ([1, 1], [9, 3])
    """
    n = np.asarray(n)
    rank = np.minimum(conformal_ranks(n, 100.0 * max(q, 1.0 - q)), n)
    return rank if q >= 0.5 else n + 1 - rank


def quantile_name(target: str, quantile: float) -> str:
    """The column of a quantile forecast: ``quantile_name("y", 0.1) == "y_q10"``."""
    return f"{target}_q{number_label(100 * quantile)}"


def _suffixes(columns: Iterable[str], prefix: str, skip: set[str]) -> dict[str, float]:
    """Numeric suffixes of the columns starting with ``prefix`` -> their value."""
    found = {}
    for column in columns:
        if column in skip or not column.startswith(prefix):
            continue
        rest = column[len(prefix) :]
        if is_number_label(rest):
            found[rest] = float(rest)
    return found


@dataclass(frozen=True)
class IntervalColumns:
    """The interval levels and quantiles of a forecast frame (the same for every target), and
    the temporary names of their columns in a points frame (one row per point and target)."""

    levels: tuple[float, ...]
    quantiles: tuple[float, ...]
    lo: tuple[str, ...]
    hi: tuple[str, ...]
    q: tuple[str, ...]

    @classmethod
    def find(
        cls, columns: Sequence[str], targets: Sequence[str], avoid: Iterable[str] = ()
    ) -> IntervalColumns | None:
        """The interval and quantile columns among ``columns`` (None when there are none).

        Raises
        ------
        DataValidationError
            When a level has a lower bound without an upper one (or the other way), a level
            is not in (1, 100) or a quantile not in (0, 1), or the targets differ in levels or
            quantiles.
        """
        skip = set(targets)
        found: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        for t in targets:
            lo = _suffixes(columns, f"{t}_lo_", skip)
            hi = _suffixes(columns, f"{t}_hi_", skip)
            if set(lo) != set(hi):
                odd = sorted(set(lo) ^ set(hi))
                raise DataValidationError(
                    f"The forecast frame has only one bound of the intervals {odd} of target "
                    f"{t!r}: each level needs both {t}_lo_<level> and {t}_hi_<level>."
                )
            qs = _suffixes(columns, f"{t}_q", skip)
            bad = [f"{t}_lo_{k}" for k, v in lo.items() if not MIN_LEVEL < v < 100]
            bad += [f"{t}_q{k}" for k, v in qs.items() if not 0 < v < 100]
            if bad:
                raise DataValidationError(
                    f"Columns {bad} name a level outside (1, 100) or a quantile outside (0, 1) "
                    "(both named in percent: y_lo_80 bounds the 80 % interval, y_q10 is the "
                    "quantile 0.1). Rename or drop them."
                )
            levels = tuple(sorted({v for v in lo.values()}))
            quantiles = tuple(sorted({v / 100 for v in qs.values()}))
            labels = {level_name(t, v, s) for v in levels for s in ("lo", "hi")}
            labels |= {quantile_name(t, q) for q in quantiles}
            unnamed = sorted(c for c in columns if c not in skip and _is_ours(c, t) - labels)
            if unnamed:
                raise DataValidationError(
                    f"Columns {unnamed} write a level or quantile unlike the package does "
                    f"(e.g. {level_name(t, 80, 'lo')}, {quantile_name(t, 0.1)}); rename them."
                )
            found[t] = (levels, quantiles)
        kinds = set(found.values())
        if len(kinds) > 1:
            shown = {t: {"levels": v[0], "quantiles": v[1]} for t, v in found.items()}
            raise DataValidationError(
                f"The targets have different interval levels or quantiles: {shown}. Forecast "
                "every target with the same levels and quantiles to score them together."
            )
        levels, quantiles = kinds.pop() if kinds else ((), ())
        if not levels and not quantiles:
            return None
        names = temporary_names(
            avoid,
            *[f"__lo_{i}__" for i in range(len(levels))],
            *[f"__hi_{i}__" for i in range(len(levels))],
            *[f"__q_{i}__" for i in range(len(quantiles))],
        )
        k = len(levels)
        return cls(levels, quantiles, tuple(names[:k]), tuple(names[k : 2 * k]), names[2 * k :])

    def temporary(self) -> list[str]:
        """The temporary names of the columns in a points frame, in the order of
        :meth:`sources`."""
        return [*self.lo, *self.hi, *self.q]

    def sources(self, target: str) -> list[str]:
        """The forecast frame's columns of ``target``, in the order of :meth:`renamed`."""
        return [
            *[level_name(target, v, "lo") for v in self.levels],
            *[level_name(target, v, "hi") for v in self.levels],
            *[quantile_name(target, q) for q in self.quantiles],
        ]

    def renamed(self, target: str) -> list[pl.Expr]:
        """The columns of ``target`` as Float64 under their temporary names (for the rows of
        one target in a points frame)."""
        names = self.temporary()
        return [
            pl.col(s).cast(pl.Float64).alias(n)
            for s, n in zip(self.sources(target), names, strict=True)
        ]

    def check_values(
        self, frame: pl.DataFrame, targets: Sequence[str], *, id_name: str, time_col: str
    ) -> None:
        """Refuse missing or infinite bounds and quantiles, and crossed intervals (lo > hi)."""
        columns = [c for t in targets for c in self.sources(t)]
        check_values(
            frame,
            columns,
            id_name=id_name,
            time_col=time_col,
            what="forecast frame",
            fix="Every interval and quantile is scored, so each needs a finite value.",
        )
        for t in targets:
            for v in self.levels:
                lo, hi = level_name(t, v, "lo"), level_name(t, v, "hi")
                crossed = frame.filter(pl.col(lo) > pl.col(hi))
                if crossed.height:
                    raise DataValidationError(
                        f"{crossed.height} rows of the forecast frame have {lo} > {hi} (e.g. "
                        f"{crossed.select(time_col, lo, hi).row(0, named=True)}): an interval's "
                        "lower bound must not exceed its upper bound."
                    )

    def score_names(self, scaled: bool) -> list[str]:
        """The score columns, in order; ``scaled``: with MSIS and sCRPS
        (:func:`interval_score_names`)."""
        return interval_score_names(self.levels, self.quantiles, scaled=scaled)

    def scores(self, actual: pl.Expr, scale: pl.Expr | None) -> dict[str, pl.Expr]:
        """The aggregation of every score column (see the module docstring) over points, with
        ``actual`` the true value and ``scale`` the series' MASE scale (None: no MSIS and
        sCRPS)."""
        out: dict[str, pl.Expr] = {}
        for v, lo_name, hi_name in zip(self.levels, self.lo, self.hi, strict=True):
            lo, hi = pl.col(lo_name), pl.col(hi_name)
            alpha = 1.0 - v / 100.0
            penalty = (lo - actual).clip(lower_bound=0.0) + (actual - hi).clip(lower_bound=0.0)
            winkler = (hi - lo) + (2.0 / alpha) * penalty
            out[f"coverage_{v:g}"] = ((actual >= lo) & (actual <= hi)).cast(pl.Float64).mean()
            out[f"width_{v:g}"] = (hi - lo).mean()
            out[f"winkler_{v:g}"] = winkler.mean()
            if scale is not None:
                out[f"msis_{v:g}"] = scaled_mean(exact_ratio(winkler, scale), scale)
        if self.quantiles:
            losses = []
            for q, name in zip(self.quantiles, self.q, strict=True):
                diff = actual - pl.col(name)
                losses.append(pl.max_horizontal(q * diff, (q - 1.0) * diff))
            pinball = pl.sum_horizontal(losses) / len(losses)
            out["pinball"] = pinball.mean()
            if scale is not None:
                out["scrps"] = scaled_mean(exact_ratio(2.0 * pinball, scale), scale)
        return out


def interval_score_names(
    levels: Iterable[float], quantiles: Iterable[float], *, scaled: bool
) -> list[str]:
    """The score columns of the intervals of ``levels`` and the ``quantiles``, in order
    (``scaled``: with MSIS and sCRPS, which need the MASE scale).

    Examples
    --------
    >>> interval_score_names([80], [0.5], scaled=True)
    ['coverage_80', 'width_80', 'winkler_80', 'msis_80', 'pinball', 'scrps']
    """
    names = []
    for v in levels:
        kinds = INTERVAL_METRICS if scaled else INTERVAL_METRICS[:-1]
        names += [f"{kind}_{v:g}" for kind in kinds]
    if list(quantiles):
        names += ["pinball", "scrps"] if scaled else ["pinball"]
    return names


def interval_part(forecast: pl.DataFrame, targets: Sequence[str]) -> pl.DataFrame | None:
    """The interval and quantile columns of a forecast frame (None when it has none)."""
    found = IntervalColumns.find(forecast.columns, targets)
    if found is None:
        return None
    return forecast.select(c for t in targets for c in found.sources(t))


def _is_ours(column: str, target: str) -> set[str]:
    """``{column}`` when it looks like an interval or quantile column of ``target`` written
    another way (e.g. ``y_q010`` or ``y_lo_80.0``), else the empty set."""
    return {column} if is_bound_column(column, target) else set()

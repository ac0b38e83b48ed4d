"""Target transforms: applied to the targets before scaling, inverted on the forecasts.

``log``, ``log1p`` and Box-Cox (one maximum-likelihood lambda per series and target), and the
rule of ``target_transform="auto"`` (:func:`resolve_target_transform`): the log for positive
levels that swing by a factor, the targets' own scale otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

import forecaster._validation as _validation
from forecaster.data.panel import Panel
from forecaster.data.seasons import panel_seasons
from forecaster.exceptions import DataValidationError

__all__ = [
    "LOG_MAX_LAMBDA",
    "LOG_MIN_SPREAD",
    "TARGET_TRANSFORMS",
    "boxcox_ceiling",
    "check_target_domain",
    "domain_bound",
    "domain_floor",
    "fit_boxcox_lambdas",
    "guerrero_lambda",
    "inverse_targets",
    "raise_to_positive",
    "resolve_target_transform",
    "smallest_positive",
    "transform_targets",
    "within_domain",
]


TARGET_TRANSFORMS = _validation.TARGET_TRANSFORMS
"""``auto``: ``log`` when every training target is > 0, else ``none`` (see
:func:`resolve_target_transform`); ``log``: natural log (targets > 0); ``log1p``: ``log(1 + y)``
(targets > -1, e.g. counts with zeros); ``boxcox``: Box-Cox with one lambda per series and
target, fitted by maximum likelihood on the training span (targets > 0; lambda in [0, 2]);
``none``: identity."""

_BOXCOX_RANGE = (0.0, 2.0)
"""The Box-Cox lambdas :func:`fit_boxcox_lambdas` can fit. Not below 0 (the log): with a
negative lambda the transformed values cannot exceed ``-1/lambda``, and a forecast of the
network above that ceiling has no inverse (infinite), while with lambda >= 0 every forecast
has one (kept inside the domain by :func:`inverse_targets`)."""
_BOXCOX_MAX_POINTS = 20_000


LOG_MIN_SPREAD = 1.5
"""``target_transform="auto"`` takes the log only when the typical series' 95th percentile is
at least this multiple of its 5th: below it the log is nearly linear over the data's range (a
heart rate, a CO2 level, a sea temperature), and the data keeps its own scale."""

LOG_MAX_LAMBDA = 0.5
"""``target_transform="auto"`` takes the log only when the typical series' Guerrero lambda
(:func:`guerrero_lambda`) is below this: its swings grow with its level (lambda near 0), unlike
a temperature whose daily swing stays the same as it warms (lambda near 1)."""

_AUTO_SERIES = 256
"""Series (evenly spaced) that ``"auto"`` measures: a panel of any size costs the same."""

_AUTO_ROWS = 20_000
"""The latest rows of a series that ``"auto"`` measures."""

_LAMBDAS = np.linspace(-1.0, 2.0, 61)

_MIN_LEVEL_CHANGE = 1.1
""":func:`guerrero_lambda` needs block means at least this far apart (highest over lowest):
with a flat level every lambda fits alike."""

_MIN_SLOPE_ERRORS = 2.0
""":func:`guerrero_lambda` finds a lambda below 1 only when its blocks show their spread
growing with their level: the slope of log spread on log mean (about ``1 - lambda``) at least
this many standard errors above 0."""

_SLOPE_BLOCKS = 8
""":func:`guerrero_lambda` asks for that slope only with at least this many blocks: with three
to seven (a few years of a monthly series) its standard error rests on one to five degrees of
freedom and would refuse the log to most short multiplicative series."""

_UNSEASONAL_BLOCK = 6
"""Block length of :func:`guerrero_lambda` for data without a seasonal period: enough steps
for a block's spread (blocks of two give each a spread from one difference)."""


def guerrero_lambda(y: np.ndarray, period: int) -> float:
    """The Box-Cox lambda of Guerrero (1993) for the positive series ``y``: cut into blocks of
    ``period`` steps (the season; at least 2), the lambda in [-1, 2] (steps of 0.05) that makes
    the blocks' standard deviation over their mean to the power ``1 - lambda`` most nearly
    constant (lowest coefficient of variation). Near 0: the spread grows with the level (the
    log stabilises it); near 1: the spread does not depend on the level. With eight blocks or
    more, 1 unless they show the spread growing with the level (the slope of log spread on log
    mean at least :data:`_MIN_SLOPE_ERRORS` standard errors above 0): noise around a steady
    level, whose block means and spreads wander by chance, finds no lambda. NaN with fewer
    than three blocks, or when the blocks' means lie within 10 % of each other (no level change
    to relate the spread to).

    Examples
    --------
    >>> t = np.arange(480)
    >>> level = np.exp(t / 200)
    >>> round(guerrero_lambda(level * (2 + np.sin(2 * np.pi * t / 24)), 24), 2)  # swings grow
    0.0
    >>> round(guerrero_lambda(10 + t / 50 + np.sin(2 * np.pi * t / 24), 24), 2)  # they do not
    1.0
    >>> noise = np.random.default_rng(0).normal(size=480)
    >>> guerrero_lambda(10 + 3 * noise, 24)  # white noise: no lambda below 1 by chance
    1.0
    """
    period = max(int(period), 2)
    n = len(y) // period
    if n < 3:
        return float("nan")
    blocks = np.asarray(y[len(y) - n * period :], dtype=np.float64).reshape(n, period)
    mean, spread = blocks.mean(axis=1), blocks.std(axis=1, ddof=1)
    keep = (mean > 0) & (spread > 0)
    if keep.sum() < 3 or mean[keep].max() < _MIN_LEVEL_CHANGE * mean[keep].min():
        return float("nan")  # too few blocks, or a level too flat to say how the spread follows it
    if keep.sum() >= _SLOPE_BLOCKS:  # enough blocks for the slope's error to mean something
        slope, error = _spread_slope(mean[keep], spread[keep])
        if slope < _MIN_SLOPE_ERRORS * error:
            return 1.0  # the spread is not shown to grow with the level: no transform
    ratios = spread[keep, None] / mean[keep, None] ** (1.0 - _LAMBDAS)
    variation = ratios.std(axis=0, ddof=1) / ratios.mean(axis=0)
    return float(_LAMBDAS[int(np.argmin(variation))])


def _spread_slope(mean: np.ndarray, spread: np.ndarray) -> tuple[float, float]:
    """The slope of ``log(spread)`` on ``log(mean)`` over the blocks (least squares: about
    ``1 - lambda``) and its standard error."""
    x = np.log(mean) - np.log(mean).mean()
    y = np.log(spread) - np.log(spread).mean()
    slope = (x * y).sum() / (x * x).sum()
    residual = ((y - slope * x) ** 2).sum() / (len(x) - 2)
    return float(slope), float(np.sqrt(residual / (x * x).sum()))


def resolve_target_transform(method: str, panel: Panel, mask: np.ndarray | None = None) -> str:
    """The transform ``method`` stands for on ``panel``: ``"auto"`` is ``"log"`` when every
    target value is > 0 and the typical series (the median over up to 256 series and the
    target columns, measured on the rows where ``mask`` is true: before a validation hold-out,
    as known at their end, :meth:`~forecaster.data.panel.Panel.known_through`)
    spans a factor (95th over 5th percentile at least :data:`LOG_MIN_SPREAD`) with swings that
    grow with its level (:func:`guerrero_lambda` over blocks of the main season, six steps
    without one, below :data:`LOG_MAX_LAMBDA`): sales, traffic, visits, demand. Otherwise
    ``"none"``: data with a zero or a negative value, a level that barely moves, or an
    additive one (a temperature).
    Other methods are returned as they are.

    Parameters
    ----------
    method : str
        A ``target_transform`` (one of :data:`TARGET_TRANSFORMS`).
    panel : Panel
    mask : numpy.ndarray, optional
        Boolean, one per row of ``panel``: the leading rows of each series to measure
        (:meth:`Panel.leading_ends <forecaster.data.panel.Panel.leading_ends>`); default all.

    Returns
    -------
    str

    Examples
    --------
    >>> import polars as pl
    >>> t = np.arange(240)
    >>> growing = np.exp(t / 100) * (2 + np.sin(2 * np.pi * t / 24))
    >>> frame = pl.DataFrame({"t": t, "y": growing})
    >>> resolve_target_transform("auto", Panel.from_frame(frame, target="y", time_col="t"))
    'log'
    >>> frame = pl.DataFrame({"t": t, "y": np.exp(t / 100) + np.sin(2 * np.pi * t / 24)})
    >>> resolve_target_transform("auto", Panel.from_frame(frame, target="y", time_col="t"))
    'none'
    """
    if method != "auto":
        return method
    nt = panel.n_targets
    targets = panel.values[:, :nt]
    if not targets.size or not bool((targets > 0).all()):
        return "none"
    starts, ends = panel.offsets[:-1], panel.leading_ends(mask)
    period = (panel_seasons(panel, ends) or (_UNSEASONAL_BLOCK,))[0]
    targets = panel.known_through(mask).values[:, :nt]  # "interpolate": as known at the end
    spreads: list[float] = []
    lambdas: list[float] = []
    for i in np.unique(np.linspace(0, panel.n_series - 1, _AUTO_SERIES).astype(np.int64)):
        rows = targets[max(starts[i], ends[i] - _AUTO_ROWS) : ends[i]].astype(np.float64)
        if len(rows) == 0:
            continue
        low, high = np.quantile(rows, [0.05, 0.95], axis=0)
        spreads.extend(high / low)
        lambdas.extend(guerrero_lambda(rows[:, j], period) for j in range(nt))
    finite = [v for v in lambdas if np.isfinite(v)]
    if not spreads or not finite or float(np.median(spreads)) < LOG_MIN_SPREAD:
        return "none"
    return "log" if float(np.median(finite)) < LOG_MAX_LAMBDA else "none"


def domain_bound(method: str) -> float | None:
    """The value every target must exceed under the transform ``method`` (``0`` for log and
    Box-Cox, ``-1`` for log1p; None for ``"none"``), which its forecasts' inverse keeps above
    too.

    Examples
    --------
    >>> domain_bound("log"), domain_bound("log1p"), domain_bound("none")
    (0.0, -1.0, None)
    """
    if method == "none":
        return None
    return -1.0 if method == "log1p" else 0.0


def domain_floor(method: str) -> float | None:
    """The least float32 value inside the domain of the transform ``method``, at which
    forecasts that would reach its bound (a blend's partner, a moved quantile, an interval
    bound) are floored: the bound itself is outside the domain (a later fit would refuse
    it), and a forecast read back as data is float32. The next float32 above
    :func:`domain_bound` (-1 + 2**-24 for log1p), but for a bound of 0 (log and Box-Cox) the
    least normal float32, about 1.18e-38 (a subnormal one can be flushed to 0, and the
    float32 range check of the data, ``check_float32_range``, refuses it); None for
    ``"none"``.

    Examples
    --------
    >>> domain_floor("log"), domain_floor("log1p"), domain_floor("none")
    (1.1754943508222875e-38, -0.9999999403953552, None)
    """
    bound = domain_bound(method)
    if bound is None:
        return None
    step = np.nextafter(np.float32(bound), np.float32(np.inf))
    return float(max(step, np.finfo(np.float32).tiny) if bound == 0 else step)


def within_domain(values: np.ndarray, method: str) -> np.ndarray:
    """``values`` (targets' units) inside the domain of the transform ``method``: not below
    :func:`domain_floor`, the least float32 above its bound (0 for log and Box-Cox, -1 for
    log1p, which are outside it; unchanged for ``"none"``), the one floor of every forecast
    under a transform (:func:`inverse_targets`), blend partner, interval bound and quantile.
    NaN stays NaN.

    Examples
    --------
    >>> within_domain(np.array([3.0, 0.5, -2.0]), "log").tolist()
    [3.0, 0.5, 1.1754943508222875e-38]
    >>> within_domain(np.array([3.0, -2.0]), "none").tolist()
    [3.0, -2.0]
    """
    floor = domain_floor(method)
    return values if floor is None else np.maximum(values, floor)


def check_target_domain(method: str, panel: Panel) -> None:
    """Raise :class:`DataValidationError` when a target value is outside the transform's
    domain (``> 0`` for log and Box-Cox, ``> -1`` for log1p), naming the column and series."""
    bound = domain_bound(method)
    if bound is None:
        return
    targets = panel.values[:, : panel.n_targets]
    bad = targets <= bound
    if not bad.any():
        return
    row, col = np.argwhere(bad)[0]
    series = int(np.searchsorted(panel.offsets, row, side="right") - 1)
    key = panel.keys[panel.id_name][series]
    hint = (
        "Use target_transform='log1p' for non-negative data, "
        if method != "log1p"
        else "Shift the data, "
    )
    raise DataValidationError(
        f"target_transform={method!r} needs every target value > {bound:g}; column "
        f"{panel.targets[col]!r} has {int(bad[:, col].sum())} values <= {bound:g} (e.g. "
        f"{float(targets[row, col]):g} in series {key!r}). {hint}or target_transform='none'."
    )


def raise_to_positive(panel: Panel, before: np.ndarray | None = None) -> tuple[Panel, np.ndarray]:
    """A copy of ``panel`` whose target values <= 0 are raised to the smallest positive value
    that came before them, and the mask ``(rows, n_targets)`` of the values raised: how a
    model whose ``target_transform="auto"`` chose the log reads data outside its domain.

    A value's floor is read from earlier rows only, so that a forecast never depends on rows
    after its origin: the smallest positive value of its series and column up to its row
    (``before``, ``(n_series, n_targets)``: that of rows before the panel, e.g. a stream's
    history; ``inf`` where none); when its series has none yet, the smallest positive value of
    the column in any series at or before its time (and in ``before``); 1 when there is none.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": [0, 1, 2, 3], "y": [2.0, 0.0, 1.0, -1.0]})
    >>> raised, mask = raise_to_positive(Panel.from_frame(frame, target="y", time_col="t"))
    >>> raised.values[:, 0].tolist(), mask[:, 0].tolist()
    ([2.0, 2.0, 1.0, 1.0], [False, True, False, True])
    """
    nt = panel.n_targets
    targets = panel.values[:, :nt]
    bad = targets <= 0  # NaN stays NaN, as with an explicit log
    if not bad.any():
        return panel, bad
    floor = _earlier_positive_floor(panel, np.where(targets > 0, targets, np.inf), before)
    values = panel.values.copy()
    values[:, :nt] = np.where(bad, floor.astype(values.dtype), targets)
    return dataclasses.replace(panel, values=values, _device_values={}), bad


def smallest_positive(panel: Panel) -> np.ndarray:
    """The smallest positive target of each series, ``(n_series, n_targets)`` (``inf`` where
    a series has none): the ``before`` of :func:`raise_to_positive` for rows that follow."""
    targets = panel.values[:, : panel.n_targets].astype(np.float64)
    positive = np.where(targets > 0, targets, np.inf)
    if not len(positive):
        return np.full((panel.n_series, panel.n_targets), np.inf)
    return np.minimum.reduceat(positive, panel.offsets[:-1], axis=0)


def _earlier_positive_floor(
    panel: Panel, positive: np.ndarray, before: np.ndarray | None
) -> np.ndarray:
    """Per row and target: the smallest of ``positive`` (``inf`` where not positive) in its
    series up to the row (and ``before``), else in the column at or before its time, else 1."""
    nt = positive.shape[1]
    series = panel.series_of_rows()
    names = [f"c{j}" for j in range(nt)]
    frame = pl.DataFrame(
        {"s": series, "t": panel.time, **{n: positive[:, j] for j, n in enumerate(names)}}
    )
    own = frame.select(pl.col(n).cum_min().over("s") for n in names).to_numpy()
    by_time = (
        frame.group_by("t")
        .agg(pl.col(n).min() for n in names)
        .sort("t")
        .with_columns(pl.col(n).cum_min() for n in names)
    )
    column = frame.select("t").join(by_time, on="t", how="left", maintain_order="left")
    column_floor = column.select(names).to_numpy()
    if before is not None:
        own = np.minimum(own, before[series])
        column_floor = np.minimum(column_floor, before.min(axis=0, initial=np.inf))
    floor = np.where(np.isfinite(own), own, column_floor)
    return np.where(np.isfinite(floor), floor, 1.0)


def fit_boxcox_lambdas(panel: Panel, mask: np.ndarray | None = None) -> np.ndarray:
    """Box-Cox lambdas, shape ``(n_series, n_targets)``, fitted by maximum likelihood on the
    rows where ``mask`` is true (all rows when None), constrained to [0, 2]
    (:data:`_BOXCOX_RANGE`; a maximum below 0 gets 0, the log): every forecast then has an
    inverse.

    A series with fewer than 3 distinct fitted values gets lambda 1 (no transform but a shift
    by 1). Long series are fitted on their last 20,000 rows.
    """
    from scipy.stats import boxcox_normmax

    panel = panel.known_through(mask)  # "interpolate": the rows as known at their end
    nt = panel.n_targets
    lambdas = np.ones((panel.n_series, nt))
    for i in range(panel.n_series):  # fit time only: one small optimisation per series
        lo, hi = panel.offsets[i], panel.offsets[i + 1]
        rows = np.arange(lo, hi) if mask is None else lo + np.flatnonzero(mask[lo:hi])
        rows = rows[-_BOXCOX_MAX_POINTS:]
        for j in range(nt):
            x = panel.values[rows, j].astype(np.float64)
            if len(np.unique(x)) < 3:
                continue
            # errstate (this thread's alone) for NumPy's floating-point warnings; ymax=inf: no
            # SciPy warning of a lambda constrained against float64 overflow, which float32
            # values cannot reach within _BOXCOX_RANGE (no process-wide warning filter)
            with np.errstate(all="ignore"):
                value = float(boxcox_normmax(x, method="mle", ymax=np.inf))
            if np.isfinite(value):
                lambdas[i, j] = min(max(value, _BOXCOX_RANGE[0]), _BOXCOX_RANGE[1])
    return lambdas


def transform_targets(method: str, panel: Panel, lambdas: np.ndarray | None = None) -> Panel:
    """A copy of ``panel`` whose target columns are transformed (``lambdas``, shape
    ``(n_series, n_targets)``, for Box-Cox). The caller checks the domain first."""
    if method == "none":
        return panel
    values = panel.values.copy()
    nt = panel.n_targets
    y = values[:, :nt].astype(np.float64)
    if method == "log":
        y = np.log(y)
    elif method == "log1p":
        y = np.log1p(y)
    else:
        lam = np.repeat(_boxcox_lambdas(method, lambdas), panel.lengths, axis=0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            power = np.where(np.abs(lam) < 1e-8, np.log(y), (y**lam - 1.0) / lam)
        y = power
    limit = float(np.finfo(np.float32).max)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(y) <= limit)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        series = int(np.searchsorted(panel.offsets, row, side="right") - 1)
        detail = f" (lambda {float(lambdas[series, col]):.3g})" if lambdas is not None else ""
        raise DataValidationError(
            f"target_transform={method!r} maps {int(bad[:, col].sum())} values of "
            f"{panel.targets[col]!r} outside the float32 range, e.g. "
            f"{float(panel.values[row, col]):g} in series "
            f"{panel.keys[panel.id_name][series]!r}{detail}. Rescale the column (e.g. divide "
            "it by a constant) or use target_transform='log'."
        )
    values[:, :nt] = y.astype(np.float32)
    if method == "boxcox":
        _check_precision(panel, y, values[:, :nt], _boxcox_lambdas(method, lambdas))
    return dataclasses.replace(panel, values=values, _device_values={})


def _check_precision(
    panel: Panel, exact: np.ndarray, stored: np.ndarray, lambdas: np.ndarray
) -> None:
    """Refuse Box-Cox values whose variation float32 cannot hold: with a lambda far from 0
    on values far from 1 (around 1e-11, or 5e9 with a negative lambda), ``(y**lam - 1)/lam``
    sits within float32 rounding of ``-1/lam`` for a whole series, and its forecasts came
    out flat (or 0) without a word. A series fails when rounding moves a value by more than
    1 % of the series' standard deviation of the transformed values."""
    starts = panel.offsets[:-1]
    lengths = np.maximum(panel.lengths, 1)[:, None]
    mean = np.add.reduceat(exact, starts, axis=0) / lengths
    spread = np.sqrt(
        np.add.reduceat((exact - np.repeat(mean, panel.lengths, axis=0)) ** 2, starts, axis=0)
        / lengths
    )
    rounding = np.maximum.reduceat(np.abs(stored - exact), starts, axis=0)
    lost = (spread > 0) & (rounding > 0.01 * spread)
    if lost.any():
        series, col = np.argwhere(lost)[0]
        level = float(
            np.median(np.abs(panel.values[starts[series] : panel.offsets[series + 1], col]))
        )
        raise DataValidationError(
            f"target_transform='boxcox' maps the values of {panel.targets[col]!r} in "
            + (
                f"series {panel.keys[panel.id_name][int(series)]!r}"
                if panel.id_col
                else "the series"
            )
            + f" (about {level:.3g}; lambda "
            f"{float(lambdas[series, col]):.3g}) so close together that float32 loses their "
            f"variation ({int(lost.sum())} series and columns), and its forecasts would be "
            "flat. Rescale the column to values near 1 (e.g. divide it by its typical level; "
            "the lambda does not change with the scale), or use target_transform='log'."
        )


def inverse_targets(method: str, y: np.ndarray, lambdas: np.ndarray | None = None) -> np.ndarray:
    """Invert :func:`transform_targets` on forecasts ``y`` of shape ``(batch, horizon,
    n_targets)``; ``lambdas`` has shape ``(batch, n_targets)`` for Box-Cox.

    The inverse of a log-scale forecast is a median-type forecast (exp of the mean of the
    logs). Every value is kept inside the transform's domain (:func:`within_domain`: at least
    :func:`domain_floor`), as interval bounds and quantiles are: a forecast far below the
    data (a log of -100, a log1p of -20, a Box-Cox one at or below ``-1/lambda`` with
    ``lambda > 0``, outside the transform's range) comes back as the least float32 above the
    bound, not as the bound itself (0, or -1 for log1p). With a negative lambda (fitted by
    releases before lambdas were limited to [0, 2]) a forecast at or above ``-1/lambda`` has
    no inverse: inf, which the callers refuse, naming the ceiling.

    Examples
    --------
    >>> import numpy as np
    >>> inverse_targets("log1p", np.log1p(np.full((1, 2, 1), 3.0))).round(9).ravel().tolist()
    [3.0, 3.0]
    >>> inverse_targets("boxcox", np.array([[[1.0], [-1.0], [-3.0]]]), np.array([[1.0]])).ravel()
    array([2.00000000e+00, 1.17549435e-38, 1.17549435e-38])
    """
    if method == "none":
        return y
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method == "log":
            out = np.exp(y)
        elif method == "log1p":
            out = np.expm1(y)
        else:
            lam = _boxcox_lambdas(method, lambdas)[:, None, :]
            base = np.maximum(lam * y + 1.0, 0.0)
            out = np.where(np.abs(lam) < 1e-8, np.exp(y), base ** (1.0 / lam))
    return within_domain(out, method)


def boxcox_ceiling(lambdas: np.ndarray) -> np.ndarray:
    """The largest Box-Cox value each lambda can reach, ``-1/lambda`` for a negative lambda
    (``inf`` for lambda >= 0, which has no ceiling): a forecast at or above it has no inverse.

    Examples
    --------
    >>> boxcox_ceiling(np.array([-0.5, 0.0, 1.0])).tolist()
    [2.0, inf, inf]
    """
    lambdas = np.asarray(lambdas, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(lambdas < 0, -1.0 / np.where(lambdas < 0, lambdas, -1.0), np.inf)


def _boxcox_lambdas(method: str, lambdas: np.ndarray | None) -> np.ndarray:
    """The Box-Cox lambdas a transform needs (a caller's error when they are missing)."""
    if method != "boxcox":
        raise ValueError(f"unknown target transform {method!r}; expected {TARGET_TRANSFORMS}")
    if lambdas is None:
        raise ValueError("target_transform='boxcox' needs the fitted lambdas (fit_boxcox_lambdas)")
    return lambdas

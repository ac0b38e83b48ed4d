"""The M4 baseline forecasts, in the output format of
:meth:`forecaster.RNNForecaster.predict`: :func:`naive`, :func:`seasonal_naive` and
:func:`naive2`, with :func:`seasonality_test`. They reproduce the official M4 Hourly and Weekly
scores of Naive, sNaive and Naive2 to the published 3 decimals (see ``tests``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check, check_allocation
from forecaster.data.frames import SERIES_ID, collect_frame, column_tuple, exact_values
from forecaster.data.steps import future_times
from forecaster.data.validate import validate_frame
from forecaster.evaluation.array_metrics import float_values
from forecaster.evaluation.baseline_intervals import conformal_bounds
from forecaster.evaluation.intervals import interval_names, level_name, quantile_name
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = [
    "naive",
    "naive2",
    "origin_forecasts",
    "seasonal_naive",
    "seasonality_test",
]

_TCRIT = 1.645  # one-sided 95% = two-sided 90% normal quantile, as in M4's SeasonalityTest


class _Series:
    """Float64 values of every series of a validated frame, packed with offsets."""

    def __init__(
        self,
        frame: Any,
        *,
        target: str | Sequence[str],
        time_col: str,
        id_col: str | None,
        freq: str | int | None,
        missing: str,
    ) -> None:
        targets = list(column_tuple(target))
        data, self.freq = validate_frame(
            frame, target=targets, time_col=time_col, id_col=id_col, freq=freq, missing=missing
        )
        id_name = id_col if id_col is not None else SERIES_ID  # validate_frame's id column
        # validate_frame returns Float32 values: the original values (Float64) back by
        # (id, time), keeping filled ones (missing != "error") where the original has none
        on = [id_col, time_col] if id_col is not None else [time_col]
        original = collect_frame(frame, what="frame")
        filled = data.select(targets).to_numpy()
        values = exact_values(data.select(on), original, targets, filled)
        self._sources = (data.select(on), original, missing)
        runs = data[id_name].rle().struct.unnest()
        self.lengths = runs["len"].to_numpy().astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.keys = pl.DataFrame(runs["value"].alias(id_name))
        self.values = np.ascontiguousarray(values)
        self.time = data[time_col]
        self.targets = targets
        self.id_col = id_col
        self.id_name = id_name
        self.time_col = time_col

    def observed(self) -> np.ndarray:
        """:attr:`values` with NaN at the cells the ``missing`` policy made up (the frame
        holds no value there: not observations); ``missing="zero"``'s zeros are data."""
        rows, original, missing = self._sources
        if missing == "zero":
            return self.values
        return np.asarray(exact_values(rows, original, self.targets, np.nan))

    def forecast_frame(
        self, forecast: np.ndarray, extra: dict[str, np.ndarray] | None = None
    ) -> pl.DataFrame:
        """``forecast`` of shape (n_series, horizon, n_targets) as a long frame, followed by
        the columns ``extra`` (each of shape (n_series, horizon))."""
        n_series, horizon, _ = forecast.shape
        times = future_times(self.time, self.offsets, self.freq, horizon)
        flat = forecast.reshape(n_series * horizon, -1)
        columns: dict[str, pl.Series] = {}
        if self.id_col is not None:
            columns[self.id_col] = _repeat(self.keys[self.id_name], horizon)
        columns[self.time_col] = times
        for j, name in enumerate(self.targets):
            columns[name] = pl.Series(name, flat[:, j], dtype=pl.Float64)
        for name, values in (extra or {}).items():
            columns[name] = pl.Series(name, values.ravel(), dtype=pl.Float64)
        return pl.DataFrame(columns)


def _repeat(values: pl.Series, times: int) -> pl.Series:
    """Each value of ``values`` ``times`` times in a row."""
    return values.gather(np.repeat(np.arange(len(values)), times))


def _check_horizon(horizon: Any) -> int:
    return check("horizon", horizon)


def _last_values(series: _Series) -> np.ndarray:
    return series.values[series.offsets[1:] - 1]  # (n_series, n_targets)


def naive(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> pl.DataFrame:
    """Naive forecast: the last value of every series, repeated ``horizon`` times.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        Long history (id, time, targets); checked like the estimators' input
        (:func:`~forecaster.data.validate_frame`).
    horizon : int
    target, time_col, id_col, freq, missing
        As in :class:`~forecaster.RNNForecaster`.

    Returns
    -------
    polars.DataFrame
        The format of :meth:`~forecaster.RNNForecaster.predict`: id (when given), the next
        ``horizon`` times of each series and the targets (as Float64).

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": [1, 2, 3], "y": [5.0, 6.0, 7.0]})
    >>> naive(history, 2, target="y").rows()
    [(4, 7.0), (5, 7.0)]
    """
    horizon = _check_horizon(horizon)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_output_size(series, horizon, "naive")
    ends = series.offsets[1:] - 1
    return series.forecast_frame(
        origin_forecasts(series.values, series.offsets[:-1], ends, horizon)
    )


def origin_forecasts(
    values: np.ndarray, starts: np.ndarray, origins: np.ndarray, horizon: int, m: int = 1
) -> np.ndarray:
    """Seasonal-naive point forecasts (naive for ``m = 1``) from many origins at once.

    The one formula of :func:`naive` and :func:`seasonal_naive`, for any origins of packed
    series (e.g. every fold of a backtest, in one gather): step ``h`` (1-based) from the origin
    row ``o`` is ``values[o + 1 - m + (h - 1) mod m]``, the value ``m - ((h - 1) mod m)`` rows
    before the first forecast step.

    Parameters
    ----------
    values : numpy.ndarray
        Packed series, shape (rows, k): the rows of each series together, in time order.
    starts : numpy.ndarray
        For each origin, the row of the first value of its series (shape (n,)).
    origins : numpy.ndarray
        The row of each origin: its last observed value (shape (n,)).
    horizon, m : int
        Steps forecast and seasonal period.

    Returns
    -------
    numpy.ndarray
        Shape (n, horizon, k), float64; NaN where the origin's series has fewer than ``m``
        values up to the origin (no seasonal-naive forecast exists there).

    Examples
    --------
    >>> import numpy as np
    >>> values = np.arange(8.0).reshape(-1, 1)  # two series: rows 0..3 and 4..7
    >>> origin_forecasts(values, np.array([0, 4]), np.array([2, 6]), 3, m=2)[..., 0].tolist()
    [[1.0, 2.0, 1.0], [5.0, 6.0, 5.0]]
    >>> origin_forecasts(values, np.array([4]), np.array([4]), 2, m=2)[..., 0].tolist()
    [[nan, 4.0]]
    """
    origins = np.asarray(origins, dtype=np.int64)
    rows = origins[:, None] + 1 - m + (np.arange(horizon) % m)[None, :]
    before = rows < np.asarray(starts, dtype=np.int64)[:, None]
    out = np.asarray(values, dtype=np.float64)[np.where(before, origins[:, None], rows)]
    if before.any():
        out[before] = np.nan
    return out


def seasonal_naive(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    m: int,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
    level: Sequence[float] | None = None,
    quantiles: Sequence[float] | None = None,
) -> pl.DataFrame:
    """Seasonal naive forecast: the last ``m`` values of every series, repeated; with
    ``level`` or ``quantiles``, with split-conformal intervals or quantiles.

    Step ``h`` (1-based) is the value ``m - ((h - 1) mod m)`` steps before the end. Every series
    needs at least ``m`` values.

    Intervals and quantiles are calibrated per series and per horizon step on the in-sample
    residuals of the same forecast: step ``h`` forecasts from ``k m`` steps back (``k =
    ceil(h / m)``), so its residuals are the ``n - k m`` differences ``y_t - y_(t - k m)`` of
    the series' ``n`` values. Level ``L`` gives ``y_hat +- r``, ``r`` the ``ceil((n_h + 1) L /
    100)``-th smallest of the ``n_h`` absolute residuals (the split-conformal rank; the largest
    when it exceeds ``n_h``); quantile ``q`` gives ``y_hat`` plus the signed residual of rank
    ``ceil((n_h + 1) q)`` (``floor`` below 0.5), within ``1 .. n_h``. A value that
    ``missing`` made up (``"ffill"``, ``"interpolate"``: the frame holds none there) is no
    observation: no residual uses it (``n_h`` counts the differences of two observed values),
    as in a backtest's baseline intervals; ``missing="zero"``'s zeros are data. The point
    forecast is from the values as filled. The residuals overlap
    the forecast origins' own history, so the usual exchangeability caveats of conformal
    prediction apply (seasonal naive is not fitted, so the residuals are out of sample).

    Parameters
    ----------
    m : int
        Seasonal period (``m = 1`` is :func:`naive`).
    level : list of float, optional
        Interval levels in percent, in (1, 100), e.g. ``[80, 95]``: adds ``<target>_lo_<L>`` and
        ``<target>_hi_<L>`` columns. Every series then needs more than ``m ceil(horizon / m)``
        values.
    quantiles : list of float, optional
        Quantiles in (0, 1), e.g. ``[0.1, 0.5, 0.9]``: adds ``<target>_q<100 q>`` columns.
    frame, horizon, target, time_col, id_col, freq, missing
        As in :func:`naive`.

    Examples
    --------
    >>> import polars as pl
    >>> history = pl.DataFrame({"time": range(5), "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> seasonal_naive(history, 3, m=2, target="y")["y"].to_list()
    [4.0, 5.0, 4.0]
    >>> seasonal_naive(history, 1, m=1, target="y", level=[50]).row(0)
    (5, 5.0, 4.0, 6.0)
    """
    horizon = _check_horizon(horizon)
    m = check("m", m)
    levels, quantiles = check("level", level), check("quantiles", quantiles)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_long_enough(series, m, f"seasonal naive with m={m}")
    _check_output_size(series, horizon, "seasonal naive")
    point = origin_forecasts(series.values, series.offsets[:-1], series.offsets[1:] - 1, horizon, m)
    if levels is None and quantiles is None:
        return series.forecast_frame(point)
    lag = m * -(-horizon // m)  # the last step's: m ceil(horizon / m)
    _check_long_enough(series, lag + 1, f"conformal seasonal naive with m={m}")
    levels, quantiles = levels or [], quantiles or []
    ends = series.offsets[1:] - 1
    bounds = conformal_bounds(series.observed(), series.offsets[:-1], ends, point, m,
                              levels=levels, quantiles=quantiles)  # fmt: skip
    _check_calibrated(series, bounds, m)
    extra: dict[str, np.ndarray] = {}
    for j, t in enumerate(series.targets):
        sources = [level_name(t, v, side) for side in ("lo", "hi") for v in levels]
        sources += [quantile_name(t, q) for q in quantiles]
        channels = dict(zip(sources, np.moveaxis(bounds[:, :, j], -1, 0), strict=True))
        extra.update((name, channels[name]) for name in interval_names(t, levels, quantiles))
    return series.forecast_frame(point, extra)


def _check_calibrated(series: _Series, bounds: np.ndarray, m: int) -> None:
    """Refuse a series without an observed difference at some step's lag (its values there
    are missing) to calibrate the intervals ``bounds`` (:func:`conformal_bounds`) on."""
    missing = np.isnan(bounds).any(axis=3)  # (series, horizon, targets)
    if missing.any():
        i, step, _ = (int(v[0]) for v in np.nonzero(missing))
        lag = m * (step // m + 1)
        raise DataValidationError(
            f"Series {series.keys[series.id_name][i]!r} has no observed difference at lag "
            f"{lag} to calibrate its intervals on (values that missing= made up are not "
            "observations); pass a longer history."
        )


def _check_long_enough(series: _Series, needed: int, what: str) -> None:
    short = series.lengths < needed
    if short.any():
        names = series.keys[series.id_name].filter(pl.Series(short)).head(5).to_list()
        raise DataValidationError(
            f"{what} needs at least {needed} values per series; {int(short.sum())} series are "
            f"shorter (e.g. {names}, shortest has {int(series.lengths.min())}). Drop them or use "
            "naive()."
        )


def _acf(x: np.ndarray, offsets: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelations at lags 1..max_lag of every packed series, as R's ``acf``.

    Returns an array (n_series, max_lag); NaN for a constant series.
    """
    lengths = np.diff(offsets)
    n_series = len(lengths)
    series = np.repeat(np.arange(n_series), lengths)
    local = np.arange(len(x)) - np.repeat(offsets[:-1], lengths)
    mean = np.bincount(series, weights=x, minlength=n_series) / np.maximum(lengths, 1)
    d = x - mean[series]
    denom = np.bincount(series, weights=d * d, minlength=n_series)
    out = np.empty((n_series, max_lag))
    for k in range(1, max_lag + 1):
        prod = np.where(local[k:] >= k, d[k:] * d[:-k], 0.0)
        out[:, k - 1] = np.bincount(series[k:], weights=prod, minlength=n_series)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / denom[:, None]


def _seasonal_flags(x: np.ndarray, offsets: np.ndarray, m: int) -> np.ndarray:
    """M4's 90% seasonality test at lag ``m`` for every packed series (see seasonality_test)."""
    lengths = np.diff(offsets)
    flags = np.zeros(len(lengths), dtype=bool)
    if m <= 1:
        return flags
    # R's acf() computes lags up to floor(10 log10(n)) (at most n - 1): a longer lag m is NA,
    # which M4's SeasonalityTest reads as "not seasonal".
    with np.errstate(divide="ignore"):
        lag_max = np.minimum(np.floor(10 * np.log10(np.maximum(lengths, 1))), lengths - 1)
    eligible = (lengths >= 3 * m) & (lag_max >= m)
    if not eligible.any():
        return flags
    acf = _acf(x, offsets, m)
    n = lengths.astype(np.float64)
    limit = _TCRIT / np.sqrt(n) * np.sqrt(1.0 + 2.0 * np.sum(acf[:, : m - 1] ** 2, axis=1))
    with np.errstate(invalid="ignore"):
        flags = eligible & (np.abs(acf[:, m - 1]) > limit)
    return flags & np.isfinite(acf[:, m - 1])


def seasonality_test(values: Any, m: int) -> bool:
    """M4's 90% autocorrelation test for seasonality at lag ``m``.

    Seasonal when ``|r_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)``, with ``r_k`` the
    sample autocorrelations of the ``n`` values. As in M4 (R's ``acf`` defaults), a series with
    fewer than ``3 m`` values, or with ``m > 10 log10(n)`` (lags R does not compute), is not
    seasonal, and neither is a constant one or any series when ``m = 1``.

    Parameters
    ----------
    values : array-like of float
        One series' values in time order, all finite.
    m : int
        The lag (seasonal period) tested, >= 1.

    Returns
    -------
    bool
        Whether the series is seasonal at lag ``m``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(300)
    >>> seasonality_test(10 + np.sin(2 * np.pi * t / 24), m=24)
    True
    >>> seasonality_test(np.random.default_rng(2).normal(size=300), m=24)
    False
    >>> seasonality_test(10 + np.sin(2 * np.pi * t[:240] / 24), m=24)  # 24 > 10 log10(240)
    False
    """
    m = check("m", m)
    x = float_values(values, "values").ravel()
    if not np.isfinite(x).all():  # one NaN made every autocorrelation NaN: "not seasonal"
        bad = int((~np.isfinite(x)).sum())
        raise DataValidationError(
            f"seasonality_test needs finite values; {bad} of the {x.size} values are NaN or "
            f"infinite (e.g. at index {int(np.flatnonzero(~np.isfinite(x))[0])}). Fill or drop "
            "them first."
        )
    return bool(_seasonal_flags(x, np.array([0, len(x)]), m)[0])


def _seasonal_indices(x: np.ndarray, offsets: np.ndarray, m: int) -> np.ndarray:
    """Classical multiplicative decomposition's seasonal indices (n_series, m), as R's
    ``decompose(type="multiplicative")``: ratios to a centred moving average (2 x m for even
    m), averaged per position in the cycle (counted from each series' first value) and
    normalised to mean 1. Every series needs at least ``m + 1`` (even ``m``) or ``m`` values."""
    lengths = np.diff(offsets)
    n_series = len(lengths)
    # R's filter: 2 x m (weights 1/2m at both ends) for even m, m x 1 for odd m
    even = np.concatenate([[0.5], np.ones(m - 1), [0.5]]) / m
    weights = even if m % 2 == 0 else np.ones(m) / m
    width = len(weights)
    half = width // 2
    series = np.repeat(np.arange(n_series), lengths)
    local = np.arange(len(x)) - np.repeat(offsets[:-1], lengths)
    # moving average of the window starting at row j (centred on row j + half), kept where
    # the window lies inside one series
    moving = np.convolve(x, weights[::-1], mode="valid")
    ok = local[: len(moving)] <= lengths[series[: len(moving)]] - width
    starts = np.flatnonzero(ok)
    trend = moving[starts]
    centre = starts + half
    cell = series[centre] * m + local[centre] % m
    counts = np.bincount(cell, minlength=n_series * m).reshape(n_series, m)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero trend: see naive2
        ratio = x[centre] / trend
        sums = np.bincount(cell, weights=ratio, minlength=n_series * m).reshape(n_series, m)
        figure = sums / counts
        return figure / figure.mean(axis=1, keepdims=True)


def naive2(
    frame: pl.DataFrame | pl.LazyFrame,
    horizon: int,
    *,
    m: int,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
) -> pl.DataFrame:
    """Naive2, the M4 reference: naive on the seasonally adjusted series, re-seasonalised.

    A series that passes :func:`seasonality_test` at lag ``m`` is divided by the seasonal
    indices of a classical multiplicative decomposition (centred moving average of order ``m``,
    ``2 x m`` for even ``m``; ratios averaged per position in the cycle and normalised to mean
    1); its last adjusted value is repeated and multiplied by the indices of the forecast
    steps. Other series (and every series when ``m = 1``) get the naive forecast. This is
    M4's ``Benchmarks()`` in ``Benchmarks and Evaluation.R``.

    A seasonal series whose centred moving average is 0 somewhere (e.g. zeros between
    spikes) has no multiplicative indices (R's ``decompose`` gives NaN there, and so would
    the forecast): it gets the naive forecast, as a series that fails the test does, and a
    :class:`~forecaster.exceptions.ForecasterWarning` names it. The output (series x
    ``horizon`` rows) is checked against the memory limit before it is allocated.

    Parameters
    ----------
    m : int
        Seasonal period (M4: 24 for hourly, 12 monthly, 4 quarterly, 1 otherwise).
    frame, horizon, target, time_col, id_col, freq, missing
        As in :func:`naive`.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> t = np.arange(288)
    >>> history = pl.DataFrame({"time": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 24)})
    >>> fc = naive2(history, 24, m=24, target="y")
    >>> bool(np.allclose(fc["y"].to_numpy(), history["y"][-24:].to_numpy(), atol=0.3))
    True
    """
    horizon = _check_horizon(horizon)
    m = check("m", m)
    series = _Series(
        frame, target=target, time_col=time_col, id_col=id_col, freq=freq, missing=missing
    )
    _check_output_size(series, horizon, "Naive2")
    last = _last_values(series)
    forecast = np.repeat(last[:, None, :], horizon, axis=1)
    unadjusted: list[Any] = []
    if m > 1:
        for j in range(len(series.targets)):
            x = series.values[:, j]
            seasonal = np.flatnonzero(_seasonal_flags(x, series.offsets, m))
            if seasonal.size == 0:
                continue
            figure = _seasonal_indices(
                x[_rows_of(series, seasonal)], _offsets_of(series, seasonal), m
            )
            # a moving average of 0 (e.g. a series of zeros and spikes) has no ratios to it:
            # no seasonal adjustment for that series, as when the seasonality test fails
            usable = np.isfinite(figure).all(axis=1) & (figure > 0).all(axis=1)
            unadjusted += series.keys[series.id_name].gather(seasonal[~usable]).to_list()
            seasonal, figure = seasonal[usable], figure[usable]
            n = series.lengths[seasonal][:, None]
            pos_last = (n[:, 0] - 1) % m
            adjusted = last[seasonal, j] / figure[np.arange(len(seasonal)), pos_last]
            steps = (n + np.arange(horizon)[None, :]) % m
            forecast[seasonal, :, j] = adjusted[:, None] * np.take_along_axis(figure, steps, 1)
    if unadjusted:
        _warn_unadjusted(unadjusted, m, series.id_col is not None)
    return series.forecast_frame(forecast)


def _rows_of(series: _Series, chosen: np.ndarray) -> np.ndarray:
    """Rows of ``series.values`` of the series ``chosen``, in order."""
    lengths = series.lengths[chosen]
    offsets = _offsets_of(series, chosen)
    return np.repeat(series.offsets[chosen] - offsets[:-1], lengths) + np.arange(offsets[-1])


def _offsets_of(series: _Series, chosen: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(series.lengths[chosen])])


def _warn_unadjusted(ids: list[Any], m: int, has_id: bool) -> None:
    unique = list(dict.fromkeys(ids))
    which = f"{len(unique)} series ({unique[:10]})" if has_id else "The series"
    warn_at_caller(
        f"naive2: {which} pass the seasonality test at m={m}, but their centred moving "
        "average is 0 somewhere (zeros between spikes), so the multiplicative seasonal "
        "indices do not exist: they get the naive forecast without seasonal adjustment, as "
        "series that fail the test do.",
        ForecasterWarning,
    )


def _check_output_size(series: _Series, horizon: int, name: str) -> None:
    """Refuse a baseline forecast of ``len(series) x horizon`` rows that would not fit in
    memory (:func:`forecaster._validation.check_allocation`), before allocating it."""
    n_series = len(series.lengths)
    rows = n_series * horizon
    per_row = 16 * len(series.targets) + 64  # the values and their copies, times, ids, indexes
    check_allocation(
        rows * per_row,
        what=f"The {name} forecast ({rows:,} rows)",
        grows_with=f"horizon={horizon:,} x {n_series:,} series",
        fix="Lower horizon, or forecast fewer series at a time.",
    )

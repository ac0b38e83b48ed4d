"""The blend partners of the ``baseline`` check (:mod:`~forecaster.estimators.baseline_blend`):
the seasonal naive of period ``m`` (the naive forecast for ``m = 1``), or the last value moved
along the window's mean season, each with or without the window's trend. :func:`partner_forecast`
forms one from whole input windows (the forecast path); :func:`origin_partners` and
:func:`known_partners` form every one from the validation origins of a packed panel, one at a
time, with running sums (the check)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.windows import known_windows, origins_in_runs
from forecaster.evaluation.baselines import origin_forecasts

__all__ = [
    "Partner",
    "drift_steps",
    "known_partners",
    "mean_season",
    "origin_partners",
    "partner_forecast",
    "partner_name",
    "repeat_season",
    "window_drift",
]


Partner = tuple[int, bool, bool]
"""A blend partner: the seasonal period ``m``, whether it moves on with the trend (``drift``)
and whether it is the last value moved along the mean season (``level``)."""


def repeat_season(tail: np.ndarray, m: int, horizon: int) -> np.ndarray:
    """The seasonal-naive forecast ``(B, horizon, k)`` from the last values ``tail``
    ``(B, L, k)`` (``L >= m``): step ``h`` (1-based) is the value ``m - ((h - 1) mod m)`` steps
    before the first forecast step, the formula of
    :func:`~forecaster.evaluation.baselines.origin_forecasts`.

    Examples
    --------
    >>> repeat_season(np.arange(4.0).reshape(1, 4, 1), 2, 3)[0, :, 0].tolist()
    [2.0, 3.0, 2.0]
    """
    return tail[:, tail.shape[1] - m + np.arange(horizon) % m]


def drift_steps(m: int, horizon: int) -> np.ndarray:
    """How many steps of trend each forecast step ``h`` of a seasonal naive with drift adds:
    ``m * ceil(h / m)`` (its source value lies that far back), shape ``(horizon,)``."""
    return m * np.ceil(np.arange(1, horizon + 1) / m)


def window_drift(first: np.ndarray, last: np.ndarray, lookback: int, m: int) -> np.ndarray:
    """The trend per step of windows of ``lookback`` values: the mean of their last ``m``
    values (``last``) minus that of their first ``m`` (``first``), over the ``lookback - m``
    steps between the two (``m = 1``: the drift method's slope from the first to the last
    value)."""
    return (last - first) / (lookback - m)


def mean_season(window: np.ndarray, m: int) -> np.ndarray:
    """The mean season ``(B, m, k)`` of input windows ``window`` ``(B, lookback, k)``: the
    mean of each phase over the ``lookback // m`` whole seasons that end the window; row ``j``
    is the phase of the window's step ``lookback - m + j``."""
    seasons = window.shape[1] // m
    tail = window[:, window.shape[1] - seasons * m :]
    return tail.reshape(tail.shape[0], seasons, m, *tail.shape[2:]).mean(axis=1)


def partner_forecast(
    window: np.ndarray, m: int, horizon: int, drift: bool, level: bool = False
) -> np.ndarray:
    """The blend's partner forecast ``(B, horizon, k)`` from whole input windows ``window``
    ``(B, lookback, k)``: the seasonal naive of period ``m`` (:func:`repeat_season`), or with
    ``level`` the last value moved along the window's mean season (:func:`mean_season`: step
    ``h`` is the last value plus the mean of ``h``'s phase minus that of the last value's, the
    seasonal profile of a noisy series without its noise, on its latest level). With
    ``drift``, either is moved on by the window's trend (:func:`window_drift`) for
    :func:`drift_steps` (the mean season holds the trend within a season, like the seasonal
    naive's last season). ``drift`` and ``level`` need ``lookback >= 2 * m``.

    Examples
    --------
    >>> window = np.array([0.0, 10, 1, 11, 2, 12]).reshape(1, 6, 1)  # period 2, +1 a season
    >>> partner_forecast(window, 2, 3, drift=True)[0, :, 0].tolist()
    [3.0, 13.0, 4.0]
    >>> partner_forecast(window, 2, 3, drift=False, level=True)[0, :, 0].tolist()
    [2.0, 12.0, 2.0]
    """
    if level:
        profile = mean_season(window, m)
        forecast = window[:, -1:] + profile[:, np.arange(horizon) % m] - profile[:, -1:]
    else:
        forecast = repeat_season(window, m, horizon)
    if not drift:
        return forecast
    lookback = window.shape[1]
    slope = window_drift(window[:, :m].mean(axis=1), window[:, -m:].mean(axis=1), lookback, m)
    return forecast + slope[:, None, :] * drift_steps(m, horizon)[None, :, None]


def partner_name(m: int, drift: bool, level: bool = False) -> str:
    """How warnings and errors name a blend partner.

    Examples
    --------
    >>> partner_name(24, drift=True), partner_name(1, drift=False)
    ('seasonal naive (m=24) with drift', 'naive forecast')
    >>> partner_name(24, drift=False, level=True)
    'last value moved along the mean season (m=24)'
    """
    if level:
        name = f"last value moved along the mean season (m={m})"
    else:
        name = f"seasonal naive (m={m})" if m > 1 else "naive forecast"
    return name + (" with drift" if drift else "")


def origin_partners(
    targets: np.ndarray,
    starts: np.ndarray,
    origins: np.ndarray,
    lookback: int,
    horizon: int,
    periods: list[int],
    center: np.ndarray | None = None,
) -> Iterator[tuple[Partner, np.ndarray]]:
    """Every blend partner's forecasts ``(B, horizon, T)``, one at a time (each as large as
    the validation forecasts), from the windows of ``lookback`` rows ending at ``origins`` of
    the packed ``targets`` (``starts``: the first row of each origin's series): the seasonal
    naive of each of ``periods`` and 1, then each with drift where the window holds two of its
    seasons, then the last value moved along the mean season of each of ``periods`` that fits
    twice, without and with drift: the formulas of :func:`partner_forecast` without gathering
    the windows (means from running sums). ``center`` (like ``targets``, constant within each
    series, e.g. its mean) is taken off before the running sums, so that a series of a large
    level does not swamp the sums of the small ones after it in the panel."""
    seasons = (*periods, 1)
    for m in seasons:
        yield (m, False, False), origin_forecasts(targets, starts, origins, horizon, m)
    shifted = np.asarray(targets, dtype=np.float64)
    if center is not None:
        shifted = shifted - center
    sums = np.zeros((len(shifted) + 1, targets.shape[1]))  # [r]: the sum of rows before r
    np.cumsum(shifted, axis=0, out=sums[1:])  # in place: no other array as large

    def block_mean(first_row: np.ndarray, m: int) -> np.ndarray:
        return (sums[first_row + m] - sums[first_row]) / m

    twice = [m for m in seasons if 2 * m <= lookback]
    slopes = {  # (B, 1, T) per period, shared by the seasonal naive's and the mean season's drift
        m: window_drift(
            block_mean(origins - lookback + 1, m), block_mean(origins - m + 1, m), lookback, m
        )[:, None, :]
        for m in twice
    }

    def trend(m: int) -> np.ndarray:
        return slopes[m] * drift_steps(m, horizon)[None, :, None]

    for m in twice:
        yield (m, True, False), origin_forecasts(targets, starts, origins, horizon, m) + trend(m)
    offset = 0.0 if center is None else center[origins][:, None, :]
    for m in (m for m in twice if m > 1):  # with m = 1 it is the naive
        level = _origin_mean_season(shifted, origins, lookback, horizon, m) + offset
        yield (m, False, True), level
        yield (m, True, True), level + trend(m)


def known_partners(
    raw: Panel,
    series: np.ndarray,
    origins: np.ndarray,
    shape: tuple[int, int, list[int]],
    center: np.ndarray,
) -> Iterator[tuple[Partner, np.ndarray]]:
    """:func:`origin_partners` of the targets of ``raw`` from the windows ending at the
    global rows ``origins`` (of ``series``; ``shape``: lookback, horizon and periods), each
    window as known at its origin: the origins whose own value ``missing="interpolate"``
    filled are forecast again from their windows gathered by
    :meth:`~forecaster.data.panel.Panel.known_values` (packed one after the other)."""
    lookback, horizon, periods = shape
    nt = raw.n_targets
    targets, starts = raw.values[:, :nt], raw.offsets[series]
    partners = origin_partners(targets, starts, origins, lookback, horizon, periods, center)
    inside = origins_in_runs(raw, origins)
    if inside.size == 0:
        yield from partners
        return
    packed = known_windows(raw, origins[inside], lookback, starts[inside])
    own = origin_partners(
        packed.values,
        packed.starts,
        packed.origins,
        lookback,
        horizon,
        periods,
        center[packed.rows].reshape(-1, nt),
    )
    for (partner, forecasts), (_, corrected) in zip(partners, own, strict=True):
        forecasts[inside] = corrected
        yield partner, forecasts


def _origin_mean_season(
    targets: np.ndarray, origins: np.ndarray, lookback: int, horizon: int, m: int
) -> np.ndarray:
    """The last value moved along the mean season of period ``m`` (:func:`partner_forecast`
    with ``level``) from the windows ending at ``origins``: each phase's sum over the
    window's ``lookback // m`` last seasons from running sums taken every ``m`` rows."""
    rows, width = targets.shape
    strided = np.zeros((m + -(-rows // m) * m, width))  # [m + r]: y[r] + y[r - m] + ...
    strided[m : m + rows] = targets
    every_m = strided[m:].reshape(-1, m, width)
    np.cumsum(every_m, axis=0, out=every_m)  # in place: no other array as large
    seasons = lookback // m

    def phase_mean(last_row: np.ndarray) -> np.ndarray:
        return (strided[m + last_row] - strided[m + last_row - seasons * m]) / seasons

    last_rows = origins[:, None] - m + 1 + np.arange(horizon) % m  # each step's phase
    last = targets[origins].astype(np.float64)
    return (last - phase_mean(origins))[:, None, :] + phase_mean(last_rows)

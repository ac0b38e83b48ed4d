"""Seasonal periods of a sampling frequency or of the data, and the lookback
``lookback="auto"`` chooses.

:func:`seasonal_periods` are the cycles a frequency implies (a day and a week of hourly steps,
...); :func:`season_length` is the main seasonal period of a frequency in steps: a day of sub-daily
steps, a week of days (7) or business days (5), a year of weeks (52), months (12) or quarters
(4), also for multiples that divide them (``"14d"``: 26), and 1 where no cycle is implied
(years, integer steps, steps that divide no day, week or year such as ``"3d"``).

:func:`auto_lookback` is the input window an estimator with ``lookback="auto"`` gets: a span
that holds several seasonal cycles, and at least the horizon. Sub-daily data gets two weeks of
steps (hourly: 336, the lookback of the best ETTh1 results), daily data eight weeks (56),
business days twelve weeks (60), weekly data a year (52), monthly three years (36), quarterly
four years (16), the same span (at least 16 steps) for a multiple of a unit whose cycle it
divides (``"2mo"``: 18; ``"5mo"`` divides no year: as integer steps) and for every spelling
of a step (``"24h"`` as ``"1d"``, ``"7d"`` as ``"1w"``:
:func:`~forecaster.data.frequency.canonical_frequency`); data whose frequency implies no cycle
(integer steps, years) four cycles of
the season :func:`detect_season` finds in it, at least 96 steps; at most 720 steps (SegRNN's
lookback on ETT) and at least the horizon, within that cap. When the data is shorter than
that, the lookback shrinks to half of what a typical series (the median length) has left for
training, so that it still yields training windows.

:func:`detect_season` finds the seasonal period of data whose frequency implies none
(:func:`panel_seasons` asks it then): the lag whose seasonal naive beats the naive forecast by
the widest margin, pooled over the series and targets, when that margin is clear.
"""

from __future__ import annotations

__all__ = [
    "MAX_AUTO_LOOKBACK",
    "MAX_DETECTED_SEASON",
    "MAX_SEASON_RATIO",
    "auto_lookback",
    "detect_season",
    "panel_seasons",
    "season_length",
    "seasonal_periods",
    "shown_periods",
    "steps_per_day",
]

import numpy as np

from forecaster.data.frequency import FIXED_UNITS_NS, Frequency, canonical_frequency
from forecaster.data.panel import Panel

MAX_AUTO_LOOKBACK = 720
"""The longest window ``lookback="auto"`` chooses."""

_DAY_NS = FIXED_UNITS_NS["d"]
_SUB_DAILY_SPAN_NS = 14 * _DAY_NS  # sub-daily steps: two weeks of history
_SPAN_STEPS = {"d": 56, "bd": 60, "w": 52, "mo": 36, "q": 16}  # in steps of one unit
_MIN_SPAN_STEPS = 16  # a long step's span still gets a few steps ("26w": 16, not 2)
_DEFAULT_LOOKBACK = 96  # integer steps and years: no cycle to go by
_CYCLES_OF_DETECTED = 4  # integer steps with a detected season: four cycles (at least 96)

MAX_DETECTED_SEASON = MAX_AUTO_LOOKBACK // 2
"""The longest period :func:`detect_season` finds (two cycles fit the longest lookback)."""

MAX_SEASON_RATIO = 0.8
"""A detected period's seasonal naive must err at most this share of the naive forecast's
error over a cycle ahead (see :func:`detect_season`)."""

_SHOWN_ORIGINS = 200_000  # :func:`shown_periods` reads at most this many origins
_SHOWN_MARGIN = 0.9  # and keeps a longer period only when it errs 10 % less than the main one

_DETECTION_SERIES = 256  # at most this many series (evenly spaced) are read for detection
_DETECTION_VALUES = 60_000  # and about this many values in all (each series' latest rows)
_NEAR_BEST = 1.1  # a shorter period within 10 % of the best score wins (not its multiples)


_NS = {u: ns for u, ns in FIXED_UNITS_NS.items() if u != "w"}  # a week's cycle: _CYCLES
_CYCLES = {"w": 52, "mo": 12, "q": 4, "bd": 5}  # weeks, months, quarters a year; weekdays


def seasonal_periods(freq: Frequency) -> tuple[int, ...]:
    """The seasonal periods of a frequency in steps, the main one first: a day and a week of
    sub-daily steps (24 and 168 hourly, 48 and 336 half-hourly), a week of days (7), a year
    of weeks (52), months (12) or quarters (4), a week of business days (5); none for years
    and integer steps. Only whole numbers of steps above 1 (``"2mo"``: 6, ``"5mo"``: none);
    every spelling of a step alike (``"7d"`` as ``"1w"``:
    :func:`~forecaster.data.frequency.canonical_frequency`).

    Examples
    --------
    >>> [seasonal_periods(Frequency.parse(f)) for f in ("1h", "30m", "1d", "1mo", "1y", "1i")]
    [(24, 168), (48, 336), (7,), (12,), (), ()]
    >>> seasonal_periods(Frequency.parse("7d")), seasonal_periods(Frequency.parse("7h"))
    ((52,), (24,))
    """
    freq = canonical_frequency(freq)
    n, unit = freq.n, freq.unit
    if unit in _NS:
        step = n * _NS[unit]
        cycles = [c for c in (_NS["d"], 7 * _NS["d"]) if c % step == 0]
        return tuple(c // step for c in cycles if c // step > 1)
    cycle = _CYCLES.get(unit, 0)
    return (cycle // n,) if cycle % n == 0 and cycle // n > 1 else ()


def season_length(freq: Frequency) -> int:
    """The main seasonal period of ``freq`` in steps (the first of :func:`seasonal_periods`),
    1 when none is implied.

    Examples
    --------
    >>> [season_length(Frequency.parse(f)) for f in ("1h", "15m", "1d", "1bd", "1w", "1mo")]
    [24, 96, 7, 5, 52, 12]
    >>> season_length(Frequency.parse("1i")), season_length(Frequency.parse("2d"))
    (1, 1)
    """
    periods = seasonal_periods(freq)
    return periods[0] if periods else 1


def steps_per_day(freq: Frequency) -> int:
    """The steps in a day of sub-daily ``freq`` (hourly: 24), 1 for daily and coarser steps,
    integer steps and steps that divide no day.

    Examples
    --------
    >>> [steps_per_day(Frequency.parse(f)) for f in ("1h", "15m", "60m", "1d", "1w", "1i")]
    [24, 96, 24, 1, 1, 1]
    >>> steps_per_day(Frequency.parse("7m")), steps_per_day(Frequency.parse("20s"))
    (1, 4320)
    """
    freq = canonical_frequency(freq)
    if not _sub_daily(freq):
        return 1
    step = FIXED_UNITS_NS[freq.unit] * freq.n
    return _DAY_NS // step if _DAY_NS % step == 0 else 1


def _sub_daily(freq: Frequency) -> bool:
    return freq.unit in FIXED_UNITS_NS and FIXED_UNITS_NS[freq.unit] * freq.n < _DAY_NS


def _frequency_span(freq: Frequency) -> int:
    """The lookback in steps that the cycles of ``freq`` ask for (0 when it implies none): two
    weeks of sub-daily steps, eight weeks of days, twelve of business days, a year of weeks,
    three years of months, four of quarters, for a multiple whose cycle it divides too
    (``"2mo"``: 18 steps), and at least 16 steps (``"26w"``: 16, not 2)."""
    freq = canonical_frequency(freq)
    if not seasonal_periods(freq):
        return 0
    if _sub_daily(freq):
        return _SUB_DAILY_SPAN_NS // (FIXED_UNITS_NS[freq.unit] * freq.n)
    return max(_SPAN_STEPS.get(freq.unit, 0) // freq.n, _MIN_SPAN_STEPS)


def auto_lookback(
    freq: Frequency, horizon: int, lengths: np.ndarray, holdout: int, detected: int = 1
) -> int:
    """The lookback ``lookback="auto"`` chooses for data of frequency ``freq`` whose series
    have ``lengths`` rows, ``holdout`` of them (a typical series') held out for validation;
    ``detected``: the data's main seasonal period (:func:`panel_seasons`), used when
    ``freq`` implies no cycle (:func:`seasonal_periods` is empty).

    Examples
    --------
    >>> import numpy as np
    >>> long = np.array([10_000])
    >>> [auto_lookback(Frequency.parse(f), 24, long, 0) for f in ("1h", "1d", "1mo", "1i")]
    [336, 56, 36, 96]
    >>> auto_lookback(Frequency.parse("1h"), 720, long, 0)
    720
    >>> auto_lookback(Frequency.parse("1mo"), 12, np.array([60]), 12)  # a short history
    18
    >>> auto_lookback(Frequency.parse("1i"), 24, long, 0, detected=50)  # four detected cycles
    200
    >>> [auto_lookback(Frequency.parse(f), 7, long, 0) for f in ("24h", "7d", "3mo", "2mo")]
    [56, 52, 16, 18]
    """
    wanted = _frequency_span(freq)
    if not wanted and detected > 1:
        wanted = max(_CYCLES_OF_DETECTED * int(detected), _DEFAULT_LOOKBACK)
    elif not wanted:
        wanted = _DEFAULT_LOOKBACK
    wanted = min(max(wanted, int(horizon)), MAX_AUTO_LOOKBACK)
    typical = int(np.median(lengths)) if len(lengths) else 0
    room = (typical - int(horizon) - int(holdout)) // 2
    return max(1, min(wanted, room))


def detect_season(
    values: np.ndarray,
    offsets: np.ndarray,
    ends: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> int:
    """The seasonal period found in the data, 1 when none is clear: the lag ``m`` whose
    seasonal-naive error (``mean |y[t] - y[t - m]|``) is lowest against the naive forecast's
    error over the same ``m`` steps ahead (``mean |y[t] - y[t - h]|`` averaged over ``h = 1..m``)
    is at most :data:`MAX_SEASON_RATIO` and whose mean ratio at ``m``, ``2m`` and ``3m`` is a
    local minimum; of those, the shortest whose mean ratio is within 10 % of the lowest or
    that divides the best one (give or take a step), so that a season beats its multiples
    (a day beats a week of hourly data) and a neighbouring lag. Errors are pooled over the
    series (up to 256, evenly spaced, their latest rows, at least 1,440 each, about 60,000
    values in all;
    each without its mean drift and scaled by its mean absolute step-to-step change) and the
    columns of ``values``; periods from 2 to :data:`MAX_DETECTED_SEASON`, with at least four
    cycles in a typical series. A trend, a random walk or white noise has no lag that beats
    the naive this way.

    Parameters
    ----------
    values : numpy.ndarray
        ``(rows, k)``: the series' values one under another (a panel's targets).
    offsets : numpy.ndarray
        ``(n_series + 1,)``: series ``i`` is rows ``offsets[i]`` to ``offsets[i + 1]``.
    ends : numpy.ndarray, optional
        ``(n_series,)``: read series ``i`` only up to row ``ends[i]`` (e.g. before a
        validation hold-out); default: to its end.
    starts : numpy.ndarray, optional
        ``(n_series,)``: and only from row ``starts[i]`` (e.g. a sliding training span);
        default: from its first row.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(600)
    >>> noise = np.random.default_rng(0).normal(size=600)
    >>> daily = np.sin(2 * np.pi * t / 24) + 0.2 * noise
    >>> detect_season(daily[:, None], np.array([0, 600]))
    24
    >>> detect_season(np.cumsum(noise)[:, None], np.array([0, 600]))  # a random walk
    1
    """
    x, same, typical = _scaled_rows(values, offsets, ends, starts)
    lags = min(2 * MAX_DETECTED_SEASON, typical // 2)
    if lags < 3:
        return 1
    errors = np.full(lags + 1, np.nan)
    for m in range(1, lags + 1):
        pairs = same[m:] == same[:-m]
        if pairs.any():
            errors[m] = np.abs(x[m:] - x[:-m])[pairs].mean()
    return _best_season(errors)


def _scaled_rows(
    values: np.ndarray,
    offsets: np.ndarray,
    ends: np.ndarray | None,
    starts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The rows :func:`detect_season` reads, each series and column without its mean drift
    per step and divided by its mean absolute change (``(rows, k)`` float32), a label per row
    that differs between series, and the median length of the series read."""
    n_series = len(offsets) - 1
    begins = offsets[:-1] if starts is None else np.clip(starts, offsets[:-1], offsets[1:])
    stops = offsets[1:] if ends is None else np.clip(ends, begins, offsets[1:])
    rows = 4 * MAX_DETECTED_SEASON  # four cycles of the longest period: a series' latest rows
    typical = int(np.median(stops - begins)) if n_series else 0
    budget = _DETECTION_VALUES // (max(1, min(typical, rows)) * max(1, values.shape[1]))
    count = min(n_series, _DETECTION_SERIES, max(1, budget))
    picked = np.unique(np.linspace(0, max(n_series - 1, 0), count))
    rows = max(rows, _DETECTION_VALUES // max(1, len(picked) * values.shape[1]))  # a few: longer
    parts, labels = [], []
    for i in picked.round().astype(np.int64):
        first = max(begins[i], stops[i] - rows)
        part = np.asarray(values[first : stops[i]], dtype=np.float64)
        if len(part) < 2:
            continue
        steps = np.diff(part, axis=0)
        drift = steps.mean(axis=0)  # a straight trend would favour shorter lags: taken out
        part = part - drift * np.arange(len(part))[:, None]
        change = np.abs(steps - drift).mean(axis=0)
        parts.append((part / np.where(change > 0, change, 1.0)).astype(np.float32))
        labels.append(np.full(len(part), i))
    if not parts:
        return np.zeros((0, values.shape[1]), np.float32), np.zeros(0, dtype=np.int64), 0
    typical = int(np.median([len(p) for p in parts]))
    return np.concatenate(parts), np.concatenate(labels), typical


def _best_season(errors: np.ndarray) -> int:
    """The period :func:`detect_season` picks from the pooled seasonal-naive ``errors`` by lag
    (index ``m``; ``errors[0]`` unused)."""
    lags = len(errors) - 1
    if not errors[1] > 0:  # no step-to-step change at all: nothing repeats
        return 1
    naive = np.nancumsum(errors[1:]) / np.arange(1, lags + 1)  # naive error over 1..m ahead
    ratio = np.full(lags + 2, np.inf)  # ratio[lags + 1]: a sentinel neighbour
    ratio[1:-1] = np.nan_to_num(errors[1:] / naive, nan=np.inf)  # a lag without pairs: inf
    # a season's multiples beat the naive too: the mean ratio over a lag's first three
    # multiples is lowest at the season itself, not at a neighbour that looks good only once
    periods = np.arange(2, lags // 2 + 1)  # with a second cycle among the lags
    comb = np.full(lags // 2 + 2, np.inf)
    for m in range(2, lags // 2 + 1):
        comb[m] = ratio[m : min(3 * m, lags) + 1 : m].mean()
    lows = periods[(comb[periods] <= comb[periods - 1]) & (comb[periods] <= comb[periods + 1])]
    lows = lows[ratio[lows] <= MAX_SEASON_RATIO]
    if len(lows) == 0:
        return 1
    best = lows[np.argmin(comb[lows])]
    multiples = np.round(best / lows)
    divides = np.abs(best - multiples * lows) <= 1  # best is (about) a multiple of the low
    return int(lows[(comb[lows] <= _NEAR_BEST * comb[best]) | divides].min())


def panel_seasons(
    panel: Panel, ends: np.ndarray | None = None, starts: np.ndarray | None = None
) -> tuple[int, ...]:
    """The seasonal periods of ``panel``, the main one first: its frequency's
    (:func:`seasonal_periods`), or when the frequency implies none (integer steps, years, a
    step that does not divide a day or a week) the one :func:`detect_season` finds in its
    targets, read up to row ``ends[i]`` of each series (before a validation hold-out) and
    from row ``starts[i]`` (a sliding training span); empty
    when neither gives one.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from forecaster.data import Panel
    >>> t = np.arange(480)
    >>> frame = pl.DataFrame({"t": t, "y": np.sin(2 * np.pi * t / 12)})
    >>> panel_seasons(Panel.from_frame(frame, target="y", time_col="t"))
    (12,)
    """
    periods = seasonal_periods(panel.freq)
    if periods:
        return periods
    if ends is not None:  # "interpolate": the rows before each end as known there
        panel = panel.known_at(np.asarray(ends, dtype=np.int64) - 1)
    season = detect_season(panel.values[:, : panel.n_targets], panel.offsets, ends, starts)
    return (season,) if season > 1 else ()


def shown_periods(
    panel: Panel, rows: np.ndarray, periods: list[int], horizon: int, scales: np.ndarray
) -> list[int]:
    """``periods`` (the main one first) without the longer ones the data do not show: a
    period after the first stays only when its seasonal naive forecasts ``horizon`` steps
    ahead at least 10 % better (mean absolute error) than the first period's over the panel's
    ``rows`` (a boolean mask of leading rows: those before a validation hold-out), from every
    origin of every series and target (at most 200,000, evenly spaced), each error scaled by
    its series' and target's ``scales`` ``(n_series, n_targets)``. Hourly data whose weeks do
    not repeat (a week ago is no better a guess than a day ago) keep only the day; a few
    validation windows in which a week happens to repeat cannot then choose it.

    Examples
    --------
    >>> import polars as pl
    >>> t = np.arange(24 * 7 * 6)
    >>> daily = np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).normal(size=t.size)
    >>> weekly = daily + (t // 24 % 7 >= 5)  # weekends sit higher
    >>> def frame(y):
    ...     return Panel.from_frame(pl.DataFrame({"t": t, "y": y}), target="y", time_col="t")
    >>> rows, ones = np.ones(t.size, dtype=bool), np.ones((1, 1))
    >>> shown_periods(frame(daily), rows, [24, 168], 24, ones)
    [24]
    >>> shown_periods(frame(weekly), rows, [24, 168], 24, ones)
    [24, 168]
    """
    if len(periods) < 2:
        return list(periods)
    steps = np.arange(1, int(horizon) + 1)
    lags = {m: m * np.ceil(steps / m).astype(np.int64) for m in periods}
    first = max(int(lag.max()) for lag in lags.values())  # the same origins for every period
    starts = panel.offsets[:-1]
    counts = np.maximum(panel.leading_ends(rows) - starts - first, 0)  # origins per series
    total = int(counts.sum())
    if total == 0:
        return [periods[0]]
    picked = np.arange(total)
    if total > _SHOWN_ORIGINS:  # a large panel: evenly spaced origins, the same cost
        picked = np.linspace(0, total - 1, _SHOWN_ORIGINS).round().astype(np.int64)
    ends = np.cumsum(counts)
    series = np.searchsorted(ends, picked, side="right")
    at = starts[series] + first + picked - (ends - counts)[series]
    targets = panel.known_through(rows).values[:, : panel.n_targets]  # as known at the end
    now, scale = targets[at].astype(np.float64), scales[series]
    errors = {}
    for m, lag in lags.items():
        backs, counts_of = np.unique(lag, return_counts=True)
        errors[m] = sum(
            count * float((np.abs(now - targets[at - back]) / scale).mean())
            for back, count in zip(backs, counts_of, strict=True)
        )
    main = errors[periods[0]] * _SHOWN_MARGIN
    return [periods[0], *(m for m in periods[1:] if errors[m] < main)]

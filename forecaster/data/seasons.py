"""Seasonal periods of a sampling frequency, and the lookback ``lookback="auto"`` chooses.

:func:`season_length` is the main seasonal period of a frequency in steps: a day of sub-daily
steps, a week of days (7) or business days (5), a year of weeks (52), months (12) or quarters
(4), and 1 where no cycle is implied (years, integer steps, multi-day steps).

:func:`auto_lookback` is the input window an estimator with ``lookback="auto"`` gets: a span
that holds several seasonal cycles, and at least the horizon. Sub-daily data gets two weeks of
steps (hourly: 336, the lookback of the best ETTh1 results), daily data eight weeks (56),
business days twelve weeks (60), weekly data a year (52), monthly three years (36), quarterly
four years (16); at most 720 steps (SegRNN's lookback on ETT) and at least the horizon, within
that cap. When the data is shorter than that, the lookback shrinks to half of what a typical
series (the median length) has left for training, so that it still yields training windows.
"""

from __future__ import annotations

__all__ = ["MAX_AUTO_LOOKBACK", "auto_lookback", "season_length"]

import numpy as np

from forecaster.data.frequency import FIXED_UNITS_US, Frequency

MAX_AUTO_LOOKBACK = 720
"""The longest window ``lookback="auto"`` chooses."""

_DAY_US = 86_400_000_000
_WEEKS_OF_HISTORY = {"sub-daily": 2, "d": 8, "bd": 12}
_CYCLES_OF_HISTORY = {"w": 1, "mo": 3, "q": 4}
_DEFAULT_LOOKBACK = 96  # integer steps and years: no cycle to go by


def season_length(freq: Frequency) -> int:
    """The main seasonal period of ``freq`` in steps (1 when none is implied).

    Examples
    --------
    >>> [season_length(Frequency.parse(f)) for f in ("1h", "15m", "1d", "1bd", "1w", "1mo")]
    [24, 96, 7, 5, 52, 12]
    >>> season_length(Frequency.parse("1i")), season_length(Frequency.parse("2d"))
    (1, 1)
    """
    if _sub_daily(freq):
        per_day = _DAY_US / (FIXED_UNITS_US[freq.unit] * freq.n)
        return int(per_day) if float(per_day).is_integer() and per_day >= 2 else 1
    if freq.n != 1:
        return 1
    return {"d": 7, "bd": 5, "w": 52, "mo": 12, "q": 4}.get(freq.unit, 1)


def _sub_daily(freq: Frequency) -> bool:
    return freq.unit in FIXED_UNITS_US and FIXED_UNITS_US[freq.unit] * freq.n < _DAY_US


def auto_lookback(freq: Frequency, horizon: int, lengths: np.ndarray, holdout: int) -> int:
    """The lookback ``lookback="auto"`` chooses for data of frequency ``freq`` whose series
    have ``lengths`` rows, ``holdout`` of them (a typical series') held out for validation.

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
    """
    season = season_length(freq)
    if season > 1 and _sub_daily(freq):  # weeks of days
        wanted = _WEEKS_OF_HISTORY["sub-daily"] * 7 * season
    elif freq.n == 1 and freq.unit in _WEEKS_OF_HISTORY:
        wanted = _WEEKS_OF_HISTORY[freq.unit] * season
    elif freq.n == 1 and freq.unit in _CYCLES_OF_HISTORY:
        wanted = _CYCLES_OF_HISTORY[freq.unit] * season
    else:
        wanted = _DEFAULT_LOOKBACK
    wanted = min(max(wanted, int(horizon)), MAX_AUTO_LOOKBACK)
    typical = int(np.median(lengths)) if len(lengths) else 0
    room = (typical - int(horizon) - int(holdout)) // 2
    return max(1, min(wanted, room))

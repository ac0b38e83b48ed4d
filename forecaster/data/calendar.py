"""Calendar features: which cycles a frequency can show, and their sine/cosine encodings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from forecaster._validation import CALENDAR_FEATURES, check
from forecaster.data.frequency import FIXED_UNITS_NS, Frequency, canonical_frequency
from forecaster.exceptions import DataValidationError

__all__ = ["CALENDAR_FEATURES", "calendar_features", "calendar_for_freq", "calendar_values"]

# CALENDAR_FEATURES (from the parameter table): calendar features, each encoded as a sine/cosine
# pair of its position in its cycle: ``minute`` of the hour, ``hour`` of the day (time of day,
# minutes included), ``dayofweek`` (hours included), ``dayofmonth``, ``dayofyear`` and ``month``
# of the year.

_AUTO_CALENDAR = {
    "ns": ("hour", "dayofweek"),
    "us": ("hour", "dayofweek"),
    "ms": ("hour", "dayofweek"),
    "s": ("hour", "dayofweek"),
    "m": ("hour", "dayofweek"),
    "h": ("hour", "dayofweek"),
    "d": ("dayofweek", "dayofyear"),
    "bd": ("dayofweek", "dayofyear"),
    "w": ("dayofyear",),
    "mo": ("month",),
    "q": ("month",),
    "y": (),
}

_CALENDAR_CYCLE_DAYS = {
    "minute": 1 / 24,
    "hour": 1.0,
    "dayofweek": 7.0,
    "dayofmonth": 28.0,
    "dayofyear": 365.0,
    "month": 365.0,
}
"""Shortest length in days of each feature's cycle (an hour, a day, a week, a month, a year):
sampled every cycle or less often, a feature is constant or aliased."""

_STEP_DAYS = {"mo": 28.0, "q": 89.0, "y": 365.0}
"""Shortest length in days of a month, quarter and year step."""


def _step_days(freq: Frequency) -> float:
    """Length in calendar days of one step of ``freq`` (the shortest, for months and longer).

    A business-day step is measured by the calendar span it covers: five business days are a
    week, so ``n`` business days are ``7 n / 5`` days (``"5bd"`` is as long as ``"1w"``).

    Examples
    --------
    >>> [_step_days(Frequency.parse(f)) for f in ("1bd", "5bd", "1w", "12h", "1mo")]
    [1.4, 7.0, 7.0, 0.5, 28.0]
    """
    if freq.unit == "bd":
        return freq.n * 7 / 5
    if freq.unit in _STEP_DAYS:
        return freq.n * _STEP_DAYS[freq.unit]
    return freq.n * FIXED_UNITS_NS[freq.unit] / FIXED_UNITS_NS["d"]


def calendar_features(
    calendar: str | Sequence[str] | None, freq: Frequency, time_dtype: pl.DataType
) -> tuple[str, ...]:
    """Resolve the ``calendar`` option of an estimator to feature names.

    Parameters
    ----------
    calendar : None, "auto", a name or a list of names from :data:`CALENDAR_FEATURES`
        ``"auto"`` picks the cycles that a frequency can show: time of day and day of week
        below a day, day of week and day of year for (business) days, day of year for weeks,
        month for months and quarters; refused when it finds none (years).
    freq : Frequency
        The panel's frequency. A feature whose cycle is not longer than one step (``"hour"``
        on daily data, ``"dayofweek"`` on weekly data, ``"dayofmonth"`` on monthly data) would
        be constant or aliased and is refused. A business-day step counts as the calendar days
        it spans (``"5bd"`` is a week, so it has no ``"dayofweek"``).
    time_dtype : polars.DataType
        Dtype of the time column: Date or Datetime (with or without time zone; features follow
        the local clock). Integer time steps have no calendar and are refused.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> calendar_features("auto", Frequency.parse("1h"), pl.Datetime("us"))
    ('hour', 'dayofweek')
    >>> calendar_features("auto", Frequency.parse("1d"), pl.Date)
    ('dayofweek', 'dayofyear')
    >>> calendar_features(["hour"], Frequency.parse("1d"), pl.Date)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: calendar feature 'hour' repeats every day, but \
the data are sampled every 1d: it would be constant or aliased. Drop it, or pass \
calendar='auto' (('dayofweek', 'dayofyear') for 1d).
    """
    calendar = check("calendar", calendar)
    if calendar is None:
        return ()
    if not time_dtype.is_temporal():
        raise DataValidationError(
            f"calendar={calendar!r} needs a Date or Datetime time column; the time column is "
            f"{time_dtype} (integer steps have no calendar). Convert it (e.g. "
            "pl.from_epoch(...) or .str.to_datetime()) or set calendar=None."
        )
    return calendar_for_freq(calendar, freq)


def calendar_for_freq(calendar: str | Sequence[str] | None, freq: Frequency) -> tuple[str, ...]:
    """The calendar features of ``calendar`` for data sampled every ``freq``, checked as
    :func:`calendar_features` checks them, without the time column: an estimator whose
    ``freq`` is declared checks its ``calendar`` with it before any data is read.

    Examples
    --------
    >>> calendar_for_freq("auto", Frequency.parse("1bd"))
    ('dayofweek', 'dayofyear')
    >>> calendar_for_freq(["hour"], Frequency.parse("1bd"))
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: calendar feature 'hour' repeats every day, but \
the data are sampled every 1bd: it would be constant or aliased. Drop it, or pass \
calendar='auto' (('dayofweek', 'dayofyear') for 1bd).
    """
    calendar = check("calendar", calendar)
    if calendar is None:
        return ()
    if freq.unit == "i":
        raise DataValidationError(
            f"calendar={calendar!r} needs a Date or Datetime time column; freq={str(freq)!r} "
            "is a step of integer time columns, which have no calendar. Declare the frequency "
            "of a Date or Datetime column (e.g. freq='1d'), or set calendar=None."
        )
    step = canonical_frequency(freq)  # every spelling of a step alike: 24h is 1d, 12mo is 1y
    auto = tuple(  # the features whose cycle is longer than one step
        n for n in _AUTO_CALENDAR.get(step.unit, ()) if _step_days(step) < _CALENDAR_CYCLE_DAYS[n]
    )
    if calendar == "auto":
        names: tuple[str, ...] = auto
        if not names:  # accepted, it would add nothing
            raise DataValidationError(
                f"calendar='auto' finds no calendar feature for data sampled every {freq}: "
                "every cycle a calendar feature follows (at most a year) is not longer than one "
                "step, so it would add nothing. Set calendar=None."
            )
    else:
        names = (calendar,) if isinstance(calendar, str) else tuple(calendar)
    cycles = {"minute": "hour", "hour": "day", "dayofweek": "week", "dayofmonth": "month"}
    for name in names:
        if _step_days(step) >= _CALENDAR_CYCLE_DAYS[name]:
            raise DataValidationError(
                f"calendar feature {name!r} repeats every {cycles.get(name, 'year')}, but the "
                f"data are sampled every {freq}: it would be constant or aliased. Drop it, or "
                f"pass calendar='auto' ({auto} for {freq})."
            )
    return names


def calendar_values(time: pl.Series, names: Sequence[str]) -> np.ndarray:
    """Sine/cosine encodings of the calendar features ``names`` for every timestamp.

    Returns a float32 array of shape ``(len(time), 2 * len(names))``: for each name its sine
    then its cosine column. Time zones are respected (local clock time).

    Examples
    --------
    >>> from datetime import datetime
    >>> t = pl.Series([datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 6)])
    >>> calendar_values(t, ["hour"]).round(3).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    t = pl.col("t")
    if time.dtype == pl.Date:  # midnight: no time of day
        hours = pl.lit(0.0)
        minutes = pl.lit(0.0)
    else:
        hours = t.dt.hour().cast(pl.Float64) + t.dt.minute() / 60.0
        minutes = t.dt.minute().cast(pl.Float64) + t.dt.second() / 60.0
    positions = {
        "minute": minutes / 60.0,
        "hour": hours / 24.0,
        "dayofweek": ((t.dt.weekday() - 1).cast(pl.Float64) + hours / 24.0) / 7.0,
        "dayofmonth": (t.dt.day() - 1).cast(pl.Float64) / t.dt.month_end().dt.day(),
        "dayofyear": (t.dt.ordinal_day() - 1).cast(pl.Float64)
        / pl.when(t.dt.is_leap_year()).then(366.0).otherwise(365.0),
        "month": (t.dt.month() - 1).cast(pl.Float64) / 12.0,
    }
    angles = pl.DataFrame({"t": time}).select((positions[n] * (2 * np.pi)).alias(n) for n in names)
    out = np.empty((len(time), 2 * len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        angle = angles[name].to_numpy()
        out[:, 2 * j] = np.sin(angle)
        out[:, 2 * j + 1] = np.cos(angle)
    return out

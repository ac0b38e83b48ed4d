"""The warning about the series that end before a run's as-of, and their fields of its
:class:`~forecaster.jobs.data.AsOf` (:func:`~forecaster.jobs.data.prepare_data` finds them:
:func:`~forecaster.jobs.schedule.stale_steps`).

The ``StaleSeriesWarning`` names how many series end before the as-of, the first five with
their last times and steps behind, what the ``[series] stale`` policy does with them (only
for a command that forecasts) and what to do about them in the keys of the spec's kind of
source; ``summary.json`` lists at most :data:`STALE_LISTED` of them (all are counted).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import polars as pl

from forecaster.data.frames import counted
from forecaster.exceptions import StaleSeriesWarning, warn_at_caller
from forecaster.jobs.schedule import iso_text, max_staleness
from forecaster.jobs.spec import Spec

__all__ = ["STALE_LISTED", "stale_fields", "warn_stale"]

STALE_LISTED = 1000
"""Most stale series named in ``summary.json`` (all are counted)."""


def warn_stale(
    table: pl.DataFrame,
    excluded: tuple[str, ...],
    spec: Spec,
    when: tuple[str, str],
    forecasts: bool,
) -> None:
    """Warn (``StaleSeriesWarning``) of the stale series of ``table`` (``id``, ``last``,
    ``steps``; the ``excluded`` of them left out of the forecast) before the as-of ``when``
    (its label, and the last time in the data used), naming the first five with their last
    times and steps and, for a command that ``forecasts``, what the stale policy does with
    them."""
    shown = ", ".join(
        f"{key} (last {iso_text(end)}) {steps} step{'' if steps == 1 else 's'} behind"
        for key, end, steps in table.head(5).iter_rows()
    )
    more = f" and {table.height - 5} more" if table.height > 5 else ""
    warn_at_caller(
        f"{counted(table.height, 'series ends', 'series end')} before the as-of {when[0]} "
        f"(the last time in the data used, {when[1]}): {shown}{more}. "
        f"{_policy(table.height, excluded, spec, forecasts)} "
        f"{_stale_advice(spec)}",
        StaleSeriesWarning,
    )


def _policy(stale: int, excluded: tuple[str, ...], spec: Spec, forecasts: bool) -> str:
    """What the stale policy does with the ``stale`` series (the ``excluded`` of them left
    out), in words; for a command that makes no forecast, that it makes none."""
    if not forecasts:
        return (
            "This command makes no forecast and uses their data as it is; a forecast (run, "
            "predict) starts each from its own last time or leaves it out (series.stale, "
            "max_staleness)."
        )
    if not excluded:
        return (
            "Each is forecast from its own last time, not from the as-of (stale_steps in "
            f"forecasts.parquet), {_unless_dropped(spec)}."
        )
    n = len(excluded)
    subject = "It ends" if stale == 1 else f"{'All' if n == stale else n} of them end"
    one = n == 1  # the verbs and pronouns of the excluded series
    policy = (
        f"{subject}{'s' if one and stale > 1 else ''} more than max_staleness="
        f"{max_staleness(spec)} steps before it and {'is' if one else 'are'} left out of the "
        f"forecast (series.stale = 'exclude'; 'forecast' forecasts {'it' if one else 'them'} "
        f"from {'its' if one else 'their'} last time)"
    )
    return policy + (
        "."
        if n == stale
        else "; the others are forecast from their own last time, dated before the as-of "
        f"(stale_steps in forecasts.parquet), {_unless_dropped(spec)}."
    )


_UNLESS_SHORT = (
    "unless it is too short for the model (fewer rows than its lookback: then it is dropped "
    "and not forecast, named in a warning and in a run's dropped_series)"
)
"""Why a stale series the stale policy would forecast may have no forecast: the warning
about stale series comes before the model is fitted (its lookback may depend on the data)."""


def _unless_dropped(spec: Spec) -> str:
    """:data:`_UNLESS_SHORT`, and with ``features.history_days`` a series with no row in its
    window (:func:`~forecaster.jobs.dropped.left_out_series`), which the stale policy would
    forecast too."""
    if spec.features.history_days is None:
        return _UNLESS_SHORT
    return (
        f"{_UNLESS_SHORT}, or it ends before the features.history_days window (none of its rows "
        "is used: named in a warning too)"
    )


def stale_fields(table: pl.DataFrame, left_out: Collection[str] = ()) -> dict[str, Any]:
    """The ``stale``, ``stale_count`` and ``stale_steps`` of :class:`AsOf` from the table of
    every stale series (``id``, ``last``, ``steps``), without the series ``left_out``."""
    if left_out:
        table = table.filter(~pl.col("id").is_in(list(left_out)))
    rows = [
        (key, iso_text(end), int(steps)) for key, end, steps in table.head(STALE_LISTED).iter_rows()
    ]
    return {
        "stale": tuple((key, end) for key, end, _ in rows),
        "stale_count": table.height,
        "stale_steps": tuple((key, steps) for key, _, steps in rows),
    }


def _stale_advice(spec: Spec) -> str:
    """What to do about stale series, in the keys of the spec's kind of source."""
    source = spec.source
    if source.dataset == "audio" or source.format == "wav":
        advice = "Clips of different lengths end at different frames, as expected of audio"
        if spec.series.stale != "forecast":
            advice += ": series.stale = 'forecast' forecasts each from its own end"
        if source.format == "wav":
            advice += "; a narrower source.path drops clips"
        return advice + "."
    drop = "source.tickers" if source.dataset == "stocks" else "a narrower source.path"
    return f"Drop them from the source ({drop}) or bring their data up to date."

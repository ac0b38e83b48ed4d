"""Values that validate but that the networks cannot learn from as given, each named in a
``ForecasterWarning``: series that float32 rounds flat (:func:`warn_flat_in_float32`, named by
:func:`~forecaster.data.validate.validate_frame`) and, named by ``fit``, covariates that
per-series scaling maps to 0 (:func:`warn_flat_covariates`) and targets far from unit scale
trained on with ``scaling="none"`` (:func:`warn_unscaled_targets`); and the per-series extremes
they read (:func:`series_extremes`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from forecaster.data.frames import SERIES_ID, format_list
from forecaster.exceptions import ForecasterWarning, warn_at_caller

__all__ = [
    "FLOAT32_STEPS",
    "UNSCALED_SPREAD",
    "series_extremes",
    "warn_flat_covariates",
    "warn_flat_in_float32",
    "warn_unscaled_targets",
]


FLOAT32_STEPS = 2.0**-16
"""A series whose values vary by less than this fraction of their size (fewer than about 128
float32 steps: 1e9 +- 10) loses its changes to float32's rounding; :func:`validate_frame` warns."""


UNSCALED_SPREAD = 100.0
"""With ``scaling="none"``, ``fit`` warns about a target whose typical spread is more than this
factor above or below 1 (:func:`warn_unscaled_targets`)."""


def series_extremes(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each series' largest and smallest values (per column of a 2-D ``values``): ``starts``
    are the first rows of the series, grouped; NaN is skipped (NaN for a series of NaN only).

    Examples
    --------
    >>> high, low = series_extremes(np.array([3.0, 1.0, np.nan, 5.0]), np.array([0, 2]))
    >>> high.tolist(), low.tolist()
    ([3.0, 5.0], [1.0, 5.0])
    """
    return np.fmax.reduceat(values, starts, 0), np.fmin.reduceat(values, starts, 0)


def warn_flat_covariates(
    values: np.ndarray,
    lengths: np.ndarray,
    names: Sequence[str],
    mask: np.ndarray | None,
    method: str,
) -> None:
    """Warn about covariates (the columns ``names`` of ``values``, series of ``lengths`` rows
    each) constant within every series over the rows ``mask`` selects (all rows when None): a
    per-series scaler (any ``method`` but ``"none"``) maps each series' constant to 0, so the
    network never sees their values."""
    if method == "none" or not names:
        return
    series = np.repeat(np.arange(len(lengths)), lengths)
    if mask is not None:
        values, series = values[mask], series[mask]
    if series.size == 0:
        return
    high, low = series_extremes(values, np.flatnonzero(np.r_[True, series[1:] != series[:-1]]))
    flat = [n for j, n in enumerate(names) if not np.nan_to_num(high[:, j] - low[:, j]).any()]
    if flat:
        warn_at_caller(
            f"Covariates {flat} are constant within every series over the training rows, and "
            f"scaling={method!r} scales each series to its own level, which maps them to 0: "
            "the network learns nothing from them. A value that differs between series is a "
            "static covariate (static_covariates=[...]); drop a column that never changes, or "
            "pass scaling='none'.",
            ForecasterWarning,
        )


def warn_flat_in_float32(
    data: pl.DataFrame, lengths: np.ndarray, id_name: str, value_cols: list[str]
) -> None:
    """Warn (naming the column and series) about series that float32, which the networks
    compute in, rounds flat: their forecasts come out flat (1e9 + 10 sin(t) in, 1e9 out).
    ``data``: grouped by series, ``lengths`` rows each (per-series extremes by ``reduceat``)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if not len(starts):
        return
    for c in value_cols:
        values = data[c].cast(pl.Float64).to_numpy()  # nulls: NaN, which fmax / fmin skip
        high, low = series_extremes(values, starts)
        spread, size = high - low, np.fmax(np.abs(high), np.abs(low))
        flat = np.flatnonzero((spread > 0) & (spread < size * FLOAT32_STEPS))
        if flat.size:
            ids = data[id_name].gather(starts[flat]).to_list()
            which = "" if id_name == SERIES_ID else f" of the series {format_list(ids)}"
            warn_at_caller(
                f"The values in {c!r}{which} vary by less than {FLOAT32_STEPS:.1e} of their "
                "size: float32, which training and forecasts compute in (about 7 digits), "
                "rounds their changes away, so the forecasts come out flat (a backtest and "
                "evaluate() score them against your values as given, not their float32 "
                "rounding, so their errors show it). Subtract a "
                f"constant first (e.g. pl.col({c!r}) minus its first value) and add it back "
                "to the forecasts.",
                ForecasterWarning,
            )


def warn_unscaled_targets(
    values: np.ndarray,
    lengths: np.ndarray,
    names: Sequence[str],
    mask: np.ndarray | None,
    method: str,
) -> None:
    """Warn when ``method`` is ``"none"`` about targets (the columns ``names`` of ``values``,
    as the network sees them: after the target transform; series of ``lengths`` rows each)
    whose typical spread (the median over series of their standard deviations over the rows
    ``mask`` selects, all rows when None) is more than :data:`UNSCALED_SPREAD` times above or
    below 1. The network, whose outputs start near unit size, then trains on them as they
    are: at a spread of 1e-6 the forecasts' MASE was 14,705 (2.2 at a spread of 1), at a
    spread of 1e6 2.3 (0.66 with ``scaling="standard"``)."""
    if method != "none" or not names:
        return
    series = np.repeat(np.arange(len(lengths)), lengths)
    if mask is not None:
        values, series = values[mask], series[mask]
    columns = {f"c{j}": values[:, j].astype(np.float64) for j in range(len(names))}
    data = pl.DataFrame({"s": series, **columns}, nan_to_null=True)
    spreads = data.group_by("s").agg(pl.exclude("s").std(ddof=0)).drop("s").to_numpy()
    for j, name in enumerate(names):
        spread = spreads[:, j].astype(np.float64)
        spread = spread[np.isfinite(spread) & (spread > 0)]  # constant series left out
        if not spread.size:
            continue
        typical = float(np.median(spread))
        if 1 / UNSCALED_SPREAD <= typical <= UNSCALED_SPREAD:
            continue
        if typical < 1:
            factor, side = 1 / typical, "below"
            effect = "so its forecasts can be off by about that factor (at a spread of 1e-6 "
            effect += "their errors were 1e4 times the seasonal naive's)"
        else:
            factor, side = typical, "above"
            effect = "too small to follow it (at a spread of 1e6 a MASE of 2.3, against 0.66 "
            effect += "with scaling='standard')"
        warn_at_caller(
            f"scaling='none' trains on the target {name!r} as it is, and its typical spread "
            "(the median over series of its standard deviation over the training rows, as "
            f"the network sees them: after target_transform) is {typical:.3g}, {factor:.2g} "
            f"times {side} 1. The network's outputs start near unit size, {effect}. Pass "
            "scaling='standard' (the default), 'robust' or 'minmax', or rescale the target "
            "to a spread near 1 yourself.",
            ForecasterWarning,
        )

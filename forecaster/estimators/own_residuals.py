"""The warning of ``calibrate(per_series=True)`` about the fitted series that do not get
intervals from their own residuals (:func:`warn_without_own`): how many residuals of its own
each series has (:func:`own_residuals`) and why some have too few (:func:`why_few`)."""

from __future__ import annotations

__all__ = ["own_residuals", "warn_without_own", "why_few"]

from typing import Any

import numpy as np
import polars as pl

from forecaster.estimators.intervals import MIN_PER_SERIES
from forecaster.exceptions import ForecasterWarning, warn_at_caller


def warn_without_own(conformal: dict[str, Any], folds: int, ids: pl.Series) -> None:
    """Warn (``per_series=True``) about the calibrated series (seen in fit, with residuals)
    that did not get the :data:`MIN_PER_SERIES` residuals at every horizon step (of every
    target, and model quantile) that intervals from their own residuals need: they use the
    pooled ones. One warning, naming them when others have enough (the first few, and how
    many), else saying that every series does, as with ``per_series=False``. A fold gives
    a series one residual per step, so fewer than :data:`MIN_PER_SERIES` folds never give
    any series enough. ``conformal``: the calibration's entries; ``folds``: its folds;
    ``ids``: the fitted series' ids (``keys_``)."""
    fewest = own_residuals(conformal, len(ids))  # per row of keys_: -1 for none at all
    calibrated = np.flatnonzero(fewest >= 0)
    short = calibrated[fewest[calibrated] < MIN_PER_SERIES]
    if len(calibrated) and len(short) == 0:
        return
    need = f"the {MIN_PER_SERIES} residuals per horizon step that intervals from its own"
    if len(short) == len(calibrated):  # every series (or none calibrated): all pooled
        most = int(fewest.max(initial=0))
        warn_at_caller(
            f"calibrate(per_series=True): no series has {need} residuals need (the "
            f"most: {most}; {why_few(folds, len(calibrated))}), so every "
            "series will use the pooled residuals, as with per_series=False. Pass "
            f"folds={MIN_PER_SERIES} or more (on series long enough for them) for "
            "per-series intervals, or per_series=False.",
            ForecasterWarning,
        )
        return
    order = short[np.argsort(fewest[short], kind="stable")]  # the fewest first
    shown = ", ".join(f"{ids[int(i)]!r}: {int(fewest[i])}" for i in order[:5])
    more = f", and {len(short) - 5} more" if len(short) > 5 else ""
    one = len(short) == 1
    warn_at_caller(
        f"calibrate(per_series=True): {len(short)} of the {len(calibrated)} calibrated "
        f"series {'has' if one else 'have'} fewer than {need} residuals need ({shown}"
        f"{more}; too few residuals of {'its' if one else 'their'} own: "
        f"{why_few(folds, len(calibrated))}), so "
        f"{'it' if one else 'they'} will use the pooled residuals; the other "
        f"{len(calibrated) - len(short)} their own. For intervals from "
        f"{'its' if one else 'their'} own residuals, calibrate on a frame in which "
        f"{'it reaches' if one else 'they reach'} every fold (with folds={MIN_PER_SERIES} "
        "or more), or pass per_series=False for pooled intervals for every series.",
        ForecasterWarning,
    )


def own_residuals(conformal: dict[str, Any], n_keys: int) -> np.ndarray:
    """Per fitted series (``n_keys`` rows of ``keys_``): the fewest residuals (not NaN) of the
    series at any horizon step (of every target, and model quantile), -1 for a series without
    calibration rows (not in the calibration frame, or too short for any fold)."""
    residuals, series = conformal["residuals"], conformal["series"]
    seen = series >= 0  # (-1: a series unseen in fit, which has no intervals of its own)
    # a column per (step, target, model quantile), counted: reshape(0, -1) cannot infer
    # it when no series of the frame was seen in fit (no rows)
    columns = int(np.prod(residuals.shape[1:]))
    observed = ~np.isnan(residuals[seen].reshape(int(seen.sum()), columns))
    counts = [
        np.bincount(series[seen], weights=observed[:, j], minlength=n_keys) for j in range(columns)
    ]
    fewest = np.min(counts, axis=0).astype(np.int64) if counts else np.zeros(n_keys, int)
    rows = np.bincount(series[seen], minlength=n_keys)
    return np.where(rows > 0, fewest, -1)


def why_few(folds: int, calibrated: int) -> str:
    """Why series got too few residuals of their own (:func:`warn_without_own`): ``folds``,
    the calibration's; ``calibrated``, how many fitted series have calibration rows."""
    if not calibrated:
        return "no series of the calibration frame was seen in fit"
    if folds < MIN_PER_SERIES:
        return f"each of the {folds} folds gives a series one residual per step"
    return (
        "the series are too short for the folds or, with calendar folds, end before some "
        "of their cutoffs, or missing= made up the actual values of their residuals, "
        "which are left out"
    )

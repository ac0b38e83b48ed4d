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
    """Warn (``per_series=True``) about the fitted series that did not get the
    :data:`MIN_PER_SERIES` residuals at every horizon step (of every target, and model
    quantile) that intervals from their own residuals need: those calibrated with too few and
    those with no calibration rows (not in the calibration frame, or too short for any fold).
    ``predict`` gives them intervals from the pooled residuals. Under
    ``normalize="series"`` a series without calibration rows gets none (it has no scale):
    ``calibrate``'s :class:`~forecaster.exceptions.NoResidualsWarning` names it, so it is
    not named again here (one warning per series). One warning, naming them when others
    have enough (the fewest first, and how many), else saying that every series uses the
    pooled ones, as with ``per_series=False``. A fold gives a series one residual per step,
    so fewer than :data:`MIN_PER_SERIES` folds never give any series enough.
    ``conformal``: the calibration's entries; ``folds``: its folds; ``ids``: the fitted
    series' ids (``keys_``)."""
    fewest = own_residuals(conformal, len(ids))  # per row of keys_: -1 for none at all
    calibrated = int((fewest >= 0).sum())
    scaled = conformal.get("normalize") == "series"
    named = (fewest < 0) & scaled  # told by calibrate's NoResidualsWarning
    pooled = np.flatnonzero((fewest < MIN_PER_SERIES) & ~named)
    if len(pooled) == 0:
        return
    need = f"the {MIN_PER_SERIES} residuals per horizon step that intervals from its own"
    own = len(ids) - int(named.sum()) - len(pooled)
    if own == 0:  # no series has its own: all pooled
        most = int(fewest.max(initial=0))
        warn_at_caller(
            f"calibrate(per_series=True): no series has {need} residuals need (the "
            f"most: {most}; {why_few(folds, calibrated)}), so every "
            f"series will use the pooled residuals, as with per_series=False. Pass "
            f"folds={MIN_PER_SERIES} or more (on series long enough for them) for "
            "per-series intervals, or per_series=False.",
            ForecasterWarning,
        )
        return
    order = pooled[np.argsort(fewest[pooled], kind="stable")]  # the fewest first
    shown = ", ".join(f"{ids[int(i)]!r}: {max(int(fewest[i]), 0)}" for i in order[:5])
    more = f", and {len(pooled) - 5} more" if len(pooled) > 5 else ""
    absent, short = int((fewest[pooled] < 0).sum()), int((fewest[pooled] >= 0).sum())
    said = _what_they_get(short, absent, why_few(folds, calibrated), scaled)
    one = len(pooled) == 1
    need = need.replace("its own", "its own" if one else "their own")
    warn_at_caller(
        f"calibrate(per_series=True): {len(pooled)} of the {len(ids)} fitted series "
        f"{_has(len(pooled))} fewer than {need} residuals need ({shown}{more}): {said}; "
        f"the other {own} {'uses its' if own == 1 else 'use their'} own. For intervals "
        f"from {'its' if one else 'their'} own residuals, calibrate on a frame that holds "
        f"{'it' if one else 'them'} in every fold (with folds={MIN_PER_SERIES} or more), or "
        "pass per_series=False for pooled intervals for every series.",
        ForecasterWarning,
    )


def _what_they_get(short: int, absent: int, why: str, scaled: bool) -> str:
    """What the warning of :func:`warn_without_own` says of the ``short`` fitted series
    with too few residuals of their own (``why``) and the ``absent`` ones without calibration
    rows (never under ``normalize="series"``, ``scaled``: named by ``calibrate``), and the
    intervals predict gives them: the pooled ones (scaled by a series' own spread)."""
    pooled = "intervals from the pooled residuals of the calibration frame" + (
        f", scaled by {'its' if short == 1 else 'their'} own spread" if scaled else ""
    )
    parts = []
    if short:
        parts.append(
            f"{short} {_has(short)} too few ({why}), so predict gives "
            f"{'it' if short == 1 else 'them'} {pooled}"
        )
    if absent:
        parts.append(
            f"{absent} {_has(absent)} no calibration rows (not in the calibration frame, or "
            f"too short for any fold), so {'it gets' if absent == 1 else 'they get'} "
            "intervals from the pooled residuals of the calibration frame"
        )
    return "; ".join(parts)


def _has(n: int) -> str:
    """The verb of ``n`` series: "has" for one, else "have"."""
    return "has" if n == 1 else "have"


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

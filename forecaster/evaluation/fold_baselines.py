"""The naive and seasonal-naive baselines' forecasts of every (fold, series) origin of a
rolling-origin backtest (see :mod:`forecaster.evaluation.backtest`), from the values up to
each origin as known there: what :mod:`forecaster.evaluation.fold_scores` scores beside the
model."""

from __future__ import annotations

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.windows import known_windows, origins_in_runs
from forecaster.evaluation.baselines import origin_forecasts
from forecaster.evaluation.folds import Folds
from forecaster.evaluation.pooling import scored_baselines
from forecaster.exceptions import ForecasterWarning, warn_at_caller

__all__ = ["baseline_forecasts"]


def baseline_forecasts(panel: Panel, where: Folds, horizon: int, m: int) -> dict[str, np.ndarray]:
    """The naive and (``m > 1``) seasonal-naive forecasts of every (fold, series) origin of
    ``where``, each ``(folds * n_kept * horizon, n_targets)`` in the rows of
    :func:`~forecaster.evaluation.folds.forecasts_frame`, from the series' values up to the origin
    (:func:`forecaster.evaluation.baselines.origin_forecasts`, one gather for all folds).
    An origin with fewer than ``m`` values has no seasonal-naive forecast (as
    :func:`~forecaster.evaluation.baselines.seasonal_naive` refuses a series shorter than
    ``m``): NaN at every step of it, with a warning; the scores leave such points out of the
    baseline's scores and of the skill ratios against it
    (:func:`~forecaster.evaluation.fold_scores.baseline_scores`)."""
    nt = panel.n_targets
    starts = np.tile(panel.offsets[where.kept], where.n_folds)[where.blocks]
    origins = (panel.offsets[where.kept][None, :] + where.local_cut).ravel()[where.blocks]
    out = {"naive": _known_origin_forecasts(panel, starts, origins, horizon, 1)}
    if "snaive" in scored_baselines(m):
        out["snaive"] = _known_origin_forecasts(panel, starts, origins, horizon, m)
        short = origins - starts < m - 1
        if short.any():
            out["snaive"][short] = np.nan  # not the steps that reach back m values only
            warn_at_caller(
                f"{int(short.sum())} of the {origins.size} (fold, series) origins have fewer "
                f"than m={m} values, so no seasonal-naive forecast: their snaive scores in "
                "result.metrics are NaN (n_snaive 0), and the pooled ones (by_step, aggregate, "
                "score()) and the skill ratios against snaive are over the other forecasts "
                "only, the model's score in each ratio too (n_snaive counts their points). "
                "Use a smaller m or fewer folds to compare every forecast.",
                ForecasterWarning,
            )
    return {k: v.reshape(-1, nt) for k, v in out.items()}


def _known_origin_forecasts(
    panel: Panel, starts: np.ndarray, origins: np.ndarray, horizon: int, m: int
) -> np.ndarray:
    """:func:`~forecaster.evaluation.baselines.origin_forecasts` of the panel's targets from
    the last ``m`` rows up to each origin, as known there: an origin inside a run that
    ``missing="interpolate"`` filled is forecast again from its packed window
    (:func:`~forecaster.data.windows.known_windows`)."""
    out = origin_forecasts(panel.values[:, : panel.n_targets], starts, origins, horizon, m)
    inside = origins_in_runs(panel, origins)
    if inside.size:
        packed = known_windows(panel, origins[inside], m, starts[inside])
        out[inside] = origin_forecasts(packed.values, packed.starts, packed.origins, horizon, m)
    return out

"""The single blend of the ``baseline`` check (:mod:`~forecaster.estimators.baseline_blend`):
:func:`choose_blend` scores every partner's blend ``w * network + (1 - w) * partner`` at each
weight of :data:`WEIGHTS` on the validation windows and keeps the best."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from forecaster.estimators.blend_partners import Partner

__all__ = ["FORM_MARGIN", "TIE", "WEIGHTS", "choose_blend"]

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
"""The network's weights tried in the blend, the network alone first (it wins ties)."""

TIE = 1e-6
"""Scaled errors (in units of the in-sample naive error) this close are equal in the choice of
the blend: what separates them is rounding, not skill."""

FORM_MARGIN = 0.01
"""A partner on the mean season replaces the choice before it (the seasonal naive or the naive,
with or without drift) only when its blend lowers the validation error by more than this
fraction: a smaller gain is within the noise of choosing among more partners (measured on the
ETT benchmark panels: mean-season gains of 0.1-0.2 % on validation that did not hold on the
test split). The drift partners, chosen without a margin since they came, keep competing
without one (with it, the audio job's backtest refits lost their drift partner: MAE 5.954 ->
6.243)."""


def choose_blend(
    model: np.ndarray,
    partners: Iterable[tuple[Partner, np.ndarray]],
    error: Callable[[np.ndarray], np.ndarray],
) -> tuple[Partner, tuple[float, ...], np.ndarray, dict[Partner, float]]:
    """The partner of ``partners`` (``(m, drift, level)`` and its forecasts ``(B, horizon,
    T)`` like ``model``, read one at a time) and per target the weight of :data:`WEIGHTS`
    whose blend has the lowest ``error``, those errors ``(T,)``, and each partner's own mean
    error (its blend at ``w = 0``). Ties (errors within :data:`TIE` of the lowest) go to the
    larger weight, then to the partner that comes first; a partner on the mean season must
    beat the choice before it by :data:`FORM_MARGIN`."""
    best: tuple[Partner, tuple[float, ...], np.ndarray] | None = None
    alone: dict[Partner, float] = {}
    for partner, forecast in partners:
        errors = np.stack([error(w * model + (1.0 - w) * forecast) for w in WEIGHTS])  # (W, T)
        pick = np.argmax(errors <= errors.min(axis=0) + TIE, axis=0)  # the first: larger w
        chosen = errors[pick, np.arange(len(pick))]
        alone[partner] = float(errors[WEIGHTS.index(0.0)].mean())
        margin = FORM_MARGIN if partner[2] else 0.0  # the mean season: see FORM_MARGIN
        if best is None or chosen.sum() < best[2].sum() * (1.0 - margin) - TIE:
            best = (partner, tuple(WEIGHTS[k] for k in pick), chosen)
    if best is None:
        raise ValueError("choose_blend needs at least one partner")
    return (*best, alone)

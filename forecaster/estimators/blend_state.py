"""The saved form of a model's ``baseline`` state (see
:mod:`~forecaster.estimators.baseline_blend`): the ``baseline`` entry of its config, written by
:func:`baseline_config` and read back, checked, by :func:`restore_baseline`.

The blend is saved as ``{"network": [T], "terms": [{"m", "drift", "level", "coefficients":
[T]}, ...]}``. Models saved before the pooled blend wrote one partner, ``{"m", "weights",
"drift", "level"}``; they load as the blend of that one partner
(:meth:`~forecaster.estimators.baseline_blend.BaselineBlend.single`), which forecasts the same
bits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecaster.estimators.baseline_blend import BaselineBlend, BlendTerm
from forecaster.estimators.blend_choice import WEIGHTS
from forecaster.persistence.format import count, short
from forecaster.persistence.state import StateError

__all__ = ["baseline_config", "restore_baseline"]

SUM_TOLERANCE = 1e-9
"""How far from 1 a target's saved coefficients (the network's and every term's) may sum."""


def baseline_config(estimator: Any) -> dict[str, Any]:
    """The ``baseline`` entry of a saved model's config: the blend and the validation report
    (none for a model without them, e.g. fitted with ``validation_size=0``)."""
    blend, report = (
        estimator.__dict__.get("baseline_"),
        estimator.__dict__.get("validation_baselines_"),
    )
    if blend is None and report is None:
        return {}
    if report is not None and not np.isfinite(report["skill"]):  # JSON has no inf: null
        report = {**report, "skill": None}  # the seasonal naive was exact, the network not
    return {"baseline": {"blend": None if blend is None else blend.config(), "validation": report}}


def restore_baseline(estimator: Any, entry: Any, n_targets: int) -> None:
    """Set ``baseline_``, ``validation_baselines_`` and ``validation_skill_`` from a saved
    ``baseline`` entry (None: a model saved without one, which forecasts with its network
    alone, as it did). Raises :class:`~forecaster.persistence.state.StateError` when the
    entry is not one :func:`baseline_config` writes."""
    estimator.baseline_ = estimator.validation_baselines_ = estimator.validation_skill_ = None
    if entry is None:
        return
    if not isinstance(entry, dict) or set(entry) != {"blend", "validation"}:
        raise StateError(f"the baseline entry is {short(entry)}; expected blend and validation")
    blend, report = entry["blend"], entry["validation"]
    if blend is not None:
        lookback = int(estimator.lookback_)
        if isinstance(blend, dict) and "network" in blend:
            estimator.baseline_ = _pooled_blend(blend, n_targets, lookback)
        else:
            estimator.baseline_ = _single_blend(blend, n_targets, lookback)
    if report is not None:
        if not isinstance(report, dict) or "skill" not in report:
            raise StateError(f"baseline.validation is {short(report)}; expected a report")
        skill = report["skill"]
        if skill is None:  # saved as null: infinite (baseline_config)
            report, skill = {**report, "skill": float("inf")}, float("inf")
        if not isinstance(skill, int | float) or isinstance(skill, bool):
            raise StateError(f"baseline.validation is {short(report)}; expected a report")
        estimator.validation_baselines_, estimator.validation_skill_ = report, float(skill)


def _single_blend(blend: Any, n_targets: int, lookback: int) -> BaselineBlend:
    """The blend of one partner that models saved before the pooled blend wrote:
    ``{"m", "weights", "drift", "level"}`` (drift and level missing in older ones)."""
    if not isinstance(blend, dict) or set(blend) - {"drift", "level"} != {"m", "weights"}:
        raise StateError(
            f"baseline.blend is {short(blend)}; expected network and terms (or, saved before "
            "the pooled blend, m, weights, drift and level)"
        )
    m = count(blend["m"], "baseline.blend.m", minimum=1)
    drift = blend.get("drift", False)  # saved before the drift partners: without
    level = blend.get("level", False)  # saved before the mean-season partners: without
    _check_partner(m, drift, level, lookback, "baseline.blend")
    weights = blend["weights"]
    if (
        not isinstance(weights, list)
        or len(weights) != n_targets
        or not all(w in WEIGHTS for w in weights)
    ):
        raise StateError(
            f"baseline.blend.weights is {short(weights)}; expected {n_targets} of {WEIGHTS}"
        )
    return BaselineBlend.single(m, tuple(float(w) for w in weights), drift, level)


def _pooled_blend(blend: dict[str, Any], n_targets: int, lookback: int) -> BaselineBlend:
    """The blend ``{"network": [T], "terms": [...]}`` that
    :meth:`~forecaster.estimators.baseline_blend.BaselineBlend.config` writes, checked: each
    term a partner within ``lookback`` (each once) with its coefficients, every coefficient
    in [0, 1] and each target's summing to 1."""
    if set(blend) != {"network", "terms"}:
        raise StateError(f"baseline.blend is {short(blend)}; expected network and terms")
    network = _coefficients(blend["network"], n_targets, "baseline.blend.network")
    terms, seen = blend["terms"], set()
    if not isinstance(terms, list) or not terms:
        raise StateError(f"baseline.blend.terms is {short(terms)}; expected a list of terms")
    kept = []
    for k, term in enumerate(terms):
        where = f"baseline.blend.terms[{k}]"
        if not isinstance(term, dict) or set(term) != {"m", "drift", "level", "coefficients"}:
            raise StateError(f"{where} is {short(term)}; expected m, drift, level, coefficients")
        m = count(term["m"], f"{where}.m", minimum=1)
        _check_partner(m, term["drift"], term["level"], lookback, where)
        if (m, term["drift"], term["level"]) in seen:
            raise StateError(f"{where} repeats the partner of an earlier term; expected each once")
        seen.add((m, term["drift"], term["level"]))
        shares = _coefficients(term["coefficients"], n_targets, f"{where}.coefficients")
        kept.append(BlendTerm(m, term["drift"], term["level"], shares))
    sums = [math.fsum(c) for c in zip(network, *(t.coefficients for t in kept), strict=True)]
    if any(abs(total - 1.0) > SUM_TOLERANCE for total in sums):
        raise StateError(
            f"baseline.blend's coefficients sum to {short(sums)} per target; expected 1 for "
            f"each (within {SUM_TOLERANCE:g}): the network's and every term's"
        )
    return BaselineBlend(network, tuple(kept))


def _coefficients(values: Any, n_targets: int, what: str) -> tuple[float, ...]:
    """``values`` when they are ``n_targets`` finite numbers in [0, 1], else StateError."""
    if (
        not isinstance(values, list)
        or len(values) != n_targets
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0
            for v in values
        )
    ):
        raise StateError(f"{what} is {short(values)}; expected {n_targets} numbers in [0, 1]")
    return tuple(float(v) for v in values)


def _check_partner(m: int, drift: Any, level: Any, lookback: int, where: str) -> None:
    """Refuse a saved partner whose flags are not true / false or whose period does not fit
    the model's ``lookback`` (twice with drift or level)."""
    for key, flag in (("drift", drift), ("level", level)):
        if not isinstance(flag, bool):
            raise StateError(f"{where}.{key} is {short(flag)}; expected true or false")
    if m * (2 if drift or level else 1) > lookback:
        needs = "2 * m (with drift or level)" if drift or level else "m"
        raise StateError(f"{where}.m is {m}: {needs} is beyond lookback={lookback}")

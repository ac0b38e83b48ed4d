"""The saved form of a model's ``baseline="auto"`` state (see
:mod:`~forecaster.estimators.baseline_blend`): the ``baseline`` entry of its config, written by
:func:`baseline_config` and read back, checked, by :func:`restore_baseline`."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecaster.estimators.baseline_blend import BaselineBlend
from forecaster.estimators.blend_choice import WEIGHTS
from forecaster.persistence.format import count, short
from forecaster.persistence.state import StateError

__all__ = ["baseline_config", "restore_baseline"]


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
        if not isinstance(blend, dict) or set(blend) - {"drift", "level"} != {"m", "weights"}:
            raise StateError(
                f"baseline.blend is {short(blend)}; expected m, weights, drift and level"
            )
        m = count(blend["m"], "baseline.blend.m", minimum=1)
        drift = blend.get("drift", False)  # saved before the drift partners: without
        level = blend.get("level", False)  # saved before the mean-season partners: without
        for key, flag in (("drift", drift), ("level", level)):
            if not isinstance(flag, bool):
                raise StateError(f"baseline.blend.{key} is {short(flag)}; expected true or false")
        weights = blend["weights"]
        if (
            not isinstance(weights, list)
            or len(weights) != n_targets
            or not all(w in WEIGHTS for w in weights)
        ):
            raise StateError(
                f"baseline.blend.weights is {short(weights)}; expected {n_targets} of {WEIGHTS}"
            )
        if m * (2 if drift or level else 1) > int(estimator.lookback_):
            needs = "2 * m (with drift or level)" if drift or level else "m"
            raise StateError(
                f"baseline.blend.m is {m}: {needs} is beyond lookback={estimator.lookback_}"
            )
        estimator.baseline_ = BaselineBlend(m, tuple(float(w) for w in weights), drift, level)
    if report is not None:
        if not isinstance(report, dict) or "skill" not in report:
            raise StateError(f"baseline.validation is {short(report)}; expected a report")
        skill = report["skill"]
        if skill is None:  # saved as null: infinite (baseline_config)
            report, skill = {**report, "skill": float("inf")}, float("inf")
        if not isinstance(skill, int | float) or isinstance(skill, bool):
            raise StateError(f"baseline.validation is {short(report)}; expected a report")
        estimator.validation_baselines_, estimator.validation_skill_ = report, float(skill)

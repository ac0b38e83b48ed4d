"""Frames in, panels and window indexes out: validation, frequencies, calendar features,
scaling and windows."""

from __future__ import annotations

from forecaster.data.core import (
    CALENDAR_FEATURES,
    MISSING_POLICIES,
    Frequency,
    Panel,
    calendar_features,
    calendar_values,
    check_roles,
    check_schema,
    check_unique_keys,
    check_values,
    collect_frame,
    frame_schema,
    future_times,
    infer_frequency,
    to_time_point,
    validate_frame,
)
from forecaster.data.scaling import (
    MIN_SCALE,
    SCALING_METHODS,
    TARGET_TRANSFORMS,
    PanelScaler,
    fit_boxcox_lambdas,
    inverse_targets,
    transform_targets,
)
from forecaster.data.windows import (
    Batch,
    Windows,
    make_windows,
)

__all__ = [
    "CALENDAR_FEATURES",
    "MIN_SCALE",
    "MISSING_POLICIES",
    "SCALING_METHODS",
    "TARGET_TRANSFORMS",
    "Batch",
    "Frequency",
    "Panel",
    "PanelScaler",
    "Windows",
    "calendar_features",
    "calendar_values",
    "check_roles",
    "check_schema",
    "check_unique_keys",
    "check_values",
    "collect_frame",
    "fit_boxcox_lambdas",
    "frame_schema",
    "future_times",
    "infer_frequency",
    "inverse_targets",
    "make_windows",
    "to_time_point",
    "transform_targets",
    "validate_frame",
]

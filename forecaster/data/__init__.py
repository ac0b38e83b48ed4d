"""Frames in, panels and window indexes out: validation, frequencies, calendar features,
scaling and windows.

Modules, in import order: ``frames`` (reading frames, schemas), ``checks`` (roles, keys,
values), ``times`` (time columns and time points), ``frequency``, ``steps`` (future times),
``gaps`` (filling), ``validate`` (:func:`validate_frame`), ``absent`` (the rows filling
makes up), ``panel_values`` (a frame's own values at its panel's rows), ``known_values``
(values as forecast origins knew them), ``panel``, ``calendar``, ``scaling_tensors``,
``scaling``, ``known_windows`` (windows as known at their origins), ``windows``; ``audio``
(MFCC frames of audio clips, for :mod:`forecaster.datasets`) is imported on demand.
"""

from __future__ import annotations

from forecaster.data.absent import absent_rows
from forecaster.data.calendar import (
    CALENDAR_FEATURES,
    calendar_features,
    calendar_for_freq,
    calendar_values,
)
from forecaster.data.checks import check_roles, check_unique_keys, check_values
from forecaster.data.dtypes import trained_frame
from forecaster.data.frames import (
    check_schema,
    collect_frame,
    frame_schema,
    is_pandas_frame,
    polars_frame,
)
from forecaster.data.frequency import Frequency
from forecaster.data.frequency_inference import infer_frequency
from forecaster.data.panel import Panel
from forecaster.data.scaling import MIN_SCALE, SCALING_METHODS, PanelScaler
from forecaster.data.steps import future_times
from forecaster.data.times import to_time_point
from forecaster.data.transforms import (
    TARGET_TRANSFORMS,
    fit_boxcox_lambdas,
    inverse_targets,
    transform_targets,
)
from forecaster.data.validate import (
    MISSING_POLICIES,
    ValidatedFrame,
    validate_frame,
    validate_frame_cells,
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
    "ValidatedFrame",
    "Windows",
    "absent_rows",
    "calendar_features",
    "calendar_for_freq",
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
    "is_pandas_frame",
    "make_windows",
    "polars_frame",
    "to_time_point",
    "trained_frame",
    "transform_targets",
    "validate_frame",
    "validate_frame_cells",
]

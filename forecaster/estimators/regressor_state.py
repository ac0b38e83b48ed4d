"""What a fitted :class:`~forecaster.estimators.regressor.RNNRegressor` saves and how it is
rebuilt: its :class:`RegressorState` (the shared part, parameters, network and history, is
:class:`~forecaster.estimators.state.EstimatorState`): the standardisation of ``X`` and
``y``, its sizes and its calibration.
"""

from __future__ import annotations

__all__ = ["RegressorState"]

import math
from typing import Any

import numpy as np

from forecaster.estimators.conformal_state import regressor_conformal_config
from forecaster.estimators.state import EstimatorState
from forecaster.persistence.format import CONFIG, count
from forecaster.persistence.state import ModelState, StateError, TensorSpec


class RegressorState(EstimatorState):
    """The saved state of an :class:`~forecaster.estimators.regressor.RNNRegressor`."""

    # sizes RNNRegressor's fit sets (and _restore, by name)
    n_features_in_: int
    n_channels_: int
    lookback_: int
    horizon_: int

    _ENTRIES = frozenset({"network", "regressor"})

    def _state_config(self) -> dict[str, Any]:
        return {
            "regressor": {
                "y_mean": _moment_config(self.y_mean_),
                "y_scale": _moment_config(self.y_scale_),
                "y_ndim": int(self.y_ndim_),
                "n_features_in": int(self.n_features_in_),
                "n_channels": int(self.n_channels_),
                "lookback": int(self.lookback_),
                "horizon": int(self.horizon_),
                **regressor_conformal_config(self.__dict__.get("conformal_")),
            }
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "x_mean": np.ascontiguousarray(self.x_mean_, dtype=np.float64),
            "x_scale": np.ascontiguousarray(self.x_scale_, dtype=np.float64),
        }
        if "conformal_" in self.__dict__:  # calibrated (RNNRegressor.calibrate)
            arrays["conformal"] = np.ascontiguousarray(self.conformal_, dtype=np.float64)
        return arrays

    def _expected_arrays(self, config: dict[str, Any]) -> tuple[dict[str, TensorSpec], int | None]:
        reg = config["regressor"]
        if not isinstance(reg, dict):
            raise StateError(f"the regressor state in {CONFIG} is {type(reg).__name__}, not a dict")
        channels = count(reg.get("n_channels"), "regressor.n_channels", minimum=1)
        expected = {"x_mean": ("F64", [channels]), "x_scale": ("F64", [channels])}
        if "conformal_shape" in reg:
            shape = reg["conformal_shape"]
            if not isinstance(shape, list) or len(shape) != 2:
                raise StateError(f"regressor.conformal_shape in {CONFIG} is not [rows, steps]")
            expected["conformal"] = ("F64", [count(n, "conformal_shape", minimum=1) for n in shape])
        return expected, None

    def _restore(self, state: ModelState) -> None:
        reg, arrays = state.config["regressor"], state.arrays
        y_mean, y_scale = (_restored_moment(reg, key) for key in ("y_mean", "y_scale"))
        if np.any(np.asarray(y_scale) <= 0) or reg.get("y_ndim") not in (1, 2):
            raise StateError(f"regressor.y_scale or y_ndim in {CONFIG} is out of range")
        x_mean, x_scale = arrays["x_mean"], arrays["x_scale"]
        if not (np.isfinite(x_mean).all() and np.isfinite(x_scale).all() and (x_scale > 0).all()):
            raise StateError("the regressor's x_mean and x_scale must be finite (and x_scale > 0)")
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        if "conformal" in arrays:
            if not (np.isfinite(arrays["conformal"]).all() and (arrays["conformal"] >= 0).all()):
                raise StateError("the regressor's calibration must hold finite residuals >= 0")
            self.conformal_ = arrays["conformal"]
        self.y_mean_, self.y_scale_ = y_mean, y_scale
        self.y_ndim_ = reg["y_ndim"]
        for key in ("n_features_in", "n_channels", "lookback", "horizon"):
            setattr(self, f"{key}_", count(reg.get(key), f"regressor.{key}", minimum=1))


def _moment_config(value: Any) -> float | list[float]:
    """A regressor's ``y_mean_`` or ``y_scale_`` for ``config.json``: a float, or a list of
    one per output (fitted on a 2-D ``y``)."""
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else [float(v) for v in array]


def _restored_moment(reg: dict[str, Any], key: str) -> float | np.ndarray:
    """``regressor.<key>`` of a saved config: a finite number (1-D ``y``, and every model
    saved before moments per output), or with ``y_ndim`` 2 a list of one per output."""
    value: Any = reg.get(key)
    per_output = isinstance(value, list) and reg.get("y_ndim") == 2
    horizon = reg.get("horizon")
    if per_output and len(value) != horizon:
        raise StateError(
            f"regressor.{key} in {CONFIG} holds {len(value)} numbers; expected one per output "
            f"(horizon {horizon!r})"
        )
    for number in value if per_output else [value]:
        if isinstance(number, bool) or not isinstance(number, int | float):
            number = math.nan
        if not math.isfinite(number):
            raise StateError(
                f"regressor.{key} in {CONFIG} is {value!r}; expected a finite number (with "
                "y_ndim 2, or a list of one per output)"
            )
    return np.asarray(value, dtype=np.float64) if per_output else float(value)

"""The saved form of a calibrated model's split-conformal state (see
:meth:`~forecaster.estimators.forecaster.RNNForecaster.calibrate`): the ``conformal`` entry of
a forecaster's config with its arrays, written by :func:`conformal_config` and read back,
checked, by :func:`restore_conformal`; a regressor's ``conformal_shape`` entry by
:func:`regressor_conformal_config`."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecaster._validation import MAX_SIZE
from forecaster.persistence.state import StateError

__all__ = ["conformal_config", "regressor_conformal_config", "restore_conformal"]


def regressor_conformal_config(conformal: np.ndarray | None) -> dict[str, Any]:
    """The regressor's ``conformal_shape`` entry (none when it is not calibrated)."""
    return {} if conformal is None else {"conformal_shape": [int(n) for n in conformal.shape]}


def conformal_config(conformal: dict[str, Any] | None) -> dict[str, Any]:
    """The ``conformal`` entry of ``config.json`` (none for a model not calibrated, whose
    saved folder stays as before)."""
    if conformal is None:
        return {}
    shape = [int(n) for n in conformal["residuals"].shape]
    entry = {
        "per_series": bool(conformal["per_series"]),
        "shape": shape,
        "normalize": conformal.get("normalize"),
        "ends": "ends" in conformal,
        "window": conformal.get("window"),
    }
    return {"conformal": entry}


def restore_conformal(entry: dict[str, Any], arrays: dict[str, Any], n_keys: int) -> dict:
    """``conformal_`` from its config entry and arrays (a calibration saved before
    ``normalize`` / ``rolling`` existed: plain residuals, no window). A residual is a finite
    number, or NaN where it was left out of the calibration."""
    residuals, series = arrays["conformal.residuals"], arrays["conformal.series"]
    per_series, normalize = entry.get("per_series"), entry.get("normalize")
    window, has_ends = entry.get("window"), entry.get("ends", False)
    flags_ok = all(isinstance(v, bool) for v in (per_series, has_ends))
    flags_ok = flags_ok and normalize in (None, "series", "window")
    window_ok = window is None or (
        isinstance(window, int)
        and not isinstance(window, bool)
        and 1 <= window <= MAX_SIZE
        and has_ends
    )
    # NaN: a residual left out (its actual value made up by the missing policy); never inf
    if not (flags_ok and window_ok and not np.isinf(residuals).any()):
        raise StateError("the calibration (conformal) is invalid")
    if ((series < -1) | (series >= n_keys)).any():
        raise StateError("the calibration's series rows are out of range")
    conformal = {"residuals": residuals, "series": series, "per_series": per_series}
    conformal.update(normalize=normalize, window=window)
    if has_ends:
        conformal["ends"] = arrays["conformal.ends"]
        if (np.diff(conformal["ends"]) < 0).any():
            raise StateError("the calibration's window ends must be in increasing order")
    return conformal

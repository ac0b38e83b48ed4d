"""The migration of a model's saved values to the current format, as data: the parameters,
network entries and ``config.json`` entries added since models were first saved (with the
values that reproduce how older models were trained), and where formats 1 and 2 kept the
fitted arrays (inside ``config.json``)."""

from __future__ import annotations

__all__ = [
    "ENTRIES_ADDED",
    "LEGACY_ARRAYS",
    "LEGACY_ARRAY_DEFAULTS",
    "LEGACY_ENTRIES",
    "LEGACY_WITHOUT_KEYS",
    "NETWORK_ADDED",
    "PARAMS_ADDED",
    "arrays",
    "entries",
    "network",
    "params",
]

import copy
from typing import Any

import numpy as np

from forecaster.persistence.format import (
    CONFIG,
    ENVELOPE_REQUIRED,
    OPTIONAL_ENTRIES,
    listed,
    short,
)
from forecaster.persistence.state import StateError, TensorSpec

PARAMS_ADDED = {
    "baseline": "none",  # an older model forecasts with its network alone
    "calendar": None,
    "channel_independent": None,
    "checkpoint_dir": None,
    "checkpoint_every": 1,
    "ema_decay": None,
    "linear_skip": False,
    "n_ensemble": 1,
    "on_oom": "raise",
    "quantiles": None,
    "static_covariates": None,
    "target_feature": 0,  # RNNRegressor: the target was X's first feature
    "target_transform": "none",
}
"""Estimator parameters added after models were first saved, with the value that reproduces
how a model written before the parameter existed was trained and predicts. A model missing a
parameter listed here gets this value; a model missing any other parameter is refused. Add a
new parameter here when its default does not change what older models do."""

NETWORK_ADDED = {"channel_independent": False, "n_members": 1}
"""Network configuration entries added after format 1, with their values for older models."""

ENTRIES_ADDED = {"n_series": None, "n_train_windows": 0, "n_val_windows": 0, "calendar": []}
"""``config.json`` entries of format 3 that formats 1 and 2 may lack, with their value for
such a model (``n_series``: the rows of the scaler's ``center``)."""

_LEGACY_STATE_ENTRIES = frozenset(
    {"network", "scaler", "freq", "schema", "regressor"}
    | {"n_train_windows", "n_val_windows", "calendar", "target_lambdas"}
)
LEGACY_ENTRIES = {
    1: ENVELOPE_REQUIRED[1] | OPTIONAL_ENTRIES | _LEGACY_STATE_ENTRIES,
    2: ENVELOPE_REQUIRED[2] | OPTIONAL_ENTRIES | _LEGACY_STATE_ENTRIES,
}
"""Every entry of ``config.json`` formats 1 and 2 have; others are refused on load (format 3:
the format's entries and those of the estimator's state)."""

LEGACY_ARRAYS = {
    "regressor": (("x_mean", "regressor", "x_mean"), ("x_scale", "regressor", "x_scale")),
    "scaler": (
        ("scaler.center", "scaler", "center"),
        ("scaler.scale", "scaler", "scale"),
        ("scaler.n_fit_rows", "scaler", "n_fit_rows"),
        ("target_lambdas", None, "target_lambdas"),
    ),
}
"""Formats 1 and 2 kept the fitted arrays in ``config.json``: for the entry that says which
state a config holds, ``(array name, holding entry or None for the top level, key)``."""
LEGACY_ARRAY_DEFAULTS = {"scaler.n_fit_rows": 0}
"""Arrays format-1 models may lack, filled with this value."""
LEGACY_WITHOUT_KEYS = frozenset({"RNNRegressor"})
"""Estimators whose format 1 and 2 folders have no ``keys.parquet``."""


def params(saved: Any, expected: dict[str, Any]) -> dict[str, Any]:
    """The saved parameters, with those added since the model was written filled in
    (:data:`PARAMS_ADDED`); ``expected`` are the class's parameters (``get_params()``)."""
    if not isinstance(saved, dict):
        raise StateError(f"the parameters are {type(saved).__name__}, not a dict")
    unknown = sorted(set(saved) - set(expected))
    absent = sorted(set(expected) - set(saved) - set(PARAMS_ADDED))
    if unknown or absent:
        detail = listed(**{"unknown to this version:": unknown, "missing:": absent})
        raise StateError(f"the parameters in {CONFIG} differ from this version's ({detail})")
    added = {k: v for k, v in PARAMS_ADDED.items() if k in expected and k not in saved}
    return {**added, **saved}


def network(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the network entries added since format 1 (:data:`NETWORK_ADDED`)."""
    saved = config.get("network")
    if not isinstance(saved, dict):
        return config  # refused by the estimator, which names it
    return {
        **config,
        "network": {**{k: v for k, v in NETWORK_ADDED.items() if k not in saved}, **saved},
    }


def entries(config: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """A format-1 or 2 config with the entries of :data:`ENTRIES_ADDED` that the state has
    (``wanted``) filled in: ``n_series`` from the rows of the scaler's ``center``."""
    config = dict(config)
    for key, value in ENTRIES_ADDED.items():
        if key not in wanted or key in config:
            continue
        if key != "n_series":
            config[key] = copy.deepcopy(value)
            continue
        scaler = config.get("scaler")
        if not isinstance(scaler, dict):
            continue  # refused by the estimator, which names it
        center = scaler.get("center")
        if not isinstance(center, list) or not center:
            raise StateError(
                f"scaler.center in {CONFIG} is {short(center)}; expected an array of numbers "
                "with one row per series"
            )
        config[key] = len(center)
    return config


def arrays(
    config: dict[str, Any], expected: dict[str, TensorSpec]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The fitted arrays a format-1 or 2 config holds as JSON lists (:data:`LEGACY_ARRAYS`),
    checked against ``expected`` like format 3's, and the config without them."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    group = "regressor" if "regressor" in config else "scaler"
    found = {}
    for key, holder_name, entry in LEGACY_ARRAYS[group]:
        holder = config if holder_name is None else config[holder_name]
        label = entry if holder_name is None else f"{holder_name}.{entry}"
        value = holder.pop(entry, None)
        if key not in expected:
            if value is not None:
                raise StateError(f"{CONFIG} has {label} but the model's parameters use none")
            continue
        dtype, shape = expected[key]
        if value is None and key in LEGACY_ARRAY_DEFAULTS:  # format 1 models may lack it
            value = np.full(shape, LEGACY_ARRAY_DEFAULTS[key]).tolist()
        found[key] = _json_array(value, shape, dtype == "I64", f"{label} in {CONFIG}")
    return found, config


def _json_array(value: Any, shape: list[int], integer: bool, what: str) -> np.ndarray:
    """A JSON array of numbers (integers when ``integer``) of exactly ``shape``."""
    kinds = (int,) if integer else (int, float)

    def fits(item: Any, dims: list[int]) -> bool:
        if not dims:
            return isinstance(item, kinds) and not isinstance(item, bool)
        return (
            isinstance(item, list)
            and len(item) == dims[0]
            and all(fits(part, dims[1:]) for part in item)
        )

    if not fits(value, shape):
        kind = "integers" if integer else "numbers"
        raise StateError(f"{what} is not an array of {kind} of shape {shape}: {short(value)}")
    try:
        return np.array(value, dtype=np.int64 if integer else np.float64)
    except (OverflowError, ValueError) as exc:
        raise StateError(f"{what} holds a value out of range ({exc})") from exc

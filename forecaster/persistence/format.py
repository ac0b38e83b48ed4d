"""The model folder format as data: file names, size limits, the ``config.json`` entries of
each format version, and the migration of formats 1 and 2 to the current one.

Also the checks of single saved values (:func:`count`, :func:`names`, ...) that the format and
the estimators' states share; they raise :class:`~forecaster.persistence.state.StateError`.
"""

from __future__ import annotations

__all__ = [
    "CONFIG",
    "CONFIG_LIMIT",
    "ENVELOPE",
    "ENVELOPE_REQUIRED",
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_LIMIT",
    "ITEM_SIZE",
    "KEYS",
    "KEYS_BYTES_PER_SERIES",
    "KEYS_LIMIT",
    "KIND",
    "LEGACY_CONFIG_LIMIT",
    "MANIFEST",
    "MANIFEST_LIMIT",
    "MAX_INT",
    "MIN_FORMAT_VERSION",
    "OPTIONAL_ENTRIES",
    "STATE",
    "TRAIN_END",
    "WEIGHTS",
    "count",
    "first_lines",
    "is_int",
    "listed",
    "names",
    "short",
]

from typing import Any

import forecaster._io as _io
from forecaster.persistence.state import StateError

FORMAT = "forecaster-model"
FORMAT_VERSION = 3
"""Version of the folder layout written by :func:`~forecaster.persistence.save`."""
MIN_FORMAT_VERSION = 1
"""Oldest version :func:`~forecaster.persistence.load` still reads (migrating it)."""
KIND = "model"
"""The kind of folder named in a model's manifest."""
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
STATE = "state.safetensors"
KEYS = "keys.parquet"
TRAIN_END = "__train_end__"
"""Column of ``keys.parquet`` holding each series' last fitted time (``train_end_``)."""
MANIFEST = _io.MANIFEST

MANIFEST_LIMIT = 2**20
"""Largest ``manifest.json`` read (1 MiB; a model's lists five files)."""
CONFIG_LIMIT = 8 * 2**20
"""Largest ``config.json`` of format 3 read or written (8 MiB; it does not grow with the
number of series, only with the epochs of the history: tens of thousands fit)."""
LEGACY_CONFIG_LIMIT = 512 * 2**20
"""Largest ``config.json`` of format 1 or 2 read (512 MiB: it holds the scaler arrays)."""
HEADER_LIMIT = 2**20
"""Largest header (tensor list) of ``weights.safetensors`` and ``state.safetensors`` read."""
KEYS_LIMIT = 16 * 2**20
"""Bytes of ``keys.parquet`` allowed whatever the number of series (16 MiB) ..."""
KEYS_BYTES_PER_SERIES = 4096
"""... plus this many per series."""
MAX_INT = 2**53
"""Largest count accepted in a config (beyond it a value is not a count forecaster wrote)."""
ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "BOOL": 1}
"""Bytes per element of each safetensors dtype."""

# ------------------------------------------------------------------------------------------
# the entries of config.json
# ------------------------------------------------------------------------------------------

ENVELOPE_REQUIRED = {
    1: frozenset({"format", "format_version", "estimator", "params"}),
    2: frozenset({"format", "format_version", "estimator", "params", "checksums"}),
    3: frozenset({"format", "format_version", "estimator", "params", "package_version"}),
}
"""The format's own entries of ``config.json`` in each version (the estimator's state has the
others, see ``_state_entries``)."""
ENVELOPE = frozenset({"format", "format_version", "package_version", "estimator", "params"})
"""The format's entries that are not part of a :class:`ModelState`'s ``config``."""
OPTIONAL_ENTRIES = frozenset(
    {"package_version", "history", "feature_names_in", "conformal", "static_covariates"}
    | {"baseline", "target_transform", "ema_decay", "val_loss"}
)
"""Entries a config may lack (``package_version``: formats 1 and 2; ``conformal``: the
calibration of a calibrated model, see ``RNNForecaster.calibrate``; ``static_covariates``: the
encoding of a model's static covariates; ``baseline``: the blend with the seasonal naive and the
validation report of ``RNNForecaster(baseline=...)``, absent in older saves;
``target_transform``: the transform ``target_transform="auto"`` chose in fit; ``ema_decay``:
the weight-average decay ``ema_decay="auto"`` chose; ``val_loss``: the fitted model's
``val_loss_``, absent in older saves and without validation windows)."""


# ------------------------------------------------------------------------------------------
# checks of single values (raise StateError)
# ------------------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def count(value: Any, what: str, minimum: int = 0) -> int:
    """``value`` when it is an integer in ``[minimum, MAX_INT]``, else StateError."""
    if not is_int(value) or not minimum <= value <= MAX_INT:
        raise StateError(f"{what} is {value!r}; expected an integer >= {minimum}")
    return value


def names(value: Any, what: str) -> list[str]:
    """``value`` when it is a list of strings, else StateError."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StateError(f"{what} is {short(value)}; expected a list of names")
    return value


def short(value: Any) -> str:
    """``repr(value)``, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def first_lines(exc: BaseException, n: int = 3) -> str:
    """The first ``n`` non-empty lines of an exception's message, on one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:n]) + (" ..." if len(lines) > n else "")


def listed(**lists: list[str]) -> str:
    """``"missing ['a']; unknown ['b']"``: each non-empty list after its label."""
    return "; ".join(f"{label} {values}" for label, values in lists.items() if values)

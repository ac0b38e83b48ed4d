"""The model folder format: save and load without pickle."""

from __future__ import annotations

from forecaster.persistence.core import (
    CONFIG_LIMIT,
    FORMAT,
    FORMAT_VERSION,
    HEADER_LIMIT,
    KEYS_BYTES_PER_SERIES,
    KEYS_LIMIT,
    LEGACY_CONFIG_LIMIT,
    MANIFEST_LIMIT,
    ModelFormatError,
    ModelSaveError,
    load,
    save,
)

__all__ = [
    "CONFIG_LIMIT",
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_LIMIT",
    "KEYS_BYTES_PER_SERIES",
    "KEYS_LIMIT",
    "LEGACY_CONFIG_LIMIT",
    "MANIFEST_LIMIT",
    "ModelFormatError",
    "ModelSaveError",
    "load",
    "save",
]

"""What a saved model holds, as data: :class:`ModelState`, and the classes that can be saved.

The folder format (:mod:`forecaster.persistence.writer`, :mod:`forecaster.persistence.reader`)
reads and writes a :class:`ModelState`; it never looks at an estimator's attributes. An
estimator class that can be saved provides

- ``estimator._get_state() -> ModelState`` (what :func:`~forecaster.persistence.save` writes);
- ``cls._state_entries() -> frozenset[str]``: the ``config.json`` entries its state has,
  besides the format's own (``format``, ``format_version``, ``package_version``,
  ``estimator``, ``params``) and the optional ``history`` and ``feature_names_in``;
- ``cls._state_layout(state) -> StateLayout``: from a state whose parameters and config were
  read (no arrays, weights or keys yet), the arrays, weights and keys the folder must hold,
  so that nothing is read beyond what the config announces;
- ``cls._from_state(state) -> estimator``: the fitted estimator.

and registers itself with :func:`register_model_class` (the estimators do so at import;
:func:`registered_model_classes` imports the package's own first: :data:`BUILT_IN_MODULES`).
A problem with the saved values found by these methods is raised as :class:`StateError`, which
:func:`~forecaster.persistence.load` reports as a
:class:`~forecaster.exceptions.ModelFormatError` naming the folder and its format version.
"""

from __future__ import annotations

__all__ = [
    "ModelState",
    "StateError",
    "StateLayout",
    "TensorSpec",
    "register_model_class",
    "registered_model_classes",
    "tensor_specs",
]

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

TensorSpec = tuple[str, list[int]]
"""``(safetensors dtype, shape)`` of one tensor, e.g. ``("F32", [8, 4])``."""

_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
}


class StateError(ValueError):
    """A saved value an estimator cannot take (raised by ``_state_layout`` or
    ``_from_state``; :func:`~forecaster.persistence.load` names the folder and format)."""


@dataclass
class ModelState:
    """Everything a saved model holds, as plain data.

    Attributes
    ----------
    estimator : str
        The estimator's class name (a class given to :func:`register_model_class`).
    params : dict
        The parameters it was fitted with (``get_params()``), JSON values.
    config : dict
        Every other ``config.json`` entry (network configuration, history, the estimator's
        fitted metadata), JSON values.
    arrays : dict of str to numpy.ndarray
        The fitted arrays that grow with the data (``state.safetensors``).
    weights : dict of str to torch.Tensor
        The network's ``state_dict`` (``weights.safetensors``).
    keys : polars.DataFrame or None
        The series keys (``keys.parquet``), for estimators that have them.
    format_version : int
        The format the state was read from (the current one for a state to write).
    package_version : str or None
        The forecaster version that wrote it, when known.
    """

    estimator: str
    params: dict[str, Any]
    config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    keys: pl.DataFrame | None = None
    format_version: int = 3
    package_version: str | None = None


@dataclass(frozen=True)
class StateLayout:
    """What a model's folder must hold, known from its config before any tensor is read.

    Attributes
    ----------
    arrays : dict of str to TensorSpec
        Name -> (dtype, shape) of every array of ``state.safetensors``.
    weights : dict of str to TensorSpec
        Name -> (dtype, shape) of every tensor of ``weights.safetensors``.
    keys_rows : int or None
        Rows of ``keys.parquet``; None when the model has no keys file.
    """

    arrays: dict[str, TensorSpec]
    weights: dict[str, TensorSpec]
    keys_rows: int | None = None


def tensor_specs(tensors: Mapping[str, Any]) -> dict[str, TensorSpec]:
    """Name -> :data:`TensorSpec` of torch tensors (e.g. a ``state_dict`` built on the
    ``meta`` device, which allocates nothing)."""
    return {
        key: (_SAFETENSORS_DTYPES.get(tensor.dtype, str(tensor.dtype)), list(tensor.shape))
        for key, tensor in tensors.items()
    }


_CLASSES: dict[str, type] = {}

BUILT_IN_MODULES = ("forecaster.estimators",)
"""The modules whose import registers the package's own model classes (``RNNForecaster``,
its cell aliases, ``RNNRegressor``): :func:`registered_model_classes` imports them by name
when first asked (this layer sits below the estimators, which import it), so that
``forecaster.persistence.load`` in an interpreter that has not imported them yet builds the
package's classes, and names them when it refuses another."""


def register_model_class(cls: type) -> type:
    """Make ``cls`` (by its name) one that :func:`~forecaster.persistence.save` writes and
    :func:`~forecaster.persistence.load` builds; returns ``cls`` (usable as a decorator)."""
    for method in ("_get_state", "_state_entries", "_state_layout", "_from_state"):
        if not callable(getattr(cls, method, None)):
            raise TypeError(f"{cls.__name__} cannot be saved: it has no {method}().")
    _CLASSES[cls.__name__] = cls
    return cls


def registered_model_classes() -> dict[str, type]:
    """Name -> class of every class registered with :func:`register_model_class`: the
    package's own (the modules :data:`BUILT_IN_MODULES` imported first, once) and any
    registered since."""
    for module in BUILT_IN_MODULES:
        if module not in sys.modules:  # (an import of one already imported is a lookup)
            importlib.import_module(module)
    return dict(_CLASSES)

"""The model folder format: save and load fitted estimators without pickle.

A saved model is a folder with

- ``config.json``: format name and version, package version, estimator class and parameters,
  network configuration, frequency, training schema, calendar features, history and the scaler's
  method and columns. Its size does not grow with the number of series (at most
  :data:`CONFIG_LIMIT` bytes);
- ``state.safetensors``: the arrays fitted beside the network, which grow with the number of
  series or features: the scaler's ``center``, ``scale`` and ``n_fit_rows``, the Box-Cox
  lambdas (forecasters), the input means and scales (regressors);
- ``weights.safetensors``: the network's tensors (safetensors never executes code);
- ``keys.parquet`` (forecasters only): the series keys seen in ``fit``, with their dtype, and
  the last fitted time of each series (column ``__train_end__``, ``train_end_``; folders
  written before it load without it, and ``score`` then cannot check that its held-out steps
  are new);
- ``manifest.json``: the sha256 of every other file (see :func:`forecaster._io.write_manifest`),
  the package's proof that it wrote the folder and that nothing in it changed since.

This package knows the folder only: an estimator gives its state as a :class:`ModelState`
(``estimator._get_state()``) and is rebuilt from one (``cls._from_state(state)``, ``cls`` being
the class registered under the saved name with :func:`register_model_class`); see
:mod:`forecaster.persistence.state`. Modules: :mod:`~forecaster.persistence.format` (names,
limits, entries), :mod:`~forecaster.persistence.migration` (formats 1 and 2),
:mod:`~forecaster.persistence.writer` (:func:`save`), :mod:`~forecaster.persistence.reader`
(:func:`load`).

:func:`save` writes the folder beside its destination and publishes it in one step (an atomic
exchange with an earlier model, see :func:`forecaster._io.publish_directory`), so a crash never
leaves a half-written model and a concurrent :func:`load` sees the old model or the new one. It
replaces only a folder that is provably a model it wrote with nothing added (a file or a
folder, even an empty one) or changed (or an empty folder); anything else is refused with an
:class:`~forecaster.exceptions.OwnershipError` before anything is written: a folder it cannot
read entirely (a sub-folder of mode 000) too.
The earlier model is checked again after the exchange, so a file a user drops into it while
the save runs is put back with it (and the save refused), never deleted with it.

The staging folder ``.<name>.staging-<12 hex digits>`` beside the destination is locked by the
saving process; a save killed before publishing leaves it behind, hidden, and the next save to
the same path deletes it (its lock is free then: see :func:`forecaster._io.remove_staging`). One
killed in the moment of publishing (its marker already removed; the folder may hold the earlier
version) is left, hidden and harmless: nothing is deleted without proof.

:func:`load` never unpickles anything. It reads every file from one version of the folder, only
when it is a regular file within a size limit known before it is read (FIFOs, devices, links to
them and oversized or sparse files are refused without being read), checks it against the
manifest before parsing it, and refuses with a :class:`ModelFormatError` that names the file,
the format version found, the versions this package reads and what to do, whatever it cannot
vouch for: an unknown or newer format, a changed byte in any file, missing or unknown config
entries or parameters, values of the wrong type, parameters that disagree with the network,
weights that do not fit the network, keys and scaler state of different sizes. Rather that than
silently wrong forecasts.

Format versions
---------------
3 (written now)
    ``manifest.json`` covers every file, ``config.json`` included; the arrays that grow with
    the number of series moved from ``config.json`` to ``state.safetensors``.
2 (read, migrated)
    Scaler state and lambdas inside ``config.json``, with ``checksums`` (sha256) of
    ``weights.safetensors`` and ``keys.parquet``; the config itself is not covered. Loaded with
    a :class:`~forecaster.exceptions.ForecasterWarning`; saving the model again writes format 3
    (also over the format-2 folder itself).
1 (read, migrated)
    Format 2 without checksums: loaded without an integrity check, with a warning. Estimator
    parameters and network entries added since (``calendar``, ``n_ensemble``, ...) take the
    values that reproduce how such a model was trained.

Size limits (bytes): ``manifest.json`` :data:`MANIFEST_LIMIT`; ``config.json``
:data:`CONFIG_LIMIT` (format 1 and 2 configs, which hold the scaler arrays,
:data:`LEGACY_CONFIG_LIMIT`); the safetensors files exactly the bytes of the tensors the config
describes plus a header of at most :data:`HEADER_LIMIT`; ``keys.parquet``
:data:`KEYS_LIMIT` plus :data:`KEYS_BYTES_PER_SERIES` per series. JSON is read at most
:data:`forecaster._io.JSON_MAX_DEPTH` levels deep.
"""

from __future__ import annotations

from forecaster.exceptions import ModelFormatError, ModelSaveError
from forecaster.persistence.format import (
    CONFIG_LIMIT,
    FORMAT,
    FORMAT_VERSION,
    HEADER_LIMIT,
    KEYS_BYTES_PER_SERIES,
    KEYS_LIMIT,
    LEGACY_CONFIG_LIMIT,
    MANIFEST_LIMIT,
    TRAIN_END,
)
from forecaster.persistence.reader import load, saved_provenance
from forecaster.persistence.state import (
    ModelState,
    StateError,
    StateLayout,
    register_model_class,
    registered_model_classes,
    tensor_specs,
)
from forecaster.persistence.writer import save

__all__ = [
    "CONFIG_LIMIT",
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_LIMIT",
    "KEYS_BYTES_PER_SERIES",
    "KEYS_LIMIT",
    "LEGACY_CONFIG_LIMIT",
    "MANIFEST_LIMIT",
    "TRAIN_END",
    "ModelFormatError",
    "ModelSaveError",
    "ModelState",
    "StateError",
    "StateLayout",
    "load",
    "register_model_class",
    "registered_model_classes",
    "save",
    "saved_provenance",
    "tensor_specs",
]

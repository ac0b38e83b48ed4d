"""Save and load fitted estimators without pickle.

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

:func:`save` writes the folder beside its destination and publishes it in one step (an atomic
exchange with an earlier model, see :func:`forecaster._io.publish_directory`), so a crash never
leaves a half-written model and a concurrent :func:`load` sees the old model or the new one. It
replaces only a folder that is provably a model it wrote with nothing added or changed (or an
empty folder); anything else is refused with an :class:`~forecaster.exceptions.OwnershipError`
before anything is written: a folder it cannot read entirely (a sub-folder of mode 000) too.
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

import copy
import hashlib
import io
import json
import math
import os
import stat
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import safetensors.numpy
import safetensors.torch
import torch
from safetensors import SafetensorError

import forecaster
from forecaster import _io
from forecaster._columns import temporary_names
from forecaster.data.core import SERIES_ID, Frequency
from forecaster.data.scaling import PanelScaler
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    NotFittedError,
    OwnershipError,
)
from forecaster.nn.core import network_from_config

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

FORMAT = "forecaster-model"
FORMAT_VERSION = 3
"""Version of the folder layout written by :func:`save` (see the module docstring)."""
MIN_FORMAT_VERSION = 1
"""Oldest version :func:`load` still reads (migrating it)."""
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
_MAX_INT = 2**53
"""Largest count accepted in a config (beyond it a value is not a count forecaster wrote)."""

_REQUIRED_KEYS = frozenset({"format", "format_version", "estimator", "params", "network"})
_FORECASTER_KEYS = frozenset({"scaler", "freq", "schema"})
_REGRESSOR_KEYS = frozenset({"regressor"})
_OPTIONAL_KEYS = frozenset({"package_version", "history", "feature_names_in"})
_FORECASTER_EXTRA = frozenset({"n_train_windows", "n_val_windows", "calendar"})
_KNOWN_KEYS = {
    1: _REQUIRED_KEYS
    | _FORECASTER_KEYS
    | _REGRESSOR_KEYS
    | _OPTIONAL_KEYS
    | _FORECASTER_EXTRA
    | {"target_lambdas"},
    2: _REQUIRED_KEYS
    | _FORECASTER_KEYS
    | _REGRESSOR_KEYS
    | _OPTIONAL_KEYS
    | _FORECASTER_EXTRA
    | {"target_lambdas", "checksums"},
    3: _REQUIRED_KEYS
    | _FORECASTER_KEYS
    | _REGRESSOR_KEYS
    | _OPTIONAL_KEYS
    | _FORECASTER_EXTRA
    | {"n_series"},
}
"""Every entry of ``config.json`` each format has; others are refused on load."""

_PARAMS_ADDED = {
    "calendar": None,
    "channel_independent": None,
    "checkpoint_dir": None,
    "checkpoint_every": 1,
    "n_ensemble": 1,
    "on_oom": "raise",
    "target_transform": "none",
}
"""Estimator parameters added after models were first saved, with the value that reproduces
how a model written before the parameter existed was trained and predicts. A model missing a
parameter listed here gets this value; a model missing any other parameter is refused. Add a
new parameter here when its default does not change what older models do."""

_NETWORK_ADDED = {"channel_independent": False, "n_members": 1}
"""Network configuration entries added after format 1, with their values for older models."""

_SHARED_WITH_NETWORK = (
    "lookback",
    "horizon",
    "cell",
    "hidden_size",
    "num_layers",
    "dropout",
    "head",
    "nonlinearity",
    "segment_length",
    "normalization",
)
"""Estimator parameters passed unchanged to the network: a saved model's must agree with it."""

_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
}
_ITEM_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "BOOL": 1}


class ModelFormatError(ForecasterError, ValueError):
    """A folder is not a (readable) saved forecaster model."""


class ModelSaveError(ForecasterError, OSError):
    """A model cannot be written where it was asked to be (the folder is not writable, a part
    of the path is a file, the name is too long, the disk is full, ...)."""


def _estimator_classes() -> dict[str, type]:
    from forecaster.estimators import core as estimators

    return {
        name: getattr(estimators, name)
        for name in (
            "RNNForecaster",
            "LSTMForecaster",
            "GRUForecaster",
            "SimpleRNNForecaster",
            "RNNRegressor",
        )
    }


# ------------------------------------------------------------------------------------------
# save
# ------------------------------------------------------------------------------------------


def save(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to the folder ``path`` atomically.

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
        A fitted estimator.
    path : str or path-like
        Destination folder: a new path, an empty folder, or a model saved earlier (replaced
        in one step when nothing was added to it or changed in it since).

    Returns
    -------
    pathlib.Path
        The folder written.

    Notes
    -----
    The folder holds the model as it was fitted: parameters changed with ``set_params``
    after ``fit`` take effect at the next fit, so the parameters written are those of the
    fit (run settings such as ``device`` and ``progress`` as they are now), and a change of
    a parameter that shapes predictions (``target``, ``lookback``, ``horizon``, ...) is
    refused, as ``predict`` refuses it.

    Raises
    ------
    DataValidationError
        When ``path`` is not a path (a non-empty ``str`` or ``os.PathLike`` without NUL), or
        a parameter that shapes predictions was changed since fit (nothing is written).
    OwnershipError
        When ``path`` is a file, a link, or a folder holding anything but an unchanged saved
        model (or anything it cannot read); nothing is written then. Also when a file appears
        in the earlier model while it is replaced: it is put back, with that file.
    ModelSaveError
        When the folder cannot be written (permissions, a file in the path, disk full, ...).

    Examples
    --------
    >>> import numpy as np, tempfile, forecaster
    >>> X, y = np.random.default_rng(0).normal(size=(32, 8)), np.zeros(32)
    >>> model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    >>> folder = forecaster.save(model, tempfile.mkdtemp() + "/model")
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json', 'manifest.json', 'state.safetensors', 'weights.safetensors']
    """
    destination = _io.as_path(path, "path")
    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise DataValidationError(f"Cannot save a {name}; expected a forecaster estimator.")
    if not hasattr(estimator, "network_"):
        raise NotFittedError(f"This {name} is not fitted yet; fit it before saving.")
    estimator._check_fitted("save")  # refuses parameters that shape predictions set since fit
    _writing(destination, lambda: _check_destination(destination))
    config, arrays = _describe(estimator)
    files = {
        CONFIG: _config_bytes(config, name),
        STATE: safetensors.numpy.save(arrays, metadata={"format": FORMAT}),
        WEIGHTS: _weights_bytes(estimator.network_),
    }
    if hasattr(estimator, "keys_"):
        buffer = io.BytesIO()
        _keys_frame(estimator).write_parquet(buffer)
        files[KEYS] = buffer.getvalue()
    details = {"format": FORMAT, "format_version": FORMAT_VERSION, "estimator": name}
    return _writing(destination, lambda: _publish(destination, files, details))


def _writing(destination: Path, action: Callable[[], Any]) -> Any:
    """``action()``, with an operating-system error turned into a :class:`ModelSaveError`."""
    try:
        return action()
    except (OwnershipError, DataValidationError, ModelSaveError):
        raise
    except ForecasterError as exc:  # e.g. the publication failed: say where
        raise ModelSaveError(f"Cannot save the model to {destination}: {exc}") from exc
    except OSError as exc:
        where = exc.filename or destination
        raise ModelSaveError(
            f"Cannot save the model to {destination}: {exc.strerror or exc} ({where}). Check "
            "that the parent folder exists or can be created (no file stands in its path), is "
            "writable, and that the name is not too long; or save to another path."
        ) from exc


def _check_destination(destination: Path) -> None:
    """Refuse, before anything is written, a destination that is not ours to replace or that
    lies inside a folder forecaster wrote (whose manifest would no longer list what it holds)."""
    _io.check_replaceable(destination, KIND, purpose="save a model over", adopt=_is_legacy_model)
    owner = _io.owning_folder(destination)
    if owner is not None:
        raise OwnershipError(
            f"Refusing to save a model at {destination}: it is inside {owner[0]}, a "
            f"{owner[1]} folder forecaster wrote (its manifest would no longer list what it "
            "holds). Choose a path outside it."
        )


def _publish(destination: Path, files: Mapping[str, bytes], details: dict[str, Any]) -> Path:
    """Write the files in a staging folder and publish it; first delete the staging folders of
    saves to this path whose process died (see :func:`forecaster._io.remove_staging`)."""
    _io.remove_staging(destination)
    staging = _io.staging_directory(destination)
    try:
        for file, data in files.items():
            _io.write_bytes_atomic(staging / file, data)
        _io.write_manifest(staging, KIND, details=details)
        return _io.publish_directory(staging, destination, kind=KIND, adopt=_is_legacy_model)
    finally:
        _io.discard_staging(staging)  # a no-op once published


def _describe(estimator: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The config (JSON values, bounded size) and the state arrays of a fitted estimator."""
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": forecaster.__version__,
        "estimator": type(estimator).__name__,
        "params": estimator._fitted_params(),  # those it was fitted with (set_params after
        "network": estimator.network_.get_config(),  # fit takes effect at the next fit)
        "history": estimator.history_,
    }
    if hasattr(estimator, "feature_names_in_"):
        config["feature_names_in"] = [str(name) for name in estimator.feature_names_in_]
    if not hasattr(estimator, "scaler_"):
        config["regressor"] = {
            "y_mean": float(estimator.y_mean_),
            "y_scale": float(estimator.y_scale_),
            "y_ndim": int(estimator.y_ndim_),
            "n_features_in": int(estimator.n_features_in_),
            "n_channels": int(estimator.n_channels_),
            "lookback": int(estimator.lookback_),
            "horizon": int(estimator.horizon_),
        }
        arrays = {
            "x_mean": np.ascontiguousarray(estimator.x_mean_, dtype=np.float64),
            "x_scale": np.ascontiguousarray(estimator.x_scale_, dtype=np.float64),
        }
        return config, arrays
    meta, scaler_arrays = estimator.scaler_.state()
    config["scaler"] = meta
    config["n_series"] = int(estimator.keys_.height)
    config["freq"] = str(estimator.freq_)
    config["schema"] = estimator.schema_
    config["n_train_windows"] = int(estimator.n_train_windows_)
    config["n_val_windows"] = int(estimator.n_val_windows_)
    config["calendar"] = list(getattr(estimator, "calendar_", ()))
    arrays = {f"scaler.{key}": value for key, value in scaler_arrays.items()}
    lambdas = getattr(estimator, "target_lambdas_", None)
    if lambdas is not None:
        arrays["target_lambdas"] = np.ascontiguousarray(lambdas, dtype=np.float64)
    return config, arrays


def _config_bytes(config: dict[str, Any], name: str) -> bytes:
    try:  # everything must be JSON before anything is written
        text = json.dumps(config, indent=2, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"Cannot save this {name}: {exc} Parameters must be plain values (str, int, "
            "float, bool, None, lists of them); set_params() them to such values and save again."
        ) from exc
    data = text.encode("utf-8")
    if len(data) > CONFIG_LIMIT:
        raise DataValidationError(
            f"Cannot save this {name}: its config.json would have {len(data):,} bytes, more "
            f"than the {CONFIG_LIMIT:,} a model's config may have (a very long history_ or "
            "many feature names). Shorten history_ (e.g. model.history_ = model.history_[-1000:])"
            " and save again."
        )
    return data


def _weights_bytes(network: torch.nn.Module) -> bytes:
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    return safetensors.torch.save(state, metadata={"format": FORMAT})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Cannot write {type(value).__name__} {value!r} to the model config.")


def _is_legacy_model(folder: Path) -> bool:
    """Whether ``folder`` holds a model of format 1 or 2 (no manifest) and nothing else, with
    files matching the checksums of format 2: such a folder may be replaced (upgraded)."""
    try:
        names = {entry.name: entry for entry in os.scandir(folder)}
        if not all(entry.is_file(follow_symlinks=False) for entry in names.values()):
            return False
        config = _io.load_json_bounded(
            _io.read_file_bounded(folder / CONFIG, LEGACY_CONFIG_LIMIT),
            source=str(folder / CONFIG),
        )
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            return False
        version = config.get("format_version")
        expected = {CONFIG, WEIGHTS} | (
            {KEYS} if config.get("estimator") != "RNNRegressor" else set()
        )
        if version not in (1, 2) or set(names) != expected:
            return False
        checksums = config.get("checksums", {}) if version == 2 else {}
        return isinstance(checksums, dict) and all(
            _file_sha256(folder / file) == checksums.get(file) for file in checksums
        )
    except (OSError, ForecasterError, ValueError):
        return False


def _file_sha256(path: Path) -> str | None:
    """The sha256 of a regular file of at most 16 GiB (read in blocks), else None."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no wait
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > 16 * 2**30:
            return None
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ------------------------------------------------------------------------------------------
# load
# ------------------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator written by :func:`save` (no pickle is involved).

    Models of an older format are migrated with a warning (see the module docstring);
    anything else that does not match what this version writes is refused. Every file is read
    from one version of the folder, so a concurrent :func:`save` to the same path is seen
    whole or not at all.

    Raises
    ------
    DataValidationError
        When ``path`` is not a path (a non-empty ``str`` or ``os.PathLike`` without NUL).
    ModelFormatError
        When the path is missing, is not a folder or is not a forecaster model; was written in
        a newer format; has a file that is not a regular file, is too large, or does not match
        the manifest; has a config with missing, unknown, mistyped or inconsistent entries; or
        has weights, state or keys that do not fit the network and config. The message names
        the file, says which format version was found, which this package reads, and what to do.

    Examples
    --------
    >>> import numpy as np, tempfile, forecaster
    >>> X, y = np.random.default_rng(0).normal(size=(32, 8)), np.zeros(32)
    >>> model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    >>> loaded = forecaster.load(model.save(tempfile.mkdtemp() + "/model"))
    >>> bool((loaded.predict(X) == model.predict(X)).all())
    True
    """
    folder = _io.as_path(path, "path")
    try:
        estimator, notice = _io.read_consistent(
            folder, lambda pinned: _Reader(folder, pinned).estimator(), error=ModelFormatError
        )
    except FileNotFoundError as exc:
        missing = "a link to nothing" if folder.is_symlink() else "no such folder"
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: {missing}. "
            "Pass the folder written by model.save(path)."
        ) from exc
    except NotADirectoryError as exc:
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: it is a file, not a folder (or a part "
            "of the path is a file). Pass the folder written by model.save(path)."
        ) from exc
    except OSError as exc:
        raise ModelFormatError(
            f"Cannot read {folder}: {exc.strerror or exc}. Pass the folder written by "
            "model.save(path), readable by this user."
        ) from exc
    if notice:
        warnings.warn(notice, ForecasterWarning, stacklevel=2)
    return estimator


class _Reader:
    """Reads one version of a model folder (pinned) and builds the estimator it holds."""

    def __init__(self, folder: Path, pinned: _io.PinnedDirectory) -> None:
        self.folder = folder
        self.pinned = pinned
        self.digests: dict[str, str] | None = None
        self.digest_source = MANIFEST
        self.origin = ""

    # -- files ------------------------------------------------------------------------------
    def refuse(self, problem: str) -> ModelFormatError:
        if not self.origin:
            return ModelFormatError(f"{self.folder}: {problem}.")
        return ModelFormatError(
            f"{self.folder}: {problem} {self.origin}. The model was edited, is corrupt or comes "
            "from a different forecaster version: restore the folder from a backup, refit and "
            "save it again with this version, or load it with the version that wrote it."
        )

    def read(self, name: str, limit: int, what: str) -> bytes:
        """The bytes of the file ``name`` (a regular file of at most ``limit`` bytes), checked
        against its sha256 when the folder lists one."""
        try:
            data = self.pinned.read(name, limit, what=what)
        except FileNotFoundError:
            raise self.refuse(f"{name} (the {what}) is missing") from None
        except ModelFormatError as exc:
            raise self.refuse(str(exc).rstrip(".")) from exc
        if self.digests is not None:
            expected, found = self.digests.get(name), _io.sha256_bytes(data)
            if expected != found:
                raise self.refuse(
                    f"{name} does not match its sha256 in {self.digest_source} ({expected!r} "
                    f"expected, {found!r} found): the file was modified, truncated or swapped "
                    "after it was saved"
                )
        return data

    def manifest(self) -> dict[str, Any] | None:
        """The model's manifest (format 3), checked whole; None when there is none."""
        if not self.pinned.exists(MANIFEST):
            return None
        data = self.read(MANIFEST, MANIFEST_LIMIT, "manifest")
        manifest = _io.load_json_bounded(
            data, source=f"{self.folder}/{MANIFEST}", error=ModelFormatError
        )
        files = manifest.get("files") if isinstance(manifest, dict) else None
        details = manifest.get("details") if isinstance(manifest, dict) else None
        if not (
            isinstance(manifest, dict)
            and manifest.get("owner") == "forecaster"
            and manifest.get("kind") == KIND
            and isinstance(files, dict)
            and all(isinstance(v, str) for v in files.values())
            and isinstance(details, dict)
            and details.get("format") == FORMAT
        ):
            raise self.refuse(f"{MANIFEST} is not the manifest of a forecaster model")
        if manifest.get("digest") != _io.manifest_digest(manifest) or data != _io.manifest_bytes(
            manifest
        ):
            raise self.refuse(
                f"{MANIFEST} was edited after the model was saved (it does not match its own "
                "digest); restore the folder from a backup, or refit and save the model again"
            )
        return manifest

    # -- the estimator ------------------------------------------------------------------------
    def estimator(self) -> tuple[Any, str | None]:
        """The estimator and, for an older format, the warning to give."""
        manifest = self.manifest()
        limit = CONFIG_LIMIT if manifest is not None else LEGACY_CONFIG_LIMIT
        if manifest is not None:
            self.digests = dict(manifest["files"])
        config = _io.load_json_bounded(
            self.read(CONFIG, limit, "model config"),
            source=f"{self.folder}/{CONFIG}",
            error=ModelFormatError,
        )
        version = self.version(config, manifest)
        name = config["estimator"]
        estimator = self.parameters(config, version, name)
        network_config = self.network_config(config)
        _check_consistent(estimator, config, network_config, self.refuse)
        notice = self.files(config, version, name, manifest)
        arrays = self.state(config, version, estimator)
        network = self.network(network_config)
        _restore(estimator, config, arrays, network, self)
        return estimator, notice

    def version(self, config: Any, manifest: dict[str, Any] | None) -> int:
        """The format version, after checking that this package reads it."""
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise self.refuse(f"it holds no forecaster model ({CONFIG} has another format)")
        version = config.get("format_version")
        listed = manifest["details"].get("format_version") if manifest else None
        written = f"forecaster {config.get('package_version', '(unknown version)')}"
        reads = (
            f"this forecaster ({forecaster.__version__}) reads model formats "
            f"{MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
        )
        if _is_int(version) and version > FORMAT_VERSION:
            raise ModelFormatError(
                f"{self.folder} was written with model format {version} by {written}; {reads}. "
                "Upgrade forecaster to load it (pip install -U forecaster), or refit and save "
                "the model with this version."
            )
        if not _is_int(version) or version < MIN_FORMAT_VERSION:
            raise ModelFormatError(
                f"{self.folder}: {CONFIG} has an invalid format_version {version!r} (written by "
                f"{written}); {reads}. The config was edited or is corrupt: restore it, or refit "
                "and save the model again."
            )
        self.origin = f"(model format {version}, written by {written}; {reads})"
        if manifest is None and version >= 3:
            raise self.refuse(f"{MANIFEST} is missing (a format-{version} model has one)")
        if manifest is not None and (listed != version or version < 3):
            raise self.refuse(
                f"{MANIFEST} names model format {listed!r} but {CONFIG} format {version!r}"
            )
        classes = _estimator_classes()
        name = config.get("estimator")
        if not isinstance(name, str) or name not in classes:
            raise self.refuse(
                f"{CONFIG} names an unknown estimator class {name!r}; this version knows "
                f"{', '.join(sorted(classes))}"
            )
        if manifest is not None and manifest["details"].get("estimator") != name:
            raise self.refuse(f"{MANIFEST} and {CONFIG} name different estimators")
        return version

    def parameters(self, config: dict[str, Any], version: int, name: str) -> Any:
        """The estimator with its saved parameters, validated (nothing allocated yet)."""
        is_forecaster = name != "RNNRegressor"
        required = {*_REQUIRED_KEYS, *(_FORECASTER_KEYS if is_forecaster else _REGRESSOR_KEYS)}
        if version >= 2:
            required.add("checksums" if version == 2 else "package_version")
        if version >= 3 and is_forecaster:
            required |= {"n_series", *_FORECASTER_EXTRA}
        missing = sorted(required - set(config))
        unknown = sorted(set(config) - _KNOWN_KEYS[version])
        if missing or unknown:
            detail = _listed(missing=missing, unknown=unknown)
            raise self.refuse(f"{CONFIG} does not have the entries this version expects ({detail})")
        cls = _estimator_classes()[name]
        params = _migrate(config["params"], cls().get_params(), "parameters", self.refuse)
        try:
            estimator = cls(**params)
            validate = getattr(estimator, "validate_params", None)
            if validate is not None:
                validate()
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.refuse(f"the parameters in {CONFIG} are invalid ({exc})") from exc
        return estimator

    def network_config(self, config: dict[str, Any]) -> dict[str, Any]:
        network = config["network"]
        if not isinstance(network, dict):
            raise self.refuse(f"the network configuration is {type(network).__name__}, not a dict")
        return {**{k: v for k, v in _NETWORK_ADDED.items() if k not in network}, **network}

    def files(
        self, config: dict[str, Any], version: int, name: str, manifest: dict[str, Any] | None
    ) -> str | None:
        """Check which files the folder vouches for; the warning an older format gets."""
        expected = {CONFIG, WEIGHTS} | ({KEYS} if name != "RNNRegressor" else set())
        if manifest is not None:
            listed, expected = set(manifest["files"]), expected | {STATE}
            if listed != expected:
                detail = _listed(
                    missing=sorted(expected - listed), unknown=sorted(listed - expected)
                )
                raise self.refuse(f"{MANIFEST} does not list the files of a {name} ({detail})")
            return None
        package = config.get("package_version", "?")
        if version == 1:
            return (
                f"{self.folder} was saved in model format 1 (forecaster {package}), which has no "
                "checksums: its files are loaded without an integrity check. Save it again to "
                f"upgrade it to format {FORMAT_VERSION}."
            )
        checksums = config["checksums"]
        if not isinstance(checksums, dict) or set(checksums) != expected - {CONFIG}:
            raise self.refuse(f"the checksums in {CONFIG} are not a mapping of file name to sha256")
        self.digests, self.digest_source = dict(checksums), CONFIG
        return (
            f"{self.folder} was saved in model format 2 (forecaster {package}): its weights and "
            f"keys are checked, but {CONFIG} (scaler state, frequency, schema, calendar) is not "
            "integrity-checked. Save the model again to upgrade it to format "
            f"{FORMAT_VERSION}, which covers every file."
        )

    def state(self, config: dict[str, Any], version: int, estimator: Any) -> dict[str, np.ndarray]:
        """The arrays fitted beside the network (from ``state.safetensors``, or the JSON of
        formats 1 and 2), with the shapes the config and network imply."""
        expected = _expected_state(config, estimator, self.refuse)
        if version >= 3:
            data = self.read(STATE, _safetensors_limit(expected), "fitted state")
            self.check_tensors(data, STATE, expected, "the state the config describes")
            try:
                return dict(safetensors.numpy.load(data))
            except (SafetensorError, ValueError) as exc:
                raise self.refuse(f"{STATE} cannot be read ({exc})") from exc
        return _legacy_state(config, expected, self.refuse)

    def network(self, network_config: dict[str, Any]) -> torch.nn.Module:
        """The network the config describes, with the weights of ``weights.safetensors``."""
        expected = _expected_weights(network_config, self.refuse)
        data = self.read(WEIGHTS, _safetensors_limit(expected), "weights")
        self.check_tensors(data, WEIGHTS, expected, f"the network configuration in {CONFIG}")
        try:
            state = safetensors.torch.load(data)
        except (SafetensorError, ValueError) as exc:
            raise self.refuse(f"the weights in {WEIGHTS} cannot be read ({exc})") from exc
        try:
            network = network_from_config(network_config)
            network.load_state_dict(state, strict=True)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise self.refuse(
                f"the weights in {WEIGHTS} do not match the network configuration in {CONFIG} "
                f"({_first_lines(exc)})"
            ) from exc
        return network.eval()

    def check_tensors(
        self, data: bytes, name: str, expected: dict[str, tuple[str, list[int]]], what: str
    ) -> None:
        """The safetensors header of ``data`` is sane and lists exactly ``expected``."""
        header, _ = _io.read_safetensors_header(
            data, source=f"{self.folder}/{name}", error=ModelFormatError, max_header=HEADER_LIMIT
        )
        found = {key: (entry["dtype"], entry["shape"]) for key, entry in header.items()}
        missing = sorted(set(expected) - set(found))
        unknown = sorted(set(found) - set(expected))
        differ = [
            f"{key} is {found[key][0]} {found[key][1]}, expected {expected[key][0]} "
            f"{expected[key][1]}"
            for key in sorted(set(found) & set(expected))
            if found[key] != expected[key]
        ]
        if missing or unknown or differ:
            detail = _listed(**{"missing tensors": missing[:5], "unexpected tensors": unknown[:5]})
            detail = "; ".join(part for part in (detail, "; ".join(differ[:5])) if part)
            if name == WEIGHTS:
                raise self.refuse(
                    f"the weights in {WEIGHTS} do not match the network configuration in "
                    f"{CONFIG} ({detail})"
                )
            raise self.refuse(f"{name} does not hold {what} ({detail})")


# ------------------------------------------------------------------------------------------
# what a config implies
# ------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(
    value: Any, what: str, refuse: Callable[[str], ModelFormatError], minimum: int = 0
) -> int:
    if not _is_int(value) or not minimum <= value <= _MAX_INT:
        raise refuse(f"{what} is {value!r}; expected an integer >= {minimum}")
    return value


def _names(value: Any, what: str, refuse: Callable[[str], ModelFormatError]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise refuse(f"{what} is {_short(value)}; expected a list of names")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _targets(estimator: Any) -> list[str]:
    target = estimator.target
    return [target] if isinstance(target, str) else [str(t) for t in target]


def _expected_state(
    config: dict[str, Any], estimator: Any, refuse: Callable[[str], ModelFormatError]
) -> dict[str, tuple[str, list[int]]]:
    """Name -> (dtype, shape) of the arrays fitted beside the network."""
    if "regressor" in config:
        reg = config["regressor"]
        if not isinstance(reg, dict):
            raise refuse(f"the regressor state in {CONFIG} is {type(reg).__name__}, not a dict")
        channels = _count(reg.get("n_channels"), "regressor.n_channels", refuse, minimum=1)
        return {"x_mean": ("F64", [channels]), "x_scale": ("F64", [channels])}
    scaler = config["scaler"]
    if not isinstance(scaler, dict):
        raise refuse(f"the scaler state in {CONFIG} is {type(scaler).__name__}, not a dict")
    columns = len(_names(scaler.get("columns"), "scaler.columns", refuse))
    if "n_series" in config:
        series = _count(config["n_series"], "n_series", refuse, minimum=1)
    else:  # formats 1 and 2: as many series as rows of the scaler's center
        center = scaler.get("center")
        if not isinstance(center, list) or not center:
            raise refuse(
                f"scaler.center in {CONFIG} is {_short(center)}; expected an array of numbers "
                "with one row per series"
            )
        series = len(center)
    expected = {
        "scaler.center": ("F64", [series, columns]),
        "scaler.scale": ("F64", [series, columns]),
        "scaler.n_fit_rows": ("I64", [series]),
    }
    if estimator.target_transform == "boxcox":
        expected["target_lambdas"] = ("F64", [series, len(_targets(estimator))])
    return expected


def _legacy_state(
    config: dict[str, Any],
    expected: dict[str, tuple[str, list[int]]],
    refuse: Callable[[str], ModelFormatError],
) -> dict[str, np.ndarray]:
    """The state arrays of a format-1 or 2 config (JSON lists), checked like format 3's."""
    if "regressor" in config:
        holder, keys = config["regressor"], ("x_mean", "x_scale")
        sources = {key: (holder, key, f"regressor.{key}") for key in keys}
    else:
        scaler = config["scaler"]
        if "n_fit_rows" not in scaler:  # format 1 models may lack it
            scaler = {**scaler, "n_fit_rows": [0] * expected["scaler.center"][1][0]}
        keys = ("center", "scale", "n_fit_rows")
        sources = {f"scaler.{key}": (scaler, key, f"scaler.{key}") for key in keys}
        sources["target_lambdas"] = (config, "target_lambdas", "target_lambdas")
    arrays = {}
    for key, (holder, entry, label) in sources.items():
        value = holder.get(entry)
        if key not in expected:
            if value is not None:
                raise refuse(f"{CONFIG} has {label} but the model's parameters use none")
            continue
        dtype, shape = expected[key]
        arrays[key] = _json_array(value, shape, dtype == "I64", f"{label} in {CONFIG}", refuse)
    return arrays


def _json_array(
    value: Any,
    shape: list[int],
    integer: bool,
    what: str,
    refuse: Callable[[str], ModelFormatError],
) -> np.ndarray:
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
        raise refuse(f"{what} is not an array of {kind} of shape {shape}: {_short(value)}")
    try:
        return np.array(value, dtype=np.int64 if integer else np.float64)
    except (OverflowError, ValueError) as exc:
        raise refuse(f"{what} holds a value out of range ({exc})") from exc


def _expected_weights(
    network_config: dict[str, Any], refuse: Callable[[str], ModelFormatError]
) -> dict[str, tuple[str, list[int]]]:
    """Name -> (dtype, shape) of every tensor of the network the config describes, found by
    building one member on the ``meta`` device (no memory allocated)."""
    member = dict(network_config)
    n_members = member.pop("n_members", 1)
    if not _is_int(n_members) or not 1 <= n_members <= _MAX_INT:
        raise refuse(f"the network's n_members is {n_members!r}; expected an integer >= 1")
    try:
        with torch.device("meta"):
            state = network_from_config(member).state_dict()
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise refuse(f"the network configuration in {CONFIG} is invalid ({exc})") from exc
    shapes = {}
    for key, tensor in state.items():
        dtype = _SAFETENSORS_DTYPES.get(tensor.dtype, str(tensor.dtype))
        shapes[key] = (dtype, list(tensor.shape))
    if n_members == 1:
        return shapes
    return {f"members.{i}.{key}": spec for i in range(n_members) for key, spec in shapes.items()}


def _safetensors_limit(expected: dict[str, tuple[str, list[int]]]) -> int:
    """Largest size of a safetensors file holding exactly ``expected``."""
    data = sum(_ITEM_SIZE.get(dtype, 8) * math.prod(shape) for dtype, shape in expected.values())
    return 8 + HEADER_LIMIT + data


def _check_consistent(
    estimator: Any,
    config: dict[str, Any],
    network: dict[str, Any],
    refuse: Callable[[str], ModelFormatError],
) -> None:
    """The parameters that shape predictions must agree with the network the weights fit."""
    params = estimator.get_params()
    expected = {k: params[k] for k in _SHARED_WITH_NETWORK if params.get(k) is not None}
    expected["n_members"] = params.get("n_ensemble", 1)
    if "regressor" in config:
        reg = config["regressor"]
        if isinstance(reg, dict):
            expected.update(
                lookback=reg.get("lookback"),
                horizon=reg.get("horizon"),
                n_features=reg.get("n_channels"),
            )
    else:
        expected["n_targets"] = len(_targets(estimator))
        scaler = config["scaler"]
        if isinstance(scaler, dict) and isinstance(scaler.get("columns"), list):
            expected["n_features"] = len(scaler["columns"])
    differ = {k: (v, network.get(k)) for k, v in expected.items() if v != network.get(k)}
    if differ:
        detail = ", ".join(f"{k} {a!r} vs network {b!r}" for k, (a, b) in differ.items())
        raise refuse(f"the parameters and the network configuration disagree ({detail})")


# ------------------------------------------------------------------------------------------
# the fitted attributes
# ------------------------------------------------------------------------------------------


def _restore(
    estimator: Any,
    config: dict[str, Any],
    arrays: dict[str, np.ndarray],
    network: torch.nn.Module,
    reader: _Reader,
) -> None:
    """Set the fitted attributes from the checked config, state and network."""
    refuse = reader.refuse
    history = config.get("history", [])
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise refuse(f"the history in {CONFIG} is not a list of records")
    estimator.network_ = network
    estimator.history_ = history
    estimator.fitted_params_ = copy.deepcopy(estimator.get_params(deep=False))
    if "feature_names_in" in config:
        names = _names(config["feature_names_in"], "feature_names_in", refuse)
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    if "regressor" in config:
        _restore_regressor(estimator, config["regressor"], arrays, refuse)
    else:
        _restore_forecaster(estimator, config, arrays, reader)


def _restore_regressor(
    estimator: Any,
    reg: dict[str, Any],
    arrays: dict[str, np.ndarray],
    refuse: Callable[[str], ModelFormatError],
) -> None:
    for key in ("y_mean", "y_scale"):
        value = reg.get(key)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise refuse(f"regressor.{key} in {CONFIG} is {value!r}; expected a finite number")
    if reg["y_scale"] <= 0 or reg.get("y_ndim") not in (1, 2):
        raise refuse(f"regressor.y_scale or y_ndim in {CONFIG} is out of range")
    x_mean, x_scale = arrays["x_mean"], arrays["x_scale"]
    if not (np.isfinite(x_mean).all() and np.isfinite(x_scale).all() and (x_scale > 0).all()):
        raise refuse("the regressor's x_mean and x_scale must be finite (and x_scale > 0)")
    estimator.x_mean_, estimator.x_scale_ = x_mean, x_scale
    estimator.y_mean_, estimator.y_scale_ = float(reg["y_mean"]), float(reg["y_scale"])
    estimator.y_ndim_ = reg["y_ndim"]
    for key in ("n_features_in", "n_channels", "lookback", "horizon"):
        setattr(estimator, f"{key}_", _count(reg.get(key), f"regressor.{key}", refuse, minimum=1))


def _restore_forecaster(
    estimator: Any, config: dict[str, Any], arrays: dict[str, np.ndarray], reader: _Reader
) -> None:
    refuse = reader.refuse
    meta = {k: v for k, v in config["scaler"].items() if k in ("method", "columns")}
    scaler_arrays = {k.removeprefix("scaler."): v for k, v in arrays.items() if "scaler." in k}
    try:
        estimator.scaler_ = PanelScaler.from_state(meta, scaler_arrays)
        if not isinstance(config["freq"], str):
            raise TypeError(f"freq is {config['freq']!r}, not a string such as '1d'")
        estimator.freq_ = Frequency.parse(config["freq"])
    except (DataValidationError, TypeError, ValueError) as exc:
        raise refuse(f"the scaler state or frequency is invalid ({exc})") from exc
    schema = config["schema"]
    if not isinstance(schema, dict) or not all(isinstance(v, str) for v in schema.values()):
        raise refuse(f"the schema in {CONFIG} is not a mapping of column to dtype")
    estimator.schema_ = dict(schema)
    calendar = _names(config.get("calendar", []), "calendar", refuse)
    columns = config["scaler"]["columns"]
    targets = _targets(estimator)
    names = [f"{name}_{part}" for name in calendar for part in ("sin", "cos")]
    if columns[: len(targets)] != targets or (names and columns[-len(names) :] != names):
        raise refuse(
            f"the scaler's columns {_short(columns)} do not start with the targets {targets} "
            f"and end with the calendar features {names}"
        )
    estimator.calendar_ = tuple(calendar)
    for key in ("n_train_windows", "n_val_windows"):
        setattr(estimator, f"{key}_", _count(config.get(key, 0), key, refuse))
    lambdas = arrays.get("target_lambdas")
    if lambdas is not None and not np.isfinite(lambdas).all():
        raise refuse("the Box-Cox lambdas must be finite")
    estimator.target_lambdas_ = lambdas
    estimator.keys_ = _keys(reader, estimator, len(estimator.scaler_.center_))


def _train_end_column(id_column: str) -> str:
    """The name of the last-fitted-time column of ``keys.parquet``: :data:`TRAIN_END`, or a
    variant of it when the id column has that name (see
    :func:`forecaster.evaluation.metrics.temporary_names`)."""
    return temporary_names([id_column], TRAIN_END)[0]


def _keys_frame(estimator: Any) -> pl.DataFrame:
    """``keys_``, with the last fitted time of each series (``train_end_``) when the estimator
    has it, in the column :data:`TRAIN_END` (see :func:`_train_end_column`)."""
    ends = estimator.__dict__.get("train_end_")
    if ends is None or len(ends) != estimator.keys_.height:
        return estimator.keys_
    (id_column,) = estimator.keys_.columns
    return estimator.keys_.with_columns(ends.alias(_train_end_column(id_column)))


def _keys(reader: _Reader, estimator: Any, n_series: int) -> pl.DataFrame:
    """The series keys, as many as the scaler has rows, in the id column (and ``train_end_``
    set from the :data:`TRAIN_END` column when there is one, of the time column's dtype)."""
    data = reader.read(KEYS, KEYS_LIMIT + KEYS_BYTES_PER_SERIES * n_series, "series keys")
    column = estimator.id_col if estimator.id_col is not None else SERIES_ID
    try:
        rows = pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item()
        if rows == n_series:
            keys = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise reader.refuse(f"{KEYS} cannot be read ({_first_lines(exc, 1)})") from exc
    if rows != n_series:
        raise reader.refuse(
            f"keys and scaler state disagree: {KEYS} has {rows} series, the scaler {n_series}"
        )
    train_end = _train_end_column(column)
    if keys.columns not in ([column], [column, train_end]):
        raise reader.refuse(
            f"{KEYS} has the columns {keys.columns}, expected [{column!r}] or "
            f"[{column!r}, {train_end!r}]"
        )
    if train_end in keys.columns:
        ends = keys[train_end]
        expected = estimator.schema_.get(estimator.time_col)
        if str(ends.dtype) != expected or ends.null_count():
            raise reader.refuse(
                f"the column {train_end!r} of {KEYS} must hold the last fitted time of each "
                f"series as {expected}, without nulls; it holds {ends.dtype} with "
                f"{ends.null_count()} nulls"
            )
        estimator.train_end_ = ends.alias(estimator.time_col)
        keys = keys.drop(train_end)
    return keys


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _first_lines(exc: BaseException, n: int = 3) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:n]) + (" ..." if len(lines) > n else "")


def _migrate(
    saved: Any,
    expected: dict[str, Any],
    what: str,
    refuse: Callable[[str], ModelFormatError],
) -> dict[str, Any]:
    """The saved parameters, with those added since the model was written filled in."""
    if not isinstance(saved, dict):
        raise refuse(f"the {what} are {type(saved).__name__}, not a dict")
    unknown = sorted(set(saved) - set(expected))
    absent = sorted(set(expected) - set(saved) - set(_PARAMS_ADDED))
    if unknown or absent:
        detail = _listed(**{"unknown to this version:": unknown, "missing:": absent})
        raise refuse(f"the {what} in {CONFIG} differ from this version's ({detail})")
    added = {k: v for k, v in _PARAMS_ADDED.items() if k in expected and k not in saved}
    return {**added, **saved}


def _listed(**names: list[str]) -> str:
    """``"missing ['a']; unknown ['b']"``: each non-empty list after its label."""
    return "; ".join(f"{label} {values}" for label, values in names.items() if values)

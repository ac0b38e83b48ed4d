"""Save and load fitted estimators without pickle.

A saved model is a directory with

- ``config.json``: format name and version, package version, estimator class and parameters,
  network configuration, scaler state, frequency, training schema, history and the sha256
  checksums of the other files;
- ``weights.safetensors``: the network's tensors (safetensors never executes code);
- ``keys.parquet`` (forecasters only): the series keys seen in ``fit``, with their dtype.

The directory is written next to its destination under a temporary name and renamed into place,
so a crash never leaves a half-written model, and an existing model is replaced atomically.
Loading never unpickles anything and refuses, with a :class:`ModelFormatError` that names the
format version found, the versions this package reads and what to do, whatever it cannot
vouch for: an unknown or newer format, missing or unknown config entries or parameters,
parameters that disagree with the network, weights that do not fit the network, and files
that do not match their checksums. Rather that than silently wrong forecasts.

Format versions
---------------
2 (written now)
    Format 1 plus ``checksums`` in ``config.json``: sha256 of ``weights.safetensors`` and
    ``keys.parquet``, verified on load, so edited, truncated or swapped files are refused.
1 (read, migrated)
    No checksums: loaded without the integrity check, with a
    :class:`~forecaster.exceptions.ForecasterWarning`; saving the model again writes format 2.
    Estimator parameters and network entries added since (``calendar``, ``n_ensemble``, ...)
    take the values that reproduce how such a model was trained.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import safetensors.torch
from safetensors import SafetensorError

import forecaster
from forecaster.data import Frequency, _as_tuple
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    NotFittedError,
)
from forecaster.networks import network_from_config
from forecaster.scaling import PanelScaler

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFormatError", "load", "save"]

FORMAT = "forecaster-model"
FORMAT_VERSION = 2
"""Version of the directory layout written by :func:`save` (see the module docstring)."""
MIN_FORMAT_VERSION = 1
"""Oldest version :func:`load` still reads (migrating it)."""
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
KEYS = "keys.parquet"

_REQUIRED_KEYS = frozenset({"format", "format_version", "estimator", "params", "network"})
_FORECASTER_KEYS = frozenset({"scaler", "freq", "schema"})
_REGRESSOR_KEYS = frozenset({"regressor"})
_KNOWN_KEYS = (
    _REQUIRED_KEYS
    | _FORECASTER_KEYS
    | _REGRESSOR_KEYS
    | {
        "package_version",
        "history",
        "feature_names_in",
        "n_train_windows",
        "n_val_windows",
        "calendar",
        "target_lambdas",
        "checksums",
    }
)
"""Every entry of ``config.json`` this version understands; others are refused on load."""

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


class ModelFormatError(ForecasterError, ValueError):
    """A directory is not a (readable) saved forecaster model."""


def _estimator_classes() -> dict[str, type]:
    from forecaster import estimators

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


def save(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to the directory ``path`` atomically.

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
        A fitted estimator.
    path : str or path-like
        Destination directory; replaced atomically when it already holds a model.

    Returns
    -------
    pathlib.Path
        The directory written.

    Examples
    --------
    >>> import numpy as np, tempfile, forecaster
    >>> X, y = np.random.default_rng(0).normal(size=(32, 8)), np.zeros(32)
    >>> model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    >>> folder = forecaster.save(model, tempfile.mkdtemp() + "/model")
    >>> sorted(p.name for p in folder.iterdir())
    ['config.json', 'weights.safetensors']
    """
    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise DataValidationError(f"Cannot save a {name}; expected a forecaster estimator.")
    if not hasattr(estimator, "network_"):
        raise NotFittedError(f"This {name} is not fitted yet; fit it before saving.")
    destination = Path(path)
    is_model = _is_saved_model(destination)
    if (
        destination.exists()
        and not is_model
        and (not destination.is_dir() or any(destination.iterdir()))
    ):
        raise DataValidationError(
            f"{destination} exists and is not a saved model; refusing to overwrite it. "
            "Choose a new path or remove it."
        )
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": forecaster.__version__,
        "estimator": name,
        "params": estimator.get_params(deep=False),
        "network": estimator.network_.get_config(),
        "history": estimator.history_,
    }
    if hasattr(estimator, "feature_names_in_"):
        config["feature_names_in"] = [str(name) for name in estimator.feature_names_in_]
    if hasattr(estimator, "scaler_"):
        config["scaler"] = estimator.scaler_.to_dict()
        config["freq"] = str(estimator.freq_)
        config["schema"] = estimator.schema_
        config["n_train_windows"] = estimator.n_train_windows_
        config["n_val_windows"] = estimator.n_val_windows_
        config["calendar"] = list(getattr(estimator, "calendar_", ()))
        lambdas = getattr(estimator, "target_lambdas_", None)
        config["target_lambdas"] = None if lambdas is None else np.asarray(lambdas).tolist()
    else:
        config["regressor"] = {
            "x_mean": estimator.x_mean_.tolist(),
            "x_scale": estimator.x_scale_.tolist(),
            "y_mean": estimator.y_mean_,
            "y_scale": estimator.y_scale_,
            "y_ndim": estimator.y_ndim_,
            "n_features_in": estimator.n_features_in_,
            "n_channels": estimator.n_channels_,
            "lookback": estimator.lookback_,
            "horizon": estimator.horizon_,
        }
    try:  # everything must be JSON before anything is written
        json.dumps(config, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"Cannot save this {name}: {exc} Parameters must be plain values (str, int, "
            "float, bool, None, lists of them); set_params() them to such values and save again."
        ) from exc
    destination.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in estimator.network_.state_dict().items()}
    weights = safetensors.torch.save(state, metadata={"format": FORMAT})
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        config["checksums"] = {WEIGHTS: _write_file(staging / WEIGHTS, weights)}
        if hasattr(estimator, "keys_"):
            buffer = io.BytesIO()
            estimator.keys_.write_parquet(buffer)
            config["checksums"][KEYS] = _write_file(staging / KEYS, buffer.getvalue())
        text = json.dumps(config, indent=2, default=_json_default)
        _write_file(staging / CONFIG, text.encode("utf-8"))
        _replace_directory(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def _is_saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds a forecaster model (not merely some ``config.json``)."""
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def _write_file(file: Path, data: bytes) -> str:
    """Write ``data`` to ``file`` durably (fsync); return its sha256 hex digest."""
    with open(file, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Cannot write {type(value).__name__} {value!r} to the model config.")


def _replace_directory(staging: Path, destination: Path) -> None:
    """Rename ``staging`` to ``destination``, atomically replacing an existing directory."""
    if not destination.exists():
        os.replace(staging, destination)
        return
    old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
    os.replace(destination, old)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(old, destination)
        raise
    shutil.rmtree(old, ignore_errors=True)


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator written by :func:`save` (no pickle is involved).

    Models of an older format are migrated (see the module docstring: format 1 has no
    checksums; parameters added since a model was written take the value that reproduces how
    it was trained); anything else that does not match what this version writes is refused.

    Raises
    ------
    ModelFormatError
        When the directory is missing or is not a forecaster model; was written in a newer
        format; has a config with missing, unknown or inconsistent entries; or has weights or
        keys that are unreadable, do not match their checksums or do not fit the network. The
        message says which format version was found, which this package reads, and what to do.
    """
    folder = Path(path)
    config_path = folder / CONFIG
    if not folder.is_dir():
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: no such directory. "
            "Pass the directory written by model.save(path)."
        )
    if not config_path.is_file():
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: {CONFIG} is missing. "
            "Pass the directory written by model.save(path)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(
            f"{config_path} is not valid JSON ({exc}); the model is corrupt. Restore the "
            "directory from a backup or refit and save the model again."
        ) from exc
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {config_path}: {exc}.") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFormatError(f"{folder} holds no forecaster model ({CONFIG} has another format).")
    version = config.get("format_version")
    written = f"forecaster {config.get('package_version', '(unknown version)')}"
    reads = (
        f"this forecaster ({forecaster.__version__}) reads model formats "
        f"{MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
    )
    if isinstance(version, bool) or not isinstance(version, int) or version < MIN_FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder}: {CONFIG} has an invalid format_version {version!r} (written by "
            f"{written}); {reads}. The config was edited or is corrupt: restore it, or refit "
            "and save the model again."
        )
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder} was written with model format {version} by {written}; {reads}. "
            "Upgrade forecaster to load it (pip install -U forecaster), or refit and save the "
            "model with this version."
        )
    origin = f"(model format {version}, written by {written}; {reads})"

    def refuse(problem: str) -> ModelFormatError:
        return ModelFormatError(
            f"{folder}: {problem} {origin}. The model was edited, is corrupt or comes from a "
            "different forecaster version: refit and save it again with this version, or load "
            "it with the version that wrote it."
        )

    classes = _estimator_classes()
    name = config.get("estimator")
    if name not in classes:
        raise refuse(
            f"{CONFIG} names an unknown estimator class {name!r}; this version knows "
            f"{', '.join(sorted(classes))}."
        )
    is_forecaster = name != "RNNRegressor"
    required = {*_REQUIRED_KEYS, *(_FORECASTER_KEYS if is_forecaster else _REGRESSOR_KEYS)}
    if version >= 2:
        required.add("checksums")
    missing_keys = sorted(required - set(config))
    unknown_keys = sorted(set(config) - _KNOWN_KEYS)
    if missing_keys or unknown_keys:
        detail = _listed(missing=missing_keys, unknown=unknown_keys)
        raise refuse(f"{CONFIG} does not have the entries this version expects ({detail})")
    params = _migrate(config.get("params"), classes[name]().get_params(), "parameters", refuse)
    network_config = config.get("network")
    if not isinstance(network_config, dict):
        raise refuse(f"the network configuration is {type(network_config).__name__}, not a dict")
    network_config = {
        **{k: v for k, v in _NETWORK_ADDED.items() if k not in network_config},
        **network_config,
    }

    checksums = _checksums(config, version, folder, refuse)
    files_needed = [WEIGHTS, KEYS] if is_forecaster else [WEIGHTS]
    blobs: dict[str, bytes] = {}
    for file in files_needed:
        try:
            blobs[file] = (folder / file).read_bytes()
        except OSError as exc:
            raise ModelFormatError(
                f"Cannot read the {'weights' if file == WEIGHTS else 'series keys'} in "
                f"{folder / file}: {exc} {origin}. Restore the file or refit and save again."
            ) from exc
        if checksums is not None:
            found = hashlib.sha256(blobs[file]).hexdigest()
            if checksums.get(file) != found:
                raise refuse(
                    f"{file} does not match its checksum in {CONFIG} (sha256 "
                    f"{checksums.get(file)!r} expected, {found!r} found): the file was "
                    "modified, truncated or swapped after it was saved"
                )

    try:
        estimator = classes[name](**params)
        check = getattr(estimator, "validate_params", None)
        if check is not None:
            check()
        network = network_from_config(network_config)
    except (TypeError, ValueError) as exc:
        raise refuse(f"the parameters or network configuration are invalid ({exc})") from exc
    try:
        state = safetensors.torch.load(blobs[WEIGHTS])
    except (SafetensorError, ValueError, OSError) as exc:
        raise ModelFormatError(
            f"Cannot read the weights in {folder / WEIGHTS}: {exc} {origin}. Restore the file "
            "or refit and save the model again."
        ) from exc
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise refuse(
            f"the weights in {WEIGHTS} do not match the network configuration in {CONFIG} "
            f"({_first_lines(exc)})"
        ) from exc
    _check_consistent(estimator, config, network_config, refuse)
    estimator.network_ = network.eval()
    estimator.history_ = config.get("history", [])
    try:
        if "feature_names_in" in config:
            estimator.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        if is_forecaster:
            estimator.scaler_ = PanelScaler.from_dict(config["scaler"])
            estimator.freq_ = Frequency.parse(config["freq"])
            if not isinstance(config["schema"], dict):
                raise TypeError(f"schema is {type(config['schema']).__name__}, not a dict")
            estimator.schema_ = {str(k): str(v) for k, v in config["schema"].items()}
            estimator.keys_ = pl.read_parquet(io.BytesIO(blobs[KEYS]))
            estimator.n_train_windows_ = int(config.get("n_train_windows", 0))
            estimator.n_val_windows_ = int(config.get("n_val_windows", 0))
            estimator.calendar_ = tuple(config.get("calendar", ()))
            lambdas = config.get("target_lambdas")
            estimator.target_lambdas_ = (
                None if lambdas is None else np.asarray(lambdas, dtype=np.float64)
            )
            if estimator.keys_.height != estimator.scaler_.center_.shape[0]:
                raise refuse("keys and scaler state disagree")
        else:
            reg = config["regressor"]
            estimator.x_mean_ = np.asarray(reg["x_mean"], dtype=np.float64)
            estimator.x_scale_ = np.asarray(reg["x_scale"], dtype=np.float64)
            estimator.y_mean_ = float(reg["y_mean"])
            estimator.y_scale_ = float(reg["y_scale"])
            estimator.y_ndim_ = int(reg["y_ndim"])
            estimator.n_features_in_ = int(reg["n_features_in"])
            estimator.n_channels_ = int(reg["n_channels"])
            estimator.lookback_ = int(reg["lookback"])
            estimator.horizon_ = int(reg["horizon"])
    except ModelFormatError:
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        OSError,
        DataValidationError,
        pl.exceptions.PolarsError,
    ) as exc:
        raise refuse(f"the model is incomplete or corrupt: {exc!r}") from exc
    return estimator


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


def _checksums(
    config: dict[str, Any], version: int, folder: Path, refuse: Callable[[str], ModelFormatError]
) -> dict[str, str] | None:
    """The files' sha256 checksums (format 2), or None for format 1 (with a warning)."""
    if version == 1:
        warnings.warn(
            f"{folder} was saved in model format 1 (forecaster "
            f"{config.get('package_version', '?')}), which has no checksums: its files are "
            "loaded without an integrity check. Save it again to upgrade it to format "
            f"{FORMAT_VERSION}.",
            ForecasterWarning,
            stacklevel=3,
        )
        return None
    checksums = config["checksums"]
    if not isinstance(checksums, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in checksums.items()
    ):
        raise refuse(f"the checksums in {CONFIG} are not a mapping of file name to sha256")
    return checksums


def _check_consistent(
    estimator: Any,
    config: dict[str, Any],
    network: dict[str, Any],
    refuse: Callable[[str], ModelFormatError],
) -> None:
    """The parameters that shape predictions must agree with the network the weights fit."""
    params = estimator.get_params()
    expected = {k: params[k] for k in _SHARED_WITH_NETWORK if params.get(k) is not None}
    if "regressor" in config:
        reg = config["regressor"]
        expected.update(lookback=reg.get("lookback"), horizon=reg.get("horizon"))
    else:
        expected["n_targets"] = len(_as_tuple(estimator.target))
    differ = {k: (v, network.get(k)) for k, v in expected.items() if v != network.get(k)}
    if differ:
        detail = ", ".join(f"{k} {a!r} vs network {b!r}" for k, (a, b) in differ.items())
        raise refuse(f"the parameters and the network configuration disagree ({detail})")


def _listed(**names: list[str]) -> str:
    """``"missing ['a']; unknown ['b']"``: each non-empty list after its label."""
    return "; ".join(f"{label} {values}" for label, values in names.items() if values)

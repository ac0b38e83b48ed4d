"""Save and load fitted estimators without pickle.

A saved model is a directory with

- ``config.json``: format name and version, package version, estimator class and parameters,
  network configuration, scaler state, frequency, training schema and history;
- ``weights.safetensors``: the network's tensors (safetensors never executes code);
- ``keys.parquet`` (forecasters only): the series keys seen in ``fit``, with their dtype.

The directory is written next to its destination under a temporary name and renamed into place,
so a crash never leaves a half-written model, and an existing model is replaced atomically.
Loading checks the format, the class and the tensors, and never unpickles anything.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import safetensors.torch
from safetensors import SafetensorError

import forecaster
from forecaster.data import Frequency
from forecaster.exceptions import DataValidationError, ForecasterError, NotFittedError
from forecaster.networks import RecurrentNet
from forecaster.scaling import PanelScaler

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFormatError", "load", "save"]

FORMAT = "forecaster-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
KEYS = "keys.parquet"


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
    destination.parent.mkdir(parents=True, exist_ok=True)
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
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        state = {
            k: v.detach().cpu().contiguous() for k, v in estimator.network_.state_dict().items()
        }
        safetensors.torch.save_file(state, staging / WEIGHTS, metadata={"format": FORMAT})
        _fsync(staging / WEIGHTS)
        if hasattr(estimator, "keys_"):
            estimator.keys_.write_parquet(staging / KEYS)
            _fsync(staging / KEYS)
        with open(staging / CONFIG, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, default=_json_default)
            handle.flush()
            os.fsync(handle.fileno())
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


def _fsync(file: Path) -> None:
    with open(file, "rb") as handle:
        os.fsync(handle.fileno())


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

    Raises
    ------
    ModelFormatError
        When the directory is missing, is not a forecaster model, was written by a newer format
        version, or its weights do not match its configuration.
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
            f"{config_path} is not valid JSON ({exc}); the model is corrupt."
        ) from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFormatError(f"{folder} holds no forecaster model ({CONFIG} has another format).")
    version = config.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFormatError(f"{folder}: {CONFIG} has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder} was written with model format {version!r} by forecaster "
            f"{config.get('package_version')}; this forecaster ({forecaster.__version__}) reads "
            f"format <= {FORMAT_VERSION}. Upgrade forecaster to load it."
        )
    classes = _estimator_classes()
    name = config.get("estimator")
    if name not in classes:
        raise ModelFormatError(f"{folder} holds an unknown estimator class {name!r}.")
    try:
        estimator = classes[name](**config["params"])
        network = RecurrentNet.from_config(config["network"])
        state = safetensors.torch.load_file(folder / WEIGHTS)
        network.load_state_dict(state, strict=True)
    except (SafetensorError, FileNotFoundError, OSError) as exc:
        raise ModelFormatError(f"Cannot read the weights in {folder / WEIGHTS}: {exc}.") from exc
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(
            f"The weights or config in {folder} do not match ({exc}); the model is corrupt or "
            "was edited."
        ) from exc
    estimator.network_ = network.eval()
    estimator.history_ = config.get("history", [])
    try:
        if "feature_names_in" in config:
            estimator.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        if "scaler" in config:
            estimator.scaler_ = PanelScaler.from_dict(config["scaler"])
            estimator.freq_ = Frequency.parse(config["freq"])
            estimator.schema_ = dict(config["schema"])
            estimator.keys_ = pl.read_parquet(folder / KEYS)
            estimator.n_train_windows_ = int(config.get("n_train_windows", 0))
            estimator.n_val_windows_ = int(config.get("n_val_windows", 0))
            if estimator.keys_.height != estimator.scaler_.center_.shape[0]:
                raise ModelFormatError(f"{folder}: keys and scaler state disagree.")
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
        raise ModelFormatError(f"The model in {folder} is incomplete or corrupt: {exc!r}.") from exc
    return estimator

"""Writing a model folder: :func:`save` writes an estimator's :class:`ModelState` (from its
``_get_state()``) beside its destination and publishes it in one step."""

from __future__ import annotations

__all__ = ["is_legacy_model", "save"]

import io
import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
import safetensors.torch

import forecaster._io as _io
from forecaster._busy import using
from forecaster._hashing import sha256_stream
from forecaster._version import __version__
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ModelSaveError,
    OwnershipError,
)
from forecaster.persistence.format import (
    CONFIG,
    CONFIG_LIMIT,
    FORMAT,
    FORMAT_VERSION,
    KEYS,
    KIND,
    LEGACY_CONFIG_LIMIT,
    STATE,
    WEIGHTS,
)
from forecaster.persistence.migration import LEGACY_WITHOUT_KEYS
from forecaster.persistence.state import ModelState, registered_model_classes


def save(
    estimator: Any, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write a fitted estimator to the folder ``path`` atomically.

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
        A fitted estimator (of a class given to
        :func:`~forecaster.persistence.register_model_class`).
    path : str or path-like
        Destination folder: a new path, an empty folder, or a model saved earlier (replaced
        in one step when nothing was added to it or changed in it since).
    provenance : mapping, optional
        JSON values that describe how the model's data were made, recorded in the folder's
        manifest (``details["provenance"]``; :func:`saved_provenance` reads them): a pipeline
        records its ``[features]`` there, which change what the target columns hold (log
        returns, MFCC settings), so that a model is not used on data made another way.

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
    if name not in registered_model_classes():
        raise DataValidationError(f"Cannot save a {name}; expected a forecaster estimator.")
    with using(estimator, "save"):  # one fit's attributes, not a refit's in another thread
        state: ModelState = estimator._get_state()  # refuses an unfitted or changed estimator
    _writing(destination, lambda: _check_destination(destination))
    files = {
        CONFIG: _config_bytes(state, name),
        STATE: safetensors.numpy.save(
            {k: np.ascontiguousarray(v) for k, v in state.arrays.items()},
            metadata={"format": FORMAT},
        ),
        WEIGHTS: safetensors.torch.save(
            {k: v.detach().cpu().contiguous() for k, v in state.weights.items()},
            metadata={"format": FORMAT},
        ),
    }
    if state.keys is not None:
        buffer = io.BytesIO()
        state.keys.write_parquet(buffer)
        files[KEYS] = buffer.getvalue()
    details = {"format": FORMAT, "format_version": FORMAT_VERSION, "estimator": name}
    if provenance is not None:
        details["provenance"] = _json_values(provenance)
    return _writing(destination, lambda: _publish(destination, files, details))


def _json_values(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``provenance`` as a dict of JSON values (a round trip through JSON), else an error."""
    try:
        value = json.loads(json.dumps(dict(provenance), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"provenance must be a mapping of JSON values (text, numbers, lists, mappings); "
            f"{exc}. Convert the values first, e.g. str(path)."
        ) from exc
    return value


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
    _io.check_replaceable(destination, KIND, purpose="save a model over", adopt=is_legacy_model)
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
        return _io.publish_directory(staging, destination, kind=KIND, adopt=is_legacy_model)
    finally:
        _io.discard_staging(staging)  # a no-op once published


def _config_bytes(state: ModelState, name: str) -> bytes:
    """``config.json``: the format's entries, then the state's (JSON values, bounded size)."""
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "estimator": state.estimator,
        "params": state.params,
        **state.config,
    }
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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Cannot write {type(value).__name__} {value!r} to the model config.")


def is_legacy_model(folder: Path) -> bool:
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
        without_keys = config.get("estimator") in LEGACY_WITHOUT_KEYS
        expected = {CONFIG, WEIGHTS} | (set() if without_keys else {KEYS})
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
        return sha256_stream(handle)

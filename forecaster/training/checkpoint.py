"""The checkpoint format: one safetensors file holding a run's whole training state.

:class:`Checkpointer` writes a :class:`TrainingState` every ``every`` epochs (and when training
ends) to one safetensors file, atomically (temporary file, fsync, ``os.replace``): weights,
optimizer, learning-rate schedule and loss-scaler state, the best weights and early-stopping
counters, the history, the epoch, what ended training, and the random number generator states
(torch CPU and CUDA, NumPy, Python; a resume restores torch's only) of every rank. Tensors
are safetensors tensors; everything else is JSON in the file's metadata under
``forecaster_checkpoint`` (never pickle). :func:`read_checkpoint` reads such a file (bounded,
header checked first) and :func:`restore_training_state` loads it into the training objects of
a resumed run.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import forecaster._io as _io
import forecaster.training.distributed as distributed
from forecaster._validation import Integer, check, describe_value
from forecaster._version import __version__
from forecaster.exceptions import CheckpointError, DataValidationError
from forecaster.training.records import EpochRecord

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_LIMIT",
    "CHECKPOINT_VERSION",
    "Checkpointer",
    "TrainingState",
    "is_checkpoint",
    "read_checkpoint",
    "restore_training_state",
    "rng_state",
]

CHECKPOINT_FORMAT = "forecaster-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_LIMIT = 8 * 2**30
"""Largest checkpoint file read (8 GiB: the weights, best weights and optimizer state of a
network of about 500 million parameters); :func:`read_checkpoint` takes another limit."""
_METADATA_KEY = "forecaster_checkpoint"


def _encode(value: Any, key: str, tensors: dict[str, Tensor]) -> Any:
    """``value`` as JSON, its tensors and arrays moved into ``tensors`` (named by their path)."""
    if isinstance(value, Tensor):
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"$tensor": key}
    if isinstance(value, np.ndarray):  # NumPy's MT19937 key is uint32: stored as int64
        tensors[key] = torch.from_numpy(np.array(value, dtype=np.int64))
        return {"$ndarray": key, "dtype": str(value.dtype)}
    if isinstance(value, Mapping):
        items = []
        for name, item in value.items():
            if isinstance(name, bool) or not isinstance(name, str | int):
                raise CheckpointError(f"Cannot store a mapping key {name!r} at {key!r}.")
            items.append([name, _encode(item, f"{key}/{name}", tensors)])
        return {"$dict": items}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise CheckpointError(
        f"Cannot store a {type(value).__name__} at {key!r} in a checkpoint (tensors, arrays, "
        "numbers, strings, lists, tuples and mappings only)."
    )


def _decode(value: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "$tensor" in value:
        return tensors[value["$tensor"]]
    if "$ndarray" in value:
        return tensors[value["$ndarray"]].numpy().astype(np.dtype(value["dtype"]))
    if "$dict" in value:
        return {name: _decode(item, tensors) for name, item in value["$dict"]}
    if "$tuple" in value:
        return tuple(_decode(v, tensors) for v in value["$tuple"])
    if "$float" in value:
        return float(value["$float"])
    raise ValueError(f"unknown entry {sorted(value)}")


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global state is what we save)
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Restore torch's generators (dropout draws from them). The NumPy and Python states a
    checkpoint holds are not restored: training draws nothing from those global generators
    (batch orders come from generators seeded of their own), and setting them would change
    the caller's random streams."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class TrainingState:
    """Everything :func:`train` needs to continue after ``epoch`` (what a checkpoint holds).

    Attributes
    ----------
    epoch : int
        Epochs completed.
    finished : bool
        Training had ended (last epoch, early stopping or a stop request).
    history : list of EpochRecord
    best_loss : float
        Best validation loss so far (``inf`` before the first).
    stale : int
        Epochs since the best validation loss (early-stopping counter).
    elapsed : float
        Training seconds so far (``max_time`` counts them).
    network, best : dict of str to Tensor
        The weights after ``epoch`` and the best weights so far (``best`` may be None).
    optimizer, scheduler, scaler : dict
        ``state_dict()`` of the AdamW optimizer, the learning-rate schedule (None without one)
        and the gradient scaler.
    rng : list of dict
        Random number generator states of every rank (torch CPU, CUDA, NumPy and Python;
        a resume restores torch's only).
    fingerprint, extra : dict
        What the state was trained on (see :class:`Checkpointer`) and caller data (the seed).
    averaged : dict of str to Tensor or None
        The moving average of the weights with ``ema_decay`` (its ``AveragedModel`` state;
        None without; a checkpoint written before the setting existed reads as None).
    stopped_by : str or None
        What ended training (:data:`~forecaster.training.records.STOP_REASONS`) once
        ``finished``; None before, and in a checkpoint written before it was recorded.
    """

    epoch: int
    finished: bool
    history: list[EpochRecord]
    best_loss: float
    stale: int
    elapsed: float
    network: dict[str, Tensor]
    best: dict[str, Tensor] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any]
    rng: list[dict[str, Any]]
    fingerprint: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    averaged: dict[str, Tensor] | None = None
    stopped_by: str | None = None

    _FIELDS = (
        "epoch",
        "finished",
        "best_loss",
        "stale",
        "elapsed",
        "network",
        "best",
        "optimizer",
        "scheduler",
        "scaler",
        "rng",
    )
    _OPTIONAL_FIELDS = ("averaged", "stopped_by")  # added later: a file without reads as None

    def to_bytes(self) -> bytes:
        """The state as a safetensors file (JSON metadata under ``forecaster_checkpoint``)."""
        import safetensors.torch

        tensors: dict[str, Tensor] = {}
        body = {name: getattr(self, name) for name in (*self._FIELDS, *self._OPTIONAL_FIELDS)}
        body["history"] = [record.as_dict() for record in self.history]
        document = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "package_version": __version__,
            "fingerprint": _json_normalized(self.fingerprint),
            "extra": _json_normalized(self.extra),
            "state": _encode(body, "state", tensors),
        }
        metadata = {_METADATA_KEY: json.dumps(document, allow_nan=False)}
        return safetensors.torch.save(tensors, metadata=metadata)


def _json_mapping(value: Any, name: str, *, objects_as_text: bool = False) -> dict[str, Any]:
    """``value`` (a mapping of JSON values, or None) as a dict; anything a checkpoint cannot
    store in its JSON metadata (NaN, infinities, non-text keys, and objects unless
    ``objects_as_text``: then they are stored as their text) raises
    :class:`DataValidationError` naming ``name`` now, not at the first save."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DataValidationError(
            f"{name} must be a dict of JSON values (text, numbers, lists, dicts), got "
            f"{describe_value(value)}."
        )
    try:
        json.dumps(dict(value), allow_nan=False, default=str if objects_as_text else None)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{name} must hold JSON values only (text keys; finite numbers, text, booleans, "
            f"None, lists and dicts of them): {exc}. Got {describe_value(dict(value))}."
        ) from None
    return dict(value)


def _json_normalized(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from JSON (tuples become lists; other objects strings)."""
    return json.loads(json.dumps(dict(value), default=str, sort_keys=True))


def read_checkpoint(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> TrainingState:
    """Read a checkpoint file written by :class:`Checkpointer` (no fingerprint check).

    The file is read only when it is a regular file of at most ``max_bytes`` bytes (default
    :data:`CHECKPOINT_LIMIT`; FIFOs, devices and oversized or sparse files are refused without
    being read), and parsed only when its safetensors header is sane.

    Raises
    ------
    DataValidationError
        When ``path`` is no path (None, bytes: :func:`forecaster._io.as_path`) or
        ``max_bytes`` is not an integer >= 1.
    CheckpointError
        When the file does not exist or is not a readable checkpoint.
    """
    file = _io.as_path(path, "path")
    if max_bytes is not None:
        max_bytes = Integer(low=1).check("max_bytes", max_bytes)
    try:
        data = _io.read_file_bounded(
            file,
            CHECKPOINT_LIMIT if max_bytes is None else max_bytes,
            error=CheckpointError,
            what="checkpoint",
        )
    except FileNotFoundError:
        raise CheckpointError(f"There is no checkpoint file {file}.") from None
    try:
        document, tensors = _parse_checkpoint(data, file)
        body = _decode(document["state"], tensors)
        history = [EpochRecord(**record) for record in body.pop("history")]
        return TrainingState(
            history=history,
            fingerprint=document.get("fingerprint", {}),
            extra=document.get("extra", {}),
            **{name: body[name] for name in TrainingState._FIELDS},
            **{name: body.get(name) for name in TrainingState._OPTIONAL_FIELDS},
        )
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} {_UNREADABLE_HINT}") from exc
    except Exception as exc:
        raise CheckpointError(
            f"{file} is not a readable forecaster checkpoint ({type(exc).__name__}: {exc}). "
            + _UNREADABLE_HINT
        ) from exc


_UNREADABLE_HINT = (
    "It may be truncated or from another program: delete it and fit without resume=True to "
    "start from scratch."
)


def _parse_checkpoint(data: bytes, file: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The JSON document and the tensors of a checkpoint's bytes (header checked first)."""
    import safetensors.torch

    source = f"{file} (not a readable forecaster checkpoint)"
    _, metadata = _io.read_safetensors_header(data, source=source, error=CheckpointError)
    if _METADATA_KEY not in metadata:
        raise CheckpointError(f"{source} has no {_METADATA_KEY!r} metadata.")
    document = _io.load_json_bounded(
        metadata[_METADATA_KEY].encode("utf-8"), source=source, error=CheckpointError
    )
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        found = document.get("format") if isinstance(document, dict) else document
        raise CheckpointError(f"{source} has the format {found!r}.")
    version = document.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{source} has the format version {version!r}; this package reads version "
            f"{CHECKPOINT_VERSION}."
        )
    return document, safetensors.torch.load(data)


def is_checkpoint(file: Path) -> bool:
    """Whether ``file`` is a regular file (not a link) holding a forecaster checkpoint."""
    if file.is_symlink() or not file.is_file():
        return False
    try:
        data = _io.read_file_bounded(file, CHECKPOINT_LIMIT, error=CheckpointError)
        _, metadata = _io.read_safetensors_header(data, source=str(file), error=CheckpointError)
        document = _io.load_json_bounded(
            metadata.get(_METADATA_KEY, "null").encode("utf-8"),
            source=str(file),
            error=CheckpointError,
        )
    except (OSError, CheckpointError):
        return False
    return isinstance(document, dict) and document.get("format") == CHECKPOINT_FORMAT


def _fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if key == "data" and old != new:
            differences.append(
                f"the training data differ (digest {old} in the checkpoint, {new} now)"
            )
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    differences.append(
                        f"{key}.{name}: checkpoint {old.get(name)!r}, now {new.get(name)!r}"
                    )
        elif old != new:
            differences.append(f"{key}: checkpoint {old!r}, now {new!r}")
    return differences


class Checkpointer:
    """Writes and reads the checkpoint file of one training run.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file (``.safetensors``); its folder is created when needed. Checked by
        :func:`forecaster._io.as_path` (None, bytes, an empty path are refused).
    every : int, default 1
        Write after every ``every``-th epoch, and always when training ends.
    fingerprint : mapping, optional
        What the run trains on (parameters, a digest of the data, ...; JSON values, other
        objects stored as their text). It is stored, and :meth:`load` refuses a checkpoint
        whose fingerprint differs.
    extra : mapping, optional
        Caller data stored alongside (e.g. the seed of a fit with ``random_state=None``):
        JSON values only. Both mappings are checked here (NaN, infinities, functions are
        refused with :class:`~forecaster.exceptions.DataValidationError`), not at the first
        save.

    Examples
    --------
    >>> import tempfile, torch
    >>> from forecaster.nn import RecurrentNet
    >>> from forecaster.training.loop import train
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    >>> x, y = torch.randn(16, 8, 1), torch.randn(16, 2, 1)
    >>> ckpt = Checkpointer(tempfile.mkdtemp() + "/run.safetensors", fingerprint={"data": "x"})
    >>> _ = train(net, lambda e: [(x, None, y)], max_epochs=2, checkpoint=ckpt, progress=False)
    >>> state = ckpt.load()
    >>> state.epoch, state.finished, len(state.history)
    (2, True, 2)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        every: int = 1,
        fingerprint: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = _io.as_path(path, "path")
        self.every = check("checkpoint_every", every)
        self.fingerprint = _json_normalized(
            _json_mapping(fingerprint, "fingerprint", objects_as_text=True)
        )
        self.extra = _json_mapping(extra, "extra")

    def due(self, epoch: int, finished: bool) -> bool:
        """Whether the state after ``epoch`` is written."""
        return finished or epoch % self.every == 0

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, state: TrainingState) -> None:
        """Write ``state`` atomically (on the main process only; a no-op on other ranks)."""
        if not distributed.is_main_process():
            return
        state.fingerprint = self.fingerprint
        state.extra = self.extra
        data = state.to_bytes()
        try:
            _io.write_bytes_atomic(self.path, data)
        except OSError as exc:
            raise CheckpointError(
                f"Cannot write the checkpoint {self.path}: {exc.strerror or exc}. Check that "
                "checkpoint_dir is a writable folder with free space (no file stands in its "
                "path), or fit without checkpoint_dir."
            ) from exc

    def load(self) -> TrainingState:
        """Read the checkpoint and check that it was written for this fingerprint.

        Raises
        ------
        CheckpointError
            When there is no checkpoint, it is unreadable, or its fingerprint differs.
        """
        state = read_checkpoint(self.path)
        differences = _fingerprint_differences(state.fingerprint, self.fingerprint)
        if differences:
            raise CheckpointError(
                f"The checkpoint {self.path} was written for other data or parameters, so "
                f"training cannot resume from it: {'; '.join(differences)}. Resume with the "
                "data and parameters of the interrupted fit, or fit without resume=True to "
                "start from scratch (which replaces the checkpoint)."
            )
        return state


def restore_training_state(
    state: TrainingState,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> None:
    """Load ``state`` into the training objects and torch's random number generators (not
    the global NumPy and Python ones: see :func:`_set_rng_state`)."""
    rank = distributed.rank()
    if len(state.rng) != distributed.world_size():
        raise CheckpointError(
            f"The checkpoint was written by {len(state.rng)} process(es), this run has "
            f"{distributed.world_size()}: resume with the same number of processes."
        )
    if (scheduler is None) != (state.scheduler is None):
        raise CheckpointError(
            "The checkpoint was written with a different lr_schedule: resume with the "
            "parameters of the interrupted run."
        )
    try:
        network.load_state_dict(state.network)
        optimizer.load_state_dict(state.optimizer)
        _keep_implementation(optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
        if state.scaler:
            scaler.load_state_dict(state.scaler)
        if state.best is not None:
            current = network.state_dict()
            wrong = sorted(
                name
                for name in set(current) | set(state.best)
                if name not in current
                or name not in state.best
                or current[name].shape != state.best[name].shape
            )
            if wrong:
                raise KeyError(f"the best weights do not match the network at {wrong}")
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"The checkpoint does not fit this network or optimizer ({exc}). Resume with the "
            "parameters of the interrupted run, or fit without resume=True."
        ) from exc
    _set_rng_state(state.rng[rank], device)


def _keep_implementation(optimizer: torch.optim.Optimizer) -> None:
    """After ``load_state_dict``, the optimiser's own implementation (``fused`` as it was
    built for this device: a CUDA checkpoint resumed on the CPU stays unfused, a CPU one
    resumed on CUDA is fused), with each step counter where that implementation keeps it
    (on the parameter's device when fused, else on the CPU)."""
    fused = optimizer.defaults.get("fused")
    for group in optimizer.param_groups:
        if "fused" not in group or group["fused"] == fused:
            continue
        group["fused"] = fused
        for parameter in group["params"]:
            step = optimizer.state.get(parameter, {}).get("step")
            if isinstance(step, torch.Tensor):
                where = parameter.device if fused else torch.device("cpu")
                optimizer.state[parameter]["step"] = step.to(where, torch.float32)

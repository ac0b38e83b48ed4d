"""One plain training loop shared by every estimator, with checkpoints, resume and DDP.

:func:`train` runs AdamW over batches from a *batch source* (a callable that yields
``(x, future, y)`` tensors for an epoch), with a choice of loss, gradient-norm clipping (against
exploding gradients), an optional learning-rate schedule, early stopping on a validation source
with the best weights restored, bf16 autocast with loss scaling on CUDA, a progress bar, a per-epoch
history and epoch-end callbacks (used by Optuna pruning and MLflow logging). A NaN or infinite loss
stops training with an error that says what to try.

Faults and scale:

- **Checkpoints.** With a :class:`Checkpointer` the loop writes its whole state every ``every``
  epochs (and when training ends) to one safetensors file, atomically (temporary file, fsync,
  ``os.replace``): weights, optimizer, learning-rate schedule and loss-scaler state, the best
  weights and early-stopping counters, the history, the epoch and the random number generator
  states (torch CPU and CUDA, NumPy, Python). Tensors are safetensors tensors; everything else
  is JSON in the file's metadata (never pickle). ``train(..., resume_from=state)`` continues
  from such a state and, on the CPU with the same seed and data, ends with exactly the weights
  of an uninterrupted run. :class:`CheckpointDirectory` names the files of an estimator's fit
  and refuses a checkpoint written for other data or parameters (a fingerprint).
- **GPU memory.** A batch that runs out of GPU memory raises :class:`GPUOutOfMemoryError`, which
  says the batch size used and one that fits (measured by trying halves); with
  ``on_oom="split"`` the loop instead splits every batch into parts and accumulates their
  gradients (the same effective batch). Validation and prediction batches are split
  automatically (their results do not depend on the split beyond float rounding).
- **Several processes.** Under ``torchrun`` (see :mod:`forecaster.training.distributed`) the
network is
  wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` and the losses are all-reduced,
  so every rank takes the same early-stopping decisions; only rank 0 writes checkpoints and shows
  progress.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import math
import os
import random
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import forecaster
from forecaster import _io
from forecaster._validation import (
    Flag,
    Integer,
    Real,
    check,
    check_callbacks,
    describe_value,
    resolve_device,
)
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.training import distributed as distributed

__all__ = [
    "LOSSES",
    "LR_SCHEDULES",
    "ON_OOM",
    "CheckpointDirectory",
    "CheckpointError",
    "Checkpointer",
    "EpochRecord",
    "GPUOutOfMemoryError",
    "StopTraining",
    "TrainingDivergedError",
    "TrainingState",
    "digest_arrays",
    "loss_function",
    "predict_batched",
    "read_checkpoint",
    "resolve_device",
    "train",
]

LOSSES = ("mse", "mae", "huber")
LR_SCHEDULES = ("none", "cosine", "plateau", "onecycle")
ON_OOM = ("raise", "split")

BatchSource = Callable[[int], Iterable[tuple[Tensor, Tensor | None, Tensor]]]
"""``source(epoch)`` yields ``(x, future, y)`` batches already on the training device."""


class TrainingDivergedError(ForecasterError, ArithmeticError):
    """The training loss became NaN or infinite."""


class CheckpointError(ForecasterError):
    """A checkpoint is missing, unreadable, or was written for other data or parameters."""


class GPUOutOfMemoryError(ForecasterError, MemoryError):
    """A batch did not fit in the GPU's memory.

    Attributes
    ----------
    batch_size : int
        Windows in the batch that failed (per process under torchrun).
    suggested_batch_size : int or None
        Windows per batch that fit (measured by trying halves in a single process; half of
        ``batch_size`` under torchrun, where trying would need every rank), or None when not
        even one window fits.
    """

    def __init__(self, message: str, batch_size: int, suggested_batch_size: int | None) -> None:
        super().__init__(message)
        self.batch_size = batch_size
        self.suggested_batch_size = suggested_batch_size


class StopTraining(Exception):
    """Raise from an epoch callback to stop training early (the best weights are kept)."""


@dataclass
class EpochRecord:
    """What happened in one epoch (one row of the estimator's ``history_``)."""

    epoch: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    windows_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def loss_function(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss callable for ``"mse"``, ``"mae"`` or ``"huber"`` (delta 1 on the scaled data)."""
    if name == "mse":
        return F.mse_loss
    if name == "mae":
        return F.l1_loss
    if name == "huber":
        return F.huber_loss
    raise DataValidationError(f"loss={name!r} is not supported. Expected one of {LOSSES}.")


def _scheduler(
    name: str, optimizer: torch.optim.Optimizer, max_epochs: int, steps_per_epoch: int
) -> Any:
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(max_epochs, 1))
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    if name == "onecycle":
        if steps_per_epoch < 1:
            raise DataValidationError(
                f"lr_schedule='onecycle' needs steps_per_epoch (batches per epoch) >= 1, got "
                f"{steps_per_epoch!r}. Pass the number of batches each epoch yields."
            )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=max(max_epochs * steps_per_epoch, 2),
        )
    raise DataValidationError(
        f"lr_schedule={name!r} is not supported. Expected one of {LR_SCHEDULES}."
    )


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:  # a notebook kernel
        from IPython import get_ipython

        if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
            return True
    except Exception:
        pass
    return sys.stderr.isatty()


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------

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


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global state is what we save)
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
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
        Random number generator states of every rank (torch CPU, CUDA, NumPy and Python).
    fingerprint, extra : dict
        What the state was trained on (see :class:`Checkpointer`) and caller data (the seed).
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

    def to_bytes(self) -> bytes:
        """The state as a safetensors file (JSON metadata under ``forecaster_checkpoint``)."""
        import safetensors.torch

        tensors: dict[str, Tensor] = {}
        body = {name: getattr(self, name) for name in self._FIELDS}
        body["history"] = [record.as_dict() for record in self.history]
        document = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "package_version": forecaster.__version__,
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


def _is_checkpoint(file: Path) -> bool:
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
    >>> from forecaster.nn.core import RecurrentNet
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


class CheckpointDirectory:
    """The checkpoints of one estimator fit: ``checkpoint-{k}.safetensors`` for its k-th
    training run (an ensemble trains several), and the fit's seed.

    A fresh fit (``resume=False``) deletes the checkpoints of an earlier fit; a resumed fit
    needs ``checkpoint-0`` and takes the seed of the interrupted fit from it (so a fit with
    ``random_state=None`` resumes with the same data order), then resumes each run from its
    file (a run whose file does not exist yet starts from scratch).

    A folder that is, or lies inside, a folder forecaster wrote (a saved model, a pipeline
    run: its manifest would no longer list what it holds) is refused with
    :class:`CheckpointError` at :meth:`start`. A fresh fit deletes only files named
    ``checkpoint-<k>.safetensors`` that are forecaster checkpoints (refusing, before deleting
    any, when one of those names holds anything else), and temporary files of exactly the
    names :func:`forecaster._io.write_atomic` gives them; nothing else in the folder.

    Parameters
    ----------
    directory : path
    every : int
        See :class:`Checkpointer`.
    fingerprint : mapping
        The fit's parameters and a digest of its data.
    resume : bool
    """

    PATTERN = "checkpoint-{}.safetensors"
    NAME = r"checkpoint-\d+\.safetensors"
    """The names of the files :attr:`PATTERN` gives (a regular expression)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int = 1,
        fingerprint: Mapping[str, Any],
        resume: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.every = every
        self.fingerprint = fingerprint
        self.resume = resume
        self.seed: int | None = None
        self._runs = 0
        self._first: TrainingState | None = None

    def path(self, run: int) -> Path:
        return self.directory / self.PATTERN.format(run)

    def start(self, seed: int) -> int:
        """Begin the fit; returns the seed to use (the interrupted fit's when resuming)."""
        _io.as_path(self.directory, "checkpoint_dir")
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(
                f"checkpoint_dir={str(self.directory)!r} is a file; pass a folder path."
            )
        _refuse_owned_folder(self.directory)
        if self.resume:
            first = self.path(0)
            if not first.is_file():
                raise CheckpointError(
                    f"resume=True, but {self.directory} holds no checkpoint ({first.name} is "
                    "missing): the interrupted fit wrote none yet, or checkpoint_dir points "
                    "elsewhere. Fit without resume=True to start from scratch."
                )
            self._first = Checkpointer(first, fingerprint=self.fingerprint).load()
            saved = self._first.extra.get("fit_seed")
            self.seed = int(saved) if saved is not None else seed
        else:
            self.seed = seed
            if distributed.is_main_process() and self.directory.is_dir():
                self._remove_earlier()
        if distributed.is_main_process():
            for stale in _io.temporary_files(self.directory, self.NAME):
                stale.unlink(missing_ok=True)  # left by a process killed while writing
        return self.seed

    def _remove_earlier(self) -> None:
        """Delete the checkpoints of an earlier fit; refuse, before deleting any, when a file
        of that name is not a forecaster checkpoint (it would be overwritten)."""
        earlier = _checkpoint_names(self.directory)
        foreign = [file.name for file in earlier if not _is_checkpoint(file)]
        if foreign:
            raise CheckpointError(
                f"checkpoint_dir={str(self.directory)!r} holds {foreign} that forecaster did not "
                "write (not checkpoints, or links), and a fit would overwrite them. Move them "
                "away or pass another checkpoint_dir."
            )
        for file in earlier:
            file.unlink(missing_ok=True)

    def next_run(self, seed: int) -> tuple[Checkpointer, TrainingState | None]:
        """The checkpointer of the next training run and the state to resume it from."""
        if self.seed is None:
            raise RuntimeError("CheckpointDirectory.start() must be called first.")
        run = self._runs
        self._runs += 1
        checkpointer = Checkpointer(
            self.path(run),
            every=self.every,
            fingerprint=self.fingerprint,
            extra={"fit_seed": self.seed, "seed": int(seed), "run": run},
        )
        state = None
        if self.resume:
            if run == 0:
                state, self._first = self._first, None  # not kept alive after the fit
            elif checkpointer.exists():
                state = checkpointer.load()
        return checkpointer, state


def _checkpoint_names(directory: Path) -> list[Path]:
    """The entries of ``directory`` named as :class:`CheckpointDirectory` names its files
    (``checkpoint-<k>.safetensors``, whatever they are)."""
    pattern = re.compile(CheckpointDirectory.NAME)
    try:
        return sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    except OSError:
        return []


def _refuse_owned_folder(directory: Path) -> None:
    """Refuse a ``checkpoint_dir`` that is, or lies inside, a folder forecaster wrote (a saved
    model, a pipeline run): checkpoint files there are files its manifest does not list, and
    forecaster would then refuse to replace or delete that folder."""
    candidates = [directory]
    with contextlib.suppress(OSError, RuntimeError):
        candidates.insert(0, directory.resolve())  # where a link leads first: name that folder
    for candidate in candidates:
        owner = _io.owning_folder(candidate / CheckpointDirectory.PATTERN.format(0))
        if owner is not None:
            folder, kind = owner
            where = "is" if folder == Path(os.path.abspath(candidate)) else "is inside"
            raise CheckpointError(
                f"checkpoint_dir={str(directory)!r} {where} {folder}, a {kind} folder "
                "forecaster wrote: checkpoint files there would be files its manifest does not "
                f'list, and forecaster would then refuse to replace or delete that {kind} ("not '
                'written by forecaster"). Pass a checkpoint_dir outside it.'
            )


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The first checkpoint file of a fit in ``directory`` (what ``resume=True`` needs), or
    None when there is none."""
    first = Path(directory) / CheckpointDirectory.PATTERN.format(0)
    return first if first.is_file() else None


def remove_checkpoints(directory: str | os.PathLike[str]) -> None:
    """Delete the checkpoint files of a fit in ``directory`` (those :class:`CheckpointDirectory`
    writes, proven by their content, and the temporary files of interrupted writes, of exactly
    the names :func:`forecaster._io.write_atomic` gives them; nothing else), then the folder
    itself if that left it empty."""
    folder = Path(directory)
    if not folder.is_dir() or folder.is_symlink():
        return
    for file in _checkpoint_names(folder):
        if _is_checkpoint(file):
            file.unlink(missing_ok=True)
    for file in _io.temporary_files(folder, CheckpointDirectory.NAME):
        file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty: files someone else put there stay


def digest_arrays(*arrays: np.ndarray | bytes | str) -> str:
    """A content digest (BLAKE2b, 32 hex digits) of arrays, bytes and strings, in order.

    Examples
    --------
    >>> import numpy as np
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3))
    True
    >>> digest_arrays(np.arange(3)) == digest_arrays(np.arange(3).astype("int32"))
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    for item in arrays:
        if isinstance(item, str):
            item = item.encode()
        if isinstance(item, np.ndarray):
            digest.update(f"{item.dtype.str}{item.shape}".encode())
            item = memoryview(np.ascontiguousarray(item)).cast("B")
        digest.update(len(item).to_bytes(8, "little"))
        digest.update(item)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------
# GPU memory
# ------------------------------------------------------------------------------------------


def _release_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _memory_detail(device: torch.device) -> str:
    if device.type != "cuda" or not torch.cuda.is_available():
        return str(device)
    try:
        free, total = torch.cuda.mem_get_info(device)
    except RuntimeError:
        return str(device)
    return f"{device}: {free / 2**30:.2f} GiB free of {total / 2**30:.2f} GiB"


def _chunks(tensor: Tensor | None, parts: int) -> Sequence[Tensor | None]:
    return [None] * parts if tensor is None else tensor.tensor_split(parts)


class _Backoff:
    """Runs a batch function on the whole batch, or on ``parts`` slices after running out of
    GPU memory (halving the slices until they fit). Used where splitting does not change the
    result beyond float rounding: forward passes in validation and prediction."""

    def __init__(self, what: str, device: torch.device) -> None:
        self.what, self.device, self.parts = what, device, 1

    def run(self, function: Callable[..., Tensor], x: Tensor, future: Tensor | None) -> Tensor:
        n = x.shape[0]
        while True:
            parts = min(self.parts, n)
            try:
                outputs = [
                    function(xc, fc)
                    for xc, fc in zip(_chunks(x, parts), _chunks(future, parts), strict=True)
                ]
                return outputs[0] if parts == 1 else torch.cat(outputs)
            except torch.OutOfMemoryError:
                pass
            # outside the except block, so that the failed attempt's tensors can be freed
            _release_memory(self.device)
            size = math.ceil(n / parts)
            if size <= 1:
                raise GPUOutOfMemoryError(
                    f"Not even one window of a {self.what} batch fits in GPU memory "
                    f"({_memory_detail(self.device)}). Use a smaller network (hidden_size, "
                    "num_layers) or lookback, free the GPU, or use device='cpu'.",
                    batch_size=n,
                    suggested_batch_size=None,
                )
            self.parts = parts * 2
            warnings.warn(
                f"A {self.what} batch of {size} windows ran out of GPU memory on "
                f"{self.device}; running it in parts of {math.ceil(n / self.parts)} windows "
                "(the same results up to float rounding).",
                ForecasterWarning,
                stacklevel=3,
            )


def predict_batched(
    network: nn.Module,
    x: Tensor,
    future: Tensor | None = None,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 4096,
    amp: bool = False,
) -> Tensor:
    """``network(x, future)`` in batches of ``batch_size`` rows moved to ``device``; float32 on
    the CPU.

    A batch that runs out of GPU memory is split in halves until it fits (with a
    :class:`~forecaster.exceptions.ForecasterWarning`); :class:`GPUOutOfMemoryError` when not
    even one row fits.

    Examples
    --------
    >>> import torch
    >>> from forecaster.nn.core import RecurrentNet
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    >>> predict_batched(net.eval(), torch.randn(10, 8, 1), batch_size=4).shape
    torch.Size([10, 2, 1])
    """
    device = torch.device(device)
    backoff = _Backoff("prediction", device)

    def forward(xb: Tensor, fb: Tensor | None) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and _is_cuda(device)):
            return network(xb, fb).float()

    outputs = []
    with torch.no_grad():
        for lo in range(0, x.shape[0], batch_size):
            xb = x[lo : lo + batch_size].to(device)
            fb = None if future is None else future[lo : lo + batch_size].to(device)
            outputs.append(backoff.run(forward, xb, fb).cpu())
        if not outputs:
            empty = None if future is None else future[:0].to(device)
            return network(x[:0].to(device), empty).float().cpu()
    return torch.cat(outputs)


def _is_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


class _TrainingLoss(nn.Module):
    """``network.training_loss`` as a ``forward`` (DistributedDataParallel wraps forward)."""

    def __init__(self, network: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.network = network
        self.loss_fn = loss_fn

    def forward(self, x: Tensor, future: Tensor | None, y: Tensor) -> Tensor:
        return self.network.training_loss(x, future, y, self.loss_fn)


class _Stepper:
    """One optimiser step per batch: forward, backward (in ``parts`` after running out of GPU
    memory with ``on_oom="split"``), clipping, AdamW step."""

    def __init__(
        self,
        compute: Callable[[Tensor, Tensor | None, Tensor], Tensor],
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        *,
        device: torch.device,
        use_amp: bool,
        grad_clip: float | None,
        on_oom: str,
    ) -> None:
        self.compute, self.network, self.optimizer, self.scaler = (
            compute,
            network,
            optimizer,
            scaler,
        )
        self.device, self.use_amp, self.grad_clip, self.on_oom = device, use_amp, grad_clip, on_oom
        self.parts = 1
        self.world = distributed.world_size()

    def step(self, x: Tensor, future: Tensor | None, y: Tensor, check: Callable | None) -> Tensor:
        """The batch loss (detached); ``check(loss)`` runs before the backward pass."""
        while True:
            try:
                return self._step(x, future, y, check)
            except torch.OutOfMemoryError:
                pass
            self.optimizer.zero_grad(set_to_none=True)
            _release_memory(self.device)
            n = x.shape[0]
            size = math.ceil(n / min(self.parts, n))
            if self.on_oom == "split" and self.world == 1 and size > 1:
                self.parts *= 2
                warnings.warn(
                    f"A training batch of {size} windows ran out of GPU memory on "
                    f"{self.device}; from now on every batch is split into {self.parts} parts "
                    "whose gradients are accumulated (the same effective batch size).",
                    ForecasterWarning,
                    stacklevel=4,
                )
                continue
            raise self._out_of_memory(x, future, y, size)

    def _step(self, x: Tensor, future: Tensor | None, y: Tensor, check: Callable | None) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        n = x.shape[0]
        parts = min(self.parts, n)
        total: Tensor | None = None
        for xc, fc, yc in zip(
            _chunks(x, parts), _chunks(future, parts), _chunks(y, parts), strict=True
        ):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                part = self.compute(xc, fc, yc)
            if parts > 1:
                part = part * (xc.shape[0] / n)
            if check is not None:
                check(part)
            self.scaler.scale(part).backward()
            total = part.detach() if total is None else total + part.detach()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.network.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)  # skips a step whose scaled gradients overflowed
        self.scaler.update()
        assert total is not None  # a batch has at least one window
        return total

    def _out_of_memory(
        self, x: Tensor, future: Tensor | None, y: Tensor, size: int
    ) -> GPUOutOfMemoryError:
        where = _memory_detail(self.device)
        if self.world > 1:
            fits = max(size // 2, 1) if size > 1 else None
            measured = "likely fits (not measured: measuring would need every rank)"
        else:
            fits = self._largest_fitting(x, future, y, size)
            measured = "fits (measured)"
        per_rank = f" per rank ({self.world} ranks)" if self.world > 1 else ""
        if fits is None:
            advice = (
                "Not even one window fits: use a smaller network (hidden_size, num_layers) or "
                "lookback, free the GPU, or use device='cpu'."
            )
        else:
            advice = (
                f"A batch of {fits} windows{per_rank} {measured}: set batch_size="
                f"{fits * self.world}"
                + (
                    f", or on_oom='split' to keep batch_size={size * self.world} and "
                    "accumulate the gradients of smaller parts."
                    if self.world == 1
                    else "."
                )
            )
        return GPUOutOfMemoryError(
            f"A training batch of {size} windows{per_rank} ran out of GPU memory ({where}). "
            + advice,
            batch_size=size,
            suggested_batch_size=fits,
        )

    def _largest_fitting(
        self, x: Tensor, future: Tensor | None, y: Tensor, size: int
    ) -> int | None:
        """Try a forward and backward pass on halves of the batch until one fits."""
        trial = size // 2
        while trial >= 1:
            fits = True
            try:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                    loss = self.compute(
                        x[:trial], None if future is None else future[:trial], y[:trial]
                    )
                loss.backward()
                del loss
            except torch.OutOfMemoryError:
                fits = False
            self.optimizer.zero_grad(set_to_none=True)
            _release_memory(self.device)
            if fits:
                return trial
            trial //= 2
        return None


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------


def train(
    network: nn.Module,
    train_source: BatchSource,
    *,
    val_source: BatchSource | None = None,
    loss: str = "mae",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    max_epochs: int = 30,
    patience: int | None = 5,
    grad_clip: float | None = 1.0,
    lr_schedule: str = "none",
    steps_per_epoch: int = 0,
    device: torch.device | str = "cpu",
    amp: bool = True,
    max_time: float | None = None,
    callbacks: Sequence[Callable[[EpochRecord, nn.Module], Any]] = (),
    progress: bool | None = None,
    description: str = "training",
    checkpoint: Checkpointer | None = None,
    resume_from: TrainingState | None = None,
    on_oom: str = "raise",
) -> list[EpochRecord]:
    """Train ``network`` in place and return the per-epoch history.

    Parameters
    ----------
    network : torch.nn.Module
        Must provide ``training_loss(x, future, y, loss_fn)`` and ``forward(x, future)``, like
        :class:`~forecaster.nn.core.RecurrentNet`; already on ``device``.
    train_source, val_source : callable or list
        ``source(epoch)`` yields ``(x, future, y)`` batches on ``device`` (``future`` None
        without future covariates); a list (or tuple) of such batches is used every epoch. A
        generator is refused (the first epoch would use it up), as is a batch that is no
        triple of tensors (when it is drawn). With ``val_source`` the validation loss (mean
        ``loss`` of the forecasts) drives early stopping and the best epoch's weights are
        restored at the end; a validation loss that is NaN or infinite (NaN in the validation
        data, or forecasts that overflow) raises :class:`TrainingDivergedError`, and a
        ``val_source`` that gives no batches a
        :class:`~forecaster.exceptions.DataValidationError`.
    loss : {"mse", "mae", "huber"}
    lr, weight_decay : float
        AdamW settings.
    max_epochs : int
    patience : int or None
        Epochs without validation improvement before stopping; ``None`` never stops early.
    grad_clip : float or None
        Maximum gradient norm (``clip_grad_norm_``); ``None`` disables clipping.
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}
    steps_per_epoch : int
        Batches per epoch (needed by ``"onecycle"`` only, which holds its final learning rate
        if an epoch yields more batches than this).
    amp : bool
        bf16 autocast on CUDA (ignored on CPU), with loss scaling: under autocast PyTorch runs
        the cuDNN recurrent kernels in float16.
    max_time : float, optional
        Stop after the epoch during which this many seconds of training have passed (a resumed
        run counts the seconds before the interruption too).
    callbacks : sequence of callable
        ``callback(record, network)`` after every epoch. Raise :class:`StopTraining` to stop
        (best weights kept); any other exception (e.g. ``optuna.TrialPruned``) propagates.
        Under torchrun they run on every rank (a stop on any rank stops all).
    progress : bool or None
        Show a progress bar; ``None`` shows it in a terminal or a notebook (rank 0 only).
    checkpoint : Checkpointer, optional
        Write the training state every ``checkpoint.every`` epochs and when training ends.
    resume_from : TrainingState, optional
        Continue from this state (e.g. ``checkpoint.load()``) instead of from the start; the
        network, optimizer and schedule must be configured as when it was written. A state
        of a finished run only restores its best weights.
    on_oom : {"raise", "split"}
        What a training batch that runs out of GPU memory does: raise
        :class:`GPUOutOfMemoryError` (which says a batch size that fits), or split every
        batch into parts and accumulate their gradients (single process only; the effective
        batch is unchanged, dropout masks are drawn per part).

    Returns
    -------
    list of EpochRecord
        ``lr`` is the learning rate used in the epoch (its last step for ``"onecycle"``).
        After a resume it includes the epochs before the interruption.

    Raises
    ------
    DataValidationError
        Before the first epoch, for a setting outside its rule (the parameter table of
        :mod:`forecaster._validation`: ``max_epochs=1.5``, ``loss="l2"``, ``lr <= 0``, a
        device other than ``"auto"``, ``"cpu"``, ``"cuda[:N]"``, ``"mps"``, callbacks that
        cannot be called as ``callback(record, network)``, a ``checkpoint`` that is no
        :class:`Checkpointer`, a ``resume_from`` that is no :class:`TrainingState`).
    TrainingDivergedError
        When the training or validation loss becomes NaN or infinite.
    GPUOutOfMemoryError
        When a batch does not fit in GPU memory (see ``on_oom``).
    CheckpointError
        When ``resume_from`` does not fit the network or the training settings.

    Notes
    -----
    On the CPU, training resumed from the checkpoint of epoch ``k`` ends with exactly the
    weights of an uninterrupted run (same seed and data): batches are a function of the epoch
    (the sources draw their order from a generator seeded by the epoch), and the checkpoint
    restores the optimizer, schedule, early-stopping counters and the random number generator
    states that dropout draws from. On CUDA, kernels are not bitwise deterministic by default,
    so a resumed run matches to within float rounding.

    Examples
    --------
    >>> import torch
    >>> from forecaster.nn.core import RecurrentNet
    >>> _ = torch.manual_seed(0)
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=8)
    >>> x, y = torch.randn(32, 8, 1), torch.randn(32, 2, 1)
    >>> history = train(net, lambda epoch: [(x, None, y)], max_epochs=3, progress=False)
    >>> [r.epoch for r in history]
    [1, 2, 3]
    """
    _check_network(network)
    train_source = _as_source(train_source, "train_source")
    val_source = None if val_source is None else _as_source(val_source, "val_source")
    loss, lr = check("loss", loss), Real(low=0.0, low_open=True).check("lr", lr)
    weight_decay, max_epochs = check("weight_decay", weight_decay), check("max_epochs", max_epochs)
    patience, grad_clip = check("patience", patience), check("grad_clip", grad_clip)
    lr_schedule, on_oom = check("lr_schedule", lr_schedule), check("on_oom", on_oom)
    steps_per_epoch = Integer(low=0).check("steps_per_epoch", steps_per_epoch)
    max_time, progress = check("max_time", max_time), check("progress", progress)
    amp = Flag().check("amp", amp)
    device = resolve_device(device)
    callbacks = check_callbacks(callbacks)
    if not isinstance(description, str):
        raise DataValidationError(f"description must be text, got {describe_value(description)}.")
    for name, value, kind in (
        ("checkpoint", checkpoint, Checkpointer),
        ("resume_from", resume_from, TrainingState),
    ):
        if value is not None and not isinstance(value, kind):
            raise DataValidationError(
                f"{name} must be a {kind.__name__} or None, got {describe_value(value)}."
                + (
                    " Pass Checkpointer(path) to write checkpoints."
                    if kind is Checkpointer
                    else " Pass checkpointer.load() or read_checkpoint(path)."
                )
            )
    loss_fn = loss_function(loss)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = _scheduler(lr_schedule, optimizer, max_epochs, steps_per_epoch)
    use_amp = amp and device.type == "cuda"
    # Under CUDA autocast PyTorch runs cuDNN RNN / LSTM / GRU kernels in float16 whatever the
    # autocast dtype (aten/src/ATen/cudnn/AutocastRNN.cpp), so the recurrent gradients need loss
    # scaling against underflow even with bf16 autocast.
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    world = distributed.world_size()
    if world > 1 and distributed.rank() > 0:
        # Every rank built the same initial weights from the same seed; dropout must not draw
        # the same masks on every rank, so ranks other than 0 (which matches one process)
        # continue from their own stream.
        torch.manual_seed(torch.initial_seed() + 7919 * distributed.rank())

    history: list[EpochRecord] = []
    best_loss, best_state, stale, elapsed, first_epoch, finished = math.inf, None, 0, 0.0, 1, False
    if resume_from is not None:
        _restore(resume_from, network, optimizer, scheduler, scaler, device)
        history = list(resume_from.history)
        best_loss, stale, elapsed = resume_from.best_loss, resume_from.stale, resume_from.elapsed
        best_state = resume_from.best
        if best_state is not None:
            best_state = {k: v.to(device) for k, v in best_state.items()}
        first_epoch, finished = resume_from.epoch + 1, resume_from.finished

    if world > 1 and not finished:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            _TrainingLoss(network, loss_fn),
            device_ids=[device.index] if device.type == "cuda" else None,
        )
        compute: Callable[[Tensor, Tensor | None, Tensor], Tensor] = wrapped
        # The segment head's small embeddings get non-contiguous gradients (they are expanded
        # and concatenated), which DDP reports once per process as a performance note.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
    else:

        def compute(x: Tensor, future: Tensor | None, y: Tensor) -> Tensor:
            return network.training_loss(x, future, y, loss_fn)

    stepper = _Stepper(
        compute,
        network,
        optimizer,
        scaler,
        device=device,
        use_amp=use_amp,
        grad_clip=grad_clip,
        on_oom=on_oom,
    )
    validation = _Backoff("validation", device)
    started = time.perf_counter() - elapsed

    bar = None
    if not finished and distributed.is_main_process() and _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(
            total=max_epochs, initial=len(history), desc=description, unit="epoch", leave=False
        )
    try:
        for epoch in range(first_epoch, max_epochs + 1):
            if finished:
                break
            t0 = time.perf_counter()
            network.train()
            total = torch.zeros((), device=device)
            n_windows = 0
            epoch_lr = float(optimizer.param_groups[0]["lr"])
            for step, (x, future, y) in enumerate(train_source(epoch)):
                epoch_lr = float(optimizer.param_groups[0]["lr"])

                def check_finite(batch_loss: Tensor, epoch: int = epoch) -> None:
                    if distributed.any_rank(not bool(torch.isfinite(batch_loss)), device):
                        _diverged(epoch, lr, grad_clip)

                batch_loss = stepper.step(x, future, y, check_finite if step % 50 == 0 else None)
                # OneCycleLR raises when stepped past total_steps (an epoch with more batches
                # than steps_per_epoch): hold the final learning rate instead.
                if lr_schedule == "onecycle" and scheduler.last_epoch < scheduler.total_steps:
                    scheduler.step()
                total += batch_loss.float() * x.shape[0]
                n_windows += x.shape[0]
            if world > 1:
                sums = distributed.all_reduce_sum(
                    torch.stack([total.double(), torch.tensor(n_windows, device=device).double()])
                )
                n_windows = int(sums[1].item())
                train_loss = float(sums[0]) / max(n_windows, 1)
            else:
                train_loss = float(total) / max(n_windows, 1)
            if n_windows == 0:
                raise DataValidationError(
                    "No training windows: every series is too short or the validation split "
                    "took all of them. Use a shorter lookback / horizon or validation_size."
                )
            if not math.isfinite(train_loss):
                _diverged(epoch, lr, grad_clip)
            val_loss = None
            if val_source is not None:
                val_loss = _validation_loss(
                    network, val_source, loss_fn, device, validation, epoch, train_loss
                )
            if scheduler is not None and lr_schedule == "plateau":
                scheduler.step(val_loss if val_loss is not None else train_loss)
            elif scheduler is not None and lr_schedule == "cosine":
                scheduler.step()
            seconds = time.perf_counter() - t0
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                lr=epoch_lr,
                seconds=seconds,
                windows_per_second=n_windows / max(seconds, 1e-9),
            )
            history.append(record)
            if bar is not None:
                shown = {"train": f"{train_loss:.4f}", "win/s": f"{record.windows_per_second:,.0f}"}
                if val_loss is not None:
                    shown["val"] = f"{val_loss:.4f}"
                bar.set_postfix(shown)
                bar.update(1)

            stop = False
            if val_loss is not None:
                if val_loss < best_loss - 1e-12:
                    best_loss, stale = val_loss, 0
                    best_state = copy.deepcopy(network.state_dict())
                else:
                    stale += 1
                    stop = patience is not None and stale >= patience
            for callback in callbacks:  # every callback sees the epoch, even after a stop request
                try:
                    callback(record, network)
                except StopTraining:
                    stop = True
            if max_time is not None and time.perf_counter() - started >= max_time:
                stop = True
            stop = distributed.any_rank(stop, device)
            finished = stop or epoch == max_epochs
            if checkpoint is not None and checkpoint.due(epoch, finished):
                rng = distributed.all_gather_objects(_rng_state(device))
                checkpoint.save(
                    TrainingState(
                        epoch=epoch,
                        finished=finished,
                        history=history,
                        best_loss=best_loss,
                        stale=stale,
                        elapsed=time.perf_counter() - started,
                        network=network.state_dict(),
                        best=best_state,
                        optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict() if scheduler is not None else None,
                        scaler=scaler.state_dict(),
                        rng=rng,
                    )
                )
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history


def _check_network(network: Any) -> None:
    """Refuse a ``network`` that :func:`train` cannot train."""
    if not isinstance(network, nn.Module) or not callable(getattr(network, "training_loss", None)):
        raise DataValidationError(
            "network must be a torch.nn.Module with training_loss(x, future, y, loss_fn) and "
            "forward(x, future), like forecaster.nn.core.RecurrentNet; got "
            f"{describe_value(network)}."
        )
    if not any(True for _ in network.parameters()):
        raise DataValidationError("network has no parameters to train.")


def _as_source(source: Any, name: str) -> BatchSource:
    """A batch source: a callable ``source(epoch)``, or a list (tuple) of batches used every
    epoch; each batch is checked to be ``(x, future, y)`` tensors as it is drawn."""
    if isinstance(source, list | tuple):
        batches = source
        return lambda epoch: _checked_batches(batches, name, epoch)
    if not callable(source):
        consumed = hasattr(source, "__next__")
        raise DataValidationError(
            f"{name} must be a callable source(epoch) that yields (x, future, y) batches, or a "
            f"list of such batches (the same every epoch), got {describe_value(source)}."
            + (
                " A generator or iterator is used up by the first epoch: pass a list, or a "
                "function that makes a new one per epoch."
                if consumed
                else ""
            )
        )
    try:
        inspect.signature(source).bind(0)
    except TypeError as exc:
        raise DataValidationError(
            f"{name} ({getattr(source, '__qualname__', source)!r}) cannot be called as "
            f"{name}(epoch): {exc}. Give it one positional parameter, the epoch number."
        ) from None
    except ValueError:  # no signature (some builtins): call it and see
        pass
    return lambda epoch: _checked_batches(source(epoch), name, epoch)


def _checked_batches(batches: Any, name: str, epoch: int) -> Iterator[tuple[Tensor, Any, Tensor]]:
    """The batches of one epoch, each checked to be a triple of tensors (future may be None)."""
    try:
        iterator = iter(batches)
    except TypeError:
        raise DataValidationError(
            f"{name}({epoch}) must give an iterable of (x, future, y) batches, got "
            f"{describe_value(batches)}."
        ) from None
    for i, batch in enumerate(iterator):
        if isinstance(batch, tuple | list) and len(batch) == 3:
            x, future, y = batch
            if (
                isinstance(x, Tensor)
                and isinstance(y, Tensor)
                and (future is None or isinstance(future, Tensor))
            ):
                yield x, future, y
                continue
        raise DataValidationError(
            f"Batch {i} of {name} in epoch {epoch} must be a tuple (x, future, y) of tensors "
            f"(future None without future covariates), got {describe_value(batch)}."
        )


def _validation_loss(
    network: nn.Module,
    source: BatchSource,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    backoff: _Backoff,
    epoch: int,
    train_loss: float,
) -> float:
    """The mean validation loss of an epoch (all-reduced under torchrun); a source with no
    batches and a loss that is not finite are errors, not a NaN in the history."""
    total, count = _loss_sums(network, source, loss_fn, device, backoff)
    if distributed.world_size() > 1:
        sums = distributed.all_reduce_sum(
            torch.stack([total.double(), torch.tensor(count, device=device).double()])
        )
        total, count = sums[0], int(sums[1].item())
    if count == 0:
        raise DataValidationError(
            f"val_source gave no batches in epoch {epoch}. Give it validation batches, or pass "
            "val_source=None to train without validation."
        )
    value = float(total) / count
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"The validation loss became NaN or infinite in epoch {epoch} (training loss "
            f"{train_loss:.4g}): the validation batches hold NaN or infinite values (check the "
            "data val_source gives), or the network's forecasts on them are not finite (inputs "
            "far outside the training data's scale). Clean or rescale the validation data."
        )
    return value


def _restore(
    state: TrainingState,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> None:
    """Load ``state`` into the training objects and the random number generators."""
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


def _loss_sums(
    network: nn.Module,
    source: BatchSource,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    backoff: _Backoff,
    amp: bool = False,
) -> tuple[Tensor, int]:
    """Sum over windows of the per-batch mean loss, and the window count (epoch 0)."""
    network.eval()
    total = torch.zeros((), device=device)
    count = 0

    def forward(xb: Tensor, fb: Tensor | None) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and _is_cuda(device)):
            return network(xb, fb)

    with torch.no_grad():
        for x, future, y in source(0):
            prediction = backoff.run(forward, x, future)
            total += loss_fn(prediction.float(), y).float() * x.shape[0]
            count += x.shape[0]
    return total, count


def evaluate(
    network: nn.Module,
    source: BatchSource,
    loss: str = "mae",
    device: torch.device | str = "cpu",
    amp: bool = True,
    backoff: _Backoff | None = None,
) -> float:
    """Mean ``loss`` of the network's forecasts over every batch of ``source`` (epoch 0).

    Batches that run out of GPU memory are evaluated in parts (see :func:`predict_batched`);
    ``backoff`` (internal) carries that split over from earlier calls.
    """
    device = torch.device(device)
    backoff = backoff if backoff is not None else _Backoff("evaluation", device)
    total, count = _loss_sums(network, source, loss_function(loss), device, backoff, amp)
    return float(total) / count if count else math.nan


def _diverged(epoch: int, lr: float, grad_clip: float | None) -> None:
    clip = f"grad_clip={grad_clip}" if grad_clip is not None else "no gradient clipping"
    raise TrainingDivergedError(
        f"The training loss became NaN or infinite in epoch {epoch} (lr={lr}, {clip}). "
        "Try a lower lr (e.g. lr/10), gradient clipping (grad_clip=1.0), a scaling of the data "
        "(scaling='standard' or 'robust'), loss='huber', or check the input for extreme values."
    )

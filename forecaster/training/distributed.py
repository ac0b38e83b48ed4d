"""Data-parallel training across processes launched by ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of a script with the environment
variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Under
such a launch ``fit`` of the estimators calls :func:`init_from_env`, which joins the process group
(gloo on CPU, NCCL on CUDA, one GPU per process: ``cuda:LOCAL_RANK``), and then

- every rank draws the same seeded permutation of the epoch's windows and takes every
  ``world_size``-th of them (:func:`shard`, equal counts), in batches of
  ``batch_size // world_size``, so that one step of all ranks together sees the same global
  batch as one step of a single process;
- :func:`forecaster.training.loop.train` wraps the network in
  :class:`~torch.nn.parallel.DistributedDataParallel` (gradients averaged over ranks) and
  all-reduces the training and validation losses, so early stopping, learning-rate schedules and
  stop requests agree on every rank;
- only the main process (rank 0) writes checkpoints, shows progress and logs to MLflow; the
  ``forecaster`` command saves models and writes outputs on rank 0 only. A checkpoint holds the
  random number generator states of every rank, so ``fit(..., resume=True)`` under torchrun
  with the same number of processes ends as the uninterrupted run did (a different number is
  refused).

Without ``torchrun`` (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) every helper here is a no-op and
training runs in one process as usual. A rank is read from ``RANK`` only under a real launch
(:func:`is_launched`: ``WORLD_SIZE > 1`` with ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``);
a stray ``RANK=1`` left in the environment is ignored with a warning, so a single process
never mistakes itself for a rank that must not write.

Examples
--------
>>> import numpy as np
>>> shard(np.arange(10), rank=1, world_size=3)  # every 3rd element from the 2nd, 3 per rank
array([1, 4, 7])
>>> world_size(), is_main_process()  # not launched by torchrun
(1, True)
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from forecaster.exceptions import DistributedError, ForecasterWarning, silenced, warn_at_caller
from forecaster.training.seeding import seed_generators

__all__ = [
    "DistributedError",
    "all_gather_objects",
    "all_reduce_sum",
    "any_rank",
    "any_rank_each",
    "init_from_env",
    "is_distributed",
    "is_launched",
    "is_main_process",
    "launched_world_size",
    "quiet_other_ranks",
    "rank",
    "seed_this_rank",
    "shard",
    "world_size",
]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DistributedError(
            f"The environment variable {name}={raw!r} is not an integer. It is set by torchrun; "
            "launch with `torchrun --nproc_per_node=N ...` or unset it."
        ) from None
    if value < 0:
        raise DistributedError(f"The environment variable {name}={raw!r} must be >= 0.")
    return value


def launched_world_size() -> int:
    """``WORLD_SIZE`` of the launch (1 when not started by torchrun)."""
    return max(_env_int("WORLD_SIZE", 1), 1)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


_LAUNCH_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")
"""Set by torchrun next to ``WORLD_SIZE``: without them a ``RANK`` is a stray variable."""
_STRAY_WARNED: set[tuple[str | None, ...]] = set()


def is_launched() -> bool:
    """True when this process was started by a distributed launch (torchrun): ``WORLD_SIZE``
    above 1 and ``RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` all set.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"RANK": "1"}, clear=True):  # a stray RANK alone
    ...     is_launched()
    False
    """
    if launched_world_size() <= 1:
        return False
    return all(os.environ.get(name) for name in _LAUNCH_VARIABLES)


def rank() -> int:
    """This process's rank: from the process group, else ``RANK`` under a distributed launch
    (:func:`is_launched`), else 0. A ``RANK`` other than 0 outside a launch (a stray variable
    left in the environment) is ignored with a ``ForecasterWarning``: the process works alone
    and writes its outputs, instead of waiting for a rank 0 that does not exist."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    if is_launched():
        return _env_int("RANK", 0)
    if os.environ.get("RANK", "0") not in ("", "0"):
        _warn_stray()
    return 0


def _warn_stray() -> None:
    """Warn once per environment about a ``RANK`` that is not part of a launch."""
    names = ("RANK", "WORLD_SIZE", *_LAUNCH_VARIABLES[1:])
    values = tuple(os.environ.get(name) for name in names)
    if values in _STRAY_WARNED:
        return
    _STRAY_WARNED.add(values)
    found = ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True) if v is not None)
    warn_at_caller(
        f"The environment sets {found}, but this is no distributed launch (torchrun sets "
        "WORLD_SIZE > 1, RANK, MASTER_ADDR and MASTER_PORT together): running as a single "
        "process that writes its outputs. Unset RANK, or launch with `torchrun "
        "--nproc_per_node=N ...`.",
        ForecasterWarning,
    )


def world_size() -> int:
    """Number of processes in the process group (1 when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def is_main_process() -> bool:
    """True on rank 0, and in a process not launched by torchrun (whatever a stray ``RANK``
    says, see :func:`rank`): the one that writes."""
    return rank() == 0


@contextlib.contextmanager
def quiet_other_ranks() -> Iterator[None]:
    """No :class:`~forecaster.exceptions.ForecasterWarning` within the block on the ranks other
    than 0 of a distributed launch: every rank fits the same model on the same data, and rank
    0 reports for them all, as it alone writes logs (the ``forecaster`` command quiets the
    other ranks the same way, by :func:`is_main_process`). On rank 0, and in a process of its
    own, the block changes nothing. It drops them in its own thread only
    (:func:`~forecaster.exceptions.silenced`): no process-wide filter for a whole fit.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught, quiet_other_ranks():
    ...     warnings.simplefilter("always")
    ...     warnings.warn("shown on rank 0", ForecasterWarning)
    >>> len(caught)
    1
    """
    if is_main_process():
        yield
        return
    with silenced(ForecasterWarning):  # this thread's alone: no process-wide filter
        yield


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group that torchrun's environment describes; return this rank's device.

    Does nothing (and returns ``device``) without torchrun or with ``WORLD_SIZE=1``, or when the
    group is already initialised (by the user or an earlier fit). On CUDA a device without an
    index becomes ``cuda:LOCAL_RANK`` and the backend is NCCL; on the CPU it is gloo.

    Raises
    ------
    DistributedError
        When ``WORLD_SIZE > 1`` but the group cannot be joined (e.g. ``MASTER_ADDR`` unset).
    """
    if is_distributed():
        return _rank_device(device)
    if launched_world_size() <= 1:
        return device
    if not dist.is_available():
        raise DistributedError(
            f"WORLD_SIZE={launched_world_size()} asks for distributed training, but this build "
            "of PyTorch has no torch.distributed. Install a standard PyTorch build or run one "
            "process."
        )
    device = _rank_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            backend=backend,
            timeout=dt.timedelta(minutes=30),
            device_id=device if device.type == "cuda" else None,
        )
    except (ValueError, RuntimeError) as exc:
        raise DistributedError(
            f"Cannot join the process group (backend {backend}, RANK={os.environ.get('RANK')}, "
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')}): {exc}. Launch with `torchrun "
            "--nproc_per_node=N ...`, which sets MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE."
        ) from exc
    atexit.register(_shutdown)
    return device


def _rank_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", _env_int("LOCAL_RANK", 0))
    return device


def _shutdown() -> None:
    with contextlib.suppress(Exception):
        if dist.is_initialized():
            dist.destroy_process_group()


def seed_this_rank(device: torch.device | str = "cpu") -> None:
    """Give this rank its own random stream for dropout (a no-op in one process).

    Every rank built the same initial weights from the same seed; dropout must not draw the
    same masks on every rank, so ranks other than 0 (which matches one process) continue from
    their own stream: the CPU's generator and that of ``device``, the rank's training device,
    are seeded again (no other device's: :func:`~forecaster.training.seeding.seed_generators`).
    """
    if world_size() > 1 and rank() > 0:
        seed_generators(torch.initial_seed() + 7919 * rank(), torch.device(device))


def shard(
    indices: np.ndarray,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    equal: bool = True,
) -> np.ndarray:
    """Every ``world_size``-th element of ``indices`` starting at ``rank``.

    With ``equal=True`` the trailing ``len(indices) % world_size`` elements are dropped, so that
    every rank gets the same count (DDP needs the same number of steps on every rank).
    Without a process group this returns ``indices`` unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> [shard(np.arange(7), rank=r, world_size=2).tolist() for r in (0, 1)]
    [[0, 2, 4], [1, 3, 5]]
    >>> shard(np.arange(7), rank=0, world_size=2, equal=False).tolist()
    [0, 2, 4, 6]
    """
    r = _current_rank() if rank is None else rank
    w = _current_world_size() if world_size is None else world_size
    if w <= 1:
        return indices
    stop = len(indices) - len(indices) % w if equal else len(indices)
    return indices[r:stop:w]


_current_rank = rank  # the functions, for shard() whose parameters share their names
_current_world_size = world_size


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (a no-op without a process group); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank (every rank gets the same answer)."""
    return any_rank_each((flag,), device)[0]


def any_rank_each(flags: Sequence[bool], device: torch.device | str) -> tuple[bool, ...]:
    """For each of ``flags``, whether it is true on any rank: one collective for all."""
    if not is_distributed():
        return tuple(bool(flag) for flag in flags)
    values = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in values.tolist())


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without a group)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered

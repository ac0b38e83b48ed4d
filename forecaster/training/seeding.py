"""The random generators a fit draws from: seeded for the fit, and given back afterwards.

``torch.manual_seed`` seeds every device's generator (every CUDA device, MPS, XPU, and the
seed CUDA takes when a process initialises it later). A fit draws from two at most: the
CPU's (the initial weights, built on the CPU, and dropout on the CPU) and, on a GPU, the
training device's (dropout there). Only those are seeded here, and :func:`seeded_generators`
restores exactly those, so a fit leaves every random stream of its caller as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

__all__ = ["seed_generators", "seeded_generators"]


def seed_generators(seed: int, device: torch.device) -> None:
    """Seed the generators a network trained on ``device`` draws from with ``seed``: the
    CPU's and, for a CUDA or MPS device, that device's; no other device's.

    Parameters
    ----------
    seed : int
        The seed (what ``torch.manual_seed`` accepts).
    device : torch.device
        The training device (``cuda`` without an index: the current CUDA device).

    Examples
    --------
    >>> with torch.random.fork_rng(devices=[]):
    ...     seed_generators(3, torch.device("cpu"))
    ...     torch.initial_seed()
    3
    """
    torch.random.default_generator.manual_seed(int(seed))
    if device.type == "cuda":
        torch.cuda.init()  # seeded now, not queued for CUDA's initialisation
        with torch.cuda.device(_cuda_index(device)):
            torch.cuda.manual_seed(int(seed))
    elif device.type == "mps":
        torch.mps.manual_seed(int(seed))


@contextlib.contextmanager
def seeded_generators(seed: int, device: torch.device) -> Iterator[None]:
    """:func:`seed_generators` for the block; the states of those generators before it are
    restored after it, also when it raises.

    Examples
    --------
    >>> before = torch.get_rng_state()
    >>> with seeded_generators(0, torch.device("cpu")):
    ...     _ = torch.rand(2)
    >>> torch.equal(torch.get_rng_state(), before)
    True
    """
    cpu_state = torch.random.get_rng_state()
    restore_device = _device_state(device)
    try:
        seed_generators(seed, device)
        yield
    finally:
        torch.random.set_rng_state(cpu_state)
        restore_device()


def _cuda_index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.index is None else int(device.index)


def _device_state(device: torch.device) -> Callable[[], None]:
    """A function that puts the generator of ``device`` (CUDA, MPS) back in its present
    state; a no-op for the CPU (its state is kept by :func:`seeded_generators`)."""
    if device.type == "cuda":
        index = _cuda_index(device)
        cuda_state = torch.cuda.get_rng_state(index)
        return lambda: torch.cuda.set_rng_state(cuda_state, index)
    if device.type == "mps":
        mps_state = torch.mps.get_rng_state()
        return lambda: torch.mps.set_rng_state(mps_state)
    return lambda: None

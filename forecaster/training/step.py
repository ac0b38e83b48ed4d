"""One optimiser step per batch: forward, backward (in parts after running out of GPU memory
with ``on_oom="split"``), gradient clipping, AdamW step, with loss scaling under autocast."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

import forecaster.training.distributed as distributed
from forecaster.exceptions import ForecasterWarning, TrainingDivergedError, warn_at_caller
from forecaster.training.memory import (
    Compute,
    chunks,
    largest_fitting_batch,
    memory_detail,
    release_memory,
    training_out_of_memory,
)

__all__ = ["Stepper", "TrainingLoss", "diverged", "training_compute"]


class TrainingLoss(nn.Module):
    """``network.training_loss`` as a ``forward`` (DistributedDataParallel wraps forward)."""

    def __init__(self, network: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.network = network
        self.loss_fn = loss_fn

    def forward(self, x: Tensor, future: Tensor | None, y: Tensor) -> Tensor:
        return self.network.training_loss(x, future, y, self.loss_fn)


def training_compute(
    network: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    *,
    data_parallel: bool,
) -> Compute:
    """``compute(x, future, y)``: the batch's training loss, through
    :class:`~torch.nn.parallel.DistributedDataParallel` when ``data_parallel`` (torchrun)."""
    if not data_parallel:

        def compute(x: Tensor, future: Tensor | None, y: Tensor) -> Tensor:
            return network.training_loss(x, future, y, loss_fn)

        return compute
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(
        TrainingLoss(network, loss_fn),
        device_ids=[device.index] if device.type == "cuda" else None,
    )
    _ignore_grad_stride_note()
    return wrapped


_GRAD_STRIDE_NOTE = ("Grad strides do not match bucket view", r"torch\.autograd")
"""The message and module of a note that DDP makes once per process from the backward pass
(``torch.autograd``): the segment head's small embeddings get non-contiguous gradients (they
are expanded and concatenated), a performance note only. The filter ignores that note alone,
not the same text raised by other modules."""


def _ignore_grad_stride_note() -> None:
    """Add the filter of :data:`_GRAD_STRIDE_NOTE` unless it is there: adding a filter at every
    fit would clear Python's record of the warnings already shown (the default filter would
    then repeat every warning of every fit)."""
    message, module = _GRAD_STRIDE_NOTE
    if not any(
        entry[0] == "ignore"
        and getattr(entry[1], "pattern", None) == message
        and getattr(entry[3], "pattern", None) == module
        for entry in warnings.filters
    ):
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)


def diverged(epoch: int, lr: float, grad_clip: float | None) -> TrainingDivergedError:
    """The error for a training loss that became NaN or infinite in ``epoch``."""
    clip = f"grad_clip={grad_clip}" if grad_clip is not None else "no gradient clipping"
    return TrainingDivergedError(
        f"The training loss became NaN or infinite in epoch {epoch} (lr={lr}, {clip}). "
        "Try a lower lr (e.g. lr/10), gradient clipping (grad_clip=1.0), loss='huber', a "
        "scaling of the data (a forecaster's scaling='standard' or 'robust'; RNNRegressor "
        "standardises its inputs and targets itself), or check the input for extreme values."
    )


class Stepper:
    """One optimiser step per batch: forward, backward (in ``parts`` after running out of GPU
    memory with ``on_oom="split"``), clipping, AdamW step."""

    def __init__(
        self,
        compute: Compute,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        *,
        device: torch.device,
        use_amp: bool,
        grad_clip: float | None,
        on_oom: str,
    ) -> None:
        self.compute, self.network, self.optimizer = compute, network, optimizer
        self.scaler = scaler
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
            release_memory(self.device)
            n = x.shape[0]
            size = math.ceil(n / min(self.parts, n))
            if self.on_oom == "split" and self.world == 1 and size > 1:
                self.parts *= 2
                warn_at_caller(
                    f"A training batch of {size} windows ran out of GPU memory on "
                    f"{self.device}; from now on every batch is split into {self.parts} parts "
                    "whose gradients are accumulated (the same effective batch size).",
                    ForecasterWarning,
                )
                continue
            raise self._out_of_memory(x, future, y, size)

    def _step(self, x: Tensor, future: Tensor | None, y: Tensor, check: Callable | None) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        n = x.shape[0]
        parts = min(self.parts, n)
        total: Tensor | None = None
        for xc, fc, yc in zip(
            chunks(x, parts), chunks(future, parts), chunks(y, parts), strict=True
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

    def _out_of_memory(self, x: Tensor, future: Tensor | None, y: Tensor, size: int) -> Exception:
        where = memory_detail(self.device)
        if self.world > 1:
            fits = max(size // 2, 1) if size > 1 else None
        else:
            fits = largest_fitting_batch(
                self.compute,
                self.optimizer,
                (x, future, y),
                size,
                device=self.device,
                use_amp=self.use_amp,
            )
        return training_out_of_memory(size, fits, world=self.world, where=where)

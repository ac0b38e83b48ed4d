"""Out-of-memory handling: batches that do not fit in GPU memory are split (forward passes) or
diagnosed (training steps), so that the error says a batch size that fits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from forecaster.exceptions import ForecasterWarning, GPUOutOfMemoryError, warn_at_caller

__all__ = [
    "Backoff",
    "chunks",
    "largest_fitting_batch",
    "memory_detail",
    "release_memory",
    "training_out_of_memory",
]

Compute = Callable[[Tensor, Tensor | None, Tensor], Tensor]
"""``compute(x, future, y)``: the training loss of a batch."""


def release_memory(device: torch.device) -> None:
    """Return cached GPU memory after a failed attempt (no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def memory_detail(device: torch.device) -> str:
    """The device and, on CUDA, its free and total memory (for error messages)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return str(device)
    try:
        free, total = torch.cuda.mem_get_info(device)
    except RuntimeError:
        return str(device)
    return f"{device}: {free / 2**30:.2f} GiB free of {total / 2**30:.2f} GiB"


def chunks(tensor: Tensor | None, parts: int) -> Sequence[Tensor | None]:
    """``tensor`` in ``parts`` slices along the batch (``parts`` Nones for None)."""
    return [None] * parts if tensor is None else tensor.tensor_split(parts)


class Backoff:
    """Runs a batch function on the whole batch, or on ``parts`` slices after running out of
    GPU memory (halving the slices until they fit). Used where splitting does not change the
    result beyond float rounding: forward passes in validation and prediction.

    Examples
    --------
    >>> backoff = Backoff("prediction", torch.device("cpu"))
    >>> backoff.run(lambda x, future: x * 2, torch.ones(3, 1), None).sum().item()
    6.0
    """

    def __init__(self, what: str, device: torch.device) -> None:
        self.what, self.device, self.parts = what, device, 1

    def run(self, function: Callable[..., Tensor], x: Tensor, future: Tensor | None) -> Tensor:
        n = x.shape[0]
        while True:
            parts = min(self.parts, n)
            try:
                outputs = [
                    function(xc, fc)
                    for xc, fc in zip(chunks(x, parts), chunks(future, parts), strict=True)
                ]
                return outputs[0] if parts == 1 else torch.cat(outputs)
            except torch.OutOfMemoryError:
                pass
            # outside the except block, so that the failed attempt's tensors can be freed
            release_memory(self.device)
            size = math.ceil(n / parts)
            if size <= 1:
                raise GPUOutOfMemoryError(
                    f"Not even one window of a {self.what} batch fits in GPU memory "
                    f"({memory_detail(self.device)}). Use a smaller network (hidden_size, "
                    "num_layers) or lookback, free the GPU, or use device='cpu'.",
                    batch_size=n,
                    suggested_batch_size=None,
                )
            self.parts = parts * 2
            warn_at_caller(
                f"A {self.what} batch of {size} windows ran out of GPU memory on "
                f"{self.device}; running it in parts of {math.ceil(n / self.parts)} windows "
                "(the same results up to float rounding).",
                ForecasterWarning,
            )


def largest_fitting_batch(
    compute: Compute,
    optimizer: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor | None, Tensor],
    size: int,
    *,
    device: torch.device,
    use_amp: bool,
) -> int | None:
    """Try a forward and backward pass on halves of ``batch`` until one fits; the windows
    that fit, or None when not even one does."""
    x, future, y = batch
    trial = size // 2
    while trial >= 1:
        fits = True
        try:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = compute(x[:trial], None if future is None else future[:trial], y[:trial])
            loss.backward()
            del loss
        except torch.OutOfMemoryError:
            fits = False
        optimizer.zero_grad(set_to_none=True)
        release_memory(device)
        if fits:
            return trial
        trial //= 2
    return None


def training_out_of_memory(
    size: int, fits: int | None, *, world: int, where: str
) -> GPUOutOfMemoryError:
    """The error for a training batch of ``size`` windows (per rank) that did not fit on
    ``where`` (:func:`memory_detail` when it failed), naming ``fits`` windows that do
    (measured in one process, guessed under torchrun)."""
    measured = "likely fits (not measured: measuring would need every rank)"
    if world == 1:
        measured = "fits (measured)"
    per_rank = f" per rank ({world} ranks)" if world > 1 else ""
    if fits is None:
        advice = (
            "Not even one window fits: use a smaller network (hidden_size, num_layers) or "
            "lookback, free the GPU, or use device='cpu'."
        )
    else:
        advice = (
            f"A batch of {fits} windows{per_rank} {measured}: set batch_size={fits * world}"
            + (
                f", or on_oom='split' to keep batch_size={size * world} and "
                "accumulate the gradients of smaller parts."
                if world == 1
                else "."
            )
        )
    return GPUOutOfMemoryError(
        f"A training batch of {size} windows{per_rank} ran out of GPU memory ({where}). " + advice,
        batch_size=size,
        suggested_batch_size=fits,
    )

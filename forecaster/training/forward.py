"""Forward passes without gradients: prediction in batches, evaluation and the validation
loss of an epoch (batches that run out of GPU memory are split, see
:class:`~forecaster.training.memory.Backoff`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

import forecaster.training.distributed as distributed
from forecaster.exceptions import DataValidationError, TrainingDivergedError
from forecaster.training.memory import Backoff
from forecaster.training.settings import loss_function
from forecaster.training.sources import BatchSource

__all__ = ["evaluate", "loss_sums", "predict_batched", "validation_loss"]


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
    >>> from forecaster.nn import RecurrentNet
    >>> net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    >>> predict_batched(net.eval(), torch.randn(10, 8, 1), batch_size=4).shape
    torch.Size([10, 2, 1])
    """
    device = torch.device(device)
    backoff = Backoff("prediction", device)

    def forward(xb: Tensor, fb: Tensor | None) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and _is_cuda(device)):
            return network(xb, fb).float()

    outputs = []
    with torch.inference_mode():  # no autograd bookkeeping at all: outputs are only read
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


def loss_sums(
    network: nn.Module,
    source: BatchSource,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    backoff: Backoff,
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
    backoff: Backoff | None = None,
    *,
    across_ranks: bool = False,
) -> float:
    """Mean ``loss`` of the network's forecasts over every batch of ``source`` (epoch 0).

    Batches that run out of GPU memory are evaluated in parts (see :func:`predict_batched`);
    ``backoff`` (internal) carries that split over from earlier calls. ``across_ranks``:
    under torchrun, ``source`` is this rank's share and the mean is over every rank's (each
    rank must call it; the sums are all-reduced), as :func:`validation_loss` does.
    """
    device = torch.device(device)
    backoff = backoff if backoff is not None else Backoff("evaluation", device)
    loss_fn = loss_function(loss, getattr(network, "quantiles", None))
    total, count = loss_sums(network, source, loss_fn, device, backoff, amp)
    if across_ranks:
        total, count = _summed_over_ranks(total, count, device)
    return float(total) / count if count else math.nan


def _summed_over_ranks(total: Tensor, count: int, device: torch.device) -> tuple[Tensor, int]:
    """``(total, count)`` summed over the ranks under torchrun (as they are without)."""
    if distributed.world_size() == 1:
        return total, count
    sums = distributed.all_reduce_sum(
        torch.stack([total.double(), torch.tensor(count, device=device).double()])
    )
    return sums[0], int(sums[1].item())


def validation_loss(
    network: nn.Module,
    source: BatchSource,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    device: torch.device,
    backoff: Backoff,
    epoch: int,
    train_loss: float,
) -> float:
    """The mean validation loss of an epoch (all-reduced under torchrun); a source with no
    batches and a loss that is not finite are errors, not a NaN in the history."""
    total, count = loss_sums(network, source, loss_fn, device, backoff)
    total, count = _summed_over_ranks(total, count, device)
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

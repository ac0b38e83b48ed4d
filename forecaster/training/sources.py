"""Batch sources: where the loop draws an epoch's ``(x, future, y)`` batches from, checked as
they are drawn (the estimators' sources shuffle and, under torchrun, shard windows by epoch:
:func:`forecaster.training.distributed.shard`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import Tensor, nn

from forecaster._validation import describe_value
from forecaster.exceptions import DataValidationError

__all__ = ["BatchSource", "as_source", "check_network"]

BatchSource = Callable[[int], Iterable[tuple[Tensor, Tensor | None, Tensor]]]
"""``source(epoch)`` yields ``(x, future, y)`` batches already on the training device."""


def check_network(network: Any) -> None:
    """Refuse a ``network`` that :func:`train` cannot train."""
    if not isinstance(network, nn.Module) or not callable(getattr(network, "training_loss", None)):
        raise DataValidationError(
            "network must be a torch.nn.Module with training_loss(x, future, y, loss_fn) and "
            "forward(x, future), like forecaster.nn.RecurrentNet; got "
            f"{describe_value(network)}."
        )
    if not any(True for _ in network.parameters()):
        raise DataValidationError("network has no parameters to train.")


def as_source(source: Any, name: str) -> BatchSource:
    """A batch source: a callable ``source(epoch)``, or a list (tuple) of batches used every
    epoch; each batch is checked to be ``(x, future, y)`` tensors as it is drawn."""
    if isinstance(source, _CheckedSource):
        return source
    if isinstance(source, list | tuple):
        batches = source
        return _CheckedSource(lambda epoch: batches, name)
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
    return _CheckedSource(source, name)


class _CheckedSource:
    """A batch source whose batches are checked as they are drawn (what :func:`as_source`
    returns; passing it to :func:`as_source` again returns it as it is)."""

    def __init__(self, source: BatchSource, name: str) -> None:
        self.source, self.name = source, name

    def __call__(self, epoch: int) -> Iterator[tuple[Tensor, Any, Tensor]]:
        return _checked_batches(self.source(epoch), self.name, epoch)


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

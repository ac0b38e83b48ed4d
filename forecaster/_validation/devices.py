"""The one parser of ``device`` arguments: :func:`resolve_device`."""

from __future__ import annotations

from typing import Any

from forecaster._validation.rules import Device
from forecaster.exceptions import DataValidationError

__all__ = ["resolve_device"]


def resolve_device(device: Any, *, name: str = "device") -> Any:
    """The ``torch.device`` for a ``device`` argument: the one parser of devices (estimators,
    :func:`forecaster.training.loop.train`, :meth:`forecaster.data.windows.Windows.gather`,
    :meth:`forecaster.data.Panel.values_on`,
    :meth:`forecaster.data.scaling.PanelScaler.tensors`).

    ``"auto"`` is CUDA when available, else the CPU. ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
    ``"mps"`` and ``torch.device`` objects of those types are checked against this machine
    (CUDA available, device ``N`` present, MPS available); anything else raises
    :class:`DataValidationError` naming ``name``.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: device must be 'auto', 'cpu', 'cuda', 'cuda:N' \
or 'mps', got 'tpu' (did you mean 'cpu'?).
    """
    import torch

    value = Device().check(name, device)
    if isinstance(value, str) and value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(value)
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise DataValidationError(
            f"{name}={device!r} is not supported. Pass 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DataValidationError(
                f"{name}={device!r} was requested but CUDA is not available here. Use "
                f"{name}='auto' or 'cpu', or install a CUDA build of torch."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DataValidationError(
                f"{name}={device!r}, but this machine has {count} CUDA device(s)"
                + (f" (cuda:0 to cuda:{count - 1})" if count else "")
                + f". Pass {name}='cuda' or 'auto' for the first one, or 'cpu'."
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DataValidationError(
            f"{name}={device!r}, but Apple's MPS backend is not available here. Pass "
            f"{name}='auto' or 'cpu'."
        )
    return resolved

"""The tensors a :class:`~forecaster.nn.recurrent.RecurrentNet` is called with, and their
checks: ``x``, ``future`` and, in training, ``y`` (type, dtype, device, shapes), each refusal
a :class:`~forecaster.exceptions.DataValidationError` that says how to fix the input.

Input layout
------------
``x`` has shape ``(batch, lookback, n_features)`` with the columns ordered as
``[targets (n_targets) | past covariates | future covariates (n_future)]``. The first
``n_targets`` columns are the series to forecast; the last ``n_future`` columns are covariates
whose values are also known over the horizon (their past values here). ``future`` has shape
``(batch, horizon, n_future)`` and holds those covariates over the horizon. The forecast has
shape ``(batch, horizon, n_targets)``. A network with static covariates
(``static_cardinalities`` / ``n_static_numeric``) takes ``n_static`` more columns, between the
past and the future covariates: ``[targets | past covariates | statics | future covariates]``
(:mod:`forecaster.nn.statics`); they are read at the window's last step only.

Every function takes the network as its first argument ``net`` (as the heads do) and reads its
sizes: ``lookback``, ``horizon``, ``n_features``, ``n_targets``, ``n_future``, ``n_static``
and ``head``.
"""

from __future__ import annotations

__all__ = ["as_input", "check_targets", "check_window"]

from typing import Any

from torch import Tensor

from forecaster._validation import describe_value
from forecaster.exceptions import DataValidationError


def as_input(net: Any, name: str, value: Any) -> Tensor:
    """``value`` (the input called ``name``) as a float tensor on the network's device and
    dtype (other float dtypes are cast), or DataValidationError for anything else.

    Parameters
    ----------
    net : RecurrentNet
    name : str
        ``"x"``, ``"future"`` or ``"y"``, for the messages.
    value : object
    """
    weight = next(net.parameters())
    if not isinstance(value, Tensor):
        raise DataValidationError(
            f"{name} must be a torch.Tensor, got {describe_value(value)}. "
            f"Convert it, e.g. torch.as_tensor({name}, dtype=torch.float32)."
        )
    if not value.is_floating_point():
        raise DataValidationError(
            f"{name} must hold floating-point values, got a {value.dtype} tensor. Cast it, "
            f"e.g. {name}.float()."
        )
    if value.device != weight.device:
        raise DataValidationError(
            f"{name} is on {value.device}, the network on {weight.device}. Move one of them, "
            f"e.g. {name}.to({str(weight.device)!r})."
        )
    if value.dtype != weight.dtype:
        value = value.to(weight.dtype)
    return value


def check_window(net: Any, x: Tensor, future: Tensor | None) -> Tensor | None:
    """The future covariates to forecast with (None for a network without them), after
    checking the shapes of ``x`` and ``future`` (tensors of :func:`as_input`).

    Parameters
    ----------
    net : RecurrentNet
    x : torch.Tensor
        ``(batch, lookback, n_features + n_static)``.
    future : torch.Tensor or None
        ``(batch, horizon, n_future)``; None or empty without future covariates.
    """
    width = net.n_features + net.n_static
    if x.ndim != 3 or x.shape[1] != net.lookback or x.shape[2] != width:
        statics = f" + n_static={net.n_static}" if net.n_static else ""
        raise DataValidationError(
            f"x must have shape (batch, lookback={net.lookback}, "
            f"n_features={net.n_features}{statics}); received {tuple(x.shape)}. Window the "
            "data with the network's lookback and put every feature column in the last axis."
        )
    if net.n_future == 0:
        if future is not None and future.numel() > 0:
            raise DataValidationError(
                f"the network was built with n_future=0 but received future covariates of "
                f"shape {tuple(future.shape)}. Pass future=None, or build the network with "
                "n_future set to their number."
            )
        return None
    if future is None:
        raise DataValidationError(
            f"head={net.head!r} with n_future={net.n_future} needs the future covariates "
            f"over the horizon, shape (batch, {net.horizon}, {net.n_future}); received "
            "future=None. Pass them as `future`."
        )
    expected = (x.shape[0], net.horizon, net.n_future)
    if tuple(future.shape) != expected:
        raise DataValidationError(
            f"future must have shape (batch, horizon, n_future) = {expected}; received "
            f"{tuple(future.shape)}. Slice the future-known covariates over the horizon."
        )
    return future


def check_targets(net: Any, x: Tensor, y: Tensor) -> None:
    """Refuse training targets ``y`` whose shape is not ``(batch, horizon, n_targets)``, the
    batch of ``x``.

    Parameters
    ----------
    net : RecurrentNet
    x, y : torch.Tensor
        Tensors of :func:`as_input`.
    """
    expected = (x.shape[0], net.horizon, net.n_targets)
    if tuple(y.shape) != expected:
        raise DataValidationError(
            f"y must have shape (batch, horizon, n_targets) = {expected}; received "
            f"{tuple(y.shape)}. Add a trailing axis for a single target."
        )

"""Checks of a :class:`~forecaster.nn.recurrent.RecurrentNet` configuration, computed without
building the network: the arguments and their relations, the parameter count and the memory
the network (and training it) would take, against the memory this machine or device has."""

from __future__ import annotations

__all__ = [
    "MemoryEstimate",
    "OutOfMemoryError",
    "check_memory",
    "check_network_config",
    "count_parameters",
    "estimate_memory",
    "memory_limit",
    "out_of_memory",
    "parameter_count",
    "saved_network_config",
]

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from forecaster._validation import check, format_bytes
from forecaster._validation import memory_limit as machine_memory_limit
from forecaster.exceptions import DataValidationError, OutOfMemoryError
from forecaster.nn.cells import GATES
from forecaster.nn.config import DEFAULTS, REQUIRED
from forecaster.nn.heads import HEAD_TYPES
from forecaster.nn.heads.base import core_sizes
from forecaster.nn.heads.segment import covariate_channels
from forecaster.nn.quantiles import median_index
from forecaster.nn.statics import (
    check_static_config,
    decodes_from_statics,
    static_parameter_count,
)


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Count the scalar parameters of a module.

    Parameters
    ----------
    module : torch.nn.Module
        Any module.
    trainable_only : bool, default=False
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        The total number of parameter elements.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


_FLOAT_BYTES = 4
_TRAINING_BYTES_PER_PARAMETER = 20
"""float32 weights, gradients, AdamW's two moments and the best weights kept for early
stopping."""
_BYTES_PER_NETWORK = 32 * 1024
"""What a network costs besides its weights (Python module and tensor objects; measured about
28 KB for a tiny one), which counts when an ensemble has very many members."""


def _defaults() -> dict[str, Any]:
    return dict(DEFAULTS)


def check_network_config(
    config: Mapping[str, Any], *, n_members: int = 1, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Check a :class:`RecurrentNet` configuration without building the network.

    Every argument goes through the parameter table (:mod:`forecaster._validation`), then their
    relations are checked, then the memory that ``n_members`` networks' parameters take
    (:func:`check_memory`, against :func:`memory_limit`). Unknown keys are refused.

    Parameters
    ----------
    config : mapping
        :class:`RecurrentNet` keyword arguments (e.g. :meth:`RecurrentNet.get_config`);
        missing ones take their defaults.
    n_members : int, default 1
        Number of networks of this configuration held at once (an ensemble).
    names : mapping, optional
        How the caller calls ``n_members`` (see :func:`check_memory`).

    Returns
    -------
    dict
        The configuration with defaults filled in and numbers as Python ints and floats.

    Examples
    --------
    >>> check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24,
    ...                       "horizon": 6})["hidden_size"]
    128
    >>> check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24, "horizon": 6,
    ...                       "hidden_size": 10**9})
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: The network's parameters would take ...
    """
    defaults = _defaults()
    unknown = sorted(set(config) - set(defaults) - set(REQUIRED))
    if unknown:
        raise DataValidationError(
            f"Unknown network arguments {unknown}; RecurrentNet takes "
            f"{sorted({'n_features', 'n_targets', 'lookback', 'horizon', *defaults})}."
        )
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise DataValidationError(f"The network configuration lacks {missing}.")
    merged = {**defaults, **config}
    statics = {k: merged.pop(k) for k in ("static_cardinalities", "n_static_numeric")}
    checked = {name: check(name, value) for name, value in merged.items()}
    cards, checked["n_static_numeric"] = check_static_config(statics)
    checked["static_cardinalities"] = cards or None
    has_statics = bool(cards or checked["n_static_numeric"])
    if checked["static_at_horizon"] and not decodes_from_statics(checked["head"], has_statics):
        raise DataValidationError(
            "static_at_horizon=True adds the static covariates' state to the seq2seq decoder's; "
            f"this network has head={checked['head']!r}, static_cardinalities={cards or None} "
            f"and n_static_numeric={checked['n_static_numeric']}. Drop it, or use it with "
            "head='seq2seq' and static covariates."
        )
    checked["channel_independent"] = bool(checked["channel_independent"])
    cell, head, nonlinearity = checked["cell"], checked["head"], checked["nonlinearity"]
    if cell != "rnn" and nonlinearity != "tanh":
        raise DataValidationError(
            f"nonlinearity={nonlinearity!r} only applies to cell='rnn'; received "
            f"cell={cell!r}. Use cell='rnn' for a ReLU RNN, or leave nonlinearity='tanh' "
            f"with cell={cell!r} (its gates fix their own nonlinearities)."
        )
    n_features, n_targets, n_future = (checked[k] for k in ("n_features", "n_targets", "n_future"))
    if n_targets > n_features - n_future:
        raise DataValidationError(
            f"n_targets must be <= n_features - n_future = {n_features} - {n_future} = "
            f"{n_features - n_future} (the targets are the first columns of x and the "
            f"future covariates its last ones); received n_targets={n_targets}. Check that "
            "n_features counts every column of x, targets and covariates included."
        )
    if head == "segment" and checked["hidden_size"] < 2:
        raise DataValidationError(
            f"head='segment' needs hidden_size >= 2 (it is split between a position and a "
            f"channel embedding); received hidden_size={checked['hidden_size']}. Pass a larger "
            "hidden_size, e.g. 64."
        )
    if not checked["past_covariates"] and not HEAD_TYPES[head].always_channel_independent:
        raise DataValidationError(
            f"past_covariates=False only rebuilds head='segment' models saved before that head "
            f"used past covariates; head={head!r} always uses them. Leave past_covariates=True."
        )
    if not checked["future_at_step"] and (head != "recursive" or not checked["n_future"]):
        raise DataValidationError(
            "future_at_step=False only rebuilds head='recursive' models with future covariates "
            "saved before each step read the future covariates of the step it forecasts; this "
            f"network has head={head!r} and n_future={checked['n_future']}. Leave "
            "future_at_step=True."
        )
    resolved_by = {
        "lookback": "on the data",
        "segment_length": "from the lookback and the frequency",
    }
    for name, how in resolved_by.items():
        if checked[name] == "auto":
            raise DataValidationError(
                f"{name} must be an integer >= 1 for a network; received 'auto' (the "
                f"estimators resolve {name}='auto' {how} before building it)."
            )
    if checked["linear_skip"] == "auto":
        raise DataValidationError(
            "linear_skip must be True or False for a network; received 'auto' (the estimators "
            "resolve linear_skip='auto' from the fitted target transform before building it)."
        )
    if checked["linear_skip"] and head == "recursive":
        raise DataValidationError(
            "linear_skip=True is not possible with head='recursive': it is trained one step "
            "at a time, and the skip maps the window to the whole horizon. Use head='segment', "
            "'direct' or 'seq2seq' for a linear skip, or leave linear_skip out."
        )
    if checked["quantiles"] is not None:
        median_index(checked["quantiles"])
    check_memory(checked, n_members=n_members, names=names)
    return checked


def saved_network_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A network configuration read from a saved model, as this version builds it.

    A ``"segment"`` configuration with past covariates and no ``past_covariates`` entry was
    saved before that head used past covariates: its weights have no covariate embedding and
    its forecasts ignored them, so it gets ``past_covariates=False`` (same forecasts as
    before). A ``"recursive"`` configuration with future covariates (or calendar features)
    and no ``future_at_step`` entry was saved when the step forecasting time ``s`` read the
    future covariates of ``s - 1``: its weights were trained so, and it gets
    ``future_at_step=False`` (same forecasts as before). Every other configuration is
    returned as it is (a copy).

    Examples
    --------
    >>> saved_network_config({"n_features": 3, "n_targets": 1, "lookback": 24,
    ...                       "horizon": 6})["past_covariates"]
    False
    >>> "past_covariates" in saved_network_config({"n_features": 1, "n_targets": 1,
    ...                                            "lookback": 24, "horizon": 6})
    False
    >>> saved_network_config({"n_features": 2, "n_targets": 1, "n_future": 1, "lookback": 24,
    ...                       "horizon": 6, "head": "recursive"})["future_at_step"]
    False
    """
    config = dict(config)
    head = config.get("head", DEFAULTS["head"])
    n_features, n_future, n_targets = (
        config.get(k) for k in ("n_features", "n_future", "n_targets")
    )
    n_future = DEFAULTS["n_future"] if n_future is None else n_future
    sizes_known = all(isinstance(v, int) for v in (n_features, n_future, n_targets))
    if not sizes_known:
        return config  # a bad config is refused when it is built
    if "past_covariates" not in config and head == "segment" and n_features - n_future > n_targets:
        config["past_covariates"] = False
    if "future_at_step" not in config and head == "recursive" and n_future > 0:
        config["future_at_step"] = False
    return config


def parameter_count(config: Mapping[str, Any]) -> int:
    """Number of scalar parameters of ``RecurrentNet(**config)``, computed without building it.

    ``config`` holds checked values (see :func:`check_network_config`).

    Examples
    --------
    >>> config = check_network_config({"n_features": 2, "n_targets": 1, "lookback": 24,
    ...                                "horizon": 6, "hidden_size": 8, "head": "direct"})
    >>> from forecaster.nn.recurrent import RecurrentNet
    >>> parameter_count(config) == count_parameters(RecurrentNet(**config))
    True
    """
    c = {**_defaults(), **config}
    head = HEAD_TYPES[c["head"]]
    if head.always_channel_independent:  # it normalizes the targets and the covariates it reads
        core_targets, core_past = c["n_targets"], c["n_features"] - c["n_future"]
        normalized = c["n_targets"] + covariate_channels(
            core_past, c["n_targets"], c["past_covariates"]
        )
    else:
        core_targets, core_past = core_sizes(c)
        normalized = core_past
    revin = c["normalization"] == "revin"  # a learned affine per normalized channel
    gaps = (
        0
        if c["quantiles"] is None
        else 2 * c["horizon"] * c["n_targets"] * (len(c["quantiles"]) - 1)
    )
    statics = static_parameter_count(c)
    skip = (c["lookback"] + 1) * c["horizon"] if c["linear_skip"] else 0
    return skip + (
        head.parameter_count(c, core_targets, core_past)
        + (2 * normalized if revin else 0)
        + gaps
        + statics
    )


def _activation_floats(c: Mapping[str, Any], batch: int) -> int:
    """float32 values kept for the backward pass of one training batch (an estimate that
    counts the recurrent layers' gates and outputs, the inputs and the batch tensors)."""
    per_step = c["num_layers"] * (GATES[c["cell"]] + 1) * c["hidden_size"]
    recurrent = HEAD_TYPES[c["head"]].recurrent_floats(c, batch, per_step)
    lookback, horizon = c["lookback"], c["horizon"]
    batch_tensors = 3 * batch * (lookback + horizon) * c["n_features"]
    return 2 * recurrent + batch_tensors  # activations and their gradients


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a configuration needs: ``parameters`` (count), ``weights`` (the float32
    parameters of every member) and ``training`` (optimiser state of the member being trained
    and one training batch's working set; 0 when no batch size was given)."""

    parameters: int
    weights: int
    training: int

    @property
    def total(self) -> int:
        """``weights + training``."""
        return self.weights + self.training


def estimate_memory(
    config: Mapping[str, Any], *, n_members: int = 1, batch_size: int = 0
) -> MemoryEstimate:
    """Estimate the memory of ``n_members`` networks of ``config`` and, with ``batch_size``,
    of training one of them on batches of that many windows.

    Examples
    --------
    >>> config = check_network_config({"n_features": 1, "n_targets": 1, "lookback": 24,
    ...                                "horizon": 6, "hidden_size": 8})
    >>> estimate_memory(config).weights > 4 * parameter_count(config)
    True
    """
    count = parameter_count(config)
    training = 0
    if batch_size:
        c = {**_defaults(), **config}
        training = _TRAINING_BYTES_PER_PARAMETER * count
        training += _FLOAT_BYTES * _activation_floats(c, batch_size)
    weights = (_FLOAT_BYTES * count + _BYTES_PER_NETWORK) * n_members
    return MemoryEstimate(count, weights, training)


def memory_limit(device: Any = "cpu") -> tuple[int, str]:
    """``(bytes, description)`` of the memory a network on ``device`` can use: the CUDA
    device's total memory, else :func:`forecaster._validation.memory_limit` (the smallest of
    physical memory, the room under ``ulimit -v`` and under the cgroup's memory limit).

    Examples
    --------
    >>> memory_limit("cpu")[0] > 0
    True
    """
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        total = int(torch.cuda.get_device_properties(index).total_memory)
        return total, f"the memory of CUDA device {index} ({format_bytes(total)})"
    return machine_memory_limit()


_ALLOCATION_FAILURES = ("can't allocate memory", "defaultcpuallocator", "out of memory")


def out_of_memory(
    exc: BaseException, config: Mapping[str, Any], *, device: Any = "cpu", **sizes: Any
) -> OutOfMemoryError | None:
    """The :class:`OutOfMemoryError` for ``exc`` when it is an allocation failure (a
    ``MemoryError`` or torch's ``RuntimeError`` "can't allocate memory" / DefaultCPUAllocator);
    ``None`` for any other exception. ``sizes`` are further named sizes for the message (e.g.
    ``batch_size=64``).

    Examples
    --------
    >>> error = out_of_memory(MemoryError(), {"hidden_size": 8}, batch_size=4)
    >>> str(error).startswith("Ran out of memory")
    True
    >>> out_of_memory(ValueError("x"), {}) is None
    True
    """
    gpu = type(exc).__name__ == "GPUOutOfMemoryError"
    failed = isinstance(exc, MemoryError | torch.OutOfMemoryError) and not gpu
    if not failed and isinstance(exc, RuntimeError):
        failed = any(text in str(exc).lower() for text in _ALLOCATION_FAILURES)
    if not failed:
        return None
    c = {**_defaults(), **config}
    shown = [f"{k}={c[k]:,}" for k in _NAMED if isinstance(c.get(k), int)]
    shown += [f"{k}={v:,}" for k, v in sizes.items() if isinstance(v, int)]
    _, where = memory_limit(device)
    first = " ".join(str(exc).split())[:200]
    return OutOfMemoryError(
        f"Ran out of memory while building or training the network ({type(exc).__name__}: "
        f"{first}). Memory grows with {', '.join(shown)}; the limit is {where}. Lower the "
        "largest of them, or free memory (other processes, a smaller batch_size)."
    )


_NAMED = ("hidden_size", "num_layers", "lookback", "horizon", "segment_length", "n_features")


def check_memory(
    config: Mapping[str, Any],
    *,
    n_members: int = 1,
    batch_size: int = 0,
    device: Any = "cpu",
    names: Mapping[str, str] | None = None,
) -> MemoryEstimate:
    """Refuse a configuration whose estimated memory (:func:`estimate_memory`) exceeds
    :func:`memory_limit` of ``device``, before anything is allocated.

    Parameters
    ----------
    config : mapping
        Checked :class:`RecurrentNet` arguments.
    n_members : int, default 1
        Networks held at once.
    batch_size : int, default 0
        Windows per training batch; 0 checks the weights only (loading, predicting).
    device : str or torch.device, default "cpu"
    names : mapping, optional
        How the caller calls ``n_members`` and ``batch_size`` (e.g. ``{"n_members":
        "n_ensemble"}``), for the message.

    Raises
    ------
    DataValidationError
        Naming the parameters, the estimate and the limit.
    """
    estimate = estimate_memory(config, n_members=n_members, batch_size=batch_size)
    limit, where = memory_limit(device)
    if estimate.total <= limit:
        return estimate
    names = {"n_members": "n_members", "batch_size": "batch_size", **(names or {})}
    c = {**_defaults(), **config}
    shown = [f"{k}={c[k]:,}" for k in _NAMED if k != "segment_length" or c["head"] == "segment"]
    if n_members > 1:
        shown.append(f"{names['n_members']}={n_members:,}")
    if batch_size:
        shown.append(f"{names['batch_size']}={batch_size:,}")
    parts = f"{format_bytes(estimate.weights)} of weights ({estimate.parameters:,} parameters"
    parts += f" x {n_members:,} networks)" if n_members > 1 else ")"
    if estimate.training:
        parts += f" + {format_bytes(estimate.training)} to train on one batch"
    what = "Training this network" if batch_size else "The network's parameters"
    raise DataValidationError(
        f"{what} would take an estimated {format_bytes(estimate.total)} ({parts}), "
        f"more than {where}. It grows with {', '.join(shown)} ({c['head']!r} head, "
        f"{c['cell']!r} cell). Lower the largest of them."
    )

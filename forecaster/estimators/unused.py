"""Parameters that an estimator's other parameters would leave without effect: refused, never
ignored.

A parameter set away from its default whose effect the other parameters cancel is refused
(:class:`~forecaster.exceptions.DataValidationError`) naming both and the fix. This module holds
the one table of these rules, :func:`unused_parameter`, which
:meth:`~forecaster.estimators.base.RecurrentEstimator.check_used_params` raises from (in
``fit``, and in a pipeline spec's check, before any data is read). ``load`` does not ask, so
a folder saved before a rule existed still loads.

=============================  =================================================================
parameter                      without effect when
=============================  =================================================================
``segment_length`` (not auto)  ``head`` is not ``"segment"``
``patience`` (not default)     there is no validation split (``validation_size=0``,
                               ``validation_fraction=0``): nothing to stop on
``checkpoint_every`` (not 1)   there is no ``checkpoint_dir``
``lr_schedule="plateau"``      ``patience=1``: early stopping ends the run at the first flat
                               epoch, before the halved rate could train
``channel_independent=True``   one target with the ``direct``, ``seq2seq`` or ``recursive``
                               head: there are no channels to separate (the segment head is
                               channel independent anyway)
``static_covariates``          ``id_col=None``: one series, whose static values describe no
                               difference between series
``lr_schedule="cosine"``       ``max_epochs=1``: the rate is lowered after each epoch, so the
                               lowered rate would never train
``lr_schedule="plateau"``      ``max_epochs`` at most its patience + 2: the earliest halving
                               comes after the last epoch
``on_oom="split"``             a device that is the CPU (``"cpu"``, ``torch.device("cpu")``): it
                               acts on a GPU's out-of-memory error only. ``device="auto"`` on a
                               machine without a GPU is not refused, but warned about in ``fit``
                               (:func:`on_oom_without_gpu`): ``auto`` keeps one set of
                               parameters usable on machines with and without one
``baseline="best"``            there is no validation split: no window to choose a blend on
                               (the default ``"auto"`` then forecasts with the network alone)
=============================  =================================================================
"""

from __future__ import annotations

import inspect
from typing import Any

from forecaster._validation import resolve_device
from forecaster.training.schedules import plateau_patience

__all__ = ["on_oom_without_gpu", "unused_parameter"]


def unused_parameter(estimator: Any, validation: str) -> str | None:
    """The message of the first rule of this module's table that ``estimator``'s parameters
    break, or None. ``validation``: the name of its validation-split parameter.

    Examples
    --------
    >>> from forecaster import RNNForecaster
    >>> unused_parameter(RNNForecaster(target="y", head="direct", segment_length=12),
    ...                  "validation_size")[:40]
    "segment_length=12 only applies to head='"
    """
    params = estimator.get_params(deep=False)
    patience = params["patience"]
    default = inspect.signature(type(estimator)).parameters["patience"].default
    head = params.get("head")
    if params.get("segment_length", "auto") != "auto" and head != "segment":
        return (
            f"segment_length={params['segment_length']!r} only applies to head='segment'; "
            f"received head={head!r}, which would ignore it. Leave segment_length='auto', or "
            "use head='segment'."
        )
    if params[validation] == 0 and patience is not None and patience != default:
        return (
            f"patience={patience!r} is set with {validation}=0, so there is no validation loss "
            f"to stop on and early stopping would never run. Pass a {validation} > 0 to stop "
            "early, or patience=None to train max_epochs epochs."
        )
    if params["checkpoint_every"] != 1 and params["checkpoint_dir"] is None:
        return (
            f"checkpoint_every={params['checkpoint_every']!r} is set without checkpoint_dir, so "
            "no checkpoint would be written. Pass checkpoint_dir='checkpoints/run1' (a folder "
            "for this fit), or leave checkpoint_every at 1."
        )
    if params["lr_schedule"] == "plateau" and patience == 1 and params[validation] != 0:
        return (
            "lr_schedule='plateau' halves the learning rate after epochs without improvement, "
            "and patience=1 stops the fit at the first of them, so the halved rate would never "
            "train. Pass patience >= 2 (the schedule then halves one epoch before early "
            "stopping would), or another lr_schedule."
        )
    target = params.get("target")
    single = isinstance(target, str) or (isinstance(target, list | tuple) and len(target) == 1)
    if params.get("channel_independent") is True and single and head != "segment":
        return (
            f"channel_independent=True separates the targets' channels, and {target!r} is one "
            f"target: with head={head!r} the model is the same without it. Leave "
            "channel_independent=None, or forecast several targets."
        )
    if params.get("static_covariates") and "id_col" in params and params["id_col"] is None:
        return (
            f"static_covariates={params['static_covariates']!r} describe how series differ, "
            "and id_col=None is one series: the model would learn nothing from them. Pass "
            "id_col (the column naming each series) for a panel, or leave static_covariates "
            "unset."
        )
    return _baseline_rule(params, validation) or _training_rule(params)


def _baseline_rule(params: dict[str, Any], validation: str) -> str | None:
    """The rule on ``baseline`` (see the module's table)."""
    if params.get("baseline") != "best" or params[validation] != 0:
        return None
    return (
        f"baseline='best' chooses a blend of the network and a naive forecast on the validation "
        f"windows, and {validation}=0 holds out none, so no blend would be chosen and the "
        f"network would forecast alone. Pass a {validation} > 0 to choose the blend, or "
        "baseline='none' (or the default 'auto', which forecasts with the network alone "
        "without validation windows)."
    )


def _training_rule(params: dict[str, Any]) -> str | None:
    """The rules on the training budget and device (see the module's table)."""
    epochs, patience, schedule = params["max_epochs"], params["patience"], params["lr_schedule"]
    if schedule == "cosine" and epochs == 1:
        return (
            "lr_schedule='cosine' lowers the learning rate after each epoch, and max_epochs=1 "
            "ends the fit after the first, so the lowered rate would never train. Pass "
            "max_epochs >= 2, or lr_schedule='onecycle' (it steps after every batch)."
        )
    earliest = plateau_patience(patience) + 2  # the epoch after which it can first halve
    if schedule == "plateau" and epochs <= earliest:
        return (
            f"lr_schedule='plateau' halves the learning rate after {earliest - 1} epochs "
            f"without improvement, so after epoch {earliest} at the earliest, and "
            f"max_epochs={epochs!r} ends the fit by then: the halved rate would never train. "
            f"Pass max_epochs >= {earliest + 1}, or another lr_schedule."
        )
    device = params.get("device")
    if params.get("on_oom") == "split" and device != "auto" and _on_the_cpu(device):
        return (
            f"on_oom='split' retries a batch in halves after a GPU out-of-memory error, and "
            f"device={device!r} trains on the CPU, where it never acts. Leave on_oom='raise', "
            "or train on a GPU: device='cuda' on a machine that has one."
        )
    return None


def on_oom_without_gpu(estimator: Any) -> str | None:
    """The warning of a fit with ``on_oom="split"`` and ``device="auto"`` on a machine
    without a GPU (``auto`` resolves to the CPU), or None. Not refused, unlike an explicit
    ``device="cpu"`` (the module's table): ``auto`` is how one set of parameters trains on
    the GPU of a machine that has one, where ``on_oom`` acts, and on the CPU of one that has
    none, so only this machine's fit goes without it."""
    params = estimator.get_params(deep=False)
    if params.get("on_oom") != "split" or params.get("device") != "auto":
        return None
    if not _on_the_cpu("auto"):
        return None
    return (
        "on_oom='split' retries a batch in halves after a GPU out-of-memory error, and "
        "device='auto' trains on the CPU on this machine (it has no CUDA GPU), so it has no "
        "effect on this fit. It acts where device='auto' finds a GPU; leave on_oom='raise' "
        "(the default) for fits that only run on the CPU."
    )


def _on_the_cpu(device: Any) -> bool:
    """Whether ``device`` (a ``device`` parameter: ``"auto"`` as this machine resolves it)
    is the CPU."""
    return bool(resolve_device(device).type == "cpu")

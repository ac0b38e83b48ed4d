"""Weight averaging (``ema_decay``): the weights that validation, early stopping and the trained
network use.

Without a decay they are the network's own weights after the last step. With one they are an
exponential moving average of them (Polyak averaging), kept by torch's
:class:`~torch.optim.swa_utils.AveragedModel` and updated after every optimiser step, which
smooths the noise of the last batches out of the weights at no extra training cost (an ensemble
of nearby weights in one network).

The decay of update ``n`` is ``min(decay, (1 + n) / (10 + n))`` (the warm-up of TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``): the average spans about the last tenth of
the steps so far, at most about ``1 / (1 - decay)`` steps. Without the warm-up a fit of few
steps (a short series: one batch per epoch) would keep weights from early in training: with
``decay=0.99`` and 100 steps in all, M4 series H201 forecast 12.6x the seasonal naive's error
instead of 1.4x.

``ema_decay="auto"`` (:func:`resolve_ema_decay`) averages with 0.99 when an epoch has at least
25 optimiser steps, so that the average (about the last 100 steps) spans at most four epochs,
and not otherwise. Measured (``benchmarks/results/accuracy_variants.md``): with 0.99 the long
fits score better or equal (M4 Hourly OWA 0.435 against 0.455 over three seeds, 128 steps per
epoch; every multivariate ETTh1 / ETTm1 horizon, 29-128 steps per epoch) except ETTh1 with
covariates (1.3 % higher MSE over five seeds, though its validation loss prefers the average),
while short series (one to twenty steps per epoch) move both ways by 1-3 %.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from forecaster.exceptions import CheckpointError, DataValidationError

__all__ = ["AUTO_EMA_DECAY", "AUTO_EMA_MIN_STEPS", "WeightAverage", "resolve_ema_decay"]

AUTO_EMA_DECAY = 0.99
"""The decay ``ema_decay="auto"`` averages with, on fits of many steps per epoch."""

AUTO_EMA_MIN_STEPS = 25
"""The optimiser steps per epoch from which ``ema_decay="auto"`` averages: its average spans
about ``1 / (1 - 0.99) = 100`` steps, at most four epochs from there on."""


def resolve_ema_decay(ema_decay: float | str | None, steps_per_epoch: int) -> float | None:
    """The decay a fit averages with: ``ema_decay`` itself, or for ``"auto"``
    :data:`AUTO_EMA_DECAY` when an epoch has at least :data:`AUTO_EMA_MIN_STEPS` optimiser
    steps and None (no averaging) when it has fewer.

    Raises
    ------
    DataValidationError
        For ``"auto"`` without the number of steps (``steps_per_epoch`` 0).

    Examples
    --------
    >>> resolve_ema_decay("auto", 128), resolve_ema_decay("auto", 3), resolve_ema_decay(0.9, 3)
    (0.99, None, 0.9)
    """
    if not (isinstance(ema_decay, str) and ema_decay == "auto"):
        return None if ema_decay is None else float(ema_decay)
    if steps_per_epoch <= 0:
        raise DataValidationError(
            "ema_decay='auto' chooses from the optimiser steps per epoch, got "
            f"steps_per_epoch={steps_per_epoch}. Pass steps_per_epoch (batches per epoch) or a "
            "decay, e.g. ema_decay=0.99, or None."
        )
    return AUTO_EMA_DECAY if steps_per_epoch >= AUTO_EMA_MIN_STEPS else None


class WeightAverage:
    """The network's weights, or their exponential moving average with ``decay``.

    Parameters
    ----------
    network : torch.nn.Module
        The network being trained.
    decay : float or None
        EMA decay in ``[0, 1)`` (``None``: no averaging, :attr:`model` is ``network``).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(1, 1, bias=False)
    >>> weights = WeightAverage(net, decay=0.1)
    >>> for value in (1.0, 3.0):
    ...     _ = net.weight.data.fill_(value)
    ...     weights.update()
    >>> round(weights.model.weight.item(), 4)  # the first update copies; 0.1 * 1 + 0.9 * 3
    2.8
    >>> [round(WeightAverage(net, decay=0.99).current_decay(), 3)]  # warm-up: (1 + 0) / 10
    [0.1]
    >>> WeightAverage(net, decay=None).model is net
    True
    """

    def __init__(self, network: nn.Module, decay: float | None) -> None:
        # updates mirrors AveragedModel.n_averaged on the host: reading the tensor every step
        # would wait for the GPU
        self.network, self.decay, self.updates = network, decay, 0
        self.averaged = (
            None
            if decay is None
            else AveragedModel(network, multi_avg_fn=self._average, use_buffers=False)
        )
        if self.averaged is not None:
            # The average is a deep copy: on CUDA its recurrent weights are no longer one
            # cuDNN buffer, and every forward would copy them into one (with a warning).
            for module in self.averaged.module.modules():
                if isinstance(module, nn.RNNBase):
                    module.flatten_parameters()

    def current_decay(self) -> float:
        """The decay of the next update: ``decay``, less while few steps were averaged."""
        assert self.decay is not None  # only called with averaging on
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    def _average(
        self,
        averaged: tuple[Tensor, ...] | list[Tensor],
        current: tuple[Tensor, ...] | list[Tensor],
        n_averaged: Tensor | int,
    ) -> None:
        get_ema_multi_avg_fn(self.current_decay())(averaged, current, n_averaged)

    @property
    def model(self) -> nn.Module:
        """The module to validate and keep: the average, or the network itself."""
        return self.network if self.averaged is None else self.averaged.module

    def update(self) -> None:
        """Fold the network's current weights into the average (after an optimiser step; the
        first call copies them)."""
        if self.averaged is not None:
            self.averaged.update_parameters(self.network)
            self.updates += 1

    def state_dict(self) -> dict[str, Tensor] | None:
        """The average's state for a checkpoint (None without averaging)."""
        return None if self.averaged is None else self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Tensor] | None) -> None:
        """Restore a checkpoint's average; a checkpoint written with another ``ema_decay``
        setting (averaging on in one, off in the other) raises :class:`CheckpointError`."""
        if (state is None) != (self.averaged is None):
            raise CheckpointError(
                "The checkpoint was written with "
                + ("ema_decay=None" if state is None else "an ema_decay")
                + ", this run has "
                + ("ema_decay=None" if self.averaged is None else "an ema_decay")
                + ": resume with the parameters of the interrupted run."
            )
        if self.averaged is not None and state is not None:
            try:
                self.averaged.load_state_dict(state)
                self.updates = int(self.averaged.n_averaged)
            except (RuntimeError, KeyError) as exc:
                raise CheckpointError(
                    f"The checkpoint's averaged weights do not fit this network ({exc}). "
                    "Resume with the parameters of the interrupted run."
                ) from exc

    def copy_to_network(self) -> None:
        """Put the averaged weights into the network (when no best epoch was kept)."""
        if self.averaged is not None:
            self.network.load_state_dict(self.averaged.module.state_dict())

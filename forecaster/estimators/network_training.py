"""Training the networks of an estimator's fit: its checkpoint folder, each network built and
trained under the fit lock, and the members of an ensemble within the time budget (the
:class:`NetworkTraining` of :class:`~forecaster.estimators.base.RecurrentEstimator`).

Member ``k`` of ``n_ensemble`` is initialised, dropped out and batched from ``seed + k``;
``max_time`` bounds all of them together, and running out of memory raises the error that
names the parameters to lower.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from forecaster.estimators.fitting import member_ended, warn_short_ensemble
from forecaster.nn.checks import out_of_memory
from forecaster.nn.ensemble import EnsembleNet
from forecaster.nn.recurrent import RecurrentNet
from forecaster.nn.statics import decodes_from_statics
from forecaster.training import (
    CheckpointDirectory,
    EpochRecord,
    TrainingHistory,
    distributed,
    evaluate,
    resolve_ema_decay,
    seeded_generators,
    train,
)

__all__ = ["FIT_LOCK", "RESUME_FREE_PARAMS", "NetworkTraining"]

FIT_LOCK = threading.RLock()
"""Held while a network is initialised and trained: torch draws the initial weights and the
dropout masks from its one process-wide generator, which ``fit`` seeds with ``random_state``,
so two fits in threads of one process at the same time would take each other's random
numbers (and a fit without a seed would reset the generator of a seeded one). Fits in
threads therefore train one at a time; processes (e.g. scikit-learn's default ``loky``
backend) train in parallel."""


RESUME_FREE_PARAMS = (
    "checkpoint_dir",
    "checkpoint_every",
    "on_oom",
    "device",
    "max_time",
    "progress",
)
"""Parameters that may differ between an interrupted fit and its resume (they do not change
what is trained; ``max_time`` counts the seconds before the interruption too)."""


class NetworkTraining:
    """The training of an estimator's networks (a mixin of
    :class:`~forecaster.estimators.base.RecurrentEstimator`, which holds the parameters and
    gives the network's arguments)."""

    # what RecurrentEstimator holds (parameters) and gives
    checkpoint_dir: Any
    checkpoint_every: int
    n_ensemble: int
    max_time: float | None
    max_epochs: int
    ema_decay: Any
    loss: str
    lr: float
    weight_decay: float
    patience: int | None
    grad_clip: float | None
    lr_schedule: str
    progress: bool | None
    on_oom: str
    batch_size: int
    get_params: Callable[..., dict[str, Any]]
    _network_config: Callable[[dict[str, Any]], dict[str, Any]]
    _checkpoints: CheckpointDirectory | None

    def _start_checkpoints(self, resume: bool, seed: int, data_digest: str) -> int:
        """Open ``checkpoint_dir`` for this fit (a no-op without one); returns the seed to
        train with: the interrupted fit's when resuming, so that ``random_state=None`` resumes
        with the same batches. The fingerprint (parameters that change the result, a digest of
        the data, the number of processes) makes a resume on other data or parameters fail."""
        if self.checkpoint_dir is None:
            return seed
        params = self.get_params(deep=False)
        fingerprint = {
            "estimator": type(self).__name__,
            "params": {k: v for k, v in params.items() if k not in RESUME_FREE_PARAMS},
            "data": data_digest,
            "world_size": distributed.world_size(),
        }
        if decodes_from_statics(params.get("head"), bool(params.get("static_covariates"))):
            # the network's decoder starts from the statics' state since this was added: a
            # checkpoint written before it (no entry) was trained without, and is refused
            fingerprint["static_at_horizon"] = True
        if params.get("head") == "recursive" and (
            params.get("future_covariates") or params.get("calendar")
        ):  # likewise: each step reads the future covariates of the step it forecasts since
            fingerprint["future_at_step"] = True  # this was added (before: of the step before)
        self._checkpoints = CheckpointDirectory(
            self.checkpoint_dir,
            every=int(self.checkpoint_every),
            fingerprint=fingerprint,
            resume=resume,
        )
        return self._checkpoints.start(seed)

    def _build_and_train(
        self,
        *,
        shape: dict[str, Any],
        sources: Any,
        steps_per_epoch: int,
        device: torch.device,
        seed: int,
        callbacks: Sequence[Any],
    ) -> tuple[RecurrentNet | EnsembleNet, list[dict[str, Any]]]:
        """Train ``n_ensemble`` networks; member ``k`` uses seed ``seed + k`` for its
        initialisation, dropout and batches (``sources(seed + k, k)`` returns its
        ``(train_source, val_source)``). Returns the network and the ``history_`` rows. Epoch
        numbers run on across members, so callbacks and ``history_`` see one increasing
        sequence (with several members, each row also names its ``member``).

        ``shape`` holds the network arguments that come from the data (``n_features``,
        ``n_targets``, ``n_future``, ``lookback``, ``horizon``, ``channel_independent``); the
        others are the estimator's parameters."""
        members: list[RecurrentNet] = []
        history: list[dict[str, Any]] = []
        started, checkpoints = time.perf_counter(), getattr(self, "_checkpoints", None)
        ema_decay = resolve_ema_decay(self.ema_decay, steps_per_epoch)  # "auto" chosen once
        self.stopped_by_ = None
        for k in range(int(self.n_ensemble)):
            offset = len(history)

            def renumbered(record: EpochRecord, network: Any, _offset: int = offset) -> None:
                shifted = dataclasses.replace(record, epoch=record.epoch + _offset)
                for callback in callbacks:
                    callback(shifted, network)

            budget = None
            if self.max_time is not None:
                # this process's seconds, and those the resumed runs' checkpoints recorded
                spent = time.perf_counter() - started
                spent += checkpoints.resumed_seconds if checkpoints else 0.0
                budget = max(float(self.max_time) - spent, 0.0)
                if k and budget <= 0:
                    warn_short_ensemble(k, int(self.n_ensemble), float(self.max_time))
                    self.stopped_by_ = "max_time"
                    break  # the time budget ran out: the ensemble has fewer members
            train_source, val_source = sources(seed + k, k)
            network, records = self._train_one(
                shape=shape,
                train_source=train_source,
                val_source=val_source,
                steps_per_epoch=steps_per_epoch,
                ema_decay=ema_decay,
                device=device,
                seed=seed + k,
                callbacks=[renumbered] if callbacks else [],
                max_time=budget,
            )
            members.append(network)
            member = {"member": k} if self.n_ensemble > 1 else {}
            history += [{**r.as_dict(), "epoch": r.epoch + offset, **member} for r in records]
            self.stopped_by_ = records.stopped_by
            if member_ended(
                records.stopped_by,
                member=k,
                n_epochs=len(records),
                n_ensemble=int(self.n_ensemble),
                max_epochs=int(self.max_epochs),
                max_time=self.max_time,
            ):
                break  # the time budget ran out, or a callback asked to stop the fit
        self.ema_decay_ = ema_decay
        losses = [r["val_loss"] for r in history if r.get("val_loss") is not None]
        if len(members) == 1:
            self.val_loss_ = min(losses, default=None)
            return members[0], history
        ensemble = EnsembleNet(members).eval()  # scored as it forecasts: the members averaged
        self.val_loss_ = (  # over every rank's windows, in float32 as the epochs' losses
            None
            if not losses
            else evaluate(ensemble, val_source, self.loss, device, amp=False, across_ranks=True)
        )
        return ensemble, history

    val_loss_: float | None
    """The fitted model's validation loss (set by ``fit``, saved with it): its best epoch's for
    one network, the averaged members' forecasts' for an ensemble (not its best member's, which
    ``history_`` shows); None without validation windows, or when loaded from an older save.
    ``tune`` minimises it."""

    stopped_by_: str | None
    """What ended training (set by ``fit``; not saved, so None on a loaded model):
    ``"max_epochs"``, ``"early_stopping"`` (``patience``), ``"callback"`` (a callback raised
    :class:`~forecaster.training.StopTraining`, which ends an ensemble fit there) or
    ``"max_time"`` (the budget cut a network's epochs or the ensemble's members; ``fit``
    warns). For an ensemble, what ended its last member or the ensemble; None also after a
    resume from a checkpoint written before it was recorded."""

    @property
    def n_members_(self) -> int:
        """Number of networks actually trained: ``n_ensemble``, or fewer when ``max_time`` ran
        out first or a callback raised ``StopTraining`` (``fit`` then warns)."""
        network = self.__dict__.get("network_")
        if network is None:
            raise AttributeError("n_members_ is set by fit")
        return len(network.members) if isinstance(network, EnsembleNet) else 1

    def _train_one(
        self,
        *,
        shape: dict[str, Any],
        train_source: Any,
        val_source: Any,
        steps_per_epoch: int,
        ema_decay: float | None,
        device: torch.device,
        seed: int,
        callbacks: Sequence[Any],
        max_time: float | None,
    ) -> tuple[RecurrentNet, TrainingHistory]:
        """Build one network and train it while :data:`FIT_LOCK` is held, torch's generators
        of the CPU and ``device`` seeded with ``seed`` (and restored after), with its
        checkpoints when ``checkpoint_dir`` is set; running out of memory raises the error
        that names the parameters to lower."""
        checkpoints = getattr(self, "_checkpoints", None)
        checkpoint, resume_from = checkpoints.next_run(seed) if checkpoints else (None, None)
        try:
            with FIT_LOCK, seeded_generators(seed, device):  # the CPU's and the device's only
                network = RecurrentNet(**self._network_config(shape)).to(device)
                history = train(
                    network,
                    train_source,
                    val_source=val_source,
                    loss=self.loss,
                    lr=self.lr,
                    weight_decay=self.weight_decay,
                    max_epochs=self.max_epochs,
                    patience=self.patience if val_source is not None else None,
                    grad_clip=self.grad_clip,
                    lr_schedule=self.lr_schedule,
                    ema_decay=ema_decay,
                    steps_per_epoch=steps_per_epoch,
                    device=device,
                    max_time=max_time,
                    callbacks=callbacks,
                    progress=self.progress if distributed.is_main_process() else False,
                    description=type(self).__name__,
                    checkpoint=checkpoint,
                    resume_from=resume_from,
                    on_oom=self.on_oom,
                )
        except (RuntimeError, MemoryError) as exc:
            error = out_of_memory(
                exc,
                self._network_config(shape),
                device=device,
                batch_size=int(self.batch_size),
                n_ensemble=int(self.n_ensemble),
            )
            if error is None:
                raise
            raise error from exc
        return network.cpu().eval(), history

"""scikit-learn estimators around the recurrent network and the training loop.

- :class:`RNNForecaster` (and :class:`LSTMForecaster`, :class:`GRUForecaster`,
  :class:`SimpleRNNForecaster`): Polars frame in, forecast frame out. It builds the
  :class:`~forecaster.data.core.Panel` and window index, owns the per-series scaler and trains one
  global network over all series.
- :class:`RNNRegressor`: already-windowed arrays in and out, with the full scikit-learn estimator
  contract (tested with ``sklearn.utils.estimator_checks``).
- :class:`TemporalSplit`: a cross-validation splitter over time cutoffs of a long frame, for
  ``GridSearchCV(RNNForecaster(...), cv=TemporalSplit(...))``.

Parameters are plain values, stored by ``__init__`` and validated in ``fit`` (and by the public
``validate_params()``) through the one table of rules in :mod:`forecaster._validation`, then
their relations and the memory the network would need, before anything is allocated. Frames
are read through :mod:`forecaster.data.core` (:func:`~forecaster.data.core.check_schema`,
:func:`~forecaster.data.core.collect_frame`), so a lazy source that disappeared or a non-polars
object is a :class:`~forecaster.exceptions.DataValidationError`. Fitted state lives in
attributes ending in ``_``; the fitted network is moved to the CPU at the end of ``fit``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
import numbers
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import validate_data

from forecaster._columns import temporary_names
from forecaster._validation import (
    PARAMETERS,
    check,
    check_callbacks,
    check_params,
    describe_value,
)
from forecaster.data.core import (
    SERIES_ID,
    Frequency,
    Panel,
    _as_tuple,
    calendar_features,
    calendar_values,
    check_roles,
    check_schema,
    check_unique_keys,
    check_values,
    collect_frame,
    frame_schema,
    future_times,
    to_time_point,
    validate_frame,
)
from forecaster.data.scaling import (
    PanelScaler,
    check_target_domain,
    fit_boxcox_lambdas,
    inverse_targets,
    transform_targets,
)
from forecaster.data.windows import Windows, make_windows
from forecaster.exceptions import DataValidationError, ForecasterWarning, NotFittedError
from forecaster.nn.core import (
    EnsembleNet,
    RecurrentNet,
    check_memory,
    check_network_config,
    out_of_memory,
)
from forecaster.training import distributed as distributed
from forecaster.training.loop import (
    CheckpointDirectory,
    EpochRecord,
    digest_arrays,
    predict_batched,
    resolve_device,
    train,
)

__all__ = [
    "GRUForecaster",
    "LSTMForecaster",
    "RNNForecaster",
    "RNNRegressor",
    "SimpleRNNForecaster",
    "TemporalSplit",
]

PREDICT_BATCH = 4096
"""Windows per network call in ``predict`` (and the smallest chunk of a backtest)."""

_FIT_LOCK = threading.RLock()
"""Held while a network is initialised and trained: torch draws the initial weights and the
dropout masks from its one process-wide generator, which ``fit`` seeds with ``random_state``,
so two fits in threads of one process at the same time would take each other's random
numbers (and a fit without a seed would reset the generator of a seeded one). Fits in
threads therefore train one at a time; processes (e.g. scikit-learn's default ``loky``
backend) train in parallel."""


# ------------------------------------------------------------------------------------------
# parameter checks (run in fit, never in __init__)
# ------------------------------------------------------------------------------------------

_ENSEMBLE_NAMES = {"n_members": "n_ensemble"}


class _RecurrentEstimator(BaseEstimator):
    """Shared parameter checks, network construction and training for both estimators."""

    def validate_params(self) -> None:
        """Check every parameter without data (``fit`` calls it first).

        Each parameter goes through its rule in the one parameter table
        (:data:`forecaster._validation.PARAMETERS`: types, ranges, choices), then the
        relations between them are checked, then the memory that the network's weights would
        take (against the memory limit: physical memory, ``ulimit -v``, the cgroup), before
        anything is allocated.

        Raises
        ------
        DataValidationError
            Starting with the parameter's name (or naming the parameters involved): what it
            must be, the value received and how to fix it.

        Examples
        --------
        >>> RNNForecaster(target="y", horizon=0).validate_params()
        Traceback (most recent call last):
        ...
        forecaster.exceptions.DataValidationError: horizon must be an integer >= 1, got 0.
        >>> RNNForecaster(target="y", max_epochs="two").validate_params()
        Traceback (most recent call last):
        ...
        forecaster.exceptions.DataValidationError: max_epochs must be an integer >= 1, got \
'two' (a string). Pass an int, e.g. max_epochs=1.
        """
        params = {name: getattr(self, name) for name in self._get_param_names()}
        params["cell"] = self.cell  # fixed, not a parameter, in LSTMForecaster & co.
        unchecked = sorted(set(params) - set(PARAMETERS))
        if unchecked:  # a new parameter needs its row in the table
            raise TypeError(f"Parameters without a rule in forecaster._validation: {unchecked}")
        self._check_columns()
        check_params(params)
        self._check_relations()
        check_network_config(
            self._network_shape(),
            n_members=int(self.n_ensemble),
            names=_ENSEMBLE_NAMES,
        )

    _PREDICTION_PARAMS: tuple[str, ...] = ()
    """Parameters that shape what ``predict``, ``score``, ``backtest`` and ``save`` do with a
    fitted model (columns, window sizes, frequency, transforms): changed since fit, those
    refuse (see :meth:`_check_fitted`)."""

    def _check_fitted(self, action: str) -> None:
        """Refuse to ``action`` (``"predict with"``, ``"score with"``, ``"backtest"``,
        ``"save"``) an estimator that is not fitted, or whose parameters that shape
        predictions were changed (``set_params``) since its fit.

        Parameters set after ``fit`` take effect at the next ``fit`` (scikit-learn's
        convention): the fitted model is what it was fitted as. For the parameters of
        ``_PREDICTION_PARAMS`` (e.g. ``target``, ``lookback``, ``horizon``) using the fitted
        state while the estimator says otherwise would be silently wrong, so they refuse,
        naming each change; the others (training and network settings) leave the fitted
        model as it is, and :func:`forecaster.save` writes the values it was fitted with.
        """
        name = type(self).__name__
        if not hasattr(self, "network_"):
            how = "fit(frame)" if isinstance(self, RNNForecaster) else "fit(X, y)"
            raise NotFittedError(f"This {name} is not fitted yet. Call {how} first.")
        fitted = self.__dict__.get("fitted_params_")
        if fitted is None:  # fitted by an older version: nothing to compare with
            return
        current = self.get_params(deep=False)
        changed = [
            k
            for k in self._PREDICTION_PARAMS
            if k in fitted and not _same_param(current.get(k), fitted[k])
        ]
        if not changed:
            return
        listed = ", ".join(f"{k} (fitted with {fitted[k]!r}, now {current[k]!r})" for k in changed)
        back = ", ".join(f"{k}={fitted[k]!r}" for k in changed)
        raise DataValidationError(
            f"Cannot {action} this {name}: {listed} changed since fit. Parameters set "
            "after fit take effect at the next fit, and the fitted network was trained for "
            f"the old values. Call fit again to use them, or set them back with "
            f"set_params({back})."
        )

    def _fitted_params(self) -> dict[str, Any]:
        """The parameters the fitted model was trained with, run settings (device, progress,
        checkpoint folder, ...) as they are now: what :func:`forecaster.save` writes."""
        current = self.get_params(deep=False)
        fitted = self.__dict__.get("fitted_params_")
        if fitted is None:
            return current
        run = {k: current[k] for k in _RESUME_FREE_PARAMS if k in current}
        return {**copy.deepcopy(fitted), **run}

    @contextlib.contextmanager
    def _fitting(self) -> Iterator[dict[str, Any]]:
        """Make a fit all or nothing: when it fails or is interrupted (an error, a callback
        raising ``KeyboardInterrupt``), the fitted attributes are put back as they were
        before it (the earlier model, or none), never a mix of two fits. Yields a copy of
        the parameters the fit starts with, which the fit records as ``fitted_params_``
        with its other fitted attributes (before tracking logs the model)."""
        before = {k: v for k, v in vars(self).items() if _is_fitted_attribute(k)}
        try:
            yield copy.deepcopy(self.get_params(deep=False))
        except BaseException:
            for key in [k for k in vars(self) if _is_fitted_attribute(k)]:
                delattr(self, key)
            for key, value in before.items():
                setattr(self, key, value)
            raise

    def _check_columns(self) -> None:
        """The column parameters and their roles (frame estimators)."""

    def _check_relations(self) -> None:
        """Checks of one estimator that need several parameters (subclasses)."""

    def _network_shape(self) -> dict[str, Any]:
        """The network arguments, with the smallest data-dependent sizes the parameters allow
        (the real ones are known in ``fit``)."""
        raise NotImplementedError

    def _network_args(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "head": self.head,
            "nonlinearity": self.nonlinearity,
            "segment_length": self.segment_length,
            "normalization": self.normalization,
        }

    def _device(self) -> torch.device:
        """The device to fit or predict on; an unusable one raises DataValidationError."""
        device = resolve_device(self.device)
        if device.type == "cuda" and device.index is not None:
            count = torch.cuda.device_count()
            if device.index >= count:
                raise DataValidationError(
                    f"device={self.device!r}, but this machine has {count} CUDA device(s)"
                    + (f" (cuda:0 to cuda:{count - 1})" if count else "")
                    + ". Pass device='cuda' or 'auto' for the first one, or 'cpu'."
                )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise DataValidationError(
                f"device={self.device!r}, but Apple's MPS backend is not available here. "
                "Pass device='auto' or 'cpu'."
            )
        if device.type not in ("cpu", "cuda", "mps"):
            raise DataValidationError(
                f"device={self.device!r} is not supported. Pass 'auto', 'cpu', 'cuda', "
                "'cuda:N' or 'mps'."
            )
        return device

    def _check_training_memory(
        self, shape: dict[str, Any], n_windows: int, device: torch.device
    ) -> None:
        """Refuse a fit whose network and training batch (``batch_size`` windows, at most
        ``n_windows``) would not fit in ``device``'s memory, before building anything."""
        config = check_network_config({**shape, **self._network_args()})
        batch = max(1, min(int(self.batch_size), int(n_windows)))
        check_memory(
            config,
            n_members=int(self.n_ensemble),
            batch_size=batch,
            device=device,
            names=_ENSEMBLE_NAMES,
        )

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31))
        return int(self.random_state)

    def _begin_fit(self, resume: Any) -> None:
        """Check ``fit(..., resume=...)`` before any work."""
        self._checkpoints: CheckpointDirectory | None = None
        if not isinstance(resume, bool):
            raise DataValidationError(f"resume must be True or False, got {resume!r}.")
        if resume and self.checkpoint_dir is None:
            raise DataValidationError(
                "resume=True needs checkpoint_dir, the folder the interrupted fit wrote its "
                f"checkpoints to, e.g. {type(self).__name__}(..., checkpoint_dir='checkpoints/"
                "run1'). Fit without resume=True to start from scratch."
            )

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
            "params": {k: v for k, v in params.items() if k not in _RESUME_FREE_PARAMS},
            "data": data_digest,
            "world_size": distributed.world_size(),
        }
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
        initialisation, dropout and batches (``sources(member_seed)`` returns its
        ``(train_source, val_source)``). Returns the network and the ``history_`` rows. Epoch
        numbers run on across members, so callbacks and ``history_`` see one increasing
        sequence (with several members, each row also names its ``member``).

        ``shape`` holds the network arguments that come from the data (``n_features``,
        ``n_targets``, ``n_future``, ``lookback``, ``horizon``, ``channel_independent``); the
        others are the estimator's parameters."""
        members, history = [], []
        started = time.perf_counter()
        for k in range(int(self.n_ensemble)):
            offset = len(history)

            def renumbered(record: EpochRecord, network: Any, _offset: int = offset) -> None:
                shifted = dataclasses.replace(record, epoch=record.epoch + _offset)
                for callback in callbacks:
                    callback(shifted, network)

            budget = None
            if self.max_time is not None:
                budget = max(float(self.max_time) - (time.perf_counter() - started), 0.0)
                if k and budget <= 0:
                    _warn_short_ensemble(k, int(self.n_ensemble), float(self.max_time))
                    break  # the time budget ran out: the ensemble has fewer members
            train_source, val_source = sources(seed + k)
            network, records = self._train_one(
                shape=shape,
                train_source=train_source,
                val_source=val_source,
                steps_per_epoch=steps_per_epoch,
                device=device,
                seed=seed + k,
                callbacks=[renumbered] if callbacks else [],
                max_time=budget,
            )
            members.append(network)
            member = {"member": k} if self.n_ensemble > 1 else {}
            history += [{**r.as_dict(), "epoch": r.epoch + offset, **member} for r in records]
        if len(members) == 1:
            return members[0], history
        return EnsembleNet(members).eval(), history

    @property
    def n_members_(self) -> int:
        """Number of networks actually trained: ``n_ensemble``, or fewer when ``max_time`` ran
        out first (``fit`` then warns)."""
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
        device: torch.device,
        seed: int,
        callbacks: Sequence[Any],
        max_time: float | None,
    ) -> tuple[RecurrentNet, list[EpochRecord]]:
        checkpoints = getattr(self, "_checkpoints", None)
        checkpoint, resume_from = checkpoints.next_run(seed) if checkpoints else (None, None)
        try:
            return self._train_network(
                shape=shape,
                train_source=train_source,
                val_source=val_source,
                steps_per_epoch=steps_per_epoch,
                device=device,
                seed=seed,
                callbacks=callbacks,
                max_time=max_time,
                checkpoint=checkpoint,
                resume_from=resume_from,
            )
        except (RuntimeError, MemoryError) as exc:
            error = out_of_memory(
                exc,
                {**shape, **self._network_args()},
                device=device,
                batch_size=int(self.batch_size),
                n_ensemble=int(self.n_ensemble),
            )
            if error is None:
                raise
            raise error from exc

    def _train_network(
        self,
        *,
        shape: dict[str, Any],
        train_source: Any,
        val_source: Any,
        steps_per_epoch: int,
        device: torch.device,
        seed: int,
        callbacks: Sequence[Any],
        max_time: float | None,
        checkpoint: Any,
        resume_from: Any,
    ) -> tuple[RecurrentNet, list[EpochRecord]]:
        devices = [device.index or 0] if device.type == "cuda" else []
        with _FIT_LOCK, torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            network = RecurrentNet(
                **shape,
                cell=self.cell,
                hidden_size=self.hidden_size,
                num_layers=self.num_layers,
                dropout=self.dropout,
                head=self.head,
                nonlinearity=self.nonlinearity,
                segment_length=self.segment_length,
                normalization=self.normalization,
            ).to(device)
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
        return network.cpu().eval(), history

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted estimator to the directory ``path`` (see :func:`forecaster.save`)."""
        from forecaster.persistence.core import save

        return save(self, path)

    def _network_on(self, device: torch.device) -> RecurrentNet | EnsembleNet:
        """The fitted network on ``device`` for inference (a copy off the CPU; ``network_``
        itself always stays on the CPU)."""
        if device.type == "cpu":
            return self.network_.eval()
        return copy.deepcopy(self.network_).to(device).eval()


# ------------------------------------------------------------------------------------------
# RNNForecaster
# ------------------------------------------------------------------------------------------


class RNNForecaster(_RecurrentEstimator):
    """Global recurrent forecaster for one or many series in a long Polars frame.

    One network is trained on the windows of every series (a *global* model). Each series and
    column is scaled with statistics of its own training span; by default each input window is
    also normalised by its last value (``normalization="last"``). The default network is a
    segment-wise GRU (SegRNN), which is accurate and the fastest of the heads.

    Parameters
    ----------
    target : str or list of str
        Column(s) to forecast (several for a multivariate target, e.g. 13 MFCCs).
    time_col : str, default "time"
        Datetime, date or integer time column.
    id_col : str or None, default None
        Series identifier; ``None`` for a frame that holds one series.
    covariates : str or list of str, optional
        Past-observed covariates (inputs known up to the forecast origin only).
    future_covariates : str or list of str, optional
        Future-known covariates (e.g. calendar features); :meth:`predict` then needs their values
        over the horizon in ``future``.
    lookback : int, default 96
        Input window length.
    horizon : int, default 24
        Number of steps forecast at once.
    cell : {"gru", "lstm", "rnn"}, default "gru"
    head : {"segment", "direct", "seq2seq", "recursive"}, default "segment"
        See :class:`~forecaster.nn.core.RecurrentNet`.
    hidden_size : int, default 128
    num_layers : int, default 1
    dropout : float, default 0.1
    segment_length : int, default 24
        Segment length of the ``"segment"`` head.
    normalization : {"last", "revin", "none"}, default "last"
        Per-window normalisation inside the network.
    channel_independent : bool or None, default None
        Model each target column as its own series with shared weights (covariates are fed
        beside every channel). ``None`` means the head's natural choice: True for
        ``"segment"`` (always channel independent), False for the other heads.
    nonlinearity : {"tanh", "relu"}, default "tanh"
        For ``cell="rnn"`` only.
    scaling : {"standard", "robust", "minmax", "none"}, default "standard"
        Per-series scaling fitted on the training span.
    target_transform : {"none", "log", "log1p", "boxcox"}, default "none"
        Transform of the targets before scaling, inverted on the forecasts: ``log`` and
        ``boxcox`` need targets > 0, ``log1p`` targets > -1. Box-Cox fits one lambda per
        series and target on the training span (series unseen in ``fit`` get theirs from their
        own history). Forecasts of a log-scale model are median-type forecasts.
    calendar : None, "auto", str or list of str, default None
        Calendar features added as future-known covariates (sine/cosine of the position in
        each cycle, see :data:`forecaster.data.core.CALENDAR_FEATURES`): ``"hour"``,
        ``"dayofweek"``, ``"dayofmonth"``, ``"dayofyear"``, ``"month"``, ``"minute"``.
        ``"auto"`` picks them from the frequency. They are computed from the time column
        (Date, or Datetime with or without a time zone: the local clock), so :meth:`predict`
        needs no ``future`` frame for them. A feature whose cycle is not longer than one step
        (``"hour"`` on daily data, ``"dayofweek"`` on weekly data) is refused, and so is
        any calendar on an integer time column (see
        :func:`forecaster.data.core.calendar_features`).
    loss : {"mae", "mse", "huber"}, default "mae"
    lr : float, default 1e-3
    weight_decay : float, default 0.0
    batch_size : int, default 256
    max_epochs : int, default 50
    patience : int or None, default 8
        Early stopping patience on the validation loss (best weights restored).
    grad_clip : float or None, default 1.0
        Gradient-norm clipping.
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}, default "none"
    validation_size : int or float, default 0.1
        The last part of every series held out for early stopping: a number of steps (int) or a
        fraction of each series' length (float, at least ``horizon`` steps). 0 disables
        validation (``max_epochs`` epochs are run).
    stride : int, default 1
        Step between training windows of a series.
    windows_per_epoch : int or None, default 32768
        Training windows sampled (without replacement) per epoch; all windows when None or
        when there are fewer. Overlapping stride-1 windows are highly redundant, so a bounded
        epoch (about 3 s on 2 CPU cores with the default network) gives frequent validation
        and early stopping, and a fit time that does not grow with the panel. It also caps
        the validation windows: a larger validation split is scored on a fixed random sample
        of this many windows (the same every epoch).
    n_ensemble : int, default 1
        Number of networks trained with seeds ``random_state + k`` (initialisation, batch
        order and dropout) whose forecasts are averaged. ``max_time`` bounds all of them
        together: when it runs out first, the members trained so far (at least one) form the
        ensemble, with a :class:`~forecaster.exceptions.ForecasterWarning`, and
        ``n_members_`` says how many.
    freq : str, default "auto"
        Sampling frequency (see :class:`~forecaster.data.core.Frequency`).
    missing : {"error", "ffill", "zero", "interpolate"}, default "error"
        Policy for gaps and missing values.
    max_time : float or None, default None
        Training time budget in seconds (checked after every epoch).
    checkpoint_dir : str or None, default None
        Folder for training checkpoints: the whole training state is written there atomically
        (safetensors + JSON, no pickle) every ``checkpoint_every`` epochs and when training
        ends, and ``fit(frame, resume=True)`` continues an interrupted fit from it with the
        result of an uninterrupted one. A fit without ``resume`` starts over and replaces the
        folder's checkpoints: use one folder per fit.
    checkpoint_every : int, default 1
        Epochs between checkpoints.
    on_oom : {"raise", "split"}, default "raise"
        When a training batch runs out of GPU memory: raise
        :class:`~forecaster.training.loop.GPUOutOfMemoryError`, which names a batch size that fits,
        or split every batch into parts and accumulate their gradients (the same effective
        batch, slower). Prediction and validation batches are split automatically.
    device : str, default "auto"
        ``"auto"`` trains on CUDA when available; the fitted network is kept on the CPU.
    random_state : int or None, default None
        Fixes initialisation, batch order and dropout: same seed, same predictions on CPU,
        also when fits run in threads at the same time (``ThreadPoolExecutor``,
        ``GridSearchCV(n_jobs=2)`` with the threading backend). Batch orders come from
        generators of their own; initial weights and dropout masks come from torch's one
        process-wide generator, so the training of fits in threads of one process is
        serialised by a lock (their data preparation still overlaps): use processes for
        parallel fits (scikit-learn's default ``loky`` backend, ``tune(n_workers=...)``).
    progress : bool or None, default None
        Progress bar; ``None`` shows it in a terminal or notebook.

    Attributes
    ----------
    network_ : RecurrentNet or EnsembleNet
    scaler_ : PanelScaler
    target_lambdas_ : numpy.ndarray or None
        Box-Cox lambdas, shape ``(n_series, n_targets)`` (``target_transform="boxcox"`` only).
    calendar_ : tuple of str
        The calendar features used.
    keys_ : polars.DataFrame
        The series seen in ``fit`` (row ``i`` is scaler row ``i``).
    train_end_ : polars.Series
        The last time of each series of ``keys_`` in the fitted frame; :meth:`score` refuses
        held-out steps partly at or before it. Not saved by :func:`forecaster.save`.
    n_members_ : int
        Networks actually trained (``n_ensemble``, or fewer when ``max_time`` ran out).
    freq_ : Frequency
    history_ : list of dict
        Per-epoch ``train_loss``, ``val_loss``, ``lr``, ``seconds``, ``windows_per_second``.
    schema_ : dict
        Column name to dtype of the training frame, checked by :meth:`predict`.
    fitted_params_ : dict
        The parameters of the last successful fit (``get_params()`` when it started; set by
        :func:`forecaster.load` too): :meth:`predict`, :meth:`score`, ``backtest`` and
        :func:`forecaster.save` refuse when a parameter that shapes predictions differs.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> t = np.arange(400)
    >>> frame = pl.DataFrame({"time": t, "y": np.sin(2 * np.pi * t / 24)})
    >>> model = RNNForecaster(target="y", lookback=48, horizon=12, hidden_size=16,
    ...                       max_epochs=2, random_state=0, progress=False).fit(frame)
    >>> model.predict(frame).shape
    (12, 2)
    """

    def __init__(
        self,
        target: str | Sequence[str] | None = None,
        *,
        time_col: str = "time",
        id_col: str | None = None,
        covariates: str | Sequence[str] | None = None,
        future_covariates: str | Sequence[str] | None = None,
        lookback: int = 96,
        horizon: int = 24,
        cell: str = "gru",
        head: str = "segment",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.1,
        segment_length: int = 24,
        normalization: str = "last",
        channel_independent: bool | None = None,
        nonlinearity: str = "tanh",
        scaling: str = "standard",
        target_transform: str = "none",
        calendar: str | Sequence[str] | None = None,
        loss: str = "mae",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int | None = 8,
        grad_clip: float | None = 1.0,
        lr_schedule: str = "none",
        validation_size: int | float = 0.1,
        stride: int = 1,
        windows_per_epoch: int | None = 32768,
        n_ensemble: int = 1,
        freq: str = "auto",
        missing: str = "error",
        max_time: float | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        on_oom: str = "raise",
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.target = target
        self.time_col = time_col
        self.id_col = id_col
        self.covariates = covariates
        self.future_covariates = future_covariates
        self.lookback = lookback
        self.horizon = horizon
        self.cell = cell
        self.head = head
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.segment_length = segment_length
        self.normalization = normalization
        self.channel_independent = channel_independent
        self.nonlinearity = nonlinearity
        self.scaling = scaling
        self.target_transform = target_transform
        self.calendar = calendar
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.validation_size = validation_size
        self.stride = stride
        self.windows_per_epoch = windows_per_epoch
        self.n_ensemble = n_ensemble
        self.freq = freq
        self.missing = missing
        self.max_time = max_time
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.on_oom = on_oom
        self.device = device
        self.random_state = random_state
        self.progress = progress

    _PREDICTION_PARAMS = (
        "target",
        "time_col",
        "id_col",
        "covariates",
        "future_covariates",
        "lookback",
        "horizon",
        "freq",
        "missing",
        "scaling",
        "target_transform",
        "calendar",
    )

    # -- checks ---------------------------------------------------------------------------
    def _check_columns(self) -> None:
        check_roles(**self._columns())

    def _check_relations(self) -> None:
        if self.channel_independent is False and self.head == "segment":
            raise DataValidationError(
                "channel_independent=False is not possible with head='segment', which is "
                "always channel independent. Leave channel_independent=None, or pick "
                "head='direct', 'seq2seq' or 'recursive' to mix the channels."
            )
        if isinstance(self.freq, str) and self.freq.strip().lower() != "auto":
            Frequency.parse(self.freq)

    def _network_shape(self) -> dict[str, Any]:
        calendar = self.calendar
        n_calendar = 0 if calendar in (None, "auto") else len(_as_tuple(calendar))
        n_targets = len(_as_tuple(self.target))
        n_future = len(_as_tuple(self.future_covariates)) + 2 * n_calendar
        return {
            **self._network_args(),
            "n_features": n_targets + len(_as_tuple(self.covariates)) + n_future,
            "n_targets": n_targets,
            "n_future": n_future,
            "lookback": self.lookback,
            "horizon": self.horizon,
            "channel_independent": self.head == "segment" or bool(self.channel_independent),
        }

    def _columns(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "time_col": self.time_col,
            "id_col": self.id_col,
            "covariates": self.covariates,
            "future_covariates": self.future_covariates,
        }

    # -- fit --------------------------------------------------------------------------------
    def fit(
        self, frame: pl.DataFrame | pl.LazyFrame, y: None = None, *, callbacks=(), resume=False
    ) -> RNNForecaster:
        """Train on every series of a long frame.

        Parameters
        ----------
        frame : polars.DataFrame or polars.LazyFrame
            Long format: id (optional), time, target(s), covariates.
        y : None
            Must be None (the targets are columns of ``frame``; scikit-learn passes None):
            any other value is refused, as it would be ignored.
        callbacks : sequence of callable, optional
            ``callback(record, network)`` after every epoch (see
            :func:`forecaster.training.loop.train`). Checked before any work: a list of callables
            that take those two arguments (``callbacks=print`` is refused: pass ``[print]``).
        resume : bool, default False
            Continue an interrupted fit from the last checkpoint in ``checkpoint_dir`` (same
            data and parameters; :class:`~forecaster.training.loop.CheckpointError` otherwise).

        Returns
        -------
        self

        Notes
        -----
        A fit is all or nothing: when it fails or is interrupted, the estimator keeps the
        fitted state it had before (or stays unfitted). Parameters changed with
        ``set_params`` after a fit take effect at the next fit; until then the ones that
        shape predictions (``target``, the other columns, ``lookback``, ``horizon``,
        ``freq``, ``missing``, ``scaling``, ``target_transform``, ``calendar``) make
        ``predict``, ``score``, ``backtest`` and ``save`` refuse, naming them. The networks
        of fits in threads of one process train one at a time (see ``random_state``).
        """
        _refuse_y(self, "fit", y)
        with self._fitting() as params:
            return self._fit(frame, callbacks=callbacks, resume=resume, params=params)

    def _fit(
        self, frame: Any, *, callbacks: Any, resume: Any, params: dict[str, Any]
    ) -> RNNForecaster:
        self.validate_params()
        callbacks = check_callbacks(callbacks)
        self._begin_fit(resume)
        schema = frame_schema(frame)  # a lazy source that cannot be read fails here
        device = self._device()
        self._check_training_memory(self._network_shape(), 1, device)  # before reading data
        tracker = _fit_tracker(self, frame)
        if tracker is not None:
            callbacks = [tracker.on_epoch, *callbacks]
        device = distributed.init_from_env(device)
        lookback, horizon = int(self.lookback), int(self.horizon)
        raw = Panel.from_frame(
            frame,
            **self._columns(),
            freq=self.freq,
            missing=self.missing,
            min_length=lookback + horizon,
        )
        calendar = calendar_features(self.calendar, raw.freq, raw.time.dtype)
        holdout = self._validation_steps(raw.lengths)
        fit_rows = _rows_before_holdout(raw, holdout)
        check_target_domain(self.target_transform, raw)
        lambdas = None
        if self.target_transform == "boxcox":
            lambdas = fit_boxcox_lambdas(raw, mask=fit_rows)
        panel = self._model_panel(raw, calendar, lambdas)
        windows = make_windows(panel, lookback, horizon, self.stride)
        train_w, val_w = _holdout_split(windows, holdout)
        del windows  # the two split indexes replace it (16 bytes per window)
        if len(train_w) == 0:
            raise DataValidationError(
                f"No training windows remain after holding out the last validation steps of "
                f"every series (validation_size={self.validation_size!r}). Lower "
                "validation_size or lookback/horizon, or provide longer series."
            )
        scaler = PanelScaler(self.scaling).fit(panel, mask=fit_rows)
        scaling = scaler.tensors(device)
        seed = self._start_checkpoints(resume, self._seed(), _panel_digest(panel))
        batch_size = int(self.batch_size)
        per_epoch = self.windows_per_epoch
        if per_epoch is not None and len(val_w) > per_epoch:
            # a fixed sample, so that every epoch is compared on the same windows
            rows = np.random.default_rng([seed, 2]).choice(len(val_w), per_epoch, replace=False)
            val_w = val_w._replace(val_w.index[np.sort(rows)])
        val_rank = _rank_share(val_w)  # this process's share under torchrun

        def val_source(epoch: int):
            for b in val_rank.batches(
                4 * batch_size, shuffle=False, device=device, scaling=scaling
            ):
                yield b.x, b.future, b.y

        def sources(member_seed: int):
            def train_source(epoch: int):
                windows_e = train_w
                if per_epoch is not None and per_epoch < len(train_w):
                    rng = np.random.default_rng([member_seed, epoch, 1])
                    rows = np.sort(rng.choice(len(train_w), size=per_epoch, replace=False))
                    windows_e = train_w._replace(train_w.index[rows])
                for b in _rank_batches(
                    windows_e, batch_size, seed=member_seed + epoch, device=device, scaling=scaling
                ):
                    yield b.x, b.future, b.y

            return train_source, val_source if len(val_w) else None

        n_train = len(train_w) if per_epoch is None else min(per_epoch, len(train_w))
        shape = {
            "n_features": panel.n_features,
            "n_targets": panel.n_targets,
            "n_future": panel.n_future,
            "lookback": lookback,
            "horizon": horizon,
            "channel_independent": self.head == "segment" or bool(self.channel_independent),
        }
        self._check_training_memory(shape, n_train, device)
        network, history = self._build_and_train(
            shape=shape,
            sources=sources,
            steps_per_epoch=_steps_per_epoch(n_train, batch_size),
            device=device,
            seed=seed,
            callbacks=callbacks,
        )
        self.network_ = network
        self.scaler_ = scaler
        self.target_lambdas_ = lambdas
        self.calendar_ = calendar
        self.keys_ = panel.keys
        self.train_end_ = raw.time.gather(raw.offsets[1:] - 1)
        self.freq_ = panel.freq
        self.history_ = history
        names = [c for c in (raw.id_col, raw.time_col) if c] + raw.columns
        self.schema_ = {name: str(schema[name]) for name in names}
        self.n_train_windows_ = len(train_w)
        self.n_val_windows_ = len(val_w)
        self.fitted_params_ = params
        if tracker is not None:
            tracker.finish(self)
        return self

    def _model_panel(
        self, raw: Panel, calendar: Sequence[str], lambdas: np.ndarray | None
    ) -> Panel:
        """The panel the network sees: targets transformed (``lambdas`` per series of ``raw``
        for Box-Cox) and the calendar features appended as future-known covariates."""
        panel = transform_targets(self.target_transform, raw, lambdas)
        if not calendar:
            return panel
        extra = calendar_values(panel.time, calendar)
        names = tuple(f"{name}_{part}" for name in calendar for part in ("sin", "cos"))
        clash = [n for n in names if n in panel.columns]
        if clash:
            raise DataValidationError(
                f"Columns {clash} clash with the calendar features' names. Rename them or set "
                "calendar=None."
            )
        return dataclasses.replace(
            panel,
            values=np.ascontiguousarray(np.hstack([panel.values, extra])),
            future_covariates=(*panel.future_covariates, *names),
            _device_values={},
        )

    def _predict_panel(
        self, raw: Panel, history: np.ndarray | None = None
    ) -> tuple[Panel, np.ndarray | None]:
        """:meth:`_model_panel` for a prediction panel, and the Box-Cox lambdas per series
        (None for other transforms): fitted ones for series seen in ``fit``, for the others
        lambdas fitted on the rows where ``history`` is true (all rows when None)."""
        check_target_domain(self.target_transform, raw)
        lambdas = None
        if self.target_transform == "boxcox":
            fitted, known = self._fitted_rows(raw)
            lambdas = np.empty((raw.n_series, raw.n_targets))
            lambdas[known] = self.target_lambdas_[fitted[known]]
            if (~known).any():
                own = fit_boxcox_lambdas(raw, mask=history)
                lambdas[~known] = own[~known]
        return self._model_panel(raw, getattr(self, "calendar_", ()), lambdas), lambdas

    def _inverse_targets(self, pred: np.ndarray, lambdas: np.ndarray | None) -> np.ndarray:
        """Forecasts ``(B, horizon, n_targets)`` back on the targets' own scale (``lambdas``:
        the Box-Cox lambdas of each row's series, shape ``(B, n_targets)``)."""
        return inverse_targets(self.target_transform, pred, lambdas)

    def _fitted_rows(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        """For each series of ``panel``: its row in ``keys_`` and whether it was seen in fit."""
        return self._match_keys(panel.keys, panel.id_name)

    def _match_keys(self, keys: pl.DataFrame, id_name: str) -> tuple[np.ndarray, np.ndarray]:
        """For each row of ``keys`` (column ``id_name``): the row of its series in ``keys_``
        and whether that series was seen in fit."""
        (row,) = temporary_names([id_name], "_fitted")
        lookup = self.keys_.select(id_name).with_row_index(row)
        fitted_dtype, dtype = lookup.schema[id_name], keys.schema[id_name]
        if fitted_dtype != dtype and not (fitted_dtype.is_numeric() and dtype.is_numeric()):
            fitted_dtype = pl.String  # text, Categorical and Enum ids match by their text
            lookup = lookup.with_columns(pl.col(id_name).cast(pl.String))
        keys = keys.select(pl.col(id_name).cast(fitted_dtype, strict=False))
        matched = keys.join(lookup, on=id_name, how="left", maintain_order="left")[row]
        known = ~matched.is_null().to_numpy()
        return matched.fill_null(0).to_numpy().astype(np.int64), known

    def _validation_steps(self, lengths: np.ndarray) -> np.ndarray:
        vs = self.validation_size
        if vs == 0:
            return np.zeros_like(lengths)
        if isinstance(vs, numbers.Integral):
            return np.full_like(lengths, int(vs))
        return np.maximum(np.ceil(lengths * float(vs)).astype(np.int64), int(self.horizon))

    # -- predict ----------------------------------------------------------------------------
    def predict(
        self,
        frame: pl.DataFrame | pl.LazyFrame,
        *,
        cutoff: Any = None,
        future: pl.DataFrame | pl.LazyFrame | None = None,
    ) -> pl.DataFrame:
        """Forecast the next ``horizon`` steps of every series.

        Parameters
        ----------
        frame : polars.DataFrame or polars.LazyFrame
            History with the training columns; each series needs at least ``lookback`` rows
            up to the cutoff (shorter ones are dropped with a warning). Series unseen in
            ``fit`` are scaled with statistics of their own history.
        cutoff : date, datetime, ISO text, numpy.datetime64, pl.date(...) or int, optional
            Forecast from this time instead of each series' end: only rows with
            ``time <= cutoff`` are used, so each series is forecast from its last time at or
            before the cutoff (a cutoff between two steps of the grid, e.g. a Saturday for
            business days, forecasts from the step before it). It is converted to the time
            column's dtype by :func:`forecaster.data.core.to_time_point` (a value of another kind
            raises :class:`~forecaster.exceptions.DataValidationError`); a cutoff before the
            first time of the data is an error; series that end before the cutoff are
            forecast from their last time, with a
            :class:`~forecaster.exceptions.ForecasterWarning` that names them. Without a
            cutoff, series that end before the frame's last time get the same warning.
        future : polars.DataFrame or polars.LazyFrame, optional
            Values of the future covariates over the horizon (id, time and those columns);
            required when the model has future covariates, refused when it has none. Checked
            like the history: the id and time dtypes of training (integer steps may change
            width), one row per (id, time), a finite value at every forecast step (NaN, null
            and infinite values are refused naming the column, series and time).

        Returns
        -------
        polars.DataFrame
            Columns id (when the model has one), time (the next ``horizon`` timestamps of each
            series) and one column per target, sorted by (id, time).
        """
        self._check_fitted("predict with")
        if future is not None and not _as_tuple(self.future_covariates):
            raise DataValidationError(
                "predict(future=...) was given, but this model has no future covariates "
                "(future_covariates=None), so the frame would be ignored. Drop future=..., or "
                "refit with future_covariates=[...] naming the columns known ahead."
            )
        raw = self._panel_for_predict(frame, cutoff)
        panel, lambdas = self._predict_panel(raw)
        lookback = int(self.lookback)
        starts = panel.offsets[1:] - lookback
        x = torch.from_numpy(panel.values[starts[:, None] + np.arange(lookback)])
        center, scale = self._scaling_for(panel)
        xs = (x.double() - center[:, None, :]) / scale[:, None, :]
        horizon_times = self._future_times(panel)
        future_t = self._future_covariates(raw, horizon_times, future, center, scale)
        device = self._device()
        network = self._network_on(device)
        outputs = predict_batched(
            network, xs.float(), future_t, device=device, batch_size=PREDICT_BATCH
        )
        nt = panel.n_targets
        pred = outputs.double() * scale[:, None, :nt] + center[:, None, :nt]
        ids = panel.keys[panel.id_name]
        flat = self._forecast_values(pred.numpy(), lambdas, ids).reshape(-1, nt)
        out = horizon_times.with_columns(
            pl.Series(name, flat[:, j]) for j, name in enumerate(panel.targets)
        )
        return out if self.id_col is not None else out.drop(panel.id_name)

    def _forecast_values(
        self, pred: np.ndarray, lambdas: np.ndarray | None, ids: pl.Series
    ) -> np.ndarray:
        """Forecasts ``(B, horizon, n_targets)`` of the network's scale (unscaled) as float32
        values on the targets' own scale (inverse ``target_transform``; ``lambdas`` are the
        Box-Cox lambdas of each row's series), refusing any that is not a finite float32
        number (``ids``: the series of each row, named in the error)."""
        values = self._inverse_targets(pred, lambdas)
        with np.errstate(over="ignore", invalid="ignore"):
            out = values.astype(np.float32)
        finite = np.isfinite(out)
        if finite.all():
            return out
        rows, steps, targets = np.nonzero(~finite)
        series = ids.gather(np.unique(rows)).unique(maintain_order=True).to_list()
        first = (rows == rows[0]) & (targets == targets[0])
        where = sorted({int(k) + 1 for k in steps[first]})
        example = float(values[rows[0], steps[0], targets[0]])
        names = _as_tuple(self.target)
        which = (
            "the series"
            if self.id_col is None
            else f"{len(series)} series ({series[:10]}), e.g. {series[0]!r}"
        )
        raise DataValidationError(
            f"The forecast is not a finite float32 number (forecasts are float32) for "
            f"{which} at steps {where} of the horizon, target {names[targets[0]]!r} "
            f"({example:g} before the cast to float32). The network's output, back on the targets' "
            f"scale (scaling={self.scaling!r}, target_transform={self.target_transform!r}), "
            "is beyond the float32 range (about 3.4e38) or not a number. Divide the target by "
            "a constant before fitting (e.g. pl.col(target) / 1e30) and multiply the "
            "forecasts back, or use target_transform='log' for values spanning many orders of "
            "magnitude; a model whose history_ shows NaN losses needs refitting (e.g. a lower "
            "lr)."
        )

    def _panel_for_predict(self, frame: Any, cutoff: Any) -> Panel:
        """The prediction panel: ``frame``'s rows up to ``cutoff`` (all when None), series
        with at least ``lookback`` rows (shorter ones dropped with a warning)."""
        schema = check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        point = None
        if cutoff is not None:
            dtype = schema[self.time_col]
            point = to_time_point(cutoff, dtype, name="cutoff")
            frame = collect_frame(frame, columns=list(self.schema_))
            before = frame.filter(pl.col(self.time_col) <= pl.lit(point, dtype=dtype))
            if before.height == 0 and frame.height:
                raise DataValidationError(
                    f"cutoff={cutoff!r} is before the first time of the data "
                    f"({frame[self.time_col].min()}): no row is at or before it. Pass a cutoff "
                    "between the first and the last time of the frame."
                )
            frame = before
        panel = Panel.from_frame(
            frame,
            **self._columns(),
            freq=str(self.freq_),
            missing=self.missing,
            min_length=int(self.lookback),
            length_reason="lookback",
        )
        self._warn_stale_series(panel, point, cutoff)
        return panel

    def _warn_stale_series(self, panel: Panel, point: Any, cutoff: Any) -> None:
        """Warn about series that end before the forecast origin: ``cutoff`` (converted to
        ``point``) when given, else the frame's last time (the latest end of any series).
        The next step after their last row is still at or before it, so they are forecast
        from their last row, an earlier origin than the others'."""
        last = panel.time.gather(panel.offsets[1:] - 1)
        following = self.freq_.offset(pl.col("t"), 1).cast(last.dtype)
        if point is None:
            bound, reference = pl.col("t").max(), f"the frame's last time ({last.max()})"
        else:
            bound, reference = pl.lit(point, dtype=last.dtype), f"cutoff={cutoff!r}"
        stale = pl.DataFrame({"t": last}).select(following <= bound).to_series().to_numpy()
        if not stale.any():
            return
        ids = panel.keys[panel.id_name].filter(pl.Series(stale)).to_list()
        which = "The series ends" if self.id_col is None else f"{int(stale.sum())} series end"
        latest = last.filter(pl.Series(stale)).max()
        warnings.warn(
            f"{which} before {reference}"
            + ("" if self.id_col is None else f": {ids[:10]}")
            + f" (last time {latest} at the latest). They are forecast from their last time, "
            "not from "
            + ("the cutoff." if point is not None else "the frame's last time.")
            + " Drop them or bring their data up to date to forecast every series from the "
            "same time.",
            ForecasterWarning,
            stacklevel=4,
        )

    def _scaling_for(self, panel: Panel) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-series (center, scale) float64 tensors: fitted ones, or fitted on the history."""
        fitted, known = self._fitted_rows(panel)
        center = np.empty((panel.n_series, panel.n_features))
        scale = np.empty_like(center)
        if known.any():
            center[known] = self.scaler_.center_[fitted[known]]
            scale[known] = self.scaler_.scale_[fitted[known]]
        if (~known).any():
            own = PanelScaler(self.scaling).fit(panel)
            center[~known] = own.center_[~known]
            scale[~known] = own.scale_[~known]
        return torch.from_numpy(center), torch.from_numpy(scale)

    def _future_times(self, panel: Panel) -> pl.DataFrame:
        """Frame (id, time) of the ``horizon`` steps after each series' last time."""
        horizon = int(self.horizon)
        ids = panel.keys[panel.id_name]
        times = future_times(panel.time, panel.offsets, self.freq_, horizon)
        return pl.DataFrame(
            [ids.gather(np.repeat(np.arange(len(ids)), horizon)), times.alias(self.time_col)]
        )

    def _future_covariates(
        self,
        panel: Panel,
        horizon_times: pl.DataFrame,
        future: Any,
        center: torch.Tensor,
        scale: torch.Tensor,
    ) -> torch.Tensor | None:
        names = list(panel.future_covariates)
        calendar = getattr(self, "calendar_", ())
        if not names and not calendar:
            return None
        parts = []
        if calendar:
            times = horizon_times[self.time_col].cast(panel.time.dtype)
            parts.append(torch.from_numpy(calendar_values(times, calendar)).double())
        if names:
            parts.insert(0, self._user_future(panel, horizon_times, future, names))
        values = torch.cat(parts, dim=-1).reshape(panel.n_series, int(self.horizon), -1)
        nf = values.shape[-1]
        return ((values - center[:, None, -nf:]) / scale[:, None, -nf:]).float()

    def _user_future(
        self, panel: Panel, horizon_times: pl.DataFrame, future: Any, names: list[str]
    ) -> torch.Tensor:
        """The user's future covariates over the horizon, ``(n_series * horizon, n)``."""
        if future is None:
            raise DataValidationError(
                f"This model uses future covariates {names}: pass their values over the next "
                f"{self.horizon} steps of every series as predict(frame, future=...), a frame "
                f"with columns {[c for c in (self.id_col, self.time_col) if c]} + {names}."
            )
        keys = [c for c in (self.id_col, self.time_col) if c]
        expected = {c: t for c, t in self.schema_.items() if c in keys}
        schema = check_schema(
            future, expected, id_col=self.id_col, time_col=self.time_col, what="future frame"
        )
        absent = [c for c in names if c not in schema]
        text = [f"{c} ({schema[c]})" for c in names if c in schema and not schema[c].is_numeric()]
        if absent or text:
            raise DataValidationError(
                f"The future frame must hold the future covariates {names} as numbers; "
                + (f"it lacks {absent}" if absent else f"it has {text}")
                + ". Add or cast them, e.g. pl.col(name).cast(pl.Float64)."
            )
        future = collect_frame(future, columns=[*keys, *names], what="future frame")
        check_unique_keys(future, keys, what="future frame")
        return self._future_values(future, horizon_times, panel.id_name, names)

    def _future_values(
        self, future: pl.DataFrame, horizon_times: pl.DataFrame, id_name: str, names: list[str]
    ) -> torch.Tensor:
        """The rows of ``future`` at the forecast steps ``horizon_times``: every step present,
        every value finite (checked like the history)."""
        if self.id_col is None:
            future = future.with_columns(pl.lit(0, pl.UInt8).alias(id_name))
        else:
            dtype = horizon_times.schema[id_name]
            future = future.with_columns(pl.col(id_name).cast(dtype, strict=False))
        time_dtype = horizon_times.schema[self.time_col]
        (present,) = temporary_names([id_name, self.time_col, *names], "_present")
        joined = horizon_times.join(
            future.select(
                id_name,
                pl.col(self.time_col).cast(time_dtype, strict=False),
                *[pl.col(c).cast(pl.Float64) for c in names],
                pl.lit(True).alias(present),
            ),
            on=[id_name, self.time_col],
            how="left",
            maintain_order="left",
        )
        absent_rows = joined[present].is_null()
        if absent_rows.any():
            example = joined.filter(absent_rows).head(3).select(id_name, self.time_col).rows()
            raise DataValidationError(
                f"The future frame has no rows for {int(absent_rows.sum())} forecast steps, "
                f"e.g. {example}. It must cover the next {self.horizon} steps of every series "
                f"with the values of {names}."
            )
        check_values(
            joined,
            names,
            id_name=id_name,
            time_col=self.time_col,
            what="future frame",
            fix="Future covariates need a finite value at every forecast step: fill them "
            "(e.g. pl.col(c).fill_nan(None).forward_fill()) or fix the source.",
        )
        return torch.from_numpy(joined.select(names).to_numpy().astype(np.float64))

    # -- score ------------------------------------------------------------------------------
    def score(self, frame: pl.DataFrame | pl.LazyFrame, y: None = None) -> float:
        """Negative mean absolute error of a forecast of each series' last ``horizon`` steps.

        The frame is read as ``fit`` reads it (the model's frequency and ``missing=`` policy,
        so gaps are filled on the regular grid); the last ``horizon`` steps of every series on
        that grid are held out, the model forecasts them from the steps before, and the score
        is ``-MAE`` over series, steps and targets in the targets' units (higher is better, as
        scikit-learn expects). Every held-out step is scored; a step that the ``missing=``
        policy filled is scored against its filled value. Used by ``GridSearchCV`` with
        :class:`TemporalSplit`.

        Raises
        ------
        DataValidationError
            When the model was fitted on data of a series after its held-out steps (a
            cross-validation split that is not in time order, such as scikit-learn's default
            ``KFold``, trains on rows after the test rows: use :class:`TemporalSplit`), or when
            some, but not all, held-out steps of a series are in the data the model was fitted
            on (e.g. :class:`TemporalSplit` with ``test_size < horizon``): such a score would
            mix in-sample and out-of-sample steps. Held-out steps that are all in the fitted
            data, which ends with them (an in-sample score), give a
            :class:`~forecaster.exceptions.ForecasterWarning`. Also for a ``y`` that is not
            None (the targets are columns of ``frame``).
        """
        _refuse_y(self, "score", y)
        self._check_fitted("score with")
        check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        data, _ = validate_frame(
            collect_frame(frame, columns=list(self.schema_)),
            **self._columns(),
            freq=str(self.freq_),
            missing=self.missing,
        )
        horizon = int(self.horizon)
        id_name = self.id_col if self.id_col is not None else SERIES_ID  # validate_frame's
        # rows are sorted by (id, time): a row's position from its series' end, as a mask
        from_end = data.select(pl.int_range(pl.len()).reverse().over(id_name)).to_series()
        history = data.filter(from_end >= horizon)
        actual = data.filter(from_end < horizon)
        self._check_held_out(actual, id_name)
        if self.id_col is None:
            history, actual = history.drop(id_name), actual.drop(id_name)
        forecast = self.predict(history, future=actual if self.future_covariates else None)
        keys = [c for c in (self.id_col, self.time_col) if c]
        targets = list(_as_tuple(self.target))
        true = temporary_names([*keys, *targets], *[f"{t}_true" for t in targets])
        renamed = [pl.col(t).alias(o) for t, o in zip(targets, true, strict=True)]
        joined = forecast.join(actual.select(*keys, *renamed), on=keys)
        if joined.height == 0:
            raise DataValidationError("No forecast step matched the held-out rows of the frame.")
        errors = [(pl.col(t) - pl.col(o)).abs().mean() for t, o in zip(targets, true, strict=True)]
        return -float(np.mean(joined.select(errors).row(0)))

    def _check_held_out(self, actual: pl.DataFrame, id_name: str) -> None:
        """Refuse held-out steps of a series that the model was fitted on data after (its
        training frame ran past them: a cross-validation split that is not in time order), or
        that are partly in the fitted data; warn when a series' held-out steps are all in it
        (an in-sample score: the fitted data ends with them)."""
        ends = self.__dict__.get("train_end_")
        if ends is None:  # a model loaded from a folder that does not record it
            return
        fitted, known = self._match_keys(actual.select(id_name), id_name)
        end = ends.gather(fitted)
        trained = (actual[self.time_col] <= end).to_numpy() & known
        if not trained.any():
            return
        counts = (
            pl.DataFrame(
                {"id": actual[id_name], "t": actual[self.time_col], "trained": trained, "end": end}
            )
            .filter(pl.Series(known))
            .group_by("id", maintain_order=True)
            .agg(
                pl.col("trained").sum(),
                pl.len(),
                pl.col("end").first(),
                pl.col("t").min().alias("first"),
                pl.col("t").max().alias("last"),
            )
        )
        self._refuse_future(counts.filter(pl.col("end") > pl.col("last")))
        partial = counts.filter((pl.col("trained") > 0) & (pl.col("trained") < pl.col("len")))
        if partial.height:
            key, n, total, last = partial.row(0)[:4]
            which = "" if self.id_col is None else f"{key!r}: "
            raise DataValidationError(
                f"score holds out the last horizon={self.horizon} steps of every series, but "
                f"for {partial.height} series some of them are in the data the model was "
                f"fitted on (e.g. {which}{n} of {total} held-out steps at or before its last "
                f"fitted time {last}), so the score would mix in-sample and new steps. With "
                f"TemporalSplit, use test_size >= horizon ({self.horizon}); otherwise score on "
                "a frame that runs at least horizon steps past the fitted data."
            )
        inside = counts.filter(pl.col("trained") == pl.col("len"))
        warnings.warn(
            f"score: the held-out steps of {inside.height} series are all in the data the "
            f"model was fitted on (e.g. {inside['id'].head(5).to_list()}): an in-sample score.",
            ForecasterWarning,
            stacklevel=3,
        )

    def _refuse_future(self, later: pl.DataFrame) -> None:
        """Refuse a score whose held-out steps of some series (rows of ``later``: id,
        trained, len, end, first, last) come before the end of the data the model was fitted
        on: it has seen what followed them."""
        if not later.height:
            return
        key, _, _, end, first, last = later.row(0)
        which = "" if self.id_col is None else f" {key!r}"
        raise DataValidationError(
            f"score forecasts the last horizon={self.horizon} steps of every series, but the "
            f"model was fitted on later data of {later.height} series (e.g.{which}: fitted up "
            f"to {self.time_col}={end}, held-out steps {first} to {last}): it has seen what "
            "followed them, so the score would be better than any real forecast. A "
            "cross-validation splitter that is not in time order (cross_val_score(model, "
            "frame, cv=3) or GridSearchCV(..., cv=3) use KFold) trains on rows after the test "
            f"rows: pass cv=TemporalSplit({self.time_col!r}, n_splits=3, "
            f"test_size={self.horizon}), which trains each fold on the past of its test "
            "steps only; or score on a frame that ends at or after the fitted data."
        )

    # -- backtest ---------------------------------------------------------------------------
    def backtest(self, frame: pl.DataFrame | pl.LazyFrame, **kwargs: Any) -> Any:
        """Rolling-origin backtest of this estimator on ``frame`` (it is not modified).

        Shorthand for :func:`forecaster.evaluation.backtest(self, frame, **kwargs)
        <forecaster.evaluation.backtest>`, which documents the keywords (``folds``, ``step``,
        ``gap``, ``window``, ``train_size``, ``refit``, ``metrics``, ``m``, ``scale``).

        Returns
        -------
        forecaster.evaluation.backtest.BacktestResult
            ``forecasts``, ``metrics`` (by fold and series), ``by_step``, ``aggregate``.
        """
        from forecaster.evaluation import backtest

        return backtest(self, frame, **kwargs)


def _fixed_cell(cell: str, doc_name: str) -> type[RNNForecaster]:
    """A subclass of RNNForecaster whose ``cell`` is fixed (not a parameter)."""
    params = [
        p for p in inspect.signature(RNNForecaster.__init__).parameters.values() if p.name != "cell"
    ]

    def __init__(self, target=None, **kwargs):
        given = kwargs.pop("cell", cell)
        if given != cell:  # not a parameter: a call that cannot mean what it says
            raise DataValidationError(
                f"{doc_name}Forecaster fixes cell={cell!r}, got cell={given!r}. Use "
                f"RNNForecaster(cell={given!r}, ...) (or the class of that cell), or leave "
                "cell out."
            )
        RNNForecaster.__init__(self, target, cell=cell, **kwargs)

    __init__.__signature__ = inspect.Signature(params)
    doc = (
        f"{doc_name} forecaster: :class:`RNNForecaster` with ``cell={cell!r}`` fixed.\n\n"
        "``cell`` is not one of its parameters (``get_params`` does not list it); passing "
        f"``cell={cell!r}`` is accepted, another cell raises "
        ":class:`~forecaster.exceptions.DataValidationError`.\n\n"
        "All other parameters, attributes and methods are those of :class:`RNNForecaster`.\n"
    )
    return type(doc_name + "Forecaster", (RNNForecaster,), {"__init__": __init__, "__doc__": doc})


LSTMForecaster = _fixed_cell("lstm", "LSTM")
GRUForecaster = _fixed_cell("gru", "GRU")
SimpleRNNForecaster = _fixed_cell("rnn", "SimpleRNN")
for _cls in (LSTMForecaster, GRUForecaster, SimpleRNNForecaster):
    _cls.__module__ = __name__


def _is_fitted_attribute(name: str) -> bool:
    """Whether ``name`` is a fitted attribute (scikit-learn's convention: ``name_``)."""
    return name.endswith("_") and not name.startswith("_")


def _same_param(a: Any, b: Any) -> bool:
    """Whether two values of a parameter mean the same: lists and tuples alike, a name and a
    list of that one name alike; values that do not compare to one bool (arrays) differ."""

    def canonical(value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple):
            return tuple(canonical(v) if isinstance(v, list | tuple) else v for v in value)
        return value

    try:
        same = canonical(a) == canonical(b)
    except (TypeError, ValueError):
        return False
    return bool(same) if isinstance(same, bool | np.bool_) else False  # an array: differs


def _refuse_y(estimator: Any, method: str, y: Any) -> None:
    """Refuse a ``y`` given to a frame estimator's ``fit`` or ``score``: the targets are
    columns of the frame, and scikit-learn passes ``y=None``."""
    if y is None:
        return
    raise DataValidationError(
        f"{type(estimator).__name__}.{method}(frame, y=...) got y={describe_value(y)}, but "
        f"its targets are the frame's columns (target={estimator.target!r}); y would be "
        "ignored. Drop y (scikit-learn passes y=None), or put the values in a column of the "
        "frame and name it in target."
    )


def _fit_tracker(estimator: _RecurrentEstimator, data: Any) -> Any:
    """The MLflow logger of a fit (see :mod:`forecaster.tracking.core`), or None.

    A fit is logged inside an active MLflow run or after ``forecaster.tracking.core.autolog()``,
    both of which need mlflow imported first: so a fit never imports mlflow (or tracking)
    itself, and costs nothing when tracking is not used.
    """
    if sys.modules.get("mlflow") is None or not distributed.is_main_process():
        return None  # under torchrun only rank 0 logs
    import importlib

    start = getattr(importlib.import_module("forecaster.tracking.core"), "_fit_tracker", None)
    return start(estimator, data) if start is not None else None


def _warn_short_ensemble(trained: int, wanted: int, max_time: float) -> None:
    """Say that ``max_time`` ran out after ``trained`` of ``wanted`` ensemble members."""
    warnings.warn(
        f"max_time={max_time:g} s ran out after {trained} of the n_ensemble={wanted} networks: "
        f"the ensemble averages {trained} member{'s' if trained > 1 else ''} "
        f"(n_members_ = {trained}). Raise max_time, or lower n_ensemble to what fits in it.",
        ForecasterWarning,
        stacklevel=5,
    )


_RESUME_FREE_PARAMS = (
    "checkpoint_dir",
    "checkpoint_every",
    "on_oom",
    "device",
    "max_time",
    "progress",
)
"""Parameters that may differ between an interrupted fit and its resume (they do not change
what is trained; ``max_time`` counts the seconds before the interruption too)."""


def _panel_digest(panel: Panel) -> str:
    """A digest of what a fit trains on: values, series boundaries, times and keys."""
    keys = "\x1e".join(map(repr, panel.keys.rows()))
    return digest_arrays(
        panel.values, panel.offsets, panel.time.to_physical().to_numpy(), keys, repr(panel.columns)
    )


def _rank_batch_size(batch_size: int) -> int:
    """Windows per batch in this process: ``batch_size`` split over the torchrun ranks, so that
    one step of all ranks together sees ``batch_size`` windows."""
    world = distributed.world_size()
    if world > 1 and batch_size % world:
        warnings.warn(
            f"batch_size={batch_size} is not a multiple of the {world} processes: each takes "
            f"batches of {max(batch_size // world, 1)}. Use a multiple of {world} for the same "
            "global batch as one process.",
            ForecasterWarning,
            stacklevel=3,
        )
    return max(batch_size // world, 1)


def _rank_share(windows: Windows) -> Windows:
    """This process's share of ``windows`` under torchrun (every ``world_size``-th window);
    all of them in a single process."""
    if distributed.world_size() == 1:
        return windows
    return windows._replace(windows.index[distributed.shard(np.arange(len(windows)), equal=False)])


def _rank_batches(
    windows: Windows, batch_size: int, *, seed: int, device: torch.device, scaling: Any
) -> Iterator[Any]:
    """An epoch's batches. In one process: all windows in an order drawn from ``seed``. Under
    torchrun: every rank draws the same permutation and takes every ``world_size``-th window of
    it (equal counts), in batches of ``batch_size // world_size``, so that the ranks' batches
    of one step together are the single-process batch of that step."""
    if distributed.world_size() == 1:
        return windows.batches(batch_size, seed=seed, device=device, scaling=scaling)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(windows), generator=generator, dtype=torch.int32).numpy()
    mine = windows._replace(windows.index[distributed.shard(order)])
    return mine.batches(_rank_batch_size(batch_size), shuffle=False, device=device, scaling=scaling)


def _steps_per_epoch(n_windows: int, batch_size: int) -> int:
    """Optimiser steps per epoch (per process under torchrun)."""
    world = distributed.world_size()
    return math.ceil(
        (n_windows // world if world > 1 else n_windows) / _rank_batch_size(batch_size)
    )


def _holdout_split(windows: Windows, holdout: np.ndarray) -> tuple[Windows, Windows]:
    """Per series: training windows end before the last ``holdout`` rows; validation windows
    have every target inside them."""
    panel = windows.panel
    series = windows.index["series"].to_numpy()
    start = windows.index["start"].to_numpy()
    # Per series, the last start of a training window and the first start of a validation
    # window, as global rows in the index's dtype: one gather and one mask per window, no
    # int64 temporaries of the window count.
    end = panel.offsets[1:] - holdout
    last_train = (end - windows.window_length).astype(start.dtype)
    first_val = np.where(holdout > 0, end - windows.lookback, panel.offsets[-1]).astype(start.dtype)
    train = windows.filter(start <= last_train[series])
    val = windows.filter(start >= first_val[series])
    return train, val


def _rows_before_holdout(panel: Panel, holdout: np.ndarray) -> np.ndarray:
    keep = np.clip(panel.lengths - holdout, 0, panel.lengths)  # leading rows of each series
    runs = np.stack([keep, panel.lengths - keep], axis=1).ravel()
    return np.repeat(np.tile(np.array([True, False]), panel.n_series), runs)  # 1 byte per row


# ------------------------------------------------------------------------------------------
# TemporalSplit
# ------------------------------------------------------------------------------------------


class TemporalSplit:
    """Cross-validation over time cutoffs of a long frame (for ``GridSearchCV``).

    Fold ``k`` trains on the rows with time up to cutoff ``c_k`` and tests on the rows up to
    ``c_k`` plus the next ``test_size`` time steps (the history the forecast needs plus the
    held-out horizon), so :meth:`RNNForecaster.score` forecasts exactly the unseen steps. The
    cutoffs are the ``n_splits`` last multiples of ``test_size`` time steps before the end.

    Parameters
    ----------
    time_col : str
    n_splits : int, default 3
    test_size : int, default 24
        Time steps per test fold (use the forecaster's ``horizon``). A forecaster whose
        ``horizon`` is longer refuses to score such a fold (its held-out steps would include
        rows it was fitted on): see :meth:`RNNForecaster.score`.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"time": range(10), "y": [0.0] * 10})
    >>> [(len(tr), len(te)) for tr, te in TemporalSplit("time", 2, 3).split(frame)]
    [(4, 7), (7, 10)]
    """

    def __init__(self, time_col: str = "time", n_splits: int = 3, test_size: int = 24) -> None:
        self.time_col = time_col
        self.n_splits = n_splits
        self.test_size = test_size

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(
        self, X: pl.DataFrame, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n_splits, test_size = check("n_splits", self.n_splits), check("test_size", self.test_size)
        check("time_col", self.time_col)
        if not isinstance(X, pl.DataFrame) or self.time_col not in X.columns:
            raise DataValidationError(
                f"TemporalSplit needs a polars DataFrame with the time column {self.time_col!r}"
                f", got {type(X).__name__}"
                + (f" with columns {X.columns}" if isinstance(X, pl.DataFrame) else "")
                + ". Collect a LazyFrame first (GridSearchCV indexes rows)."
            )
        dtype = X.schema[self.time_col]
        if not (dtype.is_temporal() or dtype.is_integer()) or X[self.time_col].null_count():
            raise DataValidationError(
                f"TemporalSplit's time column {self.time_col!r} must be Datetime, Date or an "
                f"integer step without nulls, got {dtype} with "
                f"{X[self.time_col].null_count()} nulls."
            )
        rank = X[self.time_col].rank("dense").to_numpy().astype(np.int64)
        n_times = int(rank.max()) if rank.size else 0
        needed = n_splits * test_size
        if needed >= n_times:
            raise DataValidationError(
                f"{n_splits} folds of {test_size} steps need more than {needed} time "
                f"steps; the frame has {n_times}. Use fewer folds or a smaller test_size."
            )
        for k in range(n_splits, 0, -1):
            cutoff = n_times - k * test_size
            yield (
                np.flatnonzero(rank <= cutoff),
                np.flatnonzero(rank <= cutoff + test_size),
            )


# ------------------------------------------------------------------------------------------
# RNNRegressor
# ------------------------------------------------------------------------------------------


class RNNRegressor(RegressorMixin, _RecurrentEstimator):
    """Recurrent regressor on already-windowed arrays (the scikit-learn contract).

    ``X`` has shape ``(n_samples, lookback, n_features)``, or ``(n_samples, lookback)`` for one
    feature; ``y`` has shape ``(n_samples,)`` (one step) or ``(n_samples, horizon)``. Features
    and targets are standardised with statistics of the training part; the last
    ``validation_fraction`` of the samples (in the given order, assumed to be time order) is
    held out for early stopping.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}, default "lstm"
    head : {"direct", "seq2seq", "recursive", "segment"}, default "direct"
        ``"segment"`` and ``"recursive"`` assume the target is the first feature of ``X``.
    hidden_size : int, default 64
    num_layers : int, default 1
    dropout : float, default 0.0
    segment_length : int, default 24
    normalization : {"none", "last", "revin"}, default "none"
    nonlinearity : {"tanh", "relu"}, default "tanh"
    loss : {"mse", "mae", "huber"}, default "mse"
    lr : float, default 1e-3
    weight_decay : float, default 0.0
    batch_size : int, default 64
    max_epochs : int, default 100
    patience : int or None, default 10
    grad_clip : float or None, default 1.0
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}, default "none"
    validation_fraction : float, default 0.1
        0 disables early stopping.
    n_ensemble : int, default 1
        Number of networks (seeds ``random_state + k``) whose predictions are averaged (fewer,
        with a warning, when ``max_time`` runs out first; see ``n_members_``).
    max_time : float or None, default None
    checkpoint_dir : str or None, default None
        Checkpoint folder for ``fit(X, y, resume=True)`` (see :class:`RNNForecaster`).
    checkpoint_every : int, default 1
    on_oom : {"raise", "split"}, default "raise"
    device : str, default "auto"
    random_state : int or None, default None
    progress : bool or None, default False

    Attributes
    ----------
    network_ : RecurrentNet
    n_features_in_ : int
        ``X.shape[1]`` seen in ``fit`` (the lookback), as scikit-learn defines it.
    n_channels_ : int
        Number of features per time step.
    lookback_ : int
    horizon_ : int
    y_ndim_ : int
        Dimensions of ``y`` in ``fit`` (1: predictions are 1-D).
    history_ : list of dict
    fitted_params_ : dict
        The parameters of the last successful fit; :func:`forecaster.save` writes them.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 12, 2)).astype("float32")
    >>> y = X[:, -1, 0] + X[:, -2, 1]
    >>> model = RNNRegressor(hidden_size=16, max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    def __init__(
        self,
        *,
        cell: str = "lstm",
        head: str = "direct",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        segment_length: int = 24,
        normalization: str = "none",
        nonlinearity: str = "tanh",
        loss: str = "mse",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int | None = 10,
        grad_clip: float | None = 1.0,
        lr_schedule: str = "none",
        validation_fraction: float = 0.1,
        n_ensemble: int = 1,
        max_time: float | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        on_oom: str = "raise",
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = False,
    ) -> None:
        self.cell = cell
        self.head = head
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.segment_length = segment_length
        self.normalization = normalization
        self.nonlinearity = nonlinearity
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.n_ensemble = n_ensemble
        self.max_time = max_time
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.on_oom = on_oom
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _network_shape(self) -> dict[str, Any]:
        # the data's sizes are unknown before fit: the smallest ones (one feature, one step)
        shape = {"n_features": 1, "n_targets": 1, "lookback": 1, "horizon": 1}
        return {**self._network_args(), **shape}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.regressor_tags.poor_score = True
        tags.target_tags.multi_output = True
        return tags

    def fit(
        self, X: Any, y: Any, *, callbacks: Sequence[Any] = (), resume: bool = False
    ) -> RNNRegressor:
        """Fit on windows ``X`` (``(n, lookback[, features])``) and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n, lookback) or (n, lookback, n_features)
        y : array-like of shape (n,) or (n, horizon)
        callbacks : sequence of callable, optional
            ``callback(record, network)`` after every epoch (see
            :func:`forecaster.training.loop.train`). Checked before any work: a list of callables
            that take those two arguments (``callbacks=print`` is refused: pass ``[print]``).
        resume : bool, default False
            Continue an interrupted fit from the last checkpoint in ``checkpoint_dir`` (same
            data and parameters; :class:`~forecaster.training.loop.CheckpointError` otherwise).

        Returns
        -------
        self

        Notes
        -----
        A fit is all or nothing: when it fails or is interrupted (e.g. a callback raising
        ``KeyboardInterrupt``), the estimator keeps the fitted state it had before, never
        the old network with the new data's scaling. Parameters changed after a fit take
        effect at the next fit. The networks of fits in threads of one process train one at
        a time (see ``random_state`` of :class:`RNNForecaster`).
        """
        with self._fitting() as params:
            return self._fit(X, y, callbacks=callbacks, resume=resume, params=params)

    def _fit(
        self, X: Any, y: Any, *, callbacks: Any, resume: Any, params: dict[str, Any]
    ) -> RNNRegressor:
        self.validate_params()
        callbacks = check_callbacks(callbacks)
        self._begin_fit(resume)
        device = self._device()
        X, y = _checked_arrays(self, X, y)
        X3 = _as_3d(X)
        tracker = _fit_tracker(self, (X, y))
        if tracker is not None:
            callbacks = [tracker.on_epoch, *callbacks]
        y = np.asarray(y, dtype=np.float32)
        y2 = y.reshape(len(y), -1)
        n = len(X3)
        n_val = math.floor(n * float(self.validation_fraction))
        if n - n_val < 1:
            n_val = 0
        n_fit = n - n_val
        x_mean = X3[:n_fit].mean(axis=(0, 1)).astype(np.float64)
        x_scale = _safe_std(X3[:n_fit].std(axis=(0, 1)))
        y_mean = float(y2[:n_fit].mean())
        y_scale = float(_safe_std(np.array([y2[:n_fit].std()]))[0])
        shape = {
            "n_features": X3.shape[2],
            "n_targets": 1,
            "n_future": 0,
            "lookback": X3.shape[1],
            "horizon": y2.shape[1],
        }
        self._check_training_memory(shape, n_fit, device)
        device = distributed.init_from_env(device)
        Xs = torch.from_numpy(_scaled(X3, x_mean, x_scale)).to(device)
        ys = torch.from_numpy(((y2 - y_mean) / y_scale).astype(np.float32))
        ys = ys.unsqueeze(-1).to(device)
        seed = self._start_checkpoints(resume, self._seed(), digest_arrays(X3, y2))
        batch_size = int(self.batch_size)
        rank_batch = _rank_batch_size(batch_size)
        val_rows = distributed.shard(np.arange(n_fit, n), equal=False)  # this rank's share

        def val_source(epoch: int):
            for lo in range(0, len(val_rows), 4 * batch_size):
                rows = torch.from_numpy(val_rows[lo : lo + 4 * batch_size]).to(device)
                yield Xs[rows], None, ys[rows]

        def sources(member_seed: int):
            def train_source(epoch: int):
                generator = torch.Generator().manual_seed(member_seed + epoch)
                order = torch.randperm(n_fit, generator=generator)
                order = torch.from_numpy(distributed.shard(order.numpy())).to(device)
                for lo in range(0, len(order), rank_batch):
                    rows = order[lo : lo + rank_batch]
                    yield Xs[rows], None, ys[rows]

            return train_source, val_source if n_val > 0 else None

        network, history = self._build_and_train(
            shape=shape,
            sources=sources,
            steps_per_epoch=_steps_per_epoch(n_fit, batch_size),
            device=device,
            seed=seed,
            callbacks=callbacks,
        )
        # the fitted state, set only now that training succeeded (see _fitting)
        self.network_, self.history_ = network, history
        self.n_channels_, self.lookback_ = X3.shape[2], X3.shape[1]
        self.y_ndim_, self.horizon_ = y.ndim, y2.shape[1]
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        self.y_mean_, self.y_scale_ = y_mean, y_scale
        self.fitted_params_ = params
        if tracker is not None:
            tracker.finish(self)
        return self

    def _scale_x(self, X3: np.ndarray) -> np.ndarray:
        return _scaled(X3, self.x_mean_, self.x_scale_)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of shape ``(n,)`` (when fitted on 1-D ``y``) or ``(n, horizon)``.

        ``X`` must have the window length and the number of features per step of ``fit``;
        otherwise a :class:`~forecaster.exceptions.DataValidationError` says which.
        """
        self._check_fitted("predict with")
        X = _checked_arrays(self, X)
        X3 = _as_3d(X)
        if X3.shape[1] != self.lookback_:
            raise DataValidationError(
                f"X has windows of length {X3.shape[1]}, but the model was fitted with "
                f"lookback {self.lookback_}."
            )
        if X3.shape[2] != self.n_channels_:
            raise DataValidationError(
                f"X has {X3.shape[2]} features per step, the model was fitted with "
                f"{self.n_channels_}. Pass X of shape (n_samples, {self.lookback_}, "
                f"{self.n_channels_}) with the features in the order used in fit."
            )
        device = self._device()
        network = self._network_on(device)
        xs = torch.from_numpy(self._scale_x(X3))
        out = predict_batched(network, xs, device=device, batch_size=PREDICT_BATCH)
        pred = out.numpy()[..., 0].astype(np.float64) * self.y_scale_ + self.y_mean_
        bad = ~np.isfinite(pred)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise DataValidationError(
                f"The predictions of {len(rows)} windows are not finite numbers (e.g. rows "
                f"{rows[:10].tolist()} of X): the network's output is not a number or beyond "
                "the float range. A model whose history_ shows NaN losses needs refitting "
                "(e.g. a lower lr); X far outside the values seen in fit can overflow too."
            )
        return pred[:, 0] if self.y_ndim_ == 1 else pred


_ARRAY_HINTS = (
    (
        ("nan", "infinity", "inf"),
        "X and y must hold finite numbers: drop or impute the windows with NaN or infinite "
        "values first, e.g. keep = np.isfinite(X).reshape(len(X), -1).all(axis=1).",
    ),
    (
        ("inconsistent numbers of samples",),
        "X and y need one row per window: X of shape (n_samples, lookback[, n_features]) and "
        "y of shape (n_samples,) or (n_samples, horizon).",
    ),
    (
        ("features, but",),
        "Pass windows of the length the model was fitted with (X.shape[1] is the lookback).",
    ),
    (
        ("sample",),
        "{method} needs at least {minimum} (samples).",
    ),
    (
        ("dim", "2d", "1d", "array-like", "shape"),
        "Expected X of shape (n_samples, lookback) or (n_samples, lookback, n_features) and y "
        "of shape (n_samples,) or (n_samples, horizon).",
    ),
    (
        ("convert", "dtype", "complex", "numeric", "sparse"),
        "X and y must be dense arrays of real numbers.",
    ),
)


class _ArrayTypeError(DataValidationError, TypeError):
    """A :class:`DataValidationError` that stays the ``TypeError`` scikit-learn raised (its
    estimator checks expect one for, e.g., a dict inside an object array)."""


def _checked_arrays(estimator: RNNRegressor, X: Any, *y: Any) -> Any:
    """scikit-learn's ``validate_data`` for fit (``y`` given) or predict, its ``ValueError`` and
    ``TypeError`` turned into a :class:`DataValidationError` (still a ``ValueError``, and
    still starting with scikit-learn's own words, which its estimator checks look for) that
    says which method, what was expected and how to fix it."""
    method = "fit" if y else "predict"  # fit passes y, even when it is None
    try:
        if not y:
            return validate_data(estimator, X, reset=False, allow_nd=True, dtype=np.float32)
        return validate_data(
            estimator,
            X,
            y[0],
            allow_nd=True,
            dtype=np.float32,
            multi_output=True,
            y_numeric=True,
            ensure_min_samples=2,
        )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataValidationError):
            raise
        text = " ".join(str(exc).split())
        if "contains NaN" in text:  # drop scikit-learn's advice to use another estimator
            text = text.split(". ")[0] + "."
        lowered = text.lower()
        hint = next(
            (fix for words, fix in _ARRAY_HINTS if any(w in lowered for w in words)),
            _ARRAY_HINTS[-2][1],
        )
        minimum = "2 windows" if method == "fit" else "1 window"
        hint = hint.format(method=method.capitalize(), minimum=minimum)
        kind = _ArrayTypeError if isinstance(exc, TypeError) else DataValidationError
        raise kind(f"{text} ({type(estimator).__name__}.{method}: {hint})") from exc


def _as_3d(X: np.ndarray) -> np.ndarray:
    if X.ndim == 2:
        return X[:, :, None]
    if X.ndim == 3:
        return X
    raise DataValidationError(
        f"X must have shape (n_samples, lookback) or (n_samples, lookback, n_features); got an "
        f"array with {X.ndim} dimensions."
    )


def _scaled(X3: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((X3 - mean) / scale).astype(np.float32)


def _safe_std(std: np.ndarray) -> np.ndarray:
    std = np.asarray(std, dtype=np.float64)
    return np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)

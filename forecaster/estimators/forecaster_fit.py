"""``fit`` of :class:`~forecaster.estimators.forecaster.RNNForecaster` (its
:class:`ForecasterFit`): the frame read once, the training panel and its target transform,
the static covariates, the model panel, the training and validation windows and the
per-series scaler, the networks' training (:mod:`forecaster.estimators.network_training`),
the fitted attributes and the validation check against the baselines, all or nothing.
"""

from __future__ import annotations

__all__ = ["ForecasterFit"]

from collections.abc import Callable
from typing import Any, Self

import numpy as np
import polars as pl
import torch

from forecaster.data.dtypes import training_frame
from forecaster.data.frames import column_tuple, frame_schema
from forecaster.data.panel import Panel
from forecaster.data.scaling import PanelScaler
from forecaster.data.windows import Windows
from forecaster.estimators.base import refuse_y
from forecaster.estimators.fitting import FitRun, check_fit_callbacks
from forecaster.estimators.sampling import (
    check_validation_size,
    panel_digest,
    steps_per_epoch,
    training_windows,
    validation_holdout,
    validation_sample,
    window_sources,
)
from forecaster.training import distributed


class ForecasterFit:
    """``fit`` of a frame estimator (a mixin of ``RNNForecaster``, which holds the parameters
    and gives the checks, panels, scaler and training it calls)."""

    # what RNNForecaster holds (parameters) and gives
    head: str
    time_col: str
    horizon: int
    batch_size: int
    random_state: int | None
    validation_size: int | float
    windows_per_epoch: int | None
    channel_independent: bool | None
    static_covariates: Any
    validate_params: Callable[[], None]
    _fitting: Callable[[], Any]  # a context manager yielding the fit's FitRun
    _begin_fit: Callable[[Any], None]
    _device: Callable[[], torch.device]
    _seed: Callable[[], int]
    _network_shape: Callable[[], dict[str, Any]]
    _check_training_memory: Callable[[dict[str, Any], int, torch.device], None]
    _start_checkpoints: Callable[[bool, int, str], int]
    _build_and_train: Callable[..., tuple[Any, list[dict[str, Any]]]]
    _read_fit_frame: Callable[[Any], Any]
    _training_panel: Callable[
        [Any], tuple[Panel, np.ndarray, np.ndarray | None, tuple[str, ...], int]
    ]
    _fit_statics: Callable[[Panel], None]
    _static_network_config: Callable[[], dict[str, Any]]
    _model_panel: Callable[..., Panel]
    _fit_scaler: Callable[[Panel, np.ndarray], PanelScaler]
    _check_baselines: Callable[[Panel, Windows, np.ndarray, Any], None]

    def fit(
        self, frame: pl.DataFrame | pl.LazyFrame, y: None = None, *, callbacks=(), resume=False
    ) -> Self:
        """Train on every series of a long frame.

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            Long format: id (optional), time, target(s), covariates (pandas: converted once).
        y : None
            Must be None (the targets are columns of ``frame``; scikit-learn passes None):
            any other value is refused, as it would be ignored.
        callbacks : sequence, optional
            Plain callables ``callback(record, network)``, called after every epoch (see
            :func:`forecaster.training.loop.train`), and fit callbacks: objects with some of
            the hooks ``on_fit_start(estimator, data)``, ``on_epoch_end(record, network)``,
            ``on_fit_end(estimator)``, ``on_fit_interrupted(estimator)`` and
            ``on_fit_error(estimator, exc)`` (see :mod:`forecaster.training.callbacks`). The
            callbacks of registered factories (e.g. after ``forecaster.tracking.autolog()``)
            come before these; nothing else is called (a fit inside an active MLflow run is
            not logged by itself). Checked before any work (``callbacks=print`` is refused).
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
        shape predictions (``target``, the other columns, ``lookback``, ``horizon``, ``freq``,
        ``missing``, ``scaling``, ``target_transform``, ``calendar``, ``baseline``) make
        ``predict``, ``score``, ``backtest`` and ``save`` refuse, naming them. Threads: see
        the concepts page (fits train one at a time; a fit refuses other threads' uses).
        """
        refuse_y(self, "fit", y)
        frame = training_frame(frame, self.time_col)  # pandas: converted once, pandas advice
        with distributed.quiet_other_ranks(), self._fitting() as run:
            return self._fit(frame, callbacks=callbacks, resume=resume, run=run)

    def _fit(self, frame: Any, *, callbacks: Any, resume: Any, run: FitRun) -> Self:
        self.validate_params()
        check_validation_size(self.validation_size, int(self.horizon))  # not at load: old models
        callbacks = check_fit_callbacks(callbacks)
        self._begin_fit(resume)
        schema = frame_schema(frame)  # a lazy source that cannot be read fails here
        device = self._device()
        self._check_training_memory(self._network_shape(), 1, device)  # before reading data
        frame = self._read_fit_frame(frame)  # once: the hooks (tracking's fingerprint) too
        epoch_callbacks = run.start(self, frame, callbacks)
        device = distributed.init_from_env(device)
        raw, fit_rows, lambdas, calendar, lookback = self._training_panel(frame)
        self.freq_ = raw.freq  # before the network is built: segment_length="auto" reads it
        self._fit_statics(raw)  # static_encoding_ (put back as it was if the fit fails)
        panel = self._model_panel(raw, calendar, lambdas)
        holdout = validation_holdout(self.validation_size, raw, int(self.horizon))
        train_w, val_w = training_windows(panel, self, holdout, lookback)
        scaler = self._fit_scaler(panel, fit_rows)
        seed = self._start_checkpoints(resume, self._seed(), panel_digest(panel))
        batch_size, per_epoch = int(self.batch_size), self.windows_per_epoch
        val_w = validation_sample(val_w, per_epoch, None if self.random_state is None else seed)
        sources = window_sources(
            train_w,
            val_w,
            batch_size=batch_size,
            per_epoch=per_epoch,
            device=device,
            scaling=scaler.tensors(device),
        )
        n_train = len(train_w) if per_epoch is None else min(per_epoch, len(train_w))
        shape = {
            **self._static_network_config(),
            "n_features": panel.n_features - len(panel.static_columns),
            "n_targets": panel.n_targets,
            "n_future": panel.n_future,
            "lookback": lookback,
            "horizon": int(self.horizon),
            "channel_independent": self.head == "segment" or bool(self.channel_independent),
        }
        self._check_training_memory(shape, n_train, device)
        network, history = self._build_and_train(
            shape=shape,
            sources=sources,
            steps_per_epoch=steps_per_epoch(n_train, batch_size),
            device=device,
            seed=seed,
            callbacks=epoch_callbacks,
        )
        self.network_, self.device_ = network, str(device)
        self.lookback_ = lookback
        self.scaler_ = scaler
        self.target_lambdas_ = lambdas
        self.calendar_ = calendar
        self.keys_ = panel.keys
        self.train_end_ = raw.time.gather(raw.offsets[1:] - 1)
        self.history_ = history
        names = [c for c in (raw.id_col, raw.time_col) if c] + raw.columns
        names += list(column_tuple(self.static_covariates))
        self.schema_ = {name: str(schema[name]) for name in names}
        self.n_train_windows_ = len(train_w)
        self.n_val_windows_ = len(val_w)
        self._check_baselines(raw, val_w, fit_rows, frame)
        self.fitted_params_ = run.params
        run.end(self)
        return self

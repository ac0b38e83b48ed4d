"""The array estimator: :class:`RNNRegressor`, already-windowed arrays in and out, with the full
scikit-learn estimator contract (tested with ``sklearn.utils.estimator_checks``)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin, clone

from forecaster._busy import uses_fitted_state
from forecaster._hashing import digest_arrays
from forecaster._validation import ONE_LEVEL
from forecaster.data.frames import counted
from forecaster.estimators.arrays import as_3d, checked_arrays, moments, scaled, y_moments
from forecaster.estimators.base import PREDICT_BATCH, RecurrentEstimator
from forecaster.estimators.fitting import FitRun, check_fit_callbacks
from forecaster.estimators.intervals import order_statistic
from forecaster.estimators.regressor_state import RegressorState
from forecaster.estimators.sampling import epoch_seed, rank_batch_size, steps_per_epoch
from forecaster.exceptions import DataValidationError
from forecaster.persistence import register_model_class
from forecaster.training import distributed, predict_batched

__all__ = ["RNNRegressor", "check_fit_arrays"]


@register_model_class  # forecaster.load builds it by name
class RNNRegressor(RegressorMixin, RegressorState, RecurrentEstimator):
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
        ``"segment"`` and ``"recursive"`` feed their forecast back as the target's feature
        (``target_feature``).
    hidden_size : int, default 64
    num_layers : int, default 1
    dropout : float, default 0.0
    segment_length : int or "auto", default "auto"
        Segment length of the ``"segment"`` head; ``"auto"`` as in
        :class:`~forecaster.estimators.forecaster.RNNForecaster` (from ``X``'s window length).
        ``fit`` refuses a number with another head, which would ignore it.
    normalization : {"none", "last", "revin"}, default "none"
        Per-window normalization of each feature: ``"last"`` subtracts the window's last
        value, ``"revin"`` standardises the window (with a learnt affine); the output is
        mapped back with the statistics of the target's feature (``target_feature``).
    target_feature : int, default 0
        The index of the forecast series among ``X``'s features (its last axis): the
        feature ``y`` continues. ``normalization="last"`` and ``"revin"`` add its window
        statistics back to the output, and the ``"segment"`` and ``"recursive"`` heads feed
        their forecast back in its place, so another index than the target's gives wrong
        forecasts. ``fit`` refuses an index beyond the features of ``X``. The features are
        given to the network target first (the others in their order); ``predict`` takes
        ``X`` in the order of ``fit``. A search space of :func:`~forecaster.tuning.tune` may
        not sample it (a fact of the data, not a setting).
    nonlinearity : {"tanh", "relu"}, default "tanh"
    loss : {"mse", "mae", "huber"}, default "mse"
    lr : float, default 1e-3
    weight_decay : float, default 0.0
    batch_size : int, default 64
    max_epochs : int, default 100
    patience : int or None, default 10
    grad_clip : float or None, default 1.0
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}, default "none"
        ``"cosine"``: annealed over ``max_epochs``; ``"plateau"``: halved after 3 epochs
        without improvement (sooner below ``patience=4``, so that the halved rate trains
        before early stopping); ``"onecycle"``: one cycle over the fit.
    ema_decay : float, "auto" or None, default None
        Validate, early-stop on and keep an exponential moving average of the weights
        (Polyak, after every batch; batch n decays by min(ema_decay, (1 + n) / (10 + n)), so
        0.99 acts from about 900 batches, 0.999 from 9,000) instead of the last batch's.
        ``"auto"``: 0.99 when an epoch has at least 25 batches, else None (``ema_decay_``).
    validation_fraction : float, default 0.1
        0 disables early stopping.
    n_ensemble : int, default 1
        Number of networks (seeds ``random_state + k``) whose predictions are averaged (fewer,
        with a warning, when ``max_time`` runs out first or a callback raises
        ``StopTraining``; see ``n_members_`` and ``stopped_by_``).
    max_time : float or None, default None
    checkpoint_dir : str or None, default None
        Checkpoint folder for ``fit(X, y, resume=True)`` (see :class:`RNNForecaster`).
    checkpoint_every : int, default 1
        Epochs between checkpoints (another value without ``checkpoint_dir`` is refused).
    on_oom : {"raise", "split"}, default "raise"
        As in :class:`RNNForecaster`: refused with a CPU ``device``, and warned about in
        ``fit`` with ``device="auto"`` on a machine without a GPU.
    device : str or torch.device, default "auto"
        A ``torch.device`` is kept as given (``get_params``); it trains, and is saved, as its text
        (``torch.device("cpu")``: ``"cpu"``).
    random_state : int or None, default None
        A seed from 0 to 2**32 - 1: same seed, same predictions on CPU at the same torch
        thread count (see ``random_state`` of :class:`RNNForecaster`).
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
    y_mean_, y_scale_ : float or numpy.ndarray
        The mean and scale ``y`` is standardised by: floats for a 1-D ``y``, arrays of shape
        ``(horizon,)`` for a 2-D ``y``, each output by its own (a model saved when one
        float served all outputs loads with it and predicts as it did).
    history_ : list of dict
    stopped_by_ : str or None
        What ended training (see :attr:`RecurrentEstimator.stopped_by_`; not saved).
    ema_decay_ : float or None
        The weight-average decay used (``ema_decay="auto"`` resolved; :meth:`resolved_params`
        gathers what ``fit`` resolved).
    device_ : str
        The device the network was trained on (``device="auto"`` resolved, e.g. ``"cpu"``;
        not saved: None after :func:`forecaster.load`).
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

    With a covariate first and the series forecast second, ``target_feature=1`` says so:

    >>> level = 100 + np.cumsum(rng.normal(size=80))  # the series, its next value is y
    >>> other = rng.normal(size=80)  # a covariate
    >>> X = np.stack([np.stack([other[i:i + 12], level[i:i + 12]], -1) for i in range(68)])
    >>> y = level[12:80]
    >>> model = RNNRegressor(normalization="last", target_feature=1, hidden_size=8,
    ...                      max_epochs=2, random_state=0).fit(X, y)
    >>> bool(np.abs(model.predict(X) - y).mean() < 5)  # near the level, not the covariate
    True
    """

    _VALIDATION_PARAM = "validation_fraction"
    _PREDICTION_PARAMS = ("target_feature",)

    def __init__(
        self,
        *,
        cell: str = "lstm",
        head: str = "direct",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        segment_length: int | str = "auto",
        normalization: str = "none",
        target_feature: int = 0,
        nonlinearity: str = "tanh",
        loss: str = "mse",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int | None = 10,
        grad_clip: float | None = 1.0,
        lr_schedule: str = "none",
        ema_decay: float | str | None = None,
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
        self.target_feature = target_feature
        self.nonlinearity = nonlinearity
        self.loss = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.ema_decay = ema_decay
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
        return self._network_config(shape)

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
        callbacks : sequence, optional
            Epoch callables and fit callbacks, as for :meth:`RNNForecaster.fit
            <forecaster.estimators.forecaster.RNNForecaster.fit>` (``on_fit_start`` gets
            ``(X, y)`` as its data).
        resume : bool, default False
            Continue an interrupted fit from the last checkpoint in ``checkpoint_dir``.

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
        with distributed.quiet_other_ranks(), self._fitting() as run:
            return self._fit(X, y, callbacks=callbacks, resume=resume, run=run)

    def _fit(self, X: Any, y: Any, *, callbacks: Any, resume: Any, run: FitRun) -> RNNRegressor:
        self.validate_params()
        callbacks = check_fit_callbacks(callbacks)
        self._begin_fit(resume)
        device = self._device()
        X, y = checked_arrays(self, X, y)
        X3 = self._target_first(as_3d(X))
        epoch_callbacks = run.start(self, (X, y), callbacks)
        y2 = y.reshape(len(y), -1)
        n = len(X3)
        n_val = math.floor(n * float(self.validation_fraction))
        if n - n_val < 1:
            n_val = 0
        n_fit = n - n_val
        x_mean, x_scale = moments(X3[:n_fit], per_channel=True, inputs=True)
        y_mean, y_scale = y_moments(y2[:n_fit], per_output=y.ndim == 2)
        shape = {
            "n_features": X3.shape[2],
            "n_targets": 1,
            "n_future": 0,
            "lookback": X3.shape[1],
            "horizon": y2.shape[1],
        }
        self._check_training_memory(shape, n_fit, device)
        device = distributed.init_from_env(device)
        Xs = torch.from_numpy(scaled(X3, x_mean, x_scale)).to(device)
        ys = torch.from_numpy(scaled(y2, y_mean, y_scale)).unsqueeze(-1).to(device)
        seed = self._start_checkpoints(resume, self._seed(), digest_arrays(X3, y2))
        batch_size = int(self.batch_size)
        rank_batch = rank_batch_size(batch_size)
        val_rows = distributed.shard(np.arange(n_fit, n), equal=False)  # this rank's share

        def val_source(epoch: int):
            for lo in range(0, len(val_rows), 4 * batch_size):
                rows = torch.from_numpy(val_rows[lo : lo + 4 * batch_size]).to(device)
                yield Xs[rows], None, ys[rows]

        def sources(member_seed: int, member: int):
            def train_source(epoch: int):
                generator = torch.Generator().manual_seed(epoch_seed(member_seed, epoch, member))
                order = torch.randperm(n_fit, generator=generator)
                order = torch.from_numpy(distributed.shard(order.numpy())).to(device)
                for lo in range(0, len(order), rank_batch):
                    rows = order[lo : lo + rank_batch]
                    yield Xs[rows], None, ys[rows]

            return train_source, val_source if n_val > 0 else None

        network, history = self._build_and_train(
            shape=shape,
            sources=sources,
            steps_per_epoch=steps_per_epoch(n_fit, batch_size),
            device=device,
            seed=seed,
            callbacks=epoch_callbacks,
        )
        # the fitted state, set only now that training succeeded (see _fitting)
        self.network_, self.history_, self.device_ = network, history, str(device)
        self.n_channels_, self.lookback_ = X3.shape[2], X3.shape[1]
        self.y_ndim_, self.horizon_ = y.ndim, y2.shape[1]
        self.x_mean_, self.x_scale_ = x_mean, x_scale
        self.y_mean_, self.y_scale_ = y_mean, y_scale
        self.fitted_params_ = run.params
        run.end(self)
        return self

    def _target_first(self, X3: np.ndarray) -> np.ndarray:
        """``X3`` (``(n, lookback, n_features)``) with the feature ``target_feature`` first
        and the others after it in their order: the network's normalization and heads take
        the first feature for the target."""
        index, n_features = int(self.target_feature), X3.shape[2]
        self._check_target_feature(n_features)
        if index == 0:
            return X3
        return X3[:, :, [index, *range(index), *range(index + 1, n_features)]]

    def _check_target_feature(self, n_features: int) -> None:
        """Refuse a ``target_feature`` that is no index of ``X``'s ``n_features`` features
        (one that is no integer is the parameter table's to refuse: ``validate_params``)."""
        index = self.target_feature
        if (
            isinstance(index, numbers.Integral)
            and not isinstance(index, bool)
            and (index >= n_features)
        ):
            raise DataValidationError(
                f"target_feature={index} is the index of the target among the features of X "
                f"(its last axis), but X has {n_features} feature(s) per step: an index from "
                f"0 to {n_features - 1}. Pass the index of the feature that y continues, e.g. "
                "target_feature=0 when it is the first."
            )

    def _scale_x(self, X3: np.ndarray) -> np.ndarray:
        return scaled(X3, self.x_mean_, self.x_scale_)

    @uses_fitted_state("predict with")
    def predict(self, X: Any) -> np.ndarray:
        """Predictions of shape ``(n,)`` (when fitted on 1-D ``y``) or ``(n, horizon)``.

        Parameters
        ----------
        X : array-like of shape (n, lookback) or (n, lookback, n_features)
            Windows of the window length and the number of features per step of ``fit``
            (otherwise a :class:`~forecaster.exceptions.DataValidationError` says which).

        Returns
        -------
        numpy.ndarray
        """
        self.check_fitted("predict with")
        X = checked_arrays(self, X)
        X3 = as_3d(X)
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
        xs = torch.from_numpy(self._scale_x(self._target_first(X3)))
        out = predict_batched(network, xs, device=device, batch_size=PREDICT_BATCH)
        pred = out.numpy()[..., 0].astype(np.float64) * self.y_scale_ + self.y_mean_
        bad = ~np.isfinite(pred)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise DataValidationError(
                f"The predictions of {counted(len(rows), 'window', 'windows')} are not finite "
                f"numbers (e.g. rows "
                f"{rows[:10].tolist()} of X): the network's output is not a number or beyond "
                "the float range. A model whose history_ shows NaN losses needs refitting "
                "(e.g. a lower lr); X far outside the values seen in fit can overflow too."
            )
        return pred[:, 0] if self.y_ndim_ == 1 else pred

    def _check_relations(self) -> None:
        if self.loss == "quantile":
            raise DataValidationError(
                "RNNRegressor does not train quantiles: loss='quantile' is for RNNForecaster. "
                "Fit a point loss and get intervals with model.calibrate(X_cal, y_cal) and "
                "model.predict_interval(X, level=80)."
            )

    @uses_fitted_state("calibrate")
    def calibrate(self, X: Any, y: Any) -> RNNRegressor:
        """Split-conformal calibration on held-out windows ``X``, ``y`` (not used in fit):
        keeps the absolute residuals per output step in ``conformal_`` for
        :meth:`predict_interval`.

        Parameters
        ----------
        X : array-like
            Calibration windows, as :meth:`predict` takes them.
        y : array-like
            Their targets, shaped like ``y`` in ``fit`` (finite numbers).

        Returns
        -------
        self
        """
        pred = self.predict(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != pred.shape:
            raise DataValidationError(
                f"calibrate: y has shape {y.shape}, the predictions of X {pred.shape}. Pass the "
                "targets of the windows X, shaped like y in fit."
            )
        if not np.isfinite(y).all():
            raise DataValidationError("calibrate: y must hold finite numbers.")
        self.conformal_ = np.abs(y - pred).reshape(len(y), -1)
        return self

    @uses_fitted_state("predict with")
    def predict_interval(self, X: Any, level: float = 80) -> tuple[np.ndarray, np.ndarray]:
        """The split-conformal interval ``(lo, hi)`` of ``level`` per cent, arrays shaped
        like ``predict(X)``: ``predict(X) -+ s``, ``s`` the ``ceil((n + 1) level / 100)``-th
        smallest absolute calibration residual at that output step (:meth:`calibrate`).

        Parameters
        ----------
        X : array-like
            Windows, as :meth:`predict` takes them.
        level : float, default 80
            The interval's coverage in per cent, one number in (1, 100).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``lo`` and ``hi``.

        Raises
        ------
        DataValidationError
            When ``level`` is not one number in (1, 100) (checked by the rule of one level,
            ``forecaster._validation.ONE_LEVEL``; a list of several levels is refused: the
            method returns one pair), or the model is not calibrated.
        """
        if isinstance(level, list | tuple | np.ndarray) and np.ndim(level) > 0:  # [80]: 80
            if len(level) != 1:
                raise DataValidationError(
                    f"predict_interval takes one level (it returns one (lo, hi) pair), got "
                    f"level={level!r}. Call it once per level, e.g. "
                    "[model.predict_interval(X, level=v) for v in (80, 95)]."
                )
            level = level[0]
        level = ONE_LEVEL.check("level", level)
        if "conformal_" not in self.__dict__:
            raise DataValidationError(
                "predict_interval needs a calibration: call model.calibrate(X_cal, y_cal) "
                "first with windows held out from fit."
            )
        pred = self.predict(X)
        half = order_statistic(
            self.conformal_,
            level,
            what=f"level={level:g}",
            fix="Calibrate on more windows held out from fit: model.calibrate(X_cal, y_cal).",
        )
        half = half[0] if pred.ndim == 1 else half
        return pred - half, pred + half


def check_fit_arrays(estimator: RNNRegressor, X: Any, y: Any) -> None:
    """Refuse (:class:`DataValidationError`) the ``(X, y)`` that ``estimator.fit`` would
    refuse, checked on a clone (``estimator`` keeps no state): for a check made once before
    many fits, as ``tune`` does before its trials: the arrays, and ``target_feature`` among
    the features of ``X``."""
    X, _ = checked_arrays(clone(estimator), X, y)
    estimator._check_target_feature(as_3d(X).shape[2])

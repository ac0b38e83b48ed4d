"""What both estimators share: parameter checks, the fitted-state checks and the fit's
all-or-nothing; the training of one network or an ensemble under the fit lock is their
:class:`~forecaster.estimators.network_training.NetworkTraining`.

Parameters are plain values, stored by ``__init__`` and validated in ``fit`` (and by the public
``validate_params()``) through the one table of rules in :mod:`forecaster._validation`, then
their relations and the memory the network would need, before anything is allocated. Fitted
state lives in attributes ending in ``_``; the fitted network is moved to the CPU at the end of
``fit``. A fit calls its callbacks (:mod:`forecaster.training.callbacks`): the user's and
those of the registered factories.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from forecaster._busy import fitting, refuse_while_fitting
from forecaster._validation import PARAMETERS, check_params, describe_value
from forecaster.data.seasons import steps_per_day
from forecaster.estimators.fitting import FitRun
from forecaster.estimators.network_training import (  # the first two: importable here as before
    FIT_LOCK,
    RESUME_FREE_PARAMS,
    NetworkTraining,
)
from forecaster.estimators.unused import on_oom_without_gpu, unused_parameter
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    NotFittedError,
    warn_at_caller,
)
from forecaster.nn.checks import check_memory, check_network_config
from forecaster.nn.config import auto_segment_length
from forecaster.nn.ensemble import EnsembleNet
from forecaster.nn.recurrent import RecurrentNet
from forecaster.persistence.writer import save as save_model
from forecaster.training import resolve_device

__all__ = [
    "ENSEMBLE_NAMES",
    "FIT_LOCK",
    "PREDICT_BATCH",
    "RESUME_FREE_PARAMS",
    "RecurrentEstimator",
    "is_fitted_attribute",
    "refuse_y",
    "same_param",
]

PREDICT_BATCH = 4096
"""Windows per network call in ``predict`` (and the smallest chunk of a backtest)."""


# ------------------------------------------------------------------------------------------
# parameter checks (run in fit, never in __init__)
# ------------------------------------------------------------------------------------------

ENSEMBLE_NAMES = {"n_members": "n_ensemble"}


class RecurrentEstimator(NetworkTraining, BaseEstimator):
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
        >>> from forecaster.estimators.forecaster import RNNForecaster
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
            names=ENSEMBLE_NAMES,
        )

    _PREDICTION_PARAMS: tuple[str, ...] = ()
    """Parameters that shape what ``predict``, ``score``, ``backtest`` and ``save`` do with a
    fitted model (columns, window sizes, frequency, transforms): changed since fit, those
    refuse (see :meth:`check_fitted`)."""

    _VALIDATION_PARAM = "validation_size"
    """The parameter whose 0 leaves no validation split (``patience`` then has nothing to
    stop on)."""

    _FIT_CALL = "fit(X, y)"
    """How the error of an unfitted estimator says to fit it."""

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` has succeeded (scikit-learn's ``check_is_fitted`` asks this)."""
        return hasattr(self, "network_")

    def __getstate__(self) -> dict[str, Any]:
        """The state ``pickle`` and ``copy.deepcopy`` copy: refused while another thread fits
        the estimator (its fitted attributes are half replaced there; :mod:`forecaster._busy`)."""
        refuse_while_fitting(self, "pickle or copy")
        return super().__getstate__()  # type: ignore[no-any-return]

    def check_fitted(self, action: str) -> None:
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
        refuse_while_fitting(self, action)  # its fitted attributes are being replaced there
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {name} is not fitted yet. Call {self._FIT_CALL} first.")
        fitted = self.__dict__.get("fitted_params_")
        if fitted is None:  # fitted by an older version: nothing to compare with
            return
        current = self.get_params(deep=False)
        changed = [
            k
            for k in self._PREDICTION_PARAMS
            if k in fitted and not same_param(current.get(k), fitted[k])
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

    def fitted_params(self) -> dict[str, Any]:
        """The parameters the fitted model was trained with, run settings (device, progress,
        checkpoint folder, ...) as they are now: what :func:`forecaster.save` writes."""
        current = self.get_params(deep=False)
        fitted = self.__dict__.get("fitted_params_")
        if fitted is None:
            return current
        run = {k: current[k] for k in RESUME_FREE_PARAMS if k in current}
        return {**copy.deepcopy(fitted), **run}

    def resolved_params(self) -> dict[str, Any]:
        """What ``fit`` chose for the parameters it resolves on the data or the machine, named as
        the fitted attributes, JSON-able (only those it has; empty before ``fit``): ``lookback_``,
        ``freq_`` (text), ``target_transform_``, ``ema_decay_`` (None: no weight averaging),
        ``calendar_`` (a list), ``device_`` (None: loaded), ``baseline_`` (None: the network
        alone), and the network's ``linear_skip_`` and ``segment_length_`` (``head="segment"``
        only): keys only, no attributes of the estimator (``network_.linear_skip``,
        ``network_.segment_length``).
        MLflow runs log them as params, pipeline runs write them into ``summary.json``.

        Examples
        --------
        >>> from forecaster import RNNForecaster
        >>> RNNForecaster(target="y").resolved_params()
        {}
        """
        fitted = self.__dict__
        names = ("lookback_", "freq_", "target_transform_", "ema_decay_", "calendar_", "device_")
        chosen: dict[str, Any] = {name: fitted[name] for name in names if name in fitted}
        for name, plain in (("freq_", str), ("calendar_", list)):  # JSON-able
            if chosen.get(name) is not None:
                chosen[name] = plain(chosen[name])
        network = fitted.get("network_")
        if network is not None:
            if hasattr(network, "linear_skip"):
                chosen["linear_skip_"] = bool(network.linear_skip)
            if network.head == "segment":
                chosen["segment_length_"] = int(network.segment_length)
        if "baseline_" in fitted:
            blend = fitted["baseline_"]
            chosen["baseline_"] = None if blend is None else blend.config()
        return chosen

    @contextlib.contextmanager
    def _fitting(self) -> Iterator[FitRun]:
        """Make a fit all or nothing: when it fails or is interrupted (an error, a callback
        raising ``KeyboardInterrupt``), the fitted attributes are put back as they were before
        it (the earlier model, or none), never a mix of two fits, then the callbacks'
        ``on_fit_error`` hooks are called; an interrupt once training completed (in
        ``on_fit_end``, e.g. while the fit is logged) keeps the new fit. Yields the fit's
        :class:`FitRun`, with a copy of the parameters the fit starts with (recorded as
        ``fitted_params_`` with the other fitted attributes, before ``on_fit_end``). A fit
        starts from no fitted attributes, as scikit-learn's do: what an earlier model had and
        this fit does not set (``conformal_`` of a ``calibrate``) does not survive it.

        The fit first waits for the uses of the estimator in flight in other threads, and
        refuses theirs until it ends (:mod:`forecaster._busy`)."""
        with fitting(self):
            yield from self._fitting_alone()

    def _fitting_alone(self) -> Iterator[FitRun]:
        """The body of :meth:`_fitting` (no other thread uses the estimator meanwhile)."""
        before = {k: v for k, v in vars(self).items() if is_fitted_attribute(k)}
        run = FitRun(copy.deepcopy(self.get_params(deep=False)))
        try:
            for key in before:
                delattr(self, key)
            yield run
        except BaseException as exc:
            if run.trained and isinstance(exc, KeyboardInterrupt):
                raise  # training completed: the estimator is fitted (see FitRun.end)
            for key in [k for k in vars(self) if is_fitted_attribute(k)]:
                delattr(self, key)
            for key, value in before.items():
                setattr(self, key, value)
            run.fail(self, exc)
            raise

    def _check_columns(self, backtests: bool = False) -> None:
        """The column parameters (frame estimators); ``backtests``: also what backtests refuse."""

    def _check_relations(self) -> None:
        """Checks of one estimator that need several parameters (subclasses)."""

    def _network_shape(self) -> dict[str, Any]:
        """The network arguments, with the smallest data-dependent sizes the parameters allow
        (the real ones are known in ``fit``)."""
        raise NotImplementedError

    def _network_config(self, shape: dict[str, Any]) -> dict[str, Any]:
        """The network's arguments: ``shape`` (the data's sizes, see :meth:`_build_and_train`)
        and the estimator's parameters, ``"auto"`` ones resolved for ``shape``'s lookback."""
        return {**shape, **self._network_args(int(shape["lookback"]))}

    def _network_args(self, lookback: int) -> dict[str, Any]:
        segment_length = self.segment_length
        if segment_length == "auto":  # checked: "auto" or an int; a day of the fit's steps
            freq = vars(self).get("freq_")  # set by a forecaster's fit before the network
            segment_length = auto_segment_length(
                lookback, 1 if freq is None else steps_per_day(freq)
            )
        return {
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "head": self.head,
            "nonlinearity": self.nonlinearity,
            "segment_length": segment_length,
            "normalization": self.normalization,
        }

    def _device(self) -> torch.device:
        """The device to fit or predict on; an unusable one raises DataValidationError."""
        return resolve_device(self.device)  # the checks and their messages

    def _check_training_memory(
        self, shape: dict[str, Any], n_windows: int, device: torch.device
    ) -> None:
        """Refuse a fit whose network and training batch (``batch_size`` windows, at most
        ``n_windows``) would not fit in ``device``'s memory, before building anything."""
        config = check_network_config(self._network_config(shape))
        batch = max(1, min(int(self.batch_size), int(n_windows)))
        check_memory(
            config,
            n_members=int(self.n_ensemble),
            batch_size=batch,
            device=device,
            names=ENSEMBLE_NAMES,
        )

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31))
        return int(self.random_state)

    def _begin_fit(self, resume: Any) -> None:
        """Check ``fit(..., resume=...)`` before any work."""
        self._checkpoints = None
        if not isinstance(resume, bool):
            raise DataValidationError(f"resume must be True or False, got {resume!r}.")
        if resume and self.checkpoint_dir is None:
            raise DataValidationError(
                "resume=True needs checkpoint_dir, the folder the interrupted fit wrote its "
                f"checkpoints to, e.g. {type(self).__name__}(..., checkpoint_dir='checkpoints/"
                "run1'). Fit without resume=True to start from scratch."
            )
        self.check_used_params()
        no_gpu = on_oom_without_gpu(self)  # device='auto' on this machine: warned, not refused
        if no_gpu is not None:
            warn_at_caller(no_gpu, ForecasterWarning)

    def check_used_params(self) -> None:
        """Refuse (in ``fit``, and in a pipeline spec's check) a parameter set away from its
        default that the other parameters leave unused: it would be ignored without a word
        (:mod:`forecaster.estimators.unused`), or columns its backtests would refuse (frame
        estimators). ``load`` does not ask, so a folder saved before a rule still loads.

        Raises
        ------
        DataValidationError
            Naming both parameters and the fix; or the column and how to rename it.
        """
        problem = unused_parameter(self, self._VALIDATION_PARAM)
        if problem is not None:
            raise DataValidationError(problem)
        self._check_columns(backtests=True)

    def save(
        self, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the fitted estimator to the directory ``path`` (see :func:`forecaster.save`;
        ``provenance``: how its data were made, recorded with it)."""
        return save_model(self, path, provenance=provenance)

    def _network_on(self, device: torch.device) -> RecurrentNet | EnsembleNet:
        """The fitted network on ``device`` for inference (a copy off the CPU; ``network_``
        itself always stays on the CPU)."""
        if device.type == "cpu":
            return self.network_.eval()
        return copy.deepcopy(self.network_).to(device).eval()


def is_fitted_attribute(name: str) -> bool:
    """Whether ``name`` is a fitted attribute (scikit-learn's convention: ``name_``)."""
    return name.endswith("_") and not name.startswith("_")


def same_param(a: Any, b: Any) -> bool:
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


def refuse_y(estimator: Any, method: str, y: Any) -> None:
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

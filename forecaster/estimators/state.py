"""What a fitted estimator saves and how it is rebuilt: the estimators' side of
:mod:`forecaster.persistence`.

:class:`ForecasterState` (for :class:`~forecaster.estimators.forecaster.RNNForecaster` and its
cell aliases) and :class:`~forecaster.estimators.regressor_state.RegressorState` (for
:class:`~forecaster.estimators.regressor.RNNRegressor`), both on :class:`EstimatorState`, are
mixins that give an estimator class the methods :func:`forecaster.persistence.save` and
:func:`forecaster.persistence.load` call (see :mod:`forecaster.persistence.state`):
``_get_state``, ``_state_entries``, ``_state_layout`` and ``_from_state``. A new fitted
attribute is saved by adding it there (to ``_state_config`` / ``_state_arrays`` and
``_restore``); the folder format does not change.
"""

from __future__ import annotations

__all__ = ["EstimatorState", "ForecasterState"]

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._columns import temporary_names
from forecaster._validation import check
from forecaster.data.frames import SERIES_ID, column_tuple
from forecaster.data.frequency import Frequency
from forecaster.data.scaling import PanelScaler
from forecaster.data.statics import StaticEncoding
from forecaster.estimators.base import same_param
from forecaster.estimators.blend_state import baseline_config, restore_baseline
from forecaster.estimators.conformal_state import (
    conformal_config,
    restore_conformal,
)
from forecaster.exceptions import DataValidationError, NotFittedError
from forecaster.nn.checks import saved_network_config
from forecaster.nn.ensemble import network_from_config
from forecaster.persistence.format import (
    CONFIG,
    KEYS,
    MAX_INT,
    TRAIN_END,
    WEIGHTS,
    count,
    first_lines,
    is_int,
    names,
    short,
)
from forecaster.persistence.state import (
    ModelState,
    StateError,
    StateLayout,
    TensorSpec,
    tensor_specs,
)

_SHARED_WITH_NETWORK = (
    "lookback", "horizon", "cell", "hidden_size", "num_layers", "dropout", "head",
    "nonlinearity", "segment_length", "normalization",
)  # fmt: skip
"""Estimator parameters passed unchanged to the network: a saved model's must agree with it."""

_ARRAY_PARAMS = ("quantiles",)
"""Parameters whose rule (``Probabilities``) takes a NumPy array: saved as a JSON list (the
others refuse one; a run setting's is refused on save)."""

_SAVED_ONLY_WHEN_SET: dict[str, Any] = {
    "quantiles": None,
    "static_covariates": None,
    "linear_skip": False,
    "baseline": "none",  # the network alone
    "ema_decay": None,
    "target_feature": 0,  # RNNRegressor: the target is X's first feature
}
"""Parameters added after models were first saved, left out of a saved model that has the
value every model had before them (its files stay byte for byte those of older versions)."""


class EstimatorState:
    """What both estimators save: parameters, network, history, feature names (the base of
    :class:`ForecasterState` and of
    :class:`~forecaster.estimators.regressor_state.RegressorState`)."""

    _ENTRIES: frozenset[str] = frozenset()

    # -- saving -------------------------------------------------------------------------------
    def _get_state(self) -> ModelState:
        """The fitted estimator as a :class:`~forecaster.persistence.state.ModelState`.

        Raises
        ------
        NotFittedError
            When the estimator is not fitted.
        DataValidationError
            When a parameter that shapes predictions was changed since fit.
        """
        name = type(self).__name__
        if not hasattr(self, "network_"):
            raise NotFittedError(f"This {name} is not fitted yet; fit it before saving.")
        self.check_fitted("save")  # type: ignore[attr-defined]
        model = copy.copy(self)  # conformal_ read once (a calibrate in another thread swaps it)
        config: dict[str, Any] = {
            "network": model.network_.get_config(),
            "history": model.history_,  # type: ignore[attr-defined]
        }
        if hasattr(model, "feature_names_in_"):
            config["feature_names_in"] = [str(name) for name in model.feature_names_in_]
        val_loss = model.__dict__.get("val_loss_")
        if val_loss is not None and math.isfinite(val_loss):
            config["val_loss"] = float(val_loss)
        config.update(model._state_config())
        params = model.fitted_params()  # type: ignore[attr-defined]
        if "device" in params:  # a torch.device as its text (JSON)
            params["device"] = check("device", params["device"])
        if params.get("ema_decay") == "auto":  # the decay it chose
            config["ema_decay"] = model.ema_decay_  # type: ignore[attr-defined]
        for key in _ARRAY_PARAMS:  # a JSON list, as given (not the sorted tuple it checks to)
            if isinstance(params.get(key), np.ndarray):
                params[key] = params[key].tolist()
        for key, before in _SAVED_ONLY_WHEN_SET.items():
            if key in params and same_param(params[key], before):  # an array is no default
                del params[key]  # as before it existed: such a model's files stay the same
        return ModelState(
            estimator=name,
            params=params,
            config=config,
            arrays=model._state_arrays(),
            weights=dict(model.network_.state_dict()),
            keys=model._state_keys(),
        )

    def _state_config(self) -> dict[str, Any]:
        """The estimator's own ``config.json`` entries (JSON values)."""
        raise NotImplementedError

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays that grow with the data."""
        raise NotImplementedError

    def _state_keys(self) -> pl.DataFrame | None:
        return None

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def _state_entries(cls) -> frozenset[str]:
        """The ``config.json`` entries the state has (besides the format's own)."""
        return cls._ENTRIES

    @classmethod
    def _state_layout(cls, state: ModelState) -> StateLayout:
        """What the folder must hold for ``state``'s parameters and config (checked)."""
        estimator = cls._with_params(state.params)
        network = state.config["network"]
        if not isinstance(network, dict):
            raise StateError(f"the network configuration is {type(network).__name__}, not a dict")
        _check_consistent(estimator, state.config, network)
        arrays, keys_rows = estimator._expected_arrays(state.config)
        weights = _expected_weights(saved_network_config(network))
        return StateLayout(arrays=arrays, weights=weights, keys_rows=keys_rows)

    @classmethod
    def _from_state(cls, state: ModelState) -> Any:
        """The fitted estimator of a state read (and checked against
        :meth:`_state_layout`) by :func:`forecaster.persistence.load`."""
        estimator = cls._with_params(state.params)
        try:
            with torch.device("meta"):  # no random init: draws nothing from torch's generator
                network = network_from_config(saved_network_config(state.config["network"]))
            network.load_state_dict(state.weights, strict=True, assign=True)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise StateError(
                f"the weights in {WEIGHTS} do not match the network configuration in {CONFIG} "
                f"({first_lines(exc)})"
            ) from exc
        history = state.config.get("history", [])
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise StateError(f"the history in {CONFIG} is not a list of records")
        estimator.network_ = network.eval()
        estimator.stopped_by_ = estimator.device_ = None  # not saved: unknown
        estimator.history_ = history
        estimator.fitted_params_ = copy.deepcopy(estimator.get_params(deep=False))
        if "feature_names_in" in state.config:
            feature_names = names(state.config["feature_names_in"], "feature_names_in")
            estimator.feature_names_in_ = np.asarray(feature_names, dtype=object)
        estimator.ema_decay_ = _restore_ema_decay(estimator.ema_decay, state.config)
        estimator.val_loss_ = _restore_val_loss(state.config)
        estimator._restore(state)
        return estimator

    @classmethod
    def _with_params(cls, params: dict[str, Any]) -> Any:
        """The estimator with the saved parameters, validated (nothing allocated yet)."""
        try:
            estimator = cls(**params)
            validate = getattr(estimator, "validate_params", None)
            if validate is not None:
                validate()
        except (TypeError, ValueError, OverflowError) as exc:
            raise StateError(f"the parameters in {CONFIG} are invalid ({exc})") from exc
        return estimator

    def _expected_arrays(self, config: dict[str, Any]) -> tuple[dict[str, TensorSpec], int | None]:
        """Name -> (dtype, shape) of the fitted arrays, and the rows of the keys (or None)."""
        raise NotImplementedError

    def _restore(self, state: ModelState) -> None:
        """Set the estimator's own fitted attributes from the checked state."""
        raise NotImplementedError


class ForecasterState(EstimatorState):
    """The saved state of an :class:`~forecaster.estimators.forecaster.RNNForecaster`."""

    target_transform: str
    time_col: str
    _fitted_transform: Callable[[], str]

    _ENTRIES = frozenset(
        {"network", "scaler", "freq", "schema", "n_series"}
        | {"n_train_windows", "n_val_windows", "calendar"}
    )

    def _state_config(self) -> dict[str, Any]:
        meta, _ = self.scaler_.state()
        auto = self.target_transform == "auto"  # the transform it chose
        return {
            "scaler": meta,
            "n_series": int(self.keys_.height),
            "freq": str(self.freq_),
            "schema": self.schema_,
            "n_train_windows": int(self.n_train_windows_),
            "n_val_windows": int(self.n_val_windows_),
            "calendar": list(getattr(self, "calendar_", ())),
            **conformal_config(self.__dict__.get("conformal_")),
            **_statics_config(self.__dict__.get("static_encoding_")),
            **baseline_config(self),
            **({"target_transform": self._fitted_transform()} if auto else {}),
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        _, scaler_arrays = self.scaler_.state()
        arrays = {f"scaler.{key}": value for key, value in scaler_arrays.items()}
        lambdas = getattr(self, "target_lambdas_", None)
        if lambdas is not None:
            arrays["target_lambdas"] = np.ascontiguousarray(lambdas, dtype=np.float64)
        conformal = self.__dict__.get("conformal_")
        if conformal is not None:
            arrays["conformal.residuals"] = np.ascontiguousarray(conformal["residuals"])
            arrays["conformal.series"] = np.ascontiguousarray(conformal["series"], np.int64)
            if "ends" in conformal:
                arrays["conformal.ends"] = np.ascontiguousarray(conformal["ends"], np.int64)
        return arrays

    def _state_keys(self) -> pl.DataFrame:
        """``keys_``, with the last fitted time of each series (``train_end_``) when the
        estimator has it, in the column :data:`~forecaster.persistence.format.TRAIN_END`."""
        ends = self.__dict__.get("train_end_")
        if ends is None or len(ends) != self.keys_.height:
            return self.keys_
        (id_column,) = self.keys_.columns
        return self.keys_.with_columns(ends.alias(_train_end_column(id_column)))

    def _expected_arrays(self, config: dict[str, Any]) -> tuple[dict[str, TensorSpec], int | None]:
        scaler = config["scaler"]
        if not isinstance(scaler, dict):
            raise StateError(f"the scaler state in {CONFIG} is {type(scaler).__name__}, not a dict")
        columns = len(names(scaler.get("columns"), "scaler.columns"))
        series = count(config["n_series"], "n_series", minimum=1)
        expected = {
            "scaler.center": ("F64", [series, columns]),
            "scaler.scale": ("F64", [series, columns]),
            "scaler.n_fit_rows": ("I64", [series]),
        }
        if self.target_transform == "boxcox":
            expected["target_lambdas"] = ("F64", [series, len(_targets(self))])
        if "conformal" in config:
            conformal = config["conformal"]
            shape = conformal.get("shape") if isinstance(conformal, dict) else None
            if not isinstance(shape, list) or len(shape) != 4:
                raise StateError(f"the conformal entry of {CONFIG} has no 4-dimensional shape")
            shape = [count(n, "conformal.shape", minimum=1) for n in shape]
            expected["conformal.residuals"] = ("F64", shape)
            expected["conformal.series"] = ("I64", shape[:1])
            if conformal.get("ends", False):
                expected["conformal.ends"] = ("I64", shape[:1])
        return expected, series

    def _restore(self, state: ModelState) -> None:
        config, arrays = state.config, state.arrays
        self.lookback_ = int(self.network_.lookback)  # type: ignore[attr-defined]
        try:
            if not isinstance(config["freq"], str):
                raise TypeError(f"freq is {config['freq']!r}, not a string such as '1d'")
            self.freq_ = Frequency.parse(config["freq"])
        except (DataValidationError, TypeError, ValueError) as exc:
            raise StateError(f"the frequency is invalid ({exc})") from exc
        schema = config["schema"]
        if not isinstance(schema, dict) or not all(isinstance(v, str) for v in schema.values()):
            raise StateError(f"the schema in {CONFIG} is not a mapping of column to dtype")
        self.schema_ = dict(schema)
        self.calendar_ = tuple(names(config.get("calendar", []), "calendar"))
        self.static_encoding_ = _restore_statics(self, config)
        _check_columns(self, config)
        for key in ("n_train_windows", "n_val_windows"):
            setattr(self, f"{key}_", count(config.get(key, 0), key))
        lambdas = arrays.get("target_lambdas")
        if lambdas is not None and not np.isfinite(lambdas).all():
            raise StateError("the Box-Cox lambdas must be finite")
        self.target_lambdas_ = lambdas
        self.target_transform_ = _restore_transform(self.target_transform, config)
        self.keys_ = self._restore_keys(state.keys)
        meta = {k: v for k, v in config["scaler"].items() if k in ("method", "columns")}
        scaler_arrays = {k.removeprefix("scaler."): v for k, v in arrays.items() if "scaler." in k}
        try:  # the scaler's series are the model's (it was fitted on the model's panel)
            self.scaler_ = PanelScaler.from_state(meta, scaler_arrays, self.keys_)
        except DataValidationError as exc:
            raise StateError(f"the scaler state is invalid ({exc})") from exc
        if "conformal" in config:
            self.conformal_ = restore_conformal(config["conformal"], arrays, self.keys_.height)
        restore_baseline(self, config.get("baseline"), len(_targets(self)))

    def _restore_keys(self, keys: pl.DataFrame | None) -> pl.DataFrame:
        """The series keys in the id column (and ``train_end_`` set from the
        :data:`~forecaster.persistence.format.TRAIN_END` column when there is one, of the time
        column's dtype)."""
        assert keys is not None  # the layout asks for a keys file
        column = self.id_col if self.id_col is not None else SERIES_ID
        train_end = _train_end_column(column)
        if keys.columns not in ([column], [column, train_end]):
            raise StateError(
                f"{KEYS} has the columns {keys.columns}, expected [{column!r}] or "
                f"[{column!r}, {train_end!r}]"
            )
        ids = keys[column]
        dtype = self.schema_.get(column, str(ids.dtype))  # the fitted frame's id dtype
        repeated = ids.filter(ids.is_duplicated()).unique().to_list()
        if ids.null_count() or repeated or str(ids.dtype) != dtype:
            raise StateError(
                f"{KEYS} must hold each series' id once, without nulls, as {dtype} (the id "
                f"column's dtype in the schema of {CONFIG}); its column {column!r} holds "
                f"{ids.dtype} with {ids.null_count()} nulls and the ids {short(repeated)} "
                "more than once"
            )
        if train_end in keys.columns:
            ends = keys[train_end]
            lacking = f"the dtype of time_col {self.time_col!r}, a column {CONFIG} lacks"
            expected = self.schema_.get(self.time_col, lacking)
            if str(ends.dtype) != expected or ends.null_count():
                raise StateError(
                    f"the column {train_end!r} of {KEYS} must hold the last fitted time of each "
                    f"series as {expected}, without nulls; it holds {ends.dtype} with "
                    f"{ends.null_count()} nulls"
                )
            self.train_end_ = ends.alias(self.time_col)
            keys = keys.drop(train_end)
        return keys


def _statics_config(encoding: StaticEncoding | None) -> dict[str, Any]:
    """The ``static_covariates`` entry of ``config.json`` (none for a model without static
    covariates, whose saved folder stays as before)."""
    return {} if encoding is None else {"static_covariates": encoding.to_config()}


def _restore_statics(estimator: Any, config: dict[str, Any]) -> StaticEncoding | None:
    """The fitted static encoding of a saved model, checked against ``static_covariates``, the
    scaler's columns and the network (None for a model without static covariates)."""
    names_ = column_tuple(estimator.static_covariates)
    entry = config.get("static_covariates")
    if not names_ and entry is None:
        return None
    if entry is None:
        raise StateError(f"static_covariates={list(names_)} but {CONFIG} has no encoding of them")
    try:
        encoding = StaticEncoding.from_config(entry, names_)
    except ValueError as exc:
        raise StateError(f"the static covariates' encoding in {CONFIG} is invalid ({exc})") from exc
    network = config["network"]
    columns = config["scaler"]["columns"]
    first = len(_targets(estimator)) + len(column_tuple(estimator.covariates))
    if (
        columns[first : first + len(names_)] != encoding.names
        or network.get("static_cardinalities", []) != encoding.cardinalities
        or network.get("n_static_numeric", 0) != len(encoding.numeric)
    ):
        raise StateError(
            f"the static covariates' encoding in {CONFIG} does not match the scaler's columns "
            "or the network"
        )
    return encoding


def _check_columns(estimator: Any, config: dict[str, Any]) -> None:
    """The scaler's columns must be those fit builds from the parameters, in fit's order
    (``Panel.columns``: targets, covariates, encoded statics, future covariates, calendar
    features), and the network's future inputs the last two kinds."""
    encoding = estimator.static_encoding_
    calendar = [f"{name}_{part}" for name in estimator.calendar_ for part in ("sin", "cos")]
    future = [*column_tuple(estimator.future_covariates), *calendar]
    expected = [*_targets(estimator), *column_tuple(estimator.covariates)]
    expected += [*(encoding.names if encoding is not None else []), *future]
    columns, n_future = config["scaler"]["columns"], config["network"].get("n_future", 0)
    if columns != expected or n_future != len(future):
        raise StateError(
            f"the scaler's columns {short(columns)} and the network's {n_future!r} future "
            f"inputs disagree with the target, covariates, static_covariates, "
            f"future_covariates and calendar in {CONFIG}, which give the columns "
            f"{short(expected)} and {len(future)} future inputs"
        )


def _train_end_column(id_column: str) -> str:
    """The name of the last-fitted-time column of ``keys.parquet``: ``TRAIN_END``, or a
    variant of it when the id column has that name."""
    return temporary_names([id_column], TRAIN_END)[0]


def _targets(estimator: Any) -> list[str]:
    target = estimator.target
    return [target] if isinstance(target, str) else [str(t) for t in target]


def _expected_weights(network_config: dict[str, Any]) -> dict[str, TensorSpec]:
    """Name -> (dtype, shape) of every tensor of the network the config describes, found by
    building one member on the ``meta`` device (no memory allocated)."""
    member = dict(network_config)
    n_members = member.pop("n_members", 1)
    if not is_int(n_members) or not 1 <= n_members <= MAX_INT:
        raise StateError(f"the network's n_members is {n_members!r}; expected an integer >= 1")
    try:
        with torch.device("meta"):
            shapes = tensor_specs(network_from_config(member).state_dict())
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise StateError(f"the network configuration in {CONFIG} is invalid ({exc})") from exc
    if n_members == 1:
        return shapes
    return {f"members.{i}.{key}": spec for i in range(n_members) for key, spec in shapes.items()}


def _restore_transform(param: str, config: dict[str, Any]) -> str:
    """The fitted target transform: the one ``target_transform="auto"`` chose (saved in the
    config's ``target_transform`` entry), else the parameter itself."""
    chosen = config.get("target_transform")
    if param != "auto":
        if chosen is not None and chosen != param:
            raise StateError(f"the config's target_transform {short(chosen)} is not {param!r}")
        return param
    if chosen not in ("none", "log"):
        raise StateError(
            f"target_transform='auto' needs the transform chosen in fit ('none' or 'log') in "
            f"the config's target_transform entry; found {short(chosen)}"
        )
    return str(chosen)


def _restore_ema_decay(param: Any, config: dict[str, Any]) -> float | None:
    """The fitted weight-average decay: the one ``ema_decay="auto"`` chose (saved in the
    config's ``ema_decay`` entry), else the parameter itself."""
    if param != "auto":
        if config.get("ema_decay", param) != param:
            raise StateError(f"the config's ema_decay {short(config['ema_decay'])} is not {param}")
        return param
    if "ema_decay" not in config:
        raise StateError("ema_decay='auto' needs the decay chosen in fit in the config's entry")
    chosen = config["ema_decay"]
    try:
        if chosen != "auto":  # the parameter's own rule, less "auto"
            return check("ema_decay", chosen)
    except DataValidationError:
        pass
    raise StateError(f"the config's ema_decay {short(chosen)} is not None or in [0, 1)")


def _restore_val_loss(config: dict[str, Any]) -> float | None:
    """The saved validation loss (None: saved before it was, or fitted without validation)."""
    loss = config.get("val_loss")
    if loss is None:
        return None
    if isinstance(loss, bool) or not isinstance(loss, int | float) or not math.isfinite(loss):
        raise StateError(f"the config's val_loss {short(loss)} is not a finite number")
    return float(loss)


def _check_consistent(estimator: Any, config: dict[str, Any], network: dict[str, Any]) -> None:
    """The parameters that shape predictions must agree with the network the weights fit."""
    params = estimator.get_params()
    expected = {k: params[k] for k in _SHARED_WITH_NETWORK if params.get(k) not in (None, "auto")}
    expected["n_members"] = params.get("n_ensemble", 1)
    members = network.get("n_members")  # fewer when max_time or a callback ended the fit
    if isinstance(members, int) and members >= 1:
        expected["n_members"] = min(members, expected["n_members"])
    if "regressor" in config:
        reg = config["regressor"]
        if isinstance(reg, dict):
            expected.update(
                lookback=reg.get("lookback"),
                horizon=reg.get("horizon"),
                n_features=reg.get("n_channels"),
            )
    else:
        expected["n_targets"] = len(_targets(estimator))
        scaler = config["scaler"]
        if isinstance(scaler, dict) and isinstance(scaler.get("columns"), list):
            statics = len(column_tuple(params.get("static_covariates")))
            expected["n_features"] = len(scaler["columns"]) - statics
    differ = {k: (v, network.get(k)) for k, v in expected.items() if v != network.get(k)}
    if differ:
        detail = ", ".join(f"{k} {a!r} vs network {b!r}" for k, (a, b) in differ.items())
        raise StateError(f"the parameters and the network configuration disagree ({detail})")

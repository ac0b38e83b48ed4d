"""Search spaces: the default space, the shorthand, sampling, and the checks before any trial.

Everything a search space could make every trial fail on is refused here, before the first
trial: unknown names, parameters that change the task or the objective's units, values the
parameter table refuses (what the data decides: :mod:`forecaster.tuning.data_checks`).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

from forecaster._polars import collect
from forecaster._validation import PARAMETERS, check_params
from forecaster.data import frame_schema
from forecaster.estimators.base import RecurrentEstimator
from forecaster.estimators.regressor import check_fit_arrays
from forecaster.exceptions import (
    DataValidationError,
    SearchSpaceError,
)
from forecaster.tuning.common import import_optuna, is_int, plain, reason
from forecaster.tuning.conditions import (
    CONDITIONS,
    applies,
    check_conditions,
    check_run_settings,
    check_some_trial_valid,
)
from forecaster.tuning.scores import score_column

__all__ = [
    "TASK_PARAMS",
    "UNIT_PARAMS",
    "check_frame",
    "default_search_space",
    "resolve_space",
    "same_kind",
    "sample_params",
]

_FIRST = ("cell", "head", "lookback")


def default_search_space(estimator: Any, frame: Any = None) -> dict[str, Any]:
    """The default search space of ``estimator``: parameter name -> Optuna distribution.

    Only parameters of ``estimator`` are included (e.g. no ``cell`` for
    :class:`~forecaster.LSTMForecaster`, whose cell is fixed). The task (target, columns,
    horizon), the data handling (scaling, missing values, validation split), the training
    budget (``max_epochs``, ``patience``) and ``loss`` (validation losses under different losses
    are not comparable) are not tuned.

    ==================  =====================================================================
    cell                gru, lstm, rnn
    head                segment, direct, seq2seq (forecasters); direct, seq2seq (regressor)
    hidden_size         32, 64, 128, 256
    num_layers          1 to 3
    dropout             0 to 0.5
    lookback            2, 3, 4, 6 and 8 times ``max(horizon, 8)`` and the estimator's own
                        lookback, those that leave enough training windows in 90% of the series
                        of ``frame`` (lookback at most half of what the validation split and
                        horizon leave)
    segment_length      ``max(horizon, 8)`` halved, once and doubled, never above the shortest
                        lookback (sampled only when ``head="segment"``)
    nonlinearity        tanh, relu (sampled only when ``cell="rnn"``)
    normalization       last, revin, none (forecasters)
    lr                  1e-4 to 1e-2, log scale
    weight_decay        1e-6 to 1e-2, log scale
    batch_size          32, 64, 128, 256 (at most ``windows_per_epoch``)
    lr_schedule         none, cosine (not with max_epochs=1)
    ==================  =====================================================================

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
    frame : polars.DataFrame or polars.LazyFrame, optional
        The training frame; when given, lookbacks too long for its series are left out.

    Returns
    -------
    dict
        Edit it and pass it to :func:`tune` as ``search_space``.

    Examples
    --------
    >>> from forecaster import LSTMForecaster
    >>> space = default_search_space(LSTMForecaster(target="y", horizon=12))
    >>> "cell" in space, space["lookback"].choices
    (False, (24, 36, 48, 72, 96))
    """
    if not hasattr(estimator, "get_params"):
        raise DataValidationError(
            f"default_search_space needs a forecaster estimator, got {type(estimator).__name__}."
        )
    validate = getattr(estimator, "validate_params", None)
    if callable(validate):  # the space is derived from these parameters
        validate()
    try:
        return _default_space(estimator, frame)
    except DataValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"Cannot derive the default search space from the parameters of this "
            f"{type(estimator).__name__} ({exc}). Check them, or pass search_space."
        ) from exc


def _default_space(estimator: Any, frame: Any) -> dict[str, Any]:
    optuna = import_optuna()
    dist = optuna.distributions
    params = estimator.get_params(deep=False)
    is_forecaster = "lookback" in params and "horizon" in params
    space: dict[str, Any] = {}
    if "cell" in params:
        space["cell"] = dist.CategoricalDistribution(("gru", "lstm", "rnn"))
    heads = ("segment", "direct", "seq2seq") if is_forecaster else ("direct", "seq2seq")
    if "head" in params:
        space["head"] = dist.CategoricalDistribution(heads)
    if is_forecaster:
        horizon = int(params["horizon"])
        unit = max(horizon, 8)
        candidates = {m * unit for m in (2, 3, 4, 6, 8)}
        own = params.get("lookback")
        if is_int(own) and int(own) >= 1:
            candidates.add(int(own))
        bound = _lookback_bound(params, frame)
        lookbacks = sorted(c for c in candidates if bound is None or c <= bound)
        lookbacks = lookbacks or [min(candidates)]
        space["lookback"] = dist.CategoricalDistribution(tuple(lookbacks))
        if "segment_length" in params:
            segments = sorted({max(1, unit // 2), unit, 2 * unit})
            segments = [s for s in segments if s <= lookbacks[0]] or [lookbacks[0]]
            space["segment_length"] = dist.CategoricalDistribution(tuple(segments))
    if "nonlinearity" in params and ("cell" in space or getattr(estimator, "cell", None) == "rnn"):
        space["nonlinearity"] = dist.CategoricalDistribution(("tanh", "relu"))
    if "hidden_size" in params:
        space["hidden_size"] = dist.CategoricalDistribution((32, 64, 128, 256))
    if "num_layers" in params:
        space["num_layers"] = dist.IntDistribution(1, 3)
    if "dropout" in params:
        space["dropout"] = dist.FloatDistribution(0.0, 0.5)
    if is_forecaster and "normalization" in params:
        space["normalization"] = dist.CategoricalDistribution(("last", "revin", "none"))
    if "lr" in params:
        space["lr"] = dist.FloatDistribution(1e-4, 1e-2, log=True)
    if "weight_decay" in params:
        space["weight_decay"] = dist.FloatDistribution(1e-6, 1e-2, log=True)
    if "batch_size" in params:  # a batch beyond windows_per_epoch holds that many windows
        most = max(params.get("windows_per_epoch") or 256, 32)
        sizes = tuple(b for b in (32, 64, 128, 256) if b <= most)
        space["batch_size"] = dist.CategoricalDistribution(sizes)
    if "lr_schedule" in params and params.get("max_epochs", 2) > 1:  # cosine acts per epoch
        space["lr_schedule"] = dist.CategoricalDistribution(("none", "cosine"))
    return space


def _lookback_bound(params: Mapping[str, Any], frame: Any) -> int | None:
    """The longest lookback that leaves a reasonable number of training windows, or None."""
    if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
        return None
    id_col = params.get("id_col")
    try:
        lazy = frame.lazy()
        if id_col:
            lengths = collect(lazy.group_by(id_col).len(), streaming=True)["len"].to_numpy()
        else:
            lengths = collect(lazy.select(pl.len()), streaming=True).to_series().to_numpy()
    except Exception:  # a column is missing: fit will say so
        return None
    if len(lengths) == 0:
        return None
    length = float(np.quantile(lengths, 0.1))
    horizon = int(params["horizon"])
    vs = params.get("validation_size", 0)
    if isinstance(vs, numbers.Integral) and not isinstance(vs, bool):
        holdout = int(vs)
    elif isinstance(vs, numbers.Real) and not isinstance(vs, bool):
        holdout = max(math.ceil(length * float(vs)), horizon) if float(vs) > 0 else 0
    else:
        return None
    return int((length - holdout - horizon) // 2)


def _to_distribution(name: str, spec: Any) -> Any:
    """An Optuna distribution from a distribution or the list / tuple shorthand."""
    optuna = import_optuna()
    dist = optuna.distributions
    if isinstance(spec, dist.CategoricalDistribution):
        return dist.CategoricalDistribution(_choices(name, list(spec.choices)))
    if isinstance(spec, dist.BaseDistribution):
        return spec
    if isinstance(spec, list):
        return dist.CategoricalDistribution(_choices(name, spec))
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        low, high = plain(spec[0]), plain(spec[1])
        log = len(spec) == 3 and spec[2] == "log"
        numeric = all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in (low, high)
        )
        if numeric and (len(spec) == 2 or log) and low < high:
            if log and low <= 0:
                raise DataValidationError(
                    f"search_space[{name!r}] = {spec!r}: a log-scale range needs low > 0, got "
                    f"low={low!r}. Use a positive low, or (low, high) for a uniform range."
                )
            if all(isinstance(v, numbers.Integral) for v in (low, high)):
                return dist.IntDistribution(int(low), int(high), log=log)
            return dist.FloatDistribution(float(low), float(high), log=log)
    raise DataValidationError(
        f"search_space[{name!r}] = {spec!r} is not a distribution. Use an optuna.distributions "
        "object, a list of choices (categorical), (low, high) for a uniform int or float range, "
        "or (low, high, 'log') for a log-scale range, with finite numbers and low < high."
    )


def _choices(name: str, choices: list[Any]) -> tuple[Any, ...]:
    """Categorical choices as plain values (what an Optuna storage can hold), or refused."""
    if not choices:
        raise DataValidationError(
            f"search_space[{name!r}] is an empty list of choices: give at least one value."
        )
    values = tuple(plain(c) for c in choices)
    for choice in values:
        if choice is not None and not isinstance(choice, bool | int | float | str):
            raise DataValidationError(
                f"search_space[{name!r}] has the choice {choice!r} ({type(choice).__name__}); "
                "Optuna stores only None, bool, int, float and str choices. Use a callable "
                "search_space that maps a string choice to the value, e.g. "
                "lambda trial: {'calendar': CALENDARS[trial.suggest_categorical('calendar', "
                "list(CALENDARS))]}."
            )
        if isinstance(choice, float) and not math.isfinite(choice):
            raise DataValidationError(
                f"search_space[{name!r}] has the choice {choice!r}; choices must be finite."
            )
    if len(set(map(repr, values))) != len(values):
        raise DataValidationError(f"search_space[{name!r}] = {list(values)!r} repeats a choice.")
    return values


_ALIASES = {
    "learning_rate": "lr",
    "n_layers": "num_layers",
    "layers": "num_layers",
    "units": "hidden_size",
    "hidden_units": "hidden_size",
    "hidden_dim": "hidden_size",
    "epochs": "max_epochs",
    "n_epochs": "max_epochs",
    "window": "lookback",
    "window_size": "lookback",
    "seq_len": "lookback",
    "input_size": "lookback",
    "rnn_type": "cell",
    "cell_type": "cell",
}


def _check_names(names: Iterable[str], estimator: Any) -> None:
    known = sorted(estimator.get_params(deep=False))
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=2)
            alias = _ALIASES.get(name.lower())
            if alias in known and alias not in close:
                close.insert(0, alias)
            hints.append(f"{name!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        raise DataValidationError(
            f"search_space names {len(unknown)} unknown parameter(s) of "
            f"{type(estimator).__name__}: {', '.join(hints)}. Its parameters are: "
            f"{', '.join(known)}."
        )


# Parameters a search space may not sample: they change the task each trial solves (which
# series, which column, how far ahead), so trial values answer different questions.
TASK_PARAMS = ("target", "id_col", "time_col", "horizon", "freq", "missing")
# Parameters that describe the data, not the network: refused in a search space (a trial of
# another value fits a model that reads its inputs wrongly); not in the study identity.
_LAYOUT_PARAMS = ("target_feature",)
# Parameters that change the units of the validation loss, or the steps it is measured on:
# refused with metric="val_loss" (a metric callable on the original scale may rank them).
UNIT_PARAMS = (
    "scaling", "target_transform", "loss", "quantiles", "validation_size", "validation_fraction",
)  # fmt: skip
_WHY = {
    "target": "which column is forecast",
    "id_col": "which rows form a series",
    "time_col": "which column orders the rows",
    "horizon": "how many steps ahead are forecast (the loss averages over them)",
    "freq": "the grid the series are put on (rows filled or refused)",
    "missing": "which values the series hold (filled, zeroed, interpolated or refused)",
    "scaling": "the scale the loss is measured in (e.g. 446.7 unscaled, 0.25 after minmax)",
    "target_transform": "the scale the loss is measured in (log, Box-Cox or the original)",
    "loss": "the loss function itself (MSE, MAE and Huber values are not comparable)",
    "quantiles": "what a quantile loss averages (the pinball loss over these quantiles: "
    "extreme quantiles have small losses and lower the average)",
    "validation_size": "the steps the loss is measured on",
    "validation_fraction": "the samples the loss is measured on",
}


# Parameters a probabilistic objective (metric="pinball", ...) refuses: they change what is
# scored (the quantiles, or the steps); it is on the original scale, so scaling may be sampled.
_SCORED_PARAMS = ("loss", "quantiles", "validation_size", "validation_fraction")


def _check_sampled_names(names: Iterable[str], metric: Any, where: str = "search_space") -> None:
    """Refuse a space that samples the task or the data's layout (always) or the objective's
    units (with the validation loss as the objective): its trial values could not be ranked,
    or a trial would misread its inputs."""
    for name in names:
        if name in TASK_PARAMS:
            raise DataValidationError(
                f"{where} samples {name!r}, which changes the task each trial solves "
                f"({_WHY[name]}): trials of different {name} values answer different questions "
                f"and their values cannot be ranked in one study. Tune each {name} in a study "
                f"of its own (one tune call per value, with its own study_name), and compare "
                f"their best models on a common test set."
            )
        if name in _LAYOUT_PARAMS:
            raise DataValidationError(
                f"{where} samples {name!r}, the index of the forecast series among the "
                "features of X: a fact of the data, not a setting to tune (with normalization "
                "'last' or 'revin', or a 'segment' or 'recursive' head, a trial of another index "
                "forecasts from another feature's level). Leave it out of the search space and "
                f"pass it to the estimator, e.g. RNNRegressor({name}=1) when y continues X's "
                "second feature."
            )
        if score_column(metric) is not None and name in _SCORED_PARAMS:
            raise DataValidationError(
                f"{where} samples {name!r} while the objective is {metric!r}, a score of the "
                f"model's quantiles on its validation span, and {name} changes what is scored. "
                f"Tune {name} in separate studies (one per value)."
            )
        if name in UNIT_PARAMS and metric == "val_loss":
            raise DataValidationError(
                f"{where} samples {name!r} while the objective is the validation loss, and "
                f"{name} changes {_WHY[name]}: the study would pick the value with the "
                f"smallest numbers, not the best model. Tune {name} in separate studies (one "
                f"per value), or pass a metric callable that scores every trial the same way "
                f"on the original scale, e.g. metric=lambda model, frame: "
                f"forecaster.backtest(model, frame, ...) reduced to one number."
            )


def _check_value(name: str, value: Any, where: str) -> None:
    """A sampled value of a parameter, checked by the parameter table."""
    if name not in PARAMETERS:
        return
    try:
        check_params({name: value})
    except DataValidationError as exc:
        raise DataValidationError(f"{where}: {exc}") from None


def _check_distribution(name: str, spec: Any, distribution: Any) -> None:
    """Each value a distribution can yield must suit the parameter (the parameter table):
    every categorical choice, and both bounds of a range (e.g. floats for an int parameter)."""
    choices = getattr(distribution, "choices", None)
    if choices is None and not hasattr(distribution, "low"):
        raise DataValidationError(
            f"search_space[{name!r}] = {spec!r}: tune samples categorical, int and float "
            "distributions (optuna.distributions.CategoricalDistribution, IntDistribution, "
            "FloatDistribution)."
        )
    values = list(choices) if choices is not None else [distribution.low, distribution.high]
    where = f"search_space[{name!r}] = {spec!r} can sample values that {name} does not accept"
    for value in values:
        _check_value(name, value, where)


def _check_template(estimator: Any, sampled: Iterable[str]) -> None:
    """The template's fixed parameters (those the space does not sample), by the parameter
    table: a wrong one would fail every trial."""
    names = set(sampled)
    fixed = {k: v for k, v in estimator.get_params(deep=False).items() if k not in names}
    try:
        check_params(fixed)
    except DataValidationError as exc:
        raise DataValidationError(
            f"The estimator to tune has a parameter no trial could fit with: {exc}"
        ) from None


def resolve_space(search_space: Any, estimator: Any, frame: Any, metric: Any = "val_loss") -> Any:
    """The search space as distributions (or the callable), checked before any trial: known
    names, no task or unit parameters (see :func:`_check_sampled_names`), values that suit
    each parameter, and a template whose fixed parameters are valid."""
    if search_space is None:
        space = default_search_space(estimator, frame)
        check_run_settings(estimator, space)
        check_some_trial_valid(space, estimator, "the default search space")
        return space
    if callable(search_space) and not isinstance(search_space, Mapping):
        return search_space
    if not isinstance(search_space, Mapping):
        raise DataValidationError(
            f"search_space must be a dict of parameter name -> distribution, a callable "
            f"trial -> dict of parameters, or None; got {type(search_space).__name__}."
        )
    if not search_space:
        raise DataValidationError("search_space is empty: name at least one parameter to tune.")
    _check_names(search_space, estimator)
    _check_sampled_names(search_space, metric)
    space = {name: _to_distribution(name, spec) for name, spec in search_space.items()}
    for name, distribution in space.items():
        _check_distribution(name, search_space[name], distribution)
    _check_template(estimator, space)
    check_run_settings(estimator, space)
    check_conditions(space, estimator)
    check_some_trial_valid(space, estimator)
    return space


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    optuna = import_optuna()
    dist = optuna.distributions
    if isinstance(distribution, dist.CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, dist.IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, dist.FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    raise DataValidationError(f"Unsupported distribution for {name!r}: {distribution!r}.")


def sample_params(
    trial: Any, space: Any, estimator: Any, metric: Any = "val_loss"
) -> dict[str, Any]:
    """The estimator parameters of one trial (conditional parameters only where they apply).
    What a callable space returns is checked as a dict space is before the first trial
    (names, task and unit parameters, the parameter table); a failure is a
    :class:`SearchSpaceError`."""
    if callable(space) and not isinstance(space, Mapping):
        return _sample_callable(trial, space, estimator, metric)
    names = [n for n in _FIRST if n in space] + [n for n in space if n not in _FIRST]
    params: dict[str, Any] = {}
    for name in names:
        if name in CONDITIONS and not applies(name, params, estimator):
            continue
        params[name] = _suggest(trial, name, space[name])
    return params


def _sample_callable(
    trial: Any, space: Callable[[Any], Any], estimator: Any, metric: Any
) -> dict[str, Any]:
    """What a callable space returns for ``trial``, checked (or a :class:`SearchSpaceError`)."""
    optuna = import_optuna()
    try:
        params = space(trial)
    except optuna.TrialPruned:
        raise
    except Exception as exc:  # a bug of the space, not of this trial's parameters
        raise SearchSpaceError(f"The search_space callable raised {reason(exc)}") from exc
    try:
        if not isinstance(params, Mapping):
            raise DataValidationError(
                f"A callable search_space must return a dict of parameters, got "
                f"{type(params).__name__}."
            )
        _check_names(params, estimator)
        _check_sampled_names(params, metric, "The search_space callable")
        params = {k: plain(v) for k, v in params.items()}
        for name, value in params.items():
            _check_value(name, value, f"The search_space callable returned {name}={value!r}")
    except DataValidationError as exc:
        raise SearchSpaceError(str(exc)) from None
    return params


def same_kind(old: Any, new: Any) -> bool:
    if type(old) is not type(new):
        return False
    if hasattr(old, "choices"):
        return tuple(old.choices) == tuple(new.choices)
    return getattr(old, "log", None) == getattr(new, "log", None)


def check_frame(estimator: Any, frame: Any) -> None:
    """The tuning data must be what the estimator fits on (a polars frame with its columns, or
    ``(X, y)`` for the regressor) of one of forecaster's estimators: otherwise every trial
    would fail the same way."""
    if not isinstance(estimator, RecurrentEstimator):  # e.g. a Pipeline: GridSearchCV's job
        name = type(estimator).__name__
        raise DataValidationError(f"tune takes forecaster's estimators, not a {name}.")
    params = estimator.get_params(deep=False)
    if "lookback" not in params or "horizon" not in params:  # RNNRegressor: fit(X, y)
        if not (isinstance(frame, tuple) and len(frame) == 2):
            raise DataValidationError(
                f"tune fits a {type(estimator).__name__} on arrays: pass frame=(X, y), got "
                f"{type(frame).__module__}.{type(frame).__name__}."
            )
        try:
            check_fit_arrays(estimator, *frame)
        except DataValidationError as exc:
            raise DataValidationError(f"every trial would fail as fit does: {exc}") from None
        return
    schema = frame_schema(frame, what="frame given to tune")
    wanted: list[str] = []
    roles = ("target", "time_col", "id_col", "covariates", "future_covariates", "static_covariates")
    for role in roles:
        value = params.get(role)
        names = [value] if isinstance(value, str) else value
        if isinstance(names, list | tuple):
            wanted += [n for n in names if isinstance(n, str)]
    missing = [n for n in dict.fromkeys(wanted) if n not in schema]
    if missing:
        raise DataValidationError(
            f"The frame given to tune lacks the columns {missing} that the estimator uses "
            f"(its columns: {list(schema.names())}). Rename them, or set the estimator's "
            "target, time_col, id_col and covariates to columns of the frame."
        )

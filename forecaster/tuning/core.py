"""Hyperparameter tuning with Optuna: :func:`tune`.

An Optuna study over an estimator's parameters. Every trial clones the estimator, sets the
sampled parameters, fits it with an epoch-end callback that reports the running best validation
loss to Optuna (so that a pruner can stop unpromising trials early), and returns the best
validation loss. The best parameters are then refitted on the whole frame.

What the objective sees
    The estimator's own validation split: the last ``validation_size`` steps of every series
    (the last ``validation_fraction`` of the samples for :class:`~forecaster.RNNRegressor`).
    Those steps are used for early stopping and model selection, so they are *not* a test set:
    keep the test span out of ``frame`` (e.g. ``frame.filter(pl.col("date") < test_start)``)
    and score the returned estimator on it afterwards.

Storage, resume and crashes
    By default the study lives in a SQLite file ``optuna.db`` next to the MLflow tracking store
    (the folder of ``MLFLOW_TRACKING_URI`` when it is a ``sqlite:///`` URI, else ``mlflow/``
    under the working directory), under a name derived from the estimator class, its columns,
    horizon, search space and metric. Rerunning the same call therefore resumes the study:
    ``n_trials`` is the total number of *finished* (complete or pruned) trials wanted, so a
    rerun only runs the missing ones, and a rerun with a larger ``n_trials`` extends the study.
    A process killed mid-trial (SIGKILL, power loss) leaves its trial ``RUNNING``; the next run
    marks it ``FAIL``: immediately when the dead process ran on this machine (every trial records
    its host and process id), otherwise through Optuna's heartbeat, once the trial has not
    sent one for :data:`GRACE_PERIOD` seconds (each running trial beats every
    :data:`HEARTBEAT_INTERVAL` seconds).

    A study is for one task and one search space: it records both when it is created (study
    user attributes ``forecaster.task`` and ``forecaster.search_space``, JSON), and a later
    call that names the same study for another estimator class, target, columns, covariates,
    calendar, horizon, frequency, missing-value policy, scaling, target transform, loss,
    validation split, metric, direction or search space is refused, naming what the study was
    created with and what is asked now. Callables (a metric, a search space) are told apart by
    their qualified name and a digest of their code and captured values, so two lambdas are
    two callables. The template's other fixed parameters (lookback, network and training
    settings; not the run settings ``progress``, ``device``, ``checkpoint_dir``,
    ``random_state``...) are recorded too (``forecaster.fixed_params``): they change how good
    a trial is, not the units of its value, so a difference is a warning, not a refusal.

    A search space may not sample the task (target, id_col, time_col, horizon, freq,
    missing): trials would answer different questions. Nor, with the validation loss as the
    objective, its units or the steps it is measured on (scaling, target_transform, loss,
    validation_size, validation_fraction): a loss of 446.7 unscaled and of 0.25 after minmax
    scaling cannot be ranked. Tune those in separate studies, or with a metric callable that
    scores every trial on the original scale. Every value a search space can sample is checked
    against the parameter table (:mod:`forecaster._validation`) before the first trial (e.g.
    a float range for ``hidden_size`` is refused), and what a callable search space returns
    is checked at the first trial: an error there stops the study instead of failing every
    trial. The same goes for what depends on the data and the metric: the frame is read once
    as each trial's fit reads it (missing values, the grid), lookbacks the longest series has
    no training window for are refused, a metric callable must take ``(estimator, frame)``,
    and a metric that returns no number (None, text, a bool, a tensor of several values)
    stops the study at its first trial.

    A storage that cannot hold a study (an unsupported URL, a missing driver, a file that is
    not a database, a read-only database, a server that refuses the connection, an in-memory
    SQLite URL) is a :class:`StorageError` naming it (password masked), before anything runs;
    a storage that fails during the study is a :class:`~forecaster.ForecasterError` (finished
    trials are kept).

Several processes and machines
    ``n_workers=N`` starts N worker processes (``spawn``) that run trials of the same study
    through the shared storage. Several machines work the same way: run the same
    ``tune(..., storage="postgresql+psycopg://user:password@host/db", study_name="...")`` call
    on each machine (same study name and storage URL), after ``pip install "psycopg[binary]"``
    (or ``postgresql+psycopg2://...`` with ``pip install psycopg2-binary``; a bare
    ``postgresql://`` uses SQLAlchemy's default driver, psycopg from SQLAlchemy 2.1 on).
    SQLite suits the processes of one machine only. Parallel workers share the finished-trial
    count, so a study may end one or two trials past ``n_trials``.

Tracking
    With ``track`` on (by default when MLflow is installed) :func:`tune` uses
    :mod:`forecaster.tracking.core`: ``log_study(study, estimator, frame, storage=...)`` creates
    (or,
    for a study resumed from its storage, finds again by the key the study keeps; never by its
    name alone, so an in-memory study always gets its own) the study's parent run before the
    trials; ``trial_callback(parent_run_id,
    tracking_uri=..., intermediate_key="best_val_loss")`` logs every finished trial as a nested
    child run, in the process that ran it; trial fits run inside ``tracking.paused()`` (no run
    of their own); and ``log_study(study, estimator, frame, best_estimator=...)`` logs the
    summary and the refitted best model on the parent run at the end. Every trial's
    ``user_attrs`` hold its ``params``, per-epoch ``history``, ``pid`` and ``host``. A tracking
    failure is a warning and never stops the study (an unreachable server costs one short
    probe, see :mod:`forecaster.tracking.core`; one warning at the end says what was not logged and
    where the best model was kept); hooks that tracking lacks are skipped.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import numbers
import os
import re
import socket
import stat
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import clone

from forecaster._validation import PARAMETERS, check_params
from forecaster.data.core import frame_schema
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.tracking.core import mask_uri
from forecaster.training.loop import TrainingDivergedError

__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "StorageError",
    "TuneResult",
    "default_search_space",
    "default_storage_url",
    "make_storage",
    "tune",
]

HEARTBEAT_INTERVAL = 10
"""Seconds between the heartbeats of a running trial in an RDB storage."""

GRACE_PERIOD = 60
"""Seconds without a heartbeat after which another process marks a running trial failed."""

MAX_CONSECUTIVE_FAILURES = 10
"""A process stops after this many failed trials in a row (e.g. every sampled lookback is too
long for the data)."""

_INSTALL_HINT = 'pip install "forecaster[tune]"'
_FIRST = ("cell", "head", "lookback")
# parameter -> (parameter it depends on, values of that parameter for which it is sampled)
_CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "segment_length": ("head", ("segment",)),
    "nonlinearity": ("cell", ("rnn",)),
}


def _import_optuna():
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            f"forecaster.tune needs Optuna, an optional dependency: {_INSTALL_HINT}"
        ) from exc
    return optuna


# ------------------------------------------------------------------------------------------
# search space
# ------------------------------------------------------------------------------------------


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
    batch_size          32, 64, 128, 256
    lr_schedule         none, cosine
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
    optuna = _import_optuna()
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
        if isinstance(own, numbers.Integral) and not isinstance(own, bool) and own >= 1:
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
    if "batch_size" in params:
        space["batch_size"] = dist.CategoricalDistribution((32, 64, 128, 256))
    if "lr_schedule" in params:
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
            lengths = lazy.group_by(id_col).len().collect()["len"].to_numpy()
        else:
            lengths = lazy.select(pl.len()).collect().to_series().to_numpy()
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
        holdout = max(math.ceil(length * float(vs)), horizon) if vs > 0 else 0
    else:
        return None
    return int((length - holdout - horizon) // 2)


def _to_distribution(name: str, spec: Any) -> Any:
    """An Optuna distribution from a distribution or the list / tuple shorthand."""
    optuna = _import_optuna()
    dist = optuna.distributions
    if isinstance(spec, dist.CategoricalDistribution):
        return dist.CategoricalDistribution(_choices(name, list(spec.choices)))
    if isinstance(spec, dist.BaseDistribution):
        return spec
    if isinstance(spec, list):
        return dist.CategoricalDistribution(_choices(name, spec))
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        low, high = _plain(spec[0]), _plain(spec[1])
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
    plain = tuple(_plain(c) for c in choices)
    for choice in plain:
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
    if len(set(map(repr, plain))) != len(plain):
        raise DataValidationError(f"search_space[{name!r}] = {list(plain)!r} repeats a choice.")
    return plain


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
_TASK_PARAMS = ("target", "id_col", "time_col", "horizon", "freq", "missing")
# Parameters that change the units of the validation loss, or the steps it is measured on:
# refused with metric="val_loss" (a metric callable on the original scale may rank them).
_UNIT_PARAMS = ("scaling", "target_transform", "loss", "validation_size", "validation_fraction")
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
    "validation_size": "the steps the loss is measured on",
    "validation_fraction": "the samples the loss is measured on",
}


def _check_sampled_names(names: Iterable[str], metric: Any, where: str = "search_space") -> None:
    """Refuse a space that samples the task (always) or the objective's units (with the
    validation loss as the objective): its trial values could not be ranked."""
    for name in names:
        if name in _TASK_PARAMS:
            raise DataValidationError(
                f"{where} samples {name!r}, which changes the task each trial solves "
                f"({_WHY[name]}): trials of different {name} values answer different questions "
                f"and their values cannot be ranked in one study. Tune each {name} in a study "
                f"of its own (one tune call per value, with its own study_name), and compare "
                f"their best models on a common test set."
            )
        if name in _UNIT_PARAMS and not callable(metric):
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


def _resolve_space(search_space: Any, estimator: Any, frame: Any, metric: Any = "val_loss") -> Any:
    """The search space as distributions (or the callable), checked before any trial: known
    names, no task or unit parameters (see :func:`_check_sampled_names`), values that suit
    each parameter, and a template whose fixed parameters are valid."""
    if search_space is None:
        return default_search_space(estimator, frame)
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
    return space


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    optuna = _import_optuna()
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


class _StopStudy(DataValidationError):
    """A mistake every trial would repeat: the study stops at once (the trial that found it is
    FAIL), instead of failing trial after trial; :func:`tune` raises it as a
    DataValidationError ending with :attr:`stop_note`."""

    stop_note = "tune stopped at the first trial that hit it."


class _SpaceError(_StopStudy):
    """A callable search space returned what no trial can use (an unknown parameter, a task or
    unit parameter, a value the parameter table refuses)."""

    stop_note = "tune stopped at the first trial that sampled it."


class _MetricError(_StopStudy):
    """A metric callable returned what is no number (None, text, a bool, an array or tensor
    of several values): it would do so for every trial."""

    stop_note = "tune stopped at the first trial whose metric returned it."


def _sample(trial: Any, space: Any, estimator: Any, metric: Any = "val_loss") -> dict[str, Any]:
    """The estimator parameters of one trial (conditional parameters only where they apply).
    What a callable space returns is checked as a dict space is before the first trial
    (names, task and unit parameters, the parameter table); a failure is a
    :class:`_SpaceError`."""
    if callable(space) and not isinstance(space, Mapping):
        optuna = _import_optuna()
        try:
            params = space(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # a bug of the space, not of this trial's parameters
            raise _SpaceError(f"The search_space callable raised {_reason(exc)}") from exc
        try:
            if not isinstance(params, Mapping):
                raise DataValidationError(
                    f"A callable search_space must return a dict of parameters, got "
                    f"{type(params).__name__}."
                )
            _check_names(params, estimator)
            _check_sampled_names(params, metric, "The search_space callable")
            params = {k: _plain(v) for k, v in params.items()}
            for name, value in params.items():
                _check_value(name, value, f"The search_space callable returned {name}={value!r}")
        except DataValidationError as exc:
            raise _SpaceError(str(exc)) from None
        return params
    names = [n for n in _FIRST if n in space] + [n for n in space if n not in _FIRST]
    params: dict[str, Any] = {}
    for name in names:
        condition = _CONDITIONS.get(name)
        if condition is not None:
            parent, allowed = condition
            value = params[parent] if parent in params else getattr(estimator, parent, None)
            if value not in allowed:
                continue
        params[name] = _suggest(trial, name, space[name])
    return params


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same_kind(old: Any, new: Any) -> bool:
    if type(old) is not type(new):
        return False
    if hasattr(old, "choices"):
        return tuple(old.choices) == tuple(new.choices)
    return getattr(old, "log", None) == getattr(new, "log", None)


# ------------------------------------------------------------------------------------------
# storage
# ------------------------------------------------------------------------------------------


def default_storage_url() -> str:
    """The SQLite URL of the default study storage: ``optuna.db`` next to the tracking store.

    The folder of ``MLFLOW_TRACKING_URI`` when that is a ``sqlite:///`` URI, else ``mlflow/``
    under the current working directory. The folder is created by :func:`make_storage`.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict("os.environ", {"MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow.db"}):
    ...     default_storage_url()
    'sqlite:////srv/optuna.db'
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    folder = Path.cwd() / "mlflow"
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:":
            folder = Path(path).parent
    return f"sqlite:///{(folder if folder.is_absolute() else Path.cwd() / folder) / 'optuna.db'}"


class StorageError(DataValidationError):
    """The study storage cannot be used: an unsupported URL, a missing driver, a file that is not
    a database, a read-only database, a server that refuses the connection. The message names
    the storage (password masked) and what is supported."""


_SUPPORTED_STORAGE = (
    "Use 'default' (a SQLite file next to the tracking store), None (in memory, no resume), a "
    "SQLAlchemy database URL such as 'sqlite:///studies/optuna.db' or "
    "'postgresql+psycopg://user:password@host/db' (also mysql+pymysql://...), a pathlib.Path to "
    "a SQLite file, or an optuna storage object (e.g. optuna.storages.JournalStorage)."
)
_SQLITE_HEADER = b"SQLite format 3\x00"
_CONNECT_TIMEOUT = 10
"""Seconds a PostgreSQL storage waits to connect (unless the URL sets ``connect_timeout``)."""


def make_storage(
    storage: Any = "default",
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
) -> Any:
    """The Optuna storage that :func:`tune` uses for ``storage``.

    Parameters
    ----------
    storage : "default", str, path-like, optuna storage or None
        ``"default"`` is :func:`default_storage_url` (its folder is created); a string is a
        SQLAlchemy database URL (``sqlite:///path.db``, ``postgresql://user:password@host/db``,
        ...); a path is a SQLite file; an Optuna storage object is returned as it is; ``None`` is
        an in-memory study (returned as ``None``). The folder of a SQLite file is created when
        its parent exists (a longer chain of missing folders is refused as a likely typo). An
        in-memory SQLite URL (``sqlite:///:memory:``, ``sqlite://``) is refused: it lives in
        one connection and Optuna's storage opens several; pass ``None`` instead.
    heartbeat_interval, grace_period : int
        Seconds: a running trial records a heartbeat every ``heartbeat_interval``; one without
        a heartbeat for ``grace_period`` is marked failed by the next trial of any process.

    Returns
    -------
    optuna.storages.RDBStorage, the given storage, or None

    Raises
    ------
    StorageError
        When the storage cannot be used (see :class:`StorageError`); nothing is created then.

    Examples
    --------
    >>> import tempfile
    >>> storage = make_storage(f"sqlite:///{tempfile.mkdtemp()}/studies/optuna.db")
    >>> storage.heartbeat_interval, storage.grace_period
    (10, 60)
    >>> make_storage("mongodb://db.example/optuna")
    Traceback (most recent call last):
    ...
    forecaster.tuning.core.StorageError: Cannot use the study storage 'mongodb://...
    """
    optuna = _import_optuna()
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise DataValidationError(f"{name} must be an integer >= 1 (seconds), got {value!r}.")
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    url = _storage_to_url(storage)
    engine_kwargs: dict[str, Any] = {}
    if _dialect(url) == "sqlite":
        _check_sqlite_file(url, create_parents=storage == "default")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif _dialect(url) == "postgresql" and "connect_timeout" not in url:
        driver = url.split("://", 1)[0]
        if driver in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
            engine_kwargs = {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT}}
    with warnings.catch_warnings(), _storage_errors(url, "open"):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
        )


def _storage_to_url(storage: Any) -> str:
    """The database URL of ``storage`` ("default", a URL or a path), or a StorageError."""
    if isinstance(storage, os.PathLike):
        return f"sqlite:///{Path(storage).resolve()}"
    if isinstance(storage, str) and storage == "default":
        return default_storage_url()
    if isinstance(storage, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", storage):
        dialect = _dialect(storage)
        from sqlalchemy.dialects import registry

        try:
            registry.load(storage.split("://", 1)[0].replace("+", "."))
        except ImportError as exc:
            raise StorageError(
                f"Cannot use the study storage {mask_uri(storage)!r}: its database driver is not "
                f"installed ({exc.__cause__ or exc}). {_driver_hint(storage)} {_SUPPORTED_STORAGE}"
            ) from exc
        except Exception as exc:  # sqlalchemy.exc.NoSuchModuleError: not a SQLAlchemy database
            raise StorageError(
                f"Cannot use the study storage {mask_uri(storage)!r}: {dialect!r} is not a "
                f"database that Optuna's storage (SQLAlchemy) supports. {_SUPPORTED_STORAGE}"
            ) from exc
        return storage
    shown = mask_uri(storage) if isinstance(storage, str) else storage
    raise StorageError(f"storage={shown!r} is not a database URL. {_SUPPORTED_STORAGE}")


def _dialect(url: str) -> str:
    name = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if name == "postgres" else name


def _check_sqlite_file(url: str, *, create_parents: bool) -> None:
    """Refuse a SQLite path that cannot hold a study: a folder, a device or FIFO, a file that is
    not a SQLite database, a folder chain that does not exist (created for ``"default"``)."""
    path_text = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    if not path_text or ":memory:" in path_text or re.search(r"[?&]mode=memory\b", url):
        raise StorageError(
            f"Cannot use the study storage {url!r}: an in-memory SQLite database belongs to one "
            "connection, and Optuna's storage opens several (heartbeats, worker processes), so "
            "the study would break mid-run and could not be resumed. Pass storage=None for an "
            "in-memory study, or a file such as 'sqlite:///studies/optuna.db'."
        )
    if path_text.startswith("file:"):
        return  # a SQLite URI filename (sqlite:///file:...?uri=true)
    path = Path(path_text)

    def refuse(problem: str) -> StorageError:
        return StorageError(
            f"Cannot use the study storage {url!r}: {problem}. Point it at a new file in an "
            f"existing folder, or at a SQLite database written by Optuna. {_SUPPORTED_STORAGE}"
        )

    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise refuse(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise refuse(f"{path} is a folder, not a database file")
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"{path} is not a regular file (a device, FIFO or socket)")
        if info.st_size:
            try:
                with open(path, "rb") as handle:
                    header = handle.read(len(_SQLITE_HEADER))
            except OSError as exc:
                raise refuse(f"{path} cannot be read ({exc.strerror or exc})") from exc
            if header != _SQLITE_HEADER:
                raise refuse(f"{path} is not a SQLite database (it starts with {header[:8]!r})")
        return
    parent = path.parent
    if parent.is_dir():
        return
    if parent.exists():
        raise refuse(f"{parent} is a file, not a folder")
    if not create_parents and not parent.parent.is_dir():
        raise refuse(f"the folder {parent.parent} does not exist")
    try:
        parent.mkdir(parents=create_parents, exist_ok=True)
    except OSError as exc:
        raise refuse(f"cannot create the folder {parent} ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def _storage_errors(url: str | None, doing: str) -> Iterator[None]:
    """Turn a database or Optuna storage error into a :class:`StorageError` (``doing`` "open")
    or a :class:`~forecaster.ForecasterError` (during the study)."""
    try:
        yield
    except ForecasterError:
        raise
    except Exception as exc:
        if not _is_storage_error(exc):
            raise
        where = f"the study storage {mask_uri(url)!r}" if url else "the study storage"
        detail = re.sub(r"\s+", " ", str(getattr(exc, "orig", None) or exc)).strip()
        detail = detail if len(detail) < 400 else detail[:397] + "..."
        if isinstance(exc, ImportError):
            detail = str(exc.__cause__ or exc)
            raise StorageError(
                f"Cannot use {where}: its database driver is not installed ({detail}). "
                f"{_driver_hint(url or '')} {_SUPPORTED_STORAGE}"
            ) from exc
        if doing == "open":
            raise StorageError(
                f"Cannot use {where}: {type(exc).__name__}: {detail}. Check that the database "
                "exists and is writable (a SQLite file in a writable folder; a running "
                f"database server that accepts these credentials). {_SUPPORTED_STORAGE}"
            ) from exc
        raise ForecasterError(
            f"{where[0].upper()}{where[1:]} failed while {doing}: {type(exc).__name__}: "
            f"{detail}. The trials finished before are kept in it; rerun the same call to "
            "resume once the database works again."
        ) from exc


def _is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database layer (SQLAlchemy, a DB driver, Optuna's
    storage), not from a trial or the caller's code."""
    optuna = _import_optuna()
    if isinstance(exc, ImportError | optuna.exceptions.StorageInternalError):
        return True
    module = type(exc).__module__ or ""
    if module.split(".", 1)[0] in ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "pymysql"):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and "optuna storage upgrade" in text


def _driver_hint(url: str) -> str:
    scheme = url.split("://", 1)[0]
    if scheme == "postgresql+psycopg2":
        return "Install it with: pip install psycopg2-binary"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return (
            'Install it with: pip install "psycopg[binary]" (SQLAlchemy\'s default PostgreSQL '
            "driver; for psycopg2 write the URL as postgresql+psycopg2://...)."
        )
    return "Install the driver that SQLAlchemy names for this URL."


def _storage_url(storage: Any) -> str | None:
    url = getattr(storage, "url", None)
    return mask_uri(url) if isinstance(url, str) else None


def _storage_label(storage: Any, url: str | None) -> str:
    """Where a study lives, for the tracking tag ``forecaster.study_storage``: its masked
    URL, ``"in-memory"``, or the class of another storage object."""
    if url is not None:
        return url
    optuna = _import_optuna()
    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        return "in-memory"
    return type(storage).__name__


# ------------------------------------------------------------------------------------------
# dead and stale trials
# ------------------------------------------------------------------------------------------


def _host_id() -> str:
    """This machine and pid namespace: process ids are comparable only within it."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return "/".join(parts)


def _process_start(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot) on Linux; -1 for a zombie; None unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):
        return -1
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _process_alive(pid: int, start: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as someone else's process
        pass
    now = _process_start(pid)
    if now == -1:
        return False
    return not (start is not None and now is not None and now != start)


def _fail_dead_trials(study: Any) -> list[int]:
    """Mark FAIL the running trials whose process on this machine no longer exists."""
    optuna = _import_optuna()
    host, me = _host_id(), os.getpid()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        pid = attrs.get("pid")
        if attrs.get("host") != host or not isinstance(pid, int) or pid == me:
            continue
        if _process_alive(pid, attrs.get("pid_start")):
            continue
        storage = study._storage  # as optuna's fail_stale_trials: no public API for this
        try:
            storage.set_trial_user_attr(
                trial._trial_id, "fail_reason", f"its process {pid} ended during the trial"
            )
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        except Exception:  # finished meanwhile
            continue
        failed.append(trial.number)
    if failed:
        optuna.logging.get_logger("optuna").warning(
            f"Trials {failed} of study {study.study_name!r} were left running by a process that "
            "ended; they are marked FAIL."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return failed


# ------------------------------------------------------------------------------------------
# objective, pruning, stopping
# ------------------------------------------------------------------------------------------


class _PruningReporter:
    """Epoch callback: reports the running best validation loss and prunes."""

    def __init__(self, trial: Any, sign: float) -> None:
        self.trial = trial
        self.sign = sign
        self.best = math.inf
        self.history: list[dict[str, Any]] = []

    def __call__(self, record: Any, network: Any) -> None:
        self.history.append(record.as_dict())
        value = record.val_loss
        if value is None or not math.isfinite(value):
            return
        self.best = min(self.best, float(value))
        self.trial.report(self.sign * self.best, record.epoch)
        if self.trial.should_prune():
            optuna = _import_optuna()
            raise optuna.TrialPruned(
                f"pruned after epoch {record.epoch} (best val_loss {self.best:.5g})"
            )


def _fit(estimator: Any, data: Any, callbacks: Sequence[Any]) -> Any:
    if isinstance(data, tuple):
        return estimator.fit(*data, callbacks=callbacks)
    return estimator.fit(data, callbacks=callbacks)


class _TrialFailed(ForecasterError):
    """A trial's fit or metric failed; the trial is marked FAIL with the reason in its
    ``user_attrs["error"]`` and the study goes on (``optimize(catch=...)``)."""


def _reason(exc: BaseException, limit: int = 500) -> str:
    """A one-line, readable reason for a failed trial."""
    text = str(exc).strip() or "(no message)"
    if not isinstance(exc, ForecasterError):
        text = f"{type(exc).__name__}: {text}"
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class _Objective:
    estimator: Any
    data: Any
    space: Any
    overrides: dict[str, Any]
    metric: Any
    sign: float
    max_lookback: int | None = None  # the longest lookback the data has room for

    def __call__(self, trial: Any) -> float:
        optuna = _import_optuna()
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("pid_start", _process_start(os.getpid()))
        trial.set_user_attr("host", _host_id())
        reporter = _PruningReporter(trial, self.sign)
        try:
            return self._run(trial, reporter)
        except optuna.TrialPruned:
            trial.set_user_attr("history", reporter.history)
            raise
        except _StopStudy as exc:  # the space or metric is wrong, not this trial: stop
            trial.set_user_attr("error", str(exc))
            raise
        except TrainingDivergedError as exc:  # a bad combination: rank it last, do not retry
            trial.set_user_attr("history", reporter.history)
            trial.set_user_attr("error", str(exc))
            raise optuna.TrialPruned(f"training diverged: {exc}") from exc
        except Exception as exc:
            if _is_storage_error(exc):
                raise  # not the trial's fault: tune reports it (see _storage_errors)
            reason = _reason(exc)  # e.g. a lookback too long for the data, a torch error, OOM
            trial.set_user_attr("error", reason)
            if reporter.history:
                trial.set_user_attr("history", reporter.history)
            raise _TrialFailed(reason) from exc

    def _run(self, trial: Any, reporter: _PruningReporter) -> float:
        params = _sample(trial, self.space, self.estimator, self.metric)
        trial.set_user_attr("params", params)
        self._check_template_lookback(params)
        model = clone(self.estimator).set_params(**{**self.overrides, **params})
        with _paused():
            _fit(model, self.data, [reporter])
        history = list(getattr(model, "history_", reporter.history))
        trial.set_user_attr("history", history)
        if callable(self.metric):
            return _metric_value(self.metric(model, self.data))
        losses = [r["val_loss"] for r in history if r.get("val_loss") is not None]
        losses = [v for v in losses if math.isfinite(v)]
        if not losses:
            raise DataValidationError(
                "The fit produced no validation loss: no series is long enough for a validation "
                "window after lookback + horizon. Use a shorter lookback or more data."
            )
        return min(losses)

    def _check_template_lookback(self, params: Mapping[str, Any]) -> None:
        """A callable space that sets no lookback leaves the template's to every trial: when
        the data has no room for it, stop (a dict space is checked before any trial)."""
        lookback = self.estimator.get_params(deep=False).get("lookback")
        if self.max_lookback is None or "lookback" in params or not _is_int(lookback):
            return
        if lookback > self.max_lookback:
            raise _StopStudy(
                f"The search_space callable sets no lookback, so every trial fits with the "
                f"estimator's lookback={lookback}, and the data has room for lookbacks up to "
                f"{max(self.max_lookback, 0)} (lookback + horizon steps before the validation "
                f"steps, in the longest series). Set a shorter lookback, or sample one."
            )


def _metric_value(value: Any) -> float:
    """The value a metric callable returned, as a float: a real number (numpy's too), or an
    array or tensor of one element (``.item()``). Anything else (None, text, a bool, an
    array or tensor of several values) is a :class:`_MetricError`, which stops the study;
    NaN or an infinity fails this trial only (a diverged fit may score so)."""
    got = f"{type(value).__name__} {_short_repr(value)}"
    if not isinstance(value, numbers.Real | str | bytes) and callable(getattr(value, "item", None)):
        with contextlib.suppress(Exception):  # a tensor or array of several values: refused
            value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise _MetricError(
            f"The metric callable must return a real number (the trial's score), got {got}. "
            "Return a float, e.g. float(score) (one value per fitted model)."
        )
    if not math.isfinite(value):
        raise DataValidationError(f"The metric callable returned {value!r}, not a finite number.")
    return float(value)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = re.sub(r"\s+", " ", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Stopper:
    """Study callback: stop once enough trials are finished (or running elsewhere), or after
    too many failures in a row; updates the progress bar."""

    def __init__(self, n_trials: int | None, bar: Any = None) -> None:
        self.n_trials = n_trials
        self.bar = bar
        self.failures = 0

    def __call__(self, study: Any, trial: Any) -> None:
        optuna = _import_optuna()
        self.failures = self.failures + 1 if trial.state.name == "FAIL" else 0
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            optuna.logging.get_logger("optuna").warning(
                f"{self.failures} trials failed in a row; this process stops tuning. Last "
                f"error: {trial.user_attrs.get('error', 'see the log')}"
            )
            study.stop()
        finished, running = _progress(study)
        if self.bar is not None:
            self.bar.n = finished
            self.bar.refresh()
        if self.n_trials is not None and finished + running >= self.n_trials:
            study.stop()


def _progress(study: Any) -> tuple[int, int]:
    """(finished, running) trial counts of the study."""
    counts = {"COMPLETE": 0, "PRUNED": 0, "RUNNING": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state.name in counts:
            counts[t.state.name] += 1
    return counts["COMPLETE"] + counts["PRUNED"], counts["RUNNING"]


class _TrialHook:
    """Study callback that logs each trial through ``forecaster.tracking.core.trial_callback``.

    The tracking callback is built lazily in the process that runs the trials (it holds an
    MLflow client, which does not pickle to worker processes). A failure is a warning.
    """

    def __init__(
        self, parent_run_id: str, tracking_uri: str | None, limits: Mapping[str, Any]
    ) -> None:
        self.parent_run_id = parent_run_id
        self.tracking_uri = tracking_uri
        self.limits = {k: v for k, v in limits.items() if k in ("request_timeout", "max_retries")}
        self.broken = False
        self._callback: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_callback": None}

    def __call__(self, study: Any, trial: Any) -> None:
        if self.broken:
            return
        try:
            if self._callback is None:
                tracking = importlib.import_module("forecaster.tracking.core")
                self._callback = _call_hook(
                    tracking.trial_callback,
                    parent_run_id=self.parent_run_id,
                    tracking_uri=self.tracking_uri,
                    intermediate_key="best_val_loss",
                    **self.limits,
                )
            self._callback(study, trial)
        except Exception as exc:
            self.broken = True
            warnings.warn(
                f"Tracking trial {trial.number} failed ({exc!r}); trials are no longer logged in "
                "this process. The study itself goes on and is kept in its storage.",
                ForecasterWarning,
                stacklevel=2,
            )


def _paused() -> Any:
    """``forecaster.tracking.core.paused()`` when tracking is loaded: trial fits are not logged as
    runs of their own (an active MLflow run or autolog would log each of them)."""
    pause = getattr(sys.modules.get("forecaster.tracking.core"), "paused", None)
    return pause() if pause is not None else contextlib.nullcontext()


def _run_trials(
    study: Any,
    objective: _Objective,
    n_trials: int | None,
    deadline: float | None,
    callbacks: Sequence[Any],
    bar: Any = None,
) -> None:
    """Run trials in this process until the study has ``n_trials`` finished or time is up."""
    if n_trials is not None and sum(_progress(study)) >= n_trials:
        return
    timeout = None
    if deadline is not None:
        timeout = deadline - time.time()
        if timeout <= 0:
            return
    study.optimize(
        objective,
        n_trials=None,
        timeout=timeout,
        catch=(_TrialFailed,),
        callbacks=[*callbacks, _Stopper(n_trials, bar)],
    )


def _make_sampler(random_state: int | None, n_existing: int, worker: int = 0) -> Any:
    """TPE seeded by ``random_state``, shifted by the trials already in the study (so that a
    resumed study does not repeat the first trials' draws) and by the worker index."""
    optuna = _import_optuna()
    seed = None
    if random_state is not None:
        seed = int(random_state)
        if n_existing or worker:
            digest = hashlib.sha256(f"{random_state}:{n_existing}:{worker}".encode()).digest()
            seed = int.from_bytes(digest[:4], "little")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _make_pruner(pruner: Any, max_epochs: int | None) -> Any:
    optuna = _import_optuna()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if pruner == "hyperband":
        max_resource = max_epochs if isinstance(max_epochs, int) and max_epochs > 1 else "auto"
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_resource, reduction_factor=3
        )
    if pruner in ("none", None):
        return optuna.pruners.NopPruner()
    raise DataValidationError(
        f"pruner={pruner!r} is not supported. Use 'median', 'hyperband', 'none' or an "
        "optuna.pruners.BasePruner instance."
    )


def _worker(payload: dict[str, Any], index: int) -> int:
    """Entry point of a worker process: run trials of the shared study."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, _available_cores() // payload["n_workers"]))
    optuna = _import_optuna()
    study = optuna.load_study(
        study_name=payload["study_name"],
        storage=payload["storage"],
        sampler=_make_sampler(payload["random_state"], payload["n_existing"], index + 1),
        pruner=payload["pruner"],
    )
    before = len(study.get_trials(deepcopy=False))
    _run_trials(
        study, payload["objective"], payload["n_trials"], payload["deadline"], payload["callbacks"]
    )
    return len(study.get_trials(deepcopy=False)) - before


# ------------------------------------------------------------------------------------------
# tune
# ------------------------------------------------------------------------------------------


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes
    ----------
    study : optuna.Study
        The whole study (every trial of every run and process), e.g. for
        ``optuna.visualization``.
    best_params : dict
        The tuned parameters of the best complete trial (set them on a clone of the estimator).
    best_value : float
        Its objective value (by default the best validation loss, in scaled units).
    best_estimator : estimator or None
        A clone of the estimator with ``best_params``, fitted on the whole frame; None when
        ``refit=False``.
    n_trials_finished : int
        Complete and pruned trials in the study.
    n_trials_run : int
        Trials added to the study while this call ran (by its processes, and by other
        machines on a shared storage).
    study_name : str
    storage_url : str or None
        The storage's URL with any password masked; None in memory.
    """

    study: Any
    best_params: dict[str, Any]
    best_value: float
    best_estimator: Any
    n_trials_finished: int
    n_trials_run: int
    study_name: str
    storage_url: str | None = None
    search_space: Any = field(default=None, repr=False)

    def trials_frame(self) -> pl.DataFrame:
        """One row per trial: number, state, value, epochs, seconds, pid and the parameters
        (columns ``params_<name>``)."""
        rows = []
        for t in self.study.get_trials(deepcopy=False):
            seconds = None
            if t.datetime_start is not None and t.datetime_complete is not None:
                seconds = (t.datetime_complete - t.datetime_start).total_seconds()
            row = {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "epochs": len(t.intermediate_values),
                "seconds": seconds,
                "pid": t.user_attrs.get("pid"),
            }
            params = t.user_attrs.get("params", t.params)
            row.update({f"params_{k}": v for k, v in params.items()})
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)


def tune(
    estimator: Any,
    frame: Any,
    *,
    n_trials: int | None = 20,
    timeout: float | None = None,
    search_space: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
    metric: str | Callable[[Any, Any], float] = "val_loss",
    direction: str = "minimize",
    storage: Any = "default",
    study_name: str | None = None,
    n_workers: int = 1,
    pruner: Any = "median",
    random_state: int | None = None,
    refit: bool = True,
    track: bool | None = None,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
    show_progress: bool | None = None,
) -> TuneResult:
    """Tune ``estimator``'s parameters on ``frame`` with an Optuna study.

    Parameters
    ----------
    estimator : RNNForecaster, LSTMForecaster, ..., or RNNRegressor
        The template: its parameters are the fixed part; each trial clones it and sets the
        sampled ones. It needs a validation split (``validation_size > 0``, or
        ``validation_fraction > 0`` for the regressor).
    frame : polars.DataFrame or polars.LazyFrame, or tuple (X, y)
        The training data, *without the test span* (its last ``validation_size`` steps per
        series are the validation data of every trial). ``(X, y)`` for an RNNRegressor. Its
        type and the estimator's columns are checked before the first trial.
    n_trials : int or None, default 20
        Total number of finished (complete or pruned) trials wanted in the study, counting
        those of earlier runs: rerunning a finished call runs nothing, and rerunning after a
        crash runs only the missing trials. Failed trials do not count. None: until
        ``timeout``. 0, negative, non-integer and boolean values are refused (there is no
        "refit only" mode: refit the best parameters yourself with ``result.best_params``).
    timeout : float, optional
        Seconds after which no new trial starts (a running trial is not interrupted); a
        positive finite number (None: no limit).
    search_space : dict or callable, optional
        Parameter name -> an ``optuna.distributions`` object, a list (categorical choices), a
        ``(low, high)`` tuple (uniform range; int when both are ints) or ``(low, high, "log")``
        (log scale). ``segment_length`` is sampled only when ``head`` is "segment" and
        ``nonlinearity`` only when ``cell`` is "rnn". Or a callable ``trial -> dict`` that
        samples with ``trial.suggest_*`` itself. Default: :func:`default_search_space`.
        Parameters that change the task (target, id_col, time_col, horizon, freq, missing)
        are refused, and so are those that change the units of the validation loss (scaling,
        target_transform, loss, validation_size, validation_fraction) unless ``metric`` is a
        callable; every value that can be sampled must pass the parameter table (see the
        module docs).
    metric : "val_loss" or callable, default "val_loss"
        "val_loss": the lowest validation loss over the epochs (the estimator's ``loss`` on the
        scaled validation windows). A callable ``metric(fitted_estimator, frame) -> float``
        replaces it (e.g. a backtest score); pruning still uses the validation loss. Its
        signature is checked before any trial; it may return a real number or a one-element
        array or tensor (``.item()``); None, text, a bool or several values stop the study at
        the first trial; NaN or an infinity fails that trial only.
    direction : {"minimize", "maximize"}, default "minimize"
    storage : "default", str, path-like, optuna storage or None, default "default"
        See :func:`make_storage`; None keeps the study in memory (no resume).
    study_name : str, optional
        Default: ``<class>-<target>-h<horizon>-<digest>``, the digest of the study identity
        (task, units, metric, direction and search space), so that the same call resumes the
        same study and a call for another task gets its own. A study records its identity when
        it is created (see the module docs); reusing its name for another task or space is
        refused, naming both; other fixed parameters that differ give a warning. The data is
        not part of it: a study resumed on newer data (a daily pipeline) keeps its trials, and
        its MLflow parent run (with the new data as tags and as params ``data.<n>.*``).
    n_workers : int, default 1
        Worker processes on the study (needs a database storage). *Documented*: reduced, with
        a ForecasterWarning, to the CPU cores this process may use
        (``os.sched_getaffinity``) and to the trials still missing from ``n_trials`` (each
        worker is a process that imports torch); 1 runs the trials in this process. Each uses
        ``cores // n_workers`` torch threads unless ``OMP_NUM_THREADS`` is set. The estimator,
        frame, search space, metric and callbacks are pickled to them, and a script must guard
        its entry point with ``if __name__ == "__main__":``.
    pruner : {"median", "hyperband", "none"} or optuna pruner, default "median"
        "median": ``MedianPruner(n_startup_trials=5, n_warmup_steps=3)`` (prunes from the
        third epoch of the sixth trial on); "hyperband":
        ``HyperbandPruner`` up to ``max_epochs``. The reported intermediate value after epoch
        ``k`` is the best validation loss up to ``k`` (negated when maximizing).
    random_state : int, optional
        Seeds the TPE sampler (and the trials' fits, when the estimator has no random_state):
        the same seed and data give the same sequence of parameters on the CPU with
        ``n_workers=1``. A resumed study draws from a seed derived from it and the number of
        trials already run.
    refit : bool, default True
        Fit a clone with the best parameters on the whole frame (``best_estimator``).
    track : bool or None, default None
        Log the study to MLflow through :mod:`forecaster.tracking.core` (a parent run, a nested run
        per trial, the best model; see the module docs); None: when MLflow is installed.
    callbacks : sequence of callable
        Optuna study callbacks ``callback(study, frozen_trial)`` after every trial (in the
        worker processes too).
    show_progress : bool or None
        A progress bar over trials (one process); None shows it in a terminal or notebook.

    Returns
    -------
    TuneResult

    Raises
    ------
    ImportError
        When Optuna is not installed.
    StorageError
        (a :class:`~forecaster.DataValidationError`) When the storage cannot be used: an
        unsupported URL, a missing driver, a file that is not a database, a read-only
        database, a database server that refuses the connection. Nothing is run.
    DataValidationError
        Before any trial runs: unknown parameter names, a bad search space (one that samples
        the task or the objective's units, or values a parameter does not accept, or
        lookbacks too long for every series of the frame), a template parameter no fit
        accepts, a frame that is not what the estimator fits on (a pandas frame, missing
        columns, data fit refuses such as missing values under ``missing="error"``), a metric
        callable that cannot be called as ``metric(estimator, frame)``, bad settings, or an
        existing study of another task, search space or direction. At the first trial: a
        callable search space that raises or returns what no fit accepts, a metric that
        returns no number.
    ForecasterError
        When no trial completed (the first distinct errors are quoted), or when the storage
        failed during the study (its finished trials are kept).

    Notes
    -----
    A trial that fails - its sampled parameters do not suit the data (a
    :class:`~forecaster.DataValidationError`, e.g. a lookback a callable space sampled that is
    longer than the series), a torch error or running out of memory in its fit, a metric
    callable that raises or returns NaN or an infinity - is marked FAIL with a readable
    reason in its ``user_attrs["error"]``; one whose training diverged (NaN loss) is pruned.
    The study goes on (a process stops after :data:`MAX_CONSECUTIVE_FAILURES` failures in a
    row). Errors of the storage, and of your
    ``callbacks``, stop the study. Every trial stores ``params``, the per-epoch ``history``,
    ``pid`` and ``host`` in its ``user_attrs``.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from forecaster import RNNForecaster
    >>> t = np.arange(160)
    >>> frame = pl.DataFrame({"time": t, "y": np.sin(2 * np.pi * t / 12)})
    >>> model = RNNForecaster(target="y", lookback=24, horizon=6, max_epochs=1, batch_size=32,
    ...                       progress=False)
    >>> result = tune(model, frame, n_trials=2, storage=None, track=False, random_state=0,
    ...               search_space={"hidden_size": [4, 8], "lr": (1e-3, 1e-2, "log")})
    >>> result.n_trials_finished, sorted(result.best_params)
    (2, ['hidden_size', 'lr'])
    >>> result.best_estimator.predict(frame).height
    6
    """
    optuna = _import_optuna()
    _check_tune_args(
        estimator, n_trials, timeout, n_workers, direction, metric, study_name, random_state,
        refit, track, callbacks, show_progress,
    )  # fmt: skip
    params = estimator.get_params(deep=False)
    _check_frame(estimator, frame)
    if isinstance(frame, pl.LazyFrame) and n_workers > 1:
        frame = frame.collect()
    space = _resolve_space(search_space, estimator, frame, metric)
    max_lookback = _check_data(estimator, frame, space, default_space=search_space is None)
    pruner_obj = _make_pruner(pruner, params.get("max_epochs"))
    storage_obj = make_storage(storage)
    if n_workers > 1 and (
        storage_obj is None or isinstance(storage_obj, optuna.storages.InMemoryStorage)
    ):
        raise DataValidationError(
            "n_workers > 1 shares the study through a database: use storage='default', a "
            "'sqlite:///...' file or a 'postgresql://...' URL instead of storage=None or an "
            "in-memory storage."
        )
    name = study_name or _default_study_name(estimator, space, metric, direction)
    url = _storage_url(storage_obj)
    identity = _study_identity(estimator, space, metric, direction)
    with _storage_errors(url, "open"):
        study = _open_study(storage_obj, name, direction, pruner_obj, identity, space, url)
    overrides: dict[str, Any] = {}
    if params.get("progress", False) is None:
        overrides["progress"] = False
    if random_state is not None and "random_state" in params and params["random_state"] is None:
        overrides["random_state"] = int(random_state)
    sign = -1.0 if direction == "maximize" else 1.0
    objective = _Objective(estimator, frame, space, overrides, metric, sign, max_lookback)
    tracking = _tracking_module(track)
    logger = _StudyLogger(tracking, study, estimator, frame, _storage_label(storage_obj, url))
    try:
        with _storage_errors(url, "tuning"):
            _fail_dead_trials(study)
            n_existing = len(study.get_trials(deepcopy=False))
            workers = _bounded_workers(int(n_workers), n_trials, _progress(study)[0])
            study.sampler = _make_sampler(random_state, n_existing)
            all_callbacks = [*callbacks, *logger.start()]
            deadline = None if timeout is None else time.time() + float(timeout)
            settings = _Settings(
                name, storage_obj, random_state, n_existing, pruner_obj, objective, n_trials,
                deadline, all_callbacks, workers, show_progress,
            )  # fmt: skip
            try:
                study = _optimize(study, settings)
            except _StopStudy as exc:  # shown as what it is: the search space or metric
                raise DataValidationError(f"{exc} {exc.stop_note}") from exc.__cause__
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if not complete:
                logger.finish()
                raise ForecasterError(_no_trial_message(study))
            best_trial = study.best_trial
        best_params = dict(best_trial.user_attrs.get("params", best_trial.params))
        best_estimator = None
        if refit:
            refit_overrides = {k: v for k, v in overrides.items() if k == "random_state"}
            best_estimator = clone(estimator).set_params(**{**refit_overrides, **best_params})
            # log_study logs the refitted model on the study's run: not a run of its own
            with _paused() if tracking is not None else contextlib.nullcontext():
                _fit(best_estimator, frame, ())
        with _storage_errors(url, "reading the results"):
            result = TuneResult(
                study=study,
                best_params=best_params,
                best_value=float(best_trial.value),
                best_estimator=best_estimator,
                n_trials_finished=_progress(study)[0],
                n_trials_run=len(study.get_trials(deepcopy=False)) - n_existing,
                study_name=name,
                storage_url=url,
                search_space=space,
            )
        logger.finish(
            result=result, best_estimator=best_estimator, search_space=space, metric=metric
        )
    finally:
        logger.replay()
    return result


@dataclass
class _Settings:
    """What the trial loop needs (also sent to worker processes)."""

    study_name: str
    storage: Any
    random_state: int | None
    n_existing: int
    pruner: Any
    objective: _Objective
    n_trials: int | None
    deadline: float | None
    callbacks: list[Any]
    n_workers: int
    show_progress: bool | None


def _optimize(study: Any, settings: _Settings) -> Any:
    """Run the trials in this process or in worker processes; the study afterwards."""
    optuna = _import_optuna()
    if settings.n_workers == 1:
        bar = None
        from forecaster.training.loop import _progress_enabled

        if _progress_enabled(settings.show_progress):
            from tqdm.auto import tqdm

            bar = tqdm(
                total=settings.n_trials,
                initial=_progress(study)[0],
                desc=settings.study_name,
                unit="trial",
            )
        try:
            _run_trials(
                study, settings.objective, settings.n_trials, settings.deadline,
                settings.callbacks, bar,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        return study
    _run_workers(
        {
            "study_name": settings.study_name,
            "storage": settings.storage,
            "random_state": settings.random_state,
            "n_existing": settings.n_existing,
            "pruner": settings.pruner,
            "objective": settings.objective,
            "n_trials": settings.n_trials,
            "deadline": settings.deadline,
            "callbacks": settings.callbacks,
            "n_workers": settings.n_workers,
        }
    )
    study = optuna.load_study(
        study_name=settings.study_name,
        storage=settings.storage,
        sampler=study.sampler,
        pruner=settings.pruner,
    )
    _fail_dead_trials(study)  # trials of a worker that was killed
    return study


class _StudyLogger:
    """The study's MLflow logging through ``forecaster.tracking.core`` (when ``track``): the parent
    run before the trials, a callback per trial, the summary and best model at the end.

    A warning of the first :func:`~forecaster.tracking.core.log_study` (e.g. an unreachable server)
    is held back: the final call retries everything and warns about what is still missing, so
    one warning says it all. Held-back warnings are shown when the final call is not reached.
    """

    def __init__(self, tracking: Any, study: Any, estimator: Any, frame: Any, storage: str) -> None:
        self.tracking = tracking
        self.kwargs = {"study": study, "estimator": estimator, "frame": frame}
        self.kwargs["storage"] = storage
        self.held: list[warnings.WarningMessage] = []

    def start(self) -> list[Any]:
        """Create (or find) the study's run; the trial callbacks to add."""
        if self.tracking is None:
            return []
        with warnings.catch_warnings(record=True) as caught:
            parent_run = _log_study(self.tracking, **self.kwargs)
        self.held = [w for w in caught if issubclass(w.category, ForecasterWarning)]
        for w in caught:
            if not issubclass(w.category, ForecasterWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if not isinstance(parent_run, str) or not hasattr(self.tracking, "trial_callback"):
            return []
        mlflow = sys.modules.get("mlflow")
        uri = mlflow.get_tracking_uri() if mlflow is not None else None
        limits = getattr(self.tracking, "request_limits", dict)()
        return [_TrialHook(parent_run, uri, limits)]

    def finish(self, **kwargs: Any) -> None:
        """The summary (and the best model) on the study's run."""
        if self.tracking is None:
            return
        self.held = []
        _log_study(self.tracking, **self.kwargs, **kwargs)

    def replay(self) -> None:
        for w in self.held:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.held = []


def _check_tune_args(
    estimator: Any,
    n_trials: Any,
    timeout: Any,
    n_workers: Any,
    direction: Any,
    metric: Any,
    study_name: Any,
    random_state: Any,
    refit: Any,
    track: Any,
    callbacks: Any,
    show_progress: Any,
) -> None:
    """Refuse settings of :func:`tune` that it cannot honour, before anything runs."""
    if not all(hasattr(estimator, a) for a in ("get_params", "set_params", "fit")):
        raise DataValidationError(
            f"tune needs a forecaster estimator (get_params, set_params, fit), got "
            f"{type(estimator).__name__}."
        )
    if n_trials is not None and (not _is_int(n_trials) or n_trials < 1):
        raise DataValidationError(
            f"n_trials must be an integer >= 1 (the number of finished trials wanted) or None "
            f"(until timeout), got {n_trials!r}."
        )
    if timeout is not None and (
        isinstance(timeout, bool | np.bool_)
        or not isinstance(timeout, numbers.Real)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise DataValidationError(
            f"timeout must be a positive, finite number of seconds or None (no limit), got "
            f"{timeout!r}."
        )
    if n_trials is None and timeout is None:
        raise DataValidationError("Give n_trials, timeout or both; with neither tune never ends.")
    if not _is_int(n_workers) or n_workers < 1:
        raise DataValidationError(f"n_workers must be an integer >= 1, got {n_workers!r}.")
    _check_objective(estimator, direction, metric)
    if study_name is not None and (
        not isinstance(study_name, str) or not study_name.strip() or len(study_name) > 512
    ):
        raise DataValidationError(
            f"study_name must be a non-empty string of at most 512 characters or None, got "
            f"{study_name!r}."
        )
    if random_state is not None and (not _is_int(random_state) or not 0 <= random_state < 2**32):
        raise DataValidationError(
            f"random_state must be an integer from 0 to 2**32 - 1 or None, got {random_state!r}."
        )
    for arg, value, allowed in (
        ("refit", refit, (True, False)),
        ("track", track, (True, False, None)),
        ("show_progress", show_progress, (True, False, None)),
    ):
        if not (value is None or isinstance(value, bool | np.bool_)) or value not in allowed:
            raise DataValidationError(
                f"{arg} must be one of {', '.join(map(str, allowed))}, got {value!r}."
            )
    _check_callbacks(callbacks)


def _check_frame(estimator: Any, frame: Any) -> None:
    """The tuning data must be what the estimator fits on (a polars frame with its columns, or
    ``(X, y)`` for the regressor): otherwise every trial would fail the same way."""
    params = estimator.get_params(deep=False)
    if "lookback" not in params or "horizon" not in params:  # RNNRegressor: fit(X, y)
        if not (isinstance(frame, tuple) and len(frame) == 2):
            raise DataValidationError(
                f"tune fits a {type(estimator).__name__} on arrays: pass frame=(X, y), got "
                f"{type(frame).__module__}.{type(frame).__name__}."
            )
        return
    schema = frame_schema(frame, what="frame given to tune")
    wanted: list[str] = []
    for role in ("target", "time_col", "id_col", "covariates", "future_covariates"):
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


def _check_data(estimator: Any, frame: Any, space: Any, *, default_space: bool) -> int | None:
    """Before any trial, what every trial's fit would refuse the same way: the frame as fit
    reads it (missing values under ``missing="error"``, an irregular grid, ...), and
    lookbacks (those a dict space can sample, or the template's when it samples none) that
    leave no training window in the longest series. A forecaster only: a regressor's
    windows are its ``X``. Returns the longest lookback the data has room for (None for a
    regressor)."""
    params = estimator.get_params(deep=False)
    if "lookback" not in params or "horizon" not in params:
        return None
    from forecaster.data.core import Panel

    roles = ("target", "time_col", "id_col", "covariates", "future_covariates")
    columns = {role: params.get(role) for role in roles}
    for role in ("covariates", "future_covariates"):
        if not isinstance(space, Mapping) or role in space:
            columns[role] = None  # the trials choose them
    with warnings.catch_warnings():  # e.g. dropped single-row series: each fit warns itself
        warnings.simplefilter("ignore", ForecasterWarning)
        try:
            panel = Panel.from_frame(
                frame, **columns, freq=params.get("freq", "auto"),
                missing=params.get("missing", "error"),
            )  # fmt: skip
        except DataValidationError as exc:
            raise DataValidationError(
                f"tune reads the frame as each trial's fit would, and every trial would fail: {exc}"
            ) from None
    return _check_lookbacks(params, space, np.asarray(panel.lengths, dtype=np.int64), default_space)


def _holdout_steps(validation_size: Any, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """The validation steps a forecaster's fit holds out of series of ``lengths`` (as
    ``RNNForecaster.fit`` does: an int is that many steps, a fraction at least ``horizon``)."""
    if isinstance(validation_size, bool) or not isinstance(validation_size, numbers.Real):
        return np.zeros_like(lengths)
    if validation_size == 0:
        return np.zeros_like(lengths)
    if isinstance(validation_size, numbers.Integral):
        return np.full_like(lengths, int(validation_size))
    steps = np.ceil(lengths * float(validation_size)).astype(np.int64)
    return np.maximum(steps, horizon)


def _check_lookbacks(
    params: Mapping[str, Any], space: Any, lengths: np.ndarray, default_space: bool
) -> int:
    """Refuse lookbacks no series of ``lengths`` has a training window for (a fit needs
    ``lookback + horizon`` steps before the validation steps it holds out); the longest
    lookback the data has room for."""
    if isinstance(space, Mapping) and "lookback" in space:
        distribution = space["lookback"]
        choices = getattr(distribution, "choices", None)
        values = list(choices) if choices is not None else [distribution.low, distribution.high]
        shown = list(choices) if choices is not None else (distribution.low, distribution.high)
        where = (
            f"The default search space (lookback {shown})"
            if default_space
            else f"search_space['lookback'] = {shown!r}"
        )
    elif isinstance(space, Mapping):
        values = [params["lookback"]]
        where = f"lookback={params['lookback']!r} (the estimator's; the space does not sample it)"
    else:
        values, where = [], ""  # a callable space: checked at its first trial (_Objective)
    horizon = int(params["horizon"])
    vs = params.get("validation_size", 0)
    if isinstance(space, Mapping) and "validation_size" in space:
        vs = 0  # sampled: no holdout is the bound that refuses nothing a trial could fit
    holdout = _holdout_steps(vs, lengths, horizon)
    room = lengths - holdout - horizon
    best = int(np.argmax(room)) if len(room) else 0
    longest = int(room[best]) if len(room) else 0
    too_long = [v for v in values if _is_int(v) and v > longest]
    if not too_long:
        return longest
    held = f" and the {int(holdout[best])} validation steps fit holds out" if holdout[best] else ""
    if where.startswith("lookback="):
        problem = f"{where} is too long for the data"
    else:
        problem = f"{where} can sample lookbacks too long for the data ({too_long})"
    fix = (
        f"Use lookbacks up to {longest}, a shorter horizon or validation_size, or longer series"
        if longest >= 1
        else "No lookback fits: use a shorter horizon or validation_size, or longer series"
    )
    raise DataValidationError(
        f"{problem}: a trial's fit needs a series with lookback + horizon ({horizon}) "
        f"steps{held}, and the longest series has {int(lengths[best]) if len(lengths) else 0} "
        f"steps, so lookback can be at most {max(longest, 0)}. {fix}. No trial was run."
    )


def _available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _bounded_workers(n_workers: int, n_trials: int | None, finished: int) -> int:
    """``n_workers`` reduced to the cores available and to the trials still wanted, with a
    warning that says why (each worker is a process that imports torch: more workers than
    cores, or than trials, only cost memory and start-up time)."""
    cores = _available_cores()
    limits = [(cores, f"this process may run on {cores} CPU core(s)")]
    if n_trials is not None:
        remaining = n_trials - finished
        if remaining <= 0:
            return 1  # nothing to run: the study is complete
        limits.append((remaining, f"{remaining} trial(s) remain to reach n_trials={n_trials}"))
    bound, why = min(limits, key=lambda item: item[0])
    if n_workers <= bound:
        return n_workers
    warnings.warn(
        f"n_workers={n_workers} reduced to {bound}: {why}. Each worker is a process of its own; "
        "on several machines, run the same tune call on each (same storage and study_name).",
        ForecasterWarning,
        stacklevel=3,
    )
    return bound


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_objective(estimator: Any, direction: Any, metric: Any) -> None:
    if direction not in ("minimize", "maximize"):
        raise DataValidationError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
    if not callable(metric) and metric != "val_loss":
        raise DataValidationError(
            f"metric={metric!r} is not supported. Use 'val_loss' or a callable "
            "metric(fitted_estimator, frame) -> float."
        )
    if callable(metric):
        _check_metric_signature(metric)
    if metric == "val_loss" and direction != "minimize":
        raise DataValidationError("metric='val_loss' is minimized; use direction='minimize'.")
    params = estimator.get_params(deep=False)
    validation = params.get("validation_size", params.get("validation_fraction"))
    if metric == "val_loss" and validation == 0:
        name = "validation_size" if "validation_size" in params else "validation_fraction"
        raise DataValidationError(
            f"tune selects parameters on the validation split, but {name}=0 disables it. Set "
            f"{name} > 0 (e.g. 0.1), or pass a metric callable that scores the fitted model."
        )


def _check_metric_signature(metric: Callable[..., Any]) -> None:
    """A metric callable must take ``(fitted_estimator, frame)``: otherwise every trial
    would train and then fail the same way."""
    try:
        inspect.signature(metric).bind(None, None)
    except TypeError as exc:
        raise DataValidationError(
            f"The metric {_qualname(metric)} cannot be called as metric(fitted_estimator, "
            f"frame): {exc}. tune calls it after each trial's fit with the fitted estimator and "
            "the frame, e.g. metric=lambda model, frame: model.score(frame)."
        ) from None
    except ValueError:  # no signature (a builtin): trust it
        pass


def _check_callbacks(callbacks: Any) -> None:
    if isinstance(callbacks, str | bytes) or not isinstance(callbacks, Iterable):
        raise DataValidationError(
            f"callbacks must be a list of callables callback(study, frozen_trial), got "
            f"{callbacks!r}."
        )
    for callback in callbacks:
        if not callable(callback):
            raise DataValidationError(
                f"callbacks must be callables callback(study, frozen_trial), got {callback!r}."
            )
        try:
            inspect.signature(callback).bind(None, None)
        except TypeError as exc:
            raise DataValidationError(
                f"The callback {callback!r} cannot be called as callback(study, frozen_trial): "
                f"{exc}."
            ) from exc
        except ValueError:  # no signature (a builtin): trust it
            pass


def _run_workers(payload: dict[str, Any]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    n = payload["n_workers"]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
        futures = [pool.submit(_worker, payload, i) for i in range(n)]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:
                errors.append(exc)
    if errors:
        first = errors[0]
        if isinstance(first, ForecasterError) or _is_storage_error(first):
            raise first  # a storage error is reported by tune (see _storage_errors)
        raise ForecasterError(
            f"A tuning worker process failed ({_reason(first)}); {len(errors)} of {n} workers "
            "failed. The finished trials are kept in the storage: rerun the same call to resume."
        ) from first


_TASK_ATTR = "forecaster.task"
_SPACE_ATTR = "forecaster.search_space"
_FIXED_ATTR = "forecaster.fixed_params"
# The study identity: what defines the task and the objective's units (a difference refuses
# the reuse of a study). covariates and calendar (inputs) are part of it too; lookback and the
# network and training parameters are not (they change how good a trial is, not what its value
# measures): they are recorded in _FIXED_ATTR and a difference is a warning.
_IDENTITY_PARAMS = (*_TASK_PARAMS, *_UNIT_PARAMS, "covariates", "future_covariates", "calendar")
# Settings of a run, not of the model: neither identity nor fixed parameters.
_RUN_PARAMS = (
    "progress", "device", "checkpoint_dir", "checkpoint_every", "resume", "on_oom",
    "random_state",
)  # fmt: skip


def _study_identity(estimator: Any, space: Any, metric: Any, direction: str) -> dict[str, str]:
    """What a study is for, as JSON study user attributes: the task (estimator class, the
    parameters that define the task and the objective's units, metric, direction), the search
    space, and the template's other fixed parameters (see :data:`_IDENTITY_PARAMS`). Callables
    (a metric, a search space) are named by :func:`_callable_key`."""
    params = estimator.get_params(deep=False)
    task: dict[str, Any] = {"estimator": type(estimator).__name__}
    task.update({k: _json_value(params[k]) for k in _IDENTITY_PARAMS if k in params})
    task["metric"] = _callable_key(metric) if callable(metric) else metric
    task["direction"] = direction
    if isinstance(space, Mapping):
        optuna = _import_optuna()
        space_json: Any = {
            k: json.loads(optuna.distributions.distribution_to_json(v))
            for k, v in sorted(space.items())
        }
    else:
        space_json = {"callable": _callable_key(space)}
    sampled = set(space) if isinstance(space, Mapping) else set()
    skip = {*_IDENTITY_PARAMS, *_RUN_PARAMS, *sampled}
    fixed = {k: _json_value(v) for k, v in params.items() if k not in skip}
    return {
        _TASK_ATTR: json.dumps(task, sort_keys=True),
        _SPACE_ATTR: json.dumps(space_json, sort_keys=True),
        _FIXED_ATTR: json.dumps(fixed, sort_keys=True),
    }


def _callable_key(obj: Any) -> dict[str, str]:
    """A callable's stable name: its qualified name and a digest of its code (bytecode,
    constants, names, nested functions) and of the plain values it captures (defaults,
    closure cells, ``functools.partial`` arguments, an instance's attributes). Two lambdas
    of one module differ by their code; the same function gives the same key in every process
    of one Python version (a new Python version compiles other bytecode: another key)."""
    digest = hashlib.sha256()
    _digest_callable(obj, digest, 0)
    return {"name": _qualname(obj), "code": digest.hexdigest()[:16]}


def _digest_callable(obj: Any, digest: Any, depth: int) -> None:
    if depth > 3:
        return
    if isinstance(obj, functools.partial):
        _digest_callable(obj.func, digest, depth + 1)
        digest.update(_stable_repr((obj.args, obj.keywords)).encode())
        return
    function = obj
    if not hasattr(obj, "__code__"):  # a callable object: its class's __call__
        found = (k.__dict__["__call__"] for k in type(obj).__mro__ if "__call__" in k.__dict__)
        function = next(found, None)
    code = getattr(function, "__code__", None)
    if code is not None:
        _digest_code(code, digest)
    defaults = getattr(function, "__defaults__", None), getattr(function, "__kwdefaults__", None)
    digest.update(_stable_repr(defaults).encode())
    for cell in getattr(function, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            value = cell.cell_contents
            if callable(value) and hasattr(value, "__code__"):
                _digest_callable(value, digest, depth + 1)
            else:
                digest.update(_stable_repr(value).encode())
    if function is not obj:  # a callable object: its state too
        digest.update(_stable_repr(getattr(obj, "__dict__", None)).encode())


def _digest_code(code: Any, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _digest_code(const, digest)
        else:
            digest.update(_stable_repr(const).encode())


def _stable_repr(value: Any, depth: int = 0) -> str:
    """``repr`` of plain values (numbers, text, containers of them); a type name for anything
    whose repr would hold a memory address (different in every process)."""
    value = _plain(value)
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        items = [_stable_repr(v, depth + 1) for v in value]
        if isinstance(value, set | frozenset):
            items.sort()
        return f"{type(value).__name__}({', '.join(items)})"
    if depth < 4 and isinstance(value, dict):
        items = sorted(
            f"{_stable_repr(k, depth + 1)}: {_stable_repr(v, depth + 1)}" for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    text = repr(value)
    if " at 0x" in text or " object at " in text or len(text) > 1000:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    value = _plain(value)
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


def _open_study(
    storage: Any,
    name: str,
    direction: str,
    pruner: Any,
    identity: Mapping[str, str],
    space: Any,
    url: str | None,
) -> Any:
    """Create the study, or load it when it exists and is for the same task and search space
    (refused otherwise, naming both)."""
    optuna = _import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True,
            pruner=pruner,
        )  # fmt: skip
    where = f" in the storage {url!r}" if url else ""
    directions = [d.name.lower() for d in study.directions]
    if directions != [direction]:
        raise DataValidationError(
            f"The study {name!r}{where} is to {' and '.join(directions)}, not to {direction}. "
            "Use another study_name."
        )
    recorded = study.user_attrs
    if all(recorded.get(key) is None for key in (_TASK_ATTR, _SPACE_ATTR)):
        _check_existing_space(study, space)  # a study written before the attributes existed
        for key, value in identity.items():
            study.set_user_attr(key, value)
        recorded = study.user_attrs  # read again: another process may have been first
    differences = _identity_differences(recorded, identity)
    if differences:
        raise DataValidationError(
            f"The study {name!r}{where} was created for another task or search space, and its "
            f"trials cannot be mixed with this call's: {'; '.join(differences)}. Use another "
            f"study_name for this task (or delete the old study with "
            f"optuna.delete_study(study_name={name!r}, storage=...))."
        )
    _compare_fixed(study, recorded, identity[_FIXED_ATTR], f"{name!r}{where}")
    return study


def _compare_fixed(study: Any, recorded: Mapping[str, Any], fixed: str, shown: str) -> None:
    """Warn when the template's fixed parameters (not sampled, not part of the identity)
    differ from those the study was created with: its earlier trials were measured in the same
    units but with other settings. A study without the record gets this call's."""
    old_text = recorded.get(_FIXED_ATTR)
    if old_text is None:
        study.set_user_attr(_FIXED_ATTR, fixed)
        return
    try:
        old = json.loads(old_text)
    except (TypeError, ValueError):
        old = {}
    new = json.loads(fixed)
    if not isinstance(old, dict):
        old = {}
    changed = [
        f"{k}: the study has {_show(old[k]) if k in old else 'none'}, this call "
        f"{_show(new[k]) if k in new else 'none'}"
        for k in sorted(set(old) | set(new))
        if old.get(k, ...) != new.get(k, ...)
    ]
    if changed:
        shown_changes = "; ".join(changed[:8]) + (
            f"; and {len(changed) - 8} more" if len(changed) > 8 else ""
        )
        warnings.warn(
            f"The study {shown} was created with other fixed parameters ({shown_changes}). Its "
            "earlier trials were fitted with the old values: their losses are in the same units "
            "but the best trial may be one of them, and best_params are refitted with this "
            "call's values. Use another study_name to keep the two apart.",
            ForecasterWarning,
            stacklevel=4,
        )


def _identity_differences(recorded: Mapping[str, Any], identity: Mapping[str, str]) -> list[str]:
    """What differs between a study's recorded task and space and this call's, one item per
    key: ``"horizon: the study has 6, this call 12"``."""

    def parse(text: Any) -> dict[str, Any]:
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        return value if isinstance(value, dict) else {"(unreadable)": text}

    out = []
    for key, label in ((_TASK_ATTR, ""), (_SPACE_ATTR, "search space ")):
        old, new = parse(recorded.get(key)), parse(identity[key])
        for name in sorted(set(old) | set(new), key=str):
            if name not in new or name not in old or old[name] != new[name]:
                before = _show(old[name]) if name in old else "none"
                after = _show(new[name]) if name in new else "none"
                out.append(f"{label}{name}: the study has {before}, this call {after}")
    if len(out) > 8:
        out = [*out[:8], f"and {len(out) - 8} more"]
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict) and "name" in value and "attributes" in value:  # a distribution
        attributes = ", ".join(f"{k}={v!r}" for k, v in value["attributes"].items())
        return f"{value['name']}({attributes})"
    if isinstance(value, dict) and set(value) == {"name", "code"}:  # a callable
        return f"{value['name']} (code {value['code']})"
    return repr(value)


def _check_existing_space(study: Any, space: Any) -> None:
    if not isinstance(space, Mapping):
        return
    optuna = _import_optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False, states=states):
        for pname, old in trial.distributions.items():
            if pname in space and not _same_kind(old, space[pname]):
                raise DataValidationError(
                    f"The study {study.study_name!r} sampled {pname!r} from {old!r}, and this "
                    f"search space has {space[pname]!r}: a study keeps the kind and categorical "
                    "choices of each parameter. Use a new study_name for the new space."
                )


def _no_trial_message(study: Any) -> str:
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}  # distinct reason -> first trial number
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
        if t.state.name == "FAIL":
            reason = t.user_attrs.get("error") or t.user_attrs.get("fail_reason")
            if reason and reason not in reasons:
                reasons[str(reason)] = t.number
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"
    message = f"No trial of study {study.study_name!r} completed ({summary})."
    if reasons:
        shown = [f"trial {number}: {reason}" for reason, number in list(reasons.items())[:3]]
        more = f" (and {len(reasons) - 3} other errors)" if len(reasons) > 3 else ""
        message += f" Errors: {' | '.join(shown)}{more}"
    return message


def _default_study_name(estimator: Any, space: Any, metric: Any, direction: str) -> str:
    """``<class>-<target>-h<horizon>-<digest>``: the digest covers the study identity (task,
    units, metric, direction and search space: see :func:`_study_identity`), so a call that
    would be refused on a named study gets a study of its own."""
    params = estimator.get_params(deep=False)
    identity = _study_identity(estimator, space, metric, direction)
    key = {k: identity[k] for k in (_TASK_ATTR, _SPACE_ATTR)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    target = params.get("target")
    target = target if isinstance(target, str) or target is None else "+".join(map(str, target))
    label = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(target))[:40] if target is not None else ""
    horizon = f"h{params['horizon']}" if "horizon" in params else ""
    parts = [type(estimator).__name__, label, horizon]
    return "-".join(p for p in parts if p) + "-" + digest[:10]


def _qualname(obj: Any) -> str:
    if isinstance(obj, functools.partial):
        return f"functools.partial({_qualname(obj.func)})"
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _tracking_module(track: bool | None) -> Any:
    if track is False:
        return None
    if track is None and importlib.util.find_spec("mlflow") is None:
        return None
    try:
        return importlib.import_module("forecaster.tracking.core")
    except ImportError as exc:
        if track:
            warnings.warn(
                f"track=True, but forecaster.tracking cannot be imported ({exc}); the study is "
                "not logged to MLflow.",
                ForecasterWarning,
                stacklevel=3,
            )
        return None


def _call_hook(hook: Callable[..., Any], **kwargs: Any) -> Any:
    """Call ``hook`` with the keyword arguments its signature accepts."""
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return hook(**kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        names = {p.name for p in parameters if p.kind is not p.POSITIONAL_ONLY}
        kwargs = {k: v for k, v in kwargs.items() if k in names}
    return hook(**kwargs)


def _log_study(tracking: Any, **kwargs: Any) -> Any:
    hook = getattr(tracking, "log_study", None)
    if hook is None:
        return None
    try:
        return _call_hook(hook, **kwargs)
    except Exception as exc:
        warnings.warn(
            f"Logging the study to MLflow failed ({exc!r}). The study is kept in its storage "
            "and tuning goes on; log it again with forecaster.tracking.core.log_study.",
            ForecasterWarning,
            stacklevel=3,
        )
        return None

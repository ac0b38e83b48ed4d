"""The table: :data:`PARAMETERS` maps a parameter name to its rule; :func:`check` and
:func:`check_params` apply it; :func:`check_callbacks` checks a list of callbacks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from forecaster._validation.rules import (
    Calendar,
    Choice,
    Device,
    Flag,
    Folder,
    Freq,
    Integer,
    Name,
    Names,
    Probabilities,
    Real,
    Refit,
    Rule,
    StepsOrFraction,
    describe_value,
)
from forecaster.exceptions import DataValidationError

__all__ = [
    "BASELINES",
    "CALENDAR_FEATURES",
    "CELLS",
    "HEADS",
    "LOSSES",
    "LR_SCHEDULES",
    "MAX_BATCH",
    "MAX_N_FFT",
    "MAX_SAMPLE_RATE",
    "MAX_SIZE",
    "MISSING_POLICIES",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "ON_OOM",
    "ORIGINS",
    "PARAMETERS",
    "SCALING_METHODS",
    "TARGET_TRANSFORMS",
    "WINDOWS",
    "check",
    "check_callbacks",
    "check_params",
]

CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
HEADS: tuple[str, ...] = ("direct", "seq2seq", "recursive", "segment")
NORMALIZATIONS: tuple[str, ...] = ("none", "last", "revin")
NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")
LOSSES: tuple[str, ...] = ("mse", "mae", "huber", "quantile")
LR_SCHEDULES: tuple[str, ...] = ("none", "cosine", "plateau", "onecycle")
ON_OOM: tuple[str, ...] = ("raise", "split")
BASELINES: tuple[str, ...] = ("auto", "best", "none")
SCALING_METHODS: tuple[str, ...] = ("standard", "robust", "minmax", "none")
TARGET_TRANSFORMS: tuple[str, ...] = ("auto", "none", "log", "log1p", "boxcox")
MISSING_POLICIES: tuple[str, ...] = ("error", "ffill", "zero", "interpolate")
CALENDAR_FEATURES: tuple[str, ...] = (
    "minute",
    "hour",
    "dayofweek",
    "dayofmonth",
    "dayofyear",
    "month",
)
WINDOWS: tuple[str, ...] = ("expanding", "sliding")
ORIGINS: tuple[str, ...] = ("auto", "calendar", "series")
SERIES_ENDS: tuple[str, ...] = ("frame", "training", "cutoff", "origins")
"""What the end of each series of a frame read is, for the warning about missing targets
there (:func:`~forecaster.data.suspicious.warn_missing_ends`)."""

MAX_SIZE = 2**31 - 1
"""Largest window length, batch size or layer width accepted: window indexes and batch
positions are 32-bit, and no tensor dimension of a recurrent network gets near it."""

_MAX_SEED = 2**32 - 1

MAX_BATCH = MAX_SIZE // 4
"""Largest batch size: validation batches hold ``4 * batch_size`` windows, which must stay a
valid size too."""

MAX_N_FFT = 2**16
"""Largest FFT window of the audio features (65,536 samples: 1.5 s at 44.1 kHz, far beyond the
25 to 100 ms windows of speech and music features)."""

MAX_SAMPLE_RATE = 1_000_000
"""Largest audio sample rate accepted (1 MHz; studio audio is at most 384 kHz)."""

MIN_LEVEL = 1.0
"""Prediction-interval levels are percentages above this and below 100. A level up to 1 (a
0.8 % interval) is almost always a fraction meant as a percentage (0.8 for 80 %), so it is
refused rather than silently giving an interval of nearly zero width."""

LEVEL_HINT = "A level is the nominal coverage in percent: 80 for an 80 % interval, not 0.8."

ONE_LEVEL = Real(low=MIN_LEVEL, high=100.0, low_open=True, high_open=True, hint=LEVEL_HINT)
"""The rule of one prediction-interval level (a number, not a list: ``predict_interval``, the
interval scores); the ``level`` parameter of the table takes one or several."""


def _size(**kwargs: Any) -> Integer:
    return Integer(low=kwargs.pop("low", 1), high=MAX_SIZE, **kwargs)


PARAMETERS: dict[str, Rule] = {
    # columns
    "target": Names(),
    "time_col": Name(),
    "id_col": Name(none=True),
    "covariates": Names(none=True),
    "future_covariates": Names(none=True),
    "static_covariates": Names(none=True),
    # data and windows
    "freq": Freq(none=True),
    "missing": Choice(choices=MISSING_POLICIES),
    "ends": Choice(choices=SERIES_ENDS),
    "calendar": Calendar(features=CALENDAR_FEATURES, none=True),
    "scaling": Choice(choices=SCALING_METHODS),
    "target_transform": Choice(choices=TARGET_TRANSFORMS),
    "lookback": _size(auto=True),
    "horizon": _size(),
    "stride": _size(),
    "windows_per_epoch": _size(none=True),
    "validation_size": StepsOrFraction(),
    "baseline": Choice(choices=BASELINES),
    "validation_fraction": Real(low=0.0, high=0.9),
    # network
    "cell": Choice(choices=CELLS),
    "head": Choice(choices=HEADS),
    "normalization": Choice(choices=NORMALIZATIONS),
    "target_feature": _size(low=0),
    "nonlinearity": Choice(choices=NONLINEARITIES),
    "hidden_size": _size(),
    "num_layers": _size(),
    "segment_length": _size(auto=True),
    "dropout": Real(low=0.0, high=1.0, high_open=True),
    "channel_independent": Flag(none=True),
    "past_covariates": Flag(),
    "linear_skip": Flag(auto=True),
    "static_at_horizon": Flag(),
    "future_at_step": Flag(),
    "n_features": _size(),
    "n_targets": _size(),
    "n_future": _size(low=0),
    "n_members": _size(),
    "n_ensemble": _size(),
    # training
    "loss": Choice(choices=LOSSES),
    "quantiles": Probabilities(none=True),
    "level": Probabilities(
        none=True, low=MIN_LEVEL, high=100.0, example="[80, 95]", percent=1.0, hint=LEVEL_HINT
    ),
    "lr": Real(low=0.0, high=10.0, low_open=True),
    "weight_decay": Real(low=0.0, high=10.0),
    "batch_size": Integer(
        low=1,
        high=MAX_BATCH,
        high_hint="Validation batches hold 4 x batch_size windows, which must stay below 2**31; "
        "a batch larger than the training windows is one batch per epoch anyway.",
    ),
    "max_epochs": Integer(low=1),
    "patience": Integer(low=1, none=True),
    "grad_clip": Real(low=0.0, high=1e12, low_open=True, none=True),
    "lr_schedule": Choice(choices=LR_SCHEDULES),
    "ema_decay": Real(low=0.0, high=1.0, high_open=True, none=True, auto=True),
    "max_time": Real(low=0.0, high=1e12, none=True),
    "checkpoint_dir": Folder(none=True),
    "checkpoint_every": Integer(low=1),
    "on_oom": Choice(choices=ON_OOM),
    "device": Device(),
    "random_state": Integer(
        low=0,
        high=_MAX_SEED,
        none=True,
        hint="Seeds go from 0 to 2**32 - 1.",
        high_hint="Seeds go from 0 to 2**32 - 1; pass e.g. random_state=0.",
    ),
    "seed": Integer(
        low=0,
        high=2**63 - 1,
        none=True,
        high_hint="Seeds of the batch order are 64-bit integers; pass e.g. seed=0.",
    ),
    "progress": Flag(none=True),
    "resume": Flag(),
    # evaluation and splitters
    "folds": Integer(low=1),
    "step": Integer(low=1, none=True),
    "gap": Integer(low=0, high=MAX_SIZE),
    "window": Choice(choices=WINDOWS),
    "origins": Choice(choices=ORIGINS),
    "train_size": Integer(low=1, none=True),
    "refit": Refit(),
    "normalize": Choice(choices=("series", "window"), none=True),
    "rolling": Integer(
        low=1,
        high=MAX_SIZE,
        high_hint="It counts calibration windows; None uses them all.",
        none=True,
        label="rolling (calibration windows per series at each origin)",
        hint="e.g. rolling=720 for the last month of hourly windows; None uses them all.",
    ),
    "m": Integer(
        low=1,
        label="m (the seasonal period)",
        hint="Use 1 for no seasonality, e.g. m=24 for hourly data with a daily cycle.",
    ),
    "n_splits": Integer(low=1),
    "test_size": Integer(low=1),
    # audio features
    "n_mfcc": Integer(low=1, high=1024, high_hint="Speech and music features use 13 to 40."),
    "hop_length": Integer(
        low=1, high=MAX_N_FFT, high_hint="It is the step between frames, e.g. 10 ms of samples."
    ),
    "n_fft": Integer(
        low=1,
        high=MAX_N_FFT,
        high_hint="Feature windows are 25 to 100 ms, e.g. n_fft=256 at 8 kHz.",
    ),
    "n_mels": Integer(low=1, high=1024, high_hint="Mel spectrograms use 40 to 128 bands."),
    "sample_rate": Integer(
        low=1, high=MAX_SAMPLE_RATE, none=True, high_hint="Audio is sampled at 8 to 384 kHz."
    ),
    # data layer
    "min_length": Integer(low=1),
}
"""The rule of every parameter, by name (see the module docstring)."""


def check(name: str, value: Any) -> Any:
    """Check ``value`` against the rule of parameter ``name`` and return it normalised.

    Raises
    ------
    DataValidationError
        Starting with the parameter's name: what it must be, what was received, how to fix it.
    """
    return PARAMETERS[name].check(name, value)


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check every parameter of ``params`` that has a rule; return the normalised values.

    Examples
    --------
    >>> check_params({"lookback": 48, "lr": 1e-3})
    {'lookback': 48, 'lr': 0.001}
    """
    return {name: check(name, value) for name, value in params.items() if name in PARAMETERS}


def check_callbacks(
    callbacks: Any, *, name: str = "callbacks", call: str = "callback(record, network)"
) -> list[Callable[..., Any]]:
    """Check a list of callbacks before any work: a list (or tuple) of callables that each
    accept the positional arguments of ``call``. Returns them as a list (``None``: empty).

    A single callable is refused rather than guessed at (``callbacks=print`` means
    ``callbacks=[print]``), as is anything that cannot be called with ``call``'s arguments
    (e.g. a one-argument lambda), so that a mistake fails before training, not after an epoch.

    Examples
    --------
    >>> check_callbacks([lambda record, network: None])[0].__name__
    '<lambda>'
    >>> check_callbacks(print)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: callbacks must be a list of callables, got \
<built-in function print> (builtin_function_or_method). Pass callbacks=[print].
    """
    if callbacks is None:
        return []
    fix = "Pass a list, e.g. callbacks=[my_callback]."
    if callable(callbacks) and not isinstance(callbacks, list | tuple):
        label = getattr(callbacks, "__name__", "my_callback")
        fix = f"Pass callbacks=[{label if label.isidentifier() else 'my_callback'}]."
    if callable(callbacks) or not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise DataValidationError(
            f"{name} must be a list of callables, got {describe_value(callbacks)}. {fix}"
        )
    n_args = call.count(",") + 1
    checked = list(callbacks)
    for i, callback in enumerate(checked):
        if not callable(callback):
            raise DataValidationError(
                f"{name}[{i}] must be callable, called as {call} after every epoch; got "
                f"{describe_value(callback)}."
            )
        try:
            signature = inspect.signature(callback)
        except (TypeError, ValueError):  # some builtins have no signature: accept them
            continue
        try:
            signature.bind(*([None] * n_args))
        except TypeError as exc:
            raise DataValidationError(
                f"{name}[{i}] ({getattr(callback, '__qualname__', callback)!r}) cannot be "
                f"called as {call}: {exc}. Give it {n_args} positional parameters, e.g. "
                f"def {call.split('(')[0]}({call.split('(')[1]}: ..."
            ) from None
    return checked

"""One table of parameter constraints: :data:`PARAMETERS` maps a parameter name to its rule.

Every check of a user-given parameter (estimators, networks, windows, metrics, backtests,
datasets) goes through :func:`check` with the parameter's name, so a parameter means the same
thing and is refused with the same message wherever it is passed, and a new parameter is one
row of the table. Rules check types strictly: a bool or a float is not an integer (``5.0`` is
refused, with the int to pass instead), a string is not a number, NaN and infinities are not
numbers, a list is not a choice. Messages start with the parameter's name and say what was
expected, what was received (value and type) and how to fix it.

Relations between parameters (``head="segment"`` needs ``hidden_size >= 2``, a covariate that
names the target, memory estimates) are checked by the estimators after the table.

Two more checks live here because every module needs them the same way:
:func:`memory_limit` / :func:`check_allocation`, the one memory bound (the smallest of physical
memory, the room under ``ulimit -v`` and under the cgroup's limit) that network sizes, baseline
forecasts and audio features are checked against before they are allocated; and
:func:`check_callbacks`, which refuses callbacks that cannot be called before any training.

Examples
--------
>>> check("horizon", 12)
12
>>> check("horizon", 5.0)
Traceback (most recent call last):
...
forecaster.exceptions.DataValidationError: horizon must be an integer >= 1, got 5.0 (a float). \
Pass an int, e.g. horizon=5.
>>> check("cell", "lstmm")
Traceback (most recent call last):
...
forecaster.exceptions.DataValidationError: cell must be one of 'rnn', 'lstm', 'gru', got \
'lstmm' (did you mean 'lstm'?).
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from forecaster.exceptions import DataValidationError

__all__ = [
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
    "PARAMETERS",
    "SCALING_METHODS",
    "TARGET_TRANSFORMS",
    "WINDOWS",
    "Rule",
    "check",
    "check_allocation",
    "check_callbacks",
    "check_params",
    "describe_value",
    "format_bytes",
    "memory_limit",
    "resolve_device",
]

CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
HEADS: tuple[str, ...] = ("direct", "seq2seq", "recursive", "segment")
NORMALIZATIONS: tuple[str, ...] = ("none", "last", "revin")
NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")
LOSSES: tuple[str, ...] = ("mse", "mae", "huber")
LR_SCHEDULES: tuple[str, ...] = ("none", "cosine", "plateau", "onecycle")
ON_OOM: tuple[str, ...] = ("raise", "split")
SCALING_METHODS: tuple[str, ...] = ("standard", "robust", "minmax", "none")
TARGET_TRANSFORMS: tuple[str, ...] = ("none", "log", "log1p", "boxcox")
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


def describe_value(value: Any) -> str:
    """``repr`` of a received value with its type when that is the problem, e.g. ``5.0 (a
    float)``, ``'two' (a string)``, ``True (a bool)``.

    Examples
    --------
    >>> describe_value(5.0), describe_value([1])
    ('5.0 (a float)', '[1] (a list)')
    """
    text = " ".join(repr(value).split())
    if len(text) > 80:
        text = text[:77] + "..."
    kinds = (
        ((bool, np.bool_), "a bool"),
        ((str,), "a string"),
        ((float, np.floating), "a float"),
        ((numbers.Integral,), "an int"),
        ((list,), "a list"),
        ((tuple,), "a tuple"),
        ((dict,), "a dict"),
    )
    for types, label in kinds:
        if isinstance(value, types):
            return f"{text} ({label})"
    return f"{text} ({type(value).__module__}.{type(value).__name__})".replace("builtins.", "")


@dataclass(frozen=True)
class Rule:
    """A constraint on one parameter. Subclasses implement :meth:`_check` and
    :meth:`describe`; ``none=True`` also accepts ``None``."""

    none: bool = False
    label: str | None = None
    hint: str = ""

    def describe(self) -> str:
        """What the parameter must be, e.g. ``"an integer >= 1"``."""
        raise NotImplementedError

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` normalised (a Python int for integers, a float for numbers), or
        raise :class:`DataValidationError` naming ``name``."""
        if value is None and self.none:
            return None
        return self._check(name, value)

    def _check(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def fail(
        self, name: str, value: Any, fix: str = "", *, typed: bool = False, note: str = ""
    ) -> NoReturn:
        """Raise the rule's error for ``value`` (``typed``: the type is the problem; ``note``
        follows the value, e.g. a did-you-mean)."""
        expected = self.describe() + (" or None" if self.none else "")
        got = (describe_value(value) if typed else repr(value)) + (f" {note}" if note else "")
        tail = " ".join(t for t in (fix, self.hint) if t)
        raise DataValidationError(
            f"{self.label or name} must be {expected}, got {got}." + (f" {tail}" if tail else "")
        )


@dataclass(frozen=True)
class Integer(Rule):
    """An int (or numpy integer) in ``[low, high]``; bools, floats and strings are refused."""

    low: int = 1
    high: int | None = None
    high_hint: str = ""  # why the upper bound, for that message only

    def describe(self) -> str:
        return f"an integer >= {self.low}"

    def _check(self, name: str, value: Any) -> int:
        if isinstance(value, bool | np.bool_):
            self.fail(name, value, f"Pass a number, e.g. {name}={max(self.low, 1)}.", typed=True)
        if isinstance(value, numbers.Integral):
            number = int(value)
            if number < self.low:
                self.fail(name, value)
            if self.high is not None and number > self.high:
                raise DataValidationError(
                    f"{self.label or name} must be an integer <= {self.high:,}, got {number:,}. "
                    + (
                        self.high_hint
                        or self.hint
                        or "That is far beyond any size this package can allocate."
                    )
                )
            return number
        fix = f"Pass an int, e.g. {name}={max(self.low, 1)}."
        if isinstance(value, float | np.floating) and math.isfinite(value):
            if float(value).is_integer():
                fix = f"Pass an int, e.g. {name}={int(value)}."
        elif isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            fix = f"Pass a number, not text: {name}={int(value.strip())}."
        self.fail(name, value, fix, typed=True)


@dataclass(frozen=True)
class Real(Rule):
    """A finite int or float between ``low`` and ``high`` (each bound open or closed)."""

    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        if self.high == math.inf:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"a finite number in {left}{self.low:g}, {self.high:g}{right}"

    def _check(self, name: str, value: Any) -> float:
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            fix = ""
            if isinstance(value, str):
                try:
                    fix = f"Pass a number, not text: {name}={float(value)!r}."
                except ValueError:
                    fix = "Pass a number."
            self.fail(name, value, fix, typed=True)
        number = float(value)
        too_low = number <= self.low if self.low_open else number < self.low
        too_high = number >= self.high if self.high_open else number > self.high
        if not math.isfinite(number) or too_low or too_high:
            self.fail(name, value)
        return number


@dataclass(frozen=True)
class Choice(Rule):
    """One string of ``choices``; a close miss gets a did-you-mean."""

    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def _check(self, name: str, value: Any) -> str:
        if isinstance(value, str) and value in self.choices:
            return value
        if not isinstance(value, str):
            fix = "Pass one of those strings."
            if isinstance(value, list | tuple) and len(value) == 1 and value[0] in self.choices:
                fix = f"Pass the string itself: {name}={value[0]!r}."
            self.fail(name, value, fix, typed=True)
        self.fail(name, value, note=suggest(value, self.choices))


def suggest(value: str, choices: Sequence[str]) -> str:
    """``"(did you mean 'x'?)"`` for the closest of ``choices``, or ``""``.

    Examples
    --------
    >>> suggest("LSTM", ["rnn", "lstm"])
    "(did you mean 'lstm'?)"
    """
    lowered = {c.lower(): c for c in choices}
    close = lowered.get(value.strip().lower())
    if close is None:
        matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
        close = matches[0] if matches else None
    return f"(did you mean {close!r}?)" if close is not None else ""


@dataclass(frozen=True)
class Flag(Rule):
    """True or False (numpy bools too)."""

    def describe(self) -> str:
        return "True or False"

    def _check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            self.fail(name, value, typed=True)
        return bool(value)


@dataclass(frozen=True)
class Name(Rule):
    """A non-empty column name."""

    def describe(self) -> str:
        return "a column name (a non-empty string)"

    def _check(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            fix = ""
            if isinstance(value, list | tuple) and len(value) == 1:
                fix = f"Pass the name itself: {name}={value[0]!r}."
            self.fail(name, value, fix, typed=True)
        return value


@dataclass(frozen=True)
class Names(Rule):
    """A column name or a non-empty list of distinct names."""

    def describe(self) -> str:
        return "a column name or a list of distinct column names"

    def _check(self, name: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            names: tuple[Any, ...] = (value,)
        elif isinstance(value, set | frozenset):  # their order changes with PYTHONHASHSEED
            ordered = sorted(value, key=str)
            self.fail(
                name,
                value,
                "A set has no order, and the order of the columns is the order of the "
                f"model's inputs and outputs. Pass a list, e.g. {name}={ordered!r}.",
                typed=True,
            )
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            names = tuple(value)
        else:
            self.fail(name, value, typed=True)
        if not names and not self.none:  # an empty list of optional columns is "none"
            self.fail(name, value, "Name at least one column.")
        bad = [n for n in names if not isinstance(n, str) or not n]
        if bad:
            self.fail(name, value, f"{describe_value(bad[0])} is not a column name.")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            self.fail(name, value, f"{repeated} is listed more than once; name each column once.")
        return names


@dataclass(frozen=True)
class StepsOrFraction(Rule):
    """A number of steps (int >= 0) or a fraction in [0, 1) (float)."""

    def describe(self) -> str:
        return "a number of steps (int >= 0) or a fraction in [0, 1) (float)"

    def _check(self, name: str, value: Any) -> int | float:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
            if value < 0:
                self.fail(name, value)
            return int(value)
        if isinstance(value, float | np.floating) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                self.fail(name, value)
            if value >= 1:
                self.fail(
                    name,
                    value,
                    "A fraction must be below 1; pass an int for a number of steps.",
                )
            return float(value)
        self.fail(name, value, typed=True)


@dataclass(frozen=True)
class Calendar(Rule):
    """None, ``"auto"``, a feature name or a list of distinct names."""

    def describe(self) -> str:
        return "None, 'auto' or names from " + ", ".join(repr(c) for c in CALENDAR_FEATURES)

    def _check(self, name: str, value: Any) -> Any:
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, str):
            names: tuple[Any, ...] = (value,)
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            names = tuple(value)
        else:
            self.fail(name, value, typed=True)
        unknown = [n for n in names if not isinstance(n, str) or n not in CALENDAR_FEATURES]
        if unknown:
            first = unknown[0]
            hint = suggest(first, CALENDAR_FEATURES) if isinstance(first, str) else ""
            self.fail(name, value, f"It has unknown features {unknown} {hint}".strip() + ".")
        if len(set(names)) != len(names):
            self.fail(name, value, "It repeats a feature: list each once.")
        return value


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Device(Rule):
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (availability is checked
    when a fit or a prediction runs, not here: a saved model stays loadable elsewhere)."""

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"

    def _check(self, name: str, value: Any) -> Any:
        if type(value).__module__ == "torch" and type(value).__name__ == "device":
            return value
        if not isinstance(value, str):
            self.fail(name, value, typed=True)
        if not _DEVICE.match(value):
            guess = suggest(value.split(":")[0], ("auto", "cpu", "cuda", "mps"))
            self.fail(name, value, note=guess)
        return value


def resolve_device(device: Any, *, name: str = "device") -> Any:
    """The ``torch.device`` for a ``device`` argument: the one parser of devices (estimators,
    :func:`forecaster.training.loop.train`, :meth:`forecaster.data.windows.Windows.gather`,
    :meth:`forecaster.data.core.Panel.values_on`,
    :meth:`forecaster.data.scaling.PanelScaler.tensors`).

    ``"auto"`` is CUDA when available, else the CPU. ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
    ``"mps"`` and ``torch.device`` objects of those types are checked against this machine
    (CUDA available, device ``N`` present, MPS available); anything else raises
    :class:`DataValidationError` naming ``name``.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: device must be 'auto', 'cpu', 'cuda', 'cuda:N' \
or 'mps', got 'tpu' (did you mean 'cpu'?).
    """
    import torch

    value = PARAMETERS["device"].check(name, device)
    if isinstance(value, str) and value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(value)
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise DataValidationError(
            f"{name}={device!r} is not supported. Pass 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DataValidationError(
                f"{name}={device!r} was requested but CUDA is not available here. Use "
                f"{name}='auto' or 'cpu', or install a CUDA build of torch."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise DataValidationError(
                f"{name}={device!r}, but this machine has {count} CUDA device(s)"
                + (f" (cuda:0 to cuda:{count - 1})" if count else "")
                + f". Pass {name}='cuda' or 'auto' for the first one, or 'cpu'."
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DataValidationError(
            f"{name}={device!r}, but Apple's MPS backend is not available here. Pass "
            f"{name}='auto' or 'cpu'."
        )
    return resolved


@dataclass(frozen=True)
class Folder(Rule):
    """A folder path (a non-empty string or ``os.PathLike``)."""

    def describe(self) -> str:
        return "a folder path (a non-empty str or pathlib.Path)"

    def _check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str | os.PathLike) or not os.fspath(value):
            self.fail(name, value, typed=True)
        return value


@dataclass(frozen=True)
class Freq(Rule):
    """``"auto"``, a duration string such as ``"1h"`` or a positive integer step (the string
    itself is parsed by :meth:`forecaster.data.core.Frequency.parse`)."""

    def describe(self) -> str:
        return "'auto', a duration string such as '1h', '1d', '1bd', '1mo' or an integer step"

    def _check(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return value
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
        if integral and value >= 1:
            return int(value)
        self.fail(name, value, typed=True)


@dataclass(frozen=True)
class Refit(Rule):
    """False (fit once), True (refit every fold) or an integer k >= 1 (every k folds)."""

    def describe(self) -> str:
        return "False (fit once), True (refit on every fold) or an integer k >= 1"

    def _check(self, name: str, value: Any) -> bool | int:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, numbers.Integral) and value >= 1:
            return int(value)
        self.fail(name, value, typed=True)


def _size(**kwargs: Any) -> Integer:
    return Integer(low=kwargs.pop("low", 1), high=MAX_SIZE, **kwargs)


PARAMETERS: dict[str, Rule] = {
    # columns
    "target": Names(),
    "time_col": Name(),
    "id_col": Name(none=True),
    "covariates": Names(none=True),
    "future_covariates": Names(none=True),
    # data and windows
    "freq": Freq(none=True),
    "missing": Choice(choices=MISSING_POLICIES),
    "calendar": Calendar(none=True),
    "scaling": Choice(choices=SCALING_METHODS),
    "target_transform": Choice(choices=TARGET_TRANSFORMS),
    "lookback": _size(),
    "horizon": _size(),
    "stride": _size(),
    "windows_per_epoch": _size(none=True),
    "validation_size": StepsOrFraction(),
    "validation_fraction": Real(low=0.0, high=0.9),
    # network
    "cell": Choice(choices=CELLS),
    "head": Choice(choices=HEADS),
    "normalization": Choice(choices=NORMALIZATIONS),
    "nonlinearity": Choice(choices=NONLINEARITIES),
    "hidden_size": _size(),
    "num_layers": _size(),
    "segment_length": _size(),
    "dropout": Real(low=0.0, high=1.0, high_open=True),
    "channel_independent": Flag(none=True),
    "n_features": _size(),
    "n_targets": _size(),
    "n_future": _size(low=0),
    "n_members": _size(),
    "n_ensemble": _size(),
    # training
    "loss": Choice(choices=LOSSES),
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
    "max_time": Real(low=0.0, high=1e12, none=True),
    "checkpoint_dir": Folder(none=True),
    "checkpoint_every": Integer(low=1),
    "on_oom": Choice(choices=ON_OOM),
    "device": Device(),
    "random_state": Integer(low=0, high=_MAX_SEED, none=True),
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
    "train_size": Integer(low=1, none=True),
    "refit": Refit(),
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


# ------------------------------------------------------------------------------------------
# callbacks
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------

_CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``'1.5 GB'``.

    Examples
    --------
    >>> format_bytes(3 * 2**29)
    '1.5 GB'
    """
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB", "EB"):
        if value < 1024 or unit == "EB":
            break
        value /= 1024
    return f"{value:.3g} {unit}"


def _read_number(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_limits() -> list[tuple[int, str]]:
    """Room left under the cgroup memory limits of this process (v2 ``memory.max`` of its
    cgroup and each ancestor, v1 ``memory.limit_in_bytes``), each less the cgroup's usage."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            lines = handle.read(65536).splitlines()
    except OSError:
        lines = []
    folders = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2].strip("/")
        if parts[0] == "0" and not parts[1]:  # v2 (or hybrid: unified/): cgroup, ancestors
            steps = path.split("/") if path else []
            for root in (_CGROUP_ROOT, f"{_CGROUP_ROOT}/unified"):
                for k in range(len(steps), -1, -1):
                    folders.append(("/".join([root, *steps[:k]]), "memory.max", "current"))
        elif "memory" in parts[1].split(","):  # v1
            for base in (f"{_CGROUP_ROOT}/memory/{path}", f"{_CGROUP_ROOT}/memory"):
                folders.append((base.rstrip("/"), "memory.limit_in_bytes", "usage_in_bytes"))
    if not folders:
        folders = [(_CGROUP_ROOT, "memory.max", "current")]
    limits = []
    for folder, name, usage in dict.fromkeys(folders):
        limit = _read_number(f"{folder}/{name}")
        if limit is None or limit >= _UNLIMITED:
            continue
        used = _read_number(f"{folder}/memory.{usage}") or 0
        limits.append(
            (
                max(limit - used, 0),
                f"the memory limit of this process's cgroup ({folder}/{name}: "
                f"{format_bytes(limit)}, {format_bytes(used)} of it in use)",
            )
        )
    return limits


def _address_space_limit() -> tuple[int, str] | None:
    """Room left under RLIMIT_AS (``ulimit -v``): the limit less the address space in use."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            used = int(handle.read(256).split()[0]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError, AttributeError):
        used = 0
    return (
        max(soft - used, 0),
        f"the address-space limit of this process (RLIMIT_AS, ulimit -v: "
        f"{format_bytes(soft)}, {format_bytes(used)} of it in use)",
    )


def memory_limit() -> tuple[int, str]:
    """``(bytes, description)`` of the memory this process can use: the smallest of this
    machine's physical memory, the room left under its address-space limit (RLIMIT_AS) and
    under its cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``).

    The one memory bound of the package: network sizes, training batches, baseline forecasts
    and audio features are all checked against it before they are allocated.

    Examples
    --------
    >>> memory_limit()[0] > 0
    True
    """
    try:
        total = int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        found = [(total, f"this machine's physical memory ({format_bytes(total)})")]
    except (AttributeError, ValueError, OSError):
        total = 2**40
        found = [(total, f"an assumed {format_bytes(total)} (the machine's memory is unknown)")]
    rlimit = _address_space_limit()
    if rlimit is not None:
        found.append(rlimit)
    found.extend(_cgroup_limits())
    return min(found, key=lambda item: item[0])


def check_allocation(n_bytes: int, *, what: str, grows_with: str, fix: str) -> int:
    """Refuse to allocate about ``n_bytes`` when that exceeds :func:`memory_limit`.

    Parameters
    ----------
    n_bytes : int
        The estimate.
    what : str
        What would take the memory, e.g. ``"The naive forecast"``.
    grows_with : str
        The arguments it grows with, e.g. ``"horizon=1,000,000,000 and 2 series"``.
    fix : str
        How to get under the limit.

    Returns
    -------
    int
        ``n_bytes``, when it fits.

    Examples
    --------
    >>> check_allocation(2**70, what="This", grows_with="n=2**67", fix="Lower n.")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: This would take an estimated 1.02e+03 EB, ...
    """
    limit, where = memory_limit()
    if n_bytes <= limit:
        return n_bytes
    raise DataValidationError(
        f"{what} would take an estimated {format_bytes(n_bytes)}, more than {where}. "
        f"It grows with {grows_with}. {fix}"
    )

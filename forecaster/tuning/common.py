"""Small helpers shared by the tuning modules: the Optuna import and plain-value helpers."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import re
from typing import Any

import numpy as np

from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    MissingExtraError,
    TuningMetricError,
)

INSTALL_HINT = 'pip install "forecaster-rnn[tune]"'


def import_optuna() -> Any:
    """The ``optuna`` module, or an ImportError naming the extra that installs it."""
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtraError(
            f"forecaster.tune needs Optuna, an optional dependency: {INSTALL_HINT}"
        ) from exc
    return optuna


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def qualname(obj: Any) -> str:
    """``module.qualified_name`` of a callable (of the function a partial wraps)."""
    if isinstance(obj, functools.partial):
        return f"functools.partial({qualname(obj.func)})"
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def reason(exc: BaseException, limit: int = 500) -> str:
    """A one-line, readable reason for a failed trial."""
    text = str(exc).strip() or "(no message)"
    if not isinstance(exc, ForecasterError):
        text = f"{type(exc).__name__}: {text}"
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr`` on one line, cut at ``limit`` characters."""
    text = re.sub(r"\s+", " ", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def metric_value(value: Any) -> float:
    """The value a metric callable returned, as a float: a real number (numpy's too), or an
    array or tensor of one element (``.item()``). Anything else (None, text, a bool, an
    array or tensor of several values) is a :class:`TuningMetricError`, which stops the study;
    NaN or an infinity fails this trial only (a diverged fit may score so)."""
    got = f"{type(value).__name__} {short_repr(value)}"
    if not isinstance(value, numbers.Real | str | bytes) and callable(getattr(value, "item", None)):
        with contextlib.suppress(Exception):  # a tensor or array of several values: refused
            value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TuningMetricError(
            f"The metric callable must return a real number (the trial's score), got {got}. "
            "Return a float, e.g. float(score) (one value per fitted model)."
        )
    if not math.isfinite(value):
        raise DataValidationError(f"The metric callable returned {value!r}, not a finite number.")
    return float(value)

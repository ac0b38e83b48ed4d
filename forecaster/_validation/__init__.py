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
:func:`resolve_device` is the one parser of ``device`` arguments.

Modules: :mod:`~forecaster._validation.rules` (the kinds of rule),
:mod:`~forecaster._validation.table` (the table, :func:`check`, :func:`check_callbacks`),
:mod:`~forecaster._validation.devices` and :mod:`~forecaster._validation.memory`; every name is
importable from here.

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

from forecaster._validation.devices import resolve_device
from forecaster._validation.memory import (
    check_allocation,
    format_bytes,
    memory_limit,
)
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
    suggest,
)
from forecaster._validation.table import (
    CALENDAR_FEATURES,
    CELLS,
    HEADS,
    LEVEL_HINT,
    LOSSES,
    LR_SCHEDULES,
    MAX_BATCH,
    MAX_N_FFT,
    MAX_SAMPLE_RATE,
    MAX_SIZE,
    MIN_LEVEL,
    MISSING_POLICIES,
    NONLINEARITIES,
    NORMALIZATIONS,
    ON_OOM,
    ONE_LEVEL,
    ORIGINS,
    PARAMETERS,
    SCALING_METHODS,
    TARGET_TRANSFORMS,
    WINDOWS,
    check,
    check_callbacks,
    check_params,
)

__all__ = [
    "CALENDAR_FEATURES",
    "CELLS",
    "HEADS",
    "LEVEL_HINT",
    "LOSSES",
    "LR_SCHEDULES",
    "MAX_BATCH",
    "MAX_N_FFT",
    "MAX_SAMPLE_RATE",
    "MAX_SIZE",
    "MIN_LEVEL",
    "MISSING_POLICIES",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "ONE_LEVEL",
    "ON_OOM",
    "ORIGINS",
    "PARAMETERS",
    "SCALING_METHODS",
    "TARGET_TRANSFORMS",
    "WINDOWS",
    "Calendar",
    "Choice",
    "Device",
    "Flag",
    "Folder",
    "Freq",
    "Integer",
    "Name",
    "Names",
    "Probabilities",
    "Real",
    "Refit",
    "Rule",
    "StepsOrFraction",
    "check",
    "check_allocation",
    "check_callbacks",
    "check_params",
    "describe_value",
    "format_bytes",
    "memory_limit",
    "resolve_device",
    "suggest",
]

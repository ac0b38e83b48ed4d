"""Advice in the words of the caller: Python's parameters (``lookback=8``) or, inside
:func:`spec_words` (the ``forecaster`` command and :func:`~forecaster.jobs.run.run_pipeline`),
a pipeline spec's keys (``[model] lookback = 8``). The refusals that a pipeline can meet name
the setting to change through :func:`setting`, so that a spec's user is not told to pass an
argument they never wrote."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["SPEC_KEYS", "in_spec_words", "setting", "settings_named", "spec_words"]

_SPEC_WORDS: ContextVar[bool] = ContextVar("forecaster_spec_words", default=False)
"""Whether the messages give a pipeline spec's fixes (:func:`spec_words`)."""

SPEC_KEYS = {
    "lookback": "[model] lookback",
    "horizon": "[model] horizon",
    "validation_size": "[model] validation_size",
    "folds": "[evaluation] backtest_folds",
    "missing": "[series] missing",
    "time_format": "[source] time_format",
}
"""The spec key of each estimator or backtest parameter that a refusal's advice names."""

_UNSET = object()


@contextmanager
def spec_words() -> Iterator[None]:
    """In the block, in this thread (its ``contextvars`` context), refusals give a pipeline
    spec's fixes (its keys, the source's times and rows) instead of Python's (``id_col=``,
    ``lookback=``, ``frame.unique``, ``dt.replace_time_zone``): the ``forecaster`` command
    runs its commands in it, and :func:`~forecaster.jobs.run.run_pipeline` its run, whose
    frames come from a spec."""
    token = _SPEC_WORDS.set(True)
    try:
        yield
    finally:
        _SPEC_WORDS.reset(token)


def in_spec_words() -> bool:
    """Whether this thread is inside :func:`spec_words`."""
    return _SPEC_WORDS.get()


def setting(name: str, value: Any = _UNSET) -> str:
    """The parameter ``name`` (with ``value``) as the advice names it: ``lookback`` or
    ``lookback=8`` from Python; inside :func:`spec_words`, its spec key (``[model] lookback``,
    ``[model] lookback = 8``; a name without one in :data:`SPEC_KEYS` as from Python).

    Examples
    --------
    >>> setting("lookback", 8)
    'lookback=8'
    >>> with spec_words():
    ...     setting("lookback", 8), setting("folds")
    ('[model] lookback = 8', '[evaluation] backtest_folds')
    """
    key = SPEC_KEYS.get(name) if in_spec_words() else None
    if key is None:
        return name if value is _UNSET else f"{name}={value!r}"
    return key if value is _UNSET else f"{key} = {value!r}"


def settings_named(text: str) -> str:
    """``text`` (a phrase of parameter names, e.g. ``"lookback or horizon"``) with each name of
    :data:`SPEC_KEYS` worded by :func:`setting`."""
    pattern = r"\b(" + "|".join(SPEC_KEYS) + r")\b"
    return re.sub(pattern, lambda match: setting(match.group(1)), text)

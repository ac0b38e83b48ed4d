"""Advice in the words of the caller: Python's parameters (``lookback=8``) or, inside
:func:`spec_words` (the ``forecaster`` command and :func:`~forecaster.jobs.run.run_pipeline`),
a pipeline spec's keys (``[model] lookback = 8``). The refusals that a pipeline can meet name
the setting to change through :func:`setting`, so that a spec's user is not told to pass an
argument they never wrote."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["SPEC_KEYS", "in_spec_words", "setting", "settings_named", "spec_words"]

_SPEC_WORDS: ContextVar[Mapping[str, str] | None] = ContextVar(
    "forecaster_spec_words", default=None
)
"""The names the messages give each parameter inside :func:`spec_words` (None: outside, Python's
names)."""

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
def spec_words(given: Mapping[str, str] | None = None) -> Iterator[None]:
    """In the block, in this thread (its ``contextvars`` context), refusals give a pipeline
    spec's fixes (its keys, the source's times and rows) instead of Python's (``id_col=``,
    ``lookback=``, ``frame.unique``, ``dt.replace_time_zone``): the ``forecaster`` command
    runs its commands in it, and :func:`~forecaster.jobs.run.run_pipeline` its run, whose
    frames come from a spec. ``given``: the parameters set otherwise than by a spec key, by
    what sets them (``{"folds": "--folds"}``: a command-line option that overrides the key),
    over those of an enclosing block.

    Examples
    --------
    >>> with spec_words(), spec_words({"folds": "--folds"}):
    ...     setting("folds"), setting("lookback")
    ('--folds', '[model] lookback')
    """
    token = _SPEC_WORDS.set({**(_SPEC_WORDS.get() or SPEC_KEYS), **(given or {})})
    try:
        yield
    finally:
        _SPEC_WORDS.reset(token)


def in_spec_words() -> bool:
    """Whether this thread is inside :func:`spec_words`."""
    return _SPEC_WORDS.get() is not None


def setting(name: str, value: Any = _UNSET) -> str:
    """The parameter ``name`` (with ``value``) as the advice names it: ``lookback`` or
    ``lookback=8`` from Python; inside :func:`spec_words`, its spec key (``[model] lookback``,
    ``[model] lookback = 8``; a name without one in :data:`SPEC_KEYS` as from Python) or
    what the block names it by (an option: ``--folds``, ``--folds 9``).

    Examples
    --------
    >>> setting("lookback", 8)
    'lookback=8'
    >>> with spec_words():
    ...     setting("lookback", 8), setting("folds")
    ('[model] lookback = 8', '[evaluation] backtest_folds')
    """
    keys = _SPEC_WORDS.get()
    key = None if keys is None else keys.get(name)
    if key is None:
        return name if value is _UNSET else f"{name}={value!r}"
    if value is _UNSET:
        return key
    return f"{key} {value!r}" if key.startswith("--") else f"{key} = {value!r}"


def settings_named(text: str) -> str:
    """``text`` (a phrase of parameter names, e.g. ``"lookback or horizon"``) with each name of
    :data:`SPEC_KEYS` worded by :func:`setting`."""
    pattern = r"\b(" + "|".join(SPEC_KEYS) + r")\b"
    return re.sub(pattern, lambda match: setting(match.group(1)), text)

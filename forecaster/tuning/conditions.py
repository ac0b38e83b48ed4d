"""Conditional parameters: a parameter that only some values of another one use
(``segment_length`` only with ``head="segment"``, ``nonlinearity`` only with ``cell="rnn"``).

A search space samples one only where its parent allows it (:func:`applies`), a space that
samples one its parent never allows is refused before any trial (:func:`check_conditions`),
and a trial whose parent leaves the estimator's own setting unused gets the default instead
(:func:`trial_params`): ``fit`` refuses a parameter it would ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forecaster.exceptions import DataValidationError

__all__ = ["CONDITIONS", "applies", "check_conditions", "trial_params"]

CONDITIONS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "segment_length": ("head", ("segment",), "auto"),
    "nonlinearity": ("cell", ("rnn",), "tanh"),
}
"""Parameter -> (the parameter it depends on, the values of that one that use it, its
default)."""


def applies(name: str, params: Mapping[str, Any], estimator: Any) -> bool:
    """Whether the conditional parameter ``name`` is used with its parent's value in
    ``params`` (a trial's), else the estimator's."""
    parent, allowed, _ = CONDITIONS[name]
    value = params[parent] if parent in params else getattr(estimator, parent, None)
    return value in allowed


def check_conditions(space: Mapping[str, Any], estimator: Any) -> None:
    """Refuse a space that samples a conditional parameter no trial would use (its parent,
    sampled from its choices or the estimator's, never allows it), and an estimator that sets
    one its own parent leaves unused (every trial's fit would refuse it)."""
    for name, (parent, allowed, default) in CONDITIONS.items():
        value = getattr(estimator, name, default)
        fixed = name not in space and parent not in space and value != default
        if fixed and not applies(name, {}, estimator):  # every trial's fit would refuse it
            raise DataValidationError(
                f"The estimator to tune sets {name}={value!r}, used only with "
                f"{parent}={allowed[0]!r}, but its {parent} is "
                f"{getattr(estimator, parent, None)!r}, which fit refuses. Leave {name} "
                f"at {default!r}, or set or sample {parent}={allowed[0]!r}."
            )
        if name not in space:
            continue
        choices = getattr(space.get(parent), "choices", None)
        options = list(choices) if choices is not None else [getattr(estimator, parent, None)]
        if not any(applies(name, {parent: value}, estimator) for value in options):
            shown = f"sampled from {options}" if parent in space else repr(options[0])
            raise DataValidationError(
                f"search_space samples {name!r}, used only with {parent}={allowed[0]!r}, but "
                f"{parent} is {shown}: every trial would ignore it. Drop it from the space, "
                f"or set or sample {parent}={allowed[0]!r}."
            )


def trial_params(params: Mapping[str, Any], estimator: Any) -> dict[str, Any]:
    """A trial's parameters, plus the default of each conditional parameter that the
    estimator sets but the trial's parent leaves unused (a template with
    ``segment_length=48`` and a trial with ``head="direct"``: ``segment_length="auto"``).

    Examples
    --------
    >>> from forecaster import RNNForecaster
    >>> template = RNNForecaster(target="y", segment_length=48)
    >>> trial_params({"head": "direct"}, template)
    {'head': 'direct', 'segment_length': 'auto'}
    >>> trial_params({"head": "segment"}, template)
    {'head': 'segment'}
    """
    out = dict(params)
    for name, (_, _, default) in CONDITIONS.items():
        unset = name in out or getattr(estimator, name, default) == default
        if not unset and not applies(name, out, estimator):
            out[name] = default
    return out

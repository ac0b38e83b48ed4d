"""Relations between the parameters of a search space's trials.

Conditional parameters are used by some values of another one only (``segment_length`` with
``head="segment"``, ``nonlinearity`` with ``cell="rnn"``): a space samples one only where its
parent allows it (:func:`applies`), a space that samples one its parent never allows is
refused before any trial (:func:`check_conditions`), and a trial whose parent leaves the
estimator's own setting unused gets the default instead (:func:`trial_params`): ``fit``
refuses a parameter it would ignore. A space none of whose combinations the estimator accepts
is refused before any trial too (:func:`check_some_trial_valid`). A trial that nothing seeds
draws a seed of its own, which the refit of the best trial reads back (:func:`drawn_seed`,
:func:`recorded_seed`).
"""

from __future__ import annotations

import inspect
import itertools
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

from sklearn.base import clone

from forecaster.exceptions import DataValidationError

__all__ = [
    "CONDITIONS",
    "RUN_PARAMS",
    "SEED_ATTR",
    "applies",
    "check_conditions",
    "check_run_settings",
    "check_some_trial_valid",
    "dependents",
    "drawn_seed",
    "recorded_seed",
    "trial_params",
]

MAX_COMBINATIONS = 256
"""Spaces with more combinations of choices (numbers: their bounds) are not enumerated."""

CONDITIONS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "segment_length": ("head", ("segment",), "auto"),
    "nonlinearity": ("cell", ("rnn",), "tanh"),
}
"""Parameter -> (the parameter it depends on, the values of that one that use it, its
default)."""

SEED_ATTR = "seed"
"""The trial user attribute with the seed a trial drew when nothing seeded it."""

RUN_PARAMS = ("progress", "device", "checkpoint_dir", "checkpoint_every", "resume", "on_oom")
"""The settings of a run, not of the model: the template's hold for every trial (a search
space that samples none of them cannot change what ``fit`` makes of them)."""


def applies(name: str, params: Mapping[str, Any], estimator: Any) -> bool:
    """Whether the conditional parameter ``name`` is used with its parent's value in
    ``params`` (a trial's), else the estimator's."""
    parent, allowed, _ = CONDITIONS[name]
    value = params[parent] if parent in params else getattr(estimator, parent, None)
    return value in allowed


def dependents(names: Iterable[str]) -> frozenset[str]:
    """The conditional parameters whose parent is one of ``names`` (a search space's): a
    tuning may leave them at the spec's value or reset them to their default
    (:func:`trial_params`), whatever the spec fixes.

    Examples
    --------
    >>> sorted(dependents(["head", "lr"]))
    ['segment_length']
    """
    given = set(names)
    return frozenset(name for name, (parent, _, _) in CONDITIONS.items() if parent in given)


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


def drawn_seed(trial: Any, estimator: Any, params: Mapping[str, Any]) -> dict[str, int]:
    """``{"random_state": seed}`` for a trial whose fit nothing seeds (not the template, nor
    ``tune(random_state=...)`` in ``params``, nor a sampled ``random_state``): a seed from 0
    to 2**31 - 1 drawn afresh, as such a fit would draw it, and recorded in the trial's user
    attribute :data:`SEED_ATTR`, so that the refit of the best trial fits with its seed
    (:func:`recorded_seed`); ``{}`` when the fit is seeded, or the estimator takes no seed."""
    if "random_state" not in estimator.get_params(deep=False):
        return {}
    if params.get("random_state", getattr(estimator, "random_state", None)) is not None:
        return {}
    seed = random.SystemRandom().randrange(2**31)
    trial.set_user_attr(SEED_ATTR, seed)
    return {"random_state": seed}


def recorded_seed(trial: Any) -> dict[str, int]:
    """``{"random_state": seed}`` of the seed ``trial`` (a frozen trial) drew
    (:func:`drawn_seed`), ``{}`` when it drew none (it was seeded, or ran before seeds were
    recorded)."""
    seed = trial.user_attrs.get(SEED_ATTR)
    return {} if seed is None else {"random_state": int(seed)}


def check_run_settings(estimator: Any, sampled: Iterable[str]) -> None:
    """Refuse, with ``fit``'s own message (``check_used_params``), template run settings that
    every trial's fit would refuse whatever the other parameters (``checkpoint_every`` without
    ``checkpoint_dir``, ``on_oom="split"`` on the CPU): they are checked with every other
    parameter at its default, but the target, time and id columns (the template's: no trial
    changes them, and ``check_used_params`` checks their names). ``sampled``: the parameters
    a trial sets (nothing is checked when it sets a run setting)."""
    if not hasattr(estimator, "check_used_params") or set(RUN_PARAMS) & set(sampled):
        return
    own = estimator.get_params(deep=False)
    kept = (*RUN_PARAMS, "target", "time_col", "id_col")
    signature = inspect.signature(type(estimator)).parameters
    defaults = {
        name: p.default
        for name, p in signature.items()
        if name in own and name not in kept and p.default is not p.empty
    }
    try:
        clone(estimator).set_params(**defaults).check_used_params()
    except DataValidationError as exc:
        raise DataValidationError(
            f"{exc} (every trial's fit would refuse the estimator to tune this way, whatever "
            "the search space samples)"
        ) from None


def check_some_trial_valid(
    space: Mapping[str, Any], estimator: Any, where: str = "search_space"
) -> None:
    """Refuse a dict space of which no combination of choices (the bounds of a number's
    range) passes the checks ``fit`` starts with (``validate_params``, then
    ``check_used_params``): every trial would fail (e.g. ``linear_skip=[True]`` with
    ``head=["recursive"]``, ``lr_schedule=["cosine"]`` with ``max_epochs=1``), and the study
    would stop only after its failed-trial limit. When every combination fails the same way,
    the error is ``fit``'s. A space of more than :data:`MAX_COMBINATIONS` combinations (the
    default space's) is tried one parameter at a time (each value of one, the others at their
    first) and refused only when every try fails with the same message: the template's
    parameters the space does not sample (e.g. ``lr_schedule="cosine"`` with ``max_epochs=1``,
    ``static_covariates`` with ``id_col=None``) reach every trial. ``where``: the space, as
    the message names it."""
    if not hasattr(estimator, "validate_params"):
        return
    names = list(space)
    options = [
        list(getattr(space[n], "choices", None) or (space[n].low, space[n].high)) for n in names
    ]
    every = math.prod(len(o) for o in options) <= MAX_COMBINATIONS
    first: DataValidationError | None = None
    messages = set()
    for values in itertools.product(*options) if every else _one_at_a_time(options):
        sampled = dict(zip(names, values, strict=True))
        used = {
            k: v
            for k, v in sampled.items()
            if k not in CONDITIONS or applies(k, sampled, estimator)
        }
        model = clone(estimator).set_params(**trial_params(used, estimator))
        try:
            model.validate_params()
            model.check_used_params()
            return
        except DataValidationError as exc:
            first = first or exc
            messages.add(str(exc))
    if len(messages) == 1 and every:
        raise DataValidationError(
            f"{first} ({where} has no combination of values without it: every trial's "
            "fit would refuse it)"
        )
    if len(messages) == 1:
        raise DataValidationError(
            f"{first} (whatever {where} samples: every trial's fit would refuse it)"
        )
    if every:
        raise DataValidationError(
            f"{where} has no combination of values the estimator accepts, so every trial "
            f"would fail; e.g. {dict(zip(names, (o[0] for o in options), strict=True))}: {first}"
        )


def _one_at_a_time(options: list[list[Any]]) -> Iterable[tuple[Any, ...]]:
    """The first value of every option, then each other value of one option with the first
    of the others."""
    base = tuple(o[0] for o in options)
    yield base
    for i, values in enumerate(options):
        for value in values[1:]:
            yield (*base[:i], value, *base[i + 1 :])

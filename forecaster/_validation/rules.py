"""The rules of the parameter table: one class per kind of constraint.

Rules check types strictly: a bool or a float is not an integer (``5.0`` is refused, with the
int to pass instead), a string is not a number, NaN and infinities are not numbers, a list is
not a choice. Messages start with the parameter's name and say what was expected, what was
received (value and type) and how to fix it (:meth:`Rule.fail`).
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from forecaster._columns import is_number_label, number_label
from forecaster.exceptions import DataValidationError

__all__ = [
    "FLOAT32_EPS",
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
    "describe_value",
    "suggest",
]


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
        self,
        name: str,
        value: Any,
        fix: str = "",
        *,
        typed: bool = False,
        note: str = "",
        with_hint: bool = True,
    ) -> NoReturn:
        """Raise the rule's error for ``value`` (``typed``: the type is the problem; ``note``
        follows the value, e.g. a did-you-mean; ``with_hint=False``: without the rule's
        general hint, when ``fix`` says all there is to say)."""
        expected = self.describe() + (" or None" if self.none else "")
        got = (describe_value(value) if typed else repr(value)) + (f" {note}" if note else "")
        tail = " ".join(t for t in (fix, self.hint if with_hint else "") if t)
        raise DataValidationError(
            f"{self.label or name} must be {expected}, got {got}." + (f" {tail}" if tail else "")
        )


@dataclass(frozen=True)
class Integer(Rule):
    """An int (or numpy integer) in ``[low, high]``; bools, floats and strings are refused."""

    low: int = 1
    high: int | None = None
    high_hint: str = ""  # why the upper bound, for that message only
    auto: bool = False  # also accept the string "auto" (resolved by the caller)

    def describe(self) -> str:
        return f"an integer >= {self.low}" + (" or 'auto'" if self.auto else "")

    def _check(self, name: str, value: Any) -> int | str:
        if self.auto and isinstance(value, str) and value == "auto":
            return value
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
    auto: bool = False  # also accept the string "auto" (resolved by the caller)

    def describe(self) -> str:
        auto = " or 'auto'" if self.auto else ""
        if self.high == math.inf:
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}" + auto
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"a finite number in {left}{self.low:g}, {self.high:g}{right}" + auto

    def _check(self, name: str, value: Any) -> float | str:
        if self.auto and isinstance(value, str) and value == "auto":
            return value
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            fix = ""
            if isinstance(value, str):
                try:
                    fix = f"Pass a number, not text: {name}={float(value)!r}."
                except ValueError:
                    fix = "Pass a number."
                if self.auto and value.strip().lower() == "auto":
                    fix = f"Pass {name}='auto' (lower case, no spaces)."
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


@dataclass(frozen=True)
class Flag(Rule):
    """True or False (numpy bools too); ``auto=True`` also accepts the string ``"auto"``
    (resolved by the caller)."""

    auto: bool = False

    def describe(self) -> str:
        return "True, False or 'auto'" if self.auto else "True or False"

    def _check(self, name: str, value: Any) -> bool | str:
        if self.auto and isinstance(value, str) and value == "auto":
            return value
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
    """None, ``"auto"``, a feature name or a list of distinct names of ``features``."""

    features: tuple[str, ...] = ()

    def describe(self) -> str:
        return "None, 'auto' or names from " + ", ".join(repr(c) for c in self.features)

    def _check(self, name: str, value: Any) -> Any:
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, str):
            names: tuple[Any, ...] = (value,)
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            names = tuple(value)
        else:
            self.fail(name, value, typed=True)
        unknown = [n for n in names if not isinstance(n, str) or n not in self.features]
        if unknown:
            first = unknown[0]
            hint = suggest(first, self.features) if isinstance(first, str) else ""
            self.fail(name, value, f"It has unknown features {unknown} {hint}".strip() + ".")
        if len(set(names)) != len(names):
            self.fail(name, value, "It repeats a feature: list each once.")
        return value


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Device(Rule):
    """``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``, or a ``torch.device`` of
    those types, normalised to that text (``torch.device("cpu", 0)``: ``"cpu"``;
    availability is checked when a fit or a prediction runs, not here: a saved model stays
    loadable elsewhere). Estimators keep the object they were given (``get_params``, as
    scikit-learn requires); the text is what they resolve and what a saved model's config
    holds."""

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"

    def _check(self, name: str, value: Any) -> Any:
        if type(value).__module__ == "torch" and type(value).__name__ == "device":
            text = value.type if value.index is None or value.type != "cuda" else str(value)
            if not _DEVICE.match(text):
                self.fail(name, value)
            return text
        if not isinstance(value, str):
            self.fail(name, value, typed=True)
        if not _DEVICE.match(value):
            guess = suggest(value.split(":")[0], ("auto", "cpu", "cuda", "mps"))
            self.fail(name, value, note=guess)
        return value


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
    itself is parsed by :meth:`forecaster.data.Frequency.parse`)."""

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


FLOAT32_EPS = 2.0**-23
"""The relative spacing of float32 numbers near 1: a probability or level given in float32
(e.g. read from a float32 column) differs from the number it was written as by at most half
of it."""


@dataclass(frozen=True)
class Probabilities(Rule):
    """A non-empty list of distinct numbers strictly between ``low`` and ``high`` (e.g. the
    quantiles ``(0.1, 0.5, 0.9)`` or the levels ``(80, 95)``), returned sorted as a tuple of
    floats. Numbers are also refused when they print alike as
    :func:`~forecaster._columns.number_label` of ``percent * v``, the way their columns are
    named (``y_q10``, ``y_lo_80``: see :func:`forecaster.evaluation.intervals.quantile_name`
    and ``level_name``), so that no column overwrites another, and when that name is not read
    back (:func:`~forecaster._columns.is_number_label`) as a number in the range (``5e-05``,
    or ``100`` for 99.99999), so that every column written is one that evaluate scores.

    A number within float32 precision of the number its column name says is that number
    (``float(np.float32(0.1))`` is ``0.1``, ``1 - 0.95`` is ``0.05``): a quantile has one
    value, the one its column is named by and looked up with, wherever it came from."""

    low: float = 0.0
    high: float = 1.0
    example: str = "[0.1, 0.5, 0.9]"
    percent: float = 100.0  # the factor of the number in its column name

    def describe(self) -> str:
        return f"a non-empty list of distinct numbers in ({self.low:g}, {self.high:g})"

    def _check(self, name: str, value: Any) -> tuple[float, ...]:
        if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
            value = [value]
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple | np.ndarray):
            self.fail(name, value, f"Pass a list, e.g. {name}={self.example}.", typed=True)
        items = list(value)
        if not items or any(
            isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real) for v in items
        ):
            self.fail(name, value, f"e.g. {name}={self.example}.")
        floats = [float(v) for v in items]
        if any(not (self.low < v < self.high) for v in floats):
            self.fail(name, value, f"e.g. {name}={self.example}.")
        seen: dict[float, int] = {}
        for k, v in enumerate(floats):  # one number, however it was typed (80, np.float32(80))
            first = seen.setdefault(self._named(v), k)
            if first != k:
                one = name[:-1] if name.endswith("s") else name
                self.fail(
                    name,
                    value,
                    f"{items[first]!r} and {items[k]!r} are the same {one} given twice. Keep "
                    "one of them.",
                    with_hint=False,
                )
        labels: dict[str, float] = {}
        for v in floats:
            label = number_label(self.percent * v)
            if not (is_number_label(label) and self.low < float(label) / self.percent < self.high):
                top = number_label(self.high * self.percent - 1e-4)
                scaled = "it" if self.percent == 1 else f"{self.percent:g} times it"
                self.fail(
                    name,
                    value,
                    f"{v!r} would end its column names in {label!r}, which evaluate cannot "
                    f"read back as a number in ({self.low:g}, {self.high:g}): names keep 6 "
                    f"significant digits and no exponent, so {scaled} must be from 0.0001 to "
                    f"{top}, e.g. {name}={self.example}.",
                )
            other = labels.setdefault(label, v)
            if other != v:
                self.fail(
                    name,
                    value,
                    f"{other!r} and {v!r} would share the column name ending {label} (names "
                    "keep 6 significant digits). Keep one of them.",
                )
        return tuple(sorted(self._named(v) for v in floats))

    def _named(self, value: float) -> float:
        """``value``, or the number its column name says when they differ by no more than
        float32 rounding (a relative ``2**-23``)."""
        named = float(f"{float(number_label(self.percent * value)) / self.percent:.12g}")
        return named if math.isclose(value, named, rel_tol=FLOAT32_EPS, abs_tol=0.0) else value

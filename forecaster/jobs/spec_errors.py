"""The messages of a spec refused when it is read: by pydantic, or for the name of a column.

:func:`describe_errors`: one line, every error pydantic found in it. Each error names the key
(an item of a list by its position: ``key 'source.tickers', item 2``), what was expected, what
was received, and, for a value of the wrong type, how to write it: values are not converted
between types (strict), so ``"20"`` is no integer and ``3`` no text.

:func:`source_rename`: a column the spec names refused by the library's check of column
names, with the fix a pipeline user can make (the source's column and the spec's key), not the
library's ``frame.rename``; :func:`check_backtest_columns`: an id or time column that a
backtest's scores would refuse, with that fix, before any data is read.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from forecaster.evaluation.frames import TARGET_COLUMN
from forecaster.exceptions import SpecError

__all__ = ["check_backtest_columns", "describe_errors", "source_rename"]


def describe_errors(file: Path, exc: ValidationError, spec_model: type[BaseModel]) -> str:
    """The one-line message of ``exc``, raised validating the spec in ``file`` against
    ``spec_model`` (whose fields name the keys an unknown key is compared with)."""
    lines, missing = [], []  # one line in all (a failure prints one line)
    for error in exc.errors():
        key = _key_text(error["loc"])
        received = error.get("input")
        if error["loc"][:2] == ("training", "storage") and isinstance(received, str):
            received = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", received)  # no password shown
        if error["type"] == "extra_forbidden":
            section = ".".join(str(p) for p in error["loc"][:-1])
            known = _known_keys(spec_model, error["loc"][:-1])
            close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(
                f"unknown key {key}{hint}. Allowed keys in "
                f"[{section or 'top level'}]: {', '.join(known)}."
            )
        elif error["type"] == "missing":
            missing.append(key)
        elif error["type"] in _EXPECTED:  # strict: values are not converted between types
            kind = type(received).__name__
            lines.append(
                f"key {key}: expected {_EXPECTED[error['type']]}; received {received!r} "
                f"({'an' if kind[0] in 'aeiou' else 'a'} {kind}). "
                f"{_how_to_write(error['type'], received)}."
            )
        else:
            message = str(error["msg"]).removeprefix("Value error, ").rstrip(".")
            lines.append(f"key {key}: {message}; received {received!r}.")
    missing_keys = f"missing required key{'s' * (len(missing) > 1)} {', '.join(missing)}."
    return f"{file}: " + " ".join([missing_keys] * bool(missing) + lines)


def _key_text(loc: tuple[Any, ...]) -> str:
    """``'series.targets'``; an item of a list by its position: ``'series.targets', item 2``."""
    names = [str(part) for part in loc if not isinstance(part, int)]
    items = "".join(f", item {part + 1}" for part in loc if isinstance(part, int))
    return f"{'.'.join(names)!r}{items}"


_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a text in quotes",
    "list_type": "a list in brackets",
}
"""What a key of each pydantic type error expects, in words."""


def _how_to_write(error_type: str, received: Any) -> str:
    """The advice for a value of the wrong type: what to write instead, with an example (the
    received value in quotes or brackets when it is one TOML value)."""
    if error_type == "int_type":
        return 'Write it without quotes or conversion, e.g. 20 (not 20.0, "20" or true)'
    if error_type == "float_type":
        return 'Write it without quotes or conversion, e.g. 0.5 or 30 (not "0.5" or true)'
    if error_type == "bool_type":
        return 'Write it without quotes or conversion, e.g. true (not "yes", "true" or 1)'
    written = _toml_text(received)
    kind = "a table" if isinstance(received, dict) else "a list"
    if error_type == "string_type" and written is None:
        return f'Write one value in quotes, e.g. "daily" ({kind} is not a text)'
    if error_type == "string_type":
        return f"Write it in quotes, e.g. {json.dumps(written)} (a number or true is not a text)"
    if written is None:  # a table, or a date: no one value to put in brackets
        return "Write it in brackets, e.g. [...] (a table or a date is not a list)"
    return f"Write it in brackets, e.g. [{written}] (a single value is not a list)"


def _toml_text(value: Any) -> str | None:
    """``value`` as TOML writes it when it is one plain value (text, number, bool), else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return None


def _known_keys(spec_model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model = spec_model
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def source_rename(key: str) -> Callable[[str, bool], str]:
    """The fix of a column that the spec's ``key`` names and the library's check of column
    names refuses (:func:`~forecaster.data.checks.check_output_names`, the check ``fit``
    makes, as its ``fix``): a pipeline reads the source's columns by the names the spec
    gives, so ``frame.rename`` is none.

    Examples
    --------
    >>> source_rename("series.time")("fold", True)
    "Rename the column in the source (e.g. 'fold' to 'fold_value') and give its new name in \
series.time."
    """

    def fix(name: str, several: bool) -> str:
        return (
            f"Rename the column in the source (e.g. {name!r} to {name + '_value'!r}) and give "
            f"its new name in {key}."
        )

    return fix


def check_backtest_columns(file: Path, id_col: str | None, time_col: str) -> None:
    """Refuse (``SpecError``, naming the key) an id or time column named ``target``, the
    column of a backtest's scores beside which they hold the id and time: the backtest of a
    run (``evaluation.backtest_folds`` > 0) and ``forecaster backtest`` would refuse the data
    with the library's ``frame.rename`` fix (:func:`source_rename` is the pipeline's)."""
    for key, name in (("series.id", id_col), ("series.time", time_col)):
        if name == TARGET_COLUMN:
            raise SpecError(
                f"{file}: key {key!r} names {name!r}, the column of a backtest's scores "
                "beside which it holds the id and time, so the backtest would refuse it "
                f"(covariates may have any name). {source_rename(key)(name, False)}"
            )

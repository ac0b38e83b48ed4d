"""The arguments of :func:`forecaster.jobs.run.run_pipeline`, checked before anything runs:
each of its documented type, else a :class:`~forecaster.exceptions.SpecError` naming it."""

from __future__ import annotations

import math
import numbers
from typing import Any

from forecaster.exceptions import SpecError
from forecaster.jobs.data import as_of_text
from forecaster.jobs.spec import spec_file

__all__ = ["check_run_arguments", "check_wait"]


def check_run_arguments(**arguments: Any) -> None:
    """Every argument of :func:`~forecaster.jobs.run.run_pipeline` of its documented type,
    else a ``SpecError`` naming it (a truthy ``"no"`` is not a ``False``)."""
    spec_file(arguments["spec_path"])
    for name in ("force", "dry_run", "resume", "progress", "tune"):
        value = arguments[name]
        if not (isinstance(value, bool) or (name == "tune" and value is None)):
            allowed = "True, False or None" if name == "tune" else "True or False"
            raise SpecError(
                f"{name} must be {allowed}, got {type(value).__name__} {value!r}: a value that "
                f"is only truthy or falsy is refused. Pass {name}=True or {name}=False."
            )
    as_of_text(arguments["as_of"])
    check_wait(arguments["wait"])
    if not callable(arguments["log"]):
        raise SpecError(
            f"log must be a callable that takes one line (e.g. print, or lambda line: None), "
            f"got {type(arguments['log']).__name__} {arguments['log']!r}."
        )


def check_wait(wait: Any) -> None:
    """``run_pipeline``'s ``wait``: None, or a finite number of seconds >= 0; else a
    ``SpecError``."""
    if wait is None:
        return
    if isinstance(wait, bool) or not isinstance(wait, numbers.Real) or not float(wait) >= 0:
        raise SpecError(
            f"wait must be a number of seconds >= 0 (or None: as long as it takes), got {wait!r}."
        )
    if not math.isfinite(wait):
        raise SpecError(f"wait must be finite (None waits as long as it takes), got {wait!r}.")

"""The errors that leave an entry point of the pipelines: only forecaster's own.

:func:`translated_errors` is the one mechanism of every entry point (:func:`run_pipeline` and
each ``forecaster`` command): an operating-system error, a missing optional dependency or an
out-of-memory becomes a ``ForecasterError`` that says what to do; anything else one that calls
it a bug.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import polars as pl

from forecaster.exceptions import ForecasterError, MissingExtraError
from forecaster.jobs.spec import first_line

__all__ = ["translated_errors"]


@contextlib.contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    """Let only forecaster's errors out of ``doing`` (the one mechanism of every entry point:
    :func:`run_pipeline` and each ``forecaster`` command).

    A ``ForecasterError`` passes as it is. An operating-system error (``OSError``, or a Polars
    error that carries one: a full disk while writing Parquet) becomes a ``ForecasterError``
    with the system's message and the path; a :class:`~forecaster.exceptions.MissingExtraError`
    (an optional dependency that is not installed; its message names the ``pip install
    "forecaster-rnn[...]"`` command) a ``ForecasterError`` with that message; anything else a
    ``ForecasterError`` that calls it a bug, with the original as its ``__cause__``.
    ``BrokenPipeError`` and ``KeyboardInterrupt`` pass (the command line handles them).
    """
    try:
        yield
    except MissingExtraError as exc:
        raise ForecasterError(
            f"An optional dependency that is not installed stops {doing}: {first_line(exc)}"
        ) from exc
    except (ForecasterError, BrokenPipeError):
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ForecasterError(f"{exc.strerror or exc}{where}. {_SYSTEM_HINT}") from exc
    except pl.exceptions.PolarsError as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise _unexpected(exc, doing) from exc
        raise ForecasterError(
            f"{os.strerror(int(code.group(1)))} ({first_line(exc)}). {_SYSTEM_HINT}"
        ) from exc
    except MemoryError as exc:
        raise ForecasterError(
            f"Out of memory in {doing}. Use less data (features.history_days) or a smaller "
            "model, or run where there is more memory."
        ) from exc
    except Exception as exc:
        raise _unexpected(exc, doing) from exc


_SYSTEM_HINT = (
    "Check that the project's folders are writable and the disk has room, then run again."
)


def _unexpected(exc: BaseException, doing: str) -> ForecasterError:
    return ForecasterError(
        f"Unexpected {type(exc).__name__} in {doing}: {first_line(exc)}. This is a bug in "
        "forecaster: rerun with --verbose and report the traceback."
    )

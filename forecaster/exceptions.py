"""The package's error and warning types.

One small hierarchy so that users can catch everything we raise with ``ForecasterError`` while
scikit-learn's checks (and ordinary ``except ValueError``) still see a ``ValueError`` for bad input.
"""

from __future__ import annotations

__all__ = [
    "ConcurrentRunError",
    "DataValidationError",
    "ForecasterError",
    "ForecasterWarning",
    "NotFittedError",
    "OwnershipError",
]

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class ForecasterError(Exception):
    """Base class of every error raised by forecaster."""


class DataValidationError(ForecasterError, ValueError):
    """The input data or a parameter does not meet what is expected.

    The message says what was expected, what was received and how to fix it.
    """


class OwnershipError(ForecasterError, ValueError):
    """A path holds files that forecaster did not write, so it will not replace or delete it.

    Raised instead of overwriting a user's folder: the message names the path, what in it is
    not forecaster's, and what to do (choose a new or empty folder, or move the files out).
    """


class ConcurrentRunError(ForecasterError, RuntimeError):
    """Another process holds the lock of the same job (e.g. a pipeline run of the same spec
    and as-of date); exit code 4 in the command line."""


class NotFittedError(ForecasterError, _SklearnNotFittedError):
    """An estimator was used before ``fit``."""


class ForecasterWarning(UserWarning):
    """A warning about data or settings that forecaster handled for you (e.g. dropped series)."""

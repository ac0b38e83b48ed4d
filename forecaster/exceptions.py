"""The package's error and warning types.

One small hierarchy so that users can catch everything we raise with ``ForecasterError`` while
scikit-learn's checks (and ordinary ``except ValueError``) still see a ``ValueError`` for bad input.
"""

from __future__ import annotations

__all__ = ["DataValidationError", "ForecasterError", "ForecasterWarning", "NotFittedError"]

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class ForecasterError(Exception):
    """Base class of every error raised by forecaster."""


class DataValidationError(ForecasterError, ValueError):
    """The input data or a parameter does not meet what is expected.

    The message says what was expected, what was received and how to fix it.
    """


class NotFittedError(ForecasterError, _SklearnNotFittedError):
    """An estimator was used before ``fit``."""


class ForecasterWarning(UserWarning):
    """A warning about data or settings that forecaster handled for you (e.g. dropped series)."""

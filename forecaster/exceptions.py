"""The package's error and warning types.

One small hierarchy so that users can catch everything we raise with ``ForecasterError`` while
scikit-learn's checks (and ordinary ``except ValueError``) still see a ``ValueError`` for bad input.
Every error class of the package is defined here (the modules that raise them import them back,
so ``from forecaster.<module> import SomeError`` keeps working), grouped by the layer that raises
them: the base, models, training, tracking, tuning, pipelines and the command line.
The warning classes and the blocks that drop, summarize or tell once the package's warnings
(:func:`silenced`, :func:`collect_warnings`, :func:`each_warning_once`) are defined in
``forecaster._warning_scopes`` and exported from here, their public home.

This module imports nothing but the standard library, so that ``import forecaster`` and
``--help`` stay fast. :class:`NotFittedError` also subclasses scikit-learn's (``except
sklearn.exceptions.NotFittedError`` catches ours), and importing scikit-learn costs about 1 s
and 130 MB: the class is made once, on first use, by the module ``__getattr__`` (PEP 562), and
pickles by its name like the others.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "BaselineWarning",
    "CalendarFoldsWarning",
    "CheckpointError",
    "ConcurrentRunError",
    "CrossSeriesWarning",
    "DataValidationError",
    "DistributedError",
    "ForecasterError",
    "ForecasterWarning",
    "GPUOutOfMemoryError",
    "InSampleWarning",
    "InfiniteScoreWarning",
    "MissingExtraError",
    "ModelFormatError",
    "ModelSaveError",
    "NoResidualsWarning",
    "NotFittedError",
    "OutOfMemoryError",
    "OwnershipError",
    "SearchSpaceError",
    "SpecError",
    "StaleSeriesWarning",
    "StorageError",
    "StudyStopError",
    "TooFewRowsError",
    "TrackingUnavailableError",
    "TrainingDivergedError",
    "TrialFailedError",
    "TuningMetricError",
    "UnscoredPointsWarning",
    "collect_warnings",
    "each_warning_once",
    "silenced",
    "warnings_unit",
]

import threading
from typing import TYPE_CHECKING, Any

from forecaster._warning_scopes import (
    BaselineWarning,
    CalendarFoldsWarning,
    CrossSeriesWarning,
    ForecasterWarning,
    InfiniteScoreWarning,
    InSampleWarning,
    NoResidualsWarning,
    StaleSeriesWarning,
    UnscoredPointsWarning,
    collect_warnings,
    each_warning_once,
    silenced,
    warnings_unit,
)
from forecaster._warning_scopes import warn_at_caller as warn_at_caller  # for the package


class ForecasterError(Exception):
    """Base class of every error raised by forecaster."""


class MissingExtraError(ForecasterError, ImportError):
    """An optional dependency is not installed: the message names the ``pip install
    "forecaster-rnn[...]"`` command (the extra) that installs it (an ``ImportError`` too)."""


class DataValidationError(ForecasterError, ValueError):
    """The input data or a parameter does not meet what is expected: the message says what
    was expected, what was received and how to fix it."""


class TooFewRowsError(DataValidationError):
    """The series have too few rows for what was asked (a fit's window, a backtest's or a
    ``TemporalSplit``'s folds).

    Parameters
    ----------
    fact : str
        What is too short, and why. Kept as the attribute ``fact``: the message without
        ``fix``, for a caller whose user sets other things (a pipeline's spec sets no
        backtest ``folds`` or ``step``).
    fix : str, default ""
        How to fix it with the raiser's arguments; the message is ``fact`` then ``fix``.
    """

    def __init__(self, fact: str, fix: str = "") -> None:
        super().__init__(f"{fact} {fix}" if fix else fact)
        self.fact = fact


class OwnershipError(ForecasterError, ValueError):
    """A path holds files that forecaster did not write, so it will not replace or delete it
    (a user's folder): the message names the path, what in it is not forecaster's, and what
    to do (choose a new or empty folder, or move the files out)."""


class ConcurrentRunError(ForecasterError, RuntimeError):
    """Another process holds the lock of the same job (e.g. a pipeline run of the same spec
    and as-of date); exit code 4 in the command line. Also: another thread is fitting the
    same estimator object, whose ``predict``, ``score``, ``calibrate``, ``backtest``,
    ``stream``, save or second ``fit`` would see its fitted state half replaced (fit a copy instead:
    ``sklearn.base.clone(model).fit(...)``, and replace the model when that fit returns)."""


# models ------------------------------------------------------------------------------------


class ModelFormatError(ForecasterError, ValueError):
    """A folder is not a (readable) saved forecaster model."""


class ModelSaveError(ForecasterError, OSError):
    """A model cannot be written where it was asked to be (the folder is not writable, a part
    of the path is a file, the name is too long, the disk is full, ...)."""


# training ----------------------------------------------------------------------------------


class TrainingDivergedError(ForecasterError, ArithmeticError):
    """The training loss became NaN or infinite."""


class CheckpointError(ForecasterError):
    """A checkpoint is missing, unreadable, or was written for other data or parameters."""


class GPUOutOfMemoryError(ForecasterError, MemoryError):
    """A batch did not fit in the GPU's memory.

    Parameters
    ----------
    message : str
    batch_size, suggested_batch_size
        Kept as the attributes of those names.

    Attributes
    ----------
    batch_size : int
        Windows in the batch that failed (per process under torchrun).
    suggested_batch_size : int or None
        Windows per batch that fit (measured by trying halves in a single process; half of
        ``batch_size`` under torchrun, where trying would need every rank), or None when not
        even one window fits.
    """

    def __init__(self, message: str, batch_size: int, suggested_batch_size: int | None) -> None:
        super().__init__(message)
        self.batch_size = batch_size
        self.suggested_batch_size = suggested_batch_size


class OutOfMemoryError(ForecasterError, MemoryError):
    """Memory ran out while building or training a network, although the estimate passed
    (another process took the memory meanwhile, or the estimate was too low). The message
    names the parameters that the memory grows with."""


class DistributedError(ForecasterError, RuntimeError):
    """The process group described by torchrun's environment could not be joined or used."""


# tracking ----------------------------------------------------------------------------------


class TrackingUnavailableError(ForecasterError, ConnectionError):
    """The tracking backend cannot be reached (raised by ``forecaster.tracking.configure``;
    inside a fit or a study it is a warning and the records go to the fallback folder)."""


# tuning ------------------------------------------------------------------------------------


class StorageError(DataValidationError):
    """The study storage cannot be used: an unsupported URL, a missing driver, a file that is not
    a database, a read-only database, a server that refuses the connection. The message names
    the storage (password masked) and what is supported."""


class StudyStopError(DataValidationError):
    """A mistake every trial of a study would repeat: the study stops at once (the trial that
    found it is FAIL), instead of failing trial after trial; ``tune`` raises it as a
    DataValidationError ending with :attr:`stop_note`."""

    stop_note = "tune stopped at the first trial that hit it."


class SearchSpaceError(StudyStopError):
    """A callable search space returned what no trial can use (an unknown parameter, a task or
    unit parameter, a value the parameter table refuses)."""

    stop_note = "tune stopped at the first trial that sampled it."


class TuningMetricError(StudyStopError):
    """A metric callable returned what is no number (None, text, a bool, an array or tensor
    of several values): it would do so for every trial."""

    stop_note = "tune stopped at the first trial whose metric returned it."


class TrialFailedError(ForecasterError):
    """A trial's fit or metric failed; the trial is marked FAIL with the reason in its
    ``user_attrs["error"]`` and the study goes on."""


# pipelines and the command line ------------------------------------------------------------


class SpecError(ForecasterError, ValueError):
    """A pipeline spec is missing, unreadable or invalid, or a run's argument does not fit it
    (exit code 2 in the CLI)."""


class ArgumentError(SpecError):
    """A command-line argument that cannot be used (exit code 2)."""


# NotFittedError, made on first use (see the module docstring) ------------------------------

_NOT_FITTED_LOCK = threading.Lock()

if TYPE_CHECKING:  # what type checkers see; at run time the class below is made on first use
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    class NotFittedError(ForecasterError, SklearnNotFittedError):
        """An estimator was used before ``fit``."""


def _define_not_fitted_error() -> type[ForecasterError]:
    """The class ``NotFittedError``: a ForecasterError and scikit-learn's NotFittedError."""
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    class NotFittedError(ForecasterError, SklearnNotFittedError):
        """An estimator was used before ``fit``.

        Also a ``ValueError`` and an ``AttributeError`` (scikit-learn's ``NotFittedError``),
        so ``except sklearn.exceptions.NotFittedError`` catches it.
        """

    NotFittedError.__qualname__ = "NotFittedError"  # pickled and shown by its module name
    return NotFittedError


def __getattr__(name: str) -> Any:
    if name != "NotFittedError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _NOT_FITTED_LOCK:  # two threads asking at once get one class
        if name not in globals():
            globals()[name] = _define_not_fitted_error()
    return globals()[name]

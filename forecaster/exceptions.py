"""The package's error and warning types.

One small hierarchy so that users can catch everything we raise with ``ForecasterError`` while
scikit-learn's checks (and ordinary ``except ValueError``) still see a ``ValueError`` for bad input.
Every error class of the package is defined here (the modules that raise them import them back,
so ``from forecaster.<module> import SomeError`` keeps working), grouped by the layer that raises
them: the base, models, training, tracking, tuning, pipelines and the command line.

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

import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any


class ForecasterError(Exception):
    """Base class of every error raised by forecaster."""


class MissingExtraError(ForecasterError, ImportError):
    """An optional dependency is not installed: the message names the ``pip install
    "forecaster-rnn[...]"`` command (the extra) that installs it (an ``ImportError`` too)."""


class DataValidationError(ForecasterError, ValueError):
    """The input data or a parameter does not meet what is expected: the message says what
    was expected, what was received and how to fix it."""


class TooFewRowsError(DataValidationError):
    """The series have too few rows for what was asked (a fit's window, a backtest's folds)."""


class OwnershipError(ForecasterError, ValueError):
    """A path holds files that forecaster did not write, so it will not replace or delete it
    (a user's folder): the message names the path, what in it is not forecaster's, and what
    to do (choose a new or empty folder, or move the files out)."""


class ConcurrentRunError(ForecasterError, RuntimeError):
    """Another process holds the lock of the same job (e.g. a pipeline run of the same spec
    and as-of date); exit code 4 in the command line."""


class ForecasterWarning(UserWarning):
    """A warning about data or settings that forecaster handled for you (e.g. dropped series)."""


class BaselineWarning(ForecasterWarning):
    """A fitted network is worse than the naive or seasonal-naive forecast on its validation
    windows (see ``RNNForecaster(baseline=...)``); filter it by this class to silence it."""


class UnscoredPointsWarning(ForecasterWarning):
    """A backtest or ``score`` leaves out points whose actual value the ``missing=`` policy
    made up (the frame holds no value there): they are not scored. Filter it by this class to
    silence it (``calibrate`` does, and says itself which residuals it left out)."""


class InfiniteScoreWarning(ForecasterWarning):
    """Scores are infinite (MAPE of an actual 0 the forecast misses; MASE, MSIS, sCRPS of a
    flat history), named by series and column. Filter it by this class to silence it."""


class InSampleWarning(ForecasterWarning):
    """A backtest of a fitted model (``refit=False``) forecasts origins inside the model's
    training data: those scores are in-sample. Filter it by this class to silence it."""


class StaleSeriesWarning(ForecasterWarning):
    """Some series end before the forecast origin (the frame's last time, the cutoff, a
    pipeline's as-of): forecast from their own last time. Filter it by this class to silence it."""


class CalendarFoldsWarning(ForecasterWarning):
    """Calendar folds (``origins='calendar'``) leave out series with no row after a fold's
    cutoff or no lookback window before it. Filter it by this class to silence it."""


class CrossSeriesWarning(ForecasterWarning):
    """Folds counted from each series' own end (``origins='series'``) let a fold's model train
    on other series' rows after the series' first target. Filter it by this class to silence it."""


class NoResidualsWarning(ForecasterWarning):
    """``calibrate(normalize='series')`` got no residual for some series, whose forecasts
    ``predict(level=...)`` then refuses. Filter it by this class to silence it."""


def warn_at_caller(message: str, category: type[Warning], fact: str | None = None) -> None:
    """``warnings.warn(message, category)`` attributed to the first caller outside the
    forecaster package (the user's ``fit`` line, or the library that called forecaster;
    frames of ``contextlib``, Optuna and MLflow on the way are passed too: :data:`_PASSED`),
    however deep inside forecaster it is raised: through a backtest, a pipeline or a tuning
    trial the same warning points at the same user line.

    A warning of a :func:`silenced` block of this thread's (context's) kinds is dropped. A
    ForecasterWarning raised in a :func:`warnings_unit` of this thread's (context's)
    :func:`collect_warnings` block is held for that block's summary, unless the warning
    filters say ``"error"`` (raised here) or ``"ignore"`` (dropped) for it at that line. In an
    :func:`each_warning_once` block, one telling a ``fact`` (default: the message) told (shown:
    not hidden by ``"ignore"``, not raised by ``"error"``, which raises each copy) is dropped.

    Shared by the package's modules, not public (not in ``__all__``): its frame walk is made
    for forecaster's frames (code outside the package warns with ``warnings.warn``).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_at_caller("look", UserWarning)
    >>> caught[0].category.__name__, str(caught[0].message)
    ('UserWarning', 'look')
    """
    if any(
        issubclass(category, c) and (m is None or m.search(message)) for c, m in _SILENCED.get()
    ):
        return  # a silenced() block of this context drops it
    level = 2  # the caller of this function
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in _PASSED:
        frame, level = frame.f_back, level + 1
    scope, told = _SCOPE.get(), _TOLD.get()
    ours = issubclass(category, ForecasterWarning) and (scope, told) != (None, None)
    shown = ours and _filter_action(message, category, frame) not in ("error", "ignore")
    while shown and scope is not None:
        if scope.unit is not None:  # in a unit: held for the summary
            scope.collector.hold(scope.unit, message, category)
            return
        scope.collector.shown.add((category, message))  # a call's own: shown below
        scope = scope.outer
    if ours and told is not None:
        key = (category, _FACT.sub(lambda m: m[1] or "#", message if fact is None else fact))
        if key in told:
            return  # the block already told it
        if shown:
            told.add(key)
    warnings.warn(message, category, stacklevel=level)


_PASSED = frozenset({"forecaster", "contextlib", "optuna", "mlflow"})
"""The packages whose frames :func:`warn_at_caller` passes on its way to the user's line:
forecaster's own, and those forecaster calls back through (a ``with`` of one of its context
managers, a tuning trial that Optuna runs, the ``predict`` of a model MLflow loaded)."""


def _matches(pattern: Any, text: str) -> bool:
    """A filter's message or module: None (any), a compiled pattern, or a plain string (the
    whole text, as Python's own filters of that kind are compared)."""
    return pattern is None or (
        pattern == text if isinstance(pattern, str) else bool(pattern.match(text))
    )


def _filter_action(text: str, category: type[Warning], frame: FrameType | None) -> str:
    """What the warning filters do with a warning raised at ``frame`` (the first filter that
    matches, as ``warnings.warn_explicit`` reads them: message, category, module, line)."""
    if frame is None:  # where warnings.warn puts a warning beyond the stack
        module, lineno = "sys", 1
    else:
        module, lineno = str(frame.f_globals.get("__name__", "<string>")), frame.f_lineno
    for action, message, cat, mod, ln in warnings.filters:
        if (
            _matches(message, text)
            and issubclass(category, cat)
            and _matches(mod, module)
            and ln in (0, lineno)
        ):
            return str(action)
    return str(getattr(warnings, "defaultaction", "default"))  # typeshed lacks it


_SILENCED: ContextVar[tuple[tuple[type[Warning], re.Pattern[str] | None], ...]] = ContextVar(
    "forecaster_silenced_warnings", default=()
)
"""The kinds of warning the open :func:`silenced` blocks of this context drop."""


@contextmanager
def silenced(category: type[ForecasterWarning], message: str | None = None) -> Iterator[None]:
    """Drop the package's own warnings of one kind inside the block, in this thread (its
    ``contextvars`` context) only: how forecaster hides a warning a call of its own would
    give twice or wrongly (e.g. the series a dry run leaves out, named by the fit's panel).

    Unlike ``warnings.catch_warnings()`` with an ``"ignore"`` filter, the block changes
    nothing of the process: other threads' warnings are untouched, and Python's record of the
    warnings already shown (which ``catch_warnings`` resets, so that the default filter
    repeats every warning after it) is kept. It acts on warnings raised through
    :func:`warn_at_caller` (every ForecasterWarning of the package), not on other libraries'.

    Parameters
    ----------
    category : type
        A ForecasterWarning class: it and its subclasses are dropped.
    message : str, optional
        A regular expression: only warnings whose message it matches (``re.search``) are
        dropped; default all of ``category``.

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with silenced(InSampleWarning):
    ...         warn_at_caller("in-sample origins", InSampleWarning)
    ...     warn_at_caller("shown", ForecasterWarning)
    >>> [str(w.message) for w in caught]
    ['shown']
    """
    if not (isinstance(category, type) and issubclass(category, ForecasterWarning)):
        raise TypeError(f"silenced() takes a ForecasterWarning class, got {category!r}")
    pattern = None if message is None else re.compile(message)
    token = _SILENCED.set((*_SILENCED.get(), (category, pattern)))
    try:
        yield
    finally:
        _SILENCED.reset(token)


# the warnings of a call's repeated fits ----------------------------------------------------

_SHOWN_UNITS = 5
"""Units a summary names before ``...``."""
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
"""What :func:`collect_warnings` masks to group near-copies (counts, shares, errors)."""
_FACT = re.compile(r"(\[[^][]*\]|(?<!\w)'[^']*'|(?<!\w)\"[^\"]*\")|\d{4}-\d\d-\d\d(?:[T ][\d:.]+)?|"
                   rf"(?<!\w){_NUMBER.pattern}")  # fmt: skip
"""What :func:`each_warning_once` masks: dates and numbers, not ids (``[7203]``, ``'7203'``, s1)."""


@dataclass
class _Group:
    """The warnings of one kind (category and message with its numbers masked)."""

    first: str
    units: dict[int | str, None] = field(default_factory=dict)  # in order, once each


@dataclass
class _Collector:
    """The state of one :func:`collect_warnings` block."""

    label: str
    unit: str
    key: str
    numbers: list[int] = field(default_factory=list)  # numbered units run
    groups: dict[tuple[type[Warning], str], _Group] = field(default_factory=dict)
    shown: set[tuple[type[Warning], str]] = field(default_factory=set)  # the call's own

    def hold(self, unit: int | str, text: str, category: type[Warning]) -> None:
        """Keep a warning of a unit for the summary (one repeating the call's own: not)."""
        if (category, text) not in self.shown:
            group = self.groups.setdefault((category, _NUMBER.sub("#", text)), _Group(text))
            group.units[unit] = None

    def summaries(self) -> list[tuple[str, type[Warning], str]]:
        """One message per kind: the units it came from, and its first full message (also
        the third item: the fact it tells, for :func:`each_warning_once`)."""
        out = []
        for (category, _), group in self.groups.items():
            numbered = [u for u in group.units if isinstance(u, int)]
            parts = [u for u in group.units if isinstance(u, str)]
            if len(self.numbers) == 1 and not parts:  # one fit: nothing repeated
                out.append((group.first, category, group.first))
                continue
            if numbered:
                shown = ", ".join(str(u) for u in numbered[:_SHOWN_UNITS])
                shown += ", ..." if len(numbered) > _SHOWN_UNITS else ""
                plural = "s" if len(numbered) > 1 else ""
                units = f"{self.label} {self.unit}s ({self.key}{plural} {shown})"
                parts.insert(0, f"{len(numbered)} of {len(self.numbers)} {units}")
            out.append((f"In {' and '.join(parts)}: {group.first}", category, group.first))
        return out


@dataclass(frozen=True)
class _Scope:
    """A :func:`collect_warnings` block or one of its units, and the scope around it."""

    collector: _Collector
    unit: int | str | None  # None: the block, outside its units
    outer: _Scope | None


_SCOPE: ContextVar[_Scope | None] = ContextVar("forecaster_warnings_scope", default=None)
"""The innermost open block or unit of this context (a thread starts with none)."""


@contextmanager
def collect_warnings(label: str, unit: str, key: str | None = None) -> Iterator[None]:
    """Summarize the ForecasterWarnings of a call's repeated fits (its *units*: backtest
    folds, tuning trials): each kind once, when the block ends, naming its units.

    Inside the block, a ForecasterWarning raised (by :func:`warn_at_caller`) in a
    :func:`warnings_unit` is held; at the end, each kind (category, and message with its
    numbers masked, so that near-copies group) is warned once, at the caller's line
    (:func:`warn_at_caller`), with its category: ``"In 6 of 10 backtest folds (folds 2, 3,
    5, ...): <the first message>"``. A unit repeating a warning the call already showed
    adds nothing. ForecasterWarnings outside any unit (the call's own) and all other
    warnings (torch's, Polars', the user's) are shown as they come. The user's filters apply
    where a warning is raised: ``"error"`` raises it in its unit, ``"ignore"`` drops it.
    Should an exception leave the block, the summaries are warned before it propagates; one
    that a filter turns into an error is added to the exception's notes instead.

    The block changes nothing of the process (no filter, no ``warnings.showwarning``, no
    ``catch_warnings``, so Python's record of the warnings already shown is kept): it holds
    the warnings of its own thread (its ``contextvars`` context) only. A thread started
    inside it starts outside it: its warnings are shown as they come.

    Parameters
    ----------
    label : str
        What the units are part of, e.g. ``"backtest"``.
    unit : str
        What a summary counts, e.g. ``"fold"`` (plural: with an ``s``).
    key : str, optional
        What it names the units' numbers by; default ``unit``. E.g. ``unit="fit", key="at
        fold"``: ``"In 2 of 2 backtest fits (at folds 0, 3)"``.

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with collect_warnings("backtest", "fold"):
    ...         for fold in range(3):
    ...             with warnings_unit(fold):
    ...                 warn_at_caller(f"{fold + 1} rows left out", ForecasterWarning)
    >>> [str(w.message) for w in caught]
    ['In 3 of 3 backtest folds (folds 0, 1, 2): 1 rows left out']
    """
    collector = _Collector(label, unit, unit if key is None else key)
    token = _SCOPE.set(_Scope(collector, None, _SCOPE.get()))
    try:
        yield
    except BaseException as exc:
        _SCOPE.reset(token)
        for message, category, fact in collector.summaries():
            try:
                warn_at_caller(message, category, fact)
            except Exception as error:  # a filter's "error": the block's exception goes on
                exc.add_note(f"A warning of the same call, which a warning filter made an "
                             f"error: {type(error).__name__}: {error}")  # fmt: skip
        raise
    _SCOPE.reset(token)
    for message, category, fact in collector.summaries():
        warn_at_caller(message, category, fact)


@contextmanager
def warnings_unit(key: int | str) -> Iterator[None]:
    """Run one unit of the innermost :func:`collect_warnings` block of this context: its
    ForecasterWarnings are summarized there. Outside such a block: nothing is done.

    Parameters
    ----------
    key : int or str
        The unit's number (counted: ``"In 3 of 10 backtest folds (folds 0, 4, 7)"``), or a
        name shown as it is (``"... and the refit of the best trial"``).
    """
    scope = _SCOPE.get()
    if scope is None:
        yield
        return
    if isinstance(key, int):
        scope.collector.numbers.append(key)
    token = _SCOPE.set(_Scope(scope.collector, key, scope.outer))
    try:
        yield
    finally:
        _SCOPE.reset(token)


_TOLD: ContextVar[set[tuple[type, str]] | None] = ContextVar("forecaster_told", default=None)
"""The facts the open :func:`each_warning_once` block of this context told."""


@contextmanager
def each_warning_once() -> Iterator[None]:
    """Tell each of the package's warnings once in the block, in this thread (``contextvars``
    context) only, as a pipeline run, whose calibration and backtest fit again, does. A
    ForecasterWarning (of :func:`warn_at_caller`) of the class and fact of one shown in the
    block is dropped: the same message but for its numbers and dates, or the same first
    message of a summary (``"In 2 of 3 backtest fits (...): ..."``). One naming other series
    is shown (also ``'s1'``, ``'7203'``, ``[7203]``: :data:`_FACT`). Nested blocks share one
    record; other warnings are untouched.

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught, each_warning_once():
    ...     warnings.simplefilter("always")
    ...     for end in ("2024-01-31", "2024-02-29"):
    ...         warn_at_caller(f"'b' ends before {end}", ForecasterWarning)
    >>> [str(w.message) for w in caught]
    ["'b' ends before 2024-01-31"]
    """
    token = _TOLD.set(set() if (told := _TOLD.get()) is None else told)
    try:
        yield
    finally:
        _TOLD.reset(token)


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

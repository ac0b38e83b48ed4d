"""The package's warning classes and how it raises them.

:func:`warn_at_caller` raises every ForecasterWarning of the package at the user's line;
:func:`silenced`, :func:`collect_warnings` / :func:`warnings_unit` and
:func:`each_warning_once` are the blocks that drop, summarize or tell once the warnings of a
call, in one thread (``contextvars`` context) only. The public names are exported by
:mod:`forecaster.exceptions` (``from forecaster.exceptions import StaleSeriesWarning``), which
re-exports them from here; the warning classes' ``__module__`` is that public home, so that
pickles, reprs and the traceback of ``-W error::...`` name it, not this private module (which
may move). This module imports nothing but the standard library.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import Any


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
    """Forecasts from origins whose later data the model knew: a backtest of a fitted model
    (``refit=False``) or ``predict(frame, cutoff=...)`` forecasts origins inside the model's
    training data (those forecasts and scores are in-sample), or their intervals come from a
    calibration with ``rolling=None`` on windows ending after the origin. Filter it by this
    class to silence it."""


class StaleSeriesWarning(ForecasterWarning):
    """Some series end before the forecast origin (the frame's last time, the cutoff, a
    pipeline's as-of): forecast from their own last time. Integer steps are compared with a
    cutoff only (positions of independent sequences are not shared times). Filter it by this
    class to silence it."""


class CalendarFoldsWarning(ForecasterWarning):
    """Calendar folds (``origins='calendar'``) leave out series with no row after a fold's
    cutoff or no lookback window before it. Filter it by this class to silence it."""


class CrossSeriesWarning(ForecasterWarning):
    """Folds counted from each series' own end (``origins='series'``) let a fold's model train
    on other series' rows after the series' first target. Filter it by this class to silence it."""


class NoResidualsWarning(ForecasterWarning):
    """``calibrate(normalize='series')`` got no residual for some series, whose forecasts
    ``predict(level=...)`` then refuses. Filter it by this class to silence it."""


for _kind in (
    ForecasterWarning,
    BaselineWarning,
    UnscoredPointsWarning,
    InfiniteScoreWarning,
    InSampleWarning,
    StaleSeriesWarning,
    CalendarFoldsWarning,
    CrossSeriesWarning,
    NoResidualsWarning,
):  # named by their public home in pickles, reprs and tracebacks (as numpy's set_module)
    _kind.__module__ = "forecaster.exceptions"


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
    units: dict[int | str, str] = field(default_factory=dict)  # in order: each one's first text


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
            group.units.setdefault(unit, text)

    def summaries(self) -> list[tuple[str, type[Warning], str]]:
        """One message per kind: the units it came from, and the full message of one of them
        (also the third item: the fact it tells, for :func:`each_warning_once`). That message
        is a named unit's own where one warned (the last: ``"the refit of the best trial"``,
        whose numbers are those of the model the call returns), else the first unit's. Where
        the other units' numbers differ from a named unit's, the summary says whose it gives."""
        out = []
        for (category, _), group in self.groups.items():
            numbered = [u for u in group.units if isinstance(u, int)]
            named = [u for u in group.units if isinstance(u, str)]
            if len(self.numbers) == 1 and not named:  # one fit: nothing repeated
                out.append((group.first, category, group.first))
                continue
            own = named[-1] if named else numbered[0]
            text = group.units[own]
            varied = len(set(group.units.values())) > 1
            parts = [f"{name} (the numbers below are its own)" if varied and numbered else name
                     for name in named]  # fmt: skip
            if numbered:
                shown = ", ".join(str(u) for u in numbered[:_SHOWN_UNITS])
                shown += ", ..." if len(numbered) > _SHOWN_UNITS else ""
                plural = "s" if len(numbered) > 1 else ""
                if varied and named:  # a named unit's numbers are given, not theirs
                    shown += "; their numbers not shown"
                units = f"{self.label} {self.unit}s ({self.key}{plural} {shown})"
                parts.insert(0, f"{len(numbered)} of {len(self.numbers)} {units}")
            out.append((f"In {' and '.join(parts)}: {text}", category, text))
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
    5, ...): <the first message>"``; a named unit's own message where one warned (``"In 4 of 4
    tuning trials (...) and the refit of the best trial: <the refit's message>"``), saying so
    where the numbered units' numbers differ from it (``"(trials 0, 1; their numbers not
    shown) and the refit of the best trial (the numbers below are its own)"``). A unit
    repeating a warning the call already showed adds nothing. ForecasterWarnings outside any
    unit (the call's own) and all other warnings (torch's, Polars', the user's) are shown as
    they come. The user's filters apply
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

    Threads: a thread started inside the block (``threading.Thread``, a
    ``ThreadPoolExecutor``'s, Optuna's ``study.optimize(n_jobs=2)``) starts outside it, as it
    starts with a fresh ``contextvars`` context: its warnings are shown as they come, each
    time, and tell the block nothing. A thread that runs in a copy of the block's context
    (``asyncio.to_thread``, ``contextvars.copy_context().run``) shares its record: a fact
    told in one is dropped in the others (two raising the same fact at the same moment may
    both tell it).

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

"""Fit callbacks: what an estimator's ``fit`` tells the world, and the registry of defaults.

A *fit callback* is any object with some of the hooks of :class:`FitCallback`; the estimator
calls ``on_fit_start`` before training, ``on_epoch_end`` after every epoch (through the
training loop), and ``on_fit_end`` or ``on_fit_error`` when ``fit`` finishes. A hook a
callback does not define is skipped, so a callback implements only what it needs. The fit is
kept once every ``on_fit_end`` returned (:func:`call_fit_end`); a callback that must act only
on a kept fit (tracking, which logs the model) does so through :func:`after_fit_end`. Ctrl-C
in one ``on_fit_end`` keeps the completed fit: the callbacks whose ``on_fit_end`` it left
uncalled get ``on_fit_interrupted`` instead. A plain
callable ``callback(record, network)`` is still accepted wherever epoch callbacks are, and
counts as an ``on_epoch_end`` hook (:func:`epoch_callables`).

Packages that want to observe every fit without the user passing a callback (tracking's
``autolog()``) register a *factory* with :func:`register_fit_callback`; the estimator asks
:func:`default_fit_callbacks` for the callbacks of each fit and adds the user's own. Nothing is
discovered: a factory runs only while it is registered.

Examples
--------
>>> class Count:
...     def __init__(self):
...         self.epochs = 0
...     def on_epoch_end(self, record, network):
...         self.epochs += 1
>>> counter = Count()
>>> handle = register_fit_callback(lambda estimator, data: counter)
>>> callbacks = default_fit_callbacks("estimator", "data")
>>> call_hook(callbacks, "on_fit_start", "estimator", "data")  # Count has no such hook
>>> call_hook(callbacks, "on_epoch_end", "record", "network")
>>> counter.epochs
1
>>> unregister_fit_callback(handle)
True
>>> default_fit_callbacks("estimator", "data")
[]
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from forecaster.exceptions import ForecasterWarning, warn_at_caller

__all__ = [
    "FIT_HOOKS",
    "FitCallback",
    "FitCallbackFactory",
    "FitCallbackHandle",
    "StopTraining",
    "after_fit_end",
    "call_epoch_callbacks",
    "call_fit_end",
    "call_hook",
    "call_in_turn",
    "default_callbacks_withheld",
    "default_fit_callbacks",
    "epoch_callables",
    "register_fit_callback",
    "registered_fit_callbacks",
    "unregister_fit_callback",
    "without_default_callbacks",
]


class StopTraining(Exception):
    """Raise from an epoch callback to stop training early (the best weights are kept).

    In an estimator's ``fit`` it ends the whole fit: an ensemble (``n_ensemble > 1``) keeps
    the members trained so far, with a warning, as when ``max_time`` runs out; the fitted
    ``stopped_by_`` is then ``"callback"``."""


FIT_HOOKS = ("on_fit_start", "on_epoch_end", "on_fit_end", "on_fit_interrupted", "on_fit_error")
"""The hook names a fit callback may define, in the order a fit calls them."""


@runtime_checkable
class FitCallback(Protocol):
    """What a fit callback may define; every hook is optional.

    The protocol lists the hooks with their arguments for type checkers and readers; a
    callback needs only the hooks it uses (:func:`call_hook` skips the others), so
    ``isinstance(obj, FitCallback)`` is true only for objects that define all five.

    Methods
    -------
    on_fit_start(estimator, data)
        Before training: the estimator (its parameters are set) and the data given to ``fit``
        (a frame, or an ``(X, y)`` tuple); a LazyFrame as ``fit`` reads it, once (collected,
        the columns of the model's roles), so that the hook sees the rows the fit trains on.
    on_epoch_end(record, network)
        After every epoch: an :class:`~forecaster.training.records.EpochRecord` and the network
        being trained. Raise :class:`StopTraining` to stop (the
        best weights are kept; an ensemble fit ends with the members trained so far); any
        other exception ends the fit.
    on_fit_end(estimator)
        After a successful fit: the fitted estimator. The hooks run in the callbacks' order,
        and the fit is kept once all of them returned: an exception from a later one rolls
        it back (then ``on_fit_error`` is called). What must happen only to a kept fit (the
        fit's logging) goes through :func:`after_fit_end`.
    on_fit_interrupted(estimator)
        Instead of ``on_fit_end``, when a ``KeyboardInterrupt`` (Ctrl-C) in an earlier
        callback's ``on_fit_end`` left this one's uncalled: training completed and the fit
        is kept (the estimator is fitted); the interrupt goes on after the hooks. An
        exception from it is a warning (the interrupt is what propagates).
    on_fit_error(estimator, exc)
        When the fit raised ``exc`` (which is raised again after the hooks).
    """

    def on_fit_start(self, estimator: Any, data: Any) -> None: ...

    def on_epoch_end(self, record: Any, network: Any) -> None: ...

    def on_fit_end(self, estimator: Any) -> None: ...

    def on_fit_interrupted(self, estimator: Any) -> None: ...

    def on_fit_error(self, estimator: Any, exc: BaseException) -> None: ...


FitCallbackFactory = Callable[[Any, Any], Any]
"""``factory(estimator, data)`` returns a fit callback for this fit, or None for none."""


@dataclass(frozen=True)
class FitCallbackHandle:
    """What :func:`register_fit_callback` returns: pass it to :func:`unregister_fit_callback`."""

    id: int
    factory: FitCallbackFactory = field(compare=False, repr=False)


_lock = threading.Lock()
_ids = itertools.count(1)
_factories: dict[int, FitCallbackFactory] = {}


def register_fit_callback(factory: FitCallbackFactory) -> FitCallbackHandle:
    """Add a factory whose callback every later fit gets (until it is unregistered).

    Parameters
    ----------
    factory : callable
        ``factory(estimator, data)``, called once at the start of each fit; returns a fit
        callback (an object with some of :data:`FIT_HOOKS`) or None to skip this fit.

    Returns
    -------
    FitCallbackHandle
        Pass it to :func:`unregister_fit_callback`. Registering the same factory twice gives
        two handles (and two callbacks per fit).

    Raises
    ------
    TypeError
        When ``factory`` is not callable.

    Examples
    --------
    >>> handle = register_fit_callback(lambda estimator, data: None)
    >>> unregister_fit_callback(handle)
    True
    """
    if not callable(factory):
        raise TypeError(
            f"factory must be callable as factory(estimator, data), got {type(factory).__name__}."
        )
    with _lock:
        handle = FitCallbackHandle(next(_ids), factory)
        _factories[handle.id] = factory
    return handle


def unregister_fit_callback(handle: FitCallbackHandle) -> bool:
    """Remove a factory added by :func:`register_fit_callback`.

    Returns
    -------
    bool
        True when it was registered, False when it was removed already (removing twice is
        harmless).

    Examples
    --------
    >>> handle = register_fit_callback(lambda estimator, data: None)
    >>> unregister_fit_callback(handle), unregister_fit_callback(handle)
    (True, False)
    """
    with _lock:
        return _factories.pop(handle.id, None) is not None


def registered_fit_callbacks() -> list[FitCallbackHandle]:
    """The handles registered now, oldest first.

    Examples
    --------
    >>> handle = register_fit_callback(lambda estimator, data: None)
    >>> handle in registered_fit_callbacks()
    True
    >>> _ = unregister_fit_callback(handle)
    """
    with _lock:
        return [FitCallbackHandle(key, factory) for key, factory in _factories.items()]


_internal = threading.local()  # depth of without_default_callbacks blocks of this thread
_everywhere = [0]  # depth of without_default_callbacks(every_thread=True) blocks (under _lock)


@contextlib.contextmanager
def without_default_callbacks(*, every_thread: bool = False) -> Iterator[None]:
    """Within this block, fits of this thread get no callbacks from the registered factories:
    for the library's own fits of copies of the user's estimator (a backtest's or
    ``calibrate``'s fold models), which ``autolog()`` must not log as the user's fits.

    Parameters
    ----------
    every_thread : bool, default False
        Withhold them from the fits of every thread of the process while the block lasts
        (a tuning study's trials, which Optuna may fit in threads of its own):
        :func:`forecaster.tracking.paused` is such a block, and its fit loggers ask
        :func:`default_callbacks_withheld` whether one is open.

    Raises
    ------
    TypeError
        When ``every_thread`` is not a bool.

    Examples
    --------
    >>> handle = register_fit_callback(lambda estimator, data: "logger")
    >>> with without_default_callbacks():
    ...     default_fit_callbacks(None, "panel")
    []
    >>> _ = unregister_fit_callback(handle)
    """
    if not isinstance(every_thread, bool):
        raise TypeError(f"every_thread must be True or False, got {every_thread!r}.")
    if every_thread:
        with _lock:
            _everywhere[0] += 1
    else:
        _internal.depth = getattr(_internal, "depth", 0) + 1
    try:
        yield
    finally:
        if every_thread:
            with _lock:
                _everywhere[0] -= 1
        else:
            _internal.depth -= 1


def default_callbacks_withheld(*, every_thread: bool = False) -> bool:
    """Whether a :func:`without_default_callbacks` block withholds the registered factories'
    callbacks from the fits of this thread now (``every_thread=True``: whether a block for
    every thread is open).

    Examples
    --------
    >>> with without_default_callbacks():
    ...     default_callbacks_withheld(), default_callbacks_withheld(every_thread=True)
    (True, False)
    """
    with _lock:
        everywhere = _everywhere[0] > 0
    return everywhere or (not every_thread and getattr(_internal, "depth", 0) > 0)


def default_fit_callbacks(estimator: Any, data: Any) -> list[Any]:
    """The callbacks of the registered factories for one fit, in registration order (none
    within :func:`without_default_callbacks`: :func:`default_callbacks_withheld`).

    Each factory is called as ``factory(estimator, data)``; a factory that returns None adds
    nothing. An exception from a factory propagates (the fit has not started).

    Examples
    --------
    >>> handle = register_fit_callback(lambda estimator, data: f"callback for {data}")
    >>> default_fit_callbacks(None, "panel")
    ['callback for panel']
    >>> _ = unregister_fit_callback(handle)
    """
    if default_callbacks_withheld():
        return []
    with _lock:
        factories = list(_factories.values())
    callbacks = (factory(estimator, data) for factory in factories)
    return [callback for callback in callbacks if callback is not None]


def call_hook(callbacks: Iterable[Any], hook: str, *args: Any) -> None:
    """Call ``callback.<hook>(*args)`` on every callback that defines that hook.

    Callbacks without the hook (or with it set to None) are skipped; an exception from a hook
    propagates at once (later callbacks are not called).

    Parameters
    ----------
    callbacks : iterable
        Fit callbacks.
    hook : {"on_fit_start", "on_epoch_end", "on_fit_end", "on_fit_interrupted", "on_fit_error"}
    *args
        The hook's arguments.

    Raises
    ------
    ValueError
        When ``hook`` is not one of :data:`FIT_HOOKS`.

    Examples
    --------
    >>> class Printer:
    ...     def on_fit_end(self, estimator):
    ...         print("fitted", estimator)
    >>> call_hook([Printer(), object()], "on_fit_end", "model")
    fitted model
    """
    if hook not in FIT_HOOKS:
        raise ValueError(f"hook must be one of {', '.join(FIT_HOOKS)}, got {hook!r}.")
    for callback in list(callbacks):
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)


_fit_end = threading.local()
"""``kept``: the ``(call, stop)`` pairs :func:`after_fit_end` was given by the ``on_fit_end``
hooks that :func:`call_fit_end` is calling in this thread (None outside)."""


def call_fit_end(callbacks: Iterable[Any], estimator: Any) -> None:
    """Call every callback's ``on_fit_end(estimator)``, then, once all returned (the fit is
    kept), the calls they kept with :func:`after_fit_end`, in order (:func:`call_in_turn`).

    When a hook raises, the kept calls are not made: an exception fails the fit (the
    estimator calls ``on_fit_error`` next); after a ``KeyboardInterrupt`` (the completed fit
    is kept) their ``stop`` calls are made, then the ``on_fit_interrupted(estimator)`` hooks
    of the callbacks whose ``on_fit_end`` was not called yet (each of them, however often
    Ctrl-C is pressed meanwhile; an exception from one is a warning), then the interrupt
    goes on. An exception from a kept call propagates as one from a hook.

    Examples
    --------
    >>> class Logger:
    ...     def on_fit_end(self, estimator):
    ...         after_fit_end(lambda: print("logged", estimator), lambda: print("stopped"))
    >>> class Printer:
    ...     def on_fit_end(self, estimator):
    ...         print("fitted", estimator)
    >>> call_fit_end([Logger(), Printer()], "model")
    fitted model
    logged model
    """
    callbacks = list(callbacks)
    outer = getattr(_fit_end, "kept", None)  # a fit inside an on_fit_end hook has its own
    kept: list[tuple[Callable[[], Any], Callable[[], Any]]] = []
    _fit_end.kept = kept
    called = 0  # the callbacks whose on_fit_end was called
    try:
        for callback in callbacks:
            called += 1
            method = getattr(callback, "on_fit_end", None)
            if method is not None:
                method(estimator)
    except KeyboardInterrupt:
        for _, stop in kept:
            with contextlib.suppress(KeyboardInterrupt):  # each is stopped, however often
                stop()
        _call_interrupted(callbacks[called:], estimator)
        raise
    finally:
        _fit_end.kept = outer
    call_in_turn(kept)


def _call_interrupted(callbacks: Sequence[Any], estimator: Any) -> None:
    """The ``on_fit_interrupted(estimator)`` hooks of ``callbacks`` (those whose
    ``on_fit_end`` a ``KeyboardInterrupt`` left uncalled), each of them: a further interrupt
    is ignored, an exception is a warning (the interrupt is what propagates)."""
    for callback in callbacks:
        method = getattr(callback, "on_fit_interrupted", None)
        if method is None:
            continue
        try:
            method(estimator)
        except KeyboardInterrupt:
            continue
        except Exception as error:
            warn_at_caller(
                f"An on_fit_interrupted callback failed ({type(error).__name__}: {error}) "
                "while the fit's end was interrupted (KeyboardInterrupt).",
                ForecasterWarning,
            )


def after_fit_end(call: Callable[[], Any], stop: Callable[[], Any]) -> bool:
    """Inside an ``on_fit_end`` hook that :func:`call_fit_end` calls (as an estimator's fit
    does), keep ``call`` to be made once every callback's ``on_fit_end`` returned and the fit
    is kept, and return True; ``stop`` is called instead when a ``KeyboardInterrupt`` comes
    first (the completed fit is kept); neither is called when a later hook raises an
    exception (the fit is rolled back, ``on_fit_error`` follows). Outside such a hook,
    return False: the caller makes its call now.

    Examples
    --------
    >>> after_fit_end(lambda: None, lambda: None)
    False
    """
    kept = getattr(_fit_end, "kept", None)
    if kept is None:
        return False
    kept.append((call, stop))
    return True


def call_in_turn(calls: Sequence[tuple[Callable[[], Any], Callable[[], Any]]]) -> None:
    """Make the ``call`` of each ``(call, stop)`` pair in turn; after a ``KeyboardInterrupt``
    in one, make the ``stop`` calls of those after it (each of them, however often Ctrl-C is
    pressed meanwhile), then raise the interrupt again.

    Examples
    --------
    >>> call_in_turn([(lambda: print("one"), print), (lambda: print("two"), print)])
    one
    two
    """
    for done, (call, _) in enumerate(calls, start=1):
        try:
            call()
        except KeyboardInterrupt:
            for _, stop in calls[done:]:
                with contextlib.suppress(KeyboardInterrupt):
                    stop()
            raise


def epoch_callables(callbacks: Iterable[Any]) -> list[Callable[[Any, Any], Any]]:
    """The epoch callables of a mix of fit callbacks and plain ``callback(record, network)``.

    A fit callback contributes its ``on_epoch_end`` (none when it lacks one); a plain callable
    contributes itself. The result is what :func:`~forecaster.training.loop.train` takes as
    ``callbacks``.

    Examples
    --------
    >>> class Quiet:
    ...     def on_fit_end(self, estimator): ...
    >>> def log(record, network): ...
    >>> epoch_callables([Quiet(), log]) == [log]
    True
    """
    result: list[Callable[[Any, Any], Any]] = []
    for callback in callbacks:
        method = getattr(callback, "on_epoch_end", None)
        if method is not None:
            result.append(method)
        elif callable(callback) and not any(hasattr(callback, h) for h in FIT_HOOKS):
            result.append(callback)
    return result


def call_epoch_callbacks(
    callbacks: Iterable[Callable[[Any, Any], Any]], record: Any, network: Any
) -> bool:
    """Call every epoch callable with ``(record, network)``; True when one raised
    :class:`StopTraining`.

    Every callback sees the epoch, even after an earlier one asked to stop; any other
    exception propagates at once.

    Examples
    --------
    >>> def stop(record, network):
    ...     raise StopTraining
    >>> seen = []
    >>> call_epoch_callbacks([stop, lambda record, network: seen.append(record)], 1, None)
    True
    >>> seen
    [1]
    """
    stop = False
    for callback in callbacks:
        try:
            callback(record, network)
        except StopTraining:
            stop = True
    return stop

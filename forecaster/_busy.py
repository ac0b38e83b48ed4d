"""One estimator object used by several threads: a fit excludes every other use of it.

A fit replaces the fitted attributes one by one (it starts from none, and sets them as it
learns them), so a ``predict`` reading them meanwhile would see none, or a mix of two fits (a
new network with the old scaler and schema). :func:`fitting` and :func:`using` keep them
apart, per estimator object, across the threads of a process:

- a fit (:func:`fitting`) claims the estimator, waits until the uses of it in flight in
  other threads (a ``predict``, ``score``, backtest or save that started before it) have
  returned, then runs; a second fit of the same object in another thread is refused;
- a use (:func:`using`, and every ``check_fitted``) while another thread fits the estimator
  is refused with a :class:`~forecaster.exceptions.ConcurrentRunError` that says what to do
  (fit a copy and swap the reference when it returns); but not one made by a use in flight
  (``score`` calling ``predict``, a backtest calling ``predict_origins``): the fit waits for
  that use, which therefore runs to its end on the model as it was.

The thread that fits may use the estimator (a callback's ``on_fit_end`` saves or logs it).
Nothing is stored on the estimator (it stays picklable and deep-copyable).
"""

from __future__ import annotations

__all__ = ["fitting", "refuse_while_fitting", "uses_fitted_state", "using"]

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from forecaster.exceptions import ConcurrentRunError

_Method = TypeVar("_Method", bound=Callable[..., Any])

_CHANGED = threading.Condition()
"""Guards :data:`_STATE`; notified whenever a fit or a use of an estimator ends."""

_STATE: dict[int, tuple[int | None, list[int]]] = {}
"""``id(estimator)`` -> (the thread fitting it or None, the threads using it, once per use
in flight); only estimators with a fit or a use in flight (the object is alive meanwhile)."""


def _forget_in_child() -> None:
    """A process forked while other threads fitted or used estimators has only the forking
    thread: nothing of theirs is in flight there (and the lock may have been held). The
    forking thread's own fits and uses go on in the child (an ``os.fork()`` inside a
    ``predict``): they are kept, so that they end there as in the parent."""
    global _CHANGED
    _CHANGED = threading.Condition()
    me = threading.get_ident()  # the forking thread's, in the child too
    for key, (fitter, users) in list(_STATE.items()):
        _STATE.pop(key)
        mine = [t for t in users if t == me]
        if fitter == me or mine:
            _STATE[key] = (fitter if fitter == me else None, mine)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_in_child)

_REFIT_HINT = (
    "its fitted state is being replaced there. Wait for that fit to return, or fit a copy "
    "(new = sklearn.base.clone(model).fit(...); forecaster's estimators are scikit-learn "
    "estimators) while this one keeps serving, and replace the reference to the model when "
    "the copy's fit returns."
)


def _refusal(estimator: Any, action: str) -> ConcurrentRunError:
    name = type(estimator).__name__
    return ConcurrentRunError(
        f"Cannot {action} this {name}: another thread is fitting the same {name} object, and "
        + _REFIT_HINT
    )


def _refused(fitter: int | None, users: list[int], me: int) -> bool:
    """Whether thread ``me`` may not use an estimator that thread ``fitter`` fits (None: none)
    and ``users`` use: another thread fits it, and ``me`` has no use of it in flight (a fit
    waits for those, so their nested uses, ``score``'s ``predict``, are part of them)."""
    return fitter is not None and fitter != me and me not in users


def refuse_while_fitting(estimator: Any, action: str) -> None:
    """Raise :class:`~forecaster.exceptions.ConcurrentRunError` when a thread other than this
    one is fitting ``estimator`` (``action``: ``"predict with"``, ``"save"``, ...), unless
    this thread's use of it started before that fit (the fit waits for it)."""
    with _CHANGED:
        fitter, users = _STATE.get(id(estimator), (None, []))
        refused = _refused(fitter, users, threading.get_ident())
    if refused:
        raise _refusal(estimator, action)


@contextmanager
def using(estimator: Any, action: str) -> Iterator[None]:
    """A use of the fitted ``estimator`` (its ``predict``, ``score``, ...): refused while
    another thread fits it (unless this thread's use in flight makes it: see
    :func:`_refused`); a fit that starts meanwhile in another thread waits for its end."""
    key, me = id(estimator), threading.get_ident()
    with _CHANGED:
        fitter, users = _STATE.get(key, (None, []))
        if _refused(fitter, users, me):
            raise _refusal(estimator, action)
        _STATE[key] = (fitter, [*users, me])
    try:
        yield
    finally:
        with _CHANGED:
            fitter, users = _STATE[key]
            users = list(users)
            users.remove(me)
            _forget_or_keep(key, fitter, users)


@contextmanager
def fitting(estimator: Any) -> Iterator[None]:
    """A fit of ``estimator``: refused when another thread fits it already; else it claims
    the estimator at once (uses by other threads are refused from then on, so that a stream
    of them cannot hold the fit off) and waits for those already in flight to return."""
    key, me = id(estimator), threading.get_ident()
    with _CHANGED:
        outer, users = _STATE.get(key, (None, []))
        if outer is not None and outer != me:
            name = type(estimator).__name__
            raise ConcurrentRunError(
                f"Cannot fit this {name}: another thread is fitting the same {name} object "
                "already, and two fits would mix their fitted attributes. Wait for that fit "
                "to return, or fit a copy (sklearn.base.clone(model).fit(...))."
            )
        _STATE[key] = (me, users)
    try:  # an interrupt while it waits gives the claim back too
        with _CHANGED:
            _CHANGED.wait_for(lambda: all(t == me for t in _STATE[key][1]))
        yield
    finally:
        with _CHANGED:
            _forget_or_keep(key, outer, _STATE[key][1])


def _forget_or_keep(key: int, fitter: int | None, users: list[int]) -> None:
    """Store the estimator's new state (or forget it when nothing is in flight); wake the
    waiting fits. Called with :data:`_CHANGED` held."""
    if fitter is None and not users:
        _STATE.pop(key, None)
    else:
        _STATE[key] = (fitter, users)
    _CHANGED.notify_all()


def uses_fitted_state(action: str, of: str | None = None) -> Callable[[_Method], _Method]:
    """Decorate an estimator's method that reads its fitted state (``predict``, ``score``,
    ...): the method runs as one :func:`using` of the estimator (``action`` names it in the
    refusal, as ``check_fitted`` does). ``of``: the attribute of ``self`` that holds the
    estimator, for the method of an object that reads an estimator's fitted state (a
    stream's ``_model``); None: ``self`` is the estimator."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def used(self: Any, *args: Any, **kwargs: Any) -> Any:
            with using(self if of is None else getattr(self, of), action):
                return method(self, *args, **kwargs)

        return cast(_Method, used)

    return decorate

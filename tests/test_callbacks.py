"""The fit-callback interface: hooks, the registry of default factories, epoch callables."""

from __future__ import annotations

import threading

import pytest

from forecaster.training import (
    FIT_HOOKS,
    FitCallback,
    after_fit_end,
    call_fit_end,
    call_hook,
    default_callbacks_withheld,
    default_fit_callbacks,
    epoch_callables,
    register_fit_callback,
    registered_fit_callbacks,
    unregister_fit_callback,
    without_default_callbacks,
)


class Recorder:
    """A fit callback with every hook, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_fit_start(self, estimator, data):
        self.calls.append(("start", estimator, data))

    def on_epoch_end(self, record, network):
        self.calls.append(("epoch", record, network))

    def on_fit_end(self, estimator):
        self.calls.append(("end", estimator))

    def on_fit_interrupted(self, estimator):
        self.calls.append(("interrupted", estimator))

    def on_fit_error(self, estimator, exc):
        self.calls.append(("error", estimator, exc))


class EndOnly:
    def __init__(self) -> None:
        self.ended = []

    def on_fit_end(self, estimator):
        self.ended.append(estimator)


@pytest.fixture
def registry():
    """Registers through the fixture, and removes what a test left registered."""
    handles = []

    def register(factory):
        handle = register_fit_callback(factory)
        handles.append(handle)
        return handle

    yield register
    for handle in handles:
        unregister_fit_callback(handle)


def test_protocol_lists_the_five_hooks():
    assert FIT_HOOKS == (
        "on_fit_start", "on_epoch_end", "on_fit_end", "on_fit_interrupted", "on_fit_error"
    )  # fmt: skip
    assert isinstance(Recorder(), FitCallback)
    assert not isinstance(EndOnly(), FitCallback)  # partial callbacks are still fine to use


def test_call_hook_skips_callbacks_without_the_hook():
    recorder, end_only = Recorder(), EndOnly()
    callbacks = [recorder, end_only, object()]
    call_hook(callbacks, "on_fit_start", "est", "data")
    call_hook(callbacks, "on_epoch_end", "record", "net")
    call_hook(callbacks, "on_fit_end", "est")
    error = RuntimeError("boom")
    call_hook(callbacks, "on_fit_error", "est", error)
    assert recorder.calls == [
        ("start", "est", "data"),
        ("epoch", "record", "net"),
        ("end", "est"),
        ("error", "est", error),
    ]
    assert end_only.ended == ["est"]


def test_call_hook_refuses_unknown_hook_and_propagates_errors():
    with pytest.raises(ValueError, match="hook must be one of"):
        call_hook([Recorder()], "on_fit_stat", "est", "data")

    class Failing:
        def on_fit_end(self, estimator):
            raise KeyError("hook failed")

    later = EndOnly()
    with pytest.raises(KeyError, match="hook failed"):
        call_hook([Failing(), later], "on_fit_end", "est")
    assert later.ended == []


class KeepsForAKeptFit:
    """Keeps a call for a kept fit (as tracking's logger does), recording what happened."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def on_fit_end(self, estimator):
        kept = after_fit_end(lambda: self.seen.append("kept"), lambda: self.seen.append("stop"))
        self.seen.append(("end", kept))


def test_call_fit_end_makes_kept_calls_after_every_hook_only_for_a_kept_fit():
    """A logger's end-of-fit logging ran in its own on_fit_end, before a later callback's
    hook that raised and had the fit rolled back. What a hook keeps with after_fit_end runs
    once every on_fit_end returned; not at all when a later one raises; its stop call after
    a KeyboardInterrupt (the completed fit is kept)."""
    seen: list = []
    call_fit_end([KeepsForAKeptFit(seen), EndOnly()], "est")
    assert seen == [("end", True), "kept"]

    class Raising:
        def __init__(self, error):
            self.error = error

        def on_fit_end(self, estimator):
            seen.append("raised")
            raise self.error

    seen.clear()
    with pytest.raises(RuntimeError, match="boom"):
        call_fit_end([KeepsForAKeptFit(seen), Raising(RuntimeError("boom"))], "est")
    assert seen == [("end", True), "raised"]
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        call_fit_end([KeepsForAKeptFit(seen), Raising(KeyboardInterrupt())], "est")
    assert seen == [("end", True), "raised", "stop"]
    seen.clear()
    KeepsForAKeptFit(seen).on_fit_end("est")  # outside a fit's end: the caller acts now
    assert seen == [("end", False)]


def test_ctrl_c_in_an_on_fit_end_calls_on_fit_interrupted_of_the_callbacks_after_it():
    """Ctrl-C in one on_fit_end left the later callbacks uncalled (a FitLogger after it kept
    its run RUNNING): each of them gets on_fit_interrupted (the fit is kept), after the stop
    calls of the earlier ones; a failing hook is a warning and the others still run; the
    interrupt goes on."""
    from forecaster.exceptions import ForecasterWarning

    seen: list = []

    class Interrupts:
        def on_fit_end(self, estimator):
            seen.append("ctrl-c")
            raise KeyboardInterrupt

    class Broken:
        def on_fit_interrupted(self, estimator):
            raise RuntimeError("broken hook")

    recorder, end_only = Recorder(), EndOnly()
    callbacks = [KeepsForAKeptFit(seen), Interrupts(), Broken(), end_only, recorder]
    with pytest.warns(ForecasterWarning, match="broken hook"), pytest.raises(KeyboardInterrupt):
        call_fit_end(callbacks, "est")
    assert seen == [("end", True), "ctrl-c", "stop"]
    assert recorder.calls == [("interrupted", "est")] and end_only.ended == []


def test_without_default_callbacks_for_every_thread(registry):
    """The block of the library's own fits, of this thread or (every_thread=True, which
    tracking.paused() is) of every thread; other values of every_thread are refused."""
    registry(lambda estimator, data: "logger")
    seen = []

    def other_thread():
        seen.append(default_fit_callbacks(None, None))

    with without_default_callbacks():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert default_fit_callbacks(None, None) == []
    with without_default_callbacks(every_thread=True):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert default_callbacks_withheld(every_thread=True)
    assert seen == [["logger"], []]
    assert not default_callbacks_withheld() and default_fit_callbacks(None, None) == ["logger"]
    refused = pytest.raises(TypeError, match="every_thread must be True or False, got 'yes'")
    with refused, without_default_callbacks(every_thread="yes"):
        pass


def test_registry_calls_factories_in_order_and_skips_none(registry):
    seen = []

    def first(estimator, data):
        seen.append((estimator, data))
        return "first"

    registry(first)
    registry(lambda estimator, data: None)
    registry(lambda estimator, data: "third")
    callbacks = default_fit_callbacks("est", "data")
    assert callbacks[-2:] == ["first", "third"]
    assert seen == [("est", "data")]


def test_unregister_removes_once(registry):
    handle = registry(lambda estimator, data: "mine")
    assert "mine" in default_fit_callbacks(None, None)
    assert handle in registered_fit_callbacks()
    assert unregister_fit_callback(handle) is True
    assert unregister_fit_callback(handle) is False
    assert "mine" not in default_fit_callbacks(None, None)
    assert handle not in registered_fit_callbacks()


def test_same_factory_twice_gives_two_handles(registry):
    def factory(estimator, data):
        return "twice"

    a, b = registry(factory), registry(factory)
    assert a != b
    assert default_fit_callbacks(None, None).count("twice") == 2
    unregister_fit_callback(a)
    assert default_fit_callbacks(None, None).count("twice") == 1


def test_register_refuses_non_callable():
    with pytest.raises(TypeError, match="factory must be callable"):
        register_fit_callback("not a function")


def test_factory_errors_propagate(registry):
    def broken(estimator, data):
        raise LookupError("no tracking server")

    registry(broken)
    with pytest.raises(LookupError, match="no tracking server"):
        default_fit_callbacks(None, None)


def test_factory_may_unregister_itself_while_called(registry):
    handles = []

    def once(estimator, data):
        unregister_fit_callback(handles[0])
        return "once"

    handles.append(registry(once))
    assert "once" in default_fit_callbacks(None, None)
    assert "once" not in default_fit_callbacks(None, None)


def test_registry_is_thread_safe():
    def register_many():
        for _ in range(200):
            unregister_fit_callback(register_fit_callback(lambda estimator, data: None))

    threads = [threading.Thread(target=register_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(handle.id > 0 for handle in registered_fit_callbacks())


def test_epoch_callables_mixes_plain_callables_and_fit_callbacks():
    recorder = Recorder()

    def plain(record, network):
        return None

    result = epoch_callables([plain, recorder, EndOnly()])
    assert result == [plain, recorder.on_epoch_end]
    result[1]("record", "net")
    assert recorder.calls == [("epoch", "record", "net")]

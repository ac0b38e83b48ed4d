"""One estimator object used by several threads (``forecaster._busy``): a refit in one thread
and ``predict`` in another never mix two fits' attributes. Every wait has a timeout; no sleeps."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from conftest import TINY_DAILY_MODEL, sine_panel
from polars.testing import assert_frame_equal

import forecaster
from forecaster import ConcurrentRunError, RNNForecaster

WAIT = 120.0  # seconds: a test that gets there never waits this long


def _waited(event: threading.Event) -> None:
    assert event.wait(WAIT), "the other thread did not get there"


class _Thread(threading.Thread):
    """A thread that keeps what its target returned or raised."""

    def __init__(self, target: Any) -> None:
        super().__init__(target=self._run_target, daemon=True)
        self.work, self.result, self.error = target, None, None

    def _run_target(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:
            self.error = exc


def test_predict_save_and_fit_while_another_thread_refits_are_refused_clearly(tmp_path):
    """A ``predict`` while another thread refitted the same object raised "This RNNForecaster
    is not fitted yet. Call fit(frame) first." (the refit had dropped the fitted attributes),
    though it was fitted, or an AttributeError, or used a mix of the two fits' attributes.
    It is refused now, naming the other thread's fit and what to do; so are a save and a
    second fit, and the model serves again once the refit returned."""
    frame = sine_panel()
    model = RNNForecaster(**TINY_DAILY_MODEL).fit(frame)
    in_epoch, release = threading.Event(), threading.Event()

    def hold(record: Any, network: Any) -> None:
        in_epoch.set()
        _waited(release)

    refit = _Thread(lambda: model.fit(frame, callbacks=[hold]))
    refit.start()
    try:
        _waited(in_epoch)
        with pytest.raises(ConcurrentRunError, match="another thread is fitting the same"):
            model.predict(frame)
        with pytest.raises(ConcurrentRunError, match="Cannot save this RNNForecaster"):
            forecaster.save(model, tmp_path / "model")
        with pytest.raises(ConcurrentRunError, match="Cannot fit this RNNForecaster"):
            model.fit(frame)
    finally:
        release.set()
        refit.join(WAIT)
    assert refit.error is None and refit.result is model
    assert model.predict(frame).height == 2 * model.horizon


def test_a_refit_waits_for_the_predict_in_flight_which_sees_the_old_model(monkeypatch):
    """A refit that started while a ``predict`` of the same object ran in another thread
    dropped the fitted attributes under it (AttributeError: no attribute 'schema_'). The fit
    now waits for the predict in flight, which forecasts with the model as it was."""
    frame = sine_panel()
    model = RNNForecaster(**TINY_DAILY_MODEL).fit(frame)
    expected = model.predict(frame)
    in_predict, go = threading.Event(), threading.Event()
    predict_cutoff = RNNForecaster._predict_cutoff

    def paused(self: Any, *args: Any, **kwargs: Any) -> Any:
        in_predict.set()
        _waited(go)  # the refit waits for this predict (or, before, had started)
        return predict_cutoff(self, *args, **kwargs)

    waiting_for = threading.Condition.wait_for

    def observed(self: Any, predicate: Any, timeout: Any = None) -> Any:
        go.set()  # the refit waits: let the predict go on
        return waiting_for(self, predicate, timeout)

    class Started:
        def on_fit_start(self, estimator: Any, data: Any) -> None:
            go.set()  # the refit runs (it did not wait): let the predict go on

    monkeypatch.setattr(RNNForecaster, "_predict_cutoff", paused)
    monkeypatch.setattr(threading.Condition, "wait_for", observed)
    predict = _Thread(lambda: model.predict(frame))
    predict.start()
    _waited(in_predict)
    refit = _Thread(lambda: model.fit(frame, callbacks=[Started()]))
    refit.start()
    predict.join(WAIT)
    refit.join(WAIT)
    assert predict.error is None, repr(predict.error)
    assert_frame_equal(predict.result, expected)
    assert refit.error is None and refit.result is model


def _paused_until_a_refit_waits(monkeypatch: Any, module: Any, name: str) -> threading.Event:
    """Make ``module.name`` (called inside a use) pause until a fit in another thread waits
    for that use (``Condition.wait_for``); the returned event is set when it pauses."""
    inside, refit_waits = threading.Event(), threading.Event()
    original, waiting_for = getattr(module, name), threading.Condition.wait_for

    def paused(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        _waited(refit_waits)
        return original(*args, **kwargs)

    def observed(self: Any, predicate: Any, timeout: Any = None) -> Any:
        refit_waits.set()
        return waiting_for(self, predicate, timeout)

    monkeypatch.setattr(module, name, paused)
    monkeypatch.setattr(threading.Condition, "wait_for", observed)
    return inside


def test_a_use_in_flight_goes_on_when_a_refit_starts_meanwhile(monkeypatch):
    """A ``score`` in flight (a use) calls ``predict`` (a use too). A refit of the same object
    that started in another thread between the two waited for the score, but the score's
    ``predict`` was refused (ConcurrentRunError "Cannot read the training ends of ..."): the
    refit now lets the uses in flight run to their end, nested ones included."""
    import forecaster.estimators.scoring as scoring

    frame = sine_panel()
    model = RNNForecaster(**TINY_DAILY_MODEL).fit(frame)
    expected = model.score(frame)
    inside = _paused_until_a_refit_waits(monkeypatch, scoring, "trained_frame")
    score = _Thread(lambda: model.score(frame))
    score.start()
    _waited(inside)
    refit = _Thread(lambda: model.fit(frame))
    refit.start()
    score.join(WAIT)
    refit.join(WAIT)
    assert score.error is None, repr(score.error)
    assert score.result == expected
    assert refit.error is None and refit.result is model


def test_a_stream_update_in_flight_is_waited_for_by_a_refit(monkeypatch):
    """``stream``, ``update`` and ``forecast`` were no uses: a refit that started in another
    thread during an update dropped the fitted attributes under it (AttributeError: no
    attribute 'schema_'). The refit now waits for the update, which ends on the old model
    (and the stream then refuses, the model having been fitted again)."""
    import forecaster.estimators.streaming as streaming

    frame = sine_panel()
    history, rows = frame.head(150), frame.slice(150, 5)  # series s0: rows after its history
    model = RNNForecaster(**TINY_DAILY_MODEL, segment_length=4).fit(history)
    state = model.stream(history)
    inside = _paused_until_a_refit_waits(monkeypatch, streaming, "check_schema")
    update = _Thread(lambda: state.update(rows))
    update.start()
    _waited(inside)
    refit = _Thread(lambda: model.fit(history))
    refit.start()
    update.join(WAIT)
    refit.join(WAIT)
    assert update.error is None, repr(update.error)
    assert update.result is state
    assert refit.error is None and refit.result is model


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_process_forked_inside_a_use_ends_it_there():
    """The at-fork reset forgot every use, the forking thread's too: a process forked inside a
    ``predict`` (an ``os.fork()`` there) failed with KeyError when its copy of the use ended.
    The child keeps the forking thread's uses and fits, and forgets the other threads'."""
    from forecaster import _busy

    class Estimator:
        pass

    estimator, fitting, other_fits = Estimator(), threading.Event(), threading.Event()

    def fit_other() -> None:
        with _busy.fitting(other):
            fitting.set()
            _waited(other_fits)

    other = Estimator()
    fit = _Thread(fit_other)
    fit.start()
    _waited(fitting)
    pid = -1
    try:
        with _busy.using(estimator, "predict with"):
            pid = os.fork()
        if pid == 0:  # the child: its use ended; the other thread's fit is not there
            with _busy.using(other, "predict with"), _busy.fitting(estimator):
                os._exit(0 if id(estimator) in _busy._STATE else 5)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        if pid == 0:
            os._exit(3)  # never back into pytest
        raise
    finally:
        other_fits.set()
        fit.join(WAIT)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("copy_it", ["pickle", "deepcopy"], ids=str)
def test_a_pickle_or_deepcopy_while_another_thread_refits_is_refused(copy_it):
    """``pickle.dumps`` / ``copy.deepcopy`` of a model that another thread was refitting
    copied a half-fitted model (only the attributes the refit had set so far: no network, or
    a new network beside nothing else) without a word. Refused now, as a predict is; in the
    fitting thread itself (a callback) and after the refit it copies as before."""
    import copy
    import pickle

    frame = sine_panel()
    model = RNNForecaster(**TINY_DAILY_MODEL).fit(frame)
    copies = {"pickle": lambda m: pickle.loads(pickle.dumps(m)), "deepcopy": copy.deepcopy}
    copied = copies[copy_it]
    in_epoch, release, own = threading.Event(), threading.Event(), []

    def hold(record: Any, network: Any) -> None:
        if not own:
            own.append(copied(model))  # the fitting thread may copy it
        in_epoch.set()
        _waited(release)

    refit = _Thread(lambda: model.fit(frame, callbacks=[hold]))
    refit.start()
    try:
        _waited(in_epoch)
        with pytest.raises(ConcurrentRunError, match="Cannot pickle or copy this RNNForecaster"):
            copied(model)
    finally:
        release.set()
        refit.join(WAIT)
    assert refit.error is None and len(own) == 1
    assert_frame_equal(copied(model).predict(frame), model.predict(frame))

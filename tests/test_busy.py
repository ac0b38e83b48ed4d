"""One estimator object used by several threads (``forecaster._busy``): a refit in one thread
and ``predict`` in another never mix two fits' attributes. Every wait has a timeout; no sleeps."""

from __future__ import annotations

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

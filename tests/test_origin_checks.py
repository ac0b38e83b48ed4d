"""What ``predict(frame, cutoff=...)`` says of origins whose data after them the model knew
(forecaster/estimators/origin_checks.py): an origin before the series' ``train_end`` (the
network was trained on the values after it), and intervals from a static calibration
(``rolling=None``) whose windows end after the earliest cutoff. One InSampleWarning per kind
and call; the package's own callers that check their origins themselves (a backtest of the
fitted model) do not repeat it."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest

from forecaster import RNNForecaster
from forecaster.evaluation.backtest import backtest
from forecaster.exceptions import DataValidationError, InSampleWarning

TINY = {
    "target": "y",
    "id_col": "id",
    "time_col": "t",
    "lookback": 14,
    "horizon": 7,
    "hidden_size": 8,
    "max_epochs": 1,
    "windows_per_epoch": 64,
    "batch_size": 32,
    "baseline": "none",
    "random_state": 0,
    "progress": False,
}
START = dt.date(2020, 1, 1)


def _frame(n: int = 120, ids: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    """Daily positive series with a weekly cycle and noise."""
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return pl.concat(
        pl.DataFrame(
            {
                "id": [name] * n,
                "t": pl.date_range(START, START + dt.timedelta(days=n - 1), "1d", eager=True),
                "y": 10 + k + np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, n),
            }
        )
        for k, name in enumerate(ids)
    )


def _day(k: int) -> dt.date:
    return START + dt.timedelta(days=k)


def _fit(frame: pl.DataFrame, last: int | None = None, **params: object) -> RNNForecaster:
    rows = frame if last is None else frame.filter(pl.col("t") <= _day(last))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RNNForecaster(**{**TINY, **params}).fit(rows)


def _caught(call):  # type: ignore[no-untyped-def]
    """The InSampleWarnings of ``call()`` (every warning shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, InSampleWarning)]


def test_predict_from_a_cutoff_inside_the_training_data_warns_once_that_it_is_in_sample():
    """A model fitted on every row, asked for forecasts from day 60 (one cutoff, or a list of
    them), forecast values it was trained on: one InSampleWarning per call naming the
    origins and the fix. Cutoffs at or after the end of its training data do not warn."""
    frame = _frame()
    model = _fit(frame)
    one = _caught(lambda: model.predict(frame, cutoff=_day(60)))
    assert len(one) == 1
    text = str(one[0].message)
    assert "2 of the 2 forecast origins of 2 of the 2 series" in text
    assert "2020-03-01" in text and "backtest(frame, refit=True)" in text
    many = _caught(lambda: model.predict(frame, cutoff=[_day(50), _day(60), _day(119)]))
    assert len(many) == 1
    assert "4 of the 6 forecast origins" in str(many[0].message)
    pairs = pl.DataFrame({"id": ["a", "b"], "t": [_day(119), _day(70)]})
    (paired,) = _caught(lambda: model.predict(frame, cutoff=pairs))
    assert "1 of the 2 forecast origins of 1 of the 2 series (e.g. ['b'])" in str(paired.message)
    assert not _caught(lambda: model.predict(frame, cutoff=_day(119)))  # its train_end
    assert not _caught(lambda: model.predict(frame))
    early = _fit(frame, last=60)  # fitted on the data up to the cutoff: out of sample
    assert not _caught(lambda: early.predict(frame, cutoff=_day(60)))


def test_predict_with_intervals_from_a_static_calibration_on_later_windows_warns_once():
    """calibrate(rolling=None) on windows up to the frame's end sets the interval of a
    forecast from day 60 from errors observed after it: one InSampleWarning per call (two
    cutoffs too) counting the windows after the earliest cutoff; none without intervals,
    from a cutoff after every window, or with a rolling calibration."""
    frame = _frame()
    model = _fit(frame, last=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        static = model.calibrate(frame, folds=20, step=2)
    caught = _caught(lambda: static.predict(frame, cutoff=[_day(60), _day(80)], level=80))
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "calibrated on later data" in text
    assert "end after the earliest cutoff, 2020-03-01" in text
    assert "rolling=W" in text
    assert not _caught(lambda: static.predict(frame, cutoff=_day(60)))  # no intervals
    assert not _caught(lambda: static.predict(frame, cutoff=_day(119), level=80))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rolling = _fit(frame, last=50).calibrate(frame, folds=20, step=2, rolling=10)
    assert not _caught(lambda: rolling.predict(frame, cutoff=_day(100), level=80))


@pytest.mark.parametrize("transform", ["none", "boxcox"])
def test_a_backtest_of_the_fitted_model_warns_of_its_folds_once_not_again_through_predict(
    transform: str,
):
    """backtest(refit=False) checks its folds itself (one in-sample warning, one of the
    calibration); the predict it calls (predict_origins, or predict for a Box-Cox model)
    adds none."""
    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _fit(frame, last=100, target_transform=transform).calibrate(
            frame,
            folds=4,
            step=6,
            refit=True,  # clones: windows up to the frame's end
        )
    caught = _caught(lambda: backtest(model, frame, folds=3, step=10, level=80))
    texts = sorted(str(w.message)[:30] for w in caught)
    assert len(caught) == 2, texts
    assert texts[0].startswith("In-sample backtest")
    assert texts[1].startswith("Interval scores calibrated on")


def test_a_refused_predict_from_in_sample_cutoffs_warns_of_nothing():
    """predict(cutoff=..., level=...) checks its origins after the forecast is made: a call
    refused on the way (a calibration with too few residuals for the level asked) raises its
    error alone, without the InSampleWarnings of forecasts it never returned."""
    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _fit(frame).calibrate(frame, folds=2, step=7, refit=True)  # 4 residuals a step

    def refused() -> None:
        with pytest.raises(DataValidationError, match="too few for a 95% interval"):
            model.predict(frame, cutoff=[_day(60), _day(80)], level=95)

    assert not _caught(refused)
    caught = _caught(lambda: model.predict(frame, cutoff=[_day(60), _day(80)], level=60))
    assert len(caught) == 2  # the same origins, forecast: both checks warn


def test_predict_from_a_date_cutoff_before_the_last_training_time_warns_as_a_backtest_does():
    """Date times share one calendar: a model fitted on 'a' up to day 119 has learnt that
    period for every series, so a series that ended earlier in its fit ('b', day 80) or that
    it never saw ('z') is forecast in sample from day 100 (as backtest(refit=False) and
    calibrate(refit=False) count such origins, :func:`in_sample_ends`), the warning saying
    through which series. A series that ends before the cutoff asked is compared by that
    cutoff: at the last training time (or after it) nothing warns, as predict(frame) does not."""
    frame = _frame(ids=("a", "b"))
    model = _fit(frame.filter((pl.col("id") == "a") | (pl.col("t") <= _day(80))))
    new = _frame(ids=("z",))
    both = pl.concat([frame, new])
    (caught,) = _caught(lambda: model.predict(both, cutoff=_day(100)))
    text = str(caught.message)
    assert "3 of the 3 forecast origins of 3 of the 3 series" in text
    assert "2 of them are in sample only through the other series" in text
    assert "before 2020-04-29, the model's last training time" in text
    pairs = pl.DataFrame({"id": ["a", "z"], "t": [_day(119), _day(90)]})
    (paired,) = _caught(lambda: model.predict(both, cutoff=pairs))
    assert "1 of the 2 forecast origins of 1 of the 2 series (e.g. ['z'])" in str(paired.message)
    stale = pl.concat([frame.filter(pl.col("id") == "a"), new.filter(pl.col("t") <= _day(90))])
    assert not _caught(lambda: model.predict(stale, cutoff=_day(119)))  # 'z' from its end
    assert not _caught(lambda: model.predict(stale, cutoff=[_day(119)]))
    at_end = pl.DataFrame({"id": ["a", "z"], "t": [_day(119), _day(119)]})
    assert not _caught(lambda: model.predict(stale, cutoff=at_end))

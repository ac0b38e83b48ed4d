"""Where a backtest's origins are (forecaster/evaluation/origins.py): ``origins="calendar"``
(the default for dates and datetimes) places every fold at one cutoff for all series, so no
fold's model trains on a row after another series' targets; ``"series"`` counts from each
series' own end (the default for integer steps) and warns where that leaks."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster import RNNForecaster
from forecaster.evaluation.backtest import backtest
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    NoResidualsWarning,
)

SMALL = {
    "id_col": "id",
    "time_col": "t",
    "target": "y",
    "lookback": 14,
    "horizon": 7,
    "hidden_size": 8,
    "segment_length": 7,
    "max_epochs": 1,
    "windows_per_epoch": 64,
    "batch_size": 32,
    "baseline": "none",
    "random_state": 0,
    "progress": False,
}


def _daily(ends: dict[str, dt.date], start: dt.date = dt.date(2020, 1, 1)) -> pl.DataFrame:
    """Daily series sharing one random walk (a copy of the first, cut at its end), so that a
    model trained on one series' late rows has seen another's targets."""
    t = pl.date_range(start, max(ends.values()), "1d", eager=True)
    y = np.cumsum(np.random.default_rng(0).normal(size=len(t))) + 100
    walk = pl.DataFrame({"t": t, "y": y})
    return pl.concat(
        walk.filter(pl.col("t") <= end).select(pl.lit(name).alias("id"), "t", "y")
        for name, end in ends.items()
    )


def _leaked(result) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """The (fold, series) forecasts scored at a time at or before the last training time of
    the fold's model (over all series)."""
    trained = result.folds.group_by("fold").agg(pl.col("train_end").max().alias("model_end"))
    scored = result.forecasts.filter(pl.col("y_actual").is_not_null())
    first = scored.group_by("fold", "id").agg(pl.col("t").min().alias("first"))
    joined = first.join(trained, on="fold").filter(pl.col("first") <= pl.col("model_end"))
    return sorted(joined.select("fold", "id").iter_rows())


def test_a_refit_backtest_of_series_ending_early_trains_no_fold_past_its_targets():
    """The hunt's repro: "b" (a copy of "a" ending 2020-06-30) was forecast for its June rows by
    models trained on "a" up to December (the very same values)."""
    frame = _daily({"a": dt.date(2020, 12, 31), "b": dt.date(2020, 6, 30)})
    model = RNNForecaster(freq="1d", **SMALL)
    with pytest.warns(ForecasterWarning, match=r"Left out 1 series .*at or before them.*\['b'\]"):
        result = model.backtest(frame, folds=2, refit=True)
    assert _leaked(result) == []
    assert result.folds["id"].to_list() == ["a", "a"]  # b has no target after the cutoffs
    assert result.folds["cutoff"].to_list() == [dt.date(2020, 12, 17), dt.date(2020, 12, 24)]
    assert result.folds["train_end"].to_list() == [dt.date(2020, 12, 17), dt.date(2020, 12, 24)]
    for model in result.estimators:  # b's rows, all before the cutoffs, are still trained on
        assert sorted(model.keys_.to_series().to_list()) == ["a", "b"]


def test_a_series_ending_within_a_fold_is_scored_on_the_rows_it_has_and_a_stale_one_left_out():
    """Calendar folds: "late" ends 3 days into the last fold (scored on those 3 days), "stale"
    ends 10 days before the last time: in the last fold its last row is before the cutoff, and
    its targets would be its own next rows (as ``predict(cutoff=T)`` dates a stale series'
    forecasts), of which it has none, so it is left out of that fold; in the fold before, it
    is forecast from the cutoff and scored on the 4 days it has."""
    last = dt.date(2020, 4, 30)
    frame = _daily(
        {"a": last, "late": last - dt.timedelta(days=4), "stale": last - dt.timedelta(days=10)}
    )
    model = RNNForecaster(freq="1d", **SMALL)
    with pytest.warns(ForecasterWarning, match=r"Left out 1 \(fold, series\).*\['stale'\]"):
        result = model.backtest(frame, folds=3, refit=2, gap=1)
    assert _leaked(result) == []
    cutoffs = [last - dt.timedelta(days=d) for d in (21, 14, 7)]
    folds = result.folds.sort("fold", "id")
    assert folds.select("fold", "id").rows() == [
        (0, "a"), (0, "late"), (0, "stale"), (1, "a"), (1, "late"), (1, "stale"), (2, "a"),
        (2, "late"),
    ]  # fmt: skip
    assert set(folds["cutoff"].to_list()) == set(cutoffs)
    assert (folds["cutoff"] == pl.Series([cutoffs[k] for k in folds["fold"]])).all()
    # models 0 (folds 0, 1) and 1 (fold 2) train up to their first fold's cutoff - gap
    ends = {cutoffs[0] - dt.timedelta(days=1), cutoffs[2] - dt.timedelta(days=1)}
    assert set(folds["train_end"].to_list()) == ends
    n = result.metrics.sort("fold", "id").select("fold", "id", "n").rows()
    assert n == [
        (0, "a", 7), (0, "late", 7), (0, "stale", 7), (1, "a", 7), (1, "late", 7),
        (1, "stale", 4), (2, "a", 7), (2, "late", 3),
    ]  # fmt: skip
    late = result.forecasts.filter((pl.col("fold") == 2) & (pl.col("id") == "late"))
    assert late["y_actual"].null_count() == 4  # the steps after its end: not scored
    # what predict(cutoff=T) forecasts for the fold's series, dated from their origins
    again = result.estimators[0].predict(frame, cutoff=cutoffs[1])
    stale = result.forecasts.filter((pl.col("fold") == 1) & (pl.col("id") == "stale"))
    assert_frame_equal(
        stale.select("t", "y"), again.filter(pl.col("id") == "stale").select("t", "y")
    )


@pytest.mark.parametrize(("refit", "gap"), [(False, 0), (True, 0), (2, 0), (True, 2)])
def test_calendar_folds_of_series_ending_together_are_the_series_folds(refit, gap):
    """Series of different lengths ending at the same time: the calendar folds place the same
    origins and spans, and give bit-identical forecasts and scores."""
    frame = _daily({"a": dt.date(2020, 5, 31), "b": dt.date(2020, 5, 31)}).filter(
        (pl.col("id") == "a") | (pl.col("t") >= dt.date(2020, 2, 15))
    )
    results = {}
    for origins in ("calendar", "series"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[origins] = backtest(
                RNNForecaster(freq="1d", **SMALL), frame, folds=3, refit=refit, gap=gap,
                origins=origins,
            )  # fmt: skip
        assert not [
            w for w in caught if "Left out" in str(w.message) or "origins=" in str(w.message)
        ]
    calendar, series = results["calendar"], results["series"]
    for name in ("forecasts", "metrics", "by_step", "aggregate", "baselines", "folds"):
        assert_frame_equal(getattr(calendar, name), getattr(series, name), check_exact=True)


def _integer_steps() -> pl.DataFrame:
    """Two sequences of integer steps, the second shorter (a clip)."""
    frame = _daily({"a": dt.date(2020, 4, 30), "b": dt.date(2020, 3, 31)})
    return frame.with_columns(pl.col("t").cum_count().over("id").cast(pl.Int64))


def test_integer_steps_keep_the_folds_of_each_series_own_end_without_a_cross_series_warning():
    """``origins="auto"`` on integer steps (independent sequences, whose positions are not
    times): each series' folds are counted from its own end, as before, and no warning says
    that models trained on the longer sequence's later positions (every ragged refit backtest
    of clips gave one); ``origins="series"`` asked for still warns."""
    frame = _integer_steps()
    model = RNNForecaster(freq="1i", **SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = backtest(model, frame, folds=2, refit=True)
    assert not [w for w in caught if "origins=" in str(w.message)]
    folds = result.folds.sort("fold", "id")
    assert folds["cutoff"].to_list() == [107, 77, 114, 84]  # 121 and 91 rows: n - 1 - 7 * k
    assert len(_leaked(result)) == 2  # by positions: the pairs of b (a's are its own spans)
    with pytest.warns(CrossSeriesWarning, match=r"origins='series'.* 2 \(series, fold\) pairs"):
        backtest(model, frame, folds=2, refit=True, origins="series")


def test_series_origins_on_dates_warn_that_a_model_trained_past_another_series_targets():
    frame = _daily({"a": dt.date(2020, 6, 30), "b": dt.date(2020, 4, 30)})
    model = RNNForecaster(freq="1d", **SMALL)
    with pytest.warns(ForecasterWarning, match=r"in 2 \(series, fold\) pairs.*origins='calendar'"):
        result = backtest(model, frame, folds=2, refit=True, origins="series")
    assert [(fold, "b") for fold in (0, 1)] == _leaked(result)


def test_an_unknown_origins_is_refused_before_any_fit():
    frame = _daily({"a": dt.date(2020, 6, 30)})
    with pytest.raises(DataValidationError, match=r"origins must be one of .*did you mean 'cal"):
        backtest(RNNForecaster(freq="1d", **SMALL), frame, folds=2, origins="calender")


def test_per_series_calibration_of_a_ragged_date_panel_has_no_residuals_past_a_series_end():
    """calibrate(refit=True) backtests on calendar folds: a series that ended before the late
    folds has residuals from the folds it has targets in only (never from a model trained on
    the other series' rows past them), and per-series intervals still come out."""
    frame = _daily({"a": dt.date(2020, 6, 30), "b": dt.date(2020, 6, 2)})
    model = RNNForecaster(freq="1d", **SMALL).fit(frame)
    with pytest.warns(ForecasterWarning, match="Left out"):
        model.calibrate(frame, folds=8, step=7, refit=True, per_series=True)
    series = model.conformal_["series"]
    ends = model.conformal_["ends"]
    assert (series == 0).sum() == 8  # a: every fold
    assert 0 < (series == 1).sum() < 8  # b: only the folds before its end
    assert ends[series == 1].max() == pl.Series([dt.date(2020, 6, 2)]).to_physical()[0]
    forecast = model.predict(frame, level=80)
    assert forecast.filter(pl.col("id") == "b")["y_lo_80"].is_finite().all()


def test_calibrate_names_the_series_calendar_folds_give_no_residuals_and_takes_origins():
    """A series that ends before the first calendar cutoff gets no residuals: calibrate said
    only the backtest's "Left out 1 series", and predict(level=...) then refused the whole
    frame with causes that missed this one. calibrate now says predict will refuse it and
    what to do, predict names it with that cause and remedies, and calibrate takes
    ``origins`` (validated, as backtest's): "series" gives it residuals again."""
    frame = _daily({"a": dt.date(2020, 6, 30), "b": dt.date(2020, 6, 2)})
    model = RNNForecaster(freq="1d", **SMALL).fit(frame)
    with pytest.raises(DataValidationError, match=r"origins must be one of .*'calendar'"):
        model.calibrate(frame, folds=2, refit=True, origins="calender")
    assert "conformal_" not in model.__dict__  # refused before any backtest
    warned = (
        r"1 series of the calibration frame has no residuals: \['b'\].*"
        r"predict\(level=\.\.\.\) refuses.*origins='series'"
    )
    with pytest.warns(NoResidualsWarning, match=warned):  # b ends at the first cutoff, 06-02
        model.calibrate(frame, folds=4, refit=2)
    refused = (
        r"1 series \(7 forecast rows\) \('b'\) has no calibration residuals.*ending at or "
        r"before the calibration's calendar folds \(calibrate left them out with a warning\)"
        r".*Drop those series from the predict frame.*origins='series'"
    )
    with pytest.raises(DataValidationError, match=refused):
        model.predict(frame, level=80)
    assert model.predict(frame.filter(pl.col("id") == "a"), level=80).height == 7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.calibrate(frame, folds=4, refit=2, origins="series")
    assert not [w for w in caught if "no residuals" in str(w.message)]
    assert sorted(set(model.conformal_["series"].tolist())) == [0, 1]
    assert model.predict(frame, level=80)["y_lo_80"].is_finite().all()


def test_calendar_cuts_count_each_series_rows_up_to_every_cutoff():
    """The calendar origins come from one pass over the rows (each row counted from the
    first cutoff at or after it): the same positions as counting every series' rows at or
    before each cutoff, for series that start and end at different times."""
    from forecaster.data import Panel
    from forecaster.evaluation.origins import calendar_cuts

    start, day = dt.date(2024, 1, 1), dt.timedelta(days=1)
    spans = {"a": (0, 80), "b": (10, 75), "c": (30, 80), "d": (0, 41), "e": (60, 80)}
    frame = pl.concat(
        pl.DataFrame(
            {
                "id": name,
                "t": [start + i * day for i in range(lo, hi)],
                "y": np.arange(lo, hi) * 1.0,
            }
        )
        for name, (lo, hi) in spans.items()
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", freq="1d")
    kept = np.arange(panel.n_series)
    local, present, cutoffs, _ = calendar_cuts(panel, kept, lookback=5, horizon=4, folds=9, step=3)
    physical = panel.time.to_physical().to_numpy()
    for k, cutoff in enumerate(cutoffs.to_physical().to_list()):
        counts = np.add.reduceat((physical <= cutoff).astype(np.int64), panel.offsets[:-1])
        lengths = np.diff(panel.offsets)
        np.testing.assert_array_equal(local[k], np.clip(counts - 1, 0, lengths - 1))
        np.testing.assert_array_equal(present[k], (counts - 1 >= 4) & (counts - 1 < lengths - 1))

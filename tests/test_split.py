"""Tests of :mod:`forecaster.estimators.split`: where ``TemporalSplit(origins=...)`` places a
panel's folds (one calendar cutoff per fold, or each series' own), its warnings and its
scikit-learn parameter contract. The older tests of the splitter (steps per series, series
too short, frames refused) are in ``tests/test_estimators.py``."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import TINY_DAILY_MODEL, sine_panel
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from forecaster import ForecasterWarning, RNNForecaster, TemporalSplit
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    InSampleWarning,
    TooFewRowsError,
)


def ragged_panel(drop: dict[str, int], n_series: int = 3, n_steps: int = 160) -> pl.DataFrame:
    """:func:`sine_panel` whose series ``s`` lose their last ``drop[s]`` days."""
    frame = sine_panel(n_series, n_steps)
    last = frame["date"].max()
    return frame.filter(
        pl.col("date")
        <= pl.lit(last) - pl.duration(days=pl.col("id").replace_strict(drop, default=0))
    )


def own_end_folds(frame: pl.DataFrame, time_col: str, n_splits: int, test_size: int) -> list:
    """The folds of the split before ``origins`` (each series' own cutoffs): a row trains in
    fold k when k * test_size steps of its series follow it, tests when (k - 1) * test_size."""
    step = pl.col(time_col).rank("dense").over("id")
    from_end = frame.select((step.max().over("id") - step).cast(pl.Int64))
    from_end = from_end.to_series().to_numpy()
    return [
        (np.flatnonzero(from_end >= k * test_size), np.flatnonzero(from_end >= (k - 1) * test_size))
        for k in range(n_splits, 0, -1)
    ]


def assert_same_folds(folds: list, expected: list) -> None:
    assert len(folds) == len(expected)
    for (train, test), (want_train, want_test) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)


def assert_leak_free(frame: pl.DataFrame, folds: list, time_col: str = "date") -> None:
    """No fold trains on a row at or after the first new (untrained) test step of a series."""
    for train, test in folds:
        new = frame[np.setdiff1d(test, train)]
        assert frame[train][time_col].max() < new[time_col].min()


def test_calendar_folds_train_no_series_past_another_series_test_steps():
    # b is a copy of a ending 6 months earlier: each fold trained on a up to December and
    # tested b in June (the cutoffs were each series' own)
    frame = ragged_panel({"s1": 183}, n_series=2, n_steps=400)
    cv = TemporalSplit("date", n_splits=3, test_size=14, id_col="id")
    with pytest.warns(ForecasterWarning, match=r"left 3 \(fold, series\) pairs of 1 series .*s1"):
        folds = list(cv.split(frame))
    assert_leak_free(frame, folds)
    for train, test in folds:  # s1 is trained on, tested in no fold
        assert (frame["id"].gather(test) == "s0").all()
        assert (frame["id"].gather(train) == "s1").sum() == (frame["id"] == "s1").sum()
    explicit = TemporalSplit("date", 3, 14, id_col="id", origins="calendar")
    with pytest.warns(ForecasterWarning, match="origins='calendar'"):
        assert_same_folds(list(explicit.split(frame)), folds)


def test_calendar_folds_share_one_cutoff_and_leave_out_series_ended_by_it():
    # s1 ends 10 days before s0 and s2 (on day 149; the series that end last, on day 159,
    # set the cutoffs: days 138, 145, 152): s1 gets 7 new steps in fold 0, its last 4 rows
    # in fold 1, and no test rows in fold 2; every fold trains on every series up to the
    # cutoff
    frame = ragged_panel({"s1": 10})
    cv = TemporalSplit("date", n_splits=3, test_size=7, id_col="id")
    with pytest.warns(ForecasterWarning, match=r"left 1 \(fold, series\) pairs of 1 series"):
        folds = list(cv.split(frame))
    assert_leak_free(frame, folds)
    start = dt.date(2020, 1, 1)
    cutoffs = [start + dt.timedelta(days=d) for d in (138, 145, 152)]
    new_steps = []
    for (train, test), cutoff in zip(folds, cutoffs, strict=True):
        trained = frame[train].group_by("id").agg(pl.col("date").max())
        s1_end = min(cutoff, start + dt.timedelta(days=149))
        assert dict(trained.iter_rows()) == {"s0": cutoff, "s1": s1_end, "s2": cutoff}
        new = frame[np.setdiff1d(test, train)].group_by("id").len()
        new_steps.append(dict(new.iter_rows()))
    assert new_steps == [
        {"s0": 7, "s1": 7, "s2": 7},
        {"s0": 7, "s1": 4, "s2": 7},
        {"s0": 7, "s2": 7},
    ]


@pytest.mark.parametrize(
    "frame",
    [
        sine_panel(3, 100),
        sine_panel(3, 100).sample(fraction=1.0, shuffle=True, seed=0),
        sine_panel(2, 100).filter((pl.col("id") == "s0") | (pl.col("date") >= dt.date(2020, 2, 1))),
        pl.concat(  # monthly, one series on the 1st and one on the 15th, both to December
            pl.DataFrame(
                {
                    "id": f"s{k}",
                    "date": pl.date_range(
                        dt.date(2010, 1, day), dt.date(2019, 12, day), "1mo", eager=True
                    ),
                }
            )
            for k, day in enumerate((1, 15))
        ).sort("date"),
    ],
    ids=["aligned", "shuffled", "different-starts", "offset-days"],
)
def test_panels_ending_together_keep_their_folds_bit_for_bit(frame):
    expected = own_end_folds(frame, "date", 3, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for origins in ("auto", "calendar", "series"):
            cv = TemporalSplit("date", n_splits=3, test_size=6, id_col="id", origins=origins)
            assert_same_folds(list(cv.split(frame)), expected)


def test_integer_steps_keep_each_series_own_folds_under_auto():
    # independent sequences (integer steps): "auto" is "series", without a warning
    frame = pl.concat(
        [
            pl.DataFrame({"id": "a", "step": range(40)}),
            pl.DataFrame({"id": "b", "step": range(5, 25)}),
        ]
    )
    expected = own_end_folds(frame.rename({"step": "date"}), "date", 2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folds = list(TemporalSplit("step", 2, 4, id_col="id", origins="auto").split(frame))
    assert_same_folds(folds, expected)
    # the calendar folds, asked for, count b's positions as times of a's
    with pytest.warns(ForecasterWarning, match=r"2 \(fold, series\) pairs of 1 series .*'b'"):
        list(TemporalSplit("step", 2, 4, id_col="id", origins="calendar").split(frame))


def test_series_origins_warn_when_a_fold_trains_past_another_series_test_steps():
    frame = ragged_panel({"s1": 10})
    cv = TemporalSplit("date", n_splits=3, test_size=7, id_col="id", origins="series")
    with pytest.warns(CrossSeriesWarning, match=r"origins='series'.* in 3 \(series, fold\) pairs"):
        folds = list(cv.split(frame))
    assert_same_folds(folds, own_end_folds(frame, "date", 3, 7))
    with warnings.catch_warnings():  # series ending together: no warning
        warnings.simplefilter("error")
        list(cv.split(sine_panel(3, 100)))


def test_series_origins_without_the_series_column_give_the_one_timeline_folds():
    """Without id_col the frame is one timeline: origins='series' gives its folds, as
    backtest(origins='series') takes one series (it was refused, unlike backtest's); an
    unknown choice is refused."""
    frame = sine_panel(1, 50).drop("id")
    folds = [
        [
            (tr.tolist(), te.tolist())
            for tr, te in TemporalSplit("date", 2, 5, origins=o).split(frame)
        ]
        for o in ("series", "auto")
    ]
    assert folds[0] == folds[1]
    assert repr(TemporalSplit("date", 2, 5, origins="series")) == (
        "TemporalSplit(time_col='date', n_splits=2, test_size=5, id_col=None, origins='series')"
    )
    with pytest.raises(DataValidationError, match="origins"):
        list(TemporalSplit("date", 2, 5, id_col="id", origins="own").split(sine_panel(1, 50)))


def test_grid_search_on_a_ragged_date_panel_scores_leak_free_folds():
    # cutoffs on days 113 and 116: s1 (ends on day 116) is tested in fold 0 only, s2 (ends
    # on day 89) in neither; both are trained on in both folds
    frame = ragged_panel({"s1": 3, "s2": 30}, n_steps=120)
    cv = TemporalSplit("date", n_splits=2, test_size=3, id_col="id")
    with pytest.warns(ForecasterWarning, match=r"left 3 \(fold, series\) pairs of 2 series"):
        folds = list(cv.split(frame))
    assert_leak_free(frame, folds)
    assert [frame[test]["id"].unique().sort().to_list() for _, test in folds] == [
        ["s0", "s1"],
        ["s0"],
    ]
    search = GridSearchCV(
        RNNForecaster(**TINY_DAILY_MODEL), {"hidden_size": [4, 6]}, cv=cv, error_score="raise"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # the tiny fits' own notes
        search.fit(frame)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.filterwarnings("ignore::forecaster.BaselineWarning")
def test_a_pandas_frame_is_split_and_cross_validated_as_its_polars_frame():
    # every estimator method takes a pandas frame, but the splitter refused it with
    # "TemporalSplit needs a polars DataFrame ... got DataFrame. Collect a LazyFrame first"
    pytest.importorskip("pandas")
    frame = sine_panel(2, 60).sample(fraction=1.0, shuffle=True, seed=0)  # any row order
    cv = TemporalSplit("date", n_splits=2, test_size=3, id_col="id")
    assert_same_folds(list(cv.split(frame.to_pandas())), list(cv.split(frame)))
    model = RNNForecaster(**TINY_DAILY_MODEL)
    pandas_scores = cross_val_score(model, frame.to_pandas(), cv=cv, error_score="raise")
    np.testing.assert_array_equal(pandas_scores, cross_val_score(model, frame, cv=cv))
    with pytest.raises(DataValidationError, match=r"index 'date' holds data .*reset_index"):
        next(cv.split(frame.to_pandas().set_index("date")))
    with pytest.raises(DataValidationError, match=r"polars or pandas DataFrame .* got builtins"):
        next(cv.split([1, 2, 3]))


def test_clone_and_params_keep_origins():
    cv = TemporalSplit("date", n_splits=2, test_size=5, id_col="id", origins="series")
    params = {
        "time_col": "date",
        "n_splits": 2,
        "test_size": 5,
        "id_col": "id",
        "origins": "series",
    }
    assert cv.get_params() == params
    copy = clone(cv)
    assert copy is not cv and copy.get_params() == params
    assert copy.set_params(origins="calendar") is copy and copy.origins == "calendar"
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['origin'\]"):
        cv.set_params(origin="calendar")


@pytest.mark.parametrize("id_col", [None, "id"])
def test_too_few_steps_for_the_folds_is_a_too_few_rows_error(id_col):
    """The splitter's "too few steps for the folds" errors were plain DataValidationError
    while a backtest's length errors are TooFewRowsError (its subclass): both are now
    TooFewRowsError, for one series and for a panel whose series are all too short."""
    frame = pl.DataFrame({"time": list(range(10)), "id": ["a"] * 10})
    splitter = TemporalSplit("time", 3, 4, id_col=id_col)
    with pytest.raises(TooFewRowsError, match="3 folds of 4 steps need more than 12 time steps"):
        list(splitter.split(frame))


def test_a_fold_no_multiple_of_the_horizon_scores_without_an_in_sample_warning():
    """test_size=8, horizon=3: the earliest origin of each series lies 1 step before its
    fitted end, by design (the steps it forecasts that the model saw are not scored).
    Before: predict's InSampleWarning of it came out of every fold's score, as if the
    score were in sample."""
    frame = sine_panel(2, 80)
    model = RNNForecaster(**TINY_DAILY_MODEL)
    cv = TemporalSplit("date", n_splits=2, test_size=8, id_col="id")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_val_score(model, frame, cv=cv, error_score="raise")
    assert np.isfinite(scores).all()
    assert not [w for w in caught if issubclass(w.category, InSampleWarning)]


@pytest.mark.filterwarnings("ignore::forecaster.BaselineWarning")
@pytest.mark.parametrize("id_col", ["id", None])
def test_a_fold_longer_than_the_horizon_scores_every_unseen_step(id_col):
    """test_size=8 > horizon=3: before, score forecast each series' last 3 steps only, and
    the 5 unseen steps before them were history, never scored. Now every unseen step is
    scored, from origins every horizon steps back from each series' end (the first one
    before the cutoff: 8 is not a multiple of 3), in one predict call."""
    frame = sine_panel(2, 80) if id_col else sine_panel(1, 80).drop("id")
    model = RNNForecaster(**{**TINY_DAILY_MODEL, "id_col": id_col})
    cv = TemporalSplit("date", n_splits=2, test_size=8, id_col=id_col)
    scores = cross_val_score(model, frame, cv=cv, error_score="raise")
    for (train, test), score in zip(cv.split(frame), scores, strict=True):
        fitted = clone(model).fit(frame[train])
        cutoff, end = frame[train]["date"].max(), frame[test]["date"].max()
        origins = [end - dt.timedelta(days=k) for k in (3, 6, 9)]  # 9 back: before the cutoff
        forecast = fitted.predict(frame[test], cutoff=origins)
        keys = ["id", "date"] if id_col else ["date"]
        scored = forecast.join(frame, on=keys, suffix="_true").filter(pl.col("date") > cutoff)
        assert scored.height == 8 * (2 if id_col else 1)  # every unseen step, once
        expected = (scored["y"] - scored["y_true"]).abs().mean()
        assert score == pytest.approx(-expected, rel=1e-9)
        last = fitted.predict(frame[test].filter(pl.col("date") <= end - dt.timedelta(days=3)))
        last = last.join(frame, on=keys, suffix="_true")
        assert score != pytest.approx(-(last["y"] - last["y_true"]).abs().mean())  # before

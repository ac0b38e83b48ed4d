"""Hostile frames and time points given to the estimators and the data layer.

Every case checks the outcome (our error type and a message that names the column or argument
and what was expected, or the documented handling) and, where files are involved, that nothing
else changed. Models are tiny (hidden size 4, one epoch) so that the module runs in seconds.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zoneinfo

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecaster import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    Panel,
    PanelScaler,
    RNNForecaster,
    make_windows,
)
from forecaster.data.times import to_time_point
from forecaster.data.validate import validate_frame
from forecaster.evaluation.metrics import evaluate, naive
from forecaster.exceptions import InSampleWarning, UnscoredPointsWarning

N = 40
TINY = {
    "lookback": 8,
    "horizon": 3,
    "hidden_size": 4,
    "segment_length": 4,
    "max_epochs": 1,
    "random_state": 0,
    "progress": False,
    "device": "cpu",
}


def hourly(n: int = N, ids: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    start = dt.datetime(2024, 1, 1)
    t = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    y = [np.sin(np.arange(n) / 3 + i) for i in range(len(ids))]
    return pl.concat(pl.DataFrame({"id": k, "t": t, "y": y[i]}) for i, k in enumerate(ids))


def model(**kw) -> RNNForecaster:
    return RNNForecaster(**{"target": "y", "time_col": "t", "id_col": "id", **TINY, **kw})


@pytest.fixture(scope="module")
def fitted() -> RNNForecaster:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        return model().fit(hourly())


# ------------------------------------------------------------------------------------------
# lazy sources that disappeared
# ------------------------------------------------------------------------------------------


def _scan(tmp_path, kind: str) -> pl.LazyFrame:
    path = tmp_path / f"data.{kind}"
    if kind == "csv":
        hourly().write_csv(path)
        return pl.scan_csv(path, try_parse_dates=True)
    hourly().write_parquet(path)
    return pl.scan_parquet(path)


@pytest.mark.parametrize(
    ("kind", "entry"),
    [
        ("csv", "fit"),
        ("csv", "predict"),
        ("parquet", "fit"),
        ("parquet", "predict"),
        ("parquet", "score"),
        ("parquet", "backtest"),
        ("parquet", "evaluate"),
    ],
)
def test_lazy_scan_of_a_deleted_file(tmp_path, tree_guard, fitted, kind, entry):
    lazy = _scan(tmp_path, kind)
    (tmp_path / f"data.{kind}").unlink()
    (tmp_path / "keep.txt").write_text("user file")
    guard = tree_guard(tmp_path)
    call = {
        "fit": lambda: model().fit(lazy),
        "predict": lambda: fitted.predict(lazy),
        "score": lambda: fitted.score(lazy),
        "backtest": lambda: fitted.backtest(lazy, folds=2),
        "evaluate": lambda: evaluate(
            hourly(), lazy, target="y", time_col="t", id_col="id", metrics="mae"
        ),
    }[entry]
    with pytest.raises(DataValidationError, match=r"Cannot read the lazy .*frame.*scan it again"):
        call()
    guard.assert_unchanged()


def test_lazy_file_deleted_after_its_schema_was_read(tmp_path, tree_guard):
    lazy = _scan(tmp_path, "parquet")
    assert "y" in lazy.collect_schema()  # the schema is known, the rows are not read yet
    (tmp_path / "data.parquet").unlink()
    guard = tree_guard(tmp_path)
    with pytest.raises(DataValidationError, match=r"Cannot read the lazy frame: its source"):
        model().fit(lazy)
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# pandas and malformed keys
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda f: f.to_pandas().set_index(["id", "t"]),
            r"index 'id', 't' holds data.*reset_index",
        ),
        (
            lambda f: (
                f.to_pandas().astype({"y": object}).assign(y=lambda d: d.y.where(d.y > 0, "x"))
            ),
            r"object columns 'y' mix value types.*pd\.to_numeric",
        ),
        (lambda f: f.to_pandas().set_axis(["id", "t", "id"], axis=1), r"'id' occur twice"),
    ],
    ids=["multiindex", "object-column", "duplicate-names"],
)
def test_pandas_frames_that_cannot_be_read_as_they_are_are_refused(fitted, make, message):
    frame = make(hourly())
    assert isinstance(frame, pd.DataFrame)
    for call in (
        lambda: model().fit(frame),
        lambda: fitted.predict(frame),
        lambda: fitted.score(frame),
        lambda: fitted.stream(frame),
    ):
        with pytest.raises(DataValidationError, match=f"pandas DataFrame that cannot.*{message}"):
            call()


def test_pandas_series_are_refused_with_how_to_convert(fitted):
    with pytest.raises(DataValidationError, match=r"polars DataFrame.*series\.to_frame\(\)"):
        fitted.predict(hourly().to_pandas()["y"])


@pytest.mark.parametrize(
    "change",
    [
        pl.when(pl.col("id") == "a").then(float("nan")).otherwise(1.0),
        pl.when(pl.col("y") > 0.9).then(None).otherwise(pl.col("id")),
    ],
    ids=["float-id-nan", "null-id"],
)
def test_missing_ids_are_refused(change):
    with pytest.raises(DataValidationError, match=r"Id column 'id' has \d+ null or NaN values"):
        model().fit(hourly().with_columns(id=change))


def test_null_times_are_refused():
    frame = hourly().with_columns(t=pl.when(pl.col("y") > 0.9).then(None).otherwise(pl.col("t")))
    with pytest.raises(DataValidationError, match=r"Time column 't' has \d+ null values"):
        model().fit(frame)


def test_time_column_of_strings_says_how_to_parse():
    frame = hourly().with_columns(pl.col("t").cast(pl.String))
    with pytest.raises(DataValidationError, match=r"'t' must be Datetime.*got String.*to_datetime"):
        model().fit(frame)


@pytest.mark.parametrize("kind", ["categorical", "enum"])
def test_unseen_categories_at_predict_are_new_series(kind):
    dtype_fit = pl.Categorical if kind == "categorical" else pl.Enum(["a", "b"])
    dtype_new = pl.Categorical if kind == "categorical" else pl.Enum(["a", "b", "c"])
    fit_frame = hourly().with_columns(pl.col("id").cast(dtype_fit))
    new = hourly(ids=("a", "c")).with_columns(pl.col("id").cast(dtype_new))
    est = model().fit(fit_frame)
    out = est.predict(new)
    assert sorted(out["id"].cast(pl.String).unique().to_list()) == ["a", "c"]
    assert out["y"].is_finite().all()
    # the known series keeps its fitted scaling: same forecast as predicting it alone
    alone = est.predict(new.filter(pl.col("id").cast(pl.String) == "a"))
    known = out.filter(pl.col("id").cast(pl.String) == "a")["y"]
    np.testing.assert_allclose(known, alone["y"], rtol=1e-5)


@pytest.mark.parametrize(
    ("fit_zone", "predict_zone"),
    [(None, "UTC"), ("Europe/Paris", None)],
    ids=["naive-aware", "aware-naive"],
)
def test_time_zone_mismatch_between_fit_and_predict(fit_zone, predict_zone):
    frame = hourly()
    fit_frame = frame.with_columns(pl.col("t").dt.replace_time_zone(fit_zone))
    est = model().fit(fit_frame)
    with pytest.raises(DataValidationError, match=r"t: trained on Datetime.*replace_time_zone"):
        est.predict(frame.with_columns(pl.col("t").dt.replace_time_zone(predict_zone)))


# ------------------------------------------------------------------------------------------
# predict frames
# ------------------------------------------------------------------------------------------


def test_predict_series_shorter_than_lookback(fitted):
    frame = pl.concat([hourly(ids=("a",)), hourly(5, ids=("b",))])
    with pytest.warns(
        ForecasterWarning, match=r"Dropped 1 series shorter than 8 rows \(the fitted lookback\)"
    ):
        out = fitted.predict(frame)
    assert out["id"].unique().to_list() == ["a"]
    with pytest.raises(
        DataValidationError, match=r"shorter than the 8 rows needed \(the fitted lookback\)"
    ):
        fitted.predict(hourly(5))


def test_empty_predict_frame(fitted):
    with pytest.raises(DataValidationError, match=r"The frame is empty \(0 rows"):
        fitted.predict(hourly().clear())


def test_predict_on_unseen_ids_uses_their_own_history(fitted):
    out = fitted.predict(hourly(ids=("new",)))
    assert out.shape == (3, 3) and out["id"].to_list() == ["new"] * 3
    assert out["y"].is_finite().all()


def test_int_and_float_targets_between_fit_and_predict_give_the_same_forecast(fitted):
    frame = hourly().with_columns(pl.col("y").round(0))
    as_int = frame.with_columns(pl.col("y").cast(pl.Int32))
    np.testing.assert_allclose(fitted.predict(frame)["y"], fitted.predict(as_int)["y"])


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        (pl.lit(None, pl.Float64), {"missing": "ffill"}, "nothing to fill from"),
        (pl.lit(float("inf")), {}, r"Infinite values in 'y'"),
        (pl.lit(1e308), {}, r"'y' exceed the float32 range"),
        (
            pl.col("y").abs() * 1e37 + 1,
            {"target_transform": "boxcox"},
            r"outside the float32 range",
        ),
    ],
    ids=["all-null", "inf", "1e308", "boxcox-overflow"],
)
def test_hostile_target_values(values, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        model(**kwargs).fit(hourly().with_columns(y=values))


def test_constant_target_gives_finite_forecasts_at_its_level():
    frame = hourly().with_columns(y=pl.lit(3e38))
    out = model().fit(frame).predict(frame)
    assert out["y"].is_finite().all()
    np.testing.assert_allclose(out["y"], 3e38, rtol=1e-3)


# ------------------------------------------------------------------------------------------
# calendar features by time dtype
# ------------------------------------------------------------------------------------------


def _daily(dtype: str) -> pl.DataFrame:
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 3, 1), eager=True)
    frame = pl.DataFrame({"t": days, "y": np.sin(np.arange(len(days)) / 4)})
    if dtype == "date":
        return frame
    as_dt = frame.with_columns(pl.col("t").cast(pl.Datetime("us")))
    if dtype == "datetime":
        return as_dt
    return as_dt.with_columns(pl.col("t").dt.replace_time_zone("America/New_York"))


@pytest.mark.parametrize("dtype", ["date", "datetime", "datetime-tz"])
@pytest.mark.parametrize("calendar", ["auto", ["dayofweek", "month"]])
def test_calendar_on_dates_and_datetimes(dtype, calendar):
    frame = _daily(dtype)
    est = RNNForecaster(target="y", time_col="t", calendar=calendar, **TINY).fit(frame)
    expected = ("dayofweek", "dayofyear") if calendar == "auto" else tuple(calendar)
    assert est.calendar_ == expected
    assert est.predict(frame)["y"].is_finite().all()


@pytest.mark.parametrize(
    ("frame", "calendar", "message"),
    [
        (_daily("date"), ["hour"], r"'hour' repeats every day, but the data are sampled every 1d"),
        (
            pl.DataFrame({"t": range(60), "y": np.zeros(60)}),
            "auto",
            r"integer steps have no calendar",
        ),
        (
            pl.DataFrame(
                {"t": pl.date_range(dt.date(1950, 1, 1), dt.date(2009, 1, 1), "1y", eager=True)}
            ).with_columns(y=pl.int_range(60).cast(pl.Float64)),
            "auto",
            r"calendar='auto' finds no calendar feature for data sampled every 1y",
        ),
    ],
    ids=["hour-on-daily", "integer-time", "auto-on-yearly"],
)
def test_calendar_that_cannot_vary_is_refused(frame, calendar, message):
    with pytest.raises(DataValidationError, match=message):
        RNNForecaster(target="y", time_col="t", calendar=calendar, **TINY).fit(frame)


# ------------------------------------------------------------------------------------------
# time points: one conversion for cutoffs, split bounds, scaler spans
# ------------------------------------------------------------------------------------------


def representations(instant: dt.datetime, zone: str | None) -> list:
    """The same instant (on the column's clock) written every way the package accepts."""
    local = instant.replace(tzinfo=zoneinfo.ZoneInfo(zone)) if zone else instant
    forms = [
        instant,
        instant.isoformat(),
        instant.isoformat(sep=" "),
        pl.datetime(instant.year, instant.month, instant.day, instant.hour),
        pl.lit(instant),
        np.datetime64(instant.isoformat()),
        pd.Timestamp(instant),
    ]
    if zone:
        forms += [local, local.astimezone(dt.UTC), local.astimezone(dt.UTC).isoformat()]
    return forms


@pytest.fixture(scope="module")
def zoned_models() -> dict:
    models = {}
    for zone in (None, "Europe/Paris"):
        frame = hourly().with_columns(pl.col("t").dt.replace_time_zone(zone))
        models[zone] = (model().fit(frame), frame)
    return models


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hour=st.integers(8, N - 1), zone=st.sampled_from([None, "Europe/Paris"]), data=st.data())
def test_every_representation_of_a_cutoff_gives_the_same_forecast(zoned_models, hour, zone, data):
    est, frame = zoned_models[zone]
    instant = dt.datetime(2024, 1, 1) + dt.timedelta(hours=hour)
    reference = est.predict(frame, cutoff=instant)
    form = data.draw(st.sampled_from(representations(instant, zone)))
    out = est.predict(frame, cutoff=form)
    assert out.equals(reference)
    assert out["t"].min() == reference["t"].min()


unsupported = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12).filter(lambda s: not s.strip()[:2].isdigit()),
    st.lists(st.integers(), min_size=1, max_size=3),  # a list: one origin per element
    st.just(object()),
    st.just(pl.col("t")),
    st.just(pl.Series([1, 2])),
    st.just(np.datetime64("NaT")),
    st.just(dt.timedelta(hours=1)),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=unsupported)
def test_unsupported_cutoff_types_are_refused_naming_the_dtype(fitted, value):
    message = r"cutoff=.* is not a (time|cutoff) of the Datetime"
    with pytest.raises(DataValidationError, match=message):
        fitted.predict(hourly(), cutoff=value)


def test_an_empty_list_of_cutoffs_is_refused(fitted):
    with pytest.raises(DataValidationError, match=r"cutoff=\[\] names no time point"):
        fitted.predict(hourly(), cutoff=[])


def test_cutoff_outside_the_data(fitted):
    frame = hourly()
    with pytest.raises(
        DataValidationError, match=r"before the first time of the data \(2024-01-01"
    ):
        fitted.predict(frame, cutoff="2023-12-31")
    with pytest.warns(ForecasterWarning, match=r"2 series end before cutoff=.*last time"):
        out = fitted.predict(frame, cutoff=dt.date(2030, 1, 1))
    assert out.equals(fitted.predict(frame))
    # between two grid times: forecast from the step before (documented), no other warning
    # than that the model was fitted past it (in sample)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        warnings.simplefilter("ignore", InSampleWarning)
        between = fitted.predict(frame, cutoff=dt.datetime(2024, 1, 1, 20, 30))
    assert between.equals(fitted.predict(frame, cutoff=dt.datetime(2024, 1, 1, 20)))


def test_series_behind_a_series_dropped_as_too_short_are_stale(fitted):
    """The as-of is the frame's last time, that of a series dropped as too short included:
    the others, several steps behind it, got no warning (the pyfunc and the pipelines said
    they were stale)."""
    frame = hourly()
    end = frame["t"].max()
    short = pl.DataFrame({"id": "c", "t": [end + dt.timedelta(hours=k) for k in (3, 4)]})
    request = pl.concat([frame, short.with_columns(y=pl.lit(0.5))])
    with pytest.warns(ForecasterWarning) as caught:
        out = fitted.predict(request)
    messages = [str(w.message) for w in caught]
    assert any("Dropped 1 series" in m for m in messages), messages
    stale = [m for m in messages if "end before the frame's last time" in m]
    assert len(stale) == 1 and "['a', 'b']" in stale[0], messages
    assert out.equals(fitted.predict(frame))


def test_readme_split_with_pl_date_expressions():
    days = pl.date_range(dt.date(2012, 1, 1), dt.date(2015, 6, 30), eager=True)
    frame = pl.DataFrame({"date": days, "close": np.arange(len(days), dtype=float)})
    panel = Panel.from_frame(frame, target="close", time_col="date")
    windows = make_windows(panel, lookback=60, horizon=5)
    by_expr = windows.split(train_end=pl.date(2012, 12, 31), val_end=pl.date(2014, 12, 31))
    by_text = windows.split(train_end="2012-12-31", val_end="20141231")
    assert [len(s) for s in by_expr] == [len(s) for s in by_text]
    assert all(len(s) for s in by_expr)
    scaler = PanelScaler("robust").fit(panel, until=pl.date(2012, 12, 31))
    same = PanelScaler("robust").fit(panel, until=dt.date(2012, 12, 31))
    np.testing.assert_array_equal(scaler.center_, same.center_)
    with pytest.raises(
        DataValidationError, match=r"train_end=5 \(an int\) is not a time of the Date"
    ):
        windows.split(train_end=5)


def test_time_point_rules_on_a_zoned_column():
    dtype = pl.Datetime("ms", "Europe/Paris")
    with pytest.raises(DataValidationError, match=r"does not name one instant in the time zone"):
        to_time_point("2024-03-31T02:30", dtype)  # skipped by the daylight-saving change
    naive = pl.Datetime("us")
    with pytest.raises(DataValidationError, match=r"has a time zone but the time column has none"):
        to_time_point("2024-01-01T00:00+01:00", naive)


# ------------------------------------------------------------------------------------------
# the future frame of predict: checked like the history
# ------------------------------------------------------------------------------------------


def steps(n: int = 60, ids: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    """Integer-time series with a future covariate ``fx`` (known ahead)."""
    t = np.arange(n)
    return pl.DataFrame(
        {
            "id": np.repeat(ids, n),
            "t": np.tile(t, len(ids)),
            "y": np.tile(np.sin(t / 5), len(ids)),
            "fx": np.tile((t % 7).astype(float), len(ids)),
        }
    )


def step_model(**kw) -> RNNForecaster:
    return RNNForecaster(**{"target": "y", "time_col": "t", "id_col": "id", **TINY, **kw})


@pytest.fixture(scope="module")
def with_future() -> RNNForecaster:
    return step_model(future_covariates="fx").fit(steps())


FUTURE = pl.DataFrame({"id": ["a"] * 3 + ["b"] * 3, "t": [60, 61, 62] * 2, "fx": [4.0, 5, 6] * 2})


def _set_fx(value: float | None) -> pl.DataFrame:
    at = (pl.col("id") == "b") & (pl.col("t") == 61)
    return FUTURE.with_columns(
        fx=pl.when(at).then(pl.lit(value, pl.Float64)).otherwise(pl.col("fx"))
    )


@pytest.mark.parametrize(
    ("future", "message"),
    [
        (
            _set_fx(float("nan")),
            r"Missing values \(NaN or null\) in \{'fx': 1\} of the future "
            r"frame, e.g. at \('b', 61\)",
        ),
        (_set_fx(None), r"Missing values \(NaN or null\) in \{'fx': 1\} .*\('b', 61\)"),
        (
            _set_fx(float("inf")),
            r"Infinite values in 'fx' of the future frame: e.g. at \('b', 61\)",
        ),
        (_set_fx(-float("inf")), r"Infinite values in 'fx' of the future frame"),
        (
            pl.concat([FUTURE, FUTURE.tail(1).with_columns(fx=pl.lit(100.0))]),
            r"2 rows of the future frame share their \(id, t\), e.g. \('b', 62\)",
        ),
        (FUTURE.filter(pl.col("t") != 61), r"no rows for 2 forecast steps"),
        (
            FUTURE.with_columns(pl.col("t").cast(pl.Float64)),
            r"dtypes differ from training \(t: trained on Int64, got Float64\)",
        ),
        (
            FUTURE.with_columns(pl.col("fx").cast(pl.String)),
            r"as numbers; it has \['fx \(String\)'\]",
        ),
        (FUTURE.drop("fx"), r"it lacks \['fx'\]"),
        (FUTURE.to_pandas().set_index("t"), r"future frame is a pandas DataFrame.*'t' holds"),
    ],
    ids=[
        "nan",
        "null",
        "inf",
        "-inf",
        "duplicate",
        "missing-step",
        "float-time",
        "text",
        "absent",
        "pandas-index",
    ],
)
def test_hostile_future_frames_are_refused(with_future, future, message):
    with pytest.raises(DataValidationError, match=message):
        with_future.predict(steps(), future=future)


def test_future_time_of_another_integer_width_works(with_future):
    narrow = FUTURE.with_columns(pl.col("t").cast(pl.Int32))
    assert with_future.predict(steps(), future=narrow).equals(
        with_future.predict(steps(), future=FUTURE)
    )


def test_future_given_to_a_model_without_future_covariates_is_refused():
    plain = step_model().fit(steps().drop("fx"))
    with pytest.raises(DataValidationError, match=r"no future covariates .*would be ignored"):
        plain.predict(steps().drop("fx"), future=FUTURE)


def test_predict_time_of_another_kind_is_refused_not_a_polars_error():
    plain = step_model().fit(steps().drop("fx"))
    frame = steps().drop("fx").with_columns(pl.col("t").cast(pl.Float64))
    with pytest.raises(DataValidationError, match=r"t: trained on Int64, got Float64"):
        plain.predict(frame)


def test_stale_series_are_named_with_or_without_a_cutoff(fitted):
    frame = hourly().filter(~((pl.col("id") == "b") & (pl.col("t") > dt.datetime(2024, 1, 2))))
    with pytest.warns(
        ForecasterWarning, match=r"1 series ends before the frame's last time .*\['b'\].*last time"
    ):
        without = fitted.predict(frame)
    last = frame["t"].max()
    with pytest.warns(ForecasterWarning, match=r"1 series ends before cutoff=.*\['b'\]"):
        assert without.equals(fitted.predict(frame, cutoff=last))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)  # series that end together: silent
        fitted.predict(hourly())


# ------------------------------------------------------------------------------------------
# score: held out on the regular grid, never partly in the fitted data
# ------------------------------------------------------------------------------------------


def test_score_on_a_frame_with_gaps_scores_the_observed_held_out_steps():
    """The held-out steps are those of the regular grid; a step the missing= policy filled is
    not scored (it was scored against its forward-filled value)."""
    frame = steps().drop("fx")
    # fitted up to the held-out steps (score scores every step after the fitted data)
    model_ = step_model(missing="ffill").fit(frame.filter(pl.col("t") < 57))
    gappy = frame.filter(pl.col("t") != 58)  # a gap among the last horizon steps
    filled = (
        gappy.sort("id", "t")
        .upsample("t", every="1i", group_by="id")
        .with_columns(pl.col("id", "y").forward_fill())
    )
    history = filled.filter(pl.col("t") < 57)
    forecast = model_.predict(history)
    assert forecast["t"].to_list() == [57, 58, 59] * 2  # the held-out grid steps
    joined = forecast.join(gappy, on=["id", "t"], suffix="_true")
    assert joined.height == 4  # the observed held-out steps: t=58 is filled in both series
    expected = -float((joined["y"] - joined["y_true"]).abs().mean())
    with pytest.warns(UnscoredPointsWarning, match=r"2 of 6 held-out target values are not in"):
        assert model_.score(gappy) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(DataValidationError, match="there is nothing to score"):
        unknown = pl.when(pl.col("t") >= 57).then(None).otherwise(pl.col("y")).alias("y")
        model_.score(frame.with_columns(unknown))  # rows with null targets: filled, unknown


def test_score_refuses_held_out_steps_partly_in_the_fitted_data():
    frame = steps().drop("fx")
    model_ = step_model().fit(frame.filter(pl.col("t") < 58))  # horizon 3, 2 new steps
    with pytest.raises(DataValidationError, match=r"1 of 3 held-out steps .*test_size >= horizon"):
        model_.score(frame)


def test_grid_search_with_test_size_below_horizon_is_refused():
    from sklearn.model_selection import GridSearchCV

    from forecaster import TemporalSplit

    search = GridSearchCV(
        step_model(),
        {"horizon": [2, 3]},
        cv=TemporalSplit("t", n_splits=2, test_size=2),
        error_score="raise",
    )
    with pytest.raises(DataValidationError, match=r"held-out steps .*test_size >= horizon \(3\)"):
        search.fit(steps().drop("fx"))


def test_in_sample_score_warns(fitted):
    with pytest.warns(ForecasterWarning, match=r"all in the data the model was fitted on"):
        fitted.score(hourly())


# ------------------------------------------------------------------------------------------
# data layer entry points given the wrong kind of argument
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [hourly(), hourly().lazy(), hourly().to_pandas(), None])
def test_make_windows_needs_a_panel(frame):
    with pytest.raises(DataValidationError, match=r"make_windows needs a Panel.*Panel.from_frame"):
        make_windows(frame, 12, 3)


@pytest.mark.parametrize(
    ("min_length", "message"),
    [
        ("3", r"min_length must be an integer >= 1, got '3' \(a string\)"),
        (-1, r"min_length must be an integer >= 1, got -1"),
        (0, r"min_length must be an integer >= 1, got 0"),
        (1.5, r"min_length must be an integer >= 1, got 1.5 \(a float\)"),
        (True, r"min_length must be an integer >= 1, got True \(a bool\)"),
    ],
)
def test_panel_min_length_is_checked(min_length, message):
    with pytest.raises(DataValidationError, match=message):
        Panel.from_frame(hourly(), target="y", time_col="t", id_col="id", min_length=min_length)


def test_panel_min_length_accepts_numpy_integers():
    panel = Panel.from_frame(
        hourly(), target="y", time_col="t", id_col="id", min_length=np.int64(3)
    )
    assert panel.n_series == 2


def test_scaler_until_and_mask_together_are_refused():
    panel = Panel.from_frame(hourly(), target="y", time_col="t", id_col="id")
    mask = np.ones(int(panel.offsets[-1]), dtype=bool)
    with pytest.raises(DataValidationError, match=r"until= or mask=, not both"):
        PanelScaler().fit(panel, until="2024-01-01T12:00", mask=mask)


# ------------------------------------------------------------------------------------------
# RNNRegressor: arrays checked with scikit-learn's words and ours
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regressor():
    from forecaster import RNNRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6, 2)).astype("float32")
    model_ = RNNRegressor(hidden_size=4, max_epochs=1, random_state=0, device="cpu")
    return model_.fit(X, X[:, -1, 0]), X


@pytest.mark.parametrize("features", [1, 3])
def test_regressor_predict_checks_the_features_per_step(regressor, features):
    model_, X = regressor
    wrong = X[:, :, :1] if features == 1 else np.concatenate([X, X[:, :, :1]], axis=2)
    with pytest.raises(
        DataValidationError,
        match=rf"X has {features} features per step, the model was fitted with 2",
    ):
        model_.predict(wrong)
    with pytest.raises(DataValidationError, match=r"X has 1 features per step"):
        model_.predict(X[:, :, 0])  # 2-D: one feature


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda X, y: (np.where(X > 2, np.nan, X), y),
            r"Input X contains NaN\. \(RNNRegressor.fit: X",
        ),
        (lambda X, y: (np.where(X > 2, np.inf, X), y), r"infinity.*RNNRegressor.fit: X must"),
        (lambda X, y: (X, np.where(y > 1, np.nan, y)), r"Input y contains NaN"),
        (lambda X, y: (X, y[:5]), r"inconsistent numbers of samples.*one row per window"),
        (lambda X, y: (X[:1], y[:1]), r"RNNRegressor.fit"),
        (lambda X, y: (X.astype(str).astype(object) + "x", y), r"real numbers"),
    ],
    ids=["nan", "inf", "nan-y", "lengths", "one-sample", "text"],
)
def test_regressor_fit_messages_say_what_and_how(regressor, change, message):
    from forecaster import RNNRegressor

    _, X = regressor
    X, y = change(X, X[:, -1, 0])
    with pytest.raises(DataValidationError, match=message):
        RNNRegressor(hidden_size=4, max_epochs=1, device="cpu").fit(X, y)


# ------------------------------------------------------------------------------------------
# random frames: fit / predict succeed or raise our errors
# ------------------------------------------------------------------------------------------

DTYPES = [pl.Float64, pl.Float32, pl.Int64, pl.Int8, pl.UInt16, pl.Boolean, pl.String, pl.Null]


HOSTILE_VALUES = [None, float("nan"), float("inf"), -1e300, 1e39, 0.0]


@st.composite
def random_frames(draw):
    """Series of random lengths with, each drawn or not: hostile values, null or duplicated
    ids, duplicated, textual or shuffled times, another target dtype."""
    lengths = draw(st.lists(st.integers(0, 14), min_size=1, max_size=3))
    n = sum(lengths)
    ids = [k for k, length in zip("abc", lengths, strict=False) for _ in range(length)]
    steps = [s for length in lengths for s in range(length)]
    values = draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n))
    positions = st.integers(0, max(n - 1, 0))
    if n and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            values[draw(positions)] = draw(st.sampled_from(HOSTILE_VALUES))
    if n and draw(st.integers(0, 4)) == 0:
        ids[draw(positions)] = None
    time_kind = draw(st.sampled_from(["int", "int", "datetime", "date", "string", "duplicated"]))
    if time_kind == "duplicated" and n:
        steps[draw(positions)] = 0
    frame = pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.String),
            "t": pl.Series(steps, dtype=pl.Int64),
            "y": pl.Series(values, dtype=pl.Float64),
        }
    )
    start = pl.datetime(2024, 1, 1)
    if time_kind == "datetime":
        frame = frame.with_columns(t=start + pl.duration(hours=pl.col("t")))
    elif time_kind == "date":
        frame = frame.with_columns(t=(start + pl.duration(days=pl.col("t"))).dt.date())
    elif time_kind == "string":
        frame = frame.with_columns(pl.col("t").cast(pl.String))
    dtype = draw(st.sampled_from([pl.Float64] * 4 + DTYPES))
    id_dtype = draw(st.sampled_from([pl.String, pl.Categorical, pl.Enum(["a", "b", "c"])]))
    frame = frame.with_columns(pl.col("y").cast(dtype, strict=False), pl.col("id").cast(id_dtype))
    if draw(st.booleans()):
        frame = frame.sample(fraction=1.0, shuffle=True, seed=0)
    return frame, draw(st.sampled_from(["error", "ffill", "zero", "interpolate"]))


@settings(max_examples=30, deadline=None)
@given(case=random_frames())
def test_random_frames_fit_and_predict_or_raise_our_errors(case):
    frame, missing = case
    est = RNNForecaster(
        target="y",
        time_col="t",
        id_col="id",
        missing=missing,
        **{**TINY, "lookback": 4, "horizon": 2},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        try:
            est.fit(frame)
        except ForecasterError:
            return
        try:
            out = est.predict(frame)
        except ForecasterError:
            return
    assert out.columns == ["id", "t", "y"]
    assert out["y"].is_finite().all()


# ------------------------------------------------------------------------------------------
# times beyond the data: calendar anchors, dtype ranges, frames of another frequency
# ------------------------------------------------------------------------------------------


def calendar_ends(freq: str, start: dt.date, n: int = N) -> pl.DataFrame:
    """Two series on the last day of every month (``1mo``) or quarter (``1q``)."""
    every = {"1mo": "1mo", "1q": "3mo"}[freq]
    stop = start + dt.timedelta(days=100 * n)
    ends = pl.date_range(start, stop, every, eager=True).dt.month_end()[:n]
    return pl.concat(
        pl.DataFrame({"id": k, "t": ends, "y": np.sin(np.arange(n) / 3) + i})
        for i, k in enumerate("ab")
    )


@pytest.mark.parametrize(
    ("freq", "start", "expected"),
    [
        ("1mo", dt.date(2000, 1, 31), ["2003-05-31", "2003-06-30", "2003-07-31"]),
        ("1mo", dt.date(2000, 4, 30), ["2003-08-31", "2003-09-30", "2003-10-31"]),
        ("1q", dt.date(2000, 3, 31), ["2010-03-31", "2010-06-30", "2010-09-30"]),
        ("1q", dt.date(2000, 9, 30), ["2010-09-30", "2010-12-31", "2011-03-31"]),
    ],
    ids=["months-from-31", "months-from-30", "quarters-from-31", "quarters-from-30"],
)
def test_month_and_quarter_ends_forecast_month_and_quarter_ends(freq, start, expected):
    frame = calendar_ends(freq, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        est = model().fit(frame)
        forecast = est.predict(frame)
    assert str(est.freq_) == freq
    days = [dt.date.fromisoformat(d) for d in expected]
    assert forecast.filter(pl.col("id") == "a")["t"].to_list() == days
    baseline = naive(frame, 3, target="y", time_col="t", id_col="id")
    assert baseline.filter(pl.col("id") == "b")["t"].to_list() == days


def test_series_on_a_day_other_than_the_month_end_keeps_its_day():
    # The 30th of every month (the 28th in February): not month-ends, so the 30th again.
    days = [dt.date(2001, 1, 30), dt.date(2001, 2, 28), dt.date(2001, 3, 30), dt.date(2001, 4, 30)]
    panel = Panel.from_frame(pl.DataFrame({"t": days, "y": 1.0}), target="y", time_col="t")
    assert str(panel.freq) == "1mo"
    expected = [dt.date(2001, 5, 30), dt.date(2001, 6, 30), dt.date(2001, 7, 30)]
    assert panel.future_times(3).to_list() == expected


def test_zoned_month_ends_keep_their_local_time_of_day():
    zone = "Europe/Paris"
    ends = [dt.datetime(2024, m, 1, 17) for m in range(1, 7)]
    frame = pl.DataFrame({"t": ends, "y": 1.0}).with_columns(
        pl.col("t").dt.month_end().dt.replace_time_zone(zone)
    )
    panel = Panel.from_frame(frame, target="y", time_col="t")
    local = panel.future_times(3).dt.replace_time_zone(None).to_list()
    assert local == [
        dt.datetime(2024, 7, 31, 17),
        dt.datetime(2024, 8, 31, 17),
        dt.datetime(2024, 9, 30, 17),
    ]


def test_a_gap_in_month_end_data_is_filled_with_the_month_end():
    frame = calendar_ends("1mo", dt.date(2000, 1, 31)).filter(pl.col("t") != dt.date(2000, 4, 30))
    clean, _ = validate_frame(frame, target="y", time_col="t", id_col="id", missing="ffill")
    filled = clean.filter(pl.col("id") == "a")["t"].to_list()[:5]
    assert filled == [dt.date(2000, m, d) for m, d in ((1, 31), (2, 29), (3, 31), (4, 30), (5, 31))]


@pytest.mark.parametrize("dtype", [pl.Int128, pl.UInt128])
def test_128_bit_time_columns_are_refused_at_validation(dtype):
    frame = hourly().with_columns(pl.int_range(N).over("id").cast(dtype).alias("t"))
    with pytest.raises(DataValidationError, match=r"got U?Int128\. 128-bit integers"):
        model().fit(frame)


def test_uint64_times_beyond_int64_say_out_of_range_not_far_apart():
    t = pl.Series([2**63 + i for i in range(20)], dtype=pl.UInt64)
    frame = pl.DataFrame({"t": t, "y": np.arange(20.0)})
    with pytest.raises(DataValidationError, match=r"holds times out of range: from 92233") as info:
        validate_frame(frame, target="y", time_col="t")
    assert "too far apart" not in str(info.value)


@pytest.mark.parametrize(
    ("times", "dtype", "message"),
    [
        (list(range(86, 126)), pl.Int8, r"after the last time 125 .*Int8 \(-128 to 127\)"),
        ([2**63 - 40 + i for i in range(40)], pl.Int64, r"last time 9223372036854775807"),
    ],
    ids=["int8", "int64"],
)
def test_forecast_times_beyond_the_time_dtype_are_refused(times, dtype, message):
    frame = pl.DataFrame({"t": pl.Series(times, dtype=dtype), "y": np.sin(np.arange(40) / 3)})
    panel = Panel.from_frame(frame, target="y", time_col="t")
    with pytest.raises(DataValidationError, match=message):
        panel.future_times(3)


@pytest.fixture(scope="module")
def daily_model() -> RNNForecaster:
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 2, 9), "1d", eager=True)
    frame = pl.concat(
        pl.DataFrame({"id": k, "t": days, "y": np.sin(np.arange(N) / 3) + i})
        for i, k in enumerate("ab")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        return model(missing="ffill").fit(frame)


def weekly(n: int = N) -> pl.DataFrame:
    weeks = pl.date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1) + dt.timedelta(weeks=n - 1), "1w", eager=True
    )
    return pl.concat(
        pl.DataFrame({"id": k, "t": weeks, "y": np.cos(np.arange(n) / 3) + i})
        for i, k in enumerate("ab")
    )


@pytest.mark.parametrize("method", ["predict", "score"])
def test_a_daily_model_refuses_weekly_data_instead_of_resampling_it(daily_model, method):
    with pytest.raises(DataValidationError, match=r"not sampled every 1d.*closest are 1w apart"):
        getattr(daily_model, method)(weekly())


def test_a_frame_of_the_models_frequency_with_gaps_is_still_filled(daily_model):
    days = pl.date_range(dt.date(2024, 3, 1), dt.date(2024, 3, 20), "1d", eager=True)
    frame = pl.DataFrame({"id": "a", "t": days, "y": np.arange(20.0)}).filter(
        pl.col("t") != dt.date(2024, 3, 10)
    )
    forecast = daily_model.predict(frame)
    assert forecast["t"].to_list() == [dt.date(2024, 3, d) for d in (21, 22, 23)]


@pytest.mark.parametrize(
    ("make", "freq", "message"),
    [
        (weekly, "1d", r"closest are 1w apart\), but freq='1d'.*Pass freq='1w'"),
        (lambda: calendar_ends("1mo", dt.date(2000, 1, 31)), "1d", r"closest are 4w apart"),
        (lambda: calendar_ends("1q", dt.date(2000, 3, 31)), "1mo", r"closest are 3mo apart"),
        (lambda: hourly().gather_every(2), "1h", r"closest are 2h apart.*Pass freq='2h'"),
    ],
    ids=["weekly-as-daily", "monthly-as-daily", "quarterly-as-monthly", "2h-as-hourly"],
)
@pytest.mark.parametrize("missing", ["error", "ffill", "zero"])
def test_a_declared_freq_finer_than_the_data_is_refused(make, freq, message, missing):
    with pytest.raises(DataValidationError, match=message):
        validate_frame(make(), target="y", time_col="t", id_col="id", freq=freq, missing=missing)


@pytest.mark.parametrize("name", ["_p", "_s", "_t0", "_n", "__forecaster_p__"])
def test_id_columns_named_like_internal_columns_fill_gaps(name):
    frame = hourly().rename({"id": name}).filter(pl.col("t") != dt.datetime(2024, 1, 1, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        est = model(id_col=name, missing="ffill").fit(frame)
        forecast = est.predict(frame)
    assert forecast.columns == [name, "t", "y"]
    assert forecast.height == 6


def test_the_reserved_series_column_name_is_refused_by_name():
    frame = hourly().filter(pl.col("id") == "a").drop("id").rename({"y": "__series__"})
    with pytest.raises(DataValidationError, match=r"Column name '__series__' is reserved"):
        validate_frame(frame, target="__series__", time_col="t")


# ------------------------------------------------------------------------------------------
# static covariates (one value per series)
# ------------------------------------------------------------------------------------------


def with_statics(frame: pl.DataFrame) -> pl.DataFrame:
    region = pl.when(pl.col("id") == "a").then(pl.lit("n")).otherwise(pl.lit("s"))
    return frame.with_columns(region.alias("region"), pl.lit(2.5).alias("size"))


@pytest.fixture(scope="module")
def static_model() -> RNNForecaster:
    return model(static_covariates=["region", "size"]).fit(with_statics(hourly()))


STATIC_FRAMES = {
    "varies-in-a-series": (
        lambda f: f.with_columns(
            pl.when((pl.col("id") == "b") & (pl.col("y") > 0.5))
            .then(pl.lit("w"))
            .otherwise(pl.col("region"))
            .alias("region")
        ),
        r"Static covariate 'region' must have one value per series, but Series 'b' has 2",
    ),
    "null": (
        lambda f: f.with_columns(
            pl.when(pl.col("id") == "b").then(None).otherwise(pl.col("size")).alias("size")
        ),
        r"Static covariate 'size' has 40 null, NaN or infinite values \(first in series 'b'\)",
    ),
    "nan": (
        lambda f: f.with_columns(pl.lit(float("nan")).alias("size")),
        r"Static covariate 'size' has 80 null, NaN or infinite values",
    ),
    "date-dtype": (
        lambda f: f.with_columns(pl.lit(dt.date(2024, 1, 1)).alias("size")),
        r"Static covariate 'size' has dtype Date: a static covariate is categorical",
    ),
    "list-dtype": (
        lambda f: f.with_columns(pl.lit([1, 2]).alias("region")),
        r"Static covariate 'region' has dtype List\(Int64\)",
    ),
    "absent": (
        lambda f: f.drop("size"),
        r"The frame lacks the static covariates \['size'\]",
    ),
}


@pytest.mark.parametrize("case", sorted(STATIC_FRAMES))
def test_hostile_static_covariates_are_refused_at_fit_naming_column_and_series(case):
    edit, message = STATIC_FRAMES[case]
    with pytest.raises(DataValidationError, match=message):
        model(static_covariates=["region", "size"]).fit(edit(with_statics(hourly())))


@pytest.mark.parametrize("case", ["varies-in-a-series", "null", "absent"])
def test_hostile_static_covariates_are_refused_at_predict(static_model, case):
    edit, message = STATIC_FRAMES[case]
    if case == "absent":
        message = r"lacks the columns \['size'\] that the model was trained with"
    with pytest.raises(DataValidationError, match=message):
        static_model.predict(edit(with_statics(hourly())))


def test_unseen_static_category_is_the_documented_unknown(static_model):
    frame = with_statics(hourly(ids=("a", "b", "new")))
    frame = frame.with_columns(
        pl.when(pl.col("id") == "new").then(pl.lit("w")).otherwise(pl.col("region")).alias("region")
    )
    with pytest.warns(ForecasterWarning, match=r"'region' has categories unseen in fit \('w'\)"):
        forecast = static_model.predict(frame)
    assert forecast["y"].is_finite().all() and forecast.height == 9


@pytest.mark.parametrize(
    "entry",
    [
        {"vocabularies": {"region": "ns"}, "numeric": {"size": [2.5, 1.0]}},
        {"vocabularies": {"region": ["n", "s"]}, "numeric": {"size": [2.5, 0.0]}},
        {"vocabularies": {"region": ["n", "n"]}, "numeric": {"size": [2.5, 1.0]}},
        {"vocabularies": {"other": ["n", "s"]}, "numeric": {"size": [2.5, 1.0]}},
        {"vocabularies": {"region": ["n", "s", "t"]}, "numeric": {"size": [2.5, 1.0]}},
        None,
    ],
    ids=["not-a-list", "zero-std", "duplicates", "other-column", "cardinality", "absent"],
)
def test_edited_static_encoding_is_refused_at_load(static_model, tmp_path, entry):
    import json

    from forecaster import ModelFormatError, _io, load, save

    path = save(static_model, tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    if entry is None:
        del config["static_covariates"]
    else:
        config["static_covariates"] = entry
    (path / "config.json").write_text(json.dumps(config))
    details = json.loads((path / "manifest.json").read_text())["details"]
    (path / "manifest.json").unlink()
    _io.write_manifest(path, "model", details)  # forged, so that the deeper checks are reached
    with pytest.raises(ModelFormatError, match=r"static.covariates"):
        load(path)

from __future__ import annotations

import calendar
import datetime as dt
import re
import warnings
import zoneinfo

import numpy as np
import polars as pl
import pytest

from forecaster.data.dtypes import align_time, restore_dtypes, trained_frame, training_frame
from forecaster.data.frames import check_schema
from forecaster.data.frequency import Frequency
from forecaster.data.frequency_inference import infer_frequency
from forecaster.data.made_up import warn_made_up_origins
from forecaster.data.panel import Panel
from forecaster.data.steps import future_times, steps_behind
from forecaster.data.times import to_time_point
from forecaster.data.validate import validate_frame, validate_frame_cells
from forecaster.exceptions import DataValidationError, ForecasterWarning


def hourly(ids=("a", "b"), n=6, start=dt.datetime(2024, 1, 1)) -> pl.DataFrame:
    rows = []
    for k, key in enumerate(ids):
        for i in range(n):
            rows.append((key, start + dt.timedelta(hours=i), float(10 * k + i), float(i % 2)))
    return pl.DataFrame(rows, schema=["id", "t", "y", "x"], orient="row")


def build(frame, **kw):
    params = {"target": "y", "time_col": "t", "id_col": "id"}
    params.update(kw)
    return Panel.from_frame(frame, **params)


# ---------------------------------------------------------------- happy paths


def test_panel_packs_series_contiguously_in_float32():
    panel = build(hourly(n=5), covariates="x")
    assert panel.values.dtype == np.float32
    assert panel.values.flags["C_CONTIGUOUS"]
    assert panel.values.shape == (10, 2)
    assert panel.offsets.tolist() == [0, 5, 10]
    assert panel.keys["id"].to_list() == ["a", "b"]
    assert str(panel.freq) == "1h"
    assert panel.columns == ["y", "x"]
    np.testing.assert_array_equal(panel.values[5:, 0], [10, 11, 12, 13, 14])


def test_leading_ends_counts_each_series_leading_rows():
    panel = build(hourly(n=5))  # two series of 5 rows: offsets 0, 5, 10
    assert panel.leading_ends().tolist() == [5, 10]
    before_holdout = np.array([True] * 3 + [False] * 2 + [False] * 5)  # none of the second
    assert panel.leading_ends(before_holdout).tolist() == [3, 5]
    assert panel.leading_ends(np.ones(10, dtype=bool)).tolist() == [5, 10]


def test_lazyframe_input_and_round_trip_to_frame():
    frame = hourly(n=4)
    panel = build(frame.lazy())
    back = panel.to_frame()
    assert back.columns == ["id", "t", "y"]
    assert back["y"].to_list() == frame["y"].to_list()
    assert back["t"].to_list() == frame["t"].to_list()


def test_single_series_without_id_column():
    frame = pl.DataFrame({"t": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
    panel = Panel.from_frame(frame, target="y", time_col="t")
    assert panel.n_series == 1
    assert panel.id_col is None
    assert panel.to_frame().columns == ["t", "y"]


def test_unsorted_input_is_sorted_not_rejected():
    frame = hourly(n=5).sample(fraction=1.0, shuffle=True, seed=3)
    panel = build(frame)
    np.testing.assert_array_equal(panel.values[:5, 0], [0, 1, 2, 3, 4])
    assert panel.time.is_sorted() or panel.n_series == 2


@pytest.mark.parametrize(
    ("ids", "dtype", "expected"),
    [
        (("z", "a", "m"), pl.String, ["a", "m", "z"]),
        ((10, 2, 1), pl.Int64, [1, 2, 10]),  # numeric order, not the text's
        (("z", "a", "m"), pl.Categorical, ["a", "m", "z"]),  # lexical, as DataFrame.sort
        (("z", "a", "m"), pl.Enum(["z", "m", "a"]), ["a", "m", "z"]),  # by text, as String
    ],
)
def test_series_come_in_ascending_id_order_whatever_the_frame_groups_them_in(ids, dtype, expected):
    # The same rows grouped in another order of series are the same panel: the windows are
    # numbered by series position, so the order would change the batches and the model.
    frame = pl.concat([hourly(ids=(i,), n=3) for i in ids]).with_columns(pl.col("id").cast(dtype))
    panel = build(frame, covariates="x")
    assert panel.keys["id"].to_list() == expected
    for shuffled in (frame.sample(fraction=1.0, shuffle=True, seed=1), frame.reverse()):
        again = build(shuffled, covariates="x")
        assert again.keys.equals(panel.keys)
        np.testing.assert_array_equal(again.values, panel.values)
        assert again.time.equals(panel.time)
    clean, _ = validate_frame(frame, target="y", time_col="t", id_col="id")
    assert clean["id"].to_list() == [i for i in expected for _ in range(3)]


def test_multivariate_targets_and_future_covariates_order():
    frame = hourly(n=4).with_columns(y2=pl.col("y") * 2, cal=pl.col("t").dt.hour().cast(pl.Float64))
    panel = build(frame, target=["y", "y2"], covariates="x", future_covariates="cal")
    assert panel.columns == ["y", "y2", "x", "cal"]
    assert (panel.n_targets, panel.n_future, panel.n_features) == (2, 1, 4)


def test_integer_values_and_bool_covariates_are_cast():
    frame = pl.DataFrame({"t": [1, 2, 3], "y": [1, 2, 3], "flag": [True, False, True]})
    panel = Panel.from_frame(frame, target="y", covariates="flag", time_col="t")
    assert panel.values.dtype == np.float32
    assert panel.values[:, 1].tolist() == [1.0, 0.0, 1.0]


# ---------------------------------------------------------------- frequency


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([dt.datetime(2024, 1, 1, 0, m) for m in range(0, 60, 15)], "15m"),
        ([dt.date(2024, 1, d) for d in range(1, 8)], "1d"),
        ([dt.date(2024, 1, 1) + dt.timedelta(weeks=w) for w in range(5)], "1w"),
        ([dt.date(2024, m, 1) for m in range(1, 8)], "1mo"),
        ([0, 5, 10, 15], "5i"),
    ],
)
def test_infer_frequency(times, expected):
    series = pl.Series(times)
    assert str(infer_frequency(series, np.array([0, len(times)]))) == expected


@pytest.mark.parametrize(
    ("every", "start", "zone", "expected"),
    [
        ("2mo", dt.datetime(2000, 1, 31), None, "2mo"),  # Jan 31, Mar 31, May 31, Jul 31, Sep 30
        ("4mo", dt.datetime(2000, 1, 1), None, "4mo"),
        ("6mo", dt.datetime(2000, 8, 31, 5), "Europe/Paris", "6mo"),  # was 4417h (DST)
        ("18mo", dt.datetime(2000, 2, 29), None, "18mo"),
        ("2y", dt.datetime(2000, 2, 29), None, "2y"),
        ("61d", dt.datetime(2000, 1, 1), None, "61d"),  # a steady 61 days drifts in the month
        ("184d", dt.datetime(2000, 1, 31), None, "184d"),
        ("1d", dt.datetime(2000, 3, 20, 5), "Europe/Paris", "1d"),  # was 25h-and-23h (DST)
    ],
)
def test_multi_month_steps_are_inferred_as_months(every, start, zone, expected):
    """Two-monthly, half-yearly and two-yearly data were inferred as 61d / 184d / 730d steps,
    and freq='auto' then refused their dates as off that grid."""
    times = pl.datetime_range(start, dt.datetime(2040, 1, 1), every, eager=True, time_zone=zone)
    times = times.gather([i for i in range(len(times)) if i % 7 != 3])  # gaps stay gaps
    assert str(infer_frequency(times.alias("t"), np.array([0, len(times)]))) == expected
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    assert str(validate_frame(frame, target="y", time_col="t", missing="ffill")[1]) == expected


@pytest.mark.parametrize("offsets", [[0, 5, 5], [0, 0, 5], [0, 2, 2, 5]])
@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_infer_frequency_takes_empty_series(offsets, zone):
    times = pl.Series("t", [dt.datetime(2024, 1, d) for d in range(1, 6)])
    times = times.dt.replace_time_zone(zone) if zone else times
    assert str(infer_frequency(times, np.array(offsets))) == "1d"  # was an IndexError


def test_infer_business_days():
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 2, 29), "1d", eager=True)
    frame = pl.DataFrame({"t": days}).filter(pl.col("t").dt.weekday() <= 5).with_columns(y=1.0)
    _, freq = validate_frame(frame, target="y", time_col="t")
    assert str(freq) == "1bd"


@pytest.mark.parametrize("step", [9, 700, 1001, 3300])
def test_nanosecond_steps_are_exact_integers(step):
    # 700 * 1e-3 us * 1000 was 700.0000000000001 ns: refused as "cannot be expressed in ns"
    times = pl.Series("t", np.arange(0, 50 * step, step)).cast(pl.Datetime("ns"))
    frame = pl.DataFrame({"t": times, "y": np.arange(50.0)})
    for freq in ("auto", f"{step}ns"):
        assert str(validate_frame(frame, target="y", time_col="t", freq=freq)[1]) == f"{step}ns"
    assert str(infer_frequency(times, np.array([0, 50]))) == f"{step}ns"  # 1001 was "1000ns"
    steps = [Frequency(n, "ns").step_in(pl.Datetime("ns")) for n in range(1, 5000)]
    assert steps == list(range(1, 5000))
    with pytest.raises(DataValidationError, match=r"700ns cannot be expressed .* \(us\)"):
        Frequency(700, "ns").step_in(pl.Datetime("us"))


def test_month_end_dates_are_regular_monthly():
    ends = [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 4, 30)]
    frame = pl.DataFrame({"t": ends, "y": [1.0, 2.0, 3.0, 4.0]})
    clean, freq = validate_frame(frame, target="y", time_col="t")
    assert str(freq) == "1mo"
    assert clean.height == 4


@pytest.mark.parametrize("bad", ["fortnightly", "0h", "-1d", 3.5])
def test_bad_frequency_string(bad):
    with pytest.raises(DataValidationError, match="freq"):
        validate_frame(hourly(), target="y", time_col="t", id_col="id", freq=bad)


def test_integer_freq_on_datetime_column_is_rejected():
    with pytest.raises(DataValidationError, match="does not fit"):
        validate_frame(hourly(), target="y", time_col="t", id_col="id", freq=1)


def test_frequency_parse_and_calendar_flag():
    assert Frequency.parse("1MO").is_calendar
    assert not Frequency.parse("2h").is_calendar
    assert Frequency.parse(3) == Frequency(3, "i")


# ---------------------------------------------------------------- validation errors


def test_missing_column_names_the_column_and_suggests():
    with pytest.raises(DataValidationError, match=r"no target column 'yy' \(did you mean 'y'\?\)"):
        build(hourly(), target="yy")


def test_missing_time_column():
    with pytest.raises(DataValidationError, match="no time column 'time'"):
        build(hourly(), time_col="time")


def test_column_in_two_roles():
    with pytest.raises(DataValidationError, match="both as target and as covariate"):
        build(hourly(), covariates="y")


def test_string_time_column_suggests_parsing():
    frame = hourly().with_columns(pl.col("t").dt.to_string())
    with pytest.raises(DataValidationError, match=r"must be Datetime.*str\.to_datetime"):
        build(frame)


def test_non_numeric_target():
    frame = hourly().with_columns(pl.col("y").cast(pl.String))
    with pytest.raises(DataValidationError, match="'y' must be numeric, got String"):
        build(frame)


def test_not_a_polars_frame():
    with pytest.raises(DataValidationError, match="must be a polars DataFrame or LazyFrame"):
        build({"t": [1], "y": [1.0]})


def test_empty_frame():
    with pytest.raises(DataValidationError, match="empty"):
        build(hourly().clear())


def test_null_ids_and_null_times():
    with pytest.raises(DataValidationError, match=r"null or NaN values.*series id"):
        build(hourly().with_columns(id=pl.when(pl.col("y") == 3).then(None).otherwise("id")))
    with pytest.raises(DataValidationError, match="Time column 't' has 1 null"):
        build(hourly().with_columns(t=pl.when(pl.col("y") == 3).then(None).otherwise("t")))


def test_duplicates_show_id_and_time():
    frame = pl.concat([hourly(), hourly().head(1)])
    with pytest.raises(DataValidationError, match=r"1 duplicate.*\('a', 2024-01-01 00:00:00\)"):
        build(frame)


def test_gap_is_an_error_by_default_and_names_the_place():
    frame = hourly(n=6).filter(~((pl.col("id") == "b") & (pl.col("y") == 13)))
    with pytest.raises(
        DataValidationError, match=r"1 time steps are missing.*'b'.*missing='ffill'"
    ):
        build(frame)


def test_off_grid_timestamp():
    frame = hourly(n=3).with_columns(
        t=pl.when(pl.col("y") == 1).then(pl.col("t") + pl.duration(minutes=30)).otherwise("t")
    )
    with pytest.raises(DataValidationError, match="off the regular 1h grid"):
        build(frame, freq="1h")


@pytest.mark.parametrize("value", [float("nan"), None])
def test_missing_values_error_by_default(value):
    frame = hourly().with_columns(y=pl.when(pl.col("y") == 2).then(value).otherwise("y"))
    with pytest.raises(DataValidationError, match=r"Missing values.*\{'y': 1\}.*'a'"):
        build(frame)


def test_infinite_values_are_always_an_error():
    frame = hourly().with_columns(x=pl.when(pl.col("y") == 2).then(float("inf")).otherwise("x"))
    with pytest.raises(DataValidationError, match="Infinite values in 'x'"):
        build(frame, covariates="x", missing="ffill")


def test_values_beyond_float32_range():
    frame = hourly().with_columns(y=pl.when(pl.col("y") == 2).then(1e300).otherwise("y"))
    with pytest.raises(DataValidationError, match="float32 range"):
        build(frame)


def test_unknown_missing_policy():
    with pytest.raises(
        DataValidationError,
        match="missing must be one of 'error', 'ffill', 'zero', 'interpolate', got 'drop'",
    ):
        build(hourly(), missing="drop")


# ---------------------------------------------------------------- missing-value policies


def with_gap_and_null() -> pl.DataFrame:
    frame = hourly(ids=("a",), n=6)
    frame = frame.filter(pl.col("y") != 3)  # a gap at hour 3
    return frame.with_columns(y=pl.when(pl.col("y") == 1).then(None).otherwise("y"))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("ffill", [0, 0, 2, 2, 4, 5]),
        ("zero", [0, 0, 2, 0, 4, 5]),
        ("interpolate", [0, 1, 2, 3, 4, 5]),
    ],
)
def test_fill_policies(policy, expected):
    panel = build(with_gap_and_null(), missing=policy)
    assert panel.values[:, 0].tolist() == expected
    assert panel.time.diff().drop_nulls().unique().to_list() == [dt.timedelta(hours=1)]


def test_leading_missing_rows_are_dropped_for_ffill():
    frame = hourly(ids=("a",), n=5).with_columns(
        y=pl.when(pl.col("y") < 2).then(None).otherwise("y")
    )
    with pytest.warns(ForecasterWarning, match="Dropped 2 leading rows"):
        panel = build(frame, missing="ffill")
    assert panel.values[:, 0].tolist() == [2, 3, 4]


@pytest.mark.parametrize("policy", ["ffill", "interpolate"])
def test_the_leading_rows_dropped_name_the_column_missing_there(policy):
    """A covariate recorded from the 4th row on drops the targets' first 3 rows too: the
    warning said "missing values" and no column, which read as missing targets."""
    frame = hourly(ids=("a",), n=6).with_columns(
        x=pl.when(pl.col("y") < 3).then(None).otherwise(pl.col("y") * 2)
    )
    with pytest.warns(ForecasterWarning, match=r"3 leading rows with missing values \(in 'x'\)"):
        panel = build(frame, missing=policy, covariates="x")
    assert panel.values[:, 0].tolist() == [3, 4, 5]


@pytest.mark.parametrize("policy", ["ffill", "interpolate"])
def test_a_series_with_no_complete_row_is_named_when_left_out(policy):
    """An all-null series vanished from the panel (and from fit and predict) under a warning
    about "leading rows" that did not say a whole series went."""
    frame = hourly(ids=("a", "b", "c"), n=4).with_columns(
        y=pl.when(pl.col("id") == "b").then(None).otherwise("y")
    )
    with pytest.warns(ForecasterWarning, match=r"1 series .* left out whole: \['b'\]"):
        panel = build(frame, missing=policy)
    assert panel.keys["id"].to_list() == ["a", "c"]


@pytest.mark.parametrize("policy", ["ffill", "zero", "interpolate"])
def test_a_target_missing_at_the_end_while_another_is_observed_is_named(policy):
    """Of targets a and b, b missing on the last 2 rows of series 'x' (a lagging feed): the
    policy made up b's last values, and its forecast started after them, without a word (the
    warning was for rows where every target is missing)."""
    frame = pl.DataFrame(
        {"id": ["x"] * 6 + ["z"] * 6, "t": list(range(6)) * 2, "a": [float(i) for i in range(12)]}
    ).with_columns(b=pl.when((pl.col("id") == "x") & (pl.col("t") >= 4)).then(None).otherwise("a"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_frame(frame, target=["a", "b"], time_col="t", id_col="id", missing=policy)
    messages = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    assert messages == [
        "1 series ends with rows that hold some targets but not 'b' (e.g. 'x', whose 'b' was "
        f"last observed at 3, its last row at 5): missing={policy!r} fills them, so the "
        "forecasts of 'b' start after made-up values, not after their last observed ones. "
        "Forecast from the last time every target is observed (predict(frame, cutoff=...), "
        "e.g. 3), or once their values are in."
    ]
    never = frame.with_columns(b=pl.when(pl.col("id") == "x").then(None).otherwise("a"))
    with pytest.warns(ForecasterWarning, match=r"e.g. 'x', whose 'b' has no value, its last"):
        validate_frame(never, target=["a", "b"], time_col="t", id_col="id", missing=policy)
    inside = frame.with_columns(b=pl.when(pl.col("t") == 2).then(None).otherwise("a"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)  # a gap inside: no warning
        validate_frame(inside, target=["a", "b"], time_col="t", id_col="id", missing=policy)


def _warned(frame: pl.DataFrame, ends: str = "frame", missing: str = "ffill") -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_frame_cells(
            frame, target=["a", "b"], time_col="t", id_col="id", missing=missing, ends=ends
        )
    return [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]


def test_the_cutoff_named_for_missing_ends_has_every_target_observed():
    """Series x ends with rows lacking both targets, a last observed at 5, b at 3: the warning
    named 5 as the cutoff to pass, where b is made up too. It names 3, the last time every
    target is observed; where there is none (b never observed in x), it says so and what to
    do, not a cutoff at which b is missing."""
    ids = ["x"] * 8 + ["z"] * 8
    a = [1.0] * 6 + [None] * 2 + [1.0] * 8
    frame = pl.DataFrame({"id": ids, "t": list(range(8)) * 2, "a": a})
    lagging = frame.with_columns(b=pl.Series([1.0] * 4 + [None] * 4 + [1.0] * 8))
    (told,) = _warned(lagging)
    assert "(e.g. 'x', last observed at 5)" in told, told
    assert told.endswith("pass predict a cutoff at which the targets are observed (e.g. 3), "
                         "or leave out the rows after it."), told  # fmt: skip
    (told,) = _warned(lagging, ends="training")
    assert told.endswith("(e.g. those of 'x' after 3)."), told
    never = frame.with_columns(b=pl.Series([None] * 8 + [1.0] * 8, dtype=pl.Float64))
    (told,) = _warned(never, missing="zero")  # ffill leaves x out whole: no row to fill from
    assert told.endswith(
        "No time of 'x' has every target observed ('b' is never observed there), so no cutoff "
        "starts a forecast after observed values only: pass the missing values, or leave the "
        "series out."
    ), told
    assert "e.g. 5" not in told
    at_x = pl.col("id") == "x"  # x's last row holds a, not b (last observed at 4, a not then)
    some = lagging.with_columns(
        a=pl.when(at_x & (pl.col("t") == 4)).then(None).otherwise(1.0),
        b=pl.when(at_x & (pl.col("t") > 4)).then(None).otherwise(1.0),
    )
    (told,) = _warned(some)
    assert "whose 'b' was last observed at 4" in told, told
    assert "(predict(frame, cutoff=...), e.g. 3)" in told, told


def test_a_past_covariate_missing_at_the_end_is_named_as_made_up_targets_are():
    """x's past covariate c is missing on its last two rows (its targets observed): missing=
    fills it, so what starts from the end reads made-up values of c, and no warning said so
    (only made-up targets were named). The same warning of the ends names it, with a cutoff
    at which every target and covariate is observed; a gap inside, or the end of a frame
    whose forecasts start at origins inside it, says nothing."""
    c = [1.0] * 6 + [None] * 2 + [1.0] * 8
    frame = pl.DataFrame({"id": ["x"] * 8 + ["z"] * 8, "t": list(range(8)) * 2, "a": 1.0, "c": c})

    def warned(data: pl.DataFrame, ends: str) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            options = {"target": "a", "covariates": "c", "time_col": "t", "id_col": "id"}
            validate_frame_cells(data, **options, missing="ffill", ends=ends)
        return [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]

    assert warned(frame, "frame") == [
        "1 series ends with rows whose covariates 'c' are missing (e.g. 'x', whose 'c' was last "
        "observed at 5, its last row at 7): missing='ffill' fills them, so the forecasts read "
        "made-up values of 'c' up to their origin, not observed ones. Forecast from the last "
        "time every target and covariate is observed (predict(frame, cutoff=...), e.g. 5), "
        "or once their values are in."
    ]
    (told,) = warned(frame, "training")
    assert "the model trains on made-up values of 'c' there" in told, told
    assert told.endswith("(those of 'x' after 5)."), told
    (told,) = warned(frame, "cutoff")
    assert told.startswith("1 series ends at the cutoff with rows whose covariates 'c' are")
    assert told.endswith("Pass a cutoff at which every target and covariate is observed (e.g. 5).")
    assert warned(frame, "origins") == []
    inside = frame.with_columns(c=pl.when(pl.col("t") == 7).then(1.0).otherwise("c"))
    assert warned(inside, "frame") == []  # x's c missing at 6 only: its last row observed


def test_a_made_up_row_is_named_once_not_again_for_its_covariates():
    """A row whose targets and past covariate are both made up (nulls at the end of x, or a
    cutoff of predict in a gap of its rows) was named twice: by the warning of made-up
    targets and again by that of made-up covariates, for the one cause. The covariates'
    warning names a covariate only where the targets are observed, or where it is missing
    since before the targets' last complete row (whose cutoff the targets' warning names):
    there it names the earlier cutoff at which every target and covariate is observed."""

    def warned(action) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            action()
        return [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]

    options = {"target": "a", "covariates": "c", "time_col": "t", "id_col": "id"}
    late = [1.0] * 6 + [None] * 2 + [1.0] * 8
    both = pl.DataFrame(
        {"id": ["x"] * 8 + ["z"] * 8, "t": list(range(8)) * 2, "a": late, "c": late}
    )
    (told,) = warned(lambda: validate_frame_cells(both, **options, missing="ffill", ends="frame"))
    assert told.startswith("1 series ends with rows whose targets are missing"), told
    gap = pl.DataFrame({"id": "x", "t": [0, 1, 2, 3, 6, 7, 8], "a": 1.0, "c": 2.0})
    panel = Panel.from_frame(gap, **options, missing="ffill", freq=1)
    at_five = (np.array([0]), np.array([5]))  # the origin at 5, in the gap
    (told,) = warned(lambda: warn_made_up_origins(panel, gap, *at_five, "ffill"))
    assert told.startswith("1 forecast origin of 1 series lies at rows whose targets are"), told
    earlier = both.with_columns(c=pl.when(pl.col("t") >= 3).then(None).otherwise("c"))
    (covariates, targets) = warned(
        lambda: validate_frame_cells(earlier, **options, missing="ffill", ends="frame")
    )  # c of x (and z) missing since 3, before x's targets' last complete row, 5
    assert covariates.startswith("1 series ends with rows whose covariates 'c' are missing (e.g. "
                                 "'z', whose 'c' was last observed at 2"), covariates  # fmt: skip
    assert "'x'" not in covariates, covariates  # x is named once, by its targets' warning
    assert targets == (
        "1 series ends with rows whose targets are missing (e.g. 'x', last observed at 5) and "
        "whose covariates 'c' are missing since before that (its 'c' was last observed at 2): "
        "missing='ffill' fills them, so a forecast from these data starts after made-up "
        "values, not after the last observed one. To forecast from the last observed value, "
        "pass predict a cutoff at which every target and covariate is observed (e.g. 2), or "
        "leave out the rows after it."
    )


def test_a_row_lacking_targets_and_covariates_is_named_in_one_warning_naming_both():
    """Series x's targets and its past covariate c are missing at its end, c since before
    the last time every target was observed (3, against 5): the row got two warnings, one
    of made-up targets (naming 5, where c is made up too) and one of made-up covariates. It
    gets one, naming both and a cutoff at which every target and covariate is observed;
    so does a row that holds some targets but not others, and an origin in a backtest."""
    ids = ["x"] * 8 + ["z"] * 8
    a = [1.0] * 6 + [None] * 2 + [1.0] * 8
    c = [1.0] * 3 + [None] * 5 + [1.0] * 8
    frame = pl.DataFrame({"id": ids, "t": list(range(8)) * 2, "a": a, "b": 1.0, "c": c})
    options = {"covariates": "c", "time_col": "t", "id_col": "id", "missing": "ffill"}
    for ends in ("frame", "training", "cutoff"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            validate_frame_cells(frame, target="a", **options, ends=ends)
        (told,) = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
        assert "whose targets are missing" in told and "covariates 'c' are missing" in told
        assert "every target and covariate is observed (e.g. 2)" in told or (
            ends == "training" and told.endswith("(e.g. those of 'x' after 2).")
        ), told
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_frame_cells(frame, target=["b", "a"], **options)
    (told,) = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    assert told.startswith("1 series ends with rows that hold some targets but not 'a' (e.g. "
                           "'x', whose 'a' was last observed at 5, its last row at 7) and whose "
                           "covariates 'c' are missing since before that"), told  # fmt: skip
    assert told.endswith("every target and covariate is observed (predict(frame, cutoff=...), "
                         "e.g. 2), or once their values are in."), told  # fmt: skip


@pytest.mark.parametrize("policy", ["ffill", "interpolate", "zero"])
def test_a_future_covariate_made_up_at_the_origin_is_named(policy):
    """x's future covariate f is missing on its last row (its target observed), or at an
    origin of predict's cutoffs: missing= made it up, and the forecast reads it (the encoder
    reads the future covariates up to the origin, as it reads the past ones), yet only past
    covariates were named. The one warning of made-up ends names it, as a past covariate."""
    f = [1.0] * 7 + [None] + [1.0] * 8
    frame = pl.DataFrame({"id": ["x"] * 8 + ["z"] * 8, "t": list(range(8)) * 2, "a": 1.0, "f": f})
    options = {"target": "a", "future_covariates": "f", "time_col": "t", "id_col": "id"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        validate_frame_cells(frame, **options, missing=policy, ends="frame")
    told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    assert told == [
        "1 series ends with rows whose covariates 'f' are missing (e.g. 'x', whose 'f' was last "
        f"observed at 6, its last row at 7): missing={policy!r} fills them, so the forecasts "
        "read made-up values of 'f' up to their origin, not observed ones. Forecast from the "
        "last time every target and covariate is observed (predict(frame, cutoff=...), e.g. "
        "6), or once their values are in."
    ]
    inside = frame.with_columns(f=pl.when(pl.col("t") == 4).then(None).otherwise(1.0))
    panel = Panel.from_frame(inside, **options, missing=policy, freq=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_made_up_origins(panel, inside, np.array([0, 1]), np.array([4, 8 + 5]), policy)
    (told,) = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    origin = "(e.g. 'x' at 4, whose 'f' was last observed at 3)"
    assert told.startswith(f"1 forecast origin of 1 series lies at rows whose covariates 'f' "
                           f"are missing {origin}"), told  # fmt: skip


@pytest.mark.parametrize("policy", ["ffill", "interpolate", "zero"])
def test_a_series_whose_covariate_is_never_observed_is_told_what_its_policy_does(policy):
    """x's past covariate c is null on every row. ffill and interpolate leave x out whole
    (no complete row to fill from, as their own warning says), yet the warning of made-up
    covariates said "the forecasts read made-up values of 'c'" of a series with no
    forecast. It names such a series only for missing="zero", which fills c with zeros."""
    frame = pl.DataFrame(
        {
            "id": ["x"] * 8 + ["z"] * 8,
            "t": list(range(8)) * 2,
            "a": 1.0,
            "c": [None] * 8 + [1.0] * 8,
        }
    )
    options = {"target": "a", "covariates": "c", "time_col": "t", "id_col": "id"}
    for ends in ("frame", "training"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            validate_frame_cells(frame, **options, missing=policy, ends=ends)
        told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
        covariates = [m for m in told if "whose covariates 'c' are missing" in m]
        if policy == "zero":
            assert len(covariates) == 1 and "No time of 'x' has every target and" in covariates[0]
        else:
            assert covariates == [], covariates
            assert any("are left out whole: ['x']" in m for m in told), told


@pytest.mark.parametrize("policy", ["ffill", "interpolate", "zero"])
def test_a_series_with_no_observed_target_is_not_said_to_be_filled_after_its_last(policy):
    """An all-null series was named by the trailing-rows warning as filled after its last
    observation, "last observed at None", while ffill and interpolate left it out whole."""
    frame = hourly(ids=("a", "b"), n=4).with_columns(
        y=pl.when(pl.col("id") == "b").then(None).otherwise("y")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(frame, missing=policy)
    messages = [str(w.message) for w in caught]
    assert not any("None" in m for m in messages), messages
    trailing = [m for m in messages if "targets are missing" in m or "No target is" in m]
    if policy == "zero":  # b is zeros throughout: filled, and said to be (no cutoff to name)
        assert trailing == [
            "No target is observed in 1 series (e.g. 'b'): missing='zero' fills every target "
            "there with 0, so its forecasts start from made-up zeros. Leave it out, or pass its "
            "target values."
        ], messages
    else:  # b is left out whole, which the leading-rows warning says
        assert trailing == [], messages


def test_business_day_gaps_are_filled_on_the_business_grid():
    days = [dt.date(2024, 1, 5), dt.date(2024, 1, 9), dt.date(2024, 1, 10)]  # Mon 8th missing
    frame = pl.DataFrame({"t": days, "y": [1.0, 3.0, 4.0]})
    clean, _ = validate_frame(frame, target="y", time_col="t", freq="1bd", missing="ffill")
    assert clean["t"].to_list() == [dt.date(2024, 1, d) for d in (5, 8, 9, 10)]
    assert clean["y"].to_list() == [1.0, 1.0, 3.0, 4.0]


# ---------------------------------------------------------------- short series


def test_short_series_are_dropped_with_a_warning_naming_them():
    frame = pl.concat([hourly(ids=("long",), n=10), hourly(ids=("tiny",), n=3)])
    with pytest.warns(ForecasterWarning, match=r"Dropped 1 series shorter than 5 rows.*'tiny'"):
        panel = build(frame, min_length=5)
    assert panel.keys["id"].to_list() == ["long"]
    assert panel.offsets.tolist() == [0, 10]


def test_all_series_too_short_is_an_error():
    with pytest.raises(DataValidationError, match="Every series is shorter than the 50 rows"):
        build(hourly(n=6), min_length=50)


def test_select_series_keeps_the_rows_times_statics_and_filled_cells_of_its_series():
    """One mechanism drops series: from_frame(min_length=...) is from_frame() then
    select_series of the series long_enough keeps (fit reads the frame once that way)."""
    from forecaster.data.checks import long_enough

    frame = pl.DataFrame(
        {
            "id": ["a"] * 4 + ["b"] * 2 + ["c"] * 5,
            "t": [0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4],
            "y": [1.0, None, 3.0, 4.0, 5.0, 6.0, 7.0, None, None, 10.0, 11.0],
            "g": ["x"] * 4 + ["y"] * 2 + ["z"] * 5,
        }
    )
    options = dict(target="y", time_col="t", id_col="id", missing="interpolate")
    options["static_covariates"] = "g"
    whole = Panel.from_frame(frame, **options)
    with pytest.warns(ForecasterWarning, match=r"Dropped 1 series shorter than 3 rows \(r\)"):
        dropped = Panel.from_frame(frame, **options, min_length=3, length_reason="r")
    with pytest.warns(ForecasterWarning, match=r"Dropped 1 series shorter than 3 rows \(r\)"):
        kept = long_enough(whole.lengths, whole.keys["id"], 3, "r")
    assert kept.tolist() == [True, False, True]
    selected = whole.select_series(kept)
    for panel in (dropped, selected):
        assert panel.keys["id"].to_list() == ["a", "c"]
        assert panel.offsets.tolist() == [0, 4, 9]
        assert panel.time.to_list() == [0, 1, 2, 3, 0, 1, 2, 3, 4]
        assert panel.values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 9.0, 10.0, 11.0]
        assert panel.interpolated[:, 0].tolist() == [0, 1, 0, 0, 0, 1, 1, 0, 0]
        assert panel.statics["g"].to_list() == ["x", "z"]
        # an origin inside c's filled run sees its last observed value (the runs moved)
        rows = np.arange(4, 9)
        assert panel.known_values(rows, np.array(5))[:, 0].tolist() == [7.0, 7.0, 9, 10, 11]
    assert whole.select_series(np.ones(3, dtype=bool)) is whole
    assert whole.select_series(np.array([False, True, False])).interpolated is None
    for junk in (np.array([1, 0, 1]), np.array([True, False])):
        with pytest.raises(DataValidationError, match=r"one bool per series \(3\)"):
            whole.select_series(junk)


def test_values_on_cpu_shares_memory():
    panel = build(hourly())
    tensor = panel.values_on("cpu")
    assert tensor.data_ptr() == panel.values.ctypes.data
    assert panel.values_on("cpu") is tensor


# ---------------------------------------------------------------- fuzzing with hypothesis

_TZ = (None, "UTC", "Europe/Paris", "America/New_York")
_FUZZ_FREQS = ("auto", None, "1i", "2i", "1d", "1h", "15m", "1bd", "1mo", "1w", "xyz", 0, 3, 1.5)
_FUZZ_MISSING = ("error", "ffill", "zero", "interpolate", "drop")


def _fuzz_value_column(draw, st, n: int, tame: bool) -> pl.Series:
    """A value column of a random dtype with hostile values (NaN, inf, huge, null, text)."""
    kinds = ["float64", "float32", "int64", "int8", "uint64", "bool"]
    kinds += ["text", "null", "date", "decimal", "categorical", "list", "duration"]
    kind = draw(st.sampled_from(kinds[:6] if tame else kinds))
    nullable = draw(st.booleans()) and not (tame and draw(st.booleans()))

    def maybe_null(values: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(values, st.none()) if nullable else values

    if kind in ("float64", "float32"):
        width = 64 if kind == "float64" else 32
        hostile = st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=width),
            st.sampled_from([0.0, 1.0, -1.0, 3.5e38, -1e300, 1e-300]),
        )
        finite = st.floats(-(2.0**100), 2.0**100, width=width)
        elements = maybe_null(finite if tame else hostile)
        dtype = pl.Float64 if kind == "float64" else pl.Float32
        values = draw(st.lists(elements, min_size=n, max_size=n))
        if kind == "float32":
            values = [
                v if v is None or abs(v) <= 3.4e38 or v != v else float("inf") for v in values
            ]
        return pl.Series(values, dtype=dtype)
    if kind == "int64":
        values = draw(
            st.lists(maybe_null(st.integers(-(2**63), 2**63 - 1)), min_size=n, max_size=n)
        )
        return pl.Series(values, dtype=pl.Int64)
    if kind == "int8":
        values = draw(st.lists(maybe_null(st.integers(-128, 127)), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.Int8)
    if kind == "uint64":
        values = draw(st.lists(maybe_null(st.integers(0, 2**64 - 1)), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.UInt64)
    if kind == "bool":
        return pl.Series(draw(st.lists(maybe_null(st.booleans()), min_size=n, max_size=n)))
    if kind == "text":
        words = st.one_of(st.sampled_from(["12.5", "n/a", "", "1e5", "NaN", "-3"]), st.text())
        values = draw(st.lists(maybe_null(words), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.String)
    if kind == "date":
        values = draw(st.lists(maybe_null(st.dates()), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.Date)
    if kind == "decimal":
        values = draw(st.lists(maybe_null(st.integers(-(10**17), 10**17)), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.Int64).cast(pl.Decimal(20, 2))
    if kind == "categorical":
        values = draw(
            st.lists(maybe_null(st.sampled_from(["1", "x", "2.5"])), min_size=n, max_size=n)
        )
        return pl.Series(values, dtype=pl.Categorical)
    if kind == "list":
        return pl.Series(draw(st.lists(st.lists(st.integers(0, 9)), min_size=n, max_size=n)))
    if kind == "duration":
        days = st.timedeltas(dt.timedelta(days=-(10**5)), dt.timedelta(days=10**5))
        values = draw(st.lists(maybe_null(days), min_size=n, max_size=n))
        return pl.Series(values, dtype=pl.Duration("us"))
    return pl.Series([None] * n, dtype=pl.Null)


def _fuzz_time_column(draw, st, series_lengths: list[int], tame: bool) -> pl.Series:
    """Times of every series: mostly a regular grid with gaps and shuffles, sometimes junk."""
    n = sum(series_lengths)
    kinds = ["int", "date", "datetime", "uint64", "float", "text", "random", "duration", "time"]
    kind = draw(st.sampled_from(kinds[:4] if tame else kinds))
    if kind == "float":
        return pl.Series(draw(st.lists(st.floats(), min_size=n, max_size=n)), dtype=pl.Float64)
    if kind == "text":
        return pl.Series(draw(st.lists(st.text(max_size=5), min_size=n, max_size=n)))
    if kind == "duration":
        days = st.timedeltas(dt.timedelta(days=-(10**5)), dt.timedelta(days=10**5))
        return pl.Series(draw(st.lists(days, min_size=n, max_size=n)), dtype=pl.Duration("us"))
    if kind == "time":
        return pl.Series(draw(st.lists(st.times(), min_size=n, max_size=n)), dtype=pl.Time)
    if kind == "random":
        values = draw(
            st.lists(st.integers(-(2**63), 2**63 - 1) | st.none(), min_size=n, max_size=n)
        )
        return pl.Series(values, dtype=pl.Int64)
    step = draw(st.integers(1, 5))
    positions: list[int] = []
    for length in series_lengths:
        grid = draw(
            st.lists(st.integers(0, 3 * length + 2), min_size=length, max_size=length, unique=True)
        )
        if draw(st.booleans()):
            grid = list(range(length))  # no gaps
        positions.extend(grid)
    if not tame and draw(st.booleans()) and positions:  # a duplicate time
        positions[-1] = positions[0]
    if kind in ("int", "uint64"):
        start = draw(st.sampled_from([0, -5, 10**6, 2**62]))
        values = [start + step * p for p in positions]
        if kind == "uint64":
            values = [abs(v) for v in values]
            return pl.Series(values, dtype=pl.UInt64)
        return pl.Series(values, dtype=pl.Int64)
    if kind == "date":
        start = draw(st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1)))
        unit = draw(st.sampled_from(["days", "weeks", "months"]))
        if unit == "months":
            values = [
                dt.date(
                    start.year + (start.month - 1 + step * p) // 12,
                    (start.month - 1 + step * p) % 12 + 1,
                    1,
                )
                for p in positions
            ]
        else:
            values = [start + dt.timedelta(**{unit: step * p}) for p in positions]
        return pl.Series(values, dtype=pl.Date)
    start = draw(st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)))
    delta = draw(
        st.sampled_from([dt.timedelta(minutes=15), dt.timedelta(hours=1), dt.timedelta(days=1)])
    )
    values = [start + step * p * delta for p in positions]
    series = pl.Series(values, dtype=pl.Datetime(draw(st.sampled_from(["us", "ns", "ms"]))))
    tz = draw(st.sampled_from(_TZ))
    if tz is not None:
        series = series.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    return series


def _fuzz_case(draw, st):
    tame = draw(st.booleans())  # half the cases are plausible frames, to get past the checks
    n_series = draw(st.integers(1 if tame else 0, 4))
    lengths = draw(st.lists(st.integers(1, 12), min_size=n_series, max_size=n_series))
    n = sum(lengths)
    n_values = draw(st.integers(1, 4))
    columns = {f"v{i}": _fuzz_value_column(draw, st, n, tame) for i in range(n_values)}
    columns["t"] = _fuzz_time_column(draw, st, lengths, tame)
    id_kinds = ["none", "text", "int", "bool", "null", "float", "categorical", "date", "list"]
    id_kind = draw(st.sampled_from(id_kinds[:3] if tame else id_kinds))
    if id_kind != "none":
        keys = [k for k, length in enumerate(lengths) for _ in range(length)]
        if id_kind == "text":
            ids = pl.Series([f"s{k}" for k in keys], dtype=pl.String)
        elif id_kind == "int":
            ids = pl.Series(keys, dtype=pl.Int64)
        elif id_kind == "bool":
            ids = pl.Series([k % 2 == 0 for k in keys], dtype=pl.Boolean)
        elif id_kind == "float":
            ids = pl.Series([float("nan") if k == 1 else float(k) for k in keys])
        elif id_kind == "categorical":
            ids = pl.Series([f"c{k}" for k in keys], dtype=pl.Categorical)
        elif id_kind == "date":
            ids = pl.Series([dt.date(2000, 1, 1 + k) for k in keys], dtype=pl.Date)
        elif id_kind == "list":
            ids = pl.Series([[k, k] for k in keys], dtype=pl.List(pl.Int64))
        else:
            ids = pl.Series([None if k == 0 else k for k in keys], dtype=pl.Int64)
        columns["id"] = ids
    frame = pl.DataFrame(columns)
    if n and draw(st.booleans()):
        frame = frame.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 99)))
    names = [f"v{i}" for i in range(n_values)]
    chosen = draw(st.permutations(names))
    n_targets = draw(st.integers(1 if tame else 0, len(chosen)))
    targets = list(chosen[:n_targets]) or draw(st.sampled_from([[], ["nope"], "v0"]))
    rest = list(chosen[n_targets:])
    split = draw(st.integers(0, len(rest)))
    params = {
        "target": targets,
        "time_col": "t" if tame else draw(st.sampled_from(["t", "t", "v0", "missing_t"])),
        "id_col": None
        if id_kind == "none"
        else "id"
        if tame
        else draw(st.sampled_from(["id", "t"])),
        "covariates": rest[:split] or None,
        "future_covariates": rest[split:] or None,
        "freq": "auto" if tame and draw(st.booleans()) else draw(st.sampled_from(_FUZZ_FREQS)),
        "missing": draw(st.sampled_from(_FUZZ_MISSING[: 4 if tame else 5])),
    }
    lazy = draw(st.booleans())
    return (frame.lazy() if lazy else frame), params, draw(st.integers(1, 5))


def test_hostile_fuzzed_frames_are_accepted_or_rejected_with_our_error():
    """Random schemas and values: validation accepts the frame or raises DataValidationError.

    Any other exception type (a Polars ComputeError, a numpy OverflowError, a KeyError ...)
    fails the test. Accepted frames come back clean: sorted, float32, finite, no nulls.
    """
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    outcomes = {"accepted": 0, "rejected": 0}

    @hypothesis.settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(st.data())
    def check(data) -> None:
        frame, params, min_length = _fuzz_case(data.draw, st)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)
            try:
                clean, freq = validate_frame(frame, **params)
                panel = Panel.from_frame(frame, **params, min_length=min_length)
            except DataValidationError as exc:
                assert str(exc)
                outcomes["rejected"] += 1
                return
        outcomes["accepted"] += 1
        assert isinstance(freq, Frequency)
        value_cols = clean.columns[2:]
        assert all(clean.schema[c] == pl.Float32 for c in value_cols)
        assert clean.select(pl.col(value_cols).null_count().sum()).sum_horizontal().item() == 0
        assert np.isfinite(clean.select(value_cols).to_numpy()).all()
        id_name, time_name = clean.columns[:2]
        runs = clean[id_name].rle()
        assert runs.struct.field("value").n_unique() == runs.len()  # one block per series
        steps = clean.select(pl.col(time_name).to_physical().diff().over(id_name)).to_series()
        assert (steps.drop_nulls() > 0).all()  # strictly increasing times within a series
        assert panel.values.dtype == np.float32
        assert panel.values.shape[1] == len(value_cols)
        assert np.isfinite(panel.values).all()
        assert panel.offsets[-1] == panel.values.shape[0] == panel.time.len()
        assert (panel.lengths >= min_length).all()

    check()
    assert outcomes["accepted"] > 0 and outcomes["rejected"] > 0, outcomes


def test_calendar_values_encode_each_cycle_position():
    from datetime import date, datetime

    from forecaster.data.calendar import calendar_values

    times = pl.Series([datetime(2024, 1, 1, 0), datetime(2024, 1, 3, 12), datetime(2024, 7, 1, 18)])
    values = calendar_values(times, ["hour", "dayofweek", "month"])
    angle = np.arctan2(values[:, 0::2], values[:, 1::2]) % (2 * np.pi) / (2 * np.pi)
    np.testing.assert_allclose(angle[:, 0], [0.0, 0.5, 0.75], atol=1e-6)  # time of day
    # 2024-01-01 is a Monday: day of week from Monday 00:00, hours included
    np.testing.assert_allclose(angle[:, 1], [0.0, 2.5 / 7, 0.75 / 7], atol=1e-6)
    np.testing.assert_allclose(angle[:, 2], [0.0, 0.0, 6 / 12], atol=1e-6)
    days = calendar_values(pl.Series([date(2024, 12, 31), date(2023, 12, 31)]), ["dayofyear"])
    np.testing.assert_allclose(
        np.arctan2(days[:, 0], days[:, 1]) % (2 * np.pi) / (2 * np.pi),
        [365 / 366, 364 / 365],
        atol=1e-6,
    )


def test_calendar_features_auto_follows_the_frequency():
    from forecaster.data.calendar import calendar_features

    dtype = pl.Datetime("us")
    assert calendar_features("auto", Frequency.parse("15m"), dtype) == ("hour", "dayofweek")
    assert calendar_features("auto", Frequency.parse("1bd"), pl.Date) == ("dayofweek", "dayofyear")
    assert calendar_features("auto", Frequency.parse("1mo"), pl.Date) == ("month",)
    assert calendar_features(None, Frequency.parse("1h"), pl.Int64) == ()


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        (("1d", "24h", "1440m"), ("dayofweek", "dayofyear")),
        (("1w", "7d", "168h"), ("dayofyear",)),
        (("1q", "3mo"), ("month",)),
    ],
)
def test_calendar_features_auto_is_the_same_for_every_spelling_of_a_step(spellings, expected):
    from forecaster.data.calendar import calendar_features

    for spelling in spellings:
        assert calendar_features("auto", Frequency.parse(spelling), pl.Date) == expected, spelling


def test_calendar_features_count_business_days_by_the_calendar_days_they_span():
    from forecaster.data.calendar import calendar_features

    # Five business days later is the same weekday: "5bd" is a week, like "1w"
    for freq in ("1bd", "2bd", "4bd"):
        expected = ("dayofweek", "dayofyear")
        assert calendar_features("auto", Frequency.parse(freq), pl.Date) == expected, freq
    for freq in ("5bd", "10bd", "1w"):
        assert calendar_features("auto", Frequency.parse(freq), pl.Date) == ("dayofyear",), freq
    # the advice names what "auto" gives, without the feature refused
    refused = r"'dayofweek' repeats every week.* every 5bd.* calendar='auto' \(\('dayofyear',\) "
    with pytest.raises(DataValidationError, match=refused):
        calendar_features(["dayofweek"], Frequency.parse("5bd"), pl.Date)
    assert calendar_features(["dayofweek"], Frequency.parse("4bd"), pl.Date) == ("dayofweek",)


def test_yearly_steps_spelled_in_months_get_no_constant_month_feature():
    from forecaster.data.calendar import calendar_features

    # 12 x 28 days passed the month's "shorter than a year" check: a constant feature
    with pytest.raises(DataValidationError, match="finds no calendar feature"):
        calendar_features("auto", Frequency.parse("12mo"), pl.Date)
    with pytest.raises(DataValidationError, match="'month' repeats every year"):
        calendar_features(["month"], Frequency.parse("12mo"), pl.Date)


def test_canonical_frequency_names_a_step_in_its_largest_whole_unit():
    from forecaster.data.frequency import canonical_frequency

    spelled = {f: str(canonical_frequency(Frequency.parse(f))) for f in ("24h", "7d", "14d", "3mo")}
    assert spelled == {"24h": "1d", "7d": "1w", "14d": "2w", "3mo": "1q"}
    assert str(canonical_frequency(Frequency.parse("8mo"))) == "8mo"  # no whole quarter
    assert str(canonical_frequency(Frequency.parse("4q"))) == "1y"
    assert str(canonical_frequency(Frequency.parse("1bd"))) == "1bd"


# ---------------------------------------------------------------- hostile and broken input
# Each test is a row of the README's "Hostile and broken input" table.


def test_hostile_empty_file_read_lazily(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match=r"Cannot read the lazy frame's schema: empty"):
        validate_frame(pl.scan_csv(tmp_path / "empty.csv"), target="y", time_col="t")


def test_hostile_header_only_file(tmp_path):
    (tmp_path / "header.csv").write_text("t,y\n")
    frame = pl.read_csv(tmp_path / "header.csv")
    with pytest.raises(DataValidationError, match=r"empty \(0 rows; columns 't', 'y'\).*header"):
        validate_frame(frame, target="y", time_col="t")
    with pytest.raises(DataValidationError, match=r"The frame is empty \(0 rows\)"):
        validate_frame(
            pl.scan_csv(tmp_path / "header.csv", schema_overrides={"t": pl.Int64, "y": pl.Float64}),
            target="y",
            time_col="t",
        )


def test_hostile_wrong_delimiter_is_named(tmp_path):
    (tmp_path / "semi.csv").write_text("t;y\n1;1.5\n2;2.5\n3;3.5\n")
    frame = pl.read_csv(tmp_path / "semi.csv")  # read as comma-separated: one column "t;y"
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="y", time_col="t")
    message = str(info.value)
    assert "no target column 'y'" in message
    assert "Available columns: 't;y'" in message
    assert "separator=';'" in message
    clean, _ = validate_frame(
        pl.read_csv(tmp_path / "semi.csv", separator=";"), target="y", time_col="t"
    )
    assert clean["y"].to_list() == [1.5, 2.5, 3.5]


def test_hostile_mixed_types_in_a_numeric_column(tmp_path):
    (tmp_path / "mixed.csv").write_text("t,y\n1,12.5\n2,n/a\n3,3\n4,oops\n5,5\n")
    frame = pl.read_csv(tmp_path / "mixed.csv")
    assert frame.schema["y"] == pl.String
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="y", time_col="t")
    message = str(info.value)
    assert "'y' must be numeric, got String with values that are not numbers" in message
    assert "'n/a', 'oops'" in message and "'12.5'" not in message
    assert "null_values=" in message
    # The documented fix: declare the placeholders as missing and choose a policy.
    fixed = pl.read_csv(tmp_path / "mixed.csv", null_values=["n/a", "oops"])
    clean, _ = validate_frame(fixed, target="y", time_col="t", missing="interpolate")
    assert clean["y"].to_list() == [12.5, 7.75, 3.0, 4.0, 5.0]


def test_hostile_non_monotonic_timestamps_are_sorted():
    frame = hourly(n=8)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    assert not shuffled.equals(frame)
    panel = build(shuffled, covariates="x")
    expected = build(frame, covariates="x")
    np.testing.assert_array_equal(panel.values, expected.values)
    assert panel.time.equals(expected.time)


def test_hostile_duplicate_timestamps_are_an_error_naming_them():
    frame = pl.concat([hourly(n=4), hourly(n=4).filter(pl.col("id") == "b").tail(2)])
    with pytest.raises(DataValidationError) as info:
        build(frame)
    message = str(info.value)
    assert "2 duplicate (id, time) rows" in message
    assert "('b', 2024-01-01 02:00:00)" in message and "unique(" in message


def test_a_panel_read_without_id_col_is_told_to_pass_id_col_first():
    """Three stores fitted without id_col: "6 duplicate (time) rows ... Aggregate or drop
    duplicates first, e.g. frame.unique(subset=[...], keep='last')", which kept one store per
    time and mixed the stores into one series without a word. The message asks for id_col
    first, naming the columns that split the rows into series with one row per time."""
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 3), "1d", eager=True)
    stores = [pl.DataFrame({"store": s, "code": k, "t": days}) for k, s in enumerate("abc")]
    frame = pl.concat(stores).with_columns(
        y=pl.int_range(pl.len()).cast(pl.Float64),
        batch=pl.lit(7),
        region=pl.lit("north"),
        row=pl.int_range(pl.len()),  # unique per row: not a series' name
    )
    for source in (frame, frame.lazy()):
        with pytest.raises(DataValidationError) as info:
            validate_frame(source, target="y", time_col="t")
        message = str(info.value)
        assert message.startswith("6 duplicate (time) rows"), message
        asked = message.index("pass id_col='store' or id_col='code': each of their values split")
        assert asked < message.index("unique(subset=['t']"), message
    alone = frame.select("t", "y")  # no column names the series: the hint says what to pass
    with pytest.raises(DataValidationError, match=r"pass id_col=<the column that names the s"):
        validate_frame(alone, target="y", time_col="t")
    with pytest.raises(DataValidationError, match=r"duplicate \(id, time\) rows.*Aggregate"):
        validate_frame(pl.concat([frame, frame]), target="y", time_col="t", id_col="store")


def test_repeated_times_of_a_dst_fall_back_hour_advise_localising_not_an_id():
    """A meter in naive local time with a DST flag repeats 02:00 on the autumn change (1
    duplicate of 265 rows): the advice was "pass id_col='dst'", which fits two fake series.
    It names the repeated hour and how to localise the times."""
    utc = pl.datetime_range(
        dt.datetime(2024, 10, 20), dt.datetime(2024, 10, 31), "1h", time_zone="UTC", eager=True
    )
    local = utc.dt.convert_time_zone("Europe/Berlin")
    frame = pl.DataFrame(
        {
            "ts": local.dt.replace_time_zone(None),
            "dst": (local.dt.dst_offset().dt.total_seconds() > 0).cast(pl.Int8),
            "kw": np.sin(np.arange(len(utc)) / 4.0),
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="kw", time_col="ts")
    message = str(info.value)
    assert message.startswith("1 duplicate (time) rows, e.g. (ts=2024-10-27 02:00:00)"), message
    assert "They fall on 2024-10-27 between 02:00 and 03:00: the hour that clocks repeat" in message
    assert "daylight saving time ends (in Europe/Berlin and " in message, message
    assert ".dt.replace_time_zone('Europe/Berlin', ambiguous=pl.when(" in message, message
    assert "id_col='dst'" not in message and "e.g. 'dst'" in message, message
    recipe = pl.when(pl.col("ts").is_first_distinct()).then(pl.lit("earliest"))
    localised = frame.with_columns(
        pl.col("ts").dt.replace_time_zone(
            "Europe/Berlin", ambiguous=recipe.otherwise(pl.lit("latest"))
        )
    )
    assert validate_frame(localised, target="kw", time_col="ts")[0].height == frame.height
    # a panel of such meters: the first of each repeated time is counted per series
    panel = pl.concat([frame.with_columns(id=pl.lit(key)) for key in ("m1", "m2")])
    with pytest.raises(DataValidationError) as info:
        validate_frame(panel, target="kw", time_col="ts", id_col="id")
    message = str(info.value)
    assert message.startswith("2 duplicate (id, time) rows"), message
    assert "pl.when(pl.col('ts').is_first_distinct().over('id'))" in message, message
    per_series = pl.when(pl.col("ts").is_first_distinct().over("id")).then(pl.lit("earliest"))
    localised = panel.with_columns(
        pl.col("ts").dt.replace_time_zone(
            "Europe/Berlin", ambiguous=per_series.otherwise(pl.lit("latest"))
        )
    )
    assert validate_frame(localised, target="kw", time_col="ts", id_col="id")[0].height == 2 * (
        frame.height
    )


@pytest.mark.parametrize(
    ("zone", "start", "hour"),
    [
        ("America/Santiago", dt.datetime(2024, 4, 1), "2024-04-06 between 23:00 and 24:00"),
        ("Africa/Cairo", dt.datetime(2024, 10, 25), "2024-10-31 between 23:00 and 24:00"),
    ],
)
def test_a_fall_back_hour_that_is_not_early_on_a_sunday_is_named(zone, start, hour):
    """Chile's clocks repeat Saturday 23:00, Egypt's Thursday 23:00 (also Beirut, Gaza and
    Greenland's are not early on a Sunday): the rule "00:00 to 04:00 of a Sunday" missed
    them and advised dropping readings. A repeated hour is one that a time zone's clock
    repeats, named with that zone."""
    utc = pl.datetime_range(start, start + dt.timedelta(days=10), "1h", time_zone="UTC", eager=True)
    frame = pl.DataFrame(
        {
            "ts": utc.dt.convert_time_zone(zone).dt.replace_time_zone(None),
            "kw": np.sin(np.arange(len(utc)) / 4.0),
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="kw", time_col="ts")
    message = str(info.value)
    assert f"They fall on {hour}: the hour that clocks repeat when daylight saving" in message
    assert f"(in {zone}" in message and f".dt.replace_time_zone({zone!r}, ambiguous=" in message
    assert "drops the other" not in message, message


def test_a_resent_batch_is_not_offered_as_series_and_dropping_says_what_it_drops():
    """One meter whose last 5 readings were re-sent under upload_id=2: the advice was "pass
    id_col='upload_id'" (a series of 5 rows beside one of 217). A column is offered as an id
    only where its values' series run side by side with comparable lengths; keeping one row
    of each time says it drops the other readings."""
    t = pl.datetime_range(dt.datetime(2024, 10, 1), dt.datetime(2024, 10, 10), "1h", eager=True)
    first = pl.DataFrame({"ts": t, "upload_id": 1, "kw": np.sin(np.arange(len(t)) / 4.0)})
    frame = pl.concat([first, first.tail(5).with_columns(upload_id=pl.lit(2))])
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="kw", time_col="ts")
    message = str(info.value)
    assert "upload_id" not in message and "pass id_col=<the column that names" in message
    assert "agg(pl.all().mean()) (a value from every reading)" in message, message
    assert "unique(subset=['ts'], keep='last'), which drops the other 5 readings" in message


def test_a_whole_file_sent_twice_is_not_offered_as_series_while_a_panel_is():
    """A meter's file uploaded twice (the same 217 times and readings under upload=1 and
    upload=2): every row is at a time the other upload has, so the advice was "pass
    id_col='upload': its values split the rows into series side by side". A value whose
    rows all repeat another value's (same time, same readings) is a re-send, not a series;
    stores whose readings differ at the same times are still offered as the id."""
    t = pl.datetime_range(dt.datetime(2024, 10, 1), dt.datetime(2024, 10, 10), "1h", eager=True)
    first = pl.DataFrame({"ts": t, "upload": 1, "kw": np.sin(np.arange(len(t)) / 4.0)})
    frame = pl.concat([first, first.with_columns(upload=pl.lit(2))])
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="kw", time_col="ts")
    message = str(info.value)
    assert message.startswith("217 duplicate (time) rows"), message
    assert "upload" not in message and "pass id_col=<the column that names" in message
    panel = pl.concat(  # two stores, overlapping times, their own readings
        [
            first.with_columns(store=pl.lit("a")),
            first.with_columns(store=pl.lit("b"), kw=-pl.col("kw")),
        ]
    )
    with pytest.raises(DataValidationError, match=r"pass id_col='store': its values split"):
        validate_frame(panel.drop("upload"), target="kw", time_col="ts")


def test_a_panel_of_counts_is_offered_its_key_and_a_corrected_resend_is_not():
    """The re-send rule (a value whose rows all match some other value's at the same time)
    stopped offering a real panel's key: 40 stores of small daily counts (Poisson, mean 1),
    or of intermittent sales (mostly zeros), each hold readings that some other store holds
    on that day, so id_col='store' was no longer named. And a file sent again with one
    value corrected was offered as series (id_col='upload'): one unmatched row per upload.
    A re-send repeats one other value's telling rows (not the common zeros, not a count
    that many stores share), at least 90% of them."""
    rng = np.random.default_rng(3)
    days = np.arange(60)
    stores = np.repeat([f"s{i}" for i in range(40)], len(days))
    counts = rng.poisson(1.0, 40 * len(days)).astype(float)
    sparse = np.where(rng.random(40 * len(days)) < 0.9, 0.0, rng.integers(1, 5, 40 * len(days)))
    sparse[: len(days)] = 0.0  # a store that sold nothing in the window
    for sales in (counts, sparse):
        panel = pl.DataFrame({"store": stores, "day": np.tile(days, 40), "y": sales})
        with pytest.raises(DataValidationError, match=r"pass id_col='store': its values split"):
            validate_frame(panel, target="y", time_col="day")
    first = rng.normal(size=len(days)).round(2)
    corrected = first.copy()
    corrected[10] += 1.0
    resent = pl.DataFrame(
        {"upload": np.repeat([1, 2], len(days)), "day": np.tile(days, 2), "y": [*first, *corrected]}
    )
    with pytest.raises(DataValidationError) as info:
        validate_frame(resent, target="y", time_col="day")
    message = str(info.value)
    assert "upload" not in message and "pass id_col=<the column that names" in message, message


def test_a_ragged_panel_read_without_id_col_is_offered_its_key():
    """A panel where a store opened late (4 stores of 200 days, one of 10) was not offered
    id_col='store': a value had to hold a tenth of the longest's rows. Series side by side
    are a panel's whatever their lengths; a flag that changes once is still not offered."""
    days = np.arange(200)
    frame = pl.DataFrame(
        {
            "store": np.repeat(["a", "b", "c", "d", "new"], [200, 200, 200, 200, 10]),
            "day": np.concatenate([days, days, days, days, days[-10:]]),
            "y": np.arange(810.0) % 7,
        }
    )
    with pytest.raises(DataValidationError, match=r"pass id_col='store': its values split"):
        validate_frame(frame, target="y", time_col="day")
    flag = pl.DataFrame(
        {"day": [*range(100), 99, *range(100, 150)], "winter": [0] * 100 + [1] * 51, "y": 1.0}
    )
    with pytest.raises(DataValidationError, match=r"pass id_col=<the column that names the"):
        validate_frame(flag, target="y", time_col="day")


def _london_days(start: dt.datetime, end: dt.datetime, every: str = "1d") -> pl.Series:
    return pl.datetime_range(start, end, every, time_zone="Europe/London", eager=True)


def test_hostile_time_zone_aware_days_across_daylight_saving():
    # Local midnights: the day of the clock change lasts 23 hours in UTC.
    times = _london_days(dt.datetime(2024, 3, 25), dt.datetime(2024, 4, 5))
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    clean, freq = validate_frame(frame, target="y", time_col="t")
    assert str(freq) == "1d" and clean.height == len(times)
    # A gap across the change is filled on the local calendar (midnight stays midnight).
    holed = frame.filter(pl.col("t").dt.day() != 31)
    filled, _ = validate_frame(holed, target="y", time_col="t", freq="1d", missing="interpolate")
    assert filled["t"].equals(times)
    assert filled["y"].to_list() == frame["y"].to_list()
    # Business days as datetimes (were a Polars SchemaError) and hours are fine too.
    weekdays = frame.filter(pl.col("t").dt.weekday() <= 5)
    _, freq = validate_frame(weekdays, target="y", time_col="t")
    assert str(freq) == "1bd"
    hours = _london_days(dt.datetime(2024, 3, 30), dt.datetime(2024, 4, 1), "1h")
    _, freq = validate_frame(pl.DataFrame({"t": hours, "y": 1.0}), target="y", time_col="t")
    assert str(freq) == "1h"


def _sao_paulo_days(start: dt.datetime, end: dt.datetime) -> pl.Series:
    # On 2018-11-04 the clocks jumped from 00:00 to 01:00: that day has no midnight, and
    # polars dates its step 23:00 the day before (midnight in the new UTC offset).
    return pl.datetime_range(start, end, "1d", time_zone="America/Sao_Paulo", eager=True)


def test_hostile_time_zone_aware_days_whose_midnight_is_skipped():
    times = _sao_paulo_days(dt.datetime(2018, 10, 20), dt.datetime(2018, 11, 20))
    assert times.dt.hour().to_list().count(23) == 1  # 2018-11-03 23:00 -03
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    # The first instant of the day (01:00 -02, one hour later) is the day's row as well.
    at_one = frame.with_columns(
        pl.when(pl.col("t").dt.hour() == 23)
        .then(pl.col("t") + pl.duration(hours=1))
        .otherwise(pl.col("t"))
    )
    assert at_one["t"].dt.hour().to_list().count(1) == 1
    for data in (frame, at_one):
        for freq in (None, "1d"):
            clean, inferred = validate_frame(data, target="y", time_col="t", freq=freq)
            assert str(inferred) == "1d" and clean["t"].equals(data["t"])
    # A gap across the day is filled with the step polars dates it with.
    holed = frame.filter(pl.col("t").dt.hour() != 23)
    filled, _ = validate_frame(holed, target="y", time_col="t", freq="1d", missing="interpolate")
    assert filled["t"].equals(times) and filled["y"].to_list() == frame["y"].to_list()
    for unit in ("ns", "ms"):  # the fill kept microseconds: 1970 dates in a ns column
        other = holed.with_columns(pl.col("t").dt.cast_time_unit(unit))
        filled, _ = validate_frame(other, target="y", time_col="t", freq="1d", missing="ffill")
        assert filled["t"].equals(times.dt.cast_time_unit(unit))
    # Other times near the skipped midnight stay off the grid.
    for hours in (-1, 2):
        moved = frame.with_columns(
            pl.when(pl.col("t").dt.hour() == 23)
            .then(pl.col("t") + pl.duration(hours=hours))
            .otherwise(pl.col("t"))
        )
        off = r"timestamps? (is|are) off the regular 1d grid"
        with pytest.raises(DataValidationError, match=off):
            validate_frame(moved, target="y", time_col="t", freq="1d")
    # A series whose time of day is 23:00 keeps its 23:00 rows on the grid, not moved.
    late = _sao_paulo_days(dt.datetime(2018, 10, 20, 23), dt.datetime(2018, 11, 20, 23))
    assert late.dt.hour().unique().to_list() == [23]
    clean, _ = validate_frame(pl.DataFrame({"t": late, "y": 1.0}), target="y", time_col="t")
    assert clean["t"].equals(late)


def test_future_times_across_a_skipped_midnight_follow_polars():
    times = _sao_paulo_days(dt.datetime(2018, 10, 20), dt.datetime(2018, 11, 12))
    skipped = times.dt.hour().to_list().index(23)
    one_day = Frequency.parse("1d")
    ahead = future_times(times[:13], np.array([0, 13]), one_day, 7)
    assert ahead.equals(times[13:20])
    # From a series that ends on the day, whichever way it is dated (were 23:00 or 01:00
    # steps, off the series' grid), or starts on it (was refused as off the grid).
    end = times[: skipped + 1]
    at_one = pl.concat([end[:-1], end[-1:] + dt.timedelta(hours=1)])
    for head in (end, at_one):
        got = future_times(head, np.array([0, len(head)]), one_day, 3)
        assert got.equals(times[skipped + 1 : skipped + 4])
    tail = pl.DataFrame({"t": times[skipped:], "y": 1.0})
    assert validate_frame(tail, target="y", time_col="t", freq="1d")[0]["t"].equals(tail["t"])
    # Samoa skipped 2011-12-30 altogether: refused with advice, not a polars error.
    apia = pl.datetime_range(
        dt.datetime(2011, 12, 20), dt.datetime(2011, 12, 28), "1d", time_zone="Pacific/Apia",
        eager=True,
    )  # fmt: skip
    with pytest.raises(DataValidationError, match=r"2011-12-30 00:00:00 in Pacific/Apia.*UTC"):
        future_times(apia, np.array([0, len(apia)]), one_day, 3)


def test_two_rows_for_one_skipped_day_are_refused():
    # 23:00 -03 and 01:00 -02 both date 2018-11-04 (no midnight): they were read as one step
    # apart by 0, and a gap elsewhere was then left unfilled.
    times = _sao_paulo_days(dt.datetime(2018, 10, 28), dt.datetime(2018, 11, 10))
    skipped = times.dt.hour().to_list().index(23)
    at_one = times[skipped : skipped + 1] + dt.timedelta(hours=1)
    frame = pl.DataFrame({"t": pl.concat([times, at_one]).sort()})
    frame = frame.with_columns(y=pl.int_range(pl.len()).cast(pl.Float64))
    assert frame.height == len(times) + 1
    frame = frame.filter(pl.col("t").dt.day() != 30)  # and a real gap
    for missing in ("error", "ffill"):
        with pytest.raises(DataValidationError, match="off the regular 1d grid"):
            validate_frame(frame, target="y", time_col="t", freq="1d", missing=missing)


@pytest.mark.parametrize(
    ("zone", "start", "end", "freq"),
    [
        ("America/Asuncion", dt.datetime(2017, 5, 1), dt.datetime(2018, 2, 1), "1mo"),
        ("Asia/Tehran", dt.datetime(2021, 3, 1), dt.datetime(2021, 4, 2), "1bd"),
        ("America/Sao_Paulo", dt.datetime(2018, 9, 2), dt.datetime(2018, 12, 30), "1w"),
    ],
)
def test_local_calendars_across_a_skipped_midnight(zone, start, end, freq):
    """Months and business days on a day with no midnight (Asuncion 2017-10-01, Tehran
    Monday 2021-03-22; polars dates them 23:00 the day before) were off the grid, future
    times from the day before failed or were refused when validated, and gaps across them
    could not be filled."""
    every = {"1mo": "1mo", "1bd": "1d", "1w": "1w"}[freq]
    times = pl.datetime_range(start, end, every, time_zone=zone, eager=True)
    if freq == "1bd":
        local = times.dt.replace_time_zone(None) + dt.timedelta(hours=1)
        times = times.filter(local.dt.weekday() <= 5)
    skipped = times.dt.hour().to_list().index(23)
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    step = Frequency.parse(freq)
    clean, inferred = validate_frame(frame, target="y", time_col="t", freq=freq)
    assert clean["t"].equals(times) and inferred == step
    head = times[:skipped]
    ahead = future_times(head, np.array([0, skipped]), step, 3)
    assert ahead.equals(times[skipped : skipped + 3])
    holed = frame.filter(pl.int_range(pl.len()) != skipped)
    filled, _ = validate_frame(holed, target="y", time_col="t", freq=freq, missing="ffill")
    assert filled["t"].equals(times)


@pytest.mark.parametrize("end", [False, True])
def test_auto_months_from_or_to_a_skipped_midnight_are_months(end):
    """Monthly midnights in Asuncion whose first (or last) row is 2017-10-01, a midnight the
    clocks skipped, dated 23:00 the day before (as dt.offset_by dates the month's step): that
    row's day of the month read 30 (the last) beside 1, so freq="auto" inferred 31d and then
    refused the grid, while freq="1mo" (whose grid check reads the day as its midnight) took
    the same frame."""
    zone = "America/Asuncion"
    skipped = pl.Series("t", [dt.datetime(2017, 9, 30, 23)]).dt.replace_time_zone(zone)
    first = pl.Series("t", [dt.datetime(2016, 10, 1) if end else dt.datetime(2017, 11, 1)])
    months = pl.concat([first.dt.replace_time_zone(zone).dt.offset_by(f"{k}mo") for k in range(12)])
    times = months.append(skipped) if end else skipped.append(months)
    assert times.dt.day().to_list().count(30) == 1 and times.is_sorted()
    assert str(infer_frequency(times, np.array([0, len(times)]))) == "1mo"
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    for freq in ("auto", "1mo"):
        clean, inferred = validate_frame(frame, target="y", time_col="t", freq=freq)
        assert str(inferred) == "1mo" and clean["t"].equals(times)
    later = pl.datetime_range(dt.datetime(2019, 1, 1), dt.datetime(2019, 12, 1), "1mo",
                              time_zone=zone, eager=True)  # fmt: skip
    other = pl.DataFrame({"id": "b", "t": later, "y": 1.0})  # a panel of both
    panel = pl.concat([frame.with_columns(id=pl.lit("a")).select(other.columns), other])
    assert str(validate_frame(panel, target="y", time_col="t", id_col="id")[1]) == "1mo"


@pytest.mark.parametrize("every", ["15m", "30m"])
def test_hostile_time_zone_aware_minutes_across_the_clock_set_back(every):
    # Sorted and regular in absolute time, but the local clock goes back at 03:00 on
    # 2024-10-27: inferred from wall-clock steps, that read as "the times decrease".
    start, end = dt.datetime(2024, 10, 26), dt.datetime(2024, 10, 28)
    utc = pl.datetime_range(start, end, every, time_zone="UTC", eager=True)
    times = utc.dt.convert_time_zone("Europe/Berlin")
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    for data in (frame, frame.sample(fraction=1.0, shuffle=True, seed=0)):
        clean, freq = validate_frame(data, target="y", time_col="t")
        assert str(freq) == every and clean["t"].equals(times)
    # Local days across the same change are still days (in absolute time: 25 hours)
    days = pl.Series("t", [dt.datetime(2024, 10, d) for d in (27, 28)])
    days = days.dt.replace_time_zone("Europe/Berlin")
    daily = pl.DataFrame({"t": days, "y": 1.0})
    assert str(validate_frame(daily, target="y", time_col="t")[1]) == "1d"
    # Times that really decrease within a series are still refused
    with pytest.raises(DataValidationError, match="the times decrease within a series"):
        infer_frequency(times.reverse(), np.array([0, len(times)]))


def test_hostile_business_day_datetimes_off_their_time_of_day():
    times = pl.Series([dt.datetime(2024, 1, d, 9) for d in (1, 2, 3, 4, 5, 8, 9)])
    frame = pl.DataFrame({"t": times, "y": np.arange(7.0)})
    assert validate_frame(frame, target="y", time_col="t", freq="1bd")[0].height == 7
    moved = frame.with_columns(
        pl.when(pl.col("y") == 3)
        .then(pl.col("t") + pl.duration(hours=2))
        .otherwise(pl.col("t"))
        .alias("t")
    )
    with pytest.raises(DataValidationError, match=r"off the regular 1bd grid.*2024-01-04 11:00"):
        validate_frame(moved, target="y", time_col="t", freq="1bd")


def test_hostile_two_dates_in_one_month_are_off_the_monthly_grid():
    dates = [dt.date(2024, m, 1) for m in range(1, 7)] + [dt.date(2024, 3, 15)]
    frame = pl.DataFrame({"t": dates, "y": np.arange(7.0)})
    with pytest.raises(DataValidationError, match=r"off the regular 1mo grid.*2024-03-15"):
        validate_frame(frame, target="y", time_col="t", freq="1mo", missing="ffill")


def test_hostile_four_weekly_dates_are_not_monthly():
    dates = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 12, 31), "4w", eager=True)
    frame = pl.DataFrame({"t": dates, "y": np.arange(len(dates), dtype=float)})
    assert str(validate_frame(frame, target="y", time_col="t")[1]) == "4w"
    holed = frame.filter(pl.col("y") != 3)  # a gap: 8 weeks once
    assert str(validate_frame(holed, target="y", time_col="t", missing="ffill")[1]) == "4w"


def test_hostile_a_steady_31_day_step_is_not_monthly():
    """Read as monthly, its forecasts were dated on the 21st of each month instead of every
    31 days (5 days off by step 12). Monthly data on the first business day still is."""
    dates = pl.date_range(dt.date(2020, 1, 1), dt.date(2022, 12, 31), "31d", eager=True)
    frame = pl.DataFrame({"t": dates, "y": np.arange(len(dates), dtype=float)})
    assert str(validate_frame(frame, target="y", time_col="t")[1]) == "31d"
    first_business = [dt.date(2023, 1, 2), dt.date(2023, 2, 1), dt.date(2023, 3, 1)]
    first_business += [dt.date(2023, 4, 3), dt.date(2023, 5, 1), dt.date(2023, 6, 1)]
    monthly = pl.DataFrame({"t": first_business, "y": np.arange(6.0)})
    assert str(validate_frame(monthly, target="y", time_col="t")[1]) == "1mo"
    panel = pl.concat(  # each series its own day of the month: still monthly
        [
            monthly.with_columns(id=pl.lit("a")),
            monthly.with_columns(pl.col("t") + dt.timedelta(days=14), id=pl.lit("b")),
        ]
    )
    assert str(validate_frame(panel, target="y", time_col="t", id_col="id")[1]) == "1mo"


_MONTH_STARTS = pl.date_range(dt.date(2015, 1, 1), dt.date(2022, 6, 1), "1mo", eager=True)
_QUARTER_STARTS = pl.date_range(dt.date(2010, 1, 1), dt.date(2022, 4, 1), "1q", eager=True)


@pytest.mark.parametrize(
    ("dates", "stray", "expected"),
    [
        (_MONTH_STARTS, dt.date(2022, 6, 28), "1mo"),  # a partial month's row at the end
        (_MONTH_STARTS, dt.date(2018, 6, 15), "1mo"),
        (_MONTH_STARTS.dt.month_end(), dt.date(2022, 6, 28), "1mo"),  # next to the last row
        (_MONTH_STARTS.dt.month_end(), dt.date(2018, 6, 15), "1mo"),  # before 06-30
        (_QUARTER_STARTS, dt.date(2022, 5, 20), "3mo"),
        (_QUARTER_STARTS, dt.date(2016, 5, 20), "3mo"),
        (_QUARTER_STARTS.dt.month_end(), dt.date(2016, 5, 20), "3mo"),
    ],
)
def test_one_stray_row_in_calendar_data_keeps_the_calendar_and_is_named(dates, stray, expected):
    """Month-start data with one more date (the stocks' monthly file ends on 2022-06-28) were
    read as "31d": "87 timestamps are off the regular 31d grid ..., e.g. 2015-03-01, ...",
    the good rows, never the stray one. The majority of steps are months: that frequency is
    inferred and the stray row named (of two in one month, the one off the usual day)."""
    times = pl.concat([dates, pl.Series([stray])]).sort().unique(maintain_order=True)
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    assert str(infer_frequency(times, np.array([0, len(times)]))) == expected
    for freq in ("auto", expected):
        with pytest.raises(DataValidationError, match=rf"^1 timestamp is off .*\(t={stray}\)\."):
            validate_frame(frame, target="y", time_col="t", freq=freq)


def test_month_starts_with_a_stray_row_every_quarter_are_monthly_naming_them():
    """The stocks' monthly file (matplotlib's Stocks.csv) holds a row of nulls every quarter
    among its month starts (1990-02-05 after 02-01, 05-04 ...): 134 of 524 rows, which broke
    half of the steps; "506 timestamps are off the regular 31d grid" named good rows too."""
    starts = pl.date_range(dt.date(1990, 1, 1), dt.date(1999, 12, 1), "1mo", eager=True)
    strays = [dt.date(1990 + q // 4, 2 + 3 * (q % 4), 5) for q in range(40)]
    times = pl.concat([starts, pl.Series(strays)]).sort()
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    with pytest.raises(DataValidationError, match=r"^40 timestamps are off the regular 1mo grid"):
        validate_frame(frame, target="y", time_col="t", missing="ffill")
    with pytest.raises(DataValidationError, match=r"e\.g\. \(t=1990-02-05\), \(t=1990-05-05\)"):
        validate_frame(frame, target="y", time_col="t", missing="ffill")


_YEAR_STARTS = pl.date_range(dt.date(1990, 1, 1), dt.date(2022, 1, 1), "1y", eager=True)


@pytest.mark.parametrize(
    ("dates", "stray", "declared"),
    [
        (_MONTH_STARTS, dt.date(2022, 7, 17), "1mo"),  # a partial month after the last
        (_MONTH_STARTS.dt.month_end(), dt.date(2022, 7, 12), "1mo"),
        (_QUARTER_STARTS, dt.date(2022, 7, 20), "1q"),
        (_QUARTER_STARTS, dt.date(2022, 7, 20), "3mo"),
        (_MONTH_STARTS, dt.date(2018, 6, 15), "1mo"),  # beside 06-01 in its month: named before
        (_YEAR_STARTS, dt.date(2023, 1, 17), "1y"),
    ],
)
def test_a_stray_row_alone_in_its_month_is_named_not_read_as_on_the_grid(dates, stray, declared):
    """Month starts up to 2022-06-01 with a partial month's row 2022-07-17 (data pulled mid-
    month) were read as "1mo" by freq="auto" and accepted without a word: the partial month
    fitted as a whole one and the forecasts dated on the 17th (the series' largest day). The
    rows off the grid that made the month reading are named, as for a stray in a month with
    another row. A declared freq="1mo" (or "1q", "1y") read any day of a month as that
    month, silently: it now applies the day rule of freq="auto", naming the row, the day its
    series' rows are on, and what to do."""
    times = pl.concat([dates, pl.Series([stray])]).sort()
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    day = "their months' last day" if dates[0].day > 1 else "day 1"
    for freq in ("auto", declared):
        with pytest.raises(
            DataValidationError, match=rf"^1 timestamp is off .*\(t={stray}\)\."
        ) as caught:
            validate_frame(frame, target="y", time_col="t", freq=freq)
        told = str(caught.value)
        assert f"usual day of the month (e.g. {stray}, whose series' rows are on {day})" in told
        # one row: "1 of them lies" (was "1 of them lie"), "that row"
        assert " 1 of them lies more than 3 days from their series' usual day" in told, told
        assert "Drop or move that row (a partial" in told, told


def test_calendar_data_with_days_a_few_apart_is_still_read_on_its_grid():
    """The days reading's tolerance stays: month starts moved up to 3 days (billing dates on
    the 1st to the 4th) and first business days are months, with no row named."""
    starts = pl.date_range(dt.date(2015, 1, 1), dt.date(2019, 12, 1), "1mo", eager=True)
    shifts = np.random.default_rng(3).integers(0, 4, len(starts)).tolist()
    moved = starts + pl.Series([dt.timedelta(days=k) for k in shifts])
    weekdays = starts.map_elements(
        lambda d: d + dt.timedelta(days=max(0, 7 - d.weekday()) if d.weekday() > 4 else 0),
        return_dtype=pl.Date,
    )
    for times in (moved, weekdays, pl.concat([starts, pl.Series([dt.date(2020, 1, 3)])])):
        frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
        assert str(validate_frame(frame, target="y", time_col="t")[1]) == "1mo"


def test_a_day_steps_series_with_a_stray_row_is_not_read_as_months():
    """The rule of months kept by 4 steps in 5 reads calendar data only: steady 31-day steps
    (about 7 of 12 keep their day of the month) with one stray row stay days."""
    dates = pl.date_range(dt.date(2020, 1, 1), dt.date(2022, 12, 31), "31d", eager=True)
    times = pl.concat([dates, pl.Series([dt.date(2021, 5, 20)])]).sort()
    assert str(infer_frequency(times, np.array([0, len(times)]))) == "31d"


def test_monthly_data_on_the_last_business_day_is_monthly():
    """Month-ends moved back over a weekend (pandas' "BME": 2021-02-26, 2019-06-28) were read
    as "31d" and refused as off its grid ("39 timestamps are off the regular 31d grid"), where
    the first business days are monthly: their day of the month varies by up to 5 (26 to 31),
    their distance to the month's last day by 2. A steady 31-day step still is not monthly.
    Their forecasts were then dated on calendar month-ends (2023-04-30, a Sunday): now on
    each month's last weekday, quarters too; a series always on the 28th stays there."""
    days = []
    for year, month in ((y, m) for y in range(2019, 2023) for m in range(1, 13)):
        day = dt.date(year, month, 1) + dt.timedelta(days=31)
        day = day.replace(day=1) - dt.timedelta(days=1)  # the month's last day
        days.append(day - dt.timedelta(days=max(day.weekday() - 4, 0)))
    assert dt.date(2021, 2, 26) in days
    frame = pl.DataFrame({"t": days, "y": np.arange(len(days), dtype=float)})
    freq = validate_frame(frame, target="y", time_col="t")[1]
    assert str(freq) == "1mo"
    assert future_times(pl.Series(days), np.array([0, len(days)]), freq, 4).to_list() == [
        dt.date(2023, 1, 31),
        dt.date(2023, 2, 28),
        dt.date(2023, 3, 31),
        dt.date(2023, 4, 28),
    ]
    quarters = pl.DataFrame({"t": days[2::3], "y": np.arange(16.0)})
    assert str(validate_frame(quarters, target="y", time_col="t")[1]) == "1q"
    after = future_times(quarters["t"], np.array([0, 16]), Frequency(1, "q"), 3).to_list()
    assert after == [dt.date(2023, 3, 31), dt.date(2023, 6, 30), dt.date(2023, 9, 29)]
    on_28th = pl.Series([dt.date(2023, m, 28) for m in (3, 4, 6)])  # 04-28: a Friday
    assert future_times(on_28th, np.array([0, 3]), freq, 1).to_list() == [dt.date(2023, 7, 28)]
    drifting = pl.date_range(dt.date(2020, 1, 31), dt.date(2022, 12, 31), "31d", eager=True)
    steady = pl.DataFrame({"t": drifting, "y": np.arange(len(drifting), dtype=float)})
    assert str(validate_frame(steady, target="y", time_col="t")[1]) == "31d"


@pytest.mark.parametrize(
    ("first", "rows", "expected"),
    [
        (dt.date(2001, 1, 30), 3, [dt.date(2001, 4, 30), dt.date(2001, 5, 30)]),  # 03-30 a Friday
        (dt.date(2011, 11, 30), 7, [dt.date(2012, 6, 30), dt.date(2012, 7, 30)]),  # 2012-02-29
        (dt.date(2000, 12, 29), 3, [dt.date(2001, 3, 29), dt.date(2001, 4, 29)]),
    ],
)
def test_a_short_series_on_the_29th_or_30th_keeps_its_day(first, rows, expected):
    """A few weekdays on the 30th (February's last day among them, a Friday before a weekend
    31st) were read as last business days and forecast on each month's last weekday
    (2001-05-31, 2012-06-29, 07-31): a series whose every time is its largest day of the
    month, clamped to shorter months, keeps that day, as before the last-business-day rule."""
    day = first.day
    times = []
    for k in range(rows):
        year, month = first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1
        times.append(dt.date(year, month, min(day, calendar.monthrange(year, month)[1])))
    assert all(t.weekday() < 5 for t in times)
    after = future_times(pl.Series(times), np.array([0, rows]), Frequency(1, "mo"), 2)
    assert after.to_list() == expected


def _first_business_days(years: range) -> list[dt.date]:
    """The first weekday of every month of ``years`` (after January 1st, a holiday)."""
    days = []
    for year, month in ((y, m) for y in years for m in range(1, 13)):
        day = dt.date(year, month, 2 if month == 1 else 1)
        days.append(day + dt.timedelta(days=7 - day.weekday() if day.weekday() > 4 else 0))
    return days


def test_monthly_data_on_the_first_business_day_is_forecast_on_first_business_days():
    """First business days (pandas' "BMS": 2021-01-04 after a holiday Friday, 2022-05-02
    after a Sunday) are monthly, but their forecasts, filled gaps and steps were dated on the
    largest day of the month seen (the 4th: 2023-02-04 and 03-04 are Saturdays), and a series
    was not a step behind the next first business day (2023-01-02) that came before it. They
    are dated on each month's first weekday now; month starts with weekend days (pandas'
    "MS") stay on the 1st, as does a series within 3 days of its months' starts with one."""
    days = _first_business_days(range(2019, 2023))
    assert dt.date(2021, 1, 4) in days and dt.date(2022, 5, 2) in days
    frame = pl.DataFrame({"t": days, "y": np.arange(len(days), dtype=float)})
    freq = validate_frame(frame, target="y", time_col="t")[1]
    assert str(freq) == "1mo"
    whole = np.array([0, len(days)])
    assert future_times(pl.Series(days), whole, freq, 4).to_list() == [
        dt.date(2023, 1, 2),
        dt.date(2023, 2, 1),
        dt.date(2023, 3, 1),
        dt.date(2023, 4, 3),
    ]
    assert steps_behind(pl.Series(days), whole, freq, dt.date(2023, 1, 2)).tolist() == [1]
    holed = frame.filter(pl.col("t") != dt.date(2022, 5, 2))
    filled = validate_frame(holed, target="y", time_col="t", missing="ffill")[0]
    assert filled["t"].to_list() == days
    quarters = days[::3]
    assert str(infer_frequency(pl.Series(quarters), np.array([0, 16]))) == "1q"
    after = future_times(pl.Series(quarters), np.array([0, 16]), Frequency(1, "q"), 2)
    assert after.to_list() == [dt.date(2023, 1, 2), dt.date(2023, 4, 3)]
    zone = zoneinfo.ZoneInfo("America/New_York")
    clock = pl.Series([dt.datetime(d.year, d.month, d.day, 9, 30, tzinfo=zone) for d in days])
    later = future_times(clock, whole, freq, 2).dt.replace_time_zone(None).to_list()
    assert later == [dt.datetime(2023, 1, 2, 9, 30), dt.datetime(2023, 2, 1, 9, 30)]
    starts = [dt.date(2022, m, 1) for m in range(1, 13)]  # 2022-01-01 is a Saturday
    assert future_times(pl.Series(starts), np.array([0, 12]), freq, 1).to_list() == [
        dt.date(2023, 1, 1)
    ]
    mixed = [dt.date(2022, 1, 1), dt.date(2022, 2, 3), dt.date(2022, 3, 2)]  # a Saturday
    assert future_times(pl.Series(mixed), np.array([0, 3]), freq, 1).to_list() == [
        dt.date(2022, 4, 1)
    ]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ([dt.date(1990, 2, 28), dt.date(1990, 3, 30)], ["1990-04-30", "1990-05-31", "1990-06-29"]),
        (
            [dt.date(2020, 10, 30), dt.date(2020, 11, 30)],
            ["2020-12-31", "2021-01-29", "2021-02-26"],
        ),
        ([dt.date(1990, 6, 29), dt.date(1990, 7, 31)], ["1990-08-31", "1990-09-28", "1990-10-31"]),
        (
            [dt.date(1990, 2, 28), dt.date(1990, 3, 30), dt.date(1990, 4, 30)],
            ["1990-05-31", "1990-06-29", "1990-07-31"],
        ),
    ],
)
def test_a_short_last_business_day_series_with_a_friday_before_a_weekend_is_one(dates, expected):
    """2 or 3 last business days (pandas' "BME"), one a Friday 29th or 30th before a weekend
    month-end, each its month's last weekday: the first two were forecast on the 30th of every
    month (1990-06-30, a Saturday), the third read as "32d" (1990-09-01, a Saturday), the last
    on the 30th. They step on each month's last weekday now."""
    times = pl.Series("t", dates)
    whole = np.array([0, len(dates)])
    freq = infer_frequency(times, whole)
    assert str(freq) == "1mo"
    after = future_times(times, whole, freq, 3).to_list()
    assert [d.isoformat() for d in after] == expected


def test_short_business_month_anchored_series_are_forecast_as_pandas_continues_them():
    """Every pandas "BME", "BMS", "BQE", "BQS", "BYE" and "BYS" series of 2 or 3 rows from
    1990 to 2029 whose times show they are not calendar month-ends or month starts (a time
    off them) is read as months, quarters or years and forecast on the dates pandas continues
    it with, never on a weekend: 52-week steps (2021-12-31, 2022-12-30, 2023-12-29: 364 days
    each, forecast on 2024-12-27), 13 weeks, 88, 94, 32 or 33 days were read as such. A series
    of calendar month-ends or month starts only (no evidence) steps on them."""
    pd = pytest.importorskip("pandas")
    wrong = []
    for alias in ("BME", "BMS", "BQE", "BQS", "BYE", "BYS"):
        for start in pd.date_range("1990-01-01", "2029-12-01", freq="MS")[::5]:
            for rows in (2, 3):
                index = pd.date_range(start, periods=rows + 4, freq=alias)
                dates = list(index.date)
                shown = dates[:rows]
                ends = [calendar.monthrange(d.year, d.month)[1] for d in shown]
                if all(d.day in (1, end) for d, end in zip(shown, ends, strict=True)):
                    continue  # no evidence: calendar month starts or ends
                times = pl.Series("t", shown)
                whole = np.array([0, rows])
                after = future_times(times, whole, infer_frequency(times, whole), 4).to_list()
                if after != dates[rows:]:
                    wrong.append((alias, shown, after))
    assert wrong == []


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ([dt.date(2019, 12, 31), dt.date(2020, 3, 31), dt.date(2020, 6, 30)], "2020-09-30"),
        ([dt.date(2020, 1, 1), dt.date(2020, 4, 1), dt.date(2020, 7, 1)], "2020-10-01"),
        ([dt.date(2017, 6, 30), dt.date(2017, 9, 29), dt.date(2017, 12, 29)], "2018-03-30"),
    ],
)
def test_month_ends_or_starts_13_weeks_apart_are_quarters(dates, expected):
    """Quarter-ends, quarter starts and last business days of quarters whose steps are all
    91 days were read as "13w" (forecast on 2020-09-29, 09-30, 2018-03-30 then 06-29 and
    09-28 where the quarters continue with 06-29 and 09-28 only by chance): every series on
    month-ends, month starts or business-day anchors steps whole quarters."""
    times = pl.Series("t", dates)
    freq = infer_frequency(times, np.array([0, 3]))
    assert str(freq) == "1q"
    assert future_times(times, np.array([0, 3]), freq, 1).to_list() == [
        dt.date.fromisoformat(expected)
    ]


@pytest.mark.parametrize(
    ("start", "weeks", "rows", "expected"),
    [
        ("2023-06-30", 13, 6, "2024-12-27"),  # 2024-09-27: a Friday before Monday 09-30
        ("2000-06-05", 52, 4, "2004-05-31"),  # June 5th, 4th, 3rd, 2nd: Mondays
        ("2000-08-04", 52, 3, "2003-08-01"),  # August 4th, 3rd, 2nd
        ("2000-03-31", 26, 6, "2003-03-28"),  # 2002-09-27: a Friday before Monday 09-30
    ],
)
def test_whole_weeks_a_few_days_off_business_anchors_stay_weekly(start, weeks, rows, expected):
    """Steps of exactly 13, 26 or 52 weeks whose times stay near, but not each exactly on,
    their months' last or first weekday (pandas: "13W-FRI", "52W-MON") were read as quarters,
    half-years and years (forecast on 2024-12-31, a month's last weekday, not 13 weeks after
    the last row): weeks fit them exactly. Times each exactly on an anchor still step whole
    months (test_month_ends_or_starts_13_weeks_apart_are_quarters)."""
    first = dt.date.fromisoformat(start)
    times = pl.Series("t", [first + dt.timedelta(weeks=weeks * k) for k in range(rows)])
    freq = infer_frequency(times, np.array([0, rows]))
    assert str(freq) == f"{weeks}w"
    got = future_times(times, np.array([0, rows]), freq, 1).to_list()
    assert got == [dt.date.fromisoformat(expected)]


def _japanese_first_trading_days(years: range) -> list[dt.date]:
    """The first weekday of every month of ``years``, after January 1 to 3 (closed)."""
    days = []
    for year, month in ((y, m) for y in years for m in range(1, 13)):
        day = dt.date(year, month, 4 if month == 1 else 1)
        days.append(day + dt.timedelta(days=7 - day.weekday() if day.weekday() > 4 else 0))
    return days


def test_first_business_days_pushed_past_the_4th_by_holidays_are_monthly():
    """The first trading days of a market closed on January 1 to 3 (January 4 to 7) were read
    as "30d" (forecast on 2017-12-31, a Sunday, 2018-01-30 ...), 3 of them as months on the
    largest day seen (the 4th, 2021-04-04 a Sunday). Every time a weekday within the first 10
    days of its month and most exactly on its first weekday: each month's first weekday, a
    holiday or not (there is no holiday calendar: 2018-01-01)."""
    days = _japanese_first_trading_days(range(2015, 2018))
    assert dt.date(2016, 1, 4) in days and dt.date(2017, 1, 4) in days
    whole = np.array([0, len(days)])
    frame = pl.DataFrame({"t": days, "y": np.arange(len(days), dtype=float)})
    freq = validate_frame(frame, target="y", time_col="t")[1]
    assert str(freq) == "1mo"
    assert future_times(pl.Series(days), whole, freq, 4).to_list() == [
        dt.date(2018, 1, 1),
        dt.date(2018, 2, 1),
        dt.date(2018, 3, 1),
        dt.date(2018, 4, 2),
    ]
    three = pl.Series(_japanese_first_trading_days(range(2020, 2022))[11:14])  # 2021-01-04
    after = future_times(three, np.array([0, 3]), Frequency(1, "mo"), 2).to_list()
    assert after == [dt.date(2021, 3, 1), dt.date(2021, 4, 1)]  # was 03-04, 04-04
    later = [dt.date(2021, m, d) for m, d in ((3, 5), (4, 6), (5, 7))]  # none a first weekday
    assert future_times(pl.Series(later), np.array([0, 3]), Frequency(1, "mo"), 1).to_list() == [
        dt.date(2021, 6, 7)
    ]


@pytest.mark.parametrize(
    ("start", "step", "rows", "expected"),
    [
        (dt.date(2019, 2, 1), 31, 8, "31d"),  # days 1, 4, 4, 5, 5, 6, 6, 6; to the end 27..24
        (dt.date(2019, 8, 5), 30, 8, "30d"),  # days 5 down to 1; to the end 26..29
        (dt.date(2019, 2, 3), 92, 6, "92d"),
        (dt.date(2019, 7, 5), 29, 3, "29d"),
    ],
)
def test_steady_day_steps_away_from_the_months_end_stay_days(start, step, rows, expected):
    """The last-business-day rule read a spread of at most 3 in the distance to the month's
    last day as months, anywhere in the month: that distance drifts as the day does (a month
    later), so these steady day steps, days before, became "1mo" / "1q" and were forecast on
    the series' largest day. Only times within 3 days of their month's end count."""
    days = [start + dt.timedelta(days=step * i) for i in range(rows)]
    frame = pl.DataFrame({"t": days, "y": np.arange(rows, dtype=float)})
    assert str(validate_frame(frame, target="y", time_col="t")[1]) == expected


@pytest.mark.parametrize(("step", "expected"), [(92, "92d"), (90, "90d"), (366, "366d")])
def test_hostile_a_steady_92_or_366_day_step_is_not_quarterly_or_yearly(step, expected):
    """Read as quarters (years), 92-day steps from 2020-01-01 were forecast on 2023-01-09,
    04-09, 07-09 where their own step gives 04-11, 07-12."""
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=step * i) for i in range(12)]
    frame = pl.DataFrame({"t": dates, "y": np.arange(12.0)})
    freq = validate_frame(frame, target="y", time_col="t")[1]
    assert str(freq) == expected
    future = future_times(pl.Series(dates), np.array([0, 12]), freq, 2).to_list()
    assert future == [dates[-1] + dt.timedelta(days=step * k) for k in (1, 2)]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (pl.date_range(dt.date(2019, 1, 1), dt.date(2023, 12, 31), "1q", eager=True), "1q"),
        (pl.date_range(dt.date(2019, 3, 31), dt.date(2023, 12, 31), "1q", eager=True), "1q"),
        ([dt.date(2019 + i // 4, 2 + 3 * (i % 4), 1) for i in range(12)], "1q"),  # month 2, 5..
        ([dt.date(y, 3, 1) - dt.timedelta(days=1) for y in range(2015, 2025)], "1y"),  # Feb 29
        ([dt.date(y, 1, 1) for y in range(2015, 2025)], "1y"),
        (
            [
                dt.date(2019, 1, 2),
                dt.date(2019, 4, 1),
                dt.date(2019, 7, 1),
                dt.date(2019, 10, 1),
                dt.date(2020, 1, 2),
                dt.date(2020, 4, 1),
                dt.date(2020, 7, 1),
            ],
            "1q",
        ),  # business days
    ],
)
def test_calendar_quarters_and_years_are_still_quarters_and_years(dates, expected):
    dates = dates if isinstance(dates, list) else dates.to_list()
    frame = pl.DataFrame({"t": dates, "y": np.arange(float(len(dates)))})
    assert str(validate_frame(frame, target="y", time_col="t")[1]) == expected


def test_hostile_off_grid_rows_named_are_the_ones_off_the_grid():
    """Half-hourly rows read as hourly: every other row is off the grid, and the message
    counted 19 of 20 and named on-grid hours (01:00, 02:00); a Saturday among business days
    named the Monday after it too."""
    times = pl.datetime_range(
        dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 9, 30), "30m", eager=True
    )
    frame = pl.DataFrame({"t": times, "y": np.arange(20.0)})
    with pytest.raises(DataValidationError, match=r"^10 timestamps are off") as info:
        validate_frame(frame, target="y", time_col="t", freq="1h")
    assert "01:00:00" not in str(info.value) and "00:30:00" in str(info.value)
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5, 6, 8, 9)]  # the 6th is a Saturday
    weekdays = pl.DataFrame({"t": days, "y": np.arange(7.0)})
    with pytest.raises(DataValidationError, match=r"^1 timestamp is off") as info:
        validate_frame(weekdays, target="y", time_col="t", freq="1bd")
    assert "2024-01-06" in str(info.value) and "2024-01-08" not in str(info.value)


def test_hostile_a_series_float32_rounds_flat_is_named_in_a_warning():
    """1e9 + 10 sin(t): float32 (spacing 64 there) keeps 1e9 only, and the forecasts came out
    flat at 1e9 without a word."""
    t = np.arange(100)
    wave = 10 * np.sin(2 * np.pi * t / 24)
    frame = pl.DataFrame(
        {"id": np.repeat(["big", "fine"], 100), "t": np.tile(t, 2), "y": [*(1e9 + wave), *wave]}
    )
    with pytest.warns(ForecasterWarning, match=r"'y' of the series 'big' vary by less"):
        validate_frame(frame, target="y", time_col="t", id_col="id")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a series that float32 holds: no warning
        validate_frame(frame.filter(pl.col("id") == "fine"), target="y", time_col="t")


BAD_VALUES = {"nan": float("nan"), "null": None, "inf": float("inf"), "-inf": float("-inf")}


@pytest.mark.parametrize("policy", ["error", "ffill", "zero", "interpolate"])
@pytest.mark.parametrize("bad", list(BAD_VALUES))
def test_hostile_missing_and_infinite_targets_by_policy(bad, policy):
    frame = pl.DataFrame({"t": [1, 2, 3, 4], "y": [1.0, BAD_VALUES[bad], 3.0, 5.0]})
    if bad in ("inf", "-inf"):  # never filled: an infinity is a bug upstream, not a gap
        with pytest.raises(DataValidationError, match=r"Infinite values in 'y': e.g. at \(t=2\)"):
            validate_frame(frame, target="y", time_col="t", missing=policy)
        return
    if policy == "error":
        with pytest.raises(DataValidationError, match=r"Missing values \(NaN or null\).*t=2"):
            validate_frame(frame, target="y", time_col="t", missing=policy)
        return
    clean, _ = validate_frame(frame, target="y", time_col="t", missing=policy)
    expected = {"ffill": 1.0, "zero": 0.0, "interpolate": 2.0}[policy]
    assert clean["y"].to_list() == [1.0, expected, 3.0, 5.0]


def test_hostile_single_row_series():
    one = pl.DataFrame({"id": ["solo"], "t": [5], "y": [1.0]})
    with pytest.raises(DataValidationError, match=r"Cannot infer the frequency.*freq="):
        Panel.from_frame(one, target="y", time_col="t", id_col="id")
    with pytest.raises(DataValidationError, match=r"Every series is shorter than the 3 rows"):
        Panel.from_frame(one, target="y", time_col="t", id_col="id", freq="1i", min_length=3)
    longer = pl.DataFrame({"id": ["long"] * 4, "t": [1, 2, 3, 4], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(ForecasterWarning, match=r"Dropped 1 series shorter than 3 rows.*'solo'"):
        panel = Panel.from_frame(
            pl.concat([one, longer]), target="y", time_col="t", id_col="id", min_length=3
        )
    assert panel.keys["id"].to_list() == ["long"]


def test_hostile_100_000_tiny_series():
    n = 100_000
    ids = pl.Series("id", np.repeat(np.arange(n), 3)).cast(pl.String).str.zfill(6)
    frame = pl.DataFrame(
        {"id": ids, "t": np.tile(np.arange(3), n), "y": np.arange(3 * n, dtype=np.float64)}
    ).sample(fraction=1.0, shuffle=True, seed=0)
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", min_length=3)
    assert panel.n_series == n and panel.values.shape == (3 * n, 1)
    assert panel.values[:6, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # Half of them one row short: dropped, and the warning names ten and counts the rest.
    short = frame.filter(~((pl.col("id") >= "050000") & (pl.col("t") == 2)))
    with pytest.warns(ForecasterWarning, match=r"Dropped 50000 series.*'050009' \(and 49990 more"):
        panel = Panel.from_frame(short, target="y", time_col="t", id_col="id", min_length=3)
    assert panel.n_series == 50_000
    with pytest.raises(DataValidationError, match="Every series is shorter than the 5 rows"):
        Panel.from_frame(frame, target="y", time_col="t", id_col="id", min_length=5)


def test_hostile_extremely_large_values():
    base = pl.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "t": [1, 2, 3, 4] * 2})
    # Beyond float32: an error, not a silent inf.
    with pytest.raises(DataValidationError, match=r"Values in 'y' exceed the float32 range"):
        validate_frame(base.with_columns(y=pl.lit(1e39)), target="y", time_col="t", id_col="id")
    # Inside float32 but spread over more than it within a series (scaling divides by it).
    spread = base.with_columns(y=pl.Series([3e38, -3e38, 3e38, -3e38, 1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(DataValidationError, match=r"'y' spread over more than the float32 range"):
        validate_frame(spread, target="y", time_col="t", id_col="id")
    # Large but representable: accepted, also as float32 input and as 64-bit integers.
    big = base.with_columns(
        y=pl.Series([3e38, 2e38, 3e38, 1e38, -3e38, -2e38, -1e38, -3e38], dtype=pl.Float32),
        n=pl.Series([2**63 - 1, 0, 1, 2, -(2**63), 0, 1, 2], dtype=pl.Int64),
    )
    panel = Panel.from_frame(big, target="y", covariates="n", time_col="t", id_col="id")
    assert np.isfinite(panel.values).all()
    assert panel.values[0].tolist() == [np.float32(3e38), np.float32(2**63)]


def test_hostile_far_apart_timestamps_do_not_blow_up_a_fill():
    frame = pl.DataFrame({"t": [0, 1, 2, 10**12], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(DataValidationError, match=r"would create 1,000,000,000,001 rows"):
        validate_frame(frame, target="y", time_col="t", freq="1i", missing="ffill")


@pytest.mark.parametrize(
    ("times", "message"),
    [
        (
            pl.Series([0, 1, 2**64 - 1], dtype=pl.UInt64),
            r"out of range: from 0 to 18446744073709551615, .*64-bit signed",
        ),
        (pl.Series([-(2**63), 0, 2**63 - 1], dtype=pl.Int64), r"spans from .* too far apart"),
    ],
    ids=["uint64-max", "int64-extremes"],
)
def test_hostile_sentinel_integer_times(times, message):
    frame = pl.DataFrame({"t": times, "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError, match=message + r".*sentinel"):
        validate_frame(frame, target="y", time_col="t")


@pytest.mark.parametrize(
    ("years", "zone", "message"),
    [
        (
            -4050,
            None,
            r"from -2026-01-01 00:00:00.000000 to 2024-01-03 .*9999-12-31 23:59:59.999999: the "
            r"years of Python's datetime\)\. 2 rows are out of it: -2026-01-01 00:00:00.000000, "
            r"-2026-01-02 00:00:00.000000\. Fix those times \(a negative year is often a minus "
            r"sign parsed with the date, e\.g\. the text '-20240101' read with '%Y%m%d'\), or "
            r"drop their rows, e\.g\. "
            r"frame\.filter\(pl\.col\('t'\)\.dt\.year\(\)\.is_between\(1, 9999\)\)\.$",
        ),
        (
            8000,
            "Europe/Berlin",
            r"2 rows are out of it: \+10024-01-01 00:00:00.000000\+01:00, \+10024-01-02"
            r".*\(a year after "
            r"9999 is often a sentinel .*, or drop their rows\.$",
        ),
    ],
    ids=["year-minus-2026", "zoned-year-10024"],
)
def test_times_out_of_pythons_years_name_their_rows_and_the_fix(years, zone, message):
    """Times before the year 1 (text -20240101 parsed with '%Y%m%d') were refused with the
    column's first and last time and "stray sentinel values (such as 2**64 - 1 ...)": the
    count of rows out of range, a few of their times and the fix are named, for fit's and
    predict's frames alike (both validate here)."""
    times = pl.datetime_range(
        dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3), "1d", eager=True, time_zone=zone
    )
    shifted = pl.concat([times.head(2).dt.offset_by(f"{years}y"), times.tail(1)])
    frame = pl.DataFrame({"t": shifted, "y": [1.0, 2.0, 3.0]})
    with pytest.raises(
        DataValidationError, match=r"^Time column 't' holds times out of range: "
    ) as info:
        validate_frame(frame, target="y", time_col="t")
    assert re.search(message, str(info.value)), str(info.value)


def test_many_times_out_of_range_show_three():
    frame = pl.DataFrame({"t": pl.Series(range(2**63, 2**63 + 5), dtype=pl.UInt64), "y": 1.0})
    frame = frame.with_columns(pl.col("t").cast(pl.UInt64))
    with pytest.raises(DataValidationError) as info:
        validate_frame(frame, target="y", time_col="t")
    assert (
        "5 rows are out of it, e.g. 9223372036854775808, 9223372036854775809, "
        "9223372036854775810. Check for stray sentinel values (such as 2**64 - 1)"
    ) in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 3}, r"target must be a column name or a list .*, got 3 \(an int\)"),
        ({"target": ["y", "y"]}, r"\['y'\] is listed more than once"),
        ({"freq": "99999999999999w"}, "implausibly long"),
        ({"freq": "1099511627775w"}, "longer than a time column"),
    ],
)
def test_hostile_parameters(kwargs, message):
    frame = hourly()
    params = {"target": "y", "time_col": "t", "id_col": "id", **kwargs}
    with pytest.raises(DataValidationError, match=message):
        validate_frame(frame, **params)


# -- missing="interpolate": what a forecast from an origin inside a filled run may see ------


def test_validate_frame_cells_marks_only_interpolated_cells():
    raw = pl.DataFrame({"t": [0, 1, 3, 4, 5], "y": [1.0, None, 4.0, 5.0, None]})
    for policy in ("ffill", "zero"):
        assert (
            validate_frame_cells(raw, target="y", time_col="t", missing=policy).interpolated is None
        )
    checked = validate_frame_cells(raw, target="y", time_col="t", missing="interpolate")
    assert checked.data["t"].to_list() == [0, 1, 2, 3, 4, 5]  # the gap at t=2 reindexed
    assert checked.data["y"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    assert checked.interpolated[:, 0].tolist() == [False, True, True, False, False, True]
    clean, freq = validate_frame(raw, target="y", time_col="t", missing="interpolate")
    assert clean.equals(checked.data) and freq == checked.freq


def test_known_values_fill_forward_the_run_that_reaches_each_origin():
    frame = pl.DataFrame(
        {
            "id": ["a"] * 7 + ["b"] * 4,
            "t": [*range(7), *range(4)],
            "y": [0.0, None, None, 6.0, None, 10.0, 12.0, 1.0, None, 3.0, 4.0],
            "x": [1.0, 2.0, 3.0, None, 5.0, 6.0, 7.0, 1.0, 1.0, None, 1.0],
            "f": [0.0, 1.0, None, 3.0, 4.0, 5.0, 6.0, 0.0, 1.0, 2.0, 3.0],
        }
    )
    panel = Panel.from_frame(
        frame,
        target="y",
        covariates="x",
        future_covariates="f",
        time_col="t",
        id_col="id",
        missing="interpolate",
    )
    assert panel.values[:7, 0].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert panel.interpolated.shape == (11, 2)  # targets and covariates only
    rows = np.arange(7)
    at_2 = panel.known_values(rows, np.array(2))
    assert at_2[:, 0].tolist() == [0.0, 0.0, 0.0, 6.0, 8.0, 10.0, 12.0]  # later rows untouched
    assert at_2[:, 1].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # x observed up to t=2
    assert at_2[:, 2].tolist() == panel.values[:7, 2].tolist()  # future-known: as filled
    at_3 = panel.known_values(rows, np.array(3))
    assert at_3[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert at_3[:, 1].tolist() == [1.0, 2.0, 3.0, 3.0, 5.0, 6.0, 7.0]
    # one as-of row per window, broadcast over its rows; the second series' own run
    windows = panel.known_values(np.array([[2, 3, 4], [8, 9, 10]]), np.array([[4], [8]]))
    assert windows[..., 0].tolist() == [[4.0, 6.0, 6.0], [1.0, 3.0, 4.0]]
    assert windows[..., 1].tolist() == [[3.0, 4.0, 5.0], [1.0, 1.0, 1.0]]
    known = panel.known_at(np.array([4, 8]))
    assert known.values[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0, 6.0, 10.0, 12.0, 1.0, 1.0, 3.0, 4.0]
    until = [True] * 5 + [False] * 2 + [True] * 2 + [False] * 2
    assert panel.rows_until(np.array([4, 8])).tolist() == until
    assert known.interpolated is panel.interpolated


def test_a_panel_without_interpolated_cells_reads_its_values():
    frame = pl.DataFrame({"t": [0, 1, 2, 3], "y": [0.0, None, 2.0, 3.0]})
    for policy in ("ffill", "zero"):
        panel = Panel.from_frame(frame, target="y", time_col="t", missing=policy)
        assert panel.interpolated is None and panel.known_at(np.array([1])) is panel
        assert panel.known_values(np.arange(4), np.array(1)).tolist() == panel.values.tolist()


def test_dropping_short_series_keeps_the_interpolated_cells_aligned():
    frame = pl.DataFrame(
        {
            "id": ["a"] * 2 + ["b"] * 5,
            "t": [0, 1, *range(5)],
            "y": [1.0, 2.0, 0.0, None, 4.0, None, 8.0],
        }
    )
    with pytest.warns(ForecasterWarning, match="Dropped 1 series"):
        panel = Panel.from_frame(
            frame, target="y", time_col="t", id_col="id", missing="interpolate", min_length=3
        )
    assert panel.interpolated[:, 0].tolist() == [False, True, False, True, False]
    assert panel.known_values(np.arange(5), np.array(3))[:, 0].tolist() == [0.0, 2.0, 4.0, 4.0, 8.0]


def test_known_at_with_a_column_that_has_no_interpolated_cell():
    """Only the target has a gap: known_at (span statistics, MASE scales) indexed the empty
    run list of the covariate and raised IndexError, so fit and backtest crashed."""
    frame = pl.DataFrame(
        {"t": range(6), "y": [0.0, None, None, 6.0, 8.0, 10.0], "x": [1.0, 2, 3, 4, 5, 6]}
    )
    panel = Panel.from_frame(frame, target="y", covariates="x", time_col="t", missing="interpolate")
    known = panel.known_at(np.array([2]))
    assert known.values[:, 0].tolist() == [0.0, 0.0, 0.0, 6.0, 8.0, 10.0]
    assert known.values[:, 1].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert panel.known_at(np.array([4])) is panel  # no run reaches row 4


def test_values_below_the_float32_range_are_refused():
    """A series around 1e-49 became all zeros in float32 and was forecast as a zero series."""
    frame = hourly(ids=("a",), n=6).with_columns(y=pl.col("y") * 1e-49 + 1e-49)
    with pytest.raises(DataValidationError, match=r"'y' are nonzero but below the float32"):
        build(frame)
    assert build(frame.with_columns(y=pl.col("y") * 1e30)).n_series == 1  # 1e-19: fine


def test_integer_ids_are_refused_as_floats_at_predict():
    """A model fitted on integer ids took Float64 ids: 2**53 + 1 became 2**53, another series
    (forecast as unseen), and ids such as 1.25 were forecast without a word."""
    from forecaster.data.frames import check_schema

    trained = {"id": "Int64", "t": "Int64", "y": "Float64"}
    frame = pl.DataFrame({"id": [2.0**53 + 1], "t": [1], "y": [1.0]})
    with pytest.raises(DataValidationError, match=r"id: trained on Int64, got Float64"):
        check_schema(frame, trained, id_col="id", time_col="t")
    narrower = pl.DataFrame({"id": [7], "t": [1], "y": [1.0]}, schema_overrides={"id": pl.Int32})
    check_schema(narrower, trained, id_col="id", time_col="t")  # widths of integers and values


def test_boolean_ids_are_refused_as_numbers_at_predict():
    """A model fitted on Boolean ids took 0 / 1 ids (Int8, UInt8, Float64) as the same
    dtype family, then matched them by their text ("0" is not "false"): every series was
    forecast as unseen, scaled on its own history, without a word."""
    from forecaster.data.frames import check_schema, match_keys

    trained = {"id": "Boolean", "t": "Int64", "y": "Float64"}
    for dtype in (pl.Int8, pl.UInt8, pl.Float64):
        frame = pl.DataFrame({"id": [0, 1], "t": [1, 1], "y": [1.0, 2.0]}).cast({"id": dtype})
        with pytest.raises(DataValidationError, match=r"id: trained on Boolean, got"):
            check_schema(frame, trained, id_col="id", time_col="t")
    same = pl.DataFrame({"id": [True, False], "t": [1, 1], "y": [1.0, 2.0]})
    check_schema(same, trained, id_col="id", time_col="t")
    rows, known = match_keys(pl.DataFrame({"id": [False, True]}), same.select("id"), "id")
    assert rows.tolist() == [1, 0] and known.all()


def test_calendar_grid_datetimes_keep_one_time_of_day():
    """Month starts at UTC midnight stored as Europe/Berlin (01:00 in winter, 02:00 in
    summer) passed, and every forecast took the first row's 01:00: April's was 23:00 UTC on
    March 31 and matched no actual. Wandering times of day (13:37) passed as well."""
    utc = pl.datetime_range(
        dt.datetime(2022, 1, 1), dt.datetime(2023, 6, 1), "1mo", time_zone="UTC", eager=True
    )
    berlin = pl.DataFrame({"t": utc.dt.convert_time_zone("Europe/Berlin"), "y": 1.0})
    with pytest.raises(
        DataValidationError, match=r"off the regular 1mo grid.*dt.convert_time_zone"
    ):
        validate_frame(berlin, target="y", time_col="t")
    validate_frame(
        berlin.with_columns(pl.col("t").dt.convert_time_zone("UTC")), target="y", time_col="t"
    )
    naive = pl.DataFrame({"t": utc.dt.replace_time_zone(None), "y": 1.0})
    moved = naive.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.col("t") + dt.timedelta(hours=13, minutes=37))
        .otherwise(pl.col("t"))
    )
    with pytest.raises(DataValidationError, match=r"1 timestamp is off the regular 1mo grid"):
        validate_frame(moved, target="y", time_col="t")


def test_filling_that_makes_up_much_of_the_grid_warns():
    """Weekday data with one Saturday row was read as daily and ffill made up every weekend
    (23 of 89 rows) without a word; a few filled gaps stay quiet."""
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 3, 29), "1d", eager=True)
    weekdays = days.filter((days.dt.weekday() <= 5) | (days == dt.date(2024, 1, 6)))
    frame = pl.DataFrame({"t": weekdays, "y": np.arange(len(weekdays), dtype=float)})
    with pytest.warns(ForecasterWarning, match=r"made up 23 of the 89 rows of the regular 1d"):
        validate_frame(frame, target="y", time_col="t", missing="ffill")
    few = pl.DataFrame({"t": days, "y": np.arange(len(days), dtype=float)}).filter(
        pl.int_range(pl.len()) % 10 != 5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        validate_frame(few, target="y", time_col="t", missing="ffill")
        # rows only on days with sales, absent rows zeros by the user's word: not warned
        daily = pl.DataFrame({"t": days, "y": np.arange(len(days), dtype=float) + 1})
        sparse = daily.filter(pl.int_range(pl.len()) % 5 < 2)
        filled, _ = validate_frame(sparse, target="y", time_col="t", freq="1d", missing="zero")
        assert filled.height == (sparse["t"].max() - sparse["t"].min()).days + 1
        assert (filled["y"] == 0).sum() == filled.height - sparse.height > 0.5 * filled.height


def test_filling_that_makes_up_most_of_one_series_of_a_panel_warns():
    """A daily series in a panel of hourly ones was filled to hourly steps by missing="ffill"
    (23 of every 24 rows made up) without a word: the share of the whole panel's grid made
    up stayed under the threshold, the other series being complete. The series made up
    mostly are named, with their share; a panel with a few gaps stays quiet."""
    start = dt.datetime(2024, 1, 1)
    hours = pl.datetime_range(start, start + dt.timedelta(hours=24 * 20 - 1), "1h", eager=True)
    values = np.arange(len(hours), dtype=float)
    hourly = pl.concat(pl.DataFrame({"id": f"h{k}", "t": hours, "y": values}) for k in range(10))
    days = pl.datetime_range(start, start + dt.timedelta(days=19), "1d", eager=True)
    daily = pl.DataFrame({"id": "d", "t": days, "y": np.arange(20, dtype=float)})
    with pytest.warns(ForecasterWarning, match=r"1 of the 11 series .* 'd' \(437 of 457, 96%\)"):
        validate_frame(
            pl.concat([hourly, daily]), target="y", time_col="t", id_col="id", missing="ffill"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        gappy = hourly.filter(pl.int_range(pl.len()).over("id") % 10 != 5)
        validate_frame(gappy, target="y", time_col="t", id_col="id", missing="ffill")


def test_filling_names_no_series_for_one_or_two_gaps_however_short():
    """A series of four steps with one gap (25 % made up) was named as mostly made up, "sampled
    at another frequency", beside complete series (and a frame of it alone was told "another
    grid"): one or two missing steps are ordinary gaps. A series (or grid) is named once
    filling made up more than 20 % of it and at least 3 steps; 3 of 8 are named."""
    long = pl.concat(pl.DataFrame({"id": f"h{k}", "t": range(100), "y": 1.0}) for k in range(10))

    def told(*kept: list[int]) -> list[str]:
        short = [pl.DataFrame({"id": f"s{j}", "t": t, "y": 1.0}) for j, t in enumerate(kept)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            options = {"target": "y", "time_col": "t", "missing": "ffill", "freq": 1}
            validate_frame(pl.concat([long, *short]), id_col="id", **options)
            if len(kept) == 1:  # the series alone: the grid's own share
                validate_frame(short[0].drop("id"), **options)
        return [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]

    assert told([0, 1, 3]) == []  # 1 of 4 made up
    assert told([0, 1, 3, 5]) == []  # 2 of 6
    assert told([0, 1, 3, 5], [0, 1, 3]) == []
    (panel, alone) = told([0, 1, 3, 5, 7])  # 3 of 8
    assert "(at least 3 of them) of 1 of the 11 series" in panel and "'s0' (3 of 8, 38%)" in panel
    assert alone.startswith("missing='ffill' made up 3 of the 8 rows of the regular 1i grid")
    (panel,) = told([0, 1, 3, 5, 7], [0, 1, 3])
    assert "of 1 of the 12 series" in panel and "'s1'" not in panel


def test_filling_warns_of_no_series_for_the_steps_before_its_first_complete_row():
    """A series whose only gap lies before its first complete row (a stray early row with a
    null value) has nothing made up: ffill and interpolate drop those rows and the gap with
    them (said in their own warning), but the steps of the gap were counted as made up, so
    the series was named as mostly made up. A gap after that row is still counted."""
    start = dt.datetime(2024, 1, 1)
    hours = pl.datetime_range(start, start + dt.timedelta(hours=199), "1h", eager=True)
    complete = pl.concat(pl.DataFrame({"id": f"h{k}", "t": hours, "y": 1.0}) for k in range(10))
    row = pl.int_range(pl.len())
    stray = (
        pl.DataFrame({"id": "b", "t": hours, "y": np.arange(200.0)})
        .filter((row == 0) | (row >= 100))
        .with_columns(y=pl.when(row == 0).then(None).otherwise(pl.col("y")))
    )
    for missing in ("ffill", "interpolate"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kept, _ = validate_frame(pl.concat([complete, stray]), target="y", time_col="t",
                                     id_col="id", missing=missing)  # fmt: skip
        assert kept.filter(pl.col("id") == "b").height == 100  # the observed rows from 100 on
        assert [str(w.message)[:7] for w in caught] == ["Dropped"]
    holed = stray.filter(~pl.col("y").is_between(101, 150))  # 50 of the kept 100 made up
    with pytest.warns(ForecasterWarning, match=r"1 of the 11 series .* 'b' \(50 of 100, 50%\)"):
        validate_frame(pl.concat([complete, holed]), target="y", time_col="t", id_col="id",
                       missing="ffill")  # fmt: skip


def _cairo_business_days(first_dated_at: int | None) -> pl.Series:
    """Business days 2023-04-17 .. 2023-05-31 at local midnight in Africa/Cairo, whose
    midnight of Friday 2023-04-28 does not exist: that day dated 23:00 the day before
    (``first_dated_at=23``) or 01:00 on the day (``1``); None: the series starts the day
    after it."""
    days = pl.date_range(dt.date(2023, 4, 17), dt.date(2023, 5, 31), eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    if first_dated_at is None:
        days = days.filter(days > dt.date(2023, 4, 28))
    naive = days.cast(pl.Datetime("us"))
    skipped = naive == dt.datetime(2023, 4, 28)
    shift = dt.timedelta(hours=-1 if first_dated_at == 23 else 1)
    naive = pl.select(pl.when(skipped).then(naive + shift).otherwise(naive)).to_series()
    return naive.dt.replace_time_zone("Africa/Cairo")


@pytest.mark.parametrize("dated_at", [23, 1])
@pytest.mark.parametrize("start_on_it", [False, True])
def test_calendar_grid_a_skipped_midnight_dated_either_way_is_on_the_grid(dated_at, start_on_it):
    """The one-time-of-day rule took each series' first row as its clock and excused only a
    skipped midnight dated 23:00 the day before: a day dated 01:00 (pandas'
    nonexistent="shift_forward", polars' month ranges in some zones) was refused, and a
    series starting on that day had every other row refused."""
    times = _cairo_business_days(dated_at)
    if start_on_it:
        times = times.filter(times >= times.filter(times.dt.hour() != 0)[0])
    frame = pl.DataFrame({"t": times, "y": np.arange(len(times), dtype=float)})
    clean, freq = validate_frame(frame, target="y", time_col="t", freq="1bd")
    assert clean["t"].equals(times) and str(freq) == "1bd"
    # other times of that day, or of the day before, stay off the grid (a first row off the
    # grid moves the grid that starts there: more rows are named then)
    count = r"\d+" if start_on_it else "1"
    for hours in (-2, 3):
        moved = frame.with_columns(
            pl.when(pl.col("t").dt.hour() != 0)
            .then(pl.col("t") + dt.timedelta(hours=hours))
            .otherwise(pl.col("t"))
        )
        off = rf"{count} timestamps? (is|are) off the regular"
        with pytest.raises(DataValidationError, match=off):
            validate_frame(moved, target="y", time_col="t", freq="1bd")


def test_calendar_grid_off_clock_rows_are_explained_without_a_time_zone():
    """Monthly readings at wandering times of day (no time zone) were refused with advice on
    the frequency and resampling only, which does not help: the advice names dates."""
    months = pl.datetime_range(dt.datetime(2022, 1, 1), dt.datetime(2023, 12, 1), "1mo", eager=True)
    read = months + pl.Series([dt.timedelta(hours=9 + i % 5, minutes=7 * i) for i in range(24)])
    frame = pl.DataFrame({"t": read, "y": np.arange(24, dtype=float)})
    with pytest.raises(DataValidationError, match=r"one time of day.*\.dt\.date\(\)"):
        validate_frame(frame, target="y", time_col="t", freq="1mo")
    dated = frame.with_columns(pl.col("t").dt.truncate("1d"))
    assert validate_frame(dated, target="y", time_col="t", freq="1mo")[0].height == 24


def test_exact_targets_of_a_sorted_frame_read_its_values_in_place_without_a_join(monkeypatch):
    # a join on (id, time) took ~260 MB per 1M rows in fit's validation check; a frame whose
    # rows are the panel's, in order (sorted, no gaps: the usual case), needs none
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "id": np.repeat(["a", "b", "c"], 50),
            "t": np.tile(np.arange(50), 3),
            "y": 1e8 + 1e4 * rng.normal(size=150),  # beyond float32: the exact values must be read
        }
    ).with_columns(pl.when(pl.col("t") == 7).then(None).otherwise(pl.col("y")).alias("y"))
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", missing="ffill")
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    joined = panel.exact_targets(shuffled)  # rows in another order: the join

    def no_join(*args, **kwargs):
        raise AssertionError("exact_targets joined a frame whose rows are the panel's")

    monkeypatch.setattr(pl.DataFrame, "join", no_join)
    exact = panel.exact_targets(frame)
    assert exact.values.dtype == np.float64
    assert exact.values.tobytes() == joined.values.tobytes()  # bit for bit
    assert np.array_equal(exact.unobserved, joined.unobserved)
    assert exact.unobserved[:, 0].sum() == 3  # t=7 of each series, filled by ffill
    observed = frame.filter(pl.col("t") != 7)["y"].to_numpy()
    assert np.array_equal(exact.values[~exact.unobserved[:, 0], 0], observed)


def test_observed_values_of_local_days_across_a_dst_change_are_those_of_the_join():
    """Daily steps of a time zone are local days (23 or 25 hours at a DST change): the grid's
    index arithmetic (a fixed step) left every value after the change unobserved (NaN), so a
    backtest scored nothing and fit skipped its baseline check. A panel whose times are not
    its first time plus whole steps takes the join. The frame is shuffled so the in-place
    reading does not apply."""
    from forecaster.data.frames import observed_values
    from forecaster.data.panel_values import panel_observed_values

    t = pl.datetime_range(
        dt.datetime(2024, 3, 28), dt.datetime(2024, 4, 3), "1d", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    frame = pl.DataFrame({"t": t, "y": np.arange(7.0) + 1}).reverse()
    panel = Panel.from_frame(frame, target="y", time_col="t", freq="1d")
    joined = observed_values(pl.DataFrame({"t": panel.time}), frame, ["y"])
    np.testing.assert_array_equal(panel_observed_values(panel, frame), joined)
    assert joined.ravel().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_observed_values_compare_a_frames_keys_with_the_panels_once(monkeypatch):
    """panel_observed_values compared the frame's keys with the panel's rows, and
    observed_values, reading them in place, compared them again (a backtest reads them
    twice: two comparisons of every key thrown away)."""
    from forecaster.data import frames, panel_values

    frame = pl.DataFrame({"id": ["a"] * 4 + ["b"] * 3, "t": [0, 1, 2, 3, 0, 1, 2],
                          "y": [1e8 + v for v in range(7)]})  # fmt: skip
    panel = Panel.from_frame(frame, target="y", id_col="id", time_col="t", freq=1)
    compared: list[int] = []
    real = frames.keys_aligned

    def aligned(rows: pl.DataFrame, data: pl.DataFrame) -> bool:
        compared.append(rows.height)
        return real(rows, data)

    for module in (frames, panel_values):  # observed_values' comparison and the panel's
        monkeypatch.setattr(module, "keys_aligned", aligned)
    values = panel_values.panel_observed_values(panel, frame)
    assert values[:, 0].tolist() == frame["y"].to_list() and compared == [7]
    shuffled = frame.reverse()  # not aligned: the grid's index arithmetic
    assert (
        panel_values.panel_observed_values(panel, shuffled)[:, 0].tolist() == frame["y"].to_list()
    )
    assert compared == [7, 7]


def test_a_series_on_the_30th_ending_on_a_month_end_is_a_step_behind():
    """Monthly data on the 30th (February clamped to the 29th) whose last time, April 30, is
    a month-end: the step after it is May 30 (its own day of the month, as future_times
    steps), not May 31. A series one month behind May 30 was never stale."""
    from forecaster.data.steps import steps_behind

    on_30th = pl.date_range(dt.date(2024, 1, 30), dt.date(2024, 4, 30), "1mo", eager=True)
    month_ends = pl.Series([dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 4, 30)])
    times = pl.concat([on_30th, month_ends])
    offsets = np.array([0, len(on_30th), len(times)])
    monthly = Frequency.parse("1mo")
    assert future_times(times, offsets, monthly, 1).to_list() == [
        dt.date(2024, 5, 30),
        dt.date(2024, 5, 31),
    ]
    assert steps_behind(times, offsets, monthly, dt.date(2024, 5, 30)).tolist() == [1, 0]
    assert steps_behind(times, offsets, monthly, dt.date(2024, 7, 31)).tolist() == [3, 3]
    quarterly = Frequency.parse("1q")  # quarters on the 30th: Jan 30, Apr 30 (a month-end)
    assert steps_behind(
        on_30th[::3], np.array([0, 2]), quarterly, dt.date(2024, 7, 30)
    ).tolist() == [1]


def test_days_behind_are_counted_on_the_local_calendar_across_daylight_saving():
    """A daily Europe/Berlin series that ends on March 29 is 4 days behind April 2: the
    spring-forward day lasts 23 hours, and elapsed time / 24 h counted 3 (a pipeline with
    max_staleness = 3 kept it)."""
    from forecaster.data.steps import grid_periods, steps_behind

    times = pl.datetime_range(
        dt.datetime(2024, 3, 20), dt.datetime(2024, 3, 29), "1d", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    as_of = dt.datetime(2024, 4, 2, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    daily = Frequency.parse("1d")
    assert steps_behind(times, np.array([0, len(times)]), daily, as_of).tolist() == [4]
    last = times.tail(1)
    periods, off = grid_periods(pl.Series([as_of], dtype=times.dtype), last, daily)
    assert periods.tolist() == [4] and off.tolist() == [False]
    # a skipped midnight (America/Sao_Paulo, 2018-11-04, dated 23:00 the day before) is its day
    paulo = pl.datetime_range(
        dt.datetime(2018, 11, 1), dt.datetime(2018, 11, 6), "1d", time_zone="America/Sao_Paulo",
        eager=True,
    )  # fmt: skip
    periods, off = grid_periods(paulo, paulo.head(1).extend_constant(paulo[0], 5), daily)
    assert periods.tolist() == [0, 1, 2, 3, 4, 5] and not off.any()


@pytest.mark.parametrize(
    ("freq", "times", "as_of", "expected"),
    [  # month-ends to April 30: only May 31 is at or before June 1
        ("1mo", [dt.date(2024, 3, 31), dt.date(2024, 4, 30)], dt.date(2024, 6, 1), 1),
        ("1mo", [dt.date(2024, 1, 15), dt.date(2024, 2, 15)], dt.date(2024, 6, 14), 3),
        ("1bd", [dt.date(2024, 1, 4)], dt.date(2024, 1, 6), 1),  # Thursday -> Saturday
        ("1bd", [dt.datetime(2024, 1, 5, 9)], dt.datetime(2024, 1, 9, 8), 1),  # Fri -> Tue 08:00
        ("1q", [dt.date(2023, 12, 31)], dt.date(2024, 6, 29), 1),
        ("1h", [dt.datetime(2024, 1, 1, 1, 30)], dt.datetime(2024, 1, 1, 3), 1),
    ],
)
def test_steps_behind_counts_the_series_steps_at_or_before_the_as_of(freq, times, as_of, expected):
    """Calendar steps between two of a series' steps counted one step too many (the period
    of the as-of, not the series' steps at or before it), so max_staleness = N left out a
    series exactly N behind. The count is that of future_times' steps at or before as_of."""
    from forecaster.data.steps import steps_behind

    series, offsets = pl.Series(times), np.array([0, len(times)])
    assert steps_behind(series, offsets, Frequency.parse(freq), as_of).tolist() == [expected]
    following = future_times(series, offsets, Frequency.parse(freq), expected + 1).to_list()
    assert following[expected - 1] <= as_of < following[expected]


def test_a_series_ending_on_a_skipped_midnight_is_not_behind_that_day():
    """A daily America/Sao_Paulo series whose last row is the skipped midnight of 2018-11-04
    (dated 23:00 the day before) was a step behind 2018-11-04 23:30: its next step, as
    future_times dates it, is 2018-11-05 00:00."""
    from forecaster.data.steps import steps_behind

    zone = zoneinfo.ZoneInfo("America/Sao_Paulo")
    times = pl.datetime_range(
        dt.datetime(2018, 10, 30), dt.datetime(2018, 11, 5), "1d", time_zone=zone.key,
        eager=True,
    )[:-1]  # fmt: skip
    assert times[-1] == dt.datetime(2018, 11, 3, 23, tzinfo=zone)  # the skipped midnight
    offsets, daily = np.array([0, len(times)]), Frequency.parse("1d")
    assert future_times(times, offsets, daily, 1).to_list() == [
        dt.datetime(2018, 11, 5, tzinfo=zone)
    ]
    behind = [
        steps_behind(times, offsets, daily, dt.datetime(2018, 11, d, h, m, tzinfo=zone))[0]
        for d, h, m in [(4, 23, 30), (5, 0, 0), (6, 0, 0)]
    ]
    assert behind == [0, 1, 2]


def test_auto_frequency_of_readings_every_24_hours_off_the_local_days_is_24h():
    """Readings every 24 hours at UTC midnight stored in Europe/Berlin (01:00, then 02:00
    after spring-forward): freq="auto" inferred "1d" (local days) and then refused its own
    grid ("off the regular 1d grid ... Pass the right freq="). Local midnights stay "1d"."""
    utc = pl.datetime_range(
        dt.datetime(2024, 3, 15), dt.datetime(2024, 4, 10), "1d", time_zone="UTC", eager=True
    )
    berlin = utc.dt.convert_time_zone("Europe/Berlin")
    assert str(infer_frequency(berlin, np.array([0, len(berlin)]))) == "24h"
    clean, freq = validate_frame(pl.DataFrame({"t": berlin, "y": 1.0}), target="y", time_col="t")
    assert str(freq) == "24h" and clean.height == len(berlin)
    weekly = berlin.gather_every(7)
    assert str(infer_frequency(weekly, np.array([0, len(weekly)]))) == "168h"
    local = utc.dt.replace_time_zone(None).dt.replace_time_zone("Europe/Berlin")
    assert str(infer_frequency(local, np.array([0, len(local)]))) == "1d"


@pytest.mark.parametrize(
    ("freq", "zone"), [("1bd", None), ("auto", "America/New_York"), ("1mo", "Europe/Paris")]
)
def test_absent_rows_are_the_rows_filling_makes_up(freq, zone):
    """The rows a pipeline adds before the estimator fills (log returns of 0 on a holiday):
    the grid's own rows, at the times filling gives them (local 16:00 across a DST change,
    month-ends), per series on its own calendar; once added, filling makes up none, and the
    warning of much filling still counts them."""
    from forecaster.data.absent import absent_rows
    from forecaster.exceptions import ArgumentError

    if freq == "1mo":
        starts = pl.date_range(dt.date(2023, 1, 1), dt.date(2024, 12, 1), "1mo", eager=True)
        times = starts.dt.month_end().cast(pl.Datetime("us")).dt.replace_time_zone(zone)
    else:  # business days across March 10 (DST in New York)
        days = pl.date_range(dt.date(2024, 2, 26), dt.date(2024, 4, 5), "1d", eager=True)
        times = days.filter(days.dt.weekday() <= 5)
        if zone is not None:
            times = (times.cast(pl.Datetime("us")) + dt.timedelta(hours=16)).dt.replace_time_zone(
                zone
            )
    n = len(times)
    rows = pl.DataFrame({"id": ["a"] * n + ["b"] * n, "t": pl.concat([times, times])})
    rows = rows.with_columns(y=pl.int_range(pl.len()).cast(pl.Float64))
    # a lacks its steps 3, 11 and 12; b starts a step later (its own calendar), lacks step 20
    kept = rows.filter(~pl.int_range(pl.len()).is_in([3, 11, 12, n, n + 20]))
    keys = {"time_col": "t", "id_col": "id"}
    filled, _ = validate_frame(kept, target="y", **keys, freq=freq, missing="ffill")
    made_up = filled.join(kept, on=["id", "t"], how="anti").select("id", "t")
    absent = absent_rows(kept, **keys, freq=freq)
    assert absent.height == 4 and absent.equals(made_up)
    assert absent.schema == kept.select("id", "t").schema
    whole = pl.concat([kept, absent], how="diagonal").sort("id", "t")
    again, _ = validate_frame(whole, target="y", **keys, freq=freq, missing="ffill")
    assert again.height == whole.height
    sparse = kept.filter(pl.int_range(pl.len()) % 5 < 2)  # most of the grid made up
    step = "1bd" if freq == "auto" else freq
    with pytest.warns(ForecasterWarning, match=r"missing='interpolate' made up \d+ of the"):
        absent_rows(sparse, **keys, freq=step, missing="interpolate")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        assert absent_rows(sparse, **keys, freq=step, missing="zero").height > 0  # not warned
        assert absent_rows(whole, **keys, freq=freq).height == 0
    with pytest.raises(ArgumentError, match="missing='error' makes up none"):
        absent_rows(kept, **keys, missing="error")


# ------------------------------------------------ dtypes restored after a trip through pandas


def test_restore_dtypes_changes_a_dtype_only_where_no_value_changes():
    """Midnight datetimes are dates again, a datetime of another unit the trained one; a time
    of day, a time zone, or a value the coarser unit would round stays as it is (for the
    schema check to refuse, naming the column)."""
    midnight = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2), None]
    frame = pl.DataFrame({"d": midnight, "e": [dt.datetime(2024, 1, 1, 9, 30), None, None]})
    got = restore_dtypes(frame, {"d": "Date", "e": "Date", "absent": "Date"})
    assert got.schema["d"] == pl.Date
    assert got["d"].to_list() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None]
    assert got.schema["e"] == pl.Datetime("us")  # 09:30 is no date: not truncated
    zoned = frame.with_columns(pl.col("d").dt.replace_time_zone("UTC"))
    assert restore_dtypes(zoned, {"d": "Date"}).schema["d"] == pl.Datetime("us", "UTC")
    nanos = pl.DataFrame({"t": pl.Series([0, 1_000, 1_001], dtype=pl.Datetime("ns"))})
    trained = {"t": "Datetime(time_unit='us', time_zone=None)"}
    assert restore_dtypes(nanos.head(2), trained).schema["t"] == pl.Datetime("us")
    assert restore_dtypes(nanos, trained).schema["t"] == pl.Datetime("ns")  # 1001 ns: kept
    text = pl.DataFrame({"d": ["2024-01-01", "2024-01-02T00:00:00"], "x": ["a", "b"]})
    assert restore_dtypes(text, {"d": "Date", "x": "Date"}).schema == pl.Schema(
        {"d": pl.Date, "x": pl.String}
    )


def test_series_come_in_the_order_of_their_text_whatever_the_id_dtype():
    """Enum ids sorted by the categories' order (c, b, a) where String and Categorical ids
    sort by their text (a, b, c): the same rows gave another panel, so another model for a
    seed, and outputs in another order. Every text id is ordered by its text; the Enum
    dtype is kept."""
    frame = pl.DataFrame({"id": ["b", "c", "a"] * 2, "t": [0, 0, 0, 1, 1, 1], "y": range(6)})
    frame = frame.with_columns(pl.col("y").cast(pl.Float64))
    enum = pl.Enum(["c", "b", "a"])
    rows = []
    for dtype in (pl.String, pl.Categorical, enum):
        typed = frame.with_columns(pl.col("id").cast(dtype))
        clean, _ = validate_frame(typed, target="y", time_col="t", id_col="id")
        assert clean.schema["id"] == dtype
        rows.append(clean.with_columns(pl.col("id").cast(pl.String)))
    assert rows[0]["id"].to_list() == ["a", "a", "b", "b", "c", "c"]
    assert rows[0].equals(rows[1]) and rows[0].equals(rows[2])


def test_align_time_casts_the_same_instants_to_the_trained_dtype_only():
    """A time column of another unit (or a zone with the same local times) holds the times
    a model knows: cast to its dtype, a LazyFrame lazily; a unit that would round a time is
    refused, naming it with all its digits; another zone, or none for a zoned model, and
    dates are left for the schema check to refuse."""
    times = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)]
    frame = pl.DataFrame({"t": times}).cast({"t": pl.Datetime("ns")})
    micro = {"t": "Datetime(time_unit='us', time_zone=None)"}
    assert align_time(frame, micro, "t").schema["t"] == pl.Datetime("us")
    lazy = align_time(frame.lazy(), micro, "t")
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect()["t"].to_list() == times
    assert align_time(frame, micro, None) is frame
    odd = frame.with_columns(pl.col("t") + pl.duration(nanoseconds=1))
    with pytest.raises(DataValidationError, match=r"round 2 of its times \(e.g. 2024-01-01 "
                       r"00:00:00.000000001\) to the microsecond"):  # fmt: skip
        align_time(odd.lazy(), micro, "t")
    utc = {"t": "Datetime(time_unit='us', time_zone='UTC')"}
    alias = frame.with_columns(pl.col("t").dt.replace_time_zone("Etc/UTC"))
    assert align_time(alias, utc, "t").schema["t"] == pl.Datetime("us", "UTC")
    paris = alias.with_columns(pl.col("t").dt.convert_time_zone("Europe/Paris"))
    assert align_time(paris, utc, "t") is paris  # other local times: refused by the check
    assert align_time(frame, utc, "t") is frame  # no zone for a zoned model: likewise
    dates = frame.with_columns(pl.col("t").dt.date())
    assert align_time(dates, micro, "t") is dates
    with pytest.raises(DataValidationError, match=r"pl.col\('t'\).cast\(pl.Datetime"):
        check_schema(dates, micro, time_col="t")


def test_align_time_reads_a_zone_as_the_trained_one_only_where_their_clocks_never_part():
    """UTC times in January hold the local times of Europe/London at them, but not in July:
    they were read as London times for a London model in winter and refused in summer, so a
    frame's season decided. A zone is read as the trained one only where the two clocks agree
    on every day of the years its times span (Paris for Berlin, Etc/UTC for UTC), pandas
    frames too."""
    london = {"t": "Datetime(time_unit='us', time_zone='Europe/London')"}
    for month in (1, 7):
        times = [dt.datetime(2024, month, 1), dt.datetime(2024, month, 2)]
        utc = pl.DataFrame({"t": times}).with_columns(pl.col("t").dt.replace_time_zone("UTC"))
        assert align_time(utc, london, "t") is utc, month  # the schema check refuses it
        assert restore_dtypes(utc, london).schema["t"] == pl.Datetime("us", "UTC"), month
    berlin = {"t": "Datetime(time_unit='us', time_zone='Europe/Berlin')"}
    paris = utc.with_columns(pl.col("t").dt.convert_time_zone("Europe/Paris"))
    assert align_time(paris, berlin, "t").schema["t"] == pl.Datetime("us", "Europe/Berlin")
    empty = paris.clear().cast({"t": pl.Datetime("ns", "Europe/Paris")})
    assert align_time(empty, berlin, "t").schema["t"] == pl.Datetime("us", "Europe/Berlin")


def test_align_time_names_times_beyond_the_range_of_the_trained_unit():
    """Times after 2262 (microseconds) for a model trained on nanoseconds got the dtype
    error's "Cast them to the training dtypes", which no cast can do: they are named, with
    the range of the unit, lazily too."""
    far = pl.DataFrame({"t": [dt.datetime(2000, 1, 1), dt.datetime(2300, 1, 1)]})
    nanos = {"t": "Datetime(time_unit='ns', time_zone=None)"}
    for frame in (far, far.lazy()):
        with pytest.raises(DataValidationError, match=r"holds 1 time \(e.g. 2300-01-01 "
                           r"00:00:00.000000\) .*1677-09-21 to 2262-04-11"):  # fmt: skip
            align_time(frame, nanos, "t")
    assert align_time(far.head(1), nanos, "t").schema["t"] == pl.Datetime("ns")


def test_the_cast_the_dtype_error_gives_dates_makes_a_zoned_models_midnights():
    """Dates for a model trained on Europe/Berlin datetimes: the error's cast,
    pl.col('t').cast(pl.Datetime(time_unit='us', time_zone='Europe/Berlin')), gave UTC
    midnights (01:00 and 02:00 in Berlin), not the midnights it promised; it now sets the
    zone on the local midnights. Naive models keep their cast."""
    dates = pl.DataFrame({"t": [dt.date(2024, 1, 1), dt.date(2024, 7, 1)]})
    for zone in ("Europe/Berlin", None):
        schema = {"t": str(pl.Datetime("us", zone))}
        with pytest.raises(DataValidationError, match="gives their midnights") as info:
            check_schema(dates, schema, time_col="t")
        (cast,) = re.findall(r"(pl\.col\('t'\).+?) gives their midnights", str(info.value))
        times = dates.with_columns(eval(cast, {"pl": pl}))
        check_schema(times, schema, time_col="t")  # the model's dtype
        assert times["t"].dt.hour().to_list() == [0, 0], (zone, cast)


def test_trained_frame_converts_pandas_only_and_refuses_with_pandas_advice():
    pytest.importorskip("pandas")
    frame = pl.DataFrame({"t": [dt.datetime(2024, 1, 1, 9)], "y": [1.0]})
    assert trained_frame(frame, {"t": "Date"}) is frame  # polars: as it is, for the checks
    with pytest.raises(DataValidationError, match="pandas has no date type") as caught:
        trained_frame(frame.to_pandas(), {"t": "Date", "y": "Float64"}, time_col="t")
    assert "frame[name].astype" in str(caught.value) and "pl.col" not in str(caught.value)
    zoned = frame.with_columns(pl.col("t").dt.replace_time_zone("UTC")).to_pandas()
    trained = {"t": "Datetime(time_unit='ns', time_zone='Europe/Berlin')"}
    with pytest.raises(DataValidationError, match=r"\.dt\.tz_convert\(\.\.\.\)"):
        trained_frame(zoned, trained, time_col="t")
    assert trained_frame(frame.to_pandas(), {"y": "Float64", "z": "Int64"}).columns == ["t", "y"]


def test_training_frame_converts_pandas_and_advises_on_its_time_column_in_pandas_code():
    pd = pytest.importorskip("pandas")
    frame = pl.DataFrame({"t": ["2024-01-01"], "y": [1.0]})
    assert training_frame(frame, "t") is frame  # polars: as it is, for validate_frame
    with pytest.raises(DataValidationError, match=r"frame\['t'\] = pd\.to_datetime"):
        training_frame(frame.to_pandas(), "t")
    floats = pd.DataFrame({"t": [1.0, 2.0], "y": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"frame\['t'\]\.astype\('int64'\)"):
        training_frame(floats, "t")
    periods = pd.DataFrame({"t": pd.period_range("2024-01", periods=2, freq="M"), "y": [1, 2]})
    with pytest.raises(DataValidationError, match=r"frame\['t'\]\.dt\.to_timestamp\(\)"):
        training_frame(periods, "t")
    assert training_frame(floats, "other").columns == ["t", "y"]  # no such column: not read


@pytest.mark.parametrize("dtype", [pl.Date, pl.Datetime("us"), pl.Datetime("ms", "Asia/Tokyo")])
def test_pandas_nat_is_refused_as_a_time_point(dtype):
    """pandas' NaT (a datetime subclass; e.g. the max of an empty pandas column) as a cutoff
    of a Datetime column raised polars' TypeError "'float' object cannot be interpreted as an
    integer" (on a Date column: "NaTType does not support time"); it is NaT, as numpy's is."""
    pd = pytest.importorskip("pandas")
    with pytest.raises(DataValidationError, match=r"cutoff=NaT .* it is NaT \(not a time\)"):
        to_time_point(pd.NaT, dtype)


def test_the_warning_of_missing_ends_does_not_name_the_internal_id_of_a_frame_without_ids():
    """A frame without an id column (one series, its internal id 0) that ends with missing
    targets was told "1 series ends with rows whose targets are missing (e.g. 0, last observed
    at 3)" and, of two targets, "(e.g. 0, whose 'b' ...)": an id the user never gave."""
    frame = pl.DataFrame({"t": range(6), "a": [0.0, 1.0, 2.0, 3.0, None, None]})
    with pytest.warns(ForecasterWarning) as caught:
        validate_frame(frame, target="a", time_col="t", missing="ffill")
    (told,) = [str(w.message) for w in caught]
    assert "rows whose targets are missing (last observed at 3): " in told, told
    two = frame.with_columns(a=pl.col("t").cast(pl.Float64), b=pl.col("a"))
    with pytest.warns(ForecasterWarning) as caught:
        validate_frame(two, target=["a", "b"], time_col="t", missing="ffill")
    (told,) = [str(w.message) for w in caught]
    assert "but not 'b' ('b' was last observed at 3, its last row at 5)" in told, told


def test_pandas_output_keeps_a_time_its_frames_unit_cannot_reach():
    """``as_given_kind`` gives a pandas result's datetimes the frame's unit; a forecast time
    past that unit's range (after 2262-04-11 for ``datetime64[ns]``: a model fitted on dates
    or yearly steps near it) keeps the unit polars gave it (was: ``OutOfBoundsDatetime``
    out of ``predict``, where the unit was changed only to match the frame); a zone-aware
    frame's unit is given to zone-aware times, the zone kept."""
    pd = pytest.importorskip("pandas")
    from forecaster.data.dtypes import as_given_kind

    late = pl.DataFrame({"time": [dt.date(2262, 1, 1), dt.date(2300, 1, 1)]})
    kept = as_given_kind(late, True, np.dtype("datetime64[ns]"))
    assert str(kept["time"].dtype) == "datetime64[ms]"
    assert kept["time"].dt.year.tolist() == [2262, 2300]
    early = as_given_kind(late.head(1), True, np.dtype("datetime64[ns]"))
    assert str(early["time"].dtype) == "datetime64[ns]"
    paris = pl.DataFrame({"time": [dt.datetime(2024, 1, 1)]}).with_columns(
        pl.col("time").dt.replace_time_zone("Europe/Paris")
    )
    zone = pd.DatetimeTZDtype("ns", "Europe/Paris")
    zoned = as_given_kind(paris, True, zone)
    assert zoned["time"].dtype == zone and zoned["time"][0].hour == 0


def _integer_dates(days: int = 90) -> pl.DataFrame:
    """One series of ``days`` daily rows from 2024-01-01 whose time column ``t`` holds the
    dates as yyyymmdd integers (20240131, 20240201: 69 integer steps missing between)."""
    dates = pl.date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1) + dt.timedelta(days - 1), eager=True
    )
    t = dates.dt.strftime("%Y%m%d").cast(pl.Int64)
    return pl.DataFrame({"t": t, "y": np.arange(days, dtype=float)})


def test_dates_written_as_integers_are_named_by_the_gap_error_not_filled():
    """The gap error of yyyymmdd integers recommended missing='ffill' (which makes up most
    of the rows); it names the dates written as integers and how to convert them."""
    with pytest.raises(DataValidationError) as caught:
        Panel.from_frame(_integer_dates(), target="y", time_col="t")
    message = str(caught.value)
    assert "dates written as integers" in message
    assert ".str.to_date('%Y%m%d')" in message and "Pass missing='ffill'" not in message


def test_the_fill_warning_of_integer_dates_gives_the_same_advice():
    """The ffill warning and the gap error share one detection of yyyymmdd integers."""
    with pytest.warns(ForecasterWarning, match=r"str\.to_date\('%Y%m%d'\)"):
        Panel.from_frame(_integer_dates(), target="y", time_col="t", missing="ffill")

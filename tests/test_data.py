from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from forecaster.data import Frequency, Panel, infer_frequency, validate_frame
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


def test_grouped_but_unsorted_ids_keep_their_order():
    frame = pl.concat([hourly(ids=("z",), n=3), hourly(ids=("a",), n=3)])
    assert build(frame).keys["id"].to_list() == ["z", "a"]


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


def test_infer_business_days():
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 2, 29), "1d", eager=True)
    frame = pl.DataFrame({"t": days}).filter(pl.col("t").dt.weekday() <= 5).with_columns(y=1.0)
    _, freq = validate_frame(frame, target="y", time_col="t")
    assert str(freq) == "1bd"


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
    with pytest.raises(DataValidationError, match="Expected a polars DataFrame"):
        build({"t": [1], "y": [1.0]})


def test_empty_frame():
    with pytest.raises(DataValidationError, match="empty"):
        build(hourly().clear())


def test_null_ids_and_null_times():
    with pytest.raises(DataValidationError, match=r"null values.*series id"):
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
    with pytest.raises(DataValidationError, match="missing='drop' is not a policy"):
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


def test_values_on_cpu_shares_memory():
    panel = build(hourly())
    tensor = panel.values_on("cpu")
    assert tensor.data_ptr() == panel.values.ctypes.data
    assert panel.values_on("cpu") is tensor

"""Hostile input to the metrics: frames with duplicates, NaN, bad scales, mismatched keys;
array metrics given what is not an array of numbers; baselines asked for absurd horizons.

Every frame a metrics function takes goes through one check (``metrics._frame``: a polars
frame, key and numeric columns, one row per key) and every array through one conversion
(``metrics._values``). Each case checks our error type and that the message names what is
wrong, or the documented handling; nothing here writes files.
"""

from __future__ import annotations

import decimal
import math
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster import DataValidationError, ForecasterWarning
from forecaster.evaluation import metrics as M

KW = {"target": "y", "time_col": "t", "id_col": "id"}


def series(n: int = 60, ids: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    t = np.arange(n)
    return pl.DataFrame(
        {
            "id": np.repeat(ids, n),
            "t": np.tile(t, len(ids)),
            "y": np.tile(10 + np.sin(t / 5), len(ids)),
        }
    )


FULL = series()
HISTORY = FULL.filter(pl.col("t") < 57)
FORECAST = M.naive(HISTORY, 3, **KW)
SCORES = M.evaluate(FORECAST, FULL, insample=HISTORY, **KW)


def _with_value(frame: pl.DataFrame, t: int, value: float) -> pl.DataFrame:
    return frame.with_columns(
        y=pl.when(pl.col("t") == t).then(pl.lit(value)).otherwise(pl.col("y"))
    )


# ------------------------------------------------------------------------------------------
# evaluate: one frame check for forecast, actual, insample and scale
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["forecast", "actual", "insample"])
def test_duplicate_rows_are_refused_in_every_frame(frame):
    frames = {"forecast": FORECAST, "actual": FULL, "insample": HISTORY}
    frames[frame] = pl.concat([frames[frame], frames[frame].tail(1)])
    with pytest.raises(DataValidationError, match=rf"2 rows of the {frame} frame share their"):
        M.evaluate(frames["forecast"], frames["actual"], insample=frames["insample"], **KW)


def test_duplicate_forecast_rows_per_by_key_are_allowed_once_per_key():
    two = pl.concat([FORECAST.with_columns(model=pl.lit(k)) for k in ("x", "z")])
    scores = M.evaluate(two, FULL, by=["model"], **KW)
    assert scores.height == 4 and (scores["n"] == 3).all()
    with pytest.raises(DataValidationError, match=r"share their \(model, id, t\)"):
        M.evaluate(pl.concat([two, two.head(1)]), FULL, by=["model"], **KW)


def test_nan_actuals_count_as_missing_and_say_so():
    actual = _with_value(FULL, 58, float("nan"))
    with pytest.warns(ForecasterWarning, match=r"2 of 6 .* 2 NaN, which counts as missing"):
        scores = M.evaluate(FORECAST, actual, **KW)
    assert scores["n"].to_list() == [2, 2]
    assert all(math.isfinite(v) for v in scores["mae"])


def test_all_actuals_nan_is_an_error():
    actual = FULL.with_columns(y=pl.lit(float("nan")))
    with pytest.raises(DataValidationError, match=r"No forecast row has an actual value.*NaN"):
        M.evaluate(FORECAST, actual, **KW)


@pytest.mark.parametrize("frame", ["actual", "insample"])
def test_infinite_values_are_refused_naming_series_and_time(frame):
    frames = {"actual": FULL, "insample": HISTORY}
    frames[frame] = _with_value(frames[frame], 50 if frame == "insample" else 58, math.inf)
    with pytest.raises(DataValidationError, match=rf"Infinite values in 'y' of the {frame} frame"):
        M.evaluate(FORECAST, frames["actual"], insample=frames["insample"], **KW)


def test_insample_missing_a_series_is_named():
    with pytest.raises(DataValidationError, match=r"insample frame has no rows for 1 .*\['b'\]"):
        M.evaluate(FORECAST, FULL, insample=HISTORY.filter(pl.col("id") == "a"), **KW)


def test_insample_too_short_for_m_is_refused():
    with pytest.raises(DataValidationError, match=r"undefined for series \['a', 'b'\].*m=12"):
        M.evaluate(FORECAST, FULL, insample=HISTORY.filter(pl.col("t") > 50), m=12, **KW)


def test_constant_insample_gives_an_infinite_mase_with_a_warning():
    flat = HISTORY.with_columns(y=pl.lit(1.0))
    with pytest.warns(ForecasterWarning, match=r"MASE is infinite .*scale 0"):
        scores = M.evaluate(FORECAST, FULL, insample=flat, metrics="mase", **KW)
    assert all(math.isinf(v) for v in scores["mase"])


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (0, r"scale must be a finite number > 0, got 0"),
        (-2.0, r"scale must be a finite number > 0, got -2.0"),
        (math.nan, r"scale must be a finite number > 0, got nan"),
        (math.inf, r"scale must be a finite number > 0, got inf"),
        (True, r"scale must be a number, a dict"),
        ("2", r"scale must be a number, a dict"),
        ({"y": 0.0}, r"scale\['y'\] must be a finite number > 0"),
        ({"z": 1.0}, r"scale has no value for the targets \['y'\]"),
        (pl.DataFrame({"id": ["a"], "y": [1.0]}), r"no row for 1 scored series: \['b'\]"),
        (pl.DataFrame({"id": ["a", "b"], "y": [1.0, -1.0]}), r"not finite numbers > 0.*'b'"),
        (pl.DataFrame({"id": ["a", "b"], "y": [1.0, None]}), r"not finite numbers > 0"),
        (pl.DataFrame({"id": ["a", "a", "b"], "y": [1.0, 2.0, 1.0]}), r"scale frame share"),
        (pl.DataFrame({"id": ["a", "b"], "y": ["1", "2"]}), r"scale frame must hold numbers"),
        (pd.DataFrame({"id": ["a", "b"], "y": [1.0, 2.0]}), r"scale must be a number"),
    ],
    ids=lambda v: str(v)[:25],
)
def test_bad_scales_are_refused(scale, message):
    with pytest.raises(DataValidationError, match=message):
        M.evaluate(FORECAST, FULL, scale=scale, **KW)


def test_a_scale_frame_with_other_id_dtype_is_matched():
    scale = pl.DataFrame({"id": ["a", "b"], "y": [2.0, 4.0]}).with_columns(
        pl.col("id").cast(pl.Categorical)
    )
    plain = M.evaluate(FORECAST, FULL, **KW)["mae"].to_numpy()
    scaled = M.evaluate(FORECAST, FULL, scale=scale, **KW)["mae"].to_numpy()
    assert np.allclose(scaled, plain / [2.0, 4.0])


@pytest.mark.parametrize(
    ("column", "dtype", "ok"),
    [
        ("t", pl.Int32, True),
        ("t", pl.UInt16, True),
        ("id", pl.Categorical, True),
        ("t", pl.Float64, False),
        ("t", pl.String, False),
        ("id", pl.Int64, False),
    ],
)
def test_key_dtypes_differing_between_frames(column, dtype, ok):
    actual = FULL.with_columns(
        pl.col(column).replace_strict({"a": 1, "b": 2}) if dtype == pl.Int64 else pl.col(column)
    ).with_columns(pl.col(column).cast(dtype))
    if ok:
        scores = M.evaluate(FORECAST, actual, **KW)
        assert scores["n"].to_list() == [3, 3]
    else:
        with pytest.raises(DataValidationError, match=rf"key column '{column}' has different"):
            M.evaluate(FORECAST, actual, **KW)


@pytest.mark.parametrize("frame", ["forecast", "actual", "insample"])
def test_text_target_is_refused(frame):
    frames = {"forecast": FORECAST, "actual": FULL, "insample": HISTORY}
    frames[frame] = frames[frame].with_columns(pl.col("y").cast(pl.String))
    with pytest.raises(DataValidationError, match=rf"The {frame} frame must hold numbers in 'y'"):
        M.evaluate(frames["forecast"], frames["actual"], insample=frames["insample"], **KW)


@pytest.mark.parametrize(
    ("by", "message"),
    [
        (["id"], r"'id' is the id column"),
        (["t"], r"'t' is the time column"),
        ("y", r"'y' is a target"),
        (["target"], r"'target' is the name of an output column"),
        ([1], r"by must be a column name"),
        (["model", "model"], r"more than once"),
        (["model"], r"forecast frame lacks the columns \['model'\]"),
    ],
)
def test_bad_by_is_refused(by, message):
    with pytest.raises(DataValidationError, match=message):
        M.evaluate(FORECAST, FULL, by=by, **KW)


@pytest.mark.parametrize(
    "frame",
    [FULL.to_pandas(), FULL.to_dict(as_series=False), None, "data.csv"],
    ids=["pandas", "dict", "None", "path"],
)
def test_non_polars_frames_are_refused(frame):
    with pytest.raises(DataValidationError, match=r"actual frame must be a polars DataFrame"):
        M.evaluate(FORECAST, frame, **KW)


def test_a_lazy_actual_frame_works():
    scores = M.evaluate(FORECAST.lazy(), FULL.lazy(), insample=HISTORY.lazy(), **KW)
    assert scores.equals(SCORES)


# ------------------------------------------------------------------------------------------
# aggregate and owa: the same frame check
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (SCORES.to_pandas(), r"scores frame must be a polars DataFrame"),
        (SCORES.with_columns(pl.col("n").cast(pl.String)), r"numbers in 'n' \(String\)"),
        (SCORES.with_columns(pl.col("mae").cast(pl.String)), r"numbers in 'mae' \(String\)"),
        (SCORES.drop("n"), r"scores frame lacks the columns \['n'\]"),
    ],
    ids=["pandas", "text n", "text metric", "no n"],
)
def test_aggregate_refuses_bad_scores(scores, message):
    with pytest.raises(DataValidationError, match=message):
        M.aggregate(scores)


def test_aggregate_by_a_metric_or_n_is_refused():
    with pytest.raises(DataValidationError, match=r"'n' is the count of points"):
        M.aggregate(SCORES, by="n")


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (SCORES.to_pandas(), SCORES, r"scores frame must be a polars DataFrame"),
        (SCORES, SCORES.to_pandas(), r"naive2_scores frame must be a polars DataFrame"),
        (SCORES.drop("mase"), SCORES, r"scores frame lacks the columns \['mase'\]"),
        (SCORES, SCORES.with_columns(pl.col("smape").cast(pl.String)), r"numbers in 'smape'"),
    ],
    ids=["pandas", "pandas naive2", "no mase", "text smape"],
)
def test_owa_refuses_bad_frames(left, right, message):
    with pytest.raises(DataValidationError, match=message):
        M.owa(left, right)


def test_owa_against_an_exact_naive2_is_null_not_a_crash():
    exact = SCORES.with_columns(smape=pl.lit(0.0), mase=pl.lit(0.0))
    assert M.owa(SCORES, exact)["owa"].to_list() == [None]


# ------------------------------------------------------------------------------------------
# array metrics: one conversion of every input
# ------------------------------------------------------------------------------------------

BAD_ARRAYS = [
    (None, r"got None"),
    (["a"], r"an array of text"),
    ({}, r"\{\} \(a dict\)"),
    ({1.0, 2.0}, r"\(set\)"),
    ("12", r"'12' \(a string\)"),
    (b"12", r"\(bytes\)"),
    ([1j], r"complex numbers"),
    ((x for x in [1.0]), r"An iterator is used up"),
    (iter([1.0]), r"An iterator is used up"),
    (np.ma.masked_array([1.0], mask=[1]), r"mask would be ignored"),
    (np.array(["2024-01-01"], dtype="datetime64[D]"), r"an array of dates"),
    ([object()], r"Convert it to floats first"),
    ([[1.0], [2.0, 3.0]], r"inhomogeneous.*Convert it to floats first"),
]


@pytest.mark.parametrize(("value", "message"), BAD_ARRAYS, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("metric", [M.mae, M.mse, M.rmse, M.mape, M.smape])
def test_array_metrics_refuse_what_is_not_numbers(metric, value, message):
    with pytest.raises(DataValidationError, match=rf"y_true must be .*{message}"):
        metric(value, [1.0])


@pytest.mark.parametrize(
    "value",
    [
        [1.0, 2.0],
        (1, 2),
        np.array([1, 2], dtype=np.int8),
        np.array([True, False]),
        pl.Series([1.0, 2.0]),
        pd.Series([1.0, 2.0]),
        torch.tensor([1.0, 2.0]),
        [decimal.Decimal("1.5"), decimal.Decimal("2")],
    ],
    ids=lambda v: type(v).__name__,
)
def test_array_metrics_accept_arrays_of_numbers(value):
    assert math.isfinite(M.mae(value, [1.0, 2.0]))


def test_int8_inputs_do_not_overflow():
    assert M.mae(np.array([127], np.int8), np.array([-128], np.int8)) == 255.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: M.mase([1.0], [2.0], [1.0, 1.0, 1.0]), r"do not change at lag m=1.*is 0"),
        (lambda: M.mase([1.0], [2.0], [1.0, 2.0], m=2), r"insample has 2 values"),
        (lambda: M.mase([1.0], [2.0], [1.0, math.nan, 2.0]), r"holds NaN or infinite"),
        (lambda: M.mase([1.0], [2.0], None), r"insample must be an array"),
        (lambda: M.mase_scale(["a", "b"]), r"insample must be .*text"),
        (lambda: M.seasonality_test(["a"] * 30, 12), r"values must be .*text"),
        (lambda: M.seasonality_test(None, 12), r"values must be .*None"),
        (lambda: M.owa_score(1, 1, 0, 0), r"smape_naive2 must be a finite number > 0, got 0"),
        (lambda: M.owa_score(1, 1, 1, 0.0), r"mase_naive2 must be a finite number > 0"),
        (lambda: M.owa_score(1, math.nan, 1, 1), r"mase must be a finite number >= 0"),
        (lambda: M.owa_score("1", 1, 1, 1), r"smape must be .*'1' \(a string\)"),
    ],
    ids=[
        "mase constant",
        "mase short",
        "mase nan",
        "mase None",
        "mase_scale text",
        "seasonality text",
        "seasonality None",
        "owa zero",
        "owa zero mase",
        "owa nan",
        "owa text",
    ],
)
def test_scaled_metrics_refuse_undefined_scales(call, message):
    with pytest.raises(DataValidationError, match=message):
        call()


_NUMBERS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_ANY = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.lists(_NUMBERS, max_size=4),
    st.lists(st.integers(-(2**70), 2**70), max_size=4),
    st.lists(st.one_of(st.none(), st.text(max_size=2), _NUMBERS), max_size=4),
    st.dictionaries(st.text(max_size=2), _NUMBERS, max_size=2),
    st.lists(st.lists(_NUMBERS, max_size=2), max_size=3),
    st.complex_numbers(max_magnitude=10),
)


@settings(max_examples=150, deadline=None)
@given(a=_ANY, b=_ANY, metric=st.sampled_from([M.mae, M.mse, M.rmse, M.mape, M.smape]))
def test_any_input_gives_a_float_or_our_error(a, b, metric):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow of huge numbers
            result = metric(a, b)
    except DataValidationError:
        return
    assert isinstance(result, float)


# ------------------------------------------------------------------------------------------
# baselines
# ------------------------------------------------------------------------------------------


def test_naive2_on_a_seasonal_series_with_zeros_falls_back_to_naive():
    spikes = FULL.with_columns(y=(pl.col("t") % 12 == 0).cast(pl.Float64) * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy division warning leaks
        with pytest.warns(ForecasterWarning, match=r"naive2: 2 series \(\['a', 'b'\]\) pass"):
            forecast = M.naive2(spikes, 3, m=12, **KW)
    naive = M.naive(spikes, 3, **KW)
    assert forecast["y"].is_finite().all() and forecast.equals(naive)


def test_naive2_keeps_the_seasonal_adjustment_of_other_series():
    t = np.arange(120)
    smooth = 10 + 5 * np.sin(2 * np.pi * t / 12)
    spikes = (t % 12 == 0) * 10.0
    frame = pl.DataFrame(
        {"id": np.repeat(["s", "z"], 120), "t": np.tile(t, 2), "y": np.r_[smooth, spikes]}
    )
    with pytest.warns(ForecasterWarning, match=r"\['z'\]"):
        forecast = M.naive2(frame, 12, m=12, **KW)
    seasonal = forecast.filter(pl.col("id") == "s")["y"].to_numpy()
    assert np.allclose(seasonal, smooth[-12:], atol=0.5)


@pytest.mark.parametrize("baseline", ["naive", "seasonal_naive", "naive2"])
@pytest.mark.parametrize("horizon", [10**9, 2**31 - 1])
def test_absurd_horizons_are_refused_before_allocating(baseline, horizon):
    kwargs = {} if baseline == "naive" else {"m": 2}
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DataValidationError, match=rf"horizon={horizon:,} x 2 series"):
            getattr(M, baseline)(FULL, horizon, **kwargs, **KW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20 and time.perf_counter() - started < 10


@pytest.mark.parametrize("horizon", [0, -1, 2.0, "3", True, None, 2**31])
def test_bad_horizons_name_the_parameter(horizon):
    with pytest.raises(DataValidationError, match=r"^horizon must be an integer"):
        M.naive(FULL, horizon, **KW)

"""Hostile input to the metrics: frames with duplicates, NaN, bad scales, mismatched keys;
null, NaN or infinite forecasts; score frames that cannot be pooled or that score other
points than Naive2's; columns named like temporary columns; array metrics given what is not
an array of numbers; baselines asked for absurd horizons.

Every frame a metrics function takes goes through one check (``metrics.checked_frame``: a
polars frame, key and numeric columns, one row per key), every array through one conversion
(``metrics.float_values``), every temporary column gets a name no column of the frames has
(``forecaster._columns.temporary_names``). Each case checks our error type and that the
message names what is wrong, or the documented handling; nothing here writes files.
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
        ({"z": 1.0}, r"scale has values for \['z'\], which are not targets .*'y'"),
        ({}, r"scale has no value for the targets \['y'\]. Pass one value per target"),
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


# ------------------------------------------------------------------------------------------
# forecasts are the model's output: null, NaN or infinite ones are refused, never skipped
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf], ids=str)
def test_forecasts_that_are_not_finite_numbers_are_refused(value):
    forecast = FORECAST.with_columns(
        y=pl.when(pl.col("id") == "a").then(pl.lit(value, pl.Float64)).otherwise(pl.col("y"))
    )
    kind = "Infinite values" if value is not None and math.isinf(value) else "Missing values"
    with pytest.raises(
        DataValidationError, match=rf"{kind} .* of the forecast frame[:,] e\.g\. at \('a', 57\)"
    ):
        M.evaluate(forecast, FULL, insample=HISTORY, **KW)


def test_one_missing_forecast_of_two_targets_is_refused():
    two = FULL.with_columns(z=pl.col("y") * 2)
    forecast = M.naive(two.filter(pl.col("t") < 57), 3, **{**KW, "target": ["y", "z"]})
    forecast = forecast.with_columns(z=pl.when(pl.col("t") == 58).then(None).otherwise("z"))
    with pytest.raises(DataValidationError, match=r"\{'z': 2\} of the forecast frame"):
        M.evaluate(forecast, two, **{**KW, "target": ["y", "z"]})


@settings(max_examples=25, deadline=None)
@given(
    missing=st.lists(st.booleans(), min_size=6, max_size=6).filter(lambda m: not all(m)),
    nan=st.booleans(),
)
def test_n_is_the_number_of_points_every_metric_is_the_mean_over(missing, nan):
    # actual values missing at random (null or NaN): n counts what is scored, and every
    # metric is the mean over exactly those points
    hole = math.nan if nan else None
    actual = (
        FULL.with_row_index("row")
        .with_columns(
            y=pl.when(
                pl.col("row").is_in(
                    [57 + i % 3 + 60 * (i // 3) for i, m in enumerate(missing) if m]
                )
            )
            .then(pl.lit(hole, pl.Float64))
            .otherwise(pl.col("y"))
        )
        .drop("row")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        scores = M.evaluate(FORECAST, actual, **KW)
    joined = FORECAST.join(actual, on=["id", "t"], suffix="_a").filter(
        pl.col("y_a").is_not_null() & pl.col("y_a").is_not_nan()
    )
    for key, group in joined.group_by("id"):
        row = scores.filter(pl.col("id") == key[0]).row(0, named=True)
        err = (group["y"] - group["y_a"]).to_numpy()
        assert row["n"] == group.height
        assert row["mae"] == pytest.approx(np.abs(err).mean())
        assert row["mape"] == pytest.approx(
            100 * np.mean(np.abs(err) / group["y_a"].abs().to_numpy())
        )
    assert scores["n"].sum() == 6 - sum(missing)


# ------------------------------------------------------------------------------------------
# aggregate: rows that cannot be pooled
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mae": None}, r"holds null scores in 'mae' \(1 rows, e\.g\. \{'id': 'a'"),
        ({"smape": None}, r"holds null scores in 'smape'"),
        ({"n": None}, r"counts of points that are not whole numbers > 0 in 'n'"),
        ({"n": 0}, r"not whole numbers > 0 in 'n'"),
        ({"n": -3}, r"not whole numbers > 0 in 'n'"),
        ({"n": 1.5}, r"not whole numbers > 0 in 'n'"),
        ({"n": math.nan}, r"not whole numbers > 0 in 'n'"),
    ],
    ids=["null mae", "null smape", "null n", "n 0", "n negative", "n 1.5", "n NaN"],
)
def test_aggregate_refuses_rows_it_cannot_pool(change, message):
    ((column, value),) = change.items()
    scores = SCORES.with_columns(
        pl.when(pl.col("id") == "a").then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    with pytest.raises(DataValidationError, match=rf"The scores frame .*{message}"):
        M.aggregate(scores)
    if column != "mae":  # owa reads n, smape and mase
        with pytest.raises(DataValidationError, match=rf"The naive2_scores frame .*{message}"):
            M.owa(SCORES, scores)


def test_aggregate_keeps_a_nan_score_visible():
    scores = SCORES.with_columns(mape=pl.when(pl.col("id") == "a").then(math.nan).otherwise("mape"))
    pooled = M.aggregate(scores)
    assert math.isnan(pooled["mape"].item()) and math.isfinite(pooled["mae"].item())


def test_aggregate_pools_with_weights_n():
    scores = pl.DataFrame({"id": ["a", "b"], "n": [1, 3], "mae": [4.0, 0.0]})
    assert M.aggregate(scores)["mae"].item() == 1.0


# ------------------------------------------------------------------------------------------
# owa: the two frames must score the same points
# ------------------------------------------------------------------------------------------

THREE = pl.concat([FULL, series(ids=("c",)).with_columns(y=pl.col("y") * 3)])
THREE_HISTORY = THREE.filter(pl.col("t") < 57)
NAIVE2 = M.evaluate(M.naive2(THREE_HISTORY, 3, m=1, **KW), THREE, insample=THREE_HISTORY, **KW)
MODEL = M.evaluate(
    M.naive2(THREE_HISTORY, 3, m=1, **KW).with_columns(pl.col("y") + 0.05),
    THREE,
    insample=THREE_HISTORY,
    **KW,
)


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (MODEL, NAIVE2.filter(pl.col("id") != "c"), r"1 rows of scores have no match .*'c'"),
        (MODEL.filter(pl.col("id") != "c"), NAIVE2, r"1 rows of naive2_scores have no match .*'c'"),
        (MODEL, NAIVE2.with_columns(n=pl.col("n") * 2), r"pool a different number of points"),
        (
            MODEL.drop("id")
            .group_by("target")
            .agg(pl.col("n").sum(), pl.col("smape", "mase").mean()),
            NAIVE2.filter(pl.col("id") != "c")
            .drop("id")
            .group_by("target")
            .agg(pl.col("n").sum(), pl.col("smape", "mase").mean()),
            r"pool a different number of points",
        ),
        (
            MODEL.with_columns(fold=pl.lit(0)),
            NAIVE2.with_columns(fold=pl.lit(1)),
            r"matched on \['id', 'target', 'fold'\]",
        ),
    ],
    ids=["naive2 lacks c", "model lacks c", "other n", "pooled other n", "other fold"],
)
def test_owa_refuses_scores_of_other_points(left, right, message):
    with pytest.raises(DataValidationError, match=message):
        M.owa(left, right)


def test_owa_of_the_same_points_in_another_order_and_id_dtype():
    expected = M.owa(MODEL, NAIVE2)["owa"].item()
    shuffled = NAIVE2.reverse().with_columns(pl.col("id").cast(pl.Categorical))
    assert M.owa(MODEL, shuffled)["owa"].item() == pytest.approx(expected)
    # a column that only one frame has is not a key (e.g. the model's name)
    assert M.owa(MODEL.with_columns(model=pl.lit("rnn")), NAIVE2)["owa"].item() == pytest.approx(
        expected
    )


# ------------------------------------------------------------------------------------------
# mase_scale refuses what mase refuses; metrics named once
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("insample", "m", "message"),
    [
        ([1.0, 2.0, 3.0], 3, r"insample has 3 values, .*needs more than m=3"),
        ([1.0], 1, r"insample has 1 values"),
        ([], 1, r"insample has 0 values"),
        ([1.0, math.nan, 3.0, 4.0], 1, r"holds NaN or infinite values"),
        ([1.0, math.inf, 3.0], 1, r"holds NaN or infinite values"),
    ],
    ids=["m = len", "one value", "empty", "nan", "inf"],
)
def test_mase_scale_refuses_what_mase_refuses(insample, m, message):
    with pytest.raises(DataValidationError, match=message):
        M.mase_scale(insample, m)
    with pytest.raises(DataValidationError, match=message):
        M.mase([1.0], [2.0], insample, m)


def test_mase_scale_of_a_constant_series_is_zero_and_mase_refuses_it():
    assert M.mase_scale([2.0, 2.0, 2.0]) == 0.0
    with pytest.raises(DataValidationError, match=r"do not change at lag m=1"):
        M.mase([1.0], [2.0], [2.0, 2.0, 2.0])


@pytest.mark.parametrize("metrics", [["mae", "mae"], ["smape", "mae", "smape"]], ids=str)
def test_evaluate_refuses_a_metric_named_twice(metrics):
    with pytest.raises(
        DataValidationError, match=r"metrics lists \['(mae|smape)'\] more than once"
    ):
        M.evaluate(FORECAST, FULL, metrics=metrics, **KW)


# ------------------------------------------------------------------------------------------
# key and target columns named like forecaster's temporary columns
# ------------------------------------------------------------------------------------------

TEMPORARY = [
    "__actual__",
    "__forecast__",
    "__mase_scale__",
    "__error_scale__",
    "y__actual__",
    "__series__",
    "_last",
    "_k",
    "n_naive2",
    "target_1",
]


@pytest.mark.parametrize("role", ["id", "t", "y"])
@pytest.mark.parametrize("name", TEMPORARY)
def test_evaluate_and_baselines_with_columns_named_like_temporary_columns(name, role):
    kw = {"id": {"id_col": name}, "t": {"time_col": name}, "y": {"target": name}}[role]
    keys = {**KW, **kw}
    full, history = FULL.rename({role: name}), HISTORY.rename({role: name})
    scale = pl.DataFrame({keys["id_col"]: ["a", "b"], keys["target"]: [2.0, 4.0]})
    scores = M.evaluate(
        M.naive(history, 3, **keys), full, insample=history, scale=scale, by=(), **keys
    )
    expected = M.evaluate(
        FORECAST, FULL, insample=HISTORY, scale=scale.rename({name: role}, strict=False), **KW
    )
    assert (
        scores.rename({name: role} if role == "id" else {})
        .drop("target")
        .equals(expected.drop("target"))
    )
    assert (
        M.naive2(history, 3, m=2, **keys)
        .rename({name: role})
        .equals(M.naive2(HISTORY, 3, m=2, **KW))
    )
    assert M.owa(scores, scores)["owa"].to_list() == [1.0]


@pytest.mark.parametrize("name", ["__series__", "__actual__", "_last"])
def test_a_frame_without_id_whose_extra_column_is_named_like_the_series_column(name):
    one, one_history = (
        FULL.filter(pl.col("id") == "a").drop("id"),
        HISTORY.filter(pl.col("id") == "a").drop("id"),
    )
    kw = {"target": "y", "time_col": "t"}
    plain = M.evaluate(M.naive(one_history, 3, **kw), one, insample=one_history, **kw)
    extra, extra_history = (
        one.with_columns(pl.lit(7.0).alias(name)),
        one_history.with_columns(pl.lit(7.0).alias(name)),
    )
    forecast = M.naive(extra_history, 3, **kw)
    assert forecast.equals(M.naive(one_history, 3, **kw))
    assert M.evaluate(
        forecast.with_columns(pl.lit(7.0).alias(name)), extra, insample=extra_history, **kw
    ).equals(plain)


@pytest.mark.parametrize(("target", "what"), [("t", "the time column"), ("id", "the id column")])
def test_a_target_that_is_also_a_key_column_is_refused(target, what):
    """target="t" raised polars' raw DuplicateError; target=id_col a misleading "must hold
    numbers" error."""
    with pytest.raises(DataValidationError, match=rf"target '{target}' is also {what}"):
        M.evaluate(FORECAST, FULL, **{**KW, "target": target})


def test_pooling_refuses_an_infinite_count_and_owa_names_the_frame_that_lacks_by():
    """n = inf reached a raw polars cast error; owa(by=...) blamed 'scores' for a column
    missing from naive2_scores."""
    scores = pl.DataFrame({"model": ["m"], "n": [1.0], "smape": [1.0], "mase": [1.0]})
    with pytest.raises(DataValidationError, match=r"not whole numbers > 0 in 'n'"):
        M.aggregate(scores.with_columns(n=pl.lit(math.inf)))
    with pytest.raises(DataValidationError, match=r"naive2_scores frame lacks .*'model'"):
        M.owa(scores, scores.drop("model"), by="model")


def test_insample_or_m_that_nothing_uses_are_refused():
    """evaluate(insample="garbage", metrics=["mae"]) was accepted unchecked and m=24 without
    insample had no effect: both were ignored without a word."""
    with pytest.raises(DataValidationError, match=r"insample is used only for MASE"):
        M.evaluate(FORECAST, FULL, insample="garbage", metrics=["mae"], **KW)
    with pytest.raises(DataValidationError, match=r"m=24 is the seasonal period of MASE"):
        M.evaluate(FORECAST, FULL, m=24, **KW)


def test_a_one_row_insample_gets_the_scale_message_not_advice_to_pass_freq():
    """A one-row in-sample series was told to pass freq=, which evaluate does not take."""
    forecast, history = pl.DataFrame({"t": [4], "y": [5.0]}), pl.DataFrame({"t": [3], "y": [4.0]})
    with pytest.raises(DataValidationError, match=r"undefined for the series: at most m=1"):
        M.evaluate(forecast, forecast, target="y", time_col="t", insample=history)

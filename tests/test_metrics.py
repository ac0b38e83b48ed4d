from __future__ import annotations

import datetime as dt
import math
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster import DataValidationError, ForecasterWarning
from forecaster.evaluation.array_metrics import mase_scales
from forecaster.evaluation.metrics import (
    METRICS,
    aggregate,
    evaluate,
    mae,
    mape,
    mase,
    mase_scale,
    mse,
    naive,
    naive2,
    owa,
    owa_score,
    rmse,
    seasonal_naive,
    seasonality_test,
    smape,
)
from forecaster.exceptions import InfiniteScoreWarning

M4 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m4"

# ---------------------------------------------------------------- array metrics


def test_array_metrics_on_a_hand_computed_example():
    y = [2.0, 4.0, 5.0, 10.0]
    f = [1.0, 4.0, 8.0, 6.0]  # errors -1, 0, 3, -4
    assert mae(y, f) == pytest.approx(8 / 4)
    assert mse(y, f) == pytest.approx(26 / 4)
    assert rmse(y, f) == pytest.approx(math.sqrt(26 / 4))
    assert mape(y, f) == pytest.approx(100 * (1 / 2 + 0 + 3 / 5 + 4 / 10) / 4)
    assert smape(y, f) == pytest.approx(200 * (1 / 3 + 0 + 3 / 13 + 4 / 16) / 4)


def test_smape_counts_zero_over_zero_as_perfect_and_is_bounded():
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert smape([0.0], [5.0]) == 200.0
    assert smape([1.0, -1.0], [-1.0, 1.0]) == 200.0


def test_nan_forecasts_propagate_in_array_metrics_and_are_refused_in_frames():
    assert math.isnan(smape([1.0, 2.0], [np.nan, 2.0]))
    actual = pl.DataFrame({"time": [1, 2], "y": [1.0, 2.0]})
    forecast = pl.DataFrame({"time": [1, 2], "y": [float("nan"), 2.0]})
    with pytest.raises(DataValidationError, match=r"\{'y': 1\} of the forecast frame.*time=1"):
        evaluate(forecast, actual, target="y")


def test_mape_is_infinite_with_a_zero_actual():
    assert math.isinf(mape([0.0, 1.0], [1.0, 1.0]))


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    insample = [1.0, 3.0, 2.0, 6.0, 4.0]
    assert mase_scale(insample) == pytest.approx((2 + 1 + 4 + 2) / 4)
    assert mase_scale(insample, m=2) == pytest.approx((1 + 3 + 2) / 3)
    with pytest.raises(DataValidationError, match=r"insample has 2 values.*more than m=2"):
        mase_scale([1.0, 2.0], m=2)
    assert mase([5.0, 7.0], [6.0, 6.0], insample, m=2) == pytest.approx(1.0 / 2.0)


def test_mase_scale_of_a_series_does_not_depend_on_the_series_before_it():
    """Each series' scale comes from its own differences: after a series of changes of ~1e12
    the changes of ~1e-3 of the next one are not lost to the rounding of a running total
    over the whole panel (it gave b a scale of 0, an infinite MASE and a false warning)."""
    rng = np.random.default_rng(0)
    big = np.cumsum(rng.normal(0, 1e12, 200))
    small = 1.0 + np.cumsum(rng.normal(0, 1e-3, 200))
    hist = pl.DataFrame({"id": ["a"] * 200 + ["b"] * 200, "time": [*range(200)] * 2})
    hist = hist.with_columns(y=pl.Series(np.r_[big, small]))
    actual = pl.DataFrame({"id": ["a", "b"], "time": [200, 200], "y": [big[-1], small[-1] + 1e-3]})
    forecast = actual.with_columns(pl.col("y") - pl.Series([0.0, 1e-3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)  # no "do not change at lag m" warning
        both = evaluate(forecast, actual, target="y", id_col="id", insample=hist)
    alone = mase([small[-1] + 1e-3], [small[-1]], small)
    assert both.filter(pl.col("id") == "b")["mase"].item() == pytest.approx(alone, rel=1e-12)
    # the scales of the packed panel, also up to earlier ends (the backtest's folds)
    for spread in (1e8, 1e10, 1e12):
        a = 1e12 + np.cumsum(rng.normal(0, spread, 300))
        b = 0.05 + np.cumsum(rng.normal(0, 1e-3, 300))
        ends = np.array([[299, 299], [150, 99]])
        scales = mase_scales(np.r_[a, b][:, None], np.array([0, 300, 600]), 1, ends=ends)
        assert scales[0, 1, 0] == pytest.approx(mase_scale(b), rel=1e-12)
        assert scales[1, 1, 0] == pytest.approx(mase_scale(b[:100]), rel=1e-12)
        assert scales[1, 0, 0] == pytest.approx(mase_scale(a[:151]), rel=1e-12)


def test_aggregate_weights_scaled_scores_by_the_points_whose_scale_is_defined():
    """n_scaled (a backtest's score frames) weights mase, msis and scrps: a row pooling 4
    points of which only 1 has a MASE scale counts once there; without the column, n."""
    rows = pl.DataFrame(
        {
            "n": [4, 2],
            "n_scaled": [1, 2],
            "mae": [1.0, 4.0],
            "mase": [3.0, 6.0],
            "scrps": [1.0, 4.0],
        }
    )
    pooled = aggregate(rows).row(0, named=True)
    assert pooled["n_scaled"] == 3 and pooled["mae"] == pytest.approx(2.0)
    assert pooled["mase"] == pytest.approx(5.0) and pooled["scrps"] == pytest.approx(3.0)
    assert aggregate(rows.drop("n_scaled"))["mase"].item() == pytest.approx(4.0)
    undefined = rows.with_columns(n_scaled=pl.Series([0, 2]), mase=pl.Series([float("nan"), 6.0]))
    assert aggregate(undefined.drop("scrps"))["mase"].item() == pytest.approx(6.0)
    for bad in ([5, 2], [1, None], [0, 2]):  # above n, null, 0 beside a mase of 3
        with pytest.raises(DataValidationError, match="'n_scaled' must count the points"):
            aggregate(rows.with_columns(n_scaled=pl.Series(bad)))


def test_owa_score():
    assert owa_score(10.0, 1.0, 20.0, 4.0) == pytest.approx(0.5 * (0.5 + 0.25))


@pytest.mark.parametrize("mase_of_model", [1.0, float("inf")])
def test_owa_against_an_infinite_naive2_score_is_null(mase_of_model):
    """Naive2's MASE is inf on a series flat in-sample that it misses: the OWA was half the
    sMAPE ratio (a finite MASE over inf counted 0) or NaN (inf / inf). Null, as against an
    exact Naive2 and as a backtest's skill ratio to an infinite baseline score."""
    model = pl.DataFrame({"id": ["a"], "n": [2], "smape": [8.0], "mase": [mase_of_model]})
    naive2_scores = model.with_columns(smape=pl.lit(16.0), mase=pl.lit(float("inf")))
    assert owa(model, naive2_scores)["owa"].to_list() == [None]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mae([1.0, 2.0], [1.0]), "same shape"),
        (lambda: mse([], []), "empty"),
        (lambda: mase_scale([1.0, 2.0], m=0), "m \\(the seasonal period\\)"),
    ],
)
def test_array_metric_errors(call, message):
    with pytest.raises(DataValidationError, match=message):
        call()


# ---------------------------------------------------------------- evaluate / aggregate / owa


def two_series() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    history = pl.DataFrame(
        {
            "id": ["a"] * 4 + ["b"] * 4,
            "t": [0, 1, 2, 3] * 2,
            "y": [1.0, 2.0, 4.0, 7.0, 10.0, 10.0, 12.0, 8.0],
        }
    )
    future = pl.DataFrame(
        {"id": ["a", "a", "b", "b"], "t": [4, 5, 4, 5], "y": [8.0, 9.0, 10.0, 10.0]}
    )
    forecast = pl.DataFrame(
        {"id": ["a", "a", "b", "b"], "t": [4, 5, 4, 5], "y": [7.0, 7.0, 12.0, 8.0]}
    )
    return history, future, forecast


def test_evaluate_per_series_values():
    history, future, forecast = two_series()
    scores = evaluate(
        forecast,
        pl.concat([history, future]),
        target="y",
        time_col="t",
        id_col="id",
        insample=history,
    )
    assert scores.columns == ["id", "target", "n", *METRICS]
    a, b = scores.row(0, named=True), scores.row(1, named=True)
    assert (a["id"], a["target"], a["n"]) == ("a", "y", 2)
    assert a["mae"] == pytest.approx(1.5)  # errors -1, -2
    assert a["mse"] == pytest.approx(2.5)
    assert a["rmse"] == pytest.approx(math.sqrt(2.5))
    assert a["mape"] == pytest.approx(100 * (1 / 8 + 2 / 9) / 2)
    assert a["smape"] == pytest.approx(200 * (1 / 15 + 2 / 16) / 2)
    assert a["mase"] == pytest.approx(1.5 / 2.0)  # scale: |1|, |2|, |3| -> 2
    assert b["mae"] == pytest.approx(2.0)
    assert b["mase"] == pytest.approx(2.0 / 2.0)  # scale: 0, 2, 4 -> 2


def test_evaluate_seasonal_mase_scale_and_metric_subset():
    history, future, forecast = two_series()
    scores = evaluate(
        forecast,
        future,
        target="y",
        time_col="t",
        id_col="id",
        insample=history,
        m=2,
        metrics=["mase", "mae"],
    )
    assert scores.columns == ["id", "target", "n", "mae", "mase"]
    # a: |4-1|, |7-2| -> 4; b: |12-10|, |8-10| -> 2
    assert scores["mase"].to_list() == pytest.approx([1.5 / 4, 2.0 / 2])


def test_evaluate_several_targets_without_id_and_extra_keys():
    actual = pl.DataFrame({"time": [1, 2], "u": [1.0, 2.0], "v": [10.0, 20.0]})
    forecast = pl.DataFrame(
        {
            "model": ["x", "x", "z", "z"],
            "time": [1, 2, 1, 2],
            "u": [1.0, 4.0, 1.0, 2.0],
            "v": [10.0, 20.0, 0.0, 0.0],
        }
    )
    scores = evaluate(forecast, actual, target=["u", "v"], by="model", metrics=["mae"])
    assert scores.rows() == [
        ("x", "u", 2, 1.0),
        ("z", "u", 2, 0.0),
        ("x", "v", 2, 0.0),
        ("z", "v", 2, 15.0),
    ]


def test_evaluate_scale_divides_absolute_errors_only():
    _, future, forecast = two_series()
    kw = {"target": "y", "time_col": "t", "id_col": "id", "metrics": ["mae", "mse", "smape"]}
    plain = evaluate(forecast, future, **kw)
    halved = evaluate(forecast, future, scale=2.0, **kw)
    assert halved["mae"].to_list() == pytest.approx((plain["mae"] / 2).to_list())
    assert halved["mse"].to_list() == pytest.approx((plain["mse"] / 4).to_list())
    assert halved["smape"].to_list() == pytest.approx(plain["smape"].to_list())
    per_series = pl.DataFrame({"id": ["b", "a"], "y": [4.0, 1.0]})
    mixed = evaluate(forecast, future, scale=per_series, **kw)
    assert mixed["mae"].to_list() == pytest.approx([1.5, 2.0 / 4])
    assert evaluate(forecast, future, scale={"y": 2.0}, **kw).equals(halved)
    with pytest.raises(DataValidationError, match=r"scale has values for \['c'\], which are"):
        evaluate(forecast, future, scale={"y": 2.0, "c": 3.0}, **kw)  # was: c ignored


def test_evaluate_refuses_a_scale_that_no_chosen_metric_uses():
    """scale divides MAE, MSE and RMSE only: with metrics=["mape", "smape"] it was accepted
    and changed nothing."""
    _, future, forecast = two_series()
    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    with pytest.raises(DataValidationError, match=r"scale divides the errors of .* holds none"):
        evaluate(forecast, future, metrics=["mape", "smape"], scale=1000.0, **kw)
    evaluate(forecast, future, metrics=["smape", "rmse"], scale=1000.0, **kw)  # rmse uses it


def test_evaluate_refuses_an_insample_that_reaches_into_the_forecasts():
    """insample=<the whole frame> measured MASE's scale on the values being scored and later
    ones (a look-ahead: MASE 200x lower after multiplying the later values by 1000)."""
    history, future, forecast = two_series()
    kw = {"target": "y", "time_col": "t", "id_col": "id", "metrics": ["mae", "mase"]}
    evaluate(forecast, future, insample=history, **kw)
    whole = pl.concat([history, future])
    with pytest.raises(DataValidationError, match=r"reaches into the forecasts for 2 series"):
        evaluate(forecast, future, insample=whole, **kw)
    one_late = pl.concat([history, future.filter((pl.col("id") == "b") & (pl.col("t") == 4))])
    with pytest.raises(DataValidationError, match=r"for 1 series \(series 'b': insample up to 4"):
        evaluate(forecast, future, insample=one_late, **kw)


def test_evaluate_names_the_first_late_series_by_the_text_of_its_id():
    """An Enum id whose categories list "b" first named series 'b' as the first series whose
    insample reaches into the forecasts; series are ordered by their ids' text everywhere
    (forecaster.data.frames.id_order), so it is 'a', as with String ids."""
    history, future, forecast = two_series()
    kw = {"target": "y", "time_col": "t", "id_col": "id", "metrics": ["mae", "mase"]}
    as_enum = pl.col("id").cast(pl.Enum(["b", "a"]))
    frames = [f.with_columns(as_enum) for f in (forecast, future, pl.concat([history, future]))]
    assert frames[2]["id"].sort()[0] == "b"  # the Enum's order
    with pytest.raises(DataValidationError, match=r"for 2 series \(series 'a': insample"):
        evaluate(frames[0], frames[1], insample=frames[2], **kw)


def test_evaluate_unmatched_rows():
    history, future, forecast = two_series()
    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    with pytest.warns(ForecasterWarning, match="2 of 4 forecast rows have no actual"):
        scores = evaluate(forecast, future.filter(pl.col("t") == 4), **kw)
    assert scores["n"].to_list() == [1, 1]
    with pytest.raises(DataValidationError, match="No forecast row has an actual value"):
        evaluate(forecast, history, **kw)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["mase"]}, "needs the in-sample data"),
        ({"metrics": ["accuracy"]}, "Unknown metrics"),
        ({"metrics": []}, "Unknown metrics"),
        ({"target": "z"}, "lacks the columns \\['z'\\]"),
        ({"m": 0}, "seasonal period"),
        ({"scale": "big"}, "scale must be a number"),
    ],
)
def test_evaluate_errors(kwargs, message):
    _, future, forecast = two_series()
    params = {"target": "y", "time_col": "t", "id_col": "id", **kwargs}
    with pytest.raises(DataValidationError, match=message):
        evaluate(forecast, future, **params)


def test_aggregate_pools_points():
    scores = pl.DataFrame(
        {
            "fold": [0, 0, 1],
            "target": ["y", "y", "y"],
            "n": [1, 3, 2],
            "mae": [4.0, 0.0, 1.0],
            "rmse": [4.0, 0.0, 1.0],
        }
    )
    total = aggregate(scores)
    assert total.columns == ["target", "n", "mae", "rmse"]
    assert total.row(0) == pytest.approx(("y", 6, 6.0 / 6, math.sqrt(18.0 / 6)))
    by_fold = aggregate(scores, by="fold")
    assert by_fold["mae"].to_list() == pytest.approx([1.0, 1.0])
    assert by_fold["rmse"].to_list() == pytest.approx([2.0, 1.0])


def test_aggregate_pools_a_backtests_baselines_and_recomputes_their_skill():
    """A backtest's metrics carry mae_naive and mae_skill_naive beside mae: aggregate dropped
    them, so the pooled score had no baseline beside it."""
    metrics = pl.DataFrame(
        {
            "fold": [0, 1],
            "n": [1, 3],
            "mae": [4.0, 1.0],
            "mae_naive": [2.0, 2.0],
            "mae_skill_naive": [2.0, 0.5],
            "rmse": [4.0, 1.0],
            "rmse_naive": [2.0, 2.0],
            "rmse_skill_naive": [2.0, 0.5],
            "mae_snaive": [0.0, 0.0],
            "mae_skill_snaive": [None, None],
        }
    )
    pooled = aggregate(metrics)
    assert pooled.columns == [
        "n", "n_naive", "n_snaive", "mae", "mae_naive", "mae_skill_naive", "mae_snaive",
        "mae_skill_snaive", "rmse", "rmse_naive", "rmse_skill_naive",
    ]  # fmt: skip
    row = pooled.row(0, named=True)
    assert row["mae"] == pytest.approx(7 / 4) and row["mae_naive"] == pytest.approx(2.0)
    assert row["mae_skill_naive"] == pytest.approx(7 / 8)  # 1.75 / 2, not the mean of ratios
    assert row["rmse"] == pytest.approx(math.sqrt(19 / 4))
    assert row["rmse_skill_naive"] == pytest.approx(math.sqrt(19 / 4) / 2)
    assert row["mae_snaive"] == 0.0 and row["mae_skill_snaive"] is None  # no ratio to exact
    per_fold = aggregate(metrics, by="fold")
    assert per_fold["mae_skill_naive"].to_list() == [2.0, 0.5]


@pytest.mark.parametrize("counted", [True, False])
def test_aggregate_pools_a_baseline_and_its_skill_over_the_rows_it_forecast(counted):
    """A backtest block whose origin has fewer than m values has no seasonal-naive forecast
    (NaN scores). Its mae_snaive pooled to NaN while mase_snaive skipped the block: now every
    baseline column pools the rows where the baseline has a forecast, the model's score in
    the skill ratio the same rows, and n_snaive counts their points."""
    metrics = pl.DataFrame(
        {
            "fold": [0, 0, 1, 1],
            "n": [2, 2, 2, 2],
            "n_naive": [2, 2, 2, 2],
            "n_snaive": [2, 0, 2, 2],
            "mae": [1.0, 9.0, 2.0, 3.0],
            "mae_naive": [2.0, 3.0, 2.0, 2.0],
            "mae_skill_naive": [0.5, 3.0, 1.0, 1.5],
            "mae_snaive": [4.0, float("nan"), 4.0, 4.0],
            "mae_skill_snaive": [0.25, float("nan"), 0.5, 0.75],
            "mase": [1.0, float("nan"), 2.0, 3.0],  # the short block's scale: undefined
            "mase_snaive": [4.0, float("nan"), 4.0, 4.0],
            "mase_skill_snaive": [0.25, float("nan"), 0.5, 0.75],
        }
    )
    if not counted:  # a frame without the counts: read from the NaN scores
        metrics = metrics.drop("n_naive", "n_snaive")
    row = aggregate(metrics).row(0, named=True)
    assert row["n"] == 8 and row["mae"] == pytest.approx(15 / 4)
    assert row["mae_naive"] == pytest.approx(9 / 4)
    assert row["mae_skill_naive"] == pytest.approx(15 / 9)  # every row: the naive forecast all
    assert row["n_snaive"] == 6 and row["mae_snaive"] == pytest.approx(4.0)  # was NaN
    assert row["mae_skill_snaive"] == pytest.approx((6 / 3) / 4)  # the model on those 6 points
    assert row["mase_snaive"] == pytest.approx(4.0) and row["mase"] == pytest.approx(2.0)
    assert row["mase_skill_snaive"] == pytest.approx(2.0 / 4.0)
    assert row["n_naive"] == 8
    by_fold = aggregate(metrics, by="fold")
    assert by_fold["n_snaive"].to_list() == [2, 4]
    assert by_fold["mae_snaive"].to_list() == pytest.approx([4.0, 4.0])
    assert by_fold["mae_skill_snaive"].to_list() == pytest.approx([0.25, 2.5 / 4])
    none = aggregate(metrics.filter(pl.col("mae_snaive").is_nan()))  # no forecast at all
    assert np.isnan(none["mae_snaive"].item()) and np.isnan(none["mae_skill_snaive"].item())
    assert none["n_snaive"].item() == 0 and none["mae"].item() == 9.0


def test_aggregate_refuses_a_baseline_count_of_part_of_a_row():
    """A row pooled from several blocks (score("fold")) may hold a baseline's forecasts for
    only some of its points: the model's score on those is not in the frame, so its skill
    ratio cannot be pooled again."""
    by_fold = pl.DataFrame(
        {"fold": [0, 1], "n": [12, 12], "n_snaive": [6, 12], "mae": [2.0, 2.0],
         "mae_snaive": [1.0, 1.0], "mae_skill_snaive": [2.5, 2.0]}
    )  # fmt: skip
    with pytest.raises(DataValidationError, match=r"'n_snaive' must be 0 or n .*score\(by="):
        aggregate(by_fold)
    with pytest.raises(DataValidationError, match="'n_snaive' is the count of points"):
        aggregate(by_fold.with_columns(pl.col("n_snaive").alias("n")), by="n_snaive")


@pytest.mark.parametrize("column", ["model", "baseline"])
def test_aggregate_refuses_to_pool_several_models_into_one_score(column):
    """evaluate(..., by="model") and a backtest's baselines hold several models' scores: one
    pooled number of them (here MAE 5, between the models' 1 and 9) describes no model."""
    scores = pl.DataFrame(
        {
            column: ["rnn", "rnn", "naive", "naive"],
            "id": ["a", "b", "a", "b"],
            "target": "y",
            "n": [4, 4, 4, 4],
            "mae": [1.0, 1.0, 9.0, 9.0],
        }
    )
    message = rf"2 models .* {column}=\['rnn', 'naive'\] .* Pass by='{column}'"
    with pytest.raises(DataValidationError, match=message):
        aggregate(scores)
    with pytest.raises(DataValidationError, match=message):
        aggregate(scores, by="id")  # still pools the models per series
    per_model = aggregate(scores, by=column)
    assert per_model.rows() == [("rnn", "y", 8, 1.0), ("naive", "y", 8, 9.0)]
    one = aggregate(scores.filter(pl.col(column) == "rnn"))  # one model: pooled as before
    assert one.rows() == [("y", 8, 1.0)]
    # numbers are not names: a backtest's folds number the refits of one estimator "model"
    refits = scores.with_columns(pl.Series(column, [0, 1, 2, 3]))
    assert aggregate(refits).rows() == [("y", 16, 5.0)]


def test_owa_is_a_ratio_of_set_averages():
    model = pl.DataFrame({"id": ["a", "b"], "n": [2, 2], "smape": [10.0, 30.0], "mase": [1.0, 3.0]})
    base = pl.DataFrame({"id": ["a", "b"], "n": [2, 2], "smape": [40.0, 40.0], "mase": [1.0, 1.0]})
    out = owa(model, base)
    assert out.columns == ["smape", "mase", "smape_naive2", "mase_naive2", "owa"]
    # averages 20 / 40 and 2 / 1, not the average of per-series ratios
    assert out["owa"].item() == pytest.approx(0.5 * (20 / 40 + 2 / 1))
    grouped = owa(
        model.with_columns(fold=pl.Series([0, 1])),
        base.with_columns(fold=pl.Series([0, 1])),
        by="fold",
    )
    assert grouped["owa"].to_list() == pytest.approx([0.5 * (0.25 + 1), 0.5 * (0.75 + 3)])


# ---------------------------------------------------------------- baselines


def hourly(values: np.ndarray, ident: str = "a") -> pl.DataFrame:
    start = dt.datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "id": ident,
            "time": [start + dt.timedelta(hours=i) for i in range(len(values))],
            "y": np.asarray(values, dtype=np.float64),
        }
    )


def test_naive_and_seasonal_naive_values_shapes_and_times():
    frame = pl.concat([hourly(np.arange(1.0, 11.0)), hourly(np.arange(20.0, 26.0), "b")])
    fc = naive(frame, 4, target="y", id_col="id")
    assert fc.columns == ["id", "time", "y"]
    assert fc.schema["y"] == pl.Float64
    assert fc["y"].to_list() == [10.0] * 4 + [25.0] * 4
    assert fc["time"][0] == dt.datetime(2024, 1, 1, 10)
    assert fc["time"][4] == dt.datetime(2024, 1, 1, 6)
    sn = seasonal_naive(frame, 5, m=3, target="y", id_col="id")
    assert sn["y"].to_list() == [8.0, 9.0, 10.0, 8.0, 9.0, 23.0, 24.0, 25.0, 23.0, 24.0]
    assert sn.select("id", "time").equals(
        naive(frame, 5, target="y", id_col="id").select("id", "time")
    )


def test_baselines_keep_float64_precision_and_several_targets():
    frame = pl.DataFrame({"t": [0, 1, 2], "u": [1.0, 2.0, 123456.789], "v": [3.0, 2.0, 1.0]})
    fc = naive(frame, 2, target=["u", "v"], time_col="t")
    assert fc.rows() == [(3, 123456.789, 1.0), (4, 123456.789, 1.0)]


def test_seasonal_naive_needs_m_values():
    frame = pl.concat([hourly(np.ones(30)), hourly(np.ones(5), "short")])
    with pytest.raises(DataValidationError, match=r"at least 24 values.*'short'"):
        seasonal_naive(frame, 3, m=24, target="y", id_col="id")


def r_like_naive2(y: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """M4's Benchmarks() for Naive2, written out per series with loops (R semantics)."""
    n = len(y)
    lag_max = min(int(np.floor(10 * np.log10(n))), n - 1)
    seasonal = False
    if n >= 3 * m and lag_max >= m:
        d = y - y.mean()
        acf = [np.sum(d[k:] * d[: n - k]) / np.sum(d * d) for k in range(1, m + 1)]
        limit = 1.645 / np.sqrt(n) * np.sqrt(1 + 2 * sum(a * a for a in acf[: m - 1]))
        seasonal = abs(acf[m - 1]) > limit
    if not seasonal:
        return np.full(horizon, y[-1])
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    half = len(w) // 2
    trend = np.full(n, np.nan)
    for i in range(half, n - half):
        trend[i] = np.dot(w, y[i - half : i + half + 1])
    ratio = y / trend
    figure = np.array([np.nanmean(ratio[p::m]) for p in range(m)])
    figure /= figure.mean()
    seasonal_index = figure[np.arange(n) % m]
    adjusted_last = y[-1] / seasonal_index[-1]
    return adjusted_last * figure[(n + np.arange(horizon)) % m]


@pytest.mark.parametrize(("m", "length"), [(24, 300), (24, 301), (7, 80), (12, 61)])
def test_naive2_matches_a_loop_implementation_of_m4(m, length):
    rng = np.random.default_rng(m + length)
    t = np.arange(length)
    y = 50 + 0.05 * t + 10 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, length)
    frames = [hourly(y, "seasonal"), hourly(50 + rng.normal(0, 1, length), "noise")]
    fc = naive2(pl.concat(frames), 30, m=m, target="y", id_col="id")
    assert fc["id"].to_list() == ["noise"] * 30 + ["seasonal"] * 30  # series in id order
    seasonal = fc.filter(pl.col("id") == "seasonal")["y"].to_numpy()
    noise = fc.filter(pl.col("id") == "noise")["y"].to_numpy()
    np.testing.assert_allclose(seasonal, r_like_naive2(y, 30, m), rtol=1e-12)
    np.testing.assert_allclose(noise, r_like_naive2(frames[1]["y"].to_numpy(), 30, m), rtol=1e-12)
    assert seasonality_test(y, m)
    assert not np.allclose(seasonal, y[-1])  # seasonal adjustment applied
    assert noise.tolist() == [frames[1]["y"][-1]] * 30  # noise: plain naive


def test_naive2_is_naive_without_seasonality():
    frame = hourly(np.sin(np.arange(200) / 3.0) + 5)
    assert naive2(frame, 6, m=1, target="y", id_col="id").equals(
        naive(frame, 6, target="y", id_col="id")
    )


def test_seasonality_test_edge_cases():
    t = np.arange(500)
    y = 10 + np.sin(2 * np.pi * t / 24)
    assert seasonality_test(y, 24)
    assert not seasonality_test(y[:71], 24)  # fewer than 3 m values
    # R's acf() stops at lag floor(10 log10(n)) = 20 < 24 for n = 100: M4 says "not seasonal"
    assert not seasonality_test(y[:100], 24)
    assert seasonality_test(y[:252], 24)  # floor(10 log10(252)) = 24
    assert not seasonality_test(np.ones(200), 24)
    assert not seasonality_test(y, 1)


# ---------------------------------------------------------------- the official M4 scores


def read_m4(name: str, test: bool = False) -> pl.DataFrame:
    """An M4 wide file as a long frame (id, t, y); test rows continue each series' times."""
    path = M4 / (f"{name}-test.csv" if test else f"{name}-train.csv.gz")
    wide = pl.read_csv(path, infer_schema_length=0)
    values = wide.drop("V1").cast(pl.Float64).to_numpy()
    present = ~np.isnan(values)
    lengths = present.sum(axis=1)
    assert all(present[i, : lengths[i]].all() for i in range(len(lengths)))  # right-padded
    return pl.DataFrame(
        {
            "id": np.repeat(wide["V1"].to_numpy(), lengths),
            "t": np.nonzero(present)[1],
            "y": values[present],
        }
    )


def m4_split(name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    if not (M4 / f"{name}-train.csv.gz").exists():
        pytest.skip(f"M4 {name} data not found at {M4} (the shared data folder beside the repo)")
    train = read_m4(name)
    lengths = train.group_by("id").agg(pl.len().alias("n"))
    test = (
        read_m4(name, test=True)
        .join(lengths, on="id")
        .with_columns(pl.col("t") + pl.col("n"))
        .drop("n")
    )
    return train, test


def test_m4_hourly_official_scores():
    train, test = m4_split("Hourly")
    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    forecasts = {
        "Naive": naive(train, 48, **kw),
        "sNaive": seasonal_naive(train, 48, m=24, **kw),
        "Naive2": naive2(train, 48, m=24, **kw),
    }
    scores = {
        name: evaluate(fc, test, insample=train, m=24, metrics=["smape", "mase"], **kw)
        for name, fc in forecasts.items()
    }
    official = {"Naive": (43.003, 11.608), "sNaive": (13.912, 1.193), "Naive2": (18.383, 2.395)}
    for name, (s, m) in official.items():
        total = aggregate(scores[name])
        assert total["n"].item() == 414 * 48
        assert round(total["smape"].item(), 3) == s, name
        assert round(total["mase"].item(), 3) == m, name
    # the official OWA (m4_official_point_forecast_scores.csv): sNaive 0.6275, Naive 3.593
    assert round(owa(scores["sNaive"], scores["Naive2"])["owa"].item(), 4) == 0.6275
    assert round(owa(scores["Naive"], scores["Naive2"])["owa"].item(), 3) == 3.593
    seasonal = [seasonality_test(s["y"].to_numpy(), 24) for s in train.partition_by("id")]
    assert sum(seasonal) == 413  # as the data README reports


def test_m4_weekly_official_naive_score():
    train, test = m4_split("Weekly")
    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    scores = evaluate(naive(train, 13, **kw), test, insample=train, m=1, **kw)
    total = aggregate(scores)
    assert (round(total["smape"].item(), 3), round(total["mase"].item(), 3)) == (9.161, 2.777)


def test_mase_of_a_flat_history_is_infinite_even_with_exact_points():
    """Scale 0 (a constant history) and one exact forecast point: the point's 0/0 made the
    mean NaN, against the warning's 'MASE is infinite'."""
    insample = pl.DataFrame({"time": range(10), "y": [5.0] * 10})
    actual = pl.DataFrame({"time": [10, 11, 12], "y": [5.0, 6.0, 6.0]})
    forecast = pl.DataFrame({"time": [10, 11, 12], "y": [5.0, 5.0, 5.0]})
    with pytest.warns(ForecasterWarning, match="MASE is infinite"):
        out = evaluate(forecast, actual, target="y", insample=insample, metrics=["mase"])
    assert out["mase"][0] == float("inf")
    with warnings.catch_warnings():  # every point exact: no error to scale, nothing infinite
        warnings.simplefilter("error")  # (it warned "MASE is infinite" beside a MASE of 0)
        exact = evaluate(forecast, forecast, target="y", insample=insample, metrics=["mase"])
    assert exact["mase"][0] == 0.0


def test_an_infinite_msis_of_an_exact_forecast_is_named_as_such():
    """A flat history, an exact point forecast (MASE 0) in an interval of width 2 around it:
    MSIS is infinite though the forecast misses no point, which the warning said it did."""
    insample = pl.DataFrame({"id": ["a"] * 4, "time": [1, 2, 3, 4], "y": [2.0] * 4})
    actual = pl.DataFrame({"id": ["a", "a"], "time": [5, 6], "y": [2.0, 2.0]})
    forecast = actual.with_columns(y_lo_80=pl.col("y") - 1, y_hi_80=pl.col("y") + 1)
    with pytest.warns(InfiniteScoreWarning, match=r"^MSIS is infinite for series \['a'\]") as got:
        out = evaluate(forecast, actual, target="y", id_col="id", insample=insample)
    assert out["mase"][0] == 0.0 and out["msis_80"][0] == float("inf")
    (message,) = [str(w.message) for w in got if "infinite" in str(w.message)]
    assert "misses" not in message and "intervals and quantiles of no width" in message


def test_an_infinite_mape_is_named():
    """An actual 0 that the forecast misses made MAPE inf without a word (MASE's infinite
    scores warn); an exact forecast of 0 scores 0 and is not named."""
    actual = pl.DataFrame({"id": ["a", "a", "b", "b"], "time": [1, 2, 1, 2], "y": [0.0, 2, 0, 2]})
    forecast = actual.with_columns(
        pl.when(pl.col("id") == "a").then(pl.col("y") + 1).otherwise("y")
    )
    with pytest.warns(InfiniteScoreWarning, match=r"MAPE is infinite for series \['a'\] \(col"):
        out = evaluate(forecast, actual, target="y", id_col="id", metrics=["mae", "mape"])
    assert out["mape"].to_list() == [float("inf"), 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(actual, actual, target="y", id_col="id", metrics=["mape"])


def test_missing_actuals_of_one_target_are_counted_per_target():
    """z had no actual value at all (or some): it vanished from the result (or was partly
    left out) without a word, since a row counted as matched when any target had one."""
    forecast = pl.DataFrame({"time": [1, 2, 3], "y": [2.0, 2, 3], "z": [4.0, 6, 9]})
    actual = pl.DataFrame({"time": [1, 2, 3], "y": [1.0, 2, 3], "z": [None, 5.0, None]})
    with pytest.warns(ForecasterWarning, match=r"2 \('z'\) of 3 forecast rows have no actual"):
        out = evaluate(forecast, actual, target=["y", "z"], metrics=["mae"])
    assert out["n"].to_list() == [3, 1]
    none = actual.with_columns(pl.lit(None, pl.Float64).alias("z"))
    with pytest.warns(ForecasterWarning, match=r"\['z'\] has none, so the result has no row"):
        out = evaluate(forecast, none, target=["y", "z"], metrics=["mae"])
    assert out["target"].to_list() == ["y"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_seasonality_test_refuses_values_that_are_not_finite(bad):
    """One NaN made every autocorrelation NaN, and a clearly seasonal series 'not seasonal'."""
    values = np.tile([1.0, 2.0, 3.0, 9.0], 20)
    assert seasonality_test(values, 4)
    values[5] = bad
    with pytest.raises(DataValidationError, match=r"1 of the 80 values are NaN or infinite"):
        seasonality_test(values, 4)


def test_null_ids_are_refused_not_dropped():
    """A series with a null id matched nothing: evaluate dropped it, saying its rows had no
    actual row although the actual frame held them."""
    actual = pl.DataFrame({"id": ["a", "a", None, None], "time": [1, 2, 1, 2], "y": [1.0, 2, 3, 4]})
    forecast = actual.with_columns(pl.col("y") + 1)
    with pytest.raises(DataValidationError, match=r"nulls in its key columns \['id'\] \(2 in"):
        evaluate(forecast, actual, target="y", id_col="id", metrics=["mae"])


def test_mase_refuses_an_insample_with_a_missing_step():
    """Time 3 missing: the scale paired values 2 rows apart, not 2 steps (0.2 instead of
    the scale of the real lag-2 pairs)."""
    insample = pl.DataFrame({"time": [0, 1, 2, 4, 5, 6], "y": [0.0, 10, 0, 0, 10, 0]})
    actual, forecast = (pl.DataFrame({"time": [7], "y": [v]}) for v in (5.0, 6.0))
    with pytest.raises(DataValidationError, match=r"regular grid: 1 time steps are missing"):
        evaluate(forecast, actual, target="y", insample=insample, m=2, metrics=["mase"])
    filled = insample.vstack(pl.DataFrame({"time": [3], "y": [None]}, schema=insample.schema))
    with pytest.warns(ForecasterWarning, match="MASE is infinite"):  # the real pairs: scale 0
        out = evaluate(forecast, actual, target="y", insample=filled, m=2, metrics=["mase"])
    assert out["mase"][0] == float("inf")


def test_mase_takes_series_of_different_frequencies_each_on_its_own_grid():
    """An hourly and a daily series in one insample: the one grid check of the whole frame
    refused the hourly one as off the daily grid. A missing hour is still refused."""
    start = dt.datetime(2020, 1, 1)
    hours = pl.datetime_range(start, dt.datetime(2020, 1, 3), "1h", eager=True)
    days = pl.datetime_range(start, dt.datetime(2020, 3, 1), "1d", eager=True)
    insample = pl.concat(
        [
            pl.DataFrame({"id": "h", "time": hours, "y": np.arange(len(hours), dtype=float)}),
            pl.DataFrame({"id": "d", "time": days, "y": np.arange(len(days), dtype=float)}),
        ]
    )
    after = [hours[-1] + dt.timedelta(hours=1), days[-1] + dt.timedelta(days=1)]
    actual = pl.DataFrame({"id": ["h", "d"], "time": after, "y": [1.0, 1.0]})
    forecast = actual.with_columns(pl.lit(2.0).alias("y"))
    out = evaluate(forecast, actual, target="y", id_col="id", insample=insample, metrics="mase")
    assert out["mase"].to_list() == [1.0, 1.0]  # each series' own naive step is 1
    gappy = insample.filter(pl.col("time") != dt.datetime(2020, 1, 2, 5))
    with pytest.raises(DataValidationError, match=r"regular grid: 1 time steps are missing"):
        evaluate(forecast, actual, target="y", id_col="id", insample=gappy, metrics="mase")


@pytest.mark.parametrize("key", [{"id_col": "n"}, {"by": "mae"}])
def test_a_key_named_like_an_output_column_is_refused(key):
    """A key column 'n' or 'mae' raised polars' DuplicateError."""
    name = key.get("id_col") or key["by"]
    actual = pl.DataFrame({name: ["a", "a"], "time": [3, 4], "y": [5.0, 9.0]})
    forecast = actual.with_columns(pl.col("y") + 1)
    if "by" in key:
        actual = actual.drop(name)
    with pytest.raises(
        DataValidationError, match=rf"Key column '{name}' has the name of an output"
    ):
        evaluate(forecast, actual, target="y", metrics=["mae"], **key)


@pytest.mark.parametrize("name", ["mse", "n_scaled", "mae_naive", "mae_skill_snaive", "pinball"])
def test_a_key_named_like_a_column_aggregate_reads_is_refused(name):
    """An id named like a count or score column evaluate did not write (``mse`` beside
    ``metrics=["mae"]``, ``n_scaled``, a baseline's score) was accepted, and aggregate then
    pooled the ids as that column (a made-up naive score and skill ratio, ids as the weights
    of MASE); one named like an interval score raised polars' DuplicateError. Refused."""
    actual = pl.DataFrame({name: [1, 1, 2, 2], "time": [3, 4, 3, 4], "y": [5.0, 9.0, 1.0, 2.0]})
    forecast = actual.with_columns(pl.col("y") + 1, y_q10=pl.col("y") - 1, y_q90=pl.col("y") + 2)
    with pytest.raises(
        DataValidationError, match=rf"Key column '{name}' has the name of a column that aggregate"
    ):
        evaluate(forecast, actual, target="y", id_col=name, metrics=["mae"])


def test_uint64_ids_beyond_int64_match_narrower_integer_ids():
    """Ids above 2**63 - 1 (hashes) against UInt32 ones raised polars' InvalidOperationError
    (both were cast to Int64); they are compared as Int128."""
    big = 2**63 + 5
    forecast = pl.DataFrame({"id": [big, 1], "time": [1, 1], "y": [1.0, 2.0]})
    forecast = forecast.with_columns(pl.col("id").cast(pl.UInt64))
    actual = forecast.with_columns(pl.col("id").cast(pl.Int128), pl.col("y") + 1)
    small = actual.filter(pl.col("id") == 1).with_columns(pl.col("id").cast(pl.UInt32))
    out = evaluate(forecast.filter(pl.col("id") == 1), small, target="y", id_col="id")
    assert out["mae"].to_list() == [1.0]
    with pytest.warns(ForecasterWarning, match="1 of 2 forecast rows have no actual"):
        out = evaluate(forecast, small, target="y", id_col="id", metrics=["mae"])
    assert out["id"].to_list() == [1]


def test_aggregate_refuses_an_empty_scores_frame():
    scores = pl.DataFrame({"n": [1], "mae": [4.0], "rmse": [4.0]})
    with pytest.raises(DataValidationError, match="empty scores frame"):  # was n=0 and NaN
        aggregate(scores.clear())


def test_mape_counts_an_actual_zero_forecast_exactly_as_zero():
    """0/0 made the series' MAPE NaN (and every pooled MAPE with it), where the docs said
    infinite and sMAPE counts such a point as 0; a missed zero is still infinite."""
    assert mape([0.0, 100.0], [0.0, 110.0]) == 5.0
    assert mape([0.0, 100.0], [1.0, 110.0]) == math.inf
    actual = pl.DataFrame({"t": [1, 2], "y": [0.0, 100.0]})
    forecast = pl.DataFrame({"t": [1, 2], "y": [0.0, 110.0]})
    scores = evaluate(forecast, actual, target="y", time_col="t", metrics=["mape"])
    assert scores["mape"].to_list() == [5.0]


def test_owa_pools_the_point_counts_rather_than_matching_on_them():
    """owa() took a backtest frame's n_scaled (a count aggregate keeps) as a key: a Naive2
    frame without it failed with a polars ColumnNotFoundError (review)."""
    model = pl.DataFrame(
        {
            "id": ["a", "b"],
            "n": [2, 2],
            "n_scaled": [2, 2],
            "smape": [8.0, 10.0],
            "mase": [1.0, 1.0],
        }
    )
    naive2 = model.drop("n_scaled").with_columns(pl.col("smape") * 2, pl.col("mase") * 2)
    for base in (naive2, naive2.with_columns(n_scaled=pl.lit(2))):
        result = owa(model, base)
        assert result.columns == ["smape", "mase", "smape_naive2", "mase_naive2", "owa"]
        assert result["owa"].to_list() == [0.5]


# ---------------------------------------------------------------- pooling points


def test_summarize_forecasts_pools_each_forecast_as_summarize_points_alone():
    """One group-by for several forecasts of the same points (a backtest's model and its
    baselines): each frame is, bit for bit, ``summarize_points`` of a frame holding that
    forecast, with groups of many sizes, null actual values, NaN MASE scales and a divisor."""
    from forecaster.evaluation.frames import PointColumns, summarize_forecasts, summarize_points

    rng = np.random.default_rng(3)
    n = 5_000
    columns = PointColumns.avoiding(["g", "h"])
    points = pl.DataFrame(
        {
            "g": np.sort(rng.integers(0, 300, n)),
            "h": rng.integers(0, 3, n),
            columns.forecast: rng.normal(10, 3, n),
            columns.actual: rng.normal(10, 3, n),
            columns.mase_scale: np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 2, n)),
            columns.error_scale: rng.uniform(0.5, 2, n),
            "naive": rng.normal(10, 3, n),
            "snaive": np.round(rng.normal(10, 3, n)),
        },
    )
    unknown = pl.Series(rng.random(n) < 0.05)  # actual values not there: not scored
    points = points.with_columns(pl.when(~unknown).then(pl.col(columns.actual)).name.keep())
    others = {"naive": "naive", "snaive": "snaive"}
    for by in (["g"], ["h"], []):
        ours, theirs = summarize_forecasts(
            points, by, list(METRICS), columns, count_scaled=True, others=others
        )
        alone = summarize_points(points, by, list(METRICS), columns, count_scaled=True)
        assert_frame_equal(ours, alone, check_exact=True)
        for name, column in others.items():
            forecast = points.with_columns(pl.col(column).alias(columns.forecast))
            expected = summarize_points(forecast, by, list(METRICS), columns)
            assert_frame_equal(theirs[name], expected, check_exact=True)


def test_summarize_key_sets_pools_as_one_group_by_per_key_set():
    """The points' scores computed once for several key sets (a backtest's three): each
    frame bit for bit that of its own group-by, with null actual values (not scored), NaN
    MASE scales, a divisor and interval columns."""
    from polars.testing import assert_frame_equal

    from forecaster.evaluation.frames import (
        PointColumns,
        summarize_forecasts,
        summarize_key_sets,
    )
    from forecaster.evaluation.intervals import IntervalColumns

    rng = np.random.default_rng(4)
    n = 6_000
    columns = PointColumns.avoiding(["g", "h", "y_lo_80", "y_hi_80"])
    values = rng.normal(10, 3, n)
    points = pl.DataFrame(
        {
            "g": np.sort(rng.integers(0, 250, n)),
            "h": rng.integers(0, 3, n),
            columns.forecast: values,
            columns.actual: rng.normal(10, 3, n),
            columns.mase_scale: np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 2, n)),
            columns.error_scale: rng.uniform(0.5, 2, n),
            "naive": rng.normal(10, 3, n),
            "y_lo_80": values - 2,
            "y_hi_80": values + 2,
        }
    )
    unknown = pl.Series(rng.random(n) < 0.05)  # actual values not there: not scored
    points = points.with_columns(pl.when(~unknown).then(pl.col(columns.actual)).name.keep())
    intervals = IntervalColumns.find(points.columns, ["y"], avoid=points.columns)
    assert intervals is not None  # the points' bounds under its names
    points = points.rename({"y_lo_80": intervals.lo[0], "y_hi_80": intervals.hi[0]})
    key_sets = [["g"], ["h", "g"], ["h"], []]
    shared = summarize_key_sets(points, key_sets, list(METRICS), columns, intervals,
                                count_scaled=True, others={"naive": "naive"})  # fmt: skip
    for by, (ours, theirs) in zip(key_sets, shared, strict=True):
        alone, alone_theirs = summarize_forecasts(
            points, by, list(METRICS), columns, intervals, count_scaled=True,
            others={"naive": "naive"},
        )  # fmt: skip
        assert_frame_equal(ours, alone, check_exact=True)
        assert_frame_equal(theirs["naive"], alone_theirs["naive"], check_exact=True)


def test_summarize_points_mase_without_undefined_scales_is_the_filtered_mean(monkeypatch):
    """With no MASE scale undefined (NaN), MASE pools as the plain mean over the points: the
    same bits as the mean over the points whose scale is defined (``scaled_mean``, forced
    here), which it is, for groups of many sizes (one pass less through each group)."""
    from polars.testing import assert_frame_equal

    import forecaster.evaluation.frames as frames
    from forecaster.evaluation.frames import PointColumns, summarize_points

    rng = np.random.default_rng(11)
    columns = PointColumns.avoiding(["g", "h"])
    for n, groups in ((40, 3), (900, 60), (5_000, 150), (24_000, 1_000)):
        points = pl.DataFrame(
            {
                "g": np.sort(rng.integers(0, groups, n)),
                "h": rng.integers(0, 4, n),
                columns.forecast: rng.normal(10, 3, n),
                columns.actual: rng.normal(10, 3, n),
                columns.mase_scale: rng.uniform(0, 2, n).round(1),  # some 0: exact ratios
            }
        )
        for by in (["g"], ["h"]):  # (many groups of several keys: not the same bits run to run)
            with monkeypatch.context() as patched:
                patched.setattr(frames, "_scales_defined", lambda points, column: False)
                expected = summarize_points(points, by, list(METRICS), columns)
            got = summarize_points(points, by, list(METRICS), columns)
            assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize(
    ("insample", "problem"),
    [
        (pl.DataFrame({"time": [0], "y": [1.0]}), "is undefined for the series"),
        (pl.DataFrame({"time": [0, 1, 3], "y": [1.0, 2.0, 4.0]}), "regular grid"),
        (pl.DataFrame({"time": [9], "y": [1.0]}).clear(), "no rows for 1 forecast series"),
    ],
)
@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ({"y_lo_80": [5.0], "y_hi_80": [7.0]}, "MSIS"),
        ({"y_q10": [5.0], "y_q90": [7.0]}, "sCRPS"),
        ({"y_lo_80": [5.0], "y_hi_80": [7.0], "y_q10": [5.0], "y_q90": [7.0]}, "MSIS and sCRPS"),
    ],
)
def test_insample_scale_errors_name_what_uses_the_scale(insample, problem, columns, named):
    """With interval columns and metrics=["mae"], only MSIS / sCRPS use the in-sample scale:
    the errors said "MASE's scale" and advised "drop 'mase' from metrics", a metric not
    asked for (the call then failed the same way). With MASE asked too, dropping it alone
    does not help: insample must go as well. They name the scores the forecast has: MSIS of
    interval columns, sCRPS of quantile columns (both were named for either)."""
    actual = pl.DataFrame({"time": [0, 1, 2, 3, 4], "y": [1.0, 2.0, 4.0, 7.0, 5.0]})
    forecast = pl.DataFrame({"time": [4], "y": [6.0], **columns})
    verb = "are" if " and " in named else "is"
    with pytest.raises(DataValidationError, match=problem) as only_intervals:
        evaluate(forecast, actual, target="y", insample=insample, metrics=["mae"])
    assert "mase" not in str(only_intervals.value).lower()
    assert f"or leave insample out ({named} {verb} then not scored)" in str(only_intervals.value)
    assert ("MSIS" in str(only_intervals.value)) == ("MSIS" in named)
    assert ("sCRPS" in str(only_intervals.value)) == ("sCRPS" in named)
    with pytest.raises(DataValidationError, match=problem) as both:
        evaluate(forecast, actual, target="y", insample=insample, metrics=["mae", "mase"])
    listed = "MASE, MSIS and sCRPS" if " and " in named else f"MASE and {named}"
    assert listed in str(both.value)
    assert "drop 'mase' from metrics and leave insample out" in str(both.value)
    with pytest.raises(DataValidationError, match=problem) as point:  # no intervals: as before
        evaluate(forecast.select("time", "y"), actual, target="y", insample=insample)
    assert str(point.value).endswith("or drop 'mase' from metrics.")


@pytest.mark.parametrize(
    ("columns", "message", "score"),
    [
        ({"y_lo_80": [1.0], "y_hi_80": [2.0]}, "MSIS is infinite for the series", "msis_80"),
        ({"y_q10": [1.0], "y_q90": [2.0]}, "sCRPS is infinite for the series", "scrps"),
    ],
)
def test_flat_insample_warns_of_the_scores_it_makes_infinite(columns, message, score):
    """A flat history with only interval scores scaled: the warning said "MASE is infinite"
    though no MASE was asked for; the forecast's MSIS (sCRPS) is the infinite one (both
    were named for either)."""
    actual = pl.DataFrame({"time": [0, 1, 2, 3], "y": [1.0, 1.0, 1.0, 2.0]})
    forecast = pl.DataFrame({"time": [3], "y": [1.5], **columns})
    with pytest.warns(ForecasterWarning, match=message):
        out = evaluate(forecast, actual, target="y", insample=actual.head(3), metrics=["mae"])
    assert out[score][0] == float("inf")


def _noisy_forecast(n_series: int, n_times: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Actual values of ``n_series`` series of ``n_times`` integer times, and a forecast of
    every point with a ``step`` column (1..24)."""
    rng = np.random.default_rng(0)
    ids = np.repeat([f"s{i:04d}" for i in range(n_series)], n_times)
    t = np.tile(np.arange(n_times), n_series)
    actual = pl.DataFrame({"id": ids, "time": t, "y": rng.normal(10, 3, t.size)})
    noise = pl.Series(rng.normal(0, 1, t.size))
    forecast = actual.with_columns(y=pl.col("y") + noise, step=pl.col("time") % 24 + 1)
    return forecast, actual


def test_evaluate_gives_the_same_bits_every_call():
    """Polars' default engine (streaming) summed each group's points in another order from
    call to call: evaluate by series and step of 144,000 points (4,800 groups) gave 5
    different frames in 5 calls, at one Polars thread as at two. Its queries are collected
    by the in-memory engine (forecaster._polars.collect)."""
    forecast, actual = _noisy_forecast(200, 720)
    first = evaluate(forecast, actual, target="y", id_col="id", by=["step"])
    for _ in range(3):
        again = evaluate(forecast, actual, target="y", id_col="id", by=["step"])
        assert_frame_equal(again, first, check_exact=True)


def test_pooling_many_points_into_few_groups_gives_the_same_bits_every_call():
    """2,000,000 points into 24 steps, MAE only: with each group's count a bare pl.len(),
    Polars (in memory, two threads) could compute every aggregation by parts and ran its
    partitioned group-by, whose sums change order from call to call (8 different frames in 8
    calls); the streaming engine before gave 5 in 8. The count is cast (see
    forecaster._polars)."""
    from forecaster.evaluation.frames import PointColumns, summarize_forecasts

    rng = np.random.default_rng(0)
    n = 2_000_000
    columns = PointColumns.avoiding(["step"])
    points = pl.DataFrame(
        {
            "step": rng.integers(1, 25, n),
            columns.forecast: rng.normal(10, 3, n),
            columns.actual: rng.normal(10, 3, n),
        }
    )
    first, _ = summarize_forecasts(points, ["step"], ["mae"], columns)
    for _ in range(5):
        again, _ = summarize_forecasts(points, ["step"], ["mae"], columns)
        assert_frame_equal(again, first, check_exact=True)

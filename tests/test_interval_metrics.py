"""Interval and quantile metrics: the array metrics against hand-computed values and the M4
guide's MSIS, their frame scores in evaluate / aggregate / owa, and the conformal seasonal naive
baseline."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster import DataValidationError
from forecaster.estimators.conformal_ranks import signed_quantile
from forecaster.evaluation import (
    aggregate,
    coverage,
    evaluate,
    interval_width,
    msis,
    pinball_loss,
    scaled_crps,
    seasonal_naive,
    winkler_score,
)
from forecaster.evaluation.intervals import conformal_rank, quantile_name
from forecaster.evaluation.metrics import METRICS, IntervalColumns, mae, mase, owa

M4 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m4"

# ---------------------------------------------------------------- array metrics


def test_array_interval_metrics_on_hand_computed_values():
    y = [10.0, 30.0, 5.0, 15.0]
    lo = [8.0, 8.0, 8.0, 15.0]
    hi = [20.0, 20.0, 20.0, 15.0]
    assert coverage(y, lo, hi) == 0.5  # 10 and 15 (on both bounds) are inside
    assert interval_width(lo, hi) == (12 + 12 + 12 + 0) / 4
    # level 50: a = 0.5, 2 / a = 4; penalties 4 * 10 (30 > 20) and 4 * 3 (5 < 8)
    assert winkler_score(y, lo, hi, level=50) == (36 + 40 + 12) / 4
    # pinball of q = 0.9 at y - f = 2, -1: 0.9 * 2 and 0.1 * 1
    assert pinball_loss([3.0, 3.0], [1.0, 4.0], 0.9) == pytest.approx((1.8 + 0.1) / 2)
    # pinball of 0.5 is half the MAE
    rng = np.random.default_rng(0)
    a, f = rng.normal(size=50), rng.normal(size=50)
    assert pinball_loss(a, f, 0.5) == pytest.approx(mae(a, f) / 2)
    # several quantiles: mean over points and quantiles
    preds = np.array([[1.0, 3.0, 4.0], [2.0, 2.5, 5.0]])
    by_hand = np.mean(
        [
            max(q * (y_ - f_), (q - 1) * (y_ - f_))
            for y_, row in zip([3.0, 2.0], preds, strict=True)
            for q, f_ in zip([0.1, 0.5, 0.9], row, strict=True)
        ]
    )
    assert pinball_loss([3.0, 2.0], preds, [0.1, 0.5, 0.9]) == pytest.approx(by_hand)
    assert scaled_crps([3.0, 2.0], preds, [0.1, 0.5, 0.9], scale=4.0) == pytest.approx(
        2 * by_hand / 4
    )
    # the median alone: scaled CRPS is MAE / scale (MASE with the MASE scale)
    insample = [1.0, 2.0, 4.0, 7.0]
    assert scaled_crps([5.0, 6.0], [[6.0], [6.0]], [0.5], scale=2.0) == mase(
        [5.0, 6.0], [6.0, 6.0], insample
    )


def test_scaled_crps_approaches_the_crps_of_a_normal_forecast():
    """CRPS(N(0, 1), y) = z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi); twice the mean pinball
    loss over many evenly spread quantiles approaches it."""
    normal = NormalDist()
    qs = [i / 200 for i in range(1, 200)]
    for y in (0.0, 0.7, -2.5):
        exact = y * (2 * normal.cdf(y) - 1) + 2 * normal.pdf(y) - 1 / math.sqrt(math.pi)
        preds = [[normal.inv_cdf(q) for q in qs]]
        assert scaled_crps([y], preds, qs, scale=1.0) == pytest.approx(exact, rel=0.01)
        assert scaled_crps([y], preds, qs, scale=2.0) == pytest.approx(exact / 2, rel=0.01)


def test_msis_by_the_m4_guide_on_a_hand_example():
    """M4 guide: MSIS = mean((U - L) + 2/a (L - Y) 1{Y < L} + 2/a (Y - U) 1{Y > U}) divided by
    the in-sample mean of |Y_t - Y_(t-m)|, a = 0.05, m = 24 for hourly data."""
    insample = np.arange(26.0)  # |Y_t - Y_(t-24)| = 24 for t = 24, 25: scale 24
    y, lo, hi = [10.0, 30.0, 5.0], [8.0, 8.0, 8.0], [20.0, 20.0, 20.0]
    # widths 12 each; 30 > 20: 40 * 10; 5 < 8: 40 * 3  (2 / 0.05 = 40)
    expected = (36 + 400 + 120) / 3 / 24
    assert msis(y, lo, hi, insample, m=24) == pytest.approx(expected, rel=1e-12)
    assert msis(y, lo, hi, insample, m=24, level=95) == msis(y, lo, hi, insample, 24)


def numpy_msis(y, lo, hi, insample, m, a=0.05):
    """MSIS written out as in the M4 guide, point by point."""
    h = len(y)
    total = 0.0
    for t in range(h):
        total += hi[t] - lo[t]
        if y[t] < lo[t]:
            total += 2 / a * (lo[t] - y[t])
        if y[t] > hi[t]:
            total += 2 / a * (y[t] - hi[t])
    n = len(insample)
    scale = sum(abs(insample[t] - insample[t - m]) for t in range(m, n)) / (n - m)
    return total / h / scale


def m4_hourly_series(name: str = "H1") -> tuple[np.ndarray, np.ndarray]:
    if not (M4 / "Hourly-train.csv.gz").exists():
        pytest.skip(f"M4 Hourly data not found at {M4} (the shared data folder beside the repo)")
    train = pl.read_csv(M4 / "Hourly-train.csv.gz", infer_schema_length=0).filter(
        pl.col("V1") == name
    )
    test = pl.read_csv(M4 / "Hourly-test.csv", infer_schema_length=0).filter(pl.col("V1") == name)
    x = train.drop("V1").cast(pl.Float64).to_numpy()[0]
    return x[~np.isnan(x)], test.drop("V1").cast(pl.Float64).to_numpy()[0]


def test_msis_of_a_conformal_seasonal_naive_interval_on_m4_hourly():
    """A real M4 Hourly series, h = 48, m = 24: the package's seasonal naive with a 95 %
    split-conformal interval, scored by msis (array and frame) and by the guide's formula."""
    insample, actual = m4_hourly_series("H1")
    assert len(actual) == 48
    history = pl.DataFrame({"t": np.arange(len(insample)), "y": insample})
    fc = seasonal_naive(history, 48, m=24, target="y", time_col="t", freq=1, level=[95])
    lo, hi = fc["y_lo_95"].to_numpy(), fc["y_hi_95"].to_numpy()
    # the interval by hand: +- the ceil((n + 1) 0.95)-th smallest |y_t - y_(t - 24 k)|
    for k, steps in ((1, slice(0, 24)), (2, slice(24, 48))):
        residuals = np.sort(np.abs(insample[24 * k :] - insample[: -24 * k]))
        radius = residuals[math.ceil((len(residuals) + 1) * 0.95) - 1]
        point = insample[-24:]
        np.testing.assert_array_equal(lo[steps], point - radius)
        np.testing.assert_array_equal(hi[steps], point + radius)
    expected = numpy_msis(actual, lo, hi, insample, 24)
    assert msis(actual, lo, hi, insample, m=24) == pytest.approx(expected, rel=1e-12)
    truth = pl.DataFrame({"t": np.arange(len(insample), len(insample) + 48), "y": actual})
    scores = evaluate(fc, truth, target="y", time_col="t", insample=history, m=24)
    assert scores["msis_95"][0] == pytest.approx(expected, rel=1e-12)
    assert scores["coverage_95"][0] == coverage(actual, lo, hi)
    assert 0 < expected < 100


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: coverage([1.0, 2.0], [0.0], [3.0, 3.0]), "same shape"),
        (lambda: coverage([1.0], [2.0], [1.0]), "lo must not exceed hi"),
        (lambda: interval_width([], []), "empty"),
        (lambda: winkler_score([1.0], [0.0], [2.0], level=100), r"level must be .*\(1, 100\)"),
        (lambda: winkler_score([1.0], [0.0], [2.0], level=0.95), "80 for an 80 % interval"),
        (lambda: winkler_score([1.0], [0.0], [2.0], level=1.5), None),
        (lambda: pinball_loss([1.0], [1.0], 1.5), r"quantile must be .*\(0, 1\)"),
        (lambda: pinball_loss([1.0], [1.0], [0.1, 0.1]), "more than once"),
        (lambda: pinball_loss([1.0], [1.0], [0.1, 0.9]), r"shape \(1, 2\)"),
        (lambda: pinball_loss("abc", [1.0], 0.5), "y_true must be an array"),
        (lambda: msis([1.0], [0.0], [2.0], [1.0, 1.0, 1.0], m=1), "scale .* is 0"),
        (lambda: msis([1.0], [0.0], [2.0], [1.0, 2.0], m=2), "needs more than m=2"),
        (lambda: scaled_crps([1.0], [[1.0]], 0.5, scale=1.0), "list of numbers"),
        (lambda: scaled_crps([1.0], [[1.0]], np.array(0.5), scale=1.0), "list of numbers"),
        (lambda: pinball_loss([1.0], [1.0], np.array([[0.5]])), "a non-empty list of them"),
        (lambda: scaled_crps([1.0], [[1.0]], [0.5], scale=0.0), "scale must be"),
    ],
)
def test_array_interval_metric_errors(call, message):
    if message is None:  # a level of 1.5 is valid (1.5 %), not refused
        assert call() > 0
        return
    with pytest.raises(DataValidationError, match=message):
        call()


def test_a_0d_array_is_one_number_as_a_numpy_scalar_is():
    """pinball_loss(..., np.array(0.5)) raised a bare TypeError (len() of unsized object),
    and coverage of 0-d arrays another (item assignment), where a numpy scalar quantile and
    0-d values of the point metrics (mae) are accepted: a 0-d quantile array is one quantile
    (y_pred shaped like y_true), 0-d values one point."""
    assert pinball_loss([1.0], [1.0], np.array(0.5)) == 0.0
    assert pinball_loss([10.0, 10.0], [8.0, 12.0], np.array(0.75)) == 1.0
    assert pinball_loss([10.0, 10.0], [8.0, 12.0], np.float64(0.75)) == 1.0
    assert pinball_loss([10.0], [[8.0]], np.array([0.75])) == 1.5  # a list of one: an axis
    assert coverage(np.array(1.0), np.array(0.0), np.array(2.0)) == 1.0
    assert np.isnan(coverage(np.array(np.nan), np.array(0.0), np.array(2.0)))


# ---------------------------------------------------------------- frame scores


@pytest.fixture
def panel() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Two series, 4 in-sample rows each and a 2-step forecast with an 80 % interval and
    quantiles."""
    actual = pl.DataFrame(
        {
            "id": ["a"] * 6 + ["b"] * 6,
            "time": list(range(6)) * 2,
            "y": [1.0, 2.0, 4.0, 7.0, 5.0, 9.0, 1.0, 3.0, 2.0, 5.0, 4.0, 4.0],
        }
    )
    forecast = pl.DataFrame(
        {
            "id": ["a", "a", "b", "b"],
            "time": [4, 5, 4, 5],
            "y": [6.0, 6.0, 4.0, 5.0],
            "y_lo_80": [4.0, 5.0, 3.0, 4.5],
            "y_hi_80": [8.0, 8.0, 5.0, 6.0],
            "y_q10": [4.0, 5.0, 3.0, 4.5],
            "y_q50": [6.0, 6.0, 4.0, 5.0],
            "y_q90": [8.0, 8.0, 5.0, 6.0],
        }
    )
    return forecast, actual, actual.filter(pl.col("time") < 4)


def test_evaluate_scores_interval_and_quantile_columns(panel):
    forecast, actual, insample = panel
    scores = evaluate(forecast, actual, target="y", id_col="id", insample=insample)
    assert scores.columns == [
        "id",
        "target",
        "n",
        *METRICS,
        "coverage_80",
        "width_80",
        "winkler_80",
        "msis_80",
        "pinball",
        "scrps",
    ]
    a = scores.row(0, named=True)
    y, lo, hi = [5.0, 9.0], [4.0, 5.0], [8.0, 8.0]
    assert a["coverage_80"] == coverage(y, lo, hi) == 0.5
    assert a["width_80"] == interval_width(lo, hi)
    assert a["winkler_80"] == pytest.approx(winkler_score(y, lo, hi, 80))
    assert a["msis_80"] == pytest.approx(msis(y, lo, hi, [1.0, 2.0, 4.0, 7.0], 1, level=80))
    qs = [0.1, 0.5, 0.9]
    preds = np.array([[4.0, 6.0, 8.0], [5.0, 6.0, 8.0]])
    assert a["pinball"] == pytest.approx(pinball_loss(y, preds, qs))
    assert a["scrps"] == pytest.approx(scaled_crps(y, preds, qs, scale=2.0))
    # without insample: no MSIS and no scaled CRPS
    plain = evaluate(forecast, actual, target="y", id_col="id")
    assert "msis_80" not in plain.columns and "scrps" not in plain.columns
    found = IntervalColumns.find(forecast.columns, ["y"])
    assert found.levels == (80.0,) and found.quantiles == (0.1, 0.5, 0.9)
    assert found.score_names(scaled=True) == scores.columns[3 + len(METRICS) :]
    assert found.score_names(scaled=False) == plain.columns[plain.columns.index("coverage_80") :]
    assert plain["coverage_80"].to_list() == scores["coverage_80"].to_list()


def test_point_metrics_are_bit_identical_with_interval_columns(panel):
    forecast, actual, insample = panel
    point = forecast.select("id", "time", "y")
    kw = {"target": "y", "id_col": "id", "insample": insample}
    before = evaluate(point, actual, **kw)
    after = evaluate(forecast, actual, **kw)
    assert after.select(before.columns).equals(before)
    assert aggregate(after).select(aggregate(before).columns).equals(aggregate(before))


def test_aggregate_pools_interval_scores_weighted_by_points(panel):
    forecast, actual, insample = panel
    # series b gets one more point: unequal n
    extra = forecast.filter(pl.col("id") == "b").head(1)
    extra = extra.with_columns(pl.lit(3, pl.Int64).alias("time"))
    insample = insample.filter((pl.col("id") != "b") | (pl.col("time") < 3))  # before it
    scores = evaluate(
        pl.concat([forecast, extra]), actual, target="y", id_col="id", insample=insample
    )
    assert scores["n"].to_list() == [2, 3]
    pooled = aggregate(scores)
    names = ["coverage_80", "width_80", "winkler_80", "msis_80", "pinball", "scrps"]
    for name in names:
        expected = (scores[name] * scores["n"]).sum() / scores["n"].sum()
        assert pooled[name][0] == pytest.approx(expected)
    # the pooled score is the score of all points together
    points = pl.concat([forecast, extra]).join(actual, on=["id", "time"], suffix="_true")
    y, lo, hi = (points[c].to_numpy() for c in ("y_true", "y_lo_80", "y_hi_80"))
    assert pooled["coverage_80"][0] == pytest.approx(coverage(y, lo, hi))
    assert pooled["winkler_80"][0] == pytest.approx(winkler_score(y, lo, hi, 80))
    preds = points.select("y_q10", "y_q50", "y_q90").to_numpy()
    assert pooled["pinball"][0] == pytest.approx(pinball_loss(y, preds, [0.1, 0.5, 0.9]))
    # by a key column
    by_id = aggregate(scores, by="id")
    assert by_id["coverage_80"].to_list() == scores["coverage_80"].to_list()


def test_owa_ignores_interval_scores(panel):
    forecast, actual, insample = panel
    scores = evaluate(forecast, actual, target="y", id_col="id", insample=insample)
    base = evaluate(
        forecast.with_columns(pl.col("y") + 1), actual, target="y", id_col="id", insample=insample
    )
    plain = owa(scores.select("id", "target", "n", "smape", "mase"), base)
    assert owa(scores, base).equals(plain)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("y_hi_80"), "only one bound"),
        (lambda f: f.with_columns(pl.col("y_lo_80") + 10), "y_lo_80 > y_hi_80"),
        (lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("y_q10")), "Missing values"),
        (lambda f: f.with_columns(pl.lit("x").alias("y_q90")), "must hold numbers"),
        (lambda f: f.rename({"y_q10": "y_q010"}), "unlike the package"),
        (lambda f: f.rename({"y_lo_80": "y_lo_180", "y_hi_80": "y_hi_180"}), r"\(1, 100\)"),
    ],
)
def test_evaluate_refuses_bad_interval_columns(panel, change, message):
    forecast, actual, _ = panel
    with pytest.raises(DataValidationError, match=message):
        evaluate(change(forecast), actual, target="y", id_col="id")


def test_targets_must_share_levels(panel):
    forecast, actual, _ = panel
    two = forecast.with_columns(pl.col("y").alias("z"), pl.col("y_lo_80").alias("z_lo_80"))
    two = two.with_columns(pl.col("y_hi_80").alias("z_hi_80"))
    actual = actual.with_columns(pl.col("y").alias("z"))
    with pytest.raises(DataValidationError, match="different interval levels"):
        evaluate(two, actual, target=["y", "z"], id_col="id")
    both = two.with_columns(pl.col(f"y_q{q}").alias(f"z_q{q}") for q in (10, 50, 90))
    scores = evaluate(both, actual, target=["y", "z"], id_col="id")
    z = scores.filter(pl.col("target") == "z").drop("target")
    assert z.equals(scores.filter(pl.col("target") == "y").drop("target"))
    assert z["coverage_80"].to_list() == [0.5, 0.5]


# ---------------------------------------------------------------- the conformal baseline


def test_seasonal_naive_intervals_by_hand():
    history = pl.DataFrame({"time": range(6), "y": [1.0, 2.0, 4.0, 3.0, 5.0, 9.0]})
    plain = seasonal_naive(history, 3, m=2, target="y")
    fc = seasonal_naive(history, 3, m=2, target="y", level=[50], quantiles=[0.25, 0.75])
    assert fc.select(plain.columns).equals(plain)  # the point forecast is unchanged
    # steps 1-2: lag 2 residuals y_t - y_(t-2): 3, 1, 1, 6 -> |.| sorted 1 1 3 6, n = 4,
    # rank ceil(5 * 0.5) = 3 -> 3. Step 3: lag 4: 4, 7 -> n = 2, rank ceil(1.5) = 2 -> 7
    assert fc["y"].to_list() == [5.0, 9.0, 5.0]
    assert fc["y_lo_50"].to_list() == [2.0, 6.0, -2.0]
    assert fc["y_hi_50"].to_list() == [8.0, 12.0, 12.0]
    # signed sorted 1 1 3 6: q = 0.25 rank floor(1.25) = 1 -> 1; q = 0.75 rank ceil(3.75) = 4
    assert fc["y_q25"].to_list() == [6.0, 10.0, 9.0]
    assert fc["y_q75"].to_list() == [11.0, 15.0, 12.0]
    with pytest.raises(DataValidationError, match="level must be"):
        seasonal_naive(history, 3, m=2, target="y", level=[150])
    with pytest.raises(DataValidationError, match="conformal seasonal naive"):
        seasonal_naive(history, 6, m=3, target="y", level=[80])


def test_seasonal_naive_takes_the_conformal_rank_of_the_calibrations():
    """seasonal_naive computed its own rank, ceil((n + 1) * L / 100) in floating point: with
    24 residuals at level 56, 25 * 0.56 is 14.000000000000002, and it took the 15th smallest
    instead of the 14th (likewise quantile 0.56, and 0.29 of 99 residuals the 28th instead of
    the 29th). It takes the calibrations' rank (evaluation.intervals.conformal_rank)."""
    for n, level in ((24, 56.0), (99, 55.0), (74, 68.0)):
        steps = np.arange(1, n + 1, dtype=np.float64)  # lag-1 residuals 1, 2, ..., n
        history = pl.DataFrame({"time": range(n + 1), "y": np.concatenate([[0.0], steps.cumsum()])})
        q = level / 100
        fc = seasonal_naive(
            history, 1, m=1, target="y", level=[level], quantiles=[q, round(1 - q, 12)]
        )
        rank = conformal_rank(n, level)  # the rank-th smallest residual is rank itself
        point = fc["y"][0]
        assert fc[f"y_hi_{level:g}"][0] - point == rank
        assert fc[quantile_name("y", q)][0] - point == rank
        assert fc[quantile_name("y", round(1 - q, 12))][0] - point == n + 1 - rank


def test_seasonal_naive_quantiles_are_the_calibrations_signed_quantiles():
    """seasonal_naive's quantile q is its forecast plus the signed residual of the rank rule
    of the estimators' calibrations (:func:`signed_quantile`, mirrored below the median),
    kept within the residuals where they are too few for its level (the largest or smallest,
    where a calibration has none): one rule for both (seasonal_naive had a copy of it)."""
    rng = np.random.default_rng(3)
    qs = [0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.29, 0.3, 0.45, 0.5, 0.56, 0.7, 0.75, 0.9, 0.975]
    for n in (1, 2, 3, 4, 7, 19, 20, 24, 39, 40, 99):
        history = pl.DataFrame({"time": range(n + 1), "y": rng.normal(size=n + 1).cumsum()})
        fc = seasonal_naive(history, 1, m=1, target="y", quantiles=qs)
        residuals = np.diff(history["y"].to_numpy())
        ordered = np.sort(residuals)
        for q in qs:
            shift = fc[quantile_name("y", q)][0] - fc["y"][0]
            conformal = float(signed_quantile(residuals[:, None], q, what="test", strict=False)[0])
            if np.isinf(conformal):  # too few for its level: the outermost residual
                conformal = ordered[-1] if q >= 0.5 else ordered[0]
            assert shift == pytest.approx(conformal, abs=1e-9), (n, q)
            upper = q >= 0.5  # the rule seasonal_naive had, written out
            rank = conformal_rank(n, 100 * q) if upper else n + 1 - conformal_rank(n, 100 - 100 * q)
            assert shift == pytest.approx(ordered[min(max(rank, 1), n) - 1], abs=1e-9), (n, q)


def test_seasonal_naive_conformal_covers_a_seasonal_process():
    """Per series split-conformal intervals on seasonal data with noise: coverage near the
    nominal level over many series."""
    rng = np.random.default_rng(1)
    n_series, length, m, horizon = 200, 24 * 20, 24, 24
    t = np.arange(length + horizon)
    values = np.sin(2 * np.pi * t / m)[None, :] + rng.normal(0, 0.3, (n_series, len(t)))
    ids = np.repeat(np.arange(n_series), length)
    history = pl.DataFrame({"id": ids, "t": np.tile(t[:length], n_series)})
    history = history.with_columns(pl.Series("y", values[:, :length].ravel()))
    future = pl.DataFrame(
        {
            "id": np.repeat(np.arange(n_series), horizon),
            "t": np.tile(t[length:], n_series),
            "y": values[:, length:].ravel(),
        }
    )
    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    fc = seasonal_naive(history, horizon, m=m, freq=1, level=[80, 95], **kw)
    pooled = aggregate(evaluate(fc, future, **kw))
    assert abs(pooled["coverage_80"][0] - 0.80) < 0.03
    assert abs(pooled["coverage_95"][0] - 0.95) < 0.02


def test_coverage_with_a_nan_is_nan_as_the_point_metrics_are():
    """A NaN actual or bound counted as a miss (0.5 here) where mae gives NaN."""
    assert np.isnan(coverage([np.nan, 1.0], [0.0, 0.0], [2.0, 2.0]))
    assert np.isnan(coverage([1.0, 1.0], [0.0, np.nan], [2.0, 2.0]))
    assert coverage([1.0, 5.0], [0.0, 0.0], [2.0, 4.0]) == 0.5


def test_exact_bounds_on_a_flat_history_score_zero_as_mase_does():
    """A series whose history is flat has MASE scale 0; exact forecasts and bounds there
    scored MASE 0 but MSIS and sCRPS NaN (0/0), which made every pooled MSIS / sCRPS NaN."""
    insample = pl.DataFrame({"id": "c", "time": [0, 1, 2, 3], "y": 3.0})
    actual = pl.concat([insample, pl.DataFrame({"id": "c", "time": [4, 5], "y": 3.0})])
    bounds = ("y_lo_80", "y_hi_80", "y_q10", "y_q90")
    forecast = actual.filter(pl.col("time") >= 4).with_columns(pl.col("y").alias(b) for b in bounds)
    scores = evaluate(forecast, actual, target="y", id_col="id", insample=insample)
    row = scores.row(0, named=True)
    assert (row["mase"], row["msis_80"], row["scrps"]) == (0.0, 0.0, 0.0)
    assert aggregate(scores).row(0, named=True)["msis_80"] == 0.0


def test_seasonal_naive_intervals_leave_out_the_values_missing_made_up():
    """seasonal_naive(missing="ffill"/"interpolate", level=...) calibrated its intervals on
    the differences of values the policy made up (the gap 3, 4 below), while a backtest's
    baseline intervals leave them out: made-up values are not observations. The observed
    lag-1 differences are 1, 2, 1, 4, 1, 1 (none across the gap, where the made-up values
    climbed 36), so the 95 % radius is the largest absolute one (rank ceil(7 * 0.95) = 7 >
    6), 4, and the quantile 0.9 the largest signed one (was 36 with ffill, 12 interpolated)."""
    frame = pl.DataFrame({"t": [0, 1, 2, 5, 6, 7, 8, 9], "y": [1.0, 2, 4, 40, 41, 45, 46, 47]})
    kw = {"m": 1, "target": "y", "time_col": "t", "level": [95], "quantiles": [0.9]}
    expected = [(10, 47.0, 43.0, 51.0, 51.0)]
    with_nulls = frame.join(pl.DataFrame({"t": range(10)}), on="t", how="right")
    for missing in ("ffill", "interpolate"):
        for data in (frame, with_nulls.select("t", "y")):
            assert seasonal_naive(data, 1, missing=missing, **kw).rows() == expected
    # missing="zero" says an absent value is 0: data, calibrated on as if the frame held it
    zeros = with_nulls.select("t", pl.col("y").fill_null(0.0))
    zero = seasonal_naive(frame, 1, missing="zero", **kw)
    assert_frame_equal(zero, seasonal_naive(zeros, 1, **kw))

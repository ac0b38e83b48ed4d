from __future__ import annotations

import datetime as dt
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster import DataValidationError, ForecasterWarning, RNNForecaster, RNNRegressor
from forecaster.evaluation.backtest import BacktestResult, backtest
from forecaster.evaluation.metrics import METRICS, aggregate, evaluate

START = dt.datetime(2024, 1, 1)
HOUR = dt.timedelta(hours=1)
TINY = {
    "target": "y",
    "id_col": "id",
    "lookback": 24,
    "horizon": 6,
    "hidden_size": 8,
    "segment_length": 6,
    "max_epochs": 1,
    "windows_per_epoch": 128,
    "batch_size": 64,
    "random_state": 0,
    "progress": False,
    "device": "cpu",
}


def make_frame(lengths=(200, 200, 200), seed=0, level=10.0) -> pl.DataFrame:
    """Hourly series s0, s1, ... all starting at START (so they end at different times when
    their lengths differ), with a covariate ``x`` and a future-known ``hour``."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, n in enumerate(lengths):
        t = np.arange(n)
        parts.append(
            pl.DataFrame(
                {
                    "id": f"s{k}",
                    "time": [START + i * HOUR for i in range(n)],
                    "y": level * (k + 1) + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.2, n),
                    "x": np.cos(2 * np.pi * t / 24),
                    "hour": (t % 24).astype(np.float64),
                }
            )
        )
    return pl.concat(parts)


class SpyForecaster(RNNForecaster):
    """Records the span of every frame it is fitted on."""

    spans: ClassVar[list[pl.DataFrame]] = []

    def fit(self, frame, y=None, *, callbacks=()):
        SpyForecaster.spans.append(
            frame.group_by("id")
            .agg(
                first=pl.col("time").min(),
                last=pl.col("time").max(),
                rows=pl.len(),
                mean=pl.col("y").mean(),
            )
            .sort("id")
        )
        return super().fit(frame, y, callbacks=callbacks)


@pytest.fixture
def spy():
    SpyForecaster.spans.clear()
    yield SpyForecaster
    SpyForecaster.spans.clear()


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def fitted(frame) -> RNNForecaster:
    return RNNForecaster(**TINY).fit(frame)


def per_origin(model: RNNForecaster, frame: pl.DataFrame, folds: pl.DataFrame, **kw):
    """Reference: one predict() call per (fold, series) on the history up to its cutoff."""
    out = []
    for fold, ident, cutoff in folds.select("fold", "id", "cutoff").iter_rows():
        history = frame.filter((pl.col("id") == ident) & (pl.col("time") <= cutoff))
        out.append(model.predict(history, **kw).with_columns(fold=pl.lit(fold, pl.Int32)))
    return pl.concat(out)


# ---------------------------------------------------------------- batched == predict


def test_batched_forecasts_equal_one_predict_per_origin(fitted, frame):
    result = backtest(fitted, frame, folds=5, step=7)
    assert isinstance(result, BacktestResult)
    assert result.estimators == [fitted]
    assert result.forecasts.columns == ["fold", "cutoff", "id", "time", "step", "y", "y_actual"]
    assert result.forecasts.height == 5 * 3 * 6
    for cutoff in result.folds["cutoff"].unique():  # aligned series: the global-cutoff API
        expected = fitted.predict(frame, cutoff=cutoff)
        got = result.forecasts.filter(pl.col("cutoff") == cutoff).select("id", "time", "y")
        assert got["time"].to_list() == expected["time"].to_list()
        np.testing.assert_allclose(got["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-5)


def test_batched_with_covariates_and_future_covariates(frame):
    model = RNNForecaster(**{**TINY, "covariates": "x", "future_covariates": "hour"})
    model.set_params(head="seq2seq", segment_length="auto").fit(frame)
    result = backtest(model, frame, folds=3, step=5)
    expected = per_origin(model, frame, result.folds, future=frame)
    joined = result.forecasts.join(expected, on=["fold", "id", "time"], suffix="_ref")
    assert joined.height == result.forecasts.height
    np.testing.assert_allclose(joined["y"].to_numpy(), joined["y_ref"].to_numpy(), rtol=1e-5)


def test_series_of_different_lengths_use_their_own_ends(fitted):
    frame = make_frame(lengths=(120, 150, 181), seed=3)
    result = backtest(fitted, frame, folds=4, origins="series")  # dates: "auto" is calendar
    last = result.forecasts.filter(pl.col("fold") == 3).group_by("id").agg(pl.col("time").max())
    ends = frame.group_by("id").agg(pl.col("time").max())
    assert last.sort("id").equals(ends.sort("id"))
    expected = per_origin(fitted, frame, result.folds)
    joined = result.forecasts.join(expected, on=["fold", "id", "time"], suffix="_ref")
    assert joined.height == result.forecasts.height == 4 * 3 * 6
    np.testing.assert_allclose(joined["y"].to_numpy(), joined["y_ref"].to_numpy(), rtol=1e-5)


def test_unseen_series_are_scaled_with_history_up_to_each_origin(fitted, frame):
    new = make_frame(lengths=(200,), seed=9, level=500.0).with_columns(id=pl.lit("new"))
    both = pl.concat([frame, new])
    result = backtest(fitted, both, folds=3)
    expected = per_origin(fitted, new, result.folds.filter(pl.col("id") == "new"))
    got = result.forecasts.filter(pl.col("id") == "new")
    joined = got.join(expected, on=["fold", "id", "time"], suffix="_ref")
    assert joined.height == 3 * 6
    np.testing.assert_allclose(joined["y"].to_numpy(), joined["y_ref"].to_numpy(), rtol=1e-5)
    assert got["y"].mean() > 400  # in the new series' own units


# ---------------------------------------------------------------- fold geometry


def test_fold_geometry_on_integer_time():
    t = np.arange(100)
    frame = pl.DataFrame({"t": t, "v": np.sin(t / 4.0) + 0.01 * t})
    model = RNNForecaster(
        **{**TINY, "target": "v", "id_col": None, "time_col": "t"}, validation_size=0
    ).fit(frame)
    result = backtest(model, frame, folds=4, step=5)
    assert result.folds["cutoff"].to_list() == [78, 83, 88, 93]  # n - 1 - H - (3 - k) * step
    fc = result.forecasts
    assert fc.columns == ["fold", "cutoff", "t", "step", "v", "v_actual"]
    assert fc.filter(pl.col("fold") == 3)["t"].to_list() == list(range(94, 100))
    assert fc["step"].to_list() == list(range(1, 7)) * 4
    assert (fc["t"] - fc["cutoff"]).to_list() == fc["step"].cast(pl.Int64).to_list()
    truth = frame.select("t", pl.col("v").alias("v_actual"))  # the frame's float64 values
    assert fc.select("t", "v_actual").equals(fc.select("t").join(truth, on="t", how="left"))
    beside = [f"{m}{b}" for m in METRICS for b in ("", "_naive", "_skill_naive")]  # m=1
    counts = ["n", "n_naive", "n_scaled"]  # n_scaled: the points whose MASE scale is defined
    assert result.metrics.columns == ["fold", "cutoff", "target", *counts, *beside]
    assert result.by_step["step"].to_list() == list(range(1, 7))
    assert result.by_step["n"].to_list() == [4] * 6
    assert result.aggregate["n"].to_list() == [24]


def test_metrics_agree_with_the_metrics_module(fitted, frame):
    result = backtest(fitted, frame, folds=3, m=24)
    fold = result.forecasts.filter(pl.col("fold") == 1)
    cutoff = fold["cutoff"][0]
    expected = evaluate(
        fold.select("id", "time", "y"),
        frame,
        target="y",
        id_col="id",
        insample=frame.filter(pl.col("time") <= cutoff),
        m=24,
    )
    got = result.metrics.filter(pl.col("fold") == 1).drop("fold", "cutoff")
    np.testing.assert_allclose(got.select(METRICS).to_numpy(), expected.select(METRICS).to_numpy())
    pooled = aggregate(result.metrics)
    np.testing.assert_allclose(
        pooled.select(METRICS).to_numpy(), result.aggregate.select(METRICS).to_numpy()
    )
    by = result.score(["fold", "step"], metrics=["mae"])
    skill = ["mae_naive", "mae_skill_naive", "mae_snaive", "mae_skill_snaive"]
    assert by.columns == ["fold", "step", "target", "n", "n_naive", "n_snaive", "mae", *skill]
    assert by.height == 3 * 6 and by["n"].to_list() == [3] * 18
    halved = backtest(fitted, frame, folds=3, scale=2.0, metrics=["mae", "smape"]).aggregate
    assert halved["mae"].item() == pytest.approx(result.aggregate["mae"].item() / 2)
    assert halved["smape"].item() == pytest.approx(result.aggregate["smape"].item())


# ---------------------------------------------------------------- training spans


def test_refit_every_fold_never_trains_on_its_targets(spy, frame):
    model = spy(**TINY, validation_size=0)
    result = backtest(model, frame, folds=3, step=10, gap=4, refit=True)
    assert not hasattr(model, "network_")  # the given estimator is left alone
    assert len(result.estimators) == 3 and len(spy.spans) == 3
    assert result.folds["model"].to_list() == [0] * 3 + [1] * 3 + [2] * 3
    for k, span in enumerate(spy.spans):
        folds = result.folds.filter(pl.col("fold") == k).sort("id")
        first_target = (
            result.forecasts.filter(pl.col("fold") == k).group_by("id").agg(pl.col("time").min())
        )
        checked = span.join(folds, on="id").join(first_target, on="id").sort("id")
        assert checked.height == 3
        assert (checked["last"] == checked["train_end"]).all()
        assert (checked["train_end"] == checked["cutoff"] - 4 * HOUR).all()  # the gap
        assert (checked["time"] - checked["last"] == 5 * HOUR).all()  # gap + 1 step
        assert (checked["rows"] == checked["train_rows"]).all()
        assert (checked["first"] == START).all()  # expanding
        # the scaler of each fold is fitted on that fold's training span only
        center = result.estimators[k].scaler_.center_[:, 0]
        np.testing.assert_allclose(center, checked["mean"].to_numpy(), rtol=1e-5)
    assert np.diff([s["rows"][0] for s in spy.spans]).tolist() == [10, 10]


def test_refit_every_k_folds(spy, frame):
    result = backtest(spy(**TINY), frame, folds=4, step=6, refit=3)
    assert len(result.estimators) == 2 and len(spy.spans) == 2
    assert result.folds.filter(pl.col("id") == "s0")["model"].to_list() == [0, 0, 0, 1]
    ends = [s["last"][0] for s in spy.spans]
    train_ends = result.folds.filter(pl.col("id") == "s0")["train_end"].to_list()
    assert train_ends == [ends[0]] * 3 + [ends[1]]
    cutoffs = result.folds.filter(pl.col("id") == "s0")["cutoff"].to_list()
    assert ends == [cutoffs[0], cutoffs[3]]
    # fold 1 is forecast by the model fitted on fold 0, from fold 1's own origin
    fold1 = result.forecasts.filter((pl.col("fold") == 1) & (pl.col("id") == "s0"))
    assert fold1["time"].min() > ends[0] + 6 * HOUR


def test_refit_false_fits_one_clone_on_the_first_fold(spy, frame):
    model = spy(**TINY)
    result = backtest(model, frame, folds=4, step=6)
    assert len(spy.spans) == 1 and len(result.estimators) == 1
    assert not hasattr(model, "network_")
    first_target = result.forecasts["time"].min()
    assert spy.spans[0]["last"].max() < first_target
    assert (
        spy.spans[0]["last"].to_list()
        == result.folds.filter(pl.col("fold") == 0)["train_end"].to_list()
    )
    assert result.folds["train_end"].n_unique() == 1  # every fold: the one model's span


def test_sliding_window_keeps_train_size_rows(spy, frame):
    result = backtest(
        spy(**TINY), frame, folds=2, step=12, window="sliding", train_size=100, refit=True
    )
    for k, span in enumerate(spy.spans):
        folds = result.folds.filter(pl.col("fold") == k)
        assert span["rows"].to_list() == [100] * 3
        assert span["first"].to_list() == folds["train_start"].to_list()
        assert span["last"].to_list() == folds["cutoff"].to_list()
    starts = result.folds.filter(pl.col("id") == "s0")["train_start"].to_list()
    assert starts[1] - starts[0] == 12 * HOUR
    expanding = backtest(spy(**TINY), frame, folds=2, step=12, refit=True)
    assert expanding.folds["train_start"].unique().to_list() == [START]
    assert expanding.folds.filter(pl.col("id") == "s0")["train_rows"].to_list() == [182, 194]
    assert [s["rows"].to_list() for s in spy.spans[2:]] == [[182] * 3, [194] * 3]


def test_a_given_fitted_model_is_used_as_it_is(fitted, frame):
    result = fitted.backtest(frame, folds=2)
    assert result.estimators[0] is fitted
    assert result.folds["train_rows"].null_count() == result.folds.height
    assert result.forecasts.equals(backtest(fitted, frame, folds=2).forecasts)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 0}, "folds must be an integer >= 1"),
        ({"step": 0}, "step must be an integer >= 1"),
        ({"gap": -1}, "gap must be an integer >= 0"),
        ({"window": "rolling"}, "window must be one of 'expanding', 'sliding', got 'rolling'"),
        ({"window": "sliding"}, "needs train_size"),
        ({"train_size": 50}, "train_size applies to window='sliding' only"),
        ({"refit": 0}, "refit must be False"),
        ({"refit": "yes"}, "refit must be False"),
        ({"m": 0}, "seasonal period"),
        ({"metrics": ["r2"]}, "Unknown metrics"),
        ({"folds": 40}, "Too few rows for 40 folds: .* = 264 rows; the longest has 200"),
    ],
)
def test_bad_arguments_fail_with_clear_messages(fitted, frame, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        backtest(fitted, frame, **kwargs)


def test_training_errors(frame):
    with pytest.raises(DataValidationError, match="shorter than one training window"):
        backtest(RNNForecaster(**TINY), frame, window="sliding", train_size=20)
    with pytest.raises(DataValidationError, match="training span of some fold is too short"):
        backtest(RNNForecaster(**TINY), frame, folds=2, gap=170)
    with pytest.raises(DataValidationError, match="needs an RNNForecaster"):
        backtest(RNNRegressor(), frame)


def test_short_series_are_left_out_with_a_warning(fitted, frame):
    short = make_frame(lengths=(40,)).with_columns(id=pl.lit("short"))
    with pytest.warns(ForecasterWarning, match=r"Left out 1 series .*\['short'\]"):
        result = backtest(fitted, pl.concat([frame, short]), folds=3)
    assert sorted(result.forecasts["id"].unique().to_list()) == ["s0", "s1", "s2"]


def test_score_errors(fitted, frame):
    result = backtest(fitted, frame, folds=2, metrics=["mae"])
    with pytest.raises(DataValidationError, match="Cannot group by"):
        result.score("y")
    # value columns are not groups: grouping by the actual values made one group per value
    with pytest.raises(DataValidationError, match=r"\['y_actual'\]: .* not groups"):
        result.score("y_actual")
    assert result.score("id")["id"].to_list() == ["s0", "s1", "s2"]
    with pytest.raises(DataValidationError, match="were not computed"):
        result.score(metrics=["rmse"])


def test_refit_true_always_fits_a_clone(fitted, frame):
    result = backtest(fitted, frame, folds=1, refit=True)
    assert result.estimators[0] is not fitted
    assert result.folds["train_end"].max() < result.forecasts["time"].min()
    assert result.folds["train_rows"].to_list() == [194] * 3
    assert repr(result) == (
        "BacktestResult(folds=1, series=3, targets=['y'], forecasts=18, models=1, "
        f"metrics={list(METRICS)})"
    )


# ---------------------------------------------------------------- interval columns


class IntervalForecaster(RNNForecaster):
    """Adds an 80 % interval (forecast +- 1) and a median quantile (the forecast) to every
    prediction: what a calibrated model's predict(..., level=[80]) returns."""

    def predict(self, frame, *args, **kwargs):
        out = super().predict(frame, *args, **kwargs)
        return out.with_columns(
            (pl.col("y") - 1).alias("y_lo_80"),
            (pl.col("y") + 1).alias("y_hi_80"),
            pl.col("y").alias("y_q50"),
        )


def test_backtest_scores_interval_columns(fitted, frame):
    model = IntervalForecaster(**TINY)
    model.__dict__.update(fitted.__dict__)  # the same fitted state: the same point forecasts
    plain = backtest(fitted, frame, folds=3, m=24)
    result = backtest(model, frame, folds=3, m=24)
    forecasts = result.forecasts
    assert forecasts.columns == [
        *plain.forecasts.columns[:-1],
        "y_lo_80",
        "y_hi_80",
        "y_q50",
        "y_actual",
    ]
    assert forecasts.select(plain.forecasts.columns).equals(plain.forecasts)
    added = ["coverage_80", "width_80", "winkler_80", "msis_80", "pinball", "scrps"]
    bands = ["n_interval_naive", "n_interval_snaive"]  # the baselines' interval scores' points
    for name in ("metrics", "by_step", "aggregate"):
        table, before = getattr(result, name), getattr(plain, name)
        at = before.columns.index("n_snaive") + 1
        columns = [*before.columns[:at], *bands, *before.columns[at:]]
        assert table.columns == [*columns, *[c for s in added for c in _beside(s)]]
        assert table.select(before.columns).equals(before)  # bit for bit
    pooled = result.aggregate.row(0, named=True)
    inside = (forecasts["y_actual"] - forecasts["y"]).abs() <= 1
    assert pooled["coverage_80"] == pytest.approx(inside.mean())
    assert pooled["width_80"] == pytest.approx(2.0)
    assert pooled["pinball"] == pytest.approx(pooled["mae"] / 2)  # the median alone
    assert pooled["scrps"] == pytest.approx(pooled["mase"])
    assert aggregate(result.metrics).select(added).to_numpy() == pytest.approx(
        result.aggregate.select(added).to_numpy()
    )
    by = result.score("step", metrics=["mae"])
    skill = ["mae_naive", "mae_skill_naive", "mae_snaive", "mae_skill_snaive"]
    counts = ["n_naive", "n_snaive", *bands, "n_scaled"]  # n_scaled: scrps, msis are scaled
    assert by.columns == ["step", "target", "n", *counts, "mae", *skill,
                          *[c for s in added for c in _beside(s)]]  # fmt: skip


def _beside(score: str) -> list[str]:
    """``score`` and the baselines' columns beside it: each one's score, and its skill ratio
    unless ``score`` is a coverage or a width."""
    parts = ("",) if score.startswith(("coverage_", "width_")) else ("", "skill_")
    return [score, *(f"{score}_{p}{b}" for b in ("naive", "snaive") for p in parts)]


def _by_hand(history: np.ndarray, horizon: int, m: int, level: float) -> tuple[np.ndarray, ...]:
    """The split-conformal seasonal-naive interval from ``history`` written out: step h
    forecasts the value k m steps back (k = ceil(h / m)), +- the ceil((n + 1) L / 100)-th
    smallest of the n absolute differences at that lag."""
    lo, hi = np.empty(horizon), np.empty(horizon)
    for h in range(1, horizon + 1):
        lag = m * -(-h // m)
        point = history[len(history) - m + (h - 1) % m]
        errors = np.sort(np.abs(history[lag:] - history[:-lag]))
        r = errors[min(int(np.ceil((errors.size + 1) * level / 100)), errors.size) - 1]
        lo[h - 1], hi[h - 1] = point - r, point + r
    return lo, hi


def test_the_baselines_intervals_are_seasonal_naives_on_the_history_up_to_each_origin(fitted):
    """The baselines had point scores only (docs/index.md said interval scores come next to a
    seasonal-naive baseline): result.baselines now has coverage and Winkler of the naive and
    seasonal-naive split-conformal intervals, each origin's calibrated on its history alone:
    at two origins of a short series, those of seasonal_naive(history up to the origin,
    level=[80]) and of the same interval written out by hand."""
    from forecaster.evaluation import seasonal_naive

    model = IntervalForecaster(**TINY)
    model.__dict__.update(fitted.__dict__)
    frame = make_frame(lengths=(60,))
    result = backtest(model, frame, folds=2, m=24, metrics=["mae"])
    y = frame["y"].to_numpy()
    times = frame["time"].to_list()
    for base, m in (("naive", 1), ("snaive", 24)):
        rows = result.baselines.filter(pl.col("baseline") == base).sort("fold")
        assert rows.height == 2
        for row in rows.iter_rows(named=True):
            origin = times.index(row["cutoff"])
            history = frame.head(origin + 1)
            expected = seasonal_naive(history, 6, m=m, target="y", time_col="time", id_col="id",
                                      level=[80])  # fmt: skip
            lo, hi = _by_hand(y[: origin + 1], 6, m, 80)
            assert expected["y_lo_80"].to_numpy() == pytest.approx(lo)
            assert expected["y_hi_80"].to_numpy() == pytest.approx(hi)
            actual = y[origin + 1 : origin + 7]
            inside = (actual >= lo) & (actual <= hi)
            winkler = hi - lo + 2 / 0.2 * (np.maximum(lo - actual, 0) + np.maximum(actual - hi, 0))
            assert row["n"] == 6
            assert row["coverage_80"] == pytest.approx(inside.mean())
            assert row["width_80"] == pytest.approx(np.mean(hi - lo))
            assert row["winkler_80"] == pytest.approx(winkler.mean())
            assert row["mae"] == pytest.approx(np.abs(expected["y"].to_numpy() - actual).mean())
    overall = result.aggregate.row(0, named=True)
    for base in ("naive", "snaive"):
        theirs = result.baselines.filter(pl.col("baseline") == base)
        assert overall[f"winkler_80_{base}"] == pytest.approx(theirs["winkler_80"].mean())
        assert overall[f"winkler_80_skill_{base}"] == pytest.approx(
            overall["winkler_80"] / overall[f"winkler_80_{base}"]
        )
        assert overall[f"coverage_80_{base}"] == pytest.approx(theirs["coverage_80"].mean())
        assert f"coverage_80_skill_{base}" not in overall  # a ratio of coverages is no skill
    assert_frame_equal(aggregate(result.metrics), result.aggregate, check_exact=False)
    assert_frame_equal(result.score([]), result.aggregate, check_exact=False)


def test_no_value_after_an_origin_changes_the_baselines_interval_there(fitted):
    """Every value after fold 0's origin is changed: fold 0's baseline intervals (their
    width) are the same, a later fold's are not (its history holds changed values)."""
    model = IntervalForecaster(**TINY)
    model.__dict__.update(fitted.__dict__)
    frame = make_frame(lengths=(80,))
    result = backtest(model, frame, folds=2, step=6, m=24, metrics=["mae"])
    cutoff = result.folds["cutoff"][0]
    later = pl.col("time") > cutoff
    changed = frame.with_columns(pl.when(later).then(pl.col("y") * 3 + 7).otherwise("y"))
    again = backtest(model, changed, folds=2, step=6, m=24, metrics=["mae"])
    for base in ("naive", "snaive"):
        first, second = (
            r.baselines.filter(pl.col("baseline") == base).sort("fold")["width_80"]
            for r in (result, again)
        )
        assert first[0] == second[0]  # bit for bit: calibrated on the values up to the origin
        assert first[1] != pytest.approx(second[1])


def test_baseline_intervals_when_no_origin_is_long_enough_for_a_lag_are_nan():
    """conformal_bounds raised IndexError when no origin of a chunk had a difference at some
    step's lag (every history at most that lag long): those steps are NaN, the others not."""
    from forecaster.evaluation.baseline_intervals import conformal_bounds
    from forecaster.evaluation.baselines import origin_forecasts

    values = np.arange(10.0)[:, None] ** 2
    starts, origins = np.array([0, 0]), np.array([3, 4])  # 4, 5 values: lags 1..3, 1..4
    point = origin_forecasts(values, starts, origins, 6, 1)
    bounds = conformal_bounds(values, starts, origins, point, 1, levels=[80], quantiles=[0.5])
    assert np.isnan(bounds[:, 4:]).all() and np.isnan(bounds[0, 3]).all()
    assert not np.isnan(bounds[1, 3]).any() and not np.isnan(bounds[:, :3]).any()


def test_a_backtest_whose_origins_are_all_too_short_for_snaive_intervals_warns(fitted):
    """Every origin has 24 values, fewer than the 25 the seasonal naive's intervals need at
    m=24: the backtest warns and has no snaive intervals (it raised IndexError); its point
    forecasts are scored all the same."""
    model = IntervalForecaster(**TINY)
    model.__dict__.update(fitted.__dict__)
    frame = make_frame(lengths=(30, 30))
    with pytest.warns(ForecasterWarning, match=r"2 of the 2 .* snaive baseline .* needs 25"):
        result = backtest(model, frame, folds=1, m=24, metrics=["mae"])
    overall = result.aggregate.row(0, named=True)
    assert overall["n_interval_snaive"] == 0 and np.isnan(overall["winkler_80_snaive"])
    assert overall["n_snaive"] == 12 and not np.isnan(overall["mae_snaive"])
    assert overall["n_interval_naive"] == 12 and not np.isnan(overall["winkler_80_naive"])


def test_asking_for_intervals_leaves_the_baselines_point_scores_as_they_were(fitted):
    """s2's first origin has 24 values: a seasonal-naive forecast at m=24, but no interval
    (seasonal_naive(level=...) needs 25, a difference at lag 24). With level it had no snaive
    forecast at all, so mae_snaive, n_snaive and the skill ratios counted fewer origins than
    the same backtest without level (n_snaive 30, not 36). Its point forecast is now scored
    (every point score bit for bit as without level) and its interval scores are NaN,
    n_interval_snaive 0, which pooling weights them by (aggregate, score(), by_step)."""
    model = IntervalForecaster(**TINY)
    model.__dict__.update(fitted.__dict__)
    frame = make_frame(lengths=(200, 200, 36))
    args = {"folds": 2, "step": 6, "m": 24, "metrics": ["mae", "mase"], "origins": "series"}
    with pytest.warns(ForecasterWarning, match=r"1 of the 6 .* snaive baseline .* needs 25"):
        result = backtest(model, frame, **args)
    plain = backtest(fitted, frame, **args)
    for name in ("metrics", "by_step", "aggregate"):
        before = getattr(plain, name)
        assert getattr(result, name).select(before.columns).equals(before)  # bit for bit
    assert result.baselines.select(plain.baselines.columns).equals(plain.baselines)
    assert result.score("fold").select(plain.score("fold").columns).equals(plain.score("fold"))
    short = result.metrics.filter((pl.col("id") == "s2") & (pl.col("fold") == 0)).row(0, named=True)
    assert short["n_snaive"] == 6 and short["n_interval_snaive"] == 0
    assert np.isnan(short["winkler_80_snaive"]) and not np.isnan(short["mae_snaive"])
    assert np.isnan(short["coverage_80_snaive"])  # not a coverage of 0
    assert short["n_interval_naive"] == 6 and not np.isnan(short["winkler_80_naive"])
    snaive = result.baselines.filter(pl.col("baseline") == "snaive")
    expected = [0 if i == "s2" and f == 0 else 6 for f, i in snaive.select("fold", "id").rows()]
    assert snaive["n_interval"].to_list() == expected
    overall = result.aggregate.row(0, named=True)
    assert (overall["n_snaive"], overall["n_interval_snaive"]) == (36, 30)
    kept = snaive.filter(pl.col("n_interval") > 0)
    assert overall["winkler_80_snaive"] == pytest.approx(kept["winkler_80"].mean())
    model_kept = result.metrics.filter(pl.col("n_interval_snaive") > 0)
    assert overall["winkler_80_skill_snaive"] == pytest.approx(
        model_kept["winkler_80"].mean() / kept["winkler_80"].mean()
    )
    assert_frame_equal(aggregate(result.metrics), result.aggregate, check_exact=False)
    assert_frame_equal(result.score([]), result.aggregate, check_exact=False)
    pooled = aggregate(result.baselines, by="baseline").filter(pl.col("baseline") == "snaive")
    assert pooled["n_interval"].item() == 30
    assert pooled["winkler_80"].item() == pytest.approx(overall["winkler_80_snaive"])
    assert (result.by_step["n_interval_snaive"] == 5).all()  # of 6: the model's on 5 not there
    with pytest.raises(DataValidationError, match=r"'n_interval_snaive' .* 0 or n"):
        aggregate(result.by_step)
    with pytest.raises(DataValidationError, match=r"metrics .* by_step .* pool several"):
        aggregate(result.by_step)  # it said "as the backtest wrote it": by_step is


# ---------------------------------------------------------------- baselines and skill


def test_backtest_scores_naive_and_seasonal_naive_on_the_same_origins(fitted, frame):
    result = backtest(fitted, frame, folds=3, m=24, metrics=["mae", "rmse", "mase"])
    y = {k: g.sort("time")["y"].to_numpy()
         for (k,), g in frame.group_by("id")}  # fmt: skip
    times = frame.filter(pl.col("id") == "s0")["time"].to_list()
    steps = np.arange(6)
    for base, rows in (("naive", lambda o: np.full(6, o)), ("snaive", lambda o: o - 23 + steps)):
        got = result.baselines.filter(pl.col("baseline") == base)
        # the same (fold, series) origins and points as the model's scores
        assert (
            got.drop("baseline")
            .select("fold", "cutoff", "id", "target", "n")
            .equals(result.metrics.select("fold", "cutoff", "id", "target", "n"))
        )
        for fold, ident, cutoff, mae, mase in got.select(
            "fold", "id", "cutoff", "mae", "mase"
        ).iter_rows():
            o = times.index(cutoff)
            errors = np.abs(y[ident][o + 1 + steps] - y[ident][rows(o)])
            scale = np.mean(np.abs(y[ident][24 : o + 1] - y[ident][: o + 1 - 24]))
            assert mae == pytest.approx(errors.mean(), rel=1e-6), (base, fold, ident)
            assert mase == pytest.approx(errors.mean() / scale, rel=1e-6), (base, fold, ident)
    pooled = result.aggregate.row(0, named=True)
    for base in ("naive", "snaive"):
        for name in ("mae", "rmse", "mase"):
            assert pooled[f"{name}_skill_{base}"] == pytest.approx(
                pooled[name] / pooled[f"{name}_{base}"]
            )
        theirs = aggregate(result.baselines.filter(pl.col("baseline") == base).drop("baseline"))
        assert pooled[f"mae_{base}"] == pytest.approx(theirs["mae"].item())
    assert result.aggregate.columns[:8] == [
        "target", "n", "n_naive", "n_snaive", "n_scaled", "mae", "mae_naive", "mae_skill_naive"
    ]  # fmt: skip
    by_step = result.by_step
    assert by_step["mae_skill_snaive"].to_list() == pytest.approx(
        (by_step["mae"] / by_step["mae_snaive"]).to_list()
    )
    beside = ["", "_naive", "_skill_naive", "_snaive", "_skill_snaive"]
    scored = [f"{m}{b}" for m in ("mae", "rmse", "mase") for b in beside]
    counts = ["n_naive", "n_snaive", "n_scaled"]
    assert result.metrics.columns == ["fold", "cutoff", "id", "target", "n", *counts, *scored]
    naive = result.baselines.filter(pl.col("baseline") == "naive")  # the same blocks' scores
    assert result.metrics["mase_naive"].to_list() == naive["mase"].to_list()


def test_backtest_with_m_1_has_the_naive_baseline_only(fitted, frame):
    result = backtest(fitted, frame, folds=2, metrics=["mae"])
    assert result.aggregate.columns == [
        "target", "n", "n_naive", "mae", "mae_naive", "mae_skill_naive"
    ]  # fmt: skip
    assert result.baselines["baseline"].unique().to_list() == ["naive"]
    at_origin = frame.select("id", pl.col("time").alias("cutoff"), pl.col("y").alias("last"))
    points = result.forecasts.join(at_origin, on=["id", "cutoff"], how="left")
    error = (points["y_actual"] - points["last"]).abs()  # the frame's float64 values
    assert result.aggregate["mae_naive"].item() == pytest.approx(error.mean(), rel=1e-6)
    halved = backtest(fitted, frame, folds=2, metrics=["mae"], scale=2.0).aggregate  # divisors too
    assert halved["mae_naive"].item() == pytest.approx(error.mean() / 2, rel=1e-6)
    assert halved["mae_skill_naive"].item() == pytest.approx(
        result.aggregate["mae_skill_naive"].item()
    )


def test_seasonal_naive_without_m_values_before_an_origin_is_nan_with_a_warning(fitted, frame):
    with pytest.warns(ForecasterWarning, match="fewer than m=190 values"):
        result = backtest(fitted, frame, folds=3, m=190, metrics=["mae"])
    snaive = result.baselines.filter(pl.col("baseline") == "snaive")
    assert snaive.filter(pl.col("fold") == 0)["mae"].is_nan().all()
    assert not snaive.filter(pl.col("fold") == 2)["mae"].is_nan().any()


def test_with_skill_refuses_a_score_without_a_skill_ratio_among_metrics():
    """with_skill(metrics=["coverage_80"]) set the baseline's coverage beside the model's and
    quietly no skill ratio (a coverage's ratio is no skill); now refused, naming the scores
    that have ratios, and shown= sets a baseline's value without a ratio."""
    from forecaster.evaluation.pooling import skill_split, with_skill

    ours = pl.DataFrame({"target": ["y"], "n": [4], "coverage_80": [0.75], "winkler_80": [2.0]})
    naive = pl.DataFrame({"target": ["y"], "n": [4], "coverage_80": [0.5], "winkler_80": [4.0]})
    kw = {"keys": ["target"]}
    with pytest.raises(DataValidationError, match=r"\['coverage_80'\] have none.*\['winkler_80'\]"):
        with_skill(ours, {"naive": naive}, metrics=["coverage_80", "winkler_80"], **kw)
    out = with_skill(ours, {"naive": naive}, **skill_split(["coverage_80", "winkler_80"]), **kw)
    assert out.columns == [
        "target", "n", "n_naive", "coverage_80", "coverage_80_naive",
        "winkler_80", "winkler_80_naive", "winkler_80_skill_naive",
    ]  # fmt: skip
    assert out.row(0)[-1] == 0.5


def test_the_baselines_interval_counts_are_refused_as_id_and_key_names():
    """n_interval and n_interval_<baseline> are count columns of a backtest's score frames
    with intervals: an id so named would be pooled as a count by aggregate."""
    from forecaster.evaluation.score_names import check_score_keys, reads_as_score, score_columns

    names = ("n_interval", "n_interval_naive", "n_interval_snaive")
    assert all(reads_as_score(c) for c in names) and not reads_as_score("n_intervals")
    columns = score_columns(["mae"], m=24, levels=[80])
    assert [c for c in columns if c.startswith("n_interval")] == list(names)
    assert not any(c.startswith("n_interval") for c in score_columns(["mae"], m=24))
    for name in names:
        with pytest.raises(DataValidationError, match=rf"id column '{name}' has the name"):
            check_score_keys(name, score_columns(["mae"], m=24))
        with pytest.raises(DataValidationError, match=r"count of points a baseline's interval"):
            aggregate(pl.DataFrame({name: [1], "n": [1], "mae": [1.0]}), by=name)


def _bounds_sorted_per_origin(values, starts, origins, point, m, levels, quantiles):
    """conformal_bounds as it was before sorting each series' differences once: every
    origin's own differences sorted (the reference its values must equal bit for bit)."""
    from forecaster.evaluation.intervals import conformal_ranks, signed_ranks

    n, horizon, k = point.shape
    lags = m * (np.arange(horizon) // m + 1)
    out = np.full((n, horizon, k, 2 * len(levels) + len(quantiles)), np.nan)
    width = int((origins - starts).max()) + 1
    rows = origins[:, None] - np.arange(width)[None, :]
    inside = rows >= starts[:, None]
    for j in range(k):
        history = values[:, j][np.where(inside, rows, origins[:, None])]
        history[~inside] = np.nan
        for lag in np.unique(lags):
            if lag >= width:
                continue
            steps = np.flatnonzero(lags == lag)
            diffs = history[:, :-lag] - history[:, lag:]
            count = (~np.isnan(diffs)).sum(axis=1)
            some = np.maximum(count, 1)
            absolute, signed = np.sort(np.abs(diffs), axis=1), np.sort(diffs, axis=1)
            radius = [absolute[np.arange(n), np.minimum(conformal_ranks(some, v), some) - 1]
                      for v in levels]  # fmt: skip
            shift = [signed[np.arange(n), signed_ranks(some, q) - 1] for q in quantiles]
            base = point[:, steps, j, None]
            r = np.stack(radius, axis=1)[:, None] if levels else np.empty((n, 1, 0))
            q = np.stack(shift, axis=1)[:, None] if quantiles else np.empty((n, 1, 0))
            bounds = np.concatenate([base - r, base + r, base + q], axis=-1)
            bounds[count == 0] = np.nan
            out[:, steps, j] = bounds
    return out


@pytest.mark.parametrize("cells", [1 << 22, 7])
def test_conformal_bounds_equal_those_of_sorting_every_origins_differences(cells, monkeypatch):
    """conformal_bounds sorts each series' differences once and reads every origin's rank
    from running counts (it sorted each origin's own): the same values bit for bit on
    random panels with ties (small integers), NaN values, origins too short for some lags
    and several targets, in one chunk and in chunks of a few cells."""
    from forecaster.evaluation import baseline_intervals
    from forecaster.evaluation.baselines import origin_forecasts

    monkeypatch.setattr(baseline_intervals, "_CHUNK_CELLS", cells)
    rng = np.random.default_rng(7)
    for case in range(30):
        lengths = rng.integers(1, 40, size=rng.integers(1, 6))
        values = rng.integers(-3, 4, size=(int(lengths.sum()), 2)).astype(np.float64)
        values[rng.random(values.shape) < 0.1] = np.nan
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        series = rng.integers(0, lengths.size, size=12)
        starts = firsts[series]
        origins = starts + (rng.random(12) * lengths[series]).astype(np.int64)
        m, horizon = int(rng.integers(1, 4)), int(rng.integers(1, 8))
        point = origin_forecasts(values, starts, origins, horizon, 1)
        levels, quantiles = [50.0, 80.0, 95.0][: case % 4], [0.1, 0.5, 0.9][: (case // 4) % 4]
        got = baseline_intervals.conformal_bounds(
            values, starts, origins, point, m, levels=levels, quantiles=quantiles
        )
        expected = _bounds_sorted_per_origin(values, starts, origins, point, m, levels, quantiles)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), case
        known = ~np.isnan(got)
        assert np.array_equal(got[known].view(np.int64), expected[known].view(np.int64)), case

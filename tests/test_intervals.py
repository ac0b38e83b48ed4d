"""Prediction intervals and quantile forecasts of the estimators (issue 13): loss="quantile",
predict(level=..., quantiles=...), calibrate (split conformal, CQR), save / load, the
regressor's intervals, and the coverage guarantee of split conformal prediction."""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import (
    GAPPY_MODEL,
    STAGGERED_MODEL,
    for_head,
    forecaster_warning_kinds,
    forget_mlflow_state,
    gappy_panel,
    repeated_calls_script,
    reset_mlflow_state,
    staggered_copies,
    stderr_under_default_warnings,
)

import forecaster
from forecaster._validation import check
from forecaster.data.transforms import domain_floor
from forecaster.estimators import calibration, conformal_groups, intervals
from forecaster.estimators.forecaster import RNNForecaster
from forecaster.estimators.intervals import (
    conformal_rank,
    interval_columns,
    order_statistic,
    quantile_name,
    signed_quantile,
)
from forecaster.estimators.regressor import RNNRegressor
from forecaster.evaluation import backtest, seasonal_naive
from forecaster.evaluation.intervals import IntervalColumns, level_name
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    NoResidualsWarning,
)

SMALL = dict(
    lookback=24,
    horizon=4,
    hidden_size=8,
    segment_length=4,
    max_epochs=2,
    random_state=0,
    progress=False,
    validation_size=0,
)


def _panel(n=160, series=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pl.DataFrame(
        {
            "id": np.repeat(list(series), n),
            "time": np.tile(t, len(series)),
            "y": np.concatenate(
                [np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, n) for _ in series]
            ),
            "z": rng.normal(size=n * len(series)),
        }
    )


@pytest.fixture(scope="module")
def frame():
    return _panel()


@pytest.fixture(scope="module")
def point_model(frame):
    return RNNForecaster(target="y", id_col="id", **SMALL).fit(frame.filter(pl.col("time") < 120))


@pytest.fixture(scope="module")
def quantile_model(frame):
    return RNNForecaster(
        target=["y", "z"],
        id_col="id",
        loss="quantile",
        quantiles=[0.1, 0.25, 0.5, 0.75, 0.9],
        **SMALL,
    ).fit(frame.filter(pl.col("time") < 120))


def test_names():
    assert quantile_name("y", 0.1) == "y_q10"
    assert quantile_name("y", 0.025) == "y_q2.5"
    assert conformal_rank(19, 80) == 16


@pytest.mark.parametrize("head", ["direct", "seq2seq", "recursive", "segment"])
def test_quantile_model_every_head(frame, head, tmp_path):
    model = RNNForecaster(target="y", id_col="id", loss="quantile", **for_head(SMALL, head))
    model.fit(frame.filter(pl.col("time") < 120))
    out = model.predict(frame, quantiles=[0.1, 0.5, 0.9], level=80)
    q = out.select("y_q10", "y_q50", "y_q90").to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    assert np.array_equal(out["y"].to_numpy(), out["y_q50"].to_numpy())  # point = median
    assert np.array_equal(out["y_lo_80"].to_numpy(), q[:, 0])
    model.save(tmp_path / "m")
    loaded = forecaster.load(tmp_path / "m")
    assert loaded.predict(frame, quantiles=[0.1, 0.5, 0.9], level=80).equals(out)
    assert out.select("id", "time", "y").equals(model.predict(frame))


def test_quantile_parameters_refused():
    with pytest.raises(DataValidationError, match="quantiles"):
        RNNForecaster(target="y", quantiles=[0.1, 0.5, 0.9]).validate_params()
    with pytest.raises(DataValidationError, match=r"0\.5"):
        RNNForecaster(target="y", loss="quantile", quantiles=[0.1, 0.9]).validate_params()
    with pytest.raises(DataValidationError, match="quantiles"):
        RNNForecaster(target="y", loss="quantile", quantiles=[0.1, 1.5]).validate_params()
    with pytest.raises(DataValidationError, match="RNNForecaster"):
        RNNRegressor(loss="quantile").validate_params()


def test_quantile_model_multivariate_levels_and_cutoffs(quantile_model, frame):
    out = quantile_model.predict(frame, level=[50, 80])
    for t in ("y", "z"):
        assert (out[f"{t}_lo_80"] <= out[f"{t}_lo_50"]).all()
        assert (out[f"{t}_lo_50"] <= out[t]).all() and (out[t] <= out[f"{t}_hi_50"]).all()
        assert (out[f"{t}_hi_50"] <= out[f"{t}_hi_80"]).all()
    many = quantile_model.predict(frame, cutoff=[130, 140], quantiles=[0.25, 0.75])
    assert many.height == 2 * 2 * 4
    assert {"origin", "y_q25", "y_q75", "z_q25", "z_q75"} <= set(many.columns)
    one = quantile_model.predict(frame, cutoff=140, quantiles=[0.25, 0.75])
    assert np.allclose(many.filter(pl.col("origin") == 140)["y_q75"], one["y_q75"])
    with pytest.raises(DataValidationError, match="fitted with quantiles"):
        quantile_model.predict(frame, quantiles=[0.3])
    with pytest.raises(DataValidationError, match="level=95"):
        quantile_model.predict(frame, level=95)


def test_point_model_needs_calibration(point_model, frame):
    with pytest.raises(DataValidationError, match=r"calibrate\(frame\)"):
        point_model.predict(frame, level=80)
    with pytest.raises(DataValidationError, match="inside the model's training data"):
        point_model.calibrate(frame.filter(pl.col("time") < 120), folds=2)


def test_a_refit_drops_the_earlier_models_calibration(frame):
    """The residuals of calibrate belong to the network they were measured on: a refit (here
    on data 1,000x larger) forgets them, so predict(level=...) asks for a new calibration
    instead of drawing the old widths around the new forecasts; a refit that fails keeps
    the earlier model, calibration included."""
    model = RNNForecaster(target="y", id_col="id", **SMALL).fit(frame.filter(pl.col("time") < 120))
    model.calibrate(frame, folds=10, step=4)
    calibration = model.conformal_
    with pytest.raises(DataValidationError):
        model.fit(frame.head(0))
    assert model.conformal_ is calibration
    larger = frame.with_columns(pl.col("y") * 1000)
    model.fit(larger.filter(pl.col("time") < 120))
    assert "conformal_" not in vars(model)
    with pytest.raises(DataValidationError, match=r"calibrate\(frame\)"):
        model.predict(larger, level=80)


@pytest.mark.parametrize("name", ["n", "mae_naive", "baseline", "target"])
def test_calibrate_takes_an_id_column_named_like_a_backtest_score(frame, name):
    """calibrate backtests to get its residuals and reads no score, but its backtest refused
    an id named like a column of the score frames (``n``, ``mae_naive``, ``baseline``,
    ``target``): no score frame is written, so nothing clashes."""
    renamed = frame.rename({"id": name})
    model = RNNForecaster(target="y", id_col=name, **SMALL).fit(
        renamed.filter(pl.col("time") < 120)
    )
    model.calibrate(renamed, folds=10, step=4)
    assert model.conformal_["residuals"].shape == (20, 4, 1, 1)
    out = model.predict(renamed, level=80)
    assert out[name].unique().sort().to_list() == ["a", "b"]
    assert (out["y_hi_80"] > out["y_lo_80"]).all()


def test_calibrate_point_model_save_load(point_model, frame, tmp_path):
    before = point_model.predict(frame)
    model = forecaster.load(point_model.save(tmp_path / "p"))
    model.calibrate(frame, folds=10, step=4)
    assert model.conformal_["residuals"].shape == (20, 4, 1, 1)
    out = model.predict(frame, level=[80, 95], quantiles=[0.1, 0.9])
    assert out.select(before.columns).equals(before)  # the point forecast is unchanged
    width80 = (out["y_hi_80"] - out["y_lo_80"]).to_numpy()
    width95 = (out["y_hi_95"] - out["y_lo_95"]).to_numpy()
    assert (width80 > 0).all() and (width95 >= width80).all()
    assert np.allclose(out["y"] - out["y_lo_80"], out["y_hi_80"] - out["y"], atol=1e-5)
    model.save(tmp_path / "c")
    assert (
        forecaster.load(tmp_path / "c")
        .predict(frame, level=[80, 95], quantiles=[0.1, 0.9])
        .equals(out)
    )
    with pytest.raises(DataValidationError, match="too few"):
        model.predict(frame, level=99)
    cutoffs = model.predict(frame, cutoff=[130, 150], level=80)
    assert {"y_lo_80", "y_hi_80"} <= set(cutoffs.columns)


def test_calibrate_refit_per_series_and_cqr(quantile_model, frame):
    model = RNNForecaster(target="y", id_col="id", **SMALL)
    model.fit(frame.filter(pl.col("time") < 120))
    model.calibrate(
        frame.filter(pl.col("time") < 120), folds=2, step=4, refit=True, per_series=True
    )
    assert model.conformal_["per_series"] and model.conformal_["residuals"].shape[0] == 4
    assert "y_lo_50" in model.predict(frame, level=50).columns
    plain = quantile_model.predict(frame, level=80)
    quantile_model.calibrate(frame, folds=10, step=4)
    cqr = quantile_model.predict(frame, level=80)
    shift = (plain["y_lo_80"] - cqr["y_lo_80"]).to_numpy()
    assert np.allclose(shift, (cqr["y_hi_80"] - plain["y_hi_80"]).to_numpy(), atol=1e-4)
    assert cqr.select("id", "time", "y", "z").equals(plain.select("id", "time", "y", "z"))
    del quantile_model.conformal_


def test_regressor_intervals(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 8, 1)), rng.normal(size=(300, 3))
    model = RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X[:200], y[:200])
    with pytest.raises(DataValidationError, match="calibrate"):
        model.predict_interval(X)
    lo, hi = model.calibrate(X[200:250], y[200:250]).predict_interval(X[250:], level=80)
    pred = model.predict(X[250:])
    assert lo.shape == hi.shape == pred.shape and (lo < pred).all() and (pred < hi).all()
    loaded = forecaster.load(model.save(tmp_path / "r"))
    again = loaded.predict_interval(X[250:], level=80)
    assert np.array_equal(again[0], lo) and np.array_equal(again[1], hi)
    for several in ([80, 95], (80, 95), np.array([80, 95])):  # one (lo, hi) pair: one level
        with pytest.raises(DataValidationError, match=r"takes one level.*once per level"):
            model.predict_interval(X[250:], level=several)
    for one in ([80], (80.0,), np.array([80])):
        assert np.array_equal(model.predict_interval(X[250:], level=one)[0], lo)
    model.calibrate(X[200:210], y[200:210])  # 10 residuals: a 95 % interval needs 19
    advice = r"19\)\. Calibrate on more windows held out from fit: model\.calibrate\(X_cal, y_cal\)"
    with pytest.raises(DataValidationError, match=advice):  # was the forecaster's folds=
        model.predict_interval(X[250:], level=95)


def test_regressor_interval_level_gets_a_one_level_message():
    """Was: level=True or '80' said "Pass a list, e.g. level=[80, 95]", and that list was then
    refused ("predict_interval takes one level"). The level is checked before anything else."""
    model, X = RNNRegressor(), np.zeros((2, 4, 1))
    for bad, got in (
        (True, r"True \(a bool\)"),
        ("80", r"'80' \(a string\)"),
        (None, r"None \(NoneType\)"),
        (0.8, "0.8"),
        ([True], r"True \(a bool\)"),
    ):
        message = rf"^level must be a finite number in \(1, 100\), got {got}\..*80 for an 80 %"
        with pytest.raises(DataValidationError, match=message) as caught:
            model.predict_interval(X, level=bad)
        assert "Pass a list" not in str(caught.value)


def test_split_conformal_coverage_within_finite_sample_bound():
    """Split conformal on iid Gaussian data with a fixed forecast (0): the residuals are
    exchangeable, so the coverage of a new point is ceil((n + 1) L) / (n + 1), in [L,
    L + 1 / (n + 1)]. Each of 40,000 seeds (each with its own noise scale) is one horizon
    step of one call (vectorised); the mean coverage must lie in the bound up to 4.5
    standard errors (ranks of ceil(n L) instead, without the correction, fail it)."""
    rng = np.random.default_rng(12345)
    n, seeds = 30, 40_000
    sigma = rng.uniform(0.5, 3.0, size=seeds)
    residuals = (rng.normal(size=(n, seeds)) * sigma)[:, :, None, None]
    point = np.zeros((1, seeds, 1))
    conformal = {"residuals": residuals, "series": np.zeros(n, np.int64), "per_series": False}
    for level in (50, 80, 90):
        cols = interval_columns(
            ["y"],
            point,
            None,
            None,
            conformal,
            np.zeros(1, np.int64),
            levels=[level],
            quantiles=None,
        )
        y_new = rng.normal(size=seeds) * sigma
        covered = (cols[f"y_lo_{level}"] <= y_new) & (y_new <= cols[f"y_hi_{level}"])
        low, high = level / 100, level / 100 + 1 / (n + 1)
        se = np.sqrt(low * (1 - low) / seeds)
        assert low - 4.5 * se <= covered.mean() <= high + 4.5 * se, (level, covered.mean())


def test_calibrated_forecaster_covers_ar1():
    """End to end on an AR(1) with Gaussian noise: intervals calibrated on one span cover
    the next span's values about as often as their level says (a loose check, one seed)."""
    rng = np.random.default_rng(7)
    n_series, n = 8, 260
    values = np.zeros((n_series, n))
    for t in range(1, n):
        values[:, t] = 0.7 * values[:, t - 1] + rng.normal(size=n_series)
    frame = pl.DataFrame(
        {
            "id": np.repeat(np.arange(n_series), n),
            "time": np.tile(np.arange(n), n_series),
            "y": values.ravel(),
        }
    )
    model = RNNForecaster(target="y", id_col="id", **for_head(SMALL, "direct"))
    model.fit(frame.filter(pl.col("time") < 120))
    model.calibrate(frame.filter(pl.col("time") < 190), folds=15, step=4)
    out = model.predict(frame, cutoff=list(range(190, 256, 4)), level=80)
    truth = out.join(frame, on=["id", "time"], suffix="_true")
    covered = (truth["y_lo_80"] <= truth["y_true"]) & (truth["y_true"] <= truth["y_hi_80"])
    assert 0.7 <= covered.mean() <= 0.92, covered.mean()


@pytest.mark.slow
def test_pyfunc_takes_level_and_quantiles(quantile_model, frame, tmp_path, monkeypatch):
    """The logged MLflow pyfunc passes ``params={"level": [...]}`` to predict (MLflow drops
    params its signature does not list, so the signature must list them)."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster import tracking

    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = tracking.log_fit(quantile_model, frame.filter(pl.col("time") < 120), plot=False)
            assert log.model_uri is not None, log.not_logged
            loaded = mlflow.pyfunc.load_model(log.model_uri)
            got = loaded.predict(frame.to_pandas(), params={"level": [80], "quantiles": [0.25]})
    finally:
        forget_mlflow_state()
    expected = quantile_model.predict(frame, level=[80], quantiles=[0.25])
    got = pl.from_pandas(got)
    assert set(expected.columns) == set(got.columns)
    assert np.allclose(got["y_lo_80"].to_numpy(), expected["y_lo_80"].to_numpy())
    assert np.allclose(got["z_q25"].to_numpy(), expected["z_q25"].to_numpy())


def test_quantile_ensemble_and_log_transform(frame):
    """An ensemble averages its members' quantiles (then sorts); a log-scale model's
    quantiles are its transformed quantiles (monotone: still ordered, median = point)."""
    positive = frame.with_columns(pl.col("y") + 3.0)
    model = RNNForecaster(
        target="y", id_col="id", loss="quantile", n_ensemble=2, target_transform="log", **SMALL
    ).fit(positive)
    out = model.predict(positive, quantiles=[0.1, 0.5, 0.9], level=80)
    q = out.select("y_q10", "y_q50", "y_q90").to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (q > 0).all()
    assert np.array_equal(out["y"].to_numpy(), q[:, 1])


def test_backtest_passes_level_and_quantiles_and_scores_them(quantile_model, frame):
    """A quantile model's backtest carries its interval and quantile columns and scores them;
    the point columns are those of a backtest without intervals; a clone of a point model is
    not calibrated, so the backtest refuses before any fit (the message said to call
    calibrate, which cannot help the clones)."""
    plain = backtest(quantile_model, frame, folds=3)
    banded = backtest(quantile_model, frame, folds=3, level=80, quantiles=[0.1, 0.9])
    assert {"y_lo_80", "y_hi_80", "y_q10", "y_q90", "z_lo_80"} <= set(banded.forecasts.columns)
    assert banded.forecasts.select(plain.forecasts.columns).equals(plain.forecasts)
    assert {"coverage_80", "width_80", "winkler_80"} <= set(banded.aggregate.columns)
    coverage = banded.aggregate["coverage_80"].to_numpy()
    assert ((coverage >= 0) & (coverage <= 1)).all()
    point = RNNForecaster(target="y", id_col="id", **SMALL)
    with pytest.raises(DataValidationError, match=r"models a backtest fits .* have none"):
        backtest(point, frame, folds=2, level=80)
    assert not hasattr(point, "network_")  # refused before any fit
    calibrated = point.fit(frame.filter(pl.col("time") < 100)).calibrate(frame, folds=5)
    with pytest.raises(DataValidationError, match=r"fitted and calibrated .* refit=False"):
        backtest(calibrated, frame, folds=2, refit=True, quantiles=[0.1])


def test_predict_orders_bounds_as_backtest_target_after_target(quantile_model, frame):
    """predict's and backtest's interval and quantile columns come in one order: target after
    target, each target's bounds (lo and hi of each level, levels ascending), then its
    quantiles (before: predict grouped quantiles by quantile, backtest lo bounds before hi)."""
    asked = {"level": [80, 50], "quantiles": [0.9, 0.1]}
    predicted = quantile_model.predict(frame, **asked).columns
    backtested = backtest(quantile_model, frame, folds=2, **asked).forecasts.columns
    bounds = [c for c in backtested if c in predicted and c not in ("time", "id", "y", "z")]
    assert [c for c in predicted if c in bounds] == bounds
    assert bounds == [
        *("y_lo_50", "y_hi_50", "y_lo_80", "y_hi_80", "y_q10", "y_q90"),
        *("z_lo_50", "z_hi_50", "z_lo_80", "z_hi_80", "z_q10", "z_q90"),
    ]


def _calm_then_volatile(n=400, switch=250, seed=3):
    """Two series of very different scales (1 and 1000) whose noise grows tenfold after
    ``switch``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    noise = np.where(t < switch, 0.1, 1.0)
    parts = [
        scale * (np.sin(2 * np.pi * t / 12) + noise * rng.normal(size=n)) for scale in (1, 1000)
    ]
    return pl.DataFrame(
        {"id": np.repeat(["small", "large"], n), "time": np.tile(t, 2), "y": np.concatenate(parts)}
    )


@pytest.fixture(scope="module")
def scaled_model():
    frame = _calm_then_volatile()
    model = RNNForecaster(target="y", id_col="id", **for_head(SMALL, "direct"))
    return model.fit(frame.filter(pl.col("time") < 150)), frame


def test_pooled_calibration_is_normalised_per_series(scaled_model):
    """Pooled across series of scales 1 and 1000: residuals normalised by each series' scale
    (the default) or by each window's spread give each series intervals of about its own
    scale; plain residuals give both one width (that of the large series, far too wide for
    the small one)."""
    model, frame = scaled_model
    calm = frame.filter(pl.col("time") < 240)
    widths = {}
    for normalize in ("series", "window", None):
        model.calibrate(calm, folds=20, step=4, normalize=normalize)
        out = model.predict(calm, level=80)
        width = out.group_by("id").agg((pl.col("y_hi_80") - pl.col("y_lo_80")).mean())
        widths[normalize] = dict(width.iter_rows())
    for normalize in ("series", "window"):
        assert widths[normalize]["large"] / widths[normalize]["small"] > 30
        assert widths[normalize]["small"] < widths[None]["small"] / 20
    assert widths[None]["large"] == pytest.approx(widths[None]["small"], rel=1e-4)
    model.calibrate(calm.filter(pl.col("id") == "small"), folds=20, step=4)
    with pytest.raises(DataValidationError, match="no calibration residuals"):
        model.predict(calm, level=80)  # the large series has no scale
    assert model.predict(calm.filter(pl.col("id") == "small"), level=80).height == 4
    del model.conformal_


def test_series_without_a_calibration_scale_are_counted_as_series_and_rows(scaled_model):
    """normalize="series" refuses forecasts of series with no calibration residuals: it said
    "N forecast rows" counting forecasts (one per series and origin, each ``horizon`` rows),
    and a rolling calibration counted only the forecasts of the first origin it met. It
    counts the series, the forecasts and their rows, and the unseen series among them."""
    model, frame = scaled_model
    new = frame.filter(pl.col("id") == "small").with_columns(id=pl.lit("new"))
    both = pl.concat([frame, new])  # "large": no residuals; "new": unseen in fit
    calm = both.filter(pl.col("time") < 240)
    model.calibrate(calm.filter(pl.col("id") == "small"), folds=20, step=4)
    expected = (
        r"normalize='series': 2 series \(8 forecast rows\) \('large', 'new'\) have no "
        r"calibration residuals: 1 of those series unseen in fit"
    )
    with pytest.raises(DataValidationError, match=expected):
        model.predict(calm, level=80)
    origins = [300, 340, 380]
    model.calibrate(
        frame.filter(pl.col("id") == "small"), folds=40, step=4, rolling=10, origins="calendar"
    )
    expected = (
        r"normalize='series': 6 forecasts \(24 rows\) of 2 series \('large', 'new'\) have "
        r"no calibration residuals: 1 of those series unseen in fit"
    )
    with pytest.raises(DataValidationError, match=expected):
        model.predict(both, cutoff=origins, level=80)
    del model.conformal_


def test_rolling_calibration_follows_the_errors_and_never_looks_ahead(scaled_model, tmp_path):
    """rolling=W: intervals at an origin after the noise grew widen with it (a static
    calibration on the calm span does not); changing the data after an origin leaves its
    intervals unchanged (only windows observed by the origin are used); saved and loaded."""
    model, frame = scaled_model
    origins = [240, 300, 380]
    options = dict(step=4, normalize=None, per_series=True, origins="calendar")
    model.calibrate(frame.filter(pl.col("time") < 240), folds=20, **options)
    static = model.predict(frame, cutoff=origins, level=80)
    model.calibrate(frame, folds=60, rolling=20, **options)  # origins 159, 163, ..., 395
    rolling = model.predict(frame, cutoff=origins, level=80)

    def width(out, origin):
        rows = out.filter((pl.col("origin") == origin) & (pl.col("id") == "small"))
        return float((rows["y_hi_80"] - rows["y_lo_80"]).mean())

    assert width(rolling, 380) > 1.5 * width(rolling, 240)
    assert width(static, 380) == pytest.approx(width(static, 240), rel=1e-4)
    changed = frame.with_columns(
        pl.when(pl.col("time") > 300).then(pl.col("y") * 5).otherwise(pl.col("y")).alias("y")
    )
    again = RNNForecaster(target="y", id_col="id", **for_head(SMALL, "direct"))
    again.fit(frame.filter(pl.col("time") < 150))
    again.calibrate(changed, folds=60, rolling=20, **options)
    same = again.predict(changed, cutoff=[300], level=80)
    assert same.equals(model.predict(frame, cutoff=[300], level=80))
    loaded = forecaster.load(model.save(tmp_path / "rolling"))
    assert loaded.predict(frame, cutoff=origins, level=80).equals(rolling)
    for normalize in ("series", "window"):  # pooled, each scale from observed windows only
        model.calibrate(
            frame, folds=60, step=4, rolling=20, normalize=normalize, origins="calendar"
        )
        again.calibrate(
            changed, folds=60, step=4, rolling=20, normalize=normalize, origins="calendar"
        )
        expected = model.predict(frame, cutoff=[300], level=80)
        assert again.predict(changed, cutoff=[300], level=80).equals(expected)
    del model.conformal_


def test_rolling_with_too_few_observed_windows_is_refused(scaled_model):
    model, frame = scaled_model
    model.calibrate(frame, folds=30, step=4, rolling=5, origins="calendar")
    with pytest.raises(DataValidationError, match="too few"):
        model.predict(frame, cutoff=[200], level=95)  # 5 windows per series: 10 pooled
    for normalize in ("series", None, "window"):  # no window observed by the origin yet
        model.calibrate(frame, folds=30, step=4, rolling=5, normalize=normalize, origins="calendar")
        with pytest.raises(DataValidationError, match=r"0 calibration residuals.*quantile 0\.25"):
            model.predict(frame, cutoff=[200], quantiles=[0.25, 0.75])  # was an IndexError
    assert "y_lo_80" in model.predict(frame, cutoff=[300], level=80).columns
    del model.conformal_


def test_too_few_residuals_are_refused_with_the_advice_of_their_case(scaled_model):
    """The advice was always "Calibrate on more origins, e.g. model.calibrate(frame,
    folds=20)", to a calibration of 30 folds too, and under rolling=W it did not say the
    cause: a W too small for the level, or no window ended by the origin yet."""
    model, frame = scaled_model  # 2 series
    model.calibrate(frame, folds=30, step=4, origins="calendar")
    fix = r"The calibration has 60 residuals per step of 2 series: calibrate with at least 50 "
    with pytest.raises(DataValidationError, match=fix + r"folds per series, e\.g\. model\."):
        model.predict(frame, level=99)  # needs 99
    model.calibrate(frame, folds=30, step=4, rolling=5, origins="calendar")
    with pytest.raises(
        DataValidationError, match=r"\(10 per step\): calibrate with rolling >= 10 "
    ):
        model.predict(frame, level=95)  # needs 19: 5 windows of 2 series are never enough
    model.calibrate(frame, folds=30, step=4, rolling=20, origins="calendar")
    first = int(model.conformal_["ends"][0])
    fourth = int(model.conformal_["ends"][3])
    with pytest.raises(
        DataValidationError,
        match=rf"^level=80: 0 .*No calibration window has ended by the origin 200 .*the first "
        rf"ends at {first}, and 4 have ended by {fourth}\): forecast from a cutoff on or after "
        rf"{fourth},",
    ):
        model.predict(frame, cutoff=[200], level=80)
    del model.conformal_


def test_normalised_split_conformal_covers_within_bound():
    """Normalised scores ``|r| / spread`` of heteroscedastic data whose spread is known:
    exchangeable, so the coverage bound of split conformal holds as for plain residuals,
    and each interval scales with its own spread. Each of 20,000 seeds is one target of one
    call (vectorised), with its own calibration set and its own new point."""
    rng = np.random.default_rng(2024)
    n, seeds = 30, 20_000
    cal_sigma = rng.uniform(0.1, 10.0, size=(n, seeds))
    residuals = rng.normal(size=(n, seeds)) * cal_sigma
    conformal = {
        "residuals": (residuals / cal_sigma)[:, None, :, None],  # (n, 1 step, seeds, 1)
        "series": np.zeros(n, np.int64),
        "per_series": False,
        "normalize": "window",
    }
    new_sigma = rng.uniform(0.1, 10.0, size=seeds)
    names = [f"s{k}" for k in range(seeds)]
    cols = interval_columns(
        names,
        np.zeros((1, 1, seeds)),
        None,
        None,
        conformal,
        np.zeros(1, np.int64),
        levels=[80],
        quantiles=None,
        spread=new_sigma[None, :],
    )
    lo = np.array([cols[f"{name}_lo_80"][0] for name in names])
    hi = np.array([cols[f"{name}_hi_80"][0] for name in names])
    y_new = rng.normal(size=seeds) * new_sigma
    covered = (lo <= y_new) & (y_new <= hi)
    low, high, se = 0.8, 0.8 + 1 / (n + 1), np.sqrt(0.16 / seeds)
    assert low - 4.5 * se <= covered.mean() <= high + 4.5 * se, covered.mean()
    assert np.corrcoef(hi - lo, new_sigma)[0, 1] > 0.5  # widths follow each spread


def test_window_normalised_intervals_survive_a_run_of_zeros():
    """A shutdown (a run of zeros) in the calibration span: its flat windows had a spread of
    1e-12, and their residuals divided by it made the pooled quantile, so every interval,
    about 1e11 wide. A window's spread is now at least a tenth of its series' history's."""
    rng = np.random.default_rng(0)
    t = np.arange(400)
    y = 5 + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, t.size)
    y[250:285] = 0.0
    frame = pl.DataFrame({"time": t, "y": y})
    model = RNNForecaster(target="y", **SMALL).fit(frame.head(200))
    widths = {}
    for normalize in ("series", "window"):
        model.calibrate(frame, folds=60, step=3, normalize=normalize)
        forecast = model.predict(frame, level=[95])
        widths[normalize] = float((forecast["y_hi_95"] - forecast["y_lo_95"]).mean())
    assert widths["window"] < 3 * widths["series"], widths
    # a window of zeros after a history of change keeps an interval of nonzero width
    zeros = frame.with_columns(pl.when(pl.col("time") >= 370).then(0.0).otherwise("y").alias("y"))
    forecast = model.predict(zeros, level=[80])
    assert (forecast["y_hi_80"] - forecast["y_lo_80"]).min() > 0.05


@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
def test_calibrate_does_not_warn_about_scores_it_does_not_compute(quantiles):
    """calibrate's backtest scored every metric, never shown: intermittent demand (zeros the
    forecast misses) got "MAPE is infinite", a flat series "MASE is infinite"; a quantile
    model's backtest still scores its quantiles, and the flat series got "sCRPS is
    infinite" (an InfiniteScoreWarning, which calibrate silences)."""
    rng = np.random.default_rng(0)
    t = np.arange(120)
    frame = pl.DataFrame(
        {
            "id": np.repeat(["a", "z"], t.size),
            "time": np.tile(t, 2),
            "y": np.r_[(rng.random(t.size) < 0.3) * 2.0, np.zeros(t.size)],
        }
    )
    loss = {"loss": "quantile", "quantiles": quantiles} if quantiles else {}
    model = RNNForecaster(target="y", id_col="id", baseline="none", **SMALL, **loss)
    model.fit(frame.filter(pl.col("time") < 80))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.calibrate(frame, folds=10)
    assert not [w for w in caught if "infinite" in str(w.message)], caught


@pytest.mark.parametrize("constant", [3.0, 1e10 + 300])
def test_a_constant_series_does_not_widen_every_window_normalised_interval(constant):
    """A series of 3s: its windows' spread was floored at 1e-6 of its level, 3e-6, so the
    network's error on it (0.08) became normalised residuals near 3e4 that made the pooled
    quantiles, and every series' 80 and 95 % intervals, about 5e4 wide (3 without it). A
    series constant so far has the scaler's scale of a constant series, 1, or 1e-6 of its
    level where more: a series of 1e10 + 300 is forecast in float32 as 1e10, and a spread of
    1 made that residual of 300 widen the other series' 95 % intervals from 4 to 260 (its
    own, 1e4 times the pooled quantile, are about 9e4 wide: 1e-5 of its level)."""
    rng = np.random.default_rng(0)
    t = np.arange(160)
    noisy = [10 + k + np.sin(t / 3 + k) + rng.normal(0, 0.3, t.size) for k in range(4)]
    frame = pl.concat(
        pl.DataFrame({"id": key, "time": t, "y": values})
        for key, values in zip(
            ["n0", "n1", "n2", "n3", "c"], [*noisy, np.full(t.size, constant)], strict=True
        )
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **SMALL)
    model.fit(frame.filter(pl.col("time") < 100))
    model.calibrate(frame, folds=25, step=2, normalize="window")
    forecast = model.predict(frame, level=[95])
    width = forecast["y_hi_95"] - forecast["y_lo_95"]
    assert width.filter(forecast["id"] != "c").max() < 20, width
    assert width.filter(forecast["id"] == "c").max() < max(20, 2e-5 * constant), width


def _coverage_80(model, frame, cutoffs):
    """Each series' share of actual values inside its 80 % intervals, and their mean
    half-width, over forecasts from ``cutoffs``."""
    forecast = model.predict(frame, cutoff=cutoffs, level=[80])
    joined = forecast.join(frame.rename({"y": "actual"}), on=["id", "time"])
    inside = (pl.col("actual") >= pl.col("y_lo_80")) & (pl.col("actual") <= pl.col("y_hi_80"))
    half = ((pl.col("y_hi_80") - pl.col("y_lo_80")) / 2).mean()
    stats = joined.group_by("id").agg(cover=inside.mean(), half=half).sort("id")
    return {row["id"]: row for row in stats.to_dicts()}


def test_window_spread_floor_spares_series_that_move_little_for_their_level():
    """normalize="window" floored every window's spread at 0.1 % of its level: a series of
    3e5 + 100 sin + N(0, 30) moves 41 a step, was read as 300, and its 80 % intervals (half
    width 771 here, 143 now) covered all its values. Only windows flat at float32 precision
    (1e-6 of the level) are floored now."""
    rng = np.random.default_rng(1)
    n, t = 400, np.arange(400)
    levels = {"A": (3e5, 100.0, 30.0), "B": (100.0, 10.0, 3.0)}
    frame = pl.concat(
        pl.DataFrame(
            {"id": s, "time": t, "y": a + b * np.sin(2 * np.pi * t / 12) + c * rng.normal(size=n)}
        )
        for s, (a, b, c) in levels.items()
    )
    params = {**SMALL, "horizon": 6, "hidden_size": 16, "max_epochs": 3}
    model = RNNForecaster(target="y", id_col="id", **params).fit(frame.filter(pl.col("time") < 200))
    model.calibrate(frame.filter(pl.col("time") < 300), folds=80, step=1, normalize="window")
    stats = _coverage_80(model, frame, list(range(300, n - 6)))
    assert 0.6 < stats["A"]["cover"] < 0.92, stats
    assert stats["A"]["half"] < 300, stats
    # a window flat in float32 keeps a spread of its level: 1e-6 of 3e5
    flat = frame.filter(pl.col("id") == "A").with_columns(y=pl.lit(3e5))
    forecast = model.predict(flat, level=[80])
    assert (forecast["y_hi_80"] - forecast["y_lo_80"]).min() > 0


def test_series_normalised_intervals_of_series_far_apart_in_scale():
    """normalize="series" floored every series' scale at 1e-12 of the panel's mean scale: a
    1e-6 +- 1e-7 sensor beside a 1e10 +- 1e7 revenue was floored at 5e-6, 35 times its own
    mean residual, so its 80 % intervals covered all its values and left the revenue 49 %.
    Each series is scaled by its own residuals only."""
    rng = np.random.default_rng(1)
    n, t = 400, np.arange(400)
    levels = {"revenue": (1e10, 3e7, 1e7), "sensor": (1e-6, 3e-7, 1e-7)}
    frame = pl.concat(
        pl.DataFrame(
            {"id": s, "time": t, "y": a + b * np.sin(2 * np.pi * t / 12) + c * rng.normal(size=n)}
        )
        for s, (a, b, c) in levels.items()
    )
    params = {**SMALL, "horizon": 6}
    model = RNNForecaster(target="y", id_col="id", **params).fit(frame.filter(pl.col("time") < 200))
    model.calibrate(frame.filter(pl.col("time") < 300), folds=80, step=1)
    stats = _coverage_80(model, frame, list(range(300, n - 6)))
    for name in levels:
        assert 0.6 < stats[name]["cover"] < 0.92, stats


def test_cqr_level_bounds_are_their_quantile_columns_and_levels_nest():
    """Calibrated on data calmer than the training data, CQR narrows each band by its own
    correction, and the quantile columns were sorted afterwards but the level bounds were
    not: y_lo_90 (the 0.05 quantile) differed from y_q5 and lay above y_lo_80."""
    rng = np.random.default_rng(1)
    t = np.arange(400)
    y = 5 + np.sin(2 * np.pi * t / 12) + np.where(t < 200, rng.normal(0, 1.0, t.size), 0.0)
    frame = pl.DataFrame({"time": t, "y": y})
    quantiles = [0.05, 0.1, 0.5, 0.9, 0.95]
    small = dict(lookback=24, horizon=6, hidden_size=8, max_epochs=2, random_state=0)
    model = RNNForecaster(
        target="y", loss="quantile", quantiles=quantiles, baseline="none", **small
    ).fit(frame.head(200))
    model.calibrate(frame, folds=60, step=3)
    forecast = model.predict(frame, level=[80, 90], quantiles=quantiles)
    for level, (lo, hi) in {80: ("q10", "q90"), 90: ("q5", "q95")}.items():
        assert forecast[f"y_lo_{level}"].equals(forecast[f"y_{lo}"], check_names=False)
        assert forecast[f"y_hi_{level}"].equals(forecast[f"y_{hi}"], check_names=False)
    assert (forecast["y_lo_90"] <= forecast["y_lo_80"]).all()
    assert (forecast["y_hi_90"] >= forecast["y_hi_80"]).all()


def test_cqr_adjusts_quantile_columns_and_recalibration_starts_afresh(quantile_model, frame):
    """A calibrated quantile model's q10 / q90 are CQR-adjusted like its 80 % interval (the
    median stays); calibrating again uses the model's own quantiles, not the adjusted ones;
    a calibration that fails keeps the former one."""
    quantile_model.calibrate(frame, folds=10, step=4)
    first = quantile_model.conformal_
    out = quantile_model.predict(frame, level=80, quantiles=[0.1, 0.5, 0.9])
    assert np.array_equal(out["y_q10"].to_numpy(), out["y_lo_80"].to_numpy())
    assert np.array_equal(out["z_q90"].to_numpy(), out["z_hi_80"].to_numpy())
    assert np.array_equal(out["y_q50"].to_numpy(), out["y"].to_numpy())
    quantile_model.calibrate(frame, folds=10, step=4)
    assert np.array_equal(quantile_model.conformal_["residuals"], first["residuals"])
    with pytest.raises(DataValidationError):
        quantile_model.calibrate(frame, folds=10_000)
    assert quantile_model.conformal_ is not first and np.array_equal(
        quantile_model.conformal_["residuals"], first["residuals"]
    )
    del quantile_model.conformal_


def test_a_predict_or_save_during_a_recalibration_uses_the_former_calibration(
    quantile_model, frame, monkeypatch, tmp_path
):
    """calibrate took the calibration off the model while its backtest ran (to forecast the
    model's own quantiles): a predict(level=...) in another thread meanwhile (a model that
    serves while it is recalibrated) got the uncalibrated quantiles, and a save wrote the
    model without its calibration, silently. The model keeps its calibration until the new
    one replaces it whole."""
    quantile_model.calibrate(frame, folds=10, step=4)
    calibrated = quantile_model.predict(frame, level=80)
    during: dict = {}
    real = calibration.backtest_forecasts

    def backtest_forecasts(*args, **kwargs):
        def serve():
            during["out"] = quantile_model.predict(frame, level=80)
            during["saved"] = forecaster.load(quantile_model.save(tmp_path / "serving"))

        thread = threading.Thread(target=serve)
        thread.start()
        thread.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration, "backtest_forecasts", backtest_forecasts)
    quantile_model.calibrate(frame, folds=10, step=4)
    assert during["out"].equals(calibrated)
    assert during["saved"].predict(frame, level=80).equals(calibrated)
    del quantile_model.conformal_


def test_a_save_while_a_recalibration_ends_writes_one_calibration(
    point_model, frame, monkeypatch, tmp_path
):
    """save read the calibration twice, for config.json's entry (its shape, normalize, ...)
    and for its arrays: a recalibration in another thread that ended between the two reads
    wrote the former one's entry with the new one's residuals (a folder load refused, or
    residuals read with the former normalisation). It writes one calibration, whole."""
    point_model.calibrate(frame, folds=10, step=4)
    calibrated = point_model.predict(frame, level=80)
    real, ended = RNNForecaster.fitted_params, []

    def fitted_params(self):  # read by save between the config and the arrays
        if not ended:
            ended.append(True)
            thread = threading.Thread(
                target=lambda: point_model.calibrate(frame, folds=5, step=4, normalize="window")
            )
            thread.start()
            thread.join()
        return real(self)

    monkeypatch.setattr(RNNForecaster, "fitted_params", fitted_params)
    saved = forecaster.load(point_model.save(tmp_path / "serving"))
    assert ended and point_model.conformal_["normalize"] == "window"  # recalibrated meanwhile
    assert saved.predict(frame, level=80).equals(calibrated)
    del point_model.conformal_


def test_calibrate_refit_fits_its_clones_as_the_model_was_fitted(frame):
    """calibrate(refit=True) fitted its clones with the parameters set since the model's fit
    (set_params(hidden_size=16, max_epochs=1) for its next fit): residuals of other models
    than the one whose intervals they set. The clones take the parameters it was fitted
    with, as save writes them."""
    train = frame.filter(pl.col("time") < 120)
    model = RNNForecaster(target="y", id_col="id", **SMALL).fit(train)
    model.calibrate(train, folds=2, step=4, refit=True)
    before = model.conformal_["residuals"]
    model.set_params(hidden_size=16, max_epochs=1)
    model.calibrate(train, folds=2, step=4, refit=True)
    assert np.array_equal(model.conformal_["residuals"], before, equal_nan=True)


def test_a_per_series_calibration_that_gives_no_series_its_own_intervals_warns(point_model, frame):
    """calibrate(per_series=True, folds=5): a fold gives a series one residual per step, so
    no series reached the 20 that intervals from its own residuals need, and every series
    used the pooled ones, as with per_series=False, without a word. A warning says so (as
    rolling=10 is refused for the same reason); 20 folds give none."""
    with pytest.warns(ForecasterWarning, match=r"per_series=True.*the most: 5;.*folds=20"):
        point_model.calibrate(frame, folds=5, step=1, per_series=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        point_model.calibrate(frame, folds=20, step=1, per_series=True)
        point_model.calibrate(frame, folds=5, step=1)
    del point_model.conformal_


def test_a_per_series_calibration_names_the_series_that_use_the_pooled_residuals(
    point_model, frame
):
    """calibrate(per_series=True, folds=25) with calendar folds, one series ending early:
    'b' got 15 residuals at some step (the folds after its end leave it out), 'a' 25; 'b'
    used the pooled residuals without a word (only a calibration giving no series enough
    warned). The warning names it, with its count, as the all-pooled one says why."""
    short = frame.filter((pl.col("id") == "a") | (pl.col("time") < 150))
    options = dict(folds=25, step=1, per_series=True, origins="calendar")
    with pytest.warns(ForecasterWarning) as caught:
        point_model.calibrate(short, **options)
    said = [str(w.message) for w in caught if "per_series=True" in str(w.message)]
    assert len(said) == 1, said
    assert re.search(r"1 of the 2 fitted series has fewer than the 20 residuals", said[0])
    assert "('b': " in said[0] and "'a'" not in said[0] and "the other 1 uses its own" in said[0]
    assert "1 has too few (the series are too short" in said[0] and "per_series=False" in said[0]
    pooled = "predict gives it intervals from the pooled residuals of the calibration frame"
    assert f"{pooled}, scaled by its own spread" in said[0]  # normalize="series", the default
    with warnings.catch_warnings():  # both series with enough: nothing to say
        warnings.simplefilter("error", ForecasterWarning)
        point_model.calibrate(frame, folds=25, step=1, per_series=True)
    del point_model.conformal_


@pytest.mark.parametrize(("origins", "end", "why"), [
    ("calendar", 125, "they end at or before its calendar folds' cutoffs, 131 to 155"),
    ("series", 40, "they are too short for its folds"),
])  # fmt: skip
def test_a_series_without_residuals_is_named_once_by_a_scaled_per_series_calibration(
    point_model, frame, origins, end, why
):
    """calibrate(per_series=True, normalize="series") of a series too short for any fold
    warned three times about it: the backtest's warning (no calendar fold forecasts it, or
    it is shorter than the folds need), NoResidualsWarning (no scale: predict refuses it),
    then the per-series warning ("1 has no calibration rows ... gets no intervals"). It is
    named once: by NoResidualsWarning, which says why."""
    short = frame.filter((pl.col("id") == "a") | (pl.col("time") < end))
    options = {"folds": 25, "step": 1, "origins": origins, "normalize": "series"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        point_model.calibrate(short, per_series=True, **options)
    told = [w for w in caught if "'b'" in str(w.message)]
    assert len(told) == 1, [str(w.message) for w in told]
    assert issubclass(told[0].category, NoResidualsWarning)
    assert f"has no residuals: ['b']. The backtest forecast none of their folds ({why}" in str(
        told[0].message
    )
    with pytest.raises(DataValidationError, match=r"\('b'\) has no calibration residuals"):
        point_model.predict(frame, level=80)
    del point_model.conformal_


@pytest.mark.parametrize("normalize", ["series", None])
def test_a_per_series_calibration_names_fitted_series_absent_from_its_frame(
    point_model, frame, normalize
):
    """calibrate(per_series=True, folds=25) on 'a' alone: of 'b', fitted but absent from the
    calibration frame, the warning said nothing (it counted only series with calibration
    rows). It names it and says what predict gives it, truly: the pooled ones (those of
    per_series=False); under normalize="series" calibrate's NoResidualsWarning names it
    alone, once (no scale: predict refuses it), not the per-series warning too."""
    alone = frame.filter(pl.col("id") == "a")
    options = {"folds": 25, "step": 1, "normalize": normalize}
    with pytest.warns(ForecasterWarning) as caught:
        point_model.calibrate(alone, per_series=True, **options)
    said = [str(w.message) for w in caught if "per_series=True" in str(w.message)]
    is_b = pl.col("id") == "b"
    if normalize == "series":  # named once, by calibrate's own warning of its scale
        assert not said, said
        (told,) = [str(w.message) for w in caught if "'b'" in str(w.message)]
        assert "1 series seen in fit is not in the calibration frame: ['b']" in told
        assert "predict(level=...) refuses their forecasts" in told
        with pytest.raises(DataValidationError, match=r"\('b'\) has no calibration residuals"):
            point_model.predict(frame, level=80)
        point_model.predict(alone, level=80)
    else:
        assert len(said) == 1, said
        assert "1 of the 2 fitted series has fewer than the 20 residuals" in said[0]
        assert "('b': 0): 1 has no calibration rows (not in the calibration frame" in said[0]
        assert "the other 1 uses its own" in said[0] and "'a'" not in said[0]
        assert "so it gets intervals from the pooled residuals of the calibration" in said[0]
        own = point_model.predict(frame, level=80)
        point_model.calibrate(alone, **options)  # pooled
        pooled = point_model.predict(frame, level=80)
        assert own.filter(is_b).equals(pooled.filter(is_b))  # ('a' alone: its own = pooled)
    del point_model.conformal_


@pytest.mark.parametrize("normalize", ["window", None])
def test_a_per_series_calibration_on_series_unseen_in_fit_warns(point_model, normalize):
    """calibrate(per_series=True) on a frame of series the model was not fitted on (kept under
    normalize="window" or None) failed in its own check of the residuals per series, with
    numpy's "cannot reshape array of size 0 into shape (0,newaxis)" (no row of a series seen
    in fit). It calibrates, and the warning says why no series has intervals of its own."""
    unseen = _panel(series=("c", "d"), seed=1)
    with pytest.warns(ForecasterWarning, match=r"the most: 0; no series of the calibration frame"):
        point_model.calibrate(unseen, folds=5, step=1, per_series=True, normalize=normalize)
    assert point_model.conformal_["per_series"] and (point_model.conformal_["series"] < 0).all()
    assert point_model.predict(unseen, level=80).columns[-2:] == ["y_lo_80", "y_hi_80"]
    del point_model.conformal_


@pytest.mark.parametrize(
    "bad", [{"normalize": 1}, {"normalize": True}, {"rolling": 0}, {"rolling": 2.5}]
)
def test_calibrate_refuses_bad_new_arguments(point_model, frame, bad):
    with pytest.raises(DataValidationError, match=next(iter(bad))):
        point_model.calibrate(frame, folds=5, **bad)
    assert "conformal_" not in point_model.__dict__


def _point_conformal(n, seeds, rng):
    """Exchangeable calibration residuals of ``seeds`` independent one-step targets (a
    fixed forecast of 0 on standard normal data), shaped as ``conformal_``."""
    return {
        "residuals": rng.normal(size=(n, 1, seeds, 1)),
        "series": np.zeros(n, np.int64),
        "per_series": False,
    }


def test_point_model_quantiles_are_conformal_and_refuse_too_few_residuals():
    """A point model's quantile q is the split-conformal bound of the signed residuals (the
    ceil((n + 1) q)-th smallest; the floor((n + 1) q)-th below the median): a new point
    falls at or below q97.5 with probability ceil((n + 1) 0.975) / (n + 1), in [0.975,
    0.975 + 1 / (n + 1)] (np.quantile covered about 0.951 at n = 39). Too few residuals
    for q are refused as for the interval it is an end of (19 for 0.025 and 0.975, as for
    95 %: quantiles=[0.025, 0.975] with 5 residuals covered 0.56 of new points); from 19 to
    38 the 0.975 quantile is the largest residual."""
    rng = np.random.default_rng(11)

    def quantiles(n, seeds, qs, rng=rng):
        conformal = _point_conformal(n, seeds, rng)
        cols = interval_columns(
            [f"s{k}" for k in range(seeds)],
            np.zeros((1, 1, seeds)),
            None,
            None,
            conformal,
            np.zeros(1, np.int64),
            levels=None,
            quantiles=qs,
        )
        names = [quantile_name(f"s{k}", q) for q in qs for k in range(seeds)]
        values = np.array([cols[name][0] for name in names]).reshape(len(qs), seeds)
        return values, conformal["residuals"].reshape(n, seeds)

    n, seeds = 39, 40_000
    (lo, _, hi), _ = quantiles(n, seeds, [0.025, 0.5, 0.975])
    y_new = rng.normal(size=seeds)
    se = np.sqrt(0.975 * 0.025 / seeds)
    for covered in (y_new <= hi, y_new >= lo):
        assert 0.975 - 4.5 * se <= covered.mean() <= 0.975 + 1 / (n + 1) + 4.5 * se
    (lo, hi), residuals = quantiles(19, 50, [0.025, 0.975])
    assert np.allclose(hi, residuals.max(axis=0), atol=1e-6)
    assert np.allclose(lo, residuals.min(axis=0), atol=1e-6)
    for few, qs, need in ((18, [0.025, 0.975], 19), (3, [0.1, 0.5, 0.9], 4), (0, [0.5], 1)):
        with pytest.raises(DataValidationError, match=rf"{few} calibration .*at least {need}\b"):
            quantiles(few, 1, qs)


def test_per_series_levels_of_one_call_nest():
    """per_series=True, normalize=None: a series with 30 residuals per step (enough of its
    own for 80 %, too few for 99 %, which needs 99) gets the pooled residuals for every
    level of a call asking for both, so its 99 % interval holds its 80 % one (it used its own
    wide residuals at 80 % and the pooled narrow ones at 99 %, a narrower 99 % band). A
    call for 80 % alone still uses its own."""
    rng = np.random.default_rng(5)
    own, pooled = 30, 10_000
    residuals = np.concatenate([10 * rng.normal(size=own), rng.normal(size=pooled)])
    conformal = {
        "residuals": residuals[:, None, None, None],
        "series": np.repeat([0, 1], [own, pooled]),
        "per_series": True,
        "normalize": None,
    }

    def width(levels, level):
        cols = interval_columns(
            ["y"],
            np.zeros((1, 1, 1)),
            None,
            None,
            conformal,
            np.zeros(1, np.int64),  # a forecast of series 0
            levels=levels,
            quantiles=None,
        )
        return float(cols[f"y_hi_{level}"][0] - cols[f"y_lo_{level}"][0])

    assert width([80, 99], 99) >= width([80, 99], 80)
    assert width([80], 80) > 5 * width([80, 99], 80)  # alone: its own residuals (scale 10)


def test_calibrate_refit_uses_each_folds_own_model_quantiles(frame):
    """calibrate(refit=k) of a quantile model takes each fold's quantiles from the model that
    forecast it in the backtest (folds=7, refit=5: models of folds 0-4 and 5-6; the
    calibration's own grouping, ceil(7 / 2) = 4 folds a model, forecast fold 4 with the
    model fitted on it)."""
    qs = [0.1, 0.5, 0.9]
    model = RNNForecaster(target="y", id_col="id", loss="quantile", quantiles=qs, **SMALL)
    model.fit(frame.filter(pl.col("time") < 120))
    result = backtest(model, frame, folds=7, refit=5, quantiles=qs)
    assert result.folds["model"].unique(maintain_order=True).to_list() == [0, 1]
    model.calibrate(frame, folds=7, refit=5)
    order = _by_end(result)
    actual = result.forecasts["y_actual"].to_numpy().reshape(-1, 4, 1)[order]
    own = result.forecasts.select("y_q10", "y_q50", "y_q90").to_numpy().reshape(-1, 4, 1, 3)
    assert np.allclose(model.conformal_["residuals"], actual[..., None] - own[order], atol=1e-5)


def _by_end(result):
    """The order of ``conformal_``'s rows (by the end of their window) in a backtest's."""
    ends = result.forecasts["time"].to_numpy().reshape(-1, 4)[:, -1]
    return np.argsort(ends, kind="stable")


def test_calibrate_quantile_model_targets_sharing_a_prefix(frame):
    """Targets "y" and "y_qty" (whose quantile columns y_qty_q10 ... start with "y_q"):
    each target's residuals come from its own quantile columns (calibrate crashed)."""
    panel = frame.with_columns(y_qty=pl.col("z") * 100)
    model = RNNForecaster(
        target=["y", "y_qty"], id_col="id", loss="quantile", quantiles=[0.1, 0.5, 0.9], **SMALL
    ).fit(panel.filter(pl.col("time") < 120))
    result = backtest(model, panel, folds=5, step=4, quantiles=[0.1, 0.5, 0.9])  # its own
    model.calibrate(panel, folds=5, step=4)
    assert model.conformal_["residuals"].shape == (10, 4, 2, 3)
    order = _by_end(result)
    for j, t in enumerate(("y", "y_qty")):
        actual = result.forecasts[f"{t}_actual"].to_numpy().reshape(-1, 4)[order]
        q90 = result.forecasts[f"{t}_q90"].to_numpy().reshape(-1, 4)[order]
        assert np.allclose(model.conformal_["residuals"][..., j, 2], actual - q90, atol=1e-3)


def test_levels_or_quantiles_that_share_a_column_name_are_refused(point_model, frame):
    """80 and 80.00004 (or 0.1 and 0.1000001) both print as y_lo_80 (y_q10): the second
    silently replaced the first; now refused naming both. (Closer than float32 rounding,
    80.0000001 is 80: the same level given twice.)"""
    for kw, both in (
        ({"level": [80, 80.00004]}, r"80\.0 and 80\.00004"),
        ({"quantiles": [0.1, 0.1000001]}, r"0\.1 and 0\.1000001"),
    ):
        with pytest.raises(DataValidationError, match=rf"{both} would share the column name"):
            point_model.predict(frame, **kw)


@pytest.mark.parametrize(
    ("kw", "label"),
    [
        ({"level": [99.99999]}, "100"),
        ({"quantiles": [5e-07, 0.5]}, "5e-05"),
        ({"quantiles": [0.9999999]}, "100"),
    ],
)
def test_levels_and_quantiles_whose_names_evaluate_cannot_read_are_refused(
    point_model, frame, kw, label
):
    """level=99.99999 was written y_lo_100, which evaluate refuses (and quantile 5e-07
    y_q5e-05, which it did not read as a quantile): now refused up front."""
    with pytest.raises(DataValidationError, match=rf"would end its column names in '{label}'"):
        point_model.predict(frame, **kw)


def test_every_accepted_level_and_quantile_is_named_as_evaluate_reads_it():
    """The extremes that are accepted round-trip through their column names."""
    levels = check("level", [1.0001, 12.5, 99.9999])
    quantiles = check("quantiles", [0.000001, 0.025, 0.999999])
    columns = [level_name("y", v, side) for v in levels for side in ("lo", "hi")]
    columns += [quantile_name("y", q) for q in quantiles]
    found = IntervalColumns.find(["y", *columns], ["y"])
    assert found.levels == levels
    assert found.quantiles == pytest.approx(quantiles)


@pytest.mark.parametrize("level", [0.8, [0.8, 0.95], 1, [0.5, 80]])
def test_a_level_given_as_a_fraction_is_refused(point_model, frame, level):
    """level=0.8 gave a 0.8 % interval (nearly zero width) without a word, where the user
    almost surely meant 80 %: levels are now percentages in (1, 100), and the message says so."""
    with pytest.raises(DataValidationError, match=r"in \(1, 100\).*80 for an 80 % interval"):
        point_model.predict(frame, level=level)
    with pytest.raises(DataValidationError, match=r"80 for an 80 % interval"):
        seasonal_naive(frame, 2, m=2, target="y", id_col="id", time_col="time", level=level)


def test_evaluate_refuses_columns_that_name_a_fraction_as_level():
    """Columns y_lo_0.9 / y_hi_0.9 were scored as a 0.9 % interval (MSIS with a = 0.991)."""
    columns = ["y", level_name("y", 0.9, "lo"), level_name("y", 0.9, "hi")]
    with pytest.raises(DataValidationError, match=r"name a level outside \(1, 100\)"):
        IntervalColumns.find(columns, ["y"])


def test_bounds_of_a_log_target_stay_in_its_domain():
    """A conformal band is computed on the targets' own scale: for a log target (values > 0,
    forecasts > 0) it reached below zero, an impossible value. Bounds and quantiles are now
    floored inside the transform's domain (at the least float32 above 0, the floor of a
    blend: was 0.0 itself, outside it), which never lowers coverage."""
    rng = np.random.default_rng(0)
    t = np.arange(400)
    y = np.exp(0.1 * rng.normal(0, 1.0, 400).cumsum() + np.sin(t / 4)) + 0.01
    frame = pl.DataFrame({"t": t, "y": y})
    model = RNNForecaster(target="y", time_col="t", target_transform="log", **SMALL)
    model.fit(frame.head(300))
    model.calibrate(frame, folds=30, step=2)
    out = model.predict(frame, level=[95], quantiles=[0.025, 0.5])
    floor = np.float32(domain_floor("log"))
    assert (out["y_lo_95"] >= floor).all() and (out["y_q2.5"] >= floor).all() and floor > 0
    assert (out["y_lo_95"] == floor).any()  # the band reached below 0 here: floored
    assert (out["y_hi_95"] > out["y"]).all()
    assert out.select("t", "y").equals(model.predict(frame))


def test_series_unseen_in_fit_are_left_out_of_a_series_normalised_calibration(point_model):
    """Their residuals all had the series row -1, so they were normalised as one series with
    one shared scale and pooled into every fitted series' quantile (coverage 0.36 at 50 %
    in the reviewer's run), without a word; predict refuses them under this normalisation."""
    known = _panel()
    both = pl.concat([known, _panel(series=("c", "d"), seed=3).with_columns(pl.col("y") * 100)])
    alone = copy.deepcopy(point_model).calibrate(known, folds=8, step=2)
    with pytest.warns(ForecasterWarning, match=r"2 series of the calibration frame were not seen"):
        pooled = copy.deepcopy(point_model).calibrate(both, folds=8, step=2)
    assert (pooled.conformal_["series"] >= 0).all()
    assert pooled.predict(known, level=[80]).equals(alone.predict(known, level=[80]))
    unseen = r"1 series \(4 forecast rows\) \('c'\) has no calibration residuals: 1 of those"
    with pytest.raises(DataValidationError, match=unseen):
        pooled.predict(both.filter(pl.col("id") == "c"), level=[80])
    window = copy.deepcopy(point_model).calibrate(both, folds=8, step=2, normalize="window")
    assert (window.conformal_["series"] == -1).any()  # the window's spread scales them


def test_a_narrowing_cqr_correction_stops_at_the_median():
    """A quantile model's asymmetric band (q25 = m - 1, q75 = m + 3) that calibration finds
    far too wide was narrowed past the median: y_lo_50 rose above the point forecast, and with
    quantiles=[0.5] the sort moved y_q50 off it. It stops at the median's floor: 1e-6 of the
    level below it (1 at a level of 0), as a point model's interval is floored."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (200, 1, 1))
    conformal = {
        "residuals": np.stack([noise + 1.0, noise, noise - 3.0], -1),
        "series": np.zeros(200, np.int64),
        "per_series": False,
        "normalize": None,
    }
    for m, floor in ((0.0, 1.0), (100.0, 1e-4)):
        point = np.full((1, 1, 1), m)
        model_quantiles = np.array([m - 1.0, m, m + 3.0]).reshape(1, 1, 1, 3)
        for asked in ({"levels": [50], "quantiles": None}, {"levels": [50], "quantiles": [0.5]}):
            cols = interval_columns(
                ["y"],
                point,
                model_quantiles,
                [0.25, 0.5, 0.75],
                conformal,
                np.zeros(1, np.int64),
                **asked,
            )
            assert cols["y_lo_50"][0] == pytest.approx(m - floor, rel=1e-12)
            assert m < cols["y_hi_50"][0] < m + 3.0
            assert cols.get("y_q50", np.full(1, m))[0] == m


def _noise(n, seed):
    """Two series ("a", "b", time "t") of ``n`` steps of i.i.d. noise N(5, 1)."""
    y = np.random.default_rng(seed).normal(5, 1, 2 * n)
    return pl.DataFrame({"id": np.repeat(["a", "b"], n), "t": np.tile(np.arange(n), 2), "y": y})


def _holed(n=301, start=100, seed=1):
    """Two series of i.i.d. noise whose odd steps from ``start`` on are missing (nulls)."""
    frame = _noise(n, seed)
    hole = (pl.col("t") >= start) & (pl.col("t") % 2 == 1)
    return frame.with_columns(pl.when(hole).then(None).otherwise(pl.col("y")).alias("y"))


TINY = dict(
    lookback=8, horizon=3, hidden_size=4, max_epochs=1, random_state=0, progress=False,
    baseline="none",
)  # fmt: skip


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_residuals_at_values_the_missing_policy_made_up_are_left_out(missing, tmp_path):
    """calibrate kept the residuals at steps that missing="ffill" / "interpolate" made up
    (a fill near the forecast: exact zeros for ffill, smooth values for interpolate), which
    narrowed every interval (coverage 0.68-0.70 at 80 % on such data, where backtests leave
    those points out of their scores). They are NaN now, left out of every order statistic,
    and the interval is the conformal quantile of the observed residuals alone."""
    holed = _holed()
    model = RNNForecaster(target="y", id_col="id", time_col="t", missing=missing, **TINY)
    model.fit(holed.filter(pl.col("t") < 100))
    with pytest.warns(ForecasterWarning, match=r"150 of the 300 residuals .* left out"):
        model.calibrate(holed, folds=50, step=3, normalize=None)
    residuals = model.conformal_["residuals"][..., 0, 0]  # (folds x series, step)
    assert np.isnan(residuals).sum() == 150 and (residuals != 0).all()
    with pytest.warns(ForecasterWarning, match="not scored"):  # the same points
        forecasts = backtest(model, holed, folds=50, step=3).forecasts
    observed = forecasts.join(holed.rename({"y": "seen"}), on=["id", "t"]).drop_nulls("seen")
    out = model.predict(holed, level=80)
    for step in (1, 2, 3):
        errors = observed.filter(pl.col("step") == step)
        scores = np.sort((errors["seen"] - errors["y"]).abs().to_numpy())
        expected = scores[conformal_rank(len(scores), 80) - 1]
        half = (out["y_hi_80"] - out["y_lo_80"]).to_numpy()[step - 1 :: 3] / 2
        assert np.allclose(half, expected, rtol=1e-5), (step, half, expected)
    loaded = forecaster.load(model.save(tmp_path / "holed"))  # NaN residuals are saved
    assert loaded.predict(holed, level=80).equals(out)


def test_missing_zero_keeps_its_zeros_as_residuals():
    """missing="zero" says an absent value is 0 (the data): those residuals are kept."""
    holed = _holed()
    model = RNNForecaster(target="y", id_col="id", time_col="t", missing="zero", **TINY)
    model.fit(holed.filter(pl.col("t") < 100))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.calibrate(holed, folds=50, step=3, normalize=None)
    assert not [w for w in caught if "left out of the calibration" in str(w.message)]
    assert np.isfinite(model.conformal_["residuals"]).all()


def test_counts_of_residuals_are_of_the_observed_ones():
    """A NaN residual (left out) is no residual: check_enough refuses a step with too few
    observed ones, and a series with 25 residuals of which 10 are NaN has 15 < 20 of its
    own, so per_series uses the pooled ones (it used its own, counting the NaN)."""
    rng = np.random.default_rng(3)
    few = rng.normal(size=10)
    few[:7] = np.nan
    conformal = {
        "residuals": few[:, None, None, None],
        "series": np.zeros(10, np.int64),
        "per_series": False,
        "normalize": None,
    }
    args = (["y"], np.zeros((1, 1, 1)), None, None, conformal, np.zeros(1, np.int64))
    with pytest.raises(DataValidationError, match=r"3 calibration residuals .*at least 4"):
        interval_columns(*args, levels=[80], quantiles=None)
    own = 10 * rng.normal(size=25)
    own[::5] = np.nan
    own[1::5] = np.nan  # 15 observed
    pooled = rng.normal(size=1000)
    residuals = np.concatenate([own, pooled])
    for window in (None, 1000):
        conformal = {
            "residuals": residuals[:, None, None, None],
            "series": np.repeat([0, 1], [25, 1000]),
            "per_series": True,
            "normalize": None,
            "window": window,
            "ends": np.zeros(1025, np.int64),  # every window observed by the origin
        }
        args = (["y"], np.zeros((1, 1, 1)), None, None, conformal, np.zeros(1, np.int64))
        cols = interval_columns(*args, levels=[80], quantiles=None, origins=np.ones(1, np.int64))
        finite = np.sort(np.abs(residuals[~np.isnan(residuals)]))
        expected = finite[conformal_rank(len(finite), 80) - 1]
        assert cols["y_hi_80"][0] == pytest.approx(expected, rel=1e-6)  # the pooled ones


def _quantile_conformal(rng, n, fitted, sd=3.0):
    """Residuals ``y - q`` of a model whose quantiles ``fitted`` are ``q`` (one step, one
    target), for ``n`` actual values of standard deviation ``sd``."""
    y = rng.normal(0, sd, n)
    values = np.array(fitted, dtype=np.float64) - 0.5  # quantiles around a median of 0
    return {
        "residuals": (y[:, None] - values[None, :])[:, None, None, :],
        "series": np.zeros(n, np.int64),
        "per_series": False,
        "normalize": None,
    }, values.reshape(1, 1, 1, -1)


def test_a_quantile_without_its_partner_is_calibrated_apart_from_the_others():
    """Fitted with 0.05 but not 0.95: y_lo_80 (the CQR-widened q10) was sorted together with
    the raw q5, so it changed with quantiles=[0.05] (it took the raw q5's value). Every
    fitted quantile is now calibrated (q5 by the conformal quantile 0.05 of its own residuals
    y - q5) and all are sorted together, whatever the call asks for."""
    rng = np.random.default_rng(7)
    fitted = [0.05, 0.1, 0.5, 0.9]
    conformal, values = _quantile_conformal(rng, 200, fitted)
    args = (["y"], np.zeros((1, 1, 1)), values, fitted, conformal, np.zeros(1, np.int64))
    alone = interval_columns(*args, levels=[80], quantiles=None)
    both = interval_columns(*args, levels=[80], quantiles=[0.05])
    assert both["y_lo_80"][0] == alone["y_lo_80"][0] < values[..., 1].item()  # widened
    own = np.sort(conformal["residuals"][:, 0, 0, 0])  # y - q5
    expected = values[..., 0].item() + own[int(np.floor(201 * 0.05)) - 1]
    assert both["y_q5"][0] == pytest.approx(expected, rel=1e-6)
    assert both["y_q5"][0] <= both["y_lo_80"][0]
    # a fitted band too wide for the calibration (98 % needs 49 residuals, here 20) is
    # unbounded when not asked for, and leaves the columns asked for as they are
    conformal, values = _quantile_conformal(rng, 20, [0.01, 0.1, 0.5, 0.9, 0.99])
    args = (["y"], np.zeros((1, 1, 1)), values, [0.01, 0.1, 0.5, 0.9, 0.99], conformal)
    wide = interval_columns(*args, np.zeros(1, np.int64), levels=[80], quantiles=None)
    inner = {**conformal, "residuals": conformal["residuals"][..., 1:4]}
    narrow = interval_columns(
        ["y"], np.zeros((1, 1, 1)), values[..., 1:4], [0.1, 0.5, 0.9], inner,
        np.zeros(1, np.int64), levels=[80], quantiles=None,
    )  # fmt: skip
    assert wide.keys() == narrow.keys()
    assert all(np.allclose(wide[name], narrow[name]) for name in wide)
    with pytest.raises(DataValidationError, match=r"level=98: 20 calibration .*at least 49"):
        interval_columns(*args, np.zeros(1, np.int64), levels=[98], quantiles=None)


def test_a_level_of_a_quantile_model_does_not_depend_on_the_quantiles_asked():
    """The hunt's case: a model fitted with quantiles [0.05, 0.1, 0.5, 0.9] gave another
    y_lo_80 with quantiles=[0.05]."""
    frame = _noise(400, 0)
    model = RNNForecaster(
        target="y", id_col="id", time_col="t", loss="quantile", quantiles=[0.05, 0.1, 0.5, 0.9],
        target_transform="none", **TINY,
    ).fit(frame.filter(pl.col("t") < 150))  # fmt: skip
    model.calibrate(frame, folds=80, step=3)
    alone = model.predict(frame, level=80)
    both = model.predict(frame, level=80, quantiles=[0.05])
    assert both.select(alone.columns).equals(alone)
    assert (both["y_q5"] <= both["y_lo_80"]).all()


def test_per_series_with_a_rolling_window_too_short_for_its_own_residuals_is_refused(
    point_model, frame
):
    """per_series=True, rolling=10: a series' window never holds the 20 residuals a series
    needs for its own intervals, so every series silently got the pooled ones."""
    model = copy.deepcopy(point_model)
    with pytest.raises(DataValidationError, match=r"per_series=True, rolling=10.*rolling=20"):
        model.calibrate(frame, folds=30, step=1, per_series=True, rolling=10)
    assert "conformal_" not in model.__dict__
    model.calibrate(
        frame, folds=30, step=1, per_series=True, rolling=20, origins="calendar"
    )  # 20: accepted


@pytest.mark.filterwarnings("ignore::forecaster.exceptions.BaselineWarning")  # tiny clones
def test_window_normalised_calibration_of_clones_with_an_automatic_lookback():
    """refit=True, lookback="auto": the clones chose shorter lookbacks than the model's (88),
    so early origins had fewer rows than its window, and normalize="window" failed ("an origin
    of the backtest has no input window"). An origin's spread is now over the model's window,
    or over the rows up to it where there are fewer."""
    frame = _noise(200, 0)
    params = {**TINY, "lookback": "auto"}
    model = RNNForecaster(target="y", id_col="id", time_col="t", target_transform="none", **params)
    model.fit(frame)
    assert model.lookback_ > 60
    plain = copy.deepcopy(model).calibrate(frame, folds=30, step=5, refit=True, normalize=None)
    model.calibrate(frame, folds=30, step=5, refit=True, normalize="window")
    ratio = plain.conformal_["residuals"] / model.conformal_["residuals"]  # the spreads
    ends = model.conformal_["ends"] - 3  # each origin (the window ends 3 steps later)
    series = model.conformal_["series"]
    for k in range(len(ends)):
        y = frame.filter((pl.col("id") == "ab"[series[k]]) & (pl.col("t") <= ends[k]))["y"]
        window = y.to_numpy()[-model.lookback_ :]  # fewer rows for early origins
        assert ratio[k] == pytest.approx(np.abs(np.diff(window)).mean(), rel=1e-4)
    assert (ends < model.lookback_).any()  # some origins had fewer rows than the window
    out = model.predict(frame, level=80)
    assert np.isfinite(out["y_hi_80"].to_numpy()).all()
    assert (out["y_hi_80"] > out["y_lo_80"]).all()


def test_a_series_of_zeros_keeps_the_window_normalised_intervals_of_the_others():
    """calibrate(normalize="window"): an all-zero series' windows had the spread 1.2e-38
    (float32's smallest normal number: no change, level or history floors it), its residuals
    of 0.5 became scores of 4e37, and the pooled quantile made every series' 80 % interval
    1e37 wide. Its spread is now 1, as the scaler's scale of a constant series: the other
    series keep intervals of their own errors, and the zeros get a width (their residuals
    are not 0)."""
    t = np.arange(120)
    noise = np.random.default_rng(0).normal(0, 0.1, t.size)
    frame = pl.concat(
        [
            pl.DataFrame({"id": "a", "t": t, "y": np.sin(t / 3) + noise}),
            pl.DataFrame({"id": "z", "t": t, "y": np.zeros(t.size)}),
        ]
    )
    model = RNNForecaster(
        target="y", time_col="t", id_col="id", lookback=8, horizon=2, hidden_size=4,
        max_epochs=1, random_state=0, baseline="none",
    ).fit(frame.filter(pl.col("t") < 80))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model.calibrate(frame, refit=False, normalize="window", folds=10, step=4)
    scores = model.conformal_["residuals"][model.conformal_["series"] == 1]
    assert np.nanmax(np.abs(scores)) < 10  # a residual over the spread 1 (was 4e37)
    out = model.predict(frame, level=80).with_columns(width=pl.col("y_hi_80") - pl.col("y_lo_80"))
    widths = dict(out.group_by("id").agg(pl.col("width").max()).iter_rows())
    assert 0 < widths["a"] < 5 and 0 < widths["z"] < 50  # was 1.8e37 for a


def _uneven_per_series_calibration(rng, window):
    """A per-series calibration ``(N, 3 steps, 2 targets)`` of uneven series: sizes from 0
    (series 2, and series 11 beyond the keys) to 130, some below the 20 of their own a
    series needs, NaN residuals here and there and one series with too few observed at a
    single step; series 6 ends after every origin (an empty rolling window)."""
    sizes = np.array([45, 3, 0, 60, 21, 130, 40, 44, 90, 39, 26])
    series = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    late = series == 6
    series = np.concatenate([series[~late], series[late]])  # series 6: the latest windows
    residuals = rng.normal(0, 1 + series[:, None, None, None] % 4, (len(series), 3, 2, 1))
    residuals[rng.random(residuals.shape) < 0.08] = np.nan
    residuals[np.flatnonzero(series == 10)[:8], 1, 0] = np.nan  # 18 observed at one step
    conformal = {
        "residuals": residuals,
        "series": series,
        "per_series": True,
        "normalize": None,
        "window": window,
        "ends": np.sort(rng.integers(0, 200, len(series))),
    }
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1, 5, 0, 8, 3, 9, 6, 10])
    origins = np.concatenate([np.full(12, 400), rng.integers(300, 400, 8)])
    if window is not None:
        origins[[13, 14, 15, 18]] = conformal["ends"][np.flatnonzero(~late)[-1]]
    return conformal, rows, origins


def _own_scores(conformal, row, origin, scores, minimum):
    """The scores forecast ``row`` of series ``rows[row]`` uses of its own series (None:
    too few, it uses the pooled ones), one series at a time (the reference)."""
    series, window = conformal["series"], conformal["window"]
    if row < 0:
        return None
    own = np.flatnonzero(series == row)
    if window is not None:
        own = own[conformal["ends"][own] <= origin][-window:]
    kept = scores[own]
    observed = kept.shape[0] - np.isnan(kept).sum(axis=0)
    return kept if len(own) and observed.min() >= minimum else None


@pytest.mark.parametrize("budget", [None, 1])
@pytest.mark.parametrize("window", [None, 45])
@pytest.mark.parametrize(
    ("levels", "qs", "minimum"), [([80], [0.025, 0.5, 0.975], 20), ([80, 97.5], [0.1], 39)]
)
def test_per_series_intervals_match_a_series_by_series_reduction(
    window, levels, qs, minimum, budget, monkeypatch
):
    """calibrate(per_series=True) reduces the residuals of all series at once (it looped
    over the series, comparing every calibration and forecast row each time: quadratic in
    the number of series); every interval and quantile is bit-identical to the conformal
    quantiles of each series' own residuals (rolling: its ``window`` latest by the origin),
    or the pooled ones where a series has too few observed of its own at some step; also
    one series per reduction (``budget=1``)."""
    if budget is not None:
        monkeypatch.setattr(conformal_groups, "PADDED_BUDGET", budget)
    rng = np.random.default_rng(11)
    conformal, rows, origins = _uneven_per_series_calibration(rng, window)
    point = rng.normal(size=(len(rows), 3, 2))
    args = (["y", "z"], point, None, None)
    call = dict(levels=levels, quantiles=qs, origins=origins)
    got = interval_columns(*args, conformal, rows, **call)
    pooled = interval_columns(*args, {**conformal, "per_series": False}, rows, **call)
    signed = conformal["residuals"][..., 0]
    used = 0
    for i, (row, origin) in enumerate(zip(rows, origins, strict=True)):
        own = _own_scores(conformal, row, origin, signed, minimum)
        expected = {name: values.reshape(len(rows), 3)[i] for name, values in pooled.items()}
        if own is not None:
            used += 1
            for level in levels:
                half = order_statistic(np.abs(own), level, what="reference")
                for j, target in enumerate(("y", "z")):
                    expected[level_name(target, level, "lo")] = point[i, :, j] - half[:, j]
                    expected[level_name(target, level, "hi")] = point[i, :, j] + half[:, j]
            shifts = [signed_quantile(own, q, what="reference") for q in qs]
            values = np.sort(point[i][..., None] + np.stack(shifts, -1), -1)
            for k, q in enumerate(qs):
                for j, target in enumerate(("y", "z")):
                    expected[quantile_name(target, q)] = values[:, j, k]
        for name, values in got.items():
            assert np.array_equal(values.reshape(len(rows), 3)[i], expected[name]), (i, name)
    assert 3 <= used < len(rows) - 3, used  # some series use their own residuals, others the pooled


@pytest.mark.parametrize("window", [None, 25])
def test_per_series_intervals_reduce_all_series_at_once(window, monkeypatch):
    """predict(level=...) after calibrate(per_series=True) took the conformal quantile once
    per series (and per origin, rolling): 2000 series, 2001 order statistics, growing
    3.5 times per doubling of the series. Now a few calls reduce every series."""
    rng = np.random.default_rng(2)
    n_series, per = 2000, 30
    series = np.tile(np.arange(n_series), per)  # the windows of one end, series after series
    conformal = {
        "residuals": rng.normal(size=(n_series * per, 2, 1, 1)),
        "series": series,
        "per_series": True,
        "normalize": None,
        "window": window,
        "ends": np.repeat(np.arange(per), n_series),
    }
    rows = np.repeat(np.arange(n_series), 2)
    origins = np.tile([per - 2, per], n_series)
    calls = []
    original = intervals.order_statistic

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(intervals, "order_statistic", counted)
    cols = interval_columns(
        ["y"], np.zeros((len(rows), 2, 1)), None, None, conformal, rows, levels=[80],
        quantiles=None, origins=origins,
    )  # fmt: skip
    assert len(calls) <= 6
    own = conformal["residuals"][series == 7, 1, 0, 0]
    if window is not None:
        own = own[-window:]
    expected = order_statistic(np.abs(own), 80, what="reference")
    assert cols["y_hi_80"].reshape(-1, 2)[15, 1] == expected  # series 7, origin 30


def test_calibrate_refit_warns_each_kind_of_its_folds_fits_once():
    """Each kind once, labelled as the calibration's fits: "In 6 of 6 calibration folds"
    (was "backtest folds", in a pipeline run beside its backtest's own summaries)."""
    frame = gappy_panel()
    model = RNNForecaster(**GAPPY_MODEL).fit(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.calibrate(frame, folds=6, refit=True)
    kinds = forecaster_warning_kinds(caught)
    assert set(kinds.values()) == {1}, kinds  # before: each refit's fill warning, and more
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    assert any(
        m.startswith("In 6 of 6 calibration folds (folds 0, 1, 2, 3, 4, ...):") for m in fills
    )
    assert not any("backtest" in str(w.message) for w in caught), fills


_REPEATED_CALIBRATIONS = repeated_calls_script(
    "model.calibrate(frame, folds=2)", fit_on='frame.filter(pl.col("t") < 100)'
)


@pytest.mark.slow
def test_repeated_calibrations_keep_the_record_of_warnings_already_shown():
    """A loop of ``calibrate`` calls shows the user's own warning, raised at one line before
    each, once under Python's default filter: calibrate hid its backtest's warnings with
    ``warnings.catch_warnings()``, whose exit reset Python's record of the warnings already
    shown, so it was shown 3 times."""
    stderr = stderr_under_default_warnings(_REPEATED_CALIBRATIONS)
    assert stderr.count("UserWarning: the user's own note") == 1, stderr


def test_calibrate_without_refit_names_one_origin_in_the_singular():
    """One fold's origin inside the training data was "1 of the backtest's origins lie ...;
    1 of them lie after their series' own train_end_" (the grid error's "1 of them lie" was
    fixed alone): the verbs agree with the count."""
    model = RNNForecaster(**STAGGERED_MODEL).fit(staggered_copies({"a": 160, "b": 100}))
    with pytest.raises(DataValidationError) as caught:
        model.calibrate(staggered_copies({"b": 140}), folds=1, normalize="window")
    told = str(caught.value)
    assert told.startswith("calibrate(refit=False): 1 of the backtest's origins lies inside"), told
    assert "; 1 of them lies after their series' own train_end_" in told, told


def test_calibrate_without_refit_refuses_origins_the_model_saw_through_other_series():
    """b, a copy of a, fitted up to day 100 while a was fitted up to day 160: calibrate
    (refit=False) accepted b's origins on days 131..137 (after b's own end) though the global
    model trained on a's identical rows there: optimistic residuals, too-narrow intervals."""
    model = RNNForecaster(**STAGGERED_MODEL).fit(staggered_copies({"a": 160, "b": 100}))
    through = r"3 of them lie after their series' own train_end_ .* before 2020-06-08, the model"
    for name in ("b", "c"):  # c: a series unseen in fit, whose period the model saw too
        with pytest.raises(DataValidationError, match=r"3 of the backtest's origins .*" + through):
            model.calibrate(staggered_copies({name: 140}), folds=3, normalize="window")
    # origins="series": each series' own end (the user's choice), with the cross-series warning
    with pytest.warns(CrossSeriesWarning, match=r"origins='series' .* 3 \(series, fold\) pairs"):
        model.calibrate(staggered_copies({"b": 140}), folds=3, origins="series")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        absent = r"calibrate\(normalize='series'\): 1 series seen in fit is not in the cal"
        warnings.filterwarnings("ignore", absent, NoResidualsWarning)  # a: its own warning
        model.calibrate(staggered_copies({"b": 175}), folds=3)  # after the model's training
        # integer steps: each series' own sequence, unchanged
        integer = {k: v for k, v in STAGGERED_MODEL.items() if k != "freq"}
        fitted = staggered_copies({"a": 160, "b": 100}, integer=True)
        model = RNNForecaster(**integer).fit(fitted)
        model.calibrate(staggered_copies({"b": 140}, integer=True), folds=3)


def test_rolling_calibration_of_independent_integer_step_series_is_refused(point_model, frame):
    """rolling=W on integer-step series (independent sequences) compared the positions of one
    series with another's: the same new clip numbered from 0, 100 or 700 got a refusal or
    other widths. calibrate refuses it (what, why, how to fix) unless origins='calendar' says
    the positions are shared times; one series keeps its rolling calibration."""
    model = copy.deepcopy(point_model)
    model.__dict__.pop("conformal_", None)
    refused = (
        r"calibrate\(rolling=20\): the time column 'time' holds integer steps, and its 2 "
        r"series are independent sequences.*Calibrate without rolling.*origins='calendar'"
    )
    with pytest.raises(DataValidationError, match=refused):
        model.calibrate(frame, folds=30, step=1, rolling=20)
    with pytest.raises(DataValidationError, match=refused):  # one of the two fitted series
        model.calibrate(frame.filter(pl.col("id") == "a"), folds=30, step=1, rolling=20)
    assert "conformal_" not in model.__dict__  # refused before any backtest
    model.calibrate(frame, folds=30, step=1, rolling=20, origins="calendar")  # shared times
    assert model.conformal_["window"] == 20
    one = frame.filter(pl.col("id") == "a").drop("id")
    single = RNNForecaster(target="y", **SMALL).fit(one.filter(pl.col("time") < 120))
    single.calibrate(one, folds=30, step=1, rolling=20)  # one series: as before
    assert "y_lo_80" in single.predict(one, cutoff=[150], level=80).columns


def test_rolling_calibration_of_date_series_with_their_own_folds_is_accepted(frame):
    """The refusal of rolling=W is for integer steps: date series share a calendar, so
    rolling=W with origins='series' (each series' folds from its own end) was refused as
    "the time column 'time' holds integer steps" on a date panel of two series."""
    start = pl.date(2020, 1, 1)
    dates = frame.drop("z").with_columns(time=start + pl.duration(days=pl.col("time")))
    model = RNNForecaster(target="y", id_col="id", freq="1d", **SMALL).fit(
        dates.filter(pl.col("time") < dt.date(2020, 4, 30))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # the cross-series warning
        model.calibrate(dates, folds=30, step=1, rolling=20, origins="series")
    assert model.conformal_["window"] == 20


def test_calibrates_warning_of_integer_series_without_residuals_says_they_are_too_short(
    point_model, frame
):
    """calibrate's own warning about series without residuals blamed "its calendar folds'
    cutoffs" and advised origins='series' on integer steps, whose folds are counted from
    each series' own end already: it says they are too short for the folds."""
    model = copy.deepcopy(point_model)
    short = frame.filter((pl.col("id") == "a") | (pl.col("time") < 40))  # b: 40 rows
    with pytest.warns(NoResidualsWarning, match=r"\['b'\].*too short for its folds") as caught:
        model.calibrate(short, folds=20, step=1)
    message = str(next(w.message for w in caught if w.category is NoResidualsWarning))
    assert "calendar" not in message and "origins='series'" not in message, message


def test_series_without_residuals_of_integer_steps_are_not_blamed_on_calendar_folds(
    point_model, frame
):
    """predict's refusal of series without calibration residuals (normalize="series") blamed
    "the calibration's calendar folds" on integer-step series, which have none: it says they
    are too short for the calibration's folds."""
    model = copy.deepcopy(point_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.calibrate(frame.filter(pl.col("id") == "a"), folds=20, step=1)
    with pytest.raises(DataValidationError, match="no calibration residuals") as info:
        model.predict(frame, level=80)
    message = str(info.value)
    assert "calendar" not in message and "origins='series'" not in message, message
    assert "too short for the calibration's folds" in message, message


def test_float32_quantiles_are_looked_up_as_their_columns_are_named(frame):
    """Quantiles given in float32 (0.10000000149...) named their columns y_q10 / y_q90, but
    predict(level=80) and predict(quantiles=[0.1, 0.9]) were refused: the lookup compared
    the float32 values rounded to 12 decimals with 0.1 and 0.9. A number within float32
    precision of its column's number is now that number, for the model and the request."""
    assert check("quantiles", np.array([0.1, 0.5, 0.9], np.float32).tolist()) == (0.1, 0.5, 0.9)
    assert check("level", [np.float32(99.9), 80]) == (80.0, 99.9)
    assert check("quantiles", [1 - 0.95, 0.1234567]) == (0.05, 0.1234567)  # others kept
    quantiles = list(np.array([0.1, 0.5, 0.9], dtype=np.float32))
    model = RNNForecaster(
        target="y", id_col="id", loss="quantile", quantiles=quantiles, **SMALL
    ).fit(frame.filter(pl.col("time") < 120))
    assert model.network_.quantiles == (0.1, 0.5, 0.9)
    every = model.predict(frame, quantiles=quantiles)
    out = model.predict(frame, level=80, quantiles=[0.1, 0.9])
    assert out["y_lo_80"].equals(every["y_q10"], check_names=False)
    assert out["y_q90"].equals(every["y_q90"])


def test_a_missing_level_suggests_the_fitted_quantiles_with_its_bounds(quantile_model, frame):
    """level=90 on a model of [0.1, 0.25, 0.5, 0.75, 0.9] suggested quantiles=[0.05, 0.5,
    0.95], which would drop the model's levels 50 and 80; now the fitted ones are kept."""
    with pytest.raises(
        DataValidationError, match=r"quantiles=\[0\.05, 0\.1, 0\.25, 0\.5, 0\.75, 0\.9, 0\.95\]\."
    ):
        quantile_model.predict(frame, level=[50, 90])


@pytest.mark.parametrize(
    ("kw", "both"),
    [
        ({"level": [80, np.float32(80)]}, r"80 and np\.float32\(80\.0\) are the same level"),
        (
            {"quantiles": [0.1, np.float32(0.1)]},
            r"0\.1 and np\.float32\(0\.1\) are the same quantile",
        ),
        ({"level": [80, 80.0000001]}, r"80 and 80\.0000001 are the same level"),
    ],
)
def test_a_level_or_quantile_given_twice_is_named_as_such(point_model, frame, kw, both):
    """level=[80, np.float32(80)] was refused with the general text ("distinct numbers ...
    80 for an 80 % interval, not 0.8"), and quantiles=[0.1, np.float32(0.1)] as two numbers
    sharing a column name: each is one number given twice, and the error now says so."""
    with pytest.raises(DataValidationError, match=rf"{both} given twice\. Keep one of them\.$"):
        point_model.predict(frame, **kw)


@pytest.mark.parametrize(("level", "floor"), [(5.0, 5e-6), (0.0, 1.0), (1e10, 1e4)])
def test_a_series_forecast_exactly_keeps_a_series_normalised_interval(level, floor):
    """normalize="series": a series whose calibration forecasts were exact (a constant one,
    its residuals all 0) had a scale of 1e-308 (the float64 floor against 0 / 0), so its
    intervals were 1e-308 wide at any level. Its scale is now floored as a window's spread
    is (:func:`~forecaster.data.spans.floor_spread`): 1e-6 of its forecasts' level (1 at a
    level of 0); the other series keep theirs. The same for a quantile model (CQR)."""
    rng = np.random.default_rng(0)
    n, horizon = 40, 2
    series = np.repeat(np.arange(2), n // 2)
    residuals = rng.normal(0, 3, (n, horizon, 1, 1))
    residuals[series == 1] = 0.0
    conformal = {"residuals": residuals, "series": series, "per_series": False}
    point = np.array([np.full((horizon, 1), 10.0), np.full((horizon, 1), level)])
    cols = interval_columns(
        ["y"], point, None, None, {**conformal, "normalize": "series"}, np.array([0, 1]),
        levels=[80], quantiles=None,
    )  # fmt: skip
    width = (cols["y_hi_80"] - cols["y_lo_80"]).reshape(2, horizon)
    scale = np.abs(residuals[series == 0]).mean()
    quantile = width[0] / (2 * scale)  # the pooled normalised quantile, per step
    # at least 1e-6 of its level, as every half-width (the pooled ones vary: no unit floor)
    np.testing.assert_allclose(width[1], 2 * np.maximum(quantile * floor, 1e-6 * level), rtol=1e-9)
    # a quantile model: s0's band point -+ 1 (residuals y - q), s1's quantiles all exact
    signed = np.concatenate([residuals + 1.0, residuals, residuals - 1.0], axis=3)
    signed[series == 1] = 0.0
    cqr = {**conformal, "residuals": signed, "normalize": "series"}
    bands = np.stack([point - 1.0, point, point + 1.0], axis=-1)
    bands[1] = point[1][..., None]
    cols = interval_columns(
        ["y"], point, bands, [0.1, 0.5, 0.9], cqr, np.array([0, 1]), levels=[80], quantiles=None
    )
    exact = (cols["y_hi_80"] - cols["y_lo_80"]).reshape(2, horizon)[1]
    assert (exact > 0.1 * floor).all(), exact  # was about 1e-308


@pytest.mark.parametrize("normalize", ["series", "window", None])
@pytest.mark.parametrize(("level", "floor"), [(5.0, 5e-6), (0.0, 1.0), (1e10, 1e4)])
def test_a_series_own_exact_residuals_keep_a_per_series_interval(normalize, level, floor):
    """per_series=True: a series whose own 20+ calibration residuals were all 0 (forecast
    exactly) got a zero-width interval, claiming certainty, under every normalisation. Its
    half-width is now floored as a series scale is (:func:`~forecaster.data.spans.floor_spread`):
    1e-6 of its forecasts' level (1 at a level of 0); the other series keep their own width."""
    rng = np.random.default_rng(0)
    n, horizon = 60, 2
    series = np.repeat(np.arange(2), n // 2)
    residuals = rng.normal(0, 3, (n, horizon, 1, 1))
    residuals[series == 1] = 0.0
    conformal = {"residuals": residuals, "series": series, "per_series": True}
    point = np.array([np.full((horizon, 1), 10.0), np.full((horizon, 1), level)])
    cols = interval_columns(
        ["y"], point, None, None, {**conformal, "normalize": normalize}, np.array([0, 1]),
        levels=[80], quantiles=None, spread=np.ones((2, 1)),
    )  # fmt: skip
    width = (cols["y_hi_80"] - cols["y_lo_80"]).reshape(2, horizon)
    np.testing.assert_allclose(width[1], 2 * floor, rtol=1e-9)
    own = np.sort(np.abs(residuals[series == 0, :, 0, 0]), axis=0)[24]  # ceil(31 * 0.8) - 1
    np.testing.assert_allclose(width[0], 2 * own, rtol=1e-9)


@pytest.mark.parametrize("normalize", ["series", "window", None])
@pytest.mark.parametrize(("level", "floor"), [(5.0, 5e-6), (0.0, 1.0), (1e10, 1e4)])
def test_a_series_own_exact_residuals_keep_per_series_quantiles_off_the_median(
    normalize, level, floor
):
    """per_series=True: the quantile columns of a series whose own calibration residuals
    were all 0 (forecast exactly) all lay on its forecast, while its intervals were floored
    (1e-6 of its level, 1 at a level of 0, either side): a quantile's distance from the
    median is now floored as a half-width is, so they are strictly ordered around the median
    (an offset kept: residuals all 2 move them all by 2), and the other series keep theirs."""
    rng = np.random.default_rng(0)
    n, horizon = 60, 2
    series = np.repeat(np.arange(3), n // 3)
    residuals = rng.normal(0, 3, (n, horizon, 1, 1))
    residuals[series == 1], residuals[series == 2] = 0.0, 2.0
    conformal = {"residuals": residuals, "series": series, "per_series": True}
    point = np.array([np.full((horizon, 1), v) for v in (10.0, level, level)])
    qs = [0.1, 0.25, 0.5, 0.9]
    cols = interval_columns(
        ["y"], point, None, None, {**conformal, "normalize": normalize}, np.arange(3),
        levels=[80], quantiles=qs, spread=np.ones((3, 1)),
    )  # fmt: skip
    got = {q: cols[quantile_name("y", q)].reshape(3, horizon) for q in qs}
    for s, offset in ((1, 0.0), (2, 2.0)):
        centre = level + offset
        expected = {0.1: centre - floor, 0.25: centre - floor, 0.5: centre, 0.9: centre + floor}
        for q, value in expected.items():
            np.testing.assert_allclose(got[q][s], value, rtol=1e-12)
    lo = cols["y_lo_80"].reshape(3, horizon)[1]
    np.testing.assert_allclose(lo, got[0.1][1], rtol=1e-12)  # the interval's own floor
    own = residuals[series == 0, :, 0, 0]
    for q in qs:  # the series with spread-out residuals: its signed order statistics
        expected = 10.0 + signed_quantile(own, q, what="test")
        np.testing.assert_array_equal(got[q][0], expected)


@pytest.mark.parametrize("normalize", ["series", "window", None])
def test_floored_per_series_intervals_and_quantiles_stay_nested(normalize):
    """per_series=True: a series whose own residuals are mostly 0 and a few 0.5 had its 50 %
    half-width (0) floored to 1 while its 90 % one (0.5) was left: ``y_lo_90`` above
    ``y_lo_50``, intervals that do not nest. A wider level's half-width is at least a
    narrower one's, and a quantile farther from the median at least as far from it as a
    nearer one; the unit floor is only for residuals all one value (the 50 % half-width is
    1e-6 of the level here)."""
    n, horizon = 40, 1
    series = np.zeros(n, dtype=int)
    residuals = np.zeros((n, horizon, 1, 1))
    residuals[:8] = 0.5  # 20 % of the residuals 0.5 (one sign), the rest exactly 0
    conformal = {"residuals": residuals, "series": series, "per_series": True}
    cols = interval_columns(
        ["y"], np.full((1, horizon, 1), 5.0), None, None, {**conformal, "normalize": normalize},
        np.array([0]), levels=[50, 90], quantiles=[0.05, 0.25, 0.5, 0.75, 0.95],
        spread=np.ones((1, 1)),
    )  # fmt: skip
    assert cols["y_lo_90"][0] <= cols["y_lo_50"][0] < 5.0 < cols["y_hi_50"][0]
    assert cols["y_hi_50"][0] <= cols["y_hi_90"][0]
    values = [cols[quantile_name("y", q)][0] for q in (0.05, 0.25, 0.5, 0.75, 0.95)]
    assert values[0] <= values[1] < values[2] == 5.0 < values[3] <= values[4]
    # the residuals vary: a 0 quantile of them is floored at 1e-6 of the level (5), not at 1
    np.testing.assert_allclose(values[2] - values[1], 5e-6, rtol=1e-9)
    np.testing.assert_allclose(values[4] - values[2], 0.5, rtol=1e-9)


@pytest.mark.parametrize("normalize", ["series", "window", None])
def test_per_series_intervals_of_residuals_mostly_0_keep_their_own_scale(normalize):
    """per_series=True: a price of 0.5 unchanged at 60 % of its steps (residuals 0) and
    moving by 0.01 at the others got the unit floor of a series forecast exactly wherever a
    conformal quantile of its residuals was 0 (the 50 % interval [-0.5, 1.5]), and nesting
    then carried it to every level and quantile (95 %: [-0.5, 1.5], 100 times its residuals;
    y_q5 -0.5, a negative price). The unit floor is for a series whose own residuals at a
    step are all one value; the others are floored at 1e-6 of their level, as the pooled
    residuals give them."""
    rng = np.random.default_rng(0)
    n = 100
    residuals = np.zeros((n, 1, 1, 1))
    moved = rng.choice(n, 40, replace=False)
    residuals[moved] = rng.choice([-0.01, 0.01], 40)[:, None, None, None]
    levels, qs = [50, 80, 95], [0.05, 0.25, 0.5, 0.75, 0.95]
    got = {}
    for per_series in (True, False):
        conformal = {"residuals": residuals, "series": np.zeros(n, dtype=int)}
        conformal |= {"per_series": per_series, "normalize": normalize}
        got[per_series] = interval_columns(
            ["y"], np.full((1, 1, 1), 0.5), None, None, conformal, np.array([0]),
            levels=levels, quantiles=qs, spread=np.ones((1, 1)),
        )  # fmt: skip
    own, pooled = got[True], got[False]
    np.testing.assert_allclose(own["y_lo_95"], 0.49, rtol=1e-9)
    np.testing.assert_allclose(own["y_q5"], 0.49, rtol=1e-9)
    np.testing.assert_allclose(own["y_hi_50"] - own["y_lo_50"], 1e-6, rtol=1e-9)  # 2e-6 * 0.5
    for name in own:
        np.testing.assert_allclose(own[name], pooled[name], atol=1e-6)


@pytest.mark.parametrize("normalize", ["series", "window", None])
@pytest.mark.parametrize("per_series", [True, False])
def test_a_quantile_models_band_of_exact_residuals_is_floored_as_a_point_models(
    normalize, per_series
):
    """CQR: a series whose calibration forecasts were exact (its median's residuals all 0,
    the model's quantiles median -+ 0.5 and -+ 1) had its bands narrowed onto the median,
    zero-width intervals claiming certainty, where a point model's intervals of the same
    residuals are floored at 1e-6 of the level either side. Both now share one floor
    (``_floored_around``): the same widths, quantiles strictly around the median, levels
    nested."""
    rng = np.random.default_rng(0)
    n, horizon = 60, 2
    series = np.repeat(np.arange(2), n // 2)
    residuals = rng.normal(0, 3, (n, horizon, 1, 1))
    residuals[series == 1] = 0.0
    point = np.array([np.full((horizon, 1), 10.0), np.full((horizon, 1), 5.0)])
    conformal = {"series": series, "per_series": per_series, "normalize": normalize}
    kw = {"levels": [50, 80], "spread": np.ones((2, 1))}
    qs, offsets = [0.1, 0.25, 0.5, 0.75, 0.9], np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    signed = residuals - offsets  # y - q
    bands = point[..., None] + offsets
    cqr = interval_columns(
        ["y"], point, bands, qs, {**conformal, "residuals": signed}, np.arange(2),
        quantiles=qs, **kw,
    )  # fmt: skip
    points = interval_columns(
        ["y"], point, None, None, {**conformal, "residuals": residuals}, np.arange(2),
        quantiles=None, **kw,
    )  # fmt: skip

    def width(cols, level):
        return (cols[f"y_hi_{level}"] - cols[f"y_lo_{level}"]).reshape(2, horizon)

    if per_series:  # the exact series' own residuals: 1e-6 of its level 5, whichever model
        for level in (50, 80):
            np.testing.assert_allclose(width(cqr, level)[1], 1e-5, rtol=1e-9)
            np.testing.assert_allclose(width(points, level)[1], 1e-5, rtol=1e-9)
    assert (width(cqr, 50) > 0).all() and (width(cqr, 80) >= width(cqr, 50)).all()
    values = [cols.reshape(2, horizon) for cols in (cqr[quantile_name("y", q)] for q in qs)]
    assert (np.diff(np.stack(values), axis=0) >= 0).all()  # sorted, outward at least as far
    assert (values[1] < values[2]).all() and (values[2] < values[3]).all()  # off the median
    np.testing.assert_array_equal(values[2], point[..., 0])


@pytest.mark.parametrize("normalize", ["series", "window", None])
def test_pooled_intervals_of_residuals_mostly_0_are_never_zero_width(normalize):
    """per_series=False: five flat series forecast exactly (residuals 0) beside one moving
    series: over half the pooled residuals are 0, so the pooled 80 % half-width was 0 for
    every series, the moving one's too (a zero-width interval around a forecast that is
    not exact). The pooled half-widths are floored as a series' own are: 1e-6 of each
    forecast's level, whether the pooled residuals vary or are all one value; quantiles
    strictly around the median, intervals nested."""
    rng = np.random.default_rng(0)
    n_series, per, horizon = 6, 20, 2
    series = np.repeat(np.arange(n_series), per)
    residuals = np.zeros((n_series * per, horizon, 1, 1))
    residuals[series == 5] = rng.normal(0, 3, (per, horizon, 1, 1))
    point = np.array([np.full((horizon, 1), 3.0 + s) for s in range(n_series)])
    point[5] = 100.0
    conformal = {"residuals": residuals, "series": series, "per_series": False}
    cols = interval_columns(
        ["y"], point, None, None, {**conformal, "normalize": normalize}, np.arange(n_series),
        levels=[50, 80], quantiles=[0.25, 0.5, 0.75], spread=np.ones((n_series, 1)),
    )  # fmt: skip
    level = point[:, :, 0].mean(axis=1)[:, None]  # (series, 1)
    for name in ("50", "80"):
        width = (cols[f"y_hi_{name}"] - cols[f"y_lo_{name}"]).reshape(n_series, horizon)
        np.testing.assert_allclose(width, 2e-6 * np.broadcast_to(level, width.shape), rtol=1e-9)
    q25, q50, q75 = (
        cols[quantile_name("y", q)].reshape(n_series, horizon) for q in (0.25, 0.5, 0.75)
    )
    assert (q25 < q50).all() and (q50 < q75).all()
    # every series forecast exactly: the pooled residuals are all 0, the same level floor
    conformal["residuals"] = np.zeros_like(residuals)
    cols = interval_columns(
        ["y"], point, None, None, {**conformal, "normalize": normalize}, np.arange(n_series),
        levels=[80], quantiles=None, spread=np.ones((n_series, 1)),
    )  # fmt: skip
    width = (cols["y_hi_80"] - cols["y_lo_80"]).reshape(n_series, horizon)
    np.testing.assert_allclose(width, 2e-6 * np.broadcast_to(level, width.shape), rtol=1e-9)


@pytest.mark.parametrize("per_series", [True, False])
def test_a_step_never_observed_in_calibration_warns_nothing_of_numpy(per_series):
    """A quantile model's calibration whose actual values at step 2 were all made up (NaN
    residuals there): ``predict(quantiles=[0.5])`` asks for no calibrated bound, so nothing
    refuses the step, and the floor's check of the pooled residuals (whether they are all
    one value) warned NumPy's "All-NaN slice encountered" to the user. The median is given,
    as before the floor, without a warning."""
    rng = np.random.default_rng(0)
    n, horizon = 40, 2
    offsets = np.array([-1.0, 0.0, 1.0])
    signed = rng.normal(0, 1, (n, horizon, 1, 1)) - offsets
    signed[:, 1] = np.nan  # step 2: no actual value observed in any calibration window
    point = np.full((2, horizon, 1), 5.0)
    conformal = {
        "residuals": signed,
        "series": np.repeat(np.arange(2), n // 2),
        "per_series": per_series,
        "normalize": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cols = interval_columns(
            ["y"], point, point[..., None] + offsets, [0.1, 0.5, 0.9], conformal,
            np.arange(2), levels=None, quantiles=[0.5],
        )  # fmt: skip
    np.testing.assert_array_equal(cols["y_q50"], 5.0)


def test_calibrate_names_fitted_series_absent_from_its_frame(point_model, frame):
    """normalize="series": a fitted series absent from the calibration frame gets no series
    scale, so predict(level=...) refuses it, per_series=False too; calibrate said nothing
    (only series in the frame were named). It now names them and how to fix it."""
    model = copy.deepcopy(point_model)  # the module's model keeps its own calibration
    with pytest.warns(NoResidualsWarning, match=r"1 series seen in fit is not in the cal.*\['b'\]"):
        model.calibrate(frame.filter(pl.col("id") == "a"), folds=4, step=4, per_series=False)
    with pytest.raises(DataValidationError, match=r"calibrate on a frame that includes those"):
        model.predict(frame, level=80)


@pytest.mark.parametrize("normalize", ["series", "window", None])
@pytest.mark.parametrize("per_series", [True, False])
def test_the_interval_of_a_series_forecast_exactly_does_not_depend_on_its_units(
    normalize, per_series
):
    """A constant series forecast exactly in calibration (its residuals all 0) got a
    half-width of 1 in absolute units: at 0.002 an 80 % interval of [-1.0, 1.0], 500 times
    its level, at 2 one of [1, 3]. Its half-width is now 1e-6 of its level in any unit (its
    window spread too: 1e-6 of its level, as ``window_spread`` gives a constant window)."""
    n, horizon = 40, 3
    conformal = {"residuals": np.zeros((n, horizon, 1, 1)), "series": np.zeros(n, dtype=int)}
    conformal |= {"per_series": per_series, "normalize": normalize}
    relative = []
    for level in (0.002, 2.0):
        cols = interval_columns(
            ["y"], np.full((1, horizon, 1), level), None, None, conformal, np.array([0]),
            levels=[80], quantiles=[0.1, 0.9], spread=np.full((1, 1), 1e-6 * level),
        )  # fmt: skip
        relative.append({name: values / level for name, values in cols.items()})
    for name in ("y_lo_80", "y_q10"):
        np.testing.assert_allclose(relative[0][name], 1 - 1e-6, rtol=1e-12)
        np.testing.assert_allclose(relative[1][name], relative[0][name], rtol=1e-12)
    for name in ("y_hi_80", "y_q90"):
        np.testing.assert_allclose(relative[0][name], 1 + 1e-6, rtol=1e-12)
        np.testing.assert_allclose(relative[1][name], relative[0][name], rtol=1e-12)

"""Hostile use of fitted estimators: parameters changed after fit, interrupted refits, fits in
threads, a ``y`` the frame estimator would ignore, sets of columns, forecasts beyond float32,
columns named like forecaster's temporary columns, backtests too large for memory,
cross-validation splits that train on the future of their test rows.

The mechanisms: ``fitted_params_`` recorded by every successful fit (and by ``load``) and
compared by ``_check_fitted`` in predict, score, backtest and save; a fit that is all or nothing
(``_fitting``); a process-wide lock around seeded training; one float64 forecast check
(``_forecast_values``); one naming rule for temporary columns
(``forecaster.evaluation.metrics.temporary_names``); ``check_allocation`` before a backtest
allocates.
Each case checks the outcome and, where something could be written, that nothing else changed.
"""

from __future__ import annotations

import contextlib
import copy
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest
from conftest import for_head
from sklearn.model_selection import KFold, cross_val_score

import forecaster
from forecaster import (
    DataValidationError,
    ForecasterWarning,
    NotFittedError,
    RNNForecaster,
    RNNRegressor,
    TemporalSplit,
    backtest,
)

KW = {
    "target": "y",
    "id_col": "id",
    "time_col": "t",
    "lookback": 8,
    "horizon": 3,
    "hidden_size": 4,
    "segment_length": 4,
    "max_epochs": 1,
    "progress": False,
    "random_state": 0,
    "device": "cpu",
}


def model(**kw) -> RNNForecaster:
    params = {**KW, **kw}
    return RNNForecaster(**for_head(params, str(params.get("head", "segment"))))


def panel(n: int = 40) -> pl.DataFrame:
    t = np.arange(n)
    return pl.concat(
        [
            pl.DataFrame({"id": k, "t": t, "y": np.sin(t / 3) + i, "x": np.cos(t)})
            for i, k in enumerate("ab")
        ]
    )


FRAME = panel()


@pytest.fixture(scope="module")
def fitted() -> RNNForecaster:
    return model().fit(FRAME)


@pytest.fixture(scope="module")
def forecast(fitted) -> pl.DataFrame:
    return fitted.predict(FRAME)


def windows(n: int = 64, lookback: int = 12):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, lookback, 2)).astype("float32")
    return X, X[:, -1, 0] + X[:, -2, 1]


def regressor(**kw) -> RNNRegressor:
    params = {"hidden_size": 4, "max_epochs": 1, "random_state": 0, "device": "cpu"}
    return RNNRegressor(**{**params, **kw})


# ------------------------------------------------------------------------------------------
# parameters changed after fit: refused where they shape predictions, else the fitted state
# ------------------------------------------------------------------------------------------

CHANGES = [
    {"target": "x"},
    {"lookback": 4},
    {"horizon": 5},
    {"freq": 2},
    {"missing": "ffill"},
    {"scaling": "minmax"},
    {"target_transform": "log1p"},
    {"covariates": ["x"]},
    {"future_covariates": ["x"]},
    {"id_col": None},
    {"time_col": "x"},
    {"calendar": "auto"},
    {"baseline": "none"},
]
ACTIONS = {
    "predict": (lambda m, tmp: m.predict(FRAME), "predict with"),
    "score": (lambda m, tmp: m.score(FRAME), "score with"),
    "backtest": (lambda m, tmp: backtest(m, FRAME, folds=2), "backtest"),
    "save": (lambda m, tmp: m.save(tmp / "m"), "save"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: next(iter(c)))
def test_parameters_that_shape_predictions_changed_after_fit_are_refused(
    fitted, change, action, tmp_path, tree_guard
):
    changed = copy.deepcopy(fitted).set_params(**change)
    ((name, value),) = change.items()
    run, verb = ACTIONS[action]
    guard = tree_guard(tmp_path)
    with pytest.raises(DataValidationError) as error:
        run(changed, tmp_path)
    message = str(error.value)
    assert message.startswith(f"Cannot {verb} this RNNForecaster: {name} (fitted with ")
    assert f"now {value!r}) changed since fit" in message
    assert f"set_params({name}={fitted.get_params()[name]!r})" in message
    guard.assert_unchanged()


def test_a_save_over_a_good_model_with_a_changed_lookback_keeps_the_good_model(
    fitted, forecast, tmp_path, tree_guard
):
    fitted.save(tmp_path / "m")
    guard = tree_guard(tmp_path)
    changed = copy.deepcopy(fitted).set_params(lookback=4)
    with pytest.raises(DataValidationError, match=r"lookback \(fitted with 8, now 4\)"):
        changed.save(tmp_path / "m")
    guard.assert_unchanged()
    assert forecaster.load(tmp_path / "m").predict(FRAME).equals(forecast)


@pytest.mark.parametrize(
    "change",
    [{"hidden_size": 8}, {"max_epochs": 9}, {"lr": 0.5}, {"head": "direct"}, {"n_ensemble": 2}],
    ids=lambda c: next(iter(c)),
)
def test_other_parameters_changed_after_fit_leave_the_fitted_model_as_it_is(
    fitted, forecast, change, tmp_path
):
    changed = copy.deepcopy(fitted).set_params(**change)
    assert changed.predict(FRAME).equals(forecast)
    loaded = forecaster.load(changed.save(tmp_path / "m"))  # written as fitted: loads
    assert loaded.get_params() == fitted.get_params()
    assert loaded.predict(FRAME).equals(forecast)
    assert changed.get_params()[next(iter(change))] == next(iter(change.values()))


def test_run_settings_changed_after_fit_are_saved_as_they_are_now(fitted, tmp_path):
    changed = copy.deepcopy(fitted).set_params(progress=None, device="auto")
    loaded = forecaster.load(changed.save(tmp_path / "m"))
    assert (loaded.progress, loaded.device) == (None, "auto")


@pytest.mark.parametrize("same", ["y", ["y"], ("y",)], ids=["str", "list", "tuple"])
def test_a_parameter_set_back_or_to_an_equal_value_is_accepted(fitted, forecast, same):
    changed = copy.deepcopy(fitted).set_params(target="x").set_params(target=same)
    assert changed.predict(FRAME).equals(forecast)


def test_a_loaded_model_refuses_parameters_changed_after_load(fitted, tmp_path):
    loaded = forecaster.load(fitted.save(tmp_path / "m")).set_params(horizon=6)
    with pytest.raises(DataValidationError, match=r"horizon \(fitted with 3, now 6\)"):
        loaded.predict(FRAME)


def test_an_array_set_after_fit_is_a_change_not_a_crash(fitted):
    changed = copy.deepcopy(fitted).set_params(covariates=np.array(["x"]))
    with pytest.raises(DataValidationError, match=r"covariates \(fitted with None, now array"):
        changed.predict(FRAME)


def test_a_refit_uses_the_new_parameters(fitted):
    refitted = copy.deepcopy(fitted).set_params(horizon=5).fit(FRAME)
    assert refitted.predict(FRAME).height == 2 * 5
    assert backtest(refitted, FRAME, folds=2).forecasts.height == 2 * 2 * 5


def test_regressor_parameters_changed_after_fit_use_the_fitted_state(tmp_path):
    X, y = windows()
    fitted = regressor().fit(X, y)
    before = fitted.predict(X)
    fitted.set_params(hidden_size=8, head="seq2seq", max_epochs=7)
    assert np.array_equal(fitted.predict(X), before)
    loaded = forecaster.load(fitted.save(tmp_path / "r"))
    assert loaded.hidden_size == 4 and np.array_equal(loaded.predict(X), before)


# ------------------------------------------------------------------------------------------
# a failed or interrupted refit leaves the earlier fitted state whole
# ------------------------------------------------------------------------------------------


def _interrupt(record, network):
    raise KeyboardInterrupt


def _fail(record, network):
    raise RuntimeError("callback failed")


def _fitted_state(estimator) -> dict:
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and k[0] != "_"}


@pytest.mark.parametrize("callback", [_interrupt, _fail], ids=["KeyboardInterrupt", "error"])
@pytest.mark.parametrize("shape", ["same", "other lookback"])
def test_an_interrupted_regressor_refit_keeps_the_earlier_model(callback, shape):
    X, y = windows()
    fitted = regressor().fit(X, y)
    before, state = fitted.predict(X), _fitted_state(fitted)
    X2 = X * 100 + 50 if shape == "same" else X[:, :6] * 100 + 50
    with pytest.raises((KeyboardInterrupt, RuntimeError)):
        fitted.fit(X2, y * 100 + 7, callbacks=[callback])
    assert np.array_equal(fitted.predict(X), before)  # was -77.8 for -0.72: a mix
    assert _fitted_state(fitted).keys() == state.keys()
    assert all(_fitted_state(fitted)[k] is v for k, v in state.items())


@pytest.mark.parametrize("callback", [_interrupt, _fail], ids=["KeyboardInterrupt", "error"])
def test_an_interrupted_forecaster_refit_keeps_the_earlier_model(fitted, forecast, callback):
    refitted = copy.deepcopy(fitted)
    state = _fitted_state(refitted)
    other = FRAME.with_columns(pl.col("y") * 100 + 50, pl.col("t") + 1000)
    with pytest.raises((KeyboardInterrupt, RuntimeError)):
        refitted.fit(other, callbacks=[callback])
    assert refitted.predict(FRAME).equals(forecast)
    assert all(_fitted_state(refitted)[k] is v for k, v in state.items())


@pytest.mark.parametrize("make", [model, regressor], ids=["forecaster", "regressor"])
def test_an_interrupted_first_fit_leaves_the_estimator_unfitted(make):
    estimator = make()
    data = (FRAME,) if isinstance(estimator, RNNForecaster) else windows()
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(*data, callbacks=[_interrupt])
    assert _fitted_state(estimator) == {}
    with pytest.raises(NotFittedError):
        estimator.predict(data[0])


# ------------------------------------------------------------------------------------------
# seeded fits in threads: the same model as alone
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["direct", "segment"])
def test_seeded_forecaster_fits_in_threads_equal_the_fit_alone(head):
    def fit(_):
        return model(head=head, dropout=0.3, batch_size=16, max_epochs=2).fit(FRAME).predict(FRAME)

    alone = fit(None)
    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(fit, range(3)))
    assert all(o.equals(alone) for o in outcomes)


def test_a_seeded_regressor_fit_beside_an_unseeded_one_equals_the_fit_alone():
    X, y = windows()

    def fit(seed):
        return regressor(random_state=seed, dropout=0.3, num_layers=2, max_epochs=2).fit(X, y)

    alone = fit(0).predict(X)
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(fit, [0, None, 0, None]))
    assert np.array_equal(outcomes[0].predict(X), alone)
    assert np.array_equal(outcomes[2].predict(X), alone)


# ------------------------------------------------------------------------------------------
# a y the frame estimator would ignore; sets of columns
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y",
    [np.zeros(80), [0.0] * 80, FRAME["y"], FRAME.select("y"), 0],
    ids=lambda v: type(v).__name__,
)
@pytest.mark.parametrize("method", ["fit", "score"])
def test_a_y_given_to_a_frame_estimator_is_refused(fitted, method, y):
    estimator = model() if method == "fit" else fitted
    with pytest.raises(DataValidationError, match=rf"RNNForecaster\.{method}\(frame, y=\.\.\.\)"):
        getattr(estimator, method)(FRAME, y=y)
    assert method == "score" or not hasattr(estimator, "network_")


def test_y_none_is_what_scikit_learn_passes(fitted):
    with pytest.warns(ForecasterWarning, match="in-sample"):
        assert np.isfinite(fitted.score(FRAME, y=None))


@pytest.mark.parametrize("kind", [set, frozenset])
@pytest.mark.parametrize("name", ["target", "covariates", "future_covariates"])
def test_sets_of_columns_are_refused_before_fitting(name, kind):
    value = kind({"x", "z"} if name != "target" else {"y", "z"})
    estimator = model(**{name: value})
    with pytest.raises(DataValidationError, match=rf"^{name} must be .*A set has no order"):
        estimator.validate_params()
    with pytest.raises(DataValidationError, match=r"Pass a list, e\.g\. "):
        estimator.fit(FRAME.with_columns(z=pl.col("x")))
    assert not hasattr(estimator, "network_")


# ------------------------------------------------------------------------------------------
# forecasts beyond float32 (finite float64 numbers) and forecasts that are not finite
# ------------------------------------------------------------------------------------------

HUGE = pl.DataFrame({"t": np.arange(60), "y": np.linspace(1e37, 3.3e38, 60)})


@pytest.mark.parametrize(
    "params",
    [{}, {"target_transform": "log"}, {"scaling": "minmax"}],
    ids=["none", "log", "minmax"],
)
def test_forecasts_near_and_beyond_float32_are_finite_float64_numbers(params):
    """Forecasts are float64 (the inverse scaling runs in float64): a series climbing to
    3.3e38 is forecast in finite numbers, past float32's 3.4e38 too (they were refused as
    not finite float32 numbers; before that, inf, silently)."""
    huge = model(id_col=None, lr=0.05, max_epochs=3, **params).fit(HUGE)
    forecast = huge.predict(HUGE)
    assert forecast.schema["y"] == pl.Float64
    assert np.isfinite(forecast["y"].to_numpy()).all()
    if params:  # the backtest's forecasts go through the same path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)  # in-sample
            result = backtest(huge, HUGE, folds=3, step=1)
        assert np.isfinite(result.forecasts["y"].to_numpy()).all()


@pytest.mark.parametrize(
    "params",
    [{}, {"target_transform": "log"}, {"scaling": "minmax"}],
    ids=["none", "log", "minmax"],
)
def test_forecasts_that_are_not_finite_are_refused_naming_series_and_steps(params):
    # baseline="none": a blend at network weight 0 does not run the network (its partner's
    # forecasts are finite whatever the network gives)
    huge = model(id_col=None, lr=0.05, max_epochs=3, baseline="none", **params).fit(HUGE)
    huge.scaler_.scale_[:, 0] = np.inf  # what a diverged model gives: inf forecasts
    expected = r"not a finite number for the series at steps \[1.*target 'y'"
    with pytest.raises(DataValidationError, match=expected):
        huge.predict(HUGE)
    if params:  # the backtest's forecasts go through the same check
        with pytest.raises(DataValidationError, match=expected):
            backtest(huge, HUGE, folds=3, step=1)


def test_forecasts_that_are_not_finite_name_the_series_of_a_panel():
    frame = pl.concat(
        [HUGE.with_columns(id=pl.lit("big")), HUGE.with_columns(id=pl.lit("ok"), y=pl.lit(1.0))]
    )
    huge = model(lr=0.05, max_epochs=3, target_transform="log", baseline="none").fit(frame)
    huge.scaler_.scale_[huge.keys_["id"].to_list().index("big"), 0] = np.inf
    with pytest.raises(DataValidationError, match=r"for 1 series \(\['big'\]\), e\.g\. 'big'"):
        huge.predict(frame)


def test_regressor_predictions_that_are_not_finite_are_refused():
    X, y = windows()
    fitted = regressor().fit(X, y)
    fitted.y_scale_ = float("inf")  # what a diverged model gives
    with pytest.raises(DataValidationError, match=r"predictions of 64 windows are not finite"):
        fitted.predict(X)


def test_regressor_predict_of_no_windows_says_so():
    X, y = windows()
    fitted = regressor().fit(X, y)
    with pytest.raises(DataValidationError, match=r"predict: Predict needs at least 1 window"):
        fitted.predict(X[:0])
    with pytest.raises(DataValidationError, match=r"fit: Fit needs at least 2 windows"):
        regressor().fit(X[:1], y[:1])


# ------------------------------------------------------------------------------------------
# columns named like forecaster's temporary columns
# ------------------------------------------------------------------------------------------

TEMPORARY = [
    "_last",
    "_k",
    "_fitted",
    "_present",
    "_from_end",
    "__start__",
    "__end__",
    "__actual__",
    "__forecast__",
    "__mase_scale__",
    "__error_scale__",
    "y_true",
]
ROLES = {
    "id": lambda n: {"id_col": n},
    "t": lambda n: {"time_col": n},
    "y": lambda n: {"target": n},
    "x": lambda n: {"covariates": [n]},
}


@pytest.fixture(scope="module")
def reference():
    gappy = FRAME.filter(pl.col("t") != 20)
    reference = model(missing="ffill", covariates=["x"]).fit(gappy)
    with pytest.warns(ForecasterWarning, match="in-sample"):
        return reference.predict(FRAME), reference.score(FRAME)


@pytest.mark.filterwarnings("ignore:score. the held-out steps:forecaster.ForecasterWarning")
@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("name", TEMPORARY)
def test_columns_named_like_temporary_columns_work_as_any_name(reference, name, role):
    frame = FRAME.rename({role: name})
    params = {"covariates": ["x"], **ROLES[role](name), "missing": "ffill"}
    renamed = model(**params).fit(frame.filter(pl.col(params.get("time_col", "t")) != 20))
    forecast, score = reference
    assert renamed.predict(frame).rename({name: role} if role != "x" else {}).equals(forecast)
    assert renamed.score(frame) == score


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("name", ["__start__", "__end__", "__mase_scale__", "_fitted"])
def test_backtests_refit_on_columns_named_like_temporary_columns(name, role):
    frame = FRAME.rename({role: name})
    params = {"covariates": ["x"], **ROLES[role](name)}
    result = backtest(model(**params), frame, folds=2, refit=True)
    plain = backtest(model(covariates=["x"]), FRAME, folds=2, refit=True)
    assert result.aggregate.drop("target").equals(plain.aggregate.drop("target"))


@pytest.mark.parametrize("name", ["__train_end__", "__train_end___1"])
def test_a_model_whose_id_is_named_like_the_keys_file_columns_saves_and_loads(
    name, tmp_path, tree_guard
):
    frame = FRAME.rename({"id": name})
    named = model(id_col=name).fit(frame)
    guard = tree_guard(tmp_path, allowed=("m",))
    loaded = forecaster.load(named.save(tmp_path / "m"))  # was: a raw ColumnNotFoundError
    guard.assert_unchanged()
    assert loaded.predict(frame).equals(named.predict(frame))
    assert loaded.train_end_.equals(named.train_end_)  # score's held-out check still works
    with pytest.raises(DataValidationError, match=r"fitted up to t=39"):
        loaded.score(frame.filter(pl.col("t") < 30))


def test_a_future_covariate_named_like_a_temporary_column():
    frame = FRAME.with_columns(_present=pl.col("x"))
    future = pl.DataFrame({"id": ["a"] * 3 + ["b"] * 3, "t": [40, 41, 42] * 2, "_present": 1.0})
    named = model(future_covariates=["_present"], head="direct").fit(frame)
    plain = model(future_covariates=["x"], head="direct").fit(FRAME)
    assert named.predict(frame, future=future).equals(
        plain.predict(FRAME, future=future.rename({"_present": "x"}))
    )


def test_an_extra_column_named_like_the_series_column_without_an_id():
    one = FRAME.filter(pl.col("id") == "a").drop("id")
    extra = one.with_columns(__series__=pl.col("x"))
    assert (
        model(id_col=None)
        .fit(extra)
        .predict(extra)
        .equals(model(id_col=None).fit(one).predict(one))
    )


# ------------------------------------------------------------------------------------------
# backtests: a memory bound before allocating; score's keys
# ------------------------------------------------------------------------------------------


def test_a_seasonal_period_longer_than_the_history_at_an_origin_warns_and_gives_nan(fitted):
    # fold 0's origin has 34 values per series, fold 1's 37: m=36 has no seasonal naive at fold 0
    with pytest.warns(ForecasterWarning, match=r"2 of the 4 \(fold, series\) origins have fewer"):
        result = backtest(fitted, FRAME, folds=2, m=36, metrics=["mae"])
    snaive = result.baselines.filter(pl.col("baseline") == "snaive").sort("fold")
    assert snaive["mae"].is_nan().to_list() == [True, True, False, False]
    assert result.baselines.filter(pl.col("baseline") == "naive")["mae"].is_finite().all()
    # pooled over the points the seasonal naive forecast (fold 1's), the model's MAE in the
    # skill ratio too, and n_snaive says how many (was NaN beside a finite mase_snaive)
    overall = result.aggregate.row(0, named=True)
    assert overall["n_snaive"] * 2 == overall["n"]
    fold_1 = result.score("fold").filter(pl.col("fold") == 1).row(0, named=True)
    assert overall["n_snaive"] == fold_1["n"] == fold_1["n_snaive"]
    assert overall["mae_skill_snaive"] == pytest.approx(fold_1["mae_skill_snaive"])


def test_a_backtest_too_large_for_memory_is_refused_before_allocating():
    n = 200_100
    long = pl.DataFrame({"t": np.arange(n), "y": np.sin(np.arange(n) / 7)})
    estimator = model(id_col=None, horizon=1000, head="direct")
    tracemalloc.start()
    try:
        with pytest.raises(
            DataValidationError,
            match=r"backtest's forecasts \(199,000,000 rows.*folds=199,000 x 1 series x "
            r"horizon=1,000",
        ):
            backtest(estimator, long, folds=199_000, step=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20


@pytest.fixture(scope="module")
def result(fitted):
    return backtest(fitted, FRAME, folds=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": ["fold", "fold"]}, r"by lists \['fold'\] more than once"),
        ({"metrics": ["mae", "mae"]}, r"metrics lists \['mae'\] more than once"),
        ({"by": "target"}, r"'target' is the target of each row"),
        ({"by": ["nope"]}, r"Cannot group by \['nope'\]"),
        ({"metrics": ["mape", "owa"]}, r"Unknown metrics \['owa'\]"),
        ({"by": [1]}, r"by must be a column name"),
    ],
    ids=["by twice", "metric twice", "by target", "unknown by", "unknown metric", "by int"],
)
def test_backtest_score_refuses_repeated_or_unknown_keys(result, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        result.score(**kwargs)


def test_backtest_score_by_step_and_fold(result):
    scores = result.score(["fold", "step"], metrics=["mae"])
    assert scores.columns == [
        "fold", "step", "target", "n", "n_naive", "mae", "mae_naive", "mae_skill_naive"
    ]  # fmt: skip
    assert scores["n"].to_list() == [2] * 6


# ------------------------------------------------------------------------------------------
# cross-validation that trains on the future of its test rows
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cv", [3, KFold(3), KFold(4)], ids=str)
def test_cross_validation_training_on_later_rows_is_refused(cv):
    with pytest.raises(DataValidationError, match=r"fitted on later data .*TemporalSplit\('t'"):
        cross_val_score(model(), FRAME, cv=cv, error_score="raise")


def test_cross_validation_on_other_series_is_not_a_leak():
    # KFold(2) on two series of one length: each fold trains on one series and forecasts the
    # other, a series the model has not seen (scaled on its own history)
    scores = cross_val_score(model(), FRAME, cv=KFold(2), error_score="raise")
    assert np.isfinite(scores).all()


def test_scoring_a_frame_that_ends_before_the_fitted_data_is_refused(fitted):
    with pytest.raises(DataValidationError, match=r"fitted up to t=39, held-out steps 27 to 29"):
        fitted.score(FRAME.filter(pl.col("t") < 30))


def test_temporal_split_cross_validation_scores():
    scores = cross_val_score(model(), FRAME, cv=TemporalSplit("t", 2, 3), error_score="raise")
    assert np.isfinite(scores).all()


def test_an_in_sample_score_still_warns(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        with pytest.raises(ForecasterWarning, match=r"all in the data .*in-sample score"):
            fitted.score(FRAME)


# ------------------------------------------------------------------------------------------
# predict(level=...) / predict(quantiles=...) of the wrong type or value (issue 13): our error
# naming the argument, before any forecast, and the fitted model forecasts as before
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quantile_fitted() -> RNNForecaster:
    return model(loss="quantile").fit(FRAME)


JUNK_INTERVALS = {
    "str": "80",
    "bytes": b"80",
    "dict": {80: 1},
    "set": {80, 95},
    "bool": True,
    "bools": [True],
    "nan": float("nan"),
    "nans": [float("nan")],
    "inf": [float("inf")],
    "negative": -5,
    "zero": 0,
    "hundred": [100],
    "empty": [],
    "nested": [[80]],
    "none inside": [None],
    "duplicates": [80, 80],
    "text inside": [80, "95"],
    "generator": (v for v in [80]),
}


@pytest.mark.parametrize("argument", ["level", "quantiles"])
@pytest.mark.parametrize("case", list(JUNK_INTERVALS))
def test_junk_levels_and_quantiles_are_refused_naming_the_argument(quantile_fitted, argument, case):
    value = JUNK_INTERVALS[case]
    if case == "generator":
        value = (v for v in [80])  # a fresh one: a generator is read once
    with pytest.raises(DataValidationError, match=rf"^{argument} must be .*got "):
        quantile_fitted.predict(FRAME, **{argument: value})


@pytest.mark.parametrize("value", [1.5, [-0.5], [0.1, 1.5], [50, 0.5]])
def test_quantiles_outside_zero_one_are_refused_not_read_as_percent(quantile_fitted, value):
    with pytest.raises(DataValidationError, match=r"^quantiles must be .*\(0, 1\)"):
        quantile_fitted.predict(FRAME, quantiles=value)


def test_a_refused_level_leaves_the_model_forecasting_as_before(quantile_fitted):
    before = quantile_fitted.predict(FRAME, level=[80])
    for value in JUNK_INTERVALS.values():
        with contextlib.suppress(DataValidationError):
            quantile_fitted.predict(FRAME, level=value)
    assert quantile_fitted.predict(FRAME, level=[80]).equals(before)


@pytest.mark.parametrize("argument", ["level", "quantiles"])
def test_an_uncalibrated_point_model_refuses_intervals_by_name(fitted, argument):
    value = [80] if argument == "level" else [0.1]
    with pytest.raises(DataValidationError, match=rf"predict\({argument}=\.\.\.\).*calibrat"):
        fitted.predict(FRAME, **{argument: value})
    with pytest.raises(DataValidationError, match=rf"^{argument} must be"):
        fitted.predict(FRAME, **{argument: "80"})  # the type first, then the calibration


# ------------------------------------------------------------------------------------------
# calibrate: normalize, rolling, per_series; a failed recalibration; too few observed windows
# ------------------------------------------------------------------------------------------

LONG = panel(120)


@pytest.fixture(scope="module")
def early_fit() -> RNNForecaster:
    """A point model fitted on the first 40 steps, so calibration origins after them are out
    of sample."""
    return model().fit(LONG.filter(pl.col("t") < 40))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("normalize", 1),
        ("normalize", "yes"),
        ("normalize", True),
        ("normalize", ["series"]),
        ("per_series", "yes"),
        ("rolling", 0),
        ("rolling", -3),
        ("rolling", 2.5),
        ("rolling", "720"),
        ("rolling", True),
        ("rolling", 10**19),  # was: OverflowError from NumPy at predict
    ],
)
def test_calibrate_refuses_junk_options_by_name(early_fit, argument, value, tmp_path, tree_guard):
    guard = tree_guard(tmp_path)
    with pytest.raises(DataValidationError, match=rf"^{argument}"):
        early_fit.calibrate(LONG, folds=10, step=2, **{argument: value})
    assert "conformal_" not in early_fit.__dict__
    guard.assert_unchanged()


def test_a_failed_recalibration_keeps_the_former_one(early_fit):
    early_fit.calibrate(LONG, folds=10, step=2)
    before = early_fit.predict(LONG, level=80)
    with pytest.raises(DataValidationError):
        early_fit.calibrate(LONG, folds=10_000)
    with pytest.raises(DataValidationError):
        early_fit.calibrate(LONG.filter(pl.col("t") < 30), folds=2)  # inside the training data
    assert early_fit.predict(LONG, level=80).equals(before)
    del early_fit.conformal_


def test_rolling_with_too_few_observed_windows_names_the_level(early_fit):
    early_fit.calibrate(LONG, folds=30, step=2, rolling=4, origins="calendar")
    with pytest.raises(DataValidationError, match=r"level=95: .*too few.*with rolling >= 10 for"):
        early_fit.predict(LONG, cutoff=[100], level=95)
    assert early_fit.predict(LONG, cutoff=[100], level=50).height == 2 * 3
    del early_fit.conformal_

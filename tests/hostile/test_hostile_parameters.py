"""Hostile parameters: wrong types, impossible values, absurd sizes, conflicting columns.

Every parameter goes through one table of rules (``forecaster._validation.PARAMETERS``); sizes
that would not fit in memory are refused before anything is allocated. Each case checks the
error type and that the message names the parameter and what was expected.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import tracemalloc
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster import (
    DataValidationError,
    ForecasterWarning,
    RNNForecaster,
    RNNRegressor,
    backtest,
)
from forecaster._validation import PARAMETERS
from forecaster.networks import (
    RecurrentNet,
    check_network_config,
    count_parameters,
    network_from_config,
    parameter_count,
)

SMALL = {"max_epochs": 1, "random_state": 0, "progress": False, "device": "cpu"}


def frame(n: int = 60) -> pl.DataFrame:
    start = dt.datetime(2024, 1, 1)
    t = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    return pl.DataFrame({"id": "a", "time": t, "y": np.sin(np.arange(n) / 4), "x": 1.0})


def forecaster(**kw) -> RNNForecaster:
    params = {"target": "y", "id_col": "id", "lookback": 8, "horizon": 3, "hidden_size": 4}
    return RNNForecaster(**{**params, "segment_length": 4, **SMALL, **kw})


# ------------------------------------------------------------------------------------------
# sizes that would allocate absurd memory: refused before allocating
# ------------------------------------------------------------------------------------------

ABSURD = [
    ({"hidden_size": 10**9}, r"hidden_size=1,000,000,000"),
    ({"segment_length": 10**9}, r"segment_length=1,000,000,000"),
    ({"lookback": 10**9}, r"lookback=1,000,000,000"),
    ({"horizon": 10**9}, r"horizon=1,000,000,000"),
    ({"num_layers": 10**6}, r"num_layers=1,000,000"),
    ({"n_ensemble": 10**6}, r"n_ensemble=1,000,000"),
    ({"batch_size": 10**12}, r"batch_size must be an integer <= 2,147,483,647"),
    ({"hidden_size": 1e9}, r"hidden_size must be an integer >= 1, got 1000000000.0 \(a float\)"),
    ({"segment_length": 1e9}, r"segment_length must be an integer .* \(a float\)"),
    ({"lookback": 1e9}, r"lookback must be an integer .* \(a float\)"),
]


@pytest.mark.parametrize(("params", "message"), ABSURD, ids=lambda p: str(p)[:30])
def test_absurd_sizes_are_refused_before_allocating(params, message):
    # default network sizes (hidden 128) so that every case is beyond any machine's memory
    est = RNNForecaster(target="y", id_col="id", **{**SMALL, **params})
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(DataValidationError, match=message) as error:
            est.fit(frame())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 50 * 2**20  # nothing of the estimated size was allocated
    text = str(error.value)
    if "estimated" in text:  # a memory refusal names the estimate and the machine's limit
        assert "physical memory" in text or "CUDA device" in text


def test_memory_check_is_reachable_without_data():
    with pytest.raises(DataValidationError, match=r"parameters would take an estimated .* EB"):
        RNNForecaster(target="y", hidden_size=10**9).validate_params()
    config = {"n_features": 1, "n_targets": 1, "lookback": 24, "horizon": 6, "hidden_size": 10**9}
    with pytest.raises(DataValidationError, match=r"more than this machine's physical memory"):
        network_from_config(config)
    with pytest.raises(DataValidationError, match=r"n_members=1,000,000"):
        network_from_config({**config, "hidden_size": 128, "n_members": 10**6})


def test_lookback_longer_than_every_series():
    with pytest.raises(DataValidationError, match=r"Every series is shorter than the 203 rows"):
        forecaster(lookback=200).fit(frame())


@settings(max_examples=30, deadline=None)
@given(
    n_features=st.integers(1, 4),
    n_future=st.integers(0, 2),
    lookback=st.integers(1, 30),
    horizon=st.integers(1, 12),
    cell=st.sampled_from(["rnn", "lstm", "gru"]),
    head=st.sampled_from(["direct", "seq2seq", "recursive", "segment"]),
    hidden_size=st.integers(2, 9),
    num_layers=st.integers(1, 3),
    segment_length=st.integers(1, 8),
    normalization=st.sampled_from(["none", "last", "revin"]),
    channel_independent=st.booleans(),
)
def test_parameter_estimate_is_exact(n_features, n_future, **kw):
    n_features += n_future
    config = check_network_config(
        {"n_features": n_features, "n_targets": 1, "n_future": n_future, **kw}
    )
    assert parameter_count(config) == count_parameters(RecurrentNet(**config))


# ------------------------------------------------------------------------------------------
# strict types through the one table
# ------------------------------------------------------------------------------------------

BAD = [
    ({"max_epochs": True}, r"max_epochs must be an integer >= 1, got True \(a bool\)"),
    ({"horizon": 5.0}, r"horizon must be an integer >= 1, got 5.0 \(a float\).*horizon=5"),
    ({"lr": float("nan")}, r"lr must be a finite number in \(0, 10\], got nan"),
    ({"dropout": float("inf")}, r"dropout must be a finite number in \[0, 1\), got inf"),
    ({"max_epochs": "two"}, r"max_epochs must be an integer >= 1, got 'two' \(a string\)"),
    ({"batch_size": "64"}, r"batch_size must be .* \(a string\). Pass a number, not text"),
    (
        {"cell": "lstmm"},
        r"cell must be one of 'rnn', 'lstm', 'gru', got 'lstmm' \(did you mean 'lstm'",
    ),
    ({"head": "Segment"}, r"head must be one of .*got 'Segment' \(did you mean 'segment'"),
    ({"cell": ["lstm"]}, r"cell must be .*got \['lstm'\] \(a list\). Pass the string itself"),
    ({"time_col": ["time"]}, r"time_col must be a column name .* Pass the name itself"),
    ({"random_state": "a"}, r"random_state must be an integer >= 0 or None, got 'a'"),
    ({"random_state": 1.5}, r"random_state must be an integer .* got 1.5 \(a float\)"),
    ({"random_state": -1}, r"random_state must be an integer >= 0 or None, got -1"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
    ({"hidden_size": -8}, r"hidden_size must be an integer >= 1, got -8"),
    ({"validation_size": 1.5}, r"validation_size must be .* fraction must be below 1"),
    ({"patience": 0}, r"patience must be an integer >= 1 or None, got 0"),
    ({"device": "tpu"}, r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"),
    ({"missing": "drop"}, r"missing must be one of 'error', 'ffill', 'zero', 'interpolate'"),
    ({"freq": "1 fortnight"}, r"freq '1 fortnight' is not understood"),
    ({"checkpoint_dir": 3}, r"checkpoint_dir must be a folder path"),
    ({"progress": "yes"}, r"progress must be True or False or None, got 'yes' \(a string\)"),
    ({"covariates": "y"}, r"Column 'y' is used both as target and as covariate"),
    ({"covariates": "time"}, r"Column 'time' is used both as covariate and as time"),
    ({"future_covariates": "id"}, r"Column 'id' is used both as future covariate and as id"),
    ({"target": ["y", "y"]}, r"target must be .*\['y'\] is listed more than once"),
    ({"covariates": ["x", "x"]}, r"covariates must be .*\['x'\] is listed more than once"),
    ({"channel_independent": False}, r"channel_independent=False is not possible with head"),
    ({"nonlinearity": "relu"}, r"nonlinearity='relu' only applies to cell='rnn'"),
]


@pytest.mark.parametrize(("params", "message"), BAD, ids=lambda p: str(p)[:30])
def test_bad_parameters_name_the_parameter(params, message):
    est = forecaster(**params)
    with pytest.raises(DataValidationError, match=message):
        est.validate_params()  # what a pipeline spec's [model] keys go through at load
    with pytest.raises(DataValidationError, match=message):
        est.fit(frame())


def test_unavailable_cuda_device_is_a_clear_error_at_fit():
    est = forecaster(device="cuda:7")
    est.validate_params()  # a device name is valid anywhere: a saved model stays loadable
    with pytest.raises(DataValidationError, match=r"device='cuda:7'.*(not available|CUDA devic)"):
        est.fit(frame())


def test_regressor_has_the_same_table():
    X = np.zeros((8, 5, 1), dtype=np.float32)
    y = np.zeros(8)
    for params, message in [
        ({"max_epochs": 2.0}, r"max_epochs must be an integer >= 1, got 2.0 \(a float\)"),
        ({"validation_fraction": 0.95}, r"validation_fraction must be a finite number"),
        ({"loss": "mape"}, r"loss must be one of 'mse', 'mae', 'huber', got 'mape'"),
    ]:
        est = RNNRegressor(**params)
        with pytest.raises(DataValidationError, match=message):
            est.validate_params()
        with pytest.raises(DataValidationError, match=message):
            est.fit(X, y)


def test_every_parameter_is_a_row_of_the_table():
    for est in (RNNForecaster(target="y"), RNNRegressor()):
        assert set(est.get_params()) <= set(PARAMETERS)
        est.validate_params()  # the defaults pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1.0}, r"folds must be an integer >= 1, got 1.0 \(a float\)"),
        ({"refit": "yes"}, r"refit must be False \(fit once\), True .* got 'yes' \(a string\)"),
        ({"window": "rolling"}, r"window must be one of 'expanding', 'sliding', got 'rolling'"),
        ({"m": 0}, r"m \(the seasonal period\) must be an integer >= 1, got 0"),
    ],
)
def test_backtest_arguments_use_the_table(kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        backtest(forecaster(), frame(), **kwargs)


# ------------------------------------------------------------------------------------------
# property: any value for any parameter is accepted or refused naming it
# ------------------------------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.text(max_size=3), max_size=3),
    st.sampled_from(["auto", "gru", "lstm", "segment", "direct", "none", "1h", "y", "x"]),
)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(RNNForecaster(target="y").get_params())), value=ANY_VALUE)
def test_any_value_is_accepted_or_refused_by_name(name, value):
    est = RNNForecaster(target="y").set_params(**{name: value})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)
            est.validate_params()
    except DataValidationError as error:
        text = str(error)
        columns = ("target", "covariates", "future_covariates", "id_col", "time_col")
        assert text.startswith(name) or (name in columns and "Column" in text), text
    else:  # accepted: a value of the documented kind, never NaN or infinite
        PARAMETERS[name].check(name, value)
        assert not (isinstance(value, float) and not math.isfinite(value)), (name, value)

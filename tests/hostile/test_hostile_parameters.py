"""Hostile parameters: wrong types, impossible values, absurd sizes, conflicting columns.

Every parameter goes through one table of rules (``forecaster._validation.PARAMETERS``); sizes
that would not fit in memory are refused before anything is allocated. Each case checks the
error type and that the message names the parameter and what was expected.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
import tracemalloc
import warnings
from pathlib import Path

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
from forecaster.data.frequency import Frequency
from forecaster.nn import (
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
    ({"batch_size": 10**12}, r"batch_size must be an integer <= 536,870,911"),
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
    linear_skip=st.booleans(),
)
def test_parameter_estimate_is_exact(n_features, n_future, **kw):
    n_features += n_future
    kw["linear_skip"] = kw["linear_skip"] and kw["head"] != "recursive"
    config = check_network_config(
        {"n_features": n_features, "n_targets": 1, "n_future": n_future, **kw}
    )
    assert parameter_count(config) == count_parameters(RecurrentNet(**config))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"head": "direct", "past_covariates": False}, r"past_covariates=False only rebuilds"),
        ({"past_covariates": "no"}, r"past_covariates must be True or False, got 'no'"),
        ({"head": "recursive", "linear_skip": True}, r"linear_skip=True is not possible"),
        ({"linear_skip": None}, r"linear_skip must be True, False or 'auto', got None"),
        ({"linear_skip": 1}, r"linear_skip must be True, False or 'auto', got 1 \(an int"),
        ({"linear_skip": "auto"}, r"linear_skip must be True or False for a network"),
        ({"lookback": "auto"}, r"lookback must be an integer >= 1 for a network; received 'auto'"),
    ],
)
def test_past_covariates_flag_is_for_legacy_segment_networks_only(kw, message):
    with pytest.raises(DataValidationError, match=message):
        RecurrentNet(
            **{"n_features": 3, "n_targets": 1, "lookback": 8, "horizon": 2, "hidden_size": 4, **kw}
        )


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
    (
        {"baseline": "Auto"},
        r"baseline must be one of 'auto', 'best', 'none', got 'Auto' \(did you mean",
    ),
    ({"baseline": None}, r"baseline must be one of 'auto', 'best', 'none', got None"),
    ({"baseline": True}, r"baseline must be one of 'auto', 'best', 'none', got True \(a bool\)"),
    ({"baseline": ["auto"]}, r"baseline must be .*got \['auto'\] \(a list\). Pass the string"),
    ({"baseline": "seasonal"}, r"baseline must be one of 'auto', 'best', 'none', got 'seasonal'"),
    ({"missing": "drop"}, r"missing must be one of 'error', 'ffill', 'zero', 'interpolate'"),
    ({"freq": "1 fortnight"}, r"freq '1 fortnight' is not understood"),
    ({"checkpoint_dir": 3}, r"checkpoint_dir must be a folder path"),
    ({"progress": "yes"}, r"progress must be True or False or None, got 'yes' \(a string\)"),
    ({"covariates": "y"}, r"Column 'y' is used both as target and as covariate"),
    ({"covariates": "time"}, r"Column 'time' is used both as covariate and as time"),
    ({"future_covariates": "id"}, r"Column 'id' is used both as future covariate and as id"),
    ({"target": ["y", "y"]}, r"target must be .*\['y'\] is listed more than once"),
    (
        {"loss": "quantile", "quantiles": [0.1, 0.1000000001, 0.5, 0.9]},
        r"quantiles must be .*0\.1 and 0\.1000000001 are the same quantile given twice",
    ),
    ({"covariates": ["x", "x"]}, r"covariates must be .*\['x'\] is listed more than once"),
    ({"channel_independent": False}, r"channel_independent=False is not possible with head"),
    ({"nonlinearity": "relu"}, r"nonlinearity='relu' only applies to cell='rnn'"),
    ({"linear_skip": "yes"}, r"linear_skip must be True, False or 'auto', got 'yes'"),
    ({"lookback": "automatic"}, r"lookback must be an integer >= 1 or 'auto', got 'automatic'"),
    ({"lookback": "Auto"}, r"lookback must be an integer >= 1 or 'auto', got 'Auto'"),
    ({"head": "recursive", "linear_skip": True}, r"linear_skip=True is not possible with head"),
    ({"static_covariates": 5}, r"static_covariates must be .*got 5"),
    ({"static_covariates": "y"}, r"Column 'y' is used both as target and as static covariate"),
    ({"static_covariates": "time"}, r"Column 'time' is used both as time and as static covariate"),
    (
        {"covariates": "x", "static_covariates": "x"},
        r"Column 'x' is used both as covariate and as static covariate",
    ),
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
        ({"loss": "mape"}, r"loss must be one of 'mse', 'mae', 'huber', 'quantile', got 'mape'"),
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
        named = text.startswith(name) or f"{name}=" in text  # memory: "It grows with n=..."
        assert named or (name in columns and "Column" in text), text
    else:  # accepted: a value of the documented kind, never NaN or infinite
        PARAMETERS[name].check(name, value)
        assert not (isinstance(value, float) and not math.isfinite(value)), (name, value)


# ------------------------------------------------------------------------------------------
# numpy integers are integers everywhere (one rule in the table)
# ------------------------------------------------------------------------------------------

INTEGER_PARAMS = [
    name
    for name, rule in PARAMETERS.items()
    if type(rule).__name__ == "Integer" and name in RNNForecaster(target="y").get_params()
]


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("name", sorted(INTEGER_PARAMS))
def test_numpy_integers_are_accepted_like_ints(name, kind):
    value = {"random_state": 0, "segment_length": 4, "lookback": 8, "hidden_size": 4}.get(name, 1)
    est = forecaster(**{name: kind(value)})
    est.validate_params()
    assert PARAMETERS[name].check(name, kind(value)) == value


def test_numpy_integer_freq_gives_the_same_model_as_an_int():
    t = np.arange(40)
    data = pl.DataFrame({"id": "a", "t": t, "y": np.sin(t / 3)})
    kw = {"time_col": "t", "lookback": 8, "horizon": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        by_numpy = forecaster(freq=np.int64(1), **kw).fit(data)
        by_int = forecaster(freq=1, **kw).fit(data)
    assert str(by_numpy.freq_) == "1i" and by_numpy.predict(data).equals(by_int.predict(data))


# ------------------------------------------------------------------------------------------
# sizes derived from a parameter stay valid; ensembles cut by max_time are said and recorded
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [2**29, 2**31 - 1, np.int64(2**30)])
def test_batch_size_is_bounded_so_validation_batches_stay_valid(batch_size):
    with pytest.raises(DataValidationError, match=r"batch_size must be an integer <= 536,870,911"):
        forecaster(batch_size=batch_size).validate_params()
    forecaster(batch_size=2**29 - 1).validate_params()


def test_ensemble_cut_by_max_time_warns_and_records_the_members():
    with pytest.warns(ForecasterWarning, match=r"ran out after 1 of the n_ensemble=3 networks"):
        est = forecaster(n_ensemble=3, max_time=1e-9).fit(frame())
    assert est.n_members_ == 1
    assert forecaster(n_ensemble=2).fit(frame()).n_members_ == 2
    assert not hasattr(forecaster(), "n_members_")


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ([1], r"callbacks\[0\] must be callable.*got 1 \(an int\)"),
        (print, r"callbacks must be a list of callables.*Pass callbacks=\[print\]"),
        (lambda record: None, r"callbacks must be a list of callables"),
        ([lambda record: None], r"callbacks\[0\] .* cannot be called as callback\(record, "),
        ([lambda a, b, c: None], r"missing a required argument: 'c'"),
        ("print", r"callbacks must be a list of callables, got 'print' \(a string\)"),
        ({"cb": print}, r"callbacks must be a list of callables"),
    ],
    ids=["int", "print", "lambda", "one-arg", "three-args", "text", "dict"],
)
@pytest.mark.parametrize("kind", ["forecaster", "regressor"])
def test_bad_callbacks_are_refused_before_training(kind, callbacks, message):
    if kind == "forecaster":
        est, args = forecaster(), (frame(),)
    else:
        est = RNNRegressor(hidden_size=4, **SMALL)
        args = (np.zeros((8, 5, 1), np.float32), np.zeros(8))
    started = time.perf_counter()
    with pytest.raises(DataValidationError, match=message):
        est.fit(*args, callbacks=callbacks)
    assert not hasattr(est, "network_") and time.perf_counter() - started < 2


def test_good_callbacks_still_run_every_epoch():
    seen = []
    forecaster(max_epochs=2).fit(frame(), callbacks=[lambda record, net: seen.append(record.epoch)])
    assert len(seen) == 2


# ------------------------------------------------------------------------------------------
# aliases with a fixed cell
# ------------------------------------------------------------------------------------------


def test_fixed_cell_classes_refuse_another_cell_and_clone():
    from sklearn.base import clone

    from forecaster import GRUForecaster, LSTMForecaster

    with pytest.raises(DataValidationError, match=r"fixes cell='lstm', got cell='gru'"):
        LSTMForecaster(target="y", cell="gru")
    same = LSTMForecaster(target="y", cell="lstm", hidden_size=4)
    assert same.cell == "lstm" and "cell" not in same.get_params()
    copy = clone(GRUForecaster(target="y", hidden_size=4))
    assert type(copy) is GRUForecaster and copy.cell == "gru" and copy.hidden_size == 4


# ------------------------------------------------------------------------------------------
# other entry points
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tickers", "message"),
    [
        (5, r"tickers must be a ticker \(text\), a list of tickers or None, got 5 \(an int\)"),
        (b"MSFT", r"got b'MSFT' \(bytes\).*Decode it first, e.g. tickers='MSFT'"),
        ([b"MSFT"], r"tickers must be strings; received b'MSFT' \(bytes\)"),
        ({"MSFT": 1}, r"got \{'MSFT': 1\} \(a dict\)"),
        (["MSFT", 3], r"received 3 \(an int\)"),
    ],
)
def test_load_stocks_refuses_tickers_that_are_not_text(tickers, message):
    from forecaster.datasets import load_stocks

    with pytest.raises(DataValidationError, match=message):
        load_stocks(tickers)


@pytest.mark.parametrize(
    ("gap", "message"),
    [
        (10**12, r"gap must be an integer <= 2,147,483,647, got 1,000,000,000,000"),
        (10**6, r"gap=1,000,000, fold 0's model trains on at most 0 rows .*gap is longer"),
    ],
)
def test_backtest_gap_beyond_the_data(gap, message):
    with pytest.raises(DataValidationError, match=message):
        backtest(forecaster(), frame(), folds=2, gap=gap)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_fft": 2**24}, r"n_fft must be an integer <= 65,536, got 16,777,216"),
        ({"hop_length": 2**20}, r"hop_length must be an integer <= 65,536"),
        ({"n_mels": 10**5, "n_mfcc": 13}, r"n_mels must be an integer <= 1,024"),
        ({"n_mfcc": 5000}, r"n_mfcc must be an integer <= 1,024"),
        ({"sample_rate": 10**9}, r"sample_rate must be an integer <= 1,000,000"),
    ],
)
def test_audio_feature_sizes_are_bounded_before_computing(params, message):
    from forecaster.datasets import load_audio_mfcc

    tracemalloc.start()
    try:
        with pytest.raises(DataValidationError, match=message):
            load_audio_mfcc(**params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20


# ------------------------------------------------------------------------------------------
# the memory limit: physical memory, RLIMIT_AS and the cgroup's, whichever is smallest
# ------------------------------------------------------------------------------------------

BIG = {"hidden_size": 4096}  # about 270 MB of weights: under any machine's RAM, over 64 MB


def test_address_space_limit_is_the_bound(monkeypatch):
    import resource

    from forecaster._validation import memory_limit

    statm = Path("/proc/self/statm").read_text().split()
    used = int(statm[0]) * os.sysconf("SC_PAGE_SIZE")
    real = resource.getrlimit

    def limited(which):
        return (
            (used + 64 * 2**20, resource.RLIM_INFINITY)
            if which == resource.RLIMIT_AS
            else real(which)
        )

    monkeypatch.setattr(resource, "getrlimit", limited)
    assert "RLIMIT_AS" in memory_limit()[1]
    with pytest.raises(DataValidationError, match=r"more than the address-space limit .*ulimit -v"):
        forecaster(**BIG).validate_params()


def test_cgroup_memory_limit_is_the_bound(monkeypatch, tmp_path):
    from forecaster._validation import memory as _validation

    for folder, name, usage in (
        (tmp_path, "memory.max", "memory.current"),
        (tmp_path / "unified", "memory.max", "memory.current"),
        (tmp_path / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ):
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(f"{96 * 2**20}\n")
        (folder / usage).write_text(f"{32 * 2**20}\n")
    monkeypatch.setattr(_validation, "_CGROUP_ROOT", str(tmp_path))
    limit, where = _validation.memory_limit()
    assert limit == 64 * 2**20 and "cgroup" in where
    with pytest.raises(DataValidationError, match=r"memory limit of this process's cgroup"):
        forecaster(**BIG).validate_params()
    forecaster().validate_params()  # a small network still fits


def test_audio_features_beyond_the_memory_limit_are_refused_per_clip(monkeypatch):
    from forecaster._validation import memory as _validation
    from forecaster.datasets import load_audio_mfcc

    monkeypatch.setattr(_validation, "memory_limit", lambda: (10_000, "a 10 kB test limit"))
    with pytest.raises(DataValidationError, match=r"The MFCCs \(n_fft=256.*audio file .*wav"):
        load_audio_mfcc()


def test_an_allocation_failure_while_training_names_the_parameters(monkeypatch):
    from forecaster import ForecasterError
    from forecaster.estimators import network_training as estimators

    def failing(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:116] . DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 123456789 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(estimators, "train", failing)
    with pytest.raises(
        ForecasterError, match=r"Ran out of memory .*hidden_size=4.*batch_size="
    ) as error:
        forecaster().fit(frame())
    assert isinstance(error.value, MemoryError)

    def broken(*args, **kwargs):
        raise RuntimeError("some other torch error")

    monkeypatch.setattr(estimators, "train", broken)
    with pytest.raises(RuntimeError, match="some other torch error"):
        forecaster().fit(frame())


# ------------------------------------------------------------------------------------------
# freq: one unambiguous grammar
# ------------------------------------------------------------------------------------------


def monthly(n: int = 48) -> pl.DataFrame:
    months = pl.date_range(
        dt.date(2020, 1, 1), dt.date(2020, 1, 1) + dt.timedelta(days=31 * n), "1mo", eager=True
    )[:n]
    return pl.DataFrame({"id": "a", "time": months, "y": np.sin(np.arange(n) / 4)})


@pytest.mark.parametrize("freq", ["1M", "M", "m", "3M", "MS", "1Ms", " 1M "])
def test_month_or_minute_ambiguity_is_refused_naming_both(freq):
    started = time.perf_counter()
    with pytest.raises(DataValidationError, match=r"is ambiguous.*Pass '1mo' for months or '1m'"):
        forecaster(freq=freq, missing="ffill").fit(monthly())
    assert time.perf_counter() - started < 5  # refused before any gap is filled


@pytest.mark.parametrize(
    ("freq", "instead"),
    [("ME", "1mo"), ("QE", "1q"), ("YS", "1y"), ("A", "1y"), ("T", "1m"), ("L", "1ms")],
)
def test_pandas_only_aliases_say_what_to_pass(freq, instead):
    with pytest.raises(DataValidationError, match=rf"is a pandas alias: pass '{instead}'"):
        forecaster(freq=freq).validate_params()


@pytest.mark.parametrize(
    ("freq", "parsed"),
    [
        ("1MO", "1mo"),
        ("H", "1h"),
        ("15MIN", "15m"),
        ("15min", "15m"),
        ("15m", "15m"),
        ("B", "1bd"),
        ("2BD", "2bd"),
        ("D", "1d"),
        ("w", "1w"),
        ("1Q", "1q"),
        ("y", "1y"),
        ("ms", "1ms"),
        ("30S", "30s"),
        ("10ns", "10ns"),
        (" 3h ", "3h"),
        (5, "5i"),
        ("2I", "2i"),
    ],
)
def test_unambiguous_spellings_are_accepted_in_any_case(freq, parsed):
    assert str(Frequency.parse(freq)) == parsed


@pytest.mark.parametrize("freq", ["fortnightly", "1h30m", "1.5h", "0h", "-1d", "1 h", "h1", ""])
def test_frequencies_outside_the_grammar_are_refused(freq):
    with pytest.raises(DataValidationError, match=r"freq"):
        Frequency.parse(freq)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789 mMsShHdDwWoOqQyYbBiInNuUlLtTeE.-", max_size=6))
def test_any_freq_text_parses_to_itself_or_is_refused(text):
    try:
        freq = Frequency.parse(text)
    except DataValidationError:
        return
    assert Frequency.parse(str(freq)) == freq
    assert freq.n >= 1
    if "M" in text and freq.unit in ("m", "ms"):  # a capital M is a minute only in "MIN"
        assert text.strip().lower().endswith("min")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"static_cardinalities": [0]}, r"static_cardinalities must be a list of integers"),
        ({"static_cardinalities": "abc"}, r"static_cardinalities must be a list of integers"),
        ({"static_cardinalities": [True]}, r"static_cardinalities must be a list of integers"),
        ({"n_static_numeric": -1}, r"n_static_numeric must be an integer >= 0"),
        ({"n_static_numeric": 1.5}, r"n_static_numeric must be an integer >= 0"),
    ],
)
def test_bad_static_network_arguments_are_refused_by_name(config, message):
    from forecaster.nn import RecurrentNet

    base = {"n_features": 1, "n_targets": 1, "lookback": 8, "horizon": 2, "hidden_size": 4}
    with pytest.raises(DataValidationError, match=message):
        RecurrentNet(**base, **config)

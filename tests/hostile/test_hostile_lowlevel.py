"""Hostile arguments to the low-level public entry points of the data layer and the training
loop: ``infer_frequency``, ``future_times``, ``Panel.values_on``, ``Windows.gather`` /
``filter`` / ``batches``, ``PanelScaler``, ``RecurrentNet``, ``training.train``,
``Checkpointer`` and ``read_checkpoint``.

Each case checks that a mistake is one of forecaster's errors (``DataValidationError``, a
``ValueError`` too, or ``TrainingDivergedError``) whose message names the argument, what was
expected and what was received, never a Polars, numpy or torch exception; the cases that take
paths also check that nothing was written. Everything is tiny (40-row series, hidden size 4).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster import DataValidationError, ForecasterWarning, Panel, PanelScaler, make_windows
from forecaster.data.frequency import Frequency
from forecaster.data.frequency_inference import infer_frequency
from forecaster.data.steps import future_times
from forecaster.nn import RecurrentNet
from forecaster.training.loop import (
    Checkpointer,
    TrainingDivergedError,
    read_checkpoint,
    resolve_device,
    train,
)

N = 40


@pytest.fixture(scope="module")
def panel() -> Panel:
    t = np.arange(N)
    frame = pl.concat(
        pl.DataFrame({"id": k, "t": t, "y": np.sin(t / 3) + i, "x": np.cos(t)})
        for i, k in enumerate("ab")
    )
    return Panel.from_frame(frame, target="y", covariates="x", time_col="t", id_col="id")


@pytest.fixture(scope="module")
def windows(panel):
    return make_windows(panel, lookback=8, horizon=3)


def tiny_net() -> RecurrentNet:
    torch.manual_seed(0)
    return RecurrentNet(
        n_features=2, n_targets=1, lookback=8, horizon=3, hidden_size=4, segment_length=4
    )


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(6, 8, 2, generator=generator), torch.randn(6, 3, 1, generator=generator)


# ------------------------------------------------------------------------------------------
# infer_frequency and future_times
# ------------------------------------------------------------------------------------------

TWO = np.array([0, 2])


@pytest.mark.parametrize(
    ("times", "offsets", "message"),
    [
        ([1, 2, 3], np.array([0, 3]), r"takes the time column as a polars Series, got \[1, 2, 3\]"),
        (pd.Series([1, 2, 3]), np.array([0, 3]), r"polars Series.*pl\.from_pandas\(series\)"),
        (pl.Series([1, 2, 3]), None, r"offsets must be the row offsets .* got None"),
        (pl.Series([1, 2, 3]), np.array([0, 2]), r"from 0 to len\(times\) = 3"),
        (pl.Series([1, 2, 3]), np.array([0.0, 3.0]), r"1-D integer array"),
        (pl.Series([1, 2, 3]), np.array([0, 3, 1, 3]), r"non-decreasing"),
        (pl.Series([1, 2, 3]), [[0, 3]], r"1-D integer array"),
        (pl.Series(["a", "b"]), TWO, r"got String\. Parse it first"),
        (pl.Series([dt.timedelta(1), dt.timedelta(2)]), TWO, r"got Duration.*not a point in time"),
        (pl.Series([1.0, 2.5]), TWO, r"got Float64\. Floats are not time steps"),
        (pl.Series([1, 2], dtype=pl.Int128), TWO, r"got Int128\. 128-bit integers"),
        (pl.Series([1, None]), TWO, r"hold 1 null values"),
        (pl.Series([3, 2, 1]), np.array([0, 3]), r"the times decrease within a series .*Sort"),
        (pl.Series([1, 1, 1]), np.array([0, 3]), r"no series has two distinct time steps"),
        (pl.Series([0, 1, 2**64 - 1], dtype=pl.UInt64), np.array([0, 3]), r"out of range"),
    ],
    ids=[
        "list",
        "pandas-series",
        "offsets-none",
        "offsets-short",
        "offsets-float",
        "offsets-unsorted",
        "offsets-2d",
        "string",
        "duration",
        "float",
        "int128",
        "null",
        "decreasing",
        "constant",
        "uint64-sentinel",
    ],
)
def test_infer_frequency_refuses_what_it_cannot_read(times, offsets, message):
    with pytest.raises(DataValidationError, match=message):
        infer_frequency(times, offsets)


@pytest.mark.parametrize(
    ("times", "freq", "horizon", "message"),
    [
        (pl.Series([120, 121], dtype=pl.Int8), "1i", 7, r"last time 121 .*Int8 \(-128 to 127\)"),
        (pl.Series([250, 251], dtype=pl.UInt8), "2i", 3, r"last time 251 .*UInt8 \(0 to 255\)"),
        (pl.Series([2**63 - 3, 2**63 - 2]), "1i", 3, r"last time 9223372036854775806 .*Int64"),
        (
            pl.Series([dt.datetime(2262, 4, 11, 21), dt.datetime(2262, 4, 11, 22)]).cast(
                pl.Datetime("ns")
            ),
            "1h",
            3,
            r"last time 2262-04-11 22:00:00 .*1677-09-21 00:12:43.145224192 to 2262-04-11",
        ),
        (
            pl.Series([dt.datetime(2262, 2, 28), dt.datetime(2262, 3, 31)]).cast(pl.Datetime("ns")),
            "1mo",
            2,
            r"2 steps of 1mo after the last time 2262-03-31 .*Datetime\(time_unit='ns'",
        ),
        (
            pl.Series([dt.datetime(2262, 4, 8), dt.datetime(2262, 4, 9)])
            .cast(pl.Datetime("ns"))
            .dt.replace_time_zone("Europe/Paris"),
            "1d",
            5,
            r"after the last time 2262-04-09 .*would pass the largest time",
        ),
        (
            pl.Series([dt.datetime(2262, 4, 7), dt.datetime(2262, 4, 8)]).cast(pl.Datetime("ns")),
            "1bd",
            5,
            r"5 steps of 1bd after the last time 2262-04-08",
        ),
    ],
    ids=["int8", "uint8", "int64", "ns-hours", "ns-months", "ns-zoned-days", "ns-business-days"],
)
def test_future_times_beyond_the_dtype_are_refused_not_wrapped(times, freq, horizon, message):
    with pytest.raises(DataValidationError, match=message):
        future_times(times.alias("t"), TWO, Frequency.parse(freq), horizon)


YEAR_MS = 365 * 86_400_000


@pytest.mark.parametrize(
    ("physical", "unit", "zone", "shown"),
    [
        (20_000 * YEAR_MS, "ms", None, r"from \+21956-09-20 22:00:00.000 to \+21956-09-21 00:00"),
        (2**62, "ms", None, r"from 4,611,686,018,420,\d{3},\d{3} ms from 1970-01-01"),
        (2**62, "us", None, r"from \+148108-07-06"),
        (-(2**62), "us", None, r"from -144169-06-28"),
        (2**63 - 10, "us", "Europe/Paris", r"from [\d,]+ us from 1970-01-01 .*'Europe/Paris'"),
    ],
    ids=["year-21956", "ms-2^62", "us-2^62", "us-minus-2^62", "zoned-int64-max"],
)
def test_times_beyond_python_datetimes_are_refused_clearly(physical, unit, zone, shown):
    """Polars computes dates to the year 262142, but a Python datetime ends at 9999: such a
    time once raised a bare ValueError in fit, or a Rust panic while the error was written."""
    step = {"ms": 3_600_000, "us": 3_600_000_000}[unit]
    times = pl.Series("t", [physical - 2 * step, physical - step, physical], dtype=pl.Int64)
    times = times.cast(pl.Datetime(unit, zone))
    frame = pl.DataFrame({"t": times, "y": [1.0, 2.0, 3.0]})
    message = rf"Time column 't' holds times out of range: {shown}.*0001-01-0"
    with pytest.raises(DataValidationError, match=message):
        infer_frequency(times, np.array([0, 3]))
    with pytest.raises(DataValidationError, match=message):
        Panel.from_frame(frame, target="y", time_col="t")


def test_the_last_python_datetimes_still_work_and_no_forecast_passes_them():
    dates = pl.Series("t", [dt.date(9999, 12, 1) + dt.timedelta(days=i) for i in range(31)])
    assert str(infer_frequency(dates, np.array([0, 31]))) == "1d"
    assert future_times(dates.head(30), np.array([0, 30]), Frequency.parse("1d"), 1).to_list() == [
        dt.date(9999, 12, 31)
    ]
    with pytest.raises(DataValidationError, match=r"2 steps of 1d after the last time 9999-12-30"):
        future_times(dates.head(30), np.array([0, 30]), Frequency.parse("1d"), 2)
    zoned = pl.Series("t", [dt.datetime(9999, 12, 30, 22), dt.datetime(9999, 12, 30, 23)])
    zoned = zoned.dt.replace_time_zone("Asia/Tokyo")  # 9999-12-30 14:00 UTC and on
    with pytest.raises(DataValidationError, match=r"after the last time 9999-12-30 23:00:00\+09"):
        future_times(zoned, np.array([0, 2]), Frequency.parse("1h"), 30)


def test_future_times_at_the_edge_of_the_dtype_still_work():
    times = pl.Series("t", [120, 121], dtype=pl.Int8)
    assert future_times(times, TWO, Frequency(1, "i"), 6).to_list() == list(range(122, 128))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((pl.Series([1, 2]), TWO, "1i", 3), r"freq must be a Frequency"),
        ((pl.Series([1, 2]), TWO, Frequency(1, "i"), 0), r"horizon must be an integer >= 1"),
        ((pl.Series([1, 2]), np.array([0, 0, 2]), Frequency(1, "i"), 1), r"no empty series"),
        ((pl.Series([1, 2]), TWO, Frequency(1, "h"), 1), r"does not fit the integer time column"),
    ],
    ids=["freq-text", "horizon-0", "empty-series", "freq-kind"],
)
def test_future_times_checks_its_arguments(args, message):
    with pytest.raises(DataValidationError, match=message):
        future_times(*args)


# ------------------------------------------------------------------------------------------
# devices: one parser
# ------------------------------------------------------------------------------------------

DEVICE_CALLS = {
    "resolve_device": lambda p, w, device: resolve_device(device),
    "Panel.values_on": lambda p, w, device: p.values_on(device),
    "Windows.gather": lambda p, w, device: w.gather([0], device=device),
    "Windows.batches": lambda p, w, device: next(w.batches(4, device=device)),
    "PanelScaler.tensors": lambda p, w, device: PanelScaler().fit(p).tensors(device),
}


@pytest.mark.parametrize("call", list(DEVICE_CALLS))
@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("tpu", r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"),
        (3, r"device must be .* got 3 \(an int\)"),
        ("cuda:99", r"CUDA is not available here|this machine has \d+ CUDA device"),
    ],
    ids=["tpu", "int", "cuda99"],
)
def test_every_device_argument_goes_through_one_parser(panel, windows, call, device, message):
    with pytest.raises(DataValidationError, match=message):
        DEVICE_CALLS[call](panel, windows, device)


def test_train_refuses_an_unknown_device(batch):
    x, y = batch
    with pytest.raises(DataValidationError, match=r"device must be .* got 'tpu'"):
        train(tiny_net(), [(x, None, y)], device="tpu", progress=False)


# ------------------------------------------------------------------------------------------
# Windows.gather, filter, batches
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": [10**6]}, r"window positions from 0 to 59 \(60 windows\), got 1,000,000"),
        ({"rows": [-1]}, r"from 0 to 59 .* got -1"),
        ({"rows": [[0, 1], [2, 3]]}, r"rows must be a 1-D list or array of window positions"),
        ({"rows": [0.5]}, r"got \[0\.5\] \(a list\)"),
        ({"rows": np.array([True, False])}, r"np\.flatnonzero\(mask\)"),
        ({"rows": "0"}, r"rows must be a 1-D list"),
        ({"rows": None}, r"rows must be a 1-D list"),
        ({"rows": [0], "scaling": 3}, r"scaling must be None or a \(center, scale\) pair"),
        ({"rows": [0], "scaling": (torch.zeros(2, 2),)}, r"scaling must be None or a"),
        ({"rows": [0], "scaling": (torch.zeros(3, 2), torch.ones(3, 2))}, r"= \(2, 2\)"),
    ],
    ids=[
        "beyond",
        "negative",
        "2d",
        "float",
        "bool",
        "text",
        "none",
        "scaling-int",
        "scaling-one",
        "scaling-shape",
    ],
)
def test_gather_refuses_bad_rows_and_scaling(windows, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        windows.gather(**kwargs)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.one_of(
        st.lists(st.integers(-(2**40), 2**40), max_size=5),
        st.lists(st.floats(allow_nan=True), max_size=3),
        st.lists(st.booleans(), max_size=3),
        st.lists(st.lists(st.integers(0, 59), max_size=2), max_size=2),
        st.text(max_size=3),
        st.none(),
    )
)
def test_gather_gives_a_batch_or_our_error(windows, rows):
    try:
        batch = windows.gather(rows)
    except DataValidationError:
        return
    assert batch.x.shape == (len(rows), 8, 2)
    assert batch.y.shape == (len(rows), 3, 1)


def test_gather_accepts_positions_of_every_integer_kind(windows):
    expected = windows.gather([0, 5]).x
    for rows in (np.array([0, 5], dtype=np.uint8), torch.tensor([0, 5]), pl.Series([0, 5])):
        assert torch.equal(windows.gather(rows).x, expected)


def test_gather_casts_float64_scaling_to_the_batch_dtype(panel, windows):
    center, scale = PanelScaler().fit(panel).tensors("cpu")
    batch = windows.gather([0], scaling=(center.double(), scale.double()))
    assert batch.x.dtype == torch.float32
    assert torch.allclose(batch.x, windows.gather([0], scaling=(center, scale)).x)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        (pl.col("nope") > 1, r"Cannot filter the windows with .*nope.* index columns"),
        (pl.col("start") + 1, r"Cannot filter the windows"),
        (np.ones(3, bool), r"one per window \(60\), got .* of shape \(3,\)"),
        (np.array([0, 1, 2]), r"integer positions: select them with a mask"),
        (pl.Series([True, None] * 30), r"booleans without nulls"),
        ("cutoff > 3", r"A window mask must be booleans"),
    ],
    ids=["unknown-column", "not-boolean", "short-mask", "positions", "null-mask", "text"],
)
def test_filter_refuses_what_is_no_predicate(windows, predicate, message):
    with pytest.raises(DataValidationError, match=message):
        windows.filter(predicate)


def test_filter_accepts_masks_and_expressions_together(windows):
    mask = np.arange(len(windows)) % 2 == 0
    both = windows.filter(mask, pl.col("cutoff") > 20)
    assert len(both) == int((mask & (windows.index["cutoff"] > 20).to_numpy()).sum())
    assert len(windows.filter()) == len(windows)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": "a"}, r"seed must be an integer >= 0 or None, got 'a' \(a string\)"),
        ({"seed": 2**70}, r"seed must be an integer <= 9,223,372,036,854,775,807"),
        ({"seed": 1.5}, r"seed must be an integer"),
        ({"seed": -1}, r"seed must be an integer >= 0"),
        ({"shuffle": "no"}, r"shuffle must be True or False, got 'no'"),
        ({"drop_last": 1}, r"drop_last must be True or False"),
        ({"scaling": [1, 2]}, r"scaling must be None or a \(center, scale\) pair"),
    ],
    ids=[
        "seed-text",
        "seed-huge",
        "seed-float",
        "seed-negative",
        "shuffle",
        "drop-last",
        "scaling",
    ],
)
def test_batches_refuse_bad_arguments_before_the_first_batch(windows, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        next(windows.batches(4, **kwargs))


def test_batches_accept_numpy_integer_seeds(windows):
    a = next(windows.batches(4, seed=np.int64(3)))
    b = next(windows.batches(4, seed=3))
    assert torch.equal(a.x, b.x)


# ------------------------------------------------------------------------------------------
# PanelScaler
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: PanelScaler().fit(p.to_frame()), r"PanelScaler.fit needs a Panel, got a pola"),
        (lambda p: PanelScaler().fit(None), r"needs a Panel, got a builtins.NoneType"),
        (lambda p: PanelScaler().fit(p, mask=np.ones(80, int)), r"dtype int64 and shape \(80,\)"),
        (lambda p: PanelScaler().fit(p, mask=np.ones(3, bool)), r"one per panel row \(80\)"),
        (lambda p: PanelScaler().fit(p, mask="all"), r"mask must be booleans"),
        (lambda p: PanelScaler().fit(p).transform(p.to_frame()), r"PanelScaler needs a Panel"),
        (lambda p: PanelScaler("zscore").fit(p), r"method must be one of"),
    ],
    ids=["frame", "none", "int-mask", "short-mask", "text-mask", "transform-frame", "method"],
)
def test_panel_scaler_refuses_what_is_no_panel_or_mask(panel, call, message):
    with pytest.raises(DataValidationError, match=message):
        call(panel)


def test_scaler_mask_selecting_nothing_says_so(panel):
    with pytest.warns(ForecasterWarning, match=r"The mask selects no row of the panel.*all 2"):
        PanelScaler().fit(panel, mask=np.zeros(80, bool))
    partial = np.zeros(80, bool)
    partial[:40] = True
    with pytest.warns(ForecasterWarning, match=r"1 of 2 series have no rows selected by the mask"):
        PanelScaler().fit(panel, mask=partial)


# ------------------------------------------------------------------------------------------
# RecurrentNet
# ------------------------------------------------------------------------------------------


def test_network_casts_float64_inputs(batch):
    net = tiny_net().eval()
    x, _ = batch
    with torch.no_grad():
        assert torch.allclose(net(x.double()), net(x))
        assert net(x.double()).dtype == torch.float32


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda n, x, y: n(x.long()), r"x must hold floating-point values, got a torch.int64"),
        (lambda n, x, y: n(x.numpy()), r"x must be a torch.Tensor, got array"),
        (lambda n, x, y: n(x, future=np.zeros(3)), r"future must be a torch.Tensor"),
        (lambda n, x, y: n.training_loss(x, None, y.bool()), r"y must hold floating-point"),
        (lambda n, x, y: n(x[:, :4]), r"x must have shape \(batch, lookback=8, n_features=2\)"),
    ],
    ids=["int-x", "numpy-x", "numpy-future", "bool-y", "short-x"],
)
def test_network_refuses_inputs_it_cannot_use(batch, call, message):
    x, y = batch
    with pytest.raises(DataValidationError, match=message):
        call(tiny_net(), x, y)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"a": 1}, r"Unknown network arguments \['a'\]"),
        (None, r"takes a dict of RecurrentNet arguments .* got None"),
        ("config.json", r"takes a dict .* got 'config.json'"),
        ({"n_features": 1}, r"lacks \['n_targets', 'lookback', 'horizon'\]"),
        (
            {"n_features": 1, "n_targets": 1, "lookback": 4, "horizon": 2, "n_members": 3},
            "ensemble",
        ),
        ({"n_features": 1, "n_targets": 1, "lookback": 4, "horizon": "2"}, r"horizon must be"),
    ],
    ids=["unknown", "none", "text", "incomplete", "ensemble", "bad-value"],
)
def test_from_config_refuses_what_is_no_configuration(config, message):
    with pytest.raises(DataValidationError, match=message):
        RecurrentNet.from_config(config)


# ------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------


def test_train_accepts_a_list_of_batches(batch):
    x, y = batch
    history = train(tiny_net(), [(x, None, y)], max_epochs=2, progress=False)
    assert [r.epoch for r in history] == [1, 2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x, y: ((x, None, y) for _ in range(2)), r"A generator or iterator is used up"),
        (lambda x, y: 3, r"train_source must be a callable source\(epoch\) .* got 3"),
        (lambda x, y: lambda: [(x, None, y)], r"cannot be called as train_source\(epoch\)"),
        (lambda x, y: lambda epoch: 3, r"train_source\(1\) must give an iterable"),
        (lambda x, y: [(x, y)], r"Batch 0 of train_source in epoch 1 must be a tuple"),
        (lambda x, y: [(x.numpy(), None, y)], r"Batch 0 of train_source .* tensors"),
    ],
    ids=["generator", "int", "no-epoch-argument", "not-iterable", "pair", "numpy"],
)
def test_train_refuses_sources_it_cannot_draw_from(batch, make, message):
    x, y = batch
    with pytest.raises(DataValidationError, match=message):
        train(tiny_net(), make(x, y), max_epochs=1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_epochs": 1.5}, r"max_epochs must be an integer >= 1, got 1\.5 \(a float\)"),
        ({"max_epochs": 0}, r"max_epochs must be an integer >= 1, got 0"),
        ({"checkpoint": "ckpt.safetensors"}, r"checkpoint must be a Checkpointer or None"),
        ({"resume_from": {}}, r"resume_from must be a TrainingState or None, got \{\}"),
        ({"lr": -1}, r"lr must be a finite number > 0, got -1"),
        ({"lr": math.nan}, r"lr must be a finite number > 0, got nan"),
        ({"weight_decay": -0.1}, r"weight_decay must be"),
        ({"patience": 0}, r"patience must be an integer >= 1 or None"),
        ({"grad_clip": 0}, r"grad_clip must be"),
        ({"loss": "l2"}, r"loss must be one of 'mse', 'mae', 'huber'"),
        ({"lr_schedule": "step"}, r"lr_schedule must be one of"),
        ({"on_oom": "retry"}, r"on_oom must be one of 'raise', 'split'"),
        ({"steps_per_epoch": -1}, r"steps_per_epoch must be an integer >= 0"),
        ({"max_time": "1h"}, r"max_time must be"),
        ({"amp": "yes"}, r"amp must be True or False"),
        ({"progress": "no"}, r"progress must be True or False or None"),
        ({"callbacks": [lambda r: 1]}, r"callbacks\[0\] .* cannot be called as callback"),
        ({"callbacks": print}, r"callbacks must be a list of callables"),
        ({"description": 3}, r"description must be text"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_train_refuses_bad_settings_before_the_first_epoch(batch, kwargs, message):
    x, y = batch
    drawn = []

    def source(epoch):
        drawn.append(epoch)
        return [(x, None, y)]

    with pytest.raises(DataValidationError, match=message):
        train(tiny_net(), source, **{"progress": False, **kwargs})
    assert drawn == []  # refused before any batch was drawn


def test_train_refuses_a_network_it_cannot_train(batch):
    x, y = batch
    with pytest.raises(DataValidationError, match=r"network must be a torch.nn.Module"):
        train(torch.nn.Linear(2, 1), [(x, None, y)], progress=False)


def test_a_validation_loss_that_is_nan_stops_training(batch):
    x, y = batch
    broken = y.clone()
    broken[0, 0, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match=r"validation loss became NaN .* epoch 1"):
        train(tiny_net(), [(x, None, y)], val_source=[(x, None, broken)], progress=False)


def test_a_validation_source_without_batches_is_refused(batch):
    x, y = batch
    with pytest.raises(DataValidationError, match=r"val_source gave no batches in epoch 1"):
        train(tiny_net(), [(x, None, y)], val_source=[], progress=False)


# ------------------------------------------------------------------------------------------
# Checkpointer and read_checkpoint
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: Checkpointer(None), r"path must be a path: a str or os.PathLike .* got None"),
        (lambda d: Checkpointer(b"c.safetensors"), r"got b'c.safetensors' \(a bytes\)"),
        (lambda d: Checkpointer(""), r"path is an empty path"),
        (lambda d: Checkpointer(d / "c", every=0), r"checkpoint_every must be an integer >= 1"),
        (lambda d: Checkpointer(d / "c", every=1.0), r"checkpoint_every must be an integer"),
        (lambda d: Checkpointer(d / "c", extra={"a": math.nan}), r"extra must hold JSON values"),
        (lambda d: Checkpointer(d / "c", extra=[1]), r"extra must be a dict of JSON values"),
        (lambda d: Checkpointer(d / "c", extra={"f": print}), r"extra must hold JSON values"),
        (lambda d: Checkpointer(d / "c", fingerprint={"a": math.inf}), r"fingerprint must hold"),
        (lambda d: read_checkpoint(None), r"path must be a path: .* got None"),
        (lambda d: read_checkpoint(b"path"), r"got b'path' \(a bytes\)"),
        (lambda d: read_checkpoint(d / "c", max_bytes=0), r"max_bytes must be an integer >= 1"),
    ],
    ids=[
        "none",
        "bytes",
        "empty",
        "every-0",
        "every-float",
        "extra-nan",
        "extra-list",
        "extra-function",
        "fingerprint-inf",
        "read-none",
        "read-bytes",
        "read-max-bytes",
    ],
)
def test_checkpoint_arguments_are_refused_before_anything_is_written(
    tmp_path, tree_guard, call, message
):
    guard = tree_guard(tmp_path)
    with pytest.raises(DataValidationError, match=message):
        call(tmp_path)
    guard.assert_unchanged()


def test_checkpointer_with_plain_extra_writes_and_reads_back(tmp_path, batch):
    x, y = batch
    ckpt = Checkpointer(tmp_path / "c.safetensors", extra={"seed": 3, "note": [1, "a"]})
    train(tiny_net(), [(x, None, y)], max_epochs=1, checkpoint=ckpt, progress=False)
    assert ckpt.load().extra == {"seed": 3, "note": [1, "a"]}

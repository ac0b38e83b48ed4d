from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
import torch
from conftest import stderr_under_default_warnings
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from forecaster.data.known_windows import window_spread
from forecaster.data.panel import Panel
from forecaster.data.windows import make_windows
from forecaster.exceptions import DataValidationError, ForecasterWarning

# ---------------------------------------------------------------- random ragged panels


@st.composite
def ragged_frames(draw):
    """A long frame of 1-6 hourly series of different lengths and 1-4 value columns."""
    n_series = draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(1, 40), min_size=n_series, max_size=n_series))
    n_targets = draw(st.integers(1, 2))
    n_cov = draw(st.integers(0, 1))
    n_fut = draw(st.integers(0, 1))
    starts = draw(st.lists(st.integers(0, 100), min_size=n_series, max_size=n_series))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    ids, times = [], []
    origin = dt.datetime(2024, 1, 1)
    for k, (n, s) in enumerate(zip(lengths, starts, strict=True)):
        ids += [f"s{k}"] * n
        times += [origin + dt.timedelta(hours=s + i) for i in range(n)]
    total = len(ids)
    names = (
        [f"y{j}" for j in range(n_targets)]
        + [f"c{j}" for j in range(n_cov)]
        + [f"f{j}" for j in range(n_fut)]
    )
    cols = {name: rng.normal(size=total).astype(np.float32) for name in names}
    frame = pl.DataFrame({"id": ids, "t": times, **cols})
    if draw(st.booleans()):
        frame = frame.sample(fraction=1.0, shuffle=True, seed=1)
    roles = {
        "target": names[:n_targets],
        "covariates": names[n_targets : n_targets + n_cov],
        "future_covariates": names[n_targets + n_cov :],
    }
    return frame, roles


def naive_window(frame: pl.DataFrame, key: str, cutoff, lookback: int, horizon: int, cols):
    """The window ending at ``cutoff`` sliced from the original frame, the slow obvious way."""
    series = frame.filter(pl.col("id") == key).sort("t")
    times = series["t"].to_list()
    pos = times.index(cutoff)
    block = series.slice(pos - lookback + 1, lookback + horizon)
    return block.select(cols).to_numpy()


@settings(max_examples=50, deadline=None)
@given(
    data=ragged_frames(),
    lookback=st.integers(1, 8),
    horizon=st.integers(1, 5),
    stride=st.integers(1, 4),
)
def test_every_gathered_window_equals_a_naive_slice(data, lookback, horizon, stride):
    frame, roles = data
    panel = Panel.from_frame(frame, time_col="t", id_col="id", freq="1h", **roles)
    windows = make_windows(panel, lookback, horizon, stride)

    # Count: windows per series, aligned to the end, never crossing series.
    lengths = frame.group_by("id").len()["len"].to_numpy()
    expected = sum(
        (n - lookback - horizon) // stride + 1 for n in lengths if n >= lookback + horizon
    )
    assert len(windows) == expected
    if not len(windows):
        return

    rows = np.arange(len(windows))
    batch = windows.gather(rows)
    nt, nf = panel.n_targets, panel.n_future
    assert batch.x.shape == (len(rows), lookback, panel.n_features)
    assert batch.y.shape == (len(rows), horizon, nt)
    for r, (series, _start, cutoff) in enumerate(windows.index.iter_rows()):
        key = panel.keys["id"][series]
        expected_block = naive_window(frame, key, cutoff, lookback, horizon, panel.columns)
        np.testing.assert_array_equal(batch.x[r].numpy(), expected_block[:lookback])
        np.testing.assert_array_equal(batch.y[r].numpy(), expected_block[lookback:, :nt])
        if nf:
            np.testing.assert_array_equal(batch.future[r].numpy(), expected_block[lookback:, -nf:])
        else:
            assert batch.future is None
    # Stride alignment: the most recent window of each series is always present.
    last_cutoffs = windows.index.group_by("series").agg(pl.col("cutoff").max())
    for series, cutoff in last_cutoffs.iter_rows():
        key = panel.keys["id"][series]
        end = frame.filter(pl.col("id") == key)["t"].max()
        assert cutoff == end - dt.timedelta(hours=horizon)


@settings(max_examples=50, deadline=None)
@given(
    data=ragged_frames(),
    lookback=st.integers(1, 6),
    horizon=st.integers(1, 4),
    cut1=st.integers(0, 140),
    width=st.integers(1, 40),
)
def test_splits_never_leak(data, lookback, horizon, cut1, width):
    frame, roles = data
    panel = Panel.from_frame(frame, time_col="t", id_col="id", freq="1h", **roles)
    windows = make_windows(panel, lookback, horizon)
    origin = dt.datetime(2024, 1, 1)
    train_end = origin + dt.timedelta(hours=cut1)
    val_end = train_end + dt.timedelta(hours=width)
    with warnings.catch_warnings():  # random bounds often leave a split empty (a warning)
        warnings.simplefilter("ignore", ForecasterWarning)
        train, val, test = windows.split(train_end, val_end)

    def times_seen(w):  # every time (inputs and targets) a split's windows touch
        starts = w.index["start"].to_numpy()
        rows = (starts[:, None] + np.arange(w.window_length)).ravel()
        return panel.time.gather(rows)

    def target_times(w):
        starts = w.index["start"].to_numpy()
        rows = (starts[:, None] + np.arange(lookback, w.window_length)).ravel()
        return panel.time.gather(rows)

    if len(train):
        assert times_seen(train).max() <= train_end
    if len(val):
        assert times_seen(val).max() <= val_end
        assert target_times(val).min() > train_end
    if len(test):
        assert target_times(test).min() > val_end
    # Splits are disjoint and the index is only filtered, never rebuilt.
    starts = [set(s.index["start"].to_list()) for s in (train, val, test)]
    assert (
        not (starts[0] & starts[1]) and not (starts[1] & starts[2]) and not (starts[0] & starts[2])
    )
    assert sum(len(s) for s in (train, val, test)) <= len(windows)


# ---------------------------------------------------------------- batches


def simple_windows(n=50, lookback=4, horizon=2):
    frame = pl.DataFrame({"t": range(n), "y": np.arange(n, dtype=np.float32)})
    return make_windows(Panel.from_frame(frame, target="y", time_col="t"), lookback, horizon)


def test_batches_cover_every_window_once():
    windows = simple_windows()
    starts = torch.cat([b.x[:, 0, 0] for b in windows.batches(7, seed=0)])
    assert sorted(starts.tolist()) == list(range(len(windows)))


def test_batches_are_reproducible_from_a_seed():
    windows = simple_windows()
    first = [b.x for b in windows.batches(8, seed=123)]
    second = [b.x for b in windows.batches(8, seed=123)]
    other = [b.x for b in windows.batches(8, seed=124)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_unshuffled_batches_keep_index_order_and_drop_last():
    windows = simple_windows(n=20)  # 15 windows
    batches = list(windows.batches(4, shuffle=False, drop_last=True))
    assert [b.x.shape[0] for b in batches] == [4, 4, 4]
    assert batches[0].x[:, 0, 0].tolist() == [0, 1, 2, 3]


def test_filter_by_cutoff_and_series_numbers():
    windows = simple_windows(n=20, lookback=3, horizon=1)
    late = windows.filter(pl.col("cutoff") >= 15)
    assert late.index["cutoff"].to_list() == [15, 16, 17, 18]
    batch = late.gather([0])
    assert batch.series.tolist() == [0]
    assert batch.y[0, 0, 0].item() == 16.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": 0, "horizon": 1}, "lookback must be an integer >= 1"),
        ({"lookback": 2, "horizon": 1.5}, "horizon must be an integer >= 1"),
        ({"lookback": 2, "horizon": 1, "stride": 0}, "stride must be an integer >= 1"),
        ({"lookback": 2, "horizon": 1, "holdout": -1}, "holdout must be an integer >= 0"),
        ({"lookback": 2, "horizon": 1, "holdout": 1.5}, "holdout must be an integer >= 0"),
        ({"lookback": 2, "horizon": 1, "holdout": [1, 2]}, r"one per series \(1\)"),
    ],
)
def test_bad_window_parameters(kwargs, message):
    panel = simple_windows().panel
    with pytest.raises(DataValidationError, match=message):
        make_windows(panel, **kwargs)


def test_strided_windows_end_at_the_last_row_before_the_holdout():
    """Aligned to each series' end, a stride longer than the hold-out lost the newest window
    before it (or all): the windows now end at the last row before each series' hold-out."""
    frame = pl.DataFrame({"id": ["a"] * 20 + ["b"] * 12, "t": [*range(20), *range(12)],
                          "y": [0.0] * 32})  # fmt: skip
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    windows = make_windows(panel, 3, 2, stride=6, holdout=np.array([4, 0]))
    assert windows.index["start"].to_list() == [5, 11, 21, 27]  # a: its first 16 rows
    assert make_windows(panel, 3, 2, stride=30, holdout=7).index["start"].to_list() == [8, 20]
    for stride in (1, 4):  # no hold-out: aligned to each series' end, as before
        held, plain = (
            make_windows(panel, 3, 2, stride, holdout=0),
            make_windows(panel, 3, 2, stride),
        )
        assert_frame_equal(held.index, plain.index)
        assert held.index.filter(pl.col("series") == 0)["start"].max() == 15


def test_split_bounds_must_be_ordered_and_comparable():
    windows = simple_windows()
    with pytest.raises(DataValidationError, match="must be after train_end"):
        windows.split(train_end=10, val_end=5)
    with pytest.raises(DataValidationError, match=r"until=.* is not a time of the Int64 time"):
        windows.targets_between(until=dt.datetime(2024, 1, 1))


def test_series_shorter_than_a_window_have_no_windows():
    frame = pl.DataFrame({"id": ["a"] * 3 + ["b"] * 10, "t": [*range(3), *range(10)], "y": 0.0})
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    windows = make_windows(panel, 3, 2)
    assert windows.index["series"].unique().to_list() == [1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gather_on_cuda_matches_cpu():
    windows = simple_windows()
    cpu = windows.gather([0, 3, 7])
    gpu = windows.gather([0, 3, 7], device="cuda")
    assert gpu.x.is_cuda
    torch.testing.assert_close(gpu.x.cpu(), cpu.x)
    first_cpu = next(windows.batches(8, seed=5))
    first_gpu = next(windows.batches(8, seed=5, device="cuda"))
    torch.testing.assert_close(first_gpu.y.cpu(), first_cpu.y)


def test_split_bounds_in_every_representation_give_the_same_split():
    frame = pl.DataFrame(
        {"t": pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 3, 1), eager=True), "y": 0.0}
    )
    windows = make_windows(Panel.from_frame(frame, target="y", time_col="t"), 4, 2)
    reference = [len(s) for s in windows.split(dt.date(2024, 1, 31), dt.date(2024, 2, 15))]
    for train_end, val_end in [
        ("2024-01-31", "2024-02-15"),
        (pl.date(2024, 1, 31), pl.date(2024, 2, 15)),
        (np.datetime64("2024-01-31"), dt.datetime(2024, 2, 15)),
    ]:
        assert [len(s) for s in windows.split(train_end, val_end)] == reference
    with pytest.warns(ForecasterWarning, match=r"leaves the \['val', 'test'\] split\(s\) without"):
        windows.split(dt.date(2030, 1, 1), dt.date(2030, 2, 1))


def test_window_spread_matches_a_loop_within_each_series():
    from forecaster.data.known_windows import window_spread

    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 30)).cumsum(axis=1)
    frame = pl.DataFrame(
        {"id": np.repeat(["a", "b"], 30), "t": np.tile(np.arange(30), 2), "y": values.ravel()}
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    rows = np.array([5, 29, 30 + 5, 59])  # windows of 6 rows: first and last of each series
    got = window_spread(panel, rows, 6)[:, 0]
    for row, value in zip(rows, got, strict=True):
        window = panel.values[row - 5 : row + 1, 0].astype(np.float64)
        changes = np.abs(np.diff(window))
        assert value == pytest.approx(changes.mean())


def test_window_spread_of_a_series_does_not_depend_on_the_series_before_it():
    """The running sums restart at each series: the changes (and the level) of a series of
    small values after one of huge values are not lost to the rounding of a panel-wide
    running total."""
    rng = np.random.default_rng(0)
    big = 1e12 + np.cumsum(rng.normal(0, 1e12, 100))
    small = 0.05 + np.cumsum(rng.normal(0, 1e-3, 100))
    frame = pl.DataFrame({"id": np.repeat(["a", "b"], 100), "t": np.tile(np.arange(100), 2)})
    frame = frame.with_columns(y=pl.Series(np.r_[big, small]))
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    alone = Panel.from_frame(frame.filter(pl.col("id") == "b"), target="y", time_col="t")
    options = {"floor": 0.1, "history": 0.5}
    got = window_spread(panel, np.array([150, 199]), 8, **options)[:, 0]
    want = window_spread(alone, np.array([50, 99]), 8, **options)[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    plain = window_spread(panel, np.array([199]), 8)[0, 0]
    window = panel.values[192:200, 0].astype(np.float64)  # as the panel holds them
    assert plain == pytest.approx(np.abs(np.diff(window)).mean(), rel=1e-12)


def test_window_spread_floors_scale_with_the_series():
    """The floored spread of a series in units of 1e-13 is 1e-13 times that of the series in
    unit units (was: floored at an absolute 1e-12, so calibrate(normalize="window") gave such
    a series 80 % intervals 23 times its typical error, covering all its values); a window
    of zeros keeps a spread above 0."""
    rng = np.random.default_rng(0)
    t = np.arange(60)
    unit = 5 + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, t.size)
    unit[:10] = 0.0  # a start of zeros: no level, no history

    def spread(values):
        panel = Panel.from_frame(pl.DataFrame({"t": t, "y": values}), target="y", time_col="t")
        return window_spread(panel, np.arange(7, 60), 8, floor=1e-6, history=0.1)[:, 0]

    small, ones = spread(unit * 1e-13), spread(unit)
    assert (small[:3] > 0).all()  # the windows of zeros only (rows 7 to 9)
    np.testing.assert_allclose(small[3:], 1e-13 * ones[3:], rtol=1e-6)  # panels hold float32


def test_window_spread_of_a_series_constant_so_far_is_its_level_floor():
    """With both floors (calibrate(normalize="window")), a window of a series that has not
    changed so far has the scaler's scale of a constant series: 1e-6 of its level (3e-6 for
    3s, 1e4 for 1e10 + 300, which float32 forecasts as 1e10), not an absolute 1, which did
    not scale with the series' units; 1 only for zeros so far (no level). Windows after the
    series moves keep their spread."""
    t = np.arange(16)

    def spread(values):
        panel = Panel.from_frame(pl.DataFrame({"t": t, "y": values}), target="y", time_col="t")
        return window_spread(panel, np.arange(3, 16), 4, floor=1e-6, history=0.1)[:, 0]

    moving = np.r_[np.zeros(8), np.arange(8.0)]
    np.testing.assert_allclose(spread(3 + moving)[:6], 3e-6, rtol=1e-12)  # rows 3-8: 3s
    assert spread(moving)[:6].tolist() == [1.0] * 6  # zeros so far: nothing to relate to
    assert spread(3 + moving)[6:].tolist() == spread(moving)[6:].tolist()
    with pytest.warns(ForecasterWarning, match="vary by less than"):  # float32 rounds them
        huge = spread(1e10 + 300 + moving)
    np.testing.assert_allclose(huge[:5], 1e4, rtol=1e-6)


def test_interpolated_runs_reaching_a_window_origin_are_read_forward_filled():
    """missing="interpolate": a window's inputs are those known at its origin (a filled run
    that reaches the origin holds the value before it); its targets are the filled values."""
    frame = pl.DataFrame({"t": range(8), "y": [0.0, 1.0, None, None, None, 5.0, 6.0, 7.0]})
    panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
    windows = make_windows(panel, lookback=3, horizon=2)
    batch = windows.gather(np.arange(len(windows)))
    assert batch.x[..., 0].tolist() == [
        [0.0, 1.0, 1.0],  # origin t=2: t=2 leaned on t=5
        [1.0, 1.0, 1.0],  # origin t=3
        [1.0, 1.0, 1.0],  # origin t=4
        [3.0, 4.0, 5.0],  # origin t=5, observed: the run is known
    ]
    assert batch.y[..., 0].tolist() == [[3.0, 4.0], [4.0, 5.0], [5.0, 6.0], [6.0, 7.0]]
    (batched,) = windows.batches(4, shuffle=False)  # the training batches read the same
    assert torch.equal(batched.x, batch.x) and torch.equal(batched.y, batch.y)


def test_window_spread_reads_a_window_ending_in_an_interpolated_run_as_known_there():
    """The interval widths of normalize="window" models: the spread and level of a window
    whose origin a filled run reaches are those of the frame cut at the origin."""
    y = [0.0, 4.0, 1.0, 5.0, 2.0, None, None, 30.0, 31.0]
    frame = pl.DataFrame({"t": range(9), "y": y})
    panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
    cut = Panel.from_frame(frame.head(7), target="y", time_col="t", missing="interpolate")
    for floor in (0.0, 0.5):
        got = window_spread(panel, np.array([6, 8]), 4, floor=floor)
        assert got[0].tolist() == window_spread(cut, np.array([6]), 4, floor=floor)[0].tolist()
        assert got[1].tolist() == window_spread(panel, np.array([8]), 4, floor=floor)[0].tolist()


def test_split_does_not_interpolate_toward_a_later_split():
    """Windows.split: a run missing="interpolate" filled across train_end holds the last
    value before it in the training windows (was: interpolated toward the first validation
    observation, 1000); the validation windows read the data as they are."""
    y = [float(i) for i in range(40)]
    y[30:36], y[36] = [None] * 6, 1000.0
    frame = pl.DataFrame({"time": range(40), "y": y})
    panel = Panel.from_frame(frame, target="y", time_col="time", missing="interpolate")
    train, val = make_windows(panel, 4, 2).split(train_end=31)
    assert train.gather([len(train) - 1]).y[0, :, 0].tolist() == [29.0, 29.0]
    assert val.panel is panel
    complete = Panel.from_frame(frame.drop_nulls(), target="y", time_col="time", freq=1,
                                missing="ffill")  # fmt: skip
    assert make_windows(complete, 4, 2).split(train_end=31)[0].panel is complete


_REPEATED_FITS = """
import numpy as np, polars as pl, torch
from forecaster import RNNForecaster
torch.set_num_threads(1)
# PyTorch imports sympy lazily at the first optimizer, and sympy's import enters
# warnings.catch_warnings(): create one first, so that only forecaster's own calls count.
torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
t = np.arange(120)
frame = pl.DataFrame(
    {"id": np.repeat(["a", "b"], 120), "t": np.tile(t, 2), "y": np.sin(np.tile(t, 2) / 4)}
).filter(pl.col("t") % 3 != 0)
for _ in range(3):
    RNNForecaster(
        target="y", id_col="id", time_col="t", freq=1, lookback=8, horizon=3, hidden_size=4,
        max_epochs=1, windows_per_epoch=32, batch_size=32, random_state=0, progress=False,
        baseline="none", missing="ffill",
    ).fit(frame)
"""


@pytest.mark.slow
def test_repeated_fits_show_a_warning_once_under_the_default_filter():
    """Three identical fits show their identical warning once under Python's default filter:
    no fit enters ``warnings.catch_warnings()`` (leaving it reset the registry of warnings
    already shown, so every fit repeated it; ``_column_tensor`` did so to silence PyTorch's
    read-only-array warning). A fresh interpreter, as pytest records every warning of a test
    itself (with its own filters), and without PYTHONWARNINGS, so the default filter holds."""
    stderr = stderr_under_default_warnings(_REPEATED_FITS)
    assert stderr.count("ForecasterWarning: missing='ffill' made up") == 1, stderr

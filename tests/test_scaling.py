from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.data.panel import Panel
from forecaster.data.scaling import SCALING_METHODS, PanelScaler, input_scale, spread_scale
from forecaster.data.transforms import fit_boxcox_lambdas
from forecaster.data.windows import make_windows
from forecaster.estimators.arrays import moments
from forecaster.exceptions import DataValidationError, ForecasterWarning, NotFittedError


def two_series() -> Panel:
    frame = pl.DataFrame(
        {
            "id": ["a"] * 6 + ["b"] * 6,
            "t": list(range(6)) * 2,
            "y": [1.0, 2.0, 3.0, 4.0, 50.0, 60.0, 10.0, 10.0, 10.0, 10.0, 10.0, 99.0],
            "x": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        }
    )
    return Panel.from_frame(frame, target="y", covariates="x", time_col="t", id_col="id")


def test_statistics_use_only_the_training_span():
    panel = two_series()
    scaler = PanelScaler("standard").fit(panel, until=3)
    np.testing.assert_allclose(scaler.center_[0], [2.5, 0.5])
    np.testing.assert_allclose(scaler.scale_[0], [np.std([1, 2, 3, 4]), 0.5])
    # Series b is constant on its training span: scaled by 1e-6 of its level, 10.
    assert scaler.scale_[1, 0] == pytest.approx(1e-5, rel=1e-12)
    assert scaler.n_fit_rows_.tolist() == [4, 4]


@pytest.mark.parametrize("method", ["standard", "robust", "minmax"])
def test_a_constant_series_is_scaled_relative_to_its_level_whatever_its_units(method):
    """A spread of exactly 0 (a constant series) got a scale of 1 in absolute units, while a
    spread of float noise got 1e-6 of the level: a constant 0.002 was scaled 500 times less
    than the same series recorded x1000, and the network's error on it became 100 times its
    level. The scale is now continuous in the spread and relative to the level, so it scales
    with the series' units; only a series of zeros (no level) keeps 1."""
    frame = pl.DataFrame({"id": ["c"] * 6 + ["z"] * 6, "t": list(range(6)) * 2})
    frame = frame.with_columns(y=pl.when(pl.col("id") == "c").then(0.002).otherwise(0.0))

    def scales(factor):
        panel = Panel.from_frame(
            frame.with_columns(pl.col("y") * factor), target="y", time_col="t", id_col="id"
        )
        assert panel.keys["id"].to_list() == ["c", "z"]
        return PanelScaler(method).fit(panel).scale_[:, 0]

    small, large = scales(1.0), scales(1000.0)
    np.testing.assert_allclose(small[0], 2e-9, rtol=1e-6)  # 1e-6 of 0.002 (float32 in panels)
    np.testing.assert_allclose(large[0], 1000 * small[0], rtol=1e-6)  # float32 rounding
    assert small[1] == large[1] == 1.0  # zeros: nothing to relate to


def test_a_covariate_constant_in_training_keeps_the_scale_one_a_target_gets_its_level():
    """The level-relative floor of a constant target reached the covariates too: a flag of 1
    throughout training got a scale of 1e-6, so its later turn to 0 reached the network as
    -1e6. An input keeps the scale 1 where it is constant (as scikit-learn's StandardScaler);
    a varying covariate and the target are scaled as before."""
    frame = pl.DataFrame(
        {
            "id": ["a"] * 6,
            "t": list(range(6)),
            "y": [5.0] * 6,
            "flag": [1.0] * 6,
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", covariates=["flag", "x"])
    scaler = PanelScaler("standard").fit(panel)
    np.testing.assert_allclose(scaler.scale_[0, 0], 5e-6, rtol=1e-6)  # the target: its level
    assert scaler.scale_[0, 1] == 1.0  # the flat flag: 1, as before this release
    np.testing.assert_allclose(scaler.scale_[0, 2], np.std(np.arange(1.0, 7.0)), rtol=1e-6)
    np.testing.assert_array_equal(
        input_scale(np.array([0.0, 2.0]), np.array([1.0, 0.0])), [1.0, 2.0]
    )
    _, feature_scale = moments(np.ones((10, 2)) * [3.0, 0.002], per_channel=True, inputs=True)
    assert feature_scale.tolist() == [1.0, 1.0]  # RNNRegressor's constant features


def test_spread_scale_is_continuous_at_a_spread_of_zero():
    center = np.array([0.002, -3.0, 0.0, 1e-40])
    at_zero = spread_scale(np.zeros(4), center)
    just_above = spread_scale(np.full(4, 1e-30), center)
    np.testing.assert_allclose(at_zero[:2], [2e-9, 3e-6], rtol=1e-12)
    np.testing.assert_array_equal(at_zero[:2], just_above[:2])
    assert at_zero[2:].tolist() == [1.0, 1.0]  # no level to relate a scale to
    assert spread_scale(np.array([np.nan, np.inf]), np.array([2.0, 2.0])).tolist() == [2e-6] * 2


def test_a_constant_series_below_1e_32_keeps_a_scale_relative_to_its_level():
    """A constant series at 1e-35 (float32 holds it: only nonzero values below 1.2e-38 are
    refused) has 1e-6 of its level below float32's smallest normal number: it got the
    absolute 1 of a series of zeros, so the network's error of about 0.3 made its forecasts
    1e34 times its level. It now gets that smallest normal number (whose inverse float32
    holds), and only a level below it (1e-40, 0) gets 1; its values round-trip in float32."""
    tiny = float(np.finfo(np.float32).tiny)
    center = np.array([1e-35, -1e-37, tiny, 1e-40, 0.0])
    assert spread_scale(np.zeros(5), center).tolist() == [tiny, tiny, tiny, 1.0, 1.0]
    panel = Panel.from_frame(
        pl.DataFrame({"id": ["c"] * 4, "t": range(4), "y": [1e-35] * 3 + [2e-35]}),
        target="y",
        time_col="t",
        id_col="id",
    )
    scaler = PanelScaler("standard").fit(panel, until=2)  # constant up to the last value
    assert scaler.scale_[0, 0] == pytest.approx(tiny)
    scaled = scaler.transform(panel)
    assert scaled.values[:3, 0].tolist() == [0.0] * 3
    assert 800 < scaled.values[3, 0] < 900  # the step of 1e-35: 851 scales, finite
    back = scaler.inverse_transform(scaled).values
    np.testing.assert_allclose(back, panel.values, rtol=1e-5, atol=0)


def test_later_values_do_not_change_the_fit():
    panel = two_series()
    before = PanelScaler("robust").fit(panel, until=3)
    panel.values[4:6, 0] = 1e6  # change the future of series a
    after = PanelScaler("robust").fit(panel, until=3)
    np.testing.assert_array_equal(before.center_, after.center_)
    np.testing.assert_array_equal(before.scale_, after.scale_)


@pytest.mark.parametrize("method", ["robust", "minmax"])
def test_robust_and_minmax_statistics(method):
    panel = two_series()
    scaler = PanelScaler(method).fit(panel, until=3)
    if method == "robust":
        assert scaler.center_[0, 0] == 2.5
        assert scaler.scale_[0, 0] == pytest.approx(1.5)
    else:
        out = scaler.transform(panel).values
        assert out[:4, 0].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_none_is_identity():
    panel = two_series()
    out = PanelScaler("none").fit(panel).transform(panel)
    np.testing.assert_array_equal(out.values, panel.values)


def test_gathered_batches_scaled_on_device_match_scaled_panel():
    panel = two_series()
    scaler = PanelScaler("standard").fit(panel, until=3)
    windows = make_windows(panel, lookback=2, horizon=1)
    batch = windows.gather(np.arange(len(windows)), scaling=scaler.tensors("cpu"))
    scaled = make_windows(scaler.transform(panel), 2, 1).gather(np.arange(len(windows)))
    np.testing.assert_allclose(batch.x.numpy(), scaled.x.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch.y.numpy(), scaled.y.numpy(), rtol=1e-6, atol=1e-6)


def test_state_round_trips_through_json():
    panel = two_series()
    scaler = PanelScaler("minmax").fit(panel, until=4)
    clone = PanelScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(clone.center_, scaler.center_)
    np.testing.assert_array_equal(clone.transform(panel).values, scaler.transform(panel).values)


def test_errors():
    panel = two_series()
    with pytest.raises(DataValidationError, match=r"method must be one of .*, got 'zscore'"):
        PanelScaler("zscore").fit(panel)
    with pytest.raises(NotFittedError, match="not fitted"):
        PanelScaler().transform(panel)
    with pytest.raises(DataValidationError, match="Invalid scaler state"):
        PanelScaler.from_dict({"method": "standard"})


def test_series_without_training_rows_is_left_unscaled_with_warning():
    frame = pl.DataFrame({"id": ["a", "a", "b", "b"], "t": [0, 1, 5, 6], "y": [1.0, 3.0, 7.0, 9.0]})
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    with pytest.warns(ForecasterWarning, match="no rows up to until=1"):
        scaler = PanelScaler().fit(panel, until=1)
    assert scaler.center_[1, 0] == 0.0
    assert scaler.scale_[1, 0] == 1.0


@st.composite
def panels(draw):
    n_series = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, 30), min_size=n_series, max_size=n_series))
    n_features = draw(st.integers(1, 3))
    values = draw(
        st.lists(
            st.floats(-1e4, 1e4, allow_nan=False, width=32),
            min_size=sum(lengths) * n_features,
            max_size=sum(lengths) * n_features,
        )
    )
    ids = np.repeat(np.arange(n_series), lengths)
    t = np.concatenate([np.arange(n) for n in lengths])
    data = np.asarray(values, dtype=np.float32).reshape(-1, n_features)
    cols = {f"f{j}": data[:, j] for j in range(n_features)}
    frame = pl.DataFrame({"id": ids, "t": t, **cols})
    return Panel.from_frame(frame, target=list(cols), time_col="t", id_col="id", freq="1i")


@settings(max_examples=60, deadline=None)
@given(panel=panels(), method=st.sampled_from(SCALING_METHODS), until=st.integers(0, 30))
def test_scaling_round_trips(panel, method, until):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        scaler = PanelScaler(method).fit(panel, until=until)
    scaled = scaler.transform(panel).values
    back = scaler.inverse_transform(scaler.transform(panel)).values
    assert np.all(scaler.scale_ > 0)
    assert np.isfinite(scaled[(panel.time <= until).to_numpy()]).all()  # the span: always
    # A row after the span is scaled with the span's statistics: after a span of float noise
    # (a spread of 2e-38) no finite scale keeps a jump to 1e4 within float32, so the property
    # holds for the later rows whose scaled value float32 holds.
    rows = np.repeat(np.arange(panel.n_series), panel.lengths)
    exact = (panel.values - scaler.center_[rows]) / scaler.scale_[rows]
    held = np.abs(exact) < float(np.finfo(np.float32).max)
    np.testing.assert_allclose(back[held], panel.values[held], rtol=1e-5, atol=1e-3)


def test_robust_scaling_of_float_noise_between_equal_quartiles_stays_finite():
    # Hypothesis found it: the quartiles of [-1.2e-38, 0, 0, 0, -4] are 1.2e-38 apart, so the
    # -4 (in the span) was scaled to -3.4e38 * 1.0000001: -inf in float32, and back to -inf.
    tiny = float(np.finfo(np.float32).tiny)
    frame = pl.DataFrame({"id": [0, 0, 1, 1, 1, 1, 1], "t": [0, 1, 0, 1, 2, 3, 4]}).with_columns(
        y=pl.Series([0.0, 0.0, -tiny, 0.0, 0.0, 0.0, -4.0], dtype=pl.Float32)
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", freq="1i")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # the flat series
        scaler = PanelScaler("robust").fit(panel, until=4)
    assert scaler.scale_[1, 0] == pytest.approx(1.6)  # the standard deviation, not the IQR
    scaled = scaler.transform(panel).values
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled[2:, 0], [0.0, 0.0, 0.0, 0.0, -2.5], atol=1e-30)  # median 0
    back = scaler.inverse_transform(scaler.transform(panel)).values
    np.testing.assert_allclose(back, panel.values, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("method", ["log", "log1p", "boxcox"])
def test_target_transforms_round_trip(method):
    from forecaster.data.transforms import fit_boxcox_lambdas, inverse_targets, transform_targets

    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "id": np.repeat(["a", "b"], 50),
            "t": np.tile(np.arange(50), 2),
            "y": np.concatenate([rng.lognormal(0, 1, 50), rng.uniform(0.5, 9, 50) ** 2]),
        }
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    lambdas = fit_boxcox_lambdas(panel) if method == "boxcox" else None
    moved = transform_targets(method, panel, lambdas)
    assert moved.values is not panel.values and not np.allclose(moved.values, panel.values)
    y = moved.values[:, :1].astype(np.float64).reshape(2, 50, 1)
    back = inverse_targets(method, y, None if lambdas is None else lambdas)
    np.testing.assert_allclose(back.reshape(-1), panel.values[:, 0], rtol=1e-4)


def _reference_statistics(panel, mask, method):
    """Per-series statistics computed one series at a time with numpy (the slow, obvious way)."""
    center = np.zeros((panel.n_series, panel.n_features))
    spread = np.ones_like(center)
    for i in range(panel.n_series):
        lo, hi = panel.offsets[i], panel.offsets[i + 1]
        x = panel.values[lo:hi][mask[lo:hi]].astype(np.float64)
        if len(x) == 0:
            continue
        if method == "standard":
            center[i], s = x.mean(axis=0), x.std(axis=0)
        elif method == "robust":
            q1, q2, q3 = np.quantile(x, [0.25, 0.5, 0.75], axis=0)
            center[i], s = q2, np.where(q3 > q1, q3 - q1, x.std(axis=0))
        else:
            center[i], s = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        spread[i] = np.where(s > 0, np.maximum(s, 1e-6 * np.abs(center[i])), 1.0)
    return center, spread


@pytest.mark.parametrize("method", ["standard", "robust", "minmax"])
def test_fit_in_blocks_of_series_matches_a_per_series_reference(monkeypatch, method):
    import forecaster.data.scaling as scaling

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=23)
    frame = pl.DataFrame(
        {
            "id": np.repeat(np.arange(23), lengths),
            "t": np.concatenate([np.arange(n) for n in lengths]),
            "y": rng.normal(5, 3, lengths.sum()),
            "x": rng.lognormal(0, 2, lengths.sum()),
        }
    )
    panel = Panel.from_frame(frame, target="y", covariates="x", time_col="t", id_col="id")
    mask = rng.random(int(panel.offsets[-1])) < 0.7
    mask[panel.offsets[4] : panel.offsets[5]] = False  # one series without training rows
    whole = PanelScaler(method)
    with pytest.warns(ForecasterWarning, match="1 of 23 series have no rows selected by the mask"):
        whole.fit(panel, mask=mask)
    monkeypatch.setattr(scaling, "_FIT_CHUNK_ROWS", 50)
    assert len(scaling._series_blocks(panel.offsets, 50)) > 5
    with pytest.warns(ForecasterWarning, match="1 of 23 series have no rows selected by the mask"):
        blocked = PanelScaler(method).fit(panel, mask=mask)
    np.testing.assert_array_equal(blocked.center_, whole.center_)
    np.testing.assert_array_equal(blocked.scale_, whole.scale_)
    center, spread = _reference_statistics(panel, mask, method)
    np.testing.assert_allclose(blocked.center_, center, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(blocked.scale_, spread, rtol=1e-5)
    expected_counts = [int(mask[a:b].sum()) for a, b in itertools.pairwise(panel.offsets)]
    assert blocked.n_fit_rows_.tolist() == expected_counts


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.integers(1, 50), min_size=1, max_size=40), rows=st.integers(1, 120))
def test_series_blocks_cover_every_series_once(lengths, rows):
    from forecaster.data.scaling import _series_blocks

    offsets = np.concatenate([[0], np.cumsum(lengths)])
    blocks = _series_blocks(offsets, rows)
    assert blocks[0][0] == 0 and blocks[-1][1] == len(lengths)
    assert all(a < b for a, b in blocks)
    assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(blocks))
    # A block only grows past `rows` rows when its last series had to be kept whole.
    for a, b in blocks:
        assert offsets[b] - offsets[a] <= rows or offsets[b - 1] - offsets[a] < rows


def test_fit_memory_does_not_grow_with_the_panel(monkeypatch):
    """numpy memory of fit is bounded by the block, not by the rows: no int64 series number
    or float64 copy per row of the whole panel (tracemalloc sees numpy's allocations)."""
    import tracemalloc

    import forecaster.data.scaling as scaling

    n_series, steps = 200, 5_000
    frame = pl.DataFrame(
        {
            "id": np.repeat(np.arange(n_series), steps),
            "t": np.tile(np.arange(steps), n_series),
            "y": np.random.default_rng(0).normal(size=n_series * steps).astype(np.float32),
        }
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    mask = np.ones(int(panel.offsets[-1]), dtype=bool)
    mask[::7] = False
    monkeypatch.setattr(scaling, "_FIT_CHUNK_ROWS", 50_000)
    tracemalloc.start()
    try:
        PanelScaler("standard").fit(panel, mask=mask)
        PanelScaler("robust").fit(panel, until=4_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows = n_series * steps
    # until= builds one bool per row (1 byte); the per-block arrays are ~50,000 rows.
    assert peak < 1.2 * rows + 2_000_000, f"{peak / rows:.2f} bytes per row"


def test_statistics_of_a_span_read_its_interpolated_end_as_known_there():
    """missing="interpolate": a gap across the end of the fitted span leaned on the first
    value after it; the scaler and the Box-Cox lambdas of the span are those of the frame cut
    at its end (the gap filled forward), whatever that value is."""
    rng = np.random.default_rng(0)
    y = 50 + 10 * np.sin(np.arange(80) / 4) + rng.normal(0, 1, 80)
    stats = []
    for shift in (0.0, 500.0):
        values = [None if 58 <= i <= 61 else float(v) for i, v in enumerate(y)]
        values[62] += shift
        frame = pl.DataFrame({"t": np.arange(80), "y": values})
        panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
        span = np.arange(80) <= 60
        cut = Panel.from_frame(
            frame.filter(pl.col("t") <= 60), target="y", time_col="t", missing="interpolate"
        )
        scaler, alone = (
            PanelScaler("standard").fit(panel, mask=span),
            PanelScaler("standard").fit(cut),
        )
        np.testing.assert_array_equal(scaler.center_, alone.center_)
        np.testing.assert_array_equal(scaler.scale_, alone.scale_)
        lambdas = fit_boxcox_lambdas(panel, mask=span)
        np.testing.assert_array_equal(lambdas, fit_boxcox_lambdas(cut))
        stats.append((scaler.center_.copy(), lambdas))
    np.testing.assert_array_equal(stats[0][0], stats[1][0])


def test_the_scale_floor_is_relative_to_the_level_and_robust_falls_back_to_the_std():
    """A series near 1e-11 kept the absolute floor 1e-6 as its scale (its inputs scaled to
    ~0, forecasts of +-1e5 times its level); an intermittent series (three quarters zeros) got
    scale 1 from its zero inter-quartile range (its loss in raw units)."""
    rng = np.random.default_rng(0)
    tiny = 1e-11 * (10 + rng.normal(size=100))
    spikes = np.where(rng.random(100) < 0.9, 0.0, rng.integers(1, 50, 100)).astype(float)
    flat = 1e3 + 2e-4 * rng.normal(size=100)  # noise on a level: the relative floor
    frame = pl.DataFrame(
        {"id": np.repeat(["tiny", "spikes", "flat"], 100), "t": np.tile(np.arange(100), 3),
         "y": np.concatenate([tiny, spikes, flat])}
    )  # fmt: skip
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    order = panel.keys["id"].to_list()
    standard = PanelScaler("standard").fit(panel).scale_[:, 0]
    robust = PanelScaler("robust").fit(panel).scale_[:, 0]
    values = {
        k: panel.values[panel.offsets[i] : panel.offsets[i + 1], 0] for i, k in enumerate(order)
    }
    assert standard[order.index("tiny")] == pytest.approx(
        values["tiny"].astype(float).std(), rel=1e-5
    )
    assert robust[order.index("spikes")] == pytest.approx(values["spikes"].std(), rel=1e-6)
    assert standard[order.index("flat")] == pytest.approx(1e-6 * values["flat"].mean(), rel=1e-6)


def test_a_covariate_constant_within_every_series_warns_at_fit():
    """Per-series scaling maps a covariate constant within each series to 0 (1.0 in one series
    and 5.0 in the other both became 0): it changed nothing, without a word."""
    from forecaster import RNNForecaster

    n = 100
    frame = pl.DataFrame(
        {
            "id": ["a"] * n + ["b"] * n,
            "t": list(range(n)) * 2,
            "y": np.r_[np.sin(np.arange(n) / 3), np.cos(np.arange(n) / 3)],
            "c": [1.0] * n + [5.0] * n,
            "d": np.arange(2 * n) * 1.0,
        }
    )
    params = dict(target="y", id_col="id", time_col="t", horizon=4, lookback=12)
    params |= dict(max_epochs=1, hidden_size=4, random_state=0, progress=False)
    with pytest.warns(ForecasterWarning, match=r"Covariates \['c'\] are constant within every"):
        RNNForecaster(covariates=["c", "d"], **params).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        RNNForecaster(covariates=["c"], scaling="none", baseline="none", **params).fit(frame)


def test_scaling_none_warns_about_targets_far_from_unit_scale():
    """scaling="none" trained on targets of spread 1e-6 as they were, and its forecasts were
    1e4 to 1e5 times off (MASE 14,705 against 2.2 at a spread of 1), without a word. fit now
    says how far the targets' typical spread is from 1 and what to pass; targets near unit
    scale, and the other scalings, fit without it."""
    from forecaster import RNNForecaster

    n = 100
    t = np.arange(n)
    wave = np.r_[np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 12)]
    params = dict(target="y", id_col="id", time_col="t", horizon=4, lookback=12)
    params |= dict(max_epochs=1, hidden_size=4, random_state=0, progress=False)
    params |= dict(baseline="none", target_transform="none")

    def fit(spread, scaling):
        frame = pl.DataFrame({"id": np.repeat(["a", "b"], n), "t": np.tile(t, 2)})
        frame = frame.with_columns(y=pl.Series(5 * spread + spread * wave))
        return RNNForecaster(scaling=scaling, **params).fit(frame)

    below = r"typical spread .* is 7\.\d+e-07, 1\.4e\+06 times below 1\. .*Pass scaling='standard'"
    with pytest.warns(ForecasterWarning, match=below):
        fit(1e-6, "none")
    with pytest.warns(ForecasterWarning, match=r"is 7\.\d+e\+05, 7\.1e\+05 times above 1\."):
        fit(1e6, "none")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(1.0, "none")
        fit(1e-6, "standard")
    assert not [w for w in caught if "scaling='none'" in str(w.message)]


def _frame(ids, values, covariate=None):
    frame = pl.DataFrame({"id": np.repeat(ids, 3), "t": [0, 1, 2] * len(ids), "y": values})
    return frame if covariate is None else frame.with_columns(x=pl.Series(covariate))


def test_transform_finds_each_series_by_its_id_and_refuses_unknown_ones():
    fitted = _frame(["a", "b"], [1.0, 2.0, 3.0, 100.0, 200.0, 300.0])
    scaler = PanelScaler("minmax").fit(
        Panel.from_frame(fitted, target="y", time_col="t", id_col="id")
    )
    # A panel reads its series in ascending id order, whatever the frame's: b alone is its
    # first series, the scaler's second.
    reordered = Panel.from_frame(
        fitted.filter(pl.col("id") == "b"), target="y", time_col="t", id_col="id"
    )
    assert reordered.keys["id"].to_list() == ["b"]
    np.testing.assert_allclose(scaler.transform(reordered).values[:, 0], [0, 0.5, 1])
    inverse = scaler.inverse_transform(scaler.transform(reordered))
    np.testing.assert_allclose(inverse.values, reordered.values, rtol=1e-6)
    other = Panel.from_frame(
        _frame(["b", "c"], [100.0, 200.0, 300.0, 5, 6, 7]), target="y", time_col="t", id_col="id"
    )
    with pytest.raises(DataValidationError, match=r"1 of the panel's 2 series were not seen.*'c'"):
        scaler.transform(other)
    with pytest.raises(DataValidationError, match="not seen"):
        scaler.inverse_transform(other)
    with pytest.raises(DataValidationError, match="not seen"):
        scaler.tensors("cpu", panel=other)
    renamed = Panel.from_frame(
        fitted.rename({"id": "store"}), target="y", time_col="t", id_col="store"
    )
    with pytest.raises(DataValidationError, match=r"identified by 'id', got .* by 'store'"):
        scaler.transform(renamed)


def test_transform_refuses_columns_in_other_roles():
    values = [1.0, 2.0, 3.0, 100.0, 200.0, 300.0]
    fitted = _frame(["a", "b"], values, [9.0] * 6)
    scaler = PanelScaler().fit(
        Panel.from_frame(fitted, target="y", time_col="t", id_col="id", covariates="x")
    )
    swapped = Panel.from_frame(fitted, target="x", time_col="t", id_col="id", covariates="y")
    with pytest.raises(DataValidationError, match=r"columns \['y', 'x'\], got .*\['x', 'y'\]"):
        scaler.transform(swapped)
    with pytest.raises(DataValidationError, match="columns"):
        scaler.inverse_transform(swapped)


def test_tensors_for_a_panel_follow_its_series_and_scale_gathered_batches_alike():
    fitted = _frame(["a", "b"], [1.0, 2.0, 3.0, 100.0, 200.0, 300.0])
    scaler = PanelScaler("minmax").fit(
        Panel.from_frame(fitted, target="y", time_col="t", id_col="id")
    )
    panel = Panel.from_frame(
        fitted.filter(pl.col("id") == "b"), target="y", time_col="t", id_col="id"
    )
    center, scale = scaler.tensors("cpu", panel=panel)
    assert center[:, 0].tolist() == [100.0] and scale[:, 0].tolist() == [200.0]
    windows = make_windows(panel, lookback=2, horizon=1)
    batch = windows.gather(np.arange(len(windows)), scaling=(center, scale))
    expected = make_windows(scaler.transform(panel), 2, 1).gather(np.arange(len(windows)))
    np.testing.assert_allclose(batch.x.numpy(), expected.x.numpy(), rtol=1e-6)


def test_batches_refuse_the_tensors_of_another_panels_series():
    """Was: ``batches(scaling=scaler.tensors(device))`` over another panel scaled its series by
    position with the fitted series' statistics (c with a's, d with b's), without an error."""
    fitted = Panel.from_frame(
        _frame(["a", "b"], [1.0, 2.0, 3.0, 1000.0, 1001.0, 1002.0], [5.0] * 6),
        target="y",
        time_col="t",
        id_col="id",
        covariates="x",
    )
    scaler = PanelScaler("standard").fit(fitted)
    tensors = scaler.tensors("cpu")
    batch = next(make_windows(fitted, 2, 1).batches(4, shuffle=False, scaling=tensors))
    np.testing.assert_allclose(batch.x[:, :, 0].abs().max(), 1.2247, rtol=1e-4)  # its own
    other = _frame(["c", "d"], [1000.0, 1001.0, 1002.0, 1.0, 2.0, 3.0], [5.0] * 6)
    panels = {
        r"the series 'a', 'b' .* the series 'c', 'd'": Panel.from_frame(
            other, target="y", time_col="t", id_col="id", covariates="x"
        ),
        # a panel reads its series in ascending id order: b alone is at another position
        r"the series 'a', 'b' .* the series 'b'": Panel.from_frame(
            _frame(["b"], [1000.0, 1001.0, 1002.0], [5.0] * 3),
            target="y",
            time_col="t",
            id_col="id",
            covariates="x",
        ),
        r"columns \['y', 'x'\], got .*\['x', 'y'\]": Panel.from_frame(
            other, target="x", time_col="t", id_col="id", covariates="y"
        ),
    }
    for message, panel in panels.items():
        windows = make_windows(panel, 2, 1)
        with pytest.raises(DataValidationError, match=message + r".*tensors\(device, panel="):
            next(windows.batches(4, seed=0, scaling=tensors))
        with pytest.raises(DataValidationError, match=message):
            windows.gather([0], scaling=tensors)
    reordered_panel = panels[r"the series 'a', 'b' .* the series 'b'"]
    own = next(
        make_windows(reordered_panel, 2, 1).batches(
            4, shuffle=False, scaling=scaler.tensors("cpu", panel=reordered_panel)
        )
    )
    np.testing.assert_allclose(own.x[:, :, 0].abs().max(), 1.2247, rtol=1e-4)
    # A scaler without keys matches by position: the same number of series passes.
    legacy = {k: v for k, v in scaler.to_dict().items() if k != "keys"}
    positional = PanelScaler.from_dict(legacy).tensors("cpu")
    two = panels[r"the series 'a', 'b' .* the series 'c', 'd'"]
    next(make_windows(two, 2, 1).batches(4, seed=0, scaling=positional))
    one = Panel.from_frame(other.head(3), target="y", time_col="t", id_col="id", covariates="x")
    with pytest.raises(DataValidationError, match=r"for 2 series .* panel of 1 series"):
        make_windows(one, 2, 1).gather([0], scaling=positional)


def test_a_scaler_restored_with_or_without_keys():
    fitted = _frame(["a", "b"], [1.0, 2.0, 3.0, 100.0, 200.0, 300.0])
    panel = Panel.from_frame(fitted, target="y", time_col="t", id_col="id")
    scaler = PanelScaler("minmax").fit(panel)
    other = Panel.from_frame(
        fitted.with_columns(id=pl.col("id") + "2"), target="y", time_col="t", id_col="id"
    )
    clone = PanelScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    with pytest.raises(DataValidationError, match="not seen"):
        clone.transform(other)
    meta, arrays = scaler.state()
    keyed = PanelScaler.from_state(meta, arrays, scaler.keys_)
    assert keyed.keys_.equals(scaler.keys_)
    legacy = {k: v for k, v in scaler.to_dict().items() if k != "keys"}  # an older version's
    by_position = PanelScaler.from_dict(legacy)
    assert by_position.keys_ is None
    np.testing.assert_array_equal(
        by_position.transform(other).values, scaler.transform(panel).values
    )
    with pytest.raises(DataValidationError, match="keys must be a polars DataFrame of one id"):
        PanelScaler.from_state(meta, arrays, scaler.keys_.head(1))


def test_a_bad_method_is_refused_under_its_own_name():
    """PanelScaler(method=...) was refused as "scaling must be one of ..." (the estimators'
    parameter), naming a parameter the user did not pass."""
    frame = pl.DataFrame({"t": np.arange(10), "y": np.arange(10.0)})
    panel = Panel.from_frame(frame, target="y", time_col="t")
    with pytest.raises(DataValidationError, match=r"^method must be one of 'standard'"):
        PanelScaler(method="bogus").fit(panel)

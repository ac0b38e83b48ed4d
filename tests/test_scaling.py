from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.data import Panel
from forecaster.exceptions import DataValidationError, ForecasterWarning, NotFittedError
from forecaster.scaling import SCALING_METHODS, PanelScaler
from forecaster.windows import make_windows


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
    # Series b is constant on its training span: scale 1, only shifted.
    assert scaler.scale_[1, 0] == 1.0
    assert scaler.n_fit_rows_.tolist() == [4, 4]


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
    with pytest.raises(DataValidationError, match="scaling='zscore' is not a scaling method"):
        PanelScaler("zscore").fit(panel)
    with pytest.raises(NotFittedError, match="not fitted"):
        PanelScaler().transform(panel)
    with pytest.raises(DataValidationError, match="Invalid scaler state"):
        PanelScaler.from_dict({"method": "standard"})


def test_series_without_training_rows_is_left_unscaled_with_warning():
    frame = pl.DataFrame({"id": ["a", "a", "b", "b"], "t": [0, 1, 5, 6], "y": [1.0, 3.0, 7.0, 9.0]})
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    with pytest.warns(ForecasterWarning, match="no rows up to 1"):
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
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)
            scaler = PanelScaler(method).fit(panel, until=until)
    back = scaler.inverse_transform(scaler.transform(panel)).values
    np.testing.assert_allclose(back, panel.values, rtol=1e-5, atol=1e-3)
    assert np.all(scaler.scale_ > 0)

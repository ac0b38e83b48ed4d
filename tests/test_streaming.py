"""Stateful streaming: ``model.stream(frame)``, ``state.update(rows)``, ``state.forecast()``
give predict's forecast on the whole history, at O(new rows) per update; the heads and inputs
without an exact incremental form are refused."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import for_head
from polars.testing import assert_frame_equal

from forecaster import RNNForecaster
from forecaster.exceptions import DataValidationError, StaleSeriesWarning

SMALL = {"hidden_size": 8, "max_epochs": 1, "random_state": 0, "batch_size": 64}


def panel(n_series: int = 3, length: int = 80, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows = []
    for s in range(n_series):
        y = 10 + 3 * np.sin(t / 4 + s) + rng.normal(0, 0.3, length).cumsum() * 0.2 + s
        rows.append(pl.DataFrame({"id": f"s{s}", "t": t, "y": y, "z": y[::-1] + 20.0}))
    return pl.concat(rows)


def fitted(data: pl.DataFrame, **params: object) -> RNNForecaster:
    args = {"target": "y", "time_col": "t", "id_col": "id", "lookback": 14, "horizon": 5}
    args.update(segment_length=4, **SMALL)
    args.update(params)
    return RNNForecaster(**for_head(args, str(args.get("head", "segment")))).fit(data)


def stream_in_steps(model: RNNForecaster, data: pl.DataFrame, start: int, sizes: list[int]):
    """Stream ``data`` from time ``start`` on in updates of ``sizes`` rows per series, checking
    the forecast against predict after each update."""
    state = model.stream(data.filter(pl.col("t") < start))
    end = start
    for size in sizes:
        rows = data.filter((pl.col("t") >= end) & (pl.col("t") < end + size))
        state.update(rows.sample(fraction=1.0, shuffle=True, seed=size))  # any row order
        end += size
        expected = model.predict(data.filter(pl.col("t") < end))
        got = state.forecast()
        assert got.columns == expected.columns and got["t"].equals(expected["t"])
        assert got["id"].equals(expected["id"])
        np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5, atol=1e-5)
    return state


@pytest.mark.parametrize(
    "params",
    [
        {},  # the default: last-value normalisation, GRU
        {"normalization": "revin", "cell": "lstm", "num_layers": 2},
        {"normalization": "none", "lookback": 13, "target_transform": "log"},  # left padding
        {"loss": "quantile", "scaling": "robust"},
        {"n_ensemble": 2, "normalization": "revin"},
    ],
    ids=["default", "revin-lstm", "none-padded-log", "quantile", "ensemble"],
)
def test_stream_forecast_equals_predict_on_the_full_history(params):
    data = panel()
    model = fitted(data, **params)
    stream_in_steps(model, data, 40, [1, 3, 0, 7, 20, 2])  # 20 > lookback: a whole new window


def test_a_streams_forecasts_are_float64_as_predicts():
    """predict's forecasts are Float64 (they were Float32); a stream's, which go through the
    same output check, too, near 1.2e10 not rounded to float32's steps of 1024."""
    data = panel().with_columns(pl.col("y") * 1e5 + 1.2e10)
    model = fitted(data.filter(pl.col("t") < 60), baseline="none")
    state = model.stream(data.filter(pl.col("t") < 60))
    state.update(data.filter(pl.col("t") >= 60))
    got, expected = state.forecast(), model.predict(data)
    assert got.schema["y"] == expected.schema["y"] == pl.Float64
    assert (got["y"] % 1024 != 0).all()
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-9)


def test_stream_of_several_targets_and_a_single_series():
    data = panel(1).drop("id")
    model = fitted(data, target=["y", "z"], id_col=None, normalization="revin")
    state = model.stream(data.head(50))
    state.update(data.slice(50, 9))
    expected = model.predict(data.head(59))
    got = state.forecast()
    assert got.columns == ["t", "y", "z"]
    np.testing.assert_allclose(got.select("y", "z"), expected.select("y", "z"), rtol=1e-5)


def test_an_update_costs_its_new_rows_whatever_the_lookback():
    data = panel(2, 200)
    counts = {}
    for lookback in (16, 96):
        model = fitted(data, lookback=lookback, max_epochs=1)
        state = model.stream(data.filter(pl.col("t") < 150))
        before = state.steps_embedded
        state.update(data.filter(pl.col("t").is_between(150, 154)))  # 5 steps of 2 series
        counts[lookback] = state.steps_embedded - before
    assert counts == {16: 10, 96: 10}


def test_series_without_new_rows_keep_their_forecast():
    data = panel()
    model = fitted(data)
    state = model.stream(data.filter(pl.col("t") < 60))
    before = state.forecast()
    state.update(data.filter((pl.col("id") == "s1") & pl.col("t").is_between(60, 62)))
    after = state.forecast()
    assert after.filter(pl.col("id") != "s1").equals(before.filter(pl.col("id") != "s1"))
    assert after.filter(pl.col("id") == "s1")["t"].min() == 63


def test_a_streams_series_left_behind_are_named_as_predict_names_them():
    # a sensor that stops reporting (hourly readings): its forecast starts before the others'
    # latest time, which predict on the same history says in a StaleSeriesWarning; the stream
    # said nothing
    hour = pl.duration(hours=pl.col("t"))
    data = panel().with_columns(t=pl.lit(dt.datetime(2024, 1, 1)) + hour)
    model = fitted(data)
    t60, t62 = (dt.datetime(2024, 1, 1) + dt.timedelta(hours=h) for h in (60, 62))
    state = model.stream(data.filter(pl.col("t") < t60))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state.forecast()  # every series at its latest time: nothing to say
    state.update(data.filter((pl.col("id") == "s1") & pl.col("t").is_between(t60, t62)))
    seen = data.filter((pl.col("t") < t60) | ((pl.col("id") == "s1") & (pl.col("t") <= t62)))
    with pytest.warns(StaleSeriesWarning) as native:
        model.predict(seen)
    with pytest.warns(
        StaleSeriesWarning, match=r"stream's last time \(2024-01-03 14:00:00\)"
    ) as streamed:
        state.forecast()
    expected = str(native[0].message).replace("the frame's", "the stream's")
    assert [str(w.message) for w in streamed] == [expected]
    assert "['s0', 's2']" in expected


def test_integer_positions_left_behind_are_not_stale():
    """Integer steps are positions of independent sequences (clips of different lengths),
    not shared times: a stream (and predict) whose series end at other positions said "bring
    their data up to date"; they say nothing, as a backtest's origins="auto" reads them."""
    data = panel()
    model = fitted(data)
    state = model.stream(data.filter(pl.col("t") < 60))
    state.update(data.filter((pl.col("id") == "s1") & pl.col("t").is_between(60, 62)))
    seen = data.filter((pl.col("t") < 60) | ((pl.col("id") == "s1") & (pl.col("t") <= 62)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleSeriesWarning)
        state.forecast()
        model.predict(seen)


@pytest.mark.parametrize("head", ["direct", "seq2seq", "recursive"])
def test_heads_without_an_incremental_form_are_refused(head):
    data = panel(1)
    model = fitted(data, head=head)
    with pytest.raises(DataValidationError, match=rf"head={head!r}.*cannot drop the step"):
        model.stream(data)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"covariates": "z"}, r"only inputs are the targets.*1 more column"),
        ({"calendar": ["dayofweek"]}, r"only inputs are the targets"),
    ],
)
def test_models_with_other_inputs_are_refused(params, message):
    data = panel(1).with_columns(
        t=pl.datetime(2024, 1, 1) + pl.duration(hours=pl.col("t")), id=pl.lit("a")
    )
    model = fitted(data, **params)
    with pytest.raises(DataValidationError, match=message):
        model.stream(data)


def test_unseen_series_unknown_series_and_gaps_are_refused():
    data = panel()
    model = fitted(data.filter(pl.col("id") != "s2"))
    with pytest.raises(DataValidationError, match=r"series seen in fit; \['s2'\]"):
        model.stream(data)
    state = model.stream(data.filter((pl.col("id") != "s2") & (pl.col("t") < 60)))
    with pytest.raises(DataValidationError, match=r"series \['s2'\] that are not in the stream"):
        state.update(data.filter(pl.col("t") == 60))
    with pytest.raises(DataValidationError, match=r"starts at 61, but its next step is 60"):
        state.update(data.filter((pl.col("id") == "s0") & (pl.col("t") == 61)))
    with pytest.raises(DataValidationError, match=r"starts at 59, but its next step is 60"):
        state.update(data.filter((pl.col("id") == "s0") & (pl.col("t") == 59)))


def test_an_update_whose_rows_span_a_gap_is_filled_as_predict_fills_it():
    """A ffill model's update of rows 60 and 62 (61 lost) was refused: "The data are not
    sampled every 1i ... Pass freq='2i'" (the own-step check of a whole frame); with one more
    row it passed. It continues the stream as predict on the whole history does."""
    data = panel()
    model = fitted(data, missing="ffill")
    state = model.stream(data.filter(pl.col("t") < 60))
    rows = data.filter(pl.col("t").is_in([60, 62]))
    state.update(rows)
    expected = model.predict(pl.concat([data.filter(pl.col("t") < 60), rows]))
    got = state.forecast()
    assert got["t"].equals(expected["t"]) and got["t"].min() == 63
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5, atol=1e-5)
    with pytest.raises(DataValidationError, match=r"not sampled every 1i"):
        model.predict(data.filter(pl.col("t") % 2 == 0))  # a whole frame is still checked


def test_a_stream_refuses_a_model_refitted_or_changed_after_it_started():
    """The stream held the earlier network but read the model's current transforms, horizon
    and missing policy: after a refit with a log transform it forecast ~15,000 for values
    near 10; after set_params(missing="zero") it filled silently; horizon gave a raw error."""
    data = panel()
    model = fitted(data, target_transform="none")
    state = model.stream(data.filter(pl.col("t") < 60))
    model.set_params(missing="zero")
    with pytest.raises(DataValidationError, match=r"update a stream of .* missing"):
        state.update(data.filter(pl.col("t") == 60))
    model.set_params(missing="error", target_transform="log").fit(data)
    with pytest.raises(DataValidationError, match=r"fitted again after this stream started"):
        state.forecast()
    fresh = model.stream(data.filter(pl.col("t") < 60))  # a new stream follows the new fit
    np.testing.assert_allclose(
        fresh.forecast()["y"], model.predict(data.filter(pl.col("t") < 60))["y"], rtol=1e-5
    )


def test_interpolate_refuses_a_start_frame_whose_last_target_is_missing():
    """predict fills that value again from the next row, which the stream's state froze:
    after one update the stream drifted from predict by 2e-2 (values near 15)."""
    data = panel().with_columns(
        y=pl.when((pl.col("id") == "s1") & (pl.col("t") == 59)).then(None).otherwise("y")
    )
    model = fitted(data.filter(pl.col("t") < 50), missing="interpolate")
    with pytest.raises(DataValidationError, match=r"last row of the stream's start frame of "):
        model.stream(data.filter(pl.col("t") < 60))
    state = model.stream(data.filter(pl.col("t") < 58))  # as the message advises
    state.update(data.filter(pl.col("t").is_in([58, 59, 60])))
    expected = model.predict(data.filter(pl.col("t") <= 60))
    np.testing.assert_allclose(state.forecast()["y"], expected["y"], rtol=1e-5, atol=1e-5)


def test_a_stream_forecasts_in_the_order_predict_returns():
    """A stream started from a frame whose series come s2, s0, s1 forecast them in that
    order, and predict now sorts by (id, time) as its docstring says: the stream follows."""
    data = panel()
    model = fitted(data)
    start = data.filter(pl.col("t") < 60).sort("id", "t", descending=[True, False])
    state = model.stream(start)
    expected = model.predict(start)
    got = state.forecast()
    assert got["id"].to_list() == expected["id"].to_list() == sorted(expected["id"].to_list())
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5, atol=1e-5)


def test_an_update_of_a_series_too_short_to_start_the_stream_says_why():
    data = panel()
    model = fitted(data)
    start = data.filter((pl.col("t") < 60) & ((pl.col("id") != "s1") | (pl.col("t") >= 50)))
    with pytest.warns(UserWarning, match=r"Dropped 1 series shorter than 14"):
        state = model.stream(start)  # s1 has 10 rows: fewer than the lookback
    with pytest.raises(DataValidationError, match=r"\['s1'\] .* at least lookback_ = 14 rows"):
        state.update(data.filter(pl.col("t") == 60))


def test_business_days_stream_and_skip_weekends():
    days = pl.DataFrame(
        {"t": pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 6, 28), "1d", eager=True)}
    ).filter(pl.col("t").dt.weekday() <= 5)
    days = days.with_columns(y=pl.int_range(pl.len()).cast(pl.Float64).sin() + 5)
    model = fitted(days, id_col=None, freq="1bd")
    state = model.stream(days.head(100))
    state.update(days.slice(100, 7))  # across weekends
    expected = model.predict(days.head(107))
    got = state.forecast()
    assert got["t"].equals(expected["t"])
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5)


@pytest.mark.filterwarnings("ignore::forecaster.exceptions.BaselineWarning")  # a tiny net
def test_a_stream_steps_across_a_skipped_local_midnight():
    """Sao Paulo had no midnight on 2018-11-04 (polars dates it 23:00 the day before): a
    stream whose last row is that day expected its next step at 23:00 (stepped from the last
    row alone) and refused the next midnight."""
    times = pl.datetime_range(
        dt.datetime(2018, 9, 1), dt.datetime(2018, 11, 30), "1d",
        time_zone="America/Sao_Paulo", eager=True,
    )  # fmt: skip
    days = pl.DataFrame({"t": times, "y": np.sin(np.arange(len(times))) + 5.0}).head(76)
    skipped = times.dt.hour().to_list().index(23)
    model = fitted(days.head(skipped - 3), id_col=None, freq="1d")
    for start, size in ((skipped + 1, 3), (skipped, 3), (skipped - 1, 1)):
        state = model.stream(days.head(start))
        state.update(days.slice(start, size))  # refused: "its next step is ... 23:00"
        expected = model.predict(days.head(start + size))
        got = state.forecast()
        assert got["t"].equals(expected["t"]) and got["t"].is_in(times.implode()).all()
        np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-5)


def test_month_frequencies_and_unfitted_models_are_refused():
    months = pl.DataFrame(
        {"t": pl.date_range(dt.date(2000, 1, 31), dt.date(2006, 12, 31), "1mo", eager=True)}
    ).with_columns(y=pl.int_range(pl.len()).cast(pl.Float64).sin())
    model = fitted(months, id_col=None, max_epochs=1)
    with pytest.raises(DataValidationError, match=r"freq is 1mo, whose forecast times follow"):
        model.stream(months)
    with pytest.raises(Exception, match=r"not fitted|fit"):
        RNNForecaster(target="y", time_col="t").stream(months)


def test_a_model_with_static_covariates_is_refused_by_name():
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "id": np.repeat(["a", "b"], 60),
            "time": np.tile(np.arange(60), 2),
            "y": rng.normal(size=120),
            "kind": np.repeat(["x", "z"], 60),
        }
    )
    model = RNNForecaster(
        target="y",
        id_col="id",
        static_covariates=["kind"],
        lookback=12,
        horizon=4,
        hidden_size=8,
        segment_length=4,
        max_epochs=1,
        random_state=0,
        progress=False,
    ).fit(frame)
    with pytest.raises(DataValidationError, match="static covariates"):
        model.stream(frame)


@pytest.mark.parametrize("normalization", ["last", "revin", "none"])
def test_stream_of_a_network_with_a_linear_skip_equals_its_forward(normalization):
    import torch

    from forecaster.nn import RecurrentNet
    from forecaster.nn.streaming import SegmentStream

    torch.manual_seed(0)
    net = RecurrentNet(
        n_features=2,
        n_targets=2,
        lookback=10,
        horizon=5,
        hidden_size=6,
        segment_length=4,
        normalization=normalization,
        linear_skip=True,
    ).eval()
    with torch.no_grad():  # the skip starts at zero: give it weights to check
        net.skip_weight.normal_()
        net.skip_bias.normal_()
    series = np.random.default_rng(1).normal(size=(3, 17, 2))
    state = SegmentStream(net, series[:, :10])
    state.update(np.repeat(np.arange(3), 7), series[:, 10:].reshape(-1, 2))
    with torch.no_grad():
        expected = net(torch.from_numpy(series[:, 7:]).float()).double().numpy()
    np.testing.assert_allclose(state.forecast(), expected, atol=1e-4)


def test_a_streams_blend_partner_reads_the_frames_float64_values_as_predicts():
    """1.23456789e10 + a weekly swing + cents (float32 steps of 1024 there): the seasonal
    naive is exact on validation and the blend takes it alone (w = 0). A stream formed the
    partner from its float32 window, 493 off predict; now from the start frame's and the
    updates' own values, bit for bit predict's (updates of 1 row, of more than lookback rows,
    and one without rows of a series)."""
    t = np.arange(150)
    data = pl.concat(
        pl.DataFrame({"id": i, "t": t, "y": 1.23456789e10 + 2e6 * np.sin(2 * np.pi * t / 7 + k)})
        for k, i in enumerate("ab")
    ).with_columns(pl.col("y").round(2) + 0.37)
    model = fitted(data, lookback=14, horizon=7, segment_length=7)
    assert model.baseline_ is not None and model.baseline_.weights == (0.0,)
    state = model.stream(data.filter(pl.col("t") < 120))
    ends = {"a": 120, "b": 120}
    for ids, end in [("ab", 121), ("ab", 141), ("a", 145), ("b", 150)]:
        new = pl.col("id").is_in(list(ids)) & (pl.col("t") < end)
        state.update(data.filter(new & (pl.col("t") >= pl.col("id").replace_strict(ends))))
        ends.update(dict.fromkeys(ids, end))
        seen = data.filter(pl.col("t") < pl.col("id").replace_strict(ends))
        assert state.forecast()["y"].to_list() == model.predict(seen)["y"].to_list()


def test_a_stream_at_network_weight_zero_forecasts_as_predict_without_the_networks_outputs():
    """A blend weighing the network by 0: predict forms the partner alone and no longer reads
    the network's outputs (not even NaN ones); the stream still unscaled them and refused
    the forecasts predict returns. Now both give the partner's forecasts, bit for bit."""
    import torch

    from forecaster.estimators.baseline_blend import BaselineBlend

    data = panel()
    model = fitted(data, baseline="none")
    model.baseline_ = BaselineBlend.single(m=7, weights=(0.0,))
    with torch.no_grad():
        for parameter in model.network_.parameters():
            parameter.fill_(float("nan"))  # outputs no forecast reads
    state = model.stream(data.filter(pl.col("t") < 60))
    state.update(data.filter(pl.col("t") >= 60))
    got, expected = state.forecast(), model.predict(data)
    assert got["y"].to_list() == expected["y"].to_list() and got["y"].is_finite().all()
    model.baseline_ = BaselineBlend.single(m=7, weights=(0.25,))  # read: refused by both
    for forecast in (model.stream(data).forecast, lambda: model.predict(data)):
        with pytest.raises(DataValidationError, match="not a finite number"):
            forecast()


def test_a_stream_of_a_frame_with_rows_ahead_names_the_rows_to_start_from():
    """stream(frame) of a frame ending with rows ahead (targets null) under missing='error'
    advised "Pass missing='ffill'", which starts the stream from made-up targets; it now
    names the frame up to the last observed targets (as predict's error does), which
    streams."""
    data = panel()
    model = fitted(data.filter(pl.col("t") < 70))
    ahead = data.with_columns(y=pl.when(pl.col("t") >= 70).then(None).otherwise("y"))
    with pytest.raises(DataValidationError) as caught:
        model.stream(ahead)
    told = str(caught.value)
    assert "Pass missing='ffill'" not in told and "rows ahead, after 69" in told, told
    assert "pass stream(frame.filter(pl.col('t') <= 69))" in told and "cutoff" not in told
    state = model.stream(ahead.filter(pl.col("t") <= 69))
    assert_frame_equal(state.forecast(), model.predict(ahead, cutoff=69))


@pytest.mark.parametrize("asked", [{"level": 80}, {"quantiles": [0.1, 0.9]}])
def test_a_streams_forecast_refuses_intervals_naming_predict(asked):
    data = panel(n_series=1, length=40)
    state = fitted(data, max_epochs=1).stream(data)
    name = next(iter(asked))
    with pytest.raises(TypeError, match=rf"point forecasts only.*{name}=.*model\.predict\("):
        state.forecast(**asked)
    assert state.forecast().height == 5  # the point forecast is unchanged

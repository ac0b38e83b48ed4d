"""plot_forecast and plot_backtest (matplotlib figures, no pyplot), and the forecast.png of
MLflow runs and of pipeline runs, both drawn with plot_forecast."""

from __future__ import annotations

import datetime as dt
import io
import types

import matplotlib
import numpy as np
import polars as pl
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.dates import ConciseDateFormatter
from matplotlib.figure import Figure

import forecaster
from forecaster import DataValidationError, RNNForecaster
from forecaster.evaluation import backtest, plot_backtest, plot_forecast, seasonal_naive
from forecaster.jobs.outputs import write_forecast_plot
from forecaster.tracking.plot import forecast_plot

matplotlib.use("Agg")

TINY = {
    "target": "y",
    "id_col": "id",
    "lookback": 24,
    "horizon": 6,
    "hidden_size": 8,
    "segment_length": 6,
    "max_epochs": 1,
    "windows_per_epoch": 64,
    "batch_size": 64,
    "random_state": 0,
    "progress": False,
    "device": "cpu",
}


def panel(n_series: int = 5, length: int = 120) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return pl.concat(
        pl.DataFrame(
            {
                "id": f"s{k}",
                "time": t,
                "y": 10 * k + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, length),
            }
        )
        for k in range(n_series)
    )


def bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_plot_forecast_draws_history_point_and_bands():
    history = panel()
    fc = seasonal_naive(history, 12, m=24, target="y", id_col="id", freq=1, level=[80, 95])
    fig = plot_forecast(history, fc, id_col="id")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # max_series
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["history", "forecast"]
    assert len(bands(ax)) == 2
    assert ax.get_lines()[0].get_xdata().size == 36  # 3 x the forecast's 12 steps
    assert ax.get_title() == "y · s0 · as of 119"
    fig.savefig(io.BytesIO(), format="png")
    # one level, chosen series, an actual line, a longer tail
    actual = history.with_columns(pl.col("time") + 120)
    fig = plot_forecast(
        history, fc, id_col="id", levels=[80], series=["s3"], actual=actual, tail=50
    )
    assert len(fig.axes) == 1 and len(bands(fig.axes[0])) == 1
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["history", "actual", "forecast"]
    assert fig.axes[0].get_title() == "y · s3 · as of 119"


def test_plot_forecast_shades_quantile_pairs_and_a_single_series():
    history = panel(1).drop("id")
    fc = seasonal_naive(history, 6, m=24, target="y", freq=1, quantiles=[0.1, 0.5, 0.9])
    fig = plot_forecast(history, fc)
    assert len(fig.axes) == 1 and len(bands(fig.axes[0])) == 1  # the pair 0.1 / 0.9: 80 %
    assert fig.axes[0].get_title() == "y · as of 119"
    point = seasonal_naive(history, 6, m=24, target="y", freq=1)
    fig = plot_forecast(None, point)
    assert bands(fig.axes[0]) == []
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["forecast"]
    assert fig.axes[0].get_title() == "y"  # no history, no origin: no as-of to show


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": [50]}, r"levels \[50\] are not in the forecast frame"),
        ({"series": ["nope"]}, "not in the forecast frame"),
        ({"max_series": 0}, "max_series must be"),
        ({"target": "z"}, "not a column"),
        ({"time_col": "when"}, "lacks the columns"),
    ],
)
def test_plot_forecast_errors(kwargs, message):
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1, level=[80])
    with pytest.raises(DataValidationError, match=message):
        plot_forecast(history, fc, **{"id_col": "id", **kwargs})


class IntervalForecaster(RNNForecaster):
    def predict(self, frame, *args, **kwargs):
        out = super().predict(frame, *args, **kwargs)
        return out.with_columns(
            (pl.col("y") - 1).alias("y_lo_80"), (pl.col("y") + 1).alias("y_hi_80")
        )


@pytest.fixture(scope="module")
def fitted() -> RNNForecaster:
    return IntervalForecaster(**TINY).fit(panel(3))


def test_plot_backtest_draws_every_fold(fitted):
    frame = panel(3)
    result = backtest(fitted, frame, folds=3)
    fig = plot_backtest(result, frame, tail=24)
    assert len(fig.axes) == 3
    ax = fig.axes[0]
    lines = ax.get_lines()
    # the 24 points of tail before the first cutoff, the cutoff, the 18 forecast times
    assert lines[0].get_label() == "actual" and lines[0].get_xdata().size == 24 + 1 + 18
    labels = [line.get_label() for line in lines]
    assert labels[1] == "forecast" and all(label.startswith("_") for label in labels[2:])
    assert len(lines) == 1 + 3 and len(bands(ax)) == 3  # a line and a band per fold
    cutoffs = result.forecasts.filter(pl.col("id") == "s0")["cutoff"].unique().sort().to_list()
    assert [line.get_xdata()[0] for line in lines[1:]] == cutoffs  # each fold from its cutoff
    assert ax.get_title() == f"y · s0 · cutoffs {cutoffs[0]} to {cutoffs[-1]}"
    fig = plot_backtest(result, series=["s1"])
    assert len(fig.axes) == 1 and fig.axes[0].get_lines()[0].get_xdata().size == 18
    # without the history, the first fold's cutoff has no actual value to start from
    assert fig.axes[0].get_lines()[1].get_xdata().size == 6
    with pytest.raises(DataValidationError, match="needs a BacktestResult"):
        plot_backtest(result.forecasts)


def test_plots_are_exported_from_the_package():
    assert forecaster.plot_forecast is plot_forecast
    assert forecaster.plot_backtest is plot_backtest


def test_forecast_png_of_a_point_model_is_unchanged(fitted):
    """forecast_plot (the MLflow forecast.png) keeps its figure for point models: one axes
    per series with history, held-out actual values and the forecast."""
    model = RNNForecaster(**TINY).fit(panel(3))
    fig = forecast_plot(model, panel(3), n_series=2)
    assert len(fig.axes) == 2
    ax = fig.axes[1]
    assert [line.get_label() for line in ax.get_lines()] == ["history", "actual", "forecast"]
    sizes = [line.get_xdata().size for line in ax.get_lines()]
    assert sizes == [max(24, 3 * 6), 6, 1 + 6]  # the forecast joined to the last observation
    assert ax.get_title() == "y · s1 · as of 113" and bands(ax) == []
    assert fig.get_size_inches().tolist() == [9, 0.4 + 2.2 * 2]


def dated_panel(n_series: int = 3, length: int = 60) -> pl.DataFrame:
    frame = panel(n_series, length)
    start = dt.date(2017, 1, 2)
    return frame.with_columns(
        pl.lit(start).dt.offset_by(pl.format("{}d", pl.col("time"))).alias("date")
    ).drop("time")


def test_forecast_line_starts_at_the_last_observation():
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1, level=[80])
    fig = plot_forecast(history, fc, id_col="id")
    for ax, key in zip(fig.axes, ["s0", "s1"], strict=True):
        last = history.filter(pl.col("id") == key).tail(1)
        line = next(li for li in ax.get_lines() if li.get_label() == "forecast")
        assert line.get_xdata()[0] == last["time"][0]
        assert line.get_ydata()[0] == pytest.approx(last["y"][0])
        assert line.get_xdata()[1:].tolist() == fc.filter(pl.col("id") == key)["time"].to_list()
        (band,) = bands(ax)  # the band opens at the last observation too
        assert band.get_paths()[0].vertices[:, 0].min() == last["time"][0]


def test_integer_time_gets_integer_ticks():
    history = panel(1).filter(pl.col("time").is_between(20, 22))  # 4 steps: auto ticks are halves
    fc = seasonal_naive(history, 1, m=1, target="y", id_col="id", freq=1)
    fig = plot_forecast(history, fc, id_col="id")
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 3
    assert all(float(t).is_integer() for t in ticks)


def test_history_after_the_forecast_start_is_not_drawn_as_history():
    """A history that runs past the forecast's origin (the whole frame) is cut before it: the
    forecast joins the last observation before its first time."""
    frame = panel(1).drop("id")
    history = frame.filter(pl.col("time") < 100)
    fc = seasonal_naive(history, 6, m=24, target="y", freq=1)
    fig = plot_forecast(frame, fc, tail=10)
    past, line = fig.axes[0].get_lines()
    assert past.get_xdata().tolist() == list(range(90, 100))
    assert line.get_xdata()[0] == 99
    assert fig.axes[0].get_title() == "y · as of 99"


def test_plot_styles_colours_labels_and_legend_above_the_axes():
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1, level=[80, 95])
    actual = history.with_columns(pl.col("time") + 120)
    fig = plot_forecast(history, fc, id_col="id", actual=actual)
    ax = fig.axes[-1]
    colours = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    assert len(set(colours.values())) == 3  # history, actual and forecast apart
    band_colours = {to_hex(b.get_facecolor()[0], keep_alpha=False) for b in bands(ax)}
    assert band_colours == {colours["forecast"]}  # the bands in the forecast's hue, lighter
    assert [b.get_alpha() for b in bands(ax)] == sorted(b.get_alpha() for b in bands(ax))
    assert ax.get_ylabel() == "y" and ax.get_xlabel() == "time"
    assert fig.axes[0].get_xlabel() == ""  # one time label, under the bottom axes
    assert all(a.get_legend() is None for a in fig.axes)  # no legend over the data
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["history", "actual", "95 % interval", "80 % interval", "forecast"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # laid out: the legend box is above every axes
    top = legend.get_window_extent(renderer).y0
    assert all(a.get_window_extent(renderer).y1 <= top for a in fig.axes)


def test_dates_are_concise_and_the_origin_column_is_the_as_of():
    history = dated_panel()
    fc = seasonal_naive(
        history, 5, m=7, target="y", id_col="id", time_col="date", freq="1d", level=[80]
    )
    fc = fc.with_columns(pl.lit(dt.date(2017, 3, 1)).alias("origin"))
    fig = plot_forecast(history, fc, id_col="id", time_col="date", series=["s2", "s0"])
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == [
        "y · s2 · as of 2017-03-01",
        "y · s0 · as of 2017-03-01",
    ]
    assert all(isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter) for ax in fig.axes)
    assert fig.axes[1].get_xlabel() == "date"


@pytest.mark.parametrize("n_series", [1, 2, 4])
def test_number_of_axes_is_the_number_of_series_asked(n_series):
    history = panel(3)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1)
    fig = plot_forecast(history, fc, id_col="id", max_series=n_series)
    assert len(fig.axes) == min(n_series, 3)
    titles = [ax.get_title().split(" · ")[1] for ax in fig.axes]
    assert titles == ["s0", "s1", "s2"][:n_series]


def test_a_panel_without_id_col_is_refused_not_drawn_as_one_zigzag():
    # id_col forgotten: the rows of both series were drawn as one line, sorted by time,
    # jumping between a (near 0) and b (near 10) at every step, titled as one series
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1)
    with pytest.raises(DataValidationError, match=r"forecast frame has several rows at one "
                       r"'time' \(e.g. 120\).*Pass id_col.*id_col='id'"):  # fmt: skip
        plot_forecast(history, fc)
    one = fc.filter(pl.col("id") == "s0").drop("id")  # one series' forecast, a panel's history
    with pytest.raises(DataValidationError, match=r"history frame has several rows at one"):
        plot_forecast(history.drop("id"), one)
    with pytest.raises(DataValidationError, match=r"actual frame has several rows at one"):
        plot_forecast(None, one, actual=history.drop("id").with_columns(pl.col("time") + 120))
    assert len(plot_forecast(history.filter(pl.col("id") == "s0").drop("id"), one).axes) == 1


def test_a_repeated_time_of_one_series_is_refused_as_what_it_is():
    """One series whose history repeats a time (the hour a clock is set back, in local times)
    was refused as "several series ... Pass id_col": it has no id column, and id_col could not
    help. The message names the repeated time and how to keep one row per time."""
    times = [dt.datetime(2024, 10, 27, h) for h in (0, 1, 2, 2, 3, 4, 5)]
    history = pl.DataFrame({"time": times, "y": [float(i) for i in range(7)], "site": "a"})
    forecast = pl.DataFrame({"time": [dt.datetime(2024, 10, 27, 6)], "y": [1.0]})
    for frame in (history, history.drop("site")):  # a constant label names no series either
        with pytest.raises(DataValidationError) as refused:
            plot_forecast(frame, forecast)
        message = str(refused.value)
        assert "several rows at one 'time': 2024-10-27 02:00:00, and none of" in message
        assert "history.unique(subset=['time'], keep='last')" in message
        assert "it holds several series" not in message
    kept = history.unique(subset=["time"], keep="last", maintain_order=True)
    assert len(plot_forecast(kept, forecast).axes) == 1


def test_an_integer_target_or_covariate_is_not_taken_for_a_series_label():
    """One series with a repeated time (a clock set back) and an integer target (counts) or
    an integer covariate: its values differ at the repeated time, so the refusal took it for
    the column naming several series ("it holds several series ... e.g. id_col='y'"). Neither
    names series: the drawn target never does, nor a column with more values than the most
    rows at one time. The message names the repeated time, as for a float target."""
    hours = [*range(3), 2, *range(3, 48)]
    times = [dt.datetime(2024, 10, 26) + dt.timedelta(hours=h) for h in hours]
    counts = pl.Series("y", [(7 * i) % 11 for i in range(len(times))])
    forecast = pl.DataFrame({"time": [dt.datetime(2024, 10, 28)], "y": [1.0]})
    temperature = pl.Series("temperature", [10 + i for i in range(len(times))])
    for history in (
        pl.DataFrame({"time": times, "y": counts}),
        pl.DataFrame({"time": times, "y": counts.cast(pl.Float64), "temperature": temperature}),
    ):
        with pytest.raises(DataValidationError) as refused:
            plot_forecast(history, forecast)
        message = str(refused.value)
        assert "several rows at one 'time': 2024-10-26 02:00:00, and none of" in message, message
        assert "id_col=" not in message, message


@pytest.mark.filterwarnings("ignore::forecaster.BaselineWarning")
def test_a_forecast_of_several_origins_is_refused_naming_the_origin_column():
    # predict(frame, cutoff=[...]): each series' forecasts of two origins overlap in time and
    # were drawn as one line going back and forth between them
    history = panel(2)
    model = RNNForecaster(**TINY).fit(history)
    many = model.predict(history, cutoff=[100, 103])
    with pytest.raises(DataValidationError, match=r"forecasts from 2 origins .*'origin' "
                       r"column, e.g. 100 and 103.*pl.col\('origin'\) == 103"):  # fmt: skip
        plot_forecast(history, many, id_col="id")
    fig = plot_forecast(history, many.filter(pl.col("origin") == 103), id_col="id")
    assert [ax.get_title() for ax in fig.axes] == ["y · s0 · as of 103", "y · s1 · as of 103"]
    twice = pl.concat([fc := many.filter(pl.col("origin") == 103), fc])
    with pytest.raises(DataValidationError, match=r"rows of the forecast frame share their "):
        plot_forecast(history, twice, id_col="id")


def test_an_integer_origin_column_is_not_taken_for_the_target():
    # a pipeline's forecasts of integer steps (audio frames): id, time, origin, y, ...; the
    # default target was the first numeric column, 'origin', and the history "lacked" it
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1)
    fc = fc.select("id", "time", pl.lit(119).alias("origin"), "y")
    fig = plot_forecast(history, fc, id_col="id")
    assert fig.axes[0].get_ylabel() == "y"
    assert fig.axes[0].get_title() == "y · s0 · as of 119"


@pytest.mark.filterwarnings("ignore::forecaster.BaselineWarning")
def test_max_series_with_series_is_refused_not_ignored():
    # series=["s0", "s1"] with max_series=1 drew both series: max_series was ignored
    history = panel(3)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1)
    with pytest.raises(DataValidationError, match=r"max_series=1 caps .* not both"):
        plot_forecast(history, fc, id_col="id", series=["s0", "s1"], max_series=1)
    result = backtest(RNNForecaster(**TINY), history, folds=2)
    with pytest.raises(DataValidationError, match=r"max_series=4 caps .* not both"):
        plot_backtest(result, series=["s0"], max_series=4)
    assert len(plot_forecast(history, fc, id_col="id", series=["s0", "s1", "s2"]).axes) == 3
    assert len(plot_forecast(history, fc, id_col="id").axes) == 3  # default: up to 4
    assert len(plot_backtest(result, max_series=2).axes) == 2


def test_history_without_the_target_is_refused():
    history = panel(2)
    fc = seasonal_naive(history, 6, m=24, target="y", id_col="id", freq=1)
    with pytest.raises(DataValidationError, match=r"history frame lacks the columns \['y'\]"):
        plot_forecast(history.drop("y"), fc, id_col="id")


def png_height(path) -> int:
    """The height in pixels of a PNG file (its IHDR chunk)."""
    return int.from_bytes(path.read_bytes()[20:24], "big")


@pytest.mark.parametrize(("plot_series", "axes"), [(0, 0), (1, 1), (2, 2), (9, 3)])
def test_run_forecast_png_honours_plot_series(fitted, tmp_path, plot_series, axes):
    """forecast.png of a run (write_forecast_plot, what run_pipeline calls): one axes per
    series up to the spec's [output] plot_series, none for 0."""
    frame = panel(3)
    forecast = fitted.predict(frame)
    path = tmp_path / "forecast.png"
    drawn = write_forecast_plot(frame, forecast, fitted, path, plot_series, [80.0])
    assert drawn is (axes > 0) and path.exists() is (axes > 0)
    if axes:  # the figure is 0.4 + 2.2 inches per axes high, at 100 dpi
        assert png_height(path) == round(100 * (0.4 + 2.2 * axes))


def test_run_forecast_png_draws_every_target(tmp_path):
    """Was: forecast.png of a run drew the first three targets only (stocks_ohlcv's open, high,
    low, never close). One column per target, 4.5 inches at 100 dpi each."""
    names = ["open", "high", "low", "close"]
    history = panel(2).with_columns(*(pl.col("y").alias(n) for n in names)).drop("y")
    forecast = seasonal_naive(history, 6, m=24, target=names, id_col="id", freq=1)
    model = types.SimpleNamespace(
        target=names, id_col="id", time_col="time", horizon=6, lookback_=24
    )
    path = tmp_path / "forecast.png"
    assert write_forecast_plot(history, forecast, model, path, 2)
    assert int.from_bytes(path.read_bytes()[16:20], "big") == round(100 * 4.5 * len(names))
    assert png_height(path) == round(100 * (0.4 + 2.2 * 2))


def test_several_targets_are_drawn_in_columns():
    history = panel(2).with_columns((-pl.col("y")).alias("z"))
    fc = seasonal_naive(history, 6, m=24, target=["y", "z"], id_col="id", freq=1, level=[80])
    fig = plot_forecast(history, fc, id_col="id", target=["y", "z"])
    assert [ax.get_title() for ax in fig.axes] == [
        "y · s0 · as of 119",
        "z · s0 · as of 119",
        "y · s1 · as of 119",
        "z · s1 · as of 119",
    ]
    z_line = next(li for li in fig.axes[3].get_lines() if li.get_label() == "forecast")
    last = history.filter(pl.col("id") == "s1").tail(1)
    assert z_line.get_ydata()[0] == pytest.approx(last["z"][0])  # each target its own values
    assert [ax.get_ylabel() for ax in fig.axes] == ["y", "z", "y", "z"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "time", "time"]
    assert len(bands(fig.axes[1])) == 1 and len(fig.legends) == 1
    with pytest.raises(DataValidationError, match="'w' is not a column"):
        plot_forecast(history, fc, id_col="id", target=["y", "w"])


def test_an_empty_forecast_frame_is_refused_by_name():
    """Both plots raised matplotlib's 'Number of rows must be a positive integer, not 0'."""
    empty = pl.DataFrame({"id": ["a"], "time": [5], "y": [1.0]}).clear()
    with pytest.raises(DataValidationError, match="plot_forecast has nothing to draw"):
        plot_forecast(None, empty, id_col="id")


def test_plot_backtest_refuses_a_frame_without_a_forecast_series():
    """Series b was drawn with no actual line although the forecasts hold its actuals."""
    forecasts = pl.DataFrame(
        {"fold": [0] * 4, "cutoff": [3] * 4, "id": ["a", "a", "b", "b"], "time": [4, 5, 4, 5],
         "step": [1, 2, 1, 2], "y": [1.0, 2, 3, 4], "y_actual": [1.5, 2.5, 3.5, 4.5]}
    )  # fmt: skip
    result = types.SimpleNamespace(forecasts=forecasts)
    history = pl.DataFrame({"id": ["a"] * 6, "time": range(6), "y": np.arange(6.0)})
    with pytest.raises(DataValidationError, match=r"no rows of series \['b'\]"):
        plot_backtest(result, history)
    assert len(plot_backtest(result).axes) == 2  # without a frame: the folds' actuals


def test_plot_forecast_refuses_key_dtypes_that_differ_between_frames():
    """An Int id history against a String id forecast raised polars' ComputeError."""
    forecast = pl.DataFrame({"id": ["1", "1"], "time": [6, 7], "y": [1.0, 2.0]})
    history = pl.DataFrame({"id": [1] * 6, "time": range(6), "y": np.arange(6.0)})
    with pytest.raises(DataValidationError, match=r"key column 'id' has different dtypes"):
        plot_forecast(history, forecast, id_col="id")


def test_a_negative_tail_is_refused():
    forecast = pl.DataFrame({"time": [6, 7], "y": [1.0, 2.0]})
    history = pl.DataFrame({"time": range(6), "y": np.arange(6.0)})
    with pytest.raises(DataValidationError, match=r"tail must be None or an integer >= 0"):
        plot_forecast(history, forecast, tail=-1)  # polars' tail(-1): all but the first row


def test_a_tail_without_a_history_is_refused():
    """was: ``tail`` ignored, silently, when no history (``frame``) was given to draw."""
    forecast = pl.DataFrame({"time": [6, 7], "y": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"tail=5 counts history points .* history is"):
        plot_forecast(None, forecast, tail=5)
    folds = pl.DataFrame({"fold": [0, 0], "cutoff": [5, 5], "time": [6, 7], "step": [1, 2],
                          "y": [1.0, 2.0], "y_actual": [1.5, 2.5]})  # fmt: skip
    with pytest.raises(DataValidationError, match=r"tail=5 counts history points .* frame is"):
        plot_backtest(types.SimpleNamespace(forecasts=folds), tail=5)
    assert len(plot_backtest(types.SimpleNamespace(forecasts=folds)).axes) == 1  # without: drawn


def two_origins(history: pl.DataFrame, origins: tuple[int, int]) -> pl.DataFrame:
    """A forecast frame of two origins (as predict(..., cutoff=[...]) makes one), seasonal
    naive forecasts of 6 steps from each."""
    return pl.concat(
        seasonal_naive(
            history.filter(pl.col("time") <= origin), 6, m=24, target="y", id_col="id", freq=1
        ).with_columns(pl.lit(origin).alias("origin"))
        for origin in origins
    )


def test_forecasts_of_several_origins_are_refused_where_their_times_do_not_overlap():
    """predict(frame, cutoff=[80, 100]): forecasts of times 81-86 and 101-106 were drawn as
    one line joined across the gap, titled with the first origin, the history stopping at
    it. Any forecast frame with several origins of a series is refused, not only one whose
    times overlap."""
    history = panel(2)
    many = two_origins(history, (80, 100))
    refusal = r"forecasts from 2 origins .*e.g. 80 and 100.*pl.col\('origin'\) == 100"
    with pytest.raises(DataValidationError, match=refusal):
        plot_forecast(history, many, id_col="id")
    one = many.filter(pl.col("id") == "s0").drop("id")  # one series, id_col=None
    with pytest.raises(DataValidationError, match=refusal):
        plot_forecast(history.filter(pl.col("id") == "s0").drop("id"), one)
    fig = plot_forecast(history, many.filter(pl.col("origin") == 100), id_col="id")
    assert [ax.get_title() for ax in fig.axes] == ["y · s0 · as of 100", "y · s1 · as of 100"]
    assert fig.axes[0].get_lines()[1].get_xdata().tolist() == list(range(100, 107))
    # one origin per series, different between series (a pipeline's series of other ends)
    mixed = pl.concat(
        [many.filter((pl.col("id") == "s0") & (pl.col("origin") == 80)),
         many.filter((pl.col("id") == "s1") & (pl.col("origin") == 100))]
    )  # fmt: skip
    fig = plot_forecast(history, mixed, id_col="id")
    assert [ax.get_title() for ax in fig.axes] == ["y · s0 · as of 80", "y · s1 · as of 100"]


def integer_ids_panel() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two stores with integer ids (7 and 9), their history and seasonal naive forecasts."""
    t = np.arange(48)
    history = pl.concat(
        pl.DataFrame({"store": k, "time": t, "y": 100.0 * k + np.sin(2 * np.pi * t / 12)})
        for k in (7, 9)
    )
    fc = seasonal_naive(history, 6, m=12, target="y", id_col="store", freq=1)
    return history, fc.select("store", "time", "y")


def test_integer_series_ids_are_not_taken_for_the_target():
    """The default target was the first numeric column: with integer store ids, one store's
    forecast (filtered from a panel, id_col=None) was drawn as the store number (7, 7, 7),
    and two stores without id_col were refused as 'none of its text or integer columns tells
    them apart', as the id column was the drawn target."""
    history, fc = integer_ids_panel()
    seven = pl.col("store") == 7
    fig = plot_forecast(history.filter(seven), fc.filter(seven))
    ax = fig.axes[0]
    assert ax.get_ylabel() == "y" and ax.get_title() == "y · as of 47"
    assert ax.get_lines()[1].get_ydata()[1:].tolist() == fc.filter(seven)["y"].to_list()
    with pytest.raises(DataValidationError, match=r"holds several series.*id_col='store'"):
        plot_forecast(history, fc)
    assert plot_forecast(history, fc, id_col="store").axes[1].get_ylabel() == "y"


def test_the_default_target_is_the_column_with_bounds_or_else_refused_when_unclear():
    forecast = pl.DataFrame(
        {"time": [10, 11, 12], "count": [3, 1, 2], "y": [1.0, 2.0, 3.0],
         "y_lo_80": [0.0, 1.0, 2.0], "y_hi_80": [2.0, 3.0, 4.0]}
    )  # fmt: skip
    assert plot_forecast(None, forecast).axes[0].get_ylabel() == "y"  # y has bounds
    with pytest.raises(DataValidationError, match=r"numeric columns \['count', 'y'\] mix "
                       r"integers and floats.*Pass target=<column>, e.g. target='y'"):  # fmt: skip
        plot_forecast(None, forecast.drop("y_lo_80", "y_hi_80"))
    constant = forecast.select("time", pl.lit(7).alias("store"), pl.lit(2).alias("w"))
    with pytest.raises(DataValidationError, match=r"integer columns \['store', 'w'\] look "
                       r"like series ids.*Pass target=<column>"):  # fmt: skip
        plot_forecast(None, constant)
    assert plot_forecast(None, constant, target="w").axes[0].get_ylabel() == "w"
    counts = forecast.select("time", "count")  # an integer forecast alone is drawn
    assert plot_forecast(None, counts).axes[0].get_ylabel() == "count"


def test_plot_backtest_joins_every_fold_of_every_series_to_its_cutoff():
    """With frame=, the first fold was not joined to its cutoff (the actual line started one
    step after it), and the actual line of a series that ends before the last forecast time
    counted back from the series' end (series b: from 17 instead of 19)."""
    rows = []
    for series in ("a", "b"):
        for fold, cutoff in enumerate((19, 22)):
            for step in (1, 2, 3):
                rows.append({"fold": fold, "cutoff": cutoff, "id": series,
                             "time": cutoff + step, "step": step, "y": 50.0 + step,
                             "y_actual": float(cutoff + step)})  # fmt: skip
    forecasts = pl.DataFrame(rows)
    frame = pl.concat(
        [pl.DataFrame({"id": "a", "time": range(26), "y": np.arange(26.0)}),
         pl.DataFrame({"id": "b", "time": range(24), "y": np.arange(24.0)})]
    )  # fmt: skip
    result = types.SimpleNamespace(forecasts=forecasts)
    for tail, start in ((None, 19), (2, 17)):
        fig = plot_backtest(result, frame, tail=tail)
        for ax, end in zip(fig.axes, (25, 23), strict=True):
            actual, *folds = ax.get_lines()
            assert actual.get_xdata().tolist() == list(range(start, end + 1))
            assert actual.get_ydata().tolist() == [float(t) for t in range(start, end + 1)]
            for fold, cutoff in zip(folds, (19, 22), strict=True):
                assert fold.get_xdata().tolist() == [cutoff, cutoff + 1, cutoff + 2, cutoff + 3]
                assert fold.get_ydata().tolist() == [float(cutoff), 51.0, 52.0, 53.0]
    # without frame: the second fold starts at its cutoff, a time the first fold forecast
    fig = plot_backtest(result)
    assert [line.get_xdata()[0] for line in fig.axes[1].get_lines()] == [20, 20, 22]

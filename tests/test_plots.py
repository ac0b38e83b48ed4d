"""plot_forecast and plot_backtest (matplotlib figures, no pyplot), and the MLflow
forecast.png drawn with plot_forecast."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import polars as pl
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import forecaster
from forecaster import DataValidationError, RNNForecaster
from forecaster.evaluation import backtest, plot_backtest, plot_forecast, seasonal_naive
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
    assert ax.get_title() == "y · s0"
    fig.savefig(io.BytesIO(), format="png")
    # one level, chosen series, an actual line, a longer tail
    actual = history.with_columns(pl.col("time") + 120)
    fig = plot_forecast(
        history, fc, id_col="id", levels=[80], series=["s3"], actual=actual, tail=50
    )
    assert len(fig.axes) == 1 and len(bands(fig.axes[0])) == 1
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["history", "actual", "forecast"]
    assert fig.axes[0].get_title() == "y · s3"


def test_plot_forecast_shades_quantile_pairs_and_a_single_series():
    history = panel(1).drop("id")
    fc = seasonal_naive(history, 6, m=24, target="y", freq=1, quantiles=[0.1, 0.5, 0.9])
    fig = plot_forecast(history, fc)
    assert len(fig.axes) == 1 and len(bands(fig.axes[0])) == 1  # the pair 0.1 / 0.9: 80 %
    assert fig.axes[0].get_title() == "y"
    point = seasonal_naive(history, 6, m=24, target="y", freq=1)
    fig = plot_forecast(None, point)
    assert bands(fig.axes[0]) == []
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["forecast"]


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
    assert lines[0].get_label() == "actual" and lines[0].get_xdata().size == 18 + 24
    labels = [line.get_label() for line in lines]
    assert labels[1] == "forecast" and all(label.startswith("_") for label in labels[2:])
    assert len(lines) == 1 + 3 and len(bands(ax)) == 3  # a line and a band per fold
    fig = plot_backtest(result, series=["s1"])
    assert len(fig.axes) == 1 and fig.axes[0].get_lines()[0].get_xdata().size == 18
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
    assert sizes == [max(24, 3 * 6), 6, 6]
    assert ax.get_title() == "y · s1" and bands(ax) == []
    assert fig.get_size_inches().tolist() == [9, 0.4 + 2.2 * 2]

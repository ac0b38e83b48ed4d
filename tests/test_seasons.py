"""Seasonal periods and the lookback ``lookback="auto"`` chooses (forecaster.data.seasons),
and how the estimators use it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from forecaster import RNNForecaster, load, make_windows
from forecaster.data import Panel
from forecaster.data.frequency import Frequency
from forecaster.data.seasons import MAX_AUTO_LOOKBACK, auto_lookback, season_length
from forecaster.exceptions import DataValidationError

SMALL = {"hidden_size": 4, "max_epochs": 1, "random_state": 0, "progress": False}


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("1h", 24),
        ("30m", 48),
        ("15m", 96),
        ("1s", 86_400),
        ("7h", 1),
        ("1d", 7),
        ("1bd", 5),
        ("1w", 52),
        ("1mo", 12),
        ("1q", 4),
        ("1y", 1),
        ("1i", 1),
        ("3d", 1),
        ("2mo", 1),
    ],
)
def test_season_length(freq, season):
    assert season_length(Frequency.parse(freq)) == season


@pytest.mark.parametrize(
    ("freq", "horizon", "expected"),
    [
        ("1h", 24, 336),
        ("1h", 96, 336),
        ("1h", 720, 720),
        ("1h", 2000, MAX_AUTO_LOOKBACK),
        ("15m", 96, MAX_AUTO_LOOKBACK),
        ("1d", 14, 56),
        ("1bd", 5, 60),
        ("1w", 13, 52),
        ("1mo", 18, 36),
        ("1mo", 48, 48),
        ("1q", 8, 16),
        ("1y", 6, 96),
        ("1i", 24, 96),
    ],
)
def test_auto_lookback_on_long_series(freq, horizon, expected):
    assert auto_lookback(Frequency.parse(freq), horizon, np.array([100_000]), 0) == expected


def test_auto_lookback_shrinks_to_what_a_typical_series_has_room_for():
    monthly = Frequency.parse("1mo")
    # half of what the median series keeps for training windows: (100 - 12 - 12) // 2
    assert auto_lookback(monthly, 12, np.array([30, 100, 500]), 12) == 36
    assert auto_lookback(monthly, 12, np.array([30, 100, 100]), 12) == 36 // 1
    assert auto_lookback(monthly, 12, np.array([70, 80, 90]), 12) == (80 - 24) // 2
    assert auto_lookback(monthly, 12, np.array([20]), 12) == 1  # no room: fit refuses it


def hourly(n: int, n_series: int = 1, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 1, 1)
    parts = []
    for k in range(n_series):
        time = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
        y = np.sin(np.arange(n) * 2 * np.pi / 24) + 0.1 * rng.normal(size=n) + k
        parts.append(pl.DataFrame({"id": f"s{k}", "time": time, "y": y}))
    return pl.concat(parts)


def test_auto_lookback_is_the_default_and_fit_resolves_it_without_changing_params(tmp_path):
    data = hourly(900)
    model = RNNForecaster(target="y", id_col="id", horizon=12, **SMALL)
    assert model.get_params()["lookback"] == "auto"
    with pytest.raises(AttributeError):
        model.lookback_  # noqa: B018 (fitted attribute)
    model.fit(data)
    assert model.get_params()["lookback"] == "auto"  # the sklearn contract: params untouched
    assert model.lookback_ == 336 == model.network_.lookback
    forecast = model.predict(data)
    assert forecast.height == 12
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.lookback_ == 336 and again.get_params()["lookback"] == "auto"
    assert again.predict(data).equals(forecast)


def test_auto_lookback_fits_a_short_monthly_series_that_the_old_default_refused():
    months = pl.date_range(dt.date(2015, 1, 1), dt.date(2021, 12, 1), "1mo", eager=True)
    rng = np.random.default_rng(1)
    y = 10 + np.sin(np.arange(len(months)) * 2 * np.pi / 12) + 0.1 * rng.normal(size=len(months))
    data = pl.DataFrame({"month": months, "y": y})  # 84 months
    with pytest.raises(DataValidationError, match="shorter than"):
        RNNForecaster(target="y", time_col="month", horizon=12, lookback=96, **SMALL).fit(data)
    model = RNNForecaster(target="y", time_col="month", horizon=12, **SMALL).fit(data)
    # validation holds out max(ceil(0.1 * 84), 12) = 12 months: (84 - 12 - 12) // 2 = 30
    assert model.lookback_ == 30
    assert model.predict(data)["month"].to_list()[0] == dt.date(2022, 1, 1)


def test_auto_lookback_drops_and_names_the_series_too_short_for_it():
    data = pl.concat([hourly(900, 3), hourly(200, 1).with_columns(id=pl.lit("short"))])
    model = RNNForecaster(target="y", id_col="id", horizon=12, **SMALL)
    with pytest.warns(UserWarning, match="short"):
        model.fit(data)
    assert model.lookback_ == 336
    assert "short" not in model.keys_["id"].to_list()


def test_backtest_of_an_auto_lookback_model_refits_with_the_same_window():
    data = hourly(800, 2)
    model = RNNForecaster(target="y", id_col="id", horizon=12, **SMALL)
    result = model.backtest(data, folds=2, step=12, refit=True)
    assert result.forecasts["fold"].n_unique() == 2
    panel = Panel.from_frame(data, target="y", time_col="time", id_col="id")
    assert model.lookback_for(panel) == 336


def test_windows_and_networks_need_an_integer_lookback():
    panel = Panel.from_frame(hourly(100), target="y", time_col="time", id_col="id")
    with pytest.raises(DataValidationError, match="make_windows needs an integer lookback"):
        make_windows(panel, "auto", 3)

"""Seasonal periods and the lookback ``lookback="auto"`` chooses (forecaster.data.seasons),
and how the estimators use it."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import polars as pl
import pytest
from scipy.signal import lfilter
from sklearn.base import clone

from forecaster import RNNForecaster, load, make_windows
from forecaster.data import Panel
from forecaster.data.frequency import Frequency
from forecaster.data.seasons import (
    MAX_AUTO_LOOKBACK,
    auto_lookback,
    detect_season,
    panel_seasons,
    season_length,
    seasonal_periods,
    shown_periods,
)
from forecaster.exceptions import DataValidationError, TooFewRowsError

SMALL = {"hidden_size": 4, "max_epochs": 1, "random_state": 0, "progress": False}


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("1h", 24),
        ("30m", 48),
        ("15m", 96),
        ("1s", 86_400),
        ("7h", 24),  # a week of 7-hour steps
        ("1d", 7),
        ("1bd", 5),
        ("1w", 52),
        ("1mo", 12),
        ("1q", 4),
        ("1y", 1),
        ("1i", 1),
        ("3d", 1),
        ("2mo", 6),
        ("7d", 52),
        ("24h", 7),
        ("3mo", 4),
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


@pytest.mark.parametrize(
    ("spellings", "periods", "lookback"),
    [
        (("1d", "24h", "1440m", "86400s"), (7,), 56),
        (("1w", "7d", "168h"), (52,), 52),
        (("1q", "3mo"), (4,), 16),
        (("1y", "12mo", "4q"), (), 96),
        (("2w", "14d"), (26,), 26),
        (("1h", "60m", "3600s"), (24, 168), 336),
    ],
)
def test_every_spelling_of_a_step_has_the_same_seasons_and_lookback(spellings, periods, lookback):
    for spelling in spellings:
        freq = Frequency.parse(spelling)
        assert seasonal_periods(freq) == periods, spelling
        assert auto_lookback(freq, 7, np.array([100_000]), 0) == lookback, spelling


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("2h", 168), ("7h", 48), ("12h", 28), ("2mo", 18), ("6mo", 16), ("2q", 16), ("26w", 16)],
)
def test_auto_lookback_of_a_multiple_spans_what_its_unit_does(freq, expected):
    # two weeks of sub-daily steps, a year of weeks, three years of months, four of quarters
    # ("6mo" is "2q": four years, 8 steps), and at least 16 steps
    assert auto_lookback(Frequency.parse(freq), 1, np.array([100_000]), 0) == expected


def test_fit_chooses_the_same_lookback_whatever_the_daily_step_is_called():
    days = pl.date_range(dt.date(2020, 1, 1), dt.date(2022, 12, 31), "1d", eager=True)
    y = np.sin(np.arange(len(days)) * 2 * np.pi / 7) + 0.1 * np.random.default_rng(0).normal(
        size=len(days)
    )
    data = pl.DataFrame({"day": days.cast(pl.Datetime("us")), "y": y})
    chosen = {
        freq: RNNForecaster(target="y", time_col="day", horizon=7, freq=freq, **SMALL)
        .fit(data)
        .lookback_
        for freq in ("1d", "24h")
    }
    assert chosen == {"1d": 56, "24h": 56}


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


# -- seasons found in the data (frequencies that imply none) -----------------------------------


def _pattern(name: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t, noise = np.arange(n), rng.normal(size=n)
    patterns = {
        "sine 24": np.sin(2 * np.pi * t / 24) + 0.2 * noise,
        "noisy sine 24": np.sin(2 * np.pi * t / 24) + 0.5 * noise,
        "trend and 12": 0.01 * t + np.sin(2 * np.pi * t / 12) + 0.3 * noise,
        "random walk and 24": 0.3 * np.cumsum(noise) + 2 * np.sin(2 * np.pi * t / 24),
        "square 50": np.sign(np.sin(2 * np.pi * t / 50)) + 0.3 * noise,
        "spike every 7": (t % 7 == 0) * 3.0 + 0.3 * noise,
        "daily and weekly": np.sin(2 * np.pi * t / 24) + 0.5 * (t % 168 < 120) + 0.2 * noise,
        "growing 12": (10 + 0.05 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + 0.5 * noise,
        "steep trend and 52": 0.03 * t + np.sin(2 * np.pi * t / 52) + 0.1 * noise,
        "half-hourly days and weeks": np.sin(2 * np.pi * t / 48) * (1 - 0.5 * (t % 336 >= 240))
        + 0.1 * noise,
        "random walk": np.cumsum(noise),
        "ar(1) 0.9": lfilter([1.0], [1.0, -0.9], noise),  # y[t] = 0.9 y[t-1] + noise
        "white noise": noise,
        "trend": 0.05 * t + noise,
        "constant": np.ones(n),
    }
    return patterns[name]


@pytest.mark.parametrize(
    ("name", "season"),
    [
        ("sine 24", 24),
        ("noisy sine 24", 24),
        ("trend and 12", 12),
        ("random walk and 24", 24),
        ("square 50", 50),
        ("spike every 7", 7),
        ("daily and weekly", 24),  # the shorter cycle, not its weekly multiple
        ("growing 12", 12),  # a trend favours shorter lags unless its drift is taken out
        ("steep trend and 52", 52),
        ("half-hourly days and weeks", 48),  # the week fits best, the day divides it
        ("random walk", 1),
        ("ar(1) 0.9", 1),
        ("white noise", 1),
        ("trend", 1),
        ("constant", 1),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 3])
def test_detect_season_finds_the_cycle_and_nothing_in_trends_or_noise(name, season, seed):
    values = _pattern(name, 1200, seed)
    assert detect_season(values[:, None], np.array([0, 1200])) == season


def test_detect_season_pools_many_short_series_and_columns():
    rng = np.random.default_rng(1)
    n, count = 40, 20  # each series alone is too short to be sure of a weekly cycle
    parts = [
        rng.uniform(1, 5) * np.sin(2 * np.pi * (np.arange(n) + rng.integers(7)) / 7)
        + 0.3 * rng.normal(size=n)
        + rng.uniform(0, 100)
        for _ in range(count)
    ]
    values = np.concatenate(parts)
    offsets = np.arange(0, n * count + 1, n)
    assert detect_season(values[:, None], offsets) == 7
    noise = rng.normal(size=len(values))
    assert detect_season(np.column_stack([values, noise]), offsets) == 7
    assert detect_season(noise[:, None], offsets) == 1
    # too short for four cycles of anything beyond a few steps
    assert detect_season(values[:12, None], np.array([0, 12])) == 1


def test_detect_season_reads_only_the_rows_before_ends():
    t = np.arange(800)
    noise = np.random.default_rng(0).normal(size=800)
    values = np.where(t < 600, noise, np.sin(2 * np.pi * t / 24) * 5)[:, None]
    assert detect_season(values, np.array([0, 800])) == 24
    assert detect_season(values, np.array([0, 800]), ends=np.array([600])) == 1


def test_panel_seasons_come_from_the_frequency_when_it_implies_them():
    data = hourly(400)
    panel = Panel.from_frame(data, target="y", time_col="time", id_col="id")
    assert panel_seasons(panel) == (24, 168)
    t = np.arange(600)
    integer = pl.DataFrame({"t": t, "y": np.sign(np.sin(2 * np.pi * t / 50))})
    assert panel_seasons(Panel.from_frame(integer, target="y", time_col="t")) == (50,)
    walk = pl.DataFrame({"t": t, "y": np.cumsum(np.random.default_rng(0).normal(size=600))})
    assert panel_seasons(Panel.from_frame(walk, target="y", time_col="t")) == ()


def test_auto_lookback_holds_four_detected_cycles():
    steps = Frequency.parse("1i")
    long = np.array([100_000])
    assert auto_lookback(steps, 24, long, 0, detected=50) == 200
    assert auto_lookback(steps, 24, long, 0, detected=12) == 96  # at least the old default
    assert auto_lookback(steps, 24, long, 0, detected=300) == MAX_AUTO_LOOKBACK
    assert auto_lookback(Frequency.parse("1h"), 24, long, 0, detected=50) == 336  # calendar


def test_fit_on_integer_steps_uses_the_season_found_in_the_data():
    t = np.arange(1200)
    rng = np.random.default_rng(0)
    y = 3 * np.sign(np.sin(2 * np.pi * t / 50)) + 0.3 * rng.normal(size=len(t))
    data = pl.DataFrame({"t": t, "y": y})
    model = RNNForecaster(target="y", time_col="t", horizon=10, **SMALL).fit(data)
    assert model.lookback_ == 200  # four cycles of 50
    report = model.validation_baselines_
    assert (report["m"], report["season"]) == (50, "detected")
    walk = data.with_columns(y=pl.Series(np.cumsum(rng.normal(size=len(t)))))
    plain = RNNForecaster(target="y", time_col="t", horizon=10, **SMALL).fit(walk)
    assert plain.lookback_ == 96
    assert (plain.validation_baselines_["m"], plain.validation_baselines_["season"]) == (1, "none")


def test_detect_season_reads_a_bounded_sample_of_a_large_panel_quickly():
    rng = np.random.default_rng(0)
    n, count = 3000, 400
    t = np.arange(n)
    values = np.concatenate(
        [np.sin(2 * np.pi * t / 24) + 0.3 * rng.normal(size=n) for _ in range(count)]
    )[:, None]
    offsets = np.arange(0, n * count + 1, n)
    started = time.perf_counter()
    assert detect_season(values, offsets) == 24
    assert time.perf_counter() - started < 10  # ~0.5 s: about 60,000 values are read
    assert detect_season(np.zeros((0, 1)), np.array([0])) == 1  # no series at all


def test_detected_season_does_not_depend_on_the_order_of_the_series_in_the_frame():
    # Detection reads evenly spaced series positions of a large panel: 450 series of 400
    # rows, a third with period 50 placed at exactly those positions of the frame, the rest
    # with period 30. Grouped so, the frame once gave 50 (and a longer auto lookback), sorted
    # by id or shuffled 30.
    n, length = 450, 400
    t = np.arange(length)
    rng = np.random.default_rng(0)
    read = set(np.unique(np.linspace(0, n - 1, 60_000 // length)).round().astype(int))

    def series(key: str, period: int) -> pl.DataFrame:
        y = np.sin(2 * np.pi * t / period) + 0.3 * rng.normal(size=length)
        return pl.DataFrame({"id": key, "t": t, "y": y})

    fifty = iter([series(f"a{i:03}", 50) for i in range(len(read))])
    thirty = iter([series(f"b{i:03}", 30) for i in range(n - len(read))])
    grouped = pl.concat([next(fifty) if k in read else next(thirty) for k in range(n)])
    seasons = [
        panel_seasons(Panel.from_frame(f, target="y", time_col="t", id_col="id"))
        for f in (
            grouped,
            grouped.sort("id", "t"),
            grouped.sample(fraction=1.0, shuffle=True, seed=0),
        )
    ]
    assert seasons == [(30,)] * 3


def test_backtest_places_sliding_folds_for_the_window_their_fits_choose():
    # 200 rows: the whole frame would choose (200 - 12 - 20) // 2 = 84, but each fold fits on
    # train_size=60 rows, where "auto" chooses (60 - 12 - 12) // 2 = 18: the folds are placed
    # for 18 (they were refused as "too short" for 84 + 12)
    data = hourly(200)
    model = RNNForecaster(target="y", time_col="time", horizon=12, **SMALL)
    result = model.backtest(data, folds=3, window="sliding", train_size=60, refit=True)
    assert [fitted.lookback_ for fitted in result.estimators] == [18, 18, 18]
    assert result.forecasts["fold"].n_unique() == 3
    # refused before any fit (was: by the first fold's fit, "No training windows remain")
    chose = r"= 13 rows \(lookback='auto' chose 1 for the first fold's rows\) before the valid"
    with pytest.raises(TooFewRowsError, match=chose):
        model.backtest(data, folds=3, window="sliding", train_size=20, refit=True)


def test_backtest_places_expanding_folds_for_the_first_fits_window():
    data = hourly(200)
    model = RNNForecaster(target="y", time_col="time", horizon=12, **SMALL)
    result = model.backtest(data, folds=3, refit=True)
    first = result.estimators[0].lookback_
    panel = Panel.from_frame(data, target="y", time_col="time")
    assert first < model.lookback_for(panel)  # the first fold sees 176 of the 200 rows
    start, stop = np.array([0]), np.array([200 - 12 - 2 * 12])
    assert model.lookback_for(panel, span=(start, stop)) == first


def test_shown_periods_keeps_a_longer_period_only_where_it_forecasts_better():
    t = np.arange(24 * 7 * 4)
    rng = np.random.default_rng(0)
    day = np.sin(2 * np.pi * t / 24)
    frames = {
        "weekends": day + 3.0 * (t // 24 % 7 >= 5) + 0.1 * rng.normal(size=t.size),
        "no weeks": day + np.cumsum(rng.normal(0, 0.2, t.size)),
    }
    ones = np.ones((1, 1))
    for name, y in frames.items():
        panel = Panel.from_frame(pl.DataFrame({"t": t, "y": y}), target="y", time_col="t")
        rows = np.ones(t.size, dtype=bool)
        shown = shown_periods(panel, rows, [24, 168], 48, ones)
        assert shown == ([24, 168] if name == "weekends" else [24]), name
    early = np.zeros(t.size, dtype=bool)
    early[:100] = True  # no origin has a week behind it: the main period alone
    assert shown_periods(panel, early, [24, 168], 48, ones) == [24]


def test_shown_periods_does_not_keep_a_week_on_a_coin_flip():
    # iid noise on a daily shape: a week ago and a day ago are equally good guesses, and the
    # week would win half the time without the 10 % margin
    t = np.arange(24 * 7 * 4)
    rows, ones = np.ones(t.size, dtype=bool), np.ones((1, 1))
    for seed in range(20):
        y = np.sin(2 * np.pi * t / 24) + np.random.default_rng(seed).normal(size=t.size)
        panel = Panel.from_frame(pl.DataFrame({"t": t, "y": y}), target="y", time_col="t")
        assert shown_periods(panel, rows, [24, 168], 24, ones) == [24], seed


def test_a_backtest_refused_for_its_folds_names_the_lookback_auto_chose():
    model = RNNForecaster(target="y", time_col="time", horizon=12, **SMALL)
    with pytest.raises(DataValidationError, match=r"lookback='auto' chose 1 for the first fold"):
        model.backtest(hourly(300), folds=5, step=12, gap=1000, refit=True)


def test_auto_lookback_is_sized_on_the_series_the_fit_keeps():
    """c (12 months) ends 11 months after a and b (60 months each): a fit leaves it out (too
    short for a training window), which moves the hold-out time (validation_size=12) to a's
    and b's last year. "auto" was sized from the hold-out time of the panel with c (a and b
    holding out 1 month): 26, where the same fit without c chose 21. Now both choose 21."""
    rng = np.random.default_rng(0)

    def monthly(sid: str, first: dt.date, last: dt.date) -> pl.DataFrame:
        times = pl.date_range(first, last, "1mo", eager=True)
        return pl.DataFrame({"id": sid, "t": times, "y": rng.normal(size=len(times)).cumsum()})

    kept = pl.concat([monthly(s, dt.date(2019, 2, 1), dt.date(2024, 1, 1)) for s in "ab"])
    frame = pl.concat([kept, monthly("c", dt.date(2024, 1, 1), dt.date(2024, 12, 1))])
    model = RNNForecaster(target="y", time_col="t", id_col="id", horizon=6, validation_size=12,
                          baseline="none", **SMALL)  # fmt: skip
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    alone = Panel.from_frame(kept, target="y", time_col="t", id_col="id")
    assert model.lookback_for(panel) == model.lookback_for(alone) == 21
    with pytest.warns(match="Dropped 1 series"):
        fitted = clone(model).fit(frame)
    assert fitted.keys_["id"].to_list() == ["a", "b"] and fitted.lookback_ == 21

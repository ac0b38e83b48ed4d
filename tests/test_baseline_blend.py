"""forecaster.estimators.baseline_blend: the check against the naive and seasonal naive at the
end of ``fit`` and the blend ``baseline="auto"`` chooses on the validation windows.

The evidence tests at the end build series of shapes the M4 / ETT benchmarks do not have (a
daily series whose trend turns, a short noisy hourly temperature, a short monthly series) on
which the default network is worse than the seasonal naive on a held-out tail, and check that
the default model, whose blend is chosen on validation only, is within 1.1x of it there.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import tracemalloc
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import edit_saved_config
from sklearn.base import clone

import forecaster as package
from forecaster import DataValidationError, ForecasterWarning, RNNForecaster
from forecaster.data.frequency import Frequency
from forecaster.data.panel import Panel
from forecaster.data.seasons import seasonal_periods
from forecaster.estimators import baseline_blend, blend_choice, blend_state, inference
from forecaster.estimators.baseline_blend import BaselineBlend, BlendTerm, blend_forecasts
from forecaster.estimators.blend_choice import WEIGHTS, choose_blend
from forecaster.estimators.blend_partners import (
    known_partners,
    origin_partners,
    partner_forecast,
    repeat_season,
)
from forecaster.estimators.validation_scores import naive_scales
from forecaster.evaluation.backtest import backtest
from forecaster.evaluation.baselines import origin_forecasts
from forecaster.persistence.state import StateError

TINY = {"hidden_size": 8, "max_epochs": 1, "random_state": 0, "progress": False}


def hourly(days: int = 12, n_series: int = 1, noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """Series repeating one day exactly (plus ``noise``): the seasonal naive is (nearly)
    perfect, a one-epoch network is not."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    start = dt.datetime(2024, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    frames = []
    for k in range(n_series):
        day = rng.normal(0, 3, 24) + 10 * (k + 1)
        y = np.tile(day, days) + rng.normal(0, noise, n) if noise else np.tile(day, days)
        frames.append(pl.DataFrame({"id": f"s{k}", "time": times, "y": y}))
    return pl.concat(frames)


def tiny(**kw) -> RNNForecaster:
    params = {"target": "y", "id_col": "id", "lookback": 48, "horizon": 12, **TINY}
    return RNNForecaster(**{**params, **kw})


def fitted(frame: pl.DataFrame, **kw) -> RNNForecaster:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        return tiny(**kw).fit(frame)


# ------------------------------------------------------------------------------------------
# the pieces
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "periods"),
    [
        ("1h", (24, 168)),
        ("2h", (12, 84)),
        ("15m", (96, 672)),
        ("7h", (24,)),  # a week of 7-hour steps
        ("5h", ()),
        ("1d", (7,)),
        ("2d", ()),
        ("1bd", (5,)),
        ("1w", (52,)),
        ("1mo", (12,)),
        ("3mo", (4,)),
        ("5mo", ()),
        ("1q", (4,)),
        ("1y", ()),
        ("1i", ()),
        ("1s", (86400, 604800)),
    ],
)
def test_seasonal_periods_of_each_frequency(freq, periods):
    assert seasonal_periods(Frequency.parse(freq)) == periods


def test_repeat_season_is_the_formula_of_origin_forecasts():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 2))
    origins = np.array([29, 40, 59])
    for m in (1, 5, 24):
        expected = origin_forecasts(values, np.zeros(3, np.int64), origins, 30, m)
        tails = values[origins[:, None] - 29 + np.arange(30)]  # the 30 values up to each origin
        np.testing.assert_array_equal(repeat_season(tails, m, 30), expected)


def test_blend_point_forecasts_in_the_targets_units():
    forecast = np.full((2, 3, 1), 10.0, np.float32)
    tail = np.log(np.array([[[1.0], [2.0]], [[4.0], [8.0]]]))  # log-transformed history
    blend = BaselineBlend.single(m=2, weights=(0.25,))
    out = blend_forecasts(forecast, tail, blend, transform="log", lambdas=None)
    season = np.array([[1.0, 2.0, 1.0], [4.0, 8.0, 4.0]])  # exp of the tail, repeated
    np.testing.assert_allclose(out[..., 0], 0.25 * 10 + 0.75 * season, rtol=1e-12)
    assert out.dtype == np.float64  # predict's forecasts are Float64 (were float32)


def test_the_partner_reads_the_frames_values_where_it_holds_them():
    """``observed`` (the frame's values, as predict passes them) replaces the window's float32
    values, but where the frame holds none (NaN: made up by ``missing``) and where it is
    outside the transform's domain (a value <= 0 that a log model raised to forecast)."""
    window = np.log(np.array([4.0, 3.0, 2.0, 1.0], np.float32)).reshape(1, 4, 1)  # log side
    observed = np.array([4.25, np.nan, 0.0, 1.5]).reshape(1, 4, 1)
    blend = BaselineBlend.single(m=4, weights=(0.0,))
    out = blend_forecasts(
        np.ones((1, 4, 1)), window, blend, transform="log", lambdas=None, observed=observed
    )
    np.testing.assert_allclose(out[0, :, 0], [4.25, 3.0, 2.0, 1.5], rtol=1e-7)
    assert out[0, 0, 0] == 4.25 and out[0, 3, 0] == 1.5  # the frame's values, bit for bit


def test_a_drift_beyond_float32_is_a_finite_float64_forecast():
    """Forecasts are float64: a drift carrying a climb near float32's edge past 3.4e38 is a
    finite number now (it was refused as an inf float32 forecast); only one beyond float64's
    range is refused, naming the cause, not returned as inf."""
    window = np.linspace(1e38, 3.3e38, 48).reshape(1, 48, 1)  # a climb near float32's edge
    blend = BaselineBlend.single(m=1, weights=(0.0,), drift=True)
    out = blend_forecasts(
        np.zeros((1, 24, 1), np.float32), window, blend, transform="none", lambdas=None
    )
    assert out.dtype == np.float64 and np.isfinite(out).all() and out.max() > 3.4e38
    window = np.linspace(1e307, 1.75e308, 48).reshape(1, 48, 1)
    with pytest.raises(DataValidationError, match=r"not a finite number .*: the trend of the"):
        blend_forecasts(np.zeros((1, 24, 1)), window, blend, transform="none", lambdas=None)


def test_a_mean_season_beyond_float32_is_a_finite_float64_forecast():
    """Period 2, no trend; the last low is ten times the earlier lows, so the mean season's
    rise from it to the high phase passes the float32 range: a finite float64 forecast now
    (it was refused as not a finite float32 number)."""
    window = np.array([3.3e38, 0.1e38] * 3 + [3.3e38, 1.0e38]).reshape(1, 8, 1)
    blend = BaselineBlend.single(m=2, weights=(0.0,), level=True)
    out = blend_forecasts(
        np.zeros((1, 4, 1), np.float32), window, blend, transform="none", lambdas=None
    )
    np.testing.assert_allclose(out[0, :, 0], [1.0e38 + 3.3e38 - 0.325e38, 1.0e38] * 2)


def test_blend_moves_quantiles_with_their_median_keeping_order_and_spread():
    rng = np.random.default_rng(0)
    median = rng.normal(size=(4, 6, 2))
    spread = np.array([-1.0, 0.0, 0.5, 2.0])  # quantiles 0.1, 0.5, 0.7, 0.9
    forecast = (median[..., None] + spread).astype(np.float32)
    tail = rng.normal(size=(4, 10, 2))
    blend = BaselineBlend.single(m=3, weights=(0.5, 0.0))
    out = blend_forecasts(forecast, tail, blend, transform="none", lambdas=None, median_index=1)
    assert (np.diff(out, axis=-1) >= 0).all()
    np.testing.assert_allclose(np.diff(out, axis=-1), np.diff(forecast, axis=-1), atol=1e-5)
    season = repeat_season(tail, 3, 6)
    expected = np.array([0.5, 0.0]) * forecast[..., 1] + np.array([0.5, 1.0]) * season
    np.testing.assert_allclose(out[..., 1], expected, atol=1e-5)


def test_choose_blend_prefers_the_network_on_ties_and_picks_per_target():
    actual = np.zeros((5, 4, 2))
    model = np.stack([np.zeros((5, 4)), np.ones((5, 4))], axis=-1)  # right on target 0 only
    season = np.stack([np.ones((5, 4)), np.zeros((5, 4))], axis=-1)  # right on target 1 only

    def error(forecast):
        return np.abs(forecast - actual).mean(axis=(0, 1))

    partners = {(24, False, False): season, (1, False, False): season + 1}
    partner, weights, errors, alone = choose_blend(model, partners.items(), error)
    assert (partner, weights) == ((24, False, False), (1.0, 0.0))
    np.testing.assert_array_equal(errors, [0.0, 0.0])
    assert alone == {(24, False, False): 0.5, (1, False, False): 1.5}  # each partner alone
    ties = {(24, False, False): model, (24, True, False): model, (24, False, True): model}
    partner, weights, *_ = choose_blend(model, ties.items(), error)  # every blend ties
    assert (partner, weights) == ((24, False, False), (1.0, 1.0))
    assert WEIGHTS[0] == 1.0


def test_a_mean_season_partner_must_win_by_the_margin_a_drift_partner_need_not():
    """The mean season replaces a simpler choice only for a real gain on validation: half the
    margin is noise (the simpler one stays), twice the margin is taken. A drift partner
    needs only to be better (by more than a tie)."""
    actual = np.zeros((4, 3, 1))
    model = np.full((4, 3, 1), 10.0)  # far off: every choice is a partner alone (w = 0)

    def error(forecast):
        return np.abs(forecast - actual).mean(axis=(0, 1))

    def partners(form, gain):
        return [((24, False, False), np.ones((4, 3, 1))), (form, np.full((4, 3, 1), 1.0 - gain))]

    small, large = blend_choice.FORM_MARGIN / 2, blend_choice.FORM_MARGIN * 2
    level, drift = (24, False, True), (24, True, False)
    assert choose_blend(model, partners(level, small), error)[:2] == ((24, False, False), (0.0,))
    assert choose_blend(model, partners(level, large), error)[:2] == (level, (0.0,))
    assert choose_blend(model, partners(drift, small), error)[:2] == (drift, (0.0,))
    tie = blend_choice.TIE / 2
    assert choose_blend(model, partners(drift, tie), error)[:2] == ((24, False, False), (0.0,))


# ------------------------------------------------------------------------------------------
# the pooled blend of baseline="auto"
# ------------------------------------------------------------------------------------------

SEASONAL, NAIVE, DRIFT = (24, False, False), (1, False, False), (24, True, False)


def hand_table() -> dict:
    """Errors ``(len(WEIGHTS), 2)`` of three partners' blends at w = 1, 0.75, 0.5, 0.25, 0.
    Target 0: lowest 0.8 (the seasonal naive at w = 0.5); the seasonal naive with drift at
    w = 0.75 sits exactly at the margin, at w = 0.5 just above it. Target 1: the network
    alone is lowest (0.5, every partner's w = 1); the naive at w = 0.75 is within the margin;
    the naive alone (0.99) beats the seasonal naive alone (1.0)."""
    edge = 0.8 * (1 + blend_choice.POOL_MARGIN)
    above = np.nextafter(edge, np.inf)
    seasonal = [[1.0, 0.5], [0.9, 0.7], [0.8, 0.9], [0.85, 1.0], [0.95, 1.0]]
    naive = [[1.0, 0.5], [1.05, 0.55], [0.97, 0.9], [1.2, 1.0], [1.5, 0.99]]
    drift = [[1.0, 0.5], [edge, 0.9], [above, 0.9], [2.0, 1.0], [2.0, 1.0]]
    return {p: np.array(e) for p, e in ((SEASONAL, seasonal), (NAIVE, naive), (DRIFT, drift))}


def test_the_pool_averages_the_distinct_blends_within_the_margin_per_target():
    """Target 0: four seasonal-naive blends and the drift blend at the margin (not the one
    just above it, nor the network alone at 1.0 > 0.96). Target 1: the network alone once
    (not once per partner: it would weigh 3/4, not 1/2) and the naive at w = 0.75. Equal
    weights, then 1 - lam to the better naive alone: the seasonal naive on target 0, the
    naive on target 1."""
    pool = blend_choice.pool_blend(hand_table(), evidence=1.0, main=24)  # margin: 20 %
    lam = 1.0 / (1.0 + blend_choice.SHRINK)
    assert pool.sizes == (5, 2)
    np.testing.assert_allclose(pool.network, lam * np.array([2.25 / 5, 1.75 / 2]), rtol=1e-12)
    expected = {
        SEASONAL: lam * np.array([2.5 / 5, 0.0]) + [1 - lam, 0.0],
        NAIVE: lam * np.array([0.0, 0.25 / 2]) + [0.0, 1 - lam],
        DRIFT: lam * np.array([0.25 / 5, 0.0]),
    }
    assert list(pool.partners) == [SEASONAL, NAIVE, DRIFT]  # the candidates' order
    for partner, shares in expected.items():
        np.testing.assert_allclose(pool.partners[partner], shares, rtol=1e-12, atol=1e-15)
    totals = pool.network + sum(pool.partners.values())
    np.testing.assert_allclose(totals, [1.0, 1.0], rtol=1e-12)


def test_the_pool_leans_on_the_better_naive_when_validation_tells_little():
    """lam = n / (n + SHRINK): no evidence gives the better naive alone, much evidence the
    pool; ties between the naive and the seasonal naive go to the seasonal naive, and with
    no season (main period 1) the naive is the reference."""
    table = hand_table()
    none = blend_choice.pool_blend(table, evidence=0.0, main=24)
    np.testing.assert_array_equal(none.network, [0.0, 0.0])
    assert {p: s.tolist() for p, s in none.partners.items()} == {
        SEASONAL: [1.0, 0.0],
        NAIVE: [0.0, 1.0],
    }
    lots = blend_choice.pool_blend(table, evidence=1e6, main=24)  # margin 0.02 %: the best
    assert lots.sizes == (1, 1) and lots.network[1] == pytest.approx(1.0, rel=1e-6)
    table[NAIVE][-1, 1] = 1.0  # alone: the naive ties with the seasonal naive
    assert blend_choice.pool_blend(table, 0.0, 24).partners[SEASONAL].tolist() == [1.0, 1.0]
    flat = {NAIVE: table[NAIVE], (1, True, False): table[DRIFT]}  # no season: m = 1 only
    assert blend_choice.pool_blend(flat, 0.0, 1).partners[NAIVE].tolist() == [1.0, 1.0]


def test_the_pool_narrows_as_the_validation_evidence_grows():
    """The margin is POOL_MARGIN / sqrt(n): 20 % at one horizon of evidence, 10 % at four
    (the drift blend at 0.96 and the seasonal naive's at 0.9 / 0.95 leave target 0's pool,
    0.85 and 0.8 stay; target 1 keeps the naive at w = 0.75, 10 % above the network alone),
    and a panel's hundreds of horizons keep the best alone (ties apart)."""
    assert blend_choice.pool_margin(1.0) == blend_choice.POOL_MARGIN
    assert blend_choice.pool_margin(0.2) == blend_choice.POOL_MARGIN  # at most the margin
    assert blend_choice.pool_margin(4.0) == pytest.approx(blend_choice.POOL_MARGIN / 2)
    assert blend_choice.pool_blend(hand_table(), 4.0, 24).sizes == (2, 2)
    assert blend_choice.pool_blend(hand_table(), 400.0, 24).sizes == (1, 1)


def test_auto_keeps_the_single_best_blend_where_validation_tells_enough(tmp_path):
    """Under POOL_EVIDENCE horizons of validation evidence "auto" pools; from it on (here 4
    series x (37 + 11) / 12 = 16 horizons) it keeps what "best" keeps, bit for bit, and its
    report says so (no pool margin)."""
    assert blend_choice.pools(1.99) and not blend_choice.pools(blend_choice.POOL_EVIDENCE)
    frame = hourly(n_series=4, noise=0.3)
    auto, best = (
        fitted(frame, validation_size=48),
        fitted(frame, validation_size=48, baseline="best"),
    )
    report = auto.validation_baselines_
    assert report["evidence"] == pytest.approx(4 * (37 + 11) / 12)
    assert report["pool_margin"] is None and report["pool"] == [1]
    assert auto.baseline_ == best.baseline_ and len(auto.baseline_.terms) == 1
    assert auto.predict(frame).equals(best.predict(frame))
    package.save(auto, tmp_path / "m")  # pool_margin null, evidence and best round-trip
    loaded = package.load(tmp_path / "m")
    assert loaded.validation_baselines_ == report and loaded.baseline_ == auto.baseline_
    one = frame.filter(pl.col("id") == frame["id"][0])  # one series: (2 + 11) / 12 horizons
    short = fitted(one, validation_size=13)
    assert short.validation_baselines_["pool_margin"] == pytest.approx(
        blend_choice.POOL_MARGIN / np.sqrt(13 / 12)
    )


def test_the_validation_evidence_counts_each_series_span_in_horizons():
    evidence = blend_choice.validation_evidence
    assert evidence(np.zeros(46, np.int64), np.arange(100, 146), 12) == (46 + 11) / 12
    series, origins = np.array([2, 0, 0, 2, 0]), np.array([41, 7, 5, 40, 6])  # 1: no window
    assert evidence(series, origins, 3) == (3 + 2) / 3 + (2 + 2) / 3


def test_the_validation_evidence_counts_the_steps_a_sample_of_windows_covers():
    """Windows scored from a sample (windows_per_epoch, CHECK_WINDOWS) cover the steps between
    them too: 4 of 109 consecutive windows, 36 apart, cover the 120 held-out steps (10
    horizons of 12), not the (4 + 11) / 12 of 4 consecutive ones (was: a pool)."""
    origins = np.array([0, 36, 72, 108])
    assert blend_choice.validation_evidence(np.zeros(4, np.int64), origins, 12) == 4.0
    origins = np.arange(0, 109, 9)  # 13 windows 9 apart: 12 gaps of 9 and the last horizon
    assert blend_choice.validation_evidence(np.zeros(13, np.int64), origins, 12) == 10.0


def test_a_sample_of_the_validation_windows_counts_the_steps_it_forecasts():
    """windows_per_epoch caps the validation windows the check scores: 8 of the 109 windows of
    120 held-out steps (10 horizons) forecast up to 8 horizons of them, enough not to pool
    (was: counted as 8 consecutive windows, (8 + 11) / 12 = 1.6 horizons, and "auto"
    pooled)."""
    frame = hourly(days=30, n_series=1, noise=0.3)
    options = {"validation_size": 120, "windows_per_epoch": 8, "batch_size": 8}
    auto, best = fitted(frame, **options), fitted(frame, baseline="best", **options)
    report = auto.validation_baselines_
    assert report["windows"] == 8 and 4.0 <= report["evidence"] <= 8.0
    assert report["pool_margin"] is None and auto.baseline_ == best.baseline_


def test_one_series_pools_while_its_hold_out_is_under_two_horizons():
    """One series' evidence is its hold-out over the horizon: 23 steps (12 windows of
    horizon=12) pool, 24 (13 windows, 2 horizons) keep the single best blend."""
    frame = hourly(days=16, n_series=1, noise=0.3)
    short, enough = fitted(frame, validation_size=23), fitted(frame, validation_size=24)
    assert short.validation_baselines_["windows"] == 12
    assert short.validation_baselines_["pool_margin"] is not None
    assert enough.validation_baselines_["evidence"] == 2.0
    assert enough.validation_baselines_["pool_margin"] is None


def test_the_pooled_forecast_is_the_coefficients_times_the_forecasts():
    rng = np.random.default_rng(0)
    model = rng.normal(size=(4, 3, 2))
    partners = {p: rng.normal(size=(4, 3, 2)) for p in (SEASONAL, NAIVE, DRIFT)}
    pool = blend_choice.pool_blend(hand_table(), 1.0, 24)
    out = blend_choice.pooled_forecast(model, iter(partners.items()), pool)
    expected = pool.network * model + sum(c * partners[p] for p, c in pool.partners.items())
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def two_terms() -> BaselineBlend:
    """0.25 x network + 0.5 x seasonal naive (m=2) + 0.25 x naive with drift, one target."""
    terms = (BlendTerm(2, False, False, (0.5,)), BlendTerm(1, True, False, (0.25,)))
    return BaselineBlend((0.25,), terms)


def test_a_pooled_blend_forms_each_partner_and_sums_them():
    window = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0]).reshape(1, 6, 1)
    blend = two_terms()
    out = blend_forecasts(np.full((1, 4, 1), 10.0), window, blend, transform="none", lambdas=None)
    seasonal, drift = [3.0, 5.0, 3.0, 5.0], 5.0 + 0.8 * np.arange(1, 5)
    np.testing.assert_allclose(out[0, :, 0], 2.5 + 0.5 * np.array(seasonal) + 0.25 * drift)
    assert blend.m == 2 and blend.weights == (0.25,) and not blend.is_identity
    assert blend.describe() == (
        "0.25 x network + 0.5 x seasonal naive (m=2) + 0.25 x naive forecast with drift"
    )
    assert BaselineBlend.single(24, (1.0, 0.5)).describe() == (
        "[1, 0.5] x network + [0, 0.5] x seasonal naive (m=24)"
    )


def test_a_pooled_blend_moves_quantiles_by_its_partners_distance_from_the_median():
    rng = np.random.default_rng(1)
    median = rng.normal(size=(3, 4, 1))
    forecast = median[..., None] + np.array([-1.0, 0.0, 2.0])
    window = rng.normal(size=(3, 6, 1))
    out = blend_forecasts(
        forecast, window, two_terms(), transform="none", lambdas=None, median_index=1
    )
    seasonal = partner_forecast(window, 2, 4, False)
    drift = partner_forecast(window, 1, 4, True)
    shift = 0.5 * (seasonal - median) + 0.25 * (drift - median)
    np.testing.assert_allclose(out, forecast + shift[..., None], rtol=1e-12)
    np.testing.assert_allclose(np.diff(out, axis=-1), np.diff(forecast, axis=-1), rtol=1e-12)


def test_a_pooled_blend_stays_in_a_log_targets_domain():
    """A fall: the naive with drift runs below 0 on log's side; floored inside the domain
    before it is weighed, as predict and the check form it."""
    from forecaster.data.transforms import domain_floor

    window = np.log(np.linspace(30.0, 5.0, 24)).reshape(1, 24, 1)
    terms = (BlendTerm(1, True, False, (0.5,)), BlendTerm(1, False, False, (0.5,)))
    blend = BaselineBlend((0.0,), terms)
    out = blend_forecasts(np.full((1, 12, 1), 4.0), window, blend, transform="log", lambdas=None)
    floor = float(np.float32(domain_floor("log")))
    drift = np.maximum(5.0 - 25 / 23 * np.arange(1, 13), floor)
    np.testing.assert_allclose(out[0, :, 0], 0.5 * drift + 0.5 * 5.0, rtol=1e-6)
    assert out.min() > 0.0


def test_auto_predicts_the_pooled_combination_of_the_network_and_its_partners(tmp_path):
    """The default pools: predict is the network's forecast times its coefficient plus each
    term's partner (formed from the frame's last windows) times its coefficients; the report
    describes that pool, and save / load keeps it."""
    rng = np.random.default_rng(3)
    n, start = 24 * 16, dt.datetime(2024, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    day = 5.0 * np.sin(2 * np.pi * np.arange(n) / 24)
    walk = np.cumsum(rng.normal(0.0, 0.3, (3, n)), axis=1) + rng.normal(0.0, 0.5, (3, n))
    frame = pl.concat(
        pl.DataFrame({"id": f"s{k}", "time": times, "y": 20.0 + day + walk[k]}) for k in range(3)
    )
    model = fitted(frame, lookback=96, validation_size=14)  # 3 x 14 / 12 = 3.5 horizons
    assert model.validation_baselines_["pool_margin"] is None  # enough: the single best
    frame = frame.filter(pl.col("id") == "s0")  # one series: (3 + 11) / 12 horizons, a pool
    model = fitted(frame, lookback=96, validation_size=14)
    blend, report = model.baseline_, model.validation_baselines_
    assert len(blend.terms) >= 2 and report["pool"][0] >= 2
    assert report["weights"] == list(blend.network)
    assert report["blend_terms"] == [term.config() for term in blend.terms]
    assert (report["blend_m"], report["blend_drift"]) == (blend.main.m, blend.main.drift)
    assert sum(blend.network) + sum(sum(t.coefficients) for t in blend.terms) == pytest.approx(1)
    network = copy.deepcopy(model)
    network.baseline_ = None
    window = frame.tail(96)["y"].to_numpy().reshape(1, 96, 1)
    expected = blend.network[0] * network.predict(frame)["y"].to_numpy().reshape(1, 12, 1)
    for term in blend.terms:
        partner = partner_forecast(window, term.m, 12, term.drift, term.level)
        expected = expected + term.coefficients[0] * partner
    forecast = model.predict(frame)
    np.testing.assert_allclose(forecast["y"], expected.ravel(), rtol=1e-6)
    package.save(model, tmp_path / "m")
    loaded = package.load(tmp_path / "m")
    assert loaded.baseline_ == blend and loaded.validation_baselines_ == report
    assert loaded.predict(frame).equals(forecast)


def test_best_keeps_one_blend_auto_pools_and_both_report_it():
    frame = hourly(n_series=1, noise=0.3)  # one series, (3 + 11) / 12 horizons: a pool
    best, auto = (
        fitted(frame, baseline="best", validation_size=14),
        fitted(frame, validation_size=14),
    )
    assert len(best.baseline_.terms) == 1 and best.validation_baselines_["pool"] == [1]
    assert best.baseline_.weights[0] in WEIGHTS
    assert len(auto.baseline_.terms) > 1
    for model in (best, auto):  # the same network: the same check, another rule
        assert model.validation_baselines_["model"] == auto.validation_baselines_["model"]
    assert clone(best).get_params()["baseline"] == "best"
    kept = best.baseline_  # auto's report names what "best" keeps on the same windows
    for model in (best, auto):
        entry = model.validation_baselines_["best"]
        assert (entry["m"], entry["drift"], entry["level"]) == (kept.m, kept.drift, kept.level)
        assert entry["weights"] == list(kept.weights)
        assert entry["blended"] == best.validation_baselines_["blended"]


def test_the_warning_of_a_pool_names_its_size_evidence_and_shrink_not_the_best_blend():
    """A pooled "auto" (one series, 14 / 12 horizons of evidence) warns with what it forecasts:
    the average of its pool, why it pooled and how much went to the naive; "best" with its one
    blend (was: the same words as "best" would use for a single blend)."""
    frame = hourly(n_series=1, noise=0.3)
    messages, reports = {}, {}
    for rule in ("auto", "best"):
        with pytest.warns(ForecasterWarning) as caught:
            model = tiny(baseline=rule, validation_size=14).fit(frame)
        found = [str(w.message) for w in caught if "validation windows" in str(w.message)]
        (messages[rule],), reports[rule] = found, model.validation_baselines_
    auto, best = messages["auto"], messages["best"]
    evidence = (3 + 11) / 12
    assert reports["auto"]["evidence"] == pytest.approx(evidence)
    (size,) = reports["auto"]["pool"]
    assert f"the average of the {size} blends within" in auto
    assert f"the validation evidence, {evidence:.3g} horizons, is under 2)" in auto
    naive = blend_choice.SHRINK / (evidence + blend_choice.SHRINK)
    assert f"then {naive:.1%} moved to the better naive" in auto
    assert "chosen on these windows" not in auto
    assert "pool" not in best and "chosen on these windows" in best


def test_the_none_warning_counts_the_pool_auto_would_average():
    """baseline="none" warns with the blend "auto" would keep: it said "the average of the 1
    blends" whatever the size of that pool (its report's pool, [1]: "none" pools nothing),
    where "auto" averaged 3 on the same windows."""
    frame = hourly(n_series=1, noise=0.3)
    messages, reports = {}, {}
    for rule in ("auto", "none"):
        with pytest.warns(ForecasterWarning) as caught:
            model = tiny(baseline=rule, validation_size=14).fit(frame)
        found = [str(w.message) for w in caught if "validation windows" in str(w.message)]
        (messages[rule],), reports[rule] = found, model.validation_baselines_
    (size,) = reports["auto"]["pool"]
    assert size > 1 and reports["none"]["pool"] == [1]  # "none" keeps and pools nothing
    for rule in ("auto", "none"):
        assert f"the average of the {size} blends within" in messages[rule], rule


def test_partners_of_the_check_are_the_formula_of_the_forecast_path():
    """The validation check's partners (running sums over the packed panel) are what the
    forecast path computes from each input window: every form, with and without drift."""
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=(130, 2)), axis=0) + 50.0  # two series: 0-59, 60-129
    starts = np.array([0, 0, 60, 60])
    origins = np.array([29, 59, 89, 129])
    lookback, horizon = 30, 20
    partners = dict(origin_partners(values, starts, origins, lookback, horizon, [6, 24]))
    seasonal_naive = {(6, False, False), (24, False, False), (1, False, False)}
    with_drift = {(6, True, False), (1, True, False)}
    assert set(partners) == seasonal_naive | with_drift | {(6, False, True), (6, True, True)}
    windows = values[origins[:, None] - lookback + 1 + np.arange(lookback)]
    for (m, drift, level), forecast in partners.items():
        expected = partner_forecast(windows, m, horizon, drift, level)
        np.testing.assert_allclose(forecast, expected, rtol=1e-12, atol=1e-9)


def test_partners_of_the_check_read_an_interpolated_origin_as_known_there():
    """missing="interpolate": a validation origin inside a filled run is forecast by the
    partners from its window as known there (the run filled forward), as the network is;
    the other origins as from the panel's values."""
    rng = np.random.default_rng(2)
    t = np.arange(200)
    y = 10 + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, 200)
    holed = [None if 150 <= i <= 152 else float(v) for i, v in enumerate(y)]
    raw = Panel.from_frame(
        pl.DataFrame({"t": t, "y": holed}), target="y", time_col="t", missing="interpolate"
    )
    origins, series = np.array([140, 151, 152, 170]), np.zeros(4, dtype=np.int64)
    lookback, horizon = 48, 12
    center = np.full((200, 1), y.mean())
    found = dict(known_partners(raw, series, origins, (lookback, horizon, [24]), center))
    starts = raw.offsets[series]
    plain = dict(origin_partners(raw.values, starts, origins, lookback, horizon, [24], center))
    assert set(found) == set(plain)
    windows = raw.known_values(
        origins[:, None] - lookback + 1 + np.arange(lookback), origins[:, None]
    )
    assert windows[1, -2:, 0].tolist() == [float(np.float32(y[149]))] * 2  # t=150, 151
    for (m, drift, level), forecast in found.items():
        expected = partner_forecast(windows.astype(np.float64), m, horizon, drift, level)
        np.testing.assert_allclose(forecast, expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(forecast[[0, 3]], plain[(m, drift, level)][[0, 3]])
    assert not np.allclose(found[(1, False, False)][1], plain[(1, False, False)][1])


def test_partners_of_the_check_stay_exact_beside_a_series_of_a_huge_level():
    """Running sums over a panel whose first series sits near 1e12 lose the small series
    after it to cancellation; with each series' mean taken off first (``center``, as the
    check passes it) the small series' partners match the forecast path again."""
    rng = np.random.default_rng(1)
    t = np.arange(600)
    big = 1e12 + 1e6 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1e4, 600)
    small = 5 + 0.01 * t + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, 600)
    values = np.concatenate([big, small])[:, None]
    series = np.repeat([0, 1], 600)
    center = np.array([big.mean(), small.mean()])[series][:, None]
    origins = np.array([1100, 1150, 1199 - 24])
    starts = np.full(3, 600)
    lookback, horizon = 96, 24
    windows = values[origins[:, None] - lookback + 1 + np.arange(lookback)]
    checked = dict(origin_partners(values, starts, origins, lookback, horizon, [24], center))
    for (m, drift, level), forecast in checked.items():
        expected = partner_forecast(windows, m, horizon, drift, level)
        np.testing.assert_allclose(forecast, expected, rtol=0, atol=1e-8, err_msg=str((m, drift)))
    plain = dict(origin_partners(values, starts, origins, lookback, horizon, [24]))
    error = np.abs(plain[(24, True, True)] - partner_forecast(windows, 24, horizon, True, True))
    assert error.max() > 1e-4  # without the centring: what the check used to compute


def test_drift_partner_extends_a_linear_trend_exactly():
    t = np.arange(48.0)
    window = (2.0 * t + np.tile([0.0, 5.0, -3.0, 1.0], 12)).reshape(1, 48, 1)
    future = 2.0 * np.arange(48.0, 58.0) + np.tile([0.0, 5.0, -3.0, 1.0], 3)[:10]
    np.testing.assert_allclose(partner_forecast(window, 4, 10, True)[0, :, 0], future)
    line = (3.0 + 2.0 * t).reshape(1, 48, 1)  # m = 1: the drift method, first to last value
    np.testing.assert_allclose(partner_forecast(line, 1, 3, True)[0, :, 0], [99.0, 101.0, 103.0])
    with_level = partner_forecast(window, 4, 10, drift=True, level=True)[0, :, 0]
    np.testing.assert_allclose(with_level, future)  # the same line from the last value


def test_level_partner_is_the_mean_season_on_the_last_values_level():
    """The last value moved along the mean season: the seasonal shape without the noise of
    any single season, at the level the series has now (not the level of a season ago)."""
    rng = np.random.default_rng(0)
    shape = 5.0 * np.sin(2 * np.pi * np.arange(24) / 24)
    walk = np.cumsum(rng.normal(0.0, 0.2, (300, 264)), axis=1)  # a wandering level
    series = (walk + np.tile(shape, 11) + rng.normal(0.0, 0.3, walk.shape))[..., None]
    windows, future = series[:, :240], series[:, 240:, 0]
    errors = {
        form: np.abs(partner_forecast(windows, 24, 24, False, form)[..., 0] - future).mean()
        for form in (False, True)
    }
    assert errors[True] < 0.8 * errors[False]
    exact = (10.0 + np.tile(shape[:4], 10)).reshape(1, 40, 1)
    forecast = partner_forecast(exact, 4, 6, drift=False, level=True)[0, :, 0]
    np.testing.assert_allclose(forecast, 10.0 + np.tile(shape[:4], 2)[:6])


# ------------------------------------------------------------------------------------------
# the check at the end of fit, and the blend in every forecast path
# ------------------------------------------------------------------------------------------


def test_network_worse_than_the_seasonal_naive_warns_and_is_blended():
    frame = hourly(n_series=2)
    with pytest.warns(ForecasterWarning, match=r"validation windows .* seasonal naive \(m=24\)"):
        model = tiny().fit(frame)
    report = model.validation_baselines_
    assert report["m"] == 24 and report["seasonal_naive"] == 0.0  # an exactly repeating day
    assert report["model"] > 0 and model.validation_skill_ == float("inf")
    # the pool: the exact partners (the seasonal naive, alone and with its drift of 0)
    assert model.baseline_.network == (0.0,) and model.baseline_.m == 24
    assert report["blended"] == 0.0 and report["windows"] == model.n_val_windows_
    forecast = model.predict(frame)  # the seasonal naive itself
    day = frame.group_by("id", maintain_order=True).tail(24)
    np.testing.assert_allclose(forecast["y"], day.group_by("id").head(12)["y"], rtol=1e-6)


def test_a_constant_target_forecasts_its_value_exactly_through_a_pool(tmp_path):
    """A constant 5.0 blended by a pool of six agreeing partners (network weight 0) forecast
    5.000000000000001 (the rounding of 0.2424 * 5 + 5 * 0.1515 * 5): every forecast path now
    gives 5.0, as the blend is kept within the range of the forecasts it weighs."""
    n = 24 * 12
    start = dt.datetime(2024, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    frame = pl.DataFrame({"id": "s0", "time": times, "y": np.full(n, 5.0)})
    model = fitted(frame, validation_size=12)
    assert model.baseline_.network == (0.0,) and len(model.baseline_.terms) > 2
    cutoffs = frame["time"][100:200:20]
    package.save(model, tmp_path / "m")
    stream = model.stream(frame.head(200))
    stream.update(frame.tail(n - 200))
    paths = {
        "predict": model.predict(frame),
        "cutoffs": model.predict(frame, cutoff=cutoffs),
        "backtest": model.backtest(frame, folds=2, refit=False).forecasts,
        "stream": stream.forecast(),
        "loaded": package.load(tmp_path / "m").predict(frame),
    }
    for name, forecast in paths.items():
        assert (forecast["y"] == 5.0).all(), (name, forecast["y"].unique().to_list())


def test_every_forecast_path_applies_the_blend(tmp_path):
    frame = hourly(n_series=2, noise=0.3)
    model = fitted(frame)
    assert not model.baseline_.is_identity
    network = copy.deepcopy(model)
    network.baseline_ = None
    cutoffs = frame["time"].unique().sort()[100:200:20]
    blended, alone = model.predict(frame, cutoff=cutoffs), network.predict(frame, cutoff=cutoffs)
    assert not np.allclose(blended["y"], alone["y"])
    one = model.predict(frame, cutoff=cutoffs[2])  # one cutoff = the same origin in the list
    same = blended.filter(pl.col("origin") == cutoffs[2]).drop("origin")
    np.testing.assert_allclose(one["y"], same["y"], rtol=1e-6)
    backtest = model.backtest(frame, folds=2, refit=False)  # forecasts through predict
    first = backtest.forecasts.filter(pl.col("fold") == 0).sort("id", "time")
    direct = model.predict(frame, cutoff=first["cutoff"][0])
    np.testing.assert_allclose(first["y"], direct["y"], rtol=1e-5)
    network_first = network.backtest(frame, folds=2, refit=False).forecasts
    assert not np.allclose(
        network_first.filter(pl.col("fold") == 0).sort("id", "time")["y"], first["y"]
    )
    stream = model.stream(frame.group_by("id", maintain_order=True).head(200))
    stream.update(frame.group_by("id", maintain_order=True).tail(88))
    np.testing.assert_allclose(stream.forecast()["y"], model.predict(frame)["y"], rtol=1e-4)
    package.save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["baseline"]["blend"] == model.baseline_.config()
    loaded = package.load(tmp_path / "m")
    assert loaded.baseline_ == model.baseline_
    assert loaded.validation_baselines_ == model.validation_baselines_
    assert loaded.predict(frame).equals(model.predict(frame))


def test_a_trending_series_blends_with_the_seasonal_naive_with_drift(tmp_path):
    """A repeating day on a steady climb: the seasonal naive lags a day of trend, the
    seasonal naive with drift is exact, and baseline="best" chooses it; every path applies
    it."""
    frame = hourly(days=14, n_series=2).with_columns(
        pl.col("y") + 0.05 * pl.int_range(pl.len()).over("id")
    )
    with pytest.warns(ForecasterWarning, match=r"seasonal naive \(m=24\) with drift at network"):
        model = tiny(baseline="best").fit(frame)
    assert model.baseline_ == BaselineBlend.single(m=24, weights=(0.0,), drift=True)
    report = model.validation_baselines_
    assert report["blend_drift"] is True and report["blended"] < 1e-6 < report["seasonal_naive"]
    future = hourly(days=15, n_series=2).with_columns(
        pl.col("y") + 0.05 * pl.int_range(pl.len()).over("id")
    )
    actual = future.group_by("id", maintain_order=True).tail(24)
    forecast = model.predict(frame)
    np.testing.assert_allclose(forecast["y"], actual.group_by("id").head(12)["y"], atol=1e-4)
    stream = model.stream(frame.group_by("id", maintain_order=True).head(200))
    stream.update(frame.group_by("id", maintain_order=True).tail(136))
    np.testing.assert_allclose(stream.forecast()["y"], forecast["y"], rtol=1e-5)
    package.save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    term = {"m": 24, "drift": True, "level": False, "coefficients": [1.0]}
    assert config["baseline"]["blend"] == {"network": [0.0], "terms": [term]}
    assert package.load(tmp_path / "m").predict(frame).equals(forecast)


def test_a_blend_saved_before_the_drift_partners_loads_without_drift():
    model = fitted(hourly(n_series=2, noise=0.3))
    entry = blend_state.baseline_config(model)["baseline"]
    entry["blend"] = {"m": 24, "weights": [0.5]}  # as models saved before drift wrote it
    blend_state.restore_baseline(model, entry, n_targets=1)
    assert model.baseline_.drift is False and model.baseline_.level is False
    assert not model.baseline_.is_identity


def test_a_blend_saved_in_the_one_partner_form_loads_and_forecasts_the_same_bits(tmp_path):
    """Models saved before the pooled blend wrote {"m", "weights", "drift", "level"}: such a
    config loads as the blend of that partner and forecasts the same bits as the model that
    wrote it (the single blend's arithmetic is the one-term case of the pooled one)."""
    frame = hourly(n_series=2, noise=0.3)
    model = fitted(frame, baseline="best")
    blend = model.baseline_
    assert not blend.is_identity and len(blend.terms) == 1
    package.save(model, tmp_path / "m")
    old = {"m": blend.m, "weights": list(blend.weights), "drift": blend.drift, "level": blend.level}
    edit_saved_config(tmp_path / "m", lambda config: config["baseline"].update(blend=old))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["baseline"]["blend"] == old
    loaded = package.load(tmp_path / "m")
    assert loaded.baseline_ == blend
    expected = model.predict(frame)
    assert loaded.predict(frame).equals(expected)
    window = frame.group_by("id", maintain_order=True).tail(48)["y"].to_numpy().reshape(2, 48, 1)
    network = copy.deepcopy(model)
    network.baseline_ = None
    w = blend.weights[0]
    partner = partner_forecast(window, blend.m, 12, blend.drift, blend.level)
    single = w * network.predict(frame)["y"].to_numpy().reshape(2, 12, 1) + (1 - w) * partner
    np.testing.assert_allclose(expected["y"], single.ravel(), rtol=1e-6)


def saved_blend(**changes) -> dict:
    """A pooled blend entry as config() writes it, with ``changes`` (None: a key removed)."""
    terms = [
        {"m": 24, "drift": False, "level": False, "coefficients": [0.5]},
        {"m": 1, "drift": True, "level": False, "coefficients": [0.25]},
    ]
    blend = {"network": [0.25], "terms": terms, **changes}
    return {k: v for k, v in blend.items() if v is not None}


@pytest.mark.parametrize(
    ("blend", "message"),
    [
        (saved_blend(extra=1), r"baseline.blend is .*; expected network and terms"),
        (saved_blend(network=[0.25, 0.0]), r"blend.network is \[0.25, 0.0\]; expected 1 numbers"),
        (saved_blend(network=[float("nan")]), r"blend.network is \[nan\]; expected 1 numbers in"),
        (saved_blend(network=[True]), r"blend.network is \[True\]; expected 1 numbers in \[0, 1\]"),
        (saved_blend(network=[0.5]), r"coefficients sum to \[1.25\] per target; expected 1"),
        (saved_blend(terms=[]), r"blend.terms is \[\]; expected a list of terms"),
        (
            saved_blend(terms=[{"m": 24, "drift": False, "level": False, "coefficients": [1.5]}]),
            r"terms\[0\].coefficients is \[1.5\]; expected 1 numbers in \[0, 1\]",
        ),
        (
            saved_blend(terms=[{"m": 24, "drift": 0, "level": False, "coefficients": [0.75]}]),
            r"terms\[0\].drift is 0; expected true or false",
        ),
        (
            saved_blend(terms=[{"m": 30, "drift": True, "level": False, "coefficients": [0.75]}]),
            r"terms\[0\].m is 30: 2 \* m \(with drift or level\) is beyond lookback=48",
        ),
        (
            saved_blend(
                terms=[{"m": 24, "drift": False, "level": False, "coefficients": [0.375]}] * 2
            ),
            r"terms\[1\] repeats the partner of an earlier term",
        ),
        (
            saved_blend(terms=[{"m": 24, "drift": False, "coefficients": [0.75]}]),
            r"terms\[0\] is .*; expected m, drift, level, coefficients",
        ),
        ({"m": 24, "weights": [0.3]}, r"blend.weights is \[0.3\]; expected 1 of"),
        ({"weights": [0.5]}, r"expected network and terms \(or, saved before the pooled blend"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None,
)
def test_a_saved_blend_that_config_does_not_write_is_refused(blend, message):
    model = fitted(hourly(n_series=2, noise=0.3))
    entry = {"blend": blend, "validation": None}
    with pytest.raises(StateError, match=message):
        blend_state.restore_baseline(model, entry, n_targets=1)
    entry["blend"] = saved_blend()  # the same entry, well formed: loads
    blend_state.restore_baseline(model, entry, n_targets=1)
    assert model.baseline_.describe().startswith("0.25 x network + 0.5 x seasonal naive")


@pytest.mark.parametrize(
    "values", [np.tile(np.arange(24.0), 12), np.full(288, 5.0)], ids=["exact day", "constant"]
)
def test_a_model_whose_seasonal_naive_is_exact_saves_and_loads(tmp_path, values):
    """The seasonal naive makes no error on validation, the network does: the skill is
    infinite. JSON has no inf, so the saved report holds null, and loading gives inf back."""
    frame = pl.DataFrame({"time": np.arange(len(values)), "y": values})
    model = RNNForecaster(target="y", time_col="time", horizon=12, lookback=48, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model.fit(frame)
    assert model.validation_skill_ == np.inf
    package.save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["baseline"]["validation"]["skill"] is None
    loaded = package.load(tmp_path / "m")
    assert loaded.validation_skill_ == np.inf
    assert loaded.validation_baselines_ == model.validation_baselines_
    assert loaded.predict(frame).equals(model.predict(frame))


def test_a_series_held_out_whole_is_scaled_by_its_own_naive_error_not_its_units():
    """With an integer validation_size, a short series can lie wholly in the hold-out. Its
    errors are scaled by its naive error over its own rows, so the baselines' scores do not
    change when that series alone is given in other units. (The network's do: a series with
    no row before the hold-out is left unscaled, with a warning, see PanelScaler.fit.)"""
    rng = np.random.default_rng(0)
    start = dt.datetime(2024, 1, 1)

    def hours(n):
        return pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)

    long = np.tile(rng.normal(0, 3, 24), 12) + 10 + rng.normal(0, 0.2, 288)
    short = 0.01 * np.arange(72) + 5 + rng.normal(0, 0.001, 72)  # all 72 rows held out

    def check(units):
        frame = pl.concat(
            [
                pl.DataFrame({"id": "a", "time": hours(288), "y": long}),
                pl.DataFrame({"id": "b", "time": hours(72), "y": short * units}),
            ]
        )
        model = fitted(frame, validation_size=80)
        return model.baseline_, model.validation_baselines_

    report, report_k = check(1.0)[1], check(1000.0)[1]
    for key in ("naive", "seasonal_naive"):
        assert report_k[key] == pytest.approx(report[key], rel=1e-6), key
    assert report["naive"] < 10  # was the short series' raw error (x 1000 in other units)


def test_a_noisy_day_on_a_wandering_level_blends_with_the_mean_season(tmp_path):
    """A fixed daily shape under noise on a level that wanders: the mean season from the last
    value beats the seasonal naive (yesterday's noise and level) on validation,
    baseline="best" chooses it, and predict, a cutoff list, the stream and save / load apply it
    alike."""
    rng = np.random.default_rng(3)
    n, start = 24 * 16, dt.datetime(2024, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    day = 5.0 * np.sin(2 * np.pi * np.arange(n) / 24)
    frames = [
        pl.DataFrame({"id": f"s{k}", "time": times, "y": 20.0 + day + level + noise})
        for k, (level, noise) in enumerate(
            zip(
                np.cumsum(rng.normal(0.0, 0.3, (3, n)), axis=1),
                rng.normal(0.0, 0.5, (3, n)),
                strict=True,
            )
        )
    ]
    frame = pl.concat(frames)
    model = fitted(frame, lookback=96, baseline="best")
    report = model.validation_baselines_
    assert model.baseline_.level is True and report["blend_level"] is True
    assert report["blended"] < report["seasonal_naive"]
    network = copy.deepcopy(model)
    network.baseline_ = None
    window = frame.group_by("id", maintain_order=True).tail(96)["y"].to_numpy().reshape(3, 96, 1)
    partner = partner_forecast(window, model.baseline_.m, 12, model.baseline_.drift, True)
    w = model.baseline_.weights[0]
    expected = w * network.predict(frame)["y"].to_numpy() + (1 - w) * partner.ravel()
    forecast = model.predict(frame)
    np.testing.assert_allclose(forecast["y"], expected, rtol=1e-5)
    stream = model.stream(frame.group_by("id", maintain_order=True).head(300))
    stream.update(frame.group_by("id", maintain_order=True).tail(n - 300))
    np.testing.assert_allclose(stream.forecast()["y"], forecast["y"], rtol=1e-4)
    package.save(model, tmp_path / "m")
    assert package.load(tmp_path / "m").predict(frame).equals(forecast)


def weeks_of_hours(weekend: float, wander: float, seed: int = 0) -> pl.DataFrame:
    """Five weeks of a daily shape on a level that wanders by ``wander`` an hour,
    ``weekend`` higher on weekends; its last 100 hours a copy of the week before (a week
    that happens to repeat)."""
    rng = np.random.default_rng(seed)
    n, start = 24 * 7 * 5, dt.datetime(2024, 1, 1)
    t = np.arange(n)
    y = 20 + 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, wander, n))
    y = y + weekend * (t // 24 % 7 >= 5)
    y[-100:] = y[-100 - 168 : -168]
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    return pl.DataFrame({"id": "s0", "time": times, "y": y})


def test_a_week_that_repeats_only_in_the_validation_windows_is_not_chosen():
    # the weekly seasonal naive is exact on every validation window (they lie in the copy),
    # but over the rows before them a week ago is a worse guess than a day ago: the check
    # keeps to the day (it chose m=168 at network weight 0 before)
    frame = weeks_of_hours(weekend=0.0, wander=0.4)
    model = fitted(frame, lookback=192)
    assert model.validation_baselines_["blend_m"] == 24
    assert model.baseline_.m == 24


def test_a_week_the_history_shows_stays_a_partner():
    frame = weeks_of_hours(weekend=8.0, wander=0.1)  # a week ago beats a day ago
    model = fitted(frame, lookback=192)
    assert model.validation_baselines_["blend_m"] == 168


def test_calibration_scores_the_blended_forecasts():
    frame = hourly(n_series=2, noise=0.3)
    train = frame.group_by("id", maintain_order=True).head(240)
    model = fitted(train)
    network = copy.deepcopy(model)
    network.baseline_ = None
    for estimator in (model, network):
        estimator.calibrate(frame, folds=3, step=12, normalize=None)
    blended = model.conformal_["residuals"]
    assert not np.allclose(blended, network.conformal_["residuals"])
    backtest = model.backtest(frame, folds=3, step=12, refit=False).forecasts
    errors = (backtest["y_actual"] - backtest["y"]).abs().to_numpy()
    np.testing.assert_allclose(np.sort(np.abs(blended).ravel()), np.sort(errors), atol=1e-4)
    out = model.predict(frame, level=[80])
    assert ((out["y_lo_80"] <= out["y"]) & (out["y"] <= out["y_hi_80"])).all()
    np.testing.assert_allclose(out["y"], model.predict(frame)["y"])


def test_weights_of_one_leave_the_network_forecasts_bit_for_bit():
    frame = hourly(n_series=2, noise=0.3)
    model = fitted(frame)
    network = copy.deepcopy(model)
    network.baseline_ = None
    model.baseline_ = BaselineBlend.single(m=24, weights=(1.0,))
    assert model.predict(frame).equals(network.predict(frame))
    none = fitted(frame, baseline="none")
    assert none.baseline_ is None and none.validation_baselines_["weights"] == [1.0]
    assert none.predict(frame).equals(network.predict(frame))  # same seed, same network


def forwards_of(model: RNNForecaster) -> list[int]:
    """A list that grows by one at each forward call of ``model``'s network (the hook stays
    for the model's life: tests only)."""
    calls: list[int] = []
    model.network_.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_a_blend_at_network_weight_zero_does_not_run_the_network():
    """Weight 0 for every target: the forecasts are the partner's alone, the same bits as
    those of the forward-computing path (the network's output weighed by 0), through
    predict, a list of cutoffs, one cutoff, a backtest and calibrated intervals."""
    frame = hourly(n_series=2, noise=0.3)
    model = fitted(frame.group_by("id", maintain_order=True).head(240))
    model.baseline_ = BaselineBlend.single(m=24, weights=(0.0,))
    forward = copy.deepcopy(model)
    forward._reads_network = lambda: True  # the path that runs the network, as before
    cutoffs = frame["time"].unique().sort()[100:200:20]
    skipped, ran = forwards_of(model), forwards_of(forward)
    for estimator in (model, forward):
        estimator.calibrate(frame, folds=2, step=12, normalize=None)
    outputs = []
    for estimator in (model, forward):
        outputs.append(
            [
                estimator.predict(frame, level=[80]),
                estimator.predict(frame, cutoff=cutoffs),
                estimator.predict(frame, cutoff=cutoffs[2]),
                estimator.backtest(frame, folds=2, refit=False).forecasts,
            ]
        )
    assert skipped == [] and len(ran) >= 5
    for got, expected in zip(*outputs, strict=True):
        assert got.columns == expected.columns and got.height == expected.height > 0
        for name in ("y", "y_lo_80", "y_hi_80"):
            if name in got.columns:
                bits = got[name].to_numpy().view(np.int64), expected[name].to_numpy().view(np.int64)
                assert np.array_equal(*bits), name


def test_a_quantile_model_at_network_weight_zero_still_runs_its_network():
    """Its quantiles move with the blend around the network's own median: they read it."""
    model = fitted(hourly(n_series=2, noise=0.3), loss="quantile", quantiles=[0.1, 0.5, 0.9])
    model.baseline_ = BaselineBlend.single(m=24, weights=(0.0,))
    calls = forwards_of(model)
    out = model.predict(hourly(n_series=2, noise=0.3), quantiles=[0.1, 0.9])
    assert len(calls) == 1 and (out["y_q10"] < out["y_q90"]).all()


def test_baseline_none_still_reports_and_warns():
    with pytest.warns(ForecasterWarning, match=r"baseline='none': the forecasts are the network"):
        model = tiny(baseline="none").fit(hourly())
    assert model.baseline_ is None and model.validation_skill_ > 1


def test_without_validation_there_is_no_check_and_no_blend():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        model = tiny(validation_size=0).fit(hourly())
    assert model.baseline_ is None
    assert model.validation_baselines_ is None and model.validation_skill_ is None


def test_quantile_model_keeps_ordered_quantiles_and_intervals():
    frame = hourly(n_series=2, noise=0.3)
    model = fitted(frame, loss="quantile", quantiles=[0.1, 0.5, 0.9])
    assert not model.baseline_.is_identity
    out = model.predict(frame, quantiles=[0.1, 0.5, 0.9])
    assert (out["y_q10"] <= out["y_q50"]).all() and (out["y_q50"] <= out["y_q90"]).all()
    np.testing.assert_allclose(out["y"], out["y_q50"], rtol=1e-6)


def test_multivariate_targets_get_one_weight_each():
    frame = hourly(n_series=2, noise=0.3)
    walk = np.cumsum(np.random.default_rng(1).normal(0, 1, frame.height))
    frame = frame.with_columns(z=pl.Series(walk))
    model = fitted(frame, target=["y", "z"], head="direct")
    assert len(model.baseline_.weights) == 2
    assert len(model.validation_baselines_["weights"]) == 2


def test_the_check_scores_a_bounded_sample_of_many_validation_windows(monkeypatch):
    monkeypatch.setattr(baseline_blend, "CHECK_WINDOWS", 7)
    model = fitted(hourly(n_series=2, noise=0.3))
    assert model.n_val_windows_ > 7 and model.validation_baselines_["windows"] == 7


def test_lookback_shorter_than_the_season_blends_with_the_naive():
    frame = hourly(n_series=1, noise=0.3)
    model = fitted(frame, lookback=12, horizon=6, segment_length=6)
    assert model.validation_baselines_["m"] == 1  # 24 does not fit in 12 steps
    assert model.baseline_.m == 1


def test_parameter_is_cloned_and_refused_when_junk():
    model = tiny(baseline="none")
    assert clone(model).get_params()["baseline"] == "none"
    assert RNNForecaster().get_params()["baseline"] == "auto"
    junk = r"baseline must be one of 'auto', 'best', 'none'"
    with pytest.raises(DataValidationError, match=junk):
        tiny(baseline="per_series").fit(hourly())


def test_older_saves_load_without_a_blend(tmp_path):
    """A model saved before the parameter existed has no ``baseline`` entry or parameter: it
    loads with ``baseline="none"`` and forecasts with its network alone, as it did."""
    frame = hourly(noise=0.3)
    model = fitted(frame, baseline="none", validation_size=0)
    package.save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "baseline" not in config and "baseline" not in config["params"]
    loaded = package.load(tmp_path / "m")
    assert loaded.get_params()["baseline"] == "none" and loaded.baseline_ is None
    assert loaded.predict(frame).equals(model.predict(frame))


# ------------------------------------------------------------------------------------------
# evidence: series on which the default network loses to the seasonal naive
# ------------------------------------------------------------------------------------------


def held_out_ratios(frame: pl.DataFrame, horizon: int, m: int, n_test: int) -> tuple:
    """Fit the defaults on ``frame`` without its last ``n_test`` rows and return the MAE of
    the network alone and of the default (blended) model over the seasonal naive's, from
    every origin whose horizon lies in the tail."""
    n_fit = frame.height - n_test
    model = RNNForecaster(target="y", horizon=horizon, random_state=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model.fit(frame.head(n_fit))
    origins = np.arange(n_fit - 1, frame.height - horizon)
    cutoffs = frame["time"].gather(origins)
    network = copy.deepcopy(model)
    network.baseline_ = None
    values = frame["y"].to_numpy()[:, None]
    actual = values[origins[:, None] + np.arange(1, horizon + 1), 0]
    season = origin_forecasts(values, np.zeros(len(origins), np.int64), origins, horizon, m)

    def error(estimator):
        forecast = estimator.predict(frame, cutoff=cutoffs)["y"].to_numpy()
        return np.abs(forecast.reshape(-1, horizon) - actual).mean()

    reference = np.abs(season[..., 0] - actual).mean()
    return error(network) / reference, error(model) / reference, model


def test_daily_series_whose_trend_turns():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    trend = np.where(t < 300, 0.2 * t, 60 - 0.3 * (t - 300))
    y = 50 + trend + 10 * (t % 7 >= 5) + rng.normal(0, 2, len(t))
    start = dt.date(2020, 1, 1)
    times = pl.date_range(start, start + dt.timedelta(days=len(t) - 1), "1d", eager=True)
    network, default, model = held_out_ratios(pl.DataFrame({"time": times, "y": y}), 14, 7, 56)
    assert network > 1.5  # the network alone: much worse than the seasonal naive
    assert default <= 1.1
    assert model.validation_baselines_["m"] == 7


@pytest.mark.slow
def test_short_noisy_hourly_temperature():
    # was a known gap (issue 15) with the single best blend: 1.11x the seasonal naive on the
    # held-out tail; the pooled blend of baseline="auto" is at 0.97x (network alone: 1.53x)
    rng = np.random.default_rng(1)
    n = 24 * 21
    hour = np.arange(n) % 24
    daily = 7 * np.sin(2 * np.pi * (hour - 9) / 24) + 2 * np.sin(4 * np.pi * hour / 24)
    weather = np.zeros(n)
    for k in range(1, n):
        weather[k] = 0.999 * weather[k - 1] + rng.normal(0, 0.15)
    y = 12 + daily + weather + rng.normal(0, 0.4, n)
    start = dt.datetime(2023, 6, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n - 1), "1h", eager=True)
    network, default, _ = held_out_ratios(pl.DataFrame({"time": times, "y": y}), 24, 24, 72)
    assert network > 1.15
    assert default <= 1.1


@pytest.mark.slow
def test_short_monthly_series():
    rng = np.random.default_rng(0)
    n = 12 * 13
    month = np.arange(n) % 12
    y = 100 + 0.3 * np.arange(n) + 20 * np.sin(2 * np.pi * month / 12)
    y = y + 8 * np.cos(4 * np.pi * month / 12) + rng.normal(0, 3, n)
    times = pl.date_range(dt.date(2010, 1, 1), dt.date(2030, 1, 1), "1mo", eager=True)[:n]
    network, default, _ = held_out_ratios(pl.DataFrame({"time": times, "y": y}), 12, 12, 24)
    assert default <= 1.1
    assert network <= 1.1  # here the network wins; the blend must not spoil it beyond 1.1


def test_forecasts_that_are_not_finite_skip_the_check_and_predict_refuses(monkeypatch):
    """A network whose outputs are NaN (diverged). Forecasts beyond float32 (a log target near
    3.3e38) were the case here; they are finite float64 numbers now, and checked."""
    huge = pl.DataFrame({"t": np.arange(60), "y": np.linspace(1e37, 3.3e38, 60)})
    model = RNNForecaster(target="y", time_col="t", lookback=8, horizon=3, lr=0.05, **TINY)
    model.set_params(max_epochs=3, hidden_size=4, segment_length=4, target_transform="log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", package.BaselineWarning)
        model.fit(huge)
    assert model.validation_baselines_ is not None
    assert np.isfinite(model.predict(huge)["y"].to_numpy()).all()
    real = inference.predict_batched
    monkeypatch.setattr(inference, "predict_batched", lambda *a, **k: real(*a, **k) * np.nan)
    with pytest.warns(ForecasterWarning, match=r"baselines were not checked: .* not a finite"):
        model.fit(huge)
    assert model.baseline_ is None and model.validation_baselines_ is None
    with pytest.raises(DataValidationError, match=r"The forecast is not a finite number"):
        model.predict(huge)


def test_the_baseline_warning_points_at_the_users_line_from_fit_and_from_a_backtest():
    t = np.arange(300)
    start = dt.date(2020, 1, 1)
    times = pl.date_range(start, start + dt.timedelta(days=len(t) - 1), "1d", eager=True)
    frame = pl.DataFrame({"time": times, "y": 10.0 + 5.0 * (t % 7 >= 5)})  # sNaive: exact
    model = RNNForecaster(
        target="y", time_col="time", horizon=7, hidden_size=4, max_epochs=1, random_state=0
    ).set_params(progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(frame)
        model.backtest(frame, folds=1, step=7, refit=True)  # a clone fitted inside forecaster
    raised = [w for w in caught if issubclass(w.category, package.BaselineWarning)]
    assert len(raised) == 2, [str(w.message) for w in caught]
    assert [w.filename for w in raised] == [__file__, __file__]


def test_validation_scores_leave_out_the_values_missing_made_up():
    """A line observed every step before its hold-out and every 30th step in it, filled by
    missing="ffill": the check scores the 22 observed hold-out values only (the naive was
    exact on the forward-filled ones: 4.12 instead of 28.6), as a backtest does."""
    t = np.arange(300)
    keep = (t < 210) | (t % 30 == 0) | (t == 299)
    frame = pl.DataFrame({"time": t[keep], "y": t[keep] * 1.0})
    model = RNNForecaster(
        "y", lookback=20, horizon=10, validation_size=90, missing="ffill", device="cpu",
        target_transform="none", **TINY,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning on the 29 % of filled rows
        model.fit(frame)
    report = model.validation_baselines_
    origins = np.arange(209, 290)  # every validation origin (horizon 10 before the end)
    assert report["windows"] == len(origins)
    filled = np.maximum.accumulate(np.where(keep, t, 0))  # the forward-filled line
    steps = origins[:, None] + np.arange(1, 11)
    seen = keep[steps]  # the naive's in-sample error before the hold-out is 1
    expected = np.abs(filled[origins][:, None] - steps)[seen].mean()
    assert seen.sum() < seen.size // 4
    assert report["naive"] == pytest.approx(expected) and report["naive"] > 25


def test_validation_check_skipped_when_no_held_out_value_was_observed():
    """Every held-out target value made up (nulls at the end, forward-filled): no score and
    no blend, with a warning that says why (was: scores against the filled values)."""
    y = np.sin(np.arange(80) / 3.0)
    frame = pl.DataFrame({"time": np.arange(80), "y": np.where(np.arange(80) < 70, y, np.nan)})
    model = RNNForecaster(
        "y", lookback=8, horizon=5, validation_size=8, missing="ffill", device="cpu", **TINY
    )
    with pytest.warns(ForecasterWarning, match="holds none of the actual values"):
        model.fit(frame)
    assert model.validation_baselines_ is None and model.baseline_ is None


def by_hand(frame: pl.DataFrame, model: RNNForecaster, forecasters: dict) -> dict[str, float]:
    """The check's scores computed from the frame's own (float64) values: each forecaster
    (name -> ``f(y, origin)``, the ``horizon`` values after ``origin`` of the series ``y``)
    at every validation origin, its mean absolute error per series over the series'
    in-sample naive error before the hold-out, averaged over the series."""
    horizon, held = int(model.horizon), int(model.validation_size)
    scores: dict[str, list[float]] = {name: [] for name in forecasters}
    for _, series in frame.group_by("id", maintain_order=True):
        y = series["y"].to_numpy()
        origins = range(len(y) - held - 1, len(y) - horizon)
        scale = np.abs(np.diff(y[: len(y) - held])).mean()
        for name, forecast in forecasters.items():
            errors = [np.abs(forecast(y, o) - y[o + 1 : o + 1 + horizon]).mean() for o in origins]
            scores[name].append(np.mean(errors) / scale)
    return {name: float(np.mean(values)) for name, values in scores.items()}


def network_at(model: RNNForecaster, frame: pl.DataFrame):
    """``f(y, origin)`` of the model's forecasts from every validation origin (the series
    told apart by their first value)."""
    n, held = frame.group_by("id").len()["len"].min(), int(model.validation_size)
    cutoffs = list(range(n - held - 1, n - int(model.horizon)))
    with warnings.catch_warnings():  # series at 1e8: float32 rounds their changes away
        warnings.simplefilter("ignore", ForecasterWarning)
        forecasts = model.predict(frame, cutoff=cutoffs)
    first = dict(frame.group_by("id", maintain_order=True).first().select("y", "id").iter_rows())

    def forecast(y: np.ndarray, origin: int) -> np.ndarray:
        rows = forecasts.filter((pl.col("id") == first[y[0]]) & (pl.col("origin") == origin))
        return rows["y"].to_numpy().astype(np.float64)

    return forecast


def test_the_check_scores_the_frames_values_not_their_float32_rounding():
    """Series at 1e8 (float32 steps of 8): the check scores the frame's float64 values, as
    the backtest does (was: network 6.28, naive 2.28, seasonal naive 0.603 from the float32
    values; by hand from the frame's 8.18 / 2.64 / 0.607)."""
    rng = np.random.default_rng(0)
    t = np.arange(120)
    frame = pl.concat(
        pl.DataFrame(
            {"id": f"s{i}", "time": t, "y": 1e8 + 6 * np.sin(2 * np.pi * t / 12)}
        ).with_columns(pl.col("y") + rng.normal(0, 1, 120))
        for i in range(3)
    )
    model = tiny(lookback=24, horizon=6, validation_size=12, baseline="none", batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model.fit(frame)
    expected = by_hand(
        frame,
        model,
        {
            "model": network_at(model, frame),
            "naive": lambda y, o: np.full(6, y[o]),
            "seasonal_naive": lambda y, o: y[o - 11 + np.arange(6)],
        },
    )
    report = model.validation_baselines_
    for name, value in expected.items():
        assert report[name] == pytest.approx(value, rel=1e-9), name
    assert report["naive"] > 2.5  # the float32 values: 2.28


def test_a_blend_forms_its_partner_from_the_frames_values_not_their_float32_rounding():
    """1.2345678900e10 + 2e6 sin(weekly) + cents (float32 steps of 1024 there): the seasonal
    naive is exact on validation (error 0) and baseline="best" takes it alone (w = 0). predict, a
    list of cutoffs and a backtest gave its float32 rounding (Float32; a pipeline on such data
    had backtest MAE 100 to 194, float32 rounding only); now the frame's own values (Float64,
    MAE 0)."""
    start = dt.date(2024, 1, 1)
    times = pl.date_range(start, start + dt.timedelta(days=149), "1d", eager=True)
    t = np.arange(150)
    frame = pl.concat(
        pl.DataFrame(
            {"id": i, "time": times, "y": 1.23456789e10 + 2e6 * np.sin(2 * np.pi * t / 7 + k)}
        ).with_columns(pl.col("y").round(2) + 0.37)
        for k, i in enumerate("ab")
    )
    model = fitted(frame, time_col="time", lookback=14, horizon=7, baseline="best")
    assert model.baseline_ == BaselineBlend.single(m=7, weights=(0.0,))
    week_before = frame.with_columns(pl.col("time") + dt.timedelta(days=7))
    forecast = model.predict(frame)
    assert forecast.schema["y"] == pl.Float64
    expected = forecast.select("id", "time").join(week_before, on=["id", "time"], how="left")
    assert forecast["y"].to_list() == expected["y"].to_list()  # bit for bit
    cutoffs = model.predict(frame, cutoff=[times[100], times[120]])
    assert cutoffs.schema["y"] == pl.Float64
    expected = cutoffs.select("id", "time").join(week_before, on=["id", "time"], how="left")
    assert cutoffs["y"].to_list() == expected["y"].to_list()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # in-sample: the fitted model's
        result = backtest(model, frame, folds=2)
    assert result.forecasts.schema["y"] == pl.Float64
    assert result.aggregate["mae"][0] == 0.0


@pytest.mark.parametrize("baseline", ["best", "auto"])
def test_a_blend_stays_in_a_log_targets_domain_chosen_on_validation_as_predicted(baseline):
    """A positive fall that slows down: the naive with drift, the partner validation
    chooses, runs below 0; predict and the check both floor it at log's bound, which moves
    baseline="best"'s choice to w = 0.25 (was: w = 0.5 on the partner's negative values and
    predict down to -1.21 with target_transform="log", which the network alone cannot
    forecast), and the blend's validation error (the single one's or the pool's) is that of
    predict's forecasts from the same origins."""
    rng = np.random.default_rng(0)
    t = np.arange(100)
    frame = pl.concat(
        pl.DataFrame({"id": f"s{i}", "time": t, "y": (100 - t) ** 2 / 100 + 0.2}).with_columns(
            pl.col("y") + rng.uniform(0, 0.1, 100)
        )
        for i in range(3)
    )
    options = {"lookback": 24, "horizon": 12, "validation_size": 24, "batch_size": 64}
    model = fitted(frame, target_transform="log", baseline=baseline, **options)
    if baseline == "best":
        assert model.baseline_ == BaselineBlend.single(m=1, weights=(0.25,), drift=True)
    else:  # the pool holds the naive with drift, floored
        assert (1, True, False) in [term.partner for term in model.baseline_.terms]
    assert model.predict(frame)["y"].min() > 0.0
    expected = by_hand(frame, model, {"blended": network_at(model, frame)})
    assert model.validation_baselines_["blended"] == pytest.approx(expected["blended"], rel=1e-5)


def test_blend_floors_partners_and_quantiles_inside_the_transforms_domain():
    """They were floored AT the bound (0 for log), which is outside the domain: a forecast
    of 0.0 that a later fit with target_transform="log" refuses. Now at the least float32
    inside it (domain_floor), for the point forecasts and a quantile model's quantiles."""
    from forecaster.data.transforms import check_target_domain, domain_floor

    window = np.log(np.linspace(30.0, 5.0, 24)).reshape(1, 24, 1)  # a fall, log-transformed
    blend = BaselineBlend.single(m=1, weights=(0.0,), drift=True)
    floor = np.float32(domain_floor("log"))
    assert 0.0 < floor < 1e-37
    point = blend_forecasts(np.full((1, 12, 1), 4.0, np.float32), window, blend,
                            transform="log", lambdas=None)  # fmt: skip
    assert point.min() == floor and point[0, 0, 0] == pytest.approx(5 - 25 / 23)
    quantiles = np.stack([np.full((1, 12, 1), q, np.float32) for q in (1.0, 4.0, 9.0)], -1)
    moved = blend_forecasts(quantiles, window, blend, transform="log", lambdas=None,
                            median_index=1)  # fmt: skip
    assert moved.min() == floor and (np.diff(moved, axis=-1) >= 0).all()
    np.testing.assert_array_equal(moved[..., 1], point)
    frame = pl.DataFrame({"t": range(12), "y": point.reshape(-1)})
    check_target_domain("log", Panel.from_frame(frame, target="y", time_col="t"))  # accepted
    # log1p: a fall towards -1 stops at the float32 after -1, not at -1 (log1p(-1) = -inf)
    falling = np.log1p(np.linspace(5.0, -0.5, 24)).reshape(1, 24, 1)
    low = blend_forecasts(np.full((1, 12, 1), 1.0, np.float32), falling, blend,
                          transform="log1p", lambdas=None)  # fmt: skip
    assert low.min() == np.float32(domain_floor("log1p")) > np.float32(-1.0)
    assert np.isfinite(np.log1p(low)).all()
    unbounded = blend_forecasts(np.full((1, 12, 1), 4.0, np.float32), np.exp(window), blend,
                                transform="none", lambdas=None)  # fmt: skip
    assert unbounded.min() < -5  # without a transform the trend goes on


def test_the_none_warning_names_the_partner_auto_would_choose():
    """A falling line without a season: "auto" blends mostly with the naive with drift, and
    the warning of baseline="none" says how (was: "the seasonal naive" and "a lookback of at
    least two seasons")."""
    rng = np.random.default_rng(0)
    t = np.arange(100)
    frame = pl.DataFrame({"id": "s0", "time": t, "y": 105.0 - t + rng.uniform(0, 1, 100)})
    options = {"lookback": 24, "horizon": 12, "validation_size": 14, "batch_size": 64}
    auto = fitted(frame, **options)
    assert auto.baseline_.main.partner == (1, True, False)
    with pytest.warns(ForecasterWarning) as caught:
        none = tiny(baseline="none", **options).fit(frame)
    (message,) = [str(w.message) for w in caught if "validation windows" in str(w.message)]
    margin = auto.validation_baselines_["pool_margin"]  # 20 % / sqrt(one series' evidence)
    assert margin == pytest.approx(blend_choice.POOL_MARGIN / np.sqrt((3 + 11) / 12))
    (size,) = auto.validation_baselines_["pool"]
    assert size == 1  # a pool of one: "the one blend", not "the average of the 1 blends"
    expected = f"baseline='auto' would blend them with the one blend within {margin:.1%} of"
    assert expected in message and "the average of" not in message
    assert "mainly the naive forecast with drift (" in message and "season" not in message
    # "none" keeps no baseline_ (was: "every partner in baseline_.terms") and pools nothing
    others = len(auto.baseline_.terms) - 1
    assert f"; {others} other partner" in message and "baseline_.terms" not in message
    assert none.baseline_ is None and none.validation_baselines_["pool_margin"] is None


def test_the_warning_shows_ratios_near_one_and_an_exact_baseline_in_words():
    """The network 2.83 against the naive 2.82 and an exact seasonal naive (was: "1x" and
    "infx")."""
    t = np.arange(120)
    frame = pl.concat(
        pl.DataFrame(
            {"id": f"s{i}", "time": t, "y": 10.0 * (i + 1) + 3 * np.sin(np.pi * t / 6)}
        ).with_columns(pl.col("y").round(6))
        for i in range(2)
    )
    with pytest.warns(ForecasterWarning) as caught:
        model = tiny(lookback=24, horizon=6, validation_size=12, batch_size=64).fit(frame)
    (message,) = [str(w.message) for w in caught if "validation windows" in str(w.message)]
    report = model.validation_baselines_
    assert report["seasonal_naive"] == 0 and 1 < report["model"] / report["naive"] < 1.005
    ratio = report["model"] / report["naive"]
    assert f"{ratio:.4g}x that of the naive forecast" in message and "infx" not in message
    assert "the seasonal naive (m=12), which is exact on these windows (error 0)" in message


def _exact_panel(n_rows: int) -> Panel:
    """The float64 panel of 20 series, ``n_rows`` rows in all, as the check reads it."""
    frame = pl.DataFrame(
        {
            "id": np.repeat(np.arange(20), n_rows // 20),
            "t": np.tile(np.arange(n_rows // 20), 20),
            "y": np.random.default_rng(0).normal(size=n_rows),
        }
    )
    return Panel.from_frame(frame, target="y", id_col="id", time_col="t").exact_targets(frame)


def test_the_checks_scales_and_partners_hold_few_copies_of_the_values():
    # each float64 temporary of the check is as large as the values (1M rows: 8 MB): the naive
    # scales took 7.4 such arrays at their peak and the partners 4, now 5.3 and 2
    n_rows = 200_000
    exact, size = _exact_panel(n_rows), n_rows * 8
    origins = np.arange(200, n_rows, n_rows // 50)
    starts = exact.offsets[origins // (n_rows // 20)]
    tracemalloc.start()
    try:
        naive_scales(exact, np.ones(n_rows, dtype=bool))
        naive_peak = tracemalloc.get_traced_memory()[1] / size
        tracemalloc.reset_peak()
        for _ in origin_partners(exact.values, starts, origins, 96, 12, [24]):
            pass
        partners_peak = tracemalloc.get_traced_memory()[1] / size
    finally:
        tracemalloc.stop()
    assert naive_peak < 6
    assert partners_peak < 3


def test_fit_on_a_sorted_frame_is_bit_identical_to_a_fit_on_it_shuffled():
    # the sorted frame's exact values are read in place, the shuffled one's by a join: the
    # fitted model, its validation check and its forecasts are the same to the bit
    rng = np.random.default_rng(2)
    t = np.tile(np.arange(240), 4)
    y = np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, t.size) + 1e4
    frame = pl.DataFrame({"id": np.repeat(["a", "b", "c", "d"], 240), "t": t, "y": y})
    params = dict(target="y", id_col="id", time_col="t", lookback=48, horizon=6, hidden_size=4)
    params |= dict(max_epochs=2, windows_per_epoch=128, random_state=0, progress=False)
    fits = [
        RNNForecaster(**params).fit(f)
        for f in (frame, frame.sample(fraction=1.0, shuffle=True, seed=5))
    ]
    assert fits[0].validation_baselines_ is not None
    assert fits[0].validation_baselines_ == fits[1].validation_baselines_
    assert fits[0].baseline_ == fits[1].baseline_
    forecasts = [m.predict(frame)["y"].to_numpy() for m in fits]
    assert forecasts[0].tobytes() == forecasts[1].tobytes()

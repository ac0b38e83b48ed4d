"""The validation hold-out of a fit (forecaster.estimators.sampling): one hold-out time for a
date panel, each series' own last steps for integer steps."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import sine_panel

from forecaster import RNNForecaster
from forecaster.data.frequency import FIRST_BUSINESS_DAY, LAST_BUSINESS_DAY, Frequency
from forecaster.data.panel import Panel
from forecaster.data.steps import ends_on_one_grid, steps_behind
from forecaster.estimators.sampling import (
    check_validated,
    kept_series,
    training_windows,
    validation_holdout,
    validation_steps,
)
from forecaster.exceptions import DataValidationError, ForecasterWarning

START = dt.date(2020, 1, 1)


def days(sid: str, first: int, n: int) -> pl.DataFrame:
    """Series ``sid``: ``n`` days from ``START + first``, the same values on the same day in
    every series (a copy of one random walk)."""
    rng = np.random.default_rng(0)
    walk = np.sin(np.arange(600) / 7) + np.cumsum(rng.normal(0, 0.1, 600))
    times = pl.date_range(
        START + dt.timedelta(first), START + dt.timedelta(first + n - 1), eager=True
    )
    return pl.DataFrame({"id": sid, "t": times, "y": walk[first : first + n]})


def panel_of(*frames: pl.DataFrame, integer: bool = False) -> Panel:
    frame = pl.concat(frames)
    if integer:  # the days as integer steps
        frame = frame.with_columns((pl.col("t") - pl.lit(START)).dt.total_days())
    return Panel.from_frame(frame, target="y", time_col="t", id_col="id")


def target_times(panel: Panel, windows, lookback: int, horizon: int) -> tuple[pl.Series, ...]:
    """The first and last target time of each window."""
    start = windows.index["start"].to_numpy().astype(np.int64)
    return panel.time.gather(start + lookback), panel.time.gather(start + lookback + horizon - 1)


def test_a_date_panel_holds_out_the_steps_after_one_time():
    """b, a copy of a ending at day 450, held out its own last 100 days (350-450) while a
    trained up to day 399 on the same values: b's validation windows were a's training data.
    Now every series holds out the days after V = day 399 (a: 100, b: 51, c ending at day
    400: 1, too few for a window: it only trains)."""
    a, b, c = days("a", 0, 500), days("b", 0, 451), days("c", 0, 401)
    panel = panel_of(a, b, c)
    holdout = validation_holdout(100, panel, 7)
    assert holdout.tolist() == [100, 51, 1]
    model = RNNForecaster(target="y", time_col="t", id_col="id", lookback=14, horizon=7)
    model.set_params(validation_size=100)
    with pytest.warns(ForecasterWarning, match=r"1 of the 3 series .* no validation window"):
        train, val = training_windows(panel, model, holdout, 14)
    hold_out_time = START + dt.timedelta(399)
    assert target_times(panel, train, 14, 7)[1].max() <= hold_out_time  # no series trains after V
    assert target_times(panel, val, 14, 7)[0].min() > hold_out_time  # every one validates after V
    val_series = val.index["series"].to_numpy()
    assert np.bincount(val_series, minlength=3).tolist() == [94, 45, 0]
    b_val = target_times(panel, val.with_index(val.index.filter(pl.col("series") == 1)), 14, 7)
    assert b_val[0].min() == START + dt.timedelta(400)


def test_a_fraction_is_of_the_longest_series_on_a_date_panel():
    """b, a copy of a's last 300 days (both end at day 499): validation_size=0.1 held out 30
    days of b and 50 of a, so b trained on days 450-469, a's validation targets. Now both hold
    out the 50 days after day 449; equal lengths hold out what they did."""
    a, b = days("a", 0, 500), days("b", 200, 300)
    assert validation_holdout(0.1, panel_of(a, b), 7).tolist() == [50, 50]
    equal = panel_of(a, days("b", 0, 500))
    assert validation_holdout(0.1, equal, 7).tolist() == [50, 50]
    assert validation_holdout(0.01, equal, 7).tolist() == [7, 7]  # at least the horizon


@pytest.mark.parametrize("size", [0, 7, 30, 0.1, 0.25])
def test_integer_steps_hold_out_each_series_own_last_steps(size):
    """Integer steps (independent sequences) keep the per-series rule, staggered or not."""
    panel = panel_of(days("a", 0, 500), days("b", 0, 401), days("c", 100, 250), integer=True)
    expected = validation_steps(size, panel.lengths, 7)
    assert validation_holdout(size, panel, 7).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "frames",
    [
        lambda: [sine_panel(3, 160).rename({"date": "t"})],  # equal lengths
        lambda: [days("a", 0, 500), days("b", 200, 300), days("c", 450, 50)],  # ETT/M4-like
        lambda: [days("a", 0, 500)],  # one series
    ],
    ids=["sine", "staggered-starts", "single"],
)
@pytest.mark.parametrize("size", [0, 7, 48])
def test_series_that_end_together_hold_out_what_they_did(frames, size):
    """A panel whose series all end at the same time holds out the last ``size`` rows of each,
    as before (the same windows, hence bit-identical fits)."""
    panel = panel_of(*frames())
    expected = validation_steps(size, panel.lengths, 7)
    assert validation_holdout(size, panel, 7).tolist() == expected.tolist()


def test_a_backtest_span_holds_out_from_its_own_last_time():
    """``span``: the hold-out of a fit on rows start:stop of each series (an empty one: none)."""
    panel = panel_of(days("a", 0, 500), days("b", 0, 500), days("c", 0, 500))
    span = (np.array([0, 100, 0]), np.array([400, 350, 0]))  # ends: days 399, 349, none
    assert validation_holdout(20, panel, 7, span=span).tolist() == [20, 0, 0]
    assert validation_holdout(60, panel, 7, span=span).tolist() == [60, 10, 0]


def test_a_hold_out_without_any_validation_window_is_refused():
    """A hold-out that leaves no series a validation window (every series ends at or within
    the horizon after it) keeps rows from training and validates on nothing: refused."""
    panel = panel_of(days("a", 0, 500), days("b", 0, 401))
    model = RNNForecaster(target="y", time_col="t", id_col="id", lookback=14, horizon=7)
    with pytest.raises(DataValidationError, match="no series the fit trains on has a validation"):
        check_validated(panel, model, np.array([3, 0]), 14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_validated(panel, model, np.array([0, 0]), 14)  # no hold-out: nothing to say


def test_kept_series_recomputes_the_hold_out_without_the_series_left_out():
    """b (3 days) ends 100 days after a: with b the hold-out time V is day 149 and a holds out
    nothing; b has no room for a window and is left out, which moves V to day 49 (a holds out
    50 days). A lookback that a's 50 days before it cannot hold leaves nothing: each round's
    short series are shown to ``on_short`` before they are left out. A backtest span (only
    a's first 80 days) holds out from its own end."""
    panel = panel_of(days("a", 0, 100), days("b", 197, 3))
    assert validation_holdout(50, panel, 7).tolist() == [0, 50]
    keep, held = kept_series(50, panel, 14, 7)
    assert keep.tolist() == [True, False] and held.tolist() == [50, 0]
    rounds = []
    keep, held = kept_series(50, panel, 44, 7, on_short=lambda *r: rounds.append(r))
    assert not keep.any() and held.tolist() == [0, 0]
    assert [(k.tolist(), h.tolist(), s.tolist()) for k, h, s in rounds] == [
        ([True, True], [0, 50], [False, True]),
        ([True, False], [50, 0], [True, False]),
    ]
    span = (np.array([0, 0]), np.array([80, 0]))
    assert [a.tolist() for a in kept_series(50, panel, 14, 7, span=span)] == [
        [True, False],
        [50, 0],
    ]


def test_the_warning_of_series_without_validation_windows_says_which_rows_train():
    """b ends 4 days before a (validation_size=5, horizon 2): its one day after the hold-out
    time V is held out of training (training on it would bring back the leak) and has no
    validation window. The warning said "so all their rows train"; b trains on its 25 days
    up to V (21 + 21 training windows, not 22 for b)."""
    frame = pl.concat([days("a", 0, 30), days("b", 0, 26)])
    model = RNNForecaster(
        target="y",
        time_col="t",
        id_col="id",
        lookback=3,
        horizon=2,
        validation_size=5,
        max_epochs=1,
        hidden_size=4,
        baseline="none",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(frame)
    (message,) = [str(w.message) for w in caught if "no validation window" in str(w.message)]
    assert "all their rows train" not in message
    assert "their rows up to that time train, and those after it" in message
    assert "neither train nor validate: 'b'" in message
    assert model.n_train_windows_ == 21 + 21


def staircase(n: int) -> pl.DataFrame:
    """n series of 8 days ending one day apart (s0 last, on day 60), each one row short of a
    window (lookback 3, horizon 2) before the hold-out of validation_size=4 when it ends last,
    and z: 50 days to day 50. Each round of kept_series leaves out the series that ends last,
    which moves the hold-out time back one day: n rounds, then z alone."""
    return pl.concat([*(days(f"s{k}", 53 - k, 8) for k in range(n)), days("z", 1, 50)])


def one_holdout_per_round(size, panel, lookback, horizon, span=None):
    """kept_series as it was: one validation_holdout per round, and each round's arguments."""
    start, stop = (np.zeros_like(panel.lengths), panel.lengths) if span is None else span
    lengths, keep, rounds = stop - start, stop - start > 0, []
    while True:
        spans = (start, np.where(keep, stop, start))
        held = np.where(keep, validation_holdout(size, panel, horizon, span=spans), 0)
        short = keep & (lengths - held < lookback + horizon)
        if not short.any():
            return keep, held, rounds
        rounds.append((keep.copy(), held.copy(), short.copy()))
        keep = keep & ~short


def test_kept_series_reads_the_panel_once_however_many_rounds(monkeypatch):
    """A staircase leaves out one series per round. Each round asked validation_holdout (a
    gather and steps_behind over every series: quadratic, 46 s at 10,000 series); now the
    steps each series ends behind the others are counted once, and a round is NumPy only.
    The rounds, the series kept and the hold-out are the same."""
    from forecaster.estimators import sampling

    panel = panel_of(staircase(6))
    expected = one_holdout_per_round(4, panel, 3, 2)
    asked = []
    monkeypatch.setattr(
        sampling,
        "validation_holdout",
        lambda *a, **k: asked.append(1) or validation_holdout(*a, **k),
    )
    rounds = []
    keep, held = kept_series(4, panel, 3, 2, on_short=lambda *r: rounds.append(r))
    assert keep.tolist() == [False] * 6 + [True] and held.tolist() == [0] * 6 + [4]
    assert len(rounds) == 6 and [s.tolist().index(True) for _, _, s in rounds] == list(range(6))
    for (k, h, s), (k0, h0, s0) in zip(rounds, expected[2], strict=True):
        assert k.tolist() == k0.tolist() and h.tolist() == h0.tolist() and s.tolist() == s0.tolist()
    assert len(asked) == 0  # was 7 (one per round)


def random_panel(rng: np.random.Generator, kind: str) -> Panel:
    """Up to 12 series of random lengths and ends: days, month starts, month ends (or both),
    first or last business days of months, business days, or hours (some at half past: not
    on one grid)."""
    frames = []
    for k in range(int(rng.integers(1, 13))):
        n, end = int(rng.integers(1, 50)), int(rng.integers(0, 30))
        if kind == "days":
            times = days("x", end, n)["t"]
        elif kind == "bd":
            first = pl.select(pl.lit(START).dt.add_business_days(end)).item()
            times = pl.select(pl.lit(first).dt.add_business_days(pl.int_range(0, n))).to_series()
        elif kind == "hours":
            first = dt.datetime(2020, 1, 1, 0, 30 if rng.random() < 0.3 else 0)
            first += dt.timedelta(hours=end)
            times = pl.datetime_range(first, first + dt.timedelta(hours=n - 1), "1h", eager=True)
        elif kind in ("28ths", "30ths", "28ths and 30ths"):  # February 28 ends some of them
            day = int(rng.choice([28, 30])) if kind == "28ths and 30ths" else int(kind[:2])
            first = dt.date(2000 + end // 12, end % 12 + 1, day if end % 12 != 1 else 28)
            times = pl.date_range(first, dt.date(2030, 1, 1), "1mo", eager=True)[:n]
        else:
            first = dt.date(2000 + end // 12, end % 12 + 1, 1)
            times = pl.date_range(first, dt.date(2030, 1, 1), "1mo", eager=True)[:n]
            if kind == "month ends" or (kind == "mixed months" and rng.random() < 0.5):
                times = times.dt.month_end()
            if kind == "first business days":
                times = times.dt.add_business_days(0, roll="forward")
            elif kind == "last business days":
                times = times.dt.month_end().dt.add_business_days(0, roll="backward")
        frames.append(pl.DataFrame({"id": f"s{k:02d}", "t": times, "y": np.zeros(n)}))
    return Panel.from_frame(pl.concat(frames), target="y", time_col="t", id_col="id")


def test_kept_series_is_the_hold_out_of_each_round_on_random_panels():
    """Against one validation_holdout per round (the rule's definition), on 120 random
    panels and backtest spans: integer and fractional validation sizes, series on one grid
    (counted once) and not (hours at half past, mixed month days: asked each round)."""
    rng = np.random.default_rng(7)
    kinds = ["days", "month starts", "month ends", "mixed months", "bd", "hours"]
    check_kept_series_on_random_panels(rng, kinds, 120)


def check_kept_series_on_random_panels(rng: np.random.Generator, kinds: list, cases: int):
    """:func:`kept_series` against :func:`one_holdout_per_round` on ``cases`` random panels
    of ``kinds`` (:func:`random_panel`), with and without backtest spans."""
    for case in range(cases):
        panel = random_panel(rng, kinds[case % len(kinds)])
        horizon, lookback = int(rng.integers(1, 5)), int(rng.integers(1, 12))
        size = [int(rng.integers(horizon, 20)), float(rng.choice([0.1, 0.3, 0.5]))][case % 2]
        stop = rng.integers(0, panel.lengths + 1)
        for span in (None, (np.minimum(rng.integers(0, 4, panel.n_series), stop), stop)):
            rounds: list = []
            keep, held = kept_series(
                size,
                panel,
                lookback,
                horizon,
                span=span,
                on_short=lambda *r, rs=rounds: rs.append(r),
            )
            keep0, held0, rounds0 = one_holdout_per_round(size, panel, lookback, horizon, span)
            assert keep.tolist() == keep0.tolist() and held.tolist() == held0.tolist(), case
            assert [[a.tolist() for a in r] for r in rounds] == [
                [a.tolist() for a in r] for r in rounds0
            ], case


def test_a_fit_names_the_series_of_every_round_in_one_warning():
    """The fit of a staircase warned once per round ("Dropped 1 series ...", 10,000
    warnings at 10,000 series); now once, naming all of them."""
    model = RNNForecaster(
        target="y", time_col="t", id_col="id", lookback=3, horizon=2, validation_size=4,
        max_epochs=1, hidden_size=4, baseline="none",
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(staircase(6))
    dropped = [str(w.message) for w in caught if str(w.message).startswith("Dropped")]
    assert dropped == [
        "Dropped 6 series shorter than 5 rows (lookback + horizon before the panel's "
        "validation hold-out time): 's0', 's1', 's2', 's3', 's4', 's5'."
    ]
    assert model.keys_["id"].to_list() == ["z"]


def test_kept_series_counts_a_february_28_among_28ths_on_their_grid():
    """Series on the 28th of each month, one ending on February 28 (2023, a month-end). The
    shortcut once gave s0 no hold-out, while the rule (then stepping a month-end from that
    February 28, as if the series were of month-ends) held out its last row; the rule now
    reads each series' day of the month from all its rows (the 28th), so February 28 is on
    the 28ths' grid and the shortcut and the rule agree (s0 one month before February 28,
    the hold-out time once the short series ending last, April 28, is left out)."""
    month_28ths = [("s0", "2022-06-28", 8), ("s1", "2022-05-28", 10), ("s2", "2023-02-28", 3)]
    frame = pl.concat(
        pl.DataFrame({"id": name, "y": np.zeros(n)}).with_columns(
            t=pl.date_range(
                pl.lit(first).str.to_date(), pl.lit("2030-01-28").str.to_date(), "1mo"
            ).head(n)
        )
        for name, first, n in month_28ths
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", freq="1mo")
    keep, held = kept_series(2, panel, 1, 1)
    keep0, held0, _ = one_holdout_per_round(2, panel, 1, 1)
    assert keep.tolist() == keep0.tolist() == [True, True, False]
    assert held.tolist() == held0.tolist() == [1, 2, 0]  # was [0, 2, 0]


def test_a_series_on_the_28th_ending_on_february_28_steps_on_the_28th():
    """s1 is on the 28th of each month and ends on February 28 (2023), s2 on April 28: the
    hold-out time of validation_size=2 is February 28, so s1 holds out nothing. The rule read
    s1's day of the month from its last time only, a month-end, and stepped it on month-ends
    (March 31, then April 30 after April 28): one step behind, holding out one row (that
    trains in no fit and validates in none). Now read from all its rows, as steps_behind
    and the forecast's times do: two steps behind."""
    first = dt.date(2022, 5, 28)
    frame = pl.concat(
        pl.DataFrame({"id": sid, "t": pl.date_range(first, last, "1mo", eager=True)})
        for sid, last in (("s1", dt.date(2023, 2, 28)), ("s2", dt.date(2023, 4, 28)))
    ).with_columns(y=pl.lit(0.0))
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id", freq="1mo")
    behind = steps_behind(panel.time, panel.offsets, panel.freq, dt.date(2023, 4, 28))
    assert behind.tolist() == [2, 0]
    assert validation_holdout(2, panel, 1).tolist() == [0, 2]  # was [1, 2]
    assert validation_holdout(3, panel, 1).tolist() == [1, 3]  # was [2, 3]
    assert [a.tolist() for a in kept_series(2, panel, 1, 1)] == [[True, True], [0, 2]]


def test_kept_series_is_the_hold_out_of_each_round_on_the_28th_and_30th():
    """Random panels of series on the 28th or the 30th of each month, some ending on a
    February 28: the one-grid shortcut and the rule of each round agree."""
    check_kept_series_on_random_panels(
        np.random.default_rng(11), ["28ths", "30ths", "28ths and 30ths"], 45
    )


def test_first_and_last_business_days_of_months_end_on_one_grid():
    """The one-grid shortcut was never taken for first or last business days of months (their
    anchor days, 0 and 32, are no day of a month, so no end was "on" them): each round of
    kept_series counted the steps behind again. They are on one grid where each series ends
    on its month's first (last) weekday, not where a holiday pushed a first business day
    later (2023-01-04); on random panels the shortcut and the rule of each round agree."""
    month = Frequency(1, "mo")
    firsts = pl.Series([dt.date(2023, 1, 2), dt.date(2023, 4, 3), dt.date(2022, 10, 3)])
    assert ends_on_one_grid(firsts, month, np.full(3, FIRST_BUSINESS_DAY))
    lasts = pl.Series([dt.date(2023, 3, 31), dt.date(2023, 4, 28), dt.date(2023, 9, 29)])
    assert ends_on_one_grid(lasts, month, np.full(3, LAST_BUSINESS_DAY))
    assert ends_on_one_grid(lasts[::2], Frequency(1, "q"), np.full(2, LAST_BUSINESS_DAY))
    pushed = pl.Series([dt.date(2023, 1, 4), dt.date(2023, 2, 1)])
    assert not ends_on_one_grid(pushed, month, np.full(2, FIRST_BUSINESS_DAY))
    assert not ends_on_one_grid(lasts, month, np.full(3, FIRST_BUSINESS_DAY))
    check_kept_series_on_random_panels(
        np.random.default_rng(5), ["first business days", "last business days"], 40
    )

"""Warnings of forecaster point at the user's line (``warn_at_caller``); the summaries of a
call's repeated fits (``collect_warnings``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from conftest import TINY_DAILY_MODEL, sine_panel

from forecaster import RNNForecaster
from forecaster.exceptions import (
    BaselineWarning,
    CalendarFoldsWarning,
    CrossSeriesWarning,
    ForecasterWarning,
    InSampleWarning,
    NoResidualsWarning,
    StaleSeriesWarning,
    collect_warnings,
    each_warning_once,
    silenced,
    warn_at_caller,
    warnings_unit,
)
from forecaster.training import distributed

KW = TINY_DAILY_MODEL


def _short_panel() -> pl.DataFrame:
    return pl.concat([sine_panel(2, 120), sine_panel(1, 5).with_columns(id=pl.lit("tiny"))])


def _short_fit() -> None:
    RNNForecaster(**KW).fit(_short_panel())


def _short_predict() -> None:
    model = RNNForecaster(**KW).fit(sine_panel(2, 120))
    model.predict(_short_panel())


def _filled_fit() -> None:
    gappy = sine_panel(2, 120).filter(pl.col("date").dt.day() % 3 != 0)
    RNNForecaster(**KW, missing="ffill").fit(gappy)


def _leading_nulls_fit() -> None:
    frame = sine_panel(2, 120)
    y = pl.when(pl.col("date") < dt.date(2020, 1, 5)).then(None).otherwise(pl.col("y"))
    RNNForecaster(**KW, missing="ffill").fit(frame.with_columns(y=y))


def _backtest_short_series() -> None:
    frame = sine_panel(3, 120)
    model = RNNForecaster(**KW).fit(frame)
    shortish = pl.concat([frame, sine_panel(1, 14).with_columns(id=pl.lit("short"))])
    model.backtest(shortish, folds=3, refit=False)


def _backtest_flat_series() -> None:
    frame = sine_panel(3, 120)
    model = RNNForecaster(**KW).fit(frame)
    flat = frame.with_columns(y=pl.when(pl.col("id") == "s2").then(1.0).otherwise(pl.col("y")))
    model.backtest(flat, folds=2, refit=False)


def _unseen_static() -> None:
    frame = sine_panel(3, 120).with_columns(grp=pl.col("id"))
    model = RNNForecaster(**KW, static_covariates="grp").fit(frame)
    new = sine_panel(1, 120).with_columns(id=pl.lit("new"), grp=pl.lit("new"))
    model.predict(pl.concat([frame, new]))


def _stray_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed, "_STRAY_WARNED", set())
    RNNForecaster(**KW).fit(sine_panel(2, 120))


CASES: dict[str, tuple[Callable[..., None], str]] = {
    "short series at fit": (_short_fit, "shorter than"),
    "short series at predict": (_short_predict, "shorter than"),
    "fill share too high": (_filled_fit, "made up"),
    "leading rows dropped": (_leading_nulls_fit, "leading"),
    "backtest leaves series out": (_backtest_short_series, "Left out"),
    "MASE infinite": (_backtest_flat_series, "MASE"),
    "unseen static category": (_unseen_static, "grp"),
    "stray RANK": (_stray_rank, "RANK=1"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_warnings_point_at_the_users_line(case, monkeypatch):
    """A ForecasterWarning raised deep inside fit, predict or backtest is attributed to the
    test's own line (the fixed stacklevels pointed inside the package: data/validate.py,
    estimators/targets.py, backtest.py, distributed.py)."""
    action, text = CASES[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if case == "stray RANK":
            action(monkeypatch)
        else:
            action()
    ours = [w for w in caught if issubclass(w.category, ForecasterWarning)]
    matching = [w for w in ours if text in str(w.message)]
    assert matching, [str(w.message) for w in ours]
    assert {w.filename for w in ours} == {__file__}, [(w.filename, w.lineno) for w in ours]


def _waited(event: threading.Event) -> None:
    assert event.wait(timeout=30), "the other thread did not get there"


def test_a_summary_block_holds_no_warning_of_another_thread():
    """Another thread's ForecasterWarning, raised while this thread runs a unit, is shown in
    that thread as it comes: the block's process-wide ``showwarning`` held it for this
    thread's summary ("In 1 of 2 backtest folds (fold 0): series 's9' ...")."""
    in_unit, warned = threading.Event(), threading.Event()

    def backtest_like() -> None:
        with collect_warnings("backtest", "fold"):
            for fold in range(2):
                with warnings_unit(fold):
                    in_unit.set()
                    _waited(warned)

    def other() -> None:
        _waited(in_unit)
        warn_at_caller("series 's9' dropped (too short)", ForecasterWarning)
        warned.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=backtest_like), threading.Thread(target=other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [str(w.message) for w in caught] == ["series 's9' dropped (too short)"]


def test_blocks_of_two_threads_leave_the_warning_filters_and_showwarning_as_they_were():
    """Two threads' blocks that overlap (one enters, the other enters, the first leaves,
    then the second) leave no filter and no ``showwarning`` behind: they left the first's
    ``"always"`` filter and its ``show``, so every later warning repeated."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with collect_warnings("backtest", "fold"):
            a_in.set()
            _waited(b_in)
        a_out.set()

    def second() -> None:
        _waited(a_in)
        with collect_warnings("backtest", "fold"):
            b_in.set()
            _waited(a_out)

    with warnings.catch_warnings():
        filters, show = list(warnings.filters), warnings.showwarning
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert warnings.filters == filters
        assert warnings.showwarning is show


def test_an_exception_leaving_a_block_is_not_replaced_by_a_summary_made_an_error():
    """A fold's exception propagates although a filter turns the summary warned on the way
    out into an error (that error replaced it); the summary is in the exception's notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("error", message="In ", category=BaselineWarning)
        raised = pytest.raises(ValueError, match="the fold's own error")
        with raised as error, collect_warnings("backtest", "fold"):
            for fold in range(2):
                with warnings_unit(fold):
                    warn_at_caller("worse than naive", BaselineWarning)
                    warn_at_caller("3 rows filled", ForecasterWarning)
                    if fold == 1:
                        raise ValueError("the fold's own error")
    notes = "\n".join(getattr(error.value, "__notes__", []))
    assert "In 2 of 2 backtest folds (folds 0, 1): worse than naive" in notes
    # the other summary is warned as it was
    assert [str(w.message) for w in caught] == [
        "In 2 of 2 backtest folds (folds 0, 1): 3 rows filled"
    ]


def test_a_filter_entry_holding_plain_strings_is_matched_as_python_matches_it():
    """Python compares a filter's message or module given as a plain string (not a compiled
    pattern) for equality; the check at raise time called .match on it (AttributeError)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filters.insert(0, ("ignore", None, ForecasterWarning, __name__, 0))
        with collect_warnings("backtest", "fold"):
            for fold in range(2):
                with warnings_unit(fold):
                    warn_at_caller("3 rows left out", ForecasterWarning)
    assert caught == []


def test_silenced_drops_its_kind_in_its_own_thread_only():
    """A ``silenced`` block drops the package's warnings of its kind (and only those whose
    message matches its pattern) in its own thread; another thread's warning of that kind,
    raised meanwhile, is shown. The ``catch_warnings`` + ``"ignore"`` it replaces dropped every
    thread's."""
    in_block, warned = threading.Event(), threading.Event()

    def quiet() -> None:
        with silenced(ForecasterWarning, r"^\d+ series end"):
            warn_at_caller("3 series end before the frame's last time", ForecasterWarning)
            warn_at_caller("kept: 3 series end", ForecasterWarning)
            with silenced(InSampleWarning):
                warn_at_caller("origins inside the training data", InSampleWarning)
                warn_at_caller("a ForecasterWarning of another kind", BaselineWarning)
            in_block.set()
            _waited(warned)

    def other() -> None:
        _waited(in_block)
        warn_at_caller("2 series end before the frame's last time", ForecasterWarning)
        warned.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=quiet), threading.Thread(target=other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        warn_at_caller("after the block", InSampleWarning)
    assert sorted(str(w.message) for w in caught) == [
        "2 series end before the frame's last time",
        "a ForecasterWarning of another kind",
        "after the block",
        "kept: 3 series end",
    ]


def test_silenced_takes_only_forecaster_warning_classes():
    with pytest.raises(TypeError, match="ForecasterWarning class"), silenced(UserWarning):  # type: ignore[arg-type]
        pass


def test_each_warning_once_tells_a_fact_once_and_a_different_one_too():
    """A pipeline run fits the data again (calibration and backtest clones), and each fit
    repeated its warnings with other dates and counts (the validation hold-out warning twice,
    the calendar folds' "Left out" three times in one log). Inside each_warning_once, a
    warning of the same class and message but for its numbers is told once, also when it
    comes again as the first message of a backtest's summary; one naming other series, or of
    another class, is told; outside the block, everything is told again."""

    def hold_out(end: str, ids: str) -> str:
        return f"1 of the 3 series have no validation window after {end}: {ids}"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with each_warning_once():
            warn_at_caller(hold_out("2024-02-23", "'b'"), ForecasterWarning)
            warn_at_caller(hold_out("2024-02-10", "'b'"), ForecasterWarning)  # another fit
            with collect_warnings("backtest", "fit", key="at fold"):
                for fold, ids in enumerate(["'b'", "'b'", "'c'"]):
                    with warnings_unit(fold):
                        warn_at_caller(hold_out(f"2024-01-0{fold + 1}", ids), ForecasterWarning)
            with each_warning_once():  # an inner block shares the record
                warn_at_caller(hold_out("2024-01-20", "'b'"), ForecasterWarning)
            warn_at_caller(hold_out("2024-02-23", "'b'"), BaselineWarning)  # another class
            warn_at_caller("not ours", UserWarning)
            warn_at_caller("not ours", UserWarning)
        warn_at_caller(hold_out("2024-02-23", "'b'"), ForecasterWarning)
    assert [(w.category, str(w.message)) for w in caught] == [
        (ForecasterWarning, hold_out("2024-02-23", "'b'")),
        (
            ForecasterWarning,
            "In 1 of 3 backtest fits (at fold 2): " + hold_out("2024-01-03", "'c'"),
        ),
        (BaselineWarning, hold_out("2024-02-23", "'b'")),
        (UserWarning, "not ours"),
        (UserWarning, "not ours"),
        (ForecasterWarning, hold_out("2024-02-23", "'b'")),
    ]


def test_each_warning_once_holds_its_own_threads_record_as_documented():
    """The documented thread rule of each_warning_once (it was said "in this thread" only):
    a thread started in the block (a pool's, Optuna's ``n_jobs``) starts outside it and
    tells every copy, telling the block nothing; a thread run in a copy of the block's
    context (``asyncio.to_thread``) shares its record."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    def fact(n: int) -> None:
        warn_at_caller(f"{n} rows made up", ForecasterWarning)

    with warnings.catch_warnings(record=True) as caught, each_warning_once():
        warnings.simplefilter("always")
        with ThreadPoolExecutor(1) as pool:  # one after another: no race
            list(pool.map(fact, [1, 2]))
        fact(3)  # the block's own: told, the pool's told it nothing
        with ThreadPoolExecutor(1) as pool:
            pool.submit(contextvars.copy_context().run, fact, 4).result()  # shared: dropped
    assert [str(w.message) for w in caught] == [
        "1 rows made up",
        "2 rows made up",
        "3 rows made up",
    ]


@pytest.mark.parametrize(
    "category", [StaleSeriesWarning, CalendarFoldsWarning, CrossSeriesWarning, NoResidualsWarning]
)
def test_the_warning_classes_are_forecaster_warnings_that_silenced_drops_by_class(category):
    """The pipelines dropped these warnings by a regular expression of their message, which
    a rewording broke without a word: each has its class, a ForecasterWarning (a user's
    filter on it keeps working), and silenced() drops it by the class alone."""
    assert issubclass(category, ForecasterWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with silenced(category):
            warn_at_caller("any wording at all", category)
            warn_at_caller("another kind", ForecasterWarning)
    assert [str(w.message) for w in caught] == ["another kind"]


@pytest.mark.parametrize(
    ("first", "second"),
    [("'s1'", "'s2'"), ("'7203'", "'9984'"), ("[7203]", "[9984]"), ("store_1", "store_2")],
)
def test_each_warning_once_tells_series_named_by_numbers(first, second):
    """each_warning_once masked every number of a message, the digits of a series' id too:
    a warning about series 's2' (or the ticker '7203', or integer ids) was dropped after the
    same warning about 's1', though it names another series. Dates and counts are still
    masked: the same series with another date is told once."""

    def stale(ids: str, end: str) -> str:
        return f"1 series end before the frame's last time ({end}): {ids} (last time {end})"

    with warnings.catch_warnings(record=True) as caught, each_warning_once():
        warnings.simplefilter("always")
        warn_at_caller(stale(first, "2024-01-31"), StaleSeriesWarning)
        warn_at_caller(stale(first, "2024-02-29T00:00:00"), StaleSeriesWarning)  # same fact
        warn_at_caller(stale(second, "2024-01-31"), StaleSeriesWarning)
    assert [str(w.message) for w in caught] == [
        stale(first, "2024-01-31"),
        stale(second, "2024-01-31"),
    ]


def test_a_warning_hidden_by_an_ignore_filter_is_not_counted_as_told():
    """In an each_warning_once block a fact first raised under an "ignore" filter (hidden)
    was recorded as told, so its next copy, where nothing hides it, was dropped too: the
    user never saw it."""
    with warnings.catch_warnings(record=True) as caught, each_warning_once():
        warnings.simplefilter("always")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warn_at_caller("'x' ends 1", ForecasterWarning)
        warn_at_caller("'x' ends 2", ForecasterWarning)
        warn_at_caller("'x' ends 3", ForecasterWarning)  # told now: dropped
    assert [str(w.message) for w in caught] == ["'x' ends 2"]


def test_a_warning_raised_by_an_error_filter_is_raised_again_in_each_warning_once():
    """Under an "error" filter each copy of a fact is raised, as without the block: the
    block counted the first (raised, caught e.g. by a tuning trial) as told and dropped
    the next ones, so the later trials ran on as if no filter said "error"."""
    raised = 0
    with warnings.catch_warnings(), each_warning_once():
        warnings.simplefilter("error", ForecasterWarning)
        for _ in range(3):
            with contextlib.suppress(ForecasterWarning):
                warn_at_caller("'x' is short", ForecasterWarning)
                continue
            raised += 1
    assert raised == 3  # was 1


def test_warning_classes_live_in_their_public_module():
    # Pickles, reprs and the traceback of a warning turned error name the class's module: it
    # stays forecaster.exceptions (was forecaster._warning_scopes after the split), and the
    # -W option's spelling error::forecaster.exceptions.X reaches the same class.
    import pickle
    import subprocess
    import sys

    import forecaster.exceptions as public

    for name in public.__all__:
        kind = getattr(public, name)
        if isinstance(kind, type) and issubclass(kind, Warning):
            assert kind.__module__ == "forecaster.exceptions", name
    text = pickle.dumps(StaleSeriesWarning("'b' ends early"))
    assert b"_warning_scopes" not in text
    assert type(pickle.loads(text)) is StaleSeriesWarning
    code = "import warnings, forecaster.exceptions as e; warnings.warn('x', e.StaleSeriesWarning)"
    flag = "error::forecaster.exceptions.StaleSeriesWarning"
    # -W is read before an editable install's import hook works: the package on the path
    # (as a wheel installs it) makes forecaster.exceptions importable at that point
    root = str(Path(public.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-W", flag, "-c", code], capture_output=True, text=True, check=False,
        env=env,
    )  # fmt: skip
    assert "Invalid -W option" not in run.stderr
    assert "forecaster.exceptions.StaleSeriesWarning: x" in run.stderr


def _summaries(messages: dict[int | str, str]) -> list[str]:
    """The summaries of a tuning-like block whose units warn ``messages`` (unit -> text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with collect_warnings("tuning", "trial"):
            for unit, text in messages.items():
                with warnings_unit(unit):
                    warn_at_caller(text, BaselineWarning)
    return [str(w.message) for w in caught]


def test_a_summary_naming_the_refit_gives_the_refits_own_numbers():
    """tune()'s summary "In 4 of 4 tuning trials ... and the refit of the best trial: ...
    network weight 0" gave the first trial's numbers, false of the returned model (its weight
    was 0.5). The refit's own message is given now, and the trials' differing numbers said."""
    trials = {n: f"error 1.{n}x, network weight 0" for n in range(4)}
    refit = "the refit of the best trial"
    assert _summaries({**trials, refit: "error 1.7x, network weight 0.5"}) == [
        "In 4 of 4 tuning trials (trials 0, 1, 2, 3; their numbers not shown) and the refit of "
        "the best trial (the numbers below are its own): error 1.7x, network weight 0.5"
    ]
    same = {n: "error 1.5x, network weight 0" for n in range(2)}
    assert _summaries({**same, refit: "error 1.5x, network weight 0"}) == [
        "In 2 of 2 tuning trials (trials 0, 1) and the refit of the best trial: "
        "error 1.5x, network weight 0"
    ]

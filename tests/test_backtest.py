"""The batched backtest's scoring (forecaster/evaluation/fold_scores.py and the points of
forecaster/evaluation/folds.py): the scores by fold and series are grouped on each (fold,
series) block's number, and must be those of a group-by on the key columns themselves."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from conftest import (
    GAPPY_MODEL,
    STAGGERED_MODEL,
    forecaster_warning_kinds,
    gappy_panel,
    repeated_calls_script,
    staggered_copies,
    stderr_under_default_warnings,
    tree_digest,
)
from polars.testing import assert_frame_equal

from forecaster import RNNForecaster
from forecaster.data import Panel
from forecaster.evaluation.backtest import backtest
from forecaster.evaluation.folds import first_fit_lookback, fold_points
from forecaster.evaluation.metrics import PointColumns
from forecaster.evaluation.pooling import aggregate as pool_scores
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    InSampleWarning,
    TooFewRowsError,
    UnscoredPointsWarning,
)

TINY = {
    "lookback": 24,
    "horizon": 6,
    "hidden_size": 8,
    "segment_length": 6,
    "max_epochs": 1,
    "windows_per_epoch": 64,
    "batch_size": 32,
    "random_state": 0,
    "progress": False,
}


def _frame(n_series: int = 4, n: int = 120, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start, hour = dt.datetime(2024, 1, 1), dt.timedelta(hours=1)
    t = np.arange(n)
    return pl.concat(
        pl.DataFrame(
            {
                "id": f"s{k}",
                "time": [start + i * hour for i in range(n)],
                "y": 10.0 * (k + 1) + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n),
                "z": 5.0 + np.cos(2 * np.pi * t / 12) + rng.normal(0, 0.3, n),
            }
        )
        for k in range(n_series)
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return _frame()


def test_scores_by_fold_and_series_are_those_of_a_group_by_on_the_keys(frame):
    result = backtest(RNNForecaster(target="y", id_col="id", **TINY), frame, folds=5, m=24)
    keys = ["fold", "cutoff", "id"]
    assert_frame_equal(result.metrics, result.score(keys), check_exact=True)
    assert result.metrics.select(keys).equals(result.folds.select(keys))
    baselines = result.baselines.filter(pl.col("baseline") == "naive").drop("baseline")
    assert baselines.select(*keys, "target", "n").equals(
        result.metrics.select(*keys, "target", "n")
    )


def test_a_backtest_scores_each_point_once_for_its_three_key_sets(frame, monkeypatch):
    """The scores by fold and series, by step and overall computed every point's scores
    (errors, ratios) three times, once per group-by: once now, the same frames bit for bit
    as a group-by of each key set (``score``)."""
    from forecaster.evaluation import frames

    model = RNNForecaster(target="y", id_col="id", **TINY).fit(
        frame.filter(pl.col("time") < dt.datetime(2024, 1, 4))
    )
    forecasts: list[int] = []
    real = frames._point_scores

    def point_scores(*args):
        forecasts.append(1)
        return real(*args)

    monkeypatch.setattr(frames, "_point_scores", point_scores)
    result = backtest(model, frame, folds=3, m=24)
    assert len(forecasts) == 3  # the model's, the naive's and the seasonal naive's, once each
    for scores, by in ((result.metrics, ["fold", "cutoff", "id"]), (result.by_step, "step"),
                       (result.aggregate, [])):  # fmt: skip
        assert_frame_equal(scores, result.score(by), check_exact=True)


def test_several_targets_without_an_id_column():
    frame = _frame(n_series=1).drop("id")
    model = RNNForecaster(target=["y", "z"], **TINY)
    result = backtest(model, frame, folds=4, step=3)
    assert result.metrics.columns[:4] == ["fold", "cutoff", "target", "n"]
    assert result.metrics["target"].to_list() == ["y"] * 4 + ["z"] * 4
    assert_frame_equal(result.metrics, result.score(["fold", "cutoff"]), check_exact=True)
    # each block's MAE is the mean absolute error of its own 6 rows
    forecasts = result.forecasts
    for j, target in enumerate(["y", "z"]):
        errors = (forecasts[target].cast(pl.Float64) - forecasts[f"{target}_actual"]).abs()
        expected = errors.to_numpy().reshape(4, 6).mean(axis=1)
        np.testing.assert_array_equal(result.metrics["mae"].to_numpy()[4 * j : 4 * j + 4], expected)


def test_a_target_named_like_the_block_column_is_scored(frame):
    renamed = frame.rename({"y": "__block__"})
    result = backtest(RNNForecaster(target="__block__", id_col="id", **TINY), renamed, folds=3)
    assert "__block__" in result.forecasts.columns
    assert result.metrics["target"].unique().to_list() == ["__block__"]
    assert_frame_equal(result.metrics, result.score(["fold", "cutoff", "id"]), check_exact=True)


def test_fold_points_number_the_blocks_and_repeat_their_scales():
    horizon, pairs = 3, 4
    forecasts = pl.DataFrame(
        {
            "fold": np.repeat([0, 0, 1, 1], horizon).astype(np.int32),
            "id": np.tile(np.repeat(["a", "b"], horizon), 2),
            "step": np.tile(np.arange(1, horizon + 1), pairs),
            "y": np.arange(12, dtype=np.float32),
            "y_actual": np.ones(12, dtype=np.float32),
            "z": np.zeros(12, dtype=np.float32),
            "z_actual": np.ones(12, dtype=np.float32),
        }
    )
    columns = PointColumns.avoiding(forecasts.columns)
    scales = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    points = fold_points(
        forecasts, ["fold", "step"], ["y", "z"], "id", "id", columns, scales, None, block="b"
    )
    assert points.height == 24
    assert points["b"].to_list() == list(np.repeat(np.arange(8), horizon))
    assert points[columns.mase_scale].to_list() == list(np.repeat(scales.T.ravel(), horizon))
    assert points["target"].to_list() == ["y"] * 12 + ["z"] * 12
    assert "b" not in fold_points(forecasts, ["fold"], ["y"], "id", "id", columns, scales, None)


def _daily_panel(lengths: list[int]) -> pl.DataFrame:
    """Daily series of the given lengths that all end on 2024-06-30 (a weekly shape)."""
    end, parts = dt.date(2024, 6, 30), []
    for k, n in enumerate(lengths):
        t = pl.date_range(end - dt.timedelta(days=n - 1), end, "1d", eager=True)
        noise = np.random.default_rng(k).normal(0, 0.2, n)
        y = 20.0 + k + 3 * np.sin(2 * np.pi * (np.arange(n) % 7) / 7) + noise
        parts.append(pl.DataFrame({"id": f"s{k}", "t": t, "y": y}))
    return pl.concat(parts)


AUTO = {**TINY, "lookback": "auto", "horizon": 7, "segment_length": 7}


def test_auto_lookback_folds_are_placed_for_the_series_the_fits_keep():
    """The series long enough for the folds depend on the lookback, and lookback="auto"
    depends on the series: the placement settles both, so that every kept origin has the
    window its fold's model chose (it crashed in polars when the first fit's lookback was
    read from series the folds then left out)."""
    frame = _daily_panel([45, 45, 80, 535, 535])
    model = RNNForecaster(target="y", time_col="t", id_col="id", **AUTO)
    with pytest.warns(UserWarning, match="Left out 3 series"):
        result = backtest(model, frame, folds=5)
    assert result.folds["id"].unique().sort().to_list() == ["s3", "s4"]
    assert result.forecasts.height == 5 * 2 * 7
    assert all(m.lookback_ == result.estimators[0].lookback_ for m in result.estimators)


SHORT = {**TINY, "lookback": 8, "horizon": 4, "segment_length": 4, "validation_size": 0}


ONE_MODEL = r"The backtest's model, fitted once .* used for all 2 folds, was not fitted on "
SEVERAL = r"The models of 1 of the 2 folds were not fitted on "


@pytest.mark.parametrize(
    ("refit", "trained", "opening"),
    [(False, [False, False], ONE_MODEL), (True, [False, True], SEVERAL)],
)
def test_a_series_its_fold_model_was_not_fitted_on_shows_no_training_span(refit, trained, opening):
    """s2 has 10 rows in fold 0's training span and one window takes 12: fold 0's fit left it
    out, yet result.folds showed it trained on (train_rows=10, train_start/train_end set),
    and it was scored as a trained series without a word. With refit=False the warning
    spoke of "the models of 2 of the 2 folds" (one model serves them) and advised "or
    refit=True" with refit=True too."""
    frame = _daily_panel([60, 40, 18])
    model = RNNForecaster(target="y", time_col="t", id_col="id", baseline="none", **SHORT)
    with pytest.warns(ForecasterWarning, match=opening + r"1 of the 3 series \(e.g. \['s2'\]") as w:
        result = backtest(model, frame, folds=2, refit=refit)
    (message,) = [str(x.message) for x in w if "not fitted on" in str(x.message)]
    assert ("new to the model" in message) == (not refit)
    assert ("refit=True" in message) == (not refit)  # advised where a model serves 2 folds
    assert result.estimators[0].keys_["id"].to_list() == ["s0", "s1"]
    short = result.folds.filter(pl.col("id") == "s2").sort("fold")
    for column in ("train_start", "train_end", "train_rows"):
        assert short[column].is_not_null().to_list() == trained
    if refit:  # fold 1's model trained on its 14 rows
        assert short["train_rows"][1] == 14 and "s2" in result.estimators[1].keys_["id"]
    others = result.folds.filter(pl.col("id") != "s2")
    assert others["train_rows"].is_not_null().all()
    # forecast as a series new to the model (as predict does it) and scored so
    pairs = short.filter(pl.col("fold") == 0).select("id", pl.col("cutoff").alias("t"))
    own = result.estimators[0].predict(frame, cutoff=pairs)
    got = result.forecasts.filter((pl.col("fold") == 0) & (pl.col("id") == "s2"))
    # the same bits whatever the batch the window runs in (the backtest's six origins here,
    # one there: unrolled.row_copies)
    assert got["y"].equals(own["y"])
    assert result.metrics.filter(pl.col("id") == "s2")["n"].to_list() == [4, 4]


class _LeavesOutAnOrigin(RNNForecaster):
    """A forecaster whose forecasts miss the last (series, origin) pair, as ``predict`` does
    for an origin with fewer rows than the model's window."""

    def predict(self, frame, **kwargs):
        out = super().predict(frame, **kwargs)
        return out.head(out.height - int(self.horizon))


def test_a_fold_model_that_leaves_origins_out_is_refused_clearly(frame):
    model = _LeavesOutAnOrigin(target="y", id_col="id", **TINY)
    with pytest.raises(DataValidationError, match=r"forecasts 11 of its 12 \(series, origin\)"):
        backtest(model, frame, folds=3)


@pytest.mark.parametrize("freq", ["auto", " Auto", None])
def test_fold_models_read_the_frames_frequency_not_one_inferred_from_their_rows(freq):
    """An early stretch logged every other day, then daily: the frame's step is a day, and a
    fold's training rows alone look like two-day steps off their grid; the fold models keep
    the frame's step (they were refused as "off the regular 2d grid")."""
    first = pl.date_range(dt.date(2020, 1, 1), dt.date(2021, 8, 22), "2d", eager=True)
    then = pl.date_range(dt.date(2021, 8, 24), dt.date(2022, 9, 27), "1d", eager=True)
    t = pl.concat([first, then])
    y = 10 + 2 * np.sin(2 * np.pi * np.arange(len(t)) / 7)
    frame = pl.DataFrame({"t": t, "y": y})
    model = RNNForecaster(
        target="y", time_col="t", missing="ffill", freq=freq, **AUTO | {"lookback": 14}
    )
    result = backtest(model, frame, folds=3, step=60, refit=True)
    assert [str(m.freq_) for m in result.estimators] == ["1d"] * 3
    assert result.forecasts.height == 3 * 7
    assert model.get_params()["freq"] == freq  # the given estimator is not changed


@pytest.mark.parametrize("call", ["backtest", "calibrate"])
def test_refitted_folds_leave_the_models_checkpoint_folder_as_it_was(tmp_path, call):
    """A fold's clone fitted into the model's ``checkpoint_dir`` replaced the checkpoint of
    the user's own fit (a fresh fit replaces its folder's checkpoints): backtest and
    calibrate with refit=True fit their clones without checkpoints."""
    folder = tmp_path / "checkpoints"
    model = RNNForecaster(
        target="y", id_col="id", checkpoint_dir=str(folder), checkpoint_every=2, **TINY
    )
    frame = _frame(n_series=2)
    model.fit(frame)
    before = tree_digest(folder)
    assert before  # the fit's own checkpoint
    if call == "backtest":
        result = backtest(model, frame, folds=2, step=6, refit=True)
        assert len(result.estimators) == 2
    else:
        model.calibrate(frame, folds=2, step=6, refit=True)
    assert tree_digest(folder) == before
    assert model.get_params()["checkpoint_dir"] == str(folder)


class _ShorterWithoutShortSeries:
    """A stand-in whose lookback is 90 on every series and 50 once a short one is left out."""

    horizon = 7

    def lookback_for(self, panel, span):
        start, stop = span
        return 90 if ((stop - start) > self.horizon).all() else 50


def test_first_fit_lookback_returns_the_lookback_its_kept_series_agree_with():
    frame = pl.concat(
        pl.DataFrame({"id": k, "t": np.arange(n), "y": np.ones(n)})
        for k, n in (("a", 40), ("b", 60), ("c", 200))
    )
    panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    estimator = _ShorterWithoutShortSeries()
    # all series: 90, which keeps c only; then 50, which keeps b and c, and agrees with them
    assert first_fit_lookback(panel, estimator, folds=1, step=1, gap=0, train_size=None) == 50


def _gapped(shift: float) -> pl.DataFrame:
    """Two series of 120 hourly rows; row 55 (a fold's origin below) of s0 missing, and its
    next row, the fold's first target, moved by ``shift``."""
    frame = _frame(n_series=2).with_columns(pl.col("y").cast(pl.Float64))
    row = pl.int_range(pl.len()).over("id")
    first = (pl.col("id") == "s0") & (row == 56)
    return frame.with_columns(
        pl.when((pl.col("id") == "s0") & (row == 55))
        .then(None)
        .otherwise(pl.col("y") + pl.when(first).then(shift).otherwise(0.0))
        .alias("y")
    )


def test_interpolated_gaps_at_an_origin_do_not_leak_the_first_target():
    """With missing="interpolate", an origin inside a gap sees the gap filled forward: the
    model's forecasts, the naive and seasonal-naive baselines and the MASE scales of that fold
    are those of the data as known at the origin, whatever the first value after it is."""
    results = []
    for shift in (0.0, 100.0):
        model = RNNForecaster(
            target="y", id_col="id", missing="interpolate", baseline="none", **TINY
        )
        results.append(backtest(model, _gapped(shift), folds=30, step=2, m=24, refit=False))
    before, after = (r.forecasts.filter(pl.col("fold") == 0) for r in results)
    assert before["cutoff"][0] == dt.datetime(2024, 1, 1) + dt.timedelta(hours=55)
    assert_frame_equal(before.drop("y_actual"), after.drop("y_actual"))
    naive = [
        r.baselines.filter((pl.col("fold") == 0) & (pl.col("id") == "s0")).sort("baseline")
        for r in results
    ]
    # the targets moved by 100 at the first step only: every forecast error grows by exactly
    # the same amount, so the forecasts themselves are unchanged
    assert naive[0]["baseline"].to_list() == ["naive", "snaive"]
    growth = (naive[1]["mae"] - naive[0]["mae"]).to_list()
    assert growth == pytest.approx([100.0 / TINY["horizon"]] * 2, rel=1e-4)
    scales = [
        r.metrics.filter((pl.col("fold") == 0) & (pl.col("id") == "s0"))["mase"] for r in results
    ]
    model_mae = [
        r.metrics.filter((pl.col("fold") == 0) & (pl.col("id") == "s0"))["mae"] for r in results
    ]
    assert (scales[1] / scales[0]).item() == pytest.approx((model_mae[1] / model_mae[0]).item())


def test_a_series_flat_up_to_an_origin_has_an_infinite_mase_with_a_warning():
    """Its MASE was NaN (exact points: 0/0), without the warning evaluate gives, and the
    pooled MASE of the whole panel NaN too."""
    frame = _frame(n_series=2).with_columns(
        pl.when(pl.col("id") == "s0").then(5.0).otherwise(pl.col("y")).alias("y")
    )
    frame = frame.with_columns(  # a level shift inside the last fold's targets
        pl.when((pl.col("id") == "s0") & (pl.int_range(pl.len()).over("id") >= 117))
        .then(6.0)
        .otherwise(pl.col("y"))
        .alias("y")
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
    with pytest.warns(ForecasterWarning, match=r"MASE is infinite for series \['s0'\]"):
        result = backtest(model, frame, folds=2)
    flat = result.metrics.filter((pl.col("id") == "s0") & (pl.col("fold") == 1))
    assert flat["mae"][0] > 0 and flat["mase"][0] == float("inf")
    assert result.aggregate["mase"][0] == float("inf")


def test_interpolated_gaps_in_the_target_only_fit_and_backtest_with_a_covariate():
    frame = _gapped(100.0)  # y has a gap; the covariate z has none
    model = RNNForecaster(target="y", id_col="id", covariates="z", missing="interpolate", **TINY)
    result = backtest(model, frame, folds=3, m=24)
    assert result.aggregate["mase"].is_finite().all()


def _in_sample(caught: list) -> list[str]:
    return [str(w.message) for w in caught if "In-sample backtest" in str(w.message)]


def test_a_fitted_model_backtested_on_its_own_training_data_warns_and_shows_its_train_end():
    """refit=False of a model fitted on the folds' targets scored them in-sample silently,
    and result.folds showed train_start / train_end / train_rows null ("nothing trained")."""
    frame = _frame(n_series=2)
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(frame)
    with pytest.warns(InSampleWarning, match=r"In-sample backtest.* 3 of the 3 folds of 2 of"):
        result = backtest(model, frame, folds=3)
    last = frame.group_by("id").agg(pl.col("time").max()).sort("id")
    folds = result.folds.join(last, on="id")
    assert folds["train_end"].to_list() == folds["time"].to_list()
    assert (folds["cutoff"] < folds["train_end"]).to_list() == [True] * 6
    assert folds["train_start"].is_null().all() and folds["train_rows"].is_null().all()
    with pytest.warns(ForecasterWarning, match="In-sample backtest"):  # the method, too
        model.backtest(frame, folds=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataValidationError, match="inside the model's training data"):
            model.calibrate(frame, folds=3)  # refuses those origins itself, without the warning
    assert not _in_sample(caught)


def test_a_model_fitted_before_the_first_origin_backtests_without_the_in_sample_warning():
    """A series unseen in fit has no training end: its folds are out of sample."""
    frame = _frame(n_series=2)
    head = frame.filter((pl.col("id") == "s0") & (pl.int_range(pl.len()).over("id") < 90))
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(head)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = backtest(model, frame, folds=3)  # origins 101, 107, 113 of each series
    assert not _in_sample(caught)
    seen = result.folds.filter(pl.col("id") == "s0")
    assert seen["train_end"].to_list() == [head["time"].max()] * 3
    assert result.folds.filter(pl.col("id") == "s1")["train_end"].is_null().all()


def _calibrated(frame: pl.DataFrame, rolling: int | None) -> RNNForecaster:
    head = frame.filter(pl.int_range(pl.len()).over("id") < 100)
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(head)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.calibrate(
            frame, folds=25, step=2, rolling=rolling, origins="calendar"
        )  # windows to the end


def test_intervals_calibrated_after_a_folds_origin_are_scored_with_a_warning():
    """A calibration with rolling=None on windows ending after the folds' origins set every
    fold's interval from later errors (the ones being scored), silently."""
    frame = _frame(n_series=2, n=160)
    model = _calibrated(frame, rolling=None)
    with pytest.warns(ForecasterWarning, match=r"calibrated on later data.* 3 of the 3 folds"):
        result = backtest(model, frame, folds=3, level=80)
    assert "coverage_80" in result.aggregate.columns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, frame, folds=3)  # no intervals scored: nothing to warn about
        backtest(_calibrated(frame, rolling=8), frame, folds=3, level=80)  # windows seen by then
    assert not [w for w in caught if "calibrated on later data" in str(w.message)]


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"scale": {"z": 1.0}}, r"scale has values for \['z'\]"),
        ({"scale": -1.0}, r"scale must be a finite number > 0"),
        ({"level": [180]}, r"level must be"),
        ({"quantiles": [2.0]}, r"quantiles must be"),
    ],
)
def test_bad_scale_level_or_quantiles_are_refused_before_any_fit(asked, message, monkeypatch):
    """They were checked when the folds were scored or forecast: after every fold's model
    (scale) or the first (level, quantiles) had been trained."""
    fits = []
    monkeypatch.setattr(RNNForecaster, "fit", lambda self, *a, **k: fits.append(1))
    t = np.arange(60)
    frame = pl.DataFrame({"id": np.repeat(["a", "b"], 60), "time": np.r_[t, t]})
    frame = frame.with_columns(y=pl.col("time").cast(pl.Float64).sin())
    with pytest.raises(DataValidationError, match=message):
        backtest(
            RNNForecaster(target="y", id_col="id", **TINY), frame, folds=2, refit=True, **asked
        )
    assert fits == []


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"gap": 5}, r"gap=5 shapes the span each fold trains on"),
        ({"window": "sliding", "train_size": 80}, r"window='sliding' shapes the span"),
        ({"metrics": ["mape"], "scale": 1000.0}, r"scale divides the errors of"),
    ],
)
def test_backtest_refuses_what_a_fitted_model_or_its_metrics_would_not_use(asked, message):
    """A fitted model with refit=False trains nothing, so gap and a sliding window changed
    nothing; nor did scale without MAE, MSE or RMSE: all accepted, forecasts identical."""
    t = np.arange(160)
    frame = pl.DataFrame({"id": np.repeat(["a", "b"], 160), "time": np.r_[t, t]})
    frame = frame.with_columns(y=pl.col("time").cast(pl.Float64).sin())
    model = RNNForecaster(target="y", id_col="id", **TINY).fit(frame.filter(pl.col("time") < 100))
    with pytest.raises(DataValidationError, match=message):
        backtest(model, frame, folds=2, **asked)


def test_a_fold_with_at_most_m_values_is_left_out_of_the_pooled_mase_with_a_warning():
    """Its NaN MASE scale turned every pooled MASE (and the baselines' and the skill ratios)
    NaN, silently."""
    rng = np.random.default_rng(0)
    t = np.r_[np.arange(200), np.arange(60)]
    frame = pl.DataFrame(
        {
            "id": ["a"] * 200 + ["b"] * 60,
            "time": t,
            "y": 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, 260),
        }
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
    with pytest.warns(ForecasterWarning, match=r"undefined for 1 of the 4 .*\(fold 0, 'b'\)"):
        result = backtest(model, frame, folds=2, m=48)  # b's first origin: its 48th row
    mase = result.metrics.sort("fold", "id")["mase"].to_numpy()
    assert np.isnan(mase[1]) and np.isfinite(mase[[0, 2, 3]]).all()
    aggregate = result.aggregate.row(0, named=True)
    assert aggregate["mase"] == pytest.approx(mase[[0, 2, 3]].mean())
    pooled = pool_scores(result.metrics).row(0, named=True)  # the same rule (it kept the NaN)
    assert pooled["mase"] == pytest.approx(aggregate["mase"])
    assert pooled["mae"] == pytest.approx(aggregate["mae"])
    for name in ("mase_naive", "mase_snaive", "mase_skill_naive", "mase_skill_snaive"):
        assert np.isfinite(aggregate[name]), name
    assert np.isfinite(result.by_step["mase"].to_numpy()).all()


def _short_and_long(seed: int = 0) -> pl.DataFrame:
    """Series a (200 rows) and b (60 rows) of a 12-step cycle."""
    rng = np.random.default_rng(seed)
    t = np.r_[np.arange(200), np.arange(60)]
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, 260)
    return pl.DataFrame({"id": ["a"] * 200 + ["b"] * 60, "time": t, "y": y})


def test_baselines_and_their_skill_are_pooled_over_the_points_they_forecast():
    """b's first origin has 48 values, fewer than m=50: no seasonal-naive forecast there.
    aggregate's mae_snaive was NaN while its mase_snaive pooled the other blocks (and the
    block's own mae_snaive was NaN though 4 of its 6 steps had a forecast). Every baseline
    column now pools the points the baseline forecast, the model's score in the skill ratio
    the same points, and n_snaive counts them, in every breakdown alike."""
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
    with pytest.warns(ForecasterWarning, match=r"1 of the 4 .* fewer than m=50 values.*n_snaive"):
        result = backtest(model, _short_and_long(), folds=2, m=50, metrics=["mae", "rmse", "mase"])
    metrics = result.metrics.sort("fold", "id")
    assert metrics["n_snaive"].to_list() == [6, 0, 6, 6] and metrics["n_naive"].to_list() == [6] * 4
    short = metrics.row(1, named=True)  # (fold 0, b)
    assert np.isnan(short["mae_snaive"]) and np.isnan(short["mae_skill_snaive"])
    snaive = result.baselines.filter(pl.col("baseline") == "snaive").sort("fold", "id")
    assert np.isnan(snaive["mae"][1])  # no forecast at any step (were 2 of 6 missing)
    forecast = metrics.filter(pl.col("n_snaive") > 0)
    weights = forecast["n"].to_numpy()
    overall = result.aggregate.row(0, named=True)
    assert overall["n"] == 24 and overall["n_snaive"] == 18 and overall["n_naive"] == 24
    for name in ("mae", "rmse"):
        ours, theirs = forecast[name].to_numpy(), forecast[f"{name}_snaive"].to_numpy()
        power = 2 if name == "rmse" else 1
        pooled = [np.average(v**power, weights=weights) ** (1 / power) for v in (ours, theirs)]
        assert overall[f"{name}_snaive"] == pytest.approx(pooled[1])  # was NaN
        assert overall[f"{name}_skill_snaive"] == pytest.approx(pooled[0] / pooled[1])
        assert overall[f"{name}_skill_naive"] == pytest.approx(
            overall[name] / overall[f"{name}_naive"]
        )
    scaled = forecast.filter(pl.col("mase").is_not_nan())
    assert overall["mase_skill_snaive"] == pytest.approx(
        np.average(scaled["mase"], weights=scaled["n"])
        / np.average(scaled["mase_snaive"], weights=scaled["n"])
    )
    assert_frame_equal(pool_scores(result.metrics), result.aggregate, check_exact=False)
    assert_frame_equal(result.score([]), result.aggregate, check_exact=False)
    by_fold = result.score("fold").sort("fold")
    assert by_fold["n_snaive"].to_list() == [6, 12]
    first = metrics.row(0, named=True)  # fold 0's only seasonal-naive forecast: a's
    assert by_fold["mae_snaive"][0] == pytest.approx(first["mae_snaive"])
    assert by_fold["mae_skill_snaive"][0] == pytest.approx(first["mae_skill_snaive"])
    by_step = result.by_step
    assert by_step["n_snaive"].to_list() == [3] * 6 and not by_step["mae_snaive"].is_nan().any()


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_steps_the_missing_policy_filled_are_not_scored(missing):
    """A gap inside the last fold's targets, filled by missing=: the model and the baselines
    were scored against the filled values (float32 ones, at that), and the filled values
    were in the MASE scales. Only the frame's own values are scored now."""
    frame = _frame(n_series=2, n=80).drop("z")
    gap = pl.col("time").dt.hour().is_in([4, 5, 6]) & (pl.col("time").dt.day() == 4)
    early = pl.col("time").dt.hour().is_in([10, 11]) & (pl.col("time").dt.day() == 2)
    holed = frame.filter(~((gap | early) & (pl.col("id") == "s1")))  # 3 of fold 1's targets
    model = RNNForecaster(target="y", id_col="id", missing=missing, baseline="none", **TINY)
    with pytest.warns(UnscoredPointsWarning, match="3 of the 24 forecast points .* not scored"):
        result = backtest(model, holed, folds=2, metrics=["mae", "mase"])
    with warnings.catch_warnings(record=True) as caught:  # filtered by its class, not text
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", UnscoredPointsWarning)
        backtest(model, holed, folds=2, metrics=["mae", "mase"])
    assert caught and not [w for w in caught if "forecast points" in str(w.message)]
    forecasts = result.forecasts
    observed = forecasts.join(holed.select("id", "time"), on=["id", "time"], how="semi")
    assert forecasts.height == 24 and observed.height == 21
    metrics = result.metrics.sort("fold", "id")
    assert metrics["n"].to_list() == [6, 6, 6, 3] and metrics["n_naive"].to_list() == [6, 6, 6, 3]
    error = (observed["y"].cast(pl.Float64) - observed["y_actual"]).abs()
    assert result.aggregate["mae"].item() == pytest.approx(error.mean())
    last = observed.filter((pl.col("id") == "s1") & (pl.col("fold") == 1))
    origin = holed.filter((pl.col("id") == "s1") & (pl.col("time") == last["cutoff"][0]))["y"]
    assert metrics["mae_naive"][3] == pytest.approx((last["y_actual"] - origin).abs().mean())
    history = holed.filter((pl.col("id") == "s1") & (pl.col("time") <= last["cutoff"][0]))
    grid = history.select(pl.col("y").diff().abs())["y"]  # the frame's own steps only
    by_hand = grid.filter(history["time"].diff() == dt.timedelta(hours=1)).mean()
    assert metrics["mase"][3] == pytest.approx(metrics["mae"][3] / by_hand)
    assert_frame_equal(result.score(["fold", "cutoff", "id"]), result.metrics, check_exact=False)
    zero = RNNForecaster(target="y", id_col="id", missing="zero", baseline="none", **TINY)
    with warnings.catch_warnings(record=True) as caught:  # zeros by the user's word: scored
        warnings.simplefilter("always")
        counted = backtest(zero, holed, folds=2, metrics=["mae"])
    assert not [w for w in caught if "not scored" in str(w.message)]
    assert counted.aggregate["n"].item() == 24


def test_scores_use_the_frames_float64_values_not_their_float32_rounding():
    """1e8 + whole numbers: float32 (steps of 8 there) rounds the changes away. The actual
    values, the naive baseline and MASE's scales come from the frame's own values, so the
    scores are those of evaluate on the frame; they read MAE 0 against the rounded values."""
    rng = np.random.default_rng(3)
    frame = _frame(n_series=2, n=80).select(
        "id", "time", pl.Series("y", 1e8 + rng.integers(-3, 4, 160).astype(np.float64))
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
    with pytest.warns(ForecasterWarning, match="not their float32 rounding"):
        result = backtest(model, frame, folds=2, metrics=["mae", "mase"])
    forecasts = result.forecasts
    truth = forecasts.select("id", "time").join(frame, on=["id", "time"], how="left")["y"]
    assert forecasts["y_actual"].dtype == pl.Float64
    assert forecasts["y_actual"].to_list() == truth.to_list()  # exactly the frame's values
    error = (forecasts["y"].cast(pl.Float64) - truth).abs()
    assert result.aggregate["mae"].item() == pytest.approx(error.mean(), rel=1e-12)
    assert result.aggregate["mae"].item() > 0.5  # the rounded actual values read it 0 or 8
    origin = forecasts.select("id", pl.col("cutoff").alias("time"))
    last = origin.join(frame, on=["id", "time"], how="left")["y"]  # the naive forecast
    assert result.aggregate["mae_naive"].item() == pytest.approx((last - truth).abs().mean())
    first = result.metrics.row(0, named=True)  # fold 0, series s0: its history's lag-1 scale
    history = frame.filter((pl.col("id") == "s0") & (pl.col("time") <= first["cutoff"]))["y"]
    assert first["mase"] == pytest.approx(first["mae"] / history.diff().abs().mean())


def test_metrics_and_score_show_the_baselines_beside_the_model(frame):
    """Every score a backtest shows (by fold and series, by any keys of score(), by step,
    overall) has the naive and seasonal-naive scores and the skill ratios beside it."""
    result = backtest(RNNForecaster(target="y", id_col="id", **TINY), frame, folds=3, m=24)
    beside = ["mae", "mae_naive", "mae_skill_naive", "mae_snaive", "mae_skill_snaive", "mse"]
    keys = ["fold", "cutoff", "id", "target"]
    metrics = result.metrics
    counts = ["n", "n_naive", "n_snaive", "n_scaled"]  # the points each scored: all here
    assert metrics.columns[: len(keys) + 4 + len(beside)] == [*keys, *counts, *beside]
    assert metrics.select(pl.col(counts[1:]) == pl.col("n")).to_numpy().all()
    for base in ("naive", "snaive"):
        theirs = result.baselines.filter(pl.col("baseline") == base)
        assert metrics.select(keys).equals(theirs.select(keys))
        assert metrics[f"mase_{base}"].to_list() == theirs["mase"].to_list()
        assert metrics[f"mae_skill_{base}"].to_list() == pytest.approx(
            (metrics["mae"] / metrics[f"mae_{base}"]).to_list()
        )
    assert_frame_equal(result.score("step"), result.by_step, check_exact=False)
    assert_frame_equal(result.score([]), result.aggregate, check_exact=False)
    by_series = result.score("id", metrics=["mae"])
    assert by_series.columns == [
        "id",
        "target",
        *counts[:3],
        *beside[:5],
    ]  # no scaled score: no n_scaled
    naive = result.baselines.filter(pl.col("baseline") == "naive").drop("baseline")
    pooled = pool_scores(naive, by="id")  # the naive's points of each series, pooled
    assert by_series["mae_naive"].to_list() == pytest.approx(pooled["mae"].to_list())


def test_pooling_pooled_rows_again_weights_the_scaled_scores_by_their_points():
    """A row of score("fold") pools series of which one has no MASE scale at an origin (m
    values before it): its mase is a mean over the other points only, which n_scaled counts,
    so aggregate of the rows equals the backtest's own aggregate (it weighted them by n:
    1.85 for 2.05)."""
    rng = np.random.default_rng(1)
    frame = pl.concat(
        pl.DataFrame({"id": [k] * n, "time": np.arange(n), "y": rng.normal(10, 2, n)})
        for k, n in (("a", 60), ("b", 21))
    )
    params = {**TINY, "lookback": 8, "horizon": 3, "segment_length": 3}
    model = RNNForecaster(target="y", id_col="id", validation_size=0, **params)
    with pytest.warns(ForecasterWarning, match="MASE's scale is undefined for 1 of the 6"):
        result = backtest(model, frame, folds=3, step=2, m=14)
    assert result.metrics["n_scaled"].to_list() == [3, 0, 3, 3, 3, 3]
    for by in ("fold", "step", "id", []):
        rows = result.score(by)
        assert rows["n_scaled"].sum() == 15 and (rows["n_scaled"] <= rows["n"]).all()
        snaive = [c for c in rows.columns if "snaive" in c]  # refused: a part of a row's points
        pooled = pool_scores(rows.drop(snaive))
        assert pooled["mase"].item() == pytest.approx(result.aggregate["mase"].item(), rel=1e-12)
        assert pooled["mase_naive"].item() == pytest.approx(result.aggregate["mase_naive"].item())
        assert pooled["n_scaled"].item() == 15


def test_the_fold_models_fits_get_no_registered_callbacks(frame):
    """was: autolog() logged every fold model of backtest(refit=...) and of
    calibrate(refit=True) as a fit of its own (a run and a model each), and last_fit() then
    named a copy, not the user's model; the user's own fits still get them."""
    from forecaster.training import register_fit_callback, unregister_fit_callback

    fitted: list[int] = []
    handle = register_fit_callback(lambda estimator, data: fitted.append(id(estimator)))
    try:
        model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = backtest(model, frame, folds=2, step=6, refit=True)
            assert len(result.estimators) == 2 and fitted == []
            model.fit(frame).calibrate(frame, folds=2, step=6, refit=True)
        assert fitted == [id(model)]  # the user's fit only
    finally:
        unregister_fit_callback(handle)


def test_a_refit_backtest_warns_each_kind_once_naming_its_folds():
    model = RNNForecaster(**GAPPY_MODEL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.backtest(gappy_panel(), folds=10, refit=True)
    kinds = forecaster_warning_kinds(caught)
    assert set(kinds.values()) == {1}, kinds  # before: the fill warning 21 times, ...
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    assert fills[0].startswith("missing='ffill' made up 102 of the 320 rows")  # the call's
    # each fold's fit fills its own rows: one summary, with the first fold's message
    assert fills[1].startswith(
        "In 10 of 10 backtest folds (folds 0, 1, 2, 3, 4, ...): missing='ffill' made up 82 of "
        "the 258 rows"
    ), fills
    assert len(fills) == 2
    summaries = [w for w in caught if str(w.message).startswith("In ")]
    assert {w.filename for w in summaries} == {__file__}  # at the user's line


def test_a_forecaster_warning_an_error_filter_raises_in_a_fold_still_raises():
    model = RNNForecaster(**GAPPY_MODEL)
    frame = gappy_panel()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        warnings.filterwarnings("ignore", message="missing='ffill' made up 102 of the 320")
        with pytest.raises(ForecasterWarning, match=r"^missing='ffill' made up 96 of the 300"):
            model.backtest(frame, folds=3, refit=True)  # fold 0's fit, as it is raised


def test_a_forecaster_warning_an_ignore_filter_drops_is_not_summarized():
    model = RNNForecaster(**GAPPY_MODEL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="missing='ffill'")
        model.backtest(gappy_panel(), folds=3, refit=True)
    # the fits' "missing='ffill' made up ..." (a fold origin on a filled step is named apart)
    assert not [w for w in caught if "missing='ffill' made up" in str(w.message)]


def test_a_backtest_with_one_fit_warns_its_fits_messages_as_they_are():
    model = RNNForecaster(**GAPPY_MODEL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.backtest(gappy_panel(), folds=3)  # one fit, whose model forecasts every fold
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    assert len(fills) == 2 and fills[1].startswith("missing='ffill' made up 96 of the 300"), fills


def test_a_backtest_refitting_every_k_folds_counts_its_fits():
    """``refit=3`` over 6 folds fits 2 models: the summary counts fits, at the folds where
    each was fitted (it said "In 2 of 2 backtest folds (folds 0, 3)" of 6 folds)."""
    model = RNNForecaster(**{**GAPPY_MODEL, "baseline": "none"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.backtest(gappy_panel(), folds=6, refit=3)
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    assert len(fills) == 2, fills
    assert fills[1].startswith("In 2 of 2 backtest fits (at folds 0, 3): missing='ffill'"), fills


def _waited(event: threading.Event) -> None:
    assert event.wait(timeout=120), "the other backtest did not get there"


def test_two_refit_backtests_in_threads_each_warn_their_own_and_leave_warnings_as_they_were(
    monkeypatch,
):
    """Two refit backtests in a thread pool, the second entering while the first fits its
    fold 0 and leaving after the first has left: the second's own warnings are shown (the
    first's block held them as its fold 0's), each summarizes its own folds, and the
    warning filters and ``showwarning`` are as before (the first's "always" filter and its
    ``show`` stayed installed, so every later warning repeated)."""
    # the module whose forecast_folds fits the folds (not the function)
    backtest_module = importlib.import_module("forecaster.evaluation.fitted")
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])  # sympy's import adds a filter
    fit_fold = backtest_module.fit_fold
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def ordered(estimator, frame, panel, folds_frame, first):  # type: ignore[no-untyped-def]
        if first == 0 and estimator.get_params()["random_state"] == 0:
            a_in.set()
            _waited(b_in)
        elif first == 0:
            b_in.set()
            _waited(a_out)
        return fit_fold(estimator, frame, panel, folds_frame, first)

    monkeypatch.setattr(backtest_module, "fit_fold", ordered)
    frame = gappy_panel()

    def run(seed: int) -> None:
        if seed == 1:
            _waited(a_in)
        model = RNNForecaster(**{**GAPPY_MODEL, "random_state": seed, "baseline": "none"})
        model.backtest(frame, folds=2, refit=True)
        if seed == 0:
            a_out.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters, show = list(warnings.filters), warnings.showwarning
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(run, [0, 1]))
        assert warnings.filters == filters
        assert warnings.showwarning is show
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    own = [m for m in fills if m.startswith("missing='ffill' made up 102 of the 320 rows")]
    summaries = [m for m in fills if m.startswith("In 2 of 2 backtest folds (folds 0, 1): ")]
    assert (len(own), len(summaries), len(fills)) == (2, 2, 4), fills


_REPEATED_BACKTESTS = repeated_calls_script("model.backtest(frame, folds=2)")


@pytest.mark.slow
def test_repeated_backtests_keep_the_record_of_warnings_already_shown():
    """A loop of backtests of a fitted model shows the user's own warning, raised at one
    line before each, once under Python's default filter: every backtest entered
    ``warnings.catch_warnings()``, whose exit reset the record, so it was shown 3 times. A
    fresh interpreter without PYTHONWARNINGS, as pytest records warnings with its own
    filters."""
    stderr = stderr_under_default_warnings(_REPEATED_BACKTESTS)
    assert stderr.count("UserWarning: the user's own note") == 1, stderr


def test_future_values_made_up_by_missing_over_the_folds_are_warned(frame):
    """A future covariate null over forecast steps was made up by missing= in a backtest
    silently (future= and `forecaster run` refuse it): its one predict call warns, with the
    counts, and the backtest passes the warning on."""
    model = RNNForecaster(target="y", id_col="id", future_covariates="z", missing="ffill",
                          baseline="none", **TINY)  # fmt: skip
    model.fit(frame.filter(pl.col("time") < dt.datetime(2024, 1, 4)))
    last = frame["time"].max()
    holed = frame.with_columns(
        z=pl.when((pl.col("id") == "s1") & (pl.col("time") > last - dt.timedelta(hours=3)))
        .then(None)
        .otherwise("z")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = backtest(model, holed, folds=2, refit=False)
    made = [str(w.message) for w in caught if "made them up" in str(w.message)]
    assert len(made) == 1, [str(w.message)[:80] for w in caught]
    assert "(1 series, 1 origin, steps [4, 5, 6] of the horizon" in made[0]
    assert "missing='ffill'" in made[0]
    assert result.forecasts["y"].is_finite().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        backtest(model, frame, folds=2, refit=False)  # every value known: no warning


@pytest.mark.parametrize("refit", [False, True], ids=["fitted", "refit"])
def test_calendar_folds_leave_out_a_series_ending_within_a_future_covariate_horizon(refit):
    """A date panel whose series end at different times has calendar folds at common
    cutoffs, and a series that ends within a fold's horizon is scored on the rows it has;
    with future covariates, which a forecast reads from the horizon rows after its origin,
    the whole backtest (and calibrate) was refused ("every origin needs its next 6 rows"),
    advice the user could not follow. Such a (fold, series) is left out, with the warning
    that names the folds' other absent series; the other forecasts are unchanged."""
    whole = _frame(n_series=2)
    short = whole["time"].unique().sort()[-4]  # s1 ends 3 steps into the last fold's horizon
    ragged = whole.filter((pl.col("id") == "s0") | (pl.col("time") <= short))
    model = RNNForecaster(target="y", id_col="id", future_covariates="z", baseline="none",
                          **TINY)  # fmt: skip
    if not refit:
        model.fit(ragged.filter(pl.col("time") < dt.datetime(2024, 1, 4)))
    with pytest.warns(ForecasterWarning, match=r"has fewer than 6 rows after the fold's cutoff"):
        result = backtest(model, ragged, folds=2, step=4, refit=refit)
    assert result.folds.select("fold", "id").rows() == [(0, "s0"), (0, "s1"), (1, "s0")]
    assert result.forecasts["y"].is_finite().all()
    if not refit:  # the fitted model forecasts each series on its own
        full = backtest(model, whole, folds=2, step=4, refit=False).forecasts
        kept = result.forecasts.select("fold", "id", "time")
        assert_frame_equal(result.forecasts, full.join(kept, on=["fold", "id", "time"], how="semi"))


def test_a_fitted_model_backtest_reads_its_training_ends_once(monkeypatch):
    """backtest(refit=False) read train_end_of for the folds frame, again for an empty
    series (for its dtype) and, with integer steps or origins="series", a third time for
    the in-sample check, with the same values: once now, the warnings unchanged."""
    model = RNNForecaster(**STAGGERED_MODEL).fit(staggered_copies({"a": 160, "b": 100}))
    integer = {k: v for k, v in STAGGERED_MODEL.items() if k != "freq"}
    steps = RNNForecaster(**integer).fit(staggered_copies({"a": 160, "b": 100}, integer=True))
    cases = [
        (model, staggered_copies({"b": 140}), "auto", InSampleWarning),
        (model, staggered_copies({"b": 140}), "series", CrossSeriesWarning),
        (steps, staggered_copies({"a": 140, "b": 140}, integer=True), "auto", InSampleWarning),
    ]
    for fitted, data, origins, warning in cases:
        calls: list[int] = []

        def counted(ids: pl.Series, read=fitted.train_end_of, calls=calls) -> pl.Series:
            calls.append(len(ids))
            return read(ids)

        monkeypatch.setattr(fitted, "train_end_of", counted)
        with pytest.warns(warning):
            result = backtest(fitted, data, folds=3, origins=origins)
        assert calls == [data["id"].n_unique()], (origins, calls)
        assert result.folds["train_end"].null_count() == 0


def test_a_fitted_model_backtested_on_a_series_ending_earlier_is_in_sample_through_the_others():
    """b, a copy of a, fitted up to day 100 while a was fitted up to day 160: backtest(refit=
    False) scored b's folds on days 132..140 as out of sample (after b's own train_end)
    though the global model trained on a's identical rows there. result.folds keeps each
    series' own train_end; the warning names the model's last training time."""
    model = RNNForecaster(**STAGGERED_MODEL).fit(staggered_copies({"a": 160, "b": 100}))
    through = r"3 of them \(of 1 series, e.g. \['{}'\]\) are in sample only through .*2020-06-08"
    for name, own in (("b", [dt.date(2020, 4, 9)] * 3), ("c", [None] * 3)):  # c: unseen
        with pytest.warns(InSampleWarning, match=through.format(name)):
            result = backtest(model, staggered_copies({name: 140}), folds=3)
        assert result.folds["train_end"].to_list() == own
    # origins="series": each series' own end, and the cross-series warning instead
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, staggered_copies({"b": 140}), folds=3, origins="series")
    assert not _in_sample(caught)
    assert any(
        "3 (series, fold) pairs (series ['b'])" in str(w.message)
        and w.category is CrossSeriesWarning
        for w in caught
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, staggered_copies({"b": 175}), folds=3)  # after the model's training
        equal = RNNForecaster(**STAGGERED_MODEL).fit(staggered_copies({"a": 100, "b": 100}))
        backtest(equal, staggered_copies({"a": 140, "b": 140}), folds=3)  # ending together
        integer = {k: v for k, v in STAGGERED_MODEL.items() if k != "freq"}
        fitted = staggered_copies({"a": 160, "b": 100}, integer=True)
        model = RNNForecaster(**integer).fit(fitted)
        backtest(model, staggered_copies({"b": 140}, integer=True), folds=3)  # own sequences
    assert not _in_sample(caught)


def _clips(lengths: list[int], seed: int = 0) -> pl.DataFrame:
    """Independent integer-step clips (``id``, ``frame``, ``y``), each numbered from 0."""
    rng = np.random.default_rng(seed)
    return pl.concat(
        pl.DataFrame(
            {
                "id": f"c{k}",
                "frame": np.arange(n, dtype=np.int64),
                "y": np.sin(np.arange(n) / 3 + k) * (k + 1) + rng.normal(0, 0.1, n),
            }
        )
        for k, n in enumerate(lengths)
    )


CLIP_MODEL = {**TINY, "lookback": 8, "horizon": 3, "segment_length": 3, "validation_size": 0}


def test_intervals_of_clips_calibrated_before_their_own_folds_are_not_called_later():
    """Integer steps (independent clips): the warning compared the latest calibration window
    of all clips with every clip's origin, so a model fitted and calibrated on all but each
    clip's last horizon + (folds - 1) * step rows (the warning's own advice) was still told
    its interval scores were "calibrated on later data". Each clip's own windows count."""
    frame = _clips([60, 45, 90])
    own = pl.int_range(pl.len()).over("id") < pl.len().over("id") - 6
    model = RNNForecaster(target="y", id_col="id", time_col="frame", freq="1i", **CLIP_MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame.filter(own)).calibrate(frame.filter(own), refit=True, folds=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, frame, folds=2, level=80)
    assert not [w for w in caught if "calibrated on later data" in str(w.message)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.calibrate(frame, refit=True, folds=3)  # now past every clip's origins
    with pytest.warns(ForecasterWarning, match=r"later data.*own series.* 2 of the 2 folds") as w:
        backtest(model, frame, folds=2, level=80)
    # its advice leaves out rolling=W, which calibrate refuses across independent clips
    (message,) = [str(x.message) for x in w if "calibrated on later data" in str(x.message)]
    assert "rolling=W" not in message and "rolling=" not in message.split("uses errors")[1]


def test_an_infinite_mape_is_named():
    """Intermittent demand: s0 is 0 but for a 1 at the last fold's origin, so the naive
    forecast (1) and the model miss its zero targets. MAPE was inf without a word."""
    row = pl.int_range(pl.len()).over("id")
    frame = _frame(n_series=2).with_columns(
        pl.when(pl.col("id") == "s0")
        .then(pl.when(row == 113).then(1.0).otherwise(0.0))
        .otherwise(pl.col("y"))
        .alias("y")
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(frame)
    with pytest.warns(ForecasterWarning, match=r"MAPE is infinite for series \['s0'\] in some f"):
        result = backtest(model, frame, folds=2, metrics=["mae", "mape"])
    last = result.metrics.filter((pl.col("id") == "s0") & (pl.col("fold") == 1))
    assert last["mape"][0] == float("inf") and last["mape_naive"][0] == float("inf")


def test_a_skill_ratio_to_an_infinite_score_is_null():
    """s0 as above: its MAPE and the naive's are inf in the last fold, and the skill ratio
    was NaN (inf / inf), pooled into a NaN skill, which a pipeline printed as "targets' mean
    skill nan"; there is no ratio to an infinite score, as to a score of 0: null."""
    row = pl.int_range(pl.len()).over("id")
    frame = _frame(n_series=2).with_columns(
        pl.when(pl.col("id") == "s0")
        .then(pl.when(row == 113).then(1.0).otherwise(0.0))
        .otherwise(pl.col("y"))
        .alias("y")
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        result = backtest(model, frame, folds=2, metrics=["mae", "mape"])
    last = result.metrics.filter((pl.col("id") == "s0") & (pl.col("fold") == 1))
    assert last["mape_naive"][0] == float("inf") and last["mape_skill_naive"][0] is None
    assert result.aggregate["mape_skill_naive"][0] is None
    assert not result.metrics["mape_skill_naive"].is_nan().any()


def test_a_flat_series_is_not_warned_about_when_no_scaled_score_is_asked():
    """backtest(metrics=["mae"]) warned "MASE is infinite" for a series flat up to an origin,
    though no MASE (nor MSIS) was computed; a backtest that scores MASE still warns."""
    frame = _frame(n_series=2).with_columns(
        pl.when(pl.col("id") == "s0").then(0.0).otherwise(pl.col("y")).alias("y")
    )
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, frame, folds=2, metrics=["mae"])
    assert not [w for w in caught if "MASE" in str(w.message)]
    with pytest.warns(ForecasterWarning, match=r"MASE is infinite for series \['s0'\]"):
        backtest(model, frame, folds=2, metrics=["mae", "mase"])


def test_the_warning_about_series_too_short_for_one_fold_is_singular():
    """The warning said "the 11 rows that 1 folds need": one fold needs."""
    frame = pl.concat([_frame(n_series=1), _frame(n_series=2).filter(pl.col("id") == "s1")])
    frame = frame.filter((pl.col("id") == "s0") | (pl.int_range(pl.len()).over("id") < 20))
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY).fit(frame)
    with pytest.warns(ForecasterWarning, match=r"shorter than the 30 rows that 1 fold needs"):
        backtest(model, frame, folds=1)


def test_baselines_pooled_with_the_model_score_as_pooled_apart():
    """``pooled_with_skill`` pools a baseline with a forecast at every point in the model's
    own group-by and one without (NaN forecasts, as the seasonal naive from short origins)
    apart: the same frame, bit for bit, as every baseline pooled on its own
    (``baseline_scores``) and matched to the model's scores on the keys (``with_skill``,
    which puts frames of one group-by side by side instead of joining them)."""
    from forecaster.evaluation.fold_scores import baseline_scores, pooled_with_skill
    from forecaster.evaluation.metrics import METRICS, summarize_points
    from forecaster.evaluation.pooling import with_skill

    rng = np.random.default_rng(5)
    n = 6_000
    columns = PointColumns.avoiding(["fold", "step", "target"])
    points = pl.DataFrame(
        {
            "fold": np.repeat(np.arange(n // 24), 24) // 10,
            "step": np.tile(np.arange(1, 25), n // 24),
            "target": ["y"] * n,
            columns.forecast: rng.normal(10, 3, n),
            columns.actual: rng.normal(10, 3, n),
            columns.mase_scale: np.repeat(rng.uniform(0.5, 2, n // 24), 24),
        }
    )
    snaive = np.where(np.arange(n) < 500, np.nan, rng.normal(10, 3, n))  # no forecast there
    base_points = {
        name: points.with_columns(pl.Series(columns.forecast, values))
        for name, values in (("naive", rng.normal(10, 3, n)), ("snaive", snaive))
    }
    names = list(METRICS)
    for keys in (["fold", "target"], ["step", "target"], ["target"]):
        ours = summarize_points(points, keys, names, columns, count_scaled=True)
        theirs, mine = baseline_scores(points, base_points, keys, names, columns)
        expected = with_skill(ours, theirs, keys=keys, metrics=names, ours=mine)
        got = pooled_with_skill(points, base_points, keys, names, columns, None)
        assert_frame_equal(got, expected, check_exact=True)
        shuffled = {name: frame.reverse() for name, frame in theirs.items()}  # joined
        joined = with_skill(ours, shuffled, keys=keys, metrics=names, ours=mine)
        assert_frame_equal(joined, expected, check_exact=True)


@pytest.mark.parametrize("name", ["n", "baseline", "mae_naive", "mae_skill_snaive", "n_scaled"])
def test_an_id_column_named_like_a_score_column_is_refused_before_any_fit(frame, name, monkeypatch):
    """An id column named like a column of the scores (``n``, ``baseline``, a baseline's or
    skill column) crashed with polars' DuplicateError after every fold was fitted and
    forecast: refused up front, naming the column, as evaluate refuses it."""
    renamed = frame.rename({"id": name})
    model = RNNForecaster(target="y", id_col=name, **TINY)
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    with pytest.raises(DataValidationError, match=rf"The id column '{name}' has the name of"):
        backtest(model, renamed, folds=2, metrics=["mae", "mase"], m=24)


def test_a_fold_whose_fit_would_hold_out_every_training_window_is_refused_before_any_fit(
    monkeypatch,
):
    """A refit backtest of series just long enough for the first fold's window failed inside
    that fold's fit ("No training windows remain after holding out ..."): the up-front check
    did not count the clone's validation hold-out. It is refused before any fit, naming
    validation_size among the fixes."""
    short = _frame(n_series=1, n=42)  # fold 0 trains on rows 0..29: lookback + horizon = 30
    model = RNNForecaster(target="y", id_col="id", **TINY)  # validation_size 0.1: 6 rows
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    for refit in (True, False):
        with pytest.raises(TooFewRowsError, match=r"fold 0's model trains on at most 30 rows"):
            backtest(model, short, folds=2, refit=refit)
    with pytest.raises(TooFewRowsError, match=r"a larger train_size, .*validation_size"):
        backtest(model, _frame(n_series=1), folds=2, refit=True, window="sliding", train_size=30)
    monkeypatch.undo()
    fitted = backtest(model.set_params(validation_size=0), short, folds=2, refit=True)
    assert len(fitted.estimators) == 2  # without a hold-out, 30 rows hold one window


def test_a_forecaster_lacking_part_of_what_backtest_calls_is_told_what_it_lacks(frame):
    """A stand-in with every member a backtest called before ``series_kept`` (and
    ``predict_origins``) were added to :class:`BacktestForecaster` was told only "backtest
    needs an RNNForecaster ... got OldStandIn": the error names what it lacks."""
    calls = ("validate_params", "get_params", "fit", "predict", "check_fitted", "lookback_for",
             "read_frame", "__sklearn_is_fitted__")  # fmt: skip
    members = {name: lambda *_, **__: None for name in calls}
    stand_in = type("OldStandIn", (), {"lookback": 24, "horizon": 6, "time_col": "time",
                                       "id_col": "id", **members})  # fmt: skip
    with pytest.raises(
        DataValidationError, match=r"OldStandIn, which lacks \['predict_origins', 'series_kept'\]"
    ):
        backtest(stand_in(), frame)
    with pytest.raises(DataValidationError, match=r"got object, which lacks \['lookback', 'hori"):
        backtest(object(), frame)


@pytest.mark.parametrize("name", ["n", "mae", "mse"])
def test_scores_by_a_time_column_named_like_a_score_are_refused_saying_so(frame, name):
    """score(by=<time column>) of a time column named like a score column (``n``, ``mae``)
    crashed with polars' DuplicateError: the scores put the key beside columns of its name.
    It is refused naming the clash and the rename; the other keys score as before. So is one
    named like a score the call did not compute (``mse`` beside ``metrics=["mae"]``), which
    aggregate then pooled as the MSE (the times' mean)."""
    renamed = frame.filter(pl.col("id").is_in(["s0", "s1"])).rename({"time": name})
    model = RNNForecaster(target="y", id_col="id", time_col=name, **TINY)
    result = backtest(model, renamed, folds=2, metrics=["mae"])
    with pytest.raises(DataValidationError, match=rf"Cannot group by \['{name}'\]: the scores"):
        result.score([name])
    assert result.score(["step"])["step"].to_list() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("name", "level"),
    [("mae_snaive", None), ("n_snaive", None), ("coverage_80", None), ("pinball", None),
     ("n_scaled", None), ("mse_naive", None), ("coverage_95", 80), ("mse", None),
     ("winkler_80_naive", None), ("msis_95_skill_snaive", 80)],
)  # fmt: skip
def test_an_id_named_like_a_score_that_aggregate_reads_is_refused_by_the_backtest(
    monkeypatch, frame, name, level
):
    """An id named like a count or score column that no score frame of this call holds
    (``mse`` beside ``metrics=["mae"]``, ``mae_snaive`` with m=1, ``coverage_80`` without
    intervals, ``n_scaled`` without a scaled score) was accepted (an earlier fix had narrowed
    the check to this call's columns, for the DuplicateError of ``score(by=<id>)``): the
    score frames held the ids there, and aggregate(result.metrics) pooled them as that score
    (an "mse" of 1.5 from ids 1 and 2, a made-up seasonal naive and its skill ratio; string
    ids: polars' "conversion from str to f64 failed"). The backtest refuses it before any
    fit, naming the column and how to rename it."""
    ids = {"s0": 1, "s1": 2}
    renamed = frame.filter(pl.col("id").is_in(list(ids))).with_columns(
        pl.col("id").replace_strict(ids).alias(name)
    )
    model = RNNForecaster(target="y", id_col=name, loss="quantile", **TINY)
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    expected = rf"The id column '{name}' has the name of a count or score column that aggregate"
    for data in (renamed.drop("id"), frame.rename({"id": name})):  # integer and text ids
        with pytest.raises(DataValidationError, match=expected) as caught:
            backtest(model, data, folds=2, metrics=["mae"], level=level)
        assert f"frame.rename({{'{name}': 'series'}})" in str(caught.value)


@pytest.mark.parametrize("lookback", [24, "auto"])
@pytest.mark.parametrize("n", [42, 120])
def test_a_validation_size_below_the_horizon_is_refused_as_such_before_any_fit(
    monkeypatch, lookback, n
):
    """validation_size=4 with horizon=6, which every fit refuses whatever the data, was
    reported as a TooFewRowsError ("The training span of some fold is too short ... a smaller
    validation_size"; the pipelines' calibration adds "Use longer series") when the first
    fold's span held one window and no more, and refused only inside a fold's fit otherwise:
    it is refused before any fit with the fit's own message."""
    model = RNNForecaster(target="y", id_col="id", **{**TINY, "lookback": lookback})
    model.set_params(validation_size=4)  # horizon 6: no validation window fits in 4 steps
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    with pytest.raises(DataValidationError, match=r"validation_size=4 holds out the last 4") as e:
        backtest(model, _frame(n_series=1, n=n), folds=2, refit=True)
    assert not isinstance(e.value, TooFewRowsError)


@pytest.mark.parametrize("name", ["model", "train_start", "train_rows"])
def test_an_id_column_named_like_a_column_of_the_folds_is_refused_before_any_fit(
    frame, name, monkeypatch
):
    """result.folds puts the id beside ``model`` and the training span: an id named like one
    crashed with polars' SchemaError ('model': str against i32) or, with integer ids, failed
    the first fold's fit with "duplicate (id, time) rows" or "The frame is empty"."""
    renamed = frame.rename({"id": name})
    model = RNNForecaster(target="y", id_col=name, **TINY)
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    with pytest.raises(DataValidationError, match=rf"Columns \['{name}'\] clash with the output"):
        backtest(model, renamed, folds=2, metrics=["mae"])


def _panel_reads(monkeypatch) -> list[int]:
    """Count the frames read into a Panel (Panel.from_frame calls) from now on."""
    reads: list[int] = []
    read = Panel.from_frame.__func__

    def counted(cls, *args, **kwargs):
        reads.append(1)
        return read(cls, *args, **kwargs)

    monkeypatch.setattr(Panel, "from_frame", classmethod(counted))
    return reads


def _held_pairs(result) -> pl.DataFrame:
    return result.folds.select("id", pl.col("cutoff").alias("time"))


@pytest.mark.parametrize("missing", ["error", "ffill", "zero", "interpolate"])
def test_a_backtest_reads_its_frame_once_and_forecasts_as_predict_does(frame, monkeypatch, missing):
    """A given fitted model forecasts every origin from the panel the backtest read (not
    from the frame read again, held after the latest origin, as predict reads it): the same
    bits as predict(frame, cutoff=<the folds' pairs>)."""
    data = frame if missing == "error" else gappy_rows(frame, [(0, 40), (1, 95), (2, 97)])
    model = RNNForecaster(target=["y", "z"], id_col="id", missing=missing, **TINY)
    model.fit(data.filter(pl.col("time") < dt.datetime(2024, 1, 3)))
    reads = _panel_reads(monkeypatch)
    result = backtest(model, data, folds=4)
    assert len(reads) == 1
    expected = model.predict(data, cutoff=_held_pairs(result))
    for target in ("y", "z"):
        assert result.forecasts[target].equals(expected[target])


def gappy_rows(frame: pl.DataFrame, cells: list[tuple[int, int]]) -> pl.DataFrame:
    """``frame`` with the ``y`` of the rows ``(series number, row in series)`` missing."""
    row, series = pl.int_range(pl.len()).over("id"), pl.col("id").str.slice(1).cast(pl.Int64)
    hit = pl.any_horizontal(*[(series == s) & (row == r) for s, r in cells])
    return frame.with_columns(pl.when(hit).then(None).otherwise(pl.col("y")).alias("y"))


@pytest.mark.parametrize(
    "case", ["interpolated across the last origin", "log", "predict overridden"]
)
def test_a_backtest_reads_its_frame_again_where_its_panel_could_forecast_otherwise(
    frame, monkeypatch, case
):
    """Where the rows after the latest origin could change the forecasts (a run filled by
    interpolation reaching across it, a transform that checks every target) or predict is
    a subclass's, the origins are forecast by predict(frame, cutoff=<pairs>) itself."""
    options: dict = {"interpolated across the last origin": {"missing": "interpolate"}}
    options["log"] = {"target_transform": "log"}
    data = frame
    if case == "interpolated across the last origin":  # the last fold's origin is row 113
        data = gappy_rows(frame, [(0, 112), (0, 113), (0, 114)])
    elif case == "log":  # a 0 among the last fold's targets: read by no forecast
        data = frame.with_columns(
            pl.when(pl.int_range(pl.len()).over("id") == 118).then(0.0).otherwise("y").alias("y")
        )
    cls = RNNForecaster
    if case == "predict overridden":

        class Shifted(RNNForecaster):
            def predict(self, frame, **kwargs):
                return super().predict(frame, **kwargs).with_columns(pl.col("y") + 1.0)

        cls = Shifted
    model = cls(target="y", id_col="id", **options.get(case, {}), **TINY)
    model.fit(data.filter(pl.col("time") < dt.datetime(2024, 1, 3)))
    reads = _panel_reads(monkeypatch)
    result = backtest(model, data, folds=4)
    assert len(reads) == 2  # the backtest's, then predict's
    expected = model.predict(data, cutoff=_held_pairs(result))
    assert result.forecasts["y"].equals(expected["y"])


def test_refit_folds_of_ragged_series_beside_a_series_too_short_are_those_without_it(frame):
    """A series too short for the folds (here first by id) is left out, and refitted fold
    models of calendar folds that leave a series out of a fold train and forecast the other
    series as a backtest of the frame without it does (the spans of the kept series, read
    in the panel of the whole frame)."""
    ragged = frame.filter((pl.col("id") != "s1") | (pl.col("time") < dt.datetime(2024, 1, 5, 16)))
    short = frame.filter(pl.col("id") == "s0").head(20).with_columns(pl.lit("a").alias("id"))
    model = RNNForecaster(target="y", id_col="id", **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = backtest(model, ragged, folds=3, refit=True)
        beside = backtest(model, pl.concat([short, ragged]), folds=3, refit=True)
    assert alone.folds["fold"].len() < 3 * 4  # calendar folds that leave s1 out
    assert_frame_equal(beside.folds, alone.folds)
    assert_frame_equal(beside.forecasts, alone.forecasts)


def test_covariates_named_like_output_columns_backtest_score_and_calibrate(frame):
    """A covariate named ``fold``, ``cutoff``, ``step`` or ``target`` was refused ("clash with
    the output columns of a backtest"), though no forecasts, folds or score frame holds a
    covariate: it backtests, scores by step and calibrates."""
    two = frame.filter(pl.col("id").is_in(["s0", "s1"]))
    for name in ("fold", "cutoff", "step", "target"):
        data = two.rename({"z": name})
        model = RNNForecaster(target="y", id_col="id", covariates=[name], **TINY)
        result = backtest(model, data, folds=2, metrics=["mae"])
        assert result.forecasts.columns == ["fold", "cutoff", "id", "time", "step", "y", "y_actual"]
        assert result.score("step")["step"].to_list() == [1, 2, 3, 4, 5, 6]
        model.fit(data).calibrate(data, folds=2, refit=True)
        assert "y_lo_80" in model.predict(data, level=80).columns


@pytest.mark.parametrize(("target", "id_col"), [("fold", "id"), ("y", "y_actual")])
def test_an_id_or_target_named_like_a_forecasts_column_is_refused_before_any_fit(
    frame, monkeypatch, target, id_col
):
    """A target or id named like a column of the forecasts frame is still refused; an id
    named ``<target>_actual`` failed after every fold's fit with polars' DuplicateError (only
    value columns were compared with ``<target>_actual``)."""
    renamed = frame.rename({"y": target, "id": id_col})
    model = RNNForecaster(target=target, id_col=id_col, **TINY)
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    message = (
        r"Columns \['fold'\] clash with the output"
        if target == "fold"
        else r"Column 'y_actual' \(id\) is named like the column of the actual values of target 'y'"
    )
    with pytest.raises(DataValidationError, match=message):
        backtest(model, renamed, folds=2, metrics=["mae"])


def test_a_target_named_like_another_targets_actual_column_is_refused_naming_both(
    frame, monkeypatch
):
    """Targets ``y`` and ``y_actual``: the refusal listed ``['y_actual']`` beside every
    reserved name, without saying which column it clashes with; it now names the target
    whose actual values it would replace, and how to rename it, before any fit (the message
    of fit's own refusal: ``data.checks.check_output_names``)."""
    data = frame.with_columns((pl.col("y") * 2).alias("y_actual"))
    model = RNNForecaster(target=["y", "y_actual"], id_col="id", **TINY)
    monkeypatch.setattr(RNNForecaster, "fit", lambda *_, **__: pytest.fail("a fold was fitted"))
    named = r"'y_actual' \(target\) is named like the column of the actual values of target 'y'"
    rename = r"frame\.rename\(\{'y_actual': 'y_actual_value'\}\)"
    with pytest.raises(
        DataValidationError, match=rf"{named}.* Rename the column \(e\.g\. {rename}\)"
    ):
        backtest(model, data, folds=2, metrics=["mae"])


def test_a_frame_ending_with_made_up_targets_is_told_by_its_unscored_points(frame):
    """A backtest of a frame whose series end with missing targets warned "2 series end with
    rows whose targets are missing ... pass predict a cutoff", though no forecast of the
    backtest starts at the frame's end: those rows are test points, which the warning of
    the unscored points names (and the folds' fits name their own training data's ends)."""
    last = pl.col("time") > pl.col("time").max() - dt.timedelta(hours=3)
    late = frame.with_columns(
        pl.when(last & (pl.col("id") != "s3")).then(None).otherwise("y").alias("y")
    )
    model = RNNForecaster(target="y", id_col="id", missing="ffill", **TINY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(model, late, folds=2)
    told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    assert not [m for m in told if "targets are missing" in m], told
    assert any(m.startswith("9 of the 48 forecast points") for m in told), told


def test_folds_at_steps_missing_filled_are_told_once_as_the_backtests_origins():
    """A backtest of gappy data under missing="ffill" places some fold origins on filled
    steps (2020-06-03 here). Each fold's predict(cutoff=pairs) warned "2 series end with
    rows whose targets are missing ... Drop those trailing rows" (since silenced, so that the
    forecasts started after made-up values without a word, as a cutoff of predict there is
    warned of). One warning names the origins now, as the backtest's own (no cutoff to pass),
    counted over all folds; the made-up test points are the unscored points' warning."""
    frame = gappy_panel()
    model = RNNForecaster(**GAPPY_MODEL).fit(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = backtest(model, frame, folds=6, step=1)
    assert dt.date(2020, 6, 3) in result.folds["cutoff"].to_list()  # a filled step
    told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    origins = [m for m in told if "targets are missing" in m]
    assert len(origins) == 1, told
    assert origins[0].startswith(
        "backtest: 2 forecast origins of 2 series lie at rows whose targets are missing (e.g. "
        "'s0' at 2020-06-03, last observed at 2020-06-02): missing='ffill' fills them"
    ), origins
    assert (
        "place the folds (folds=, step=) at origins at which the targets are observed "
        in origins[0]
    )
    assert "(such as 2020-06-02)" in origins[0] and "Pass cutoffs" not in origins[0]
    assert any("12 of the 36 forecast points" in m for m in told), told  # unscored: named


_REPRODUCED_SCORES = """
import datetime as dt, hashlib, json
import numpy as np, polars as pl, torch
from forecaster import RNNForecaster
torch.set_num_threads(1)
rng = np.random.default_rng(0)
t = np.arange(30 * 24 + 100)
level = rng.uniform(5, 50, (40, 1))
y = level + np.sin(2 * np.pi * (t + rng.uniform(0, 24, (40, 1))) / 24) * level / 5
y = y + rng.normal(0, 0.5, y.shape) * level / 5
start = dt.datetime(2020, 1, 1)
times = pl.datetime_range(start, start + dt.timedelta(hours=t.size - 1), "1h", eager=True)
frame = pl.DataFrame({"id": np.repeat([f"s{i:02d}" for i in range(40)], t.size),
                      "time": pl.concat([times] * 40), "y": y.ravel()})
model = RNNForecaster(target="y", id_col="id", lookback=24, horizon=24, hidden_size=8,
                      max_epochs=1, windows_per_epoch=64, random_state=0, progress=False)
result = model.backtest(frame, folds=30)
def digest(frame):
    return hashlib.sha256(frame.write_csv(float_precision=17).encode()).hexdigest()
out = {k: [digest(getattr(result, k))] for k in ("metrics", "by_step", "aggregate", "baselines")}
for by in ([], ["fold"], ["id", "step"], ["fold", "step"]):
    out[f"score {by}"] = [digest(result.score(by)) for _ in range(3)]
scaler = result.estimators[0].scaler_
out["scaler"] = [digest(pl.DataFrame([scaler.center_.ravel(), scaler.scale_.ravel()]))]
print(json.dumps(out))
"""


def _reproduced_scores(threads: int) -> dict[str, list[str]]:
    """The digests of :data:`_REPRODUCED_SCORES`'s frames, run in a fresh interpreter with
    ``threads`` Polars threads."""
    import forecaster

    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    env["PYTHONPATH"] = str(Path(forecaster.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _REPRODUCED_SCORES], capture_output=True,
        text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_backtests_scores_are_the_same_bits_in_every_run_and_at_any_thread_count():
    """A backtest's score frames, its score() by any keys (each called three times) and its
    fold model's scaler statistics, in three fresh interpreters (two and one Polars
    threads): Polars' default engine (streaming) summed the scores' groups in another order
    each run, so score(["id", "step"]) differed from call to call at one thread as at two,
    and by_step, aggregate and score(["fold"]) differed between one and two threads. The
    scaler statistics were the same bits before (eager group-bys)."""
    runs = [_reproduced_scores(threads) for threads in (2, 2, 1)]
    different = {name: len({d for run in runs for d in run[name]}) for name in runs[0]}
    assert {name: n for name, n in different.items() if n > 1} == {}  # frames: how many


def test_a_backtest_of_a_few_series_forecasts_each_origin_as_predict_bit_for_bit():
    """A backtest runs all its folds' windows in one batch (here 3 series x 6 folds), predict
    from one cutoff the panel's 3 windows: the same forecasts to the last bit (the network's
    products of a few rows took BLAS kernels that add up in another order)."""
    frame = _frame(n_series=3, n=160)
    options = {**TINY, "hidden_size": 128, "lookback": 48, "horizon": 12, "segment_length": 12}
    model = RNNForecaster(target="y", id_col="id", baseline="none", **options)
    model.fit(frame.filter(pl.col("time") < dt.datetime(2024, 1, 4)))
    result = backtest(model, frame, folds=6)
    for cutoff in result.folds["cutoff"].unique().sort():
        own = model.predict(frame, cutoff=cutoff)
        got = result.forecasts.filter(pl.col("cutoff") == cutoff)
        assert got["y"].equals(own["y"]), cutoff


def test_backtest_of_a_fitted_model_returns_the_time_dtype_of_the_frame_given():
    """forecaster.backtest(model, frame) of a model fitted on microseconds, given
    nanoseconds (pandas' unit) or milliseconds, returned its tables in microseconds where
    model.backtest(frame) returned the frame's unit (session 36): a join on the frame's time
    column failed. Both are one call now, with the frame's dtype in every table."""
    frame = _frame(n_series=2)
    model = RNNForecaster(target="y", id_col="id", baseline="none", **TINY)
    model.fit(frame.filter(pl.int_range(pl.len()).over("id") < 90))
    for unit in ("ns", "ms"):
        given = frame.with_columns(pl.col("time").dt.cast_time_unit(unit))
        for result in (backtest(model, given, folds=2), model.backtest(given.lazy(), folds=2)):
            tables = (result.forecasts, result.metrics, result.folds, result.baselines)
            assert {t.schema["cutoff"] for t in tables} == {pl.Datetime(unit)}
            assert result.forecasts.schema["time"] == pl.Datetime(unit)
            joined = given.join(result.forecasts, on=["id", "time"], suffix="_forecast")
            assert joined.height == result.forecasts.height == 2 * 2 * 6


@pytest.mark.parametrize(
    "options", [{"cell": "rnn", "static": True}, {"cell": "lstm", "hidden_size": 128}]
)
def test_a_backtest_with_statics_or_the_lstm_forecasts_each_origin_as_predict(options):
    """The copies of a few windows are made before the statics are encoded, and with the LSTM
    too: predict from one cutoff of a 3-series panel gives the backtest's bits."""
    frame = _frame(n_series=3, n=160)
    static = options.get("static", False)
    if static:  # two numbers per series, read by the statics' encoder (products of a few rows)
        number = pl.col("id").str.slice(1).cast(pl.Float64)
        frame = frame.with_columns(size=number * 1.7 + 0.3, weight=(number - 1.2) ** 2)
    hidden = options.get("hidden_size", 64)
    tiny = {**TINY, "hidden_size": hidden, "lookback": 48, "horizon": 12, "segment_length": 12}
    model = RNNForecaster(
        target="y",
        id_col="id",
        baseline="none",
        cell=options["cell"],
        static_covariates=["size", "weight"] if static else None,
        **tiny,
    )
    model.fit(frame.filter(pl.col("time") < dt.datetime(2024, 1, 4)))
    result = backtest(model, frame, folds=6)
    differ = []
    for cutoff in result.folds["cutoff"].unique().sort():
        own = model.predict(frame, cutoff=cutoff)
        got = result.forecasts.filter(pl.col("cutoff") == cutoff)
        if not got["y"].equals(own["y"]):
            differ.append(cutoff)
    assert differ == []

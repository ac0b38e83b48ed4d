"""The batched backtest's scoring (forecaster/evaluation/fold_scores.py and the points of
forecaster/evaluation/folds.py): the scores by fold and series are grouped on each (fold,
series) block's number, and must be those of a group-by on the key columns themselves."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from forecaster import RNNForecaster
from forecaster.evaluation.backtest import backtest
from forecaster.evaluation.folds import fold_points
from forecaster.evaluation.metrics import PointColumns

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

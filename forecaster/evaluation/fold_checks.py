"""The checks of a rolling-origin backtest's arguments and of the names of its frame's
columns (see :mod:`forecaster.evaluation.backtest`), before anything is trained: the size of
its forecasts, the refits, the training window, the columns its output frames would clash
with, and the forecasts of a fold's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from forecaster._validation import check, check_allocation
from forecaster.data.checks import check_output_names
from forecaster.data.panel import Panel
from forecaster.data.wording import setting, settings_named
from forecaster.evaluation.metrics import TARGET_COLUMN
from forecaster.evaluation.score_names import check_score_keys
from forecaster.exceptions import DataValidationError, TooFewRowsError

__all__ = [
    "check_backtest_size",
    "check_forecast_rows",
    "check_reserved",
    "check_untrained_span",
    "check_window",
    "refit_every",
]


def check_backtest_size(folds: int, n_series: int, horizon: int, n_targets: int) -> None:
    """Refuse a backtest whose forecasts and scored points (``folds x series x horizon``
    rows) would not fit in memory (:func:`forecaster._validation.check_allocation`), before
    anything is allocated or trained."""
    rows = folds * n_series * horizon
    # per row: fold, cutoff, id, time, step, forecasts and actual values (float64), and per
    # target a scored point (keys, target, forecast, actual, scales as float64) and copies
    per_row = 128 + 320 * n_targets
    check_allocation(
        rows * per_row,
        what=f"The backtest's forecasts ({rows:,} rows: folds x series x horizon)",
        grows_with=f"folds={folds:,} x {n_series:,} series x horizon={horizon:,}",
        fix="Use fewer folds (or a larger step), a shorter horizon, or fewer series at a time.",
    )


def check_forecast_rows(
    predicted: pl.DataFrame, origins: int, first: int, model: Any, estimator: Any
) -> None:
    """Refuse a fold model's forecasts that leave origins out (``predict`` does so, with a
    warning, where an origin has fewer than ``lookback_`` rows): the folds were placed for
    the first fold's window, and a later fold's fit chose a longer one."""
    horizon = int(estimator.horizon)
    if predicted.height == origins * horizon:
        return
    missing = origins - predicted.height // horizon
    raise TooFewRowsError(
        f"The model fitted for fold {first} forecasts {origins - missing} of its {origins} "
        f"(series, origin) pairs: it chose lookback_={int(model.lookback_)} "
        f"({setting('lookback', estimator.lookback)}), more rows than {missing} origins have "
        "before their cutoff, although the folds were placed for the first fold's window. "
        f"Set a fixed {setting('lookback')} (e.g. {setting('lookback', int(model.lookback_))}), "
        f"fewer {settings_named('folds')}, or provide longer series."
    )


def refit_every(refit: Any, folds: int) -> int:
    """Folds per model: ``folds`` for refit=False, 1 for True, k for an integer k."""
    refit = check("refit", refit)
    if isinstance(refit, bool):
        return 1 if refit else folds
    return refit


def check_reserved(
    panel: Panel, id_col: str | None, time_col: str, scores: Sequence[str] | None = None
) -> None:
    """Refuse an id, time or target column named like another column of a backtest's
    forecasts (:func:`~forecaster.evaluation.folds.forecasts_frame`): ``fold``, ``cutoff``,
    ``step``, ``<target>_actual`` and an id named like a column of
    :func:`~forecaster.evaluation.folds.folds_frame` (``model``,
    :data:`~forecaster._columns.TRAIN_COLUMNS`), as ``fit`` refuses them
    (:func:`~forecaster.data.checks.check_output_names`); and, for a backtest that scores, an
    id or time column named ``target`` or an id named like a column of its score frames
    ``scores`` (:func:`~forecaster.evaluation.score_names.score_columns`; None: it scores nothing,
    as ``calibrate``'s). Covariates and static columns are in none of these frames: any name
    of theirs is accepted."""
    ids = () if id_col is None else (id_col,)
    check_output_names({"target": panel.targets, "id": ids, "time": (time_col,)})
    if scores is None:
        return
    check_score_keys(id_col, scores)
    clash = [c for c in (*ids, time_col) if c == TARGET_COLUMN]  # beside the keys there
    if clash:
        raise DataValidationError(
            f"Columns {clash} clash with the {TARGET_COLUMN!r} column of the backtest's scores, "
            "beside which they hold the id and time (covariates may have any name). Rename "
            f"them (e.g. frame.rename({{{clash[0]!r}: {clash[0] + '_value'!r}}}))."
        )


def check_untrained_span(gap: int, window: str) -> None:
    """Refuse ``gap`` and a sliding ``window`` for a backtest that trains nothing (a fitted
    model with ``refit=False``, used as it is): both shape only the spans folds train on."""
    if gap or window == "sliding":
        given = f"gap={gap}" if gap else "window='sliding'"
        raise DataValidationError(
            f"{given} shapes the span each fold trains on, and refit=False with a fitted "
            "model trains nothing: the model forecasts every fold as it was fitted. Pass "
            f"refit=True (or an integer) to train per fold, or leave {given.split('=')[0]} at "
            "its default."
        )


def check_window(window: Any, train_size: Any) -> tuple[str, int | None]:
    """``window`` and ``train_size``, checked together."""
    window, train_size = check("window", window), check("train_size", train_size)
    if window == "sliding":
        if train_size is None:
            raise DataValidationError(
                "window='sliding' needs train_size, the number of rows per series in each "
                "fold's training span (e.g. train_size=1000)."
            )
    elif train_size is not None:
        raise DataValidationError(
            "train_size applies to window='sliding' only; the expanding window trains on all "
            "rows up to each fold's training end. Pass window='sliding' or drop train_size."
        )
    return window, train_size

"""Probabilistic objectives of :func:`~forecaster.tuning.tune`: ``metric="pinball"``,
``"scrps"``, ``"msis"`` or ``"winkler"`` (of the 95 % interval, the M4's), or ``"msis_80"``,
``"winkler_80"``, ... for another level.

They score the quantile forecasts of a model that emits them (``loss="quantile"``) on its
validation span, the steps ``val_loss`` is measured on: every series is forecast from each
origin whose ``horizon`` targets lie in its last validation steps (steps of its regular
grid, with the gaps ``missing`` fills, as the fit holds them out; one batched ``predict``
call with the model's quantiles, or the level's bounds), and
:func:`forecaster.evaluation.evaluate` scores them against the data, on the original scale:
the pinball loss averaged over the quantiles, the scaled CRPS, or the Winkler score / MSIS of
the interval, scaled (sCRPS, MSIS) by each series' in-sample naive MAE (lag 1) over the data
before the validation span. Every score is minimized. A point model has no quantiles to score
while it is tuned: tune it on ``"val_loss"``, then calibrate the best model
(``best.calibrate(frame, refit=True)``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster._validation import MIN_LEVEL
from forecaster.data.panel import Panel
from forecaster.data.suspicious import MADE_UP_ORIGINS
from forecaster.estimators.forecaster import DEFAULT_QUANTILES
from forecaster.estimators.sampling import kept_series, validation_origins
from forecaster.evaluation import evaluate
from forecaster.evaluation.array_metrics import mase_scales
from forecaster.evaluation.folds import unscored_cells
from forecaster.evaluation.intervals import is_scaled_metric
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    InSampleWarning,
    StudyStopError,
    silenced,
)

__all__ = [
    "PROBABILISTIC_METRICS",
    "check_probabilistic",
    "probabilistic_score",
    "score_column",
    "unscaled_error",
    "unscaled_series",
]

PROBABILISTIC_METRICS = ("pinball", "scrps", "msis", "winkler")
"""The probabilistic metric names (``msis`` and ``winkler`` also as ``msis_<level>``)."""

_PER_LEVEL = re.compile(r"(msis|winkler)_(\d+(?:\.\d+)?)")


def score_column(metric: Any) -> str | None:
    """The score column of ``metric`` in :func:`~forecaster.evaluation.evaluate`'s output
    (``"msis"`` -> ``"msis_95"``), or None when it is not a probabilistic metric name."""
    if not isinstance(metric, str):
        return None
    if metric in ("pinball", "scrps"):
        return metric
    if metric in ("msis", "winkler"):
        return f"{metric}_95"
    match = _PER_LEVEL.fullmatch(metric)
    if match is None or not MIN_LEVEL < float(match.group(2)) < 100:
        return None
    return f"{match.group(1)}_{float(match.group(2)):g}"


def _level(column: str) -> float | None:
    return float(column.rsplit("_", 1)[1]) if "_" in column else None


def _quantiles(estimator: Any) -> list[float]:
    quantiles = estimator.get_params(deep=False).get("quantiles")
    return [float(q) for q in (quantiles if quantiles is not None else DEFAULT_QUANTILES)]


def check_probabilistic(estimator: Any, metric: str, direction: str) -> None:
    """Refuse a probabilistic ``metric`` that ``estimator`` cannot be scored on (before any
    trial): a model without quantiles, a level whose bounds are not among them, a maximized
    score (no validation split: :func:`forecaster.tuning.arguments.validation_split_problem`,
    the rule of every metric)."""
    params = estimator.get_params(deep=False)
    if direction != "minimize":
        raise DataValidationError(f"metric={metric!r} is minimized; use direction='minimize'.")
    if params.get("loss") != "quantile":
        raise DataValidationError(
            f"metric={metric!r} scores quantile forecasts, and this estimator emits none "
            f"(loss={params.get('loss')!r}). Tune a quantile model (loss='quantile', "
            "quantiles=[...]), or tune the point model on 'val_loss' and then calibrate the "
            "best one for intervals: best.calibrate(frame, refit=True)."
        )
    column = score_column(metric)
    level = _level(column) if column not in ("pinball", "scrps") else None  # type: ignore[arg-type]
    if level is not None:
        tail = round((1.0 - level / 100.0) / 2.0, 10)
        have = {round(q, 10) for q in _quantiles(estimator)}
        if tail not in have or round(1.0 - tail, 10) not in have:
            raise DataValidationError(
                f"metric={metric!r} scores the {level:g} % interval, bounded by the quantiles "
                f"{tail:g} and {1 - tail:g}, which the estimator does not emit (quantiles="
                f"{_quantiles(estimator)}). Add them to quantiles."
            )


def probabilistic_score(model: Any, frame: Any, metric: str) -> float:
    """The score ``metric`` of the fitted quantile ``model`` on the validation span of
    ``frame`` (see the module docstring).

    The origins are those of the fit's validation windows
    (:func:`~forecaster.estimators.sampling.validation_origins`): steps of each series' regular
    grid as the fit reads it (after ``missing`` fills its gaps), not rows of ``frame``, so
    that no forecast of the training span is scored. Forecasts are scored against the rows
    of ``frame`` (a filled step has no actual value and is not scored), and the scale of
    sCRPS and MSIS is taken on the grid up to the first origin (filled steps missing).
    """
    if getattr(model, "loss", None) != "quantile":
        raise StudyStopError(
            f"metric={metric!r} needs quantile forecasts, but a trial's model has "
            f"loss={getattr(model, 'loss', None)!r}: do not sample loss with this metric."
        )
    column = score_column(metric)
    assert column is not None
    data, panel = model.read_frame(frame, as_fitted=True)
    rows, origins, insample = _validation_span(model, data, panel)
    if is_scaled_metric(column):  # sCRPS, MSIS: evaluate's error would name MASE's remedy
        missing = model.get_params(deep=False).get("missing", "error")
        flat = unscaled_series(panel, rows, frame, missing)
        if flat.size:
            lookback = f"lookback={int(model.lookback_)}"
            raise unscaled_error(metric, panel, flat, f"this trial's score ({lookback})")
    keys = [model.id_col] if model.id_col else []
    level = _level(column) if column not in ("pinball", "scrps") else None
    # validation origins missing= filled are scored as the fit's validation loss scores
    # them; they lie inside the frame the trial fitted on (before its train_end_, the end of
    # its validation span), as the validation loss's windows do: not the user's in-sample
    # forecasts that predict warns of
    with silenced(ForecasterWarning, MADE_UP_ORIGINS), silenced(InSampleWarning):
        forecast = model.predict(
            data,
            cutoff=origins if keys else origins[model.time_col],
            quantiles=None if level is not None else _quantiles(model),
            level=None if level is None else [level],
        )
    observed = data.select(*keys, model.time_col)
    forecast = forecast.join(observed, on=[*keys, model.time_col], how="semi")  # no filled steps
    # the id is a join key here, pooled over: under a name of its own, since evaluate refuses
    # one that aggregate would read as a score (an id "mse"), which this pools nothing as
    key = {k: temporary_names([*data.columns, *forecast.columns], "_series")[0] for k in keys}
    scores = evaluate(
        forecast.rename(key),
        data.rename(key),
        target=model.target,
        time_col=model.time_col,
        id_col=key.get(model.id_col),
        insample=insample.rename(key) if is_scaled_metric(column) else None,  # winkler: unscaled
        metrics=["mae"],
        by=["origin"],
    )
    n = scores["n"].cast(pl.Float64).to_numpy()
    value = float((scores[column].cast(pl.Float64).to_numpy() * n).sum() / n.sum())
    if not math.isfinite(value):
        raise DataValidationError(f"The trial's {metric} is {value!r}, not a finite number.")
    return value


def _validation_span(
    model: Any, data: pl.DataFrame, panel: Panel
) -> tuple[np.ndarray, pl.DataFrame, pl.DataFrame]:
    """The rows of ``panel`` and the (id, time) origins of the fitted ``model``'s validation
    windows on it (the grid of ``data`` as the fit read it; of the series the fit keeps, with
    their hold-out, :func:`~forecaster.estimators.sampling.kept_series`), and the in-sample
    frame: each series' grid steps up to its first origin, with the targets of ``data``
    (null at the steps it lacks)."""
    horizon, id_col, time_col = int(model.horizon), model.id_col, model.time_col
    lookback = int(model.lookback_)
    _, holdout = kept_series(model.validation_size, panel, lookback, horizon)  # 0: left out
    rows = validation_origins(panel, holdout, lookback, horizon)
    if not rows.size:
        raise DataValidationError(
            "No series has a validation origin: none is long enough for lookback + horizon "
            "steps with its targets in the validation span. Use more data or a smaller "
            "lookback or horizon."
        )
    series = panel.series_of_rows()
    grid = pl.DataFrame({time_col: panel.time.cast(data.schema[time_col])})
    if id_col:
        ids = panel.keys[id_col].gather(series).cast(data.schema[id_col])
        grid = grid.with_columns(ids.alias(id_col)).select(id_col, time_col)
    first = np.full(panel.n_series, -1, dtype=np.int64)  # each series' first origin
    with_origins, at = np.unique(series[rows], return_index=True)  # rows ascend
    first[with_origins] = rows[at]
    before = panel.rows_until(first)
    targets = data.select(*grid.columns, *panel.targets)
    insample = grid.filter(pl.Series(before)).join(targets, on=grid.columns, how="left")
    return rows, grid[rows], insample


def unscaled_series(panel: Panel, rows: np.ndarray, frame: Any, missing: Any) -> np.ndarray:
    """The series of ``panel`` whose in-sample naive MAE (lag 1, over their targets of
    ``frame`` up to their first origin among the validation origins ``rows``), the scale of
    sCRPS and MSIS, is 0 (they do not change) or undefined (no two observed steps in a row:
    values that ``missing`` filled are not scored)."""
    series, first = np.unique(panel.series_of_rows()[rows], return_index=True)
    exact = panel.exact_targets(frame)  # the float64 values the score is taken on
    values = exact.values[:, : exact.n_targets]
    unscored = unscored_cells(exact, missing)  # values missing made up are not scored
    if unscored is not None:
        values = np.where(unscored, np.nan, values)
    ends = rows[first] - panel.offsets[series]  # each series' first origin, inclusive
    scales = mase_scales(values, panel.offsets, 1, ends=ends, series=series)
    return series[((scales == 0) | np.isnan(scales)).any(axis=1)]


def unscaled_error(metric: str, panel: Panel, flat: np.ndarray, scored: str) -> DataValidationError:
    """The error of a scaled ``metric`` (sCRPS, MSIS) whose scale the series ``flat`` lack
    (:func:`unscaled_series`), naming them and the unscaled metrics to tune on instead;
    ``scored``: what would be infinite or undefined (every trial's score, this trial's)."""
    names = panel.keys[panel.id_name].gather(flat).head(5).to_list() if panel.id_col else []
    which = f"series {names}{' ...' if len(flat) > 5 else ''}" if names else "the series"
    column = score_column(metric) or metric
    level = column.rsplit("_", 1)[1] if column != "scrps" else "95"
    return DataValidationError(
        f"metric={metric!r} divides each series' score by its in-sample naive MAE (lag 1, "
        f"over its data up to its first validation origin), and {which} ({len(flat)} in all) "
        "do not change there (scale 0) or have no two observed steps in a row there (no "
        f"scale: gaps that missing= filled are not scored): {scored} would be infinite or "
        f"undefined. Tune on an unscaled metric, metric='pinball' or metric='winkler_{level}', "
        "or leave those series out of the tuning data."
    )

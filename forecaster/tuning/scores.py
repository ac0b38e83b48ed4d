"""Probabilistic objectives of :func:`~forecaster.tuning.tune`: ``metric="pinball"``,
``"scrps"``, ``"msis"`` or ``"winkler"`` (of the 95 % interval, the M4's), or ``"msis_80"``,
``"winkler_80"``, ... for another level.

They score the quantile forecasts of a model that emits them (``loss="quantile"``) on its
validation span, the steps ``val_loss`` is measured on: every series is forecast from each
origin whose ``horizon`` targets lie in its last validation steps (one batched ``predict``
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

import polars as pl

from forecaster.estimators.forecaster import DEFAULT_QUANTILES
from forecaster.evaluation import evaluate
from forecaster.exceptions import DataValidationError, StudyStopError

__all__ = ["PROBABILISTIC_METRICS", "check_probabilistic", "probabilistic_score", "score_column"]

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
    if match is None or not 0 < float(match.group(2)) < 100:
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
    score, no validation span."""
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
    if params.get("validation_size") == 0:
        raise DataValidationError(
            f"metric={metric!r} is measured on the validation span, but validation_size=0 "
            "disables it. Set validation_size > 0 (e.g. 0.1)."
        )


def probabilistic_score(model: Any, frame: Any, metric: str) -> float:
    """The score ``metric`` of the fitted quantile ``model`` on the validation span of
    ``frame`` (see the module docstring)."""
    if getattr(model, "loss", None) != "quantile":
        raise StudyStopError(
            f"metric={metric!r} needs quantile forecasts, but a trial's model has "
            f"loss={getattr(model, 'loss', None)!r}: do not sample loss with this metric."
        )
    column = score_column(metric)
    assert column is not None
    horizon, id_col, time_col = int(model.horizon), model.id_col, model.time_col
    keys = [id_col] if id_col else []
    ordered = frame.sort([*keys, time_col])
    position, count = pl.int_range(pl.len()), pl.len()
    if keys:
        position, count = position.over(keys), count.over(keys)
    holdout = _holdout(model.validation_size, count, horizon)
    first = count - holdout - 1  # the first origin whose targets lie in the validation span
    origins = ordered.filter((position >= first) & (position <= count - 1 - horizon))
    insample = ordered.filter(position <= first)
    cutoff = origins.select([*keys, time_col]) if keys else origins[time_col]
    level = _level(column) if column not in ("pinball", "scrps") else None
    forecast = model.predict(
        ordered,
        cutoff=cutoff,
        quantiles=None if level is not None else _quantiles(model),
        level=None if level is None else [level],
    )
    scores = evaluate(
        forecast,
        ordered,
        target=model.target,
        time_col=time_col,
        id_col=id_col,
        insample=insample if column != "pinball" else None,
        metrics=["mae"],
        by=["origin"],
    )
    n = scores["n"].cast(pl.Float64).to_numpy()
    value = float((scores[column].cast(pl.Float64).to_numpy() * n).sum() / n.sum())
    if not math.isfinite(value):
        raise DataValidationError(f"The trial's {metric} is {value!r}, not a finite number.")
    return value


def _holdout(validation: Any, count: pl.Expr, horizon: int) -> pl.Expr:
    """Each series' validation steps as the estimator holds them out (an integer, or a
    fraction of the series' length rounded up), and at least ``horizon`` (one origin)."""
    if isinstance(validation, int):
        return pl.lit(max(int(validation), horizon))
    return pl.max_horizontal((count * float(validation)).ceil().cast(pl.Int64), pl.lit(horizon))

"""Forecast accuracy metrics and the M4 baseline forecasts.

Three layers, from the smallest:

- **Array metrics** on numpy arrays (or anything ``np.asarray`` accepts, e.g. a Polars Series),
  with scikit-learn's argument order ``(y_true, y_pred)``: :func:`mae`, :func:`mse`,
  :func:`rmse`, :func:`mape`, :func:`smape`, :func:`mase` (and its denominator
  :func:`mase_scale`), :func:`owa_score`; of intervals and quantiles :func:`pinball_loss`,
  :func:`coverage`, :func:`interval_width`, :func:`winkler_score`, :func:`msis` and
  :func:`scaled_crps` (:mod:`~forecaster.evaluation.interval_metrics`).
- **Frame metrics** (Polars in, Polars out): :func:`evaluate` scores a long forecast frame against
  the actual values per series and target (and its interval / quantile columns, see
  :mod:`~forecaster.evaluation.intervals`); :func:`aggregate` pools such per-series scores over
  the whole set (or over groups); :func:`owa` compares them with Naive2's scores.
- **Baselines** in the output format of :meth:`forecaster.RNNForecaster.predict`:
  :func:`naive`, :func:`seasonal_naive` (with split-conformal intervals on request) and
  :func:`naive2`, with :func:`seasonality_test`.

The definitions are those of the M4 competition (``Benchmarks and Evaluation.R`` in
github.com/Mcompetitions/M4-methods), and the baselines reproduce the official M4 Hourly and
Weekly scores of Naive, sNaive and Naive2 to the published 3 decimals (see ``tests``):

- sMAPE = mean of ``200 |y - ŷ| / (|y| + |ŷ|)`` (a point with ``y = ŷ = 0`` counts as 0);
- MAPE = mean of ``100 |y - ŷ| / |y|`` (infinite when some ``y`` is 0 and its forecast is
  not, with a warning naming the series; an exact forecast scores 0);
- MASE = mean ``|y - ŷ|`` divided by the in-sample mean of ``|y_t - y_{t-m}|`` of each series;
- OWA = ``(sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2``, where each sMAPE and MASE is the
  average over the whole set (all points of all series), as in M4.

Pooling: every metric of a group is the metric of all its points together. MAE, MSE, MAPE, sMAPE
and MASE are means over points (a series' MASE uses its own scale), so :func:`aggregate` weights
per-series values by their number of points ``n``, and RMSE is the root of the pooled MSE. With
the same horizon for every series this equals the plain average over series, as M4 computes it.

Modules: :mod:`~forecaster.evaluation.array_metrics`, :mod:`~forecaster.evaluation.frames`
(the checks and columns every score frame shares), :mod:`~forecaster.evaluation.scoring`
(:func:`evaluate`), :mod:`~forecaster.evaluation.pooling` (:func:`aggregate`, :func:`owa`) and
:mod:`~forecaster.evaluation.baselines`; this module gathers their names (the import path of
the metrics).
"""

from __future__ import annotations

from forecaster._columns import temporary_names as temporary_names
from forecaster.evaluation.array_metrics import (
    METRICS,
    float_values,
    mae,
    mape,
    mase,
    mase_scale,
    mse,
    owa_score,
    rmse,
    smape,
)
from forecaster.evaluation.baselines import naive, naive2, seasonal_naive, seasonality_test
from forecaster.evaluation.frames import (
    TARGET_COLUMN,
    PointColumns,
    align_keys,
    check_by,
    check_metric_names,
    check_scale_used,
    checked_frame,
    summarize_points,
)
from forecaster.evaluation.interval_metrics import (
    coverage,
    interval_width,
    msis,
    pinball_loss,
    scaled_crps,
    winkler_score,
)
from forecaster.evaluation.intervals import INTERVAL_METRICS, IntervalColumns
from forecaster.evaluation.pooling import aggregate, owa
from forecaster.evaluation.scoring import error_scale_frame, evaluate

__all__ = [
    "INTERVAL_METRICS",
    "METRICS",
    "TARGET_COLUMN",
    "IntervalColumns",
    "PointColumns",
    "aggregate",
    "align_keys",
    "check_by",
    "check_metric_names",
    "check_scale_used",
    "checked_frame",
    "coverage",
    "error_scale_frame",
    "evaluate",
    "float_values",
    "interval_width",
    "mae",
    "mape",
    "mase",
    "mase_scale",
    "mse",
    "msis",
    "naive",
    "naive2",
    "owa",
    "owa_score",
    "pinball_loss",
    "rmse",
    "scaled_crps",
    "seasonal_naive",
    "seasonality_test",
    "smape",
    "summarize_points",
    "winkler_score",
]

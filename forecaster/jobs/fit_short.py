"""The series a run's fit leaves out for being short, named as the run treats them.

A series shorter than one training window (``lookback + horizon`` rows, before the
validation hold-out) is left out of the fit: the estimator's ``fit`` says "Dropped N series
shorter than ...". A run forecasts such a series all the same when it has the lookback's rows
(the fitted model reads its last ``lookback`` rows; ``predict`` drops only those shorter than
the lookback, named in its own warning and in ``summary.json``'s ``dropped_series``). So the
run names them in its own words (:func:`run_panel`): left out of the fit, and which of them
are still forecast; the fit's warning, which would call them all dropped, is not given: the
run's panel and fit report the series they leave out to the run
(:func:`~forecaster.data.checks.dropped_series_to`, :func:`short_series_named_by_run`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import polars as pl

from forecaster.data.checks import DroppedGroups, dropped_series_to
from forecaster.data.frames import format_list
from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.jobs.intervals import spec_panel
from forecaster.jobs.outputs import Job, forecast_ids
from forecaster.jobs.schedule import absent_series

__all__ = ["run_panel", "short_series_named_by_run"]


def short_series_named_by_run() -> contextlib.AbstractContextManager[None]:
    """The block of the run's panel and fit: the series they leave out for being shorter than
    a training window are reported to the run (which names them with what it does with them,
    :func:`run_panel`), not warned about by the fit; those shorter than a fitted model's
    lookback still are."""

    def named_by_run(groups: DroppedGroups) -> None:
        """Nothing: :func:`run_panel` names them from the panel."""

    return dropped_series_to(named_by_run)


def run_panel(job: Job, estimator: Any, *, reuse: bool = False) -> Any:
    """The panel the run's fit reads (:func:`~forecaster.jobs.intervals.spec_panel`), the
    series it leaves out named in a ``ForecasterWarning`` with what the run does with them:
    forecast from their last ``lookback`` rows, or, shorter than the lookback, neither fitted
    nor forecast. ``reuse``: the run reuses the latest model where there is one
    (``training.reuse_model`` without ``--tune``), which this run does not fit: the warning
    says that a fit on this data would leave them out, not that the model was fitted so."""
    with short_series_named_by_run():
        panel = spec_panel(job.spec, estimator, job.frame)
    id_col = job.spec.series.id
    if id_col is None:
        return panel
    fitted = pl.DataFrame({id_col: panel.keys[panel.id_name]})
    left_out = absent_series(job.frame, fitted, id_col)
    if not left_out:
        return panel
    lookback = estimator.lookback_for(panel)
    made = forecast_ids(job, estimator, lookback)
    dropped = set(absent_series(job.frame, made, id_col)) if made is not None else set()
    forecast = [key for key in left_out if key not in dropped]
    lost = [key for key in left_out if key in dropped]
    window = f"lookback {lookback} + horizon {int(estimator.horizon)} rows"
    if estimator.validation_size:
        window += " before the validation hold-out"
    shorter = f"shorter than a training window ({window}): {format_list(left_out, 10)}"
    told = [f"The model is fitted without {len(left_out)} series {shorter}."]
    if reuse:
        told = [
            f"{len(left_out)} series {'is' if len(left_out) == 1 else 'are'} {shorter}: a "
            "model fitted on this data leaves them out (training.reuse_model forecasts with "
            "the latest model, fitted on earlier data, where there is one to reuse)."
        ]
    if forecast:
        told.append(
            f"{'The run' if reuse else 'It'} still forecasts {len(forecast)} of them from "
            f"their last {lookback} rows (its lookback): {format_list(forecast, 10)}."
        )
    if lost:
        told.append(
            f"{len(lost)} {'has' if len(lost) == 1 else 'have'} fewer rows than the lookback "
            f"and {'is' if len(lost) == 1 else 'are'} neither fitted nor forecast "
            f"(dropped_series): {format_list(lost, 10)}."
        )
    warn_at_caller(" ".join(told), ForecasterWarning)
    return panel

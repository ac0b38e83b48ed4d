"""Logging a fitted estimator into a run: :func:`log_fitted`, shared by a logged fit, by
:func:`~forecaster.tracking.log_fit` and by the best model of a study; :class:`FitLog` says
what it logged.

What it logs: the fit's records (see :mod:`forecaster.tracking.records`), the forecast plot
``forecast.png`` (a few series: history tail, held-out actuals, forecast) and the model as an
MLflow pyfunc (see :mod:`forecaster.tracking.pyfunc`). On any failure it keeps a local copy
and warns once (see :mod:`forecaster.tracking.resilience`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from forecaster.tracking.config import state
from forecaster.tracking.fingerprint import fingerprint_for
from forecaster.tracking.plot import forecast_plot
from forecaster.tracking.pyfunc import log_model
from forecaster.tracking.records import (
    backtest_metrics,
    backtest_tables,
    epoch_metrics,
    final_metrics,
    fit_record,
    log_inputs,
    log_metrics,
    log_params,
    log_tags,
    now_ms,
    resolved_params,
)
from forecaster.tracking.resilience import Outcome, save_fallback, warn_not_logged

__all__ = ["FitLog", "log_fitted"]


@dataclass
class FitLog:
    """What :func:`log_fit` (or a tracked ``fit``) logged.

    Attributes
    ----------
    run_id : str or None
        The run logged into; None when no run could be created.
    model_uri : str or None
        URI of the logged pyfunc model (``models:/<model id>``), for
        :func:`mlflow.pyfunc.load_model`.
    registered_version : str or None
        Model registry version, when registered.
    fallback_path : pathlib.Path or None
        Local folder holding the model and what was not logged, when logging failed.
    not_logged : list of str
        What was not logged (empty when everything was).
    """

    run_id: str | None = None
    model_uri: str | None = None
    registered_version: str | None = None
    fallback_path: Path | None = None
    not_logged: list[str] = field(default_factory=list)


def log_fitted(
    estimator: Any,
    data: Any,
    *,
    mlflow: Any,
    client: Any,
    outcome: Outcome,
    own_run: bool,
    inputs_logged: bool = False,
    live_epochs: int = 0,
    fingerprint: dict[str, Any] | None = None,
    fit_seconds: float | None = None,
    backtest: Any = None,
    plot: bool = True,
    register_as: str | None = None,
    param_prefix: str = "",
    params_as_tags: bool = False,
    context: str = "The fit itself is unaffected.",
) -> FitLog:
    """Log a fitted estimator into ``outcome.run_id`` (steps that fail are recorded in
    ``outcome``); on any failure keep a local copy and warn once."""
    from mlflow.entities import Metric

    run_id = outcome.run_id
    outcome.recheck()  # the server may answer again: then try (once more)
    if client is None and not outcome.broken:
        client = outcome.client(mlflow)
    if fingerprint is None:
        fingerprint = outcome.local("dataset fingerprint", fingerprint_for, estimator, data)
    metrics = final_metrics(estimator, fit_seconds)
    table = overall = None
    if backtest is not None:
        tables = outcome.local("backtest metrics", backtest_tables, backtest)
        table, overall = tables if tables is not None else (None, None)
    history = [r for r in getattr(estimator, "history_", []) if r["epoch"] > live_epochs]
    log = FitLog(run_id=run_id)
    with tempfile.TemporaryDirectory(prefix="forecaster-track-") as tmp:
        workdir = Path(tmp)
        model_dir = outcome.local("local model copy", estimator.save, workdir / "model")
        plot_file = None
        if plot and hasattr(estimator, "schema_") and isinstance(data, pl.DataFrame | pl.LazyFrame):
            plot_file = outcome.local(
                "forecast plot", _render_plot, estimator, data, workdir / "forecast.png"
            )
        csv = (
            None
            if table is None
            else outcome.local("backtest table", _write_csv, table, workdir / "backtest.csv")
        )
        if run_id is None:
            outcome.not_logged += ["params", "dataset fingerprint", "resolved params"]
            outcome.not_logged += ["per-epoch metrics", "final metrics", "forecast plot", "model"]
        else:
            if not inputs_logged and fingerprint is not None:
                outcome.remote(
                    "params and dataset fingerprint",
                    log_inputs,
                    client,
                    run_id,
                    estimator,
                    fingerprint,
                    prefix=param_prefix,
                    params_as_tags=params_as_tags,
                )
            chosen = resolved_params(estimator, param_prefix)
            log_chosen = log_tags if params_as_tags else log_params
            outcome.remote("resolved params", log_chosen, client, run_id, chosen)
            ts = now_ms()
            if history:
                what = f"per-epoch metrics from epoch {history[0]['epoch']}"
                epochs = [m for r in history for m in epoch_metrics(r, ts)]
                outcome.remote(what, log_metrics, client, run_id, epochs)
            final = [Metric(k, v, ts, 0) for k, v in metrics.items()]
            if table is not None:
                final += [Metric(k, v, ts, step) for k, v, step in backtest_metrics(table, overall)]
            outcome.remote("final metrics", log_metrics, client, run_id, final)
            for what, file in (("backtest table", csv), ("forecast plot", plot_file)):
                if file is not None:
                    outcome.remote(what, client.log_artifact, run_id, str(file))
            if model_dir is not None:
                info = outcome.remote(
                    "model", log_model, mlflow, run_id, estimator, data, model_dir, workdir,
                    register_as,
                )  # fmt: skip
                if info is not None:
                    log.model_uri = info.model_uri
                    version = getattr(info, "registered_model_version", None)
                    log.registered_version = None if version is None else str(version)
            if own_run:
                outcome.remote("run status", client.set_terminated, run_id, "FINISHED")
        log.not_logged = list(dict.fromkeys(outcome.not_logged))
        if log.not_logged:
            record = fit_record(estimator, fingerprint, metrics, table)
            log.fallback_path = save_fallback(outcome, estimator, model_dir, plot_file, record)
            log.not_logged = list(dict.fromkeys(outcome.not_logged))
            warn_not_logged(outcome, log.fallback_path, context)
    state.last = log
    return log


def _render_plot(estimator: Any, data: Any, path: Path) -> Path:
    forecast_plot(estimator, data).savefig(path, dpi=100)
    return path


def _write_csv(table: pl.DataFrame, path: Path) -> Path:
    table.write_csv(path)
    return path

"""Logging a fitted estimator into a run: :func:`log_fitted`, shared by a logged fit, by
:func:`~forecaster.tracking.log_fit` and by the best model of a study; :class:`FitLog` says
what it logged.

What it logs: the fit's records (see :mod:`forecaster.tracking.records`), the forecast plot
``forecast.png`` (a few series: history tail, held-out actuals, forecast) and the model as an
MLflow pyfunc (see :mod:`forecaster.tracking.pyfunc`). On any failure it keeps a local copy
and warns once (see :mod:`forecaster.tracking.resilience`).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from forecaster.tracking.config import state
from forecaster.tracking.fingerprint import fingerprint_for
from forecaster.tracking.plot import forecast_plot
from forecaster.tracking.pyfunc import log_model
from forecaster.tracking.records import (
    RESOLVED_ARTIFACT,
    backtest_metrics,
    backtest_tables,
    end_run,
    epoch_metrics,
    final_metrics,
    fit_record,
    log_inputs,
    log_metrics,
    log_params,
    log_tags,
    long_resolved,
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


_Step = tuple[str, "Path | None", Callable[[], Any]]
"""A remote step of :func:`log_fitted`: what it logs (for :class:`Outcome`), the local file it
needs (skipped when that was not written), the call."""


def log_fitted(
    estimator: Any,
    data: Any,
    *,
    mlflow: Any,
    client: Any,
    outcome: Outcome,
    own_run: bool,
    end_status: str = "FINISHED",
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
    ``outcome``); on any failure keep a local copy and warn once. A ``KeyboardInterrupt``
    while it logs is raised again after :func:`log_interrupted` (``outcome.interrupted``).
    ``own_run``: end the run, ``end_status`` (the status of a study's run that its ``tune``
    gives it) as the last step, KILLED after an interrupt."""
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
    log = FitLog(run_id=run_id)
    with tempfile.TemporaryDirectory(prefix="forecaster-track-") as tmp:
        workdir = Path(tmp)
        files = {"model": workdir / "model", "plot": workdir / "forecast.png"}
        files["backtest"] = workdir / "backtest.csv"
        plot = (
            plot and hasattr(estimator, "schema_") and isinstance(data, pl.DataFrame | pl.LazyFrame)
        )
        steps: list[_Step] = []
        if run_id is not None:
            steps = _remote_steps(
                estimator, data, mlflow, client, run_id, files, fingerprint, metrics,
                (table, overall), inputs_logged=inputs_logged, live_epochs=live_epochs,
                plot=plot, register_as=register_as, own_run=own_run, end_status=end_status,
                param_prefix=param_prefix, params_as_tags=params_as_tags,
            )  # fmt: skip
        else:
            outcome.not_logged += ["params", "dataset fingerprint", "resolved params"]
            outcome.not_logged += ["per-epoch metrics", "final metrics", "forecast plot", "model"]
        model_dir = plot_file = None
        pending = list(steps)  # not logged yet
        try:
            model_dir = outcome.local("local model copy", estimator.save, files["model"])
            if plot:
                plot_file = outcome.local(
                    "forecast plot", _render_plot, estimator, data, files["plot"]
                )
            if table is not None:
                outcome.local("backtest table", _write_csv, table, files["backtest"])
            while pending:
                what, needs, call = pending[0]
                result = None  # a step whose file was not written locally (recorded so)
                if needs is None or needs.exists():
                    result = outcome.remote(what, call)
                if what == "model" and result is not None:
                    log.model_uri = result.model_uri
                    version = getattr(result, "registered_model_version", None)
                    log.registered_version = None if version is None else str(version)
                pending.pop(0)
        except KeyboardInterrupt:  # Ctrl-C: what is not logged yet is said, and kept
            outcome.not_logged += [what for what, _, _ in pending]
            record = fit_record(estimator, fingerprint, metrics, table)
            log_interrupted(outcome, estimator, log, client, own_run, model_dir, plot_file, record)
            raise
        log.not_logged = list(dict.fromkeys(outcome.not_logged))
        if log.not_logged:
            record = fit_record(estimator, fingerprint, metrics, table)
            log.fallback_path = save_fallback(outcome, estimator, model_dir, plot_file, record)
            log.not_logged = list(dict.fromkeys(outcome.not_logged))
            warn_not_logged(outcome, log.fallback_path, context)
    state.last = log
    return log


RUN_STATUS = "run status"
"""What :class:`Outcome` calls the end of an own run (``end_status``, or KILLED after an
interrupt)."""


def _remote_steps(
    estimator: Any,
    data: Any,
    mlflow: Any,
    client: Any,
    run_id: str,
    files: dict[str, Path],
    fingerprint: dict[str, Any] | None,
    metrics: dict[str, float],
    backtest: tuple[pl.DataFrame | None, pl.DataFrame | None],
    *,
    inputs_logged: bool,
    live_epochs: int,
    plot: bool,
    register_as: str | None,
    own_run: bool,
    param_prefix: str,
    params_as_tags: bool,
    end_status: str = "FINISHED",
) -> list[_Step]:
    """The remote steps of :func:`log_fitted`, in order (see :data:`_Step`)."""
    from mlflow.entities import Metric

    steps: list[_Step] = []
    if not inputs_logged and fingerprint is not None:
        inputs = functools.partial(
            log_inputs, client, run_id, estimator, fingerprint, prefix=param_prefix,
            params_as_tags=params_as_tags, own_run=own_run,
        )  # fmt: skip
        steps.append(("params and dataset fingerprint", None, inputs))
    chosen = resolved_params(estimator, param_prefix)
    log_chosen = log_tags if params_as_tags else log_params
    steps.append(("resolved params", None, functools.partial(log_chosen, client, run_id, chosen)))
    whole = long_resolved(estimator)  # a param too long to hold its value (a pool's blend)
    if whole:
        resolved = functools.partial(client.log_dict, run_id, whole, RESOLVED_ARTIFACT)
        steps.append(("resolved params artifact", None, resolved))
    ts = now_ms()
    history = [r for r in getattr(estimator, "history_", []) if r["epoch"] > live_epochs]
    if history:
        epochs = [m for r in history for m in epoch_metrics(r, ts)]
        what = f"per-epoch metrics from epoch {history[0]['epoch']}"
        steps.append((what, None, functools.partial(log_metrics, client, run_id, epochs)))
    table, overall = backtest
    final = [Metric(k, v, ts, 0) for k, v in metrics.items()]
    if table is not None:
        final += [Metric(k, v, ts, step) for k, v, step in backtest_metrics(table, overall)]
    steps.append(("final metrics", None, functools.partial(log_metrics, client, run_id, final)))
    for what, key, wanted in (
        ("backtest table", "backtest", table is not None),
        ("forecast plot", "plot", plot),
    ):
        if wanted:
            steps.append((what, files[key], functools.partial(_upload, client, run_id, files[key])))
    model = functools.partial(
        log_model, mlflow, run_id, estimator, data, files["model"], files["model"].parent,
        register_as,
    )  # fmt: skip
    steps.append(("model", files["model"], model))
    if own_run:
        steps.append((RUN_STATUS, None, functools.partial(end_run, client, run_id, end_status)))
    return steps


def log_interrupted(
    outcome: Outcome,
    estimator: Any,
    log: FitLog,
    client: Any,
    own_run: bool,
    model_dir: Path | None,
    plot_file: Path | None,
    record: dict[str, Any],
) -> None:
    """After a ``KeyboardInterrupt`` while the end of a fit was logged (training had
    completed; ``outcome.not_logged`` lists what was not logged): the fit's own run ends
    KILLED (MLflow's status of a run stopped by its user), the model and what was not logged
    go to a fallback folder (quick: a local copy), and one warning says so; ``log`` (what
    :func:`~forecaster.tracking.last_fit` returns) tells of it. The caller raises the
    interrupt again."""
    outcome.interrupted = True
    outcome.not_logged = [what for what in outcome.not_logged if what != RUN_STATUS]
    run_id = outcome.run_id
    if own_run and run_id is not None:
        outcome.remote(RUN_STATUS, end_run, client, run_id, "KILLED")
    outcome.errors.insert(0, ("the end of the fit", KeyboardInterrupt("interrupted by the user")))
    if model_dir is None or not model_dir.is_dir():
        model_dir = None  # not saved completely: saved again
    if plot_file is None or not plot_file.is_file():
        plot_file = None
    log.fallback_path = save_fallback(outcome, estimator, model_dir, plot_file, record)
    log.not_logged = list(dict.fromkeys(outcome.not_logged))
    killed = own_run and run_id is not None and RUN_STATUS not in log.not_logged
    warn_not_logged(
        outcome,
        log.fallback_path,
        "Interrupted while the fit was logged (training had completed): the fitted estimator "
        f"is kept{'; its run is marked KILLED' if killed else ''}. Log it again with "
        "forecaster.tracking.log_fit(estimator, frame) (a new run), or save it with "
        "estimator.save(path).",
    )
    state.last = log


def _upload(client: Any, run_id: str, path: Path) -> None:
    client.log_artifact(run_id, str(path))  # a file of the artifact store: no database row


def _render_plot(estimator: Any, data: Any, path: Path) -> Path:
    forecast_plot(estimator, data).savefig(path, dpi=100)
    return path


def _write_csv(table: pl.DataFrame, path: Path) -> Path:
    table.write_csv(path)
    return path

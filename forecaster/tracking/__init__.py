"""MLflow tracking of fits and tuning studies (optional extra ``track``).

One MLflow run per fit holds the estimator's parameters, a dataset fingerprint, the per-epoch
losses (live), final and backtest metrics, a forecast plot and the model as an MLflow pyfunc.
Tracking is opt-in and explicit: pass a :class:`FitLogger` to ``fit(callbacks=[...])``, or call
:func:`autolog` to log every fit; fitting inside ``with mlflow.start_run():`` alone no longer
logs. Tracking never breaks training, and a dead tracking store costs seconds, not minutes.

The modules, in import order:

- :mod:`~forecaster.tracking.config`: defaults, HTTP limits (:func:`bounded_requests`), the
  module state, :func:`mask_uri`;
- :mod:`~forecaster.tracking.resilience`: the health probe, error classification, the local
  fallback store;
- :mod:`~forecaster.tracking.target`: :func:`configure`, where runs go (:func:`experiment_scope`
  for a block);
- :mod:`~forecaster.tracking.fingerprint`: :func:`dataset_fingerprint`;
- :mod:`~forecaster.tracking.plot`: :func:`forecast_plot`;
- :mod:`~forecaster.tracking.records`: what a fit logs, as MLflow records;
- :mod:`~forecaster.tracking.pyfunc`: the servable model (through the estimator's
  ``predict``) and its signature;
- :mod:`~forecaster.tracking.serving`: the pyfunc's ``predict``, what a request gets back;
- :mod:`~forecaster.tracking.wheel`: the package's wheel shipped with logged models
  (``package_wheel``, ``FORECASTER_WHEEL``);
- :mod:`~forecaster.tracking.fitlog`: logging a fitted estimator into a run (:class:`FitLog`);
- :mod:`~forecaster.tracking.blocks`: :func:`paused`, :func:`deferred`;
- :mod:`~forecaster.tracking.fitrun`: the logging of one fit while it runs;
- :mod:`~forecaster.tracking.runs`: :class:`FitLogger`, :func:`autolog`, :func:`log_fit`,
  :func:`last_fit`;
- :mod:`~forecaster.tracking.studyrun`: where a study's run goes, how it is found again;
- :mod:`~forecaster.tracking.optuna`: :func:`log_study`; :mod:`~forecaster.tracking.trialruns`:
  :func:`trial_callback`.

Examples
--------
>>> from forecaster import tracking
>>> tracking.DEFAULT_TRACKING_URI
'sqlite:///mlflow/mlflow.db'
"""

from __future__ import annotations

from typing import Any

from forecaster.exceptions import TrackingUnavailableError
from forecaster.tracking.blocks import deferred, paused
from forecaster.tracking.config import (
    DEFAULT_ARTIFACT_ROOT,
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_EXPERIMENT,
    DEFAULT_FALLBACK_DIR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TRACKING_URI,
    FALLBACK_KIND,
    MAX_REQUEST_TIMEOUT,
    PROBE_INTERVAL,
    PROBE_TIMEOUT,
    SECRET_QUERY_WORDS,
    TrackingTarget,
    bounded_requests,
    default_tracking_uri,
    mask_uri,
    request_limits,
)
from forecaster.tracking.fingerprint import dataset_fingerprint
from forecaster.tracking.fitlog import FitLog
from forecaster.tracking.optuna import log_study
from forecaster.tracking.plot import forecast_plot
from forecaster.tracking.pyfunc import load_model_directory, pyfunc_class
from forecaster.tracking.runs import FitLogger, autolog, autolog_enabled, last_fit, log_fit
from forecaster.tracking.target import configure, experiment_scope, process_choice_restored
from forecaster.tracking.trialruns import trial_callback

__all__ = [
    "DEFAULT_ARTIFACT_ROOT",
    "DEFAULT_BACKOFF_FACTOR",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_FALLBACK_DIR",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_TRACKING_URI",
    "FALLBACK_KIND",
    "MAX_REQUEST_TIMEOUT",
    "PROBE_INTERVAL",
    "PROBE_TIMEOUT",
    "SECRET_QUERY_WORDS",
    "FitLog",
    "FitLogger",
    "TrackingTarget",
    "TrackingUnavailableError",
    "autolog",
    "autolog_enabled",
    "bounded_requests",
    "configure",
    "dataset_fingerprint",
    "default_tracking_uri",
    "deferred",
    "experiment_scope",
    "forecast_plot",
    "last_fit",
    "log_fit",
    "log_study",
    "mask_uri",
    "paused",
    "process_choice_restored",
    "request_limits",
    "trial_callback",
]


def _load_pyfunc(data_path: str) -> Any:
    """MLflow's pyfunc loader entry point for models logged by earlier versions, whose
    ``loader_module`` is ``forecaster.tracking`` (new models name
    ``forecaster.tracking.pyfunc``)."""
    return load_model_directory(data_path)


def __getattr__(name: str) -> Any:
    if name == "ForecasterPyfunc":  # built on first use: it subclasses an mlflow class
        return pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

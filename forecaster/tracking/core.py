"""MLflow tracking of fits and tuning studies (optional extra ``track``).

One MLflow run per fit holds

- every estimator parameter (params) and the estimator class and package version (tags);
- a dataset fingerprint: columns, dtypes, rows, series count, time span and a content hash
  (params ``data.*`` and the artifact ``dataset.json``);
- the per-epoch ``train_loss``, ``val_loss``, ``lr`` and ``epoch_seconds`` as step metrics
  (``step`` is the epoch), logged live while training;
- final metrics: ``best_val_loss``, ``best_epoch``, ``final_train_loss``, ``epochs``,
  ``fit_seconds``, ``train_seconds``, ``train_windows``, ``val_windows``,
  ``windows_per_second``;
- backtest metrics by horizon step, when given (``backtest_<metric>`` with ``step`` = horizon
  step, plus ``backtest_<metric>_overall`` and the table as ``backtest.csv``);
- a forecast plot ``forecast.png`` (a few series: history tail, held-out actuals, forecast);
- the model, as an MLflow pyfunc whose data is the saved model directory of
  :func:`forecaster.save` (config JSON, safetensors weights, keys parquet). It is logged with
  ``loader_module="forecaster.tracking.core"``, so nothing is pickled and no code file is written
  (MLflow 3 refuses to unpickle models by default, and a ``.py`` file in the default artifact
  store under ``mlflow/`` must be avoided): :func:`mlflow.pyfunc.load_model` calls
  ``forecaster.tracking.core._load_pyfunc``, which loads the directory with
  :func:`forecaster.load`. It predicts from a pandas or polars frame (or a dict of columns)
  in the long format of the training frame and returns the forecast as a pandas frame;
  ``params={"cutoff": ...}`` forecasts from that time (ISO text, or an int for integer time
  columns). Its signature declares the output and the ``cutoff`` parameter but no input
  schema: MLflow's schema enforcement refused what ``predict`` accepts (an integer column
  for a float one, a Categorical id, a polars frame) with its own errors, so ``predict``
  checks the input itself, as the native ``predict`` does, with forecaster's errors (after
  restoring dtypes a trip through pandas or JSON changed: dates that came back as midnight
  datetimes, ISO text). Unknown ``params`` are dropped by MLflow before ``predict`` sees them
  (with a log message of MLflow's).

When a fit is logged
--------------------
``fit`` logs when an MLflow run is active (``with mlflow.start_run(): model.fit(frame)``) or
after :func:`autolog`. The first fit inside an active run logs into it; later fits inside the
same active run (e.g. a grid search) log into nested child runs. Without an active run,
:func:`autolog` starts and ends one run per fit. :func:`paused` switches the fit hook off for a
block (tuning uses it: trials are logged by :func:`trial_callback` instead). ``fit`` checks only
whether ``mlflow`` was already imported, so it never imports mlflow (about a second) itself.
:func:`last_fit` returns what the latest fit logged (run ID, model URI, what failed).

Where runs go
-------------
Explicitly set tracking URIs win (``mlflow.set_tracking_uri``, ``MLFLOW_TRACKING_URI``).
Otherwise the default is ``sqlite:///mlflow/mlflow.db`` relative to the working directory, with
artifacts under ``mlflow/artifacts`` (set explicitly on the experiments created here, because
MLflow's own default differs between versions). Runs go to the experiment set with
``mlflow.set_experiment`` (or ``MLFLOW_EXPERIMENT_NAME`` / ``MLFLOW_EXPERIMENT_ID``) with a
tracking URI that was set explicitly, else to the experiment ``"forecaster"``. See
:func:`configure`.

Fault tolerance
---------------
Tracking never breaks training, and a dead tracking server costs seconds, not minutes.

- Before its first request, a fit, :func:`log_study`, :func:`trial_callback` and
  :func:`configure` probe the tracking store once: an ``http(s)://`` server with
  ``GET /health`` (:data:`PROBE_TIMEOUT` seconds); a PostgreSQL, MySQL or SQL Server store
  with a TCP connection to its host and port (same timeout); a SQLite store by checking that
  the file is a SQLite database this user can write, in a folder where it can create files
  (the folder is created first, as MLflow would). A store that refuses the connection,
  does not answer, has a name that does not resolve, answers with a 5xx status or no HTTP at
  all, or cannot be written is *unreachable*: nothing is sent to it (:func:`configure` raises
  :class:`TrackingUnavailableError`). A store that answered, or did not answer within the
  timeout, is remembered for :data:`PROBE_INTERVAL` seconds, so a grid search or a study pays
  the timeout once; one found down at once (refused, HTTP 5xx, unwritable) is asked again at
  the next check (the end of the fit: a server restarted meanwhile gets the fit's records).
- MLflow retries opening a SQLAlchemy store (``mlflow.store.db.utils.MAX_RETRY_COUNT``, 10
  attempts with a doubling sleep: about 100 s per store, 200 s for a fit). MLflow has no
  setting for it, so inside :func:`bounded_requests` forecaster lowers it to
  ``max_retries + 1`` attempts (restored after the block), and sets ``PGCONNECT_TIMEOUT`` (a
  PostgreSQL connection's timeout) to ``request_timeout`` unless you set it.
- Secrets in tracking URIs and storage URLs are masked (``user:***@host``, ``https://***@host``,
  ``?token=***``, ``&X-Amz-Signature=***``: the query parameters named by
  :data:`SECRET_QUERY_WORDS`) in every warning, error and fallback record (:func:`mask_uri`).
- Every request forecaster sends runs inside :func:`bounded_requests`: MLflow's HTTP timeout,
  retry count and backoff are :data:`DEFAULT_REQUEST_TIMEOUT` s, :data:`DEFAULT_MAX_RETRIES`
  and :data:`DEFAULT_BACKOFF_FACTOR` unless you set them, with
  ``configure(request_timeout=..., max_retries=...)`` (wins for forecaster's requests) or
  MLflow's environment variables ``MLFLOW_HTTP_REQUEST_TIMEOUT``,
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (kept as you set
  them). MLflow's own defaults (120 s, 7 retries with exponential backoff: about four minutes
  per request against a dead server) apply to your own ``mlflow.*`` calls outside these blocks.
- When a request fails because the backend is unreachable, live logging stops for the rest of
  the fit. At the end of the fit the server is probed again (when the last probe is older than
  :data:`PROBE_INTERVAL`): if it answers, what was missed is logged (the epoch history is
  complete); if not, the model plus everything that was not logged (params, dataset
  fingerprint, history, metrics, plot) are written to a new folder
  ``mlflow/unlogged/<time>-<run id>-<token>/`` under the working directory by default
  (``configure(fallback_dir=...)``, never inside a folder forecaster wrote, such as a saved
  model; ``model/`` reloads with :func:`forecaster.load`, ``run.json`` holds the records,
  ``manifest.json`` the checksums). The folder is written in a hidden staging folder and
  renamed into place, never over an existing one. Besides these
  folders (and the folder of a local SQLite store) tracking writes no file, and it deletes
  none outside its own temporary folders. One
  :class:`~forecaster.exceptions.ForecasterWarning` says what was not logged and where it is.
  (A run created before the server went away stays RUNNING on it.) A fit that raises leaves its
  own run FAILED.

Tuning
------
:func:`log_study` creates (or finds again) a parent run for an Optuna study and
:func:`trial_callback` logs each finished trial as a nested child run. The parent run is found
by the study's key (tag ``forecaster.study_key``: a token kept in the study's own user
attributes, its name and its task), never by its name alone: a study resumed from its storage
keeps its run, an in-memory study or one created again under an old name gets a new one. What
may change between resumes (the data, the template's parameters, sampler, pruner) is logged
as tags, plus one version of params ``data.<n>.*`` per dataset::

    parent = tracking.log_study(study, estimator, frame)      # before optimize
    study.optimize(objective, callbacks=[tracking.trial_callback(parent)])
    tracking.log_study(study, estimator, frame, best_estimator=best)   # summary + best model

Examples
--------
>>> from forecaster import tracking
>>> tracking.DEFAULT_TRACKING_URI
'sqlite:///mlflow/mlflow.db'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import importlib.metadata
import json
import math
import numbers
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

import forecaster
from forecaster import _io
from forecaster.data.core import check_schema, collect_frame, frame_schema
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    "TrackingTarget",
    "TrackingUnavailableError",
    "autolog",
    "bounded_requests",
    "configure",
    "dataset_fingerprint",
    "default_tracking_uri",
    "forecast_plot",
    "last_fit",
    "log_fit",
    "log_study",
    "mask_uri",
    "paused",
    "request_limits",
    "trial_callback",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow/mlflow.db"
"""Tracking store used when none is set (relative to the working directory)."""
DEFAULT_ARTIFACT_ROOT = "mlflow/artifacts"
"""Artifact root of the experiments created on the default store."""
DEFAULT_EXPERIMENT = "forecaster"
"""Experiment used when none is set with ``mlflow.set_experiment`` or the environment."""
DEFAULT_FALLBACK_DIR = "mlflow/unlogged"
"""Where a fit that could not be logged leaves its model and records."""
INSTALL_HINT = 'pip install "forecaster[track]"'
MODEL_NAME = "model"
"""Name of the logged model inside a run."""
DEFAULT_REQUEST_TIMEOUT = 10
"""Seconds MLflow waits to connect to, or for an answer from, the tracking server in
forecaster's requests (MLflow's own default: 120)."""
DEFAULT_MAX_RETRIES = 2
"""Retries of a failed request in forecaster's requests (MLflow's own default: 7)."""
DEFAULT_BACKOFF_FACTOR = 1
"""Backoff factor between those retries, seconds (MLflow's own default: 2)."""
PROBE_TIMEOUT = 3.0
"""Seconds the reachability probe (``GET /health``) of an HTTP tracking server waits at most."""
PROBE_INTERVAL = 30.0
"""Seconds the answer of a probe is trusted: a store that answered, one that did not answer
within :data:`PROBE_TIMEOUT`, one whose request failed. A probe that failed at once
(connection refused, HTTP 5xx, a SQLite folder that cannot be written) is repeated at the next
check, as it costs nothing."""
MAX_REQUEST_TIMEOUT = 3600
"""Largest ``request_timeout`` accepted by :func:`configure` (seconds)."""
FALLBACK_KIND = "unlogged-fit"
"""Kind of the fallback folders in their ``manifest.json`` (see :mod:`forecaster._io`)."""
_HTTP_ENV = {
    "request_timeout": "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
}
_HTTP_DEFAULTS = {
    "request_timeout": DEFAULT_REQUEST_TIMEOUT,
    "max_retries": DEFAULT_MAX_RETRIES,
    "backoff_factor": DEFAULT_BACKOFF_FACTOR,
}
_MAX_RETRIES_LIMIT = 10  # MLflow refuses more (_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)
_CHEAP_PROBE = 0.5  # seconds: a probe that failed faster than this is not cached
_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}
_SQLITE_HEADER = b"SQLite format 3\x00"

_PLOT_SERIES = 4
_MAX_PARAM_CHARS = 6000
_MAX_PARAMS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_STEP_COLUMNS = ("step", "horizon_step", "h", "horizon")
_NOT_METRICS = ("fold", "cutoff", "series", "window", "n", "model")
_TARGET_COLUMN = "target"
_TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


# ------------------------------------------------------------------------------------------
# module state
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: the result of :func:`configure`.

    Attributes
    ----------
    tracking_uri : str
    experiment_id : str
    experiment_name : str
    artifact_location : str or None
        Artifact location of the experiment when set here (local stores), else None (the
        server's default).
    """

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    artifact_location: str | None


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


class TrackingUnavailableError(ForecasterError, ConnectionError):
    """The tracking backend cannot be reached (raised by :func:`configure`; inside a fit or a
    study it is a warning and the records go to the fallback folder)."""


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.autolog = False
        self.paused = 0
        self.target: TrackingTarget | None = None
        self.fallback_dir: Path | None = None
        self.fitted_runs: set[str] = set()  # active runs that already hold a fit
        self.last: FitLog | None = None
        self.limits: dict[str, int] = {}  # set with configure(request_timeout=..., ...)
        # uri -> (when, reason if down, seconds the answer is trusted)
        self.probes: dict[str, tuple[float, str | None, float]] = {}
        self.bounded_depth = 0
        self.bounded_saved: dict[str, str | None] = {}
        self.bounded_db_retries: int | None = None  # MLflow's own value while ours is set


_state = _State()
_PYFUNC_CLASS: type | None = None


def _import_mlflow() -> Any:
    """Import mlflow or raise an ImportError that says how to install it."""
    try:
        import mlflow.pyfunc

        import mlflow
        from mlflow import MlflowClient  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"forecaster.tracking.core needs MLflow (and matplotlib for plots), which are not "
            f"installed: {INSTALL_HINT}"
        ) from exc
    if not hasattr(mlflow, "start_run"):  # e.g. a folder named mlflow/ shadowing the library
        raise ImportError(
            f"'import mlflow' found {getattr(mlflow, '__path__', mlflow)!r}, not the MLflow "
            f"library (a folder named mlflow shadows it). Install it with {INSTALL_HINT} or "
            "run from another directory."
        )
    return mlflow


# ------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------


def default_tracking_uri() -> str:
    """The tracking URI used when none is given: ``MLFLOW_TRACKING_URI`` if set, else
    ``sqlite:///mlflow/mlflow.db`` (relative to the working directory).

    Examples
    --------
    >>> import os
    >>> default_tracking_uri() == (os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)
    True
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _local_artifact_root(uri: str) -> Path | None:
    """Artifact root for a local SQLite store: ``artifacts`` next to the database file
    (``mlflow/artifacts`` for the default store); None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :]
    if not db or db.startswith(":memory:"):
        return None
    return Path(db).parent / "artifacts"


def _prepare_local_store(uri: str) -> None:
    """Create the folder of a local SQLite database (MLflow does not)."""
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///") :]
        if db and not db.startswith(":memory:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)


def configure(
    tracking_uri: str | None = None,
    experiment: str | None = None,
    *,
    fallback_dir: str | os.PathLike[str] | None = None,
    request_timeout: float | None = None,
    max_retries: int | None = None,
) -> TrackingTarget:
    """Set where runs go (for the whole process, like ``mlflow.set_tracking_uri``).

    Parameters
    ----------
    tracking_uri : str, optional
        Tracking URI; default :func:`default_tracking_uri` (``MLFLOW_TRACKING_URI`` or
        ``sqlite:///mlflow/mlflow.db``). The folder of a local SQLite file is created.
    experiment : str, optional
        Experiment name; default ``MLFLOW_EXPERIMENT_NAME`` or ``"forecaster"``. Created when
        missing; on a local SQLite store with its artifacts in an ``artifacts`` folder next to
        the database (``mlflow/artifacts/<experiment>`` for the default store).
    fallback_dir : str or path-like, optional
        Folder for fits that could not be logged (default ``mlflow/unlogged``); never one
        that is, or lies inside, a folder forecaster wrote (a saved model, a pipeline run). A
        fallback folder that became one later is not written: the records go to the default
        folder, with a warning.
    request_timeout : float, optional
        Seconds forecaster's requests wait to connect or for an answer (rounded up to whole
        seconds, as MLflow takes them), above 0 and at most :data:`MAX_REQUEST_TIMEOUT` (an
        hour). Default ``MLFLOW_HTTP_REQUEST_TIMEOUT`` when set, else
        :data:`DEFAULT_REQUEST_TIMEOUT`. The reachability probe waits at most
        ``min(request_timeout, PROBE_TIMEOUT)``.
    max_retries : int, optional
        Retries of a failed request, 0 to 10. Default ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` when
        set, else :data:`DEFAULT_MAX_RETRIES`.

    Returns
    -------
    TrackingTarget

    Raises
    ------
    DataValidationError
        For an argument of the wrong type or range.
    TrackingUnavailableError
        When the tracking store cannot be reached or written (within seconds: see the module
        docs; a server, a database server, a SQLite file or folder). The URI (password
        masked in the message) and the settings are kept; fits still train and keep their
        records locally.
    ForecasterError
        When the tracking store refuses the experiment (e.g. a URI MLflow cannot use).

    Examples
    --------
    >>> configure("http://tracking.example:5000", request_timeout=0)
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: request_timeout must be a positive number ...
    """
    limits = _check_limits(request_timeout, max_retries)
    for arg, value in (("tracking_uri", tracking_uri), ("experiment", experiment)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise DataValidationError(f"{arg} must be a non-empty string or None, got {value!r}.")
    if fallback_dir is not None:
        _check_fallback_root(_io.as_path(fallback_dir, "fallback_dir"))
    mlflow = _import_mlflow()
    uri = tracking_uri or default_tracking_uri()
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    with _state.lock:
        _state.limits.update(limits)
        if fallback_dir is not None:
            _state.fallback_dir = Path(fallback_dir)
        with bounded_requests():
            try:
                down = _unreachable_reason(uri)  # before anything waits on the store
                if down is None:
                    _prepare_local_store(uri)
                    mlflow.set_tracking_uri(uri)
                    uri = mlflow.get_tracking_uri()
                    down = _unreachable_reason(uri)
                if down is not None:
                    mlflow.set_tracking_uri(uri)  # kept: fits keep their records locally
                    raise TrackingUnavailableError(_unreachable_message(uri, down))
                location = _experiment_location(uri, name)
                experiment_id = _ensure_experiment(mlflow.MlflowClient(uri), name, location)
                mlflow.set_experiment(experiment_id=experiment_id)
            except ForecasterError:
                raise
            except Exception as exc:
                kind = TrackingUnavailableError if _is_unreachable(exc) else ForecasterError
                if kind is TrackingUnavailableError:
                    _mark_down(uri, _short(exc))
                raise kind(
                    f"Cannot use the MLflow tracking store {mask_uri(uri)} (experiment "
                    f"{name!r}): {_short(exc)}. Check the tracking URI (MLFLOW_TRACKING_URI or "
                    "forecaster.tracking.core.configure) and that the store is reachable."
                ) from exc
        _state.target = TrackingTarget(uri, experiment_id, name, location)
        return _state.target


def _check_limits(request_timeout: Any, max_retries: Any) -> dict[str, int]:
    limits: dict[str, int] = {}
    if request_timeout is not None:
        if (
            isinstance(request_timeout, bool)
            or not isinstance(request_timeout, numbers.Real)
            or not math.isfinite(request_timeout)
            or not 0 < request_timeout <= MAX_REQUEST_TIMEOUT
        ):
            raise DataValidationError(
                f"request_timeout must be a positive number of seconds up to "
                f"{MAX_REQUEST_TIMEOUT} (an hour), got {request_timeout!r}. It bounds every "
                "request to the tracking server; e.g. request_timeout=30."
            )
        limits["request_timeout"] = math.ceil(request_timeout)
    if max_retries is not None:
        if (
            isinstance(max_retries, bool)
            or not isinstance(max_retries, numbers.Integral)
            or not 0 <= max_retries <= _MAX_RETRIES_LIMIT
        ):
            raise DataValidationError(
                f"max_retries must be an integer from 0 to {_MAX_RETRIES_LIMIT}, got "
                f"{max_retries!r}."
            )
        limits["max_retries"] = int(max_retries)
    return limits


def request_limits() -> dict[str, int]:
    """The HTTP settings of forecaster's tracking requests: ``request_timeout`` (seconds),
    ``max_retries`` and ``backoff_factor``.

    Each is the value given to :func:`configure`, else MLflow's environment variable when set,
    else forecaster's default (:data:`DEFAULT_REQUEST_TIMEOUT`, :data:`DEFAULT_MAX_RETRIES`,
    :data:`DEFAULT_BACKOFF_FACTOR`).

    Examples
    --------
    >>> sorted(request_limits())
    ['backoff_factor', 'max_retries', 'request_timeout']
    """
    limits = {}
    for key, variable in _HTTP_ENV.items():
        value: Any = _state.limits.get(key)
        if value is None:
            try:
                value = int(os.environ[variable])
            except (KeyError, ValueError):
                value = _HTTP_DEFAULTS[key]
        limits[key] = value
    return limits


@contextlib.contextmanager
def bounded_requests() -> Iterator[None]:
    """Within this block MLflow's HTTP requests use :func:`request_limits` (forecaster's short
    timeout and small retry budget) instead of MLflow's defaults.

    forecaster's own tracking calls run inside it; wrap your own ``mlflow.*`` calls in it to
    give them the same limits. It sets MLflow's environment variables for the block (those you
    set yourself stay as they are, unless :func:`configure` was given a value) and restores
    them afterwards; nested and concurrent blocks share one setting.

    Examples
    --------
    >>> import os
    >>> with bounded_requests():
    ...     int(os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) == request_limits()["max_retries"]
    True
    """
    with _state.lock:
        state = _state
        if state.bounded_depth == 0:
            state.bounded_saved = {}
            limits = request_limits()
            for key, value in limits.items():
                variable = _HTTP_ENV[key]
                if variable in os.environ and key not in state.limits:
                    continue  # the user's own setting
                state.bounded_saved[variable] = os.environ.get(variable)
                os.environ[variable] = str(value)
            if "PGCONNECT_TIMEOUT" not in os.environ:  # libpq: a PostgreSQL store's connect
                state.bounded_saved["PGCONNECT_TIMEOUT"] = None
                os.environ["PGCONNECT_TIMEOUT"] = str(limits["request_timeout"])
        state.bounded_depth += 1
        _limit_database_retries()
    try:
        yield
    finally:
        with state.lock:
            state.bounded_depth -= 1
            if state.bounded_depth == 0:
                for variable, previous in state.bounded_saved.items():
                    if previous is None:
                        os.environ.pop(variable, None)
                    else:
                        os.environ[variable] = previous
                state.bounded_saved = {}
                utils = sys.modules.get("mlflow.store.db.utils")
                if utils is not None and state.bounded_db_retries is not None:
                    utils.MAX_RETRY_COUNT = state.bounded_db_retries
                state.bounded_db_retries = None


def _limit_database_retries() -> None:
    """Inside :func:`bounded_requests`: MLflow's SQLAlchemy stores retry creating their engine
    ``mlflow.store.db.utils.MAX_RETRY_COUNT`` (10) times with a doubling sleep, about 100 s per
    store (200 s for the tracking and registry stores of a database that cannot be opened).
    MLflow has no setting for it, so the block lowers it to ``max_retries + 1`` attempts, once
    that module is loaded (restored when the outermost block ends)."""
    utils = sys.modules.get("mlflow.store.db.utils")
    with _state.lock:
        if utils is None or _state.bounded_depth == 0 or _state.bounded_db_retries is not None:
            return
        original = getattr(utils, "MAX_RETRY_COUNT", None)
        if not isinstance(original, int):
            return
        _state.bounded_db_retries = original
        utils.MAX_RETRY_COUNT = min(original, request_limits()["max_retries"] + 1)


SECRET_QUERY_WORDS = (
    "pass", "pwd", "secret", "token", "key", "sig", "auth", "credential", "session", "sas",
)  # fmt: skip
"""What :func:`mask_uri` masks in a URL's query or fragment (and in ``name=value`` words of
a text, such as a libpq ``"host=db password=..."`` string): the value of every parameter whose
name contains one of these words, in any case. So ``password``, ``passwd``, ``pwd``, ``token``,
``access_token``, ``id_token``, ``api_key``, ``apikey``, ``key``, ``secret``,
``client_secret``, ``auth``, ``authorization``, ``sig``, ``signature``, ``X-Amz-Signature``,
``X-Amz-Security-Token``, ``X-Amz-Credential``, ``X-Goog-Signature``, ``sas_token``,
``session_token`` ... are masked (masking a harmless parameter costs a detail of a message;
showing a secret cannot be undone)."""

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>\S*)")
_SECRET_PARAM = re.compile(
    r"(?i)(?P<name>(?:^|(?<=[?&;#\s]))[^=&;#?\s]*(?:"
    + "|".join(SECRET_QUERY_WORDS)
    + r")[^=&;#?\s]*=)[^&;#\s]*"
)
_QUERY_SECRET = re.compile(
    r"(?i)[?&;#][^=&;#?\s]*(?:" + "|".join(SECRET_QUERY_WORDS) + r")[^=&;#?\s]*="
)


def mask_uri(text: str) -> str:
    """``text`` with the secrets of every URL in it replaced by ``***``.

    Masked: the password of a URL's userinfo (``postgresql://user:***@host/db``; everything
    up to the last ``@`` of the URL, so a password holding ``@``, ``/`` or ``?`` is masked
    whole); a userinfo without a password in an ``http(s)`` URL (a token:
    ``https://***@host``); and the value of every query or fragment parameter whose name
    contains a word of :data:`SECRET_QUERY_WORDS` (``?token=***``, ``&X-Amz-Signature=***``),
    case-insensitive, whole (an ``@`` in it, as in ``host:5000/api?token=a@b``, is not taken
    for the end of a userinfo). Every message of :mod:`forecaster.tracking.core` and
    :mod:`forecaster.tuning.core` that quotes a tracking URI or a storage URL goes through it.

    Examples
    --------
    >>> mask_uri("postgresql+psycopg://me:s3cr:et@db.example:5432/runs?password=x&sslmode=on")
    'postgresql+psycopg://me:***@db.example:5432/runs?password=***&sslmode=on'
    >>> mask_uri("https://mlflow.example/api?Token=abc&API_KEY=k&experiment=3")
    'https://mlflow.example/api?Token=***&API_KEY=***&experiment=3'
    >>> mask_uri("https://ghp_abc123@mlflow.example")
    'https://***@mlflow.example'
    >>> mask_uri("http://tracking.example:5000")
    'http://tracking.example:5000'
    """
    text = _URL.sub(_mask_userinfo, str(text))
    return _SECRET_PARAM.sub(r"\g<name>***", text)


def _mask_userinfo(match: re.Match[str]) -> str:
    """A URL (``scheme://rest``) with the password (or an http(s) token) of its userinfo
    masked: the userinfo is everything before the URL's last ``@``."""
    scheme, rest = match.group("scheme"), match.group("rest")
    if "@" not in rest:
        return match.group(0)
    userinfo, after = rest.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    if re.search(r"[/?#]", user):  # the '@' and ':' are in the path or query: no userinfo
        return match.group(0)
    if colon and _QUERY_SECRET.search(password) is None:
        return f"{scheme}://{user}:***@{after}"
    if colon:  # host:port/...?token=a@b: the '@' is in a secret parameter, masked whole
        return match.group(0)
    if "http" in scheme.lower():  # https://<token>@host
        return f"{scheme}://***@{after}"
    return match.group(0)


def _scheme(uri: str) -> str:
    """``"http"``, ``"sqlite"``, ``"postgresql"`` ... of a tracking URI (the driver dropped);
    ``""`` for a plain path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", uri)
    return match.group(1).split("+", 1)[0].lower() if match else ""


def _probe(uri: str, timeout: float) -> str | None:
    """Whether the store ``uri`` can be used: None when it can (or when it is of a kind that
    is not probed), else why not. HTTP: ``GET <uri>/health``; a database server: a TCP
    connection to its host and port; SQLite: the file and its folder (see
    :func:`_sqlite_problem`)."""
    scheme = _scheme(uri)
    if scheme in ("http", "https"):
        return _probe_http(uri, timeout)
    if scheme == "sqlite" or scheme in _DB_PORTS:  # MLflow will load its SQLAlchemy store
        with contextlib.suppress(Exception):
            if "mlflow" in sys.modules:
                importlib.import_module("mlflow.store.db.utils")
        _limit_database_retries()
    if scheme == "sqlite":
        return _sqlite_problem(uri)
    if scheme in _DB_PORTS:
        return _probe_database(uri, scheme, timeout)
    return None


def _probe_http(uri: str, timeout: float) -> str | None:
    """``GET <uri>/health``: None when the server answers (below 500), else why not."""
    import requests

    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1")
    verify: bool | str = not insecure and (
        os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    )
    cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
    try:
        response = requests.get(
            uri.rstrip("/") + "/health", timeout=timeout, verify=verify, cert=cert
        )
    except requests.exceptions.SSLError:
        return None  # it answers; whether MLflow's TLS settings suit it, the requests will say
    except requests.Timeout:
        return f"no answer within {timeout:g} s"
    except Exception as exc:  # connection refused, a name that does not resolve, not HTTP...
        return _short(_root_cause(exc))
    if response.status_code >= 500:
        return f"it answered HTTP {response.status_code} ({response.reason})"
    return None


def _probe_database(uri: str, scheme: str, timeout: float) -> str | None:
    """A TCP connection to the host and port of a PostgreSQL / MySQL / SQL Server store (a
    Unix socket or a URL SQLAlchemy cannot parse is not probed: MLflow says what is wrong)."""
    import socket

    try:
        from sqlalchemy.engine import make_url

        url = make_url(uri)
        host, port = url.host, url.port or _DB_PORTS[scheme]
    except Exception:
        return None
    if not host or host.startswith("/"):
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return f"{host}:{port}: {_short(exc)}"


def _sqlite_problem(uri: str) -> str | None:
    """Why MLflow cannot write the SQLite store ``uri`` (which it would retry for minutes),
    or None: the file must be a SQLite database (or absent) that this process can read and
    write, in a folder where it can create files (SQLite writes a journal beside the
    database: a temporary file, removed at once). The folder is created, as MLflow would.
    In-memory and ``file:`` URIs are not checked."""
    text = uri.split(":///", 1)[1] if ":///" in uri else ""
    path_text = text.split("?", 1)[0]
    if not path_text or path_text == ":memory:" or path_text.startswith("file:"):
        return None
    path = Path(path_text).absolute()
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        return f"the SQLite file {path} cannot be read ({exc.strerror or exc})"
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            return f"{path} is not a regular file (a folder, device or FIFO), not a database"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"the SQLite file {path} is not writable by this user"
        if info.st_size:
            try:
                with open(path, "rb") as handle:
                    header = handle.read(len(_SQLITE_HEADER))
            except OSError as exc:
                return f"the SQLite file {path} cannot be read ({exc.strerror or exc})"
            if header != _SQLITE_HEADER:
                return f"{path} is not a SQLite database (it starts with {header[:8]!r})"
    folder = path.parent
    try:  # as MLflow does before it opens the store
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{path} cannot be written: its folder cannot be created ({_short(exc)})"
    try:  # the only reliable test (root ignores permission bits; /proc refuses anyway)
        handle, probe = tempfile.mkstemp(prefix=".forecaster-probe-", dir=folder)
    except OSError as exc:
        return f"{path} cannot be written: its folder {folder} is not writable ({_short(exc)})"
    os.close(handle)
    os.unlink(probe)
    return None


def _unreachable_reason(uri: str) -> str | None:
    """Why the tracking store ``uri`` cannot be used, or None (see :func:`_probe`). A store
    that answers, or was found down slowly (no answer within the probe's timeout, or a request
    that failed: see :func:`_mark_down`), is trusted for :data:`PROBE_INTERVAL` seconds, so
    that a grid search pays the timeout once, not once per fit; a store found down at once
    (refused, HTTP 5xx, a SQLite folder that cannot be written) costs next to nothing to ask
    again and is probed at the next check (e.g. at the end of a fit: a server restarted
    meanwhile gets the fit's records)."""
    with _state.lock:
        known = _state.probes.get(uri)
    if known is not None and time.monotonic() - known[0] < known[2]:
        return known[1]
    started = time.monotonic()
    reason = _probe(uri, min(float(request_limits()["request_timeout"]), PROBE_TIMEOUT))
    took = time.monotonic() - started
    trusted = PROBE_INTERVAL if reason is None or took >= _CHEAP_PROBE else 0.0
    with _state.lock:
        _state.probes[uri] = (time.monotonic(), reason, trusted)
    return reason


def _mark_down(uri: str, reason: str) -> None:
    """Remember that a request found ``uri`` unreachable (no probe for a while)."""
    with _state.lock:
        _state.probes[uri] = (time.monotonic(), reason, PROBE_INTERVAL)


def _unreachable_message(uri: str, reason: str) -> str:
    scheme, shown = _scheme(uri), mask_uri(uri)
    if scheme == "sqlite":
        return (
            f"The MLflow tracking store {shown} cannot be used: {reason}. Point "
            "MLFLOW_TRACKING_URI (or forecaster.tracking.core.configure) at a SQLite file in a "
            "writable folder, or make this one writable"
        )
    if scheme in _DB_PORTS:
        return (
            f"The MLflow tracking database {shown} cannot be reached ({reason}); checked with "
            f"a {PROBE_TIMEOUT:g} s connection to its host and port. Start the database or fix "
            "the tracking URI (MLFLOW_TRACKING_URI or forecaster.tracking.core.configure)"
        )
    return (
        f"The MLflow tracking server {shown} cannot be reached ({reason}); checked with a "
        f"{PROBE_TIMEOUT:g} s probe of {shown.rstrip('/')}/health. Start the server or fix the "
        "tracking URI (MLFLOW_TRACKING_URI or forecaster.tracking.core.configure)"
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error below a requests / urllib3 error (e.g. ``ConnectionRefusedError``),
    which says what happened in a few words."""
    seen = {id(exc)}
    while True:
        reason = getattr(exc, "reason", None)
        below = exc.__cause__ or exc.__context__
        if below is None and exc.args and isinstance(exc.args[0], BaseException):
            below = exc.args[0]
        if below is None and isinstance(reason, BaseException):
            below = reason
        if below is None or id(below) in seen:
            return exc
        seen.add(id(below))
        exc = below


def _short(exc: BaseException, limit: int = 300) -> str:
    """``"Type: message"`` on one line, at most ``limit`` characters, passwords masked."""
    text = mask_uri(re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}"))
    return text if len(text) < limit else text[: limit - 3] + "..."


def _ensure_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # created concurrently by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def _experiment_location(uri: str, name: str) -> str | None:
    root = _local_artifact_root(uri)
    if root is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"
    return (root / safe).resolve().as_uri()


def _experiment_for_new_run(mlflow: Any, experiment: str | None = None) -> str:
    """Experiment ID for a run started here (no active run): see the module docstring."""
    with _state.lock:
        uri_set = mlflow.is_tracking_uri_set()
        if experiment is not None:
            if not uri_set:
                return configure(experiment=experiment).experiment_id
            uri = mlflow.get_tracking_uri()
            client = mlflow.MlflowClient(uri)
            return _ensure_experiment(client, experiment, _experiment_location(uri, experiment))
        fluent = mlflow.tracking.fluent
        target = _state.target
        if target is not None and uri_set and target.tracking_uri == mlflow.get_tracking_uri():
            # MLflow's current experiment: ours, unless mlflow.set_experiment chose another
            return fluent._get_experiment_id() or target.experiment_id
        user_chose = getattr(fluent, "_active_experiment_id", None) or any(
            os.environ.get(v) for v in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
        )
        if target is None and uri_set and user_chose:
            return fluent._get_experiment_id() or "0"
        return configure(mlflow.get_tracking_uri() if uri_set else None).experiment_id


def _fallback_root() -> Path:
    """The configured fallback root; the default one (with a warning) when the configured one
    lies in a folder forecaster wrote (a model saved there after :func:`configure`)."""
    if _state.fallback_dir is None:
        return Path(DEFAULT_FALLBACK_DIR)
    try:
        _check_fallback_root(_state.fallback_dir)
    except DataValidationError as exc:
        warnings.warn(
            f"{exc} The records go to {Path(DEFAULT_FALLBACK_DIR).absolute()} instead.",
            ForecasterWarning,
            stacklevel=_user_stacklevel(),
        )
        return Path(DEFAULT_FALLBACK_DIR)
    return _state.fallback_dir


def _check_fallback_root(root: Path) -> None:
    """Refuse a fallback root that is, or lies inside, a folder forecaster wrote (a saved
    model, a pipeline run, another fallback folder): a record folder there would be a folder
    its manifest does not list, and forecaster would refuse to replace or delete it."""
    owner = _io.owning_folder(root / "records")
    if owner is not None:
        folder, kind = owner
        where = "is" if folder == Path(os.path.abspath(root)) else "is inside"
        raise DataValidationError(
            f"fallback_dir={str(root)!r} {where} {folder}, a {kind} folder forecaster wrote: "
            "unlogged records written there would be files its manifest does not list, and "
            f"forecaster would then refuse to replace or delete that {kind}. Pass a folder "
            f"outside it (the default is {DEFAULT_FALLBACK_DIR!r})."
        )


def autolog(enable: bool = True) -> None:
    """Log every ``fit`` of forecaster estimators to MLflow (one run per fit).

    Inside an active run the fit logs into it (nested runs for further fits in the same
    run); otherwise a run is started and ended around each fit.

    Parameters
    ----------
    enable : bool, default True
        False switches it off again. Only True and False are accepted (``"false"``, 0 or
        None would be read by their truthiness).

    Raises
    ------
    DataValidationError
        When ``enable`` is not a bool.
    ImportError
        When mlflow is not installed.

    Examples
    --------
    >>> autolog("false")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: enable must be True or False, got 'false' ...
    """
    _check_flag("enable", enable)
    if enable:
        _import_mlflow()
    with _state.lock:
        _state.autolog = bool(enable)


def _check_flag(argument: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise DataValidationError(
            f"{argument} must be True or False, got {value!r} ({type(value).__name__}). "
            f"Pass a bool, e.g. {argument}=True."
        )


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Within this block ``fit`` does not log (e.g. the fits of tuning trials).

    Examples
    --------
    >>> with paused():
    ...     pass
    """
    with _state.lock:
        _state.paused += 1
    try:
        yield
    finally:
        with _state.lock:
            _state.paused -= 1


def last_fit() -> FitLog | None:
    """What the most recent tracked fit or :func:`log_fit` of this process logged."""
    return _state.last


# ------------------------------------------------------------------------------------------
# dataset fingerprint
# ------------------------------------------------------------------------------------------


def dataset_fingerprint(
    data: Any, *, id_col: str | None = None, time_col: str | None = None
) -> dict[str, Any]:
    """A cheap description of a training set that identifies its content.

    Parameters
    ----------
    data : polars.DataFrame, polars.LazyFrame or tuple of arrays
        A long frame, or ``(X, y)`` arrays for :class:`~forecaster.RNNRegressor`.
    id_col, time_col : str, optional
        Series id and time columns of a frame (for the series count and time span).

    Returns
    -------
    dict
        ``columns``, ``dtypes``, ``rows``, ``series``, ``start``, ``end`` and ``hash``. For a
        frame the hash combines the schema with the wrapping sum of Polars' per-row hashes (one
        streaming pass; independent of row order, which does not change a fit; stable for a
        given Polars version). For arrays it is a BLAKE2 hash of their bytes.

    Raises
    ------
    DataValidationError
        For anything else (None, a pandas frame, a list, arrays of Python objects), an
        ``id_col`` or ``time_col`` the frame lacks, or a lazy frame whose source cannot be
        read.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a", "a", "b"], "time": [1, 2, 1], "y": [1.0, 2.0, 3.0]})
    >>> fp = dataset_fingerprint(frame, id_col="id", time_col="time")
    >>> fp["rows"], fp["series"], fp["start"], fp["end"]
    (3, 2, '1', '2')
    >>> fp["hash"] == dataset_fingerprint(frame.reverse(), id_col="id", time_col="time")["hash"]
    True
    """
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return _frame_fingerprint(data, id_col, time_col)
    arrays = _fingerprint_arrays(data)
    digest = hashlib.blake2b(digest_size=16)
    for a in arrays:
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return {
        "kind": "arrays",
        "columns": [f"array_{i}" for i in range(len(arrays))],
        "dtypes": {f"array_{i}": f"{a.dtype}{list(a.shape)}" for i, a in enumerate(arrays)},
        "rows": len(arrays[0]) if arrays[0].ndim else 0,
        "series": None,
        "start": None,
        "end": None,
        "hash": digest.hexdigest(),
        "hash_method": "blake2b of the array bytes",
    }


def _fingerprint_arrays(data: Any) -> list[np.ndarray]:
    """The numeric arrays of ``data`` (an array or a tuple of arrays), or our error."""
    items = data if isinstance(data, tuple) else (data,)
    wrong = [a for a in items if not isinstance(a, np.ndarray)]
    if not items or wrong:
        bad = wrong[0] if wrong else None
        got = "an empty tuple" if not items else _kind(bad)
        hint = (
            " Convert it with pl.from_pandas(frame)."
            if type(bad).__module__.startswith("pandas")
            else ""
        )
        raise DataValidationError(
            f"data must be a polars DataFrame or LazyFrame, or numpy arrays (X, y) for an "
            f"RNNRegressor; got {got}.{hint}"
        )
    odd = next((a for a in items if a.dtype.hasobject or a.dtype.kind not in "biuf"), None)
    if odd is not None:
        raise DataValidationError(
            f"data arrays must hold numbers, got an array of dtype {odd.dtype}. Convert it, "
            "e.g. np.asarray(X, dtype=np.float32)."
        )
    return list(items)


def _kind(value: Any) -> str:
    """``None``, ``a pandas.core.frame.DataFrame``, ``a list`` ...: a value's kind, for messages."""
    if value is None:
        return "None"
    return f"a {type(value).__module__}.{type(value).__name__}".replace("builtins.", "")


def _frame_fingerprint(data: Any, id_col: str | None, time_col: str | None) -> dict[str, Any]:
    schema = frame_schema(data, what="data")
    for argument, column in (("id_col", id_col), ("time_col", time_col)):
        if column is not None and column not in schema:
            raise DataValidationError(
                f"{argument}={column!r} is not a column of the frame (its columns: "
                f"{list(schema.names())})."
            )
    lazy = data.lazy()
    try:
        return _frame_digest(lazy, schema, id_col, time_col)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        raise DataValidationError(
            f"Cannot read the frame to fingerprint it: {_short(exc)}"
        ) from exc


def _frame_digest(
    lazy: pl.LazyFrame, schema: Any, id_col: str | None, time_col: str | None
) -> dict[str, Any]:
    """The fingerprint of a readable frame (one streaming pass)."""
    exprs = [
        pl.len().alias("rows"),
        pl.struct(pl.all()).hash(seed=0).sum().alias("row_hash_sum"),
    ]
    if id_col is not None and id_col in schema:
        exprs.append(pl.col(id_col).n_unique().alias("series"))
    if time_col is not None and time_col in schema:
        exprs += [pl.col(time_col).min().alias("start"), pl.col(time_col).max().alias("end")]
    row = lazy.select(exprs).collect().row(0, named=True)
    dtypes = {name: str(dtype) for name, dtype in schema.items()}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(dtypes).encode())
    digest.update(f"{row['rows']}:{row['row_hash_sum']}".encode())
    return {
        "kind": "frame",
        "columns": list(dtypes),
        "dtypes": dtypes,
        "rows": int(row["rows"]),
        "series": int(row.get("series", 1)),
        "start": None if row.get("start") is None else str(row["start"]),
        "end": None if row.get("end") is None else str(row["end"]),
        "hash": digest.hexdigest(),
        "hash_method": f"blake2b(schema, rows, sum of polars row hashes), polars {pl.__version__}",
    }


def _fingerprint_for(estimator: Any, data: Any) -> dict[str, Any]:
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return dataset_fingerprint(
            data,
            id_col=getattr(estimator, "id_col", None),
            time_col=getattr(estimator, "time_col", None),
        )
    return dataset_fingerprint(data)


def _training_data(estimator: Any, data: Any, caller: str) -> Any:
    """``data`` checked against what ``estimator`` (fitted) was trained on, before anything
    is logged or written: a forecaster's frame must have the training columns with compatible
    dtypes; a regressor's data must be ``(X, y)`` with its window shape (returned as numpy
    arrays)."""
    if hasattr(estimator, "schema_"):
        try:
            check_schema(data, estimator.schema_, id_col=estimator.id_col, what="frame")
        except DataValidationError as exc:
            raise DataValidationError(
                f"{caller} needs the frame the model was trained on (or one with its columns): "
                f"{exc}"
            ) from None
        differences = _training_differences(estimator, data)
        if differences:
            raise DataValidationError(
                f"{caller} needs the frame the model was trained on (its fingerprint, plot and "
                f"input example describe the model), and this frame is other data: "
                f"{'; '.join(differences)}. Pass the frame given to fit."
            )
        return data
    if not (isinstance(data, tuple) and len(data) == 2):
        raise DataValidationError(
            f"{caller} takes an RNNRegressor's training data as a tuple (X, y) of arrays, got "
            f"{_kind(data)}."
        )
    try:
        X, y = np.asarray(data[0], dtype=np.float32), np.asarray(data[1])
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{caller}: (X, y) must be numeric arrays ({exc}).") from None
    channels = X.shape[2] if X.ndim == 3 else 1
    expected = (int(estimator.lookback_), int(estimator.n_channels_))
    if X.ndim not in (2, 3) or (X.shape[1], channels) != expected or len(X) != len(y):
        raise DataValidationError(
            f"{caller}: X must have shape (n, {expected[0]}, {expected[1]}) (or (n, "
            f"{expected[0]}) for one feature), as in fit, and y as many rows; got X of shape "
            f"{X.shape} and y of shape {y.shape}."
        )
    return X, y


def _training_differences(estimator: Any, data: Any) -> list[str]:
    """How a frame with the training columns differs from the data ``estimator`` was
    fitted on, as far as the estimator records it: its series (``keys_``; a series of the
    frame long enough to be fitted, ``lookback + horizon`` rows, that the model does not
    know) and the last time of each (``train_end_``, absent in folders saved by old
    versions). Empty when nothing recorded differs."""
    keys = getattr(estimator, "keys_", None)
    if not isinstance(keys, pl.DataFrame) or keys.width != 1:
        return []
    id_name, time_col = keys.columns[0], estimator.time_col
    try:
        seen = _series_ends(data.lazy(), estimator.id_col, id_name, time_col)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        raise DataValidationError(f"Cannot read the frame: {_short(exc)}") from exc
    fitted = keys.with_columns(pl.lit(True).alias("_fitted"))
    ends = estimator.__dict__.get("train_end_")
    if isinstance(ends, pl.Series) and len(ends) == keys.height:
        fitted = fitted.with_columns(ends.alias("_fitted_end"))
        seen = seen.with_columns(pl.col("_end").cast(ends.dtype, strict=False))
    fitted_dtype, dtype = keys.schema[id_name], seen.schema[id_name]
    if fitted_dtype != dtype and not (fitted_dtype.is_numeric() and dtype.is_numeric()):
        fitted_dtype = pl.String  # text, Categorical and Enum ids match by their text
        fitted = fitted.with_columns(pl.col(id_name).cast(pl.String))
    seen = seen.with_columns(pl.col(id_name).cast(fitted_dtype, strict=False))
    both = fitted.join(seen, on=id_name, how="full", coalesce=True)
    return _describe_differences(estimator, both, id_name)


def _series_ends(lazy: pl.LazyFrame, id_col: str | None, id_name: str, time_col: str) -> Any:
    """One row per series of a frame: its id (column ``id_name``), last time and rows."""
    aggregates = [pl.col(time_col).max().alias("_end"), pl.len().alias("_rows")]
    if id_col is None:  # one series, as fit packs it
        return lazy.select(aggregates).with_columns(pl.lit(0, pl.UInt8).alias(id_name)).collect()
    return lazy.group_by(pl.col(id_col).alias(id_name)).agg(aggregates).collect()


def _describe_differences(estimator: Any, both: pl.DataFrame, id_name: str) -> list[str]:
    """The items of :func:`_training_differences` from the joined table of fitted and seen
    series (columns ``_fitted``, ``_fitted_end`` when known, ``_end``, ``_rows``)."""

    def ids(table: pl.DataFrame) -> str:
        shown = ", ".join(repr(v) for v in table[id_name].sort().head(3).to_list())
        return shown + (f" and {table.height - 3} more" if table.height > 3 else "")

    out = []
    known = both.filter(pl.col("_fitted").is_not_null())
    missing = known.filter(pl.col("_rows").is_null())
    if missing.height:
        out.append(
            f"{missing.height} of the {known.height} series the model was trained on are not in "
            f"it ({ids(missing)})"
        )
    if "_fitted_end" in both.columns:
        moved = known.filter(
            pl.col("_rows").is_not_null() & (pl.col("_end") != pl.col("_fitted_end"))
        )
        if moved.height:
            first = moved.sort(id_name).row(0, named=True)
            which = "the series" if estimator.id_col is None else f"series {first[id_name]!r}"
            verb = "ends" if moved.height == 1 else "end"
            out.append(
                f"{moved.height} series {verb} at another time than in the training data "
                f"({which} ends at {first['_end']} in this frame, at {first['_fitted_end']} in "
                f"the training data)"
            )
    needed = int(estimator.lookback) + int(estimator.horizon)
    unknown = both.filter(pl.col("_fitted").is_null() & (pl.col("_rows") >= needed))
    if unknown.height and estimator.missing != "interpolate":  # interpolate drops rows
        out.append(
            f"{unknown.height} series with the {needed} rows fit needs were not in the training "
            f"data ({ids(unknown)})"
        )
    return out


def _fingerprint_params(fp: Mapping[str, Any]) -> dict[str, str]:
    keys = ("rows", "series", "start", "end", "hash")
    out = {f"data.{k}": str(fp[k]) for k in keys if fp.get(k) is not None}
    out["data.columns"] = ",".join(fp["columns"])
    return out


# ------------------------------------------------------------------------------------------
# what is logged
# ------------------------------------------------------------------------------------------


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        text = json.dumps(list(value))
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    return text[:_MAX_PARAM_CHARS]


def _estimator_params(estimator: Any, prefix: str = "") -> dict[str, str]:
    params = {f"{prefix}{k}": _param_value(v) for k, v in estimator.get_params(deep=False).items()}
    params[f"{prefix}estimator"] = type(estimator).__name__
    return params


def _now_ms() -> int:
    return int(time.time() * 1000)


def _epoch_metrics(record: Mapping[str, Any], timestamp: int | None = None) -> list[Any]:
    from mlflow.entities import Metric

    ts = _now_ms() if timestamp is None else timestamp
    step = int(record["epoch"])
    values = {
        "train_loss": record.get("train_loss"),
        "val_loss": record.get("val_loss"),
        "lr": record.get("lr"),
        "epoch_seconds": record.get("seconds"),
    }
    return [
        Metric(key, float(v), ts, step)
        for key, v in values.items()
        if v is not None and math.isfinite(float(v))
    ]


def _final_metrics(estimator: Any, fit_seconds: float | None) -> dict[str, float]:
    history = list(getattr(estimator, "history_", []) or [])
    metrics: dict[str, float] = {"epochs": float(len(history))}
    if history:
        metrics["final_train_loss"] = float(history[-1]["train_loss"])
        metrics["train_seconds"] = float(sum(r["seconds"] for r in history))
        metrics["windows_per_second"] = float(np.median([r["windows_per_second"] for r in history]))
        val = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
        val = [(v, e) for v, e in val if math.isfinite(v)]
        if val:
            best, epoch = min(val)
            metrics["best_val_loss"] = float(best)
            metrics["best_epoch"] = float(epoch)
    metrics["fit_seconds"] = float(
        fit_seconds if fit_seconds is not None else metrics.get("train_seconds", 0.0)
    )
    for name, attr in (("train_windows", "n_train_windows_"), ("val_windows", "n_val_windows_")):
        if hasattr(estimator, attr):
            metrics[name] = float(getattr(estimator, attr))
    return metrics


def _as_frame(table: Any) -> pl.DataFrame:
    if isinstance(table, pl.LazyFrame):
        return table.collect()
    if isinstance(table, pl.DataFrame):
        return table
    if type(table).__module__.startswith("pandas"):
        return pl.from_pandas(table)
    return pl.DataFrame(table)


def _backtest_tables(backtest: Any) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """``(by_step, overall)``: a :class:`~forecaster.evaluation.backtest.BacktestResult` gives its
    ``by_step`` and pooled ``aggregate`` tables; a plain frame is the by-step table."""
    if hasattr(backtest, "by_step") and hasattr(backtest, "aggregate"):
        return _as_frame(backtest.by_step), _as_frame(backtest.aggregate)
    return _as_frame(backtest), None


def _backtest_metrics(
    table: pl.DataFrame, overall: pl.DataFrame | None = None
) -> list[tuple[str, float, int]]:
    """``(key, value, step)``: ``backtest_<metric>`` per horizon step (the mean over folds and
    any other rows of a step), and ``backtest_<metric>_overall`` at step 0 (``overall`` when
    given, else the mean of all rows). With several targets the key is
    ``backtest_<target>_<metric>``."""
    step_col = next((c for c in _STEP_COLUMNS if c in table.columns), None)
    multi = _TARGET_COLUMN in table.columns and table[_TARGET_COLUMN].n_unique() > 1
    keys = [_TARGET_COLUMN] if multi else []
    skip = {step_col, _TARGET_COLUMN, *_NOT_METRICS}
    names = [
        c for c, t in table.schema.items() if t.is_numeric() and c not in skip and t != pl.Boolean
    ]

    def key(row: Mapping[str, Any], name: str) -> str:
        return f"backtest_{row[_TARGET_COLUMN]}_{name}" if multi else f"backtest_{name}"

    out: list[tuple[str, float, int]] = []
    if not names:
        return out
    if step_col is not None:
        by_step = table.group_by([*keys, step_col]).agg(pl.col(names).mean())
        for row in by_step.sort([*keys, step_col]).iter_rows(named=True):
            out += [
                (key(row, n), float(row[n]), int(row[step_col]))
                for n in names
                if row[n] is not None and math.isfinite(row[n])
            ]
    if overall is None or not set(names) <= set(overall.columns):
        overall = table.group_by(keys).agg(pl.col(names).mean()) if keys else table
        overall = overall if keys else overall.select(pl.col(names).mean())
    for row in overall.iter_rows(named=True):
        out += [
            (key(row, n) + "_overall", float(row[n]), 0)
            for n in names
            if row.get(n) is not None and math.isfinite(row[n])
        ]
    return out


def forecast_plot(estimator: Any, frame: Any, *, n_series: int = _PLOT_SERIES) -> Figure:
    """A figure of a few series: history tail, the last ``horizon`` actual values held out,
    and the model's forecast of them (from the rows before).

    Parameters
    ----------
    estimator : RNNForecaster
        Fitted.
    frame : polars.DataFrame or polars.LazyFrame
        Frame with the training columns (typically the training frame).
    n_series : int, default 4
        Series shown (the first ones of the fitted keys).

    Returns
    -------
    matplotlib.figure.Figure
        Built without pyplot (no global backend change); save it with ``fig.savefig``.

    Raises
    ------
    NotFittedError
        When ``estimator`` is not fitted.
    DataValidationError
        For an RNNRegressor (it has no series to draw), a ``frame`` without the training
        columns and dtypes (or not a polars frame), or ``n_series`` that is not an integer
        >= 1.
    """
    _check_plot_args(estimator, frame, n_series)
    from matplotlib.figure import Figure

    horizon, lookback = int(estimator.horizon), int(estimator.lookback)
    id_col, time_col = estimator.id_col, estimator.time_col
    target = _targets(estimator)[0]
    data = frame.lazy()
    if id_col is not None:
        ids = estimator.keys_[id_col].head(n_series).implode()
        data = data.filter(pl.col(id_col).is_in(ids))
    data = data.collect().sort([c for c in (id_col, time_col) if c])
    from_end = pl.col(time_col).rank("ordinal", descending=True)
    if id_col is not None:
        from_end = from_end.over(id_col)
    data = data.with_columns(from_end.alias("_from_end"))
    history = data.filter(pl.col("_from_end") > horizon).drop("_from_end")
    actual = data.filter(pl.col("_from_end") <= horizon).drop("_from_end")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        forecast = estimator.predict(
            history, future=actual if estimator.future_covariates else None
        )
    groups = (
        [(key, pl.col(id_col) == key) for key in forecast[id_col].unique(maintain_order=True)]
        if id_col is not None
        else [(None, pl.lit(True))]
    )
    fig = Figure(figsize=(9, 0.4 + 2.2 * len(groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    tail = max(lookback, 3 * horizon)
    for ax, (key, mask) in zip(axes, groups, strict=True):
        past = history.filter(mask).tail(tail)
        truth = actual.filter(mask)
        pred = forecast.filter(mask)
        ax.plot(past[time_col].to_numpy(), past[target].to_numpy(), color="0.3", label="history")
        ax.plot(truth[time_col].to_numpy(), truth[target].to_numpy(), "k--", label="actual")
        ax.plot(pred[time_col].to_numpy(), pred[target].to_numpy(), "C1", label="forecast")
        ax.set_title(f"{target}" if key is None else f"{target} · {key}", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].legend(fontsize=8, loc="upper left")
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3 / height, top=1 - 0.3 / height)
    fig.subplots_adjust(hspace=0.45)
    return fig


def _check_plot_args(estimator: Any, frame: Any, n_series: Any) -> None:
    if not hasattr(estimator, "network_"):
        from forecaster.exceptions import NotFittedError

        raise NotFittedError(
            f"forecast_plot needs a fitted forecaster; this {type(estimator).__name__} is not "
            "fitted (fit it first)."
        )
    if not hasattr(estimator, "schema_"):
        raise DataValidationError(
            f"forecast_plot draws the series of a forecaster; a {type(estimator).__name__} "
            "predicts windows and has no series to draw."
        )
    if isinstance(n_series, bool | np.bool_) or not isinstance(n_series, numbers.Integral):
        raise DataValidationError(
            f"n_series must be an integer >= 1 (the number of series drawn), got "
            f"{n_series!r}. To draw every series pass n_series=len(estimator.keys_)."
        )
    if n_series < 1:
        raise DataValidationError(f"n_series must be an integer >= 1, got {n_series!r}.")
    _training_data(estimator, frame, "forecast_plot")


def _targets(estimator: Any) -> list[str]:
    target = estimator.target
    return [target] if isinstance(target, str) else list(target)


# ------------------------------------------------------------------------------------------
# the pyfunc model
# ------------------------------------------------------------------------------------------


def _pyfunc_class() -> type:
    """Build :class:`ForecasterPyfunc` on first use (it subclasses an mlflow class, and this
    module must import without mlflow)."""
    global _PYFUNC_CLASS
    if _PYFUNC_CLASS is not None:
        return _PYFUNC_CLASS
    mlflow = _import_mlflow()

    ForecasterPyfunc = _define_pyfunc(mlflow.pyfunc.PythonModel)
    _PYFUNC_CLASS = ForecasterPyfunc
    return ForecasterPyfunc


def _define_pyfunc(base: type) -> type:
    import pandas as pd

    def load_context(self: Any, context: Any) -> None:
        """Load the saved model directory (the artifact ``"model"``)."""
        from forecaster.persistence.core import load

        self.estimator = load(context.artifacts["model"])

    def predict(self: Any, context: Any, model_input: Any, params: Any = None) -> Any:
        """Forecast: pandas frame in (long format), pandas frame out (see the class)."""
        return _pyfunc_predict(self.estimator, model_input, params)

    # Real (not string) annotations for MLflow, which reads them: a pandas frame, from which
    # it infers no schema (the logged signature does that) and so does not warn.
    predict.__annotations__ = {"model_input": pd.DataFrame, "return": Any}
    doc = """MLflow pyfunc wrapper of a saved forecaster model (the artifact ``"model"``).

    Stateless until :meth:`load_context`, which loads the saved directory with
    :func:`forecaster.load`: nothing of the model is pickled. ``predict`` takes a pandas frame
    in the long format of the training frame (id, time, targets, covariates; rows with all
    targets null are the future-covariate values over the horizon, for a model with future
    covariates) and returns the forecast as a pandas frame (id, time, targets);
    ``params={"cutoff": ...}`` forecasts from that time. For an
    :class:`~forecaster.RNNRegressor` it takes the ``X`` windows (an array, or a frame of 2-D
    windows) and returns the predictions as an array.
    """
    namespace = {"__doc__": doc, "__module__": __name__, "load_context": load_context}
    namespace["predict"] = predict
    return type("ForecasterPyfunc", (base,), namespace)


class _LoadedModel:
    """What :func:`mlflow.pyfunc.load_model` wraps: a loaded estimator and its ``predict``."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def predict(self, model_input: Any, params: Any = None) -> Any:
        return _pyfunc_predict(self.estimator, model_input, params)


def _load_pyfunc(data_path: str) -> _LoadedModel:
    """MLflow's pyfunc loader entry point: load the logged model directory (no pickle)."""
    from forecaster.persistence.core import load

    return _LoadedModel(load(data_path))


def __getattr__(name: str) -> Any:
    if name == "ForecasterPyfunc":
        return _pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_dtype(name: str) -> Any:
    """The Polars dtype written as ``str(dtype)`` for the common cases, else None."""
    if re.fullmatch(r"[A-Za-z0-9]+", name):
        dtype = getattr(pl, name, None)
        is_dtype = isinstance(dtype, type) and issubclass(dtype, pl.DataType)
        return dtype if is_dtype else None
    match = re.fullmatch(r"Datetime\(time_unit='(\w+)', time_zone=(None|'([^']*)')\)", name)
    if match:
        return pl.Datetime(match.group(1), match.group(3))
    return None


def _pyfunc_frame(model_input: Any) -> pl.DataFrame:
    """A Polars frame from what the pyfunc was given (pandas or polars frame, dict of
    columns, list of rows), or our error."""
    if isinstance(model_input, pl.LazyFrame):
        return collect_frame(model_input, what="pyfunc input")
    if isinstance(model_input, pl.DataFrame):
        return model_input
    module = type(model_input).__module__
    if module.startswith("pandas") and hasattr(model_input, "columns"):
        duplicated = model_input.columns[model_input.columns.duplicated()]
        if len(duplicated):
            raise DataValidationError(
                f"The pyfunc input has the column names {sorted(map(str, set(duplicated)))} "
                "more than once; give each column one name."
            )
        convert: Callable[[], pl.DataFrame] = lambda: pl.from_pandas(model_input)  # noqa: E731
    elif isinstance(model_input, Mapping | list):
        convert = lambda: pl.DataFrame(model_input)  # noqa: E731
    else:
        raise DataValidationError(
            f"The pyfunc model of a forecaster takes a pandas or polars DataFrame (or a dict of "
            f"columns) in the long format of the training frame, got {_kind(model_input)}."
        )
    try:
        return convert()
    except Exception as exc:  # pyarrow / polars cannot represent a column
        raise DataValidationError(
            f"Cannot read the pyfunc input as a frame: {_short(exc)}. Pass a frame in the long "
            "format of the training frame, with one type per column."
        ) from None


def _restore_dtypes(frame: pl.DataFrame, schema: Mapping[str, str]) -> pl.DataFrame:
    """The training dtypes where a round trip through pandas or JSON changed them without
    changing the values: a Date column that came back as midnight datetimes, a datetime of
    another time unit (same time zone), ISO text for a Date or Datetime column. Anything else
    is left for ``predict``, which refuses what does not fit, naming the column."""
    casts = []
    for name, expected in schema.items():
        if name not in frame.columns or str(frame.schema[name]) == expected:
            continue
        dtype, found = _parse_dtype(expected), frame.schema[name]
        if dtype is None or not dtype.is_temporal():
            continue
        column = frame[name]
        if found == pl.String:
            with contextlib.suppress(Exception):
                parsed = (
                    column.str.to_date(strict=True)
                    if dtype == pl.Date
                    else column.str.to_datetime(strict=True).cast(dtype)
                )
                casts.append(parsed.alias(name))
        elif isinstance(found, pl.Datetime) and dtype == pl.Date:
            if found.time_zone is None and (column.dt.truncate("1d") == column).all():
                casts.append(column.cast(pl.Date))
        elif (
            isinstance(found, pl.Datetime)
            and isinstance(dtype, pl.Datetime)
            and found.time_zone == dtype.time_zone
        ):
            casts.append(column.cast(dtype))
    return frame.with_columns(casts) if casts else frame


def _pyfunc_predict(estimator: Any, model_input: Any, params: Any = None) -> Any:
    """The pyfunc's ``predict``: what native ``predict`` accepts, the pyfunc accepts (the
    model is logged without an enforced input schema); what it refuses is our error."""
    params = dict(params or {}) if isinstance(params, Mapping | type(None)) else params
    allowed = {"cutoff"} if hasattr(estimator, "schema_") else set()
    if not isinstance(params, dict) or set(params) - allowed:
        raise DataValidationError(
            f"The pyfunc model takes the params {sorted(allowed) or 'none'}, got {params!r}."
        )
    if not hasattr(estimator, "schema_"):  # RNNRegressor: arrays in, arrays out
        if hasattr(model_input, "to_numpy"):
            model_input = model_input.to_numpy()
        try:
            windows = np.asarray(model_input, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"The pyfunc model of an RNNRegressor takes numeric windows X, got "
                f"{_kind(model_input)} ({exc})."
            ) from None
        return estimator.predict(windows)
    frame = _restore_dtypes(_pyfunc_frame(model_input), estimator.schema_)
    future = None
    targets = _targets(estimator)
    if estimator.future_covariates and set(targets) <= set(frame.columns):
        is_future = pl.all_horizontal(pl.col(targets).is_null())
        future = frame.filter(is_future)
        frame = frame.filter(~is_future)
    forecast = estimator.predict(frame, future=future, cutoff=params.get("cutoff"))
    return forecast.to_pandas()


def _input_example(estimator: Any, data: Any) -> tuple[Any, Any]:
    """``(example, output)``: a valid request (the last ``lookback`` rows of one series of the
    training data, as pandas) and its forecast."""
    if not hasattr(estimator, "schema_"):
        X = np.asarray(data[0], dtype=np.float32)[:3]
        return X, estimator.predict(X)
    columns = list(estimator.schema_)
    lazy = data.lazy().select(columns)
    if estimator.id_col is not None:
        first = estimator.keys_[estimator.id_col].head(1).implode()
        lazy = lazy.filter(pl.col(estimator.id_col).is_in(first))
    frame = lazy.collect().sort([c for c in (estimator.id_col, estimator.time_col) if c])
    if frame.height == 0:
        which = "" if estimator.id_col is None else f" (series {estimator.keys_[0, 0]!r})"
        raise DataValidationError(
            f"the frame has no rows of the first series the model was trained on{which}."
        )
    frame = frame.tail(int(estimator.lookback))
    if estimator.future_covariates:  # no future values in the example: no forecast for it
        return frame.to_pandas(), None
    return frame.to_pandas(), _pyfunc_predict(estimator, frame)


def _signature(estimator: Any, example: Any, output: Any) -> Any:
    """The logged signature: the output schema, and ``cutoff`` as a parameter of a
    forecaster's ``predict`` (ISO text for Date / Datetime time columns, a long for integer
    steps; MLflow's datetime parameters cannot default to None). No input schema: MLflow
    would enforce it with its own casting rules (no int for a float column, no Categorical
    id, no polars frame, ...), and ``predict`` checks its input itself, with forecaster's
    errors."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    outputs = None
    if output is not None:
        with warnings.catch_warnings():  # MLflow's hint about integer columns and missing values
            warnings.simplefilter("ignore", UserWarning)
            outputs = infer_signature(example, output).outputs
    params = None
    if hasattr(estimator, "schema_"):
        time_dtype = _parse_dtype(estimator.schema_[estimator.time_col])
        kind = "long" if time_dtype is not None and time_dtype.is_integer() else "string"
        params = ParamSchema([ParamSpec("cutoff", kind, None)])
    if outputs is None and params is None:
        return None
    return ModelSignature(inputs=None, outputs=outputs, params=params)


def _pip_requirements() -> list[str]:
    names = ["mlflow", "torch", "polars", "numpy", "pandas", "pyarrow", "safetensors"]
    names += ["scikit-learn", "pydantic"]
    reqs = []
    for name in names:
        try:
            version = importlib.metadata.version(name).split("+")[0]
            reqs.append(f"{name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            reqs.append(name)
    return [*reqs, f"forecaster=={forecaster.__version__}"]


def _log_model(
    mlflow: Any,
    run_id: str,
    estimator: Any,
    data: Any,
    model_dir: Path,
    workdir: Path,
    register_as: str | None,
) -> Any:
    try:
        example, output = _input_example(estimator, data)
    except Exception as exc:
        raise ForecasterError(
            f"Could not build the model's input example (the last lookback={estimator.lookback} "
            f"rows of the first training series, forecast by the model) from the frame: "
            f"{_short(exc)}"
            if hasattr(estimator, "schema_")
            else f"Could not build the model's input example (the first rows of X, predicted "
            f"by the model): {_short(exc)}"
        ) from exc
    try:
        signature = _signature(estimator, example, output)
    except Exception as exc:
        raise ForecasterError(
            f"Could not build the model's signature (its output schema and the cutoff "
            f"parameter): {_short(exc)}"
        ) from exc
    with warnings.catch_warnings():  # MLflow's own deprecation notes (e.g. pandas 3)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\.")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\.")
        return _store_model(
            mlflow,
            artifact_path=None,
            name=MODEL_NAME,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            loader_module=__name__,  # mlflow calls _load_pyfunc(data_path): no code file, no pickle
            data_path=str(model_dir),
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            registered_model_name=register_as,
            metadata={
                "forecaster_version": forecaster.__version__,
                "estimator": type(estimator).__name__,
            },
        )


def _store_model(mlflow: Any, **kwargs: Any) -> Any:
    """``mlflow.models.Model.log(**kwargs)``; a failure says that MLflow failed to store
    (or register) the model, with MLflow's reason (its cause is kept: an unreachable store
    is still recognised as one)."""
    try:
        return mlflow.models.Model.log(**kwargs)
    except Exception as exc:
        registered = kwargs.get("registered_model_name")
        doing = "store the model" + (f" or register it as {registered!r}" if registered else "")
        raise ForecasterError(f"MLflow could not {doing}: {_short(exc)}") from exc


# ------------------------------------------------------------------------------------------
# failure accounting
# ------------------------------------------------------------------------------------------


def _is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the tracking backend cannot be reached (so stop trying)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionError | TimeoutError):
            return True
        module = type(exc).__module__
        if module.startswith(("requests", "urllib3")) and (
            "Connection" in type(exc).__name__ or "Timeout" in type(exc).__name__
        ):
            return True
        text = str(exc)
        if "API request to" in text and (
            any(s in text for s in ("Max retries exceeded", "Connection", "timeout", "timed out"))
            or re.search(r"error code (502|503|504)\b", text)
        ):
            return True
        if "database is locked" in text or "unable to open database" in text:
            return True
        lowered = text.lower()
        if module.split(".", 1)[0] in ("sqlalchemy", "psycopg", "psycopg2", "pymysql") and any(
            s in lowered for s in ("connection", "could not connect", "timeout", "timed out")
        ):  # a database store that cannot be reached
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _Outcome:
    """What was and was not logged; after an unreachable-backend error, remote steps are
    skipped (recorded as not logged) instead of each waiting for its own timeout."""

    def __init__(self, tracking_uri: str, run_id: str | None) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.not_logged: list[str] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.broken = False

    def check_server(self) -> None:
        """Probe the tracking server (see :func:`_unreachable_reason`) before the first
        request; an unreachable one makes every remote step a skipped one."""
        reason = _unreachable_reason(self.tracking_uri)
        if reason is not None:
            self.broken = True
            error = TrackingUnavailableError(_unreachable_message(self.tracking_uri, reason))
            self.errors.append(("tracking server", error))

    def client(self, mlflow: Any) -> Any:
        """An ``MlflowClient`` of the tracking URI, or None (remote steps skipped) when the
        store was found unreachable or MLflow cannot open it (an unknown scheme, a database it
        cannot create...)."""
        if self.broken:
            return None
        try:
            return mlflow.MlflowClient(self.tracking_uri)
        except Exception as exc:
            self.fail("tracking store", exc)
            self.broken = True
            return None

    def recheck(self) -> None:
        """After a failure: whether the server answers again (probed at most once per
        :data:`PROBE_INTERVAL`); if so, remote steps are tried again."""
        if self.broken and _unreachable_reason(self.tracking_uri) is None:
            self.broken = False

    def fail(self, what: str, exc: BaseException) -> None:
        self.not_logged.append(what)
        self.errors.append((what, exc))
        if _is_unreachable(exc):
            self.broken = True
            _mark_down(self.tracking_uri, _short(exc))

    def remote(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.broken:
            self.not_logged.append(what)
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.fail(what, exc)
            return None

    def local(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.fail(what, exc)
            return None

    def summary(self) -> str:
        return _short(self.errors[0][1], 600) if self.errors else "unknown error"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(forecaster.__file__)) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the function calling this one that points
    at the first frame outside the forecaster package: the user's ``fit``, ``tune`` or
    ``log_fit`` call, however many of forecaster's own frames lie between."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def _warn(outcome: _Outcome, fallback: Path | None, context: str) -> None:
    items = list(dict.fromkeys(outcome.not_logged))
    run = f"run {outcome.run_id}" if outcome.run_id else "no run could be created"
    saved = (
        f" The model and everything not logged are saved in {fallback.resolve()} (reload the "
        f"model with forecaster.load({str(fallback.resolve() / 'model')!r}))."
        if fallback is not None
        else ""
    )
    warnings.warn(
        f"MLflow tracking failed ({mask_uri(outcome.tracking_uri)}, {run}): {outcome.summary()}. "
        f"Not logged: {', '.join(items)}. {context}{saved}",
        ForecasterWarning,
        stacklevel=_user_stacklevel(),
    )


def _save_fallback(
    outcome: _Outcome,
    estimator: Any,
    model_dir: Path | None,
    plot_file: Path | None,
    record: Mapping[str, Any],
) -> Path | None:
    """Write the model and the records that were not logged to a new folder in the fallback
    root (staged, with a manifest, and renamed into place: see :mod:`forecaster._io`); its
    path, or None when the disk failed too (then ``outcome`` says so)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{outcome.run_id or 'no-run'}-{secrets.token_hex(3)}"
    folder = _fallback_root().absolute() / name
    staging = None
    try:
        staging = _io.staging_directory(folder)
        if model_dir is not None and model_dir.is_dir():
            shutil.copytree(model_dir, staging / "model")
        else:
            estimator.save(staging / "model")
        if plot_file is not None and plot_file.is_file():
            _io.write_atomic(staging / plot_file.name, lambda tmp: shutil.copyfile(plot_file, tmp))
        info = {
            **record,
            "tracking_uri": mask_uri(outcome.tracking_uri),
            "run_id": outcome.run_id,
            "not_logged": list(dict.fromkeys(outcome.not_logged)),
            "errors": [f"{what}: {_short(e, 2000)}" for what, e in outcome.errors],
        }
        text = json.dumps(info, indent=2, default=str)
        _io.write_bytes_atomic(staging / "run.json", text.encode("utf-8"))
        details = {"run_id": outcome.run_id, "tracking_uri": mask_uri(outcome.tracking_uri)}
        _io.write_manifest(staging, FALLBACK_KIND, details)
        _io.publish_directory(staging, folder, kind=FALLBACK_KIND, same=_never_replace)
    except Exception as exc:  # the disk failed too: say so in the warning
        if staging is not None:  # ours (a new temporary folder); publish removes it itself
            _io.discard_staging(staging)
        outcome.fail(f"local copy in {folder}", exc)
        return None
    return folder


def _never_replace(manifest: Mapping[str, Any]) -> str:
    """For :func:`forecaster._io.publish_directory`: a fallback folder is never replaced."""
    return "another fit's unlogged records are there; they are kept."


# ------------------------------------------------------------------------------------------
# logging a fit
# ------------------------------------------------------------------------------------------


def _log_params(client: Any, run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for lo in range(0, len(items), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[lo : lo + _MAX_PARAMS_PER_BATCH])


def _log_tags(client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in tags.items()]
    for lo in range(0, len(items), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=items[lo : lo + _MAX_PARAMS_PER_BATCH])


def _log_metrics(client: Any, run_id: str, metrics: Sequence[Any]) -> None:
    for lo in range(0, len(metrics), _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=list(metrics[lo : lo + _MAX_METRICS_PER_BATCH]))


def _log_inputs(
    client: Any,
    run_id: str,
    estimator: Any,
    fingerprint: Mapping[str, Any],
    *,
    prefix: str = "",
    params_as_tags: bool = False,
) -> None:
    """Params, tags and the dataset fingerprint (what goes in before training)."""
    params = {**_estimator_params(estimator, prefix), **_fingerprint_params(fingerprint)}
    tags = {"forecaster.version": forecaster.__version__}
    if params_as_tags:
        _log_tags(client, run_id, {**params, **tags})
    else:
        _log_params(client, run_id, params)
        _log_tags(client, run_id, {**tags, "forecaster.kind": "fit"})
    client.log_dict(run_id, dict(fingerprint), "dataset.json")


def _record(estimator: Any, fingerprint: Any, metrics: Any, backtest: Any) -> dict[str, Any]:
    return {
        "estimator": type(estimator).__name__,
        "params": {k: _param_value(v) for k, v in estimator.get_params(deep=False).items()},
        "dataset": fingerprint,
        "history": list(getattr(estimator, "history_", []) or []),
        "metrics": metrics,
        "backtest": None if backtest is None else backtest.to_dicts(),
    }


def _render_plot(estimator: Any, data: Any, path: Path) -> Path:
    forecast_plot(estimator, data).savefig(path, dpi=100)
    return path


def _write_csv(table: pl.DataFrame, path: Path) -> Path:
    table.write_csv(path)
    return path


def _log_fit(
    estimator: Any,
    data: Any,
    *,
    mlflow: Any,
    client: Any,
    outcome: _Outcome,
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
        fingerprint = outcome.local("dataset fingerprint", _fingerprint_for, estimator, data)
    metrics = _final_metrics(estimator, fit_seconds)
    table = overall = None
    if backtest is not None:
        tables = outcome.local("backtest metrics", _backtest_tables, backtest)
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
            outcome.not_logged += ["params", "dataset fingerprint", "per-epoch metrics"]
            outcome.not_logged += ["final metrics", "forecast plot", "model"]
        else:
            if not inputs_logged and fingerprint is not None:
                outcome.remote(
                    "params and dataset fingerprint",
                    _log_inputs,
                    client,
                    run_id,
                    estimator,
                    fingerprint,
                    prefix=param_prefix,
                    params_as_tags=params_as_tags,
                )
            ts = _now_ms()
            if history:
                what = f"per-epoch metrics from epoch {history[0]['epoch']}"
                epochs = [m for r in history for m in _epoch_metrics(r, ts)]
                outcome.remote(what, _log_metrics, client, run_id, epochs)
            final = [Metric(k, v, ts, 0) for k, v in metrics.items()]
            if table is not None:
                final += [
                    Metric(k, v, ts, step) for k, v, step in _backtest_metrics(table, overall)
                ]
            outcome.remote("final metrics", _log_metrics, client, run_id, final)
            for what, file in (("backtest table", csv), ("forecast plot", plot_file)):
                if file is not None:
                    outcome.remote(what, client.log_artifact, run_id, str(file))
            if model_dir is not None:
                info = outcome.remote(
                    "model", _log_model, mlflow, run_id, estimator, data, model_dir, workdir,
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
            record = _record(estimator, fingerprint, metrics, table)
            log.fallback_path = _save_fallback(outcome, estimator, model_dir, plot_file, record)
            log.not_logged = list(dict.fromkeys(outcome.not_logged))
            _warn(outcome, log.fallback_path, context)
    _state.last = log
    return log


def _resolve_run(mlflow: Any, run: Any) -> tuple[str | None, bool]:
    """``(run_id, own_run)`` for :func:`log_fit`'s ``run`` argument."""
    if run is not None:
        run_id = (
            run if isinstance(run, str) else getattr(getattr(run, "info", None), "run_id", None)
        )
        if not isinstance(run_id, str) or not run_id.strip():
            raise DataValidationError(
                f"run must be an MLflow run, a run ID (a non-empty string) or None, got {run!r}."
            )
        return run_id, False
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id, False
    return None, True


def _create_run(
    mlflow: Any,
    client: Any,
    experiment_id: str,
    name: str,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    all_tags = dict(tags or {})
    if parent_run_id is not None:
        all_tags["mlflow.parentRunId"] = parent_run_id
    try:  # source, user and git tags, as mlflow.start_run sets them
        from mlflow.tracking.context import registry

        all_tags = registry.resolve_tags(all_tags)
    except Exception:
        pass
    return client.create_run(experiment_id, tags=all_tags, run_name=name).info.run_id


def log_fit(
    estimator: Any,
    frame: Any,
    *,
    run: Any = None,
    backtest: Any = None,
    plot: bool = True,
    register_as: str | None = None,
) -> FitLog:
    """Log a fitted estimator to MLflow: params, dataset fingerprint, history, metrics, plot and
    the pyfunc model.

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
        Fitted.
    frame : polars.DataFrame, polars.LazyFrame or tuple
        The training frame (``(X, y)`` for an RNNRegressor). Checked before a run is opened
        against what the estimator records of its training data: the columns and dtypes,
        the series (``keys_``; also a long enough series the model does not know) and the
        last time of each (``train_end_``).
    run : mlflow.entities.Run or str, optional
        Run (or run ID) to log into; default the active run, else a new run (in the
        experiment chosen as described in the module docstring) that is ended afterwards.
    backtest : BacktestResult or polars.DataFrame, optional
        A :class:`~forecaster.evaluation.backtest.BacktestResult` (its ``by_step`` and ``aggregate``
        tables), or a frame of backtest metrics, one row per (fold, horizon step) or per step:
        numeric columns are metrics; a ``step`` (or ``horizon_step``, ``h``, ``horizon``)
        column gives the step, a ``target`` column the target. Logged as
        ``backtest_<metric>`` per step (mean over folds) plus ``backtest_<metric>_overall``
        (``backtest_<target>_<metric>`` for several targets), and the table as
        ``backtest.csv``.
    plot : bool, default True
        Log ``forecast.png`` (forecasters only; see :func:`forecast_plot`).
    register_as : str, optional
        Register the model in the model registry under this name.

    Returns
    -------
    FitLog
        Run ID, model URI (for :func:`mlflow.pyfunc.load_model`), registered version, and
        where things went when logging failed (then a ForecasterWarning says so).

    Raises
    ------
    NotFittedError
        When ``estimator`` is not fitted.
    DataValidationError
        Before anything is logged or written: a ``frame`` that is not the training data (not
        a polars frame, without the training columns and dtypes, other series or series
        that end at other times, naming what differs; for an RNNRegressor not ``(X, y)`` of
        its window shape), a ``backtest`` that is no backtest, a ``plot`` that is not a bool,
        a ``run`` or ``register_as`` of the wrong type.
    """
    mlflow = _import_mlflow()
    if not hasattr(estimator, "network_") or not hasattr(estimator, "get_params"):
        from forecaster.exceptions import NotFittedError

        raise NotFittedError(
            f"log_fit needs a fitted forecaster estimator; this {type(estimator).__name__} is "
            "not one (fit it first)."
        )
    frame = _training_data(estimator, frame, "log_fit")
    _check_backtest(backtest)
    _check_flag("plot", plot)
    _check_optional_name("register_as", register_as)
    with bounded_requests():
        run_id, own = _resolve_run(mlflow, run)
        outcome = _Outcome(mlflow.get_tracking_uri(), run_id)
        outcome.check_server()
        return _log_new_fit(
            mlflow, outcome, estimator, frame, own, backtest, bool(plot), register_as
        )


def _check_backtest(backtest: Any) -> None:
    is_result = hasattr(backtest, "by_step") and hasattr(backtest, "aggregate")
    is_frame = isinstance(backtest, pl.DataFrame | pl.LazyFrame) or (
        type(backtest).__module__.startswith("pandas") and hasattr(backtest, "columns")
    )
    if backtest is not None and not is_result and not is_frame:
        raise DataValidationError(
            f"backtest must be a forecaster BacktestResult, a frame of backtest metrics or "
            f"None, got {_kind(backtest)}."
        )


def _check_optional_name(argument: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DataValidationError(f"{argument} must be a non-empty string or None, got {value!r}.")


def _log_new_fit(
    mlflow: Any,
    outcome: _Outcome,
    estimator: Any,
    frame: Any,
    own: bool,
    backtest: Any,
    plot: bool,
    register_as: str | None,
) -> FitLog:
    """:func:`log_fit` after its checks: create the run when it is ours, then log."""
    run_id = outcome.run_id
    client = outcome.client(mlflow)
    if own:
        experiment_id = outcome.remote("run", _experiment_for_new_run, mlflow)
        if experiment_id is not None:
            outcome.tracking_uri = mlflow.get_tracking_uri()
            client = outcome.client(mlflow)
            run_id = outcome.remote(
                "run", _create_run, mlflow, client, experiment_id, type(estimator).__name__
            )
            outcome.run_id = run_id
    return _log_fit(
        estimator,
        frame,
        mlflow=mlflow,
        client=client,
        outcome=outcome,
        own_run=own,
        backtest=backtest,
        plot=plot,
        register_as=register_as,
        context="Nothing else is affected.",
    )


# ------------------------------------------------------------------------------------------
# the fit hook (called by RNNForecaster.fit and RNNRegressor.fit)
# ------------------------------------------------------------------------------------------


def _mark_failed(client: Any, run_id: str, uri: str) -> None:
    with _state.lock:
        known = _state.probes.get(uri)
    if known is not None and known[1] is not None:
        return  # the server was unreachable lately: do not wait for it again
    with contextlib.suppress(Exception), bounded_requests():
        client.set_terminated(run_id, "FAILED")


class _FitTracker:
    """Logs one fit: params and fingerprint at the start, epochs live, the rest at the end."""

    def __init__(self, mlflow: Any, estimator: Any, data: Any) -> None:
        self.mlflow = mlflow
        self.data = data
        self.name = type(estimator).__name__
        self.started = time.perf_counter()
        self.live_epochs = 0
        self.inputs_logged = False
        self._finalizer: Any = None
        self.experiment_id: str | None = None
        self.parent: str | None = None
        active = mlflow.active_run()
        self.outcome = _Outcome(mlflow.get_tracking_uri(), None)
        self.outcome.check_server()
        self.client = self.outcome.client(mlflow)
        with _state.lock:
            use_active = active is not None and active.info.run_id not in _state.fitted_runs
            if use_active:
                _state.fitted_runs.add(active.info.run_id)
        self.own_run = not use_active
        if use_active:
            self.outcome.run_id = active.info.run_id
        elif active is not None:  # a further fit in the same active run: a nested run
            self.experiment_id, self.parent = active.info.experiment_id, active.info.run_id
        else:
            self.experiment_id = self.outcome.remote("run", _experiment_for_new_run, mlflow)
            if self.experiment_id is not None:
                self.outcome.tracking_uri = mlflow.get_tracking_uri()
                self.client = self.outcome.client(mlflow)
        self._start_run()
        self.fingerprint = self.outcome.local(
            "dataset fingerprint", _fingerprint_for, estimator, data
        )
        self._log_inputs(estimator)

    def _start_run(self) -> None:
        if not self.own_run or self.outcome.run_id is not None or self.experiment_id is None:
            return
        client, outcome = self.client, self.outcome
        outcome.run_id = outcome.remote(
            "run", _create_run, self.mlflow, client, self.experiment_id, self.name, self.parent
        )
        if outcome.run_id is not None:  # a fit that raises leaves its run FAILED
            self._finalizer = weakref.finalize(
                self, _mark_failed, client, outcome.run_id, outcome.tracking_uri
            )

    def _log_inputs(self, estimator: Any) -> None:
        if self.outcome.run_id is None or self.fingerprint is None or self.inputs_logged:
            return
        failures = len(self.outcome.not_logged)
        self.outcome.remote(
            "params and dataset fingerprint",
            _log_inputs,
            self.client,
            self.outcome.run_id,
            estimator,
            self.fingerprint,
        )
        self.inputs_logged = len(self.outcome.not_logged) == failures

    def on_epoch(self, record: Any, network: Any) -> None:
        """Epoch callback: log the epoch's losses (until the backend fails once)."""
        if self.outcome.run_id is None or self.outcome.broken:
            return
        try:
            with bounded_requests():
                metrics = _epoch_metrics(record.as_dict())
                _log_metrics(self.client, self.outcome.run_id, metrics)
            self.live_epochs = record.epoch
        except Exception as exc:
            self.outcome.fail(f"per-epoch metrics from epoch {record.epoch}", exc)
            self.outcome.broken = True  # no more live logging in this fit

    def finish(self, estimator: Any) -> FitLog | None:
        """Log the fitted estimator (after training); what failed before is tried again
        when the backend answers."""
        try:
            with bounded_requests():
                return self._finish(estimator)
        except Exception as exc:  # a bug here must not cost the user the fitted model
            warnings.warn(
                f"Logging this fit to MLflow failed unexpectedly ({_short(exc)}); the "
                "fitted estimator is unaffected. Save it with "
                "estimator.save(path) or log it with forecaster.tracking.core.log_fit().",
                ForecasterWarning,
                stacklevel=_user_stacklevel(),
            )
            return None
        finally:
            if self._finalizer is not None:  # the fit completed: its run is not FAILED
                self._finalizer.detach()

    def _finish(self, estimator: Any) -> FitLog:
        outcome = self.outcome
        outcome.not_logged = []  # retried below (the errors are kept for the warning)
        outcome.recheck()
        if self.client is None and not outcome.broken:
            self.client = outcome.client(self.mlflow)
        if self.own_run and self.parent is None and self.experiment_id is None:
            self.experiment_id = outcome.remote("run", _experiment_for_new_run, self.mlflow)
        self._start_run()
        self._log_inputs(estimator)
        return _log_fit(
            estimator,
            self.data,
            mlflow=self.mlflow,
            client=self.client,
            outcome=outcome,
            own_run=self.own_run,
            inputs_logged=self.inputs_logged or self.fingerprint is None,
            live_epochs=self.live_epochs,
            fingerprint=self.fingerprint,
            fit_seconds=time.perf_counter() - self.started,
            context="Training completed.",
        )


def _fit_tracker(estimator: Any, data: Any) -> _FitTracker | None:
    """The tracker of a fit about to start, or None when this fit is not logged.

    Called by ``fit`` only when mlflow was imported: a run can be active, or :func:`autolog`
    was called, only then.
    """
    module = sys.modules.get("mlflow")
    if module is None or _state.paused or not hasattr(module, "active_run"):
        return None
    try:
        if module.active_run() is None and not _state.autolog:
            return None
        with bounded_requests():
            return _FitTracker(_import_mlflow(), estimator, data)
    except Exception as exc:  # tracking must never break training
        warnings.warn(
            f"Cannot track this fit with MLflow ({_short(exc)}); training "
            "continues without tracking.",
            ForecasterWarning,
            stacklevel=_user_stacklevel(),
        )
        return None


# ------------------------------------------------------------------------------------------
# tuning
# ------------------------------------------------------------------------------------------


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _log_trial(
    client: Any,
    experiment_id: str,
    parent_run_id: str,
    study: Any,
    trial: Any,
    intermediate_key: str,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    state = getattr(trial.state, "name", str(trial.state))
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "optuna.study_name": study.study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.trial_state": state,
        "forecaster.kind": "trial",
    }
    for key, value in (trial.user_attrs or {}).items():
        tags[f"optuna.user_attr.{key}"] = _param_value(value)
    run = client.create_run(
        experiment_id,
        start_time=_ms(trial.datetime_start),
        tags=tags,
        run_name=f"trial-{trial.number}",
    )
    run_id = run.info.run_id
    ts = _ms(trial.datetime_complete) or _now_ms()
    metrics = []
    values = trial.values
    if values is not None:
        names = ["value"] if len(values) == 1 else [f"value_{i}" for i in range(len(values))]
        metrics += [Metric(n, float(v), ts, 0) for n, v in zip(names, values, strict=True)]
    for step, value in sorted((trial.intermediate_values or {}).items()):
        if value is not None and math.isfinite(value):
            metrics.append(Metric(intermediate_key, float(value), ts, int(step)))
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        metrics.append(Metric("trial_seconds", seconds, ts, 0))
    params = [Param(k, _param_value(v)) for k, v in trial.params.items()]
    for lo in range(0, max(len(params), 1), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[lo : lo + _MAX_PARAMS_PER_BATCH])
    _log_metrics(client, run_id, metrics)
    client.log_batch(run_id, tags=[RunTag("optuna.trial_state", state)])
    client.set_terminated(run_id, _TRIAL_STATUS.get(state, "FINISHED"), end_time=ts)
    return run_id


class _TrialLogger:
    """Optuna callback ``(study, frozen_trial)``: one nested child run per finished trial."""

    def __init__(
        self,
        parent_run_id: str,
        tracking_uri: str | None,
        intermediate_key: str,
        limits: Mapping[str, int],
    ) -> None:
        mlflow = _import_mlflow()
        self.parent_run_id = parent_run_id
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.client: Any = None
        self.intermediate_key = intermediate_key
        self.limits = dict(limits)
        self.experiment_id: str | None = None
        self.lock = threading.Lock()
        self.failed: list[int] = []
        self.warned = False

    def __call__(self, study: Any, trial: Any) -> None:
        with self.lock:
            if self.failed and self.warned:  # the backend failed: do not stall the study
                self.failed.append(trial.number)
                return
            with _state.lock:  # e.g. in a worker process: the limits of the process that asked
                for key, value in self.limits.items():
                    _state.limits.setdefault(key, value)
            try:
                with bounded_requests():
                    self._log(study, trial)
            except Exception as exc:
                self.failed.append(trial.number)
                if _is_unreachable(exc):
                    _mark_down(self.tracking_uri, _short(exc))
                if not self.warned:
                    self.warned = True
                    warnings.warn(
                        f"MLflow tracking failed ({mask_uri(self.tracking_uri)}): could not "
                        f"log trial {trial.number} of study {study.study_name!r} "
                        f"({_short(exc)}). Later trials are not logged either; the study itself "
                        "is unaffected, and "
                        "log_study() logs the missing trials once the tracking server is back.",
                        ForecasterWarning,
                        stacklevel=2,
                    )

    def _log(self, study: Any, trial: Any) -> None:
        from mlflow.entities import Metric

        down = _unreachable_reason(self.tracking_uri)
        if down is not None:
            raise TrackingUnavailableError(_unreachable_message(self.tracking_uri, down))
        if self.client is None:
            self.client = _import_mlflow().MlflowClient(self.tracking_uri)
        if self.experiment_id is None:
            self.experiment_id = self.client.get_run(self.parent_run_id).info.experiment_id
        _log_trial(
            self.client, self.experiment_id, self.parent_run_id, study, trial, self.intermediate_key
        )
        best = _best_value(study)
        if best is not None:
            self.client.log_batch(
                self.parent_run_id, metrics=[Metric("best_value", best, _now_ms(), trial.number)]
            )


def trial_callback(
    parent_run_id: str,
    *,
    tracking_uri: str | None = None,
    intermediate_key: str = "intermediate_value",
    request_timeout: float | None = None,
    max_retries: int | None = None,
) -> Callable[[Any, Any], None]:
    """An Optuna callback that logs every finished trial as a nested MLflow run.

    Each child run (named ``trial-<number>``, tag ``mlflow.parentRunId``) holds the trial's
    params, its value(s) (``value``, or ``value_0``... for several objectives), its state
    (tag ``optuna.trial_state``; run status FINISHED, KILLED for pruned, FAILED), its
    intermediate values as step metrics, its duration and user attributes (tags). The parent
    run gets ``best_value`` at step = trial number.

    Parameters
    ----------
    parent_run_id : str
        The study's run, from :func:`log_study`.
    tracking_uri : str, optional
        Default the current tracking URI (pass it to worker processes).
    intermediate_key : str, default "intermediate_value"
        Metric name of the intermediate values (e.g. ``"val_loss"``).
    request_timeout, max_retries : optional
        HTTP limits of the callback's requests, for a process where :func:`configure` did not
        set them (e.g. a worker process; see :func:`configure`).

    Returns
    -------
    callable
        ``callback(study, frozen_trial) -> None`` for ``study.optimize(callbacks=[...])``.
        Thread-safe. A tracking failure never stops the study: one ForecasterWarning, and the
        later trials are skipped (:func:`log_study` fills the gaps afterwards). An
        unreachable server is found by one short probe before the first request.

    Raises
    ------
    DataValidationError
        For arguments of the wrong type.

    Examples
    --------
    >>> trial_callback("")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: parent_run_id must be a non-empty string ...
    """
    for name, value in (("parent_run_id", parent_run_id), ("intermediate_key", intermediate_key)):
        if not isinstance(value, str) or not value.strip():
            raise DataValidationError(
                f"{name} must be a non-empty string (the study's run ID from log_study), got "
                f"{value!r}."
            )
    _check_optional_name("tracking_uri", tracking_uri)
    limits = _check_limits(request_timeout, max_retries)
    return _TrialLogger(parent_run_id, tracking_uri, intermediate_key, limits)


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except Exception:  # no complete trial yet, or several objectives
        return None


_STUDY_TOKEN_ATTR = "forecaster.tracking_token"
_IDENTITY_ATTRS = ("forecaster.task", "forecaster.search_space")


def _study_key(study: Any) -> str:
    """The key of a study's parent run (tag ``forecaster.study_key``): a digest of a random
    token the study keeps in its own user attributes (``forecaster.tracking_token``, written
    by its first :func:`log_study`), its name and its recorded identity (the task and search
    space :func:`forecaster.tune` records). The token lives where the study lives: a study
    resumed from its storage finds its run again; an in-memory study, or a study created
    again under an old name (or in another storage), gets a run of its own."""
    attrs = study.user_attrs
    token = attrs.get(_STUDY_TOKEN_ATTR)
    if not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{32}", token)):
        study.set_user_attr(_STUDY_TOKEN_ATTR, secrets.token_hex(16))
        attrs = study.user_attrs  # read again: another process may have been first
        token = attrs[_STUDY_TOKEN_ATTR]
    identity = [attrs.get(name) for name in _IDENTITY_ATTRS]
    text = json.dumps([token, study.study_name, identity], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _study_run(
    mlflow: Any, client: Any, experiment_id: str, study: Any, key: str
) -> tuple[str, bool]:
    """``(run_id, created)`` of the study's parent run, found by its key (see
    :func:`_study_key`), never by the study name alone."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`forecaster.study_key` = '{key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        return found[0].info.run_id, False
    tags = {"forecaster.study": study.study_name, "forecaster.study_key": key}
    tags["forecaster.kind"] = "study"
    name = f"study-{study.study_name}"
    return _create_run(mlflow, client, experiment_id, name, None, tags), True


def _log_data_version(client: Any, run_id: str, fingerprint: Mapping[str, Any]) -> None:
    """The data of this call as params ``data.<n>.*`` (``n`` = 0, 1, ... for each new
    dataset the study is run on), unless the latest version is the same data. Params never
    change: a study resumed on newer data adds a version instead of overwriting one."""
    logged = client.get_run(run_id).data.params
    versions = sorted(
        int(match.group(1))
        for name in logged
        if (match := re.fullmatch(r"data\.(\d+)\.hash", name)) is not None
    )
    if versions and logged[f"data.{versions[-1]}.hash"] == str(fingerprint.get("hash")):
        return
    n = versions[-1] + 1 if versions else 0
    params = _fingerprint_params(fingerprint)
    _log_params(client, run_id, {f"data.{n}.{k[len('data.') :]}": v for k, v in params.items()})


def log_study(
    study: Any,
    estimator: Any,
    frame: Any,
    best_estimator: Any = None,
    experiment: str | None = None,
    *,
    register_as: str | None = None,
    storage: str | None = None,
) -> str | None:
    """Create (or update) the parent run of an Optuna study.

    Call it before ``study.optimize`` to get the parent run ID for :func:`trial_callback`,
    and again afterwards with the refitted best estimator.

    Which run is the study's: the run tagged with the study's key (``forecaster.study_key``),
    a digest of a random token the study keeps in its user attributes
    (``forecaster.tracking_token``, written by the first call), its name and its recorded
    task and search space. The token lives with the study, so a study resumed from its
    storage (a daily pipeline on newer data) finds its run again, while an in-memory study
    (``storage=None``), or a study created again under an old name or in another storage,
    gets a run of its own: two studies never share a parent run because their names are
    equal.

    Parameters
    ----------
    study : optuna.Study
    estimator : RNNForecaster or RNNRegressor
        The estimator being tuned (its parameters are the base of every trial).
    frame : polars.DataFrame or polars.LazyFrame
        The tuning data (its fingerprint is logged).
    best_estimator : fitted estimator, optional
        The best trial's estimator refitted on ``frame``: logged on the parent run like
        :func:`log_fit` (its parameters as tags ``best.<name>``, history, metrics, plot and
        model). ``frame`` must be the data it was fitted on (see :func:`log_fit`).
    experiment : str, optional
        Experiment name; default as described in the module docstring.
    register_as : str, optional
        Register the best model under this name.
    storage : str, optional
        Where the study lives, for the tag ``forecaster.study_storage`` (masked by
        :func:`mask_uri`); :func:`forecaster.tune` passes its storage URL, or "in-memory".

    Returns
    -------
    str or None
        The parent run ID (None when tracking failed; a ForecasterWarning says so).

    Raises
    ------
    DataValidationError
        Before anything is logged: ``study`` is no Optuna study, ``estimator`` no
        estimator, ``frame`` not the data ``best_estimator`` was fitted on, or an argument of
        the wrong type.
    NotFittedError
        When ``best_estimator`` is not fitted.

    Notes
    -----
    MLflow params never change, so the parent run's params are what a study never changes:
    ``study_name`` and ``directions``, plus one version of the data per dataset the study
    was run on (``data.0.rows``, ``data.0.hash``, ... ``data.1.hash`` after a resume on
    newer data). What may differ from one call to the next is logged as tags, which show the
    latest call: the tuned estimator's parameters (``template.<name>``), ``sampler``,
    ``pruner``, the data fingerprint (``data.rows``, ``data.hash``, ...; also the artifact
    ``dataset.json``) and ``forecaster.study_storage``. The run also gets trial counts and
    ``best_value`` (metrics), the best trial's params (tags ``best.<name>`` and
    ``best_params.json``), and a child run for any finished trial that has none yet (e.g.
    while the server was down). It is FINISHED once the study has a finished trial, RUNNING
    before.
    """
    frame = _check_study_args(
        study, estimator, frame, best_estimator, experiment, register_as, storage
    )
    mlflow = _import_mlflow()
    with bounded_requests():
        outcome = _Outcome(mlflow.get_tracking_uri(), None)
        outcome.check_server()
        experiment_id = outcome.remote("study run", _experiment_for_new_run, mlflow, experiment)
        outcome.tracking_uri = mlflow.get_tracking_uri()
        client = outcome.client(mlflow)
        run_id = None
        key = outcome.local("study run (the study's key)", _study_key, study)
        if experiment_id is not None and key is not None:
            found = outcome.remote(
                "study run", _study_run, mlflow, client, experiment_id, study, key
            )
            run_id = None if found is None else found[0]
        outcome.run_id = run_id
        fingerprint = outcome.local("dataset fingerprint", _fingerprint_for, estimator, frame)
        if run_id is None:
            if best_estimator is None:
                _warn(outcome, None, "The study itself is unaffected.")
                return None
            _log_fit(  # no run: the best model and its records go to the fallback folder
                best_estimator,
                frame,
                mlflow=mlflow,
                client=client,
                outcome=outcome,
                own_run=False,
                fingerprint=fingerprint,
                context="The study itself is unaffected.",
            )
            return None
        return _log_study_run(
            study, estimator, frame, best_estimator, register_as, storage,
            mlflow=mlflow, client=client, outcome=outcome, experiment_id=experiment_id,
            fingerprint=fingerprint,
        )  # fmt: skip


def _check_study_args(
    study: Any,
    estimator: Any,
    frame: Any,
    best_estimator: Any,
    experiment: Any,
    register_as: Any,
    storage: Any,
) -> Any:
    """Refuse arguments of :func:`log_study` that are not what it needs; the frame (as
    :func:`_training_data` returns it when there is a best estimator)."""
    needed = ("study_name", "get_trials", "directions", "user_attrs", "set_user_attr")
    if not all(hasattr(study, a) for a in needed):
        raise DataValidationError(
            f"log_study needs an optuna.Study as its first argument, got {type(study).__name__}."
        )
    if not hasattr(estimator, "get_params"):
        raise DataValidationError(
            f"log_study needs the tuned estimator (a forecaster estimator), got "
            f"{type(estimator).__name__}."
        )
    _check_optional_name("experiment", experiment)
    _check_optional_name("register_as", register_as)
    _check_optional_name("storage", storage)
    if best_estimator is None:
        return frame
    if not hasattr(best_estimator, "network_"):
        from forecaster.exceptions import NotFittedError

        raise NotFittedError(
            f"best_estimator must be a fitted forecaster estimator (the refitted best trial), "
            f"got an unfitted {type(best_estimator).__name__}."
        )
    return _training_data(best_estimator, frame, "log_study")


def _log_study_run(
    study: Any,
    estimator: Any,
    frame: Any,
    best_estimator: Any,
    register_as: str | None,
    storage: str | None,
    *,
    mlflow: Any,
    client: Any,
    outcome: _Outcome,
    experiment_id: str,
    fingerprint: dict[str, Any] | None,
) -> str | None:
    """:func:`log_study` once the study's run is known (``outcome.run_id``)."""
    run_id = outcome.run_id
    params = {
        "study_name": study.study_name,
        "directions": ",".join(d.name for d in study.directions),
    }
    tags = {f"template.{k}": v for k, v in _estimator_params(estimator).items()}
    tags["sampler"] = type(study.sampler).__name__
    tags["pruner"] = type(getattr(study, "pruner", None)).__name__
    if storage is not None:
        tags["forecaster.study_storage"] = mask_uri(storage)
    outcome.remote("study params", _log_params, client, run_id, params)
    if fingerprint is not None:
        tags.update(_fingerprint_params(fingerprint))
        outcome.remote("dataset fingerprint", client.log_dict, run_id, fingerprint, "dataset.json")
        outcome.remote("dataset version", _log_data_version, client, run_id, fingerprint)
    outcome.remote("study tags", _log_tags, client, run_id, tags)
    trials = outcome.local("study trials", study.get_trials, deepcopy=False) or []
    finished = [t for t in trials if t.state.is_finished()]
    counts: dict[str, float] = {"n_trials": float(len(trials))}
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        counts[f"n_{state.lower()}"] = float(sum(t.state.name == state for t in trials))
    best = _best_value(study)
    from mlflow.entities import Metric

    ts = _now_ms()
    metrics = [Metric(k, v, ts, 0) for k, v in counts.items()]
    if best is not None:
        metrics.append(Metric("best_value", best, ts, study.best_trial.number))
        best_params = dict(study.best_trial.params)
        outcome.remote("best params", client.log_dict, run_id, best_params, "best_params.json")
        best_tags = {f"best.{k}": _param_value(v) for k, v in best_params.items()}
        best_tags["best.trial_number"] = str(study.best_trial.number)
        outcome.remote("best params", _log_tags, client, run_id, best_tags)
    outcome.remote("study metrics", _log_metrics, client, run_id, metrics)
    if finished:
        outcome.remote("trial runs", _backfill_trials, client, experiment_id, run_id, study)
    if best_estimator is not None:
        return _log_fit(
            best_estimator,
            frame,
            mlflow=mlflow,
            client=client,
            outcome=outcome,
            own_run=bool(finished),
            inputs_logged=False,
            fingerprint=fingerprint,
            register_as=register_as,
            param_prefix="best.",
            params_as_tags=True,
            context="The study itself is unaffected.",
        ).run_id
    if finished:
        outcome.remote("run status", client.set_terminated, run_id, "FINISHED")
    if outcome.not_logged:
        _warn(outcome, None, "The study itself is unaffected.")
    return run_id


def _backfill_trials(client: Any, experiment_id: str, parent_run_id: str, study: Any) -> None:
    logged: set[int] = set()
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            number = run.data.tags.get("optuna.trial_number")
            if number is not None and number.isdigit():
                logged.add(int(number))
        token = page.token
        if not token:
            break
    for trial in study.get_trials(deepcopy=False):
        if trial.state.is_finished() and trial.number not in logged:
            _log_trial(client, experiment_id, parent_run_id, study, trial, "intermediate_value")

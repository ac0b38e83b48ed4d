"""Tracking settings: where runs go by default, the HTTP limits of forecaster's requests, the
module state, and the masking of secrets in URIs.

Every request forecaster sends runs inside :func:`bounded_requests`: MLflow's HTTP timeout,
retry count and backoff are :data:`DEFAULT_REQUEST_TIMEOUT` s, :data:`DEFAULT_MAX_RETRIES` and
:data:`DEFAULT_BACKOFF_FACTOR` unless you set them, with
``configure(request_timeout=..., max_retries=...)`` (wins for forecaster's requests) or MLflow's
environment variables ``MLFLOW_HTTP_REQUEST_TIMEOUT``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``,
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` (kept as you set them). MLflow retries opening a
SQLAlchemy store ``mlflow.store.db.utils.MAX_RETRY_COUNT`` times (about 100 s per store) and has
no setting for it, so inside the block forecaster lowers it to ``max_retries + 1`` attempts
(restored after the block), and sets ``PGCONNECT_TIMEOUT`` unless you set it. Secrets in
tracking URIs and storage URLs are masked in every message (:func:`mask_uri`).

Examples
--------
>>> DEFAULT_TRACKING_URI
'sqlite:///mlflow/mlflow.db'
"""

from __future__ import annotations

import contextlib
import importlib
import math
import numbers
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecaster._io import sqlite_url
from forecaster.exceptions import DataValidationError, ForecasterError, MissingExtraError

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
    "TrackingTarget",
    "bounded_requests",
    "default_tracking_uri",
    "mask_uri",
    "request_limits",
]


DEFAULT_TRACKING_URI = "sqlite:///mlflow/mlflow.db"
"""Tracking store used when none is set (relative to the working directory; a pipeline's is
under its project folder: :func:`default_tracking_uri`)."""


DEFAULT_ARTIFACT_ROOT = "mlflow/artifacts"
"""Artifact root of the experiments created on the default store."""


DEFAULT_EXPERIMENT = "forecaster"
"""Experiment used when none is set with ``mlflow.set_experiment`` or the environment."""


DEFAULT_FALLBACK_DIR = "mlflow/unlogged"
"""Where a fit that could not be logged leaves its model and records."""


INSTALL_HINT = 'pip install "forecaster-rnn[track]"'


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


class TrackingState:
    """What tracking remembers in this process (one instance: :data:`state`).

    Attributes
    ----------
    lock : threading.RLock
        Guards every attribute.
    target : TrackingTarget or None
        What :func:`~forecaster.tracking.target.configure` set.
    defaults : dict
        ``(tracking URI, experiment name) -> experiment ID`` of the experiments runs went to
        when none was chosen (not made MLflow's current experiment).
    chosen : tuple of str or None
        ``(experiment ID, tracking URI)``: the ID in ``MLFLOW_EXPERIMENT_ID`` is the process's
        choice on that store (``configure`` or forecaster chose it there, or a run found an
        experiment with that ID there). The same ID on another store is checked there first.
    carried : tuple or None
        ``(experiment ID, tracking URI, name or None)``: the ``MLFLOW_EXPERIMENT_ID`` found when
        forecaster set its tracking URI (none was set), chosen on MLflow's default store ``URI``,
        where it names the experiment ``name`` (None: none). The choice follows to forecaster's
        store by that name; the ID itself is that other store's.
    fallback_dir : pathlib.Path or None
        Root of the fallback folders, when configured.
    fitted_runs : set of str
        Active runs that already hold a fit (a further fit logs into a nested run).
    last : FitLog or None
        What the latest fit (or ``log_fit``) logged.
    limits : dict
        The HTTP limits given to ``configure``.
    probes : dict
        ``uri -> (when, reason if down, seconds the answer is trusted)``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (a fresh process's state; tests use it)."""
        with self.lock:
            self.target: TrackingTarget | None = None
            self.defaults: dict[tuple[str, str], str] = {}  # (uri, name) -> experiment ID
            self.chosen: tuple[str, str] | None = None  # (MLFLOW_EXPERIMENT_ID, its store)
            self.carried: tuple[str, str, str | None] | None = None  # (ID, its store, name)
            self.fallback_dir: Path | None = None
            self.fitted_runs: set[str] = set()  # active runs that already hold a fit
            self.last: Any = None  # a runs.FitLog
            self.limits: dict[str, int] = {}  # set with configure(request_timeout=..., ...)
            # uri -> (when, reason if down, seconds the answer is trusted)
            self.probes: dict[str, tuple[float, str | None, float]] = {}
            if getattr(self, "bounded_depth", 0) == 0:  # never inside a bounded block
                self.bounded_depth = 0
                self.bounded_saved: dict[str, str | None] = {}
                self.bounded_db_retries: int | None = None  # MLflow's value while ours is set


state = TrackingState()
"""The process's tracking state."""


def import_mlflow() -> Any:
    """Import mlflow or raise an ImportError that says how to install it."""
    try:
        import mlflow.pyfunc

        import mlflow
        from mlflow import MlflowClient  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"forecaster.tracking needs MLflow (and matplotlib for plots), which are not "
            f"installed: {INSTALL_HINT}"
        ) from exc
    if not hasattr(mlflow, "start_run"):  # e.g. a folder named mlflow/ shadowing the library
        raise MissingExtraError(
            f"'import mlflow' found {getattr(mlflow, '__path__', mlflow)!r}, not the MLflow "
            f"library (a folder named mlflow shadows it). Install it with {INSTALL_HINT} or "
            "run from another directory."
        )
    return mlflow


def default_tracking_uri(root: str | os.PathLike[str] | None = None) -> str:
    """The tracking URI used when none is given: ``MLFLOW_TRACKING_URI`` if set, else
    :data:`DEFAULT_TRACKING_URI` (``sqlite:///mlflow/mlflow.db``, relative to the working
    directory, MLflow's convention).

    Parameters
    ----------
    root : str or path-like, optional
        A pipeline's project folder: the default store is then ``mlflow/mlflow.db`` under it,
        and the URI absolute (a SQLite ``MLFLOW_TRACKING_URI`` with a relative file too: made
        absolute against the working directory, where MLflow reads it), so that the URI a run
        records names its store from any directory. A folder whose path holds ``?`` or
        ``%`` is refused (``ForecasterError``; see :func:`forecaster._io.sqlite_url`), but
        for a relative ``MLFLOW_TRACKING_URI`` of the user's, which is then kept as written
        (MLflow reads it against the working directory).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> default_tracking_uri() == (os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)
    True
    >>> with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": ""}):
    ...     default_tracking_uri("/srv/project")
    'sqlite:////srv/project/mlflow/mlflow.db'
    """
    given = os.environ.get("MLFLOW_TRACKING_URI")
    uri = given or DEFAULT_TRACKING_URI
    match = re.fullmatch(r"sqlite:///([^?]*)(.*)", uri, re.DOTALL)
    if root is None or match is None:
        return uri
    file, query = match.groups()
    if not file or file.startswith(":memory:") or Path(file).is_absolute():
        return uri
    base = Path.cwd() if given else Path(root)
    path = Path(os.path.normpath(base.absolute() / file))
    try:
        return sqlite_url(path, "the MLflow tracking store") + query
    except ForecasterError:
        if given:  # the user's URI, read by MLflow against the working directory as written
            return uri
        raise


def check_limits(request_timeout: Any, max_retries: Any) -> dict[str, int]:
    """The HTTP limits given to :func:`~forecaster.tracking.configure` (or
    :func:`~forecaster.tracking.trial_callback`), checked: ``{name: value}`` of those given."""
    limits: dict[str, int] = {}
    if request_timeout is not None:
        is_number = isinstance(request_timeout, numbers.Real) and not isinstance(
            request_timeout, bool
        )
        seconds = float(request_timeout) if is_number else math.nan
        if not math.isfinite(seconds) or not 0 < seconds <= MAX_REQUEST_TIMEOUT:
            raise DataValidationError(
                f"request_timeout must be a positive number of seconds up to "
                f"{MAX_REQUEST_TIMEOUT} (an hour), got {request_timeout!r}. It bounds every "
                "request to the tracking server; e.g. request_timeout=30."
            )
        limits["request_timeout"] = math.ceil(seconds)
    if max_retries is not None:
        is_integer = isinstance(max_retries, numbers.Integral) and not isinstance(max_retries, bool)
        if not is_integer or not 0 <= int(max_retries) <= _MAX_RETRIES_LIMIT:
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
        value: Any = state.limits.get(key)
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
    with state.lock:
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
        limit_database_retries()
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
                utils = _db_utils()
                if utils is not None and state.bounded_db_retries is not None:
                    utils.MAX_RETRY_COUNT = state.bounded_db_retries
                state.bounded_db_retries = None


def _db_utils(*, load: bool = False) -> Any:
    """MLflow's module ``mlflow.store.db.utils``, which holds ``MAX_RETRY_COUNT`` (no setting
    of MLflow changes it), or None. Imported when ``load`` (a SQLAlchemy store is about to be
    used, so MLflow will import it anyway); otherwise only when already imported, so that an
    HTTP store never pays for importing SQLAlchemy. The one look-up of a loaded module here."""
    name = "mlflow.store.db.utils"
    if load:
        with contextlib.suppress(Exception):
            return importlib.import_module(name)
    return sys.modules.get(name)


def limit_database_retries(*, load: bool = False) -> None:
    """Inside :func:`bounded_requests`: MLflow's SQLAlchemy stores retry creating their engine
    ``mlflow.store.db.utils.MAX_RETRY_COUNT`` (10) times with a doubling sleep, about 100 s per
    store (200 s for the tracking and registry stores of a database that cannot be opened).
    MLflow has no setting for it, so the block lowers it to ``max_retries + 1`` attempts, once
    that module is loaded (``load``: import it now; restored when the outermost block ends)."""
    utils = _db_utils(load=load)
    with state.lock:
        if utils is None or state.bounded_depth == 0 or state.bounded_db_retries is not None:
            return
        original = getattr(utils, "MAX_RETRY_COUNT", None)
        if not isinstance(original, int):
            return
        state.bounded_db_retries = original
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
    for the end of a userinfo). Every message of :mod:`forecaster.tracking` and
    :mod:`forecaster.tuning` that quotes a tracking URI or a storage URL goes through it.

    Parameters
    ----------
    text : str
        A URL, or any text holding URLs (a message); anything else is read as ``str(text)``.

    Returns
    -------
    str
        The text with its secrets masked.

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


def short_error(exc: BaseException, limit: int = 300) -> str:
    """``"Type: message"`` on one line, at most ``limit`` characters, passwords masked."""
    text = mask_uri(re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}"))
    return text if len(text) < limit else text[: limit - 3] + "..."


def describe_kind(value: Any) -> str:
    """``None``, ``a pandas.core.frame.DataFrame``, ``a list`` ...: a value's kind, for messages."""
    if value is None:
        return "None"
    return f"a {type(value).__module__}.{type(value).__name__}".replace("builtins.", "")


def check_flag(argument: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise DataValidationError(
            f"{argument} must be True or False, got {value!r} ({type(value).__name__}). "
            f"Pass a bool, e.g. {argument}=True."
        )


def check_optional_name(argument: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DataValidationError(f"{argument} must be a non-empty string or None, got {value!r}.")

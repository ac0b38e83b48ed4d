"""Tracking never breaks training, and a dead tracking store costs seconds, not minutes.

- Before its first request, a fit, :func:`~forecaster.tracking.log_study`,
  :func:`~forecaster.tracking.trial_callback` and :func:`~forecaster.tracking.configure` probe
  the tracking store once (:func:`unreachable_reason`): an ``http(s)://`` server with
  ``GET /health`` (:data:`~forecaster.tracking.config.PROBE_TIMEOUT` seconds); a PostgreSQL,
  MySQL or SQL Server store with a TCP connection to its host and port (same timeout); a SQLite
  store by checking that the file is a SQLite database this user can write, in a folder where
  it can create files (the folder is created first, as MLflow would). A store that refuses the
  connection, does not answer, has a name that does not resolve, answers with a 5xx status or
  no HTTP at all, or cannot be written is *unreachable*: nothing is sent to it. A store that
  answered, or did not answer within the timeout, is remembered for
  :data:`~forecaster.tracking.config.PROBE_INTERVAL` seconds, so a grid search or a study pays
  the timeout once; one found down at once (refused, HTTP 5xx, unwritable) is asked again at
  the next check. A request that failed holds off the requests of the next
  :data:`~forecaster.tracking.config.PROBE_INTERVAL` seconds (a fit's per-epoch metrics), but
  not the end of that fit: :meth:`Outcome.recheck` probes the store then, and what was missed
  is logged when it answers.
- :func:`is_unreachable` classifies an error of a request; :class:`Outcome` records what was
  and was not logged and skips the remote steps once the store is found unreachable.
- What could not be logged goes, with the model, to a new folder
  ``mlflow/unlogged/<time>-<run id>-<token>/`` (:func:`save_fallback`; root
  ``configure(fallback_dir=...)``, never inside a folder forecaster wrote; without one the
  working directory's, a pipeline's project folder's: :func:`fallback_root_default`),
  written in a hidden staging folder and renamed into place, never over an existing one; one
  :class:`~forecaster.exceptions.ForecasterWarning` says what was not logged and where it is
  (:func:`warn_not_logged`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from forecaster._io import (
    discard_staging,
    owning_folder,
    publish_directory,
    sqlite_file_problem,
    staging_directory,
    write_atomic,
    write_bytes_atomic,
    write_manifest,
)
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    TrackingUnavailableError,
    warn_at_caller,
)
from forecaster.tracking.config import (
    DEFAULT_FALLBACK_DIR,
    FALLBACK_KIND,
    PROBE_INTERVAL,
    PROBE_TIMEOUT,
    limit_database_retries,
    mask_uri,
    request_limits,
    short_error,
    state,
)
from forecaster.tracking.store import store_client

__all__ = [
    "Outcome",
    "check_fallback_root",
    "fallback_root",
    "fallback_root_default",
    "is_unreachable",
    "mark_down",
    "save_fallback",
    "store_scheme",
    "unreachable_message",
    "unreachable_reason",
    "warn_not_logged",
]


_CHEAP_PROBE = 0.5  # seconds: a probe that failed faster than this is not cached


_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}


def store_scheme(uri: str) -> str:
    """``"http"``, ``"sqlite"``, ``"postgresql"`` ... of a tracking URI (the driver dropped);
    ``""`` for a plain path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", uri)
    return match.group(1).split("+", 1)[0].lower() if match else ""


def _probe(uri: str, timeout: float) -> str | None:
    """Whether the store ``uri`` can be used: None when it can (or when it is of a kind that
    is not probed), else why not. HTTP: ``GET <uri>/health``; a database server: a TCP
    connection to its host and port; SQLite: the file and its folder (see
    :func:`_sqlite_problem`)."""
    scheme = store_scheme(uri)
    if scheme in ("http", "https"):
        return _probe_http(uri, timeout)
    if scheme == "sqlite" or scheme in _DB_PORTS:  # MLflow will load its SQLAlchemy store
        limit_database_retries(load=True)
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
        return short_error(_root_cause(exc))
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
        return f"{host}:{port}: {short_error(exc)}"


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
    problem = sqlite_file_problem(path, create_parents=True)  # a folder, not SQLite, ...
    if problem is not None:
        return problem
    if path.is_file() and not os.access(path, os.R_OK | os.W_OK):
        return f"the SQLite file {path} is not writable by this user"
    folder = path.parent
    try:  # as MLflow does before it opens the store
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{path} cannot be written: its folder cannot be created ({short_error(exc)})"
    try:  # the only reliable test (root ignores permission bits; /proc refuses anyway)
        descriptor, probe = tempfile.mkstemp(prefix=".forecaster-probe-", dir=folder)
    except OSError as exc:
        return f"{path} cannot be written: its folder {folder} is not writable ({short_error(exc)})"
    os.close(descriptor)
    os.unlink(probe)
    return None


def unreachable_reason(uri: str, *, fresh: bool = False) -> str | None:
    """Why the tracking store ``uri`` cannot be used, or None (see :func:`_probe`). A store
    that answers, or was found down slowly (no answer within the probe's timeout, or a request
    that failed: see :func:`mark_down`), is trusted for :data:`PROBE_INTERVAL` seconds, so
    that a grid search pays the timeout once, not once per fit; a store found down at once
    (refused, HTTP 5xx, a SQLite folder that cannot be written) costs next to nothing to ask
    again and is probed at the next check (e.g. at the end of a fit: a server restarted
    meanwhile gets the fit's records). ``fresh``: probe now, whatever is remembered."""
    with state.lock:
        known = state.probes.get(uri)
    if not fresh and known is not None and time.monotonic() - known[0] < known[2]:
        return known[1]
    started = time.monotonic()
    reason = _probe(uri, min(float(request_limits()["request_timeout"]), PROBE_TIMEOUT))
    took = time.monotonic() - started
    trusted = PROBE_INTERVAL if reason is None or took >= _CHEAP_PROBE else 0.0
    with state.lock:
        state.probes[uri] = (time.monotonic(), reason, trusted)
    return reason


def mark_down(uri: str, reason: str) -> None:
    """Remember that a request found ``uri`` unreachable (no probe for a while)."""
    with state.lock:
        state.probes[uri] = (time.monotonic(), reason, PROBE_INTERVAL)


def unreachable_message(uri: str, reason: str) -> str:
    scheme, shown = store_scheme(uri), mask_uri(uri)
    if scheme == "sqlite":
        return (
            f"The MLflow tracking store {shown} cannot be used: {reason}. Point "
            "MLFLOW_TRACKING_URI (or forecaster.tracking.configure) at a SQLite file in a "
            "writable folder, or make this one writable"
        )
    if scheme in _DB_PORTS:
        return (
            f"The MLflow tracking database {shown} cannot be reached ({reason}); checked with "
            f"a {PROBE_TIMEOUT:g} s connection to its host and port. Start the database or fix "
            "the tracking URI (MLFLOW_TRACKING_URI or forecaster.tracking.configure)"
        )
    return (
        f"The MLflow tracking server {shown} cannot be reached ({reason}); checked with a "
        f"{PROBE_TIMEOUT:g} s probe of {shown.rstrip('/')}/health. Start the server or fix the "
        "tracking URI (MLFLOW_TRACKING_URI or forecaster.tracking.configure)"
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


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the tracking backend cannot be reached (so stop trying)."""
    seen = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError | TimeoutError):
            return True
        module = type(error).__module__
        if module.startswith(("requests", "urllib3")) and (
            "Connection" in type(error).__name__ or "Timeout" in type(error).__name__
        ):
            return True
        text = str(error)
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
        error = error.__cause__ or error.__context__
    return False


class Outcome:
    """What was and was not logged; after an unreachable-backend error, remote steps are
    skipped (recorded as not logged) instead of each waiting for its own timeout."""

    def __init__(self, tracking_uri: str, run_id: str | None) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.not_logged: list[str] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.broken = False
        self.request_failed = False  # a request found the store unreachable (not a probe)
        self.interrupted = False  # a KeyboardInterrupt stopped the logging (see log_fitted)

    def check_server(self) -> None:
        """Probe the tracking server (see :func:`unreachable_reason`) before the first
        request; an unreachable one makes every remote step a skipped one."""
        reason = unreachable_reason(self.tracking_uri)
        if reason is not None:
            self.broken = True
            error = TrackingUnavailableError(unreachable_message(self.tracking_uri, reason))
            self.errors.append(("tracking server", error))

    def client(self, mlflow: Any) -> Any:
        """An ``MlflowClient`` of the tracking URI, opened by
        :func:`~forecaster.tracking.store.store_client` (a new local SQLite store's tables are
        made under its lock); None (remote steps skipped) when the store was found unreachable
        or MLflow cannot open it (an unknown scheme, a database it cannot create...)."""
        if self.broken:
            return None
        try:
            return store_client(mlflow, self.tracking_uri)
        except Exception as exc:
            self.fail("tracking store", exc)
            self.broken = True
            return None

    def recheck(self) -> None:
        """After a failure: whether the server answers again; if so, remote steps are tried
        again. After a request of this outcome failed (e.g. a fit's per-epoch metrics), the
        server is probed now (once): the :data:`PROBE_INTERVAL` a failed request holds off
        the next requests for is not trusted at the end of a fit. Otherwise (the server was
        found down by a probe) it is probed at most once per :data:`PROBE_INTERVAL`."""
        if not self.broken:
            return
        fresh, self.request_failed = self.request_failed, False
        if unreachable_reason(self.tracking_uri, fresh=fresh) is None:
            self.broken = False

    def fail(self, what: str, exc: BaseException) -> None:
        self.not_logged.append(what)
        self.errors.append((what, exc))
        if is_unreachable(exc):
            self.broken = self.request_failed = True
            mark_down(self.tracking_uri, short_error(exc))

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
        return short_error(self.errors[0][1], 600) if self.errors else "unknown error"


def warn_not_logged(outcome: Outcome, fallback: Path | None, context: str) -> None:
    items = list(dict.fromkeys(outcome.not_logged))
    run = f"run {outcome.run_id}" if outcome.run_id else "no run could be created"
    saved = (
        f" The model and everything not logged are saved in {fallback.resolve()} (reload the "
        f"model with forecaster.load({str(fallback.resolve() / 'model')!r}))."
        if fallback is not None
        else ""
    )
    warn_at_caller(
        f"MLflow tracking failed ({mask_uri(outcome.tracking_uri)}, {run}): {outcome.summary()}. "
        f"Not logged: {', '.join(items)}. {context}{saved}",
        ForecasterWarning,
    )


_default_root: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "forecaster_fallback_root", default=None
)
"""The default fallback root of this thread's (context's) :func:`fallback_root_default`
block; None: :data:`DEFAULT_FALLBACK_DIR` of the working directory."""


@contextlib.contextmanager
def fallback_root_default(folder: Path) -> Iterator[None]:
    """Within the block (this thread's), the default fallback root is ``folder`` instead of
    :data:`DEFAULT_FALLBACK_DIR` of the working directory: a pipeline's is ``mlflow/unlogged``
    in its project folder, beside its tracking store. A root set with ``configure(fallback_dir=
    ...)`` still wins."""
    token = _default_root.set(folder)
    try:
        yield
    finally:
        _default_root.reset(token)


def fallback_root() -> Path:
    """The configured fallback root; the default one (with a warning) when the configured one
    lies in a folder forecaster wrote (a model saved there after :func:`configure`). The
    default is :data:`DEFAULT_FALLBACK_DIR` of the working directory, or the folder of the
    :func:`fallback_root_default` block the call is in."""
    default = _default_root.get() or Path(DEFAULT_FALLBACK_DIR)
    if state.fallback_dir is None:
        return default
    try:
        check_fallback_root(state.fallback_dir)
    except DataValidationError as exc:
        warn_at_caller(
            f"{exc} The records go to {default.absolute()} instead.",
            ForecasterWarning,
        )
        return default
    return state.fallback_dir


def check_fallback_root(root: Path) -> None:
    """Refuse a fallback root that is, or lies inside, a folder forecaster wrote (a saved
    model, a pipeline run, another fallback folder): a record folder there would be a folder
    its manifest does not list, and forecaster would refuse to replace or delete it."""
    owner = owning_folder(root / "records")
    if owner is not None:
        folder, kind = owner
        where = "is" if folder == Path(os.path.abspath(root)) else "is inside"
        raise DataValidationError(
            f"fallback_dir={str(root)!r} {where} {folder}, a {kind} folder forecaster wrote: "
            "unlogged records written there would be files its manifest does not list, and "
            f"forecaster would then refuse to replace or delete that {kind}. Pass a folder "
            f"outside it (the default is {DEFAULT_FALLBACK_DIR!r})."
        )


def save_fallback(
    outcome: Outcome,
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
    folder = fallback_root().absolute() / name
    staging = None
    try:
        staging = staging_directory(folder)
        if model_dir is not None and model_dir.is_dir():
            shutil.copytree(model_dir, staging / "model")
        else:
            estimator.save(staging / "model")
        if plot_file is not None and plot_file.is_file():
            write_atomic(staging / plot_file.name, lambda tmp: shutil.copyfile(plot_file, tmp))
        info = {
            **record,
            "tracking_uri": mask_uri(outcome.tracking_uri),
            "run_id": outcome.run_id,
            "not_logged": list(dict.fromkeys(outcome.not_logged)),
            "errors": [f"{what}: {short_error(e, 2000)}" for what, e in outcome.errors],
        }
        text = json.dumps(info, indent=2, default=str)
        write_bytes_atomic(staging / "run.json", text.encode("utf-8"))
        details = {"run_id": outcome.run_id, "tracking_uri": mask_uri(outcome.tracking_uri)}
        write_manifest(staging, FALLBACK_KIND, details)
        publish_directory(staging, folder, kind=FALLBACK_KIND, same=_never_replace)
    except BaseException as exc:  # the disk failed too (say so), or a KeyboardInterrupt
        if staging is not None:  # ours (a new temporary folder); publish removes it itself
            discard_staging(staging)
        if not isinstance(exc, Exception):
            raise
        outcome.fail(f"local copy in {folder}", exc)
        return None
    return folder


def _never_replace(manifest: Mapping[str, Any]) -> str:
    """For :func:`forecaster.publish_directory`: a fallback folder is never replaced."""
    return "another fit's unlogged records are there; they are kept."

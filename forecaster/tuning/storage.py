"""The study storage: :func:`make_storage`, its URL checks and its errors.

A storage that cannot hold a study is a :class:`~forecaster.exceptions.StorageError` naming it
(password masked) before anything runs. An RDB storage made here sends a heartbeat for every
running trial; a trial whose process stopped (killed, power loss) is failed by Optuna once it
has sent none for the grace period, and queued again once (see :data:`MAX_RETRY`).
"""

from __future__ import annotations

import contextlib
import numbers
import os
import random
import re
import sqlite3
import time
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from forecaster._io import is_memory_sqlite, sqlite_file_problem, sqlite_url
from forecaster._warnings import catching_warnings
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    StorageError,
    warn_at_caller,
)
from forecaster.tracking import mask_uri
from forecaster.tuning.common import import_optuna
from forecaster.tuning.retries import (
    INTERRUPTED_ATTR,
    MAX_RETRY,
    retry_callback,
    retry_interrupted_trials,
)

__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "INTERRUPTED_ATTR",
    "MAX_RETRY",
    "RUNNING_POLL",
    "StorageError",
    "await_running_trials",
    "default_storage_url",
    "fail_stale_trials",
    "finished_trials",
    "has_heartbeat",
    "is_storage_error",
    "make_storage",
    "retry_interrupted_trials",
    "storage_errors",
    "storage_label",
    "storage_url",
    "study_storage",
    "warn_unjudged_trials",
]

HEARTBEAT_INTERVAL = 10
"""Seconds between the heartbeats of a running trial in an RDB storage."""

GRACE_PERIOD = 60
"""Seconds without a heartbeat after which another process marks a running trial failed."""

RUNNING_POLL = 0.5
"""Seconds between two looks at the storage while :func:`await_running_trials` waits."""


def default_storage_url(root: str | os.PathLike[str] | None = None) -> str:
    """The SQLite URL of the default study storage: ``optuna.db`` next to the tracking store.

    The folder of ``MLFLOW_TRACKING_URI`` when that is a ``sqlite:///`` URI (a relative file
    read from the working directory, as MLflow reads it), else ``mlflow/`` under ``root`` (a
    pipeline's project folder, where its tracking store is) or, without one, under the
    current working directory. The folder is created by :func:`make_storage`. A folder whose
    path holds ``?`` or ``%`` is refused (``ForecasterError``: the URL would name another
    file; see :func:`forecaster._io.sqlite_url`), but beside a relative SQLite
    ``MLFLOW_TRACKING_URI`` of the user's: the URL is then relative too, as that one is.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict("os.environ", {"MLFLOW_TRACKING_URI": "sqlite:////srv/mlflow.db"}):
    ...     default_storage_url()
    'sqlite:////srv/optuna.db'
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    folder = (Path.cwd() if root is None else Path(root).absolute()) / "mlflow"
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:":
            folder = Path(path).parent
    database = (folder if folder.is_absolute() else Path.cwd() / folder) / "optuna.db"
    try:
        return sqlite_url(database, "the default study storage")
    except ForecasterError:
        if not folder.is_absolute():  # beside the user's relative store, as MLflow reads it
            return f"sqlite:///{folder / 'optuna.db'}"
        raise


_SUPPORTED_STORAGE = (
    "Use 'default' (a SQLite file next to the tracking store), None (in memory, no resume), a "
    "SQLAlchemy database URL such as 'sqlite:///studies/optuna.db' or "
    "'postgresql+psycopg://user:password@host/db' (also mysql+pymysql://...), a pathlib.Path to "
    "a SQLite file, or an optuna storage object (e.g. optuna.storages.JournalStorage)."
)
_CONNECT_TIMEOUT = 10
"""Seconds a PostgreSQL storage waits to connect (unless the URL sets ``connect_timeout``)."""
_CREATE_ATTEMPTS = 5
"""Tries to open a new database whose tables another process is creating at the same moment."""
_CREATE_BACKOFF = 0.1
"""Seconds before the second try (doubled, and up to twice as long at random, each time)."""
_JITTER = random.Random()
"""The random part of those pauses: a generator of its own, so that a retry leaves the
caller's ``random`` module state as it was."""


def make_storage(
    storage: Any = "default",
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
) -> Any:
    """The Optuna storage that :func:`tune` uses for ``storage``.

    Parameters
    ----------
    storage : "default", str, path-like, optuna storage or None
        ``"default"`` is :func:`default_storage_url` (its folder is created); a string is a
        SQLAlchemy database URL (``sqlite:///path.db``, ``postgresql://user:password@host/db``,
        ...); a path is a SQLite file; an Optuna storage object is returned as it is; ``None`` is
        an in-memory study (returned as ``None``). The folder of a SQLite file is created when
        its parent exists (a longer chain of missing folders is refused as a likely typo). An
        in-memory SQLite URL (``sqlite:///:memory:``, ``sqlite://``) is refused: it lives in
        one connection and Optuna's storage opens several; pass ``None`` instead.
    heartbeat_interval, grace_period : int
        Seconds: a running trial records a heartbeat every ``heartbeat_interval``; one without
        a heartbeat for ``grace_period`` is marked failed by the next trial of any process
        (Optuna's ``fail_stale_trials``).
    max_retry : int
        A trial failed for its lost heartbeat is queued again with the same parameters up to
        ``max_retry`` times (Optuna's ``RetryHeartbeatStaleTrialCallback``; 0: never).

    Returns
    -------
    optuna.storages.RDBStorage, the given storage, or None

    Raises
    ------
    StorageError
        When the storage cannot be used (see :class:`StorageError`); nothing is created then.

    Examples
    --------
    >>> import tempfile
    >>> storage = make_storage(f"sqlite:///{tempfile.mkdtemp()}/studies/optuna.db")
    >>> storage.heartbeat_interval, storage.grace_period
    (10, 60)
    >>> make_storage("mongodb://db.example/optuna")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.StorageError: Cannot use the study storage 'mongodb://...
    """
    optuna = import_optuna()
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise DataValidationError(f"{name} must be an integer >= 1 (seconds), got {value!r}.")
    if isinstance(max_retry, bool) or not isinstance(max_retry, numbers.Integral) or max_retry < 0:
        raise DataValidationError(f"max_retry must be an integer >= 0, got {max_retry!r}.")
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    url = _storage_to_url(storage)
    engine_kwargs: dict[str, Any] = {}
    if _dialect(url) == "sqlite":
        _check_sqlite_file(url, create_parents=storage == "default")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif _dialect(url) == "postgresql" and "connect_timeout" not in url:
        driver = url.split("://", 1)[0]
        if driver in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
            engine_kwargs = {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT}}
    options = dict(engine_kwargs=engine_kwargs, **retry_callback(optuna, int(max_retry)))
    options.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    with storage_errors(url, "open"):
        return _open_rdb_storage(optuna, url, options)


def _open_rdb_storage(optuna: Any, url: str, options: dict[str, Any]) -> Any:
    """``optuna.storages.RDBStorage(url, **options)``, tried again (after a short, growing,
    jittered pause) when it lost the race to create a new database's tables to another process
    opening the same new storage at the same moment: both create the tables and stamp the schema
    version, and the loser fails with ``UNIQUE constraint failed: alembic_version`` or ``table
    ... already exists``. The next try finds the schema the winner made. Optuna has no retry of
    its own for this (its retry callbacks are for trials)."""
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with catching_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **options)
        except Exception as exc:
            if not _is_creation_race(exc):
                raise
            if attempt == _CREATE_ATTEMPTS - 1:
                detail = re.sub(r"\s+", " ", str(getattr(exc, "orig", None) or exc)).strip()
                raise StorageError(
                    f"Cannot use the study storage {mask_uri(url)!r}: {_CREATE_ATTEMPTS} tries "
                    "to open it failed while other processes were creating its tables at the "
                    f"same moment (last: {type(exc).__name__}: {detail[:300]}). Create the "
                    "storage once before starting the processes that share it, e.g. "
                    f"forecaster.tuning.make_storage({mask_uri(url)!r}), then start them."
                ) from exc
            time.sleep(_CREATE_BACKOFF * 2**attempt * (1 + _JITTER.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def _is_creation_race(exc: BaseException) -> bool:
    """Whether ``exc`` is what a process gets when another one creates the same new database's
    tables at the same moment: a duplicate schema-version row, or a table created in between."""
    if type(exc).__module__.split(".", 1)[0] != "sqlalchemy":
        return False
    text = str(getattr(exc, "orig", None) or exc).lower()
    if type(exc).__name__ == "IntegrityError":
        return "alembic_version" in text or "version_info" in text
    return "already exists" in text


def fail_stale_trials(study: Any) -> None:
    """Mark FAIL the running trials of ``study`` that sent no heartbeat for the storage's grace
    period (their process was killed, or its machine lost), and queue them again through the
    storage's retry callback (:func:`make_storage`): ``optuna.storages.fail_stale_trials``.
    A storage without heartbeats (in memory, journal) has no stale trials.

    The storage is read outside any :func:`~forecaster._warnings.catching_warnings` block
    (Optuna's function unwrapped from the decorator that warns it is experimental): a storage
    that hangs would hold that process-wide lock, and every later block of the process would
    wait for the storage (:func:`~forecaster.tuning.study_log.running_elsewhere` leaves a
    thread blocked on it). An Optuna whose function is not so wrapped is called inside one."""
    optuna = import_optuna()
    failing = optuna.storages.fail_stale_trials
    unwrapped = getattr(failing, "__wrapped__", None)  # functools.wraps of @experimental_func
    if callable(unwrapped):
        unwrapped(study)
        return
    with catching_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        failing(study)


def await_running_trials(study: Any, storage: Any, ignore: Collection[int] = ()) -> None:
    """Wait until the trials of ``study`` RUNNING now (other processes', or those of a killed
    process) are no longer running, but for those numbered in ``ignore``.

    The storage is read every :data:`RUNNING_POLL` seconds, and its stale trials failed each
    time (:func:`fail_stale_trials`): a trial whose process was killed stops being waited for
    once it has sent no heartbeat for the storage's grace period (and is queued again by its
    retry callback); a live one is waited for until it ends. Optuna records a trial's first
    heartbeat in a thread of its own, after the trial started: a process killed before it
    leaves a trial with no heartbeat, which Optuna never finds stale. A trial still running
    after the grace period and one heartbeat interval is given one heartbeat here (a live
    trial beats anyway), so that the grace period fails it too. Trials started meanwhile are
    not waited for. A storage without heartbeat (``has_heartbeat`` False: in memory, a journal)
    cannot tell a dead trial from a live one, so nothing is waited for there."""
    if storage is None or not has_heartbeat(storage):
        return
    running = (import_optuna().trial.TrialState.RUNNING,)

    def numbers() -> set[int]:
        return {t.number for t in study.get_trials(deepcopy=False, states=running)}

    interval = storage.get_heartbeat_interval()
    grace = getattr(storage, "grace_period", None) or 2 * interval  # Optuna's default
    beat_at: float | None = time.monotonic() + grace + interval
    waiting = numbers() - set(ignore)
    while waiting:
        time.sleep(RUNNING_POLL)
        if beat_at is not None and time.monotonic() >= beat_at:
            study_id = storage.get_study_id_from_name(study.study_name)
            for number in waiting:  # alive, or killed before its first heartbeat
                storage.record_heartbeat(
                    storage.get_trial_id_from_study_id_trial_number(study_id, number)
                )
            beat_at = None
        fail_stale_trials(study)
        waiting &= numbers()


def finished_trials(storage: Any, name: str) -> int:
    """The finished (complete or pruned) trials of the study ``name`` in ``storage`` (what
    :func:`make_storage` takes), 0 when there is no such study. Nothing is created in a SQLite
    file: one that does not exist yet, or holds no Optuna tables, holds no study and is not
    opened by Optuna (which would write its tables into it). A database server is opened."""
    optuna = import_optuna()
    if storage is None:
        return 0
    if not isinstance(storage, optuna.storages.BaseStorage):
        url = _storage_to_url(storage)
        if _dialect(url) == "sqlite" and not is_memory_sqlite(url):
            path = url.split(":///", 1)[1].split("?", 1)[0]
            if not path.startswith("file:") and not _holds_optuna_tables(Path(path)):
                return 0
        storage = make_storage(storage)
    with storage_errors(storage_url(storage), "open"):
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:  # no such study
            return 0
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        return len(storage.get_all_trials(study_id, deepcopy=False, states=states))


def _holds_optuna_tables(path: Path) -> bool:
    """Whether the SQLite file ``path`` exists and holds Optuna's ``studies`` table (read
    only: the file is not changed)."""
    if not path.is_file():
        return False
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
            ).fetchone()
    except sqlite3.Error:  # not a database: Optuna's own error says so when it opens it
        return True
    return found is not None


def has_heartbeat(storage: Any) -> bool:
    """Whether ``storage`` records Optuna's heartbeat of running trials (an RDB storage opened
    with ``heartbeat_interval``, as :func:`make_storage` opens one), so that the trials of a
    killed process are found (:func:`fail_stale_trials`)."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return callable(interval) and interval() is not None


def warn_unjudged_trials(study: Any, storage: Any, label: str) -> frozenset[int]:
    """The numbers of the RUNNING trials of ``study`` that its storage cannot tell dead or
    alive (it records no heartbeat: a ``JournalStorage``, an ``RDBStorage`` opened without
    ``heartbeat_interval``), with a warning that says so and how to fix it. The caller does
    not count them toward ``n_trials``: a trial of a killed process stays RUNNING forever, and
    counted it would keep the study from ever completing. None for a storage with a heartbeat
    (its dead trials are failed by :func:`fail_stale_trials`) or in memory (its trials die
    with their process)."""
    optuna = import_optuna()
    if storage is None or has_heartbeat(storage):
        return frozenset()
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return frozenset()
    states = (optuna.trial.TrialState.RUNNING,)
    numbers = sorted(t.number for t in study.get_trials(deepcopy=False, states=states))
    if not numbers:
        return frozenset()
    kind = type(storage).__name__
    if isinstance(storage, optuna.storages.RDBStorage):
        url = mask_uri(str(storage.url))
        fix = (
            f"Open it with Optuna's heartbeat, and a dead trial is failed after the grace "
            f"period and run again: pass its URL (storage={url!r}: tune opens it with "
            f"heartbeat_interval={HEARTBEAT_INTERVAL} and grace_period={GRACE_PERIOD}), or "
            f"optuna.storages.RDBStorage(url, heartbeat_interval={HEARTBEAT_INTERVAL}, "
            f"grace_period={GRACE_PERIOD})."
        )
    else:
        fix = (
            f"A {kind} has no heartbeat: use a database storage (storage='sqlite:///...' or "
            f"'postgresql://...', which tune opens with Optuna's heartbeat_interval and "
            f"grace_period), where a dead trial is failed after the grace period and run again."
        )
    shown = numbers if len(numbers) <= 10 else [*numbers[:10], "..."]
    warn_at_caller(
        f"The study {study.study_name!r} ({label}) has {len(numbers)} RUNNING trial(s) "
        f"{shown} that its storage cannot tell dead or alive: this {kind} records no "
        "heartbeat, so the trial of a killed process stays RUNNING forever. This call does "
        "not count them "
        "toward n_trials; if another process is still running them, the study ends with up "
        f"to {len(numbers)} finished trial(s) more than n_trials. {fix} If no process runs "
        f"them, mark them failed by hand: study = optuna.load_study(study_name="
        f"{study.study_name!r}, storage=<this storage>), then for each number n of "
        f"{shown}: study.tell(n, state=optuna.trial.TrialState.FAIL).",
        ForecasterWarning,
    )
    return frozenset(numbers)


def _storage_to_url(storage: Any) -> str:
    """The database URL of ``storage`` ("default", a URL or a path), or a StorageError."""
    if isinstance(storage, os.PathLike):
        return f"sqlite:///{Path(storage).resolve()}"
    if isinstance(storage, str) and storage == "default":
        return default_storage_url()
    if isinstance(storage, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", storage):
        dialect = _dialect(storage)
        from sqlalchemy.dialects import registry

        try:
            registry.load(storage.split("://", 1)[0].replace("+", "."))
        except ImportError as exc:
            raise StorageError(
                f"Cannot use the study storage {mask_uri(storage)!r}: its database driver is not "
                f"installed ({exc.__cause__ or exc}). {_driver_hint(storage)} {_SUPPORTED_STORAGE}"
            ) from exc
        except Exception as exc:  # sqlalchemy.exc.NoSuchModuleError: not a SQLAlchemy database
            raise StorageError(
                f"Cannot use the study storage {mask_uri(storage)!r}: {dialect!r} is not a "
                f"database that Optuna's storage (SQLAlchemy) supports. {_SUPPORTED_STORAGE}"
            ) from exc
        return storage
    shown = mask_uri(storage) if isinstance(storage, str) else storage
    raise StorageError(f"storage={shown!r} is not a database URL. {_SUPPORTED_STORAGE}")


def _dialect(url: str) -> str:
    name = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if name == "postgres" else name


def _check_sqlite_file(url: str, *, create_parents: bool) -> None:
    """Refuse a SQLite path that cannot hold a study: a folder, a device or FIFO, a file that is
    not a SQLite database, a folder chain that does not exist (created for ``"default"``)."""
    if is_memory_sqlite(url):
        raise StorageError(
            f"Cannot use the study storage {url!r}: an in-memory SQLite database belongs to one "
            "connection, and Optuna's storage opens several (heartbeats, worker processes), so "
            "the study would break mid-run and could not be resumed. Pass storage=None for an "
            "in-memory study, or a file such as 'sqlite:///studies/optuna.db'."
        )
    path_text = url.split(":///", 1)[1].split("?", 1)[0]
    if path_text.startswith("file:"):
        return  # a SQLite URI filename (sqlite:///file:...?uri=true)
    path = Path(path_text)

    def refuse(problem: str) -> StorageError:
        return StorageError(
            f"Cannot use the study storage {url!r}: {problem}. Point it at a new file in an "
            f"existing folder, or at a SQLite database written by Optuna. {_SUPPORTED_STORAGE}"
        )

    problem = sqlite_file_problem(path, create_parents=create_parents)
    if problem is not None:
        raise refuse(problem)
    parent = path.parent
    if path.exists() or parent.is_dir():
        return
    try:
        parent.mkdir(parents=create_parents, exist_ok=True)
    except OSError as exc:
        raise refuse(f"cannot create the folder {parent} ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def storage_errors(url: str | None, doing: str) -> Iterator[None]:
    """Turn a database or Optuna storage error into a :class:`StorageError` (``doing`` "open")
    or a :class:`~forecaster.ForecasterError` (during the study)."""
    try:
        yield
    except ForecasterError:
        raise
    except Exception as exc:
        if not is_storage_error(exc):
            raise
        where = f"the study storage {mask_uri(url)!r}" if url else "the study storage"
        detail = re.sub(r"\s+", " ", str(getattr(exc, "orig", None) or exc)).strip()
        detail = detail if len(detail) < 400 else detail[:397] + "..."
        if isinstance(exc, ImportError):
            detail = str(exc.__cause__ or exc)
            raise StorageError(
                f"Cannot use {where}: its database driver is not installed ({detail}). "
                f"{_driver_hint(url or '')} {_SUPPORTED_STORAGE}"
            ) from exc
        if doing == "open":
            raise StorageError(
                f"Cannot use {where}: {type(exc).__name__}: {detail}. Check that the database "
                "exists and is writable (a SQLite file in a writable folder; a running "
                f"database server that accepts these credentials). {_SUPPORTED_STORAGE}"
            ) from exc
        raise ForecasterError(
            f"{where[0].upper()}{where[1:]} failed while {doing}: {type(exc).__name__}: "
            f"{detail}. The trials finished before are kept in it; rerun the same call to "
            "resume once the database works again."
        ) from exc


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the database layer (SQLAlchemy, a DB driver, Optuna's
    storage), not from a trial or the caller's code."""
    optuna = import_optuna()
    if isinstance(exc, ImportError | optuna.exceptions.StorageInternalError):
        return True
    module = type(exc).__module__ or ""
    if module.split(".", 1)[0] in ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "pymysql"):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and "optuna storage upgrade" in text


def _driver_hint(url: str) -> str:
    scheme = url.split("://", 1)[0]
    if scheme == "postgresql+psycopg2":
        return "Install it with: pip install psycopg2-binary"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return (
            'Install it with: pip install "psycopg[binary]" (SQLAlchemy\'s default PostgreSQL '
            "driver; for psycopg2 write the URL as postgresql+psycopg2://...)."
        )
    return "Install the driver that SQLAlchemy names for this URL."


def storage_url(storage: Any) -> str | None:
    url = getattr(storage, "url", None)
    return mask_uri(url) if isinstance(url, str) else None


def storage_label(storage: Any, url: str | None) -> str:
    """Where a study lives, for the tracking tag ``forecaster.study_storage``: its masked
    URL, ``"in-memory"``, or the class of another storage object."""
    if url is not None:
        return url
    optuna = import_optuna()
    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        return "in-memory"
    return type(storage).__name__


def study_storage(storage: Any, n_workers: int) -> Any:
    """The study storage (:func:`make_storage`); a database one when workers share it."""
    optuna = import_optuna()
    storage_obj = make_storage(storage)
    if n_workers > 1 and (
        storage_obj is None or isinstance(storage_obj, optuna.storages.InMemoryStorage)
    ):
        raise DataValidationError(
            "n_workers > 1 shares the study through a database: use storage='default', a "
            "'sqlite:///...' file or a 'postgresql://...' URL instead of storage=None or an "
            "in-memory storage."
        )
    return storage_obj

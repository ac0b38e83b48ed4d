"""Opening a tracking store: :func:`store_client`, which lets one process at a time create
the tables of a new local SQLite store.

MLflow creates (and migrates) a SQLite store's tables when a process first opens it, with
no lock of its own: two processes opening the same new database at once (two pipeline
commands started together on a fresh ``mlflow/mlflow.db``) both run the migrations, and the
loser fails (``duplicate column name``, ``table ... already exists``), so its runs went
untracked. The first time a process opens a local SQLite store it holds an exclusive lock
(:func:`forecaster._io.exclusive_lock`) on ``.<database name>.lock`` next to the database, so
the second process waits for the first to finish the tables, then finds them made. A lock,
not a retry (as the Optuna storage's :func:`~forecaster.tuning.make_storage` does for its own
tables): MLflow's migrations alter tables one statement at a time, and a loser failing
half-way would leave a store at no known schema version to retry from.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from forecaster._io import exclusive_lock
from forecaster.tracking.config import state

__all__ = ["STORE_CREATE_WAIT", "sqlite_file", "store_client"]

STORE_CREATE_WAIT = 300.0
"""Seconds a process waits for another one creating a new SQLite store's tables."""

_opened: set[Path] = set()
"""The local SQLite stores this process has opened (their tables exist)."""


def sqlite_file(uri: str) -> Path | None:
    """The database file of a local SQLite store; None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :]
    if not db or db.startswith(":memory:"):
        return None
    return Path(db)


def store_client(mlflow: Any, uri: str) -> Any:
    """``mlflow.MlflowClient(uri)`` (which opens the store, creating a new database's
    tables); the first time this process opens a local SQLite store, inside the lock of the
    module docstring, its folder created first (parents too) so that the lock can be taken
    there. A folder that cannot be created or written holds no new store: it is opened
    without the lock (MLflow's error says what is wrong). Every first open of a store in
    forecaster goes through here (an ``Outcome``'s client, a study's trial logger...).

    Raises
    ------
    ConcurrentRunError
        When another process held the lock for :data:`STORE_CREATE_WAIT` seconds.
    """
    db = sqlite_file(uri)
    if db is None:
        return mlflow.MlflowClient(uri)
    key = db.resolve()
    with state.lock:
        known = key in _opened
    if not known:
        with contextlib.suppress(OSError):  # refused: MLflow's own error says so below
            db.parent.mkdir(parents=True, exist_ok=True)
    if known or not os.access(db.parent, os.W_OK):
        return mlflow.MlflowClient(uri)
    with exclusive_lock(
        db.parent / f".{db.name}.lock",
        timeout=STORE_CREATE_WAIT,
        what=f"the creation of the MLflow tables of {db}",
        hint="Run again once it has finished (it takes seconds).",
    ):
        client = mlflow.MlflowClient(uri)
    with state.lock:
        _opened.add(key)
    return client

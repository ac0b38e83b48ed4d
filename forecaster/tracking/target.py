"""Where runs go: :func:`configure`, and the experiment of a run forecaster starts.

Explicitly set tracking URIs win (``mlflow.set_tracking_uri``, ``MLFLOW_TRACKING_URI``).
Otherwise the default is ``sqlite:///mlflow/mlflow.db`` relative to the working directory, with
artifacts under ``mlflow/artifacts`` (set explicitly on the experiments created here, because
MLflow's own default differs between versions). Runs go to the experiment chosen with
``mlflow.set_experiment`` (read from ``MLFLOW_EXPERIMENT_ID``, which it sets: MLflow's documented
environment variables; no private MLflow state is read), ``MLFLOW_EXPERIMENT_NAME`` or
:func:`configure`, else to the experiment ``"forecaster"``. An experiment ID belongs to one store
(the IDs of two SQLite stores coincide), so it is used only on a store it was chosen on:

- With no tracking URI set, forecaster sets its default store as MLflow's tracking URI. An
  experiment chosen before (``mlflow.set_experiment`` put it in MLflow's own default store,
  ``./mlflow.db`` or ``./mlruns``) follows by name: it is created in forecaster's store when
  missing and made the process's choice there (``mlflow.set_experiment``), so every fit, and the
  user's own ``mlflow.start_run()`` afterwards, goes to it in the store forecaster set. An
  ``MLFLOW_EXPERIMENT_ID`` naming no experiment of MLflow's default store is warned about.
- With a tracking URI set, ``MLFLOW_EXPERIMENT_ID`` counts where that store has an experiment
  with the ID (checked once per store and ID), as MLflow's own ``start_run`` uses it. Otherwise
  runs go to ``"forecaster"`` of that store, with a warning unless the ID is known as another
  store's (one :func:`configure` chose, or one left on MLflow's default store as above).

Besides that carrying over and :func:`configure`, nothing here calls ``mlflow.set_experiment``:
a run forecaster starts never changes which experiment the process has chosen, so the user's own
``mlflow.start_run()`` afterwards goes to the experiment it went to before.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from forecaster._io import as_path
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    TrackingUnavailableError,
    warn_at_caller,
)
from forecaster.tracking.config import (
    DEFAULT_EXPERIMENT,
    TrackingTarget,
    bounded_requests,
    check_limits,
    default_tracking_uri,
    import_mlflow,
    mask_uri,
    short_error,
    state,
)
from forecaster.tracking.records import (
    created_run,
    end_run,
    tracking_write,
)
from forecaster.tracking.resilience import (
    check_fallback_root,
    is_unreachable,
    mark_down,
    unreachable_message,
    unreachable_reason,
)
from forecaster.tracking.store import sqlite_file, store_client

__all__ = [
    "configure",
    "create_run",
    "experiment_for_new_run",
    "experiment_scope",
    "process_choice_restored",
]


def _local_artifact_root(uri: str) -> Path | None:
    """Artifact root for a local SQLite store: ``artifacts`` next to the database file
    (``mlflow/artifacts`` for the default store); None for other stores."""
    db = sqlite_file(uri)
    return None if db is None else db.parent / "artifacts"


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
    limits = check_limits(request_timeout, max_retries)
    for arg, value in (("tracking_uri", tracking_uri), ("experiment", experiment)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise DataValidationError(f"{arg} must be a non-empty string or None, got {value!r}.")
    if fallback_dir is not None:
        check_fallback_root(as_path(fallback_dir, "fallback_dir"))
    mlflow = import_mlflow()
    uri = tracking_uri or default_tracking_uri()
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    with state.lock:
        state.limits.update(limits)
        if fallback_dir is not None:
            state.fallback_dir = Path(fallback_dir)
        state.target = _resolved_target(mlflow, uri, name, choose=True)
        return state.target


_scope: contextvars.ContextVar[TrackingTarget | None] = contextvars.ContextVar(
    "forecaster_experiment_scope", default=None
)
"""The target of the innermost :func:`experiment_scope` block of this thread (context): a
block in another thread neither sees nor restores it."""


@contextlib.contextmanager
def experiment_scope(
    experiment: str, *, tracking_uri: str | None = None
) -> Iterator[TrackingTarget]:
    """Within the block, the runs forecaster starts go to ``experiment`` (created when
    missing) on the store :func:`configure` would use; the process's own choice is left as it
    was: :func:`mlflow.set_experiment` is not called, ``MLFLOW_EXPERIMENT_ID`` and what
    :func:`configure` set are unchanged after the block. The tracking URI is set (as
    :func:`configure` sets it) and stays set, so the ``models:/`` URIs of the block's runs
    resolve after it; where none was set, an experiment chosen on MLflow's default store
    follows to forecaster's store by name (the module docs): the one case where the block
    calls :func:`mlflow.set_experiment`, so that a later ``mlflow.start_run()`` goes to that
    experiment, not to one of forecaster's store with the same ID. The block is this
    thread's: runs started in other threads are not in it (a thread started inside it
    included). A pipeline run tracks this way: a user's
    ``mlflow.start_run()`` after it goes to the user's experiment, not the pipeline's. Start
    the block's runs with ``mlflow.start_run(experiment_id=target.experiment_id)``.

    Parameters
    ----------
    experiment : str
        The MLflow experiment's name.
    tracking_uri : str, optional
        The store; default :func:`default_tracking_uri` (a pipeline passes its project's,
        ``default_tracking_uri(root)``).

    Yields
    ------
    TrackingTarget
        The store and the experiment of the block.

    Raises
    ------
    TrackingUnavailableError, ForecasterError
        As :func:`configure`.
    """
    mlflow = import_mlflow()
    uri = tracking_uri or default_tracking_uri()
    target = _scope.get()  # a block of the same experiment around this one: it is resolved
    if target is None or (target.experiment_name, target.tracking_uri) != (
        experiment,
        mlflow.get_tracking_uri() if tracking_uri is None else tracking_uri,
    ):
        with state.lock:
            target = _resolved_target(mlflow, uri, experiment, choose=False)
    token = _scope.set(target)  # this thread's (context's) block only
    try:
        yield target
    finally:
        _scope.reset(token)


@contextlib.contextmanager
def process_choice_restored() -> Iterator[None]:
    """After the block, the process's MLflow tracking URI and chosen experiment are as they
    were before it, whether it returns or raises: :func:`experiment_scope` leaves the store it
    sets as MLflow's tracking URI (and, where none was set, the experiment it carried over
    chosen there), which a pipeline run called from Python (a notebook) must not leave to the
    user's later ``mlflow`` calls. A URI that was not set is unset again (as MLflow's own
    ``_use_tracking_uri`` does); an ``MLFLOW_EXPERIMENT_ID`` that changed is chosen again on
    the restored store (a warning when that store refuses it). MLflow is not imported for
    this: a block that never imported it changed nothing of it."""
    before = _process_choice()
    remembered = state.chosen, state.carried
    try:
        yield
    finally:
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None and _process_choice() != before:
            with state.lock:
                _restore_choice(mlflow, *before)
                state.chosen, state.carried = remembered


def _process_choice() -> tuple[str | None, str | None]:
    """The process's tracking URI (None: not set) and ``MLFLOW_EXPERIMENT_ID`` (None: not
    set), read without importing MLflow (before it is imported, only the variables hold them)."""
    experiment = os.environ.get("MLFLOW_EXPERIMENT_ID") or None
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or not hasattr(mlflow, "is_tracking_uri_set"):
        return os.environ.get("MLFLOW_TRACKING_URI") or None, experiment
    return (mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None), experiment


def _restore_choice(mlflow: Any, uri: str | None, experiment: str | None) -> None:
    """Set the tracking URI ``uri`` (None: unset) and choose the experiment ``experiment``
    (None: forget the ID) again, as :func:`process_choice_restored` found them."""
    mlflow.set_tracking_uri(uri)
    if experiment is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        return
    try:
        with bounded_requests():
            mlflow.set_experiment(experiment_id=experiment)
    except Exception as exc:  # the user's store: its failure is not the pipeline's
        os.environ["MLFLOW_EXPERIMENT_ID"] = experiment
        warn_at_caller(
            f"Could not choose the MLflow experiment {experiment!r} again on "
            f"{mask_uri(mlflow.get_tracking_uri())} after the pipeline ({short_error(exc)}); "
            "MLFLOW_EXPERIMENT_ID names it again. Call mlflow.set_experiment to choose it.",
            ForecasterWarning,
        )


def _resolved_target(mlflow: Any, uri: str, name: str, *, choose: bool) -> TrackingTarget:
    """Point MLflow at ``uri`` (probed first) and make sure the experiment ``name`` exists
    there; ``choose``: also make it MLflow's current experiment (``mlflow.set_experiment``).
    Where no tracking URI was set, the experiment chosen on MLflow's default store
    (:func:`_carried_choice`) becomes the process's choice on ``uri``, unless ``choose``."""
    with bounded_requests():
        try:
            carried = None if choose or mlflow.is_tracking_uri_set() else _carried_choice(mlflow)
            down = unreachable_reason(uri)  # before anything waits on the store
            if down is None:
                mlflow.set_tracking_uri(uri)
                uri = mlflow.get_tracking_uri()
                down = unreachable_reason(uri)
            if down is not None:
                mlflow.set_tracking_uri(uri)  # kept: fits keep their records locally
                raise TrackingUnavailableError(unreachable_message(uri, down))
            client = store_client(mlflow, uri)
            if carried is not None:
                _carry(mlflow, client, uri, carried)
            location = _experiment_location(uri, name)
            experiment_id = _ensure_experiment(client, name, location)
            if choose:
                _choose(mlflow, uri, experiment_id)
        except ForecasterError:
            raise
        except Exception as exc:
            kind = TrackingUnavailableError if is_unreachable(exc) else ForecasterError
            if kind is TrackingUnavailableError:
                mark_down(uri, short_error(exc))
            raise kind(
                f"Cannot use the MLflow tracking store {mask_uri(uri)} (experiment "
                f"{name!r}): {short_error(exc)}. Check the tracking URI (MLFLOW_TRACKING_URI "
                "or forecaster.tracking.configure) and that the store is reachable."
            ) from exc
    return TrackingTarget(uri, experiment_id, name, location)


def _ensure_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return tracking_write(
                client.create_experiment, name, artifact_location=artifact_location
            )
        except MlflowException:  # created concurrently by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":  # never undone silently: refused, as MLflow does
        raise ForecasterError(_deleted_experiment_message(name, found.experiment_id))
    return found.experiment_id


def _deleted_experiment_message(name: str, experiment_id: str) -> str:
    """Why a run cannot go to the deleted experiment ``name`` and the two ways out (one line:
    a pipeline run's tracking warning quotes the first line of its error)."""
    return (
        f"The MLflow experiment {name!r} (ID {experiment_id}) is deleted, and forecaster does not "
        "undo a deletion (mlflow.set_experiment refuses a deleted experiment too). Restore it "
        f"(mlflow experiments restore --experiment-id {experiment_id}, or "
        f"MlflowClient().restore_experiment({experiment_id!r})), or log to another experiment "
        "(a pipeline spec's [tracking] experiment, or another name) or delete it permanently "
        "(mlflow gc) so that the name can be created anew."
    )


def _experiment_location(uri: str, name: str) -> str | None:
    root = _local_artifact_root(uri)
    if root is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"
    return (root / safe).resolve().as_uri()


def experiment_for_new_run(mlflow: Any, experiment: str | None = None) -> str:
    """Experiment ID for a run started here (no active run): see the module docstring.

    Nothing of MLflow's process state changes but the tracking URI when none was set, and
    then the experiment chosen on MLflow's default store, carried to forecaster's store by
    name (:func:`mlflow.set_experiment` is not called otherwise: the user's own
    ``mlflow.start_run()`` afterwards goes to the experiment it went to before)."""
    with state.lock:
        if not mlflow.is_tracking_uri_set():
            uri = default_tracking_uri()
            if experiment is not None:
                return _resolved_target(mlflow, uri, experiment, choose=False).experiment_id
            with bounded_requests():
                carried = _carried_choice(mlflow)
            if carried is not None:  # the user's experiment, in forecaster's store
                return _resolved_target(mlflow, uri, carried, choose=True).experiment_id
            return _default_experiment(mlflow, None)
        scoped = _scope_on(mlflow)
        if experiment is None and scoped is not None:
            return scoped
        uri = mlflow.get_tracking_uri()
        if experiment is not None:
            client = store_client(mlflow, uri)
            return _ensure_experiment(client, experiment, _experiment_location(uri, experiment))
        chosen = _chosen_experiment(mlflow)
        if chosen is not None:
            return chosen
        target = state.target
        if target is not None and target.tracking_uri == uri:
            return target.experiment_id
        return _default_experiment(mlflow, uri)


def _default_experiment(mlflow: Any, uri: str | None) -> str:
    """The ID of the experiment runs go to when none is chosen: ``MLFLOW_EXPERIMENT_NAME`` or
    ``"forecaster"`` on ``uri`` (default :func:`default_tracking_uri`, then set as MLflow's
    tracking URI), created when missing, not made MLflow's current experiment; remembered
    per store and name (``state.defaults``). A remembered one is looked up by its name again,
    as a named experiment is at every run (:func:`_ensure_experiment`): one deleted since is
    refused as a deleted named experiment is (MLflow's own error named a cached ID), and one
    deleted permanently since (``mlflow gc``) is created anew."""
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    if uri is not None and (uri, name) in state.defaults:  # the store was probed before
        client = store_client(mlflow, uri)
        found = _ensure_experiment(client, name, _experiment_location(uri, name))
    else:  # resolved (and the URI set) on first use
        target = _resolved_target(mlflow, uri or default_tracking_uri(), name, choose=False)
        uri, found = target.tracking_uri, target.experiment_id
    state.defaults[(uri, name)] = found
    return found


def _scope_on(mlflow: Any) -> str | None:
    """The experiment ID of the :func:`experiment_scope` block, when there is one and MLflow
    points at its store; else None."""
    scoped = _scope.get()
    if scoped is None or scoped.tracking_uri != mlflow.get_tracking_uri():
        return None
    return scoped.experiment_id


def _chosen_experiment(mlflow: Any) -> str | None:
    """The experiment ID chosen by the user on MLflow's current store
    (:func:`_chosen_id`), else the experiment named by ``MLFLOW_EXPERIMENT_NAME`` (created
    when missing, as MLflow does; a deleted one is refused, as :func:`_ensure_experiment`
    refuses it); None when neither."""
    uri = mlflow.get_tracking_uri()
    client = store_client(mlflow, uri)
    chosen = _chosen_id(mlflow, client, uri)
    if chosen is not None:
        return chosen
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        return None
    return _ensure_experiment(client, name, None)  # a deleted one: refused


def _chosen_id(mlflow: Any, client: Any, uri: str) -> str | None:
    """``MLFLOW_EXPERIMENT_ID`` (which ``mlflow.set_experiment`` sets, so it also names the
    experiment chosen in this process) where it belongs to the store ``uri``: the process's
    choice there (``state.chosen``), or an ID that store has an experiment with, as MLflow's
    own ``start_run`` uses it (the user may have chosen it there after a switch of store: IDs
    of two SQLite stores coincide). An ID left on MLflow's default store when forecaster set
    its own (``state.carried``) goes by its name there. Else None, with a warning unless the
    ID is one chosen on another store."""
    chosen = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
    if not chosen or state.chosen == (chosen, uri):
        return chosen or None
    carried = state.carried
    if carried is not None and carried[0] == chosen and carried[1] != uri:
        if carried[2] is not None:
            return _carry(mlflow, client, uri, carried[2])
        _warn_unknown_experiment(chosen, carried[1], "MLflow's default store")
        return None
    if _experiment_name(client, chosen) is not None:
        state.chosen = (chosen, uri)
        return chosen
    if state.chosen is None or state.chosen[0] != chosen:  # not one chosen on another store
        _warn_unknown_experiment(chosen, uri, "the tracking store")
    return None


def _carried_choice(mlflow: Any) -> str | None:
    """With no tracking URI set, before forecaster sets its own: the name of the experiment
    ``MLFLOW_EXPERIMENT_ID`` names on MLflow's default store (where ``mlflow.set_experiment``
    chose it), to carry over to forecaster's store; None when no ID is set, or when that store
    has no such experiment (with a warning; a SQLite file that does not exist is not
    created). Remembered in ``state.carried``: after the switch the ID is the other store's."""
    chosen = os.environ.get("MLFLOW_EXPERIMENT_ID", "").strip()
    if not chosen:
        return None
    origin = mlflow.get_tracking_uri()  # MLflow's own default store
    known = state.carried
    if known is not None and known[:2] == (chosen, origin):
        return known[2]
    db = sqlite_file(origin)
    name, unread = None, ""
    if db is None or db.exists():  # a SQLite file that does not exist has no experiments
        try:
            name = _experiment_name(store_client(mlflow, origin), chosen)
        except Exception as exc:  # the user's other store: its failure is not forecaster's
            unread = f" (it could not be read: {short_error(exc)})"
    state.carried = (chosen, origin, name)
    if name is None:
        _warn_unknown_experiment(chosen, origin, "MLflow's default store", unread)
    return name


def _warn_unknown_experiment(chosen: str, uri: str, store: str, unread: str = "") -> None:
    """Warn that ``MLFLOW_EXPERIMENT_ID`` names no experiment of ``store`` ``uri``."""
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    warn_at_caller(
        f"MLFLOW_EXPERIMENT_ID is {chosen!r}, but {store} {mask_uri(uri)} has no active "
        f"experiment with that ID{unread}, so mlflow.start_run() cannot use it either. A run "
        f"forecaster starts for a fit goes to the experiment {name!r} (MLFLOW_EXPERIMENT_NAME, "
        "else 'forecaster') of the store it logs to instead. Choose an experiment with "
        "mlflow.set_experiment(name) after setting the tracking URI, or unset "
        "MLFLOW_EXPERIMENT_ID.",
        ForecasterWarning,
    )


def _carry(mlflow: Any, client: Any, uri: str, name: str) -> str:
    """Make the experiment ``name`` of ``uri`` (created when missing) the process's choice:
    the user's choice on the store MLflow pointed at before forecaster set ``uri``."""
    experiment_id = _ensure_experiment(client, name, _experiment_location(uri, name))
    _choose(mlflow, uri, experiment_id)
    return experiment_id


def _choose(mlflow: Any, uri: str, experiment_id: str) -> None:
    """``mlflow.set_experiment`` (``uri`` is MLflow's tracking URI), remembered as the
    process's choice on that store (``state.chosen``)."""
    mlflow.set_experiment(experiment_id=experiment_id)
    state.chosen = (experiment_id, uri)
    state.carried = None


def _experiment_name(client: Any, experiment_id: str) -> str | None:
    """The name of the active experiment ``experiment_id`` of the store of ``client``; None
    when the store has none with that ID (or a deleted one)."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_experiment(experiment_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return found.name if found is not None and found.lifecycle_stage == "active" else None


def create_run(
    mlflow: Any,
    client: Any,
    experiment_id: str,
    name: str,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    noted: list[str] | None = None,
) -> str:
    """Create a run (a child of ``parent_run_id`` when given) with MLflow's context tags
    (source, user, git) and return its ID; ``noted``: a list the ID is appended to as the
    write returns (:func:`created_run`), for a caller that ends the run itself when
    interrupted before this returns."""
    all_tags = dict(tags or {})
    if parent_run_id is not None:
        all_tags["mlflow.parentRunId"] = parent_run_id
    try:  # source, user and git tags, as mlflow.start_run sets them
        from mlflow.tracking.context import registry

        all_tags = registry.resolve_tags(all_tags)
    except Exception:
        pass
    kill = functools.partial(end_run, client, status="KILLED")  # a run its caller never got
    run = created_run(
        client.create_run, kill, experiment_id, tags=all_tags, run_name=name, noted=noted
    )
    return str(run.info.run_id)

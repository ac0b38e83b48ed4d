"""Which run a fit or a study logs into when it is not given one: the run named, MLflow's
active run, or the run ``MLFLOW_RUN_ID`` names (``mlflow run`` sets it), and when a fit nests
its own run under that one (:func:`nested_parent`).

Where new runs go (the store and the experiment) is :mod:`forecaster.tracking.target`'s.
"""

from __future__ import annotations

import os
from typing import Any

from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller
from forecaster.tracking.config import mask_uri, state
from forecaster.tracking.records import collisions_message, run_collisions

__all__ = [
    "environment_run_id",
    "nested_parent",
    "resolve_run",
    "stored_run",
    "surrounding_run",
]


def resolve_run(mlflow: Any, run: Any) -> tuple[str | None, bool]:
    """``(run_id, own_run)`` for :func:`~forecaster.tracking.log_fit`'s ``run`` argument:
    the run given, else the active run, else the run ``MLFLOW_RUN_ID`` names
    (:func:`environment_run_id`), else none yet (a run of its own)."""
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
    named = environment_run_id()
    return (named, False) if named is not None else (None, True)


def environment_run_id() -> str | None:
    """The run ID in ``MLFLOW_RUN_ID`` (None when unset or blank). ``mlflow run`` sets it for
    the run it started, and MLflow's ``start_run()`` resumes that run: so do a pipeline's
    tracked run and, when no run is active, a logged fit,
    :func:`~forecaster.tracking.log_fit` (see :func:`surrounding_run`) and the run of a
    study (:func:`~forecaster.tracking.log_study` nests it there)."""
    value = os.environ.get("MLFLOW_RUN_ID", "").strip()
    return value or None


def surrounding_run(mlflow: Any, outcome: Any) -> tuple[str, str | None] | None:
    """``(run ID, experiment ID)`` of the run a fit logs into when none is named: MLflow's
    active run, else the run ``MLFLOW_RUN_ID`` names (its experiment read from the store of
    ``outcome``, an :class:`~forecaster.tracking.resilience.Outcome`; None when the store
    cannot be reached, recorded there); None when there is neither.

    Raises
    ------
    DataValidationError
        When ``MLFLOW_RUN_ID`` names a run the tracking store does not have, or a deleted
        one (``mlflow.start_run()`` refuses it too).
    """
    active = mlflow.active_run()
    if active is not None:
        return active.info.run_id, active.info.experiment_id
    run_id = environment_run_id()
    if run_id is None or outcome.broken:
        return None if run_id is None else (run_id, None)
    found = stored_run(
        mlflow, outcome, run_id, "MLFLOW_RUN_ID names",
        "With no active run, fits and studies log into the run MLFLOW_RUN_ID names (as "
        "mlflow.start_run() resumes it). Set it to a run of this store (the one `mlflow run` "
        "started), or unset it to log into new runs.",
    )  # fmt: skip
    return run_id, None if found is None else found.info.experiment_id


def stored_run(mlflow: Any, outcome: Any, run_id: str, named: str, fix: str) -> Any:
    """The run ``run_id`` as the store of ``outcome`` (an
    :class:`~forecaster.tracking.resilience.Outcome`) has it; None when the store cannot be
    read (recorded there: what is logged then goes to a fallback folder).

    Raises
    ------
    DataValidationError
        When the store does not have the run, or has deleted it (MLflow's
        ``start_run(run_id=...)`` refuses both): "``named`` the run ..., which the tracking
        store ... does not have", then ``fix`` (how to fix it).
    """
    failures = len(outcome.errors)
    found = outcome.remote("run", lambda: outcome.client(mlflow).get_run(run_id))
    missing = len(outcome.errors) > failures and (
        getattr(outcome.errors[-1][1], "error_code", None) == "RESOURCE_DOES_NOT_EXIST"
    )
    if missing or (found is not None and found.info.lifecycle_stage == "deleted"):
        raise DataValidationError(
            f"{named} the run {run_id!r}, which the tracking store "
            f"{mask_uri(outcome.tracking_uri)} {'does not have' if missing else 'has deleted'}. "
            f"{fix}"
        )
    return found


def nested_parent(outcome: Any, mlflow: Any, estimator: Any) -> tuple[str, str | None] | None:
    """For :func:`~forecaster.tracking.log_fit` into the active run, or the run
    ``MLFLOW_RUN_ID`` names (``outcome.run_id``; :func:`surrounding_run`):
    ``(run ID, experiment ID)`` of that run when the fit's records would replace or mix with
    what it holds (:func:`~forecaster.tracking.records.run_collisions`, with a warning), the
    parent of a nested run then; else None, and the run counts as fitted (a later tracked
    fit in it nests, as after a fit)."""
    run_id, client = outcome.run_id, outcome.client(mlflow)
    surrounding = surrounding_run(mlflow, outcome)  # the active run or MLFLOW_RUN_ID's
    found = outcome.remote("active run", run_collisions, client, run_id, estimator)
    with state.lock:
        seen = run_id in state.fitted_runs
        state.fitted_runs.add(run_id)
    if not found and not seen:
        return None
    if found:
        warn_at_caller(collisions_message(run_id, found), ForecasterWarning)
    outcome.run_id = None
    return run_id, None if surrounding is None else surrounding[1]

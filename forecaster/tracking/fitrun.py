"""The logging of one fit while it runs (:class:`TrackedFit`, which a
:class:`~forecaster.tracking.runs.FitLogger` makes per fit): its run chosen and opened at the
start, params and the dataset fingerprint, epochs live, the rest at the end
(:func:`~forecaster.tracking.fitlog.log_fitted`); a fit that raised leaves its own run FAILED,
tagged with the error (:func:`mark_failed`).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any

from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.tracking.config import bounded_requests, short_error, state
from forecaster.tracking.fingerprint import fingerprint_for
from forecaster.tracking.fitlog import FitLog, log_fitted, log_interrupted
from forecaster.tracking.records import (
    collisions_message,
    end_run,
    epoch_metrics,
    final_metrics,
    fit_record,
    log_inputs,
    log_metrics,
    log_tags,
    run_collisions,
)
from forecaster.tracking.resilience import Outcome
from forecaster.tracking.surrounding import surrounding_run
from forecaster.tracking.target import create_run, experiment_for_new_run

__all__ = ["FAILED_FIT_NOT_LOGGED", "FIT_ERROR_TAG", "TrackedFit", "mark_failed"]

FAILED_FIT_NOT_LOGGED = ("final metrics", "model")
"""What :func:`~forecaster.tracking.runs.last_fit` lists as not logged after a tracked fit that
raised."""

FIT_ERROR_TAG = "forecaster.fit_error"
"""The tag of a run whose fit raised (``"Type: message"``): the fit was rolled back, nothing
of it is the estimator's."""


def mark_failed(
    client: Any, run_id: str, uri: str, error: str | None = None, *, end: bool = True
) -> None:
    """End the run of a fit that raised as FAILED (``end``; a run of its own), tagged with
    ``error`` (:data:`FIT_ERROR_TAG`) when given - unless its store was found down lately."""
    with state.lock:
        known = state.probes.get(uri)
    if known is not None and known[1] is not None:
        return  # the server was unreachable lately: do not wait for it again
    with contextlib.suppress(Exception), bounded_requests():
        if error is not None:
            log_tags(client, run_id, {FIT_ERROR_TAG: error})
        if end:
            end_run(client, run_id, "FAILED")


class TrackedFit:
    """The logging of one fit: params and fingerprint at the start, epochs live, the rest at
    the end (:class:`~forecaster.tracking.runs.FitLogger` makes one per fit, with its ``plot``
    and ``register_as``)."""

    def __init__(
        self, mlflow: Any, estimator: Any, data: Any, *, plot: bool, register_as: str | None
    ) -> None:
        self.mlflow = mlflow
        self.data = data
        self.plot, self.register_as = plot, register_as
        self.name = type(estimator).__name__
        self.started = time.perf_counter()
        self.ended: float | None = None  # when the fit ended (its end may be logged later)
        self.live_epochs = 0
        self.inputs_logged = False
        self._finalizer: Any = None
        self.experiment_id: str | None = None
        self.parent: str | None = None
        self.outcome = Outcome(mlflow.get_tracking_uri(), None)
        self.outcome.check_server()
        self.client = self.outcome.client(mlflow)
        self.own_run = self._choose_run(surrounding_run(mlflow, self.outcome), estimator)
        self._start_run()
        self.fingerprint = self.outcome.local(
            "dataset fingerprint", fingerprint_for, estimator, data
        )
        self._log_inputs(estimator)

    def _choose_run(self, active: tuple[str, str | None] | None, estimator: Any) -> bool:
        """Whether the fit gets a run of its own: not for the first fit inside an active run
        (or the run ``MLFLOW_RUN_ID`` names: ``active``, see
        :func:`~forecaster.tracking.surrounding.surrounding_run`), which it logs into; a nested run
        for a further fit in it; else a new run in the experiment chosen as the module
        docstring says."""
        run_id = "" if active is None else active[0]
        with state.lock:
            use_active = bool(run_id) and run_id not in state.fitted_runs
            if use_active:
                state.fitted_runs.add(run_id)
        if use_active and self._collides(run_id, estimator):
            use_active = False  # a nested run: nothing of the user's is replaced
        if use_active:
            self.outcome.run_id = run_id
        elif active is not None:  # a further fit in the same active run: a nested run
            self.parent, self.experiment_id = active
        else:
            self.experiment_id = self.outcome.remote("run", experiment_for_new_run, self.mlflow)
            if self.experiment_id is not None:
                self.outcome.tracking_uri = self.mlflow.get_tracking_uri()
                self.client = self.outcome.client(self.mlflow)
        return not use_active

    def _collides(self, run_id: str, estimator: Any) -> bool:
        """Whether the fit's records would replace or mix with what the user's active run
        holds (:func:`~forecaster.tracking.records.run_collisions`), with a warning then."""
        found = self.outcome.remote("active run", run_collisions, self.client, run_id, estimator)
        if found:
            warn_at_caller(collisions_message(run_id, found), ForecasterWarning)
        return bool(found)

    def _start_run(self) -> None:
        if not self.own_run or self.outcome.run_id is not None or self.experiment_id is None:
            return
        client, outcome = self.client, self.outcome
        outcome.run_id = outcome.remote(
            "run", create_run, self.mlflow, client, self.experiment_id, self.name, self.parent
        )
        if outcome.run_id is not None:  # a fit that raises (or is lost) leaves its run FAILED
            self._finalizer = weakref.finalize(
                self, mark_failed, client, outcome.run_id, outcome.tracking_uri
            )

    def _log_inputs(self, estimator: Any) -> None:
        if self.outcome.run_id is None or self.fingerprint is None or self.inputs_logged:
            return
        failures = len(self.outcome.not_logged)
        self.outcome.remote(
            "params and dataset fingerprint",
            log_inputs,
            self.client,
            self.outcome.run_id,
            estimator,
            self.fingerprint,
            own_run=self.own_run,
        )
        self.inputs_logged = len(self.outcome.not_logged) == failures

    def on_epoch(self, record: Any) -> None:
        """Log the epoch's losses (until the backend fails once)."""
        if self.outcome.run_id is None or self.outcome.broken:
            return
        try:
            with bounded_requests():
                metrics = epoch_metrics(record.as_dict())
                log_metrics(self.client, self.outcome.run_id, metrics)
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
        except KeyboardInterrupt:  # training completed: the estimator stays fitted (_fitting)
            if not self.outcome.interrupted:  # log_fitted had not started: nothing said yet
                with bounded_requests():
                    self._interrupted(estimator)
            raise
        except Exception as exc:  # a bug here must not cost the user the fitted model
            warn_at_caller(
                f"Logging this fit to MLflow failed unexpectedly ({short_error(exc)}); the "
                "fitted estimator is unaffected. Save it with "
                "estimator.save(path) or log it with forecaster.tracking.log_fit().",
                ForecasterWarning,
            )
            return None
        finally:
            if self._finalizer is not None:  # the fit completed: its run is not FAILED
                self._finalizer.detach()

    def stop(self, estimator: Any) -> None:
        """A ``KeyboardInterrupt`` before this completed fit's end was logged (in another
        callback's ``on_fit_end``, or in the logging of a
        :func:`~forecaster.tracking.blocks.deferred` block): as a fit interrupted while it
        logs (:meth:`_interrupted`)."""
        try:
            with bounded_requests():
                self._interrupted(estimator)
        finally:
            if self._finalizer is not None:  # the fit completed: its run is not FAILED
                self._finalizer.detach()

    def _interrupted(self, estimator: Any) -> None:
        """A ``KeyboardInterrupt`` before :func:`~forecaster.tracking.fitlog.log_fitted`
        started: the run ends KILLED, the model goes to a fallback folder, a warning says
        what was not logged (:func:`~forecaster.tracking.fitlog.log_interrupted`)."""
        outcome = self.outcome
        outcome.not_logged += [] if self.inputs_logged else ["params and dataset fingerprint"]
        if self.live_epochs < len(getattr(estimator, "history_", [])):
            outcome.not_logged.append(f"per-epoch metrics from epoch {self.live_epochs + 1}")
        outcome.not_logged += FAILED_FIT_NOT_LOGGED
        metrics = final_metrics(estimator, (self.ended or time.perf_counter()) - self.started)
        record = fit_record(estimator, self.fingerprint, metrics, None)
        log = FitLog(run_id=outcome.run_id)
        log_interrupted(outcome, estimator, log, self.client, self.own_run, None, None, record)

    def fail(self, error: BaseException | None = None) -> None:
        """The fit raised ``error`` (None: a :func:`~forecaster.tracking.blocks.deferred`
        block was interrupted before it logged the fit): its own run ends FAILED now, tagged
        with the error (:data:`FIT_ERROR_TAG`; a run it logged into that is not its own is
        tagged only), and :func:`~forecaster.tracking.runs.last_fit` tells of it (not of an
        earlier fit)."""
        detached = self._finalizer.detach() if self._finalizer is not None else None
        text = None if error is None else short_error(error).removesuffix(": ")
        if detached is not None:  # its own run, not yet marked
            _, mark, args, _ = detached
            mark(*args, text)
        elif not self.own_run and self.outcome.run_id is not None and text is not None:
            uri = self.outcome.tracking_uri
            mark_failed(self.client, self.outcome.run_id, uri, text, end=False)
        state.last = FitLog(run_id=self.outcome.run_id, not_logged=list(FAILED_FIT_NOT_LOGGED))

    def _finish(self, estimator: Any) -> FitLog:
        outcome = self.outcome
        outcome.not_logged = []  # retried below (the errors are kept for the warning)
        outcome.recheck()
        if self.client is None and not outcome.broken:
            self.client = outcome.client(self.mlflow)
        if self.own_run and self.parent is None and self.experiment_id is None:
            self.experiment_id = outcome.remote("run", experiment_for_new_run, self.mlflow)
        self._start_run()
        self._log_inputs(estimator)
        return log_fitted(
            estimator,
            self.data,
            mlflow=self.mlflow,
            client=self.client,
            outcome=outcome,
            own_run=self.own_run,
            inputs_logged=self.inputs_logged or self.fingerprint is None,
            live_epochs=self.live_epochs,
            fingerprint=self.fingerprint,
            fit_seconds=(self.ended or time.perf_counter()) - self.started,
            plot=self.plot,
            register_as=self.register_as,
            context="Training completed.",
        )

"""The study's MLflow logging (``tune(track=True)``) through :mod:`forecaster.tracking`.

Tracking is opt-in: :func:`~forecaster.tuning.tune` logs only with ``track=True``, through
tracking's public API: ``log_study`` creates (or finds again) the study's parent run before the
trials and logs the summary and the refitted best model after them, ``trial_callback`` logs
every finished trial as a nested run (in the process that ran it), and ``paused`` keeps the
refit from logging a run of its own. A tracking failure is a warning, never the study's end.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from forecaster._warnings import catching_warnings
from forecaster.exceptions import ForecasterWarning, MissingExtraError, warn_at_caller
from forecaster.tuning.common import import_optuna
from forecaster.tuning.storage import fail_stale_trials

__all__ = [
    "ELSEWHERE_TIMEOUT",
    "TRACK_HINT",
    "TRIAL_METRIC",
    "StudyLogger",
    "TrialHook",
    "refit_context",
    "require_tracking",
    "running_elsewhere",
]

TRACK_HINT = "pip install 'forecaster-rnn[track]'"

TRIAL_METRIC = "best_val_loss"
"""Metric name of a trial's intermediate values (the running best validation loss, one per
epoch) in its MLflow run: logged live by :class:`TrialHook` and by the final ``log_study`` for
trials that were not (both name them alike). A ``direction="maximize"`` study's trials report
that loss negated to Optuna (:class:`~forecaster.tuning.trials.PruningReporter`, so that the
pruner ranks them in the study's direction): both log it negated back, the loss itself."""


def require_tracking() -> None:
    """``track=True`` needs MLflow and :mod:`forecaster.tracking`: an ImportError naming the
    extra that installs them, before anything runs."""
    try:
        import mlflow  # noqa: F401
        from forecaster.tracking import log_study  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"tune(track=True) logs the study to MLflow, an optional dependency ({exc}): "
            f"{TRACK_HINT}"
        ) from exc


ELSEWHERE_TIMEOUT = 10.0
"""Seconds :func:`running_elsewhere` waits for the study's storage (it runs as ``tune`` is
interrupted: a database that does not answer must not hold up the Ctrl-C)."""


def running_elsewhere(
    study: Any, heartbeat: bool, timeout: float = ELSEWHERE_TIMEOUT
) -> list[int] | None:
    """The numbers of the trials of ``study`` RUNNING on another machine (their ``host``
    user attribute, set as a trial of ``tune`` starts) once the stale ones, whose process
    died, are failed (:func:`~forecaster.tuning.storage.fail_stale_trials`). This machine's
    are not counted: a Ctrl-C stops its processes together (the caller terminates its
    workers). Empty without ``heartbeat`` (the storage records none:
    :func:`~forecaster.tuning.storage.has_heartbeat`): a trial of a dead process stays
    RUNNING there for good, and counted it would keep the study's run RUNNING for good too
    (``tune`` counts no such trial either: ``warn_unjudged_trials``).

    None (unknown), with a ``ForecasterWarning`` saying so, when the storage cannot be read
    or does not answer within ``timeout`` seconds: it is read in a daemon thread, which is
    left to finish or to end with the process (a hung database holds no more than that)."""
    if not heartbeat:
        return []
    answer: list[Any] = []

    def read() -> None:
        try:
            fail_stale_trials(study)
            running = import_optuna().trial.TrialState.RUNNING
            answer.append(study.get_trials(deepcopy=False, states=(running,)))
        except Exception as exc:
            answer.append(exc)

    reader = threading.Thread(target=read, name="forecaster-running-elsewhere", daemon=True)
    reader.start()
    reader.join(timeout)
    found = answer[0] if answer else None
    if found is None or isinstance(found, Exception):
        why = (
            f"its storage did not answer within {timeout:g} s"
            if found is None
            else f"its storage could not be read: {type(found).__name__}: {found}"
        )
        warn_at_caller(
            f"Cannot tell whether other machines still run trials of the study "
            f"{study.study_name!r} ({why}): its MLflow run ends as if none did. A process "
            "still tuning it logs its summary and ends the run again as it finishes.",
            ForecasterWarning,
        )
        return None
    here = socket.gethostname()
    return [t.number for t in found if t.user_attrs.get("host") not in (None, here)]


def refit_context(track: bool) -> Any:
    """The block the best parameters are refitted in: with ``track``, tracking's ``paused()``
    (the model is logged on the study's run, not on a run of its own)."""
    if not track:
        return contextlib.nullcontext()
    from forecaster.tracking import paused

    return paused()


class TrialHook:
    """Study callback that logs each trial through ``forecaster.tracking.trial_callback``.

    The tracking callback is built lazily in the process that runs the trials (it holds an
    MLflow client, which does not pickle to worker processes). A failure is a warning.
    ``negated``: the trials report their loss negated (a maximize study), so it is logged
    negated back (see :data:`TRIAL_METRIC`).
    """

    def __init__(
        self,
        parent_run_id: str,
        tracking_uri: str | None,
        limits: Mapping[str, Any],
        negated: bool = False,
    ) -> None:
        self.parent_run_id = parent_run_id
        self.tracking_uri = tracking_uri
        self.negated = negated  # the trials report their loss negated (a maximize study)
        self.limits = {k: v for k, v in limits.items() if k in ("request_timeout", "max_retries")}
        self.broken = False
        self._callback: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_callback": None}

    def __call__(self, study: Any, trial: Any) -> None:
        if self.broken:
            return
        try:
            if self._callback is None:
                from forecaster.tracking import trial_callback

                self._callback = trial_callback(
                    self.parent_run_id,
                    tracking_uri=self.tracking_uri,
                    intermediate_key=TRIAL_METRIC,
                    negate_intermediate=self.negated,
                    **self.limits,
                )
            self._callback(study, trial)
        except Exception as exc:
            self.broken = True
            warn_at_caller(
                f"Tracking trial {trial.number} failed ({exc!r}); trials are no longer logged in "
                "this process. The study itself goes on and is kept in its storage.",
                ForecasterWarning,
            )


class StudyLogger:
    """The study's MLflow logging through ``forecaster.tracking`` (when ``track``): the parent
    run before the trials, a callback per trial, the summary and best model at the end.

    A warning of the first :func:`~forecaster.tracking.log_study` (e.g. an unreachable server)
    is held back: the final call retries everything and warns about what is still missing, so
    one warning says it all. Held-back warnings are shown when the final call is not reached.
    ``negated``: as :class:`TrialHook`'s, for the trials the final call logs. ``heartbeat``:
    the study's storage records heartbeats (see :func:`running_elsewhere`).
    """

    def __init__(
        self,
        track: bool,
        study: Any,
        estimator: Any,
        frame: Any,
        storage: str,
        negated: bool = False,
        heartbeat: bool = False,
    ) -> None:
        self.track = bool(track)
        self.heartbeat = heartbeat  # the storage tells dead trials: see running_elsewhere
        self.kwargs = {
            "study": study,
            "estimator": estimator,
            "frame": frame,
            "storage": storage,
            "intermediate_key": TRIAL_METRIC,
            "negate_intermediate": negated,
        }
        self.held: list[warnings.WarningMessage] = []
        self.started = self.finished = False
        self.run_id: str | None = None  # the study's run, once start() made or found it

    def start(self) -> list[Any]:
        """Create (or find) the study's run; the trial callbacks to add."""
        if not self.track:
            return []
        self.started = True
        import mlflow
        from forecaster.tracking import request_limits

        with catching_warnings(record=True) as caught:  # a resumed study's run: RUNNING again
            parent_run = self._log_study(status="RUNNING")
            self.run_id = parent_run if isinstance(parent_run, str) else None  # known at once
        self.held = [w for w in caught if issubclass(w.category, ForecasterWarning)]
        for w in caught:
            if not issubclass(w.category, ForecasterWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if not isinstance(parent_run, str):
            return []
        negated = bool(self.kwargs["negate_intermediate"])
        return [TrialHook(parent_run, mlflow.get_tracking_uri(), request_limits(), negated)]

    def finish(
        self, best_estimator: Any = None, best_trial: int | None = None, status: str = "FINISHED"
    ) -> None:
        """The summary (and the best model) on the study's run, which ends ``status``; inside
        ``tracking.deferred()``, when that block ends (a block that calibrates the best model
        logs it calibrated), FAILED when the block failed (``forecaster tune`` could not save
        the model), KILLED when it was interrupted (:meth:`killed`). Once: a later call
        (``tune`` ending on an error after the summary was logged) does nothing.
        ``best_trial``: the number of the trial ``best_estimator`` was refitted from (the
        study's best may change meanwhile: other processes tune it too); see ``log_study``
        for which process's best the run shows."""
        if not self.track or self.finished:
            return
        self.finished = True
        self.held = []
        from forecaster.tracking.blocks import defer

        best: dict[str, Any] = {"best_estimator": best_estimator}
        if best_estimator is not None and best_trial is not None:
            best["best_trial"] = best_trial
        failed = {**best, "status": "FAILED"}
        if not defer(
            lambda: self._log_end(**best, status=status),
            self.killed,
            failed=lambda: self._log_end(**failed),
        ):
            self._log_end(**best, status=status)

    def killed(self) -> None:
        """The study's run ends KILLED, at once, without the summary (the trials are in their
        runs, logged as they ended): ``tune`` stopped by Ctrl-C (``SIGTERM`` under the
        ``forecaster`` command), or the block :meth:`finish` deferred its final logging to
        was (``forecaster tune`` interrupted as it calibrated or saved the best model), or
        that final logging was; a run that logging already ended KILLED is left as it is.
        While other machines still run trials of the study (:func:`running_elsewhere`), the
        run stays RUNNING instead, with a tag naming this process (see
        :func:`~forecaster.tracking.studyrun.end_study_run`): it shows the study, and the
        last process to finish ends it."""
        self.finished = True
        if self.run_id is not None:
            from forecaster.tracking.studyrun import end_study_run

            elsewhere = running_elsewhere(self.kwargs["study"], self.heartbeat)
            end_study_run(self.run_id, "KILLED", elsewhere or ())  # unknown: as if none

    def _log_end(self, **kwargs: Any) -> None:
        """The final ``log_study`` call; interrupted (Ctrl-C in the summary, in the best
        model's logging, or before the call reached the study's run), the run ends KILLED
        (:meth:`killed`: inside a deferred block, nothing else would end it)."""
        try:
            self._log_study(**kwargs)
        except KeyboardInterrupt:
            self.killed()
            raise

    def finish_stopped(self, error: BaseException) -> None:
        """As ``tune`` stops on ``error``: after a ``KeyboardInterrupt`` the study's run ends
        KILLED (:meth:`killed`); after an exception (a callback's, no trial completed) the
        summary of the trials finished so far is logged and the run ends FAILED, and a
        failure of that logging (e.g. its warning made an error) is a note of ``error``, never
        in its place. Warnings held back are shown when that final call is not made
        (:meth:`replay`)."""
        if self.started and isinstance(error, KeyboardInterrupt):
            if not self.finished:  # the final call ends it when interrupted (_log_end)
                self.killed()
        elif self.started:
            try:
                self.finish(status="FAILED")
            except Exception as late:
                error.add_note(f"Logging the study to MLflow as tune stopped failed: {late}")
        self.replay()

    def replay(self) -> None:
        """Show the held-back warnings (the final call was not reached)."""
        for w in self.held:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.held = []

    def _log_study(self, **kwargs: Any) -> Any:
        from forecaster.tracking import log_study

        try:
            return log_study(**self.kwargs, **kwargs)
        except Exception as exc:
            warn_at_caller(
                f"Logging the study to MLflow failed ({exc!r}). The study is kept in its storage "
                "and tuning goes on; log it again with forecaster.tracking.log_study.",
                ForecasterWarning,
            )
            return None

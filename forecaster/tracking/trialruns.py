"""The runs of a study's trials in MLflow: :func:`trial_callback` logs each finished trial
of an Optuna study as a nested child run of the study's run (see
:func:`~forecaster.tracking.optuna.log_study`), and :func:`backfill_trials` logs the finished
trials that have none yet (:func:`log_trial`, the one way a trial's run is written).

Optuna itself is not imported here: the study and its trials are used through their public
attributes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    TrackingUnavailableError,
    warn_at_caller,
)
from forecaster.tracking.config import (
    bounded_requests,
    check_flag,
    check_limits,
    check_optional_name,
    import_mlflow,
    mask_uri,
    short_error,
    state,
)
from forecaster.tracking.records import (
    KIND_TAG,
    created_run,
    end_run,
    log_metrics,
    log_params,
    log_tags,
    now_ms,
    param_value,
    tracking_write,
)
from forecaster.tracking.resilience import (
    is_unreachable,
    mark_down,
    unreachable_message,
    unreachable_reason,
)
from forecaster.tracking.store import store_client

__all__ = ["NOT_RUN_ATTR", "backfill_trials", "log_trial", "ran", "trial_callback"]

NOT_RUN_ATTR = "surplus"
"""The user attribute of a trial ended FAIL before it ran (a trial past ``n_trials``, started
by a process that checked the counts as another did: :mod:`forecaster.tuning.quota`). It ran
nothing: it gets no child run, and :func:`~forecaster.tracking.optuna.log_study` does not
count it as a failed trial (``n_fail``) but as ``n_not_run``."""


_TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def ran(trial: Any) -> bool:
    """Whether ``trial`` (a frozen trial) ran: not a trial ended FAIL before it ran
    (:data:`NOT_RUN_ATTR`)."""
    state = getattr(trial.state, "name", str(trial.state))
    return not (state == "FAIL" and NOT_RUN_ATTR in (trial.user_attrs or {}))


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def log_trial(
    client: Any,
    experiment_id: str,
    parent_run_id: str,
    study: Any,
    trial: Any,
    intermediate: tuple[str, bool],
) -> str:
    """The child run of a finished trial; ``intermediate``: the metric name of its intermediate
    values and whether to negate them (see :func:`trial_callback`). Cut off once the run
    exists (Ctrl-C, or a failed write), the half-logged run (it stayed RUNNING for good) is
    deleted where the store allows (:func:`_drop_cut_off_run`), so that
    :func:`backfill_trials` logs the trial whole, before the interrupt goes on. Its ID is
    kept as the creating write returns, so no interrupt falls between the run's creation
    and this. The trial itself had ended: Optuna calls its callbacks once the trial's state
    is stored (a trial interrupted as it ran is marked FAIL by Optuna and gets its run from
    :func:`backfill_trials`)."""
    state = getattr(trial.state, "name", str(trial.state))
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "optuna.study_name": study.study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.trial_state": state,
        KIND_TAG: "trial",
    }
    for key, value in (trial.user_attrs or {}).items():
        tags[f"optuna.user_attr.{key}"] = param_value(value)
    made: list[str] = []  # the run's ID, as the write that creates it returns
    try:
        created_run(
            client.create_run,
            functools.partial(end_run, client, status="KILLED"),  # a run log_trial never got
            experiment_id,
            start_time=_ms(trial.datetime_start),
            tags=tags,
            run_name=f"trial-{trial.number}",
            noted=made,
        )
        _trial_records(client, made[0], trial, state, intermediate)
    except BaseException as exc:  # half logged: never left RUNNING, nor kept as logged
        if made:
            _drop_cut_off_run(client, made[0], exc)
        raise
    return made[0]


def _drop_cut_off_run(client: Any, run_id: str, exc: BaseException) -> None:
    """Delete the run ``run_id`` of a trial whose logging ``exc`` cut off (half logged), so
    that :func:`backfill_trials` (the next ``log_study``) logs the trial whole: kept, the
    run counted as the trial's, which stayed without its value for good. Where the store
    refuses the deletion, the run ends KILLED (``exc`` a ``KeyboardInterrupt``) or FAILED;
    a tracking failure of that end is left out (``exc`` is what the caller gets)."""
    try:
        tracking_write(client.delete_run, run_id)
    except Exception:
        with contextlib.suppress(Exception):
            end_run(client, run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")


def _trial_records(
    client: Any, run_id: str, trial: Any, state: str, intermediate: tuple[str, bool]
) -> None:
    """The params, metrics and state of a finished ``trial`` in its run ``run_id``
    (:func:`log_trial`), which then ends as the trial did."""
    from mlflow.entities import Metric

    ts = _ms(trial.datetime_complete) or now_ms()
    metrics = []
    values = trial.values  # a pruned trial has none of its own (Optuna's is its last report)
    if values is not None and state != "PRUNED":
        names = ["value"] if len(values) == 1 else [f"value_{i}" for i in range(len(values))]
        metrics += [Metric(n, float(v), ts, 0) for n, v in zip(names, values, strict=True)]
    key, sign = intermediate[0], -1.0 if intermediate[1] else 1.0
    for step, value in sorted((trial.intermediate_values or {}).items()):
        if value is not None and math.isfinite(value):
            metrics.append(Metric(key, sign * float(value), ts, int(step)))
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        metrics.append(Metric("trial_seconds", seconds, ts, 0))
    # the writes that an interrupt waits for (a Ctrl-C between two trials lands here)
    log_params(client, run_id, {k: param_value(v) for k, v in trial.params.items()})
    log_metrics(client, run_id, metrics)
    log_tags(client, run_id, {"optuna.trial_state": state})
    end_run(client, run_id, _TRIAL_STATUS.get(state, "FINISHED"), end_time=ts)


class _TrialLogger:
    """Optuna callback ``(study, frozen_trial)``: one nested child run per finished trial."""

    def __init__(
        self,
        parent_run_id: str,
        tracking_uri: str | None,
        intermediate: tuple[str, bool],
        limits: Mapping[str, int],
    ) -> None:
        mlflow = import_mlflow()
        self.parent_run_id = parent_run_id
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.client: Any = None
        self.intermediate = intermediate  # (metric name, negated)
        self.limits = dict(limits)
        self.experiment_id: str | None = None
        self.lock = threading.Lock()
        self.failed: list[int] = []
        self.warned = False

    def __call__(self, study: Any, trial: Any) -> None:
        if not ran(trial):  # ended before it ran: no run of its own
            return
        with self.lock:
            if self.failed and self.warned:  # the backend failed: do not stall the study
                self.failed.append(trial.number)
                return
            with state.lock:  # e.g. in a worker process: the limits of the process that asked
                for key, value in self.limits.items():
                    state.limits.setdefault(key, value)
            try:
                with bounded_requests():
                    self._log(study, trial)
            except Exception as exc:
                self.failed.append(trial.number)
                if is_unreachable(exc):
                    mark_down(self.tracking_uri, short_error(exc))
                if not self.warned:
                    self.warned = True
                    warn_at_caller(
                        f"MLflow tracking failed ({mask_uri(self.tracking_uri)}): could not "
                        f"log trial {trial.number} of study {study.study_name!r} "
                        f"({short_error(exc)}). Later trials are not logged either; the study "
                        "itself is unaffected, and "
                        "log_study() logs the missing trials once the tracking server is back.",
                        ForecasterWarning,
                    )

    def _log(self, study: Any, trial: Any) -> None:
        from mlflow.entities import Metric

        down = unreachable_reason(self.tracking_uri)
        if down is not None:
            raise TrackingUnavailableError(unreachable_message(self.tracking_uri, down))
        if self.client is None:
            self.client = store_client(import_mlflow(), self.tracking_uri)
        if self.experiment_id is None:
            self.experiment_id = self.client.get_run(self.parent_run_id).info.experiment_id
        log_trial(
            self.client, self.experiment_id, self.parent_run_id, study, trial, self.intermediate
        )
        best = _best_value(study)
        if best is not None:
            best_value = Metric("best_value", best, now_ms(), trial.number)
            log_metrics(self.client, self.parent_run_id, [best_value])


def trial_callback(
    parent_run_id: str,
    *,
    tracking_uri: str | None = None,
    intermediate_key: str = "intermediate_value",
    request_timeout: float | None = None,
    max_retries: int | None = None,
    negate_intermediate: bool = False,
) -> Callable[[Any, Any], None]:
    """An Optuna callback that logs every finished trial as a nested MLflow run.

    Each child run (named ``trial-<number>``, tag ``mlflow.parentRunId``) holds the trial's
    params, its value(s) (``value``, or ``value_0``... for several objectives; none for a
    pruned trial, whose value Optuna takes from its last intermediate value), its state
    (tag ``optuna.trial_state``; run status FINISHED, KILLED for pruned, FAILED), its
    intermediate values as step metrics, its duration and user attributes (tags). The parent
    run gets ``best_value`` at step = trial number.

    Parameters
    ----------
    parent_run_id : str
        The study's run, from :func:`~forecaster.tracking.optuna.log_study`.
    tracking_uri : str, optional
        Default the current tracking URI (pass it to worker processes).
    intermediate_key : str, default "intermediate_value"
        Metric name of the intermediate values (e.g. ``"val_loss"``).
    request_timeout, max_retries : optional
        HTTP limits of the callback's requests, for a process where :func:`configure` did not
        set them (e.g. a worker process; see :func:`configure`).
    negate_intermediate : bool, default False
        Log the intermediate values negated: for an objective that reports a loss negated
        to a ``direction="maximize"`` study (so that its pruner ranks trials in the study's
        direction), as :func:`forecaster.tune` does; the metric then holds the loss itself.
        The trial's value (``value``) is logged as it is.

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
    check_optional_name("tracking_uri", tracking_uri)
    check_flag("negate_intermediate", negate_intermediate)
    limits = check_limits(request_timeout, max_retries)
    intermediate = (intermediate_key, bool(negate_intermediate))
    return _TrialLogger(parent_run_id, tracking_uri, intermediate, limits)


def _best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except Exception:  # no complete trial yet, or several objectives
        return None


def backfill_trials(
    client: Any, experiment_id: str, parent_run_id: str, study: Any, intermediate: tuple[str, bool]
) -> None:
    """A child run for each finished trial of ``study`` that has none under the parent run
    yet (e.g. the server was down while it ran), as :func:`trial_callback` logs it (none for
    a trial that never ran: :func:`ran`)."""
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
        if trial.state.is_finished() and trial.number not in logged and ran(trial):
            log_trial(client, experiment_id, parent_run_id, study, trial, intermediate)

"""Tuning studies in MLflow: :func:`log_study` creates (or finds again) a parent run for an
Optuna study and :func:`trial_callback` logs each finished trial as a nested child run.

The parent run nests in the active run, or in the run ``MLFLOW_RUN_ID`` names (see
:mod:`forecaster.tracking.studyrun`). It is found by the study's key (tag
``forecaster.study_key``: a token kept in the study's own user attributes, its name and its
task), never by its name alone: a study resumed from its storage keeps its run, an in-memory
study or one created again under an old name gets a new one. What may change between resumes
(the data, the template's parameters, sampler, pruner) is logged as tags, plus one version of
params ``data.<n>.*`` per dataset::

    parent = tracking.log_study(study, estimator, frame)      # before optimize
    study.optimize(objective, callbacks=[tracking.trial_callback(parent)])
    tracking.log_study(study, estimator, frame, best_estimator=best)   # summary + best model

Several processes that tune one study (each calling ``log_study``) share its run: the
earliest run with the study's key is the study's (see
:func:`~forecaster.tracking.studyrun.open_study_run`). A call writes its best (tags
``best.*``, ``best_params.json``, ``best_value``) and its best model only while its trial
(``best_trial``) is the study's best, read again from the study's storage as it logs, so
the run ends with the study's best whichever process ends last; a call whose trial was
overtaken logs neither (a warning names the better trial). A best model is logged once
per trial, by the first process to claim it (param ``forecaster.model_claim.<trial>``; a
claim whose model was not logged is marked failed, and the next call claims it again: see
:func:`~forecaster.tracking.studyrun.claim_model`); tag ``forecaster.best_model_trial``
names the trial whose refitted model, metrics and ``best.*`` params the run holds.

Optuna itself is not imported here: the study and its trials are used through their public
attributes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import threading
from collections.abc import Callable, Iterator, Mapping
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
from forecaster.tracking.fingerprint import fingerprint_for, fingerprint_params
from forecaster.tracking.fitlog import log_fitted
from forecaster.tracking.records import (
    created_run,
    end_run,
    estimator_params,
    log_metrics,
    log_params,
    log_tags,
    now_ms,
    param_value,
)
from forecaster.tracking.resilience import (
    Outcome,
    is_unreachable,
    mark_down,
    unreachable_message,
    unreachable_reason,
    warn_not_logged,
)
from forecaster.tracking.store import store_client
from forecaster.tracking.studyrun import (
    MODEL_TRIAL_TAG,
    best_update,
    check_study_args,
    claim_model,
    keep_earlier_end,
    log_data_version,
    open_study_run,
    release_claim,
    reopen_study_run,
    warn_unlogged_claim,
)

__all__ = ["log_study", "trial_callback"]


_TRIAL_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _log_trial(
    client: Any,
    experiment_id: str,
    parent_run_id: str,
    study: Any,
    trial: Any,
    intermediate: tuple[str, bool],
) -> str:
    """The child run of a finished trial; ``intermediate``: the metric name of its intermediate
    values and whether to negate them (see :func:`trial_callback`)."""
    from mlflow.entities import Metric

    state = getattr(trial.state, "name", str(trial.state))
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "optuna.study_name": study.study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.trial_state": state,
        "forecaster.kind": "trial",
    }
    for key, value in (trial.user_attrs or {}).items():
        tags[f"optuna.user_attr.{key}"] = param_value(value)
    run = created_run(
        client.create_run,
        functools.partial(end_run, client, status="KILLED"),  # a run _log_trial never got
        experiment_id,
        start_time=_ms(trial.datetime_start),
        tags=tags,
        run_name=f"trial-{trial.number}",
    )
    run_id = run.info.run_id
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
    return run_id


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
        _log_trial(
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
        The study's run, from :func:`log_study`.
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


def log_study(
    study: Any,
    estimator: Any,
    frame: Any,
    best_estimator: Any = None,
    experiment: str | None = None,
    *,
    register_as: str | None = None,
    storage: str | None = None,
    intermediate_key: str = "intermediate_value",
    negate_intermediate: bool = False,
    best_trial: int | None = None,
    status: str | None = None,
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
    gets a run of its own: two studies never share a parent run for their names alone.

    Where it goes: inside an active run, or with none while ``MLFLOW_RUN_ID`` names a run
    (``mlflow run`` sets it; a fit logs into that run too), the study's run is a nested run
    of that run, in its experiment, and is found again among that run's nested runs only (a
    study resumed under another ``mlflow run`` gets a run there, with all its trials); that
    run itself is left as it is (nothing logged into it, not ended). Otherwise it is a
    top-level run in ``experiment``, else in the experiment a fit's run goes to (see
    :mod:`forecaster.tracking.target`).

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
        Experiment name of a top-level study run; default the experiment a fit's run goes
        to. With a run to nest in (see above) it must name that run's experiment, or be
        left out.
    register_as : str, optional
        Register the best model under this name.
    storage : str, optional
        Where the study lives, for the tag ``forecaster.study_storage`` (masked by
        :func:`mask_uri`); :func:`forecaster.tune` passes its storage URL, or "in-memory".
    intermediate_key : str, default "intermediate_value"
        Metric name of the intermediate values of the trials this call logs (finished, with
        no child run yet): pass :func:`trial_callback`'s (``tune`` passes "best_val_loss").
    negate_intermediate : bool, default False
        Log them negated, as :func:`trial_callback` does: pass the same (``tune`` passes True
        for a ``direction="maximize"`` study, whose trials report their loss negated).
    best_trial : int, optional
        The complete trial ``best_estimator`` was refitted from; default the study's best.
    status : {"RUNNING", "FINISHED", "FAILED", "KILLED"}, optional
        The run's status after the call (default FINISHED once the study has a finished
        trial); "RUNNING" (``tune``'s first call) opens an ended run again, as MLflow's
        ``start_run(run_id=...)`` does; a FAILED or KILLED end a call changes stays as tag
        ``forecaster.earlier_end.<UTC time>``. A call stopped by Ctrl-C ends the run KILLED.

    Returns
    -------
    str or None
        The parent run ID (None when tracking failed; a ForecasterWarning says so).

    Raises
    ------
    DataValidationError
        Before anything is logged: ``study`` is no Optuna study, ``estimator`` no
        estimator, ``frame`` not the data ``best_estimator`` was fitted on, a
        ``best_estimator`` whose parameters that shape predictions were changed since its fit
        (``set_params``; it could not be saved), an argument of the wrong type, a
        ``MLFLOW_RUN_ID`` that names a run the store does not have (or has deleted), or an
        ``experiment`` other than that of the run the study's run nests in.
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
    while the server was down). Processes tuning one study share its run (module docstring).
    """
    frame = check_study_args(
        study, estimator, frame, best_estimator, experiment, register_as, storage,
        intermediate_key, negate_intermediate, best_trial, status,
    )  # fmt: skip
    mlflow = import_mlflow()
    with bounded_requests():
        outcome = Outcome(mlflow.get_tracking_uri(), None)
        outcome.check_server()
        experiment_id = open_study_run(mlflow, outcome, study, experiment)
        client, run_id = outcome.client(mlflow), outcome.run_id
        with _killed_when_interrupted(client, outcome):
            fingerprint = outcome.local("dataset fingerprint", fingerprint_for, estimator, frame)
            if run_id is None or experiment_id is None:
                _keep_locally(best_estimator, frame, mlflow, client, outcome, fingerprint)
                return None
            return _log_study_run(
                study, estimator, frame, best_estimator, register_as, storage,
                best_trial=best_trial, mlflow=mlflow, client=client, outcome=outcome,
                experiment_id=experiment_id, fingerprint=fingerprint,
                intermediate=(intermediate_key, bool(negate_intermediate)), status=status,
            )  # fmt: skip


@contextlib.contextmanager
def _killed_when_interrupted(client: Any, outcome: Outcome) -> Iterator[None]:
    """A ``KeyboardInterrupt`` in the block (:func:`log_study` once it found or made the
    study's run, ``outcome.run_id``) ends that run KILLED, then goes on: tune's first call
    had not returned the run's ID yet, nothing else would end it. Not when
    :func:`log_fitted` ended it (``outcome.interrupted``); a tracking failure is left out."""
    try:
        yield
    except KeyboardInterrupt:
        if outcome.run_id is not None and not outcome.interrupted:
            with contextlib.suppress(Exception):
                end_run(client, outcome.run_id, "KILLED")
        raise


def _keep_locally(
    best_estimator: Any,
    frame: Any,
    mlflow: Any,
    client: Any,
    outcome: Outcome,
    fingerprint: dict[str, Any] | None,
) -> None:
    """:func:`log_study` without the study's run (it could not be found or made): the best
    model and its records go to the fallback folder, and a warning says what was not
    logged."""
    if best_estimator is None:
        warn_not_logged(outcome, None, "The study itself is unaffected.")
        return
    log_fitted(
        best_estimator, frame, mlflow=mlflow, client=client, outcome=outcome, own_run=False,
        fingerprint=fingerprint, context="The study itself is unaffected.",
    )  # fmt: skip


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
    outcome: Outcome,
    experiment_id: str,
    fingerprint: dict[str, Any] | None,
    intermediate: tuple[str, bool],
    best_trial: int | None = None,
    status: str | None = None,
) -> str | None:
    """:func:`log_study` once the study's run is known (``outcome.run_id``); ``intermediate``:
    its ``(intermediate_key, negate_intermediate)``; the best and its model as
    :func:`~forecaster.tracking.studyrun.best_update` decides; the run's ``status`` last."""
    run_id = outcome.run_id
    params = {
        "study_name": study.study_name,
        "directions": ",".join(d.name for d in study.directions),
    }
    tags = {f"template.{k}": v for k, v in estimator_params(estimator).items()}
    tags["sampler"] = type(study.sampler).__name__
    tags["pruner"] = type(getattr(study, "pruner", None)).__name__
    if storage is not None:
        tags["forecaster.study_storage"] = mask_uri(storage)
    outcome.remote("study params", log_params, client, run_id, params)
    if fingerprint is not None:
        tags.update(fingerprint_params(fingerprint))
        outcome.remote("dataset fingerprint", client.log_dict, run_id, fingerprint, "dataset.json")
        outcome.remote("dataset version", log_data_version, client, run_id, fingerprint)
    outcome.remote("study tags", log_tags, client, run_id, tags)
    trials = outcome.local("study trials", study.get_trials, deepcopy=False) or []
    finished = [t for t in trials if t.state.is_finished()]
    counts: dict[str, float] = {"n_trials": float(len(trials))}
    for name in ("COMPLETE", "PRUNED", "FAIL"):
        counts[f"n_{name.lower()}"] = float(sum(t.state.name == name for t in trials))
    from mlflow.entities import Metric

    ts = now_ms()
    metrics = [Metric(k, v, ts, 0) for k, v in counts.items()]
    shown, model_missing = outcome.local("best params", best_update, study, best_trial) or (
        None,
        True,
    )  # not known (the study's storage failed): the model as given, as before
    if shown is not None:
        metrics.append(Metric("best_value", float(shown.value), ts, shown.number))
        best_params = dict(shown.params)
        outcome.remote("best params", client.log_dict, run_id, best_params, "best_params.json")
        best_tags = {f"best.{k}": param_value(v) for k, v in best_params.items()}
        best_tags["best.trial_number"] = str(shown.number)
        outcome.remote("best params", log_tags, client, run_id, best_tags)
    outcome.remote("study metrics", log_metrics, client, run_id, metrics)
    if finished:
        outcome.remote(
            "trial runs", _backfill_trials, client, experiment_id, run_id, study, intermediate
        )
    if best_estimator is not None and not model_missing and shown is None:
        warn_at_caller(
            f"The study has a better trial now than the one best_estimator was refitted from "
            f"(another process tuning it found trial {study.best_trial.number}): that "
            f"process logs its model on the study's run {run_id}, this one is not logged. The "
            "study itself is unaffected.",
            ForecasterWarning,
        )
    ending = None if status == "RUNNING" else status or ("FINISHED" if finished else None)
    if ending is not None:  # an earlier FAILED or KILLED end this call changes: kept as a tag
        outcome.remote("run status", keep_earlier_end, client, run_id)
    claim = None
    if shown is not None and model_missing and best_estimator is not None:
        claim = outcome.remote("model", claim_model, client, run_id, shown.number)
        model_missing = claim is not False  # None: the store failed, the model is kept locally
        if claim is False:  # another call's claim: warned when it has not recorded the model
            outcome.remote("model", warn_unlogged_claim, client, run_id, shown.number)
    if best_estimator is not None and model_missing:
        fitted = log_fitted(
            best_estimator,
            frame,
            mlflow=mlflow,
            client=client,
            outcome=outcome,
            own_run=ending is not None,
            end_status=ending or "FINISHED",
            inputs_logged=False,
            fingerprint=fingerprint,
            register_as=register_as,
            param_prefix="best.",
            params_as_tags=True,
            context="The study itself is unaffected.",
        )
        if shown is not None and "model" not in outcome.not_logged:
            trial_tag = {MODEL_TRIAL_TAG: str(shown.number)}
            outcome.remote("model", log_tags, client, run_id, trial_tag)
        elif shown is not None and isinstance(claim, str):  # not logged: a retry claims it
            outcome.remote("model claim", release_claim, client, run_id, shown.number, claim)
        return fitted.run_id
    if ending is not None:
        outcome.remote("run status", end_run, client, run_id, ending)
    elif status == "RUNNING":  # the session of trials that follows: a resumed study's too
        outcome.remote("run status", reopen_study_run, client, run_id)
    if outcome.not_logged:
        warn_not_logged(outcome, None, "The study itself is unaffected.")
    return run_id


def _backfill_trials(
    client: Any, experiment_id: str, parent_run_id: str, study: Any, intermediate: tuple[str, bool]
) -> None:
    """A child run for each finished trial of ``study`` that has none under the parent run
    yet (e.g. the server was down while it ran), as :func:`trial_callback` logs it."""
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
            _log_trial(client, experiment_id, parent_run_id, study, trial, intermediate)

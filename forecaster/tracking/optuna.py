"""Tuning studies in MLflow: :func:`log_study` creates (or finds again) a parent run for an
Optuna study and :func:`~forecaster.tracking.trialruns.trial_callback` logs each finished
trial as a nested child run.

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
import logging
from collections.abc import Iterator
from typing import Any

from forecaster.exceptions import (
    ForecasterWarning,
    warn_at_caller,
)
from forecaster.tracking.config import (
    bounded_requests,
    import_mlflow,
    mask_uri,
)
from forecaster.tracking.fingerprint import dataset_fingerprint, fingerprint_params
from forecaster.tracking.fitlog import log_fitted
from forecaster.tracking.records import (
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
    warn_not_logged,
)
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
from forecaster.tracking.trialruns import backfill_trials, ran

__all__ = ["log_study"]

logger = logging.getLogger(__name__)


def log_study(
    study: Any,
    estimator: Any,
    frame: Any = None,
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
    frame : polars.DataFrame or polars.LazyFrame, optional
        The tuning data, for its fingerprint (tags ``data.*``, params ``data.<n>.*``,
        ``dataset.json``): not logged without it (an INFO record says so), all else is.
    best_estimator : fitted estimator, optional
        The best trial's estimator refitted on ``frame``: logged on the parent run like
        :func:`log_fit` (its parameters as tags ``best.<name>``, history, metrics, plot and
        model). ``frame`` must be the data it was fitted on (see :func:`log_fit`): required.
    experiment : str, optional
        Experiment name of a top-level study run; default the experiment a fit's run goes
        to. With a run to nest in (see above): that run's experiment, or left out.
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
        estimator, ``frame`` not the data ``best_estimator`` was fitted on (or None), a
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
        with _killed_when_interrupted(mlflow, outcome) as made:
            experiment_id = open_study_run(mlflow, outcome, study, experiment, made)
            client, run_id = outcome.client(mlflow), outcome.run_id
            fingerprint = _study_fingerprint(outcome, estimator, frame)
            if run_id is None or experiment_id is None:
                _keep_locally(best_estimator, frame, mlflow, client, outcome, fingerprint)
                return None
            return _log_study_run(
                study, estimator, frame, best_estimator, register_as, storage,
                best_trial=best_trial, mlflow=mlflow, client=client, outcome=outcome,
                experiment_id=experiment_id, fingerprint=fingerprint,
                intermediate=(intermediate_key, bool(negate_intermediate)), status=status,
            )  # fmt: skip


def _study_fingerprint(outcome: Outcome, estimator: Any, frame: Any) -> dict[str, Any] | None:
    """The fingerprint of the study's ``frame`` (None when the step fails: recorded in
    ``outcome``), or None without a frame, with an INFO record saying what is not logged.
    Of all its columns, unlike a fit's (:func:`~forecaster.tracking.fingerprint.fingerprint_for`,
    the columns the model reads): the trials of a space that chooses the covariates read
    columns the template ``estimator`` does not name, and the best model's are among them."""
    if frame is None:
        logger.info(
            "log_study without frame: the study's dataset fingerprint (tags data.*, params "
            "data.<n>.*, artifact dataset.json) is not logged; the rest is. Pass the tuning "
            "data as frame to log it."
        )
        return None
    roles = {"id_col": getattr(estimator, "id_col", None)}
    roles["time_col"] = getattr(estimator, "time_col", None)
    # every column: a trial may read columns the template does not (a space over covariates)
    return outcome.local("dataset fingerprint", dataset_fingerprint, frame, **roles)


@contextlib.contextmanager
def _killed_when_interrupted(mlflow: Any, outcome: Outcome) -> Iterator[list[str]]:
    """A ``KeyboardInterrupt`` in the block (:func:`log_study` as it finds or makes the
    study's run, and after) ends that run KILLED, then goes on: tune's first call had not
    returned the run's ID yet, nothing else would end it. The run is ``outcome.run_id``
    once known, and before then a run this call created (in the list the block gets: the
    ID goes there as the creating write returns, so no interrupt falls between the run's
    creation and the block's knowing it). Not when :func:`log_fitted` ended it
    (``outcome.interrupted``); a tracking failure is left out."""
    made: list[str] = []
    try:
        yield made
    except KeyboardInterrupt:
        runs = [] if outcome.interrupted else [*made, outcome.run_id]
        for run_id in dict.fromkeys(r for r in runs if r is not None):
            with contextlib.suppress(Exception):
                end_run(outcome.client(mlflow), run_id, "KILLED")
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
    for name in ("COMPLETE", "PRUNED", "FAIL"):  # a trial ended before it ran: no failure
        counts[f"n_{name.lower()}"] = float(sum(t.state.name == name and ran(t) for t in trials))
    not_run = sum(not ran(t) for t in trials)
    if not_run:
        counts["n_not_run"] = float(not_run)
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
            "trial runs", backfill_trials, client, experiment_id, run_id, study, intermediate
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

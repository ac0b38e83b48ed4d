"""The parent run of a tuning study (see :func:`~forecaster.tracking.optuna.log_study`):
where it goes and how it is found again (:func:`open_study_run`), and the versions of the
data it was run on (:func:`log_data_version`).

Where it goes: nested in the run a fit would log into (the active run, else the run
``MLFLOW_RUN_ID`` names: ``mlflow run`` sets it; see
:func:`~forecaster.tracking.surrounding.surrounding_run`), in that run's experiment; that run is
left as it is (nothing logged into it, not ended: its owner ends it). A study's run always
nests there, even the first one: it holds the study's own params, tags and trial runs, which
the surrounding run's records would mix with. Without such a run it is a top-level run in
the experiment ``log_study`` is given, else the one a fit's run goes to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import numbers
import os
import re
import secrets
import socket
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from forecaster._hashing import sha256_bytes
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    NotFittedError,
    warn_at_caller,
)
from forecaster.tracking.config import (
    bounded_requests,
    check_flag,
    check_optional_name,
    import_mlflow,
    short_error,
)
from forecaster.tracking.fingerprint import fingerprint_params, same_data_hash, training_data
from forecaster.tracking.records import (
    KIND_TAG,
    end_run,
    log_params,
    log_tags,
    now_ms,
    tracking_write,
)
from forecaster.tracking.store import store_client
from forecaster.tracking.surrounding import surrounding_run
from forecaster.tracking.target import create_run, experiment_for_new_run

__all__ = [
    "EARLIER_END_TAG",
    "MODEL_TRIAL_TAG",
    "STOPPED_TAG",
    "STUDY_STATUSES",
    "best_update",
    "check_best_trial",
    "check_study_args",
    "claim_model",
    "end_study_run",
    "keep_earlier_end",
    "log_data_version",
    "open_study_run",
    "release_claim",
    "reopen_study_run",
    "study_key",
    "warn_unlogged_claim",
]


STUDY_TOKEN_ATTR = "forecaster.tracking_token"
"""The study's user attribute holding the random token of its key (see :func:`study_key`)."""

MODEL_TRIAL_TAG = "forecaster.best_model_trial"
"""Tag of a study's run: the number of the trial whose refitted model the run holds."""

IDENTITY_ATTRS = ("forecaster.task", "forecaster.search_space")
"""The study's user attributes (written by :func:`forecaster.tune`) that are part of its key."""

STUDY_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
"""The statuses :func:`~forecaster.tracking.log_study` gives the study's run (``status``)."""

EARLIER_END_TAG = "forecaster.earlier_end"
"""Tags ``forecaster.earlier_end.<end time>`` of a study's run: a FAILED or KILLED end of the
run that a later call changed (:func:`keep_earlier_end`); the value is its status. The time
is UTC in ISO 8601's basic format, ``20240131T235959.123Z``: MLflow refuses a colon in a tag's
name on Windows."""


STOPPED_TAG = "forecaster.stopped"
"""Tags ``forecaster.stopped.<time>`` of a study's run (the time as in
:data:`EARLIER_END_TAG`): a process tuning the study was stopped (Ctrl-C) while other machines
still ran trials of it, so the run was left RUNNING (:func:`end_study_run`); the value says
which process, and which trials went on."""


def end_study_run(run_id: str, status: str, elsewhere: Sequence[int] = ()) -> None:
    """End the study's run ``run_id`` ``status`` (``KILLED``) in the process's store, without
    the summary :func:`~forecaster.tracking.log_study` logs as it ends it: ``tune`` was
    interrupted (in its trials, or ``forecaster tune`` as it calibrated or saved the best
    model, or in its final ``log_study``). A run that has that status already (the
    interrupted ``log_study`` ended it) is left as it is: ended once. A tracking failure is
    a ``ForecasterWarning``: the run keeps the status it had.

    ``elsewhere``: the numbers of the study's trials still running on other machines. The run
    shows the study, not one process: it stays RUNNING (opened again, its end kept as tag
    ``forecaster.earlier_end.<time>``, when the interrupted ``log_study`` had ended it), with
    tag ``forecaster.stopped.<time>`` (:data:`STOPPED_TAG`) naming this process; the last
    process to finish the study ends it."""
    try:
        mlflow = import_mlflow()
        with bounded_requests():
            client = store_client(mlflow, mlflow.get_tracking_uri())
            current = client.get_run(run_id).info.status
            if elsewhere:
                _stopped_here(client, run_id, status, current, elsewhere)
            elif current != status:
                end_run(client, run_id, status)
    except Exception as exc:
        warn_at_caller(
            f"Could not end the study's MLflow run {run_id} {status} ({short_error(exc)}); it "
            "keeps the status it had. The study itself is unaffected.",
            ForecasterWarning,
        )


def _stopped_here(
    client: Any, run_id: str, status: str, current: str, elsewhere: Sequence[int]
) -> None:
    """The study's run left RUNNING as this process stops ``status`` while trials
    ``elsewhere`` go on (see :func:`end_study_run`): opened again only when it has that
    status (this process's interrupted final ``log_study`` ended it). A run another process
    ended FINISHED or FAILED is left so: that process finished the study as the trials
    ``elsewhere`` were read (reopened, nothing would end it again), or one still tuning
    ends it as it finishes."""
    if current == status:
        reopen_study_run(client, run_id)
    numbers = ", ".join(str(n) for n in sorted(elsewhere)[:20])
    here = f"{socket.gethostname()} pid {os.getpid()}"
    value = f"{status}: {here}; trials {numbers} still ran elsewhere"
    log_tags(client, run_id, {f"{STOPPED_TAG}.{_tag_time(now_ms())}": value})


def _tag_time(ms: int) -> str:
    """A time (milliseconds since the epoch) as a tag name takes it: UTC in ISO 8601's basic
    format, ``20240131T235959.123Z`` (MLflow refuses a colon in a tag's name on Windows)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z"


def study_key(study: Any) -> str:
    """The key of a study's parent run (tag ``forecaster.study_key``): a digest of a random
    token the study keeps in its own user attributes (``forecaster.tracking_token``, written
    by its first :func:`~forecaster.tracking.log_study`), its name and its recorded identity
    (the task and search space :func:`forecaster.tune` records). The token lives where the
    study lives: a study resumed from its storage finds its run again; an in-memory study,
    or a study created again under an old name (or in another storage), gets a run of its
    own."""
    attrs = study.user_attrs
    token = attrs.get(STUDY_TOKEN_ATTR)
    if not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{32}", token)):
        study.set_user_attr(STUDY_TOKEN_ATTR, secrets.token_hex(16))
        attrs = study.user_attrs  # read again: another process may have been first
        token = attrs[STUDY_TOKEN_ATTR]
    identity = [attrs.get(name) for name in IDENTITY_ATTRS]
    text = json.dumps([token, study.study_name, identity], default=str)
    return sha256_bytes(text.encode())[:32]


def open_study_run(
    mlflow: Any, outcome: Any, study: Any, experiment: str | None, made: list[str]
) -> str | None:
    """Find (or create) the study's run where the module docstring says, by its key
    (:func:`study_key`): ``outcome.run_id`` (an
    :class:`~forecaster.tracking.resilience.Outcome`; None when it could not be, recorded
    there); returns the ID of its experiment (None likewise). ``made``: the ID of a run this
    call created is appended as its write returns (before an interrupt held by the write is
    raised, and before the ID reaches ``outcome``), so that the caller ends it when
    interrupted in between; a run created and then given up is taken out again.

    Raises
    ------
    DataValidationError
        As :func:`_study_parent`, before anything is written.
    """
    parent = _study_parent(mlflow, outcome, experiment)  # the active or MLFLOW_RUN_ID's run
    if parent is None:
        experiment_id = outcome.remote("study run", experiment_for_new_run, mlflow, experiment)
        outcome.tracking_uri = mlflow.get_tracking_uri()
    else:
        experiment_id = parent[1]
    outcome.run_id = None
    key = outcome.local("study run (the study's key)", study_key, study)
    if experiment_id is not None and key is not None:
        found = outcome.remote(
            "study run", _study_run, mlflow, outcome.client(mlflow), experiment_id, study, key,
            None if parent is None else parent[0], made,
        )  # fmt: skip
        outcome.run_id = None if found is None else found[0]
    return experiment_id


def _study_parent(
    mlflow: Any, outcome: Any, experiment: str | None
) -> tuple[str, str | None] | None:
    """``(run ID, experiment ID)`` of the run a study's run nests in (see the module
    docstring); None when there is none (a top-level run). ``outcome``: the
    :class:`~forecaster.tracking.resilience.Outcome` of the call (the experiment ID is None
    when its store cannot be reached).

    Raises
    ------
    DataValidationError
        Before anything is written: ``MLFLOW_RUN_ID`` names a run the store does not have
        (or has deleted), or ``experiment`` names another experiment than that run's (a
        nested run is shown in its parent's experiment only).
    """
    parent = surrounding_run(mlflow, outcome)
    if parent is None or experiment is None or parent[1] is None:
        return parent
    run_id, experiment_id = parent
    found = outcome.remote(
        "study run", lambda: outcome.client(mlflow).get_experiment(experiment_id)
    )
    if found is not None and found.name != experiment:
        which = "active run" if mlflow.active_run() is not None else "run MLFLOW_RUN_ID names"
        raise DataValidationError(
            f"log_study(experiment={experiment!r}): the study's run nests in the {which} "
            f"({run_id}), of the experiment {found.name!r}, and MLflow shows a nested run in "
            "its parent's experiment only. Nothing was logged. Leave experiment out to nest "
            "the study's run there, or call log_study with no active run and MLFLOW_RUN_ID "
            f"unset to start it in {experiment!r}."
        )
    return parent


def _study_run(
    mlflow: Any,
    client: Any,
    experiment_id: str,
    study: Any,
    key: str,
    parent_run_id: str | None = None,
    made: list[str] | None = None,
) -> tuple[str, bool]:
    """``(run_id, created)`` of the study's parent run, found by its key (see
    :func:`study_key`), never by the study name alone; with ``parent_run_id`` (see
    :func:`_study_parent`), among the nested runs of that run only (a study resumed under
    another ``mlflow run`` gets a run there), and created nested in it.

    Several processes may start one new study at once (``tune`` in each): each that finds no
    run creates one, then searches again, and the earliest run with the key (by start time,
    then run ID) is the study's, in every process. A process whose own run lost deletes it
    (it holds nothing yet) and uses the winner; where the store refuses the deletion, the
    run is ended KILLED instead, and is never used (a later run never wins). A run of its own
    whose second search failed is kept as it is (in ``made``): it may be the earliest, which
    other processes found and log into; the next call finds it by its key and uses it.
    ``made``: see :func:`open_study_run`."""
    where = f"tags.`forecaster.study_key` = '{key}'"
    if parent_run_id is not None:
        where += f" and tags.mlflow.parentRunId = '{parent_run_id}'"
    found = _earliest_run(client, experiment_id, where)
    if found is not None:
        return found, False
    tags = {"forecaster.study": study.study_name, "forecaster.study_key": key}
    tags[KIND_TAG] = "study"
    name = f"study-{study.study_name}"
    made = [] if made is None else made
    mine = create_run(mlflow, client, experiment_id, name, parent_run_id, tags, made)
    # a failed search leaves ``mine`` as it is: it may be the study's (the earliest), used
    # by another process already; the next call finds it by its key
    winner = _earliest_run(client, experiment_id, where) or mine
    if winner == mine:
        return mine, True
    _discard_run(client, mine, made)  # another process created the study's run first
    return winner, False


def _discard_run(client: Any, run_id: str, made: list[str]) -> None:
    """Delete the run ``run_id`` this call created and will never use (it holds nothing yet),
    or end it KILLED where the store refuses the deletion; then take it out of ``made``."""
    try:
        tracking_write(client.delete_run, run_id)
    except Exception:
        with contextlib.suppress(Exception):
            end_run(client, run_id, "KILLED")
    with contextlib.suppress(ValueError):
        made.remove(run_id)


def _earliest_run(client: Any, experiment_id: str, where: str) -> str | None:
    """The ID of the earliest active run (by start time, then run ID) matching ``where``;
    None when there is none."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=where,
        order_by=["attributes.start_time ASC"],
        max_results=100,
    )
    if not runs:
        return None
    return str(min(runs, key=lambda run: (run.info.start_time or 0, run.info.run_id)).info.run_id)


def log_data_version(client: Any, run_id: str, fingerprint: Mapping[str, Any]) -> None:
    """The data of this call as params ``data.<n>.*`` (``n`` = 0, 1, ... for each new
    dataset the study is run on), unless the latest version is the same data. Params never
    change: a study resumed on newer data adds a version instead of overwriting one."""
    logged = client.get_run(run_id).data.params
    versions = sorted(
        int(match.group(1))
        for name in logged
        if (match := re.fullmatch(r"data\.(\d+)\.hash", name)) is not None
    )
    if versions and same_data_hash(logged[f"data.{versions[-1]}.hash"], fingerprint):
        return  # the same data (an earlier version's hash of a Categorical or Enum id too)
    n = versions[-1] + 1 if versions else 0
    params = fingerprint_params(fingerprint)
    log_params(client, run_id, {f"data.{n}.{k[len('data.') :]}": v for k, v in params.items()})


def check_study_args(
    study: Any,
    estimator: Any,
    frame: Any,
    best_estimator: Any,
    experiment: Any,
    register_as: Any,
    storage: Any,
    intermediate_key: Any,
    negate_intermediate: Any,
    best_trial: Any = None,
    status: Any = None,
) -> Any:
    """Refuse arguments of :func:`~forecaster.tracking.log_study` that are not what it needs;
    the frame (as :func:`~forecaster.tracking.fingerprint.training_data` returns it when there
    is a best estimator, which needs one; None is kept without one: no fingerprint).

    Raises
    ------
    DataValidationError, NotFittedError
        As :func:`~forecaster.tracking.log_study` says, before anything is logged.
    """
    needed = ("study_name", "get_trials", "directions", "user_attrs", "set_user_attr")
    if not all(hasattr(study, a) for a in needed):
        raise DataValidationError(
            f"log_study needs an optuna.Study as its first argument, got {type(study).__name__}."
        )
    if not hasattr(estimator, "get_params"):
        raise DataValidationError(
            f"log_study needs the tuned estimator (a forecaster estimator), got "
            f"{type(estimator).__name__}."
        )
    check_optional_name("experiment", experiment)
    check_optional_name("register_as", register_as)
    check_optional_name("storage", storage)
    if not isinstance(intermediate_key, str) or not intermediate_key.strip():
        raise DataValidationError(
            f"intermediate_key must be a non-empty string (a metric name, e.g. "
            f"'best_val_loss'), got {intermediate_key!r}."
        )
    check_flag("negate_intermediate", negate_intermediate)
    check_best_trial(study, best_trial, best_estimator)
    _check_status(status, best_estimator)
    if best_estimator is None:
        return frame
    if not all(hasattr(best_estimator, a) for a in ("network_", "get_params", "check_fitted")):
        raise NotFittedError(
            f"best_estimator must be a fitted forecaster estimator (the refitted best trial), "
            f"got an unfitted {type(best_estimator).__name__}."
        )
    best_estimator.check_fitted("log")  # parameters that shape predictions changed since fit
    if frame is None:
        raise DataValidationError(
            "log_study(best_estimator=...) needs frame, the data the best model was refitted "
            "on (its dataset fingerprint, forecast plot and input example describe the "
            "model); got frame=None. Pass that frame, or leave best_estimator out to log the "
            "study without its data (its trials, best params and value)."
        )
    return training_data(best_estimator, frame, "log_study")


def _check_status(status: Any, best_estimator: Any) -> None:
    """Refuse a ``status`` of :func:`~forecaster.tracking.log_study` other than None or one
    of :data:`STUDY_STATUSES`, and ``"RUNNING"`` with a best estimator (the call that logs
    the best model ends a session of trials)."""
    if status is not None and (not isinstance(status, str) or status not in STUDY_STATUSES):
        raise DataValidationError(
            f"status must be one of {list(STUDY_STATUSES)} (the study's run's status after "
            f"log_study) or None (FINISHED once the study has a finished trial), got {status!r}."
        )
    if status == "RUNNING" and best_estimator is not None:
        raise DataValidationError(
            "log_study(status='RUNNING') opens the study's run for a session of trials, and "
            "best_estimator is logged by the call that ends one: leave status out (or pass "
            "'FINISHED') to log it, or best_estimator out to open the run."
        )


def keep_earlier_end(client: Any, run_id: str) -> str:
    """The status of the study's run ``run_id``; when it ended FAILED or KILLED (an earlier
    call, e.g. a ``tune`` stopped by Ctrl-C, or another process's), that end is kept as tag
    ``forecaster.earlier_end.<its end time>`` (:data:`EARLIER_END_TAG`) = its status, before
    a call changes it: a resumed study does not hide that its run failed. Writing the same
    end twice (two processes) writes the same tag."""
    info = client.get_run(run_id).info
    if info.status in ("FAILED", "KILLED") and info.end_time is not None:
        log_tags(client, run_id, {f"{EARLIER_END_TAG}.{_tag_time(info.end_time)}": info.status})
    return str(info.status)


def reopen_study_run(client: Any, run_id: str) -> None:
    """The study's run ``run_id`` RUNNING again when it had ended (a resumed study: its trials
    log into it), as MLflow's ``start_run(run_id=...)`` resumes a run (the end time stays
    until the run ends again); an earlier FAILED or KILLED end is kept
    (:func:`keep_earlier_end`)."""
    if keep_earlier_end(client, run_id) != "RUNNING":
        tracking_write(client.update_run, run_id, status="RUNNING")


def check_best_trial(study: Any, best_trial: Any, best_estimator: Any) -> None:
    """Refuse a ``best_trial`` of :func:`~forecaster.tracking.log_study` that is not the
    number of a complete trial of ``study``, or that comes without ``best_estimator``.

    Raises
    ------
    DataValidationError
        Before anything is logged.
    """
    if best_trial is None:
        return
    if best_estimator is None:
        raise DataValidationError(
            f"log_study(best_trial={best_trial!r}) names the trial best_estimator was refitted "
            "from, but no best_estimator was given: pass it too, or leave best_trial out."
        )
    complete = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    if (
        isinstance(best_trial, bool)
        or not isinstance(best_trial, numbers.Integral)
        or int(best_trial) not in complete
    ):
        raise DataValidationError(
            f"best_trial must be the number of a complete trial of the study "
            f"{study.study_name!r} (the one best_estimator was refitted from), got "
            f"{best_trial!r}; complete trials: {sorted(complete)[:20]}. Leave it out to use "
            "the study's best trial."
        )


def best_update(study: Any, best_trial: int | None) -> tuple[Any, bool]:
    """``(trial, model)``: the trial whose summary (tags ``best.*``, ``best_value``) this call
    writes on the study's run, None to write none; ``model``: whether this call may log its
    refitted model (see :func:`claim_model`).

    ``best_trial``: the trial this call's best model was refitted from, default the study's
    best trial as read now. Several processes finish one study: a process writes its best
    only while it is the study's best trial, read again from the study's storage now (another
    process may have found a better one since this one's trials ended), so the run ends with
    the study's best, whichever process finishes last. ``(None, False)``: the study has a
    better trial now; ``(None, True)``: there is no best to write (no complete trial, or
    several objectives), a model is logged as given."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    if len(study.directions) != 1 or not trials:
        return None, True
    best = study.best_trial  # read again: other processes may have finished better trials
    ours = trials.get(best.number if best_trial is None else best_trial, best)
    if ours.number != best.number and ours.value != best.value:
        return None, False
    return ours, True


MODEL_CLAIM_PARAM = "forecaster.model_claim"
"""Params ``forecaster.model_claim.<trial>`` (then ``.<trial>.1``, ``.2``... after failed
claims): the claims of a trial's refitted model (see :func:`claim_model`)."""

FAILED_CLAIM_TAG = "forecaster.model_claim_failed"
"""Tags ``forecaster.model_claim_failed.<token>``: a claim whose holder failed to log the model
(see :func:`release_claim`); its value is the trial's number."""

MAX_CLAIMS = 20
"""Claims of one trial's model tried before giving up (each failed one is marked)."""


def claim_model(client: Any, run_id: str, number: int) -> str | Literal[False]:
    """The token of this call's claim to log the refitted model of trial ``number`` on the
    study's run; False when another call holds the claim (it logs the model, or is logging it).

    The first to log the param ``forecaster.model_claim.<number>`` (a random token) claims it:
    MLflow never changes a param's value, in one transaction on a database store, so of
    several processes that finish at once exactly one logs it; the others' tokens are
    refused. A claim whose holder could not log the model (an upload that failed, marked by
    :func:`release_claim`) is passed over: the next claim is param
    ``forecaster.model_claim.<number>.1`` (then ``.2``...), so a retried ``log_study``
    logs the model, once however many retry at once.

    Raises
    ------
    MlflowException
        When the store failed (not a claim of another call).
    """
    from mlflow.exceptions import MlflowException

    token = secrets.token_hex(8)
    for attempt in range(MAX_CLAIMS):
        key = f"{MODEL_CLAIM_PARAM}.{number}" + (f".{attempt}" if attempt else "")
        try:
            tracking_write(client.log_param, run_id, key, token)
        except MlflowException:
            data = client.get_run(run_id).data
            holder = data.params.get(key, token)
            if holder == token:
                raise  # not a claim of another call: the store failed
            if data.tags.get(f"{FAILED_CLAIM_TAG}.{holder}") == str(number):
                continue  # its holder could not log the model: claim it again
            return False
        return token
    return False


def release_claim(client: Any, run_id: str, number: int, token: str) -> None:
    """Mark this call's claim ``token`` of trial ``number``'s model as failed (its model was
    not logged: tag ``forecaster.model_claim_failed.<token>``), so that a later call (a
    retried ``log_study``) claims the model again (:func:`claim_model`)."""
    log_tags(client, run_id, {f"{FAILED_CLAIM_TAG}.{token}": str(number)})


def warn_unlogged_claim(client: Any, run_id: str, number: int) -> None:
    """After :func:`claim_model` refused this call: warn when the run's tag
    ``forecaster.best_model_trial`` does not name trial ``number`` (the call holding the claim
    is still logging the model, or ended without marking its failure: killed, or the store
    failed too), since this call's model is then not logged anywhere."""
    data = client.get_run(run_id).data
    if data.tags.get(MODEL_TRIAL_TAG) == str(number):
        return  # logged by the claim's holder
    base = f"{MODEL_CLAIM_PARAM}.{number}"
    claims = sorted(k for k in data.params if k == base or k.startswith(f"{base}."))
    warn_at_caller(
        f"The refitted model of trial {number} was not logged on the study's run {run_id}: "
        f"another call claimed it first ({', '.join(claims) or base}) and has not recorded "
        f"it as logged (tag {MODEL_TRIAL_TAG} does not name trial {number}). If that call "
        "is still logging it, nothing is missing; if it was killed, or its store failed, "
        "log this model in a run of its own with tracking.log_fit(best_estimator, frame). "
        "The study itself is unaffected.",
        ForecasterWarning,
    )

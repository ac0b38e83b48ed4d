"""Hyperparameter tuning with Optuna: :func:`tune`.

An Optuna study over an estimator's parameters. Every trial clones the estimator, sets the
sampled parameters, fits it with an epoch-end callback that reports the running best validation
loss to Optuna (so that a pruner can stop unpromising trials early), and returns the best
validation loss. The best parameters are then fitted again, as the trials fit them: on the
same frame, with its validation split held out for early stopping (not on the whole frame).

What the objective sees
    The estimator's own validation split: the steps after one hold-out time ``V`` of a date
    or datetime panel (``validation_size`` grid steps before its last time), each series' own
    last ``validation_size`` steps for integer steps (the last ``validation_fraction`` of the
    samples for :class:`~forecaster.RNNRegressor`).
    Those steps are used for early stopping and model selection, so they are *not* a test set:
    keep the test span out of ``frame`` (e.g. ``frame.filter(pl.col("date") < test_start)``)
    and score the returned estimator on it afterwards.

Storage, resume and crashes
    By default the study lives in a SQLite file ``optuna.db`` next to the MLflow tracking store
    (the folder of ``MLFLOW_TRACKING_URI`` when it is a ``sqlite:///`` URI, else ``mlflow/``
    under the working directory), under a name derived from the estimator class, its columns,
    horizon, search space, metric and data. Rerunning the same call therefore resumes the study:
    ``n_trials`` is the total number of *finished* (complete or pruned) trials wanted, so a
    rerun only runs the missing ones, and a rerun with a larger ``n_trials`` extends the study.

    A process killed mid-trial (SIGKILL, power loss, a lost machine) leaves its trial
    ``RUNNING``. Dead trials are found by Optuna's heartbeat alone: every running trial records
    a heartbeat every :data:`HEARTBEAT_INTERVAL` seconds, and once a trial has sent none for
    :data:`GRACE_PERIOD` seconds the next process that starts a trial (or a rerun of
    :func:`tune`) marks it ``FAIL`` (``optuna.storages.fail_stale_trials``) and queues it again,
    with the same parameters, as a ``WAITING`` trial that the next trial of any process runs
    (Optuna's retry callback, at most :data:`MAX_RETRY` times; the retry's system attribute
    ``failed_trial`` names the killed trial). Until then it counts as running: a rerun within
    the grace period runs the trials missing beside it, then waits (polling the storage) until
    the grace period has failed it, and runs it again. A study in memory (``storage=None``)
    has no heartbeat and no resume.
    A storage object without heartbeat (a ``JournalStorage``, an ``RDBStorage`` opened without
    ``heartbeat_interval``) cannot tell the trial of a killed process, RUNNING forever, from
    one another process is running: a call that finds RUNNING trials there warns (how many,
    and how to fail them by hand or to open the storage with a heartbeat) and does not count
    them toward ``n_trials`` (were they alive, the study ends up to that many trials past it).

    A study is for one task and one search space: it records both when it is created (study user
    attributes ``forecaster.task`` and ``forecaster.search_space``, JSON), and a later call that
    names the same study for another estimator class, target, columns, covariates, static
    covariates, calendar, horizon, frequency, missing-value policy, scaling, target transform,
    loss (and a quantile loss's quantiles), validation split, metric, direction or search space
    is refused, naming what the study was created with and what is asked now. Callables (a
    metric, a search space) are told apart by their qualified name and a digest of their code
    and captured values, so two lambdas are two callables. The template's other fixed parameters
    (lookback, network and training settings; not the run settings ``progress``, ``device``,
    ``checkpoint_dir``, ``random_state``...) are recorded too (``forecaster.fixed_params``):
    they change how good a trial is, not the units of its value, so a difference is a warning,
    not a refusal. So is other data: a study records the fingerprint of the data it was created
    on (``forecaster.data``: the content hash of every column, as
    :func:`~forecaster.tracking.fingerprint.dataset_fingerprint`, with rows, series and time
    span), and a call that names it on other data warns that its trials and best value were
    measured on that data (a study created before the record: that its data was not recorded;
    this call's is recorded). The default name digests that hash too, so the same call on other
    data (more rows, other series, a revised value; another Polars version, which hashes
    differently) starts a study of its own: a scheduled tuning on each day's data starts a new
    study every day, as the pipelines' one study per as-of does. To resume one study on growing
    data, name it (with the warning; its MLflow run adds the new data as params ``data.<n>.*``)
    and pass an explicit ``search_space`` (the default space's lookback choices follow the
    data's length: a new choice is another space, refused under a ``study_name``).

    A storage that cannot hold a study (an unsupported URL, a missing driver, a file that is
    not a database, a read-only database, a server that refuses the connection, an in-memory
    SQLite URL) is a :class:`StorageError` naming it (password masked), before anything runs;
    a storage that fails during the study is a :class:`~forecaster.ForecasterError` (finished
    trials are kept).

Checked before any trial
    A search space may not sample the task (target, id_col, time_col, horizon, freq, missing):
    trials would answer different questions. Nor, with the validation loss as the objective, its
    units or the steps it is measured on (scaling, target_transform, loss, quantiles,
    validation_size, validation_fraction): a loss of 446.7 unscaled and of 0.25 after minmax
    scaling cannot be ranked. Tune those in separate studies, or with a metric callable that
    scores every trial on the original scale. Every value a search space can sample is checked
    against the parameter table (:mod:`forecaster._validation`) before the first trial (e.g. a
    float range for ``hidden_size`` is refused), and so is a template or space every trial's
    fit would refuse as ``fit`` starts (``check_used_params``: ``checkpoint_every`` without
    ``checkpoint_dir``, ``on_oom="split"`` on the CPU, ``lr_schedule=["cosine"]`` with
    ``max_epochs=1``, or ``lr_schedule="cosine"`` with ``max_epochs=1`` and the default space,
    which then samples no ``lr_schedule``), with ``fit``'s message. What a callable search
    space returns is checked at the first trial: an error there stops the study instead of
    failing every trial.
    The same goes for what depends on the data and the metric: the frame is read once as each
    trial's fit reads it (missing values, the grid, its type and columns), lookbacks the longest
    series has no training window for are refused, a metric callable must take ``(estimator,
    frame)``, and a metric that returns no number (None, text, a bool, a tensor of several
    values) stops the study at its first trial. With the validation loss or a probabilistic
    score as the objective, every trial should be scored on the same validation windows
    (:mod:`forecaster.tuning.data_checks`): lookbacks that leave out a short series' first
    validation origins get one warning per call, at the caller's line (a dict space's before
    any trial, a callable space's after the trials); sampled ``windows_per_epoch`` values
    below the number of validation windows are refused (with ``"val_loss"``: a fit scores a
    random sample of that many), and a callable space's trial that samples them fails.
    ``stride`` thins the training windows only.

Failed trials
    A trial that fails - its sampled parameters do not suit the data (a
    :class:`~forecaster.DataValidationError`, e.g. a lookback a callable space sampled that is
    longer than the series), a torch error or running out of memory in its fit, a metric
    callable that raises or returns NaN or an infinity - is marked FAIL with a readable
    reason in its ``user_attrs["error"]``; one whose training diverged (NaN loss) is pruned.
    The study goes on (a process stops after :data:`MAX_CONSECUTIVE_FAILURES` failures in a
    row). Errors of the storage, and of your ``callbacks``, stop the study. Every trial stores
    ``params``, the per-epoch ``history``, ``pid``, ``host`` and ``torch_threads`` (the torch
    thread count it ran at) in its ``user_attrs``.

Several processes and machines
    ``n_workers=N`` starts N worker processes (``spawn``) that run trials of the same study
    through the shared storage. Several machines work the same way: run the same
    ``tune(..., storage="postgresql+psycopg://user:password@host/db", study_name="...")`` call
    on each machine (same study name and storage URL), after ``pip install "psycopg[binary]"``
    (or ``postgresql+psycopg2://...`` with ``pip install psycopg2-binary``; a bare
    ``postgresql://`` uses SQLAlchemy's default driver, psycopg from SQLAlchemy 2.1 on).
    SQLite suits the processes of one machine only. A process stops starting trials once
    finished and running trials reach ``n_trials`` (and a trial started at the same moment past
    them ends before it runs, FAIL with the user attribute ``surplus``: no more than
    ``n_trials`` finish; :mod:`~forecaster.tuning.quota`), then waits for the trials the
    other processes are running (a trial of a killed process: until the grace period fails it,
    and then runs it again), so every process returns the study's best trial, and counts read
    at the same moment (see :func:`tune`). A worker killed (e.g. by the kernel's OOM killer)
    does not stop the others: ``tune`` returns with a warning naming it (an error when every
    worker died). Workers end with their caller: a killed caller's workers stop at once, an
    interrupted one (Ctrl-C; ``SIGTERM`` under the command line) terminates them. With
    ``random_state``, each trial's TPE draw is seeded by ``random_state`` and the trial's
    number, which the storage gives out once per study, so processes never repeat each
    other's parameters; one process alone reproduces its run (trials 0, 1, 2, ... on every
    run), several do not (which process gets which number is a race). A worker runs torch on
    its share of the cores (the cores divided by ``n_workers``, unless ``OMP_NUM_THREADS`` is
    set), and CPU results depend on the thread count, so ``best_estimator`` is refitted at the
    thread count its trial ran at (the caller's restored after): the best trial's model again,
    bit for bit on CPU, when that trial ran on this machine. A trial of another machine with
    more threads than this process may use is refitted at the caller's count, and may differ in
    the last digits. Processes that open one new storage at the same moment race to create its
    tables: the loser tries again (:func:`make_storage`). Worker processes
    receive the template, search space, metric, callbacks, pruner and storage pickled: what
    does not pickle (a lambda, a function defined inside another or in an interactive
    session) is refused before the study is opened, when a worker would start (not for one
    trial wanted or a complete study). The ``callbacks`` run in the worker that ran the trial,
    on its own copy.

Tracking
    Opt-in: with ``track=True`` (it needs ``pip install 'forecaster-rnn[track]'``) :func:`tune`
    uses :mod:`forecaster.tracking`: ``log_study(study, estimator, frame, storage=...)``
    creates (or, for a study resumed from its storage, finds again by the key the study keeps;
    never by its name alone, so an in-memory study always gets its own) the study's parent
    run before the trials; ``trial_callback(parent_run_id, tracking_uri=...,
    intermediate_key="best_val_loss")`` logs every finished trial as a nested child run, in
    the process that ran it; and ``log_study(..., best_estimator=...)`` logs the summary, a
    child run for any trial not logged yet and the refitted best model on the parent run at
    the end (the refit runs inside ``tracking.paused()``). Both calls log a trial's running
    best validation loss per epoch as ``best_val_loss``; a ``direction="maximize"`` study's
    trials report it negated to Optuna (its pruner ranks them in the study's direction), so
    both pass ``negate_intermediate=True``, and the metric is the loss itself. Trial fits
    always run inside ``tracking.paused()``: no run of their own, even under
    ``tracking.autolog()``. A tracking failure is a warning and never stops the study (an
    unreachable server costs one short probe, see :mod:`forecaster.tracking`; one warning at
    the end says what was not logged and where the best model was kept).

Example
    >>> import numpy as np, polars as pl
    >>> from forecaster import RNNForecaster
    >>> t = np.arange(160)
    >>> frame = pl.DataFrame({"time": t, "y": np.sin(2 * np.pi * t / 12)})
    >>> model = RNNForecaster(target="y", lookback=24, horizon=6, max_epochs=1, batch_size=32,
    ...                       progress=False)
    >>> result = tune(model, frame, n_trials=2, storage=None, random_state=0,
    ...               search_space={"hidden_size": [4, 8], "lr": (1e-3, 1e-2, "log")})
    >>> result.n_trials_finished, sorted(result.best_params)
    (2, ['hidden_size', 'lr'])
    >>> result.best_estimator.predict(frame).height
    6
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from forecaster.data.dtypes import training_frame
from forecaster.data.frames import collect_frame
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    StorageError,
    StudyStopError,
    collect_warnings,
    warnings_unit,
)
from forecaster.tuning.arguments import check_tune_args
from forecaster.tuning.common import import_optuna
from forecaster.tuning.conditions import recorded_seed, trial_params
from forecaster.tuning.data_checks import check_data, warn_trial_windows
from forecaster.tuning.identity import default_study_name, open_study, study_data, study_identity
from forecaster.tuning.scores import score_column
from forecaster.tuning.space import check_frame, resolve_space
from forecaster.tuning.storage import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_RETRY,
    finished_trials,
    has_heartbeat,
    storage_errors,
    storage_label,
    storage_url,
    study_storage,
)
from forecaster.tuning.study_log import (
    TRIAL_METRIC,
    StudyLogger,
    refit_context,
    require_tracking,
)
from forecaster.tuning.trials import (
    MAX_CONSECUTIVE_FAILURES,
    Objective,
    TrialSettings,
    bounded_workers,
    check_picklable,
    fit_estimator,
    make_pruner,
    make_sampler,
    refit_clone,
    requeue_lost_trials,
    study_snapshot,
    trial_counts,
    trial_threads,
)
from forecaster.tuning.workers import optimize

__all__ = [
    "GRACE_PERIOD",
    "HEARTBEAT_INTERVAL",
    "MAX_CONSECUTIVE_FAILURES",
    "MAX_RETRY",
    "StorageError",
    "TuneResult",
    "tune",
]


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes
    ----------
    study : optuna.Study
        The whole study (every trial of every run and process), e.g. for
        ``optuna.visualization``.
    best_params : dict
        The tuned parameters of the best complete trial (set them on a clone of the estimator).
    best_value : float
        Its objective value (by default the best validation loss, in scaled units).
    best_estimator : estimator or None
        A clone of the estimator with ``best_params``, fitted as the trials were (the
        validation split still held out for early stopping; with the best trial's seed (the
        trials' one, or the one it drew: ``user_attrs["seed"]``) and at its torch thread
        count, the best trial's model again: see "Several processes and machines" in the
        module docs); None when ``refit=False``.
    n_trials_finished : int
        Complete and pruned trials in the study, read at the moment ``best_params`` was (after
        the trials, before the refit).
    n_trials_run : int
        Trials added to the study while this call ran (by its processes, and by other
        machines on a shared storage), read at that moment too.
    study_name : str
    storage_url : str or None
        The storage's URL with any password masked; None in memory.
    search_space : dict or callable
        What the trials sampled: parameter name -> Optuna distribution (the default space
        resolved for the data, or the one passed, checked), or the callable passed.
    run_id : str or None
        The study's MLflow run (``track=True``; None untracked, or when it could not be made).
    """

    study: Any
    best_params: dict[str, Any]
    best_value: float
    best_estimator: Any
    n_trials_finished: int
    n_trials_run: int
    study_name: str
    storage_url: str | None = None
    search_space: Any = field(default=None, repr=False)
    run_id: str | None = None

    def trials_frame(self) -> pl.DataFrame:
        """One row per trial: number, state, value (the objective; null for a pruned trial,
        stopped before it was scored), ``best_val_loss`` (the trial's running best validation
        loss at its last epoch: where a pruned trial stopped), epochs, seconds, pid and the
        parameters (columns ``params_<name>``)."""
        # the trials report the loss negated to a maximize study (PruningReporter)
        sign = -1.0 if self.study.directions[0].name == "MAXIMIZE" else 1.0
        rows = []
        for t in self.study.get_trials(deepcopy=False):
            seconds = None
            if t.datetime_start is not None and t.datetime_complete is not None:
                seconds = (t.datetime_complete - t.datetime_start).total_seconds()
            reports = t.intermediate_values
            row = {
                "number": t.number,
                "state": t.state.name,
                # Optuna gives a pruned trial its last report: a loss, not the objective
                "value": None if t.state.name == "PRUNED" else t.value,
                TRIAL_METRIC: sign * reports[max(reports)] if reports else None,
                "epochs": len(t.intermediate_values),
                "seconds": seconds,
                "pid": t.user_attrs.get("pid"),
            }
            params = t.user_attrs.get("params", t.params)
            row.update({f"params_{k}": v for k, v in params.items()})
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)


def tune(
    estimator: Any,
    frame: Any,
    *,
    n_trials: int | None = 20,
    timeout: float | None = None,
    search_space: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
    metric: str | Callable[[Any, Any], float] = "val_loss",
    direction: str = "minimize",
    storage: Any = "default",
    study_name: str | None = None,
    n_workers: int = 1,
    pruner: Any = "median",
    random_state: int | None = None,
    refit: bool = True,
    track: bool = False,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
    show_progress: bool | None = None,
) -> TuneResult:
    """Tune ``estimator``'s parameters on ``frame`` with an Optuna study (see the module docs).

    Parameters
    ----------
    estimator : RNNForecaster, LSTMForecaster, ..., or RNNRegressor
        The template: each trial clones it and sets the sampled parameters. It needs a
        validation split (``validation_size`` or ``validation_fraction`` > 0).
    frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame, or tuple (X, y)
        The training data *without the test span* (its validation hold-out, see above,
        validates every trial; pandas: converted as by ``fit``); ``(X, y)``: RNNRegressor.
    n_trials : int or None, default 20
        Finished (complete or pruned) trials wanted in the study, counting those of earlier
        runs (failed trials do not count); None: until ``timeout``.
    timeout : float, optional
        Seconds after which no new trial starts (a running one is not interrupted).
    search_space : dict or callable, optional
        Parameter name -> an ``optuna.distributions`` object, a list (categorical choices),
        ``(low, high)`` (uniform; int when both are ints) or ``(low, high, "log")``; or a
        callable ``trial -> dict``. Default: :func:`default_search_space`.
    metric : str or callable, default "val_loss"
        The lowest validation loss over the epochs; ``"pinball"``, ``"scrps"``, ``"msis"``, ...
        (a quantile model's score: :mod:`forecaster.tuning.scores`); or ``metric(fitted_estimator,
        frame) -> float`` (e.g. a backtest score). Pruning uses the validation loss.
    direction : {"minimize", "maximize"}, default "minimize"
    storage : "default", str, path-like, optuna storage or None, default "default"
        See :func:`make_storage`; None keeps the study in memory (no resume).
    study_name : str, optional
        Default: ``<class>-<target>-h<horizon>-<digest of the study identity>``: the same call
        resumes the same study, a call for another task or on other data gets its own.
    n_workers : int, default 1
        Worker processes on the study (a database storage; at most the cores and the trials
        missing, with a warning). What they receive must pickle (checked first). Each process
        on a study waits for the others' running trials, then returns the study's best.
    pruner : {"median", "hyperband", "none"} or optuna pruner, default "median"
        ``MedianPruner(n_startup_trials=5, n_warmup_steps=3)`` or ``HyperbandPruner``.
    random_state : int, optional
        A seed from 0 to 2**32 - 1. Seeds the TPE sampler (per trial, with the trial's number:
        processes sharing the study never repeat each other's draws) and the trials' fits,
        when the estimator has none. With neither, each trial's fit draws a seed, recorded
        in its ``user_attrs["seed"]``, which the refit of the best trial reuses.
    refit : bool, default True
        Fit a clone with the best parameters as the trials fit; checkpoints in a new subfolder.
    track : bool, default False
        Log the study to MLflow through :mod:`forecaster.tracking` (None is taken as False).
    callbacks : sequence of callable
        Optuna study callbacks ``callback(study, frozen_trial)`` after every trial, in the
        process that ran it (with ``n_workers > 1`` a worker's copy: its changes stay there).
    show_progress : bool or None
        A progress bar over trials (one process); None: in a terminal or notebook.

    Returns
    -------
    TuneResult

    Raises
    ------
    ImportError
        When Optuna (or, with ``track=True``, MLflow) is not installed.
    StorageError
        When the storage cannot be used (see :func:`make_storage`). Nothing is run.
    DataValidationError
        Before any trial: bad settings, space, template, frame or metric, or a study of another
        task; at the first trial: a space or metric callable wrong for every trial.
    ForecasterError
        When no trial completed, the storage failed during the study, or every worker died.
    """
    import_optuna()  # an ImportError naming the extra, before anything else
    check_tune_args(
        estimator, n_trials, timeout, n_workers, direction, metric, study_name, random_state,
        refit, track, callbacks, show_progress,
    )  # fmt: skip
    objective, pruner_obj, storage_obj, name, data = _prepare(
        estimator, frame, search_space, metric, direction, random_state, n_workers, pruner,
        storage, track, callbacks, n_trials, study_name,
    )  # fmt: skip
    space, url = objective.space, storage_url(storage_obj)
    identity = study_identity(estimator, space, metric, direction, objective.overrides)
    with storage_errors(url, "open"):
        study = open_study(storage_obj, name, direction, pruner_obj, identity, space, url, data)
    label, beats = storage_label(storage_obj, url), has_heartbeat(storage_obj)  # dead trials fail
    logger = StudyLogger(track, study, estimator, objective.data, label, objective.sign < 0, beats)
    try:
        with collect_warnings("tuning", "trial"):  # one summary of the trials' warnings
            with storage_errors(url, "tuning"):
                n_existing = len(study.get_trials(deepcopy=False))  # a retry is this call's
                unjudged = requeue_lost_trials(study, storage_obj, label, n_trials)  # once, here
                workers = bounded_workers(int(n_workers), n_trials, trial_counts(study)[0])
                study.sampler = make_sampler(random_state)
                deadline = None if timeout is None else time.time() + float(timeout)
                settings = TrialSettings(  # the logger's trial callback first: before yours
                    name, storage_obj, random_state, n_existing, pruner_obj, objective, n_trials,
                    deadline, [*logger.start(), *callbacks], workers, show_progress, unjudged,
                )  # fmt: skip
                study, snapshot = _run_study(study, settings)
            result = _result(study, snapshot, settings, estimator if refit else None,
                             bool(track), url, logger.run_id)  # fmt: skip
        logger.finish(best_estimator=result.best_estimator, best_trial=snapshot[0].number)
    except BaseException as error:  # a callback's error, Ctrl-C: the run ends with its trials
        logger.finish_stopped(error)
        raise
    return result


def _result(
    study: Any,
    snapshot: tuple[Any, int, int],
    settings: TrialSettings,
    refit: Any,
    track: bool,
    url: str | None,
    run_id: str | None,
) -> TuneResult:
    """The result: the best trial and the counts of ``snapshot`` (read at one moment:
    :func:`~forecaster.tuning.trials.study_snapshot`), its parameters fitted again when
    ``refit`` is the estimator to refit (None: no refit); ``run_id``: the study's MLflow run."""
    best_trial, n_finished, n_run = snapshot
    best_params = dict(best_trial.user_attrs.get("params", best_trial.params))
    objective, best_estimator = settings.objective, None
    if refit is not None:  # at the thread count CPU results depend on, with the trial's seed
        with trial_threads(best_trial):
            fitted = {**recorded_seed(best_trial), **best_params}
            best_estimator = _refit(refit, objective, fitted, track, study.study_name)
    return TuneResult(
        study=study, best_params=best_params, best_value=float(best_trial.value),
        best_estimator=best_estimator, n_trials_finished=n_finished, n_trials_run=n_run,
        study_name=settings.study_name, storage_url=url, search_space=objective.space,
        run_id=run_id,
    )  # fmt: skip


def _prepare(
    estimator: Any,
    frame: Any,
    search_space: Any,
    metric: Any,
    direction: str,
    random_state: int | None,
    n_workers: int,
    pruner: Any,
    storage: Any,
    track: bool,
    callbacks: Sequence[Callable[[Any, Any], None]],
    n_trials: int | None,
    study_name: str | None,
) -> tuple[Objective, Any, Any, str, dict[str, Any]]:
    """What the study needs, checked before its storage is opened: the objective (see
    :func:`_objective`), the pruner, the storage, the study's name and what it records of the
    data (:func:`~forecaster.tuning.identity.study_data`); when worker processes
    would start (:func:`~forecaster.tuning.trials.check_picklable`), that what they receive
    pickles."""
    if track:
        require_tracking()
    objective = _objective(
        estimator, frame, search_space, metric, direction, random_state, n_workers
    )
    pruner_obj = make_pruner(pruner, estimator.get_params(deep=False).get("max_epochs"))
    data = study_data(estimator, objective.data)
    name = study_name or default_study_name(estimator, objective.space, metric, direction, data)
    sent = {"estimator": estimator, "search_space": objective.space, "metric": metric}
    sent.update({f"callbacks[{i}]": callback for i, callback in enumerate(callbacks)})
    check_picklable(
        int(n_workers), {**sent, "pruner": pruner_obj, "storage": storage}, n_trials,
        lambda: finished_trials(storage, name),
    )  # fmt: skip
    return objective, pruner_obj, study_storage(storage, n_workers), name, data


def _objective(
    estimator: Any,
    frame: Any,
    search_space: Any,
    metric: Any,
    direction: str,
    random_state: int | None,
    n_workers: int,
) -> Objective:
    """The trials' objective, after the checks of the frame, the search space and the data
    that every trial would otherwise fail the same way; a frame estimator's pandas frame
    converted once, as ``fit`` does (:func:`~forecaster.data.dtypes.training_frame`)."""
    if getattr(estimator, "time_col", None) is not None:  # (pandas advice for its times too)
        frame = training_frame(frame, estimator.time_col)
    check_frame(estimator, frame)
    if isinstance(frame, pl.LazyFrame) and (n_workers > 1 or score_column(metric) is not None):
        frame = collect_frame(frame)  # once for every trial: workers and scores read a DataFrame
    space = resolve_space(search_space, estimator, frame, metric)
    max_lookback, span = check_data(
        estimator, frame, space, metric, default_space=search_space is None
    )
    params = estimator.get_params(deep=False)
    overrides: dict[str, Any] = {}
    if params.get("progress", False) is None:
        overrides["progress"] = False
    if random_state is not None and "random_state" in params and params["random_state"] is None:
        overrides["random_state"] = int(random_state)
    sign = -1.0 if direction == "maximize" else 1.0
    return Objective(estimator, frame, space, overrides, metric, sign, max_lookback, span)


def _run_study(study: Any, settings: TrialSettings) -> tuple[Any, tuple[Any, int, int]]:
    """Run the trials (in every process, until the trials of other processes on the study
    ended: :func:`~forecaster.tuning.trials.run_trials`); the study afterwards and its
    :func:`~forecaster.tuning.trials.study_snapshot`: the best trial and the counts, read at
    one moment (an error when no trial completed, or when the search space or metric is wrong
    for every trial; a warning when a callable space's trials were scored on different
    validation windows)."""
    try:
        study = optimize(study, settings)
    except StudyStopError as exc:  # shown as what it is: the search space or metric
        raise DataValidationError(f"{exc} {exc.stop_note}") from exc.__cause__
    snapshot = study_snapshot(study, settings.n_existing)
    if snapshot[0] is None:  # the study's run ends FAILED, as after any error (tune's except)
        raise ForecasterError(_no_trial_message(study))
    if not isinstance(settings.objective.space, Mapping):  # a dict space's: before any trial
        ours = [t for t in study.get_trials(deepcopy=False) if t.number >= settings.n_existing]
        warn_trial_windows(settings.objective.span, ours)
    return study, snapshot


def _refit(
    estimator: Any, objective: Objective, best_params: dict[str, Any], track: bool, study: str
) -> Any:
    """A clone with the best parameters, fitted as the trials were (the same frame and
    validation split, the seed the trials got; tracked, the model is logged on the study's
    run, not as a run of its own); checkpoints in a subfolder (:func:`refit_clone`)."""
    overrides = {k: v for k, v in objective.overrides.items() if k == "random_state"}
    model = refit_clone(estimator, study)
    model.set_params(**trial_params({**overrides, **best_params}, estimator))
    with warnings_unit("the refit of the best trial"), refit_context(track):
        fit_estimator(model, objective.data, ())
    return model


def _no_trial_message(study: Any) -> str:
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}  # distinct reason -> first trial number
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
        if t.state.name == "FAIL":
            reason = t.user_attrs.get("error") or t.user_attrs.get("fail_reason")
            if reason and reason not in reasons:
                reasons[str(reason)] = t.number
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"
    message = f"No trial of study {study.study_name!r} completed ({summary})."
    if reasons:
        shown = [f"trial {number}: {reason}" for reason, number in list(reasons.items())[:3]]
        more = f" (and {len(reasons) - 3} other errors)" if len(reasons) > 3 else ""
        message += f" Errors: {' | '.join(shown)}{more}"
    return message

"""The trials: the objective, pruning, stopping, samplers, pruners and worker processes."""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forecaster._hashing import sha256_hasher
from forecaster._warnings import catching_warnings
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    StudyStopError,
    TrialFailedError,
    warn_at_caller,
    warnings_unit,
)
from forecaster.training import TrainingDivergedError
from forecaster.training.checkpoint_directory import clone_without_checkpoints
from forecaster.tuning.common import import_optuna, is_int, metric_value, reason, short_repr
from forecaster.tuning.conditions import check_run_settings, drawn_seed, trial_params
from forecaster.tuning.data_checks import ValidationSpan, check_trial_scale
from forecaster.tuning.quota import QuotaObjective, is_surplus
from forecaster.tuning.retries import INTERRUPTED_ATTR, check_retry, retry_interrupted_trials
from forecaster.tuning.scores import probabilistic_score, score_column
from forecaster.tuning.space import sample_params
from forecaster.tuning.storage import (
    await_running_trials,
    fail_stale_trials,
    is_storage_error,
    warn_unjudged_trials,
)

__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "Objective",
    "PruningReporter",
    "TrialSeededSampler",
    "TrialSettings",
    "available_cores",
    "bounded_workers",
    "check_picklable",
    "fit_estimator",
    "make_pruner",
    "make_sampler",
    "refit_clone",
    "requeue_lost_trials",
    "run_trials",
    "study_snapshot",
    "trial_counts",
    "trial_threads",
]

MAX_CONSECUTIVE_FAILURES = 10
"""A process stops after this many failed trials in a row (e.g. every sampled lookback is too
long for the data)."""


class PruningReporter:
    """Epoch callback: reports the running best validation loss times ``sign`` and prunes.
    Only the first network's epochs are reported: an ensemble's later members start their own
    curves (and the ensemble is scored as a whole, ``val_loss_``).

    ``sign`` is -1.0 for a ``direction="maximize"`` study (its pruner ranks the reported
    values in the study's direction: the lowest loss is the highest value), else 1.0. A
    trial's logged ``best_val_loss`` is negated back (see
    :data:`forecaster.tuning.study_log.TRIAL_METRIC`).
    """

    def __init__(self, trial: Any, sign: float) -> None:
        self.trial = trial
        self.sign = sign
        self.best = math.inf
        self.history: list[dict[str, Any]] = []
        self.first: Any = None  # the network of the first member

    def __call__(self, record: Any, network: Any) -> None:
        self.history.append(record.as_dict())
        self.first = network if self.first is None else self.first
        value = record.val_loss
        if value is None or not math.isfinite(value) or network is not self.first:
            return
        self.best = min(self.best, float(value))
        self.trial.report(self.sign * self.best, record.epoch)
        if self.trial.should_prune():
            optuna = import_optuna()
            raise optuna.TrialPruned(
                f"pruned after epoch {record.epoch} (best val_loss {self.best:.5g})"
            )


def refit_clone(estimator: Any, study_name: str) -> Any:
    """An unfitted clone of the template ``estimator`` for ``tune``'s refit of the best trial,
    its checkpoints (when the template has a ``checkpoint_dir``) in a fresh subfolder of that
    folder, ``tune-refit-<UTC time>-<process ID>-<study name>``, which the returned model's
    ``checkpoint_dir`` names: the folder holds the checkpoints of the user's own fit of the
    template, which a fresh fit into it would replace, and two processes refitting one study
    at once would delete each other's. The study name's characters other than ASCII letters,
    digits, ``_``, ``.`` and ``-`` become ``_`` (its first 80 are kept): a folder name within
    the 255 bytes of a file name on Linux and macOS, and valid on Windows.

    Examples
    --------
    >>> from forecaster import RNNForecaster
    >>> model = refit_clone(RNNForecaster(target="y", checkpoint_dir="ckpt"), "my study")
    >>> model.checkpoint_dir.startswith(os.path.join("ckpt", "tune-refit-"))
    True
    >>> model.checkpoint_dir.endswith("-my_study")
    True
    """
    from sklearn.base import clone

    model = clone(estimator)
    folder = model.get_params(deep=False).get("checkpoint_dir")
    if folder is not None:
        when = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = re.sub(r"[^\w.-]", "_", study_name, flags=re.ASCII)[:80]  # within 255 bytes
        fresh = f"tune-refit-{when}-{os.getpid()}-{name}"
        model.set_params(checkpoint_dir=os.path.join(folder, fresh))
    return model


def fit_estimator(estimator: Any, data: Any, callbacks: Sequence[Any]) -> Any:
    if isinstance(data, tuple):
        return estimator.fit(*data, callbacks=callbacks)
    return estimator.fit(data, callbacks=callbacks)


@dataclass
class Objective:
    estimator: Any
    data: Any
    space: Any
    overrides: dict[str, Any]
    metric: Any
    sign: float
    max_lookback: int | None = None  # the longest lookback the data has room for
    span: ValidationSpan | None = None  # the validation split the trials are scored on

    def __call__(self, trial: Any) -> float:
        optuna = import_optuna()
        check_retry(trial)  # not a second retry of one trial; not "interrupted"
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("torch_threads", _torch_threads())  # for the refit: trial_threads
        reporter = PruningReporter(trial, self.sign)
        try:
            with warnings_unit(trial.number):  # tune summarizes the trials' warnings
                return self._run(trial, reporter)
        except optuna.TrialPruned:
            trial.set_user_attr("history", reporter.history)
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: FAIL, and queued again on resume
            with contextlib.suppress(Exception):
                trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        except StudyStopError as exc:  # the space or metric is wrong, not this trial: stop
            trial.set_user_attr("error", str(exc))
            raise
        except TrainingDivergedError as exc:  # a bad combination: rank it last, do not retry
            trial.set_user_attr("history", reporter.history)
            trial.set_user_attr("error", str(exc))
            raise optuna.TrialPruned(f"training diverged: {exc}") from exc
        except Exception as exc:
            if is_storage_error(exc):
                raise  # not the trial's fault: tune reports it (see storage_errors)
            why = reason(exc)  # e.g. a lookback too long for the data, a torch error, OOM
            trial.set_user_attr("error", why)
            if reporter.history:
                trial.set_user_attr("history", reporter.history)
            raise TrialFailedError(why) from exc

    def _run(self, trial: Any, reporter: PruningReporter) -> float:
        params = sample_params(trial, self.space, self.estimator, self.metric)
        trial.set_user_attr("params", params)
        self._check_template_lookback(params)
        if not isinstance(self.space, Mapping):  # what a dict space was checked for
            self._check_callable_trial(params)
        model = clone_without_checkpoints(self.estimator)  # the template's folder keeps its fit's
        fixed = {**self.overrides, **params}  # and a seed drawn when nothing seeds the fit
        model.set_params(**trial_params({**fixed, **drawn_seed(trial, model, fixed)}, model))
        from forecaster.tracking import paused

        with paused():  # a trial's fit is no run of its own (tune(track=True) logs the trial)
            fit_estimator(model, self.data, [reporter])
        history = list(getattr(model, "history_", reporter.history))
        trial.set_user_attr("history", history)
        if callable(self.metric):
            return metric_value(self.metric(model, self.data))
        if score_column(self.metric) is not None:  # "pinball", "msis", ...
            return probabilistic_score(model, self.data, self.metric)
        # the fitted model's own loss (an ensemble's, not its best member's), else the best
        # epoch's of the history (an estimator that does not set val_loss_)
        losses = [getattr(model, "val_loss_", None)]
        if losses[0] is None:
            losses = [r["val_loss"] for r in history if r.get("val_loss") is not None]
        finite = [float(v) for v in losses if v is not None and math.isfinite(v)]
        if not finite:
            raise DataValidationError(
                "The fit produced no validation loss: no series is long enough for a validation "
                "window after lookback + horizon. Use a shorter lookback or more data."
            )
        return min(finite)

    def _check_callable_trial(self, params: Mapping[str, Any]) -> None:
        """A callable space's trial: stop on template run settings every fit would refuse
        (:func:`check_run_settings`); fail a trial whose ``windows_per_epoch`` samples the
        validation windows (its lookback is compared with the other trials' after them), or
        whose lookback scores a series without the scale of a scaled metric
        (:func:`check_trial_scale`: the study stops when every trial has the lookback)."""
        try:
            check_run_settings(self.estimator, params)
        except DataValidationError as exc:
            raise StudyStopError(str(exc)) from None
        problem = None if self.span is None else self.span.trial_problem(params)
        if problem is not None:
            raise DataValidationError(problem)
        missing = self.estimator.get_params(deep=False).get("missing", "error")
        check_trial_scale(self.span, self.metric, self.data, missing, params)

    def _check_template_lookback(self, params: Mapping[str, Any]) -> None:
        """A callable space that sets no lookback leaves the template's to every trial: when
        the data has no room for it, stop (a dict space is checked before any trial)."""
        lookback = self.estimator.get_params(deep=False).get("lookback")
        if self.max_lookback is None or "lookback" in params or not is_int(lookback):
            return
        if lookback > self.max_lookback:
            raise StudyStopError(
                f"The search_space callable sets no lookback, so every trial fits with the "
                f"estimator's lookback={lookback}, and the data has room for lookbacks up to "
                f"{max(self.max_lookback, 0)} (lookback + horizon steps before the validation "
                f"steps, in the longest series). Set a shorter lookback, or sample one."
            )


class _Stopper:
    """Study callback: stop once enough trials are finished (or running elsewhere), or after
    too many failures in a row; updates the progress bar. ``ignore``: running trials not
    counted (see :func:`trial_counts`)."""

    def __init__(self, n_trials: int | None, bar: Any = None, ignore: Collection[int] = ()) -> None:
        self.n_trials = n_trials
        self.bar = bar
        self.failures = 0
        self.ignore = ignore
        self.gave_up = False  # stopped after too many failures in a row

    def __call__(self, study: Any, trial: Any) -> None:
        optuna = import_optuna()
        failed = trial.state.name == "FAIL" and not is_surplus(trial)  # (not run: no failure)
        self.failures = self.failures + 1 if failed else 0
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            optuna.logging.get_logger("optuna").warning(
                f"{self.failures} trials failed in a row; this process stops tuning. Last "
                f"error: {trial.user_attrs.get('error', 'see the log')}"
            )
            self.gave_up = True
            study.stop()
        finished, running = trial_counts(study, self.ignore)
        if self.bar is not None:
            self.bar.set_count(finished, _best(study))
        if self.n_trials is not None and finished + running >= self.n_trials:
            study.stop()


def _best(study: Any) -> str:
    """``"best <value>"`` of the study so far, or ``""`` before a trial completes."""
    try:
        return f"best {study.best_value:.4g}"
    except (ValueError, RuntimeError):  # no completed trial yet; several objectives
        return ""


def trial_counts(study: Any, ignore: Collection[int] = ()) -> tuple[int, int]:
    """(finished, running) trial counts of the study, without the running trials numbered in
    ``ignore`` (those a storage without heartbeat cannot tell dead or alive:
    :func:`~forecaster.tuning.storage.warn_unjudged_trials`)."""
    counts = {"COMPLETE": 0, "PRUNED": 0, "RUNNING": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state.name in counts and not (t.state.name == "RUNNING" and t.number in ignore):
            counts[t.state.name] += 1
    return counts["COMPLETE"] + counts["PRUNED"], counts["RUNNING"]


def requeue_lost_trials(
    study: Any, storage: Any, label: str, n_trials: int | None
) -> frozenset[int]:
    """What a call of ``tune`` does with the trials earlier calls lost, before it runs any (and
    before its worker processes start, so that they do not each queue the same trial): the
    trials of a killed process are failed and queued again (:func:`fail_stale_trials`), the
    running trials a storage without heartbeat cannot judge are warned of
    (:func:`warn_unjudged_trials`: returned, not counted) and the interrupted trials are
    queued again once, within the ``n_trials`` still missing (:func:`retry_interrupted_trials`;
    ``label``: the storage as warnings name it)."""
    fail_stale_trials(study)
    unjudged = warn_unjudged_trials(study, storage, label)
    counted = sum(trial_counts(study, unjudged))  # finished or running
    retry_interrupted_trials(study, None if n_trials is None else n_trials - counted)
    return unjudged


def run_trials(
    study: Any,
    objective: Objective,
    n_trials: int | None,
    deadline: float | None,
    callbacks: Sequence[Any],
    bar: Any = None,
    ignore: Collection[int] = (),
    storage: Any = None,
) -> None:
    """Run trials in this process until the study has ``n_trials`` finished or time is up
    (running trials count, but not those numbered in ``ignore``: see :func:`trial_counts`).

    Then wait for the trials other processes sharing ``storage`` are running
    (:func:`~forecaster.tuning.storage.await_running_trials`: a killed process's trial is
    failed after the storage's grace period and queued again), and run more trials when the
    study is still short of ``n_trials`` (such a retry, or a trial that failed elsewhere), so
    that every process ends with the study complete and its best trial final. A trial created
    past the first ``n_trials`` (processes that checked at the same moment) ends before it runs
    (:class:`~forecaster.tuning.quota.QuotaObjective`)."""
    fail_stale_trials(study)  # trials of a killed process: FAIL, queued again
    stopper, bounded = _Stopper(n_trials, bar, ignore), QuotaObjective(objective, n_trials, ignore)
    while not stopper.gave_up:
        timeout = None if deadline is None else deadline - time.time()
        missing = n_trials is None or sum(trial_counts(study, ignore)) < n_trials
        if missing and (timeout is None or timeout > 0):
            study.optimize(
                bounded,
                n_trials=None,
                timeout=timeout,
                catch=(TrialFailedError,),
                callbacks=[*callbacks, stopper],
            )
        await_running_trials(study, storage, ignore)  # other processes' trials
        out_of_time = deadline is not None and time.time() >= deadline
        if n_trials is None or out_of_time or trial_counts(study, ignore)[0] >= n_trials:
            return


def study_snapshot(study: Any, n_existing: int) -> tuple[Any, int, int]:
    """The best complete trial of ``study`` (None when none completed), its finished (complete
    or pruned) trials and the trials added since it had ``n_existing``: all read at one moment
    (one read of the storage), so that they agree while other processes add trials."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    finished = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    pick = max if study.direction.name == "MAXIMIZE" else min
    best = pick(complete, key=lambda t: t.value) if complete else None
    return best, finished, len(trials) - n_existing


def make_sampler(random_state: int | None) -> Any:
    """TPE (multivariate, grouped); with ``random_state``, seeded per trial (see
    :class:`TrialSeededSampler`), so that the processes and machines that share a study never
    repeat each other's draws while one process's run stays reproducible."""
    if random_state is None:
        return _tpe(None)
    base = import_optuna().samplers.BaseSampler  # optional: registered, not derived
    if not issubclass(TrialSeededSampler, base):  # once per process
        base.register(TrialSeededSampler)
    return TrialSeededSampler(int(random_state))


def _tpe(seed: int | None) -> Any:
    optuna = import_optuna()
    with catching_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def trial_seed(random_state: int, number: int) -> int:
    """The TPE seed of trial ``number`` of a study tuned with ``random_state``."""
    digest = sha256_hasher(f"{random_state}:trial:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededSampler:
    """Optuna's TPE sampler, seeded afresh for every trial from ``(random_state, trial
    number)``.

    The storage gives every trial of a study its own number, whichever process or machine
    asks for it, so the processes that run the same ``tune(..., random_state=...)`` call on
    one shared study draw from different random streams (one seed per process would repeat
    the same parameters in each of them), and a resumed study does not replay its first draws.
    One process alone numbers its trials 0, 1, 2, ... on every run: the same seeds, the same
    parameters. Optuna itself gives each copy of a sampler another seed for the same reason
    (``BaseSampler.reseed_rng``, for ``n_jobs > 1``), but from fresh entropy, which no run
    reproduces. TPE keeps no state between trials beyond its random generator: it reads the
    study's trials at every draw, so a fresh TPE per trial samples as one would. It implements
    ``optuna.samplers.BaseSampler`` (registered as a virtual subclass by :func:`make_sampler`:
    Optuna is an optional dependency, not imported with this module).
    """

    def __init__(self, random_state: int) -> None:
        self.random_state = int(random_state)
        self._number: int | None = None
        self._sampler: Any = None

    def _for(self, trial: Any) -> Any:
        if trial.number != self._number:
            self._number = trial.number
            self._sampler = _tpe(trial_seed(self.random_state, trial.number))
        return self._sampler

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, name, distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's seed is its own already (Optuna calls this for each
        thread of ``n_jobs > 1``)."""


def make_pruner(pruner: Any, max_epochs: int | None) -> Any:
    optuna = import_optuna()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    if pruner == "hyperband":
        max_resource = max_epochs if isinstance(max_epochs, int) and max_epochs > 1 else "auto"
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_resource, reduction_factor=3
        )
    if pruner in ("none", None):
        return optuna.pruners.NopPruner()
    raise DataValidationError(
        f"pruner={pruner!r} is not supported. Use 'median', 'hyperband', 'none' or an "
        "optuna.pruners.BasePruner instance."
    )


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


@contextlib.contextmanager
def trial_threads(trial: Any) -> Iterator[None]:
    """The block runs at the torch thread count of the process that ran ``trial`` (its
    ``user_attrs["torch_threads"]``), and the caller's count is restored after it.

    A CPU fit's results depend on the thread count (a sum split over another number of
    threads rounds differently), and the trials of ``n_workers > 1`` run with fewer threads
    than the calling process (:func:`~forecaster.tuning.workers.worker_main`): refitted at
    the caller's count, the best trial's model would differ in its last digits. The count is
    left as it is for a trial that recorded none (a study of an older version) or more threads
    than this process may use (another machine's trial: its results are that machine's
    anyway)."""
    import torch

    wanted, previous = trial.user_attrs.get("torch_threads"), _torch_threads()
    change = is_int(wanted) and wanted != previous and 1 <= wanted <= available_cores()
    if change:
        torch.set_num_threads(int(wanted))
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(previous)


def check_picklable(
    n_workers: int,
    parts: Mapping[str, Any],
    n_trials: int | None = None,
    finished: Callable[[], int] | None = None,
) -> None:
    """Refuse, before the study is opened, what the worker processes of ``n_workers > 1``
    cannot receive: they start with ``spawn`` and get the template, search space, metric,
    callbacks, pruner and storage by pickling (a lambda, a function defined inside another,
    a function of an interactive session do not pickle, or cannot be imported there). Their
    failure in the workers came after an empty study was created, with wrong advice.

    Only when worker processes would start: ``n_workers`` bounded as :func:`bounded_workers`
    bounds it, by the cores and the trials still missing (``n_trials`` less the study's
    finished trials, ``finished()``: asked only when a part does not pickle). One trial
    wanted, or a study already complete, runs in this process: nothing is sent."""
    if _worker_limit(n_trials, 0)[0] < 2 or n_workers < 2:  # one process: nothing is sent
        return
    main = sys.modules.get("__main__")
    interactive = not getattr(main, "__file__", None)
    for name, value in parts.items():
        problem = None
        module = getattr(value, "__module__", None)
        if interactive and module == "__main__" and callable(value):
            problem = "it is defined in an interactive session, which they cannot import"
        else:
            try:
                pickle.dumps(value)
            except Exception as exc:
                problem = f"it cannot be pickled ({type(exc).__name__}: {exc})"
        if problem is None:
            continue
        if finished is not None and _worker_limit(n_trials, finished())[0] < 2:
            return  # the study needs one process at most: no worker starts
        raise DataValidationError(
            f"n_workers={n_workers} runs the trials in worker processes, which receive "
            f"the {name} ({short_repr(value)}) by pickling, and {problem}. Define it at "
            "module level in a .py file (a def, not a lambda or a function defined inside "
            "another) and import it, or use n_workers=1. Nothing was run."
        )


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _worker_limit(n_trials: int | None, finished: int) -> tuple[int, str]:
    """The most worker processes worth starting, and why: the cores this process may run
    on, and the trials still missing (0 when the study is complete)."""
    cores = available_cores()
    limits = [(cores, f"this process may run on {cores} CPU core(s)")]
    if n_trials is not None:
        remaining = n_trials - finished
        limits.append((remaining, f"{remaining} trial(s) remain to reach n_trials={n_trials}"))
    return min(limits, key=lambda item: item[0])


def bounded_workers(n_workers: int, n_trials: int | None, finished: int) -> int:
    """``n_workers`` reduced to the cores available and to the trials still wanted, with a
    warning that says why (each worker is a process that imports torch: more workers than
    cores, or than trials, only cost memory and start-up time)."""
    bound, why = _worker_limit(n_trials, finished)
    if bound <= 0:
        return 1  # nothing to run: the study is complete
    if n_workers <= bound:
        return n_workers
    warn_at_caller(
        f"n_workers={n_workers} reduced to {bound}: {why}. Each worker is a process of its own; "
        "on several machines, run the same tune call on each (same storage and study_name).",
        ForecasterWarning,
    )
    return bound


@dataclass
class TrialSettings:
    """What the trial loop needs (also sent to worker processes)."""

    study_name: str
    storage: Any
    random_state: int | None
    n_existing: int
    pruner: Any
    objective: Objective
    n_trials: int | None
    deadline: float | None
    callbacks: list[Any]
    n_workers: int
    show_progress: bool | None
    unjudged: frozenset[int] = frozenset()  # running trials not counted (see trial_counts)

"""The model of a run: fitted with checkpoints, tuned in the study of its as-of, or reused.

Tuning
    The Optuna study of a run is :func:`study_name`: ``<name>-<spec hash>-<as-of label>``. A
    study holds the trials of one as-of, so a backfill never reuses scores measured on later
    data (and a new as-of starts a new study). ``run --tune`` and ``forecaster tune`` of one
    spec and as-of share the study and its lock (``models/<name>/.<label>-tuned.lock``), so
    they never run the same trials twice; ``forecaster tune`` saves the study's refitted best
    model under that lock. The study searches :func:`search_plan`: the default search space
    less the parameters the spec's ``[model]`` sets, which every trial keeps. Trials write no
    checkpoints; ``forecaster tune`` logs the study to MLflow (``tune(track=True)``) only when
    ``[tracking] enabled``; ``run --tune`` logs the refitted model into the run's own MLflow
    run (:func:`forecaster.jobs.tracked.logged_fits`), not the trials. The backtest of a run
    that tunes scores parameters of another study, tuned on the data before its first fold
    (:mod:`forecaster.jobs.tuned_backtest`), never this one's: its trials hold every fold's
    targets in their validation hold-out.
Checkpoints
    Fits checkpoint into :func:`~forecaster.jobs.placement.checkpoint_folder`:
    ``model.checkpoint_dir`` (relative to the project; shared by every as-of of the spec, so
    one run at a time), else a hidden folder beside the outputs. A command that fitted removes
    its checkpoint files on success. With ``resume`` a fit continues from them; with none, or
    with checkpoints written for other data or parameters (yesterday's failed run), it starts
    from scratch with a log line, so a scheduler can always pass ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

import forecaster.tuning as tuning
from forecaster._hashing import sha256_bytes
from forecaster.exceptions import (
    CheckpointError,
    ForecasterError,
    SpecError,
)
from forecaster.jobs.data import AsOf
from forecaster.jobs.fit_short import short_series_named_by_run
from forecaster.jobs.hashing import spec_hashes
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.outputs import Job
from forecaster.jobs.pointer import reused_model
from forecaster.jobs.spec import (
    Spec,
    build_estimator,
    first_line,
    normal_path,
    sqlite_file,
    storage_url,
    without_checkpoints,
)
from forecaster.jobs.tracked import study_tracking
from forecaster.training import distributed
from forecaster.training.loop import latest_checkpoint
from forecaster.tuning.arguments import validation_split_problem
from forecaster.tuning.conditions import CONDITIONS, applies
from forecaster.tuning.storage import finished_trials

__all__ = [
    "SearchPlan",
    "fit_with_checkpoints",
    "make_model",
    "model_plan",
    "reuses",
    "search_plan",
    "study_name",
    "trials_text",
    "tune_model",
    "tuned_model_dir",
    "tunes",
    "tuning_study",
]


def fit_with_checkpoints(
    estimator: Any,
    frame: pl.DataFrame,
    folder: Path,
    resume: bool,
    log: Callable[[str], None],
) -> Path:
    """Fit with checkpoints in ``folder`` (see :func:`checkpoint_folder`); return it.

    With ``resume``, continue from the checkpoint there when there is one (and say so), else
    train from the start, so that a scheduler can always pass ``--resume``. A checkpoint that
    cannot be resumed (written for other data or parameters: yesterday's run; unreadable)
    is said in a log line, and the fit starts from scratch, replacing it (only checkpoint
    files forecaster wrote are ever replaced). The estimator's ``checkpoint_dir`` parameter is
    as it was afterwards (the saved model does not point at a folder removed on success).
    """
    original = estimator.checkpoint_dir
    estimator.set_params(checkpoint_dir=str(folder))
    try:
        found = resume and latest_checkpoint(folder) is not None
        if resume and not found:
            log(f"resume   no checkpoint in {folder}: training from the start")
        if found:
            log(f"resume   from the checkpoint in {folder}")
            try:
                estimator.fit(frame, resume=True)
                return folder
            except CheckpointError as exc:
                log(
                    f"resume   cannot resume from the checkpoint in {folder} "
                    f"({first_line(exc)}): training from the start"
                )
        estimator.fit(frame, resume=False)
    finally:
        estimator.set_params(checkpoint_dir=original)
    return folder


def study_name(spec: Spec, when: AsOf) -> str:
    """The Optuna study of a spec as of a date: ``<name>-<hash>-<as-of label>``. A study holds
    the trials of one as-of only: the scores of a study measured on later data would leak
    that data into a backfill. The hash is the spec's without what no trial's score depends
    on (the tuning budget ``trials`` / ``timeout``, ``tune``, ``reuse_model``, and the
    ``[evaluation]``, ``[tracking]`` and ``[output]`` sections): raising ``trials`` in the
    spec extends the study, as ``--trials`` does, instead of starting another. A spec whose
    ``[model]`` fixes parameters of the default search space (:func:`search_plan`) searches
    another space: their names are in the hash too, so that fixing one more (even at its
    default value, which leaves the spec's hash be) starts a study of its own rather than
    resuming one searched over another space."""
    return _study_names(spec, when)[0]


def _study_names(spec: Spec, when: AsOf) -> tuple[str, str]:
    """:func:`study_name`, and the one of the spec's legacy hash
    (:func:`forecaster.jobs.hashing.spec_hashes`)."""
    budget = type(spec.training)()  # the defaults of the keys no score depends on
    training = spec.training.model_copy(
        update={k: getattr(budget, k) for k in ("trials", "timeout", "tune", "reuse_model")}
    )
    searched = spec.model_copy(
        update={
            "training": training,
            **{k: type(getattr(spec, k))() for k in ("evaluation", "tracking", "output")},
        }
    )
    fixed = search_plan(spec, build_estimator(spec, False)).fixed
    names = []
    for digest in spec_hashes(searched):
        if fixed:  # no fixed parameter: the name it had before [model] values were kept
            digest = sha256_bytes(json.dumps([digest, sorted(fixed)]).encode())[:12]
        names.append(f"{spec.pipeline.name}-{digest}-{when.label}")
    return names[0], names[1]


def tuning_study(spec: Spec, root: Path, when: AsOf, log: Callable[[str], None]) -> str:
    """The study a tuning of the spec as of ``when`` runs: :func:`study_name`, unless the
    spec's storage holds finished trials of the study named with its legacy hash (from before
    the description and the way paths are written left the hash), which it then resumes
    (``log``: a line that says so) rather than start again from trial 0."""
    name, legacy = _study_names(spec, when)
    if legacy != name and finished_trials(storage_url(spec, root), legacy):
        log(f"tune     resuming the study {legacy} (named with the spec's hash of before {name})")
        return legacy
    return name


class SearchPlan(NamedTuple):
    """What a pipeline's tuning searches (:func:`search_plan`)."""

    space: dict[str, Any]
    """The searched parameters: name -> Optuna distribution."""
    fixed: dict[str, Any]
    """The parameters of the default search space that ``[model]`` sets, with its values."""
    unused: dict[str, str]
    """Conditional parameters left out because their fixed parent never uses them -> it."""

    def describe(self) -> str:
        """``over cell, head, ...; [model] fixes hidden_size = 4, ...`` (for the plan and log)."""
        text = f"over {', '.join(self.space)}"
        if self.fixed:
            values = ", ".join(f"{k} = {v!r}" for k, v in self.fixed.items())
            text += f"; [model] fixes {values}"
        if self.unused:  # the parent of each is fixed (the default space searches it)
            unused = ", ".join(
                f"{name} (unused with {parent} = {self.fixed.get(parent)!r})"
                for name, parent in self.unused.items()
            )
            text += f", so not searched either: {unused}"
        return text


def search_plan(spec: Spec, estimator: Any, frame: pl.DataFrame | None = None) -> SearchPlan:
    """The space ``forecaster tune`` and ``run --tune`` search for ``spec``: the default
    search space of its ``estimator`` (:func:`forecaster.tuning.default_search_space`; its
    lookback choices fit ``frame``) less the parameters the spec's ``[model]`` sets, which
    every trial keeps at the spec's values, and less the conditional parameters their fixed
    parent never uses (``segment_length`` with ``head = "direct"``).

    Raises
    ------
    SpecError
        When ``[model]`` fixes every parameter of the default search space, or when the
        objective needs the validation split and ``[model]`` disables it
        (:func:`forecaster.tuning.arguments.validation_split_problem`, tune's own rule).
    """
    objective = spec.training.objective  # tune's own rule: the model's validation split
    problem = validation_split_problem(estimator, objective, "run without --tune / training.tune")
    if problem is not None:
        raise SpecError(problem)
    space = tuning.default_search_space(estimator, frame)
    fixed = {name: spec.model[name] for name in space if name in spec.model}
    searched = {name: dist for name, dist in space.items() if name not in fixed}
    unused = {
        name: CONDITIONS[name][0]
        for name in searched
        if name in CONDITIONS
        and CONDITIONS[name][0] not in searched
        and not applies(name, {}, estimator)
    }
    for name in unused:
        del searched[name]
    if not searched:
        raise SpecError(
            f"[model] sets every parameter the tuning searches "
            f"({', '.join(f'{k} = {v!r}' for k, v in fixed.items())}), so a tune would "
            f"have nothing to search. Remove from [model] those you want tuned (the spec's "
            f"values are kept, not searched), or run without --tune / training.tune."
        )
    return SearchPlan(searched, fixed, unused)


def tuned_model_dir(spec: Spec, root: Path, when: AsOf) -> Path:
    """Where ``forecaster tune`` saves the refitted best model: ``models/<name>/<label>-tuned``
    (its lock, ``.<label>-tuned.lock`` beside it, also serialises ``run --tune``)."""
    return normal_path(root / "models" / spec.pipeline.name / f"{when.label}-tuned")


def tune_model(
    spec: Spec,
    root: Path,
    frame: pl.DataFrame,
    when: AsOf,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    progress: bool = False,
    track: bool = False,
    log: Callable[[str], None] | None = None,
    study: str | None = None,
    refit: bool = True,
) -> Any:
    """Tune the spec's model on ``frame`` (the study of :func:`study_name`, in the spec's
    ``training.storage``, a SQLite path relative to the project) over :func:`search_plan`
    (the parameters ``[model]`` sets are kept, not searched); returns the
    :class:`forecaster.tuning.TuneResult` with the refitted best model of the study.
    ``log``: called with a line that says what is searched and what the spec fixes.

    ``n_trials`` / ``timeout`` default to the spec's; the study minimises the spec's
    ``training.objective`` (``"val_loss"``, or a probabilistic score of a quantile model:
    :mod:`forecaster.jobs.scores`). ``track``: log the study to MLflow when the spec's
    ``[tracking]`` is enabled, into its experiment (the process's own is unchanged:
    :func:`forecaster.jobs.tracked.study_tracking`). Trials write no checkpoints.
    ``study``: the study's name (default: :func:`tuning_study`; the backtest's tuning passes
    its own, :func:`forecaster.jobs.tuned_backtest.backtest_study_name`). ``refit=False``:
    no best model is refitted (the result's ``best_estimator`` is None).
    """
    if distributed.launched_world_size() > 1:
        raise ForecasterError(
            "Tuning under torchrun is not supported: tune in one process (Optuna runs "
            "trials in parallel with n_workers), then fit the tuned model under torchrun."
        )
    training = spec.training
    # the trials show no bars of their own (the study's bar shows the progress)
    estimator = without_checkpoints(build_estimator(spec, False))
    plan = search_plan(spec, estimator, frame)
    if log is not None:
        log(f"tune     {plan.describe()}")
    logged = study_tracking(spec, root) if track else contextlib.nullcontext(False)
    with logged as tracked:  # the spec's [tracking]: enabled, and its experiment
        return tuning.tune(  # looked up at call time (tests replace it)
            estimator,
            frame,
            n_trials=training.trials if n_trials is None else n_trials,
            timeout=training.timeout if timeout is None else timeout,
            search_space=plan.space,
            storage=storage_url(spec, root),
            study_name=study or tuning_study(spec, root, when, log or (lambda _: None)),
            random_state=spec.model.get("random_state"),
            metric=training.objective,  # "val_loss" or a score (forecaster.jobs.scores)
            track=tracked,
            show_progress=progress,
            refit=refit,
        )


def make_model(
    job: Job,
    estimator: Any,
    tune: bool | None,
    progress: bool,
    checkpoints: Path,
    resume: bool,
) -> tuple[Any, str, Path | None]:
    """The run's model, how it was made, and the checkpoint folder of its fit (None when it
    was reused or tuned). ``tune=True`` (``--tune``) wins over ``training.reuse_model``;
    otherwise a reusable model wins over the spec's ``training.tune``."""
    spec = job.spec
    if spec.training.reuse_model and tune is True:
        job.log("model    --tune asks for a new tuned model: training.reuse_model is not used")
    elif reuses(spec, tune):
        reused = reused_model(job)
        if reused is not None:
            return (*reused, None)
    if tunes(spec, tune):  # the tuned model's own fit names the series it leaves out
        return (*_tuned(job, progress), None)
    t0 = time.perf_counter()
    # the series too short for the spec's model were named by the run's panel, with how it
    # forecasts them (forecaster.jobs.fit_short): the fit's "Dropped" would call them all
    # dropped. Not a tuned model's: its lookback may be another, leaving out other series
    with short_series_named_by_run():
        folder = fit_with_checkpoints(estimator, job.frame, checkpoints, resume, job.log)
    epochs = len(estimator.history_)
    return estimator, f"fitted in {time.perf_counter() - t0:.1f} s ({epochs} epochs)", folder


def reuses(spec: Spec, tune: bool | None) -> bool:
    """Whether a run reuses the latest model where there is one: ``training.reuse_model``,
    unless ``--tune`` (``tune=True``) asks for a new tuned model."""
    return spec.training.reuse_model and tune is not True


def tunes(spec: Spec, tune: bool | None) -> bool:
    """Whether the run tunes: ``--tune`` (``tune``) when given, else ``training.tune``."""
    return bool(spec.training.tune if tune is None else tune)


def model_plan(
    job: Job, estimator: Any, lookback: int, tune: bool | None, checkpoints: Path, resume: bool
) -> str:
    """How :func:`make_model` would make the run's model, in words (for ``run --dry-run``):
    the reuse of ``training.reuse_model``, the tuning of ``--tune`` or ``training.tune`` (its
    trials, time limit, search space, objective and study) or the fit, resumed or not."""
    spec, training = job.spec, job.spec.training
    fit = f"fit {type(estimator).__name__} (lookback {lookback}, horizon {estimator.horizon})"
    if tunes(spec, tune):
        limit = f"at most {training.timeout:g} s" if training.timeout else "no time limit"
        try:
            searched = search_plan(spec, estimator, job.frame).describe()
        except ImportError as exc:
            raise ForecasterError(
                f"{exc}; the run would tune (--tune or training.tune = true). Install it, or "
                "run without tuning."
            ) from None
        study = tuning_study(spec, job.root, job.when, lambda _: None)
        trials = trials_text(training.trials, finished_trials(storage_url(spec, job.root), study))
        plan = (
            f"tune {type(estimator).__name__} ({trials}, {limit}, {searched}; minimising "
            f"{training.objective}) in the study {study} ({_storage_text(spec, job.root)}), "
            "then fit its best parameters on all the data"
        )
        if resume:
            plan += " (--resume: nothing to resume, tuning writes no checkpoints)"
    elif resume and latest_checkpoint(checkpoints) is not None:
        plan = (
            f"{fit} resumed from the checkpoint in {checkpoints} (from the start if it was "
            "written for other data or parameters)"
        )
    elif resume:
        plan = f"{fit} from the start (--resume: no checkpoint in {checkpoints})"
    else:
        plan = fit
    if training.reuse_model and tune is True:
        return f"{plan} (--tune: training.reuse_model is not used)"
    if training.reuse_model:
        return (
            f"reuse the model models/{job.name}/latest.json names if it is intact and trained on "
            f"data up to {job.when.label}, else {plan}"
        )
    return plan


def trials_text(wanted: int, finished: int) -> str:
    """The trials a tuning that wants ``wanted`` finished trials runs in a study that has
    ``finished`` (complete or pruned, as its resume counts them:
    :func:`~forecaster.tuning.storage.finished_trials`), in words."""
    if not finished:
        return f"{wanted} trials"
    if finished >= wanted:
        return f"no trial: the study has {finished} finished trials of the {wanted} wanted"
    more = wanted - finished
    return (
        f"{more} more trial{'s' if more > 1 else ''}: the study has {finished} of the "
        f"{wanted} finished"
    )


def _storage_text(spec: Spec, root: Path) -> str:
    """Where the study is kept, without a database URL's password: the SQLite file, else the
    database's kind."""
    storage = spec.training.storage
    if storage == "default" or sqlite_file(storage) is not None:
        return f"storage {storage_url(spec, root)}"
    return f"a {storage.split('://', 1)[0]} database"


def _tuned(job: Job, progress: bool) -> tuple[Any, str]:
    """Tune under the lock of the study's as-of (shared with ``forecaster tune``)."""
    what = f"a tuning of {job.name!r} as of {job.when.label}"
    with output_lock(tuned_model_dir(job.spec, job.root, job.when), job.wait, what):
        result = tune_model(job.spec, job.root, job.frame, job.when, progress=progress, log=job.log)
    return (
        result.best_estimator,
        f"tuned ({len(result.study.trials)} trials in study {result.study_name}), best "
        f"{result.best_params}",
    )

"""The hyperparameters the backtest of a tuning spec scores: tuned on the data before its
first fold only.

A run that tunes (``training.tune = true``, ``run --tune``) picks its model's parameters by
the validation hold-out of all its data: the last stretch before the as-of, which holds every
backtest fold's targets. Backtesting those parameters would score a choice made on the very
targets it forecasts. So the backtest's clone gets parameters of its own, from a second
tuning on the rows before the first fold (the rows its clone is fitted on:
:func:`forecaster.jobs.intervals.before_folds`), in a study of its own
(:func:`backtest_study_name`), as its intervals are calibrated there
(:mod:`forecaster.jobs.intervals`). The run's model keeps the parameters tuned on all its
data. It costs a second tuning (on less data) the first time; a rerun of the same as-of
resumes both finished studies and runs no trial. ``forecaster backtest`` of a spec with
``training.tune = true`` (without ``--model``) scores parameters tuned the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
from sklearn.base import clone

from forecaster.exceptions import DataValidationError, ForecasterError
from forecaster.jobs.data import AsOf
from forecaster.jobs.fitting import (
    search_plan,
    study_name,
    trials_text,
    tune_model,
    tuned_model_dir,
    tunes,
)
from forecaster.jobs.intervals import before_folds, first_cutoff
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.outputs import Job
from forecaster.jobs.spec import Spec, build_estimator, storage_url
from forecaster.jobs.tracked import tracking_paused
from forecaster.training import distributed
from forecaster.tuning.conditions import trial_params
from forecaster.tuning.storage import finished_trials

__all__ = [
    "BacktestTuning",
    "backtest_plan",
    "backtest_study_name",
    "backtest_tuning",
    "check_launch",
    "tune_for_backtest",
]


class BacktestTuning(NamedTuple):
    """What :func:`tune_for_backtest` chose for the backtest's clone."""

    estimator: Any
    """The spec's estimator (unfitted) with the parameters the backtest's study chose."""
    record: dict[str, Any]
    """``summary.json``'s ``backtest_tuning``: ``study``, ``tuned_until`` (the last time of
    the rows the study tuned on, ISO text: the first fold's cutoff of the longest lookback
    searched, at or before the backtest's own; None for integer steps),
    ``held_out_steps`` (the last rows of each series it never saw: the folds' targets),
    ``trials`` (finished trials of the study) and ``best_params``."""


def backtest_study_name(spec: Spec, when: AsOf) -> str:
    """The Optuna study of the backtest's tuning: :func:`~forecaster.jobs.fitting.study_name`
    (the run's) followed by ``-backtest<folds>``. Its trials are scored on the data before the
    first of ``evaluation.backtest_folds`` folds, another objective than the run's study,
    whose trials they must never join; and the folds, which the spec's hash leaves out, set
    where that data ends, so another count of folds starts a study of its own."""
    return f"{study_name(spec, when)}-backtest{spec.evaluation.backtest_folds}"


def tune_for_backtest(
    spec: Spec,
    root: Path,
    frame: pl.DataFrame,
    when: AsOf,
    *,
    wait: float | None,
    progress: bool,
    log: Callable[[str], None],
    hint: str | None = None,
) -> BacktestTuning:
    """Tune the spec's model on the rows of ``frame`` before the first of the spec's
    ``evaluation.backtest_folds`` folds (see the module docstring), in the study of
    :func:`backtest_study_name`, under the lock of the as-of's tuning
    (``models/<name>/.<label>-tuned.lock``, shared with ``forecaster tune`` and the run's own
    tuning; ``wait``: seconds to wait for it, None: as long as it takes; ``hint``: what the
    error of a lock held beyond it says to do, None: pass ``--wait``). ``log`` takes a line
    that says on what data the parameters were chosen, and which. No model is refitted: the
    backtest fits its clone itself."""
    folds = spec.evaluation.backtest_folds
    estimator = build_estimator(spec, progress)
    history, cutoff = _before_any_first_fold(spec, estimator, frame, folds)
    until = None if cutoff is None else cutoff.isoformat()
    held_out = folds * int(estimator.horizon)
    name = backtest_study_name(spec, when)
    what = f"a tuning of {spec.pipeline.name!r} as of {when.label}"  # the run's or this one
    # the lock of the run's tuning; the trials are no logged models of the run
    locked = output_lock(tuned_model_dir(spec, root, when), wait, what, hint=hint)
    data = f"the rows up to {until}" if until else f"each series' rows but its last {held_out}"
    with locked, tracking_paused():
        try:
            result = tune_model(
                spec,
                root,
                history,
                when,
                progress=progress,
                log=lambda line: log(f"{line} (the backtest's study)"),
                study=name,
                refit=False,
            )
        except DataValidationError as exc:  # too little data: most often, too many folds
            raise DataValidationError(
                f"The backtest's tuning, on {data} (before the first of {folds} folds: "
                f"{_longest(spec, history)}), cannot run: {exc} Or use fewer folds "
                "([evaluation] backtest_folds; forecaster backtest --folds), which leave it "
                "more rows."
            ) from exc
    estimator.set_params(**trial_params(result.best_params, estimator))
    log(
        f"backtest tuned on {data} (before the first of {folds} folds; "
        f"{result.n_trials_finished} trials in study {name}), best {result.best_params}"
    )
    record = {
        "study": name,
        "tuned_until": until,
        "held_out_steps": held_out,
        "trials": result.n_trials_finished,
        "best_params": dict(result.best_params),
    }
    return BacktestTuning(estimator, record)


def _longest(spec: Spec, history: pl.DataFrame) -> str:
    """``the longest series has N rows there`` (of ``history``, by the spec's series id)."""
    if spec.series.id is None or history.is_empty():
        rows = history.height
    else:
        rows = int(history.group_by(spec.series.id).len()["len"].max())  # type: ignore[arg-type]
    return f"the longest series has {rows} row{'' if rows == 1 else 's'} there"


def _before_any_first_fold(
    spec: Spec, estimator: Any, frame: pl.DataFrame, folds: int
) -> tuple[pl.DataFrame, Any]:
    """The rows of ``frame`` before the first fold of the backtest of any lookback the tuning
    may choose, and that fold's cutoff (None for integer steps, where each series leaves out
    its own last ``folds * horizon`` rows whatever the lookback). On a date or datetime column
    the cutoff is counted back from the last time of the series long enough for the folds
    (:func:`~forecaster.jobs.intervals.first_cutoff`): a longer lookback keeps fewer series,
    and may move it earlier. So it is the earlier of the spec's lookback's and the longest
    searched one's, and the tuning never sees a target of the backtest its choice runs."""
    cutoff, strictest = first_cutoff(frame, estimator, folds), estimator
    searched = search_plan(spec, estimator, frame).space.get("lookback")
    if cutoff is not None and searched is not None:
        longest = clone(estimator).set_params(lookback=max(searched.choices))
        earlier = first_cutoff(frame, longest, folds)
        if earlier < cutoff:
            cutoff, strictest = earlier, longest
    return before_folds(frame, strictest, folds), cutoff


def backtest_tuning(job: Job, tune: bool | None, progress: bool) -> BacktestTuning | None:
    """The parameters of the backtest's clone of a run that tunes (``tune``: ``--tune``, else
    ``training.tune``; also when it reused a model tuned earlier, on data that may reach past
    the first fold) and backtests: :func:`tune_for_backtest`; None otherwise (the clone keeps
    the run's model's parameters)."""
    if not tunes(job.spec, tune) or not job.spec.evaluation.backtest_folds:
        return None
    return tune_for_backtest(
        job.spec, job.root, job.frame, job.when, wait=job.wait, progress=progress, log=job.log
    )


def check_launch(spec: Spec, tune: bool | None) -> None:
    """Refuse, before any data is read, a run under torchrun whose backtest would tune
    (:func:`backtest_tuning`): tuning runs in one process only, and every rank refuses alike
    here, where rank 0 alone would stop in the backtest's tuning while the other ranks wait
    in the backtest's training (also when the run reuses a model tuned earlier, which needs
    no tuning of its own).

    Raises
    ------
    ForecasterError
        Under a launch of more than one process, of a spec that tunes and backtests.
    """
    world = distributed.launched_world_size()
    folds = spec.evaluation.backtest_folds
    if world > 1 and folds and tunes(spec, tune):
        raise ForecasterError(
            f"A run under torchrun ({world} processes) cannot backtest a spec that tunes "
            f"(--tune or training.tune = true; backtest_folds = {folds}): its backtest "
            "scores parameters tuned on the data before its first fold, and tuning runs in "
            "one process only. Run it without torchrun, or set [evaluation] backtest_folds = "
            "0 for the torchrun run and backtest in one process with `forecaster backtest "
            "SPEC` (which tunes the same way)."
        )


def backtest_plan(job: Job, tune: bool | None) -> str:
    """What ``run --dry-run`` says of the run's backtest (appended to its plan)."""
    folds = job.spec.evaluation.backtest_folds
    text = f", backtest {folds} folds"
    if folds and tunes(job.spec, tune):
        study = backtest_study_name(job.spec, job.when)
        finished = finished_trials(storage_url(job.spec, job.root), study)
        text += (
            f" (its parameters tuned on the data before the first fold, "
            f"{trials_text(job.spec.training.trials, finished)}, in the study {study})"
        )
    return text

"""Declarative forecasting pipelines: a TOML spec, validated up front, run idempotently.

A spec (``pipelines/*.toml``) names a data source, the series' columns, a few features, the
estimator's parameters, training / tuning, evaluation, tracking and outputs. :func:`load_spec`
validates it with pydantic (unknown keys are errors, and every error names the file, the key,
what was expected and what was received), checks the ``[model]`` parameters with the
estimator's own ``validate_params`` and checks where the outputs go, all before any data is
read. :func:`run_pipeline` loads the data, fits (or reuses, or tunes) the model, backtests it,
forecasts, and writes the outputs of one *as-of* date atomically.

The rules live with the modules that apply them: :mod:`forecaster.jobs.spec` (the spec, the
project and its paths), :mod:`forecaster.jobs.placement` (where outputs may go),
:mod:`forecaster.jobs.data` (as-of labels, an as-of outside the data, series that end before
it), :mod:`forecaster.jobs.outputs` (the output folder, ownership, idempotency and
concurrency, reusing the latest model), :mod:`forecaster.jobs.fitting` (checkpoints, tuning),
:mod:`forecaster.jobs.tracked` (MLflow) and :mod:`forecaster.jobs.lockstep` (the ranks of a
torchrun launch follow rank 0). This module runs them:

Errors
    Only forecaster's types leave :func:`run_pipeline` and the ``forecaster`` commands
    (:func:`translated_errors`): ``SpecError`` (also an argument of the wrong type: ``force``,
    ``dry_run``, ``resume``, ``progress`` strictly bools, ``tune`` a bool or None, ``as_of`` a
    string, date, datetime, numpy.datetime64, polars literal or int, ``wait`` seconds or None,
    ``log`` a callable), ``OwnershipError`` and ``ModelFormatError`` (exit 2 in the CLI),
    ``DataValidationError`` (3), ``ConcurrentRunError`` (4), any other ``ForecasterError``
    (1): an operating-system error (also inside Polars: a full disk) with the system's
    message, an optional dependency not installed with the ``pip install
    "forecaster-rnn[...]"`` that installs it (1), anything else as a bug.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import polars as pl

import forecaster._io as _io
from forecaster._interrupts import uninterrupted
from forecaster.data.duplicates import spec_words
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    OwnershipError,
    SpecError,
    StaleSeriesWarning,
    each_warning_once,
    silenced,
)
from forecaster.jobs.backfill import check_not_later
from forecaster.jobs.calibration_plan import Plan
from forecaster.jobs.data import AsOf, AsOfLike, as_of_label, prepare_data
from forecaster.jobs.entry_errors import translated_errors
from forecaster.jobs.fit_short import run_panel
from forecaster.jobs.fitting import (
    fit_with_checkpoints,
    make_model,
    model_plan,
    reuses,
    search_plan,
    study_name,
    tune_model,
    tuned_model_dir,
)
from forecaster.jobs.hashing import spec_hash, spec_hashes
from forecaster.jobs.intervals import calibrate_for_levels, spec_backtest
from forecaster.jobs.leftovers import own_checkpoint_folder, remove_leftovers
from forecaster.jobs.lockstep import follow_rank_zero, join_ranks, rank_zero_decides
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.outputs import (
    Job,
    PipelineResult,
    adopt_legacy,
    check_outputs_replaceable,
    dropped_series,
    forecast_ids,
    manifest_details,
    same_pipeline,
    skipped_result,
    write_forecast_plot,
)
from forecaster.jobs.placement import (
    check_checkpoints,
    check_output,
    checkpoint_folder,
    load_spec,
)
from forecaster.jobs.pointer import (
    registration_plan,
    remember_model,
    remember_skipped,
    reused_label,
)
from forecaster.jobs.registration import register_run_model, version_tags
from forecaster.jobs.reuse import data_provenance
from forecaster.jobs.run_arguments import check_run_arguments
from forecaster.jobs.schedule import drop_excluded, finish_forecast
from forecaster.jobs.scores import backtest_scores, listed_scores_only, score_lines
from forecaster.jobs.spec import RUN_COLUMNS, Spec, build_estimator, spec_file
from forecaster.jobs.spec_errors import check_backtest_columns
from forecaster.jobs.summaries import (
    job_result,
    made_counts,
    rewrite_run_summary,
    unscored,
    write_summary,
)
from forecaster.jobs.tracked import log_outputs, logged_fits, tracked_run, tracking_paused
from forecaster.jobs.tuned_backtest import backtest_plan, backtest_tuning, check_launch
from forecaster.tracking.records import validation_metrics
from forecaster.tracking.target import process_choice_restored
from forecaster.training import distributed
from forecaster.training.loop import remove_checkpoints

logger = logging.getLogger(__name__)
"""A run's steps (``INFO``), unless ``run_pipeline`` is given a ``log`` of its own."""

__all__ = [
    "AsOf",
    "DataValidationError",
    "ForecasterError",
    "OwnershipError",
    "PipelineResult",
    "Spec",
    "SpecError",
    "as_of_label",
    "backtest_scores",
    "build_estimator",
    "checkpoint_folder",
    "fit_with_checkpoints",
    "forecast_as_of",
    "load_spec",
    "output_lock",
    "prepare_data",
    "run_pipeline",
    "score_lines",
    "spec_hash",
    "study_name",
    "translated_errors",
    "tune_model",
    "tuned_model_dir",
]


def run_pipeline(
    spec_path: str | os.PathLike[str],
    *,
    as_of: AsOfLike | None = None,
    tune: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    wait: float | None = 0.0,
    progress: bool = True,
    log: Callable[[str], None] = logger.info,
) -> PipelineResult:
    """Run a spec end to end for one as-of date (see this module's docstring).

    Parameters
    ----------
    spec_path : path
        A ``pipelines/*.toml`` file.
    as_of : str, date, datetime, int, numpy.datetime64, pl.date(...) or Series, optional
        ISO date, date and time, or integer step: use only data up to it (a polars literal
        such as ``pl.date(...)``, a one-value Series or a numpy integer is read as
        ``predict(cutoff=...)`` reads it; NaT is refused; see
        :data:`~forecaster.jobs.data.AsOfLike`). The outputs are named after the effective
        as-of, the last time of the data it selects (see the module docstring). Default: the
        last time in the data.
    tune : bool, optional
        Tune with Optuna before fitting (default: the spec's ``training.tune``). ``True``
        also wins over ``training.reuse_model`` (a log line says so).
    force : bool
        Replace existing outputs of this as-of date (atomically; only outputs this pipeline
        wrote and nobody changed since; with a ``dir`` template without ``{as_of}``, also the
        outputs of a later as-of).
    dry_run : bool
        Validate the spec and the data, log the plan of this call (what ``tune``, ``force``
        and ``resume`` would do: tune or fit, resume or start, write, replace or find the
        outputs written), write nothing.
    resume : bool
        Continue the fit from the checkpoints of an interrupted run of the same spec and as-of
        date (see :func:`checkpoint_folder`; written every ``checkpoint_every`` epochs, a
        [model] parameter); fit from the start when there are none, or when they were written
        for other data or parameters (a log line says so).
    wait : float or None
        Seconds to wait for another run writing the same outputs (0: stop at once with a
        ``ConcurrentRunError``; None: as long as it takes). After waiting, its outputs are
        found and this run is ``skipped``.
    progress : bool
        Progress of training and tuning: a bar in a terminal or notebook, one log line per
        epoch or trial elsewhere (see :mod:`forecaster.training.progress`).
    log : callable, optional
        Receives one line per step (the data, the model, the backtest's scores, ...).
        Default: ``INFO`` records of the logger ``forecaster.jobs.run``, shown where logging
        is configured (``logging.basicConfig(level=logging.INFO)``; the ``forecaster``
        command shows them on standard error).

    Returns
    -------
    PipelineResult
        What the run did. MLflow's tracking URI and experiment are left as they were, even
        when it raises (the run's store: ``mlflow.set_tracking_uri(result.tracking_uri)``).

    Raises
    ------
    ForecasterError
        Only forecaster's error types (see this module's docstring): a ``SpecError`` for an
        argument of the wrong type, naming it; anything unexpected is wrapped by
        :func:`translated_errors`.
    """
    with translated_errors("the pipeline run"):
        check_run_arguments(
            spec_path=spec_path, as_of=as_of, tune=tune, force=force, dry_run=dry_run,
            resume=resume, wait=wait, progress=progress, log=log,
        )  # fmt: skip
        # the fit, calibration and backtest tell a fact once; a duplicate row's fix names the
        # spec's key (series.id), not id_col= (from Python too, not only under the command)
        with each_warning_once(), spec_words(), process_choice_restored():
            return _run_pipeline(
                spec_path, as_of, tune, force, dry_run, resume, wait, progress, log
            )


def _run_pipeline(
    spec_path: str | os.PathLike[str],
    as_of: AsOfLike | None,
    tune: bool | None,
    force: bool,
    dry_run: bool,
    resume: bool,
    wait: float | None,
    progress: bool,
    log: Callable[[str], None],
) -> PipelineResult:
    started = time.perf_counter()
    file = spec_file(spec_path)
    spec, root = load_spec(file)
    if spec.evaluation.backtest_folds:  # only a run that backtests (fit, predict: any names)
        check_backtest_columns(file, spec.series.id, spec.series.time)
    if tune:  # --tune of a spec that does not tune: nothing to search is refused here too
        search_plan(spec, build_estimator(spec, False))
    check_launch(spec, tune)  # under torchrun: no backtest's tuning, on every rank
    frame, when = prepare_data(spec, root, as_of)
    out_dir = check_output(file, spec, root, when.label)
    check_checkpoints(file, spec, root, out_dir, "output.dir")
    job = Job(spec, file, root, frame, when, out_dir, spec_hashes(spec), log, started, wait)
    estimator = build_estimator(spec, progress)
    if dry_run:
        return _dry_run(job, estimator, tune, force, resume)
    if not force and not os.access(out_dir.parent, os.W_OK) and out_dir.is_dir():
        skipped = _found_read_only(job)  # every rank alike: before the ranks join
        if skipped is not None:
            return skipped
    join_ranks(estimator)  # under torchrun: the other ranks follow what rank 0 decides here
    if not distributed.is_main_process():
        return _other_rank(job, estimator, tune, resume)
    # The lock first: outputs another run is replacing (--force) are read only once it is done.
    with (
        rank_zero_decides() as decision,
        output_lock(
            out_dir, wait, f"the pipeline {job.name!r} as of {when.label} ({out_dir})", log
        ),
    ):
        skipped = None if force else skipped_result(job)
        if skipped is not None:
            remember_skipped(job)  # a run stopped after publishing, before the pointer
            remove_leftovers(job, checkpoint_folder(out_dir, spec, root), locked=True)
            decision.skip(skipped)
            return skipped
        panel = run_panel(job, estimator, reuse=reuses(job.spec, tune))  # bad data: exit 3
        log(f"data     {panel}")
        if not force:
            check_not_later(job)
        check_outputs_replaceable(job, set_aside_lost=True)
        _io.remove_staging(out_dir)  # left by killed runs; no other writer while we hold the lock
        decision.run()
        return _write_outputs(job, estimator, panel, tune, progress, resume)


def _found_read_only(job: Job) -> PipelineResult | None:
    """A rerun whose outputs' folder this user cannot write (a read-only mount): the outputs
    found whole there (None: not found), read under a reader's lock (a writer elsewhere holds
    its lock while it replaces them; the published folder is replaced in one step). Nothing
    is written: neither the pointer nor a dead run's leftovers are seen to, as a rerun that
    takes the lock does."""
    what = f"the pipeline {job.name!r} as of {job.when.label} ({job.out_dir})"
    with output_lock(job.out_dir, job.wait, what, job.log, shared=True):
        return skipped_result(job)


def _other_rank(job: Job, estimator: Any, tune: bool | None, resume: bool) -> PipelineResult:
    """Under torchrun, a rank other than 0 trains in lockstep with rank 0, which takes the
    lock and writes everything: it does what rank 0 decided under the lock (skip with rank
    0's result, stop with its error, or train; see :mod:`forecaster.jobs.lockstep`)."""
    skipped = follow_rank_zero()
    if skipped is not None:
        return skipped
    panel = run_panel(job, estimator, reuse=reuses(job.spec, tune))
    job.log(f"data     {panel}")
    checkpoints = checkpoint_folder(job.out_dir, job.spec, job.root)
    model, _, _ = make_model(job, estimator, tune, False, checkpoints, resume)
    calibrate_for_levels(job.spec, model, job.frame, job.log)
    _evaluate(job.spec, model, job.frame, job.log, model)  # (rank 0 records it; no tuning)
    return PipelineResult(
        name=job.name, as_of=job.when.label, status="completed", output_dir=str(job.out_dir)
    )


def _dry_run(
    job: Job, estimator: Any, tune: bool | None, force: bool, resume: bool
) -> PipelineResult:
    """Log the data and the plan of the run ``--tune``, ``--force`` and ``--resume`` ask for,
    after the checks the run makes before it fits (outputs damaged, or not forecaster's to
    replace: the same errors); write nothing."""
    panel = run_panel(job, estimator, reuse=reuses(job.spec, tune))
    job.log(f"data     {panel}")
    checkpoints = checkpoint_folder(job.out_dir, job.spec, job.root)
    lookback = estimator.lookback_for(panel)
    work = model_plan(job, estimator, lookback, tune, checkpoints, resume)
    work += backtest_plan(job, tune)
    if not force and skipped_result(job) is not None:
        plan = f"nothing: the outputs in {job.out_dir} exist (--force: {work}, replace them)"
    else:
        if not force:
            check_not_later(job)
        check_outputs_replaceable(job)
        replace = force and job.out_dir.exists()
        plan = f"{work}, {'replace (--force)' if replace else 'write'} {job.out_dir}"
    job.log(f"plan     {plan}")
    return _result(job, panel, "dry-run", forecast_ids(job, estimator, lookback))


def _result(
    job: Job,
    panel: Any,
    status: Literal["completed", "dry-run"],
    forecast: pl.DataFrame | None = None,
    **fields: Any,
) -> PipelineResult:
    """What a run of ``job`` on ``panel`` did (``forecast``: the forecast it made, or the ids
    a dry run would forecast; ``fields``: what it wrote). The stale series it lists and
    counts are those it did not drop (:func:`~forecaster.jobs.summaries.job_result`);
    ``series`` and ``rows`` those forecast (as ``predict``'s), ``fitted_*`` the ``panel``'s."""
    dropped, id_col = dropped_series(job, panel, forecast), job.spec.series.id
    fitted = {"fitted_rows": int(panel.offsets[-1]), "fitted_series": panel.n_series}
    rows, series = fitted.values()  # the one series of a frame without an id column
    if forecast is not None and id_col is not None:
        rows, series = made_counts(job.frame, forecast, id_col)
    return job_result(job, status, dropped, rows=rows, series=series, **fitted, **fields)


def _write_outputs(
    job: Job, estimator: Any, panel: Any, tune: bool | None, progress: bool, resume: bool
) -> PipelineResult:
    """Fit, evaluate and forecast into a staging folder; publish it with its manifest."""
    checkpoints = checkpoint_folder(job.out_dir, job.spec, job.root)
    staging = _io.staging_directory(job.out_dir)
    published = _io.Publication(staging, job.out_dir)  # true: an interrupt ends it FINISHED
    left: list[str] = []  # the steps after publishing that have not run (an interrupt's note)
    try:
        with tracked_run(
            job.spec, job.when.label, job.log, kind="run", root=job.root, complete=published
        ) as tracking:
            # the run's model (not the backtest's) logs, as the block ends: calibrated
            with logged_fits(tracking[0]):
                model, how, fitted_in = make_model(
                    job, estimator, tune, progress, checkpoints, resume
                )
                job.log(f"model    {how}")
                plan = calibrate_for_levels(job.spec, model, job.frame, job.log)
            calibration = None if plan is None else plan.record()
            tuned = backtest_tuning(job, tune, progress)
            template = model if tuned is None else tuned.estimator
            metrics, backtest, tested = _evaluate(job.spec, model, job.frame, job.log, template)
            reused = reused_label(job, how)  # the as-of of the run whose model this run reuses
            result = _write_files(
                job, staging, model, backtest, panel, tracking, reused or job.when.label
            )
            # a backfill registers no version, as it leaves latest.json (the pointer's rule)
            registration = registration_plan(job, tracking[0], reused)
            recorded = {"metrics": metrics, "calibration": calibration}  # and the backtest's:
            recorded["backtest_calibration"] = None if tested is None else tested.record()
            recorded["backtest_tuning"] = None if tuned is None else tuned.record
            result = result.model_copy(update={**recorded, "registration": registration})
            summary = result.model_copy(
                update={"seconds": round(time.perf_counter() - job.started, 2)}
            )
            summary = write_summary(staging / "summary.json", summary)  # as read back
            # published before the MLflow run ends FINISHED (interrupted before: KILLED; once
            # published: FINISHED, tagged INTERRUPTED_TAG)
            _io.write_manifest(staging, "run", manifest_details(job, reused))
            with uninterrupted():  # a Ctrl-C once published waits for the logging, the
                # pointer and the checkpoints' removal (a rerun skips published outputs: it
                # would never do them); a second one stops it
                tags = version_tags(job.name, job.when, "fit" if fitted_in is not None else "tune")
                own = own_checkpoint_folder(job.out_dir, checkpoints)  # a dead run's (locked)
                clean = fitted_in if fitted_in is not None else own
                left = _after_publishing(tracking[0], registration, reused, clean)
                _publish(job, staging)
                done = register_run_model(tracking[0], registration, tags, job.log)
                if done != registration:  # not registered after all: the summary says why
                    summary = rewrite_run_summary(
                        job, summary, reused, published, registration=done
                    )
                _ran(left, _REGISTER)
                log_outputs(  # the summary as is
                    tracking[0], metrics, calibration, job.out_dir, recorded["backtest_calibration"]
                )
                _ran(left, _LOG)
                if reused is None:  # a reused model stays the pointer's (data to its as-of)
                    remember_model(job)
                _ran(left, _POINTER)
                if clean is not None:
                    remove_checkpoints(clean)
                _ran(left, _CHECKPOINTS)
    except BaseException as exc:
        _io.discard_staging(staging)
        published.tell(exc, left)  # once published, the note says so (not "run it again")
        raise
    return summary


_REGISTER = "registering the model version"
_LOG = "logging the outputs to the MLflow run"
_POINTER = "pointing models/<name>/latest.json at the model"
_CHECKPOINTS = "removing the fit's checkpoints"


def _after_publishing(
    run_id: str | None, registration: Any, reused: str | None, checkpoints: Path | None
) -> list[str]:
    """The steps of a run after its outputs are published, in their order (those it takes):
    what an interrupt's note names as not done until each has run (:func:`_ran`)."""
    steps = {
        _REGISTER: bool(registration and registration.get("new_version")),
        _LOG: run_id is not None,
        _POINTER: reused is None,
        _CHECKPOINTS: checkpoints is not None and checkpoints.exists(),
    }
    return [step for step, taken in steps.items() if taken]


def _ran(left: list[str], step: str) -> None:
    """``step`` has run: no longer named as left."""
    if step in left:
        left.remove(step)


def _publish(job: Job, staging: Path) -> None:
    """Publish the ``staging`` folder as the run's outputs. The model
    is registered and the outputs are logged into the MLflow run after this, so a run that
    fails adds no version to the registry and logs no "completed" ``summary.json`` of
    outputs that do not exist."""
    _io.publish_directory(
        staging,
        job.out_dir,
        kind="run",
        same=same_pipeline(job.name),
        adopt=adopt_legacy(job.name),
    )


def forecast_as_of(
    model: Any,
    frame: pl.DataFrame,
    levels: list[float] | None = None,
    spec: Spec | None = None,
    when: AsOf | None = None,
) -> pl.DataFrame:
    """``model.predict(frame)`` for a frame from :func:`prepare_data`, whose warning already
    named the series that end before the as-of: predict's own warning about them (the same
    series, measured against the frame's last time) is not repeated. ``levels``: also the
    prediction intervals of these levels (``predict(frame, level=levels)``). With the
    ``spec`` and ``when`` of :func:`prepare_data` (:mod:`forecaster.jobs.schedule`): the
    series ``when.excluded`` are left out, the future covariates are ``when.future``, and the
    forecast gets its ``origin`` and ``stale_steps`` columns and dates past the holidays."""
    if spec is not None and when is not None:
        frame = drop_excluded(frame, spec, when.excluded)
    kwargs: dict[str, Any] = {"level": list(levels)} if levels else {}
    if when is not None and when.future is not None:
        kwargs["future"] = when.future
    with silenced(StaleSeriesWarning):
        forecast = model.predict(frame, **kwargs)
    return forecast if spec is None else finish_forecast(forecast, frame, spec)


def _write_files(
    job: Job,
    staging: Path,
    model: Any,
    backtest: Any,
    panel: Any,
    tracking: tuple[str | None, str | None],
    fitted: str,
) -> PipelineResult:
    """The forecasts, ``backtest`` tables (of its result, or None), plot and model, written
    into ``staging``; the model's version names the as-of ``fitted`` of the run that fitted
    it (an earlier one's when reused). ``unscored_series``: the series of the data no fold
    of the backtest forecast (None without a backtest)."""
    out_dir, (run_id, tracking_uri) = job.out_dir, tracking
    version = f"{job.name}-{fitted}-{job.digest}"
    stamps = (pl.lit(version), pl.lit(run_id, pl.String))  # no column of the data's names
    forecast = forecast_as_of(
        model, job.frame, job.spec.output.levels, job.spec, job.when
    ).with_columns(**dict(zip(RUN_COLUMNS, stamps, strict=True)))
    _io.write_atomic(staging / "forecasts.parquet", forecast.write_parquet)
    if backtest is not None:
        _io.write_atomic(staging / "backtest.parquet", backtest.metrics.write_parquet)
        _io.write_atomic(staging / "backtest_by_step.parquet", backtest.by_step.write_parquet)
    plot = write_forecast_plot(
        job.frame,
        forecast,
        model,
        staging / "forecast.png",
        job.spec.output.plot_series,
        job.spec.output.levels,
    )
    model.save(staging / "model", provenance=data_provenance(job.spec))
    return _result(
        job,
        panel,
        "completed",
        forecast,
        forecasts=str(out_dir / "forecasts.parquet"),
        backtest=str(out_dir / "backtest.parquet") if backtest is not None else None,
        unscored_series=None if backtest is None else unscored(job.frame, backtest.folds, job.spec),
        plot=str(out_dir / "forecast.png") if plot else None,
        model_dir=str(out_dir / "model"),
        run_id=run_id,
        tracking_uri=tracking_uri,
        model_version=version,
        resolved_params=model.resolved_params(),
    )


def _evaluate(
    spec: Spec,
    model: Any,
    frame: pl.DataFrame,
    log: Callable[[str], None],
    template: Any,
) -> tuple[dict[str, float], Any, Plan | None]:
    """The run's scores (validation, backtest), its backtest's result (None: no folds) and
    the plan its clone's intervals were calibrated by (None: none was). The backtest fits an
    unfitted clone of ``template``: ``model``, or the one of a tuning run's own parameters
    (:func:`~forecaster.jobs.tuned_backtest.backtest_tuning`)."""
    folds = spec.evaluation.backtest_folds
    metrics: dict[str, float] = {}
    best = [r["val_loss"] for r in model.history_ if r["val_loss"] is not None]
    if best:
        metrics["val_loss"] = float(min(best))
    metrics.update(validation_metrics(model))  # beside its baselines, on the same windows
    if folds == 0:
        return metrics, None, None
    # An unfitted clone, fitted once on the data before the first origin: the scores are out of
    # sample (the fitted model has seen every backtest target).
    with tracking_paused():  # the backtest's own fit is not a logged model of the run
        result, plan = spec_backtest(spec, template, frame, log=log)  # levels: the intervals
    metrics.update(backtest_scores(spec, result))
    result = listed_scores_only(spec, result)  # its tables: the listed pinball / scrps only
    log("backtest " + ", ".join(f"{k} {v}" for k, v in score_lines(metrics)))
    return metrics, result, plan

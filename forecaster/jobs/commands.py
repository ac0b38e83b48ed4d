"""The commands of the ``forecaster`` command line (see :mod:`forecaster.jobs.cli`)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

import forecaster._io as _io
import forecaster.datasets as datasets
import forecaster.jobs.run as run_module
from forecaster.data.checks import dropped_series_to
from forecaster.data.frames import format_list
from forecaster.estimators.base import RESUME_FREE_PARAMS
from forecaster.exceptions import (
    ArgumentError,
    ForecasterError,
    OwnershipError,
)
from forecaster.jobs.data import prepare_data
from forecaster.jobs.fitting import (
    fit_with_checkpoints,
    search_plan,
    tune_model,
    tuned_model_dir,
)
from forecaster.jobs.intervals import (
    before_folds,
    calibrate_for_levels,
    spec_backtest,
    spec_panel,
    unfit_levels,
)
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.parquet_files import (
    PARQUET_KEY,
    check_not_later_file,
    check_parquet_destination,
    write_parquet,
)
from forecaster.jobs.parser import EXIT_BUSY, EXIT_DATA, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from forecaster.jobs.placement import checkpoint_folder, load_spec, out_problem, path_problem
from forecaster.jobs.reuse import (
    check_fitted_before,
    check_model_matches_spec,
    data_provenance,
    features_differ,
)
from forecaster.jobs.run import backtest_scores, forecast_as_of, score_lines
from forecaster.jobs.scores import check_given_levels, is_quantile_model, listed_scores_only
from forecaster.jobs.sources import as_fitted_ids, text_ids
from forecaster.jobs.spec import build_estimator, output_dir, spec_file, without_checkpoints
from forecaster.jobs.spec_errors import check_backtest_columns
from forecaster.jobs.summaries import (
    check_summary_file,
    command_result,
    summary_file,
    write_with_summary,
)
from forecaster.jobs.tracked import (
    logged_fits,
    study_tracking,
    tracked_run,
    tracking_deferred,
    tracking_paused,
)
from forecaster.jobs.tuned_backtest import tune_for_backtest
from forecaster.persistence import FORMAT, saved_provenance
from forecaster.persistence import load as load_model
from forecaster.training import distributed
from forecaster.training.loop import remove_checkpoints
from forecaster.tuning.common import import_optuna
from forecaster.tuning.conditions import dependents

__all__ = [
    "EXIT_BUSY",
    "EXIT_DATA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "PARQUET_KEY",
    "ArgumentError",
    "Log",
    "backtest_command",
    "datasets_command",
    "fit_command",
    "predict_command",
    "run_command",
    "tune_command",
]

logger = logging.getLogger(__name__)
"""The commands' steps (``INFO``): the ``forecaster`` command shows them on standard error;
their results (paths, summaries, tables) go to standard output through the ``Log``."""

Log = Callable[..., None]
"""Where a command writes its results: ``log(message, level="info", **fields)``."""


def _spec_and_frame(
    args: argparse.Namespace, forecast: bool = False
) -> tuple[Any, Path, pl.DataFrame, Any]:
    """The spec, project root, data and as-of of a command (``forecast``: also the future
    covariates over the forecast's horizon, read from the source)."""
    spec, root = load_spec(args.spec)
    frame, when = prepare_data(spec, root, args.as_of, forecasts=forecast)
    return spec, root, frame, when


def _out_path(
    value: str | None, default: Path, spec: Any, root: Path, *, folder: bool = False
) -> Path:
    """``--out`` (absolute, normalised as written), or ``default``; an argument naming no
    path forecaster can write, a path the spec's ``source.path`` would read as data, or one
    inside the folders ``output.dir`` names for a run's outputs
    (:func:`forecaster.jobs.placement.out_problem`) is refused (``ArgumentError``) before
    any work. ``folder``: ``--out`` names a model folder, not a file."""

    path = Path(os.path.normpath(Path(value if value is not None else default).absolute()))
    problem = path_problem(path) or out_problem(spec, root, path, folder=folder)
    if not problem and not folder:
        problem = _parquet_name_problem(path, value)
    if problem:
        what = "a model folder" if folder else "a file"
        given = f"argument --out ({value!r})" if value is not None else "the default output"
        raise ArgumentError(
            f"{given} resolves to {path}: {problem}. Give --out {what} of its own, apart from "
            "the data and the run outputs of the spec."
        )
    return path


_PARQUET = frozenset({".parquet", ".parq", ".pq"})
"""Suffixes of Parquet files (any case): replaced by ``.parquet`` in the name suggested."""

_OTHER_FORMATS = frozenset({".csv", ".tsv", ".txt", ".json", ".xlsx", ".xls", ".feather", ".arrow"})
"""File suffixes of other formats than the Parquet the commands write: named in the refusal."""


def _parquet_name_problem(path: Path, given: str | None = None) -> str | None:
    """Why ``--out`` ``path`` (``given`` as written) is no name for the Parquet file of
    ``predict`` or ``backtest`` (None: it is one): its name must end with ``.parquet``,
    lowercase, since its summary is named after it without ``.parquet``
    (:func:`~forecaster.jobs.summaries.summary_file`): ``f``, ``f.pq`` or ``f.PARQUET`` would
    share the summary of ``f.parquet``, ``f.pq.parquet`` or ``f.PARQUET.parquet``, and one
    file's record would replace the other's. A folder is named as one (a file goes inside
    it), as is a ``given`` path ending with a separator or ``.`` (``y.parquet/`` would be
    written as the file ``y.parquet``), and a name of only dots before ``.parquet`` (a hidden file
    beside a hidden ``.summary.json``)."""
    if path.name.endswith(".parquet") and not path.name[: -len(".parquet")].strip("."):
        return (  # .parquet, ..parquet: a hidden file beside a hidden summary
            "its name has nothing but dots before '.parquet' (a hidden file, its summary the "
            f"hidden {summary_file(path).name}): name the file, such as "
            f"{path.parent / 'forecasts.parquet'}"
        )
    if given is not None and (given.endswith(("/", os.sep)) or os.path.basename(given) == "."):
        file = path if path.name.endswith(".parquet") else path / "forecasts.parquet"
        return (
            "it ends with a path separator (or '.'), which names a folder, not a file: name the "
            f"file without it, such as {file}"
        )
    if path.name.endswith(".parquet"):
        return None
    if path.is_dir():
        return f"it is a folder: name a file inside it, such as {path / 'forecasts.parquet'}"
    suffix = path.suffix.lower()
    stem = path.stem if suffix in _PARQUET | _OTHER_FORMATS else path.name
    other = f", not {path.suffix}" if suffix in _OTHER_FORMATS else ""
    return (
        f"the command writes Parquet{other}, and names the summary beside the file after it "
        f"without '.parquet', so the name must end with '.parquet' (this one's summary, "
        f"{summary_file(path).name}, would be that of {path.name}.parquet too): name the file "
        f"{stem}.parquet"
    )


def _is_saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds the ``config.json`` of a saved forecaster model (read
    bounded): a model saved before models had a manifest, which ``save`` decides about."""

    try:
        data = _io.read_file_bounded(folder / "config.json", 8 * 2**20, what="model config")
        config = _io.load_json_bounded(data, source=str(folder / "config.json"))
    except (OSError, ForecasterError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def _model_destination(
    path: Path,
    replace: Any,
    provenance: dict[str, Any],
    fix: str,
    searched: frozenset[str] = frozenset(),
) -> Path:
    """``path`` (absolute) after checking, before any training, that a model may be saved
    there: not inside a folder forecaster wrote, and free, empty or a saved model. A saved
    model is replaced only when it has the parameters of ``replace`` (the estimator about to
    be fitted: the same spec's model, refitted), but those a tuning ``searched``, and was
    fitted on data made as ``provenance`` says (when it recorded how); another pipeline's
    model, another version of the spec's, or a copy kept aside of another, is refused.
    ``fix``: what the refusal tells the user to do (``--out``, or the default folder)."""
    path = Path(os.path.normpath(path.absolute()))
    if (path / "config.json").is_file():
        _check_same_model(path, replace, provenance, fix, searched)
    owner = _io.owning_folder(path)
    if owner is not None:
        raise OwnershipError(
            f"Refusing to save the model into {path}: it is inside {owner[0]}, a {owner[1]} "
            "folder forecaster wrote (its manifest would no longer list what it holds). "
            "Choose a folder outside it."
        )
    # a model saved before models had a manifest: the save itself decides; anything else
    # that is not free is refused now, not after training
    _io.check_replaceable(path, "model", purpose="save the model into", adopt=_is_saved_model)
    return path


def _check_same_model(
    path: Path, estimator: Any, provenance: dict[str, Any], fix: str, searched: frozenset[str]
) -> None:
    """Refuse (``OwnershipError``) to replace the model saved at ``path`` unless it was fitted
    with ``estimator``'s parameters (run settings such as ``device`` aside, those a tuning
    ``searched`` and their conditional parameters) on data made as ``provenance`` says (when
    the saved model recorded how: :func:`saved_provenance`)."""
    try:
        saved = load_model(path).get_params(deep=False)
    except ForecasterError:
        return  # not a model this version reads: check_replaceable decides
    wanted = estimator.get_params(deep=False)
    # a searched parent may reset its conditional parameters to their default (trial_params)
    free = {*RESUME_FREE_PARAMS, *searched, *dependents(searched)}
    differ = sorted(k for k in wanted if k not in free and saved.get(k, ...) != wanted[k])
    made = (saved_provenance(path) or {}).get("features")
    features = provenance["features"]
    if made is not None and features_differ(made, features):
        differ.append("[features]")
        saved["[features]"], wanted["[features]"] = made, features
    if differ:
        shown = ", ".join(f"{k}={saved.get(k)!r} (this fit: {wanted[k]!r})" for k in differ[:4])
        raise OwnershipError(
            f"Refusing to replace the model saved in {path}: it was fitted with other "
            f"parameters ({shown}{', ...' if len(differ) > 4 else ''}), so it is another "
            "model (another pipeline's, another version of the spec's, or a copy kept aside). "
            f"{fix}."
        )


def run_command(args: argparse.Namespace, log: Log) -> int:
    result = run_module.run_pipeline(  # looked up at call time (tests replace it)
        args.spec,
        as_of=args.as_of,
        tune=True if args.tune else None,
        force=args.force,
        dry_run=args.dry_run,
        resume=args.resume,
        wait=args.wait,
        progress=args.progress,
        log=logger.info,
    )
    fitted = result.fitted_series
    counts = f"{result.series} series" + (
        f" forecast ({fitted} fitted)" if fitted is not None and fitted != result.series else ""
    )
    if result.status == "dry-run":
        log(
            f"dry run  {result.name} as of {result.as_of}: {counts}, "
            f"{result.rows:,} rows; nothing written",
            summary=result.model_dump(),
        )
    if result.status in ("completed", "skipped"):
        rows = [("metric", "value"), *score_lines(result.metrics)]
        width = max(len(r[0]) for r in rows)
        table = "\n".join(f"  {a:<{width}}  {b}" for a, b in rows)
        log(
            f"summary  {result.name} as of {result.as_of}: {counts}, "
            f"{result.rows:,} rows, {result.seconds:.1f} s\n{table}",
            summary=result.model_dump(),
        )
        log(f"forecast {result.forecasts}")
        if result.backtest:
            log(f"backtest {result.backtest}")
        if result.plot:
            log(f"plot     {result.plot}")
        log(f"model    {result.model_dir}")
        if result.run_id:
            log(
                f"mlflow   run {result.run_id} at {result.tracking_uri} "
                "(browse: mlflow ui --backend-store-uri "
                f"{result.tracking_uri})"
            )
    return EXIT_OK


def fit_command(args: argparse.Namespace, log: Log) -> int:

    spec, root, frame, when = _spec_and_frame(args)
    model = build_estimator(spec, args.progress)
    out = _out_path(
        args.out, root / "models" / spec.pipeline.name / when.label, spec, root, folder=True
    )
    checkpoints = checkpoint_folder(out, spec, root)
    started = time.perf_counter()
    if not distributed.is_main_process():  # torchrun: train in lockstep with rank 0, which writes
        fit_with_checkpoints(model, frame, checkpoints, args.resume, logger.info)
        calibrate_for_levels(spec, model, frame, logger.info)
        return EXIT_OK
    if checkpoints.is_relative_to(out) or out.is_relative_to(checkpoints):
        given = "argument --out" if args.out is not None else "the default output"
        raise ArgumentError(
            f"{given} ({out}): the checkpoint folder {checkpoints} (model.checkpoint_dir) "
            f"{'is inside' if checkpoints.is_relative_to(out) else 'holds'} it. Choose a model "
            "folder apart from the checkpoints."
        )
    provenance = data_provenance(spec)
    fix = (
        "Choose a new folder (--out), or delete this one first"
        if args.out is not None
        else "It is the default folder of fit: choose another with --out, or move this one "
        "away first"
    )
    _model_destination(out, model, provenance, fix)
    with output_lock(out, args.wait, f"a fit that saves to {out}"):
        with tracked_run(spec, when.label, logger.info, kind="fit", root=root) as (run_id, _):
            with logged_fits(run_id):
                fit_with_checkpoints(model, frame, checkpoints, args.resume, logger.info)
                # [output] levels: intervals at predict (in the block: the logged model has them)
                calibrate_for_levels(spec, model, frame, logger.info)
            # saved before the MLflow run ends FINISHED (a save that fails: FAILED, or KILLED)
            model.save(out, provenance=provenance)
        remove_checkpoints(checkpoints)
    if run_id:
        log(f"mlflow run {run_id}")
    log(
        f"fitted {type(model).__name__} in {time.perf_counter() - started:.1f} s "
        f"({len(model.history_)} epochs); saved to {out}"
    )
    return EXIT_OK


def _default_output(spec: Any, root: Path, label: str, what: str) -> Path:
    """``<output.dir>.<what>.parquet``: beside the run's output folder, never inside it."""

    folder = output_dir(spec, root, label)
    return folder.parent / f"{folder.name}.{what}.parquet"


def _keep_both(args: argparse.Namespace, spec: Any) -> str:
    """How a backfill of ``predict`` / ``backtest`` keeps the file of a later as-of: the
    advice of :func:`~forecaster.jobs.parquet_files.check_not_later_file`'s refusal."""
    if args.out is not None:
        return "give --out a file of its own to keep both"
    return (
        f"put {{as_of}} in output.dir ({spec.output.dir!r}: the default file is named after "
        "it) or give --out a file of its own to keep both"
    )


def _given_out(args: argparse.Namespace, spec: Any, root: Path, kind: str) -> Path | None:
    """The ``--out`` file of ``predict`` / ``backtest`` when one is given, checked (cheap: no
    data is read) before the model and the data; None: the default, named after the as-of."""
    if args.out is None:
        return None
    return _destination(_out_path(args.out, Path(args.out), spec, root), kind, spec, root)


def _destination(out: Path, kind: str, spec: Any, root: Path) -> Path:
    """``out``, the Parquet file of ``predict`` (``kind`` ``"forecast"``) or ``backtest``,
    after checking that it and its summary beside it may be written there."""
    check_parquet_destination(out, kind, spec)
    check_summary_file(summary_file(out), "predict" if kind == "forecast" else kind, spec, root)
    return out


def predict_command(args: argparse.Namespace, log: Log) -> int:
    started = time.perf_counter()
    spec, root = load_spec(args.spec)
    levels = _levels(args.level, spec)
    out = _given_out(args, spec, root, "forecast")
    model = load_model(args.model)  # a missing or invalid --model: refused before any data
    check_model_matches_spec(model, spec, args.model)
    _check_model_levels(model, levels, args.model)
    frame, when = _as_fitted(model, *prepare_data(spec, root, args.as_of), spec, args.model)
    if out is None:
        out = _out_path(None, _default_output(spec, root, when.label, "forecasts"), spec, root)
        out = _destination(out, "forecast", spec, root)
    check_not_later_file(out, "forecast", when, args.force, _keep_both(args, spec))
    check_fitted_before(model, frame, args.model, f"the as-of {when.label}")
    forecast = forecast_as_of(model, frame, levels, spec, when)
    done = command_result(
        "predict", spec, spec_file(args.spec), root, frame, when, out, forecast, started,
        forecasts=str(out), model_dir=str(Path(args.model).absolute()),
    )  # fmt: skip
    write = functools.partial(write_parquet, forecast, out, "forecast", spec, when, args.model)
    done = write_with_summary(write, done, spec, root, out)
    log(
        f"wrote {forecast.height} forecast rows to {out} (summary: {summary_file(out)})",
        summary=done.model_dump(),
    )
    if not args.quiet and not args.json_logs:
        print(forecast.head(20))
    return EXIT_OK


def _as_fitted(
    model: Any, frame: pl.DataFrame, when: Any, spec: Any, folder: str
) -> tuple[Any, Any]:
    """The data of :func:`prepare_data` (``frame`` and ``when``, whose future covariates
    hold ids too) with the CSV ids read as the saved ``model``'s (:func:`as_fitted_ids`);
    refused (``ArgumentError`` naming ``--model``) when the model's ids are integers and the
    source's are text now (:func:`text_ids`): no cast of the data makes them readable."""
    fitted = model.schema_.get(spec.series.id or "", "")  # "": the spec names no id column
    text = text_ids(frame, spec, fitted)
    if text:
        raise ArgumentError(
            f"argument --model: the model in {folder} was fitted on integer ids ({fitted}), "
            f"but the source now holds ids that are not integers, e.g. {text}, so every id "
            f"of column {spec.series.id!r} is read as text. Fit a model on this data "
            "(forecaster fit SPEC) and pass it, or leave out --model."
        )
    future = as_fitted_ids(when.future, spec, fitted)
    return as_fitted_ids(frame, spec, fitted), dataclasses.replace(when, future=future)


def _levels(given: list[float] | None, spec: Any) -> list[float] | None:
    """``--level`` values (distinct; sorted), else the spec's ``[output] levels``."""
    if not given:
        return spec.output.levels
    if len(set(given)) != len(given):
        raise ArgumentError(f"argument --level: each level once, got {[f'{v:g}' for v in given]}.")
    return sorted(given)


def _check_model_levels(model: Any, levels: list[float] | None, folder: str) -> None:
    """Refuse (``ArgumentError`` naming ``--level``) levels the saved ``model`` in ``folder``
    cannot forecast as it is (:func:`forecaster.jobs.intervals.unfit_levels`)."""
    problem = unfit_levels(model, levels)
    if problem is not None:
        raise ArgumentError(f"argument --level: the model in {folder} {problem}.")


def backtest_command(args: argparse.Namespace, log: Log) -> int:
    started = time.perf_counter()
    given, root = load_spec(args.spec)  # its hash names the spec in the summary
    folds = args.folds if args.folds is not None else max(given.evaluation.backtest_folds, 1)
    levels = _levels(args.level, given)
    if args.level:  # the spec's own levels were checked against its metrics at load
        check_given_levels(given, args.level)
    spec = with_levels(given, levels, folds)
    check_backtest_columns(spec_file(args.spec), spec.series.id, spec.series.time)
    out = _given_out(args, spec, root, "backtest")
    tuned = None  # a spec that tunes, without --model: the backtest's own tuning
    if args.model:  # a missing or invalid --model: refused before any data is read
        model = load_model(args.model)
        check_model_matches_spec(model, spec, args.model)
        _check_model_levels(model, levels, args.model)
    frame, when = prepare_data(spec, root, args.as_of, forecasts=False)
    if out is None:
        out = _out_path(None, _default_output(spec, root, when.label, "backtest"), spec, root)
        out = _destination(out, "backtest", spec, root)
    check_not_later_file(out, "backtest", when, args.force, _keep_both(args, spec))
    if args.model:
        frame, when = _as_fitted(model, frame, when, spec, args.model)
        first = before_folds(frame, model, folds)
        check_fitted_before(model, first, args.model, f"the origin of the first of {folds} folds")
    else:
        model = without_checkpoints(build_estimator(spec, args.progress))
        # columns the backtest refuses: before its first fit. Its warning about the series
        # too short for a fit of all the data is not the backtest's, which never fits them
        # all: the backtest names those too short for its folds (unscored_series)
        with dropped_series_to(lambda groups: None):
            spec_panel(spec, model, frame)
        if levels and is_quantile_model(spec):  # a spec's own levels were checked at load
            problem = unfit_levels(model, levels)
            if problem is not None:
                raise ArgumentError(f"argument --level: the spec's model {problem}.")
        if spec.training.tune:  # the parameters a run's backtest scores: tuned before the folds
            tuned = tune_for_backtest(
                spec, root, frame, when, wait=0, progress=args.progress, log=logger.info,
                hint="Wait for it to finish, then run the backtest again (it does not queue).",
            )  # fmt: skip
            model = without_checkpoints(tuned.estimator)
    with tracking_paused():  # the backtest's fits are not logged models
        result, plan = spec_backtest(spec, model, frame, fitted=bool(args.model), log=logger.info)
    scores = backtest_scores(spec, result)
    result = listed_scores_only(spec, result)  # its tables: the listed pinball / scrps only
    model_dir = str(Path(args.model).absolute()) if args.model else None
    done = command_result(
        "backtest", given, spec_file(args.spec), root, frame, when, out, result.folds, started,
        backtest=str(out), model_dir=model_dir, metrics=scores,
        backtest_calibration=None if plan is None else plan.record(),
        backtest_tuning=None if tuned is None else tuned.record,
    )  # fmt: skip
    write = functools.partial(
        write_parquet, result.metrics, out, "backtest", spec, when, args.model
    )
    done = write_with_summary(write, done, spec, root, out)
    unscored = done.unscored_series or []
    told = f"; no fold scored {len(unscored)} series (unscored_series): {format_list(unscored)}"
    log(  # the record's summary is the summary file's, as predict's and run's are
        f"backtest over {folds} folds written to {out} (summary: {summary_file(out)})"
        + (told if unscored else ""),
        summary=done.model_dump(),
    )
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_cols=-1):
        log(str(result.aggregate))
    return EXIT_OK


def with_levels(spec: Any, levels: list[float] | None, folds: int) -> Any:
    """``spec`` with the ``levels`` and ``folds`` of the command line (``--level``,
    ``--folds``): what :func:`forecaster.jobs.intervals.spec_backtest` reads."""
    return spec.model_copy(
        update={
            "output": spec.output.model_copy(update={"levels": levels}),
            "evaluation": spec.evaluation.model_copy(update={"backtest_folds": folds}),
        }
    )


def tune_command(args: argparse.Namespace, log: Log) -> int:
    """Tune the spec's model with Optuna and save the study's best, refitted. Without Optuna
    the missing extra is all it says: checked before the data's warnings and tracking's."""
    import_optuna()
    spec, root = load_spec(args.spec)
    estimator = build_estimator(spec, False)
    searched = frozenset(search_plan(spec, estimator).space)  # nothing: exit 2 before the data
    frame, when = prepare_data(spec, root, args.as_of, forecasts=False)
    out = _model_destination(
        tuned_model_dir(spec, root, when),
        estimator,
        data_provenance(spec),
        "It is the folder tune saves to: move it away first, or put the spec back as it was",
        searched,
    )
    what = f"a tuning of {spec.pipeline.name!r} as of {when.label} (saving {out})"
    with output_lock(out, args.wait, what):
        # the study logs into the spec's experiment; its best model, logged calibrated as
        # the deferred block ends, too (hence a scope around it as well as tune_model's);
        # the study's run ends then: FAILED, or KILLED, when what follows the study fails
        with study_tracking(spec, root) as tracked, tracking_deferred():
            result = tune_model(
                spec,
                root,
                frame,
                when,
                n_trials=args.trials,
                timeout=args.timeout,
                progress=args.progress,
                track=tracked,
                log=logger.info,  # a step, as the run's own tune line
            )
            log(
                f"study {result.study_name}: best value {result.best_value:.4g} with "
                f"{result.best_params}"
            )
            if result.best_estimator is not None:  # [output] levels: intervals at predict
                calibrate_for_levels(spec, result.best_estimator, frame, logger.info)
                # saved (under the lock) before the study's run ends FINISHED
                result.best_estimator.save(out, provenance=data_provenance(spec))
        if result.best_estimator is not None:
            log(f"best model refitted and saved to {out}")
    return EXIT_OK


def datasets_command(args: argparse.Namespace, log: Log) -> int:
    """List the bundled data sets, or show one (its catalogue row, its data card's path): a table or
    lines of text, one JSON record each with ``--json-logs``, nothing with ``--quiet``."""
    catalogue = datasets.list_datasets()
    if args.name is None:
        if args.json_logs:  # one record per data set, as a scheduler reads them
            for row in catalogue.iter_rows(named=True):
                log(f"dataset {row['name']}", **row)
            return EXIT_OK
        with pl.Config(fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
            log(str(catalogue))
        return EXIT_OK
    chosen = catalogue.filter(pl.col("name") == args.name)
    if chosen.height == 0:
        names = catalogue["name"].to_list()
        log(f"error: no bundled data set {args.name!r}; choose one of {names}", "error")
        return EXIT_USAGE
    row = chosen.row(0, named=True)
    card = datasets.datasets_dir() / args.name / "README.md"
    if card.is_file():
        row["data card"] = str(card)
    if args.json_logs:
        log(f"dataset {args.name}", **{k.replace(" ", "_"): v for k, v in row.items()})
        return EXIT_OK
    log("\n".join(f"{key:12} {value}" for key, value in row.items()))
    return EXIT_OK

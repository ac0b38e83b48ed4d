"""The ``forecaster`` command line (also ``python -m forecaster``).

Commands
--------
``forecaster run SPEC [--as-of DATE] [--tune] [--force] [--dry-run] [--resume]``
    The scheduled job: load, validate, fit (or reuse / tune), backtest, forecast and write the
    outputs of one as-of date atomically (see :mod:`forecaster.pipelines`). Idempotent.
``forecaster fit SPEC [--as-of DATE] [--out DIR] [--resume]``
    Fit the spec's model and save it (config JSON + safetensors).

``run`` and ``fit`` checkpoint the training every ``checkpoint_every`` epochs (a [model]
parameter, default 1) into the hidden folder ``.<as-of>.checkpoints`` next to their output
(see :func:`forecaster.pipelines.checkpoint_folder`), removed when the command succeeds. With
``--resume`` an interrupted fit continues from there (a fit with no checkpoint yet starts from
the beginning). Under ``torchrun --nproc_per_node=N -m forecaster fit SPEC`` the ranks train
together (:mod:`forecaster.distributed`) and only rank 0 logs and writes.
``forecaster predict SPEC --model DIR [--as-of DATE] [--out FILE]``
    Forecast with a saved model; write Parquet atomically.
``forecaster backtest SPEC [--model DIR] [--folds N] [--out FILE]``
    Rolling-origin backtest metrics.
``forecaster tune SPEC [--trials N] [--timeout S]``
    Optuna study over the spec's model (resumable).
``forecaster datasets [NAME]``
    List the bundled data sets, or describe one.

Exit codes: 0 success (also when ``run`` finds its outputs already written), 2 bad spec or
arguments (including a ``--model`` folder that holds no readable model), 3 data validation
failure, 1 any other failure. A failure prints one line on stderr
(the full traceback with ``--verbose``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

import forecaster
from forecaster.exceptions import DataValidationError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DATA = 0, 1, 2, 3


class _Logger:
    """One line per step: plain text, JSON lines (``--json-logs``) or nothing (``--quiet``)."""

    def __init__(self, quiet: bool, json_logs: bool) -> None:
        self.quiet, self.json_logs = quiet, json_logs

    def __call__(self, message: str, level: str = "info", **fields: Any) -> None:
        if self.json_logs:
            record = {
                "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "level": level,
                "msg": message,
                **fields,
            }
            print(json.dumps(record, default=str), flush=True)
        elif not self.quiet or level == "error":
            print(message, file=sys.stderr if level == "error" else sys.stdout, flush=True)


def _run(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster.pipelines import run_pipeline

    result = run_pipeline(
        args.spec,
        as_of=args.as_of,
        tune=True if args.tune else None,
        force=args.force,
        dry_run=args.dry_run,
        resume=args.resume,
        progress=args.progress,
        log=log,
    )
    if result.status in ("completed", "skipped"):
        rows = [("metric", "value")] + [(k, f"{v:.4g}") for k, v in result.metrics.items()]
        width = max(len(r[0]) for r in rows)
        table = "\n".join(f"  {a:<{width}}  {b}" for a, b in rows)
        log(
            f"summary  {result.name} as of {result.as_of}: {result.series} series, "
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


def _spec_and_frame(args: argparse.Namespace) -> tuple[Any, Any, pl.DataFrame, str]:
    from forecaster import pipelines

    spec, root = pipelines.load_spec(args.spec)
    frame, label = pipelines.prepare_data(spec, root, args.as_of)
    return spec, root, frame, label


def _fit(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster import distributed, pipelines

    spec, root, frame, label = _spec_and_frame(args)
    model = pipelines.build_estimator(spec, args.progress)
    out = Path(args.out or root / "models" / spec.pipeline.name / label)
    checkpoints = pipelines.checkpoint_folder(out)
    started = time.perf_counter()
    if not distributed.is_main_process():  # torchrun: train in lockstep with rank 0, which writes
        pipelines.fit_with_checkpoints(model, frame, checkpoints, args.resume, log)
        return EXIT_OK
    with pipelines._tracked_run(spec, label, log) as (run_id, _):
        # logged to MLflow by the fit hook when a run is active
        pipelines.fit_with_checkpoints(model, frame, checkpoints, args.resume, log)
    model.save(out)
    shutil.rmtree(checkpoints, ignore_errors=True)
    if run_id:
        log(f"mlflow run {run_id}")
    log(
        f"fitted {type(model).__name__} in {time.perf_counter() - started:.1f} s "
        f"({len(model.history_)} epochs); saved to {out}"
    )
    return EXIT_OK


def _predict(args: argparse.Namespace, log: _Logger) -> int:
    spec, root, frame, label = _spec_and_frame(args)
    model = forecaster.load(args.model)
    forecast = model.predict(frame)
    out = Path(args.out or root / "outputs" / spec.pipeline.name / label / "forecasts.parquet")
    _atomic_parquet(forecast, out)
    log(f"wrote {forecast.height} forecast rows to {out}")
    if not args.quiet and not args.json_logs:
        print(forecast.head(20))
    return EXIT_OK


def _backtest(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster import pipelines
    from forecaster.evaluation import backtest

    spec, root, frame, label = _spec_and_frame(args)
    model = (
        forecaster.load(args.model)
        if args.model
        else pipelines.build_estimator(spec, args.progress)
    )
    folds = args.folds or max(spec.evaluation.backtest_folds, 1)
    result = backtest(
        model,
        frame,
        folds=folds,
        refit=False,
        metrics=spec.evaluation.metrics,
        m=spec.evaluation.seasonality,
    )
    out = Path(args.out or root / "outputs" / spec.pipeline.name / label / "backtest.parquet")
    _atomic_parquet(result.metrics, out)
    log(f"backtest over {folds} folds written to {out}")
    with pl.Config(tbl_hide_dataframe_shape=True):
        log(str(result.aggregate))
    return EXIT_OK


def _tune(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster import pipelines
    from forecaster.tuning import tune

    spec, root, frame, label = _spec_and_frame(args)
    estimator = pipelines.build_estimator(spec, False)
    result = tune(
        estimator,
        frame,
        n_trials=args.trials or spec.training.trials,
        timeout=args.timeout or spec.training.timeout,
        storage=spec.training.storage,
        study_name=f"{spec.pipeline.name}-{pipelines.spec_hash(spec)}",
        random_state=spec.model.get("random_state"),
        show_progress=args.progress,
    )
    log(f"best value {result.best_value:.4g} with {result.best_params}")
    if result.best_estimator is not None:
        out = Path(root / "models" / spec.pipeline.name / f"{label}-tuned")
        result.best_estimator.save(out)
        log(f"best model refitted and saved to {out}")
    return EXIT_OK


def _atomic_parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _datasets(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster import datasets

    catalogue = datasets.list_datasets()
    if args.name is None:
        with pl.Config(fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
            print(catalogue)
        return EXIT_OK
    chosen = catalogue.filter(pl.col("name") == args.name)
    if chosen.height == 0:
        names = catalogue["name"].to_list()
        log(f"error: no bundled data set {args.name!r}; choose one of {names}", "error")
        return EXIT_USAGE
    for key, value in chosen.row(0, named=True).items():
        print(f"{key:12} {value}")
    card = datasets.datasets_dir() / args.name / "README.md"
    if card.is_file():
        print(f"{'data card':12} {card}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="only errors (for schedulers)")
    common.add_argument("--verbose", action="store_true", help="tracebacks on failure")
    common.add_argument("--json-logs", action="store_true", help="log lines as JSON objects")
    common.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )

    parser = argparse.ArgumentParser(
        prog="forecaster",
        parents=[common],
        description="Recurrent neural network forecasting on Polars panels.",
        epilog="Exit codes: 0 ok, 1 failure, 2 bad spec or arguments, 3 invalid data.",
    )
    parser.add_argument(
        "--version", action="version", version=f"forecaster {forecaster.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(func=func)
        return sub

    def spec_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("spec", help="pipeline spec (pipelines/*.toml)")
        sub.add_argument("--as-of", help="use data up to this ISO date (default: the last)")

    run = command("run", "run a pipeline spec end to end (idempotent per as-of date)", _run)
    spec_args(run)
    run.add_argument("--tune", action="store_true", help="tune with Optuna before fitting")
    run.add_argument("--force", action="store_true", help="replace existing outputs atomically")
    run.add_argument("--dry-run", action="store_true", help="validate and plan; write nothing")
    run.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )

    fit = command("fit", "fit the spec's model and save it", _fit)
    spec_args(fit)
    fit.add_argument("--out", help="model directory (default models/NAME/AS_OF)")
    fit.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )

    predict = command("predict", "forecast with a saved model", _predict)
    spec_args(predict)
    predict.add_argument("--model", required=True, help="saved model directory")
    predict.add_argument("--out", help="Parquet file to write")

    back = command("backtest", "rolling-origin backtest of the spec's model", _backtest)
    spec_args(back)
    back.add_argument("--model", help="saved model directory (default: fit the spec's model)")
    back.add_argument("--folds", type=int, help="number of forecast origins")
    back.add_argument("--out", help="Parquet file for the metrics")

    tune = command("tune", "tune the spec's model with Optuna (resumable)", _tune)
    spec_args(tune)
    tune.add_argument("--trials", type=float, help="finished trials wanted in the study")
    tune.add_argument("--timeout", type=float, help="seconds for this invocation")

    data = command("datasets", "list or describe the bundled data sets", _datasets)
    data.add_argument("name", nargs="?", help="a data set to describe")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forecaster`` command; returns the exit code."""
    from forecaster.persistence import ModelFormatError
    from forecaster.pipelines import SpecError

    parser = build_parser()
    args = parser.parse_args(argv)
    if os.environ.get("RANK", "0") not in ("", "0"):  # under torchrun only rank 0 reports
        args.quiet, args.json_logs = True, False
    log = _Logger(args.quiet, args.json_logs)
    if args.quiet or args.json_logs:
        args.progress = False
    try:
        return args.func(args, log)
    except SpecError as exc:
        log(f"error: invalid spec: {exc}", "error")
        if args.verbose:
            raise
        return EXIT_USAGE
    except ModelFormatError as exc:  # --model names no (readable) saved model
        log(f"error: invalid model: {exc}", "error")
        if args.verbose:
            raise
        return EXIT_USAGE
    except DataValidationError as exc:
        log(f"error: invalid data: {exc}", "error")
        if args.verbose:
            raise
        return EXIT_DATA
    except KeyboardInterrupt:
        log("error: interrupted", "error")
        return EXIT_FAILURE
    except Exception as exc:
        log(f"error: {type(exc).__name__}: {exc}", "error")
        if args.verbose:
            raise
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

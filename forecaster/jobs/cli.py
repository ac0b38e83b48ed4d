"""The ``forecaster`` command line (also ``python -m forecaster``).

Commands
--------
``forecaster run SPEC [--as-of DATE] [--tune] [--force] [--dry-run] [--resume] [--wait [S]]``
    The scheduled job: load, validate, fit (or reuse / tune), backtest, forecast and write the
    outputs of one as-of date atomically (see :mod:`forecaster.jobs.run`). Idempotent: a
    rerun of the same spec and as-of reports the outputs and exits 0 (outputs with a file
    missing or changed: exit 2 naming them). A second run of the same spec and as-of while one
    is running exits at once with code 4; with ``--wait`` it queues behind it (as long as it
    takes, or at most ``--wait SECONDS``) and then finds its outputs.
``forecaster fit SPEC [--as-of DATE] [--out DIR] [--resume] [--wait [S]]``
    Fit the spec's model and save it (``models/NAME/AS_OF`` by default). A model folder is
    replaced only when it holds a model forecaster saved and nothing else (checked before
    training).
``forecaster predict SPEC --model DIR [--as-of DATE] [--out FILE]``
    Forecast with a saved model; write Parquet atomically.
``forecaster backtest SPEC [--model DIR] [--folds N] [--out FILE]``
    Rolling-origin backtest metrics.
``forecaster tune SPEC [--trials N] [--timeout S] [--wait [S]]``
    Optuna study over the spec's model, one per as-of (resumable; see
    :func:`forecaster.jobs.study_name`); the study's refitted best model is saved to
    ``models/NAME/AS_OF-tuned``. Two tunings of one spec and as-of never overlap (exit 4, or
    ``--wait``). Logged to MLflow only when the spec's ``[tracking] enabled``.
``forecaster datasets [NAME]``
    List the bundled data sets, or describe one.

``AS_OF`` in the paths is the label of the effective as-of, the last time in the data the
``--as-of`` selects (``--as-of`` on a Saturday names Friday's outputs). Every command warns
about series whose data ends before it (their forecasts start at their own end).

``run`` and ``fit`` checkpoint the training every ``checkpoint_every`` epochs (a [model]
parameter, default 1) into the spec's ``model.checkpoint_dir`` (relative to the project), else
the hidden folder ``.<as-of>.checkpoints`` next to their output (see
:func:`forecaster.jobs.checkpoint_folder`); its checkpoint files are removed when the
command succeeds. With ``--resume`` an interrupted fit continues from there (a fit with no
checkpoint, or with checkpoints of other data or parameters, starts from the beginning with a
log line). Under ``torchrun --nproc_per_node=N -m forecaster fit SPEC`` the ranks train
together (:mod:`forecaster.training.distributed`) and only rank 0 logs and writes; a stray ``RANK``
without a torchrun launch is ignored with a warning.

Paths: ``SPEC``, ``--out`` and ``--model`` may start with ``~`` (expanded here too, as the
shell does not after ``--out=``); an empty path, a path through a file or a name longer than
the file system allows is exit 2 before any work. Files written by ``predict`` and
``backtest`` carry Parquet key-value metadata ``forecaster`` (what wrote them); ``--out``
never replaces a file without it (exit 2). Their default paths are siblings of the run's
output folder, ``<output.dir>.forecasts.parquet`` and ``<output.dir>.backtest.parquet`` (e.g.
``outputs/NAME/2017-06-30.forecasts.parquet``): inside the run's folder they would add files
its manifest does not list.

Counts and durations given on the command line are used as given, or refused: ``--trials``
and ``--folds`` are integers >= 1, ``--timeout`` a number of seconds > 0, ``--wait`` seconds
>= 0. ``--wait`` takes an optional value, so it goes after the spec path
(``forecaster run SPEC --wait``). The global options ``--quiet``, ``--verbose``,
``--json-logs`` and ``--no-progress`` work before or after the command.

Exit codes
----------
0 success (also when ``run`` finds its outputs already written); 1 failure (an
operating-system error such as a full disk with the system's message); 2 bad spec or
arguments, a ``--model`` folder that holds no readable model, or an output path that holds
what forecaster did not write; 3 data validation failure; 4 busy: another run of the same
spec and as-of (or a fit or tuning to the same folder) holds the lock, try again later or pass
``--wait``. Every command goes through one error wrapping
(:func:`forecaster.jobs.translated_errors`): a failure prints one line on stderr, and
``--verbose`` adds the traceback without changing the exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import stat
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

import forecaster
from forecaster import _io
from forecaster.exceptions import (
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    OwnershipError,
)
from forecaster.jobs.run import SpecError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DATA, EXIT_BUSY = 0, 1, 2, 3, 4
EPILOG = (
    "Exit codes: 0 ok (also: outputs already written), 1 failure, 2 bad spec, arguments, model "
    "folder or an output path forecaster did not write, 3 invalid data, 4 busy (another run of "
    "the same spec and as-of is running; --wait queues behind it)."
)
PARQUET_KEY = "forecaster"
"""The Parquet key-value metadata key that marks a file written by this command line."""


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
    from forecaster.jobs.run import run_pipeline

    result = run_pipeline(
        args.spec,
        as_of=args.as_of,
        tune=True if args.tune else None,
        force=args.force,
        dry_run=args.dry_run,
        resume=args.resume,
        wait=args.wait,
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


def _spec_and_frame(args: argparse.Namespace) -> tuple[Any, Path, pl.DataFrame, Any]:
    from forecaster.jobs import run as pipelines

    spec, root = pipelines.load_spec(args.spec)
    frame, when = pipelines.prepare_data(spec, root, args.as_of)
    return spec, root, frame, when


class ArgumentError(SpecError):
    """A command-line argument that cannot be used (exit code 2)."""


def _out_path(value: str | None, option: str, default: Path) -> Path:
    """``--out`` (absolute, normalised as written), or ``default``; an argument naming no
    path forecaster can write is refused (``ArgumentError``) before any work."""
    from forecaster.jobs import run as pipelines

    path = Path(os.path.normpath(Path(value if value is not None else default).absolute()))
    problem = pipelines.path_problem(path)
    if problem:
        raise ArgumentError(f"argument {option} ({value or str(default)!r}): {problem}.")
    return path


def _is_saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds the ``config.json`` of a saved forecaster model (read
    bounded): a model saved before models had a manifest, which ``save`` decides about."""
    from forecaster.persistence.core import FORMAT

    try:
        data = _io.read_file_bounded(folder / "config.json", 8 * 2**20, what="model config")
        config = _io.load_json_bounded(data, source=str(folder / "config.json"))
    except (OSError, ForecasterError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def _model_destination(path: Path) -> Path:
    """``path`` (absolute) after checking, before any training, that a model may be saved
    there: not inside a folder forecaster wrote, and free, empty or a saved model."""
    path = Path(os.path.normpath(path.absolute()))
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


def _fit(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster.jobs import run as pipelines
    from forecaster.training import distributed as distributed
    from forecaster.training.loop import remove_checkpoints

    spec, root, frame, when = _spec_and_frame(args)
    model = pipelines.build_estimator(spec, args.progress)
    out = _out_path(args.out, "--out", root / "models" / spec.pipeline.name / when.label)
    checkpoints = pipelines.checkpoint_folder(out, spec, root)
    started = time.perf_counter()
    if not distributed.is_main_process():  # torchrun: train in lockstep with rank 0, which writes
        pipelines.fit_with_checkpoints(model, frame, checkpoints, args.resume, log)
        return EXIT_OK
    if checkpoints.is_relative_to(out) or out.is_relative_to(checkpoints):
        raise ArgumentError(
            f"argument --out ({out}): the checkpoint folder {checkpoints} (model.checkpoint_dir) "
            f"{'is inside' if checkpoints.is_relative_to(out) else 'holds'} it. Choose a model "
            "folder apart from the checkpoints."
        )
    _model_destination(out)
    with pipelines.output_lock(out, args.wait, f"a fit that saves to {out}"):
        with pipelines.tracked_run(spec, when.label, log) as (run_id, _):
            # logged to MLflow by the fit hook when a run is active
            pipelines.fit_with_checkpoints(model, frame, checkpoints, args.resume, log)
        model.save(out)
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
    from forecaster.jobs import run as pipelines

    folder = pipelines.output_dir(spec, root, label)
    return folder.parent / f"{folder.name}.{what}.parquet"


def _predict(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster.jobs import run as pipelines

    spec, root, frame, when = _spec_and_frame(args)
    out = _out_path(args.out, "--out", _default_output(spec, root, when.label, "forecasts"))
    _check_parquet_destination(out)
    model = forecaster.load(args.model)
    forecast = pipelines.forecast_as_of(model, frame)
    _write_parquet(forecast, out, "forecast", spec, when)
    log(f"wrote {forecast.height} forecast rows to {out}")
    if not args.quiet and not args.json_logs:
        print(forecast.head(20))
    return EXIT_OK


def _backtest(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster.evaluation.backtest import backtest
    from forecaster.jobs import run as pipelines

    spec, root, frame, when = _spec_and_frame(args)
    out = _out_path(args.out, "--out", _default_output(spec, root, when.label, "backtest"))
    _check_parquet_destination(out)
    model = (
        forecaster.load(args.model)
        if args.model
        else pipelines.build_estimator(spec, args.progress).set_params(checkpoint_dir=None)
    )
    folds = args.folds if args.folds is not None else max(spec.evaluation.backtest_folds, 1)
    result = backtest(
        model,
        frame,
        folds=folds,
        refit=False,
        metrics=spec.evaluation.metrics,
        m=spec.evaluation.seasonality,
    )
    _write_parquet(result.metrics, out, "backtest", spec, when)
    log(f"backtest over {folds} folds written to {out}")
    with pl.Config(tbl_hide_dataframe_shape=True):
        log(str(result.aggregate))
    return EXIT_OK


def _tune(args: argparse.Namespace, log: _Logger) -> int:
    from forecaster.jobs import run as pipelines

    spec, root, frame, when = _spec_and_frame(args)
    out = _model_destination(pipelines.tuned_model_dir(spec, root, when))
    what = f"a tuning of {spec.pipeline.name!r} as of {when.label} (saving {out})"
    with pipelines.output_lock(out, args.wait, what):
        result = pipelines.tune_model(
            spec,
            root,
            frame,
            when,
            n_trials=args.trials,
            timeout=args.timeout,
            progress=args.progress,
            track=True,
        )
        log(
            f"study {result.study_name}: best value {result.best_value:.4g} with "
            f"{result.best_params}"
        )
        if result.best_estimator is not None:  # the study's best, refitted, under the lock
            result.best_estimator.save(out)
            log(f"best model refitted and saved to {out}")
    return EXIT_OK


# ------------------------------------------------------------------------------------------
# Parquet files of the command line: marked, and replaced only when marked
# ------------------------------------------------------------------------------------------


def _check_parquet_destination(path: Path) -> None:
    """Refuse (``OwnershipError``) to replace anything at ``path`` but a regular Parquet file
    that this command line wrote (its ``forecaster`` metadata); a link, folder, pipe or any
    other file is left alone. Also refuse a path inside a folder forecaster wrote."""
    owner = _io.owning_folder(path)
    if owner is not None:
        raise OwnershipError(
            f"Refusing to write {path}: it is inside {owner[0]}, a {owner[1]} folder forecaster "
            "wrote (its manifest would no longer list what it holds). Choose a path outside it."
        )
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OwnershipError(f"Refusing to write {path}: cannot inspect it ({exc}).") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "a folder or special file"
        raise OwnershipError(
            f"Refusing to write {path}: it is {kind}, not a file forecaster wrote. Choose a new "
            "file name with --out."
        )
    if _parquet_owner(path) is None:
        raise OwnershipError(
            f"Refusing to replace {path}: it is not a file forecaster wrote (no '{PARQUET_KEY}' "
            "Parquet metadata), and replacing it would lose what it holds. Choose a new file "
            "name with --out, or move the file away."
        )


def _parquet_owner(path: Path) -> dict[str, Any] | None:
    """The ``forecaster`` metadata of the Parquet file ``path``, or None (not Parquet, not
    marked, unreadable). Only the footer is read, after checking the Parquet magic bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(-8, os.SEEK_END)
            tail = handle.read(8)
    except OSError:
        return None
    if head != b"PAR1" or tail[4:] != b"PAR1":
        return None
    if int.from_bytes(tail[:4], "little") > min(os.path.getsize(path), 64 * 2**20):
        return None
    try:
        metadata = pl.read_parquet_metadata(path)
    except Exception:  # any reader error: not a file we can vouch for
        return None
    try:
        value = _io.load_json_bounded(metadata.get(PARQUET_KEY, "").encode(), source=str(path))
    except ForecasterError:
        return None
    return value if isinstance(value, dict) else None


def _write_parquet(frame: pl.DataFrame, path: Path, kind: str, spec: Any, when: Any) -> None:
    marker = {
        "kind": kind,
        "pipeline": spec.pipeline.name,
        "as_of": when.label,
        "package_version": forecaster.__version__,
    }
    metadata = {PARQUET_KEY: json.dumps(marker)}
    _io.write_atomic(path, lambda tmp: frame.write_parquet(tmp, metadata=metadata))


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


# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``; ``2.5``, ``0`` or ``-1`` are refused, an
    integral number written as a float (``10.0``, as MLflow's float parameters pass it) is
    that integer."""

    def parse(text: str) -> int:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number.is_integer() and number >= minimum):
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return int(number)

    return parse


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, > 0 (or >= 0 with ``zero``)."""
    bound = ">= 0" if zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"expected a finite number of seconds {bound}, got {text!r}"
            )
        return value

    return parse


def _path(text: str) -> str:
    """An argparse type: a path, with a leading ``~`` expanded (as the shell does not after
    ``--out=``); an empty path is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return os.path.expanduser(text)


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes. The copy on the commands has no defaults
    (``SUPPRESS``), so that an option given before the command is not reset after it."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    common.add_argument(
        "--quiet", action="store_true", help="only errors (for schedulers)", **default
    )
    common.add_argument("--verbose", action="store_true", help="tracebacks on failure", **default)
    common.add_argument(
        "--json-logs", action="store_true", help="log lines as JSON objects", **default
    )
    common.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bars",
        **default,
    )
    return common


def _wait_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--wait",
        nargs="?",
        type=_seconds(zero=True),
        const=None,
        default=0.0,
        metavar="SECONDS",
        help="when another run of the same spec and as-of is running, wait for it (as long as "
        "it takes, or at most SECONDS) instead of exiting with code 4; it takes an optional "
        "value, so put it after the spec path",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecaster",
        parents=[_global_options(False)],
        description="Recurrent neural network forecasting on Polars panels.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--version", action="version", version=f"forecaster {forecaster.__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _global_options(True)

    def command(name: str, help_text: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, parents=[common], epilog=EPILOG
        )
        sub.set_defaults(func=func)
        return sub

    def spec_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("spec", type=_path, help="pipeline spec (pipelines/*.toml)")
        sub.add_argument(
            "--as-of",
            help="use data up to this ISO date, date and time, or integer step (default: the "
            "last); after the data's end it is the data's last time",
        )

    run = command("run", "run a pipeline spec end to end (idempotent per as-of date)", _run)
    spec_args(run)
    run.add_argument("--tune", action="store_true", help="tune with Optuna before fitting")
    run.add_argument("--force", action="store_true", help="replace existing outputs atomically")
    run.add_argument("--dry-run", action="store_true", help="validate and plan; write nothing")
    run.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(run)

    fit = command("fit", "fit the spec's model and save it", _fit)
    spec_args(fit)
    fit.add_argument("--out", type=_path, help="model directory (default models/NAME/AS_OF)")
    fit.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(fit)

    predict = command("predict", "forecast with a saved model", _predict)
    spec_args(predict)
    predict.add_argument("--model", required=True, type=_path, help="saved model directory")
    predict.add_argument(
        "--out", type=_path, help="Parquet file to write (default <output.dir>.forecasts.parquet)"
    )

    back = command("backtest", "rolling-origin backtest of the spec's model", _backtest)
    spec_args(back)
    back.add_argument(
        "--model", type=_path, help="saved model directory (default: fit the spec's model)"
    )
    back.add_argument("--folds", type=_count(1), help="number of forecast origins (>= 1)")
    back.add_argument(
        "--out",
        type=_path,
        help="Parquet file for the metrics (default <output.dir>.backtest.parquet)",
    )

    tune = command("tune", "tune the spec's model with Optuna (resumable)", _tune)
    spec_args(tune)
    tune.add_argument("--trials", type=_count(1), help="finished trials wanted in the study (>= 1)")
    tune.add_argument(
        "--timeout", type=_seconds(zero=False), help="seconds for this invocation (> 0)"
    )
    _wait_option(tune)

    data = command("datasets", "list or describe the bundled data sets", _datasets)
    data.add_argument("name", nargs="?", help="a data set to describe")
    return parser


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def _exit_code(exc: BaseException) -> tuple[int, str]:
    """The exit code of an error and the prefix of its message."""
    from forecaster.persistence.core import ModelFormatError
    from forecaster.tuning.core import StorageError

    if isinstance(exc, ArgumentError):
        return EXIT_USAGE, "invalid argument"
    if isinstance(exc, SpecError | StorageError):
        return EXIT_USAGE, "invalid spec"
    if isinstance(exc, ModelFormatError):  # --model names no (readable) saved model
        return EXIT_USAGE, "invalid model"
    if isinstance(exc, OwnershipError):
        return EXIT_USAGE, "refused"
    if isinstance(exc, DataValidationError):
        return EXIT_DATA, "invalid data"
    if isinstance(exc, ConcurrentRunError):
        return EXIT_BUSY, "busy"
    if isinstance(exc, ForecasterError):
        return EXIT_FAILURE, "failed"
    return EXIT_FAILURE, type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forecaster`` command; returns the exit code.

    Every command runs through :func:`forecaster.jobs.translated_errors`, so a failure
    is one of forecaster's errors with its documented exit code; ``--verbose`` adds the
    traceback on stderr without changing the code.
    """
    from forecaster.jobs import run as pipelines
    from forecaster.training import distributed as distributed

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (usage printed, code 2)
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 2
    log = _Logger(args.quiet, args.json_logs)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(log, args.quiet)
            if not distributed.is_main_process():  # under torchrun only rank 0 reports
                args.quiet, args.json_logs = True, False
                log.quiet, log.json_logs = True, False
            if args.quiet or args.json_logs:
                args.progress = False
            with pipelines.translated_errors(f"forecaster {args.command}"):
                return args.func(args, log)
    except KeyboardInterrupt:
        log("error: interrupted", "error")
        return EXIT_FAILURE
    except BrokenPipeError:  # the reader of our output went away (`forecaster ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        code, what = _exit_code(exc)
        log(f"error: {what}: {exc}", "error")
        if args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        return code


def _show_warning(log: _Logger, quiet: bool) -> Callable[..., None]:
    """Warnings as one line (``warning: ...`` on stderr, or a JSON record with
    ``--json-logs``) instead of Python's two lines with a source line; none with ``--quiet``."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if log.json_logs:
            log(str(message), "warning", category=category.__name__)
        elif not quiet:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    return show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

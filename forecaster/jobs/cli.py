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
``forecaster predict SPEC --model DIR [--as-of DATE] [--out FILE] [--level L ...]``
    Forecast with a saved model; write Parquet atomically. ``--level 80 --level 95`` (default:
    the spec's ``[output] levels``) adds the prediction intervals ``<target>_lo_80``,
    ``<target>_hi_80``, ... (a point model must have been calibrated: ``fit`` and ``run``
    calibrate it when the spec sets ``levels``).
``forecaster backtest SPEC [--model DIR] [--folds N] [--out FILE] [--level L ...]``
    Rolling-origin backtest metrics. ``--level 80`` (repeatable; default: the spec's
    ``[output] levels``) also scores the 80 % prediction interval (``coverage_80``,
    ``width_80``, ``winkler_80``, ``msis_80``, and ``pinball`` / ``scrps`` when
    ``[evaluation] metrics`` lists them) in the Parquet file and the logged summary, the way
    ``run`` scores its backtest: the spec's model is fitted on the data before the first fold
    and a point model calibrated there (:mod:`forecaster.jobs.intervals`). A ``--model`` is
    used as it is: a point model must have been saved calibrated, a quantile model must emit
    each level's bounds (else exit 2 naming ``--level``).
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
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from forecaster._version import __version__
from forecaster.exceptions import (
    ArgumentError,
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    ModelFormatError,
    OwnershipError,
    SpecError,
    StorageError,
)
from forecaster.jobs.commands import (
    EXIT_BUSY,
    EXIT_DATA,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    backtest_command,
    datasets_command,
    fit_command,
    predict_command,
    run_command,
    tune_command,
)
from forecaster.jobs.run import translated_errors
from forecaster.training import distributed

__all__ = ["build_parser", "main"]

EPILOG = (
    "Exit codes: 0 ok (also: outputs already written), 1 failure, 2 bad spec, arguments, model "
    "folder or an output path forecaster did not write, 3 invalid data, 4 busy (another run of "
    "the same spec and as-of is running; --wait queues behind it)."
)


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


def _level(text: str) -> float:
    """An argparse type: a prediction-interval level in percent, a number in (0, 100)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 100):
        raise argparse.ArgumentTypeError(
            f"expected a level in percent, a number in (0, 100) such as 80 or 95, got {text!r}"
        )
    return value


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
    parser.add_argument("--version", action="version", version=f"forecaster {__version__}")
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

    run = command("run", "run a pipeline spec end to end (idempotent per as-of date)", run_command)
    spec_args(run)
    run.add_argument("--tune", action="store_true", help="tune with Optuna before fitting")
    run.add_argument("--force", action="store_true", help="replace existing outputs atomically")
    run.add_argument("--dry-run", action="store_true", help="validate and plan; write nothing")
    run.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(run)

    fit = command("fit", "fit the spec's model and save it", fit_command)
    spec_args(fit)
    fit.add_argument("--out", type=_path, help="model directory (default models/NAME/AS_OF)")
    fit.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(fit)

    predict = command("predict", "forecast with a saved model", predict_command)
    spec_args(predict)
    predict.add_argument("--model", required=True, type=_path, help="saved model directory")
    predict.add_argument(
        "--out", type=_path, help="Parquet file to write (default <output.dir>.forecasts.parquet)"
    )
    predict.add_argument(
        "--level",
        action="append",
        type=_level,
        metavar="L",
        help="add the L %% prediction interval (repeat: --level 80 --level 95; default: the "
        "spec's [output] levels)",
    )

    back = command("backtest", "rolling-origin backtest of the spec's model", backtest_command)
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
    back.add_argument(
        "--level",
        action="append",
        type=_level,
        metavar="L",
        help="also score the L %% prediction interval: coverage_L, width_L, winkler_L, msis_L "
        "(repeat: --level 80 --level 95; default: the spec's [output] levels)",
    )

    tune = command("tune", "tune the spec's model with Optuna (resumable)", tune_command)
    spec_args(tune)
    tune.add_argument("--trials", type=_count(1), help="finished trials wanted in the study (>= 1)")
    tune.add_argument(
        "--timeout", type=_seconds(zero=False), help="seconds for this invocation (> 0)"
    )
    _wait_option(tune)

    data = command("datasets", "list or describe the bundled data sets", datasets_command)
    data.add_argument("name", nargs="?", help="a data set to describe")
    return parser


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def _exit_code(exc: BaseException) -> tuple[int, str]:
    """The exit code of an error and the prefix of its message."""
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
            with translated_errors(f"forecaster {args.command}"):
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

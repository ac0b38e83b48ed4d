"""The arguments and exit codes of the ``forecaster`` command line (see :mod:`forecaster.jobs.cli`).

This module imports only the standard library and :mod:`forecaster._version`: the parser is
built and ``--help``, ``--version`` and usage errors answered before any heavy module (PyTorch,
Polars, scikit-learn, MLflow, Optuna) is imported. Each command names its handler, a function
of :mod:`forecaster.jobs.commands` that :func:`forecaster.jobs.cli.main` imports when the
command runs.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

from forecaster._version import __version__

__all__ = [
    "EPILOG",
    "EXIT_BUSY",
    "EXIT_CODES",
    "EXIT_DATA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "epilog",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DATA, EXIT_BUSY = 0, 1, 2, 3, 4

_WAITING = ("run", "fit", "tune")
"""The commands that take ``--wait`` (and may exit 4, busy)."""
_SPECS = ("run", "fit", "predict", "backtest", "tune")
"""The commands that read a spec and its data."""
_ALL = (*_SPECS, "datasets")

EXIT_CODES: tuple[tuple[int, tuple[str, ...], str], ...] = (
    (EXIT_OK, ("run",), "ok (also: outputs already written, which a rerun leaves as they are)"),
    (EXIT_OK, ("fit", "predict", "backtest", "tune", "datasets"), "ok"),
    (EXIT_FAILURE, _ALL, "failure"),
    (
        EXIT_USAGE,
        _SPECS,
        "bad spec, arguments, model folder or an output path forecaster did not write",
    ),
    (EXIT_USAGE, ("datasets",), "bad arguments"),
    (EXIT_DATA, _SPECS, "invalid data"),
    (
        EXIT_BUSY,
        _WAITING,
        "busy (another process of the same spec and as-of is writing the same outputs or "
        "model; --wait queues behind it)",
    ),
    (
        130,
        ("run",),
        "stopped by Ctrl-C, 143 stopped by SIGTERM (both cleaned up; the MLflow run ends KILLED "
        "unless its outputs were already published: then FINISHED, tagged "
        "forecaster.interrupted)",
    ),
    (
        130,
        ("fit", "tune"),
        "stopped by Ctrl-C, 143 stopped by SIGTERM (both cleaned up; the MLflow run ends KILLED)",
    ),
    (
        130,
        ("predict", "backtest", "datasets"),
        "stopped by Ctrl-C, 143 stopped by SIGTERM (both cleaned up)",
    ),
)
"""The exit codes of each command: (code, the commands it is of, what it means there); the
one table each command's ``--help`` is built from (:func:`epilog`)."""


def epilog(command: str | None) -> str:
    """The exit codes of ``command`` (from :data:`EXIT_CODES`, only those it has), or of every
    command (None: each code with the commands it is of in brackets, where not all)."""
    lines = []
    for code, commands, meaning in EXIT_CODES:
        if command is None:
            where = "" if commands == _ALL else f" [{', '.join(commands)}]"
            lines.append(f"{code} {meaning}{where}")
        elif command in commands:
            lines.append(f"{code} {meaning}")
    return f"Exit codes: {'; '.join(lines)}."


EPILOG = epilog(None)
"""The exit codes of every command (the ``forecaster --help`` text)."""


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
    """An argparse type: a prediction-interval level in percent, a number in (1, 100) (the
    range of ``forecaster._validation.MIN_LEVEL``, not imported: the parser stays light)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 1 < value < 100):
        raise argparse.ArgumentTypeError(
            f"expected a level in percent, a number in (1, 100) such as 80 or 95, got {text!r}"
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


_FORCE_FILE = (
    "replace a file of a later as-of (a backfill into the file every as-of shares: an "
    "output.dir without {as_of}, or the same --out)"
)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser; a parsed command carries ``command`` and ``handler`` (the
    name of its function in :mod:`forecaster.jobs.commands`)."""
    parser = argparse.ArgumentParser(
        prog="forecaster",
        parents=[_global_options(False)],
        description="Recurrent neural network forecasting on Polars panels.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"forecaster {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _global_options(True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=help_text, description=help_text, parents=[common], epilog=epilog(name)
        )
        sub.set_defaults(handler=f"{name}_command")  # in forecaster.jobs.commands
        return sub

    def spec_args(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "spec",
            type=_path,
            help="pipeline spec: a TOML file, usually in a project's pipelines/ folder",
        )
        sub.add_argument(
            "--as-of",
            help="use data up to this ISO date, date and time, or integer step (default: the "
            "last); after the data's end it is the data's last time",
        )

    run = command("run", "run a pipeline spec end to end (idempotent per as-of date)")
    spec_args(run)
    run.add_argument("--tune", action="store_true", help="tune with Optuna before fitting")
    run.add_argument("--force", action="store_true", help="replace existing outputs atomically")
    run.add_argument("--dry-run", action="store_true", help="validate and plan; write nothing")
    run.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(run)

    fit = command("fit", "fit the spec's model and save it")
    spec_args(fit)
    fit.add_argument("--out", type=_path, help="model directory (default models/NAME/AS_OF)")
    fit.add_argument(
        "--resume", action="store_true", help="continue an interrupted fit from its checkpoints"
    )
    _wait_option(fit)

    predict = command("predict", "forecast with a saved model")
    spec_args(predict)
    predict.add_argument("--model", required=True, type=_path, help="saved model directory")
    predict.add_argument(
        "--out", type=_path, help="Parquet file to write (default <output.dir>.forecasts.parquet)"
    )
    predict.add_argument("--force", action="store_true", help=_FORCE_FILE)
    predict.add_argument(
        "--level",
        action="append",
        type=_level,
        metavar="L",
        help="add the L %% prediction interval (repeat: --level 80 --level 95; default: the "
        "spec's [output] levels)",
    )

    back = command("backtest", "rolling-origin backtest of the spec's model")
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
    back.add_argument("--force", action="store_true", help=_FORCE_FILE)
    back.add_argument(
        "--level",
        action="append",
        type=_level,
        metavar="L",
        help="also score the L %% prediction interval: coverage_L, width_L, winkler_L, msis_L "
        "(repeat: --level 80 --level 95; default: the spec's [output] levels)",
    )

    tune = command("tune", "tune the spec's model with Optuna (resumable)")
    spec_args(tune)
    tune.add_argument("--trials", type=_count(1), help="finished trials wanted in the study (>= 1)")
    tune.add_argument(
        "--timeout", type=_seconds(zero=False), help="seconds for this invocation (> 0)"
    )
    _wait_option(tune)

    data = command("datasets", "list or describe the bundled data sets")
    data.add_argument("name", nargs="?", help="a data set to describe")
    return parser

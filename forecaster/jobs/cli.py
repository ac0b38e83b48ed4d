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
``forecaster predict SPEC --model DIR [--as-of DATE] [--out FILE] [--level L ...] [--force]``
    Forecast with a saved model; write Parquet atomically. ``--level 80 --level 95`` (default:
    the spec's ``[output] levels``) adds the prediction intervals ``<target>_lo_80``,
    ``<target>_hi_80``, ... (a point model must have been calibrated: ``fit`` and ``run``
    calibrate it when the spec sets ``levels``).
``forecaster backtest SPEC [--model DIR] [--folds N] [--out FILE] [--level L ...] [--force]``
    Rolling-origin backtest metrics. ``--level 80`` (repeatable; default: the spec's
    ``[output] levels``) also scores the 80 % prediction interval (``coverage_80``,
    ``width_80``, ``winkler_80``, ``msis_80``, and ``pinball`` / ``scrps`` when
    ``[evaluation] metrics`` lists them) in the Parquet file and the logged summary, the way
    ``run`` scores its backtest: the spec's model is fitted on the data before the first fold
    and a point model calibrated there (:mod:`forecaster.jobs.intervals`). A ``--model`` is
    used as it is: a point model must have been saved calibrated, a quantile model must emit
    each level's bounds (else exit 2 naming ``--level``). ``--level`` replaces the spec's
    levels: one that leaves out the level of a per-level score ``[evaluation] metrics`` lists
    (``winkler_95`` and ``--level 80``) is exit 2 naming ``--level`` and the score.
``forecaster tune SPEC [--trials N] [--timeout S] [--wait [S]]``
    Optuna study over the spec's model, one per as-of (resumable; see
    :func:`forecaster.jobs.study_name`), searching the default search space less the
    parameters ``[model]`` sets (:func:`forecaster.jobs.fitting.search_plan`); the study's
    refitted best model is saved to ``models/NAME/AS_OF-tuned``. Two tunings of one spec and
    as-of never overlap (exit 4, or ``--wait``). Logged to MLflow only when the spec's
    ``[tracking] enabled``.
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
the file system allows is exit 2 before any work, as is a ``--out`` of ``predict`` or
``backtest`` not named ``<name>.parquet`` (one ending with ``/`` names a folder; ``.parquet``
alone a hidden file). Files written by ``predict`` and
``backtest`` carry Parquet key-value metadata ``forecaster`` (what wrote them); ``--out``
never replaces a file without it (exit 2); each writes its summary beside it,
``<file without .parquet>.summary.json`` (:mod:`forecaster.jobs.summaries`: what it forecast
or scored, the series it left out and why). Their default paths are siblings of the run's
output folder, ``<output.dir>.forecasts.parquet`` and ``<output.dir>.backtest.parquet`` (e.g.
``outputs/NAME/2017-06-30.forecasts.parquet``): inside the run's folder they would add files
its manifest does not list. A file of a later as-of (a backfill into the file every as-of
shares: the default of an ``output.dir`` without ``{as_of}``, or one ``--out``) is replaced only
with ``--force``, as ``run`` replaces a later as-of's outputs (exit 2 otherwise).

Counts and durations given on the command line are used as given, or refused: ``--trials``
and ``--folds`` are integers >= 1, ``--timeout`` a number of seconds > 0, ``--wait`` seconds
>= 0. ``--wait`` takes an optional value, so it goes after the spec path
(``forecaster run SPEC --wait``). The global options ``--quiet``, ``--verbose``,
``--json-logs`` and ``--no-progress`` work before or after the command.

Output
------
A command's results (the run's summary table and paths, ``wrote ... to``, the forecast's
first rows, the backtest's scores, ``datasets``) go to standard output. Its steps (the data,
the model, calibration, reuse, checkpoints, tracking) are ``INFO`` records of the
``forecaster`` logger and its per-module children (and, for ``run`` and ``tune``, Optuna's
own records: the study created or loaded, each trial finished, which Optuna would otherwise
print itself), shown on standard error, with the progress of training and tuning: a bar in
a terminal, one line per epoch or trial in a log file or any other output that is no
terminal (:mod:`forecaster.training.progress`).
Warnings are one ``warning: ...`` line on standard error, a failure one ``error: ...`` line.
``--quiet`` keeps only errors; ``--verbose`` adds ``DEBUG`` records and tracebacks;
``--json-logs`` writes results, steps and warnings as JSON objects, one per line, on standard
output (all of them, also with ``--quiet``; with ``--no-progress`` implied), and a failure as
one JSON object on standard error.

Exit codes
----------
0 success (also when ``run`` finds its outputs already written); 1 failure (an
operating-system error such as a full disk with the system's message); 2 bad spec or
arguments, a ``--model`` folder that holds no readable model, or an output path that holds
what forecaster did not write; 3 data validation failure; 4 busy: another run of the same
spec and as-of (or a fit or tuning to the same folder) holds the lock, try again later or pass
``--wait`` (``run``, ``fit`` and ``tune`` only; each command's ``--help`` lists its own codes,
from :data:`forecaster.jobs.parser.EXIT_CODES`); 130 interrupted (Ctrl-C, ``SIGINT``: 128 +
2); 143 terminated (``SIGTERM``, as a scheduler, systemd or Kubernetes sends on a timeout or
a shutdown: 128 + 15). Both are the codes of a process the signal ended, given after the
command's cleanups.
While a command runs, Ctrl-C and ``SIGTERM`` are raised as an interrupt (a ``KeyboardInterrupt``;
:class:`Terminated` for ``SIGTERM``) that unwinds the command, so nothing half-written is left
(a run's staging folder and temporary files are removed; the published outputs stay as they
were), the MLflow run of a tracked ``run`` or ``fit`` ends KILLED unless its outputs were already
published (then FINISHED, tagged ``forecaster.interrupted``), and the checkpoints of an
interrupted fit stay for ``--resume``. Either waits for the end of a short tracking write it
lands in (:mod:`forecaster._interrupts`), and once a run's outputs are published, for their
logging to MLflow and the latest-model pointer (a rerun skips them, so it would never write
them). A second Ctrl-C or ``SIGTERM`` stops that wait: each tracking request gives up after
``request_timeout`` s and ``max_retries`` retries (:mod:`forecaster.tracking.config`), but the
logging makes several, so a scheduler's single ``SIGTERM`` may wait past its grace period and
end in its ``SIGKILL``. A second ``SIGTERM`` while it unwinds is ignored; the previous
handler is put back when the command returns (importing forecaster installs none).
Every command goes through one error wrapping
(:func:`forecaster.jobs.translated_errors`): a failure prints one line on stderr, and
``--verbose`` adds the traceback without changing the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from forecaster._interrupts import raise_or_defer
from forecaster._warnings import catching_warnings
from forecaster.exceptions import (
    ArgumentError,
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    ModelFormatError,
    OwnershipError,
    SpecError,
    StorageError,
    each_warning_once,
)
from forecaster.jobs.parser import (
    EXIT_BUSY,
    EXIT_DATA,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
)

__all__ = ["EXIT_INTERRUPTED", "EXIT_TERMINATED", "Terminated", "build_parser", "main"]

EXIT_INTERRUPTED = 128 + int(signal.SIGINT)
"""130: the exit code of a command stopped by Ctrl-C (``SIGINT``; the shell's code of a process
the signal ended), after its cleanups ran."""

EXIT_TERMINATED = 128 + int(signal.SIGTERM)
"""143: the exit code of a command stopped by ``SIGTERM`` (the shell's code of a process the
signal ended), after its cleanups ran."""


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` while a command runs, raised in the main thread: an interrupt, so it unwinds
    as Ctrl-C does (``finally`` blocks, removal of temporary files, the MLflow run ended
    KILLED unless its outputs were already published, the fitted model of a completed training
    kept), and the command exits with
    :data:`EXIT_TERMINATED`."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises :class:`Terminated` in the main thread (once: a
    second ``SIGTERM`` while it unwinds is ignored, so its cleanups run to the end; one while
    the first is held by :func:`~forecaster._interrupts.uninterrupted` raises it at once, so a
    wait on a tracking server that hangs can be stopped); the previous handler is put back
    afterwards. Nothing changes outside the main thread, where
    Python cannot set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        interrupt = Terminated(f"terminated by signal {signum} (SIGTERM)")
        # after a tracking write that it lands in (forecaster._interrupts)
        raise_or_defer(interrupt)
        # held: a second SIGTERM before the wait ends stops it, as a second Ctrl-C does
        signal.signal(signal.SIGTERM, lambda *_: stop_waiting(interrupt))

    def stop_waiting(interrupt: Terminated) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if interrupt.__traceback__ is None:  # still held (raised: its cleanups are running)
            raise_or_defer(interrupt)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:  # None: a handler not set from Python, which cannot be put back: the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _record(level: str, message: str, **fields: Any) -> str:
    """One ``--json-logs`` line: a JSON object with ``ts``, ``level``, ``msg`` and ``fields``."""
    record = {
        "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "level": level,
        "msg": message,
        **fields,
    }
    return json.dumps(_finite(record), default=str)


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite (an infinite MAPE) as None, in the dicts
    and lists it holds: JSON has no inf or NaN (``Infinity`` is refused by strict parsers), and
    ``summary.json`` writes them null too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class _Logger:
    """A command's results (paths, summaries, tables): standard output, as plain text, JSON
    lines (``--json-logs``) or nothing (``--quiet``); errors on standard error."""

    def __init__(self, quiet: bool, json_logs: bool) -> None:
        self.quiet, self.json_logs = quiet, json_logs

    def __call__(self, message: str, level: str = "info", **fields: Any) -> None:
        if self.json_logs:  # a failure on standard error, as without --json-logs
            stream = sys.stderr if level == "error" else sys.stdout
            print(_record(level, message, **fields), file=stream, flush=True)
        elif not self.quiet or level == "error":
            print(message, file=sys.stderr if level == "error" else sys.stdout, flush=True)


class _JsonFormatter(logging.Formatter):
    """Log records as ``--json-logs`` lines (with the logger's name)."""

    def format(self, record: logging.LogRecord) -> str:
        return _record(record.levelname.lower(), record.getMessage(), logger=record.name)


@contextlib.contextmanager
def _logging_to(
    quiet: bool, verbose: bool, json_logs: bool, optuna: bool = False, mlflow: bool = False
) -> Iterator[None]:
    """Show the ``forecaster`` logger's records while a command runs: its steps and
    progress (``INFO``; ``DEBUG`` with ``--verbose``; none with ``--quiet``) on standard error
    as plain lines, or with ``--json-logs`` as JSON lines on standard output beside the
    results (all of them, also with ``--quiet``). The handler is removed afterwards (the
    library itself adds only a ``NullHandler``). ``optuna``: a command that may tune, whose
    Optuna records go the same way (:func:`_optuna_logging_to`). ``mlflow``: a command that
    may track, whose MLflow records go the same way under ``--quiet`` or ``--json-logs``, where
    a scheduler keeps the output (:func:`_mlflow_logging_to`)."""
    root = logging.getLogger("forecaster")
    if json_logs:
        handler: logging.Handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_JsonFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
    level = logging.DEBUG if verbose else logging.INFO
    if quiet and not json_logs:  # a JSON log records every step, as a scheduler keeps it
        level = logging.ERROR
    handler.setLevel(level)
    before = root.level
    root.setLevel(level)
    root.addHandler(handler)
    try:
        with contextlib.ExitStack() as routed:
            if optuna:
                routed.enter_context(_optuna_logging_to(handler, level))
            if mlflow and (quiet or json_logs):
                routed.enter_context(_mlflow_logging_to(handler, level))
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before)


_MLFLOW_LOGGERS = ("mlflow", "alembic")
"""The loggers MLflow sets up with its own handler on standard error when it is imported
(``alembic``: the migrations of a new tracking store)."""


@contextlib.contextmanager
def _mlflow_logging_to(handler: logging.Handler, level: int) -> Iterator[None]:
    """MLflow's own records (``Creating initial MLflow database tables...``, ``Validating input
    example ...``) through the command's ``handler``, at ``WARNING`` or above (stricter with
    ``--quiet``), instead of MLflow's handler, which writes them to standard error as plain
    lines whatever ``--quiet`` or ``--json-logs`` say. MLflow is imported first: its import
    sets these loggers up anew, so a later import would undo the routing. Their handlers,
    levels and propagation are put back afterwards. Nothing to do when MLflow is not
    installed."""
    if importlib.util.find_spec("mlflow") is None:
        yield
        return
    try:
        import mlflow  # noqa: F401  (importing it sets up its loggers and their handler)
    except Exception:  # a broken install: the command's own tracking warning says so
        yield
        return
    loggers = [logging.getLogger(name) for name in _MLFLOW_LOGGERS]
    before = [(list(each.handlers), each.level, each.propagate) for each in loggers]
    for each in loggers:
        each.handlers = [handler]
        each.setLevel(max(level, logging.WARNING))
        each.propagate = False  # not also through the root logger's handlers
    try:
        yield
    finally:
        for each, (handlers, previous, propagate) in zip(loggers, before, strict=True):
            each.handlers = handlers
            each.setLevel(previous)
            each.propagate = propagate


@contextlib.contextmanager
def _optuna_logging_to(handler: logging.Handler, level: int) -> Iterator[None]:
    """Optuna's own records (the ``optuna`` logger: "A new study created ...", "Trial 0
    finished ...") through the command's ``handler`` at the command's ``level``, instead of
    Optuna's handler, which writes them to standard error whatever ``--quiet`` or
    ``--json-logs`` say. Optuna's handlers, level and propagation are put back afterwards, so
    :func:`forecaster.tune` called from Python keeps Optuna's own logging. Nothing to do
    when Optuna is not installed."""
    try:
        import optuna  # noqa: F401  (importing it sets up the "optuna" logger and its handler)
    except ImportError:
        yield
        return
    optuna_logger = logging.getLogger("optuna")
    handlers = list(optuna_logger.handlers)
    before = (optuna_logger.level, optuna_logger.propagate)
    for other in handlers:
        optuna_logger.removeHandler(other)
    optuna_logger.addHandler(handler)
    optuna_logger.setLevel(level)
    optuna_logger.propagate = False  # not also through the root logger's handlers
    try:
        yield
    finally:
        optuna_logger.removeHandler(handler)
        for other in handlers:
            optuna_logger.addHandler(other)
        optuna_logger.setLevel(before[0])
        optuna_logger.propagate = before[1]


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


_TUNING_COMMANDS = frozenset({"run", "tune"})
"""The commands that may run an Optuna study (``run``: with ``--tune`` or the spec's
``training.tune``), whose Optuna log records :func:`_logging_to` routes."""

_TRACKING_COMMANDS = frozenset({"run", "fit", "tune", "backtest", "predict"})
"""The commands that may open an MLflow store (a spec's ``[tracking]``, a ``models:/`` model),
whose MLflow log records :func:`_logging_to` routes."""


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


def _usage_record(text: str) -> str:
    """argparse's usage error (its usage lines, then ``prog: error: message``) as one
    ``--json-logs`` record."""
    *usage, last = text.strip().splitlines()
    message = last.split(": error: ", 1)[-1]
    return _record("error", f"error: {message}", usage=" ".join(" ".join(usage).split()))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forecaster`` command; returns the exit code.

    Every command runs through :func:`forecaster.jobs.translated_errors`, so a failure
    is one of forecaster's errors with its documented exit code; ``--verbose`` adds the
    traceback on stderr without changing the code.
    """
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    usage = io.StringIO()  # with --json-logs, a usage error is one JSON record on stderr
    try:
        captured = contextlib.redirect_stderr(usage) if "--json-logs" in raw else None
        with captured or contextlib.nullcontext():
            args = parser.parse_args(raw)
    except SystemExit as exc:  # --help, --version, or a bad argument (usage printed, code 2)
        if usage.getvalue().strip():
            print(_usage_record(usage.getvalue()), file=sys.stderr)
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else 2
    log = _Logger(args.quiet, args.json_logs)
    try:
        with _sigterm_interrupts(), _warnings_shown_by(log, args.quiet):
            # The heavy modules (PyTorch, Polars, ...) are imported once a command runs, not
            # for --help, --version or a usage error (see forecaster.jobs.parser).
            from forecaster.data.duplicates import spec_words
            from forecaster.jobs import commands
            from forecaster.jobs.entry_errors import translated_errors
            from forecaster.training import distributed

            if not distributed.is_main_process():  # under torchrun only rank 0 reports
                args.quiet, args.json_logs = True, False
                log.quiet, log.json_logs = True, False
            if args.quiet or args.json_logs:
                args.progress = False
            with (
                _logging_to(
                    args.quiet,
                    args.verbose,
                    args.json_logs,
                    optuna=args.command in _TUNING_COMMANDS,
                    mlflow=args.command in _TRACKING_COMMANDS,
                ),
                translated_errors(f"forecaster {args.command}"),
                each_warning_once(),  # a log tells each fact once (fit, calibration, backtest)
                # a duplicate row's fix names the spec's key, not id_col=; --folds, which
                # overrides [evaluation] backtest_folds, is named as itself
                spec_words(_options_given(args)),
            ):
                return getattr(commands, args.handler)(args, log)
    except Terminated as exc:  # after the cleanups: the previous SIGTERM handler is back
        log(f"error: terminated (SIGTERM); {_interrupted_state(exc)}", "error")
        return EXIT_TERMINATED
    except KeyboardInterrupt as exc:  # Ctrl-C, after the cleanups
        log(f"error: interrupted (Ctrl-C); {_interrupted_state(exc)}", "error")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`forecaster ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        code, what = _exit_code(exc)
        log(f"error: {what}: {exc}", "error")
        if args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        return code


def _options_given(args: argparse.Namespace) -> dict[str, str]:
    """The parameters that the command line sets over the spec's keys (``--folds``), as the
    advice of a refusal names them (:func:`~forecaster.data.wording.spec_words`)."""
    return {"folds": "--folds"} if getattr(args, "folds", None) is not None else {}


def _interrupted_state(interrupt: KeyboardInterrupt) -> str:
    """What an interrupted command did and what is left: the note of a run whose outputs
    were published before it came (``Publication.tell``: complete, and the steps after it
    that did not run), else that the command must run again."""
    notes = getattr(interrupt, "__notes__", None)
    if notes:
        return "; ".join(notes)
    return (
        "run the command again to finish it (run and fit: --resume continues an interrupted "
        "fit from its checkpoints)"
    )


@contextlib.contextmanager
def _warnings_shown_by(log: _Logger, quiet: bool) -> Iterator[None]:
    """Show the command's warnings (those of the thread that enters the block: the command
    runs there) as one line (``warning: ...`` on stderr, or a JSON record with
    ``--json-logs``) instead of Python's two lines with a source line; none with ``--quiet``.

    Only ``warnings.showwarning`` is set, and put back at the end if it is still this
    block's; the warning filters are left alone (no ``warnings.catch_warnings()`` around the
    command, which put back the whole process's filters at its end: a filter that another
    thread added meanwhile was lost, and a ``catch_warnings`` block of another thread that
    outlived the command put this printer back for good). ``warnings.showwarning`` is the
    process's: a warning of another thread (a command run in-process by :func:`main` beside
    the caller's own threads), and every warning once the command has ended, go to the
    ``showwarning`` there was before, as if the command did not run (that one is put back
    when another command's printer ended on top of this one: :func:`_live_printer`)."""
    with catching_warnings():  # nothing changed: Python forgets which warnings it showed
        pass  # (the default filter's record), so each command's log tells its own warnings
    previous = warnings.showwarning
    command_thread = threading.get_ident()
    running = True

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not running or threading.get_ident() != command_thread:
            previous(message, category, *args, **kwargs)
        elif log.json_logs:
            log(str(message), "warning", category=category.__name__)
        elif not quiet:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        running = False
        if warnings.showwarning is show:
            warnings.showwarning = _live_printer(previous)
        else:  # another in-process command's printer is on top: that one puts back ours'
            _ENDED_PRINTERS[show] = previous


_ENDED_PRINTERS: weakref.WeakKeyDictionary[Callable[..., None], Callable[..., None]] = (
    weakref.WeakKeyDictionary()
)
"""The printers of in-process commands that ended while another command's printer was set on
top of theirs (two :func:`main` in two threads), each with the ``showwarning`` it passes on
to: the printer on top puts that one back, not the ended printer (which every such overlap
left installed for good, one more in the chain each time). Weak: a printer that nothing
calls any more is forgotten."""


def _live_printer(printer: Callable[..., None]) -> Callable[..., None]:
    """``printer``, or, when it is an ended command's (:data:`_ENDED_PRINTERS`), the first
    ``showwarning`` below it that is not."""
    while printer in _ENDED_PRINTERS:
        printer = _ENDED_PRINTERS.pop(printer)
    return printer


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

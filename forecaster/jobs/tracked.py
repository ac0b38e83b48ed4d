"""MLflow tracking of a pipeline run, as its spec's ``[tracking]`` section asks.

Tracking is opt-in: a fit logs to MLflow only under ``tracking.autolog()`` or with a
``tracking.FitLogger`` callback. A spec whose ``[tracking] enabled`` (the default) asks for it, so
:func:`tracked_run` opens the run's MLflow run and :func:`logged_fits` registers a
``FitLogger`` for the fits of the run's model (the fit, or the refit of a tuning) and for
nothing else: the backtest's fit and the tuning trials are not models of the run. The model
is logged when the :func:`logged_fits` block ends (``tracking.deferred()``), so the
calibration of the spec's ``[output] levels`` in the block is in the logged (and registered)
model.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import polars as pl

from forecaster.evaluation.score_names import COUNTS
from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.jobs.spec import Spec, first_line

__all__ = [
    "HOLIDAYS_PARAM",
    "HOST_TAG",
    "INTERRUPTED_TAG",
    "PID_TAG",
    "RUN_ARTIFACTS",
    "close_dead_runs",
    "log_outputs",
    "logged_fits",
    "masked",
    "study_tracking",
    "tracked_run",
    "tracking_paused",
    "tracking_uri",
]

HOLIDAYS_PARAM = "model_skips_holidays"
"""The MLflow param of a pipeline run whose spec lists ``[series] holidays`` (copied onto the
model logged in it, as its other params are): ``"false ..."``, saying that the model, native or
served (its pyfunc), dates its forecasts on every weekday, holidays included, unlike the run's
``forecasts.parquet`` (:func:`~forecaster.jobs.schedule.finish_forecast`)."""

HOST_TAG = "forecaster.host"
"""The MLflow tag of a pipeline run naming the host of its process: its name, its machine
identity (:data:`MACHINE_ID_FILES`: two machines named ``localhost`` are two hosts) and its
process-id namespace where the system has them (containers that share a host name have their
own process ids; every Linux host's first namespace is ``pid:[4026531836]``)."""

MACHINE_ID_FILES = ("/etc/machine-id", "/proc/sys/kernel/random/boot_id")
"""Where the identity of this machine is read, first found first. Without one, host names
and process-id namespaces cannot tell two machines apart: no run is closed as dead."""

PID_TAG = "forecaster.pid"
"""The MLflow tag of a pipeline run holding the id of its process on :data:`HOST_TAG`."""

INTERRUPTED_TAG = "forecaster.interrupted"
"""The MLflow tag of a pipeline run interrupted (Ctrl-C, ``SIGTERM``) once its outputs were
published: the run ends FINISHED, as its ``summary.json`` says "completed" (the outputs are
complete), and the command exits as interrupted; the value says what came and when."""

RUN_ARTIFACTS = ("forecasts.parquet", "backtest.parquet", "forecast.png", "summary.json")
"""The files of a run's outputs logged as artifacts of its MLflow run, under ``outputs/``
(:func:`log_outputs`; those the run wrote): ``summary.json`` too, so that a scheduler reading
the MLflow run sees the series it dropped, left out or found stale, and why."""


@contextlib.contextmanager
def study_tracking(spec: Spec, root: Path) -> Iterator[bool]:
    """Within the block, a study of the spec logs to its experiment (``tracking.experiment_scope``;
    the process's own MLflow experiment is unchanged after it) on the store of the project
    ``root`` (:func:`tracking_uri`): yields True, or False when
    tracking is off, unavailable (a warning says why) or mlflow is not installed. MLflow's
    INFO records are kept out within the block, as in :func:`tracked_run`."""
    if not spec.tracking.enabled:
        yield False
        return
    try:
        import forecaster.tracking as tracking
        import mlflow  # noqa: F401  (imported before _quiet_mlflow: its import resets the level)
    except ImportError:
        yield False
        return
    with contextlib.ExitStack() as scope:
        # MLflow's INFO records kept out, as in a run's tracking
        scope.enter_context(_quiet_mlflow())
        scope.enter_context(_project_fallback(root))
        try:
            with tracking.bounded_requests():
                experiment = spec.tracking.experiment or spec.pipeline.name
                uri = tracking_uri(root)
                scope.enter_context(tracking.experiment_scope(experiment, tracking_uri=uri))
        except Exception as exc:  # tracking must never stop the job
            _warn_unavailable(exc, "the study is not logged")
            yield False
            return
        yield True


def tracking_uri(root: Path) -> str:
    """The MLflow store of the pipelines of the project ``root``: ``MLFLOW_TRACKING_URI`` when
    set, else ``mlflow/mlflow.db`` in the project folder (never the working directory's), as
    an absolute URI (``tracking.default_tracking_uri(root)``), so that a run started from
    any directory uses, and records, the project's store."""
    import forecaster.tracking as tracking  # imported by its callers' blocks: mlflow is there

    return tracking.default_tracking_uri(root)


def _project_fallback(root: Path) -> contextlib.AbstractContextManager[None]:
    """The block in which the fits of a pipeline of the project ``root`` that could not be
    logged leave their records in ``mlflow/unlogged`` of the project folder, beside its
    tracking store (not the working directory's; ``tracking.configure(fallback_dir=...)``
    still wins)."""
    from forecaster.tracking.config import DEFAULT_FALLBACK_DIR
    from forecaster.tracking.resilience import fallback_root_default

    return fallback_root_default(Path(root) / DEFAULT_FALLBACK_DIR)


def _warn_unavailable(exc: Exception, consequence: str) -> None:
    """The warning of a tracking failure that the job goes on without, at the user's line
    that started the job."""
    message = f"MLflow tracking is unavailable ({masked(first_line(exc))}); {consequence}."
    warn_at_caller(message, ForecasterWarning)


def masked(text: str) -> str:
    """``text`` with the passwords of URIs in it masked (tracking's rule, when installed)."""
    try:
        import forecaster.tracking as tracking
    except ImportError:
        return text
    return tracking.mask_uri(text)


def tracking_paused() -> contextlib.AbstractContextManager[None]:
    """No fit logs within the block (tracking's own switch; nothing to pause without it)."""
    try:
        import forecaster.tracking as tracking
    except ImportError:
        return contextlib.nullcontext()
    return tracking.paused()


def tracking_deferred() -> contextlib.AbstractContextManager[None]:
    """Fits and studies that end within the block log their model when it ends
    (``tracking.deferred()``: calibrate the model in the block, and it is logged calibrated;
    nothing to defer without tracking)."""
    try:
        import forecaster.tracking as tracking
    except ImportError:
        return contextlib.nullcontext()
    return tracking.deferred()


@contextlib.contextmanager
def tracked_run(
    spec: Spec,
    as_of: str,
    log: Callable[[str], None],
    *,
    kind: Literal["run", "fit"],
    root: Path,
    complete: Callable[[], bool] = lambda: False,
) -> Any:
    """An active MLflow run for the pipeline, yielding ``(run_id, tracking_uri)``, or
    ``(None, None)`` when tracking is off or mlflow is not installed. Fits inside it log into
    it only within :func:`logged_fits`. The run goes to the store of the project ``root``
    (:func:`tracking_uri`; the URI yielded is absolute for a SQLite store).

    The run is tagged ``pipeline``, ``as_of``, ``forecaster.kind`` = ``kind`` (the command:
    ``run`` or ``fit``; the fit logged into it keeps it) and with its process
    (:data:`HOST_TAG`, :data:`PID_TAG`); it ends FINISHED, FAILED after an error, or KILLED after a
    ``KeyboardInterrupt`` (Ctrl-C, or ``SIGTERM`` under the ``forecaster`` command) - unless
    ``complete()`` is then true (the run's outputs are published: they are complete, and its
    ``summary.json`` says "completed"): FINISHED, tagged :data:`INTERRUPTED_TAG`, and the
    interrupt goes on. Callers hold the lock of what the run writes: runs of the same pipeline
    and as-of left RUNNING by a process of this host that is gone (killed outright) are marked
    KILLED, with a ``log`` line (:func:`close_dead_runs`)."""
    if not spec.tracking.enabled:
        yield None, None
        return
    with _mlflow_run(spec, as_of, log, kind, root, complete) as found:
        yield found


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's INFO records and artifact progress bars off for the block, entered once mlflow
    is imported (its import sets the ``mlflow`` logger to INFO again); the ``mlflow`` logger's
    level and ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` are put back afterwards (a library call
    leaves the process as it found it; a value the user set stays). A stricter level than
    WARNING (the user's ERROR) is kept, and so is a level or a variable changed inside the
    block."""
    logger, variable = logging.getLogger("mlflow"), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    level, previous = logger.level, os.environ.get(variable)
    os.environ.setdefault(variable, "false")
    raised = logger.getEffectiveLevel() < logging.WARNING
    if raised:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        if raised and logger.level == logging.WARNING:
            logger.setLevel(level)
        if previous is None and os.environ.get(variable) == "false":
            os.environ.pop(variable, None)


@contextlib.contextmanager
def _mlflow_run(
    spec: Spec,
    as_of: str,
    log: Callable[[str], None],
    kind: str,
    root: Path,
    complete: Callable[[], bool],
) -> Any:
    """:func:`tracked_run` of a spec that asks for tracking."""
    try:
        import forecaster.tracking as tracking
        import mlflow
        from forecaster.tracking.records import KIND_TAG, created_run, tracking_write
        from forecaster.tracking.store import store_client
        from forecaster.tracking.surrounding import environment_run_id
    except ImportError:  # a warning, not only a step line: the spec asked for tracking
        warn_at_caller(
            "This run is not tracked: [tracking] enabled = true (the default) needs MLflow, "
            'which is not installed. Install it with pip install "forecaster-rnn[track]", or set '
            "[tracking] enabled = false.",
            ForecasterWarning,
        )
        yield None, None
        return
    # tagged as it starts: a process killed at any later moment leaves a run it can be found by
    tags = {"pipeline": spec.pipeline.name, "as_of": as_of, KIND_TAG: kind, **_process_tags()}

    def kill(run_id: str) -> None:  # a run started as Ctrl-C came: not active, and KILLED
        tracking_write(mlflow.end_run, status="KILLED")

    with _quiet_mlflow(), tracking.bounded_requests(), contextlib.ExitStack() as scope:
        scope.enter_context(_project_fallback(root))
        try:  # a server that dies mid-run costs seconds per call (bounded_requests)
            if environment_run_id() is not None:  # inside `mlflow run`: log into its run
                uri = tracking_uri(root)
                mlflow.set_tracking_uri(uri)
                run = created_run(mlflow.start_run, kill, tags=tags)
            else:  # the spec's experiment, for this run only (the process's is unchanged)
                experiment = spec.tracking.experiment or spec.pipeline.name
                scoped = tracking.experiment_scope(experiment, tracking_uri=tracking_uri(root))
                target = scope.enter_context(scoped)
                uri = target.tracking_uri
                run = created_run(
                    mlflow.start_run,
                    kill,
                    experiment_id=target.experiment_id,
                    run_name=f"{spec.pipeline.name}-{as_of}",
                    tags=tags,
                )
        except Exception as exc:  # tracking must never stop the job
            _warn_unavailable(exc, "the pipeline runs without it")
            yield None, None
            return
        status = "FAILED"
        try:
            close_dead_runs(store_client(mlflow, uri), run.info, log)
            _state_unskipped_holidays(store_client(mlflow, uri), run.info.run_id, spec, log)
            yield run.info.run_id, uri
            status = "FINISHED"
        except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: stopped by its user
            status = "KILLED"  # as MLflow says; FINISHED once the outputs are published
            if complete():
                status = "FINISHED"
                _tag_interrupted(mlflow, run.info.run_id, interrupt)
            raise
        finally:
            with contextlib.suppress(Exception):
                tracking_write(mlflow.end_run, status=status)


def _state_unskipped_holidays(
    client: Any, run_id: str, spec: Spec, log: Callable[[str], None]
) -> None:
    """For a spec with ``[series] holidays``: a ``log`` line and the run's
    :data:`HOLIDAYS_PARAM`, which the model logged in the run copies, saying that the model
    (native and pyfunc) does not skip the holidays its run's forecasts skip. A store that fails
    to take the param is a ``log`` line: tracking never stops the job."""
    from forecaster.tracking.records import log_params

    holidays = sorted(spec.series.holidays)
    if not holidays:
        return
    value = (
        "false: the model (forecaster.load, its MLflow pyfunc) dates step k on the k-th weekday "
        "after the origin, holidays included; the run's forecasts.parquet skips the "
        f"{len(holidays)} series.holidays ({holidays[0]} to {holidays[-1]})"
    )
    log(
        "tracking: the logged model steps on every weekday: its forecasts are not dated past "
        f"series.holidays as forecasts.parquet is (param {HOLIDAYS_PARAM})"
    )
    try:
        log_params(client, run_id, {HOLIDAYS_PARAM: value})
    except Exception as exc:
        log(f"tracking: could not log the param {HOLIDAYS_PARAM}: {masked(first_line(exc))}")


def _tag_interrupted(mlflow: Any, run_id: str, interrupt: KeyboardInterrupt) -> None:
    """Tag the run ``run_id`` :data:`INTERRUPTED_TAG`: ``interrupt`` came once its outputs
    were published (a store that fails to take it costs the tag only)."""
    from forecaster.tracking.records import log_tags
    from forecaster.tracking.store import store_client

    what = type(interrupt).__name__ + (f" ({interrupt})" if str(interrupt) else "")
    value = (
        f"{what} once the outputs were published: they are complete and summary.json says "
        "completed; the command exited as interrupted (a second interrupt may have cut short "
        "the model's registration, which summary.json's registration then claims, the logging "
        "of the outputs and the latest.json pointer: a rerun skips published outputs, so "
        "rerun with --force to redo them)"
    )
    with contextlib.suppress(Exception):
        log_tags(store_client(mlflow, mlflow.get_tracking_uri()), run_id, {INTERRUPTED_TAG: value})


def _process_tags() -> dict[str, str]:
    """:data:`HOST_TAG` and :data:`PID_TAG` of this process."""
    host = socket.gethostname()
    machine = _machine_identity()
    if machine is not None:
        host = f"{host} machine:{machine}"
    with contextlib.suppress(OSError):  # Linux: the process-id namespace (a container's own)
        host = f"{host} {os.readlink('/proc/self/ns/pid')}"
    return {HOST_TAG: host, PID_TAG: str(os.getpid())}


def close_dead_runs(client: Any, run: Any, log: Callable[[str], None]) -> list[str]:
    """Mark KILLED the runs of ``run``'s experiment with its ``pipeline`` and ``as_of`` tags
    that are still RUNNING although their process, on this host, is gone (killed outright:
    ``kill -9``, out of memory); returns their ids. ``run`` (an MLflow ``RunInfo``) is the
    caller's new run, and the caller holds the lock of what such runs write, so no other run of
    them is writing. Never a run of this process, of another host (this host cannot tell
    whether its process is alive: a ``log`` line names it) or without :data:`PID_TAG` (an
    earlier version's); a process id that is alive (or in use again) keeps its run RUNNING.
    Where processes cannot be probed (not POSIX) nothing is closed. A failure is a ``log``
    line: tracking never stops the job."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return []
    from forecaster.tracking.records import end_run

    try:
        tags = client.get_run(run.run_id).data.tags
        query = (
            f"tags.pipeline = '{tags['pipeline']}' and tags.as_of = '{tags['as_of']}' "
            "and attributes.status = 'RUNNING'"
        )
        found = client.search_runs([run.experiment_id], query, max_results=1000)
        closed = []
        for other in found:
            state = _process_state(other.data.tags, other.info.run_id, run.run_id)
            name = f"run {other.info.run_id} of {tags['pipeline']} as of {tags['as_of']}"
            if state == "dead":
                end_run(client, other.info.run_id, "KILLED")
                closed.append(other.info.run_id)
                where = f"process {other.data.tags[PID_TAG]} on {other.data.tags[HOST_TAG]}"
                log(f"tracking: {name} was left RUNNING by {where}, which is gone; marked KILLED")
            elif state == "elsewhere":
                log(
                    f"tracking: {name} is RUNNING in process {other.data.tags.get(PID_TAG)} on "
                    f"{other.data.tags.get(HOST_TAG)}; left as it is (this host cannot tell "
                    "whether that process is alive)"
                )
        return closed
    except Exception as exc:
        log(f"tracking: could not look for runs left RUNNING ({masked(first_line(exc))})")
        return []


def _machine_identity() -> str | None:
    """The first identity :data:`MACHINE_ID_FILES` holds (None: none is readable)."""
    for file in MACHINE_ID_FILES:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            with open(file, encoding="ascii") as handle:
                text = handle.read(128).strip()
            if text and text.replace("-", "").isalnum():
                return text
    return None


def _process_state(tags: dict[str, str], run_id: str, own: str) -> str:
    """``"dead"``: the run's process is of this host and gone; ``"elsewhere"``: of another host,
    or of a host this one cannot tell apart from itself (no machine identity); ``"alive"``:
    this process's run, a live process's, or one that recorded no process."""
    pid = tags.get(PID_TAG, "")
    if run_id == own or not pid.isdigit():
        return "alive"
    if tags.get(HOST_TAG) != _process_tags()[HOST_TAG] or _machine_identity() is None:
        return "elsewhere"
    if int(pid) == os.getpid() or int(pid) <= 0:
        return "alive"
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return "dead"
    except OSError:  # PermissionError: it exists (another user's)
        return "alive"
    return "alive"


def logged_fits(run_id: str | None) -> contextlib.AbstractContextManager[None]:
    """Within the block, every fit of this thread logs into the active MLflow run ``run_id`` of
    :func:`tracked_run` (a ``tracking.FitLogger`` registered as a default fit callback, for the
    block only; not a second one when ``tracking.autolog()`` already gives every fit one);
    nothing when ``run_id`` is None (tracking off or unavailable). Fits under
    ``tracking.paused()`` (tuning trials, calibration clones) are not logged. A fit's end
    (final metrics, plot, model) is logged when the block ends (``tracking.deferred()``):
    calibrate the model inside the block, and the logged model is the calibrated one."""
    if run_id is None:
        return contextlib.nullcontext()
    return _registered_fit_logger()


@contextlib.contextmanager
def _registered_fit_logger() -> Iterator[None]:
    import forecaster.tracking as tracking
    from forecaster.training.callbacks import register_fit_callback, unregister_fit_callback

    with tracking.deferred():  # the model is logged as the block leaves it (calibrated)
        if tracking.autolog_enabled():
            yield
            return
        thread = threading.get_ident()  # MLflow's active run is per thread: so is this scope

        def fit_logger(estimator: Any, data: Any) -> Any:
            return tracking.FitLogger() if threading.get_ident() == thread else None

        handle = register_fit_callback(fit_logger)
        try:
            yield
        finally:
            unregister_fit_callback(handle)


def log_outputs(
    run_id: str | None,
    metrics: dict[str, float],
    calibration: dict[str, Any] | None,
    folder: Path,
    backtest_calibration: dict[str, Any] | None = None,
) -> None:
    """Log a pipeline run's outputs into its MLflow run ``run_id`` (nothing when None): its
    ``metrics`` (``pipeline_<name>``), the plan of its model's ``calibration`` (params
    ``calibration.<key>``, when it was calibrated) and of its backtest's clone
    (``backtest_calibration``: params ``backtest_calibration.<key>``, when the backtest scored
    intervals; ``summary.json`` records both), the metrics by horizon step and the files
    :data:`RUN_ARTIFACTS` in ``folder`` (artifacts under ``outputs/``). Call it once the
    outputs are published in ``folder`` and the model registered
    (:func:`~forecaster.jobs.registration.register_run_model`, whose outcome ``summary.json``
    records): a run whose publishing fails logs no
    ``summary.json`` saying "completed" (its MLflow run ends FAILED, or KILLED)."""
    if run_id is None:
        return
    try:
        import forecaster.tracking as tracking
        import mlflow

        with tracking.bounded_requests():
            _log_run_outputs(mlflow, run_id, metrics, folder)
    except Exception as exc:
        warn_at_caller(
            f"Could not log the pipeline outputs to MLflow ({masked(str(exc))}); they are still "
            "written locally.",
            ForecasterWarning,
        )
    # after the outputs: a refused param cannot lose them
    for prefix, plan in (
        ("calibration", calibration),
        ("backtest_calibration", backtest_calibration),
    ):
        if plan is not None:
            _log_calibration(run_id, plan, prefix)


def _log_calibration(run_id: str, calibration: dict[str, Any], prefix: str) -> None:
    """Log the plan of a calibration as params ``<prefix>.<key>`` of ``run_id`` (a warning
    when MLflow refuses them, e.g. a run of ``mlflow run`` that holds other values)."""
    try:
        import forecaster.tracking as tracking
        import mlflow
        from forecaster.tracking.records import log_params, param_value
        from forecaster.tracking.store import store_client

        params = {f"{prefix}.{k}": param_value(v) for k, v in calibration.items()}
        with tracking.bounded_requests():
            log_params(store_client(mlflow, mlflow.get_tracking_uri()), run_id, params)
    except Exception as exc:
        warn_at_caller(
            f"Could not log the {prefix.replace('_', ' ')} plan to MLflow ({masked(str(exc))}); "
            f"summary.json holds it ({prefix}).",
            ForecasterWarning,
        )


def _log_run_outputs(mlflow: Any, run_id: str, metrics: dict[str, float], folder: Path) -> None:
    from mlflow.entities import Metric

    from forecaster.tracking.records import backtest_key, log_metrics, now_ms, target_key_parts
    from forecaster.tracking.store import store_client

    ts = now_ms()
    # finite scores only, as the fit's backtest metrics: MLflow's SQL store keeps inf (an
    # infinite MAPE, written null in summary.json) as 1.8e308
    logged = [
        Metric(f"pipeline_{k}", float(v), ts, 0) for k, v in metrics.items() if math.isfinite(v)
    ]
    if (folder / "backtest_by_step.parquet").is_file():  # metrics by horizon step
        by_step = pl.read_parquet(folder / "backtest_by_step.parquet")
        counts = ("step", "target", *COUNTS)  # keys and counts
        names = [c for c in by_step.columns if c not in counts]
        several = "target" in by_step.columns and by_step["target"].n_unique() > 1
        targets = by_step["target"].unique(maintain_order=True).to_list() if several else []
        parts = target_key_parts(targets)
        for row in by_step.iter_rows(named=True):
            for name in names:  # one metric per target, as the fit's own backtest metrics
                key = backtest_key(name, parts[row["target"]] if several else None)
                if row[name] is not None and math.isfinite(row[name]):
                    step = int(row["step"])
                    logged.append(Metric(f"{key}_by_step", float(row[name]), ts, step))
    # batched, each batch as the fit's metrics are written: an interrupt waits for its end
    log_metrics(store_client(mlflow, mlflow.get_tracking_uri()), run_id, logged)
    for name in RUN_ARTIFACTS:
        if (folder / name).is_file():
            mlflow.log_artifact(str(folder / name), artifact_path="outputs")  # files, no row

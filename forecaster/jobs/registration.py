"""Registering a pipeline run's model in the MLflow model registry, once its outputs are
published, as :func:`~forecaster.jobs.pointer.registration_plan` decides: what really
happened is returned for the run's ``summary.json``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.jobs.spec import first_line
from forecaster.jobs.tracked import masked

__all__ = ["register_run_model", "version_tags"]


def register_run_model(
    run_id: str | None,
    plan: dict[str, Any] | None,
    tags: dict[str, str],
    log: Callable[[str], None],
) -> dict[str, Any] | None:
    """Register the model fitted and logged in the MLflow run ``run_id`` as ``plan["name"]``,
    the version tagged with ``tags`` (the run's as-of and kind), as the run's
    :func:`~forecaster.jobs.pointer.registration_plan` says (nothing when ``plan`` is None;
    a ``log`` line saying why not when its ``new_version`` is False: an untracked run, a
    backfill, or a reused model). Called once the run's outputs are published, so a run
    that fails adds no version to the registry (a scheduler's retries would add one each).
    MLflow's own lines ("Created version '3' of model ...", which it prints on standard
    error) go to ``log``: ``--quiet`` prints nothing, ``--json-logs`` JSON only. A failure is
    a warning: the outputs are written.

    Returns
    -------
    dict or None
        What really happened, in the shape of ``plan`` (the summary's ``registration``):
        ``plan`` itself, or, where it asked for a new version that was not registered,
        ``new_version`` False and the ``reason`` (no model fitted and logged in this run, or
        the registration failed, with MLflow's error).
    """
    if plan is None:
        return None
    register_as = plan["name"]
    if not plan["new_version"] or run_id is None:
        log(f"tracking: no new version of {register_as!r} registered: {plan['reason']}")
        return plan
    try:
        import forecaster.tracking as tracking
        import mlflow
        from forecaster.tracking.records import tracking_write

        fitted = tracking.last_fit()
        if fitted is None or fitted.run_id != run_id or not fitted.model_uri:
            reason = (  # a reused model was fitted (and logged) by an earlier run
                f"no model fitted in this run to register as {register_as!r} (a reused model "
                "stays registered from the run that fitted it)"
            )
            log(f"tracking: {reason}")
            return {**plan, "new_version": False, "reason": reason}
        with _STDERR.of_this_thread() as printed:
            try:
                with tracking.bounded_requests():
                    tracking_write(mlflow.register_model, fitted.model_uri, register_as, tags=tags)
            finally:
                for line in printed.getvalue().splitlines():
                    if line.strip():
                        log(f"tracking: {line.strip()}")
    except Exception as exc:
        error = masked(first_line(exc))
        warn_at_caller(
            f"Could not register the run's model as {register_as!r} in MLflow ({error}); the "
            "outputs are written, and their summary.json says so (registration.new_version: "
            "false).",
            ForecasterWarning,
        )
        reason = f"the registration in MLflow failed ({error})"
        return {**plan, "new_version": False, "reason": reason}
    return plan


class _StderrByThread:
    """``sys.stderr`` while models are registered: what a registering thread writes goes into
    its own buffer, what the others write to the stream there was before. Not
    ``contextlib.redirect_stderr``, which swaps the process's stream: two in-process runs
    registering at once logged each other's MLflow lines, another thread's error went into a
    run's log, and the stream the later one put back was the other's buffer, for good (every
    later error of the process lost)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.below: Any = None  # the stream every other thread writes to meanwhile
        self.buffers: dict[int, io.StringIO] = {}

    @contextlib.contextmanager
    def of_this_thread(self) -> Iterator[io.StringIO]:
        """Within the block, this thread's standard error (``print(file=sys.stderr)``, as
        MLflow prints) into the buffer given; ``sys.stderr`` is put back when the last
        thread's block ends (unless something else replaced it meanwhile)."""
        me, buffer = threading.get_ident(), io.StringIO()
        with self.lock:
            if not self.buffers:
                self.below, sys.stderr = sys.stderr, self  # type: ignore[assignment]
            self.buffers[me] = buffer
        try:
            yield buffer
        finally:
            with self.lock:
                del self.buffers[me]
                if not self.buffers and sys.stderr is self:
                    sys.stderr = self.below

    def _stream(self) -> Any:
        buffer = self.buffers.get(threading.get_ident())
        return self.below if buffer is None else buffer

    def write(self, text: str) -> int:
        """Write ``text`` to this thread's buffer, or to the stream below."""
        return int(self._stream().write(text))

    def flush(self) -> None:
        """Flush this thread's buffer, or the stream below."""
        self._stream().flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno: the stream's
        return getattr(self.below, name)


_STDERR = _StderrByThread()
"""The one ``sys.stderr`` of the process's registrations (see :class:`_StderrByThread`)."""


def version_tags(pipeline: str, when: Any, kind: str) -> dict[str, str]:
    """The tags of the model version a run registers: its ``pipeline``, its as-of (``when``'s
    label and effective as-of) and its ``kind`` (``fit``, or ``tune``: the model was tuned)."""
    return {
        "forecaster.pipeline": pipeline,
        "forecaster.as_of": when.label,
        "forecaster.effective_as_of": when.effective,
        "forecaster.run_kind": kind,
    }

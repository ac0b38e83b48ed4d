"""Logging a fit: one MLflow run per fit, written live by the fit callback :class:`FitLogger`
or afterwards by :func:`log_fit`.

When a fit is logged
--------------------
Tracking is opt-in and explicit. A fit is logged when it has a :class:`FitLogger` among its
callbacks (``model.fit(frame, callbacks=[tracking.FitLogger()])``) or after :func:`autolog`,
which registers a factory giving every later fit one
(:func:`forecaster.training.callbacks.register_fit_callback`; ``autolog(False)`` or
``autolog(disable=True)`` unregisters it). Fitting inside ``with mlflow.start_run():``
*without* either no longer logs (earlier versions looked for an active run at every fit).
The first logged fit inside an active run logs into it; later fits inside the same active run
(e.g. a grid search) log into nested child runs. With no active run, the run that
``MLFLOW_RUN_ID`` names (``mlflow run`` sets it; ``mlflow.start_run()`` resumes it) counts
as the active run; without either, a run is started and ended around each fit.
:func:`~forecaster.tracking.blocks.paused` switches logging off for a block (tuning uses it:
trials are logged by :func:`~forecaster.tracking.trial_callback` instead);
:func:`~forecaster.tracking.blocks.deferred` logs the end of a fit (final metrics, plot,
model) when a block ends, so that what the block does to the fitted model (e.g.
``calibrate``) is in the logged model. Under torchrun only rank 0 logs. :func:`last_fit`
returns what the latest fit logged (run ID, model URI, what failed).

When a request fails because the backend is unreachable, live logging stops for the rest of
the fit. At the end of the fit the server is probed again (whenever a request failed, however
recently): if it answers, what was missed is logged (the epoch history is complete) and the
run is ended; if not, the model plus everything that was not logged go to a fallback folder
(see :mod:`forecaster.tracking.resilience`), and a run created before the server went away
stays RUNNING on it. A fit that raises leaves its own run FAILED, tagged
``forecaster.fit_error`` with the error (a run it logged into that is not its own is tagged
only). That includes a fit rolled back because a callback's ``on_fit_end`` raised after
training: the end of a fit is logged only once every callback's ``on_fit_end`` returned, so
a rolled-back fit logs no model, whatever the callbacks' order. A ``KeyboardInterrupt``
(Ctrl-C) while the end of a fit is logged (or in any callback's ``on_fit_end``, before or
after the logger's) leaves the estimator fitted (training had completed) and its own run
KILLED; a warning says what was not logged, and the model and those records go to a
fallback folder, before the interrupt goes on.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    NotFittedError,
    warn_at_caller,
)
from forecaster.tracking.blocks import defer
from forecaster.tracking.config import (
    bounded_requests,
    check_flag,
    check_optional_name,
    import_mlflow,
    short_error,
    state,
)
from forecaster.tracking.fingerprint import training_data
from forecaster.tracking.fitlog import FitLog, log_fitted
from forecaster.tracking.fitrun import TrackedFit
from forecaster.tracking.records import check_backtest, run_collisions
from forecaster.tracking.resilience import Outcome
from forecaster.tracking.surrounding import nested_parent, resolve_run, stored_run
from forecaster.tracking.target import create_run, experiment_for_new_run
from forecaster.training.callbacks import (
    FitCallbackHandle,
    after_fit_end,
    default_callbacks_withheld,
    register_fit_callback,
    unregister_fit_callback,
)
from forecaster.training.distributed import is_main_process

__all__ = [
    "FitLogger",
    "autolog",
    "autolog_enabled",
    "last_fit",
    "log_fit",
]


def log_fit(
    estimator: Any,
    frame: Any,
    *,
    run: Any = None,
    backtest: Any = None,
    plot: bool = True,
    register_as: str | None = None,
) -> FitLog:
    """Log a fitted estimator to MLflow: params, dataset fingerprint, history, metrics, plot and
    the pyfunc model.

    Parameters
    ----------
    estimator : RNNForecaster or RNNRegressor
        Fitted.
    frame : polars.DataFrame, polars.LazyFrame or tuple
        The training frame (``(X, y)`` for an RNNRegressor). Checked before a run is opened
        against what the estimator records of its training data: the columns and dtypes,
        the series (``keys_``; also a long enough series the model does not know) and the
        last time of each (``train_end_``).
    run : mlflow.entities.Run or str, optional
        Run (or run ID) to log into; refused when it already holds records the fit's would
        replace or mix with (another fit's metrics, ``dataset.json``, ``forecast.png``, a
        ``model``, params of other values). Default the active run (a nested run of it, with
        a warning, when it holds such records or a fit was logged into it), else the run
        ``MLFLOW_RUN_ID`` names (likewise), else a new run (in the experiment chosen as
        described in the module docstring) that is ended afterwards.
    backtest : BacktestResult or polars.DataFrame, optional
        A :class:`~forecaster.evaluation.backtest.BacktestResult` (its ``by_step`` and ``aggregate``
        tables), or a frame of backtest metrics, one row per (fold, horizon step) or per step:
        numeric columns are metrics; a ``step`` (or ``horizon_step``, ``h``, ``horizon``)
        column gives the step, a ``target`` column the target. Logged as
        ``backtest_<metric>`` per step (mean over folds) plus ``backtest_<metric>_overall``
        (``backtest_<target>_<metric>`` for several targets, the characters MLflow refuses
        in a key, e.g. ``(``, written ``_``), and the table as ``backtest.csv``.
    plot : bool, default True
        Log ``forecast.png`` (forecasters only; see :func:`forecast_plot`).
    register_as : str, optional
        Register the model in the model registry under this name.

    Returns
    -------
    FitLog
        Run ID, model URI (for :func:`mlflow.pyfunc.load_model`), registered version, and
        where things went when logging failed (then a ForecasterWarning says so).

    Raises
    ------
    NotFittedError
        When ``estimator`` is not fitted.
    DataValidationError
        Before anything is logged or written: an estimator whose parameters that shape
        predictions were changed since its fit (``set_params``; it could not be saved), a
        ``frame`` that is not the training data (not a polars frame, without the training
        columns and dtypes, other series or series that end at other times, naming what
        differs; for an RNNRegressor not ``(X, y)`` of its window shape), a ``backtest``
        that is no backtest, a ``plot`` that is not a bool, a ``run`` or ``register_as`` of
        the wrong type, a ``run`` that holds another fit's records (see ``run``), a ``run``
        or ``MLFLOW_RUN_ID`` that names a run the store does not have (or has deleted).
    KeyboardInterrupt
        Raised again after Ctrl-C while it logs: its own run ends KILLED, and the model
        and what was not logged go to a fallback folder (a warning says where).
    """
    mlflow = import_mlflow()
    if not all(hasattr(estimator, a) for a in ("network_", "get_params", "check_fitted")):
        raise NotFittedError(
            f"log_fit needs a fitted forecaster estimator; this {type(estimator).__name__} is "
            "not one (fit it first)."
        )
    estimator.check_fitted("log")  # parameters that shape predictions changed since fit
    frame = training_data(estimator, frame, "log_fit")
    check_backtest(backtest)
    check_flag("plot", plot)
    check_optional_name("register_as", register_as)
    with bounded_requests():
        run_id, own = resolve_run(mlflow, run)
        outcome = Outcome(mlflow.get_tracking_uri(), run_id)
        outcome.check_server()
        if run is not None:
            if run_id is not None and not outcome.broken:  # a store that answers has it
                stored_run(
                    mlflow, outcome, run_id, "log_fit: run= names",
                    "Nothing was logged. Pass a run of this store (or its ID), or run=None to "
                    "log the fit into a new run.",
                )  # fmt: skip
            _refuse_mixing(outcome, mlflow, estimator)
        parent = None if run is not None or own else nested_parent(outcome, mlflow, estimator)
        return _log_new_fit(
            mlflow, outcome, estimator, frame, own or bool(parent), backtest, bool(plot),
            register_as, parent,
        )  # fmt: skip


def _refuse_mixing(outcome: Outcome, mlflow: Any, estimator: Any) -> None:
    """Refuse :func:`log_fit` into the run it was given when the fit's records would replace
    or mix with what the run holds (:func:`~forecaster.tracking.records.run_collisions`),
    before anything is logged: the run was named, so the records are not moved to a nested
    run (as a fit into the active run is)."""
    run_id = outcome.run_id
    found = outcome.remote("run", run_collisions, outcome.client(mlflow), run_id, estimator)
    if found:
        more = " and more" if len(found) > 5 else ""
        raise DataValidationError(
            f"log_fit(run={run_id!r}): that run already holds {', '.join(found[:5])}{more}, "
            "which this fit's records would replace or mix with (e.g. two fits' train_loss as "
            "one history). Nothing was logged. Pass run=None to log the fit into a new run, or "
            "call log_fit without run= inside the run's mlflow.start_run(run_id=...) block "
            "to log it into a nested run of it."
        )


def _log_new_fit(
    mlflow: Any,
    outcome: Outcome,
    estimator: Any,
    frame: Any,
    own: bool,
    backtest: Any,
    plot: bool,
    register_as: str | None,
    parent: tuple[str, str | None] | None = None,
) -> FitLog:
    """:func:`log_fit` after its checks: create the run when it is ours (nested in ``parent``,
    ``(run ID, experiment ID)``, when given), then log."""
    run_id = outcome.run_id
    client = outcome.client(mlflow)
    if own:
        experiment_id = (
            parent[1] if parent else outcome.remote("run", experiment_for_new_run, mlflow)
        )
        if experiment_id is not None:
            outcome.tracking_uri = mlflow.get_tracking_uri()
            client = outcome.client(mlflow)
            run_id = outcome.remote(
                "run", create_run, mlflow, client, experiment_id, type(estimator).__name__,
                parent[0] if parent else None,
            )  # fmt: skip
            outcome.run_id = run_id
    return log_fitted(
        estimator,
        frame,
        mlflow=mlflow,
        client=client,
        outcome=outcome,
        own_run=own,
        backtest=backtest,
        plot=plot,
        register_as=register_as,
        context="Nothing else is affected.",
    )


class FitLogger:
    """A fit callback that logs the fit to MLflow (see
    :class:`forecaster.training.callbacks.FitCallback`).

    Pass it to ``fit`` (``model.fit(frame, callbacks=[FitLogger()])``), or call
    :func:`autolog` to give every fit one. One run per fit, as the module docstring says:
    params and the dataset fingerprint at the start, per-epoch metrics live, final metrics,
    the forecast plot and the pyfunc model at the end. Tracking never breaks training: a
    failure is one :class:`~forecaster.exceptions.ForecasterWarning`, and what was not logged
    is kept in a fallback folder. One logger may serve several fits, one after the other.
    With :func:`autolog` on, every fit has one already: a second one would log the fit twice.

    Parameters
    ----------
    plot : bool, default True
        Log ``forecast.png`` (forecasters only).
    register_as : str, optional
        Register the model in the model registry under this name.

    Methods
    -------
    on_fit_start(estimator, data)
    on_epoch_end(record, network)
    on_fit_end(estimator)
    on_fit_interrupted(estimator)
    on_fit_error(estimator, exc)
        The hooks of :class:`~forecaster.training.callbacks.FitCallback`, with its arguments.

    Raises
    ------
    DataValidationError
        For an argument of the wrong type.
    ImportError
        When mlflow is not installed.

    Examples
    --------
    >>> FitLogger(plot="yes")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: plot must be True or False, got 'yes' ...
    """

    def __init__(self, *, plot: bool = True, register_as: str | None = None) -> None:
        check_flag("plot", plot)
        check_optional_name("register_as", register_as)
        import_mlflow()
        self.plot = bool(plot)
        self.register_as = register_as
        self._run: TrackedFit | None = None

    def on_fit_start(self, estimator: Any, data: Any) -> None:
        """Open the fit's run (unless :func:`paused`, or not rank 0 under torchrun)."""
        self._run = None
        if default_callbacks_withheld(every_thread=True) or not is_main_process():
            return
        try:
            with bounded_requests():
                self._run = TrackedFit(
                    import_mlflow(), estimator, data, plot=self.plot, register_as=self.register_as
                )
        except Exception as exc:  # tracking must never break training
            warn_at_caller(
                f"Cannot track this fit with MLflow ({short_error(exc)}); training "
                "continues without tracking.",
                ForecasterWarning,
            )

    def on_epoch_end(self, record: Any, network: Any) -> None:
        """Log the epoch's metrics."""
        if self._run is not None:
            self._run.on_epoch(record)

    def on_fit_end(self, estimator: Any) -> None:
        """Log the fitted estimator (see :func:`last_fit` for what was logged) once every
        callback's ``on_fit_end`` returned and the fit is kept
        (:func:`~forecaster.training.callbacks.after_fit_end`): a later callback that raises
        rolls the fit back, and :meth:`on_fit_error` ends its run FAILED, nothing of it
        logged. Inside a :func:`deferred` block, when the block ends."""
        run = self._run
        if run is None:
            return
        run.ended = time.perf_counter()
        if not after_fit_end(
            lambda: self._kept(run, estimator), lambda: self._stop(run, estimator)
        ):
            self._kept(run, estimator)  # called by other code than a fit: the fit is kept

    def _kept(self, run: TrackedFit, estimator: Any) -> None:
        """The fit of ``run`` is kept: log its end (when a :func:`deferred` block ends)."""
        if self._run is run:
            self._run = None
        if not defer(lambda: run.finish(estimator), run.fail, lambda: run.stop(estimator)):
            run.finish(estimator)

    def _stop(self, run: TrackedFit, estimator: Any) -> None:
        """Ctrl-C in a later callback's ``on_fit_end``: the completed fit is kept, its end is
        not logged (its own run ends KILLED, the model goes to a fallback folder)."""
        if self._run is run:
            self._run = None
        run.stop(estimator)

    def on_fit_interrupted(self, estimator: Any) -> None:
        """Ctrl-C in an earlier callback's ``on_fit_end``: the completed fit is kept, its end
        is not logged (its own run ends KILLED, the model goes to a fallback folder), as
        after Ctrl-C in a later callback's (:meth:`_stop`)."""
        run = self._run
        if run is None:
            return
        run.ended = time.perf_counter()
        self._stop(run, estimator)

    def on_fit_error(self, estimator: Any, exc: BaseException) -> None:
        """The fit raised (in training, or in a callback's ``on_fit_end``; it was rolled
        back): its own run ends FAILED, tagged ``forecaster.fit_error`` with ``exc``."""
        run, self._run = self._run, None
        if run is not None:
            run.fail(exc)


_autolog_lock = threading.Lock()
_autolog_handle: FitCallbackHandle | None = None


def _autolog_callback(estimator: Any, data: Any) -> FitLogger:
    """The factory :func:`autolog` registers: a :class:`FitLogger` for every fit."""
    return FitLogger()


def autolog(enable: bool = True, *, disable: bool = False) -> None:
    """Log every later ``fit`` of forecaster estimators to MLflow (one run per fit).

    Registers a factory giving every fit a :class:`FitLogger`
    (:func:`forecaster.training.callbacks.register_fit_callback`); switching it off
    unregisters it. Inside an active run the fit logs into it (nested runs for further fits
    in the same run); otherwise a run is started and ended around each fit.

    Parameters
    ----------
    enable : bool, default True
        False switches it off again. Only True and False are accepted (``"false"``, 0 or
        None would be read by their truthiness).
    disable : bool, default False
        True switches it off (as ``mlflow.autolog(disable=True)``).

    Raises
    ------
    DataValidationError
        When ``enable`` or ``disable`` is not a bool.
    ImportError
        When mlflow is not installed (switching on).

    Examples
    --------
    >>> autolog("false")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: enable must be True or False, got 'false' ...
    """
    global _autolog_handle
    check_flag("enable", enable)
    check_flag("disable", disable)
    on = bool(enable) and not bool(disable)
    if on:
        import_mlflow()
    with _autolog_lock:
        if on and _autolog_handle is None:
            _autolog_handle = register_fit_callback(_autolog_callback)
        elif not on and _autolog_handle is not None:
            unregister_fit_callback(_autolog_handle)
            _autolog_handle = None


def autolog_enabled() -> bool:
    """Whether :func:`autolog` is on.

    Examples
    --------
    >>> autolog(False)
    >>> autolog_enabled()
    False
    """
    return _autolog_handle is not None


def last_fit() -> FitLog | None:
    """What the most recent logged fit or :func:`log_fit` of this process logged (None before
    any). After a tracked fit that raised: its run (``run_id``, FAILED; None when no run could
    be created), no model, and ``not_logged`` ``["final metrics", "model"]``."""
    return state.last

"""What a fit logs, as MLflow records: params, tags, step metrics (per epoch, per backtest
horizon step), final metrics, and the batched calls that send them.

- every estimator parameter (params) and the estimator class and package version (tags);
- after the fit, what it chose for the parameters it resolves on the data (the estimator's
  ``resolved_params()``, params named as the fitted attributes; :func:`resolved_params`), so
  that a run with ``lookback="auto"`` shows the lookback it used;
- the dataset fingerprint (params ``data.*`` and the artifact ``dataset.json``);
- the per-epoch ``train_loss``, ``val_loss``, ``lr`` and ``epoch_seconds`` as step metrics
  (``step`` is the epoch);
- final metrics: ``best_val_loss``, ``best_epoch``, ``final_train_loss``, ``epochs``,
  ``fit_seconds``, ``train_seconds``, ``train_windows``, ``val_windows``,
  ``windows_per_second``, and ``model_val_loss`` (the fitted model's ``val_loss_``: an
  ensemble's as it forecasts, where ``best_val_loss`` is its best member's epoch);
- backtest metrics by horizon step, when given (``backtest_<metric>`` with ``step`` = horizon
  step, plus ``backtest_<metric>_overall`` and the table as ``backtest.csv``; with several
  targets ``backtest_<target>_<metric>``, the target's name as :func:`target_key_parts` puts
  it in a key).

Every MLflow call of the package that writes the tracking store goes through this module
(:func:`tracking_write` and the batched writes built on it; ``tests/test_architecture.py``
checks it): an interrupt waits for the write's end. Artifact uploads are not held: they
write files to the artifact store, not a database row.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import polars as pl

from forecaster._interrupts import uninterrupted
from forecaster._polars import collect
from forecaster._version import __version__
from forecaster.estimators.blend_partners import partner_name
from forecaster.evaluation.score_names import COUNTS
from forecaster.exceptions import DataValidationError
from forecaster.tracking.config import describe_kind
from forecaster.tracking.fingerprint import fingerprint_params

__all__ = [
    "FIT_ARTIFACTS",
    "FIT_METRICS",
    "KIND_TAG",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_PARAM_CHARS",
    "RESOLVED_ARTIFACT",
    "backtest_key",
    "backtest_metrics",
    "backtest_tables",
    "check_backtest",
    "collisions_message",
    "created_run",
    "end_run",
    "epoch_metrics",
    "estimator_params",
    "final_metrics",
    "fit_record",
    "log_inputs",
    "log_metrics",
    "log_params",
    "log_tags",
    "long_resolved",
    "now_ms",
    "param_value",
    "resolved_params",
    "run_collisions",
    "target_key_parts",
    "tracking_write",
    "validation_metrics",
]

_T = TypeVar("_T")


KIND_TAG = "forecaster.kind"
"""The MLflow tag that says what a run of forecaster's is: ``fit`` (a fit's own run, or a
fit logged into a run without a kind), ``study`` and ``trial`` (tuning), ``run`` (a
``forecaster run`` pipeline run, with the fit of its model in it; ``forecaster fit``'s
run is ``fit``). Find them with ``filter_string="tags.`forecaster.kind` = 'run'"``."""

MAX_PARAM_CHARS = 6000


MAX_PARAMS_PER_BATCH = 100


MAX_METRICS_PER_BATCH = 1000


_STEP_COLUMNS = ("step", "horizon_step", "h", "horizon")


_NOT_METRICS = ("fold", "cutoff", "series", "window", *COUNTS, "model")
"""Columns of a backtest table that are keys or counts of points, not scores."""


_TARGET_COLUMN = "target"


def param_value(value: Any) -> str:
    """A parameter value as logged: lists as JSON, at most :data:`MAX_PARAM_CHARS`."""
    return _param_text(value)[:MAX_PARAM_CHARS]


def _param_text(value: Any) -> str:
    """A parameter value as text, whole: lists as JSON."""
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value if isinstance(value, str) else str(value)


def estimator_params(estimator: Any, prefix: str = "") -> dict[str, str]:
    """The estimator's parameters (and class name) as params, names prefixed: those a fitted
    forecaster was trained with (``fitted_params_``, run settings such as ``device`` and
    ``max_time`` included; ``set_params`` after the fit does not change what its run says),
    else ``get_params()``."""
    params = {f"{prefix}{k}": param_value(v) for k, v in _trained_with(estimator).items()}
    params[f"{prefix}estimator"] = type(estimator).__name__
    return params


def _trained_with(estimator: Any) -> dict[str, Any]:
    """The parameters a fitted forecaster was trained with (``fitted_params_``: all of them as
    the fit started, where ``fitted_params()`` takes the run settings as they are now, for
    :func:`forecaster.save`), else ``get_params()``."""
    fitted = getattr(estimator, "fitted_params_", None)
    return dict(fitted if isinstance(fitted, dict) else estimator.get_params(deep=False))


RESOLVED_ARTIFACT = "resolved_params.json"
"""The artifact that holds what ``fit`` resolved, whole, where a param could not: logged
only when one of them is longer than :data:`MAX_PARAM_CHARS` (:func:`long_resolved`)."""


def resolved_params(estimator: Any, prefix: str = "") -> dict[str, str]:
    """What ``fit`` chose for the parameters it resolves on the data, as params: the
    estimator's ``resolved_params()`` (see
    :meth:`~forecaster.estimators.base.RecurrentEstimator.resolved_params`), names prefixed;
    empty for an object without that method (a scikit-learn pipeline). A value longer than
    :data:`MAX_PARAM_CHARS` (``baseline_``, a pool on many targets) is not cut: its param
    says what it is and that it is whole in the artifact :data:`RESOLVED_ARTIFACT`.

    Examples
    --------
    >>> from forecaster import RNNForecaster
    >>> resolved_params(RNNForecaster(target="y"))  # not fitted: nothing chosen yet
    {}
    """
    return {
        f"{prefix}{name}": text if len(text) <= MAX_PARAM_CHARS else _too_long(name, value, text)
        for name, (value, text) in _resolved(estimator).items()
    }


def long_resolved(estimator: Any) -> dict[str, Any]:
    """What ``fit`` resolved (JSON values, as ``resolved_params()`` gives them) where one is
    too long for a param: the content of the artifact :data:`RESOLVED_ARTIFACT` (every value,
    so that it is a whole record); empty where every param holds its value."""
    resolved = _resolved(estimator)
    if all(len(text) <= MAX_PARAM_CHARS for _, text in resolved.values()):
        return {}
    return {name: value for name, (value, _) in resolved.items()}


def _resolved(estimator: Any) -> dict[str, tuple[Any, str]]:
    """Each value of the estimator's ``resolved_params()`` and its text as a param, whole."""
    chosen: dict[str, Any] = getattr(estimator, "resolved_params", dict)()
    return {
        name: (value, _param_text(json.dumps(value) if isinstance(value, dict) else value))
        for name, value in chosen.items()
    }


def _too_long(name: str, value: Any, text: str) -> str:
    """The param of a resolved value whose ``text`` is longer than :data:`MAX_PARAM_CHARS`:
    what it is in brief (a blend: one partner or a pool, how many targets, which partners)
    and where it is whole."""
    where = f"{len(text):,} characters: whole in the artifact {RESOLVED_ARTIFACT}"
    if name != "baseline_" or not isinstance(value, dict):
        return where
    terms = value["terms"]
    names = ", ".join(partner_name(t["m"], t["drift"], t["level"]) for t in terms)
    kind = "a pool of" if len(terms) > 1 else "a blend with"
    count = f"{len(terms)} partners" if len(terms) > 1 else "1 partner"
    targets = len(value["network"])
    return f"{kind} {count} on {targets} targets ({names}); {where}"


def now_ms() -> int:
    """Now, in milliseconds since the epoch (MLflow's timestamps)."""
    return int(time.time() * 1000)


_EPOCH_METRICS = {
    "train_loss": "train_loss", "val_loss": "val_loss", "lr": "lr", "epoch_seconds": "seconds"
}  # fmt: skip
"""The metrics :func:`epoch_metrics` logs, each with its key in an epoch record."""


def epoch_metrics(record: Mapping[str, Any], timestamp: int | None = None) -> list[Any]:
    """The step metrics of one epoch record (finite values only)."""
    from mlflow.entities import Metric

    ts = now_ms() if timestamp is None else timestamp
    step = int(record["epoch"])
    values = {metric: record.get(key) for metric, key in _EPOCH_METRICS.items()}
    return [
        Metric(key, float(v), ts, step)
        for key, v in values.items()
        if v is not None and math.isfinite(float(v))
    ]


def final_metrics(estimator: Any, fit_seconds: float | None) -> dict[str, float]:
    """The final metrics of a fitted estimator (see the module docstring)."""
    history = list(getattr(estimator, "history_", []) or [])
    metrics: dict[str, float] = {"epochs": float(len(history))}
    if history:
        metrics["final_train_loss"] = float(history[-1]["train_loss"])
        metrics["train_seconds"] = float(sum(r["seconds"] for r in history))
        metrics["windows_per_second"] = float(np.median([r["windows_per_second"] for r in history]))
        val = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
        val = [(v, e) for v, e in val if math.isfinite(v)]
        if val:
            best, epoch = min(val)
            metrics["best_val_loss"] = float(best)
            metrics["best_epoch"] = float(epoch)
    model_loss = estimator.__dict__.get("val_loss_")
    if model_loss is not None and math.isfinite(model_loss):
        metrics["model_val_loss"] = float(model_loss)
    metrics["fit_seconds"] = float(
        fit_seconds if fit_seconds is not None else metrics.get("train_seconds", 0.0)
    )
    for name, attr in (("train_windows", "n_train_windows_"), ("val_windows", "n_val_windows_")):
        if hasattr(estimator, attr):
            metrics[name] = float(getattr(estimator, attr))
    return {**metrics, **validation_metrics(estimator)}


_VALIDATION_SCORES = {
    "validation_model": "model",
    "validation_naive": "naive",
    "validation_seasonal_naive": "seasonal_naive",
    "validation_blended": "blended",
    "validation_skill": "skill",
}
"""Metric names of the validation scores a fit compares with its baselines
(``validation_baselines_``: the network, the naive and seasonal naive forecasts and the
blended model, each a mean absolute error over the series' in-sample naive error, and the
network's over the seasonal naive's)."""


def validation_metrics(estimator: Any) -> dict[str, float]:
    """The validation scores of the network, its baselines, the blended model and the skill
    ratio (:data:`_VALIDATION_SCORES`), for a score shown beside its baselines; empty without
    validation (``validation_baselines_`` None)."""
    report = getattr(estimator, "validation_baselines_", None) or {}
    values = {name: report.get(key) for name, key in _VALIDATION_SCORES.items()}
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


FIT_ARTIFACTS = ("dataset.json", "forecast.png", "model", RESOLVED_ARTIFACT)
"""The artifacts a fit logs at the root of its run."""

_FINAL_METRICS = (
    "epochs", "final_train_loss", "train_seconds", "windows_per_second", "best_val_loss",
    "best_epoch", "model_val_loss", "fit_seconds", "train_windows", "val_windows",
    *_VALIDATION_SCORES,
)  # fmt: skip
FIT_METRICS = (*_EPOCH_METRICS, *_FINAL_METRICS)
"""The metrics a fit logs (:func:`epoch_metrics`, :func:`final_metrics`)."""


def run_collisions(client: Any, run_id: str, estimator: Any) -> list[str]:
    """What of the run ``run_id`` (a user's active run) a fit of ``estimator`` would replace or
    mix with: artifacts of :data:`FIT_ARTIFACTS`, metrics of :data:`FIT_METRICS` (a second
    history under one key) and params logged with other values (MLflow refuses them, and
    with them the whole batch)."""
    run = client.get_run(run_id)
    found = {a.path for a in client.list_artifacts(run_id)} & set(FIT_ARTIFACTS)
    what = [f"the artifact {name!r}" for name in sorted(found)]
    what += [f"the metric {m!r}" for m in FIT_METRICS if m in run.data.metrics]
    params = estimator_params(estimator)
    what += [
        f"the param {k!r} = {v!r} (the fit's: {params[k]!r})"
        for k, v in run.data.params.items()
        if k in params and params[k] != v
    ]
    return what


def collisions_message(run_id: str, found: Sequence[str]) -> str:
    """The warning of a fit that logs into a nested run since the active run (or the run
    ``MLFLOW_RUN_ID`` names) holds ``found`` (see :func:`run_collisions`)."""
    more = " and more" if len(found) > 5 else ""
    return (
        f"The MLflow run {run_id} (the active run, or the one MLFLOW_RUN_ID names) already "
        f"holds {', '.join(found[:5])}{more}: this fit logs into a nested run of it, so nothing "
        "of yours is replaced or mixed with its records."
    )


def _as_frame(table: Any) -> pl.DataFrame:
    if isinstance(table, pl.LazyFrame):
        return collect(table)
    if isinstance(table, pl.DataFrame):
        return table
    if type(table).__module__.startswith("pandas"):
        return pl.from_pandas(table)
    return pl.DataFrame(table)


def backtest_tables(backtest: Any) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """``(by_step, overall)``: a :class:`~forecaster.evaluation.backtest.BacktestResult` gives its
    ``by_step`` and pooled ``aggregate`` tables; a plain frame is the by-step table."""
    if hasattr(backtest, "by_step") and hasattr(backtest, "aggregate"):
        return _as_frame(backtest.by_step), _as_frame(backtest.aggregate)
    return _as_frame(backtest), None


def backtest_key(name: str, target: str | None = None) -> str:
    """The MLflow key of a backtest metric: ``backtest_<metric>``, or with several targets
    (``target``: the target's part of the key, from :func:`target_key_parts`)
    ``backtest_<target>_<metric>``.

    Examples
    --------
    >>> backtest_key("mae"), backtest_key("mae", "close")
    ('backtest_mae', 'backtest_close_mae')
    """
    return f"backtest_{name}" if target is None else f"backtest_{target}_{name}"


_KEY_UNSAFE = re.compile(r"[^\w.\- :/]")
"""A character MLflow refuses in a metric key (it takes letters, digits, ``_``, ``-``, ``.``,
spaces, ``:`` and ``/``), and with it the whole batch of metrics the key is in."""


def target_key_parts(targets: Sequence[Any]) -> dict[Any, str]:
    """Each target's part of its MLflow metric keys (:func:`backtest_key`): its name with
    every character MLflow refuses in a key as ``_`` (a target such as ``"sales (€)"`` made it
    refuse every final metric of a fit); when two targets come out the same, each of them
    followed by ``_<its position>`` (from 1), so that their metrics never share a key.

    Examples
    --------
    >>> target_key_parts(["sales (€)", "km/h", "a(1)", "a[1]"])
    {'sales (€)': 'sales ___', 'km/h': 'km/h', 'a(1)': 'a_1__3', 'a[1]': 'a_1__4'}
    """
    parts = [_KEY_UNSAFE.sub("_", str(t)) for t in targets]
    return {
        t: f"{part}_{i + 1}" if parts.count(part) > 1 else part
        for i, (t, part) in enumerate(zip(targets, parts, strict=True))
    }


def backtest_metrics(
    table: pl.DataFrame, overall: pl.DataFrame | None = None
) -> list[tuple[str, float, int]]:
    """``(key, value, step)``: ``backtest_<metric>`` per horizon step (the mean over folds and
    any other rows of a step), and ``backtest_<metric>_overall`` at step 0 (``overall`` when
    given, else the mean of all rows). With several targets the key is
    ``backtest_<target>_<metric>`` (the target as :func:`target_key_parts` writes it)."""
    step_col = next((c for c in _STEP_COLUMNS if c in table.columns), None)
    multi = _TARGET_COLUMN in table.columns and table[_TARGET_COLUMN].n_unique() > 1
    keys = [_TARGET_COLUMN] if multi else []
    targets = table[_TARGET_COLUMN].unique(maintain_order=True).to_list() if multi else []
    parts = target_key_parts(targets)
    skip = {step_col, _TARGET_COLUMN, *_NOT_METRICS}
    names = [
        c for c, t in table.schema.items() if t.is_numeric() and c not in skip and t != pl.Boolean
    ]

    def key(row: Mapping[str, Any], name: str) -> str:
        return backtest_key(name, parts[row[_TARGET_COLUMN]] if multi else None)

    out: list[tuple[str, float, int]] = []
    if not names:
        return out
    if step_col is not None:
        by_step = table.group_by([*keys, step_col]).agg(pl.col(names).mean())
        for row in by_step.sort([*keys, step_col]).iter_rows(named=True):
            out += [
                (key(row, n), float(row[n]), int(row[step_col]))
                for n in names
                if row[n] is not None and math.isfinite(row[n])
            ]
    if overall is None or not set(names) <= set(overall.columns):
        overall = table.group_by(keys).agg(pl.col(names).mean()) if keys else table
        overall = overall if keys else overall.select(pl.col(names).mean())
    for row in overall.iter_rows(named=True):
        out += [
            (key(row, n) + "_overall", float(row[n]), 0)
            for n in names
            if row.get(n) is not None and math.isfinite(row[n])
        ]
    return out


def check_backtest(backtest: Any) -> None:
    """Refuse a ``backtest`` that is neither a BacktestResult, a frame nor None."""
    is_result = hasattr(backtest, "by_step") and hasattr(backtest, "aggregate")
    is_frame = isinstance(backtest, pl.DataFrame | pl.LazyFrame) or (
        type(backtest).__module__.startswith("pandas") and hasattr(backtest, "columns")
    )
    if backtest is not None and not is_result and not is_frame:
        raise DataValidationError(
            f"backtest must be a forecaster BacktestResult, a frame of backtest metrics or "
            f"None, got {describe_kind(backtest)}."
        )


def tracking_write(call: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``call(*args, **kwargs)``: one MLflow call that writes the tracking store (a run
    created, started or ended, a param, a tag, a model's record or registration), with an
    interrupt (``SIGTERM``, Ctrl-C) held until it returns
    (:func:`~forecaster._interrupts.uninterrupted`; a second one raises at once). Raised in
    the middle of a SQLite transaction, it left the database's write lock held, and the
    cleanups that followed (the error tag, the run ended KILLED) waited on it and failed with
    "database is locked"."""
    with uninterrupted():
        return call(*args, **kwargs)


def created_run(
    call: Callable[..., _T],
    kill: Callable[[str], Any],
    /,
    *args: Any,
    noted: list[str] | None = None,
    **kwargs: Any,
) -> _T:
    """``call(*args, **kwargs)`` through :func:`tracking_write`, for a call that creates or
    starts a run and returns it (``client.create_run``, ``mlflow.start_run``): when an
    interrupt held during the write is raised at its end, the run exists but its caller never
    gets its ID, so nothing would ever end it (it stayed RUNNING for good); ``kill(run_id)``
    (a write through :func:`tracking_write`, e.g. :func:`end_run` with ``KILLED``) ends it
    first, then the interrupt goes on. A tracking failure of ``kill`` is left out: the
    interrupt is what the caller gets.

    ``noted``: a list the run's ID is appended to inside the write, before an interrupt it
    held is raised, for a caller that ends the run itself when interrupted before it has
    the ID from this call (in the bytecodes between this return and its own use of it)."""
    created: list[Any] = []

    def create() -> _T:
        created.append(call(*args, **kwargs))
        if noted is not None:
            noted.append(created[0].info.run_id)
        return created[0]  # type: ignore[no-any-return]

    try:
        return tracking_write(create)
    except BaseException:
        if created:  # the interrupt held by the write, raised as the write ended
            with contextlib.suppress(Exception):
                kill(created[0].info.run_id)
        raise


def log_params(client: Any, run_id: str, params: Mapping[str, str]) -> None:
    """Log params in batches of :data:`MAX_PARAMS_PER_BATCH`."""
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for lo in range(0, len(items), MAX_PARAMS_PER_BATCH):
        tracking_write(client.log_batch, run_id, params=items[lo : lo + MAX_PARAMS_PER_BATCH])


def log_tags(client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    """Log tags in batches of :data:`MAX_PARAMS_PER_BATCH` (values cut to
    :data:`MAX_PARAM_CHARS`)."""
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:MAX_PARAM_CHARS]) for k, v in tags.items()]
    for lo in range(0, len(items), MAX_PARAMS_PER_BATCH):
        tracking_write(client.log_batch, run_id, tags=items[lo : lo + MAX_PARAMS_PER_BATCH])


def log_metrics(client: Any, run_id: str, metrics: Sequence[Any]) -> None:
    """Log metrics in batches of :data:`MAX_METRICS_PER_BATCH`."""
    for lo in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        batch = list(metrics[lo : lo + MAX_METRICS_PER_BATCH])
        tracking_write(client.log_batch, run_id, metrics=batch)


def end_run(client: Any, run_id: str, status: str, end_time: int | None = None) -> None:
    """End the run ``run_id`` with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``), at
    ``end_time`` (milliseconds; None: now), through :func:`tracking_write`."""
    tracking_write(client.set_terminated, run_id, status, end_time=end_time)


def log_inputs(
    client: Any,
    run_id: str,
    estimator: Any,
    fingerprint: Mapping[str, Any],
    *,
    prefix: str = "",
    params_as_tags: bool = False,
    own_run: bool = True,
) -> None:
    """Params, tags and the dataset fingerprint (what goes in before training). The run is
    tagged :data:`KIND_TAG` ``fit`` when it is the fit's ``own_run``, or a run of someone
    else's (the user's active run) that has no kind yet: a pipeline's run (``run``) or a
    study's keeps its own."""
    params = {**estimator_params(estimator, prefix), **fingerprint_params(fingerprint)}
    tags = {"forecaster.version": __version__}
    if params_as_tags:
        log_tags(client, run_id, {**params, **tags})
    else:
        log_params(client, run_id, params)
        if own_run or KIND_TAG not in client.get_run(run_id).data.tags:
            tags[KIND_TAG] = "fit"
        log_tags(client, run_id, tags)
    client.log_dict(run_id, dict(fingerprint), "dataset.json")


def fit_record(estimator: Any, fingerprint: Any, metrics: Any, backtest: Any) -> dict[str, Any]:
    """What a fit logs, as one JSON-able record (the fallback folder's ``run.json``)."""
    return {
        "estimator": type(estimator).__name__,
        "params": {k: param_value(v) for k, v in _trained_with(estimator).items()},
        "resolved_params": {k: text for k, (_, text) in _resolved(estimator).items()},
        "dataset": fingerprint,
        "history": list(getattr(estimator, "history_", []) or []),
        "metrics": metrics,
        "backtest": None if backtest is None else backtest.to_dicts(),
    }

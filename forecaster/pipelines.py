"""Declarative forecasting pipelines: a TOML spec, validated up front, run idempotently.

A spec (``pipelines/*.toml``) names a data source, the series' columns, a few features, the
estimator's parameters, training / tuning, evaluation, tracking and outputs. :func:`load_spec`
validates it with pydantic (unknown keys are errors, and every error names the file, the key,
what was expected and what was received); :func:`run_pipeline` loads the data, validates it,
fits (or reuses, or tunes) the model, backtests it, forecasts, and writes the outputs of one
*as-of* date atomically:

``<output.dir>/`` (the template expanded with ``name`` and ``as_of``)
    ``forecasts.parquet`` (id, time, targets, model_version, run_id), ``backtest.parquet``
    (metrics by fold, series and step), ``forecast.png``, ``model/`` (config + safetensors)
    and ``summary.json`` (what ran, metrics, paths; written last).

The same spec and as-of date produce their outputs once: a rerun reports the existing outputs
and does nothing unless ``force=True``, which replaces them atomically. The whole output folder
is written under a temporary name and renamed into place, so a crash leaves no partial output.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import forecaster
from forecaster import distributed
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.persistence import _replace_directory

__all__ = [
    "PipelineResult",
    "Spec",
    "SpecError",
    "build_estimator",
    "checkpoint_folder",
    "fit_with_checkpoints",
    "load_data",
    "load_spec",
    "prepare_data",
    "run_pipeline",
]


class SpecError(ForecasterError, ValueError):
    """A pipeline spec is missing, unreadable or invalid (exit code 2 in the CLI)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineInfo(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""


class SourceSpec(_Strict):
    """Where the data comes from: a bundled dataset, CSV / Parquet files, or a folder of wavs."""

    dataset: Literal["stocks", "audio"] | None = None
    path: str | None = None
    format: Literal["csv", "parquet", "wav"] | None = None
    id_from_filename: str | None = None
    tickers: list[str] | None = None
    time_format: str | None = None
    separator: str = Field(",", min_length=1, max_length=1)
    null_values: list[str] = []


class SeriesSpec(_Strict):
    id: str | None = None
    time: str
    targets: list[str] = Field(min_length=1)
    covariates: list[str] = []
    future_covariates: list[str] = []
    freq: str = "auto"
    missing: Literal["error", "ffill", "zero", "interpolate"] = "error"


class MfccSpec(_Strict):
    n_mfcc: int = Field(13, ge=1)
    hop_length: int = Field(80, ge=1)
    n_fft: int = Field(256, ge=1)
    n_mels: int = Field(40, ge=1)
    sample_rate: int | None = Field(None, ge=1)


class FeaturesSpec(_Strict):
    log_returns: list[str] = []
    mfcc: MfccSpec | None = None
    history_days: int | None = Field(None, ge=1)


class TrainingSpec(_Strict):
    reuse_model: bool = False
    tune: bool = False
    trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0)
    storage: str = "default"


class EvaluationSpec(_Strict):
    backtest_folds: int = Field(3, ge=0)
    metrics: list[Literal["mae", "rmse", "mse", "mape", "smape", "mase"]] = ["mae", "smape"]
    seasonality: int = Field(1, ge=1)


class TrackingSpec(_Strict):
    enabled: bool = True
    experiment: str | None = None
    register_as: str | None = None


class OutputSpec(_Strict):
    dir: str = "outputs/{name}/{as_of}"
    plot_series: int = Field(4, ge=0)

    @field_validator("dir")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(name="x", as_of="2000-01-01")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"only the placeholders {{name}} and {{as_of}} are allowed, got {value!r}"
            ) from exc
        return value


class Spec(_Strict):
    """A validated pipeline spec (see ``pipelines/*.toml`` for annotated examples)."""

    pipeline: PipelineInfo
    source: SourceSpec
    series: SeriesSpec
    features: FeaturesSpec = FeaturesSpec()
    model: dict[str, Any] = {}
    training: TrainingSpec = TrainingSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    tracking: TrackingSpec = TrackingSpec()
    output: OutputSpec = OutputSpec()


# ------------------------------------------------------------------------------------------
# loading and validation
# ------------------------------------------------------------------------------------------

_MODEL_CLASSES = ("RNNForecaster", "LSTMForecaster", "GRUForecaster", "SimpleRNNForecaster")
_COLUMN_PARAMS = (
    "target",
    "time_col",
    "id_col",
    "covariates",
    "future_covariates",
    "freq",
    "missing",
)


def load_spec(path: str | os.PathLike[str]) -> tuple[Spec, Path]:
    """Read and validate a TOML spec; return it and the project root it is relative to.

    Relative paths in the spec are resolved against the project root: the parent of the
    ``pipelines/`` folder holding the spec (or the spec's own folder otherwise).

    Raises
    ------
    SpecError
        Naming the file, the key, what was expected and what was received.
    """
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"{file}: no such spec file. Pass the path of a pipelines/*.toml file.")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}") from exc
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_describe_errors(file, exc)) from None
    root = file.resolve().parent
    if root.name == "pipelines":
        root = root.parent
    _check_model_section(file, spec)
    _check_source(file, spec, root)
    return spec, root


def _describe_errors(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        received = error.get("input")
        if error["type"] == "extra_forbidden":
            section = ".".join(str(p) for p in error["loc"][:-1])
            known = _known_keys(error["loc"][:-1])
            close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(
                f"{file}: unknown key {key!r}{hint}. Allowed keys in "
                f"[{section or 'top level'}]: {', '.join(known)}."
            )
        elif error["type"] == "missing":
            lines.append(f"{file}: missing required key {key!r}.")
        else:
            lines.append(f"{file}: key {key!r}: {error['msg']}; received {received!r}.")
    return "\n".join(lines)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Spec
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _check_model_section(file: Path, spec: Spec) -> None:
    params = dict(spec.model)
    name = params.pop("estimator", "RNNForecaster")
    if name not in _MODEL_CLASSES:
        raise SpecError(
            f"{file}: key 'model.estimator': expected one of {list(_MODEL_CLASSES)}, "
            f"received {name!r}."
        )
    estimator = getattr(forecaster, name)()
    allowed = [p for p in estimator.get_params() if p not in _COLUMN_PARAMS]
    for key in params:
        if key in _COLUMN_PARAMS:
            raise SpecError(
                f"{file}: key 'model.{key}' belongs in [series] (it describes the data), "
                "not in [model]."
            )
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"{file}: unknown key 'model.{key}'{hint}. Allowed: {', '.join(sorted(allowed))}."
            )


def _check_source(file: Path, spec: Spec, root: Path) -> None:
    source = spec.source
    if (source.dataset is None) == (source.path is None):
        raise SpecError(
            f"{file}: [source] needs exactly one of 'dataset' (a bundled set: 'stocks', "
            "'audio') or 'path' (a file, folder or glob)."
        )
    if source.path is not None:
        if source.format is None:
            raise SpecError(
                f"{file}: key 'source.format' is required with 'source.path' "
                "(one of 'csv', 'parquet', 'wav')."
            )
        resolved = _outside(root, source.path)
        if resolved is not None:
            raise SpecError(
                f"{file}: key 'source.path' points outside the project ({resolved}); data "
                f"paths must stay under {root}. Copy or link the data into the project."
            )
        if source.format == "wav" and spec.features.mfcc is None:
            raise SpecError(f"{file}: a 'wav' source needs a [features.mfcc] section.")
    out = _outside(root, spec.output.dir.format(name=spec.pipeline.name, as_of="as-of"))
    if out is not None:
        raise SpecError(
            f"{file}: key 'output.dir' points outside the project ({out}); outputs are "
            f"written under {root}. Use a relative folder such as 'outputs/{{name}}/{{as_of}}'."
        )


def _outside(root: Path, relative: str) -> Path | None:
    """The normalised path of ``relative`` (a spec path) when it leaves ``root``, else None.

    The check is on the path as written (``..``, absolute paths); links that the project's
    owner put inside the project are followed later, as the owner meant them to be."""
    path = Path(os.path.normpath(root.absolute() / relative))
    return None if path.is_relative_to(Path(os.path.normpath(root.absolute()))) else path


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def load_data(spec: Spec, root: Path) -> pl.DataFrame:
    """Read the spec's source (lazily where possible) and add its features."""
    source = spec.source
    mfcc = spec.features.mfcc
    if source.dataset == "stocks":
        frame = forecaster.datasets.load_stocks(source.tickers)
    elif source.dataset == "audio" or source.format == "wav":
        folder = None if source.path is None else root / source.path
        frame = forecaster.datasets.load_audio_mfcc(folder, **(mfcc or MfccSpec()).model_dump())
    else:
        pattern = str(root / source.path)
        paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not paths:
            raise DataValidationError(f"No file matches source.path {source.path!r} ({pattern}).")
        kwargs: dict[str, Any] = {}
        if source.id_from_filename:
            kwargs["include_file_paths"] = "__path__"
        if source.format == "csv":
            lazy = pl.scan_csv(
                [str(p) for p in paths],
                try_parse_dates=True,
                separator=source.separator,
                null_values=source.null_values or None,
                **kwargs,
            )
        else:
            lazy = pl.scan_parquet([str(p) for p in paths], **kwargs)
        if source.id_from_filename:
            stem = pl.col("__path__").str.extract(r"([^/\\]+?)(\.[^/\\.]+)*$", 1)
            lazy = lazy.with_columns(stem.alias(source.id_from_filename)).drop("__path__")
        if source.time_format:
            time_col = spec.series.time
            lazy = lazy.with_columns(pl.col(time_col).str.to_datetime(source.time_format))
        try:
            frame = lazy.collect()
        except pl.exceptions.NoDataError as exc:
            raise DataValidationError(
                f"Cannot read source.path {source.path!r}: a file is empty (no header, no rows): "
                f"{_first_line(exc)}. Expected {source.format} data; remove or replace the file."
            ) from exc
        except pl.exceptions.PolarsError as exc:
            raise DataValidationError(
                f"Cannot read source.path {source.path!r} as {source.format}: {_first_line(exc)}. "
                "Check the files (format, separator, a consistent number of fields per line) "
                "and source.time_format."
            ) from exc
        if frame.height == 0:
            raise DataValidationError(
                f"source.path {source.path!r} ({len(paths)} file(s)) has no data rows, only a "
                f"header ({_header(frame.columns)}). Expected at least lookback + horizon rows "
                "per series."
            )
    _check_columns(frame, spec)
    if spec.features.log_returns:
        order = [c for c in (spec.series.id, spec.series.time) if c]
        frame = frame.sort(order)
        returns = []
        for column in spec.features.log_returns:
            expr = pl.col(column).log().diff()
            returns.append(
                (expr.over(spec.series.id) if spec.series.id else expr).alias(f"{column}_logret")
            )
        frame = frame.with_columns(returns).drop_nulls(
            [f"{c}_logret" for c in spec.features.log_returns]
        )
    return frame


def _header(columns: list[str], limit: int = 8) -> str:
    """Column names as read: plain when printable, escaped when the file was not text."""
    shown = [c if c.isprintable() else repr(c) for c in columns[:limit]]
    more = f", ... ({len(columns)} columns)" if len(columns) > limit else ""
    return ", ".join(shown) + more


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_columns(frame: pl.DataFrame, spec: Spec) -> None:
    """The columns the spec names exist (with a hint for a wrong separator), and the
    log-return columns are positive numbers."""
    from forecaster.data import _missing_columns_error

    series = spec.series
    roles = {
        "id": [series.id] if series.id else [],
        "time": [series.time],
        "target": series.targets,
        "covariate": [*series.covariates, *spec.features.log_returns],
        "future covariate": series.future_covariates,
    }
    for role, names in roles.items():
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DataValidationError(_missing_columns_error(missing, frame.columns, role))
    for column in spec.features.log_returns:
        dtype = frame.schema[column]
        if not dtype.is_numeric():
            raise DataValidationError(
                f"features.log_returns needs numbers, but column {column!r} is {dtype}."
            )
        bad = frame.filter(pl.col(column) <= 0)
        if bad.height:
            raise DataValidationError(
                f"features.log_returns takes logarithms, but column {column!r} has {bad.height} "
                f"values <= 0 (e.g. {bad[column][0]!r} at {series.time}="
                f"{bad[series.time][0]}). Expected positive prices; remove log_returns or clean "
                "those rows."
            )


# ------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------


class PipelineResult(BaseModel):
    """What a run did (also written as ``summary.json``)."""

    name: str
    as_of: str
    status: Literal["completed", "skipped", "dry-run"]
    output_dir: str
    forecasts: str | None = None
    backtest: str | None = None
    plot: str | None = None
    model_dir: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    model_version: str | None = None
    metrics: dict[str, float] = {}
    rows: int = 0
    series: int = 0
    seconds: float = 0.0
    spec_hash: str = ""
    package_version: str = forecaster.__version__


def spec_hash(spec: Spec) -> str:
    """A short content hash of the validated spec (identifies models and outputs)."""
    payload = json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


def _as_of(frame: pl.DataFrame, time_col: str, as_of: str | None) -> tuple[pl.DataFrame, str]:
    dtype = frame.schema[time_col]
    if not (dtype.is_temporal() or dtype.is_integer()) or dtype in (pl.Time, pl.Duration):
        raise DataValidationError(
            f"Time column {time_col!r} must be Datetime, Date or an integer step, got {dtype}. "
            "Give its format as source.time_format in the spec (e.g. '%Y-%m-%d %H:%M'); text "
            "times that mix formats or time zones are not parsed automatically."
        )
    if as_of is None:
        last = frame[time_col].max()
        label = last.isoformat()[:10] if hasattr(last, "isoformat") else str(last)
        return frame, label
    try:
        if dtype == pl.Date:
            bound: Any = dt.date.fromisoformat(as_of)
        elif isinstance(dtype, pl.Datetime):
            bound = dt.datetime.fromisoformat(as_of)
            if len(as_of) == 10:
                bound = bound + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        else:
            bound = int(as_of)
    except ValueError as exc:
        raise SpecError(
            f"--as-of {as_of!r} does not fit the time column {time_col!r} ({dtype}); expected "
            "an ISO date such as 2017-06-30 (or an integer step)."
        ) from exc
    zone = getattr(dtype, "time_zone", None)
    if isinstance(bound, dt.datetime) and (bound.tzinfo is None) != (zone is None):
        if zone is None:
            raise SpecError(
                f"--as-of {as_of!r} has a UTC offset but the time column {time_col!r} has no "
                "time zone; pass a date or a datetime without an offset."
            )
        limit = pl.lit(bound).dt.replace_time_zone(zone)  # local time of the data's zone
    else:
        limit = pl.lit(bound)
    subset = frame.filter(pl.col(time_col) <= limit)
    if subset.height == 0:
        raise DataValidationError(f"No data up to --as-of {as_of}: the data starts later.")
    return subset, as_of


def _recent(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Keep the last ``features.history_days`` days of every series (dates / datetimes)."""
    days = spec.features.history_days
    time_col = spec.series.time
    if days is None or not frame.schema[time_col].is_temporal():
        return frame
    last = pl.col(time_col).max()
    last = last.over(spec.series.id) if spec.series.id else last
    return frame.filter(pl.col(time_col) > last - pl.duration(days=days))


def prepare_data(spec: Spec, root: Path, as_of: str | None) -> tuple[pl.DataFrame, str]:
    """The spec's data up to ``as_of`` (default: its last time), its recent history only, and
    the as-of label that names the outputs."""
    frame, label = _as_of(load_data(spec, root), spec.series.time, as_of)
    return _recent(frame, spec), label


def build_estimator(spec: Spec, progress: bool) -> Any:
    """The spec's (unfitted) forecaster: [model] parameters plus the [series] columns."""
    params = dict(spec.model)
    name = params.pop("estimator", "RNNForecaster")
    series = spec.series
    covariates = [*series.covariates, *[f"{c}_logret" for c in spec.features.log_returns]]
    return getattr(forecaster, name)(
        target=series.targets if len(series.targets) > 1 else series.targets[0],
        id_col=series.id,
        time_col=series.time,
        covariates=covariates or None,
        future_covariates=series.future_covariates or None,
        freq=series.freq,
        missing=series.missing,
        progress=progress,
        **params,
    )


def checkpoint_folder(output: str | os.PathLike[str]) -> Path:
    """Where the ``forecaster`` command keeps the training checkpoints of the model it writes to
    ``output`` (a model folder or a run's output folder): the hidden folder
    ``.<name>.checkpoints`` next to it, removed once the command succeeds."""
    output = Path(output)
    return output.parent / f".{output.name}.checkpoints"


def fit_with_checkpoints(
    estimator: Any,
    frame: pl.DataFrame,
    folder: Path,
    resume: bool,
    log: Callable[[str], None],
) -> None:
    """Fit with checkpoints in ``folder`` (unless the spec's [model] names a checkpoint_dir);
    with ``resume``, continue from the last checkpoint when there is one (and say so), else
    train from the start, so that a scheduler can always pass ``--resume``."""
    from forecaster.training import latest_checkpoint

    own = estimator.checkpoint_dir is None
    if own:
        estimator.set_params(checkpoint_dir=str(folder))
    try:
        found = resume and latest_checkpoint(estimator.checkpoint_dir) is not None
        if resume:
            log(
                f"resume   from the checkpoint in {estimator.checkpoint_dir}"
                if found
                else f"resume   no checkpoint in {estimator.checkpoint_dir}: training from the "
                "start"
            )
        estimator.fit(frame, resume=found)
    finally:
        if own:  # the saved model does not point at a folder that is removed on success
            estimator.set_params(checkpoint_dir=None)


def run_pipeline(
    spec_path: str | os.PathLike[str],
    *,
    as_of: str | None = None,
    tune: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PipelineResult:
    """Run a spec end to end for one as-of date (see the module docstring).

    Parameters
    ----------
    spec_path : path
        A ``pipelines/*.toml`` file.
    as_of : str, optional
        ISO date (or integer step): use only data up to it, and name the outputs after it.
        Default: the last time in the data.
    tune : bool, optional
        Tune with Optuna before fitting (default: the spec's ``training.tune``).
    force : bool
        Replace existing outputs of this as-of date (atomically).
    dry_run : bool
        Validate the spec and the data, print the plan, write nothing.
    resume : bool
        Continue the fit from the checkpoints of an interrupted run of the same spec and as-of
        date (see :func:`checkpoint_folder`; written every ``checkpoint_every`` epochs, a
        [model] parameter), or fit from the start when there are none.
    progress : bool
        Progress bars for training and tuning.
    log : callable
        Receives one line per step.
    """
    started = time.perf_counter()
    spec, root = load_spec(spec_path)
    name = spec.pipeline.name
    frame, as_of_label = prepare_data(spec, root, as_of)
    out_dir = (root / spec.output.dir.format(name=name, as_of=as_of_label)).resolve()
    summary_file = out_dir / "summary.json"
    digest = spec_hash(spec)
    if summary_file.is_file() and not force and not dry_run:
        previous = PipelineResult.model_validate_json(summary_file.read_text())
        log(
            f"outputs for {name} as of {as_of_label} already exist: {out_dir} "
            "(use --force to replace them)"
        )
        return previous.model_copy(update={"status": "skipped"})

    estimator = build_estimator(spec, progress)
    panel = forecaster.Panel.from_frame(
        frame,
        **{k: v for k, v in estimator.get_params().items() if k in _COLUMN_PARAMS},
        min_length=int(estimator.lookback) + int(estimator.horizon),
    )
    log(f"data     {panel}")
    if dry_run:
        log(
            f"plan     fit {type(estimator).__name__} (lookback {estimator.lookback}, horizon "
            f"{estimator.horizon}), backtest {spec.evaluation.backtest_folds} folds, write "
            f"{out_dir}"
        )
        return PipelineResult(
            name=name,
            as_of=as_of_label,
            status="dry-run",
            output_dir=str(out_dir),
            rows=int(panel.offsets[-1]),
            series=panel.n_series,
            spec_hash=digest,
        )

    checkpoints = checkpoint_folder(out_dir)
    if not distributed.is_main_process():
        # Under torchrun the other ranks train in lockstep with rank 0, which writes everything.
        model, _ = _model(
            spec, root, estimator, frame, tune, False, log, digest, checkpoints, resume
        )
        _evaluate(spec, model, frame, log)
        return PipelineResult(
            name=name, as_of=as_of_label, status="completed", output_dir=str(out_dir)
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out_dir)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent)
    )
    try:
        with _tracked_run(spec, as_of_label, log) as (run_id, tracking_uri):
            model, how = _model(
                spec, root, estimator, frame, tune, progress, log, digest, checkpoints, resume
            )
            log(f"model    {how}")
            metrics, backtest = _evaluate(spec, model, frame, log)
            forecast = model.predict(frame)
            version = f"{name}-{as_of_label}-{digest}"
            forecast = forecast.with_columns(
                pl.lit(version).alias("model_version"), pl.lit(run_id).alias("run_id")
            )
            _write_parquet(forecast, staging / "forecasts.parquet")
            if backtest is not None:
                _write_parquet(backtest[0], staging / "backtest.parquet")
                _write_parquet(backtest[1], staging / "backtest_by_step.parquet")
            plot = _plot(frame, forecast, model, staging / "forecast.png", spec.output.plot_series)
            model.save(staging / "model")
            result = PipelineResult(
                name=name,
                as_of=as_of_label,
                status="completed",
                output_dir=str(out_dir),
                forecasts=str(out_dir / "forecasts.parquet"),
                backtest=str(out_dir / "backtest.parquet") if backtest is not None else None,
                plot=str(out_dir / "forecast.png") if plot else None,
                model_dir=str(out_dir / "model"),
                run_id=run_id,
                tracking_uri=tracking_uri,
                model_version=version,
                metrics=metrics,
                rows=int(panel.offsets[-1]),
                series=panel.n_series,
                seconds=round(time.perf_counter() - started, 2),
                spec_hash=digest,
            )
            (staging / "summary.json").write_text(result.model_dump_json(indent=2))
            _log_outputs(run_id, metrics, staging, spec.tracking.register_as, log)
        _replace_directory(staging, out_dir)  # atomic: rename, or swap with the old one
        _remember_model(root, name, digest, out_dir / "model")
        shutil.rmtree(checkpoints, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _remove_stale_staging(out_dir: Path) -> None:
    """Delete staging folders left by killed runs (their process no longer exists)."""
    for folder in out_dir.parent.glob(f".{out_dir.name}.tmp-*-*"):
        try:
            pid = int(folder.name.split(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _latest_pointer(root: Path, name: str) -> Path:
    return root / "models" / name / "latest.json"


def _remember_model(root: Path, name: str, digest: str, model_dir: Path) -> None:
    pointer = _latest_pointer(root, name)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(json.dumps({"spec_hash": digest, "model_dir": str(model_dir)}))
    os.replace(tmp, pointer)


def _model(
    spec, root, estimator, frame, tune, progress, log, digest, checkpoints=None, resume=False
) -> tuple[Any, str]:
    pointer = _latest_pointer(root, spec.pipeline.name)
    if spec.training.reuse_model and pointer.is_file():
        saved = json.loads(pointer.read_text())
        if saved.get("spec_hash") == digest and Path(saved["model_dir"]).is_dir():
            return forecaster.load(saved["model_dir"]), f"reused {saved['model_dir']}"
    do_tune = spec.training.tune if tune is None else tune
    if do_tune:
        from forecaster.tuning import tune as run_tuning

        if distributed.launched_world_size() > 1:
            raise ForecasterError(
                "Tuning under torchrun is not supported: tune in one process (Optuna runs "
                "trials in parallel with n_workers), then fit the tuned model under torchrun."
            )

        result = run_tuning(
            estimator,
            frame,
            n_trials=spec.training.trials,
            timeout=spec.training.timeout,
            storage=spec.training.storage,
            study_name=f"{spec.pipeline.name}-{digest}",
            random_state=spec.model.get("random_state"),
            track=False,
            show_progress=progress,
        )
        return (
            result.best_estimator,
            f"tuned ({len(result.study.trials)} trials), best {result.best_params}",
        )
    t0 = time.perf_counter()
    if checkpoints is None:
        estimator.fit(frame)
    else:
        fit_with_checkpoints(estimator, frame, checkpoints, resume, log)
    epochs = len(estimator.history_)
    return estimator, f"fitted in {time.perf_counter() - t0:.1f} s ({epochs} epochs)"


def _evaluate(
    spec: Spec, model: Any, frame: pl.DataFrame, log: Callable[[str], None]
) -> tuple[dict[str, float], tuple[pl.DataFrame, pl.DataFrame] | None]:
    folds = spec.evaluation.backtest_folds
    metrics: dict[str, float] = {}
    best = [r["val_loss"] for r in model.history_ if r["val_loss"] is not None]
    if best:
        metrics["val_loss"] = float(min(best))
    if folds == 0:
        return metrics, None
    from sklearn.base import clone

    from forecaster.evaluation import backtest

    # An unfitted clone, fitted once on the data before the first origin: the scores are out of
    # sample (the fitted model has seen every backtest target).
    with _tracking_paused():  # the backtest's own fit is not a logged model of the run
        result = backtest(
            clone(model).set_params(checkpoint_dir=None),  # must not replace the fit's checkpoints
            frame,
            folds=folds,
            refit=False,
            metrics=spec.evaluation.metrics,
            m=spec.evaluation.seasonality,
        )
    overall = result.aggregate
    for name in result.metric_names:
        if name in overall.columns:
            metrics[f"backtest_{name}"] = float(overall[name].mean())
    log("backtest " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return metrics, (result.metrics, result.by_step)


def _plot(frame: pl.DataFrame, forecast: pl.DataFrame, model: Any, path: Path, n: int) -> bool:
    """History tail and forecast of the first ``n`` series (needs matplotlib)."""
    if n == 0:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    id_col, time_col = model.id_col, model.time_col
    targets = [model.target] if isinstance(model.target, str) else list(model.target)
    keys = forecast[id_col].unique(maintain_order=True).to_list()[:n] if id_col else [None]
    figure, axes = plt.subplots(len(keys), 1, figsize=(9, 2.4 * len(keys)), squeeze=False)
    tail = 4 * int(model.horizon) + int(model.lookback)
    for axis, key in zip(axes[:, 0], keys, strict=True):
        history = frame if key is None else frame.filter(pl.col(id_col) == key)
        future = forecast if key is None else forecast.filter(pl.col(id_col) == key)
        history = history.sort(time_col).tail(tail)
        for target in targets[:3]:
            line = axis.plot(history[time_col], history[target], label=f"{target}")[0]
            axis.plot(
                future[time_col],
                future[target],
                "--",
                color=line.get_color(),
                label=f"{target} forecast",
            )
        axis.set_title(str(key) if key is not None else "series", fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def _tracking_paused() -> contextlib.AbstractContextManager[None]:
    try:
        from forecaster import tracking
    except ImportError:
        return contextlib.nullcontext()
    return tracking.paused()


@contextlib.contextmanager
def _tracked_run(spec: Spec, as_of: str, log: Callable[[str], None]):
    """An active MLflow run for the pipeline (fits inside it are logged by the fit hook), or
    ``(None, None)`` when tracking is off or mlflow is not installed."""
    if not spec.tracking.enabled:
        yield None, None
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        import mlflow
        from forecaster import tracking
    except ImportError:
        log('tracking off: mlflow is not installed (pip install "forecaster[track]")')
        yield None, None
        return
    try:
        if os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`: log into the run it created
            uri = tracking.default_tracking_uri()
            mlflow.set_tracking_uri(uri)
            run = mlflow.start_run()
        else:
            experiment = spec.tracking.experiment or spec.pipeline.name
            uri = tracking.configure(experiment=experiment).tracking_uri
            run = mlflow.start_run(run_name=f"{spec.pipeline.name}-{as_of}")
    except Exception as exc:  # tracking must never stop the job
        warnings.warn(
            f"MLflow tracking is unavailable ({exc}); the pipeline runs without it.",
            ForecasterWarning,
            stacklevel=3,
        )
        yield None, None
        return
    status = "FAILED"
    try:
        mlflow.set_tags({"pipeline": spec.pipeline.name, "as_of": as_of})
        yield run.info.run_id, uri
        status = "FINISHED"
    finally:
        with contextlib.suppress(Exception):
            mlflow.end_run(status=status)


def _log_outputs(
    run_id: str | None,
    metrics: dict[str, float],
    staging: Path,
    register_as: str | None,
    log: Callable[[str], None],
) -> None:
    if run_id is None:
        return
    try:
        import mlflow
        from forecaster import tracking

        mlflow.log_metrics({f"pipeline_{k}": v for k, v in metrics.items()})
        if (staging / "backtest_by_step.parquet").is_file():  # metrics by horizon step
            by_step = pl.read_parquet(staging / "backtest_by_step.parquet")
            names = [c for c in by_step.columns if c not in ("step", "target", "n")]
            for row in by_step.iter_rows(named=True):
                for name in names:
                    if row[name] is not None:
                        mlflow.log_metric(f"backtest_{name}_by_step", row[name], step=row["step"])
        for name in ("forecasts.parquet", "backtest.parquet", "forecast.png"):
            if (staging / name).is_file():
                mlflow.log_artifact(str(staging / name), artifact_path="outputs")
        fitted = tracking.last_fit()
        if register_as and fitted is not None and getattr(fitted, "model_uri", None):
            mlflow.register_model(fitted.model_uri, register_as)
    except Exception as exc:
        warnings.warn(
            f"Could not log the pipeline outputs to MLflow ({exc}); they are still written "
            f"locally.",
            ForecasterWarning,
            stacklevel=2,
        )

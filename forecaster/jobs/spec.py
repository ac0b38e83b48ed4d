"""Pipeline specs: the TOML file and its validation, before any data is read.

A spec (``pipelines/*.toml``) names a data source, the series' columns, a few features, the
estimator's parameters, training / tuning, evaluation, tracking and outputs. :func:`parse_spec`
validates it with pydantic (unknown keys are errors, and every error names the file, the key,
what was expected and what was received) and checks ``[model]`` with the estimator's own
``validate_params``; :func:`forecaster.jobs.placement.load_spec` then checks where the outputs
go. This module also resolves the spec's paths (:func:`spec_path`, :func:`output_dir`,
:func:`storage_url`, :func:`checkpoint_folder`); :func:`build_estimator` builds its estimator.

The project and its paths
    The project root is the parent of the ``pipelines/`` folder holding the spec (else the
    spec's folder), taken from the spec's path as given: absolute, a leading ``~`` expanded,
    links *not* followed. A project whose ``pipelines/`` is a link to another project's specs
    runs them on its own data and writes its own outputs. Every path-valued key is relative
    to that root, never to the working directory, with a leading ``~`` expanded, and must stay
    inside it (``SpecError``, exit 2, otherwise): ``source.path``, ``output.dir``,
    ``model.checkpoint_dir`` and the file of a ``sqlite:///`` ``training.storage``. None may
    hold a NUL character or a name longer than file systems allow (255 bytes; the last part
    of ``output.dir`` 215, to leave room for the names derived from it), nor lie inside (or
    be) a folder forecaster wrote (a run's outputs, a model), nor be where ``source.path``
    would read them as data. ``training.storage = "default"`` is the tuning module's default
    (next to the MLflow store: ``mlflow/optuna.db`` in the project folder unless
    ``MLFLOW_TRACKING_URI`` names a SQLite file), like the tracking store itself.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core.core_schema import ValidationInfo

import forecaster._io as _io
from forecaster._validation import check, resolve_device
from forecaster.data.checks import check_output_names
from forecaster.data.frequency import holiday_dates
from forecaster.datasets import stock_tickers
from forecaster.estimators import GRUForecaster, LSTMForecaster, RNNForecaster, SimpleRNNForecaster
from forecaster.exceptions import DataValidationError, SpecError
from forecaster.jobs.scores import (
    check_levels,
    check_scores,
    is_quantile_model,
    level_quantiles,
    metric_name,
    objective_name,
)
from forecaster.jobs.spec_errors import describe_errors, source_rename

__all__ = [
    "COLUMN_PARAMS",
    "ESTIMATORS",
    "NO_CHECKPOINTS",
    "RUN_COLUMNS",
    "SERIES_KEYS",
    "SPEC_LIMIT",
    "Spec",
    "SpecError",
    "build_estimator",
    "first_line",
    "is_quantile_model",
    "level_quantiles",
    "logret_column",
    "normal_path",
    "output_dir",
    "parse_spec",
    "spec_file",
    "spec_path",
    "splits_by_as_of",
    "sqlite_file",
    "storage_url",
]


SPEC_LIMIT = 2**20
"""Largest spec file read (bytes)."""


class _Strict(BaseModel):  # strict: true is no integer, "20" no number, "yes" no bool
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PipelineInfo(_Strict):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", value):
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", value).lstrip(".")[:100] or "my_pipeline"
            raise ValueError(
                "expected 1 to 100 letters, digits, '_', '.' or '-', not starting with '.' (it "
                f"names folders: outputs/<name>, models/<name>), e.g. name = {safe!r}"
            )
        return value


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
    decimal_comma: bool = False  # CSV numbers written 9,868 (polars' read_csv decimal_comma)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return value if value is None else _path_text(value)

    @field_validator("tickers")
    @classmethod
    def _tickers(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and not value:
            raise ValueError(
                "expected at least one ticker; leave the key out to read every bundled ticker"
            )
        if value and info.data.get("dataset") == "stocks":  # else refused as unused
            stock_tickers(value, each_once=True)  # unknown, twice: a DataValidationError here
        return value


class SeriesSpec(_Strict):
    id: str | None = None
    time: str
    targets: list[str] = Field(min_length=1)
    covariates: list[str] = []
    future_covariates: list[str] = []
    static_covariates: list[str] = []
    freq: str = "auto"
    missing: Literal["error", "ffill", "zero", "interpolate"] = "error"
    max_staleness: int | None = Field(None, ge=0)  # these three: forecaster.jobs.schedule
    stale: Literal["exclude", "forecast"] = "exclude"
    holidays: Annotated[list[Any], BeforeValidator(holiday_dates)] = []


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
    timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    storage: str = "default"
    objective: str = "val_loss"

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, value: Any) -> str:
        return objective_name(value)  # checked against the model: forecaster.jobs.scores

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        _check_storage_url(_path_text(value))
        return value


class EvaluationSpec(_Strict):
    backtest_folds: int = Field(3, ge=0)
    metrics: list[str] = Field(["mae", "smape"], min_length=1)
    seasonality: int = Field(1, ge=1)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> list[str]:
        """Point and interval scores (:func:`forecaster.jobs.scores.metric_name`), each once."""
        if not isinstance(value, list):
            raise ValueError("expected a list of metric names, e.g. metrics = ['mae', 'smape']")
        names = [metric_name(v) for v in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"expected each metric once, got {repeated} more than once")
        return names


class TrackingSpec(_Strict):
    enabled: bool = True
    experiment: str | None = None
    register_as: str | None = None


class OutputSpec(_Strict):
    dir: str = "outputs/{name}/{as_of}"
    plot_series: int = Field(4, ge=0)
    levels: list[float] | None = None

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        """Prediction-interval levels in percent: distinct numbers in (1, 100), in increasing
        order (the table's rule of ``level``, which every ``predict(level=...)`` applies)."""
        expected = (
            "expected a non-empty list of distinct numbers in (1, 100), in increasing order, "
            "e.g. levels = [80, 95] (the 80 % and 95 % prediction intervals)"
        )
        if not isinstance(value, list):
            raise ValueError(expected)
        try:
            levels = list(check("level", value))
        except DataValidationError:
            raise ValueError(expected) from None
        if levels != [float(v) for v in value]:
            raise ValueError(expected)
        return levels

    @field_validator("dir")
    @classmethod
    def _template(cls, value: str) -> str:
        _check_template(_path_text(value))
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


def _path_text(value: str) -> str:
    """A path-valued key's text, refused when no file name could hold it."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\x00), which no file name can hold")
    return value


def _check_template(value: str) -> None:
    """Only the plain placeholders ``{name}`` and ``{as_of}`` (no index, attribute, conversion
    or format spec: each would name another folder than the one checked)."""
    allowed = "only the placeholders {name} and {as_of} are allowed"
    try:
        fields = [item for item in string.Formatter().parse(value) if item[1] is not None]
    except ValueError as exc:
        raise ValueError(
            f"not a valid template ({exc}); {allowed}, and '{{{{' for a brace"
        ) from None
    for _, field, format_spec, conversion in fields:
        if field not in ("name", "as_of") or format_spec or conversion:
            shown = "{" + field
            shown += f"!{conversion}" if conversion else ""
            shown += f":{format_spec}}}" if format_spec else "}"
            raise ValueError(f"{allowed} (no index, attribute, conversion or format), got {shown}")


def splits_by_as_of(template: str) -> bool:
    """Whether the ``output.dir`` ``template`` has the placeholder ``{as_of}`` (one folder per
    as-of), read as ``str.format`` reads it: ``{{as_of}}`` is the text ``{as_of}``, a literal
    folder name that every as-of shares, not the placeholder.

    Examples
    --------
    >>> splits_by_as_of("outputs/{name}/{as_of}"), splits_by_as_of("outputs/{name}/{{as_of}}")
    (True, False)
    """
    return any(field == "as_of" for _, field, _, _ in string.Formatter().parse(template))


_STORAGE_HINT = (
    "expected 'default' or a database URL that SQLAlchemy supports, such as "
    "'sqlite:///studies/optuna.db' or 'postgresql://user:password@host/db'"
)


def _check_storage_url(value: str) -> None:
    """``"default"`` or a database URL of a dialect SQLAlchemy knows (checked without
    connecting; a missing driver is reported when the study opens)."""
    if value == "default":
        return
    if "://" not in value:
        raise ValueError(_STORAGE_HINT)
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # tuning is not installed: `tune` says so when it runs
        return
    try:
        make_url(value).get_dialect()
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        scheme = value.split("://", 1)[0]
        raise ValueError(
            f"the scheme {scheme!r} is not a database SQLAlchemy supports ({first_line(exc)}); "
            f"{_STORAGE_HINT}"
        ) from None


ESTIMATORS: dict[str, type] = {
    cls.__name__: cls for cls in (RNNForecaster, LSTMForecaster, GRUForecaster, SimpleRNNForecaster)
}
_MODEL_CLASSES = tuple(ESTIMATORS)


SERIES_KEYS = {  # the estimator parameters that [series] sets, and their spec keys
    "target": "series.targets",
    "time_col": "series.time",
    "id_col": "series.id",
    "covariates": "series.covariates",
    "future_covariates": "series.future_covariates",
    "static_covariates": "series.static_covariates",
    "freq": "series.freq",
    "missing": "series.missing",
}


COLUMN_PARAMS = tuple(SERIES_KEYS)

RUN_COLUMNS = ("model_version", "run_id")
"""The columns a run writes beside the forecasts in ``forecasts.parquet`` (the model's
version, its MLflow run), after ``origin`` and ``stale_steps`` (which every forecaster
refuses as a column's name: :func:`forecaster.data.checks.check_output_names`)."""


def parse_spec(file: Path) -> tuple[Spec, Path]:
    """Read and validate the TOML spec at ``file`` (from :func:`spec_file`): its keys, its
    ``[model]`` parameters (by the estimator) and its source; return it and the project root.
    Where its outputs go is checked by :func:`forecaster.jobs.placement.load_spec`.

    Raises
    ------
    SpecError
        Naming the file, the key, what was expected and what was received.
    """
    try:  # a regular file of at most SPEC_LIMIT bytes: a pipe or device is not read
        data = _io.read_file_bounded(file, SPEC_LIMIT, error=SpecError, what="spec file")
    except (FileNotFoundError, NotADirectoryError):
        raise SpecError(
            f"{file}: no such spec file. Pass the path of a pipelines/*.toml file."
        ) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{file}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise SpecError(f"{file}: not valid TOML: nested too deeply.") from None
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(describe_errors(file, exc, Spec)) from None
    root = normal_path(file).parent
    if root.name == "pipelines":
        root = root.parent
    _check_log_returns(file, spec)
    _check_run_columns(file, spec)
    _check_model_section(file, spec)
    check_levels(file, spec)
    check_scores(file, spec)
    _check_source(file, spec, root)
    return spec, root


def spec_file(path: Any) -> Path:
    """The spec path as given, with a leading ``~`` expanded (not resolved: see load_spec)."""
    file = _io.as_path(path, "spec_path", error=SpecError)
    return Path(os.path.expanduser(file))


def logret_column(column: str) -> str:
    """The name of the column of log returns that ``[features] log_returns`` adds for
    ``column`` (a covariate of the model)."""
    return f"{column}_logret"


def _check_log_returns(file: Path, spec: Spec) -> None:
    """Each ``[features] log_returns`` column once, and no column the spec names is one that
    log_returns adds (the source's column of that name would be replaced)."""
    series, returns = spec.series, spec.features.log_returns
    repeated = sorted({c for c in returns if returns.count(c) > 1})
    if repeated:
        raise SpecError(
            f"{file}: key 'features.log_returns': {repeated} listed more than once; name each "
            "column once."
        )
    keys = {
        "series.id": [series.id] if series.id else [],
        "series.time": [series.time],
        "series.targets": series.targets,
        "series.covariates": series.covariates,
        "series.future_covariates": series.future_covariates,
        "series.static_covariates": series.static_covariates,
        "features.log_returns": returns,
    }
    for column in returns:
        added = logret_column(column)
        for key, names in keys.items():
            if added in names:
                raise SpecError(
                    f"{file}: key {key!r} names {added!r}, the column that features.log_returns "
                    f"adds for {column!r} (its log returns, a covariate of their own). If you "
                    f"meant those returns, leave {added!r} out of {key}; if the source has a "
                    f"column {added!r} of its own, rename it (in the source and the spec): "
                    "log_returns would replace it."
                )


def _check_run_columns(file: Path, spec: Spec) -> None:
    """No target, id or time column is named like a column written beside it, each refused
    naming its key: by the forecasts or a backtest (:func:`check_output_names`, as ``fit``
    checks them) or by a run in ``forecasts.parquet`` (:data:`RUN_COLUMNS`). Covariates are
    written in neither. (The columns a backtest's scores refuse are checked by the commands
    that backtest: :func:`~forecaster.jobs.spec_errors.check_backtest_columns`.)"""
    series, targets = spec.series, tuple(spec.series.targets)
    ids = () if series.id is None else (series.id,)
    named = [("series.targets", "target", targets), ("series.id", "id", ids)]
    for key, role, names in [*named, ("series.time", "time", (series.time,))]:
        try:
            check_output_names({"target": targets, role: names}, fix=source_rename(key))
        except DataValidationError as exc:
            raise SpecError(f"{file}: key {key!r}: {exc}") from None
        clash = [name for name in names if name in RUN_COLUMNS]
        if clash:
            raise SpecError(
                f"{file}: key {key!r} names {clash[0]!r}, a column a run writes beside the "
                f"forecasts in forecasts.parquet ({', '.join(RUN_COLUMNS)}: the model's version "
                "and its MLflow run), which would replace it there. Rename the column (in the "
                "source and the spec)."
            )


def _check_model_section(file: Path, spec: Spec) -> None:
    """Known [model] keys, then their values as the estimator checks them (``validate_params``),
    so that ``horizon = "five"`` is refused naming the key before any data is read."""
    params = dict(spec.model)
    name = params.pop("estimator", "RNNForecaster")
    if not isinstance(name, str) or name not in _MODEL_CLASSES:
        raise SpecError(
            f"{file}: key 'model.estimator': expected one of {list(_MODEL_CLASSES)}, "
            f"received {name!r}."
        )
    estimator = ESTIMATORS[name]()
    allowed = [p for p in estimator.get_params() if p not in (*COLUMN_PARAMS, "progress")]
    for key in params:
        if key in COLUMN_PARAMS:
            raise SpecError(
                f"{file}: key 'model.{key}' belongs in [series] (it describes the data), "
                "not in [model]."
            )
        if key == "progress":
            raise SpecError(
                f"{file}: key 'model.progress' is not a spec setting: progress bars are the "
                "command's choice (--no-progress, or run_pipeline(progress=False))."
            )
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"{file}: unknown key 'model.{key}'{hint}. Allowed: {', '.join(sorted(allowed))}."
            )
    try:
        estimator = build_estimator(spec, False)
        estimator.validate_params()
        resolve_device(estimator.device)  # cuda on a machine without it: exit 2, not 3
        # as fit would, before any data (the run's fits have a checkpoint folder of their own)
        estimator.set_params(checkpoint_dir=estimator.checkpoint_dir or ".").check_used_params()
    except (DataValidationError, TypeError, ValueError) as exc:
        raise SpecError(f"{file}: {_parameter_key(str(exc), spec)}: {exc}") from None


def _parameter_key(message: str, spec: Spec) -> str:
    """The spec key that a parameter error is about: the parameter it starts with, else the
    first one it names (``[model]`` when it names none the spec sets)."""
    keys = {**SERIES_KEYS, **{key: f"model.{key}" for key in spec.model}}
    first = re.match(r"\W*(\w+)", message)
    if first and first.group(1) in keys:
        return f"key {keys[first.group(1)]!r}"
    for parameter, key in keys.items():
        if re.search(rf"\b{re.escape(parameter)}\b", message):
            return f"key {key!r}"
    return "[model]"


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
        resolved = spec_path(root, source.path)
        if not resolved.is_relative_to(normal_path(root)):
            raise SpecError(
                f"{file}: key 'source.path' points outside the project ({resolved}); data "
                f"paths must stay under {root}. Copy or link the data into the project."
            )
        if source.format == "wav" and spec.features.mfcc is None:
            raise SpecError(f"{file}: a 'wav' source needs a [features.mfcc] section.")


def spec_path(root: Path, value: str) -> Path:
    """The path a path-valued spec key names: a leading ``~`` expanded, relative to the
    project ``root``, absolute and normalised as written (links not followed: a link the
    project's owner put inside the project is followed later, as the owner meant it)."""
    return normal_path(Path(root) / os.path.expanduser(value))


def normal_path(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute, with ``.`` and ``..`` removed as written (links not followed)."""
    return Path(os.path.normpath(Path(path).absolute()))


def output_dir(spec: Spec, root: Path, label: str) -> Path:
    """The output folder of ``spec`` for the as-of ``label`` (absolute, normalised as written)."""
    return spec_path(root, spec.output.dir.format(name=spec.pipeline.name, as_of=label))


def sqlite_file(storage: str) -> str | None:
    """The file part of a ``sqlite:///`` storage URL (None: not a SQLite file)."""
    match = re.fullmatch(r"sqlite(\+\w+)?:///([^?]*)(\?.*)?", storage)
    if match is None or match.group(2) in ("", ":memory:"):
        return None
    return match.group(2)


def storage_url(spec: Spec, root: Path) -> str:
    """``training.storage`` with the file of a ``sqlite:///`` URL made absolute under the
    project ``root`` (as every path-valued key is), ``"default"`` the tuning module's default
    of the project (beside its tracking store); other values as they are."""
    from forecaster.tuning.storage import default_storage_url  # tuning: imported when needed

    storage = spec.training.storage
    file = sqlite_file(storage)
    if file is None:
        return default_storage_url(root) if storage == "default" else storage
    scheme, rest = storage.split(":///", 1)
    query = rest[len(file) :]
    return f"{scheme}:///{spec_path(root, file)}{query}"


def build_estimator(spec: Spec, progress: bool) -> Any:
    """The spec's (unfitted) forecaster: [model] parameters plus the [series] columns."""
    params = dict(spec.model)
    name = params.pop("estimator", "RNNForecaster")
    series = spec.series
    covariates = [*series.covariates, *map(logret_column, spec.features.log_returns)]
    return ESTIMATORS[name](
        target=series.targets if len(series.targets) > 1 else series.targets[0],
        id_col=series.id,
        time_col=series.time,
        covariates=covariates or None,
        future_covariates=series.future_covariates or None,
        static_covariates=series.static_covariates or None,
        freq=series.freq,
        missing=series.missing,
        progress=progress,
        **params,
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


NO_CHECKPOINTS = {"checkpoint_dir": None, "checkpoint_every": 1}
"""The parameters :func:`without_checkpoints` sets (a caller that restores them reads these)."""


def without_checkpoints(model: Any) -> Any:
    """``model`` set to write no checkpoints (``checkpoint_dir=None``, ``checkpoint_every=1``,
    which ``fit`` would refuse otherwise): for the pipeline's other fits (backtest and
    calibration clones, tuning trials), which must not replace the run's checkpoints."""
    return model.set_params(**NO_CHECKPOINTS)

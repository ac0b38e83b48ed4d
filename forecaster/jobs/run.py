"""Declarative forecasting pipelines: a TOML spec, validated up front, run idempotently.

A spec (``pipelines/*.toml``) names a data source, the series' columns, a few features, the
estimator's parameters, training / tuning, evaluation, tracking and outputs. :func:`load_spec`
validates it with pydantic (unknown keys are errors, and every error names the file, the key,
what was expected and what was received), checks the ``[model]`` parameters with the
estimator's own ``validate_params`` and checks where the outputs go, all before any data is
read. :func:`run_pipeline` loads the data, fits (or reuses, or tunes) the model, backtests it,
forecasts, and writes the outputs of one *as-of* date atomically:

``<output.dir>/`` (the template expanded with ``name`` and ``as_of``)
    ``forecasts.parquet`` (id, time, targets, model_version, run_id), ``backtest.parquet``
    (metrics by fold, series and step), ``forecast.png``, ``model/`` (a saved model),
    ``summary.json`` (what ran, the requested and the effective as-of, the series that end
    before it, metrics, paths) and ``manifest.json``, written last: the pipeline, spec hash
    and as-of, and the sha256 of every file, which proves the folder forecaster's.

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
    (next to the MLflow store: ``mlflow/optuna.db`` in the working directory unless
    ``MLFLOW_TRACKING_URI`` names a SQLite file), like the tracking store itself.
Ownership
    The folder is written in a hidden staging folder beside it and put in place in one step
    (:func:`forecaster._io.publish_directory`). A folder already there is replaced only when
    its manifest proves it the outputs of the same pipeline, with no file added or changed
    since; anything else is refused with an ``OwnershipError`` (exit 2) and left as it is.
    Outputs written before run folders had a manifest (only the files a run writes, and a
    ``summary.json`` of the same pipeline) are recognised as the pipeline's.
Where outputs may go
    ``output.dir`` must name a folder of its own inside the project: not the project folder;
    not a folder holding the spec, the ``pipelines/`` folder, the data the source reads or the
    pointer ``models/<name>/latest.json``; not a folder that ``source.path`` would read as data;
    not inside a folder forecaster wrote (another run's outputs, a model); not an existing
    folder forecaster did not write, nor one holding another pipeline's outputs.
    :func:`load_spec` checks this before reading data (with the as-of still open), the run
    again with its as-of, before training. A ``SpecError`` (exit 2) names ``output.dir``, what
    it resolves to and why.
Idempotency and concurrency
    A spec and as-of label produce their outputs once: a rerun reports them (status
    ``skipped``, with the paths of the folder as it is now) unless ``force=True``, after
    checking every file against the manifest: a file missing or changed is refused
    (``OwnershipError``, exit 2, naming the files; missing only: ``--force`` writes them
    again; changed: move them out, forecaster never replaces what it did not write). A file
    added beside intact outputs does not stop the report (``--force`` refuses it). A
    template without ``{as_of}`` keeps the latest as-of: a run of a later as-of replaces its
    outputs, one of an earlier as-of (a backfill) needs ``force`` (``OwnershipError``, exit 2,
    naming both as-ofs). Runs writing one output folder are serialised by the lock file
    ``.<folder name>.lock`` beside it (:func:`output_lock`; left in place: deleting a lock file
    that another process waits on would break the lock; a link or folder there is refused,
    exit 2): a second run stops at once with a ``ConcurrentRunError`` (exit 4, "busy"), or
    with ``wait`` queues behind the first and then finds its outputs (``skipped``). Staging
    folders of killed runs are removed by the next run, while it holds that lock.
As-of labels
    The label is the *effective* as-of, the last time in the data the as-of selects, formatted
    for the time column (:func:`as_of_label`): a ``Date`` ``YYYY-MM-DD``; a ``Datetime``
    ``YYYY-MM-DD`` when that time is midnight, else ``YYYY-MM-DDTHH-MM-SS`` (``.ffffff`` when
    needed; local time of the column's zone, with the UTC offset when the wall time occurs
    twice; ``-`` for ``:``, which some file systems refuse); an integer step the integer. So
    the same rows always make the same run: ``20170620``, ``2017-06-20`` and
    ``2017-06-20T00:00`` on a date column, ``2024-06-01`` and ``2024-06-01T00:00`` on daily
    datetimes, a Friday and the weekend after it on business days. A date on a ``Datetime``
    column selects the whole day (in the column's zone), a date and time up to that moment; a
    time of day on a ``Date`` column is refused. No as-of: the last time in the data. A cron
    job passing ``--as-of $(date +%F)`` on a holiday selects the previous trading day's rows:
    it reports that day's outputs as already written (exit 0) once that day has run.
As-of outside the data
    Before the first time in the data: ``DataValidationError`` (exit 3). After the last time,
    including a date in the future: accepted with a ``ForecasterWarning``, and labelled as the
    data's last time. It selects exactly the rows of that as-of, so its outputs are that
    as-of's, and a rerun finds them. Refusing would fail every scheduled run on a day the data
    has not reached (a holiday, a late feed); labelling it with the requested date would name a
    forecast after data it never saw. The clock plays no part: the data defines time, and data
    dated in the future is used as it is.
Series that end before the as-of
    Each series is forecast from its own last row, so a series whose data ends before the
    effective as-of (a delisted ticker, a late feed) gets forecasts dated before it.
    :func:`prepare_data`, which every command goes through, names them in a
    ``ForecasterWarning`` (their count, the first five with their last times), and the run
    records them in ``summary.json`` (``stale_series``: id -> last time, at most
    :data:`STALE_LISTED`; ``stale_series_count``). They are kept: dropping them is the spec's
    choice (``source.tickers``, a narrower ``source.path``).
Reusing the latest model (``training.reuse_model``)
    ``models/<name>/latest.json`` points at the model of the pipeline's latest run, with the
    as-of of its data. It is read bounded and checked: same spec hash, inside a run folder of
    this pipeline whose files are unchanged, trained on data up to this run's effective as-of
    at most (a backfill never gets a model that saw later data), a model that loads. When one
    of these fails the run says why (a ``ForecasterWarning`` and a log line) and trains a new
    model: reuse is a shortcut, and a scheduled run should not fail because a cache went
    stale. A backfill does not move the pointer back to its older model. ``tune=True``
    (``--tune``) wins over ``reuse_model`` (a log line says so); the spec's ``training.tune``
    applies when no model is reused.
Tuning
    The Optuna study of a run is :func:`study_name`: ``<name>-<spec hash>-<as-of label>``. A
    study holds the trials of one as-of, so a backfill never reuses scores measured on later
    data (and a new as-of starts a new study). ``run --tune`` and ``forecaster tune`` of one
    spec and as-of share the study and its lock (``models/<name>/.<label>-tuned.lock``), so
    they never run the same trials twice; ``forecaster tune`` saves the study's refitted best
    model under that lock. Trials write no checkpoints; the study is logged to MLflow only when
    ``[tracking] enabled`` (``run --tune`` logs the fits of the run's own MLflow run).
Checkpoints
    Fits checkpoint into :func:`checkpoint_folder`: ``model.checkpoint_dir`` (relative to the
    project; shared by every as-of of the spec, so one run at a time), else a hidden folder
    beside the outputs. A command that fitted removes its checkpoint files on success. With
    ``resume`` a fit continues from them; with none, or with checkpoints written for other
    data or parameters (yesterday's failed run), it starts from scratch with a log line, so a
    scheduler can always pass ``--resume``.
Errors
    Only forecaster's types leave :func:`run_pipeline` and the ``forecaster`` commands
    (:func:`translated_errors`): ``SpecError`` (also an argument of the wrong type: ``force``,
    ``dry_run``, ``resume``, ``progress`` strictly bools, ``tune`` a bool or None, ``as_of`` a
    string, date, datetime or int, ``wait`` seconds or None, ``log`` a callable),
    ``OwnershipError`` and ``ModelFormatError`` (exit 2 in the CLI), ``DataValidationError``
    (3), ``ConcurrentRunError`` (4), any other ``ForecasterError`` (1): an operating-system
    error (also inside Polars: a full disk) with the system's message, anything else as a bug.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import fnmatch
import glob
import hashlib
import itertools
import json
import logging
import math
import numbers
import os
import re
import stat
import string
import time
import tomllib
import warnings
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import forecaster
from forecaster import _io
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    OwnershipError,
)
from forecaster.training import distributed as distributed

__all__ = [
    "AsOf",
    "PipelineResult",
    "Spec",
    "SpecError",
    "as_of_label",
    "build_estimator",
    "checkpoint_folder",
    "fit_with_checkpoints",
    "load_data",
    "load_spec",
    "output_dir",
    "output_lock",
    "path_problem",
    "prepare_data",
    "run_pipeline",
    "spec_path",
    "storage_url",
    "study_name",
    "tracked_run",
    "translated_errors",
    "tune_model",
    "tuned_model_dir",
]

SPEC_LIMIT = 2**20
"""Largest spec file read (bytes)."""
SUMMARY_LIMIT = 4 * 2**20
"""Largest ``summary.json`` read (bytes)."""
POINTER_LIMIT = 64 * 2**10
"""Largest ``models/<name>/latest.json`` read (bytes)."""


class SpecError(ForecasterError, ValueError):
    """A pipeline spec is missing, unreadable or invalid, or a run's argument does not fit it
    (exit code 2 in the CLI)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineInfo(_Strict):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", value):
            raise ValueError(
                "expected 1 to 100 letters, digits, '_', '.' or '-', not starting with '.' (the "
                "name names folders: outputs/<name>, models/<name>)"
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

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return value if value is None else _path_text(value)

    @field_validator("tickers")
    @classmethod
    def _tickers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError(
                "expected at least one ticker; leave the key out to read every bundled ticker"
            )
        return value


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
    timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    storage: str = "default"

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        _check_storage_url(_path_text(value))
        return value


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
            f"the scheme {scheme!r} is not a database SQLAlchemy supports ({_first_line(exc)}); "
            f"{_STORAGE_HINT}"
        ) from None


# ------------------------------------------------------------------------------------------
# loading and validation
# ------------------------------------------------------------------------------------------

_MODEL_CLASSES = ("RNNForecaster", "LSTMForecaster", "GRUForecaster", "SimpleRNNForecaster")
_SERIES_KEYS = {
    "target": "series.targets",
    "time_col": "series.time",
    "id_col": "series.id",
    "covariates": "series.covariates",
    "future_covariates": "series.future_covariates",
    "freq": "series.freq",
    "missing": "series.missing",
}
_COLUMN_PARAMS = tuple(_SERIES_KEYS)


def load_spec(path: str | os.PathLike[str]) -> tuple[Spec, Path]:
    """Read and validate a TOML spec; return it and the project root it is relative to.

    The project root is the parent of the ``pipelines/`` folder holding the spec (or the
    spec's own folder otherwise), taken from the spec's path *as given* (made absolute, a
    leading ``~`` expanded, links not followed): a project whose ``pipelines/`` is a link to
    another project's specs runs them on its own data and writes its own outputs. Every
    path-valued key (``source.path``, ``output.dir``, ``model.checkpoint_dir``, the file of a
    ``sqlite:///`` ``training.storage``; a leading ``~`` expanded) is relative to that root,
    must stay inside it, and is checked against the placement rules of the module docstring,
    as are the ``[model]`` parameters (by the estimator), before any data is read.

    Raises
    ------
    SpecError
        Naming the file, the key, what was expected and what was received.
    """
    file = _spec_file(path)
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
        raise SpecError(_describe_errors(file, exc)) from None
    root = _normal(file).parent
    if root.name == "pipelines":
        root = root.parent
    _check_model_section(file, spec)
    _check_source(file, spec, root)
    _check_output(file, spec, root, None)
    _check_side_paths(file, spec, root)
    return spec, root


def _spec_file(path: Any) -> Path:
    """The spec path as given, with a leading ``~`` expanded (not resolved: see load_spec)."""
    file = _io.as_path(path, "spec_path", error=SpecError)
    return Path(os.path.expanduser(file))


def _describe_errors(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        received = error.get("input")
        if key == "training.storage" and isinstance(received, str):
            received = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", received)  # no password shown
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
    """Known [model] keys, then their values as the estimator checks them (``validate_params``),
    so that ``horizon = "five"`` is refused naming the key before any data is read."""
    params = dict(spec.model)
    name = params.pop("estimator", "RNNForecaster")
    if not isinstance(name, str) or name not in _MODEL_CLASSES:
        raise SpecError(
            f"{file}: key 'model.estimator': expected one of {list(_MODEL_CLASSES)}, "
            f"received {name!r}."
        )
    estimator = getattr(forecaster, name)()
    allowed = [p for p in estimator.get_params() if p not in (*_COLUMN_PARAMS, "progress")]
    for key in params:
        if key in _COLUMN_PARAMS:
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
        build_estimator(spec, False).validate_params()
    except (DataValidationError, TypeError, ValueError) as exc:
        raise SpecError(f"{file}: {_parameter_key(str(exc), spec)}: {exc}") from None


def _parameter_key(message: str, spec: Spec) -> str:
    """The spec key that a parameter error is about: the parameter it starts with, else the
    first one it names (``[model]`` when it names none the spec sets)."""
    keys = {**_SERIES_KEYS, **{key: f"model.{key}" for key in spec.model}}
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
        if not resolved.is_relative_to(_normal(root)):
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
    return _normal(Path(root) / os.path.expanduser(value))


def _normal(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute, with ``.`` and ``..`` removed as written (links not followed)."""
    return Path(os.path.normpath(Path(path).absolute()))


NAME_MAX = 255
"""Longest file name (bytes) forecaster writes (the limit of common file systems)."""
_NAME_ROOM = 40
"""Bytes the last part of an output path leaves free for the names derived from it
(``.<name>.staging-<hex>``, ``.<name>.lock``, ``<name>.forecasts.parquet`` and its temporary
file)."""


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why forecaster cannot write a file or folder at ``path`` (None when it can): a NUL
    character, a part longer than file systems allow (the last one leaves room for the names
    derived from it), or a part of the path that is a file or a link that leads nowhere."""
    text = os.fspath(path)
    if "\x00" in text:
        return "it contains a NUL character (\\x00), which no file name can hold"
    parts = Path(text).parts
    for index, part in enumerate(parts):
        size = len(os.fsencode(part))
        limit = NAME_MAX - (_NAME_ROOM if index == len(parts) - 1 else 0)
        if size > limit:
            return (
                f"its part {part[:40]!r}... has {size} bytes, more than the {limit} a name can "
                "have here; shorten it"
            )
    if len(os.fsencode(text)) > 3800:
        return "it is longer than file systems allow (4096 bytes with the names inside it)"
    for folder in Path(text).parents:
        try:
            if folder.exists() and not folder.is_dir():
                return f"that path goes through {folder}, which is a file"
            if folder.is_symlink() and not folder.exists():
                return f"that path goes through {folder}, a link that leads nowhere (or in a loop)"
        except OSError:  # not searchable: writing there reports the system's reason
            return None
    return None


# ------------------------------------------------------------------------------------------
# where the outputs go
# ------------------------------------------------------------------------------------------

_PROBE_LABEL = "2000-01-01"
"""The as-of used to check ``output.dir`` before the real one is known (labels hold no ``/``
and are never ``.`` or ``..``, so only the folder's last parts can differ)."""


def output_dir(spec: Spec, root: Path, label: str) -> Path:
    """The output folder of ``spec`` for the as-of ``label`` (absolute, normalised as written)."""
    return spec_path(root, spec.output.dir.format(name=spec.pipeline.name, as_of=label))


def _check_output(file: Path, spec: Spec, root: Path, label: str | None) -> Path:
    """The output folder for ``label`` (None: before the as-of is known) after checking the
    placement rules of the module docstring; ``SpecError`` naming ``output.dir`` otherwise."""
    out = output_dir(spec, root, label or _PROBE_LABEL)
    why = path_problem(out)
    if why is None and not out.is_relative_to(_normal(root)):
        raise SpecError(
            f"{file}: key 'output.dir' points outside the project ({out}); outputs are "
            f"written under {root}. Use a relative folder such as 'outputs/{{name}}/{{as_of}}'."
        )
    if why is None:
        why = _placement_problem(out, file, spec, root)
    if why is None and (label is not None or "{as_of}" not in spec.output.dir):
        why = _occupant_problem(out, spec.pipeline.name)
    if why:
        raise SpecError(
            f"{file}: key 'output.dir' ({spec.output.dir!r}) resolves to {out}: {why}. Give "
            "the outputs a folder of their own, such as 'outputs/{name}/{as_of}'."
        )
    return out


def _placement_problem(out: Path, file: Path, spec: Spec, root: Path) -> str | None:
    if out == _normal(root):
        return "that is the project folder itself, which the outputs would replace"
    real = _resolved(out)
    for path, what in _protected_paths(file, spec, root):
        for mine, theirs in ((out, _normal(path)), (real, _resolved(path))):
            if mine == theirs:
                return f"that is {what} ({path})"
            if theirs.is_relative_to(mine):
                return f"that folder holds {what} ({path}), which the outputs would replace"
    if _read_as_data(spec, root, out):
        return (
            f"source.path {spec.source.path!r} would read the files written there as data in "
            "the next run"
        )
    return _owner_problem(out, root)


def _owner_problem(path: Path, root: Path, *, itself: bool = False) -> str | None:
    """Why ``path`` is inside (or, with ``itself``, is) a folder forecaster wrote, whose
    manifest would no longer list what it holds; None when it is not."""
    owner = _io.owning_folder(path, stop=root)
    if owner is None and itself and path.is_dir() and not path.is_symlink():
        manifest = _io.read_manifest(path)
        if manifest is not None:
            return (
                f"that is a {manifest['kind']} folder forecaster wrote, whose manifest lists "
                "what it holds"
            )
    if owner is not None:
        return (
            f"that is inside {owner[0]}, a {owner[1]} folder forecaster wrote, which would "
            "then hold files its manifest does not list"
        )
    return None


def _resolved(path: Path) -> Path:
    """``path`` with its links followed (as written when they loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return _normal(path)


def _protected_paths(file: Path, spec: Spec, root: Path) -> list[tuple[Path, str]]:
    """Paths an output folder must neither be nor hold, with what they are."""
    paths = [
        (_normal(file), "the spec file"),
        (_normal(file).parent, "the folder of the spec file"),
        (root / "pipelines", "the pipelines folder"),
        (_latest_pointer(root, spec.pipeline.name), "the pointer to the pipeline's latest model"),
    ]
    source = spec.source
    if source.path is not None:
        parts = spec_path(root, source.path).parts
        fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
        paths.append((Path(*fixed), f"the data of source.path {source.path!r}"))
    else:
        with contextlib.suppress(ForecasterError, OSError):
            paths.append((forecaster.datasets.datasets_dir(), "the bundled data sets"))
    return paths


def _source_pattern(spec: Spec, root: Path) -> tuple[str, ...] | None:
    """The parts of the ``source.path`` glob relative to the project (None: no files read)."""
    if spec.source.path is None:
        return None
    full = spec_path(root, spec.source.path)
    if not full.is_relative_to(_normal(root)):
        return None
    pattern = full.relative_to(_normal(root)).parts
    return (*pattern, "**") if spec.source.format == "wav" else pattern  # a wav folder: all


def _read_as_data(spec: Spec, root: Path, folder: Path) -> bool:
    """Whether ``source.path`` can match files below ``folder`` (as written, or with its links
    followed)."""
    pattern = _source_pattern(spec, root)
    if pattern is None:
        return False
    places = ((folder, _normal(root)), (_resolved(folder), _resolved(root)))
    return any(
        path.is_relative_to(base) and _pattern_reaches(pattern, path.relative_to(base).parts)
        for path, base in places
    )


def _pattern_reaches(pattern: tuple[str, ...], folder: tuple[str, ...]) -> bool:
    """Whether the glob ``pattern`` (parts relative to the project) can match a file below
    ``folder`` (parts): every part of the folder matches the pattern's part at its depth, and
    the pattern goes deeper (``**`` reaches any depth)."""
    for depth, part in enumerate(folder):
        if depth < len(pattern) and pattern[depth] == "**":
            return True
        if depth >= len(pattern) - 1 or not fnmatch.fnmatchcase(part, pattern[depth]):
            return False
    return True


def _glob_matches(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether the glob ``pattern`` (parts; ``**`` any number of folders) matches ``parts``."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_matches(pattern[1:], parts[skip:]) for skip in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _glob_matches(pattern[1:], parts[1:])
    )


# ------------------------------------------------------------------------------------------
# other paths of a spec: the checkpoint folder and the SQLite study storage
# ------------------------------------------------------------------------------------------


def _sqlite_file(storage: str) -> str | None:
    """The file part of a ``sqlite:///`` storage URL (None: not a SQLite file)."""
    match = re.fullmatch(r"sqlite(\+\w+)?:///([^?]*)(\?.*)?", storage)
    if match is None or match.group(2) in ("", ":memory:"):
        return None
    return match.group(2)


def storage_url(spec: Spec, root: Path) -> str:
    """``training.storage`` with the file of a ``sqlite:///`` URL made absolute under the
    project ``root`` (as every path-valued key is); other values as they are."""
    storage = spec.training.storage
    file = _sqlite_file(storage)
    if file is None:
        return storage
    scheme, rest = storage.split(":///", 1)
    query = rest[len(file) :]
    return f"{scheme}:///{spec_path(root, file)}{query}"


def _side_paths(spec: Spec, root: Path) -> list[tuple[str, str, Path, bool]]:
    """``(key, value, path, is_folder)`` of the spec's path-valued keys other than the source
    and the outputs."""
    paths = []
    folder = spec.model.get("checkpoint_dir")
    if isinstance(folder, str) and folder:
        paths.append(("model.checkpoint_dir", folder, spec_path(root, folder), True))
    file = _sqlite_file(spec.training.storage)
    if file is not None:
        paths.append(("training.storage", file, spec_path(root, file), False))
    return paths


def _check_side_paths(file: Path, spec: Spec, root: Path) -> None:
    """``model.checkpoint_dir`` and a SQLite ``training.storage`` file: inside the project,
    writable names, not inside (or being) a folder forecaster wrote, not read as data."""
    for key, value, path, is_folder in _side_paths(spec, root):
        why = path_problem(path)
        if why is None and not path.is_relative_to(_normal(root)):
            raise SpecError(
                f"{file}: key {key!r} points outside the project ({path}); it is relative to "
                f"the project folder {root} and must stay inside it. Use a relative path such "
                f"as {'checkpoints' if is_folder else 'studies/optuna.db'!r}"
                f"{'' if is_folder else ' (or a postgresql:// URL for a shared study)'}."
            )
        if why is None:
            why = _owner_problem(path, root, itself=True)
        if why is None and path == _normal(root) and is_folder:
            why = "that is the project folder itself"
        pattern = _source_pattern(spec, root)
        if why is None and pattern is not None:
            probe = path / "checkpoint-0.safetensors" if is_folder else path
            if probe.is_relative_to(_normal(root)) and _glob_matches(
                pattern, probe.relative_to(_normal(root)).parts
            ):
                why = f"source.path {spec.source.path!r} would read the files written there as data"
        if why:
            raise SpecError(
                f"{file}: key {key!r} ({value!r}) resolves to {path}: {why}. Give it a path of "
                "its own in the project, such as "
                f"{'checkpoints' if is_folder else 'studies/optuna.db'!r}."
            )


def _check_checkpoints(file: Path, spec: Spec, root: Path, out: Path, key: str) -> None:
    """The checkpoint folder of a spec neither holds nor is inside the folder ``out`` that
    the run (or fit) publishes: one would add files to the other."""
    folder = checkpoint_folder(out, spec, root)
    if folder.is_relative_to(out) or out.is_relative_to(folder):
        raise SpecError(
            f"{file}: key 'model.checkpoint_dir' resolves to {folder}, which "
            f"{'is inside' if folder.is_relative_to(out) else 'holds'} {out} ({key}): the "
            "checkpoints and the published folder would mix. Give the checkpoints a folder of "
            "their own, such as 'checkpoints'."
        )


def _occupant_problem(out: Path, name: str) -> str | None:
    """Why the folder now at ``out`` cannot take the pipeline's outputs (None when it can)."""
    if out.is_symlink():
        return f"that is a link (to {os.readlink(out)}), not a folder forecaster wrote"
    if not out.exists():
        return None
    if not out.is_dir():
        return "that is a file"
    manifest = _io.read_manifest(out)
    if manifest is None:
        if _legacy_summary(out, name) is not None:
            return None
        with os.scandir(out) as listing:
            names = sorted(entry.name for entry in itertools.islice(listing, 6))
        if not names:
            return None
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return (
            f"that is an existing folder forecaster did not write (it holds {shown}), which the "
            "outputs would replace"
        )
    if manifest["kind"] != "run":
        return f"that folder holds a forecaster {manifest['kind']}, not a pipeline's outputs"
    other = manifest["details"].get("pipeline")
    if other != name:
        return f"that folder holds the outputs of the pipeline {other!r}"
    return None


def _same_pipeline(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """For :func:`forecaster._io.check_replaceable`: refuse another pipeline's outputs."""

    def same(manifest: Mapping[str, Any]) -> str | None:
        other = manifest.get("details", {}).get("pipeline")
        if other == name:
            return None
        return (
            f"it holds the outputs of the pipeline {other!r}, not of {name!r}. Give each "
            "pipeline its own output.dir."
        )

    return same


_RUN_FILES = frozenset(
    {
        "forecasts.parquet",
        "backtest.parquet",
        "backtest_by_step.parquet",
        "forecast.png",
        "summary.json",
        "model/config.json",
        "model/weights.safetensors",
        "model/keys.parquet",
    }
)
"""The files of a run's outputs before they had a manifest."""


def _legacy_summary(folder: Path, name: str) -> PipelineResult | None:
    """The summary of outputs of ``name`` written before run folders had a manifest: only
    files a run writes (no links), and a readable ``summary.json`` of that pipeline."""
    found: set[str] = set()
    try:
        for current, folders, files in os.walk(folder):
            base = Path(current).relative_to(folder)
            if any(Path(current, entry).is_symlink() for entry in [*folders, *files]):
                return None
            found.update((base / entry).as_posix() for entry in files)
            if len(found) > len(_RUN_FILES):
                return None
        if "summary.json" not in found or not found <= _RUN_FILES:
            return None
        summary = _read_summary(folder / "summary.json")
    except (OSError, ForecasterError):
        return None
    return summary if summary.name == name else None


def _read_summary(path: Path) -> PipelineResult:
    data = _io.read_file_bounded(path, SUMMARY_LIMIT, what="summary")
    try:
        return PipelineResult.model_validate_json(data)
    except ValidationError as exc:
        raise ForecasterError(f"{path} is not a summary forecaster wrote: {exc}") from None


def _previous_outputs(out: Path, name: str, label: str) -> PipelineResult | None:
    """The summary of the outputs of ``name`` as of ``label`` at ``out``, if there are any."""
    manifest = _io.read_manifest(out)
    if manifest is None:
        legacy = _legacy_summary(out, name) if out.is_dir() else None
        return legacy if legacy is not None and legacy.as_of == label else None
    details = manifest["details"]
    if manifest["kind"] != "run" or details.get("pipeline") != name:
        return None
    if details.get("as_of") != label:
        return None
    try:
        return _read_summary(out / "summary.json")
    except (OSError, ForecasterError) as exc:
        raise OwnershipError(
            f"{out} holds the outputs of {name} as of {label}, but its summary.json cannot be "
            f"read ({exc}); forecaster did not leave it so. Delete the folder yourself, then "
            "run again."
        ) from None


def _lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


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
        folder = None if source.path is None else spec_path(root, source.path)
        frame = forecaster.datasets.load_audio_mfcc(folder, **(mfcc or MfccSpec()).model_dump())
    else:
        frame = _read_files(spec, root)
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


def _source_files(spec: Spec, root: Path) -> list[Path]:
    """The regular files that ``source.path`` matches (a FIFO or a device would block or never
    end the read; a folder is not data)."""
    source = spec.source
    pattern = str(spec_path(root, source.path))
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    if not paths:
        raise DataValidationError(f"No file matches source.path {source.path!r} ({pattern}).")
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise DataValidationError(
                f"Cannot read {path}, matched by source.path {source.path!r}: "
                f"{exc.strerror or exc}. Fix or remove it."
            ) from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or device)"
            raise DataValidationError(
                f"source.path {source.path!r} matches {path}, which is {kind}; forecaster reads "
                f"only regular {source.format} files. Move it away or narrow the pattern."
            )
    return paths


def _read_files(spec: Spec, root: Path) -> pl.DataFrame:
    source = spec.source
    paths = _source_files(spec, root)
    kwargs: dict[str, Any] = {}
    if source.id_from_filename:
        kwargs["include_file_paths"] = "__path__"
    try:
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
    except OSError as exc:
        raise DataValidationError(
            f"Cannot read source.path {source.path!r}: {_first_line(exc)}. A file it matched "
            "disappeared or became unreadable while it was read (replaced by another process?); "
            "run again once the data is in place."
        ) from exc
    if frame.height == 0:
        raise DataValidationError(
            f"source.path {source.path!r} ({len(paths)} file(s)) has no data rows, only a "
            f"header ({_header(frame.columns)}). Expected at least lookback + horizon rows "
            "per series."
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
    from forecaster.data.core import _missing_columns_error

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
# the as-of date
# ------------------------------------------------------------------------------------------


class PipelineResult(BaseModel):
    """What a run did (also written as ``summary.json``)."""

    name: str
    as_of: str
    status: Literal["completed", "skipped", "dry-run"]
    output_dir: str
    requested_as_of: str | None = None
    effective_as_of: str | None = None
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
    stale_series: dict[str, str] = {}
    stale_series_count: int = 0
    seconds: float = 0.0
    spec_hash: str = ""
    package_version: str = forecaster.__version__


def spec_hash(spec: Spec) -> str:
    """A short content hash of the validated spec (identifies models and outputs)."""
    payload = json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


STALE_LISTED = 1000
"""Most stale series named in ``summary.json`` (all are counted)."""


@dataclasses.dataclass(frozen=True)
class AsOf:
    """The as-of of a run (see the module docstring).

    Attributes
    ----------
    label : str
        The canonical label that names the outputs and keys idempotency: the effective as-of,
        formatted for its dtype.
    requested : str or None
        The as-of as it was asked for (None: the last time in the data).
    effective : str
        The last time in the data the run uses (ISO).
    stale : tuple of (str, str)
        ``(series id, its last time)`` of the series that end before the effective as-of (at
        most :data:`STALE_LISTED`): their forecasts start after their own last time.
    stale_count : int
        How many series end before the effective as-of.
    """

    label: str
    requested: str | None
    effective: str
    stale: tuple[tuple[str, str], ...] = ()
    stale_count: int = 0

    def __str__(self) -> str:
        return self.label


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def as_of_label(value: Any) -> str:
    """The canonical label of an effective as-of (the last time a run uses).

    A date ``YYYY-MM-DD``; a datetime ``YYYY-MM-DD`` at midnight, else
    ``YYYY-MM-DDTHH-MM-SS`` (``.ffffff`` when needed; local time of its zone, with its UTC
    offset when that wall time occurs twice); an integer step the integer. Labels hold no
    ``:`` (some file systems refuse it) and no ``/``.

    Examples
    --------
    >>> import datetime as dt
    >>> as_of_label(dt.datetime(2024, 6, 1)), as_of_label(dt.datetime(2024, 6, 1, 16, 30))
    ('2024-06-01', '2024-06-01T16-30-00')
    >>> as_of_label(dt.date(2017, 6, 30)), as_of_label(82)
    ('2017-06-30', '82')
    """
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        local = value.replace(tzinfo=None)
        text = local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
        text = text.replace(":", "-")
        if value.tzinfo is not None and _ambiguous(value):
            text += value.strftime("%z")
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise DataValidationError(f"Cannot label the as-of {value!r} ({type(value).__name__}).")


def _ambiguous(moment: dt.datetime) -> bool:
    """Whether the wall time of an aware ``moment`` occurs twice (a clock set back)."""
    other = moment.replace(fold=1 - moment.fold)
    return other.utcoffset() != moment.utcoffset()


def _parse_as_of(text: str, dtype: pl.DataType, time_col: str) -> tuple[Any, bool]:
    """``(bound, whole_day)`` for ``--as-of text`` on a time column of ``dtype``; the bound is
    comparable with the column's values (aware in its time zone, when it has one)."""

    def refuse(why: str) -> SpecError:
        return SpecError(
            f"--as-of {text!r} does not fit the time column {time_col!r} ({dtype}): {why}."
        )

    if dtype.is_integer():
        if not _INTEGER.fullmatch(text):
            raise refuse("expected an integer step such as 120")
        return int(text), False
    try:
        day: dt.date | None = dt.date.fromisoformat(text)
    except ValueError:
        day = None
    zone = getattr(dtype, "time_zone", None)
    tzinfo = zoneinfo.ZoneInfo(zone) if zone else None
    if day is not None:
        if dtype == pl.Date:
            return day, True
        return dt.datetime.combine(day, dt.time.max, tzinfo), True
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise refuse(
            "expected an ISO date such as 2017-06-30 (or 20170630), or a date and time such as "
            "2017-06-30T16:00"
        ) from None
    if dtype == pl.Date:
        if moment.time() != dt.time(0) or moment.tzinfo is not None:
            raise refuse("a Date column has no time of day; pass the date alone, e.g. 2017-06-30")
        return moment.date(), True
    if moment.tzinfo is not None:
        if tzinfo is None:
            raise refuse(
                "it has a UTC offset but the column has no time zone; pass a date or a datetime "
                "without an offset"
            )
        moment = moment.astimezone(tzinfo).replace(tzinfo=None)
    return moment.replace(tzinfo=tzinfo), False


def _up_to(time_col: str, bound: Any) -> pl.Expr:
    """Rows at or before ``bound`` (compared in UTC when it carries a time zone)."""
    if isinstance(bound, dt.datetime) and bound.tzinfo is not None:
        utc = bound.astimezone(dt.UTC).replace(tzinfo=None)
        column = pl.col(time_col).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return column <= pl.lit(utc)
    return pl.col(time_col) <= pl.lit(bound)


def _as_of(frame: pl.DataFrame, time_col: str, as_of: str | None) -> tuple[pl.DataFrame, AsOf]:
    dtype = frame.schema[time_col]
    if not (dtype.is_temporal() or dtype.is_integer()) or dtype in (pl.Time, pl.Duration):
        raise DataValidationError(
            f"Time column {time_col!r} must be Datetime, Date or an integer step, got {dtype}. "
            "Give its format as source.time_format in the spec (e.g. '%Y-%m-%d %H:%M'); text "
            "times that mix formats or time zones are not parsed automatically."
        )
    as_of = _as_of_text(as_of)
    first, last = frame[time_col].min(), frame[time_col].max()
    if first is None:
        raise DataValidationError(f"Time column {time_col!r} has no values (only nulls).")
    if as_of is None:
        return frame, AsOf(as_of_label(last), None, _iso(last))
    bound, whole_day = _parse_as_of(as_of, dtype, time_col)
    if bound < first:
        raise DataValidationError(
            f"No data up to --as-of {as_of}: the data starts at {_iso(first)}. Pass an as-of "
            "on or after it."
        )
    if _day(bound) > _day(last) if whole_day else bound > last:
        warnings.warn(
            f"--as-of {as_of} is after the last time in the data ({_iso(last)}): the run uses "
            f"all the data and is labelled {as_of_label(last)}, the as-of of that data (its "
            "outputs are that as-of's). Update the data to forecast from a later date.",
            ForecasterWarning,
            stacklevel=3,
        )
        return frame, AsOf(as_of_label(last), as_of, _iso(last))
    subset = frame.filter(_up_to(time_col, bound))
    effective = subset[time_col].max()
    return subset, AsOf(as_of_label(effective), as_of, _iso(effective))


def _as_of_text(as_of: Any) -> str | None:
    """``as_of`` as text: a string as it is, a date, datetime or integer in ISO form."""
    if as_of is None or isinstance(as_of, str):
        return as_of
    if isinstance(as_of, dt.date):
        return as_of.isoformat()
    if isinstance(as_of, numbers.Integral) and not isinstance(as_of, bool):
        return str(int(as_of))
    raise SpecError(
        f"as_of must be an ISO date or datetime (a string, datetime.date or datetime.datetime) "
        f"or an integer step, got {type(as_of).__name__} {as_of!r}."
    )


def _day(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _recent(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """Keep the last ``features.history_days`` days of every series (dates / datetimes)."""
    days = spec.features.history_days
    time_col = spec.series.time
    if days is None or not frame.schema[time_col].is_temporal():
        return frame
    last = pl.col(time_col).max()
    last = last.over(spec.series.id) if spec.series.id else last
    return frame.filter(pl.col(time_col) > last - pl.duration(days=days))


def _stale_series(frame: pl.DataFrame, spec: Spec, when: AsOf) -> AsOf:
    """``when`` with the series that end before its effective as-of, after warning about them
    (a ``ForecasterWarning`` naming the first few and their last times): the model forecasts
    each series from its own last row, so their forecasts are dated before the as-of."""
    id_col, time_col = spec.series.id, spec.series.time
    if id_col is None or frame.height == 0:
        return when
    last = frame[time_col].max()
    ends = (
        frame.group_by(id_col)
        .agg(pl.col(time_col).max().alias("__last__"))
        .filter(pl.col("__last__") < pl.lit(last, frame.schema[time_col]))
        .sort(["__last__", id_col])
    )
    if ends.height == 0:
        return when
    listed = tuple((str(key), _iso(end)) for key, end in ends.head(STALE_LISTED).iter_rows())
    shown = ", ".join(f"{key} (last {end})" for key, end in listed[:5])
    more = f" and {ends.height - 5} more" if ends.height > 5 else ""
    warnings.warn(
        f"{ends.height} series end before the as-of {when.label} (the last time in the data "
        f"used, {when.effective}): {shown}{more}. Their forecasts start after their own last "
        "time, not after the as-of. Drop them from the source (e.g. source.tickers, a "
        "narrower source.path) or bring their data up to date.",
        ForecasterWarning,
        stacklevel=3,
    )
    return dataclasses.replace(when, stale=listed, stale_count=ends.height)


def prepare_data(spec: Spec, root: Path, as_of: str | None) -> tuple[pl.DataFrame, AsOf]:
    """The spec's data up to ``as_of`` (default: its last time), its recent history only, and
    the as-of (its ``label`` names the outputs; see the module docstring for the rules).

    Every command that forecasts or fits goes through here, so each warns (a
    ``ForecasterWarning``) about the series that end before the as-of, and the run records
    them in ``summary.json`` (``stale_series``, ``stale_series_count``).
    """
    frame, when = _as_of(load_data(spec, root), spec.series.time, as_of)
    frame = _recent(frame, spec)
    return frame, _stale_series(frame, spec, when)


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


def checkpoint_folder(
    output: str | os.PathLike[str], spec: Spec | None = None, root: Path | None = None
) -> Path:
    """Where the ``forecaster`` command keeps the training checkpoints of the model it writes
    to ``output`` (a model folder or a run's output folder): the spec's ``model.checkpoint_dir``
    (relative to the project ``root``) when it names one, else the hidden folder
    ``.<name>.checkpoints`` next to ``output``. A command that fitted removes its checkpoint
    files there once it succeeds (:func:`forecaster.training.loop.remove_checkpoints`)."""
    folder = None if spec is None else spec.model.get("checkpoint_dir")
    if isinstance(folder, str) and folder and root is not None:
        return spec_path(root, folder)
    output = Path(output)
    return output.parent / f".{output.name}.checkpoints"


def fit_with_checkpoints(
    estimator: Any,
    frame: pl.DataFrame,
    folder: Path,
    resume: bool,
    log: Callable[[str], None],
) -> Path:
    """Fit with checkpoints in ``folder`` (see :func:`checkpoint_folder`); return it.

    With ``resume``, continue from the checkpoint there when there is one (and say so), else
    train from the start, so that a scheduler can always pass ``--resume``. A checkpoint that
    cannot be resumed (written for other data or parameters: yesterday's run; unreadable)
    is said in a log line, and the fit starts from scratch, replacing it (only checkpoint
    files forecaster wrote are ever replaced). The estimator's ``checkpoint_dir`` parameter is
    as it was afterwards (the saved model does not point at a folder removed on success).
    """
    from forecaster.training.loop import CheckpointError, latest_checkpoint

    original = estimator.checkpoint_dir
    estimator.set_params(checkpoint_dir=str(folder))
    try:
        found = resume and latest_checkpoint(folder) is not None
        if resume and not found:
            log(f"resume   no checkpoint in {folder}: training from the start")
        if found:
            log(f"resume   from the checkpoint in {folder}")
            try:
                estimator.fit(frame, resume=True)
                return folder
            except CheckpointError as exc:
                log(
                    f"resume   cannot resume from the checkpoint in {folder} "
                    f"({_first_line(exc)}): training from the start"
                )
        estimator.fit(frame, resume=False)
    finally:
        estimator.set_params(checkpoint_dir=original)
    return folder


def study_name(spec: Spec, when: AsOf) -> str:
    """The Optuna study of a spec as of a date: ``<name>-<spec hash>-<as-of label>``. A study
    holds the trials of one as-of only: the scores of a study measured on later data would
    leak that data into a backfill."""
    return f"{spec.pipeline.name}-{spec_hash(spec)}-{when.label}"


def tuned_model_dir(spec: Spec, root: Path, when: AsOf) -> Path:
    """Where ``forecaster tune`` saves the refitted best model: ``models/<name>/<label>-tuned``
    (its lock, ``.<label>-tuned.lock`` beside it, also serialises ``run --tune``)."""
    return _normal(root / "models" / spec.pipeline.name / f"{when.label}-tuned")


def tune_model(
    spec: Spec,
    root: Path,
    frame: pl.DataFrame,
    when: AsOf,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    progress: bool = False,
    track: bool = False,
) -> Any:
    """Tune the spec's model on ``frame`` (the study of :func:`study_name`, in the spec's
    ``training.storage``, a SQLite path relative to the project); returns the
    :class:`forecaster.tuning.core.TuneResult` with the refitted best model of the study.

    ``n_trials`` / ``timeout`` default to the spec's. ``track``: log the study to MLflow
    (only when the spec's ``[tracking]`` is enabled). Trials write no checkpoints.
    """
    from forecaster.tuning.core import tune as run_tuning

    if distributed.launched_world_size() > 1:
        raise ForecasterError(
            "Tuning under torchrun is not supported: tune in one process (Optuna runs "
            "trials in parallel with n_workers), then fit the tuned model under torchrun."
        )
    training = spec.training
    # the trials show no bars of their own (the study's bar shows the progress)
    estimator = build_estimator(spec, False).set_params(checkpoint_dir=None)
    return run_tuning(
        estimator,
        frame,
        n_trials=training.trials if n_trials is None else n_trials,
        timeout=training.timeout if timeout is None else timeout,
        storage=storage_url(spec, root),
        study_name=study_name(spec, when),
        random_state=spec.model.get("random_state"),
        track=_tracking_ready(spec) if track else False,
        show_progress=progress,
    )


def _tracking_ready(spec: Spec) -> bool | None:
    """Point MLflow at the spec's experiment for a study of its own; False when tracking is
    off, unavailable (a warning says why) or mlflow is not installed."""
    if not spec.tracking.enabled:
        return False
    try:
        from forecaster.tracking import core as tracking
    except ImportError:
        return False
    try:
        with tracking.bounded_requests():
            tracking.configure(experiment=spec.tracking.experiment or spec.pipeline.name)
    except Exception as exc:  # tracking must never stop the job
        warnings.warn(
            f"MLflow tracking is unavailable ({_masked(_first_line(exc))}); the study is not "
            "logged.",
            ForecasterWarning,
            stacklevel=3,
        )
        return False
    return None


# ------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Job:
    """What one run works on, passed to the steps of :func:`run_pipeline`."""

    spec: Spec
    file: Path
    root: Path
    frame: pl.DataFrame
    when: AsOf
    out_dir: Path
    digest: str
    log: Callable[[str], None]
    started: float
    wait: float | None = 0.0

    @property
    def name(self) -> str:
        return self.spec.pipeline.name


@contextlib.contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    """Let only forecaster's errors out of ``doing`` (the one mechanism of every entry point:
    :func:`run_pipeline` and each ``forecaster`` command).

    A ``ForecasterError`` passes as it is. An operating-system error (``OSError``, or a Polars
    error that carries one: a full disk while writing Parquet) becomes a ``ForecasterError``
    with the system's message and the path; anything else a ``ForecasterError`` that calls it
    a bug, with the original as its ``__cause__``. ``BrokenPipeError`` and
    ``KeyboardInterrupt`` pass (the command line handles them).
    """
    try:
        yield
    except (ForecasterError, BrokenPipeError):
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ForecasterError(f"{exc.strerror or exc}{where}. {_SYSTEM_HINT}") from exc
    except pl.exceptions.PolarsError as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise _unexpected(exc, doing) from exc
        raise ForecasterError(
            f"{os.strerror(int(code.group(1)))} ({_first_line(exc)}). {_SYSTEM_HINT}"
        ) from exc
    except MemoryError as exc:
        raise ForecasterError(
            f"Out of memory in {doing}. Use less data (features.history_days) or a smaller "
            "model, or run where there is more memory."
        ) from exc
    except Exception as exc:
        raise _unexpected(exc, doing) from exc


_SYSTEM_HINT = (
    "Check that the project's folders are writable and the disk has room, then run again."
)


def _unexpected(exc: BaseException, doing: str) -> ForecasterError:
    return ForecasterError(
        f"Unexpected {type(exc).__name__} in {doing}: {_first_line(exc)}. This is a bug in "
        "forecaster: rerun with --verbose and report the traceback."
    )


def run_pipeline(
    spec_path: str | os.PathLike[str],
    *,
    as_of: str | None = None,
    tune: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    wait: float | None = 0.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PipelineResult:
    """Run a spec end to end for one as-of date (see the module docstring).

    Parameters
    ----------
    spec_path : path
        A ``pipelines/*.toml`` file.
    as_of : str, datetime.date, datetime.datetime or int, optional
        ISO date, date and time, or integer step: use only data up to it. The outputs are
        named after the effective as-of, the last time of the data it selects (see the module
        docstring). Default: the last time in the data.
    tune : bool, optional
        Tune with Optuna before fitting (default: the spec's ``training.tune``). ``True``
        also wins over ``training.reuse_model`` (a log line says so).
    force : bool
        Replace existing outputs of this as-of date (atomically; only outputs this pipeline
        wrote and nobody changed since; with a ``dir`` template without ``{as_of}``, also the
        outputs of a later as-of).
    dry_run : bool
        Validate the spec and the data, print the plan, write nothing.
    resume : bool
        Continue the fit from the checkpoints of an interrupted run of the same spec and as-of
        date (see :func:`checkpoint_folder`; written every ``checkpoint_every`` epochs, a
        [model] parameter); fit from the start when there are none, or when they were written
        for other data or parameters (a log line says so).
    wait : float or None
        Seconds to wait for another run writing the same outputs (0: stop at once with a
        ``ConcurrentRunError``; None: as long as it takes). After waiting, its outputs are
        found and this run is ``skipped``.
    progress : bool
        Progress bars for training and tuning.
    log : callable
        Receives one line per step.

    Raises
    ------
    ForecasterError
        Only forecaster's error types (see the module docstring): a ``SpecError`` for an
        argument of the wrong type, naming it; anything unexpected is wrapped by
        :func:`translated_errors`.
    """
    with translated_errors("the pipeline run"):
        _check_arguments(
            spec_path=spec_path, as_of=as_of, tune=tune, force=force, dry_run=dry_run,
            resume=resume, wait=wait, progress=progress, log=log,
        )  # fmt: skip
        return _run_pipeline(spec_path, as_of, tune, force, dry_run, resume, wait, progress, log)


def _check_arguments(**arguments: Any) -> None:
    """Every argument of :func:`run_pipeline` of its documented type, else a ``SpecError``
    naming it (a truthy ``"no"`` is not a ``False``)."""
    _spec_file(arguments["spec_path"])
    for name in ("force", "dry_run", "resume", "progress", "tune"):
        value = arguments[name]
        if not (isinstance(value, bool) or (name == "tune" and value is None)):
            allowed = "True, False or None" if name == "tune" else "True or False"
            raise SpecError(
                f"{name} must be {allowed}, got {type(value).__name__} {value!r}: a value that "
                f"is only truthy or falsy is refused. Pass {name}=True or {name}=False."
            )
    _as_of_text(arguments["as_of"])
    _check_wait(arguments["wait"])
    if not callable(arguments["log"]):
        raise SpecError(
            f"log must be a callable that takes one line (e.g. print, or lambda line: None), "
            f"got {type(arguments['log']).__name__} {arguments['log']!r}."
        )


def _run_pipeline(
    spec_path: str | os.PathLike[str],
    as_of: str | None,
    tune: bool | None,
    force: bool,
    dry_run: bool,
    resume: bool,
    wait: float | None,
    progress: bool,
    log: Callable[[str], None],
) -> PipelineResult:
    started = time.perf_counter()
    file = _spec_file(spec_path)
    spec, root = load_spec(file)
    frame, when = prepare_data(spec, root, as_of)
    out_dir = _check_output(file, spec, root, when.label)
    _check_checkpoints(file, spec, root, out_dir, "output.dir")
    job = _Job(spec, file, root, frame, when, out_dir, spec_hash(spec), log, started, wait)
    estimator = build_estimator(spec, progress)
    if dry_run:
        return _dry_run(job, estimator)
    skipped = None if force else _skipped(job)
    if skipped is not None:
        return skipped
    panel = _panel(frame, estimator)  # bad data: exit 3 before anything is written
    log(f"data     {panel}")
    if not distributed.is_main_process():
        # Under torchrun the other ranks train in lockstep with rank 0, which writes everything.
        checkpoints = checkpoint_folder(out_dir, spec, root)
        model, _, _ = _model(job, estimator, tune, False, checkpoints, resume)
        _evaluate(spec, model, frame, log)
        return PipelineResult(
            name=job.name, as_of=when.label, status="completed", output_dir=str(out_dir)
        )
    with output_lock(out_dir, wait, f"the pipeline {job.name!r} as of {when.label} ({out_dir})"):
        skipped = None if force else _skipped(job)  # written while we waited?
        if skipped is not None:
            return skipped
        if not force:
            _check_not_later(job)
        _check_replaceable(job)
        _io.remove_staging(out_dir)  # left by killed runs; no other writer while we hold the lock
        return _write_outputs(job, estimator, panel, tune, progress, resume)


def output_lock(
    destination: Path, wait: float | None, what: str
) -> contextlib.AbstractContextManager[None]:
    """The lock that serialises the writers of ``destination`` (a run's outputs, a model): the
    file ``.<name>.lock`` beside it, held for the block (see
    :func:`forecaster._io.exclusive_lock`). ``wait``: seconds (None: as long as it takes).

    Raises
    ------
    OwnershipError
        When the lock path holds a link, a folder or a special file (not a lock file
        forecaster made).
    ConcurrentRunError
        When another process holds the lock beyond ``wait``.
    """
    lock_file = _lock_file(destination)
    try:
        info = os.lstat(lock_file)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "a folder or special file"
        raise OwnershipError(
            f"Refusing to use the lock file {lock_file}: it is {kind}, not a lock file "
            "forecaster made (forecaster never follows a link there). Remove it, then run again."
        )
    return _io.exclusive_lock(
        lock_file,
        timeout=wait,
        what=what,
        hint="Wait for it to finish, or pass --wait [SECONDS] (after the spec path) to queue "
        "behind it.",
    )


def _skipped(job: _Job) -> PipelineResult | None:
    """The result of a rerun that finds the outputs of its spec and as-of whole (else None);
    outputs with a file missing or changed are refused (``OwnershipError``, exit 2)."""
    previous = _previous_outputs(job.out_dir, job.name, job.when.label)
    if previous is None:
        return None
    missing, changed = _damage(job.out_dir)
    if missing or changed:
        listed = [f"{name} (missing)" for name in missing] + [
            f"{name} (changed since forecaster wrote it)" for name in changed
        ]
        more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
        fix = (
            "Move the changed files out of the folder (forecaster replaces only what it wrote), "
            "then run again with --force"
            if changed
            else "Run again with --force to write them again"
        )
        raise OwnershipError(
            f"{job.file}: key 'output.dir': the outputs of {job.name} as of {job.when.label} in "
            f"{job.out_dir} are damaged: {', '.join(listed[:5])}{more}. {fix}."
        )
    job.log(
        f"outputs for {job.name} as of {job.when.label} already exist: {job.out_dir} "
        "(use --force to replace them)"
    )
    out = job.out_dir
    moved = {  # the paths of the folder as it is now (the project may have moved)
        key: str(out / name) if getattr(previous, key) else None
        for key, name in (
            ("forecasts", "forecasts.parquet"),
            ("backtest", "backtest.parquet"),
            ("plot", "forecast.png"),
            ("model_dir", "model"),
        )
    }
    return previous.model_copy(update={"status": "skipped", "output_dir": str(out), **moved})


def _damage(folder: Path) -> tuple[list[str], list[str]]:
    """``(missing, changed)``: the files of the run folder that its manifest lists and that
    are gone, or differ from what forecaster wrote (read from one version of the folder).
    Outputs written before manifests: the forecasts and the model's config, if missing."""
    with _io.PinnedDirectory(folder, error=OwnershipError) as pinned:
        manifest = _io.read_manifest(folder, pinned=pinned)
        if manifest is None:
            needed = ("forecasts.parquet", "model/config.json")
            return [name for name in needed if not pinned.exists(name)], []
        found = {name: (kind, digest) for name, kind, digest in pinned.walk()}
    listed: dict[str, str] = manifest["files"]
    missing = sorted(name for name in listed if name not in found)
    changed = sorted(
        name for name, digest in listed.items() if name in found and found[name] != ("file", digest)
    )
    return missing, changed


def _time_order(text: Any) -> Any:
    """An ISO time or an integer step as a value that orders like time (None: unknown)."""
    if not isinstance(text, str):
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _is_later(first: Any, second: Any) -> bool | None:
    """Whether the effective as-of ``first`` is after ``second``; None when they cannot be
    compared (unknown, or of different kinds)."""
    a, b = _time_order(first), _time_order(second)
    if a is None or b is None:
        return None
    try:
        return bool(a > b)
    except TypeError:
        return None


def _check_not_later(job: _Job) -> None:
    """With a ``dir`` template without ``{as_of}`` the folder keeps the latest as-of: outputs
    of a later as-of there are replaced only with ``force`` (``OwnershipError`` otherwise)."""
    if "{as_of}" in job.spec.output.dir or not job.out_dir.is_dir():
        return
    manifest = _io.read_manifest(job.out_dir)
    if manifest is not None:
        details = manifest["details"]
        other_label, other = details.get("as_of"), details.get("effective_as_of")
    else:
        legacy = _legacy_summary(job.out_dir, job.name)
        if legacy is None:
            return
        other_label, other = legacy.as_of, legacy.effective_as_of
    other = other or other_label  # written before effective as-ofs were recorded: the label
    later = _is_later(other, job.when.effective)
    if later is False:
        return
    reason = "a later as-of than" if later else "an as-of that cannot be compared with"
    raise OwnershipError(
        f"{job.file}: key 'output.dir' ({job.spec.output.dir!r}) has no {{as_of}}, so "
        f"{job.out_dir} keeps the latest as-of, and it holds the outputs as of {other_label} "
        f"(data up to {other}), {reason} this run's {job.when.label} (data up to "
        f"{job.when.effective}). Pass --force to replace them with this older as-of, or put "
        "{as_of} in output.dir to keep both."
    )


def _check_wait(wait: Any) -> None:
    if wait is None:
        return
    if isinstance(wait, bool) or not isinstance(wait, numbers.Real) or not wait >= 0:
        raise SpecError(
            f"wait must be a number of seconds >= 0 (or None: as long as it takes), got {wait!r}."
        )
    if not math.isfinite(wait):
        raise SpecError(f"wait must be finite (None waits as long as it takes), got {wait!r}.")


def _panel(frame: pl.DataFrame, estimator: Any) -> Any:
    return forecaster.Panel.from_frame(
        frame,
        **{k: v for k, v in estimator.get_params().items() if k in _COLUMN_PARAMS},
        min_length=int(estimator.lookback) + int(estimator.horizon),
    )


def _stale_fields(when: AsOf) -> dict[str, Any]:
    return {"stale_series": dict(when.stale), "stale_series_count": when.stale_count}


def _dry_run(job: _Job, estimator: Any) -> PipelineResult:
    panel = _panel(job.frame, estimator)
    job.log(f"data     {panel}")
    job.log(
        f"plan     fit {type(estimator).__name__} (lookback {estimator.lookback}, horizon "
        f"{estimator.horizon}), backtest {job.spec.evaluation.backtest_folds} folds, write "
        f"{job.out_dir}"
    )
    return PipelineResult(
        name=job.name,
        as_of=job.when.label,
        requested_as_of=job.when.requested,
        effective_as_of=job.when.effective,
        status="dry-run",
        output_dir=str(job.out_dir),
        rows=int(panel.offsets[-1]),
        series=panel.n_series,
        spec_hash=job.digest,
        **_stale_fields(job.when),
    )


def _adopt(name: str) -> Callable[[Path], bool]:
    return lambda folder: _legacy_summary(folder, name) is not None


def _check_replaceable(job: _Job) -> None:
    """Before training: the outputs already at the folder (if any) may be replaced."""
    try:
        _io.check_replaceable(
            job.out_dir,
            "run",
            same=_same_pipeline(job.name),
            purpose="replace the outputs in",
            adopt=_adopt(job.name),
        )
    except OwnershipError as exc:
        raise OwnershipError(f"{job.file}: key 'output.dir': {exc}") from None


def _write_outputs(
    job: _Job, estimator: Any, panel: Any, tune: bool | None, progress: bool, resume: bool
) -> PipelineResult:
    """Fit, evaluate and forecast into a staging folder; publish it with its manifest."""
    from forecaster.training.loop import remove_checkpoints

    checkpoints = checkpoint_folder(job.out_dir, job.spec, job.root)
    staging = _io.staging_directory(job.out_dir)
    try:
        with tracked_run(job.spec, job.when.label, job.log) as tracking:
            model, how, fitted_in = _model(job, estimator, tune, progress, checkpoints, resume)
            job.log(f"model    {how}")
            metrics, backtest = _evaluate(job.spec, model, job.frame, job.log)
            result = _write_files(job, staging, model, backtest, panel, tracking)
            result = result.model_copy(update={"metrics": metrics})
            summary = result.model_copy(
                update={"seconds": round(time.perf_counter() - job.started, 2)}
            )
            _io.write_bytes_atomic(
                staging / "summary.json", summary.model_dump_json(indent=2).encode()
            )
            _log_outputs(tracking[0], metrics, staging, job.spec.tracking.register_as, job.log)
        _io.write_manifest(staging, "run", _manifest_details(job))
        _io.publish_directory(
            staging, job.out_dir, kind="run", same=_same_pipeline(job.name), adopt=_adopt(job.name)
        )
    except BaseException:
        _io.discard_staging(staging)
        raise
    _remember_model(job)
    if fitted_in is not None:  # only the checkpoints of this run's fit (a reused model: none)
        remove_checkpoints(fitted_in)
    return summary


def forecast_as_of(model: Any, frame: pl.DataFrame) -> pl.DataFrame:
    """``model.predict(frame)`` for a frame from :func:`prepare_data`, whose warning already
    named the series that end before the as-of: predict's own warning about them (the same
    series, measured against the frame's last time) is not repeated."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"(\d+ series end|The series ends) before the frame's last time",
            category=ForecasterWarning,
        )
        return model.predict(frame)


def _write_files(
    job: _Job,
    staging: Path,
    model: Any,
    backtest: tuple[pl.DataFrame, pl.DataFrame] | None,
    panel: Any,
    tracking: tuple[str | None, str | None],
) -> PipelineResult:
    """The forecasts, backtest tables, plot and model, written into ``staging``."""
    out_dir, (run_id, tracking_uri) = job.out_dir, tracking
    version = f"{job.name}-{job.when.label}-{job.digest}"
    forecast = forecast_as_of(model, job.frame).with_columns(
        pl.lit(version).alias("model_version"), pl.lit(run_id, pl.String).alias("run_id")
    )
    _io.write_atomic(staging / "forecasts.parquet", forecast.write_parquet)
    if backtest is not None:
        _io.write_atomic(staging / "backtest.parquet", backtest[0].write_parquet)
        _io.write_atomic(staging / "backtest_by_step.parquet", backtest[1].write_parquet)
    plot = _plot(job.frame, forecast, model, staging / "forecast.png", job.spec.output.plot_series)
    model.save(staging / "model")
    return PipelineResult(
        name=job.name,
        as_of=job.when.label,
        requested_as_of=job.when.requested,
        effective_as_of=job.when.effective,
        status="completed",
        output_dir=str(out_dir),
        forecasts=str(out_dir / "forecasts.parquet"),
        backtest=str(out_dir / "backtest.parquet") if backtest is not None else None,
        plot=str(out_dir / "forecast.png") if plot else None,
        model_dir=str(out_dir / "model"),
        run_id=run_id,
        tracking_uri=tracking_uri,
        model_version=version,
        rows=int(panel.offsets[-1]),
        series=panel.n_series,
        spec_hash=job.digest,
        **_stale_fields(job.when),
    )


def _manifest_details(job: _Job) -> dict[str, Any]:
    spec_file = _normal(job.file)
    return {
        "pipeline": job.name,
        "spec_hash": job.digest,
        "as_of": job.when.label,
        "requested_as_of": job.when.requested,
        "effective_as_of": job.when.effective,
        "spec": (
            spec_file.relative_to(_normal(job.root)).as_posix()
            if spec_file.is_relative_to(_normal(job.root))
            else str(spec_file)
        ),
    }


# ------------------------------------------------------------------------------------------
# the model: reused, tuned or fitted
# ------------------------------------------------------------------------------------------


def _latest_pointer(root: Path, name: str) -> Path:
    return root / "models" / name / "latest.json"


_POINTER_OWNER = "forecaster latest-model pointer"


def _remember_model(job: _Job) -> None:
    """Point ``models/<name>/latest.json`` at the run's model (relative to the project) with
    the as-of of its data, unless that file or its folder is not forecaster's to write, or it
    points at a model of a later as-of (a backfill does not move it back); say why then."""
    pointer = _latest_pointer(job.root, job.name)
    problem = None
    if _io.owning_folder(pointer, stop=job.root) is not None or pointer.is_symlink():
        problem = f"{pointer.parent} is a folder forecaster wrote, or {pointer} is a link"
    elif pointer.exists():
        saved, why = _read_pointer(pointer)
        if why is not None:
            problem = f"{pointer} is not a pointer forecaster wrote"
        elif (
            saved is not None
            and saved["spec_hash"] == job.digest
            and _is_later(saved.get("effective_as_of"), job.when.effective)
        ):
            job.log(
                f"model    {pointer} keeps the model as of {saved.get('as_of')}, later than "
                f"this run's {job.when.label}"
            )
            return
    if problem is None:
        payload = {
            "owner": _POINTER_OWNER,
            "spec_hash": job.digest,
            "model_dir": (job.out_dir / "model").relative_to(_normal(job.root)).as_posix(),
            "as_of": job.when.label,
            "effective_as_of": job.when.effective,
        }
        try:
            _io.write_bytes_atomic(pointer, json.dumps(payload, indent=2).encode("utf-8"))
            return
        except OSError as exc:
            problem = f"cannot write {pointer} ({exc.strerror or exc})"
    _say(job.log, f"not recording the latest model: {problem}; reuse_model will retrain")


_POINTER_KEYS = frozenset({"spec_hash", "model_dir"})
_POINTER_OPTIONAL = frozenset({"owner", "as_of", "effective_as_of"})


def _read_pointer(pointer: Path) -> tuple[dict[str, str] | None, str | None]:
    """``(pointer, None)``, or ``(None, why it is not a forecaster pointer)``."""
    try:
        data = _io.read_file_bounded(pointer, POINTER_LIMIT, what="latest-model pointer")
        value = _io.load_json_bounded(data, source=str(pointer), max_depth=2)
    except (OSError, ForecasterError) as exc:
        return None, str(exc)
    if not (
        isinstance(value, dict)
        and _POINTER_KEYS <= set(value) <= _POINTER_KEYS | _POINTER_OPTIONAL
        and value.get("owner", _POINTER_OWNER) == _POINTER_OWNER
        and all(isinstance(item, str) for item in value.values())
    ):
        return None, f"{pointer} is not a latest-model pointer forecaster wrote"
    return value, None


def _reused_model(job: _Job) -> tuple[Any, str] | None:
    """The model the pointer names, when it is this spec's, intact, and trained on data up to
    this run's as-of at most; else None (after saying why, when the pointer is there but
    cannot be followed or names a model of later data)."""
    pointer = _latest_pointer(job.root, job.name)
    if not pointer.exists() and not pointer.is_symlink():
        return None
    saved, problem = _read_pointer(pointer)
    if saved is not None and saved["spec_hash"] != job.digest:
        return None  # another spec: a new model is due, nothing to report
    if saved is not None:
        model_dir = _normal(job.root / saved["model_dir"])
        problem = _reuse_problem(job, model_dir)
        if problem is None:
            try:
                return forecaster.load(model_dir), f"reused {model_dir}"
            except ForecasterError as exc:
                problem = f"the model in {model_dir} does not load ({_first_line(exc)})"
    _say(job.log, f"not reusing the latest model: {problem}; training a new one")
    return None


def _reuse_problem(job: _Job, model_dir: Path) -> str | None:
    """Why the model folder the pointer names is not this pipeline's intact model of data up
    to this run's as-of."""
    run = model_dir.parent
    if model_dir.name != "model" or not run.is_dir():
        return f"{model_dir} is not the model of a run's outputs"
    manifest = _io.read_manifest(run)
    if manifest is None:
        legacy = _legacy_summary(run, job.name)
        if legacy is None or legacy.spec_hash != job.digest:
            return f"{run} holds no outputs of this pipeline and spec"
        effective = legacy.effective_as_of
    elif manifest["details"].get("spec_hash") != job.digest:
        return f"{run} holds no outputs of this pipeline and spec"
    else:
        effective = manifest["details"].get("effective_as_of")
        try:
            _io.check_replaceable(run, "run", same=_same_pipeline(job.name), purpose="reuse")
        except OwnershipError as exc:
            return str(exc)
    later = _is_later(effective, job.when.effective)
    if later is None:
        return (
            f"the model in {model_dir} does not record the as-of of its data (it was written by "
            "an older forecaster), so it may have seen data after this run's as-of "
            f"{job.when.label}"
        )
    if later:
        return (
            f"the model in {model_dir} was trained on data up to {effective}, after this run's "
            f"as-of {job.when.label} ({job.when.effective}): a backfill must not see later data"
        )
    return None


def _say(log: Callable[[str], None], message: str) -> None:
    """A warning that also goes to the run's log."""
    log(f"warning  {message}")
    warnings.warn(message[0].upper() + message[1:] + ".", ForecasterWarning, stacklevel=3)


def _model(
    job: _Job,
    estimator: Any,
    tune: bool | None,
    progress: bool,
    checkpoints: Path,
    resume: bool,
) -> tuple[Any, str, Path | None]:
    """The run's model, how it was made, and the checkpoint folder of its fit (None when it
    was reused or tuned). ``tune=True`` (``--tune``) wins over ``training.reuse_model``;
    otherwise a reusable model wins over the spec's ``training.tune``."""
    spec = job.spec
    if spec.training.reuse_model and tune is True:
        job.log("model    --tune asks for a new tuned model: training.reuse_model is not used")
    elif spec.training.reuse_model:
        reused = _reused_model(job)
        if reused is not None:
            return (*reused, None)
    if spec.training.tune if tune is None else tune:
        return (*_tuned(job, progress), None)
    t0 = time.perf_counter()
    folder = fit_with_checkpoints(estimator, job.frame, checkpoints, resume, job.log)
    epochs = len(estimator.history_)
    return estimator, f"fitted in {time.perf_counter() - t0:.1f} s ({epochs} epochs)", folder


def _tuned(job: _Job, progress: bool) -> tuple[Any, str]:
    """Tune under the lock of the study's as-of (shared with ``forecaster tune``)."""
    what = f"a tuning of {job.name!r} as of {job.when.label}"
    with output_lock(tuned_model_dir(job.spec, job.root, job.when), job.wait, what):
        result = tune_model(job.spec, job.root, job.frame, job.when, progress=progress)
    return (
        result.best_estimator,
        f"tuned ({len(result.study.trials)} trials in study {result.study_name}), best "
        f"{result.best_params}",
    )


# ------------------------------------------------------------------------------------------
# evaluation, plot, tracking
# ------------------------------------------------------------------------------------------


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

    from forecaster.evaluation.backtest import backtest

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
    _io.write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=90, format="png"))
    plt.close(figure)
    return True


def _masked(text: str) -> str:
    """``text`` with the passwords of URIs in it masked (tracking's rule, when installed)."""
    try:
        from forecaster.tracking import core as tracking
    except ImportError:
        return text
    return tracking.mask_uri(text)


def _tracking_paused() -> contextlib.AbstractContextManager[None]:
    try:
        from forecaster.tracking import core as tracking
    except ImportError:
        return contextlib.nullcontext()
    return tracking.paused()


@contextlib.contextmanager
def tracked_run(spec: Spec, as_of: str, log: Callable[[str], None]) -> Any:
    """An active MLflow run for the pipeline (fits inside it are logged by the fit hook), or
    ``(None, None)`` when tracking is off or mlflow is not installed."""
    if not spec.tracking.enabled:
        yield None, None
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        import mlflow
        from forecaster.tracking import core as tracking
    except ImportError:
        log('tracking off: mlflow is not installed (pip install "forecaster[track]")')
        yield None, None
        return
    with tracking.bounded_requests():  # a server that dies mid-run costs seconds per call
        try:
            if os.environ.get("MLFLOW_RUN_ID"):  # inside `mlflow run`: log into its run
                uri = tracking.default_tracking_uri()
                mlflow.set_tracking_uri(uri)
                run = mlflow.start_run()
            else:
                experiment = spec.tracking.experiment or spec.pipeline.name
                uri = tracking.configure(experiment=experiment).tracking_uri
                run = mlflow.start_run(run_name=f"{spec.pipeline.name}-{as_of}")
        except Exception as exc:  # tracking must never stop the job
            warnings.warn(
                f"MLflow tracking is unavailable ({_masked(str(exc))}); the pipeline runs "
                "without it.",
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
        from forecaster.tracking import core as tracking

        with tracking.bounded_requests():
            _log_run_outputs(mlflow, tracking, metrics, staging, register_as)
    except Exception as exc:
        warnings.warn(
            f"Could not log the pipeline outputs to MLflow ({_masked(str(exc))}); they are still "
            "written locally.",
            ForecasterWarning,
            stacklevel=2,
        )


def _log_run_outputs(
    mlflow: Any,
    tracking: Any,
    metrics: dict[str, float],
    staging: Path,
    register_as: str | None,
) -> None:
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

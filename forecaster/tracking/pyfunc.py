"""The servable model: an MLflow pyfunc whose data is the saved model directory of
:func:`forecaster.save` (config JSON, safetensors weights, keys parquet).

It is logged with ``loader_module="forecaster.tracking.pyfunc"``, so nothing is pickled and no
code file is written (MLflow 3 refuses to unpickle models by default, and a ``.py`` file in the
default artifact store under ``mlflow/`` must be avoided): :func:`mlflow.pyfunc.load_model`
calls ``forecaster.tracking.pyfunc._load_pyfunc`` (the name MLflow's loader protocol asks for),
which loads the directory with :func:`forecaster.load`. Models logged by earlier versions name
``loader_module="forecaster.tracking"``, which loads them the same way.

The pyfunc predicts through the estimator's public ``predict`` (the one inference path) from a
pandas or polars frame (or a dict of columns) in the long format of the training frame and
returns the forecast as a pandas frame; ``params={"cutoff": ...}`` forecasts from that time
(ISO text, or an int for integer time columns). Its signature declares the output and the
``cutoff`` parameter but no input schema: MLflow's schema enforcement refused what ``predict``
accepts (an integer column for a float one, a Categorical id, a polars frame) with its own
errors, so ``predict`` checks the input itself, as the native ``predict`` does, with
forecaster's errors (after restoring dtypes a trip through pandas or JSON changed: dates that
came back as midnight datetimes, ISO text). Unknown ``params`` are dropped by MLflow before
``predict`` sees them (with a log message of MLflow's).

The model carries forecaster's own wheel (:func:`forecaster.tracking.wheel.package_wheel`),
logged as a ``code_paths`` file (MLflow copies it to the model's ``code/`` folder) and named in
its requirements as ``code/forecaster-<version>-<tag>-py3-none-any.whl``: MLflow installs a fresh
environment's requirements from the model's folder (``mlflow models serve --env-manager
virtualenv`` or ``uv``, ``mlflow models build-docker``), so the relative path finds the wheel and
no package index needs to have forecaster. A wheel, not source files: no ``.py`` file is written
to the artifact store. When no wheel can be made, the model is logged with the pin
``forecaster==<version>`` and a :class:`~forecaster.exceptions.ForecasterWarning` says why and
how to fix it (such a model serves with ``--env-manager local`` only).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import forecaster.estimators  # noqa: F401  (registers the model classes that load builds)
from forecaster._version import __version__
from forecaster.data import collect_frame
from forecaster.data.frames import column_tuple
from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.persistence import load
from forecaster.tracking.config import MODEL_NAME, describe_kind, import_mlflow, short_error
from forecaster.tracking.fingerprint import target_names
from forecaster.tracking.resilience import user_stacklevel
from forecaster.tracking.wheel import WHEEL_ENV, WheelError, package_wheel

__all__ = [
    "CODE_DIR",
    "load_model_directory",
    "log_model",
    "packaging",
    "pyfunc_class",
    "pyfunc_predict",
]


_PYFUNC_CLASS: type | None = None


def pyfunc_class() -> type:
    """Build :class:`ForecasterPyfunc` on first use (it subclasses an mlflow class, and this
    module must import without mlflow)."""
    global _PYFUNC_CLASS
    if _PYFUNC_CLASS is not None:
        return _PYFUNC_CLASS
    mlflow = import_mlflow()

    ForecasterPyfunc = _define_pyfunc(mlflow.pyfunc.PythonModel)
    _PYFUNC_CLASS = ForecasterPyfunc
    return ForecasterPyfunc


def _define_pyfunc(base: type) -> type:
    import pandas as pd

    def load_context(self: Any, context: Any) -> None:
        """Load the saved model directory (the artifact ``"model"``)."""
        self.estimator = load(context.artifacts["model"])

    def predict(self: Any, context: Any, model_input: Any, params: Any = None) -> Any:
        """Forecast: pandas frame in (long format), pandas frame out (see the class)."""
        return pyfunc_predict(self.estimator, model_input, params)

    # Real (not string) annotations for MLflow, which reads them: a pandas frame, from which
    # it infers no schema (the logged signature does that) and so does not warn.
    predict.__annotations__ = {"model_input": pd.DataFrame, "return": Any}
    doc = """MLflow pyfunc wrapper of a saved forecaster model (the artifact ``"model"``).

    Stateless until :meth:`load_context`, which loads the saved directory with
    :func:`forecaster.load`: nothing of the model is pickled. ``predict`` takes a pandas frame
    in the long format of the training frame (id, time, targets, covariates; for a model with
    future covariates, the rows after a series' last observed target whose targets and past
    covariates are all null are the future-covariate values over the horizon; a null target
    in the history stays history, for ``missing=`` to fill) and returns the forecast as a
    pandas frame (id, time, targets); ``params={"cutoff": ...}`` forecasts from that time. For an
    :class:`~forecaster.RNNRegressor` it takes the ``X`` windows (an array, or a frame of 2-D
    windows) and returns the predictions as an array.
    """
    namespace = {"__doc__": doc, "__module__": __name__, "load_context": load_context}
    namespace["predict"] = predict
    return type("ForecasterPyfunc", (base,), namespace)


class _LoadedModel:
    """What :func:`mlflow.pyfunc.load_model` wraps: a loaded estimator and its ``predict``."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def predict(self, model_input: Any, params: Any = None) -> Any:
        return pyfunc_predict(self.estimator, model_input, params)


def load_model_directory(data_path: str) -> _LoadedModel:
    """Load a logged model directory (no pickle): what MLflow's pyfunc loader returns."""
    return _LoadedModel(load(data_path))


def _load_pyfunc(data_path: str) -> _LoadedModel:
    """MLflow's pyfunc loader entry point (the name its ``loader_module`` protocol asks for)."""
    return load_model_directory(data_path)


def __getattr__(name: str) -> Any:
    if name == "ForecasterPyfunc":
        return pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_dtype(name: str) -> Any:
    """The Polars dtype written as ``str(dtype)`` for the common cases, else None."""
    if re.fullmatch(r"[A-Za-z0-9]+", name):
        dtype = getattr(pl, name, None)
        is_dtype = isinstance(dtype, type) and issubclass(dtype, pl.DataType)
        return dtype if is_dtype else None
    match = re.fullmatch(r"Datetime\(time_unit='(\w+)', time_zone=(None|'([^']*)')\)", name)
    if match:
        time_unit: Any = match.group(1)
        return pl.Datetime(time_unit, match.group(3))
    return None


def _pyfunc_frame(model_input: Any) -> pl.DataFrame:
    """A Polars frame from what the pyfunc was given (pandas or polars frame, dict of
    columns, list of rows), or our error."""
    if isinstance(model_input, pl.LazyFrame):
        return collect_frame(model_input, what="pyfunc input")
    if isinstance(model_input, pl.DataFrame):
        return model_input
    module = type(model_input).__module__
    if module.startswith("pandas") and hasattr(model_input, "columns"):
        duplicated = model_input.columns[model_input.columns.duplicated()]
        if len(duplicated):
            raise DataValidationError(
                f"The pyfunc input has the column names {sorted(map(str, set(duplicated)))} "
                "more than once; give each column one name."
            )
        convert: Callable[[], pl.DataFrame] = lambda: pl.from_pandas(model_input)  # noqa: E731
    elif isinstance(model_input, Mapping | list):
        convert = lambda: pl.DataFrame(model_input)  # noqa: E731
    else:
        raise DataValidationError(
            f"The pyfunc model of a forecaster takes a pandas or polars DataFrame (or a dict of "
            f"columns) in the long format of the training frame, got {describe_kind(model_input)}."
        )
    try:
        return convert()
    except Exception as exc:  # pyarrow / polars cannot represent a column
        raise DataValidationError(
            f"Cannot read the pyfunc input as a frame: {short_error(exc)}. Pass a frame in the "
            "long format of the training frame, with one type per column."
        ) from None


def _restore_dtypes(frame: pl.DataFrame, schema: Mapping[str, str]) -> pl.DataFrame:
    """The training dtypes where a round trip through pandas or JSON changed them without
    changing the values: a Date column that came back as midnight datetimes, a datetime of
    another time unit (same time zone), ISO text for a Date or Datetime column. Anything else
    is left for ``predict``, which refuses what does not fit, naming the column."""
    casts = []
    for name, expected in schema.items():
        if name not in frame.columns or str(frame.schema[name]) == expected:
            continue
        dtype, found = _parse_dtype(expected), frame.schema[name]
        if dtype is None or not dtype.is_temporal():
            continue
        column = frame[name]
        if found == pl.String:
            with contextlib.suppress(Exception):
                casts.append(_parse_time_text(column, dtype).alias(name))
        elif isinstance(found, pl.Datetime) and dtype == pl.Date:
            if found.time_zone is None and (column.dt.truncate("1d") == column).all():
                casts.append(column.cast(pl.Date))
        elif (
            isinstance(found, pl.Datetime)
            and isinstance(dtype, pl.Datetime)
            and found.time_zone == dtype.time_zone
        ):
            casts.append(column.cast(dtype))
    return frame.with_columns(casts) if casts else frame


def _parse_time_text(column: pl.Series, dtype: Any) -> pl.Series:
    """ISO 8601 text as ``dtype``: a Date column may come as dates or as midnight datetimes
    (JSON serving payloads write pandas' datetime64 dates as ``2018-12-31T00:00:00``); raises
    when a value is not ISO text (``31/12/2018`` is left for ``predict`` to refuse, not read
    in a guessed day/month order), does not parse, holds a time of day for a Date, or has a
    UTC offset where the trained times have no zone (or none where they have one): shifted
    to UTC, the times would be read an offset off, as native ``predict`` refuses them."""
    if not column.str.contains(r"^\d{4}-\d{2}-\d{2}(?:$|[T ])").all():
        raise ValueError(f"{column.name}: not ISO 8601 text (an ambiguous day/month order?)")
    if dtype != pl.Date:
        moments = column.str.to_datetime(strict=True)
        zone, wanted = getattr(moments.dtype, "time_zone", None), dtype.time_zone
        if (zone is None) != (wanted is None):  # an offset on zone-less times, or none on
            raise ValueError(f"{column.name}: time zone {zone}, trained on {wanted}")  # zoned
        if zone is not None:
            moments = moments.dt.convert_time_zone(wanted)
        return moments.cast(dtype)
    with contextlib.suppress(Exception):
        return column.str.to_date(strict=True)
    moments = column.str.to_datetime(strict=True)
    if getattr(moments.dtype, "time_zone", None) or (moments.dt.truncate("1d") != moments).any():
        raise ValueError(f"{column.name}: not midnight datetimes")
    return moments.cast(pl.Date)


def pyfunc_predict(estimator: Any, model_input: Any, params: Any = None) -> Any:
    """The pyfunc's ``predict``: what native ``predict`` accepts, the pyfunc accepts (the
    model is logged without an enforced input schema); what it refuses is our error."""
    params = dict(params or {}) if isinstance(params, Mapping | type(None)) else params
    allowed = {"cutoff", "level", "quantiles"} if hasattr(estimator, "schema_") else set()
    if not isinstance(params, dict) or set(params) - allowed:
        raise DataValidationError(
            f"The pyfunc model takes the params {sorted(allowed) or 'none'}, got {params!r}."
        )
    if not hasattr(estimator, "schema_"):  # RNNRegressor: arrays in, arrays out
        if hasattr(model_input, "to_numpy"):
            model_input = model_input.to_numpy()
        try:
            windows = np.asarray(model_input, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(
                f"The pyfunc model of an RNNRegressor takes numeric windows X, got "
                f"{describe_kind(model_input)} ({exc})."
            ) from None
        return estimator.predict(windows)
    frame = _restore_dtypes(_pyfunc_frame(model_input), estimator.schema_)
    future = None
    targets = target_names(estimator)
    if estimator.future_covariates and set(targets) <= set(frame.columns):
        is_future = _future_rows(frame, estimator, targets)
        keys = [c for c in (estimator.id_col, estimator.time_col) if c]
        future = frame.filter(is_future).select(*keys, *column_tuple(estimator.future_covariates))
        frame = frame.filter(~is_future)
    intervals = {  # MLflow gives the signature's default [] for a list param not passed
        k: params[k] for k in ("level", "quantiles") if params.get(k) not in (None, [], ())
    }
    if future is not None and future.height == 0 and params.get("cutoff") is None:
        raise DataValidationError(  # (predict's message would speak of a future frame)
            f"The request has no future rows: this model forecasts with the future covariates "
            f"{list(column_tuple(estimator.future_covariates))}, which a request carries after "
            f"each series' last observed {'/'.join(targets)}: {estimator.horizon} rows with "
            "their values and every target and past covariate null. Add them, or pass "
            "params={'cutoff': ...} to forecast from inside the data."
        )
    forecast = estimator.predict(frame, future=future, cutoff=params.get("cutoff"), **intervals)
    return forecast.to_pandas()


def _future_rows(frame: pl.DataFrame, estimator: Any, targets: list[str]) -> pl.Expr:
    """The rows of a pyfunc request that carry future-covariate values: after each series'
    last row with an observed target, with every target and past covariate null (a history
    row whose target is null, which ``missing=`` may fill, keeps its place in the history)."""
    past = [c for c in column_tuple(estimator.covariates) if c in frame.columns]
    unknown = pl.all_horizontal(pl.col([*targets, *past]).is_null())
    observed = pl.any_horizontal(pl.col(targets).is_not_null())
    last = pl.when(observed).then(pl.col(estimator.time_col)).max()
    if estimator.id_col is not None:
        last = last.over(estimator.id_col)
    after = (pl.col(estimator.time_col) > last).fill_null(False)
    return unknown & after


def _input_example(estimator: Any, data: Any) -> tuple[Any, Any]:
    """``(example, output)``: a valid request (the last ``lookback`` rows of one series of the
    training data, as pandas) and its forecast."""
    if not hasattr(estimator, "schema_"):
        X = np.asarray(data[0], dtype=np.float32)[:3]
        return X, estimator.predict(X)
    columns = list(estimator.schema_)
    lazy = data.lazy().select(columns)
    if estimator.id_col is not None:
        first = estimator.keys_[estimator.id_col].head(1).implode()
        lazy = lazy.filter(pl.col(estimator.id_col).is_in(first))
    frame = lazy.collect().sort([c for c in (estimator.id_col, estimator.time_col) if c])
    if frame.height == 0:
        which = "" if estimator.id_col is None else f" (series {estimator.keys_[0, 0]!r})"
        raise DataValidationError(
            f"the frame has no rows of the first series the model was trained on{which}."
        )
    lookback, horizon = int(estimator.lookback_), int(estimator.horizon)
    if not estimator.future_covariates:
        frame = frame.tail(lookback)
    elif frame.height >= lookback + horizon:  # the last horizon rows as the future: their
        # targets and past covariates unknown, their future covariates given
        frame = frame.tail(lookback + horizon)
        unknown = [*column_tuple(estimator.target), *column_tuple(estimator.covariates)]
        future = pl.int_range(pl.len()) >= lookback
        frame = frame.with_columns(pl.when(~future).then(pl.col(unknown)))
    else:  # a series too short for a request with its future rows: no forecast for it
        return frame.tail(lookback).to_pandas(), None
    return frame.to_pandas(), pyfunc_predict(estimator, frame)


def _signature(estimator: Any, example: Any, output: Any) -> Any:
    """The logged signature: the output schema, and ``cutoff`` as a parameter of a
    forecaster's ``predict`` (ISO text for Date / Datetime time columns, a long for integer
    steps; MLflow's datetime parameters cannot default to None). No input schema: MLflow
    would enforce it with its own casting rules (no int for a float column, no Categorical
    id, no polars frame, ...), and ``predict`` checks its input itself, with forecaster's
    errors."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    outputs = None
    if output is not None:
        with warnings.catch_warnings():  # MLflow's hint about integer columns and missing values
            warnings.simplefilter("ignore", UserWarning)
            outputs = infer_signature(example, output).outputs
    params = None
    if hasattr(estimator, "schema_"):
        time_dtype = _parse_dtype(estimator.schema_[estimator.time_col])
        kind = "long" if time_dtype is not None and time_dtype.is_integer() else "string"
        params = ParamSchema(
            [
                ParamSpec("cutoff", kind, None),
                ParamSpec("level", "double", [], (-1,)),  # predict(level=[80, 95]); [] none
                ParamSpec("quantiles", "double", [], (-1,)),
            ]
        )
    if outputs is None and params is None:
        return None
    return ModelSignature(inputs=None, outputs=outputs, params=params)  # type: ignore[arg-type]


CODE_DIR = "code"
"""The model's folder of its ``code_paths`` files (MLflow's name), which holds the wheel."""


def _pinned_dependencies() -> list[str]:
    names = ["mlflow", "torch", "polars", "numpy", "pandas", "pyarrow", "safetensors"]
    names += ["scikit-learn", "pydantic"]
    reqs = []
    for name in names:
        try:
            version = importlib.metadata.version(name).split("+")[0]
            reqs.append(f"{name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def packaging() -> tuple[list[str], list[str] | None]:
    """``(pip_requirements, code_paths)`` of a logged model: the pinned dependencies and
    ``code/<forecaster wheel>``, with the wheel as the one code path; without a wheel (a
    warning says why), the pin ``forecaster==<version>`` and no code path.

    Raises
    ------
    WheelError
        ``$FORECASTER_WHEEL`` is set but names no wheel of this version (an explicit setting
        is not replaced by a fallback).

    Examples
    --------
    >>> requirements, code_paths = packaging()
    >>> requirements[-1] == f"code/{Path(code_paths[0]).name}"
    True
    >>> Path(code_paths[0]).name.startswith("forecaster-0.1.0-")
    True
    """
    requirements = _pinned_dependencies()
    try:
        wheel = package_wheel()
    except WheelError as exc:
        if os.environ.get(WHEEL_ENV, "").strip():
            raise
        warnings.warn(
            f"The logged model names forecaster=={__version__} in its requirements without "
            f"shipping the package: {exc} It serves with `mlflow models serve --env-manager "
            "local` (this environment); a fresh environment (--env-manager virtualenv or uv, "
            "build-docker) can install forecaster only from an index that has this version.",
            ForecasterWarning,
            stacklevel=user_stacklevel(),
        )
        return [*requirements, f"forecaster=={__version__}"], None
    return [*requirements, f"{CODE_DIR}/{wheel.name}"], [str(wheel)]


def log_model(
    mlflow: Any,
    run_id: str,
    estimator: Any,
    data: Any,
    model_dir: Path,
    workdir: Path,
    register_as: str | None,
) -> Any:
    try:
        example, output = _input_example(estimator, data)
    except Exception as exc:
        raise ForecasterError(
            f"Could not build the model's input example (the last lookback={estimator.lookback_} "
            f"rows of the first training series, forecast by the model) from the frame: "
            f"{short_error(exc)}"
            if hasattr(estimator, "schema_")
            else f"Could not build the model's input example (the first rows of X, predicted "
            f"by the model): {short_error(exc)}"
        ) from exc
    try:
        signature = _signature(estimator, example, output)
    except Exception as exc:
        raise ForecasterError(
            f"Could not build the model's signature (its output schema and the cutoff "
            f"parameter): {short_error(exc)}"
        ) from exc
    requirements, code_paths = packaging()
    with warnings.catch_warnings():  # MLflow's own deprecation notes (e.g. pandas 3)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\.")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\.")
        return _store_model(
            mlflow,
            artifact_path=None,
            name=MODEL_NAME,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            loader_module=__name__,  # mlflow calls _load_pyfunc(data_path): no code file, no pickle
            data_path=str(model_dir),
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            code_paths=code_paths,
            registered_model_name=register_as,
            metadata={
                "forecaster_version": __version__,
                "estimator": type(estimator).__name__,
                "forecaster_wheel": None if code_paths is None else Path(code_paths[0]).name,
            },
        )


def _store_model(mlflow: Any, **kwargs: Any) -> Any:
    """``mlflow.models.Model.log(**kwargs)`` into a logged model of the run's experiment; a
    failure says that MLflow failed to store (or register) the model, with MLflow's reason (its
    cause is kept: an unreachable store is still recognised as one)."""
    try:
        return mlflow.models.Model.log(model_id=_model_of_run(mlflow, kwargs["run_id"]), **kwargs)
    except Exception as exc:
        registered = kwargs.get("registered_model_name")
        doing = "store the model" + (f" or register it as {registered!r}" if registered else "")
        raise ForecasterError(f"MLflow could not {doing}: {short_error(exc)}") from exc


def _model_of_run(mlflow: Any, run_id: str) -> str:
    """A new (pending) logged model in the experiment of the run ``run_id``, with the run's
    parameters, as ``Model.log`` makes one: left to itself, it puts the model in the process's
    current experiment whenever the run is not the active one (a study's run, a fit's run
    started by the client), which is not always the run's."""
    run = mlflow.MlflowClient().get_run(run_id)
    params = {key: str(value) for key, value in run.data.params.items()}
    model = mlflow.initialize_logged_model(
        name=MODEL_NAME, source_run_id=run_id, params=params, experiment_id=run.info.experiment_id
    )
    return str(model.model_id)

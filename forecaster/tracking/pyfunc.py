"""The servable model: an MLflow pyfunc whose data is the saved model directory of
:func:`forecaster.save` (config JSON, safetensors weights, keys parquet).

It is logged with ``loader_module="forecaster.tracking.pyfunc"``, so nothing is pickled and no
code file is written (MLflow 3 refuses to unpickle models by default, and a ``.py`` file in the
default artifact store under ``mlflow/`` must be avoided): :func:`mlflow.pyfunc.load_model`
calls ``forecaster.tracking.pyfunc._load_pyfunc`` (the name MLflow's loader protocol asks for),
which loads the directory with :func:`forecaster.load`. Models logged by earlier versions name
``loader_module="forecaster.tracking"``, which loads them the same way.

The pyfunc predicts through the estimator's public ``predict`` (the one inference path; the
request side is :mod:`forecaster.tracking.serving`) from a pandas or polars frame (or a dict of
columns) in the long format of the training frame and returns the forecast as a pandas frame;
``params={"cutoff": ...}`` forecasts from that time (ISO text, or an int for integer time
columns) and ``{"level": [...], "quantiles": [...]}`` adds interval and quantile columns. A
request where some series ends before the as-of gets ``origin`` and ``stale_steps`` columns.
Its signature declares the output (those columns optional; the forecasts, interval and
quantile columns ``double``: float64, as ``predict`` returns them; a model logged when they
were float32 declares ``float`` and keeps answering float32, :func:`load_model_directory`)
and the params but no input schema: MLflow's schema enforcement refused what ``predict``
accepts (an integer column for a float one, a Categorical id, a polars frame) with its own
errors, so ``predict`` checks the input itself, as the native ``predict`` does, with
forecaster's errors (after restoring dtypes a trip through pandas or JSON changed: dates that
came back as midnight datetimes, ISO text).

MLflow checks the params before ``predict`` sees them, and offers no hook to change that
(``mlflow.models.utils._enforce_params_schema``, MLflow 3.x): a param the signature does not
declare (a typo, ``"cutof"``) is dropped with a log message of MLflow's, and a value of the
other shape (``{"level": 90}``, a list of cutoffs) is its ``MlflowException``.
``mlflow.pyfunc.load_model(uri).get_raw_model()`` is the fitted estimator, whose ``predict``
takes those in Python.

The model carries forecaster's own wheel (:func:`forecaster.tracking.wheel.package_wheel`),
logged as a ``code_paths`` file (MLflow copies it to the model's ``code/`` folder) and named in
its requirements as ``code/forecaster_rnn-<version>-<tag>-py3-none-any.whl``: MLflow installs a
fresh environment's requirements from the model's folder (``mlflow models serve --env-manager
virtualenv`` or ``uv``, ``mlflow models build-docker``), so the relative path finds the wheel and
no package index needs to have forecaster. A wheel, not source files: no ``.py`` file is written
to the artifact store. When no wheel can be made, the model is logged with the pin
``forecaster-rnn==<version>`` and a :class:`~forecaster.exceptions.ForecasterWarning` says why and
how to fix it (such a model serves with ``--env-manager local`` only).
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import forecaster.estimators  # noqa: F401  (registers the model classes that load builds)
from forecaster._polars import collect
from forecaster._version import DISTRIBUTION, __version__
from forecaster._warnings import catching_warnings
from forecaster.data.dtypes import parse_dtype
from forecaster.data.frames import column_tuple
from forecaster.estimators.intervals import quantile_level
from forecaster.evaluation.intervals import interval_names
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    warn_at_caller,
)
from forecaster.persistence import load
from forecaster.tracking.config import MODEL_NAME, import_mlflow, short_error
from forecaster.tracking.fingerprint import target_names
from forecaster.tracking.records import tracking_write
from forecaster.tracking.serving import INTERVAL_PARAMS, pyfunc_predict
from forecaster.tracking.store import store_client
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
    pandas frame (id, time, targets; ``origin`` and ``stale_steps`` when a series ends before
    the as-of); ``params={"cutoff": ...}`` forecasts from that time. For an
    :class:`~forecaster.RNNRegressor` it takes the ``X`` windows (an array, or a frame of 2-D
    windows) and returns the predictions as an array (params are refused).
    """
    namespace = {"__doc__": doc, "__module__": __name__, "load_context": load_context}
    namespace["predict"] = predict
    return type("ForecasterPyfunc", (base,), namespace)


class _LoadedModel:
    """What :func:`mlflow.pyfunc.load_model` wraps: a loaded estimator and its ``predict``;
    ``float32``: return the forecasts as float32, as the signature of a model logged before
    they became float64 declares them (:func:`_logged_as_float32`)."""

    def __init__(self, estimator: Any, float32: bool = False) -> None:
        self.estimator = estimator
        self.float32 = float32

    def predict(self, model_input: Any, params: Any = None) -> Any:
        out = pyfunc_predict(self.estimator, model_input, params)
        if not self.float32:
            return out
        return out.astype({c: np.float32 for c, d in out.dtypes.items() if d == np.float64})

    def get_raw_model(self) -> Any:
        """The fitted estimator (``mlflow.pyfunc.load_model(uri).get_raw_model()``), whose
        own ``predict`` takes what MLflow's param schema cannot pass: a scalar ``level``,
        date objects or a list of cutoffs, ``predict_interval`` of a regressor."""
        return self.estimator


def load_model_directory(data_path: str) -> _LoadedModel:
    """Load a logged model directory (no pickle): what MLflow's pyfunc loader returns. A
    model logged when forecasts were float32 keeps answering float32, as its signature says
    (:func:`_logged_as_float32`); log it again for float64 forecasts."""
    estimator = load(data_path)
    return _LoadedModel(estimator, _logged_as_float32(estimator, Path(data_path)))


def _logged_as_float32(estimator: Any, data_path: Path) -> bool:
    """Whether ``data_path`` is the data folder of an MLflow model (``<model>/data/<name>``,
    named by the ``MLmodel`` file two levels up) whose signature declares the forecaster's
    first target ``float``: a model logged by a version whose forecasts, interval and
    quantile columns were float32 (they are float64, ``double``, since)."""
    mlmodel = data_path.parent.parent / "MLmodel"
    if not hasattr(estimator, "schema_") or not mlmodel.is_file():
        return False
    from mlflow.models import Model
    from mlflow.types.schema import DataType

    logged = Model.load(str(mlmodel))
    data = logged.flavors.get("python_function", {}).get("data")
    if data is None or (mlmodel.parent / data).resolve() != data_path.resolve():
        return False
    schema = logged.get_output_schema()
    declared = {spec.name: spec.type for spec in getattr(schema, "inputs", None) or ()}
    return declared.get(target_names(estimator)[0]) == DataType.float


def _load_pyfunc(data_path: str) -> _LoadedModel:
    """MLflow's pyfunc loader entry point (the name its ``loader_module`` protocol asks for)."""
    return load_model_directory(data_path)


def __getattr__(name: str) -> Any:
    if name == "ForecasterPyfunc":
        return pyfunc_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    frame = collect(lazy).sort([c for c in (estimator.id_col, estimator.time_col) if c])
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
    """The logged signature: the output schema (:func:`_output_schema`) and the params of
    ``predict``: for a forecaster ``cutoff`` (ISO text for Date / Datetime time columns, a
    long for integer steps; MLflow's datetime parameters cannot default to None) and the
    lists ``level`` and ``quantiles``; for an :class:`~forecaster.RNNRegressor` ``level`` and
    ``quantiles`` too, so that they reach its ``predict``, which refuses them (MLflow drops
    the params a signature does not declare, with a log message only). No input schema:
    MLflow would enforce it with its own casting rules (no int for a float column, no
    Categorical id, no polars frame, ...), and ``predict`` checks its input itself, with
    forecaster's errors.

    MLflow checks every param against its declared shape before ``predict`` sees it: a
    scalar where a list is declared (``{"level": 90}``) or a list where a scalar is
    (``{"cutoff": ["2021-03-01", ...]}``) is refused with its ``MlflowException``, and a
    ParamSpec cannot take both shapes. The declared shapes are the ones that carry every
    value (several levels; one cutoff, as text over HTTP)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    specs = [ParamSpec(name, "double", [], (-1,)) for name in INTERVAL_PARAMS]  # [] none
    if hasattr(estimator, "schema_"):
        time_dtype = parse_dtype(estimator.schema_[estimator.time_col])
        kind = "long" if time_dtype is not None and time_dtype.is_integer() else "string"
        specs.insert(0, ParamSpec("cutoff", kind, None))
    outputs = None if output is None else _output_schema(estimator, example, output)
    return ModelSignature(inputs=None, outputs=outputs, params=ParamSchema(specs))  # type: ignore[arg-type]


def _output_schema(estimator: Any, example: Any, output: Any) -> Any:
    """The output schema: the columns of the example's forecast (required), and as optional
    columns those a request can add: ``origin`` and ``stale_steps`` (a series forecast from
    before the as-of, :func:`_stale_origins`) and, for a quantile model, the interval and
    quantile columns of its own quantiles (``y_lo_80`` / ``y_hi_80`` of each symmetric pair,
    ``y_q10`` of each quantile: every ``level`` and ``quantiles`` it can serve). A calibrated
    point model serves any level in (1, 100) and any quantile in (0, 1), columns no list of
    names can hold: they are returned, undeclared (MLflow does not enforce an output schema).
    An :class:`~forecaster.RNNRegressor`'s output is its predictions' tensor."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, DataType, Schema

    with catching_warnings():  # MLflow's hint about integer columns and missing values
        warnings.simplefilter("ignore", UserWarning)
        inferred = infer_signature(example, output).outputs
    if not hasattr(estimator, "schema_"):
        return inferred
    declared = {spec.name: spec for spec in inferred.inputs}
    columns = list(declared.values())
    fitted = sorted(
        round(float(q), 12) for q in getattr(estimator.network_, "quantiles", None) or ()
    )
    levels = sorted(
        quantile_level(q) for q in fitted if q < 0.5 and round(1.0 - q, 12) in fitted
    )  # sorted as predict sorts them
    targets = target_names(estimator)
    extra = []  # predict's order: each target's interval bounds, then its quantiles
    for t in targets:
        names = interval_names(t, levels, fitted)
        extra += [ColSpec(declared[t].type, name, required=False) for name in names]
    at = [spec.name for spec in columns].index(targets[-1]) + 1
    columns[at:at] = extra
    at = [spec.name for spec in columns].index(estimator.time_col) + 1
    columns.insert(at, ColSpec(declared[estimator.time_col].type, "origin", required=False))
    columns.append(ColSpec(DataType.long, "stale_steps", required=False))
    return Schema(columns)


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
    warning says why), the pin ``forecaster-rnn==<version>`` (the distribution's name: the
    index's ``forecaster`` is an unrelated project) and no code path.

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
    >>> Path(code_paths[0]).name.startswith("forecaster_rnn-0.1.0-")
    True
    """
    requirements = _pinned_dependencies()
    try:
        wheel = package_wheel()
    except WheelError as exc:
        if os.environ.get(WHEEL_ENV, "").strip():
            raise
        warn_at_caller(
            f"The logged model names {DISTRIBUTION}=={__version__} in its requirements "
            f"without shipping the package: {exc} It serves with `mlflow models serve "
            "--env-manager local` (this environment); a fresh environment (--env-manager "
            f"virtualenv or uv, build-docker) can install it only from an index that has "
            f"{DISTRIBUTION} {__version__}.",
            ForecasterWarning,
        )
        return [*requirements, f"{DISTRIBUTION}=={__version__}"], None
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
            f"Could not build the model's signature (its output schema and params): "
            f"{short_error(exc)}"
        ) from exc
    requirements, code_paths = packaging()
    with catching_warnings():  # MLflow's own deprecation notes (e.g. pandas 3)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\.")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\.")
        return _store_model(
            mlflow,
            artifact_path=None,
            name=MODEL_NAME,
            flavor=_UncheckedPyfunc(mlflow.pyfunc),
            validate_serving_input=False,  # the example was predicted above (_input_example)
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


class _UncheckedPyfunc:
    """``mlflow.pyfunc`` as the flavor of ``Model.log``, which saves the model through it,
    and which :func:`log_model` asks not to check the input example: ``Model.log`` reads
    ``validate_serving_input`` from the keyword arguments it hands to the flavor's
    ``save_model`` too, and pyfunc's refuses a keyword it does not know, so it is dropped here.

    MLflow's check loads the model again from a temporary folder and predicts the example:
    the load put that folder's ``code`` directory at the front of ``sys.path`` (left there,
    deleted, one per logged model) and drew from torch's global generator, while
    :func:`log_model` has predicted the example already (a model that cannot is not logged).
    """

    def __init__(self, pyfunc: Any) -> None:
        self.pyfunc = pyfunc
        self.__name__ = pyfunc.__name__  # what MLflow names a flavor module by

    def save_model(self, **kwargs: Any) -> Any:
        """``mlflow.pyfunc.save_model`` of the keyword arguments but ``validate_serving_input``."""
        kwargs.pop("validate_serving_input", None)
        return self.pyfunc.save_model(**kwargs)


def _store_model(mlflow: Any, **kwargs: Any) -> Any:
    """``mlflow.models.Model.log(**kwargs)`` into a logged model of the run's experiment; a
    failure says that MLflow failed to store (or register) the model, with MLflow's reason (its
    cause is kept: an unreachable store is still recognised as one).

    A tracking write (:func:`~forecaster.tracking.records.tracking_write`), although it
    uploads the model's files first: after them it writes database rows (the run's output,
    the model's final state, a registration), so an interrupt waits for the model to be
    stored (a second one stops it at once)."""
    try:
        model_id = _model_of_run(mlflow, kwargs["run_id"])
        return tracking_write(mlflow.models.Model.log, model_id=model_id, **kwargs)
    except Exception as exc:
        registered = kwargs.get("registered_model_name")
        doing = "store the model" + (f" or register it as {registered!r}" if registered else "")
        raise ForecasterError(f"MLflow could not {doing}: {short_error(exc)}") from exc


def _model_of_run(mlflow: Any, run_id: str) -> str:
    """A new (pending) logged model in the experiment of the run ``run_id``, with the run's
    parameters, as ``Model.log`` makes one: left to itself, it puts the model in the process's
    current experiment whenever the run is not the active one (a study's run, a fit's run
    started by the client), which is not always the run's."""
    run = store_client(mlflow, mlflow.get_tracking_uri()).get_run(run_id)
    params = {key: str(value) for key, value in run.data.params.items()}
    model = tracking_write(
        mlflow.initialize_logged_model,
        name=MODEL_NAME,
        source_run_id=run_id,
        params=params,
        experiment_id=run.info.experiment_id,
    )
    return str(model.model_id)

"""The logged pyfunc model carries forecaster's wheel, and ``mlflow models serve`` serves it.

The fast tests log a tiny model to a SQLite store of their own and read the model back: its
requirements name ``code/forecaster-<version>-py3-none-any.whl``, a wheel inside the model that
holds the package; no ``.py`` file reaches the artifact store; ``$FORECASTER_WHEEL`` is used,
or refused with a reason. The slow ones start ``mlflow models serve --env-manager local`` and
POST a pandas-split payload to ``/invocations``, and pack a wheel from a wheel install.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from conftest import answers, forget_mlflow_state, free_port, reset_mlflow_state, sine_panel

from forecaster import RNNForecaster, __version__, tracking
from forecaster.exceptions import DataValidationError, ForecasterWarning

mlflow = pytest.importorskip("mlflow")

from forecaster.tracking import pyfunc, wheel  # noqa: E402  (needs mlflow)

# the distribution forecaster-rnn (the index's "forecaster" is an unrelated project)
WHEEL_NAME = f"forecaster_rnn-{__version__}-py3-none-any.whl"
# the name of a wheel forecaster makes: a build tag of its content
TAGGED = re.compile(rf"forecaster_rnn-{re.escape(__version__)}-1[0-9a-f]{{12}}-py3-none-any\.whl")
SERVER_START_TIMEOUT = 150.0


def make_frame(n_series: int = 2, n_steps: int = 120) -> pl.DataFrame:
    return sine_panel(n_series, n_steps, start=dt.date(2021, 1, 1), period=3)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A tiny quantile model fitted and logged (``log_fit``) to a SQLite store of its own, and
    its model folder downloaded."""
    root = tmp_path_factory.mktemp("pyfunc")
    frame = make_frame()
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", lookback=12, horizon=4, hidden_size=8,
        segment_length=4, max_epochs=2, loss="quantile", quantiles=[0.1, 0.5, 0.9],
        random_state=0, progress=False, validation_size=0,
    ).fit(frame)  # fmt: skip
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        reset_mlflow_state(monkeypatch, root)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        try:
            path, rng = list(sys.path), torch.get_rng_state()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a tiny model's BaselineWarning, MLflow's notes
                log = tracking.log_fit(model, frame, plot=False)
            path_added = [p for p in sys.path if p not in path]
            rng_kept = torch.equal(rng, torch.get_rng_state())
            assert log.model_uri is not None, log.not_logged
            local = Path(mlflow.artifacts.download_artifacts(log.model_uri, dst_path=root / "dl"))
        finally:
            forget_mlflow_state()
    return {"model": model, "frame": frame, "uri": log.model_uri, "tracking_uri": uri,
            "local": local, "root": root,
            "path_added": path_added, "rng_kept": rng_kept}  # fmt: skip


def test_a_null_target_in_the_history_is_not_taken_for_a_future_row():
    """A pyfunc request of a future-covariate model with missing="ffill": a history row with a
    null target (the series' last, or one inside) was split off as a future row, so the
    forecast started a step early (from inside the data) or lost that row's covariates."""
    frame = make_frame().with_columns(
        x=pl.col("y").shift(1).over("id").fill_null(0.0), f=pl.col("date").dt.weekday() / 7.0
    )
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", covariates="x", future_covariates="f",
        lookback=12, horizon=4, hidden_size=8, segment_length=4, max_epochs=1,
        missing="ffill", random_state=0, progress=False, validation_size=0, baseline="none",
    ).fit(frame)  # fmt: skip
    last = frame["date"].max()
    holes = (pl.col("id") == "s0") & pl.col("date").is_in([last, last - dt.timedelta(days=5)])
    history = frame.with_columns(y=pl.when(holes).then(None).otherwise("y"))
    future = (
        history.group_by("id")
        .agg(pl.col("date").max())
        .select("id", pl.col("date").dt.offset_by("1d").dt.date())
    )
    future = future.join(pl.DataFrame({"k": range(4)}), how="cross").select(
        "id", (pl.col("date") + pl.duration(days=pl.col("k"))).alias("date")
    )
    future = future.with_columns(f=pl.col("date").dt.weekday() / 7.0)
    expected = model.predict(history, future=future)
    request = pl.concat([history, future], how="diagonal_relaxed").to_pandas()
    got = pl.from_pandas(pyfunc.pyfunc_predict(model, request))
    assert got.select(expected.columns).equals(expected)


def test_the_input_example_of_a_future_covariate_model_is_a_request_with_its_future():
    """The example was the last lookback rows alone, which the model cannot forecast from
    (no future covariates): MLflow warned that it could not validate the example, and the
    logged model had no output schema."""
    frame = make_frame().with_columns(
        x=pl.col("y").shift(1).over("id").fill_null(0.0), f=pl.col("date").dt.weekday() / 7.0
    )
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", covariates="x", future_covariates="f",
        lookback=12, horizon=4, hidden_size=8, segment_length=4, max_epochs=1,
        random_state=0, progress=False, validation_size=0, baseline="none",
    ).fit(frame)  # fmt: skip
    example, output = pyfunc._input_example(model, frame)
    request = pl.from_pandas(example)
    assert request.height == 16 and request["id"].n_unique() == 1
    assert request.tail(4).select("y", "x").null_count().row(0) == (4, 4)
    assert request.head(12).select("y", "x").null_count().row(0) == (0, 0)
    assert request.tail(4)["f"].null_count() == 0
    assert len(output) == 4  # the forecast of the 4 future rows


def future_model() -> tuple[RNNForecaster, pl.DataFrame]:
    """A tiny model with the future covariate ``f`` (the weekday), and the frame it was
    fitted on."""
    frame = make_frame().with_columns(f=pl.col("date").dt.weekday() / 7.0)
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", future_covariates="f", lookback=12,
        horizon=4, hidden_size=8, segment_length=4, max_epochs=1, random_state=0,
        progress=False, validation_size=0, baseline="none",
    ).fit(frame)  # fmt: skip
    return model, frame


def test_a_request_without_future_rows_says_what_a_request_holds():
    model, frame = future_model()
    with pytest.raises(DataValidationError, match=r"The request has no future rows: .*\['f'\]"):
        pyfunc.pyfunc_predict(model, frame.to_pandas())  # was: "The future frame has no rows"


def test_a_request_with_a_cutoff_reads_the_future_covariates_after_it():
    """A future-covariate model could not forecast from a cutoff inside the request ("The
    future frame has no rows for 8 forecast steps", though the request held them), which the
    advice of a request without future rows suggested: the pyfunc reads them from the rows
    after the cutoff, as native predict(frame, cutoff=[...]) reads its frame."""
    model, frame = future_model()
    cutoff = dt.date(2021, 3, 1)
    expected = model.predict(frame, cutoff=[cutoff]).drop("origin").to_pandas()
    got = pyfunc.pyfunc_predict(model, frame.to_pandas(), {"cutoff": "2021-03-01"})
    assert got["date"].tolist() == expected["date"].tolist()
    np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-6)
    # a request with future rows too: those after the cutoff and its future rows are read
    future = frame.filter(pl.col("date") > cutoff).with_columns(y=None)
    request = pl.concat([frame.filter(pl.col("date") <= cutoff), future]).to_pandas()
    again = pyfunc.pyfunc_predict(model, request, {"cutoff": "2021-03-01"})
    np.testing.assert_allclose(again["y"], expected["y"], rtol=1e-6)
    last = str(frame["date"].max())
    with pytest.raises(DataValidationError, match=r"no future rows: .* the rows after cutoff="):
        pyfunc.pyfunc_predict(model, frame.to_pandas(), {"cutoff": last})
    # a cutoff that is not a time of the frame gets predict's message (was: "no future rows")
    with pytest.raises(DataValidationError, match=r"cutoff='yesterday' .*is not a time"):
        pyfunc.pyfunc_predict(model, frame.to_pandas(), {"cutoff": "yesterday"})


def test_a_list_of_cutoffs_reads_the_future_rows_of_the_request():
    """The pyfunc dropped a request's future rows when given a list of cutoffs (Python
    callers), so an origin near the end of the history failed ("every origin needs its next
    rows") although the request held their values."""
    model, frame = future_model()
    last = frame["date"].max()
    history = frame.filter(pl.col("date") <= last - dt.timedelta(days=4))
    future = frame.filter(pl.col("date") > history["date"].max()).select("id", "date", "f")
    request = pl.concat([history, future], how="diagonal_relaxed")
    cutoffs = [dt.date(2021, 3, 1), history["date"].max()]
    got = pl.from_pandas(pyfunc.pyfunc_predict(model, request.to_pandas(), {"cutoff": cutoffs}))
    expected = model.predict(frame, cutoff=cutoffs)  # the targets after the last cutoff: unread
    assert got.height == 2 * 2 * 4
    assert got.select(expected.columns).equals(expected)


# ------------------------------------------------------------------------------------------
# what a request gets back, and what the signature says it gets
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_regressor(tmp_path_factory):
    """A calibrated RNNRegressor logged to a SQLite store of its own, loaded back as a pyfunc,
    with its windows: ``(pyfunc, model, X)``."""
    from forecaster import RNNRegressor

    root = tmp_path_factory.mktemp("pyfunc-regressor")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8, 2)).astype(np.float32)
    y = X[:, -1, 0]
    model = RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X[:48], y[:48])
    model.calibrate(X[48:], y[48:])
    with pytest.MonkeyPatch.context() as monkeypatch:
        reset_mlflow_state(monkeypatch, root)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLflow's notes
                log = tracking.log_fit(model, (X[:48], y[:48]), plot=False)
            assert log.model_uri is not None, log.not_logged
            loaded = mlflow.pyfunc.load_model(log.model_uri)
        finally:
            forget_mlflow_state()
    return loaded, model, X


def test_a_regressor_pyfunc_refuses_the_interval_params_it_does_not_serve(logged_regressor):
    """The regressor's pyfunc had no params in its signature, so MLflow dropped
    ``params={"level": [80]}`` (a log line) and the client got point predictions as if they
    were what it asked for."""
    loaded, model, X = logged_regressor
    for params in ({"level": [80]}, {"quantiles": [0.1, 0.9]}):
        with pytest.raises(DataValidationError, match=r"point predictions.*predict_interval"):
            loaded.predict(X[:3], params=params)
    np.testing.assert_allclose(loaded.predict(X[:3]), model.predict(X[:3]), rtol=1e-6)
    lo, hi = loaded.get_raw_model().predict_interval(X[:3], level=80)  # the way to intervals
    np.testing.assert_array_equal((lo, hi), model.predict_interval(X[:3], level=80))


def test_the_output_schema_declares_the_columns_a_request_can_add(logged):
    """The signature declared id, date and y only: the interval and quantile columns of
    ``level`` / ``quantiles`` (and the stale series' ``origin``) came back undeclared."""
    signature = mlflow.models.Model.load(str(logged["local"])).signature
    declared = {spec.name: spec for spec in signature.outputs.inputs}
    optional = {"origin", "y_lo_80", "y_hi_80", "y_q10", "y_q50", "y_q90", "stale_steps"}
    assert set(declared) == {"id", "date", "y"} | optional
    assert {name for name, spec in declared.items() if not spec.required} == optional
    assert declared["origin"].type == declared["date"].type
    assert declared["y_lo_80"].type == declared["y"].type
    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    everything = {"level": [80], "quantiles": [0.1, 0.5, 0.9]}
    got = loaded.predict(logged["frame"].to_pandas(), params=everything)
    assert set(got.columns) == set(declared) - {"origin", "stale_steps"}


def test_the_output_schema_declares_float64_forecasts_as_the_pyfunc_returns_them(logged):
    """Forecasts, interval and quantile columns are float64 (they were float32: a series near
    1.2e10 rounded to steps of 1024); the signature says ``double`` and the pyfunc answers
    that dtype."""
    signature = mlflow.models.Model.load(str(logged["local"])).signature
    declared = {spec.name: spec.type.name for spec in signature.outputs.inputs}
    assert {declared[c] for c in ("y", "y_lo_80", "y_hi_80", "y_q10")} == {"double"}
    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    got = loaded.predict(logged["frame"].to_pandas(), params={"level": [80]})
    assert {str(got[c].dtype) for c in ("y", "y_lo_80", "y_hi_80")} == {"float64"}


def test_a_model_logged_with_float32_forecasts_keeps_answering_them(logged, tmp_path):
    """A model logged before forecasts became float64 declares them ``float`` (float32): it
    answers float32 still, as its signature says (the same values, rounded as they were)."""
    old = tmp_path / "old"
    shutil.copytree(logged["local"], old)
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    model = mlflow.models.Model.load(str(old))  # the signature such a model was logged with
    outputs = [
        ColSpec(DataType.float if c.type == DataType.double else c.type, c.name, c.required)
        for c in model.signature.outputs.inputs
    ]
    model.signature = ModelSignature(None, Schema(outputs), model.signature.params)
    model.save(str(old / "MLmodel"))
    request = logged["frame"].to_pandas()
    new = mlflow.pyfunc.load_model(str(logged["local"])).predict(request, params={"level": [80]})
    got = mlflow.pyfunc.load_model(str(old)).predict(request, params={"level": [80]})
    assert {str(got[c].dtype) for c in ("y", "y_lo_80", "y_hi_80")} == {"float32"}
    for c in ("y", "y_lo_80", "y_hi_80"):
        np.testing.assert_array_equal(got[c].to_numpy(), new[c].to_numpy().astype(np.float32))


def test_the_raw_model_takes_what_mlflow_params_cannot_carry(logged):
    """MLflow checks params against their declared shape before the pyfunc sees them: a scalar
    ``level`` or a list of cutoffs is its ``MlflowException``. ``get_raw_model()`` is the
    estimator, whose ``predict`` takes them."""
    from mlflow.exceptions import MlflowException

    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    frame, model = logged["frame"], logged["model"]
    with pytest.raises(MlflowException, match="1D array"):
        loaded.predict(frame.to_pandas(), params={"level": 80})
    raw = loaded.get_raw_model()
    assert raw.get_params() == model.get_params()
    cutoffs = [dt.date(2021, 3, 1), dt.date(2021, 3, 15)]
    got = raw.predict(frame, cutoff=cutoffs, level=80)
    assert got.equals(model.predict(frame, cutoff=cutoffs, level=80))
    assert {"origin", "y_lo_80"} <= set(got.columns)


@pytest.mark.parametrize("index", [["date"], ["id"], ["id", "date"]])
def test_a_pandas_frame_with_keys_in_its_index_is_told_to_reset_it(logged, index):
    """Was: "The frame lacks the columns ['date'] that the model was trained with", about a
    column that is there, in the index."""
    request = logged["frame"].to_pandas().set_index(index)
    with pytest.raises(DataValidationError, match=rf"index {index[0]!r}.*reset_index\(\)"):
        pyfunc.pyfunc_predict(logged["model"], request)


def test_a_warning_of_a_loaded_models_predict_points_at_the_callers_line(logged):
    """The ForecasterWarning of a model MLflow loaded points at the line that called its
    ``predict`` (``warn_at_caller`` passes MLflow's frames; it pointed inside mlflow)."""
    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    frame = logged["frame"]
    early = frame["date"].max() - dt.timedelta(days=10)
    request = frame.filter((pl.col("id") == "s0") | (pl.col("date") <= early)).to_pandas()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded.predict(request)
    ours = [w for w in caught if issubclass(w.category, ForecasterWarning)]
    assert ours, [str(w.message) for w in caught]
    assert {w.filename for w in ours} == {__file__}, [(w.filename, w.lineno) for w in ours]


def test_a_series_that_ends_early_says_its_origin_in_the_pyfunc_output(logged):
    """A series whose data ends before the request's as-of is forecast from its own last
    time: native ``predict`` warns, but the pyfunc's answer (over HTTP too) was dated before
    the as-of with nothing to say so. It has ``origin`` and ``stale_steps`` columns then, as a
    pipeline's forecasts have; an up-to-date request's answer keeps its columns."""
    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    frame, model = logged["frame"], logged["model"]
    last = frame["date"].max()
    early = last - dt.timedelta(days=10)
    request = frame.filter((pl.col("id") == "s0") | (pl.col("date") <= early))
    with pytest.warns(ForecasterWarning, match="forecast from their last time"):
        expected = model.predict(request)
        got = pl.from_pandas(loaded.predict(request.to_pandas()))
    assert got.columns == ["id", "date", "origin", "y", "stale_steps"]
    assert got["y"].equals(expected["y"]) and got["id"].equals(expected["id"])
    assert got["date"].dt.date().equals(expected["date"])
    ends = got.group_by("id", maintain_order=True).agg(pl.col("origin", "stale_steps").first())
    assert ends.with_columns(pl.col("origin").dt.date()).rows() == [
        ("s0", last, 0),
        ("s1", early, 10),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        cut = pl.from_pandas(loaded.predict(request.to_pandas(), params={"cutoff": str(last)}))
        assert cut["stale_steps"].unique().sort().to_list() == [0, 10]  # the as-of: the cutoff
        inside = loaded.predict(request.to_pandas(), params={"cutoff": str(early)})
    assert list(inside.columns) == ["id", "date", "y"]  # every series reaches the cutoff
    assert list(loaded.predict(frame.to_pandas()).columns) == ["id", "date", "y"]


def test_stale_steps_of_the_pyfunc_count_local_days_and_a_series_own_day_of_the_month():
    """The pyfunc's ``stale_steps``: a daily Europe/Berlin series that ends on March 29 is 4
    days behind April 2 (it said 3: the spring-forward day lasts 23 hours), and a monthly
    series on the 30th that ends on February 29 (its month-end) is a month behind March 30
    (it was not marked: the step after a month-end was read as March 31)."""
    days = pl.datetime_range(
        dt.datetime(2024, 3, 1), dt.datetime(2024, 4, 2), "1d", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    months = pl.date_range(dt.date(2022, 1, 30), dt.date(2024, 3, 30), "1mo", eager=True)
    for times, behind, freq in ((days, 4, "1d"), (months, 1, "1mo")):
        n = len(times)
        frame = pl.concat(
            [
                pl.DataFrame({"id": "a", "date": times, "y": np.sin(np.arange(n) / 3.0)}),
                pl.DataFrame({"id": "b", "date": times[: n - behind], "y": np.ones(n - behind)}),
            ]
        )
        model = RNNForecaster(
            target="y", id_col="id", time_col="date", lookback=6, horizon=2, hidden_size=4,
            max_epochs=1, freq=freq, random_state=0, progress=False, validation_size=0,
            baseline="none",
        ).fit(frame)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ForecasterWarning)
            got = pl.from_pandas(pyfunc.pyfunc_predict(model, frame.to_pandas()))
        steps = got.group_by("id", maintain_order=True).agg(pl.col("stale_steps").first())
        assert steps.rows() == [("a", 0), ("b", behind)], freq


def test_the_pyfunc_answer_is_sorted_by_id_and_time(logged):
    """A request whose rows come series s1 first was answered s1 first (predict kept the
    request's order of series, while its docstring says sorted by (id, time)); a list of
    cutoffs answers cutoff after cutoff, each block so sorted."""
    frame, model = logged["frame"], logged["model"]
    request = frame.sort("id", "date", descending=[True, False]).to_pandas()
    got = pl.from_pandas(pyfunc.pyfunc_predict(model, request))
    assert got["id"].unique(maintain_order=True).to_list() == ["s0", "s1"]
    assert got.equals(got.sort("id", "date"))
    cutoffs = [dt.date(2021, 3, 15), dt.date(2021, 3, 1)]
    listed = pl.from_pandas(pyfunc.pyfunc_predict(model, request, {"cutoff": cutoffs}))
    assert listed.select("origin", "id").gather_every(4).rows() == [
        (dt.datetime(2021, 3, 15), "s0"),
        (dt.datetime(2021, 3, 15), "s1"),
        (dt.datetime(2021, 3, 1), "s0"),
        (dt.datetime(2021, 3, 1), "s1"),
    ]


# ------------------------------------------------------------------------------------------
# the wheel inside the model
# ------------------------------------------------------------------------------------------


def test_requirements_name_the_wheel_inside_the_model(logged):
    local = logged["local"]
    requirements = (local / "requirements.txt").read_text().splitlines()
    assert requirements[-1].startswith("code/") and TAGGED.fullmatch(requirements[-1][5:])
    assert not any(line.startswith(("forecaster==", "forecaster-rnn==")) for line in requirements)
    shipped = local / requirements[-1]
    assert shipped.is_file()
    with zipfile.ZipFile(shipped) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"forecaster_rnn-{__version__}.dist-info/METADATA").decode()
    assert {"forecaster/__init__.py", "forecaster/tracking/pyfunc.py"} <= names
    assert f"Version: {__version__}" in metadata and "\nName: forecaster-rnn\n" in metadata
    # the same requirements for every environment manager, and the model says which wheel
    assert requirements[-1] in (local / "conda.yaml").read_text()
    assert "requirements.txt" in (local / "python_env.yaml").read_text()
    mlmodel = mlflow.models.Model.load(str(local))
    assert mlmodel.metadata["forecaster_wheel"] == shipped.name
    assert mlmodel.flavors["python_function"]["loader_module"] == "forecaster.tracking.pyfunc"


def test_no_python_file_reaches_the_artifact_store(logged):
    """The package goes as a wheel (a zip), never as source files: no ``.py`` file under the
    model or the store's folder (the default store is the repository's ``mlflow/``)."""
    found = [p for p in logged["root"].rglob("*.py") if "site-packages" not in p.parts]
    assert found == []
    [shipped] = logged["local"].rglob("*.whl")
    assert shipped.parent == logged["local"] / "code" and TAGGED.fullmatch(shipped.name)


def test_logging_a_model_leaves_sys_path_and_the_torch_generator_as_they_were(logged):
    """MLflow checked the input example by loading the model again from a temporary folder:
    the load put that folder's ``code`` directory first on ``sys.path`` (deleted, one per
    logged model: every autolog fit added one) and drew from torch's global generator. The
    example is predicted by forecaster before logging, and MLflow's check is off; the model
    keeps its example."""
    assert logged["path_added"] == []
    assert logged["rng_kept"]
    assert (logged["local"] / "serving_input_example.json").is_file()


def test_the_logged_model_loads_and_predicts_in_this_process(logged):
    loaded = mlflow.pyfunc.load_model(str(logged["local"]))
    got = pl.from_pandas(loaded.predict(logged["frame"].to_pandas()))
    expected = logged["model"].predict(logged["frame"])
    np.testing.assert_allclose(got["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# where the wheel comes from
# ------------------------------------------------------------------------------------------


def test_a_wheel_of_your_own_is_used_as_given(tmp_path, monkeypatch):
    mine = tmp_path / WHEEL_NAME
    shutil.copyfile(wheel.package_wheel(), mine)
    monkeypatch.setenv(wheel.WHEEL_ENV, str(mine))
    assert wheel.package_wheel() == mine
    requirements, code_paths = pyfunc.packaging()
    assert code_paths == [str(mine)] and requirements[-1] == f"code/{WHEEL_NAME}"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.whl", None, "not an existing file"),
        ("forecaster.zip", b"PK", "not named like a wheel"),
        (WHEEL_NAME, b"not a zip", "not a zip archive"),
        (WHEEL_NAME, "other-package", "lacks"),
        ("forecaster_rnn-0.0.1-py3-none-any.whl", "old-version", "holds forecaster 0.0.1"),
        # the former distribution name, or the index's unrelated project "forecaster"
        (f"forecaster-{__version__}-py3-none-any.whl", "old-version", "former distribution name"),
    ],
)
def test_a_bad_wheel_of_your_own_is_refused_with_the_reason(
    tmp_path, monkeypatch, name, content, message
):
    path = tmp_path / name
    if content == "other-package":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("other/__init__.py", "")
    elif content == "old-version":
        with zipfile.ZipFile(wheel.package_wheel()) as source, zipfile.ZipFile(path, "w") as out:
            for item in source.namelist():
                target = item.replace(f"forecaster_rnn-{__version__}.", "forecaster_rnn-0.0.1.")
                out.writestr(target, source.read(item))
    elif content is not None:
        path.write_bytes(content)
    monkeypatch.setenv(wheel.WHEEL_ENV, str(path))
    with pytest.raises(wheel.WheelError, match=message) as caught:
        wheel.package_wheel()
    assert wheel.WHEEL_ENV in str(caught.value)
    # an explicit setting is not replaced by a fallback: logging the model fails
    with pytest.raises(wheel.WheelError, match=message):
        pyfunc.packaging()


def test_without_a_wheel_the_model_pins_the_version_and_a_warning_says_why(monkeypatch):
    def unavailable():
        raise wheel.WheelError("no build backend here (test)")

    monkeypatch.delenv(wheel.WHEEL_ENV, raising=False)
    monkeypatch.setattr(pyfunc, "package_wheel", unavailable)
    with pytest.warns(ForecasterWarning, match="no build backend here.*--env-manager local"):
        requirements, code_paths = pyfunc.packaging()
    # the distribution's name: a pin `forecaster==` would resolve the index's unrelated project
    assert code_paths is None and requirements[-1] == f"forecaster-rnn=={__version__}"


def test_the_wheel_is_cached_by_content(tmp_path, monkeypatch):
    """A second call reuses the cached wheel; a damaged one is made again, and the cache keeps
    the CACHE_KEEP most recently used wheels; a cache folder that cannot be made is an error
    that names the variable to set."""
    monkeypatch.delenv(wheel.WHEEL_ENV, raising=False)
    built = wheel.package_wheel()  # the user's cache: built once per version of the code
    assert f"-1{built.parent.name[:12]}-" in built.name  # named after its content's digest
    cache = tmp_path / "cache"
    shutil.copytree(built.parent, cache / built.parent.name)
    old = []
    for i in range(wheel.CACHE_KEEP):  # older entries of other code (before manifests)
        old.append(cache / f"{i:024x}" / WHEEL_NAME)
        old[-1].parent.mkdir()
        old[-1].write_bytes(b"")
        os.utime(old[-1], (1e9 + i, 1e9 + i))
    mine = cache / "release-0.0.1"  # a user's folder holding a wheel: never pruned
    mine.mkdir()
    (mine / WHEEL_NAME).write_bytes(b"")
    (mine / "NOTES.md").write_text("my notes")
    os.utime(mine / WHEEL_NAME, (1e8, 1e8))  # the oldest of all
    monkeypatch.setenv(wheel.CACHE_ENV, str(cache))
    first = wheel.package_wheel()
    assert first == cache / built.parent.name / built.name
    before = first.stat()
    assert wheel.package_wheel() == first
    after = first.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)  # not rewritten
    first.write_bytes(b"damaged")
    assert wheel.package_wheel() == first and wheel.check_wheel(first) == first  # made again
    assert [p.exists() for p in old] == [False] + [True] * (wheel.CACHE_KEEP - 1)
    assert (mine / "NOTES.md").read_text() == "my notes" and (mine / WHEEL_NAME).exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(wheel.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(wheel.WheelError, match=wheel.CACHE_ENV):
        wheel.package_wheel()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_wheel_install_is_packed_back_into_the_same_wheel(tmp_path):
    """forecaster installed from its wheel (``pip install --target``, no source tree): the
    wheel made from the installed files holds the same files with the same bytes."""
    built = wheel.package_wheel()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(built)],
        check=True, timeout=120,
    )  # fmt: skip
    script = textwrap.dedent(
        """
        import sys
        import forecaster
        from forecaster.tracking.wheel import package_wheel
        assert forecaster.__file__.startswith(sys.argv[1]), forecaster.__file__
        print(package_wheel())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(target), wheel.CACHE_ENV: str(tmp_path / "cache")}
    env.pop(wheel.WHEEL_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    packed = Path(done.stdout.strip().splitlines()[-1])
    assert TAGGED.fullmatch(packed.name) and packed.parent.parent == tmp_path / "cache"
    with zipfile.ZipFile(built) as a, zipfile.ZipFile(packed) as b:
        record = f"forecaster_rnn-{__version__}.dist-info/RECORD"
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            if name != record:
                assert a.read(name) == b.read(name), name


# ------------------------------------------------------------------------------------------
# mlflow models serve
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    model_uri: str,
    env: dict[str, str],
    log: Path,
    manager: str = "local",
    timeout: float = SERVER_START_TIMEOUT,
):
    """``mlflow models serve --env-manager <manager>`` on a free port of 127.0.0.1: its URL
    once ``/ping`` answers (within ``timeout`` s); stopped (its process group) afterwards."""
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
        "--env-manager", manager, "-h", "127.0.0.1", "-p", str(port), "-w", "1",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while not answers(f"{url}/ping"):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:]
                    pytest.fail(
                        f"mlflow models serve --env-manager {manager} did not answer /ping "
                        f"within {timeout:.0f} s (exit code {process.poll()}):\n{tail}"
                    )
                time.sleep(0.5)
            yield url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(20)


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        pytest.fail(f"/invocations answered {exc.code}: {exc.read()[:2000]!r}")


def _serve_env(logged: dict) -> dict[str, str]:
    """The server's environment: the test's store, the venv's ``bin`` first on PATH (where
    ``uvicorn`` is: without it, ``uvicorn: not found``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = logged["tracking_uri"]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _check_served(logged: dict, env: dict[str, str], manager: str, timeout: float) -> None:
    """Serve the logged model, POST a pandas-split payload with and without interval params
    and compare the answers with ``predict``; a payload with a series that ends early gets
    its ``origin`` and ``stale_steps``."""
    frame, model = logged["frame"], logged["model"]

    def payload(data: pl.DataFrame) -> dict:
        return json.loads(data.to_pandas().to_json(orient="split", date_format="iso", index=False))

    split = payload(frame)
    early = frame["date"].max() - dt.timedelta(days=3)
    stale = payload(frame.filter((pl.col("id") == "s0") | (pl.col("date") <= early)))
    log = logged["root"] / f"serve-{manager}.log"
    with serving(logged["uri"], env, log, manager, timeout) as url:
        point = _post(url, {"dataframe_split": split})
        bands = _post(
            url, {"dataframe_split": split, "params": {"level": [80], "quantiles": [0.1, 0.9]}}
        )
        behind = _post(url, {"dataframe_split": stale})
    ends = {(r["id"], r["origin"][:10], r["stale_steps"]) for r in behind["predictions"]}
    assert ends == {("s0", str(frame["date"].max()), 0), ("s1", str(early), 3)}
    for answer, expected in (
        (point, model.predict(frame)),
        (bands, model.predict(frame, level=[80], quantiles=[0.1, 0.9])),
    ):
        got = pl.DataFrame(answer["predictions"])
        assert got.columns == expected.columns
        assert got["id"].to_list() == expected["id"].to_list()
        dates = got["date"].str.slice(0, 10).str.to_date()
        assert dates.to_list() == expected["date"].to_list()
        for column in expected.columns[2:]:
            np.testing.assert_allclose(
                got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-5, err_msg=column
            )
    assert {"y_lo_80", "y_hi_80", "y_q10", "y_q90"} <= set(bands["predictions"][0])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mlflow_models_serve_forecasts_what_predict_does(logged):
    """The logged model served by ``mlflow models serve --env-manager local``: a pandas-split
    payload posted to ``/invocations`` gives ``predict``'s forecast, and with ``params`` its
    interval and quantile columns."""
    _check_served(logged, _serve_env(logged), "local", SERVER_START_TIMEOUT)


FRESH_ENV = "FORECASTER_TEST_FRESH_ENV"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("manager", ["virtualenv", "uv"])
def test_a_fresh_environment_installs_the_shipped_wheel(logged, manager, tmp_path):
    """Opt-in (``FORECASTER_TEST_FRESH_ENV=virtualenv,uv``): it needs a package index for the
    other requirements (about 120 packages; torch's CUDA build from PyPI: 5 GB with uv) and
    takes minutes. MLflow builds a new environment (``MLFLOW_ENV_ROOT`` in a temporary folder,
    removed afterwards) that installs forecaster from the wheel inside the model, and serves
    the same forecast."""
    if manager not in os.environ.get(FRESH_ENV, "").replace(" ", "").split(","):
        pytest.skip(f"set {FRESH_ENV}={manager} to build a fresh environment (needs an index)")
    if manager == "uv" and shutil.which("uv") is None:
        pytest.skip("uv is not installed (pip install uv)")
    env = _serve_env(logged)
    env.pop("PYTHONPATH", None)  # the environment's forecaster: the wheel's
    env["MLFLOW_ENV_ROOT"] = str(tmp_path / "envs")
    try:
        _check_served(logged, env, manager, timeout=840)
        installed = list((tmp_path / "envs").glob("*/lib/python*/site-packages/forecaster"))
        assert len(installed) == 1 and (installed[0] / "tracking" / "wheel.py").is_file()
    finally:
        shutil.rmtree(tmp_path / "envs", ignore_errors=True)  # gigabytes


@pytest.mark.parametrize("kind", ["categorical", "enum"])
def test_a_categorical_or_enum_static_is_restored_from_a_json_request(kind):
    """A JSON request (what `mlflow models serve` parses) brings a Categorical or Enum static
    covariate as text, and a pandas round trip an Enum as a Categorical: the pyfunc refused
    them ("region: trained on Categorical, got String"); it restores the training dtype, with
    native predict's handling of a category unseen in fit, and names a value outside a
    trained Enum (a cast would fail, or make it null)."""
    dtype = pl.Categorical if kind == "categorical" else pl.Enum(["north", "south", "west"])
    frame = make_frame(3).with_columns(
        region=pl.when(pl.col("id") == "s1").then(pl.lit("north")).otherwise(pl.lit("south"))
    )
    typed = frame.with_columns(pl.col("region").cast(dtype))
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", static_covariates="region", lookback=12,
        horizon=4, hidden_size=8, segment_length=4, max_epochs=1, random_state=0,
        progress=False, validation_size=0, baseline="none",
    ).fit(typed)  # fmt: skip
    expected = model.predict(typed).to_pandas()
    split = json.loads(frame.to_pandas().to_json(orient="split", date_format="iso", index=False))
    request = pd_frame(split)  # the request as MLflow's scoring server parses it
    for sent in (request, typed.to_pandas()):
        got = pyfunc.pyfunc_predict(model, sent)
        np.testing.assert_allclose(got["y"], expected["y"], rtol=1e-6)
    unseen = frame.with_columns(region=pl.when(pl.col("id") == "s2").then(pl.lit("west"))
                                .otherwise("region"))  # fmt: skip
    with pytest.warns(ForecasterWarning, match=r"'region' has categories unseen in fit"):
        pyfunc.pyfunc_predict(model, unseen.to_pandas())  # an Enum's own category too
    outside = frame.with_columns(region=pl.when(pl.col("id") == "s2").then(pl.lit("east"))
                                 .otherwise("region"))  # fmt: skip
    if kind == "enum":
        with pytest.raises(DataValidationError, match=r"'region' holds values that are not "
                           r"categories of its training dtype .*\['east'\]"):  # fmt: skip
            pyfunc.pyfunc_predict(model, outside.to_pandas())
    else:
        with pytest.warns(ForecasterWarning, match=r"unseen in fit \('east'"):
            pyfunc.pyfunc_predict(model, outside.to_pandas())


def pd_frame(split: dict) -> object:
    """A pandas frame of a ``dataframe_split`` payload, as MLflow's scoring server reads it."""
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    return infer_and_parse_data({"dataframe_split": split})


def test_the_output_schema_lists_the_interval_columns_in_predicts_order():
    """A model of [0.1, 0.25, 0.5, 0.75, 0.9] declared y_lo_80 before y_lo_50 (levels in the
    order of their lower quantiles), while predict writes the levels ascending."""
    frame = make_frame()
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", lookback=12, horizon=4, hidden_size=8,
        segment_length=4, max_epochs=1, loss="quantile", quantiles=[0.1, 0.25, 0.5, 0.75, 0.9],
        random_state=0, progress=False, validation_size=0, baseline="none",
    ).fit(frame)  # fmt: skip
    example, output = pyfunc._input_example(model, frame)
    schema = pyfunc._signature(model, example, output).outputs
    declared = [spec.name for spec in schema.inputs]
    everything = model.predict(frame, level=[50, 80], quantiles=[0.1, 0.25, 0.5, 0.75, 0.9])
    assert [c for c in declared if c in everything.columns] == everything.columns

"""MLflow tracking against a real tracking server (``mlflow server`` on 127.0.0.1).

A session fixture starts the server as a subprocess (SQLite backend, proxied artifacts), so
runs, metrics, artifacts and models go through HTTP and are read back with ``MlflowClient``.
When the server cannot start within 60 s the server tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from conftest import answers, forget_mlflow_state, free_port, reset_mlflow_state, sine_panel

import forecaster
from forecaster import RNNForecaster, RNNRegressor, tracking
from forecaster.exceptions import (
    BaselineWarning,
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
)
from forecaster.tracking import records as tracking_records

pytestmark = pytest.mark.slow  # a real MLflow server, fresh processes

SERVER_START_TIMEOUT = 60.0


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """URI of an ``mlflow server`` subprocess (SQLite backend, artifacts served over HTTP)."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job workers
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    log = open(root / "server.log", "wb")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not answers(f"{uri}/health"):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            log.close()
            tail = (root / "server.log").read_text(errors="replace")[-2000:]
            pytest.skip(
                f"mlflow server did not start within {SERVER_START_TIMEOUT:.0f} s "
                f"(exit code {process.poll()}); its log ends with:\n{tail}"
            )
        time.sleep(0.25)
    yield uri
    _stop(process)
    log.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and the workers it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


def _isolate(monkeypatch: pytest.MonkeyPatch, uri: str, cwd: Path) -> None:
    """Fresh MLflow and tracking state pointing at ``uri`` (``reset_mlflow_state``), with the
    user's own HTTP settings kept by forecaster set for the test proxies (no retries)."""
    reset_mlflow_state(monkeypatch, cwd)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


_forget = forget_mlflow_state


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Fresh MLflow and tracking state, in a fresh working directory, with a SQLite store of
    the test's own (an absolute URI: MLflow caches its stores by URI, so the relative default
    URI would reach an earlier test's folder)."""
    pytest.importorskip("mlflow")
    _isolate(monkeypatch, f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}", tmp_path)
    yield
    _forget()


@pytest.fixture
def tracked(server, isolated, monkeypatch):
    """Tracking to the test server."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    return server


def make_frame(n_series: int = 2, n_steps: int = 160) -> pl.DataFrame:
    return sine_panel(n_series, n_steps)


def ours_not_baseline(caught: warnings.WarningMessage) -> bool:
    """A warning of ours other than a small model's BaselineWarning (not tested here)."""
    return issubclass(caught.category, ForecasterWarning) and caught.category is not BaselineWarning


def make_model(**overrides) -> RNNForecaster:
    params = dict(
        target="y", id_col="id", time_col="date", lookback=24, horizon=6, hidden_size=8,
        segment_length=6, max_epochs=3, windows_per_epoch=128, batch_size=64,
        random_state=0, progress=False,
    )  # fmt: skip
    return RNNForecaster(**{**params, **overrides})


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def logged(server, frame, tmp_path_factory):
    """One fit with a FitLogger inside an active run (through the server), plus a registered
    copy."""
    import mlflow

    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, server, tmp_path_factory.mktemp("logged"))
        model = make_model()
        logger = tracking.FitLogger()
        mlflow.set_experiment("active-run")
        with mlflow.start_run() as run:
            model.fit(frame, callbacks=[logger])
            first = tracking.last_fit()
            # a second fit in the same run, with the same logger
            nested = make_model(hidden_size=4).fit(frame, callbacks=[logger])
            second = tracking.last_fit()
        registered = tracking.log_fit(model, frame, plot=False, register_as="forecaster-test")
        _forget()
    return {
        "model": model,
        "run_id": run.info.run_id,
        "log": first,
        "nested_model": nested,
        "nested_log": second,
        "registered": registered,
    }


# ------------------------------------------------------------------------------------------
# one run per fit
# ------------------------------------------------------------------------------------------


def test_fit_inside_active_run_logs_everything_through_http(server, logged, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(server)
    run_id = logged["run_id"]
    assert logged["log"].run_id == run_id and logged["log"].not_logged == []
    run = client.get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server

    params = run.data.params
    assert params["hidden_size"] == "8" and params["lookback"] == "24"
    assert params["estimator"] == "RNNForecaster" and params["target"] == "y"
    assert params["data.rows"] == "320" and params["data.series"] == "2"
    assert params["data.start"] == "2020-01-01" and params["data.end"] == "2020-06-08"
    assert (
        params["data.hash"]
        == tracking.dataset_fingerprint(make_frame(), id_col="id", time_col="date")["hash"]
    )
    assert run.data.tags["forecaster.version"] == forecaster.__version__

    model = logged["model"]
    # what fit chose for the parameters it resolves on the data, named as the attributes
    assert params["target_transform"] == "auto" and params["ema_decay"] == "auto"
    assert params["lookback_"] == "24" and params["freq_"] == str(model.freq_)
    assert params["target_transform_"] == model.target_transform_
    assert params["ema_decay_"] == str(model.ema_decay_)
    assert params["linear_skip_"] == str(model.network_.linear_skip)
    assert params["segment_length_"] == str(model.network_.segment_length)
    blend = model.baseline_
    assert params["baseline_"] == ("None" if blend is None else json.dumps(blend.config()))
    for key in ("train_loss", "val_loss"):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [1, 2, 3]
        expected = [r[key] for r in model.history_]
        np.testing.assert_allclose([m.value for m in history], expected, rtol=1e-6)
    metrics = run.data.metrics
    assert metrics["epochs"] == 3
    assert metrics["best_val_loss"] == pytest.approx(min(r["val_loss"] for r in model.history_))
    assert metrics["model_val_loss"] == pytest.approx(model.val_loss_)  # one network: the same
    assert metrics["train_windows"] == model.n_train_windows_
    assert metrics["fit_seconds"] >= metrics["train_seconds"] > 0

    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"dataset.json", "forecast.png"} <= names
    fingerprint = json.loads(Path(client.download_artifacts(run_id, "dataset.json")).read_text())
    assert fingerprint["columns"] == ["id", "date", "y"] and fingerprint["dtypes"]["date"] == "Date"
    png = Path(client.download_artifacts(run_id, "forecast.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

    model_uri = logged["log"].model_uri
    assert model_uri.startswith("models:/")
    logged_model = client.get_logged_model(model_uri.split("/")[-1])
    assert logged_model.source_run_id == run_id


def test_second_fit_in_same_active_run_goes_to_a_nested_run(server, logged):
    from mlflow import MlflowClient

    client = MlflowClient(server)
    nested = client.get_run(logged["nested_log"].run_id)
    assert nested.info.run_id != logged["run_id"]
    assert nested.data.tags["mlflow.parentRunId"] == logged["run_id"]
    assert nested.data.params["hidden_size"] == "4"
    assert nested.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(nested.info.run_id, "train_loss")] == [
        1,
        2,
        3,
    ]


def test_model_registry(server, logged):
    from mlflow import MlflowClient

    registered = logged["registered"]
    assert registered.registered_version == "1"
    version = MlflowClient(server).get_model_version("forecaster-test", "1")
    assert version.run_id == registered.run_id
    assert version.status == "READY"


def test_pyfunc_in_a_fresh_process_predicts_the_same_numbers(server, logged, frame, tmp_path):
    """``mlflow.pyfunc.load_model`` in a new interpreter (no pickle allowed, MLflow's default)
    gives the estimator's forecast, by model URI and by registry name."""
    frame.write_parquet(tmp_path / "input.parquet")
    script = textwrap.dedent(
        """
        import sys
        import mlflow.pyfunc
        import polars as pl

        frame = pl.read_parquet(sys.argv[1]).to_pandas()
        for i, uri in enumerate(sys.argv[3:]):
            model = mlflow.pyfunc.load_model(uri)
            pl.from_pandas(model.predict(frame)).write_parquet(f"{sys.argv[2]}{i}.parquet")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = server
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    uris = [logged["log"].model_uri, "models:/forecaster-test/1"]
    paths = [str(tmp_path / "input.parquet"), str(tmp_path / "out")]
    result = subprocess.run(
        [sys.executable, "-c", script, *paths, *uris],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = logged["model"].predict(frame)
    for i in range(len(uris)):
        got = pl.read_parquet(tmp_path / f"out{i}.parquet")
        assert got.columns == expected.columns
        assert got["id"].to_list() == expected["id"].to_list()
        assert got["date"].cast(pl.Date).to_list() == expected["date"].to_list()
        np.testing.assert_allclose(got["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-6)


def test_autolog_starts_a_run_per_fit_and_can_be_switched_off(tracked, frame):
    import mlflow
    from mlflow import MlflowClient

    tracking.autolog()
    model = make_model(max_epochs=2).fit(frame)
    log = tracking.last_fit()
    assert mlflow.active_run() is None  # the run was ended
    client = MlflowClient(tracked)
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == tracking.DEFAULT_EXPERIMENT
    assert [m.step for m in client.get_metric_history(log.run_id, "val_loss")] == [1, 2]
    assert run.data.metrics["epochs"] == len(model.history_) == 2

    with tracking.paused():
        make_model(max_epochs=1).fit(frame)
        make_model(max_epochs=1).fit(frame, callbacks=[tracking.FitLogger()])
    assert tracking.autolog_enabled()
    tracking.autolog(disable=True)
    assert not tracking.autolog_enabled()
    make_model(max_epochs=1).fit(frame)
    assert tracking.last_fit() is log  # none of these fits was logged


def test_paused_withholds_autologs_callbacks_from_the_fits_of_every_thread(isolated):
    """Two blocks kept the library's own fits out of tracking: tracking.paused() (a counter
    of tracking's that its FitLoggers read) and the training layer's
    without_default_callbacks() (a backtest's fold models). paused() is the training
    layer's block now, for every thread: no fit gets autolog's logger, and a FitLogger
    passed to fit sees the block (default_callbacks_withheld); a backtest's block is its
    thread's only, and leaves explicit FitLoggers logging."""
    from forecaster.training import (
        default_callbacks_withheld,
        default_fit_callbacks,
        without_default_callbacks,
    )

    def names() -> list[str]:
        return [type(callback).__name__ for callback in default_fit_callbacks(None, None)]

    tracking.autolog()
    try:
        assert names() == ["FitLogger"]
        seen: list = []
        with tracking.paused():
            worker = threading.Thread(
                target=lambda: seen.append((names(), default_callbacks_withheld(every_thread=True)))
            )
            worker.start()
            worker.join()
            assert names() == []
        assert seen == [([], True)]
        assert names() == ["FitLogger"] and not default_callbacks_withheld()
        with without_default_callbacks():
            assert names() == [] and not default_callbacks_withheld(every_thread=True)
    finally:
        tracking.autolog(False)


def test_a_fit_inside_an_active_run_logs_only_when_asked(tracked, frame):
    """Tracking is explicit: an active run alone no longer makes a fit log (it did before:
    the fit looked for one); a FitLogger (or autolog) does."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment("explicit")
    with mlflow.start_run() as run:
        make_model(max_epochs=1).fit(frame)
    assert tracking.last_fit() is None
    client = MlflowClient(tracked)
    assert client.get_run(run.info.run_id).data.params == {}
    with mlflow.start_run() as run:
        make_model(max_epochs=1).fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    assert tracking.last_fit().run_id == run.info.run_id
    assert client.get_run(run.info.run_id).data.params["max_epochs"] == "1"


def test_a_fit_in_an_active_run_that_holds_its_records_logs_into_a_nested_run(
    tracked, frame, tmp_path
):
    """A user's own forecast.png and dataset.json in the active run were replaced by the
    fit's, and its val_loss became one history with the user's points (and a param logged
    with another value made MLflow refuse all the fit's params): the fit now logs into a
    nested run, with a warning, and the user's records stay as they were."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment("collisions")
    plot = tmp_path / "forecast.png"
    plot.write_bytes(b"USER PLOT")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(plot))
        mlflow.log_metric("val_loss", 123.0, step=1)
        mlflow.log_param("max_epochs", "7")
        with pytest.warns(ForecasterWarning, match=r"already holds the artifact 'forecast.png'"):
            make_model(max_epochs=1).fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    client = MlflowClient(tracked)
    nested = tracking.last_fit().run_id
    assert nested != run.info.run_id
    assert client.get_run(nested).data.tags["mlflow.parentRunId"] == run.info.run_id
    assert client.get_run(nested).data.params["max_epochs"] == "1"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 123.0)]
    assert client.get_run(run.info.run_id).data.params["max_epochs"] == "7"
    mine = client.download_artifacts(run.info.run_id, "forecast.png", str(tmp_path / "back"))
    assert Path(mine).read_bytes() == b"USER PLOT"


def test_a_second_log_fit_in_one_active_run_logs_into_a_nested_run(isolated, frame):
    """log_fit of a second model into the same active run kept the first model's params,
    merged the two val_loss histories and attached both models to one run."""
    import mlflow
    from mlflow import MlflowClient

    first = make_model(max_epochs=1).fit(frame)
    second = make_model(max_epochs=2, hidden_size=4).fit(frame)
    mlflow.set_experiment("two-log-fits")  # of this store (an earlier test's may be set)
    with mlflow.start_run() as run:
        one = tracking.log_fit(first, frame, plot=False)
        with pytest.warns(ForecasterWarning, match=r"already holds .* a nested run"):
            two = tracking.log_fit(second, frame, plot=False)
    client = MlflowClient()
    assert one.run_id == run.info.run_id and two.run_id != run.info.run_id
    assert client.get_run(two.run_id).data.tags["mlflow.parentRunId"] == run.info.run_id
    assert client.get_run(run.info.run_id).data.params["hidden_size"] == "8"
    assert client.get_run(two.run_id).data.params["hidden_size"] == "4"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert len(steps) == len(set(steps)) == len(first.history_)  # one history, the first's


def test_forecasters_default_http_limits_log_everything_to_a_live_server(
    tracked, frame, monkeypatch
):
    """Without the user's MLFLOW_HTTP_* settings, forecaster's short timeout and small retry
    budget apply to its requests only, and a live server gets everything."""
    from mlflow import MlflowClient

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name)
    seen = {}

    def note(record, network):
        seen.setdefault("timeout", os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT"))

    tracking.autolog()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        warnings.simplefilter("ignore", BaselineWarning)  # a small model's: not tested here
        make_model(max_epochs=1).fit(frame, callbacks=[note])
    log = tracking.last_fit()
    assert log.not_logged == [] and log.fallback_path is None
    assert MlflowClient(tracked).get_run(log.run_id).info.status == "FINISHED"
    assert seen["timeout"] is None  # training runs outside the bounded blocks
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ


def test_a_fit_that_raises_leaves_its_run_failed(tracked, frame):
    from mlflow import MlflowClient

    def boom(record, network):
        raise RuntimeError("boom")

    tracking.autolog()
    client = MlflowClient(tracked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BaselineWarning)  # a small model's: not tested here
        make_model(max_epochs=1).fit(frame)
    earlier = tracking.last_fit()
    with pytest.raises(RuntimeError, match="boom"):
        make_model().fit(frame, callbacks=[boom])
    gc.collect()
    experiment = client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id], max_results=1)
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]
    # last_fit tells of the failed fit, not of the earlier one (it returned that one)
    failed = tracking.last_fit()
    assert earlier.model_uri is not None and failed.run_id == run.info.run_id != earlier.run_id
    assert failed.model_uri is None and failed.not_logged == ["final metrics", "model"]


def test_a_fitted_models_params_are_those_it_was_trained_with(frame):
    """set_params after a fit changed what log_fit and a fit's run logged (lr 0.5 for a model
    trained at 0.001) while the network and the saved config kept the fitted values."""
    model = make_model(max_epochs=1).fit(frame)
    model.set_params(lr=0.5, hidden_size=64, max_epochs=40)
    params = tracking_records.estimator_params(model)
    assert (params["lr"], params["hidden_size"], params["max_epochs"]) == ("0.001", "8", "1")
    unfitted = tracking_records.estimator_params(make_model(lr=0.5))
    assert unfitted["lr"] == "0.5" and unfitted["estimator"] == "RNNForecaster"


def test_a_pool_on_many_targets_is_logged_whole_not_cut_at_the_param_limit(isolated):
    """The param baseline_ of a pool on 100 targets (7,664 characters) was cut at 6,000, an
    invalid JSON without a word: it now says what the blend is and the artifact
    resolved_params.json holds it whole."""
    from mlflow import MlflowClient

    rng = np.random.default_rng(0)
    n = 24 * 8
    day = rng.normal(0, 3, (24, 100))
    values = np.tile(day, (n // 24, 1)) + rng.normal(0, 0.3, (n, 100)) + 10 * np.arange(100)
    targets = [f"y{k}" for k in range(100)]
    data = pl.DataFrame(
        {"id": "s0", "date": np.arange(n), **dict(zip(targets, values.T, strict=True))}
    )
    options = {"target": targets, "lookback": 48, "horizon": 12, "validation_size": 14}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model = make_model(**options, hidden_size=4, max_epochs=1)
        model.fit(data)
    blend = model.baseline_.config()  # one series, 14 / 12 horizons: a pool
    assert len(json.dumps(blend)) > tracking_records.MAX_PARAM_CHARS
    log = tracking.log_fit(model, data, plot=False)
    client = MlflowClient()
    param = client.get_run(log.run_id).data.params["baseline_"]
    terms = len(blend["terms"])
    assert param.startswith(f"a pool of {terms} partners on 100 targets (seasonal naive (m=")
    assert param.endswith("characters: whole in the artifact resolved_params.json")
    whole = json.loads(
        Path(client.download_artifacts(log.run_id, "resolved_params.json")).read_text()
    )
    assert whole["baseline_"] == blend and whole["lookback_"] == 48
    assert log.not_logged == []


def test_deferred_logs_a_fit_as_the_block_leaves_the_model(isolated, frame):
    """Inside tracking.deferred() a fit's model is logged when the block ends (calibrated
    there), with fit_seconds the fit's own time; a block that raises still logs the fit."""
    import mlflow

    train = frame.filter(pl.col("date") < pl.date(2020, 5, 1))
    model = make_model(max_epochs=1)
    mlflow.set_experiment("deferred")  # not an experiment an earlier test left active
    with mlflow.start_run() as run, tracking.deferred():
        started = time.perf_counter()
        model.fit(train, callbacks=[tracking.FitLogger(plot=False)])
        fitted = time.perf_counter() - started
        assert tracking.last_fit() is None  # not logged yet
        model.calibrate(frame, folds=10, step=2)  # origins after the training data
        time.sleep(1.0)
    log = tracking.last_fit()
    assert log.run_id == run.info.run_id and log.not_logged == []
    forecast = mlflow.pyfunc.load_model(log.model_uri).predict(train, params={"level": [80]})
    assert {"y_lo_80", "y_hi_80"} <= set(forecast.columns)
    metrics = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
    assert 0 < metrics["fit_seconds"] <= fitted  # the block's own time is not the fit's

    with pytest.raises(RuntimeError, match="after the fit"), tracking.deferred():
        make_model(max_epochs=1).fit(train, callbacks=[tracking.FitLogger(plot=False)])
        raise RuntimeError("after the fit")
    raised = tracking.last_fit()  # logged anyway: the fit completed
    assert raised.run_id != run.info.run_id and raised.model_uri is not None
    assert mlflow.MlflowClient().get_run(raised.run_id).info.status == "FINISHED"


def test_log_fit_with_backtest_metrics_by_horizon_step(tracked, logged, frame):
    from mlflow import MlflowClient

    backtest = pl.DataFrame(
        {
            "fold": [0, 0, 1, 1],
            "step": [1, 2, 1, 2],
            "mae": [1.0, 2.0, 3.0, 4.0],
            "rmse": [2.0, 2.0, 4.0, 6.0],
        }
    )
    log = tracking.log_fit(logged["model"], frame, backtest=backtest, plot=False)
    client = MlflowClient(tracked)
    mae = client.get_metric_history(log.run_id, "backtest_mae")
    assert [(m.step, m.value) for m in mae] == [(1, 2.0), (2, 3.0)]
    run = client.get_run(log.run_id)
    assert run.data.metrics["backtest_rmse_overall"] == 3.5
    assert "backtest_fold" not in run.data.metrics
    assert "backtest.csv" in {a.path for a in client.list_artifacts(log.run_id)}
    assert "forecast.png" not in {a.path for a in client.list_artifacts(log.run_id)}
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(log.run_id, "train_loss")] == [1, 2, 3]


def test_log_fit_with_backtest_of_targets_named_unlike_a_metric_key(tracked, logged, frame):
    """Targets "sales (€)" and "temp °C" (a character MLflow refuses in a key): their keys
    made MLflow refuse the whole batch of final metrics (best_val_loss too), with a warning
    and a fallback folder; two targets that come out the same get distinct keys."""
    from mlflow import MlflowClient

    backtest = pl.DataFrame(
        {
            "step": [1, 1, 1, 1],
            "target": ["sales (€)", "temp °C", "a(1)", "a[1]"],
            "mae": [1.0, 2.0, 3.0, 4.0],
        }
    )
    log = tracking.log_fit(logged["model"], frame, backtest=backtest, plot=False)
    assert log.not_logged == [] and log.fallback_path is None
    metrics = MlflowClient(tracked).get_run(log.run_id).data.metrics
    assert "best_val_loss" in metrics
    assert metrics["backtest_sales ____mae_overall"] == 1.0
    assert metrics["backtest_temp _C_mae_overall"] == 2.0
    assert (metrics["backtest_a_1__3_mae"], metrics["backtest_a_1__4_mae"]) == (3.0, 4.0)


def test_backtest_result_by_step_and_pooled_aggregate():
    by_step = pl.DataFrame(
        {
            "step": [1, 2, 1, 2],
            "target": ["a", "a", "b", "b"],
            "n": [10, 10, 10, 10],
            "mae": [1.0, 2.0, 3.0, 4.0],
        }
    )
    result = SimpleNamespace(
        by_step=by_step,
        aggregate=pl.DataFrame({"target": ["a", "b"], "n": [20, 20], "mae": [1.4, 3.6]}),
    )
    table, overall = tracking_records.backtest_tables(result)
    assert tracking_records.backtest_metrics(table, overall) == [
        ("backtest_a_mae", 1.0, 1),
        ("backtest_a_mae", 2.0, 2),
        ("backtest_b_mae", 3.0, 1),
        ("backtest_b_mae", 4.0, 2),
        ("backtest_a_mae_overall", 1.4, 0),
        ("backtest_b_mae_overall", 3.6, 0),
    ]
    single = tracking_records.backtest_metrics(by_step.filter(pl.col("target") == "a"))
    assert single == [
        ("backtest_mae", 1.0, 1),
        ("backtest_mae", 2.0, 2),
        ("backtest_mae_overall", 1.5, 0),
    ]


def test_backtest_metrics_leave_out_the_baselines_counts_of_points():
    """n_naive and n_snaive (the points a baseline forecast) are counts beside n, not scores:
    they were logged as backtest_n_naive, by step and overall; so were n_interval_<baseline>
    (the points of a baseline's interval scores)."""
    by_step = pl.DataFrame(
        {"step": [1, 2], "n": [4, 4], "n_naive": [4, 4], "n_snaive": [2, 4],
         "n_interval_naive": [4, 4], "n_interval_snaive": [0, 4], "n_scaled": [4, 4],
         "mae": [1.0, 2.0], "mae_snaive": [2.0, 2.0]}
    )  # fmt: skip
    logged = {key for key, _, _ in tracking_records.backtest_metrics(by_step)}
    assert logged == {"backtest_mae", "backtest_mae_snaive", "backtest_mae_overall",
                      "backtest_mae_snaive_overall"}  # fmt: skip


def test_regressor_fit_is_logged_and_its_pyfunc_takes_arrays(tracked):
    import mlflow

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8, 2)).astype(np.float32)
    y = X[:, -1, 0]
    mlflow.set_experiment("regressor")
    with mlflow.start_run():
        model = RNNRegressor(hidden_size=4, max_epochs=2, random_state=0)
        model.fit(X, y, callbacks=[tracking.FitLogger()])
    log = tracking.last_fit()
    assert log.not_logged == [] and log.model_uri is not None
    run = mlflow.MlflowClient(tracked).get_run(log.run_id)
    assert run.data.params["data.rows"] == "64"
    assert run.data.params["estimator"] == "RNNRegressor"
    pyfunc = mlflow.pyfunc.load_model(log.model_uri)
    np.testing.assert_allclose(pyfunc.predict(X), model.predict(X), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# fault tolerance
# ------------------------------------------------------------------------------------------


class Proxy:
    """A TCP proxy to the server, so that a test can make the server vanish mid-training."""

    def __init__(self, target: str) -> None:
        self.target_port = int(target.rsplit(":", 1)[1])
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.1)
        self.uri = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.open = False
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_server_lost_mid_training(tracked, frame, tmp_path, monkeypatch):
    """The server disappears after epoch 1: training completes, the model is kept locally
    (``mlflow/unlogged/...`` under the working directory) and one warning says what was not
    logged."""
    from mlflow import MlflowClient

    proxy = Proxy(tracked)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.uri)
    tracking.autolog()

    def lose_server(record, network):
        if record.epoch == 1:
            proxy.close()

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make_model(max_epochs=4).fit(frame, callbacks=[lose_server])
    elapsed = time.perf_counter() - started
    assert len(model.history_) == 4 and hasattr(model, "network_")
    ours = [w for w in caught if ours_not_baseline(w)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert "Training completed" in message and proxy.uri in message
    assert "per-epoch metrics from epoch 2" in message and "model" in message
    assert ours[0].filename == __file__  # points at the fit call

    log = tracking.last_fit()
    assert log.fallback_path is not None
    assert log.fallback_path.resolve().parent == (tmp_path / "mlflow" / "unlogged").resolve()
    assert str(log.fallback_path.resolve()) in message
    reloaded = forecaster.load(log.fallback_path / "model")
    assert reloaded.predict(frame).equals(model.predict(frame))
    record = json.loads((log.fallback_path / "run.json").read_text())
    assert record["run_id"] == log.run_id and len(record["history"]) == 4
    assert record["params"]["hidden_size"] == "8" and record["dataset"]["rows"] == 320
    assert (log.fallback_path / "forecast.png").is_file()

    run = MlflowClient(tracked).get_run(log.run_id)  # what reached the server before
    assert run.data.params["hidden_size"] == "8"
    assert [m.step for m in MlflowClient(tracked).get_metric_history(log.run_id, "train_loss")] == [
        1
    ]
    assert elapsed < 60


def test_dead_server_from_the_start(isolated, frame, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    tracking.autolog()
    with pytest.warns(ForecasterWarning, match="no run could be created") as caught:
        model = make_model(max_epochs=2).fit(frame)
    assert len([w for w in caught if ours_not_baseline(w)]) == 1
    log = tracking.last_fit()
    assert log.run_id is None
    assert log.fallback_path.resolve().parent == (tmp_path / "mlflow" / "unlogged").resolve()
    assert forecaster.load(log.fallback_path / "model").predict(frame).equals(model.predict(frame))


# ------------------------------------------------------------------------------------------
# interrupts, a failed request, named runs
# ------------------------------------------------------------------------------------------


def _runs(experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


def test_ctrl_c_while_a_fit_is_logged_keeps_the_model_and_kills_the_run(
    isolated, frame, tmp_path, monkeypatch
):
    """Ctrl-C while the model uploaded threw the trained model away (the fit was rolled back)
    and left the run RUNNING with nothing saved: the estimator stays fitted, the run ends
    KILLED, a warning says what was not logged and the model is in a fallback folder, and
    the interrupt goes on. Ctrl-C during training still rolls the fit back (run FAILED)."""
    import mlflow
    from forecaster.tracking import fitlog

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    mlflow.set_experiment("ctrl-c")
    monkeypatch.setattr(fitlog, "log_model", ctrl_c)
    model = make_model(max_epochs=2)
    interrupted = pytest.warns(ForecasterWarning, match=r"Not logged: model\. Interrupted")
    with interrupted as caught, pytest.raises(KeyboardInterrupt):
        model.fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    message = str(next(w for w in caught if ours_not_baseline(w)).message)
    assert "the fitted estimator is kept; its run is marked KILLED" in message
    assert len(model.history_) == 2 and model.predict(frame).height > 0
    log = tracking.last_fit()
    (run,) = _runs("ctrl-c")
    assert log.run_id == run.info.run_id and run.info.status == "KILLED"
    assert log.not_logged == ["model"] and log.model_uri is None
    assert run.data.metrics["epochs"] == 2  # what came before the model is logged
    assert log.fallback_path.parent == (tmp_path / "mlflow" / "unlogged").resolve()
    assert forecaster.load(log.fallback_path / "model").predict(frame).equals(model.predict(frame))

    def ctrl_c_in_training(record, network):
        raise KeyboardInterrupt

    fresh = make_model(max_epochs=2)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(frame, callbacks=[tracking.FitLogger(plot=False), ctrl_c_in_training])
    assert not hasattr(fresh, "network_")
    assert {r.info.status for r in _runs("ctrl-c")} == {"KILLED", "FAILED"}


def test_one_failed_request_mid_fit_is_logged_at_the_end_when_the_store_answers(
    isolated, frame, monkeypatch
):
    """One request that failed at epoch 2 made the store count as down for 30 s, so the end
    of the fit never asked it again: epochs 2-3, the final metrics and the model went to a
    fallback folder and the run stayed RUNNING on a store that was up. The end of the fit
    probes the store now, logs what was missed and ends the run."""
    import requests

    import mlflow
    from mlflow import MlflowClient

    failed = []
    log_batch = MlflowClient.log_batch

    def flaky(self, run_id, metrics=(), **kwargs):
        if not failed and any(m.key == "train_loss" and m.step == 2 for m in metrics):
            failed.append(True)
            raise requests.exceptions.ConnectionError("the server went away for a moment")
        return log_batch(self, run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    mlflow.set_experiment("one-failure")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        warnings.simplefilter("ignore", BaselineWarning)  # a small model's: not tested here
        model = make_model(max_epochs=3).fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    log = tracking.last_fit()
    assert failed and log.not_logged == [] and log.fallback_path is None and log.model_uri
    client = MlflowClient()
    assert client.get_run(log.run_id).info.status == "FINISHED"
    history = client.get_metric_history(log.run_id, "train_loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3]
    assert client.get_run(log.run_id).data.metrics["epochs"] == len(model.history_) == 3


def test_log_fit_into_a_named_run_that_holds_a_fit_is_refused_before_writing(isolated, frame):
    """A second log_fit(run=<id>) mixed its fit into the run: the params refused with a
    warning, the two train_loss histories interleaved, the final metrics the second's."""
    import mlflow
    from mlflow import MlflowClient

    first = make_model(max_epochs=1).fit(frame)
    second = make_model(max_epochs=2, hidden_size=4).fit(frame)
    mlflow.set_experiment("named-run")
    with mlflow.start_run() as run:
        pass
    assert tracking.log_fit(first, frame, run=run.info.run_id, plot=False).not_logged == []
    with pytest.raises(DataValidationError, match=r"already holds .*Nothing was logged"):
        tracking.log_fit(second, frame, run=run, plot=False)
    client = MlflowClient()
    held = client.get_run(run.info.run_id)
    assert held.data.params["hidden_size"] == "8" and held.data.metrics["epochs"] == 1
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]
    assert len(_runs("named-run")) == 1  # no other run either


def test_log_fit_refuses_a_model_whose_prediction_params_changed_since_fit(isolated, frame):
    """After set_params(horizon=...) log_fit logged a FINISHED run without a model (it could
    not be saved) and no fallback copy: it is refused before anything is logged."""
    import mlflow

    model = make_model(max_epochs=1).fit(frame)
    model.set_params(horizon=5)
    mlflow.set_experiment("changed")
    with pytest.raises(DataValidationError, match=r"Cannot log this RNNForecaster: horizon"):
        tracking.log_fit(model, frame, plot=False)
    assert _runs("changed") == [] and not (Path.cwd() / "mlflow" / "unlogged").exists()


def test_log_fit_reads_times_of_another_unit_as_the_training_frame(isolated, frame):
    """predict casts a time column holding the same instants in another unit (pandas' ns for
    a model fitted on us); log_fit refused that frame as "not the frame the model was trained
    on" (its check compared the dtypes as they were)."""
    import mlflow

    micro = frame.with_columns(pl.col("date").cast(pl.Datetime("us")))
    model = make_model(max_epochs=1).fit(micro)
    nano = micro.with_columns(pl.col("date").cast(pl.Datetime("ns")))
    assert model.predict(nano).equals(model.predict(micro))
    mlflow.set_experiment("another-unit")
    logged = tracking.log_fit(model, nano, plot=False)
    assert [run.info.run_id for run in _runs("another-unit")] == [logged.run_id]


def test_mlflow_run_id_names_the_run_fits_and_log_fit_log_into(isolated, frame, monkeypatch):
    """MLFLOW_RUN_ID (set by ``mlflow run``) was ignored: every fit made a run of its own and
    the named run got nothing. It is the run fits log into when none is active (a further
    fit in it nests, as in an active run); a run the store does not have is refused."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment("mlflow-run")
    client = MlflowClient()
    named = client.create_run(mlflow.get_experiment_by_name("mlflow-run").experiment_id)
    monkeypatch.setenv("MLFLOW_RUN_ID", named.info.run_id)
    tracking.autolog()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BaselineWarning)  # a small model's: not tested here
        model = make_model(max_epochs=1).fit(frame)
    assert tracking.last_fit().run_id == named.info.run_id
    run = client.get_run(named.info.run_id)
    assert run.data.params["max_epochs"] == "1" and run.data.metrics["epochs"] == 1
    assert run.info.status == "RUNNING"  # not ours to end: `mlflow run` ends it
    with pytest.warns(ForecasterWarning, match=r"MLFLOW_RUN_ID names\) already holds"):
        again = tracking.log_fit(model, frame, plot=False)
    child = client.get_run(again.run_id)
    assert child.data.tags["mlflow.parentRunId"] == named.info.run_id
    assert len(_runs("mlflow-run")) == 2

    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")
    with pytest.raises(DataValidationError, match=r"MLFLOW_RUN_ID names the run '0123"):
        tracking.log_fit(model, frame, plot=False)
    with pytest.warns(ForecasterWarning, match=r"Cannot track this fit .*MLFLOW_RUN_ID names"):
        make_model(max_epochs=1).fit(frame)
    assert len(_runs("mlflow-run")) == 2


def test_log_fit_into_a_run_the_store_does_not_have_is_refused_before_writing(isolated, frame):
    """log_fit(run=<an ID the store does not have>) recorded the failed requests and put the
    model and every record in a fallback folder (as if the server were down): refused, as an
    MLFLOW_RUN_ID naming such a run is; a deleted run too."""
    import mlflow
    from mlflow import MlflowClient

    model = make_model(max_epochs=1).fit(frame)
    with pytest.raises(DataValidationError, match=r"run= names the run '0123.* does not have"):
        tracking.log_fit(model, frame, run="0123456789abcdef0123456789abcdef", plot=False)
    mlflow.set_experiment("missing-run")
    with mlflow.start_run() as run:
        pass
    MlflowClient().delete_run(run.info.run_id)
    with pytest.raises(DataValidationError, match=r"which the tracking store .* has deleted"):
        tracking.log_fit(model, frame, run=run, plot=False)
    assert not (Path.cwd() / "mlflow" / "unlogged").exists()
    assert MlflowClient().get_run(run.info.run_id).data.params == {}


def test_ctrl_c_while_a_deferred_fit_is_logged_kills_every_pending_fit(
    isolated, frame, tmp_path, monkeypatch
):
    """Inside deferred(), Ctrl-C while the first fit's model uploaded left the second fit
    unlogged: its run went FAILED (when garbage-collected) and its model was in no fallback
    folder. Every pending fit is handled as an interrupted fit now: run KILLED, model kept."""
    import mlflow
    from forecaster.tracking import fitlog

    uploads = []
    log_model = fitlog.log_model

    def ctrl_c_once(*args, **kwargs):
        uploads.append(args)
        if len(uploads) == 1:
            raise KeyboardInterrupt
        return log_model(*args, **kwargs)

    mlflow.set_experiment("deferred-ctrl-c")
    monkeypatch.setattr(fitlog, "log_model", ctrl_c_once)
    models = [make_model(max_epochs=1), make_model(max_epochs=1, hidden_size=4)]
    interrupted = pytest.warns(ForecasterWarning, match="Interrupted")
    with interrupted as caught, pytest.raises(KeyboardInterrupt), tracking.deferred():
        for model in models:
            model.fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    assert len(uploads) == 1  # the second model was not uploaded
    assert sum("Interrupted" in str(w.message) for w in caught if ours_not_baseline(w)) == 2
    runs = _runs("deferred-ctrl-c")
    assert [r.info.status for r in runs] == ["KILLED", "KILLED"]
    folders = sorted((tmp_path / "mlflow" / "unlogged").iterdir())
    by_run = {json.loads((f / "run.json").read_text())["run_id"]: f for f in folders}
    assert set(by_run) == {r.info.run_id for r in runs}
    second = next(r for r in runs if r.data.params["hidden_size"] == "4")
    kept = forecaster.load(by_run[second.info.run_id] / "model")
    assert kept.predict(frame).equals(models[1].predict(frame))
    assert tracking.last_fit().run_id == second.info.run_id


class _FailsAtFitEnd:
    """A fit callback whose ``on_fit_end`` raises ``error`` (the fit is rolled back)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_fit_end(self, estimator):
        raise self.error


@pytest.mark.parametrize("logger_first", [True, False], ids=["logger-first", "logger-last"])
def test_a_fit_rolled_back_by_a_later_callback_logs_no_model_and_fails_its_run(
    isolated, frame, logger_first
):
    """A callback raising in on_fit_end after the FitLogger's rolled the fit back, but the
    logger had logged it: a FINISHED run with a model the user does not have; inside
    deferred() one FINISHED run of fit B's params with the earlier model A's history and
    model. The end of a fit is logged once every on_fit_end returned now: in either order
    the run ends FAILED tagged with the error (the user's active run is tagged), and no
    model is logged."""
    import mlflow

    def callbacks():
        pair = [tracking.FitLogger(plot=False), _FailsAtFitEnd(RuntimeError("boom"))]
        return pair if logger_first else pair[::-1]

    experiment = mlflow.set_experiment(f"rolled-back-{logger_first}")
    client = mlflow.MlflowClient()
    model = make_model(max_epochs=1)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(frame, callbacks=callbacks())
    assert not hasattr(model, "network_")
    plain = tracking.last_fit()

    earlier = make_model(max_epochs=1).fit(frame)  # model A, kept by the rollback below
    network = earlier.network_
    with pytest.raises(RuntimeError, match="boom"), tracking.deferred():
        earlier.set_params(max_epochs=2).fit(frame, callbacks=callbacks())
    assert earlier.network_ is network and len(earlier.history_) == 1
    in_block = tracking.last_fit()

    for log in (plain, in_block):
        assert log.model_uri is None and log.not_logged == ["final metrics", "model"]
        run = client.get_run(log.run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags["forecaster.fit_error"] == "RuntimeError: boom"
        assert "epochs" not in run.data.metrics and "fit_seconds" not in run.data.metrics
    assert client.get_run(in_block.run_id).data.params["max_epochs"] == "2"
    # logged into the user's active run: that run is tagged (the user's block ends it)
    with pytest.raises(RuntimeError, match="boom"), mlflow.start_run() as active:
        make_model(max_epochs=1).fit(frame, callbacks=callbacks())
    assert tracking.last_fit().run_id == active.info.run_id
    tags = client.get_run(active.info.run_id).data.tags
    assert tags["forecaster.fit_error"] == "RuntimeError: boom"
    assert client.search_logged_models([experiment.experiment_id]) == []


@pytest.mark.parametrize("order", ["logger-first", "logger-last"])
def test_ctrl_c_in_a_callbacks_on_fit_end_keeps_the_fit_and_kills_its_run(
    isolated, frame, tmp_path, order
):
    """Ctrl-C in a callback's on_fit_end, before the fit was logged: the completed fit is
    kept (as for Ctrl-C while it is logged), its run ends KILLED and the model goes to a
    fallback folder; nothing is uploaded. Ctrl-C in a callback before the FitLogger
    (``callbacks=[user, FitLogger()]``) left the run RUNNING, with no warning and no
    fallback copy (FAILED only once the logger was garbage-collected)."""
    import mlflow

    experiment = mlflow.set_experiment(f"ctrl-c-{order}")
    model = make_model(max_epochs=1)
    interrupts = _FailsAtFitEnd(KeyboardInterrupt())
    callbacks = {
        "logger-first": [tracking.FitLogger(plot=False), interrupts],
        "logger-last": [interrupts, tracking.FitLogger(plot=False)],
    }[order]  # autolog's logger comes before the user's callbacks: as logger-first
    with pytest.warns(ForecasterWarning, match="Interrupted"), pytest.raises(KeyboardInterrupt):
        model.fit(frame, callbacks=callbacks)
    assert len(model.history_) == 1
    log = tracking.last_fit()
    (run,) = _runs(f"ctrl-c-{order}")  # the logger still holds the run: not left to the GC
    assert log.run_id == run.info.run_id and run.info.status == "KILLED"
    assert log.model_uri is None and "model" in log.not_logged
    assert mlflow.MlflowClient().search_logged_models([experiment.experiment_id]) == []
    assert log.fallback_path.parent == (tmp_path / "mlflow" / "unlogged").resolve()
    assert forecaster.load(log.fallback_path / "model").predict(frame).equals(model.predict(frame))


def test_forecast_plot_draws_every_target(frame):
    """The MLflow run's forecast.png drew the first target only: one row per series, one
    column per target now, as a pipeline's forecast.png."""
    two = frame.with_columns(z=pl.col("y") * 2.0)
    model = make_model(target=["y", "z"], max_epochs=1).fit(two)
    figure = tracking.forecast_plot(model, two, n_series=2)
    titles = [ax.get_title().split(" · as of")[0] for ax in figure.axes]
    assert titles == ["y · s0", "z · s0", "y · s1", "z · s1"]


# ------------------------------------------------------------------------------------------
# tuning
# ------------------------------------------------------------------------------------------


def test_study_parent_run_and_a_nested_run_per_trial(tracked, logged, frame):
    optuna = pytest.importorskip("optuna")
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s1", sampler=optuna.samplers.RandomSampler(seed=0))
    estimator = make_model()
    parent = tracking.log_study(study, estimator, frame)
    client = MlflowClient(tracked)
    assert client.get_run(parent).info.status == "RUNNING"

    def objective(trial):
        x = trial.suggest_float("x", -1, 1)
        for step in range(3):
            trial.report(x**2 + 1 / (step + 1), step)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return x**2

    study.optimize(objective, n_trials=3, callbacks=[tracking.trial_callback(parent)])
    again = tracking.log_study(study, estimator, frame, best_estimator=logged["model"])
    assert again == parent  # found again by the study's key

    children = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    assert sorted(by_number) == [0, 1, 2]
    assert by_number[1].info.status == "KILLED"
    assert by_number[1].data.tags["optuna.trial_state"] == "PRUNED"
    assert by_number[0].info.status == "FINISHED"
    assert float(by_number[0].data.params["x"]) == pytest.approx(study.trials[0].params["x"])
    assert by_number[0].data.metrics["value"] == pytest.approx(study.trials[0].value)
    steps = client.get_metric_history(by_number[0].info.run_id, "intermediate_value")
    assert [m.step for m in steps] == [0, 1, 2]
    # a pruned trial has no objective value (Optuna's is its last intermediate value, in the
    # units of the reports): only its intermediate values are logged
    assert "value" not in by_number[1].data.metrics
    steps = client.get_metric_history(by_number[1].info.run_id, "intermediate_value")
    assert [m.value for m in steps] == pytest.approx(
        list(study.trials[1].intermediate_values.values())
    )

    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["best_value"] == pytest.approx(study.best_value)
    assert run.data.metrics["n_pruned"] == 1 and run.data.metrics["n_complete"] == 2
    assert run.data.tags["best.x"] == str(study.best_params["x"])
    assert run.data.params["study_name"] == "s1" and run.data.tags["template.hidden_size"] == "8"
    assert run.data.tags["best.lookback_"] == run.data.tags["best.lookback"]  # an int there
    assert run.data.params["data.0.rows"] == run.data.tags["data.rows"]  # one dataset so far
    assert run.data.tags["forecaster.study_key"] and "data.1.rows" not in run.data.params
    assert run.data.tags["best.hidden_size"] == "8"  # the best estimator's params, as tags
    assert len(run.outputs.model_outputs) == 1  # the best model
    assert "best_params.json" in {a.path for a in client.list_artifacts(parent)}


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_log_study_backfills_trials_under_the_metric_name_of_the_live_trial_runs(
    isolated, frame, direction
):
    """Trials that ran without a trial_callback (e.g. the server was down) get their child run
    from log_study, their intermediate values named (and negated back, for a maximize study
    whose trials report a loss negated) as trial_callback logs them."""
    optuna = pytest.importorskip("optuna")
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="s2", direction=direction, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    sign = -1.0 if direction == "maximize" else 1.0
    losses = {}

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        losses[trial.number] = {epoch: x + 1 / epoch for epoch in (1, 2)}
        for epoch, loss in losses[trial.number].items():
            trial.report(sign * loss, epoch)
        return x

    study.optimize(objective, n_trials=2)  # no callback: no child run yet
    estimator = make_model()
    with pytest.raises(DataValidationError, match="intermediate_key must be a non-empty string"):
        tracking.log_study(study, estimator, frame, intermediate_key=" ")
    with pytest.raises(DataValidationError, match="negate_intermediate must be True or False"):
        tracking.log_study(study, estimator, frame, negate_intermediate="yes")
    negate = direction == "maximize"
    parent = tracking.log_study(
        study, estimator, frame, intermediate_key="best_val_loss", negate_intermediate=negate
    )
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])  # the test's SQLite store
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == [0, 1]
    for run in children:
        number = int(run.data.tags["optuna.trial_number"])
        steps = client.get_metric_history(run.info.run_id, "best_val_loss")
        assert {m.step: m.value for m in steps} == pytest.approx(losses[number])
        assert "intermediate_value" not in run.data.metrics
        assert run.data.metrics["value"] == pytest.approx(study.trials[number].value)


def _finished_study(optuna, name: str):
    study = optuna.create_study(study_name=name, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    return study


def test_log_study_refuses_a_best_estimator_whose_prediction_params_changed(isolated, frame):
    """log_study(best_estimator=...) logged a model changed with set_params since its fit:
    a FINISHED study run without a model and a fallback folder. Refused before anything is
    written now, as log_fit refuses it (the study's user attributes included)."""
    optuna = pytest.importorskip("optuna")
    import mlflow

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = make_model(max_epochs=1).fit(frame)
    best.set_params(horizon=5)
    study = _finished_study(optuna, "changed")
    mlflow.set_experiment("changed-best")
    with pytest.raises(DataValidationError, match=r"Cannot log this RNNForecaster: horizon"):
        tracking.log_study(study, make_model(), frame, best_estimator=best)
    assert _runs("changed-best") == [] and not (Path.cwd() / "mlflow" / "unlogged").exists()
    assert "forecaster.tracking_token" not in study.user_attrs


def test_a_study_run_nests_in_the_run_mlflow_run_id_names_or_the_active_run(
    isolated, frame, monkeypatch
):
    """log_study ignored MLFLOW_RUN_ID (and the active run): the study's run was a top-level
    run beside the run `mlflow run` started. It nests in that run now (found again there, the
    named run left RUNNING and without the study's records), as in the active run; a run the
    store does not have and an experiment other than that run's are refused."""
    optuna = pytest.importorskip("optuna")
    import mlflow
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mlflow.set_experiment("outer")
    client = MlflowClient()
    named = client.create_run(mlflow.get_experiment_by_name("outer").experiment_id).info
    monkeypatch.setenv("MLFLOW_RUN_ID", named.run_id)
    study, estimator = _finished_study(optuna, "nested"), make_model()
    parent = tracking.log_study(study, estimator, frame)
    run = client.get_run(parent)
    assert run.data.tags["mlflow.parentRunId"] == named.run_id
    assert run.info.experiment_id == named.experiment_id and run.info.status == "FINISHED"
    assert tracking.log_study(study, estimator, frame) == parent  # found again there
    outer = client.get_run(named.run_id)
    assert outer.info.status == "RUNNING" and outer.data.params == {}
    with pytest.raises(DataValidationError, match=r"nests in the run MLFLOW_RUN_ID names"):
        tracking.log_study(study, estimator, frame, experiment="elsewhere")
    assert mlflow.get_experiment_by_name("elsewhere") is None

    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")
    with pytest.raises(DataValidationError, match=r"MLFLOW_RUN_ID names the run '0123"):
        tracking.log_study(_finished_study(optuna, "missing"), estimator, frame)
    monkeypatch.delenv("MLFLOW_RUN_ID")
    with mlflow.start_run() as active:
        inside = tracking.log_study(_finished_study(optuna, "active"), estimator, frame)
    assert client.get_run(inside).data.tags["mlflow.parentRunId"] == active.info.run_id
    alone = tracking.log_study(_finished_study(optuna, "alone"), estimator, frame)
    assert "mlflow.parentRunId" not in client.get_run(alone).data.tags


# ------------------------------------------------------------------------------------------
# configuration, fingerprints, missing mlflow
# ------------------------------------------------------------------------------------------


def test_default_tracking_uri_honours_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.default_tracking_uri() == "sqlite:///mlflow/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.default_tracking_uri() == "http://tracking.example:5000"


def test_configure_defaults_to_a_local_sqlite_store(tmp_path):
    """In a fresh interpreter: MLflow caches its stores by URI, so in this process the
    relative default URI could reach an earlier test's folder."""
    pytest.importorskip("mlflow")
    script = textwrap.dedent(
        """
        import json
        import mlflow
        from forecaster import tracking
        from forecaster.tracking import resilience

        target = tracking.configure(fallback_dir="kept")
        experiment = mlflow.MlflowClient().get_experiment(target.experiment_id)
        print(json.dumps({
            "target": [target.tracking_uri, target.experiment_name, target.artifact_location],
            "fallback_root": str(resilience.fallback_root()),
            "experiment_location": experiment.artifact_location,
            "mlflow_uri": mlflow.get_tracking_uri(),
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    location = (tmp_path / "mlflow/artifacts/forecaster").as_uri()
    assert got["target"] == ["sqlite:///mlflow/mlflow.db", "forecaster", location]
    assert got["fallback_root"] == "kept"
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    assert got["experiment_location"] == location
    assert got["mlflow_uri"] == "sqlite:///mlflow/mlflow.db"


def test_dataset_fingerprint():
    frame = make_frame(3, 50)
    fp = tracking.dataset_fingerprint(frame, id_col="id", time_col="date")
    assert (fp["rows"], fp["series"], fp["start"], fp["end"]) == (
        150,
        3,
        "2020-01-01",
        "2020-02-19",
    )
    assert fp["dtypes"] == {"id": "String", "date": "Date", "y": "Float64"}
    lazy = tracking.dataset_fingerprint(frame.lazy(), id_col="id", time_col="date")
    assert lazy["hash"] == fp["hash"]
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    assert tracking.dataset_fingerprint(shuffled)["hash"] == fp["hash"]
    changed = frame.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(0.5).otherwise("y"))
    assert tracking.dataset_fingerprint(changed)["hash"] != fp["hash"]
    X = np.zeros((4, 3), dtype=np.float32)
    arrays = tracking.dataset_fingerprint((X, X[:, 0]))
    assert arrays["rows"] == 4 and arrays["hash"] != tracking.dataset_fingerprint((X + 1,))["hash"]


def test_fit_fingerprint_is_of_the_model_columns_whatever_the_input(isolated):
    """The logged fingerprint identifies the data the model trained on: a DataFrame with a
    column the model does not use, a LazyFrame of it (fit reads the model's columns only) and
    the frame without it log the same one; a change in the unused column leaves it as it is,
    a change in the target does not."""
    import mlflow

    frame = make_frame(2, 60).with_columns(pl.lit("note").alias("comment"))
    frame = frame.select("comment", *make_frame(2, 60).columns)  # unused column first
    mlflow.set_experiment("fingerprints")  # of this test's store (not an earlier test's ID)

    def logged(data) -> dict:
        with mlflow.start_run() as run:
            make_model(lookback=6, horizon=2, max_epochs=1, windows_per_epoch=16).fit(
                data, callbacks=[tracking.FitLogger(plot=False)]
            )
        found = mlflow.get_run(run.info.run_id).data
        assert found.tags["forecaster.kind"] == "fit"  # the user's run had no kind
        return found.params

    whole = logged(frame)
    assert whole["data.columns"] == "id,date,y"
    expected = tracking.dataset_fingerprint(frame.drop("comment"), id_col="id", time_col="date")
    assert whole["data.hash"] == expected["hash"]
    for other in (frame.lazy(), frame.with_columns(pl.lit("other").alias("comment"))):
        assert logged(other)["data.hash"] == whole["data.hash"]
    changed = frame.with_columns(pl.col("y") + 1.0)
    assert logged(changed)["data.hash"] != whole["data.hash"]


def test_a_fit_fingerprint_refuses_a_frame_without_a_column_the_model_reads():
    """fingerprint_for fingerprinted the model's columns the frame had: a frame without the
    target gave a fingerprint of id and date, as if it were the training data."""
    from forecaster.tracking.fingerprint import fingerprint_for

    frame = make_frame(2, 20)
    assert fingerprint_for(make_model(), frame)["columns"] == ["id", "date", "y"]
    with pytest.raises(DataValidationError, match=r"the frame lacks 'y' \(its columns: "):
        fingerprint_for(make_model(), frame.drop("y").lazy())


def test_without_mlflow_fit_works_and_tracking_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # "import mlflow" raises ImportError
    from forecaster.tracking import pyfunc

    monkeypatch.setattr(pyfunc, "_PYFUNC_CLASS", None)
    for call in (tracking.autolog, tracking.configure, lambda: tracking.ForecasterPyfunc):
        with pytest.raises(ImportError, match=r'pip install "forecaster-rnn\[track\]"'):
            call()
    model = make_model(max_epochs=1).fit(make_frame(1, 60))
    assert len(model.history_) == 1


def test_an_experiment_scope_is_its_threads_own(isolated):
    """Blocks of two threads that end out of order: each thread's runs go to its own block's
    experiment, and after both the user's choice holds (one process-wide slot restored a
    stale block, and every later run went to the pipeline's experiment)."""
    import mlflow
    from forecaster.tracking.target import experiment_for_new_run

    mlflow.set_experiment("mine")

    def name(experiment_id: str) -> str:
        return mlflow.MlflowClient().get_experiment(experiment_id).name

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, str] = {}

    def block_a() -> None:
        with tracking.experiment_scope("pipeline-A"):
            a_in.set()
            b_in.wait(30)
            seen["a"] = name(experiment_for_new_run(mlflow))
        a_out.set()

    def block_b() -> None:
        a_in.wait(30)
        with tracking.experiment_scope("pipeline-B"):
            b_in.set()
            a_out.wait(30)
            seen["b"] = name(experiment_for_new_run(mlflow))

    threads = [threading.Thread(target=block_a), threading.Thread(target=block_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == {"a": "pipeline-A", "b": "pipeline-B"}
    assert name(experiment_for_new_run(mlflow)) == "mine"
    assert name(os.environ["MLFLOW_EXPERIMENT_ID"]) == "mine"


@pytest.mark.parametrize("before", ["configure", "an earlier run"])
def test_a_fit_logs_into_the_store_and_experiment_the_user_chose(isolated, tmp_path, frame, before):
    """After configure (or an earlier run on a store with no experiment chosen), switching
    with mlflow.set_tracking_uri and mlflow.set_experiment was overwritten: the fit's run went
    to "forecaster", which the fit made MLflow's current experiment, so the user's own next
    run went there too."""
    import mlflow
    from forecaster.tracking.target import experiment_for_new_run

    first = f"sqlite:///{tmp_path / 'a' / 'a.db'}"
    if before == "configure":
        tracking.configure(first, "cfg")
    else:
        mlflow.set_tracking_uri(first)
        experiment_for_new_run(mlflow)  # an earlier fit's run
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'b.db'}")
    mine = mlflow.set_experiment("mine").experiment_id
    make_model(max_epochs=1).fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    run = mlflow.MlflowClient().get_run(tracking.last_fit().run_id)
    assert run.info.experiment_id == mine
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'b.db'}"
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == mine
    with mlflow.start_run() as own:
        assert own.info.experiment_id == mine


def test_a_run_with_no_experiment_chosen_goes_to_forecaster_without_choosing_it(isolated, tmp_path):
    """With none chosen, forecaster's run went to "forecaster" and made it MLflow's current
    experiment (MLFLOW_EXPERIMENT_ID set); the experiment configure chose on another store
    is none of the new store's, and stays the process's choice."""
    import mlflow
    from forecaster.tracking.target import experiment_for_new_run

    def name(experiment_id: str) -> str:
        return mlflow.MlflowClient().get_experiment(experiment_id).name

    assert name(experiment_for_new_run(mlflow)) == "forecaster"
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    chosen = tracking.configure(f"sqlite:///{tmp_path / 'a.db'}", "cfg").experiment_id
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == chosen  # configure chooses, as documented
    assert name(experiment_for_new_run(mlflow)) == "cfg"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'b.db'}")
    assert name(experiment_for_new_run(mlflow)) == "forecaster"
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == chosen


def test_a_logged_fit_says_what_the_fit_used(isolated, frame, tmp_path):
    """log_fit after set_params logged the run settings set since (max_time=None, another
    device, a checkpoint folder); calendar="auto" and device="auto" were logged as "auto"
    only, with nothing saying which features or device the fit used."""
    import mlflow

    model = make_model(max_epochs=1, max_time=3600.0, calendar="auto")
    model.fit(frame, callbacks=[tracking.FitLogger(plot=False)])
    fitted = tracking.last_fit().run_id
    model.set_params(max_time=None, device="cpu", checkpoint_dir=str(tmp_path), progress=True)
    logged = tracking.log_fit(model, frame, plot=False).run_id
    assert model.calendar_ and model.device_ in ("cpu", "cuda")
    for run_id in (fitted, logged):
        params = mlflow.MlflowClient().get_run(run_id).data.params
        assert (params["max_time"], params["device"]) == ("3600.0", "auto")
        assert (params["checkpoint_dir"], params["progress"]) == ("None", "False")
        assert params["calendar"] == "auto"
        assert params["calendar_"] == json.dumps(list(model.calendar_))
        assert params["device_"] == model.device_


def test_a_run_with_no_tracking_uri_set_chooses_no_experiment(tmp_path):
    """With no tracking URI set, a study's run (its own experiment) and a fit's run went to
    the default store and made their experiment MLflow's current one. In a fresh interpreter:
    MLflow caches its stores by URI, so the relative default URI could reach an earlier test's
    folder."""
    pytest.importorskip("mlflow")
    script = textwrap.dedent(
        """
        import json, os
        import mlflow
        from forecaster.tracking.target import experiment_for_new_run

        ids = [experiment_for_new_run(mlflow, "study"), experiment_for_new_run(mlflow)]
        names = [mlflow.MlflowClient().get_experiment(i).name for i in ids]
        print(json.dumps({
            "names": names,
            "chosen": os.environ.get("MLFLOW_EXPERIMENT_ID"),
            "uri": mlflow.get_tracking_uri(),
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {
        "names": ["study", "forecaster"],
        "chosen": None,
        "uri": tracking.DEFAULT_TRACKING_URI,
    }


@pytest.fixture
def no_uri(tmp_path, monkeypatch):
    """No tracking URI set: MLflow's own default store is ``mlflow.db`` in the working
    directory (``tmp_path``), and forecaster's default store is ``mlflow/mlflow.db`` there, as
    an absolute URI (MLflow caches its stores by URI, so the relative default could reach an
    earlier test's folder). Yields forecaster's store, already holding the experiments
    "forecaster" (ID 1) and "someone-elses" (ID 2)."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.tracking import target

    reset_mlflow_state(monkeypatch, tmp_path)
    ours = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setattr(target, "default_tracking_uri", lambda: ours)
    (tmp_path / "mlflow").mkdir()
    client = mlflow.MlflowClient(ours)
    assert [client.create_experiment(n) for n in ("forecaster", "someone-elses")] == ["1", "2"]
    yield ours
    _forget()


def _chosen_before_any_uri(mlflow) -> str:
    """mlflow.set_experiment with no tracking URI set: "mine" gets ID 2 in MLflow's default
    store, the ID of "someone-elses" in forecaster's store."""
    mlflow.set_experiment("first")
    mine = mlflow.set_experiment("mine").experiment_id
    assert (mine, mlflow.is_tracking_uri_set()) == ("2", False)
    return mine


def test_fits_after_set_experiment_with_no_tracking_uri_go_to_that_experiment(no_uri, frame):
    """With no URI set, the first fit set forecaster's store and logged to "forecaster"; the
    second took the leftover MLFLOW_EXPERIMENT_ID of MLflow's default store: into the unrelated
    experiment with that ID in forecaster's store ("No Experiment with id=2", nothing logged,
    where there was none), as did the user's own mlflow.start_run() afterwards."""
    import mlflow

    _chosen_before_any_uri(mlflow)
    names = []
    for _ in range(2):
        make_model(max_epochs=1).fit(frame, callbacks=[tracking.FitLogger(plot=False)])
        fit = tracking.last_fit()
        assert fit.not_logged == []
        run = mlflow.MlflowClient(no_uri).get_run(fit.run_id)
        names.append(mlflow.MlflowClient(no_uri).get_experiment(run.info.experiment_id).name)
    assert names == ["mine", "mine"]
    assert mlflow.get_tracking_uri() == no_uri
    with mlflow.start_run() as own:
        assert mlflow.MlflowClient().get_experiment(own.info.experiment_id).name == "mine"


@pytest.mark.parametrize("run_kind", ["experiment_scope", "study run"])
def test_an_experiment_of_its_own_with_no_tracking_uri_keeps_the_users_choice(no_uri, run_kind):
    """A pipeline's block (or a study's run) set forecaster's store as the tracking URI and
    left MLFLOW_EXPERIMENT_ID of MLflow's default store: the user's next mlflow.start_run()
    went to the experiment with that ID in forecaster's store ("someone-elses")."""
    import mlflow
    from forecaster.tracking.target import experiment_for_new_run

    def name(experiment_id: str) -> str:
        return mlflow.MlflowClient(no_uri).get_experiment(experiment_id).name

    _chosen_before_any_uri(mlflow)
    if run_kind == "experiment_scope":
        with tracking.experiment_scope("pipeline") as target:
            assert name(experiment_for_new_run(mlflow)) == "pipeline"
        assert target.tracking_uri == no_uri
    else:
        assert name(experiment_for_new_run(mlflow, "study")) == "study"
    assert name(experiment_for_new_run(mlflow)) == "mine"
    assert name(os.environ["MLFLOW_EXPERIMENT_ID"]) == "mine"
    with mlflow.start_run() as own:
        assert name(own.info.experiment_id) == "mine"


def test_the_users_choice_follows_once_forecasters_store_answers(no_uri, monkeypatch):
    """When forecaster's store could not be reached as it set the URI, the user's choice made
    on MLflow's default store follows by name once it answers (not by its leftover ID)."""
    import mlflow
    from forecaster.exceptions import TrackingUnavailableError
    from forecaster.tracking import target

    _chosen_before_any_uri(mlflow)
    reachable = target.unreachable_reason
    monkeypatch.setattr(target, "unreachable_reason", lambda uri: "down for the test")
    with pytest.raises(TrackingUnavailableError):
        target.experiment_for_new_run(mlflow)
    monkeypatch.setattr(target, "unreachable_reason", reachable)
    chosen = target.experiment_for_new_run(mlflow)
    assert mlflow.MlflowClient(no_uri).get_experiment(chosen).name == "mine"
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == chosen


@pytest.mark.parametrize("uri_set", [True, False])
def test_an_experiment_id_no_store_has_is_warned_about(no_uri, monkeypatch, tmp_path, uri_set):
    """MLFLOW_EXPERIMENT_ID naming no experiment of the store was used as it was: the run
    could not be created (nothing logged) or went to an unrelated experiment with that ID."""
    import mlflow
    from forecaster.tracking.target import experiment_for_new_run

    if uri_set:
        mlflow.set_tracking_uri(no_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "42")
    for _ in range(2):
        with pytest.warns(ForecasterWarning, match="MLFLOW_EXPERIMENT_ID is '42'.*no active"):
            chosen = experiment_for_new_run(mlflow)
        assert mlflow.MlflowClient(no_uri).get_experiment(chosen).name == "forecaster"
    assert not (tmp_path / "mlflow.db").exists()  # MLflow's default store was not created


class _TrialClient:
    """An MLflow client whose params write gets a Ctrl-C (SIGINT) in its middle."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def create_run(self, experiment_id: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(info=SimpleNamespace(run_id="trial-run"))

    def log_batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:  # type: ignore[no-untyped-def]
        if params:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
        self.written.append("params" if params else "metrics" if metrics else "tags")

    def set_terminated(self, run_id: str, status: str, end_time: int | None = None) -> None:
        self.written.append(status)

    def delete_run(self, run_id: str) -> None:
        self.written.append("deleted")


def test_a_ctrl_c_in_a_trials_tracking_write_is_raised_after_the_write(python_sigint_handler):
    """A tuning trial's run was logged with writes of its own (params and tags in batches,
    the run's end), a second copy of records.log_params / log_tags without their hold of
    interrupts: a Ctrl-C between two trials landed mid-transaction, leaving a SQLite store's
    write lock held (the study run's cleanups then failed with "database is locked"). They
    are the one mechanism now: the write ends, then KeyboardInterrupt is raised."""
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("mlflow")
    from forecaster.tracking.trialruns import log_trial

    trial = optuna.trial.create_trial(
        params={"hidden_size": 8},
        distributions={"hidden_size": optuna.distributions.IntDistribution(4, 16)},
        value=1.0,
    )
    client = _TrialClient()
    with pytest.raises(KeyboardInterrupt):
        log_trial(client, "0", "parent", SimpleNamespace(study_name="s"), trial, ("v", False))
    assert client.written == ["params", "deleted"]  # the write ended; the half-logged run goes


def test_a_tracked_fit_on_a_lazy_frame_logs_the_rows_it_trained_on(isolated, tmp_path):
    """A tracked fit on a LazyFrame (a scan of a file) fingerprinted the source as the fit
    started, then read it again to train (and again for the plot): an upstream job that
    replaced the file meanwhile gave a run whose dataset described other rows than the model's.
    The fit reads the frame once, and its hooks (the fingerprint, the plot) get those rows."""
    import mlflow

    path = tmp_path / "data.csv"
    make_frame(2, 160).write_csv(path)

    class ReplaceSource:  # the upstream job, as the fit starts (after tracking's hook)
        def on_fit_start(self, estimator, data):
            make_frame(2, 200).write_csv(tmp_path / "new.csv")
            os.replace(tmp_path / "new.csv", path)

    model = make_model(max_epochs=1, baseline="none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BaselineWarning)
        model.fit(
            pl.scan_csv(path, try_parse_dates=True),
            callbacks=[tracking.FitLogger(plot=False), ReplaceSource()],
        )
    run = mlflow.MlflowClient().get_run(tracking.last_fit().run_id)
    assert run.data.params["data.end"] == str(model.train_end_.max())
    assert run.data.params["data.rows"] == "320"  # the rows trained on, not the 400 now


def test_a_deleted_experiment_is_refused_not_restored(isolated):
    """experiment_scope (the experiment of a pipeline) restored an experiment its user had
    deleted, and every run in it, silently. Refused now, as mlflow.set_experiment refuses it,
    naming the experiment and the ways out; the experiment stays deleted."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("gone")
    client.delete_experiment(experiment_id)
    refusal = pytest.raises(ForecasterError, match=r"'gone' \(ID .*\) is deleted")
    with refusal as refused, tracking.experiment_scope("gone"):
        pass  # not reached
    assert "Restore it" in str(refused.value) and "delete it permanently" in str(refused.value)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"


def test_a_fit_refuses_a_deleted_experiment_that_mlflow_experiment_name_names(
    isolated, monkeypatch
):
    """MLFLOW_EXPERIMENT_NAME naming a deleted experiment (a tracking URI set): the fit's
    warning gave MLflow's "The experiment 1 must be in the 'active' state", not the refusal
    that names the experiment and the ways out. It gives that refusal now, creates no run, and
    the experiment stays deleted."""
    import mlflow

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("gone")
    client.delete_experiment(experiment_id)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "gone")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_model(max_epochs=1, baseline="none").fit(
            make_frame(2, 160), callbacks=[tracking.FitLogger(plot=False)]
        )
    (failed,) = [str(w.message) for w in caught if "MLflow tracking failed" in str(w.message)]
    assert "'gone' (ID 1) is deleted" in failed and "Restore it" in failed, failed
    assert tracking.last_fit().run_id is None
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id], run_view_type=3) == []


def test_a_fit_refuses_the_default_experiment_deleted_while_the_process_runs(isolated):
    """The default experiment ("forecaster") deleted after a first tracked fit of the process:
    the next fit warned with MLflow's raw "must be in the 'active' state" (the experiment's ID
    was remembered from the first fit). It gives the refusal of a deleted experiment now, as
    for a named one, creates no run, and the experiment stays deleted."""
    import mlflow

    def fit() -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_model(max_epochs=1, baseline="none").fit(
                make_frame(2, 160), callbacks=[tracking.FitLogger(plot=False)]
            )
        return [str(w.message) for w in caught if "MLflow tracking failed" in str(w.message)]

    assert fit() == []
    first = tracking.last_fit().run_id
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(first).info.experiment_id
    assert client.get_experiment(experiment_id).name == "forecaster"
    client.delete_experiment(experiment_id)
    (failed,) = fit()
    assert f"'forecaster' (ID {experiment_id}) is deleted" in failed, failed
    assert "Restore it" in failed and "'active' state" not in failed, failed
    assert tracking.last_fit().run_id is None
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=3)] == [first]


def test_a_fingerprint_hashes_a_categorical_or_enum_id_as_its_text():
    """The same series with a String, a Categorical or an Enum id got three data.hash values
    (a fit's and a study's fingerprint alike), so a resumed study logged a new data version
    and a pipeline warned its data changed when a source's id dtype changed. The hash is of
    the id's text now; dtypes still names the frame's own, and a Categorical or Enum id's
    fingerprint also has legacy_hash: the hash earlier versions gave it (blake2b of its
    schema, rows and the sum of polars' row hashes, of the id's own dtype)."""
    import json as json_module

    from forecaster._hashing import fingerprint_digest

    frame = make_frame(3, 20)
    fp = tracking.dataset_fingerprint(frame, id_col="id", time_col="date")
    assert "legacy_hash" not in fp
    for dtype in (pl.Categorical, pl.Enum(["s2", "s1", "s0"])):
        other = frame.with_columns(pl.col("id").cast(dtype))
        got = tracking.dataset_fingerprint(other.lazy(), id_col="id", time_col="date")
        assert got["hash"] == fp["hash"], dtype
        assert got["dtypes"]["id"] == str(other.schema["id"])
        row_sum = other.select(pl.struct(pl.all()).hash(seed=0).sum()).item()
        before = fingerprint_digest(json_module.dumps(got["dtypes"]), f"{len(other)}:{row_sum}")
        assert got["legacy_hash"] == before != got["hash"], dtype
    # the id's text counts: another series name is another hash
    renamed = frame.with_columns(pl.col("id").replace({"s0": "z"}).cast(pl.Categorical))
    assert tracking.dataset_fingerprint(renamed, id_col="id")["hash"] != fp["hash"]


def test_a_relative_tracking_uri_of_the_users_in_a_folder_a_sqlite_url_cannot_hold_is_kept(
    tmp_path, monkeypatch
):
    """A project run from ``/tmp/a%20b`` with the user's own ``MLFLOW_TRACKING_URI=
    sqlite:///mlflow.db`` was refused ("keep the store elsewhere (MLFLOW_TRACKING_URI, ...)",
    which the user had done): the relative URI, made absolute, holds the '%'. The user's URI
    is kept as written (MLflow reads it against the working directory, the file meant); the
    project's own default store in such a folder is still refused."""
    from forecaster.tracking.config import default_tracking_uri

    folder = tmp_path / "a%20b"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert default_tracking_uri(folder) == "sqlite:///mlflow.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(forecaster.ForecasterError, match="'%20' reads as a space"):
        default_tracking_uri(folder)

"""Hostile tracking backends and arguments: a dead, silent, broken or misnamed MLflow server
costs seconds, not minutes; the fit (or study, or pipeline) completes, one ForecasterWarning
says what was not logged, and the model waits in a new fallback folder; nothing but our error
types escapes for a wrong argument, and nothing outside the run's own files changes."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

mlflow = pytest.importorskip("mlflow")
optuna = pytest.importorskip("optuna")

import forecaster  # noqa: E402
from forecaster import RNNForecaster, tracking  # noqa: E402
from forecaster.exceptions import (  # noqa: E402
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    NotFittedError,
)
from forecaster.tuning import tune  # noqa: E402

# A dead server may cost this much on top of training (before: about four minutes per
# request, MLflow's 7 retries with exponential backoff).
BUDGET_S = 12.0
HTTP_VARIABLES = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


# ------------------------------------------------------------------------------------------
# tiny data and model
# ------------------------------------------------------------------------------------------


def tiny_frame() -> pl.DataFrame:
    t = np.arange(120)
    return pl.DataFrame(
        {
            "id": np.repeat(["a", "b"], 120),
            "time": np.concatenate([t, t]),
            "y": np.concatenate([np.sin(t / 4), np.cos(t / 5)]).astype(np.float32),
        }
    )


def tiny_model(**overrides) -> RNNForecaster:
    params = dict(
        target="y", id_col="id", time_col="time", lookback=12, horizon=4, hidden_size=4,
        segment_length=4, max_epochs=1, windows_per_epoch=64, batch_size=32,
        random_state=0, progress=False,
    )  # fmt: skip
    return RNNForecaster(**{**params, **overrides})


FRAME = tiny_frame()


# ------------------------------------------------------------------------------------------
# servers that are not MLflow servers
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _RawServer:
    """A TCP server thread: ``mode`` "silent" accepts and never answers, "garbage" answers
    bytes that are not HTTP and hangs up."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.uri = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = True
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.open:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            if self.mode == "garbage":
                with contextlib.suppress(OSError):
                    conn.settimeout(1)
                    conn.recv(65536)
                    conn.sendall(b"\x00\x01garbage, not HTTP\r\n\r\n")
                conn.close()
            else:
                self.held.append(conn)

    def close(self) -> None:
        self.open = False
        self.thread.join(2)
        self.listener.close()
        for conn in self.held:
            conn.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    health_ok = False

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        ok = self.health_ok and self.path.startswith("/health")
        body = b"OK" if ok else b'{"error_code": "INTERNAL_ERROR", "message": "boom"}'
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


class _HttpServer:
    """An HTTP server thread answering 500 to everything (or, ``health_ok``, 200 to
    ``/health`` and 500 to the API)."""

    def __init__(self, health_ok: bool) -> None:
        handler = type("Handler", (_Handler,), {"health_ok": health_ok})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def dead_server(kind: str) -> Iterator[str]:
    """The URI of a tracking server that is no use, of the given kind."""
    if kind == "refused":
        yield f"http://127.0.0.1:{_free_port()}"
    elif kind == "port 1":
        yield "http://127.0.0.1:1"
    elif kind == "unresolvable":
        yield "http://mlflow.invalid:5000"
    elif kind in ("silent", "garbage"):
        server = _RawServer(kind)
        try:
            yield server.uri
        finally:
            server.close()
    else:
        server = _HttpServer(health_ok=kind == "api 500")
        try:
            yield server.uri
        finally:
            server.close()


DEAD = ["refused", "port 1", "unresolvable", "silent", "garbage", "http 500", "api 500"]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A fresh working directory and fresh MLflow / tracking state, with no HTTP settings of
    the user's (so that forecaster's defaults apply)."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", *HTTP_VARIABLES,
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    monkeypatch.setattr(tracking, "_state", tracking._State())
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _ours(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]


def _fallbacks(root: Path) -> list[Path]:
    folder = root / "mlflow" / "unlogged"
    return (
        sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    )


def _untracked_seconds(**overrides) -> float:
    started = time.perf_counter()
    tiny_model(**overrides).fit(FRAME)
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------
# a fit against a dead server
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DEAD)
def test_fit_against_a_dead_server_costs_seconds_and_keeps_the_model(
    isolated, monkeypatch, tree_guard, kind
):
    guard = tree_guard(isolated)
    training = _untracked_seconds()
    with dead_server(kind) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        tracking.autolog()
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = tiny_model().fit(FRAME)
        elapsed = time.perf_counter() - started
    assert elapsed < training + BUDGET_S, f"{kind}: {elapsed:.1f} s (training {training:.1f} s)"
    ours = _ours(caught)
    assert len(ours) == 1, ours
    assert uri in ours[0] and "Training completed" in ours[0] and "model" in ours[0]
    log = tracking.last_fit()
    assert log.fallback_path is not None and str(log.fallback_path.resolve()) in ours[0]
    assert _fallbacks(isolated) == [log.fallback_path]
    reloaded = forecaster.load(log.fallback_path / "model")
    assert reloaded.predict(FRAME).equals(model.predict(FRAME))
    record = json.loads((log.fallback_path / "run.json").read_text())
    assert record["tracking_uri"] == uri and len(record["history"]) == 1
    manifest = json.loads((log.fallback_path / "manifest.json").read_text())
    assert manifest["kind"] == tracking.FALLBACK_KIND and "run.json" in manifest["files"]
    guard.assert_unchanged()  # only mlflow/ (the tracking folder) was written


def test_refused_connection_was_minutes_and_is_now_about_the_training_time(isolated, monkeypatch):
    """The case of the issue: ``MLFLOW_TRACKING_URI=http://127.0.0.1:1`` stalled a fit for
    about 250 s (measured before the fix); now the overhead is below a second."""
    training = _untracked_seconds(max_epochs=2)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    tracking.autolog()
    started = time.perf_counter()
    with pytest.warns(ForecasterWarning, match="Connection refused"):
        tiny_model(max_epochs=2).fit(FRAME)
    assert time.perf_counter() - started < training + 3.0


def test_a_user_setting_of_the_http_limits_is_kept(isolated, monkeypatch):
    """MLFLOW_HTTP_REQUEST_* set by the user stay as they are (and are restored after)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    assert tracking.request_limits()["max_retries"] == 1
    assert tracking.request_limits()["request_timeout"] == tracking.DEFAULT_REQUEST_TIMEOUT
    with tracking.bounded_requests():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == str(tracking.DEFAULT_REQUEST_TIMEOUT)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ  # restored: ours only in the block


def test_configure_limits_win_for_forecasters_requests_and_are_restored(isolated, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    with pytest.raises(tracking.TrackingUnavailableError):
        tracking.configure("http://127.0.0.1:1", request_timeout=2.5, max_retries=0)
    assert tracking.request_limits() == {
        "request_timeout": 3, "max_retries": 0, "backoff_factor": tracking.DEFAULT_BACKOFF_FACTOR,
    }  # fmt: skip
    with contextlib.suppress(RuntimeError), tracking.bounded_requests():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
        raise RuntimeError("the block fails")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_configure_against_a_dead_server_fails_fast_with_our_error(isolated, kind):
    with dead_server(kind) as uri:
        started = time.perf_counter()
        with pytest.raises(tracking.TrackingUnavailableError, match="cannot be reached") as info:
            tracking.configure(uri)
        assert time.perf_counter() - started < tracking.PROBE_TIMEOUT + 2
    assert isinstance(info.value, ForecasterError) and uri in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"request_timeout": 0},
        {"request_timeout": -1},
        {"request_timeout": float("nan")},
        {"request_timeout": True},
        {"max_retries": -1},
        {"max_retries": 11},
        {"max_retries": 2.5},
        {"max_retries": "3"},
        {"tracking_uri": 5},
        {"experiment": ""},
        {"fallback_dir": 3},
    ],
)
def test_configure_refuses_bad_arguments_before_changing_anything(isolated, kwargs):
    with pytest.raises(DataValidationError, match=next(iter(kwargs))):
        tracking.configure(**kwargs)
    assert tracking.request_limits()["max_retries"] == tracking.DEFAULT_MAX_RETRIES
    assert not (isolated / "mlflow").exists()


@pytest.mark.parametrize("uri", ["foo://tracking", "sqlite:///{root}/a_file/mlflow.db"])
def test_a_tracking_uri_mlflow_cannot_use_is_a_warning_and_the_model_is_kept(
    isolated, monkeypatch, uri
):
    (isolated / "a_file").write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(root=isolated))
    tracking.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_model().fit(FRAME)
    assert len(_ours(caught)) == 1, _ours(caught)
    assert (isolated / "a_file").read_text() == "not a folder"
    assert forecaster.load(tracking.last_fit().fallback_path / "model").horizon == 4


# ------------------------------------------------------------------------------------------
# the fallback folder
# ------------------------------------------------------------------------------------------


def test_fallback_folder_is_new_and_never_touches_the_users_files(isolated, monkeypatch):
    kept = isolated / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    (kept / "20991231-000000-no-run-000000").mkdir()  # looks like ours, is not
    before = {p: p.stat().st_mtime_ns for p in kept.rglob("*")}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    with pytest.raises(tracking.TrackingUnavailableError):
        tracking.configure(fallback_dir=kept)
    tracking.autolog()
    paths = []
    for _ in range(2):  # two fits in the same second: two folders, neither replaced
        with pytest.warns(ForecasterWarning):
            tiny_model().fit(FRAME)
        paths.append(tracking.last_fit().fallback_path)
    assert paths[0] != paths[1] and all(p.parent == kept for p in paths)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert sorted(kept.iterdir()) == sorted([*before, *paths])
    assert not [p for p in kept.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_fallback_root_that_is_a_file_is_a_warning_not_an_error(isolated, monkeypatch):
    (isolated / "kept").write_text("a file, not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    with contextlib.suppress(tracking.TrackingUnavailableError):
        tracking.configure(fallback_dir="kept")
    tracking.autolog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = tiny_model().fit(FRAME)
    assert hasattr(model, "network_")
    ours = _ours(caught)
    assert len(ours) == 1 and "local copy in" in ours[0], ours
    assert tracking.last_fit().fallback_path is None
    assert (isolated / "kept").read_text() == "a file, not a folder"


# ------------------------------------------------------------------------------------------
# log_fit, log_study, trial_callback, tune
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> RNNForecaster:
    return tiny_model().fit(FRAME)


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_log_fit_against_a_dead_server(isolated, monkeypatch, fitted, kind):
    with dead_server(kind) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        started = time.perf_counter()
        with pytest.warns(ForecasterWarning, match="no run could be created") as caught:
            log = tracking.log_fit(fitted, FRAME, plot=False)
        assert time.perf_counter() - started < BUDGET_S
    assert len(_ours(caught)) == 1 and caught[0].filename == __file__
    assert log.run_id is None and forecaster.load(log.fallback_path / "model").horizon == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"run": 123}, DataValidationError, "run must be"),
        ({"run": ""}, DataValidationError, "run must be"),
        ({"register_as": 5}, DataValidationError, "register_as"),
    ],
)
def test_log_fit_refuses_bad_arguments(isolated, fitted, kwargs, error, match):
    with pytest.raises(error, match=match):
        tracking.log_fit(fitted, FRAME, **kwargs)


def test_log_fit_of_an_unfitted_estimator_is_our_error(isolated):
    with pytest.raises(NotFittedError, match="fit it first"):
        tracking.log_fit(tiny_model(), FRAME)


def test_log_study_against_a_dead_server_keeps_the_best_model(isolated, monkeypatch, fitted):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    study = optuna.create_study(study_name="s")
    started = time.perf_counter()
    with pytest.warns(ForecasterWarning, match="The study itself is unaffected") as caught:
        assert tracking.log_study(study, fitted, FRAME) is None
    assert len(_ours(caught)) == 1
    with pytest.warns(ForecasterWarning, match="saved in") as caught:
        assert tracking.log_study(study, fitted, FRAME, best_estimator=fitted) is None
    assert len(_ours(caught)) == 1 and caught[0].filename == __file__
    assert time.perf_counter() - started < BUDGET_S
    (folder,) = _fallbacks(isolated)
    assert forecaster.load(folder / "model").predict(FRAME).equals(fitted.predict(FRAME))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("not a study", None), "optuna.Study"),
        ((None, "not an estimator"), "tuned estimator"),
    ],
)
def test_log_study_refuses_what_is_not_a_study(isolated, fitted, args, match):
    study = optuna.create_study() if args[0] is None else args[0]
    estimator = fitted if args[1] is None else args[1]
    with pytest.raises(DataValidationError, match=match):
        tracking.log_study(study, estimator, FRAME)


def test_log_study_refuses_an_unfitted_best_estimator(isolated, fitted):
    with pytest.raises(NotFittedError, match="best_estimator"):
        tracking.log_study(optuna.create_study(), fitted, FRAME, best_estimator=tiny_model())


def test_trial_callback_against_a_silent_server_warns_once_and_never_stalls(isolated):
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    with dead_server("silent") as uri:
        callback = tracking.trial_callback("0123abcd", tracking_uri=uri)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for trial in study.trials:
                callback(study, trial)
        assert time.perf_counter() - started < tracking.PROBE_TIMEOUT + 2
    assert len(_ours(caught)) == 1 and "Later trials are not logged" in _ours(caught)[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"parent_run_id": ""}, "parent_run_id"),
        ({"parent_run_id": 7}, "parent_run_id"),
        ({"parent_run_id": "r", "max_retries": "x"}, "max_retries"),
        ({"parent_run_id": "r", "intermediate_key": None}, "intermediate_key"),
    ],
)
def test_trial_callback_refuses_bad_arguments(isolated, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        tracking.trial_callback(**kwargs)


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_tune_with_tracking_against_a_dead_server(isolated, monkeypatch, tree_guard, kind):
    guard = tree_guard(isolated)
    settings = dict(
        n_trials=2, storage=None, search_space={"hidden_size": [4, 8]}, random_state=0,
        show_progress=False,
    )  # fmt: skip
    started = time.perf_counter()
    tune(tiny_model(), FRAME, track=False, **settings)
    training = time.perf_counter() - started
    with dead_server(kind) as uri:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = tune(tiny_model(), FRAME, track=True, **settings)
        elapsed = time.perf_counter() - started
    assert elapsed < training + BUDGET_S, f"{elapsed:.1f} s (untracked {training:.1f} s)"
    assert result.n_trials_finished == 2 and result.best_estimator is not None
    ours = _ours(caught)
    assert len(ours) == 1 and uri in ours[0] and "saved in" in ours[0], ours
    (folder,) = _fallbacks(isolated)
    best = forecaster.load(folder / "model")
    assert best.predict(FRAME).equals(result.best_estimator.predict(FRAME))
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# a pipeline run
# ------------------------------------------------------------------------------------------

SPEC = """
[pipeline]
name = "mini"

[source]
path = "data/*.csv"
format = "csv"

[series]
id = "id"
time = "date"
targets = ["y"]

[model]
lookback = 4
horizon = 2
hidden_size = 4
max_epochs = 1
random_state = 0

[evaluation]
backtest_folds = 0

[tracking]
enabled = true

[output]
plot_series = 0
"""


def test_pipeline_run_against_a_dead_server_costs_seconds(isolated, monkeypatch, capsys):
    from forecaster.cli import main

    (isolated / "data").mkdir()
    first = dt.date(2024, 1, 1)
    lines = ["id,date,y"] + [
        f"{key},{first + dt.timedelta(days=i)},{10 * k + i + 0.5}"
        for k, key in enumerate("ab")
        for i in range(20)
    ]
    (isolated / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    (isolated / "pipelines").mkdir()
    (isolated / "pipelines" / "mini.toml").write_text(SPEC)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        code = main(["run", "pipelines/mini.toml", "--as-of", "2024-01-20", "--no-progress"])
    elapsed = time.perf_counter() - started
    assert code == 0, capsys.readouterr().err
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert list((isolated / "outputs").rglob("forecasts.parquet"))

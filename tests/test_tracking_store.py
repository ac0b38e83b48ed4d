"""Opening a new local SQLite tracking store (``forecaster.tracking.store``): MLflow creates
its tables when a process first opens it, one process at a time (two pipeline commands
started at once on a new store ran MLflow's migrations together, and one ran untracked)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import forget_mlflow_state, reset_mlflow_state

import forecaster
from forecaster import tracking

mlflow = pytest.importorskip("mlflow")
filelock = pytest.importorskip("filelock")


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    reset_mlflow_state(monkeypatch, tmp_path)
    yield tmp_path
    forget_mlflow_state()


def lock_is_held(lock_file) -> bool:
    """Whether another holder has the OS lock on ``lock_file`` (a probe of its own)."""
    probe = filelock.FileLock(str(lock_file), timeout=0)
    try:
        probe.acquire()
    except filelock.Timeout:
        return True
    probe.release()
    return False


def test_a_new_sqlite_store_is_opened_under_its_lock_once_per_process(fresh, monkeypatch):
    """Forced interleaving: each time MLflow opens the store (and would create its tables),
    a probe asks whether the store's lock is held. The first open of a new store holds it, so
    a second process waits for the tables instead of migrating them at the same time."""
    db = fresh / "mlflow" / "mlflow.db"
    lock_file = db.parent / ".mlflow.db.lock"
    real, held = mlflow.MlflowClient, []

    def probing(*args, **kwargs):
        held.append(lock_is_held(lock_file))
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "MlflowClient", probing)
    target = tracking.configure(f"sqlite:///{db}", "race")
    assert held[:1] == [True]
    assert not lock_is_held(lock_file)  # released once the tables are made
    with tracking.experiment_scope("race") as again:  # opened already: no lock, no wait
        assert again.experiment_id == target.experiment_id
    assert held[1:] == [False] * (len(held) - 1)


def three_at_once(args: list[str], cwd, env: dict, timeout: float) -> list[tuple[str, str]]:
    """The (stdout, stderr) of three ``python -c <args>`` processes started together (each
    waits for the start time its script is given), after checking that all three succeeded."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=timeout) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    return outs


WORKER = textwrap.dedent(
    """
    import sys, time
    from forecaster import tracking
    start, uri = float(sys.argv[1]), sys.argv[2]
    time.sleep(max(0.0, start - time.time()))
    print(tracking.configure(uri, "race").experiment_id)
    """
)


@pytest.mark.slow
def test_processes_opening_one_new_sqlite_store_at_once_all_track(tmp_path):
    """Three processes configure tracking on one new SQLite store at the same moment: each
    gets the experiment (none fails on a table another one created meanwhile)."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(forecaster.__file__)))
    env = {**os.environ, "PYTHONPATH": repo}  # this checkout's forecaster
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.time() + 8.0  # all three imported by then: they open the store together
    outs = three_at_once([WORKER, str(start), uri], tmp_path, env, timeout=180)
    assert len({out.strip() for out, _ in outs}) == 1


def probe_opens(monkeypatch, lock_file) -> list[bool]:
    """Each time MLflow opens a store from now on: whether ``lock_file`` was held then."""
    real, held = mlflow.MlflowClient, []

    def probing(*args, **kwargs):
        held.append(lock_is_held(lock_file))
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "MlflowClient", probing)
    return held


def test_a_store_in_a_missing_folder_is_opened_under_its_lock(fresh, monkeypatch):
    """The folder of a new database did not exist: the lock was skipped (MLflow then made the
    folder and the tables, unlocked). Now the folder is made first, then locked."""
    from forecaster.tracking.store import store_client

    db = fresh / "new" / "deeper" / "mlflow.db"
    held = probe_opens(monkeypatch, db.parent / ".mlflow.db.lock")
    store_client(mlflow, f"sqlite:///{db}").search_experiments()
    assert held == [True]
    assert db.is_file()


@pytest.mark.filterwarnings("ignore::forecaster.exceptions.BaselineWarning")
def test_log_fit_opens_a_new_store_under_its_lock(fresh, monkeypatch):
    """log_fit (and autolog) with MLFLOW_TRACKING_URI naming a new database and no
    configure(): its first open of the store went straight to MLflow, unlocked (three
    processes logging at once: most fits untracked). Now it takes the store's lock."""
    from conftest import sine_panel

    from forecaster import RNNForecaster

    frame = sine_panel(2, 60)
    model = RNNForecaster(
        target="y", id_col="id", time_col="date", lookback=8, horizon=3, hidden_size=4,
        max_epochs=1, progress=False, baseline="none",
    ).fit(frame)  # fmt: skip
    db = fresh / "mlflow" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    held = probe_opens(monkeypatch, db.parent / ".mlflow.db.lock")
    log = tracking.log_fit(model, frame, plot=False)
    assert log.run_id is not None and not log.not_logged
    assert held[:1] == [True]


FIT_WORKER = textwrap.dedent(
    """
    import sys, time, warnings
    sys.path.insert(0, sys.argv[2])
    from conftest import sine_panel
    from forecaster import RNNForecaster, tracking
    frame = sine_panel(2, 60)
    model = RNNForecaster(target="y", id_col="id", time_col="date", lookback=8, horizon=3,
        hidden_size=4, max_epochs=1, progress=False, baseline="none").fit(frame)
    time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = tracking.log_fit(model, frame, plot=False)
    print(log.run_id, log.not_logged)
    """
)


@pytest.mark.slow
def test_processes_logging_fits_on_one_new_sqlite_store_at_once_all_track(tmp_path):
    """Three processes log_fit at the same moment on one new store named by
    MLFLOW_TRACKING_URI (no configure()): each fit is tracked (before, all three were
    untracked: table migrations run together)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(forecaster.__file__)))
    tests = os.path.join(repo, "tests")
    env = {**os.environ, "PYTHONPATH": repo}  # this checkout's forecaster
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    start = time.time() + 20.0  # all three fitted by then: they open the store together
    outs = three_at_once([FIT_WORKER, str(start), tests], tmp_path, env, timeout=240)
    lines = [out.strip().splitlines()[-1] for out, _ in outs]
    assert all(line.endswith(" []") and not line.startswith("None") for line in lines), lines

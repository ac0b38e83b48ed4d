"""Concurrent runs of one spec and as-of: serialised by a lock beside the output folder. The
second exits at once with code 4 ("busy"), or with ``--wait`` queues and then finds the first
one's outputs; the outputs are written once, and nothing else changes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import mini_spec

from forecaster import _io
from forecaster.jobs.cli import main

LAST = "2024-01-30"
LOCK = f"outputs/mini/.{LAST}.lock"


def project(root: Path, epochs: int = 1) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = ["id,date,y"]
    for k, key in enumerate(("a", "b")):
        for i in range(30):
            lines.append(f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{10 * k + i}.5")
    (root / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    (root / "pipelines").mkdir(exist_ok=True)
    spec = root / "pipelines" / "spec.toml"
    spec.write_text(mini_spec(model={"max_epochs": epochs, "patience": 1000}))
    return spec


def start(spec: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "forecaster", "run", str(spec), "--no-progress", *extra],
        cwd=spec.parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ------------------------------------------------------------------------------------------
# the lock held in this process: fast, deterministic
# ------------------------------------------------------------------------------------------


def test_a_held_lock_makes_the_run_exit_4_at_once(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    (tmp_path / LOCK).parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=(LOCK,))
    with _io.exclusive_lock(tmp_path / LOCK):
        started = time.perf_counter()
        code = main(["run", str(spec), "--no-progress"])
        assert time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert code == 4, err
    last = err.splitlines()[-1]  # after the run's step lines
    assert last.startswith("error: busy: Another process is running the pipeline 'mini'")
    assert "--wait" in err
    guard.assert_unchanged()


def test_wait_seconds_gives_up_with_exit_4(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    (tmp_path / LOCK).parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=(LOCK,))
    with _io.exclusive_lock(tmp_path / LOCK):
        started = time.perf_counter()
        code = main(["run", str(spec), "--no-progress", "--wait", "0.5"])
        waited = time.perf_counter() - started
    assert code == 4 and waited >= 0.5
    assert "waited for 0.5 s" in capsys.readouterr().err
    guard.assert_unchanged()


def test_a_lock_file_left_by_a_dead_run_does_not_block(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    (tmp_path / "outputs" / "mini").mkdir(parents=True)
    (tmp_path / LOCK).write_text("12345")  # a lock file, but no process holds its lock
    guard = tree_guard(tmp_path, allowed=(f"outputs/mini/{LAST}", LOCK, "models"))
    assert main(["run", str(spec), "--no-progress", "--quiet"]) == 0
    guard.assert_unchanged()


def test_a_fit_to_a_folder_being_written_exits_4(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    lock = f"models/mini/.{LAST}.lock"
    (tmp_path / lock).parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=(lock,))
    with _io.exclusive_lock(tmp_path / lock):
        code = main(["fit", str(spec), "--no-progress"])
    assert code == 4 and "a fit that saves to" in capsys.readouterr().err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# two real processes started at the same moment
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_at_once_one_trains_the_other_exits_4(tmp_path, tree_guard):
    spec = project(tmp_path, epochs=60)
    guard = tree_guard(tmp_path, allowed=("outputs", "models"))
    first, second = start(spec), start(spec)
    results = [(p.wait(timeout=240), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 4], results
    busy = next(err for code, _, err in results if code == 4)
    assert "error: busy: Another process is running the pipeline 'mini'" in busy
    done = next(err for code, _, err in results if code == 0)  # the steps: stderr
    assert "fitted in" in done
    folder = tmp_path / "outputs" / "mini" / LAST
    assert _io.check_replaceable(folder, "run")["details"]["as_of"] == LAST
    leftovers = {p.name for p in folder.parent.iterdir()} - {LAST, f".{LAST}.lock"}
    assert leftovers == set()
    guard.assert_unchanged()


@pytest.mark.slow
def test_two_runs_at_once_with_wait_train_once(tmp_path, tree_guard):
    spec = project(tmp_path, epochs=60)
    guard = tree_guard(tmp_path, allowed=("outputs", "models"))
    first, second = start(spec, "--wait"), start(spec, "--wait", "200")
    results = [(p.wait(timeout=240), *p.communicate()) for p in (first, second)]
    assert [code for code, _, _ in results] == [0, 0], results
    steps = [err for _, _, err in results]  # the steps: stderr
    assert sum("fitted in" in err for err in steps) == 1, steps
    assert sum("already exist" in err for err in steps) == 1, steps
    summary = json.loads((tmp_path / "outputs" / "mini" / LAST / "summary.json").read_text())
    assert summary["status"] == "completed"
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# tuning is locked like run and fit; a lock path that is not a lock file is refused
# ------------------------------------------------------------------------------------------

TUNE_LOCK = f"models/mini/.{LAST}-tuned.lock"


def test_a_tuning_of_the_same_as_of_exits_4(tmp_path, capsys, tree_guard):
    # was: two `forecaster tune` of one spec ran at once, duplicating trials
    spec = project(tmp_path)
    (tmp_path / TUNE_LOCK).parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=(TUNE_LOCK,))
    with _io.exclusive_lock(tmp_path / TUNE_LOCK):
        code = main(["tune", str(spec), "--no-progress", "--trials", "1"])
        waited = main(["tune", str(spec), "--no-progress", "--trials", "1", "--wait", "0.2"])
    err = capsys.readouterr().err
    assert (code, waited) == (4, 4), err
    assert "error: busy: Another process is running a tuning of 'mini' as of 2024-01-30" in err
    assert "waited for 0.2 s" in err
    guard.assert_unchanged()


def test_run_tune_waits_for_the_tuning_of_its_as_of(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    (tmp_path / TUNE_LOCK).parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=(TUNE_LOCK, "outputs"))
    with _io.exclusive_lock(tmp_path / TUNE_LOCK):
        code = main(["run", str(spec), "--tune", "--no-progress"])
    assert code == 4 and "a tuning of 'mini'" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "outputs" / "mini").iterdir()] == [f".{LAST}.lock"]
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["run", "fit", "tune"])
@pytest.mark.parametrize("kind", ["link", "folder", "dangling-link"])
def test_a_lock_path_that_is_no_lock_file_exits_2(tmp_path, capsys, tree_guard, command, kind):
    # was: a symlink at the lock path gave a raw OSError 40 (fit), "Unexpected OSError" (run)
    spec = project(tmp_path)
    lock = {"run": LOCK, "fit": f"models/mini/.{LAST}.lock", "tune": TUNE_LOCK}[command]
    (tmp_path / lock).parent.mkdir(parents=True)
    (tmp_path / "target").write_text("mine")
    if kind == "link":
        (tmp_path / lock).symlink_to(tmp_path / "target")
    elif kind == "folder":
        (tmp_path / lock).mkdir()
    else:
        (tmp_path / lock).symlink_to(tmp_path / "nowhere")
    guard = tree_guard(tmp_path)
    code = main([command, str(spec), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"Refusing to use the lock file {tmp_path / lock}" in err, err
    assert (tmp_path / "target").read_text() == "mine"
    guard.assert_unchanged()


def _tune_process(spec: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "forecaster", "tune", str(spec), "--no-progress", *extra],
        cwd=spec.parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_tunings_at_once_run_the_trials_once_and_save_the_studys_best(tmp_path, tree_guard):
    # was: both tuned, trials were duplicated and the model saved last was not the best
    import optuna

    from forecaster import load
    from forecaster.jobs import run as pipelines

    spec = project(tmp_path, epochs=3)
    storage = tmp_path / "studies" / "optuna.db"
    spec.write_text(
        spec.read_text() + f'\n[training]\ntrials = 3\nstorage = "sqlite:///{storage}"\n'
    )
    guard = tree_guard(tmp_path, allowed=("models", "studies"))
    first, second = _tune_process(spec, "--wait"), _tune_process(spec, "--wait", "200")
    results = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    assert [code for code, _, _ in results] == [0, 0], results
    loaded, root = pipelines.load_spec(spec)
    name = pipelines.study_name(loaded, pipelines.prepare_data(loaded, root, None)[1])
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 3  # not 6: the second found the study complete
    saved = load(tmp_path / "models" / "mini" / f"{LAST}-tuned")
    best = study.best_trial.user_attrs.get("params", study.best_trial.params)
    assert {k: saved.get_params()[k] for k in best} == best
    guard.assert_unchanged()

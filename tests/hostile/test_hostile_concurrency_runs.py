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

from forecaster import _io
from forecaster.cli import main

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
max_epochs = {epochs}
patience = 1000
random_state = 0

[evaluation]
backtest_folds = 0

[tracking]
enabled = false

[output]
plot_series = 0
"""
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
    spec.write_text(SPEC.format(epochs=epochs))
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
    assert err.startswith("error: busy: Another process is running the pipeline 'mini'")
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
    done = next(out for code, out, _ in results if code == 0)
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
    outs = [out for _, out, _ in results]
    assert sum("fitted in" in out for out in outs) == 1, outs
    assert sum("already exist" in out for out in outs) == 1, outs
    summary = json.loads((tmp_path / "outputs" / "mini" / LAST / "summary.json").read_text())
    assert summary["status"] == "completed"
    guard.assert_unchanged()
